"""Released answers kept by the product, so that repeating a query gains nothing and costs nothing.

Kept beside the ledger (``.mesh_nb/releases.sqlite``), not in it: the ledger never holds values.
The key is the purpose plus the normalized query's hash plus what was asked (epsilon, delta,
mechanism), so the same question in the same purpose always gets the same noisy answer.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pandas as pd


def cache_key(purpose: str, query_hash: str, epsilon: float, delta: float, mechanism: str) -> str:
    text = json.dumps([purpose, query_hash, round(epsilon, 9), delta, mechanism])
    return hashlib.sha256(text.encode()).hexdigest()


def _frame_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


class ReleaseCache:
    """One SQLite file of released frames by cache key."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as con, con:
            con.execute("CREATE TABLE IF NOT EXISTS releases (key TEXT PRIMARY KEY, "
                        "release_id TEXT, frame BLOB, accuracy BLOB, meta TEXT)")

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=60)
        con.execute("PRAGMA journal_mode=WAL")
        return con

    def get(self, key: str) -> tuple[str, pd.DataFrame, pd.DataFrame, dict] | None:
        with closing(self._connect()) as con:
            row = con.execute("SELECT release_id, frame, accuracy, meta FROM releases "
                              "WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return (row[0], pd.read_parquet(io.BytesIO(row[1])), pd.read_parquet(io.BytesIO(row[2])),
                json.loads(row[3]))

    def clear(self) -> int:
        """Forget every kept release (the owner's call, e.g. for benchmarks); returns how many."""
        with closing(self._connect()) as con, con:
            return con.execute("DELETE FROM releases").rowcount

    def put(self, key: str, release_id: str, frame: pd.DataFrame, accuracy: pd.DataFrame,
            meta: dict) -> None:
        with closing(self._connect()) as con, con:
            con.execute("INSERT OR IGNORE INTO releases VALUES (?, ?, ?, ?, ?)",
                        (key, release_id, _frame_bytes(frame), _frame_bytes(accuracy),
                         json.dumps(meta)))
