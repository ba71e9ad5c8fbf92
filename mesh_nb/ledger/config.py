"""Which store holds a product's ledger: the owner's configuration, else the contract, else SQLite.

In order, the first one set wins:

1. ``MESH_NB_LEDGER_URL`` in the environment of the process (every product it opens);
2. the file ``OWNER_DIR/ledger.url`` (one line; the owner's setting for that one product);
3. ``ledger:`` in the contract's ``meshNbPrivacy`` policy;
4. the SQLite file ``PRODUCT_FOLDER/.mesh_nb/ledger.sqlite``.

A value is ``sqlite`` (the default file) or a PostgreSQL URL, ``postgresql://`` or
``postgresql+psycopg://`` (both mean psycopg 3). A URL never carries a password: libpq takes it
from ``PGPASSFILE`` (default ``~/.pgpass``) or ``PGPASSWORD``, so contracts and owner files can
be shared and committed. This module imports nothing heavy: the contract model uses it.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ..errors import MeshError

ENV_VAR = "MESH_NB_LEDGER_URL"
OWNER_FILE = "ledger.url"
SQLITE = "sqlite"
_SCHEMES = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg",
            "postgresql+psycopg": "postgresql+psycopg"}


class LedgerUrlError(MeshError, ValueError):
    """A ledger setting that cannot be used; the message never repeats a password."""


def ledger_url(value: str) -> str:
    """``sqlite`` or a normalised ``postgresql+psycopg://`` URL; LedgerUrlError otherwise.

    Refuses a URL holding a password (the message does not quote the URL).
    """
    text = value.strip()
    if text.lower() == SQLITE:
        return SQLITE
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        raise LedgerUrlError("the ledger URL is malformed — use "
                             "postgresql+psycopg://USER@HOST:PORT/DATABASE") from None
    if password is not None:
        raise LedgerUrlError(
            "the ledger URL holds a password — remove it from the URL and give it to libpq "
            "through PGPASSFILE (~/.pgpass) or PGPASSWORD instead")
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.hostname or not parts.path.strip("/"):
        raise LedgerUrlError(
            f"ledger must be `{SQLITE}` or a PostgreSQL URL like "
            "postgresql+psycopg://USER@HOST:PORT/DATABASE (scheme "
            f"{parts.scheme or 'missing'!r}, host and database required)")
    return urlunsplit((scheme, *parts[1:]))


def configured_ledger(owner_dir: Path, contract_setting: str | None) -> str | None:
    """The PostgreSQL URL a product's ledger lives at, or None for the SQLite file.

    The owner's configuration (environment, then ``owner_dir/ledger.url``) wins over the
    contract's ``ledger:``. LedgerUrlError names which setting is wrong.
    """
    owner_file = Path(owner_dir) / OWNER_FILE
    candidates = ((f"${ENV_VAR}", lambda: os.environ.get(ENV_VAR)),
                  (str(owner_file), lambda: owner_file.read_text(encoding="utf-8")
                   if owner_file.is_file() else None),
                  ("the contract's `ledger:`", lambda: contract_setting))
    for source, read in candidates:
        value = read()
        if value and value.strip():
            try:
                url = ledger_url(value)
            except LedgerUrlError as exc:
                raise LedgerUrlError(f"{source}: {exc}") from None
            return None if url == SQLITE else url
    return None
