"""Post-processing clauses: HAVING, ORDER BY and LIMIT/OFFSET, rewritten over the outputs
(they apply to the released frame)."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from sqlglot import exp

from ...errors import PolicyViolation
from ...rules import violation
from .model import CheckedQuery
from .scope import Draft, Scope
from .trees import int_literal, is_aggregate

NOT_OUTPUT_RULES = {"HAVING": "having-not-output", "ORDER BY": "order-by-not-output"}
"""The rule of a post-processing clause that reads something other than the outputs."""


def having(draft: Draft) -> Draft:
    """HAVING over the outputs (rule ``having-not-output``)."""
    clause = draft.select.args.get("having")
    if clause is None:
        return draft
    return replace(draft, having=_over_outputs(draft)(clause.this, "HAVING"))


def order_by(draft: Draft) -> Draft:
    """ORDER BY over the outputs, by name, position or as written in the select list (rule
    ``order-by-not-output``)."""
    over = _over_outputs(draft)
    return replace(draft, order=_order(draft.select, lambda e: over(e, "ORDER BY"),
                                       [exp.column(name) for name in draft.outputs]))


def row_order(draft: Draft) -> Draft:
    """ORDER BY of a row query, over qualified source columns (rule ``order-by-not-output``;
    the columns' rules in context ``order``)."""
    scope, outputs = draft.scope, draft.rows
    by_name = {o.name: o.expr for o in outputs}

    def order_item(expr: exp.Expression) -> exp.Expression:
        if isinstance(expr, exp.Column) and not expr.table and expr.name in by_name:
            return by_name[expr.name].copy()
        return scope.qualify(expr, None)

    order = _order(draft.select, order_item, [o.expr for o in outputs])
    for ordered in order:
        for src in scope.sources(ordered):
            scope.check(src, "order")
    return replace(draft, order=order)


def limit_offset(draft: Draft) -> Draft:
    """LIMIT and OFFSET, each one non-negative integer (rule ``limit``)."""
    return replace(draft, limit=_limit(draft.select, "limit"),
                   offset=_limit(draft.select, "offset"))


def _over_outputs(draft: Draft) -> OverOutputs:
    return OverOutputs(draft.scope, draft.index, draft.outputs)


class OverOutputs:
    """Rewrites HAVING / ORDER BY expressions over output names (post-processing)."""

    def __init__(self, scope: Scope, index: dict[exp.Expression, str],
                 outputs: tuple[str, ...]):
        self.scope, self.index, self.outputs = scope, index, outputs

    def __call__(self, expr: exp.Expression, clause: str) -> exp.Expression:
        rule = NOT_OUTPUT_RULES[clause]
        fix = (f"{clause} applies to released values: use the outputs "
               f"({', '.join(self.outputs)}) or aggregates as written in the select list")

        def over(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column) and not node.table and node.name in self.outputs:
                return exp.column(node.name)
            if not any(isinstance(n, exp.Column) or is_aggregate(n) for n in node.walk()):
                return node
            try:
                q = self.scope.qualify(node, None)
            except PolicyViolation:
                q = None
            if q is not None and q in self.index:
                return exp.column(self.index[q])
            if is_aggregate(node):
                raise violation(rule, f"{clause} uses an aggregate that is not an output", fix)
            if isinstance(node, exp.Column):
                raise violation(rule, f"{clause} uses `{node.name}`, which is not an output", fix)
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
        position = int_literal(ordered.this)
        if position is not None and not 1 <= position <= len(positions):
            raise violation("order-by-not-output", "an ORDER BY position is not an output "
                            "position", f"use 1..{len(positions)} or an output name")
        new = ordered.copy()
        new.set("this", positions[position - 1].copy() if position is not None
                else item(ordered.this))
        if position is None and new.this.find(exp.Column) is None:
            raise violation("order-by-not-output", "an ORDER BY item is a constant, not an "
                            "output (a constant orders nothing; only a plain integer is a "
                            "position)", f"use a position 1..{len(positions)} or an output name")
        out.append(new)
    return tuple(out)


def _limit(select: exp.Select, key: str) -> int | None:
    clause = select.args.get(key)
    if clause is None:
        return None
    value = int_literal(clause.expression)
    if (value is None or value < 0 or clause.expressions
            or any(clause.args.get(k) for k in ("offset", "limit_options"))):
        raise violation("limit", f"{key.upper()} must be one non-negative integer",
                        f"write e.g. {key.upper()} 10")
    return value
