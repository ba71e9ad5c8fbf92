"""The Spark engine: the same planned query, rendered by sqlglot and run through PySpark.

A plan is a sqlglot tree. This engine copies it, renames every ``"product"."table"`` to the
temporary view it registered for that table, rewrites on the tree what Spark lacks (``TRY``,
DuckDB's ``histogram``), and renders Spark SQL. The frame it returns has the shape and
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
from sqlglot import exp

from ..contract.model import Table
from ..errors import MeshError
from .engines import EngineFailure, Limits, TableSpec, UniqueUnits, Watchdog, engine_rejected
from .plan import columns_of

if TYPE_CHECKING:
    import numpy as np
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


def _name(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _table(name: str) -> exp.Table:
    return exp.Table(this=_name(name))


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def to_spark(query: exp.Expression, views: dict[tuple[str, str], str]) -> str:
    """A planned query (a sqlglot tree over ``"product"."table"``) -> Spark SQL over the
    registered views; ``query`` itself is left as it is.

    Every table reference must be a registered ``(product, table)``; ``TRY(x)`` becomes ``x``
    (see :func:`~mesh_nb.query.total.strip_try`); ``histogram(v)`` becomes a per-(group, bin)
    count folded into a map (see :func:`_histograms`).
    """
    from .total import strip_try

    tree = strip_try(query)  # a copy: Spark has no TRY(); ANSI off makes those parts total
    for table in tree.find_all(exp.Table):
        key = (table.db, table.name)
        if key not in views:
            raise MeshError(f"planned SQL names `{'.'.join(filter(None, key))}`, which is not "
                            "a table of the bound products — the query was refused")
        table.set("this", _name(views[key]))
        table.set("db", None)
        table.set("catalog", None)
    if any(_is_histogram(f) for f in tree.find_all(exp.Anonymous)):
        tree = _histograms(tree)
    return tree.sql("spark")


def _is_histogram(node: exp.Expression) -> bool:
    return isinstance(node, exp.Anonymous) and str(node.name).lower() == "histogram"


def _histograms(tree: exp.Select) -> exp.Select:
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

    def lead(table: str | None = None) -> list[exp.Column]:
        return [_col(k, table) for k in keys]

    def grouped(select: exp.Select, *extra: exp.Expression) -> exp.Select:
        by = [*lead(), *extra]
        return select.group_by(*by, copy=False) if by else select

    aggs: list[exp.Expression] = []
    hists: list[tuple[str, exp.Expression]] = []
    select: list[exp.Expression] = []
    for e in tree.expressions:
        name = e.alias_or_name
        inner = e.this if isinstance(e, exp.Alias) else e
        if _is_histogram(inner):
            select.append(_col(name, f"__hist{len(hists)}"))
            hists.append((name, inner.expressions[0]))
            continue
        if not (name in keys and not isinstance(inner, exp.AggFunc)):
            aggs.append(e.copy())
        select.append(_col(name, "__aggs"))
    count = exp.alias_(exp.Count(this=exp.Star()), "__n", quoted=True)
    main = grouped(exp.select(*lead(), *aggs, count).from_(_table("__rows"), copy=False))
    out = exp.select(*select).from_(_table("__aggs"), copy=False)
    out = out.with_("__rows", source.this.copy(), copy=False).with_("__aggs", main, copy=False)
    for i, (name, value) in enumerate(hists):
        hist = f"__hist{i}"
        pairs = exp.select(*lead(), exp.alias_(value.copy(), "__bin", quoted=True),
                           exp.alias_(exp.Count(this=exp.Star()), "__count", quoted=True))
        pairs = grouped(pairs.from_(_table("__rows"), copy=False)
                        .where(exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null())),
                               copy=False), value.copy())
        entries = exp.Anonymous(this="collect_list", expressions=[
            exp.Anonymous(this="struct", expressions=[_col("__bin"), _col("__count")])])
        folded = exp.Anonymous(this="map_from_entries", expressions=[entries])
        per_group = grouped(exp.select(*lead(), exp.alias_(folded, name, quoted=True))
                            .from_(pairs.subquery(copy=False), copy=False))
        out = out.with_(hist, per_group, copy=False)
        target = _table(hist)
        if keys:
            on = exp.and_(*(exp.NullSafeEQ(this=a, expression=b)
                            for a, b in zip(lead("__aggs"), lead(hist))), copy=False)
            out = out.join(target, on=on, join_type="LEFT", copy=False)
        else:
            out = out.join(target, join_type="CROSS", copy=False)
    return out


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
            finally:
                dog.close()

    def columns(self) -> "dict[str, np.ndarray]":
        """:meth:`run`'s answer as numpy columns."""
        return columns_of(self.run())


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

    def sql(self, query: exp.Expression) -> str:
        """The Spark SQL this engine runs for a planned query."""
        return to_spark(query, self.views)

    def prepare(self, query: exp.Expression) -> "_SparkPrepared":
        """Render and analyse a planned query (no data read); PolicyViolation
        ``engine-rejected`` if Spark cannot."""
        text = self.sql(query)
        try:
            df = self.spark.sql(text)
            df.schema  # noqa: B018 - Connect analyses lazily: make it analyse now
        except Exception as exc:
            raise engine_rejected(exc) from None
        return _SparkPrepared(self, df)

    def execute(self, query: exp.Expression) -> pd.DataFrame:
        """Run a planned query on Spark under the time limit; returns the frame DuckDB's
        would."""
        return self.prepare(query).run()

    def _holds(self, query: exp.Select) -> bool:
        return bool(self.spark.sql(self.sql(query)).collect()[0][0])

    def close(self) -> None:
        """Drop this engine's views; the shared Spark session stays up."""
        for view in self.views.values():
            try:
                self.spark.catalog.dropTempView(view)
            except Exception:  # the session already ended
                pass
        self.views = {}
