"""Onboarding a dataset: `mesh-nb scan` / `mesh-nb init` on a people CSV, and DP bounds kept in
the privacy policy (with the old logicalTypeOptions form as a fallback).

Real components only: Faker-made people data (seeded), the presidio scan, the CLI in a
subprocess, the governance evaluation with the demo rules, DuckDB queries on the draft.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest
from faker import Faker

import mesh_nb
from mesh_nb.contract import check_contract, load_contract
from mesh_nb.contract.draft import name_class, words

DEMO_RULES = Path(mesh_nb.__file__).parent / "governance" / "demo-governance.yaml"
ROWS = 3000
DIRECT = ["GivenName", "Surname", "StreetAddress", "EmailAddress", "Username", "Password",
          "TelephoneNumber", "MothersMaiden", "CCNumber", "CVV2", "NationalID"]
QUASI = ["Gender", "City", "ZipCode", "Birthday", "Age"]


def people(n: int = ROWS, seed: int = 17) -> pd.DataFrame:
    """A fakenamegenerator-like people table: a unique `Number`, names, secrets, cards."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    r = random.Random(seed)
    rows = []
    for i in range(n):
        gender = r.choice(["male", "female"])
        rows.append({
            "Number": i + 1, "Gender": gender, "Title": r.choice(["Mr.", "Ms.", "Dr."]),
            "GivenName": fake.first_name_male() if gender == "male" else fake.first_name_female(),
            "Surname": fake.last_name(), "StreetAddress": fake.street_address(),
            "City": fake.city(), "ZipCode": fake.zipcode(),
            "Country": r.choice(["US", "US", "US", "CA"]), "EmailAddress": fake.email(),
            "Username": fake.user_name() + str(r.randint(1, 999)),
            "Password": fake.password(length=10), "TelephoneNumber": fake.phone_number(),
            "MothersMaiden": fake.last_name(),
            "Birthday": fake.date_of_birth(minimum_age=18, maximum_age=90).strftime("%m/%d/%Y"),
            "Age": r.randint(18, 90), "CCType": r.choice(["Visa", "MasterCard", "Amex"]),
            "CCNumber": fake.credit_card_number(), "CVV2": r.randint(100, 999),
            "NationalID": fake.ssn(), "Occupation": fake.job(),
            "BloodType": r.choice(["A+", "A-", "B+", "O+", "O-", "AB+"]),
            "Kilograms": round(r.uniform(45, 120), 1),
        })
    return pd.DataFrame(rows)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mesh_nb.cli", *args], capture_output=True,
                          text=True)


def no_traceback(run: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in run.stderr, run.stderr


@pytest.fixture(scope="module")
def drafted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """A mesh of one product drafted by `mesh-nb init` from a people CSV, with the demo
    governance rules."""
    root = tmp_path_factory.mktemp("onboard")
    folder = root / "people"
    folder.mkdir()
    people().to_csv(folder / "fake-people.csv", index=False)
    shutil.copy(DEMO_RULES, root / "governance.yaml")
    run = cli("init", str(folder / "fake-people.csv"), "--owner", "people-team",
              "--contact", "owner@example.org")
    assert run.returncode == 0, run.stderr
    return root, run


def test_init_picks_the_unique_id_and_says_why(drafted) -> None:
    root, run = drafted
    assert "privacy unit `Number`: unique in all 3,000 rows, id-like name" in run.stdout
    c = load_contract(root / "people")
    assert c.privacy_unit == "Number" and c.max_contributions == 1
    assert c.tables[0].physical_name == c.tables[0].name == "fake_people"  # a SQL identifier


def test_direct_and_secret_columns_stay_out_of_the_dp_purpose(drafted) -> None:
    c = load_contract(drafted[0] / "people")
    t = c.tables[0]
    allowed = c.purpose("exploration").allowed_columns
    for name in DIRECT:
        assert t.column(name).classification == "direct-identifier", name
        assert name not in allowed, name
    for name in QUASI:
        assert t.column(name).classification == "quasi-identifier", name
    assert t.column("StreetAddress").pii_entity == "STREET_ADDRESS"
    assert t.column("Occupation").classification == "public" and "Occupation" in allowed
    assert "Password" in drafted[1].stdout.split("kept out of the DP purpose:")[1]
    assert max(map(len, drafted[1].stdout.splitlines()[:-1])) <= 100


def test_name_table() -> None:
    assert words("CCNumber") >= {"cc", "number", "ccnumber"}
    assert {name_class(n) for n in ("CVV2", "api_key", "Password", "user_name", "pin")} == \
        {"direct-identifier"}
    assert {name_class(n) for n in ("ZipCode", "date_of_birth", "Gender")} == \
        {"quasi-identifier"}
    assert {name_class(n) for n in ("shipping_cost", "Occupation", "spinner")} == {"public"}


def test_the_draft_passes_govern_and_check(drafted) -> None:
    from mesh_nb.governance import evaluate

    root, _ = drafted
    report = evaluate(mesh_nb.open_mesh(root))
    assert report.passed and not report.errors and not report.warnings, \
        "\n".join(map(str, report.errors + report.warnings))
    checked = cli("check", str(root / "people"))
    assert checked.returncode == 0 and "ok" in checked.stdout and "note:" not in checked.stdout


def test_the_draft_answers_a_group_by(drafted) -> None:
    s = mesh_nb.open_mesh(drafted[0]).bind("fake_people", purpose="exploration", analyst="o")
    try:
        r = s.query("SELECT Country, COUNT(*) AS n, AVG(Kilograms) AS kg FROM "
                    "fake_people.fake_people GROUP BY Country", epsilon=0.2)
        assert len(r.frame) >= 1  # one row per person: the threshold lets big groups through
    finally:
        s.end()


def test_a_uuid_column_is_the_unit(tmp_path: Path) -> None:
    rng = random.Random(5)
    frame = people(400).drop(columns=["Number"])
    frame.insert(0, "uuid", [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(400)])
    frame.to_csv(tmp_path / "visits.csv", index=False)
    run = cli("init", str(tmp_path / "visits.csv"), "--owner", "t")
    assert run.returncode == 0, run.stderr
    assert "`uuid`: unique in all 400 rows, id-like name, values uuids" in run.stdout
    assert load_contract(tmp_path).privacy_unit == "uuid"


def test_unit_named_by_the_owner(tmp_path: Path) -> None:
    frame = people(300)
    frame["household"] = [f"H{i % 40}" for i in range(300)]
    frame.to_csv(tmp_path / "people.csv", index=False)
    run = cli("init", str(tmp_path / "people.csv"), "--owner", "t", "--unit", "household")
    assert run.returncode == 0, run.stderr
    assert "`household`: named with --unit; up to 8 rows per value" in run.stdout
    c = load_contract(tmp_path)
    assert c.privacy_unit == "household" and c.max_contributions == 8
    assert c.tables[0].column("household").identifier
    for unit, words_ in (("nope", "--unit `nope` is not a column — use one of: Number"),
                         ("GivenName", "holds person names")):
        bad = cli("init", str(tmp_path / "people.csv"), "--owner", "t", "--unit", unit,
                  "--force")
        assert bad.returncode == 2 and words_ in bad.stderr, bad.stderr
        no_traceback(bad)


@pytest.mark.parametrize("case, words_", [
    ("no-id", "no column is unique in all 300 rows with an id-like name or values"),
    ("two-ids", "`Number` and `uuid` are all unique and id-like"),
])
def test_init_asks_instead_of_guessing(tmp_path: Path, case: str, words_: str) -> None:
    frame = people(300)
    if case == "no-id":
        frame = frame.drop(columns=["Number"])
    else:
        rng = random.Random(1)
        frame["uuid"] = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(300)]
    frame.to_csv(tmp_path / "people.csv", index=False)
    run = cli("init", str(tmp_path / "people.csv"), "--owner", "t")
    assert run.returncode == 2 and words_ in run.stderr and "--unit COL" in run.stderr, \
        run.stderr
    assert "GivenName" not in run.stderr  # a name column is never offered as the unit
    no_traceback(run)
    assert not (tmp_path / "datacontract.yaml").exists()


def test_scan_fits_100_columns(drafted) -> None:
    data = str(drafted[0] / "people" / "fake-people.csv")
    run = cli("scan", data)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert max(map(len, lines)) <= 100, max(lines, key=len)
    assert "NaN" not in run.stdout and "@" not in run.stdout
    row = next(line for line in lines if line.startswith("Number "))
    assert row.split()[2] == "-"
    assert "distinct*" in lines[0]
    assert "* distinct values in a sample of 1,000 of the 3,000 rows" in run.stdout
    js = cli("scan", data, "--json")
    found = {d["column"]: d for d in map(json.loads, js.stdout.splitlines())}
    assert found["EmailAddress"]["entity"] == "EMAIL_ADDRESS"
    assert found["Number"]["sample_rows"] == 1000 and found["Number"]["rows"] == ROWS


def test_bounds_from_the_policy_and_from_the_fallback_give_the_same_plan(demo_dir: Path
                                                                           ) -> None:
    sql = "SELECT region, AVG(monthly_spend) AS s FROM customers.accounts GROUP BY region"
    file = demo_dir / "customers" / "datacontract.yaml"
    text = file.read_text()
    assert re.search(r"\n    bounds:.*\n      monthly_spend: \[0, 500\]\n", text)
    assert "minimum" not in text

    def plan() -> dict:
        s = mesh_nb.open_mesh(demo_dir).bind("customers", purpose="churn-analysis",
                                             analyst="a")
        try:
            return dataclasses.asdict(s.explain(sql, epsilon=0.5).plan)
        finally:
            s.end()

    new = plan()
    old = re.sub(r"\n    bounds:.*\n      monthly_spend: \[0, 500\]", "", text)
    old = old.replace("  - name: monthly_spend\n    logicalType: number\n",
                      "  - name: monthly_spend\n    logicalType: number\n"
                      "    logicalTypeOptions: {minimum: 0, maximum: 500}\n")
    assert old != text and "logicalTypeOptions: {minimum: 0" in old
    file.write_text(old)
    assert plan() == new
    contract, problems = check_contract(file)
    assert not problems and contract.table("accounts").column("monthly_spend").bounds == \
        (0.0, 500.0)
    checked = cli("check", str(file))
    assert checked.returncode == 0, checked.stdout
    assert "note:" in checked.stdout and "deprecated" in checked.stdout
    assert "meshNbPrivacy `bounds: {COLUMN: [min, max]}`" in checked.stdout


def test_a_numeric_aggregate_without_bounds_names_the_policy_form(demo_root: Path) -> None:
    from mesh_nb.errors import PolicyViolation
    from mesh_nb.query.policy import check

    c = load_contract(demo_root / "customers")
    t = c.tables[0]
    loose = dataclasses.replace(c, tables=(dataclasses.replace(t, columns=tuple(
        dataclasses.replace(col, bounds=None) for col in t.columns)),))
    with pytest.raises(PolicyViolation, match=r"meshNbPrivacy `bounds: \{monthly_spend"):
        check("SELECT AVG(monthly_spend) FROM customers.accounts", {"customers": loose},
              "churn-analysis")
