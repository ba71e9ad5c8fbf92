"""tests/shared_dir.py finds the shared folder from a worktree outside the main checkout's parent."""

from __future__ import annotations

import pytest

from shared_dir import shared_dir


def _layout(tmp_path):
    """<tmp>/proj/{main,shared} and a worktree <tmp>/elsewhere/wt whose .git names main's."""
    main, shared = tmp_path / "proj" / "main", tmp_path / "proj" / "shared"
    gitdir = main / ".git" / "worktrees" / "wt"
    gitdir.mkdir(parents=True)
    shared.mkdir()
    (gitdir / "commondir").write_text("../..\n")
    wt = tmp_path / "elsewhere" / "wt"
    wt.mkdir(parents=True)
    (wt / ".git").write_text(f"gitdir: {gitdir}\n")
    return main, shared, wt


def test_worktree_finds_shared_beside_main(tmp_path, monkeypatch):
    monkeypatch.delenv("MESH_NB_SHARED", raising=False)
    main, shared, wt = _layout(tmp_path)
    assert shared_dir(wt) == shared.resolve()
    assert shared_dir(main) == shared  # the main checkout: beside it


def test_env_var_wins_and_a_typo_is_an_error(tmp_path, monkeypatch):
    _, shared, wt = _layout(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setenv("MESH_NB_SHARED", str(other))
    assert shared_dir(wt) == other
    monkeypatch.setenv("MESH_NB_SHARED", str(tmp_path / "typo"))
    with pytest.raises(FileNotFoundError, match="MESH_NB_SHARED"):
        shared_dir(wt)


def test_nothing_found_is_none(tmp_path, monkeypatch):
    monkeypatch.delenv("MESH_NB_SHARED", raising=False)
    lone = tmp_path / "a" / "lone"
    lone.mkdir(parents=True)
    assert shared_dir(lone) is None
