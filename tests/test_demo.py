"""The demo mesh: real files written to tmp_path, checked against their own contracts."""

from __future__ import annotations

import importlib.resources
import json
import re
import time
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml
from open_data_contract_standard.model import OpenDataContractStandard

from mesh_nb.demo import write_demo

PRODUCTS = {"customers": ("accounts", 50_000), "sales": ("orders", 200_000)}
IDENTITY = ["full_name", "email", "phone", "birth_date", "postcode", "region"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    start = time.perf_counter()
    returned = write_demo(root, seed=7)
    # Speed is benchmarked, not asserted; shown with `pytest -s`.
    print(f"\nwrite_demo(seed=7) took {time.perf_counter() - start:.2f} s")
    assert Path(returned) == root
    return root


@pytest.fixture(scope="module")
def accounts(demo) -> pd.DataFrame:
    return pd.read_parquet(demo / "customers" / "accounts.parquet")


@pytest.fixture(scope="module")
def orders(demo) -> pd.DataFrame:
    return pd.read_parquet(demo / "sales" / "orders.parquet")


def _contract(root: Path, product: str) -> dict:
    return yaml.safe_load((root / product / "datacontract.yaml").read_text())


def _frames(root: Path) -> dict[str, pd.DataFrame]:
    return {p: pd.read_parquet(root / p / f"{t}.parquet") for p, (t, _) in PRODUCTS.items()}


def _properties(contract: dict) -> dict[str, dict]:
    (table,) = contract["schema"]
    return {p["name"]: p for p in table["properties"]}


def _custom(prop: dict) -> dict:
    return {c["property"]: c["value"] for c in prop.get("customProperties", [])}


def _luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# ---- layout ----------------------------------------------------------------------------------


def test_layout(demo):
    for product, (table, _) in PRODUCTS.items():
        files = sorted(p.name for p in (demo / product).iterdir())
        assert files == sorted(["datacontract.yaml", f"{table}.parquet"])


def test_row_counts(accounts, orders):
    assert len(accounts) == 50_000
    assert len(orders) == 200_000
    assert list(accounts.columns) == ["customer_id", "full_name", "email", "phone", "birth_date",
                                      "postcode", "region", "plan", "signup_date",
                                      "monthly_spend", "churned"]
    assert list(orders.columns) == ["order_id", "customer_id", "order_date", "amount",
                                    "category", "card_number", "ip_address"]
    assert not accounts.isna().any().any() and not orders.isna().any().any()


# ---- customers -------------------------------------------------------------------------------


def test_distinct_customers_and_history_rows(accounts):
    per_customer = accounts.groupby("customer_id").size()
    assert 40_000 <= len(per_customer) <= 42_000
    assert per_customer.max() == 3
    # maxContributions is 2, so bounding must really drop rows for some customers.
    assert (per_customer > 2).sum() > 100


def test_history_rows_share_identity_but_not_subscription(accounts):
    distinct = accounts.groupby("customer_id")[IDENTITY].nunique()
    assert (distinct == 1).all().all()
    multi = accounts[accounts.customer_id.duplicated(keep=False)]
    varying = multi.groupby("customer_id")[["plan", "signup_date", "monthly_spend"]].nunique()
    assert (varying > 1).any(axis=1).mean() > 0.5


def test_customer_value_formats(accounts):
    assert accounts.customer_id.str.fullmatch(r"C\d{7}").all()
    assert accounts.postcode.str.fullmatch(r"\d{5}").all()
    assert accounts.full_name.str.fullmatch(r"[A-Z][a-z]+ [A-Z][A-Za-z]+").all()
    assert accounts.email.str.fullmatch(r"[a-z0-9._]+@[a-z.]*example\.(com|net|org)").all()
    assert accounts.email.str.split("@").str[1].nunique() >= 4
    phone = accounts.phone.drop_duplicates()
    formats = phone.str.replace(r"\d", "9", regex=True).value_counts()
    assert len(formats) >= 4
    assert phone.str.replace(r"\D", "", regex=True).str[-10:].str.len().eq(10).all()


def test_customer_dates(accounts):
    reference = pd.Timestamp("2025-12-31")
    birth = pd.to_datetime(accounts.birth_date)
    age = (reference - birth).dt.days / 365.25
    assert age.min() >= 18 and age.max() <= 90
    signup = pd.to_datetime(accounts.signup_date)
    assert signup.min() >= pd.Timestamp("2018-01-01")
    assert signup.max() <= pd.Timestamp("2025-12-31")


def test_customers_are_interesting_to_analyse(accounts):
    regions = accounts.region.value_counts(normalize=True)
    assert regions.max() - regions.min() > 0.1  # non-uniform
    spend = accounts.groupby("plan").monthly_spend.median()
    assert spend["basic"] < spend["plus"] < spend["pro"]
    churn = accounts.groupby("plan").churned.mean()
    assert churn["basic"] > churn["plus"] > churn["pro"]
    assert 0.15 < accounts.churned.mean() < 0.5
    # Some mass at both spend bounds: clamping matters.
    assert (accounts.monthly_spend == 0).mean() > 0.01
    assert (accounts.monthly_spend == 500).sum() > 50


# ---- sales -----------------------------------------------------------------------------------


def test_sales_customers_exist_in_customers(accounts, orders):
    assert set(orders.customer_id) <= set(accounts.customer_id)


def test_orders_heavy_tailed_per_customer(orders):
    per_customer = orders.groupby("customer_id").size()
    assert per_customer.max() > 100
    assert (per_customer > 10).sum() > 1000  # maxContributions 10 bounds many customers
    assert per_customer.median() <= 5


def test_order_values(orders):
    assert orders.order_id.is_unique
    assert orders.order_id.str.fullmatch(r"O\d{8}").all()
    dates = pd.to_datetime(orders.order_date)
    assert dates.min() >= pd.Timestamp("2019-01-01") and dates.max() <= pd.Timestamp("2025-12-31")
    assert dates.is_monotonic_increasing  # order ids follow time
    octets = orders.ip_address.str.split(".", expand=True).astype(int)
    assert octets.shape[1] == 4 and octets.ge(0).all().all() and octets.le(255).all().all()


def test_card_numbers_pass_luhn(orders):
    cards = orders.card_number.drop_duplicates()
    assert cards.str.fullmatch(r"\d{16}").all()
    assert all(_luhn_ok(c) for c in cards)
    prefix4 = cards.str[:4].astype(int)
    visa = cards.str.startswith("4")
    mc5 = cards.str[:2].astype(int).between(51, 55)
    mc2 = prefix4.between(2221, 2720)
    assert (visa | mc5 | mc2).all()
    assert visa.any() and mc5.any() and mc2.any()
    assert not all(_luhn_ok(c[:-1] + str((int(c[-1]) + 1) % 10)) for c in cards[:100])


# ---- data against its contract ---------------------------------------------------------------


@pytest.mark.parametrize("product", PRODUCTS)
def test_categories_exactly_as_declared(demo, product):
    frame = _frames(demo)[product]
    checked = 0
    for name, prop in _properties(_contract(demo, product)).items():
        for rule in prop.get("quality", []):
            if rule.get("metric") == "invalidValues":
                assert set(frame[name]) == set(rule["arguments"]["validValues"])
                checked += 1
    assert checked == {"customers": 2, "sales": 1}[product]


@pytest.mark.parametrize("product", PRODUCTS)
def test_numbers_within_declared_bounds(demo, product):
    frame = _frames(demo)[product]
    contract = _contract(demo, product)
    (bounds,) = [c["value"]["bounds"] for c in contract["customProperties"]
                 if c["property"] == "meshNbPrivacy"]
    bounded = 0
    for name, prop in _properties(contract).items():
        assert "minimum" not in prop.get("logicalTypeOptions", {})  # not ODCS validity rules
        if prop["logicalType"] == "number":
            lo, hi = bounds[name]
            assert frame[name].between(lo, hi).all()
            bounded += 1
    assert bounded == 1


@pytest.mark.parametrize("product", PRODUCTS)
def test_contract_matches_data_file(demo, product):
    contract = _contract(demo, product)
    (server,) = contract["servers"]
    assert server == {"server": "local-parquet", "type": "local",
                      "path": f"./{PRODUCTS[product][0]}.parquet", "format": "parquet"}
    data = (demo / product / server["path"]).resolve()
    assert data.is_file()
    (table,) = contract["schema"]
    assert data.stem == table["name"] == table["physicalName"]
    frame = _frames(demo)[product]
    assert [p["name"] for p in table["properties"]] == list(frame.columns)
    kinds = {"string": "str", "number": "float64", "boolean": "bool"}
    for prop in table["properties"]:
        if prop["logicalType"] in kinds:
            assert str(frame[prop["name"]].dtype) == kinds[prop["logicalType"]]


# ---- contracts -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def odcs_validator():
    schema = json.loads(importlib.resources.files("open_data_contract_standard")
                        .joinpath("schema.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.mark.parametrize("product", PRODUCTS)
def test_contract_passes_odcs_json_schema(demo, odcs_validator, product):
    errors = [f"{list(e.absolute_path)}: {e.message}"
              for e in odcs_validator.iter_errors(_contract(demo, product))]
    assert errors == []


@pytest.mark.parametrize("product", PRODUCTS)
def test_contract_passes_odcs_model(demo, product):
    model = OpenDataContractStandard.model_validate(_contract(demo, product))
    assert model.name == product
    assert model.apiVersion == "v3.1.0"


def test_contract_is_commented_and_quotes_dates(demo):
    text = (demo / "customers" / "datacontract.yaml").read_text()
    assert text.startswith("# ")
    assert sum(line.lstrip().startswith("#") for line in text.splitlines()) >= 5
    assert re.search(r"dateIn: ['\"]2024-01-15['\"]", text)


@pytest.mark.parametrize("product", PRODUCTS)
def test_contract_columns_declare_privacy(demo, product):
    contract = _contract(demo, product)
    assert contract["status"] == "active" and contract["version"] == "1.0.0"
    owners = [m["username"] for m in contract["team"]["members"] if m["role"] == "owner"]
    assert len(owners) == 1
    entities = {}
    for name, prop in _properties(contract).items():
        assert prop["logicalType"] in {"string", "integer", "number", "boolean", "date"}
        assert prop["classification"] in {"direct-identifier", "quasi-identifier", "sensitive",
                                          "public"}
        custom = _custom(prop)
        assert ("pii" in prop.get("tags", [])) == (custom.get("pii") is True)
        if "meshNbPiiEntity" in custom:
            assert custom.get("pii") is True
            entities[name] = custom["meshNbPiiEntity"]
        if "meshNbGeneralize" in custom:
            assert prop["classification"] == "quasi-identifier"
    expected = {
        "customers": {"full_name": "PERSON", "email": "EMAIL_ADDRESS", "phone": "PHONE_NUMBER",
                      "birth_date": "DATE_TIME"},
        "sales": {"card_number": "CREDIT_CARD", "ip_address": "IP_ADDRESS"},
    }[product]
    assert entities == expected
    assert _properties(contract)["customer_id"]["classification"] == "direct-identifier"


def test_generalizations(demo):
    props = _properties(_contract(demo, "customers"))
    assert _custom(props["birth_date"])["meshNbGeneralize"] == {"truncate": "year"}
    assert _custom(props["postcode"])["meshNbGeneralize"] == {"prefix": 3}
    assert _custom(props["monthly_spend"])["meshNbGeneralize"] == {"bin": 10}


@pytest.mark.parametrize("product", PRODUCTS)
def test_privacy_policy(demo, product):
    contract = _contract(demo, product)
    (policy,) = [c for c in contract["customProperties"] if c["property"] == "meshNbPrivacy"]
    assert policy["id"] == "mesh_nb_privacy"
    value = policy["value"]
    assert value["policyVersion"] == 1
    assert value["privacyUnit"] == "customer_id"
    assert value["joinKeys"] == ["customer_id"]
    assert value["maxContributions"] == {"customers": 2, "sales": 10}[product]
    columns = set(_properties(contract))
    owner = next(m["username"] for m in contract["team"]["members"] if m["role"] == "owner")
    rows = PRODUCTS[product][1]
    expected = {
        "customers": {"churn-analysis": "dp-aggregate", "support-operations": "pseudonymized-rows",
                      "marketing-research": "dp-aggregate"},
        "sales": {"churn-analysis": "dp-aggregate", "fraud-review": "pseudonymized-rows"},
    }[product]
    assert {name: p["access"] for name, p in value["purposes"].items()} == expected
    for purpose in value["purposes"].values():
        assert purpose["description"] and "GDPR Art." in purpose["legalBasis"]
        assert set(purpose["allowedColumns"]) <= columns
        if purpose["access"] == "dp-aggregate":
            budget = purpose["budget"]
            assert budget["scope"] in {"per-analyst", "per-purpose"}
            assert 0 < budget["delta"] < 1 / rows
            assert 0 < purpose["maxEpsilonPerQuery"] <= budget["epsilon"]
        else:
            assert purpose["requiresAcknowledgement"] is True
            assert purpose["approvers"] == [owner]


def test_purpose_details(demo):
    customers = _contract(demo, "customers")["customProperties"][0]["value"]["purposes"]
    assert customers["churn-analysis"]["budget"]["epsilon"] == 3.0
    assert customers["churn-analysis"]["budget"]["scope"] == "per-analyst"
    assert customers["churn-analysis"]["maxEpsilonPerQuery"] == 1.0
    assert set(customers["churn-analysis"]["allowedColumns"]) == {
        "region", "plan", "signup_date", "monthly_spend", "churned", "birth_date"}
    assert customers["marketing-research"]["budget"]["epsilon"] == 1.0
    assert customers["marketing-research"]["budget"]["scope"] == "per-purpose"
    assert customers["marketing-research"]["maxEpsilonPerQuery"] == 0.25
    assert set(customers["support-operations"]["allowedColumns"]) == {
        "customer_id", "email", "postcode", "region", "plan", "signup_date", "churned"}
    sales = _contract(demo, "sales")["customProperties"][0]["value"]["purposes"]
    assert set(sales["churn-analysis"]["allowedColumns"]) == {"order_date", "amount", "category"}
    assert set(sales["fraud-review"]["allowedColumns"]) == {
        "order_id", "customer_id", "order_date", "amount", "category", "card_number",
        "ip_address"}


# ---- determinism -----------------------------------------------------------------------------


def test_same_seed_same_output(demo, tmp_path):
    again = write_demo(tmp_path / "again", seed=7, progress=True)
    first, second = _frames(demo), _frames(again)
    for product in PRODUCTS:
        pd.testing.assert_frame_equal(first[product], second[product])
        assert ((demo / product / "datacontract.yaml").read_text()
                == (again / product / "datacontract.yaml").read_text())


def test_different_seed_different_data(demo, tmp_path):
    other = _frames(write_demo(tmp_path / "other", seed=8))
    first = _frames(demo)
    for product in PRODUCTS:
        assert not first[product].equals(other[product])
    assert not np.array_equal(first["sales"].card_number.to_numpy(),
                              other["sales"].card_number.to_numpy())
