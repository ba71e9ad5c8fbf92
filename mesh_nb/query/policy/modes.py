"""Access modes: what a purpose lets a query do with identifying columns."""

from __future__ import annotations

from dataclasses import dataclass

from ...contract.model import Contract
from .rules import _reject


@dataclass(frozen=True)
class _Mode:
    """What an access mode lets a query do with identifying columns."""

    access: str
    identifier_contexts: frozenset[str]  # where an allowed direct identifier may appear
    raw_generalized: bool  # may generalized quasi-identifiers be filtered/sorted raw


_MODES = {
    "dp-aggregate": _Mode("dp-aggregate", frozenset(), True),
    "pseudonymized-rows": _Mode("pseudonymized-rows", frozenset({"output"}), False),
    "raw-rows": _Mode("raw-rows", frozenset({"output", "where", "order"}), True),
}
ROW_ACCESS = ("pseudonymized-rows", "raw-rows")


def _mode(contracts: dict[str, Contract], purpose: str, accepted: tuple[str, ...]) -> _Mode:
    """The access mode the bound products declare for ``purpose``, if this check serves it."""
    if not contracts:
        raise _reject("product-not-bound", "no product is bound in this session",
                      "bind a product with a purpose first")
    modes = {c.purposes[purpose].access for c in contracts.values() if purpose in c.purposes}
    if not modes:
        raise _reject("purpose-not-allowed", f"no bound product declares purpose `{purpose}`",
                      "bind the session to a purpose the products declare")
    if len(modes) > 1:
        raise _reject("access-mode", f"the bound products declare purpose `{purpose}` with "
                      f"different access modes ({', '.join(sorted(modes))})",
                      "ask the owners to align the purpose, or bind one product")
    access = modes.pop()
    if access not in accepted:
        kind = "aggregate" if access == "dp-aggregate" else "row"
        raise _reject("access-mode", f"purpose `{purpose}` grants {access} access, not this "
                      "kind of query", f"send a {kind} query, as the purpose allows")
    return _MODES[access]
