"""Row access: keyed tokens, declared generalization, logged row counts (real DuckDB, SQLite)."""

from __future__ import annotations

import pandas as pd
import pytest

import mesh_nb
from mesh_nb import MeshError, PolicyViolation
from mesh_nb.query.pseudonym import generalize, purpose_key, tokenize


@pytest.fixture
def support(mesh):
    return mesh.bind("customers", purpose="support-operations", analyst="bob", acknowledge=True)


SQL = ("SELECT customer_id, email, postcode, region, plan FROM customers.accounts "
       "WHERE region = 'north' ORDER BY plan, region LIMIT 200")


def test_identifiers_are_tokens_and_quasi_identifiers_generalized(mesh, support, demo_dir):
    r = support.rows(SQL)
    raw = pd.read_parquet(demo_dir / "customers" / "accounts.parquet")
    assert r.rows == 200 and set(r.tokenized) == {"customer_id", "email"}
    assert r.generalized == ("postcode",)
    assert r.frame.customer_id.str.fullmatch(r"tok_[0-9a-f]{16}").all()
    assert not set(r.frame.email) & set(raw.email)
    assert r.frame.postcode.str.fullmatch(r"\d{3}\*\*").all()
    assert (r.frame.region == "north").all()
    (entry,) = mesh.ledger("customers").entries(kind="query.released")
    assert entry.details["rows"] == 200 and entry.details["access"] == "pseudonymized-rows"
    assert "north" not in str(entry.details)


def test_tokens_are_stable_within_the_purpose(support, mesh):
    first = support.rows(SQL).frame
    again = mesh.bind("customers", purpose="support-operations", analyst="carol",
                      acknowledge=True).rows(SQL).frame
    pd.testing.assert_series_equal(first.customer_id, again.customer_id)


def test_tokens_differ_across_purposes_and_columns(tmp_path):
    values = pd.Series(["C0000001", "C0000002", "C0000001", None])
    a = tokenize(values, purpose_key(tmp_path, "one"), "customer_id")
    b = tokenize(values, purpose_key(tmp_path, "two"), "customer_id")
    c = tokenize(values, purpose_key(tmp_path, "one"), "other_id")
    assert a[0] == a[2] and a[0] != a[1] and pd.isna(a[3])
    assert not set(a.dropna()) & set(b.dropna()) and not set(a.dropna()) & set(c.dropna())
    assert (tmp_path / "pseudonym-one.key").stat().st_mode & 0o777 == 0o600


def test_generalizations():
    assert list(generalize(pd.Series([0.0, 9.99, 10.0, 123.4]), {"bin": 10})) == [0, 0, 10, 120]
    dates = generalize(pd.Series(pd.to_datetime(["1980-05-17", "1999-12-31"])), {"truncate": "year"})
    assert [d.year for d in dates] == [1980, 1999] and all(d.month == 1 for d in dates)
    assert list(generalize(pd.Series(["12345", "98"]), {"prefix": 3})) == ["123**", "98"]


def test_identifier_in_where_is_refused_and_recorded(support, mesh):
    with pytest.raises(PolicyViolation) as err:
        support.rows("SELECT plan FROM customers.accounts WHERE email = 'x@example.com'")
    (entry,) = mesh.ledger("customers").entries(kind="query.rejected")
    assert entry.details["rule"] == err.value.rule and "x@example.com" not in str(entry.details)


def test_columns_outside_the_purpose_are_refused(support):
    with pytest.raises(PolicyViolation, match="full_name"):
        support.rows("SELECT full_name FROM customers.accounts")


def test_aggregate_purpose_has_no_rows(mesh):
    s = mesh.bind("customers", purpose="churn-analysis", analyst="a")
    with pytest.raises(MeshError, match="only differentially private aggregates"):
        s.rows("SELECT region FROM customers.accounts")
