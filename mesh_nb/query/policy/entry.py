"""The shared stages of both checks, and :func:`check` for dp-aggregate queries."""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from ...contract.model import Contract
from ..parse import parse, redact_tree, sql_text, tree_hash
from .ctes import _ctes
from .groups import _group_keys
from .helper import _unique
from .joins import _joins, _where
from .model import CheckedQuery, TableRef
from .modes import _mode
from .postprocess import _limit, _order, _OverOutputs
from .rules import _reject
from .scope import _Scope
from .select import _select_list
from .statement import _clauses, _parts, _statement, _walk
from .tables import _scope


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
