"""The owner's ledger of one data product: append-only, hash-chained, signed, in SQLite.

It is the only privacy accountant: a budget is checked and spent in one ``BEGIN IMMEDIATE``
transaction, in integer micro-epsilon and pico-delta, so concurrent processes can never overspend
and thirty 0.1 spends fit exactly in 3.0.

A hash chain alone cannot see a cut tail or a restored older copy, so after every append the
owner's signed checkpoint (entry count and head hash) is advanced *outside* the ledger file, in
``owner_dir/checkpoint.slots`` (two fixed slots, the older overwritten by one ``pwrite``).
Appends refuse to extend a ledger that is behind its checkpoint or
that disagrees with it (otherwise a rolled-back ledger would both free budget and launder itself).

Durability: WAL with ``synchronous=NORMAL`` and a checkpoint written without fsync survive a
killed process; after a power loss the last commits may be lost while the checkpoint is not, and
``verify()`` then reports the ledger as cut — the owner must look into it.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from ..contract.model import Budget
from ..errors import BudgetExceeded, LedgerTampered
from .entry import (GENESIS, MICRO, PICO, Entry, canonical_json, chain_hash, check_details,
                    check_kind, signing_message, to_micro, to_pico)
from .keys import OwnerKey

BUSY_TIMEOUT_MS = 60_000
CHECKPOINT_FILE = "checkpoint.slots"
SLOT_BYTES = 1024  # two slots; each append overwrites the older one with a single pwrite
LOCK_FILE = "checkpoint.lock"
SCOPES = ("per-analyst", "per-purpose")

#: Indexed columns that repeat a field of the signed body; ``verify()`` checks they agree.
COLUMNS: tuple[str, ...] = ("ts", "kind", "session", "analyst", "purpose", "epsilon_micro",
                            "delta_pico")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS entries (
        seq INTEGER PRIMARY KEY,
        ts TEXT NOT NULL,
        kind TEXT NOT NULL,
        session TEXT,
        analyst TEXT,
        purpose TEXT,
        epsilon_micro INTEGER NOT NULL,
        delta_pico INTEGER NOT NULL,
        body TEXT NOT NULL,
        hash TEXT NOT NULL,
        sig TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS entries_spend "
    "ON entries (purpose, analyst, ts, epsilon_micro, delta_pico)",
    "CREATE INDEX IF NOT EXISTS entries_kind ON entries (kind, ts)",
    "CREATE INDEX IF NOT EXISTS entries_ts ON entries (ts)",
    "CREATE INDEX IF NOT EXISTS entries_session ON entries (session)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
_INSERT = (f"INSERT INTO entries (seq, {', '.join(COLUMNS)}, body, hash, sig) "
           f"VALUES ({', '.join('?' * (len(COLUMNS) + 4))})")
_CHECKPOINT_DOMAIN = b"mesh_nb.ledger.checkpoint.v1\n"
_RESIGNED = "signature is not the owner's (re-signed or forged)"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime | str) -> str:
    """ISO-8601 UTC with microseconds (the ledger's ``ts`` format); naive means UTC."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _where(**filters: Any) -> tuple[str, list[Any]]:
    """``WHERE`` clause over equal-to filters (None value matches NULL)."""
    parts, args = [], []
    for column, value in filters.items():
        if value is None:
            parts.append(f"{column} IS NULL")
        else:
            parts.append(f"{column} = ?")
            args.append(value)
    return (" WHERE " + " AND ".join(parts)) if parts else "", args


@dataclass(frozen=True)
class Checkpoint:
    """The owner's signed statement "the ledger of ``product`` had ``count`` entries, ending
    in ``head``", kept outside the ledger file."""

    product: str
    count: int
    head: str
    ts: str
    sig: str = ""

    def message(self) -> bytes:
        """The bytes signed: a canonical string of every field but ``sig``."""
        fields = {k: v for k, v in asdict(self).items() if k != "sig"}
        return _CHECKPOINT_DOMAIN + canonical_json(fields).encode("utf-8")

    @classmethod
    def signed(cls, key: OwnerKey, product: str, count: int, head: str) -> "Checkpoint":
        """A new checkpoint signed by ``key``, stamped now."""
        unsigned = cls(product, count, head, _iso(_utcnow()))
        return replace(unsigned, sig=key.sign(unsigned.message()).hex())

    def to_json(self) -> str:
        return canonical_json(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Checkpoint":
        """Parse; ValueError if it is not a checkpoint."""
        try:
            d = json.loads(text)
            cp = cls(d["product"], d["count"], d["head"], d["ts"], d["sig"])
        except (KeyError, TypeError) as exc:
            raise ValueError("not a checkpoint") from exc
        if not (isinstance(cp.count, int) and all(isinstance(v, str) for v in
                                                  (cp.product, cp.head, cp.ts, cp.sig))):
            raise ValueError("not a checkpoint")
        return cp


def _checkpoint_problem(cp: Checkpoint | None, count: int,
                        hash_at: Callable[[int], str]) -> LedgerTampered | None:
    """What is wrong with a hash-consistent ledger of ``count`` entries given the checkpoint."""
    if cp is None:
        if count:
            return LedgerTampered(None, f"the owner's checkpoint is missing but the ledger has "
                                        f"{count} entries (checkpoint deleted, or the ledger was "
                                        "moved away from its owner directory)")
        return None
    if cp.count > count:
        return LedgerTampered(count + 1, f"ledger has {count} entries but the owner's "
                                         f"checkpoint says {cp.count} "
                                         "(tail cut or older copy restored)")
    if cp.count and hash_at(cp.count) != cp.head:
        return LedgerTampered(cp.count, f"entry {cp.count} is not the one the owner's "
                                        "checkpoint recorded (older copy restored or rewritten)")
    return None


def _row_problem(seq: int, expected: int, cols: tuple, body_json: str, digest: str, prev: str,
                 product: str) -> tuple[int, str] | None:
    """(seq to name, reason) if this row does not continue a hash-consistent chain."""
    if seq != expected:
        if seq > expected:
            return expected, (f"sequence gap: expected {expected}, found {seq} "
                              "(entries deleted)")
        return seq, f"unexpected entry {seq} before entry {expected} (inserted)"
    try:
        body = json.loads(body_json)
        own_prev = body["prev"]
    except (ValueError, KeyError, TypeError):
        return seq, "body is not a ledger entry (edited)"
    if not isinstance(own_prev, str) or chain_hash(own_prev, body_json) != digest:
        return seq, "hash does not match its contents (edited)"
    if own_prev != prev:
        where = f"entry {seq - 1}" if seq > 1 else "the start of the chain"
        return seq, f"prev hash does not link to {where} (inserted or reordered)"
    if body.get("seq") != seq:
        return seq, "entry was signed with another sequence number (reordered)"
    if body.get("product") != product:
        return seq, "entry was signed for another product (copied from another ledger)"
    for name, value in zip(COLUMNS, cols):
        if body.get(name) != value:
            return seq, f"column {name} disagrees with the signed entry (edited)"
    return None


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`Ledger.verify` checked."""

    entries: int
    checkpoint: int
    seconds: float
    signatures_checked: int
    full: bool = False

    def __str__(self) -> str:
        mode = "full" if self.full else "fast"
        return (f"ledger OK: {self.entries} entries (checkpoint {self.checkpoint}), "
                f"{self.signatures_checked} signatures checked, {mode}, {self.seconds:.3f} s")


class Ledger:
    """The owner's ledger of one data product (SQLite file at ``path``).

    ``owner_dir`` holds the owner's Ed25519 key and signed checkpoint; keep it off the ledger's
    folder when analysts can write there. ``clock`` (returns an aware datetime) is for tests.
    """

    def __init__(self, path: Path | str, owner_dir: Path | str, product: str, *,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.path = Path(path)
        self.owner_dir = Path(owner_dir)
        self.product = product
        self.key = OwnerKey.load_or_create(self.owner_dir)
        self._clock = clock
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._cp_cache: tuple[bytes, Checkpoint] | None = None
        self._cp_file = str(self.owner_dir / CHECKPOINT_FILE)
        self._lock_fd: int | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._init_schema()
        if not (self.owner_dir / CHECKPOINT_FILE).exists() and len(self) == 0:
            self._advance_checkpoint(0, GENESIS)

    # -- connection ---------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():  # never reuse one across fork()
            if self._lock_fd is not None:  # a forked copy shares the parent's flock: drop it
                os.close(self._lock_fd)
                self._lock_fd = None
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    @contextmanager
    def _transaction(self, mode: str = "IMMEDIATE") -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection()
            conn.execute(f"BEGIN {mode}")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _read(self, sql: str, args: list | tuple = ()) -> list[tuple]:
        with self._lock:
            return self._connection().execute(sql, args).fetchall()

    def _init_schema(self) -> None:
        with self._transaction() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)
            row = conn.execute("SELECT value FROM meta WHERE key = 'product'").fetchone()
            if row is None:
                conn.execute("INSERT INTO meta VALUES ('product', ?)", (self.product,))
            elif row[0] != self.product:
                raise ValueError(f"{self.path} is the ledger of product {row[0]!r}, not "
                                 f"{self.product!r} — open it with its own product name")

    def close(self) -> None:
        """Close the database connection and lock file (reopened on next use)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
            self._conn, self._lock_fd = None, None

    def __del__(self) -> None:
        with suppress(Exception):
            self.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Ledger {self.product!r} at {self.path}>"

    # -- checkpoint ---------------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.owner_dir / CHECKPOINT_FILE

    @contextmanager
    def _checkpoint_lock(self, mode: int) -> Iterator[None]:
        """``flock`` on the owner's lock file: shared to read the checkpoint, exclusive to write."""
        with self._lock:
            self._connection()  # drops a lock fd inherited through fork()
            if self._lock_fd is None:
                self._lock_fd = os.open(self.owner_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT,
                                        0o600)
            fcntl.flock(self._lock_fd, mode)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def checkpoint(self, *, cached: bool = False) -> Checkpoint | None:
        """The owner's checkpoint, signature checked; LedgerTampered if it is not the owner's.

        ``cached`` skips re-checking the signatures while the file's bytes are the ones this
        object last checked or wrote.
        """
        with self._checkpoint_lock(fcntl.LOCK_SH):
            return self._read_checkpoint(cached)

    def _read_checkpoint(self, cached: bool) -> Checkpoint | None:
        """The newest valid slot of the checkpoint file (a torn write spoils only one slot)."""
        try:
            raw = Path(self._cp_file).read_bytes()
        except FileNotFoundError:
            return None
        except OSError:
            raise LedgerTampered(None, "the owner's checkpoint is unreadable") from None
        if cached and self._cp_cache is not None and self._cp_cache[0] == raw:
            return self._cp_cache[1]  # same bytes as last checked: signatures already verified
        slots = [raw[i:i + SLOT_BYTES].strip(b" \x00\n") for i in (0, SLOT_BYTES)]
        valid, problem = [], "the owner's checkpoint is unreadable (edited)"
        for text in filter(None, slots):
            try:
                cp = Checkpoint.from_json(text.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                continue
            if not self.key.verify(cp.sig, cp.message()):
                problem = "the owner's checkpoint signature is invalid (edited)"
            elif cp.product != self.product:
                problem = ("the owner's checkpoint is for another product "
                           "(use one owner directory per product)")
            else:
                valid.append(cp)
        if not valid:
            raise LedgerTampered(None, problem)
        cp = max(valid, key=lambda c: c.count)
        self._cp_cache = (raw, cp)
        return cp

    def _advance_checkpoint(self, count: int, head: str) -> None:
        """Sign and store (count, head) if it is ahead of the stored checkpoint. Monotone.

        Under an exclusive ``flock`` the new checkpoint overwrites the older of two fixed slots
        with one ``pwrite``: no file is created, renamed or removed per append, and a write
        torn by a crash leaves the other slot, one entry older, intact.
        """
        with self._checkpoint_lock(fcntl.LOCK_EX):
            try:
                current = self._read_checkpoint(cached=True)
            except LedgerTampered:
                return  # keep the evidence; verify() and the next append report it
            if current is not None and current.count >= count:
                return
            cp = Checkpoint.signed(self.key, self.product, count, head)
            data = cp.to_json().encode("utf-8")
            if len(data) >= SLOT_BYTES:  # pragma: no cover - product names are short
                raise ValueError("product name too long for a checkpoint slot")
            fd = os.open(self._cp_file, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                os.pwrite(fd, data.ljust(SLOT_BYTES, b" "), (count % 2) * SLOT_BYTES)
                raw = os.pread(fd, 2 * SLOT_BYTES, 0)
            finally:
                os.close(fd)
            self._cp_cache = (raw, cp)

    def _guard(self, conn: sqlite3.Connection) -> tuple[int, str]:
        """(count, head hash) of the ledger, refusing one the owner's checkpoint contradicts."""
        row = conn.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
        count, head = row if row else (0, GENESIS)

        def hash_at(seq: int) -> str:
            if seq == count:
                return head
            found = conn.execute("SELECT hash FROM entries WHERE seq = ?", (seq,)).fetchone()
            return found[0] if found else ""

        problem = _checkpoint_problem(self.checkpoint(cached=True), count, hash_at)
        if problem:
            raise problem
        return count, head

    # -- writing ------------------------------------------------------------------------------

    def _insert(self, conn: sqlite3.Connection, count: int, head: str, **fields: Any) -> Entry:
        entry = Entry.seal(seq=count + 1, ts=_iso(self._clock()), product=self.product,
                           prev=head, sign=self.key.sign, **fields)
        conn.execute(_INSERT, (entry.seq, *(getattr(entry, c) for c in COLUMNS),
                               entry.body_json(), entry.hash, entry.sig))
        return entry

    def append(self, kind: str, *, session: str | None = None, analyst: str | None = None,
               purpose: str | None = None, epsilon: float = 0.0, delta: float = 0.0,
               details: Mapping[str, Any] | None = None) -> Entry:
        """Record one entry (no budget check; see :meth:`reserve` for spends).

        ValueError for an unknown kind or a ``details`` key outside the allowlist (nothing is
        written); LedgerTampered if the ledger contradicts the owner's checkpoint.
        """
        fields = dict(kind=kind, session=session, analyst=analyst, purpose=purpose,
                      epsilon_micro=to_micro(epsilon), delta_pico=to_pico(delta),
                      details=details)  # validated by Entry.seal; a ValueError rolls back
        with self._transaction() as conn:
            entry = self._insert(conn, *self._guard(conn), **fields)
        self._advance_checkpoint(entry.seq, entry.hash)
        return entry

    def reserve(self, *, analyst: str | None, purpose: str, epsilon: float, delta: float = 0.0,
                budget: Budget, session: str | None = None,
                details: Mapping[str, Any] | None = None,
                kind: str = "query.released") -> Entry:
        """Check the budget and record the spend in one ``BEGIN IMMEDIATE`` transaction.

        Spends of ``purpose`` (and of ``analyst`` when ``budget.scope == "per-analyst"``; within
        the last ``budget.period_days`` if set) plus this request must fit the budget, in
        integers. If they do not, a ``budget.exhausted`` entry is committed instead and
        :class:`BudgetExceeded` says what remains.
        """
        check_kind(kind)  # the refusal below records another kind: check the asked one now
        want = (to_micro(epsilon), to_pico(delta))
        limit = (to_micro(budget.epsilon), to_pico(budget.delta))
        clean = check_details(details)
        labels = dict(session=session, analyst=analyst, purpose=purpose)
        with self._transaction() as conn:
            count, head = self._guard(conn)
            spent = self._spent_units(conn, analyst, purpose, budget)
            left = (limit[0] - spent[0], limit[1] - spent[1])
            fits = want[0] <= left[0] and want[1] <= left[1]
            if fits:
                entry = self._insert(conn, count, head, kind=kind, epsilon_micro=want[0],
                                     delta_pico=want[1], details=clean, **labels)
            else:
                left = (max(0, left[0]), max(0, left[1]))
                refused = {**clean, "requested_epsilon": want[0] / MICRO,
                           "remaining_epsilon": left[0] / MICRO}
                entry = self._insert(conn, count, head, kind="budget.exhausted",
                                     epsilon_micro=0, delta_pico=0, details=refused, **labels)
        self._advance_checkpoint(entry.seq, entry.hash)
        if not fits:
            raise BudgetExceeded(self.product, purpose, analyst or "", want[0] / MICRO,
                                 left[0] / MICRO, want[1] / PICO, left[1] / PICO)
        return entry

    # -- budget -------------------------------------------------------------------------------

    def _spent_units(self, conn: sqlite3.Connection, analyst: str | None, purpose: str,
                     budget: Budget) -> tuple[int, int]:
        if budget.scope not in SCOPES:
            raise ValueError(f"budget scope {budget.scope!r} is not one of {', '.join(SCOPES)}")
        filters: dict[str, Any] = {"purpose": purpose}
        if budget.scope == "per-analyst":
            filters["analyst"] = analyst
        where, args = _where(**filters)
        if budget.period_days is not None:
            where += " AND ts >= ?"
            args.append(_iso(self._clock() - timedelta(days=budget.period_days)))
        sql = "SELECT COALESCE(SUM(epsilon_micro), 0), COALESCE(SUM(delta_pico), 0) FROM entries"
        eps, delta = conn.execute(sql + where, args).fetchone()
        return int(eps), int(delta)

    def spent(self, analyst: str | None, purpose: str, budget: Budget) -> tuple[float, float]:
        """(epsilon, delta) already spent against ``budget`` by this analyst/purpose."""
        with self._lock:
            eps, delta = self._spent_units(self._connection(), analyst, purpose, budget)
        return eps / MICRO, delta / PICO

    def remaining(self, analyst: str | None, purpose: str, budget: Budget) -> tuple[float, float]:
        """(epsilon, delta) still available under ``budget`` (never negative)."""
        with self._lock:
            eps, delta = self._spent_units(self._connection(), analyst, purpose, budget)
        return (max(0, to_micro(budget.epsilon) - eps) / MICRO,
                max(0, to_pico(budget.delta) - delta) / PICO)

    # -- reading ------------------------------------------------------------------------------

    def entries(self, kind: str | None = None, purpose: str | None = None,
                analyst: str | None = None, since: datetime | str | None = None,
                session: str | None = None) -> list[Entry]:
        """Entries in order, filtered by any of the arguments given (``since``: ts >= it)."""
        given = {k: v for k, v in (("kind", kind), ("purpose", purpose), ("analyst", analyst),
                                   ("session", session)) if v is not None}
        where, args = _where(**given)
        if since is not None:
            where += (" AND " if where else " WHERE ") + "ts >= ?"
            args.append(_iso(since))
        rows = self._read(f"SELECT body, hash, sig FROM entries{where} ORDER BY seq", args)
        return [Entry.parse(*row) for row in rows]

    def head(self) -> Entry | None:
        """The last entry, or None for an empty ledger."""
        rows = self._read("SELECT body, hash, sig FROM entries ORDER BY seq DESC LIMIT 1")
        return Entry.parse(*rows[0]) if rows else None

    def __len__(self) -> int:
        return self._read("SELECT COUNT(*) FROM entries")[0][0]

    # -- verification -------------------------------------------------------------------------

    def verify(self, full: bool = False) -> VerifyReport:
        """Check the ledger is exactly as the owner wrote it; LedgerTampered names the first bad
        entry (edited, deleted, inserted, reordered, re-signed, tail cut, older copy restored,
        or a checkpoint that is not the owner's).

        Fast mode (default, ~1 s per 100,000 entries) makes one linear pass recomputing every
        hash, ``prev`` link and sequence number and checking the indexed columns against the
        signed body; since each hash commits to the whole prefix, the owner's signature on the
        last hash-consistent entry plus the signed checkpoint then authenticate every entry.
        If that signature fails, a binary search over the hash-consistent chain names the
        first entry whose signature fails (signatures that verify form a prefix there).
        ``full=True`` checks every entry's signature too (about 110 µs each: 11 s per 100,000
        entries); it also catches a signature field garbled on an entry whose contents are
        intact, which fast mode cannot see and which changes nothing the ledger says.
        """
        started = time.perf_counter()
        try:  # read before the snapshot: everything the checkpoint covers is then visible
            cp, cp_error = self.checkpoint(), None
        except LedgerTampered as exc:
            cp, cp_error = None, exc
        with self._transaction("DEFERRED") as conn:
            chain, broken = self._scan(conn)
        bad, checked = self._first_bad_signature(chain, full)
        if bad is not None:
            raise LedgerTampered(bad, _RESIGNED)
        if broken is not None:
            raise broken
        if cp_error is not None:
            raise cp_error
        problem = _checkpoint_problem(cp, len(chain), lambda seq: chain[seq - 1][0])
        if problem:
            raise problem
        return VerifyReport(len(chain), cp.count if cp else 0, time.perf_counter() - started,
                            checked + (cp is not None), full)

    def _scan(self, conn: sqlite3.Connection) -> tuple[list[tuple[str, str]],
                                                       LedgerTampered | None]:
        """(hash, sig) of the hash-consistent prefix, and what breaks it (if anything)."""
        chain: list[tuple[str, str]] = []
        prev = GENESIS
        rows = conn.execute(f"SELECT seq, {', '.join(COLUMNS)}, body, hash, sig "
                            "FROM entries ORDER BY seq")
        for row in rows:
            seq, cols, body_json, digest, sig = row[0], row[1:-3], row[-3], row[-2], row[-1]
            problem = _row_problem(seq, len(chain) + 1, cols, body_json, digest, prev,
                                   self.product)
            if problem:
                return chain, LedgerTampered(*problem)
            chain.append((digest, sig))
            prev = digest
        return chain, None

    def _first_bad_signature(self, chain: list[tuple[str, str]],
                             full: bool) -> tuple[int | None, int]:
        """(seq of the first entry not signed by the owner or None, signatures checked)."""

        def good(i: int) -> bool:
            digest, sig = chain[i]
            return self.key.verify(sig, signing_message(digest))

        if full:
            for i in range(len(chain)):
                if not good(i):
                    return i + 1, i + 1
            return None, len(chain)
        if not chain or good(len(chain) - 1):
            return None, min(len(chain), 1)
        # A good signature on entry i vouches for entries 1..i (its hash commits to them), so
        # good signatures form a prefix: find where it ends.
        lo, hi, checked = -1, len(chain) - 1, 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            checked += 1
            if good(mid):
                lo = mid
            else:
                hi = mid
        return hi + 1, checked
