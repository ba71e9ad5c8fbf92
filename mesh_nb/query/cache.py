"""Released answers kept by the product, so that repeating a query gains nothing and costs nothing.

Kept beside the ledger (``.mesh_nb/releases.sqlite``), not in it: the ledger never holds values.
The key is the purpose plus the normalized query's hash plus what was asked (epsilon, delta,
mechanism), so the same question in the same purpose always gets the same noisy answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from ..files import private_dir, private_file

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor


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
    """One SQLite file of released frames by cache key; one connection per object.

    :meth:`put` returns at once: a release is kept in memory, served from there by
    :meth:`get`, and written by one background thread (its Arrow encoding and the SQLite
    write are off the query's path); :meth:`flush` waits for the writes, and :meth:`close`
    flushes first. A process that exits writes what is pending (the writer thread is joined at
    interpreter exit).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        private_dir(self.path.parent)
        private_file(self.path)
        self._inherited: list[sqlite3.Connection] = []
        self._start()

    def _start(self) -> None:
        """This process's lock, writer and connection (again in a forked child: the parent's
        writer thread is not there, its lock may be held, and SQLite forbids sharing a
        connection across a fork; the inherited one is kept unused, never closed)."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[str, pd.DataFrame, pd.DataFrame, dict]] = {}
        self._writer: "ThreadPoolExecutor | None" = None
        self._con = sqlite3.connect(self.path, timeout=60, check_same_thread=False,
                                    isolation_level=None)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("PRAGMA synchronous=NORMAL")
        self._con.execute("CREATE TABLE IF NOT EXISTS releases (key TEXT PRIMARY KEY, "
                          "release_id TEXT, frame BLOB, accuracy BLOB, meta TEXT)")

    def _here(self) -> None:
        if self._pid != os.getpid():
            self._inherited.append(self._con)
            self._start()

    def get(self, key: str) -> tuple[str, pd.DataFrame, pd.DataFrame, dict] | None:
        self._here()
        with self._lock:  # the written one first: a write keeps the first release of a key
            row = self._con.execute("SELECT release_id, frame, accuracy, meta FROM releases "
                                    "WHERE key = ?", (key,)).fetchone()
            pending = self._pending.get(key) if row is None else None
        if pending is not None:
            release_id, frame, accuracy, meta = pending
            return release_id, frame.copy(), accuracy.copy(), json.loads(json.dumps(meta))
        if row is None:
            return None
        return row[0], _frame(row[1]), _frame(row[2]), json.loads(row[3])

    def clear(self) -> int:
        """Forget every kept release (the owner's call, e.g. for benchmarks); returns how many."""
        self._here()
        with self._lock:
            dropped = len(self._pending)
            self._pending.clear()
            return dropped + self._con.execute("DELETE FROM releases").rowcount

    def put(self, key: str, release_id: str, frame: pd.DataFrame, accuracy: pd.DataFrame,
            meta: dict) -> None:
        """Keep a release under ``key`` (the first one kept under a key stays)."""
        item = (release_id, frame.copy(), accuracy.copy(), json.loads(json.dumps(meta)))
        self._here()
        with self._lock:
            if key in self._pending:
                return
            self._pending[key] = item
            if self._writer is None:
                from concurrent.futures import ThreadPoolExecutor

                self._writer = ThreadPoolExecutor(1, thread_name_prefix="mesh-nb-cache")
            self._writer.submit(self._write, key, item)

    def _write(self, key: str, item: tuple[str, pd.DataFrame, pd.DataFrame, dict]) -> None:
        release_id, frame, accuracy, meta = item
        row = (key, release_id, _frame_bytes(frame), _frame_bytes(accuracy), json.dumps(meta))
        with self._lock:
            if self._pending.get(key) is not item:  # cleared meanwhile
                return
            try:
                self._con.execute("INSERT OR IGNORE INTO releases VALUES (?, ?, ?, ?, ?)", row)
            finally:
                del self._pending[key]

    def flush(self) -> None:
        """Wait until every kept release is written."""
        self._here()
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.shutdown(wait=True)

    def close(self) -> None:
        self.flush()
        self._con.close()
