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
import yaml

from ..errors import MeshError

if TYPE_CHECKING:
    from ..pii import ScanReport

FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "json", ".ndjson": "json"}
UNIT_NAME = re.compile(r"(^|_)(id|pid|person_id|customer_id|user_id|patient_id|member_id)$",
                       re.IGNORECASE)
MAX_CATEGORIES = 20
QUASI_ENTITIES = frozenset({"DATE_TIME", "LOCATION", "NRP", "AGE", "US_ZIP", "ZIP_CODE"})


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


def _bounds(series: pd.Series) -> dict:
    lo, hi = series.quantile([0.005, 0.995]).tolist()
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    step = 10 ** max(0, math.floor(math.log10(max(abs(lo), abs(hi), 1))) - 1)
    lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
    if lo >= hi:
        hi = lo + step
    cast = int if pd.api.types.is_integer_dtype(series) else float
    return {"minimum": cast(lo), "maximum": cast(hi)}


def draft_contract(data: str | Path, owner: str, report: "ScanReport",
                   frame: pd.DataFrame) -> str:
    """The YAML text of a draft contract for ``data`` owned by team ``owner``."""
    from ..pii.alerts import DIRECT_ENTITIES

    path = Path(data)
    name, table = _ident(path.stem), _ident(path.stem)
    found = {f.column: f for f in report.columns}
    props, allowed, unit = [], [], None
    for column in frame.columns:
        series = frame[column]
        f = found.get(str(column))
        entity = f.entity if f else None
        logical = _logical(series)
        klass = ("direct-identifier" if entity in DIRECT_ENTITIES else
                 "quasi-identifier" if entity in QUASI_ENTITIES else "public")
        prop: dict = {"name": str(column), "logicalType": logical, "classification": klass}
        custom = []
        if entity:
            prop["tags"] = ["pii"]
            custom = [{"property": "pii", "value": True},
                      {"property": "meshNbPiiEntity", "value": entity}]
        if logical in ("integer", "number") and series.notna().any() and klass != \
                "direct-identifier":
            prop["logicalTypeOptions"] = _bounds(series.dropna())
        distinct = series.dropna().unique()
        if klass == "public" and logical in ("string", "boolean") and \
                0 < len(distinct) <= MAX_CATEGORIES:
            prop["quality"] = [{"metric": "invalidValues", "mustBe": 0, "arguments": {
                "validValues": sorted(str(v) for v in distinct)}}]
        if custom:
            prop["customProperties"] = custom
        if UNIT_NAME.search(str(column)) and klass == "public":
            prop["classification"] = klass = "direct-identifier"  # an id names the person
            prop.pop("logicalTypeOptions", None)
            prop.pop("quality", None)
        if klass == "direct-identifier" and (unit is None or (
                UNIT_NAME.search(str(column)) and not UNIT_NAME.search(unit))):
            unit = str(column)
        if klass != "direct-identifier":
            allowed.append(str(column))
        props.append(prop)
    if unit is None:
        raise MeshError(f"{path}: no column identifies a person, so there is no privacy unit "
                        "— add one (e.g. a person id) or write the contract by hand")
    rows = max(len(frame), 1)
    per_unit = int(frame.groupby(unit).size().max()) if len(frame) else 1
    delta = 10 ** math.floor(math.log10(0.1 / rows))
    fmt = FORMATS[path.suffix.lower()]
    doc = {
        "apiVersion": "v3.1.0", "kind": "DataContract", "id": name, "version": "0.1.0",
        "name": name, "status": "draft",
        "description": {"purpose": f"Drafted by mesh-nb init from {path.name}; edit me."},
        "team": {"name": owner},
        "servers": [{"server": "local", "type": "local", "format": fmt,
                     "path": f"./{path.name}"}],
        "schema": [{"name": table, "physicalName": path.stem, "physicalType": "table",
                    "properties": props}],
        "customProperties": [{"id": "mesh_nb_privacy", "property": "meshNbPrivacy", "value": {
            "policyVersion": 1, "privacyUnit": unit, "maxContributions": max(1, per_unit),
            "purposes": {"exploration": {
                "description": "Differentially private exploration (drafted; edit me).",
                "access": "dp-aggregate", "allowedColumns": allowed or [unit],
                "budget": {"epsilon": 1.0, "delta": float(delta), "scope": "per-analyst"},
                "maxEpsilonPerQuery": 0.5}}}}],
    }
    head = (f"# Draft contract for {path.name}, from a mesh_nb PII scan. Review every\n"
            "# classification, bound and category before publishing it; `mesh-nb check` it.\n")
    return head + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
