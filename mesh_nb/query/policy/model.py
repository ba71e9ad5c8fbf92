"""What a check returns: :class:`CheckedQuery`, :class:`CheckedRows` and their parts."""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from ...contract.model import Column

AGGREGATE_FUNCS = ("count", "count_col", "count_distinct_unit", "sum", "avg", "var", "stddev",
                   "median", "quantile")


@dataclass(frozen=True)
class TableRef:
    """One contract table in FROM or JOIN, under its alias."""

    product: str
    table: str
    alias: str
    privacy_unit: str


@dataclass(frozen=True)
class Aggregate:
    """One aggregate output; ``value`` reads columns qualified by table alias."""

    name: str
    func: str
    value: exp.Expression | None
    column: str | None
    bounds: tuple[float, float] | None = None
    quantile: float | None = None
    sample: bool = False


@dataclass(frozen=True)
class GroupKey:
    """One GROUP BY key; ``categories`` is its public value set when known."""

    name: str
    expr: exp.Expression
    column: str
    categories: tuple | None = None
    logical_type: str | None = None  # the column's contract type when the key is the bare column


@dataclass(frozen=True)
class CheckedQuery:
    """A dp-aggregate query the purpose allows, taken apart for the planner."""

    sql: str
    redacted: str
    query_hash: str
    purpose: str
    tables: tuple[TableRef, ...]
    joins: tuple[exp.Expression, ...]
    where: exp.Expression | None
    group_keys: tuple[GroupKey, ...]
    aggregates: tuple[Aggregate, ...]
    having: exp.Expression | None
    order: tuple[exp.Ordered, ...]
    limit: int | None
    offset: int | None
    outputs: tuple[str, ...]
    columns: tuple[str, ...]
    products: tuple[str, ...]

    @property
    def privacy_unit(self) -> dict[str, str]:
        """Table alias -> the privacy-unit column of its product."""
        return {t.alias: t.privacy_unit for t in self.tables}

    @property
    def output_kinds(self) -> dict[str, str]:
        """Output name -> ``"key"`` or ``"aggregate"``."""
        kinds = {k.name: "key" for k in self.group_keys}
        kinds.update({a.name: "aggregate" for a in self.aggregates})
        return {name: kinds[name] for name in self.outputs}


@dataclass(frozen=True)
class RowOutput:
    """One selected column of a row query and what the contract says about it."""

    name: str
    expr: exp.Column
    column: str
    source: Column
    identifying: bool


@dataclass(frozen=True)
class CheckedRows:
    """A row query the purpose allows; the caller tokenizes and generalizes the outputs."""

    sql: str
    redacted: str
    query_hash: str
    purpose: str
    access: str
    tables: tuple[TableRef, ...]
    joins: tuple[exp.Expression, ...]
    where: exp.Expression | None
    outputs: tuple[RowOutput, ...]
    order: tuple[exp.Ordered, ...]
    limit: int | None
    offset: int | None
    columns: tuple[str, ...]
    products: tuple[str, ...]
