"""The ledger in a PostgreSQL database (SQLAlchemy Core, psycopg 3), for many analysts.

Layout: one schema per product, ``mesh_nb_ledger_<product>``, holding the same ``entries``,
``meta``, ``state`` and ``spends`` tables as the SQLite file; created if missing (under an
advisory lock, so racing first openers do not collide). Several products share a database
without seeing each other's rows.

Serialising appends: a row lock, not SERIALIZABLE. :meth:`PostgresStore.writing` opens a READ
COMMITTED transaction and first takes ``SELECT ... FOR UPDATE`` on the ledger's ``meta`` row
``product``; every append (head read, running totals, insert) runs after that lock, and under
READ COMMITTED each of those statements sees every append committed before the lock was granted.
So two writers can never both pass a budget check or both chain to the same head, and no writer
ever retries. SERIALIZABLE would also be correct, but on one hot ledger nearly every concurrent
append conflicts, so the cost would be a storm of serialization failures and retries instead of
an orderly queue.

Every wait is bounded: ``lock_timeout`` (default 30 s) for the row lock, ``connect_timeout``
(default 10 s, or the URL's own) to reach the server, TCP keepalives and ``tcp_user_timeout``
for a server that goes away mid-statement. Past them the caller gets a
:class:`~mesh_nb.errors.LedgerError` that names what was waited for; no driver error (and so
no row text) leaves this module.

Time: an entry's ``ts`` is the server's ``clock_timestamp()`` read inside the append transaction,
after the lock, never the writing process's clock (``clock`` replaces it in tests only).

The hot path runs SQL text on the transaction's driver connection (SQLAlchemy creates the
tables and manages the connection). Durability is Postgres's own. The owner's signed checkpoint
stays a file in the owner directory (see :mod:`mesh_nb.ledger.store` for why).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy import (BigInteger, Column, Connection, Engine, Index, MetaData,
                        PrimaryKeyConstraint, Table, Text, create_engine, func, insert, select)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.schema import CreateSchema

from ..errors import LedgerError, LedgerTampered
from .backend import (INDEXES, INTEGER_COLUMNS, NULLABLE_COLUMNS, ROW, SPEND_COLUMNS, Where)
from .config import SQLITE, LedgerUrlError, ledger_url

LOCK_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10
SCHEMA_PREFIX = "mesh_nb_ledger_"
_MAX_IDENT = 63  # PostgreSQL's identifier limit (bytes)
#: Connections inherited through fork(): kept referenced, never closed or returned to a pool
#: from the child (that would end the parent's session on the shared socket).
_INHERITED: list[Any] = []


def schema_name(product: str) -> str:
    """The schema holding ``product``'s ledger (hash-suffixed if the name does not fit)."""
    name = SCHEMA_PREFIX + product
    if re.fullmatch(r"[A-Za-z0-9_]+", product) and len(name) <= _MAX_IDENT:
        return name
    digest = hashlib.sha256(product.encode("utf-8")).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9_]", "_", product)[:_MAX_IDENT - len(SCHEMA_PREFIX) - 13]
    return f"{SCHEMA_PREFIX}{safe}_{digest}"


def _tables(schema: str) -> MetaData:
    """The ledger's tables in ``schema``, columns as in :data:`~.backend.ROW`."""
    md = MetaData(schema=schema)
    columns = [Column("seq", BigInteger, primary_key=True, autoincrement=False)]
    columns += [Column(name, BigInteger if name in INTEGER_COLUMNS else Text,
                       nullable=name in NULLABLE_COLUMNS) for name in ROW[1:]]
    entries = Table("entries", md, *columns)
    for name, cols in INDEXES.items():
        Index(name, *(entries.c[c] for c in cols))
    Table("meta", md, Column("key", Text, primary_key=True), Column("value", Text, nullable=False))
    Table("state", md, Column("id", BigInteger, primary_key=True, autoincrement=False),
          Column("hash", Text, nullable=False), Column("content", Text))
    spends = Table("spends", md, Column("key", Text, nullable=False),
                   Column("n", BigInteger, nullable=False), Column("ts", Text, nullable=False),
                   Column("seq", BigInteger, nullable=False), PrimaryKeyConstraint("key", "n"))
    Index("spends_ts", spends.c.key, spends.c.ts, spends.c.n)
    return md


def _short(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:200]


def storage_error(exc: BaseException, location: str, lock_timeout: float,
                  schema: str) -> LedgerError:
    """The LedgerError for a driver or SQLAlchemy error; only a connection failure's own
    reason is repeated (it names the server, never a row)."""
    import psycopg

    orig = getattr(exc, "orig", None) or exc
    state = getattr(orig, "sqlstate", None) or ""
    if isinstance(orig, UnicodeError):
        return LedgerTampered(None, f"a row of the ledger at {location} is not text (edited or "
                                    "corrupted) — run `mesh-nb ledger verify`")
    if state == "55P03":
        return LedgerError(
            f"the ledger's append lock (the row `product` of {schema}.meta at {location}) has "
            f"been held by another session for more than {lock_timeout:g} s (a stopped or hung "
            "writer?) — find it in pg_stat_activity (application_name 'mesh_nb ledger'), resume "
            "or end it (pg_terminate_backend), then retry")
    if state == "57014":
        return LedgerError(f"the PostgreSQL ledger at {location} cancelled a statement "
                           "(statement timeout or an operator's cancel) — retry")
    if state in ("53100", "53200"):
        return LedgerError(f"the PostgreSQL server of {location} is out of disk or memory "
                           f"(SQLSTATE {state}) — free space on the server, then retry")
    if state in ("42P01", "3F000"):
        return LedgerError(f"the ledger's tables in {schema} at {location} are gone (schema "
                           "dropped?) — restore them from the owner's backup")
    if isinstance(orig, psycopg.OperationalError) and (not state or state[:2] in ("08", "57")):
        return LedgerError(f"cannot reach the PostgreSQL ledger at {location}: "
                           f"{_short(str(orig)) or type(orig).__name__} — check the server is up "
                           "and reachable, then retry (nothing was recorded)")
    if isinstance(orig, psycopg.InterfaceError) or "closed" in type(orig).__name__.lower():
        return LedgerError(f"the connection to the PostgreSQL ledger at {location} was lost — "
                           "retry")
    return LedgerError(f"the PostgreSQL ledger at {location} failed ({type(orig).__name__}"
                       f"{', SQLSTATE ' + state if state else ''}) — check the server's log, "
                       "then retry")


class _Rows:
    """:class:`~.backend.Rows` over one connection inside a transaction (SQL on the driver)."""

    _cursors = 0  # names server-side cursors apart

    def __init__(self, store: "PostgresStore", conn: Connection) -> None:
        self.store, self.conn = store, conn
        self.db = conn.connection.driver_connection
        s = f'"{store.schema}"'
        self._entries, self._state, self._spends = f"{s}.entries", f"{s}.state", f"{s}.spends"
        self._now: datetime | None = None
        self._prefetched: tuple | None = None

    def _all(self, sql: str, params: Any = None) -> list[tuple]:
        return self.db.execute(sql, params).fetchall()

    def prefetch(self, ids: Iterable[int], keys: Iterable[str]) -> None:
        """One round trip (a psycopg pipeline) for what a reserve reads next: the head, the
        tree nodes ``ids`` and, as a guess from the unsigned index, the latest spends of
        ``keys``; :meth:`head`, :meth:`nodes` and :meth:`rows_at` then answer from it (what
        is read is authenticated by the ledger all the same)."""
        ids, keys = sorted(set(ids)), sorted(set(keys))
        with self.db.pipeline():
            head = self.db.execute(self._head_sql())
            nodes = self.db.execute(f"SELECT id, hash, content FROM {self._state} "
                                    "WHERE id = ANY(%s)", (ids,))
            latest = self.db.execute(  # one index probe per key: O(log n)
                f"SELECT {', '.join('e.' + c for c in ROW)} FROM unnest(%s::text[]) AS k(key) "
                f"CROSS JOIN LATERAL (SELECT s.seq FROM {self._spends} AS s WHERE s.key = k.key "
                f"ORDER BY s.n DESC LIMIT 1) AS l JOIN {self._entries} AS e ON e.seq = l.seq",
                (keys,))
        self._prefetched = (head.fetchall(), set(ids), {i: (h, c) for i, h, c in
                                                        nodes.fetchall()},
                            {row[0]: tuple(row) for row in latest.fetchall()})

    def _head_sql(self) -> str:
        return (f"SELECT clock_timestamp(), e.* FROM (SELECT 1) AS one LEFT JOIN LATERAL "
                f"(SELECT {', '.join(ROW)} FROM {self._entries} ORDER BY seq DESC LIMIT 1) AS e "
                "ON true")

    def append(self, row: tuple, nodes: list[tuple], spends: list[tuple]) -> None:
        """Insert an entry, its tree nodes and its spends in one round trip."""
        with self.db.pipeline():
            self.insert(row)
            self.put_nodes(nodes)
            self.put_spends(spends)

    def now(self) -> datetime:
        if self.store.clock is not None:
            return self.store.clock()
        if self._now is None:
            self._now = self._all("SELECT clock_timestamp()")[0][0]
        return self._now

    def head(self) -> tuple | None:
        if self._prefetched is not None:
            found = self._prefetched[0]
        else:
            found = self._all(self._head_sql())
        self._now = found[0][0]
        row = tuple(found[0][1:])
        return None if row[0] is None else row

    def rows_at(self, seqs: Iterable[int]) -> dict[int, tuple]:
        wanted = sorted(set(seqs))
        if not wanted:
            return {}
        if self._prefetched is not None and set(wanted) <= set(self._prefetched[3]):
            return {seq: self._prefetched[3][seq] for seq in wanted}
        found = self._all(f"SELECT {', '.join(ROW)} FROM {self._entries} WHERE seq = ANY(%s)",
                          (wanted,))
        return {row[0]: tuple(row) for row in found}

    def hash_at(self, seq: int) -> str | None:
        found = self._all(f"SELECT hash FROM {self._entries} WHERE seq = %s", (seq,))
        return found[0][0] if found else None

    def insert(self, row: tuple) -> None:
        self._prefetched = None
        self.db.execute(f"INSERT INTO {self._entries} ({', '.join(ROW)}) VALUES "
                        f"({', '.join(['%s'] * len(ROW))})", row)

    def _copy(self, table: str, columns: tuple[str, ...], rows: Iterable[tuple]) -> None:
        with self.db.cursor() as cur:
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    def insert_many(self, rows: list[tuple]) -> None:
        self._copy(self._entries, ROW, rows)

    def nodes(self, ids: Iterable[int]) -> dict[int, tuple[str, str | None]]:
        ids = set(ids)
        if self._prefetched is not None and ids <= self._prefetched[1]:
            return {i: v for i, v in self._prefetched[2].items() if i in ids}
        found = self._all(f"SELECT id, hash, content FROM {self._state} WHERE id = ANY(%s)",
                          (sorted(set(ids)),))
        return {i: (h, c) for i, h, c in found}

    def put_nodes(self, nodes: list[tuple]) -> None:
        if not nodes:
            return
        ids, hashes, contents = zip(*nodes)
        self.db.execute(f"INSERT INTO {self._state} (id, hash, content) SELECT * FROM "
                        "unnest(%s::bigint[], %s::text[], %s::text[]) ON CONFLICT (id) DO UPDATE "
                        "SET hash = excluded.hash, content = excluded.content",
                        (list(ids), list(hashes), list(contents)))

    def put_spends(self, spends: list[tuple]) -> None:
        if len(spends) > 100:
            self._copy(self._spends, SPEND_COLUMNS, spends)
        elif spends:
            keys, ns, tss, seqs = zip(*spends)
            self.db.execute(f"INSERT INTO {self._spends} ({', '.join(SPEND_COLUMNS)}) SELECT * "
                            "FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::bigint[])",
                            (list(keys), list(ns), list(tss), list(seqs)))

    def spend_before(self, key: str, ts: str) -> tuple[int, int] | None:
        found = self._all(f"SELECT n, seq FROM {self._spends} WHERE key = %s AND ts < %s "
                          "ORDER BY ts DESC, n DESC LIMIT 1", (key, ts))
        return tuple(found[0]) if found else None

    def spend_seq(self, key: str, n: int) -> int | None:
        found = self._all(f"SELECT seq FROM {self._spends} WHERE key = %s AND n = %s", (key, n))
        return found[0][0] if found else None

    def select(self, where: Where, *, last: bool = False) -> list[tuple[str, str, str]]:
        clause, args = where.clause("%s")
        order = " ORDER BY seq DESC LIMIT 1" if last else " ORDER BY seq"
        return [tuple(r) for r in self._all(f"SELECT body, hash, sig FROM {self._entries}"
                                            + clause + order, args)]

    def _stream(self, sql: str) -> Iterable[tuple]:
        _Rows._cursors += 1
        # a server-side cursor: bounded memory whatever the ledger's length
        with self.db.cursor(name=f"mesh_nb_scan_{_Rows._cursors}") as cur:
            cur.itersize = 5000
            cur.execute(sql)
            for row in cur:
                yield tuple(row)

    def scan(self) -> Iterable[tuple]:
        return self._stream(f"SELECT {', '.join(ROW)} FROM {self._entries} ORDER BY seq")

    def scan_nodes(self) -> Iterable[tuple]:
        return self._stream(f"SELECT id, hash, content FROM {self._state} ORDER BY id")

    def scan_spends(self) -> Iterable[tuple]:
        return self._stream(f"SELECT {', '.join(SPEND_COLUMNS)} FROM {self._spends} "
                            "ORDER BY key COLLATE \"C\", n")

    def count(self) -> int:
        return self._all(f"SELECT COUNT(*) FROM {self._entries}")[0][0]

    def clear(self) -> None:
        for table in (self._entries, self._state, self._spends):
            self.db.execute(f"DELETE FROM {table}")


def _connect_args(url: str, lock_timeout: float) -> dict[str, Any]:
    query = {k.lower() for k, _ in parse_qsl(urlsplit(url).query)}
    args: dict[str, Any] = {"options": f"-c lock_timeout={int(lock_timeout * 1000)}",
                            "application_name": "mesh_nb ledger"}
    defaults = {"connect_timeout": CONNECT_TIMEOUT_S, "keepalives": 1, "keepalives_idle": 10,
                "keepalives_interval": 5, "keepalives_count": 3, "tcp_user_timeout": 30_000}
    args.update({k: v for k, v in defaults.items() if k not in query})
    return args


class PostgresStore:
    """A ledger in the PostgreSQL database at ``url`` (``postgresql+psycopg://``, no password).

    One connection per process (reopened after ``fork()``), shared by its threads in turn.
    ``lock_timeout``: seconds a writer waits for the append lock. ``clock``: replaces the
    server's clock, for tests only.
    """

    def __init__(self, url: str, product: str, *, lock_timeout: float = LOCK_TIMEOUT_S,
                 clock: Callable[[], datetime] | None = None) -> None:
        normalised = ledger_url(url)
        if normalised == SQLITE:
            raise LedgerUrlError("PostgresStore needs a PostgreSQL URL")
        self.url = self.location = normalised
        self.schema = schema_name(product)
        self.lock_timeout = float(lock_timeout)
        self.clock = clock
        self._md = _tables(self.schema)
        self._mutex = threading.RLock()
        self._engine: Engine | None = None
        self._conn: Connection | None = None
        self._pid = 0

    def _error(self, exc: BaseException) -> LedgerError:
        return storage_error(exc, self.location, self.lock_timeout, self.schema)

    def _connection(self) -> Connection:
        if self._pid != os.getpid() and self._engine is not None:
            _INHERITED.append((self._engine, self._conn))  # the parent's: leave them alone
            self._engine, self._conn = None, None
        if self._conn is not None and (self._conn.invalidated or self._conn.closed
                                       or self._conn.connection.driver_connection.closed):
            self._discard()
        if self._engine is None:
            self._engine = create_engine(self.url, pool_size=1, max_overflow=0,
                                         pool_pre_ping=False,
                                         connect_args=_connect_args(self.url, self.lock_timeout))
            self._pid = os.getpid()
        if self._conn is None:
            self._conn = self._engine.connect()
        return self._conn

    def _discard(self) -> None:
        """Forget a broken connection (closing it may fail too)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass

    @contextmanager
    def _transaction(self, setup: Callable[[_Rows], None]) -> Iterator[_Rows]:
        import psycopg

        with self._mutex:
            try:
                conn = self._connection()
                trans = conn.begin()
            except (SQLAlchemyError, psycopg.Error, UnicodeError) as exc:
                self._discard()
                raise self._error(exc) from None
            try:
                rows = _Rows(self, conn)
                setup(rows)
                yield rows
                trans.commit()
            except BaseException as exc:
                try:
                    if trans.is_active:
                        trans.rollback()
                except Exception:  # noqa: BLE001 - the connection is gone: forget it
                    self._discard()
                if isinstance(exc, (SQLAlchemyError, psycopg.Error, UnicodeError)):
                    if isinstance(exc, psycopg.OperationalError) or \
                            isinstance(getattr(exc, "orig", None), psycopg.OperationalError):
                        self._discard()
                    raise self._error(exc) from None
                raise

    def _lock(self, rows: _Rows) -> None:
        found = rows._all(f'SELECT value FROM "{self.schema}".meta WHERE key = %s FOR UPDATE',
                          ("product",))
        if not found:
            raise LedgerTampered(None, f"the ledger's meta row is gone from {self.schema} (schema "
                                       "dropped or edited while open): no append lock, nothing "
                                       "recorded")

    def writing(self) -> Iterator[_Rows]:
        """READ COMMITTED, after ``SELECT ... FOR UPDATE`` on the ledger's ``meta`` row."""
        return self._transaction(self._lock)

    def reading(self) -> Iterator[_Rows]:
        """REPEATABLE READ, READ ONLY: one snapshot for every statement inside."""
        return self._transaction(lambda rows: rows.db.execute(
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))

    def bind(self, product: str) -> None:
        import psycopg

        key = int.from_bytes(hashlib.sha256(self.schema.encode()).digest()[:8], "big",
                             signed=True)
        meta = self._md.tables[f"{self.schema}.meta"]
        with self._mutex:
            try:
                conn = self._connection()
                with conn.begin():
                    conn.execute(select(func.pg_advisory_xact_lock(key)))
                    conn.execute(CreateSchema(self.schema, if_not_exists=True))
                    self._md.create_all(conn, checkfirst=True)
                    found = conn.execute(select(meta.c.value).where(meta.c.key == "product")
                                         ).scalar()
                    if found is None:
                        conn.execute(insert(meta).values(key="product", value=product))
            except (SQLAlchemyError, psycopg.Error, UnicodeError) as exc:
                self._discard()
                raise self._error(exc) from None
        if found is not None and found != product:
            raise LedgerError(f"schema {self.schema} at {self.location} is the ledger of product "
                              f"{str(found)[:80]!r}, not {product!r} (swapped or copied) — open "
                              "it with its own product name")

    def close(self) -> None:
        with self._mutex:
            if self._pid == os.getpid():
                try:
                    if self._conn is not None:
                        self._conn.close()
                    if self._engine is not None:
                        self._engine.dispose()
                except Exception:  # noqa: BLE001 - closing a broken connection
                    pass
            self._engine, self._conn = None, None

    def __repr__(self) -> str:
        return f"PostgresStore({self.location!r}, schema={self.schema!r})"
