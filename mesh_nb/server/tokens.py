"""Analyst tokens: the only identity the server believes.

A token reads ``mnb_<id>_<secret>``; the store keeps the id, the analyst's name, the purposes
it may bind, its expiry, revocation and rate, and the SHA-256 of the whole token — never the
token itself. Checking compares hashes in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from ..durations import moment
from ..errors import MeshError
from .db import ServerDb, iso, utcnow

PREFIX = "mnb_"
DEFAULT_RATE = 600
"""Requests per minute a token may make unless issued with another rate."""
_SHAPE = re.compile(r"^mnb_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[A-Za-z0-9_.@+-]{1,128}$")


class AuthError(MeshError):
    """No token, an unknown one, or one revoked or expired (HTTP 401)."""


@dataclass(frozen=True)
class Token:
    """One issued token as the store knows it (no secret)."""

    id: str
    name: str
    purposes: tuple[str, ...]
    created: str
    expires: str | None
    revoked: str | None
    rate: int

    @property
    def state(self) -> str:
        if self.revoked:
            return "revoked"
        if self.expires and self.expires <= iso(utcnow()):
            return "expired"
        return "active"

    def allows(self, purpose: str) -> bool:
        """No purposes listed: any purpose the contracts declare."""
        return not self.purposes or purpose in self.purposes


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_expiry(text: str | None, now: datetime | None = None) -> str | None:
    """``30d``, ``12h``, ``90m`` or an ISO date/time -> ISO time (UTC); None stays None."""
    if not text:
        return None
    return iso(moment(text, now=now or utcnow(), ago=False, flag="--expires"))


class TokenStore:
    """Issue, list, revoke and check tokens in the server's database."""

    def __init__(self, db: ServerDb):
        self.db = db

    def issue(self, name: str, purposes: tuple[str, ...] = (), expires: str | None = None,
              rate: int | None = None) -> tuple[Token, str]:
        """A new token for analyst ``name``; returns it and the secret (shown once)."""
        if not _NAME.match(name):
            raise MeshError(f"token name `{name}` must be 1-128 letters, digits or . _ @ + - "
                            "— it becomes the analyst's name in the ledger")
        if rate is not None and rate <= 0:
            raise MeshError("--rate must be a positive number of requests per minute")
        token_id = secrets.token_hex(6)
        secret = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        tok = Token(token_id, name, tuple(purposes), iso(utcnow()), parse_expiry(expires), None,
                    rate or DEFAULT_RATE)
        with self.db.tx() as con:
            con.execute("INSERT INTO tokens VALUES (?,?,?,?,?,?,?,?)",
                        (tok.id, tok.name, _hash(secret), ",".join(tok.purposes), tok.created,
                         tok.expires, None, tok.rate))
        return tok, secret

    def _row(self, row: tuple) -> Token:
        tid, name, _, purposes, created, expires, revoked, rate = row
        return Token(tid, name, tuple(p for p in purposes.split(",") if p), created, expires,
                     revoked, rate or DEFAULT_RATE)

    def list(self) -> list[Token]:
        """Every token, oldest first."""
        return [self._row(r) for r in self.db.query("SELECT * FROM tokens ORDER BY created, rowid")]

    def revoke(self, which: str) -> list[Token]:
        """Revoke the token with id ``which``, or every active token of analyst ``which``."""
        with self.db.tx() as con:
            rows = con.execute("SELECT * FROM tokens WHERE (id = ? OR name = ?) "
                               "AND revoked IS NULL", (which, which)).fetchall()
            con.executemany("UPDATE tokens SET revoked = ? WHERE id = ?",
                            [(iso(utcnow()), r[0]) for r in rows])
        if not rows:
            raise MeshError(f"no active token with id or name `{which}` — see "
                            "`mesh-nb token list`")
        return [self._row(r) for r in rows]

    def check(self, secret: str | None) -> Token:
        """The active token ``secret`` is, or :class:`AuthError` saying why not."""
        if not secret:
            raise AuthError("no token — send `Authorization: Bearer TOKEN` (the client: "
                            "open_mesh(url, token=...) or $MESH_TOKEN)")
        m = _SHAPE.match(secret)
        rows = self.db.query("SELECT * FROM tokens WHERE id = ?", (m.group(1),)) if m else []
        stored = rows[0][2] if rows else _hash("")
        if not (hmac.compare_digest(stored, _hash(secret)) and rows):
            raise AuthError("unknown token — ask the data owner for one "
                            "(`mesh-nb token add NAME`)")
        tok = self._row(rows[0])
        if tok.state != "active":
            raise AuthError(f"token {tok.id} is {tok.state} — ask the data owner for a new one")
        return tok
