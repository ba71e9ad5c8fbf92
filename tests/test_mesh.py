"""Mesh, binding, sessions: real demo products, real SQLite ledgers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import mesh_nb
from mesh_nb import ContractError, MeshError, PolicyViolation
from mesh_nb.errors import LedgerTampered
from mesh_nb.mesh import MeshWarning
from mesh_nb.session import resolve_analyst


def test_open_mesh_finds_every_product(demo_dir: Path) -> None:
    m = mesh_nb.open_mesh(demo_dir)
    assert sorted(m.products) == ["customers", "marketing", "sales"]
    accounts = m.product("customers").contract.table("accounts")
    assert accounts.column("monthly_spend").bounds == (0.0, 500.0)
    assert m.product("customers").contract.team != m.product("sales").contract.team


def test_unknown_product_lists_the_known_ones(demo_dir: Path) -> None:
    m = mesh_nb.open_mesh(demo_dir)
    with pytest.raises(MeshError, match=r"no data product `crm`.*customers, marketing, sales"):
        m.bind("crm", purpose="churn-analysis")


def test_bind_records_session_bound(demo_dir: Path) -> None:
    m = mesh_nb.open_mesh(demo_dir)
    s = m.bind("customers", purpose="churn-analysis", analyst="alice")
    entries = m.ledger("customers").entries()
    assert [e.kind for e in entries] == ["session.bound"]
    e = entries[0]
    assert (e.analyst, e.purpose, e.session) == ("alice", "churn-analysis", s.id)
    assert e.details["access"] == "dp-aggregate" and e.details["products"] == ["customers"]
    assert len(m.ledger("sales")) == 0
    status = s.budget()
    assert status.epsilon_total == 3.0 and status.epsilon_remaining == 3.0
    assert "ε 3 of 3 left" in str(status)
    s.end()
    s.end()  # idempotent
    assert [e.kind for e in m.ledger("customers").entries()] == ["session.bound", "session.ended"]
    m.ledger("customers").verify(full=True)


def test_undeclared_purpose_is_refused_with_the_declared_ones(demo_dir: Path) -> None:
    m = mesh_nb.open_mesh(demo_dir)
    with pytest.raises(PolicyViolation) as err:
        m.bind("sales", purpose="marketing-research", analyst="alice")
    assert err.value.rule == "purpose-not-declared"
    assert "churn-analysis, fraud-review" in str(err.value)
    assert len(m.ledger("sales")) == 0


def test_acknowledgement_required(demo_dir: Path) -> None:
    m = mesh_nb.open_mesh(demo_dir)
    with pytest.raises(PolicyViolation, match="requires acknowledgement") as err:
        m.bind("customers", purpose="support-operations", analyst="bob")
    assert err.value.rule == "acknowledgement-required"
    assert len(m.ledger("customers")) == 0
    s = m.bind("customers", purpose="support-operations", analyst="bob", acknowledge=True)
    assert s.access == "pseudonymized-rows"
    assert m.ledger("customers").entries()[0].details["acknowledged"] is True
    assert s.budget().epsilon_total is None


def test_bind_several_products_records_in_each(demo_dir: Path) -> None:
    m = mesh_nb.open_mesh(demo_dir)
    s = m.bind("customers,sales", purpose="churn-analysis", analyst="carol")
    assert s.product_names == ("customers", "sales")
    for name in ("customers", "sales"):
        (entry,) = m.ledger(name).entries(kind="session.bound")
        assert entry.session == s.id and entry.details["products"] == ["customers", "sales"]
    assert [b.product for b in s.budgets()] == ["customers", "sales"]
    with pytest.raises(MeshError, match="not bound in this session"):
        s.budget("other")


def test_analyst_identity_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_ANALYST", "from-mesh-env")
    monkeypatch.setenv("JUPYTERHUB_USER", "from-hub")
    assert resolve_analyst("explicit") == "explicit"
    assert resolve_analyst() == "from-mesh-env"
    monkeypatch.delenv("MESH_ANALYST")
    assert resolve_analyst() == "from-hub"
    monkeypatch.delenv("JUPYTERHUB_USER")
    assert resolve_analyst()  # the OS user


def test_budget_is_per_analyst(demo_dir: Path) -> None:
    from mesh_nb.contract.model import Budget

    m = mesh_nb.open_mesh(demo_dir)
    a = m.bind("customers", purpose="churn-analysis", analyst="alice")
    b = m.bind("customers", purpose="churn-analysis", analyst="bob")
    budget = a.purpose_of().budget
    assert isinstance(budget, Budget)
    m.ledger("customers").reserve(analyst="alice", purpose="churn-analysis", epsilon=0.7,
                                  delta=0.0, budget=budget, session=a.id)
    assert a.budget().epsilon_remaining == pytest.approx(2.3)
    assert b.budget().epsilon_remaining == 3.0


def test_owner_home_moves_keys_off_the_product(demo_dir: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_NB_OWNER_HOME", str(tmp_path / "owner"))
    m = mesh_nb.open_mesh(demo_dir)
    m.bind("customers", purpose="churn-analysis", analyst="alice")
    assert (tmp_path / "owner" / "customers" / "ed25519.key").exists()
    assert not (demo_dir / "customers" / ".owner").exists()


def test_owner_dir_is_outside_the_product_folder_by_default(demo_dir: Path) -> None:
    """Keys and checkpoint live in the per-user owner home, one directory per product folder:
    a restored backup of the folder, or a deleted ledger, is then shorter than the checkpoint."""
    product = mesh_nb.open_mesh(demo_dir).product("customers")
    home = Path(os.environ["XDG_STATE_HOME"]) / "mesh_nb" / "owners"
    assert product.owner_dir.parent == home and product.owner_dir.name.startswith("customers-")
    copy = demo_dir.parent / "copy"
    shutil.copytree(demo_dir, copy)
    assert mesh_nb.open_mesh(copy).product("customers").owner_dir != product.owner_dir


def test_restored_folder_backup_is_caught(demo_dir: Path, tmp_path: Path) -> None:
    m = mesh_nb.open_mesh(demo_dir)
    s = m.bind("customers", purpose="churn-analysis", analyst="alice")
    s.query("SELECT COUNT(*) AS n FROM customers.accounts", epsilon=0.5)
    backup = tmp_path / "backup"
    shutil.copytree(demo_dir / "customers", backup)  # the whole product folder, ledger and all
    s.query("SELECT COUNT(*) AS n FROM customers.accounts", epsilon=0.5)
    s.end()
    m.product("customers").ledger.close()
    shutil.rmtree(demo_dir / "customers")
    shutil.copytree(backup, demo_dir / "customers")
    with pytest.raises(LedgerTampered, match="older copy restored"):
        mesh_nb.open_mesh(demo_dir).bind("customers", purpose="churn-analysis", analyst="alice")
    shutil.rmtree(demo_dir / "customers" / ".mesh_nb")  # and deleting the ledger: no fresh start
    with pytest.raises(LedgerTampered, match="older copy restored|tail cut"):
        mesh_nb.open_mesh(demo_dir).bind("customers", purpose="churn-analysis", analyst="alice")


def test_legacy_in_folder_owner_dir_is_still_used(demo_dir: Path) -> None:
    legacy = demo_dir / "customers" / ".owner"
    personal = mesh_nb.open_mesh(demo_dir).product("customers").owner_dir
    assert personal != legacy
    legacy.mkdir()
    (legacy / "ed25519.key").write_bytes(b"")
    assert mesh_nb.open_mesh(demo_dir).product("customers").owner_dir == legacy
    personal.mkdir(parents=True)  # once the owner home exists, it wins
    assert mesh_nb.open_mesh(demo_dir).product("customers").owner_dir == personal


def test_malformed_contract_in_mesh_is_reported(demo_dir: Path) -> None:
    contract = demo_dir / "sales" / "datacontract.yaml"
    contract.write_text(contract.read_text().replace("privacyUnit: customer_id",
                                                     "privacyUnit: client_id"))
    with pytest.warns(MeshWarning, match="`sales`: .*sales/datacontract.yaml:"):
        m = mesh_nb.open_mesh(demo_dir)
    assert sorted(m.products) == ["customers", "marketing"]  # the others stay up
    with pytest.raises(ContractError, match="`client_id` is not a column of table `orders`"):
        m.bind("sales", purpose="churn-analysis", analyst="alice")


def test_open_mesh_errors(tmp_path: Path) -> None:
    with pytest.raises(MeshError, match="does not exist"):
        mesh_nb.open_mesh(tmp_path / "nope")
    with pytest.raises(MeshError, match="no datacontract.yaml"):
        mesh_nb.open_mesh(tmp_path)


def test_demo_mesh_reuses_existing_folder(demo_dir: Path) -> None:
    before = (demo_dir / "customers" / "accounts.parquet").stat().st_mtime_ns
    m = mesh_nb.demo_mesh(demo_dir)
    assert sorted(m.products) == ["customers", "marketing", "sales"]
    assert (demo_dir / "customers" / "accounts.parquet").stat().st_mtime_ns == before
