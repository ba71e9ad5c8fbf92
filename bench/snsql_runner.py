"""SmartNoise SQL side of ``bench/dp_query.py``; runs inside the bench's own venv.

smartnoise-sql pins ``opendp<0.15``, so it never enters mesh_nb's environment: dp_query.py
creates ``bench/.venv-snsql`` and runs this file there as a subprocess, exchanging JSON.

    python snsql_runner.py IN.json OUT.json

IN.json: {parquet, rows, metadata (SmartNoise metadata dict, as used), shipped_metadata,
queries: [{name, sql}], epsilon, delta, timing_runs, duckdb_cap_s, pandas_runs, pandas_cap_s,
error_runs, engines: ["duckdb", "pandas"]}.
OUT.json: versions, per-engine setup time, per-query times, per-column epsilon and the
SmartNoise-computed cost, diagnostics of which ``engine=`` works on DuckDB, and the released
rows of ``error_runs`` runs per query (noise only, see ``_memoized``).

Epsilon: SmartNoise's ``Privacy(epsilon=e)`` is per noisy column (COUNT(*) is 2 columns with a
private id, the key count and the count; AVG is 3). For each query we bisect ``e`` until the
reader's own ``get_privacy_cost(query)`` (its odometer's composition of every mechanism the
query uses) reports a total of ``epsilon`` (1.0), then run the query with that ``e``.
"""

from __future__ import annotations

import copy
import json
import statistics
import sys
import time
import traceback
from importlib import metadata as importlib_metadata

import duckdb
import snsql
from snsql import Privacy


class _DuckCursor:
    """A DB-API cursor SmartNoise's readers can iterate (DuckDB's cursor is not iterable)."""

    def __init__(self, con):
        self._con = con
        self.description = None

    def execute(self, sql):
        self._con.execute(sql)
        self.description = self._con.description
        return self

    def __iter__(self):
        return iter(self._con.fetchall())


class DuckDBForSmartNoise:
    """The three calls SmartNoise's SQL readers make on a connection: cursor, commit, rollback.

    DuckDB runs in autocommit mode: commit and rollback have nothing to do (a bare
    ``DuckDBPyConnection.rollback()`` raises "no transaction is active", which is what hides
    the real error when the bare connection is passed to SmartNoise).
    """

    def __init__(self, con):
        self.con = con

    def cursor(self):
        return _DuckCursor(self.con)

    def commit(self):
        pass

    def rollback(self):
        pass


def _duck(parquet: str, limit: int | None = None):
    con = duckdb.connect()
    lit = parquet.replace("'", "''")
    con.execute("CREATE SCHEMA PUMS")
    con.execute(f"CREATE VIEW PUMS.PUMS AS SELECT * FROM read_parquet('{lit}')"
                + (f" LIMIT {int(limit)}" if limit else ""))
    return con


def _err(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    ctx = exc.__context__
    if ctx is not None and ctx is not exc:
        text += (f" (raised while handling {type(ctx).__name__}: "
                 f"{str(ctx).strip().splitlines()[0] if str(ctx).strip() else ''})")
    return text


def probe_engines(parquet: str, meta: dict, shipped_meta: dict, sql: str) -> list[dict]:
    """Which ``engine=`` values work with a DuckDB connection (on the first 1,000 rows)."""
    out = []
    priv = Privacy(epsilon=1.0, delta=1e-6)
    cases = [(e, "bare duckdb connection", "sample_max_ids: False") for e in
             ("postgres", "sqlite", "mysql", "sqlserver", None)]
    cases += [("postgres", "DB-API adapter", "sample_max_ids: False"),
              ("postgres", "DB-API adapter", "shipped (reservoir sampling)"),
              ("sqlserver", "DB-API adapter", "sample_max_ids: False"),
              ("sqlserver", "DB-API adapter", "shipped (reservoir sampling)")]
    for engine, conn_kind, meta_kind in cases:
        con = _duck(parquet, limit=1000)
        conn = con if conn_kind.startswith("bare") else DuckDBForSmartNoise(con)
        m = meta if meta_kind.startswith("sample") else shipped_meta
        try:
            reader = snsql.from_connection(conn, privacy=priv, metadata=copy.deepcopy(m),
                                           engine=engine)
            reader.execute(sql)
            result = "works"
        except Exception as exc:  # report, don't stop: this is what the probe is for
            result = _err(exc)
        out.append({"engine": engine, "connection": conn_kind, "metadata": meta_kind,
                    "result": result})
        con.close()
    return out


def epsilon_per_column(reader, sql: str, total: float, delta: float) -> tuple[float, list]:
    """Bisect the per-column epsilon whose composed cost for ``sql`` is ``total``."""
    def cost(e):
        reader.privacy = Privacy(epsilon=e, delta=delta)
        return float(reader.get_privacy_cost(sql)[0])

    lo, hi = 0.0, total
    while cost(hi) < total:  # a query with a single mechanism could need more than total
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        if cost(mid) > total:
            hi = mid
        else:
            lo = mid
    reader.privacy = Privacy(epsilon=lo, delta=delta)
    spent = [float(x) for x in reader.get_privacy_cost(sql)]
    return lo, spent


def _rows(result) -> list:
    """SmartNoise's ``execute`` result (header row + tuples) as JSON-friendly lists."""
    return [[v if isinstance(v, (int, float, str)) or v is None else float(v) for v in row]
            for row in result[1:]]


def _memoized(reader):
    """Let the reader's engine answer each exact subquery once; later runs only add noise.

    SmartNoise adds its noise in Python after the engine returns the exact per-group values,
    so repeating a query with the engine's answer kept measures the same mechanism cheaply
    (pids are unique and ``sample_max_ids`` is off, so there is no per-run sampling to redo).
    """
    inner = reader.reader.execute
    memo: dict = {}

    def execute(query, *args, **kwargs):
        if query not in memo:
            memo[query] = inner(query, *args, **kwargs)
        return memo[query]

    reader.reader.execute = execute
    return reader


def run_engine(name: str, spec: dict, meta: dict, log) -> dict:
    res: dict = {"ok": False, "queries": {}, "notes": []}
    started = time.perf_counter()
    try:
        if name == "duckdb":
            con = _duck(spec["parquet"])
            reader = snsql.from_connection(DuckDBForSmartNoise(con), metadata=copy.deepcopy(meta),
                                           privacy=Privacy(epsilon=1.0, delta=spec["delta"]),
                                           engine="postgres")
        else:
            df = duckdb.read_parquet(spec["parquet"]).df()
            reader = snsql.from_df(df, metadata=copy.deepcopy(meta),
                                   privacy=Privacy(epsilon=1.0, delta=spec["delta"]))
            del df
    except Exception as exc:
        res["error"] = _err(exc)
        log(f"  smartnoise {name}: setup failed: {res['error']}")
        return res
    res["setup_s"] = time.perf_counter() - started
    res["ok"] = True
    log(f"  smartnoise {name}: setup {res['setup_s']:.2f} s")
    for q in spec["queries"]:
        qres: dict = {}
        res["queries"][q["name"]] = qres
        try:
            eps, spent = epsilon_per_column(reader, q["sql"], spec["epsilon"], spec["delta"])
            qres.update(epsilon_per_column=eps, cost=spent,
                        columns=sum(1 for c in reader._get_mechanism_costs(q["sql"]) if c))
            times = []
            if name == "duckdb":
                reader.execute(q["sql"])  # warm-up (not timed), as for ours and exact DuckDB
                runs, cap, least = spec["timing_runs"], spec["duckdb_cap_s"], 5
            else:  # no warm-up: one run can take many seconds at 10M rows
                runs, cap, least = spec["pandas_runs"], spec["pandas_cap_s"], 1
            t_all = time.perf_counter()
            for _ in range(runs):  # stop early once ``cap`` seconds are spent (>= least runs)
                t0 = time.perf_counter()
                reader.execute(q["sql"])
                times.append(time.perf_counter() - t0)
                if len(times) >= least and time.perf_counter() - t_all > cap:
                    break
            qres["times"] = times
            log(f"  smartnoise {name} {q['name']}: median {statistics.median(times) * 1e3:.1f} ms "
                f"over {len(times)} run(s); epsilon/column {eps:.4f} x {qres['columns']} "
                f"-> total {spent[0]:.4f}")
        except Exception as exc:
            qres["error"] = _err(exc)
            log(f"  smartnoise {name} {q['name']}: FAILED {qres['error']}")
    res["reader"] = reader
    return res


def main() -> None:
    spec = json.load(open(sys.argv[1]))
    log = (lambda msg: print(msg, file=sys.stderr, flush=True))
    meta = spec["metadata"]
    out: dict = {"versions": {p: importlib_metadata.version(p) for p in
                              ("smartnoise-sql", "opendp", "duckdb", "pandas")}}
    try:
        out["probe"] = probe_engines(spec["parquet"], meta, spec["shipped_metadata"],
                                     spec["queries"][0]["sql"])
    except Exception as exc:
        out["probe"] = [{"engine": "?", "connection": "?", "metadata": "?",
                         "result": "probe failed: " + _err(exc)}]
    engines = {}
    for name in spec["engines"]:
        engines[name] = run_engine(name, spec, meta, log)
    # Errors: the same mechanism whatever the engine; use DuckDB's reader when it worked.
    src = next((n for n in ("duckdb", "pandas") if engines.get(n, {}).get("ok")), None)
    releases: dict = {"engine": src, "queries": {}}
    if src is not None:
        reader = _memoized(engines[src]["reader"])
        for q in spec["queries"]:
            qres = engines[src]["queries"].get(q["name"], {})
            if "error" in qres:
                continue
            try:
                reader.privacy = Privacy(epsilon=qres["epsilon_per_column"], delta=spec["delta"])
                releases["queries"][q["name"]] = [_rows(reader.execute(q["sql"]))
                                                  for _ in range(spec["error_runs"])]
            except Exception as exc:
                releases["queries"][q["name"]] = {"error": _err(exc)}
    for res in engines.values():
        res.pop("reader", None)
    out["engines"] = engines
    out["releases"] = releases
    json.dump(out, open(sys.argv[2], "w"))


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        sys.exit(1)
