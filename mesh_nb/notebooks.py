"""The example notebooks: where they are, running one headlessly, opening them in JupyterLab."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .errors import MeshError

QUICKSTART = "01_analyst_quickstart.ipynb"


def notebooks_dir() -> Path:
    """example_notebooks/: inside the installed wheel, else beside the source package."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "example_notebooks", here.parent / "example_notebooks"):
        if candidate.is_dir():
            return candidate
    raise MeshError("the example notebooks are not installed — reinstall mesh_nb from its "
                    "wheel or source tree")


def _text(output: dict) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") == "error":
        return f"{output.get('ename')}: {output.get('evalue')}"
    data = output.get("data", {})
    if "application/vnd.jupyter.widget-view+json" in data:
        return ""  # widgets need a browser; their text/plain is a repr, not a result
    return data.get("text/plain", "")


def run_notebook(name: str = QUICKSTART, *, timeout: int = 600) -> list[tuple[str, str]]:
    """Execute an example notebook headlessly (in a temporary copy); returns, per section,
    (markdown heading, key text outputs)."""
    import nbformat
    from nbclient import NotebookClient

    source = notebooks_dir() / name
    nb = nbformat.read(source, as_version=4)
    with tempfile.TemporaryDirectory(prefix="mesh-nb-notebook-") as work:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": work}}).execute()
    sections: list[tuple[str, str]] = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            heading = cell.source.splitlines()[0].lstrip("# ").strip()
            sections.append((heading, ""))
        elif sections:
            text = "".join(_text(o) for o in cell.get("outputs", []))
            if text.strip():
                head, body = sections[-1]
                sections[-1] = (head, body + text.rstrip() + "\n")
    return sections


def open_lab(mesh_root: Path, *, extra_args: list[str] | None = None) -> int:
    """Start JupyterLab on the example notebooks with ``MESH_NB_ROOT`` set to ``mesh_root``."""
    env = dict(os.environ, MESH_NB_ROOT=str(Path(mesh_root).resolve()))
    cmd = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={notebooks_dir()}",
           *(extra_args or [])]
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 0
