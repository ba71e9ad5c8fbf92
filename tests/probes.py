"""The side-channel corpus as data: probes whose engine behaviour could depend on one person.

Each :class:`Probe` is a dp-aggregate query over the demo mesh (purpose ``churn-analysis``)
built so that, on an engine that is not total, it behaves differently when one chosen person is
in the data: it raises (and the message quotes the person's value), or it takes time that
grows with the person's value. :data:`PERSON` and :data:`PERSON_ORDER` are that person: the
neighbouring mesh is the demo mesh plus this customer (one accounts row, one order).
:func:`write_neighbour` writes it; :func:`raw_outcome` runs a probe on plain DuckDB over a
mesh's files (:func:`raw_duckdb`, no mesh_nb in between), which is how a probe's premise is
checked: on an engine that is not total it really tells the two meshes apart.

Imported by tests/test_side_channels.py (not a conftest).
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

# -- the one person the two neighbouring meshes differ in ----------------------------------

PERSON = {
    "customer_id": "C9999991",
    "full_name": "Quilla Zorbanek",
    "email": "quilla.zorbanek@example.org",
    "phone": "(212) 456-7301",
    "birth_date": dt.date(1901, 2, 3),
    "postcode": "99017",
    "region": "west",
    "plan": "pro",
    "signup_date": dt.date(2017, 6, 5),
    "monthly_spend": 432.17,  # no one else in the demo mesh spends exactly this
    "churned": True,
}
PERSON_ORDER = {
    "order_id": "O99999991",
    "customer_id": PERSON["customer_id"],
    "order_date": dt.date(2017, 6, 6),
    "amount": 1876.54,  # no other order has exactly this amount
    "category": "toys",
    "card_number": "4111111111111111",
    "ip_address": "192.0.2.77",
}

#: Values only the person's data holds (never written in a probe): no message, note, column
#: name, ledger entry or log line may contain one.
SECRETS = ("1901-02-03", "Zorbanek", "zorbanek", "C9999991", "O99999991", "2017-06-05",
           "2017-06-06", "99017", "4111111111111111", "192.0.2.77")
#: Values the probes write as literals to pick the person: the ledger stores queries redacted
#: (literals as ``?``), so they may not appear in its entries either.
PICKED = ("432.17", "1876.54")


def _append(path: Path, row: dict) -> None:
    table = pq.read_table(path)
    extra = pa.table({f.name: pa.array([row[f.name]], type=f.type) for f in table.schema},
                     schema=table.schema)
    pq.write_table(pa.concat_tables([table, extra]), path, compression="zstd")


def write_neighbour(demo_root: Path, base: Path, neighbour: Path) -> tuple[Path, Path]:
    """Two copies of the demo mesh (empty ledgers, no server state); the second has
    :data:`PERSON` in customers/accounts.parquet and :data:`PERSON_ORDER` in
    sales/orders.parquet."""
    skip = shutil.ignore_patterns(".mesh_nb", ".owner", ".server")
    for target in (base, neighbour):
        shutil.copytree(demo_root, target, ignore=skip)
    _append(neighbour / "customers" / "accounts.parquet", PERSON)
    _append(neighbour / "sales" / "orders.parquet", PERSON_ORDER)
    return base, neighbour


def raw_duckdb(mesh_dir: Path) -> duckdb.DuckDBPyConnection:
    """Plain DuckDB (no mesh_nb) with the mesh's two tables as ``product.table`` views."""
    con = duckdb.connect()
    for product, table in (("customers", "accounts"), ("sales", "orders")):
        path = str(mesh_dir / product / f"{table}.parquet").replace("'", "''")
        con.execute(f'CREATE SCHEMA "{product}"')
        con.execute(f"CREATE VIEW \"{product}\".\"{table}\" AS SELECT * FROM "
                    f"read_parquet('{path}')")
    return con


def raw_outcome(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[str, ...]:
    """A probe run as written on :func:`raw_duckdb`: ``("ok",)`` or ``("error", class,
    message)`` — what an engine that runs the analyst's SQL as it is would show."""
    try:
        con.execute(sql).fetchall()
    except duckdb.Error as exc:
        return ("error", type(exc).__name__, str(exc))
    return ("ok",)


# -- the corpus -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Probe:
    """One side-channel probe.

    ``expect`` is ``"policy"`` where the design requires a refusal before any data is read
    (size arguments that are not small literals, regexps and format strings built from data,
    nesting beyond the bound); ``None`` where released or QueryFailed are both fine, as long
    as the two meshes cannot be told apart. ``premise`` is what plain DuckDB shows on the two
    meshes: ``"differs"`` (an error on one only, or two different errors), ``"timing"`` (the
    difference is time or memory, never asserted), ``"same"`` (a control that is constant, or
    already total). ``server`` marks the probes also sent through ``mesh-nb serve``.
    """

    id: str
    family: str
    sql: str
    products: str = "customers"
    expect: str | None = None
    premise: str = "differs"
    server: bool = False


# Picks the one person by quasi-identifiers (no one else has this spend in the west).
PICK = "monthly_spend = 432.17 AND region = 'west'"
PICK1 = "monthly_spend = 432.17"  # one column only, for GROUP BY keys and aggregate arguments
COUNT = "SELECT COUNT(*) AS n FROM customers.accounts WHERE "
JOIN = ("SELECT COUNT(*) AS n FROM customers.accounts a JOIN sales.orders o "
        "ON a.customer_id = o.customer_id ")


def _guard(risky: str, pick: str = PICK) -> str:
    """WHERE condition true for everyone, and computing ``risky`` for the picked person."""
    return f"CASE WHEN {pick} THEN {risky} ELSE true END"


def _nested(depth: int) -> str:
    inner = "monthly_spend"
    for _ in range(depth):
        inner = f"abs({inner} - 1)"
    return inner


def _replaces(depth: int) -> str:
    inner = "plan"
    for _ in range(depth):
        inner = f"replace({inner}, 'p', 'pppppppppp')"
    return inner


def _concat_replaces(depth: int) -> str:
    """Each level replaces every 'p' by the value concatenated four times (x4 per level)."""
    inner = "plan"
    for _ in range(depth):
        inner = f"replace({inner}, 'p', concat(plan, plan, plan, plan))"
    return inner


PROBES: tuple[Probe, ...] = (
    # -- casts --------------------------------------------------------------------------------
    Probe("cast-explicit-where", "cast",
          COUNT + _guard("CAST(CAST(birth_date AS VARCHAR) AS INTEGER) = 1"), server=True),
    Probe("cast-colon-where", "cast",
          COUNT + _guard("(birth_date::VARCHAR)::INTEGER = 1")),
    Probe("cast-decimal-narrow", "cast",
          COUNT + _guard("CAST(monthly_spend AS DECIMAL(3,1)) > 0")),
    Probe("cast-tinyint-range", "cast",
          COUNT + _guard("CAST(monthly_spend AS TINYINT) > 0")),
    Probe("cast-text-to-boolean", "cast",
          COUNT + _guard("CAST(region AS BOOLEAN)")),
    Probe("cast-text-to-date", "cast",
          COUNT + _guard("CAST(plan AS DATE) > DATE '2000-01-01'")),
    Probe("cast-implicit-text-vs-number", "cast-implicit",
          COUNT + _guard("CAST(birth_date AS VARCHAR) = 1"), server=True),
    Probe("cast-implicit-between", "cast-implicit",
          COUNT + _guard("CAST(birth_date AS VARCHAR) BETWEEN 1 AND 2"), premise="same"),
    Probe("cast-implicit-text-arith", "cast-implicit",
          COUNT + _guard("CAST(birth_date AS VARCHAR) + 1 > 0"), premise="same"),
    Probe("cast-implicit-in-list", "cast-implicit",
          COUNT + _guard("CAST(birth_date AS VARCHAR) IN (1, 2)")),
    Probe("cast-implicit-date-vs-text", "cast-implicit",
          COUNT + _guard("birth_date > plan"), premise="same"),
    # -- date parsing and formatting --------------------------------------------------------
    Probe("strptime-data-bad-format", "date-parse",
          COUNT + _guard("strptime(CAST(birth_date AS VARCHAR), '%d/%m/%Y') IS NOT NULL"),
          server=True),
    Probe("strptime-valid-on-data", "date-parse",
          COUNT + "strptime(CAST(signup_date AS VARCHAR), '%Y-%m-%d') > "
                  "TIMESTAMP '2018-01-01'", premise="same"),
    Probe("str-to-date-data", "date-parse",
          COUNT + _guard("CAST(strptime(plan, '%Y') AS DATE) IS NOT NULL")),
    Probe("strptime-invalid-literal-format", "date-parse",
          COUNT + _guard("strptime(CAST(birth_date AS VARCHAR), '%Q') IS NOT NULL"),
          premise="same"),
    Probe("strptime-format-from-data", "date-parse",
          COUNT + _guard("strptime('2020', plan) IS NOT NULL"), expect="policy",
          premise="same"),
    Probe("strftime-format-from-data", "strftime",
          COUNT + _guard("strftime(birth_date, plan) = 'x'"), expect="policy",
          premise="same", server=True),
    Probe("strftime-invalid-literal-format", "strftime",
          COUNT + _guard("strftime(birth_date, '%Q') = 'x'"), premise="same"),
    Probe("strftime-then-cast", "strftime",
          COUNT + _guard("CAST(strftime(birth_date, '%Y-%m') AS INTEGER) > 0")),
    Probe("make-date-invalid", "make-date",
          COUNT + _guard("make_date(CAST(monthly_spend AS INTEGER), 2, 30) IS NOT NULL"),
          server=True),
    Probe("make-date-leap-day", "make-date",
          COUNT + _guard("make_date(year(birth_date), 2, 29) IS NOT NULL")),
    Probe("date-part-from-data", "date-parse",
          COUNT + _guard("date_part(plan, birth_date) > 0"), expect="policy"),
    # -- date and interval arithmetic ---------------------------------------------------------
    Probe("date-plus-interval-overflow", "date-arith",
          COUNT + _guard("birth_date + INTERVAL 1000000000 DAY > DATE '2000-01-01'"),
          server=True),
    Probe("interval-from-data-overflow", "date-arith",
          COUNT + _guard("signup_date + INTERVAL (CAST(monthly_spend AS INTEGER) * 100000000) "
                         "YEAR > DATE '2000-01-01'")),
    Probe("date-add-overflow", "date-arith",
          COUNT + _guard("date_add(birth_date, INTERVAL 1000000000 DAY) > DATE '2000-01-01'")),
    # -- regular expressions ------------------------------------------------------------------
    Probe("regexp-pattern-from-data", "regexp",
          COUNT + _guard("regexp_matches('pro(', plan || '(')"), expect="policy", server=True),
    Probe("regexp-literal-pattern", "regexp",
          COUNT + "regexp_matches(plan, '^p[a-z]+$')", premise="same"),
    Probe("regexp-invalid-literal", "regexp",
          COUNT + _guard("regexp_matches(plan, 'pro(')"), premise="same"),
    # -- integer and float overflow -----------------------------------------------------------
    # abs(...) > 0, not ... > 0: DuckDB moves constants across a comparison and never multiplies
    Probe("overflow-int-multiply", "overflow",
          COUNT + _guard("abs(CAST(monthly_spend AS BIGINT) * "
                         "CAST(9223372036854775807 AS BIGINT)) > 0"), server=True),
    Probe("overflow-int-add", "overflow",
          COUNT + _guard("abs(CAST(monthly_spend AS BIGINT) + "
                         "CAST(9223372036854775807 AS BIGINT)) > 0")),
    Probe("overflow-int32-multiply-unguarded", "overflow",
          # 1e7 * 300 overflows INT32 only where the spend is exactly 432.17 (else <= 1.5e9)
          COUNT + "abs(CAST(10000000 / (abs(CAST(monthly_spend * 100 AS INTEGER) - 43217) + 1)"
                  " AS INTEGER) * 300) > 0"),
    Probe("overflow-pow-cast", "overflow",
          COUNT + _guard("CAST(pow(10, monthly_spend) AS BIGINT) > 0")),
    Probe("overflow-exp-cast", "overflow",
          COUNT + _guard("CAST(exp(monthly_spend * 10) AS BIGINT) > 0")),
    Probe("overflow-decimal-multiply", "overflow",
          COUNT + _guard("CAST(monthly_spend AS DECIMAL(18,2)) * "
                         "CAST(10000000000000000 AS DECIMAL(18,0)) > 0")),
    # -- division -----------------------------------------------------------------------------
    Probe("intdiv-by-data-zero", "division",
          COUNT + "CAST(monthly_spend * 100 AS BIGINT) // (CAST(monthly_spend * 100 AS BIGINT)"
                  " - 43217) >= 0", server=True),
    Probe("mod-by-data-zero", "division",
          COUNT + "CAST(monthly_spend * 100 AS BIGINT) % (CAST(monthly_spend * 100 AS BIGINT)"
                  " - 43217) >= 0"),
    Probe("float-div-by-data-zero", "division",
          COUNT + "1 / (monthly_spend - 432.17) > 0", premise="same"),
    Probe("float-div-then-cast", "division",
          COUNT + _guard("CAST(1 / (monthly_spend - 432.17) AS BIGINT) > 0")),
    # -- sqrt, ln, log of a negative ------------------------------------------------------------
    Probe("sqrt-negative-cast", "sqrt-ln-log",
          COUNT + _guard("CAST(sqrt(-monthly_spend) AS INTEGER) > 0"), server=True),
    Probe("ln-zero-cast-unguarded", "sqrt-ln-log",
          COUNT + "CAST(ln(abs(monthly_spend - 432.17)) AS BIGINT) < 100"),
    Probe("log-negative-cast", "sqrt-ln-log",
          COUNT + _guard("CAST(log(-monthly_spend) AS INTEGER) > 0")),
    Probe("sqrt-negative-bare", "sqrt-ln-log",
          COUNT + _guard("sqrt(-monthly_spend) > 0"), premise="same"),
    # -- size arguments and growth (time and memory) ----------------------------------------
    Probe("lpad-length-from-data", "size",
          COUNT + _guard("length(lpad(plan, CAST(monthly_spend AS INTEGER) * 100000, 'x')) > 0"),
          expect="policy", premise="timing", server=True),
    Probe("rpad-huge-literal", "size",
          COUNT + _guard("length(rpad(plan, 50000000, 'x')) > 0"),
          expect="policy", premise="timing"),
    Probe("replace-nested-growth", "size",
          COUNT + _guard(f"length({_replaces(7)}) > 0"), expect="policy", premise="timing"),
    Probe("concat-growth", "size",
          COUNT + _guard(f"length({_concat_replaces(11)}) > 0"), expect="policy",
          premise="timing"),
    Probe("deep-nesting", "nesting",
          COUNT + _guard(f"{_nested(300)} > 0"), expect="policy", premise="same",
          server=True),
    Probe("nesting-near-parser-limit", "nesting",  # sqlglot itself recurses out near 35
          COUNT + _guard(f"{_nested(30)} > 0"), premise="same"),
    # -- substring, left, right with odd arguments -----------------------------------------
    Probe("substring-huge-negative-offset", "substring",
          COUNT + _guard("substring(plan, -9223372036854775807, 5) = 'x'"), server=True),
    Probe("substring-offset-from-data", "substring",
          COUNT + _guard("substring(plan, -CAST(monthly_spend AS BIGINT) * 100000000000, 2) "
                         "= 'x'")),
    Probe("left-right-negative", "substring",
          COUNT + _guard("left(plan, -5) || right(plan, -CAST(monthly_spend AS INTEGER)) = 'x'"),
          premise="same"),
    # -- the same failures in GROUP BY keys ---------------------------------------------------
    Probe("group-key-cast", "group-by",
          "SELECT CASE WHEN " + PICK1 + " THEN CAST(monthly_spend AS DECIMAL(3,1)) ELSE 0 END "
          "AS k, COUNT(*) AS n FROM customers.accounts GROUP BY k", server=True),
    Probe("group-key-intdiv", "group-by",
          "SELECT CAST(monthly_spend * 100 AS BIGINT) // (CAST(monthly_spend * 100 AS BIGINT) "
          "- 43217) AS k, COUNT(*) AS n FROM customers.accounts GROUP BY k"),
    Probe("group-key-birth-date-cast", "group-by",
          "SELECT CASE WHEN birth_date < DATE '1910-01-01' THEN "
          "CAST(CAST(birth_date AS VARCHAR) AS INTEGER) ELSE 0 END AS k, COUNT(*) AS n "
          "FROM customers.accounts GROUP BY k"),
    # -- ... inside aggregate arguments -------------------------------------------------------
    Probe("sum-arg-cast", "aggregate-arg",
          "SELECT SUM(CASE WHEN " + PICK1 + " THEN CAST(monthly_spend AS DECIMAL(3,1)) "
          "ELSE monthly_spend END) AS s FROM customers.accounts", server=True),
    Probe("sum-arg-int-overflow", "aggregate-arg",
          "SELECT SUM(CASE WHEN " + PICK1 + " THEN CAST(monthly_spend AS INTEGER) * 2147483647"
          " ELSE 0 END) AS s FROM customers.accounts"),
    Probe("avg-arg-cast", "aggregate-arg",
          "SELECT region, AVG(CASE WHEN " + PICK1 + " THEN CAST(monthly_spend AS TINYINT) "
          "ELSE monthly_spend END) AS a FROM customers.accounts GROUP BY region"),
    Probe("avg-arg-where-guard", "aggregate-arg",
          "SELECT AVG(monthly_spend) AS a FROM customers.accounts WHERE "
          + _guard("make_date(2001, 2, CAST(monthly_spend AS INTEGER) % 40) IS NOT NULL")),
    # -- joins --------------------------------------------------------------------------------
    Probe("join-where-order-cast", "join",
          JOIN + "WHERE " + _guard("CAST(CAST(o.order_date AS VARCHAR) AS INTEGER) = 1",
                                   "o.amount = 1876.54"),
          products="customers,sales", server=True),
    Probe("join-where-account-cast", "join",
          JOIN + "WHERE " + _guard("CAST(a.monthly_spend AS DECIMAL(3,1)) > 0",
                                   "a.monthly_spend = 432.17 AND a.region = 'west'"),
          products="customers,sales"),
    Probe("join-on-risky", "join",
          JOIN.replace("ON a.customer_id = o.customer_id",
                       "ON a.customer_id = o.customer_id AND " + _guard(
                           "CAST(CAST(o.order_date AS VARCHAR) AS INTEGER) = 1",
                           "o.amount = 1876.54")),
          products="customers,sales", expect="policy"),
    Probe("join-sum-amount-overflow", "join",
          "SELECT SUM(CASE WHEN o.amount = 1876.54 THEN CAST(o.amount AS DECIMAL(3,1)) "
          "ELSE o.amount END) AS s FROM customers.accounts a JOIN sales.orders o "
          "ON a.customer_id = o.customer_id", products="customers,sales"),
    # -- CTEs carry the same expressions ------------------------------------------------------
    Probe("cte-filter-cast", "cte",
          "WITH c AS (SELECT region, monthly_spend, birth_date FROM customers.accounts WHERE "
          + _guard("CAST(CAST(birth_date AS VARCHAR) AS INTEGER) = 1")
          + ") SELECT COUNT(*) AS n FROM c", server=True),
    Probe("cte-projection-cast", "cte",
          "WITH c AS (SELECT region, CASE WHEN " + PICK + " THEN CAST(monthly_spend AS "
          "DECIMAL(3,1)) ELSE 1 END AS v FROM customers.accounts) "
          "SELECT COUNT(*) AS n FROM c WHERE v > 0"),
    # -- constant failures (no data involved): still one outcome on both --------------------
    Probe("constant-cast-literal", "constant",
          COUNT + "CAST('abc' AS INTEGER) = 1", premise="same", server=True),
    Probe("constant-intdiv-zero", "constant",
          COUNT + "1 // 0 = 1", premise="same"),
)

FAMILIES = tuple(dict.fromkeys(p.family for p in PROBES))
