"""The whitelist checker: does a query only ask what the bound purpose allows?

:func:`check` serves ``dp-aggregate`` purposes and returns a :class:`CheckedQuery`;
:func:`check_rows` serves ``pseudonymized-rows`` and ``raw-rows`` purposes and returns a
:class:`CheckedRows`. Both raise :class:`~mesh_nb.errors.PolicyViolation` naming one rule of
:data:`RULES` and how to fix the query. Messages name columns, tables, functions and clauses,
never a value written in the query.

Stages, each a function with expression trees between them::

    parse -> statement (one SELECT) -> clauses -> CTEs -> tables (scope) -> node whitelist
          -> joins -> WHERE -> [dp] GROUP BY -> select list -> HAVING / ORDER BY / LIMIT
                    -> [rows] select list -> ORDER BY / LIMIT

Choices worth knowing:

* **CTEs** are inlined. A CTE may read one contract table and only filter (``WHERE``) and
  project (columns, ``*``, scalar expressions); each reference becomes the contract table under
  the reference's alias, its projections are substituted into the main query and its filter is
  ANDed into the main ``WHERE``. Anything else in a CTE (joins, grouping, aggregates, ``LIMIT``,
  another CTE, ``RECURSIVE``) is rule ``cte``. Subqueries are never inlined (rule ``subquery``).
* **Columns** in every returned expression are qualified by their table alias
  (``a.monthly_spend``), so a planner can clamp them; ``columns`` lists every contract column
  touched as ``product.table.column``.
* **The privacy unit** may appear without being an allowed column only in join conditions and
  in ``COUNT(DISTINCT unit)``. Declared join keys may appear in join conditions. Other direct
  identifiers, and the unit, are rejected everywhere else in a dp-aggregate query.
* **Aggregate bounds** come from interval arithmetic over the contract bounds: ``+ - * /``,
  unary minus, ABS, ROUND/FLOOR/CEIL/TRUNC, LEAST/GREATEST, COALESCE, CASE/IF (the hull of the
  branches; conditions may read the same column), casts to numbers (a boolean cast counts as
  0..1). An aggregate reads at most one source column. The planner clamps the value (or the
  column) to ``bounds``.
* **Group keys**: ``categories`` is the key's public value set: the declared categories of a
  bare column, ``(False, True)`` for a bare boolean column, the literal THEN/ELSE values of a
  CASE bucket (plus ``None`` when there is no ELSE); ``None`` when unknown (the planner then
  thresholds). A key expression reads exactly one column.
* **HAVING and ORDER BY** are post-processing: they may use the outputs (by name, by position
  in ORDER BY, or as written in the select list) and are returned rewritten over output names,
  to be applied to the released frame; :func:`on_outputs` renders them as SQL for that.
* In ``pseudonymized-rows`` outputs are bare columns (identifiers are tokenized by the caller,
  quasi-identifiers generalized); identifiers and generalized quasi-identifiers may not be
  filtered or sorted on raw values. ``raw-rows`` lets allowed columns be used anywhere.

Result fields:

* :class:`TableRef` ``(product, table, alias, privacy_unit)`` — one table of FROM/JOIN.
* :class:`Aggregate` ``(name, func, value, column, bounds, quantile, sample)`` — ``func`` one
  of :data:`AGGREGATE_FUNCS`; ``value`` the argument over qualified columns (``None`` for
  COUNT(*)); ``column`` the source column ``product.table.column`` or ``None``; ``bounds`` the
  interval of ``value`` for sum/avg/var/stddev/median/quantile; ``quantile`` in [0, 1] for
  median (0.5) and quantile; ``sample`` True for VAR_SAMP/VARIANCE/STDDEV/STDDEV_SAMP.
* :class:`GroupKey` ``(name, expr, column, categories, logical_type)``.
* :class:`CheckedQuery` ``(sql, redacted, query_hash, purpose, tables, joins, where,
  group_keys, aggregates, having, order, limit, offset, outputs, columns, products)`` with
  ``privacy_unit`` ({alias: unit column}) and ``output_kinds`` as properties. ``joins[i]`` is
  the ON condition of ``tables[i + 1]``.
* :class:`RowOutput` ``(name, expr, column, source, identifying)`` and :class:`CheckedRows`
  ``(sql, redacted, query_hash, purpose, access, tables, joins, where, outputs, order, limit,
  offset, columns, products)``; its ORDER BY is over qualified source columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator

from sqlglot import exp

from ..contract.model import Column, Contract, Purpose, Table
from ..errors import PolicyViolation
from .parse import parse, redact_tree, sql_text, tree_hash

# --------------------------------------------------------------------------- rules

RULES: dict[str, str] = {
    "parse": "sqlglot cannot parse the query",
    "one-statement": "more than one statement",
    "forbidden-statement": "a statement other than SELECT (ATTACH, COPY, PRAGMA, SET, DDL, DML...)",
    "set-operation": "UNION, INTERSECT or EXCEPT",
    "select-distinct": "SELECT DISTINCT",
    "unsupported-syntax": "a clause or expression outside the whitelist",
    "parameter": "a query parameter",
    "window-function": "a window function, WINDOW or QUALIFY",
    "cte": "a CTE that does more than filter and project one contract table",
    "subquery": "a subquery",
    "table-function": "a table function in FROM (read_csv, read_parquet, glob...)",
    "file-access": "a file path in FROM",
    "system-catalog": "a system catalog (information_schema, duckdb_*, pg_catalog, sqlite_master)",
    "unknown-table": "a table that is not `product.table` of a bound contract",
    "product-not-bound": "a product that is not bound in the session",
    "purpose-not-allowed": "a product that does not declare the bound purpose",
    "access-mode": "the purpose's access mode does not serve this kind of query",
    "duplicate-alias": "two tables under one alias",
    "no-table": "no contract table in FROM",
    "select-star": "SELECT * or table.*",
    "unknown-function": "a function outside the whitelist",
    "unsupported-aggregate": "an aggregate outside the whitelist (MIN, MAX, LIST...)",
    "aggregate-filter": "FILTER (WHERE ...) on an aggregate",
    "join-type": "a join other than INNER (LEFT, RIGHT, FULL, SEMI, ANTI, ASOF, NATURAL...)",
    "cross-join": "a cross join or a join without ON",
    "join-key": "a join condition other than equality of privacy units or declared join keys",
    "unknown-column": "a column no table in FROM has",
    "ambiguous-column": "an unqualified column several tables have",
    "column-not-allowed": "a column outside the purpose's allowedColumns",
    "identifier-in-output": "a direct identifier (or the privacy unit) in the select list",
    "identifier-in-where": "a direct identifier (or the privacy unit) in WHERE",
    "identifier-in-aggregate": "a direct identifier (or the privacy unit) inside an aggregate",
    "identifier-in-order": "a direct identifier in ORDER BY of a pseudonymized row query",
    "group-by-identifier": "a direct identifier (or the privacy unit) in GROUP BY",
    "generalized-column": "a generalized quasi-identifier filtered or sorted on raw values",
    "aggregate-in-where": "an aggregate in WHERE",
    "aggregate-in-group-by": "an aggregate in GROUP BY",
    "grouping-sets": "ROLLUP, CUBE or GROUPING SETS",
    "group-by-position": "GROUP BY position out of range",
    "group-by-constant": "a GROUP BY key that reads no column",
    "group-by-expression": "a GROUP BY key that reads several columns",
    "non-aggregated-output": "an output that is neither a group key nor an aggregate",
    "expression-over-aggregate": "an output that computes on an aggregate",
    "no-aggregate": "a dp-aggregate query without an aggregate",
    "nested-aggregate": "an aggregate of an aggregate",
    "distinct-aggregate": "DISTINCT inside an aggregate other than COUNT",
    "count-distinct": "COUNT(DISTINCT x) of something other than the privacy unit",
    "aggregate-columns": "an aggregate over several columns",
    "non-numeric-aggregate": "a numeric aggregate over a non-numeric value",
    "unbounded-column": "a numeric aggregate over a column without contract bounds",
    "unbounded-expression": "a numeric aggregate whose value has no finite bounds",
    "aggregate-expression": "an aggregate over an expression without interval arithmetic",
    "quantile-argument": "a quantile that is not one number in [0, 1]",
    "duplicate-output": "two outputs with one name",
    "having-not-output": "HAVING over something other than the outputs",
    "order-by-not-output": "ORDER BY over something other than the outputs",
    "limit": "LIMIT or OFFSET that is not a non-negative integer",
    "rows-aggregate": "aggregation in a row query",
    "row-output": "an expression output in a row query",
}


def _reject(rule: str, what: str, fix: str) -> PolicyViolation:
    assert rule in RULES, rule
    return PolicyViolation(rule, what, fix)


# --------------------------------------------------------------------------- results

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


# --------------------------------------------------------------------------- whitelists


def _classes(*names: str) -> tuple[type, ...]:
    """sqlglot expression classes by name, skipping those this sqlglot version lacks."""
    return tuple(getattr(exp, n) for n in names if hasattr(exp, n))


SCALAR_FUNCTIONS = _classes(
    # dates and times
    "TimestampTrunc", "DateTrunc", "Year", "Month", "Day", "Quarter", "Week", "DayOfWeek",
    "DayOfWeekIso", "DayOfYear", "DayOfMonth", "Hour", "Minute", "Extract", "DateDiff",
    "DateAdd", "DateSub", "LastDay", "Monthname", "Dayname", "TimeToStr", "StrToTime",
    "StrToDate", "CurrentDate", "CurrentTimestamp", "DateFromParts", "TimeToUnix",
    # numbers
    "Abs", "Round", "Floor", "Ceil", "Trunc", "Sign", "Sqrt", "Cbrt", "Ln", "Log", "Exp", "Pow",
    "Least", "Greatest", "IsNan", "IsInf",
    # strings
    "Lower", "Upper", "Length", "Substring", "Trim", "Left", "Right", "Concat", "StartsWith",
    "EndsWith", "Contains", "Replace", "Pad", "RegexpLike",
    # logic and types
    "Case", "If", "Coalesce", "Nullif", "Cast", "TryCast",
)
# DuckDB functions sqlglot leaves as exp.Anonymous.
ANONYMOUS_SCALARS = frozenset({"date_part", "datepart", "prefix", "suffix", "strlen",
                               "round_even", "isfinite", "isinf"})

EXPRESSION_NODES = _classes(
    "Column", "Identifier", "Literal", "Boolean", "Null", "Paren", "Neg", "Not", "And", "Or",
    "EQ", "NEQ", "GT", "GTE", "LT", "LTE", "NullSafeEQ", "NullSafeNEQ", "Is", "In", "Between",
    "Like", "ILike", "Escape", "Add", "Sub", "Mul", "Div", "IntDiv", "Mod", "DPipe", "DataType",
    "DataTypeParam", "Var", "Interval", "Alias", "Distinct", "Ordered", "Order", "WithinGroup",
    "Tuple", "Array",
)

# Nodes that are harmless only in one place (an Identifier elsewhere could name a column).
_PLACED: tuple[tuple[type, Callable[[exp.Expression], bool]], ...] = (
    (exp.Identifier, lambda n: isinstance(n.parent, (exp.Column, exp.Alias))),
    (exp.Var, lambda n: n.arg_key == "unit" or isinstance(n.parent, exp.Extract)),
    (exp.Alias, lambda n: isinstance(n.parent, exp.Select)),
    (exp.Order, lambda n: isinstance(n.parent, exp.WithinGroup)),
    (exp.Ordered, lambda n: isinstance(n.parent, exp.Order)),
    (exp.Distinct, lambda n: isinstance(n.parent, exp.AggFunc)),
    (exp.DataType, lambda n: isinstance(n.parent, (exp.Cast, exp.DataType))),
    (exp.DataTypeParam, lambda n: isinstance(n.parent, exp.DataType)),
)

_NODE_RULES: tuple[tuple[type | tuple[type, ...], str, str, str], ...] = (
    (exp.Window, "window-function", "window functions compute over raw rows",
     "aggregate with GROUP BY; order or rank the released frame in pandas"),
    (exp.Subquery, "subquery", "subqueries are not allowed",
     "query the contract tables directly; put filters in WHERE, or use a CTE that filters"),
    (exp.Select, "subquery", "subqueries are not allowed",
     "query the contract tables directly; put filters in WHERE"),
    (exp.Exists, "subquery", "EXISTS subqueries are not allowed", "join on the privacy unit"),
    (exp.SetOperation, "set-operation", "UNION, INTERSECT and EXCEPT are not allowed",
     "send each SELECT on its own and combine the released frames in pandas"),
    (exp.Filter, "aggregate-filter", "FILTER (WHERE ...) on an aggregate is not supported",
     "put the condition in WHERE, or aggregate a CASE WHEN ... END"),
    (_classes("Rollup", "Cube", "GroupingSets"), "grouping-sets",
     "ROLLUP, CUBE and GROUPING SETS are not supported", "send one query per grouping"),
    (exp.Placeholder, "parameter", "query parameters are not supported",
     "write the values into the query"),
    (exp.Parameter, "parameter", "query parameters are not supported",
     "write the values into the query"),
)

SELECT_CLAUSES = frozenset({"expressions", "from_", "joins", "where", "group", "having",
                            "order", "limit", "offset", "with_"})
_CLAUSE_RULES: dict[str, tuple[str, str, str]] = {
    "qualify": ("window-function", "QUALIFY filters on window functions over raw rows",
                "filter released values with HAVING"),
    "windows": ("window-function", "WINDOW clauses define window functions over raw rows",
                "aggregate with GROUP BY"),
    "distinct": ("select-distinct", "SELECT DISTINCT is not supported",
                 "GROUP BY the columns and aggregate"),
    "into": ("forbidden-statement", "SELECT INTO writes a table", "drop the INTO clause"),
}
TABLE_ARGS = frozenset({"this", "db", "catalog", "alias"})

SYSTEM_SCHEMAS = frozenset({"information_schema", "pg_catalog", "system", "temp"})
SYSTEM_PREFIXES = ("duckdb_", "pragma_", "pg_", "sqlite_")

_CONTEXT_IDENTIFIER_RULES = {
    "output": "identifier-in-output", "where": "identifier-in-where",
    "aggregate": "identifier-in-aggregate", "group": "group-by-identifier",
    "order": "identifier-in-order",
}


@dataclass(frozen=True)
class _AggSpec:
    """How one sqlglot aggregate class maps to an :class:`Aggregate`."""

    func: str
    sample: bool = False
    quantile: float | None = None
    quantile_arg: str | None = None  # argument holding q, for QUANTILE / PERCENTILE_*


AGGREGATES: dict[type, _AggSpec] = {
    exp.Count: _AggSpec("count"),
    exp.Sum: _AggSpec("sum"),
    exp.Avg: _AggSpec("avg"),
    exp.Variance: _AggSpec("var", sample=True),
    exp.VariancePop: _AggSpec("var"),
    exp.Stddev: _AggSpec("stddev", sample=True),
    exp.StddevSamp: _AggSpec("stddev", sample=True),
    exp.StddevPop: _AggSpec("stddev"),
    exp.Median: _AggSpec("median", quantile=0.5),
    exp.Quantile: _AggSpec("quantile", quantile_arg="quantile"),
    exp.PercentileCont: _AggSpec("quantile", quantile_arg="expression"),
    exp.PercentileDisc: _AggSpec("quantile", quantile_arg="expression"),
}
_SUPPORTED = ("COUNT(*), COUNT(col), COUNT(DISTINCT unit), SUM, AVG, VAR_SAMP/VAR_POP, "
              "STDDEV_SAMP/STDDEV_POP, MEDIAN, QUANTILE_CONT(col, q)")


# --------------------------------------------------------------------------- modes


@dataclass(frozen=True)
class _Mode:
    """What an access mode lets a query do with identifying columns."""

    access: str
    identifier_contexts: frozenset[str]  # where an allowed direct identifier may appear
    raw_generalized: bool  # may generalized quasi-identifiers be filtered/sorted raw


_MODES = {
    "dp-aggregate": _Mode("dp-aggregate", frozenset(), True),
    "pseudonymized-rows": _Mode("pseudonymized-rows", frozenset({"output"}), False),
    "raw-rows": _Mode("raw-rows", frozenset({"output", "where", "order"}), True),
}
ROW_ACCESS = ("pseudonymized-rows", "raw-rows")


def _mode(contracts: dict[str, Contract], purpose: str, accepted: tuple[str, ...]) -> _Mode:
    """The access mode the bound products declare for ``purpose``, if this check serves it."""
    if not contracts:
        raise _reject("product-not-bound", "no product is bound in this session",
                      "bind a product with a purpose first")
    modes = {c.purposes[purpose].access for c in contracts.values() if purpose in c.purposes}
    if not modes:
        raise _reject("purpose-not-allowed", f"no bound product declares purpose `{purpose}`",
                      "bind the session to a purpose the products declare")
    if len(modes) > 1:
        raise _reject("access-mode", f"the bound products declare purpose `{purpose}` with "
                      f"different access modes ({', '.join(sorted(modes))})",
                      "ask the owners to align the purpose, or bind one product")
    access = modes.pop()
    if access not in accepted:
        kind = "aggregate" if access == "dp-aggregate" else "row"
        raise _reject("access-mode", f"purpose `{purpose}` grants {access} access, not this "
                      "kind of query", f"send a {kind} query, as the purpose allows")
    return _MODES[access]


# --------------------------------------------------------------------------- helpers


def _is_aggregate(node: exp.Expression) -> bool:
    return isinstance(node, (exp.AggFunc, exp.WithinGroup))


def _has_aggregate(node: exp.Expression) -> bool:
    return any(_is_aggregate(n) for n in node.walk())


def _conjuncts(cond: exp.Expression) -> Iterator[exp.Expression]:
    cond = cond.unnest()
    if isinstance(cond, exp.And):
        yield from _conjuncts(cond.this)
        yield from _conjuncts(cond.expression)
    else:
        yield cond


def _int_literal(node: exp.Expression | None) -> int | None:
    if isinstance(node, exp.Literal) and node.is_int:
        return int(node.this)
    return None


def _literal_value(node: exp.Expression) -> object:
    """A constant CASE branch as a Python value; raises ValueError when not a constant."""
    node = node.unnest()
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Literal):
        return node.this if node.is_string else (int(node.this) if node.is_int
                                                 else float(node.this))
    raise ValueError("not a literal")


def _unique(items: Iterable) -> tuple:
    return tuple(dict.fromkeys(items))


def _func_name(node: exp.Func) -> str:
    return (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()


def _display(node: exp.Expression, index: int) -> str:
    """A name for an output in messages, never a literal from the query."""
    if isinstance(node, exp.Alias):
        return node.alias
    if isinstance(node, exp.Column):
        return node.name
    return f"output {index + 1}"


# --------------------------------------------------------------------------- statement


def _statement(tree: exp.Expression) -> exp.Select:
    """The one SELECT of the query."""
    while isinstance(tree, (exp.Subquery, exp.Paren)) and not tree.alias:
        tree = tree.this
    if isinstance(tree, exp.Select):
        return tree
    if isinstance(tree, exp.SetOperation):
        raise _reject("set-operation", f"{tree.key.upper()} combines several queries",
                      "send each SELECT on its own and combine the released frames in pandas")
    kind = str(tree.this).upper() if isinstance(tree, exp.Command) else tree.key.upper()
    raise _reject("forbidden-statement", f"`{kind}` statements are not allowed, only SELECT",
                  "send one SELECT over contract tables named `product.table`")


def _clauses(select: exp.Select) -> None:
    """Only the clauses the whitelist knows."""
    for key, value in select.args.items():
        if key in SELECT_CLAUSES or value is None or value is False or value == []:
            continue
        rule, what, fix = _CLAUSE_RULES.get(key, (
            "unsupported-syntax", f"the `{key}` clause is not supported",
            "use SELECT ... FROM ... [JOIN] [WHERE] [GROUP BY] [HAVING] [ORDER BY] [LIMIT]"))
        raise _reject(rule, what, fix)


def _walk(node: exp.Expression | None) -> None:
    """Every node is a whitelisted expression or function."""
    if node is None:
        return
    for n in node.walk():
        for klass, rule, what, fix in _NODE_RULES:
            if isinstance(n, klass):
                raise _reject(rule, what, fix)
        if isinstance(n, exp.Star):
            if not isinstance(n.parent, exp.Count):
                raise _reject("select-star", "SELECT * is not allowed",
                              "name the columns (and aggregate them)")
        elif isinstance(n, EXPRESSION_NODES):  # before Func: AND, OR are sqlglot Funcs too
            if not all(placed(n) for klass, placed in _PLACED if isinstance(n, klass)):
                raise _reject("unsupported-syntax", f"`{n.key}` is not supported here",
                              "use columns, literals, comparisons, arithmetic, CASE and the "
                              "whitelisted functions")
        elif isinstance(n, exp.Func):
            _check_function(n)
        else:
            raise _reject("unsupported-syntax", f"`{n.key}` expressions are not supported",
                          "use columns, literals, comparisons, arithmetic, CASE and the "
                          "whitelisted functions")


def _check_function(node: exp.Func) -> None:
    if type(node) in AGGREGATES or isinstance(node, SCALAR_FUNCTIONS):
        return
    name = _func_name(node)
    if isinstance(node, exp.AggFunc):
        raise _reject("unsupported-aggregate", f"aggregate `{name}` is not supported",
                      f"use {_SUPPORTED}")
    if isinstance(node, exp.Anonymous) and name in ANONYMOUS_SCALARS:
        return
    raise _reject("unknown-function", f"function `{name}` is not on the whitelist",
                  "use comparisons, arithmetic, CASE, CAST, date_trunc/year/month, "
                  "lower/upper/substring, round/floor/abs, coalesce")


def _parts(select: exp.Select) -> Iterator[exp.Expression | None]:
    """The expression parts of a SELECT (not its FROM)."""
    yield from select.expressions
    for key in ("where", "having"):
        clause = select.args.get(key)
        yield clause.this if clause else None
    for key in ("group", "order"):
        clause = select.args.get(key)
        yield from (clause.expressions if clause else ())
    for join in select.args.get("joins") or []:
        yield join.args.get("on")


# --------------------------------------------------------------------------- CTEs


@dataclass(frozen=True)
class _Cte:
    """A CTE that filters and projects one contract table."""

    table: exp.Expression  # its FROM, a contract table once _table_entry has checked it
    key: str  # how its body names the table
    columns: tuple[tuple[str, exp.Expression], ...]  # (name, expr) as the body writes them
    star: bool  # SELECT * also projects every column of the table
    where: exp.Expression | None


def _ctes(select: exp.Select) -> dict[str, _Cte]:
    with_ = select.args.get("with_")
    if not with_:
        return {}
    if with_.args.get("recursive"):
        raise _reject("cte", "recursive CTEs are not allowed",
                      "a CTE may only filter and project one contract table")
    out: dict[str, _Cte] = {}
    for cte in with_.expressions:
        out[cte.alias] = _cte(cte, set(out))
    return out


def _cte(cte: exp.CTE, earlier: set[str]) -> _Cte:
    name, body = cte.alias, cte.this
    fix = ("a CTE may only filter (WHERE) and project columns of one contract table; write the "
           "rest in the main query")
    if isinstance(body, exp.SetOperation):
        _statement(body)
    if not isinstance(body, exp.Select):
        raise _reject("cte", f"CTE `{name}` is not a SELECT", fix)
    if cte.args.get("alias") and cte.args["alias"].columns:
        raise _reject("cte", f"CTE `{name}` renames its columns in a list",
                      "name the columns with AS inside the CTE")
    _clauses(body)
    extra = [k for k in ("joins", "group", "having", "order", "limit", "offset", "with_")
             if body.args.get(k)]
    if extra:
        raise _reject("cte", f"CTE `{name}` uses {extra[0].rstrip('_').upper()}", fix)
    from_ = body.args.get("from_")
    if from_ is None:
        raise _reject("cte", f"CTE `{name}` reads no table", fix)
    table = from_.this  # checked as a contract table by _scope, like every FROM
    if isinstance(table, exp.Table) and not table.db and table.name in earlier:
        raise _reject("cte", f"CTE `{name}` reads another CTE", fix)
    for part in _parts(body):
        if isinstance(part, exp.Star):  # SELECT * in a CTE projects every column
            continue
        _walk(part)
        if part is not None and _has_aggregate(part):
            raise _reject("cte", f"CTE `{name}` aggregates", fix)
    columns, star = [], False
    for proj in body.expressions:
        if isinstance(proj, exp.Star):
            star = True
        else:
            columns.append((proj.alias_or_name, proj.unalias()))
    where = body.args.get("where")
    return _Cte(table, table.alias_or_name, tuple(columns), star, where.this if where else None)


# --------------------------------------------------------------------------- scope


@dataclass(frozen=True)
class _Entry:
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
class _Source:
    """A qualified column of a checked expression and its contract column."""

    entry: _Entry
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


class _Scope:
    """The tables of FROM/JOIN by the name the SQL uses for them; resolves and checks columns."""

    def __init__(self, entries: dict[str, _Entry], mode: _Mode, purpose: str):
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

    def _lookup(self, node: exp.Column) -> tuple[_Entry, str]:
        name, qualifier = node.name.lower(), node.table
        if node.args.get("catalog"):
            cands = []
        elif node.db:
            cands = [e for k, e in self.entries.items() if k == qualifier
                     and (e.ref.product.lower(), e.ref.table.lower()) == (node.db, qualifier)]
        elif qualifier:
            if qualifier not in self.entries:
                raise _reject("unknown-column", f"no table or alias `{qualifier}` in FROM "
                              f"(column `{name}`)", f"use one of: {', '.join(self.entries)}")
            cands = [self.entries[qualifier]]
        else:
            cands = [e for e in self.entries.values() if e.has(name)]
            if len(cands) > 1:
                raise _reject("ambiguous-column", f"column `{name}` is in several tables",
                              "qualify it as alias.column")
        if not cands or not cands[0].has(name):
            raise _reject("unknown-column", f"no table in FROM has a column `{name}`",
                          f"use one of: {', '.join(self._allowed_names())}")
        return cands[0], name

    def _allowed_names(self) -> list[str]:
        return list(_unique(c for e in self.entries.values() for c in e.purpose.allowed_columns))

    # -- qualified expressions -> contract columns
    def sources(self, expr: exp.Expression) -> list[_Source]:
        """The distinct contract columns a qualified expression reads."""
        out: dict[str, _Source] = {}
        for col in expr.find_all(exp.Column, bfs=False):
            entry = self.by_alias(col.table)
            src = _Source(entry, entry.column(col.name.lower()))
            out.setdefault(f"{entry.ref.alias}.{src.column.name}", src)
        return list(out.values())

    def by_alias(self, alias: str) -> _Entry:
        return next(e for e in self.entries.values() if e.ref.alias == alias)

    def check(self, src: _Source, context: str) -> None:
        """May this column be used this way under the purpose?"""
        col, contract = src.column, src.entry.contract
        if context == "join":
            if src.is_unit or col.name in contract.join_keys:
                return
            keys = ", ".join(_unique((contract.privacy_unit, *contract.join_keys)))
            raise _reject("join-key", f"`{col.name}` of {contract.name} is neither its privacy "
                          "unit nor a declared join key", f"join on one of: {keys}")
        if context == "count-distinct":
            if src.is_unit:
                return
            raise _reject("count-distinct", f"COUNT(DISTINCT {col.name}) counts something other "
                          "than the privacy unit", f"use COUNT(DISTINCT {contract.privacy_unit}) "
                          f"or COUNT({col.name})")
        if src.identifying and context not in self.mode.identifier_contexts:
            if self.mode.access == "dp-aggregate":
                fix = ("direct identifiers never leave a DP query; the privacy unit may only be "
                       "joined on or counted with COUNT(DISTINCT ...)")
            else:
                fix = "identifiers may be selected (they come back as keyed tokens), not used here"
            raise _reject(_CONTEXT_IDENTIFIER_RULES[context], f"`{col.name}` of "
                          f"{contract.name} is a direct identifier", fix)
        if not src.allowed:
            raise _reject("column-not-allowed", f"column `{col.name}` of {contract.name} is not "
                          f"allowed for purpose `{self.purpose}`",
                          f"use one of: {', '.join(src.entry.purpose.allowed_columns)}")
        if context in ("where", "order") and col.generalize and not self.mode.raw_generalized:
            raise _reject("generalized-column", f"`{col.name}` is released generalized, so it "
                          "may not be filtered or sorted on raw values",
                          "select it and filter the returned (generalized) frame")


def _scope(select: exp.Select, contracts: dict[str, Contract], purpose: str, mode: _Mode,
           ctes: dict[str, _Cte]) -> _Scope:
    """The scope of FROM and JOIN; every table is a contract table the purpose may read."""
    scope = _Scope({}, mode, purpose)
    from_ = select.args.get("from_")
    nodes = ([from_.this] if from_ else []) + [j.this for j in select.args.get("joins") or []]
    for node in nodes:
        alias = node.alias_or_name
        if alias in scope.entries:
            raise _reject("duplicate-alias", f"two tables in FROM are called `{alias}`",
                          "give each table its own alias")
        if isinstance(node, exp.Table) and not node.db and node.name in ctes:
            entry, where = _cte_entry(ctes[node.name], alias, contracts, purpose, mode)
            if where is not None:
                scope.filters.append(where)
        else:
            entry = _table_entry(node, alias, contracts, purpose, mode)
        scope.entries[alias] = entry
    for cte in ctes.values():  # unused CTEs must still read contract tables
        _table_entry(cte.table, cte.key, contracts, purpose, mode)
    return scope


def _cte_entry(cte: _Cte, alias: str, contracts: dict[str, Contract], purpose: str,
               mode: _Mode) -> tuple[_Entry, exp.Expression | None]:
    """A CTE reference as its contract table under ``alias``, its outputs and its filter."""
    base = _table_entry(cte.table, alias, contracts, purpose, mode)
    inner = _Scope({cte.key: base}, mode, purpose)
    visible = {c.name.lower(): exp.column(c.name, table=alias) for c in base.table.columns
               } if cte.star else {}
    for name, expr in cte.columns:
        visible[name] = inner.qualify(expr, None)
    where = inner.qualify(cte.where, "where") if cte.where is not None else None
    return replace(base, visible=visible), where


def _table_entry(node: exp.Expression, alias: str, contracts: dict[str, Contract],
                 purpose: str, mode: _Mode) -> _Entry:
    fix = f"read contract tables as `product.table`; bound products: {', '.join(contracts)}"
    if isinstance(node, (exp.Subquery, exp.Select)):
        raise _reject("subquery", "subqueries in FROM are not allowed",
                      "read the contract table directly and put filters in WHERE")
    if not isinstance(node, exp.Table):
        raise _reject("unsupported-syntax", f"`{node.key}` in FROM is not supported", fix)
    if not isinstance(node.this, exp.Identifier):
        name = _func_name(node.this) if isinstance(node.this, exp.Func) else node.this.key
        if name.startswith(SYSTEM_PREFIXES):
            raise _reject("system-catalog", f"`{name}` reads the system catalog", fix)
        raise _reject("table-function", f"table function `{name}` reads outside the contract",
                      fix)
    parts = [p.lower() for p in (node.catalog, node.db, node.name) if p]
    if any(p in SYSTEM_SCHEMAS or p.startswith(SYSTEM_PREFIXES) for p in parts):
        raise _reject("system-catalog", f"`{'.'.join(parts)}` is a system catalog", fix)
    extra = [k for k, v in node.args.items() if v and k not in TABLE_ARGS]
    if extra or (node.args.get("alias") and node.args["alias"].columns):
        raise _reject("unsupported-syntax", f"`{(extra or ['column aliases'])[0]}` on a table "
                      "is not supported", "read the table as `product.table [alias]`")
    if not node.db:
        if any(ch in node.name for ch in "./\\:*"):
            raise _reject("file-access", "FROM names a file, not a contract table", fix)
        raise _reject("unknown-table", f"table `{node.name}` has no product", fix)
    if node.catalog:
        raise _reject("unknown-table", f"`{'.'.join(parts)}` is not `product.table`", fix)
    product = next((p for p in contracts if p.lower() == node.db), None)
    contract = contracts[product] if product is not None else None
    if contract is None:
        raise _reject("product-not-bound", f"product `{node.db}` is not bound in this session",
                      f"bind it with purpose `{purpose}`, or use one of: {', '.join(contracts)}")
    table = next((t for t in contract.tables if t.name.lower() == node.name), None)
    if table is None:
        raise _reject("unknown-table", f"product `{node.db}` has no table `{node.name}`",
                      f"use one of: {', '.join(node.db + '.' + t.name for t in contract.tables)}")
    declared = contract.purposes.get(purpose)
    if declared is None:
        raise _reject("purpose-not-allowed", f"product `{node.db}` does not declare purpose "
                      f"`{purpose}`", f"bind a purpose {node.db} declares: "
                      f"{', '.join(contract.purposes)}")
    if declared.access != mode.access:
        raise _reject("access-mode", f"product `{node.db}` grants {declared.access} for "
                      f"purpose `{purpose}`, not {mode.access}", "query each product as its "
                      "purpose allows")
    ref = TableRef(product, table.name, alias, contract.privacy_unit)
    return _Entry(ref, table, contract, declared)


# --------------------------------------------------------------------------- joins and WHERE

_JOIN_FIX = "use `JOIN product.table alias ON a.unit = alias.unit` (an INNER join)"


def _joins(select: exp.Select, scope: _Scope) -> tuple[exp.Expression, ...]:
    """The qualified ON condition of each join: equalities of units or declared join keys."""
    aliases = list(scope.entries)
    out = []
    for i, join in enumerate(select.args.get("joins") or [], start=1):
        _join_type(join)
        new, earlier = aliases[i], aliases[:i]
        cond = join.args.get("on")
        if join.args.get("using"):
            cond = exp.and_(*(_using(ident.name.lower(), new, earlier, scope)
                              for ident in join.args["using"]))
        if cond is None:
            raise _reject("cross-join", f"the join of `{new}` has no ON condition",
                          _JOIN_FIX)
        out.append(exp.and_(*(_join_pair(p, new, earlier, scope) for p in _conjuncts(cond))))
    return tuple(out)


def _join_type(join: exp.Join) -> None:
    method, side, kind = join.method, join.side, join.kind
    if kind == "CROSS":
        raise _reject("cross-join", "CROSS JOIN pairs every row with every row", _JOIN_FIX)
    bad = method or side or (kind if kind not in ("", "INNER") else "")
    if bad:
        raise _reject("join-type", f"{' '.join(filter(None, (method, side, kind)))} JOIN is not "
                      "allowed, only INNER JOIN", _JOIN_FIX)


def _using(name: str, new: str, earlier: list[str], scope: _Scope) -> exp.Expression:
    left = next((a for a in earlier if scope.entries[a].has(name)), earlier[0])
    return exp.EQ(this=exp.column(name, table=left), expression=exp.column(name, table=new))


def _join_pair(pair: exp.Expression, new: str, earlier: list[str], scope: _Scope
               ) -> exp.Expression:
    """One ``a.key = b.key`` of an ON condition, qualified and checked."""
    what = "an ON condition may only equate key columns of the joined table and an earlier one"
    if not (isinstance(pair, exp.EQ) and isinstance(pair.this, exp.Column)
            and isinstance(pair.expression, exp.Column)):
        raise _reject("join-key", what, "move filters to WHERE; " + _JOIN_FIX)
    sides = [scope.qualify(side, "join") for side in (pair.this, pair.expression)]
    if not all(isinstance(s, exp.Column) for s in sides):
        raise _reject("join-key", what, _JOIN_FIX)
    tables = {s.table for s in sides}
    if new not in tables or len(tables) != 2 or not tables <= {new, *earlier}:
        raise _reject("join-key", what, _JOIN_FIX)
    return exp.EQ(this=sides[0], expression=sides[1])


def _where(select: exp.Select, scope: _Scope) -> exp.Expression | None:
    """The qualified WHERE, with the filters of inlined CTEs."""
    where = select.args.get("where")
    conds = list(scope.filters)
    if where is not None:
        if _has_aggregate(where.this):
            raise _reject("aggregate-in-where", "WHERE holds an aggregate",
                          "filter released aggregates with HAVING")
        conds.insert(0, scope.qualify(where.this, "where"))
    return exp.and_(*conds) if conds else None


# --------------------------------------------------------------------------- GROUP BY


def _group_keys(select: exp.Select, scope: _Scope) -> list[tuple[exp.Expression, _Source,
                                                                  tuple | None]]:
    """(qualified key, its source column, its public categories) per distinct key."""
    group = select.args.get("group")
    if not group:
        return []
    projections = select.expressions
    if group.args.get("all"):
        raw = [p.unalias() for p in projections if not _has_aggregate(p)]
    else:
        raw = [_group_target(e, projections, scope) for e in group.expressions]
    keys: dict[exp.Expression, tuple] = {}
    for expr in raw:
        if _has_aggregate(expr):
            raise _reject("aggregate-in-group-by", "GROUP BY holds an aggregate",
                          "group by columns or expressions of one column")
        q = scope.qualify(expr, "group")
        sources = scope.sources(q)
        if not sources:
            raise _reject("group-by-constant", "a GROUP BY key reads no column",
                          "group by a column or an expression of one column")
        if len(sources) > 1:
            raise _reject("group-by-expression", "a GROUP BY key reads "
                          f"{', '.join(s.column.name for s in sources)}",
                          "group by each column separately")
        keys.setdefault(q, (q, sources[0], _categories(q, sources[0])))
    return list(keys.values())


def _group_target(expr: exp.Expression, projections: list[exp.Expression], scope: _Scope
                  ) -> exp.Expression:
    """A GROUP BY item as an expression: positions and output aliases resolved."""
    position = _int_literal(expr)
    if position is not None:
        if not 1 <= position <= len(projections):
            raise _reject("group-by-position", "a GROUP BY position is not an output position",
                          f"use 1..{len(projections)} or name the column")
        return projections[position - 1].unalias()
    if isinstance(expr, exp.Column) and not expr.table:
        name = expr.name.lower()
        if not any(e.has(name) for e in scope.entries.values()):
            for p in projections:
                if isinstance(p, exp.Alias) and p.alias == name:
                    return p.unalias()
    return expr


def _categories(key: exp.Expression, src: _Source) -> tuple | None:
    """The public value set of a group key, when the contract or the query declares it."""
    if isinstance(key, exp.Column):
        if src.column.categories is not None:
            return tuple(src.column.categories)
        return (False, True) if src.column.logical_type == "boolean" else None
    key = key.unnest()
    if isinstance(key, exp.Case):
        branches = [i.args.get("true") for i in key.args.get("ifs") or []]
        default = key.args.get("default")
        try:
            values = [_literal_value(b) for b in branches]
            values.append(_literal_value(default) if default is not None else None)
        except ValueError:
            return None
        return _unique(values)
    return None


# --------------------------------------------------------------------------- aggregates


def _aggregate(node: exp.Expression, scope: _Scope) -> Aggregate:
    """An aggregate of the select list, taken apart (its name is filled in later)."""
    inner = node.this if isinstance(node, exp.WithinGroup) else node
    spec = AGGREGATES.get(type(inner))
    label = _func_name(inner) if isinstance(inner, exp.Func) else inner.key
    if spec is None:
        raise _reject("unsupported-aggregate", f"aggregate `{label}` is not supported",
                      f"use {_SUPPORTED}")
    if any(_is_aggregate(n) for n in node.walk() if n is not node and n is not inner):
        raise _reject("nested-aggregate", f"`{label}` aggregates an aggregate",
                      "aggregate columns of the contract tables; combine released values "
                      "in pandas")
    if isinstance(node, exp.WithinGroup):
        ordered = node.expression.expressions
        if len(ordered) != 1:
            raise _reject("aggregate-columns", f"`{label}` orders by several values",
                          "order WITHIN GROUP by one column")
        arg, q_node = ordered[0].this, inner.this
    else:
        arg = inner.this
        q_node = inner.args.get(spec.quantile_arg) if spec.quantile_arg else None
    if spec.func == "count":
        return _count(arg, scope)
    if isinstance(arg, exp.Distinct):
        raise _reject("distinct-aggregate", f"`{label}(DISTINCT ...)` is not supported",
                      "drop DISTINCT; only COUNT(DISTINCT unit) is supported")
    value = scope.qualify(arg, "aggregate")
    column = _one_source(value, scope, label)
    quantile = spec.quantile if spec.quantile_arg is None else _quantile(q_node, label)
    return Aggregate("", spec.func, value, column, _Bounds(scope, label).of(value), quantile,
                     spec.sample)


def _count(arg: exp.Expression, scope: _Scope) -> Aggregate:
    if isinstance(arg, exp.Star):
        return Aggregate("", "count", None, None)
    if isinstance(arg, exp.Distinct):
        exprs = arg.expressions
        value = scope.qualify(exprs[0], "count-distinct") if len(exprs) == 1 else None
        if not isinstance(value, exp.Column):
            raise _reject("count-distinct", "COUNT(DISTINCT ...) must name the privacy unit",
                          "write COUNT(DISTINCT unit), e.g. the column the contract names as "
                          "privacyUnit")
        return Aggregate("", "count_distinct_unit", value, scope.sources(value)[0].qualified)
    value = scope.qualify(arg, "aggregate")
    return Aggregate("", "count_col", value, _one_source(value, scope, "count"))


def _one_source(value: exp.Expression, scope: _Scope, label: str) -> str | None:
    sources = scope.sources(value)
    if len(sources) > 1:
        raise _reject("aggregate-columns", f"`{label}` reads "
                      f"{', '.join(s.column.name for s in sources)}",
                      "aggregate an expression of one column; send one query per column")
    return sources[0].qualified if sources else None


def _quantile(node: exp.Expression | None, label: str) -> float:
    node = node.unnest() if node is not None else None
    q = float(node.this) if isinstance(node, exp.Literal) and node.is_number else math.nan
    if not 0.0 <= q <= 1.0:
        raise _reject("quantile-argument", f"`{label}` needs one quantile between 0 and 1",
                      "write e.g. QUANTILE_CONT(column, 0.9)")
    return q


_Interval = tuple[float, float] | None  # None: the value is always NULL


class _Bounds:
    """Interval arithmetic over a qualified value expression, from the contract bounds."""

    def __init__(self, scope: _Scope, label: str):
        self.scope, self.label = scope, label

    def of(self, value: exp.Expression) -> tuple[float, float]:
        """Bounds of ``value``; NULL-only values count as (0, 0)."""
        bounds = self(value) or (0.0, 0.0)
        if not all(math.isfinite(b) for b in bounds):
            raise self._unbounded("has no finite bounds")
        return bounds

    def __call__(self, node: exp.Expression) -> _Interval:
        for klass, method in _BOUND_RULES:
            if isinstance(node, klass):
                return method(self, node)
        raise _reject("aggregate-expression", f"`{self.label}` aggregates a `{node.key}` "
                      "expression", "aggregate a column, or +, -, *, / with numbers, ABS, "
                      "ROUND, LEAST, GREATEST, COALESCE or CASE of one bounded column")

    def _unbounded(self, why: str) -> PolicyViolation:
        return _reject("unbounded-expression", f"the value of `{self.label}` {why}",
                       "divide only by numbers or columns whose bounds exclude 0")

    def _non_numeric(self, what: str) -> PolicyViolation:
        return _reject("non-numeric-aggregate", f"`{self.label}` aggregates {what}",
                       "aggregate a numeric column; count others with COUNT, or aggregate "
                       "CASE WHEN ... THEN 1 ELSE 0 END")

    def column(self, node: exp.Column) -> _Interval:
        col = self.scope.sources(node)[0].column
        if not col.numeric:
            raise self._non_numeric(f"`{col.name}`, a {col.logical_type} column")
        if col.bounds is None:
            raise _reject("unbounded-column", f"`{col.name}` has no bounds in the contract, so "
                          "its sensitivity is unknown", "ask the owner to declare "
                          f"logicalTypeOptions minimum/maximum for `{col.name}`, or COUNT it")
        return col.bounds

    def literal(self, node: exp.Literal) -> _Interval:
        if node.is_string:
            raise self._non_numeric("a string")
        return (float(node.this),) * 2

    def null(self, node: exp.Null) -> _Interval:
        return None

    def boolean(self, node: exp.Boolean) -> _Interval:
        raise self._non_numeric("a boolean")

    def inner(self, node: exp.Expression) -> _Interval:
        return self(node.this)

    def neg(self, node: exp.Neg) -> _Interval:
        b = self(node.this)
        return None if b is None else (-b[1], -b[0])

    def binary(self, node: exp.Binary) -> _Interval:
        a, b = self(node.this), self(node.expression)
        if a is None or b is None:
            return None
        if isinstance(node, exp.Add):
            return a[0] + b[0], a[1] + b[1]
        if isinstance(node, exp.Sub):
            return a[0] - b[1], a[1] - b[0]
        if isinstance(node, exp.Div):
            if b[0] <= 0.0 <= b[1]:
                raise self._unbounded("divides by a value that may be 0")
            b = (1.0 / b[1], 1.0 / b[0])
        products = [x * y for x in a for y in b]
        return min(products), max(products)

    def abs(self, node: exp.Abs) -> _Interval:
        b = self(node.this)
        if b is None or b[0] >= 0:
            return b
        return (-b[1], -b[0]) if b[1] <= 0 else (0.0, max(-b[0], b[1]))

    def rounded(self, node: exp.Func) -> _Interval:
        digits = node.args.get("decimals")
        if digits is not None and (_int_literal(digits) is None or _int_literal(digits) < 0):
            raise _reject("aggregate-expression", f"`{self.label}` rounds to a non-literal or "
                          "negative number of digits", "round to 0 or more digits")
        b = self(node.this)
        return None if b is None else (math.floor(b[0]), math.ceil(b[1]))

    def extreme(self, node: exp.Func) -> _Interval:
        parts = [b for b in map(self, [node.this, *node.expressions]) if b is not None]
        if not parts:
            return None
        pick = min if isinstance(node, exp.Least) else max
        return pick(b[0] for b in parts), pick(b[1] for b in parts)

    def hull(self, branches: Iterable[exp.Expression | None]) -> _Interval:
        parts = [b for b in (self(x) for x in branches if x is not None) if b is not None]
        if not parts:
            return None
        return min(b[0] for b in parts), max(b[1] for b in parts)

    def coalesce(self, node: exp.Coalesce) -> _Interval:
        return self.hull([node.this, *node.expressions])

    def case(self, node: exp.Case) -> _Interval:
        return self.hull([i.args.get("true") for i in node.args.get("ifs") or []]
                         + [node.args.get("default")])

    def if_(self, node: exp.If) -> _Interval:
        return self.hull([node.args.get("true"), node.args.get("false")])

    def cast(self, node: exp.Cast) -> _Interval:
        if not node.to.is_type(*exp.DataType.NUMERIC_TYPES):
            raise self._non_numeric(f"a cast to {node.to.sql()}")
        arg = node.this
        if isinstance(arg, exp.Column) and self.scope.sources(arg)[0].column.logical_type == \
                "boolean":
            return 0.0, 1.0
        b = self(arg)
        if b is None or not node.to.is_type(*exp.DataType.INTEGER_TYPES):
            return b
        return math.floor(b[0]), math.ceil(b[1])


_BOUND_RULES: tuple[tuple[type, Callable[[_Bounds, exp.Expression], _Interval]], ...] = (
    (exp.Column, _Bounds.column), (exp.Literal, _Bounds.literal), (exp.Null, _Bounds.null),
    (exp.Boolean, _Bounds.boolean), (exp.Paren, _Bounds.inner), (exp.Neg, _Bounds.neg),
    ((exp.Add, exp.Sub, exp.Mul, exp.Div), _Bounds.binary), (exp.Abs, _Bounds.abs),
    (_classes("Round", "Floor", "Ceil", "Trunc"), _Bounds.rounded),
    ((exp.Least, exp.Greatest), _Bounds.extreme), (exp.Coalesce, _Bounds.coalesce),
    (exp.Case, _Bounds.case), (exp.If, _Bounds.if_), ((exp.Cast, exp.TryCast), _Bounds.cast),
)


# --------------------------------------------------------------------------- select list


class _Names:
    """Output names: the aliases written in the query, then fresh generated ones."""

    def __init__(self, projections: list[exp.Expression]):
        aliases = [p.alias for p in projections if isinstance(p, exp.Alias)]
        dup = next((a for a in aliases if aliases.count(a) > 1), None)
        if dup:
            raise _reject("duplicate-output", f"two outputs are called `{dup}`",
                          "give each output its own alias")
        self.used = set(aliases)

    def fresh(self, base: str) -> str:
        name, n = base, 1
        while name in self.used:
            n += 1
            name = f"{base}_{n}"
        self.used.add(name)
        return name


def _aggregate_name(agg: Aggregate) -> str:
    col = agg.column.rsplit(".", 1)[-1] if agg.column else None
    if agg.func == "count_distinct_unit":
        return f"count_distinct_{col}"
    func = "count" if agg.func == "count_col" else agg.func
    return f"{func}_{col}" if col else func


def _select_list(select: exp.Select, scope: _Scope, keys: list[tuple]
                 ) -> tuple[tuple[GroupKey, ...], tuple[Aggregate, ...], tuple[str, ...],
                            dict[exp.Expression, str]]:
    """Group keys, aggregates, output names in select order, and {qualified expr: output}."""
    projections = select.expressions
    names = _Names(projections)
    aggregates: list[Aggregate] = []
    key_names: dict[exp.Expression, str] = {}
    outputs: list[str] = []
    index: dict[exp.Expression, str] = {}
    for i, proj in enumerate(projections):
        alias = proj.alias if isinstance(proj, exp.Alias) else None
        body = proj.unalias()
        if _has_aggregate(body):
            node = body.unnest()
            if not _is_aggregate(node):
                raise _reject("expression-over-aggregate", f"`{_display(proj, i)}` computes on "
                              "an aggregate", "select the aggregate itself and compute on the "
                              "released frame in pandas")
            agg = _aggregate(node, scope)
            agg = replace(agg, name=alias or names.fresh(_aggregate_name(agg)))
            aggregates.append(agg)
            index[scope.qualify(node, None)] = agg.name
            name = agg.name
        else:
            q = scope.qualify(body, "output")
            if q not in {k[0] for k in keys}:
                raise _reject("non-aggregated-output", f"output `{_display(proj, i)}` is "
                              "neither a GROUP BY key nor an aggregate",
                              "aggregate it (COUNT, SUM, AVG...) or add it to GROUP BY")
            if q in key_names:
                raise _reject("duplicate-output", f"output `{_display(proj, i)}` repeats a "
                              "group key", "select each group key once")
            name = alias or names.fresh(body.name if isinstance(body, exp.Column)
                                        else f"{scope.sources(q)[0].column.name}_key")
            key_names[q] = index[q] = name
        outputs.append(name)
    if not aggregates:
        raise _reject("no-aggregate", "the query releases no aggregate",
                      "add COUNT(*), SUM(...), AVG(...) or another aggregate")
    group_keys = tuple(
        GroupKey(key_names.get(q) or names.fresh(src.column.name if isinstance(q, exp.Column)
                                                 else f"{src.column.name}_key"),
                 q, src.qualified, cats,
                 src.column.logical_type if isinstance(q, exp.Column) else None)
        for q, src, cats in keys)
    return group_keys, tuple(aggregates), tuple(outputs), index


# --------------------------------------------------------------------------- post-processing


class _OverOutputs:
    """Rewrites HAVING / ORDER BY expressions over output names (post-processing)."""

    def __init__(self, scope: _Scope, index: dict[exp.Expression, str],
                 outputs: tuple[str, ...]):
        self.scope, self.index, self.outputs = scope, index, outputs

    def __call__(self, expr: exp.Expression, clause: str, rule: str) -> exp.Expression:
        fix = (f"{clause} applies to released values: use the outputs "
               f"({', '.join(self.outputs)}) or aggregates as written in the select list")

        def over(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column) and not node.table and node.name in self.outputs:
                return exp.column(node.name)
            if not any(isinstance(n, exp.Column) or _is_aggregate(n) for n in node.walk()):
                return node
            try:
                q = self.scope.qualify(node, None)
            except PolicyViolation:
                q = None
            if q is not None and q in self.index:
                return exp.column(self.index[q])
            if _is_aggregate(node):
                raise _reject(rule, f"{clause} uses an aggregate that is not an output", fix)
            if isinstance(node, exp.Column):
                raise _reject(rule, f"{clause} uses `{node.name}`, which is not an output", fix)
            return node

        return expr.transform(over)


def on_outputs(checked: CheckedQuery, expr: exp.Expression) -> str:
    """SQL of ``checked.having`` or an item of ``checked.order`` over the released frame, whose
    columns are the outputs (quoted, so any output name works)."""
    def quote(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and node.name in checked.outputs:
            return exp.column(node.name, quoted=True)
        return node
    return expr.transform(quote).sql(dialect="duckdb")


def _order(select: exp.Select, item: Callable[[exp.Expression], exp.Expression],
           positions: list[exp.Expression]) -> tuple[exp.Ordered, ...]:
    """ORDER BY items with ``this`` rewritten by ``item``; positions pick ``positions``."""
    order = select.args.get("order")
    out = []
    for ordered in order.expressions if order else ():
        position = _int_literal(ordered.this)
        if position is not None and not 1 <= position <= len(positions):
            raise _reject("order-by-not-output", "an ORDER BY position is not an output "
                          "position", f"use 1..{len(positions)} or an output name")
        new = ordered.copy()
        new.set("this", positions[position - 1].copy() if position is not None
                else item(ordered.this))
        out.append(new)
    return tuple(out)


def _limit(select: exp.Select, key: str) -> int | None:
    clause = select.args.get(key)
    if clause is None:
        return None
    value = _int_literal(clause.expression)
    if (value is None or value < 0 or clause.expressions
            or any(clause.args.get(k) for k in ("offset", "limit_options"))):
        raise _reject("limit", f"{key.upper()} must be one non-negative integer",
                      f"write e.g. {key.upper()} 10")
    return value


# --------------------------------------------------------------------------- entry points


@dataclass(frozen=True)
class _Prepared:
    """The stages both kinds of query share."""

    select: exp.Select
    scope: _Scope
    joins: tuple[exp.Expression, ...]
    where: exp.Expression | None

    @property
    def tables(self) -> tuple[TableRef, ...]:
        return tuple(e.ref for e in self.scope.entries.values())

    def columns(self, *exprs: exp.Expression | None) -> tuple[str, ...]:
        everything = [*self.joins, self.where, *exprs]
        return _unique(s.qualified for e in everything if e is not None
                       for s in self.scope.sources(e))


def _prepare(tree: exp.Expression, contracts: dict[str, Contract], purpose: str,
             accepted: tuple[str, ...]) -> _Prepared:
    select = _statement(tree)
    _clauses(select)
    mode = _mode(contracts, purpose, accepted)
    ctes = _ctes(select)
    scope = _scope(select, contracts, purpose, mode, ctes)
    for part in _parts(select):
        _walk(part)
    if not scope.entries:
        raise _reject("no-table", "the query reads no contract table",
                      f"add FROM product.table; bound products: {', '.join(contracts)}")
    return _Prepared(select, scope, _joins(select, scope), _where(select, scope))


def _texts(tree: exp.Expression) -> dict[str, str]:
    return {"sql": sql_text(tree), "redacted": sql_text(redact_tree(tree)),
            "query_hash": tree_hash(tree)}


def check(sql: str, contracts: dict[str, Contract], purpose: str) -> CheckedQuery:
    """Check a query for a dp-aggregate purpose; raises :class:`PolicyViolation`."""
    tree = parse(sql)
    p = _prepare(tree, contracts, purpose, ("dp-aggregate",))
    select, scope = p.select, p.scope
    keys = _group_keys(select, scope)
    group_keys, aggregates, outputs, index = _select_list(select, scope, keys)
    over = _OverOutputs(scope, index, outputs)
    having = select.args.get("having")
    having_expr = over(having.this, "HAVING", "having-not-output") if having else None
    order = _order(select, lambda e: over(e, "ORDER BY", "order-by-not-output"),
                   [exp.column(name) for name in outputs])
    return CheckedQuery(
        **_texts(tree), purpose=purpose, tables=p.tables, joins=p.joins, where=p.where,
        group_keys=group_keys, aggregates=aggregates, having=having_expr, order=order,
        limit=_limit(select, "limit"), offset=_limit(select, "offset"), outputs=outputs,
        columns=p.columns(*(k.expr for k in group_keys), *(a.value for a in aggregates)),
        products=_unique(t.product for t in p.tables))


def check_rows(sql: str, contracts: dict[str, Contract], purpose: str) -> CheckedRows:
    """Check a row query for a pseudonymized-rows or raw-rows purpose."""
    tree = parse(sql)
    p = _prepare(tree, contracts, purpose, ROW_ACCESS)
    select, scope = p.select, p.scope
    if (select.args.get("group") or select.args.get("having")
            or any(_has_aggregate(e) for e in _parts(select) if e is not None)):
        raise _reject("rows-aggregate", f"purpose `{purpose}` returns rows, not aggregates",
                      "select columns; aggregates need a dp-aggregate purpose")
    names = _Names(select.expressions)
    outputs = []
    for i, proj in enumerate(select.expressions):
        body = proj.unalias()
        q = scope.qualify(body, "output") if isinstance(body, exp.Column) else None
        if not isinstance(q, exp.Column):
            raise _reject("row-output", f"output `{_display(proj, i)}` is an expression",
                          "select columns as stored (identifiers come back as tokens, "
                          "quasi-identifiers generalized); compute on the frame in pandas")
        src = scope.sources(q)[0]
        name = proj.alias if isinstance(proj, exp.Alias) else names.fresh(body.name)
        outputs.append(RowOutput(name, q, src.qualified, src.column, src.identifying))
    by_name = {o.name: o.expr for o in outputs}

    def order_item(expr: exp.Expression) -> exp.Expression:
        if isinstance(expr, exp.Column) and not expr.table and expr.name in by_name:
            return by_name[expr.name].copy()
        return scope.qualify(expr, None)

    order = _order(select, order_item, [o.expr for o in outputs])
    for ordered in order:
        for src in scope.sources(ordered):
            scope.check(src, "order")
    access = scope.mode.access
    return CheckedRows(
        **_texts(tree), purpose=purpose, access=access, tables=p.tables, joins=p.joins,
        where=p.where, outputs=tuple(outputs), order=order, limit=_limit(select, "limit"),
        offset=_limit(select, "offset"),
        columns=p.columns(*(o.expr for o in outputs), *order),
        products=_unique(t.product for t in p.tables))
