"""The trust boundary: a real ``mesh-nb serve`` process on 127.0.0.1, attacked from outside.

Tokens (none, bad, revoked, expired, for another purpose), identity claims, malformed and
oversized requests, the adversarial query corpus, the rate limit, 16 concurrent clients on one
budget, the approval flow, the owner's CLI, and a log that never holds a data value.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Iterator

import httpx
import pandas as pd
import pytest

from live_server import LiveServer, copy_demo, demo_server
import mesh_nb
from mesh_nb import BudgetExceeded, MeshError, PolicyViolation, open_mesh
from mesh_nb.cli import main as cli
from mesh_nb.remote import RemoteError
from mesh_nb.server.db import ServerDb
from mesh_nb.server.tokens import TokenStore
from test_policy import EXPECTED_REJECTIONS, ROW_REJECTIONS

APPROVER = "olivia.owner@example.org"
SECRET_LITERAL = "Zq-literal-7731"  # sent in queries; must never reach the log
COUNT = "SELECT region, COUNT(*) AS n FROM customers.accounts GROUP BY region"


@pytest.fixture(scope="module")
def server(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from demo_server(demo_root, tmp_path_factory.mktemp("server"))


def _raw(server: LiveServer, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.url + "/v1", headers=headers, timeout=60)


def _bind(client: httpx.Client, purpose: str = "churn-analysis",
          products: tuple[str, ...] = ("customers",)) -> str:
    r = client.post("/sessions", json={"products": list(products), "purpose": purpose})
    assert r.status_code == 200, r.text
    return r.json()["id"]


# -- who may ask --------------------------------------------------------------------------------

@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nope", "Basic dXNlcjpwdw==",
                                    "Bearer mnb_000000000000_" + "A" * 43])
def test_no_or_bad_token_is_401(server: LiveServer, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    for method, path in (("GET", "/v1/whoami"), ("GET", "/v1/products"),
                         ("POST", "/v1/sessions")):
        r = httpx.request(method, server.url + path, headers=headers,
                          json={"products": ["customers"], "purpose": "churn-analysis"})
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["type"] == "auth"


def test_client_without_token_says_how(server: LiveServer, monkeypatch) -> None:
    monkeypatch.delenv("MESH_TOKEN", raising=False)
    with pytest.raises(MeshError, match="MESH_TOKEN"):
        open_mesh(server.url)
    with pytest.raises(RemoteError) as info:
        open_mesh(server.url, token="mnb_123456789abc_" + "x" * 43)
    assert info.value.status == 401


def test_token_from_the_environment(server: LiveServer, monkeypatch) -> None:
    monkeypatch.setenv("MESH_TOKEN", server.token("env-user"))
    m = open_mesh(server.url)
    assert m.analyst == "env-user" and {"customers", "sales"} <= set(m.products)


def test_token_for_purpose_a_cannot_bind_b(server: LiveServer) -> None:
    m = open_mesh(server.url, token=server.token("narrow", purposes=("marketing-research",)))
    assert m.bind("customers", purpose="marketing-research").access == "dp-aggregate"
    with pytest.raises(PolicyViolation) as info:
        m.bind("customers", purpose="churn-analysis")
    assert info.value.rule == "purpose-not-granted"


def test_identity_comes_from_the_token(server: LiveServer) -> None:
    m = open_mesh(server.url, token=server.token("carol"))
    with pytest.raises(PolicyViolation) as info:
        m.bind("customers", purpose="churn-analysis", analyst="mallory")
    assert info.value.rule == "identity"
    s = m.bind("customers", purpose="churn-analysis")
    assert s.analyst == "carol"
    bound = open_mesh(server.mesh_dir).ledger("customers").entries(kind="session.bound",
                                                                   session=s.id)
    assert [e.analyst for e in bound] == ["carol"]


def test_revoked_and_expired_tokens_are_refused(server: LiveServer) -> None:
    token = server.token("dave")
    with _raw(server, token) as c:
        sid = _bind(c)
        assert c.get(f"/sessions/{sid}/budget").status_code == 200
        db = ServerDb(server.mesh_dir)
        TokenStore(db).revoke("dave")
        db.close()
        r = c.get(f"/sessions/{sid}/budget")
        assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    expired = server.token("erin", expires="2026-01-01")
    with _raw(server, expired) as c:
        r = c.get("/whoami")
        assert r.status_code == 401 and "expired" in r.json()["error"]["message"]


def test_a_session_belongs_to_its_token(server: LiveServer) -> None:
    with _raw(server, server.token("frank")) as mine, _raw(server, server.token("grace")) as other:
        sid = _bind(mine)
        r = other.post(f"/sessions/{sid}/query", json={"sql": COUNT})
        assert r.status_code == 404
        assert other.delete(f"/sessions/{sid}").status_code == 404
        assert mine.get(f"/sessions/{sid}/budget").status_code == 200


# -- what may be asked --------------------------------------------------------------------------

def test_malformed_and_oversized_requests(server: LiveServer) -> None:
    with _raw(server, server.token("henry")) as c:
        sid = _bind(c)
        q = f"/sessions/{sid}/query"
        cases = [
            (c.post(q, content=b"{not json", headers={"content-type": "application/json"}),
             422, "JSON"),
            (c.post(q, json={"sql": COUNT, "seed": 1}), 422, "seed"),
            (c.post(q, json={"sql": COUNT, "epsilon": "lots"}), 422, "epsilon"),
            (c.post(q, json={"sql": COUNT, "epsilon": -1}), 422, "epsilon"),
            (c.post(q, json={}), 422, "sql"),
            (c.post(q, json={"sql": "SELECT 1 " + " " * 20_000}), 422, "20000"),
            (c.post(q, content=b"x" * 70_000, headers={"content-type": "application/json"}),
             413, "bytes"),
            (c.post("/sessions", json={"products": ["customers"] * 33,
                                       "purpose": "churn-analysis"}), 422, "products"),
        ]
        for r, status, words in cases:
            assert r.status_code == status, r.text
            err = r.json()["error"]
            assert words in err["message"] and err["type"] == "request"
        chunked = c.post(q, content=iter([b"{" + b" " * 40_000, b" " * 40_000 + b"}"]),
                         headers={"content-type": "application/json"})
        assert chunked.status_code == 413
        assert c.get(f"/sessions/{sid}/budget").json()[0]["epsilon_spent"] == 0


def test_no_seed_reaches_a_private_release(server: LiveServer) -> None:
    """Neither API takes a seed (it would let the noise be recomputed and subtracted)."""
    s = open_mesh(server.url, token=server.token("ivan")).bind("customers",
                                                               purpose="churn-analysis")
    with pytest.raises(TypeError, match="seed"):
        s.query(COUNT, seed=3)
    with pytest.raises(TypeError, match="seed"):
        mesh_nb.Session.query(s, COUNT, seed=3)


def test_adversarial_corpus_is_rejected_server_side(server: LiveServer) -> None:
    m = open_mesh(server.url, token=server.token("eve"))
    s = m.bind("customers,sales", purpose="churn-analysis")
    corpus = [(sql, rule) for sql, purpose, rule in EXPECTED_REJECTIONS
              if purpose == "churn-analysis"]
    assert len(corpus) > 80
    for sql, rule in corpus:
        with pytest.raises(PolicyViolation) as info:
            s.query(sql)
        assert info.value.rule == rule, sql
    m2 = open_mesh(server.url, token=server.token("eve2"))
    m2.request("customers", "support-operations", "corpus")
    req = m2.requests()[0]
    server.approvals().decide(req.id, True, APPROVER)
    rows = m2.bind("customers", purpose="support-operations", acknowledge=True)
    row_corpus = [(sql, rule) for sql, purpose, rule in ROW_REJECTIONS
                  if purpose == "support-operations" and "sales." not in sql]
    for sql, rule in row_corpus:
        with pytest.raises(PolicyViolation) as info:
            rows.rows(sql)
        assert info.value.rule == rule, sql
    ledger = open_mesh(server.mesh_dir).ledger("customers")
    rejected = ledger.entries(kind="query.rejected", analyst="eve")
    assert len(rejected) == len(corpus) and not ledger.entries(kind="query.released",
                                                               analyst="eve")
    assert s.budget().epsilon_spent == 0


def test_rate_limit_per_token(server: LiveServer) -> None:
    slow, other = server.token("judy", rate=5), server.token("ken")
    with _raw(server, slow) as c, _raw(server, other) as d:
        codes = [c.get("/whoami").status_code for _ in range(7)]
        assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]
        r = c.get("/whoami")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert "rate limit" in r.json()["error"]["message"]
        assert d.get("/whoami").status_code == 200  # another token is not slowed


def test_sixteen_clients_share_one_budget(server: LiveServer) -> None:
    """marketing-research: one budget of epsilon 1.0 for everyone (per-purpose)."""
    results: list[tuple[str, float]] = []
    refused: list[BudgetExceeded] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def client(i: int) -> None:
        try:
            s = open_mesh(server.url, token=server.token(f"team{i}")).bind(
                "customers", purpose="marketing-research")
            start.wait()
            for j in range(3):
                try:
                    r = s.query(f"SELECT plan, COUNT(*) AS n_{i}_{j} FROM customers.accounts "
                                "GROUP BY plan", epsilon=0.1)
                    with lock:
                        results.append((r.release_id, r.epsilon))
                except BudgetExceeded as exc:
                    with lock:
                        refused.append(exc)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len(results) + len(refused) == 48
    assert sum(eps for _, eps in results) <= 1.0 + 1e-9
    assert len(results) == 10  # 10 x 0.1 fits exactly: none of the budget is lost either
    released = [e for e in open_mesh(server.mesh_dir).ledger("customers").entries(
        kind="query.released", purpose="marketing-research") if not e.details.get("cached")]
    assert sorted(e.details["release"] for e in released) == sorted(r for r, _ in results)
    assert sum(e.epsilon_micro for e in released) == 1_000_000


# -- approvals and the owner's CLI --------------------------------------------------------------

def test_approval_flow(server: LiveServer, capsys) -> None:
    m = open_mesh(server.url, token=server.token("lena"))
    with pytest.raises(PolicyViolation) as info:
        m.bind("sales", purpose="fraud-review", acknowledge=True)
    assert info.value.rule == "approval-required" and "m.request" in info.value.fix
    req = m.request("sales", "fraud-review", "chargeback spike, ticket 4411")
    assert req.status == "pending"
    with pytest.raises(PolicyViolation, match=f"request {req.id} is pending"):
        m.bind("sales", purpose="fraud-review", acknowledge=True)
    mesh = ["--mesh", str(server.mesh_dir)]
    assert cli(["requests", *mesh]) == 0
    assert req.id in capsys.readouterr().out
    assert cli(["approve", req.id, "--as", "nobody@example.org", *mesh]) == 2
    assert "not an approver" in capsys.readouterr().err
    assert cli(["approve", req.id, "--as", "priya.owner@example.org", *mesh]) == 0
    s = m.bind("sales", purpose="fraud-review", acknowledge=True)
    assert s.rows("SELECT order_id, card_number FROM sales.orders LIMIT 3").rows == 3
    denied = m.request("customers", "support-operations", "curious")
    assert cli(["deny", denied.id, "--reason", "no ticket", "--as", APPROVER, *mesh]) == 0
    assert [r.status for r in m.requests()] == ["approved", "denied"]
    with pytest.raises(PolicyViolation):
        m.bind("customers", purpose="support-operations", acknowledge=True)
    kinds = [(e.kind, e.details.get("request"), e.details.get("approver"))
             for e in open_mesh(server.mesh_dir).ledger("sales").entries(analyst="lena")
             if e.kind.startswith("purpose.")]
    assert kinds == [("purpose.requested", req.id, None),
                     ("purpose.approved", req.id, "priya.owner@example.org")]


def test_token_cli(server: LiveServer, capsys) -> None:
    mesh = ["--mesh", str(server.mesh_dir)]
    assert cli(["token", "add", "mona", "--purpose", "churn-analysis", "--expires", "30d",
                "--rate", "100", *mesh]) == 0
    out = capsys.readouterr()
    secret = out.out.strip()
    assert secret.startswith("mnb_") and "not" in out.err
    stored = (server.mesh_dir / ".server" / "server.sqlite").read_bytes()
    assert secret.encode() not in stored  # only its hash is kept
    assert open_mesh(server.url, token=secret).analyst == "mona"
    assert cli(["token", "list", *mesh]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if " mona " in line]
    assert len(listed) == 1 and "active" in listed[0] and "churn-analysis" in listed[0]
    assert cli(["token", "revoke", "mona", *mesh]) == 0
    capsys.readouterr()
    with pytest.raises(RemoteError) as info:
        open_mesh(server.url, token=secret)
    assert info.value.status == 401
    assert cli(["token", "add", "bad name!", *mesh]) == 2


def test_magics_bind_through_the_server(server: LiveServer, monkeypatch) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setenv("MESH_TOKEN", server.token("nina"))
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "mesh_nb")
    try:
        ip.run_line_magic("mesh_bind", f"customers --purpose churn-analysis --server {server.url}")
        magics = ip.magics_manager.registry["MeshMagics"]
        assert magics.session.analyst == "nina"
        ip.run_cell_magic("mesh_query", "--epsilon 0.2 --save out -m laplace",
                          f"SELECT region, COUNT(*) AS n FROM customers.accounts "
                          f"WHERE plan <> '{SECRET_LITERAL}' GROUP BY region")
        assert ip.user_ns["out"].epsilon == 0.2
        ip.run_line_magic("mesh_bind", "customers --purpose support-operations --request "
                                       "'ticket 9'")
        assert [r.purpose for r in magics.mesh.requests()] == ["support-operations"]
    finally:
        ip.run_line_magic("unload_ext", "mesh_nb")


# -- last: what the server wrote --------------------------------------------------------------

def test_log_never_holds_a_data_value(server: LiveServer) -> None:
    m = open_mesh(server.url, token=server.token("olga"))
    s = m.bind("customers", purpose="churn-analysis")
    s.query(f"SELECT plan, COUNT(*) AS n FROM customers.accounts WHERE region = "
            f"'{SECRET_LITERAL}' GROUP BY plan", epsilon=0.1)
    with pytest.raises(PolicyViolation):
        s.query(f"SELECT email FROM customers.accounts WHERE email = '{SECRET_LITERAL}'")
    # the total engine: a cast that cannot convert is NULL (the query is released)
    s.query(f"SELECT COUNT(*) AS n FROM customers.accounts WHERE "
            f"CAST('{SECRET_LITERAL}' AS INTEGER) > 0", epsilon=0.1)
    with pytest.raises(PolicyViolation):  # the binder's message stays out of the log too
        s.query(f"SELECT COUNT(*) AS n FROM customers.accounts WHERE "
                f"date_trunc('month', monthly_spend) = '{SECRET_LITERAL}'", epsilon=0.1)
    log = server.log.read_text() + server.log.with_suffix(".stderr").read_text()
    assert "POST /v1/sessions/" in log and "rule=identifier-in-output" in log
    assert SECRET_LITERAL not in log and "SELECT" not in log
    frame = pd.read_parquet(next((server.mesh_dir / "customers").glob("*.parquet")))
    values = {str(v) for col in ("customer_id", "email", "full_name", "postcode", "phone")
              if col in frame for v in frame[col].dropna().unique()
              if len(str(v)) >= 7 and not str(v).isdigit()}  # digits alone match timings
    assert values and not [v for v in values if v in log]
    for line in log.splitlines():  # the access log's shape: method path status time names
        if " mesh_nb.server " in line and " /v1/" in line:
            assert json.dumps(line)  # one line each


def test_requests_and_tokens_list_in_the_order_they_were_made(demo_root: Path,
                                                              tmp_path: Path) -> None:
    """Timestamps have one-second resolution: within a second, creation order still holds
    (ordering by the random id made the approval flow flaky)."""
    from mesh_nb.server.approvals import Approvals

    mesh_dir = copy_demo(demo_root, tmp_path / "mesh")
    m = open_mesh(mesh_dir)
    db = ServerDb(m.root)
    try:
        approvals, tokens = Approvals(db, m), TokenStore(db)
        made = [approvals.request(f"analyst{i}", ["sales"], "fraud-review", "ticket").id
                for i in range(12)]
        names = [f"analyst{i}" for i in range(12)]
        for name in names:
            tokens.issue(name)
        assert [r.id for r in approvals.of()] == made
        assert [t.name for t in tokens.list()] == names
    finally:
        db.close()
