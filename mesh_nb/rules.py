"""The rule registry: every rule a :class:`~mesh_nb.errors.PolicyViolation` names, declared once.

Each :class:`Rule` has an id, a short title (what breaks it) and the general fix; a refusal
may give a more specific fix (naming the columns, tables or products to use instead). Rules
belong to one stage: ``query`` (decided on the query text and the contracts' schema, before
any data is read: the policy check, the parser and the engine's binding), ``request`` (the
arguments of a request: epsilon, delta, mechanism) or ``bind`` (binding a session: purposes,
approvals, tokens and the mesh's governance rules). ``tests/test_rules.py`` reads the
package with ``ast`` and checks that every id raised is registered and every registered id
is raised. Import-light: this module imports only :mod:`mesh_nb.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import PolicyViolation

STAGES = ("query", "request", "bind")


@dataclass(frozen=True)
class Rule:
    """One rule: its id, what breaks it, the general fix and the stage that checks it."""

    id: str
    title: str
    fix: str
    stage: str = "query"


_JOIN = "use `JOIN product.table alias ON a.unit = alias.unit` (an INNER join)"
_FUNCTIONS = "use columns, literals, comparisons, arithmetic, CASE and the whitelisted functions"

REGISTRY: dict[str, Rule] = {r.id: r for r in (
    # -- the query's shape
    Rule("parse", "sqlglot cannot parse the query",
         "send one DuckDB SELECT statement over the contract tables"),
    Rule("expression-depth", "parentheses, function calls or CASE nested too deep",
         "write it flatter: fewer nested parentheses and CASEs; IN (...) instead of a long "
         "chain of OR"),
    Rule("one-statement", "more than one statement",
         "send one SELECT at a time: remove every `;` between statements"),
    Rule("forbidden-statement",
         "a statement other than SELECT (ATTACH, COPY, PRAGMA, SET, DDL, DML...)",
         "send one SELECT over contract tables named `product.table`"),
    Rule("set-operation", "UNION, INTERSECT or EXCEPT",
         "send each SELECT on its own and combine the released frames in pandas"),
    Rule("select-distinct", "SELECT DISTINCT", "GROUP BY the columns and aggregate"),
    Rule("unsupported-syntax", "a clause or expression outside the whitelist", _FUNCTIONS),
    Rule("parameter", "a query parameter", "write the values into the query"),
    Rule("window-function", "a window function, WINDOW or QUALIFY",
         "aggregate with GROUP BY; order or rank the released frame in pandas"),
    Rule("cte", "a CTE that does more than filter and project one contract table",
         "a CTE may only filter (WHERE) and project columns of one contract table; write the "
         "rest in the main query"),
    Rule("subquery", "a subquery",
         "query the contract tables directly; put filters in WHERE"),
    # -- tables, scope and joins
    Rule("table-function", "a table function in FROM (read_csv, read_parquet, glob...)",
         "read contract tables as `product.table`"),
    Rule("file-access", "a file path in FROM", "read contract tables as `product.table`"),
    Rule("system-catalog",
         "a system catalog (information_schema, duckdb_*, pg_catalog, sqlite_master)",
         "read contract tables as `product.table`"),
    Rule("unknown-table", "a table that is not `product.table` of a bound contract",
         "read contract tables as `product.table`"),
    Rule("product-not-bound", "a product that is not bound in the session",
         "bind a product with a purpose first"),
    Rule("purpose-not-allowed", "a product that does not declare the bound purpose",
         "bind the session to a purpose the products declare"),
    Rule("access-mode", "the purpose's access mode does not serve this kind of query",
         "query each product as its purpose allows"),
    Rule("duplicate-alias", "two tables under one alias", "give each table its own alias"),
    Rule("no-table", "no contract table in FROM", "add FROM product.table"),
    Rule("join-type", "a join other than INNER (LEFT, RIGHT, FULL, SEMI, ANTI, ASOF, NATURAL...)",
         _JOIN),
    Rule("cross-join", "a cross join or a join without ON", _JOIN),
    Rule("join-key", "a join condition other than equality of privacy units or declared join keys",
         _JOIN),
    Rule("join-unit",
         "a join that does not equate the joined table's privacy unit with the first's",
         "join on the privacy units (they must name the same person in both products), or "
         "query the tables separately"),
    # -- columns and expressions
    Rule("select-star", "SELECT * or table.*", "name the columns (and aggregate them)"),
    Rule("unknown-function", "a function outside the whitelist",
         "use comparisons, arithmetic, CASE, CAST, date_trunc/year/month, "
         "lower/upper/substring, round/floor/abs, coalesce"),
    Rule("size-argument", "an LPAD/RPAD length or ROUND/TRUNC digits that is not a small integer "
         "literal", "write the length or the digits as a small number"),
    Rule("growing-replace", "REPLACE whose pattern or replacement is not a literal, or whose "
         "replacement is longer than its pattern",
         "replace with a shorter (or equally long) literal, or use starts_with/contains/LIKE to "
         "test for the text"),
    Rule("regexp-pattern", "a regexp pattern or flag that is not a string literal, or a pattern "
         "outside the linear-time subset",
         "write the pattern as a string literal without groups or alternation; or use LIKE, "
         "starts_with, ends_with, contains"),
    Rule("format-literal", "a strftime/strptime format that is not a string literal of known "
         "specifiers, or a date-part unit that is not a literal",
         "write the format or the unit as a literal"),
    Rule("like-pattern", "a LIKE/ILIKE pattern that is not a string literal, has a dangling "
         "escape or too many % wildcards",
         "write the pattern as a string literal with few `%`; or use starts_with, ends_with, "
         "contains"),
    Rule("unknown-column", "a column no table in FROM has", "use a column of the tables in FROM"),
    Rule("ambiguous-column", "an unqualified column several tables have",
         "qualify it as alias.column"),
    Rule("column-not-allowed", "a column outside the purpose's allowedColumns",
         "use the purpose's allowed columns"),
    Rule("identifier-in-output", "a direct identifier (or the privacy unit) in the select list",
         "leave direct identifiers out"),
    Rule("identifier-in-where", "a direct identifier (or the privacy unit) in WHERE",
         "leave direct identifiers out"),
    Rule("identifier-in-aggregate", "a direct identifier (or the privacy unit) inside an aggregate",
         "leave direct identifiers out"),
    Rule("identifier-in-order", "a direct identifier in ORDER BY of a pseudonymized row query",
         "leave direct identifiers out"),
    Rule("group-by-identifier", "a direct identifier (or the privacy unit) in GROUP BY",
         "leave direct identifiers out"),
    Rule("generalized-column", "a generalized quasi-identifier filtered or sorted on raw values",
         "select it and filter the returned (generalized) frame"),
    # -- aggregates and bounds
    Rule("unsupported-aggregate", "an aggregate outside the whitelist (MIN, MAX, LIST...)",
         "use COUNT, SUM, AVG, VAR, STDDEV, MEDIAN or QUANTILE"),
    Rule("aggregate-filter", "FILTER (WHERE ...) on an aggregate",
         "put the condition in WHERE, or aggregate a CASE WHEN ... END"),
    Rule("aggregate-in-where", "an aggregate in WHERE", "filter released aggregates with HAVING"),
    Rule("aggregate-in-group-by", "an aggregate in GROUP BY",
         "group by columns or expressions of one column"),
    Rule("grouping-sets", "ROLLUP, CUBE or GROUPING SETS", "send one query per grouping"),
    Rule("group-by-position", "GROUP BY position out of range",
         "use an output position or name the column"),
    Rule("group-by-constant", "a GROUP BY key that reads no column",
         "group by a column or an expression of one column"),
    Rule("group-by-expression", "a GROUP BY key that reads several columns",
         "group by each column separately"),
    Rule("non-aggregated-output", "an output that is neither a group key nor an aggregate",
         "aggregate it (COUNT, SUM, AVG...) or add it to GROUP BY"),
    Rule("expression-over-aggregate", "an output that computes on an aggregate",
         "select the aggregate itself and compute on the released frame in pandas"),
    Rule("no-aggregate", "a dp-aggregate query without an aggregate",
         "add COUNT(*), SUM(...), AVG(...) or another aggregate"),
    Rule("nested-aggregate", "an aggregate of an aggregate",
         "aggregate columns of the contract tables; combine released values in pandas"),
    Rule("distinct-aggregate", "DISTINCT inside an aggregate other than COUNT",
         "drop DISTINCT; only COUNT(DISTINCT unit) is supported"),
    Rule("count-distinct", "COUNT(DISTINCT x) of something other than the privacy unit",
         "write COUNT(DISTINCT unit), e.g. the column the contract names as privacyUnit"),
    Rule("aggregate-columns", "an aggregate over several columns",
         "aggregate an expression of one column; send one query per column"),
    Rule("non-numeric-aggregate", "a numeric aggregate over a non-numeric value",
         "aggregate a numeric column; count others with COUNT, or aggregate "
         "CASE WHEN ... THEN 1 ELSE 0 END"),
    Rule("unbounded-column", "a numeric aggregate over a column without contract bounds",
         "ask the owner to declare its bounds, or COUNT it"),
    Rule("unbounded-expression", "a numeric aggregate whose value has no finite bounds",
         "divide only by numbers or columns whose bounds exclude 0"),
    Rule("aggregate-expression", "an aggregate over an expression without interval arithmetic",
         "aggregate a column, or +, -, *, / with numbers, ABS, ROUND, LEAST, GREATEST, "
         "COALESCE or CASE of one bounded column"),
    Rule("quantile-argument", "a quantile that is not one number in [0, 1]",
         "write e.g. QUANTILE_CONT(column, 0.9)"),
    # -- outputs and post-processing
    Rule("duplicate-output", "two outputs with one name", "give each output its own alias"),
    Rule("having-not-output", "HAVING over something other than the outputs",
         "HAVING applies to released values: use the outputs"),
    Rule("order-by-not-output", "ORDER BY over something other than the outputs",
         "ORDER BY applies to released values: use the outputs"),
    Rule("limit", "LIMIT or OFFSET that is not a non-negative integer", "write e.g. LIMIT 10"),
    Rule("rows-aggregate", "aggregation in a row query",
         "select columns; aggregates need a dp-aggregate purpose"),
    Rule("row-output", "an expression output in a row query",
         "select columns as stored (identifiers come back as tokens, quasi-identifiers "
         "generalized); compute on the frame in pandas"),
    Rule("engine-rejected", "the engine cannot bind the planned query (types, functions): found "
         "on the schema alone, before any data is read",
         "fix the types or functions the message names"),
    # -- the request's arguments
    Rule("epsilon", "an epsilon that is not positive", "give e.g. --epsilon 0.5", "request"),
    Rule("epsilon-too-large", "an epsilon above the purpose's maxEpsilonPerQuery",
         "ask for at most the purpose's maxEpsilonPerQuery", "request"),
    Rule("delta", "a negative delta", "give e.g. --delta 1e-7", "request"),
    Rule("mechanism", "an unknown noise mechanism", "use laplace or gaussian", "request"),
    Rule("threshold-needs-delta", "group keys without declared categories and delta 0",
         "give --delta (e.g. 1e-7), or group by columns whose categories the contract declares",
         "request"),
    Rule("gaussian-needs-delta", "the Gaussian mechanism with delta 0",
         "give --delta (e.g. 1e-7) or use --mechanism laplace", "request"),
    # -- a model fit's arguments (mesh_nb.query.fit); its features and filter are a query
    Rule("fit-access", "a model fit in a purpose that does not grant dp-aggregate access",
         "bind a dp-aggregate purpose to fit a model", "request"),
    Rule("fit-estimator", "an estimator mesh_nb does not train",
         "use LogisticRegression, GaussianNB, LinearRegression, KMeans or PCA", "request"),
    Rule("fit-features", "features that are not a plain list of columns and expressions",
         "give each feature as a column or `expr AS name`; the filter with where=", "request"),
    Rule("fit-target", "a target missing, not wanted, or with fewer than two classes",
         "give a classifier a target with declared classes, a regression a bounded number",
         "request"),
    Rule("fit-table", "a product with several tables and no table named, or an unknown one",
         "give table= one of the product's tables", "request"),
    Rule("fit-categories", "a categorical input whose categories the contract does not declare",
         "declare its values (validValues) in the contract, or bucket it with a CASE of "
         "literals", "request"),
    Rule("fit-option", "an estimator option that it does not take, or out of range",
         "use the options the message lists", "request"),
    # -- binding a session
    Rule("purpose-not-declared", "a product that does not declare the purpose being bound",
         "bind one of its declared purposes", "bind"),
    Rule("acknowledgement-required", "a purpose that must be acknowledged, bound without it",
         "read the purpose, then bind with acknowledge=True (magic: --acknowledge)", "bind"),
    Rule("mixed-access", "a purpose with different access modes across the bound products",
         "bind the products in separate sessions", "bind"),
    Rule("approval-required", "a purpose that needs an approver's approval, not yet given",
         "request it; the session binds once an approver approves", "bind"),
    Rule("identity", "a session bound for another analyst than the token's",
         "leave analyst out: the token says who you are", "bind"),
    Rule("purpose-not-granted", "a purpose the analyst's token is not issued for",
         "ask the owner for a token for it", "bind"),
    Rule("governance", "an error-level rule of the mesh's governance.yaml, raised as "
         "`governance:<rule>`", "fix the contract as the rule says, then bind again", "bind"),
)}
"""Every rule id, in one place."""

FAMILIES = ("governance",)
"""Rules raised as ``<family>:<name>``, the name coming from a file (governance.yaml)."""


def rule_of(rule_id: str) -> Rule:
    """The registered rule of an id (``governance:x`` is the ``governance`` rule)."""
    family = rule_id.split(":", 1)[0]
    return REGISTRY[family if ":" in rule_id and family in FAMILIES else rule_id]


def titles(stage: str) -> dict[str, str]:
    """Rule id -> title, for the rules of one stage."""
    return {r.id: r.title for r in REGISTRY.values() if r.stage == stage}


def violation(rule: str, what: str, fix: str | None = None) -> PolicyViolation:
    """A :class:`PolicyViolation` of a registered rule; ``fix`` defaults to the rule's."""
    if rule not in REGISTRY:
        raise KeyError(f"rule `{rule}` is not in mesh_nb.rules.REGISTRY")
    return PolicyViolation(rule, what, REGISTRY[rule].fix if fix is None else fix)
