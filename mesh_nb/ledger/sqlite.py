"""The ledger in an SQLite file (the default store), on the stdlib ``sqlite3`` driver.

Appends serialise on SQLite's database lock: :meth:`SqliteStore.writing` is one
``BEGIN IMMEDIATE`` transaction, so the head read, budget check and insert of one writer never
interleave with another's. WAL with ``synchronous=NORMAL``: a killed process loses nothing that
committed; after a power loss the last commits may be gone (the owner's checkpoint then reports
the ledger as cut). Readers never block writers.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from .backend import INDEXES, INTEGER_COLUMNS, NULLABLE_COLUMNS, ROW, Where

BUSY_TIMEOUT_MS = 60_000


def _column_ddl(name: str) -> str:
    if name == "seq":
        return "seq INTEGER PRIMARY KEY"
    kind = "INTEGER" if name in INTEGER_COLUMNS else "TEXT"
    return f"{name} {kind}" + ("" if name in NULLABLE_COLUMNS else " NOT NULL")


_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS entries ({', '.join(map(_column_ddl, ROW))})",
    *(f"CREATE INDEX IF NOT EXISTS {name} ON entries ({', '.join(cols)})"
      for name, cols in INDEXES.items()),
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
_INSERT = f"INSERT INTO entries ({', '.join(ROW)}) VALUES ({', '.join('?' * len(ROW))})"
_ROW_SELECT = f"SELECT {', '.join(ROW)} FROM entries ORDER BY seq"


def _where(where: Where) -> tuple[str, list[Any]]:
    """``WHERE`` clause (or "") and its arguments."""
    parts, args = [], []
    for column, value in where.equal:
        if value is None:
            parts.append(f"{column} IS NULL")
        else:
            parts.append(f"{column} = ?")
            args.append(value)
    if where.since is not None:
        parts.append("ts >= ?")
        args.append(where.since)
    return (" WHERE " + " AND ".join(parts)) if parts else "", args


class _Rows:
    """:class:`~.backend.Rows` over one sqlite3 connection inside a transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def tail(self, from_seq: int, limit: int = 64) -> list[tuple[int, str]]:
        return self.conn.execute("SELECT seq, hash FROM entries WHERE seq >= ? "
                                 "ORDER BY seq DESC LIMIT ?", (from_seq, limit)).fetchall()

    def hash_at(self, seq: int) -> str | None:
        row = self.conn.execute("SELECT hash FROM entries WHERE seq = ?", (seq,)).fetchone()
        return row[0] if row else None

    def insert(self, row: tuple) -> None:
        self.conn.execute(_INSERT, row)

    def spent(self, where: Where) -> tuple[int, int]:
        clause, args = _where(where)
        eps, delta = self.conn.execute(
            "SELECT COALESCE(SUM(epsilon_micro), 0), COALESCE(SUM(delta_pico), 0) FROM entries"
            + clause, args).fetchone()
        return int(eps), int(delta)

    def select(self, where: Where, *, last: bool = False) -> list[tuple[str, str, str]]:
        clause, args = _where(where)
        order = " ORDER BY seq DESC LIMIT 1" if last else " ORDER BY seq"
        return self.conn.execute("SELECT body, hash, sig FROM entries" + clause + order,
                                 args).fetchall()

    def scan(self) -> Iterable[tuple]:
        return self.conn.execute(_ROW_SELECT)

    def count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]


class SqliteStore:
    """A ledger in the SQLite file at ``path`` (created with its folder if missing)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():  # never reuse one across fork()
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    @contextmanager
    def _transaction(self, mode: str) -> Iterator[_Rows]:
        with self._lock:
            conn = self._connection()
            conn.execute(f"BEGIN {mode}")
            try:
                yield _Rows(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def writing(self) -> AbstractContextManager[_Rows]:
        """``BEGIN IMMEDIATE``: SQLite's one writer lock, held to commit."""
        return self._transaction("IMMEDIATE")

    def reading(self) -> AbstractContextManager[_Rows]:
        """``BEGIN DEFERRED``: a WAL snapshot taken at the first read."""
        return self._transaction("DEFERRED")

    def bind(self, product: str) -> None:
        with self.writing() as rows:
            for statement in _SCHEMA:
                rows.conn.execute(statement)
            row = rows.conn.execute("SELECT value FROM meta WHERE key = 'product'").fetchone()
            if row is None:
                rows.conn.execute("INSERT INTO meta VALUES ('product', ?)", (product,))
            elif row[0] != product:
                raise ValueError(f"{self.path} is the ledger of product {row[0]!r}, not "
                                 f"{product!r} — open it with its own product name")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __repr__(self) -> str:
        return f"SqliteStore({self.location!r})"

