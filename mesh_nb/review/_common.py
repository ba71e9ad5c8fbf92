"""Shared helpers of the owner's review: which products, since when, where in the contract."""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from ..durations import moment
from ..errors import MeshError

if TYPE_CHECKING:
    from ..ledger import Entry
    from ..mesh import Mesh, Product


def parse_since(since: datetime | date | str | None, *,
                now: datetime | None = None) -> datetime | None:
    """``since`` as an aware UTC datetime: a datetime (naive means UTC), a date, an ISO date
    or time (``2026-11-01``, ``2026-11-01T08:00``) or a span back (``7d``, ``12h``, ``2w``)."""
    if since is None or since == "":
        return None
    return moment(since, now=now, ago=True, flag="--since")


def products_of(target: "Mesh | Product | str | os.PathLike",
                product: str | None = None) -> list["Product"]:
    """The products a review covers.

    ``target`` is a :class:`~mesh_nb.Product`, a :class:`~mesh_nb.Mesh` (every product, or the
    one named ``product``) or a folder (a mesh or one product folder).
    """
    from ..mesh import Mesh, Product, open_mesh

    if isinstance(target, Product):
        if product is not None and product != target.name:
            raise MeshError(f"product `{product}` is not `{target.name}`")
        return [target]
    if isinstance(target, (str, os.PathLike)):
        target = open_mesh(Path(target))
    if isinstance(target, Mesh):
        if product is not None:
            return [target.product(product)]
        return [target.products[n] for n in sorted(target.products)]
    raise MeshError(f"cannot review a {type(target).__name__}: give a Mesh, a Product or a "
                    "folder")


def qualified_columns(entry: "Entry", product: str) -> list[tuple[str, str]]:
    """``(table, column)`` of every ``product.table.col`` a release touched in ``product``."""
    out = []
    for name in entry.details.get("columns") or ():
        parts = str(name).split(".")
        if len(parts) == 3 and parts[0] == product:
            out.append((parts[1], parts[2]))
    return out


def entries_in(product: "Product", since: datetime | None,
               kinds: Iterable[str] | None = None) -> list["Entry"]:
    """The product's ledger entries from ``since`` on (all kinds unless ``kinds``)."""
    entries = product.ledger.entries(since=since)
    if kinds is None:
        return entries
    wanted = set(kinds)
    return [e for e in entries if e.kind in wanted]


def ts(entry: "Entry") -> datetime:
    return datetime.fromisoformat(entry.ts)
