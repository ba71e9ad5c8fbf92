"""The server's own state in the owner's area: ``MESH_DIR/.server/server.sqlite``.

Tokens (hashes only) and purpose requests live here, never data. The folder is created with
mode 0700; ``MESH_NB_SERVER_HOME`` moves it elsewhere (e.g. beside the owner's keys).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from ..files import private_dir, private_file

SERVER_DIR = ".server"
DB_FILE = "server.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL, purposes TEXT NOT NULL,
    created TEXT NOT NULL, expires TEXT, revoked TEXT, rate INTEGER
);
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY, analyst TEXT NOT NULL, products TEXT NOT NULL, purpose TEXT NOT NULL,
    reason TEXT NOT NULL, status TEXT NOT NULL, created TEXT NOT NULL, decided TEXT,
    decided_by TEXT, note TEXT
);
"""


def server_dir(mesh_dir: str | os.PathLike) -> Path:
    """Where the server keeps tokens and requests for the mesh at ``mesh_dir``."""
    home = os.environ.get("MESH_NB_SERVER_HOME")
    return Path(home) if home else Path(mesh_dir).resolve() / SERVER_DIR


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


class ServerDb:
    """One SQLite file, shared by the server process and the owner's CLI (WAL mode)."""

    def __init__(self, mesh_dir: str | os.PathLike):
        folder = server_dir(mesh_dir)
        private_dir(folder)
        self.path = private_file(folder / DB_FILE)
        self._lock = threading.Lock()
        self._con = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                    check_same_thread=False)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.executescript(SCHEMA)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``), serialised in this process too."""
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            try:
                yield self._con
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            self._con.execute("COMMIT")

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._con.execute(sql, params).fetchall()

    def close(self) -> None:
        self._con.close()
