"""The faces of a fit (issue 19): ``%%mesh_fit`` through a real IPython shell, the model card
(HTML and text), and the owner's side (report, minimization, lineage, the lab's state) counting
``model.released`` as a release and a spend. Real demo mesh, real diffprivlib, real ledger."""

from __future__ import annotations

import json
import math
import re
import shutil
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import mesh_nb
from mesh_nb.display import model_html
from mesh_nb.lab.comm import session_releases
from mesh_nb.magics import MeshMagics, parse_options, strip_sql_comments, unquote
from mesh_nb.review import export_openlineage, minimization, usage_report
from mesh_nb.review.lineage import PRIVACY_FACET
from mesh_nb.values import ModelRelease

FEATURES = "monthly_spend, plan, region"


class Cells(HTMLParser):
    """The text of every <td> per table class, and every chart bar's attributes."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.bars: list[dict[str, str]] = []
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("class", "")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []
        elif tag == "g" and "mesh-nb-bar" in a.get("class", ""):
            self.bars.append(a)

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture
def shell(demo_dir: Path):
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "mesh_nb")
    ip.run_line_magic("mesh_bind",
                      f"customers --purpose churn-analysis --as alice --mesh {demo_dir}")
    yield ip
    ip.run_line_magic("unload_ext", "mesh_nb")


def _session(ip):
    return next(m for m in ip.magics_manager.registry.values()
                if isinstance(m, MeshMagics)).session


def _kinds(demo_dir: Path) -> list[str]:
    return [e.kind for e in mesh_nb.open_mesh(demo_dir).ledger("customers").entries()]


@pytest.fixture(scope="module")
def fitted(demo_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """One mesh where alice fitted a logistic model (ε 0.5, filtered) and ran one query
    (ε 0.25); read-only for the tests that use it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MESH_NB_OWNER_HOME", raising=False)
        mp.delenv("MESH_NB_LEDGER_URL", raising=False)
        root = tmp_path_factory.mktemp("fit-faces") / "mesh"
        shutil.copytree(demo_root, root, ignore=shutil.ignore_patterns(".mesh_nb", ".owner"))
        mesh = mesh_nb.open_mesh(root)
        session = mesh.bind("customers", purpose="churn-analysis", analyst="alice")
        model = session.fit("logistic", FEATURES, target="churned", epsilon=0.5,
                            where="signup_date < '2026-01-01'")
        query = session.query("SELECT COUNT(*) AS n FROM customers.accounts", epsilon=0.25)
        yield mesh, session, model, query


# -- %%mesh_fit -------------------------------------------------------------------------------

def test_magic_fits_stores_and_shows_the_model(shell, demo_dir, capsys) -> None:
    body = ("monthly_spend,  -- dollars a month\n"
            "plan,\n"
            "CASE WHEN signup_date < DATE '2025-01-01' THEN 'old' ELSE 'new' END AS cohort")
    shell.run_cell_magic("mesh_fit", "--model logistic -t churned -e 0.5 "
                         "--where \"region <> 'west'\" -o C=0.5 -o max_iter=50 -s churn", body)
    r = shell.user_ns["churn"]
    assert isinstance(r, ModelRelease) and r.estimator == "LogisticRegression"
    assert [f["name"] for f in r.card["features"]] == ["monthly_spend", "plan", "cohort"]
    assert r.card["target"]["name"] == "churned"
    assert r.card["options"] == {"C": 0.5, "max_iter": 50}
    assert type(r.card["options"]["max_iter"]) is int
    assert math.isclose(_session(shell).budget().epsilon_spent, 0.5, abs_tol=1e-6)
    entries = mesh_nb.open_mesh(demo_dir).ledger("customers").entries(kind="model.released")
    assert len(entries) == 1 and entries[0].details["release"] == r.release_id
    query = entries[0].details["query"]
    assert "west" not in query and "dollars" not in query  # literals redacted, comment gone
    assert any(c.endswith(".region") for c in entries[0].details["columns"])  # the filter
    assert r.release_id in capsys.readouterr().out  # displayed
    html = shell.display_formatter.format(r)[0]["text/html"]
    assert "mesh-nb-model" in html and "cohort" in html


def test_magic_no_evaluate_and_boolean_option(shell) -> None:
    shell.run_cell_magic("mesh_fit", "-m linear --target monthly_spend --epsilon 0.3 "
                         "--no-evaluate -o fit_intercept=false --save lin", "plan, region")
    r = shell.user_ns["lin"]
    assert r.estimator == "LinearRegression" and r.evaluation is None
    assert r.card["epsilon_evaluation"] == 0.0 and r.card["options"] == {"fit_intercept": False}
    assert r.params["intercept_"] in (0, 0.0)  # no intercept was fitted


def test_help_prints_usage_and_spends_nothing(shell, demo_dir, capsys) -> None:
    shell.run_line_magic("mesh_fit", "")
    line_help = capsys.readouterr().out
    shell.run_cell_magic("mesh_fit", "--help", "plan")
    cell_help = capsys.readouterr().out
    for text in (line_help, cell_help):
        assert "--model" in text and "--option" in text and "--no-evaluate" in text
        assert "SELECT list" in text
    shell.run_cell("%%mesh_fit?")
    assert "--target" in capsys.readouterr().out
    assert "model.released" not in _kinds(demo_dir)


@pytest.mark.parametrize("line,body,match", [
    ("-t churned", "plan", "give the estimator"),
    ("-m logistic -t churned", "  -- nothing\n", "the cell body lists the features"),
    ("-m logistic -t churned -o C", "plan", "KEY=VALUE"),
    ("-m logistic -t churned -o C=1 -o C=2", "plan", "given twice"),
    ("-m logistic -t churned", "email", r"\[group-by-identifier\]"),
    ("-m logistic -t churned -o solver=saga", "plan", r"\[fit-option\]"),
    ("-m nope -t churned", "plan", r"\[fit-estimator\]"),
    ("-m kmeans -t churned", "plan", r"\[fit-target\]"),
])
def test_errors_are_short_and_spend_nothing(shell, demo_dir, capsys, line, body,
                                            match) -> None:
    result = shell.run_cell(f"%%mesh_fit {line}\n{body}")
    assert isinstance(result.error_in_exec, UsageError)
    assert re.search(match, str(result.error_in_exec))
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    assert "model.released" not in _kinds(demo_dir)
    assert _session(shell).budget().epsilon_spent == 0.0


def test_not_bound_says_how(demo_dir) -> None:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "mesh_nb")
    try:
        with pytest.raises(UsageError, match="not bound"):
            ip.run_cell_magic("mesh_fit", "-m logistic -t churned", "plan")
    finally:
        ip.run_line_magic("unload_ext", "mesh_nb")


def test_argument_helpers() -> None:
    assert parse_options(["C=0.5", "max_iter=50", "fit_intercept=FALSE", "n=-3", "s=abc",
                          '"x=1e-3"']) == {"C": 0.5, "max_iter": 50, "fit_intercept": False,
                                           "n": -3, "s": "abc", "x": 0.001}
    for bad in (["=1"], ["C="], ["1C=2"]):
        with pytest.raises(UsageError, match="KEY=VALUE"):
            parse_options(bad)
    assert unquote("\"plan = 'pro'\"") == "plan = 'pro'" and unquote("'a'") == "a"
    assert unquote("a'") == "a'" and unquote(None) is None
    assert strip_sql_comments("a, -- x\n'--not', -- y\nb") == "a,\n'--not',\nb"


# -- the card ---------------------------------------------------------------------------------

def test_card_shows_features_interval_confusion_split_and_coefficients(fitted) -> None:
    _, _, r, _ = fitted
    html = model_html(r)
    cells = Cells(html)
    features = cells.tables["mesh-nb-model-features"]
    assert [row[0] for row in features] == ["monthly_spend", "plan", "region",
                                            "churned (target)"]
    assert features[0][1:] == ["numeric", "0 – 500"]
    assert features[1][2] == "basic, plus, pro"
    ev = r.evaluation
    lo, hi = ev["ci95"]
    assert f"95% interval {lo:.3f} – {hi:.3f}" in html and f"{ev['value']:.3f}" in html
    assert f"held-out AUC {ev['auc']:.3f}" in html
    confusion = cells.tables["mesh-nb-model-confusion"]
    counts = [[int(v.replace(",", "")) for v in row[1:]] for row in confusion]
    assert counts == ev["confusion"] and sum(map(sum, counts)) == ev["test_rows"]
    split = {k: v for k, v in cells.tables["mesh-nb-model-split"]}
    assert math.isclose(float(split["model"]) + float(split["training-set size (noisy count)"])
                        + float(split["held-out evaluation"]), 0.5, rel_tol=1e-3)
    assert split["total"] == "0.5"
    assert f"{r.card['rows']:,} rows" in html
    coef = r.coefficients()
    terms = list(coef["term"])
    assert terms == [*r.encoded_columns, "(intercept)"]
    assert terms[:4] == ["monthly_spend", "plan=basic", "plan=plus", "plan=pro"]
    assert set(coef["output"]) == {"churned=True"}
    released = [*r.params["coef_"][0], r.params["intercept_"][0]]
    assert list(coef["coefficient"]) == pytest.approx(released)
    bars = [(b["data-label"], float(b["data-value"])) for b in cells.bars]
    assert bars == list(zip(terms, released, strict=True))  # the chart shows what was released
    for note in r.notes:
        assert escape(note) in html


def test_card_escapes_every_string(fitted) -> None:
    _, _, r, _ = fitted
    evil = "<img src=x onerror=alert(1)>"
    wire = json.loads(json.dumps(r.to_wire()))
    wire["card"]["features"][1]["name"] = evil
    wire["card"]["features"][1]["categories"] = ["<b>basic</b>", "plus", "pro"]
    wire["card"]["target"]["name"] = "<script>x</script>"
    wire["notes"] = ["<script>alert(2)</script>"]
    wire["purpose"] = "a<b"
    html = model_html(ModelRelease.from_wire(wire))
    for raw in (evil, "<b>basic</b>", "<script>", "a<b"):
        assert raw not in html
    assert escape(evil) in html and escape(f"{evil}=<b>basic</b>") in html
    assert escape("<script>alert(2)</script>") in html


def test_card_of_a_model_without_target_or_coefficients(shell) -> None:
    shell.run_cell_magic("mesh_fit", "-m kmeans -e 0.2 -o n_clusters=3 -s km", FEATURES)
    r = shell.user_ns["km"]
    html = model_html(r)
    cells = Cells(html)
    assert "mesh-nb-model-coef" not in cells.tables and not cells.bars
    assert "No held-out evaluation" in html and "(target)" not in html
    assert r.coefficients().empty


def test_text_fallback(fitted) -> None:
    _, _, r, _ = fitted
    text = str(r)
    assert text.splitlines()[0] == r.summary()
    assert "region (categorical): north, south, east, west, central" in text
    assert "monthly_spend (numeric): 0..500" in text
    assert "ε split: model" in text and "churned=True · plan=basic:" in text
    assert repr(r).startswith(f"<{r.summary()}>")


# -- the owner's side --------------------------------------------------------------------------

def test_report_counts_the_fit_as_a_release_and_its_epsilon(fitted) -> None:
    mesh, _, model, query = fitted
    report = usage_report(mesh.product("customers"))
    usage = report.tables["usage"].set_index(["purpose", "analyst"]).loc[
        ("churn-analysis", "alice")]
    assert usage["releases"] == 2 and usage["models"] == 1
    assert usage["epsilon"] == pytest.approx(model.epsilon + query.epsilon)
    models = report.tables["models"]
    assert len(models) == 1
    row = models.iloc[0]
    assert (row["purpose"], row["analyst"], row["estimator"], row["target"], row["features"]) \
        == ("churn-analysis", "alice", "LogisticRegression", "churned",
            "monthly_spend, plan, region")
    assert row["fits"] == 1 and row["failed"] == 0 and row["epsilon"] == pytest.approx(0.5)
    budget = report.tables["budget"].set_index(["purpose", "holder"]).loc[
        ("churn-analysis", "alice")]
    assert budget["releases"] == 2 and budget["epsilon"] == pytest.approx(0.75)
    assert budget["remaining_epsilon"] == pytest.approx(3 - 0.75)
    assert "(1 model(s))" in report.summary()
    html = report.to_html()
    table = html.split('id="mesh-nb-models"')[1].split("</table>")[0]
    assert "LogisticRegression" in table and "monthly_spend, plan, region" in table


def test_a_failed_fit_is_charged_but_no_model(mesh) -> None:
    """What run_fit records when training fails after the reserve: the spend, then
    ``query.failed`` with the same release id (written here through the same session API)."""
    s = mesh.bind("customers", purpose="churn-analysis", analyst="bob")
    s.fit("naive-bayes", FEATURES, target="churned", epsilon=0.2)
    second = s.fit("naive-bayes", FEATURES, target="churned", epsilon=0.3)
    s.record("query.failed", {"release": second.release_id, "rule": "fit-error"},
             s.products)
    report = usage_report(mesh.product("customers"))
    usage = report.tables["usage"].set_index("analyst").loc["bob"]
    assert (usage["releases"], usage["models"], usage["failed"]) == (1, 1, 1)
    assert usage["epsilon"] == pytest.approx(0.5)  # the failed fit was charged
    row = report.tables["models"].iloc[0]
    assert (row["fits"], row["failed"], row["estimator"]) == (2, 1, "GaussianNB")


def test_minimization_counts_the_fit_inputs_as_touched(mesh) -> None:
    with mesh.bind("customers", purpose="churn-analysis", analyst="alice") as s:
        s.fit("logistic", "plan, region", target="churned", epsilon=0.2,
              where="monthly_spend > 10")
    mini = minimization(mesh.product("customers")).by_purpose
    churn = mini[mini["purpose"] == "churn-analysis"].set_index("column")
    for col in ("plan", "region", "churned", "monthly_spend"):  # features, target, filter
        assert churn.loc[col, "touches"] == 1 and not churn.loc[col, "flagged"]
    assert churn.loc["signup_date", "flagged"]  # not used by the fit
    assert set(churn["purpose_releases"]) == {1}


def test_lineage_has_a_model_run_and_the_session_counts_it(fitted, tmp_path) -> None:
    mesh, session, model, query = fitted
    out = export_openlineage(mesh.product("customers"), tmp_path / "l.jsonl", mesh=mesh)
    assert out.releases == 2  # validated against the spec (validate=True)
    runs = [ev for ev in out.events if ev["eventType"] == "COMPLETE"
            and ev["job"]["facets"]["jobType"]["jobType"] == "MODEL"]
    assert len(runs) == 1
    ev = runs[0]
    privacy = ev["run"]["facets"][PRIVACY_FACET]
    assert privacy["releaseId"] == model.release_id and privacy["epsilon"] == 0.5
    assert privacy["estimator"] == "LogisticRegression"
    assert "2026-01-01" not in ev["job"]["facets"]["sql"]["query"]
    (output,) = ev["outputs"]
    assert output["name"] == f"models.{model.release_id}"
    lineage = output["facets"]["columnLineage"]
    assert set(lineage["fields"]) == {"monthly_spend", "plan", "region", "churned"}
    for f in lineage["fields"].values():
        assert all(t["masking"] for i in f["inputFields"] for t in i["transformations"])
    assert [(d["field"], d["transformations"][0]["subtype"]) for d in lineage["dataset"]] == [
        ("signup_date", "FILTER")]
    sess = [e for e in out.events if e["job"]["name"].startswith("session.")
            and e["eventType"] != "START"]
    assert sess[-1]["run"]["facets"][PRIVACY_FACET]["epsilon"] == pytest.approx(0.75)
    assert sess[-1]["run"]["facets"][PRIVACY_FACET]["releases"] == 2


def test_lab_state_lists_the_model_release(fitted) -> None:
    _, session, model, query = fitted
    releases = session_releases(session)
    assert [r["release_id"] for r in releases] == [query.release_id, model.release_id]
    newest, oldest = releases
    assert newest["model"] is None and newest["epsilon"] == 0.25
    assert oldest["model"] == "LogisticRegression of churned on monthly_spend, plan, region"
    assert oldest["epsilon"] == 0.5 and "2026-01-01" not in oldest["sql"]
