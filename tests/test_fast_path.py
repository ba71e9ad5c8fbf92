"""The fast path (issue 21) changes nothing the guarantee rests on: real DuckDB, real ledger.

- A session keeps its checked, planned and bound queries (they read no data); every run is still
  charged and recorded, a refused query is refused and recorded every time, and a closed engine
  forgets what it bound.
- The release cache writes in the background; a kept release is served at once, a cleared
  one never, and a closed cache has written everything.
- The engine's answer as numpy columns (DuckDB's ``fetchnumpy``) gives the same primitives as
  its pandas frame, NULL group keys included.
- The remaining budget a release reports, from the reservation itself, equals the ledger's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mesh_nb
from mesh_nb import PolicyViolation
from mesh_nb.query import policy
from mesh_nb.query.cache import ReleaseCache
from mesh_nb.query.plan import build_plan, columns_of, primitives

QUERY = ("SELECT region, COUNT(*) AS n, AVG(monthly_spend) AS spend "
         "FROM customers.accounts GROUP BY region")
UNDECLARED = ("SELECT date_trunc('year', signup_date) AS y, COUNT(*) AS n "
              "FROM customers.accounts GROUP BY 1")


def released(mesh) -> list:
    return mesh.ledger("customers").entries(kind="query.released")


def test_a_kept_query_is_charged_and_recorded_every_run(mesh, session) -> None:
    cache = mesh.product("customers").releases
    for _ in range(3):
        cache.clear()
        r = session.query(QUERY, epsilon=0.1)
        assert not r.cached
    assert len(session.prepared) == 1  # checked, planned and bound once
    entries = released(mesh)
    assert len(entries) == 3 and all(e.epsilon == pytest.approx(0.1) for e in entries)
    assert len({e.details["release"] for e in entries}) == 3
    assert session.budget().epsilon_spent == pytest.approx(0.3)


def test_each_asked_epsilon_is_its_own_plan(session) -> None:
    a = session.explain(QUERY, epsilon=0.1)
    b = session.explain(QUERY, epsilon=0.2)
    assert len(session.prepared) == 2
    assert sum(a.plan.measurements[i].epsilon for i in range(len(a.plan.measurements))) \
        == pytest.approx(0.1)
    assert sum(m.epsilon for m in b.plan.measurements) == pytest.approx(0.2)
    # the query then runs the plan explain showed
    r = session.query(QUERY, epsilon=0.2)
    assert r.epsilon == pytest.approx(0.2) and len(session.prepared) == 2


def test_a_refused_query_is_refused_and_recorded_every_time(mesh, session) -> None:
    bad = "SELECT email FROM customers.accounts"
    for _ in range(2):
        with pytest.raises(PolicyViolation):
            session.query(bad, epsilon=0.1)
    assert len(session.prepared) == 0
    assert len(mesh.ledger("customers").entries(kind="query.rejected")) == 2
    # too large an epsilon for a query kept at a smaller one is refused too
    session.explain(QUERY, epsilon=0.1)
    with pytest.raises(PolicyViolation) as exc:
        session.query(QUERY, epsilon=1e6)
    assert exc.value.rule == "epsilon-too-large"
    assert len(mesh.ledger("customers").entries(kind="query.rejected")) == 3


def test_a_closed_engine_forgets_what_it_bound(session) -> None:
    session.query(QUERY, epsilon=0.1)
    assert len(session.prepared) == 1
    session.close_engine()
    assert len(session.prepared) == 0
    session.product("customers").releases.clear()
    r = session.query(QUERY, epsilon=0.1)  # binds again in the new engine
    assert not r.cached and len(r.frame) == 6


def test_a_query_kept_under_a_closed_engine_is_bound_again(session) -> None:
    """Another thread closed the engine while this one was binding, then kept its query: the
    next run must not use the closed engine's job."""
    session.query(QUERY, epsilon=0.1)
    (key, stale), = session.prepared.items()
    session.close_engine()
    session.prepared[key] = stale  # the late keep of the racing thread
    session.product("customers").releases.clear()
    r = session.query(QUERY, epsilon=0.1)
    assert not r.cached and len(r.frame) == 6
    assert session.prepared[key].engine is session.engine is not stale.engine


def test_an_ended_session_refuses_a_kept_query(session) -> None:
    session.query(QUERY, epsilon=0.1)
    session.end()
    with pytest.raises(mesh_nb.MeshError, match="has ended"):
        session.query(QUERY, epsilon=0.1)


def test_the_reported_remaining_budget_is_the_ledgers(session) -> None:
    for eps in (0.1, 0.25, 0.05):
        r = session.query(QUERY, epsilon=eps)
        assert r.remaining == {"customers": session.budget().epsilon_remaining}


def frames(n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = n % 3 + 1
    frame = pd.DataFrame({"region": ["north", None, "east"][:rows], "n": np.arange(rows) + n})
    accuracy = pd.DataFrame({"output": ["n"] * rows, "row": range(rows),
                             "ci95_half_width": [1.5] * rows})
    return frame, accuracy


def test_the_cache_serves_a_kept_release_at_once_and_never_a_cleared_one(tmp_path) -> None:
    cache = ReleaseCache(tmp_path / "releases.sqlite")
    frame, accuracy = frames(1)
    cache.put("k1", "r1", frame, accuracy, {"notes": ["a"]})
    hit = cache.get("k1")  # pending or written: the same answer either way
    assert hit is not None and hit[0] == "r1" and hit[3] == {"notes": ["a"]}
    pd.testing.assert_frame_equal(hit[1], frame)
    frame.loc[0, "n"] = 99  # the caller's frame is not the kept one
    assert cache.get("k1")[1].n.iloc[0] == 1
    cache.put("k1", "r2", frame, accuracy, {})  # the first release kept under a key stays
    assert cache.get("k1")[0] == "r1"
    cache.put("k2", "r3", frame, accuracy, {})
    assert cache.clear() >= 2
    assert cache.get("k1") is None and cache.get("k2") is None
    cache.flush()
    assert cache.get("k1") is None and cache.get("k2") is None  # no late write revives them
    cache.put("k3", "r4", *frames(2), {})
    cache.close()
    again = ReleaseCache(tmp_path / "releases.sqlite")  # what a new process would read
    hit = again.get("k3")
    assert hit is not None and hit[0] == "r4"
    pd.testing.assert_frame_equal(hit[1], frames(2)[0])
    assert again.get("k1") is None
    again.close()


def test_many_puts_are_all_written(tmp_path) -> None:
    cache = ReleaseCache(tmp_path / "releases.sqlite")
    for i in range(200):
        cache.put(f"k{i}", f"r{i}", *frames(i), {"i": i})
    cache.close()
    again = ReleaseCache(tmp_path / "releases.sqlite")
    assert all(again.get(f"k{i}")[3] == {"i": i} for i in range(200))
    again.close()


def test_columns_and_frames_give_the_same_primitives(session) -> None:
    # NULL keys (the undeclared other group), counts, corrected sums, a histogram
    queries = [QUERY, UNDECLARED,
               "SELECT plan, MEDIAN(monthly_spend) AS m, SUM(monthly_spend) AS s "
               "FROM customers.accounts GROUP BY plan",
               "SELECT COUNT(*) AS n, AVG(monthly_spend) AS t FROM customers.accounts "
               "WHERE churned"]
    contracts = {p.name: p.contract for p in session.products}
    for sql in queries:
        checked = policy.check(sql, contracts, session.purpose)
        # planned without contribution bounding (its random sample would differ per run)
        plan = build_plan(checked, contracts, epsilon=1.0, delta=1e-6, one_row_per_unit=True)
        job = session.engine.prepare(plan.query)
        via_frame, via_columns = primitives(plan, job.run()), primitives(plan, job.columns())
        assert via_frame.keys() == via_columns.keys(), sql
        for name in via_frame:
            a, b = via_frame[name], via_columns[name]
            assert len(a) == len(b), (sql, name)
            order_a = sorted(range(len(a)), key=lambda i: repr(_plain(
                via_frame[plan.keys[0]][i])) if plan.keys else i)
            order_b = sorted(range(len(b)), key=lambda i: repr(_plain(
                via_columns[plan.keys[0]][i])) if plan.keys else i)
            for i, j in zip(order_a, order_b):
                assert _plain(a[i]) == _plain(b[j]), (sql, name)


def _plain(v):
    """A cell compared across the frame and the columns: missing is None, numbers as float."""
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, dict):
        return {int(k): int(c) for k, c in v.items()}
    if isinstance(v, (int, float, np.number)) and not isinstance(v, bool):
        return float(v)
    return v


def test_masked_columns_become_none() -> None:
    masked = np.ma.masked_array([1, 2, 3], mask=[False, True, False])
    plain = columns_of({"k": masked, "n": np.ma.masked_array([4, 5], mask=False)})
    assert list(plain["k"]) == [1, None, 3] and plain["k"].dtype == object
    assert plain["n"].dtype.kind == "i" and list(plain["n"]) == [4, 5]


def test_one_watchdog_thread_guards_many_blocks_and_stops_a_late_one() -> None:
    import threading

    from mesh_nb.query.engines import Watchdog

    stopped = threading.Event()
    dog = Watchdog(3600, stopped.set)
    before = threading.active_count()
    for _ in range(50):  # blocks that end long before their deadline
        with dog:
            pass
        assert not dog.fired
    assert threading.active_count() <= before + 1 and not stopped.is_set()
    late = Watchdog(0.01, stopped.set, every=0.01)
    with late:  # a block that runs until it is stopped (generous deadline: a busy machine)
        assert stopped.wait(120)
    assert late.fired
    stopped.clear()
    with late:  # reused: a fresh deadline, not fired until it passes again
        assert stopped.wait(120)
    assert late.fired
    for d in (dog, late):
        d.close()
        d._thread.join(60)
        assert not d._thread.is_alive()
