"""What protects the server itself: a rate limit per token, a request size limit, and the
access log that names requests but never carries a value.

:class:`Guard` is a plain ASGI middleware (no per-request task): it refuses bodies over the
limit with 413, turns any error that escaped the handlers into a 500 that names only the
error's type, and writes one log line per request — method, path, status, milliseconds, token
name and rule id. Query text, literals and released values never reach the log.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from starlette.exceptions import HTTPException

from ..text import escape
from .wire import MAX_BODY, MAX_HEADERS

log = logging.getLogger("mesh_nb.server")


Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class RateLimited(Exception):
    """A token made more requests than its rate allows (HTTP 429)."""

    def __init__(self, retry_after: float):
        self.retry_after = retry_after
        super().__init__(f"rate limit reached for this token — retry in {retry_after:.1f} s "
                         "(the owner sets the rate: mesh-nb token add NAME --rate N)")


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class RateLimiter:
    """Token buckets, one per token id: ``rate`` requests per minute, bursts up to ``rate``."""

    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, key: str, rate: int) -> None:
        """Spend one request of ``key``'s bucket or raise :class:`RateLimited`."""
        per_second = rate / 60.0
        now = self.clock()
        with self._lock:
            b = self._buckets.get(key)
            if b is None:
                b = self._buckets[key] = _Bucket(float(rate), now)
            b.tokens = min(float(rate), b.tokens + (now - b.stamp) * per_second)
            b.stamp = now
            if b.tokens < 1.0:
                raise RateLimited((1.0 - b.tokens) / per_second)
            b.tokens -= 1.0


def error_body(kind: str, message: str, **extra: Any) -> bytes:
    return json.dumps({"error": {"type": kind, "message": message, **extra}}).encode()


class Guard:
    """Size limit, last-resort error handling and the access log, around the whole app."""

    def __init__(self, app: Callable, max_body: int = MAX_BODY):
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        note: dict[str, Any] = scope.setdefault("mesh_nb", {})
        state = {"status": 500, "started": False}

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
            await send(message)

        try:
            headers = scope.get("headers") or ()
            size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") \
                + sum(len(k) + len(v) + 4 for k, v in headers)
            if size > MAX_HEADERS:
                await self._refuse(sending, 431, "too-large", f"request headers over "
                                   f"{MAX_HEADERS} bytes — send fewer or shorter headers")
                return
            length = dict(headers).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                await self._refuse(sending, 413, "too-large", f"request body over "
                                   f"{self.max_body} bytes — send a shorter query")
                return
            await self.app(scope, self._counting(receive), sending)
        except _TooLarge:
            if not state["started"]:
                await self._refuse(sending, 413, "too-large",
                                   f"request body over {self.max_body} bytes")
        except Exception as exc:  # a bug: log its type only (a message may hold a value)
            ref = uuid.uuid4().hex[:8]
            note["error"] = f"{type(exc).__name__}#{ref}"
            if not state["started"]:
                await self._refuse(sending, 500, "internal", "internal error in the mesh "
                                   f"server (reference {ref}) — tell the data owner")
        finally:
            ms = (time.perf_counter() - t0) * 1000
            extra = "".join(f" {k}={note[k]}" for k in ("token", "rule", "error") if k in note)
            log.info("%s %s %s %.1fms%s", escape(scope.get("method"), 16),
                     escape(scope.get("path"), 300), state["status"], ms, escape(extra, 300))

    def _counting(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise _TooLarge()
            return message

        return counted

    @staticmethod
    async def _refuse(send: Send, status: int, kind: str, message: str) -> None:
        body = error_body("request" if kind == "too-large" else kind, message)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(HTTPException):
    """A streamed body grew past the limit (FastAPI passes HTTP exceptions through)."""

    def __init__(self) -> None:
        super().__init__(413, "request body too large — send a shorter query")
