"""The select list of a dp-aggregate query: output names, group keys and aggregates."""

from __future__ import annotations

from dataclasses import replace

from sqlglot import exp

from .aggregates import _aggregate
from .helper import _display, _has_aggregate, _is_aggregate
from .model import Aggregate, GroupKey
from .rules import _reject
from .scope import _Scope


class _Names:
    """Output names: the aliases written in the query, then fresh generated ones."""

    def __init__(self, projections: list[exp.Expression]):
        aliases = [p.alias for p in projections if isinstance(p, exp.Alias)]
        dup = next((a for a in aliases if aliases.count(a) > 1), None)
        if dup:
            raise _reject("duplicate-output", f"two outputs are called `{dup}`",
                          "give each output its own alias")
        self.used = set(aliases)

    def fresh(self, base: str) -> str:
        name, n = base, 1
        while name in self.used:
            n += 1
            name = f"{base}_{n}"
        self.used.add(name)
        return name


def _aggregate_name(agg: Aggregate) -> str:
    col = agg.column.rsplit(".", 1)[-1] if agg.column else None
    if agg.func == "count_distinct_unit":
        return f"count_distinct_{col}"
    func = "count" if agg.func == "count_col" else agg.func
    return f"{func}_{col}" if col else func


def _select_list(select: exp.Select, scope: _Scope, keys: list[tuple]
                 ) -> tuple[tuple[GroupKey, ...], tuple[Aggregate, ...], tuple[str, ...],
                            dict[exp.Expression, str]]:
    """Group keys, aggregates, output names in select order, and {qualified expr: output}."""
    projections = select.expressions
    names = _Names(projections)
    aggregates: list[Aggregate] = []
    key_names: dict[exp.Expression, str] = {}
    outputs: list[str] = []
    index: dict[exp.Expression, str] = {}
    for i, proj in enumerate(projections):
        alias = proj.alias if isinstance(proj, exp.Alias) else None
        body = proj.unalias()
        if _has_aggregate(body):
            node = body.unnest()
            if not _is_aggregate(node):
                raise _reject("expression-over-aggregate", f"`{_display(proj, i)}` computes on "
                              "an aggregate", "select the aggregate itself and compute on the "
                              "released frame in pandas")
            agg = _aggregate(node, scope)
            agg = replace(agg, name=alias or names.fresh(_aggregate_name(agg)))
            aggregates.append(agg)
            index[scope.qualify(node, None)] = agg.name
            name = agg.name
        else:
            q = scope.qualify(body, "output")
            if q not in {k[0] for k in keys}:
                raise _reject("non-aggregated-output", f"output `{_display(proj, i)}` is "
                              "neither a GROUP BY key nor an aggregate",
                              "aggregate it (COUNT, SUM, AVG...) or add it to GROUP BY")
            if q in key_names:
                raise _reject("duplicate-output", f"output `{_display(proj, i)}` repeats a "
                              "group key", "select each group key once")
            name = alias or names.fresh(body.name if isinstance(body, exp.Column)
                                        else f"{scope.sources(q)[0].column.name}_key")
            key_names[q] = index[q] = name
        outputs.append(name)
    if not aggregates:
        raise _reject("no-aggregate", "the query releases no aggregate",
                      "add COUNT(*), SUM(...), AVG(...) or another aggregate")
    group_keys = tuple(
        GroupKey(key_names.get(q) or names.fresh(src.column.name if isinstance(q, exp.Column)
                                                 else f"{src.column.name}_key"),
                 q, src.qualified, cats,
                 src.column.logical_type if isinstance(q, exp.Column) else None)
        for q, src, cats in keys)
    return group_keys, tuple(aggregates), tuple(outputs), index
