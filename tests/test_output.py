"""Output people read at a glance: release charts that show exactly what was released, thousands
separators, explain and rows as HTML tables, the owner's report charts and minimization lines,
`mesh-nb demo` text, and widgets that fall back to text in a terminal."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import ipywidgets
import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

import mesh_nb
from mesh_nb.display import explain_html, release_html, rows_html
from mesh_nb.review import usage_report
from mesh_nb.text import plural
from mesh_nb.widgets.bind import BindForm
from mesh_nb.widgets.explorer import EpsilonExplorer
from mesh_nb.widgets.ledger import LedgerBrowser

GROUPED = ("SELECT plan, COUNT(*) AS n, AVG(monthly_spend) AS spend FROM customers.accounts "
           "GROUP BY plan")


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text of each <td>."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.cells: list[str] = []
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "td":
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.cells.append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def all(self, tag: str, cls: str | None = None) -> list[dict[str, str]]:
        return [a for t, a in self.tags
                if t == tag and (cls is None or cls in a.get("class", "").split())]


def test_grouped_release_chart_holds_exactly_the_released_values_and_intervals(session):
    r = session.query(GROUPED, epsilon=0.4)
    html = Tags(release_html(r))
    charts = html.all("svg", "mesh-nb-chart")
    assert [c["data-title"].split(" ")[0] for c in charts] == ["n", "spend"]
    bars = html.all("g", "mesh-nb-bar")
    assert len(bars) == 2 * len(r.frame)
    for output, chart_bars in (("n", bars[:len(r.frame)]), ("spend", bars[len(r.frame):])):
        half = r.accuracy[r.accuracy["output"] == output].set_index("row")["ci95_half_width"]
        for i, bar in enumerate(chart_bars):
            value = float(r.frame[output].iloc[i])
            assert float(bar["data-value"]) == value
            assert float(bar["data-low"]) == pytest.approx(value - half[i])
            assert float(bar["data-high"]) == pytest.approx(value + half[i])
        key = r.frame["plan"].iloc[0]
        assert chart_bars[0]["data-label"] == key
    assert "(other)" in {b["data-label"] for b in bars}  # the NULL group, labelled


def test_release_table_has_thousands_separators(session):
    r = session.query(GROUPED, epsilon=0.4)
    cells = Tags(release_html(r)).cells
    big = int(r.frame["n"].max())
    assert big >= 1000
    assert any(c.startswith(f"{big:,} ± ") for c in cells), cells
    assert not any(c.startswith(f"{big} ") for c in cells)
    text = str(r)
    assert f"{big:,} ± " in text and "nan" not in text.lower()
    assert "ε 0.4" in text.splitlines()[0]


def test_ungrouped_release_has_no_chart_and_values_without_interval_show_none(session):
    r = session.query("SELECT COUNT(*) AS n FROM customers.accounts", epsilon=0.2)
    assert "mesh-nb-chart" not in release_html(r)
    bare = mesh_nb.values.Release(pd.DataFrame({"k": ["a", "b"], "n": [1200, 3]}), 0.1, 0.0,
                                  r.accuracy.iloc[:0])
    assert "±" not in str(bare) and "1,200" in str(bare)


def test_explain_html_is_a_table_with_code(session):
    e = session.explain(GROUPED, epsilon=0.5)
    html = explain_html(e)
    parsed = Tags(html)
    assert parsed.all("table") and "<pre class='mesh-nb-explain'>" not in html
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", html)
    for label in ("mechanism", "ε", "noise scale", "95% ±"):
        assert label in headers, headers
    assert "<code class='language-sql'>" in html
    assert set(e.table["mechanism"]) <= set(parsed.cells)


def test_row_release_renders_through_great_tables(mesh):
    with mesh.bind("customers", purpose="support-operations", analyst="bob",
                   acknowledge=True) as s:
        rows = s.rows("SELECT customer_id, plan FROM customers.accounts LIMIT 3")
    html = rows_html(rows)
    assert 'class="gt_table"' in html and "tokens: customer_id" in html
    assert len(Tags(html).cells) >= 2 * rows.rows


def test_report_has_a_budget_chart_per_purpose_and_one_minimization_line_per_purpose(mesh):
    with mesh.bind("customers", purpose="churn-analysis", analyst="alice") as s:
        s.query(GROUPED, epsilon=0.3)
        s.query("SELECT COUNT(*) AS n FROM customers.accounts", epsilon=0.2)
    report = usage_report(mesh.product("customers"))
    html = Tags(report.to_html())
    budgets = html.all("svg", "mesh-nb-budget")
    with_budget = sorted(n for n, p in mesh.product("customers").contract.purposes.items()
                         if p.budget)
    assert sorted(c["data-title"].split(":")[0] for c in budgets) == with_budget
    churn = next(c for c in budgets if c["data-title"].startswith("churn-analysis"))
    assert float(churn["data-cap"]) == 3.0
    points = [float(p["data-value"]) for p in html.all("circle", "mesh-nb-point")]
    assert points[:2] == pytest.approx([0.3, 0.5])  # cumulative ε, in order
    summary = report.minimized.summary()
    purposes = sorted(mesh.product("customers").contract.purposes)
    assert list(summary["purpose"]) == purposes
    churn_row = summary.set_index("purpose").loc["churn-analysis"]
    assert churn_row["used"] + len(churn_row["never_used"].split(", ")) == churn_row["allowed"]
    assert "plan" not in churn_row["never_used"]  # the query used it
    table = report.to_html().split('id="mesh-nb-minimization"')[1].split("</table>")[0]
    assert table.count("<tr>") == len(purposes)  # one body row per purpose
    assert "#fdecea" not in table  # no pink row per column


def test_plural():
    assert [plural(n, "entry") for n in (0, 1, 2)] == ["0 entries", "1 entry", "2 entries"]
    assert plural(12345, "row") == "12,345 rows" and plural(1, "day") == "1 day"


def test_bind_form_opens_with_a_purpose_selected(mesh):
    form = BindForm(mesh, on_bind=lambda *a: None)
    assert form.purpose.value in form.purpose.options and form.purpose.value
    assert "no purpose declared" not in form.about.value
    form.products.value = ("customers", "sales")
    assert form.purpose.value == "churn-analysis"  # the one both declare
    form.products.value = ("customers",)
    assert form.purpose.value == "churn-analysis"  # kept when still valid


def test_documented_ledger_browser_line_works_on_the_demo_mesh(mesh):
    b = LedgerBrowser(mesh.ledger("customers"))
    b.analyst.value = "alice"; b.kind.value = "query.rejected"  # noqa: E702  (docs/owners.md)
    assert b.rows == []  # alice has no entry in a fresh demo ledger: no error either
    with mesh.bind("customers", purpose="churn-analysis", analyst="alice") as s:
        with pytest.raises(mesh_nb.errors.MeshError):
            s.query("SELECT full_name, COUNT(*) AS n FROM customers.accounts GROUP BY full_name",
                    epsilon=0.1)
    assert [r["kind"] for r in b.refresh()] == ["query.rejected"]
    assert b.verify()


@pytest.fixture
def terminal():
    shell = InteractiveShell.instance()
    yield shell
    InteractiveShell.clear_instance()


def test_terminal_shell_shows_text_for_widgets(terminal, mesh, session):
    formatter = terminal.display_formatter
    faces = [BindForm(mesh, on_bind=lambda *a: None), LedgerBrowser(mesh.ledger("customers")),
             EpsilonExplorer(session, GROUPED, draws=50)]
    for face in faces:
        data, _ = formatter.format(face)
        text = data["text/plain"]
        assert not re.search(r"\b(VBox|HBox|HTML|Dropdown)\(", text), text
        assert "mesh_nb" in text or "Ledger of customers" in text
        assert "application/vnd.jupyter.widget-view+json" in face._repr_mimebundle_()
    assert "churn-analysis" in formatter.format(faces[0])[0]["text/plain"]
    assert isinstance(faces[0].widget, ipywidgets.VBox)


@pytest.mark.parametrize("fresh", [False, True])
def test_demo_output_reads_well(tmp_path: Path, fresh: bool):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "mesh_nb.cli", "demo", "--dir", "mesh-demo"]
    if fresh:  # a second run on the same folder: says so; --fresh starts over
        subprocess.run(cmd + ["--no-notebook"], cwd=tmp_path, env=env, check=True,
                       capture_output=True, timeout=900)
        again = subprocess.run(cmd + ["--no-notebook"], cwd=tmp_path, env=env, check=True,
                               capture_output=True, text=True, timeout=900)
        assert re.search(r"reusing \./mesh-demo \(ledger has \d+ entries\); --fresh",
                         again.stdout), again.stdout[:300]
        cmd += ["--fresh", "--no-notebook"]
    run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    out = run.stdout
    assert "±nan" not in out and "± nan" not in out
    assert "VerifyReport(" not in out and "1 entries" not in out
    assert "fresh mesh" in out if fresh else "a new mesh" in out
    assert re.search(r"\d,\d{3} ± \d+", out)  # counts with separators and their interval
    assert "spent: epsilon 0.5" in out and "ledger OK:" in out
    assert run.stderr.strip() == "", run.stderr[-2000:]
