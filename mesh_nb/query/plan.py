"""From a checked query to a plan: bounded, clamped exact aggregates in SQL plus their noise.

Each output aggregate is computed from *measurements*: exact per-group primitives the engine
computes (row count, non-null count, sum, sum of squares, a histogram over bins) to which the
release stage adds noise. Identical primitives are shared (COUNT(*) and the thresholding count
are one measurement), and the query's epsilon is split equally across distinct measurements.

Sensitivities follow from the contract: each privacy unit keeps at most ``k =
maxContributions`` rows (chosen at random, after joins), every value is clamped to its bounds,
so one person moves a count by at most ``k``, a sum by at most ``k * max(|lo|, |hi|)``, a
centered sum by ``k * (hi - lo) / 2`` and a rank by ``k``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import InitVar, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, TypeVar

from sqlglot import exp

from ..contract.model import Contract
from ..errors import PolicyViolation
from .policy import Aggregate, CheckedQuery, CheckedRows, GroupKey, TableRef
from .total import total

Q = TypeVar("Q", CheckedQuery, CheckedRows)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

HIST_BINS = 1000
CDF_BINS = 50  # coarse bins of the noisy histogram behind quantile intervals
CDF_WEIGHT = 0.25  # its share of epsilon relative to a quantile's exponential mechanism
ROWS, PRESENT = "__rows", "__present_"  # exact helper columns of the engine SQL (never released)
MECHANISMS = ("laplace", "gaussian")


@dataclass(frozen=True)
class Measurement:
    """One noisy primitive per group: ``kind`` is count | distinct | sum | hist | cdf.

    ``hist`` is the exact histogram an exponential mechanism picks a quantile from (one per
    quantile output); ``cdf`` the same histogram coarsened to :data:`CDF_BINS` bins with
    Geometric noise on each bin, from which quantile intervals are derived (one per value
    expression, shared by its quantiles).
    """

    name: str
    kind: str
    value: str | None  # SQL of the clamped (and centered) value; None for COUNT(*)
    sensitivity: float
    mechanism: str = "laplace"  # geometric | laplace | gaussian | exponential
    epsilon: float = 0.0
    delta: float = 0.0
    #: A sum the engine computes over the plain clamp (fast: no CASE, no centering) and that
    #: :func:`primitives` corrects exactly before any noise: a NULL the clamp turned into
    #: ``fill`` is taken out, and ``center`` is subtracted once per present value. ``present``
    #: is the SQL whose COUNT gives the present values (None: every row, a required column).
    center: float = 0.0
    fill: float = 0.0
    present: str | None = None
    #: Relative share of the query's epsilon (the epsilon is split in proportion to weights).
    weight: float = 1.0

    @property
    def corrected(self) -> bool:
        return self.kind == "sum" and bool(self.center or (self.fill and self.present))


@dataclass(frozen=True)
class Output:
    """How one released column is made from measurements."""

    name: str
    func: str
    parts: tuple[str, ...]
    bounds: tuple[float, float] | None = None
    quantile: float | None = None
    sample: bool = True


@dataclass(frozen=True)
class Plan:
    """Everything the engine and the release stage need, and what ``explain`` shows.

    ``query`` is the engine query as a sqlglot tree; each engine renders its own dialect from
    it. The fields are plain JSON-able values (the wire sends ``dataclasses.asdict(plan)``):
    ``sql`` is ``query`` rendered for DuckDB once, for explain and the wire, and the tree is
    an init-only argument kept off the fields. A plan rebuilt from its fields (the wire,
    ``dataclasses.replace``) parses ``sql`` back when its tree is asked for.
    """

    sql: str
    keys: tuple[str, ...]
    categories: tuple[tuple, ...] | None  # every group released (declared keys); None: threshold
    measurements: tuple[Measurement, ...]
    outputs: tuple[Output, ...]
    epsilon: float
    delta: float
    max_contributions: int
    threshold: float | None = None
    threshold_on: str | None = None
    columns: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    tree: InitVar[exp.Select | None] = None
    fallback: InitVar[Callable[[], exp.Select] | None] = None

    def __post_init__(self, tree: exp.Select | None,
                      fallback: Callable[[], exp.Select] | None) -> None:
        object.__setattr__(self, "_query", tree)
        object.__setattr__(self, "_fallback", fallback)

    @property
    def rests_on_unique(self) -> bool:
        """Does the plan skip contribution bounding on a declared-unique privacy unit?"""
        return self._fallback is not None

    @property
    def bounded_query(self) -> exp.Select | None:
        """For a plan that rests on a declared-unique privacy unit: the same query keeping at
        most one row per unit, to run instead when the data breaks the declaration (the
        plan's noise holds for both); None otherwise. Built on first use (rarely needed)."""
        if callable(self._fallback):
            object.__setattr__(self, "_fallback", self._fallback())
        return self._fallback

    @property
    def query(self) -> exp.Select:
        """The engine query: per-group exact primitives over the bounded rows."""
        if self._query is None:
            import sqlglot

            tree = sqlglot.parse_one(self.sql, read="duckdb")
            tree.meta[_RENDERED] = (id(tree), self.sql)
            object.__setattr__(self, "_query", tree)
        return self._query


def rendered(query: exp.Expression) -> str:
    """``query.sql("duckdb")``, rendered once per planned tree (kept in the tree's ``meta``
    with the tree's identity, so a copy, which may be rewritten, renders afresh; a planned
    tree itself is never changed after planning)."""
    mark = query.meta.get(_RENDERED)
    if mark is None or mark[0] != id(query):
        mark = query.meta[_RENDERED] = (id(query), query.sql("duckdb"))
    return mark[1]


_RENDERED = "mesh_nb.duckdb_sql"


def _number(x: float | int) -> exp.Expression:
    return exp.Literal.number(x)


def _least(a: exp.Expression, b: exp.Expression) -> exp.Least:
    """``LEAST(a, b)`` skipping NULLs (as DuckDB and Spark do; sqlglot's default does not)."""
    return exp.Least(this=a, expressions=[b], ignore_nulls=True)


def _greatest(a: exp.Expression, b: exp.Expression) -> exp.Greatest:
    return exp.Greatest(this=a, expressions=[b], ignore_nulls=True)


def clamp(value: exp.Expression, lo: float, hi: float, center: float = 0.0, *,
           nullable: bool = True) -> exp.Expression:
    """``value`` clamped to [lo, hi] (minus ``center``); NULL stays NULL.

    GREATEST and LEAST skip NULLs (in DuckDB and Spark alike), so without the CASE a missing
    value would count as ``lo`` in sums and averages. A column the contract declares
    ``required`` skips the CASE (a broken promise costs accuracy there, never privacy: the
    clamped value still lies within the bounds).
    """
    double = exp.Cast(this=value.copy(), to=exp.DataType.build("DOUBLE"))
    tree: exp.Expression = _least(_greatest(double, _number(lo)), _number(hi))
    if center:
        tree = exp.Paren(this=exp.Sub(this=tree, expression=_number(center)))
    if not nullable:
        return tree
    missing = exp.Is(this=exp.Paren(this=value.copy()), expression=exp.Null())
    return exp.Case(ifs=[exp.If(this=missing, true=exp.Null())], default=tree)


class _Builder:
    """Collects distinct measurements while outputs are planned; ``trees`` holds each one's
    value and present expressions (``Measurement`` keeps their DuckDB text for display)."""

    def __init__(self, k: int, contracts: dict[str, Contract], grouped: bool):
        self.k, self.contracts, self.grouped = k, contracts, grouped
        self.measurements: dict[tuple, Measurement] = {}
        self.trees: dict[str, tuple[exp.Expression | None, exp.Expression | None]] = {}

    def required(self, qualified: str | None) -> bool:
        """Does the contract promise the ``product.table.col`` is never null?"""
        if not qualified:
            return False
        product, table, column = qualified.split(".", 2)
        col = self.contracts[product].table(table).column(column)
        return bool(col and col.required)

    def add(self, kind: str, value: exp.Expression | None, sensitivity: float, *,
            output: str = "", present: exp.Expression | None = None, **correction: Any) -> str:
        """A measurement's name; an identical earlier one is reused (``output`` makes it the
        output's own: a draw that several outputs read must be one measurement)."""
        text = None if value is None else value.sql("duckdb")
        shown = None if present is None else present.sql("duckdb")
        if shown is not None:
            correction["present"] = shown
        key = (kind, text, output, tuple(sorted(correction.items())))
        if key not in self.measurements:
            name = f"m{len(self.measurements)}"
            self.measurements[key] = Measurement(name, kind, text, sensitivity, **correction)
            self.trees[name] = (value, present)
        return self.measurements[key].name

    def clamped_sum(self, agg: Aggregate, sensitivity: float, center: float = 0.0) -> str:
        """A sum of ``agg``'s clamped present values, minus ``center`` each (see Measurement)."""
        lo, hi = agg.bounds
        present = None if self.required(agg.column) else agg.value
        return self.add("sum", clamp(agg.value, lo, hi, nullable=False), sensitivity,
                        center=float(center), fill=float(lo), present=present)

    def count(self, value: exp.Expression | None = None) -> str:
        return self.add("count", value, self.k)

    def nonnull(self, agg: Aggregate) -> str:
        """The count of an aggregate's values: COUNT(*) when the contract promises no nulls."""
        if self.required(agg.column):
            return self.count()
        return self.count(agg.value)  # clamping never changes nullness

    def output(self, agg: Aggregate) -> Output:
        k = self.k
        if agg.func == "count":
            return Output(agg.name, "count", (self.count(),))
        if agg.func == "count_distinct_unit":  # one unit adds 1 to one group, or to k groups
            return Output(agg.name, "count",
                          (self.add("distinct", None, k if self.grouped else 1),))
        if agg.func == "count_col":
            return Output(agg.name, "count", (self.count(agg.value),))
        lo, hi = agg.bounds
        if agg.func == "sum":
            return Output(agg.name, "sum",
                          (self.clamped_sum(agg, k * max(abs(lo), abs(hi))),), agg.bounds)
        mid, half = (lo + hi) / 2, (hi - lo) / 2
        nullable = not self.required(agg.column)
        if agg.func == "avg":
            s1 = self.clamped_sum(agg, k * half, mid)
            return Output(agg.name, "avg", (s1, self.nonnull(agg)), agg.bounds)
        if agg.func in ("var", "stddev"):
            s1 = self.clamped_sum(agg, k * half, mid)
            centered = clamp(agg.value, lo, hi, mid, nullable=nullable)
            square = exp.Paren(this=exp.Mul(this=centered, expression=centered.copy()))
            s2 = self.add("sum", square, k * half * half)
            return Output(agg.name, agg.func, (s1, s2, self.nonnull(agg)), agg.bounds,
                          sample=agg.sample)
        if agg.func in ("median", "quantile"):
            q = 0.5 if agg.func == "median" else float(agg.quantile)
            offset = exp.Paren(this=exp.Sub(this=clamp(agg.value, lo, hi, nullable=nullable),
                                            expression=_number(lo)))
            floor = exp.Floor(this=exp.Div(this=offset, expression=_number((hi - lo) / HIST_BINS),
                                           typed=False, safe=False))
            bins = _least(exp.Cast(this=floor, to=exp.DataType.build("INTEGER")),
                          _number(HIST_BINS - 1))
            # Each quantile runs its own exponential mechanism on the histogram, so each is a
            # measurement of its own with its own share of epsilon (never shared by two).
            return Output(agg.name, "quantile", (self.add("hist", bins, k, output=agg.name),
                                                 self.add("cdf", bins, k, weight=CDF_WEIGHT)),
                          agg.bounds, q)
        raise PolicyViolation("unsupported-aggregate", f"aggregate `{agg.func}` has no DP plan",
                              "use COUNT, SUM, AVG, VAR, STDDEV, MEDIAN or QUANTILE")


def build_plan(q: CheckedQuery, contracts: dict[str, Contract], *, epsilon: float,
               delta: float, mechanism: str = "laplace", one_row_per_unit: bool = False) -> Plan:
    """Plan ``q`` for a query epsilon (and delta) with the chosen sum mechanism.

    ``one_row_per_unit``: the (single) table's contract declares one row per privacy unit, so
    sensitivities use one row and the engine SQL skips contribution bounding; the plan's
    :attr:`Plan.bounded_query` keeps at most one row per unit, for data that breaks the
    declaration.
    """
    if mechanism not in MECHANISMS:
        raise PolicyViolation("mechanism", f"unknown mechanism `{mechanism}`",
                              f"use one of: {', '.join(MECHANISMS)}")
    q = totalized(q, contracts)
    first = q.tables[0]
    k = 1 if one_row_per_unit else contracts[first.product].max_contributions
    b = _Builder(k, contracts, grouped=bool(q.group_keys))
    outputs = tuple(b.output(a) for a in q.aggregates)
    categories = _categories(q, contracts)
    threshold_on = None
    if categories is None:
        threshold_on = b.count()
        if delta <= 0:
            raise PolicyViolation(
                "threshold-needs-delta",
                "grouping by keys without declared categories releases only groups above a "
                "noisy threshold, which spends delta", "give --delta (e.g. 1e-7), or group by "
                "columns whose categories the contract declares")
    if mechanism == "gaussian" and delta <= 0:
        raise PolicyViolation("gaussian-needs-delta", "the Gaussian mechanism needs delta > 0",
                              "give --delta (e.g. 1e-7) or use --mechanism laplace")
    measured = list(b.measurements.values())
    unit = epsilon / math.fsum(m.weight for m in measured)
    gaussian_parts = [m for m in measured if m.kind == "sum" and mechanism == "gaussian"]
    threshold_delta = delta / 2 if gaussian_parts and categories is None else delta
    final = []
    for m in measured:
        if m.kind in ("count", "distinct", "cdf"):
            mech, d = "geometric", 0.0
        elif m.kind == "hist":
            mech, d = "exponential", 0.0
        elif mechanism == "gaussian":
            mech = "gaussian"
            d = (delta - (threshold_delta if categories is None else 0)) / len(gaussian_parts)
        else:
            mech, d = "laplace", 0.0
        final.append(replace(m, mechanism=mech, epsilon=unit * m.weight, delta=d))
    threshold = None
    if threshold_on is not None:
        scale = k / next(m.epsilon for m in final if m.name == threshold_on)
        threshold = k + scale * math.log(k / threshold_delta)
    notes = []
    for o in outputs:
        if o.func == "quantile":
            m = next(x for x in final if x.name == o.parts[0])
            rank = 2 * m.sensitivity / m.epsilon * math.log(HIST_BINS / 0.05)
            notes.append(f"{o.name}: exponential mechanism over {HIST_BINS} bins; with 95% "
                         f"probability its rank is within ±{rank:.0f} rows of the target rank")
    if threshold is not None:
        notes.append(f"group keys without declared categories: only groups whose noisy count "
                     f"passes the threshold {threshold:.1f} are released (spends delta "
                     f"{threshold_delta:g})")
    others = [g.name for g in q.group_keys if _declared(g) is not None]
    if categories is not None and others:
        notes.append(f"rows whose {', '.join(others)} is outside the declared categories or "
                     "missing are released together as the last group (keys NULL)")
    used_delta = delta if (categories is None or gaussian_parts) else 0.0
    if one_row_per_unit:
        notes.append("one row per privacy unit (declared unique): each unit counts at most "
                     "once")
    query = _query(q, k, final, b.trees, bounded=not one_row_per_unit)
    fallback = (lambda: _query(q, k, final, b.trees)) if one_row_per_unit else None
    return Plan(rendered(query), tuple(g.name for g in q.group_keys), categories,
                tuple(final), outputs, epsilon, used_delta, k, threshold, threshold_on,
                tuple(q.columns), tuple(notes), tree=query, fallback=fallback)


def _declared(g: GroupKey) -> tuple | None:
    """The declared value set of a bare-column key (its categories, or a boolean's two)."""
    if not isinstance(g.expr, exp.Column):
        return None
    if g.categories is None and g.logical_type == "boolean":
        return (False, True)
    return g.categories


def _categories(q: CheckedQuery, contracts: dict[str, Contract]) -> tuple[tuple, ...] | None:
    """The full cross product of declared group keys (``((),)`` with no GROUP BY).

    When a key is a bare column with a declared set, one more group comes last: all keys
    ``None``. The release stage merges every engine group with a value outside its key's set,
    or a missing one, into it (exactly, before noise), so such rows are released as one noisy
    group instead of vanishing.
    """
    sets = []
    for g in q.group_keys:
        cats = _declared(g) if _declared(g) is not None else g.categories
        if cats is None:
            return None
        sets.append(tuple(cats))
    groups = list(itertools.product(*sets))
    other = (None,) * len(q.group_keys)
    if any(_declared(g) is not None for g in q.group_keys) and other not in groups:
        groups.append(other)
    return tuple(groups)


def column_types(tables: tuple[TableRef, ...], contracts: dict[str, Contract]
                 ) -> dict[str, str]:
    """``alias.column`` -> the contract's logicalType, for every table of a query."""
    return {f"{t.alias}.{c.name}".lower(): c.logical_type for t in tables
            for c in contracts[t.product].table(t.table).columns}


def totalized(q: Q, contracts: dict[str, Contract]) -> Q:
    """``q`` with every expression the engine evaluates on a row made total (see
    :mod:`.total`): no value can make the engine raise. Works on a checked aggregate or row
    query (its WHERE, join conditions, group keys and aggregate arguments)."""
    types = column_types(q.tables, contracts)
    changes: dict[str, Any] = {
        "where": None if q.where is None else total(q.where, types, predicate=True),
        "joins": tuple(total(on, types, predicate=True) for on in q.joins)}
    if isinstance(q, CheckedQuery):
        changes["group_keys"] = tuple(replace(g, expr=total(g.expr, types))
                                      for g in q.group_keys)
        changes["aggregates"] = tuple(a if a.value is None else
                                      replace(a, value=total(a.value, types))
                                      for a in q.aggregates)
    return replace(q, **changes)


def _quoted(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def from_where(tables: tuple[TableRef, ...], joins: tuple[exp.Expression, ...],
               where: exp.Expression | None) -> exp.Select:
    """``SELECT FROM product.table AS alias JOIN ... ON ... WHERE ...`` of a checked query: a
    SELECT without projections yet (add them with ``.select(..., copy=False)``)."""
    def table(t: TableRef) -> exp.Table:
        return exp.Table(this=_quoted(t.table), db=_quoted(t.product),
                         alias=exp.TableAlias(this=_quoted(t.alias)))

    select = exp.Select().from_(table(tables[0]), copy=False)
    for t, on in zip(tables[1:], joins):
        select = select.join(table(t), on=on.copy(), copy=False)
    return select if where is None else select.where(where.copy(), copy=False)


def at_most(rows: exp.Select, k: int) -> exp.Select:
    """``rows`` (which project the privacy unit as ``__unit`` and a uniform draw as ``__r``)
    keeping at most ``k`` random rows of each unit: the contribution bound."""
    order = exp.Order(expressions=[exp.Ordered(this=exp.column("__r"), nulls_first=False)])
    window = exp.Window(this=exp.RowNumber(), partition_by=[exp.column("__unit")],
                        order=order, over="OVER")
    numbered = exp.select(exp.Star(), exp.alias_(window, "__rn")).from_(
        rows.subquery(copy=False), copy=False)
    return exp.select(exp.Star()).from_(numbered.subquery(copy=False), copy=False).where(
        exp.LTE(this=exp.column("__rn"), expression=_number(k)), copy=False)


def unit_columns(t0: TableRef, *, draw: bool = True) -> list[exp.Expression]:
    """The privacy unit of the first table as ``__unit`` (and a uniform draw as ``__r``): the
    first projections of rows that :func:`at_most` bounds."""
    columns: list[exp.Expression] = [
        exp.alias_(exp.column(t0.privacy_unit, table=t0.alias, quoted=True), "__unit")]
    if draw:
        columns.append(exp.alias_(exp.Rand(), "__r"))
    return columns


def _query(q: CheckedQuery, k: int, measurements: list[Measurement],
           trees: dict[str, tuple[exp.Expression | None, exp.Expression | None]], *,
           bounded: bool = True) -> exp.Select:
    """Engine query: per unit at most k random rows after joins, then exact per-group
    primitives (``trees``: each measurement's value and present expressions).

    The policy accepts only joins that equate every joined table's privacy unit with the first
    table's (rule ``join-unit``), so every joined row belongs to one person and one window
    filter on the first table's unit bounds everyone's contribution.
    """
    t0 = q.tables[0]
    source = histogram_sources(measurements)
    measurements = [m for m in measurements if source.get(m.name, m.name) == m.name]
    columns = unit_columns(t0, draw=bounded)
    columns += [exp.alias_(g.expr.copy(), g.name, quoted=True) for g in q.group_keys]
    columns += [exp.alias_(trees[m.name][0].copy(), f"v_{m.name}", quoted=True)
                for m in measurements if m.value is not None]
    columns += [exp.alias_(trees[m.name][1].copy(), f"p_{m.name}", quoted=True)
                for m in measurements if m.corrected and m.present is not None]
    rows = from_where(q.tables, q.joins, q.where).select(*columns, copy=False)
    if bounded:
        rows = at_most(rows, k)

    def named(agg: exp.Expression, name: str) -> exp.Alias:
        return exp.alias_(agg, name, quoted=True)

    def value(m: Measurement) -> exp.Column:
        return exp.column(f"v_{m.name}", quoted=True)

    aggs = []
    for m in measurements:
        if m.kind == "count":
            aggs.append(named(exp.Count(this=value(m) if m.value is not None else exp.Star()),
                              m.name))
        elif m.kind == "distinct":
            aggs.append(named(exp.Count(this=exp.Distinct(expressions=[exp.column("__unit")])),
                              m.name))
        elif m.kind == "sum":
            aggs.append(named(exp.Coalesce(this=exp.Sum(this=value(m)),
                                           expressions=[_number(0)]), m.name))
        else:
            aggs.append(named(exp.Anonymous(this="histogram", expressions=[value(m)]), m.name))
    if any(m.corrected for m in measurements):
        aggs.append(named(exp.Count(this=exp.Star()), ROWS))
        aggs += [named(exp.Count(this=exp.column(f"p_{m.name}", quoted=True)),
                       f"{PRESENT}{m.name}")
                 for m in measurements if m.corrected and m.present is not None]
    names = [exp.column(g.name, quoted=True) for g in q.group_keys]
    query = exp.select(*names, *aggs).from_(rows.subquery(copy=False), copy=False)
    return query.group_by(*(n.copy() for n in names), copy=False) if names else query


def histogram_sources(measurements: "Iterable[Measurement]") -> dict[str, str]:
    """Histogram measurements (hist, cdf) over the same bins -> the one the engine computes."""
    first: dict[str | None, str] = {}
    return {m.name: first.setdefault(m.value, m.name) for m in measurements
            if m.kind in ("hist", "cdf")}


def columns_of(answer: "pd.DataFrame | Mapping[str, Any]") -> "dict[str, np.ndarray]":
    """An engine's answer (a DataFrame, or named arrays such as DuckDB's ``fetchnumpy``) as
    plain numpy columns: a masked array's missing values become None (objects)."""
    import numpy as np

    items = (answer.items() if isinstance(answer, Mapping) else
             ((c, answer[c].to_numpy()) for c in answer.columns))
    out = {}
    for name, values in items:
        if isinstance(values, np.ma.MaskedArray):
            mask = np.ma.getmaskarray(values)
            if mask.any():
                plain = values.data.astype(object)
                plain[mask] = None
                values = plain
            else:
                values = values.data
        out[str(name)] = np.asarray(values)
    return out


def floats(values: "np.ndarray") -> "np.ndarray":
    """A numeric column as float64, None (a missing value) as NaN."""
    import numpy as np

    if values.dtype == object:
        return np.array([np.nan if v is None else v for v in values], dtype=float)
    return values.astype(float)


def primitives(plan: Plan, exact: "pd.DataFrame | Mapping[str, Any]") -> "dict[str, np.ndarray]":
    """The plan's exact primitives from the engine's answer, as numpy columns: corrected sums
    (see :class:`Measurement`), shared histograms copied to each measurement, helper columns
    dropped. Runs before any noise is added."""
    out = columns_of(exact)
    for name, src in histogram_sources(plan.measurements).items():
        out[name] = out[src]
    rows = out.pop(ROWS, None)
    if rows is None:
        return out
    rows = floats(rows)
    for m in plan.measurements:
        if m.corrected:
            present = floats(out[f"{PRESENT}{m.name}"]) if m.present is not None else rows
            out[m.name] = floats(out[m.name]) - m.fill * (rows - present) - m.center * present
    return {c: v for c, v in out.items() if not c.startswith(PRESENT)}
