"""The values a session returns own their one wire form: a round trip keeps every field and
dtype, the server's response models name exactly the fields ``to_wire`` writes, the lab's MIME
payload has exactly the keys of the TypeScript interface that renders it, and the faces show
the values through IPython's formatters (the core imports no face)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

from mesh_nb import open_mesh
from mesh_nb.display import register, unregister
from mesh_nb.lab.mime import RELEASE_MIME, release_data
from mesh_nb.server import wire
from mesh_nb.values import BudgetStatus, Explanation, Release, RowRelease

QUERY = ("SELECT region, COUNT(*) AS n, AVG(monthly_spend) AS spend FROM customers.accounts "
         "GROUP BY region")
TS = Path(__file__).resolve().parents[1] / "extension" / "src" / "mime.ts"


@pytest.fixture(scope="module")
def session(demo_root: Path, tmp_path_factory: pytest.TempPathFactory):
    from live_server import copy_demo

    mesh = open_mesh(copy_demo(demo_root, tmp_path_factory.mktemp("values") / "mesh"))
    with mesh.bind("customers", purpose="churn-analysis", analyst="val") as s:
        yield s


def _same_frames(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal values and columns; numeric and boolean dtypes kept exactly (text may come back
    as pandas' string dtype where it left as object)."""
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True),
                                  check_dtype=False)
    for c in a.columns:
        if pd.api.types.is_numeric_dtype(b[c]) or pd.api.types.is_bool_dtype(b[c]):
            assert a[c].dtype == b[c].dtype, c


def test_a_release_round_trips_through_the_wire(session) -> None:
    r = session.query(QUERY, epsilon=0.3)
    d = r.to_wire()
    assert set(d) == set(wire.ReleaseOut.model_fields), "ReleaseOut and Release.to_wire differ"
    back = Release.from_wire(wire.ReleaseOut(**d).model_dump())
    _same_frames(back.frame, r.frame)
    _same_frames(back.accuracy, r.accuracy)
    assert (back.epsilon, back.delta, back.sql, back.purpose, back.products, back.notes,
            back.release_id, back.cached, back.remaining, back.private) == (
        r.epsilon, r.delta, r.sql, r.purpose, r.products, r.notes, r.release_id, r.cached,
        r.remaining, True)
    assert isinstance(back.products, tuple) and isinstance(back.notes, tuple)


def test_a_seeded_release_does_not_say_it_is_private_on_the_wire(session) -> None:
    from mesh_nb.query.runner import run

    r = run(session, QUERY, epsilon=0.1, seed=3)
    assert r.private is False and "private" not in r.to_wire()


def test_an_explanation_and_a_budget_round_trip(session) -> None:
    e = session.explain(QUERY, epsilon=0.2)
    d = e.to_wire()
    assert set(d) == set(wire.ExplanationOut.model_fields)
    back = Explanation.from_wire(wire.ExplanationOut(**d).model_dump())
    assert back.plan == e.plan and str(back) == str(e)
    _same_frames(back.table, e.table)
    b = session.budget()
    assert BudgetStatus.from_wire(b.to_wire()) == b
    assert b.to_wire()["epsilon_spent"] == pytest.approx(0.3 + 0.1)


def test_rows_round_trip(demo_dir: Path) -> None:
    mesh = open_mesh(demo_dir)
    with mesh.bind("customers", purpose="support-operations", analyst="rows",
                   acknowledge=True) as s:
        r = s.rows("SELECT customer_id, email, postcode FROM customers.accounts LIMIT 7")
    d = r.to_wire()
    assert set(d) == set(wire.RowReleaseOut.model_fields)
    back = RowRelease.from_wire(wire.RowReleaseOut(**d).model_dump())
    _same_frames(back.frame, r.frame)
    assert (back.purpose, back.products, back.tokenized, back.generalized, back.sql,
            back.release_id, back.rows) == (r.purpose, r.products, r.tokenized, r.generalized,
                                            r.sql, r.release_id, 7)
    assert back.tokenized == ("customer_id", "email") and back.generalized == ("postcode",)


def _ts_interface(name: str) -> set[str]:
    """The top-level keys of one TypeScript interface in mime.ts."""
    text = TS.read_text(encoding="utf-8")
    body = re.search(r"interface %s \{(.*?)\n\}" % name, text, re.S)
    assert body, f"no interface {name} in {TS}"
    keys, depth = set(), 0
    for line in body.group(1).splitlines():
        if depth == 0 and (m := re.match(r"\s*(\w+)\??:", line)):
            keys.add(m.group(1))
        depth += line.count("{") - line.count("}")
    return keys


@pytest.mark.skipif(not TS.exists(), reason="the extension's sources are not in this checkout")
def test_the_mime_payload_has_the_keys_of_the_typescript_interface(session) -> None:
    payload = release_data(session.query(QUERY, epsilon=0.3))  # the same query: cached
    assert set(payload) == _ts_interface("IReleaseBundle")
    assert {c["name"] for c in payload["columns"]} == {"region", "n", "spend"}


def test_the_faces_register_with_ipython_formatters(session) -> None:
    shell = InteractiveShell.instance()
    r = session.query(QUERY, epsilon=0.3)
    unregister(shell)
    data, _ = shell.display_formatter.format(r)
    assert set(data) == {"text/plain"}, "without the faces a release is plain text"
    register(shell)
    register(shell)  # idempotent
    data, _ = shell.display_formatter.format(r)
    assert set(data) == {"text/plain", "text/html", RELEASE_MIME}
    assert "churn-analysis" in data["text/html"] and "±" in data["text/html"]
    assert data[RELEASE_MIME]["release_id"] == r.release_id
    e, _ = shell.display_formatter.format(session.explain(QUERY, epsilon=0.3))
    assert "mesh-nb-explain" in e["text/html"] and "engine SQL" in e["text/html"]
    unregister(shell)
    assert set(shell.display_formatter.format(r)[0]) == {"text/plain"}
