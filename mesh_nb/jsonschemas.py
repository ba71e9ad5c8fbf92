"""``jsonschema``, imported on first use without its 1.5 s IRI grammar.

``jsonschema._format`` imports ``rfc3987_syntax`` when it is installed (the ``format-nongpl``
extra brings it), and that module builds a lark grammar at import: 1.5 s of a first
``mesh-nb check`` or ``%mesh_bind``. No schema mesh_nb checks uses the ``iri`` /
``iri-reference`` formats (ODCS: none checked; OpenLineage: ``uri``, ``date``, ``date-time``,
which ``rfc3986_validator`` and ``rfc3339_validator`` serve), so it is left out: jsonschema then
skips those two formats, as it does whenever their library is missing.
"""

from __future__ import annotations

import sys
from types import ModuleType


def import_jsonschema() -> ModuleType:
    """The ``jsonschema`` module; imports it (without ``rfc3987_syntax``) the first time."""
    if "jsonschema" in sys.modules:
        return sys.modules["jsonschema"]
    blocked = "rfc3987_syntax" not in sys.modules
    if blocked:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]  # ImportError on import
    try:
        import jsonschema as module
    finally:
        if blocked and sys.modules.get("rfc3987_syntax", ...) is None:
            del sys.modules["rfc3987_syntax"]  # anyone else may still import it
    return module
