"""Run the mesh's rules over its products: the whole check (``mesh-nb govern``) and the cheap
contract-only check :meth:`mesh_nb.Mesh.bind` runs before it binds a purpose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from ..contract.yamlsource import dotted, read_yaml
from ..errors import ContractError, PolicyViolation
from .context import SAMPLE_ROWS, ProductContext
from .load import Governance, find_governance, load_governance
from .rules import Finding, Rule, Violation

if TYPE_CHECKING:
    from ..mesh import Mesh, Product


@dataclass
class ProductResult:
    """What was checked on one product and what was skipped (with why)."""

    name: str
    contract: str
    checked: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class GovernanceReport:
    """Every violation of every rule on every product covered; see :mod:`.report` for output."""

    mesh: Path
    governance: Governance | None
    products: list[ProductResult]
    violations: list[Violation]
    generated: datetime
    data: bool = True
    ledger: bool = True

    @property
    def errors(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "error"]

    @property
    def warnings(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "warning"]

    @property
    def passed(self) -> bool:
        """True when no error-level rule is broken (what the CLI's exit status says)."""
        return not self.errors

    def __str__(self) -> str:
        from .report import to_text

        return to_text(self)


def _context(product: "Product", *, data: bool, ledger: bool, sample_rows: int,
             now: datetime) -> ProductContext:
    src, problems = read_yaml(product.contract.path)
    if src is None:  # the contract loaded a moment ago: it was changed or removed since
        raise ContractError(problems)
    return ProductContext(product, src, data=data, use_ledger=ledger, sample_rows=sample_rows,
                          now=now)


def _violation(ctx: ProductContext, rule: Rule, f: Finding) -> Violation:
    return Violation(ctx.name, rule.id, rule.kind, rule.severity, f.message, f.fix,
                     str(ctx.contract.path), ctx.line(f.at) if f.at else None,
                     dotted(f.at) if f.at else "(product)", f.purpose, f.table, f.column)


def evaluate_product(product: "Product", governance: Governance, *, data: bool = True,
                     ledger: bool = True, sample_rows: int = SAMPLE_ROWS,
                     now: datetime | None = None) -> tuple[list[Violation], ProductResult]:
    """Every applicable rule on one product. Kinds that read only what is switched off are
    skipped (and listed as such); a kind that raises becomes a violation of its rule."""
    ctx = _context(product, data=data, ledger=ledger, sample_rows=sample_rows,
                   now=now or datetime.now(timezone.utc))
    result = ProductResult(product.name, str(product.contract.path))
    out: list[Violation] = []
    available = {"contract"} | ({"data"} if data else set()) | ({"ledger"} if ledger else set())
    for rule in governance.rules:
        if not rule.applies_to(product.name):
            continue
        kind = governance.kind(rule)
        if not kind.uses & available:
            result.skipped.append({"rule": rule.id, "reason": "reads "
                                   + " and ".join(sorted(kind.uses)) + ", not read in this run"})
            continue
        result.checked.append(rule.id)
        try:
            findings = list(kind.check(rule, ctx))
        except Exception as exc:  # a broken check must not hide the other rules
            findings = [Finding(f"the check of rule kind `{rule.kind}` failed "
                                f"({type(exc).__name__}: {exc})",
                                "fix the rule's parameters or its plugin", ())]
        out += [_violation(ctx, rule, f) for f in findings]
    result.notes = list(dict.fromkeys(ctx.notes))
    return out, result


def evaluate(mesh: "Mesh", governance: Governance | str | Path | None = None, *,
             product: str | None = None, data: bool = True, ledger: bool = True,
             sample_rows: int = SAMPLE_ROWS, now: datetime | None = None) -> GovernanceReport:
    """Evaluate the mesh's ``governance.yaml`` (or the given rules) on every product, or on the
    one named ``product``. Without governance rules the report is empty and passes."""
    gov = _resolve(mesh, governance)
    names = [product] if product is not None else sorted(mesh.products)
    products = [mesh.product(n) for n in names]
    violations: list[Violation] = []
    results: list[ProductResult] = []
    now = now or datetime.now(timezone.utc)
    for p in products:
        if gov is None:
            results.append(ProductResult(p.name, str(p.contract.path)))
            continue
        found, result = evaluate_product(p, gov, data=data, ledger=ledger,
                                         sample_rows=sample_rows, now=now)
        violations += found
        results.append(result)
    order = {"error": 0, "warning": 1}
    violations.sort(key=lambda v: (v.product, order.get(v.severity, 2), v.rule, v.line or 0))
    return GovernanceReport(mesh.root, gov, results, violations, now, data, ledger)


def _resolve(mesh: "Mesh", governance: Governance | str | Path | None) -> Governance | None:
    if isinstance(governance, Governance):
        return governance
    path = Path(governance) if governance is not None else find_governance(mesh.root)
    return load_governance(path) if path is not None else None


# -- at bind time --------------------------------------------------------------------------

_BIND_CACHE: dict[tuple, tuple[Violation, ...]] = {}


def _stamp(path: Path) -> tuple:
    st = path.stat()
    return (str(path), st.st_mtime_ns, st.st_size)


def contract_violations(product: "Product", governance_file: Path) -> tuple[Violation, ...]:
    """Contract-only violations of one product (cached per contract and governance version)."""
    key = (_stamp(governance_file), _stamp(Path(product.contract.path)))
    if key not in _BIND_CACHE:
        gov = load_governance(governance_file)
        found, _ = evaluate_product(product, gov, data=False, ledger=False)
        if len(_BIND_CACHE) > 256:
            _BIND_CACHE.clear()
        _BIND_CACHE[key] = tuple(found)
    return _BIND_CACHE[key]


def _concerns(v: Violation, product: "Product", purpose: str) -> bool:
    """Whether a violation bears on binding ``purpose``: it names the purpose, or it names no
    purpose and either no column or a column the purpose allows."""
    if v.purpose is not None:
        return v.purpose == purpose
    if v.column is None:
        return True
    spec = product.contract.purpose(purpose)
    allowed = spec.allowed_columns if spec is not None else ()
    return v.column in allowed or f"{v.table}.{v.column}" in allowed


def blocking(products: Iterable["Product"], purpose: str, root: Path) -> list[Violation]:
    """Error-level contract violations that forbid binding ``purpose`` (see :func:`_concerns`)."""
    file = find_governance(root)
    if file is None:
        return []
    return [v for p in products for v in contract_violations(p, file)
            if v.severity == "error" and _concerns(v, p, purpose)]


def check_bind(products: Iterable["Product"], purpose: str, root: Path,
               analyst: str | None = None) -> None:
    """Raise :class:`PolicyViolation` naming the first error-level rule binding would break.

    With ``analyst``, the refusal is also recorded as ``session.refused`` in each product's
    ledger (rule id and message; names only).
    """
    products = list(products)
    found = blocking(products, purpose, root)
    if not found:
        return
    v = found[0]
    more = f" (and {len(found) - 1} more; run `mesh-nb govern`)" if len(found) > 1 else ""
    exc = PolicyViolation(f"governance:{v.rule}",
                          f"product `{v.product}` breaks the mesh's rule `{v.rule}`: "
                          f"{v.message}{more}",
                          f"{v.fix} at {v.where}; binding `{purpose}` is refused until then")
    if analyst is not None:
        for p in products:
            p.ledger.append("session.refused", analyst=analyst, purpose=purpose,
                            details={"rule": exc.rule, "reason": exc.what,
                                     "products": [q.name for q in products]})
    raise exc
