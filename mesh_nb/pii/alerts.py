"""What a scan means for the bound session: PII the purpose does not allow, or a column the
contract classifies differently from what the scan finds.

Alerts carry names, entity types, shares and counts — never a value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..contract.model import Column
from .entities import DIRECT_ENTITIES

if TYPE_CHECKING:
    from ..session import Session
    from . import ScanReport


@dataclass(frozen=True)
class Alert:
    """One column of one frame that needs the analyst's attention."""

    frame: str
    column: str
    entity: str
    share: float
    confidence: float
    contract_says: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return (f"{self.frame}.{self.column}: {self.entity} in {self.share:.0%} of sampled "
                f"values (confidence {self.confidence:.2f}); contract: {self.contract_says} — "
                f"{self.problem}; {self.fix}")


def _contract_column(session: "Session", name: str) -> tuple[str, Column] | None:
    for p in session.products:
        for t in p.contract.tables:
            col = t.column(name)
            if col is not None:
                return p.name, col
    return None


def _allowed(session: "Session", product: str, column: str) -> bool:
    spec = session.purpose_of(product)
    return column in spec.allowed_columns or any(
        c.endswith("." + column) for c in spec.allowed_columns)


def alerts_for(report: "ScanReport", frame: str, session: "Session | None") -> list[Alert]:
    """Alerts for the labeled columns of ``report`` (a frame called ``frame``) in ``session``.

    Without a bound session every column holding PII is reported: nothing allows it.
    """
    out: list[Alert] = []
    for f in report.columns:
        if f.entity is None:
            continue
        direct = f.entity in DIRECT_ENTITIES
        found = _contract_column(session, f.column) if session is not None else None
        if found is None:
            if not direct and session is not None:
                continue  # a date or place that no contract covers: not worth an alert
            out.append(Alert(frame, f.column, f.entity, f.share, f.confidence,
                             "not in any bound contract" if session else "no purpose bound",
                             "personal data outside the contract", _fix(session, direct)))
            continue
        product, col = found
        says = f"{col.classification}" + (f", {col.pii_entity}" if col.pii_entity else "")
        if col.classification == "public" or (direct and not col.identifier):
            out.append(Alert(frame, f.column, f.entity, f.share, f.confidence, says,
                             f"the contract of `{product}` classifies this column as "
                             f"{col.classification}", "tell the product owner; treat it as "
                             "personal data meanwhile"))
        elif col.pii_entity and col.pii_entity != f.entity:
            out.append(Alert(frame, f.column, f.entity, f.share, f.confidence, says,
                             f"the contract expects {col.pii_entity}",
                             "check the column; tell the product owner if the contract is wrong"))
        if direct and not (session.access == "raw-rows" and _allowed(session, product,
                                                                      f.column)):
            out.append(Alert(frame, f.column, f.entity, f.share, f.confidence, says,
                             f"purpose `{session.purpose}` ({session.access}) does not allow "
                             "raw identifiers in the notebook", _fix(session, direct)))
    return out


def _fix(session: "Session | None", direct: bool) -> str:
    if session is None:
        return "bind a purpose (%mesh_bind) that allows this data, or drop the column"
    if direct:
        return ("drop the column (df.drop(columns=[...])), pseudonymize it, or bind a purpose "
                "that allows it")
    return "generalize or drop the column, or bind a purpose that allows it"
