"""JupyterLab with mesh_nb's extension in a real headless Chromium (Debian's /usr/bin/chromium,
driven by Playwright for Python; no browser is downloaded).

A lab on 127.0.0.1 with a token opens a notebook, runs ``%load_ext mesh_nb`` and ``%mesh_bind``
on the demo mesh, and the status bar names the binding and its budget; a ``%%mesh_query``
moves the budget and renders with the release MIME renderer; the Mesh panel lists the release
and the owner's ledger; after a page reload the status bar re-attaches to the kernel's comm;
a kernel restart clears it. Screenshots go to the test's output folder (and, with
``MESH_NB_UPDATE_SCREENSHOT=1``, to docs/img/lab.png).

Skips, saying why, without chromium, Playwright, JupyterLab or the built extension.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

import mesh_nb
from mesh_nb.lab import (LABEXTENSION_DIR, LABEXTENSION_NAME, installed_labextension,
                         labextension_built)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_lab_server import JupyterServer  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("MESH_NB_CHROMIUM", "/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[1]
QUERY = "SELECT region, COUNT(*) AS n FROM customers.accounts GROUP BY region"
TIMEOUT = 90_000  # ms: a cold kernel start plus the first DuckDB query on 2 cores


def _requirements() -> str | None:
    """Why the browser test cannot run here, or None."""
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (Python) is not installed"
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        return "jupyterlab is not installed"
    import inspect

    import mesh_nb.magics

    if "lab.comm" not in inspect.getsource(mesh_nb.magics.load):
        return "mesh_nb.magics does not attach the lab's state comm (mesh_nb.lab.comm) yet"
    if not labextension_built() and installed_labextension() is None:
        return (f"the lab extension is not built ({LABEXTENSION_DIR} is missing): run "
                "`jlpm install && jlpm build` in extension/ or `pip install -e .`")
    return None


def _notebook(path: Path, mesh: Path) -> None:
    cells = ["%load_ext mesh_nb",
             f"%mesh_bind customers --purpose churn-analysis --as alice --mesh {mesh}",
             f"%%mesh_query --epsilon 0.5\n{QUERY}",
             "import pandas as pd\n"
             "contacts = pd.DataFrame({'email': [f'person{i}@example.org' for i in range(40)],"
             " 'visits': range(40)})"]
    path.write_text(json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "id": f"c{i}",
                   "metadata": {}, "outputs": [], "source": src}
                  for i, src in enumerate(cells)],
        "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)",
                                    "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5}))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    reason = _requirements()
    if reason:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("lab")
    work = base / "work"
    work.mkdir()
    mesh = mesh_nb.demo_mesh(work / "mesh").root
    _notebook(work / "mesh.ipynb", mesh)
    # the package's own build, ahead of any older copy installed in share/jupyter
    extra = []
    if labextension_built():
        extra_dir = base / "labextensions"
        extra_dir.mkdir()
        (extra_dir / LABEXTENSION_NAME).symlink_to(LABEXTENSION_DIR, target_is_directory=True)
        extra = [str(extra_dir)]
    settings = base / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    server = JupyterServer(
        base / "home", app="jupyterlab", mesh_root=mesh, root_dir=work,
        extra={"LabApp": {"extra_labextensions_path": extra,
                          "user_settings_dir": str(base / "user-settings"),
                          "workspaces_dir": str(base / "workspaces")}},
        env={"MESH_NB_ROOT": str(mesh), "MESH_ANALYST": "alice"})
    yield {"server": server, "work": work, "mesh": mesh}
    server.stop()


@pytest.fixture
def page(lab, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu",
                                          "--disable-dev-shm-usage"])
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        pg = context.new_page()
        pg.set_default_timeout(TIMEOUT)
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.errors = errors
        yield pg
        pg.screenshot(path=str(tmp_path / "last.png"))
        context.close()
        browser.close()


def _run_cell(page, index: int) -> None:
    """Run one cell as a person does (click it, Shift+Enter) and wait until it ran, error-free."""
    from playwright.sync_api import expect

    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    expect(cell.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]"),
                                                         timeout=TIMEOUT)
    errors = cell.locator(".jp-OutputArea-output[data-mime-type*='error'], "
                          ".jp-OutputArea-output[data-mime-type*='stderr']")
    assert errors.count() == 0, errors.all_inner_texts()


def _wait_kernel_idle(page) -> None:
    """The kernel started and the notebook's connection to it is up."""
    from playwright.sync_api import expect

    expect(page.locator(".jp-StatusBar-Item", has_text=re.compile(r"\| Idle\s*$"))
           ).to_have_count(1, timeout=TIMEOUT)


def _status(page):
    return page.locator("#mesh-nb-status")


def _wait_status(page, text: str) -> None:
    from playwright.sync_api import expect

    expect(_status(page)).to_have_text(text, timeout=TIMEOUT)


def test_status_bar_panel_renderer_reload_restart(lab, page, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    server = lab["server"]
    page.goto(f"{server.url}/lab/tree/mesh.ipynb?token={server.token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=TIMEOUT)
    _wait_kernel_idle(page)
    _wait_status(page, "mesh: not bound")

    _run_cell(page, 0)  # %load_ext mesh_nb
    _wait_status(page, "mesh: not bound")
    _run_cell(page, 1)  # %mesh_bind
    _wait_status(page, "customers · churn-analysis · ε 3.0 of 3.0 left")
    _run_cell(page, 2)  # %%mesh_query --epsilon 0.5
    _wait_status(page, "customers · churn-analysis · ε 2.5 of 3.0 left")

    # the release renders with the mesh MIME renderer: values ± half-widths, what was spent
    release = page.locator(".jp-Notebook .jp-MeshRelease")
    expect(release).to_have_count(1, timeout=TIMEOUT)
    expect(release.locator(".jp-MeshRelease-subtitle")).to_contain_text(
        "purpose churn-analysis · spent ε 0.5")
    assert release.locator("tbody tr").count() >= 2
    expect(release.locator(".jp-MeshRelease-hw").first).to_contain_text("±")

    # clicking the status item opens the panel: binding, budget, the release, the ledger
    _status(page).click()
    panel = page.locator("#mesh-nb-panel")
    expect(panel).to_be_visible()
    expect(panel.locator(".jp-MeshPanel-purpose")).to_have_text("churn-analysis")
    expect(panel.locator(".jp-MeshPanel-legal")).to_contain_text("GDPR")
    expect(panel.locator(".jp-MeshPanel-budgetText")).to_contain_text(
        "customers: ε 2.5 of 3.0 left")
    releases = panel.locator(".jp-MeshPanel-release")
    expect(releases).to_have_count(1)
    expect(releases.first.locator(".jp-MeshPanel-sql")).to_contain_text("COUNT(*)")
    expect(releases.first).to_contain_text("ε 0.5")
    ledger_rows = panel.locator(".jp-MeshPanel-entry")
    released = panel.locator(".jp-MeshPanel-entry[data-kind='query.released']")
    expect(released).to_have_count(1, timeout=TIMEOUT)
    expect(panel.locator(".jp-MeshPanel-verifyOk")).to_contain_text("ledger OK")
    assert ledger_rows.count() >= 2  # session.bound and query.released
    panel.locator(".jp-MeshPanel-filterKind").select_option("session.bound")
    expect(released).to_have_count(0, timeout=TIMEOUT)
    expect(panel.locator(".jp-MeshPanel-entry[data-kind='session.bound']")).to_have_count(1)
    panel.locator(".jp-MeshPanel-filterKind").select_option("")

    # a frame with e-mail addresses: the background autoscan's alert reaches the panel
    _run_cell(page, 3)
    alert = panel.locator(".jp-MeshPanel-alert").first
    expect(alert).to_contain_text("contacts.email", timeout=TIMEOUT)
    expect(alert).to_contain_text("EMAIL_ADDRESS")
    expect(panel.locator(".jp-MeshPanel-entry[data-kind='pii.detected']")).to_have_count(
        1, timeout=TIMEOUT)

    shot = tmp_path / "lab.png"
    page.screenshot(path=str(shot))
    print(f"screenshot: {shot}")
    if os.environ.get("MESH_NB_UPDATE_SCREENSHOT") == "1":
        (REPO / "docs" / "img").mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, REPO / "docs" / "img" / "lab.png")

    # a page reload: the frontend re-attaches to the kernel's open comm and asks again
    page.reload()
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=TIMEOUT)
    _wait_kernel_idle(page)
    _wait_status(page, "customers · churn-analysis · ε 2.5 of 3.0 left")

    # a kernel restart ends the comm: nothing is bound any more
    page.locator(".jp-Notebook").click()
    page.keyboard.press("Escape")
    page.keyboard.press("0")
    page.keyboard.press("0")
    page.locator(".jp-Dialog .jp-mod-accept").click()
    _wait_status(page, "mesh: not bound")
    _wait_kernel_idle(page)  # the restart is complete (stopping a restarting kernel hangs)
    page.screenshot(path=str(tmp_path / "lab-restarted.png"))
    assert not [e for e in page.errors if "mesh" in e.lower()], page.errors
