"""A session: one analyst, one declared purpose, one or more products, until it ends."""

from __future__ import annotations

import getpass
import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Iterable

from .errors import MeshError

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


@dataclass(frozen=True)
class BudgetStatus:
    """Spent and remaining budget of one product for this analyst (or purpose)."""

    product: str
    purpose: str
    analyst: str
    scope: str | None
    epsilon_total: float | None
    epsilon_spent: float
    delta_total: float | None
    delta_spent: float

    @property
    def epsilon_remaining(self) -> float | None:
        if self.epsilon_total is None:
            return None
        return max(0.0, round(self.epsilon_total - self.epsilon_spent, 6))

    @property
    def delta_remaining(self) -> float | None:
        if self.delta_total is None:
            return None
        return max(0.0, self.delta_total - self.delta_spent)

    def __str__(self) -> str:
        if self.epsilon_total is None:
            return f"{self.product} · {self.purpose} · no privacy budget (row access)"
        return (f"{self.product} · {self.purpose} · ε {self.epsilon_remaining:g} of "
                f"{self.epsilon_total:g} left ({self.scope})")


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
    _engine: object = field(default=None, repr=False)
    options: EngineOptions = field(default_factory=EngineOptions)

    @classmethod
    def start(cls, mesh: "Mesh", products: tuple["Product", ...], purpose: str, analyst: str,
              *, acknowledged: bool = False, options: EngineOptions | None = None
              ) -> "Session":
        """Create the session and record ``session.bound`` in each product's ledger."""
        s = cls(mesh, products, purpose, analyst, uuid.uuid4().hex[:16],
                datetime.now(timezone.utc), acknowledged,
                options=options or EngineOptions())
        names = [p.name for p in products]
        for p in products:
            p.ledger.append("session.bound", session=s.id, analyst=analyst, purpose=purpose,
                            details={"products": names, "access": s.access,
                                     "acknowledged": acknowledged})
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

    def budget(self, product: str | None = None) -> BudgetStatus:
        """Spent and remaining (epsilon, delta) of one bound product (default: the first)."""
        p = self.product(product)
        spec = p.contract.purposes[self.purpose]
        if spec.budget is None:
            return BudgetStatus(p.name, self.purpose, self.analyst, None, None, 0.0, None, 0.0)
        eps, delta = p.ledger.spent(self.analyst, self.purpose, spec.budget)
        return BudgetStatus(p.name, self.purpose, self.analyst, spec.budget.scope,
                            spec.budget.epsilon, eps, spec.budget.delta, delta)

    def budgets(self) -> tuple[BudgetStatus, ...]:
        """:meth:`budget` of every bound product."""
        return tuple(self.budget(p.name) for p in self.products)

    def query(self, sql: str, *, epsilon: float | None = None, delta: float | None = None,
              mechanism: str = "laplace"):
        """Run a differentially private aggregate query; returns a :class:`Release`.

        ``epsilon`` is the whole query's epsilon (default: the purpose's), ``delta`` is spent
        only where the plan needs it (undeclared group keys, the Gaussian mechanism). The
        budget is reserved in the ledger of every product the query reads before the engine
        reads any data, and stays spent if the engine then fails (:class:`QueryFailed`);
        repeating a query in the same purpose returns the same answer at no cost.
        """
        from .query.runner import run

        return run(self, sql, epsilon=epsilon, delta=delta, mechanism=mechanism)

    def rows(self, sql: str):
        """Rows for a ``pseudonymized-rows`` or ``raw-rows`` purpose; returns a RowRelease.

        In pseudonymized-rows, identifiers come back as keyed tokens (stable within the
        purpose) and quasi-identifiers generalized as the contract declares.
        """
        from .query.rows import run_rows

        return run_rows(self, sql)

    def explain(self, sql: str, *, epsilon: float | None = None, delta: float | None = None,
                mechanism: str = "laplace"):
        """The checked, rewritten plan and each value's noise scale; spends nothing."""
        from .query.runner import explain

        return explain(self, sql, epsilon=epsilon, delta=delta, mechanism=mechanism)

    @property
    def engine(self) -> "QueryEngine":
        """The session's engine over its products' tables (opened on first use): the
        sandboxed DuckDB by default, Spark when the options or the contracts choose it."""
        if self._engine is None:
            from .query.engines import open_engine

            kind, remote = self.options.resolve(self.products)
            self._engine = open_engine(((p.name, t.name, t, p.contract.privacy_unit)
                                        for p in self.products for t in p.contract.tables),
                                       kind=kind, remote=remote, limits=self.options.limits)
        return self._engine

    def check_open(self) -> None:
        """Raise if the session has ended."""
        if self.ended:
            raise MeshError(f"session {self.id} has ended — bind a new one")

    def close_engine(self) -> None:
        """Free the engine (reopened on next use); the session stays bound."""
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def end(self) -> None:
        """End the session, recording ``session.ended`` in each product's ledger. Idempotent."""
        if self.ended:
            return
        self.ended = True
        self.close_engine()
        for p in self.products:
            p.ledger.append("session.ended", session=self.id, analyst=self.analyst,
                            purpose=self.purpose)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.end()

    def __repr__(self) -> str:
        state = "ended" if self.ended else "bound"
        return (f"<Session {self.id} {state}: {', '.join(self.product_names)} · "
                f"{self.purpose} · {self.analyst}>")
