"""The one path a query takes: check -> plan -> bind -> budget in the ledger -> engine -> noise.

The engine reads no data before the budget is reserved in every product the query reads, so
nothing the engine does with a person's data (an error, a limit hit) goes uncharged; nothing is
reserved for a query refused by the policy or by the engine's binder (both depend only on the
query and the contract).
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import MeshError, PolicyViolation, QueryFailed
from ..values import Explanation, Release
from . import policy
from .accountant import Accountant
from .cache import cache_key
from .engines import EngineFailure
from .parse import redact, too_deep
from .plan import Plan, build_plan, primitives
from .post import post_process
from .release import add_noise, half_width, noise_scale

if TYPE_CHECKING:
    from ..session import Session


def _contracts(session: "Session") -> dict:
    return {p.name: p.contract for p in session.products}


def defaults(session: "Session", epsilon: float | None, delta: float | None,
             products: "tuple | None" = None) -> tuple[float, float]:
    """The epsilon and delta of one request over ``products`` (default: every bound one):
    the purpose's defaults, checked against ``maxEpsilonPerQuery``."""
    products = products or session.products
    purposes = [p.contract.purposes[session.purpose] for p in products]
    if epsilon is None:
        epsilon = min(p.default_epsilon for p in purposes)
    if not epsilon > 0:
        raise PolicyViolation("epsilon", "epsilon must be positive", "give e.g. --epsilon 0.5")
    for p, spec in zip(products, purposes):
        cap = spec.max_epsilon_per_query
        if cap is not None and epsilon > cap + 1e-12:
            raise PolicyViolation("epsilon-too-large", f"epsilon {epsilon:g} is above the "
                                  f"{cap:g} one query may take on `{p.name}`",
                                  f"ask for at most {cap:g}")
    if delta is None:
        delta = min(spec.budget.delta for spec in purposes) / 10
    if delta < 0:
        raise PolicyViolation("delta", "delta must not be negative", "give e.g. --delta 1e-7")
    return float(epsilon), float(delta)


PREPARED_KEPT = 256
"""Queries a session keeps checked, planned and bound (the most recently used)."""


@dataclass(frozen=True)
class Prepared:
    """A query checked, planned and bound in the engine: all of it reads no data."""

    checked: policy.CheckedQuery
    plan: Plan
    job: Any  # the engine's bound job (``run()`` executes it)
    engine: Any = None  # the engine it is bound in


def prepared(session: "Session", sql: str, *, epsilon: float | None, delta: float | None,
             mechanism: str) -> Prepared:
    """:func:`prepare`, then bound in the engine; kept per session by the query's text and
    what was asked. Checking, planning and binding depend only on those and on the bound
    contracts (fixed for the session), never on data, so a kept one is the same answer; a
    refused query is kept by nobody: it is checked, and recorded, again every time."""
    _require_aggregates(session)
    memo, engine = session.prepared, session.engine
    key = (sql, epsilon, delta, mechanism)
    hit = memo.get(key)  # each step on the dict is atomic; another thread may drop the key
    if hit is not None and hit.engine is engine:  # (kept under an engine closed meanwhile: no)
        with contextlib.suppress(KeyError):
            memo.move_to_end(key)
        return hit
    checked, plan = _plan(session, sql, epsilon=epsilon, delta=delta, mechanism=mechanism)
    try:
        job = engine.prepare(plan.query)  # binds on the schema: reads no data
    except PolicyViolation as exc:
        reject(session, sql, exc)
        raise
    memo[key] = hit = Prepared(checked, plan, job, engine)
    with contextlib.suppress(KeyError):
        while len(memo) > PREPARED_KEPT:
            memo.popitem(last=False)
    return hit


def _require_aggregates(session: "Session") -> None:
    session.check_open()
    if session.access != "dp-aggregate":
        raise MeshError(f"purpose `{session.purpose}` grants {session.access}, not aggregates "
                        "— use session.rows(sql) for row access (%%mesh_query does it for you)")


def prepare(session: "Session", sql: str, *, epsilon: float | None, delta: float | None,
            mechanism: str) -> tuple[policy.CheckedQuery, Plan]:
    """Check and plan; records ``query.rejected`` in every bound ledger when refused."""
    _require_aggregates(session)
    return _plan(session, sql, epsilon=epsilon, delta=delta, mechanism=mechanism)


def _plan(session: "Session", sql: str, *, epsilon: float | None, delta: float | None,
          mechanism: str) -> tuple[policy.CheckedQuery, Plan]:
    try:
        try:
            checked = policy.check(sql, _contracts(session), session.purpose)
        except RecursionError:  # a tree walk deeper than the parse-time bounds foresaw
            raise too_deep() from None
        eps, dlt = defaults(session, epsilon, delta)
        t0 = checked.tables[0]
        one_row_per_unit = (len(checked.tables) == 1  # declared: no data is read here
                            and session.engine.declares_unique(t0.product, t0.table))
        plan = build_plan(checked, _contracts(session), epsilon=eps, delta=dlt,
                          mechanism=mechanism, one_row_per_unit=one_row_per_unit)
    except PolicyViolation as exc:
        reject(session, sql, exc)
        raise
    return checked, plan


def reject(session: "Session", sql: str, exc: PolicyViolation) -> None:
    """Record a refused query (redacted text and the rule) in every bound ledger."""
    try:
        text = redact(sql)
    except MeshError:
        text = "(unparseable)"
    session.record("query.rejected", {"query": text, "rule": exc.rule})


def explain(session: "Session", sql: str, *, epsilon: float | None = None,
            delta: float | None = None, mechanism: str = "laplace") -> Explanation:
    """What ``query`` would run and how much noise each value gets; spends nothing (the plan
    is bound in the engine, which reads no data, so engine mistakes show here too)."""
    ready = prepared(session, sql, epsilon=epsilon, delta=delta, mechanism=mechanism)
    checked, plan = ready.checked, ready.plan
    rows = [{"measurement": m.name, "kind": m.kind, "mechanism": m.mechanism,
             "epsilon": round(m.epsilon, 6), "delta": m.delta, "sensitivity": m.sensitivity,
             "noise_scale": round(noise_scale(m), 4) if m.kind != "hist" else None,
             "ci95_half_width": round(half_width(m), 4) if m.kind not in ("hist", "cdf")
             else None,
             "value": _shown(m)} for m in plan.measurements]
    return Explanation(checked.redacted, plan, pd.DataFrame(rows))


def _shown(m) -> str:
    """A measurement's value as explain shows it: its SQL, and the exact correction."""
    if not m.corrected:
        return m.value or "*"
    shown = f"{m.value} - {m.center:g} per value" if m.center else m.value
    return f"{shown} (NULLs excluded)" if m.present else shown


def run(session: "Session", sql: str, *, epsilon: float | None = None,
        delta: float | None = None, mechanism: str = "laplace", seed: int | None = None
        ) -> Release:
    """Check, plan, bind, reserve budget, run, add noise; see :meth:`mesh_nb.Session.query`.

    The budget is reserved in every product the query reads before the engine reads any data;
    whatever happens after that stays charged. A failure after the reservation records
    ``query.failed`` (its class, never its text) and raises :class:`QueryFailed`, whose message
    is the same for every failure. ``seed`` is for tests only: a seeded release is marked not
    private and is never cached.
    """
    ready = prepared(session, sql, epsilon=epsilon, delta=delta, mechanism=mechanism)
    checked, plan = ready.checked, ready.plan
    readers = session.readers(checked.products)
    details = {"query": checked.redacted, "query_hash": checked.query_hash,
               "columns": list(checked.columns), "products": [p.name for p in readers],
               "mechanism": _mechanisms(plan)}
    private = seed is None
    cache = readers[0].releases
    key = cache_key(session.purpose, checked.query_hash, plan.epsilon, plan.delta, mechanism)
    hit = cache.get(key) if private else None
    if hit is not None:
        release_id, frame, accuracy, meta = hit
        session.record("query.released", {**details, "cached": True, "release": release_id},
                       readers)
        return Release(frame, 0.0, 0.0, accuracy, checked.redacted, session.purpose,
                       tuple(p.name for p in readers), tuple(meta.get("notes", ())),
                       release_id, True, _remaining(session))
    release_id = uuid.uuid4().hex[:12]
    remaining = session.reserve_all(readers, epsilon=plan.epsilon, delta=plan.delta,
                        details={**details, "release": release_id})
    try:
        job = _verified(session, checked, plan, ready.job)
        exact = primitives(plan, job.columns())
        frame, accuracy = post_process(
            checked, *add_noise(plan, exact, accountant=Accountant(seed)))
    except Exception as exc:  # every failure from here on may depend on a person's data
        kind = exc.kind if isinstance(exc, EngineFailure) else "release-error"
        session.record("query.failed", {"release": release_id, "rule": kind}, readers)
        raise QueryFailed(release_id, plan.epsilon, plan.delta) from None
    if private:
        cache.put(key, release_id, frame, accuracy, {"notes": list(plan.notes)})
    return Release(frame, plan.epsilon, plan.delta, accuracy, checked.redacted,
                   session.purpose, tuple(p.name for p in readers), plan.notes, release_id,
                   False, _remaining(session, remaining), private)


def _verified(session: "Session", checked: policy.CheckedQuery, plan: Plan, job):
    """``job``, or, when the plan rests on a declared-unique privacy unit that the data
    breaks, the plan's :attr:`~.plan.Plan.bounded_query` (at most one row per unit: the noise
    still holds). Reads the data, so it runs only once the budget is reserved; the release
    looks the same either way, and only the owner's signed record of data checks says which
    it was."""
    t0 = checked.tables[0]
    if not plan.rests_on_unique or session.engine.unit_unique(t0.product, t0.table):
        return job
    return session.engine.prepare(plan.bounded_query)


def _mechanisms(plan: Plan) -> str:
    """The mechanisms a plan draws from, as the ledger records them."""
    return ", ".join(sorted({m.mechanism for m in plan.measurements}))


def execute(session: "Session", plan: Plan) -> pd.DataFrame:
    """The plan's exact bounded primitives from the sandboxed engine (never shown to anyone;
    for tests and benchmarks: no budget is reserved)."""
    return pd.DataFrame(primitives(plan, session.engine.execute(plan.query)))


def _remaining(session: "Session", known: dict[str, float] | None = None) -> dict:
    """Each bound product's remaining epsilon; ``known`` (from the reservation) spares
    reading those ledgers again."""
    known = known or {}
    if all(p.name in known for p in session.products):
        return {p.name: known[p.name] for p in session.products}
    return {b.product: b.epsilon_remaining for b in session.budgets()}
