"""Scale-out benchmark: DP queries at 10M and 50M rows on DuckDB and Spark, and the ledger's
reserve() with 16 concurrent writers on SQLite and PostgreSQL.

    python bench/scale.py                          # 10M and 50M rows, DuckDB and Spark local
    python bench/scale.py --sizes 1000000 --runs 3 # a smoke run
    python bench/scale.py --no-spark --no-ledger

Part 1. A PUMS-shaped table (tests/fixtures/pums/datacontract.yaml: pid, age, sex, educ, race,
income, married) is generated with DuckDB -- deterministic values from a hash of the row
number, within the contract's bounds and categories -- into ``bench/.data/scale-N/`` as
parquet, beside a copy of that contract (``pid`` declared ``unique: true``, so the planner
checks it once per file and skips contribution bounding). For each query and engine it prints
the engine's own exact query (a plain DuckDB connection, or ``spark.sql`` in the same Spark
session) beside ours (the full ``session.query`` path: check, plan, engine, ledger reserve,
noise; release cache cleared before every run), median of ``--runs`` runs after one warm-up,
alternating so both see the same load. Goal (issue 7): ours / exact <= 1.5 on both engines.

Part 2. ``bench/ledger.py``'s reserve() race: 16 writer processes x ``--reserves`` calls of
epsilon 0.01 against a per-purpose budget of 3/4 of what they ask, on SQLite and on a
throwaway PostgreSQL server on 127.0.0.1 (tests/pgserver.py; fsync and synchronous_commit
on); the ledger is verified afterwards. Goal: Postgres >= 500 reserves/s with zero overspend.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import duckdb
import yaml

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))

import mesh_nb  # noqa: E402

CONTRACT = REPO / "tests" / "fixtures" / "pums" / "datacontract.yaml"
DATA = BENCH / ".data"
EPSILON = 1.0


# the query set of bench/dp_query.py: q.ours over pums.pums, q.exact over a view named pums
from dp_query import QUERIES, time_alternating, write_contract  # noqa: E402


def log(msg: str) -> None:
    print(f"[scale] {msg}", file=sys.stderr, flush=True)


def median_ms(xs: list[float]) -> float:
    return statistics.median(xs) * 1000


def _column_sql(col: dict, i: int) -> str:
    """A deterministic value for one declared column from the row number ``i``."""
    name = col["name"]
    if name == "pid":
        return "CAST(i AS BIGINT) AS pid"
    valid = next((q["arguments"]["validValues"] for q in col.get("quality") or []
                  if "validValues" in (q.get("arguments") or {})), None)
    h = f"hash(i, {i})"
    if valid:
        return f"CAST(list_extract({valid!r}, 1 + ({h} % {len(valid)})::BIGINT) AS BIGINT) AS {name}"
    lo, hi = col["logicalTypeOptions"]["minimum"], col["logicalTypeOptions"]["maximum"]
    if col["logicalType"] == "integer":
        return f"CAST({lo} + ({h} % {hi - lo + 1}) AS BIGINT) AS {name}"
    # a right-skewed amount in [lo, hi], as incomes are
    return (f"CAST(LEAST({hi}, {lo} + 15000 * exp(({h} % 10000) / 3000.0) - 15000) AS DOUBLE)"
            f" AS {name}")


def build_product(rows: int) -> Path:
    """``bench/.data/scale-N/`` with pums.parquet (N generated rows) and the contract."""
    folder = DATA / f"scale-{rows}"
    folder.mkdir(parents=True, exist_ok=True)
    parquet = folder / "pums.parquet"
    table = yaml.safe_load(CONTRACT.read_text())["schema"][0]
    have = 0
    if parquet.exists():
        with duckdb.connect() as con:
            have = con.execute(f"SELECT count(*) FROM read_parquet('{parquet}')").fetchone()[0]
    if have != rows:
        t0 = time.perf_counter()
        cols = ", ".join(_column_sql(c, i) for i, c in enumerate(table["properties"]))
        with duckdb.connect() as con:
            con.execute(f"COPY (SELECT {cols} FROM range({rows}) AS t(i)) TO '{parquet}' "
                        "(FORMAT parquet, ROW_GROUP_SIZE 1000000)")
        log(f"built {parquet} ({rows:,} rows) in {time.perf_counter() - t0:.1f} s")
    write_contract(folder, f"Benchmark: {rows:,} generated PUMS-shaped rows.",
                   writer="bench/scale.py")
    return folder


class Exact:
    """The engine's own exact query over the same parquet file."""

    def __init__(self, kind: str, parquet: Path, session):
        self.kind = kind
        if kind == "duckdb":
            self.con = duckdb.connect()
            self.con.execute(f"CREATE VIEW pums AS SELECT * FROM read_parquet('{parquet}')")
        else:
            self.spark = session.engine.spark
            self.spark.read.parquet(str(parquet)).createOrReplaceTempView("pums")

    def run(self, sql: str) -> list:
        if self.kind == "duckdb":
            return self.con.execute(sql).fetchall()
        return self.spark.sql(sql).collect()


def bench_engine(kind: str, folder: Path, runs: int) -> list[dict]:
    """Rows of the table for one engine at one size."""
    os.environ.pop("MESH_NB_OWNER_HOME", None)
    mesh = mesh_nb.open_mesh(folder)
    session = mesh.bind("pums", purpose="research", analyst="bench", engine=kind)
    releases = mesh.product("pums").releases
    exact = Exact(kind, folder / "pums.parquet", session)
    out = []
    for q in QUERIES:
        # the warm-up also runs the one-time uniqueness check of pid
        exact_t, ours_t, _ = time_alternating(exact.run, session, releases, q, runs)
        row = {"query": q.name, "engine": kind, "exact": median_ms(exact_t),
               "ours": median_ms(ours_t)}
        row["ratio"] = row["ours"] / row["exact"]
        log(f"  {kind} {q.name}: ours {row['ours']:.0f} ms, exact {row['exact']:.0f} ms "
            f"({row['ratio']:.2f}x)")
        out.append(row)
    session.end()
    return out


def bench_ledgers(writers: int, reserves: int) -> list[dict]:
    """bench/ledger.py's reserve() race (budget 3/4 of the asks) on SQLite and PostgreSQL."""
    import tempfile
    from contextlib import ExitStack

    sys.path.insert(0, str(BENCH))
    import ledger as lb  # bench/ledger.py (it puts tests/ on the path for pgserver)
    from pgserver import PgServer

    from mesh_nb.ledger.entry import MICRO

    rows = []
    with tempfile.TemporaryDirectory(prefix="scale-ledger-") as tmp, ExitStack() as stack:
        server = stack.enter_context(PgServer.start(fsync=True)).url()
        for name, where in (("SQLite", "sqlite"), ("PostgreSQL", lb.fresh(server, "scale"))):
            race = lb.reserve_race(where, Path(tmp) / name, writers, reserves)
            over = max(0, race.spent_micro - race.budget_micro) / MICRO
            rows.append({"store": name, "writers": writers,
                         "reserves/s": f"{race.rate:,.0f}", "p50 ms": f"{race.ms(50):.1f}",
                         "p95 ms": f"{race.ms(95):.1f}", "won / refused":
                         f"{race.won:,} / {len(race.latencies) - race.won:,}",
                         "overspend": f"{over:g}", "verified": f"{race.entries:,} entries",
                         "goal": ">= 500 /s, 0 overspend" if name == "PostgreSQL" else "—"})
            log(f"  ledger {name}: {race.rate:,.0f} reserves/s, p95 {race.ms(95):.1f} ms")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000000,50000000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--no-ledger", action="store_true")
    ap.add_argument("--writers", type=int, default=16)
    ap.add_argument("--reserves", type=int, default=250, help="reserve() calls per writer")
    args = ap.parse_args()
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",")]
    engines = ["duckdb"] + ([] if args.no_spark else ["spark"])
    started = time.perf_counter()
    print("# Scale-out benchmark\n")
    print(f"{os.cpu_count()} CPU(s); duckdb {duckdb.__version__}"
          + ("" if args.no_spark else f", pyspark {_pyspark_version()} (local[*])")
          + f"; epsilon {EPSILON} per query; median of {args.runs} runs after a warm-up.\n")
    rows = []
    for n in sizes:
        log(f"== {n:,} rows")
        folder = build_product(n)
        for kind in engines:
            rows += [{**r, "rows": n} for r in bench_engine(kind, folder, args.runs)]
    print("## DP queries: ours (full session.query) against the engine's own exact query\n")
    print("| rows | engine | query | exact ms | ours ms | ours/exact | goal <= 1.5 |")
    print("|---:|---|---|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['rows']:,} | {r['engine']} | {r['query']} | {r['exact']:.0f} | "
              f"{r['ours']:.0f} | {r['ratio']:.2f} | {'met' if r['ratio'] <= 1.5 else 'NOT met'} |")
    if not args.no_ledger:
        print(f"\n## Ledger reserve() with {args.writers} concurrent writer processes\n")
        table = bench_ledgers(args.writers, args.reserves)
        keys = list(table[0])
        print("| " + " | ".join(keys) + " |")
        print("|" + "---|" * len(keys))
        for r in table:
            print("| " + " | ".join(str(r[k]) for k in keys) + " |")
    print(f"\n(bench finished in {time.perf_counter() - started:.0f} s)")


def _pyspark_version() -> str:
    try:
        import pyspark
    except ImportError:
        return "not installed"
    return pyspark.__version__


if __name__ == "__main__":
    main()
