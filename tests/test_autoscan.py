"""The post-cell autoscan, %mesh_scan, alerts, and `mesh-nb scan` / `mesh-nb init`.

Real IPython shell, real presidio (offline), real SQLite ledgers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from faker import Faker
from IPython.core.interactiveshell import InteractiveShell

import mesh_nb
from mesh_nb.magics import MeshMagics


def people(n: int = 300, seed: int = 3) -> pd.DataFrame:
    fake = Faker("en_US")
    fake.seed_instance(seed)
    return pd.DataFrame({
        "customer_id": [f"C{i:07d}" for i in range(n)],
        "email": [fake.unique.email() for _ in range(n)],
        "region": [("north", "south", "east", "west")[i % 4] for i in range(n)],
        "amount": [round(10 + (i * 37) % 900 + 0.5, 2) for i in range(n)],
    })


@pytest.fixture
def shell():
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "mesh_nb")
    magics = next(m for m in ip.magics_manager.registry.values() if isinstance(m, MeshMagics))
    yield ip, magics
    ip.run_line_magic("unload_ext", "mesh_nb")
    for name in ("df", "other"):
        ip.user_ns.pop(name, None)


def test_new_frame_with_email_raises_an_alert_and_a_ledger_entry(shell, demo_dir) -> None:
    ip, magics = shell
    ip.run_line_magic("mesh_bind", f"customers --purpose churn-analysis --as al --mesh {demo_dir}")
    ip.user_ns["make"] = people
    ip.run_cell("df = make()")
    magics.autoscan.wait()
    found = [a for a in magics.autoscan.alerts if a.frame == "df"]
    assert {a.column for a in found} >= {"email"}
    email = next(a for a in found if a.column == "email")
    assert email.entity == "EMAIL_ADDRESS" and email.share > 0.9
    assert "does not allow raw identifiers" in " ".join(a.problem for a in found)
    (entry,) = mesh_nb.open_mesh(demo_dir).ledger("customers").entries(kind="pii.detected")
    assert entry.details["frame"] == "df" and "email" in entry.details["columns"]
    assert entry.details["entity_types"]["EMAIL_ADDRESS"] == 1
    values = set(ip.user_ns["df"].email)
    assert not any(v in str(entry.details) for v in values)  # never a value
    assert not any(v in str(a) for a in found for v in values)


def test_unchanged_frames_are_not_scanned_again(shell) -> None:
    ip, magics = shell
    ip.user_ns["make"] = people
    ip.run_cell("df = make()")
    magics.autoscan.wait()
    first = magics.autoscan.reports["df"]
    ip.run_cell("x = 1 + 1")
    magics.autoscan.wait()
    assert magics.autoscan.reports["df"] is first
    ip.run_cell("df['email2'] = df['email']")
    magics.autoscan.wait()
    assert magics.autoscan.reports["df"] is not first
    assert "email2" in magics.autoscan.reports["df"].entities()


def test_without_a_binding_pii_is_reported_but_not_logged(shell) -> None:
    ip, magics = shell
    ip.user_ns["make"] = people
    ip.run_cell("other = make()")
    magics.autoscan.wait()
    alerts = [a for a in magics.autoscan.alerts if a.frame == "other"]
    assert alerts and all(a.contract_says == "no purpose bound" for a in alerts)


def test_mesh_scan_shows_the_report(shell, capsys) -> None:
    ip, magics = shell
    ip.user_ns["df"] = people()
    ip.run_line_magic("mesh_scan", "df --sample 100")
    out = capsys.readouterr().out
    assert "email" in out
    assert magics.autoscan.reports["df"].entities()["email"] == "EMAIL_ADDRESS"
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="not a DataFrame"):
        ip.run_line_magic("mesh_scan", "nothing_here")


def test_unload_removes_the_hook() -> None:
    ip = InteractiveShell.instance()
    before = list(ip.events.callbacks["post_run_cell"])
    ip.run_line_magic("load_ext", "mesh_nb")
    assert len(ip.events.callbacks["post_run_cell"]) == len(before) + 1
    ip.run_line_magic("unload_ext", "mesh_nb")
    assert ip.events.callbacks["post_run_cell"] == before


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mesh_nb.cli", *args], capture_output=True,
                          text=True)


def test_cli_scan_and_init_make_a_contract_that_checks(tmp_path: Path) -> None:
    folder = tmp_path / "crm"
    folder.mkdir()
    data = folder / "contacts.csv"
    people(500).to_csv(data, index=False)
    scanned = cli("scan", str(data))
    assert scanned.returncode == 0, scanned.stderr
    assert "EMAIL_ADDRESS" in scanned.stdout and "hold personal data" in scanned.stdout
    assert "@" not in scanned.stdout  # the report never prints a value
    made = cli("init", str(data), "--owner", "crm-team")
    assert made.returncode == 0, made.stderr
    contract = mesh_nb.load_contract(folder)
    table = contract.tables[0]
    assert contract.privacy_unit == "customer_id"
    assert table.column("email").pii_entity == "EMAIL_ADDRESS"
    assert table.column("email").classification == "direct-identifier"
    assert table.column("region").categories == ("east", "north", "south", "west")
    assert table.column("amount").bounds[0] <= 10.5 and table.column("amount").bounds[1] >= 900
    assert cli("check", str(folder)).returncode == 0
    again = cli("init", str(data), "--owner", "crm-team")
    assert again.returncode == 1 and "--force" in again.stderr
    s = mesh_nb.open_mesh(folder).bind("contacts", purpose="exploration", analyst="o")
    assert len(s.query("SELECT region, COUNT(*) AS n FROM contacts.contacts GROUP BY region",
                       epsilon=0.5).frame) == 5  # 4 regions + the other group


def test_cli_scan_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.xlsx"
    bad.write_text("nope")
    run = cli("scan", str(bad))
    assert run.returncode == 2 and "unsupported file type `.xlsx`" in run.stderr
