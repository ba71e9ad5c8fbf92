"""Ledger benchmark: append rate, verify time, reserve() latency under concurrent writers.

    python bench/ledger.py            # 10,000 appends, 100,000-entry verify, 8 writers
    python bench/ledger.py --quick    # smaller sizes, for a smoke run

Prints a plain markdown table. Goals: >= 2,000 appends/s; 100,000-entry verify < 2 s.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mesh_nb.contract.model import Budget  # noqa: E402
from mesh_nb.ledger import Ledger  # noqa: E402

PRODUCT = "bench"
DETAILS = {"query": "SELECT region, count(*) FROM customers WHERE age > ? GROUP BY region",
           "columns": ["region", "age"], "rows": 1200, "groups": 6, "mechanism": "laplace"}
BIG = Budget(1e6, scope="per-purpose")


@dataclass(frozen=True)
class Sizes:
    appends: int
    runs: int  # append runs (fresh ledger each); the disk here is noisy, so report the median
    verify: int
    writers: int
    reserves: int


FULL = Sizes(appends=10_000, runs=3, verify=100_000, writers=8, reserves=250)
QUICK = Sizes(appends=2_000, runs=1, verify=10_000, writers=8, reserves=50)


def open_ledger(root: Path) -> Ledger:
    return Ledger(root / "ledger.sqlite", root / "owner", PRODUCT)


def append_some(led: Ledger, n: int) -> float:
    """Seconds to append ``n`` released-query entries."""
    started = time.perf_counter()
    for i in range(n):
        led.append("query.released", session="s1", analyst=f"a{i % 5}", purpose="churn",
                   epsilon=0.01, details=DETAILS)
    return time.perf_counter() - started


def _writer(root: Path, n: int, barrier, out) -> None:
    led = open_ledger(root)
    barrier.wait()
    latencies = []
    for _ in range(n):
        t = time.perf_counter()
        led.reserve(analyst="alice", purpose="churn", epsilon=0.01, budget=BIG, details=DETAILS)
        latencies.append(time.perf_counter() - t)
    out.put(latencies)


def reserve_latencies(root: Path, writers: int, n: int) -> tuple[list[float], float]:
    """Per-call reserve() latencies of ``writers`` processes racing, and wall seconds."""
    open_ledger(root).close()
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(writers + 1), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(root, n, barrier, out)) for _ in range(writers)]
    for p in procs:
        p.start()
    barrier.wait()
    started = time.perf_counter()
    latencies = [x for _ in procs for x in out.get()]
    wall = time.perf_counter() - started
    for p in procs:
        p.join()
    return latencies, wall


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 \
        else values[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    sizes = QUICK if parser.parse_args(argv).quick else FULL
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        root = Path(tmp)
        rates = []
        for run in range(sizes.runs):
            led = open_ledger(root / f"appends{run}")
            rates.append(sizes.appends / append_some(led, sizes.appends))
        spread = f" (runs: {min(rates):,.0f}–{max(rates):,.0f})" if len(rates) > 1 else ""
        rows.append((f"appends/s (1 process, {sizes.appends:,} appends, median of {len(rates)})",
                     f"{statistics.median(rates):,.0f}{spread}", ">= 2,000"))
        append_some(led, sizes.verify - sizes.appends)
        fast, full = led.verify(), led.verify(full=True)
        rows.append((f"verify, {fast.entries:,} entries, fast", f"{fast.seconds:.2f} s", "< 2 s"))
        rows.append((f"verify, {full.entries:,} entries, full (every signature)",
                     f"{full.seconds:.2f} s", "—"))
        led.close()
        latencies, wall = reserve_latencies(root / "reserve", sizes.writers, sizes.reserves)
        ms = [x * 1000 for x in latencies]
        label = f"reserve() latency, {sizes.writers} writer processes × {sizes.reserves}"
        rows.append((f"{label}, p50", f"{percentile(ms, 50):.2f} ms", "—"))
        rows.append((f"{label}, p95", f"{percentile(ms, 95):.2f} ms", "—"))
        rows.append((f"reserve() throughput, {sizes.writers} writers",
                     f"{len(ms) / wall:,.0f} /s", "—"))
        check = open_ledger(root / "reserve").verify()
        rows.append(("ledger after the race verifies", f"{check.entries:,} entries OK", "—"))
    print("| measure | result | goal |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
