"""The jupyter_server extension's REST API, on a real ``jupyter server`` on 127.0.0.1.

Auth is required, paths outside the mesh root are refused (``..``, absolute paths, symlinks),
filters work, entries carry only allowlisted detail keys and ``verify`` names a tampered entry.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

import mesh_nb
from mesh_nb.ledger.entry import DETAIL_TYPES
from mesh_nb.lab.server import Catalog, Refused, check_name, inside

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ports import free_port  # noqa: E402
from test_lab_comm import _words  # noqa: E402

pytest.importorskip("jupyter_server")


class JupyterServer:
    """``jupyter server`` (or ``jupyter lab``) on 127.0.0.1 with a token and its own config."""

    def __init__(self, home: Path, *, app: str = "jupyter_server", mesh_root: Path | None,
                 root_dir: Path, extra: dict | None = None, env: dict | None = None):
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config_dir = home / "config"
        config_dir.mkdir(parents=True, exist_ok=True)
        config = {
            "ServerApp": {"ip": "127.0.0.1", "port": self.port, "open_browser": False,
                          "allow_root": True,
                          "root_dir": str(root_dir),
                          "jpserver_extensions": {"mesh_nb.lab": True}},
            "IdentityProvider": {"token": self.token},
            "MeshNbApp": {"mesh_root": str(mesh_root) if mesh_root else ""},
        }
        for section, values in (extra or {}).items():
            config.setdefault(section, {}).update(values)
        (config_dir / "jupyter_server_config.json").write_text(json.dumps(config))
        self.env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config_dir),
                    "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
                    "IPYTHONDIR": str(home / "ipython"), **(env or {})}
        self.env.pop("MESH_NB_ROOT", None)
        self.env.update(env or {})
        self.log = (home / "server.log").open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", app], cwd=root_dir, env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.wait()

    def wait(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {Path(self.log.name).read_text()}")
            try:
                if self.get("/api/status")[0] == 200:
                    return
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server did not start: {Path(self.log.name).read_text()}")

    def get(self, path: str, token: str | None = "default", **query) -> tuple[int, dict]:
        query = {k: v for k, v in query.items() if v is not None}
        url = self.url + path + (("?" + urllib.parse.urlencode(query)) if query else "")
        headers = {}
        if token is not None:
            headers["Authorization"] = f"token {self.token if token == 'default' else token}"
        req = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            body = e.read()
            try:
                return e.code, json.loads(body or b"{}")
            except json.JSONDecodeError:
                return e.code, {"text": body.decode("utf-8", "replace")}

    def request(self, method: str, path: str) -> int:
        req = urllib.request.Request(self.url + path, method=method,
                                     headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def stop(self) -> None:
        """Shut the kernels down, then the server."""
        try:
            for kernel in self.get("/api/kernels")[1] or []:
                self.request("DELETE", f"/api/kernels/{kernel['id']}")
        except (urllib.error.URLError, ConnectionError, TypeError, KeyError):
            pass
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _copy_product(src: Path, dst: Path, name: str) -> None:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".mesh_nb", ".owner"))
    contract = dst / "datacontract.yaml"
    text = contract.read_text()
    old = src.name
    text = text.replace(f"\nname: {old}\n", f"\nname: {name}\n").replace(
        f"id: mesh-nb-demo-{old}", f"id: mesh-nb-demo-{name}")
    contract.write_text(text)


@pytest.fixture(scope="module")
def world(demo_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """A mesh root with used ledgers, traps outside it, and a server on it."""
    base = tmp_path_factory.mktemp("labserver")
    root = base / "mesh"
    shutil.copytree(demo_root, root, ignore=shutil.ignore_patterns(".mesh_nb", ".owner"))
    outside = base / "outside"
    outside.mkdir()
    _copy_product(root / "sales", root / "linked", "linked")
    _copy_product(root / "sales", root / "keyless", "keyless")
    _copy_product(root / "sales", outside / "elsewhere", "elsewhere")

    m = mesh_nb.open_mesh(root)
    with m.bind("customers", purpose="churn-analysis", analyst="alice") as s:
        s.query("SELECT region, COUNT(*) AS n FROM customers.accounts GROUP BY region",
                epsilon=0.5)
        s.query("SELECT COUNT(*) AS n FROM customers.accounts WHERE plan = 'pro'",
                epsilon=0.25)
    with m.bind("customers", purpose="churn-analysis", analyst="bob") as s:
        s.query("SELECT plan, COUNT(*) AS n FROM customers.accounts GROUP BY plan",
                epsilon=0.5)
    m.bind("customers", purpose="marketing-research", analyst="carol").end()
    # a product with a ledger but without its owner's key on this server
    m.bind("keyless", purpose="churn-analysis", analyst="x").end()
    m.product("keyless").ledger.close()
    keyless_key = m.product("keyless").owner_dir / "ed25519.key"
    keyless_key.unlink()
    # a product whose ledger folder is a symlink out of the root
    mesh_nb.open_mesh(outside / "elsewhere").bind("elsewhere", purpose="churn-analysis",
                                                  analyst="x").end()
    (root / "linked" / ".mesh_nb").symlink_to(outside / "elsewhere" / ".mesh_nb")
    # a product folder that is a symlink out of the root
    (root / "escape").symlink_to(outside / "elsewhere", target_is_directory=True)
    # a contract file that is a symlink out of the root
    (root / "evil").mkdir()
    (root / "evil" / "datacontract.yaml").symlink_to(outside / "elsewhere" /
                                                     "datacontract.yaml")

    home = base / "home"
    server = JupyterServer(home, mesh_root=root, root_dir=base,
                           env={"MESH_NB_OWNER_HOME": ""})
    yield {"root": root, "server": server, "outside": outside, "keyless_key": keyless_key}
    server.stop()


def test_auth_is_required(world) -> None:
    server = world["server"]
    for path in ("/mesh-nb/api/products", "/mesh-nb/api/products/customers",
                 "/mesh-nb/api/products/customers/ledger",
                 "/mesh-nb/api/products/customers/verify"):
        assert server.get(path, token=None)[0] == 403, path
        assert server.get(path, token="not-the-token")[0] == 403, path
        assert server.get(path)[0] == 200, path


def test_products_and_purposes(world) -> None:
    status, body = world["server"].get("/mesh-nb/api/products")
    assert status == 200 and body["configured"] is True
    names = [p["name"] for p in body["products"]]
    assert names == ["customers", "keyless", "linked", "marketing", "sales"]  # not escape, not evil
    customers = body["products"][0]
    assert customers["ledger"] is True and customers["folder"] == "customers"
    purposes = {p["name"]: p for p in customers["purposes"]}
    assert "churn-analysis" in purposes
    assert purposes["churn-analysis"]["legal_basis"].startswith("GDPR")
    assert purposes["churn-analysis"]["budget"]["epsilon"] == 3.0
    assert any("evil" in p and "outside the mesh root" in p for p in body["problems"])
    status, one = world["server"].get("/mesh-nb/api/products/sales")
    assert status == 200 and one["name"] == "sales" and one["ledger"] is False


def test_ledger_entries_newest_first_with_filters(world) -> None:
    get = world["server"].get
    status, body = get("/mesh-nb/api/products/customers/ledger")
    assert status == 200 and body["product"] == "customers"
    kinds = [e["kind"] for e in body["entries"]]
    assert body["total"] == body["matched"] == len(kinds) == 9
    seqs = [e["seq"] for e in body["entries"]]
    assert seqs == sorted(seqs, reverse=True)
    assert body["verify"]["ok"] is True and body["verify"]["entries"] == 9
    assert body["analysts"] == ["alice", "bob", "carol"]

    _, alice = get("/mesh-nb/api/products/customers/ledger", analyst="alice")
    assert {e["analyst"] for e in alice["entries"]} == {"alice"} and alice["matched"] == 4
    _, marketing = get("/mesh-nb/api/products/customers/ledger", purpose="marketing-research")
    assert [e["kind"] for e in marketing["entries"]] == ["session.ended", "session.bound"]
    _, released = get("/mesh-nb/api/products/customers/ledger", kind="query.released",
                      analyst="alice")
    assert [e["epsilon"] for e in released["entries"]] == [0.25, 0.5]
    assert "?" in released["entries"][0]["details"]["query"]  # literals redacted
    assert "'pro'" not in json.dumps(released)
    _, limited = get("/mesh-nb/api/products/customers/ledger", limit="3", verify="0")
    assert len(limited["entries"]) == 3 and limited["matched"] == 9
    assert limited["verify"] is None
    _, future = get("/mesh-nb/api/products/customers/ledger", since="2999-01-01")
    assert future["entries"] == [] and future["total"] == 9
    _, past = get("/mesh-nb/api/products/customers/ledger", since="2000-01-01T00:00:00Z")
    assert past["matched"] == 9


def test_entries_hold_only_allowlisted_details_and_no_data_value(world) -> None:
    import pandas as pd

    _, body = world["server"].get("/mesh-nb/api/products/customers/ledger")
    for e in body["entries"]:
        assert set(e["details"]) <= set(DETAIL_TYPES)
    raw = pd.read_parquet(world["root"] / "customers" / "accounts.parquet")
    words = _words(body)
    for column in ("customer_id", "full_name", "email", "phone", "postcode"):
        for value in raw[column].astype(str).head(200):
            assert value not in words, column


def test_bad_requests(world) -> None:
    get = world["server"].get
    assert get("/mesh-nb/api/products/nope/ledger")[0] == 404
    assert get("/mesh-nb/api/products/customers/ledger", kind="drop.table")[0] == 400
    assert get("/mesh-nb/api/products/customers/ledger", since="yesterday")[0] == 400
    assert get("/mesh-nb/api/products/customers/ledger", limit="many")[0] == 400
    status, body = get("/mesh-nb/api/products/sales/ledger")
    assert status == 200 and body["entries"] == [] and body["total"] == 0


@pytest.mark.parametrize("name", [
    "..", "..%2F..%2Fetc", "%2Fetc%2Fpasswd", "customers%2F..%2F..%2Foutside",
    "..%5C..%5Cwindows", ".owner", "~root",
])
def test_paths_are_refused(world, name: str) -> None:
    for suffix in ("", "/ledger", "/verify"):
        status, body = world["server"].get(f"/mesh-nb/api/products/{name}{suffix}")
        assert status == 403, (name, suffix, status)
        assert "entries" not in body


def test_symlinks_out_of_the_root_are_refused(world) -> None:
    get = world["server"].get
    status, body = get("/mesh-nb/api/products/linked/ledger")
    assert status == 403 and "outside the mesh root" in body["message"]
    assert get("/mesh-nb/api/products/linked/verify")[0] == 403
    for name in ("escape", "elsewhere", "evil"):
        assert get(f"/mesh-nb/api/products/{name}/ledger")[0] in (403, 404)


def test_owner_key_required_for_the_ledger(world) -> None:
    status, body = world["server"].get("/mesh-nb/api/products/keyless/ledger")
    assert status == 403 and "owner key" in body["message"]
    assert not world["keyless_key"].exists()  # not created


def test_verify_names_the_tampered_entry(world) -> None:
    """Last in the module: it edits the customers ledger."""
    path = world["root"] / "customers" / ".mesh_nb" / "ledger.sqlite"
    with sqlite3.connect(path) as con:
        body = con.execute("SELECT body FROM entries WHERE seq = 4").fetchone()[0]
        edited = json.loads(body)
        edited["epsilon_micro"] = 1
        con.execute("UPDATE entries SET body = ?, epsilon_micro = 1 WHERE seq = 4",
                    (json.dumps(edited, sort_keys=True, separators=(",", ":")),))
    status, body = world["server"].get("/mesh-nb/api/products/customers/verify")
    assert status == 200 and body["ok"] is False and body["seq"] == 4
    assert "tampered at entry 4" in body["message"]
    _, ledger = world["server"].get("/mesh-nb/api/products/customers/ledger")
    assert ledger["verify"]["ok"] is False


def test_no_mesh_root_lists_nothing(tmp_path: Path) -> None:
    server = JupyterServer(tmp_path / "home", mesh_root=None, root_dir=tmp_path)
    try:
        status, body = server.get("/mesh-nb/api/products")
        assert status == 200 and body == {"root": None, "configured": False, "products": [],
                                          "problems": []}
        assert server.get("/mesh-nb/api/products/customers/ledger")[0] == 404
    finally:
        server.stop()


def test_name_and_containment_checks(tmp_path: Path) -> None:
    for bad in ("..", "../x", "/etc", "a/b", "a\\b", ".hidden", "~", "x\x00"):
        with pytest.raises(Refused):
            check_name(bad)
    assert check_name("customers") == "customers"
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "in").mkdir()
    (tmp_path / "root" / "out").symlink_to(tmp_path)
    assert inside(tmp_path / "root", tmp_path / "root" / "in")
    assert not inside(tmp_path / "root", tmp_path / "root" / "out")
    assert not inside(tmp_path / "root", tmp_path / "root" / ".." / "root2")


def test_the_owners_api_reads_a_ledger_kept_on_postgres(tmp_path: Path, pg_url: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A product whose owner keeps the ledger on PostgreSQL (owner_dir/ledger.url): the
    catalog opens that ledger, not a SQLite file that does not exist."""
    monkeypatch.delenv("MESH_NB_LEDGER_URL", raising=False)
    mesh = mesh_nb.demo_mesh(tmp_path / "mesh")
    product = mesh.product("customers")
    product.owner_dir.mkdir(parents=True, exist_ok=True)
    (product.owner_dir / "ledger.url").write_text(pg_url + "\n")
    session = mesh_nb.open_mesh(mesh.root).bind("customers", purpose="churn-analysis",
                                                 analyst="alice")
    session.query("SELECT COUNT(*) AS n FROM customers.accounts", epsilon=0.1)
    session.end()
    catalog = Catalog(mesh.root)
    try:
        described = {p["name"]: p for p in (catalog.describe(p) for p in
                                            catalog.products().values())}
        assert described["customers"]["ledger"] is True
        ledger = catalog.ledger(catalog.product("customers"))
        assert ledger is not None and ledger.path is None  # the server ledger, no file
        assert {e.kind for e in ledger.entries()} >= {"session.bound", "query.released"}
        assert ledger.verify().entries == len(ledger)  # raises LedgerTampered if not
        assert not (product.folder / ".mesh_nb" / "ledger.sqlite").exists()
    finally:
        catalog.close()
