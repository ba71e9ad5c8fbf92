"""What a rule kind sees of one product: contract, YAML lines, a data sample, its scan, the ledger.

Everything is read lazily and once per product: a contract-only evaluation (at bind time)
never touches the data or the ledger, and ``ctx.scan()`` / ``ctx.ledger()`` return None then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..contract.model import Column, Contract, Table
from ..contract.privacy import policy_path
from ..contract.yamlsource import FieldPath, YamlSource, column_path
from ..durations import MONTH_DAYS, YEAR_DAYS, period_days

if TYPE_CHECKING:
    import pandas as pd

    from ..ledger import Ledger
    from ..mesh import Product
    from ..pii import ScanReport

#: Most rows read from one table for the governance scan.
SAMPLE_ROWS = 10_000
_READERS = {"parquet": "read_parquet", "csv": "read_csv_auto", "json": "read_json_auto"}
_UNIT_DAYS = {"d": 1, "day": 1, "days": 1, "w": 7, "week": 7, "weeks": 7,
              **dict.fromkeys(("m", "mo", "month", "months"), MONTH_DAYS),
              **dict.fromkeys(("y", "yr", "year", "years"), YEAR_DAYS)}


@dataclass(frozen=True)
class Retention:
    """A retention SLA of the contract (``slaProperties`` item ``property: retention``)."""

    days: int | None  # None: value or unit not understood
    text: str         # as written, e.g. ``3 y``
    at: FieldPath


@dataclass
class ProductContext:
    """One product as the rules see it. ``data`` / ``ledger`` say whether those are read."""

    product: "Product"
    source: YamlSource
    data: bool = False
    use_ledger: bool = False
    sample_rows: int = SAMPLE_ROWS
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    _samples: dict[str, Any] = field(default_factory=dict, repr=False)
    _scans: dict[str, Any] = field(default_factory=dict, repr=False)
    notes: list[str] = field(default_factory=list)

    @property
    def contract(self) -> Contract:
        return self.product.contract

    @property
    def name(self) -> str:
        return self.product.name

    # -- where in the contract ----------------------------------------------------------

    def line(self, path: FieldPath) -> int | None:
        """The contract line of a field path (the deepest existing node on it)."""
        return self.source.line(path)

    def policy_path(self) -> FieldPath:
        """Field path of the ``meshNbPrivacy`` value."""
        return policy_path(self.source) or ("customProperties",)

    def purpose_path(self, purpose: str, *rest: str | int) -> FieldPath:
        """Field path of a purpose (or a field under it)."""
        return self.policy_path() + ("purposes", purpose) + tuple(rest)

    def allowed_column_path(self, purpose: str, column: str) -> FieldPath:
        """Field path of one ``allowedColumns`` item of a purpose."""
        p = self.contract.purpose(purpose)
        if p is not None and column in p.allowed_columns:
            return self.purpose_path(purpose, "allowedColumns", p.allowed_columns.index(column))
        return self.purpose_path(purpose, "allowedColumns")

    def column_path(self, table: str, column: str, *rest: str | int) -> FieldPath:
        """Field path of a column (or a field under it, e.g. ``classification``)."""
        base = column_path(self.source, table, column)
        return (base + tuple(rest)) if base is not None else ("schema",)

    def table_path(self, table: str) -> FieldPath:
        for ti, t in enumerate(self.source.data.get("schema") or []):
            if isinstance(t, dict) and t.get("name") == table:
                return ("schema", ti)
        return ("schema",)

    def columns(self) -> list[tuple[Table, Column]]:
        """Every (table, column) of the contract."""
        return [(t, c) for t in self.contract.tables for c in t.columns]

    def resolve_column(self, name: str) -> tuple[Table, Column] | None:
        """An ``allowedColumns`` item (``col`` or ``table.col``) -> its table and column."""
        table, _, col = name.rpartition(".")
        for t, c in self.columns():
            if c.name == col and (not table or t.name == table):
                return t, c
        return None

    # -- ODCS sections ------------------------------------------------------------------

    def retention(self) -> Retention | None:
        """The retention SLA (first ``slaProperties`` item with ``property: retention``)."""
        for i, item in enumerate(self.source.data.get("slaProperties") or []):
            if isinstance(item, dict) and str(item.get("property", "")).lower() == "retention":
                value, unit = item.get("value"), str(item.get("unit") or "d").strip().lower()
                text = f"{value} {unit}".strip()
                days = period_days(value)
                if days is None and isinstance(value, (int, float)) \
                        and not isinstance(value, bool) and unit in _UNIT_DAYS:
                    days = int(value * _UNIT_DAYS[unit])
                return Retention(days, text, ("slaProperties", i))
        return None

    def support(self) -> list[dict]:
        """The ODCS ``support`` channels (items that are mappings)."""
        items = self.source.data.get("support") or []
        return [s for s in items if isinstance(s, dict)] if isinstance(items, list) else []

    # -- data and ledger ----------------------------------------------------------------

    def sample(self, table: str) -> "pd.DataFrame | None":
        """Up to :data:`SAMPLE_ROWS` random rows of a table (DuckDB reservoir sample, fixed seed);
        None when data is not read in this evaluation or the table has no local file."""
        if not self.data:
            return None
        if table not in self._samples:
            self._samples[table] = self._read_sample(table)
        return self._samples[table]

    def _read_sample(self, table: str) -> "pd.DataFrame | None":
        import duckdb

        t = self.contract.table(table)
        if t is None or t.data_path is None or not Path(t.data_path).exists():
            self.notes.append(f"table `{table}` has no local data file: data rules skipped")
            return None
        literal = str(t.data_path).replace("'", "''")
        reader = _READERS.get(t.data_format, "read_parquet")
        sql = (f"SELECT * FROM {reader}('{literal}') "
               f"USING SAMPLE {int(self.sample_rows)} ROWS (reservoir, 7)")
        with duckdb.connect() as con:
            return con.execute(sql).df()

    def scan(self, table: str) -> "ScanReport | None":
        """The PII scan of a table's sample (cached); None when data is not read."""
        if table not in self._scans:
            frame = self.sample(table)
            if frame is None:
                self._scans[table] = None
            else:
                from ..pii import scan

                self._scans[table] = scan(frame)
        return self._scans[table]

    def ledger(self) -> "Ledger | None":
        """The owner's ledger when this evaluation reads it and it exists (never created here)."""
        if not self.use_ledger:
            return None
        location = getattr(self.product, "ledger_location", None)
        if location is None:
            from ..mesh import LEDGER_DIR

            location = self.product.folder / LEDGER_DIR / "ledger.sqlite"
        if isinstance(location, Path) and not location.exists():
            return None
        return self.product.ledger
