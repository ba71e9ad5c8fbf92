"""Shared fixtures: one real demo mesh per test session, copied per test that writes to it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mesh_nb.demo import write_demo

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo mesh's files (contracts and parquet), written once."""
    return write_demo(tmp_path_factory.mktemp("demo") / "mesh", seed=7)


@pytest.fixture
def demo_dir(demo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the demo mesh with empty ledgers, owned by this test."""
    monkeypatch.delenv("MESH_NB_OWNER_HOME", raising=False)
    target = tmp_path / "mesh"
    shutil.copytree(demo_root, target, ignore=shutil.ignore_patterns(".mesh_nb", ".owner"))
    return target


def shared_data(*parts: str) -> Path:
    """A file under ../shared/data, or skip the test with the reason."""
    path = SHARED.joinpath("data", *parts)
    if not path.exists():
        pytest.skip(f"{path} is not here (the shared data folder is absent)")
    return path
