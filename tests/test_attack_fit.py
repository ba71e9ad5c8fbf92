"""An adversary's probes of ``Session.fit`` (issue 19), local backend, real DuckDB and diffprivlib.

Each test is one attack by an analyst who wants one person's data without paying: an outcome
(the model, the card, a note, an error or its class, a warning, a refusal before the charge)
that depends on one person. A probe that held asserts the property; an attack that works is
``xfail(strict=True)`` with what it shows and the fix (none left: the four found were fixed).

1. Inputs that read a person's identity or another row, or that raise only on some values:
   refused before any spend, or made total (the fit completes whatever the data holds).
2. Filters that select nobody or one person; targets whose classes are absent: the fit and
   its card look the same (anchors, padding, noisy counts).
3. Empirical privacy on neighbouring meshes (``tests/neighbours.py``: D, and D1 = D plus one
   person at the top of ``x``): a lower bound on epsilon from many real fits through
   ``Session.fit``, for a statistic that holds (KMeans' centre) and one that does not
   (LinearRegression's coefficient under diffprivlib's diagonal-sensitivity bug).
4. Side doors: warnings that escape the trust boundary, refusals that come after the charge,
   the rebuilt model's classes.
"""

from __future__ import annotations

import itertools
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

import mesh_nb
from mesh_nb.errors import PolicyViolation, QueryFailed
from mesh_nb.values import ModelRelease

from neighbours import PURPOSE, write_neighbours
from test_empirical_privacy import audit, choose_threshold, eps_lower_bound

FEATURES = ["monthly_spend", "plan", "region"]
ALPHA = 0.001  # each one-sided Clopper-Pearson bound of the passing audit
_ANALYSTS = itertools.count()


def _fresh(mesh):
    """A new analyst's session on churn-analysis: a budget of 3 of its own."""
    return mesh.bind("customers", purpose="churn-analysis", analyst=f"mallory-{next(_ANALYSTS)}")


def _entries(mesh, kind: str) -> list:
    return [e for e in mesh.ledger("customers").entries() if e.kind == kind]


# -- 1. inputs ----------------------------------------------------------------------------------

@pytest.mark.parametrize("features,target,where", [
    (["customer_id"], "churned", None),                      # the privacy unit itself
    (["LENGTH(customer_id)"], "churned", None),              # ... inside an expression
    (["monthly_spend"], "email LIKE '%a%'", None),           # a direct identifier as target
    (["rowid"], "churned", None),                            # DuckDB's pseudo-column
    (["(SELECT MAX(monthly_spend) FROM customers.accounts)"], "churned", None),
    (["AVG(monthly_spend) OVER ()"], "churned", None),       # a value from every other row
    (["COUNT(*)"], "churned", None),                         # an aggregate as a feature
    (["COLUMNS('.*')"], "churned", None),
    (["CASE WHEN monthly_spend = 315.89 THEN error('x') ELSE 1 END"], "churned", None),
    (["monthly_spend"], "churned", "customer_id = 'C0010054'"),
    (["monthly_spend"], "churned", "EXISTS (SELECT 1 FROM customers.accounts "
                                   "WHERE monthly_spend = 315.89)"),
    (["date_diff('day', birth_date, signup_date)"], "churned", None),  # two columns
])
def test_identity_and_other_rows_are_refused_before_any_spend(mesh, features, target,
                                                              where) -> None:
    s = _fresh(mesh)
    with pytest.raises(PolicyViolation) as info:
        s.fit("logistic", features, target=target, where=where, epsilon=0.2)
    assert s.budget().epsilon_spent == 0.0 and not _entries(mesh, "model.released")
    assert "C0010054" not in str(info.value) and "315.89" not in str(info.value)


def test_an_input_named_like_an_internal_column_is_refused_by_name(mesh) -> None:
    s = _fresh(mesh)
    with pytest.raises(PolicyViolation, match="duplicate-output"):
        s.fit("logistic", ["monthly_spend AS fit_rows"], target="churned", epsilon=0.2)
    assert s.budget().epsilon_spent == 0.0


@pytest.mark.parametrize("features,target,where", [
    # integer overflow only for one person's spend, in a feature
    (["CASE WHEN monthly_spend BETWEEN 315.88 AND 315.90 THEN "
      "CAST(monthly_spend AS INTEGER) * 1000000000 ELSE 1 END AS f", "plan"], "churned", None),
    # integer overflow only for spends above 214, in the target (a bucket)
    (FEATURES, "CASE WHEN CAST(monthly_spend AS INTEGER) * 10000000 > 0 "
               "THEN 'pos' ELSE 'zero' END AS t", None),
    # a cast and a date far out of range, only for one person, in the filter
    (FEATURES, "churned", "CAST(plan AS INTEGER) = 1 OR monthly_spend >= 0 AND "
                          "(monthly_spend <> 315.89 OR "
                          "signup_date + INTERVAL 300000 YEAR > DATE '2000-01-01')"),
])
def test_values_that_would_raise_for_one_person_never_fail_the_fit(mesh, features, target,
                                                                   where) -> None:
    s = _fresh(mesh)
    r = s.fit("logistic", features, target=target, where=where, epsilon=0.2)
    assert isinstance(r, ModelRelease) and not _entries(mesh, "query.failed")


# -- 2. nobody, one person, absent classes ------------------------------------------------------

@pytest.mark.parametrize("estimator,target,where,options", [
    ("LogisticRegression", "churned", "1 = 0", {}),
    ("GaussianNB", "churned", "monthly_spend = 315.89", {}),  # one customer, or nobody
    ("LogisticRegression", "churned", "churned = false", {}),  # a declared class absent
    ("KMeans", None, "monthly_spend = 315.89", {"n_clusters": 8}),  # more clusters than rows
])
def test_nobody_or_one_person_fits_like_anybody(mesh, estimator, target, where,
                                                options) -> None:
    """The outcome cannot say whether anyone matched: anchors keep every class (and cluster),
    the size is a noisy count, and the classes are the declared ones."""
    s = _fresh(mesh)
    r = s.fit(estimator, FEATURES, target=target, where=where, epsilon=0.3, **options)
    assert isinstance(r, ModelRelease) and r.card["rows"] >= 0
    if target:
        assert list(r.model[-1].classes_) == [False, True]
    assert "315.89" not in str(r.to_wire()) and "315.89" not in "".join(r.notes)
    ledger = str([e.body_json() for e in mesh.ledger("customers").entries()])
    assert "315.89" not in ledger  # the filter's literal is redacted


def test_the_card_counts_are_noisy_not_exact(mesh, demo_dir) -> None:
    """The training size and the held-out counts are noisy draws: never simply the exact
    count of customers (geometric noise at epsilon 0.1 * 5% has a spread of ~280)."""
    import duckdb

    files = [str(p) for p in demo_dir.glob("customers/**/*.parquet")]
    exact = duckdb.sql(f"SELECT COUNT(DISTINCT customer_id) FROM read_parquet({files!r}) "
                       "WHERE churned IS NOT NULL").fetchall()[0][0]
    cards = [_fresh(mesh).fit("logistic", ["monthly_spend"], target="churned",
                              epsilon=0.1).card for _ in range(2)]
    rows = [c["rows"] for c in cards]
    tests = [c["evaluation"]["test_rows"] for c in cards]
    assert len(set(rows)) == 2 and len(set(tests)) == 2
    assert not any(r + t == exact for r, t in zip(rows, tests))
    assert cards[0]["evaluation"]["confusion"] != cards[1]["evaluation"]["confusion"]


# -- 3. empirical privacy on neighbouring meshes ------------------------------------------------

@pytest.fixture(scope="module")
def neighbours(tmp_path_factory: pytest.TempPathFactory):
    """Sessions on D and on D1 (D plus one person with x = 100, group a), purpose ``audit``."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MESH_NB_OWNER_HOME", raising=False)
        mp.delenv("MESH_NB_LEDGER_URL", raising=False)
        d0, d1 = write_neighbours(Path(tmp_path_factory.mktemp("fit-audit")))
        yield tuple(mesh_nb.open_mesh(d).bind("people", purpose=PURPOSE, analyst="auditor")
                    for d in (d0, d1))


def _scores(sessions, fit, score, n: int) -> tuple[np.ndarray, np.ndarray, float]:
    """``n`` fits on each of D and D1 through ``Session.fit``; their scores and the epsilon
    one fit charged."""
    out, charged = [], []
    for s in sessions:
        before = s.budget().epsilon_spent
        releases = [fit(s) for _ in range(n)]
        charged.append((s.budget().epsilon_spent - before) / n)
        out.append(np.array([score(r) for r in releases], dtype=float))
    assert math.isclose(charged[0], charged[1], rel_tol=1e-9)
    return out[0], out[1], charged[0]


def _bound(sessions, fit, score, draws: int, alpha: float) -> dict:
    """A threshold chosen on a calibration sample, then the epsilon lower bound from
    ``draws`` fresh fits on each dataset."""
    c0, c1, _ = _scores(sessions, fit, score, draws // 2)
    threshold = choose_threshold(c0, c1, draws)
    s0, s1, charged = _scores(sessions, fit, score, draws)
    result = audit(s0, s1, threshold, 0.0)
    result["eps_lb"] = _lb(result, alpha)
    return {**result, "charged": charged}


def _lb(r: dict, alpha: float) -> float:
    return eps_lower_bound(r["fp"], r["fn"], r["n0"], r["n1"], 0.0, alpha=alpha)


def test_kmeans_centre_bound_is_below_the_charge(neighbours) -> None:
    """One released statistic, many fits: KMeans' one centre (the noisy mean of the encoded
    x, where the added person sits at the top) on D and D1, under a filter that keeps few
    people, so that the resize (padding with all-zero rows) does the work. The bound holds with probability
    at least 1 - 2 * ALPHA for a correct mechanism."""
    def fit(s):  # about 20 people match in D: the training set is mostly padding
        return s.fit("KMeans", ["x"], n_clusters=1, epsilon=1.0, where="x >= 90")

    r = _bound(neighbours, fit, lambda rel: rel.params["cluster_centers_"][0][0], 300, ALPHA)
    print(f"\nKMeans centre: fp {r['fp']}/{r['n0']} fn {r['fn']}/{r['n1']} "
          f"eps_lb {r['eps_lb']:.3f} <= charged {r['charged']:.3f}")
    assert r["eps_lb"] <= r["charged"]


# An attack that worked until fit.py was fixed (the test keeps it fixed).
def test_linear_regression_coefficient_bound_is_below_the_charge(neighbours) -> None:
    def fit(s):
        return s.fit("LinearRegression", ["CASE WHEN x = 100 THEN 1 ELSE 0 END AS flag"],
                     target="x", epsilon=1.0, evaluate=False)

    # score high = "the person is in": a moderate coefficient
    r = _bound(neighbours, fit, lambda rel: -math.log10(abs(rel.params["coef_"][0]) + 1e-300),
               300, ALPHA)
    print(f"\nLinearRegression flag: fp {r['fp']}/{r['n0']} fn {r['fn']}/{r['n1']} "
          f"eps_lb {r['eps_lb']:.3f} vs charged {r['charged']:.3f}")
    assert r["eps_lb"] <= r["charged"]


# -- 4. side doors ------------------------------------------------------------------------------

# An attack that worked until fit.py was fixed (the test keeps it fixed).
def test_no_warning_from_training_reaches_the_analyst(mesh) -> None:
    s = _fresh(mesh)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        s.fit("logistic", FEATURES, target="churned", epsilon=0.2, max_iter=1)
    escaped = [w for w in seen if not issubclass(w.category, DeprecationWarning)]
    assert not escaped, [f"{w.category.__name__}: {w.message}" for w in escaped]


# An attack that worked until fit.py was fixed (the test keeps it fixed).
def test_pca_components_beyond_the_width_are_refused_before_the_charge(mesh) -> None:
    s = _fresh(mesh)
    with pytest.raises(PolicyViolation, match="fit-option"):
        s.fit("PCA", ["monthly_spend", "plan"], n_components=20, epsilon=0.2)
    assert s.budget().epsilon_spent == 0.0


def test_pca_components_beyond_the_width_fail_the_same_for_any_data(mesh) -> None:
    """Today's behaviour: charged, then the one generic QueryFailed, whatever the filter
    selects (the failure depends on the public width only)."""
    for where in ("1 = 0", "monthly_spend = 315.89", None):
        s = _fresh(mesh)
        with pytest.raises((QueryFailed, PolicyViolation)) as info:
            s.fit("PCA", ["monthly_spend", "plan"], n_components=20, epsilon=0.2, where=where)
        assert "315.89" not in str(info.value)


# An attack that worked until fit.py was fixed (the test keeps it fixed).
def test_the_rebuilt_model_keeps_the_fitted_class_order(mesh) -> None:
    s = _fresh(mesh)
    r = s.fit("logistic", ["monthly_spend"], epsilon=0.5,
              target="CASE WHEN churned THEN 'yes' ELSE 'no' END AS c")
    assert list(r.model[-1].classes_) == list(r.params["classes_"])
    assert r.evaluation["value"] > 0.6
