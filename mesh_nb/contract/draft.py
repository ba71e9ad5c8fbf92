"""``mesh-nb init``: draft an ODCS contract from a data file and its PII scan, for the owner.

The draft

* picks the **privacy unit**: a column unique and non-null in the whole file with an id-like
  name or id-like values (``Number``, ``uuid``, ``*_id``; uuids, an integer sequence), else the
  column the owner names (``--unit``), else one non-unique id-like column with
  ``maxContributions`` rows per value. It never picks a column holding person names, and
  asks for ``--unit`` instead of guessing (:class:`UnitChoice` says what it chose and why);
* classifies each column by one conservative table (:data:`CLASSIFY`): a direct identifier
  the scan found, or a secret- or identity-like name, is a ``direct-identifier`` and stays out
  of the DP purpose; dates of birth, postcodes, places, age, gender are quasi-identifiers;
* takes numeric DP bounds from the 0.5%/99.5% quantiles (rounded outwards) into the policy's
  ``bounds``, and declares the categories of small public domains;
* fills in what the mesh's governance asks (legal basis, owner, contact, retention, a budget
  within the demo ceilings), marked "edit me".

It passes ``mesh-nb check`` and ``mesh-nb govern`` with the demo rules; the owner then edits
purposes, bounds, descriptions and legal basis.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..errors import MeshError
from .odcs import ColumnDoc, ContractDoc, ServerDoc, TableDoc, contract_text

if TYPE_CHECKING:
    from ..pii import ScanReport

FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "json", ".ndjson": "json"}
MAX_CATEGORIES = 20

CLASSIFY: tuple[tuple[str, frozenset[str]], ...] = (
    ("direct-identifier", frozenset({
        # secrets: never analysed, whatever they hold
        "password", "passwd", "pwd", "passcode", "passphrase", "secret", "token", "apikey",
        "accesskey", "secretkey", "privatekey", "cvv", "cvc", "cvn", "pin", "otp", "salt",
        "credential", "credentials",
        # identity: the value names or reaches the person
        "username", "login", "email", "mail", "phone", "telephone", "mobile", "fax", "ssn",
        "nationalid", "passport", "taxid", "iban", "accountnumber", "ccnumber", "creditcard",
        "cardnumber", "ipaddress", "ip", "macaddress", "address", "streetaddress",
        "firstname", "lastname", "surname", "givenname", "fullname", "middlename",
        "maidenname", "mothersmaiden", "licenseplate", "driverlicense", "deviceid"})),
    ("quasi-identifier", frozenset({
        "birthday", "birthdate", "dob", "birth", "born", "zip", "zipcode", "postcode",
        "postal", "postalcode", "plz", "city", "town", "county", "district", "age", "gender",
        "sex", "latitude", "longitude", "lat", "lon", "lng", "geo", "geolocation",
        "nationality", "ethnicity", "race", "religion", "marital"})),
)
"""Column-name words (lower case; adjacent words also joined) and the class they give a
column, most protective first. With the scan's entity (its registry classification, e.g.
STREET_ADDRESS -> direct-identifier), the more protective of the two wins."""

ID_WORDS = frozenset({"id", "uuid", "guid", "key", "pk", "number", "no", "nr", "num"})
"""A column whose name is, or ends in, one of these words is id-like (``Number``, ``user_id``)."""

UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                  r"[0-9a-fA-F]{12}$")
RANK = {"public": 0, "quasi-identifier": 1, "direct-identifier": 2}


@dataclass(frozen=True)
class UnitChoice:
    """The privacy unit a draft picked, the rows one value may have, and why."""

    column: str
    max_contributions: int
    reason: str


@dataclass(frozen=True)
class Draft:
    """A drafted contract: its YAML text, the unit and the column declarations."""

    text: str
    unit: UnitChoice
    columns: tuple[ColumnDoc, ...]

    def summary(self) -> str:
        """What the owner should read first: the unit and why, and what the DP purpose
        leaves out."""
        import textwrap

        direct = [c.name for c in self.columns if c.identifier]
        quasi = [c.name for c in self.columns if c.classification == "quasi-identifier"]
        return "\n".join(textwrap.fill(line, 100, subsequent_indent="  ") for line in (
            f"privacy unit {self.unit.reason}",
            f"direct identifiers, kept out of the DP purpose: {', '.join(direct) or 'none'}",
            f"quasi-identifiers: {', '.join(quasi) or 'none'}"))


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


def words(name: str) -> set[str]:
    """The lower-case words of a column name, and each two adjacent words joined
    (``CCNumber`` -> cc, number, ccnumber; ``api_key`` -> api, key, apikey)."""
    parts = [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+", name)]
    parts = [w for w in parts if not w.isdigit()] or parts
    return {*parts, *(a + b for a, b in zip(parts, parts[1:])), "".join(parts)}


def name_class(name: str) -> str:
    """The class :data:`CLASSIFY` gives a column name (``public`` when no word matches)."""
    found = words(name)
    return next((klass for klass, cues in CLASSIFY if found & cues), "public")


def _id_like_name(name: str) -> bool:
    parts = [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+", name)]
    return bool(parts) and parts[-1] in ID_WORDS


def _id_like_values(series: pd.Series) -> str | None:
    """``uuids`` or ``an integer sequence`` when the (unique) values look like row keys."""
    if pd.api.types.is_integer_dtype(series):
        return "values an integer sequence" if (
            int(series.max()) - int(series.min()) < 2 * len(series)) else None
    if pd.api.types.is_string_dtype(series) or series.dtype == object:
        head = series.astype(str).head(1000)
        return "values uuids" if head.str.match(UUID).all() else None
    return None


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
    klass = max(classification_of(entity), name_class(name),
                "direct-identifier" if _id_like_name(name) else "public",  # an id names one
                key=lambda k: RANK.get(k, 1))
    bounds = categories = None
    if logical in ("integer", "number") and series.notna().any() and \
            klass != "direct-identifier":
        bounds = _bounds(series.dropna())
    distinct = series.dropna().unique()
    if klass == "public" and logical in ("string", "boolean") and \
            0 < len(distinct) <= MAX_CATEGORIES:
        categories = tuple(sorted(str(v) for v in distinct))
    return ColumnDoc(name, logical, klass, pii=bool(entity) or klass != "public",
                     entity=entity or None, bounds=bounds, categories=categories)


def choose_unit(path: Path, frame: pd.DataFrame, found: dict[str, str | None],
                unit: str | None = None) -> UnitChoice:
    """The privacy unit of ``frame`` (see the module docstring); a clear error naming
    ``--unit`` when there is no safe choice. ``found`` maps columns to the scan's entities."""
    rows = len(frame)
    names = [str(c) for c in frame.columns]

    def per_value(col: str) -> int:
        return int(frame.groupby(col).size().max()) if rows and frame[col].notna().any() else 1

    def unique(col: str) -> bool:
        return rows > 0 and bool(frame[col].notna().all()) and bool(frame[col].is_unique)

    if unit is not None:
        if unit not in names:
            raise MeshError(f"{path}: --unit `{unit}` is not a column — use one of: "
                            f"{', '.join(names)}")
        if found.get(unit) == "PERSON":
            raise MeshError(f"{path}: --unit `{unit}` holds person names, which do not tell "
                            "people apart — name an id column")
        if unique(unit):
            return UnitChoice(unit, 1, f"`{unit}`: named with --unit; unique in all "
                                       f"{rows:,} rows")
        n = per_value(unit)
        return UnitChoice(unit, n, f"`{unit}`: named with --unit; up to {n:,} rows per value "
                                   f"(maxContributions {n:,})")
    # a column whose values are personal data (names, e-mails, SSNs, secrets) is no row key
    keyless = [c for c in names if found.get(c) is None and name_class(c) == "public"]
    scored = []
    for c in keyless:
        why = [w for w in (_id_like_name(c) and "id-like name",
                           unique(c) and _id_like_values(frame[c])) if w]
        if why and unique(c):
            scored.append((len(why), c, why))
    if scored:
        best = max(s for s, _, _ in scored)
        top = [(c, why) for s, c, why in scored if s == best]
        if len(top) == 1:
            c, why = top[0]
            return UnitChoice(c, 1, f"`{c}`: unique in all {rows:,} rows, {', '.join(why)}")
        raise MeshError(f"{path}: not sure which column identifies a person: "
                        f"{' and '.join(f'`{c}`' for c, _ in top)} are all unique and id-like "
                        "— name the one with `--unit COL`")
    keys = [c for c in keyless if _id_like_name(c) and frame[c].notna().any()]
    if len(keys) == 1:
        n = per_value(keys[0])
        return UnitChoice(keys[0], n, f"`{keys[0]}`: id-like name, not unique: up to {n:,} "
                                      f"rows per value (maxContributions {n:,})")
    why = (f"{' and '.join(f'`{c}`' for c in keys)} are all id-like" if keys else
           f"no column is unique in all {rows:,} rows with an id-like name or values")
    raise MeshError(f"{path}: not sure which column identifies a person: {why} — name it "
                    "with `--unit COL` (the column holding one value per person)")


def draft_contract(data: str | Path, owner: str, report: "ScanReport", frame: pd.DataFrame,
                   *, unit: str | None = None, contact: str | None = None) -> Draft:
    """A draft contract for ``data`` owned by team ``owner`` (``contact``: the owner's e-mail,
    the team's member and support address), with privacy unit ``unit`` or one inferred."""
    from ..session import resolve_analyst

    path = Path(data)
    name = _ident(path.stem)
    found = {f.column: f.entity for f in report.columns}
    chosen = choose_unit(path, frame, found, unit)
    columns = tuple(_column(str(c), frame[c], found.get(str(c))) for c in frame.columns)
    columns = tuple(ColumnDoc(c.name, c.logical_type, "direct-identifier", pii=True,
                              entity=c.entity) if c.name == chosen.column else c
                    for c in columns)
    allowed = [c.name for c in columns if not c.identifier]
    rows = max(len(frame), 1)
    delta = min(1e-6, 10 ** math.floor(math.log10(0.1 / rows)))
    contact = contact or resolve_analyst(None)
    mail = contact if contact.startswith("mailto:") else f"mailto:{contact}"
    doc = ContractDoc(
        id=name, name=name, version="0.1.0", status="draft", team=owner,
        description={"purpose": f"Drafted by mesh-nb init from {path.name}; edit me."},
        members=({"username": contact.removeprefix("mailto:"), "role": "owner"},),
        servers=(ServerDoc(f"./{path.name}", FORMATS[path.suffix.lower()]),),
        tables=(TableDoc(name, columns, name),),
        retention_years=1,
        support=({"channel": "email", "url": mail},),
        policy={"policyVersion": 1, "privacyUnit": chosen.column,
                "maxContributions": chosen.max_contributions,
                "purposes": {"exploration": {
                    "description": "Differentially private exploration (drafted; edit me).",
                    "legalBasis": "GDPR Art. 6(1)(f) legitimate interests (drafted; confirm "
                                  "it)",
                    "access": "dp-aggregate", "allowedColumns": allowed or [chosen.column],
                    "budget": {"epsilon": 1.0, "delta": float(delta), "scope": "per-analyst",
                               "period": "P30D"},
                    "maxEpsilonPerQuery": 0.5}}},
        comment=f"Draft contract for {path.name}, from a mesh_nb PII scan. Review every\n"
                "classification, bound and category, the legal basis, retention (1 year) and\n"
                "contact before publishing it; `mesh-nb check` and `mesh-nb govern` it.\n"
                f"Privacy unit {chosen.reason}.")
    return Draft(contract_text(doc), chosen, columns)
