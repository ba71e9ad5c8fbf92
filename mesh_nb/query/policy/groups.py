"""GROUP BY keys and their public categories."""

from __future__ import annotations

from sqlglot import exp

from .helper import _has_aggregate, _int_literal, _literal_value, _unique
from .rules import _reject
from .scope import _Scope, _Source


def _group_keys(select: exp.Select, scope: _Scope) -> list[tuple[exp.Expression, _Source,
                                                                  tuple | None]]:
    """(qualified key, its source column, its public categories) per distinct key."""
    group = select.args.get("group")
    if not group:
        return []
    projections = select.expressions
    if group.args.get("all"):
        raw = [p.unalias() for p in projections if not _has_aggregate(p)]
    else:
        raw = [_group_target(e, projections, scope) for e in group.expressions]
    keys: dict[exp.Expression, tuple] = {}
    for expr in raw:
        if _has_aggregate(expr):
            raise _reject("aggregate-in-group-by", "GROUP BY holds an aggregate",
                          "group by columns or expressions of one column")
        q = scope.qualify(expr, "group")
        sources = scope.sources(q)
        if not sources:
            raise _reject("group-by-constant", "a GROUP BY key reads no column",
                          "group by a column or an expression of one column")
        if len(sources) > 1:
            raise _reject("group-by-expression", "a GROUP BY key reads "
                          f"{', '.join(s.column.name for s in sources)}",
                          "group by each column separately")
        keys.setdefault(q, (q, sources[0], _categories(q, sources[0])))
    return list(keys.values())


def _group_target(expr: exp.Expression, projections: list[exp.Expression], scope: _Scope
                  ) -> exp.Expression:
    """A GROUP BY item as an expression: positions and output aliases resolved."""
    position = _int_literal(expr)
    if position is not None:
        if not 1 <= position <= len(projections):
            raise _reject("group-by-position", "a GROUP BY position is not an output position",
                          f"use 1..{len(projections)} or name the column")
        return projections[position - 1].unalias()
    if isinstance(expr, exp.Column) and not expr.table:
        name = expr.name.lower()
        if not any(e.has(name) for e in scope.entries.values()):
            for p in projections:
                if isinstance(p, exp.Alias) and p.alias == name:
                    return p.unalias()
    return expr


def _categories(key: exp.Expression, src: _Source) -> tuple | None:
    """The public value set of a group key, when the contract or the query declares it."""
    if isinstance(key, exp.Column):
        if src.column.categories is not None:
            return tuple(src.column.categories)
        return (False, True) if src.column.logical_type == "boolean" else None
    key = key.unnest()
    if isinstance(key, exp.Case):
        branches = [i.args.get("true") for i in key.args.get("ifs") or []]
        default = key.args.get("default")
        try:
            values = [_literal_value(b) for b in branches]
            values.append(_literal_value(default) if default is not None else None)
        except ValueError:
            return None
        return _unique(values)
    return None
