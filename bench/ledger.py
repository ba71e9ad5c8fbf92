"""Ledger benchmark: append rate, verify time, reserve() throughput and latency under 16
concurrent writer processes, on the SQLite file and on a PostgreSQL server.

    python bench/ledger.py                     # full sizes; starts a throwaway PostgreSQL
    python bench/ledger.py --quick             # smaller sizes, for a smoke run
    python bench/ledger.py --pg-url URL        # use a running server (no password in the URL)
    python bench/ledger.py --no-postgres       # SQLite only

The throwaway server (tests/pgserver.py) keeps PostgreSQL's defaults (fsync and
synchronous_commit on) on 127.0.0.1. The writers race for a per-purpose budget smaller than
what they ask, so the race also checks for overspend. Prints a plain markdown table.
Goals: SQLite >= 2,000 appends/s, 100,000-entry verify < 2 s; PostgreSQL >= 500 reserves/s
with 16 writers; zero overspend on both.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # pgserver: the throwaway PostgreSQL of the tests

from mesh_nb.contract.model import Budget  # noqa: E402
from mesh_nb.errors import BudgetExceeded  # noqa: E402
from mesh_nb.ledger import Ledger  # noqa: E402
from mesh_nb.ledger.entry import MICRO  # noqa: E402

PRODUCT = "bench"
DETAILS = {"query": "SELECT region, count(*) FROM customers WHERE age > ? GROUP BY region",
           "columns": ["region", "age"], "rows": 1200, "groups": 6, "mechanism": "laplace"}
BIG = Budget(1e6, scope="per-purpose")
SPEND = 0.01  # epsilon per reserve()


@dataclass(frozen=True)
class Sizes:
    appends: int
    runs: int  # append runs (fresh ledger each); the disk here is noisy, so report the median
    verify: int  # SQLite only: entries in the big verify
    writers: int
    reserves: int  # per writer


FULL = Sizes(appends=10_000, runs=3, verify=100_000, writers=16, reserves=250)
QUICK = Sizes(appends=2_000, runs=1, verify=10_000, writers=16, reserves=50)


def open_ledger(where: Path | str, root: Path) -> Ledger:
    """The bench ledger: the SQLite file under ``root`` (``where == "sqlite"``) or at a URL."""
    return Ledger(root / "ledger.sqlite" if where == "sqlite" else where, root / "owner", PRODUCT)


def append_some(led: Ledger, n: int) -> float:
    """Seconds to append ``n`` released-query entries."""
    started = time.perf_counter()
    for i in range(n):
        led.append("query.released", session="s1", analyst=f"a{i % 5}", purpose="churn",
                   epsilon=0.01, details=DETAILS)
    return time.perf_counter() - started


def _writer(where: Path | str, root: Path, n: int, budget: Budget, barrier, out) -> None:
    led = open_ledger(where, root)
    barrier.wait()
    latencies, won = [], 0
    for _ in range(n):
        t = time.perf_counter()
        try:
            led.reserve(analyst="alice", purpose="churn", epsilon=SPEND, budget=budget,
                        details=DETAILS)
            won += 1
        except BudgetExceeded:
            pass
        latencies.append(time.perf_counter() - t)
    out.put((latencies, won))


@dataclass(frozen=True)
class Race:
    """What ``writers`` processes racing on reserve() did."""

    latencies: list[float]  # seconds, one per call
    wall: float
    won: int
    spent_micro: int
    budget_micro: int
    entries: int  # after verify(full=True)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall

    def ms(self, q: int) -> float:
        return percentile([x * 1000 for x in self.latencies], q)


def reserve_race(where: Path | str, root: Path, writers: int, n: int) -> Race:
    """``writers`` processes x ``n`` reserve() calls against a budget of 3/4 of what they ask."""
    budget = Budget(writers * n * SPEND * 3 / 4, scope="per-purpose")
    led = open_ledger(where, root)
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(writers + 1), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(where, root, n, budget, barrier, out))
             for _ in range(writers)]
    for p in procs:
        p.start()
    barrier.wait()
    started = time.perf_counter()
    results = [out.get() for _ in procs]
    wall = time.perf_counter() - started
    for p in procs:
        p.join()
    spent = sum(e.epsilon_micro for e in led.entries(purpose="churn"))
    report = led.verify(full=True)
    led.close()
    return Race([x for lat, _ in results for x in lat], wall, sum(w for _, w in results), spent,
                round(budget.epsilon * MICRO), report.entries)


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 \
        else values[0]


def store_columns(where: Path | str, root: Path, sizes: Sizes) -> dict[str, str]:
    """One column of the comparison table for the store at ``where``."""
    rates = []
    for run in range(sizes.runs):
        led = open_ledger(where if where == "sqlite" else fresh(where, f"appends{run}"),
                          root / f"appends{run}")
        rates.append(sizes.appends / append_some(led, sizes.appends))
        small = led.verify()
        led.close()
    spread = f" ({min(rates):,.0f}–{max(rates):,.0f})" if len(rates) > 1 else ""
    race = reserve_race(where if where == "sqlite" else fresh(where, "race"), root / "race",
                        sizes.writers, sizes.reserves)
    over = max(0, race.spent_micro - race.budget_micro) / MICRO
    return {
        "appends": f"{statistics.median(rates):,.0f}{spread}",
        "verify": f"{small.seconds:.2f} s",
        "rate": f"{race.rate:,.0f} /s",
        "p50": f"{race.ms(50):.2f} ms",
        "p95": f"{race.ms(95):.2f} ms",
        "over": (f"{over:g} (spent {race.spent_micro / MICRO:g} of {race.budget_micro / MICRO:g}; "
                 f"{race.won:,} won, {len(race.latencies) - race.won:,} refused)"),
        "verified": f"{race.entries:,} entries OK",
    }


def fresh(server_url: str, name: str) -> str:
    """A new empty database on the server (each run starts from an empty ledger)."""
    from pgserver import create_database

    return create_database(server_url, f"bench_{name}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--pg-url", help="a PostgreSQL server URL (its role may create "
                                         "databases); default: start a throwaway one")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    columns: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        columns["SQLite"] = store_columns("sqlite", root / "sqlite", sizes)
        led = open_ledger("sqlite", root / "big")
        append_some(led, sizes.verify)
        fast, full = led.verify(), led.verify(full=True)
        led.close()
        if not args.no_postgres:
            url = args.pg_url
            if url is None:
                from pgserver import PgServer

                url = stack.enter_context(PgServer.start(fsync=True)).url()
            columns["PostgreSQL"] = store_columns(url, root / "pg", sizes)
    names = list(columns)
    w, n = sizes.writers, sizes.reserves
    rows = [
        (f"appends/s (1 process, {sizes.appends:,} appends, median of {sizes.runs})",
         "appends", ">= 2,000 (SQLite)"),
        (f"verify, {sizes.appends:,} entries, fast", "verify", "—"),
        (f"reserve() throughput, {w} writer processes × {n}", "rate", ">= 500 /s (PostgreSQL)"),
        (f"reserve() latency p50, {w} writers", "p50", "—"),
        (f"reserve() latency p95, {w} writers", "p95", "—"),
        ("overspend after the race (budget = 3/4 of the asks)", "over", "0"),
        ("ledger after the race verifies (full)", "verified", "—"),
    ]
    print("| measure | " + " | ".join(names) + " | goal |")
    print("|---|" + "---|" * len(names) + "---|")
    for label, key, goal in rows:
        print(f"| {label} | " + " | ".join(columns[c][key] for c in names) + f" | {goal} |")
    print(f"| verify, {fast.entries:,} entries, fast | {fast.seconds:.2f} s |"
          + " — |" * (len(names) - 1) + " < 2 s |")
    print(f"| verify, {full.entries:,} entries, full (every signature) | {full.seconds:.2f} s |"
          + " — |" * (len(names) - 1) + " — |")


if __name__ == "__main__":
    main()
