"""The whitelist checker: does a query only ask what the bound purpose allows?

:func:`check` serves ``dp-aggregate`` purposes and returns a :class:`CheckedQuery`;
:func:`check_rows` serves ``pseudonymized-rows`` and ``raw-rows`` purposes and returns a
:class:`CheckedRows`. Both raise :class:`~mesh_nb.errors.PolicyViolation` naming one rule of
:data:`RULES` and how to fix the query. Messages name columns, tables, functions and clauses,
never a value written in the query.

Stages, each a function with expression trees between them::

    parse -> statement (one SELECT) -> clauses -> CTEs -> tables (scope) -> node whitelist
          -> joins -> WHERE -> [dp] GROUP BY -> select list -> HAVING / ORDER BY / LIMIT
                    -> [rows] select list -> ORDER BY / LIMIT

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

# The checker is split into the modules of this package, one stage each. Every name of the
# former single module is re-exported here; the private ones as `_x as _x`, for the tests
# and callers that reach them.

from .aggregates import (
    _aggregate as _aggregate, _count as _count, _one_source as _one_source,
    _quantile as _quantile,
)
from .bounds import _BOUND_RULES as _BOUND_RULES, _Bounds as _Bounds, _Interval as _Interval
from .ctes import _Cte as _Cte, _cte as _cte, _ctes as _ctes
from .entry import check, _prepare as _prepare, _Prepared as _Prepared, _texts as _texts
from .groups import (
    _categories as _categories, _group_keys as _group_keys, _group_target as _group_target,
)
from .helper import (
    _conjuncts as _conjuncts, _display as _display, _func_name as _func_name,
    _has_aggregate as _has_aggregate, _int_literal as _int_literal,
    _is_aggregate as _is_aggregate, _literal_value as _literal_value, _unique as _unique,
)
from .joins import (
    _JOIN_FIX as _JOIN_FIX, _join_pair as _join_pair, _join_type as _join_type,
    _joins as _joins, _using as _using, _where as _where,
)
from .model import (
    Aggregate, AGGREGATE_FUNCS, CheckedQuery, CheckedRows, GroupKey, RowOutput, TableRef,
)
from .modes import ROW_ACCESS, _Mode as _Mode, _mode as _mode, _MODES as _MODES
from .postprocess import (
    on_outputs, _limit as _limit, _order as _order, _OverOutputs as _OverOutputs,
)
from .rows import check_rows
from .rules import RULES, _reject as _reject
from .scope import _Entry as _Entry, _Scope as _Scope, _Source as _Source
from .select import (
    _aggregate_name as _aggregate_name, _Names as _Names, _select_list as _select_list,
)
from .statement import (
    _check_function as _check_function, _clauses as _clauses, _parts as _parts,
    _statement as _statement, _walk as _walk,
)
from .tables import _cte_entry as _cte_entry, _scope as _scope, _table_entry as _table_entry
from .whitelist import (
    AGGREGATES, ANONYMOUS_SCALARS, EXPRESSION_NODES, SCALAR_FUNCTIONS, SELECT_CLAUSES,
    SYSTEM_PREFIXES, SYSTEM_SCHEMAS, TABLE_ARGS, _AggSpec as _AggSpec, _classes as _classes,
    _CLAUSE_RULES as _CLAUSE_RULES, _CONTEXT_IDENTIFIER_RULES as _CONTEXT_IDENTIFIER_RULES,
    _NODE_RULES as _NODE_RULES, _PLACED as _PLACED, _SUPPORTED as _SUPPORTED,
)

__all__ = [
    "AGGREGATES", "AGGREGATE_FUNCS", "ANONYMOUS_SCALARS", "Aggregate", "CheckedQuery",
    "CheckedRows", "EXPRESSION_NODES", "GroupKey", "ROW_ACCESS", "RULES", "RowOutput",
    "SCALAR_FUNCTIONS", "SELECT_CLAUSES", "SYSTEM_PREFIXES", "SYSTEM_SCHEMAS", "TABLE_ARGS",
    "TableRef", "check", "check_rows", "on_outputs",
]
