"""Join conditions (privacy units and declared join keys) and the qualified WHERE."""

from __future__ import annotations

from sqlglot import exp

from .helper import _conjuncts, _has_aggregate
from .rules import _reject
from .scope import _Scope

_JOIN_FIX = "use `JOIN product.table alias ON a.unit = alias.unit` (an INNER join)"


def _joins(select: exp.Select, scope: _Scope) -> tuple[exp.Expression, ...]:
    """The qualified ON condition of each join: equalities of units or declared join keys."""
    aliases = list(scope.entries)
    out = []
    for i, join in enumerate(select.args.get("joins") or [], start=1):
        _join_type(join)
        new, earlier = aliases[i], aliases[:i]
        cond = join.args.get("on")
        if join.args.get("using"):
            cond = exp.and_(*(_using(ident.name.lower(), new, earlier, scope)
                              for ident in join.args["using"]))
        if cond is None:
            raise _reject("cross-join", f"the join of `{new}` has no ON condition",
                          _JOIN_FIX)
        out.append(exp.and_(*(_join_pair(p, new, earlier, scope) for p in _conjuncts(cond))))
    _one_person(scope, out)
    return tuple(out)


def _one_person(scope: _Scope, joins: list[exp.Expression]) -> None:
    """Every joined table's privacy unit must be equated with an earlier table's (rule
    ``join-unit``): then each joined row belongs to one person and bounding the first
    table's unit bounds everyone. A join on another key lets one person's rows change which
    rows many other people keep, and no contribution bound holds through it."""
    refs = [e.ref for e in scope.entries.values()]
    linked = {(refs[0].alias, refs[0].privacy_unit)}
    for ref, on in zip(refs[1:], joins):
        pairs = {((eq.this.table, eq.this.name), (eq.expression.table, eq.expression.name))
                 for eq in on.find_all(exp.EQ)}
        mine = (ref.alias, ref.privacy_unit)
        if not any((a in linked and b == mine) or (b in linked and a == mine)
                   for a, b in pairs):
            first = refs[0]
            raise _reject("join-unit", f"the join of `{ref.alias}` does not equate its "
                          f"privacy unit `{ref.privacy_unit}` with that of `{first.alias}` "
                          f"(`{first.privacy_unit}`), so one person's rows could change what "
                          "many others contribute", "join on the privacy units (they must name "
                          "the same person in both products), or query the tables separately")
        linked.add(mine)


def _join_type(join: exp.Join) -> None:
    method, side, kind = join.method, join.side, join.kind
    if kind == "CROSS":
        raise _reject("cross-join", "CROSS JOIN pairs every row with every row", _JOIN_FIX)
    bad = method or side or (kind if kind not in ("", "INNER") else "")
    if bad:
        raise _reject("join-type", f"{' '.join(filter(None, (method, side, kind)))} JOIN is not "
                      "allowed, only INNER JOIN", _JOIN_FIX)


def _using(name: str, new: str, earlier: list[str], scope: _Scope) -> exp.Expression:
    left = next((a for a in earlier if scope.entries[a].has(name)), earlier[0])
    return exp.EQ(this=exp.column(name, table=left), expression=exp.column(name, table=new))


def _join_pair(pair: exp.Expression, new: str, earlier: list[str], scope: _Scope
               ) -> exp.Expression:
    """One ``a.key = b.key`` of an ON condition, qualified and checked."""
    what = "an ON condition may only equate key columns of the joined table and an earlier one"
    if not (isinstance(pair, exp.EQ) and isinstance(pair.this, exp.Column)
            and isinstance(pair.expression, exp.Column)):
        raise _reject("join-key", what, "move filters to WHERE; " + _JOIN_FIX)
    sides = [scope.qualify(side, "join") for side in (pair.this, pair.expression)]
    if not all(isinstance(s, exp.Column) for s in sides):
        raise _reject("join-key", what, _JOIN_FIX)
    tables = {s.table for s in sides}
    if new not in tables or len(tables) != 2 or not tables <= {new, *earlier}:
        raise _reject("join-key", what, _JOIN_FIX)
    return exp.EQ(this=sides[0], expression=sides[1])


def _where(select: exp.Select, scope: _Scope) -> exp.Expression | None:
    """The qualified WHERE, with the filters of inlined CTEs."""
    where = select.args.get("where")
    conds = list(scope.filters)
    if where is not None:
        if _has_aggregate(where.this):
            raise _reject("aggregate-in-where", "WHERE holds an aggregate",
                          "filter released aggregates with HAVING")
        conds.insert(0, scope.qualify(where.this, "where"))
    return exp.and_(*conds) if conds else None
