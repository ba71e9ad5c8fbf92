"""HAVING, ORDER BY and LIMIT/OFFSET, as post-processing over the outputs."""

from __future__ import annotations

from typing import Callable

from sqlglot import exp

from ...errors import PolicyViolation
from .helper import _int_literal, _is_aggregate
from .model import CheckedQuery
from .rules import _reject
from .scope import _Scope


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
