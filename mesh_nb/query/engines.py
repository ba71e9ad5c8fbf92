"""Engines that run planned SQL over a product's data files.

The embedded engine is DuckDB, sandboxed: it sees the contract's tables as views over the
product's files and nothing else (``allowed_paths`` = exactly those files, external access off,
configuration locked), so a check that misses something still cannot read another file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Literal, Protocol, runtime_checkable

import duckdb

from ..contract.model import Table
from ..errors import MeshError

if TYPE_CHECKING:
    import pandas as pd

EngineKind = Literal["duckdb", "spark"]
ENGINE_KINDS: tuple[str, ...] = ("duckdb", "spark")

TableSpec = tuple[str, str, Table, str]
"""(product, table name, Table, privacy unit column): what an engine is opened over."""


@runtime_checkable
class QueryEngine(Protocol):
    """What the planner and the release stage need from an engine.

    ``execute`` runs planned SQL (DuckDB dialect, tables named ``"product"."table"``) and
    returns a pandas frame with one row per group: group keys, counts as int64, sums as
    float64, histograms as ``{bin: count}`` dicts. ``unit_unique`` answers whether a table
    verifiably holds one row per privacy unit (see :class:`Engine`).
    """

    kind: str

    def execute(self, sql: str) -> "pd.DataFrame": ...

    def unit_unique(self, product: str, name: str) -> bool: ...

    def close(self) -> None: ...

_READERS = {"parquet": "read_parquet", "csv": "read_csv_auto", "json": "read_json_auto"}


def _scan(path: Path, fmt: str) -> str:
    literal = str(path).replace("'", "''")
    return f"{_READERS[fmt]}('{literal}')"


def count_rows(path: Path, fmt: str = "parquet") -> int:
    """Rows in one data file."""
    with duckdb.connect() as con:
        return int(con.execute(f"SELECT count(*) FROM {_scan(path, fmt)}").fetchone()[0])


def sandboxed_duckdb(tables: Iterable[tuple[str, str, Table]], *, threads: int | None = None
                     ) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per ``(product, table_name, Table)`` and nothing else.

    Views live in a schema named after the product, so SQL names them ``product.table``.
    """
    con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False})
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
    allowed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    con.execute(f"SET allowed_paths = [{allowed}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


class UniqueUnits:
    """``unit_unique`` shared by the engines: a contract's ``unique`` privacy unit, checked on
    the data once per data version (an engine supplies ``_readable``, ``_version``, ``_holds``).
    """

    tables: list[TableSpec]
    _unique: dict[tuple[str, str], tuple[object, bool]]

    def _readable(self, table: Table) -> bool:
        return table.data_path is not None

    def _version(self, table: Table) -> object:
        st = table.data_path.stat()
        return (st.st_mtime_ns, st.st_size)

    def _holds(self, sql: str) -> bool:
        raise NotImplementedError

    def unit_unique(self, product: str, name: str) -> bool:
        """Does the contract declare ``product.name``'s privacy unit ``unique``? Checked on the
        data; a declaration the data breaks is the owner's error and stops the query."""
        for p, n, table, unit in self.tables:
            if (p, n) != (product, name):
                continue
            col = table.column(unit)
            if col is None or not col.unique or not self._readable(table):
                return False
            version = self._version(table)
            known = self._unique.get((p, n))
            if known is None or known[0] != version:
                holds = self._holds(
                    f'SELECT COUNT("{unit}") = COUNT(DISTINCT "{unit}") AND COUNT(*) = '
                    f'COUNT("{unit}") FROM "{p}"."{n}"')
                self._unique[(p, n)] = known = (version, bool(holds))
            if not known[1]:
                raise MeshError(f"`{p}.{n}` declares its privacy unit `{unit}` unique, but "
                                "its data breaks that — the owner must fix the data or drop "
                                "`unique: true` from the contract")
            return True
        return False


class Engine(UniqueUnits):
    """A session's sandboxed DuckDB over its products' tables, opened once and reused.

    It also answers whether a table really holds one row per privacy unit when the contract
    declares the unit column ``unique`` — checked on the data once per file version, so the
    planner may skip contribution bounding only where it is a no-op.
    """

    kind = "duckdb"

    def __init__(self, tables: Iterable[TableSpec]):
        self.tables = list(tables)  # (product, table name, Table, privacy unit column)
        self.con = sandboxed_duckdb((p, n, t) for p, n, t, _ in self.tables)
        self._unique = {}

    def execute(self, sql: str):
        """Run planned SQL; returns a pandas DataFrame."""
        return self.con.execute(sql).df()

    def _holds(self, sql: str) -> bool:
        return bool(self.con.execute(sql).fetchone()[0])

    def close(self) -> None:
        self.con.close()


def open_engine(tables: Iterable[TableSpec], *, kind: str | None = None,
                remote: str | None = None) -> QueryEngine:
    """The engine for a session's tables: DuckDB unless ``kind="spark"``.

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
        return Engine(tables)
    from .spark import SparkEngine

    return SparkEngine(tables, remote=remote)
