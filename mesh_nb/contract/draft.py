"""``mesh-nb init``: draft an ODCS contract from a data file and its PII scan, for the owner.

The draft classifies columns from the scan (direct identifiers, quasi-identifiers, public),
flags PII with its presidio entity, takes numeric bounds from the 0.5%/99.5% quantiles
(rounded outwards) and declares the categories of small domains. It passes ``mesh-nb check``;
the owner then edits purposes, bounds and descriptions.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..errors import MeshError
from .odcs import ColumnDoc, ContractDoc, ServerDoc, TableDoc, contract_text

if TYPE_CHECKING:
    from ..pii import ScanReport

FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "json", ".ndjson": "json"}
UNIT_NAME = re.compile(r"(^|_)(id|pid|person_id|customer_id|user_id|patient_id|member_id)$",
                       re.IGNORECASE)
MAX_CATEGORIES = 20


def read_table(path: str | Path) -> pd.DataFrame:
    """A csv, parquet or JSON-lines file as a DataFrame; a clear error for anything else."""
    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    if not p.is_file():
        raise MeshError(f"{p}: no such file — give a csv, parquet or .jsonl file")
    if fmt is None:
        raise MeshError(f"{p}: unsupported file type `{p.suffix}` — use one of "
                        f"{', '.join(sorted(FORMATS))}")
    try:
        if fmt == "csv":
            return pd.read_csv(p)
        if fmt == "parquet":
            return pd.read_parquet(p)
        return pd.read_json(p, lines=True)
    except Exception as exc:  # the reader's own message names line/column where it can
        raise MeshError(f"{p}: cannot be read as {fmt} ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:200]})") from None


def _ident(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", text).strip("_").lower() or "data"
    return name if re.match(r"[A-Za-z_]", name) else f"t_{name}"


def _logical(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "integer"
    if pd.api.types.is_float_dtype(series):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "timestamp"
    return "string"


def _bounds(series: pd.Series) -> tuple[float, float]:
    lo, hi = series.quantile([0.005, 0.995]).tolist()
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    step = 10 ** max(0, math.floor(math.log10(max(abs(lo), abs(hi), 1))) - 1)
    lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
    if lo >= hi:
        hi = lo + step
    cast = int if pd.api.types.is_integer_dtype(series) else float
    return cast(lo), cast(hi)


def _column(name: str, series: pd.Series, entity: str | None) -> ColumnDoc:
    """A column's draft declaration from its values and the entity the scan found in it."""
    from ..pii.entities import classification_of

    logical = _logical(series)
    klass = classification_of(entity)
    if UNIT_NAME.search(name) and klass == "public":
        klass = "direct-identifier"  # an id names the person
    bounds = categories = None
    if logical in ("integer", "number") and series.notna().any() and \
            klass != "direct-identifier":
        bounds = _bounds(series.dropna())
    distinct = series.dropna().unique()
    if klass == "public" and logical in ("string", "boolean") and \
            0 < len(distinct) <= MAX_CATEGORIES:
        categories = tuple(sorted(str(v) for v in distinct))
    return ColumnDoc(name, logical, klass, pii=bool(entity), entity=entity or None,
                     bounds=bounds, categories=categories)


def draft_contract(data: str | Path, owner: str, report: "ScanReport",
                   frame: pd.DataFrame) -> str:
    """The YAML text of a draft contract for ``data`` owned by team ``owner``."""
    path = Path(data)
    name = _ident(path.stem)
    found = {f.column: f.entity for f in report.columns}
    columns = tuple(_column(str(c), frame[c], found.get(str(c))) for c in frame.columns)
    unit = None
    for c in columns:
        if c.identifier and (unit is None or (
                UNIT_NAME.search(c.name) and not UNIT_NAME.search(unit))):
            unit = c.name
    if unit is None:
        raise MeshError(f"{path}: no column identifies a person, so there is no privacy unit "
                        "— add one (e.g. a person id) or write the contract by hand")
    allowed = [c.name for c in columns if not c.identifier]
    rows = max(len(frame), 1)
    per_unit = int(frame.groupby(unit).size().max()) if len(frame) else 1
    delta = 10 ** math.floor(math.log10(0.1 / rows))
    doc = ContractDoc(
        id=name, name=name, version="0.1.0", status="draft", team=owner,
        description={"purpose": f"Drafted by mesh-nb init from {path.name}; edit me."},
        servers=(ServerDoc(f"./{path.name}", FORMATS[path.suffix.lower()]),),
        tables=(TableDoc(name, columns, path.stem),),
        policy={"policyVersion": 1, "privacyUnit": unit, "maxContributions": max(1, per_unit),
                "purposes": {"exploration": {
                    "description": "Differentially private exploration (drafted; edit me).",
                    "access": "dp-aggregate", "allowedColumns": allowed or [unit],
                    "budget": {"epsilon": 1.0, "delta": float(delta), "scope": "per-analyst"},
                    "maxEpsilonPerQuery": 0.5}}},
        comment=f"Draft contract for {path.name}, from a mesh_nb PII scan. Review every\n"
                "classification, bound and category before publishing it; `mesh-nb check` it.")
    return contract_text(doc)
