"""Where the project's read-only ``shared`` folder is, from any checkout or worktree.

The folder sits beside the main checkout (``<parent>/main`` and ``<parent>/shared``). A git
worktree elsewhere (``/tmp/wt-x``) is not beside it, so the candidates are, in order:

1. ``$MESH_NB_SHARED`` when set (an error if it names no folder: a typo must not skip tests);
2. ``shared`` beside this checkout;
3. ``shared`` beside the main checkout a worktree belongs to (read from its ``.git`` file).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["shared_dir", "SHARED_HINT"]

SHARED_HINT = ("set MESH_NB_SHARED to the shared folder (the one holding data/pii), or run "
               "from a checkout beside it")


def _main_checkout(repo: Path) -> Path | None:
    """The main checkout of the worktree at ``repo`` (None when ``repo`` is not a worktree)."""
    dot_git = repo / ".git"
    if not dot_git.is_file():
        return None
    line = dot_git.read_text(encoding="utf-8").strip()
    if not line.startswith("gitdir:"):
        return None
    gitdir = Path(line.partition(":")[2].strip())
    gitdir = gitdir if gitdir.is_absolute() else (repo / gitdir).resolve()
    common = gitdir / "commondir"
    if common.is_file():
        gitdir = (gitdir / common.read_text(encoding="utf-8").strip()).resolve()
    return gitdir.parent if gitdir.name == ".git" else None


def shared_dir(repo: Path | None = None) -> Path | None:
    """The ``shared`` folder for the checkout at ``repo`` (default: this one), or None when no
    candidate exists (callers skip, naming :data:`SHARED_HINT`)."""
    env = os.environ.get("MESH_NB_SHARED")
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"MESH_NB_SHARED={env} is not a folder; {SHARED_HINT}")
        return path
    repo = Path(repo) if repo is not None else Path(__file__).resolve().parents[1]
    candidates = [repo.parent / "shared"]
    main = _main_checkout(repo)
    if main is not None:
        candidates.append(main.parent / "shared")
    return next((c for c in candidates if c.is_dir()), None)
