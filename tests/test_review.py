"""The owner's review: usage report, minimization, OpenLineage export, contract diff, browser.

Everything runs on a real demo mesh with real SQLite ledgers: sessions are bound, queries run
through DuckDB and diffprivlib, one is rejected, one is served from the release cache, rows are
released to a pseudonymized-rows purpose; the report's numbers are then compared with what the
ledger itself says.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections import Counter
from contextlib import closing
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

import mesh_nb
from mesh_nb.errors import ContractError, MeshError, PolicyViolation
from mesh_nb.ledger.entry import MICRO, canonical_json
from mesh_nb.review import (diff_contracts, export_openlineage, minimization, parse_since,
                            usage_report, validate_event)
from mesh_nb.review.lineage import PRIVACY_FACET, column_lineage
from mesh_nb.review.minimize import NEVER_TOUCHED, NOT_ALLOWED, PURPOSE_UNUSED
from mesh_nb.review.olspec import load_spec
from mesh_nb.widgets.ledger import ANY, LedgerBrowser

CORE = "https://openlineage.io/spec/2-0-2/OpenLineage.json"


# -- a demo mesh with a history ---------------------------------------------------------------


def _play(root: Path) -> dict:
    """Bind, query, get rejected, hit the cache, release rows; returns what happened."""
    m = mesh_nb.open_mesh(root)
    alice = m.bind("customers", purpose="churn-analysis", analyst="alice")
    alice.query("SELECT region, COUNT(*) AS n FROM customers.accounts GROUP BY region",
                epsilon=0.2)
    alice.query("SELECT plan, AVG(monthly_spend) AS spend FROM customers.accounts "
                "WHERE region = 'west' GROUP BY plan", epsilon=0.3)
    with pytest.raises(PolicyViolation):
        alice.query("SELECT email FROM customers.accounts", epsilon=0.1)
    with pytest.raises(PolicyViolation):
        alice.query("SELECT COUNT(*) AS n FROM customers.accounts WHERE phone = '555'",
                    epsilon=0.1)
    cached = alice.query("SELECT region, COUNT(*) AS n FROM customers.accounts "
                         "GROUP BY region", epsilon=0.2)
    assert cached.cached
    m.ledger("customers").append(  # what the post-cell autoscan writes (types and counts)
        "pii.detected", session=alice.id, analyst="alice", purpose="churn-analysis",
        details={"frame": "leads", "columns": ["contact", "who"],
                 "entity_types": {"EMAIL_ADDRESS": 1, "PERSON": 1}, "rows": 40})
    alice.end()
    bob = m.bind("customers", purpose="support-operations", analyst="bob", acknowledge=True)
    rows = bob.rows("SELECT customer_id, email, region FROM customers.accounts LIMIT 5")
    bob.end()
    carol = m.bind(["customers", "sales"], purpose="churn-analysis", analyst="carol")
    carol.query("SELECT c.region, SUM(o.amount) AS total FROM customers.accounts AS c "
                "JOIN sales.orders AS o ON c.customer_id = o.customer_id GROUP BY c.region",
                epsilon=0.4)  # carol's session stays open
    dave = m.bind("customers", purpose="marketing-research", analyst="dave")
    dave.query("SELECT plan, COUNT(*) AS n FROM customers.accounts GROUP BY plan",
               epsilon=0.25)
    dave.end()
    return {"rows_released": len(rows.frame), "sessions": {s.id for s in (alice, bob, carol,
                                                                           dave)}}


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One demo mesh with the history above (read-only for the tests that use it)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MESH_NB_OWNER_HOME", raising=False)
        root = tmp_path_factory.mktemp("review") / "mesh"
        mesh_nb.demo_mesh(root)
        return root, _play(root)


@pytest.fixture
def mesh(played, monkeypatch) -> mesh_nb.Mesh:
    monkeypatch.delenv("MESH_NB_OWNER_HOME", raising=False)
    return mesh_nb.open_mesh(played[0])


@pytest.fixture
def own_copy(played, tmp_path: Path, monkeypatch) -> Path:
    """A copy of the played mesh, ledger and owner keys included, that a test may damage."""
    monkeypatch.delenv("MESH_NB_OWNER_HOME", raising=False)
    target = tmp_path / "mesh"
    shutil.copytree(played[0], target)
    copy = mesh_nb.open_mesh(target)
    for name, product in mesh_nb.open_mesh(played[0]).products.items():
        if product.owner_dir.exists():  # the owner's keys live outside the product folder
            shutil.copytree(product.owner_dir, copy.product(name).owner_dir)
    return target


def _tamper(root: Path, seq: int) -> None:
    """Rewrite one entry's epsilon the way an attacker with the file would."""
    path = root / "customers" / ".mesh_nb" / "ledger.sqlite"
    with closing(sqlite3.connect(path)) as db:
        body = json.loads(db.execute("SELECT body FROM entries WHERE seq = ?",
                                     (seq,)).fetchone()[0])
        body["details"]["rows"] = 1
        db.execute("UPDATE entries SET body = ? WHERE seq = ?", (canonical_json(body), seq))
        db.commit()


# -- usage report -------------------------------------------------------------------------------


def test_report_tables_match_the_ledger(mesh) -> None:
    product = mesh.product("customers")
    led = product.ledger
    report = usage_report(product)
    usage = report.tables["usage"].set_index(["purpose", "analyst"])

    bound = Counter((e.purpose, e.analyst) for e in led.entries(kind="session.bound"))
    released = Counter((e.purpose, e.analyst) for e in led.entries(kind="query.released"))
    cached = Counter((e.purpose, e.analyst) for e in led.entries(kind="query.released")
                     if e.details.get("cached"))
    rejected = Counter((e.purpose, e.analyst) for e in led.entries(kind="query.rejected"))
    spent: Counter = Counter()
    for e in led.entries():
        spent[(e.purpose, e.analyst)] += e.epsilon_micro
    assert set(usage.index) == set(bound)
    for key in bound:
        row = usage.loc[key]
        assert row["sessions"] == bound[key]
        assert row["releases"] == released[key]
        assert row["cached"] == cached[key]
        assert row["rejected"] == rejected[key]
        assert round(row["epsilon"] * MICRO) == spent[key]
    # the scenario, spelled out
    assert usage.loc[("churn-analysis", "alice"), "releases"] == 3
    assert usage.loc[("churn-analysis", "alice"), "cached"] == 1
    assert usage.loc[("churn-analysis", "alice"), "epsilon"] == pytest.approx(0.5)
    assert usage.loc[("churn-analysis", "alice"), "pii_alerts"] == 1
    assert usage.loc[("support-operations", "bob"), "rows_released"] == 5
    assert usage.loc[("churn-analysis", "carol"), "epsilon"] == pytest.approx(0.4)
    assert usage["sessions"].sum() == 4


def test_report_budgets_and_timeline_match_the_ledger(mesh) -> None:
    product = mesh.product("customers")
    report = usage_report(product)
    budget = report.tables["budget"].set_index(["purpose", "holder"])
    churn = product.contract.purposes["churn-analysis"].budget
    for analyst in ("alice", "carol"):
        row = budget.loc[("churn-analysis", analyst)]
        eps, _ = product.ledger.spent(analyst, "churn-analysis", churn)
        assert row["window_epsilon"] == pytest.approx(eps)
        assert row["budget_epsilon"] == churn.epsilon
        assert row["remaining_epsilon"] == pytest.approx(churn.epsilon - eps)
        assert "<svg" in row["trend"]
    shared = budget.loc[("marketing-research", "(everyone)")]  # a per-purpose budget
    assert shared["scope"] == "per-purpose"
    assert shared["epsilon"] == pytest.approx(0.25)
    assert ("support-operations", "bob") not in budget.index  # row access: no budget
    timeline = report.tables["timeline"]
    alice = timeline[(timeline["holder"] == "alice")]
    assert list(alice["epsilon"]) == [0.2, 0.3]
    assert list(alice["cumulative"]) == pytest.approx([0.2, 0.5])


def test_report_rejections_pii_and_verify(mesh) -> None:
    report = usage_report(mesh.product("customers"))
    rejected = report.tables["rejected"].set_index("rule")
    by_rule = Counter(e.details["rule"] for e in
                      mesh.ledger("customers").entries(kind="query.rejected"))
    assert dict(rejected["count"]) == dict(by_rule)
    assert by_rule == {"identifier-in-output": 1, "identifier-in-where": 1}
    assert "'555'" not in rejected.loc["identifier-in-where", "example"]  # literals redacted
    pii = report.tables["pii"].set_index("entity_type")
    assert set(pii.index) == {"EMAIL_ADDRESS", "PERSON"}
    assert pii.loc["EMAIL_ADDRESS", "frame"] == "leads"
    assert pii.loc["EMAIL_ADDRESS", "columns"] == 1
    verify = report.tables["verify"].iloc[0]
    assert verify["status"] == "ok" and verify["entries"] == len(mesh.ledger("customers"))
    assert report.verified


def test_report_since_limits_the_period(mesh) -> None:
    product = mesh.product("customers")
    entries = product.ledger.entries()
    later = next(e for e in entries if e.kind == "session.bound" and e.analyst == "carol")
    report = usage_report(product, since=later.ts)
    usage = report.tables["usage"]
    assert set(usage["analyst"]) == {"carol", "dave"}
    assert report.tables["rejected"].empty
    future = usage_report(product, since=datetime.now(timezone.utc) + timedelta(days=1))
    assert future.tables["usage"].empty
    assert future.tables["minimization"]["flagged"].all()  # nothing touched in an empty period
    assert "none in the period" in future.to_html()


def test_report_over_a_whole_mesh_has_one_verify_row_per_product(mesh) -> None:
    report = usage_report(mesh)
    assert report.products == ["customers", "marketing", "sales"]
    assert list(report.tables["verify"]["product"]) == ["customers", "marketing", "sales"]
    sales = report.tables["usage"]
    assert set(sales[sales["product"] == "sales"]["analyst"]) == {"carol"}


def test_report_html_is_self_contained_and_holds_no_data_value(mesh, played) -> None:
    root = played[0]
    text = usage_report(mesh.product("customers")).to_html()
    assert text.startswith("<!DOCTYPE html>")
    for table_id in ("mesh-nb-usage", "mesh-nb-budget", "mesh-nb-rejected", "mesh-nb-pii",
                     "mesh-nb-minimization", "mesh-nb-collection"):
        assert f'id="{table_id}"' in text
    assert "<script" not in text and "<link" not in text and "@import" not in text
    assert not re.findall(r"(?:src|href)=\"https?://", text)
    assert "<svg" in text  # the epsilon trend, inline
    accounts = pd.read_parquet(root / "customers" / "accounts.parquet")
    values = set()
    for col in ("email", "full_name", "phone", "customer_id", "postcode"):
        values |= set(accounts[col].astype(str))
    # whole tokens (a 5-digit postcode may well appear inside 0.333333); values with spaces
    # or brackets (names, phone numbers) as substrings
    tokens = set(re.findall(r"[\w.@+-]+", text))
    leaked = [v for v in values
              if (v in text if re.search(r"[\s()]", v) else v in tokens)]
    assert not leaked, f"{len(leaked)} data value(s) in the report"
    assert len(values) > 1000
    assert "'west'" not in text  # the literal of a released query


def test_report_shows_a_tampered_ledger(own_copy) -> None:
    _tamper(own_copy, 3)
    m = mesh_nb.open_mesh(own_copy)
    report = usage_report(m.product("customers"))
    verify = report.tables["verify"].iloc[0]
    assert verify["status"] == "TAMPERED" and verify["bad_entry"] == 3
    assert not report.verified
    assert "TAMPERED" in report.to_html()


def test_parse_since_forms() -> None:
    now = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
    assert parse_since("7d", now=now) == now - timedelta(days=7)
    assert parse_since("2026-11-01") == datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert parse_since(date(2026, 11, 1)) == datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert parse_since(None) is None
    with pytest.raises(MeshError, match="not a date"):
        parse_since("last tuesday")


def test_one_duration_parser_serves_contracts_rules_and_the_command_line() -> None:
    from mesh_nb.durations import period_days
    from mesh_nb.server.tokens import parse_expiry

    assert [period_days(p) for p in ("P30D", "P4W", "P6M", "P1Y", "P1Y6M")] == \
        [30, 28, 180, 365, 545]
    assert [period_days(p) for p in ("PT12H", "P1.5D", "30d", "p4w", "", None, "P")] == \
        [None] * 7
    now = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
    assert parse_since("2w", now=now) == now - timedelta(weeks=2)
    assert parse_expiry("90m", now) == "2026-11-20T13:30:00+00:00"
    with pytest.raises(MeshError, match="--expires 'soon' is not a date"):
        parse_expiry("soon", now)


# -- minimization -------------------------------------------------------------------------------


def _line_of(path: Path, pattern: str) -> int:
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        if re.search(pattern, line):
            return i
    raise AssertionError(pattern)


def test_minimization_counts_touches_and_flags_untouched_columns(mesh) -> None:
    product = mesh.product("customers")
    mini = minimization(product)
    t = mini.by_purpose.set_index(["purpose", "allowed"])
    touched: Counter = Counter()
    for e in product.ledger.entries(kind="query.released"):
        for col in set(e.details["columns"]):
            p, table, c = col.split(".")
            if p == "customers":
                touched[(e.purpose, c)] += 1
    for (purpose, allowed), row in t.iterrows():
        assert row["touches"] == touched[(purpose, allowed)]
        assert row["flagged"] == (touched[(purpose, allowed)] == 0)
    assert t.loc[("churn-analysis", "region"), "touches"] == 4  # alice x3 (one cached), carol
    assert t.loc[("churn-analysis", "birth_date"), "advice"] == NEVER_TOUCHED
    contract = product.contract.path
    line = _line_of(contract, r"allowedColumns: \[region, plan, signup_date")
    assert t.loc[("churn-analysis", "birth_date"), "line"] == line
    assert t.loc[("churn-analysis", "birth_date"), "where"] == f"{contract}:{line}"
    assert not t.loc[("marketing-research", "plan"), "flagged"]  # dave's query
    assert t.loc[("support-operations", "postcode"), "flagged"]
    coll = mini.collection.set_index("column")
    assert coll.loc["phone", "advice"] == NOT_ALLOWED  # no purpose allows it
    assert coll.loc["phone", "line"] == _line_of(contract, r"^  - name: phone")
    assert not coll.loc["customer_id", "flagged"]  # the privacy unit stays
    assert "candidate to drop" in str(mini)


def test_minimization_names_the_exact_line_of_a_block_list(demo_dir: Path) -> None:
    contract = demo_dir / "customers" / "datacontract.yaml"
    text = contract.read_text()
    flow = "allowedColumns: [region, plan, monthly_spend]"
    block = ("allowedColumns:\n          - region\n          - plan\n"
             "          - monthly_spend  # spend per plan")
    assert flow in text
    contract.write_text(text.replace(flow, block))
    m = mesh_nb.open_mesh(demo_dir)
    s = m.bind("customers", purpose="marketing-research", analyst="erin")
    s.query("SELECT region, COUNT(*) AS n FROM customers.accounts GROUP BY region",
            epsilon=0.1)
    t = minimization(m.product("customers")).by_purpose
    t = t[t["purpose"] == "marketing-research"].set_index("allowed")
    assert not t.loc["region", "flagged"]
    assert t.loc["plan", "flagged"] and t.loc["monthly_spend", "flagged"]
    assert t.loc["plan", "line"] == _line_of(contract, r"^\s+- plan$")
    assert t.loc["monthly_spend", "line"] == _line_of(contract, r"- monthly_spend  #")
    other = minimization(m.product("customers")).by_purpose
    unused = other[other["purpose"] == "support-operations"]
    assert set(unused["advice"]) == {PURPOSE_UNUSED}


# -- OpenLineage --------------------------------------------------------------------------------


def test_export_is_one_parent_per_session_and_one_child_per_release(mesh, tmp_path) -> None:
    product = mesh.product("customers")
    led = product.ledger
    out = export_openlineage(product, tmp_path / "lineage.jsonl", mesh=mesh)
    lines = (tmp_path / "lineage.jsonl").read_text().splitlines()
    assert len(lines) == len(out.events)
    events = [json.loads(x) for x in lines]
    assert events == out.events

    sessions = {e.session for e in led.entries(kind="session.bound")}
    releases = led.entries(kind="query.released")
    parents = {ev["run"]["runId"] for ev in events if ev["job"]["name"].startswith("session.")}
    children = [ev for ev in events if ev["job"]["name"].startswith("release.")]
    assert len(parents) == len(sessions) == out.sessions == 4
    assert len({ev["run"]["runId"] for ev in children}) == len(releases) == out.releases
    for ev in children:
        assert ev["run"]["facets"]["parent"]["run"]["runId"] in parents
    completes = [ev for ev in children if ev["eventType"] == "COMPLETE"]
    by_hash = {e.hash: e for e in releases}
    for ev in completes:
        privacy = ev["run"]["facets"][PRIVACY_FACET]
        entry = by_hash[privacy["ledgerEntryHash"]]
        assert privacy["ledgerSeq"] == entry.seq
        assert privacy["epsilon"] == entry.epsilon and privacy["delta"] == entry.delta
        assert privacy["purpose"] == entry.purpose and privacy["analyst"] == entry.analyst
        assert privacy["contractId"] == product.contract.id
        assert privacy["contractVersion"] == product.contract.version
        assert privacy["access"] == product.contract.purposes[entry.purpose].access
        assert ev["job"]["facets"]["sql"]["query"] == entry.details["query"]
        assert "'west'" not in ev["job"]["facets"]["sql"]["query"]
        assert ev["outputs"][0]["name"] == f"releases.{entry.details['release']}"
        assert "columnLineage" in ev["outputs"][0]["facets"]
    # open sessions end on RUNNING, ended ones on COMPLETE
    carol = {ev["eventType"] for ev in events if ev["job"]["name"] == "session.churn-analysis"
             and ev["run"]["facets"][PRIVACY_FACET]["analyst"] == "carol"}
    assert carol == {"START", "RUNNING"}


def test_export_datasets_carry_classification_tags_and_column_lineage(mesh, tmp_path) -> None:
    out = export_openlineage(mesh.product("customers"), tmp_path / "l.jsonl", mesh=mesh)
    join = next(ev for ev in out.events if ev["eventType"] == "COMPLETE"
                and "SUM(o.amount)" in ev["job"]["facets"].get("sql", {}).get("query", ""))
    inputs = {d["facets"]["symlinks"]["identifiers"][0]["name"]: d for d in join["inputs"]}
    assert set(inputs) == {"customers.accounts", "sales.orders"}
    tags = {(t["field"], t["key"]): t["value"]
            for t in inputs["customers.accounts"]["facets"]["tags"]["tags"]}
    assert tags[("email", "classification")] == "direct-identifier"
    assert tags[("email", "piiEntity")] == "EMAIL_ADDRESS"
    assert tags[("region", "classification")] == "public"
    assert {f["name"] for f in inputs["sales.orders"]["facets"]["schema"]["fields"]} >= \
        {"amount", "customer_id"}
    lineage = join["outputs"][0]["facets"]["columnLineage"]
    total = lineage["fields"]["total"]["inputFields"][0]
    assert (total["name"], total["field"]) == (inputs["sales.orders"]["name"], "amount")
    assert total["transformations"][0]["subtype"] == "AGGREGATION"
    assert total["transformations"][0]["masking"] is True
    indirect = {(d["field"], d["transformations"][0]["subtype"]) for d in lineage["dataset"]}
    assert ("region", "GROUP_BY") in indirect and ("customer_id", "JOIN") in indirect


def test_export_events_validate_against_the_spec_schemas(mesh, tmp_path) -> None:
    out = export_openlineage(mesh, tmp_path / "all.jsonl")  # every product of the mesh
    assert out.events
    for ev in out.events:
        assert validate_event(ev) == []
    spec = load_spec()
    assert CORE in spec.documents
    for url in (CORE, "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json",
                "https://openlineage.io/spec/facets/1-1-0/SQLJobFacet.json",
                "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json",
                "https://openlineage.io/spec/facets/1-0-0/TagsDatasetFacet.json",
                "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json"):
        assert url in spec.sources
    used = {f["_schemaURL"].split("#")[0] for ev in out.events for f in _all_facets(ev)}
    assert used <= set(spec.documents)  # every facet was checked by a known schema


def _all_facets(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("facets", "inputFacets", "outputFacets") and isinstance(v, dict):
                yield from (f for f in v.values() if isinstance(f, dict))
            else:
                yield from _all_facets(v)
    elif isinstance(node, list):
        for x in node:
            yield from _all_facets(x)


def test_validation_catches_what_breaks_the_spec(mesh, tmp_path) -> None:
    out = export_openlineage(mesh.product("customers"), tmp_path / "l.jsonl", mesh=mesh)
    good = next(ev for ev in out.events if ev["eventType"] == "COMPLETE" and ev["outputs"])
    bad = json.loads(json.dumps(good))
    bad["run"]["runId"] = "not-a-uuid"
    del bad["job"]["name"]
    bad["run"]["facets"][PRIVACY_FACET]["epsilon"] = "0.2"
    bad["job"]["facets"]["sql"].pop("query")
    field = next(iter(bad["outputs"][0]["facets"]["columnLineage"]["fields"].values()))
    field.pop("inputFields")
    bad["run"]["facets"]["mystery"] = {"_producer": "urn:x", "_schemaURL": "urn:nowhere#/x"}
    problems = "\n".join(validate_event(bad))
    assert "'name' is a required property" in problems
    assert "'query' is a required property" in problems
    assert "'inputFields' is a required property" in problems
    assert "is not of type 'number'" in problems
    assert "no schema known" in problems
    if "uuid" in __import__("jsonschema").Draft202012Validator.FORMAT_CHECKER.checkers:
        assert "'not-a-uuid' is not a 'uuid'" in problems


def test_export_since_keeps_whole_sessions(mesh, tmp_path) -> None:
    product = mesh.product("customers")
    carol = next(e for e in product.ledger.entries(kind="query.released")
                 if e.analyst == "carol")
    out = export_openlineage(product, tmp_path / "l.jsonl", since=carol.ts, mesh=mesh)
    analysts = {ev["run"]["facets"][PRIVACY_FACET]["analyst"] for ev in out.events
                if PRIVACY_FACET in ev["run"]["facets"]}
    assert analysts == {"carol", "dave"}
    assert out.sessions == 2 and out.releases == 2
    assert any(ev["eventType"] == "START" and ev["job"]["name"].startswith("session.")
               for ev in out.events)  # carol's session START predates `since` but is kept


def test_column_lineage_of_redacted_queries() -> None:
    cols = ["customers.accounts.plan", "customers.accounts.monthly_spend",
            "customers.accounts.region"]
    direct, indirect = column_lineage(
        "SELECT plan, AVG(monthly_spend) AS spend FROM customers.accounts WHERE region = ? "
        "GROUP BY plan", cols)
    assert direct == {"plan": (["customers.accounts.plan"], False),
                      "spend": (["customers.accounts.monthly_spend"], True)}
    assert ("customers.accounts.region", "FILTER") in indirect
    assert ("customers.accounts.plan", "GROUP_BY") in indirect
    direct, indirect = column_lineage("(unparseable", cols)
    assert direct == {} and len(indirect) == 3


# -- contract diff ------------------------------------------------------------------------------


def _edit(src: Path, target: Path, *pairs: tuple[str, str]) -> Path:
    text = src.read_text()
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new)
    target.write_text(text)
    return target


def test_diff_says_what_each_change_does(demo_dir: Path) -> None:
    old = demo_dir / "customers" / "datacontract.yaml"
    new = _edit(
        old, old.with_name("datacontract.next.yaml"),
        ("version: 1.0.0", "version: 1.1.0"),
        ("allowedColumns: [region, plan, signup_date, monthly_spend, churned, birth_date]",
         "allowedColumns: [region, plan, monthly_spend, churned, postcode]"),
        ("budget: {epsilon: 3.0, delta: 1.0e-06, scope: per-analyst, period: P30D}",
         "budget: {epsilon: 5.0, delta: 1.0e-06, scope: per-purpose, period: P30D}"),
        ("maxEpsilonPerQuery: 1.0", "maxEpsilonPerQuery: 0.5"),
        ("access: pseudonymized-rows", "access: raw-rows"),
        ("    classification: quasi-identifier\n    description: Average monthly spend",
         "    classification: public\n    description: Average monthly spend"),
        ("monthly_spend: [0, 500]", "monthly_spend: [0, 1000]"),
        ("validValues: [basic, plus, pro]", "validValues: [basic, plus, pro, enterprise]"),
        ("maxContributions: 2", "maxContributions: 3"),
        ("      marketing-research:\n",
         "      fraud-check:\n        description: Spot fraud rings.\n"
         "        access: dp-aggregate\n        allowedColumns: [region]\n"
         "        budget: {epsilon: 1.0, delta: 1.0e-06}\n      marketing-research:\n"))
    d = diff_contracts(old, new)
    by = {(c.scope, c.what): c for c in d.changes}
    churn = "purpose churn-analysis"
    added = by[(churn, "allowed column `postcode` added")]
    assert added.direction == "widens" and "widens access" in added.effect
    assert "quasi-identifier" in added.effect
    assert added.line == _line_of(new, r"allowedColumns: \[region, plan, monthly_spend, "
                                       r"churned, postcode\]")
    removed = by[(churn, "allowed column `birth_date` removed")]
    assert removed.direction == "narrows" and removed.file == str(old)
    assert by[(churn, "budget epsilon 3 -> 5")].effect.startswith("loosens budget")
    assert by[(churn, "budget scope per-analyst -> per-purpose")].effect.startswith(
        "tightens budget")
    assert by[(churn, "maxEpsilonPerQuery 1 -> 0.5")].direction == "narrows"
    assert by[("purpose support-operations", "access pseudonymized-rows -> raw-rows")] \
        .direction == "widens"
    assert by[("purpose fraud-check", "purpose added")].direction == "widens"
    spend = "column accounts.monthly_spend"
    assert by[(spend, "classification quasi-identifier -> public")].effect.startswith(
        "loosens protection")
    bounds = by[(spend, "bounds [0, 500] -> [0, 1000]")]
    assert "more noise" in bounds.effect
    assert bounds.line == _line_of(new, r"monthly_spend: \[0, 1000\]")  # the privacy block's
    assert ("column accounts.plan", "categories added enterprise") in by
    assert ("product", "maxContributions 2 -> 3") in by
    assert ("product", "version unchanged (1.1.0)") not in by
    text = str(d)
    assert "widens access" in text and "tightens budget" in text
    assert f"{new}:{added.line}" in text
    assert len(d.widening) == sum(c.direction == "widens" for c in d.changes) >= 5


def test_diff_of_a_purpose_removal_and_tightening(demo_dir: Path) -> None:
    old = demo_dir / "customers" / "datacontract.yaml"
    text = old.read_text()
    start = text.index("      marketing-research:\n")
    new = old.with_name("datacontract.next.yaml")
    new.write_text(text[:start].replace("budget: {epsilon: 3.0, delta: 1.0e-06, scope: "
                                        "per-analyst, period: P30D}",
                                        "budget: {epsilon: 2.0, delta: 1.0e-06, scope: "
                                        "per-analyst}"))
    d = diff_contracts(old, new)
    whats = {c.what: c for c in d.changes}
    assert whats["purpose removed"].direction == "narrows"
    assert whats["purpose removed"].line == _line_of(old, r"^      marketing-research:")
    assert whats["budget epsilon 3 -> 2"].effect.startswith("tightens budget")
    assert whats["budget period 30 days -> none"].effect == "tightens budget: spends never expire"
    assert whats["version unchanged (1.0.0)"].direction == "neutral"


def test_diff_of_identical_contracts_is_empty(demo_dir: Path) -> None:
    c = demo_dir / "customers" / "datacontract.yaml"
    d = diff_contracts(c, demo_dir / "customers")
    assert not d and len(d) == 0
    assert "no change" in str(d)


def test_diff_refuses_an_invalid_contract(demo_dir: Path) -> None:
    old = demo_dir / "customers" / "datacontract.yaml"
    new = _edit(old, old.with_name("broken.yaml"), ("access: dp-aggregate  # only",
                                                     "access: everything  # only"))
    with pytest.raises(ContractError) as info:
        diff_contracts(old, new)
    assert any(p.line == _line_of(new, "access: everything") for p in info.value.problems)


# -- the ledger browser -------------------------------------------------------------------------


def test_browser_filters(mesh) -> None:
    led = mesh.ledger("customers")
    b = LedgerBrowser(led, purposes=list(mesh.product("customers").contract.purposes))
    assert len(b.rows) == len(led) and b.total == len(led)
    assert [r["seq"] for r in b.rows] == sorted((e.seq for e in led.entries()), reverse=True)
    assert set(b.analyst.options) == {ANY, "alice", "bob", "carol", "dave"}
    assert "marketing-research" in b.purpose.options
    b.analyst.value = "alice"
    assert {r["analyst"] for r in b.rows} == {"alice"}
    assert len(b.rows) == len(led.entries(analyst="alice"))
    b.kind.value = "query.rejected"
    assert sorted(r["rule"] for r in b.rows) == ["identifier-in-output", "identifier-in-where"]
    b.analyst.value = ANY
    b.kind.value = "query.released"
    b.purpose.value = "churn-analysis"
    released = led.entries(kind="query.released", purpose="churn-analysis")
    assert [r["seq"] for r in b.rows] == [e.seq for e in reversed(released)]
    assert any("customers.accounts.region" in r["columns"] for r in b.rows)
    assert sum(r["epsilon"] for r in b.rows) == pytest.approx(sum(e.epsilon for e in released))
    b.kind.value = ANY
    b.purpose.value = ANY
    b.since.value = date.today() + timedelta(days=2)
    assert b.rows == [] and "0 matching entries" in b.table.value
    b.since.value = None
    assert len(b.rows) == len(led)


def test_browser_rows_hold_no_query_text_or_value(mesh) -> None:
    b = LedgerBrowser(mesh.ledger("customers"))
    assert "query" not in b.rows[0]
    html = b.table.value
    assert "SELECT" not in html and "'west'" not in html
    pii = [r for r in b.rows if r["kind"] == "pii.detected"]
    assert pii and "EMAIL_ADDRESS×1" in pii[0]["detail"]
    assert LedgerBrowser(mesh.ledger("customers"), limit=3).rows.__len__() == 3


def test_browser_verify_button(own_copy) -> None:
    m = mesh_nb.open_mesh(own_copy)
    b = LedgerBrowser(m.ledger("customers"))
    b.verify_button.click()
    assert b.ok is True and "ledger OK" in b.verify_status.value
    _tamper(own_copy, 4)
    assert b.verify() is False
    assert "TAMPERED" in b.verify_status.value and "entry 4" in b.status
