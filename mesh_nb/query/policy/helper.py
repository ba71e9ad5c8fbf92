"""Small helpers over sqlglot expressions."""

from __future__ import annotations

from typing import Iterable, Iterator

from sqlglot import exp


def _is_aggregate(node: exp.Expression) -> bool:
    return isinstance(node, (exp.AggFunc, exp.WithinGroup))


def _has_aggregate(node: exp.Expression) -> bool:
    return any(_is_aggregate(n) for n in node.walk())


def _conjuncts(cond: exp.Expression) -> Iterator[exp.Expression]:
    cond = cond.unnest()
    if isinstance(cond, exp.And):
        yield from _conjuncts(cond.this)
        yield from _conjuncts(cond.expression)
    else:
        yield cond


def _int_literal(node: exp.Expression | None) -> int | None:
    if isinstance(node, exp.Literal) and node.is_int:
        return int(node.this)
    return None


def _literal_value(node: exp.Expression) -> object:
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


def _unique(items: Iterable) -> tuple:
    return tuple(dict.fromkeys(items))


def _func_name(node: exp.Func) -> str:
    return (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()


def _display(node: exp.Expression, index: int) -> str:
    """A name for an output in messages, never a literal from the query."""
    if isinstance(node, exp.Alias):
        return node.alias
    if isinstance(node, exp.Column):
        return node.name
    return f"output {index + 1}"
