"""The sessions a mesh server holds for its tokens: persistent, capped and never queued.

A session bound through the server is a row in the server's database (id, token, products,
purpose, analyst, when it started and was last used), so it survives a restart: the next
request with the same id and token resumes it, checked again against today's contracts and
governance (:meth:`mesh_nb.Mesh.resume`). Sessions idle for ``idle_seconds`` are ended, with
``session.ended`` in their ledgers, by a timer.

Work on a session is *claimed* before it runs: a second query on a busy session is refused at
once (:class:`SessionBusy`, 409), and a token may have at most ``per_token`` queries running
(:class:`ServerBusy`, 429), so one analyst can never take more than their share of the query
workers, whatever they send.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from ..errors import MeshError, NotFound
from . import wire
from .db import ServerDb, iso

if TYPE_CHECKING:
    from ..mesh import Mesh
    from ..session import Session
    from .tokens import Token

log = logging.getLogger("mesh_nb.server")

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, token_id TEXT NOT NULL, products TEXT NOT NULL, purpose TEXT NOT NULL,
    analyst TEXT NOT NULL, acknowledged INTEGER NOT NULL, started TEXT NOT NULL,
    last REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_token ON sessions (token_id, last);
"""
_TOUCH_EVERY = 60.0
"""Seconds between writes of a session's last use to the database (reads are in memory)."""


class SessionBusy(MeshError):
    """The session already runs a query: refused at once, never queued (HTTP 409)."""


class ServerBusy(MeshError):
    """The token runs as many queries as it may, or the server is full (HTTP 429)."""

    def __init__(self, message: str, retry_after: float = 1.0, rule: str = "token-busy"):
        super().__init__(message)
        self.retry_after, self.rule = retry_after, rule


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    try:
        return float(value) if value else default
    except ValueError:
        raise MeshError(f"${name} must be a number, not {value[:40]!r}") from None


@dataclass(frozen=True)
class Capacity:
    """How much the server takes on: query workers in all, per token, sessions and idleness.

    ``from_env`` reads ``MESH_NB_SERVER_WORKERS``, ``MESH_NB_SERVER_PER_TOKEN`` and
    ``MESH_NB_SESSION_IDLE`` (seconds).
    """

    workers: int = 4
    per_token: int = 2
    sessions_per_token: int = 32
    idle_seconds: float = 8 * 3600
    queue: int = 256

    @classmethod
    def from_env(cls) -> "Capacity":
        workers = int(_env_number("MESH_NB_SERVER_WORKERS", max(4, 2 * (os.cpu_count() or 2))))
        per_token = int(_env_number("MESH_NB_SERVER_PER_TOKEN", max(1, workers // 2)))
        idle = _env_number("MESH_NB_SESSION_IDLE", cls.idle_seconds)
        if workers < 1 or per_token < 1 or idle <= 0:
            raise MeshError("MESH_NB_SERVER_WORKERS, MESH_NB_SERVER_PER_TOKEN and "
                            "MESH_NB_SESSION_IDLE must be positive")
        return cls(workers, min(per_token, workers), idle_seconds=idle)


@dataclass
class Bound:
    """A session the server holds for one token."""

    session: "Session"
    token_id: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    last: float = field(default_factory=time.time)
    written: float = field(default_factory=time.time)
    pii_reports: int = 0


class Claim:
    """A session claimed for one piece of work; :meth:`release` exactly once when it ends."""

    def __init__(self, registry: "SessionRegistry", bound: Bound) -> None:
        self._registry, self.bound, self._done = registry, bound, False

    @property
    def session(self) -> "Session":
        return self.bound.session

    def release(self) -> None:
        if not self._done:
            self._done = True
            self._registry._release(self.bound)


class SessionRegistry:
    """The server's sessions: in memory while used, rows in the server database always."""

    def __init__(self, mesh: "Mesh", db: ServerDb, capacity: Capacity | None = None) -> None:
        self.mesh, self.db = mesh, db
        self.capacity = capacity or Capacity.from_env()
        with db.tx() as con:
            for statement in filter(str.strip, SCHEMA.split(";")):
                con.execute(statement)
        self._live: dict[str, Bound] = {}
        self._running: dict[str, int] = {}  # token id -> queries running
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None

    # -- binding and finding ----------------------------------------------------------------

    def open(self, token: "Token", session: "Session") -> None:
        """Keep ``session`` for ``token``; a token past ``sessions_per_token`` loses its
        least recently used ones (ended)."""
        now = time.time()
        with self.db.tx() as con:
            con.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (session.id, token.id, json.dumps(list(session.product_names)),
                         session.purpose, session.analyst, int(session.acknowledged),
                         iso(session.started), now))
            stale = [r[0] for r in con.execute(
                "SELECT id FROM sessions WHERE token_id = ? ORDER BY last DESC LIMIT -1 "
                "OFFSET ?", (token.id, self.capacity.sessions_per_token)).fetchall()]
        with self._lock:
            self._live[session.id] = Bound(session, token.id, last=now, written=now)
        for sid in stale:
            self._end(sid)

    def bound(self, token: "Token", session_id: str) -> Bound:
        """The token's own session ``session_id``, resumed from the database after a restart
        (another token's is not found either)."""
        with self._lock:
            b = self._live.get(session_id)
        if b is None:
            b = self._resume(token, session_id)
        if b.token_id != token.id:
            raise _not_found(session_id)
        now = time.time()
        b.last = now
        if now - b.written > _TOUCH_EVERY:
            b.written = now
            with self.db.tx() as con:
                con.execute("UPDATE sessions SET last = ? WHERE id = ?", (now, session_id))
        return b

    def _resume(self, token: "Token", session_id: str) -> Bound:
        rows = self.db.query("SELECT token_id, products, purpose, analyst, acknowledged, "
                             "started, last FROM sessions WHERE id = ?", (session_id,))
        if not rows or rows[0][0] != token.id:
            raise _not_found(session_id)
        token_id, products, purpose, analyst, acknowledged, started, last = rows[0]
        if time.time() - last > self.capacity.idle_seconds:
            self._end(session_id)
            raise _not_found(session_id)
        if not token.allows(purpose) or analyst != token.name:
            self._end(session_id)
            raise _not_found(session_id)
        try:
            session = self.mesh.resume(session_id, json.loads(products), purpose, analyst,
                                       started=datetime.fromisoformat(started),
                                       acknowledged=bool(acknowledged))
        except MeshError:
            self._end(session_id)  # today's contracts or governance no longer allow it
            raise
        with self._lock:
            b = self._live.setdefault(session_id, Bound(session, token_id, last=last,
                                                        written=last))
        log.info("session %s resumed", session_id)
        return b

    def close(self, token: "Token", session_id: str) -> None:
        """End the token's session ``session_id`` (refused while it runs a query)."""
        b = self.bound(token, session_id)
        if not b.lock.acquire(blocking=False):
            raise SessionBusy(f"session {session_id} is running a query — end it when the "
                              "query has finished")
        b.lock.release()
        self._end(session_id)

    def _end(self, session_id: str) -> None:
        """End a session wherever it is (memory or only the database): ``session.ended``."""
        with self._lock:
            b = self._live.pop(session_id, None)
        rows = self.db.query("SELECT products, purpose, analyst, acknowledged, started "
                             "FROM sessions WHERE id = ?", (session_id,))
        with self.db.tx() as con:
            con.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        if b is not None:
            with b.lock:
                b.session.end()
            return
        if not rows:
            return
        from ..session import Session

        products, purpose, analyst, acknowledged, started = rows[0]
        known = tuple(self.mesh.products[n] for n in json.loads(products)
                      if n in self.mesh.products)
        if known:
            Session(self.mesh, known, purpose, analyst, session_id,
                    datetime.fromisoformat(started), bool(acknowledged)).end()

    def count_pii_report(self, token: "Token", session_id: str, most: int) -> "Session":
        """The session, with one more PII report counted; :class:`ServerBusy` past ``most``
        (each report is a ledger entry: a session cannot flood the ledger)."""
        b = self.bound(token, session_id)
        b.session.check_open()
        with self._lock:
            if b.pii_reports >= most:
                raise ServerBusy(f"this session sent {most} PII reports, the most one session "
                                 "may — bind a new session", 60.0, rule=wire.PII_CAP_RULE)
            b.pii_reports += 1
        return b.session

    # -- claiming work ----------------------------------------------------------------------

    def claim(self, token: "Token", session_id: str) -> Claim:
        """The session, claimed for one query: refused at once when it is busy or the token
        runs its share of queries (:class:`SessionBusy`, :class:`ServerBusy`)."""
        b = self.bound(token, session_id)
        b.session.check_open()
        with self._lock:
            running = self._running.get(token.id, 0)
            if running >= self.capacity.per_token:
                raise ServerBusy(f"this token already runs {running} queries (at most "
                                 f"{self.capacity.per_token} at a time) — wait for one to "
                                 "finish")
            if sum(self._running.values()) >= self.capacity.queue:
                raise ServerBusy("the server is full — retry in a few seconds", 5.0)
            if not b.lock.acquire(blocking=False):
                raise SessionBusy(f"session {session_id} is already running a query — wait "
                                  "for it, or bind a second session for parallel work")
            self._running[token.id] = running + 1
        return Claim(self, b)

    def _release(self, b: Bound) -> None:
        with self._lock:
            left = self._running.get(b.token_id, 1) - 1
            if left > 0:
                self._running[b.token_id] = left
            else:
                self._running.pop(b.token_id, None)
            b.lock.release()

    # -- idleness ---------------------------------------------------------------------------

    def expire_idle(self, now: float | None = None) -> int:
        """End every session idle longer than ``idle_seconds``; how many were ended."""
        now = time.time() if now is None else now
        cutoff = now - self.capacity.idle_seconds
        with self._lock:  # memory holds the freshest use
            fresh = {sid: b.last for sid, b in self._live.items() if b.last > b.written}
            for sid in fresh:
                self._live[sid].written = fresh[sid]
        with self.db.tx() as con:
            con.executemany("UPDATE sessions SET last = ? WHERE id = ?",
                            [(last, sid) for sid, last in fresh.items()])
            idle = [r[0] for r in con.execute("SELECT id FROM sessions WHERE last < ?",
                                              (cutoff,)).fetchall()]
        ended = 0
        for sid in idle:
            with self._lock:
                b = self._live.get(sid)
            if b is not None and b.lock.locked():
                continue  # running a query: not idle
            try:
                self._end(sid)
                ended += 1
            except MeshError as exc:  # a damaged ledger must not stop the others
                log.warning("session %s could not be ended: %s", sid, type(exc).__name__)
        return ended

    def start_timer(self) -> None:
        """End idle sessions every ``min(60, idle_seconds / 4)`` seconds, in the background."""
        interval = max(0.2, min(60.0, self.capacity.idle_seconds / 4))

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.expire_idle()
                except Exception as exc:  # noqa: BLE001 - keep the timer alive; type only
                    log.warning("idle sweep failed: %s", type(exc).__name__)

        self._timer = threading.Thread(target=loop, name="mesh-nb-idle", daemon=True)
        self._timer.start()

    def shutdown(self) -> None:
        """Stop the timer and close the engines; sessions stay bound for the next start."""
        self._stop.set()
        with self._lock:
            live, self._live = list(self._live.values()), {}
        for b in live:
            b.session.close_engine()


def _not_found(session_id: str) -> NotFound:
    return NotFound(f"no open session {session_id} for this token — bind again")
