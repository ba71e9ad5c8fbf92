"""The lab's state comm: the state built from the magics, the publisher's protocol with fake
comms, and the whole round trip through a real ipykernel (comm_open, comm_info_request after a
"reload", request_state)."""

from __future__ import annotations

import json
import queue
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import mesh_nb
from mesh_nb.lab import comm as lab_comm
from mesh_nb.lab.comm import TARGET, StatePublisher, build_state
from mesh_nb.pii.alerts import Alert

GROUPED = ("SELECT region, COUNT(*) AS n FROM customers.accounts WHERE plan = 'pro' "
           "GROUP BY region")
STATE_KEYS = {"type", "version", "bound", "products", "purpose", "description", "legal_basis",
              "access", "analyst", "session", "budgets", "releases", "alerts"}


def _words(obj, skip=("hash", "session", "release_id", "release", "query_hash", "ts")) -> set:
    """Every word of every string in a JSON value, ids, hashes and timestamps left out."""
    import re

    out: set[str] = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k not in skip:
                out |= _words(v, skip)
    elif isinstance(obj, list):
        for v in obj:
            out |= _words(v, skip)
    elif obj is not None:
        text = str(obj)
        out.add(text)
        out |= set(re.findall(r"[\w.@+-]+", text))
    return out


def _magics(session=None, alerts=()):
    return SimpleNamespace(session=session, autoscan=SimpleNamespace(alerts=list(alerts)))


def _alert(frame="df", column="email", entity="EMAIL_ADDRESS", problem="not allowed"):
    return Alert(frame, column, entity, 0.98, 0.9, "public", problem, "drop the column")


@pytest.fixture
def session(demo_dir: Path):
    s = mesh_nb.open_mesh(demo_dir).bind("customers", purpose="churn-analysis",
                                         analyst="alice")
    yield s
    s.end()


# -- the state ----------------------------------------------------------------------------------


def test_state_when_nothing_is_bound() -> None:
    for magics in (None, _magics(), SimpleNamespace(bound=lambda: None, autoscan=None)):
        state = build_state(magics)
        assert set(state) == STATE_KEYS
        assert state["type"] == "state" and state["bound"] is False
        assert state["products"] == [] and state["budgets"] == [] and state["releases"] == []
    json.dumps(build_state(None))


def test_state_of_a_bound_session(session) -> None:
    state = build_state(_magics(session))
    assert set(state) == STATE_KEYS
    assert state["bound"] is True
    assert state["products"] == ["customers"] and state["purpose"] == "churn-analysis"
    assert state["analyst"] == "alice" and state["access"] == "dp-aggregate"
    assert state["session"] == session.id
    spec = session.purpose_of()
    assert state["description"] == spec.description.strip()
    assert state["legal_basis"] == spec.legal_basis and "GDPR" in state["legal_basis"]
    (budget,) = state["budgets"]
    assert budget == {"product": "customers", "epsilon_total": 3.0, "epsilon_spent": 0.0,
                      "epsilon_remaining": 3.0, "scope": "per-analyst"}
    assert state["releases"] == []


def test_releases_newest_first_with_redacted_sql_and_the_budget_follows(session) -> None:
    first = session.query(GROUPED, epsilon=0.5)
    second = session.query("SELECT COUNT(*) AS n FROM customers.accounts", epsilon=0.25)
    again = session.query(GROUPED, epsilon=0.5)  # cached: spends nothing
    state = build_state(_magics(session))
    ids = [r["release_id"] for r in state["releases"]]
    assert ids == [again.release_id, second.release_id, first.release_id]
    newest, middle, oldest = state["releases"]
    assert newest["cached"] is True and newest["epsilon"] == 0.0
    assert middle["epsilon"] == 0.25 and oldest["epsilon"] == 0.5
    assert oldest["products"] == ["customers"] and oldest["purpose"] == "churn-analysis"
    assert "'pro'" not in oldest["sql"] and "?" in oldest["sql"]  # literals redacted
    assert oldest["sql"] == first.sql
    assert state["budgets"][0]["epsilon_remaining"] == pytest.approx(2.25)
    assert len(build_state(_magics(session), max_releases=2)["releases"]) == 2


def test_state_never_holds_a_data_value(session, demo_dir: Path) -> None:
    import pandas as pd

    raw = pd.read_parquet(demo_dir / "customers" / "accounts.parquet")
    session.query(GROUPED, epsilon=0.5)
    state = build_state(_magics(session, [_alert()]))
    words = _words(state)
    for column in ("customer_id", "full_name", "email", "phone", "postcode"):
        for value in raw[column].astype(str).head(200):
            assert value not in words, column
    assert "@" not in json.dumps(state)  # no e-mail address anywhere


def test_alerts_are_deduplicated_newest_first_and_need_no_binding() -> None:
    alerts = [_alert(column="email"), _alert(column="phone", entity="PHONE_NUMBER"),
              _alert(column="email")]
    state = build_state(_magics(None, alerts))
    assert state["bound"] is False
    assert [(a["column"], a["entity"]) for a in state["alerts"]] == [
        ("email", "EMAIL_ADDRESS"), ("phone", "PHONE_NUMBER")]
    assert set(state["alerts"][0]) == {"frame", "column", "entity", "problem", "fix"}
    assert len(build_state(_magics(None, alerts), max_alerts=1)["alerts"]) == 1


def test_ended_session_is_not_bound(session) -> None:
    magics = _magics(session)
    session.end()
    assert build_state(magics)["bound"] is False


# -- the publisher with fake comms --------------------------------------------------------------


class FakeComm:
    def __init__(self, comm_id: str, target_name: str, data=None, metadata=None):
        self.comm_id, self.target_name = comm_id, target_name
        self.opened_with, self.sent, self.closed = data, [], False
        self._on_msg = self._on_close = None

    def on_msg(self, fn):
        self._on_msg = fn

    def on_close(self, fn):
        self._on_close = fn

    def send(self, data):
        if self.closed:
            raise RuntimeError("closed")
        self.sent.append(json.loads(json.dumps(data)))

    def close(self):
        self.closed = True

    # what the frontend does
    def frontend_sends(self, data):
        self._on_msg({"content": {"comm_id": self.comm_id, "data": data}})

    def frontend_closes(self):
        self.closed = True
        self._on_close({"content": {"comm_id": self.comm_id, "data": {}}})


class FakeManager:
    def __init__(self):
        self.targets = {}

    def register_target(self, name, fn):
        self.targets[name] = fn

    def unregister_target(self, name, fn):
        self.targets.pop(name, None)


class Factory:
    def __init__(self):
        self.made: list[FakeComm] = []

    def __call__(self, target_name, data=None, metadata=None):
        c = FakeComm(f"c{len(self.made)}", target_name, data, metadata)
        self.made.append(c)
        return c


def test_publisher_opens_then_sends_only_changes(session) -> None:
    factory, manager = Factory(), FakeManager()
    magics = _magics(None)
    pub = StatePublisher(magics, create_comm=factory, comm_manager=manager)
    pub.register_target()
    assert TARGET in manager.targets
    pub.open()
    (c,) = factory.made
    assert c.target_name == TARGET and c.opened_with["bound"] is False
    assert pub.publish() is False  # unchanged: nothing sent
    magics.session = session
    assert pub.publish() is True
    assert c.sent[-1]["bound"] is True and c.sent[-1]["purpose"] == "churn-analysis"
    session.query(GROUPED, epsilon=0.5)
    pub.post_run_cell()
    assert c.sent[-1]["budgets"][0]["epsilon_remaining"] == pytest.approx(2.5)
    assert c.sent[-1]["releases"][0]["epsilon"] == 0.5
    n = len(c.sent)
    pub.post_run_cell()
    assert len(c.sent) == n
    assert pub.publish(force=True) and len(c.sent) == n + 1


def test_request_state_on_a_reattached_or_frontend_opened_comm(session) -> None:
    factory, manager = Factory(), FakeManager()
    pub = StatePublisher(_magics(session), create_comm=factory, comm_manager=manager)
    pub.register_target()
    pub.open()
    (c,) = factory.made
    c.frontend_sends({"type": "request_state"})  # the page was reloaded and re-attached
    assert c.sent[-1]["bound"] is True
    c.frontend_sends({"type": "something-else"})  # ignored
    assert len(c.sent) == 1
    opened = FakeComm("front", TARGET)  # a comm the frontend opens itself
    manager.targets[TARGET](opened, {"content": {"comm_id": "front",
                                                 "data": {"type": "request_state"}}})
    assert opened.sent[-1]["session"] == session.id
    assert pub.publish(force=True)
    assert opened.sent[-1] == c.sent[-1]


def test_a_closed_comm_is_forgotten_and_a_new_one_opened(session) -> None:
    factory = Factory()
    magics = _magics(None)
    pub = StatePublisher(magics, create_comm=factory, comm_manager=FakeManager())
    pub.open()
    factory.made[0].frontend_closes()  # a frontend without the extension closed it
    assert pub.comms == []
    magics.session = session
    assert pub.publish() is True
    assert len(factory.made) == 2 and factory.made[1].opened_with["bound"] is True


def test_failures_never_reach_the_cell(session, caplog) -> None:
    class Broken:
        session = None

        def bound(self):
            raise RuntimeError("boom")

    pub = StatePublisher(Broken(), create_comm=Factory(), comm_manager=FakeManager())
    assert pub.publish() is False
    assert "publishing the state" in caplog.text
    pub.handle_msg(FakeComm("x", TARGET), {"content": {"data": {"type": "request_state"}}})


def test_close_unregisters_and_closes() -> None:
    factory, manager = Factory(), FakeManager()
    pub = StatePublisher(_magics(), create_comm=factory, comm_manager=manager)
    pub.register_target()
    pub.open()
    pub.close()
    assert factory.made[0].closed and TARGET not in manager.targets
    assert pub.publish(force=True) is False
    pub.close()


def test_attach_in_a_plain_shell_does_not_publish(demo_dir: Path) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    hooks = list(ip.events.callbacks["post_run_cell"])
    ip.run_line_magic("load_ext", "mesh_nb")
    try:
        pub = lab_comm.attach(ip)
        assert pub is not None and pub.enabled is False
        assert pub.post_run_cell not in ip.events.callbacks["post_run_cell"]
        assert len(ip.events.callbacks["post_run_cell"]) <= len(hooks) + 1  # autoscan's only
        assert lab_comm.attach(ip) is pub  # idempotent
        ip.run_line_magic("mesh_bind", f"customers --purpose churn-analysis --as a "
                                       f"--mesh {demo_dir}")
        ip.run_cell("1 + 1")
        assert pub.sent == 0 and pub.state()["bound"] is True
        lab_comm.detach(ip)
        assert pub.closed
    finally:
        lab_comm.detach(ip)
        ip.run_line_magic("unload_ext", "mesh_nb")


# -- a real kernel ------------------------------------------------------------------------------


class KernelClient:
    """A real ipykernel and the iopub/shell plumbing a frontend does."""

    def __init__(self, cwd: Path):
        from jupyter_client.manager import start_new_kernel

        self.km, self.kc = start_new_kernel(kernel_name="python3", cwd=str(cwd))

    def execute(self, code: str, timeout: float = 60) -> list[dict]:
        """Run ``code``; return the iopub messages it caused (errors raise)."""
        msg_id = self.kc.execute(code)
        reply = self.kc.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=timeout)
        if reply["content"]["status"] != "ok":
            raise AssertionError(f"{code!r} failed: {reply['content'].get('evalue')}")
        return self.drain(until_idle_of=msg_id)

    def drain(self, until_idle_of: str | None = None, timeout: float = 30) -> list[dict]:
        out, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.kc.get_iopub_msg(timeout=0.5)
            except queue.Empty:
                if until_idle_of is None:
                    return out
                continue
            out.append(msg)
            if (until_idle_of and msg["msg_type"] == "status"
                    and msg["parent_header"].get("msg_id") == until_idle_of
                    and msg["content"]["execution_state"] == "idle"):
                return out
        return out

    def wait_comm_msg(self, comm_id: str, timeout: float = 30) -> dict:
        """The data of the next comm_msg the kernel sends on ``comm_id``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.kc.get_iopub_msg(timeout=0.5)
            except queue.Empty:
                continue
            if msg["msg_type"] == "comm_msg" and msg["content"]["comm_id"] == comm_id:
                return msg["content"]["data"]
        raise AssertionError(f"no comm_msg on {comm_id} within {timeout} s")

    def shell(self, msg_type: str, content: dict, timeout: float = 30) -> dict:
        msg = self.kc.session.msg(msg_type, content)
        self.kc.shell_channel.send(msg)
        reply = self.kc.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
            reply = self.kc.get_shell_msg(timeout=timeout)
        return reply

    def send(self, msg_type: str, content: dict) -> None:
        """A message the kernel answers on iopub only (comm_open, comm_msg)."""
        self.kc.shell_channel.send(self.kc.session.msg(msg_type, content))

    def stop(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def _comm_data(msgs: list[dict], kind: str) -> list[dict]:
    return [m["content"] for m in msgs if m["msg_type"] == kind
            and (kind != "comm_open" or m["content"]["target_name"] == TARGET)]


@pytest.mark.slow
def test_round_trip_through_a_real_kernel(demo_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("ipykernel")
    k = KernelClient(tmp_path)
    try:
        msgs = k.execute("%load_ext mesh_nb\n%load_ext mesh_nb.lab")
        (opened,) = _comm_data(msgs, "comm_open")
        comm_id = opened["comm_id"]
        assert opened["data"]["type"] == "state" and opened["data"]["bound"] is False
        msgs = k.execute(f"%mesh_bind customers --purpose churn-analysis --as alice "
                         f"--mesh {demo_dir}")
        states = [c["data"] for c in _comm_data(msgs, "comm_msg") if c["comm_id"] == comm_id]
        assert states and states[-1]["bound"] is True
        assert states[-1]["budgets"][0]["epsilon_remaining"] == 3.0
        msgs = k.execute(f"%%mesh_query --epsilon 0.5\n{GROUPED}")
        states = [c["data"] for c in _comm_data(msgs, "comm_msg")]
        assert states[-1]["budgets"][0]["epsilon_remaining"] == 2.5
        assert states[-1]["releases"][0]["epsilon"] == 0.5
        # a page reload: the frontend finds the open comm and asks for the state
        info = k.shell("comm_info_request", {"target_name": TARGET})
        assert info["content"]["comms"] == {comm_id: {"target_name": TARGET}}
        k.send("comm_msg", {"comm_id": comm_id, "data": {"type": "request_state"}})
        assert k.wait_comm_msg(comm_id)["releases"][0]["epsilon"] == 0.5
        # a comm the frontend opens itself is answered too
        k.send("comm_open", {"comm_id": "frontend-1", "target_name": TARGET,
                              "data": {"type": "request_state"}})
        assert k.wait_comm_msg("frontend-1")["bound"] is True
    finally:
        k.stop()
