"""A session: one analyst, one declared purpose, one or more products, until it ends.

A :class:`Session` is the same object wherever its work runs; a :class:`Backend` does the
work: :class:`LocalBackend` in this process (the runner, over the owner's engine and ledgers),
:class:`mesh_nb.remote.HttpBackend` on the owner's server (``open_mesh(url)``).
"""

from __future__ import annotations

import atexit
import contextlib
import getpass
import os
import threading
import uuid
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable, Protocol

from .errors import MeshError
from .values import BudgetStatus, Explanation, ModelRelease, Release, RowRelease

if TYPE_CHECKING:
    from .mesh import Mesh, Product
    from .query.engines import Limits, QueryEngine


def resolve_analyst(explicit: str | None = None) -> str:
    """Who is working: explicit, else ``MESH_ANALYST``, else ``JUPYTERHUB_USER``, else the OS user."""
    for candidate in (explicit, os.environ.get("MESH_ANALYST"), os.environ.get("JUPYTERHUB_USER")):
        if candidate and candidate.strip():
            return candidate.strip()
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers)
        return f"uid-{os.getuid()}"


def warm_up() -> threading.Thread:
    """Load the query path (the runner; diffprivlib, which imports scikit-learn; sqlglot's
    DuckDB dialect: seconds in a fresh process) in a background thread, so a newly bound
    session's first query finds it loaded while the analyst writes it; it reads no data.
    Returns the (non-daemon) thread."""
    def load() -> None:
        try:
            import mesh_nb.query.runner  # noqa: F401 - the policy, plan and release stage
            from mesh_nb.query.parse import parse

            parse("SELECT 1")  # sqlglot loads its DuckDB dialect on first use
        except Exception:  # the first query imports it again and reports what fails
            pass

    thread = threading.Thread(target=load, name="mesh-nb-warm-up")
    _WARMING.append(thread)
    thread.start()
    return thread


_WARMING: list[threading.Thread] = []
"""Warm-up threads started in this process (joined before a fork: see below)."""


def _join_warm_up() -> None:
    """Before a fork, wait for every warm-up thread: a child forked mid-import inherits module
    locks held by a thread it does not have, and its next import would wait forever."""
    for thread in list(_WARMING):
        if thread is not threading.current_thread():
            thread.join()
    _WARMING[:] = [t for t in _WARMING if t.is_alive()]


_OPEN: "weakref.WeakValueDictionary[str, Session]" = weakref.WeakValueDictionary()
"""Local sessions bound in this process and not yet ended (ended when it exits normally)."""


def end_open_sessions() -> None:
    """End every session this process bound and did not end (``session.ended`` in their
    ledgers). Runs at a normal exit: a kernel shut down or restarted, a script that returns;
    a process killed by SIGKILL (or out of memory) runs nothing, and its sessions stay open."""
    for session in list(_OPEN.values()):
        with contextlib.suppress(Exception):  # one ledger out of reach spares no other
            session.end()


atexit.register(end_open_sessions)
if hasattr(os, "register_at_fork"):
    # a forked child has its parent's sessions in memory; only the parent ends them.
    # ``before`` hooks run in reverse order of registration: logging's (it holds logging's
    # lock across the fork) must be registered before ours, or joining a warm-up thread that
    # imports a module calling logging.getLogger (scikit-learn does) waits forever
    import logging  # noqa: F401

    os.register_at_fork(before=_join_warm_up, after_in_child=_OPEN.clear)


@dataclass(frozen=True)
class EngineOptions:
    """A session's engine choice; ``None`` fields defer to the contracts' servers."""

    engine: str | None = None  # "duckdb" | "spark"
    spark_remote: str | None = None  # Spark Connect URL, sc://host:port
    limits: "Limits | None" = None  # per-query time and memory (None: from the environment)

    @classmethod
    def checked(cls, engine: str | None = None, spark_remote: str | None = None,
                limits: "Limits | None" = None) -> "EngineOptions":
        """Options as given, or a MeshError saying what to pass instead."""
        from .query.engines import ENGINE_KINDS

        if engine is not None and engine not in ENGINE_KINDS:
            raise MeshError(f"unknown engine `{engine}` — use one of: {', '.join(ENGINE_KINDS)}")
        if spark_remote is not None and not str(spark_remote).startswith("sc://"):
            raise MeshError("spark_remote must be a Spark Connect URL — e.g. "
                            "sc://spark.example.org:15002")
        return cls(engine, spark_remote, limits)

    def resolve(self, products: tuple["Product", ...]) -> tuple[str | None, str | None]:
        """(engine kind, Connect URL): these options first, then the contracts' servers."""
        def declared(attr: str) -> str | None:
            found = {getattr(p.contract, attr): p.name for p in products
                     if getattr(p.contract, attr)}
            if len(found) > 1:
                raise MeshError(f"the bound products' contracts disagree on their {attr} "
                                f"({', '.join(f'{v}: {k}' for k, v in found.items())}) — "
                                "bind them in separate sessions or pass the engine options")
            return next(iter(found), None)

        if self.engine == "duckdb":
            return "duckdb", self.spark_remote
        if self.engine == "spark" or self.spark_remote:
            return "spark", self.spark_remote or declared("spark_remote")
        kind = declared("engine")
        remote = declared("spark_remote") if kind != "duckdb" else None
        return kind or ("spark" if remote else None), remote


class Backend(Protocol):
    """Where a bound session's work runs. Every method gets the session; ``query``, ``rows``
    and ``explain`` are never called on an ended session (:meth:`Session.check_open`)."""

    def query(self, session: "Session", sql: str, *, epsilon: float | None,
              delta: float | None, mechanism: str) -> Release: ...

    def rows(self, session: "Session", sql: str) -> RowRelease: ...

    def explain(self, session: "Session", sql: str, *, epsilon: float | None,
                delta: float | None, mechanism: str) -> Explanation: ...

    def fit(self, session: "Session", request: "FitRequest") -> ModelRelease: ...

    def budgets(self, session: "Session") -> tuple[BudgetStatus, ...]: ...

    def record(self, session: "Session", kind: str, details: dict[str, Any],
               products: "tuple[Product, ...]") -> None: ...

    def end(self, session: "Session") -> None: ...


@dataclass(frozen=True)
class FitRequest:
    """What :meth:`Session.fit` asks for, as both backends take it (the server's wire too)."""

    estimator: str
    features: tuple[str, ...]
    target: str | None = None
    epsilon: float | None = None
    where: str | None = None
    evaluate: bool | None = None
    table: str | None = None
    product: str | None = None
    options: dict = field(default_factory=dict)


@dataclass
class LocalBackend:
    """The session's work in this process: the runner, over an engine opened on first use
    (the sandboxed DuckDB by default, Spark when the options or the contracts choose it) and
    the products' own ledgers."""

    options: EngineOptions = field(default_factory=EngineOptions)
    engine: "QueryEngine | None" = field(default=None, repr=False)
    prepared: "OrderedDict[tuple, Any]" = field(default_factory=OrderedDict, repr=False)
    """Queries checked, planned and bound in ``engine`` (:func:`mesh_nb.query.runner.prepared`)."""

    def query(self, session: "Session", sql: str, *, epsilon: float | None,
              delta: float | None, mechanism: str) -> Release:
        from .query.runner import run

        return run(session, sql, epsilon=epsilon, delta=delta, mechanism=mechanism)

    def rows(self, session: "Session", sql: str) -> RowRelease:
        from .query.rows import run_rows

        return run_rows(session, sql)

    def explain(self, session: "Session", sql: str, *, epsilon: float | None,
                delta: float | None, mechanism: str) -> Explanation:
        from .query.runner import explain

        return explain(session, sql, epsilon=epsilon, delta=delta, mechanism=mechanism)

    def fit(self, session: "Session", request: "FitRequest") -> ModelRelease:
        from .query.fit import run_fit

        return run_fit(session, request.estimator, list(request.features), request.target,
                       epsilon=request.epsilon, where=request.where,
                       evaluate_model=request.evaluate, table=request.table,
                       options=dict(request.options), product=request.product)

    def budgets(self, session: "Session") -> tuple[BudgetStatus, ...]:
        out = []
        for p in session.products:
            spec = p.contract.purposes[session.purpose]
            if spec.budget is None:
                out.append(BudgetStatus(p.name, session.purpose, session.analyst, None, None,
                                        0.0, None, 0.0))
                continue
            eps, delta = p.ledger.spent(session.analyst, session.purpose, spec.budget)
            out.append(BudgetStatus(p.name, session.purpose, session.analyst,
                                    spec.budget.scope, spec.budget.epsilon, eps,
                                    spec.budget.delta, delta))
        return tuple(out)

    def record(self, session: "Session", kind: str, details: dict[str, Any],
               products: "tuple[Product, ...]") -> None:
        for p in products:
            p.ledger.append(kind, session=session.id, analyst=session.analyst,
                            purpose=session.purpose, details=details)

    def open_engine(self, products: "tuple[Product, ...]") -> "QueryEngine":
        """The engine over ``products``' tables, opened on first use."""
        if self.engine is None:
            from .query.checks import DataChecks
            from .query.engines import open_engine

            kind, remote = self.options.resolve(products)
            self.engine = open_engine(((p.name, t.name, t, p.contract.privacy_unit)
                                       for p in products for t in p.contract.tables),
                                      kind=kind, remote=remote, limits=self.options.limits,
                                      checks={p.name: DataChecks(p.owner_dir)
                                              for p in products})
        return self.engine

    def close_engine(self) -> None:
        """Free the engine (reopened on next use)."""
        self.prepared.clear()  # bound in the engine that closes
        if self.engine is not None:
            self.engine.close()
            self.engine = None

    def end(self, session: "Session") -> None:
        self.close_engine()
        self.record(session, "session.ended", {}, session.products)


@dataclass
class Session:
    """A bound session. Start one with :meth:`mesh_nb.Mesh.bind`."""

    mesh: "Mesh"
    products: tuple["Product", ...]
    purpose: str
    analyst: str
    id: str
    started: datetime
    acknowledged: bool = False
    ended: bool = field(default=False)
    backend: Backend = field(default_factory=LocalBackend, repr=False)

    @classmethod
    def start(cls, mesh: "Mesh", products: tuple["Product", ...], purpose: str, analyst: str,
              *, acknowledged: bool = False, options: EngineOptions | None = None
              ) -> "Session":
        """Create a local session and record ``session.bound`` in each product's ledger; it
        ends by :meth:`end`, else when this process exits normally (:func:`end_open_sessions`)."""
        s = cls(mesh, products, purpose, analyst, uuid.uuid4().hex[:16],
                datetime.now(timezone.utc), acknowledged,
                backend=LocalBackend(options or EngineOptions()))
        s.record("session.bound", {"products": list(s.product_names), "access": s.access,
                                   "acknowledged": acknowledged})
        _OPEN[s.id] = s
        if s.access == "dp-aggregate":
            warm_up()
        return s

    @property
    def access(self) -> str:
        """The access mode the purpose grants (the same on every bound product)."""
        return self.products[0].contract.purposes[self.purpose].access

    @property
    def product_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.products)

    def readers(self, names: "Iterable[str]") -> tuple["Product", ...]:
        """The bound products named in ``names`` (those a query reads), in binding order."""
        wanted = set(names)
        return tuple(p for p in self.products if p.name in wanted) or self.products[:1]

    def purpose_of(self, product: str | None = None):
        """The bound purpose as ``product`` declares it."""
        return self.product(product).contract.purposes[self.purpose]

    def product(self, name: str | None = None) -> "Product":
        """A bound product by name (default: the first); MeshError if it is not bound."""
        if name is None:
            return self.products[0]
        for p in self.products:
            if p.name == name:
                return p
        raise MeshError(f"product `{name}` is not bound in this session "
                        f"(bound: {', '.join(self.product_names)}) — bind it too")

    def record(self, kind: str, details: dict[str, Any] | None = None,
               products: "Iterable[Product] | None" = None) -> None:
        """Append one entry of ``kind`` for this session (its analyst and purpose) to the
        ledger of each of ``products`` (default: every bound product)."""
        self.backend.record(self, kind, dict(details or {}),
                            self.products if products is None else tuple(products))

    def reserve_all(self, products: "Iterable[Product]", *, epsilon: float, delta: float,
                    details: dict[str, Any], kind: str = "query.released") -> dict[str, float]:
        """Reserve ``epsilon`` and ``delta`` in every one of ``products``' ledgers, or in none
        (:func:`mesh_nb.ledger.store.reserve_all`) as one entry of ``kind`` each;
        BudgetExceeded names the short one.
        Returns each product's epsilon remaining after it (as :class:`BudgetStatus` says)."""
        from .ledger.store import reserve_all_spent

        products = list(products)
        budgets = [p.contract.purposes[self.purpose].budget for p in products]
        _, spent = reserve_all_spent(
            [(p.ledger, b) for p, b in zip(products, budgets)], analyst=self.analyst,
            purpose=self.purpose, epsilon=epsilon, delta=delta, session=self.id,
            details=details, kind=kind)
        return {p.name: BudgetStatus(p.name, self.purpose, self.analyst, b.scope, b.epsilon,
                                     eps, b.delta, dlt).epsilon_remaining
                for p, b, (eps, dlt) in zip(products, budgets, spent)}

    def budget(self, product: str | None = None) -> BudgetStatus:
        """Spent and remaining (epsilon, delta) of one bound product (default: the first)."""
        name = self.product(product).name
        return next(b for b in self.budgets() if b.product == name)

    def budgets(self) -> tuple[BudgetStatus, ...]:
        """:meth:`budget` of every bound product."""
        return self.backend.budgets(self)

    def query(self, sql: str, *, epsilon: float | None = None, delta: float | None = None,
              mechanism: str = "laplace") -> Release:
        """Run a differentially private aggregate query; returns a :class:`Release`.

        ``epsilon`` is the whole query's epsilon (default: the purpose's), ``delta`` is spent
        only where the plan needs it (undeclared group keys, the Gaussian mechanism). The
        budget is reserved in the ledger of every product the query reads before the engine
        reads any data, and stays spent if the engine then fails (:class:`QueryFailed`);
        repeating a query in the same purpose returns the same answer at no cost.
        """
        self.check_open()
        return self.backend.query(self, sql, epsilon=epsilon, delta=delta, mechanism=mechanism)

    def rows(self, sql: str) -> RowRelease:
        """Rows for a ``pseudonymized-rows`` or ``raw-rows`` purpose; returns a RowRelease.

        In pseudonymized-rows, identifiers come back as keyed tokens (stable within the
        purpose) and quasi-identifiers generalized as the contract declares.
        """
        self.check_open()
        return self.backend.rows(self, sql)

    def fit(self, estimator: str, features: "Iterable[str] | str", target: str | None = None,
            *, epsilon: float | None = None, where: str | None = None,
            evaluate: bool | None = None, table: str | None = None,
            product: str | None = None, **options: Any) -> ModelRelease:
        """Train a differentially private model on the owner's side; only the model returns.

        ``estimator``: LogisticRegression, GaussianNB, LinearRegression, KMeans or PCA (or
        ``logistic``, ``naive-bayes``, ``linear``, ``kmeans``, ``pca``). ``features``: columns
        or expressions (``"expr AS name"``), or one select list as text, checked by the same
        policy as a query; numeric ones need contract bounds, categorical ones declared
        categories. ``target``: the column to predict (classifiers: declared classes;
        regression: bounds). ``epsilon`` is the whole fit's (default: the purpose's), reserved
        before any data is read; ``where`` filters the rows; ``evaluate`` (default: for
        supervised models) spends part of it on a held-out estimate; ``options`` are the
        estimator's hyperparameters (e.g. ``C=0.5``, ``n_clusters=4``).
        """
        self.check_open()
        if isinstance(features, str):  # one select list: split here, the wire takes items
            from .query.fit import split_select_list

            items = tuple(split_select_list(features))
        else:
            items = tuple(map(str, features))
        return self.backend.fit(self, FitRequest(estimator, items, target, epsilon, where,
                                                 evaluate, table, product, dict(options)))

    def explain(self, sql: str, *, epsilon: float | None = None, delta: float | None = None,
                mechanism: str = "laplace") -> Explanation:
        """The checked, rewritten plan and each value's noise scale; spends nothing."""
        self.check_open()
        return self.backend.explain(self, sql, epsilon=epsilon, delta=delta,
                                    mechanism=mechanism)

    @property
    def engine(self) -> "QueryEngine":
        """The local engine over the products' tables (opened on first use); a session on the
        owner's server has none here (MeshError)."""
        if not isinstance(self.backend, LocalBackend):
            raise MeshError("the engine runs on the owner's server — query through the session")
        return self.backend.open_engine(self.products)

    @property
    def prepared(self) -> "OrderedDict[tuple, Any]":
        """The local engine's prepared queries (see :func:`mesh_nb.query.runner.prepared`)."""
        if not isinstance(self.backend, LocalBackend):
            raise MeshError("queries are prepared on the owner's server")
        return self.backend.prepared

    def check_open(self) -> None:
        """Raise if the session has ended."""
        if self.ended:
            raise MeshError(f"session {self.id} has ended — bind a new one")

    def close_engine(self) -> None:
        """Free a local engine (reopened on next use); the session stays bound."""
        if isinstance(self.backend, LocalBackend):
            self.backend.close_engine()

    def end(self) -> None:
        """End the session (``session.ended`` in each product's ledger). Idempotent."""
        if self.ended:
            return
        self.ended = True
        _OPEN.pop(self.id, None)
        self.backend.end(self)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.end()

    def __repr__(self) -> str:
        state = "ended" if self.ended else "bound"
        where = "" if isinstance(self.backend, LocalBackend) else f" at {self.mesh.root}"
        return (f"<Session {self.id} {state}: {', '.join(self.product_names)} · "
                f"{self.purpose} · {self.analyst}{where}>")
