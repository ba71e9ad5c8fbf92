"""A hostile analyst's text and parameters against a real ``mesh-nb serve``: nothing forges a
log line or a terminal line, nothing bad gets a 500, no error names a path of the server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from live_server import LiveServer, copy_demo, demo_server
from mesh_nb import MeshError
from mesh_nb.cli import main as cli
from mesh_nb.text import escape, without_paths

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ mesh_nb\.server ")


@pytest.fixture(scope="module")
def server(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from demo_server(demo_root, tmp_path_factory.mktemp("hostile"))


def _client(server: LiveServer, name: str) -> httpx.Client:
    return server.client(server.token(name))


def test_escape_shows_every_control_character() -> None:
    hostile = "ok\n2026-01-01 00:00:00,000 INFO forged\r\x1b[32mapproved\x85\u2028\u202e\x00"
    out = escape(hostile, 1000)
    assert "\n" not in out and "\r" not in out and "\x1b" not in out and "\x00" not in out
    assert "\u2028" not in out and "\u202e" not in out and "\x85" not in out
    assert "\\n" in out and "\\x1b" in out and "\\u2028" in out
    assert len(escape("x" * 500, 100)) == 100


def test_paths_leave_no_trace() -> None:
    assert without_paths("no product in the mesh at /srv/m (x)", "/srv/m") == \
        "no product in the mesh at the mesh (x)"
    assert without_paths("/srv/m/sales/datacontract.yaml:3 and /etc/passwd", "/srv/m") == \
        "sales/datacontract.yaml:3 and passwd"


def test_a_forged_log_line_cannot_be_written(server: LiveServer) -> None:
    with _client(server, "mallory") as c:
        for path in ("/whoami%0A2026-01-01%2000:00:00,000%20INFO%20mesh_nb.server%20forged",
                     "/products/x%0D%0Aforged", "/products/%1b%5B2Jclear"):
            assert c.get(path).status_code in (404, 405)
    lines = server.log.read_text(encoding="utf-8").splitlines()
    assert lines and all(LOG_LINE.match(line) for line in lines), lines[-5:]
    assert any("\\n2026-01-01" in line for line in lines)  # shown, escaped
    assert not any("\x1b" in line for line in lines)


def test_requests_cli_prints_one_line_per_request(server: LiveServer, capsys) -> None:
    with _client(server, "trudy") as c:
        r = c.post("/requests", json={"products": ["customers"], "purpose": "support-operations",
                                      "reason": "fine\n5a5a  2026  approved  trudy\x1b[32m"
                                                "\u2028ok"})
        assert r.status_code == 200, r.text
    assert cli(["requests", "--mesh", str(server.mesh_dir)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u2028" not in out
    mine = [line for line in out.splitlines() if "trudy" in line]
    assert len(mine) == 1 and "\\n5a5a" in mine[0]


def test_pii_reports_are_structured_and_capped(server: LiveServer, capsys) -> None:
    with _client(server, "eve") as c:
        sid = c.post("/sessions", json={"products": ["customers"],
                                        "purpose": "churn-analysis"}).json()["id"]
        good = {"frame": "df", "columns": ["email"], "entity_types": {"EMAIL_ADDRESS": 1},
                "rows": 10}
        for bad in ({**good, "frame": "df\n2026 forged"},
                    {**good, "columns": ["c"] * 5000},
                    {**good, "entity_types": {"jane@example.org": 1}},
                    {**good, "entity_types": {"EMAIL_ADDRESS": -1}},
                    {**good, "frame": "x" * 300},
                    {**good, "columns": ["a\x1b[2J"]},
                    {**good, "value": "jane@example.org"}):
            r = c.post(f"/sessions/{sid}/pii", json=bad)
            assert r.status_code == 422, (bad, r.text)
            assert "jane@example.org" not in r.text
        codes = [c.post(f"/sessions/{sid}/pii", json=good).status_code for _ in range(101)]
        assert codes == [204] * 100 + [429]
    assert cli(["ledger", "show", "customers", "--mesh", str(server.mesh_dir),
                "--kind", "pii.detected"]) == 0
    shown = capsys.readouterr().out
    assert shown.count("frame=df") == 100 and "forged" not in shown


@pytest.mark.parametrize("path", ["/products/customers/entries?since=not-a-date",
                                  "/products/customers/entries?kind=" + "k" * 500,
                                  "/products/customers/entries?analyst=bob"])
def test_bad_parameters_are_422(server: LiveServer, path: str) -> None:
    with _client(server, "oscar") as c:
        r = c.get(path)
        assert r.status_code == 422 and r.json()["error"]["type"] == "request", r.text


def test_extremes_and_nesting_are_never_500(server: LiveServer) -> None:
    with _client(server, "peggy") as c:
        sid = c.post("/sessions", json={"products": ["customers"],
                                        "purpose": "churn-analysis"}).json()["id"]
        sql = "SELECT COUNT(*) AS n FROM customers.accounts"
        for body in ({"sql": sql, "epsilon": 1e300}, {"sql": sql, "delta": 1e300},
                     {"sql": sql, "epsilon": 0.1, "delta": 2}):
            r = c.post(f"/sessions/{sid}/query", json=body)
            assert r.status_code == 422, r.text
        deep = "[" * 20000 + "]" * 20000
        r = c.post(f"/sessions/{sid}/query", content=deep,
                   headers={"content-type": "application/json"})
        assert r.status_code in (400, 413, 422), r.text
        assert c.get("/whoami").status_code == 200  # and the server is fine


@pytest.mark.parametrize("size", [17 * 1024, 100 * 1024])
def test_headers_past_16_kib_are_431(server: LiveServer, size: int) -> None:
    with _client(server, "heidi") as c:
        r = c.get("/whoami", headers={"X-Filler": "a" * size})
        assert r.status_code == 431 and r.json()["error"]["type"] == "request", r.text
        assert c.get("/whoami", headers={"X-Filler": "a" * 8000}).status_code == 200


def test_errors_name_no_server_path(server: LiveServer) -> None:
    root = str(server.mesh_dir.resolve())
    with _client(server, "victor") as c:
        r = c.get("/products/nope/entries")
        assert r.status_code == 404 and root not in r.text and "/tmp/" not in r.text
        r = c.post("/sessions", json={"products": ["nope"], "purpose": "churn-analysis"})
        assert r.status_code == 404 and root not in r.text, r.text
        # what was named and is not there is a 404 (errors.NotFound), anything else a 400
        assert c.get("/requests/r-nope").status_code == 404
        assert c.get("/sessions/0123456789abcdef/budget").status_code == 404
        r = c.post("/requests", json={"products": ["customers"], "purpose": "churn-analysis",
                                      "reason": "no approval needed"})
        assert r.status_code == 400 and "needs no approval" in r.text, r.text


@pytest.mark.parametrize("url", ["http://mesh.example.org:8750", "HTTP://mesh.example.org",
                                 "Http://10.0.0.7:8750"])
def test_plain_http_to_another_machine_is_refused(url: str) -> None:
    from mesh_nb import MeshError, open_mesh

    with pytest.raises(MeshError, match="plain http .* allow_insecure_http=True"):
        open_mesh(url, token="mnb_secret")


def test_loopback_http_and_any_case_scheme_work(server: LiveServer) -> None:
    from mesh_nb import open_mesh

    token = server.token("walter")
    for url in (server.url, server.url.replace("http://", "HTTP://"),
                server.url.replace("127.0.0.1", "localhost")):
        assert open_mesh(url, token=token).analyst == "walter"


def test_files_are_the_owners_only_whatever_the_umask(demo_root: Path, tmp_path: Path) -> None:
    import os
    import stat

    old = os.umask(0o022)
    try:
        server = LiveServer.start(copy_demo(demo_root, tmp_path / "mesh"), tmp_path / "s.log")
        try:
            with _client(server, "ursula") as c:
                sid = c.post("/sessions", json={"products": ["customers"],
                                                "purpose": "churn-analysis"}).json()["id"]
                r = c.post(f"/sessions/{sid}/query", json={
                    "sql": "SELECT COUNT(*) AS n FROM customers.accounts", "epsilon": 0.1})
                assert r.status_code == 200, r.text
        finally:
            server.stop()
    finally:
        os.umask(old)
    mesh = tmp_path / "mesh"
    written = [p for top in (mesh / "customers" / ".mesh_nb", mesh / ".server")
               for p in (top, *top.rglob("*"))]
    assert any(p.name == "ledger.sqlite" for p in written)
    assert any(p.name == "releases.sqlite" for p in written)
    for p in written:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (0o700 if p.is_dir() else 0o600), (p.name, oct(mode))
    assert stat.S_IMODE((tmp_path / "s.log").stat().st_mode) == 0o600


def test_the_client_fits_a_scan_report_to_the_wire_and_stops_at_the_cap(
        server: LiveServer) -> None:
    """Autoscan writes through ``Session.record`` (the HTTP backend): an odd frame or column name, or an
    entity type the scanner spelled its own way, never fails the analyst's cell, and past the
    server's cap the reports are dropped (the owner's ledger holds exactly the cap)."""
    import mesh_nb
    from mesh_nb.server import wire

    s = mesh_nb.open_mesh(server.url, token=server.token("judy")).bind(
        "customers", purpose="churn-analysis")
    odd = {"frame": "df\n2026 forged", "columns": ["e\x1b[2Jmail", "ok", "y" * 200],
           "entity_types": {"EMAIL_ADDRESS": 1, "custom type": 2, "lower": 1}, "rows": 3}
    for _ in range(wire.MAX_PII_REPORTS + 5):
        s.record("pii.detected", odd)
    found = mesh_nb.open_mesh(server.mesh_dir).ledger("customers").entries(
        kind="pii.detected", session=s.id)
    assert len(found) == wire.MAX_PII_REPORTS
    assert {k: found[0].details[k] for k in odd} == {
        "frame": "frame", "columns": ["column_0", "ok", "column_2"],
        "entity_types": {"EMAIL_ADDRESS": 1, "OTHER": 3}, "rows": 3}
    with pytest.raises(MeshError, match="only its PII scan findings"):
        s.record("query.released", {"rows": 1})


def test_a_report_past_the_wire_limits_is_merged_not_refused() -> None:
    from mesh_nb.server import wire

    r = wire.pii_report("df", [f"c{i}" for i in range(600)],
                        {f"T{i}": i for i in range(100)}, 10**15)
    assert len(r.columns) == 512 and len(r.entity_types) == 64 and r.rows == 10**12
    assert sum(r.entity_types.values()) == sum(range(100))  # nothing lost, only merged
    assert r.entity_types["T99"] == 99 and "T0" not in r.entity_types
