"""The owner's ledger of one data product: append-only, hash-chained, signed.

The rows live in a :class:`~.backend.LedgerStore`: an SQLite file by default
(:mod:`.sqlite`), or a PostgreSQL database for many analysts (:mod:`.postgres`); this module holds
everything else (chain, signatures, checkpoint, budgets, verify), the same for both.

It is the only privacy accountant: a budget is checked and spent in one transaction that holds
the store's exclusive append lock, in integer micro-epsilon and pico-delta, so concurrent
processes can never overspend and thirty 0.1 spends fit exactly in 3.0.

**Budgets come from verified state, in constant time** (:mod:`.totals`). Every entry that spends
carries its budget keys' cumulative spends in its signed body, and every entry carries the root
of a Merkle tree that says where each key's latest spend is. ``reserve()`` authenticates the head
(its signature, and the owner's checkpoint), then the two buckets it needs against the head's
root, then the latest spends they point to; it never trusts an unsigned index or column, and any
edit of what it reads raises :class:`~mesh_nb.errors.LedgerTampered` instead of granting. The
cost does not grow with the ledger (a period budget adds one O(log n) index search).

**Time the ledger trusts.** An entry's ``ts`` is the store's clock read inside the append
transaction (the server's ``clock_timestamp()`` for PostgreSQL, the host's for SQLite), and never
earlier than its predecessor's: a clock that went back stamps the predecessor's time, so a period
window is counted in chain order and a writer cannot hide spends by stamping them in the past.
``verify()`` reports an entry earlier than its predecessor.

A hash chain alone cannot see a cut tail or a restored older copy, so after every append the
owner's signed checkpoint (entry count and head hash) is advanced *outside* the ledger, in
``owner_dir/checkpoint.slots`` (two fixed slots, the older overwritten by one ``pwrite``).
Appends refuse to extend a ledger that is behind its checkpoint or that disagrees with it
(otherwise a rolled-back ledger would both free budget and launder itself).

The checkpoint stays a file in the owner directory for a PostgreSQL ledger too. A signed
checkpoint kept in the same database would not help: whoever can cut or restore the ledger's
table can cut or restore the checkpoint table with it (one ``pg_restore`` rolls back both), so
it would only catch what the hash chain already catches. Kept apart, it catches rollback by the
database's administrator. The trade-off: it is exact only while every writer shares one owner
directory (all writers on one host, or the owner directory on a shared file system with working
``flock``). A writer on another host with its own copy of the owner directory keeps its own
checkpoint, which lags and so is still a valid lower bound (no false alarm), but only catches a
rollback below what that host itself wrote.

Every lock has a timeout (``lock_timeout``, default 30 s or ``$MESH_NB_LEDGER_LOCK_TIMEOUT``):
the checkpoint's ``flock``, SQLite's write lock and PostgreSQL's row lock; a holder that is
stopped or hung makes the waiter fail with a :class:`~mesh_nb.errors.LedgerError` naming the
lock. Every storage failure is a LedgerError; none quotes a row.

Durability: SQLite WAL with ``synchronous=NORMAL`` and a checkpoint written without fsync
survive a killed process; after a power loss the last commits may be lost while the checkpoint
is not, and ``verify()`` then reports the ledger as cut — the owner must look into it.

Ledgers written before running totals existed (entries without ``state``) stay readable
(``entries()``, ``verify()``); writing to one, or reading its budgets, raises LedgerError asking
the owner to run :meth:`Ledger.migrate` once (``mesh-nb ledger migrate PRODUCT``).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import threading
import time
from collections import OrderedDict
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from ..contract.model import Budget
from ..errors import BudgetExceeded, LedgerError, LedgerTampered
from ..text import plural
from .backend import COLUMNS, LedgerStore, Rows, Where
from .entry import (GENESIS, MICRO, PICO, Entry, canonical_json, chain_hash, check_details,
                    check_kind, check_name, signing_message, to_micro, to_pico)
from .keys import OwnerKey
from .sqlite import SqliteStore
from .totals import (EMPTY_ROOT, SCOPES, StateProblem, Tree, full_tree, key_of, keys_of,
                     proof_ids, spend_digest)

CHECKPOINT_FILE = "checkpoint.slots"
SLOT_BYTES = 1024  # two slots; each append overwrites the older one with a single pwrite
LOCK_FILE = "checkpoint.lock"
LOCK_TIMEOUT_ENV = "MESH_NB_LEDGER_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT_S = 30.0

_CHECKPOINT_DOMAIN = b"mesh_nb.ledger.checkpoint.v1\n"
_RESIGNED = "signature is not the owner's (re-signed or forged)"
_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00")
_TRUSTED = 256  # entries whose signature this object checked or wrote, remembered


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime | str) -> str:
    """ISO-8601 UTC with microseconds (the ledger's ``ts`` format); naive means UTC."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _lock_timeout(value: float | None) -> float:
    if value is not None:
        return float(value)
    try:
        return float(os.environ.get(LOCK_TIMEOUT_ENV, DEFAULT_LOCK_TIMEOUT_S))
    except ValueError:
        raise LedgerError(f"${LOCK_TIMEOUT_ENV} must be a number of seconds") from None


def _migrate_error(location: str) -> LedgerError:
    return LedgerError(
        f"the ledger at {location} was written by an older mesh_nb, without running totals: "
        "it can be read and verified, not extended — migrate it once with `mesh-nb ledger "
        "migrate PRODUCT` (Ledger.migrate()), which verifies it and re-seals the same entries "
        "with their totals, keeping the old rows in the table entries_v1")


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



def _entry_problem(seq: int, cols: tuple, body_json: Any, digest: Any, product: str,
                   prev: str | None = None) -> tuple[tuple[int, str] | None, dict | None]:
    """((seq, reason) or None, parsed body) for one stored row; ``prev``: the hash it must
    link to (None: not checked)."""
    try:
        body = json.loads(body_json)
        own_prev = body["prev"]
    except (ValueError, KeyError, TypeError):
        return (seq, "body is not a ledger entry (edited)"), None
    if not isinstance(body, dict) or not isinstance(own_prev, str) or \
            not isinstance(digest, str) or chain_hash(own_prev, body_json) != digest:
        return (seq, "hash does not match its contents (edited)"), None
    if prev is not None and own_prev != prev:
        where = f"entry {seq - 1}" if seq > 1 else "the start of the chain"
        return (seq, f"prev hash does not link to {where} (inserted or reordered)"), None
    if body.get("seq") != seq:
        return (seq, "entry was signed with another sequence number (reordered)"), None
    if body.get("product") != product:
        return (seq, "entry was signed for another product (copied from another ledger)"), None
    for name, value in zip(COLUMNS, cols):
        if body.get(name) != value:
            return (seq, f"column {name} disagrees with the signed entry (edited)"), None
    return None, body


def _row_problem(seq: int, expected: int, cols: tuple, body_json: str, digest: str, prev: str,
                 product: str) -> tuple[tuple[int, str] | None, dict | None]:
    """((seq, reason) or None, body) if this row does not continue a hash-consistent chain."""
    if seq != expected:
        if seq > expected:
            return (expected, f"sequence gap: expected {expected}, found {seq} "
                              "(entries deleted)"), None
        return (seq, f"unexpected entry {seq} before entry {expected} (inserted)"), None
    return _entry_problem(seq, cols, body_json, digest, product, prev)


def _spends(body: Mapping[str, Any]) -> bool:
    return bool(body.get("epsilon_micro") or body.get("delta_pico"))


@dataclass(frozen=True)
class _Last:
    """A key's spend, authenticated: its entry and its record under one scope."""

    entry: Entry
    n: int
    eps: int
    delta: int
    parent_seq: int
    parent_digest: str
    digest: str


def _last_of(entry: Entry, scope: str, digest: str | None = None) -> _Last:
    record = (entry.totals or {}).get(scope)
    if not (isinstance(record, list) and len(record) == 5
            and all(isinstance(v, int) and not isinstance(v, bool) for v in record[:4])
            and isinstance(record[4], str)):
        raise LedgerTampered(entry.seq, "its running totals are missing or malformed (edited)")
    n, eps, delta, parent_seq, parent_digest = record
    return _Last(entry, n, eps, delta, parent_seq, parent_digest,
                 digest or spend_digest(entry.body()))


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
        return (f"ledger OK: {plural(self.entries, 'entry')} (checkpoint {self.checkpoint}), "
                f"{self.signatures_checked} signatures checked, {mode}, {self.seconds:.3f} s")

    def _repr_pretty_(self, p, cycle: bool) -> None:  # IPython shows the readable form
        p.text(str(self))


def open_store(location: "Path | str | LedgerStore", product: str, *,
               lock_timeout: float | None = None,
               clock: Callable[[], datetime] | None = None) -> LedgerStore:
    """The store at ``location``: a PostgreSQL URL (``postgresql+psycopg://...``), an SQLite file
    path, or a :class:`~.backend.LedgerStore` already built. ``clock`` is the SQLite host's
    clock (tests); a PostgreSQL ledger always takes the time from its server."""
    timeout = _lock_timeout(lock_timeout)
    if isinstance(location, str) and "://" in location:
        from .postgres import PostgresStore  # SQLAlchemy only when a server ledger is used

        return PostgresStore(location, product, lock_timeout=timeout)
    if isinstance(location, (str, os.PathLike)):
        return SqliteStore(location, lock_timeout=timeout, clock=clock)
    return location


class Ledger:
    """The owner's ledger of one data product, kept in the store at ``location``.

    ``location`` is an SQLite file path, a PostgreSQL URL without password, or a store (see
    :func:`open_store`). ``owner_dir`` holds the owner's Ed25519 key and signed checkpoint; keep
    it off the ledger's folder when analysts can write there. ``clock`` (returns an aware
    datetime) is the host clock of an SQLite ledger, for tests; a PostgreSQL ledger uses its
    server's. ``lock_timeout``: seconds to wait for any of the ledger's locks.
    """

    def __init__(self, location: "Path | str | LedgerStore", owner_dir: Path | str,
                 product: str, *, clock: Callable[[], datetime] | None = None,
                 lock_timeout: float | None = None) -> None:
        check_name("product", product)
        if not product:
            raise ValueError("product must be a non-empty name")
        self.lock_timeout = _lock_timeout(lock_timeout)
        self.store = open_store(location, product, lock_timeout=self.lock_timeout, clock=clock)
        self.owner_dir = Path(owner_dir)
        self.product = product
        self._lock = threading.RLock()
        self._cp_slots: dict[bytes, Checkpoint] = {}  # slot bytes already checked -> checkpoint
        self._cp_file = str(self.owner_dir / CHECKPOINT_FILE)
        self._lock_fd: int | None = None
        self._lock_pid = 0
        self._trusted: OrderedDict[int, str] = OrderedDict()  # seq -> hash, signature checked
        self.store.bind(product)
        count = len(self)
        try:
            self.key = OwnerKey.load_or_create(self.owner_dir, create=count == 0)
        except OSError as exc:
            raise self._os_error(exc, "read or create the owner's key") from None
        if not (self.owner_dir / CHECKPOINT_FILE).exists() and count == 0:
            self._advance_checkpoint(0, GENESIS)

    @property
    def location(self) -> str:
        """Where the entries live: the SQLite file or the PostgreSQL URL (no password)."""
        return self.store.location

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None for a server ledger."""
        return getattr(self.store, "path", None)

    def close(self) -> None:
        """Close the database connection and lock file (reopened on next use)."""
        with self._lock:
            self.store.close()
            if self._lock_fd is not None and self._lock_pid == os.getpid():
                os.close(self._lock_fd)
            self._lock_fd = None

    def __del__(self) -> None:
        with suppress(Exception):
            self.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Ledger {self.product!r} at {self.location}>"

    # -- checkpoint ---------------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.owner_dir / CHECKPOINT_FILE

    def _os_error(self, exc: OSError, what: str) -> LedgerError:
        reason = exc.strerror or type(exc).__name__
        return LedgerError(f"cannot {what} in the owner directory {self.owner_dir} ({reason}) — "
                           "free space or fix its permissions, then retry")

    @contextmanager
    def _checkpoint_lock(self, mode: int) -> Iterator[None]:
        """``flock`` on the owner's lock file: shared to read the checkpoint, exclusive to write.

        Waits at most ``lock_timeout`` seconds, then raises LedgerError naming the lock.
        """
        with self._lock:
            if self._lock_fd is not None and self._lock_pid != os.getpid():
                os.close(self._lock_fd)  # a forked copy shares the parent's flock: drop it
                self._lock_fd = None
            if self._lock_fd is None:
                try:
                    self._lock_fd = os.open(self.owner_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT,
                                            0o600)
                except OSError as exc:
                    raise self._os_error(exc, "open the checkpoint lock") from None
                self._lock_pid = os.getpid()
            deadline, pause = time.monotonic() + self.lock_timeout, 0.0005
            while True:
                try:
                    fcntl.flock(self._lock_fd, mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        lock = self.owner_dir / LOCK_FILE
                        raise LedgerError(
                            f"the owner's checkpoint lock {lock} has been held by another "
                            f"process for more than {self.lock_timeout:g} s (a stopped or hung "
                            f"mesh_nb process?) — find it with `fuser {lock}`, resume or end "
                            "it, then retry") from None
                    time.sleep(pause)
                    pause = min(pause * 2, 0.005)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def checkpoint(self, *, cached: bool = False) -> Checkpoint | None:
        """The owner's checkpoint, signature checked; LedgerTampered if it is not the owner's.

        ``cached`` skips re-checking the signature of a slot whose bytes this object last
        checked or wrote.
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
        return self._newest_slot(raw, "the owner's checkpoint", cached=cached, remember=True)

    def _newest_slot(self, raw: bytes, name: str, *, cached: bool = False,
                     remember: bool = False) -> Checkpoint:
        """The newest slot of checkpoint bytes ``raw`` that is the owner's, for this product
        (``remember``: note it as this process's checked slot)."""
        slots = [raw[i:i + SLOT_BYTES].strip(b" \x00\n") for i in (0, SLOT_BYTES)]
        parsed = []
        for text in filter(None, slots):
            try:
                parsed.append((Checkpoint.from_json(text.decode("utf-8")), text))
            except (UnicodeDecodeError, ValueError):
                continue
        problem = f"{name} is unreadable (edited)"
        # The newest slot that checks out wins; other writers rewrite one slot per append, so
        # usually one signature is new to this process and the other slot's was checked before.
        for cp, text in sorted(parsed, key=lambda pair: -pair[0].count):
            if cached and self._cp_slots.get(text) == cp:
                return cp
            if not self.key.verify(cp.sig, cp.message()):
                problem = f"{name} signature is invalid (edited)"
            elif cp.product != self.product:
                problem = (f"{name} is for another product "
                           "(use one owner directory per product)")
            else:
                if remember:
                    self._remember_slot(text, cp)
                return cp
        raise LedgerTampered(None, problem)

    def witness(self, path: Path | str) -> Checkpoint:
        """A second witness: a copy of the owner's checkpoint file kept elsewhere (another
        host, a backup), signature checked. :meth:`verify` with ``witness=`` checks the ledger
        still holds the entries it recorded."""
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise LedgerError(f"cannot read the witness checkpoint {path} "
                              f"({exc.strerror or type(exc).__name__}) — give a copy of "
                              f"{CHECKPOINT_FILE} taken from the owner directory") from None
        return self._newest_slot(raw, f"the witness checkpoint {Path(path).name}")

    def _remember_slot(self, text: bytes, cp: Checkpoint) -> None:
        """Note a slot whose signature this process checked or wrote (the last few only)."""
        self._cp_slots[text] = cp
        while len(self._cp_slots) > 4:
            del self._cp_slots[next(iter(self._cp_slots))]

    def _advance_checkpoint(self, count: int, head: str, *, force: bool = False) -> None:
        """Sign and store (count, head) if it is ahead of the stored checkpoint. Monotone
        (``force``: a migration's new chain, once).

        Under an exclusive ``flock`` the new checkpoint overwrites the older of two fixed slots
        with one ``pwrite``: no file is created, renamed or removed per append, and a write
        torn by a crash leaves the other slot, one entry older, intact.
        """
        with self._checkpoint_lock(fcntl.LOCK_EX):
            try:
                current = self._read_checkpoint(cached=True)
            except LedgerTampered:
                if not force:
                    return  # keep the evidence; verify() and the next append report it
                current = None
            if current is not None and current.count >= count and not force:
                return
            cp = Checkpoint.signed(self.key, self.product, count, head)
            data = cp.to_json().encode("utf-8")
            if len(data) >= SLOT_BYTES:  # pragma: no cover - product names are short
                raise ValueError("product name too long for a checkpoint slot")
            try:
                fd = os.open(self._cp_file, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    if force:  # both slots: no older checkpoint of the old chain survives
                        os.pwrite(fd, data.ljust(SLOT_BYTES, b" ") * 2, 0)
                    else:
                        os.pwrite(fd, data.ljust(SLOT_BYTES, b" "), (count % 2) * SLOT_BYTES)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise self._os_error(exc, f"write the owner's checkpoint (entry {count} is "
                                          "recorded; the checkpoint lags until the next "
                                          "append)") from None
            self._remember_slot(data, cp)

    # -- reading entries back, authenticated --------------------------------------------------

    def _trust(self, seq: int, digest: str) -> None:
        self._trusted[seq] = digest
        self._trusted.move_to_end(seq)
        while len(self._trusted) > _TRUSTED:
            self._trusted.popitem(last=False)

    def _checked(self, row: tuple | None, *, signed: bool = False,
                 digest: str | None = None, what: str = "entry") -> Entry:
        """The entry of a stored row, its hash, columns and sequence checked; ``signed``: its
        owner's signature too; ``digest``: its spend must be the one a bucket or a later spend
        recorded. LedgerTampered otherwise."""
        if row is None:
            raise LedgerTampered(None, f"the {what} is not in the ledger (deleted, or an "
                                       "index was edited)")
        seq = row[0]
        problem, body = _entry_problem(seq, row[1:-3], row[-3], row[-2], self.product)
        if problem:
            raise LedgerTampered(*problem)
        if digest is not None and spend_digest(body) != digest:
            raise LedgerTampered(seq, "this spend is not the one the running totals recorded "
                                      "(edited, or an index points elsewhere)")
        if signed and self._trusted.get(seq) != row[-2]:
            if not self.key.verify(row[-1], signing_message(row[-2])):
                raise LedgerTampered(seq, _RESIGNED)
            self._trust(seq, row[-2])
        try:
            return Entry.parse(row[-3], row[-2], row[-1])
        except ValueError:
            raise LedgerTampered(seq, "body is not a ledger entry (edited)") from None

    def _head(self, rows: Rows, cp: Checkpoint | None) -> Entry | None:
        """The last entry, signature checked, of a ledger the checkpoint ``cp`` does not
        contradict; LedgerTampered otherwise.

        ``cp`` is read before the append lock is taken, keeping the checkpoint file's lock out
        of the appends' critical section: a checkpoint only moves forward, after its entries
        are committed, so an older one is still a bound the ledger must meet.
        """
        row = rows.head()
        count = row[0] if row else 0

        def hash_at(seq: int) -> str:
            return row[-2] if row and seq == row[0] else rows.hash_at(seq) or ""

        problem = _checkpoint_problem(cp, count, hash_at)
        if problem:
            raise problem
        return self._checked(row, signed=True) if row else None

    def _ts(self, rows: Rows, head: Entry | None) -> str:
        """The new entry's time: the store's clock, never before the head's."""
        now = _iso(rows.now())
        return max(now, head.ts) if head is not None else now

    def _state(self, rows: Rows, head: Entry | None,
               keys: Mapping[str, str]) -> tuple[Tree, dict[str, _Last | None]]:
        """The tree nodes for ``keys`` authenticated against the head's root, and each scope's
        latest spend, authenticated against its bucket."""
        if head is not None and head.state is None:
            raise _migrate_error(self.location)
        tree = Tree(rows.nodes(proof_ids(keys.values())), head.state if head else EMPTY_ROOT)
        try:
            latest = {scope: tree.latest(key) for scope, key in keys.items()}
        except StateProblem as exc:
            raise LedgerTampered(None, str(exc)) from None
        wanted = {seq for seq, _ in filter(None, latest.values())}
        fetched = rows.rows_at(wanted - {head.seq}) if head else {}
        lasts: dict[str, _Last | None] = {}
        for scope, found in latest.items():
            if found is None:
                lasts[scope] = None
                continue
            seq, digest = found
            if head is not None and seq == head.seq:
                entry = head
                if spend_digest(head.body()) != digest:
                    raise LedgerTampered(seq, "this spend is not the one the running totals "
                                              "recorded (edited)")
            else:
                entry = self._checked(fetched.get(seq), digest=digest,
                                      what="latest spend the running totals point to")
            last = _last_of(entry, scope, digest)
            if key_of(scope, entry.purpose, entry.analyst) != keys[scope]:
                raise LedgerTampered(seq, "the running totals point to a spend of another "
                                          "budget (edited)")
            lasts[scope] = last
        return tree, lasts

    def _window(self, rows: Rows, scope: str, key: str, last: _Last | None,
                since: str) -> tuple[int, int]:
        """(epsilon, delta) units ``key`` spent at or after ``since`` (see :mod:`.totals`)."""
        if last is None or last.entry.ts < since:
            return 0, 0
        before = rows.spend_before(key, since)
        n = before[0] + 1 if before else 1
        if n == last.n:
            first = last
        else:
            seq = rows.spend_seq(key, n) if 0 < n < last.n else None
            row = rows.rows_at([seq]).get(seq) if seq is not None else None
            first = _last_of(self._checked(row, signed=True, what="first spend of the period"),
                             scope)
            entry = first.entry
            if first.n != n or entry.seq > last.entry.seq or \
                    key_of(scope, entry.purpose, entry.analyst) != key:
                raise LedgerTampered(entry.seq, "the spends index points to another spend than "
                                                "the period's first (edited)")
        if first.entry.ts < since:
            raise LedgerTampered(first.entry.seq, "the spends index hides spends inside the "
                                                  "budget period (edited)")
        if first.n == 1:
            if first.parent_seq != 0:
                raise LedgerTampered(first.entry.seq, "its running totals are malformed (edited)")
            return last.eps, last.delta
        row = rows.rows_at([first.parent_seq]).get(first.parent_seq)
        before_entry = self._checked(row, digest=first.parent_digest, what="spend before the "
                                                                              "period")
        prior = _last_of(before_entry, scope)
        if prior.n != first.n - 1 or before_entry.ts >= since:
            raise LedgerTampered(before_entry.seq, "the spends index disagrees with the signed "
                                                   "spends around the period's start (edited)")
        return last.eps - prior.eps, last.delta - prior.delta

    def _spent_in(self, rows: Rows, budget: Budget, keys: Mapping[str, str],
                  lasts: Mapping[str, _Last | None], ts: str) -> tuple[int, int]:
        """(epsilon, delta) units spent against ``budget`` as of the time ``ts``."""
        if budget.scope not in SCOPES:
            raise ValueError(f"budget scope {budget.scope!r} is not one of {', '.join(SCOPES)}")
        last = lasts[budget.scope]
        if budget.period_days is None:
            return (last.eps, last.delta) if last else (0, 0)
        since = _iso(datetime.fromisoformat(ts) - timedelta(days=budget.period_days))
        return self._window(rows, budget.scope, keys[budget.scope], last, since)

    # -- writing ------------------------------------------------------------------------------

    def _seal(self, rows: Rows, head: Entry | None, ts: str, *, tree: Tree | None = None,
              lasts: Mapping[str, _Last | None] | None = None, keys: Mapping[str, str] | None
              = None, **fields: Any) -> tuple[Entry, list[tuple], list[tuple]]:
        """(entry, nodes to store, spends to index) for the next entry: with running totals if
        it spends (``tree``, ``lasts`` and ``keys`` of its budget keys are then required)."""
        seq = head.seq + 1 if head else 1
        prev = head.hash if head else GENESIS
        state = head.state if head else EMPTY_ROOT
        totals, nodes, spends, digest = None, [], [], None
        if fields["epsilon_micro"] or fields["delta_pico"]:
            assert tree is not None and lasts is not None and keys is not None
            totals = {}
            for scope in SCOPES:
                last = lasts[scope]
                totals[scope] = [
                    (last.n if last else 0) + 1,
                    (last.eps if last else 0) + fields["epsilon_micro"],
                    (last.delta if last else 0) + fields["delta_pico"],
                    last.entry.seq if last else 0, last.digest if last else GENESIS]
            digest = spend_digest({"seq": seq, "ts": ts, "purpose": fields["purpose"],
                                   "analyst": fields["analyst"], "totals": totals,
                                   "epsilon_micro": fields["epsilon_micro"],
                                   "delta_pico": fields["delta_pico"]})
            state, nodes = tree.updated({keys[scope]: (seq, digest) for scope in SCOPES})
            spends = [(keys[scope], totals[scope][0], ts, seq) for scope in SCOPES]
        entry = Entry.seal(seq=seq, ts=ts, product=self.product, prev=prev, sign=self.key.sign,
                           state=state, totals=totals, checked=True, **fields)
        self._last_digest = digest
        return entry, nodes, spends

    def _write(self, rows: Rows, entry: Entry, nodes: list[tuple], spends: list[tuple]) -> None:
        if nodes:
            rows.append(_row_of(entry), nodes, spends)
        else:
            rows.insert(_row_of(entry))
        self._trust(entry.seq, entry.hash)

    def append(self, kind: str, *, session: str | None = None, analyst: str | None = None,
               purpose: str | None = None, epsilon: float = 0.0, delta: float = 0.0,
               details: Mapping[str, Any] | None = None) -> Entry:
        """Record one entry (no budget check; see :meth:`reserve` for spends).

        ValueError for an unknown kind, a name the ledger does not keep, or a ``details`` key
        outside the allowlist (nothing is written); LedgerTampered if the ledger contradicts
        the owner's checkpoint or its running totals; LedgerError if its storage fails.
        """
        check_kind(kind)
        labels = _labels(session, analyst, purpose)
        fields = dict(kind=kind, epsilon_micro=to_micro(epsilon), delta_pico=to_pico(delta),
                      details=check_details(details), **labels)
        spends = bool(fields["epsilon_micro"] or fields["delta_pico"])
        keys = keys_of(purpose, analyst)
        cp = self.checkpoint(cached=True)
        with self.store.writing() as rows:
            if spends:
                rows.prefetch(proof_ids(keys.values()), keys.values())
            head = self._head(rows, cp)
            if head is not None and head.state is None:
                raise _migrate_error(self.location)
            ts = self._ts(rows, head)
            extra: dict[str, Any] = {}
            if spends:
                tree, lasts = self._state(rows, head, keys)
                extra = dict(tree=tree, lasts=lasts, keys=keys)
            entry, nodes, indexed = self._seal(rows, head, ts, **extra, **fields)
            self._write(rows, entry, nodes, indexed)
        self._advance_checkpoint(entry.seq, entry.hash)
        return entry

    def reserve(self, *, analyst: str | None, purpose: str, epsilon: float, delta: float = 0.0,
                budget: Budget, session: str | None = None,
                details: Mapping[str, Any] | None = None,
                kind: str = "query.released") -> Entry:
        """Check the budget and record the spend in one transaction under the append lock.

        Spends of ``purpose`` (and of ``analyst`` when ``budget.scope == "per-analyst"``; within
        the last ``budget.period_days`` of ledger time if set) plus this request must fit the
        budget, in integers; what was spent is read from the running totals, authenticated
        (LedgerTampered if anything it reads was edited). If they do not fit, a
        ``budget.exhausted`` entry is committed instead and :class:`BudgetExceeded` says what
        remains. :func:`reserve_all` does the same across several ledgers at once.
        """
        return reserve_all([(self, budget)], analyst=analyst, purpose=purpose, epsilon=epsilon,
                           delta=delta, session=session, details=details, kind=kind)[0]

    # -- budget -------------------------------------------------------------------------------

    def _spent_units(self, analyst: str | None, purpose: str,
                     budget: Budget) -> tuple[int, int]:
        labels = _labels(None, analyst, purpose)
        keys = keys_of(labels["purpose"], labels["analyst"])
        cp = self.checkpoint(cached=True)
        with self.store.reading() as rows:
            rows.prefetch(proof_ids(keys.values()), keys.values())
            head = self._head(rows, cp)
            ts = self._ts(rows, head)
            _, lasts = self._state(rows, head, keys)
            return self._spent_in(rows, budget, keys, lasts, ts)

    def spent(self, analyst: str | None, purpose: str, budget: Budget) -> tuple[float, float]:
        """(epsilon, delta) already spent against ``budget`` by this analyst/purpose (within
        its period, as of now), from the authenticated running totals."""
        eps, delta = self._spent_units(analyst, purpose, budget)
        return eps / MICRO, delta / PICO

    def remaining(self, analyst: str | None, purpose: str, budget: Budget) -> tuple[float, float]:
        """(epsilon, delta) still available under ``budget`` (never negative)."""
        eps, delta = self._spent_units(analyst, purpose, budget)
        return (max(0, to_micro(budget.epsilon, up=False) - eps) / MICRO,
                max(0, to_pico(budget.delta, up=False) - delta) / PICO)

    # -- bulk writes --------------------------------------------------------------------------

    def _whole_state(self, rows: Rows, head: Entry | None) -> tuple[Tree, dict[str, _Last]]:
        """Every node of the tree, checked against the head's root, and every key's latest
        spend (a bulk write keeps the whole tree in memory)."""
        if head is not None and head.state is None:
            raise _migrate_error(self.location)
        nodes = {i: (h, c) for i, h, c in rows.scan_nodes()}
        tree = Tree(nodes, head.state if head else EMPTY_ROOT)
        latest: dict[str, tuple[int, str]] = {}
        try:
            for i, (_, content) in nodes.items():
                if content is not None:
                    latest.update({k: v for k, v in tree.bucket_at(i).items()})
        except StateProblem as exc:
            raise LedgerTampered(None, str(exc)) from None
        if full_tree(latest).get(1, (EMPTY_ROOT,))[0] != tree.root:
            raise LedgerTampered(None, "the running totals do not lead to the root the chain head "
                                       "signed (edited)")
        fetched = rows.rows_at({seq for seq, _ in latest.values()})
        lasts: dict[str, _Last] = {}
        for key, (seq, digest) in latest.items():
            entry = self._checked(fetched.get(seq), digest=digest,
                                  what="latest spend the running totals point to")
            lasts[key] = _last_of(entry, json.loads(key)[0], digest)
        return tree, lasts

    def append_many(self, specs: Iterable[Mapping[str, Any]], *, batch: int = 5000) -> int:
        """Append many entries in one transaction, each sealed exactly as :meth:`append` would
        (running totals, state, signature), without budget checks: for migrations and for
        building big ledgers in benchmarks and tests. A spec holds ``append``'s keyword
        arguments (``epsilon``/``delta``, or ``epsilon_micro``/``delta_pico``) and may hold
        ``ts`` (kept if not before its predecessor's). Returns the number appended."""
        return self._append_many(specs, batch=batch)

    def _append_many(self, specs: Iterable[Mapping[str, Any]], *, batch: int = 5000,
                     migrating_from: str | None = None) -> int:
        cp = None if migrating_from else self.checkpoint(cached=True)
        written = 0
        with self.store.writing() as rows:
            if migrating_from:  # re-seal in place: the old rows go to entries_v1, same txn
                row = rows.head()
                if row is None or row[-2] != migrating_from:
                    raise LedgerError("the ledger changed while migrating — retry")
                _keep_v1(rows)
                rows.clear()
            head = self._head(rows, cp)
            tree, by_key = self._whole_state(rows, head)
            pending: list[tuple] = []
            pending_spends: list[tuple] = []
            changed: dict[int, tuple] = {}
            for spec in specs:
                fields = _fields(spec)
                ts = _iso(spec["ts"]) if spec.get("ts") else _iso(rows.now())
                ts = max(ts, head.ts) if head else ts
                extra: dict[str, Any] = {}
                if fields["epsilon_micro"] or fields["delta_pico"]:
                    keys = keys_of(fields["purpose"], fields["analyst"])
                    extra = dict(tree=tree, keys=keys,
                                 lasts={s: by_key.get(k) for s, k in keys.items()})
                entry, nodes, spends = self._seal(rows, head, ts, **extra, **fields)
                if nodes:
                    tree.apply(entry.state, nodes)
                    changed.update((node[0], node) for node in nodes)
                    for scope, key in extra["keys"].items():
                        by_key[key] = _last_of(entry, scope, self._last_digest)
                pending.append(_row_of(entry))
                pending_spends.extend(spends)
                head = entry
                written += 1
                if len(pending) >= batch:
                    rows.insert_many(pending)
                    rows.put_spends(pending_spends)
                    pending, pending_spends = [], []
            if pending:
                rows.insert_many(pending)
                rows.put_spends(pending_spends)
            rows.put_nodes(list(changed.values()))
        if head is not None:
            self._trust(head.seq, head.hash)
            if migrating_from:
                self._cp_slots.clear()
            self._advance_checkpoint(head.seq, head.hash, force=bool(migrating_from))
        return written

    def migrate(self) -> int:
        """Re-seal a ledger written before running totals: verify it, keep its rows in the
        table ``entries_v1``, and write the same entries (kind, names, spends, details, times
        raised to never go back) with their running totals, in one transaction; then a new
        checkpoint. Returns the number of entries migrated (0 if the ledger already has running
        totals). Interrupted between that commit and the checkpoint, ``verify()`` reports the
        checkpoint's head: the old rows are in ``entries_v1``."""
        head = self.head()
        if head is None or head.state is not None:
            return 0
        self.verify()
        specs = [dict(kind=e.kind, session=e.session, analyst=e.analyst, purpose=e.purpose,
                      epsilon_micro=e.epsilon_micro, delta_pico=e.delta_pico,
                      details=e.details, ts=e.ts, _trusted_names=True) for e in self.entries()]
        return self._append_many(specs, migrating_from=head.hash)

    # -- reading ------------------------------------------------------------------------------

    def entries(self, kind: str | None = None, purpose: str | None = None,
                analyst: str | None = None, since: datetime | str | None = None,
                session: str | None = None) -> list[Entry]:
        """Entries in order, filtered by any of the arguments given (``since``: ts >= it)."""
        equal = tuple((k, v) for k, v in (("kind", kind), ("purpose", purpose),
                                          ("analyst", analyst), ("session", session))
                      if v is not None)
        for name, value in equal:
            if name != "kind":
                check_name(name, value)
        where = Where(equal, None if since is None else _iso(since))
        with self.store.reading() as rows:
            found = rows.select(where)
        return [_parse(row) for row in found]

    def head(self) -> Entry | None:
        """The last entry, or None for an empty ledger."""
        with self.store.reading() as rows:
            found = rows.select(Where(), last=True)
        return _parse(found[0]) if found else None

    def __len__(self) -> int:
        with self.store.reading() as rows:
            return rows.count()

    # -- verification -------------------------------------------------------------------------

    def verify(self, full: bool = False, *, witness: Path | str | None = None) -> VerifyReport:
        """Check the ledger is exactly as the owner wrote it; LedgerTampered names the first bad
        entry (edited, deleted, inserted, reordered, re-signed, tail cut, older copy restored,
        earlier than its predecessor, running totals that disagree with the spends, or a
        checkpoint that is not the owner's).

        Fast mode (default) makes one linear pass recomputing every hash, ``prev`` link and
        sequence number, checking the indexed columns against the signed body, each spend's
        running totals against the sums of the spends before it, and that time never goes
        back; then the head's running-totals root against the tree rebuilt from the entries,
        and the stored tree and spends index against it. Since each hash commits to the whole
        prefix, the owner's signature on the last hash-consistent entry plus the signed
        checkpoint then authenticate every entry. If that signature fails, a binary search
        over the hash-consistent chain names the first entry whose signature fails.
        ``full=True`` checks every entry's signature and every entry's running-totals root
        too, and on SQLite that every index agrees with its table (``PRAGMA integrity_check``).
        ``witness``: a copy of the checkpoint file kept elsewhere (:meth:`witness`); the ledger
        must still hold the entry it names, so a rollback of the owner directory together with
        the ledger is caught too.
        """
        started = time.perf_counter()
        second = self.witness(witness) if witness is not None else None
        try:  # read before the snapshot: everything the checkpoint covers is then visible
            cp, cp_error = self.checkpoint(), None
        except LedgerTampered as exc:
            cp, cp_error = None, exc
        with self.store.reading() as rows:
            chain, broken, state = self._scan(rows, full)
            stored_problem = semantic = None
            if isinstance(state, tuple) and len(state) == 2:  # (seq, reason) of a wrong entry
                semantic, state = state, None
            if broken is None and state is not None:
                stored_problem = _stored_problem(rows, *state)
            if broken is None and stored_problem is None and full and \
                    hasattr(rows, "integrity_problem"):
                found = rows.integrity_problem()
                if found:
                    stored_problem = LedgerTampered(None, f"SQLite's integrity check fails "
                                                          f"({found}): an index disagrees with "
                                                          "its table (edited alone) or the file "
                                                          "is damaged")
        bad, checked = self._first_bad_signature(chain, full)
        if bad is not None and (semantic is None or bad <= semantic[0]):
            raise LedgerTampered(bad, _RESIGNED)
        if semantic is not None:
            raise LedgerTampered(*semantic)
        if broken is not None:
            raise broken
        if cp_error is not None:
            raise cp_error
        hash_at = lambda seq: chain[seq - 1][0]  # noqa: E731
        problem = _checkpoint_problem(cp, len(chain), hash_at)
        if problem:
            raise problem
        problem = second and _checkpoint_problem(second, len(chain), hash_at)
        if problem:
            raise LedgerTampered(problem.seq, f"{problem.reason} — by the witness checkpoint "
                                              f"(entry {second.count}, {second.ts})")
        if stored_problem is not None:
            raise stored_problem
        return VerifyReport(len(chain), cp.count if cp else 0, time.perf_counter() - started,
                            checked + (cp is not None), full)

    def _scan(self, rows: Rows, full: bool) -> tuple[list[tuple[str, str]],
                                                    LedgerTampered | None, tuple | None]:
        """(hash, sig) of the hash-consistent prefix, what breaks it (if anything), and either
        the first entry whose meaning is wrong ``(seq, reason)`` or the running state rebuilt
        from the entries: (head root, latest spend by key, spends)."""
        chain: list[tuple[str, str]] = []
        prev, prev_ts, root = GENESIS, "", None
        totals: dict[str, list] = {}  # key -> [n, eps, delta, seq, digest]
        indexed: list[tuple] = []
        tree = Tree({}, EMPTY_ROOT) if full else None
        v2: bool | None = None
        semantic: tuple[int, str] | None = None  # the first entry whose meaning is wrong
        for row in rows.scan():
            seq, cols, body_json, digest, sig = row[0], row[1:-3], row[-3], row[-2], row[-1]
            problem, body = _row_problem(seq, len(chain) + 1, cols, body_json, digest, prev,
                                         self.product)
            if problem:  # the chain breaks here
                return chain, LedgerTampered(*problem), semantic
            chain.append((digest, sig))
            prev, ts = digest, body.get("ts")
            if semantic is None:
                semantic = _time_problem(seq, ts, prev_ts)
            if semantic is None:
                has_state = "state" in body
                v2 = has_state if v2 is None else v2
                if has_state != v2:
                    semantic = (seq, "running totals appear or vanish mid-chain (forged)")
                elif v2:
                    semantic, root = _totals_problem(seq, body, totals, indexed, root, tree)
            prev_ts = ts if isinstance(ts, str) else prev_ts
        if semantic is not None or not v2:
            return chain, None, semantic
        return chain, None, (root or EMPTY_ROOT, totals, indexed)

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


def reserve_all(ledgers: "Iterable[tuple[Ledger, Budget]]", *, analyst: str | None,
                purpose: str, epsilon: float, delta: float = 0.0, session: str | None = None,
                details: Mapping[str, Any] | None = None,
                kind: str = "query.released") -> list[Entry]:
    """:func:`reserve_all_spent` without the totals."""
    return reserve_all_spent(ledgers, analyst=analyst, purpose=purpose, epsilon=epsilon,
                             delta=delta, session=session, details=details, kind=kind)[0]


def reserve_all_spent(ledgers: "Iterable[tuple[Ledger, Budget]]", *, analyst: str | None,
                      purpose: str, epsilon: float, delta: float = 0.0,
                      session: str | None = None, details: Mapping[str, Any] | None = None,
                      kind: str = "query.released"
                      ) -> tuple[list[Entry], list[tuple[float, float]]]:
    """Reserve ``epsilon`` and ``delta`` in every ledger (each against its own budget), or in
    none: every ledger's append lock is taken (in the order of their locations and products,
    so two reservations never wait on each other), every budget is checked, and only if all
    fit is the spend written to each. Otherwise each short ledger records ``budget.exhausted``,
    the others nothing, and :class:`BudgetExceeded` names the first short product. Returns the
    spends in the order given, and each budget's (epsilon, delta) spent with this spend.
    """
    pairs = list(ledgers)
    check_kind(kind)  # the refusal below records another kind: check the asked one now
    want = (to_micro(epsilon), to_pico(delta))
    clean = check_details(details)
    labels = _labels(session, analyst, purpose)
    for _, budget in pairs:
        if budget.scope not in SCOPES:
            raise ValueError(f"budget scope {budget.scope!r} is not one of {', '.join(SCOPES)}")
    keys = keys_of(purpose, analyst)
    order = sorted(range(len(pairs)),
                   key=lambda i: (pairs[i][0].location, pairs[i][0].product))
    sealed: dict[int, tuple[Entry, tuple[int, int]]] = {}
    with ExitStack() as stack:
        states = []
        for i in order:
            led, budget = pairs[i]
            cp = led.checkpoint(cached=True)
            rows = stack.enter_context(led.store.writing())
            rows.prefetch(proof_ids(keys.values()), keys.values())
            head = led._head(rows, cp)
            ts = led._ts(rows, head)
            tree, lasts = led._state(rows, head, keys)
            spent = led._spent_in(rows, budget, keys, lasts, ts)
            limit = (to_micro(budget.epsilon, up=False), to_pico(budget.delta, up=False))
            left = (limit[0] - spent[0], limit[1] - spent[1])
            states.append((i, rows, head, ts, tree, lasts, left, limit))
        short = {i for i, *_, left, _limit in states
                 if not (want[0] <= left[0] and want[1] <= left[1])}
        for i, rows, head, ts, tree, lasts, left, limit in states:
            led = pairs[i][0]
            if not short:
                entry, nodes, spends = led._seal(
                    rows, head, ts, tree=tree, lasts=lasts, keys=keys, kind=kind,
                    epsilon_micro=want[0], delta_pico=want[1], details=clean, **labels)
            elif i in short:
                left = (max(0, left[0]), max(0, left[1]))
                refused = {**clean, "requested_epsilon": want[0] / MICRO,
                           "remaining_epsilon": left[0] / MICRO}
                entry, nodes, spends = led._seal(rows, head, ts, kind="budget.exhausted",
                                                 epsilon_micro=0, delta_pico=0,
                                                 details=refused, **labels)
            else:
                continue
            led._write(rows, entry, nodes, spends)
            sealed[i] = (entry, left, limit)
    for i in order:
        if i in sealed:
            pairs[i][0]._advance_checkpoint(sealed[i][0].seq, sealed[i][0].hash)
    if short:
        first = min(short)
        left = sealed[first][1]
        raise BudgetExceeded(pairs[first][0].product, purpose, analyst or "", want[0] / MICRO,
                             left[0] / MICRO, want[1] / PICO, left[1] / PICO)
    after = []
    for i in range(len(pairs)):
        _, left, limit = sealed[i]
        after.append(((limit[0] - left[0] + want[0]) / MICRO,
                      (limit[1] - left[1] + want[1]) / PICO))
    return [sealed[i][0] for i in range(len(pairs))], after


def _labels(session: Any, analyst: Any, purpose: Any) -> dict[str, Any]:
    for name, value in (("session", session), ("analyst", analyst), ("purpose", purpose)):
        check_name(name, value)
    return dict(session=session, analyst=analyst, purpose=purpose)


def _fields(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The sealed fields of a bulk spec (validated as :meth:`Ledger.append` validates)."""
    check_kind(spec["kind"])
    if spec.get("_trusted_names"):  # a migration keeps the names the old ledger accepted
        labels = {k: spec.get(k) for k in ("session", "analyst", "purpose")}
    else:
        labels = _labels(spec.get("session"), spec.get("analyst"), spec.get("purpose"))
    if "epsilon_micro" in spec:
        eps, delta = int(spec["epsilon_micro"]), int(spec.get("delta_pico", 0))
    else:
        eps, delta = to_micro(spec.get("epsilon", 0.0)), to_pico(spec.get("delta", 0.0))
    return dict(kind=spec["kind"], epsilon_micro=eps, delta_pico=delta,
                details=check_details(spec.get("details")), **labels)


def _row_of(entry: Entry) -> tuple:
    return (entry.seq, *(getattr(entry, c) for c in COLUMNS), entry.body_json(), entry.hash,
            entry.sig)


def _parse(row: tuple) -> Entry:
    try:
        return Entry.parse(*row)
    except ValueError:
        raise LedgerTampered(None, "an entry's body is not a ledger entry (edited) — run "
                                   "`mesh-nb ledger verify` to find which") from None


def _keep_v1(rows: Rows) -> None:
    """Copy the old rows to ``entries_v1`` (a migration's backup; replaced if there)."""
    table = getattr(rows, "_entries", "entries")
    backup = table[:-len("entries")] + "entries_v1"
    db = getattr(rows, "db", None) or rows.conn  # type: ignore[attr-defined]
    db.execute(f"DROP TABLE IF EXISTS {backup}")
    db.execute(f"CREATE TABLE {backup} AS SELECT * FROM {table}")


def _time_problem(seq: int, ts: Any, prev_ts: str) -> tuple[int, str] | None:
    if not isinstance(ts, str) or not _TS.fullmatch(ts):
        return seq, "its time is not a ledger timestamp (edited)"
    if ts < prev_ts:
        return seq, (f"its time is earlier than entry {seq - 1}'s (the writer's clock went "
                     "back, or the entry was forged)")
    return None


def _totals_problem(seq: int, body: dict, totals: dict[str, list], indexed: list[tuple],
                    root: str | None, tree: Tree | None) -> tuple[tuple[int, str] | None, str]:
    """(problem or None, root after this entry) for the running totals of one entry."""
    state = body.get("state")
    if not _spends(body):
        if body.get("totals") is not None:
            return (seq, "an entry that spends nothing carries running totals (forged)"), ""
        if state != (root or EMPTY_ROOT):
            return (seq, "its running-totals root changed without a spend (forged)"), ""
        return None, state
    keys = keys_of(body.get("purpose"), body.get("analyst"))
    expected = {}
    for scope, key in keys.items():
        n, eps, delta, last_seq, last_digest = totals.get(key, (0, 0, 0, 0, GENESIS))
        expected[scope] = [n + 1, eps + body["epsilon_micro"], delta + body["delta_pico"],
                           last_seq, last_digest]
    if body.get("totals") != expected:
        return (seq, "its running totals disagree with the spends before it (edited or "
                     "forged)"), ""
    digest = spend_digest(body)
    for scope, key in keys.items():
        totals[key] = [*expected[scope][:3], seq, digest]
        indexed.append((key, expected[scope][0], body["ts"], seq))
    if tree is not None:  # full: every entry's root
        new_root, nodes = tree.updated({key: (seq, digest) for key in keys.values()})
        tree.apply(new_root, nodes)
        if state != new_root:
            return (seq, "its running-totals root disagrees with the spends (forged)"), ""
    elif not isinstance(state, str):
        return (seq, "its running-totals root is malformed (edited)"), ""
    return None, state


def _stored_problem(rows: Rows, root: str, totals: dict[str, list],
                    indexed: list[tuple]) -> LedgerTampered | None:
    """The stored tree and spends index against the state rebuilt from the entries."""
    expected = full_tree({key: (t[3], t[4]) for key, t in totals.items()})
    if expected.get(1, (EMPTY_ROOT,))[0] != root:
        return LedgerTampered(None, "the head's running-totals root disagrees with the spends "
                                    "(forged)")
    stored = {i: (h, c) for i, h, c in rows.scan_nodes()}
    if stored != expected:
        return LedgerTampered(None, "the stored running totals (table state) disagree with the "
                                    "entries (edited) — the entries are intact; rebuild the "
                                    "table from them or restore it from a backup")
    found = [tuple(r) for r in rows.scan_spends()]  # (key, n) is unique: compare as sets
    if len(found) != len(indexed) or set(found) != set(indexed):
        return LedgerTampered(None, "the spends index (table spends) disagrees with the entries "
                                    "(edited) — the entries are intact; rebuild the index from "
                                    "them or restore it from a backup")
    return None
