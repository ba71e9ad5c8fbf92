"""What the rules share: the access mode, the CTEs to inline, the tables in scope (which
resolve columns and check their use under the purpose), and the :class:`Draft` each rule takes
and returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from ...contract.model import Column, Contract, Purpose, Table
from ...rules import violation
from .model import Aggregate, GroupKey, RowOutput, TableRef
from .trees import unique
from .whitelist import CONTEXT_IDENTIFIER_RULES


@dataclass(frozen=True)
class Mode:
    """What an access mode lets a query do with identifying columns."""

    access: str
    identifier_contexts: frozenset[str]  # where an allowed direct identifier may appear
    raw_generalized: bool  # may generalized quasi-identifiers be filtered/sorted raw


MODES = {
    "dp-aggregate": Mode("dp-aggregate", frozenset(), True),
    "pseudonymized-rows": Mode("pseudonymized-rows", frozenset({"output"}), False),
    "raw-rows": Mode("raw-rows", frozenset({"output", "where", "order"}), True),
}
ROW_ACCESS = ("pseudonymized-rows", "raw-rows")


@dataclass(frozen=True)
class Cte:
    """A CTE that filters and projects one contract table."""

    table: exp.Expression  # its FROM, a contract table once resolve_tables checked it
    key: str  # how its body names the table
    columns: tuple[tuple[str, exp.Expression], ...]  # (name, expr) as the body writes them
    star: bool  # SELECT * also projects every column of the table
    where: exp.Expression | None


@dataclass(frozen=True)
class Entry:
    """One table in scope: its contract and what it shows under its alias."""

    ref: TableRef
    table: Table
    contract: Contract
    purpose: Purpose
    visible: dict[str, exp.Expression] | None = None  # CTE outputs; None: the table's columns

    def column(self, name: str) -> Column | None:
        for c in self.table.columns:
            if c.name.lower() == name:
                return c
        return None

    def has(self, name: str) -> bool:
        return (self.column(name) if self.visible is None else self.visible.get(name)) is not None

    def qualified(self, col: Column) -> str:
        return f"{self.ref.product}.{self.ref.table}.{col.name}"


@dataclass(frozen=True)
class Source:
    """A qualified column of a checked expression and its contract column."""

    entry: Entry
    column: Column

    @property
    def qualified(self) -> str:
        return self.entry.qualified(self.column)

    @property
    def identifying(self) -> bool:
        return self.column.identifier or self.is_unit

    @property
    def is_unit(self) -> bool:
        return self.column.name == self.entry.contract.privacy_unit

    @property
    def allowed(self) -> bool:
        names = {n.lower() for n in self.entry.purpose.allowed_columns}
        return (self.column.name.lower() in names
                or f"{self.entry.ref.table}.{self.column.name}".lower() in names)


class Scope:
    """The tables of FROM/JOIN by the name the SQL uses for them; resolves and checks columns."""

    def __init__(self, entries: dict[str, Entry], mode: Mode, purpose: str):
        self.entries, self.mode, self.purpose = entries, mode, purpose
        self.filters: list[exp.Expression] = []  # CTE filters, qualified

    # -- names -> qualified expressions
    def qualify(self, expr: exp.Expression, context: str | None) -> exp.Expression:
        """A copy with every column qualified by alias (CTE outputs substituted), each use
        checked in ``context`` (``None``: resolve only)."""
        def resolve(node: exp.Expression) -> exp.Expression:
            return self._column(node, context) if isinstance(node, exp.Column) else node
        return expr.transform(resolve)

    def _column(self, node: exp.Column, context: str | None) -> exp.Expression:
        entry, name = self._lookup(node)
        if entry.visible is None:
            out: exp.Expression = exp.column(entry.column(name).name, table=entry.ref.alias)
        else:
            out = entry.visible[name].copy()
        if context:
            for src in self.sources(out):
                self.check(src, context)
        return out

    def _lookup(self, node: exp.Column) -> tuple[Entry, str]:
        name, qualifier = node.name.lower(), node.table
        if node.args.get("catalog"):
            cands = []
        elif node.db:
            cands = [e for k, e in self.entries.items() if k == qualifier
                     and (e.ref.product.lower(), e.ref.table.lower()) == (node.db, qualifier)]
        elif qualifier:
            if qualifier not in self.entries:
                raise violation("unknown-column", f"no table or alias `{qualifier}` in FROM "
                                f"(column `{name}`)", f"use one of: {', '.join(self.entries)}")
            cands = [self.entries[qualifier]]
        else:
            cands = [e for e in self.entries.values() if e.has(name)]
            if len(cands) > 1:
                raise violation("ambiguous-column", f"column `{name}` is in several tables")
        if not cands or not cands[0].has(name):
            raise violation("unknown-column", f"no table in FROM has a column `{name}`",
                            f"use one of: {', '.join(self._allowed_names())}")
        return cands[0], name

    def _allowed_names(self) -> list[str]:
        return list(unique(c for e in self.entries.values() for c in e.purpose.allowed_columns))

    # -- qualified expressions -> contract columns
    def sources(self, expr: exp.Expression) -> list[Source]:
        """The distinct contract columns a qualified expression reads."""
        out: dict[str, Source] = {}
        for col in expr.find_all(exp.Column, bfs=False):
            entry = self.by_alias(col.table)
            src = Source(entry, entry.column(col.name.lower()))
            out.setdefault(f"{entry.ref.alias}.{src.column.name}", src)
        return list(out.values())

    def by_alias(self, alias: str) -> Entry:
        return next(e for e in self.entries.values() if e.ref.alias == alias)

    def check(self, src: Source, context: str) -> None:
        """May this column be used this way under the purpose?"""
        col, contract = src.column, src.entry.contract
        if context == "join":
            if src.is_unit or col.name in contract.join_keys:
                return
            keys = ", ".join(unique((contract.privacy_unit, *contract.join_keys)))
            raise violation("join-key", f"`{col.name}` of {contract.name} is neither its privacy "
                            "unit nor a declared join key", f"join on one of: {keys}")
        if context == "count-distinct":
            if src.is_unit:
                return
            raise violation("count-distinct", f"COUNT(DISTINCT {col.name}) counts something other "
                            "than the privacy unit", f"use COUNT(DISTINCT {contract.privacy_unit}) "
                            f"or COUNT({col.name})")
        if src.identifying and context not in self.mode.identifier_contexts:
            if self.mode.access == "dp-aggregate":
                fix = ("direct identifiers never leave a DP query; the privacy unit may only be "
                       "joined on or counted with COUNT(DISTINCT ...)")
            else:
                fix = "identifiers may be selected (they come back as keyed tokens), not used here"
            raise violation(CONTEXT_IDENTIFIER_RULES[context], f"`{col.name}` of "
                            f"{contract.name} is a direct identifier", fix)
        if not src.allowed:
            raise violation("column-not-allowed", f"column `{col.name}` of {contract.name} is not "
                            f"allowed for purpose `{self.purpose}`",
                            f"use one of: {', '.join(src.entry.purpose.allowed_columns)}")
        if context in ("where", "order") and col.generalize and not self.mode.raw_generalized:
            raise violation("generalized-column", f"`{col.name}` is released generalized, so it "
                            "may not be filtered or sorted on raw values")


@dataclass(frozen=True)
class Draft:
    """A query under check: its tree, what it is checked against, and what the rules so far
    have found. Each rule takes a Draft and returns one with its part filled in; a field is
    ``None`` (or empty) until the rule named beside it has run."""

    tree: exp.Expression
    contracts: dict[str, Contract]
    purpose: str
    accepted: tuple[str, ...]  # the access modes the check serves
    select: exp.Select | None = None  # one_select
    mode: Mode | None = None  # access_mode
    ctes: dict[str, Cte] = field(default_factory=dict)  # inline_ctes
    scope: Scope | None = None  # resolve_tables
    joins: tuple[exp.Expression, ...] = ()  # join_conditions
    where: exp.Expression | None = None  # where_filter
    keys: tuple[tuple[exp.Expression, Source, tuple | None], ...] = ()  # group_by
    group_keys: tuple[GroupKey, ...] = ()  # select_list
    aggregates: tuple[Aggregate, ...] = ()  # select_list
    outputs: tuple[str, ...] = ()  # select_list
    index: dict[exp.Expression, str] = field(default_factory=dict)  # select_list
    rows: tuple[RowOutput, ...] = ()  # row_outputs
    having: exp.Expression | None = None  # having
    order: tuple[exp.Ordered, ...] = ()  # order_by, row_order
    limit: int | None = None  # limit_offset
    offset: int | None = None  # limit_offset

    @property
    def tables(self) -> tuple[TableRef, ...]:
        """The tables of FROM and JOIN, in order."""
        return tuple(e.ref for e in self.scope.entries.values())

    def columns(self, *exprs: exp.Expression | None) -> tuple[str, ...]:
        """Every contract column the joins, the WHERE and ``exprs`` read."""
        everything = [*self.joins, self.where, *exprs]
        return unique(s.qualified for e in everything if e is not None
                      for s in self.scope.sources(e))
