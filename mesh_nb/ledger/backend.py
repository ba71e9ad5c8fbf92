"""Where a ledger's rows are kept: the small interface between :class:`~.store.Ledger` (chain,
signatures, checkpoint, budget logic) and an SQL database.

Two implementations: :class:`~.sqlite.SqliteStore` (a file, the default; stdlib ``sqlite3``) and
:class:`~.postgres.PostgresStore` (a PostgreSQL database through SQLAlchemy Core and psycopg 3).
Both keep the same columns; a store knows nothing of hashes or signatures, it only stores and
finds rows, and gives the ledger a transaction in which no other writer can append.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Protocol

#: Indexed columns that repeat a field of the signed body; ``verify()`` checks they agree.
COLUMNS: tuple[str, ...] = ("ts", "kind", "session", "analyst", "purpose", "epsilon_micro",
                            "delta_pico")
#: A stored row, in this order: ``seq``, the :data:`COLUMNS`, ``body``, ``hash``, ``sig``.
ROW: tuple[str, ...] = ("seq", *COLUMNS, "body", "hash", "sig")
#: Columns that hold integers (the rest are text; session, analyst and purpose may be NULL).
INTEGER_COLUMNS = frozenset({"seq", "epsilon_micro", "delta_pico"})
NULLABLE_COLUMNS = frozenset({"session", "analyst", "purpose"})
#: Secondary indexes, by name: the columns each covers.
INDEXES: dict[str, tuple[str, ...]] = {
    "entries_spend": ("purpose", "analyst", "ts", "epsilon_micro", "delta_pico"),
    "entries_kind": ("kind", "ts"),
    "entries_ts": ("ts",),
    "entries_session": ("session",),
}


@dataclass(frozen=True)
class Where:
    """Which entries: columns equal to values (a None value matches NULL), and ``ts >= since``."""

    equal: tuple[tuple[str, str | None], ...] = ()
    since: str | None = None

    def __post_init__(self) -> None:
        for column, _ in self.equal:
            if column not in COLUMNS:  # column names reach SQL text: only known ones
                raise ValueError(f"cannot filter ledger entries on {column!r}")

    def clause(self, mark: str) -> tuple[str, list[Any]]:
        """The ``WHERE`` clause (or "") with ``mark`` as the parameter placeholder, and its
        arguments."""
        parts, args = [], []
        for column, value in self.equal:
            if value is None:
                parts.append(f"{column} IS NULL")
            else:
                parts.append(f"{column} = {mark}")
                args.append(value)
        if self.since is not None:
            parts.append(f"ts >= {mark}")
            args.append(self.since)
        return (" WHERE " + " AND ".join(parts)) if parts else "", args


#: The running totals' tables (see :mod:`.totals`): the tree's nodes, and the unsigned search
#: index of each key's spends (everything read from them is authenticated before use).
STATE_COLUMNS: tuple[str, ...] = ("id", "hash", "content")
SPEND_COLUMNS: tuple[str, ...] = ("key", "n", "ts", "seq")


class Rows(Protocol):
    """The rows of one ledger inside one transaction (see :class:`LedgerStore`)."""

    def now(self) -> datetime:
        """The store's clock (aware, UTC): the host's for SQLite, the server's for PostgreSQL."""

    def prefetch(self, ids: Iterable[int], keys: Iterable[str]) -> None:
        """A hint: the head, the tree nodes ``ids`` and the latest spends of ``keys`` are read
        next (a server store fetches them in one round trip)."""

    def append(self, row: tuple, nodes: list[tuple], spends: list[tuple]) -> None:
        """Insert an entry row, upsert its tree nodes and index its spends."""

    def head(self) -> tuple | None:
        """The last row, values in :data:`ROW` order, or None for an empty ledger."""

    def rows_at(self, seqs: Iterable[int]) -> dict[int, tuple]:
        """seq -> row (:data:`ROW` order) of the entries asked for that exist."""

    def hash_at(self, seq: int) -> str | None:
        """The stored hash of entry ``seq``, or None if there is no such row."""

    def insert(self, row: tuple) -> None:
        """Insert one row, its values in :data:`ROW` order."""

    def insert_many(self, rows: list[tuple]) -> None:
        """Insert rows (bulk writes: a migration, a benchmark's big ledger)."""

    def nodes(self, ids: Iterable[int]) -> dict[int, tuple[str, str | None]]:
        """id -> (hash, content) of the stored running-totals nodes asked for."""

    def put_nodes(self, nodes: list[tuple]) -> None:
        """Insert or replace running-totals nodes ``(id, hash, content)``."""

    def put_spends(self, spends: list[tuple]) -> None:
        """Insert spends ``(key, n, ts, seq)`` into the search index."""

    def spend_before(self, key: str, ts: str) -> tuple[int, int] | None:
        """(n, seq) of ``key``'s last indexed spend with ``ts`` before ``ts``, or None."""

    def spend_seq(self, key: str, n: int) -> int | None:
        """The seq of ``key``'s n-th indexed spend, or None."""

    def select(self, where: Where, *, last: bool = False) -> list[tuple[str, str, str]]:
        """(body, hash, sig) of the matching entries in order (only the last one if ``last``)."""

    def scan(self) -> Iterable[tuple]:
        """Every row, values in :data:`ROW` order, by ``seq``."""

    def scan_nodes(self) -> Iterable[tuple]:
        """Every running-totals node ``(id, hash, content)``."""

    def scan_spends(self) -> Iterable[tuple]:
        """Every indexed spend ``(key, n, ts, seq)``."""

    def count(self) -> int:
        """Number of rows."""

    def clear(self) -> None:
        """Delete every entry, node and spend (a migration re-seals the ledger in place)."""


class LedgerStore(Protocol):
    """The database behind one product's ledger."""

    #: Where the rows live, for messages: a file path or a URL without password.
    location: str

    def bind(self, product: str) -> None:
        """Create the tables if missing; LedgerError if they hold another product's ledger."""

    def writing(self) -> AbstractContextManager[Rows]:
        """A transaction holding this ledger's exclusive append lock; commits on success.

        Waits at most the store's lock timeout for the lock, then raises LedgerError naming it.
        """

    def reading(self) -> AbstractContextManager[Rows]:
        """A read-only transaction seeing one consistent snapshot; takes no append lock."""

    def close(self) -> None:
        """Close connections (reopened on next use, also after ``fork()``)."""
