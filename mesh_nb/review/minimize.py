"""Data minimization: which allowed columns each purpose really used, and which it never touched.

A purpose's ``allowedColumns`` is a promise the owner made to the data subjects: only what the
purpose needs. The ledger records the columns every release touched (``details.columns``, as
``product.table.col``), so the owner can see, for a period, how often each allowed column was
used and which were never used — candidates to drop from ``allowedColumns`` (and columns no
purpose uses, candidates to stop collecting) — with the contract line to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

import pandas as pd

from ..contract.privacy import policy_path
from ..contract.yamlsource import column_path, contract_source
from ..ledger.entry import RELEASE_KINDS
from ._common import entries_in, parse_since, products_of, qualified_columns

if TYPE_CHECKING:
    from ..mesh import Mesh, Product

NEVER_TOUCHED = "never touched: candidate to drop from allowedColumns"
PURPOSE_UNUSED = "purpose unused in the period: does it still need this column?"
NOT_ALLOWED = "no purpose allows it: candidate to stop collecting"
NO_PURPOSE_TOUCHED = "no purpose touched it: candidate to stop collecting"
KEPT_AS_UNIT = "privacy unit / join key: needed for bounding and joins"

MINIMIZATION_COLUMNS = ["product", "purpose", "access", "allowed", "table", "column",
                        "classification", "touches", "last_touched", "purpose_releases",
                        "flagged", "advice", "file", "line", "where"]
SUMMARY_COLUMNS = ["product", "purpose", "access", "releases", "allowed", "used", "never_used",
                   "file", "line", "where"]
COLLECTION_COLUMNS = ["product", "table", "column", "classification", "allowed_by", "touches",
                      "flagged", "advice", "file", "line", "where"]


@dataclass(frozen=True)
class Minimization:
    """Per purpose and allowed column, and per collected column: touches in the period."""

    by_purpose: pd.DataFrame
    collection: pd.DataFrame

    def candidates(self) -> pd.DataFrame:
        """Allowed columns flagged as candidates to drop."""
        return self.by_purpose[self.by_purpose["flagged"]].reset_index(drop=True)

    def summary(self) -> pd.DataFrame:
        """One row per product and purpose: columns allowed, used, and the ones never used in
        the period (with the contract line of the first of them)."""
        rows = []
        for (product, purpose), g in self.by_purpose.groupby(["product", "purpose"], sort=True):
            never = g[g["flagged"]]
            first = never if len(never) else g
            rows.append({"product": product, "purpose": purpose, "access": g["access"].iloc[0],
                         "releases": int(g["purpose_releases"].iloc[0]),
                         "allowed": len(g), "used": int((~g["flagged"]).sum()),
                         "never_used": ", ".join(never["allowed"]),
                         "file": first["file"].iloc[0], "line": first["line"].min(),
                         "where": first["where"].iloc[0]})
        out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
        out["line"] = out["line"].astype("Int64")
        return out

    def __str__(self) -> str:
        lines = []
        for r in self.candidates().itertuples():
            lines.append(f"{r.where}: {r.product} · {r.purpose}: `{r.allowed}` {r.advice}")
        for r in self.collection[self.collection["flagged"]].itertuples():
            lines.append(f"{r.where}: {r.product}.{r.table}.{r.column}: {r.advice}")
        return "\n".join(lines) or "every allowed column was used in the period"


def _resolve(allowed: str, tables: dict[str, tuple[str, ...]]) -> tuple[str, str] | None:
    """An ``allowedColumns`` item (``col`` or ``table.col``) -> (table, col)."""
    if "." in allowed:
        table, col = allowed.split(".", 1)
        return (table, col) if col in tables.get(table, ()) else None
    for table, cols in tables.items():
        if allowed in cols:
            return table, allowed
    return None


def _matches(allowed: str, table: str, col: str) -> bool:
    return allowed == col or allowed == f"{table}.{col}"


def minimization(target: "Mesh | Product", since: datetime | date | str | None = None, *,
                 product: str | None = None) -> Minimization:
    """How often each purpose touched each of its allowed columns from ``since`` on.

    Counts ``query.released`` entries (cached re-releases too: the analyst saw the result
    again) and ``model.released`` ones (a model's features, target and filter) whose
    ``details.columns`` name the column. ``line`` is the contract line of the
    ``allowedColumns`` item (or of the column in ``schema``) to change.
    """
    return minimize_products(products_of(target, product), parse_since(since))


def minimize_products(products: list["Product"], start: datetime | None) -> Minimization:
    """:func:`minimization` over resolved products from an aware ``start`` (or all time)."""
    rows, coll = [], []
    for p in products:
        c = p.contract
        src = contract_source(c.path)
        at = policy_path(src) if src is not None else None
        tables = {t.name: t.column_names for t in c.tables}
        releases = entries_in(p, start, RELEASE_KINDS)
        touched: dict[tuple[str, str, str], list[str]] = {}  # (purpose, table, col) -> ts
        for e in releases:
            for table, col in set(qualified_columns(e, p.name)):
                touched.setdefault((e.purpose or "", table, col), []).append(e.ts)
        per_purpose = {}
        for e in releases:
            per_purpose[e.purpose] = per_purpose.get(e.purpose, 0) + 1
        allowed_by: dict[tuple[str, str], list[str]] = {}
        for pname, purpose in sorted(c.purposes.items()):
            n_releases = per_purpose.get(pname, 0)
            for j, allowed in enumerate(purpose.allowed_columns):
                resolved = _resolve(allowed, tables)
                table, col = resolved if resolved else ("", allowed)
                if resolved:
                    allowed_by.setdefault(resolved, []).append(pname)
                stamps = [s for (pu, t, cl), v in touched.items()
                          if pu == pname and _matches(allowed, t, cl) for s in v]
                column = c.table(table).column(col) if resolved else None
                line = None
                if src is not None and at is not None:
                    line = src.line(at + ("purposes", pname, "allowedColumns", j))
                flagged = not stamps
                advice = "" if stamps else (PURPOSE_UNUSED if n_releases == 0 else NEVER_TOUCHED)
                rows.append({
                    "product": p.name, "purpose": pname, "access": purpose.access,
                    "allowed": allowed, "table": table, "column": col,
                    "classification": column.classification if column else "",
                    "touches": len(stamps), "last_touched": max(stamps) if stamps else None,
                    "purpose_releases": n_releases, "flagged": flagged, "advice": advice,
                    "file": str(c.path), "line": line,
                    "where": f"{c.path}:{line}" if line else str(c.path)})
        units = {c.privacy_unit, *c.join_keys}
        for t in c.tables:
            for col in t.columns:
                by = allowed_by.get((t.name, col.name), [])
                hits = sum(len(v) for (pu, tt, cl), v in touched.items()
                           if tt == t.name and cl == col.name)
                if col.name in units:
                    flagged, advice = False, KEPT_AS_UNIT
                elif not by:
                    flagged, advice = True, NOT_ALLOWED
                elif hits == 0:
                    flagged, advice = True, NO_PURPOSE_TOUCHED
                else:
                    flagged, advice = False, ""
                path = column_path(src, t.name, col.name) if src is not None else None
                line = src.line(path) if path is not None else None
                coll.append({
                    "product": p.name, "table": t.name, "column": col.name,
                    "classification": col.classification, "allowed_by": ", ".join(by),
                    "touches": hits, "flagged": flagged, "advice": advice,
                    "file": str(c.path), "line": line,
                    "where": f"{c.path}:{line}" if line else str(c.path)})
    by_purpose = pd.DataFrame(rows, columns=MINIMIZATION_COLUMNS)
    collection = pd.DataFrame(coll, columns=COLLECTION_COLUMNS)
    for frame in (by_purpose, collection):
        frame["line"] = frame["line"].astype("Int64")
        frame["flagged"] = frame["flagged"].astype(bool)
        frame["touches"] = frame["touches"].astype(int)
    return Minimization(by_purpose, collection)
