"""A real mesh server process (``mesh-nb serve``) on 127.0.0.1 for the server tests.

Imported by tests/test_server.py and tests/test_api_shared.py (not a conftest: the shared
conftest stays as it is). Tokens are issued the owner's way, in the server's database.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx

from mesh_nb.server.approvals import Approvals
from mesh_nb.server.db import ServerDb
from mesh_nb.server.tokens import TokenStore
from ports import free_port


@dataclass
class LiveServer:
    """One ``mesh-nb serve`` process over ``mesh_dir``; its log is ``log``."""

    mesh_dir: Path
    url: str
    log: Path
    proc: subprocess.Popen

    @classmethod
    def start(cls, mesh_dir: Path, log: Path, *, max_body: int | None = None,
              port: int | None = None) -> "LiveServer":
        """Start it (on ``port``, default a free one) and wait until it answers."""
        port = port or free_port()
        cmd = [sys.executable, "-m", "mesh_nb.cli", "serve", str(mesh_dir), "--port", str(port),
               "--log-file", str(log)]
        if max_body:
            cmd += ["--max-body", str(max_body)]
        env = {k: v for k, v in os.environ.items() if k != "MESH_NB_OWNER_HOME"}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                stderr=open(log.with_suffix(".stderr"), "w"))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                    return cls(mesh_dir, url, log, proc)
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("mesh server did not start: "
                                   + log.with_suffix(".stderr").read_text()[-2000:])
            time.sleep(0.1)

    def token(self, name: str, purposes: tuple[str, ...] = (), expires: str | None = None,
              rate: int | None = None) -> str:
        """A fresh token issued the owner's way (the server reads the same database)."""
        db = ServerDb(self.mesh_dir)
        try:
            return TokenStore(db).issue(name, purposes, expires, rate)[1]
        finally:
            db.close()

    def client(self, token: str, timeout: float = 60) -> httpx.Client:
        """An HTTP client on the API (``/v1``) sending ``token`` as the bearer."""
        return httpx.Client(base_url=self.url + "/v1", timeout=timeout,
                            headers={"Authorization": f"Bearer {token}"})

    def approvals(self) -> Approvals:
        from mesh_nb import open_mesh

        m = open_mesh(self.mesh_dir)
        return Approvals(ServerDb(m.root), m)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def copy_demo(demo_root: Path, target: Path) -> Path:
    """A copy of the demo mesh with empty ledgers and no server state."""
    shutil.copytree(demo_root, target,
                    ignore=shutil.ignore_patterns(".mesh_nb", ".owner", ".server"))
    return target


def demo_server(demo_root: Path, base: Path) -> Iterator[LiveServer]:
    """A server on a fresh copy of the demo mesh under ``base``, stopped when the generator
    ends (``yield from demo_server(...)`` in a fixture)."""
    server = LiveServer.start(copy_demo(demo_root, base / "mesh"), base / "server.log")
    try:
        yield server
    finally:
        server.stop()
