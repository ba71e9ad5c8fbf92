"""The query's shape: one SELECT, known clauses, and CTEs that only filter and project one
contract table (to be inlined)."""

from __future__ import annotations

from dataclasses import replace

from sqlglot import exp

from ...rules import violation
from .expressions import check_nodes
from .scope import Cte, Draft
from .trees import has_aggregate, parts
from .whitelist import CLAUSE_RULES, SELECT_CLAUSES


def one_select(draft: Draft) -> Draft:
    """The query is one SELECT (rules ``set-operation``, ``forbidden-statement``)."""
    return replace(draft, select=select_of(draft.tree))


def known_clauses(draft: Draft) -> Draft:
    """The SELECT uses only the clauses the whitelist knows (rules ``unsupported-syntax``,
    ``window-function``, ``select-distinct``, ``forbidden-statement``)."""
    check_clauses(draft.select)
    return draft


def inline_ctes(draft: Draft) -> Draft:
    """The CTEs, each filtering and projecting one contract table (rule ``cte``)."""
    select = draft.select
    with_ = select.args.get("with_")
    if not with_:
        return draft
    if with_.args.get("recursive"):
        raise violation("cte", "recursive CTEs are not allowed",
                        "a CTE may only filter and project one contract table")
    out: dict[str, Cte] = {}
    for cte in with_.expressions:
        out[cte.alias] = _cte(cte, set(out))
    return replace(draft, ctes=out)


def select_of(tree: exp.Expression) -> exp.Select:
    """The one SELECT of the query."""
    while isinstance(tree, (exp.Subquery, exp.Paren)) and not tree.alias:
        tree = tree.this
    if isinstance(tree, exp.Select):
        return tree
    if isinstance(tree, exp.SetOperation):
        raise violation("set-operation", f"{tree.key.upper()} combines several queries")
    kind = str(tree.this).upper() if isinstance(tree, exp.Command) else tree.key.upper()
    raise violation("forbidden-statement", f"`{kind}` statements are not allowed, only SELECT")


def check_clauses(select: exp.Select) -> None:
    """Only the clauses the whitelist knows."""
    for key, value in select.args.items():
        if key in SELECT_CLAUSES or value is None or value is False or value == []:
            continue
        rule, what, fix = CLAUSE_RULES.get(key, (
            "unsupported-syntax", f"the `{key}` clause is not supported",
            "use SELECT ... FROM ... [JOIN] [WHERE] [GROUP BY] [HAVING] [ORDER BY] [LIMIT]"))
        raise violation(rule, what)


def _cte(cte: exp.CTE, earlier: set[str]) -> Cte:
    """One CTE: a SELECT that filters and projects one table (not an ``earlier`` CTE)."""
    name, body = cte.alias, cte.this
    if isinstance(body, exp.SetOperation):
        select_of(body)
    if not isinstance(body, exp.Select):
        raise violation("cte", f"CTE `{name}` is not a SELECT")
    if cte.args.get("alias") and cte.args["alias"].columns:
        raise violation("cte", f"CTE `{name}` renames its columns in a list",
                        "name the columns with AS inside the CTE")
    check_clauses(body)
    extra = [k for k in ("joins", "group", "having", "order", "limit", "offset", "with_")
             if body.args.get(k)]
    if extra:
        raise violation("cte", f"CTE `{name}` uses {extra[0].rstrip('_').upper()}")
    from_ = body.args.get("from_")
    if from_ is None:
        raise violation("cte", f"CTE `{name}` reads no table")
    table = from_.this  # checked as a contract table by resolve_tables, like every FROM
    if isinstance(table, exp.Table) and not table.db and table.name in earlier:
        raise violation("cte", f"CTE `{name}` reads another CTE")
    for part in parts(body):
        if isinstance(part, exp.Star):  # SELECT * in a CTE projects every column
            continue
        check_nodes(part)
        if part is not None and has_aggregate(part):
            raise violation("cte", f"CTE `{name}` aggregates")
    columns, star = [], False
    for proj in body.expressions:
        if isinstance(proj, exp.Star):
            star = True
        else:
            columns.append((proj.alias_or_name, proj.unalias()))
    where = body.args.get("where")
    return Cte(table, table.alias_or_name, tuple(columns), star, where.this if where else None)
