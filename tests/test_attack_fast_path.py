"""An adversary's tests of the fast path (issue 21): real DuckDB, real SQLite ledger, no mocks.

What each one caught (all fixed):
- a freshly bound session's warm-up thread held import locks: a process forked meanwhile
  (multiprocessing's default start method on Linux) hung on its first query;
- the release cache's writer thread, lock and SQLite connection came from the parent in a forked
  child: a release made there was never written (a later identical query was charged again
  for a fresh, independent answer), or the child hung on the parent's lock;
- the persistent watchdog thread held the engine's DuckDB connection: a session dropped
  without ``end()`` (a re-run notebook cell) leaked a thread and an open connection each;
- ``fetchnumpy`` dropped a TIMESTAMPTZ group key's time zone (naive UTC instants, where the
  engine's pandas frame gives zone-aware times).
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

import mesh_nb
from mesh_nb.query import policy
from mesh_nb.query.accountant import Accountant
from mesh_nb.query.plan import build_plan, primitives
from mesh_nb.query.release import add_noise

REPO = Path(__file__).resolve().parents[1]
QUERY = "SELECT plan, COUNT(*) AS n FROM customers.accounts GROUP BY plan"


def _python(script: str, root: Path, tmp_path: Path, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_STATE_HOME": str(tmp_path / "state")}
    env.pop("MESH_NB_OWNER_HOME", None)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), str(root)], env=env,
                          capture_output=True, text=True, timeout=timeout)


FORK_AFTER_BIND = """
    import multiprocessing as mp, sys
    import mesh_nb
    ROOT = sys.argv[1]

    def child():
        m = mesh_nb.open_mesh(ROOT)
        s = m.bind("customers", purpose="churn-analysis", analyst="kid")
        r = s.query("SELECT region, COUNT(*) AS n FROM customers.accounts GROUP BY region",
                    epsilon=0.01)
        print("child ok", len(r.frame), flush=True)

    if __name__ == "__main__":
        m = mesh_nb.open_mesh(ROOT)
        m.bind("customers", purpose="churn-analysis", analyst="parent")  # starts the warm-up
        p = mp.get_context("fork").Process(target=child)
        p.start()
        p.join(40)
        hung = p.is_alive()
        if hung:
            p.kill()
        print("hung" if hung else f"exit {p.exitcode}", flush=True)
"""


def test_a_process_forked_right_after_bind_can_query(demo_dir, tmp_path) -> None:
    """The warm-up thread is mid-import when the fork happens; the child inherits module locks
    held by a thread it does not have, and its first query waits on them forever."""
    done = _python(FORK_AFTER_BIND, demo_dir, tmp_path, timeout=180)
    assert "child ok 6" in done.stdout and "exit 0" in done.stdout, (done.stdout, done.stderr)


FORK_CACHE = """
    import multiprocessing as mp, sys, time
    import mesh_nb, mesh_nb.query.runner
    ROOT = sys.argv[1]
    QUERY = "SELECT plan, COUNT(*) AS n FROM customers.accounts GROUP BY plan"
    m = mesh_nb.open_mesh(ROOT)

    def child():  # the inherited mesh: its products' release cache came from the parent
        s = m.bind("customers", purpose="churn-analysis", analyst="kid")
        print("child", s.query(QUERY, epsilon=0.01).release_id, flush=True)

    if __name__ == "__main__":
        s = m.bind("customers", purpose="churn-analysis", analyst="parent")
        s.query("SELECT region, COUNT(*) AS n FROM customers.accounts GROUP BY region",
                epsilon=0.01)  # the cache's writer thread now exists (in the parent)
        m.product("customers").releases.flush()
        s.query("SELECT churned, COUNT(*) AS n FROM customers.accounts GROUP BY churned",
                epsilon=0.01)
        p = mp.get_context("fork").Process(target=child)
        p.start()
        p.join(40)
        if p.is_alive():  # waits on the cache lock its parent's writer thread held
            p.kill()
            print("child hung", flush=True)
        later = mesh_nb.open_mesh(ROOT).bind("customers", purpose="churn-analysis",
                                             analyst="later")
        r = later.query(QUERY, epsilon=0.01)
        print("later", r.release_id, r.cached, flush=True)
"""


def test_a_release_made_in_a_forked_child_is_kept(demo_dir, tmp_path) -> None:
    done = _python(FORK_CACHE, demo_dir, tmp_path, timeout=180)
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    assert "child" in lines and "later" in lines, (done.stdout, done.stderr)
    assert lines["later"] == f"{lines['child']} True", done.stdout  # the same release, free


def _watchdogs() -> int:
    return sum(t.name == "mesh-nb-watchdog" and t.is_alive() for t in threading.enumerate())


def test_a_dropped_session_frees_its_watchdog_thread(demo_dir) -> None:
    m = mesh_nb.open_mesh(demo_dir)
    before = _watchdogs()

    def once(i: int) -> None:
        s = m.bind("customers", purpose="churn-analysis", analyst=f"a{i}")
        s.query(f"SELECT COUNT(*) AS n FROM customers.accounts WHERE monthly_spend > {i}",
                epsilon=0.01)  # the engine ran a query: its watcher thread started
        # the analyst re-runs the cell: the session is dropped without end()

    for i in range(4):
        once(i)
    gc.collect()
    deadline = time.monotonic() + 30
    while _watchdogs() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _watchdogs() == before  # each left a thread holding an open DuckDB connection


def test_a_timestamptz_group_key_keeps_its_time_zone(demo_dir) -> None:
    m = mesh_nb.open_mesh(demo_dir)
    s = m.bind("customers", purpose="churn-analysis", analyst="tz")
    contracts = {p.name: p.contract for p in s.products}
    sql = ("SELECT CAST(signup_date AS TIMESTAMPTZ) AS k, COUNT(*) AS n "
           "FROM customers.accounts GROUP BY 1")
    checked = policy.check(sql, contracts, s.purpose)
    plan = build_plan(checked, contracts, epsilon=1.0, delta=1e-6, one_row_per_unit=True)
    job = s.engine.prepare(plan.query)
    via_frame, _ = add_noise(plan, primitives(plan, job.run()), accountant=Accountant(1))
    via_columns, _ = add_noise(plan, primitives(plan, job.columns()), accountant=Accountant(1))
    assert isinstance(via_frame.k.dtype, pd.DatetimeTZDtype)  # the old path: zone-aware
    assert via_columns.k.dtype == via_frame.k.dtype  # the fast path: naive (UTC) instants
