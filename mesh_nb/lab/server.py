"""The jupyter_server extension: the owners' view of the mesh over authenticated REST.

Enabled by ``{"ServerApp": {"jpserver_extensions": {"mesh_nb.lab": true}}}`` (installed with the
wheel). Reads the products under one folder, the mesh root: ``MeshNbApp.mesh_root`` in the
server's config, else ``$MESH_NB_ROOT``. Nothing outside it is read: a product is named by its
contract name, never by a path, and a product whose contract or ledger resolves (symlinks
followed) outside the root is refused. No data value is served: ledger details are filtered to
the ledger's allowlisted keys.

Routes (all ``GET``, all authenticated, JSON):

- ``/mesh-nb/api/products`` — every product: name, owners, domain, purposes (description,
  legal basis, access, budget), whether it has a ledger, plus contract problems found.
- ``/mesh-nb/api/products/NAME`` — one product.
- ``/mesh-nb/api/products/NAME/ledger?purpose=&analyst=&kind=&session=&since=&limit=&verify=``
  — the product's ledger entries, newest first, and (``verify=1``, the default) its verify
  status. Only for the product's owner: the owner key must be on this server.
- ``/mesh-nb/api/products/NAME/verify`` — the verify status alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.extension.handler import ExtensionHandlerMixin
from traitlets import Float, Int, Unicode

API = "mesh-nb/api"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
DEFAULT_LIMIT = 100
CATALOG_TTL = 5.0


class Refused(Exception):
    """A request for something outside the mesh root (HTTP 403)."""


def inside(root: Path, path: Path) -> bool:
    """True when ``path`` with every symlink resolved lies under the resolved ``root``."""
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except (ValueError, OSError, RuntimeError):
        return False


def check_name(name: str) -> str:
    """A product name as given in a URL; :class:`Refused` for anything that looks like a path."""
    if not name or "/" in name or "\\" in name or ".." in name or name.startswith(("~", ".")) \
            or "\x00" in name or os.path.isabs(name):
        raise Refused(f"`{name}` is a path, not a product name — products are named by their "
                      "contract's `name:`")
    if not NAME_RE.match(name):
        raise tornado.web.HTTPError(404, f"no product named `{name}` under the mesh root")
    return name


def entry_json(entry: Any) -> dict[str, Any]:
    """One ledger entry as JSON; details filtered to the allowlisted keys (no data values)."""
    from ..ledger.entry import DETAIL_TYPES

    details = {k: v for k, v in (entry.details or {}).items() if k in DETAIL_TYPES}
    return {"seq": entry.seq, "ts": entry.ts, "kind": entry.kind, "product": entry.product,
            "session": entry.session, "analyst": entry.analyst, "purpose": entry.purpose,
            "epsilon": entry.epsilon, "delta": entry.delta, "details": details,
            "hash": entry.hash}


def verify_json(ledger: Any) -> dict[str, Any]:
    """``Ledger.verify()`` as JSON: ok, or the first bad entry and why."""
    from ..errors import LedgerTampered

    try:
        report = ledger.verify()
    except LedgerTampered as exc:
        return {"ok": False, "seq": exc.seq, "reason": exc.reason, "message": str(exc)}
    except Exception as exc:  # an unreadable ledger is not OK either
        return {"ok": False, "seq": None, "reason": type(exc).__name__, "message": str(exc)}
    return {"ok": True, "entries": report.entries, "checkpoint": report.checkpoint,
            "seconds": round(report.seconds, 4), "message": str(report)}


class Catalog:
    """The products under a mesh root, re-read at most every ``ttl`` seconds.

    Each contract is loaded on its own, so one broken contract does not hide the others
    (its problems are listed). Ledgers are opened only when their file exists and the owner's
    key is here, so reading never creates a ledger or a key.
    """

    def __init__(self, root: str | os.PathLike | None, ttl: float = CATALOG_TTL):
        self.root = Path(root).expanduser().resolve() if root else None
        self.ttl = ttl
        self._lock = threading.Lock()
        self._loaded = 0.0
        self._products: dict[str, Any] = {}
        self._problems: list[str] = []
        self._ledgers: dict[str, Any] = {}

    def _load(self) -> None:
        from ..mesh import find_contracts, load_products

        products, problems, files = {}, [], []
        if self.root is not None and self.root.is_dir():
            for file in find_contracts(self.root):
                if inside(self.root, file):
                    files.append(file)
                else:
                    problems.append(f"{file.relative_to(self.root)}: resolves outside the "
                                    "mesh root — skipped")
            loaded = load_products(files, count_rows=False)
            products = loaded.products
            problems += [f"{file.relative_to(self.root)}: {exc} — skipped"
                         for file, exc in loaded.broken]
        self._products, self._problems = products, problems
        self._loaded = time.monotonic()

    def products(self) -> dict[str, Any]:
        with self._lock:
            if not self._loaded or time.monotonic() - self._loaded > self.ttl:
                self._load()
            return dict(self._products)

    @property
    def problems(self) -> list[str]:
        return list(self._problems)

    def product(self, name: str) -> Any:
        """The product called ``name``: 403 for paths and products outside the root, else 404."""
        check_name(name)
        if self.root is None:
            raise tornado.web.HTTPError(404, "no mesh root configured (MeshNbApp.mesh_root or "
                                             "$MESH_NB_ROOT)")
        product = self.products().get(name)
        if product is None:
            raise tornado.web.HTTPError(404, f"no product named `{name}` under the mesh root")
        if not inside(self.root, product.folder) or not inside(self.root, product.contract.path):
            raise Refused(f"product `{name}` lies outside the mesh root")
        return product

    def ledger_location(self, product: Any) -> Path | str:
        """The product's ledger: its SQLite file (which must lie inside the mesh root) or the
        PostgreSQL URL its owner configured."""
        location = product.ledger_location
        if isinstance(location, Path) and not inside(self.root, location):
            raise Refused(f"the ledger of `{product.name}` lies outside the mesh root")
        return location

    def has_ledger(self, product: Any, location: Path | str | None = None) -> bool:
        """A SQLite ledger exists once written; a server ledger is always there to read."""
        location = location if location is not None else self.ledger_location(product)
        return location.is_file() if isinstance(location, Path) else True

    def ledger(self, product: Any) -> Any | None:
        """The owner's ledger of ``product``; None when it has none yet; 403 without the key."""
        from ..ledger import Ledger
        from ..ledger.keys import KEY_FILE

        location = self.ledger_location(product)
        if not self.has_ledger(product, location):
            return None
        if not (product.owner_dir / KEY_FILE).is_file():
            raise Refused(f"this server does not hold the owner key of `{product.name}`: its "
                          "ledger is for its owner")
        with self._lock:
            key = str(location.resolve() if isinstance(location, Path) else location)
            ledger = self._ledgers.get(key)
            if ledger is None:
                ledger = self._ledgers[key] = Ledger(location, product.owner_dir, product.name)
            return ledger

    def describe(self, product: Any) -> dict[str, Any]:
        c = product.contract
        purposes = []
        for name, p in sorted(c.purposes.items()):
            budget = None if p.budget is None else {
                "epsilon": p.budget.epsilon, "delta": p.budget.delta, "scope": p.budget.scope}
            purposes.append({"name": name, "description": (p.description or "").strip(),
                             "legal_basis": p.legal_basis, "access": p.access,
                             "budget": budget,
                             "requires_acknowledgement": p.requires_acknowledgement})
        try:
            has_ledger = self.has_ledger(product)
        except Refused:
            has_ledger = False
        return {"name": c.name, "domain": c.domain, "team": c.team, "owners": list(c.owners),
                "description": (c.description or "").strip(),
                "folder": str(product.folder.relative_to(self.root)) if self.root and
                inside(self.root, product.folder) else None,
                "tables": [t.name for t in c.tables], "purposes": purposes,
                "ledger": has_ledger}

    def close(self) -> None:
        with self._lock:
            for ledger in self._ledgers.values():
                ledger.close()
            self._ledgers.clear()


# -- handlers ---------------------------------------------------------------------------------


class _Base(ExtensionHandlerMixin, APIHandler):
    @property
    def catalog(self) -> Catalog:
        return self.extensionapp.catalog

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """JSON errors with a message a person can act on (and never a traceback)."""
        self.set_header("Content-Type", "application/json")
        reason = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, tornado.web.HTTPError) and exc.log_message:
            reason = exc.log_message % exc.args if exc.args else exc.log_message
        self.finish(json.dumps({"status": status_code, "message": reason}))

    async def run(self, fn, *args):
        """Blocking work (SQLite, contract parsing, verify) off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def guarded(self, fn, *args):
        try:
            return await self.run(fn, *args)
        except Refused as exc:
            raise tornado.web.HTTPError(403, str(exc)) from None


class ProductsHandler(_Base):
    @tornado.web.authenticated
    async def get(self) -> None:
        def work():
            products = self.catalog.products()
            return {"root": self.catalog.root.name if self.catalog.root else None,
                    "configured": self.catalog.root is not None,
                    "products": [self.catalog.describe(p) for _, p in sorted(products.items())],
                    "problems": self.catalog.problems}

        self.finish(json.dumps(await self.guarded(work)))


class ProductHandler(_Base):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        def work():
            return self.catalog.describe(self.catalog.product(name))

        self.finish(json.dumps(await self.guarded(work)))


def _since(text: str | None) -> str | None:
    if not text:
        return None
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise tornado.web.HTTPError(400, "since must be an ISO date or time, e.g. "
                                         "2026-01-31 or 2026-01-31T12:00:00+00:00") from None
    return text


class LedgerHandler(_Base):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        from ..ledger import KINDS

        args = {k: (self.get_argument(k, "") or None)
                for k in ("purpose", "analyst", "kind", "session")}
        if args["kind"] is not None and args["kind"] not in KINDS:
            raise tornado.web.HTTPError(400, f"kind must be one of: {', '.join(KINDS)}")
        since = _since(self.get_argument("since", "") or None)
        try:
            limit = int(self.get_argument("limit", str(DEFAULT_LIMIT)))
        except ValueError:
            raise tornado.web.HTTPError(400, "limit must be a whole number") from None
        limit = max(1, min(limit, self.extensionapp.max_entries))
        want_verify = self.get_argument("verify", "1").lower() not in ("0", "false", "no")

        def work():
            product = self.catalog.product(name)
            ledger = self.catalog.ledger(product)
            if ledger is None:
                return {"product": product.name, "total": 0, "matched": 0, "entries": [],
                        "verify": {"ok": True, "entries": 0, "message": "no ledger yet"}
                        if want_verify else None}
            entries = ledger.entries(kind=args["kind"], purpose=args["purpose"],
                                     analyst=args["analyst"], since=since,
                                     session=args["session"])
            total = len(ledger)
            return {"product": product.name, "total": total, "matched": len(entries),
                    "entries": [entry_json(e) for e in reversed(entries[-limit:])],
                    "analysts": sorted({e.analyst for e in entries if e.analyst}),
                    "verify": verify_json(ledger) if want_verify else None}

        self.finish(json.dumps(await self.guarded(work)))


class VerifyHandler(_Base):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        def work():
            product = self.catalog.product(name)
            ledger = self.catalog.ledger(product)
            if ledger is None:
                return {"product": product.name, "ok": True, "entries": 0,
                        "message": "no ledger yet"}
            return {"product": product.name, **verify_json(ledger)}

        self.finish(json.dumps(await self.guarded(work)))


class MeshNbApp(ExtensionApp):
    """mesh_nb's server extension: the owners' ledgers over REST (``/mesh-nb/api/``)."""

    name = "mesh_nb"
    description = "mesh_nb: the owners' view of the data mesh"
    load_other_extensions = True

    mesh_root = Unicode("", config=True,
                        help="The mesh folder whose products the API serves (default: "
                             "$MESH_NB_ROOT). Nothing outside it is read.")
    max_entries = Int(1000, config=True, help="Most ledger entries one request returns.")
    catalog_ttl = Float(CATALOG_TTL, config=True,
                        help="Seconds the list of products is cached before it is re-read.")

    def initialize_settings(self) -> None:
        root = self.mesh_root or os.environ.get("MESH_NB_ROOT") or None
        self.catalog = Catalog(root, ttl=self.catalog_ttl)
        if root is None:
            self.log.info("mesh_nb: no mesh root (MeshNbApp.mesh_root or $MESH_NB_ROOT); "
                          "the owners' API lists no products")
        else:
            self.log.info("mesh_nb: serving the owners' ledgers of products under %s",
                          self.catalog.root)

    def initialize_handlers(self) -> None:
        name = r"(?P<name>[^/]+)"
        self.handlers.extend([
            (rf"/{API}/products", ProductsHandler),
            (rf"/{API}/products/{name}", ProductHandler),
            (rf"/{API}/products/{name}/ledger", LedgerHandler),
            (rf"/{API}/products/{name}/verify", VerifyHandler),
        ])

    async def stop_extension(self) -> None:
        catalog = getattr(self, "catalog", None)
        if catalog is not None:
            catalog.close()
