"""mesh_nb: data-mesh privacy by design in the notebook.

>>> import mesh_nb
>>> m = mesh_nb.demo_mesh("mesh-demo")                       # doctest: +SKIP
>>> s = m.bind("customers", purpose="churn-analysis", analyst="alice")   # doctest: +SKIP
>>> s.budget()                                               # doctest: +SKIP
"""

from typing import TYPE_CHECKING

from .errors import (BudgetExceeded, ContractError, LedgerTampered, MeshError, NotFound,
                     PolicyViolation, Problem, QueryFailed)
from .session import Session
from .values import BudgetStatus, Explanation, ModelRelease, Release, RowRelease

if TYPE_CHECKING:
    from .contract import Contract, check_contract, load_contract
    from .demo import demo_mesh
    from .mesh import Mesh, MeshWarning, Product, ProductBroken, open_mesh

_LAZY = {"Contract": "contract", "check_contract": "contract", "load_contract": "contract",
         "Mesh": "mesh", "Product": "mesh", "open_mesh": "mesh", "demo_mesh": "demo",
         "MeshWarning": "mesh", "ProductBroken": "mesh"}
"""Names whose module imports pydantic, YAML, the ODCS schema or cryptography: each loads on
first use, so ``import mesh_nb`` (and ``mesh-nb --help``) stays fast."""

__all__ = [
    "BudgetExceeded", "BudgetStatus", "Contract", "ContractError", "Explanation",
    "LedgerTampered", "Mesh", "MeshError", "MeshWarning", "ModelRelease", "NotFound",
    "PolicyViolation", "Problem", "Product", "ProductBroken", "QueryFailed", "Release",
    "RowRelease", "Session",
    "check_contract", "demo_mesh", "load_contract", "open_mesh", "scan", "load_ipython_extension",
    "unload_ipython_extension",
]


def __getattr__(name: str):
    """The names of :data:`_LAZY` and ``__version__`` (from the package metadata), on first use."""
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    elif name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version(__name__)
        except PackageNotFoundError:  # a source tree on sys.path, not installed
            value = "0+unknown"
    else:
        raise AttributeError(f"module 'mesh_nb' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | {"__version__"})


def scan(df, **options):
    """Scan a DataFrame for personal data; returns a ScanReport (see :func:`mesh_nb.pii.scan`).

    Imported on first use: presidio loads only when something is scanned.
    """
    from .pii import scan as _scan

    return _scan(df, **options)


def load_ipython_extension(ipython) -> None:
    """``%load_ext mesh_nb``: register the magics."""
    from .magics import load

    load(ipython)


def unload_ipython_extension(ipython) -> None:
    """``%unload_ext mesh_nb``: remove every hook ``load_ipython_extension`` added."""
    from .magics import unload

    unload(ipython)


def _register_faces() -> None:
    """Inside a running IPython (a notebook kernel), show the values a session returns as
    HTML and the lab's MIME type (:func:`mesh_nb.display.register`) from ``import mesh_nb`` on,
    without ``%load_ext``; elsewhere nothing is imported."""
    import sys

    if "IPython" not in sys.modules:
        return
    ipython = sys.modules["IPython"].get_ipython()
    if ipython is not None and hasattr(ipython, "display_formatter"):
        from .display import register

        register(ipython)


_register_faces()
