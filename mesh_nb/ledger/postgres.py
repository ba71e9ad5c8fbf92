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

Durability is Postgres's own (``synchronous_commit`` as the server sets it). The owner's signed
checkpoint stays a file in the owner directory (see :mod:`mesh_nb.ledger.store` for why).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

from sqlalchemy import (BigInteger, Column, Connection, Engine, Index, MetaData, Table, Text,
                        and_, create_engine, func, insert, select)
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
    """:class:`~.backend.Rows` over one SQLAlchemy connection inside a transaction."""

    def __init__(self, conn: Connection, entries: Table) -> None:
        self.conn, self.t = conn, entries

    def _conditions(self, where: Where) -> Any:
        c = self.t.c
        conds = [c[col].is_(None) if value is None else c[col] == value
                 for col, value in where.equal]
        if where.since is not None:
            conds.append(c.ts >= where.since)
        return and_(True, *conds)

    def tail(self, from_seq: int, limit: int = 64) -> list[tuple[int, str]]:
        c = self.t.c
        return [(seq, digest) for seq, digest in self.conn.execute(
            select(c.seq, c.hash).where(c.seq >= from_seq).order_by(c.seq.desc()).limit(limit))]

    def hash_at(self, seq: int) -> str | None:
        return self.conn.execute(select(self.t.c.hash).where(self.t.c.seq == seq)).scalar()

    def insert(self, row: tuple) -> None:
        self.conn.execute(insert(self.t), dict(zip(ROW, row)))

    def spent(self, where: Where) -> tuple[int, int]:
        c = self.t.c
        eps, delta = self.conn.execute(
            select(func.coalesce(func.sum(c.epsilon_micro), 0),
                   func.coalesce(func.sum(c.delta_pico), 0))
            .where(self._conditions(where))).one()
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
                if conn.execute(self._lock_row).first() is None:
                    raise ValueError(f"no ledger in schema {self.schema} at {self.location} "
                                     "(dropped while open?)")
                yield _Rows(conn, self._entries)

    @contextmanager
    def reading(self) -> Iterator[_Rows]:
        """REPEATABLE READ, READ ONLY: one snapshot for every statement inside."""
        with self._mutex:
            conn = self._connection()
            with conn.begin():
                conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                yield _Rows(conn, self._entries)

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
