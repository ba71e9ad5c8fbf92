"""Scope, tables and joins: the access mode, FROM and JOIN resolved against the bound contracts
(CTE references inlined), the join conditions and the qualified WHERE."""

from __future__ import annotations

from dataclasses import replace

from sqlglot import exp

from ...contract.model import Contract
from ...rules import REGISTRY, violation
from .model import TableRef
from .scope import MODES, Cte, Draft, Entry, Mode, Scope
from .trees import conjuncts, func_name, has_aggregate
from .whitelist import SYSTEM_PREFIXES, SYSTEM_SCHEMAS, TABLE_ARGS


def access_mode(draft: Draft) -> Draft:
    """The access mode the bound products declare for the purpose, if this check serves it
    (rules ``product-not-bound``, ``purpose-not-allowed``, ``access-mode``)."""
    contracts, purpose, accepted = draft.contracts, draft.purpose, draft.accepted
    if not contracts:
        raise violation("product-not-bound", "no product is bound in this session")
    modes = {c.purposes[purpose].access for c in contracts.values() if purpose in c.purposes}
    if not modes:
        raise violation("purpose-not-allowed", f"no bound product declares purpose `{purpose}`")
    if len(modes) > 1:
        raise violation("access-mode", f"the bound products declare purpose `{purpose}` with "
                        f"different access modes ({', '.join(sorted(modes))})",
                        "ask the owners to align the purpose, or bind one product")
    access = modes.pop()
    if access not in accepted:
        kind = "aggregate" if access == "dp-aggregate" else "row"
        raise violation("access-mode", f"purpose `{purpose}` grants {access} access, not this "
                        "kind of query", f"send a {kind} query, as the purpose allows")
    return replace(draft, mode=MODES[access])


def resolve_tables(draft: Draft) -> Draft:
    """The scope of FROM and JOIN, CTE references inlined: every table is a contract table the
    purpose may read (rules ``duplicate-alias``, ``subquery``, ``unsupported-syntax``,
    ``system-catalog``, ``table-function``, ``file-access``, ``unknown-table``,
    ``product-not-bound``, ``purpose-not-allowed``, ``access-mode``)."""
    select, contracts, purpose, mode, ctes = (draft.select, draft.contracts, draft.purpose,
                                              draft.mode, draft.ctes)
    scope = Scope({}, mode, purpose)
    from_ = select.args.get("from_")
    nodes = ([from_.this] if from_ else []) + [j.this for j in select.args.get("joins") or []]
    for node in nodes:
        alias = node.alias_or_name
        if alias in scope.entries:
            raise violation("duplicate-alias", f"two tables in FROM are called `{alias}`")
        if isinstance(node, exp.Table) and not node.db and node.name in ctes:
            entry, where = cte_entry(ctes[node.name], alias, contracts, purpose, mode)
            if where is not None:
                scope.filters.append(where)
        else:
            entry = table_entry(node, alias, contracts, purpose, mode)
        scope.entries[alias] = entry
    for cte in ctes.values():  # unused CTEs must still read contract tables
        table_entry(cte.table, cte.key, contracts, purpose, mode)
    return replace(draft, scope=scope)


def cte_entry(cte: Cte, alias: str, contracts: dict[str, Contract], purpose: str,
              mode: Mode) -> tuple[Entry, exp.Expression | None]:
    """A CTE reference as its contract table under ``alias``, its outputs and its filter."""
    base = table_entry(cte.table, alias, contracts, purpose, mode)
    inner = Scope({cte.key: base}, mode, purpose)
    visible = {c.name.lower(): exp.column(c.name, table=alias) for c in base.table.columns
               } if cte.star else {}
    for name, expr in cte.columns:
        visible[name] = inner.qualify(expr, None)
    where = inner.qualify(cte.where, "where") if cte.where is not None else None
    return replace(base, visible=visible), where


def table_entry(node: exp.Expression, alias: str, contracts: dict[str, Contract],
                purpose: str, mode: Mode) -> Entry:
    fix = f"read contract tables as `product.table`; bound products: {', '.join(contracts)}"
    if isinstance(node, (exp.Subquery, exp.Select)):
        raise violation("subquery", "subqueries in FROM are not allowed",
                        "read the contract table directly and put filters in WHERE")
    if not isinstance(node, exp.Table):
        raise violation("unsupported-syntax", f"`{node.key}` in FROM is not supported", fix)
    if not isinstance(node.this, exp.Identifier):
        name = func_name(node.this) if isinstance(node.this, exp.Func) else node.this.key
        if name.startswith(SYSTEM_PREFIXES):
            raise violation("system-catalog", f"`{name}` reads the system catalog", fix)
        raise violation("table-function", f"table function `{name}` reads outside the contract",
                        fix)
    parts = [p.lower() for p in (node.catalog, node.db, node.name) if p]
    if any(p in SYSTEM_SCHEMAS or p.startswith(SYSTEM_PREFIXES) for p in parts):
        raise violation("system-catalog", f"`{'.'.join(parts)}` is a system catalog", fix)
    extra = [k for k, v in node.args.items() if v and k not in TABLE_ARGS]
    if extra or (node.args.get("alias") and node.args["alias"].columns):
        raise violation("unsupported-syntax", f"`{(extra or ['column aliases'])[0]}` on a table "
                        "is not supported", "read the table as `product.table [alias]`")
    if not node.db:
        if any(ch in node.name for ch in "./\\:*"):
            raise violation("file-access", "FROM names a file, not a contract table", fix)
        raise violation("unknown-table", f"table `{node.name}` has no product", fix)
    if node.catalog:
        raise violation("unknown-table", f"`{'.'.join(parts)}` is not `product.table`", fix)
    product = next((p for p in contracts if p.lower() == node.db), None)
    contract = contracts[product] if product is not None else None
    if contract is None:
        raise violation("product-not-bound", f"product `{node.db}` is not bound in this session",
                        f"bind it with purpose `{purpose}`, or use one of: {', '.join(contracts)}")
    table = next((t for t in contract.tables if t.name.lower() == node.name), None)
    if table is None:
        raise violation("unknown-table", f"product `{node.db}` has no table `{node.name}`",
                        f"use one of: {', '.join(node.db + '.' + t.name for t in contract.tables)}")
    declared = contract.purposes.get(purpose)
    if declared is None:
        raise violation("purpose-not-allowed", f"product `{node.db}` does not declare purpose "
                        f"`{purpose}`", f"bind a purpose {node.db} declares: "
                        f"{', '.join(contract.purposes)}")
    if declared.access != mode.access:
        raise violation("access-mode", f"product `{node.db}` grants {declared.access} for "
                        f"purpose `{purpose}`, not {mode.access}")
    ref = TableRef(product, table.name, alias, contract.privacy_unit)
    return Entry(ref, table, contract, declared)


def some_table(draft: Draft) -> Draft:
    """The query reads at least one contract table (rule ``no-table``)."""
    if not draft.scope.entries:
        raise violation("no-table", "the query reads no contract table",
                        f"add FROM product.table; bound products: {', '.join(draft.contracts)}")
    return draft


def join_conditions(draft: Draft) -> Draft:
    """The qualified ON condition of each join: INNER joins on equalities of privacy units or
    declared join keys, every joined table's unit equated with an earlier one's (rules
    ``join-type``, ``cross-join``, ``join-key``, ``join-unit``)."""
    select, scope = draft.select, draft.scope
    aliases = list(scope.entries)
    out = []
    for i, join in enumerate(select.args.get("joins") or [], start=1):
        _join_type(join)
        new, earlier = aliases[i], aliases[:i]
        cond = join.args.get("on")
        if join.args.get("using"):
            cond = exp.and_(*(_using(ident.name.lower(), new, earlier, scope)
                              for ident in join.args["using"]))
        if cond is None:
            raise violation("cross-join", f"the join of `{new}` has no ON condition")
        out.append(exp.and_(*(_join_pair(p, new, earlier, scope) for p in conjuncts(cond))))
    _one_person(scope, out)
    return replace(draft, joins=tuple(out))


def _one_person(scope: Scope, joins: list[exp.Expression]) -> None:
    """Every joined table's privacy unit must be equated with an earlier table's (rule
    ``join-unit``): then each joined row belongs to one person and bounding the first
    table's unit bounds everyone. A join on another key lets one person's rows change which
    rows many other people keep, and no contribution bound holds through it."""
    refs = [e.ref for e in scope.entries.values()]
    linked = {(refs[0].alias, refs[0].privacy_unit)}
    for ref, on in zip(refs[1:], joins):
        pairs = {((eq.this.table, eq.this.name), (eq.expression.table, eq.expression.name))
                 for eq in on.find_all(exp.EQ)}
        mine = (ref.alias, ref.privacy_unit)
        if not any((a in linked and b == mine) or (b in linked and a == mine)
                   for a, b in pairs):
            first = refs[0]
            raise violation("join-unit", f"the join of `{ref.alias}` does not equate its "
                            f"privacy unit `{ref.privacy_unit}` with that of `{first.alias}` "
                            f"(`{first.privacy_unit}`), so one person's rows could change what "
                            "many others contribute")
        linked.add(mine)


def _join_type(join: exp.Join) -> None:
    method, side, kind = join.method, join.side, join.kind
    if kind == "CROSS":
        raise violation("cross-join", "CROSS JOIN pairs every row with every row")
    bad = method or side or (kind if kind not in ("", "INNER") else "")
    if bad:
        raise violation("join-type", f"{' '.join(filter(None, (method, side, kind)))} JOIN is not "
                        "allowed, only INNER JOIN")


def _using(name: str, new: str, earlier: list[str], scope: Scope) -> exp.Expression:
    left = next((a for a in earlier if scope.entries[a].has(name)), earlier[0])
    return exp.EQ(this=exp.column(name, table=left), expression=exp.column(name, table=new))


def _join_pair(pair: exp.Expression, new: str, earlier: list[str], scope: Scope
               ) -> exp.Expression:
    """One ``a.key = b.key`` of an ON condition, qualified and checked."""
    what = "an ON condition may only equate key columns of the joined table and an earlier one"
    if not (isinstance(pair, exp.EQ) and isinstance(pair.this, exp.Column)
            and isinstance(pair.expression, exp.Column)):
        raise violation("join-key", what, "move filters to WHERE; " + REGISTRY["join-key"].fix)
    sides = [scope.qualify(side, "join") for side in (pair.this, pair.expression)]
    if not all(isinstance(s, exp.Column) for s in sides):
        raise violation("join-key", what)
    tables = {s.table for s in sides}
    if new not in tables or len(tables) != 2 or not tables <= {new, *earlier}:
        raise violation("join-key", what)
    return exp.EQ(this=sides[0], expression=sides[1])


def where_filter(draft: Draft) -> Draft:
    """The qualified WHERE, with the filters of inlined CTEs ANDed in (rule
    ``aggregate-in-where``; the columns' rules in context ``where``)."""
    select, scope = draft.select, draft.scope
    where = select.args.get("where")
    conds = list(scope.filters)
    if where is not None:
        if has_aggregate(where.this):
            raise violation("aggregate-in-where", "WHERE holds an aggregate")
        conds.insert(0, scope.qualify(where.this, "where"))
    return replace(draft, where=exp.and_(*conds) if conds else None)
