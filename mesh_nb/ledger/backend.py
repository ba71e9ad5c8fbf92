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
from typing import Iterable, Protocol

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


class Rows(Protocol):
    """The rows of one ledger inside one transaction (see :class:`LedgerStore`)."""

    def tail(self, from_seq: int, limit: int = 64) -> list[tuple[int, str]]:
        """(seq, hash) of the newest entries with ``seq >= from_seq``, newest first, at most
        ``limit`` of them."""

    def hash_at(self, seq: int) -> str | None:
        """The stored hash of entry ``seq``, or None if there is no such row."""

    def insert(self, row: tuple) -> None:
        """Insert one row, its values in :data:`ROW` order."""

    def spent(self, where: Where) -> tuple[int, int]:
        """Sum of (epsilon_micro, delta_pico) over the matching entries."""

    def select(self, where: Where, *, last: bool = False) -> list[tuple[str, str, str]]:
        """(body, hash, sig) of the matching entries in order (only the last one if ``last``)."""

    def scan(self) -> Iterable[tuple]:
        """Every row, values in :data:`ROW` order, by ``seq``."""

    def count(self) -> int:
        """Number of rows."""


class LedgerStore(Protocol):
    """The database behind one product's ledger."""

    #: Where the rows live, for messages: a file path or a URL without password.
    location: str

    def bind(self, product: str) -> None:
        """Create the tables if missing; ValueError if they hold another product's ledger."""

    def writing(self) -> AbstractContextManager[Rows]:
        """A transaction holding this ledger's exclusive append lock; commits on success."""

    def reading(self) -> AbstractContextManager[Rows]:
        """A read-only transaction seeing one consistent snapshot; takes no append lock."""

    def close(self) -> None:
        """Close connections (reopened on next use, also after ``fork()``)."""
