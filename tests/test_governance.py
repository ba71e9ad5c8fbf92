"""Mesh governance: governance.yaml, every built-in rule kind (passing and failing), drift in the
data, the ledger, plugins through a real entry point, bind refusal, the CLI and its JSON schema.

Real components only: contracts on disk, parquet read by DuckDB, the presidio scan, SQLite
ledgers, and a real (temporary) distribution for the plugin.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import jsonschema
import pandas as pd
import pytest

import mesh_nb
from mesh_nb import PolicyViolation
from mesh_nb.cli import main
from mesh_nb.contract import Budget
from mesh_nb.demo import MARKETING, contract_yaml
from mesh_nb.governance import (GovernanceError, Violation, check_governance, evaluate, schema,
                                to_html, to_json)

CONTACT = ({"channel": "email", "url": "mailto:mark.owner@example.org"},)
OK_PURPOSES = {
    "region-counts": {
        "description": "Leads per region; differentially private counts.",
        "legalBasis": "GDPR Art. 6(1)(f)",
        "access": "dp-aggregate",
        "allowedColumns": ["region", "source", "score", "converted"],
        "budget": {"epsilon": 1.0, "delta": 1.0e-6, "scope": "per-analyst", "period": "P30D"},
    },
    "lead-review": {
        "description": "Row-level review; identifiers are keyed tokens.",
        "legalBasis": "GDPR Art. 6(1)(f)",
        "access": "pseudonymized-rows",
        "allowedColumns": ["lead_id", "email", "region"],
        "approvers": ["mark.owner@example.org"],
        "requiresAcknowledgement": True,
    },
}


def _email_declared(spec):
    """The leads spec with `email` declared as what it is."""
    cols = tuple(replace(c, classification="direct-identifier", pii=True,
                         entity="EMAIL_ADDRESS") if c.name == "email" else c
                 for c in spec.columns)
    return replace(spec, columns=cols)


#: A leads product that passes every demo rule: the base each test breaks in one place.
GOOD = replace(_email_declared(MARKETING), name="leads", id="leads", support=CONTACT,
               retention_years=3, policy={**MARKETING.policy, "purposes": OK_PURPOSES})


@pytest.fixture(scope="module")
def leads_frame(demo_root: Path) -> pd.DataFrame:
    return pd.read_parquet(demo_root / "marketing" / "leads.parquet")


def write_product(root: Path, spec, frame: pd.DataFrame, *, edit=None) -> Path:
    """A product folder: the contract of ``spec`` (``edit`` rewrites its text) and the data."""
    folder = root / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / spec.file, index=False)
    text = contract_yaml(spec)
    (folder / "datacontract.yaml").write_text(edit(text) if edit else text, encoding="utf-8")
    return folder / "datacontract.yaml"


def write_rules(root: Path, *rules: str) -> Path:
    body = "governanceVersion: 1\nrules:\n" + "".join(textwrap.indent(textwrap.dedent(r), "  ")
                                                      for r in rules)
    (root / "governance.yaml").write_text(body, encoding="utf-8")
    return root / "governance.yaml"


def rule(kind: str, params: str = "", *, id: str = "r1", severity: str = "error") -> str:
    text = (f"- id: {id}\n  kind: {kind}\n  severity: {severity}\n"
            f"  description: checks {kind}\n  rationale: the tests say so\n")
    return text + (f"  params: {params}\n" if params else "")


def violations(root: Path, *, data: bool = True, ledger: bool = True) -> list[Violation]:
    return evaluate(mesh_nb.open_mesh(root), data=data, ledger=ledger).violations


def line_of(file: Path, needle: str, after: str | None = None) -> int:
    """1-based line of the first line containing ``needle`` (after the line holding ``after``)."""
    lines = file.read_text().splitlines()
    start = next(i for i, s in enumerate(lines) if after in s) if after else 0
    return next(i for i, s in enumerate(lines) if i >= start and needle in s) + 1


@pytest.fixture
def mesh_root(tmp_path: Path, leads_frame: pd.DataFrame) -> Path:
    root = tmp_path / "mesh"
    write_product(root, GOOD, leads_frame)
    return root


# -- required-fields ------------------------------------------------------------------------

def test_required_fields(mesh_root: Path, leads_frame: pd.DataFrame) -> None:
    write_rules(mesh_root, rule("required-fields",
                                "{purpose: [legalBasis, description], product: [owner, contact]}"))
    assert violations(mesh_root, data=False) == []
    purposes = {**OK_PURPOSES, "region-counts": {
        k: v for k, v in OK_PURPOSES["region-counts"].items() if k != "legalBasis"}}
    file = write_product(mesh_root, replace(GOOD, support=(), policy={
        **GOOD.policy, "purposes": purposes}), leads_frame)
    found = violations(mesh_root, data=False)
    assert sorted(v.message for v in found) == [
        "product `leads` has no contact: the contract needs a support channel with a `url`",
        "purpose `region-counts` has no `legalBasis`"]
    basis = next(v for v in found if v.purpose == "region-counts")
    assert basis.line == line_of(file, "region-counts:") and basis.rule == "r1"
    assert basis.field.endswith("purposes.region-counts") and basis.severity == "error"


# -- classification-floor -------------------------------------------------------------------

def test_classification_floor_from_the_contract(mesh_root: Path, leads_frame) -> None:
    write_rules(mesh_root, rule("classification-floor", "{floor: direct-identifier}"))
    assert violations(mesh_root) == []
    cols = tuple(replace(c, classification="public") if c.name == "email" else c
                 for c in GOOD.columns)
    file = write_product(mesh_root, replace(GOOD, columns=cols), leads_frame)
    (v,) = violations(mesh_root, data=False)
    assert v.column == "email" and "declares EMAIL_ADDRESS but is classified public" in v.message
    assert v.line == line_of(file, "classification: public", after="- name: email")
    assert v.field == "schema[0].properties[2].classification"


def test_classification_floor_from_the_data(mesh_root: Path, leads_frame) -> None:
    write_rules(mesh_root, rule("classification-floor"))
    cols = tuple(replace(c, classification="public", entity=None, pii=False)
                 if c.name == "email" else c for c in GOOD.columns)
    write_product(mesh_root, replace(GOOD, columns=cols), leads_frame)
    assert violations(mesh_root, data=False) == []  # the contract alone looks fine
    (v,) = violations(mesh_root)
    assert v.column == "email" and "holds EMAIL_ADDRESS" in v.message
    assert "classified public" in v.message


# -- dp-excludes-identifiers ----------------------------------------------------------------

def test_dp_excludes_identifiers(mesh_root: Path, leads_frame) -> None:
    write_rules(mesh_root, rule("dp-excludes-identifiers"))
    assert violations(mesh_root) == []  # lead-review allows lead_id, but it is not dp
    purposes = {**OK_PURPOSES, "region-counts": {
        **OK_PURPOSES["region-counts"],
        "allowedColumns": ["region", "full_name", "converted"]}}
    file = write_product(mesh_root, replace(GOOD, policy={**GOOD.policy, "purposes": purposes}),
                         leads_frame)
    (v,) = violations(mesh_root, data=False)
    assert v.purpose == "region-counts" and v.column == "full_name"
    assert v.field.endswith("region-counts.allowedColumns[1]")
    assert v.line == line_of(file, "allowedColumns:", after="region-counts:")


# -- pii-drift ------------------------------------------------------------------------------

def test_pii_drift_when_the_data_changes_under_its_contract(mesh_root: Path, leads_frame,
                                                            demo_root: Path) -> None:
    write_rules(mesh_root, rule("pii-drift"))
    assert violations(mesh_root) == []
    # Upstream now hashes the e-mail addresses and adds a phone column nobody declared.
    phones = pd.read_parquet(demo_root / "customers" / "accounts.parquet",
                             columns=["phone"])["phone"].iloc[:len(leads_frame)].to_numpy()
    changed = leads_frame.assign(
        email=[hashlib.sha256(e.encode()).hexdigest()[:16] for e in leads_frame["email"]],
        phone=phones)
    changed.to_parquet(mesh_root / "leads" / "leads.parquet", index=False)
    assert violations(mesh_root, data=False) == []  # the contract did not change
    report = evaluate(mesh_nb.open_mesh(mesh_root))
    by_column = {v.column: v for v in report.violations}
    assert set(by_column) == {"email", "phone"}
    assert "declares EMAIL_ADDRESS but the sample shows none" in by_column["email"].message
    assert "does not declare, holding PHONE_NUMBER" in by_column["phone"].message
    assert by_column["phone"].field == "schema[0]"
    text = json.dumps(to_json(report)) + str(report) + to_html(report)
    for value in list(changed["email"].iloc[:50]) + list(phones[:50]):
        assert value not in text  # names, types and counts only


def test_drift_reports_a_contract_column_missing_from_the_data(mesh_root, leads_frame) -> None:
    write_rules(mesh_root, rule("pii-drift"))
    leads_frame.drop(columns=["score"]).to_parquet(mesh_root / "leads" / "leads.parquet")
    (v,) = violations(mesh_root)
    assert v.column == "score" and "not in the data" in v.message


# -- budget-ceiling -------------------------------------------------------------------------

def _with_budget(**budget) -> dict:
    p = OK_PURPOSES["region-counts"]
    return {**GOOD.policy, "purposes": {**OK_PURPOSES, "region-counts": {
        **p, "budget": {**p["budget"], **budget}}}}


@pytest.mark.parametrize("budget, ceiling, expect", [
    ({"epsilon": 3.0}, "{epsilon: 3.0, period: P30D}", None),
    ({"epsilon": 10.0}, "{epsilon: 3.0, period: P30D}", "budget epsilon 10, renewing every 30 "
                                                        "days exceeds the ceiling 3 per 30 days"),
    ({"epsilon": 1.0, "period": "P7D"}, "{epsilon: 3.0, period: P30D}",
     "(up to 5 per 30 days) exceeds the ceiling 3"),
    ({"delta": 1.0e-4}, "{delta: 1.0e-5}", "budget delta 0.0001"),
    ({"epsilon": 1.0}, "{epsilon: 3.0}", "is unbounded over time"),
    ({"epsilon": 1.0}, "{productEpsilon: 0.5, period: P30D}",
     "together grant one analyst epsilon 1 per 30 days, above the product ceiling 0.5"),
])
def test_budget_ceiling(mesh_root, leads_frame, budget, ceiling, expect) -> None:
    write_rules(mesh_root, rule("budget-ceiling", ceiling))
    write_product(mesh_root, replace(GOOD, policy=_with_budget(**budget)), leads_frame)
    found = violations(mesh_root, data=False)
    if expect is None:
        assert found == []
    else:
        (v,) = found
        assert expect in v.message


def test_budget_ceiling_reads_what_the_ledger_granted(mesh_root, leads_frame) -> None:
    write_rules(mesh_root, rule("budget-ceiling", "{epsilon: 3.0, period: P30D}"))
    m = mesh_nb.open_mesh(mesh_root)
    # spends granted under an earlier, larger budget (the ledger API the session uses)
    m.ledger("leads").reserve(analyst="alice", purpose="region-counts", epsilon=2.5,
                              budget=Budget(5.0, 1e-6, "per-analyst", 30))
    m.ledger("leads").reserve(analyst="alice", purpose="region-counts", epsilon=1.0,
                              budget=Budget(5.0, 1e-6, "per-analyst", 30))
    m.ledger("leads").reserve(analyst="bob", purpose="region-counts", epsilon=1.0,
                              budget=Budget(5.0, 1e-6, "per-analyst", 30))
    assert violations(mesh_root, ledger=False) == []
    (v,) = violations(mesh_root)
    assert "analyst `alice` was granted epsilon 3.5 for purpose `region-counts`" in v.message


# -- access-requirements --------------------------------------------------------------------

def test_access_requirements(mesh_root, leads_frame) -> None:
    params = "{require: {raw-rows: [approvers], pseudonymized-rows: [retention, approvers]}}"
    write_rules(mesh_root, rule("access-requirements", params))
    assert violations(mesh_root, data=False) == []
    purposes = {**OK_PURPOSES, "export": {"description": "Export.", "legalBasis": "consent",
                                          "access": "raw-rows", "allowedColumns": ["region"]}}

    def no_sla(text: str) -> str:
        return text.replace("slaProperties:\n- {property: retention, value: 3, unit: y}\n", "")

    file = write_product(mesh_root, replace(GOOD, policy={**GOOD.policy, "purposes": purposes}),
                         leads_frame, edit=no_sla)
    assert "slaProperties" not in file.read_text()
    found = {v.purpose: v for v in violations(mesh_root, data=False)}
    assert set(found) == {"export", "lead-review"}
    assert found["export"].message == "raw-rows purpose `export` needs `approvers`"
    assert found["lead-review"].message == ("pseudonymized-rows purpose `lead-review` needs a "
                                            "retention SLA on the product")
    assert found["export"].line == line_of(file, "access: raw-rows")


def test_access_forbid(mesh_root) -> None:
    write_rules(mesh_root, rule("access-requirements", "{forbid: [pseudonymized-rows]}"))
    (v,) = violations(mesh_root, data=False)
    assert v.purpose == "lead-review" and "which the mesh does not allow" in v.message


# -- forbidden-purposes ---------------------------------------------------------------------

def test_forbidden_purposes(mesh_root, leads_frame) -> None:
    write_rules(mesh_root, rule("forbidden-purposes",
                                '{pairs: [{domain: marketing, purpose: "*review*", '
                                'reason: no row review in marketing}]}'))
    write_product(mesh_root, replace(GOOD, domain="sales"), leads_frame)
    assert violations(mesh_root, data=False) == []
    write_product(mesh_root, GOOD, leads_frame)  # domain marketing
    (v,) = violations(mesh_root, data=False)
    assert v.purpose == "lead-review"
    assert v.message == ("purpose `lead-review` is forbidden in domain `marketing`: no row "
                         "review in marketing")


# -- retention-limit ------------------------------------------------------------------------

def test_retention_limit(mesh_root, leads_frame) -> None:
    write_rules(mesh_root, rule("retention-limit", "{max: P5Y}"))
    assert violations(mesh_root, data=False) == []
    file = write_product(mesh_root, replace(GOOD, retention_years=10), leads_frame)
    (v,) = violations(mesh_root, data=False)
    assert "retention 10 y (3650 days) exceeds the limit P5Y" in v.message
    assert v.line == line_of(file, "property: retention") and v.field == "slaProperties[0]"
    write_product(mesh_root, GOOD, leads_frame,
                  edit=lambda t: t.replace("unit: y}", "unit: fortnights}"))
    (v,) = violations(mesh_root, data=False)
    assert "not a duration" in v.message
    write_product(mesh_root, GOOD, leads_frame, edit=lambda t: t.replace(
        "- {property: retention, value: 3, unit: y}", "- {property: latency, value: 4, unit: d}"))
    (v,) = violations(mesh_root, data=False)
    assert v.message == "product `leads` declares no retention"


# -- ledger-verified ------------------------------------------------------------------------

def test_ledger_verified(mesh_root) -> None:
    write_rules(mesh_root, rule("ledger-verified"))
    assert violations(mesh_root) == []  # no ledger yet: nothing to verify, nothing created
    assert not (mesh_root / "leads" / ".mesh_nb").exists()
    with mesh_nb.open_mesh(mesh_root).bind("leads", "region-counts", "alice") as s:
        s.query("SELECT region, COUNT(*) AS n FROM leads.leads GROUP BY region", epsilon=0.1)
    assert violations(mesh_root) == []
    with sqlite3.connect(mesh_root / "leads" / ".mesh_nb" / "ledger.sqlite") as db:
        db.execute("UPDATE entries SET epsilon_micro = 0 WHERE seq = 2")
    (v,) = violations(mesh_root)
    assert "fails verification at entry 2" in v.message and v.line is None


# -- governance.yaml problems ---------------------------------------------------------------

def test_governance_file_problems_have_lines(tmp_path: Path) -> None:
    file = tmp_path / "governance.yaml"
    file.write_text(textwrap.dedent("""\
        governanceVersion: 1
        rulez: []
        rules:
          - id: a
            kind: required-field
            severity: error
            description: d
            rationale: r
          - id: a
            kind: retention-limit
            severity: fatal
            description: d
            rationale: r
            params: {max: P5Y}
          - kind: retention-limit
            severity: warning
            description: d
            rationale: r
            params: {maximum: P5Y}
          - id: b
            kind: budget-ceiling
            severity: error
            description: d
            rationale: r
            params: {epsilon: -1, period: 30 days}
          - id: b
            kind: ledger-verified
            severity: warning
            description: d
            rationale: r
          - id: c
            kind: pii-drift
            severity: error
            description: ""
        """))
    gov, problems = check_governance(file)
    assert gov is None
    got = [(p.line, p.field, p.what, p.fix) for p in problems]
    assert got == [
        (2, "rulez", "unknown field", "did you mean `rules`?"),
        (5, "rules[0].kind", "unknown rule kind `required-field`",
         "did you mean `required-fields`?"),
        (9, "rules[1].id", "duplicate rule id `a` (first on line 4)",
         "give every rule its own id"),
        (11, "rules[1].severity", "unknown severity `fatal`", "use one of: error, warning"),
        (15, "rules[2]", "required field `id` is missing",
         "add `id:`, a short slug such as `purpose-legal-basis`"),
        (19, "rules[2].params", "required parameter `max` is missing",
         "add `max:` under params"),
        (19, "rules[2].params.maximum", "unknown parameter", "did you mean `max`?"),
        (25, "rules[3].params.epsilon", "Input should be greater than 0",
         "correct the value (see docs/governance.md)"),
        (25, "rules[3].params.period",
         "must be an ISO 8601 duration like P30D, P4W, P6M or P3Y",
         "correct the value (see docs/governance.md)"),
        (26, "rules[4].id", "duplicate rule id `b` (first on line 20)",
         "give every rule its own id"),
        (31, "rules[5]", "required field `rationale` is missing or empty",
         "add `rationale:` — why the mesh has this rule"),
        (34, "rules[5].description", "required field `description` is missing or empty",
         "add `description:` — what the rule checks"),
    ]
    with pytest.raises(GovernanceError, match=r"governance.yaml:11: rules\[1\].severity"):
        evaluate(mesh_nb.open_mesh(write_product(tmp_path / "m", GOOD, pd.DataFrame(
            {"lead_id": ["L1"]})).parent.parent), file)


# -- plugins --------------------------------------------------------------------------------

PLUGIN = '''
from pydantic import BaseModel, ConfigDict
from mesh_nb.governance import Finding, RuleKind

class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    words: list[str]

def check(rule, ctx):
    for name, purpose in sorted(ctx.contract.purposes.items()):
        for word in rule.params.words:
            if word in purpose.description.lower():
                yield Finding(f"purpose `{name}` mentions `{word}`", "reword the purpose",
                              ctx.purpose_path(name, "description"), purpose=name)

KIND = RuleKind("no-words", check, Params, description="purpose descriptions avoid words")
NOT_A_KIND = 42
'''


@pytest.fixture
def plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real installed distribution: a module and a *.dist-info with entry_points.txt."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "acme_governance.py").write_text(PLUGIN)
    info = site / "acme_governance-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-governance\n"
                                   "Version: 1.0\n")
    (info / "entry_points.txt").write_text("[mesh_nb.governance_rules]\n"
                                           "no-words = acme_governance:KIND\n"
                                           "broken = acme_missing_module:KIND\n"
                                           "not-a-kind = acme_governance:NOT_A_KIND\n"
                                           "retention-limit = acme_governance:KIND\n")
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("acme_governance", None)


def test_plugin_rule_kind_from_an_entry_point(mesh_root: Path, plugin_path: Path) -> None:
    write_rules(mesh_root, rule("no-words", "{words: [tokens]}", id="acme-words"))
    (v,) = violations(mesh_root, data=False)
    assert (v.rule, v.kind, v.purpose) == ("acme-words", "no-words", "lead-review")
    assert v.message == "purpose `lead-review` mentions `tokens`"
    assert v.field.endswith("lead-review.description")
    write_rules(mesh_root, rule("no-words", "{wordz: [x]}"))
    _, problems = check_governance(mesh_root / "governance.yaml")
    assert [p.what for p in problems] == ["required parameter `words` is missing",
                                          "unknown parameter"]
    write_rules(mesh_root, rule("broken"))
    (p,) = check_governance(mesh_root / "governance.yaml")[1]
    assert p.line == 4 and "plugin `acme_missing_module:KIND` failed to load" in p.what
    write_rules(mesh_root, rule("not-a-kind"))
    (p,) = check_governance(mesh_root / "governance.yaml")[1]
    assert "is a int, not a mesh_nb.governance.RuleKind" in p.what
    # a plugin claiming a built-in kind's name does not replace the built-in
    write_rules(mesh_root, rule("retention-limit", "{max: P1Y}"))
    (v,) = violations(mesh_root, data=False)
    assert v.kind == "retention-limit" and "exceeds the limit P1Y" in v.message


def test_without_the_plugin_its_kind_is_unknown(mesh_root: Path) -> None:
    write_rules(mesh_root, rule("no-words", "{words: [tokens]}"))
    (p,) = check_governance(mesh_root / "governance.yaml")[1]
    assert p.what == "unknown rule kind `no-words`"


# -- bind -----------------------------------------------------------------------------------

def test_bind_refuses_a_purpose_breaking_an_error_rule(demo_dir: Path) -> None:
    m = mesh_nb.open_mesh(demo_dir)
    with pytest.raises(PolicyViolation) as err:
        m.bind("marketing", purpose="campaign-stats", analyst="alice")
    assert err.value.rule == "governance:budget-ceiling"
    assert "marketing/datacontract.yaml:" in err.value.fix
    (refused,) = m.ledger("marketing").entries(kind="session.refused")
    assert refused.details["rule"] == "governance:budget-ceiling" and refused.analyst == "alice"
    with pytest.raises(PolicyViolation, match="no-profiling-in-marketing"):
        m.bind("marketing", purpose="ad-profiling", analyst="alice")
    with m.bind("marketing", purpose="region-counts", analyst="alice") as s:  # compliant
        assert s.purpose == "region-counts"
    alone = mesh_nb.open_mesh(demo_dir / "marketing")  # a product folder: the parent's rules
    with pytest.raises(PolicyViolation, match="governance:budget-ceiling"):
        alone.bind("marketing", purpose="campaign-stats", analyst="alice")
    # the owner fixes the contract: the cached verdict follows the file
    file = demo_dir / "marketing" / "datacontract.yaml"
    file.write_text(file.read_text().replace(
        "budget: {epsilon: 10.0, delta: 1.0e-06, scope: per-analyst, period: P7D}",
        "budget: {epsilon: 2.0, delta: 1.0e-06, scope: per-analyst, period: P30D}"))
    with mesh_nb.open_mesh(demo_dir).bind("marketing", "campaign-stats", "alice") as s:
        assert s.purpose == "campaign-stats"


def test_bind_fails_closed_on_a_malformed_governance_file(demo_dir: Path) -> None:
    (demo_dir / "governance.yaml").write_text("governanceVersion: 2\nrules: []\n")
    with pytest.raises(GovernanceError, match="governanceVersion must be 1"):
        mesh_nb.open_mesh(demo_dir).bind("customers", "churn-analysis", "alice")


def test_bind_without_governance_behaves_as_before(demo_dir: Path) -> None:
    (demo_dir / "governance.yaml").unlink()
    with mesh_nb.open_mesh(demo_dir).bind("marketing", "campaign-stats", "alice") as s:
        assert s.purpose == "campaign-stats"


def test_a_column_violation_refuses_only_the_purposes_allowing_it(mesh_root, leads_frame):
    write_rules(mesh_root, rule("classification-floor"))
    cols = tuple(replace(c, classification="public") if c.name == "email" else c
                 for c in GOOD.columns)
    write_product(mesh_root, replace(GOOD, columns=cols), leads_frame)
    m = mesh_nb.open_mesh(mesh_root)
    with pytest.raises(PolicyViolation, match=r"governance:r1.*`leads.email` declares"):
        m.bind("leads", "lead-review", "alice", acknowledge=True)  # allows email
    with m.bind("leads", "region-counts", "alice") as s:  # does not
        assert s.purpose == "region-counts"


def test_warnings_do_not_refuse(mesh_root: Path, leads_frame) -> None:
    write_rules(mesh_root, rule("retention-limit", "{max: P1Y}", severity="warning"))
    m = mesh_nb.open_mesh(mesh_root)
    assert [v.severity for v in violations(mesh_root, data=False)] == ["warning"]
    with m.bind("leads", "region-counts", "alice") as s:
        assert s.purpose == "region-counts"


# -- the CLI and the report formats ---------------------------------------------------------

def test_govern_cli_on_the_demo_mesh(demo_dir: Path, capsys, tmp_path: Path) -> None:
    assert main(["govern", str(demo_dir)]) == 1
    out = capsys.readouterr().out
    assert "customers: ok" in out and "sales: ok" in out
    for rule_id in ("budget-ceiling", "dp-without-identifiers", "identifiers-classified",
                    "no-profiling-in-marketing", "pii-matches-contract", "purpose-basics",
                    "row-access-safeguards", "retention-limit", "product-budget"):
        assert f"[{rule_id}]" in out
    assert "marketing/datacontract.yaml:" in out and out.rstrip().endswith("2 warning(s)")
    assert main(["govern", str(demo_dir), "--product", "customers"]) == 0
    assert "customers: ok" in capsys.readouterr().out

    assert main(["govern", str(demo_dir), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker()
                                    ).validate(doc)
    assert doc["schemaVersion"] == 1 and doc["summary"]["passed"] is False
    assert doc["summary"]["errors"] == sum(v["severity"] == "error" for v in doc["violations"])
    assert {p["name"]: p["errors"] for p in doc["products"]} == {
        "customers": 0, "marketing": 8, "sales": 0}
    email = next(v for v in doc["violations"] if v["rule"] == "identifiers-classified")
    assert (email["file"], email["column"]) == ("marketing/datacontract.yaml", "email")
    assert email["line"] == line_of(demo_dir / "marketing" / "datacontract.yaml",
                                    "classification: public", after="- name: email")
    leads = pd.read_parquet(demo_dir / "marketing" / "leads.parquet")
    text = json.dumps(doc)
    assert not any(value in text for value in leads["email"].iloc[:100])

    out_file = tmp_path / "gov.html"
    assert main(["govern", str(demo_dir), "-f", "html", "-o", str(out_file)]) == 1
    page = out_file.read_text()
    assert page.startswith("<!DOCTYPE html>") and 'id="mesh-nb-governance-violations"' in page
    assert 'id="mesh-nb-governance-products"' in page and "customers/datacontract.yaml" in page
    assert "marketing/datacontract.yaml:" in page and "<script" not in page


def test_govern_contract_only_skips_data_and_ledger_kinds(demo_dir: Path, capsys) -> None:
    assert main(["govern", str(demo_dir), "--contract-only", "-f", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["scope"] == {"contract": True, "data": False, "ledger": False}
    rules = {v["rule"] for v in doc["violations"]}
    assert "pii-matches-contract" not in rules and "identifiers-classified" not in rules
    skipped = {s["rule"] for p in doc["products"] for s in p["skipped"]}
    assert skipped == {"pii-matches-contract", "ledger-intact"}


def test_govern_without_governance_file(demo_dir: Path, capsys) -> None:
    (demo_dir / "governance.yaml").unlink()
    assert main(["govern", str(demo_dir)]) == 0
    captured = capsys.readouterr()
    assert "no governance.yaml" in captured.err and "no mesh-wide rules" in captured.out
    assert main(["govern", str(demo_dir), "-f", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, schema())
    assert doc["governance"]["file"] is None and doc["summary"]["passed"] is True


def test_govern_reports_a_malformed_governance_file(demo_dir: Path, capsys) -> None:
    (demo_dir / "governance.yaml").write_text("governanceVersion: 1\nrules:\n  - id: x\n"
                                              "    kind: nope\n    severity: error\n"
                                              "    description: d\n    rationale: r\n")
    assert main(["govern", str(demo_dir)]) == 2
    err = capsys.readouterr().err
    assert "governance.yaml:4: rules[0].kind: unknown rule kind `nope`" in err


def test_rules_can_be_scoped_and_switched_off(mesh_root: Path) -> None:
    write_rules(mesh_root, rule("retention-limit", "{max: P1Y}", id="short"))
    assert [v.rule for v in violations(mesh_root, data=False)] == ["short"]
    text = (mesh_root / "governance.yaml").read_text()
    (mesh_root / "governance.yaml").write_text(text + '    products: ["sales*"]\n')
    report = evaluate(mesh_nb.open_mesh(mesh_root), data=False)
    assert report.violations == [] and report.products[0].checked == []
    (mesh_root / "governance.yaml").write_text(text + "    enabled: false\n")
    assert violations(mesh_root, data=False) == []
