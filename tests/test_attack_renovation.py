"""An adversary's probes of today's renovation of the query path (issue 16).

Each test is one attack by an analyst who wants one person's data without paying, or another
product's budget for free: a probe that held asserts the property; a finding that is not fixed
is marked ``xfail(strict=True)`` with what it shows.

1. ``ledger.store.reserve_all`` (one atomic reservation across the products a query reads):
   a short product, separate writers (own connections, threads and processes) in opposite
   binding orders on SQLite, PostgreSQL and both at once, a ledger that breaks mid-reservation.
2. ``query.post`` (HAVING / ORDER BY / LIMIT over released values): its failures are the one
   charged, generic :class:`QueryFailed`, the same as the engine's.
3. ``query.checks`` (the owner's signed record of a declared-unique privacy unit, per data
   fingerprint): a rewrite an owner makes must not keep a stale "unique".
4. ``Session`` over its backends: what the local path refuses, the client refuses too.
"""

from __future__ import annotations

import itertools

import multiprocessing as mp
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

import mesh_nb
from mesh_nb.contract.model import Budget
from mesh_nb.errors import BudgetExceeded, LedgerTampered, MeshError, QueryFailed
from mesh_nb.ledger import Ledger
from mesh_nb.ledger.store import reserve_all

PURPOSE = "churn"
ANALYST = "mallory"


# -- 1. reserve_all ---------------------------------------------------------------------------

def _where(kind: str, tmp_path: Path, pg: str | None, name: str) -> Path | str:
    """Where product ``name``'s ledger lives: its own SQLite file, or the shared database."""
    if kind == "postgres" or (kind == "mixed" and name == "orders"):
        assert pg is not None
        return pg
    return tmp_path / f"{name}.sqlite"


def _open(kind: str, tmp_path: Path, pg: str | None, name: str) -> Ledger:
    """A new Ledger object (its own connection: a writer of its own) on product ``name``."""
    return Ledger(_where(kind, tmp_path, pg, name), tmp_path / f"owner-{name}", name)


def _spend(kind: str, tmp_path: Path, pg: str | None, order: tuple[str, ...], budgets: dict,
           times: int) -> int:
    """``times`` reservations of 0.1 over the products in ``order``, each by ledgers of this
    writer's own; returns how many were granted."""
    ledgers = {name: _open(kind, tmp_path, pg, name) for name in order}
    granted = 0
    try:
        for _ in range(times):
            try:
                reserve_all([(ledgers[n], budgets[n]) for n in order], analyst=ANALYST,
                            purpose=PURPOSE, epsilon=0.1, details={"query": "q"})
                granted += 1
            except BudgetExceeded:
                pass
    finally:
        for led in ledgers.values():
            led.close()
    return granted


def _spend_in_child(args: tuple) -> int:
    return _spend(*args)


BUDGETS = {"accounts": Budget(1.0), "orders": Budget(0.7)}
ORDERS = (("accounts", "orders"), ("orders", "accounts"))


def _check_atomic(kind: str, tmp_path: Path, pg: str | None, granted: int) -> None:
    """Every grant charged both ledgers, none overspent, both verify in full."""
    a, b = (_open(kind, tmp_path, pg, n) for n in ("accounts", "orders"))
    try:
        assert granted == 7, "0.7 in 0.1 steps on the tighter product"
        for led in (a, b):
            assert led.spent(ANALYST, PURPOSE, BUDGETS["orders"])[0] == pytest.approx(0.7)
            assert len(led.entries(kind="query.released")) == 7
            led.verify(full=True)
        # a refusal is recorded only where the budget was short
        assert not a.entries(kind="budget.exhausted")
        assert b.entries(kind="budget.exhausted")
    finally:
        a.close(), b.close()


def _prepare(kind: str, tmp_path: Path, pg: str | None) -> None:
    for name in ("accounts", "orders"):  # keys and checkpoints exist before the writers race
        _open(kind, tmp_path, pg, name).close()


@pytest.fixture(params=["sqlite", "postgres", "mixed"])
def stores(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """(kind, database URL or None): both ledgers in SQLite files, both in one PostgreSQL
    database, or one in each."""
    if request.param == "sqlite":
        return "sqlite", None
    return request.param, request.getfixturevalue("pg_url")


def test_one_product_short_charges_no_other(stores, tmp_path: Path) -> None:
    kind, pg = stores
    a, b = _open(kind, tmp_path, pg, "accounts"), _open(kind, tmp_path, pg, "orders")
    reserve_all([(b, Budget(0.15))], analyst=ANALYST, purpose=PURPOSE, epsilon=0.1)
    with pytest.raises(BudgetExceeded) as info:
        reserve_all([(a, Budget(1.0)), (b, Budget(0.15))], analyst=ANALYST, purpose=PURPOSE,
                    epsilon=0.1)
    assert info.value.product == "orders"
    assert len(a) == 0 and a.spent(ANALYST, PURPOSE, Budget(1.0)) == (0.0, 0.0)
    assert [e.kind for e in b.entries()] == ["query.released", "budget.exhausted"]
    a.verify(full=True), b.verify(full=True)
    a.close(), b.close()


def test_a_broken_ledger_mid_reservation_charges_no_other(tmp_path: Path) -> None:
    """The second ledger (in lock order) contradicts its checkpoint: LedgerTampered, and the
    first ledger, already locked, stays as it was."""
    a, b = _open("sqlite", tmp_path, None, "accounts"), _open("sqlite", tmp_path, None, "orders")
    b.append("session.bound", analyst=ANALYST, purpose=PURPOSE)
    (tmp_path / "owner-orders" / "checkpoint.slots").unlink()
    with pytest.raises(LedgerTampered):
        reserve_all([(b, Budget(1.0)), (a, Budget(1.0))], analyst=ANALYST, purpose=PURPOSE,
                    epsilon=0.1)
    assert len(a) == 0 and a.verify(full=True).entries == 0
    a.close(), b.close()


def test_writers_in_opposite_orders_on_their_own_connections(stores, tmp_path: Path) -> None:
    """Four threads, each with Ledger objects of its own (as separate kernels have), half
    binding the products one way and half the other: no deadlock (each would wait out the
    30 s lock timeout), no overspend, every grant in both ledgers, both verify in full."""
    kind, pg = stores
    _prepare(kind, tmp_path, pg)
    jobs = [(kind, tmp_path, pg, ORDERS[i % 2], BUDGETS, 3) for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        granted = sum(pool.map(_spend_in_child, jobs, timeout=60))
    _check_atomic(kind, tmp_path, pg, granted)


def test_processes_in_opposite_orders(stores, tmp_path: Path) -> None:
    """The same race between processes (forked; each opens its own ledgers)."""
    kind, pg = stores
    _prepare(kind, tmp_path, pg)
    jobs = [(kind, tmp_path, pg, ORDERS[i % 2], BUDGETS, 3) for i in range(4)]
    with mp.get_context("fork").Pool(4) as pool:
        granted = sum(pool.map_async(_spend_in_child, jobs).get(timeout=90))
    _check_atomic(kind, tmp_path, pg, granted)


# -- 2. post-processing over released values --------------------------------------------------

GROUPED = "SELECT plan, COUNT(*) AS n FROM customers.accounts GROUP BY plan"
#: HAVING / ORDER BY that fail on released values: numpy's evaluator (division, overflow),
#: and DuckDB's over the released frame (a cast it cannot make).
FAILING_POST = (f"{GROUPED} HAVING n // 0 > 1",
                f"{GROUPED} HAVING n * 9223372036854775807 > 0",
                f"{GROUPED} HAVING CAST(plan AS INT) > 1",
                f"{GROUPED} HAVING CAST(n AS TINYINT) > 0")


@pytest.fixture
def session(demo_dir: Path):
    with mesh_nb.open_mesh(demo_dir).bind("customers", purpose="churn-analysis",
                                          analyst=ANALYST) as s:
        yield s


def test_a_post_processing_failure_is_the_charged_generic_failure(session) -> None:
    """Each is charged, recorded as ``query.failed`` (rule ``release-error``), and reads as
    every other failure after the reservation (the engine's too: one constructor): no
    released value, no operator, no exception of its own."""
    messages = set()
    for sql in FAILING_POST:
        with pytest.raises(QueryFailed) as failed:
            session.query(sql, epsilon=0.1)
        assert type(failed.value) is QueryFailed and failed.value.__cause__ is None
        messages.add(str(failed.value))
    assert messages == {str(QueryFailed("any", 0.1, 0.0))}
    assert not any(ch.isdigit() for ch in messages.pop())
    assert session.budget().epsilon_spent == pytest.approx(0.1 * len(FAILING_POST))
    failed = session.product().ledger.entries(kind="query.failed")
    assert [e.details["rule"] for e in failed] == ["release-error"] * len(FAILING_POST)


def test_post_processing_reads_released_values_only(session) -> None:
    """HAVING, ORDER BY and LIMIT are a function of the released frame alone: over one
    release they keep exactly the released rows that pass, in order."""
    from mesh_nb.query import policy
    from mesh_nb.query.post import post_process

    released = session.query(GROUPED, epsilon=0.5)
    contracts = {p.name: p.contract for p in session.products}
    checked = policy.check(f"{GROUPED} HAVING n > 12000 ORDER BY n DESC LIMIT 2", contracts,
                           session.purpose)
    kept, accuracy = post_process(checked, released.frame, released.accuracy)
    full = released.frame
    expected = full[full.n > 12000].sort_values("n", ascending=False).head(2)
    assert kept.to_dict("records") == expected.to_dict("records")
    assert set(accuracy.row) <= set(range(len(kept)))


# -- 3. the owner's record of a declared-unique privacy unit ----------------------------------

COUNT_ALL = "SELECT COUNT(*) AS n FROM customers.accounts"
UNIQUE_MARK = "    logicalTypeOptions: {pattern: '^C[0-9]{7}$'}\n    required: true\n"


def _declare_unique(demo_dir: Path, fmt: str = "parquet") -> Path:
    """customers.accounts deduplicated, its unit declared ``unique``, stored as ``fmt``
    (parquet, csv, or a folder of parquet parts); returns the data path."""
    folder = demo_dir / "customers"
    frame = pd.read_parquet(folder / "accounts.parquet").drop_duplicates("customer_id")
    contract = folder / "datacontract.yaml"
    text = contract.read_text()
    assert UNIQUE_MARK in text
    text = text.replace(UNIQUE_MARK, UNIQUE_MARK + "    unique: true\n", 1)
    if fmt == "parquet":
        path = folder / "accounts.parquet"
        frame.to_parquet(path)
    elif fmt == "csv":
        (folder / "accounts.parquet").unlink()
        path = folder / "accounts.csv"
        frame.to_csv(path, index=False)
        text = text.replace("path: ./accounts.parquet", "path: ./accounts.csv")
        text = text.replace("format: parquet", "format: csv", 1)
    else:
        (folder / "accounts.parquet").unlink()
        path = folder / "accounts"
        path.mkdir()
        half = len(frame) // 2
        frame.iloc[:half].to_parquet(path / "part-0.parquet")
        frame.iloc[half:].to_parquet(path / "part-1.parquet")
        text = text.replace("path: ./accounts.parquet", "path: ./accounts/")
    contract.write_text(text)
    return path


def _fresh_plan(demo_dir: Path):
    """A new kernel's plan of COUNT_ALL (the engine answers uniqueness from the record)."""
    with mesh_nb.open_mesh(demo_dir).bind("customers", purpose="churn-analysis",
                                          analyst=ANALYST) as s:
        return s.explain(COUNT_ALL, epsilon=0.1).plan


_EPSILONS = itertools.count(1)


def _fresh_verdict(demo_dir: Path, data: Path) -> bool | None:
    """A new kernel's query of COUNT_ALL (a new epsilon each time: never the release cache),
    then what the owner's record says of ``data``'s uniqueness (the analyst sees the same
    kind of release either way)."""
    from mesh_nb.query.checks import DataChecks, fingerprint

    with mesh_nb.open_mesh(demo_dir).bind("customers", purpose="churn-analysis",
                                          analyst=ANALYST) as s:
        s.query(COUNT_ALL, epsilon=0.01 * next(_EPSILONS))
        owner = s.product().owner_dir
    return DataChecks(owner).get("unit-unique:accounts:customer_id", fingerprint(data))


def _duplicate_one_id(frame: pd.DataFrame) -> pd.DataFrame:
    """One person's id given to another row (same width: a file of the same size)."""
    frame = frame.copy()
    frame.loc[frame.index[100], "customer_id"] = frame.loc[frame.index[200], "customer_id"]
    return frame


def _duplicate_one_id_in_text(path: Path) -> None:
    """The edit of :func:`_duplicate_one_id` made in the CSV's text: row 100's id (the first
    field, a fixed width) replaced by row 200's."""
    lines = path.read_bytes().split(b"\n")
    assert lines[0].startswith(b"customer_id,")
    lines[101] = lines[201].split(b",", 1)[0] + b"," + lines[101].split(b",", 1)[1]
    path.write_bytes(b"\n".join(lines))


def _keeping_mtime(path: Path, write) -> None:
    """Rewrite ``path`` and give it back its modification time, as ``cp -p``, ``rsync -a``,
    ``tar``/``unzip`` or a file system with whole-second times leave it."""
    st = path.stat()
    write()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_rewritten_parquet_file_is_checked_again(demo_dir: Path) -> None:
    path = _declare_unique(demo_dir, "parquet")
    assert _fresh_verdict(demo_dir, path) is True
    _keeping_mtime(path, lambda: _duplicate_one_id(pd.read_parquet(path)).to_parquet(path))
    assert _fresh_verdict(demo_dir, path) is False


def test_a_new_part_in_a_partitioned_folder_changes_its_fingerprint(demo_dir: Path) -> None:
    from mesh_nb.query.checks import fingerprint

    path = _declare_unique(demo_dir, "folder")
    before = fingerprint(path)
    pd.read_parquet(path / "part-0.parquet").iloc[:1].to_parquet(path / "part-2.parquet")
    assert fingerprint(path) != before


def test_a_declared_unique_folder_is_refused_as_a_policy_violation(demo_dir: Path) -> None:
    """Fixed by reading no data before the charge: the sandboxed DuckDB cannot read a
    partitioned folder, and the refusal is the engine's ``engine-rejected`` (the uniqueness
    check, which let DuckDB's raw PermissionException with the owner's path out of prepare,
    now runs only after the reservation)."""
    from mesh_nb import PolicyViolation

    path = _declare_unique(demo_dir, "folder")
    with pytest.raises(PolicyViolation) as info:
        _fresh_plan(demo_dir)
    assert info.value.rule == "engine-rejected" and path.is_dir()  # (the server strips paths)


def test_a_rewritten_csv_file_is_checked_again(demo_dir: Path) -> None:
    """Fixed: a CSV's print was its size, mtime and last 64 KiB, so an edit before the tail
    that keeps the size under a kept mtime reused the record's "unique" (k=1 sensitivity for
    a person with two rows); it now hashes the whole file and adds the ctime."""
    path = _declare_unique(demo_dir, "csv")
    assert _fresh_verdict(demo_dir, path) is True
    size = path.stat().st_size
    _keeping_mtime(path, lambda: _duplicate_one_id_in_text(path))
    assert path.stat().st_size == size
    assert _fresh_verdict(demo_dir, path) is False


def _with_person_twice(demo_dir: Path, path: Path) -> None:
    """The neighbouring mesh: one more person, with two rows."""
    frame = pd.read_parquet(path)
    person = frame.iloc[[0, 0]].assign(customer_id="C9999991")
    pd.concat([frame, person], ignore_index=True).to_parquet(path)


def test_explain_does_not_tell_neighbours_apart_by_uniqueness(demo_dir: Path,
                                                              tmp_path: Path) -> None:
    path = _declare_unique(demo_dir, "parquet")
    neighbour = tmp_path / "neighbour"
    shutil.copytree(demo_dir, neighbour, ignore=shutil.ignore_patterns(".mesh_nb", ".owner"))
    _with_person_twice(neighbour, neighbour / path.relative_to(demo_dir))

    """Fixed: the plan rests on the declaration and reads no data; a query on data that
    breaks it keeps at most one row per unit, after the budget is reserved."""
    def outcome(mesh_dir: Path) -> str:
        try:
            plan = _fresh_plan(mesh_dir)
            return f"{plan.max_contributions}|{plan.sql}|{plan.notes}"
        except MeshError as exc:
            return type(exc).__name__ + str(exc)

    assert outcome(demo_dir) == outcome(neighbour)
    assert outcome(demo_dir).startswith("1|")


# -- 4. one Session, two backends -------------------------------------------------------------

def test_the_engine_and_the_ledger_stay_on_the_server(demo_dir: Path) -> None:
    """What a remote session cannot reach: it has no engine here, and writes no ledger entry
    but its PII findings (the local path is the owner's machine, where both are allowed)."""
    from mesh_nb.remote import HttpBackend
    from mesh_nb.session import Session

    local = mesh_nb.open_mesh(demo_dir)
    s = local.bind("customers", purpose="churn-analysis", analyst=ANALYST)
    remote = Session(local, s.products, s.purpose, s.analyst, s.id, s.started,
                     backend=HttpBackend(client=None))  # never called: refused before
    with pytest.raises(MeshError, match="runs on the owner's server"):
        remote.engine
    with pytest.raises(MeshError, match="a notebook adds only its PII scan findings"):
        remote.record("query.released", {"query": "forged"})
    assert [e.kind for e in s.product().ledger.entries()] == ["session.bound"]
    s.end()
