"""Released answers kept by the product, so that repeating a query gains nothing and costs nothing.

Kept beside the ledger (``.mesh_nb/releases.sqlite``), not in it: the ledger never holds values.
The key is the purpose plus the normalized query's hash plus what was asked (epsilon, delta,
mechanism), so the same question in the same purpose always gets the same noisy answer.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path

import pandas as pd
import pyarrow as pa

from ..files import private_dir, private_file


def cache_key(purpose: str, query_hash: str, epsilon: float, delta: float, mechanism: str) -> str:
    text = json.dumps([purpose, query_hash, round(epsilon, 9), delta, mechanism])
    return hashlib.sha256(text.encode()).hexdigest()


def _frame_bytes(frame: pd.DataFrame) -> bytes:
    """Arrow IPC bytes of a frame (fast, typed; never unpickled)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _frame(data: bytes) -> pd.DataFrame:
    return pa.ipc.open_stream(data).read_all().to_pandas()


class ReleaseCache:
    """One SQLite file of released frames by cache key; one connection per object."""

    def __init__(self, path: Path):
        self.path = Path(path)
        private_dir(self.path.parent)
        private_file(self.path)
        self._lock = threading.Lock()
        self._con = sqlite3.connect(self.path, timeout=60, check_same_thread=False,
                                    isolation_level=None)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("PRAGMA synchronous=NORMAL")
        self._con.execute("CREATE TABLE IF NOT EXISTS releases (key TEXT PRIMARY KEY, "
                          "release_id TEXT, frame BLOB, accuracy BLOB, meta TEXT)")

    def get(self, key: str) -> tuple[str, pd.DataFrame, pd.DataFrame, dict] | None:
        with self._lock:
            row = self._con.execute("SELECT release_id, frame, accuracy, meta FROM releases "
                                    "WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return row[0], _frame(row[1]), _frame(row[2]), json.loads(row[3])

    def clear(self) -> int:
        """Forget every kept release (the owner's call, e.g. for benchmarks); returns how many."""
        with self._lock:
            return self._con.execute("DELETE FROM releases").rowcount

    def put(self, key: str, release_id: str, frame: pd.DataFrame, accuracy: pd.DataFrame,
            meta: dict) -> None:
        with self._lock:
            self._con.execute("INSERT OR IGNORE INTO releases VALUES (?, ?, ?, ?, ?)",
                              (key, release_id, _frame_bytes(frame), _frame_bytes(accuracy),
                               json.dumps(meta)))

    def close(self) -> None:
        self._con.close()
