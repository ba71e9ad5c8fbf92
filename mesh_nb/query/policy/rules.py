"""The rule ids a :class:`~mesh_nb.errors.PolicyViolation` names, and how to raise one."""

from __future__ import annotations

from ...errors import PolicyViolation

RULES: dict[str, str] = {
    "parse": "sqlglot cannot parse the query",
    "expression-depth": "parentheses, function calls or CASE nested too deep",
    "one-statement": "more than one statement",
    "forbidden-statement": "a statement other than SELECT (ATTACH, COPY, PRAGMA, SET, DDL, DML...)",
    "set-operation": "UNION, INTERSECT or EXCEPT",
    "select-distinct": "SELECT DISTINCT",
    "unsupported-syntax": "a clause or expression outside the whitelist",
    "parameter": "a query parameter",
    "window-function": "a window function, WINDOW or QUALIFY",
    "cte": "a CTE that does more than filter and project one contract table",
    "subquery": "a subquery",
    "table-function": "a table function in FROM (read_csv, read_parquet, glob...)",
    "file-access": "a file path in FROM",
    "system-catalog": "a system catalog (information_schema, duckdb_*, pg_catalog, sqlite_master)",
    "unknown-table": "a table that is not `product.table` of a bound contract",
    "product-not-bound": "a product that is not bound in the session",
    "purpose-not-allowed": "a product that does not declare the bound purpose",
    "access-mode": "the purpose's access mode does not serve this kind of query",
    "duplicate-alias": "two tables under one alias",
    "no-table": "no contract table in FROM",
    "select-star": "SELECT * or table.*",
    "unknown-function": "a function outside the whitelist",
    "size-argument": "an LPAD/RPAD length or ROUND/TRUNC digits that is not a small integer "
                     "literal",
    "growing-replace": "REPLACE whose pattern or replacement is not a literal, or whose "
                       "replacement is longer than its pattern",
    "regexp-pattern": "a regexp pattern or flag that is not a string literal, or a pattern "
                      "outside the linear-time subset",
    "format-literal": "a strftime/strptime format that is not a string literal of known "
                      "specifiers, or a date-part unit that is not a literal",
    "like-pattern": "a LIKE/ILIKE pattern that is not a string literal, has a dangling escape "
                    "or too many % wildcards",
    "unsupported-aggregate": "an aggregate outside the whitelist (MIN, MAX, LIST...)",
    "aggregate-filter": "FILTER (WHERE ...) on an aggregate",
    "join-type": "a join other than INNER (LEFT, RIGHT, FULL, SEMI, ANTI, ASOF, NATURAL...)",
    "cross-join": "a cross join or a join without ON",
    "join-key": "a join condition other than equality of privacy units or declared join keys",
    "join-unit": "a join that does not equate the joined table's privacy unit with the first's",
    "unknown-column": "a column no table in FROM has",
    "ambiguous-column": "an unqualified column several tables have",
    "column-not-allowed": "a column outside the purpose's allowedColumns",
    "identifier-in-output": "a direct identifier (or the privacy unit) in the select list",
    "identifier-in-where": "a direct identifier (or the privacy unit) in WHERE",
    "identifier-in-aggregate": "a direct identifier (or the privacy unit) inside an aggregate",
    "identifier-in-order": "a direct identifier in ORDER BY of a pseudonymized row query",
    "group-by-identifier": "a direct identifier (or the privacy unit) in GROUP BY",
    "generalized-column": "a generalized quasi-identifier filtered or sorted on raw values",
    "aggregate-in-where": "an aggregate in WHERE",
    "aggregate-in-group-by": "an aggregate in GROUP BY",
    "grouping-sets": "ROLLUP, CUBE or GROUPING SETS",
    "group-by-position": "GROUP BY position out of range",
    "group-by-constant": "a GROUP BY key that reads no column",
    "group-by-expression": "a GROUP BY key that reads several columns",
    "non-aggregated-output": "an output that is neither a group key nor an aggregate",
    "expression-over-aggregate": "an output that computes on an aggregate",
    "no-aggregate": "a dp-aggregate query without an aggregate",
    "nested-aggregate": "an aggregate of an aggregate",
    "distinct-aggregate": "DISTINCT inside an aggregate other than COUNT",
    "count-distinct": "COUNT(DISTINCT x) of something other than the privacy unit",
    "aggregate-columns": "an aggregate over several columns",
    "non-numeric-aggregate": "a numeric aggregate over a non-numeric value",
    "unbounded-column": "a numeric aggregate over a column without contract bounds",
    "unbounded-expression": "a numeric aggregate whose value has no finite bounds",
    "aggregate-expression": "an aggregate over an expression without interval arithmetic",
    "quantile-argument": "a quantile that is not one number in [0, 1]",
    "duplicate-output": "two outputs with one name",
    "having-not-output": "HAVING over something other than the outputs",
    "order-by-not-output": "ORDER BY over something other than the outputs",
    "limit": "LIMIT or OFFSET that is not a non-negative integer",
    "rows-aggregate": "aggregation in a row query",
    "row-output": "an expression output in a row query",
    "engine-rejected": "the engine cannot bind the planned query (types, functions): found on "
                       "the schema alone, before any data is read",
}


def _reject(rule: str, what: str, fix: str) -> PolicyViolation:
    assert rule in RULES, rule
    return PolicyViolation(rule, what, fix)
