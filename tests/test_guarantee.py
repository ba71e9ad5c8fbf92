"""The guarantee end to end: the charge comes before the engine, every draw is accounted, and
every interval is honest. Real DuckDB and diffprivlib; statistics from many real draws."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from diffprivlib import mechanisms as dpm

import mesh_nb
from mesh_nb import PolicyViolation, QueryFailed
from mesh_nb.errors import QUERY_FAILED
from mesh_nb.query import accountant as accountant_module
from mesh_nb.query.engines import Limits
from mesh_nb.query.release import add_noise
from mesh_nb.query.runner import execute, prepare, run

CHURN = "churn-analysis"


def kinds(mesh, product: str = "customers") -> list[str]:
    return [e.kind for e in mesh.ledger(product).entries()]


# --- charge before the engine ----------------------------------------------------------------

HEAVY = ("SELECT COUNT(*) AS n FROM customers.accounts a "
         + " ".join(f"JOIN customers.accounts a{i} ON a.customer_id = a{i}.customer_id"
                    for i in range(6)))


def test_a_query_past_its_time_limit_is_charged_and_answered_generically(mesh) -> None:
    """A 7-way self-join on the unit runs far longer than a 10 ms deadline: the watchdog stops
    it, the reservation stays, and the answer is the one generic message."""
    s = mesh.bind("customers", purpose=CHURN, analyst="t", limits=Limits(seconds=0.01))
    with pytest.raises(QueryFailed) as err:
        s.query(HEAVY, epsilon=0.2)
    assert str(err.value) == QUERY_FAILED and err.value.epsilon == pytest.approx(0.2)
    assert s.budget().epsilon_spent == pytest.approx(0.2)
    released, failed = (mesh.ledger("customers").entries(kind=k)[-1]
                        for k in ("query.released", "query.failed"))
    assert released.details["release"] == failed.details["release"] == err.value.release_id
    assert failed.details["rule"] == "time-limit" and failed.epsilon == 0
    assert s.engine.con.sql("SELECT 1 AS one").df().one[0] == 1  # the engine is usable again


def test_a_query_past_its_memory_limit_is_charged_the_same_way(mesh) -> None:
    s = mesh.bind("customers", purpose=CHURN, analyst="m", limits=Limits(memory="1MB"))
    with pytest.raises(QueryFailed) as err:
        s.query("SELECT region, MEDIAN(monthly_spend) AS md FROM customers.accounts "
                "GROUP BY region", epsilon=0.3)
    assert str(err.value) == QUERY_FAILED
    assert s.budget().epsilon_spent == pytest.approx(0.3)
    assert mesh.ledger("customers").entries(kind="query.failed")[-1].details["rule"] == \
        "memory-limit"


def test_engine_mistakes_found_on_the_schema_are_refused_uncharged(mesh, session) -> None:
    sql = ("SELECT COUNT(*) AS n FROM customers.accounts "
           "WHERE date_trunc('month', monthly_spend) IS NULL")
    for call in (session.explain, session.query):
        with pytest.raises(PolicyViolation) as err:
            call(sql)
        assert err.value.rule == "engine-rejected" and "date_trunc" in err.value.what
    assert session.budget().epsilon_spent == 0
    assert kinds(mesh) == ["session.bound", "query.rejected", "query.rejected"]


def test_only_the_products_a_query_reads_are_charged(mesh) -> None:
    s = mesh.bind("customers,sales", purpose=CHURN, analyst="two")
    r = s.query("SELECT category, COUNT(*) AS n FROM sales.orders GROUP BY category",
                epsilon=0.25)
    assert r.products == ("sales",)
    spent = {b.product: b.epsilon_spent for b in s.budgets()}
    assert spent == {"customers": 0.0, "sales": pytest.approx(0.25)}
    assert "query.released" not in kinds(mesh, "customers")


def test_spends_round_up_never_down(mesh, session) -> None:
    for _ in range(5):
        session.query("SELECT COUNT(*) AS n FROM customers.accounts WHERE churned",
                      epsilon=4e-7)
        session.query("SELECT COUNT(*) AS n FROM customers.accounts WHERE NOT churned",
                      epsilon=4e-7)
    entries = mesh.ledger("customers").entries(kind="query.released")
    fresh = [e for e in entries if not e.details.get("cached")]
    assert fresh and all(e.epsilon_micro == 1 for e in fresh)  # 0.4 micro-epsilon costs one


def test_seeded_releases_are_not_private_and_never_cached(mesh, session) -> None:
    sql = "SELECT COUNT(*) AS n FROM customers.accounts"
    seeded = run(session, sql, epsilon=0.1, seed=1)
    assert seeded.private is False and not seeded.cached
    again = run(session, sql, epsilon=0.1, seed=1)
    assert not again.cached and again.frame.n[0] == seeded.frame.n[0]  # same seed, same noise
    private = session.query(sql, epsilon=0.1)
    assert private.private and not private.cached  # the seeded ones were never cached
    assert session.query(sql, epsilon=0.1).cached


# --- one accountant --------------------------------------------------------------------------

CORPUS = [
    ("SELECT region, plan, COUNT(*) AS n, AVG(monthly_spend) AS a FROM customers.accounts "
     "GROUP BY region, plan", None, "laplace"),
    ("SELECT MEDIAN(monthly_spend) AS m1, QUANTILE_CONT(monthly_spend, 0.5) AS m2, "
     "QUANTILE_CONT(monthly_spend, 0.9) AS m3 FROM customers.accounts", None, "laplace"),
    ("SELECT plan, VAR_SAMP(monthly_spend) AS v, STDDEV_POP(monthly_spend) AS s, "
     "SUM(monthly_spend) AS t FROM customers.accounts GROUP BY plan", 1e-7, "gaussian"),
    ("SELECT year(signup_date) AS y, COUNT(DISTINCT customer_id) AS u FROM "
     "customers.accounts GROUP BY year(signup_date)", 1e-7, "laplace"),
]


@pytest.mark.parametrize("sql,delta,mechanism", CORPUS, ids=range(len(CORPUS)))
def test_no_draw_escapes_the_accountant(monkeypatch, session, sql, delta, mechanism) -> None:
    """Spy on every diffprivlib mechanism's randomise: each object that drew must have been
    handed out by the release's accountant, and the accountant's composition must fit what
    the ledger charged."""
    drew: list[object] = []
    accountants: list[accountant_module.Accountant] = []
    for cls in (dpm.Laplace, dpm.Geometric, dpm.GaussianAnalytic, dpm.Exponential):
        original = cls.randomise

        def spy(self, *args, __original=original, **kwargs):
            drew.append(self)
            return __original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "randomise", spy)
    init = accountant_module.Accountant.__init__

    def track(self, *args, **kwargs):
        init(self, *args, **kwargs)
        accountants.append(self)

    monkeypatch.setattr(accountant_module.Accountant, "__init__", track)
    r = session.query(sql, epsilon=0.6, delta=delta, mechanism=mechanism)
    (acct,) = accountants
    handed = {id(m) for m in acct.mechanisms}
    assert drew and all(id(m) in handed for m in drew)
    assert acct.epsilon <= r.epsilon * (1 + 1e-9) and acct.delta <= r.delta + 1e-18
    entry = session.product().ledger.entries(kind="query.released")[-1]
    assert entry.epsilon_micro >= math.ceil(acct.epsilon * 1e6 - 1e-6)
    if "MEDIAN" in sql:  # three quantiles: three exponential measurements, each its own share
        draws = [d for d in acct.draws.values() if d.mechanism == "exponential"]
        assert len(draws) == 3 and len({d.measurement for d in draws}) == 3
        assert math.fsum(d.epsilon for d in acct.draws.values()) == pytest.approx(0.6)


def test_count_distinct_unit_sensitivity(session) -> None:
    one = session.explain("SELECT COUNT(DISTINCT customer_id) AS u FROM customers.accounts")
    grouped = session.explain("SELECT plan, COUNT(DISTINCT customer_id) AS u FROM "
                              "customers.accounts GROUP BY plan")
    assert one.plan.measurements[0].sensitivity == 1  # one person adds one unit
    # grouped, one person's k rows may fall in k groups
    assert grouped.plan.measurements[0].sensitivity == grouped.plan.max_contributions == 2


# --- honest intervals ------------------------------------------------------------------------

DRAWS = 1000


def coverage(session, sql: str, truth: dict[str, float], output: str, *, epsilon: float
             ) -> float:
    _, plan = prepare(session, sql, epsilon=epsilon, delta=None, mechanism="laplace")
    exact = execute(session, plan)
    hits = []
    for _ in range(DRAWS):
        frame, acc = add_noise(plan, exact)
        hw = acc[acc.output == output].ci95_half_width.to_numpy()
        for i, key in enumerate(frame[plan.keys[0]] if plan.keys else [None]):
            if key in truth:
                hits.append(abs(frame[output].iloc[i] - truth[key]) <= hw[i])
    return float(np.mean(hits))


@pytest.fixture
def unique_session(demo_dir):
    """One row per customer, so the exact bounded values are the plain ones (no sampling)."""
    path = demo_dir / "customers" / "accounts.parquet"
    frame = pd.read_parquet(path).drop_duplicates("customer_id")
    frame.to_parquet(path)
    return mesh_nb.open_mesh(demo_dir).bind("customers", purpose=CHURN, analyst="u"), frame


@pytest.mark.parametrize("func,ddof", [("VAR_SAMP", 1), ("VAR_POP", 0), ("STDDEV_SAMP", 1)])
def test_variance_intervals_cover_at_least_93_percent(unique_session, func, ddof) -> None:
    session, frame = unique_session
    spend = frame.monthly_spend.clip(0, 500)
    small = frame.plan.isin(["pro"])  # the smallest group: where the count's noise matters
    truth = {plan: (g.var(ddof=ddof) if func.startswith("VAR") else g.std(ddof=ddof))
             for plan, g in spend[small].groupby(frame.plan[small])}
    rate = coverage(session, f"SELECT plan, {func}(monthly_spend) AS v FROM customers.accounts "
                    "WHERE plan = 'pro' GROUP BY plan", truth, "v", epsilon=0.05)
    # 1,000 draws: a true rate of 95% falls below 93% with probability < 0.2%
    assert rate >= 0.93, rate


def test_quantile_intervals_are_in_value_units_and_cover(unique_session) -> None:
    session, frame = unique_session
    spend = frame.monthly_spend.clip(0, 500)
    truth = {None: float(np.quantile(spend, 0.5))}
    rate = coverage(session, "SELECT MEDIAN(monthly_spend) AS md FROM customers.accounts",
                    truth, "md", epsilon=0.05)
    assert rate >= 0.93, rate
    r = session.query("SELECT MEDIAN(monthly_spend) AS md FROM customers.accounts",
                      epsilon=0.5)
    hw = r.accuracy.ci95_half_width.iloc[0]
    assert 0 < hw < 100  # dollars, not ranks: 40k people pin the median down


# --- values outside the declared categories ---------------------------------------------------

def test_values_outside_the_declared_categories_form_the_other_group(demo_dir) -> None:
    path = demo_dir / "customers" / "accounts.parquet"
    frame = pd.read_parquet(path).drop_duplicates("customer_id")  # no bounding: exact counts
    frame.loc[frame.index[:3000], "region"] = "atlantis"  # not a declared region
    frame.loc[frame.index[3000:4000], "region"] = None
    frame.to_parquet(path)
    s = mesh_nb.open_mesh(demo_dir).bind("customers", purpose=CHURN, analyst="o")
    r = s.query("SELECT region, COUNT(*) AS n FROM customers.accounts GROUP BY region",
                epsilon=1.0)
    other = r.frame[r.frame.region.isna()]
    assert len(other) == 1 and abs(int(other.n.iloc[0]) - 4000) < 60  # noise of scale 2
    assert "atlantis" not in r.frame.region.astype(str).tolist()
    assert r.frame.n.sum() == pytest.approx(len(frame), abs=200)  # nothing vanished
    assert any("outside the declared categories" in n for n in r.notes)
