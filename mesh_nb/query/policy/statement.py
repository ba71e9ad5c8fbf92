"""The one SELECT of a query, its clauses and the node whitelist walk."""

from __future__ import annotations

from typing import Iterator

from sqlglot import exp

from .helper import _func_name
from .rules import _reject
from .whitelist import (
    _CLAUSE_RULES,
    _NODE_RULES,
    _PLACED,
    _SUPPORTED,
    AGGREGATES,
    ANONYMOUS_SCALARS,
    EXPRESSION_NODES,
    SCALAR_FUNCTIONS,
    SELECT_CLAUSES,
)


def _statement(tree: exp.Expression) -> exp.Select:
    """The one SELECT of the query."""
    while isinstance(tree, (exp.Subquery, exp.Paren)) and not tree.alias:
        tree = tree.this
    if isinstance(tree, exp.Select):
        return tree
    if isinstance(tree, exp.SetOperation):
        raise _reject("set-operation", f"{tree.key.upper()} combines several queries",
                      "send each SELECT on its own and combine the released frames in pandas")
    kind = str(tree.this).upper() if isinstance(tree, exp.Command) else tree.key.upper()
    raise _reject("forbidden-statement", f"`{kind}` statements are not allowed, only SELECT",
                  "send one SELECT over contract tables named `product.table`")


def _clauses(select: exp.Select) -> None:
    """Only the clauses the whitelist knows."""
    for key, value in select.args.items():
        if key in SELECT_CLAUSES or value is None or value is False or value == []:
            continue
        rule, what, fix = _CLAUSE_RULES.get(key, (
            "unsupported-syntax", f"the `{key}` clause is not supported",
            "use SELECT ... FROM ... [JOIN] [WHERE] [GROUP BY] [HAVING] [ORDER BY] [LIMIT]"))
        raise _reject(rule, what, fix)


def _walk(node: exp.Expression | None) -> None:
    """Every node is a whitelisted expression or function."""
    if node is None:
        return
    for n in node.walk():
        for klass, rule, what, fix in _NODE_RULES:
            if isinstance(n, klass):
                raise _reject(rule, what, fix)
        if isinstance(n, exp.Star):
            if not isinstance(n.parent, exp.Count):
                raise _reject("select-star", "SELECT * is not allowed",
                              "name the columns (and aggregate them)")
        elif isinstance(n, EXPRESSION_NODES):  # before Func: AND, OR are sqlglot Funcs too
            if not all(placed(n) for klass, placed in _PLACED if isinstance(n, klass)):
                raise _reject("unsupported-syntax", f"`{n.key}` is not supported here",
                              "use columns, literals, comparisons, arithmetic, CASE and the "
                              "whitelisted functions")
        elif isinstance(n, exp.Func):
            _check_function(n)
        else:
            raise _reject("unsupported-syntax", f"`{n.key}` expressions are not supported",
                          "use columns, literals, comparisons, arithmetic, CASE and the "
                          "whitelisted functions")


def _check_function(node: exp.Func) -> None:
    if type(node) in AGGREGATES or isinstance(node, SCALAR_FUNCTIONS):
        return
    name = _func_name(node)
    if isinstance(node, exp.AggFunc):
        raise _reject("unsupported-aggregate", f"aggregate `{name}` is not supported",
                      f"use {_SUPPORTED}")
    if isinstance(node, exp.Anonymous) and name in ANONYMOUS_SCALARS:
        return
    raise _reject("unknown-function", f"function `{name}` is not on the whitelist",
                  "use comparisons, arithmetic, CASE, CAST, date_trunc/year/month, "
                  "lower/upper/substring, round/floor/abs, coalesce")


def _parts(select: exp.Select) -> Iterator[exp.Expression | None]:
    """The expression parts of a SELECT (not its FROM)."""
    yield from select.expressions
    for key in ("where", "having"):
        clause = select.args.get(key)
        yield clause.this if clause else None
    for key in ("group", "order"):
        clause = select.args.get(key)
        yield from (clause.expressions if clause else ())
    for join in select.args.get("joins") or []:
        yield join.args.get("on")
