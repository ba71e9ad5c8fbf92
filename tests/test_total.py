"""The total engine: no whitelisted expression raises, or costs time, because of a value.

Each family is an expression over a real DuckDB table with one benign row and one hostile row
(text that is no number, INT64 limits, a zero divisor, NaN, a far date, the last timestamp).
The raw expression must raise on the hostile row only — so each case could fail — and
``total()`` of it must return on both rows: the raw value on the benign one, NULL on the
hostile one. What TRY cannot make total (time that follows an argument, patterns and formats
built from data, deep nesting) the policy refuses, each with its rule id. The Spark half runs
the rewritten expressions (``strip_try``) on a local Spark 4 with ANSI off over the same rows.

No mocks, no timing assertions.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from mesh_nb.contract import Contract, load_contract
from mesh_nb.errors import PolicyViolation
from mesh_nb.query.policy import RULES, check
from mesh_nb.query.parse import MAX_DEPTH
from mesh_nb.query.policy.whitelist import FORMAT_SPECIFIERS, PARSE_ONLY_EXCLUDED
from mesh_nb.query.total import RULES as TOTAL_RULES
from mesh_nb.query.total import strip_try, total
from sparkcheck import spark_missing

CHURN = "churn-analysis"
COUNT = "SELECT COUNT(*) FROM customers.accounts WHERE "

TYPES = {"t.id": "integer", "t.s": "string", "t.sd": "string", "t.sb": "string",
         "t.i": "integer", "t.lo": "integer", "t.z": "integer", "t.n": "integer",
         "t.d": "number", "t.m": "number", "t.dt": "date", "t.ts": "timestamp",
         "t.b": "boolean"}
COLUMNS = ("id INTEGER, s VARCHAR, sd VARCHAR, sb VARCHAR, i BIGINT, lo BIGINT, z BIGINT, "
           "n BIGINT, d DOUBLE, m DECIMAL(18,3), dt DATE, ts TIMESTAMP, b BOOLEAN")
BENIGN = ("0, '420', '2020-01-02', 'true', 5, -5, 2, 1, 2.5, 12.5, DATE '2020-01-01', "
          "TIMESTAMP '2020-01-01 10:00:00', true")
HOSTILE = ("1, 'ab', '2020-13-45', 'maybe', 9223372036854775807, -9223372036854775807 - 1, 0, "
           "NULL, 'nan'::DOUBLE, 999999999999999.999, '5877642-06-25'::DATE, "
           "'294247-01-10 04:00:54'::TIMESTAMP, false")

# (family, expression over `t`): raw raises on the hostile row only.
FAMILIES = [
    ("cast text to integer", "CAST(t.s AS INTEGER)"),
    ("cast :: text to date", "t.sd::DATE"),
    ("cast NaN to narrow decimal", "CAST(t.d AS DECIMAL(3,1))"),
    ("cast NaN to integer", "CAST(t.d AS INTEGER)"),
    ("cast far date to timestamp", "CAST(t.dt AS TIMESTAMP)"),
    ("implicit: text = number", "t.s = 5"),
    ("implicit: text IN numbers", "t.s IN (1, 2)"),
    ("implicit: text = date", "t.sd = DATE '2020-01-02'"),
    ("implicit: date < timestamp", "t.dt < t.ts"),
    ("implicit: text OR", "t.sb OR t.b"),
    ("implicit: CASE WHEN text", "CASE WHEN t.sb THEN 1 END"),
    ("implicit: text IS TRUE", "t.sb IS TRUE"),
    ("implicit: NULLIF text, number", "NULLIF(t.s, 5)"),
    ("implicit: literal in COALESCE", "COALESCE(t.n, 'x')"),
    ("constant // 0 under CASE", "CASE WHEN t.z = 0 THEN 1 // 0 ELSE 1 END"),
    ("constant cast under CASE", "CASE WHEN t.z = 0 THEN CAST('abc' AS INTEGER) ELSE 1 END"),
    ("literal vs date under CASE", "CASE WHEN t.z = 0 THEN t.dt > '2020-99-99' ELSE true END"),
    ("integer + overflow", "t.i + 1"),
    ("integer * overflow", "t.i * 2"),
    ("integer - overflow", "t.lo - 1"),
    ("integer negation overflow", "-t.lo"),
    ("abs overflow", "abs(t.lo)"),
    ("round integer overflow", "round(t.i, -1)"),
    ("decimal * overflow", "t.m * t.m * t.m"),
    ("integer // 0", "t.i // t.z"),
    ("integer % 0", "t.i % t.z"),
    ("float // 0", "t.d // t.z"),
    ("decimal % 0", "t.m % t.z"),
    ("date + interval past the range", "t.dt + INTERVAL 1 DAY"),
    ("date_add past the range", "date_add(t.dt, INTERVAL 1 YEAR)"),
    ("interval from data", "t.dt - INTERVAL (t.m) DAY"),
    ("date_trunc of a far date", "date_trunc('month', t.dt)"),
    ("date_diff microseconds", "date_diff('microseconds', t.dt, DATE '2020-01-01')"),
    ("timestamp + interval at the limit", "t.ts + INTERVAL 1 DAY"),
    ("strptime on data", "strptime(t.sd, '%Y-%m-%d')"),
    ("make_date from data", "make_date(t.i, 1, 1)"),
    ("substring offset from data", "substring(t.s, t.lo)"),
    ("left length from data", "left(t.s, t.i)"),
    ("lpad without padding", "lpad(t.s, 3, '')"),
]

# Provably total: left exactly as written (no TRY, so scans keep their filters).
UNCHANGED = [
    "t.s = 'x'", "t.i > 5", "t.i > -5", "t.d BETWEEN 10 AND 100", "t.s IN ('a', 'b')",
    "t.dt IS NULL", "NOT t.dt IS NULL", "NOT t.b", "t.b AND t.i < 3 OR t.s LIKE 'a%'",
    "CASE WHEN t.d < 50 THEN 'low' WHEN t.d < 200 THEN 'mid' ELSE 'high' END",
    "t.d / 4", "sqrt(t.d)", "ln(t.i)", "pow(t.d, 2)", "lower(t.s) = 'x'", "year(t.dt) < 1980",
    "extract(year FROM t.dt)", "coalesce(t.s, 'north') <> 'west'", "t.dt - t.dt",
    "t.dt < t.dt", "floor(t.d / 100) * 100",
    "round(t.d / 3)", "substring(t.s, 1, 2)", "left(t.s, -5)", "lpad(t.s, 10, 'x')",
    "t.s || t.sd", "starts_with(t.s, 'a')", "t.i = t.z", "t.i = t.d",
]


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute(f"CREATE TABLE t ({COLUMNS})")
    c.execute(f"INSERT INTO t VALUES ({BENIGN}), ({HOSTILE})")
    return c


def _expr(sql: str) -> exp.Expression:
    return sqlglot.parse_one(sql, read="duckdb")


def _rows(con: duckdb.DuckDBPyConnection, sql: str, where: str = "true") -> list:
    return [r[0] for r in con.execute(f"SELECT {sql} FROM t WHERE {where} ORDER BY id")
            .fetchall()]


@pytest.mark.parametrize("family, sql", FAMILIES, ids=[f for f, _ in FAMILIES])
def test_raw_raises_on_the_hostile_row_only(con: duckdb.DuckDBPyConnection, family: str,
                                            sql: str) -> None:
    benign = _rows(con, sql, "id = 0")
    assert len(benign) == 1
    with pytest.raises(duckdb.Error):
        _rows(con, sql, "id = 1")


@pytest.mark.parametrize("family, sql", FAMILIES, ids=[f for f, _ in FAMILIES])
def test_total_returns_on_both_rows(con: duckdb.DuckDBPyConnection, family: str,
                                    sql: str) -> None:
    rewritten = total(_expr(sql), TYPES).sql("duckdb")
    benign, hostile = _rows(con, rewritten)
    assert benign == _rows(con, sql, "id = 0")[0]
    assert hostile is None, (rewritten, hostile)


@pytest.mark.parametrize("family, sql", FAMILIES, ids=[f for f, _ in FAMILIES])
def test_total_holds_as_a_filter_and_a_group_key(con: duckdb.DuckDBPyConnection, family: str,
                                                 sql: str) -> None:
    """Where the planner puts it: WHERE (a predicate) and GROUP BY; one outcome for both
    rows, whatever the hostile row holds."""
    cond = total(_expr(f"CASE WHEN t.id = 1 THEN ({sql}) IS NULL ELSE true END"), TYPES,
                 predicate=True).sql("duckdb")
    assert con.execute(f"SELECT COUNT(*) FROM t WHERE {cond}").fetchone()[0] == 2
    key = total(_expr(sql), TYPES).sql("duckdb")
    groups = con.execute(f"SELECT k, COUNT(*) FROM (SELECT {key} AS k FROM t) GROUP BY k"
                         ).fetchall()
    assert sum(n for _, n in groups) == 2


@pytest.mark.parametrize("sql", UNCHANGED)
def test_what_cannot_raise_is_left_as_written(sql: str) -> None:
    e = _expr(sql)
    out = total(e, TYPES)
    assert out.sql("duckdb") == e.sql("duckdb")
    assert not list(out.find_all(exp.Try, exp.TryCast))


@pytest.mark.parametrize("sql", [
    "date_diff('day', t.dt, DATE '2025-12-31') > 30", "strftime(t.dt, '%Y')",
    "date_trunc('month', t.dt)", "date_trunc('month', t.ts)", "t.dt < t.ts", "epoch(t.dt)",
    "extract(hour FROM t.dt)", "CAST(t.dt AS TIMESTAMP)",
])
def test_dates_are_guarded_not_tried(sql: str) -> None:
    """Where Spark turns a date into a timestamp (and overflows on a far one), the argument
    is NULL outside years 1..9999; that is total in DuckDB too, so no TRY is added."""
    out = total(_expr(sql), TYPES)
    assert not list(out.find_all(exp.Try)), out.sql("duckdb")
    assert "BETWEEN TRY_CAST('0001-01-01" in out.sql("duckdb")
    assert "'2025-12-31' AS DATE) END" not in out.sql("duckdb")  # constants are not guarded


def test_bench_filters_keep_their_shape() -> None:
    """The grouped queries the bench runs filter on bare columns: nothing is wrapped, and a
    date literal becomes a TRY_CAST that DuckDB folds to the same constant."""
    e = _expr("t.s IN ('north', 'south') AND t.d BETWEEN 10 AND 100 AND t.s LIKE 'p%' AND "
              "NOT t.dt IS NULL AND NOT t.b")
    assert total(e, TYPES, predicate=True).sql("duckdb") == e.sql("duckdb")
    dated = total(_expr("t.dt >= '2024-01-01' AND t.dt < DATE '2025-01-01'"), TYPES)
    assert dated.sql("duckdb") == ("t.dt >= TRY_CAST('2024-01-01' AS DATE) AND "
                                   "t.dt < TRY_CAST('2025-01-01' AS DATE)")
    assert not list(dated.find_all(exp.Try))


def test_pushdown_survives_the_literal_cast(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    with duckdb.connect() as c:
        c.execute(f"COPY (SELECT DATE '2020-01-01' + CAST(i AS INTEGER) AS dt FROM range(1000) "
                  f"r(i)) TO '{path}'")
        c.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{path}')")
        cond = total(_expr("t.dt >= '2021-06-01'"), TYPES, predicate=True).sql("duckdb")
        plan = "\n".join(r[1] for r in c.execute(f"EXPLAIN SELECT COUNT(*) FROM t WHERE {cond}")
                         .fetchall())
        assert "Filters:" in plan and "TRY" not in plan, plan
        assert c.execute(f"SELECT COUNT(*) FROM t WHERE {cond}").fetchone()[0] == 1000 - 517


def test_types_decide_what_is_wrapped() -> None:
    assert total(_expr("t.s = 5"), TYPES).sql("duckdb") == "TRY(t.s = 5)"
    assert total(_expr("t.i = '5'"), TYPES).sql("duckdb") == "t.i = TRY_CAST('5' AS BIGINT)"
    assert total(_expr("t.i * 2"), TYPES).sql("duckdb") == "TRY(t.i * 2)"
    assert total(_expr("CAST(t.i AS DOUBLE) * 2"), TYPES).sql("duckdb") == (
        "TRY_CAST(t.i AS DOUBLE) * 2")
    # an unknown type: the arithmetic, and the comparison with its unknown result
    assert total(_expr("t.unknown + 1 > 0"), TYPES).sql("duckdb") == (
        "TRY(TRY(t.unknown + 1) > 0)")
    assert total(_expr("t.sb"), TYPES, predicate=True).sql("duckdb") == (
        "TRY_CAST(t.sb AS BOOLEAN)")
    assert total(_expr("t.b"), TYPES, predicate=True).sql("duckdb") == "t.b"


def test_total_copies_and_is_idempotent() -> None:
    for _, sql in FAMILIES:
        e = _expr(sql)
        before = e.sql("duckdb")
        once = total(e, TYPES)
        assert e.sql("duckdb") == before  # the input is not touched
        again = total(once, TYPES).sql("duckdb")
        assert again.count("BETWEEN") == once.sql("duckdb").count("BETWEEN")  # guarded once
        assert again.count("TRY_CAST(") == once.sql("duckdb").count("TRY_CAST(")


@pytest.mark.parametrize("family, sql", FAMILIES, ids=[f for f, _ in FAMILIES])
def test_try_survives_rendering_and_reparsing(family: str, sql: str) -> None:
    out = total(_expr(sql), TYPES)
    text = out.sql("duckdb")
    back = sqlglot.parse_one(text, read="duckdb")
    assert back.sql("duckdb") == text
    assert len(list(back.find_all(exp.Try))) == len(list(out.find_all(exp.Try)))


def test_rules_are_public_and_ordered() -> None:
    assert [r.__name__ for r in TOTAL_RULES] == ["try_casts", "cast_literals",
                                                 "guard_temporal", "try_raising"]


def test_strip_try_removes_every_try() -> None:
    for _, sql in FAMILIES:
        out = strip_try(total(_expr(sql), TYPES))
        assert not list(out.find_all(exp.Try))
        assert "TRY(" not in out.sql("spark")
    nested = _expr("TRY(TRY(t.i // t.z) + 1)")
    assert strip_try(nested).sql("duckdb") == "t.i // t.z + 1"
    assert nested.sql("duckdb") == "TRY(TRY(t.i // t.z) + 1)"  # a copy


# --------------------------------------------------------------------------- the policy


@pytest.fixture(scope="module")
def contracts(demo_root: Path) -> dict[str, Contract]:
    return {name: load_contract(demo_root / name) for name in ("customers", "sales")}


def _nested(depth: int) -> str:
    inner = "monthly_spend"
    for _ in range(depth):
        inner = f"abs({inner} - 1)"
    return inner


REFUSED = [
    # sizes: the work per row follows the argument
    (COUNT + "length(lpad(plan, CAST(monthly_spend AS INTEGER) * 100000, 'x')) > 0",
     "size-argument"),
    (COUNT + "length(rpad(plan, 50000000, 'x')) > 0", "size-argument"),
    (COUNT + "length(lpad(plan, 1001, 'x')) > 0", "size-argument"),
    (COUNT + "length(lpad(plan, -1, 'x')) > 0", "size-argument"),
    (COUNT + "round(monthly_spend, CAST(monthly_spend AS INTEGER)) > 0", "size-argument"),
    (COUNT + "round(monthly_spend, 2147483647) > 0", "size-argument"),
    # growth
    (COUNT + "length(replace(replace(plan, 'p', 'pppppppppp'), 'p', 'pppppppppp')) > 0",
     "growing-replace"),
    (COUNT + "replace(plan, 'p', region) = 'x'", "growing-replace"),
    (COUNT + "replace(plan, region, '') = 'x'", "growing-replace"),
    # patterns and formats built from data, or outside what both engines read
    (COUNT + "regexp_matches('pro(', plan || '(')", "regexp-pattern"),
    (COUNT + "regexp_matches(plan, region)", "regexp-pattern"),
    (COUNT + "regexp_matches(plan, '(a+)+b')", "regexp-pattern"),
    (COUNT + "regexp_matches(plan, 'pro|basic')", "regexp-pattern"),
    (COUNT + "regexp_matches(plan, 'a*a*b')", "regexp-pattern"),
    (COUNT + "regexp_matches(plan, 'pro(')", "regexp-pattern"),
    (COUNT + "regexp_matches(plan, 'p\\bro')", "regexp-pattern"),
    (COUNT + "regexp_matches(plan, 'p', region)", "regexp-pattern"),
    (COUNT + "strftime(signup_date, plan) = 'x'", "format-literal"),
    (COUNT + "strftime(signup_date, '%Q') = 'x'", "format-literal"),
    (COUNT + "strftime(signup_date, '%Y year') = 'x'", "format-literal"),
    (COUNT + "strptime('2020', plan) IS NOT NULL", "format-literal"),
    (COUNT + "strptime(plan, '%A') IS NOT NULL", "format-literal"),
    (COUNT + "date_part(plan, signup_date) > 0", "format-literal"),
    (COUNT + "date_trunc(accounts.plan, signup_date) IS NULL", "format-literal"),
    (COUNT + "plan LIKE region", "like-pattern"),
    (COUNT + "plan LIKE '%a%a%a%a%a%a%b'", "like-pattern"),
    (COUNT + "plan LIKE '%p%r%'", "like-pattern"),
    (COUNT + "plan LIKE 'pro!' ESCAPE '!'", "like-pattern"),
    (COUNT + "plan LIKE 'p!ro' ESCAPE '!'", "like-pattern"),
    (COUNT + "plan LIKE 'p\\%'", "like-pattern"),
    (COUNT + "plan ILIKE region", "like-pattern"),
    # nesting (refused by the parser, before any tree walk)
    (COUNT + f"{_nested(MAX_DEPTH + 1)} > 0", "expression-depth"),
    ("SELECT SUM(" + _nested(300) + ") FROM customers.accounts", "expression-depth"),
]

ACCEPTED = [
    COUNT + "regexp_matches(plan, '^p[a-z]+$')",
    COUNT + "regexp_matches(plan, '^\\d{3}-\\d{4}$')",
    COUNT + "plan LIKE 'p%'",
    COUNT + "plan LIKE '%r%'",
    COUNT + "plan LIKE 'p!%' ESCAPE '!'",
    COUNT + "length(lpad(plan, 1000, 'x')) > 0",
    COUNT + "replace(plan, 'pro', 'p') = 'p'",
    COUNT + "strftime(signup_date, '%Y-%m') = '2020-01'",
    COUNT + "strptime(CAST(signup_date AS VARCHAR), '%Y-%m-%d') > TIMESTAMP '2018-01-01'",
    COUNT + "round(monthly_spend, 2) > 1 AND round(monthly_spend, -2) < 500",
    COUNT + "date_part('year', signup_date) > 2000 AND date_trunc('month', signup_date) IS "
            "NOT NULL",
    COUNT + f"{_nested(MAX_DEPTH // 2)} > 0",
    COUNT + " AND ".join(f"monthly_spend <> {i}" for i in range(100)),
    COUNT + " OR ".join(f"plan = 'p{i}'" for i in range(100)),
]


def _literals(sql: str) -> list[str]:
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except RecursionError:  # the nesting cases: too deep for sqlglot itself
        return []
    return [lit.this for lit in tree.find_all(exp.Literal) if lit.is_string and len(lit.this) >= 4]


@pytest.mark.parametrize("sql, rule", REFUSED)
def test_policy_refuses_what_try_cannot_make_total(contracts: dict, sql: str,
                                                   rule: str) -> None:
    with pytest.raises(PolicyViolation) as info:
        check(sql, contracts, CHURN)
    assert info.value.rule == rule, str(info.value)
    assert rule in RULES and info.value.what and info.value.fix
    for literal in _literals(sql):
        assert literal not in str(info.value)


@pytest.mark.parametrize("sql", ACCEPTED)
def test_policy_accepts_the_bounded_forms(contracts: dict, sql: str) -> None:
    q = check(sql, contracts, CHURN)
    assert q.where is not None


def test_new_rules_are_registered() -> None:
    for rule in ("size-argument", "growing-replace", "regexp-pattern", "format-literal",
                 "like-pattern", "expression-depth"):
        assert RULES[rule]
    assert {r for _, r in REFUSED} == {"size-argument", "growing-replace", "regexp-pattern",
                                       "format-literal", "like-pattern", "expression-depth"}


def _types(q, contracts: dict) -> dict[str, str]:
    return {f"{t.alias}.{c.name}": c.logical_type for t in q.tables
            for c in contracts[t.product].table(t.table).columns}


def test_checked_parts_become_total_on_the_demo_data(contracts: dict) -> None:
    """A checked query's WHERE, keys and aggregate values, made total, run on the demo
    files: the birth-date attack returns, and counts the same as the query without it."""
    sql = ("SELECT CASE WHEN birth_date < DATE '1950-01-01' THEN CAST(CAST(birth_date AS "
           "VARCHAR) AS INTEGER) ELSE 0 END AS k, SUM(CASE WHEN monthly_spend > 400 THEN "
           "CAST(monthly_spend AS DECIMAL(3,1)) ELSE monthly_spend END) AS s "
           "FROM customers.accounts WHERE "
           "CASE WHEN region = 'west' THEN CAST(CAST(birth_date AS VARCHAR) AS INTEGER) = 0 "
           "ELSE true END GROUP BY k")
    q = check(sql, contracts, CHURN)
    types = _types(q, contracts)
    table = contracts["customers"].table("accounts")
    where = total(q.where, types, predicate=True).sql("duckdb")
    key = total(q.group_keys[0].expr, types).sql("duckdb")
    value = total(q.aggregates[0].value, types).sql("duckdb")
    with duckdb.connect() as c:
        c.execute("CREATE SCHEMA customers")
        c.execute(f"CREATE VIEW customers.accounts AS SELECT * FROM "
                  f"read_parquet('{table.data_path}')")
        with pytest.raises(duckdb.Error):  # the attack, as written
            c.execute(f"SELECT COUNT(*) FROM customers.accounts AS accounts WHERE "
                      f"{q.where.sql('duckdb')}").fetchall()
        rows = c.execute(f"SELECT {key} AS k, SUM(CAST({value} AS DOUBLE)) FROM "
                         f"customers.accounts AS accounts WHERE {where} GROUP BY k").fetchall()
        n = c.execute(f"SELECT COUNT(*) FROM customers.accounts AS accounts WHERE {where}"
                      ).fetchone()[0]
        west = c.execute("SELECT COUNT(*) FROM customers.accounts WHERE region IS DISTINCT "
                         "FROM 'west'").fetchone()[0]
    assert rows and n == west  # the west rows' condition is NULL: filtered out, no error


# --------------------------------------------------------------------------- Spark


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory, con: duckdb.DuckDBPyConnection):
    """A Spark session of its own (ANSI off) on the shared local context, with the hostile
    table as `t`, the benign row alone as `t_benign`, and no rows as `t_empty` (parquet
    written by DuckDB, so Spark reads the same values)."""
    reason = spark_missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI runs the Spark tests, but {reason}", pytrace=False)
        pytest.skip(reason)
    from mesh_nb.query.spark import spark_session

    session = spark_session().newSession()
    session.conf.set("spark.sql.ansi.enabled", "false")
    folder = tmp_path_factory.mktemp("total_spark")
    for name, where in (("t", "true"), ("t_benign", "id = 0"), ("t_empty", "false")):
        path = folder / f"{name}.parquet"
        con.execute(f"COPY (SELECT * FROM t WHERE {where}) TO '{path}'")
        session.read.parquet(str(path)).createOrReplaceTempView(name)
    session.sql("CREATE OR REPLACE TEMP VIEW far AS SELECT timestamp_micros(id) AS ts FROM "
                "VALUES (0L), (9223372036854775807L), (-9223372036854775808L) AS v(id)")
    session.table("far").cache().count()
    return session


def _spark_sql(e: exp.Expression) -> str:
    """As the Spark engine gets it: the DuckDB text, re-parsed, TRY stripped, Spark SQL."""
    tree = sqlglot.parse_one(e.sql("duckdb"), read="duckdb")
    return strip_try(tree).sql("spark")


def _spark_outcome(spark, sql: str, view: str) -> str:
    try:
        spark.sql(f"SELECT string(x) FROM (SELECT {sql} AS x FROM {view} AS t)").collect()
    except Exception as exc:  # noqa: BLE001 - the outcome class is what is compared
        return type(exc).__name__
    return "ok"


@pytest.mark.parametrize("family, sql", FAMILIES, ids=[f for f, _ in FAMILIES])
def test_spark_runs_the_stripped_expression_the_same_on_any_rows(spark, family: str,
                                                                 sql: str) -> None:
    """On Spark (ANSI off) the stripped expression behaves the same on the hostile rows, the
    benign row alone and no rows: it runs, or fails at analysis whatever the data (a DuckDB
    form sqlglot does not carry to Spark)."""
    text = _spark_sql(total(_expr(sql), TYPES))
    outcomes = {v: _spark_outcome(spark, text, v) for v in ("t", "t_benign", "t_empty")}
    assert len(set(outcomes.values())) == 1, (text, outcomes)


@pytest.mark.parametrize("sql", [
    "date_trunc('month', t.ts)", "t.ts + INTERVAL 1 DAY", "t.ts - TIMESTAMP '2020-01-01'",
])
def test_spark_timestamp_guard(spark, sql: str) -> None:
    """Spark raises `long overflow` near its timestamp limits even with ANSI off; the guard
    makes those values NULL."""
    raw = sqlglot.parse_one(sql, read="duckdb").sql("spark")
    with pytest.raises(Exception):
        spark.sql(f"SELECT string({raw}) FROM far AS t").collect()
    guarded = _spark_sql(total(_expr(sql), {"t.ts": "timestamp"}))
    rows = spark.sql(f"SELECT string({guarded}) FROM far AS t").collect()
    assert [r[0] is None for r in rows] == [False, True, True]


@pytest.mark.parametrize("spec", sorted(FORMAT_SPECIFIERS))
def test_spark_reads_every_allowed_format_specifier(spark, contracts: dict, spec: str) -> None:
    """Each specifier the policy allows becomes a Java pattern Spark accepts, formatting a
    date and parsing text (an unknown letter would raise only for rows that reach it)."""
    forms = [f"strftime(signup_date, '{spec}') = 'x'"]
    if spec not in PARSE_ONLY_EXCLUDED:
        forms.append(f"strptime(CAST(signup_date AS VARCHAR), '{spec}') IS NULL")
    for sql in forms:
        q = check(COUNT + sql, contracts, CHURN)
        text = _spark_sql(total(q.where, _types(q, contracts), predicate=True))
        text = text.replace("accounts.signup_date", "t.dt")
        assert _spark_outcome(spark, text, "t") == "ok", text


def test_strip_try_renders_valid_spark_sql(spark) -> None:
    for _, sql in FAMILIES:
        text = _spark_sql(total(_expr(sql), TYPES))
        assert "TRY(" not in text.upper().replace("TRY_CAST(", "")
        sqlglot.parse_one(text, read="spark")  # parses back as Spark SQL
    ok = [s for _, s in FAMILIES if _spark_outcome(spark, _spark_sql(total(_expr(s), TYPES)),
                                                    "t") == "ok"]
    assert len(ok) >= len(FAMILIES) - 6, ok  # all but the forms sqlglot cannot carry
    values = spark.sql(f"SELECT {_spark_sql(total(_expr('CAST(t.s AS INTEGER)'), TYPES))} "
                       "FROM t ORDER BY id").collect()
    assert [r[0] for r in values] == [420, None]
