"""Small helpers over sqlglot expressions, shared by the rules."""

from __future__ import annotations

from typing import Iterable, Iterator

from sqlglot import exp


def is_aggregate(node: exp.Expression) -> bool:
    """Is ``node`` itself an aggregate (``WITHIN GROUP`` included)?"""
    return isinstance(node, (exp.AggFunc, exp.WithinGroup))


def has_aggregate(node: exp.Expression) -> bool:
    """Does ``node`` hold an aggregate anywhere?"""
    return any(is_aggregate(n) for n in node.walk())


def conjuncts(cond: exp.Expression) -> Iterator[exp.Expression]:
    """The terms of an AND chain (parentheses dropped)."""
    cond = cond.unnest()
    if isinstance(cond, exp.And):
        yield from conjuncts(cond.this)
        yield from conjuncts(cond.expression)
    else:
        yield cond


def int_literal(node: exp.Expression | None) -> int | None:
    """The value of an integer literal, else None."""
    if isinstance(node, exp.Literal) and node.is_int:
        return int(node.this)
    return None


def literal_value(node: exp.Expression) -> object:
    """A constant CASE branch as a Python value; raises ValueError when not a constant."""
    node = node.unnest()
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Literal):
        return node.this if node.is_string else (int(node.this) if node.is_int
                                                 else float(node.this))
    raise ValueError("not a literal")


def unique(items: Iterable) -> tuple:
    """The items in first-seen order, each once."""
    return tuple(dict.fromkeys(items))


def func_name(node: exp.Func) -> str:
    """A function's name as SQL writes it, lower case."""
    return (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()


def display(node: exp.Expression, index: int) -> str:
    """A name for an output in messages, never a literal from the query."""
    if isinstance(node, exp.Alias):
        return node.alias
    if isinstance(node, exp.Column):
        return node.name
    return f"output {index + 1}"


def parts(select: exp.Select) -> Iterator[exp.Expression | None]:
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
