"""The whitelists: expression nodes, functions, clauses, aggregates and system names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlglot import exp


def classes(*names: str) -> tuple[type, ...]:
    """sqlglot expression classes by name, skipping those this sqlglot version lacks."""
    return tuple(getattr(exp, n) for n in names if hasattr(exp, n))


SCALAR_FUNCTIONS = classes(
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

EXPRESSION_NODES = classes(
    "Column", "Identifier", "Literal", "Boolean", "Null", "Paren", "Neg", "Not", "And", "Or",
    "EQ", "NEQ", "GT", "GTE", "LT", "LTE", "NullSafeEQ", "NullSafeNEQ", "Is", "In", "Between",
    "Like", "ILike", "Escape", "Add", "Sub", "Mul", "Div", "IntDiv", "Mod", "DPipe", "DataType",
    "DataTypeParam", "Var", "Interval", "Alias", "Distinct", "Ordered", "Order", "WithinGroup",
    "Tuple", "Array",
)

# Nodes that are harmless only in one place (an Identifier elsewhere could name a column).
PLACED: tuple[tuple[type, Callable[[exp.Expression], bool]], ...] = (
    (exp.Identifier, lambda n: isinstance(n.parent, (exp.Column, exp.Alias))),
    (exp.Var, lambda n: n.arg_key == "unit" or isinstance(n.parent, exp.Extract)),
    (exp.Alias, lambda n: isinstance(n.parent, exp.Select)),
    (exp.Order, lambda n: isinstance(n.parent, exp.WithinGroup)),
    (exp.Ordered, lambda n: isinstance(n.parent, exp.Order)),
    (exp.Distinct, lambda n: isinstance(n.parent, exp.AggFunc)),
    (exp.DataType, lambda n: isinstance(n.parent, (exp.Cast, exp.DataType))),
    (exp.DataTypeParam, lambda n: isinstance(n.parent, exp.DataType)),
)

NODE_RULES: tuple[tuple[type | tuple[type, ...], str, str, str], ...] = (
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
    (classes("Rollup", "Cube", "GroupingSets"), "grouping-sets",
     "ROLLUP, CUBE and GROUPING SETS are not supported", "send one query per grouping"),
    (exp.Placeholder, "parameter", "query parameters are not supported",
     "write the values into the query"),
    (exp.Parameter, "parameter", "query parameters are not supported",
     "write the values into the query"),
)

SELECT_CLAUSES = frozenset({"expressions", "from_", "joins", "where", "group", "having",
                            "order", "limit", "offset", "with_"})
CLAUSE_RULES: dict[str, tuple[str, str, str]] = {
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

CONTEXT_IDENTIFIER_RULES = {
    "output": "identifier-in-output", "where": "identifier-in-where",
    "aggregate": "identifier-in-aggregate", "group": "group-by-identifier",
    "order": "identifier-in-order",
}


@dataclass(frozen=True)
class AggSpec:
    """How one sqlglot aggregate class maps to an :class:`Aggregate`."""

    func: str
    sample: bool = False
    quantile: float | None = None
    quantile_arg: str | None = None  # argument holding q, for QUANTILE / PERCENTILE_*


AGGREGATES: dict[type, AggSpec] = {
    exp.Count: AggSpec("count"),
    exp.Sum: AggSpec("sum"),
    exp.Avg: AggSpec("avg"),
    exp.Variance: AggSpec("var", sample=True),
    exp.VariancePop: AggSpec("var"),
    exp.Stddev: AggSpec("stddev", sample=True),
    exp.StddevSamp: AggSpec("stddev", sample=True),
    exp.StddevPop: AggSpec("stddev"),
    exp.Median: AggSpec("median", quantile=0.5),
    exp.Quantile: AggSpec("quantile", quantile_arg="quantile"),
    exp.PercentileCont: AggSpec("quantile", quantile_arg="expression"),
    exp.PercentileDisc: AggSpec("quantile", quantile_arg="expression"),
}
SUPPORTED_AGGREGATES = ("COUNT(*), COUNT(col), COUNT(DISTINCT unit), SUM, AVG, VAR_SAMP/VAR_POP, "
              "STDDEV_SAMP/STDDEV_POP, MEDIAN, QUANTILE_CONT(col, q)")

# Limits that keep the engine total in time as well as in errors (see mesh_nb.query.total and
# docs/queries.md, "The total engine"): an argument that sets how much work a function does
# per row must be a literal, and a small one, or one row could cost seconds.
MAX_SIZE = 1_000  # LPAD/RPAD length: the result has this many characters
MAX_DIGITS = 38  # ROUND/TRUNC digits (Spark raises on a huge scale, for some values only)
# `%` wildcards in one LIKE pattern: Spark compiles LIKE to a backtracking Java regex, and
# '%a%a%a%a%a%a%b' on one 64-character value took 5 s there (three `%`: 2.7 s at 1,024).
MAX_LIKE_WILDCARDS = 2
# Variable repeats (*, +, ?, {m,n}) in one regexp: Java's regex backtracks (RLIKE 'a*a*b' on
# one 1,024-character value: 2 s); groups and alternation are refused for the same reason.
MAX_REGEXP_REPEATS = 1
# strftime/strptime specifiers both engines read (sqlglot maps them to Spark's patterns);
# other letters in a format are refused: Spark raises on an unknown pattern letter, only for
# the rows that reach it.
FORMAT_SPECIFIERS = frozenset({
    "%Y", "%y", "%m", "%-m", "%d", "%-d", "%H", "%-H", "%I", "%-I", "%M", "%-M", "%S", "%-S",
    "%f", "%p", "%j", "%-j", "%a", "%A", "%b", "%B",
})
# Day names parse in DuckDB, but Spark 3+ raises on `E` in a parsing pattern (per row).
PARSE_ONLY_EXCLUDED = frozenset({"%a", "%A"})
FORMAT_PUNCTUATION = frozenset(" -/:.,_")
