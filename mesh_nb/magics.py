"""IPython magics: thin argument parsers over the Python API.

``%mesh_bind PRODUCT[,PRODUCT] --purpose P [--as NAME] [--acknowledge] [--mesh PATH]`` binds
(no arguments: a form); ``%mesh_status`` shows the binding and the budget left;
``%%mesh_query`` runs a query (``%mesh_query SELECT ...`` a one-line one; ``%mesh_query``
alone prints its help); ``%%mesh_fit --model NAME`` trains a DP model on the features the
cell lists; ``%mesh_scan df`` scans a frame for PII now;
``%mesh_ledger PRODUCT`` browses the owner's ledger. After every cell
the autoscan checks new or changed frames in the background. The bound session and the mesh
the magics use are the state, kept on the magics object of the shell.

A line magic's trailing ``# comment`` is dropped as a shell would (``#`` starting a word,
outside quotes).
"""

from __future__ import annotations

import os
import re
import sys
import weakref
from functools import wraps
from html import escape
from typing import TYPE_CHECKING

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import HTML, display

from .errors import MeshError
from .session import Session

if TYPE_CHECKING:  # the mesh (pydantic, YAML, cryptography) loads on the first %mesh_bind
    from .mesh import Mesh


def strip_comment(line: str) -> str:
    """``line`` without a trailing shell comment: a ``#`` that starts a word, outside quotes
    (``--purpose x  # why`` gives ``--purpose x``; ``"a # b"`` and ``a#b`` are kept)."""
    quote, escaped, start = None, False, True
    for i, ch in enumerate(line):
        if escaped:
            escaped = False
        elif ch == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and start:
            return line[:i].rstrip()
        start = not quote and ch.isspace()
    return line


def parse_line(magic, line: str):
    """A magic's arguments from its line, trailing comment dropped."""
    return parse_argstring(magic, strip_comment(line))


_SQL_START = re.compile(r"(?:^|\s)((?:SELECT|WITH)\b.*)$", re.IGNORECASE | re.DOTALL)


def split_query_line(line: str) -> tuple[str, str]:
    """``%mesh_query [options] SELECT ...``: (options, SQL); the SQL starts at the first word
    SELECT or WITH (any case) and runs to the end of the line ("" if there is none)."""
    found = _SQL_START.search(line)
    if found is None:
        return line, ""
    return line[:found.start(1)], found.group(1).strip()


def strip_sql_comments(text: str) -> str:
    """``text`` without SQL ``--`` line comments (outside quotes), stripped."""
    out = []
    for row in text.splitlines():
        quote = None
        for i, ch in enumerate(row):
            if quote:
                quote = None if ch == quote else quote
            elif ch in "'\"":
                quote = ch
            elif row.startswith("--", i):
                row = row[:i]
                break
        out.append(row.rstrip())
    return "\n".join(out).strip()


_INT = re.compile(r"[+-]?\d+")


def unquote(text: str | None) -> str | None:
    """An argument without the one pair of quotes around it that IPython's argument split
    keeps (``--where "plan = 'pro'"`` gives ``plan = 'pro'``)."""
    if text and len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def parse_options(items: list[str]) -> dict[str, object]:
    """``["C=0.5", "fit_intercept=false"]`` as ``{"C": 0.5, "fit_intercept": False}``:
    integers, floats and true/false parsed, anything else kept as text (the estimator's
    option check says what it takes)."""
    out: dict[str, object] = {}
    for item in items:
        key, sep, text = unquote(item.strip()).partition("=")
        key, text = key.strip(), unquote(text.strip())
        if not sep or not key.isidentifier() or not text:
            raise UsageError(f"--option takes KEY=VALUE (e.g. -o C=0.5), not `{item[:40]}`")
        if key in out:
            raise UsageError(f"--option {key} is given twice: give it once")
        value: object = text
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        elif _INT.fullmatch(text):
            value = int(text)
        else:
            try:
                value = float(text)
            except ValueError:
                pass
        out[key] = value
    return out


def _short_errors(func):
    """MeshErrors reach the user as one short message, not a traceback."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except MeshError as exc:
            raise UsageError(str(exc)) from None

    return wrapper


@magics_class
class MeshMagics(Magics):
    """The mesh_nb magics and the session they bind."""

    def __init__(self, shell):
        super().__init__(shell)
        self.mesh: Mesh | None = None
        self.session: Session | None = None
        self.autoscan = None  # set by load(): the post-cell PII scan
        self.ledger_browser = None  # the last %mesh_ledger browser
        self.publisher = None  # set by load(): the lab's state comm (mesh_nb.lab.comm)
        self._seen: weakref.WeakValueDictionary[int, Mesh] = weakref.WeakValueDictionary()

    def bound(self) -> Session | None:
        """The bound session, if any and not ended."""
        return self.session if self.session is not None and not self.session.ended else None

    def notice(self) -> None:
        """Take a mesh the notebook opened since the last look (a ``Mesh`` new in its
        namespace; of several, the one bound to a name last) as the one to use."""
        loaded = sys.modules.get("mesh_nb.mesh")  # no Mesh exists before its module loads
        if loaded is None:
            return
        for value in list(self.shell.user_ns.values()):
            if isinstance(value, loaded.Mesh) and self._seen.get(id(value)) is not value:
                self._seen[id(value)] = value
                self.mesh = value

    def open(self, path: str | None, server: str | None = None,
             token: str | None = None, insecure: bool = False) -> Mesh:
        """The mesh: --server URL (token: --token or $MESH_TOKEN), --mesh PATH, else the
        last one the notebook or these magics opened, else $MESH_NB_ROOT (a folder or a
        server URL), else the demo in ./mesh-demo (said in a printed line)."""
        from .mesh import open_mesh

        self.notice()
        if server:
            self.mesh = open_mesh(server, token=token, allow_insecure_http=insecure)
        elif path:
            self.mesh = open_mesh(path)
        elif self.mesh is None:
            root = os.environ.get("MESH_NB_ROOT")
            if root:
                self.mesh = open_mesh(root)
            else:
                from .demo import demo_mesh

                self.mesh = demo_mesh()
                print(f"mesh_nb: no mesh opened in this notebook and no $MESH_NB_ROOT — using "
                      f"the demo mesh at {self.mesh.root} (give --mesh PATH for another)")
        self._seen[id(self.mesh)] = self.mesh
        return self.mesh

    def bind(self, mesh: Mesh, products, purpose: str, analyst: str | None,
             acknowledge: bool, **engine: str | None) -> Session:
        """Bind a new session, ending the one before (``session.ended``)."""
        new = mesh.bind(products, purpose=purpose, analyst=analyst, acknowledge=acknowledge,
                        **{k: v for k, v in engine.items() if v is not None})
        if self.session is not None:
            self.session.end()
        self.session = new
        if self.publisher is not None:  # a bind from the form runs outside any cell
            self.publisher.publish()
        return new

    @magic_arguments()
    @argument("products", nargs="?", help="PRODUCT[,PRODUCT]")
    @argument("--purpose", "-p", help="a purpose every product declares")
    @argument("--as", dest="analyst", help="analyst name (default: $MESH_ANALYST, "
              "$JUPYTERHUB_USER or the OS user)")
    @argument("--acknowledge", action="store_true",
              help="acknowledge a purpose that requires it")
    @argument("--mesh", help="mesh folder (default: $MESH_NB_ROOT, else the demo mesh)")
    @argument("--server", metavar="URL", help="the owner's mesh server instead of a folder")
    @argument("--token", help="the server token (better: $MESH_TOKEN, kept out of the notebook)")
    @argument("--insecure", action="store_true",
              help="allow plain http to a server on another machine (the token is not "
                   "encrypted: only on a network you trust)")
    @argument("--request", metavar="REASON", help="ask the approvers for a purpose that needs "
              "approval (server only); bind again once approved")
    @argument("--engine", choices=["duckdb", "spark"],
              help="run queries on this engine (default: what the contracts say, else DuckDB)")
    @argument("--spark-remote", metavar="sc://HOST:PORT",
              help="a Spark Connect cluster for the queries (implies --engine spark)")
    @line_magic
    @_short_errors
    def mesh_bind(self, line: str):
        """Bind this notebook to a purpose; with no arguments, show a form."""
        args = parse_line(self.mesh_bind, line)
        mesh = self.open(args.mesh, args.server, args.token, args.insecure)
        if args.request:
            return self._request(mesh, args.products, args.purpose, args.request)
        if not args.products and not args.purpose:
            from .widgets.bind import BindForm

            form = BindForm(mesh, on_bind=lambda p, pur, who, ack: self.bind(
                mesh, p, pur, who, ack))
            display(form)
            return None
        if not args.products or not args.purpose:
            raise UsageError("give both: %mesh_bind PRODUCT --purpose PURPOSE "
                             "(or no arguments for the form)")
        session = self.bind(mesh, args.products, args.purpose, args.analyst, args.acknowledge,
                            engine=args.engine, spark_remote=args.spark_remote)
        display(status_view(session))
        return None

    def _request(self, mesh: Mesh, products: str | None, purpose: str | None,
                 reason: str) -> None:
        """``%mesh_bind P --purpose X --request REASON``: a purpose request to the approvers."""
        if not hasattr(mesh, "request"):
            raise UsageError("approvals are the owner's server's: open it with --server URL")
        if not products or not purpose:
            raise UsageError("give both: %mesh_bind PRODUCT --purpose PURPOSE --request REASON")
        req = mesh.request(products, purpose, reason)
        display(HTML(f"<div class='mesh-nb-status'>purpose request <b>{req.id}</b> for "
                     f"{escape(req.purpose)} is {req.status}; run %mesh_bind {escape(products)} "
                     f"--purpose {escape(purpose)} once an approver approved it</div>"))

    @magic_arguments()
    @argument("--epsilon", "-e", type=float, help="the whole query's epsilon "
              "(default: the purpose's)")
    @argument("--delta", "-d", type=float, help="delta, spent only where the plan needs it")
    @argument("--save", "-s", metavar="NAME", help="keep the Release as NAME in the notebook")
    @argument("--explain", action="store_true", help="show the plan and noise; spend nothing")
    @argument("--mechanism", "-m", default="laplace", choices=["laplace", "gaussian"],
              help="noise for sums (counts: geometric, quantiles: exponential)")
    @line_cell_magic
    @_short_errors
    def mesh_query(self, line: str, cell: str | None = None):
        """A differentially private SQL query over the bound products.

        ``%%mesh_query [options]`` runs the cell's query; ``%mesh_query [options] SELECT ...``
        runs a one-line query (it starts at the word SELECT or WITH); ``%mesh_query`` alone
        prints this help."""
        if cell is None:
            line, cell = split_query_line(strip_comment(line))
            if not cell:
                print(self.mesh_query.__doc__)
                return None
        args = parse_line(self.mesh_query, line)
        if self.session is None or self.session.ended:
            raise UsageError("not bound — run %mesh_bind PRODUCT --purpose PURPOSE first")
        if args.explain:
            display(self.session.explain(cell, epsilon=args.epsilon, delta=args.delta,
                                         mechanism=args.mechanism))
            return None
        if self.session.access == "dp-aggregate":
            release = self.session.query(cell, epsilon=args.epsilon, delta=args.delta,
                                         mechanism=args.mechanism)
        else:
            release = self.session.rows(cell)
        if args.save:
            self.shell.user_ns[args.save] = release
        display(release)
        return None

    @magic_arguments()
    @argument("--model", "-m", metavar="NAME", help="the estimator: logistic, naive-bayes, "
              "linear, kmeans, pca (or LogisticRegression, GaussianNB, LinearRegression, "
              "KMeans, PCA)")
    @argument("--target", "-t", metavar="COL", help="the column to predict (classifiers and "
              "linear regression)")
    @argument("--epsilon", "-e", type=float, help="the whole fit's epsilon (default: the "
              "purpose's)")
    @argument("--where", metavar="COND", help="a filter over allowed columns, in quotes")
    @argument("--table", help="the product's table (when it has several)")
    @argument("--product", help="the product to train on (when several are bound)")
    @argument("--no-evaluate", dest="evaluate", action="store_false", default=None,
              help="spend nothing on a held-out estimate")
    @argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
              help="an estimator option, repeatable: -o C=0.5 -o max_iter=50 "
                   "(numbers and true/false parsed)")
    @argument("--save", "-s", metavar="NAME", help="keep the ModelRelease as NAME in the "
              "notebook")
    @argument("--help", "-h", action="store_true", help="print this help")
    @line_cell_magic
    @_short_errors
    def mesh_fit(self, line: str, cell: str | None = None):
        """Train a differentially private model on the owner's side; only the model returns.

        The cell body lists the features as a SELECT list (``monthly_spend, plan, CASE WHEN
        ... END AS band``), checked by the same policy as a query; ``%mesh_fit`` without a
        cell prints this help."""
        args = parse_line(self.mesh_fit, line)
        if cell is None or args.help:
            print(self.mesh_fit.__doc__)
            return None
        if not args.model:
            raise UsageError("give the estimator: %%mesh_fit --model logistic (or "
                             "naive-bayes, linear, kmeans, pca)")
        features = strip_sql_comments(cell)
        if not features:
            raise UsageError("the cell body lists the features: monthly_spend, plan, ...")
        if self.session is None or self.session.ended:
            raise UsageError("not bound — run %mesh_bind PRODUCT --purpose PURPOSE first")
        model = self.session.fit(unquote(args.model), features, unquote(args.target),
                                 epsilon=args.epsilon, where=unquote(args.where),
                                 evaluate=args.evaluate, table=unquote(args.table),
                                 product=unquote(args.product), **parse_options(args.option))
        if args.save:
            self.shell.user_ns[unquote(args.save)] = model
        display(model)
        return None

    @magic_arguments()
    @argument("frame", help="name of a DataFrame in the notebook")
    @argument("--sample", type=int, default=200, help="distinct values sampled per column")
    @line_magic
    @_short_errors
    def mesh_scan(self, line: str):
        """Scan a DataFrame for personal data now and show the full per-column report."""
        from .pii import frame_fingerprint, scan
        from .widgets.alert import alerts_html

        args = parse_line(self.mesh_scan, line)
        frame = self.shell.user_ns.get(args.frame)
        if type(frame).__name__ != "DataFrame":
            raise UsageError(f"`{args.frame}` is not a DataFrame in this notebook")
        report = scan(frame, sample=args.sample, progress=True)
        alerts = self.autoscan.record(args.frame, report, self.bound(),
                                      frame_fingerprint(frame)) if self.autoscan else []
        display(report)
        if alerts:
            display(HTML(alerts_html(alerts)))

    @magic_arguments()
    @argument("product", help="the product whose ledger to browse")
    @argument("--mesh", help="mesh folder (default: the open mesh, $MESH_NB_ROOT, else the demo)")
    @argument("--limit", type=int, default=200, help="entries shown at most (newest first)")
    @line_magic
    @_short_errors
    def mesh_ledger(self, line: str):
        """The owner's ledger browser: filter by purpose, analyst, kind, since; Verify."""
        from .widgets.ledger import LedgerBrowser

        args = parse_line(self.mesh_ledger, line)
        product = self.open(args.mesh).product(args.product)
        self.ledger_browser = LedgerBrowser(product.ledger, limit=args.limit,
                                            purposes=sorted(product.contract.purposes))
        display(self.ledger_browser)

    @line_magic
    @_short_errors
    def mesh_status(self, line: str = ""):
        """The binding and the budget left."""
        display(status_view(self.session))


def status_view(session: Session | None) -> HTML:
    """An HTML (and plain text) view of the binding and its budget."""
    return _Status(session)


class _Status(HTML):
    def __init__(self, session: Session | None):
        self.session = session
        super().__init__(self._html())

    def _lines(self) -> list[str]:
        s = self.session
        if s is None or s.ended:
            return ["mesh: not bound"]
        head = f"mesh: {s.analyst} bound to purpose {s.purpose} ({s.access}), session {s.id}"
        return [head, f"the mesh at {s.mesh.root}"] + [str(b) for b in s.budgets()]

    def _html(self) -> str:
        from html import escape

        lines = self._lines()
        body = "".join(f"<li>{escape(x)}</li>" for x in lines[1:])
        return (f"<div class='mesh-nb-status'><b>{escape(lines[0])}</b>"
                f"{'<ul>' + body + '</ul>' if body else ''}</div>")

    def __repr__(self) -> str:
        return "\n".join(self._lines())


def load(ipython) -> None:
    """Register the magics and the post-cell PII autoscan on ``ipython``."""
    from .autoscan import AutoScan

    magics = MeshMagics(ipython)
    magics.autoscan = AutoScan(ipython, magics.bound)
    ipython.register_magics(magics)
    ipython.events.register("post_run_cell", magics.autoscan.post_run_cell)
    from .display import register
    from .lab.comm import attach

    register(ipython)
    attach(ipython, magics)  # after the autoscan hook: the lab hears of its alerts too


def unload(ipython) -> None:
    """Remove the magics, ending the bound session."""
    manager = ipython.magics_manager
    for magics in [m for m in manager.registry.values() if isinstance(m, MeshMagics)]:
        from .lab.comm import detach

        detach(ipython, magics)
        if magics.autoscan is not None:
            ipython.events.unregister("post_run_cell", magics.autoscan.post_run_cell)
            magics.autoscan.close()
        if magics.session is not None:
            magics.session.end()
        for kind, names in magics.magics.items():
            for name in names:
                manager.magics[kind].pop(name, None)
        manager.registry.pop(type(magics).__name__, None)
    from .display import unregister

    unregister(ipython)
