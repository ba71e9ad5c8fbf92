"""The mesh: a catalog of data products found under a folder, and where sessions are bound."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from .contract import CONTRACT_FILE, Contract, load_contract
from .errors import ContractError, MeshError, NotFound, PolicyViolation, Problem
from .files import DEFAULT_DEMO_DIR  # noqa: F401  (re-exported: mesh_nb.mesh.DEFAULT_DEMO_DIR)
from .ledger import Ledger
from .ledger.config import configured_ledger, owner_dir_for

if TYPE_CHECKING:
    from datetime import datetime

    from .query.cache import ReleaseCache
    from .query.engines import EngineKind, Limits
    from .remote import Client, RemoteProduct
    from .session import Session
    from .values import PurposeRequest

LEDGER_DIR = ".mesh_nb"


@dataclass(frozen=True)
class Product:
    """A data product: its contract, its folder, and the owner's ledger and keys."""

    contract: Contract

    @property
    def name(self) -> str:
        return self.contract.name

    @property
    def folder(self) -> Path:
        return self.contract.folder

    @property
    def owner_dir(self) -> Path:
        """The owner's keys and checkpoints, outside the product folder by default
        (:func:`mesh_nb.ledger.config.owner_dir_for`)."""
        return owner_dir_for(self.folder, self.name)

    @property
    def ledger_location(self) -> Path | str:
        """Where the ledger lives: the owner's configured PostgreSQL URL (``MESH_NB_LEDGER_URL``
        or ``owner_dir/ledger.url``), else the contract's ``ledger:``, else the SQLite file."""
        url = configured_ledger(self.owner_dir, self.contract.ledger)
        return url or self.folder / LEDGER_DIR / "ledger.sqlite"

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.ledger_location, self.owner_dir, self.name)

    @cached_property
    def releases(self) -> "ReleaseCache":
        """Answers already released, kept beside the ledger (never in it)."""
        from .query.cache import ReleaseCache

        return ReleaseCache(self.folder / LEDGER_DIR / "releases.sqlite")


class ProductBroken(ContractError):
    """A product of the mesh whose contract does not load: the rest of the mesh works, and
    binding or naming this one raises this error, listing its problems (``problems``)."""

    withheld = ("its contract does not load — its owner must fix it (the owner sees why "
                "with `mesh-nb check`)")
    """What an analyst on the owner's server is told instead of the problems (they name the
    owner's files, and a data check's finding may follow the data)."""

    def __init__(self, product: str, problems: Iterable[Problem]):
        super().__init__(list(problems))
        self.product = product
        head = (f"data product `{product}` is skipped: its contract has {len(self.problems)} "
                "problem(s) — fix them (`mesh-nb check`) and open the mesh again")
        self.args = (head + ":\n" + "\n".join(str(p) for p in self.problems),)

    def public(self) -> str:
        """The message for an analyst of the owner's server."""
        return f"data product `{self.product}` is unavailable: {self.withheld}"


class MeshWarning(UserWarning):
    """A mesh opened without some of its products (their contracts do not load)."""


@dataclass(frozen=True)
class BrokenProduct:
    """A contract file under the mesh that does not load: skipped by :func:`open_mesh`,
    listed in :attr:`Mesh.broken`, and named in the error of whoever binds it."""

    name: str
    file: Path
    problems: tuple[Problem, ...]

    def error(self) -> ProductBroken:
        return ProductBroken(self.name, self.problems)

    def __str__(self) -> str:
        if not self.problems:
            return f"`{self.name}` ({self.file})"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return f"`{self.name}`: {self.problems[0]}{more}"


def product_names(products: str | Iterable[str]) -> list[str]:
    """``"a,b"`` or ``["a", "b"]`` as distinct product names, in order; none is an error."""
    names = [products] if isinstance(products, str) else list(products)
    names = [n.strip() for name in names for n in name.split(",") if n.strip()]
    if not names:
        raise MeshError("no product named — bind to at least one product, e.g. "
                        "m.bind('customers', purpose=...)")
    return list(dict.fromkeys(names))


@dataclass
class Mesh:
    """Data products by name. Build one with :func:`open_mesh` or :func:`demo_mesh`.

    A mesh opened from a folder binds local sessions (the owner's engine and ledgers in this
    process); one opened from the owner's server URL (``root`` is the URL, ``client`` its
    connection) binds sessions that run there. The methods are the same.
    """

    root: Path | str
    products: "dict[str, Product | RemoteProduct]" = field(default_factory=dict)
    client: "Client | None" = field(default=None, repr=False)
    #: Products whose contract does not load, by name (their folder's and their ``name:``).
    broken: dict[str, BrokenProduct] = field(default_factory=dict)

    @property
    def analyst(self) -> str | None:
        """Who the server's token names (None for a local mesh: any analyst may bind)."""
        return self.client.analyst if self.client is not None else None

    def product(self, name: str) -> Product:
        """The product called ``name``; the error lists the ones there are, or, for a
        product whose contract does not load, its problems (:class:`ProductBroken`)."""
        found = self.products.get(name)
        if found is not None:
            return found
        if name in self.broken:
            raise self.broken[name].error()
        known = ", ".join(sorted(self.products)) or "none"
        skipped = sorted({b.name for b in self.broken.values()})
        broken = f"; skipped, not loading: {', '.join(skipped)}" if skipped else ""
        raise NotFound(f"no data product `{name}` in the mesh at {self.root} "
                       f"(products: {known}{broken}) — check the name")

    def ledger(self, product: str) -> Ledger:
        """The owner's ledger of one product."""
        return self.product(product).ledger

    def bind(self, products: str | Iterable[str], purpose: str, analyst: str | None = None,
             *, acknowledge: bool = False, engine: "EngineKind | None" = None,
             spark_remote: str | None = None, limits: "Limits | None" = None) -> "Session":
        """Bind a session to ``purpose`` over one product or several.

        Every product must declare the purpose; purposes that require acknowledgement need
        ``acknowledge=True``; a purpose whose contract breaks an error-level rule of the
        mesh's ``governance.yaml`` is refused (``session.refused`` in the ledger). Records
        ``session.bound`` in each product's ledger.

        ``engine`` (``"duckdb"`` or ``"spark"``) and ``spark_remote`` (a Spark Connect URL,
        ``sc://host:port``) override what the contracts' servers choose; the default engine
        is the embedded DuckDB. See docs/engines.md. ``limits`` bounds each query's time and
        memory (default: ``MESH_NB_QUERY_SECONDS`` / ``MESH_NB_QUERY_MEMORY``, else 120 s and
        8GB); a query past them is charged and fails with :class:`~mesh_nb.QueryFailed`.
        """
        from .session import EngineOptions, Session, resolve_analyst

        if self.client is not None:
            from .remote import bind

            given = [n for n, v in (("engine", engine), ("spark_remote", spark_remote),
                                    ("limits", limits)) if v is not None]
            if given:
                raise MeshError("the owner's server chooses the engine — bind without "
                                f"{', '.join(given)}")
            bound = tuple(self.product(n) for n in product_names(products))
            return bind(self, self.client, bound, purpose, analyst, acknowledge)
        bound = self._checked_binding(products, purpose, analyst, acknowledge)
        return Session.start(self, bound, purpose, resolve_analyst(analyst),
                             acknowledged=acknowledge,
                             options=EngineOptions.checked(engine, spark_remote, limits))

    def request(self, products: str | Iterable[str], purpose: str,
                reason: str) -> "PurposeRequest":
        """Ask the approvers on the owner's server for a purpose that needs approval; bind
        once it is approved."""
        from .remote import request

        return request(self._server("request a purpose"), product_names(products), purpose,
                       reason)

    def requests(self) -> "list[PurposeRequest]":
        """This analyst's purpose requests on the owner's server and their status."""
        from .remote import requests

        return requests(self._server("list purpose requests"))

    def close(self) -> None:
        """Close the connection to the owner's server (nothing to do for a local mesh)."""
        if self.client is not None:
            self.client.close()

    def _server(self, what: str) -> "Client":
        if self.client is None:
            raise MeshError(f"only a mesh on the owner's server can {what} — "
                            "open_mesh('https://...'); locally, the owner approves "
                            "(`mesh-nb approve`)")
        return self.client

    def __repr__(self) -> str:
        who = f" as {self.analyst}" if self.client is not None else ""
        skipped = sorted({b.name for b in self.broken.values()})
        broken = f" (skipped, not loading: {', '.join(skipped)})" if skipped else ""
        return f"<Mesh {self.root}{who}: {', '.join(sorted(self.products))}{broken}>"

    def resume(self, session_id: str, products: Iterable[str], purpose: str, analyst: str, *,
               started: "datetime", acknowledged: bool = False) -> "Session":
        """A session bound earlier (by a server before its restart), checked again against
        today's contracts and governance as :meth:`bind` checks it; writes no ledger entry."""
        from .session import Session

        bound = self._checked_binding(products, purpose, analyst, acknowledged)
        return Session(self, bound, purpose, analyst, session_id, started, acknowledged)

    def _checked_binding(self, products: str | Iterable[str], purpose: str,
                         analyst: str | None, acknowledge: bool) -> tuple[Product, ...]:
        """The products a binding names, each declaring ``purpose`` with one access mode, the
        acknowledgement given where required, and the mesh's governance passed."""
        from .session import resolve_analyst

        bound = [self.product(n) for n in product_names(products)]
        access = set()
        for p in bound:
            spec = p.contract.purpose(purpose)
            if spec is None:
                declared = ", ".join(sorted(p.contract.purposes))
                raise PolicyViolation(
                    "purpose-not-declared",
                    f"product `{p.name}` does not declare purpose `{purpose}`",
                    f"bind one of its declared purposes: {declared}")
            if spec.requires_acknowledgement and not acknowledge:
                raise PolicyViolation(
                    "acknowledgement-required",
                    f"purpose `{purpose}` of `{p.name}` requires acknowledgement "
                    f"({spec.description.strip()})",
                    "read the purpose, then bind with acknowledge=True "
                    "(magic: --acknowledge)")
            access.add(spec.access)
        if len(access) > 1:
            raise PolicyViolation(
                "mixed-access", f"purpose `{purpose}` grants different access modes across "
                f"{', '.join(p.name for p in bound)} ({', '.join(sorted(access))})",
                "bind the products in separate sessions")
        # the mesh's governance.yaml: error-level rules of the contracts refuse the bind
        from .governance import check_bind

        check_bind(bound, purpose, self.root, analyst=resolve_analyst(analyst))
        return tuple(bound)


def find_contracts(root: Path) -> list[Path]:
    """Contract files at or under ``root``, skipping hidden folders."""
    if (root / CONTRACT_FILE).is_file():
        return [root / CONTRACT_FILE]
    return sorted(p for p in root.rglob(CONTRACT_FILE)
                  if not any(part.startswith(".") for part in p.relative_to(root).parts))


@dataclass(frozen=True)
class Loaded:
    """The products a set of contract files holds, and each file that did not load, with why
    (its problems, or a second product of a name already taken)."""

    products: dict[str, Product]
    broken: tuple[tuple[Path, MeshError], ...]


def duplicate_name(contract: Contract, first: Path) -> Problem:
    """The problem of a second contract named like the one in folder ``first``."""
    from .contract.yamlsource import contract_source

    src = contract_source(contract.path)
    return Problem(str(contract.path), src.line(("name",)) if src else None, "name",
                   f"two products are named `{contract.name}` (this one and {first})",
                   "rename one in its contract's `name:`")


def load_products(files: Iterable[Path], *, count_rows: bool = True) -> Loaded:
    """Load each contract file on its own, so one broken contract hides no other."""
    products: dict[str, Product] = {}
    broken: list[tuple[Path, MeshError]] = []
    for file in files:
        try:
            contract = load_contract(file, count_rows=count_rows)
        except MeshError as exc:
            broken.append((file, exc))
            continue
        if contract.name in products:
            broken.append((file, ContractError(
                [duplicate_name(contract, products[contract.name].folder)])))
            continue
        products[contract.name] = Product(contract)
    return Loaded(products, tuple(broken))


def broken_products(loaded: Loaded) -> dict[str, BrokenProduct]:
    """The files that did not load, by the names an analyst may bind them by: the contract's
    ``name:`` (when it can be read) and its folder's — never a name a product has (the
    folder's path when both are taken)."""
    from .contract.yamlsource import contract_source

    out: dict[str, BrokenProduct] = {}
    for file, exc in loaded.broken:
        problems = tuple(exc.problems) if isinstance(exc, ContractError) else (
            Problem(str(file), None, "(contract)", str(exc), "fix the contract"),)
        src = contract_source(file)
        declared = src.data.get("name") if src and isinstance(src.data, dict) else None
        names = [n for n in (declared if isinstance(declared, str) else None, file.parent.name)
                 if n and n not in loaded.products and n not in out] or [str(file.parent)]
        out.update(dict.fromkeys(names, BrokenProduct(names[0], file, problems)))
    return out


def open_mesh(path: str | os.PathLike, *, token: str | None = None,
              allow_insecure_http: bool = False) -> Mesh:
    """Open the data products under a folder (or the one product a folder holds).

    A product whose contract does not load is skipped with a :class:`MeshWarning` naming
    its problems; it is listed in :attr:`Mesh.broken`, and binding it raises
    :class:`ProductBroken` with its problems.
    An ``http(s)://`` URL opens the owner's mesh server instead (a
    mesh whose sessions run there), with ``token`` or ``$MESH_TOKEN``; plain http
    only to this machine unless ``allow_insecure_http=True``.
    """
    if isinstance(path, str) and path[:8].lower().startswith(("http://", "https://")):
        from .remote import connect

        client, served = connect(path, token, allow_insecure_http=allow_insecure_http)
        return Mesh(client.url, served, client)
    root = Path(path).resolve()
    if not root.is_dir():
        raise MeshError(f"mesh folder {root} does not exist — create it or run "
                        "`mesh-nb demo --init DIR` for the demo mesh")
    loaded = load_products(find_contracts(root))
    broken = broken_products(loaded)
    if not loaded.products and not broken:
        raise MeshError(f"no {CONTRACT_FILE} under {root} — a data product is a folder "
                        "holding its contract and data files")
    skipped = list(dict.fromkeys(broken.values()))
    if skipped:
        warnings.warn(f"{len(skipped)} data product(s) under {root} skipped, their contracts "
                      "do not load (`mesh-nb check` lists every problem): "
                      + "; ".join(map(str, skipped)), MeshWarning, stacklevel=2)
    return Mesh(root, loaded.products, broken=broken)
