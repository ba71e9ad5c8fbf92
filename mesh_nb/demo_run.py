"""``mesh-nb demo``: the demo mesh end to end, printed for a person to read."""

from __future__ import annotations

from pathlib import Path

from .errors import MeshError
from .mesh import demo_mesh


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

    for name in sorted(mesh.products):
        ledger = mesh.ledger(name)
        _say(f"\n== the owner's ledger of {name} (last 6 of {len(ledger)} entries)")
        for e in ledger.entries()[-6:]:
            details = ", ".join(f"{k}={v}" for k, v in sorted(e.details.items()))
            _say(f"   #{e.seq:<4} {e.kind:<15} {e.analyst or '-':<13} {e.purpose or '-':<15}"
                 f" {details}")
        report = ledger.verify()
        _say(f"   verify: ok, {report.entries} entries, chain and owner signature intact")
