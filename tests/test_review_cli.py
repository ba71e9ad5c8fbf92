"""The owner's CLI and magic faces of mesh_nb.review: report, export, diff, %mesh_ledger."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from IPython.core.interactiveshell import InteractiveShell

import mesh_nb
from mesh_nb.magics import MeshMagics


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mesh_nb.cli", *args], capture_output=True,
                          text=True)


def use(demo_dir: Path) -> None:
    m = mesh_nb.open_mesh(demo_dir)
    with m.bind("customers", purpose="churn-analysis", analyst="alice") as s:
        s.query("SELECT plan, COUNT(*) AS n FROM customers.accounts GROUP BY plan", epsilon=0.3)


def test_report_export_and_diff_from_the_cli(demo_dir: Path, tmp_path: Path) -> None:
    use(demo_dir)
    out = tmp_path / "report.html"
    run = cli("report", "customers", "--mesh", str(demo_dir), "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert out.read_text().startswith("<!") and "churn-analysis" in out.read_text()
    events = tmp_path / "lineage.jsonl"
    run = cli("ledger", "export", "customers", "--mesh", str(demo_dir), "--openlineage",
              str(events))
    assert run.returncode == 0, run.stderr
    kinds = [json.loads(line)["eventType"] for line in events.read_text().splitlines()]
    assert "START" in kinds and "COMPLETE" in kinds
    old = demo_dir / "customers" / "datacontract.yaml"
    new = tmp_path / "new" / "datacontract.yaml"
    new.parent.mkdir()
    shutil.copy(old, new)
    new.write_text(new.read_text().replace("epsilon: 3.0", "epsilon: 6.0", 1))
    for parquet in (demo_dir / "customers").glob("*.parquet"):
        shutil.copy(parquet, new.parent / parquet.name)
    run = cli("diff", str(old), str(new), "--strict")
    assert run.returncode == 1 and "epsilon" in run.stdout
    assert cli("diff", str(old), str(old), "--strict").returncode == 0


def test_mesh_ledger_magic(demo_dir: Path) -> None:
    use(demo_dir)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "mesh_nb")
    try:
        ip.run_line_magic("mesh_ledger", f"customers --mesh {demo_dir}")
        magics = next(m for m in ip.magics_manager.registry.values()
                      if isinstance(m, MeshMagics))
        browser = magics.ledger_browser
        assert browser is not None and len(browser.rows) == 3
        assert browser.verify() is True
    finally:
        ip.run_line_magic("unload_ext", "mesh_nb")
