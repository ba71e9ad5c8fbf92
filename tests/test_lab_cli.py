"""``mesh-nb lab``: the real command starts a real JupyterLab on a working copy of the example
notebooks, with the mesh_nb server extension on the demo mesh and the lab extension loaded.

The server runs on 127.0.0.1 with a token, with its own Jupyter runtime and config folders; the
test talks to it over its REST API (the browser test drives the extension itself).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mesh_nb.lab import installed_labextension, labextension_built
from mesh_nb.notebooks import notebooks_dir, workshop_folder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ports import free_port  # noqa: E402

pytestmark = pytest.mark.slow
jupyterlab = pytest.importorskip("jupyterlab", reason="JupyterLab is not installed ([lab] extra)")


def _get(url: str, token: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("mesh-nb-lab")
    token, port = secrets.token_hex(16), free_port()
    env = {**os.environ, "HOME": str(base / "home"), "JUPYTER_CONFIG_DIR": str(base / "config"),
           "JUPYTER_RUNTIME_DIR": str(base / "runtime"), "IPYTHONDIR": str(base / "ipython")}
    env.pop("MESH_NB_ROOT", None)
    env.pop("JUPYTER_CONFIG_PATH", None)
    log = (base / "lab.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mesh_nb.cli", "lab", "--dir", str(base / "mesh"),
         "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1", "--allow-root",
         f"--IdentityProvider.token={token}"],
        cwd=base, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # a readiness wait: generous for a busy 2-core machine
    while True:
        if proc.poll() is not None:
            pytest.fail(f"mesh-nb lab exited: {(base / 'lab.log').read_text()}")
        try:
            if _get(url + "/api/status", token)[0] == 200:
                break
        except (urllib.error.URLError, ConnectionError):
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"mesh-nb lab did not answer GET {url}/api/status with 200 within "
                        f"300 s; its log:\n{(base / 'lab.log').read_text()}")
        time.sleep(0.3)
    yield {"url": url, "token": token, "mesh": base / "mesh", "log": base / "lab.log"}
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_lab_opens_a_working_copy_of_the_example_notebooks(lab):
    status, body = _get(lab["url"] + "/api/contents/", lab["token"])
    assert status == 200
    names = sorted(item["name"] for item in json.loads(body)["content"])
    expected = sorted(p.name for p in notebooks_dir().glob("*.ipynb"))
    assert len(expected) == 5 and names == expected
    assert (lab["mesh"] / "notebooks").is_dir()
    assert "mesh-nb: JupyterLab on" in lab["log"].read_text()


def test_lab_serves_the_owners_api_on_the_demo_mesh(lab):
    status, body = _get(lab["url"] + "/mesh-nb/api/products", lab["token"])
    assert status == 200, body
    names = {p["name"] for p in json.loads(body)["products"]}
    assert {"customers", "sales"} <= names
    assert _get(lab["url"] + "/mesh-nb/api/products", "wrong-token")[0] in (401, 403)


def test_lab_loads_the_mesh_nb_lab_extension(lab):
    if not labextension_built() and installed_labextension() is None:
        pytest.skip("the lab extension is not built (pip install -e . builds it)")
    status, body = _get(lab["url"] + "/lab", lab["token"])
    assert status == 200
    config = re.search(rb'id="jupyter-config-data"[^>]*>(.*?)</script>', body, re.S)
    assert config, "no page config in /lab"
    federated = json.loads(config.group(1))["federated_extensions"]
    assert "mesh-nb" in {e["name"] for e in federated}


def test_a_notebook_already_in_the_folder_is_kept(tmp_path: Path):
    folder = workshop_folder(tmp_path)
    first = sorted(folder.glob("*.ipynb"))[0]
    first.write_text('{"edited": true}')
    (folder / sorted(notebooks_dir().glob("*.ipynb"))[1].name).unlink()
    again = workshop_folder(tmp_path)
    assert first.read_text() == '{"edited": true}'
    assert len(list(again.glob("*.ipynb"))) == 5


def test_other_commands_still_refuse_unknown_arguments(capsys):
    from mesh_nb.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["check", "contract.yaml", "--no-browser"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --no-browser" in capsys.readouterr().err
