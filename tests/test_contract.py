"""Contracts: the example loads; each malformed variant gives its located, actionable message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mesh_nb import ContractError, check_contract, load_contract
from mesh_nb.contract import (ColumnDoc, ContractDoc, ServerDoc, TableDoc, check_contract_text,
                              contract_text, load_contract_text)

FIXTURE = Path(__file__).parent / "fixtures" / "clinic" / "datacontract.yaml"


@pytest.fixture
def product(tmp_path: Path) -> Path:
    """A copy of the clinic example with a real parquet data file of 1,000 rows."""
    folder = tmp_path / "clinic"
    (folder / "data").mkdir(parents=True)
    (folder / "datacontract.yaml").write_text(FIXTURE.read_text())
    n = 1000
    pd.DataFrame({
        "patient_id": [f"P{i % 300:04d}" for i in range(n)],
        "email": [f"p{i % 300}@example.org" for i in range(n)],
        "region": ["north", "south", "east", "west"] * (n // 4),
        "age": [i % 100 for i in range(n)],
        "diagnosis_code": ["J45"] * n,
        "visit_cost": [float(i % 5000) for i in range(n)],
    }).to_parquet(folder / "data" / "clinic_visits.parquet")
    return folder


def mutate(folder: Path, old: str, new: str, count: int = 1) -> Path:
    file = folder / "datacontract.yaml"
    text = file.read_text()
    assert old in text, f"fixture no longer contains {old!r}"
    file.write_text(text.replace(old, new, count))
    return folder


def test_example_contract_loads(product: Path) -> None:
    c = load_contract(product)
    assert c.name == "clinic_visits"
    assert c.privacy_unit == "patient_id" and c.max_contributions == 10
    visits = c.table("visits")
    assert visits is not None and visits.data_path.name == "clinic_visits.parquet"
    assert visits.column("age").bounds == (0.0, 120.0)
    assert visits.column("region").categories == ("north", "south", "east", "west")
    assert visits.column("email").pii_entity == "EMAIL_ADDRESS"
    assert visits.column("patient_id").identifier
    cap = c.purpose("capacity_planning")
    assert cap.access == "dp-aggregate" and cap.budget.epsilon == 3.0
    assert cap.budget.period_days == 30 and cap.max_epsilon_per_query == 0.5
    assert c.purpose("care_quality_audit").requires_acknowledgement
    assert c.owners == ("alice@example.org",)


# (id, old text, new text, expected line, expected field, expected words in the message)
MALFORMED = [
    ("misspelt-key", "classification: quasi-identifier", "clasification: quasi-identifier",
     66, "schema[0].properties[3].clasification", "did you mean `classification`"),
    ("unquoted-date", 'dateIn: "2024-01-15"', "dateIn: 2024-01-15",
     18, "team.members[0].dateIn", 'quote it: "2024-01-15"'),
    ("api-version", "apiVersion: v3.1.0", "apiVersion: v9",
     1, "apiVersion", "use one of: v3.2.0, v3.1.0"),
    ("missing-kind", "kind: DataContract\n", "",
     None, "(document)", "required field `kind` is missing"),
    ("allowed-column-missing", "allowedColumns: [region, age, visit_cost]",
     "allowedColumns: [region, agee, visit_cost]",
     93, "allowedColumns[1]", "allowed column `agee` does not exist"),
    ("numeric-without-bounds", ", visit_cost: [0, 5000]}", "}",
     93, "allowedColumns[2]", "declare them in meshNbPrivacy `bounds: {visit_cost: [min, max]}`"),
    ("bounds-not-a-column", "visit_cost: [0, 5000]", "visit_costs: [0, 5000]",
     87, "value.bounds.visit_costs", "use a numeric column: age, visit_cost"),
    ("bounds-not-numeric", "visit_cost: [0, 5000]", "region: [0, 5000]",
     87, "value.bounds.region", "`region`, which is not numeric"),
    ("bounds-not-an-interval", "visit_cost: [0, 5000]", "visit_cost: [5000, 0]",
     87, "value.bounds.visit_cost", "bounds [5000, 0] of `visit_cost` are not an interval"),
    ("bounds-not-a-pair", "visit_cost: [0, 5000]", "visit_cost: [0]",
     87, "value.bounds", "the bounds of `visit_cost` are not a pair"),
    ("privacy-unit-missing", "privacyUnit: patient_id", "privacyUnit: person_id",
     85, "value.privacyUnit", "`person_id` is not a column of table `visits`"),
    ("negative-epsilon", "epsilon: 3.0,", "epsilon: -1,",
     94, "capacity_planning.budget.epsilon", "greater than 0"),
    ("delta-vs-rows", "delta: 1.0e-6,", "delta: 0.01,",
     94, "capacity_planning.budget.delta", "not below 1/rows (1/1000"),
    ("unknown-access", "access: dp-aggregate", "access: dp-aggregates",
     92, "capacity_planning.access", "'dp-aggregate', 'pseudonymized-rows' or 'raw-rows'"),
    ("misspelt-policy-key", "maxContributions: 10", "maxContribution: 10",
     86, "value.maxContribution", "did you mean `maxContributions`"),
    ("no-policy", "property: meshNbPrivacy", "property: somethingElse",
     79, "customProperties", "no `meshNbPrivacy` custom property"),
    ("unknown-classification", "classification: sensitive", "classification: secret",
     69, "properties[4].classification", "use one of: direct-identifier, quasi-identifier"),
    ("duplicate-key", "    physicalName: visits\n", "    physicalName: visits\n    physicalName: v2\n",
     38, "schema[0].physicalName", "duplicate key (first on line 37)"),
    ("yaml-syntax", "  members:\n", "  members: [\n",
     None, "(yaml)", "YAML syntax error"),
    ("max-per-query-over-budget", "maxEpsilonPerQuery: 0.5", "maxEpsilonPerQuery: 5",
     95, "maxEpsilonPerQuery", "exceeds the whole budget 3"),
    ("bounds-reversed", "{minimum: 0, maximum: 120}", "{minimum: 200, maximum: 120}",
     65, "logicalTypeOptions.minimum", "minimum 200 is not below maximum 120"),
    ("data-file-missing", "path: ./data/clinic_visits.parquet", "path: ./data/visits_2024.parquet",
     32, "servers[1].path", "data file `visits_2024.parquet` of table `visits` does not exist"),
    ("no-data-server", "    type: local\n", "    type: s3\n",
     35, "schema[0]", "table `visits` has no data file"),
    ("dp-without-budget", "          budget: {epsilon: 3.0, delta: 1.0e-6, scope: per-analyst, "
     "period: P30D}\n          maxEpsilonPerQuery: 0.5\n", "",
     89, "purposes.capacity_planning", "a dp-aggregate purpose needs a budget"),
    ("bad-scope", "scope: per-analyst", "scope: per-team",
     94, "budget.scope", "'per-analyst' or 'per-purpose'"),
    ("missing-description", "          description: Row-level review by the clinical audit team.\n",
     "", 96, "purposes.care_quality_audit", "required field `description` is missing"),
    ("product-name", "name: clinic_visits", "name: clinic-visits",
     5, "name", "product name must be a SQL identifier"),
    ("no-classification", "        classification: public\n        quality:",
     "        quality:", 56, "schema[0].properties[2]", "has no classification"),
    ("repeated-categories", "[north, south, east, west]", "[north, south, east, north]",
     61, "validValues", "declared categories repeat a value"),
    ("bad-period", "period: P30D", "period: 30 days",
     94, "budget.period", "use the documented format"),
    ("wrong-type", "required: true", "required: 'yes'",
     42, "properties[0].required", "ODCS wants true or false"),
    ("pii-entity", "value: EMAIL_ADDRESS", "value: e-mail",
     55, "customProperties[1].value", "must be a presidio entity name"),
]


@pytest.mark.parametrize("case", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_contract(product: Path, case: tuple) -> None:
    _, old, new, line, field, words = case
    mutate(product, old, new)
    contract, problems = check_contract(product)
    assert contract is None
    matching = [p for p in problems if words in str(p)]
    assert matching, f"expected {words!r} in:\n" + "\n".join(map(str, problems))
    p = matching[0]
    if line is not None:
        assert p.line == line, str(p)
    assert field in p.field, str(p)
    text = str(p)
    assert text.startswith(f"{product / 'datacontract.yaml'}:"), text
    assert " — " in text, "every message says how to fix it"
    with pytest.raises(ContractError) as err:
        load_contract(product)
    assert words in str(err.value)


DATA_CASES = ("delta-vs-rows", "data-file-missing")


@pytest.mark.parametrize("case", [c for c in MALFORMED if c[0] not in DATA_CASES],
                         ids=[c[0] for c in MALFORMED if c[0] not in DATA_CASES])
def test_malformed_contract_text_names_its_source(product: Path, case: tuple) -> None:
    """From text (a server's published contract), the same problem at the same line, named by
    the hint; nothing is written to disk for it."""
    _, old, new, line, field, words = case
    text = (product / "datacontract.yaml").read_text().replace(old, new, 1)
    contract, problems = check_contract_text(text, name_hint="clinic")
    assert contract is None
    matching = [p for p in problems if words in str(p)]
    assert matching, f"expected {words!r} in:\n" + "\n".join(map(str, problems))
    p = matching[0]
    assert (p.line == line if line is not None else True) and field in p.field, str(p)
    assert str(p).startswith(f"{Path('clinic') / 'datacontract.yaml'}:"), str(p)
    with pytest.raises(ContractError) as err:
        load_contract_text(text, name_hint="clinic")
    assert words in str(err.value)


def test_contract_text_reads_like_its_file(product: Path) -> None:
    text = (product / "datacontract.yaml").read_text()
    assert load_contract_text(text, name_hint="x", folder=product, count_rows=True) == \
        load_contract(product)
    apart = load_contract_text(text, name_hint="clinic")  # held apart from its data
    assert apart.path == Path("clinic") / "datacontract.yaml"
    assert apart.table("visits").data_path == Path("clinic/data/clinic_visits.parquet")
    assert apart.purposes == load_contract(product).purposes
    _, problems = check_contract_text(text.replace("delta: 1.0e-6,", "delta: 0.01,"),
                                      name_hint="x", folder=product, count_rows=True)
    assert [p.field for p in problems] == [
        "customProperties[0].value.purposes.capacity_planning.budget.delta"]


def test_written_contract_loads_as_declared(tmp_path: Path) -> None:
    """The writer's document -> YAML text -> the loader gives back what was declared."""
    pd.DataFrame({"pid": ["a", "b"], "score": [1.5, 7.0], "team": ["x", "y"],
                  "mail": ["a@example.org", "b@example.org"]}).to_parquet(tmp_path / "t.parquet")
    doc = ContractDoc(
        id="t-1", name="t", team="owners", servers=(ServerDoc("./t.parquet"),),
        description={"purpose": "A test product."}, retention_years=2, tags=("x",),
        members=({"username": "o@example.org", "role": "owner", "dateIn": "2025-01-01"},),
        tables=(TableDoc("rows", (
            ColumnDoc("pid", "string", "direct-identifier", "The person.", required=True),
            ColumnDoc("score", "number", "sensitive", bounds=(0.0, 10.5),
                      generalize={"bin": 2}),
            ColumnDoc("team", "string", "public", categories=("x", "y")),
            ColumnDoc("mail", "string", "direct-identifier", pii=True,
                      entity="EMAIL_ADDRESS", options={"format": "email"})), "t"),),
        policy={"policyVersion": 1, "privacyUnit": "pid", "maxContributions": 2,
                "purposes": {"look": {"description": "Looking.", "access": "dp-aggregate",
                                      "allowedColumns": ["score", "team"],
                                      "budget": {"epsilon": 1.0, "delta": 1e-3},
                                      "maxEpsilonPerQuery": 0.5}}},
        comment="A test contract.\nTwo lines.")
    text = contract_text(doc)
    assert text.startswith("# A test contract.\n# Two lines.\napiVersion: v3.1.0\n")
    c = load_contract_text(text, name_hint="t", folder=tmp_path, count_rows=True)
    rows = c.table("rows")
    assert rows.data_path == (tmp_path / "t.parquet").resolve()
    assert rows.column("score").bounds == (0.0, 10.5)
    assert rows.column("score").generalize == {"bin": 2}
    assert rows.column("team").categories == ("x", "y")
    assert rows.column("mail").pii and rows.column("mail").pii_entity == "EMAIL_ADDRESS"
    assert rows.column("pid").required and rows.column("pid").identifier
    assert c.owners == ("o@example.org",) and c.max_contributions == 2
    assert c.purpose("look").budget.epsilon == 1.0 and c.purpose("look").allowed_columns == (
        "score", "team")


def test_all_problems_are_reported_at_once(product: Path) -> None:
    mutate(product, "privacyUnit: patient_id", "privacyUnit: person_id")
    mutate(product, "classification: sensitive", "classification: secret")
    mutate(product, "apiVersion: v3.1.0", "apiVersion: v9")
    _, problems = check_contract(product)
    assert len(problems) >= 3
    assert [p.line for p in problems] == sorted(p.line or 0 for p in problems)


def test_allowed_column_may_be_qualified(product: Path) -> None:
    mutate(product, "allowedColumns: [region, age, visit_cost]",
           "allowedColumns: [visits.region, age, visit_cost]")
    assert load_contract(product).purpose("capacity_planning").allowed_columns[0] == "visits.region"


def test_cli_check_prints_problems_and_fails(product: Path) -> None:
    mutate(product, "classification: quasi-identifier", "clasification: quasi-identifier")
    run = subprocess.run([sys.executable, "-m", "mesh_nb.cli", "check", str(product)],
                         capture_output=True, text=True)
    assert run.returncode == 1
    assert ":66: schema[0].properties[3].clasification: unknown field — did you mean" in run.stdout


def test_cli_check_ok(product: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "mesh_nb.cli", "check", str(product)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ok" in run.stdout


# --- engine servers (meshNbEngine, meshNbSparkRemote, Spark catalog tables) ---------------

DUCKDB_SERVER = ("  - server: local-duckdb\n    type: duckdb\n    database: ./data/clinic.duckdb\n"
                 "    schema: main\n")


def spark_server(*props: tuple[str, str], extra: str = "") -> str:
    custom = "".join(f"      - property: {k}\n        value: {v}\n" for k, v in props)
    return f"  - server: spark\n    type: custom\n{extra}    customProperties:\n{custom}"


def test_server_chooses_the_spark_engine_and_remote(product: Path) -> None:
    mutate(product, DUCKDB_SERVER, spark_server(("meshNbEngine", "spark"),
                                                ("meshNbSparkRemote", "sc://spark.example:15002")))
    c = load_contract(product)
    assert c.engine == "spark" and c.spark_remote == "sc://spark.example:15002"
    assert c.table("visits").data_path is not None and c.table("visits").source is None


def test_default_contract_names_no_engine(product: Path) -> None:
    c = load_contract(product)
    assert c.engine is None and c.spark_remote is None


def test_spark_catalog_table_needs_no_file(product: Path) -> None:
    mutate(product, DUCKDB_SERVER, spark_server(
        ("meshNbEngine", "spark"), extra="    catalog: spark_catalog\n    schema: clinic\n"))
    mutate(product, "  - server: local-parquet\n    type: local\n    path: ./data/clinic_visits"
           ".parquet\n    format: parquet\n", "")  # no local file any more
    c = load_contract(product)
    visits = c.table("visits")
    assert visits.source == "spark_catalog.clinic.visits" and visits.data_path is None


ENGINE_MALFORMED = [
    ("unknown-engine", (("meshNbEngine", "flink"),), 30,
     "servers[0].customProperties[0].value", "unknown engine `flink` — use one of: duckdb, spark"),
    ("remote-not-connect", (("meshNbEngine", "spark"), ("meshNbSparkRemote", "http://h:1")), 32,
     "servers[0].customProperties[1].value", "must be a Spark Connect URL"),
    ("unknown-server-property", (("meshNbEngines", "spark"),), 29,
     "servers[0].customProperties[0].property", "unknown mesh_nb server property `meshNbEngines`"),
    ("remote-with-duckdb", (("meshNbEngine", "duckdb"), ("meshNbSparkRemote", "sc://h:1")), 26,
     "servers[0]", "set `meshNbEngine: spark` or drop meshNbSparkRemote"),
]


@pytest.mark.parametrize("case", ENGINE_MALFORMED, ids=[c[0] for c in ENGINE_MALFORMED])
def test_malformed_engine_server(product: Path, case: tuple) -> None:
    _, props, line, field, words = case
    mutate(product, DUCKDB_SERVER, spark_server(*props))
    contract, problems = check_contract(product)
    assert contract is None
    matching = [p for p in problems if words in str(p)]
    assert matching, f"expected {words!r} in:\n" + "\n".join(map(str, problems))
    p = matching[0]
    assert p.line == line and field in p.field, str(p)
    assert str(p).startswith(f"{product / 'datacontract.yaml'}:") and " — " in str(p)
