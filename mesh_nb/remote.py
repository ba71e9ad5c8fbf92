"""The analyst's client of the owner's mesh server: the same API as a local mesh.

``open_mesh("https://mesh.example.org", token=...)`` (or ``$MESH_TOKEN``) returns a
:class:`~mesh_nb.Mesh` whose products are the server's contracts and whose sessions run on an
:class:`HttpBackend`: magics, widgets and the lab extension work unchanged, and
``query``/``rows``/``explain``/``fit``/``budget`` return the same ``Release``/
``RowRelease``/``Explanation``/``ModelRelease``/``BudgetStatus`` objects, rebuilt through
their ``from_wire``.
Refusals come back as the same exceptions (PolicyViolation with its rule, BudgetExceeded).

Who the analyst is comes from the token: the server refuses any other name.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from .contract import Contract, load_contract_text
from .errors import BudgetExceeded, MeshError, PolicyViolation, QueryFailed
from .ledger.entry import Entry
from .server import wire
from .session import FitRequest, Session
from .values import BudgetStatus, Explanation, ModelRelease, PurposeRequest, Release, RowRelease

if TYPE_CHECKING:
    from .mesh import Mesh

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
        self.analyst = ""  # the token's name, from /whoami
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


@dataclass
class HttpBackend:
    """A session's work on the owner's server (:class:`~mesh_nb.session.Backend`): the server
    checks, reserves, runs and draws the noise; values come back through ``from_wire``."""

    client: Client

    def _call(self, session: Session, what: str, body: dict | None = None,
              method: str = "POST") -> Any:
        return self.client.call(method, f"/sessions/{session.id}/{what}", body=body)

    def query(self, session: Session, sql: str, *, epsilon: float | None,
              delta: float | None, mechanism: str) -> Release:
        return Release.from_wire(self._call(session, "query", {
            "sql": sql, "epsilon": epsilon, "delta": delta, "mechanism": mechanism}))

    def rows(self, session: Session, sql: str) -> RowRelease:
        return RowRelease.from_wire(self._call(session, "rows", {"sql": sql}))

    def explain(self, session: Session, sql: str, *, epsilon: float | None,
                delta: float | None, mechanism: str) -> Explanation:
        return Explanation.from_wire(self._call(session, "explain", {
            "sql": sql, "epsilon": epsilon, "delta": delta, "mechanism": mechanism}))

    def fit(self, session: Session, request: FitRequest) -> ModelRelease:
        """Train on the owner's server; the model is rebuilt here from its parameters and card
        (the same :func:`~mesh_nb.query.fit.build_model` as the server's)."""
        body = asdict(request)  # FitRequest's fields are the wire's FitBody's
        return ModelRelease.from_wire(self._call(session, "fit", {
            **body, "features": list(body["features"])}))

    def budgets(self, session: Session) -> tuple[BudgetStatus, ...]:
        session.check_open()  # the server has forgotten an ended session
        return tuple(BudgetStatus.from_wire(b)
                     for b in self._call(session, "budget", method="GET"))

    def record(self, session: Session, kind: str, details: dict[str, Any],
               products: tuple) -> None:
        """Only ``pii.detected``: the server adds who and which purpose, to every bound product.

        The report is fitted to the wire's limits first (:func:`wire.pii_report`), and once
        the session has sent as many reports as the server takes, later ones are dropped:
        a scan's bookkeeping never fails the analyst's cell."""
        if kind != "pii.detected":
            raise MeshError("the ledger is the owner's: a notebook adds only its PII scan "
                            "findings to a bound session")
        report = wire.pii_report(details.get("frame", "frame"), list(details.get("columns", [])),
                                 dict(details.get("entity_types", {})), details.get("rows", 0))
        try:
            self._call(session, "pii", report.model_dump())
        except RemoteError as exc:
            if exc.rule != wire.PII_CAP_RULE:
                raise

    def end(self, session: Session) -> None:
        try:
            self.client.call("DELETE", f"/sessions/{session.id}")
        except RemoteError as exc:
            if exc.status != 404:  # already gone on the server (restart, too many sessions)
                raise


def bind(mesh: "Mesh", client: Client, bound: tuple, purpose: str, analyst: str | None,
         acknowledge: bool) -> Session:
    """Bind a session over ``bound`` products on the server. ``analyst``, if given, must be
    the token's name."""
    s = client.call("POST", "/sessions", {
        "products": [p.name for p in bound], "purpose": purpose,
        "acknowledge": acknowledge, "analyst": analyst})
    return Session(mesh, bound, s["purpose"], s["analyst"], s["id"],
                   datetime.fromisoformat(s["started"]), s["acknowledged"],
                   backend=HttpBackend(client))


def request(client: Client, products: list[str], purpose: str, reason: str) -> PurposeRequest:
    """Ask the approvers for a purpose that needs approval."""
    return _request(client.call("POST", "/requests", {"products": products,
                                                      "purpose": purpose, "reason": reason}))


def requests(client: Client) -> list[PurposeRequest]:
    """This analyst's purpose requests and their status."""
    return [_request(r) for r in client.call("GET", "/requests")]


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


def connect(url: str, token: str | None = None, *, timeout: float = 120.0,
            allow_insecure_http: bool = False) -> tuple[Client, dict[str, RemoteProduct]]:
    """A client of the owner's server at ``url`` with ``token`` (default: ``$MESH_TOKEN``), and
    the products it publishes. Plain http is for loopback only unless ``allow_insecure_http``."""
    url = checked_url(url, allow_insecure_http=allow_insecure_http)
    token = token or os.environ.get(TOKEN_ENV)
    if not token:
        raise MeshError(f"no token for {url} — pass token=... or set ${TOKEN_ENV} "
                        "(the data owner issues one: mesh-nb token add NAME)")
    client = Client(url, token, timeout=timeout)
    client.analyst = client.call("GET", "/whoami")["analyst"]
    products = {c["name"]: RemoteProduct(load_contract_text(c["yaml"], name_hint=c["name"]),
                                         RemoteLedger(client, c["name"]))
                for c in client.call("GET", "/products")}  # data files stay on the server
    return client, products
