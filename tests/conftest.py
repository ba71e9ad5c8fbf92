"""Shared fixtures: one real demo mesh per test session, copied per test that writes to it."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Callable, Iterator

import pytest

from mesh_nb.demo import write_demo
from shared_dir import SHARED_HINT, shared_dir

SHARED = shared_dir()


def pytest_configure(config: pytest.Config) -> None:
    """Owner directories (keys, checkpoints) go to a per-run state home, never the user's own
    ``~/.local/state``; subprocesses (servers, kernels) inherit it."""
    import tempfile

    os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="mesh-nb-state-")
    os.environ.pop("MESH_NB_OWNER_HOME", None)


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo mesh's files (contracts and parquet), written once."""
    return write_demo(tmp_path_factory.mktemp("demo") / "mesh", seed=7)


@pytest.fixture
def demo_dir(demo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the demo mesh with empty ledgers, owned by this test."""
    monkeypatch.delenv("MESH_NB_OWNER_HOME", raising=False)
    monkeypatch.delenv("MESH_NB_LEDGER_URL", raising=False)
    target = tmp_path / "mesh"
    shutil.copytree(demo_root, target, ignore=shutil.ignore_patterns(".mesh_nb", ".owner"))
    return target


def shared_data(*parts: str) -> Path:
    """A file under the shared folder's data (see tests/shared_dir.py), or skip the test with
    the reason."""
    if SHARED is None:
        pytest.skip(f"the shared folder is not found: {SHARED_HINT}")
    path = SHARED.joinpath("data", *parts)
    if not path.exists():
        pytest.skip(f"{path} is not here (the shared data folder lacks it)")
    return path


# -- ledger stores: SQLite file and a real PostgreSQL server ----------------------------------

@pytest.fixture(scope="session")
def pg_databases() -> Iterator[Callable[[str], str]]:
    """``new(name) -> URL``: a fresh database on a real PostgreSQL server.

    ``MESH_NB_TEST_PG_URL`` names a server to use (its role must be allowed to create
    databases); else a throwaway server is started from the local binaries and deleted at the
    end. Without binaries the Postgres tests skip, or fail when ``CI`` is set.
    """
    from pgserver import PgServer, PgUnavailable, create_database

    given = os.environ.get("MESH_NB_TEST_PG_URL")
    if given:
        yield lambda name: create_database(given, name)
        return
    try:
        server = PgServer.start(fsync=False)
    except PgUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs PostgreSQL for the ledger tests: {exc}")
        pytest.skip(str(exc))
    try:
        yield server.create_database
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_databases: Callable[[str], str], request: pytest.FixtureRequest) -> str:
    """The URL of an empty database of its own for this test."""
    digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:20]
    return pg_databases(f"t_{digest}")


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> str:
    """Which ledger store a test runs against: each test using it runs on both."""
    return request.param


@pytest.fixture
def ledger_at(store: str, tmp_path: Path, request: pytest.FixtureRequest) -> Path | str:
    """Where this test's ledger lives: an SQLite file under tmp_path, or a fresh database."""
    if store == "sqlite":
        return tmp_path / "data" / "ledger.sqlite"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def mesh(demo_dir: Path):
    """The demo mesh of :func:`demo_dir`, opened."""
    import mesh_nb

    return mesh_nb.open_mesh(demo_dir)


@pytest.fixture
def session(mesh):
    """Alice's session on the demo's customers, bound to churn-analysis (dp-aggregate)."""
    return mesh.bind("customers", purpose="churn-analysis", analyst="alice")
