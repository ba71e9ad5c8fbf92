"""Purpose requests: an analyst asks for a purpose whose contract names approvers; an
approver approves or denies it. Each step is stored in the server's database and appended to
every involved product's ledger (``purpose.requested``, ``purpose.approved``,
``purpose.denied``) with names, ids and the stated reasons, never a data value.
"""

from __future__ import annotations

import secrets

from ..errors import MeshError, NotFound, PolicyViolation
from ..mesh import Mesh
from ..values import PurposeRequest
from .db import ServerDb, iso, utcnow


def needs_approval(mesh: Mesh, products: list[str], purpose: str) -> list[str]:
    """Approvers named by the products' declarations of ``purpose`` (empty: none needed)."""
    found: list[str] = []
    for name in products:
        spec = mesh.product(name).contract.purpose(purpose)
        if spec is not None:
            found += [a for a in spec.approvers if a not in found]
    return found


class Approvals:
    """Purpose requests of one mesh, kept in the server's database."""

    def __init__(self, db: ServerDb, mesh: Mesh):
        self.db, self.mesh = db, mesh

    def _row(self, row: tuple) -> PurposeRequest:
        rid, analyst, products, purpose, reason, status, created, decided, by, note = row
        return PurposeRequest(rid, analyst, tuple(products.split(",")), purpose, reason, status,
                              created, decided, by, note)

    def _ledger(self, kind: str, req: PurposeRequest, **details: object) -> None:
        for name in req.products:
            self.mesh.product(name).ledger.append(
                kind, analyst=req.analyst, purpose=req.purpose,
                details={"products": list(req.products), "request": req.id, **details})

    def request(self, analyst: str, products: list[str], purpose: str,
                reason: str) -> PurposeRequest:
        """Record a request (``purpose.requested``); an open one for the same ask is reused."""
        names = sorted(dict.fromkeys(products))
        for name in names:
            if self.mesh.product(name).contract.purpose(purpose) is None:
                raise PolicyViolation("purpose-not-declared", f"product `{name}` does not "
                                      f"declare purpose `{purpose}`",
                                      "request one of its declared purposes")
        if not needs_approval(self.mesh, names, purpose):
            raise MeshError(f"purpose `{purpose}` needs no approval — bind it directly")
        for old in self.of(analyst):
            if old.status == "pending" and old.purpose == purpose and \
                    list(old.products) == names:
                return old
        req = PurposeRequest(secrets.token_hex(4), analyst, tuple(names), purpose, reason,
                             "pending", iso(utcnow()))
        with self.db.tx() as con:
            con.execute("INSERT INTO requests VALUES (?,?,?,?,?,?,?,?,?,?)",
                        (req.id, req.analyst, ",".join(req.products), req.purpose, req.reason,
                         req.status, req.created, None, None, None))
        self._ledger("purpose.requested", req, reason=reason)
        return req

    def get(self, request_id: str) -> PurposeRequest:
        rows = self.db.query("SELECT * FROM requests WHERE id = ?", (request_id,))
        if not rows:
            raise NotFound(f"no purpose request `{request_id}` — see `mesh-nb requests`")
        return self._row(rows[0])

    def of(self, analyst: str | None = None, status: str | None = None) -> list[PurposeRequest]:
        """Requests, oldest first, optionally of one analyst and/or in one status."""
        rows = self.db.query(
            "SELECT * FROM requests WHERE (? IS NULL OR analyst = ?) AND (? IS NULL OR "
            "status = ?) ORDER BY created, rowid", (analyst, analyst, status, status))
        return [self._row(r) for r in rows]

    def decide(self, request_id: str, approve: bool, approver: str,
               note: str | None = None) -> PurposeRequest:
        """Approve or deny a pending request, as ``approver`` (one the contracts name)."""
        req = self.get(request_id)
        if req.status != "pending":
            raise MeshError(f"request {req.id} is already {req.status}")
        allowed = needs_approval(self.mesh, list(req.products), req.purpose)
        if approver not in allowed:
            raise MeshError(f"`{approver}` is not an approver of purpose `{req.purpose}` — "
                            f"decide as one of: {', '.join(allowed)} (--as NAME)")
        status = "approved" if approve else "denied"
        with self.db.tx() as con:
            done = con.execute("UPDATE requests SET status = ?, decided = ?, decided_by = ?, "
                               "note = ? WHERE id = ? AND status = 'pending'",
                               (status, iso(utcnow()), approver, note, req.id)).rowcount
        if not done:
            raise MeshError(f"request {req.id} was decided meanwhile")
        req = self.get(req.id)
        extra = {"reason": note} if note else {}
        self._ledger(f"purpose.{status}", req, approver=approver, **extra)
        return req

    def approved(self, analyst: str, products: list[str], purpose: str) -> bool:
        """Whether an approved request of ``analyst`` covers ``purpose`` on every product."""
        covered: set[str] = set()
        for req in self.of(analyst, "approved"):
            if req.purpose == purpose:
                covered |= set(req.products)
        return set(products) <= covered

    def check_bind(self, analyst: str, products: list[str], purpose: str) -> None:
        """PolicyViolation ``approval-required`` unless the purpose needs none or is approved."""
        approvers = needs_approval(self.mesh, products, purpose)
        if not approvers or self.approved(analyst, products, purpose):
            return
        pending = [r.id for r in self.of(analyst, "pending") if r.purpose == purpose]
        state = (f"request {', '.join(pending)} is pending" if pending
                 else "request it from the notebook: m.request(products, purpose, reason=...) "
                      "(magic: %mesh_bind ... --request REASON)")
        raise PolicyViolation(
            "approval-required",
            f"purpose `{purpose}` needs approval by {', '.join(approvers)}",
            f"{state}; the session binds once an approver approves")
