"""The owner's ledger: entries, keys, budgets, tamper detection and concurrent writers.

Every test taking the ``ledger``/``ledger_at`` fixtures runs twice: on a real SQLite file under
``tmp_path`` and on a real PostgreSQL server (a fresh database per test; tests/pgserver.py).
Tampering is done the way an attacker would: raw sqlite3 on the file, or raw psycopg on the
ledger's schema.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import shutil
import signal
import sqlite3
import stat
import time
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mesh_nb.contract.model import Budget
from mesh_nb.errors import BudgetExceeded, LedgerError, LedgerTampered
from mesh_nb.ledger import KINDS, Entry, Ledger, OwnerKey, VerifyReport
from mesh_nb.ledger.entry import DETAIL_TYPES, canonical_json, chain_hash

PRODUCT = "customers"
FORK = mp.get_context("fork")


# -- helpers ----------------------------------------------------------------------------------

def open_ledger(at: Path | str, root: Path, **kw) -> Ledger:
    """The ledger stored at ``at`` (file or URL), owned from ``root/owner``."""
    return Ledger(at, root / "owner", PRODUCT, **kw)


def timed_ledger(at: Path | str, root: Path, clock) -> Ledger:
    """A ledger whose store's clock is ``clock``: the SQLite host's, or in place of the
    PostgreSQL server's (a writer's own clock never reaches a server ledger)."""
    if isinstance(at, str) and "://" in at:
        from mesh_nb.ledger.postgres import PostgresStore

        return Ledger(PostgresStore(at, PRODUCT, clock=clock), root / "owner", PRODUCT)
    return open_ledger(at, root, clock=clock)


@pytest.fixture
def ledger(ledger_at: Path | str, tmp_path: Path) -> Ledger:
    led = open_ledger(ledger_at, tmp_path)
    yield led
    led.close()


def fill(led: Ledger, n: int) -> None:
    """``n`` entries alternating a session binding and a released query."""
    for i in range(n):
        if i % 2:
            led.append("query.released", session="s1", analyst="alice", purpose="churn",
                       epsilon=0.1, details={"query": "SELECT count(*) FROM t WHERE a = ?",
                                             "columns": ["a"], "rows": 3})
        else:
            led.append("session.bound", session="s1", analyst="alice", purpose="churn",
                       details={"products": [PRODUCT], "access": "dp-aggregate"})


class _RawPg:
    """An attacker's psycopg connection on a ledger's schema, taking sqlite3's ``?`` style."""

    def __init__(self, led: Ledger) -> None:
        import psycopg
        from pgserver import libpq_url

        self.conn = psycopg.connect(libpq_url(led.location), autocommit=True)
        self.conn.execute(f'SET search_path TO "{led.store.schema}"')

    def execute(self, sql: str, args: tuple | list = ()):
        return self.conn.execute(sql.replace("?", "%s"), args)

    def close(self) -> None:
        self.conn.close()


def raw(led: Ledger) -> "sqlite3.Connection | _RawPg":
    """An attacker's own connection to the ledger's database (autocommit)."""
    if led.path is not None:
        return sqlite3.connect(led.path, isolation_level=None)
    return _RawPg(led)


def backup(led: Ledger, copy: Path) -> Path | list[tuple]:
    """An older copy of the ledger: the file at rest, or the rows of the server's table."""
    if led.path is not None:
        led.close()  # folds the WAL into the file, as a copy taken at rest would
        shutil.copy(led.path, copy)
        return copy
    with closing(raw(led)) as db:
        return db.execute("SELECT * FROM entries ORDER BY seq").fetchall()


def restore(led: Ledger, old: Path | list[tuple]) -> None:
    """Put the older copy back in place of the ledger (file copy, or rows in one transaction)."""
    if led.path is not None:
        led.close()
        shutil.copy(old, led.path)
        for suffix in ("-wal", "-shm"):
            Path(f"{led.path}{suffix}").unlink(missing_ok=True)
        return
    with closing(raw(led)) as db:
        with db.conn.transaction():
            db.execute("DELETE FROM entries")
            for row in old:
                db.execute(f"INSERT INTO entries VALUES ({', '.join('?' * len(row))})", row)


def tampered(led: Ledger, *, full: bool = False) -> LedgerTampered:
    with pytest.raises(LedgerTampered) as info:
        led.verify(full=full)
    return info.value


def put(db: sqlite3.Connection, e: Entry) -> None:
    """Overwrite row ``e.seq`` with entry ``e`` (columns, body, hash and signature)."""
    db.execute("UPDATE entries SET ts=?, kind=?, session=?, analyst=?, purpose=?, "
               "epsilon_micro=?, delta_pico=?, body=?, hash=?, sig=? WHERE seq=?",
               (e.ts, e.kind, e.session, e.analyst, e.purpose, e.epsilon_micro, e.delta_pico,
                e.body_json(), e.hash, e.sig, e.seq))


def insert(db: sqlite3.Connection, e: Entry) -> None:
    db.execute("INSERT INTO entries (seq, ts, kind, session, analyst, purpose, epsilon_micro, "
               "delta_pico, body, hash, sig) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
               (e.seq, e.ts, e.kind, e.session, e.analyst, e.purpose, e.epsilon_micro,
                e.delta_pico, e.body_json(), e.hash, e.sig))


def stored(db: sqlite3.Connection, seq: int) -> Entry:
    return Entry.parse(*db.execute("SELECT body, hash, sig FROM entries WHERE seq = ?",
                                   (seq,)).fetchone())


def resigned(e: Entry, prev: str, sign, **changes) -> Entry:
    """``e`` with ``changes``, re-linked to ``prev`` and re-signed with ``sign``."""
    body = {**e.body(), **changes, "prev": prev}
    return Entry.seal(**body, sign=sign)


# -- entries ----------------------------------------------------------------------------------

def test_entry_fields_hash_and_properties(ledger: Ledger) -> None:
    first = ledger.append("session.bound", session="s1", analyst="alice", purpose="churn",
                          details={"products": (PRODUCT,), "acknowledged": True})
    e = ledger.append("query.released", session="s1", analyst="alice", purpose="churn",
                      epsilon=0.1, delta=1e-6, details={"rows": 10, "entity_types": {"EMAIL": 2}})
    assert (first.seq, e.seq) == (1, 2)
    assert first.prev == "0" * 64 and e.prev == first.hash
    assert (e.epsilon_micro, e.delta_pico) == (100_000, 1_000_000)
    assert (e.epsilon, e.delta) == (0.1, 1e-6)
    assert e.product == PRODUCT and e.kind in KINDS
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", e.ts)
    assert e.hash == chain_hash(e.prev, canonical_json(e.body()))
    assert first.details["products"] == [PRODUCT]
    assert ledger.key.verify(e.sig, b"mesh_nb.ledger.entry.v1\n" + e.hash.encode())
    assert ledger.head() == e and len(ledger) == 2
    assert ledger.entries() == [first, e]


def test_entries_filters(ledger_at: Path | str, tmp_path: Path) -> None:
    clock = Clock(datetime(2025, 1, 1, tzinfo=timezone.utc))
    led = timed_ledger(ledger_at, tmp_path, clock)
    led.append("session.bound", session="s1", analyst="alice", purpose="churn")
    clock.now += timedelta(days=2)
    led.append("query.released", session="s1", analyst="alice", purpose="churn", epsilon=0.1)
    led.append("session.bound", session="s2", analyst="bob", purpose="audit")
    assert [e.seq for e in led.entries(kind="session.bound")] == [1, 3]
    assert [e.seq for e in led.entries(analyst="bob")] == [3]
    assert [e.seq for e in led.entries(purpose="churn", session="s1")] == [1, 2]
    assert [e.seq for e in led.entries(since=datetime(2025, 1, 2, tzinfo=timezone.utc))] == [2, 3]
    assert [e.seq for e in led.entries(since="2025-01-02T00:00:00Z", kind="query.released")] == [2]
    assert led.entries(session="nope") == []


def test_disallowed_detail_key_raises_and_writes_nothing(ledger: Ledger) -> None:
    fill(ledger, 2)
    cp = ledger.checkpoint()
    with pytest.raises(ValueError, match="'email'.*not allowed"):
        ledger.append("pii.detected", details={"email": "someone@example.com"})
    with pytest.raises(ValueError, match=r"details\['rows'\] must be int"):
        ledger.append("query.released", details={"rows": "3"})
    with pytest.raises(ValueError, match="entity_types"):
        ledger.append("pii.detected", details={"entity_types": {"EMAIL": "a@b.c"}})
    with pytest.raises(ValueError, match="'value'"):
        ledger.reserve(analyst="alice", purpose="churn", epsilon=5.0, budget=Budget(1.0),
                       details={"value": 42})
    with pytest.raises(ValueError, match="unknown ledger entry kind"):
        ledger.append("query.exported")
    assert len(ledger) == 2 and ledger.checkpoint() == cp
    assert "query" in DETAIL_TYPES and "email" not in DETAIL_TYPES


def test_error_messages_never_carry_the_value(ledger: Ledger) -> None:
    with pytest.raises(ValueError) as info:
        ledger.append("query.released", details={"rows": "secret-value"})
    assert "secret-value" not in str(info.value)


# -- keys -------------------------------------------------------------------------------------

def test_owner_key_files_and_modes(tmp_path: Path) -> None:
    key = OwnerKey.load_or_create(tmp_path / "owner")
    assert stat.S_IMODE((tmp_path / "owner" / "ed25519.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "owner").stat().st_mode) == 0o700
    assert (tmp_path / "owner" / "ed25519.pub").read_bytes() == key.public_pem
    again = OwnerKey.load_or_create(tmp_path / "owner")
    assert again.fingerprint == key.fingerprint
    sig = key.sign(b"hello")
    assert again.verify(sig, b"hello") and again.verify(sig.hex(), b"hello")
    assert not again.verify(sig, b"hullo") and not again.verify("zz", b"hello")


def test_another_owner_directory_does_not_verify(ledger_at: Path | str, tmp_path: Path) -> None:
    led = open_ledger(ledger_at, tmp_path)
    fill(led, 4)
    led.close()
    with pytest.raises(LedgerError, match="key .* is missing but the ledger has entries"):
        Ledger(ledger_at, tmp_path / "other-owner", PRODUCT)  # never a fresh key for entries
    assert not (tmp_path / "other-owner" / "ed25519.key").exists()
    OwnerKey.load_or_create(tmp_path / "other-owner")  # someone else's key, put there
    other = Ledger(ledger_at, tmp_path / "other-owner", PRODUCT)
    assert tampered(other).seq == 1  # signatures are checked only against the owner dir's key


def test_ledger_of_another_product_is_refused(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "ledger.sqlite", tmp_path)  # a file holds one product
    with pytest.raises(LedgerError, match="ledger of product 'customers'"):
        Ledger(ledger.path, tmp_path / "owner2", "sales")


# -- verification -----------------------------------------------------------------------------

def test_clean_ledger_verifies_fast_and_full(ledger: Ledger) -> None:
    assert ledger.verify().entries == 0
    fill(ledger, 20)
    fast, full = ledger.verify(), ledger.verify(full=True)
    assert isinstance(fast, VerifyReport)
    assert (fast.entries, fast.checkpoint, fast.signatures_checked) == (20, 20, 2)
    assert (full.entries, full.checkpoint, full.signatures_checked) == (20, 20, 21)
    assert full.full and not fast.full and fast.seconds >= 0


def test_edited_details_are_caught(ledger: Ledger) -> None:
    fill(ledger, 10)
    with closing(raw(ledger)) as db:
        body = json.loads(db.execute("SELECT body FROM entries WHERE seq = 6").fetchone()[0])
        body["details"]["rows"] = 300
        db.execute("UPDATE entries SET body = ? WHERE seq = 6", (canonical_json(body),))
    err = tampered(ledger)
    assert err.seq == 6 and "hash does not match its contents (edited)" in str(err)
    assert tampered(ledger, full=True).seq == 6


def test_edited_epsilon_column_alone_is_caught(ledger: Ledger) -> None:
    budget = Budget(1.0, scope="per-purpose")
    for _ in range(10):
        ledger.reserve(analyst="alice", purpose="churn", epsilon=0.1, budget=budget)
    with closing(raw(ledger)) as db:
        db.execute("UPDATE entries SET epsilon_micro = 0 WHERE seq = 4")
    assert ledger.remaining("alice", "churn", budget) == (0.0, 0.0)  # nothing freed...
    with pytest.raises(BudgetExceeded):  # budgets come from the signed running totals
        ledger.reserve(analyst="alice", purpose="churn", epsilon=0.1, budget=budget)
    err = tampered(ledger)  # ...and caught
    assert err.seq == 4 and "column epsilon_micro" in err.reason


def test_deleted_entry_is_caught(ledger: Ledger) -> None:
    fill(ledger, 10)
    with closing(raw(ledger)) as db:
        db.execute("DELETE FROM entries WHERE seq IN (5, 6)")
    err = tampered(ledger)
    assert err.seq == 5
    assert "sequence gap: expected 5, found 7 (entries deleted)" in err.reason


def test_inserted_forged_entry_is_caught(ledger: Ledger) -> None:
    fill(ledger, 10)
    forger = Ed25519PrivateKey.generate()
    with closing(raw(ledger)) as db:
        template = stored(db, 6)
        db.execute("UPDATE entries SET seq = seq + 1000 WHERE seq >= 6")
        db.execute("UPDATE entries SET seq = seq - 999 WHERE seq >= 1006")
        insert(db, resigned(template, stored(db, 5).hash, forger.sign, epsilon_micro=0))
    err = tampered(ledger)
    assert err.seq == 6 and "signature is not the owner's" in err.reason
    assert tampered(ledger, full=True).seq == 6


def test_entry_appended_by_an_attacker_is_caught(ledger: Ledger) -> None:
    fill(ledger, 5)
    forger = Ed25519PrivateKey.generate()
    with closing(raw(ledger)) as db:
        insert(db, resigned(stored(db, 5), stored(db, 5).hash, forger.sign, seq=6))
    assert tampered(ledger).seq == 6


def test_swapped_entries_are_caught(ledger: Ledger) -> None:
    fill(ledger, 10)
    with closing(raw(ledger)) as db:
        db.execute("UPDATE entries SET seq = -4 WHERE seq = 4")
        db.execute("UPDATE entries SET seq = 4 WHERE seq = 7")
        db.execute("UPDATE entries SET seq = 7 WHERE seq = -4")
    err = tampered(ledger)
    assert err.seq == 4 and "prev hash does not link to entry 3 (inserted or reordered)" \
        in err.reason


def test_resigned_chain_with_another_key_is_caught(ledger: Ledger) -> None:
    fill(ledger, 12)
    forger = Ed25519PrivateKey.generate()
    with closing(raw(ledger)) as db:  # edit entry 5, then recompute and re-sign 5..12
        prev = stored(db, 4).hash
        for seq in range(5, 13):
            e = stored(db, seq)
            changes = {"epsilon_micro": 0} if seq == 5 else {}
            forged = resigned(e, prev, forger.sign, **changes)
            put(db, forged)
            prev = forged.hash
    err = tampered(ledger)
    assert err.seq == 5 and "signature is not the owner's" in err.reason
    assert tampered(ledger, full=True).seq == 5


def test_cut_tail_is_caught(ledger: Ledger) -> None:
    fill(ledger, 10)
    with closing(raw(ledger)) as db:
        db.execute("DELETE FROM entries WHERE seq > 7")
    err = tampered(ledger)
    assert err.seq == 8
    assert "ledger has 7 entries but the owner's checkpoint says 10 " \
           "(tail cut or older copy restored)" in err.reason


def test_restored_older_copy_is_caught_and_not_extended(ledger: Ledger, tmp_path: Path) -> None:
    budget = Budget(1.0, scope="per-purpose")
    for _ in range(6):
        ledger.reserve(analyst="alice", purpose="churn", epsilon=0.1, budget=budget)
    old = backup(ledger, tmp_path / "old.sqlite")
    for _ in range(4):
        ledger.reserve(analyst="alice", purpose="churn", epsilon=0.1, budget=budget)
    restore(ledger, old)
    assert len(ledger) == 6
    err = tampered(ledger)
    assert err.seq == 7 and "ledger has 6 entries but the owner's checkpoint says 10" in err.reason
    # the rolled-back ledger would free budget: it refuses to spend or to record anything
    with pytest.raises(LedgerTampered):
        ledger.reserve(analyst="alice", purpose="churn", epsilon=0.1, budget=budget)
    for _ in range(5):
        with pytest.raises(LedgerTampered):
            ledger.append("session.bound", analyst="alice", purpose="churn")
    assert len(ledger) == 6 and ledger.checkpoint().count == 10


def _rewrite_slots(ledger: Ledger, edit) -> None:
    """Apply ``edit`` to every JSON slot of the checkpoint file, keeping the slot layout."""
    from mesh_nb.ledger.store import SLOT_BYTES

    raw = ledger.checkpoint_path.read_bytes()
    out = b""
    for i in (0, SLOT_BYTES):
        text = raw[i:i + SLOT_BYTES].strip()
        out += (edit(text.decode()).encode() if text else b"").ljust(SLOT_BYTES, b" ")
    ledger.checkpoint_path.write_bytes(out)


def test_tampered_checkpoint_is_caught(ledger: Ledger) -> None:
    fill(ledger, 5)
    _rewrite_slots(ledger, lambda t: json.dumps({**json.loads(t), "count": 3}))
    err = tampered(ledger)
    assert err.seq is None and "checkpoint signature is invalid" in err.reason
    with pytest.raises(LedgerTampered):
        ledger.append("session.bound")


def test_checkpoint_signed_by_another_key_is_caught(ledger: Ledger) -> None:
    from mesh_nb.ledger.store import Checkpoint

    fill(ledger, 5)
    forger = OwnerKey.load_or_create(ledger.owner_dir.parent / "forger")
    forged = Checkpoint.signed(forger, PRODUCT, 3, ledger.entries()[2].hash)
    _rewrite_slots(ledger, lambda t: forged.to_json())
    assert tampered(ledger).seq is None


def test_deleted_checkpoint_is_caught(ledger: Ledger) -> None:
    fill(ledger, 3)
    ledger.checkpoint_path.unlink()
    err = tampered(ledger)
    assert err.seq is None and "checkpoint is missing" in err.reason


def test_checkpoint_lives_outside_the_ledger_and_tracks_it(ledger: Ledger) -> None:
    fill(ledger, 4)
    cp = ledger.checkpoint()
    assert (cp.product, cp.count, cp.head) == (PRODUCT, 4, ledger.head().hash)
    assert ledger.checkpoint_path.parent == ledger.owner_dir
    assert ledger.path is None or ledger.path.parent != ledger.owner_dir
    assert sorted(p.name for p in ledger.owner_dir.glob("checkpoint.*")) == \
        ["checkpoint.lock", "checkpoint.slots"]  # one fixed file, no file per append


def test_a_torn_checkpoint_slot_falls_back_to_the_other(ledger: Ledger) -> None:
    from mesh_nb.ledger.store import SLOT_BYTES

    fill(ledger, 3)
    raw = bytearray(ledger.checkpoint_path.read_bytes())
    raw[SLOT_BYTES:SLOT_BYTES + 40] = b"\x00" * 40  # slot of entry 3 half written by a crash
    ledger.checkpoint_path.write_bytes(bytes(raw))
    again = Ledger(ledger.location, ledger.owner_dir, PRODUCT)
    assert again.checkpoint().count == 2
    assert again.verify().entries == 3
    again.append("session.bound")
    assert again.checkpoint().count == 4


# -- budgets ----------------------------------------------------------------------------------

def test_thirty_tenths_fit_exactly_in_three(ledger: Ledger) -> None:
    budget = Budget(3.0, scope="per-analyst")
    for _ in range(30):
        ledger.reserve(analyst="alice", purpose="churn", epsilon=0.1, budget=budget,
                       details={"query": "SELECT avg(x) FROM t"})
    assert ledger.spent("alice", "churn", budget) == (3.0, 0.0)
    with pytest.raises(BudgetExceeded) as info:
        ledger.reserve(analyst="alice", purpose="churn", epsilon=0.1, budget=budget)
    assert info.value.remaining == 0.0 and info.value.requested == 0.1
    last = ledger.head()
    assert last.kind == "budget.exhausted" and last.epsilon_micro == 0
    assert last.details == {"requested_epsilon": 0.1, "remaining_epsilon": 0.0}
    assert len(ledger) == 31 and ledger.remaining("alice", "churn", budget) == (0.0, 0.0)
    ledger.verify()


def test_spends_carry_signed_running_totals(ledger: Ledger) -> None:
    from mesh_nb.ledger.entry import GENESIS
    from mesh_nb.ledger.totals import EMPTY_ROOT, spend_digest

    budget = Budget(3.0, scope="per-analyst")
    first = ledger.reserve(analyst="alice", purpose="churn", epsilon=0.1, budget=budget)
    bound = ledger.append("session.bound", analyst="bob", purpose="churn")
    second = ledger.reserve(analyst="bob", purpose="churn", epsilon=0.2, delta=1e-9,
                            budget=Budget(3.0, delta=1e-6))
    assert first.totals == {"per-analyst": [1, 100_000, 0, 0, GENESIS],
                            "per-purpose": [1, 100_000, 0, 0, GENESIS]}
    assert second.totals == {"per-analyst": [1, 200_000, 1000, 0, GENESIS],
                             "per-purpose": [2, 300_000, 1000, 1, spend_digest(first.body())]}
    assert bound.totals is None and bound.state == first.state != EMPTY_ROOT
    assert second.state not in (first.state, EMPTY_ROOT) and ledger.head() == second
    assert ledger.spent("bob", "churn", budget) == (0.2, 1e-9)
    assert ledger.spent(None, "churn", Budget(3.0, scope="per-purpose")) == (0.3, 1e-9)
    assert ledger.verify(full=True).entries == 3


def test_budget_exceeded_says_what_remains(ledger: Ledger) -> None:
    budget = Budget(1.0)
    ledger.reserve(analyst="alice", purpose="churn", epsilon=0.75, budget=budget)
    with pytest.raises(BudgetExceeded, match="0.25 left") as info:
        ledger.reserve(analyst="alice", purpose="churn", epsilon=0.5, budget=budget,
                       details={"query": "SELECT sum(x) FROM t"})
    assert info.value.remaining == 0.25
    assert ledger.head().details == {"query": "SELECT sum(x) FROM t", "requested_epsilon": 0.5,
                                     "remaining_epsilon": 0.25}
    ledger.reserve(analyst="alice", purpose="churn", epsilon=0.25, budget=budget)


def _second_ledger(at: Path | str, tmp_path: Path) -> Ledger:
    """Another product's ledger in the same store kind (a file beside, or its own schema)."""
    if isinstance(at, str) and "://" in at:
        return Ledger(at, tmp_path / "owner2", "orders")
    return Ledger(tmp_path / "orders.sqlite", tmp_path / "owner2", "orders")


def test_reserve_all_charges_every_ledger_or_none(ledger_at: Path | str, tmp_path: Path) -> None:
    from mesh_nb.ledger.store import reserve_all

    a, b = open_ledger(ledger_at, tmp_path), _second_ledger(ledger_at, tmp_path)
    roomy, tight = Budget(1.0), Budget(0.3)
    spent = reserve_all([(a, roomy), (b, tight)], analyst="al", purpose="churn", epsilon=0.2,
                        details={"query": "q1"})
    assert [e.epsilon_micro for e in spent] == [200_000, 200_000]
    with pytest.raises(BudgetExceeded) as info:
        reserve_all([(a, roomy), (b, tight)], analyst="al", purpose="churn", epsilon=0.2,
                    details={"query": "q2"})
    assert info.value.product == "orders" and info.value.remaining == pytest.approx(0.1)
    assert a.spent("al", "churn", roomy) == (0.2, 0.0), "the roomy ledger was charged anyway"
    assert [e.kind for e in a.entries()] == ["query.released"]
    assert [e.kind for e in b.entries()] == ["query.released", "budget.exhausted"]
    assert a.verify(full=True).entries == 1 and b.verify(full=True).entries == 2
    a.close(), b.close()


def test_reserve_all_in_opposite_orders_neither_waits_nor_overspends(
        ledger_at: Path | str, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from mesh_nb.ledger.store import reserve_all

    a, b = open_ledger(ledger_at, tmp_path), _second_ledger(ledger_at, tmp_path)
    budget = Budget(1.0)

    def spend(pair: list) -> bool:
        try:
            reserve_all(pair, analyst="al", purpose="churn", epsilon=0.1)
            return True
        except BudgetExceeded:
            return False

    jobs = [[(a, budget), (b, budget)], [(b, budget), (a, budget)]] * 8
    with ThreadPoolExecutor(4) as pool:
        granted = sum(pool.map(spend, jobs))
    assert granted == 10
    assert a.spent("al", "churn", budget)[0] == b.spent("al", "churn", budget)[0] == 1.0
    a.close(), b.close()


def test_per_analyst_and_per_purpose_scopes(ledger: Ledger) -> None:
    mine = Budget(1.0, scope="per-analyst")
    ours = Budget(1.0, scope="per-purpose")
    ledger.reserve(analyst="alice", purpose="churn", epsilon=1.0, budget=mine)
    ledger.reserve(analyst="bob", purpose="churn", epsilon=1.0, budget=mine)  # bob has his own
    ledger.reserve(analyst="alice", purpose="audit", epsilon=1.0, budget=ours)  # other purpose
    with pytest.raises(BudgetExceeded):
        ledger.reserve(analyst="carol", purpose="churn", epsilon=0.1, budget=ours)  # shared: 2.0
    with pytest.raises(BudgetExceeded):
        ledger.reserve(analyst="bob", purpose="audit", epsilon=0.1, budget=ours)
    assert ledger.spent("alice", "churn", mine) == (1.0, 0.0)
    assert ledger.spent("carol", "churn", ours) == (2.0, 0.0)
    assert ledger.remaining("carol", "churn", mine) == (1.0, 0.0)


def test_delta_is_budgeted_in_integers(ledger: Ledger) -> None:
    budget = Budget(10.0, delta=1e-5)
    for _ in range(10):
        ledger.reserve(analyst="a", purpose="p", epsilon=0.1, delta=1e-6, budget=budget)
    assert ledger.spent("a", "p", budget) == (1.0, 1e-5)
    with pytest.raises(BudgetExceeded) as info:
        ledger.reserve(analyst="a", purpose="p", epsilon=0.1, delta=1e-12, budget=budget)
    assert info.value.remaining_delta == 0.0


class Clock:
    """A settable clock for budget periods."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_budget_period_only_counts_recent_spends(ledger_at: Path | str, tmp_path: Path) -> None:
    clock = Clock(datetime(2025, 3, 1, tzinfo=timezone.utc))
    led = timed_ledger(ledger_at, tmp_path, clock)
    weekly = Budget(1.0, period_days=7)
    led.reserve(analyst="alice", purpose="churn", epsilon=1.0, budget=weekly)
    with pytest.raises(BudgetExceeded):
        led.reserve(analyst="alice", purpose="churn", epsilon=0.5, budget=weekly)
    clock.now += timedelta(days=8)
    assert led.remaining("alice", "churn", weekly) == (1.0, 0.0)
    led.reserve(analyst="alice", purpose="churn", epsilon=0.5, budget=weekly)
    assert led.spent("alice", "churn", Budget(5.0)) == (1.5, 0.0)  # no period: everything


def test_invalid_spends_are_refused(ledger: Ledger) -> None:
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            ledger.reserve(analyst="a", purpose="p", epsilon=bad, budget=Budget(1.0))
    with pytest.raises(ValueError, match="scope"):
        ledger.reserve(analyst="a", purpose="p", epsilon=0.1, budget=Budget(1.0, scope="team"))
    assert len(ledger) == 0


# -- concurrency ------------------------------------------------------------------------------

def _race(at: Path | str, root: Path, barrier, results) -> None:
    led = open_ledger(at, root)
    budget = Budget(3.0, scope="per-purpose")
    barrier.wait()
    won = 0
    for _ in range(10):
        try:
            led.reserve(analyst=f"pid{os.getpid()}", purpose="churn", epsilon=0.1, budget=budget)
            won += 1
        except BudgetExceeded:
            pass
    results.put(won)


def test_eight_processes_never_overspend(ledger_at: Path | str, tmp_path: Path) -> None:
    led = open_ledger(ledger_at, tmp_path)
    barrier, results = FORK.Barrier(8), FORK.Queue()
    procs = [FORK.Process(target=_race, args=(ledger_at, tmp_path, barrier, results))
             for _ in range(8)]
    for p in procs:
        p.start()
    while any(p.is_alive() for p in procs):  # readers never see a false alarm mid-race
        led.verify()
    wins = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    budget = Budget(3.0, scope="per-purpose")
    assert sum(wins) == 30
    assert led.spent("anyone", "churn", budget) == (3.0, 0.0)
    assert len(led.entries(kind="query.released")) == 30
    assert len(led.entries(kind="budget.exhausted")) == 50
    report = led.verify(full=True)
    assert report.entries == 80 and report.checkpoint == 80


def _reserve_then_hang(led: Ledger, reserved) -> None:
    led.reserve(analyst="alice", purpose="churn", epsilon=0.5, budget=Budget(1.0))
    reserved.set()
    time.sleep(60)  # never releases: the parent kills it here


def test_killed_process_leaves_a_verifiable_ledger_and_its_spend(ledger: Ledger) -> None:
    reserved = FORK.Event()
    child = FORK.Process(target=_reserve_then_hang, args=(ledger, reserved))
    child.start()
    assert reserved.wait(30)
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    assert child.exitcode == -signal.SIGKILL
    ledger.verify(full=True)
    assert ledger.spent("alice", "churn", Budget(1.0)) == (0.5, 0.0)
    with pytest.raises(BudgetExceeded):
        ledger.reserve(analyst="alice", purpose="churn", epsilon=0.6, budget=Budget(1.0))


def _append_forever(led: Ledger, started) -> None:
    started.set()
    while True:
        led.append("query.released", analyst="alice", purpose="churn", epsilon=0.001)


def test_process_killed_mid_append_leaves_a_verifiable_ledger(ledger: Ledger) -> None:
    fill(ledger, 2)  # the child inherits this open ledger through fork()
    for delay in (0.05, 0.13, 0.21):
        started = FORK.Event()
        child = FORK.Process(target=_append_forever, args=(ledger, started))
        child.start()
        assert started.wait(30)
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        report = ledger.verify()
        assert report.checkpoint <= report.entries <= report.checkpoint + 1
        ledger.append("session.ended", analyst="alice", purpose="churn")
    assert ledger.verify().entries == len(ledger) > 10
