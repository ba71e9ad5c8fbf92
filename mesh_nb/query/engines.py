"""Engines that run planned SQL over a product's data files.

The embedded engine is DuckDB, sandboxed: it sees the contract's tables as views over the
product's files and nothing else (``allowed_paths`` = exactly those files, external access off,
configuration locked), so a check that misses something still cannot read another file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import duckdb

from ..contract.model import Table

_READERS = {"parquet": "read_parquet", "csv": "read_csv_auto"}


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
