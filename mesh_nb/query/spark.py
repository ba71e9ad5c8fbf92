"""The Spark engine: the same planned SQL, transpiled by sqlglot and run through PySpark.

A plan is written once, in DuckDB's dialect. This engine parses it, renames every
``"product"."table"`` to the temporary view it registered for that table, rewrites what Spark
lacks (DuckDB's ``histogram``), and writes Spark SQL. The frame it returns has the shape and
types DuckDB's has, so the release stage is the same on both engines.

Boundary. DuckDB is sandboxed inside the process; Spark is not — a Spark session can read
whatever its cluster can. What keeps a query inside the contract here is: the policy checker's
whitelist (only SELECT over contract tables and known functions) and this module, which runs
only planned SQL whose every table reference is one of the views it registered (anything else
is refused before Spark sees it). The views read only the contract's sources: its local files,
or the catalog tables its Spark server names.

Sessions: ``local[*]`` by default, one per process and reused (quiet, no UI, few shuffle
partitions); a Spark Connect URL (``sc://host:port``) from the session options or the
contract's server runs the same SQL on a remote cluster.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
import warnings
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import pandas as pd
import sqlglot
from sqlglot import exp

from ..contract.model import Table
from ..errors import MeshError
from .engines import EngineFailure, Limits, TableSpec, UniqueUnits, Watchdog, engine_rejected

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

INSTALL_HINT = ("pip install 'mesh_nb[spark]' and have Java 17 or later on PATH "
                "(or JAVA_HOME)")

#: Set on every session an engine uses, Connect ones included (runtime SQL settings). The
#: total engine: with ANSI mode off, casts, division by zero, overflow and invalid dates give
#: NULL (or wrap) instead of raising on a value (docs/queries.md, the audit).
RUNTIME_CONF: dict[str, str] = {"spark.sql.ansi.enabled": "false",
                                "spark.sql.session.timeZone": "UTC"}
#: Configuration of the process's own local session (a laptop's: small shuffles, no UI).
LOCAL_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.driver.memory": "2g",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    **RUNTIME_CONF,
}

_LOCK = threading.Lock()
_SESSIONS: dict[str, "SparkSession"] = {}


def _session_class():
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise MeshError(f"the Spark engine needs PySpark — {INSTALL_HINT}") from exc
    return SparkSession


def spark_session(remote: str | None = None) -> "SparkSession":
    """The process's shared local session (``local[*]``), or a Spark Connect session.

    An active local session the notebook already has is used as it is.
    """
    SparkSession = _session_class()
    key = remote or "local"
    with _LOCK:
        known = _SESSIONS.get(key)
        if known is not None and _alive(known):
            return known
        try:
            warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas",
                                    FutureWarning)
            if remote:  # the Connect client itself: it may live beside a local session
                from pyspark.sql.connect.session import SparkSession as ConnectSession

                spark = ConnectSession.builder.remote(remote).getOrCreate()
            else:
                spark = SparkSession.getActiveSession()
                if spark is None:
                    builder = SparkSession.builder.master("local[*]").appName("mesh_nb")
                    for k, v in LOCAL_CONF.items():
                        builder = builder.config(k, v)
                    spark = builder.getOrCreate()
                    spark.sparkContext.setLogLevel("ERROR")
        except MeshError:
            raise
        except Exception as exc:  # no Java, a JVM that did not start, a refused connection
            where = (f"the Spark Connect server at {remote.split('/;')[0]}" if remote
                     else "a local Spark")  # never the URL's parameters: they may hold a token
            raise MeshError(f"could not start {where} ({type(exc).__name__}) — "
                            f"{INSTALL_HINT}; for Connect, check the URL and that the "
                            "server runs") from exc
        _SESSIONS[key] = spark
        return spark


def stop_spark(remote: str | None = None) -> None:
    """Stop the shared local session, or the client of one Spark Connect URL (a no-op when
    none was started). The next engine starts a new one."""
    with _LOCK:
        spark = _SESSIONS.pop(remote or "local", None)
    if spark is not None:
        spark.stop()


def _alive(spark: "SparkSession") -> bool:
    try:
        if hasattr(spark, "sparkContext") and not _is_connect(spark):
            return spark.sparkContext._jsc is not None
        return not getattr(spark, "is_stopped", False)
    except Exception:
        return False


def _is_connect(spark: Any) -> bool:
    return type(spark).__module__.startswith("pyspark.sql.connect")


def _quote(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql("spark")


def to_spark(sql: str, views: dict[tuple[str, str], str]) -> str:
    """Planned DuckDB SQL -> Spark SQL over the registered views.

    Every table reference must be a registered ``(product, table)``; ``histogram(v)`` becomes
    a per-(group, bin) count folded into a map (see :func:`_histograms`).
    """
    tree = sqlglot.parse_one(sql, read="duckdb")
    for table in tree.find_all(exp.Table):
        key = (table.db, table.name)
        if key not in views:
            raise MeshError(f"planned SQL names `{'.'.join(filter(None, key))}`, which is not "
                            "a table of the bound products — the query was refused")
        table.set("this", exp.to_identifier(views[key], quoted=True))
        table.set("db", None)
        table.set("catalog", None)
    from .total import strip_try

    tree = strip_try(tree)  # Spark has no TRY(); ANSI mode off makes those parts total
    if any(_is_histogram(f) for f in tree.find_all(exp.Anonymous)):
        return _histograms(tree)
    return tree.sql("spark")


def _is_histogram(node: exp.Expression) -> bool:
    return isinstance(node, exp.Anonymous) and str(node.name).lower() == "histogram"


def _histograms(tree: exp.Select) -> str:
    """The planned ``SELECT keys, aggs FROM (rows) GROUP BY keys`` with ``histogram(v)``
    aggregates, as one Spark statement: the bounded rows are a CTE (Spark computes a
    non-deterministic CTE referenced twice once), the other aggregates one GROUP BY over it,
    each histogram a count per (keys, bin) folded with ``map_from_entries`` and LEFT JOINed on
    the keys (null-safe) — DuckDB's MAP per group, with bins that never occur left out.
    """
    source = (tree.args.get("from_") or tree.args.get("from")).this
    if not isinstance(source, exp.Subquery):
        raise MeshError("internal: histogram plan without a rows subquery")
    group = tree.args.get("group")
    keys = [e.name for e in group.expressions] if group else []
    qkeys = [_quote(k) for k in keys]
    by = f" GROUP BY {', '.join(qkeys)}" if keys else ""
    aggs, hists, select = [], [], []
    for e in tree.expressions:
        name = e.alias_or_name
        inner = e.this if isinstance(e, exp.Alias) else e
        if name in keys and not isinstance(inner, exp.AggFunc) and not _is_histogram(inner):
            select.append(f"`__aggs`.{_quote(name)}")
        elif _is_histogram(inner):
            i = len(hists)
            hists.append((i, name, inner.expressions[0].sql("spark")))
            select.append(f"`__hist{i}`.{_quote(name)}")
        else:
            aggs.append(e.sql("spark"))
            select.append(f"`__aggs`.{_quote(name)}")
    lead = "".join(f"{k}, " for k in qkeys)
    ctes = [f"`__rows` AS ({source.this.sql('spark')})",
            f"`__aggs` AS (SELECT {lead}{''.join(a + ', ' for a in aggs)}COUNT(*) AS `__n` "
            f"FROM `__rows`{by})"]
    joins = []
    for i, name, value in hists:
        ctes.append(f"`__hist{i}` AS (SELECT {lead}map_from_entries(collect_list(struct("
                    f"`__bin`, `__count`))) AS {_quote(name)} FROM (SELECT {lead}{value} AS "
                    f"`__bin`, COUNT(*) AS `__count` FROM `__rows` WHERE {value} IS NOT NULL "
                    f"GROUP BY {lead}{value}){by})")
        if keys:
            on = " AND ".join(f"`__aggs`.{k} <=> `__hist{i}`.{k}" for k in qkeys)
            joins.append(f"LEFT JOIN `__hist{i}` ON {on}")
        else:
            joins.append(f"CROSS JOIN `__hist{i}`")
    return (f"WITH {', '.join(ctes)} SELECT {', '.join(select)} FROM `__aggs` "
            + " ".join(joins))


def _frame(df: "DataFrame") -> pd.DataFrame:
    """``toPandas`` with DuckDB's conventions: maps as dicts, dates as datetime64[us]."""
    from pyspark.sql.types import DateType, MapType, TimestampNTZType, TimestampType

    with warnings.catch_warnings():  # PySpark's conversion warns about pandas 3 support
        warnings.simplefilter("ignore")
        frame = df.toPandas()
    for i, field in enumerate(df.schema.fields):
        col = frame.iloc[:, i]
        if isinstance(field.dataType, MapType):
            frame[field.name] = [v if v is None or isinstance(v, dict) else dict(v)
                                 for v in col]
        elif isinstance(field.dataType, (DateType, TimestampType, TimestampNTZType)):
            frame[field.name] = pd.to_datetime(col).astype("datetime64[us]")
    return frame


class _SparkPrepared:
    """An analysed Spark query; ``run`` collects it, cancelled by tag at the deadline."""

    def __init__(self, engine: "SparkEngine", df: "DataFrame"):
        self.engine, self.df = engine, df

    def run(self) -> pd.DataFrame:
        tag = f"mnb-{uuid.uuid4().hex[:12]}"
        with _cancellable(self.engine.spark, tag) as cancel:
            dog = Watchdog(self.engine.limits.seconds, cancel)
            try:
                with dog:
                    return _frame(self.df)
            except Exception:
                raise EngineFailure("time-limit" if dog.fired else "engine-error") from None


@contextlib.contextmanager
def _cancellable(spark: "SparkSession", tag: str) -> Iterator[Callable[[], None]]:
    """Tag the jobs this thread starts and yield a function that cancels them from any thread.

    A local session's ``SparkSession.interruptTag`` only sees tags added on the thread that
    calls it (the watchdog's is another), so locally the tag is a *job* tag on the
    SparkContext, which ``cancelJobsWithTag`` finds from anywhere, with interrupt-on-cancel so
    a running task stops at once. Spark Connect's tags live on the server and are interrupted
    by operation tag.
    """
    if _is_connect(spark):
        spark.addTag(tag)
        try:
            yield lambda: spark.interruptTag(tag)
        finally:
            spark.removeTag(tag)
        return
    sc = spark.sparkContext
    sc.setInterruptOnCancel(True)
    sc.addJobTag(tag)
    try:
        yield lambda: sc.cancelJobsWithTag(tag)
    finally:
        sc.removeJobTag(tag)


class SparkEngine(UniqueUnits):
    """A session's Spark engine: one temporary view per contract table, planned SQL only.

    Views are named ``mnb_<engine id>__<product>__<table>`` so sessions sharing one Spark
    session never see each other's tables; ``close`` drops them (the Spark session stays for
    the next engine). See the module docstring for what bounds what it can read.
    """

    kind = "spark"

    def __init__(self, tables: Iterable[TableSpec], *, remote: str | None = None,
                 limits: Limits | None = None):
        self.tables = list(tables)
        self.remote = remote
        self.limits = limits or Limits.from_env()
        self.spark = spark_session(remote)
        for key, value in RUNTIME_CONF.items():
            self.spark.conf.set(key, value)
        self._unique = {}
        tag = uuid.uuid4().hex[:8]
        self.views: dict[tuple[str, str], str] = {}
        for product, name, table, _ in self.tables:
            if not self._readable(table):
                continue
            view = f"mnb_{tag}__{product}__{name}"
            self._read(table).createOrReplaceTempView(view)
            self.views[(product, name)] = view

    def _read(self, table: Table) -> "DataFrame":
        if table.source:
            return self.spark.table(table.source)
        reader = self.spark.read
        if table.data_format == "csv":
            reader = reader.option("header", "true").option("inferSchema", "true")
        return reader.format(table.data_format).load(str(table.data_path))

    def _readable(self, table: Table) -> bool:
        return table.data_path is not None or bool(table.source)

    def _version(self, table: Table) -> object:
        # catalog tables have no portable version: checked once per engine
        return None if table.source else super()._version(table)

    def sql(self, sql: str) -> str:
        """The Spark SQL this engine runs for planned (DuckDB-dialect) ``sql``."""
        return to_spark(sql, self.views)

    def prepare(self, sql: str) -> "_SparkPrepared":
        """Transpile and analyse planned SQL (no data read); PolicyViolation
        ``engine-rejected`` if Spark cannot."""
        text = self.sql(sql)
        try:
            df = self.spark.sql(text)
            df.schema  # noqa: B018 - Connect analyses lazily: make it analyse now
        except Exception as exc:
            raise engine_rejected(exc) from None
        return _SparkPrepared(self, df)

    def execute(self, sql: str) -> pd.DataFrame:
        """Run planned SQL on Spark under the time limit; returns the frame DuckDB's would."""
        return self.prepare(sql).run()

    def _holds(self, sql: str) -> bool:
        return bool(self.spark.sql(self.sql(sql)).collect()[0][0])

    def close(self) -> None:
        """Drop this engine's views; the shared Spark session stays up."""
        for view in self.views.values():
            try:
                self.spark.catalog.dropTempView(view)
            except Exception:  # the session already ended
                pass
        self.views = {}
