"""Post-processing of a release: HAVING, ORDER BY and LIMIT/OFFSET over released values.

It reads only released (noisy) values, so it is free; it is a step of the release, not a
second engine. The checked query's HAVING and ORDER BY trees (rewritten over the outputs by
the policy) are evaluated in numpy over the released frame with DuckDB's semantics, which the
release had before: three-valued logic (a NULL condition drops the row), NULLs last in both
directions unless the query says otherwise, NaN equal to itself and above every number,
``/`` on numbers as float division (x/0 is ±inf or NaN), ``//`` and ``%`` by zero an error,
integer overflow an error. A pandas NaN in a float column is NULL, as DuckDB reads it.

An error of the evaluation is :class:`PostFailure`, whose text holds no value (the runner
turns it into the one generic failure). A node or an operand type the evaluator does not
model (the policy lets the whole scalar whitelist into HAVING and ORDER BY: string and date
functions, CASE, casts, implicit casts between types) is evaluated by DuckDB over the released
frame instead, as before (:func:`_by_duckdb`).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Callable

import numpy as np
from sqlglot import exp

if TYPE_CHECKING:
    import pandas as pd

    from .policy import CheckedQuery

INT64 = (-(2**63), 2**63 - 1)
POST_MEMORY = "256MB"  # DuckDB's memory cap when it post-processes (a few released rows)


class PostFailure(Exception):
    """Evaluating HAVING or ORDER BY failed (division by zero, overflow); no value inside."""


class Unsupported(Exception):
    """A node or operand type outside the evaluator (DuckDB evaluates the query instead)."""


@dataclass(frozen=True)
class Value:
    """A column of values: ``data`` (placeholders where ``null``), ``null`` and ``kind``, one
    of int | float | decimal (a non-integer literal) | str | bool | null."""

    data: np.ndarray
    null: np.ndarray
    kind: str


def post_process(checked: "CheckedQuery", frame: "pd.DataFrame", accuracy: "pd.DataFrame"
                 ) -> tuple["pd.DataFrame", "pd.DataFrame"]:
    """The released frame after HAVING, ORDER BY and LIMIT/OFFSET, and its accuracy table
    (its ``row`` is the position of the cell in the final frame)."""
    outputs = list(checked.outputs)
    if checked.having is None and not checked.order and checked.limit is None:
        return (frame if list(frame.columns) == outputs else frame[outputs]), accuracy
    try:
        rows = kept_rows(checked, frame)
    except Unsupported:
        rows = _by_duckdb(checked, frame)
    kept = frame[outputs].iloc[rows].reset_index(drop=True)
    position = {int(old): new for new, old in enumerate(rows)}
    accuracy = accuracy[accuracy.row.isin(position)].assign(row=lambda a: a.row.map(position))
    return kept, accuracy.sort_values(["output", "row"], kind="stable").reset_index(drop=True)


def kept_rows(checked: "CheckedQuery", frame: "pd.DataFrame") -> np.ndarray:
    """Positions of the released rows HAVING keeps, in ORDER BY order, LIMIT/OFFSET applied;
    :class:`Unsupported` for what the evaluator does not model."""
    rows = np.arange(len(frame))
    columns = {c: column(frame[c]) for c in checked.outputs}
    if checked.having is not None:
        kept = evaluate(checked.having, columns, len(frame))
        if kept.kind == "null":
            rows = rows[:0]
        elif kept.kind != "bool":
            raise Unsupported(kept.kind)  # DuckDB casts a non-boolean condition
        else:
            rows = rows[kept.data.astype(bool) & ~kept.null]
    if any(o.this.find(exp.Column) is None for o in checked.order):
        raise Unsupported("a constant ORDER BY item")  # DuckDB reads some as positions
    if checked.order:  # over the rows HAVING kept only, as SQL evaluates it
        kept_columns = {c: Value(v.data[rows], v.null[rows], v.kind) for c, v in columns.items()}
        keys = [_sort_key(o, evaluate(o.this, kept_columns, len(rows))) for o in checked.order]
        rows = rows[np.lexsort([np.arange(len(rows)), *reversed(keys)])]
    start = int(checked.offset or 0)
    stop = None if checked.limit is None else start + int(checked.limit)
    return rows[start:stop]


def column(series: "pd.Series") -> Value:
    """A released column as a :class:`Value` (NaN in a float column is NULL)."""
    values = series.to_numpy()
    if values.dtype.kind in "iu":
        return Value(values.astype(np.int64), np.zeros(len(values), bool), "int")
    if values.dtype.kind == "f":
        return Value(values.astype(float), np.isnan(values), "float")
    if values.dtype.kind == "b":
        return Value(values, np.zeros(len(values), bool), "bool")
    if values.dtype.kind != "O":
        raise Unsupported(str(values.dtype))
    null = np.array([v is None or (isinstance(v, float) and v != v) for v in values], bool)
    types = {type(v) for v, n in zip(values, null) if not n}
    if not types:
        return Value(values, null, "null")
    if types == {str}:
        return Value(values, null, "str")
    if types <= {bool, np.bool_}:
        return Value(np.array([bool(v) if not n else False for v, n in zip(values, null)]),
                     null, "bool")
    raise Unsupported("mixed column")


def _const(value: object, kind: str, n: int) -> Value:
    data = np.empty(n, object if kind == "str" else None)
    data[:] = value if value is not None else 0
    return Value(data, np.full(n, value is None), kind)


def _literal(node: exp.Literal, n: int) -> Value:
    text = str(node.this)
    if node.is_string:
        return _const(text, "str", n)
    if node.is_int:
        value = int(text)
        if not INT64[0] <= value <= INT64[1]:
            raise Unsupported("huge integer")
        return _const(value, "int", n)
    if "e" in text.lower():
        return _const(float(text), "float", n)  # DuckDB reads 1e3 as DOUBLE
    if Decimal(float(text)) != Decimal(text):
        raise Unsupported("inexact decimal")  # DuckDB computes DECIMAL exactly
    return _const(float(text), "decimal", n)


def evaluate(node: exp.Expression, columns: dict[str, Value], n: int) -> Value:
    """``node`` over the released columns; :class:`Unsupported` outside the model."""
    if isinstance(node, exp.Paren):
        return evaluate(node.this, columns, n)
    if isinstance(node, exp.Column) and not node.table and node.name in columns:
        return columns[node.name]
    if isinstance(node, exp.Literal):
        return _literal(node, n)
    if isinstance(node, exp.Boolean):
        return _const(bool(node.this), "bool", n)
    if isinstance(node, exp.Null):
        return _const(None, "null", n)
    for klass, rule in _RULES:
        if isinstance(node, klass):
            return rule(node, columns, n)
    raise Unsupported(node.key)


def _both(node: exp.Expression, columns: dict[str, Value], n: int) -> tuple[Value, Value]:
    return evaluate(node.this, columns, n), evaluate(node.expression, columns, n)


def _numeric(a: Value, b: Value) -> str:
    """The kind of arithmetic on ``a`` and ``b``: int, or float when one is a float."""
    kinds = {a.kind, b.kind} - {"null"}
    if not kinds <= {"int", "float", "decimal"}:
        raise Unsupported("arithmetic on non-numbers")
    if "float" in kinds:
        return "float"
    if "decimal" in kinds:
        raise Unsupported("DECIMAL arithmetic")
    return "int"


def _arith(node: exp.Expression, columns: dict[str, Value], n: int) -> Value:
    a, b = _both(node, columns, n)
    kind, null = _numeric(a, b), a.null | b.null
    if isinstance(node, exp.Div):
        with np.errstate(all="ignore"):
            data = a.data.astype(float) / b.data.astype(float)
        return Value(np.where(null, 0.0, data), null, "float")
    zero = ~null & (b.data == 0)
    if isinstance(node, (exp.IntDiv, exp.Mod)) and zero.any() and (
            kind == "int" or isinstance(node, exp.IntDiv)):
        raise PostFailure("division by zero in post-processing")
    if kind == "float":
        with np.errstate(all="ignore"):
            x, y = a.data.astype(float), b.data.astype(float)
            if isinstance(node, exp.Mod):
                data = np.fmod(x, y)  # the sign of the dividend, as in C
            elif isinstance(node, exp.IntDiv):
                data = x / y  # DuckDB's `//` on a float divides
            else:
                data = _FLOAT_OPS[type(node)](x, y)
        return Value(np.where(null, 0.0, data), null, "float")
    x = [int(v) for v in a.data]
    y = [int(v) if not z else 1 for v, z in zip(b.data, null)]
    out = [0 if m else _int_op(node, p, q) for p, q, m in zip(x, y, null)]
    if any(not INT64[0] <= v <= INT64[1] for v in out):
        raise PostFailure("integer overflow in post-processing")
    return Value(np.array(out, np.int64), null, "int")


_FLOAT_OPS: dict[type, Callable] = {exp.Add: np.add, exp.Sub: np.subtract,
                                    exp.Mul: np.multiply}


def _int_op(node: exp.Expression, a: int, b: int) -> int:
    """DuckDB's integer + - * // % (``//`` and ``%`` truncate toward zero, as in C)."""
    if isinstance(node, exp.Add):
        return a + b
    if isinstance(node, exp.Sub):
        return a - b
    if isinstance(node, exp.Mul):
        return a * b
    quotient = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)
    return quotient if isinstance(node, exp.IntDiv) else a - b * quotient


def _neg(node: exp.Neg, columns: dict[str, Value], n: int) -> Value:
    a = evaluate(node.this, columns, n)
    if a.kind == "null":
        return a
    if a.kind in ("float", "decimal"):
        return Value(-a.data, a.null, a.kind)
    if a.kind == "int":
        if (~a.null & (a.data == INT64[0])).any():
            raise PostFailure("integer overflow in post-processing")
        return Value(-a.data, a.null, "int")
    raise Unsupported("negation of a non-number")


def _comparable(a: Value, b: Value) -> str:
    """The family two operands compare in: number, str or bool (else Unsupported)."""
    kinds = {a.kind, b.kind} - {"null"}
    if not kinds or kinds <= {"int", "float", "decimal"}:
        return "number"
    if kinds in ({"str"}, {"bool"}):
        return kinds.pop()
    raise Unsupported("comparison across types")  # DuckDB casts, or refuses


_COMPARE: dict[type, Callable] = {exp.EQ: operator.eq, exp.NEQ: operator.ne,
                                  exp.GT: operator.gt, exp.GTE: operator.ge,
                                  exp.LT: operator.lt, exp.LTE: operator.le}


def _compared(op: Callable, a: Value, b: Value) -> Value:
    """``a op b`` as DuckDB compares (NaN equal to itself and above every number)."""
    family, null = _comparable(a, b), a.null | b.null
    if family == "number" and not a.kind == b.kind == "int":
        x, y = a.data.astype(float), b.data.astype(float)
        nx, ny = np.isnan(x), np.isnan(y)
        nan = nx | ny
        plain = op(np.where(nan, 0.0, x), np.where(nan, 0.0, y))
        data = np.where(nan, op(nx.astype(int), ny.astype(int)), plain)
    elif family in ("number", "bool"):
        data = op(a.data, b.data)
    else:  # strings: placeholders are never compared
        data = np.array([not m and bool(op(x, y)) for x, y, m in zip(a.data, b.data, null)],
                        bool)
    return Value(np.asarray(data, bool), null, "bool")


def _comparison(node: exp.Expression, columns: dict[str, Value], n: int) -> Value:
    return _compared(_COMPARE[type(node)], *_both(node, columns, n))


def _distinct(node: exp.Expression, columns: dict[str, Value], n: int) -> Value:
    """``IS [NOT] DISTINCT FROM`` (``<=>``): NULL is a value like any other."""
    a, b = _both(node, columns, n)
    same = _compared(operator.eq, a, b).data & ~a.null & ~b.null | (a.null & b.null)
    data = same if isinstance(node, exp.NullSafeEQ) else ~same
    return Value(data, np.zeros(n, bool), "bool")


def _truth(v: Value) -> tuple[np.ndarray, np.ndarray]:
    """(true, false) of a condition (neither: unknown)."""
    if v.kind not in ("bool", "null"):
        raise Unsupported("a non-boolean condition")  # DuckDB casts it
    true = v.data.astype(bool) & ~v.null
    return true, ~true & ~v.null


def _combine(conjunction: bool, a: Value, b: Value) -> Value:
    """``a AND b`` (or ``a OR b``) in three-valued logic."""
    (t1, f1), (t2, f2) = _truth(a), _truth(b)
    true, false = (t1 & t2, f1 | f2) if conjunction else (t1 | t2, f1 & f2)
    return Value(true, ~true & ~false, "bool")


def _logic(node: exp.Expression, columns: dict[str, Value], n: int) -> Value:
    return _combine(isinstance(node, exp.And), *_both(node, columns, n))


def _not(node: exp.Not, columns: dict[str, Value], n: int) -> Value:
    true, false = _truth(evaluate(node.this, columns, n))
    return Value(false, ~true & ~false, "bool")


def _is(node: exp.Is, columns: dict[str, Value], n: int) -> Value:
    if not isinstance(node.expression, exp.Null):
        raise Unsupported("IS TRUE / IS FALSE")
    return Value(evaluate(node.this, columns, n).null.copy(), np.zeros(n, bool), "bool")


def _between(node: exp.Between, columns: dict[str, Value], n: int) -> Value:
    v, low, high = (evaluate(node.args[k], columns, n) for k in ("this", "low", "high"))
    return _combine(True, _compared(operator.ge, v, low), _compared(operator.le, v, high))


def _in(node: exp.In, columns: dict[str, Value], n: int) -> Value:
    if any(node.args.get(k) for k in ("query", "unnest", "field")) or not node.expressions:
        raise Unsupported("IN over a subquery")
    v = evaluate(node.this, columns, n)
    found = [_compared(operator.eq, v, evaluate(e, columns, n)) for e in node.expressions]
    result = found[0]
    for other in found[1:]:
        result = _combine(False, result, other)
    return result


_RULES: tuple[tuple[type | tuple[type, ...], Callable[..., Value]], ...] = (
    ((exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod), _arith),
    (exp.Neg, _neg),
    (tuple(_COMPARE), _comparison),
    ((exp.NullSafeEQ, exp.NullSafeNEQ), _distinct),
    ((exp.And, exp.Or), _logic),
    (exp.Not, _not),
    (exp.Is, _is),
    (exp.Between, _between),
    (exp.In, _in),
)


def _sort_key(ordered: exp.Ordered, v: Value) -> np.ndarray:
    """One ORDER BY item as ranks for :func:`numpy.lexsort` (ties equal)."""
    null, data = v.null, v.data
    ranks = np.zeros(len(data), float)
    present = ~null
    if present.any():
        values = data[present]
        if v.kind in ("int", "float", "decimal"):
            values = values.astype(float)  # NaN sorts above every number, as in DuckDB
        elif v.kind not in ("str", "bool"):
            raise Unsupported(v.kind)
        _, inverse = np.unique(values, return_inverse=True)
        ranks[present] = inverse
    desc = bool(ordered.args.get("desc"))
    if desc:
        ranks = -ranks
    nulls_first = bool(ordered.args.get("nulls_first"))
    ranks[null] = -np.inf if nulls_first else np.inf
    return ranks


def _by_duckdb(checked: "CheckedQuery", frame: "pd.DataFrame") -> np.ndarray:
    """:func:`kept_rows` by DuckDB over the released frame, for what the evaluator does not
    model (see the module docstring); in a sandboxed DuckDB like the engine's (no file or
    network access, one thread, a memory cap)."""
    from .engines import sandboxed_duckdb
    from .policy import on_outputs

    having = f" WHERE {on_outputs(checked, checked.having)}" \
        if checked.having is not None else ""
    order = (" ORDER BY " + ", ".join(on_outputs(checked, o) for o in checked.order)
             if checked.order else "")
    limit = f" LIMIT {int(checked.limit)}" if checked.limit is not None else ""
    offset = f" OFFSET {int(checked.offset)}" if checked.offset else ""
    cols = ", ".join(f'"{c}"' for c in checked.outputs)
    with sandboxed_duckdb((), threads=1, memory=POST_MEMORY) as con:
        con.register("released", frame.assign(__row=range(len(frame))))
        kept = con.execute(f"SELECT {cols}, __row FROM released{having}{order}{limit}{offset}"
                           ).df()
    return kept["__row"].to_numpy()
