"""Interval arithmetic: the bounds of an aggregate's value from the contract bounds."""

from __future__ import annotations

import math
from typing import Callable, Iterable

from sqlglot import exp

from ...errors import PolicyViolation
from .helper import _int_literal
from .rules import _reject
from .scope import _Scope
from .whitelist import _classes

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
