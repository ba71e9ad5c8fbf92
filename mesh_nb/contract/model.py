"""The plain internal model of a data product's contract.

`load_contract` (in :mod:`mesh_nb.contract.load`) turns a validated ODCS YAML file into these
frozen dataclasses; everything downstream (mesh, session, query planning, ledger) reads only them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ..errors import Problem

Classification = Literal["direct-identifier", "quasi-identifier", "sensitive", "public"]
CLASSIFICATIONS: tuple[str, ...] = ("direct-identifier", "quasi-identifier", "sensitive", "public")

Access = Literal["dp-aggregate", "pseudonymized-rows", "raw-rows"]
ACCESS_MODES: tuple[str, ...] = ("dp-aggregate", "pseudonymized-rows", "raw-rows")

Scope = Literal["per-analyst", "per-purpose"]

NUMERIC_TYPES = ("integer", "number")


@dataclass(frozen=True)
class Column:
    """One column of a table, with what the owner declared about it."""

    name: str
    logical_type: str = "string"
    classification: str = "public"
    pii: bool = False
    pii_entity: str | None = None
    bounds: tuple[float, float] | None = None
    categories: tuple | None = None
    generalize: dict | None = None
    description: str = ""
    required: bool = False
    unique: bool = False

    @property
    def numeric(self) -> bool:
        return self.logical_type in NUMERIC_TYPES

    @property
    def identifier(self) -> bool:
        return self.classification == "direct-identifier"


@dataclass(frozen=True)
class Table:
    """One schema object of the contract and the data file that holds it."""

    name: str
    columns: tuple[Column, ...]
    physical_name: str = ""
    data_path: Path | None = None
    data_format: str = "parquet"
    description: str = ""
    source: str | None = None  # a Spark catalog table (``catalog.schema.table``), not a file

    def column(self, name: str) -> Column | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


@dataclass(frozen=True)
class Budget:
    """A purpose's privacy budget. ``scope`` says whose spends count against it."""

    epsilon: float
    delta: float = 0.0
    scope: str = "per-analyst"
    period_days: int | None = None


@dataclass(frozen=True)
class Purpose:
    """A declared purpose: what it is for and what access it grants."""

    name: str
    description: str
    access: str
    allowed_columns: tuple[str, ...]
    legal_basis: str | None = None
    budget: Budget | None = None
    max_epsilon_per_query: float | None = None
    default_epsilon_per_query: float | None = None
    requires_acknowledgement: bool = False
    approvers: tuple[str, ...] = ()

    @property
    def default_epsilon(self) -> float | None:
        """Epsilon a query takes when the analyst names none."""
        if self.default_epsilon_per_query is not None:
            return self.default_epsilon_per_query
        if self.budget is None:
            return None
        cap = self.max_epsilon_per_query or self.budget.epsilon
        return min(cap, self.budget.epsilon / 10)


@dataclass(frozen=True)
class Contract:
    """A data product's contract: its tables, privacy unit and purposes."""

    id: str
    name: str
    version: str
    path: Path
    tables: tuple[Table, ...]
    privacy_unit: str
    max_contributions: int
    purposes: dict[str, Purpose] = field(default_factory=dict)
    join_keys: tuple[str, ...] = ()
    domain: str = ""
    team: str = ""
    owners: tuple[str, ...] = ()
    description: str = ""
    engine: str | None = None  # a server's meshNbEngine: duckdb | spark (None: the default)
    spark_remote: str | None = None  # a server's meshNbSparkRemote: sc://host:port
    ledger: str | None = None  # meshNbPrivacy `ledger:`, a PostgreSQL URL (None: SQLite)
    notes: tuple["Problem", ...] = field(default=(), compare=False)  # not problems: deprecations

    @property
    def folder(self) -> Path:
        return self.path.parent

    def table(self, name: str) -> Table | None:
        for t in self.tables:
            if t.name == name:
                return t
        return None

    def purpose(self, name: str) -> Purpose | None:
        return self.purposes.get(name)
