"""Differentially private queries end to end: real DuckDB, real diffprivlib, real SQLite ledger.

Randomized outputs are tested statistically: many draws from the real mechanisms, tolerances
from the number of draws, never a hard-coded output.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import mesh_nb
from mesh_nb import BudgetExceeded, MeshError, PolicyViolation
from mesh_nb.query.release import add_noise
from mesh_nb.query.runner import execute, prepare

GROUPED = ("SELECT region, plan, COUNT(*) AS n, AVG(monthly_spend) AS spend "
           "FROM customers.accounts WHERE churned GROUP BY region, plan")


def test_grouped_release_is_complete_and_recorded(mesh, session) -> None:
    r = session.query(GROUPED, epsilon=0.5)
    assert list(r.frame.columns) == ["region", "plan", "n", "spend"]
    # declared categories are released complete: 5 regions x 3 plans, then the other group
    assert len(r.frame) == 16 and set(r.frame.region[:15]) == {"north", "south", "east",
                                                               "west", "central"}
    assert r.frame.iloc[15][["region", "plan"]].isna().all()
    assert (r.frame.n >= 0).all() and r.frame.n.dtype.kind == "i"
    assert r.frame.spend.between(0, 500).all()
    assert r.epsilon == 0.5 and r.delta == 0.0
    assert set(r.accuracy.output) == {"n", "spend"}
    (entry,) = mesh.ledger("customers").entries(kind="query.released")
    assert entry.epsilon == 0.5 and entry.session == session.id
    assert "customers.accounts.monthly_spend" in entry.details["columns"]
    assert session.budget().epsilon_remaining == pytest.approx(2.5)


def test_empty_declared_groups_are_released(session) -> None:
    r = session.query("SELECT region, COUNT(*) AS n FROM customers.accounts "
                      "WHERE region = 'north' GROUP BY region", epsilon=0.5)
    # the other four regions are released too (noise around zero), and the other group
    assert len(r.frame) == 6 and pd.isna(r.frame.region.iloc[5])
    others = r.frame[r.frame.region != "north"].n
    assert (others < 60).all()  # zero plus geometric noise of scale 2/0.5: P(>60) ~ 1e-6


def test_literals_never_reach_the_ledger(mesh, session) -> None:
    session.query("SELECT COUNT(*) AS n FROM customers.accounts WHERE plan = 'pro' "
                  "AND monthly_spend > 123.45", epsilon=0.1)
    text = str([e.details for e in mesh.ledger("customers").entries()])
    assert "pro'" not in text and "123.45" not in text and "?" in text


def test_repeat_costs_nothing_and_returns_the_same_answer(mesh, session) -> None:
    first = session.query(GROUPED, epsilon=0.5)
    again = session.query("select region, plan, count(*) as n, avg(monthly_spend) as spend "
                          "from customers.accounts  where churned group by region, plan",
                          epsilon=0.5)
    assert again.cached and again.epsilon == 0
    pd.testing.assert_frame_equal(first.frame, again.frame)
    assert session.budget().epsilon_remaining == pytest.approx(2.5)
    other = mesh.bind("customers", purpose="churn-analysis", analyst="bob")
    assert other.query(GROUPED, epsilon=0.5).cached  # same purpose: the same answer


def test_rejected_query_spends_nothing_and_is_recorded(mesh, session) -> None:
    with pytest.raises(PolicyViolation) as err:
        session.query("SELECT full_name, COUNT(*) FROM customers.accounts GROUP BY full_name")
    entries = mesh.ledger("customers").entries(kind="query.rejected")
    assert len(entries) == 1 and entries[0].details["rule"] == err.value.rule
    assert session.budget().epsilon_remaining == 3.0


@pytest.mark.parametrize("item", ["-1", "2.5", "'x'", "NULL"])
def test_an_order_by_the_engine_refuses_is_refused_before_the_charge(session, item) -> None:
    """DuckDB refuses these only when post-processing the release, after the charge."""
    with pytest.raises(PolicyViolation) as err:
        session.query(f"SELECT region, COUNT(*) AS n FROM customers.accounts GROUP BY region "
                      f"ORDER BY {item}", epsilon=0.5)
    assert err.value.rule == "order-by-not-output"
    assert session.budget().epsilon_remaining == 3.0


def test_epsilon_above_the_per_query_cap(mesh, session) -> None:
    with pytest.raises(PolicyViolation, match="above the 1 one query may take") as err:
        session.query(GROUPED, epsilon=1.5)
    assert err.value.rule == "epsilon-too-large"
    assert session.budget().epsilon_remaining == 3.0


def test_budget_exhaustion(mesh, session) -> None:
    for i in range(3):
        session.query(f"SELECT COUNT(*) AS n FROM customers.accounts WHERE monthly_spend > {i}",
                      epsilon=1.0)
    with pytest.raises(BudgetExceeded, match="0 left"):
        session.query("SELECT COUNT(*) AS n FROM customers.accounts WHERE churned", epsilon=0.1)
    assert mesh.ledger("customers").entries(kind="budget.exhausted")
    assert session.budget().epsilon_spent == pytest.approx(3.0)
    mesh.ledger("customers").verify(full=True)


def test_explain_spends_nothing(mesh, session) -> None:
    e = session.explain(GROUPED, epsilon=0.5)
    assert "epsilon split equally" in str(e) and "ROW_NUMBER()" in e.plan.sql
    assert e.table.epsilon.sum() == pytest.approx(0.5)
    assert len(mesh.ledger("customers").entries(kind="query.released")) == 0
    assert session.budget().epsilon_remaining == 3.0


def test_undeclared_keys_are_thresholded_and_spend_delta(session) -> None:
    r = session.query("SELECT date_trunc('year', signup_date) AS y, COUNT(*) AS n "
                      "FROM customers.accounts GROUP BY 1 ORDER BY y", epsilon=0.5)
    assert r.delta > 0 and any("threshold" in n for n in r.notes)
    assert list(r.frame.y) == sorted(r.frame.y) and len(r.frame) == 8


def test_having_order_limit_are_post_processing(session) -> None:
    r = session.query("SELECT plan, COUNT(*) AS n FROM customers.accounts GROUP BY plan "
                      "HAVING COUNT(*) > 1000 ORDER BY n DESC LIMIT 2", epsilon=0.3)
    assert len(r.frame) == 2 and r.frame.n.iloc[0] >= r.frame.n.iloc[1]


def test_cross_product_join(mesh) -> None:
    s = mesh.bind("customers,sales", purpose="churn-analysis", analyst="carol")
    r = s.query("SELECT o.category, SUM(o.amount) AS total FROM sales.orders o "
                "JOIN customers.accounts a ON o.customer_id = a.customer_id "
                "WHERE a.churned GROUP BY o.category", epsilon=0.5)
    assert len(r.frame) == 7  # six declared categories and the other group
    for name in ("customers", "sales"):
        (entry,) = mesh.ledger(name).entries(kind="query.released")
        assert entry.epsilon == 0.5


def test_row_purpose_refuses_aggregate_path(mesh) -> None:
    s = mesh.bind("sales", purpose="fraud-review", analyst="eve", acknowledge=True)
    with pytest.raises(MeshError, match="grants pseudonymized-rows"):
        s.query("SELECT COUNT(*) FROM sales.orders")


def test_ended_session_refuses(session) -> None:
    session.end()
    with pytest.raises(MeshError, match="has ended"):
        session.query(GROUPED)


# --- statistics: the released noise has the variance the reported scale implies ---------

DRAWS = 300  # calls of the real release stage; each gives one draw per group


def noise_draws(session, sql, *, epsilon=0.5, delta=None, mechanism="laplace"):
    _, plan = prepare(session, sql, epsilon=epsilon, delta=delta, mechanism=mechanism)
    exact = execute(session, plan)
    frames = [declared(add_noise(plan, exact)[0], plan) for _ in range(DRAWS)]
    return plan, exact, frames


def declared(frame: pd.DataFrame, plan) -> pd.DataFrame:
    """The released groups of declared categories (the last, other group dropped)."""
    return frame.dropna(subset=list(plan.keys)) if plan.keys else frame


def within(sample_var: float, expected: float, n: int, kurtosis: float) -> bool:
    """Sample variance within 5 standard errors; SE of a variance is sqrt((kurt - 1)/n)."""
    return abs(sample_var / expected - 1) < 5 * math.sqrt((kurtosis - 1) / n)


def test_count_noise_matches_geometric_variance(session) -> None:
    plan, exact, frames = noise_draws(session, "SELECT region, plan, COUNT(*) AS n FROM "
                                      "customers.accounts GROUP BY region, plan", epsilon=0.4)
    truth = exact.set_index(["region", "plan"]).m0
    errors = np.concatenate([(f.set_index(["region", "plan"]).n - truth).to_numpy()
                             for f in frames])
    alpha = math.exp(-plan.measurements[0].epsilon / plan.max_contributions)
    expected = 2 * alpha / (1 - alpha) ** 2  # variance of the two-sided geometric
    assert abs(errors.mean()) < 5 * math.sqrt(expected / errors.size)
    assert within(errors.var(), expected, errors.size, kurtosis=6)


@pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
def test_sum_noise_matches_reported_scale(session, mechanism) -> None:
    plan, exact, frames = noise_draws(session, "SELECT plan, SUM(monthly_spend) AS total FROM "
                                      "customers.accounts GROUP BY plan", epsilon=0.6,
                                      delta=1e-6, mechanism=mechanism)
    (m,) = plan.measurements
    truth = exact.set_index("plan").m0
    errors = np.concatenate([(f.set_index("plan").total - truth).to_numpy() for f in frames])
    from mesh_nb.query.release import noise_scale

    scale = noise_scale(m)
    expected = 2 * scale ** 2 if mechanism == "laplace" else scale ** 2
    assert m.mechanism == mechanism and m.sensitivity == 2 * 500
    assert within(errors.var(), expected, errors.size, kurtosis=6 if mechanism == "laplace"
                  else 3)


def test_avg_interval_covers(session) -> None:
    plan, exact, frames = noise_draws(session, "SELECT region, AVG(monthly_spend) AS a FROM "
                                      "customers.accounts GROUP BY region", epsilon=0.3)
    sum_part, count_part = plan.outputs[0].parts
    by_region = exact.set_index("region")
    truth = 250 + by_region[sum_part] / by_region[count_part]
    hits = []
    for _ in range(DRAWS):
        released, accuracy = add_noise(plan, exact)
        hw = accuracy[accuracy.output == "a"].dropna(subset=["region"]).set_index(
            "region").ci95_half_width
        error = abs(declared(released, plan).set_index("region").a - truth)
        hits.append((error <= hw.reindex(error.index)).to_numpy())
    hits = np.concatenate(hits)
    assert hits.mean() >= 0.95  # a 95% interval from a union bound over its parts


def test_median_by_exponential_mechanism_is_close(session) -> None:
    plan, exact, frames = noise_draws(session, "SELECT MEDIAN(monthly_spend) AS med FROM "
                                      "customers.accounts", epsilon=0.5)
    released = np.array([f.med.iloc[0] for f in frames])
    assert plan.measurements[0].mechanism == "exponential"
    hist = exact.m0.iloc[0]
    width = 500 / 1000
    cum = np.cumsum([hist.get(i, 0) for i in range(1000)])
    true_median = (np.searchsorted(cum, cum[-1] / 2) + 0.5) * width
    assert np.median(np.abs(released - true_median)) < 2.0  # 40k units, eps 0.5: sharp


# --- contribution bounding ---------------------------------------------------------------

def test_one_unit_with_1000_rows_moves_aggregates_by_at_most_k(demo_dir, tmp_path) -> None:
    sql = "SELECT COUNT(*) AS n, SUM(monthly_spend) AS total FROM customers.accounts"
    path = demo_dir / "customers" / "accounts.parquet"
    # one row per other unit, so that their (random) bounding cannot move the totals
    df = pd.read_parquet(path).drop_duplicates("customer_id")
    df.to_parquet(path)
    base = mesh_nb.open_mesh(demo_dir).bind("customers", purpose="churn-analysis",
                                            analyst="a")
    _, plan = prepare(base, sql, epsilon=0.5, delta=None, mechanism="laplace")
    before = execute(base, plan)
    heavy = pd.concat([df.iloc[[0]]] * 1000, ignore_index=True)
    heavy["customer_id"] = "C9999999"
    heavy["monthly_spend"] = 10_000.0  # far above the bound: clamped to 500
    pd.concat([df, heavy], ignore_index=True).to_parquet(path)
    after = execute(base, plan)
    k = 2
    count, total = (o.parts[0] for o in plan.outputs)
    assert after[count].iloc[0] - before[count].iloc[0] == k
    assert after[total].iloc[0] - before[total].iloc[0] == pytest.approx(k * 500)


def declare_unit_unique(demo_dir, dedupe: bool) -> None:
    folder = demo_dir / "customers"
    if dedupe:
        path = folder / "accounts.parquet"
        pd.read_parquet(path).drop_duplicates("customer_id").to_parquet(path)
    contract = folder / "datacontract.yaml"
    text = contract.read_text()
    marker = "    logicalTypeOptions: {pattern: '^C[0-9]{7}$'}\n    required: true\n"
    assert marker in text
    contract.write_text(text.replace(marker, marker + "    unique: true\n", 1))


def test_declared_unique_unit_skips_bounding(demo_dir) -> None:
    declare_unit_unique(demo_dir, dedupe=True)
    s = mesh_nb.open_mesh(demo_dir).bind("customers", purpose="churn-analysis", analyst="u")
    e = s.explain("SELECT plan, COUNT(*) AS n FROM customers.accounts GROUP BY plan",
                  epsilon=0.5)
    assert "ROW_NUMBER" not in e.plan.sql and e.plan.max_contributions == 1
    assert any("each unit counts at most once" in n for n in e.plan.notes)
    r = s.query("SELECT plan, COUNT(*) AS n FROM customers.accounts GROUP BY plan", epsilon=0.5)
    assert r.frame.n.sum() == pytest.approx(41_234, abs=100)


def test_a_declared_unique_unit_that_the_data_breaks_is_bounded_after_the_charge(
        demo_dir, tmp_path) -> None:
    """The plan rests on the declaration (explain reads no data, so it cannot tell the data
    apart from its deduplicated neighbour); the query, once charged, finds the duplicates and
    keeps at most one row per unit: the count is of units, not rows, and the noise holds."""
    import shutil

    twin = tmp_path / "twin"
    shutil.copytree(demo_dir, twin)
    declare_unit_unique(demo_dir, dedupe=False)
    declare_unit_unique(twin, dedupe=True)
    sql = "SELECT COUNT(*) AS n FROM customers.accounts"

    def explained(root):
        with mesh_nb.open_mesh(root).bind("customers", purpose="churn-analysis",
                                          analyst="u") as s:
            e = s.explain(sql, epsilon=0.5)
            return e.plan.sql, e.plan.notes, e.plan.max_contributions

    assert explained(demo_dir) == explained(twin)
    s = mesh_nb.open_mesh(demo_dir).bind("customers", purpose="churn-analysis", analyst="u")
    r = s.query(sql, epsilon=0.5)
    assert r.frame.n[0] == pytest.approx(41_234, abs=100)  # 50,000 rows, 41,234 people
    assert s.budget().epsilon_remaining == pytest.approx(2.5)
    assert not s.engine.unit_unique("customers", "accounts")


COUNT_ALL = "SELECT COUNT(*) AS n FROM customers.accounts"


def test_the_uniqueness_check_is_recorded_once_per_data_version(demo_dir) -> None:
    """A fresh session (a new kernel) answers from the owner's signed record, re-checks when
    the data changes, and ignores a record someone edited; data that breaks the declaration
    is bounded to one row per unit."""
    import json
    import os

    from mesh_nb.query.checks import CHECKS_FILE, DataChecks, fingerprint

    declare_unit_unique(demo_dir, dedupe=True)
    product = mesh_nb.open_mesh(demo_dir).product("customers")
    data = product.contract.table("accounts").data_path
    record, check = DataChecks(product.owner_dir), "unit-unique:accounts:customer_id"

    epsilons = iter([0.1, 0.11, 0.12, 0.13])  # a new one each time: never the release cache

    def fresh_query() -> tuple[int, bool]:
        """A new kernel's released count, and what its engine holds of uniqueness."""
        with mesh_nb.open_mesh(demo_dir).bind("customers", purpose="churn-analysis",
                                              analyst="u") as s:
            n = int(s.query(COUNT_ALL, epsilon=next(epsilons)).frame.n[0])
            return n, s.engine.unit_unique("customers", "accounts")

    assert fresh_query()[1] is True
    assert record.get(check, fingerprint(data)) is True
    text = (product.owner_dir / CHECKS_FILE).read_text()
    assert set(json.loads(text)["checks"]) == {check} and "C0" not in text  # no data value
    # the record is what a new session reads: a signed "breaks" is believed without a scan
    record.put(check, fingerprint(data), False)
    assert fresh_query()[1] is False
    # an edited record is not the owner's: ignored, the data is checked again
    doc = json.loads((product.owner_dir / CHECKS_FILE).read_text())
    doc["checks"][check][1] = True
    (product.owner_dir / CHECKS_FILE).write_text(json.dumps(doc))
    assert record.get(check, fingerprint(data)) is None
    assert fresh_query()[1] is True
    assert record.get(check, fingerprint(data)) is True
    # new data: a new version, checked again (every person twice now: still one row each)
    pd.concat([pd.read_parquet(data)] * 2).to_parquet(data)
    os.utime(data, ns=(data.stat().st_atime_ns, data.stat().st_mtime_ns + 10**9))
    n, unique = fresh_query()
    assert unique is False and n == pytest.approx(41_234, abs=200)
    assert record.get(check, fingerprint(data)) is False


def test_engine_sandbox_is_the_second_wall(demo_dir, session) -> None:
    """Even SQL that slipped past the checker cannot read other files or unlock the engine."""
    import duckdb

    con = session.engine.con
    assert con.execute("SELECT COUNT(*) FROM customers.accounts").fetchall()[0][0] == 50_000
    secret = session.mesh.product("customers").owner_dir / "ed25519.key"
    session.query("SELECT COUNT(*) AS n FROM customers.accounts", epsilon=0.1)  # key exists now
    assert secret.exists()
    for sql in (f"SELECT * FROM read_csv('{secret}')",
                f"SELECT * FROM read_parquet('{demo_dir / 'sales' / 'orders.parquet'}')",
                "SET enable_external_access = true",
                "INSTALL httpfs",
                f"ATTACH '{demo_dir / 'x.db'}'"):
        with pytest.raises(duckdb.Error):
            con.execute(sql)


JOIN = ("SELECT o.category, COUNT(*) AS n FROM sales.orders o JOIN customers.accounts a "
        "ON o.customer_id = a.customer_id GROUP BY o.category")


def test_join_on_the_unit_bounds_one_unit(mesh) -> None:
    s = mesh.bind("customers,sales", purpose="churn-analysis", analyst="j")
    assert s.explain(JOIN, epsilon=0.5).plan.sql.count("ROW_NUMBER()") == 1


def test_join_on_a_key_other_than_the_unit_is_refused(demo_dir) -> None:
    """Bounding cannot hold through a join that does not link the persons: one person's rows
    could change which rows many others keep (rule join-unit), so it is refused, uncharged."""
    contract = demo_dir / "sales" / "datacontract.yaml"
    text = contract.read_text()
    assert "privacyUnit: customer_id" in text
    contract.write_text(text.replace("privacyUnit: customer_id", "privacyUnit: order_id"))
    m = mesh_nb.open_mesh(demo_dir)
    s = m.bind("customers,sales", purpose="churn-analysis", analyst="j")
    with pytest.raises(PolicyViolation) as err:
        s.query(JOIN, epsilon=0.5)
    assert err.value.rule == "join-unit"
    assert all(b.epsilon_spent == 0 for b in s.budgets())
    assert [e.details["rule"] for e in m.ledger("sales").entries(kind="query.rejected")] == \
        ["join-unit"]


def test_clamping_keeps_missing_values_missing() -> None:
    """GREATEST/LEAST skip NULLs; a NULL must not enter a sum or average as the lower bound."""
    import duckdb
    from sqlglot import exp

    from mesh_nb.query.plan import clamp

    x = exp.column("x")
    rows = duckdb.sql(f"SELECT {clamp(x, 5.0, 10.0)}, {clamp(x, 5.0, 10.0, 7.5)} FROM "
                      "(VALUES (NULL), (1), (20), (7)) t(x)").fetchall()
    assert rows == [(None, None), (5.0, -2.5), (10.0, 2.5), (7.0, -0.5)]


def test_required_columns_skip_the_null_guard(session) -> None:
    """`monthly_spend` is declared required: its clamp has no CASE, and its count is COUNT(*)."""
    plan = session.explain("SELECT AVG(monthly_spend) AS a FROM customers.accounts").plan
    assert "IS NULL" not in plan.sql and "LEAST(GREATEST(" in plan.sql
    assert [m.kind for m in plan.measurements] == ["sum", "count"]
    assert plan.measurements[1].value is None  # COUNT(*), not COUNT(monthly_spend)


def test_sums_over_a_column_with_missing_values_are_exact(demo_root, tmp_path) -> None:
    """The engine sums the plain clamp (a NULL becomes the lower bound there); the primitives
    take those out and center exactly, so SUM and AVG see only present values."""
    from dataclasses import replace

    import numpy as np
    import pandas as pd

    from mesh_nb.demo import MARKETING, contract_yaml
    from mesh_nb.query import runner

    lo, hi = 10.0, 90.0
    spec = replace(MARKETING, columns=tuple(replace(c, bounds=(lo, hi)) if c.name == "score"
                                            else c for c in MARKETING.columns))
    frame = pd.read_parquet(demo_root / "marketing" / spec.file)
    frame["score"] = frame["score"].astype("Int64").mask(np.arange(len(frame)) % 3 == 0)
    folder = tmp_path / "mesh" / "marketing"
    folder.mkdir(parents=True)
    frame.to_parquet(folder / spec.file, index=False)
    (folder / "datacontract.yaml").write_text(contract_yaml(spec), encoding="utf-8")
    session = mesh_nb.open_mesh(tmp_path / "mesh").bind("marketing", purpose="campaign-stats",
                                                        analyst="alice")
    _, plan = runner.prepare(session, "SELECT SUM(score) AS s, AVG(score) AS a FROM "
                             "marketing.leads", epsilon=0.5, delta=None, mechanism="laplace")
    exact = runner.execute(session, plan)
    present = frame["score"].dropna().astype(float).clip(lo, hi)
    by_center = {m.center: exact[m.name].iloc[0] for m in plan.measurements if m.kind == "sum"}
    assert by_center[0.0] == pytest.approx(present.sum())
    assert by_center[(lo + hi) / 2] == pytest.approx((present - (lo + hi) / 2).sum())
    assert sorted(exact.columns) == sorted(m.name for m in plan.measurements)  # helpers dropped
    assert frame["score"].isna().sum() > 100  # the NULLs were there to be excluded
