"""Federated computational governance: mesh-wide rules checked against every product.

The governance group keeps ``governance.yaml`` at the mesh root; domain owners keep their own
contracts. :func:`evaluate` checks every rule on every product (contract, a sampled PII scan of
the data, the owner's ledger); :meth:`mesh_nb.Mesh.bind` refuses a purpose that breaks an
error-level rule of the contract-only kinds.

>>> from mesh_nb.governance import evaluate, to_text          # doctest: +SKIP
>>> report = evaluate(mesh_nb.open_mesh("mesh-demo"))        # doctest: +SKIP
>>> print(to_text(report)); report.passed                      # doctest: +SKIP

Plugins add rule kinds through the ``mesh_nb.governance_rules`` entry-point group (see
:mod:`mesh_nb.governance.rules`).
"""

from .context import SAMPLE_ROWS, ProductContext
from .evaluate import GovernanceReport, check_bind, evaluate, evaluate_product
from .load import (GOVERNANCE_FILE, Governance, check_governance, find_governance,
                   load_governance)
from .report import dumps, schema, to_html, to_json, to_text
from .rules import (ENTRY_POINT_GROUP, Finding, GovernanceError, Rule, RuleKind, Violation,
                    registry)

__all__ = ["ENTRY_POINT_GROUP", "GOVERNANCE_FILE", "SAMPLE_ROWS", "Finding", "Governance",
           "GovernanceError", "GovernanceReport", "ProductContext", "Rule", "RuleKind",
           "Violation", "check_bind", "check_governance", "dumps", "evaluate",
           "evaluate_product", "find_governance", "load_governance", "registry", "schema",
           "to_html", "to_json", "to_text"]
