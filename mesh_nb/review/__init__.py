"""The domain owner's review: usage report, data minimization, OpenLineage export, contract diff.

>>> from mesh_nb.review import usage_report, export_openlineage, diff_contracts  # doctest: +SKIP
>>> usage_report(m.product("customers"), since="30d").save("report.html")     # doctest: +SKIP
>>> export_openlineage(m.product("customers"), "lineage.jsonl", mesh=m)        # doctest: +SKIP
>>> print(diff_contracts("old/datacontract.yaml", "customers/datacontract.yaml"))  # doctest: +SKIP

Everything here reads the owner's ledger and the contracts, never the data. The CLI
(``mesh-nb report``, ``mesh-nb ledger export``, ``mesh-nb diff``) and ``%mesh_ledger`` are thin
faces over these functions.
"""

from ._common import parse_since
from .diff import Change, ContractDiff, diff_contracts
from .lineage import LineageExport, export_openlineage, openlineage_events
from .minimize import Minimization, minimization
from .olspec import validate_event
from .report import UsageReport, usage_report

__all__ = ["Change", "ContractDiff", "LineageExport", "Minimization", "UsageReport",
           "diff_contracts", "export_openlineage", "minimization", "openlineage_events",
           "parse_since", "usage_report", "validate_event"]
