"""FROM and JOIN resolved against the bound contracts (CTE references inlined)."""

from __future__ import annotations

from dataclasses import replace

from sqlglot import exp

from ...contract.model import Contract
from .ctes import _Cte
from .helper import _func_name
from .model import TableRef
from .modes import _Mode
from .rules import _reject
from .scope import _Entry, _Scope
from .whitelist import SYSTEM_PREFIXES, SYSTEM_SCHEMAS, TABLE_ARGS


def _scope(select: exp.Select, contracts: dict[str, Contract], purpose: str, mode: _Mode,
           ctes: dict[str, _Cte]) -> _Scope:
    """The scope of FROM and JOIN; every table is a contract table the purpose may read."""
    scope = _Scope({}, mode, purpose)
    from_ = select.args.get("from_")
    nodes = ([from_.this] if from_ else []) + [j.this for j in select.args.get("joins") or []]
    for node in nodes:
        alias = node.alias_or_name
        if alias in scope.entries:
            raise _reject("duplicate-alias", f"two tables in FROM are called `{alias}`",
                          "give each table its own alias")
        if isinstance(node, exp.Table) and not node.db and node.name in ctes:
            entry, where = _cte_entry(ctes[node.name], alias, contracts, purpose, mode)
            if where is not None:
                scope.filters.append(where)
        else:
            entry = _table_entry(node, alias, contracts, purpose, mode)
        scope.entries[alias] = entry
    for cte in ctes.values():  # unused CTEs must still read contract tables
        _table_entry(cte.table, cte.key, contracts, purpose, mode)
    return scope


def _cte_entry(cte: _Cte, alias: str, contracts: dict[str, Contract], purpose: str,
               mode: _Mode) -> tuple[_Entry, exp.Expression | None]:
    """A CTE reference as its contract table under ``alias``, its outputs and its filter."""
    base = _table_entry(cte.table, alias, contracts, purpose, mode)
    inner = _Scope({cte.key: base}, mode, purpose)
    visible = {c.name.lower(): exp.column(c.name, table=alias) for c in base.table.columns
               } if cte.star else {}
    for name, expr in cte.columns:
        visible[name] = inner.qualify(expr, None)
    where = inner.qualify(cte.where, "where") if cte.where is not None else None
    return replace(base, visible=visible), where


def _table_entry(node: exp.Expression, alias: str, contracts: dict[str, Contract],
                 purpose: str, mode: _Mode) -> _Entry:
    fix = f"read contract tables as `product.table`; bound products: {', '.join(contracts)}"
    if isinstance(node, (exp.Subquery, exp.Select)):
        raise _reject("subquery", "subqueries in FROM are not allowed",
                      "read the contract table directly and put filters in WHERE")
    if not isinstance(node, exp.Table):
        raise _reject("unsupported-syntax", f"`{node.key}` in FROM is not supported", fix)
    if not isinstance(node.this, exp.Identifier):
        name = _func_name(node.this) if isinstance(node.this, exp.Func) else node.this.key
        if name.startswith(SYSTEM_PREFIXES):
            raise _reject("system-catalog", f"`{name}` reads the system catalog", fix)
        raise _reject("table-function", f"table function `{name}` reads outside the contract",
                      fix)
    parts = [p.lower() for p in (node.catalog, node.db, node.name) if p]
    if any(p in SYSTEM_SCHEMAS or p.startswith(SYSTEM_PREFIXES) for p in parts):
        raise _reject("system-catalog", f"`{'.'.join(parts)}` is a system catalog", fix)
    extra = [k for k, v in node.args.items() if v and k not in TABLE_ARGS]
    if extra or (node.args.get("alias") and node.args["alias"].columns):
        raise _reject("unsupported-syntax", f"`{(extra or ['column aliases'])[0]}` on a table "
                      "is not supported", "read the table as `product.table [alias]`")
    if not node.db:
        if any(ch in node.name for ch in "./\\:*"):
            raise _reject("file-access", "FROM names a file, not a contract table", fix)
        raise _reject("unknown-table", f"table `{node.name}` has no product", fix)
    if node.catalog:
        raise _reject("unknown-table", f"`{'.'.join(parts)}` is not `product.table`", fix)
    product = next((p for p in contracts if p.lower() == node.db), None)
    contract = contracts[product] if product is not None else None
    if contract is None:
        raise _reject("product-not-bound", f"product `{node.db}` is not bound in this session",
                      f"bind it with purpose `{purpose}`, or use one of: {', '.join(contracts)}")
    table = next((t for t in contract.tables if t.name.lower() == node.name), None)
    if table is None:
        raise _reject("unknown-table", f"product `{node.db}` has no table `{node.name}`",
                      f"use one of: {', '.join(node.db + '.' + t.name for t in contract.tables)}")
    declared = contract.purposes.get(purpose)
    if declared is None:
        raise _reject("purpose-not-allowed", f"product `{node.db}` does not declare purpose "
                      f"`{purpose}`", f"bind a purpose {node.db} declares: "
                      f"{', '.join(contract.purposes)}")
    if declared.access != mode.access:
        raise _reject("access-mode", f"product `{node.db}` grants {declared.access} for "
                      f"purpose `{purpose}`, not {mode.access}", "query each product as its "
                      "purpose allows")
    ref = TableRef(product, table.name, alias, contract.privacy_unit)
    return _Entry(ref, table, contract, declared)
