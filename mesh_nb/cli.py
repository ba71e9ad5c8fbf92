"""``mesh-nb``: the command line over the same Python API the notebook uses."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from .contract import check_contract
from .errors import MeshError
from .mesh import DEFAULT_DEMO_DIR, find_contracts, open_mesh


def _mesh_root(arg: str | None) -> Path:
    return Path(arg or os.environ.get("MESH_NB_ROOT") or ".")


def _open_product_ledger(product: str, mesh: str | None):
    """The ledger of PRODUCT (see :func:`_open_product`)."""
    return _open_product(product, mesh)[1].ledger


def _open_product(product: str, mesh: str | None):
    """(mesh, product): PRODUCT is a product folder, or a product name in the mesh at --mesh /
    MESH_NB_ROOT."""
    folder = Path(product)
    m = open_mesh(folder if (folder / "datacontract.yaml").is_file() else _mesh_root(mesh))
    name = next(iter(m.products)) if len(m.products) == 1 and folder.is_dir() else product
    return m, m.product(name)


def cmd_check(args: argparse.Namespace) -> int:
    """Print every problem of the contracts at PATH; exit 1 if there is one."""
    total, files = 0, []
    for path in args.paths:
        p = Path(path)
        found = [p] if p.is_file() else find_contracts(p) if p.is_dir() else []
        if not found:
            print(f"{path}: no datacontract.yaml here — give a product folder, a contract "
                  "file or a mesh folder")
            total += 1
        files += found
    for file in files:
        _, problems = check_contract(file)
        for problem in problems:
            print(problem)
        total += len(problems)
        if not problems:
            print(f"{file}: ok")
    if total:
        print(f"{total} problem(s)", file=sys.stderr)
    return 1 if total else 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Write the demo mesh; without --init, also run the demo session end to end."""
    from .demo import write_demo

    if args.init:
        root = write_demo(Path(args.init), seed=args.seed)
        print(f"demo mesh written to {root}: customers/ and sales/")
        return 0
    from .demo_run import run_demo

    run_demo(Path(args.dir), seed=args.seed, analyst=args.analyst)
    if not args.no_notebook:
        from .notebooks import QUICKSTART, run_notebook

        print(f"\n== example notebook {QUICKSTART}, executed headlessly: its key outputs",
              flush=True)
        for heading, text in run_notebook():
            print(f"\n-- {heading}")
            if text:
                print("\n".join("   " + line for line in text.splitlines()[:20]))
    return 0


def cmd_lab(args: argparse.Namespace) -> int:
    """Open JupyterLab on the example notebooks, with the demo mesh as the mesh root."""
    from .mesh import demo_mesh
    from .notebooks import open_lab

    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        print("mesh-nb: JupyterLab is not installed — pip install 'mesh_nb[lab]'",
              file=sys.stderr)
        return 2
    mesh = demo_mesh(args.dir)
    return open_lab(mesh.root, extra_args=args.lab_args)


def cmd_scan(args: argparse.Namespace) -> int:
    """Scan a data file for PII and print the per-column report."""
    from .contract.draft import read_table
    from .pii import scan

    frame = read_table(args.file)
    report = scan(frame, sample=args.sample, progress=sys.stderr.isatty())
    print(report.to_frame().to_string(index=False))
    print(f"{len(report.entities())} of {len(report.columns)} column(s) hold personal data "
          f"({report.rows} rows, {report.cpu_seconds:.2f} CPU s)")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    """Draft an ODCS contract for a data file from its scan."""
    from .contract.draft import draft_contract, read_table
    from .pii import scan

    data = Path(args.file)
    frame = read_table(data)
    text = draft_contract(data, args.owner, scan(frame, sample=args.sample), frame)
    target = Path(args.output) if args.output else data.parent / "datacontract.yaml"
    if target.exists() and not args.force:
        print(f"mesh-nb: {target} exists — pass --force to overwrite, or --output PATH",
              file=sys.stderr)
        return 1
    target.write_text(text)
    print(f"draft contract written to {target}; review it, then `mesh-nb check {target}`")
    return 0


def _format_entry(e) -> str:
    details = ", ".join(f"{k}={v}" for k, v in sorted(e.details.items()))
    spend = f"ε={e.epsilon:g} δ={e.delta:g}" if e.epsilon_micro or e.delta_pico else ""
    return (f"{e.seq:>6}  {e.ts[:19]}  {e.kind:<16} {e.analyst or '-':<14} "
            f"{e.purpose or '-':<20} {spend:<18} {details}")


def cmd_ledger_show(args: argparse.Namespace) -> int:
    ledger = _open_product_ledger(args.product, args.mesh)
    entries = ledger.entries(kind=args.kind, purpose=args.purpose, analyst=args.analyst,
                             since=args.since)
    if args.json:
        for e in entries:
            print(json.dumps({"seq": e.seq, "ts": e.ts, "kind": e.kind, "session": e.session,
                              "analyst": e.analyst, "purpose": e.purpose,
                              "epsilon": e.epsilon, "delta": e.delta, "details": e.details},
                             sort_keys=True))
        return 0
    print(f"{'seq':>6}  {'when (UTC)':<19}  {'kind':<16} {'analyst':<14} {'purpose':<20} "
          f"{'spent':<18} details")
    for e in entries:
        print(_format_entry(e))
    print(f"{len(entries)} of {len(ledger)} entries")
    return 0


def cmd_ledger_verify(args: argparse.Namespace) -> int:
    ledger = _open_product_ledger(args.product, args.mesh)
    report = ledger.verify(full=args.full)
    print(f"ok: {report.entries} entries verified in {report.seconds:.3f} s "
          f"({report.signatures_checked} signature(s) checked; owner checkpoint at "
          f"{report.checkpoint} entries)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write the owner's self-contained HTML usage report of PRODUCT."""
    from .review import usage_report

    _, product = _open_product(args.product, args.mesh)
    report = usage_report(product, since=args.since)
    out = report.save(args.out)
    print(report.summary())
    print(f"report written to {out}")
    return 0


def cmd_ledger_export(args: argparse.Namespace) -> int:
    """Write PRODUCT's sessions and releases as OpenLineage run events (JSON lines)."""
    from .review import export_openlineage

    mesh, product = _open_product(args.product, args.mesh)
    print(export_openlineage(product, args.openlineage, since=args.since, mesh=mesh))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """Say what the change from contract OLD to NEW does to each purpose."""
    from .review import diff_contracts

    diff = diff_contracts(args.old, args.new)
    print(diff)
    return 1 if args.strict and diff.widening else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mesh-nb", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="write the demo mesh and run a demo session")
    demo.add_argument("--init", metavar="DIR", help="only write the demo mesh into DIR")
    demo.add_argument("--dir", default=DEFAULT_DEMO_DIR,
                      help=f"where the demo mesh lives (default: ./{DEFAULT_DEMO_DIR})")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--analyst", default="demo-analyst")
    demo.add_argument("--no-notebook", action="store_true",
                      help="skip running example notebook 01 headlessly")
    demo.set_defaults(func=cmd_demo)

    lab = sub.add_parser("lab", help="JupyterLab on the example notebooks with the demo mesh",
                         epilog="Any other argument goes to jupyter lab, e.g. "
                                "`mesh-nb lab --no-browser --port 8899`. The notebooks are "
                                "copied to DIR/notebooks; copies already there are kept.")
    lab.add_argument("--dir", default=DEFAULT_DEMO_DIR,
                     help=f"where the demo mesh lives (default: ./{DEFAULT_DEMO_DIR})")
    lab.set_defaults(func=cmd_lab, lab_args=[])  # other arguments: jupyter lab's (see main)

    check = sub.add_parser("check", help="check contracts; prints file:line: field: problem")
    check.add_argument("paths", nargs="+", metavar="PATH")
    check.set_defaults(func=cmd_check)

    scan = sub.add_parser("scan", help="scan a csv / parquet / jsonl file for personal data")
    scan.add_argument("file", metavar="FILE")
    scan.add_argument("--sample", type=int, default=200,
                      help="distinct values sampled per column (default 200)")
    scan.set_defaults(func=cmd_scan)

    init = sub.add_parser("init", help="draft a contract for a data file from its scan")
    init.add_argument("file", metavar="FILE")
    init.add_argument("--owner", required=True, metavar="TEAM", help="the owning team")
    init.add_argument("--output", "-o", help="where to write (default: datacontract.yaml "
                                             "next to FILE)")
    init.add_argument("--force", action="store_true", help="overwrite an existing contract")
    init.add_argument("--sample", type=int, default=200)
    init.set_defaults(func=cmd_init)

    ledger = sub.add_parser("ledger", help="the owner's ledger of a product")
    lsub = ledger.add_subparsers(dest="ledger_command", required=True)
    for name, func, text in (("show", cmd_ledger_show, "list entries"),
                             ("verify", cmd_ledger_verify, "check chain, signatures, checkpoint"),
                             ("export", cmd_ledger_export,
                              "sessions and releases as OpenLineage run events")):
        p = lsub.add_parser(name, help=text)
        p.add_argument("product", metavar="PRODUCT", help="product folder or product name")
        p.add_argument("--mesh", help="mesh folder (default: $MESH_NB_ROOT or .)")
        p.set_defaults(func=func)
        if name == "show":
            p.add_argument("--purpose")
            p.add_argument("--analyst")
            p.add_argument("--kind")
            p.add_argument("--since", help="ISO date or time, e.g. 2026-11-01")
            p.add_argument("--json", action="store_true", help="one JSON object per line")
        elif name == "verify":
            p.add_argument("--full", action="store_true",
                           help="check every entry's signature (slower)")
        else:
            p.add_argument("--openlineage", required=True, metavar="FILE",
                           help="write the events here, one JSON event per line")
            p.add_argument("--since", help="ISO date or time, or a span like 30d")

    report = sub.add_parser("report", help="the owner's HTML usage report of a product")
    report.add_argument("product", metavar="PRODUCT", help="product folder or product name")
    report.add_argument("--mesh", help="mesh folder (default: $MESH_NB_ROOT or .)")
    report.add_argument("--since", help="ISO date or time, or a span like 30d (default: all)")
    report.add_argument("--out", "-o", default="report.html",
                        help="where to write the HTML (default: report.html)")
    report.set_defaults(func=cmd_report)

    diff = sub.add_parser("diff", help="what a contract change does to each purpose")
    diff.add_argument("old", metavar="OLD", help="the published contract (file or folder)")
    diff.add_argument("new", metavar="NEW", help="the changed contract (file or folder)")
    diff.add_argument("--strict", action="store_true",
                      help="exit 1 when a change widens access or loosens a budget")
    diff.set_defaults(func=cmd_diff)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mesh-nb`` console script."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and getattr(args, "func", None) is not cmd_lab:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if rest:
        args.lab_args = rest  # `mesh-nb lab --no-browser --port 8899`: jupyter lab's own
    try:
        return args.func(args)
    except MeshError as exc:
        print(f"mesh-nb: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
