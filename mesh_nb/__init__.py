"""mesh_nb: data-mesh privacy by design in the notebook.

>>> import mesh_nb
>>> m = mesh_nb.demo_mesh("mesh-demo")                       # doctest: +SKIP
>>> s = m.bind("customers", purpose="churn-analysis", analyst="alice")   # doctest: +SKIP
>>> s.budget()                                               # doctest: +SKIP
"""

from .contract import Contract, check_contract, load_contract
from .errors import (BudgetExceeded, ContractError, LedgerTampered, MeshError, NotFound,
                     PolicyViolation, Problem, QueryFailed)
from .mesh import Mesh, Product, open_mesh
from .session import Session
from .values import BudgetStatus, Explanation, Release, RowRelease

__version__ = "0.1.0"

__all__ = [
    "BudgetExceeded", "BudgetStatus", "Contract", "ContractError", "Explanation",
    "LedgerTampered", "Mesh", "MeshError", "NotFound", "PolicyViolation", "Problem", "Product",
    "QueryFailed", "Release", "RowRelease", "Session",
    "check_contract", "demo_mesh", "load_contract", "open_mesh", "scan", "load_ipython_extension",
    "unload_ipython_extension",
]


def __getattr__(name: str):
    """``mesh_nb.demo_mesh``: the demo (and its data generator) loads on first use."""
    if name == "demo_mesh":
        from .demo import demo_mesh

        return demo_mesh
    raise AttributeError(f"module 'mesh_nb' has no attribute {name!r}")


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
