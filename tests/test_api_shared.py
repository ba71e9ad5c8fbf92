"""One API suite, run on a local mesh and on the same mesh through the owner's server.

Every test gets ``api``: the mesh under test (``local`` or ``remote``), a fresh analyst name
(so per-analyst budgets start full), a reference local mesh to compare refusal messages with,
and ``grant`` (a purpose approval: a no-op locally, the owner's approval remotely).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Iterator

import pandas as pd
import pytest

from live_server import LiveServer, copy_demo
from mesh_nb import BudgetExceeded, Mesh, MeshError, PolicyViolation, Session, open_mesh
from mesh_nb.values import Explanation, Release, RowRelease

APPROVER = "olivia.owner@example.org"
COUNT_BY_REGION = "SELECT region, COUNT(*) AS n FROM customers.accounts GROUP BY region"
_names = itertools.count()


@dataclass
class Api:
    kind: str
    mesh: Mesh
    analyst: str
    reference: Mesh
    grant: Callable[[str, str], None]

    def bind(self, products: str = "customers", purpose: str = "churn-analysis",
             **kw) -> Session:
        return self.mesh.bind(products, purpose=purpose, analyst=self.analyst, **kw)

    def refusal(self, fn: Callable[[Mesh], object]) -> tuple[Exception, Exception]:
        """(what the mesh under test raised, what the reference local mesh raised)."""
        with pytest.raises(MeshError) as got:
            fn(self.mesh)
        with pytest.raises(MeshError) as ref:
            fn(self.reference)
        return got.value, ref.value


@pytest.fixture(scope="module")
def meshes(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    base = tmp_path_factory.mktemp("shared")
    local = open_mesh(copy_demo(demo_root, base / "local"))
    server = LiveServer.start(copy_demo(demo_root, base / "served"), base / "server.log")
    try:
        yield {"local": local, "server": server}
    finally:
        server.stop()


@pytest.fixture(params=["local", "remote"])
def api(request: pytest.FixtureRequest, meshes: dict) -> Iterator[Api]:
    name = f"analyst{next(_names)}"
    if request.param == "local":
        yield Api("local", meshes["local"], name, meshes["local"], lambda *_: None)
        return
    server: LiveServer = meshes["server"]
    remote = open_mesh(server.url, token=server.token(name))

    def grant(products: str, purpose: str) -> None:
        req = remote.request(products, purpose, "shared API suite")
        server.approvals().decide(req.id, True, APPROVER)

    yield Api("remote", remote, name, meshes["local"], grant)
    remote.close()


def test_bind(api: Api) -> None:
    s = api.bind()
    assert isinstance(s, Session) and not s.ended
    assert (s.analyst, s.purpose, s.access, s.product_names) == (
        api.analyst, "churn-analysis", "dp-aggregate", ("customers",))
    assert s.purpose_of().budget.epsilon == 3.0
    s.end()
    assert s.ended
    with pytest.raises(MeshError, match="has ended"):
        s.query(COUNT_BY_REGION)


def test_bind_refusals_say_the_same(api: Api) -> None:
    got, ref = api.refusal(lambda m: m.bind("customers", purpose="no-such-purpose",
                                            analyst=api.analyst))
    assert isinstance(got, PolicyViolation) and got.rule == "purpose-not-declared"
    assert str(got) == str(ref)
    api.grant("customers", "support-operations")
    got, ref = api.refusal(lambda m: m.bind("customers", purpose="support-operations",
                                            analyst=api.analyst))
    assert isinstance(got, PolicyViolation) and got.rule == "acknowledgement-required"
    assert str(got) == str(ref)
    got, ref = api.refusal(lambda m: m.bind("nowhere", purpose="churn-analysis"))
    assert type(got) is type(ref) and "no data product `nowhere`" in str(got)


def test_query_release(api: Api) -> None:
    s = api.bind()
    r = s.query(COUNT_BY_REGION, epsilon=0.5)
    assert isinstance(r, Release) and not r.cached
    assert list(r.frame.columns) == ["region", "n"] and len(r.frame) == 6  # 5 regions + other
    assert r.frame["n"].dtype == "int64" and (r.frame["n"][:5] > 0).all()
    assert (r.epsilon, r.purpose, r.products) == (0.5, "churn-analysis", ("customers",))
    assert {"output", "mechanism", "ci95_half_width"} <= set(r.accuracy.columns)
    assert r.remaining == {"customers": 2.5}
    again = s.query(COUNT_BY_REGION, epsilon=0.5)  # same purpose, same query: free, same answer
    assert again.cached and again.epsilon == 0 and again.frame.equals(r.frame)
    released = s.products[0].ledger.entries(kind="query.released", session=s.id)
    assert [e.details["release"] for e in released] == [r.release_id, r.release_id]


def test_explain_spends_nothing(api: Api) -> None:
    s = api.bind()
    e = s.explain("SELECT plan, AVG(monthly_spend) AS spend FROM customers.accounts "
                  "GROUP BY plan", epsilon=0.4)
    assert isinstance(e, Explanation) and "engine SQL:" in str(e)
    assert e.plan.epsilon == 0.4 and {m.kind for m in e.plan.measurements} == {"sum", "count"}
    assert list(e.table["measurement"]) == [m.name for m in e.plan.measurements]
    assert s.budget().epsilon_spent == 0


def test_budget_falls_then_exceeded(api: Api) -> None:
    s = api.bind()
    left = []
    for i, column in enumerate(("plan", "region", "churned")):
        s.query(f"SELECT {column}, COUNT(*) AS n{i} FROM customers.accounts GROUP BY {column}",
                epsilon=1.0)
        left.append(s.budget().epsilon_remaining)
    assert left == [2.0, 1.0, 0.0]
    with pytest.raises(BudgetExceeded) as info:
        s.query("SELECT COUNT(*) AS n FROM customers.accounts", epsilon=0.5)
    exc = info.value
    assert (exc.product, exc.purpose, exc.analyst, exc.requested, exc.remaining) == (
        "customers", "churn-analysis", api.analyst, 0.5, 0.0)
    status = s.budgets()
    assert [(b.product, b.epsilon_total, b.epsilon_spent) for b in status] == [
        ("customers", 3.0, 3.0)]


@pytest.mark.parametrize("sql, rule", [
    ("SELECT email FROM customers.accounts", "identifier-in-output"),
    ("SELECT COUNT(*) FROM read_csv('/etc/passwd')", "table-function"),
    ("DROP VIEW customers.accounts", "forbidden-statement"),
    ("SELECT full_name, COUNT(*) FROM customers.accounts GROUP BY full_name",
     "group-by-identifier"),
    ("SELECT AVG(postcode) AS p FROM customers.accounts", "column-not-allowed"),
])
def test_rejected_queries_name_the_rule(api: Api, sql: str, rule: str) -> None:
    s = api.bind()
    ref = api.reference.bind("customers", purpose="churn-analysis", analyst="reference")
    with pytest.raises(PolicyViolation) as got:
        s.query(sql)
    with pytest.raises(PolicyViolation) as want:
        ref.query(sql)
    assert got.value.rule == rule and str(got.value) == str(want.value)
    rejected = s.products[0].ledger.entries(kind="query.rejected", session=s.id)
    assert [e.details["rule"] for e in rejected] == [rule]
    assert s.budget().epsilon_spent == 0


def test_rows_for_row_access(api: Api) -> None:
    api.grant("customers", "support-operations")
    s = api.bind(purpose="support-operations", acknowledge=True)
    assert s.access == "pseudonymized-rows" and s.budget().epsilon_total is None
    r = s.rows("SELECT customer_id, email, postcode, region FROM customers.accounts "
               "ORDER BY signup_date LIMIT 25")
    assert isinstance(r, RowRelease) and r.rows == 25
    assert list(r.frame.columns) == ["customer_id", "email", "postcode", "region"]
    assert set(r.tokenized) == {"customer_id", "email"} and r.generalized == ("postcode",)
    assert not r.frame["email"].str.contains("@").any()
    with pytest.raises(MeshError, match="session.rows|aggregates"):
        s.query(COUNT_BY_REGION)
    with pytest.raises(PolicyViolation) as info:
        s.rows("SELECT full_name FROM customers.accounts")
    assert info.value.rule == "column-not-allowed"


def test_lab_state_reads_the_session(api: Api) -> None:
    from mesh_nb.lab.comm import build_state

    s = api.bind()
    r = s.query("SELECT plan, COUNT(*) AS n FROM customers.accounts GROUP BY plan",
                epsilon=0.25)
    state = build_state(SimpleNamespace(session=s, autoscan=None))
    assert state["bound"] and state["analyst"] == api.analyst
    assert state["budgets"][0]["epsilon_remaining"] == 2.75
    assert [x["release_id"] for x in state["releases"]] == [r.release_id]
    assert isinstance(r.frame, pd.DataFrame)
