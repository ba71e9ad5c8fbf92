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
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
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


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=60, help="timed runs per query and mode")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="mesh-bench-server-"))
    root = write_demo(tmp / "mesh", seed=7)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
