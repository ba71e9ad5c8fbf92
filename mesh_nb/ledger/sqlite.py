"""The ledger in an SQLite file (the default store), on the stdlib ``sqlite3`` driver.

Appends serialise on SQLite's database lock: :meth:`SqliteStore.writing` is one
``BEGIN IMMEDIATE`` transaction, so the head read, budget check and insert of one writer never
interleave with another's. A writer waits at most ``lock_timeout`` seconds (SQLite's busy
timeout) for that lock, then gets a :class:`~mesh_nb.errors.LedgerError` naming it. WAL with
``synchronous=NORMAL``: a killed process loses nothing that committed; after a power loss the
last commits may be gone (the owner's checkpoint then reports the ledger as cut). Readers never
block writers.

The clock of an SQLite ledger is its host's (every writer of the file runs on the host whose
file system holds it); ``clock`` replaces it in tests. Every driver error leaves as a
LedgerError (LedgerTampered for a row that is not text) whose message never quotes a row.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from ..files import private_dir, private_file
from ..errors import LedgerError, LedgerTampered
from .backend import (INDEXES, INTEGER_COLUMNS, NULLABLE_COLUMNS, ROW, SPEND_COLUMNS,
                      STATE_COLUMNS, Where)

LOCK_TIMEOUT_S = 30.0


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


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
    "CREATE TABLE IF NOT EXISTS state (id INTEGER PRIMARY KEY, hash TEXT NOT NULL, content TEXT)",
    "CREATE TABLE IF NOT EXISTS spends (key TEXT NOT NULL, n INTEGER NOT NULL, ts TEXT NOT NULL, "
    "seq INTEGER NOT NULL, PRIMARY KEY (key, n)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS spends_ts ON spends (key, ts, n)",
)
_ROWS = ", ".join(ROW)
_INSERT = f"INSERT INTO entries ({_ROWS}) VALUES ({', '.join('?' * len(ROW))})"
_ROW_SELECT = f"SELECT {_ROWS} FROM entries ORDER BY seq"
_PUT_NODE = ("INSERT INTO state (id, hash, content) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE "
             "SET hash = excluded.hash, content = excluded.content")
_PUT_SPEND = f"INSERT INTO spends ({', '.join(SPEND_COLUMNS)}) VALUES (?, ?, ?, ?)"


def storage_error(exc: sqlite3.Error, location: str, timeout: float) -> LedgerError:
    """The LedgerError (or LedgerTampered) for a driver error; never quotes the driver's text,
    which can hold a row's."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if text.startswith("Could not decode to UTF-8"):
        return LedgerTampered(None, f"a row of {location} is not UTF-8 text (edited or "
                                    "corrupted) — run `mesh-nb ledger verify`, then restore the "
                                    "file from a backup the owner's checkpoint accepts")
    if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED") or \
            text.startswith("database is locked"):
        return LedgerError(
            f"SQLite's write lock on {location} has been held by another process for more than "
            f"{timeout:g} s (a stopped or hung mesh_nb process?) — find it with `fuser "
            f"{location}`, resume or end it, then retry")
    if name.startswith("SQLITE_FULL"):
        return LedgerError(f"the disk holding {location} is full — free space, then retry "
                           "(nothing was recorded)")
    if name.startswith("SQLITE_IOERR"):
        return LedgerError(f"cannot write {location}: an I/O error ({name}; a full disk or a "
                           "file size limit?) — free space or lift the limit, then retry "
                           "(nothing was recorded)")
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or \
            text.startswith(("file is not a database", "database disk image is malformed")):
        return LedgerError(f"{location} is not a readable SQLite ledger (malformed, truncated or "
                           "another kind of file) — restore it from a backup the owner's "
                           "checkpoint accepts")
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        return LedgerError(f"cannot open {location} for writing ({name}) — check the file and "
                           "its folder are writable by this user")
    return LedgerError(f"the SQLite ledger {location} failed ({type(exc).__name__}"
                       f"{', ' + name if name else ''}) — run `mesh-nb ledger verify`; if it "
                       "fails, restore the file from a backup")


class _Rows:
    """:class:`~.backend.Rows` over one sqlite3 connection inside a transaction."""

    def __init__(self, conn: sqlite3.Connection, clock: Callable[[], datetime]) -> None:
        self.conn, self._clock = conn, clock

    def now(self) -> datetime:
        return self._clock()

    def head(self) -> tuple | None:
        return self.conn.execute(f"SELECT {_ROWS} FROM entries ORDER BY seq DESC LIMIT 1"
                                 ).fetchone()

    def rows_at(self, seqs: Iterable[int]) -> dict[int, tuple]:
        wanted = sorted(set(seqs))
        if not wanted:
            return {}
        found = self.conn.execute(f"SELECT {_ROWS} FROM entries WHERE seq IN "
                                  f"({', '.join('?' * len(wanted))})", wanted).fetchall()
        return {row[0]: row for row in found}

    def hash_at(self, seq: int) -> str | None:
        row = self.conn.execute("SELECT hash FROM entries WHERE seq = ?", (seq,)).fetchone()
        return row[0] if row else None

    def prefetch(self, ids: Iterable[int], keys: Iterable[str]) -> None:
        """Nothing to gain in-process: every read is a local call."""

    def append(self, row: tuple, nodes: list[tuple], spends: list[tuple]) -> None:
        self.insert(row)
        self.put_nodes(nodes)
        self.put_spends(spends)

    def insert(self, row: tuple) -> None:
        self.conn.execute(_INSERT, row)

    def insert_many(self, rows: list[tuple]) -> None:
        self.conn.executemany(_INSERT, rows)

    def nodes(self, ids: Iterable[int]) -> dict[int, tuple[str, str | None]]:
        wanted = sorted(set(ids))
        found = self.conn.execute(f"SELECT id, hash, content FROM state WHERE id IN "
                                  f"({', '.join('?' * len(wanted))})", wanted).fetchall()
        return {i: (h, c) for i, h, c in found}

    def put_nodes(self, nodes: list[tuple]) -> None:
        self.conn.executemany(_PUT_NODE, nodes)

    def put_spends(self, spends: list[tuple]) -> None:
        self.conn.executemany(_PUT_SPEND, spends)

    def spend_before(self, key: str, ts: str) -> tuple[int, int] | None:
        return self.conn.execute("SELECT n, seq FROM spends WHERE key = ? AND ts < ? "
                                 "ORDER BY ts DESC, n DESC LIMIT 1", (key, ts)).fetchone()

    def spend_seq(self, key: str, n: int) -> int | None:
        row = self.conn.execute("SELECT seq FROM spends WHERE key = ? AND n = ?",
                                (key, n)).fetchone()
        return row[0] if row else None

    def select(self, where: Where, *, last: bool = False) -> list[tuple[str, str, str]]:
        clause, args = where.clause("?")
        order = " ORDER BY seq DESC LIMIT 1" if last else " ORDER BY seq"
        return self.conn.execute("SELECT body, hash, sig FROM entries" + clause + order,
                                 args).fetchall()

    def scan(self) -> Iterable[tuple]:
        return self.conn.execute(_ROW_SELECT)

    def scan_nodes(self) -> Iterable[tuple]:
        return self.conn.execute(f"SELECT {', '.join(STATE_COLUMNS)} FROM state ORDER BY id")

    def scan_spends(self) -> Iterable[tuple]:
        return self.conn.execute(f"SELECT {', '.join(SPEND_COLUMNS)} FROM spends "
                                 "ORDER BY key, n")

    def count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]

    def clear(self) -> None:
        for table in ("entries", "state", "spends"):
            self.conn.execute(f"DELETE FROM {table}")

    def integrity_problem(self) -> str | None:
        """SQLite's own check that every index agrees with its table (an index edited alone)."""
        found = [r[0] for r in self.conn.execute("PRAGMA integrity_check")]
        return None if found == ["ok"] else f"{len(found)} problem(s)"


class SqliteStore:
    """A ledger in the SQLite file at ``path`` (created with its folder if missing).

    ``lock_timeout``: seconds a writer waits for SQLite's write lock. ``clock``: the host clock
    (tests).
    """

    def __init__(self, path: Path | str, *, lock_timeout: float = LOCK_TIMEOUT_S,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.lock_timeout = float(lock_timeout)
        self.clock = clock or _utcnow
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        try:
            private_dir(self.path.parent)
        except OSError as exc:
            raise LedgerError(f"cannot create the folder of {self.location} "
                              f"({exc.strerror or type(exc).__name__})") from None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():  # never reuse one across fork()
            private_file(self.path)
            conn = sqlite3.connect(self.path, timeout=self.lock_timeout,
                                   isolation_level=None, check_same_thread=False)
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(self.lock_timeout * 1000)}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
            except BaseException:
                conn.close()
                raise
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    @contextmanager
    def _transaction(self, mode: str) -> Iterator[_Rows]:
        with self._lock:
            try:
                conn = self._connection()
                conn.execute(f"BEGIN {mode}")
            except sqlite3.Error as exc:
                raise storage_error(exc, self.location, self.lock_timeout) from None
            try:
                yield _Rows(conn, self.clock)
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        self._drop()
                if isinstance(exc, sqlite3.Error):
                    raise storage_error(exc, self.location, self.lock_timeout) from None
                raise

    def _drop(self) -> None:
        try:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
        except sqlite3.Error:
            pass
        self._conn = None

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
                raise LedgerError(f"{self.path} is the ledger of product {str(row[0])[:80]!r}, not "
                                  f"{product!r} (swapped or copied) — open it with its own "
                                  "product name, or put this product's ledger back")

    def close(self) -> None:
        with self._lock:
            self._drop()

    def __repr__(self) -> str:
        return f"SqliteStore({self.location!r})"
