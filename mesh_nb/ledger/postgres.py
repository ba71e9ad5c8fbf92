"""The ledger in a PostgreSQL database (SQLAlchemy Core, psycopg 3), for many analysts.

Layout: one schema per product, ``mesh_nb_ledger_<product>``, holding the same ``entries`` and
``meta`` tables as the SQLite file; created if missing (under an advisory lock, so racing first
openers do not collide). Several products share a database without seeing each other's rows.

Serialising appends: a row lock, not SERIALIZABLE. :meth:`PostgresStore.writing` opens a READ
COMMITTED transaction and first takes ``SELECT ... FOR UPDATE`` on the ledger's ``meta`` row
``product``; every append (head read, budget sum, insert) runs after that lock, and under READ
COMMITTED each of those statements sees every append committed before the lock was granted. So
two writers can never both pass a budget check or both chain to the same head, and no writer
ever retries. SERIALIZABLE would also be correct, but on one hot ledger nearly every concurrent
append conflicts (all read the head and the spend sums), so the cost would be a storm of
serialization failures and retries instead of an orderly queue; the row lock keeps the lock
time to the few statements of one append. ``lock_timeout`` is 60 s, as SQLite's busy timeout.

Statements are SQLAlchemy Core; the append path compiles each once and runs the SQL on the
transaction's driver connection, which halves the client CPU of an append (what limits
throughput when many writers queue on the lock).

Durability is Postgres's own (``synchronous_commit`` as the server sets it). The owner's signed
checkpoint stays a file in the owner directory (see :mod:`mesh_nb.ledger.store` for why).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

from sqlalchemy import (BigInteger, Column, Connection, Engine, Index, MetaData, Table, Text,
                        and_, bindparam, create_engine, func, insert, literal_column,
                        select)
from sqlalchemy.schema import CreateSchema

from .backend import INDEXES, INTEGER_COLUMNS, NULLABLE_COLUMNS, ROW, Where
from .config import SQLITE, LedgerUrlError, ledger_url

LOCK_TIMEOUT_MS = 60_000
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


def _tables(schema: str) -> tuple[MetaData, Table, Table]:
    """(metadata, entries, meta) in ``schema``, columns as in :data:`~.backend.ROW`."""
    md = MetaData(schema=schema)
    columns = [Column("seq", BigInteger, primary_key=True, autoincrement=False)]
    columns += [Column(name, BigInteger if name in INTEGER_COLUMNS else Text,
                       nullable=name in NULLABLE_COLUMNS) for name in ROW[1:]]
    entries = Table("entries", md, *columns)
    for name, cols in INDEXES.items():
        Index(name, *(entries.c[c] for c in cols))
    meta = Table("meta", md, Column("key", Text, primary_key=True),
                 Column("value", Text, nullable=False))
    return md, entries, meta


class _Rows:
    """:class:`~.backend.Rows` over one SQLAlchemy connection inside a transaction.

    The append path (tail, hash_at, spent, insert) runs SQL that SQLAlchemy Core built and
    compiled once per statement shape, straight on the driver connection of the same
    transaction: it saves about half the client CPU of an append, which is what limits
    throughput when many writers queue on the lock.
    """

    def __init__(self, conn: Connection, entries: Table, compiled: dict[Any, str]) -> None:
        self.conn, self.t, self._compiled = conn, entries, compiled
        self._driver = conn.connection.driver_connection
        self._lock: Any = None  # the lock statement's cursor, until checked

    def _sql(self, key: Any, build: Callable[[], Any], *, literal: bool = False) -> str:
        """The SQL text of a Core statement, compiled once per ``key``; ``literal`` inlines
        its constants (a statement run without parameters)."""
        sql = self._compiled.get(key)
        if sql is None:
            sql = self._compiled[key] = str(build().compile(
                dialect=self.conn.dialect, compile_kwargs={"literal_binds": literal}))
        return sql

    def _fast(self, key: Any, build: Callable[[], Any], params: dict[str, Any]) -> list[tuple]:
        found = self._driver.execute(self._sql(key, build), params).fetchall()
        self.check_locked()
        return found

    def check_locked(self) -> None:
        """ValueError if ``FOR UPDATE`` found no ``meta`` row to lock (no serialisation)."""
        if self._lock is not None:
            cursor, self._lock = self._lock, None
            if cursor.fetchone() is None:
                raise ValueError("the ledger's meta row is gone (schema dropped or edited "
                                 "while open): no append lock")

    def _conditions(self, where: Where, *, bind: bool = False) -> Any:
        """The filter; with ``bind``, values become parameters named after their columns."""
        c = self.t.c
        conds = [c[col].is_(None) if value is None else
                 c[col] == (bindparam(col) if bind else value) for col, value in where.equal]
        if where.since is not None:
            conds.append(c.ts >= (bindparam("since") if bind else where.since))
        return and_(True, *conds)

    def tail(self, from_seq: int, limit: int = 64) -> list[tuple[int, str]]:
        c = self.t.c
        return self._fast("tail", lambda: select(c.seq, c.hash).where(
            c.seq >= bindparam("from_seq")).order_by(c.seq.desc()).limit(bindparam("limit")),
            {"from_seq": from_seq, "limit": limit})

    def hash_at(self, seq: int) -> str | None:
        c = self.t.c
        found = self._fast("hash_at", lambda: select(c.hash).where(c.seq == bindparam("seq")),
                           {"seq": seq})
        return found[0][0] if found else None

    def insert(self, row: tuple) -> None:
        self.check_locked()
        sql = self._sql("insert", lambda: insert(self.t).values({n: bindparam(n) for n in ROW}))
        self._driver.execute(sql, dict(zip(ROW, row)))

    def spent(self, where: Where) -> tuple[int, int]:
        c = self.t.c
        shape = ("spent", tuple((col, value is None) for col, value in where.equal),
                 where.since is not None)
        params = {col: value for col, value in where.equal if value is not None}
        if where.since is not None:
            params["since"] = where.since
        ((eps, delta),) = self._fast(shape, lambda: select(
            func.coalesce(func.sum(c.epsilon_micro), literal_column("0")),
            func.coalesce(func.sum(c.delta_pico), literal_column("0")))
            .where(self._conditions(where, bind=True)),
            params)
        return int(eps), int(delta)

    def select(self, where: Where, *, last: bool = False) -> list[tuple[str, str, str]]:
        c = self.t.c
        query = select(c.body, c.hash, c.sig).where(self._conditions(where))
        query = query.order_by(c.seq.desc()).limit(1) if last else query.order_by(c.seq)
        return [tuple(r) for r in self.conn.execute(query)]

    def scan(self) -> Iterable[tuple]:
        query = select(*(self.t.c[name] for name in ROW)).order_by(self.t.c.seq)
        result = self.conn.execute(query, execution_options={"yield_per": 5000})
        return (tuple(r) for r in result)

    def count(self) -> int:
        return self.conn.execute(select(func.count()).select_from(self.t)).scalar_one()


class PostgresStore:
    """A ledger in the PostgreSQL database at ``url`` (``postgresql+psycopg://``, no password).

    One connection per process (reopened after ``fork()``), shared by its threads in turn.
    """

    def __init__(self, url: str, product: str) -> None:
        normalised = ledger_url(url)
        if normalised == SQLITE:
            raise LedgerUrlError("PostgresStore needs a PostgreSQL URL")
        self.url = self.location = normalised
        self.schema = schema_name(product)
        self._md, self._entries, self._meta = _tables(self.schema)
        self._lock_row = (select(self._meta.c.value).where(self._meta.c.key == "product")
                          .with_for_update())
        self._mutex = threading.RLock()
        self._compiled: dict[Any, str] = {}  # statement shape -> SQL text Core compiled
        self._engine: Engine | None = None
        self._conn: Connection | None = None
        self._pid = 0

    def _connection(self) -> Connection:
        if self._pid != os.getpid() and self._engine is not None:
            _INHERITED.append((self._engine, self._conn))  # the parent's: leave them alone
            self._engine, self._conn = None, None
        if self._conn is not None and self._conn.invalidated:  # the server dropped us
            self._conn.close()
            self._conn = None
        if self._engine is None:
            self._engine = create_engine(
                self.url, pool_size=1, max_overflow=0,
                connect_args={"options": f"-c lock_timeout={LOCK_TIMEOUT_MS}",
                              "application_name": "mesh_nb ledger"})
            self._pid = os.getpid()
        if self._conn is None:
            self._conn = self._engine.connect()
        return self._conn

    @contextmanager
    def writing(self) -> Iterator[_Rows]:
        """READ COMMITTED, after ``SELECT ... FOR UPDATE`` on the ledger's ``meta`` row."""
        with self._mutex:
            conn = self._connection()
            with conn.begin():
                rows = _Rows(conn, self._entries, self._compiled)
                lock = rows._sql("lock", lambda: self._lock_row, literal=True)
                rows._lock = rows._driver.execute(lock)
                rows.check_locked()
                yield rows

    @contextmanager
    def reading(self) -> Iterator[_Rows]:
        """REPEATABLE READ, READ ONLY: one snapshot for every statement inside."""
        with self._mutex:
            conn = self._connection()
            with conn.begin():
                conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                yield _Rows(conn, self._entries, self._compiled)

    def bind(self, product: str) -> None:
        key = int.from_bytes(hashlib.sha256(self.schema.encode()).digest()[:8], "big",
                             signed=True)
        with self._mutex:
            conn = self._connection()
            with conn.begin():
                conn.execute(select(func.pg_advisory_xact_lock(key)))
                conn.execute(CreateSchema(self.schema, if_not_exists=True))
                self._md.create_all(conn, checkfirst=True)
                meta = self._meta
                found = conn.execute(select(meta.c.value).where(meta.c.key == "product")
                                     ).scalar()
                if found is None:
                    conn.execute(insert(meta).values(key="product", value=product))
                elif found != product:
                    raise ValueError(f"schema {self.schema} at {self.location} is the ledger of "
                                     f"product {found!r}, not {product!r}")

    def close(self) -> None:
        with self._mutex:
            if self._pid == os.getpid():
                if self._conn is not None:
                    self._conn.close()
                if self._engine is not None:
                    self._engine.dispose()
            self._engine, self._conn = None, None

    def __repr__(self) -> str:
        return f"PostgresStore({self.location!r}, schema={self.schema!r})"
