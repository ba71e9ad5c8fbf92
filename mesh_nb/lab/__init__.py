"""mesh_nb in JupyterLab: the kernel-side comm, the release MIME bundle, the server extension.

Three faces over the same Python API, none of which ever sends a data value except the values
a release released:

- :mod:`mesh_nb.lab.comm` — a :class:`~mesh_nb.lab.comm.StatePublisher` the magics attach to;
  it keeps the lab's status bar and Mesh panel up to date over a Jupyter comm (target
  ``mesh_nb``) with the binding, purpose, budgets, latest releases and PII alerts.
- :mod:`mesh_nb.lab.mime` — :func:`~mesh_nb.lab.mime.release_bundle`, the
  ``application/vnd.mesh-nb.release+json`` bundle of a Release (beside text/html and text/plain).
- :mod:`mesh_nb.lab.server` — a jupyter_server extension with authenticated REST handlers under
  ``/mesh-nb/api/`` that read the owners' ledgers of products under the server's mesh root.

The TypeScript extension in ``extension/`` is built into ``mesh_nb/lab/labextension`` and
installed by the wheel as the ``mesh-nb`` lab extension.
"""

from __future__ import annotations

from pathlib import Path

#: The lab extension's name (``extension/package.json``) and where its build lands.
LABEXTENSION_NAME = "mesh-nb"
LABEXTENSION_DIR = Path(__file__).resolve().parent / "labextension"


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where ``jupyter labextension develop`` (``jupyter-builder develop``) finds the build.

    The path is absolute, so it is right whichever module the tool finds this function on
    (it looks at ``mesh_nb``, then at its subpackages such as this one).
    """
    return [{"src": str(LABEXTENSION_DIR), "dest": LABEXTENSION_NAME}]


def _jupyter_server_extension_points() -> list[dict]:
    """The jupyter_server extension (enabled as ``mesh_nb.lab`` in jpserver_extensions)."""
    from .server import MeshNbApp

    return [{"module": "mesh_nb.lab.server", "app": MeshNbApp}]


def labextension_built() -> bool:
    """True when the lab extension has been built into the package (``jlpm build``)."""
    return (LABEXTENSION_DIR / "package.json").is_file() and \
        (LABEXTENSION_DIR / "static").is_dir()


def installed_labextension() -> Path | None:
    """The ``mesh-nb`` lab extension installed on Jupyter's data path (by the wheel), or None."""
    from jupyter_core.paths import jupyter_path

    for base in jupyter_path("labextensions"):
        if (Path(base) / LABEXTENSION_NAME / "package.json").is_file():
            return Path(base) / LABEXTENSION_NAME
    return None


def load_ipython_extension(ipython) -> None:
    """``%load_ext mesh_nb.lab``: attach the lab's state comm to the loaded mesh_nb magics.

    ``%load_ext mesh_nb`` does this itself; this entry point is for kernels where the magics
    were loaded before the lab face existed.
    """
    from .comm import attach

    attach(ipython)


def unload_ipython_extension(ipython) -> None:
    """``%unload_ext mesh_nb.lab``: close the state comm."""
    from .comm import detach

    detach(ipython)
