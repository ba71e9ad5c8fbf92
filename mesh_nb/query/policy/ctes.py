"""CTEs that filter and project one contract table, to be inlined."""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from .helper import _has_aggregate
from .rules import _reject
from .statement import _clauses, _parts, _statement, _walk


@dataclass(frozen=True)
class _Cte:
    """A CTE that filters and projects one contract table."""

    table: exp.Expression  # its FROM, a contract table once _table_entry has checked it
    key: str  # how its body names the table
    columns: tuple[tuple[str, exp.Expression], ...]  # (name, expr) as the body writes them
    star: bool  # SELECT * also projects every column of the table
    where: exp.Expression | None


def _ctes(select: exp.Select) -> dict[str, _Cte]:
    with_ = select.args.get("with_")
    if not with_:
        return {}
    if with_.args.get("recursive"):
        raise _reject("cte", "recursive CTEs are not allowed",
                      "a CTE may only filter and project one contract table")
    out: dict[str, _Cte] = {}
    for cte in with_.expressions:
        out[cte.alias] = _cte(cte, set(out))
    return out


def _cte(cte: exp.CTE, earlier: set[str]) -> _Cte:
    name, body = cte.alias, cte.this
    fix = ("a CTE may only filter (WHERE) and project columns of one contract table; write the "
           "rest in the main query")
    if isinstance(body, exp.SetOperation):
        _statement(body)
    if not isinstance(body, exp.Select):
        raise _reject("cte", f"CTE `{name}` is not a SELECT", fix)
    if cte.args.get("alias") and cte.args["alias"].columns:
        raise _reject("cte", f"CTE `{name}` renames its columns in a list",
                      "name the columns with AS inside the CTE")
    _clauses(body)
    extra = [k for k in ("joins", "group", "having", "order", "limit", "offset", "with_")
             if body.args.get(k)]
    if extra:
        raise _reject("cte", f"CTE `{name}` uses {extra[0].rstrip('_').upper()}", fix)
    from_ = body.args.get("from_")
    if from_ is None:
        raise _reject("cte", f"CTE `{name}` reads no table", fix)
    table = from_.this  # checked as a contract table by _scope, like every FROM
    if isinstance(table, exp.Table) and not table.db and table.name in earlier:
        raise _reject("cte", f"CTE `{name}` reads another CTE", fix)
    for part in _parts(body):
        if isinstance(part, exp.Star):  # SELECT * in a CTE projects every column
            continue
        _walk(part)
        if part is not None and _has_aggregate(part):
            raise _reject("cte", f"CTE `{name}` aggregates", fix)
    columns, star = [], False
    for proj in body.expressions:
        if isinstance(proj, exp.Star):
            star = True
        else:
            columns.append((proj.alias_or_name, proj.unalias()))
    where = body.args.get("where")
    return _Cte(table, table.alias_or_name, tuple(columns), star, where.this if where else None)
