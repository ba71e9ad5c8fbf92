"""The example notebooks: where they are, running one headlessly, opening them in JupyterLab."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import MeshError

if TYPE_CHECKING:
    from .mesh import Mesh

QUICKSTART = "01_analyst_quickstart.ipynb"


def notebooks_dir() -> Path:
    """example_notebooks/: inside the installed wheel, else beside the source package."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "example_notebooks", here.parent / "example_notebooks"):
        if candidate.is_dir():
            return candidate
    raise MeshError("the example notebooks are not installed — reinstall mesh_nb from its "
                    "wheel or source tree")


def notebook_mesh() -> "Mesh":
    """The mesh an example notebook works on: the one ``mesh-nb lab`` was started on
    (``$MESH_NB_ROOT``, so the lab's panel shows the notebook's ledger entries), else a fresh
    copy of the demo mesh in a temporary folder (``mesh-nb demo``, tests, a plain kernel)."""
    from .mesh import open_mesh

    root = os.environ.get("MESH_NB_ROOT")
    if root:
        return open_mesh(root)
    from .demo import demo_mesh

    return demo_mesh(tempfile.mkdtemp(prefix="mesh-demo-"))


def _text(output: dict) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") == "error":
        return f"{output.get('ename')}: {output.get('evalue')}"
    data = output.get("data", {})
    if "application/vnd.jupyter.widget-view+json" in data:
        return ""  # widgets need a browser; their text/plain is a repr, not a result
    return data.get("text/plain", "")


def execute_notebook(name: str, workdir: str | os.PathLike, *, timeout: int = 600):
    """Execute an example notebook (a copy, in a kernel working in ``workdir``); returns the
    executed notebook (an ``nbformat`` node), errors kept in its outputs."""
    import nbformat
    from nbclient import NotebookClient
    from traitlets.config import Config

    nb = nbformat.read(notebooks_dir() / name, as_version=4)
    # IPC sockets (absolute paths: the kernel runs in `workdir`): a local kernel needs no TCP
    # port, and ipykernel warns on stderr about every unencrypted TCP kernel
    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(Path(workdir).resolve() / "kernel")
    NotebookClient(nb, config=config, timeout=timeout, kernel_name="python3",
                   allow_errors=True, resources={"metadata": {"path": str(workdir)}}).execute()
    return nb


def run_notebook(name: str = QUICKSTART, *, timeout: int = 600) -> list[tuple[str, str]]:
    """Execute an example notebook headlessly (in a temporary copy); returns, per section,
    (markdown heading, key text outputs)."""
    with tempfile.TemporaryDirectory(prefix="mesh-nb-notebook-") as work:
        nb = execute_notebook(name, work, timeout=timeout)
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


def workshop_folder(mesh_root: Path) -> Path:
    """``mesh_root/notebooks`` with every example notebook not already there copied in.

    A notebook already in the folder is the user's work and is kept as it is; delete it to get
    the original back.
    """
    folder = Path(mesh_root).resolve() / "notebooks"
    folder.mkdir(parents=True, exist_ok=True)
    for source in sorted(notebooks_dir().glob("*.ipynb")):
        if not (folder / source.name).exists():
            shutil.copyfile(source, folder / source.name)
    return folder


def lab_command(mesh_root: Path, extra_args: list[str] | None = None
                ) -> tuple[list[str], dict[str, str], Path]:
    """The ``jupyter lab`` command, environment and folder that ``mesh-nb lab`` runs.

    The lab opens :func:`workshop_folder`; a config folder beside it (first on
    ``JUPYTER_CONFIG_PATH``; the user's own config still applies) enables the ``mesh_nb.lab``
    server extension on this mesh and, when the wheel's lab extension is not installed in
    ``share/jupyter`` (an editable install), points JupyterLab at the package's own build.
    """
    from .lab import LABEXTENSION_DIR, LABEXTENSION_NAME, installed_labextension

    root = Path(mesh_root).resolve()
    folder = workshop_folder(root)
    config_dir = root / ".lab-config"
    config_dir.mkdir(exist_ok=True)
    config: dict = {"ServerApp": {"jpserver_extensions": {"mesh_nb.lab": True}},
                    "MeshNbApp": {"mesh_root": str(root)}}
    if installed_labextension() is None and (LABEXTENSION_DIR / "package.json").is_file():
        link = config_dir / "labextensions" / LABEXTENSION_NAME
        link.parent.mkdir(exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(LABEXTENSION_DIR, target_is_directory=True)
        config["LabApp"] = {"extra_labextensions_path": [str(link.parent)]}
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(config, indent=2))
    path = os.pathsep.join(p for p in (str(config_dir), os.environ.get("JUPYTER_CONFIG_PATH"))
                           if p)
    env = dict(os.environ, MESH_NB_ROOT=str(root), JUPYTER_CONFIG_PATH=path)
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={folder}",
           *(extra_args or [])]
    return cmd, env, folder


def open_lab(mesh_root: Path, *, extra_args: list[str] | None = None) -> int:
    """Start JupyterLab on a working copy of the example notebooks, with the mesh at
    ``mesh_root`` (``MESH_NB_ROOT`` for the kernels, the owners' API for the server)."""
    cmd, env, folder = lab_command(mesh_root, extra_args)
    print(f"mesh-nb: JupyterLab on {folder} (mesh {Path(mesh_root).resolve()})", flush=True)
    if os.name == "posix":  # become JupyterLab: signals (Ctrl+C, a service's stop) reach it
        os.execve(cmd[0], cmd, env)
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 0
