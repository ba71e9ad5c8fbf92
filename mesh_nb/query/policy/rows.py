""":func:`check_rows` for pseudonymized-rows and raw-rows queries."""

from __future__ import annotations

from sqlglot import exp

from ...contract.model import Contract
from ..parse import parse
from .entry import _prepare, _texts
from .helper import _display, _has_aggregate, _unique
from .model import CheckedRows, RowOutput
from .modes import ROW_ACCESS
from .postprocess import _limit, _order
from .rules import _reject
from .select import _Names
from .statement import _parts


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
