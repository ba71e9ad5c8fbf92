"""``mesh-nb demo``: the demo mesh end to end, printed for a person to read."""

from __future__ import annotations

from pathlib import Path

from .errors import MeshError
from .demo import demo_mesh


QUERIES = (
    ("SELECT region, plan, COUNT(*) AS n, AVG(monthly_spend) AS spend "
     "FROM customers.accounts WHERE churned GROUP BY region, plan", 0.5),
    ("SELECT churned, COUNT(DISTINCT customer_id) AS people, MEDIAN(monthly_spend) AS median "
     "FROM customers.accounts GROUP BY churned", 0.5),
    ("SELECT region, plan, COUNT(*) AS n, AVG(monthly_spend) AS spend "
     "FROM customers.accounts WHERE churned GROUP BY region, plan", 0.5),
    ("SELECT full_name, COUNT(*) AS n FROM customers.accounts GROUP BY full_name", 0.1),
)


def _indent(text: str) -> str:
    return "\n".join("   " + line for line in text.splitlines())


def _say(text: str = "") -> None:
    print(text, flush=True)


def run_demo(root: Path, *, seed: int = 7, analyst: str = "demo-analyst") -> None:
    """Materialize the demo mesh in ``root``, bind sessions, show the budget and the ledger."""
    _say(f"== mesh_nb demo: mesh at {root.resolve()}")
    mesh = demo_mesh(root, seed=seed)
    for name, product in sorted(mesh.products.items()):
        c = product.contract
        tables = ", ".join(f"{name}.{t.name}" for t in c.tables)
        _say(f"   product {name} (team {c.team}): {tables}; purposes: "
             f"{', '.join(sorted(c.purposes))}")

    _say("\n== binding customers for churn-analysis")
    with mesh.bind("customers", purpose="churn-analysis", analyst=analyst) as session:
        _say(f"   {session!r}")
        _say(f"   budget: {session.budget()}")
        for sql, epsilon in QUERIES:
            _say(f"\n-- {sql}  (epsilon {epsilon})")
            try:
                release = session.query(sql, epsilon=epsilon)
            except MeshError as exc:
                _say(f"   refused: {exc}")
                continue
            _say(_indent(release.frame.to_string(index=False)))
            acc = release.accuracy[["output", "mechanism", "ci95_half_width"]]
            _say(_indent("95% half-widths: " + ", ".join(
                f"{r.output} ±{r.ci95_half_width:.3g}" for r in acc.itertuples())))
            for note in release.notes:
                _say(f"   note: {note}")
            _say(f"   spent epsilon {release.epsilon:g}{' (cached)' if release.cached else ''}"
                 f"; left: {session.budget().epsilon_remaining:g}")

    _say("\n== pseudonymized rows for support-operations (acknowledged)")
    with mesh.bind("customers", purpose="support-operations", analyst=analyst,
                   acknowledge=True) as support:
        rows = support.rows("SELECT customer_id, email, postcode, plan FROM customers.accounts "
                            "ORDER BY plan LIMIT 3")
        _say(_indent(rows.frame.to_string(index=False)))

    _say("\n== a purpose that needs acknowledgement is refused without it")
    try:
        mesh.bind("customers", purpose="support-operations", analyst=analyst)
    except MeshError as exc:
        _say(f"   refused: {exc}")

    _say("\n== a purpose the product does not declare is refused")
    try:
        mesh.bind("sales", purpose="marketing-research", analyst=analyst)
    except MeshError as exc:
        _say(f"   refused: {exc}")

    _say("\n== mesh-wide governance (governance.yaml; `mesh-nb govern` prints every line)")
    from .governance import evaluate

    report = evaluate(mesh)
    for p in report.products:
        mine = [v for v in report.violations if v.product == p.name]
        errors = sum(v.severity == "error" for v in mine)
        rules = ", ".join(sorted({v.rule for v in mine}))
        _say(f"   {p.name}: " + (f"{errors} error(s), {len(mine) - errors} warning(s): {rules}"
                                  if mine else "ok"))
    try:
        mesh.bind("marketing", purpose="lead-export", analyst=analyst)
    except MeshError as exc:
        _say(f"   bind marketing/lead-export refused: {exc}")

    for name in sorted(mesh.products):
        ledger = mesh.ledger(name)
        if not len(ledger):
            continue
        _say(f"\n== the owner's ledger of {name} (last 6 of {len(ledger)} entries)")
        for e in ledger.entries()[-6:]:
            details = ", ".join(f"{k}={v}" for k, v in sorted(e.details.items()))
            _say(f"   #{e.seq:<4} {e.kind:<15} {e.analyst or '-':<13} {e.purpose or '-':<15}"
                 f" {details}")
        report = ledger.verify()
        _say(f"   verify: ok, {report.entries} entries, chain and owner signature intact")
