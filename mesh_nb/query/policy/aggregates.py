"""Aggregates of the select list, taken apart for the planner."""

from __future__ import annotations

import math

from sqlglot import exp

from .bounds import _Bounds
from .helper import _func_name, _is_aggregate
from .model import Aggregate
from .rules import _reject
from .scope import _Scope
from .whitelist import _SUPPORTED, AGGREGATES


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
