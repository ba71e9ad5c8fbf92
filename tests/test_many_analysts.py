"""Many analysts at once: 16 processes share one per-purpose budget through the real query path.

Four analysts, four processes each, bind the demo's ``customers`` product for
``marketing-research`` (a 1.0 epsilon budget shared by everyone on the purpose) and send 50
distinct DP queries of 0.002 each: 1.6 asked of 1.0, so the budget runs out midway. On both
ledger stores: exactly 500 releases succeed, the ledger holds one ``query.released`` entry per
success and nothing more is spent, it verifies, and every process ends cleanly with
:class:`BudgetExceeded` its only failure, within a deadline (a deadlock would miss it).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import sys
import time
import traceback
from pathlib import Path

import pytest

import mesh_nb
import mesh_nb.query.runner  # noqa: F401 - imported once here (diffprivlib, scikit-learn: ~2 s),
from mesh_nb.errors import BudgetExceeded  # not once per forked analyst, as in a warm kernel
from mesh_nb.ledger.config import ENV_VAR
from mesh_nb.ledger.entry import MICRO

PROCESSES = 16
ANALYSTS = ("alice", "bob", "carol", "dave")
QUERIES = 50
EPSILON = 0.002
PURPOSE = "marketing-research"
DEADLINE_S = 90
FORK = mp.get_context("fork")


def _analyst(root: Path, worker: int, barrier, results) -> None:
    """One analyst's kernel: bind, then 50 distinct queries; reports (worker, ok, refused, errors)."""
    ok = refused = 0
    errors: list[str] = []
    try:
        m = mesh_nb.open_mesh(root)
        session = m.bind("customers", purpose=PURPOSE, analyst=ANALYSTS[worker % len(ANALYSTS)])
        barrier.wait(timeout=60)
        for i in range(QUERIES):
            threshold = worker * QUERIES + i  # distinct text: the release cache cannot serve it
            sql = ("SELECT region, COUNT(*) AS n FROM customers.accounts "
                   f"WHERE monthly_spend > {threshold} GROUP BY region")
            try:
                release = session.query(sql, epsilon=EPSILON)
                assert not release.cached and release.epsilon == EPSILON
                ok += 1
            except BudgetExceeded:
                refused += 1
    except BaseException:  # noqa: BLE001 - reported to the parent, which fails the test
        errors.append(traceback.format_exc(limit=3))
    results.put((worker, ok, refused, errors))
    sys.exit(1 if errors else 0)  # flushes the queue first (os._exit would lose the report)


@pytest.mark.slow
def test_sixteen_analyst_processes_share_one_budget(store: str, demo_dir: Path,
                                                    request: pytest.FixtureRequest,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    if store == "postgres":
        monkeypatch.setenv(ENV_VAR, request.getfixturevalue("pg_url"))  # the children inherit it
    m = mesh_nb.open_mesh(demo_dir)
    ledger = m.ledger("customers")
    budget = m.product("customers").contract.purposes[PURPOSE].budget
    assert budget.scope == "per-purpose" and budget.epsilon == 1.0
    assert (ledger.path is None) == (store == "postgres")
    started = time.monotonic()
    barrier, results = FORK.Barrier(PROCESSES), FORK.Queue()
    procs = [FORK.Process(target=_analyst, args=(demo_dir, w, barrier, results))
             for w in range(PROCESSES)]
    for p in procs:
        p.start()
    reports = []
    try:
        for _ in procs:
            reports.append(results.get(timeout=max(1.0, DEADLINE_S - (time.monotonic() - started))))
    except queue.Empty:
        pytest.fail(f"only {len(reports)} of {PROCESSES} analysts finished within {DEADLINE_S} s "
                    "(deadlock or stall)")
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                os.kill(p.pid, signal.SIGKILL)
                p.join()
    elapsed = time.monotonic() - started
    errors = [e for *_, errs in reports for e in errs]
    assert not errors, "\n".join(errors)
    assert [p.exitcode for p in procs] == [0] * PROCESSES
    ok = sum(r[1] for r in reports)
    refused = sum(r[2] for r in reports)
    assert ok + refused == PROCESSES * QUERIES
    assert ok == round(budget.epsilon / EPSILON) == 500  # never above the budget, none wasted
    assert refused > 0
    spent_micro = sum(e.epsilon_micro for e in ledger.entries(purpose=PURPOSE))
    assert spent_micro == ok * round(EPSILON * MICRO) <= round(budget.epsilon * MICRO)
    assert ledger.spent(None, PURPOSE, budget) == (ok * EPSILON, 0.0)
    released = ledger.entries(kind="query.released", purpose=PURPOSE)
    assert len(released) == ok
    assert len({e.details["release"] for e in released}) == ok  # one entry per release
    assert len(ledger.entries(kind="budget.exhausted")) == refused
    assert len(ledger.entries(kind="session.bound")) == PROCESSES
    assert {e.analyst for e in released} <= set(ANALYSTS)
    report = ledger.verify(full=True)
    assert report.entries == len(ledger) == PROCESSES + ok + refused
    print(f"\n{store}: {PROCESSES} processes, {ok} released, {refused} refused, "
          f"{elapsed:.1f} s")
