"""Rules, findings and violations, and the registry of rule kinds (built-in and plugins).

A *rule* is one entry of ``governance.yaml``: an id, a kind, a severity, a description, a
rationale and the kind's parameters. A *rule kind* is the code that checks rules of that kind
against one product; it yields :class:`Finding` objects (what is wrong, how to fix it, where in
the contract), and the evaluator turns each into a :class:`Violation` carrying the product, the
rule, the severity and the ``file:line`` to change.

Organisations add kinds as plugins: a distribution declares an entry point in the group
``mesh_nb.governance_rules`` whose object is a :class:`RuleKind`, e.g. in ``pyproject.toml``::

    [project.entry-points."mesh_nb.governance_rules"]
    no-raw-on-fridays = "acme_governance:NO_RAW_ON_FRIDAYS"

The entry point's name is the kind's name in ``governance.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal

from pydantic import BaseModel

from ..contract.yamlsource import FieldPath
from ..errors import MeshError, Problem

if TYPE_CHECKING:
    from .context import ProductContext

ENTRY_POINT_GROUP = "mesh_nb.governance_rules"
SEVERITIES: tuple[str, ...] = ("error", "warning")
Severity = Literal["error", "warning"]
#: What a rule kind reads besides the contract: the data (a sampled scan) and the ledger.
USES: tuple[str, ...] = ("contract", "data", "ledger")


@dataclass(frozen=True)
class Finding:
    """What a rule kind reports: the problem, the fix, and where in the contract (field path)."""

    message: str
    fix: str
    at: FieldPath = ()
    purpose: str | None = None
    table: str | None = None
    column: str | None = None


@dataclass(frozen=True)
class Rule:
    """One rule of ``governance.yaml``; ``params`` is the kind's validated parameter model."""

    id: str
    kind: str
    severity: str
    description: str
    rationale: str
    params: Any = None
    products: tuple[str, ...] = ()  # glob patterns of product names; empty: every product
    line: int | None = None

    def applies_to(self, product: str) -> bool:
        """True when the rule covers ``product`` (its ``products:`` patterns, if any)."""
        return not self.products or any(fnmatchcase(product, p) for p in self.products)


@dataclass(frozen=True)
class Violation:
    """A rule a product breaks: which, how badly, why, and the contract line to change.

    Holds names, entity types and counts only — never a data value.
    """

    product: str
    rule: str
    kind: str
    severity: str
    message: str
    fix: str
    file: str
    line: int | None
    field: str
    purpose: str | None = None
    table: str | None = None
    column: str | None = None

    @property
    def where(self) -> str:
        """``file:line`` (or just the file when the line is unknown)."""
        return f"{self.file}:{self.line}" if self.line else self.file

    def __str__(self) -> str:
        return (f"{self.where}: {self.field}: {self.severity} [{self.rule}] {self.message} — "
                f"{self.fix}")

    def to_dict(self) -> dict[str, Any]:
        """The violation as the JSON report writes it (schema governance-report-v1)."""
        return {"product": self.product, "rule": self.rule, "kind": self.kind,
                "severity": self.severity, "message": self.message, "fix": self.fix,
                "file": self.file, "line": self.line, "field": self.field,
                "purpose": self.purpose, "table": self.table, "column": self.column}


Check = Callable[[Rule, "ProductContext"], Iterable[Finding]]


@dataclass(frozen=True)
class RuleKind:
    """A kind of rule: its name, the check, the parameter model and what it reads.

    ``check(rule, ctx)`` yields a :class:`Finding` per problem; ``ctx`` is a
    :class:`~mesh_nb.governance.context.ProductContext`. ``params`` is a pydantic model (use
    ``extra="forbid"``) validating the rule's ``params:`` mapping, or None for a kind without
    parameters. ``uses`` names what the check reads beyond the contract (``data``,
    ``ledger``); contract-only kinds run at bind time, the others only in ``mesh-nb govern``
    (a kind that uses data or the ledger should still check the contract when
    ``ctx.scan()`` / ``ctx.ledger()`` return None).
    """

    name: str
    check: Check
    params: type[BaseModel] | None = None
    uses: frozenset[str] = field(default_factory=lambda: frozenset({"contract"}))
    description: str = ""

    def __post_init__(self) -> None:
        unknown = set(self.uses) - set(USES)
        if unknown:
            raise ValueError(f"rule kind {self.name!r}: unknown uses {sorted(unknown)} — "
                             f"use some of {', '.join(USES)}")


class GovernanceError(MeshError):
    """``governance.yaml`` is malformed; ``problems`` lists every finding with its line."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        head = f"{len(self.problems)} problem(s) in the governance rules"
        super().__init__(head + ":\n" + "\n".join(str(p) for p in self.problems))


def builtin_kinds() -> dict[str, RuleKind]:
    """The kinds mesh_nb ships (see :mod:`mesh_nb.governance.builtin`)."""
    from .builtin import BUILTIN

    return {k.name: k for k in BUILTIN}


def plugin_kinds() -> tuple[dict[str, RuleKind], dict[str, str]]:
    """Kinds registered through the ``mesh_nb.governance_rules`` entry points.

    Returns ``(kinds, broken)``: ``broken`` maps an entry point's name to why it could not be
    used (import error, not a RuleKind, a name that clashes with a built-in kind — the built-in
    is used then).
    """
    kinds: dict[str, RuleKind] = {}
    broken: dict[str, str] = {}
    builtin = builtin_kinds()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in builtin:
            broken[ep.name] = f"plugin `{ep.value}` reuses the built-in kind's name"
            continue
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not take governance down
            broken[ep.name] = f"plugin `{ep.value}` failed to load ({type(exc).__name__}: {exc})"
            continue
        if callable(obj) and not isinstance(obj, RuleKind):
            try:
                obj = obj()
            except Exception as exc:
                broken[ep.name] = f"plugin `{ep.value}` failed ({type(exc).__name__}: {exc})"
                continue
        if not isinstance(obj, RuleKind):
            broken[ep.name] = (f"plugin `{ep.value}` is a {type(obj).__name__}, not a "
                               "mesh_nb.governance.RuleKind")
            continue
        kinds[ep.name] = obj if obj.name == ep.name else RuleKind(
            ep.name, obj.check, obj.params, obj.uses, obj.description)
    return kinds, broken


def registry() -> tuple[dict[str, RuleKind], dict[str, str]]:
    """Every usable kind by name (built-ins first, then plugins) and the broken plugins."""
    plugins, broken = plugin_kinds()
    return {**builtin_kinds(), **plugins}, broken
