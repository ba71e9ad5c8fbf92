"""``mesh-nb``: the command line over the same Python API the notebook uses."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from .errors import MeshError
from .files import DEFAULT_DEMO_DIR
from .text import escape

# Every sub-command imports what it uses (the mesh, pandas, presidio, ...) inside its cmd_*
# function: `mesh-nb --help`, `--version` and a parse error load none of it.


def _mesh_root(arg: str | None) -> Path:
    return Path(arg or os.environ.get("MESH_NB_ROOT") or ".")


def _open_product_ledger(product: str, mesh: str | None):
    """The ledger of PRODUCT (see :func:`_open_product`)."""
    return _open_product(product, mesh)[1].ledger


def _open_product(product: str, mesh: str | None):
    """(mesh, product): PRODUCT is a product folder, or a product name in the mesh at --mesh /
    MESH_NB_ROOT."""
    from .mesh import open_mesh

    folder = Path(product)
    m = open_mesh(folder if (folder / "datacontract.yaml").is_file() else _mesh_root(mesh))
    name = next(iter(m.products)) if len(m.products) == 1 and folder.is_dir() else product
    return m, m.product(name)


def cmd_check(args: argparse.Namespace) -> int:
    """Print every problem of the contracts at PATH, and of what they claim about their data
    (a ``unique`` privacy unit); list the products a mesh would skip; exit 1 on a problem."""
    from .contract.load import unique_unit_problems
    from .mesh import broken_products, find_contracts, load_products

    total, files = 0, []
    for path in args.paths:
        p = Path(path)
        found = [p] if p.is_file() else find_contracts(p) if p.is_dir() else []
        if not found:
            print(f"{path}: no datacontract.yaml here — give a product folder, a contract "
                  "file or a mesh folder")
            total += 1
        files += found
    files = list(dict.fromkeys(files))
    loaded = load_products(files)
    broken = {b.file: b for b in broken_products(loaded).values()}
    loaded_from = {p.contract.path: p.contract for p in loaded.products.values()}
    for file in files:
        contract = loaded_from.get(file)
        problems = (list(broken[file].problems) if file in broken
                    else unique_unit_problems(contract) if contract is not None else [])
        for problem in problems:
            print(problem)
        total += len(problems)
        if not problems:
            print(f"{file}: ok")
        for note in contract.notes if contract is not None else ():
            print(f"note: {note}")
    if broken:
        print(f"{len(broken)} product(s) do not load; a mesh opens without them: "
              + ", ".join(f"{b.name} ({b.file})" for b in broken.values()))
    if total:
        print(f"{total} problem(s)", file=sys.stderr)
    return 1 if total else 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Write the demo mesh; without --init, also run the demo session end to end."""
    from .demo import write_demo

    if args.init:
        root = write_demo(Path(args.init), seed=args.seed)
        print(f"demo mesh written to {root}: customers/, sales/, marketing/ and "
              "governance.yaml")
        return 0
    from .demo_run import run_demo

    run_demo(Path(args.dir), seed=args.seed, analyst=args.analyst, fresh=args.fresh)
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
    from .demo import demo_mesh
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
    if args.json:
        for row in report.to_frame().to_dict(orient="records"):
            print(json.dumps({**row, "sample_rows": report.sample_rows, "rows": report.rows}))
    else:
        print(report.to_text(width=100))
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    """Draft an ODCS contract for a data file from its scan."""
    from .contract.draft import draft_contract, read_table
    from .pii import scan

    data = Path(args.file)
    target = Path(args.output) if args.output else data.parent / "datacontract.yaml"
    if target.exists() and not args.force:
        print(f"mesh-nb: {target} exists — pass --force to overwrite, or --output PATH",
              file=sys.stderr)
        return 1
    frame = read_table(data)
    draft = draft_contract(data, args.owner, scan(frame, sample=args.sample), frame,
                           unit=args.unit, contact=args.contact)
    target.write_text(draft.text)
    print(draft.summary())
    print(f"draft contract written to {target}; review it, then `mesh-nb check {target}`")
    return 0


def _format_entry(e) -> str:
    details = escape(", ".join(f"{k}={v}" for k, v in sorted(e.details.items())), 2000)
    spend = f"ε={e.epsilon:g} δ={e.delta:g}" if e.epsilon_micro or e.delta_pico else ""
    return (f"{e.seq:>6}  {e.ts[:19]}  {e.kind:<16} {escape(e.analyst or '-'):<14} "
            f"{escape(e.purpose or '-'):<20} {spend:<18} {details}")


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
    report = ledger.verify(full=args.full, witness=args.witness)
    print(f"ok: {report.entries} entries verified in {report.seconds:.3f} s "
          f"({report.signatures_checked} signature(s) checked; owner checkpoint at "
          f"{report.checkpoint} entries{'; the witness agrees' if args.witness else ''})")
    return 0


def cmd_ledger_migrate(args: argparse.Namespace) -> int:
    from .ledger.config import move_owner_dir

    _, product = _open_product(args.product, args.mesh)
    moved = product.ledger.migrate()
    print(f"migrated {moved} entries: running totals added, old rows kept in entries_v1"
          if moved else "nothing to migrate: the ledger already has running totals")
    product.ledger.close()
    target = move_owner_dir(product.folder, product.name)
    if target is not None:
        print(f"the owner's key and checkpoint moved out of the product folder to {target}")
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


# -- mesh governance (mesh_nb.governance) ------------------------------------------------------

def cmd_govern(args: argparse.Namespace) -> int:
    """Check the mesh's governance.yaml on every product; exit 1 on an error-level violation."""
    import warnings

    from .governance import dumps, evaluate, find_governance, to_html, to_text
    from .mesh import MeshWarning, open_mesh

    with warnings.catch_warnings():  # listed below, after the report
        warnings.simplefilter("ignore", MeshWarning)
        mesh = open_mesh(args.mesh_dir)
    if args.rules is None and find_governance(mesh.root) is None:
        print(f"no governance.yaml at {mesh.root}: no mesh-wide rules to check "
              "(see docs/governance.md)", file=sys.stderr)
    report = evaluate(mesh, args.rules, product=args.product, data=not args.contract_only,
                      ledger=not args.contract_only, sample_rows=args.sample_rows)
    text = {"text": to_text, "json": dumps, "html": to_html}[args.format](report)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"{args.format} report written to {args.out}: {len(report.errors)} error(s), "
              f"{len(report.warnings)} warning(s)", file=sys.stderr)
    else:
        print(text)
    skipped = list(dict.fromkeys(mesh.broken.values()))
    if skipped:
        lines = [f"skipped: {len(skipped)} product(s) whose contract does not load; no rule "
                 "was checked on them (fix them, see `mesh-nb check`):"]
        lines += [f"  {b.name}: {problem}" for b in skipped for problem in b.problems]
        print("\n".join(lines), file=sys.stdout if args.format == "text" and not args.out
              else sys.stderr)
    return 1 if not report.passed else 2 if skipped else 0


def _govern_command(sub) -> None:
    govern = sub.add_parser(
        "govern", help="check the mesh-wide rules (governance.yaml) on every product",
        epilog="Exit status: 0 when no error-level rule is broken, 1 when one is, 2 when the "
               "mesh, a product's contract or governance.yaml cannot be read (the other "
               "products are still checked). See docs/governance.md.")
    govern.add_argument("mesh_dir", metavar="MESH_DIR", help="the mesh folder")
    govern.add_argument("--product", "-p", metavar="P", help="only this product")
    govern.add_argument("--format", "-f", choices=("text", "html", "json"), default="text",
                        help="report format (default text)")
    govern.add_argument("--out", "-o", metavar="FILE", help="write the report here")
    govern.add_argument("--rules", metavar="FILE",
                        help="governance file (default: MESH_DIR/governance.yaml)")
    govern.add_argument("--contract-only", action="store_true",
                        help="check contracts only: no data sample, no ledger (fast)")
    govern.add_argument("--sample-rows", type=int, default=10_000, metavar="N",
                        help="rows sampled per table for the PII scan (default 10000)")
    govern.set_defaults(func=cmd_govern)


# -- the owner's mesh server (mesh_nb.server) --------------------------------------------------

def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the products under MESH_DIR to analysts holding tokens."""
    from .server import serve

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"mesh-nb: serving on {args.host}: plain HTTP — put a TLS reverse proxy in "
              "front (docs/deploy.md)", file=sys.stderr)
    serve(args.mesh_dir, args.host, args.port, log_file=args.log_file, max_body=args.max_body)
    return 0


def _server_db(mesh: str | None):
    from .mesh import open_mesh
    from .server.db import ServerDb

    root = _mesh_root(mesh)
    open_mesh(root)  # a mesh must be there: tokens of a folder without products are a typo
    return ServerDb(root)


def cmd_token_add(args: argparse.Namespace) -> int:
    """Issue a token; the secret is printed once and stored only as a hash."""
    from .server.tokens import TokenStore

    tok, secret = TokenStore(_server_db(args.mesh)).issue(
        args.name, tuple(args.purpose or ()), args.expires, args.rate)
    print(secret)
    print(f"token {tok.id} for `{tok.name}`: purposes "
          f"{', '.join(tok.purposes) or 'any declared'}, expires {tok.expires or 'never'}, "
          f"{tok.rate} requests/min — give the line above to the analyst once (it is not "
          "stored)", file=sys.stderr)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    from .server.tokens import TokenStore

    tokens = TokenStore(_server_db(args.mesh)).list()
    print(f"{'id':<13} {'name':<20} {'state':<8} {'expires':<26} {'rate':>5}  purposes")
    for t in tokens:
        print(f"{t.id:<13} {escape(t.name):<20} {t.state:<8} {t.expires or '-':<26} "
              f"{t.rate:>5}  {escape(', '.join(t.purposes)) or '(any)'}")
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from .server.tokens import TokenStore

    for t in TokenStore(_server_db(args.mesh)).revoke(args.which):
        print(f"revoked token {t.id} of `{t.name}`")
    return 0


def _approvals(mesh: str | None):
    from .mesh import open_mesh
    from .server.approvals import Approvals
    from .server.db import ServerDb

    m = open_mesh(_mesh_root(mesh))
    return Approvals(ServerDb(m.root), m)


def cmd_requests(args: argparse.Namespace) -> int:
    """Purpose requests waiting for an approver (all of them with --all)."""
    found = _approvals(args.mesh).of(status=None if args.all else "pending")
    for r in found:
        print(f"{escape(r.id)}  {r.created[:19]}  {r.status:<8} {escape(r.analyst):<20} "
              f"{escape(r.purpose):<20} {escape(','.join(r.products))}  reason: "
              f"{escape(r.reason, 2000)}"
              + (f"  ({escape(r.decided_by)}: {escape(r.note, 2000)})" if r.note else ""))
    print(f"{len(found)} request(s)")
    return 0


def _decide(args: argparse.Namespace, approve: bool) -> int:
    from .session import resolve_analyst

    r = _approvals(args.mesh).decide(args.id, approve, args.approver or resolve_analyst(None),
                                     getattr(args, "reason", None))
    print(f"request {r.id} {r.status}: `{r.analyst}` for {r.purpose} on "
          f"{', '.join(r.products)} (recorded in the ledger)")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    return _decide(args, True)


def cmd_deny(args: argparse.Namespace) -> int:
    return _decide(args, False)


def _server_commands(sub) -> None:
    from .server import DEFAULT_HOST, DEFAULT_PORT, MAX_BODY

    serve = sub.add_parser("serve", help="serve the products under MESH_DIR to token holders",
                           epilog="Plain HTTP: behind a TLS reverse proxy in production "
                                  "(docs/deploy.md). Needs pip install 'mesh_nb[server]'.")
    serve.add_argument("mesh_dir", metavar="MESH_DIR", help="the mesh folder to serve")
    serve.add_argument("--host", default=DEFAULT_HOST, help=f"default {DEFAULT_HOST}")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    serve.add_argument("--log-file", help="the access log (default: stderr); never holds a "
                                          "data value")
    serve.add_argument("--max-body", type=int, default=MAX_BODY,
                       help=f"largest request body in bytes (default {MAX_BODY})")
    serve.set_defaults(func=cmd_serve)

    token = sub.add_parser("token", help="analyst tokens of the mesh server")
    tsub = token.add_subparsers(dest="token_command", required=True)
    add = tsub.add_parser("add", help="issue a token (printed once; stored as a hash)")
    add.add_argument("name", metavar="NAME", help="the analyst; their name in the ledger")
    add.add_argument("--purpose", action="append", metavar="P",
                     help="a purpose the token may bind (repeat; default: any declared)")
    add.add_argument("--expires", help="a span (30d, 12h, 90m) or an ISO date/time")
    add.add_argument("--rate", type=int, help="requests per minute (default 600)")
    lst = tsub.add_parser("list", help="every token: id, name, state, expiry, purposes")
    rev = tsub.add_parser("revoke", help="revoke a token by id, or every token of a name")
    rev.add_argument("which", metavar="ID_OR_NAME",
                     help="a token id (see token list), or a name: all its tokens")
    for p, func in ((add, cmd_token_add), (lst, cmd_token_list), (rev, cmd_token_revoke)):
        p.add_argument("--mesh", help="mesh folder (default: $MESH_NB_ROOT or .)")
        p.set_defaults(func=func)

    reqs = sub.add_parser("requests", help="purpose requests waiting for approval")
    reqs.add_argument("--all", action="store_true", help="decided ones too")
    reqs.set_defaults(func=cmd_requests)
    approve = sub.add_parser("approve", help="approve a purpose request")
    deny = sub.add_parser("deny", help="deny a purpose request, saying why")
    deny.add_argument("--reason", required=True, help="told to the analyst and kept in the ledger")
    for p, func in ((approve, cmd_approve), (deny, cmd_deny)):
        p.add_argument("id", metavar="ID", help="the request id (see mesh-nb requests)")
        p.set_defaults(func=func)
    for p in (reqs, approve, deny):
        p.add_argument("--mesh", help="mesh folder (default: $MESH_NB_ROOT or .)")
    for p in (approve, deny):
        p.add_argument("--as", dest="approver", metavar="NAME",
                       help="the approver as the contract names them (default: the OS user)")


class ShowVersion(argparse.Action):
    """``--version``: the version in the package metadata, read only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from . import __version__

        print(f"mesh-nb {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mesh-nb", description="mesh-nb: the command line over the same Python API the "
                                    "notebook uses. Each command has its own --help.")
    parser.add_argument("--version", action=ShowVersion,
                        help="print the installed version of mesh_nb and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="write the demo mesh and run a demo session")
    demo.add_argument("--init", metavar="DIR", help="only write the demo mesh into DIR")
    demo.add_argument("--dir", default=DEFAULT_DEMO_DIR,
                      help=f"where the demo mesh lives (default: ./{DEFAULT_DEMO_DIR})")
    demo.add_argument("--seed", type=int, default=7,
                      help="seed of the generated people and sales (default 7)")
    demo.add_argument("--analyst", default="demo-analyst",
                      help="who the demo session binds as (default demo-analyst)")
    demo.add_argument("--fresh", action="store_true",
                      help="remove the demo mesh (and its ledger) first and start over")
    demo.add_argument("--no-notebook", action="store_true",
                      help="skip running example notebook 01 headlessly")
    demo.set_defaults(func=cmd_demo)

    lab = sub.add_parser("lab", help="JupyterLab on the example notebooks with the demo mesh",
                         epilog="Any other argument goes to jupyter lab, e.g. "
                                "mesh-nb lab --no-browser --port 8899. The notebooks are "
                                "copied to DIR/notebooks; copies already there are kept.")
    lab.add_argument("--dir", default=DEFAULT_DEMO_DIR,
                     help=f"where the demo mesh lives (default: ./{DEFAULT_DEMO_DIR})")
    lab.set_defaults(func=cmd_lab, lab_args=[])  # other arguments: jupyter lab's (see main)

    check = sub.add_parser("check", help="check contracts; prints file:line: field: problem")
    check.add_argument("paths", nargs="+", metavar="PATH",
                       help="a contract file, a product folder or a mesh folder")
    check.set_defaults(func=cmd_check)

    scan = sub.add_parser("scan", help="scan a csv / parquet / jsonl file for personal data")
    scan.add_argument("file", metavar="FILE", help="the data file to scan")
    scan.add_argument("--sample", type=int, default=200,
                      help="distinct values sampled per column (default 200)")
    scan.add_argument("--json", action="store_true",
                      help="one JSON object per column (evidence and candidates too)")
    scan.set_defaults(func=cmd_scan)

    init = sub.add_parser("init", help="draft a contract for a data file from its scan")
    init.add_argument("file", metavar="FILE", help="the data file the contract describes")
    init.add_argument("--owner", required=True, metavar="TEAM", help="the owning team")
    init.add_argument("--output", "-o", help="where to write (default: datacontract.yaml "
                                             "next to FILE)")
    init.add_argument("--force", action="store_true", help="overwrite an existing contract")
    init.add_argument("--unit", metavar="COL",
                      help="the column naming the protected person (default: a unique id "
                           "column, when there is exactly one)")
    init.add_argument("--contact", metavar="EMAIL",
                      help="the owner's e-mail: team owner and support contact (default: "
                           "the OS user)")
    init.add_argument("--sample", type=int, default=200,
                      help="distinct values sampled per column (default 200)")
    init.set_defaults(func=cmd_init)

    ledger = sub.add_parser("ledger", help="the owner's ledger of a product")
    lsub = ledger.add_subparsers(dest="ledger_command", required=True)
    for name, func, text in (("show", cmd_ledger_show, "list entries"),
                             ("verify", cmd_ledger_verify, "check chain, signatures, checkpoint"),
                             ("export", cmd_ledger_export,
                              "sessions and releases as OpenLineage run events"),
                             ("migrate", cmd_ledger_migrate,
                              "add running totals to a ledger written by an older mesh_nb, "
                              "and move an in-folder .owner/ out")):
        p = lsub.add_parser(name, help=text)
        p.add_argument("product", metavar="PRODUCT", help="product folder or product name")
        p.add_argument("--mesh", help="mesh folder (default: $MESH_NB_ROOT or .)")
        p.set_defaults(func=func)
        if name == "show":
            p.add_argument("--purpose", help="only entries of this purpose")
            p.add_argument("--analyst", help="only entries of this analyst")
            p.add_argument("--kind", help="only entries of this kind, e.g. release")
            p.add_argument("--since", help="ISO date or time, e.g. 2026-11-01")
            p.add_argument("--json", action="store_true", help="one JSON object per line")
        elif name == "verify":
            p.add_argument("--full", action="store_true",
                           help="check every entry's signature (slower)")
            p.add_argument("--witness", metavar="FILE",
                           help="a copy of the owner's checkpoint.slots kept elsewhere: the "
                                "ledger must still hold the entry it recorded")
        elif name == "export":
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
    _govern_command(sub)
    _server_commands(sub)
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
