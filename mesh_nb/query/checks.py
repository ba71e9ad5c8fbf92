"""What the owner's data was checked to hold, recorded once per data version.

Some plans rest on a fact about the data, not only the contract: a privacy unit declared
``unique`` lets the plan skip contribution bounding, and that is safe only if the data holds it.
Checking it scans the table (seconds at 10M rows), so the answer is kept in the owner's
folder (``owner_dir/data-checks.json``), keyed by the data file's :func:`fingerprint` and
signed with the owner's key: a fresh kernel re-checks only when the data changed, and a file
someone edited (a forged "unique") is ignored and the check runs again.

Nothing here depends on a query: whether a check is answered from the record or from a scan
depends only on the owner's data version.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

CHECKS_FILE = "data-checks.json"
TAIL = 64 * 1024
"""Bytes read from the end of a data file for its fingerprint (a parquet file's footer)."""


def _file_print(path: Path, st: os.stat_result) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        if path.suffix.lower() == ".parquet":  # the footer names every row group
            f.seek(max(0, st.st_size - TAIL))
            digest.update(f.read(TAIL))
        else:  # a text file's tail says nothing about the rows before it
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return (f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{st.st_ctime_ns}:"
            f"{digest.hexdigest()[:32]}")


def fingerprint(path: Path) -> str:
    """A data file's version: its size, modification and change times (a kept or restored
    mtime still moves the ctime), inode, and a hash of its last 64 KiB for parquet (the
    footer, which names every row group) or of all of it for CSV and JSON; a folder's is its
    files'."""
    st = path.stat()
    if not path.is_dir():
        return _file_print(path, st)
    parts = [f"{p.relative_to(path)}={_file_print(p, p.stat())}"
             for p in sorted(path.rglob("*")) if p.is_file()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class DataChecks:
    """The signed record of checks on one product's data, in the owner's folder."""

    owner_dir: Path

    @property
    def path(self) -> Path:
        return Path(self.owner_dir) / CHECKS_FILE

    def _key(self):
        from ..ledger.keys import OwnerKey

        return OwnerKey.load_or_create(self.owner_dir)

    @staticmethod
    def _message(checks: dict) -> bytes:
        return json.dumps(checks, sort_keys=True, separators=(",", ":")).encode()

    def _read(self, key) -> dict[str, list]:
        """The recorded checks, or none if the file is missing, unreadable or not the owner's
        signature (``key``) over its content."""
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            checks, sig = doc["checks"], doc["sig"]
        except (OSError, ValueError, KeyError, TypeError):
            return {}
        if not isinstance(checks, dict) or not key.verify(sig, self._message(checks)):
            return {}
        return checks

    def get(self, name: str, version: str) -> bool | None:
        """The recorded answer of check ``name`` on data ``version``; None if not recorded."""
        found = self._read(self._key()).get(name)
        if isinstance(found, list) and len(found) == 2 and found[0] == version \
                and isinstance(found[1], bool):
            return found[1]
        return None

    def put(self, name: str, version: str, holds: bool) -> None:
        """Record the answer of check ``name`` on data ``version`` (signed, written whole)."""
        key = self._key()
        checks = {**self._read(key), name: [version, bool(holds)]}
        text = json.dumps({"checks": checks, "sig": key.sign(self._message(checks)).hex()},
                          sort_keys=True, indent=1)
        tmp = self.path.with_name(f".{CHECKS_FILE}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, self.path)
