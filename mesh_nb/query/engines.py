"""Engines that run planned queries over a product's data files.

A planned query is a sqlglot tree (``Plan.query``, a row query); each engine renders its own
dialect from it (:meth:`QueryEngine.sql`) at the edge, where it runs.

The embedded engine is DuckDB, sandboxed: it sees the contract's tables as views over the
product's files and nothing else (``allowed_paths`` = exactly those files, external access off,
configuration locked), so a check that misses something still cannot read another file.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import (TYPE_CHECKING, Any, Callable, Iterable, Literal, Mapping, Protocol,
                    runtime_checkable)

import duckdb
from sqlglot import exp

from ..contract.model import Table
from ..errors import MeshError, PolicyViolation
from .plan import columns_of, rendered

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from .checks import DataChecks

EngineKind = Literal["duckdb", "spark"]
ENGINE_KINDS: tuple[str, ...] = ("duckdb", "spark")

TableSpec = tuple[str, str, Table, str]
"""(product, table name, Table, privacy unit column): what an engine is opened over."""


@dataclass(frozen=True)
class Limits:
    """What one query may take in the engine: wall-clock ``seconds`` and, on DuckDB,
    ``memory`` (a DuckDB size such as ``"8GB"``). From ``MESH_NB_QUERY_SECONDS`` and
    ``MESH_NB_QUERY_MEMORY`` when set."""

    seconds: float = 120.0
    memory: str = "8GB"

    @classmethod
    def from_env(cls) -> "Limits":
        """The limits the environment sets, else the defaults; MeshError for a bad value."""
        seconds = os.environ.get("MESH_NB_QUERY_SECONDS")
        memory = os.environ.get("MESH_NB_QUERY_MEMORY")
        try:
            limits = cls(float(seconds) if seconds else cls.seconds, memory or cls.memory)
        except ValueError:
            raise MeshError("MESH_NB_QUERY_SECONDS must be a number of seconds, e.g. 120") \
                from None
        if not limits.seconds > 0:
            raise MeshError("MESH_NB_QUERY_SECONDS must be positive, e.g. 120")
        if not limits.memory.replace(".", "").rstrip("KMGTiBb").isdigit():
            raise MeshError("MESH_NB_QUERY_MEMORY must be a size such as 8GB or 512MB")
        return limits


class EngineFailure(Exception):
    """An engine did not complete a query. ``kind`` is ``engine-error``, ``time-limit`` or
    ``memory-limit``; for the owner's ledger only: what reaches the analyst is
    :class:`~mesh_nb.errors.QueryFailed`, the same for every kind."""

    def __init__(self, kind: str):
        self.kind = kind
        super().__init__(kind)


@runtime_checkable
class Prepared(Protocol):
    """A planned query bound in an engine (its schema checked, no data read yet)."""

    def run(self) -> "pd.DataFrame": ...

    def columns(self) -> "dict[str, np.ndarray]": ...


@runtime_checkable
class QueryEngine(Protocol):
    """What the planner and the release stage need from an engine.

    ``prepare`` binds a planned query (a sqlglot tree, tables named ``"product"."table"``),
    rendered in the engine's dialect by ``sql``, without reading data: a mistake found there
    depends on the query and the schema only, and is a
    :class:`PolicyViolation` (rule ``engine-rejected``). Its ``run`` executes under the
    engine's :class:`Limits` and returns a pandas frame with one row per group: group keys,
    counts as int64, sums as float64, histograms as ``{bin: count}`` dicts (``columns`` is
    the same answer as numpy columns, :func:`~.plan.columns_of`); every failure there is an
    :class:`EngineFailure`. ``execute`` is ``prepare`` then ``run``.
    ``unit_unique`` answers whether a table verifiably holds one row per privacy unit (see
    :class:`Engine`).
    """

    kind: str
    checks: "Mapping[str, DataChecks] | None"

    def sql(self, query: exp.Expression) -> str: ...

    def prepare(self, query: exp.Expression) -> Prepared: ...

    def execute(self, query: exp.Expression) -> "pd.DataFrame": ...

    def declares_unique(self, product: str, name: str) -> bool: ...

    def unit_unique(self, product: str, name: str) -> bool: ...

    def close(self) -> None: ...


def engine_rejected(exc: BaseException) -> PolicyViolation:
    """The data-independent error of binding a query, as a PolicyViolation (bounded text)."""
    text = " ".join(str(exc).split())
    text = text.split(" LINE ", 1)[0][:300]
    return PolicyViolation("engine-rejected", f"the engine cannot run this query "
                           f"({type(exc).__name__}: {text})",
                           "fix the types or functions the message names")


class Watchdog:
    """Calls ``stop`` if the guarded block is still running after ``seconds``, and again every
    ``every`` seconds until it ends (a stop that came before the engine started its work
    would otherwise be lost).

    One watcher thread per watchdog, started on first use and kept until :meth:`close`, so
    guarding a block starts no thread; a watchdog guards one block at a time.
    """

    def __init__(self, seconds: float, stop: Callable[[], None], every: float = 0.05):
        self.seconds, self.stop, self.every = seconds, stop, every
        self.fired = False
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def __enter__(self) -> "Watchdog":
        with self._cond:
            self.fired = False
            self._deadline = time.monotonic() + self.seconds
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="mesh-nb-watchdog",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._deadline = None
            self._cond.notify()

    def _watch(self) -> None:
        with self._cond:
            while not self._closed:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                self.fired = True
                self.stop()
                self._deadline = time.monotonic() + self.every

    def close(self) -> None:
        """End the watcher thread (a guarded block still running is no longer stopped)."""
        with self._cond:
            self._closed = True
            self._deadline = None
            self._cond.notify()


_READERS = {"parquet": "read_parquet", "csv": "read_csv_auto", "json": "read_json_auto"}


def _scan(path: Path, fmt: str) -> str:
    literal = str(path).replace("'", "''")
    return f"{_READERS[fmt]}('{literal}')"


def count_rows(path: Path, fmt: str = "parquet") -> int:
    """Rows in one data file."""
    with duckdb.connect() as con:
        return int(con.execute(f"SELECT count(*) FROM {_scan(path, fmt)}").fetchone()[0])


def sandboxed_duckdb(tables: Iterable[tuple[str, str, Table]], *, threads: int | None = None,
                     memory: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per ``(product, table_name, Table)`` and nothing else.

    Views live in a schema named after the product, so SQL names them ``product.table``.
    ``memory`` caps what a query may use (DuckDB's ``memory_limit``).
    """
    con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False})
    # no progress bar: its percentages follow the data, and they would print into the cell
    con.execute("SET enable_progress_bar = false")
    files = []
    for product, name, table in tables:
        if table.data_path is None:
            continue
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{product}"')
        con.execute(f'CREATE VIEW "{product}"."{name}" AS SELECT * FROM '
                    f"{_scan(table.data_path, table.data_format)}")
        files.append(str(table.data_path))
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory:
        con.execute("SET memory_limit = ?", [memory])
    allowed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    con.execute(f"SET allowed_paths = [{allowed}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def _unique_check(product: str, name: str, unit: str) -> exp.Select:
    """``SELECT COUNT(u) = COUNT(DISTINCT u) AND COUNT(*) = COUNT(u) FROM product.name``."""
    def count(this: exp.Expression) -> exp.Count:
        return exp.Count(this=this)

    def u() -> exp.Column:
        return exp.column(unit, quoted=True)

    holds = exp.and_(exp.EQ(this=count(u()), expression=count(exp.Distinct(expressions=[u()]))),
                     exp.EQ(this=count(exp.Star()), expression=count(u())), copy=False)
    table = exp.Table(this=exp.to_identifier(name, quoted=True),
                      db=exp.to_identifier(product, quoted=True))
    return exp.select(holds).from_(table, copy=False)


class UniqueUnits:
    """``unit_unique`` shared by the engines: a contract's ``unique`` privacy unit, checked on
    the data once per data version (an engine supplies ``_readable``, ``_version``, ``_holds``).
    """

    tables: list[TableSpec]
    _unique: dict[tuple[str, str], tuple[object, bool]]
    #: Per product, the owner's record of checks already made on its data (none: every
    #: new engine checks again).
    checks: "Mapping[str, DataChecks] | None" = None

    def _readable(self, table: Table) -> bool:
        return table.data_path is not None

    def _version(self, table: Table) -> object:
        """The data file's stat as this process sees it change (the change time and inode
        too: a copy that restores the modification time still changes them)."""
        st = table.data_path.stat()
        return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)

    def _holds(self, query: exp.Select) -> bool:
        raise NotImplementedError

    def _spec(self, product: str, name: str) -> TableSpec | None:
        return next((t for t in self.tables if (t[0], t[1]) == (product, name)), None)

    def declares_unique(self, product: str, name: str) -> bool:
        """Does the contract declare ``product.name``'s privacy unit ``unique`` (on data this
        engine can check)? Reads no data: a plan may rest on it before any budget is spent."""
        spec = self._spec(product, name)
        if spec is None:
            return False
        col = spec[2].column(spec[3])
        return bool(col is not None and col.unique and self._readable(spec[2]))

    def unit_unique(self, product: str, name: str) -> bool:
        """Does ``product.name`` hold one row per privacy unit, as its contract declares?
        Reads the data (call it only once the budget is reserved) once per data version: in
        this process by the file's stat, across processes through the owner's signed record
        (``checks``, :mod:`.checks`) by its fingerprint. False when the contract declares
        nothing, or when the data breaks the declaration (the owner's record says so)."""
        if not self.declares_unique(product, name):
            return False
        _, _, table, unit = self._spec(product, name)
        version = self._version(table)
        known = self._unique.get((product, name))
        if known is None or known[0] != version:
            known = (version, self._recorded(product, name, table, unit))
            self._unique[(product, name)] = known
        return known[1]

    def _recorded(self, product: str, name: str, table: Table, unit: str) -> bool:
        """The uniqueness check's answer: from the owner's record of this data version, or
        from the data (then recorded)."""
        record = (self.checks or {}).get(product)
        if record is None or table.data_path is None:
            return bool(self._holds(_unique_check(product, name, unit)))
        from .checks import fingerprint

        check, version = f"unit-unique:{name}:{unit}", fingerprint(table.data_path)
        holds = record.get(check, version)
        if holds is None:
            holds = bool(self._holds(_unique_check(product, name, unit)))
            record.put(check, version, holds)
        return holds


class Engine(UniqueUnits):
    """A session's sandboxed DuckDB over its products' tables, opened once and reused.

    It also answers whether a table really holds one row per privacy unit when the contract
    declares the unit column ``unique`` — checked on the data once per file version, so the
    planner may skip contribution bounding only where it is a no-op.
    """

    kind = "duckdb"

    def __init__(self, tables: Iterable[TableSpec], limits: Limits | None = None):
        self.tables = list(tables)  # (product, table name, Table, privacy unit column)
        self.limits = limits or Limits.from_env()
        self.con = sandboxed_duckdb(((p, n, t) for p, n, t, _ in self.tables),
                                    memory=self.limits.memory)
        self._unique = {}
        self._run_lock = threading.Lock()
        self._dog = Watchdog(self.limits.seconds, self.con.interrupt)

    def sql(self, query: exp.Expression) -> str:
        """The DuckDB SQL this engine runs for a planned query (rendered once per tree)."""
        return rendered(query)

    def prepare(self, query: exp.Expression) -> "_DuckPrepared":
        """Bind a planned query (no data read); PolicyViolation ``engine-rejected`` if it
        cannot."""
        sql = self.sql(query)
        try:
            self.con.sql(sql)  # binds without running
        except duckdb.Error as exc:
            raise engine_rejected(exc) from None
        return _DuckPrepared(self, sql)

    def execute(self, query: exp.Expression) -> "pd.DataFrame":
        """Run a planned query under the limits; returns a pandas DataFrame."""
        return self.prepare(query).run()

    def _holds(self, query: exp.Select) -> bool:
        return bool(self.con.execute(self.sql(query)).fetchall()[0][0])  # fetch all: DuckDB 2
        # refuses other work on a connection whose result is unfinished

    def close(self) -> None:
        self._dog.close()
        self.con.close()

    def __del__(self) -> None:
        # the watcher thread holds the watchdog, and through it the connection: an engine
        # dropped unclosed (its session dropped without end()) must end that thread
        dog = getattr(self, "_dog", None)
        if dog is not None:
            dog.close()


@dataclass
class _DuckPrepared:
    """Planned SQL that bound; ``run`` executes it (``execute().df()`` converts to pandas
    faster than a relation's ``df()``; binding again costs a fraction of a millisecond)."""

    engine: Engine
    sql: str

    def run(self) -> "pd.DataFrame":
        """Execute under the time limit (an interrupt from a watchdog) and memory limit."""
        return self._fetch(lambda result: result.df())

    def columns(self) -> "dict[str, np.ndarray]":
        """:meth:`run`'s answer as numpy columns, without a pandas frame in between."""
        return columns_of(self._fetch(_zoned_numpy))

    def _fetch(self, fetch: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
        engine = self.engine
        with engine._run_lock:
            dog = engine._dog
            try:
                with dog:
                    return fetch(engine.con.execute(self.sql))
            except duckdb.OutOfMemoryException:
                raise EngineFailure("memory-limit") from None
            except Exception:
                raise EngineFailure("time-limit" if dog.fired else "engine-error") from None


def _zoned_numpy(result: duckdb.DuckDBPyConnection) -> "dict[str, Any]":
    """``fetchnumpy`` with TIMESTAMPTZ columns as zone-aware times in the connection's zone, as
    ``df()`` gives them (``fetchnumpy`` gives naive UTC instants)."""
    zoned = [d[0] for d in result.description or () if str(d[1]) == "TIMESTAMP WITH TIME ZONE"]
    arrays = result.fetchnumpy()
    if zoned:
        import numpy as np
        import pandas as pd

        zone = result.execute("SELECT current_setting('TimeZone')").fetchall()[0][0]
        for name in zoned:
            instants = np.ma.filled(arrays[name], np.datetime64("NaT"))
            arrays[name] = (pd.Series(instants).dt.tz_localize("UTC").dt.tz_convert(zone)
                            .to_numpy())
    return arrays


def open_engine(tables: Iterable[TableSpec], *, kind: str | None = None,
                remote: str | None = None, limits: Limits | None = None,
                checks: "Mapping[str, DataChecks] | None" = None) -> QueryEngine:
    """The engine for a session's tables: DuckDB unless ``kind="spark"``; ``checks`` (per
    product, the owner's record of data checks) spares a new engine re-checking data.

    ``remote`` is a Spark Connect URL (``sc://host:port``) and implies Spark; without it the
    Spark engine runs a local ``local[*]`` session shared by the process. Tables held only in
    a Spark catalog (``Table.source``) need Spark.
    """
    tables = list(tables)
    if kind is None:
        kind = "spark" if remote or any(t.source for _, _, t, _ in tables) else "duckdb"
    if kind not in ENGINE_KINDS:
        raise MeshError(f"unknown engine `{kind}` — use one of: {', '.join(ENGINE_KINDS)}")
    if kind == "duckdb":
        if remote:
            raise MeshError("a Spark Connect URL was given but the engine is duckdb — bind "
                            "with engine='spark' or drop spark_remote")
        catalog = [f"{p}.{n}" for p, n, t, _ in tables if t.source]
        if catalog:
            raise MeshError(f"{', '.join(catalog)} live(s) in a Spark catalog, which DuckDB "
                            "cannot read — bind with engine='spark'")
        engine: QueryEngine = Engine(tables, limits)
    else:
        from .spark import SparkEngine

        engine = SparkEngine(tables, remote=remote, limits=limits)
    engine.checks = checks
    return engine
