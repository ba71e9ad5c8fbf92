"""The analyst's client of the owner's mesh server: the same API as a local mesh.

``open_mesh("https://mesh.example.org", token=...)`` (or ``$MESH_TOKEN``) returns a
:class:`RemoteMesh`; its :meth:`~RemoteMesh.bind` returns a :class:`RemoteSession`. Both are
subclasses of :class:`~mesh_nb.Mesh` and :class:`~mesh_nb.Session`, so magics, widgets and the
lab extension work unchanged, and ``query``/``rows``/``explain``/``budget`` return the same
``Release``/``RowRelease``/``Explanation``/``BudgetStatus`` objects, rebuilt from the wire.
Refusals come back as the same exceptions (PolicyViolation with its rule, BudgetExceeded).

Who the analyst is comes from the token: the server refuses any other name.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

import httpx

from .contract import CONTRACT_FILE, Contract, load_contract
from .errors import BudgetExceeded, MeshError, PolicyViolation, QueryFailed
from .ledger.entry import Entry
from .mesh import Mesh, product_names
from .server import wire
from .server.approvals import PurposeRequest
from .session import BudgetStatus, Session

TOKEN_ENV = "MESH_TOKEN"


class RemoteError(MeshError):
    """The server refused a request for a reason other than policy or budget."""

    def __init__(self, status: int, kind: str, message: str, rule: str | None = None):
        self.status, self.kind, self.rule = status, kind, rule
        super().__init__(f"mesh server ({status}): {message}")


def raise_for(response: httpx.Response) -> None:
    """Turn an error body back into the exception the server raised."""
    if response.status_code < 400:
        return
    try:
        err = response.json()["error"]
    except Exception:
        raise RemoteError(response.status_code, "http", response.text[:200]
                          or response.reason_phrase) from None
    if err.get("type") == "policy":
        raise PolicyViolation(err["rule"], err["what"], err["fix"])
    if err.get("type") == "budget":
        raise BudgetExceeded(**err["budget"])
    if err.get("type") == "failed":
        raise QueryFailed(**err["failed"])
    raise RemoteError(response.status_code, err.get("type", "?"), err.get("message", ""),
                      err.get("rule"))


class Client:
    """One keep-alive HTTP connection pool to the server, with the token on every request."""

    def __init__(self, url: str, token: str, *, timeout: float = 120.0):
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url + wire.API, timeout=timeout,
                                 headers={"Authorization": f"Bearer {token}"})

    def call(self, method: str, path: str, body: dict | None = None,
             params: dict | None = None) -> Any:
        try:
            r = self.http.request(method, path, json=body, params=params)
        except httpx.TransportError as exc:
            raise MeshError(f"cannot reach the mesh server at {self.url} "
                            f"({type(exc).__name__}) — is `mesh-nb serve` running?") from None
        raise_for(r)
        return None if r.status_code == 204 else r.json()

    def close(self) -> None:
        self.http.close()


def _contract(name: str, text: str) -> Contract:
    """A contract as the server publishes it (its data files stay on the server)."""
    with tempfile.TemporaryDirectory(prefix="mesh_nb-") as tmp:
        folder = Path(tmp) / name
        folder.mkdir()
        (folder / CONTRACT_FILE).write_text(text, encoding="utf-8")
        return load_contract(folder, count_rows=False)


@dataclass
class RemoteLedger:
    """The analyst's view of one product's ledger on the server: their own entries only."""

    client: Client
    product: str

    def entries(self, kind: str | None = None, purpose: str | None = None,
                analyst: str | None = None, since: datetime | str | None = None,
                session: str | None = None) -> list[Entry]:
        """This token's entries, filtered as :meth:`mesh_nb.ledger.Ledger.entries` does."""
        params = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in
                  (("kind", kind), ("purpose", purpose), ("since", since),
                   ("session", session)) if v is not None}
        found = self.client.call("GET", f"/products/{self.product}/entries", params=params)
        entries = [Entry.parse(e["body"], e["hash"], e["sig"]) for e in found]
        return [e for e in entries if analyst is None or e.analyst == analyst]

    def __len__(self) -> int:
        return len(self.entries())

    def append(self, kind: str, *, session: str | None = None, details: dict | None = None,
               **_labels: Any) -> None:
        """Only ``pii.detected`` of a bound session: the server adds who and which purpose.

        The report is fitted to the wire's limits first (:func:`wire.pii_report`), and once
        the session has sent as many reports as the server takes, later ones are dropped:
        a scan's bookkeeping never fails the analyst's cell."""
        if kind != "pii.detected" or session is None:
            raise MeshError("the ledger is the owner's: a notebook adds only its PII scan "
                            "findings to a bound session")
        d = details or {}
        report = wire.pii_report(d.get("frame", "frame"), list(d.get("columns", [])),
                                 dict(d.get("entity_types", {})), d.get("rows", 0))
        try:
            self.client.call("POST", f"/sessions/{session}/pii", body=report.model_dump())
        except RemoteError as exc:
            if exc.rule != wire.PII_CAP_RULE:
                raise

    def verify(self, full: bool = False):
        raise MeshError("verifying the ledger is the owner's job — ask the data owner "
                        "(`mesh-nb ledger verify PRODUCT`)")


@dataclass(frozen=True)
class RemoteProduct:
    """A product as the analyst sees it through the server: its contract and a ledger view."""

    contract: Contract
    ledger: RemoteLedger

    @property
    def name(self) -> str:
        return self.contract.name


def _budget(b: dict) -> BudgetStatus:
    return BudgetStatus(**b)


@dataclass(repr=False)
class RemoteSession(Session):
    """A session bound on the server; the same methods as :class:`~mesh_nb.Session`."""

    @property
    def client(self) -> Client:
        return self.mesh.client  # type: ignore[attr-defined]

    def _call(self, what: str, body: dict | None = None, method: str = "POST") -> Any:
        self.check_open()
        return self.client.call(method, f"/sessions/{self.id}/{what}", body=body)

    def budgets(self) -> tuple[BudgetStatus, ...]:
        """Spent and remaining budget of every bound product (one request)."""
        return tuple(_budget(b) for b in self._call("budget", method="GET"))

    def budget(self, product: str | None = None) -> BudgetStatus:
        name = self.product(product).name
        return next(b for b in self.budgets() if b.product == name)

    def query(self, sql: str, *, epsilon: float | None = None, delta: float | None = None,
              mechanism: str = "laplace"):
        """As :meth:`mesh_nb.Session.query`; the server draws the noise."""
        from .query.release import Release

        r = self._call("query", {"sql": sql, "epsilon": epsilon, "delta": delta,
                                 "mechanism": mechanism})
        return Release(wire.frame_from_wire(r["frame"]), r["epsilon"], r["delta"],
                       wire.frame_from_wire(r["accuracy"]), r["sql"], r["purpose"],
                       tuple(r["products"]), tuple(r["notes"]), r["release_id"], r["cached"],
                       r["remaining"])

    def rows(self, sql: str):
        """As :meth:`mesh_nb.Session.rows`: rows of allowed columns, as the purpose releases."""
        from .query.rows import RowRelease

        r = self._call("rows", {"sql": sql})
        return RowRelease(wire.frame_from_wire(r["frame"]), r["purpose"], tuple(r["products"]),
                          tuple(r["tokenized"]), tuple(r["generalized"]), r["sql"],
                          r["release_id"])

    def explain(self, sql: str, *, epsilon: float | None = None, delta: float | None = None,
                mechanism: str = "laplace"):
        """As :meth:`mesh_nb.Session.explain`; spends nothing."""
        from .query.runner import Explanation

        r = self._call("explain", {"sql": sql, "epsilon": epsilon, "delta": delta,
                                   "mechanism": mechanism})
        return Explanation(r["sql"], plan_from_wire(r["plan"]), wire.frame_from_wire(r["table"]))

    @property
    def engine(self):
        raise MeshError("the engine runs on the owner's server — query through the session")

    def end(self) -> None:
        """End the session on the server (``session.ended``). Idempotent."""
        if self.ended:
            return
        self.ended = True
        try:
            self.client.call("DELETE", f"/sessions/{self.id}")
        except RemoteError as exc:
            if exc.status != 404:  # already gone on the server (restart, too many sessions)
                raise

    def __repr__(self) -> str:
        return super().__repr__().replace("<Session", "<RemoteSession", 1)


def plan_from_wire(d: dict):
    """A :class:`~mesh_nb.query.plan.Plan` from its ``dataclasses.asdict`` form."""
    from .query.plan import Measurement, Output, Plan

    def tup(v: Any) -> Any:
        return tuple(tup(x) for x in v) if isinstance(v, list) else v

    return Plan(**{**{k: tup(v) for k, v in d.items()},
                   "measurements": tuple(Measurement(**m) for m in d["measurements"]),
                   "outputs": tuple(Output(**{k: tup(v) for k, v in o.items()})
                                    for o in d["outputs"])})


@dataclass(repr=False)
class RemoteMesh(Mesh):
    """The products an owner's server publishes; bind as with a local :class:`~mesh_nb.Mesh`."""

    client: Client | None = field(default=None, repr=False)
    analyst: str = ""

    def bind(self, products: str | Iterable[str], purpose: str, analyst: str | None = None,
             *, acknowledge: bool = False, **options: Any) -> RemoteSession:
        """Bind a session on the server. ``analyst``, if given, must be the token's name."""
        if any(v is not None for v in options.values()):
            raise MeshError("the owner's server chooses the engine — bind without "
                            f"{', '.join(options)}")
        names = product_names(products)
        bound = tuple(self.product(n) for n in names)
        s = self.client.call("POST", "/sessions", {
            "products": [p.name for p in bound], "purpose": purpose,
            "acknowledge": acknowledge, "analyst": analyst})
        return RemoteSession(self, bound, s["purpose"], s["analyst"], s["id"],
                             datetime.fromisoformat(s["started"]), s["acknowledged"])

    def request(self, products: str | Iterable[str], purpose: str, reason: str
                ) -> PurposeRequest:
        """Ask the approvers for a purpose that needs approval; bind once it is approved."""
        names = product_names(products)
        r = self.client.call("POST", "/requests", {"products": names, "purpose": purpose,
                                                   "reason": reason})
        return _request(r)

    def requests(self) -> list[PurposeRequest]:
        """This analyst's purpose requests and their status."""
        return [_request(r) for r in self.client.call("GET", "/requests")]

    def close(self) -> None:
        self.client.close()

    def __repr__(self) -> str:
        return (f"<RemoteMesh {self.root} as {self.analyst}: "
                f"{', '.join(sorted(self.products))}>")


def _request(r: dict) -> PurposeRequest:
    return PurposeRequest(**{**r, "products": tuple(r["products"])})


def _loopback(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def checked_url(url: str, *, allow_insecure_http: bool = False) -> str:
    """``url`` with its scheme and host in lower case; plain http to another machine is
    refused (the bearer token would cross the network unencrypted) unless allowed."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise MeshError(f"not a server URL: {url[:200]!r} — e.g. https://mesh.example.org")
    if scheme == "http" and not _loopback(parts.hostname) and not allow_insecure_http:
        raise MeshError(f"refusing to send the token over plain http to {parts.hostname}: "
                        "anyone on the network could read it — use https://, or pass "
                        "allow_insecure_http=True (magic: --insecure) on a network you trust")
    return urlunsplit((scheme, parts.netloc.lower(), parts.path, parts.query, parts.fragment))


def open_remote(url: str, token: str | None = None, *, timeout: float = 120.0,
                allow_insecure_http: bool = False) -> RemoteMesh:
    """Connect to the owner's server at ``url`` with ``token`` (default: ``$MESH_TOKEN``).
    Plain http is for loopback only unless ``allow_insecure_http``."""
    url = checked_url(url, allow_insecure_http=allow_insecure_http)
    token = token or os.environ.get(TOKEN_ENV)
    if not token:
        raise MeshError(f"no token for {url} — pass token=... or set ${TOKEN_ENV} "
                        "(the data owner issues one: mesh-nb token add NAME)")
    client = Client(url, token, timeout=timeout)
    who = client.call("GET", "/whoami")
    products = {c["name"]: RemoteProduct(_contract(c["name"], c["yaml"]),
                                         RemoteLedger(client, c["name"]))
                for c in client.call("GET", "/products")}
    return RemoteMesh(client.url, products, client=client, analyst=who["analyst"])  # type: ignore[arg-type]
