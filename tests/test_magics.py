"""Magics and the bind form in a real IPython shell; the CLI as a real subprocess."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import mesh_nb
from mesh_nb.magics import MeshMagics
from mesh_nb.widgets.bind import BindForm


@pytest.fixture
def shell():
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "mesh_nb")
    yield ip
    ip.run_line_magic("unload_ext", "mesh_nb")


def magics_of(ip) -> MeshMagics:
    return next(m for m in ip.magics_manager.registry.values() if isinstance(m, MeshMagics))


def test_bind_status_and_rebind(shell, demo_dir: Path, capsys) -> None:
    shell.run_line_magic("mesh_bind",
                         f"customers --purpose churn-analysis --as alice --mesh {demo_dir}")
    first = magics_of(shell).session
    assert (first.analyst, first.purpose, first.product_names) == (
        "alice", "churn-analysis", ("customers",))
    shell.run_line_magic("mesh_status", "")
    out = capsys.readouterr().out
    assert "alice bound to purpose churn-analysis" in out and "ε 3 of 3 left" in out
    shell.run_line_magic("mesh_bind", "sales --purpose churn-analysis --as alice")
    assert magics_of(shell).session.product_names == ("sales",)
    kinds = [e.kind for e in mesh_nb.open_mesh(demo_dir).ledger("customers").entries()]
    assert kinds == ["session.bound", "session.ended"]


def test_errors_are_short_usage_errors(shell, demo_dir: Path) -> None:
    with pytest.raises(UsageError, match="does not declare purpose `nope`.*declared purposes"):
        shell.run_line_magic("mesh_bind", f"customers --purpose nope --mesh {demo_dir}")
    with pytest.raises(UsageError, match="requires acknowledgement"):
        shell.run_line_magic("mesh_bind", "customers --purpose support-operations")
    with pytest.raises(UsageError, match="give both"):
        shell.run_line_magic("mesh_bind", "customers")
    assert magics_of(shell).session is None


def test_status_when_not_bound(shell, capsys) -> None:
    shell.run_line_magic("mesh_status", "")
    assert "mesh: not bound" in capsys.readouterr().out


def test_unload_removes_every_hook_and_ends_session(demo_dir: Path) -> None:
    ip = InteractiveShell.instance()
    before = {k: set(v) for k, v in ip.magics_manager.magics.items()}
    ip.run_line_magic("load_ext", "mesh_nb")
    assert "mesh_bind" in ip.magics_manager.magics["line"]
    ip.run_line_magic("mesh_bind", f"customers --purpose churn-analysis --as a --mesh {demo_dir}")
    ip.run_line_magic("unload_ext", "mesh_nb")
    assert {k: set(v) for k, v in ip.magics_manager.magics.items()} == before
    assert not any(isinstance(m, MeshMagics) for m in ip.magics_manager.registry.values())
    kinds = [e.kind for e in mesh_nb.open_mesh(demo_dir).ledger("customers").entries()]
    assert kinds[-1] == "session.ended"


def test_bind_form(demo_dir: Path) -> None:
    m = mesh_nb.open_mesh(demo_dir)
    bound = []
    form = BindForm(m, on_bind=lambda p, pur, who, ack: bound.append(
        m.bind(p, purpose=pur, analyst=who, acknowledge=ack)) or bound[-1])
    form.products.value = ("customers",)
    assert set(form.purpose.options) == {"churn-analysis", "marketing-research",
                                         "support-operations"}
    form.purpose.value = "support-operations"
    assert "legal basis" in form.about.value and form.acknowledge.layout.display is None
    form.analyst.value = "dora"
    assert form.submit() is None and "requires acknowledgement" in form.message.value
    form.acknowledge.value = True
    session = form.submit()
    assert session is not None and session.analyst == "dora" and "bound" in form.message.value
    form.products.value = ("customers", "sales")
    assert form.purpose.options == ("churn-analysis",)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mesh_nb.cli", *args],
                          capture_output=True, text=True)


def test_cli_ledger_show_and_verify(demo_dir: Path) -> None:
    m = mesh_nb.open_mesh(demo_dir)
    m.bind("customers", purpose="churn-analysis", analyst="alice").end()
    m.bind("customers", purpose="marketing-research", analyst="bob")
    shown = cli("ledger", "show", "customers", "--mesh", str(demo_dir), "--analyst", "alice")
    assert shown.returncode == 0, shown.stderr
    assert "session.bound" in shown.stdout and "session.ended" in shown.stdout
    assert "bob" not in shown.stdout and "2 of 3 entries" in shown.stdout
    by_folder = cli("ledger", "show", str(demo_dir / "customers"), "--json")
    assert by_folder.stdout.count('"kind"') == 3
    ok = cli("ledger", "verify", "customers", "--mesh", str(demo_dir), "--full")
    assert ok.returncode == 0 and "ok: 3 entries" in ok.stdout
    db = demo_dir / "customers" / ".mesh_nb" / "ledger.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("UPDATE entries SET analyst = 'mallory' WHERE seq = 2")
    bad = cli("ledger", "verify", "customers", "--mesh", str(demo_dir))
    assert bad.returncode == 2 and "entry 2" in bad.stderr


def test_cli_demo_init(tmp_path: Path) -> None:
    run = cli("demo", "--init", str(tmp_path / "d"))
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "d" / "sales" / "orders.parquet").exists()
    check = cli("check", str(tmp_path / "d"))
    assert check.returncode == 0 and check.stdout.count(": ok") == 3


QUERY = "SELECT plan, COUNT(*) AS n, AVG(monthly_spend) AS spend FROM customers.accounts GROUP BY plan"


def test_mesh_query_releases_saves_and_explains(shell, demo_dir: Path, capsys) -> None:
    with pytest.raises(UsageError, match="not bound"):
        shell.run_cell_magic("mesh_query", "", QUERY)
    shell.run_line_magic("mesh_bind", f"customers --purpose churn-analysis --as al "
                                      f"--mesh {demo_dir}")
    shell.run_cell_magic("mesh_query", "--explain --epsilon 0.4", QUERY)
    assert "epsilon split equally" in capsys.readouterr().out
    session = magics_of(shell).session
    assert session.budget().epsilon_remaining == 3.0
    shell.run_cell_magic("mesh_query", "--epsilon 0.4 --save r", QUERY)
    release = shell.user_ns["r"]
    assert list(release.frame.columns) == ["plan", "n", "spend"] and release.epsilon == 0.4
    assert session.budget().epsilon_remaining == pytest.approx(2.6)
    html = shell.display_formatter.format(release)[0]["text/html"]
    assert "churn-analysis" in html and "±" in html and "ε 0.4" in html
    with pytest.raises(UsageError, match="column-not-allowed|full_name"):
        shell.run_cell_magic("mesh_query", "", "SELECT full_name, COUNT(*) FROM "
                                               "customers.accounts GROUP BY full_name")


def test_mesh_query_rows_purpose(shell, demo_dir: Path) -> None:
    shell.run_line_magic("mesh_bind", f"sales --purpose fraud-review --acknowledge --as f "
                                      f"--mesh {demo_dir}")
    shell.run_cell_magic("mesh_query", "--save rows",
                         "SELECT order_id, card_number, amount FROM sales.orders LIMIT 10")
    rows = shell.user_ns["rows"]
    assert rows.rows == 10 and rows.tokenized == ("card_number",)


def test_cli_demo_runs_the_story_and_notebook_01(tmp_path: Path) -> None:
    run = cli("demo", "--dir", str(tmp_path / "demo"))
    assert run.returncode == 0, run.stderr[-2000:]
    out = run.stdout
    assert "binding customers for churn-analysis" in out and "verify: ok" in out
    assert "example notebook 01_analyst_quickstart.ipynb, executed headlessly" in out
    assert "What the owner sees" in out and "budget exceeded" in out


def test_cli_lab_needs_jupyterlab_or_says_so(tmp_path: Path) -> None:
    from mesh_nb.notebooks import notebooks_dir

    assert (notebooks_dir() / "01_analyst_quickstart.ipynb").exists()
