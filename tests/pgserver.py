"""A throwaway PostgreSQL server for the ledger tests and bench: initdb, start, stop, delete.

    with PgServer.start() as server:          # binaries from PATH or /usr/lib/postgresql/*/bin
        url = server.create_database("t1")    # postgresql+psycopg://postgres@127.0.0.1:PORT/t1

The server listens on 127.0.0.1 only (a free port), with its unix socket inside its own temp
directory and ``trust`` authentication for local connections, so no password exists anywhere.
Running as root, initdb and the server run as the ``postgres`` OS user (``runuser``) on a
directory it owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ports import free_port

SUPERUSER = "postgres"


class PgUnavailable(RuntimeError):
    """No PostgreSQL server binaries here (the message says where we looked)."""


def find_bindir() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: PATH first, then Debian's layout."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                    key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if debian:
        return Path(debian[-1]).parent
    raise PgUnavailable("no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in "
                        "/usr/lib/postgresql/*/bin — install Debian's `postgresql` package")


def libpq_url(url: str) -> str:
    """A SQLAlchemy ``postgresql+psycopg://`` URL as a libpq connection URI."""
    return re.sub(r"^postgresql\+psycopg://", "postgresql://", url)


def create_database(admin_url: str, name: str) -> str:
    """Create database ``name`` on the server of ``admin_url`` (dropping an older one of that
    name, so a test always starts empty); the URL of the new database."""
    import psycopg

    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path="/" + name))


@dataclass
class PgServer:
    """A running throwaway server; :meth:`stop` (or leaving the ``with``) deletes it."""

    bindir: Path
    root: Path
    port: int
    run_as: str | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg 3) for ``database``, without a password."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 120) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.returncode:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()[-2000:]}")

    @classmethod
    def start(cls, *, fsync: bool = True, max_connections: int = 100) -> "PgServer":
        """initdb a temp data dir and start a server on a free 127.0.0.1 port.

        ``fsync=False`` trades crash safety for speed (tests); the bench keeps it on.
        """
        bindir = find_bindir()
        root = Path(tempfile.mkdtemp(prefix="mesh-nb-pg-"))
        run_as = None
        if os.geteuid() == 0:  # the server refuses to run as root
            run_as = SUPERUSER
            entry = pwd.getpwnam(run_as)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        root.chmod(0o700)
        server = cls(bindir, root, free_port(), run_as)
        try:
            server._run("initdb", "-D", str(server.datadir), "-U", SUPERUSER, "--auth=trust",
                        "--encoding=UTF8", "--locale=C", "--no-instructions")
            opts = (f"-c listen_addresses=127.0.0.1 -p {server.port} "
                    f"-c unix_socket_directories={root} -c max_connections={max_connections} "
                    f"-c fsync={'on' if fsync else 'off'} "
                    f"-c synchronous_commit={'on' if fsync else 'off'} "
                    "-c full_page_writes=on -c shared_buffers=128MB")
            server._run("pg_ctl", "-D", str(server.datadir), "-l", str(root / "server.log"),
                        "-o", opts, "-w", "-t", "60", "start")
        except BaseException:
            server.stop()
            raise
        return server

    def create_database(self, name: str) -> str:
        """Create database ``name`` (dropping an older one of that name); its URL."""
        return create_database(self.url(), name)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if (self.datadir / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop",
                          timeout=60)
        finally:
            for _ in range(3):
                shutil.rmtree(self.root, ignore_errors=True)
                if not self.root.exists():
                    break
                time.sleep(0.2)

    def __enter__(self) -> "PgServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
