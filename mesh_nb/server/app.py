"""The owner's mesh server: the data product as the point of access.

:func:`create_app` serves the products under one folder. Analysts authenticate with a token
(their identity; whatever name a client claims is refused if it differs), bind sessions to the
purposes their token allows, and get back only what the purpose's access mode releases. Every
query runs through the same in-process :class:`~mesh_nb.session.Session` as local mode, so
the policy check, the budget reserved in the ledger and the ledger entries are the same code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Callable, TypeVar

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from ..errors import BudgetExceeded, MeshError, NotFound, PolicyViolation, QueryFailed
from ..mesh import Mesh, ProductBroken, open_mesh
from ..session import FitRequest, Session
from ..values import BudgetStatus, PurposeRequest
from . import wire
from .approvals import Approvals
from .db import ServerDb, iso
from .limits import MAX_BODY, Guard, RateLimited, RateLimiter
from ..text import escape, without_paths
from .sessions import Capacity, ServerBusy, SessionBusy, SessionRegistry
from .tokens import AuthError, Token, TokenStore

log = logging.getLogger("mesh_nb.server")

T = TypeVar("T")


class ServerFault(MeshError):
    """An unexpected error while serving: the analyst sees a reference, never its message."""


@dataclass
class MeshServer:
    """The server's state: the mesh, its token and request stores, the sessions, and the
    query workers (queries run there, off the request threads)."""

    mesh: Mesh
    db: ServerDb
    tokens: TokenStore
    approvals: Approvals
    sessions: SessionRegistry
    limiter: RateLimiter = field(default_factory=RateLimiter)
    pool: ThreadPoolExecutor | None = None

    def __post_init__(self) -> None:
        if self.pool is None:
            self.pool = ThreadPoolExecutor(self.sessions.capacity.workers,
                                           thread_name_prefix="mesh-nb-query")

    async def work(self, token: Token, sid: str, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` on the token's session in a query worker, the session claimed for it
        (busy session or token: refused at once). The claim is released when ``fn`` ends,
        not when the client goes away: a session never runs two queries."""
        claim = await run_in_threadpool(self.sessions.claim, token, sid)
        try:
            future = self.pool.submit(_guarded, lambda: fn(claim.session))
        except BaseException:
            claim.release()
            raise
        future.add_done_callback(lambda _: claim.release())
        return await asyncio.wrap_future(future)

    def shutdown(self) -> None:
        """Stop taking work; sessions stay bound (rows in the server database)."""
        self.sessions.shutdown()
        self.pool.shutdown(wait=False, cancel_futures=True)


#: Ledger kinds the analyst's view of their own entries leaves out.
ANALYST_HIDDEN = frozenset({"query.failed"})


def _guarded(fn: Callable[[], T]) -> T:
    """Run ``fn``; an error that is not a MeshError becomes a :class:`ServerFault`, whose
    message names nothing about the error (not even its class: that could follow the data)."""
    try:
        return fn()
    except MeshError:
        raise
    except Exception:
        raise ServerFault("the server could not complete the request — tell the data "
                          "owner") from None


def _session_out(s: Session) -> wire.SessionOut:
    return wire.SessionOut(id=s.id, products=list(s.product_names), purpose=s.purpose,
                           analyst=s.analyst, access=s.access, started=iso(s.started),
                           acknowledged=s.acknowledged)


def _request_out(r: PurposeRequest) -> wire.PurposeRequestOut:
    return wire.PurposeRequestOut(**{**dataclasses.asdict(r), "products": list(r.products)})


def _error(status: int, kind: str, message: str, *, root: Path | None = None,
           **extra: Any) -> JSONResponse:
    """The ``{"error": ...}`` response; its texts name no path of the server's machine."""
    texts = {k: without_paths(v, root) for k, v in (("message", message), *extra.items())
             if isinstance(v, str)}
    body = wire.ErrorOut(type=kind, **{**extra, **texts}).model_dump(exclude_none=True)
    return JSONResponse({"error": body}, status_code=status)


def _note(request: Request, **items: str) -> None:
    request.scope.setdefault("mesh_nb", {}).update(items)


def create_app(mesh_dir: str | Path, *, max_body: int = MAX_BODY,
               capacity: Capacity | None = None) -> FastAPI:
    """The ASGI app serving the products under ``mesh_dir`` (tokens: ``mesh-nb token``).

    ``capacity``: query workers, queries per token, idle session expiry (default: from
    the environment, :meth:`Capacity.from_env`).
    """
    mesh = open_mesh(mesh_dir)
    db = ServerDb(mesh.root)
    srv = MeshServer(mesh, db, TokenStore(db), Approvals(db, mesh),
                     SessionRegistry(mesh, db, capacity))
    app = FastAPI(title="mesh_nb server", version="1", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.mesh_server = srv
    app.add_middleware(Guard, max_body=max_body)
    app.router.add_event_handler("startup", srv.sessions.start_timer)
    app.router.add_event_handler("shutdown", srv.shutdown)
    _handlers(app)

    def who(request: Request) -> Token:
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        token = srv.tokens.check(secret.strip() if scheme.lower() == "bearer" else None)
        _note(request, token=token.name)
        srv.limiter.take(token.id, token.rate)
        return token

    v1 = wire.API

    @app.get(f"{v1}/health")
    async def health() -> dict:  # on the event loop: answers while every worker is busy
        return {"ok": True}

    @app.get(f"{v1}/whoami", response_model=wire.WhoAmI)
    def whoami(token: Token = Depends(who)) -> wire.WhoAmI:
        return wire.WhoAmI(analyst=token.name, purposes=list(token.purposes),
                           expires=token.expires)

    @app.get(f"{v1}/products", response_model=list[wire.ContractOut])
    def products(token: Token = Depends(who)) -> list[wire.ContractOut]:
        return [wire.ContractOut(name=p.name, yaml=p.contract.path.read_text(encoding="utf-8"))
                for p in srv.mesh.products.values()]

    @app.post(f"{v1}/sessions", response_model=wire.SessionOut)
    def bind(body: wire.BindRequest, token: Token = Depends(who)) -> wire.SessionOut:
        if body.analyst is not None and body.analyst != token.name:
            raise PolicyViolation("identity", f"this token is `{token.name}`'s; a session "
                                  "cannot be bound for another analyst",
                                  "leave analyst out: the token says who you are")
        if not token.allows(body.purpose):
            raise PolicyViolation(
                "purpose-not-granted", f"the token of `{token.name}` is not issued for "
                f"purpose `{body.purpose}` (it allows: {', '.join(token.purposes)})",
                "bind a purpose the token allows, or ask the owner for a token for it")
        names = [n.strip() for name in body.products for n in name.split(",") if n.strip()]
        srv.approvals.check_bind(token.name, names, body.purpose)
        session = _guarded(lambda: srv.mesh.bind(body.products, purpose=body.purpose,
                                                 analyst=token.name,
                                                 acknowledge=body.acknowledge))
        srv.sessions.open(token, session)
        return _session_out(session)

    @app.delete(f"{v1}/sessions/{{sid}}", status_code=204)
    def end(sid: str, token: Token = Depends(who)) -> Response:
        srv.sessions.close(token, sid)
        return Response(status_code=204)

    def run(token: Token, sid: str, fn: Callable[[Session], T]) -> T:
        """Light work on the session (ledger reads and notes): on the request thread, beside
        a query the session may be running."""
        session = srv.sessions.bound(token, sid).session
        session.check_open()
        return _guarded(lambda: fn(session))

    @app.get(f"{v1}/sessions/{{sid}}/budget", response_model=list[BudgetStatus])
    def budget(sid: str, token: Token = Depends(who)) -> list:
        return [b.to_wire() for b in run(token, sid, lambda s: s.budgets())]

    @app.post(f"{v1}/sessions/{{sid}}/query", response_model=wire.ReleaseOut)
    async def query(sid: str, body: wire.QueryRequest,
                    token: Token = Depends(who)) -> wire.ReleaseOut:
        return await srv.work(token, sid, lambda s: wire.ReleaseOut(**s.query(
            body.sql, epsilon=body.epsilon, delta=body.delta, mechanism=body.mechanism
        ).to_wire()))

    @app.post(f"{v1}/sessions/{{sid}}/explain", response_model=wire.ExplanationOut)
    async def explain(sid: str, body: wire.QueryRequest,
                      token: Token = Depends(who)) -> wire.ExplanationOut:
        return await srv.work(token, sid, lambda s: wire.ExplanationOut(**s.explain(
            body.sql, epsilon=body.epsilon, delta=body.delta, mechanism=body.mechanism
        ).to_wire()))

    @app.post(f"{v1}/sessions/{{sid}}/rows", response_model=wire.RowReleaseOut)
    async def rows(sid: str, body: wire.RowsRequest,
                   token: Token = Depends(who)) -> wire.RowReleaseOut:
        return await srv.work(token, sid,
                              lambda s: wire.RowReleaseOut(**s.rows(body.sql).to_wire()))

    @app.post(f"{v1}/sessions/{{sid}}/fit", response_model=wire.ModelReleaseOut)
    async def fit(sid: str, body: wire.FitBody,
                  token: Token = Depends(who)) -> wire.ModelReleaseOut:
        """Train a DP model in a query worker (the session claimed, like a query); only its
        parameters and card come back."""
        request = FitRequest(**{**body.model_dump(), "features": tuple(body.features)})
        return await srv.work(token, sid, lambda s: wire.ModelReleaseOut(
            **s.backend.fit(s, request).to_wire()))

    @app.post(f"{v1}/sessions/{{sid}}/pii", status_code=204)
    def pii(sid: str, body: wire.PiiReport,
            token: Token = Depends(who)) -> Response:
        s = srv.sessions.count_pii_report(token, sid, wire.MAX_PII_REPORTS)

        _guarded(lambda: s.record("pii.detected", body.model_dump()))
        return Response(status_code=204)

    @app.get(f"{v1}/products/{{name}}/entries", response_model=list[wire.EntryOut])
    def entries(name: str, q: Annotated[wire.EntriesQuery, Query()],
                token: Token = Depends(who)) -> list[wire.EntryOut]:
        """The token's own entries in one product's ledger (never another analyst's), less
        ``query.failed``: its failure class could depend on a person's data (the analyst
        already knows the query failed, and its charge is the ``query.released`` entry)."""
        found = srv.mesh.product(name).ledger.entries(
            kind=q.kind, purpose=q.purpose, analyst=token.name, session=q.session,
            since=q.since)
        return [wire.EntryOut(body=e.body_json(), hash=e.hash, sig=e.sig) for e in found
                if e.kind not in ANALYST_HIDDEN]

    @app.post(f"{v1}/requests", response_model=wire.PurposeRequestOut)
    def ask(body: wire.PurposeRequestBody, token: Token = Depends(who)) -> wire.PurposeRequestOut:
        if not token.allows(body.purpose):
            raise PolicyViolation("purpose-not-granted", f"the token of `{token.name}` is not "
                                  f"issued for purpose `{body.purpose}`",
                                  "ask the owner for a token for it")
        return _request_out(srv.approvals.request(token.name, body.products, body.purpose,
                                                  body.reason))

    @app.get(f"{v1}/requests", response_model=list[wire.PurposeRequestOut])
    def my_requests(token: Token = Depends(who)) -> list[wire.PurposeRequestOut]:
        return [_request_out(r) for r in srv.approvals.of(token.name)]

    @app.get(f"{v1}/requests/{{rid}}", response_model=wire.PurposeRequestOut)
    def my_request(rid: str, token: Token = Depends(who)) -> wire.PurposeRequestOut:
        r = srv.approvals.get(rid)
        if r.analyst != token.name:
            raise NotFound(f"no purpose request `{rid}` of yours")
        return _request_out(r)

    return app


def _loc_part(part: object) -> str:
    """A part of a validation error's location: a field name or index, never a client's key
    (a dict key is the client's text and may be a value)."""
    text = str(part)
    return text if isinstance(part, int) or re.fullmatch(r"[a-z_][a-z0-9_]{0,40}", text) \
        else "…"


def _handlers(app: FastAPI) -> None:
    """Errors as ``{"error": {...}}`` bodies the client turns back into the same exceptions."""

    @app.exception_handler(AuthError)
    async def auth(request: Request, exc: AuthError) -> JSONResponse:
        response = _error(401, "auth", str(exc))
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(RateLimited)
    async def rate(request: Request, exc: RateLimited) -> JSONResponse:
        response = _error(429, "rate", str(exc))
        response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        return response

    @app.exception_handler(SessionBusy)
    async def busy(request: Request, exc: SessionBusy) -> JSONResponse:
        _note(request, rule="session-busy")
        return _error(409, "busy", str(exc), rule="session-busy")

    @app.exception_handler(ServerBusy)
    async def full(request: Request, exc: ServerBusy) -> JSONResponse:
        _note(request, rule=exc.rule)
        response = _error(429, "busy", str(exc), rule=exc.rule)
        response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        return response

    @app.exception_handler(PolicyViolation)
    async def policy(request: Request, exc: PolicyViolation) -> JSONResponse:
        _note(request, rule=exc.rule)
        return _error(403, "policy", str(exc), rule=exc.rule, what=exc.what, fix=exc.fix,
                      root=request.app.state.mesh_server.mesh.root)

    @app.exception_handler(BudgetExceeded)
    async def budget(request: Request, exc: BudgetExceeded) -> JSONResponse:
        _note(request, rule="budget-exceeded")
        fields = {k: getattr(exc, k) for k in ("product", "purpose", "analyst", "requested",
                                                "remaining", "requested_delta",
                                                "remaining_delta")}
        return _error(409, "budget", str(exc), budget=fields)

    @app.exception_handler(QueryFailed)
    async def failed(request: Request, exc: QueryFailed) -> JSONResponse:
        _note(request, rule=exc.rule)
        return _error(422, "failed", str(exc), rule=exc.rule,
                      failed={"release_id": exc.release_id, "epsilon": exc.epsilon,
                              "delta": exc.delta})

    @app.exception_handler(ServerFault)
    async def fault(request: Request, exc: ServerFault) -> JSONResponse:
        _note(request, error="engine")
        return _error(500, "internal", str(exc))

    @app.exception_handler(MeshError)
    async def mesh(request: Request, exc: MeshError) -> JSONResponse:
        status = 404 if isinstance(exc, NotFound) else 400
        # a broken product's problems are the owner's to read: the analyst learns it is down
        text = exc.public() if isinstance(exc, ProductBroken) else str(exc)
        return _error(status, "mesh", text, root=request.app.state.mesh_server.mesh.root)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # loc and msg only: pydantic's error also carries the input, which may hold a value
        parts = [f"{'.'.join(_loc_part(p) for p in e.get('loc', ()))}: "
                 f"{escape(e.get('msg', 'invalid'), 200)}" for e in exc.errors()[:5]]
        return _error(422, "request", "malformed request — " + "; ".join(parts))

    @app.exception_handler(HTTPException)
    async def http(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, "request", str(exc.detail))
