"""Shared helpers of the owner's review: which products, since when, where in the contract."""

from __future__ import annotations

import os
import re
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from ..errors import MeshError

if TYPE_CHECKING:
    from ..ledger import Entry
    from ..mesh import Mesh, Product

_RELATIVE = re.compile(r"^\s*(\d+)\s*([dhw])\s*$", re.IGNORECASE)


def parse_since(since: datetime | date | str | None, *,
                now: datetime | None = None) -> datetime | None:
    """``since`` as an aware UTC datetime.

    Accepts a datetime (naive means UTC), a date (its midnight UTC), an ISO date or time
    (``2026-11-01``, ``2026-11-01T08:00``) or a relative span (``7d``, ``12h``, ``2w``).
    """
    if since is None or since == "":
        return None
    if isinstance(since, datetime):
        moment = since
    elif isinstance(since, date):
        moment = datetime.combine(since, time.min)
    elif isinstance(since, str):
        m = _RELATIVE.match(since)
        if m:
            n, unit = int(m.group(1)), m.group(2).lower()
            span = {"d": timedelta(days=n), "h": timedelta(hours=n), "w": timedelta(weeks=n)}
            return (now or datetime.now(timezone.utc)) - span[unit]
        try:
            moment = datetime.fromisoformat(since.strip())
        except ValueError:
            raise MeshError(f"--since {since!r} is not a date — use an ISO date or time "
                            "(2026-11-01, 2026-11-01T08:00) or a span like 7d, 12h, 2w") from None
    else:
        raise MeshError(f"since must be a date, a datetime or a string, not "
                        f"{type(since).__name__}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


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
