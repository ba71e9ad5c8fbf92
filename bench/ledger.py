"""Ledger benchmark: append rate, verify time, reserve() throughput and latency under 16
concurrent writer processes, on the SQLite file and on a PostgreSQL server; and (``scale``)
reserve latency and verify time as the ledger grows to a million entries.

    python bench/ledger.py                     # full sizes; starts a throwaway PostgreSQL
    python bench/ledger.py --quick             # smaller sizes, for a smoke run
    python bench/ledger.py --pg-url URL        # use a running server (no password in the URL)
    python bench/ledger.py --no-postgres       # SQLite only
    python bench/ledger.py scale [--sizes 1000,100000,1000000] [--json OUT] [--code DIR]
    python bench/ledger.py compare BEFORE.json AFTER.json   # the before/after table

``scale`` builds each ledger in bulk (the ledger's own ``append_many``, which seals every entry
as ``append`` does; for a ledger package without it, as that package's ``append`` would), then
times single-process ``reserve()`` calls against a per-purpose budget and a 30-day period
budget, and a fast ``verify()``. ``--code DIR`` runs it on another copy of mesh_nb (e.g. the
code before a change, exported with ``git archive HEAD mesh_nb | tar -x -C DIR``).
Goal (issue 14): reserve p50 flat (within 20%) from 1,000 to 1,000,000 entries.

The throwaway server (tests/pgserver.py) keeps PostgreSQL's defaults (fsync and
synchronous_commit on) on 127.0.0.1. The writers race for a per-purpose budget smaller than
what they ask, so the race also checks for overspend. Prints a plain markdown table.
Goals: SQLite >= 2,000 appends/s, 100,000-entry verify < 2 s; PostgreSQL >= 500 reserves/s
with 16 writers; zero overspend on both.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
if "--code" in sys.argv:  # another copy of mesh_nb, imported instead of this one
    sys.path.insert(0, str(Path(sys.argv[sys.argv.index("--code") + 1]).resolve()))
else:
    sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "tests"))  # pgserver: the throwaway PostgreSQL of the tests

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


# -- scale: reserve latency as the ledger grows ---------------------------------------------

SCALE_SIZES = (1_000, 100_000, 1_000_000)
SCALE_RESERVES = 300
PERIOD = Budget(1e9, scope="per-purpose", period_days=30)
FLAT = Budget(1e9, scope="per-purpose")


def _specs(n: int, start) -> "Iterator[dict]":
    """``n`` entries over the 60 days before ``start``: sessions bound and queries released by
    five analysts, half of them spends (so the 30-day window starts mid-ledger)."""
    from datetime import timedelta

    step = timedelta(days=60) / max(n, 1)
    for i in range(n):
        spends = i % 2 == 1
        yield {"kind": "query.released" if spends else "session.bound", "session": f"s{i % 7}",
               "analyst": f"a{i % 5}", "purpose": "churn", "epsilon": 0.01 if spends else 0.0,
               "details": DETAILS if spends else {"products": [PRODUCT]},
               "ts": start + step * i}


def _bulk_v1(led: Ledger, specs) -> None:
    """Seal and insert entries as a ledger package without ``append_many`` would append them
    one by one (same bodies, hashes and signatures), in one transaction."""
    from mesh_nb.ledger import store as st
    from mesh_nb.ledger.entry import Entry, to_micro

    head = led.head()
    seq, prev = (head.seq, head.hash) if head else (0, "0" * 64)
    rows_out = []
    for spec in specs:
        seq += 1
        e = Entry.seal(seq=seq, ts=st._iso(spec["ts"]), kind=spec["kind"], product=PRODUCT,
                       session=spec["session"], analyst=spec["analyst"], purpose=spec["purpose"],
                       epsilon_micro=to_micro(spec["epsilon"]), delta_pico=0,
                       details=spec["details"], prev=prev, sign=led.key.sign)
        rows_out.append((e.seq, *(getattr(e, c) for c in st.COLUMNS), e.body_json(), e.hash,
                         e.sig))
        prev = e.hash
    with led.store.writing() as rows:
        if hasattr(rows, "_driver"):  # PostgreSQL: COPY on the transaction's connection
            from mesh_nb.ledger.backend import ROW

            with rows._driver.cursor() as cur:
                with cur.copy(f'COPY "{led.store.schema}".entries ({", ".join(ROW)}) '
                              "FROM STDIN") as copy:
                    for row in rows_out:
                        copy.write_row(row)
        else:
            rows.conn.executemany(st._INSERT if hasattr(st, "_INSERT") else
                                  "INSERT INTO entries VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows_out)
    led._advance_checkpoint(seq, prev)


def build(led: Ledger, n: int) -> float:
    """Seconds to add ``n`` entries in bulk."""
    from datetime import datetime, timedelta, timezone

    start = datetime.now(timezone.utc) - timedelta(days=61)
    began = time.perf_counter()
    specs = _specs(n, start)
    if hasattr(led, "append_many"):
        led.append_many(specs)
    else:
        _bulk_v1(led, specs)
    return time.perf_counter() - began


def time_reserves(led: Ledger, budget: Budget, n: int) -> list[float]:
    out = []
    for i in range(n):
        began = time.perf_counter()
        led.reserve(analyst=f"a{i % 5}", purpose="churn", epsilon=SPEND, budget=budget,
                    details=DETAILS)
        out.append(time.perf_counter() - began)
    return out


ROUNDS = 3  # timing rounds; each times every size in a fresh process, sizes alternating


def time_point(where: str, root: Path) -> dict[str, float]:
    """Reserve latencies (ms) on the ledger at ``where``, as a fresh process sees it."""
    led = open_ledger(where, root)
    time_reserves(led, FLAT, 20)  # warm the connection and the first reserve's caches
    flat = time_reserves(led, FLAT, SCALE_RESERVES)
    period = time_reserves(led, PERIOD, SCALE_RESERVES)
    led.close()
    ms = lambda xs, q: percentile([x * 1000 for x in xs], q)  # noqa: E731
    return {"p50": ms(flat, 50), "p95": ms(flat, 95), "period_p50": ms(period, 50),
            "period_p95": ms(period, 95)}


def _time_in_child(where: str, root: Path, code: str | None) -> dict[str, float]:
    import subprocess

    cmd = [sys.executable, __file__, "_time", where, str(root)]
    if code:
        cmd += ["--code", code]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def scale(args: argparse.Namespace) -> dict:
    """Build every size first, then time them in rounds: in each round every size is timed in
    a fresh process, one after the other, so a load that comes and goes on the machine falls
    on every size alike; each figure is the median of the rounds."""
    sizes = [int(x) for x in args.sizes.split(",")]
    results: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="ledger-scale-", dir=args.tmp) as tmp, \
            ExitStack() as stack:
        root = Path(tmp)
        stores = [("SQLite", "sqlite")]
        if not args.no_postgres:
            url = args.pg_url
            if url is None:
                from pgserver import PgServer

                url = stack.enter_context(PgServer.start(fsync=True)).url()
            stores.append(("PostgreSQL", url))
        for name, where in stores:
            built = {}
            for size in sizes:
                at = where if where == "sqlite" else fresh(where, f"scale{size}")
                led = open_ledger(at, root / f"{name}{size}")
                seconds = build(led, size)
                report = led.verify()
                led.close()
                built[size] = at
                results.setdefault(name, {})[str(size)] = {
                    "entries": report.entries, "build_s": seconds, "verify_s": report.seconds}
                print(f"{name:<10} {size:>9,} entries built in {seconds:.1f} s, fast verify "
                      f"{report.seconds:.2f} s", flush=True)
            rounds: dict[int, list[dict]] = {size: [] for size in sizes}
            for _ in range(args.rounds):
                for size in sizes:
                    rounds[size].append(_time_in_child(built[size], root / f"{name}{size}",
                                                       args.code))
            for size in sizes:
                point = results[name][str(size)]
                for k in rounds[size][0]:
                    point[k] = statistics.median(r[k] for r in rounds[size])
                print(f"{name:<10} {size:>9,} entries: reserve p50 {point['p50']:.2f} ms p95 "
                      f"{point['p95']:.2f} ms, period p50 {point['period_p50']:.2f} ms p95 "
                      f"{point['period_p95']:.2f} ms (median of {args.rounds} rounds)",
                      flush=True)
    out = {"code": args.code or str(ROOT), "results": results}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


def compare(before_path: str, after_path: str) -> None:
    before = json.loads(Path(before_path).read_text())["results"]
    after = json.loads(Path(after_path).read_text())["results"]
    print("| store | entries | reserve p50 before → after | p95 before → after | period "
          "budget p50 before → after | p95 before → after | fast verify before → after |")
    print("|---|---:|---|---|---|---|---|")
    for store in after:
        for size, a in after[store].items():
            b = before.get(store, {}).get(size)
            f = (lambda k, unit="ms": f"{b[k]:.2f} → {a[k]:.2f} {unit}" if b
                 else f"— → {a[k]:.2f} {unit}")
            print(f"| {store} | {int(size):,} | {f('p50')} | {f('p95')} | {f('period_p50')} | "
                  f"{f('period_p95')} | {f('verify_s', 's')} |")
    for store, points in after.items():
        p50s = [points[s]["p50"] for s in sorted(points, key=int)]
        spread = max(p50s) / min(p50s) - 1
        print(f"\n{store}: reserve p50 from {min(map(int, points)):,} to "
              f"{max(map(int, points)):,} entries varies by {spread:.0%} (goal <= 20%)")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["compare"]:
        compare(argv[1], argv[2])
        return
    if argv[:1] == ["_time"]:  # one timing round in a fresh process (see scale())
        print(json.dumps(time_point(argv[1], Path(argv[2]))))
        return
    if argv[:1] == ["scale"]:
        parser = argparse.ArgumentParser(description="reserve latency as the ledger grows")
        parser.add_argument("--sizes", default=",".join(map(str, SCALE_SIZES)))
        parser.add_argument("--json", help="write the results here")
        parser.add_argument("--code", help="a copy of mesh_nb to run instead of this one")
        parser.add_argument("--pg-url")
        parser.add_argument("--no-postgres", action="store_true")
        parser.add_argument("--tmp", help="where to build the ledgers (default: the temp dir)")
        parser.add_argument("--rounds", type=int, default=ROUNDS)
        scale(parser.parse_args(argv[1:]))
        return
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
