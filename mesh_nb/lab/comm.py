"""The kernel side of the lab's state comm: binding, purpose, budgets, releases, PII alerts.

Protocol (comm target ``mesh_nb``, JSON messages, version :data:`PROTOCOL_VERSION`):

- kernel → frontend: the kernel opens a comm when mesh_nb's magics load (the open message
  carries the state) and sends ``{"type": "state", ...}`` (see :func:`build_state`) whenever
  the state changed after a cell, a bind from the form, or a background PII scan.
- frontend → kernel: ``{"type": "request_state"}`` on a comm it re-attached to after a page
  reload (found with ``comm_info_request``) or opened itself; the kernel answers with the state.
- A kernel restart ends the comm; the frontend then shows the kernel as not bound.

The state never holds a data value: names, purposes, budgets, redacted query text (literals
already replaced), release ids, epsilons and the columns and entity types of alerts.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

log = logging.getLogger("mesh_nb.lab")

TARGET = "mesh_nb"
PROTOCOL_VERSION = 1
MAX_RELEASES = 10
MAX_ALERTS = 50


# -- the state --------------------------------------------------------------------------------


def _session_of(magics: Any):
    """The bound, not ended session of a MeshMagics-like object (``.bound()`` or ``.session``)."""
    if magics is None:
        return None
    bound = getattr(magics, "bound", None)
    session = bound() if callable(bound) else getattr(magics, "session", None)
    if session is None or getattr(session, "ended", False):
        return None
    return session


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def budget_state(status: Any) -> dict[str, Any]:
    """One :class:`~mesh_nb.session.BudgetStatus` as JSON."""
    return {"product": status.product, "epsilon_total": _num(status.epsilon_total),
            "epsilon_spent": _num(getattr(status, "epsilon_spent", None)),
            "epsilon_remaining": _num(status.epsilon_remaining), "scope": status.scope}


def release_state(entry: Any) -> dict[str, Any]:
    """A ``query.released`` or ``model.released`` ledger entry as JSON: redacted query text
    (a model's: the aggregate query its inputs were checked as), ids and spend; ``model``
    names a model's estimator, target and features (None for a query)."""
    details = entry.details or {}
    model = None
    if entry.kind == "model.released":
        target = str(details.get("target") or "")
        model = (str(details.get("estimator", "")) + (f" of {target}" if target else "")
                 + " on " + ", ".join(map(str, details.get("features") or ())))
    return {"release_id": str(details.get("release", "")), "model": model,
            "sql": str(details.get("query", "")),
            "epsilon": float(entry.epsilon), "delta": float(entry.delta),
            "purpose": entry.purpose, "products": [str(p) for p in details.get("products", ())]
            or [entry.product],
            "cached": bool(details.get("cached", False)), "ts": entry.ts}


def session_releases(session: Any, limit: int = MAX_RELEASES) -> list[dict[str, Any]]:
    """The latest ``limit`` releases (queries and models) of ``session``, newest first, from
    its first product's ledger (every bound product's ledger records the same release; a
    model is recorded by the product it was trained on, so the others are read too)."""
    from ..ledger.entry import RELEASE_KINDS

    if limit <= 0 or not getattr(session, "products", ()):
        return []
    first, *others = session.products
    entries = [e for e in first.ledger.entries(session=session.id) if e.kind in RELEASE_KINDS]
    entries += [e for p in others for e in p.ledger.entries(kind="model.released",
                                                            session=session.id)]
    entries.sort(key=lambda e: e.ts)
    return [release_state(e) for e in reversed(entries[-limit:])]


def alert_state(alert: Any) -> dict[str, Any]:
    """One :class:`~mesh_nb.pii.alerts.Alert` as JSON: where, which entity type, what is wrong."""
    return {"frame": alert.frame, "column": alert.column, "entity": alert.entity,
            "problem": alert.problem, "fix": getattr(alert, "fix", "")}


def current_alerts(magics: Any, limit: int = MAX_ALERTS) -> list[dict[str, Any]]:
    """The autoscan's alerts, newest first, one per (frame, column, entity, problem)."""
    autoscan = getattr(magics, "autoscan", None)
    alerts = list(getattr(autoscan, "alerts", None) or ())
    seen, out = set(), []
    for alert in reversed(alerts):
        item = alert_state(alert)
        key = (item["frame"], item["column"], item["entity"], item["problem"])
        if key in seen:
            continue
        seen.add(key)
        out.append(item)
        if len(out) >= limit:
            break
    return out


def build_state(magics: Any, *, max_releases: int = MAX_RELEASES,
                max_alerts: int = MAX_ALERTS) -> dict[str, Any]:
    """The state message for a MeshMagics-like object (``.bound()``/``.session``, ``.autoscan``).

    Testable without a kernel: any object with those attributes works.
    """
    state: dict[str, Any] = {
        "type": "state", "version": PROTOCOL_VERSION, "bound": False, "products": [],
        "purpose": None, "description": None, "legal_basis": None, "access": None,
        "analyst": None, "session": None, "budgets": [], "releases": [],
        "alerts": current_alerts(magics, max_alerts),
    }
    session = _session_of(magics)
    if session is None:
        return state
    spec = session.purpose_of()
    state.update(
        bound=True, products=[p.name for p in session.products], purpose=session.purpose,
        description=(spec.description or "").strip() or None, legal_basis=spec.legal_basis,
        access=session.access, analyst=session.analyst, session=session.id,
        budgets=[budget_state(b) for b in session.budgets()],
        releases=session_releases(session, max_releases),
    )
    return state


# -- the publisher ----------------------------------------------------------------------------


def _kernel_create_comm(**kwargs):
    import comm

    return comm.create_comm(**kwargs)


def _comm_manager():
    import comm

    return comm.get_comm_manager()


class StatePublisher:
    """Keeps the lab's view of one kernel's mesh state current over comms (target ``mesh_nb``).

    ``magics`` is the MeshMagics (or anything :func:`build_state` accepts). ``create_comm`` and
    ``comm_manager`` default to the ``comm`` package's (ipykernel's when in a kernel); tests pass
    fakes. Nothing here raises into the user's cell: failures are logged.
    """

    def __init__(self, magics: Any, *, create_comm: Callable[..., Any] | None = None,
                 comm_manager: Any = None, max_releases: int = MAX_RELEASES,
                 max_alerts: int = MAX_ALERTS) -> None:
        self.magics = magics
        self.max_releases, self.max_alerts = max_releases, max_alerts
        self._create_comm = create_comm or _kernel_create_comm
        self._manager = comm_manager
        self._comms: dict[str, Any] = {}
        self._last: dict[str, Any] | None = None
        self._lock = threading.RLock()
        self.closed = False
        self.enabled = True  # attach() turns it off outside a kernel: nobody could listen
        self.sent = 0  # state messages sent (open messages included)

    # -- state --------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return build_state(self.magics, max_releases=self.max_releases,
                           max_alerts=self.max_alerts)

    @property
    def comms(self) -> list[Any]:
        with self._lock:
            return list(self._comms.values())

    # -- comms --------------------------------------------------------------------------------

    def register_target(self) -> None:
        """Accept comms the frontend opens to target ``mesh_nb`` (after a reload)."""
        manager = self._manager if self._manager is not None else _comm_manager()
        self._manager = manager
        manager.register_target(TARGET, self.handle_open)

    def _track(self, c: Any) -> None:
        with self._lock:
            self._comms[c.comm_id] = c
        c.on_msg(lambda msg, c=c: self.handle_msg(c, msg))
        c.on_close(lambda msg=None, c=c: self._forget(c))

    def _forget(self, c: Any) -> None:
        with self._lock:
            self._comms.pop(getattr(c, "comm_id", None), None)

    def open(self, state: dict[str, Any] | None = None) -> Any:
        """Open a kernel-side comm carrying the state (the frontend registers its target)."""
        state = self.state() if state is None else state
        with self._lock:
            c = self._create_comm(target_name=TARGET, data=state,
                                  metadata={"version": PROTOCOL_VERSION})
            self._track(c)
            self._last = state
            self.sent += 1
        return c

    def handle_open(self, c: Any, msg: dict) -> None:
        """A comm the frontend opened: keep it; answer a ``request_state`` in its open data."""
        self._track(c)
        data = (msg or {}).get("content", {}).get("data") or {}
        if data.get("type") == "request_state":
            self._send(c, self.state())

    def handle_msg(self, c: Any, msg: dict) -> None:
        """``{"type": "request_state"}`` → the state, on that comm."""
        try:
            data = (msg or {}).get("content", {}).get("data") or {}
            if data.get("type") == "request_state":
                state = self.state()
                self._send(c, state)
                with self._lock:
                    self._last = state
        except Exception:  # never into the kernel's message loop
            log.exception("mesh_nb: answering the lab's state request failed")

    def _send(self, c: Any, state: dict[str, Any]) -> None:
        with self._lock:
            c.send(state)
            self.sent += 1

    def publish(self, *, force: bool = False) -> bool:
        """Send the state if it changed since the last one sent (or ``force``); True if sent.

        With no open comm (never opened, or the frontend closed it) a new one is opened.
        """
        if self.closed or not self.enabled:
            return False
        try:
            state = self.state()
            with self._lock:
                if not force and state == self._last and self._comms:
                    return False
                if not self._comms:
                    self.open(state)
                    return True
                for c in list(self._comms.values()):
                    self._send(c, state)
                self._last = state
            return True
        except Exception:
            log.exception("mesh_nb: publishing the state to the lab failed")
            return False

    # -- hooks --------------------------------------------------------------------------------

    def post_run_cell(self, result: Any = None) -> None:
        """IPython ``post_run_cell``: publish; publish again when background PII scans finish."""
        self.publish()
        self.watch_scans()

    def watch_scans(self) -> None:
        """Publish again whenever a background PII scan finishes (its alerts)."""
        autoscan = getattr(self.magics, "autoscan", None)
        if autoscan is not None and hasattr(autoscan, "add_listener"):
            autoscan.add_listener(self.publish)

    def close(self) -> None:
        """Close every comm and stop accepting new ones. Idempotent."""
        if self.closed:
            return
        self.closed = True
        if self._manager is not None:
            try:
                self._manager.unregister_target(TARGET, self.handle_open)
            except Exception:
                pass
        for c in self.comms:
            try:
                c.close()
            except Exception:
                pass
        with self._lock:
            self._comms.clear()


# -- attaching to IPython ---------------------------------------------------------------------


def _find_magics(ipython):
    registry = getattr(getattr(ipython, "magics_manager", None), "registry", {}) or {}
    for magics in registry.values():
        if type(magics).__name__ == "MeshMagics":
            return magics
    return None


def in_kernel(ipython) -> bool:
    """True when ``ipython`` runs in a Jupyter kernel (a frontend may listen)."""
    return getattr(ipython, "kernel", None) is not None


def attach(ipython, magics: Any = None, **kwargs: Any) -> StatePublisher | None:
    """Attach a :class:`StatePublisher` to the mesh_nb magics of ``ipython``.

    In a kernel, registers the comm target and the ``post_run_cell`` hook and opens the comm
    with the current state; in plain IPython the publisher is created disabled and no hook is
    added. Idempotent: a publisher already attached is returned as is. Call it after the
    magics (and their autoscan hook) are registered.
    """
    magics = magics if magics is not None else _find_magics(ipython)
    if magics is None:
        log.warning("mesh_nb.lab: no mesh_nb magics in this shell — run %%load_ext mesh_nb")
        return None
    existing = getattr(magics, "publisher", None)
    if isinstance(existing, StatePublisher) and not existing.closed:
        return existing
    publisher = StatePublisher(magics, **kwargs)
    publisher.enabled = in_kernel(ipython)
    magics.publisher = publisher
    if not publisher.enabled:  # plain IPython: no frontend could listen, add no hook
        return publisher
    ipython.events.register("post_run_cell", publisher.post_run_cell)
    try:
        publisher.register_target()
        publisher.open()
    except Exception:
        log.exception("mesh_nb: opening the lab's state comm failed")
    return publisher


def detach(ipython, magics: Any = None) -> None:
    """Undo :func:`attach`: unregister the hook, close the comms."""
    magics = magics if magics is not None else _find_magics(ipython)
    publisher = getattr(magics, "publisher", None)
    if not isinstance(publisher, StatePublisher):
        return
    try:
        ipython.events.unregister("post_run_cell", publisher.post_run_cell)
    except ValueError:
        pass
    autoscan = getattr(magics, "autoscan", None)
    if autoscan is not None and hasattr(autoscan, "remove_listener"):
        autoscan.remove_listener(publisher.publish)
    publisher.close()
    magics.publisher = None
