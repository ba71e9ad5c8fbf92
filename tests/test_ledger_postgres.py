"""The ledger on PostgreSQL: choosing the store, URLs without passwords, the schema, and several
products in one database. Real PostgreSQL (tests/pgserver.py); the whole ledger suite in
tests/test_ledger.py also runs on it.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import psycopg
import pytest

import mesh_nb
from mesh_nb.contract.model import Budget
from mesh_nb.errors import BudgetExceeded, ContractError, LedgerTampered
from mesh_nb.ledger import Ledger
from mesh_nb.ledger.config import ENV_VAR, OWNER_FILE, LedgerUrlError, ledger_url
from mesh_nb.ledger.postgres import PostgresStore, schema_name
from mesh_nb.ledger.sqlite import SqliteStore
from mesh_nb.mesh import MeshWarning
from pgserver import libpq_url


def with_password(url: str, password: str = "s3cret-pw") -> str:
    return url.replace("postgres@", f"postgres:{password}@", 1)


# -- URLs -------------------------------------------------------------------------------------

def test_ledger_url_forms() -> None:
    assert ledger_url("postgresql://me@db.example:5433/ledgers") == \
        "postgresql+psycopg://me@db.example:5433/ledgers"
    assert ledger_url("postgres://me@h/db?sslmode=require") == \
        "postgresql+psycopg://me@h/db?sslmode=require"
    assert ledger_url(" postgresql+psycopg://h/db ") == "postgresql+psycopg://h/db"
    assert ledger_url("SQLite") == "sqlite"
    for bad in ("mysql://h/db", "postgresql://h", "postgresql:///db", "ledger.sqlite"):
        with pytest.raises(LedgerUrlError, match="PostgreSQL URL"):
            ledger_url(bad)


def test_url_with_password_is_refused_without_repeating_it(pg_url: str, tmp_path: Path) -> None:
    for url in (with_password(pg_url), with_password(pg_url).replace("+psycopg", "")):
        with pytest.raises(LedgerUrlError, match="password.*PGPASSFILE") as info:
            Ledger(url, tmp_path / "owner", "customers")
        assert "s3cret-pw" not in str(info.value) and "127.0.0.1" not in str(info.value)


def test_password_comes_from_pgpassfile(pg_databases, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A role with a password logs in through PGPASSFILE; the URL never holds it."""
    admin = pg_databases("pw_test")
    with closing(psycopg.connect(libpq_url(admin), autocommit=True)) as db:
        db.execute("DROP ROLE IF EXISTS ledger_writer")
        db.execute("CREATE ROLE ledger_writer LOGIN PASSWORD 'pw-from-file'")
        db.execute("GRANT CREATE ON DATABASE pw_test TO ledger_writer")
    passfile = tmp_path / "pgpass"
    passfile.write_text("127.0.0.1:*:*:ledger_writer:pw-from-file\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    url = admin.replace("postgres@", "ledger_writer@", 1)
    led = Ledger(url, tmp_path / "owner", "customers")
    led.append("session.bound", analyst="alice", purpose="churn")
    assert led.verify().entries == 1 and "pw-from-file" not in led.location
    led.close()


# -- schema and isolation ---------------------------------------------------------------------

def test_schema_is_created_once_per_product(pg_url: str, tmp_path: Path) -> None:
    led = Ledger(pg_url, tmp_path / "owner", "customers")
    assert isinstance(led.store, PostgresStore) and led.path is None
    assert led.store.schema == schema_name("customers") == "mesh_nb_ledger_customers"
    with closing(psycopg.connect(libpq_url(pg_url))) as db:
        tables = {r[0] for r in db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (led.store.schema,))}
        indexes = {r[0] for r in db.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s", (led.store.schema,))}
    assert tables == {"entries", "meta", "state", "spends"}
    assert {"entries_spend", "entries_kind", "entries_ts", "entries_session", "spends_ts"} \
        <= indexes
    led.append("session.bound")
    again = Ledger(pg_url, tmp_path / "owner", "customers")  # opening again keeps the rows
    assert len(again) == 1 and again.verify().entries == 1
    long = "p" * 80
    assert len(schema_name(long)) <= 63 and schema_name(long) != schema_name(long + "x")


def test_two_products_in_one_database_are_isolated(pg_url: str, tmp_path: Path) -> None:
    budget = Budget(1.0, scope="per-purpose")
    customers = Ledger(pg_url, tmp_path / "owner-customers", "customers")
    sales = Ledger(pg_url, tmp_path / "owner-sales", "sales")
    for _ in range(10):
        customers.reserve(analyst="alice", purpose="churn", epsilon=0.1, budget=budget)
    sales.reserve(analyst="bob", purpose="churn", epsilon=0.4, budget=budget)  # its own budget
    with pytest.raises(BudgetExceeded):
        customers.reserve(analyst="bob", purpose="churn", epsilon=0.1, budget=budget)
    assert (len(customers), len(sales)) == (11, 1)
    assert {e.product for e in customers.entries()} == {"customers"}
    assert sales.remaining("x", "churn", budget) == (0.6, 0.0)
    with closing(psycopg.connect(libpq_url(pg_url), autocommit=True)) as db:  # tamper: sales
        db.execute(f'UPDATE "{sales.store.schema}".entries SET epsilon_micro = 0')
    with pytest.raises(LedgerTampered):
        sales.verify()
    assert customers.verify(full=True).entries == 11


def test_append_refused_without_its_lock_row(pg_url: str, tmp_path: Path) -> None:
    led = Ledger(pg_url, tmp_path / "owner", "customers")
    led.append("session.bound")
    with closing(psycopg.connect(libpq_url(pg_url), autocommit=True)) as db:
        db.execute(f'DELETE FROM "{led.store.schema}".meta')  # nothing left to lock on
    with pytest.raises(LedgerTampered, match="no append lock"):
        led.reserve(analyst="a", purpose="p", epsilon=0.1, budget=Budget(1.0))
    assert len(led) == 1


# -- choosing the store -----------------------------------------------------------------------

def _set_contract_ledger(folder: Path, value: str) -> None:
    contract = folder / "datacontract.yaml"
    text = contract.read_text()
    assert text.count("    policyVersion: 1\n") == 1
    contract.write_text(text.replace("    policyVersion: 1\n",
                                     f"    policyVersion: 1\n    ledger: {value}\n"))


def test_contract_ledger_url_with_password_is_a_contract_error(demo_dir: Path,
                                                               pg_url: str) -> None:
    _set_contract_ledger(demo_dir / "customers", with_password(pg_url))
    with pytest.warns(MeshWarning):
        m = mesh_nb.open_mesh(demo_dir)      # the rest of the mesh stays up
    assert "customers" in m.broken and "sales" in m.products
    with pytest.raises(ContractError) as info:
        m.product("customers")
    message = str(info.value)
    assert "datacontract.yaml" in message and "ledger" in message and "password" in message
    assert "s3cret-pw" not in message


def test_store_choice_owner_config_wins_over_contract(demo_dir: Path, pg_url: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _set_contract_ledger(demo_dir / "customers", pg_url)
    m = mesh_nb.open_mesh(demo_dir)
    customers, sales = m.product("customers"), m.product("sales")
    assert m.product("customers").contract.ledger == pg_url
    assert customers.ledger_location == pg_url
    assert isinstance(customers.ledger.store, PostgresStore)
    assert isinstance(sales.ledger.store, SqliteStore)  # no setting: the SQLite file
    (customers.owner_dir / OWNER_FILE).write_text("sqlite\n")  # the owner's file wins
    assert customers.ledger_location == customers.folder / ".mesh_nb" / "ledger.sqlite"
    monkeypatch.setenv(ENV_VAR, pg_url.replace("+psycopg", ""))  # the environment wins over both
    assert customers.ledger_location == sales.ledger_location == pg_url
    monkeypatch.setenv(ENV_VAR, with_password(pg_url))
    with pytest.raises(LedgerUrlError, match=f"\\${ENV_VAR}: .*password"):
        customers.ledger_location


def test_demo_mesh_queries_on_a_postgres_ledger(demo_dir: Path, pg_url: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, pg_url)
    m = mesh_nb.open_mesh(demo_dir)
    s = m.bind("customers", purpose="marketing-research", analyst="alice")
    r = s.query("SELECT region, COUNT(*) AS n FROM customers.accounts GROUP BY region",
                epsilon=0.25)
    assert r.epsilon == 0.25 and len(r.frame)
    led = m.ledger("customers")
    assert led.location == pg_url
    assert [e.kind for e in led.entries()] == ["session.bound", "query.released"]
    assert s.budget() is not None and led.verify(full=True).entries == 2
    assert not (demo_dir / "customers" / ".mesh_nb" / "ledger.sqlite").exists()
