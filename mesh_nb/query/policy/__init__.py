"""The whitelist checker: does a query only ask what the bound purpose allows?

:func:`check` serves ``dp-aggregate`` purposes and returns a :class:`CheckedQuery`;
:func:`check_rows` serves ``pseudonymized-rows`` and ``raw-rows`` purposes and returns a
:class:`CheckedRows`. Both raise :class:`~mesh_nb.errors.PolicyViolation` naming one rule of
:data:`RULES` and how to fix the query. Messages name columns, tables, functions and clauses,
never a value written in the query.

The check is an ordered list of rules, as in sqlglot's optimizer: each a public function
that takes a :class:`~.scope.Draft` (the parsed tree and what earlier rules found) and returns
it with its part filled in, or raises. :data:`AGGREGATE_RULES` serves :func:`check`,
:data:`ROW_RULES` :func:`check_rows`; they share the first nine. The modules group the rules
by concern: :mod:`.shape` (one SELECT, clauses, CTEs), :mod:`.tables` (access mode, FROM and
JOIN, joins, WHERE), :mod:`.expressions` (the node whitelist and bounded function
arguments), :mod:`.aggregates` (aggregates and their bounds), :mod:`.outputs` (GROUP BY and
the select list) and :mod:`.postprocess` (HAVING, ORDER BY, LIMIT). Every rule id is declared
once, in :data:`mesh_nb.rules.REGISTRY`; :data:`RULES` maps the ids of the query stage to
their titles.

Choices worth knowing:

* **CTEs** are inlined. A CTE may read one contract table and only filter (``WHERE``) and
  project (columns, ``*``, scalar expressions); each reference becomes the contract table under
  the reference's alias, its projections are substituted into the main query and its filter is
  ANDed into the main ``WHERE``. Anything else in a CTE (joins, grouping, aggregates, ``LIMIT``,
  another CTE, ``RECURSIVE``) is rule ``cte``. Subqueries are never inlined (rule ``subquery``).
* **Columns** in every returned expression are qualified by their table alias
  (``a.monthly_spend``), so a planner can clamp them; ``columns`` lists every contract column
  touched as ``product.table.column``.
* **The privacy unit** may appear without being an allowed column only in join conditions and
  in ``COUNT(DISTINCT unit)``. Declared join keys may appear in join conditions. Other direct
  identifiers, and the unit, are rejected everywhere else in a dp-aggregate query.
* **Aggregate bounds** come from interval arithmetic over the contract bounds: ``+ - * /``,
  unary minus, ABS, ROUND/FLOOR/CEIL/TRUNC, LEAST/GREATEST, COALESCE, CASE/IF (the hull of the
  branches; conditions may read the same column), casts to numbers (a boolean cast counts as
  0..1). An aggregate reads at most one source column. The planner clamps the value (or the
  column) to ``bounds``.
* **Group keys**: ``categories`` is the key's public value set: the declared categories of a
  bare column, ``(False, True)`` for a bare boolean column, the literal THEN/ELSE values of a
  CASE bucket (plus ``None`` when there is no ELSE); ``None`` when unknown (the planner then
  thresholds). A key expression reads exactly one column.
* **HAVING and ORDER BY** are post-processing: they may use the outputs (by name, by position
  in ORDER BY, or as written in the select list) and are returned rewritten over output names,
  to be applied to the released frame; :func:`on_outputs` renders them as SQL for that.
* In ``pseudonymized-rows`` outputs are bare columns (identifiers are tokenized by the caller,
  quasi-identifiers generalized); identifiers and generalized quasi-identifiers may not be
  filtered or sorted on raw values. ``raw-rows`` lets allowed columns be used anywhere.

Result fields:

* :class:`TableRef` ``(product, table, alias, privacy_unit)`` — one table of FROM/JOIN.
* :class:`Aggregate` ``(name, func, value, column, bounds, quantile, sample)`` — ``func`` one
  of :data:`AGGREGATE_FUNCS`; ``value`` the argument over qualified columns (``None`` for
  COUNT(*)); ``column`` the source column ``product.table.column`` or ``None``; ``bounds`` the
  interval of ``value`` for sum/avg/var/stddev/median/quantile; ``quantile`` in [0, 1] for
  median (0.5) and quantile; ``sample`` True for VAR_SAMP/VARIANCE/STDDEV/STDDEV_SAMP.
* :class:`GroupKey` ``(name, expr, column, categories, logical_type)``.
* :class:`CheckedQuery` ``(sql, redacted, query_hash, purpose, tables, joins, where,
  group_keys, aggregates, having, order, limit, offset, outputs, columns, products)`` with
  ``privacy_unit`` ({alias: unit column}) and ``output_kinds`` as properties. ``joins[i]`` is
  the ON condition of ``tables[i + 1]``.
* :class:`RowOutput` ``(name, expr, column, source, identifying)`` and :class:`CheckedRows`
  ``(sql, redacted, query_hash, purpose, access, tables, joins, where, outputs, order, limit,
  offset, columns, products)``; its ORDER BY is over qualified source columns.
"""

from __future__ import annotations

from typing import Callable

from sqlglot import exp

from ...contract.model import Contract
from ...rules import titles
from ..parse import parse, redact_tree, sql_text, text_hash
from .expressions import whitelisted_nodes
from .model import (
    AGGREGATE_FUNCS, Aggregate, CheckedQuery, CheckedRows, GroupKey, RowOutput, TableRef,
)
from .outputs import group_by, row_outputs, rows_only, select_list
from .postprocess import having, limit_offset, on_outputs, order_by, row_order
from .scope import ROW_ACCESS, Draft
from .shape import inline_ctes, known_clauses, one_select
from .tables import access_mode, join_conditions, resolve_tables, some_table, where_filter
from .trees import unique
from .whitelist import (
    AGGREGATES, ANONYMOUS_SCALARS, EXPRESSION_NODES, SCALAR_FUNCTIONS, SELECT_CLAUSES,
    SYSTEM_PREFIXES, SYSTEM_SCHEMAS, TABLE_ARGS,
)

CheckRule = Callable[[Draft], Draft]
"""A rule of the check: takes the draft, returns it with its part filled in, or raises."""

RULES: dict[str, str] = titles("query")
"""Rule id -> title, for every rule a query can be refused under from its text and schema."""

SHARED_RULES: tuple[CheckRule, ...] = (
    one_select, known_clauses, access_mode, inline_ctes, resolve_tables, whitelisted_nodes,
    some_table, join_conditions, where_filter,
)
"""The rules both kinds of query run first, in order."""
AGGREGATE_RULES: tuple[CheckRule, ...] = (
    *SHARED_RULES, group_by, select_list, having, order_by, limit_offset,
)
"""The rules of a dp-aggregate query, in order."""
ROW_RULES: tuple[CheckRule, ...] = (*SHARED_RULES, rows_only, row_outputs, row_order, limit_offset)
"""The rules of a pseudonymized-rows or raw-rows query, in order."""


def run(draft: Draft, rules: tuple[CheckRule, ...]) -> Draft:
    """Apply ``rules`` to ``draft`` in order; the first that refuses raises."""
    for rule in rules:
        draft = rule(draft)
    return draft


def check(sql: str, contracts: dict[str, Contract], purpose: str) -> CheckedQuery:
    """Check a query for a dp-aggregate purpose; raises :class:`PolicyViolation`."""
    tree = parse(sql)
    d = run(Draft(tree, contracts, purpose, ("dp-aggregate",)), AGGREGATE_RULES)
    return CheckedQuery(
        **_texts(tree), purpose=purpose, tables=d.tables, joins=d.joins, where=d.where,
        group_keys=d.group_keys, aggregates=d.aggregates, having=d.having, order=d.order,
        limit=d.limit, offset=d.offset, outputs=d.outputs,
        columns=d.columns(*(k.expr for k in d.group_keys), *(a.value for a in d.aggregates)),
        products=unique(t.product for t in d.tables))


def check_rows(sql: str, contracts: dict[str, Contract], purpose: str) -> CheckedRows:
    """Check a row query for a pseudonymized-rows or raw-rows purpose."""
    tree = parse(sql)
    d = run(Draft(tree, contracts, purpose, ROW_ACCESS), ROW_RULES)
    return CheckedRows(
        **_texts(tree), purpose=purpose, access=d.scope.mode.access, tables=d.tables,
        joins=d.joins, where=d.where, outputs=d.rows, order=d.order, limit=d.limit,
        offset=d.offset, columns=d.columns(*(o.expr for o in d.rows), *d.order),
        products=unique(t.product for t in d.tables))


def _texts(tree: exp.Expression) -> dict[str, str]:
    text = sql_text(tree)
    return {"sql": text, "redacted": sql_text(redact_tree(tree), copy=False),
            "query_hash": text_hash(text)}


__all__ = [
    "AGGREGATES", "AGGREGATE_FUNCS", "AGGREGATE_RULES", "ANONYMOUS_SCALARS", "Aggregate",
    "CheckRule", "CheckedQuery", "CheckedRows", "Draft", "EXPRESSION_NODES", "GroupKey", "ROW_ACCESS",
    "ROW_RULES", "RULES", "RowOutput", "SCALAR_FUNCTIONS", "SELECT_CLAUSES", "SHARED_RULES",
    "SYSTEM_PREFIXES", "SYSTEM_SCHEMAS", "TABLE_ARGS", "TableRef", "check", "check_rows",
    "on_outputs", "run",
]
