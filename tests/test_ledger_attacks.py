"""Attacks on the ledger as an accountant, each tried for real (issue 14).

Every edit is made the way an attacker with write access to the database would: raw sqlite3 on
the file (down to rewriting an index's B-tree through ``PRAGMA writable_schema``) or raw psycopg
on the ledger's schema. Each must be caught by the *next reserve* (LedgerTampered, nothing
granted), never only by a later ``verify()``, and no spend may pass the budget. Then the
failures a storage can have — a stuck lock holder (a real child process, SIGSTOPped), a full
disk, a malformed file, an undecodable row, a dead or silent server, a swapped ledger — each
reach the caller as a :class:`~mesh_nb.errors.LedgerError` with a clean message. No mocks of
SQLite or PostgreSQL; no assertion on a duration.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mesh_nb.contract.model import Budget
from mesh_nb.errors import BudgetExceeded, LedgerError, LedgerTampered, MeshError
from mesh_nb.ledger import Entry, Ledger, OwnerKey
from mesh_nb.ledger.config import LedgerUrlError, ledger_url
from mesh_nb.ledger.entry import GENESIS, MICRO, canonical_json
from mesh_nb.ledger.store import CHECKPOINT_FILE
from test_ledger import PRODUCT, Clock, open_ledger, raw, timed_ledger

FORK = mp.get_context("fork")
SECRET = "Jane Doe 1963-08-07"  # a data value: must never appear in a message


@pytest.fixture
def ledger(ledger_at: Path | str, tmp_path: Path) -> Ledger:
    led = open_ledger(ledger_at, tmp_path)
    yield led
    led.close()


def granted(led: Ledger) -> int:
    """Micro-epsilon of every released query, read from the signed bodies (not the columns)."""
    with closing(raw(led)) as db:
        bodies = [json.loads(r[0]) for r in db.execute("SELECT body FROM entries").fetchall()]
    return sum(b["epsilon_micro"] for b in bodies if b["kind"] == "query.released")


def spend_all(led: Ledger, budget: Budget, n: int = 30, eps: float = 0.1, **kw) -> None:
    for _ in range(n):
        led.reserve(analyst="alice", purpose="churn", epsilon=eps, budget=budget, **kw)
    with pytest.raises(BudgetExceeded):
        led.reserve(analyst="alice", purpose="churn", epsilon=eps, budget=budget, **kw)


def caught_at_reserve(led: Ledger, budget: Budget, tries: int = 3) -> LedgerTampered:
    """The next reserves raise LedgerTampered and grant nothing."""
    before = granted(led)
    for _ in range(tries):
        with pytest.raises(LedgerTampered) as info:
            led.reserve(analyst="alice", purpose="churn", epsilon=0.5, budget=budget)
    assert granted(led) == before <= round(budget.epsilon * MICRO)
    if os.environ.get("SHOW_REASONS"):
        print("\nCAUGHT:", info.value)
    return info.value


def clean(message: str) -> None:
    assert SECRET not in message and "Traceback" not in message
    for raw_text in ("sqlite3.", "psycopg.", "sqlalchemy", "OperationalError:"):
        assert raw_text not in message


# -- what reserve reads: the index, the totals, the rows ---------------------------------------

def _swap_index_btree(path: Path, index: str, forged_index: str) -> None:
    """Make ``index`` read ``forged_index``'s B-tree (rootpage swap, writable_schema): the
    table is untouched, only what its index says changes."""
    db = sqlite3.connect(path, isolation_level=None)
    pages = dict(db.execute("SELECT name, rootpage FROM sqlite_master WHERE name IN (?, ?)",
                            (index, forged_index)).fetchall())
    db.execute("PRAGMA writable_schema = ON")
    db.execute("UPDATE sqlite_master SET rootpage = ? WHERE name = ?", (pages[forged_index], index))
    db.execute("UPDATE sqlite_master SET rootpage = ? WHERE name = ?", (pages[index], forged_index))
    db.execute("PRAGMA writable_schema = OFF")
    db.close()


def test_index_only_edit_of_the_old_spend_index_no_longer_frees_budget(tmp_path: Path) -> None:
    """Issue 14's attack: the `entries_spend` index B-tree rewritten to say every spend was 0.
    The budget never reads it any more; full verify sees the index disagrees with its table."""
    led = open_ledger(tmp_path / "ledger.sqlite", tmp_path)
    budget = Budget(3.0, scope="per-analyst")
    spend_all(led, budget)
    led.close()
    db = sqlite3.connect(led.path, isolation_level=None)
    db.execute("CREATE TABLE forged AS SELECT * FROM entries")
    db.execute("UPDATE forged SET epsilon_micro = 0, delta_pico = 0")
    db.execute("CREATE INDEX forged_spend ON forged (purpose, analyst, ts, epsilon_micro, "
               "delta_pico)")
    db.close()
    _swap_index_btree(led.path, "entries_spend", "forged_spend")
    with closing(sqlite3.connect(led.path)) as db:  # the forged index is what SQLite now reads
        zero = db.execute("SELECT SUM(epsilon_micro) FROM entries INDEXED BY entries_spend "
                          "WHERE purpose = 'churn' AND analyst = 'alice'").fetchone()[0]
    assert zero == 0
    led = open_ledger(led.path, tmp_path)
    for _ in range(5):
        with pytest.raises(BudgetExceeded):
            led.reserve(analyst="alice", purpose="churn", epsilon=0.75, budget=budget)
    assert granted(led) == 3 * MICRO
    led.verify()  # fast verify reads the table, which is intact...
    with pytest.raises(LedgerTampered, match="integrity check"):
        led.verify(full=True)  # ...full verify asks SQLite whether every index agrees


def test_index_only_edit_of_the_spends_index_is_caught_at_reserve(tmp_path: Path) -> None:
    """The index a period budget searches, its B-tree forged to put every spend before the
    window (writable_schema): the next reserve authenticates what it found and refuses."""
    clock = Clock(datetime(2025, 3, 1, tzinfo=timezone.utc))
    led = timed_ledger(tmp_path / "ledger.sqlite", tmp_path, clock)
    monthly = Budget(3.0, scope="per-analyst", period_days=30)
    for _ in range(30):
        led.reserve(analyst="alice", purpose="churn", epsilon=0.1, budget=monthly)
        clock.now += timedelta(minutes=1)
    led.close()
    db = sqlite3.connect(led.path, isolation_level=None)
    db.execute("CREATE TABLE forged (key TEXT NOT NULL, n INTEGER NOT NULL, ts TEXT NOT NULL, "
               "seq INTEGER NOT NULL, PRIMARY KEY (key, n)) WITHOUT ROWID")
    db.execute("INSERT INTO forged SELECT key, n, '2000-01-01T00:00:00.000000+00:00', seq "
               "FROM spends")
    db.execute("CREATE INDEX forged_ts ON forged (key, ts, n)")
    db.close()
    _swap_index_btree(led.path, "spends_ts", "forged_ts")
    led = timed_ledger(led.path, tmp_path, clock)
    err = caught_at_reserve(led, monthly)
    assert "index" in err.reason or "gone" in err.reason
    assert granted(led) == 3 * MICRO


def test_edit_of_the_spends_index_table_is_caught_at_reserve(ledger_at, tmp_path: Path) -> None:
    """The spends index is unsigned: shifting its times (or dropping rows) must not open a
    window; reserve authenticates the spends around the window's start."""
    clock = Clock(datetime(2025, 3, 1, tzinfo=timezone.utc))
    led = timed_ledger(ledger_at, tmp_path, clock)
    monthly = Budget(3.0, scope="per-purpose", period_days=30)
    for _ in range(30):
        led.reserve(analyst="alice", purpose="churn", epsilon=0.1, budget=monthly)
        clock.now += timedelta(hours=1)
    with closing(raw(led)) as db:
        db.execute("UPDATE spends SET ts = '2000-01-01T00:00:00.000000+00:00' WHERE n <= 25")
    caught_at_reserve(led, monthly)
    with closing(raw(led)) as db:
        db.execute("DELETE FROM spends")
    caught_at_reserve(led, monthly)
    with pytest.raises(LedgerTampered, match="spends index"):
        led.verify()


def test_total_edits_are_caught_at_reserve(ledger_at, tmp_path: Path) -> None:
    """A bucket pointed back at an older (genuine, signed) spend, its hash recomputed; the
    whole path up to a forged root; the tree deleted: each caught by the next reserve."""
    from mesh_nb.ledger.totals import (DEFAULT, height, keys_of, leaf_hash, leaf_of, node_hash,
                                       spend_digest)

    led = open_ledger(ledger_at, tmp_path)
    budget = Budget(3.0, scope="per-analyst")
    spend_all(led, budget)
    led.append("session.ended", analyst="alice", purpose="churn")  # the head spends nothing
    key = keys_of("churn", "alice")["per-analyst"]

    leaf = leaf_of(key)
    with closing(raw(led)) as db:
        body = json.loads(db.execute("SELECT body FROM entries WHERE seq = 2").fetchone()[0])
        content = json.loads(db.execute("SELECT content FROM state WHERE id = ?",
                                        (leaf,)).fetchone()[0])
        for item in content:
            if item[0] == key:
                item[1:] = [2, spend_digest(body)]  # the second spend: 0.2 spent, not 3.0
        text = canonical_json(content)
        db.execute("UPDATE state SET content = ?, hash = ? WHERE id = ?",
                   (text, leaf_hash(text).hex(), leaf))
    assert "root" in caught_at_reserve(led, budget).reason
    with closing(raw(led)) as db:  # recompute the whole path: a root the head never signed
        nodes = {i: (h, c) for i, h, c in db.execute("SELECT id, hash, content FROM state")}
        digest, node = leaf_hash(text), leaf
        while node > 1:
            sib = nodes.get(node ^ 1)
            sib = bytes.fromhex(sib[0]) if sib else DEFAULT[height(node ^ 1)]
            digest = node_hash(digest, sib) if node % 2 == 0 else node_hash(sib, digest)
            node >>= 1
            db.execute("UPDATE state SET hash = ? WHERE id = ?", (digest.hex(), node))
    assert "root" in caught_at_reserve(led, budget).reason
    with closing(raw(led)) as db:
        db.execute("DELETE FROM state")
    caught_at_reserve(led, budget)
    with pytest.raises(LedgerTampered):
        led.verify()


def test_edited_totals_in_an_entry_are_caught_at_reserve(ledger_at, tmp_path: Path) -> None:
    """The latest spend's signed totals rewritten to 0 with its hash recomputed: the bucket's
    digest no longer matches (and, as the head, its signature fails)."""
    from mesh_nb.ledger.entry import chain_hash

    led = open_ledger(ledger_at, tmp_path)
    budget = Budget(3.0, scope="per-analyst")
    spend_all(led, budget)
    last = [e for e in led.entries() if e.kind == "query.released"][-1]
    led.append("session.ended", analyst="alice", purpose="churn")
    with closing(raw(led)) as db:
        body = last.body()
        for record in body["totals"].values():
            record[1] = 0
        text = canonical_json(body)
        db.execute("UPDATE entries SET body = ?, hash = ? WHERE seq = ?",
                   (text, chain_hash(body["prev"], text), last.seq))
    assert "running totals" in caught_at_reserve(led, budget).reason


def test_plain_update_of_epsilon_is_caught_at_reserve(ledger_at, tmp_path: Path) -> None:
    led = open_ledger(ledger_at, tmp_path)
    budget = Budget(3.0, scope="per-purpose")
    spend_all(led, budget)
    with closing(raw(led)) as db:
        db.execute("UPDATE entries SET epsilon_micro = 0")
    err = caught_at_reserve(led, budget)
    assert "column epsilon_micro disagrees" in err.reason
    with pytest.raises(LedgerTampered, match="column epsilon_micro"):
        led.verify()


def test_an_entry_without_its_spend_in_the_totals_is_caught(ledger_at, tmp_path: Path) -> None:
    """Deleting the latest spend and re-linking is a cut tail: refused before any budget."""
    led = open_ledger(ledger_at, tmp_path)
    budget = Budget(1.0, scope="per-analyst")
    spend_all(led, budget, n=10)
    with closing(raw(led)) as db:
        db.execute("DELETE FROM entries WHERE seq >= 9")
    caught_at_reserve(led, budget)


# -- time -------------------------------------------------------------------------------------

def test_a_clock_going_back_cannot_hide_spends(ledger_at, tmp_path: Path) -> None:
    """A writer whose clock is 40 days behind stamps its entries with its predecessor's time,
    so a 30-day window still counts every spend: no second budget."""
    clock = Clock(datetime(2025, 3, 1, tzinfo=timezone.utc))
    led = timed_ledger(ledger_at, tmp_path, clock)
    monthly = Budget(3.0, scope="per-analyst", period_days=30)
    spend_all(led, monthly)
    head = led.head()
    clock.now -= timedelta(days=40)
    for _ in range(3):
        with pytest.raises(BudgetExceeded):
            led.reserve(analyst="alice", purpose="churn", epsilon=0.5, budget=monthly)
    assert led.head().ts == head.ts  # never earlier than its predecessor
    assert granted(led) == 3 * MICRO
    clock.now += timedelta(days=40 + 31)  # a real month later the window is fresh again
    led.reserve(analyst="alice", purpose="churn", epsilon=3.0, budget=monthly)
    led.verify(full=True)


def test_verify_reports_an_entry_earlier_than_its_predecessor(ledger_at, tmp_path: Path) -> None:
    """An entry stamped before its predecessor, even signed by the owner's own key (an older
    writer, a forger who has the key) is reported by verify."""
    led = open_ledger(ledger_at, tmp_path)
    for _ in range(3):
        led.append("session.bound", analyst="alice", purpose="churn")
    head = led.head()
    earlier = (datetime.fromisoformat(head.ts) - timedelta(days=40)).isoformat(
        timespec="microseconds")
    forged = Entry.seal(**{**head.body(), "ts": earlier}, sign=led.key.sign)
    with closing(raw(led)) as db:
        db.execute("UPDATE entries SET ts = ?, body = ?, hash = ?, sig = ? WHERE seq = ?",
                   (forged.ts, forged.body_json(), forged.hash, forged.sig, forged.seq))
    led._advance_checkpoint(forged.seq, forged.hash, force=True)
    with pytest.raises(LedgerTampered, match="earlier than entry 2"):
        led.verify()


def test_a_postgres_ledger_ignores_the_writers_clock(pg_url: str, tmp_path: Path) -> None:
    """A writer whose own clock runs 40 days ahead cannot open a fresh 30-day window: the
    server's clock stamps every entry."""
    honest = Ledger(pg_url, tmp_path / "owner", PRODUCT)
    monthly = Budget(3.0, scope="per-analyst", period_days=30)
    spend_all(honest, monthly)
    ahead = Ledger(pg_url, tmp_path / "owner", PRODUCT,
                   clock=lambda: datetime.now(timezone.utc) + timedelta(days=40))
    for _ in range(3):
        with pytest.raises(BudgetExceeded):
            ahead.reserve(analyst="alice", purpose="churn", epsilon=0.5, budget=monthly)
    with closing(psycopg_connect(pg_url)) as db:
        server_now = db.execute("SELECT clock_timestamp()").fetchone()[0]
    assert datetime.fromisoformat(ahead.head().ts) <= server_now
    assert granted(honest) == 3 * MICRO


def psycopg_connect(url: str):
    import psycopg
    from pgserver import libpq_url

    return psycopg.connect(libpq_url(url), autocommit=True)


# -- locks ------------------------------------------------------------------------------------

def _hold(at, root: Path, which: str, holding) -> None:
    import fcntl

    led = open_ledger(at, root)
    if which == "checkpoint":
        with led._checkpoint_lock(fcntl.LOCK_EX):
            holding.set()
            threading.Event().wait(120)
    else:
        with led.store.writing() as rows:
            rows.head()
            holding.set()
            threading.Event().wait(120)


@pytest.mark.parametrize("which", ["checkpoint", "store"])
def test_a_stopped_lock_holder_gives_a_clear_error(which: str, ledger_at, tmp_path: Path) -> None:
    led = open_ledger(ledger_at, tmp_path, lock_timeout=1.0)
    led.append("session.bound", analyst="alice", purpose="churn")
    holding = FORK.Event()
    child = FORK.Process(target=_hold, args=(ledger_at, tmp_path, which, holding))
    child.start()
    try:
        assert holding.wait(60)
        os.kill(child.pid, signal.SIGSTOP)  # stopped while holding the lock
        for call in (lambda: led.reserve(analyst="alice", purpose="churn", epsilon=0.1,
                                         budget=Budget(1.0)),
                     lambda: led.append("session.ended")):
            with pytest.raises(LedgerError) as info:
                call()
            message = str(info.value)
            clean(message)
            if which == "checkpoint":
                assert "checkpoint lock" in message and "fuser" in message
            elif led.path is not None:
                assert "SQLite's write lock" in message and "fuser" in message
            else:
                assert "append lock" in message and "pg_stat_activity" in message
            assert "held by another" in message
    finally:
        os.kill(child.pid, signal.SIGCONT)
        os.kill(child.pid, signal.SIGKILL)
        child.join(30)
    led.reserve(analyst="alice", purpose="churn", epsilon=0.1, budget=Budget(1.0))
    assert led.verify().entries == 2


# -- storage failures -------------------------------------------------------------------------

@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 1 MiB tmpfs (needs root); skipped where mounting is not allowed."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode:
        pytest.skip("cannot mount a tmpfs here (not root?)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_disk_full_on_sqlite_is_a_ledger_error(tiny_disk: Path, tmp_path: Path) -> None:
    led = Ledger(tiny_disk / "ledger.sqlite", tmp_path / "owner", PRODUCT)
    budget = Budget(1e6, scope="per-purpose")
    big = {"query": "SELECT count(*) FROM t WHERE a = ? -- " + "x" * 60_000}
    filler = tiny_disk / "filler"
    filler.write_bytes(b"\0" * 200_000)
    with pytest.raises(LedgerError) as info:
        for _ in range(100):
            led.reserve(analyst="alice", purpose="churn", epsilon=0.1, budget=budget,
                        details=big)
    clean(str(info.value))
    assert "full" in str(info.value) or "I/O error" in str(info.value)
    count = len(led)
    with pytest.raises(LedgerError):  # still full: refused, nothing granted
        led.reserve(analyst="alice", purpose="churn", epsilon=0.1, budget=budget, details=big)
    assert len(led) == count
    filler.unlink()
    led.close()
    led = Ledger(tiny_disk / "ledger.sqlite", tmp_path / "owner", PRODUCT)
    led.reserve(analyst="alice", purpose="churn", epsilon=0.1, budget=budget)
    assert led.verify(full=True).entries == count + 1


def _fill_under_rlimit(path: Path, owner: Path, out) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    led = Ledger(path, owner, PRODUCT)
    size = sum(p.stat().st_size for p in path.parent.glob("ledger.sqlite*"))
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 200_000, resource.RLIM_INFINITY))
    try:
        for _ in range(1000):
            led.reserve(analyst="alice", purpose="churn", epsilon=0.1,
                        budget=Budget(1e6, scope="per-purpose"),
                        details={"query": "SELECT 1 -- " + "y" * 30_000})
        out.put(("no error", ""))
    except MeshError as exc:
        out.put((type(exc).__name__, str(exc)))
    except BaseException as exc:  # noqa: BLE001 - reported as the raw error it is
        out.put((type(exc).__name__, "raw"))


def test_file_size_limit_is_a_ledger_error(tmp_path: Path) -> None:
    path = tmp_path / "data" / "ledger.sqlite"
    Ledger(path, tmp_path / "owner", PRODUCT).append("session.bound")
    out = FORK.Queue()
    child = FORK.Process(target=_fill_under_rlimit, args=(path, tmp_path / "owner", out))
    child.start()
    kind, message = out.get(timeout=120)
    child.join(30)
    assert kind == "LedgerError", (kind, message)
    clean(message)
    led = Ledger(path, tmp_path / "owner", PRODUCT)
    assert led.verify(full=True).entries == len(led)


def test_malformed_and_truncated_files_are_ledger_errors(tmp_path: Path) -> None:
    path = tmp_path / "data" / "ledger.sqlite"
    led = open_ledger(path, tmp_path)
    for _ in range(50):
        led.append("session.bound", analyst="alice", purpose="churn",
                   details={"query": "SELECT 1 -- " + "z" * 2000})
    led.close()
    good = path.read_bytes()
    for damaged in (SECRET.encode() * 300, good[:len(good) // 3], b""):
        path.write_bytes(damaged)
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        with pytest.raises(LedgerError) as info:
            again = open_ledger(path, tmp_path)
            again.reserve(analyst="alice", purpose="churn", epsilon=0.1, budget=Budget(1.0))
            again.verify()
        clean(str(info.value))


def test_an_undecodable_row_is_caught_without_its_text(ledger_at, tmp_path: Path) -> None:
    led = open_ledger(ledger_at, tmp_path)
    budget = Budget(3.0)
    for _ in range(3):
        led.reserve(analyst="alice", purpose="churn", epsilon=0.1, budget=budget)
    with closing(raw(led)) as db:
        if led.path is not None:  # bytes that are not UTF-8, with a data value inside
            db.execute("UPDATE entries SET body = CAST(X'fffe' || ? AS TEXT) WHERE seq = 3",
                       (SECRET,))
        else:  # PostgreSQL keeps text valid: a body that is no JSON
            db.execute("UPDATE entries SET body = ? WHERE seq = 3", ("{" + SECRET,))
    for call in (led.entries, led.head, led.verify,
                 lambda: led.reserve(analyst="alice", purpose="churn", epsilon=0.1,
                                     budget=budget),
                 lambda: led.remaining("alice", "churn", budget)):
        with pytest.raises(LedgerTampered) as info:
            call()
        clean(str(info.value))
    assert granted_safe(led) == 3


def granted_safe(led: Ledger) -> int:
    """Released queries counted without decoding bodies (one may be undecodable)."""
    with closing(raw(led)) as db:
        return db.execute("SELECT COUNT(*) FROM entries WHERE kind = 'query.released'"
                          ).fetchone()[0]


def test_a_swapped_ledger_is_refused(ledger_at, tmp_path: Path) -> None:
    """Another product's ledger put in place of this one (file copied, or rows copied into
    this product's schema): refused with a clean error before any budget is read."""
    led = open_ledger(ledger_at, tmp_path)
    spend_all(led, Budget(1.0), n=10)
    other_root = tmp_path / "other"
    if led.path is not None:
        other = Ledger(tmp_path / "other.sqlite", other_root / "owner", "sales")
        other.append("session.bound", analyst="alice", purpose="churn")
        other.close()
        led.close()
        shutil.copy(tmp_path / "other.sqlite", led.path)
        for suffix in ("-wal", "-shm"):
            Path(f"{led.path}{suffix}").unlink(missing_ok=True)
        with pytest.raises(LedgerError, match="ledger of product 'sales'") as info:
            open_ledger(led.path, tmp_path)
    else:  # the same product's ledger of another owner (its own key), rows copied over ours
        theirs = Ledger(led.location.rsplit("/", 1)[0] + "/postgres", other_root / "owner",
                        PRODUCT)
        theirs.append("session.bound", analyst="mallory", purpose="churn")
        with closing(psycopg_connect(led.location)) as db:
            db.execute(f'DELETE FROM "{led.store.schema}".entries')
            db.execute(f'DELETE FROM "{led.store.schema}".state')
        with theirs.store.reading() as their_rows:
            rows = list(their_rows.scan())
        theirs.close()
        with closing(psycopg_connect(led.location)) as db:
            for row in rows:
                db.execute(f'INSERT INTO "{led.store.schema}".entries VALUES '
                           f'({", ".join(["%s"] * len(row))})', row)
        with pytest.raises(LedgerTampered) as info:
            led.reserve(analyst="alice", purpose="churn", epsilon=0.1, budget=Budget(1.0))
    clean(str(info.value))


def test_a_dead_postgres_server_is_a_ledger_error(tmp_path: Path) -> None:
    from ports import free_port

    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    with pytest.raises(LedgerError, match="cannot reach the PostgreSQL ledger") as info:
        Ledger(url, tmp_path / "owner", PRODUCT)
    clean(str(info.value))


def test_a_server_that_never_answers_fails_within_its_connect_timeout(tmp_path: Path) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes the handshake; nobody ever answers
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(silent.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    url = (f"postgresql+psycopg://postgres@127.0.0.1:{silent.getsockname()[1]}/db"
           "?connect_timeout=2")
    result: list[BaseException] = []

    def connect() -> None:
        try:
            Ledger(url, tmp_path / "owner", PRODUCT)
        except BaseException as exc:  # noqa: BLE001 - examined below
            result.append(exc)

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(120)  # a generous deadline: a hang fails here
    stop.set()
    thread.join(10)
    for s in (*accepted, silent):
        s.close()
    assert not worker.is_alive(), "the ledger waited forever for a silent server"
    assert len(result) == 1 and isinstance(result[0], LedgerError), result
    assert "cannot reach the PostgreSQL ledger" in str(result[0])


def test_a_server_connection_lost_mid_use_is_a_ledger_error_then_recovers(pg_url: str,
                                                                         tmp_path: Path) -> None:
    led = Ledger(pg_url, tmp_path / "owner", PRODUCT)
    budget = Budget(1.0)
    led.reserve(analyst="alice", purpose="churn", epsilon=0.1, budget=budget)
    with closing(psycopg_connect(pg_url)) as db:
        db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                   "application_name = 'mesh_nb ledger' AND pid <> pg_backend_pid()")
    with pytest.raises(LedgerError) as info:
        led.reserve(analyst="alice", purpose="churn", epsilon=0.1, budget=budget)
    clean(str(info.value))
    led.reserve(analyst="alice", purpose="churn", epsilon=0.1, budget=budget)  # reconnects
    assert led.spent("alice", "churn", budget) == (0.2, 0.0)


# -- names, epsilon, URLs, keys ---------------------------------------------------------------

@pytest.mark.parametrize("name", ["al\ud800ice", "al\x00ice", "al\nice", "a" * 257, "\x7f"])
def test_names_are_validated_alike_on_both_stores(ledger: Ledger, name: str) -> None:
    messages = set()
    for call in (lambda: ledger.append("session.bound", analyst=name, purpose="churn"),
                 lambda: ledger.append("session.bound", analyst="a", purpose=name),
                 lambda: ledger.append("session.bound", session=name),
                 lambda: ledger.reserve(analyst=name, purpose="churn", epsilon=0.1,
                                        budget=Budget(1.0)),
                 lambda: ledger.remaining(name, "churn", Budget(1.0)),
                 lambda: ledger.entries(analyst=name)):
        with pytest.raises(ValueError) as info:
            call()
        assert name not in str(info.value)
        messages.add(str(info.value).split(" ", 1)[1])
    assert len(messages) == 1  # one rule, one message, whichever name and store
    assert len(ledger) == 0
    ledger.append("session.bound", analyst="Zoë 山田 🙂", purpose="churn", session="a" * 256)
    assert ledger.verify().entries == 1


def test_details_text_is_bounded_and_scalar(ledger: Ledger) -> None:
    for bad in ("\ud800", "a\x00b", "q" * 70_000):
        with pytest.raises(ValueError):
            ledger.append("query.rejected", details={"query": bad})
    ledger.append("query.rejected", details={"query": "SELECT 1\n\tFROM t"})
    assert len(ledger) == 1


def test_epsilon_is_bounded_and_sums_never_overflow(ledger: Ledger) -> None:
    for bad in (9.3e12, 1e9 + 1, float("inf")):
        with pytest.raises(ValueError):
            ledger.append("query.released", analyst="a", purpose="p", epsilon=bad)
    for _ in range(20):  # 2e10 epsilon in all: past int64 micro-sums of the old SUM()
        ledger.append("query.released", analyst="a", purpose="p", epsilon=1e9)
    with pytest.raises(BudgetExceeded):
        ledger.reserve(analyst="a", purpose="p", epsilon=0.1, budget=Budget(1e9))
    assert ledger.spent("a", "p", Budget(1e9)) == (2e10, 0.0)
    ledger.verify()


@pytest.mark.parametrize("suffix", ["?password=s3cret-pw", "?PASSWORD=s3cret-pw",
                                    "?pass%77ord=s3cret-pw", "?sslpassword=s3cret-pw",
                                    "?sslmode=require&password=s3cret-pw",
                                    "?options=-c%20password%3Ds3cret-pw"])
def test_url_secrets_are_refused_in_any_form(suffix: str, tmp_path: Path) -> None:
    url = "postgresql+psycopg://ledger@db.example:5432/mesh" + suffix
    with pytest.raises(LedgerUrlError) as info:
        ledger_url(url)
    assert "s3cret" not in str(info.value)
    with pytest.raises(LedgerUrlError) as info:
        Ledger(url, tmp_path / "owner", PRODUCT)
    assert "s3cret" not in str(info.value)
    ledger_url("postgresql://ledger@db.example/mesh?sslmode=require&connect_timeout=3"
               "&passfile=/home/o/.pgpass")  # a path to the password file is fine


def test_repr_never_shows_a_secret(pg_url: str, tmp_path: Path) -> None:
    led = Ledger(pg_url, tmp_path / "owner", PRODUCT)
    assert "@" in repr(led) and ":" not in repr(led).split("//")[1].split("@")[0]
    assert repr(led.store).startswith("PostgresStore(")


def test_a_replaced_or_deleted_owner_key_is_never_papered_over(ledger_at, tmp_path: Path) -> None:
    led = open_ledger(ledger_at, tmp_path)
    led.append("session.bound")
    led.close()
    owner = tmp_path / "owner"
    pub = (owner / "ed25519.pub").read_bytes()
    key = (owner / "ed25519.key").read_bytes()
    (owner / "ed25519.key").unlink()
    with pytest.raises(LedgerError, match="missing but the ledger has entries"):
        open_ledger(ledger_at, tmp_path)
    assert not (owner / "ed25519.key").exists() and (owner / "ed25519.pub").read_bytes() == pub
    OwnerKey.load_or_create(tmp_path / "elsewhere")
    shutil.copy(tmp_path / "elsewhere" / "ed25519.key", owner / "ed25519.key")
    with pytest.raises(LedgerError, match="does not match the published"):
        open_ledger(ledger_at, tmp_path)
    assert (owner / "ed25519.pub").read_bytes() == pub  # never overwritten
    (owner / "ed25519.key").write_bytes(key)
    assert open_ledger(ledger_at, tmp_path).verify().entries == 1


def test_a_deleted_checkpoint_of_a_ledger_with_entries_is_an_error(ledger_at,
                                                                  tmp_path: Path) -> None:
    led = open_ledger(ledger_at, tmp_path)
    spend_all(led, Budget(1.0), n=10)
    (tmp_path / "owner" / CHECKPOINT_FILE).unlink()
    again = open_ledger(ledger_at, tmp_path)
    assert not (tmp_path / "owner" / CHECKPOINT_FILE).exists()  # not a fresh start
    with pytest.raises(LedgerTampered, match="checkpoint is missing"):
        again.reserve(analyst="alice", purpose="churn", epsilon=0.1, budget=Budget(1.0))


def test_a_witness_catches_a_rollback_of_ledger_and_owner_dir_together(tmp_path: Path) -> None:
    """The owner directory's own checkpoint cannot catch a restore of both it and the ledger;
    a copy of the checkpoint kept elsewhere (a second witness) can."""
    at = tmp_path / "ledger.sqlite"
    led = open_ledger(at, tmp_path)
    budget = Budget(1.0)
    for _ in range(4):
        led.reserve(analyst="alice", purpose="churn", epsilon=0.2, budget=budget)
    led.close()
    backup = tmp_path / "backup"
    backup.mkdir()
    shutil.copy(at, backup / "ledger.sqlite")
    shutil.copytree(tmp_path / "owner", backup / "owner")
    led = open_ledger(at, tmp_path)
    led.reserve(analyst="alice", purpose="churn", epsilon=0.2, budget=budget)
    witness = tmp_path / "witness.slots"
    shutil.copy(tmp_path / "owner" / CHECKPOINT_FILE, witness)  # e.g. a nightly copy elsewhere
    assert led.verify(witness=witness).entries == 5
    led.reserve(analyst="alice", purpose="churn", epsilon=0.0, budget=budget)  # chain grows
    assert led.verify(witness=witness).entries == 6  # an older witness still agrees
    led.close()
    # the attacker restores the ledger and the owner directory of the same earlier day
    shutil.copy(backup / "ledger.sqlite", at)
    shutil.rmtree(tmp_path / "owner")
    shutil.copytree(backup / "owner", tmp_path / "owner")
    restored = open_ledger(at, tmp_path)
    assert restored.verify().entries == 4  # consistent with itself: only a witness can tell
    with pytest.raises(LedgerTampered, match="witness checkpoint") as info:
        restored.verify(witness=witness)
    assert "tail cut or older copy restored" in str(info.value)
    forged_path = tmp_path / "forged.slots"  # a witness "edited" to agree with the restore
    forged_path.write_bytes(re.sub(rb'"count":\d+', b'"count":3', witness.read_bytes()))
    with pytest.raises(LedgerTampered, match="witness checkpoint .* signature is invalid"):
        restored.verify(witness=forged_path)
    with pytest.raises(LedgerError, match="cannot read the witness"):
        restored.verify(witness=tmp_path / "absent.slots")


def test_cli_verify_with_a_witness_and_migrate_moves_an_in_folder_owner_dir(
        demo_dir: Path, capsys: pytest.CaptureFixture) -> None:
    import mesh_nb
    from mesh_nb.cli import main
    from mesh_nb.ledger.config import personal_owner_dir

    folder = demo_dir / "customers"
    legacy = folder / ".owner"
    OwnerKey.load_or_create(legacy)  # as an older mesh_nb made it, inside the product folder
    product = mesh_nb.open_mesh(demo_dir).product("customers")
    assert product.owner_dir == legacy
    mesh_nb.open_mesh(demo_dir).bind("customers", purpose="churn-analysis",
                                     analyst="alice").end()
    witness = demo_dir.parent / "witness.slots"
    shutil.copy(legacy / CHECKPOINT_FILE, witness)
    assert main(["ledger", "verify", "customers", "--mesh", str(demo_dir),
                 "--witness", str(witness)]) == 0
    assert "the witness agrees" in capsys.readouterr().out
    assert main(["ledger", "migrate", "customers", "--mesh", str(demo_dir)]) == 0
    target = personal_owner_dir(folder, "customers")
    assert "moved out of the product folder" in capsys.readouterr().out
    assert not legacy.exists() and (target / "ed25519.key").exists()
    assert (target.stat().st_mode & 0o777) == 0o700
    product = mesh_nb.open_mesh(demo_dir).product("customers")
    assert product.owner_dir == target and product.ledger.verify(witness=witness).entries == 2


# -- old ledgers ------------------------------------------------------------------------------

def _write_v1(led: Ledger, n: int) -> None:
    """Entries as mesh_nb wrote them before running totals (no ``state``, no ``totals``)."""
    from mesh_nb.ledger.store import _row_of

    prev, ts = GENESIS, datetime(2025, 1, 1, tzinfo=timezone.utc)
    with led.store.writing() as rows:
        for seq in range(1, n + 1):
            e = Entry.seal(seq=seq, ts=(ts + timedelta(minutes=seq)).isoformat(
                timespec="microseconds"), kind="query.released" if seq % 2 else "session.bound",
                product=PRODUCT, session="s1", analyst="alice", purpose="churn",
                epsilon_micro=100_000 if seq % 2 else 0, delta_pico=0, details={"rows": seq},
                prev=prev, sign=led.key.sign)
            rows.insert(_row_of(e))
            prev = e.hash
    led._advance_checkpoint(n, prev)


def test_an_old_ledger_is_readable_and_migrates_once(ledger_at, tmp_path: Path) -> None:
    led = open_ledger(ledger_at, tmp_path)
    _write_v1(led, 9)
    assert led.verify().entries == 9 and len(led.entries(kind="query.released")) == 5
    budget = Budget(1.0, scope="per-analyst")
    for call in (lambda: led.reserve(analyst="alice", purpose="churn", epsilon=0.1,
                                     budget=budget),
                 lambda: led.append("session.ended"),
                 lambda: led.spent("alice", "churn", budget)):
        with pytest.raises(LedgerError, match="mesh-nb ledger migrate"):
            call()
    old = led.entries()
    assert led.migrate() == 9
    assert led.migrate() == 0
    new = led.entries()
    assert [(e.seq, e.ts, e.kind, e.epsilon_micro, e.details) for e in new] == \
        [(e.seq, e.ts, e.kind, e.epsilon_micro, e.details) for e in old]
    assert led.verify(full=True).entries == 9
    assert led.spent("alice", "churn", budget) == (0.5, 0.0)
    for _ in range(5):
        led.reserve(analyst="alice", purpose="churn", epsilon=0.1, budget=budget)
    with pytest.raises(BudgetExceeded):
        led.reserve(analyst="alice", purpose="churn", epsilon=0.1, budget=budget)
    with closing(raw(led)) as db:
        assert db.execute("SELECT COUNT(*) FROM entries_v1").fetchone()[0] == 9
