"""Issue 17's analyst-facing bugs, in a real IPython shell, real ledgers and real subprocesses:
trailing comments on magics, ``%mesh_query?`` and its line form, which mesh ``%mesh_bind``
binds, the mechanisms ``query.released`` records, one ``pii.detected`` per frame, sessions
ended when the process exits, notebooks on the lab's mesh."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

import mesh_nb
from mesh_nb.magics import MeshMagics, split_query_line, strip_comment

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.delenv("MESH_NB_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)  # a demo fallback lands in this test's folder
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "mesh_nb")
    yield ip
    ip.run_line_magic("unload_ext", "mesh_nb")
    for name in ("m", "other", "contacts", "r"):
        ip.user_ns.pop(name, None)


def magics_of(ip) -> MeshMagics:
    return next(m for m in ip.magics_manager.registry.values() if isinstance(m, MeshMagics))


def kinds(root: Path, product: str = "customers") -> list[str]:
    return [e.kind for e in mesh_nb.open_mesh(root).ledger(product).entries()]


# -- trailing comments ---------------------------------------------------------------------

@pytest.mark.parametrize("line, stripped", [
    ("customers --purpose x  # why", "customers --purpose x"),
    ('a --as "x # y"  # c', 'a --as "x # y"'),
    ("a --as 'q#r'", "a --as 'q#r'"),
    ("a --mesh /tmp/a#b  # c", "a --mesh /tmp/a#b"),
    (r"a \# b", r"a \# b"),
    ("# only a comment", ""),
])
def test_strip_comment_is_a_shells(line: str, stripped: str) -> None:
    assert strip_comment(line) == stripped


def test_bind_with_a_trailing_comment(shell, demo_dir: Path, capsys) -> None:
    shell.run_line_magic("mesh_bind", f"customers --purpose churn-analysis --as alice "
                                      f"--mesh {demo_dir}  # the README's way")
    session = magics_of(shell).session
    assert (session.analyst, session.purpose) == ("alice", "churn-analysis")
    shell.run_line_magic("mesh_status", "  # budget left")
    assert "alice bound to purpose churn-analysis" in capsys.readouterr().out


# -- %mesh_query? and the line form ----------------------------------------------------------

def test_mesh_query_help_and_line_form(shell, demo_dir: Path, capsys) -> None:
    assert shell.find_line_magic("mesh_query") is not None
    shell.run_cell("%mesh_query?")
    assert "differentially private SQL query" in capsys.readouterr().out
    shell.run_line_magic("mesh_query", "")
    out = capsys.readouterr().out
    assert "one-line query" in out and "--epsilon" in out
    shell.run_line_magic("mesh_bind", f"customers --purpose churn-analysis --as al "
                                      f"--mesh {demo_dir}")
    shell.run_line_magic("mesh_query", "--epsilon 0.25 --save r SELECT plan, COUNT(*) AS n "
                                       "FROM customers.accounts WHERE region <> 'a#b' "
                                       "GROUP BY plan  # counts per plan")
    release = shell.user_ns["r"]
    assert release.epsilon == 0.25 and list(release.frame.columns) == ["plan", "n"]
    assert magics_of(shell).session.budget().epsilon_remaining == pytest.approx(2.75)


def test_split_query_line() -> None:
    assert split_query_line("--epsilon 0.5 select count(*) from t") == (
        "--epsilon 0.5 ", "select count(*) from t")
    assert split_query_line("--save x") == ("--save x", "")
    assert split_query_line("WITH a AS (SELECT 1) SELECT * FROM a")[1].startswith("WITH a")


# -- which mesh %mesh_bind binds -------------------------------------------------------------

def test_bind_takes_the_mesh_the_notebook_opened(shell, demo_dir: Path, capsys) -> None:
    shell.user_ns["mesh_nb"] = mesh_nb
    shell.run_cell(f"m = mesh_nb.open_mesh({str(demo_dir)!r})")
    shell.run_line_magic("mesh_bind", "customers --purpose churn-analysis --as al")
    out = capsys.readouterr().out
    assert f"the mesh at {demo_dir.resolve()}" in out and "demo mesh" not in out
    assert not (Path.cwd() / "mesh-demo").exists()
    assert kinds(demo_dir) == ["session.bound"]


def test_the_most_recently_opened_mesh_wins(shell, demo_dir: Path, demo_root: Path,
                                            tmp_path: Path, capsys) -> None:
    import shutil

    second = Path(shutil.copytree(demo_root, tmp_path / "second",
                                  ignore=shutil.ignore_patterns(".mesh_nb")))
    shell.run_line_magic("mesh_bind", f"customers --purpose churn-analysis --as al "
                                      f"--mesh {demo_dir}")
    shell.user_ns["other"] = mesh_nb.open_mesh(second)  # opened in Python after the magic's
    shell.run_cell("pass")
    shell.run_line_magic("mesh_bind", "customers --purpose churn-analysis --as al")
    assert f"the mesh at {second.resolve()}" in capsys.readouterr().out
    assert kinds(second) == ["session.bound"]
    assert kinds(demo_dir) == ["session.bound", "session.ended"]


def test_demo_fallback_says_so(shell, demo_root: Path, capsys) -> None:
    import shutil

    shutil.copytree(demo_root, Path.cwd() / "mesh-demo", ignore=shutil.ignore_patterns(".mesh_nb"))
    shell.run_line_magic("mesh_bind", "customers --purpose churn-analysis --as al")
    out = capsys.readouterr().out
    demo = (Path.cwd() / "mesh-demo").resolve()
    assert f"no mesh opened in this notebook and no $MESH_NB_ROOT — using the demo mesh at " \
           f"{demo}" in out
    assert f"the mesh at {demo}" in out


# -- what query.released records -------------------------------------------------------------

@pytest.mark.parametrize("sql, expected", [
    ("SELECT COUNT(*) AS n FROM customers.accounts", {"geometric"}),
    ("SELECT plan, COUNT(*) AS n, AVG(monthly_spend) AS spend FROM customers.accounts "
     "GROUP BY plan", {"geometric", "laplace"}),
])
def test_ledger_records_the_mechanisms_the_release_used(demo_dir: Path, sql: str,
                                                        expected: set[str]) -> None:
    mesh = mesh_nb.open_mesh(demo_dir)
    with mesh.bind("customers", purpose="churn-analysis", analyst="al") as session:
        release = session.query(sql, epsilon=0.5)
        again = session.query(sql, epsilon=0.5)
    used = {m.strip() for cell in release.accuracy.mechanism for m in cell.split(",")}
    assert used == expected
    first, cached = mesh.ledger("customers").entries(kind="query.released")
    for entry in (first, cached):
        assert set(entry.details["mechanism"].split(", ")) == used
    assert again.cached and cached.details["cached"] is True


# -- one pii.detected per frame --------------------------------------------------------------

def contacts_frame(n: int = 120) -> pd.DataFrame:
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(5)
    return pd.DataFrame({"contact": [fake.unique.email() for _ in range(n)],
                         "score": list(range(n))})


def test_autoscan_then_mesh_scan_records_once(shell, demo_dir: Path, capsys) -> None:
    magics = magics_of(shell)
    shell.run_line_magic("mesh_bind", f"customers --purpose churn-analysis --as al "
                                      f"--mesh {demo_dir}")
    shell.user_ns["make"] = contacts_frame
    shell.run_cell("contacts = make()")
    magics.autoscan.wait()
    detected = lambda: mesh_nb.open_mesh(demo_dir).ledger("customers").entries(  # noqa: E731
        kind="pii.detected")
    assert len(detected()) == 1
    alerts = len(magics.autoscan.alerts)
    shell.run_line_magic("mesh_scan", "contacts  # the full report")
    magics.autoscan.wait()
    assert "EMAIL_ADDRESS" in capsys.readouterr().out  # the report is still shown
    assert len(detected()) == 1 and len(magics.autoscan.alerts) == alerts
    shell.run_cell("contacts = make().head(60)")  # a changed frame is recorded again
    magics.autoscan.wait()
    (_, second) = detected()
    assert second.details["rows"] == 60


def test_mesh_scan_first_then_autoscan_records_once(shell, demo_dir: Path) -> None:
    magics = magics_of(shell)
    shell.run_line_magic("mesh_bind", f"customers --purpose churn-analysis --as al "
                                      f"--mesh {demo_dir}")
    shell.user_ns["contacts"] = contacts_frame()  # put there outside a cell: not yet scanned
    shell.run_line_magic("mesh_scan", "contacts")
    shell.run_cell("pass")  # the autoscan now sees the frame as new
    magics.autoscan.wait()
    entries = mesh_nb.open_mesh(demo_dir).ledger("customers").entries(kind="pii.detected")
    assert len(entries) == 1


# -- sessions end when the process exits -----------------------------------------------------

def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    environ = dict(os.environ, PYTHONPATH=str(REPO), **env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=environ, timeout=600)


def test_api_session_left_open_ends_at_exit(demo_dir: Path) -> None:
    done = run_python(f"""
        import mesh_nb
        m = mesh_nb.open_mesh({str(demo_dir)!r})
        s = m.bind("customers,sales", purpose="churn-analysis", analyst="al")
        s.query("SELECT COUNT(*) AS n FROM customers.accounts", epsilon=0.1)
        print("bound", s.id)
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    session_id = done.stdout.split()[-1]
    for product in ("customers", "sales"):
        entries = mesh_nb.open_mesh(demo_dir).ledger(product).entries()
        assert entries[-1].kind == "session.ended" and entries[-1].session == session_id
    ledger = mesh_nb.open_mesh(demo_dir).ledger("customers")
    assert ledger.verify(full=True).entries == len(ledger.entries())  # raises if tampered


def test_magic_session_left_open_ends_at_exit(demo_dir: Path) -> None:
    done = run_python(f"""
        from IPython.core.interactiveshell import InteractiveShell
        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "mesh_nb")
        ip.run_line_magic("mesh_bind", "customers --purpose churn-analysis --as al "
                                       "--mesh {demo_dir}")
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    assert kinds(demo_dir) == ["session.bound", "session.ended"]


def test_ended_session_is_not_ended_twice_and_a_fork_ends_nothing(demo_dir: Path) -> None:
    done = run_python(f"""
        import os, mesh_nb
        m = mesh_nb.open_mesh({str(demo_dir)!r})
        m.bind("customers", purpose="churn-analysis", analyst="al").end()
        kept = m.bind("customers", purpose="churn-analysis", analyst="bo")
        pid = os.fork()
        if pid == 0:
            raise SystemExit(0)  # a child exiting normally runs atexit: it ends nothing
        os.waitpid(pid, 0)
        print(len(m.ledger("customers").entries()))
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "3"  # bound, ended, bound: the child wrote nothing
    assert kinds(demo_dir) == ["session.bound", "session.ended", "session.bound",
                               "session.ended"]


# -- the notebooks use the lab's mesh --------------------------------------------------------

def test_notebook_mesh_is_the_labs_mesh(demo_dir: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    from mesh_nb.notebooks import notebook_mesh

    monkeypatch.setenv("MESH_NB_ROOT", str(demo_dir))
    assert Path(notebook_mesh().root) == demo_dir.resolve()
    monkeypatch.delenv("MESH_NB_ROOT")
    fresh = notebook_mesh()
    assert Path(fresh.root) != demo_dir.resolve() and "customers" in fresh.products


def test_quickstart_writes_to_the_labs_mesh(demo_dir: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from mesh_nb.notebooks import QUICKSTART, execute_notebook

    monkeypatch.setenv("MESH_NB_ROOT", str(demo_dir))
    nb = execute_notebook(QUICKSTART, tmp_path)
    unexpected = [o for c in nb.cells if "raises-exception" not in c.metadata.get("tags", [])
                  for o in c.get("outputs", []) if o.output_type == "error"]
    assert not unexpected, unexpected
    entries = mesh_nb.open_mesh(demo_dir).ledger("customers").entries()
    analysts = {e.analyst for e in entries if e.kind == "query.released"}
    assert analysts == {"alice", "bob"}
    assert not (tmp_path / "mesh-demo").exists()
