"""Files the ledger, the release cache and the server write: the owner's only, whatever the
umask (0600 files in 0700 folders)."""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

DEFAULT_DEMO_DIR = "mesh-demo"
"""Where the demo mesh lives unless told (``mesh-nb demo``, ``%mesh_bind`` without a mesh)."""


def private_dir(path: Path | str) -> Path:
    """Create ``path`` (and parents) if missing; make it 0700 when this user owns it."""
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    with suppress(OSError):
        os.chmod(path, 0o700)
    return path


def private_file(path: Path | str) -> Path:
    """Create ``path`` empty if missing, 0600 (before SQLite opens it: its -wal and -shm files
    take the database file's mode); an existing file of this user is made 0600 too."""
    path = Path(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    with suppress(OSError):
        os.chmod(path, 0o600)
    for extra in ("-wal", "-shm", "-journal"):
        with suppress(OSError):
            os.chmod(f"{path}{extra}", 0o600)
    return path
