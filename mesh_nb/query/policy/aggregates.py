"""Aggregates and bounds: each aggregate of the select list taken apart for the planner, with
the bounds of its value from interval arithmetic over the contract bounds."""

from __future__ import annotations

import math
from typing import Callable, Iterable

from sqlglot import exp

from ...errors import PolicyViolation
from ...rules import violation
from .model import Aggregate
from .scope import Scope
from .trees import func_name, int_literal, is_aggregate
from .whitelist import AGGREGATES, SUPPORTED_AGGREGATES, classes

Interval = tuple[float, float] | None  # None: the value is always NULL


class Bounds:
    """Interval arithmetic over a qualified value expression, from the contract bounds."""

    def __init__(self, scope: Scope, label: str):
        self.scope, self.label = scope, label

    def of(self, value: exp.Expression) -> tuple[float, float]:
        """Bounds of ``value``; NULL-only values count as (0, 0)."""
        bounds = self(value) or (0.0, 0.0)
        if not all(math.isfinite(b) for b in bounds):
            raise self._unbounded("has no finite bounds")
        return bounds

    def __call__(self, node: exp.Expression) -> Interval:
        for klass, method in BOUND_RULES:
            if isinstance(node, klass):
                return method(self, node)
        raise violation("aggregate-expression", f"`{self.label}` aggregates a `{node.key}` "
                        "expression")

    def _unbounded(self, why: str) -> PolicyViolation:
        return violation("unbounded-expression", f"the value of `{self.label}` {why}")

    def _non_numeric(self, what: str) -> PolicyViolation:
        return violation("non-numeric-aggregate", f"`{self.label}` aggregates {what}")

    def column(self, node: exp.Column) -> Interval:
        col = self.scope.sources(node)[0].column
        if not col.numeric:
            raise self._non_numeric(f"`{col.name}`, a {col.logical_type} column")
        if col.bounds is None:
            raise violation("unbounded-column", f"`{col.name}` has no bounds in the contract, so "
                            "its sensitivity is unknown", "ask the owner to declare "
                            f"them in the contract's meshNbPrivacy `bounds: {{{col.name}: [min, "
                            "max]}`, or COUNT it")
        return col.bounds

    def literal(self, node: exp.Literal) -> Interval:
        if node.is_string:
            raise self._non_numeric("a string")
        return (float(node.this),) * 2

    def null(self, node: exp.Null) -> Interval:
        return None

    def boolean(self, node: exp.Boolean) -> Interval:
        raise self._non_numeric("a boolean")

    def inner(self, node: exp.Expression) -> Interval:
        return self(node.this)

    def neg(self, node: exp.Neg) -> Interval:
        b = self(node.this)
        return None if b is None else (-b[1], -b[0])

    def binary(self, node: exp.Binary) -> Interval:
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

    def abs(self, node: exp.Abs) -> Interval:
        b = self(node.this)
        if b is None or b[0] >= 0:
            return b
        return (-b[1], -b[0]) if b[1] <= 0 else (0.0, max(-b[0], b[1]))

    def rounded(self, node: exp.Func) -> Interval:
        digits = node.args.get("decimals")
        if digits is not None and (int_literal(digits) is None or int_literal(digits) < 0):
            raise violation("aggregate-expression", f"`{self.label}` rounds to a non-literal or "
                            "negative number of digits", "round to 0 or more digits")
        b = self(node.this)
        return None if b is None else (math.floor(b[0]), math.ceil(b[1]))

    def extreme(self, node: exp.Func) -> Interval:
        parts = [b for b in map(self, [node.this, *node.expressions]) if b is not None]
        if not parts:
            return None
        pick = min if isinstance(node, exp.Least) else max
        return pick(b[0] for b in parts), pick(b[1] for b in parts)

    def hull(self, branches: Iterable[exp.Expression | None]) -> Interval:
        parts = [b for b in (self(x) for x in branches if x is not None) if b is not None]
        if not parts:
            return None
        return min(b[0] for b in parts), max(b[1] for b in parts)

    def coalesce(self, node: exp.Coalesce) -> Interval:
        return self.hull([node.this, *node.expressions])

    def case(self, node: exp.Case) -> Interval:
        return self.hull([i.args.get("true") for i in node.args.get("ifs") or []]
                         + [node.args.get("default")])

    def if_(self, node: exp.If) -> Interval:
        return self.hull([node.args.get("true"), node.args.get("false")])

    def cast(self, node: exp.Cast) -> Interval:
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


BOUND_RULES: tuple[tuple[type, Callable[[Bounds, exp.Expression], Interval]], ...] = (
    (exp.Column, Bounds.column), (exp.Literal, Bounds.literal), (exp.Null, Bounds.null),
    (exp.Boolean, Bounds.boolean), (exp.Paren, Bounds.inner), (exp.Neg, Bounds.neg),
    ((exp.Add, exp.Sub, exp.Mul, exp.Div), Bounds.binary), (exp.Abs, Bounds.abs),
    (classes("Round", "Floor", "Ceil", "Trunc"), Bounds.rounded),
    ((exp.Least, exp.Greatest), Bounds.extreme), (exp.Coalesce, Bounds.coalesce),
    (exp.Case, Bounds.case), (exp.If, Bounds.if_), ((exp.Cast, exp.TryCast), Bounds.cast),
)


def aggregate_of(node: exp.Expression, scope: Scope) -> Aggregate:
    """An aggregate of the select list, taken apart (its name is filled in later)."""
    inner = node.this if isinstance(node, exp.WithinGroup) else node
    spec = AGGREGATES.get(type(inner))
    label = func_name(inner) if isinstance(inner, exp.Func) else inner.key
    if spec is None:
        raise violation("unsupported-aggregate", f"aggregate `{label}` is not supported",
                        f"use {SUPPORTED_AGGREGATES}")
    if any(is_aggregate(n) for n in node.walk() if n is not node and n is not inner):
        raise violation("nested-aggregate", f"`{label}` aggregates an aggregate")
    if isinstance(node, exp.WithinGroup):
        ordered = node.expression.expressions
        if len(ordered) != 1:
            raise violation("aggregate-columns", f"`{label}` orders by several values",
                            "order WITHIN GROUP by one column")
        arg, q_node = ordered[0].this, inner.this
    else:
        arg = inner.this
        q_node = inner.args.get(spec.quantile_arg) if spec.quantile_arg else None
    if spec.func == "count":
        return _count(arg, scope)
    if isinstance(arg, exp.Distinct):
        raise violation("distinct-aggregate", f"`{label}(DISTINCT ...)` is not supported")
    value = scope.qualify(arg, "aggregate")
    column = _one_source(value, scope, label)
    quantile = spec.quantile if spec.quantile_arg is None else _quantile(q_node, label)
    return Aggregate("", spec.func, value, column, Bounds(scope, label).of(value), quantile,
                     spec.sample)


def _count(arg: exp.Expression, scope: Scope) -> Aggregate:
    if isinstance(arg, exp.Star):
        return Aggregate("", "count", None, None)
    if isinstance(arg, exp.Distinct):
        exprs = arg.expressions
        value = scope.qualify(exprs[0], "count-distinct") if len(exprs) == 1 else None
        if not isinstance(value, exp.Column):
            raise violation("count-distinct", "COUNT(DISTINCT ...) must name the privacy unit")
        return Aggregate("", "count_distinct_unit", value, scope.sources(value)[0].qualified)
    value = scope.qualify(arg, "aggregate")
    return Aggregate("", "count_col", value, _one_source(value, scope, "count"))


def _one_source(value: exp.Expression, scope: Scope, label: str) -> str | None:
    sources = scope.sources(value)
    if len(sources) > 1:
        raise violation("aggregate-columns", f"`{label}` reads "
                        f"{', '.join(s.column.name for s in sources)}")
    return sources[0].qualified if sources else None


def _quantile(node: exp.Expression | None, label: str) -> float:
    node = node.unnest() if node is not None else None
    q = float(node.this) if isinstance(node, exp.Literal) and node.is_number else math.nan
    if not 0.0 <= q <= 1.0:
        raise violation("quantile-argument", f"`{label}` needs one quantile between 0 and 1")
    return q
