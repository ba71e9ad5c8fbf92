"""The API fuzzed against a real ``mesh-nb serve`` on 127.0.0.1 (hypothesis): whatever a client
sends — any path, method, parameter, header or body, structured or not — the answer is never a
500, an error is always the ``{"error": {...}}`` body, no text names a path of the server's
machine, and no unexpected exception reaches the server's last-resort handler (its log line
would carry ``error=<Type>#ref``).

Queries are built from SQL fragments, so many reach the parser, the policy and the engine
(including the ``CASE WHEN <person> THEN <fails>`` shapes), and fits are built from feature
expressions, estimators and options, so some train; the budget runs out on the way, which is
part of what is fuzzed.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from live_server import LiveServer, demo_server

CASES = 2400
"""Fuzz cases in one run (the issue asks for at least 2,000)."""
FIT_CASES = 300
"""Fuzz cases of the fit endpoint alone."""


@pytest.fixture(scope="module")
def server(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from demo_server(demo_root, tmp_path_factory.mktemp("fuzz"))


# -- what a client may send ------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                    st.floats(allow_nan=False), _text)
_json = st.recursive(_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_text, inner, max_size=4)), max_leaves=12)

_SQL = ["SELECT", "COUNT(*)", "AS n", "FROM", "customers.accounts", "sales.orders", "WHERE",
        "GROUP BY", "region", "plan", "monthly_spend", "customer_id", "email", "churned",
        "AVG(monthly_spend)", "SUM(amount)", "CASE WHEN customer_id = 7 THEN 1/0 ELSE 1 END",
        "CASE WHEN email LIKE 'a%' THEN sqrt(-1) END", "1/0", "'x'", "NULL", ",", "(", ")",
        "=", "<", "AND", "OR", "JOIN", "ON", "LIMIT 1", ";", "--", "/*", "read_csv('/etc/pas')",
        "customers.accounts a JOIN sales.orders o ON a.customer_id = o.customer_id",
        "MEDIAN(monthly_spend)", "HISTOGRAM(plan)", "9e999", "-- \n", "\x00", "é"]
_sql = st.one_of(
    st.lists(st.sampled_from(_SQL), min_size=1, max_size=14).map(" ".join),
    st.sampled_from(["SELECT COUNT(*) AS n FROM customers.accounts",
                     "SELECT region, COUNT(*) AS n FROM customers.accounts GROUP BY region",
                     "SELECT AVG(monthly_spend) AS a FROM customers.accounts WHERE churned"]),
    _text)
_eps = st.one_of(st.none(), st.floats(), st.integers(-5, 10**12), _text)
_names = st.one_of(st.sampled_from(["customers", "sales", "nope", "..", "customers/../sales"]),
                   _text)
_FIT_ALLOWED = ["monthly_spend", "plan", "region", "churned", "monthly_spend * 2 AS m2",
                "CASE WHEN monthly_spend > 100 THEN 'hi' ELSE 'lo' END AS band"]
_FIT_HOSTILE = ["signup_date", "email", "customer_id", "full_name", "1/0", "COUNT(*)",
                "CASE WHEN customer_id = 7 THEN 1/0 ELSE monthly_spend END AS s",
                "CAST(monthly_spend * 1000 AS TINYINT) AS t", "plan AS plan",
                "monthly_spend FROM customers.accounts", "(SELECT 1)"]

def _mostly(valid: st.SearchStrategy[Any], wrong: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``valid`` three times in four: a fit body must get every field right to train."""
    return st.integers(0, 3).flatmap(lambda i: valid if i else wrong)  # one_of would dedupe


_fit_input = st.one_of(st.sampled_from(_FIT_ALLOWED + _FIT_HOSTILE), _text)
_estimators = st.sampled_from(["LogisticRegression", "GaussianNB", "LinearRegression",
                               "KMeans", "PCA", "logistic", "nb", "pca",
                               "RandomForestClassifier"])
_options = st.dictionaries(st.sampled_from(["C", "max_iter", "fit_intercept", "n_clusters",
                                            "n_components", "solver"]),
                           st.one_of(st.booleans(), st.integers(0, 20), st.floats(0, 100)),
                           max_size=2)
_purposes = st.one_of(st.sampled_from(["churn-analysis", "support-operations",
                                       "marketing-research", "fraud-review", "nope"]), _text)


def _bodies(path: str) -> st.SearchStrategy[Any]:
    """A body shaped like the endpoint's model, with any field's value or name gone wrong."""
    shaped: dict[str, st.SearchStrategy[Any]] = {
        "sessions": st.fixed_dictionaries(
            {"products": st.one_of(st.lists(_names, max_size=40), _json),
             "purpose": st.one_of(_purposes, _json)},
            optional={"acknowledge": st.one_of(st.booleans(), _json),
                      "analyst": st.one_of(_text, _json), "extra": _json}),
        "query": st.fixed_dictionaries(
            {"sql": st.one_of(_sql, _json)},
            optional={"epsilon": _eps, "delta": _eps,
                      "mechanism": st.one_of(st.sampled_from(["laplace", "gaussian"]), _text)}),
        "fit": st.fixed_dictionaries(
            {"estimator": _mostly(_estimators, st.one_of(_text, _json)),
             "features": _mostly(
                 st.lists(st.sampled_from(_FIT_ALLOWED), min_size=1, max_size=4, unique=True),
                 st.one_of(st.lists(_fit_input, max_size=5),
                           st.lists(_fit_input, min_size=60, max_size=70), _json))},
            optional={"target": _mostly(st.sampled_from([None, "churned", "monthly_spend"]),
                                        st.one_of(_fit_input, _json)),
                      "epsilon": _mostly(st.sampled_from([0.5, 1.0]), _eps),
                      "where": _mostly(st.sampled_from(["plan <> 'basic'", "1/0 > 0",
                                                        "signup_date < '2026-01-01'"]),
                                       st.one_of(_sql, _json)),
                      "evaluate": _mostly(st.booleans(), _json),
                      "table": _mostly(st.just("accounts"), st.one_of(st.just("orders"),
                                                                      _text)),
                      "product": _mostly(st.just("customers"), st.one_of(_names, _json)),
                      "options": _mostly(st.one_of(st.just({}), _options), st.one_of(
                          st.dictionaries(_text, _scalar, max_size=10), _json))}),
        "pii": st.fixed_dictionaries(
            {"frame": st.one_of(_text, _json), "columns": st.one_of(st.lists(_text), _json),
             "entity_types": st.one_of(st.dictionaries(
                 st.one_of(st.sampled_from(["EMAIL_ADDRESS", "PERSON"]), _text),
                 st.integers(-2, 2**40)), _json),
             "rows": st.one_of(st.integers(-2**70, 2**70), _json)}),
        "requests": st.fixed_dictionaries(
            {"products": st.one_of(st.lists(_names, max_size=40), _json),
             "purpose": st.one_of(_purposes, _json), "reason": st.one_of(_text, _json)}),
    }
    key = next((k for k in ("query", "explain", "rows", "fit", "pii", "requests",
                            "sessions")
                if path.endswith(k)), "")
    shaped["explain"] = shaped["rows"] = shaped["query"]
    if key == "fit":  # many fields, each may go wrong: shaped more often, or none would train
        return _mostly(shaped[key], _json)
    return st.one_of(shaped.get(key, _json), _json)


_ROUTES = [("GET", "/health"), ("GET", "/whoami"), ("GET", "/products"),
           ("POST", "/sessions"), ("DELETE", "/sessions/{sid}"), ("GET", "/sessions/{sid}/budget"),
           ("POST", "/sessions/{sid}/query"), ("POST", "/sessions/{sid}/explain"),
           ("POST", "/sessions/{sid}/rows"), ("POST", "/sessions/{sid}/fit"),
           ("POST", "/sessions/{sid}/pii"),
           ("GET", "/products/{name}/entries"), ("POST", "/requests"), ("GET", "/requests"),
           ("GET", "/requests/{rid}"), ("PUT", "/whoami"), ("GET", "/{name}")]


@st.composite
def requests_(draw: st.DrawFn, sids: list[str]) -> dict[str, Any]:
    """One request: a route (or a made-up path), ids real or not, parameters, headers, body."""
    method, template = draw(st.sampled_from(_ROUTES))
    method = draw(st.one_of(st.just(method), st.sampled_from(["GET", "POST", "PATCH"])))
    sid = draw(st.one_of(st.sampled_from(sids), _text))
    if method == "DELETE":  # ending the shared sessions would leave nothing to fuzz
        sid = draw(_text)
    path = template.format(sid=quote(sid, safe=""), name=quote(draw(_names), safe=""),
                           rid=quote(draw(_text), safe=""))
    params = draw(st.one_of(st.just({}), st.dictionaries(
        st.sampled_from(["kind", "purpose", "session", "since", "analyst", "x", ""]),
        st.one_of(_text, st.sampled_from(["2026-11-01", "not-a-date", "9999-99-99"])),
        max_size=3)))
    headers = {}
    if draw(st.booleans()):
        headers[draw(st.sampled_from(["X-Filler", "Content-Type", "Accept"]))] = draw(
            st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=60))
    kind = draw(st.sampled_from(["json", "json", "json", "raw", "none"]))
    body: dict[str, Any] = {}
    if kind == "json":
        body["content"] = json.dumps(draw(_bodies(path)), ensure_ascii=draw(st.booleans()))
        headers.setdefault("Content-Type", "application/json")
    elif kind == "raw":
        body["content"] = draw(st.binary(max_size=200))
    return {"method": method, "url": path, "params": params, "headers": headers, **body}


@st.composite
def fit_requests(draw: st.DrawFn, sids: list[str]) -> dict[str, Any]:
    """One request to the fit endpoint of a real session: a fit-shaped JSON body."""
    sid = quote(draw(st.sampled_from(sids)), safe="")
    body = draw(_bodies("/fit"))
    return {"method": "POST", "url": f"/sessions/{sid}/fit", "params": {},
            "headers": {"Content-Type": "application/json"},
            "content": json.dumps(body, ensure_ascii=draw(st.booleans()))}


# -- the run ---------------------------------------------------------------------------------

def _fuzz(server: LiveServer, analyst: str, cases: int,
          strategy: Callable[[list[str]], st.SearchStrategy[dict[str, Any]]]) -> Counter[int]:
    """Send ``cases`` requests drawn from ``strategy(session ids)`` with a fresh token of
    ``analyst`` (two churn-analysis sessions); every answer is checked as the module says.
    The statuses seen."""
    root = str(server.mesh_dir.resolve())
    token = server.token(analyst, rate=10**6)
    headers = {"Authorization": f"Bearer {token}"}
    seen: Counter[int] = Counter()
    with httpx.Client(base_url=server.url + "/v1", timeout=120, headers=headers) as c:
        sids = [c.post("/sessions", json={"products": p, "purpose": "churn-analysis"}).json()["id"]
                for p in (["customers"], ["customers", "sales"])]

        @settings(max_examples=cases, deadline=None, database=None,
                  derandomize=bool(os.environ.get("CI")),
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy(sids))
        def one(case: dict[str, Any]) -> None:
            r = c.request(**case)
            seen[r.status_code] += 1
            assert r.status_code != 500 and r.status_code < 600, (case, r.text[:300])
            assert "Traceback" not in r.text and root not in r.text, (case, r.text[:300])
            if r.status_code >= 400:
                assert "type" in r.json()["error"], (case, r.text[:300])

        one()
        assert c.get("/whoami").status_code == 200  # and the server still serves
    bugs = [line for line in server.log.read_text(encoding="utf-8").splitlines()
            if re.search(r" error=\w+#", line)]
    assert not bugs, bugs[:5]
    print(f"fuzz statuses ({analyst}):", dict(sorted(seen.items())))
    return seen


def test_the_api_never_answers_500_to_anything(server: LiveServer) -> None:
    seen = _fuzz(server, "fuzz", CASES, requests_)
    assert sum(seen.values()) >= 2000, seen
    assert len([s for s in seen if s >= 400]) >= 4, seen  # the fuzz reached many refusals
    assert seen[200] + seen[204] > 0, seen  # ... and some requests that went through


def test_fits_never_answer_500(server: LiveServer) -> None:
    """The fit endpoint on its own: its bodies have many fields, so the mixed run above sends
    few that get past the wire; here most reach the policy, and some train (until the
    analyst's budget runs out, which bounds how many do)."""
    seen = _fuzz(server, "fuzz-fit", FIT_CASES, fit_requests)
    assert seen[403] > 0 and seen[422] > 0, seen  # refused by the policy and by the wire
    assert seen[200] > 0, seen  # ... and models that were trained and released
