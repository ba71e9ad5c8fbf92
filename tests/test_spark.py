"""The Spark engine against the DuckDB one: real local Spark, real Spark Connect, no mocks.

Where contribution bounding is a no-op (plans for one row per unit) both engines must return
the same exact primitives; where bounding is random, the bounded primitives and the noisy
releases made from them must agree in distribution (two-sample tests, no hard-coded output).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sparkcheck import spark_missing

if (_reason := spark_missing()) is not None:
    if os.environ.get("CI"):
        pytest.fail(f"CI runs the Spark tests, but {_reason}", pytrace=False)
    pytest.skip(_reason, allow_module_level=True)

import sqlglot  # noqa: E402
from sqlglot import exp  # noqa: E402

import mesh_nb  # noqa: E402
from mesh_nb import MeshError  # noqa: E402
from mesh_nb.query import policy  # noqa: E402
from mesh_nb.query.engines import Engine, QueryEngine, open_engine  # noqa: E402
from mesh_nb.query.plan import Plan, build_plan, histogram_sources  # noqa: E402
from mesh_nb.query.release import add_noise  # noqa: E402
from mesh_nb.query.spark import SparkEngine, spark_session, stop_spark, to_spark  # noqa: E402
from ports import free_port  # noqa: E402

CHURN = "churn-analysis"
JOIN = "FROM customers.accounts a JOIN sales.orders o ON a.customer_id = o.customer_id"

CORPUS = [
    "SELECT COUNT(*) AS n FROM customers.accounts",
    "SELECT region, plan, COUNT(*) AS n, AVG(monthly_spend) AS spend FROM customers.accounts "
    "WHERE churned GROUP BY region, plan",
    "SELECT churned, SUM(monthly_spend) AS s, VAR_POP(monthly_spend) AS v, "
    "STDDEV(monthly_spend) AS sd FROM customers.accounts GROUP BY churned",
    "SELECT region, MEDIAN(monthly_spend) AS med, QUANTILE_CONT(monthly_spend, 0.9) AS p90 "
    "FROM customers.accounts GROUP BY region",
    "SELECT MEDIAN(amount) AS med FROM sales.orders",
    "SELECT CASE WHEN monthly_spend < 50 THEN 'low' WHEN monthly_spend < 200 THEN 'mid' "
    "ELSE 'high' END AS tier, COUNT(*) AS n, COUNT(DISTINCT customer_id) AS people "
    "FROM customers.accounts GROUP BY tier",
    "SELECT date_trunc('month', order_date) AS month, COUNT(*) AS n, SUM(amount) AS s "
    "FROM sales.orders WHERE order_date >= DATE '2024-01-01' GROUP BY month",
    "SELECT year(order_date) AS y, AVG(amount) AS a FROM sales.orders "
    "WHERE lower(category) = 'books' OR amount > 100 GROUP BY 1",
    "SELECT COUNT(*) AS n FROM customers.accounts WHERE year(birth_date) < 1980 AND "
    "date_diff('day', signup_date, DATE '2025-12-31') > 30 AND "
    "COALESCE(region, 'north') <> 'west'",
    f"SELECT o.category, COUNT(*) AS n, SUM(o.amount) AS total {JOIN} WHERE a.churned "
    "GROUP BY o.category",
]


@pytest.fixture(scope="module")
def mesh(demo_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """The demo mesh with ledgers of this module's own."""
    target = tmp_path_factory.mktemp("spark") / "mesh"
    shutil.copytree(demo_root, target, ignore=shutil.ignore_patterns(".mesh_nb", ".owner"))
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MESH_NB_OWNER_HOME", raising=False)
        yield mesh_nb.open_mesh(target)


def _tables(mesh):
    return [(p.name, t.name, t, p.contract.privacy_unit)
            for p in mesh.products.values() for t in p.contract.tables]


@pytest.fixture(scope="module")
def engines(mesh):
    """(DuckDB, Spark) engines over the same tables; one shared local Spark session."""
    duck, spark = Engine(_tables(mesh)), SparkEngine(_tables(mesh))
    yield duck, spark
    duck.close()
    spark.close()


def plan_of(mesh, sql: str, *, unbounded: bool, delta: float = 1e-7) -> Plan:
    contracts = {p.name: p.contract for p in mesh.products.values()}
    checked = policy.check(sql, contracts, CHURN)
    return build_plan(checked, contracts, epsilon=0.5, delta=delta,
                      one_row_per_unit=unbounded)


def _sorted(frame: pd.DataFrame, keys: tuple[str, ...]) -> pd.DataFrame:
    return frame.sort_values(list(keys), kind="stable").reset_index(drop=True) if keys else frame


def assert_same_primitives(plan: Plan, duck: pd.DataFrame, spark: pd.DataFrame) -> None:
    assert list(spark.columns) == list(duck.columns)
    assert len(spark) == len(duck)
    duck, spark = _sorted(duck, plan.keys), _sorted(spark, plan.keys)
    for k in plan.keys:
        assert spark[k].dtype.kind == duck[k].dtype.kind, k  # year(): BIGINT vs INT
        pd.testing.assert_series_equal(spark[k], duck[k], check_dtype=False)
    shared = histogram_sources(plan.measurements)
    for m in plan.measurements:
        if shared.get(m.name, m.name) != m.name:  # the engine computes one shared histogram
            assert m.name not in duck and m.name not in spark
            continue
        a, b = duck[m.name], spark[m.name]
        if m.kind == "hist":
            assert all(isinstance(x, dict) for x in b)
            assert [{int(k): int(v) for k, v in x.items()} for x in b] == \
                   [{int(k): int(v) for k, v in x.items()} for x in a]
        elif m.kind == "sum":
            assert b.dtype == a.dtype == np.float64
            np.testing.assert_allclose(b.to_numpy(), a.to_numpy(), rtol=1e-6, atol=1e-6)
        else:
            assert b.dtype == a.dtype == np.int64 and (b.to_numpy() == a.to_numpy()).all()


@pytest.mark.parametrize("sql", CORPUS, ids=range(len(CORPUS)))
def test_exact_primitives_agree_without_bounding(mesh, engines, sql: str) -> None:
    duck, spark = engines
    plan = plan_of(mesh, sql, unbounded=True)
    assert "RANDOM()" not in plan.sql
    assert_same_primitives(plan, duck.execute(plan.query), spark.execute(plan.query))


def test_histograms_come_from_the_same_bounded_rows(mesh, engines) -> None:
    """Spark computes the randomly bounded rows once: per group, the histogram of a required
    column holds exactly as many rows as the count (a second draw would disagree)."""
    _, spark = engines
    plan = plan_of(mesh, f"SELECT o.category, COUNT(*) AS n, MEDIAN(o.amount) AS med {JOIN} "
                   "GROUP BY o.category", unbounded=False)
    count = next(m.name for m in plan.measurements if m.kind == "count")
    hist = next(m.name for m in plan.measurements if m.kind == "hist")
    frame = spark.execute(plan.query)
    assert len(frame) == 6
    assert [sum(h.values()) for h in frame[hist]] == list(frame[count])


def test_bounded_counts_agree_in_distribution(mesh, engines) -> None:
    """k = 10 orders per customer, chosen at random: per category the bounded counts vary
    between runs, their total does not; noisy releases from both engines agree too."""
    duck, spark = engines
    plan = plan_of(mesh, "SELECT category, COUNT(*) AS n FROM sales.orders GROUP BY category",
                   unbounded=False)
    runs = 10
    m = plan.measurements[0].name

    def draws(engine: QueryEngine) -> pd.DataFrame:
        frames = [_sorted(engine.execute(plan.query), plan.keys).set_index("category")[m]
                  for _ in range(runs)]
        return pd.concat(frames, axis=1).T.reset_index(drop=True)

    d, s = draws(duck), draws(spark)
    assert list(d.columns) == list(s.columns)
    assert (d.sum(axis=1) == d.sum(axis=1)[0]).all()  # sum over units of min(rows, k)
    assert (s.sum(axis=1) == d.sum(axis=1)[0]).all()
    assert (d.std() > 0).any() and (s.std() > 0).any(), "bounding should be random here"
    alpha = 0.001 / len(d.columns)  # Bonferroni over the categories
    for c in d.columns:
        assert stats.ttest_ind(d[c], s[c], equal_var=False).pvalue > alpha, c
    # one noisy release per exact run (independent draws): same distribution per category
    rel = {name: pd.concat([add_noise(plan, pd.DataFrame({"category": row.index,
                                                          m: row.to_numpy()}))[0]
                            .set_index("category")["n"] for _, row in frames.iterrows()],
                           axis=1).T
           for name, frames in (("duck", d), ("spark", s))}
    for c in d.columns:
        assert stats.ks_2samp(rel["duck"][c], rel["spark"][c]).pvalue > alpha, c


def test_bound_session_releases_through_spark(mesh) -> None:
    s = mesh.bind(["customers", "sales"], purpose=CHURN, analyst="spark-user", engine="spark")
    assert isinstance(s.engine, QueryEngine) and s.engine.kind == "spark"
    r = s.query("SELECT region, COUNT(*) AS n, MEDIAN(monthly_spend) AS med "
                "FROM customers.accounts GROUP BY region", epsilon=0.5)
    assert len(r.frame) == 6 and r.frame.n.dtype.kind == "i"  # 5 regions and the other group
    assert r.frame.med.between(0, 500).all()
    t = s.query("SELECT date_trunc('month', order_date) AS month, COUNT(*) AS n "
                "FROM sales.orders GROUP BY month", epsilon=0.5, delta=1e-7)
    assert len(t.frame) > 0 and (t.frame.n > 0).all()
    (entry, *_) = mesh.ledger("customers").entries(kind="query.released")
    assert entry.session == s.id
    s.end()


def test_mesh_bind_magic_chooses_spark(mesh) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "mesh_nb")
    try:
        ip.run_line_magic("mesh_bind", f"customers --purpose {CHURN} --as magic-user "
                                       f"--engine spark --mesh {mesh.root}")
        ip.run_cell_magic("mesh_query", "--epsilon 0.5 --save r",
                          "SELECT plan, COUNT(*) AS n FROM customers.accounts GROUP BY plan")
        assert len(ip.user_ns["r"].frame) == 4  # 3 plans and the other group
        from mesh_nb.magics import MeshMagics

        magics = ip.magics_manager.registry[MeshMagics.__name__]
        assert magics.session.engine.kind == "spark"
    finally:
        ip.run_line_magic("unload_ext", "mesh_nb")


def test_a_spark_catalog_table_is_read_through_the_catalog(mesh, engines, tmp_path: Path
                                                           ) -> None:
    """A product whose table has no local file, only a catalog server (here Spark's
    global_temp schema): binding picks Spark and reads the table by its catalog name."""
    import yaml

    folder = tmp_path / "lake" / "customers"
    shutil.copytree(mesh.product("customers").folder, folder,
                    ignore=shutil.ignore_patterns(".mesh_nb", ".owner", "*.parquet"))
    contract = yaml.safe_load((folder / "datacontract.yaml").read_text())
    contract["servers"] = [{"server": "lake", "type": "custom", "schema": "global_temp",
                            "customProperties": [{"property": "meshNbEngine",
                                                  "value": "spark"}]}]
    contract["schema"][0]["physicalName"] = "lake_accounts"
    (folder / "datacontract.yaml").write_text(yaml.safe_dump(contract, sort_keys=False))
    table = mesh.product("customers").contract.table("accounts")
    spark_session().read.parquet(str(table.data_path)).createOrReplaceGlobalTempView(
        "lake_accounts")
    lake = mesh_nb.open_mesh(tmp_path / "lake")
    assert lake.product("customers").contract.table("accounts").source == \
        "global_temp.lake_accounts"
    session = lake.bind("customers", purpose=CHURN, analyst="lake-user")
    assert session.engine.kind == "spark"
    plan = plan_of(mesh, CORPUS[1], unbounded=True)
    assert_same_primitives(plan, engines[0].execute(plan.query), session.engine.execute(plan.query))
    release = session.query(CORPUS[1], epsilon=0.5)
    assert len(release.frame) == 16  # 15 declared groups and the other group
    session.end()
    with pytest.raises(MeshError, match="DuckDB cannot read"):
        lake.bind("customers", purpose=CHURN, analyst="lake-user", engine="duckdb").engine


def test_unit_unique_matches_duckdb(tmp_path: Path, mesh, engines) -> None:
    duck, spark = engines
    for product, name, _, _ in _tables(mesh):
        assert spark.unit_unique(product, name) == duck.unit_unique(product, name)


def test_pseudonymized_rows_are_the_same(mesh) -> None:
    sql = ("SELECT order_id, customer_id, order_date, amount, card_number FROM sales.orders "
           "WHERE category = 'books' ORDER BY order_id LIMIT 300")
    out = {}
    for kind in ("duckdb", "spark"):
        s = mesh.bind("sales", purpose="fraud-review", analyst="fran", acknowledge=True,
                      engine=kind)
        assert s.engine.kind == kind
        out[kind] = s.rows(sql)
        s.end()
    assert out["spark"].tokenized == out["duckdb"].tokenized
    pd.testing.assert_frame_equal(out["spark"].frame, out["duckdb"].frame)


def test_only_registered_tables_reach_spark() -> None:
    with pytest.raises(MeshError, match="not a table of the bound products"):
        to_spark(_tree('SELECT COUNT(*) FROM "other"."secrets"'), {("sales", "orders"): "v"})
    planned = _tree('SELECT COUNT(*) FROM "sales"."orders" AS "o"')
    assert "`v`" in to_spark(planned, {("sales", "orders"): "v"})
    assert planned.find(exp.Table).db == "sales"  # the plan's own tree is left as it was


def _tree(sql: str):
    return sqlglot.parse_one(sql, read="duckdb")


def test_engine_choice(mesh) -> None:
    with pytest.raises(MeshError, match="unknown engine `flink`"):
        mesh.bind("sales", purpose=CHURN, engine="flink")
    with pytest.raises(MeshError, match="Spark Connect URL"):
        mesh.bind("sales", purpose=CHURN, spark_remote="http://host:15002")
    with pytest.raises(MeshError, match="engine is duckdb"):
        open_engine(_tables(mesh), kind="duckdb", remote="sc://localhost:1")
    s = mesh.bind("sales", purpose=CHURN)
    assert s.engine.kind == "duckdb"
    s.end()
    assert mesh.bind("sales", purpose=CHURN, spark_remote="sc://h:1").backend.options.resolve(
        (mesh.product("sales"),)) == ("spark", "sc://h:1")


CONNECT_SERVER = """
import os, sys, warnings
warnings.simplefilter("ignore")
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local[1]")
         .config("spark.plugins", "org.apache.spark.sql.connect.SparkConnectPlugin")
         .config("spark.connect.grpc.binding.port", sys.argv[1])
         .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
         .getOrCreate())
print("ready", flush=True)
sys.stdin.read()
os._exit(0)  # the JVM ends with its gateway pipe
"""


@pytest.fixture(scope="module")
def connect_url():
    """A real Spark Connect server in a child process (token-authenticated); its URL."""
    port, token = free_port(), uuid.uuid4().hex
    env = {**os.environ, "SPARK_CONNECT_AUTHENTICATE_TOKEN": token}
    proc = subprocess.Popen([sys.executable, "-c", CONNECT_SERVER, str(port)], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail("the Spark Connect server exited before it listened")
                time.sleep(0.5)
        else:
            pytest.fail("the Spark Connect server did not listen within 180 s")
        url = f"sc://localhost:{port}/;token={token}"
        yield url
        stop_spark(url)  # the client first, or it keeps retrying a server that is gone
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_spark_connect_runs_the_same_plan(mesh, engines, connect_url: str) -> None:
    duck, _ = engines
    plan = plan_of(mesh, CORPUS[1], unbounded=True)
    remote = open_engine(_tables(mesh), remote=connect_url)
    try:
        assert remote.kind == "spark" and remote.spark is not spark_session()
        assert_same_primitives(plan, duck.execute(plan.query), remote.execute(plan.query))
    finally:
        remote.close()
    s = mesh.bind("customers", purpose=CHURN, analyst="remote-user", spark_remote=connect_url)
    r = s.query("SELECT plan, MEDIAN(monthly_spend) AS med FROM customers.accounts "
                "GROUP BY plan", epsilon=0.5)
    assert len(r.frame) == 4 and r.frame.med.between(0, 500).all()
    s.end()


HEAVY = ("SELECT COUNT(*) AS n FROM sales.orders AS a JOIN sales.orders AS b "
         "ON a.customer_id = b.customer_id JOIN sales.orders AS c "
         "ON b.customer_id = c.customer_id JOIN sales.orders AS d "
         "ON c.customer_id = d.customer_id")


def test_a_spark_query_past_its_deadline_is_cancelled_and_charged(mesh) -> None:
    """The watchdog runs on its own thread: the Spark jobs the query started must really stop
    (none is left running on the context), the reservation stays, the answer is generic, and
    the Spark session serves the next query."""
    from mesh_nb import QueryFailed
    from mesh_nb.errors import QUERY_FAILED
    from mesh_nb.query.engines import Limits

    s = mesh.bind("sales", purpose=CHURN, analyst="spark-slow", engine="spark",
                  limits=Limits(seconds=3))
    with pytest.raises(QueryFailed) as err:
        s.query(HEAVY, epsilon=0.1)
    assert str(err.value) == QUERY_FAILED and err.value.epsilon == pytest.approx(0.1)
    failed = mesh.ledger("sales").entries(kind="query.failed")[-1]
    assert failed.details["rule"] == "time-limit"
    tracker = s.engine.spark.sparkContext.statusTracker()
    deadline = time.monotonic() + 120  # a readiness wait, generous for a busy CI machine
    while tracker.getActiveJobsIds() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert tracker.getActiveJobsIds() == [], "the cancelled query's jobs are still running"
    s.end()
    # the same SparkSession serves the next query (its own limit: right after a cancelled
    # shuffle a busy machine may take seconds even for a count)
    after = mesh.bind("sales", purpose=CHURN, analyst="spark-slow", engine="spark")
    assert len(after.query("SELECT COUNT(*) AS n FROM sales.orders", epsilon=0.1).frame) == 1
    after.end()


def test_models_train_on_spark_too(mesh) -> None:
    """A fit's engine query (one random row per unit, clamped, total) runs on Spark as on
    DuckDB; the rest of the fit happens in this process."""
    s = mesh.bind("customers", purpose=CHURN, analyst="spark-fit", engine="spark")
    r = s.fit("logistic", ["monthly_spend", "plan", "region"], target="churned", epsilon=0.5)
    assert set(r.model.predict(pd.DataFrame({"monthly_spend": [10.0], "plan": ["pro"],
                                             "region": ["south"]}))) <= {False, True}
    assert 25_000 < r.card["rows"] < 45_000 and r.evaluation["value"] > 0.6
    k = s.fit("kmeans", ["monthly_spend", "plan"], epsilon=0.25, n_clusters=3)
    assert len(k.params["cluster_centers_"]) == 3
    kinds = [e.kind for e in mesh.ledger("customers").entries(analyst="spark-fit")]
    assert kinds.count("model.released") == 2 and "query.failed" not in kinds
