"""The governance report as text (for people and CI logs), JSON (schema
``governance-report-v1``, for catalogs and dashboards) and HTML (great-tables)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .evaluate import GovernanceReport
    from .rules import Violation

SCHEMA_ID = "mesh_nb/governance-report"
SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).with_name("schema") / "governance-report-v1.json"


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) every :func:`to_json` document validates against."""
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def relative(report: "GovernanceReport", file: str) -> str:
    """A contract path relative to the mesh root (POSIX), or as given when outside it."""
    try:
        return Path(file).resolve().relative_to(Path(report.mesh).resolve()).as_posix()
    except ValueError:
        return file


def _where(report: "GovernanceReport", v: "Violation") -> str:
    rel = relative(report, v.file)
    return f"{rel}:{v.line}" if v.line else rel


# -- text ----------------------------------------------------------------------------------

def to_text(report: "GovernanceReport") -> str:
    """One line per violation, ``file:line: field: severity [rule] what — fix``, by product."""
    gov = report.governance
    if gov is None:
        return (f"no governance.yaml at {report.mesh}: no mesh-wide rules to check "
                "(see docs/governance.md)")
    scope = ", ".join(s for s, on in (("contracts", True), ("data sample", report.data),
                                      ("ledgers", report.ledger)) if on)
    lines = [f"governance: {len(gov.rules)} rule(s) from {gov.file} on "
             f"{len(report.products)} product(s); checked {scope}"]
    for p in report.products:
        mine = [v for v in report.violations if v.product == p.name]
        n_err = sum(v.severity == "error" for v in mine)
        status = (f"{n_err} error(s), {len(mine) - n_err} warning(s)" if mine else "ok")
        lines.append(f"\n{p.name}: {status} ({len(p.checked)} rule(s) checked"
                     + (f", {len(p.skipped)} skipped" if p.skipped else "") + ")")
        for v in mine:
            lines.append(f"  {_where(report, v)}: {v.field}: {v.severity} [{v.rule}] "
                         f"{v.message} — {v.fix}")
        for note in p.notes:
            lines.append(f"  note: {note}")
    n_err, n_warn = len(report.errors), len(report.warnings)
    lines.append("")
    lines.append(f"FAILED: {n_err} error(s), {n_warn} warning(s)" if n_err else
                 f"passed: no error-level violation ({n_warn} warning(s))")
    return "\n".join(lines)


# -- JSON ----------------------------------------------------------------------------------

def to_json(report: "GovernanceReport") -> dict[str, Any]:
    """The report as a JSON-ready dict, schema ``governance-report-v1`` (see :func:`schema`)."""
    gov = report.governance
    rules = [] if gov is None else [
        {"id": r.id, "kind": r.kind, "severity": r.severity, "description": r.description,
         "rationale": r.rationale, "products": list(r.products)} for r in gov.rules]
    products = []
    for p in report.products:
        mine = [v for v in report.violations if v.product == p.name]
        products.append({
            "name": p.name, "contract": relative(report, p.contract),
            "checked": list(p.checked), "skipped": [dict(s) for s in p.skipped],
            "notes": list(p.notes),
            "errors": sum(v.severity == "error" for v in mine),
            "warnings": sum(v.severity == "warning" for v in mine)})
    return {
        "schema": SCHEMA_ID,
        "schemaVersion": SCHEMA_VERSION,
        "generated": report.generated.isoformat(timespec="seconds"),
        "mesh": str(report.mesh),
        "governance": {"file": str(gov.file) if gov else None,
                       "version": gov.version if gov else None, "rules": rules},
        "scope": {"contract": True, "data": report.data, "ledger": report.ledger},
        "products": products,
        "violations": [{**v.to_dict(), "file": relative(report, v.file)}
                       for v in report.violations],
        "summary": {"products": len(report.products), "rules": len(rules),
                    "errors": len(report.errors), "warnings": len(report.warnings),
                    "passed": report.passed},
    }


def dumps(report: "GovernanceReport") -> str:
    """:func:`to_json` as indented JSON text."""
    return json.dumps(to_json(report), indent=2, ensure_ascii=False)


# -- HTML ----------------------------------------------------------------------------------

_CSS = """
body { font-family: -apple-system, 'Segoe UI', Roboto, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; }
.mesh-nb-meta { color: #555; } .mesh-nb-ok { color: #070; font-weight: bold; }
.mesh-nb-bad { color: #b00; font-weight: bold; } code { background: #f4f4f4; padding: 0 .2em; }
"""


def _violations_table(report: "GovernanceReport") -> str:
    import pandas as pd
    from great_tables import GT, loc, style

    if not report.violations:
        return '<p class="mesh-nb-ok" id="mesh-nb-governance-violations">No violations.</p>'
    df = pd.DataFrame([{"product": v.product, "severity": v.severity, "rule": v.rule,
                        "message": v.message, "fix": v.fix, "where": _where(report, v),
                        "field": v.field} for v in report.violations])
    errors = [int(i) for i in df.index[df["severity"] == "error"]]
    gt = (GT(df, id="mesh-nb-governance-violations", groupname_col="product")
          .tab_header(title="Violations by product and rule",
                      subtitle="contract line: the line of the contract to change")
          .cols_label(severity="Severity", rule="Rule", message="What is wrong", fix="Fix",
                      where="Contract line", field="Field"))
    if errors:
        gt = gt.tab_style(style=[style.fill(color="#fdecea"), style.text(weight="bold")],
                          locations=loc.body(columns="severity", rows=errors))
    return gt.as_raw_html()


def _products_table(report: "GovernanceReport") -> str:
    import pandas as pd
    from great_tables import GT, loc, style

    rows = []
    for p in report.products:
        mine = [v for v in report.violations if v.product == p.name]
        errors = sum(v.severity == "error" for v in mine)
        rows.append({"product": p.name, "contract": relative(report, p.contract),
                     "status": "fails" if errors else "passes", "errors": errors,
                     "warnings": len(mine) - errors, "checked": len(p.checked),
                     "skipped": len(p.skipped), "notes": "; ".join(p.notes)})
    df = pd.DataFrame(rows)
    failing = [int(i) for i in df.index[df["errors"] > 0]]
    gt = (GT(df, id="mesh-nb-governance-products")
          .tab_header(title="Products", subtitle="fails: at least one error-level rule is broken")
          .cols_label(product="Product", contract="Contract", status="Status", errors="Errors",
                      warnings="Warnings", checked="Rules checked", skipped="Rules skipped",
                      notes="Notes"))
    if failing:
        gt = gt.tab_style(style=[style.fill(color="#fdecea"), style.text(weight="bold")],
                          locations=loc.body(columns="status", rows=failing))
    return gt.as_raw_html()


def _rules_table(report: "GovernanceReport") -> str:
    import pandas as pd
    from great_tables import GT

    gov = report.governance
    counts: dict[str, int] = {}
    for v in report.violations:
        counts[v.rule] = counts.get(v.rule, 0) + 1
    df = pd.DataFrame([{"rule": r.id, "kind": r.kind, "severity": r.severity,
                        "violations": counts.get(r.id, 0), "description": r.description,
                        "rationale": r.rationale} for r in gov.rules])
    return (GT(df, id="mesh-nb-governance-rules")
            .tab_header(title="The mesh's rules", subtitle=str(gov.file))
            .cols_label(rule="Rule", kind="Kind", severity="Severity",
                        violations="Violations", description="Checks",
                        rationale="Rationale")
            .as_raw_html())


def to_html(report: "GovernanceReport") -> str:
    """A self-contained HTML page: status, violations by product and rule, the rules."""
    e = html.escape
    out = [f"<h1>Governance report: {e(str(report.mesh))}</h1>",
           f'<p class="mesh-nb-meta">Generated {e(report.generated.isoformat(timespec="seconds"))}'
           ". Names, entity types and counts only, never a data value.</p>"]
    if report.governance is None:
        out.append('<p class="mesh-nb-meta">No governance.yaml at the mesh root: no mesh-wide '
                   "rules to check.</p>")
    else:
        cls = "mesh-nb-ok" if report.passed else "mesh-nb-bad"
        word = "passed" if report.passed else "failed"
        out.append(f'<p id="mesh-nb-governance-status"><span class="{cls}">{word}</span>: '
                   f"{len(report.errors)} error(s), {len(report.warnings)} warning(s) on "
                   f"{len(report.products)} product(s).</p>")
        out.append("<h2>Products</h2>")
        out.append(_products_table(report))
        out.append("<h2>Violations</h2>")
        out.append(_violations_table(report))
        out.append("<h2>Rules</h2>")
        out.append(_rules_table(report))
    title = e(f"mesh_nb governance report: {report.mesh}")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(out) + "\n</body></html>\n")
