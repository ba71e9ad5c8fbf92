"""``mesh-nb demo``: the demo mesh end to end, printed for a person to read."""

from __future__ import annotations

import shutil
from pathlib import Path

from .demo import demo_mesh
from .errors import MeshError
from .mesh import find_contracts, open_mesh
from .text import plural


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


def reuse_or_start(root: Path, *, fresh: bool = False) -> str:
    """What the demo does with ``root``: start over (``fresh``: the folder is removed first),
    write it, or reuse it — the line that says which."""
    if fresh and root.exists():
        # the demo's owner folders too (keys, signed checkpoints: outside the mesh folder),
        # or the new, empty ledgers would read as cut ones
        if find_contracts(root):
            for product in open_mesh(root).products.values():
                shutil.rmtree(product.owner_dir, ignore_errors=True)
        shutil.rmtree(root)
        return (f"== mesh_nb demo: a fresh mesh at {root.resolve()} (the old one and its "
                "ledgers were removed)")
    if root.is_dir() and find_contracts(root):
        entries = sum(len(p.ledger) for p in open_mesh(root).products.values())
        shown = root if root.is_absolute() else f"./{root}"
        return (f"== mesh_nb demo: reusing {shown} (ledger has {plural(entries, 'entry')}); "
                "--fresh to start over")
    return f"== mesh_nb demo: a new mesh at {root.resolve()}"


def run_demo(root: Path, *, seed: int = 7, analyst: str = "demo-analyst",
             fresh: bool = False) -> None:
    """Materialize the demo mesh in ``root`` (or reuse it; ``fresh``: start over), bind
    sessions, show the budget and the ledger."""
    _say(reuse_or_start(root, fresh=fresh))
    mesh = demo_mesh(root, seed=seed)
    for name, product in sorted(mesh.products.items()):
        c = product.contract
        tables = ", ".join(f"{name}.{t.name}" for t in c.tables)
        _say(f"   product {name} (team {c.team}): {tables}; purposes: "
             f"{', '.join(sorted(c.purposes))}")

    _say("\n== binding customers for churn-analysis")
    with mesh.bind("customers", purpose="churn-analysis", analyst=analyst) as session:
        _say(f"   session: {session!r}")
        _say(f"   budget: {session.budget()}")
        for sql, epsilon in QUERIES:
            _say(f"\n-- {sql}  (epsilon {epsilon})")
            try:
                release = session.query(sql, epsilon=epsilon)
            except MeshError as exc:
                _say(f"   refused: {exc}")
                continue
            _say(_indent(release.text_frame().to_string(index=False)))
            _say("   (± is the half-width of the 95% interval of the noise)")
            for note in release.notes:
                _say(f"   note: {note}")
            spent = ("no new cost: the same query was released before, answered from the "
                     "cache" if release.cached else f"epsilon {release.epsilon:g}")
            _say(f"   spent: {spent}; budget left: epsilon "
                 f"{session.budget().epsilon_remaining:g}")

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
        shown = ledger.entries()[-6:]
        _say(f"\n== the owner's ledger of {name} (last {len(shown)} of "
             f"{plural(len(ledger), 'entry')})")
        for e in shown:
            details = ", ".join(f"{k}={v}" for k, v in sorted(e.details.items())
                                if k not in ("query", "query_hash"))
            _say(f"   #{e.seq:<4} {e.kind:<16} {e.analyst or '-':<13} {e.purpose or '-':<18}"
                 f" {details}".rstrip())
        _say(f"   verify: ok — {ledger.verify()}; chain and owner signature intact")
