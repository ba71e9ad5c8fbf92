"""The outputs: GROUP BY keys with their public categories and the select list of a
dp-aggregate query; the bare columns of a row query."""

from __future__ import annotations

from dataclasses import replace

from sqlglot import exp

from ...rules import violation
from .aggregates import aggregate_of
from .model import Aggregate, GroupKey, RowOutput
from .scope import Draft, Scope, Source
from .trees import display, has_aggregate, int_literal, is_aggregate, literal_value, parts, unique


def group_by(draft: Draft) -> Draft:
    """The GROUP BY keys: (qualified key, its source column, its public categories) per
    distinct key (rules ``group-by-position``, ``aggregate-in-group-by``,
    ``group-by-constant``, ``group-by-expression``; the columns' rules in context
    ``group``)."""
    select, scope = draft.select, draft.scope
    group = select.args.get("group")
    if not group:
        return draft
    projections = select.expressions
    if group.args.get("all"):
        raw = [p.unalias() for p in projections if not has_aggregate(p)]
    else:
        raw = [_group_target(e, projections, scope) for e in group.expressions]
    keys: dict[exp.Expression, tuple] = {}
    for expr in raw:
        if has_aggregate(expr):
            raise violation("aggregate-in-group-by", "GROUP BY holds an aggregate")
        q = scope.qualify(expr, "group")
        sources = scope.sources(q)
        if not sources:
            raise violation("group-by-constant", "a GROUP BY key reads no column")
        if len(sources) > 1:
            raise violation("group-by-expression", "a GROUP BY key reads "
                            f"{', '.join(s.column.name for s in sources)}")
        keys.setdefault(q, (q, sources[0], _categories(q, sources[0])))
    return replace(draft, keys=tuple(keys.values()))


def _group_target(expr: exp.Expression, projections: list[exp.Expression], scope: Scope
                  ) -> exp.Expression:
    """A GROUP BY item as an expression: positions and output aliases resolved."""
    position = int_literal(expr)
    if position is not None:
        if not 1 <= position <= len(projections):
            raise violation("group-by-position", "a GROUP BY position is not an output position",
                            f"use 1..{len(projections)} or name the column")
        return projections[position - 1].unalias()
    if isinstance(expr, exp.Column) and not expr.table:
        name = expr.name.lower()
        if not any(e.has(name) for e in scope.entries.values()):
            for p in projections:
                if isinstance(p, exp.Alias) and p.alias == name:
                    return p.unalias()
    return expr


def _categories(key: exp.Expression, src: Source) -> tuple | None:
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
            values = [literal_value(b) for b in branches]
            values.append(literal_value(default) if default is not None else None)
        except ValueError:
            return None
        return unique(values)
    return None


class Names:
    """Output names: the aliases written in the query, then fresh generated ones."""

    def __init__(self, projections: list[exp.Expression]):
        aliases = [p.alias for p in projections if isinstance(p, exp.Alias)]
        dup = next((a for a in aliases if aliases.count(a) > 1), None)
        if dup:
            raise violation("duplicate-output", f"two outputs are called `{dup}`")
        self.used = set(aliases)

    def fresh(self, base: str) -> str:
        name, n = base, 1
        while name in self.used:
            n += 1
            name = f"{base}_{n}"
        self.used.add(name)
        return name


def aggregate_name(agg: Aggregate) -> str:
    """The generated output name of an aggregate without an alias."""
    col = agg.column.rsplit(".", 1)[-1] if agg.column else None
    if agg.func == "count_distinct_unit":
        return f"count_distinct_{col}"
    func = "count" if agg.func == "count_col" else agg.func
    return f"{func}_{col}" if col else func


def select_list(draft: Draft) -> Draft:
    """The outputs of a dp-aggregate query: group keys, aggregates, output names in select
    order and {qualified expression: output name} (rules ``duplicate-output``,
    ``expression-over-aggregate``, ``non-aggregated-output``, ``no-aggregate``, and the
    aggregates' and bounds' rules)."""
    select, scope, keys = draft.select, draft.scope, draft.keys
    projections = select.expressions
    names = Names(projections)
    aggregates: list[Aggregate] = []
    key_names: dict[exp.Expression, str] = {}
    outputs: list[str] = []
    index: dict[exp.Expression, str] = {}
    for i, proj in enumerate(projections):
        alias = proj.alias if isinstance(proj, exp.Alias) else None
        body = proj.unalias()
        if has_aggregate(body):
            node = body.unnest()
            if not is_aggregate(node):
                raise violation("expression-over-aggregate", f"`{display(proj, i)}` computes on "
                                "an aggregate")
            agg = aggregate_of(node, scope)
            agg = replace(agg, name=alias or names.fresh(aggregate_name(agg)))
            aggregates.append(agg)
            index[scope.qualify(node, None)] = agg.name
            name = agg.name
        else:
            q = scope.qualify(body, "output")
            if q not in {k[0] for k in keys}:
                raise violation("non-aggregated-output", f"output `{display(proj, i)}` is "
                                "neither a GROUP BY key nor an aggregate")
            if q in key_names:
                raise violation("duplicate-output", f"output `{display(proj, i)}` repeats a "
                                "group key", "select each group key once")
            name = alias or names.fresh(body.name if isinstance(body, exp.Column)
                                        else f"{scope.sources(q)[0].column.name}_key")
            key_names[q] = index[q] = name
        outputs.append(name)
    if not aggregates:
        raise violation("no-aggregate", "the query releases no aggregate")
    group_keys = tuple(
        GroupKey(key_names.get(q) or names.fresh(src.column.name if isinstance(q, exp.Column)
                                                 else f"{src.column.name}_key"),
                 q, src.qualified, cats,
                 src.column.logical_type if isinstance(q, exp.Column) else None)
        for q, src, cats in keys)
    return replace(draft, group_keys=group_keys, aggregates=tuple(aggregates),
                   outputs=tuple(outputs), index=index)


def rows_only(draft: Draft) -> Draft:
    """A row query has no GROUP BY, HAVING or aggregate (rule ``rows-aggregate``)."""
    select, purpose = draft.select, draft.purpose
    if (select.args.get("group") or select.args.get("having")
            or any(has_aggregate(e) for e in parts(select) if e is not None)):
        raise violation("rows-aggregate", f"purpose `{purpose}` returns rows, not aggregates")
    return draft


def row_outputs(draft: Draft) -> Draft:
    """The outputs of a row query, each a bare column (rules ``duplicate-output``,
    ``row-output``; the columns' rules in context ``output``)."""
    select, scope = draft.select, draft.scope
    names = Names(select.expressions)
    outputs = []
    for i, proj in enumerate(select.expressions):
        body = proj.unalias()
        q = scope.qualify(body, "output") if isinstance(body, exp.Column) else None
        if not isinstance(q, exp.Column):
            raise violation("row-output", f"output `{display(proj, i)}` is an expression")
        src = scope.sources(q)[0]
        name = proj.alias if isinstance(proj, exp.Alias) else names.fresh(body.name)
        outputs.append(RowOutput(name, q, src.qualified, src.column, src.identifying))
    return replace(draft, rows=tuple(outputs))
