"""DP models through the owner's server (issue 19): a real ``mesh-nb serve`` on 127.0.0.1.

The fit runs on the server, in a query worker, over the demo's 50,000 customer rows; only the
fitted parameters and the card cross the wire, and the client rebuilds the model from them.
Refusals are 4xx with their rule (never a 500, never a traceback) and spend nothing; the
budget is charged once, in the owner's ledger.
"""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import pandas as pd
import pytest

from live_server import LiveServer, demo_server
from mesh_nb import BudgetExceeded, PolicyViolation, open_mesh
from mesh_nb.server.wire import MAX_FIT_INPUT
from mesh_nb.values import ModelRelease

APPROVER = "olivia.owner@example.org"
FEATURES = ["monthly_spend", "plan", "region"]
FRAME = pd.DataFrame({"monthly_spend": [0.0, 40.0, 400.0, None],
                      "plan": ["basic", "pro", "plus", "unknown"],
                      "region": ["south", "north", "east", None]})
SECRET_LITERAL = "Zq-fit-literal-4417"  # sent in a filter; must reach neither log nor wire


@pytest.fixture(scope="module")
def server(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from demo_server(demo_root, tmp_path_factory.mktemp("fit-server"))


def _raw(server: LiveServer, token: str) -> httpx.Client:
    return server.client(token, timeout=120)


def _bind(client: httpx.Client, purpose: str = "churn-analysis") -> str:
    r = client.post("/sessions", json={"products": ["customers"], "purpose": purpose,
                                       "acknowledge": True})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def _owner_entries(server: LiveServer, analyst: str, kind: str) -> list:
    return open_mesh(server.mesh_dir).ledger("customers").entries(kind=kind, analyst=analyst)


def _spent(client: httpx.Client, sid: str) -> float:
    return client.get(f"/sessions/{sid}/budget").json()[0]["epsilon_spent"]


@pytest.mark.parametrize("estimator,target,options,call", [
    ("LogisticRegression", "churned", {}, "predict_proba"),
    ("GaussianNB", "churned", {}, "predict_proba"),
    ("LinearRegression", "monthly_spend", {}, "predict"),
    ("KMeans", None, {"n_clusters": 3}, "predict"),
    ("PCA", None, {"n_components": 2}, "transform"),
])
def test_each_estimator_trains_through_the_server(server: LiveServer, estimator: str,
                                                  target: str | None, options: dict,
                                                  call: str) -> None:
    analyst = f"fit-{estimator.lower()}"
    token = server.token(analyst)
    m = open_mesh(server.url, token=token)
    s = m.bind("customers", purpose="churn-analysis")
    features = FEATURES if target != "monthly_spend" else ["plan", "region", "churned"]
    r = s.fit(estimator, features, target=target, epsilon=0.5, **options)
    assert isinstance(r, ModelRelease) and r.estimator == estimator
    assert math.isclose(s.budget().epsilon_spent, 0.5, abs_tol=1e-9)
    assert math.isclose(r.remaining["customers"], 2.5, abs_tol=1e-9)  # of the purpose's 3.0
    # charged once, on the owner's ledger, under the token's name; nothing failed
    released = _owner_entries(server, analyst, "model.released")
    assert [e.details["release"] for e in released] == [r.release_id]
    assert released[0].epsilon_micro == 500_000 and released[0].details["estimator"] == estimator
    assert not _owner_entries(server, analyst, "query.failed")
    # the analyst sees their own model.released entry through the entries endpoint
    mine = m.products["customers"].ledger.entries(kind="model.released")
    assert [e.details["release"] for e in mine] == [r.release_id]
    # the model the client rebuilt is exactly the released parameters (JSON floats
    # round-trip), as the server's own evaluation model is: both sides predict alike
    frame = FRAME if target != "monthly_spend" else FRAME.assign(churned=[True, False, True,
                                                                           None])
    frame = frame[[f["name"] for f in r.card["features"]]]
    out = getattr(r.model, call)(frame)
    assert len(out) == len(frame) and np.isfinite(np.asarray(out, dtype=float)).all()
    fitted = r.model[-1]
    for attr, value in r.params.items():
        if attr != "classes_" and value is not None:
            np.testing.assert_array_equal(np.asarray(getattr(fitted, attr), dtype=float),
                                          np.asarray(value, dtype=float))
    assert 25_000 < r.card["rows"] < 45_000  # one row per customer, a noisy count


def test_the_classifier_evaluation_comes_back_with_its_interval(server: LiveServer) -> None:
    s = open_mesh(server.url, token=server.token("fit-eval")).bind("customers",
                                                                    purpose="churn-analysis")
    r = s.fit("logistic", FEATURES, target="churned", epsilon=1.0)
    ev = r.evaluation
    assert ev["metric"] == "accuracy" and 0.0 <= ev["ci95"][0] <= ev["value"] <= ev["ci95"][1]
    assert ev["value"] > 0.6  # the demo's churn rate is ~30%: chance would be below 0.6
    assert set(r.model.predict(FRAME)) <= {False, True}
    assert "held-out accuracy" in str(r)


def test_regression_with_an_undefined_interval_crosses_the_wire(server: LiveServer) -> None:
    """The RMSE's interval is NaN on the server; JSON has no NaN, so it arrives as null."""
    s = open_mesh(server.url, token=server.token("fit-rmse")).bind("customers",
                                                                    purpose="churn-analysis")
    r = s.fit("linear", ["plan", "region", "churned"], target="monthly_spend", epsilon=0.5)
    assert r.evaluation["metric"] == "rmse" and r.evaluation["ci95"] == [None, None]
    assert 0 < r.evaluation["value"] < 500 and "RMSE" in str(r)


def _refusals() -> list[tuple[dict | bytes, int, str]]:
    """(body, status, rule or words in the message) for one session's fit endpoint."""
    base = {"estimator": "LogisticRegression", "features": FEATURES, "target": "churned",
            "epsilon": 0.5}
    return [
        # policy: the same checks as a query, each naming its rule (HTTP 403)
        ({**base, "features": ["full_name"]}, 403, "group-by-identifier"),
        ({**base, "target": "email"}, 403, "group-by-identifier"),
        ({**base, "features": ["plan", "region"], "target": "monthly_spend"}, 403,
         "fit-categories"),
        ({**base, "estimator": "RandomForestClassifier"}, 403, "fit-estimator"),
        ({**base, "options": {"solver": 1}}, 403, "fit-option"),
        ({**base, "options": {"C": 1e9}}, 403, "fit-option"),
        ({**base, "features": []}, 403, "fit-features"),
        ({**base, "target": None}, 403, "fit-target"),
        ({**base, "table": "orders"}, 403, "fit-table"),
        ({**base, "epsilon": 1.5}, 403, "epsilon-too-large"),
        ({**base, "epsilon": 1e-9}, 403, "epsilon"),
        # over-long inputs (HTTP 422, named by the field)
        ({**base, "features": ["plan"] * 65}, 422, "features"),
        ({**base, "features": ["plan", "x" * (MAX_FIT_INPUT + 1)]}, 422, "features"),
        ({**base, "target": "y" * (MAX_FIT_INPUT + 1)}, 422, "target"),
        ({**base, "where": "plan = 'a' OR " * 2000}, 422, "where"),
        ({**base, "options": {f"k{i}": 1 for i in range(9)}}, 422, "options"),
        ({**base, "estimator": "L" * 65}, 422, "estimator"),
        # bad JSON types: refused, never coerced
        ({**base, "features": "monthly_spend"}, 422, "features"),
        ({**base, "features": [1, 2]}, 422, "features"),
        ({**base, "target": 5}, 422, "target"),
        ({**base, "epsilon": "lots"}, 422, "epsilon"),
        ({**base, "epsilon": -1}, 422, "epsilon"),
        ({**base, "evaluate": "yes"}, 422, "evaluate"),
        ({**base, "options": {"C": "1"}}, 422, "options"),
        ({**base, "options": {"C": [1]}}, 422, "options"),
        ({**base, "options": ["C"]}, 422, "options"),
        ({**base, "seed": 1}, 422, "seed"),
        ({"features": FEATURES}, 422, "estimator"),
        (b"{not json", 422, "JSON"),
        (b'{"estimator": "logistic", "features": ["plan"], "target": "churned", '
         b'"options": {"C": NaN}}', 422, "options"),
    ]


def test_refusals_are_4xx_with_their_rule_and_spend_nothing(server: LiveServer) -> None:
    analyst = "fit-refused"
    with _raw(server, server.token(analyst)) as c:
        sid = _bind(c)
        cases = _refusals()
        for body, status, rule in cases:
            if isinstance(body, bytes):
                r = c.post(f"/sessions/{sid}/fit", content=body,
                           headers={"content-type": "application/json"})
            else:
                r = c.post(f"/sessions/{sid}/fit", json=body)
            assert r.status_code == status, (body if len(str(body)) < 300 else rule, r.text)
            assert "Traceback" not in r.text and "@" not in r.text
            err = r.json()["error"]
            if status == 403:
                assert err["type"] == "policy" and err["rule"] == rule and err["fix"], err
            else:
                assert err["type"] == "request" and rule in err["message"], err
        assert _spent(c, sid) == 0.0
    assert not _owner_entries(server, analyst, "model.released")
    rejected = _owner_entries(server, analyst, "query.rejected")
    assert len(rejected) == sum(1 for _, status, _ in cases if status == 403)


def test_the_client_raises_the_servers_refusal(server: LiveServer) -> None:
    s = open_mesh(server.url, token=server.token("fit-client")).bind("customers",
                                                                      purpose="churn-analysis")
    with pytest.raises(PolicyViolation) as info:
        s.fit("logistic", FEATURES, target="churned", solver=1)
    assert info.value.rule == "fit-option" and "C (float" in info.value.fix
    with pytest.raises(PolicyViolation) as info:
        s.fit("logistic", ["email"], target="churned")
    assert info.value.rule == "group-by-identifier"
    assert s.budget().epsilon_spent == 0.0


def test_a_pseudonymized_rows_purpose_cannot_fit(server: LiveServer) -> None:
    token = server.token("fit-rows")
    m = open_mesh(server.url, token=token)
    m.request("customers", "support-operations", "ticket 77")
    server.approvals().decide(m.requests()[0].id, True, APPROVER)
    s = m.bind("customers", purpose="support-operations", acknowledge=True)
    with pytest.raises(PolicyViolation) as info:
        s.fit("logistic", FEATURES, target="churned", epsilon=0.5)
    assert info.value.rule == "fit-access"
    body = {"estimator": "nb", "features": FEATURES, "target": "churned"}
    with _raw(server, token) as c:
        r = c.post(f"/sessions/{s.id}/fit", json=body)
        assert r.status_code == 403 and r.json()["error"]["rule"] == "fit-access"
    with _raw(server, server.token("fit-rows-other")) as other:  # nor another token's session
        assert other.post(f"/sessions/{s.id}/fit", json=body).status_code == 404
    assert not _owner_entries(server, "fit-rows", "model.released")


def test_a_short_budget_is_refused_before_training(server: LiveServer) -> None:
    analyst = "fit-budget"
    with _raw(server, server.token(analyst)) as c:
        sid = _bind(c)
        body = {"estimator": "GaussianNB", "features": FEATURES, "target": "churned",
                "epsilon": 1.0, "evaluate": False}
        for _ in range(3):  # the purpose's 3.0, at most 1.0 a fit
            assert c.post(f"/sessions/{sid}/fit", json=body).status_code == 200
        r = c.post(f"/sessions/{sid}/fit", json={**body, "epsilon": 0.01})
        assert r.status_code == 409, r.text
        err = r.json()["error"]
        assert err["type"] == "budget" and err["budget"]["remaining"] < 0.01
        assert "Traceback" not in r.text
        assert math.isclose(_spent(c, sid), 3.0, abs_tol=1e-9)
    assert len(_owner_entries(server, analyst, "model.released")) == 3
    s = open_mesh(server.url, token=server.token(analyst)).bind("customers",
                                                                 purpose="churn-analysis")
    with pytest.raises(BudgetExceeded):  # the same budget, whichever session asks
        s.fit("nb", FEATURES, target="churned", epsilon=0.01)


def test_another_analyst_never_sees_the_fit(server: LiveServer) -> None:
    mine = open_mesh(server.url, token=server.token("fit-mine"))
    r = mine.bind("customers", purpose="churn-analysis").fit("nb", FEATURES, target="churned",
                                                             epsilon=0.25)
    other = open_mesh(server.url, token=server.token("fit-other"))
    seen = other.products["customers"].ledger.entries(kind="model.released")
    assert r.release_id not in {e.details.get("release") for e in seen}
    assert [e.details["release"] for e in mine.products["customers"].ledger.entries(
        kind="model.released")] == [r.release_id]


def test_no_data_value_on_the_wire_or_in_the_log(server: LiveServer) -> None:
    token = server.token("fit-wire")
    with _raw(server, token) as c:
        sid = _bind(c)
        texts = []
        for body in ({"estimator": "GaussianNB", "features": FEATURES, "target": "churned",
                      "epsilon": 0.5, "where": f"plan <> '{SECRET_LITERAL}'"},
                     {"estimator": "KMeans", "features": FEATURES, "epsilon": 0.5,
                      "options": {"n_clusters": 4}},
                     {"estimator": "PCA", "features": ["monthly_spend", "plan"],
                      "epsilon": 0.25}):
            r = c.post(f"/sessions/{sid}/fit", json=body)
            assert r.status_code == 200, r.text
            texts.append(r.text)
        refused = c.post(f"/sessions/{sid}/fit", json={
            "estimator": "nb", "features": ["email"], "target": "churned",
            "where": f"email = '{SECRET_LITERAL}'"})
        assert refused.status_code == 403
        texts.append(refused.text)
        texts.append(c.get("/products/customers/entries").text)
    wire_text = "\n".join(texts)
    table = pd.read_parquet(next((server.mesh_dir / "customers").glob("**/*.parquet")))
    secrets = {str(v) for col in ("email", "full_name", "customer_id", "phone", "postcode")
               if col in table for v in table[col].dropna().head(2000)
               if len(str(v)) >= 7 and not str(v).isdigit()}  # digits alone match numbers
    assert secrets and not [v for v in secrets if v in wire_text]
    assert SECRET_LITERAL not in wire_text  # the card's and the ledger's query are redacted
    spends = {str(round(v, 2)) for v in table["monthly_spend"].head(500) if v not in (0, 500)}
    assert not [v for v in spends if f'"{v}"' in wire_text or f" {v}," in wire_text]
    log = server.log.read_text() + server.log.with_suffix(".stderr").read_text()
    assert "/fit 200" in log and SECRET_LITERAL not in log
    assert not [v for v in secrets if v in log]


def test_a_session_runs_one_fit_at_a_time(server: LiveServer) -> None:
    """The fit holds its session's claim, like a query: other work on the session is refused
    at once (409 session-busy) until it ends, never queued or run beside it."""
    token = server.token("fit-busy", rate=10**6)
    body = {"estimator": "PCA", "features": FEATURES, "epsilon": 0.5}
    answers: list[httpx.Response] = []
    with _raw(server, token) as c:
        sid = _bind(c)

        def fit() -> None:
            with _raw(server, token) as f:
                while True:  # a probe below may hold the session at the moment it asks
                    r = f.post(f"/sessions/{sid}/fit", json=body)
                    if r.status_code != 409:
                        answers.append(r)
                        return

        worker = threading.Thread(target=fit)
        worker.start()
        busy = 0
        while worker.is_alive():
            r = c.post(f"/sessions/{sid}/explain", json={
                "sql": "SELECT COUNT(*) AS n FROM customers.accounts"})
            assert r.status_code in (200, 409), r.text
            if r.status_code == 409:
                assert r.json()["error"]["rule"] == "session-busy"
                busy += 1
            time.sleep(0.01)
        worker.join()
        assert answers[0].status_code == 200, answers[0].text
        assert busy > 0  # the fit ran while the probes asked
        assert math.isclose(_spent(c, sid), 0.5, abs_tol=1e-9)
