"""The server under a hostile analyst's load, and sessions that outlive the server process.

A real ``mesh-nb serve`` on 127.0.0.1. One token runs a heavy query and floods its session;
another token's requests keep being answered while it runs (checked by order of events, never
by a clock: the heavy query is still running when they answer), the flood is refused at once
instead of queued, and the heavy query stops at its deadline, charged. Sessions are rows in the
server's database: a restarted server resumes them; idle ones are ended by a timer.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from live_server import LiveServer, copy_demo, demo_server
from mesh_nb import open_mesh

HEAVY = ("SELECT COUNT(*) AS n FROM sales.orders AS a JOIN sales.orders AS b "
         "ON a.customer_id = b.customer_id JOIN sales.orders AS c "
         "ON b.customer_id = c.customer_id JOIN sales.orders AS d ON c.customer_id = d.customer_id")
LIGHT = "SELECT category, COUNT(*) AS n FROM sales.orders GROUP BY category"
DEADLINE = 120.0  # seconds any readiness wait may take on a busy 2-core machine


def _client(server: LiveServer, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url + "/v1",
                        headers={"Authorization": f"Bearer {token}"}, timeout=DEADLINE)


def _bind(c: httpx.Client, products: tuple[str, ...] = ("sales",)) -> str:
    r = c.post("/sessions", json={"products": list(products), "purpose": "churn-analysis"})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def _wait(predicate, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def busy_server(demo_root: Path, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    """A server whose queries stop after 6 s (the heavy one runs for minutes without it)."""
    monkeypatch.setenv("MESH_NB_QUERY_SECONDS", "6")
    monkeypatch.setenv("MESH_NB_SERVER_WORKERS", "4")
    yield from demo_server(demo_root, tmp_path)


def test_one_token_cannot_stall_the_server(busy_server: LiveServer) -> None:
    server = busy_server
    heavy_token, other_token = server.token("mallory"), server.token("alice")
    with _client(server, heavy_token) as m, _client(server, other_token) as a:
        sid = _bind(m)
        spare = _bind(m)
        outcome: dict[str, httpx.Response] = {}

        def heavy_until_accepted(session: str, sql: str, key: str) -> None:
            while True:  # a probe below may hold the session for a moment: then try again
                r = m.post(f"/sessions/{session}/query", json={"sql": sql, "epsilon": 0.1})
                if r.status_code not in (409, 429):
                    outcome[key] = r
                    return

        runner = threading.Thread(target=heavy_until_accepted, args=(sid, HEAVY, "heavy"))
        runner.start()

        def heavy_running() -> bool:  # the session is claimed: a second query is refused
            r = m.post(f"/sessions/{sid}/query", json={"sql": LIGHT, "epsilon": 0.1})
            assert r.status_code in (200, 409), r.text
            return r.status_code == 409

        _wait(heavy_running, "the heavy query to start")
        # a flood on the busy session is refused at once, never queued
        with httpx.Client(base_url=server.url + "/v1", timeout=DEADLINE,
                          headers={"Authorization": f"Bearer {heavy_token}"}) as flood:
            codes = []
            threads = [threading.Thread(target=lambda: codes.append(flood.post(
                f"/sessions/{sid}/query", json={"sql": LIGHT, "epsilon": 0.1}).status_code))
                for _ in range(45)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(DEADLINE)
        assert codes == [409] * 45
        busy = m.post(f"/sessions/{sid}/query", json={"sql": LIGHT, "epsilon": 0.1}).json()
        assert busy["error"]["type"] == "busy" and busy["error"]["rule"] == "session-busy"
        # the other analyst is served meanwhile: health, whoami, bind, queries, budget
        assert httpx.get(server.url + "/v1/health", timeout=DEADLINE).status_code == 200
        assert a.get("/whoami").status_code == 200
        other = _bind(a)
        for _ in range(5):
            r = a.post(f"/sessions/{other}/query", json={"sql": LIGHT, "epsilon": 0.05})
            assert r.status_code == 200, r.text
        assert a.get(f"/sessions/{other}/budget").status_code == 200
        # the same token's budget read on the busy session still answers (no engine needed)
        assert m.get(f"/sessions/{sid}/budget").status_code == 200
        assert runner.is_alive() and heavy_running()  # all of it while the heavy one ran
        # a token's share: a second heavy query on its spare session runs, a third is refused
        extra = threading.Thread(target=heavy_until_accepted,
                                 args=(spare, HEAVY + " WHERE a.amount > 0", "spare"))
        extra.start()
        third = _bind(m)
        shares = []

        def share_taken() -> bool:  # two heavy queries running: the token's third is refused
            r = m.post(f"/sessions/{third}/query", json={"sql": LIGHT, "epsilon": 0.1})
            assert r.status_code in (200, 429), r.text
            shares.append(r.json()["error"]["rule"] if r.status_code == 429 else "ran")
            return r.status_code == 429

        _wait(lambda: share_taken() or not runner.is_alive(), "the token's share to fill")
        assert runner.is_alive() is False or shares[-1] == "token-busy"
        runner.join(DEADLINE)
        extra.join(DEADLINE)
        heavy = outcome["heavy"]
        assert heavy.status_code == 422, heavy.text  # stopped at its deadline
        failed = heavy.json()["error"]
        assert failed["type"] == "failed" and failed["failed"]["epsilon"] == pytest.approx(0.1)
        # the session is free again and the next query runs
        assert m.post(f"/sessions/{sid}/query",
                      json={"sql": LIGHT, "epsilon": 0.1}).status_code == 200
    entries = open_mesh(server.mesh_dir).ledger("sales").entries(analyst="mallory")
    release = failed["failed"]["release_id"]
    mine = [e for e in entries if e.details.get("release") == release]
    assert {e.kind for e in mine} == {"query.released", "query.failed"}  # charged, recorded
    assert [e.details.get("rule") for e in mine if e.kind == "query.failed"] == ["time-limit"]
    assert sum(e.epsilon_micro for e in mine) == 100_000


@pytest.fixture
def restartable(demo_root: Path, tmp_path: Path) -> Iterator[dict]:
    mesh = copy_demo(demo_root, tmp_path / "mesh")
    state = {"mesh": mesh, "log": tmp_path / "server.log"}
    state["server"] = LiveServer.start(mesh, state["log"])
    yield state
    state["server"].stop()


def test_a_session_survives_a_restart(restartable: dict) -> None:
    server: LiveServer = restartable["server"]
    token, other = server.token("alice"), server.token("bob")
    s = open_mesh(server.url, token=token).bind("customers", purpose="churn-analysis")
    first = s.query("SELECT plan, COUNT(*) AS n FROM customers.accounts GROUP BY plan",
                    epsilon=0.5)
    port = int(server.url.rsplit(":", 1)[1])
    server.stop()
    restartable["server"] = server = LiveServer.start(restartable["mesh"], restartable["log"],
                                                      port=port)
    again = s.query("SELECT plan, COUNT(*) AS n FROM customers.accounts GROUP BY plan",
                    epsilon=0.5)  # the same session object, same id and token
    assert again.release_id == first.release_id and again.cached  # the same session's purpose
    later = s.query("SELECT region, COUNT(*) AS n FROM customers.accounts GROUP BY region",
                    epsilon=0.25)
    assert later.epsilon == 0.25
    assert s.budget().epsilon_spent == pytest.approx(0.75)
    with httpx.Client(base_url=server.url + "/v1", timeout=DEADLINE,
                      headers={"Authorization": f"Bearer {other}"}) as b:
        r = b.get(f"/sessions/{s.id}/budget")  # another token cannot resume it
        assert r.status_code == 404 and "no open session" in r.json()["error"]["message"]
    s.end()
    kinds = [e.kind for e in open_mesh(restartable["mesh"]).ledger("customers").entries(
        session=s.id)]
    assert kinds.count("session.bound") == 1 and kinds.count("session.ended") == 1
    assert kinds[-1] == "session.ended"  # the restart itself ended nothing
    with pytest.raises(Exception, match="has ended|no open session"):
        s.query("SELECT COUNT(*) AS n FROM customers.accounts", epsilon=0.1)


def test_idle_sessions_end_on_a_timer(demo_root: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_NB_SESSION_IDLE", "1")
    server = LiveServer.start(copy_demo(demo_root, tmp_path / "mesh"), tmp_path / "server.log")
    try:
        with _client(server, server.token("carol")) as c:
            sid = _bind(c, ("customers",))
            ledger = open_mesh(server.mesh_dir).ledger("customers")
            _wait(lambda: any(e.kind == "session.ended" for e in ledger.entries(session=sid)),
                  "the idle session to be ended")
            r = c.get(f"/sessions/{sid}/budget")
            assert r.status_code == 404 and "bind again" in r.json()["error"]["message"]
    finally:
        server.stop()
