"""Query latency through the owner's mesh server versus in-process, on the same queries.

    python bench/server.py                  # 60 runs per query and mode
    python bench/server.py --runs 20        # a quicker look

Writes the demo mesh to a temporary folder, starts ``mesh-nb serve`` on 127.0.0.1 (a real
uvicorn process, as tests/live_server.py does) and times each query's full ``session.query``
in this process and through ``RemoteSession.query`` (HTTP keep-alive, JSON + Arrow IPC),
interleaved so both see the same machine. Each run asks a slightly different epsilon, so no
answer comes from the release cache (a cached repeat is timed separately). Prints p50 and p95
per query and mode, and the overhead: the median of the paired differences (each server call
against the in-process call just before it), which a busy machine disturbs least. The goal of
issue 8 is an overhead < 10 ms at p50 on loopback.

Then, under load (issue 15): another token keeps a heavy query running (a 4-way self-join of
sales.orders, stopped by the server's 20 s deadline and started again) while this token's
light query is timed through the server; prints its p50/p95 against the idle server's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from live_server import LiveServer  # noqa: E402

from mesh_nb import open_mesh  # noqa: E402
from mesh_nb.demo import write_demo  # noqa: E402

QUERIES = {
    "COUNT(*)": "SELECT COUNT(*) AS n FROM customers.accounts",
    "COUNT BY region": "SELECT region, COUNT(*) AS n FROM customers.accounts GROUP BY region",
    "AVG spend BY plan": "SELECT plan, AVG(monthly_spend) AS s FROM customers.accounts "
                         "GROUP BY plan",
    "SUM spend BY region, plan": "SELECT region, plan, SUM(monthly_spend) AS s "
                                 "FROM customers.accounts GROUP BY region, plan",
    "MEDIAN spend": "SELECT MEDIAN(monthly_spend) AS m FROM customers.accounts",
}
GOAL_MS = 10.0
HEAVY = ("SELECT COUNT(*) AS n FROM sales.orders AS a JOIN sales.orders AS b "
         "ON a.customer_id = b.customer_id JOIN sales.orders AS c "
         "ON b.customer_id = c.customer_id JOIN sales.orders AS d ON c.customer_id = d.customer_id")
LIGHT = "COUNT BY region"


def under_load(server: LiveServer, remote, runs: int) -> tuple[list[float], int]:
    """Light-query times (ms) while another token's heavy query runs; how many heavy ran."""
    heavy = open_mesh(server.url, token=server.token("bench-heavy", rate=10**6)).bind(
        "sales", purpose="churn-analysis")
    stop, started = threading.Event(), []

    def hog() -> None:
        while not stop.is_set():
            started.append(1)
            try:
                heavy.query(HEAVY, epsilon=0.001 + len(started) * 1e-6)
            except Exception:  # noqa: BLE001 - the deadline stops it: expected
                pass

    thread = threading.Thread(target=hog, daemon=True)
    thread.start()
    time.sleep(1.0)  # let the heavy query reach the engine
    times = []
    try:
        for k in range(runs):
            t0 = time.perf_counter()
            remote.query(QUERIES[LIGHT], epsilon=0.001 + k * 1e-6)
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        stop.set()
    return times, len(started)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=60, help="timed runs per query and mode")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="mesh-bench-server-"))
    root = write_demo(tmp / "mesh", seed=7)
    os.environ["MESH_NB_QUERY_SECONDS"] = "20"  # the server's deadline for the heavy query
    server = LiveServer.start(root, tmp / "server.log")
    try:
        local = open_mesh(root).bind("customers", purpose="churn-analysis",
                                     analyst="bench-local")
        remote = open_mesh(server.url, token=server.token("bench-remote", rate=10**6)).bind(
            "customers", purpose="churn-analysis")
        times: dict[tuple[str, str], list[float]] = {}
        k = 0
        for run in range(args.runs + 3):  # 3 warm-up rounds
            for name, sql in QUERIES.items():
                for mode, session in (("in-process", local), ("server", remote)):
                    k += 1
                    eps = 0.001 + k * 1e-6  # a new cache key every call: no cached answers
                    t0 = time.perf_counter()
                    session.query(sql, epsilon=eps)
                    ms = (time.perf_counter() - t0) * 1000
                    if run >= 3:
                        times.setdefault((name, mode), []).append(ms)
        for mode, session in (("in-process", local), ("server", remote)):
            session.query(QUERIES["COUNT(*)"], epsilon=0.5)
            for _ in range(args.runs):
                t0 = time.perf_counter()
                session.query(QUERIES["COUNT(*)"], epsilon=0.5)
                times.setdefault(("COUNT(*) cached repeat", mode), []).append(
                    (time.perf_counter() - t0) * 1000)
        loaded, heavies = under_load(server, remote, args.runs)
    finally:
        server.stop()
    print(f"query latency, ms ({args.runs} runs each; demo customers, 48k rows; loopback)\n")
    print(f"{'query':<28} {'in-process p50':>14} {'p95':>7} {'server p50':>11} {'p95':>7} "
          f"{'overhead p50':>13}")
    overheads = []
    for name in [*QUERIES, "COUNT(*) cached repeat"]:
        a, b = times[(name, "in-process")], times[(name, "server")]
        over = statistics.median(y - x for x, y in zip(a, b))  # paired: same moment, same load
        overheads.append(over)
        print(f"{name:<28} {statistics.median(a):>14.1f} {pct(a, .95):>7.1f} "
              f"{statistics.median(b):>11.1f} {pct(b, .95):>7.1f} {over:>13.1f}")
    worst = max(overheads)
    print(f"\ngoal (issue 8): server overhead < {GOAL_MS:g} ms at p50 — worst query "
          f"{worst:.1f} ms: {'met' if worst < GOAL_MS else 'NOT MET'}")
    idle = times[(LIGHT, "server")]
    print(f"\n{LIGHT} through the server while another token's heavy query runs "
          f"({heavies} heavy queries started):")
    print(f"  idle server   p50 {statistics.median(idle):.1f} ms  p95 {pct(idle, .95):.1f} ms")
    print(f"  under load    p50 {statistics.median(loaded):.1f} ms  p95 {pct(loaded, .95):.1f} ms"
          f"  (ratio p95 {pct(loaded, .95) / pct(idle, .95):.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
