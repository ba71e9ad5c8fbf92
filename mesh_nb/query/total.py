"""The total engine: scalar expressions that cannot raise on any value.

A planned query must fail, or not, the same way whatever the rows hold: an engine error that
only happens when one person's value is odd (``CAST(birth_date AS VARCHAR)::INT`` under a
``CASE`` that picks that person) is one bit about that person that no noise covers. DuckDB
raises on such values: failed casts (explicit, and implicit ones between types), integer and
decimal overflow, integer ``//`` and ``%`` by zero, dates and timestamps out of range,
``strptime``/``make_date`` on bad input, ``lpad`` without padding. ``TRY(x)`` returns NULL
instead, and ``TRY_CAST`` is the cast that does. Constant sub-expressions count too: DuckDB
leaves a constant that fails to fold in place and raises only for the rows that reach it.

:func:`total` rewrites a qualified scalar expression (a WHERE condition, a group key, an
aggregate's argument, a join condition; columns as ``alias.column``) into one that cannot
raise in DuckDB, applying :data:`RULES` in order, each a public function
``rule(expression, types) -> expression`` as in sqlglot's optimizer:

1. :func:`try_casts` — every ``CAST`` becomes ``TRY_CAST``.
2. :func:`cast_literals` — an untyped string literal compared with a typed operand (``d >=
   '2024-01-01'``) becomes ``TRY_CAST('2024-01-01' AS DATE)``: the implicit cast DuckDB would
   do, made explicit and total; it still folds to a constant, so filter pushdown stays.
3. :func:`guard_temporal` — a date or timestamp that is truncated, formatted, converted to
   a timestamp or moved by an interval is NULL outside years 1..9999 (Spark raises ``long
   overflow`` near its timestamp limits even with ANSI off, and Spark has no ``TRY``).
4. :func:`try_raising` — every node that can raise on a value, given its operands' types,
   wrapped in the smallest ``TRY(...)``; a non-boolean operand of AND/OR/NOT/CASE WHEN
   becomes ``TRY_CAST(x AS BOOLEAN)``.

What provably cannot raise stays as written: bare columns, comparisons of compatible types,
``IS NULL``, boolean logic and CASE over safe parts, ``IN`` over same-type literals, float
arithmetic, string functions. ``TRY`` around a comparison is kept out of the common cases,
because a filter under ``TRY`` is no longer a plain pushed-down scan filter. When a type is
not known the node is wrapped.

``types`` maps ``alias.column`` to the contract's ``logicalType`` (``string``, ``integer``,
``number``, ``boolean``, ``date``, ``timestamp``...). ``number`` may be DECIMAL on disk, so
arithmetic on it is wrapped unless an operand is a float (``CAST(x AS DOUBLE)``, a division,
``sqrt``...).

:func:`strip_try` removes the ``TRY`` wrappers for Spark, which has no generic ``TRY``: run
with ``spark.sql.ansi.enabled=false`` casts, division, overflow, ``make_date`` and
``to_timestamp`` return NULL or wrap, ``TRY_CAST`` exists, and the policy refuses what
neither engine can make total (size arguments, growing ``replace``, patterns and formats built
from data). ``TRY`` is :class:`sqlglot.exp.Try`, rendered ``TRY(x)`` in DuckDB and parsed
back from it.
"""

from __future__ import annotations

import re
from typing import Callable, Iterator, Mapping

from sqlglot import exp

Types = Mapping[str, str]
Rule = Callable[[exp.Expression, Types], exp.Expression]

# Kinds the rules reason with. ``number`` is any numeric that may be DECIMAL or integer on
# disk; ``double`` is provably a float (float arithmetic never raises in DuckDB: inf/NaN);
# ``strlit`` is an untyped string literal (DuckDB casts it to the other side's type).
NUMERIC = frozenset({"integer", "number", "double"})
TEMPORAL = frozenset({"date", "timestamp"})

_LOGICAL = {"string": "string", "integer": "integer", "number": "number", "double": "double",
            "boolean": "boolean", "date": "date", "timestamp": "timestamp"}
_CAST_TO = {"integer": "BIGINT", "number": "DOUBLE", "double": "DOUBLE",
            "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP"}
_T = exp.DataType.Type
_DATATYPE_KINDS: tuple[tuple[frozenset, str], ...] = (
    (frozenset(exp.DataType.INTEGER_TYPES), "integer"),
    (frozenset({_T.FLOAT, _T.DOUBLE}), "double"),
    (frozenset(exp.DataType.REAL_TYPES), "number"),
    (frozenset(exp.DataType.TEXT_TYPES), "string"),
    (frozenset({_T.BOOLEAN}), "boolean"),
    (frozenset({_T.DATE, _T.DATE32}), "date"),
    (frozenset(exp.DataType.TEMPORAL_TYPES) - {_T.DATE, _T.DATE32, _T.TIME, _T.TIMETZ},
     "timestamp"),
    (frozenset({_T.INTERVAL}), "interval"),
)

# DuckDB's substring offsets and lengths must lie within this (else "outside of supported
# range"); Spark accepts any int.
SUBSTRING_LIMIT = 4294967295
# The years a guarded date or timestamp may lie in (Spark overflows near its range limits).
TIMESTAMP_RANGE = ("0001-01-01 00:00:00", "9999-12-31 23:59:59.999999")
DATE_RANGE = ("0001-01-01", "9999-12-31")
# date_diff units that never overflow on two DATEs (microseconds of a far date do).
_COARSE_UNITS = frozenset({"DAY", "DAYS", "WEEK", "WEEKS", "MONTH", "MONTHS", "QUARTER",
                           "QUARTERS", "YEAR", "YEARS", "DECADE", "DECADES", "CENTURY",
                           "CENTURIES", "MILLENNIUM", "MILLENNIA"})

# Parts of a date Spark extracts without making it a timestamp.
_DATE_UNITS = frozenset({"YEAR", "YEARS", "Y", "MONTH", "MONTHS", "MON", "DAY", "DAYS", "D",
                         "QUARTER", "WEEK", "WEEKS", "W", "DOW", "DAYOFWEEK", "ISODOW", "DOY",
                         "DAYOFYEAR", "DAYOFMONTH", "ISOYEAR", "YEARWEEK", "WEEKDAY",
                         "DECADE", "CENTURY", "MILLENNIUM"})
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ,
                exp.NullSafeNEQ)
_DATE_PARTS = tuple(getattr(exp, n) for n in (
    "Year", "Month", "Day", "Quarter", "Week", "DayOfWeek", "DayOfWeekIso", "DayOfYear",
    "DayOfMonth", "Hour", "Minute", "Second", "Monthname", "Dayname", "LastDay", "TimeToUnix",
    "WeekOfYear") if hasattr(exp, n))
_TRUNCS = tuple(getattr(exp, n) for n in ("TimestampTrunc", "DateTrunc") if hasattr(exp, n))
_STRING_FUNCS = tuple(getattr(exp, n) for n in (
    "Lower", "Upper", "Length", "Trim", "Concat", "StartsWith", "EndsWith", "Contains",
    "Replace", "Initcap") if hasattr(exp, n))
_FLOAT_FUNCS = (exp.Sqrt, exp.Cbrt, exp.Ln, exp.Log, exp.Exp, exp.Pow)
_BOOLEAN_NODES = (*_COMPARISONS, exp.Like, exp.ILike, exp.Escape, exp.In, exp.Between, exp.Is,
                  exp.Not, exp.And, exp.Or, exp.StartsWith, exp.EndsWith, exp.Contains,
                  exp.RegexpLike, exp.IsNan, exp.IsInf, exp.Boolean)
# Nodes that never raise whatever their (total) operands hold.
_NEVER_RAISE = (exp.Column, exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.TryCast,
                exp.Try, exp.Star, exp.Identifier, exp.Var, exp.DataType, exp.DataTypeParam,
                exp.Like, exp.ILike, exp.Escape, exp.Not, exp.And, exp.Or, exp.DPipe,
                exp.CurrentDate, exp.CurrentTimestamp, exp.RegexpLike, exp.Tuple,
                exp.Distinct, exp.Ordered, exp.Order, exp.Alias, *_STRING_FUNCS)
_SAFE_ANONYMOUS = frozenset({"prefix", "suffix", "strlen"})
_NUMERIC_ANONYMOUS = frozenset({"isfinite", "isinf", "isnan"})


# --------------------------------------------------------------------------- types


def _unit(node: exp.Expression | None) -> str | None:
    """A literal date-part unit (``Var`` or string literal), upper-cased; else None."""
    if isinstance(node, exp.Var) or (isinstance(node, exp.Literal) and node.is_string):
        return str(node.this).upper()
    return None


def _datatype_kind(dtype: exp.DataType | None) -> str | None:
    if dtype is None:
        return None
    for members, kind in _DATATYPE_KINDS:
        if dtype.this in members:
            return kind
    return None


def _common(kinds: list[str | None]) -> str | None:
    """The one kind several values share (NULL fits every kind); None when they differ."""
    known = [k for k in kinds if k != "null"]
    if not known:
        return "null"
    if any(k is None for k in known):
        return None
    if all(k in NUMERIC for k in known):
        return ("double" if "double" in known else "number" if "number" in known
                else "integer")
    if all(k in ("string", "strlit") for k in known):
        return "string" if "string" in known else "strlit"
    return known[0] if len(set(known)) == 1 else None


def _arith_kind(a: str | None, b: str | None, node: exp.Expression) -> str | None:
    if a in NUMERIC and b in NUMERIC:
        if isinstance(node, exp.Div):
            return "double"
        return _common([a, b])
    if "null" in (a, b):
        return b if a == "null" else a
    if isinstance(node, exp.Add) and {a, b} == {"date", "integer"}:
        return "date"
    if isinstance(node, exp.Sub) and (a, b) == ("date", "integer"):
        return "date"
    if isinstance(node, exp.Sub) and (a, b) == ("date", "date"):
        return "integer"
    if isinstance(node, (exp.Add, exp.Sub)) and "interval" in (a, b) and ({a, b} & TEMPORAL):
        return "timestamp"
    return None


def kind(node: exp.Expression | None, types: Types) -> str | None:
    """The type family of ``node``'s value, or None when not known."""
    if node is None:
        return None
    if isinstance(node, (exp.Try, exp.Paren)):
        return kind(node.this, types)
    if isinstance(node, exp.Column):
        logical = types.get(f"{node.table}.{node.name}") if node.table else None
        if logical is None and not node.table:
            matches = {v for k, v in types.items() if k.rsplit(".", 1)[-1] == node.name}
            logical = matches.pop() if len(matches) == 1 else None
        return _LOGICAL.get(str(logical).lower()) if logical else None
    if isinstance(node, exp.Literal):
        if node.is_string:
            return "strlit"
        text = str(node.this).lower()
        return "integer" if node.is_int else "double" if "e" in text else "number"
    if isinstance(node, exp.Null):
        return "null"
    if isinstance(node, _BOOLEAN_NODES):
        return "boolean"
    if isinstance(node, exp.Cast):  # TryCast too
        return _datatype_kind(node.args.get("to"))
    if isinstance(node, exp.Neg):
        return kind(node.this, types)
    if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.IntDiv)):
        return _arith_kind(kind(node.this, types), kind(node.expression, types), node)
    if isinstance(node, _FLOAT_FUNCS):
        return "double"
    if isinstance(node, (exp.Abs, exp.Round, exp.Floor, exp.Ceil, exp.Trunc)):
        k = kind(node.this, types)
        return k if k in NUMERIC else None
    if isinstance(node, exp.Sign):
        return "integer"
    if isinstance(node, (exp.Least, exp.Greatest, exp.Coalesce)):
        return _common([kind(node.this, types),
                        *(kind(e, types) for e in node.expressions)])
    if isinstance(node, exp.Nullif):
        return kind(node.this, types)
    if isinstance(node, exp.Case):
        return _common([kind(i.args.get("true"), types) for i in node.args.get("ifs") or []]
                       + [kind(node.args.get("default") or exp.null(), types)])
    if isinstance(node, exp.If):
        return _common([kind(node.args.get("true"), types),
                        kind(node.args.get("false") or exp.null(), types)])
    if isinstance(node, (exp.Monthname, exp.Dayname, exp.TimeToStr, exp.Substring, exp.Left,
                         exp.Right, exp.Pad, exp.DPipe, *_STRING_FUNCS)):
        return "integer" if isinstance(node, exp.Length) else (
            "boolean" if isinstance(node, (exp.StartsWith, exp.EndsWith, exp.Contains))
            else "string")
    if isinstance(node, exp.TimeToUnix):
        return "double"
    if isinstance(node, exp.LastDay):
        return "date"
    if isinstance(node, (*_DATE_PARTS, exp.Extract, exp.DateDiff)):
        return "integer"
    if isinstance(node, _TRUNCS):
        k = kind(node.this, types)
        return k if k in TEMPORAL else None
    if isinstance(node, (exp.StrToDate, exp.DateFromParts, exp.CurrentDate)):
        return "date"
    if isinstance(node, (exp.StrToTime, exp.CurrentTimestamp)):
        return "timestamp"
    if isinstance(node, exp.Interval):
        return "interval"
    if isinstance(node, exp.Anonymous):
        name = str(node.name).lower()
        if name in ("prefix", "suffix", "isfinite", "isinf", "isnan"):
            return "boolean"
        if name in ("strlen", "date_part", "datepart"):
            return "integer"
        if name == "round_even" and node.expressions:
            k = kind(node.expressions[0], types)
            return k if k in NUMERIC else None
    return None


def _meet(a: exp.Expression, b: exp.Expression, types: Types) -> bool:
    """Can these two operands meet without a failing cast (see :func:`compatible`)?"""
    ka, kb = kind(a, types), kind(b, types)
    if {ka, kb} == {"date", "timestamp"}:  # a guarded date casts to a timestamp
        return guarded(a if ka == "date" else b)
    return compatible(ka, kb)


def compatible(a: str | None, b: str | None) -> bool:
    """Can values of kinds ``a`` and ``b`` meet (compare, unify) without a failing cast?

    Numbers with numbers (DuckDB widens to a common type that holds both), text with text,
    like with like; NULL with anything. DATE with TIMESTAMP is not: a far date does not cast.
    """
    if a == "null" or b == "null":
        return True
    if a is None or b is None:
        return False
    if a in NUMERIC and b in NUMERIC:
        return True
    if {a, b} <= {"string", "strlit"}:
        return True
    return a == b


# --------------------------------------------------------------------------- helpers


def _post_order(tree: exp.Expression) -> list[exp.Expression]:
    """Every node, children before parents."""
    return list(reversed(list(tree.walk(bfs=True))))


def _replace(node: exp.Expression, build: Callable[[exp.Expression], exp.Expression],
             root: exp.Expression) -> exp.Expression:
    """Put ``build(node)`` where ``node`` is (it may hold ``node``); returns the root."""
    parent, key, index = node.parent, node.arg_key, node.index
    new = build(node)
    if parent is None:
        return new
    parent.set(key, new, index)
    return root


def _try_cast(node: exp.Expression, to: str) -> exp.TryCast:
    return exp.TryCast(this=node, to=exp.DataType.build(to), safe=True)


def _small_int(node: exp.Expression | None, limit: int) -> bool:
    """An integer literal (or its negation) of magnitude at most ``limit``."""
    node = node.unnest() if node is not None else None
    if isinstance(node, exp.Neg):
        node = node.this
    return isinstance(node, exp.Literal) and node.is_int and abs(int(node.this)) <= limit


def _nonnegative_int(node: exp.Expression | None) -> bool:
    node = node.unnest() if node is not None else None
    return isinstance(node, exp.Literal) and node.is_int and int(node.this) >= 0


def _operands(node: exp.Expression) -> Iterator[tuple[exp.Expression, exp.Expression]]:
    """Pairs of operands a comparison-like node makes meet."""
    if isinstance(node, (*_COMPARISONS, exp.Nullif)):
        yield node.this, node.expression
    elif isinstance(node, exp.Between):
        yield node.this, node.args["low"]
        yield node.this, node.args["high"]
    elif isinstance(node, exp.In):
        for e in node.expressions:
            yield node.this, e
    elif isinstance(node, (exp.Least, exp.Greatest, exp.Coalesce)):
        for e in node.expressions:
            yield node.this, e
    elif isinstance(node, exp.Case):
        values = [i.args.get("true") for i in node.args.get("ifs") or []]
        if node.args.get("default") is not None:
            values.append(node.args["default"])
        for v in values[1:]:
            yield values[0], v
    elif isinstance(node, exp.If):
        if node.args.get("false") is not None:
            yield node.args["true"], node.args["false"]


# --------------------------------------------------------------------------- rules


def try_casts(expression: exp.Expression, types: Types) -> exp.Expression:
    """Every ``CAST(x AS T)`` (and ``x::T``, ``DATE '...'``) becomes ``TRY_CAST(x AS T)``."""
    root = expression
    for node in _post_order(expression):
        if type(node) is exp.Cast:
            root = _replace(node, lambda n: exp.TryCast(this=n.this, to=n.args["to"], safe=True),
                            root)
    return root


def cast_literals(expression: exp.Expression, types: Types) -> exp.Expression:
    """An untyped string literal meeting a typed operand becomes ``TRY_CAST(lit AS T)``.

    ``d >= '2024-01-01'`` makes DuckDB cast the literal to DATE, lazily: an invalid literal
    raises only for the rows that reach it. Made explicit, the cast is total and still folds
    to a constant (the filter is pushed into the scan as before).
    """
    root = expression
    for node in _post_order(expression):
        for a, b in list(_operands(node)):
            for lit, other in ((a, b), (b, a)):
                target = _CAST_TO.get(kind(other, types) or "")
                if (target and isinstance(lit, exp.Literal) and lit.is_string
                        and lit.parent is not None):
                    root = _replace(lit, lambda n, t=target: _try_cast(n, t), root)
    return root


def _bounds(of: str) -> tuple[exp.TryCast, exp.TryCast]:
    lo, hi = TIMESTAMP_RANGE if of == "timestamp" else DATE_RANGE
    to = "TIMESTAMP" if of == "timestamp" else "DATE"
    return _try_cast(exp.Literal.string(lo), to), _try_cast(exp.Literal.string(hi), to)


def _guard_of(of: str) -> Callable[[exp.Expression], exp.Expression]:
    def guard(node: exp.Expression) -> exp.Expression:
        lo, hi = _bounds(of)
        return exp.Case(ifs=[exp.If(this=exp.Between(this=node.copy(), low=lo, high=hi),
                                    true=node.copy())])
    return guard


def guarded(node: exp.Expression) -> bool:
    """Is ``node`` a guard :func:`guard_temporal` made (a date or timestamp within years
    1..9999, else NULL)?"""
    node = node.unnest()
    ifs = node.args.get("ifs") if isinstance(node, exp.Case) else None
    cond = ifs[0].this if ifs and len(ifs) == 1 else None
    if not isinstance(cond, exp.Between) or node.args.get("default") is not None:
        return False
    bounds = (cond.args.get("low"), cond.args.get("high"))
    return bounds in (_bounds("timestamp"), _bounds("date"))


def _temporal_args(node: exp.Expression, types: Types) -> list[tuple[exp.Expression, str]]:
    """(argument, kind) pairs of ``node`` that Spark turns into a timestamp or does
    timestamp arithmetic on, and so overflow near the range limits."""
    k = lambda n: kind(n, types)  # noqa: E731
    both = ("date", "timestamp")
    args: list[tuple[exp.Expression | None, tuple[str, ...]]] = []
    if isinstance(node, _TRUNCS):
        args = [(node.this, both)]
    elif isinstance(node, (exp.DateAdd, exp.DateSub)):
        args = [(node.this, ("timestamp",))]
    elif isinstance(node, exp.DateDiff):
        args = [(node.this, both), (node.expression, both)]
    elif isinstance(node, (exp.Add, exp.Sub)):
        ka, kb = k(node.this), k(node.expression)
        if "interval" in (ka, kb) or (isinstance(node, exp.Sub) and ka == kb == "timestamp"):
            args = [(node.this, ("timestamp",)), (node.expression, ("timestamp",))]
    elif isinstance(node, (exp.TimeToStr, exp.TimeToUnix, exp.Hour, exp.Minute,
                           *((exp.Second,) if hasattr(exp, "Second") else ()))):
        args = [(node.this, ("date",))]
    elif isinstance(node, exp.Extract):
        if _unit(node.this) not in _DATE_UNITS:
            args = [(node.expression, ("date",))]
    elif isinstance(node, exp.Anonymous) and str(node.name).lower() in ("date_part",
                                                                       "datepart"):
        if node.expressions and _unit(node.expressions[0]) not in _DATE_UNITS:
            args = [(node.expressions[-1], ("date",))]
    elif isinstance(node, exp.TryCast) and _datatype_kind(node.args.get("to")) == "timestamp":
        args = [(node.this, ("date",))]
    else:  # a date meeting a timestamp is cast to one
        for a, b in _operands(node):
            if {k(a), k(b)} == {"date", "timestamp"}:
                args += [(a, ("date",)), (b, ("date",))]
    return [(a, k(a)) for a, kinds in args if a is not None and k(a) in kinds]


def guard_temporal(expression: exp.Expression, types: Types) -> exp.Expression:
    """A date or timestamp that Spark converts to a timestamp, truncates, formats or does
    interval arithmetic on is NULL outside years 1..9999: ``CASE WHEN d BETWEEN ... THEN d
    END``.

    Spark (ANSI off) raises ``long overflow`` there near its timestamp limits (a DATE reaches
    years far beyond them) and has no ``TRY``; the guard is total on both engines, and where
    it applies DuckDB needs no TRY either.
    """
    root = expression
    for node in _post_order(expression):
        for arg, of in _temporal_args(node, types):
            if not guarded(arg) and not _in_range_literal(arg):
                root = _replace(arg, _guard_of(of), root)
    return root


def _in_range_literal(node: exp.Expression) -> bool:
    """``DATE '2025-12-31'``, ``TIMESTAMP '2020-01-01 10:00'``: a constant with a four-digit
    year needs no guard."""
    node = node.unnest()
    if isinstance(node, exp.Cast):  # TryCast too
        node = node.this
    return (isinstance(node, exp.Literal) and node.is_string
            and re.fullmatch(r"\d{4}-\d{2}-\d{2}([ T][0-9:.]*)?", node.this) is not None)


def _boolean_operands(node: exp.Expression) -> list[exp.Expression]:
    """Operands DuckDB casts to BOOLEAN implicitly."""
    if isinstance(node, (exp.And, exp.Or)):
        return [node.this, node.expression]
    if isinstance(node, exp.Not):
        return [node.this]
    if isinstance(node, exp.Case):
        return [i.this for i in node.args.get("ifs") or []]
    if isinstance(node, exp.If) and not isinstance(node.parent, exp.Case):
        return [node.this]
    return []


def raises(node: exp.Expression, types: Types) -> bool:
    """Can ``node`` raise on some value, its operands being total? True when in doubt."""
    k = lambda n: kind(n, types)  # noqa: E731
    if isinstance(node, exp.If) and isinstance(node.parent, exp.Case):
        return False  # a CASE branch; the CASE is judged as a whole
    if any(not _meet(a, b, types) for a, b in _operands(node)):
        return True
    if isinstance(node, (*_COMPARISONS, exp.Between, exp.In, exp.Nullif, exp.Least,
                         exp.Greatest, exp.Coalesce, exp.Case, exp.If)):
        return False
    if isinstance(node, exp.Is):
        target = node.expression
        return not (isinstance(target, exp.Null) or k(node.this) in ("boolean", "null"))
    if isinstance(node, exp.Array):
        return _common([k(e) for e in node.expressions]) is None
    if isinstance(node, _NEVER_RAISE):
        return False
    if isinstance(node, exp.Neg):
        inner = node.this.unnest()
        return not (k(inner) == "double" or (isinstance(inner, exp.Literal) and not
                                              inner.is_string))
    if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Mod)):
        a, b = k(node.this), k(node.expression)
        if a in NUMERIC and b in NUMERIC:
            return "double" not in (a, b)  # integer and decimal arithmetic overflows
        return not (isinstance(node, exp.Sub) and a == b == "date")
    if isinstance(node, exp.Div):
        return not (k(node.this) in NUMERIC | {"null"}
                    and k(node.expression) in NUMERIC | {"null"})
    if isinstance(node, exp.IntDiv):
        return True  # `//` by zero raises, for floats too
    if isinstance(node, exp.Abs):
        return k(node.this) != "double"  # abs(INT64 min) overflows
    if isinstance(node, (exp.Round, exp.Trunc)):
        a = k(node.this)
        digits = node.args.get("decimals")
        return not (a == "double" or (a in NUMERIC and (digits is None
                                                         or _nonnegative_int(digits))))
    if isinstance(node, (exp.Floor, exp.Ceil, exp.Sign)):
        return k(node.this) not in NUMERIC
    if isinstance(node, _FLOAT_FUNCS):
        return not all(k(c) in NUMERIC for c in (node.this, node.expression) if c is not None)
    if isinstance(node, (exp.IsNan, exp.IsInf)):
        return k(node.this) not in NUMERIC
    if isinstance(node, _DATE_PARTS):
        return k(node.this) not in TEMPORAL
    if isinstance(node, exp.Extract):
        return not (isinstance(node.this, exp.Var) and k(node.expression) in TEMPORAL)
    if isinstance(node, _TRUNCS):  # a DATE beyond the TIMESTAMP range raises, unless guarded
        return not (_unit(node.args.get("unit")) and k(node.this) in TEMPORAL
                    and guarded(node.this))
    if isinstance(node, exp.DateDiff):
        unit, args = _unit(node.args.get("unit")), (node.this, node.expression)
        return not (unit and all(k(a) in TEMPORAL for a in args) and (
            all(guarded(a) for a in args)
            or (unit in _COARSE_UNITS and all(k(a) == "date" for a in args))))
    if isinstance(node, exp.Interval):
        return not isinstance(node.this, exp.Literal)
    if isinstance(node, exp.TimeToStr):
        fmt = node.args.get("format")
        return not (k(node.this) in TEMPORAL and isinstance(fmt, exp.Literal))
    if isinstance(node, (exp.Substring, exp.Left, exp.Right)):
        sizes = [node.args.get(a) for a in ("start", "length", "expression")]
        return not all(_small_int(s, SUBSTRING_LIMIT) for s in sizes if s is not None)
    if isinstance(node, exp.Pad):
        fill = node.args.get("fill_pattern")
        return not (_small_int(node.expression, SUBSTRING_LIMIT) and isinstance(fill, exp.Literal)
                    and fill.is_string and fill.this != "")  # empty padding raises
    if isinstance(node, exp.Anonymous):
        name = str(node.name).lower()
        args = node.expressions
        if name in _SAFE_ANONYMOUS:
            return False
        if name in _NUMERIC_ANONYMOUS:
            return not (args and k(args[0]) in NUMERIC | TEMPORAL)
        if name in ("date_part", "datepart"):
            return not (len(args) == 2 and _unit(args[0]) and k(args[1]) in TEMPORAL)
        if name == "round_even":
            return not (args and (k(args[0]) == "double" or (
                k(args[0]) in NUMERIC and all(_nonnegative_int(a) for a in args[1:]))))
        return True
    # DateAdd/DateSub, StrToTime/StrToDate, DateFromParts and anything not known
    return True


def try_raising(expression: exp.Expression, types: Types) -> exp.Expression:
    """Each node that can raise on a value (see :func:`raises`) wrapped in ``TRY(...)``;
    a non-boolean operand of AND/OR/NOT/CASE WHEN made ``TRY_CAST(x AS BOOLEAN)``."""
    root = expression
    for node in _post_order(expression):
        for operand in _boolean_operands(node):
            if operand is not None and kind(operand, types) not in ("boolean", "null"):
                root = _replace(operand, lambda n: _try_cast(n, "BOOLEAN"), root)
        if raises(node, types):
            root = _replace(node, lambda n: exp.Try(this=n), root)
    return root


RULES: tuple[Rule, ...] = (try_casts, cast_literals, guard_temporal, try_raising)


def total(expression: exp.Expression, types: Types, *, predicate: bool = False,
          rules: tuple[Rule, ...] = RULES) -> exp.Expression:
    """A copy of ``expression`` that cannot raise on any value in DuckDB.

    ``types`` maps ``alias.column`` to the contract's logicalType. ``predicate=True`` for a
    WHERE or ON condition: a value that is not provably boolean is made
    ``TRY_CAST(x AS BOOLEAN)`` (the cast the filter would do implicitly).
    """
    tree = expression.copy()
    for rule in rules:
        tree = rule(tree, types)
    if predicate and kind(tree, types) not in ("boolean", "null"):
        tree = _try_cast(tree, "BOOLEAN")
    return tree


def strip_try(tree: exp.Expression) -> exp.Expression:
    """A copy of ``tree`` without ``TRY(...)`` wrappers (Spark has none; ``TRY_CAST`` and
    the timestamp guards stay)."""
    tree = tree.copy()
    while isinstance(tree, exp.Try):
        tree = tree.this
        tree.parent = None
    for node in list(tree.find_all(exp.Try)):
        node.replace(node.this)
    return tree
