"""Contract change review: what a new version of a contract does to each purpose.

``diff_contracts(old, new)`` compares two contracts and says, change by change and with the line
of the file to look at, whether it widens or narrows access, loosens or tightens a budget, or
changes protection or noise — so an owner reads it before publishing. Both files must be valid
contracts (the data files need not be there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..contract.load import contract_file
from ..contract.model import Budget, Column, Contract, Purpose
from ..contract.odcs import check_contract
from ..contract.privacy import policy_path
from ..contract.yamlsource import FieldPath, YamlSource, column_path, contract_source
from ..errors import ContractError

WIDENS, NARROWS, NEUTRAL = "widens", "narrows", "neutral"

ACCESS_RANK = {"dp-aggregate": 0, "pseudonymized-rows": 1, "raw-rows": 2}
#: How strongly a classification protects a column: identifiers never leave a DP query,
#: quasi-identifiers are generalized in row releases, public columns are released as they are.
PROTECTION_RANK = {"public": 0, "sensitive": 1, "quasi-identifier": 2, "direct-identifier": 3}


@dataclass(frozen=True)
class Change:
    """One change and what it does."""

    scope: str          # "purpose churn-analysis", "column accounts.email", "product"
    what: str           # what changed
    effect: str         # what it does, e.g. "widens access: ..."
    direction: str      # widens | narrows | neutral
    file: str = ""
    line: int | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def __str__(self) -> str:
        return f"{self.where}: {self.what} — {self.effect}"


@dataclass
class ContractDiff:
    """The changes from ``old`` to ``new``, by scope; ``str()`` is the review to read."""

    old: Path
    new: Path
    old_version: str
    new_version: str
    changes: list[Change] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    @property
    def widening(self) -> list[Change]:
        """Changes that widen access or loosen a budget or a protection: need approval."""
        return [c for c in self.changes if c.direction == WIDENS]

    def scope(self, scope: str) -> list[Change]:
        return [c for c in self.changes if c.scope == scope]

    def __str__(self) -> str:
        head = (f"contract change {self.old} (version {self.old_version}) -> {self.new} "
                f"(version {self.new_version})")
        if not self.changes:
            return head + "\nno change to the schema or the privacy policy"
        counts = {d: sum(c.direction == d for c in self.changes)
                  for d in (WIDENS, NARROWS, NEUTRAL)}
        lines = [head, f"{len(self.changes)} change(s): {counts[WIDENS]} widen access or "
                       f"loosen protection, {counts[NARROWS]} narrow or tighten, "
                       f"{counts[NEUTRAL]} other"]
        order: list[str] = []
        for c in self.changes:
            if c.scope not in order:
                order.append(c.scope)
        mark = {WIDENS: "+", NARROWS: "-", NEUTRAL: "~"}
        for scope in order:
            lines.append(f"\n{scope}:")
            for c in self.scope(scope):
                lines.append(f"  {mark[c.direction]} {c.what} — {c.effect}  ({c.where})")
        return "\n".join(lines)


def _load(path: str | Path) -> tuple[Contract, YamlSource]:
    file = contract_file(path)
    contract, problems = check_contract(file, count_rows=False)
    if contract is None:
        raise ContractError(problems)
    src = contract_source(file)
    assert src is not None  # check_contract just read it
    return contract, src


class _Differ:
    def __init__(self, old: tuple[Contract, YamlSource], new: tuple[Contract, YamlSource]):
        (self.a, self.sa), (self.b, self.sb) = old, new
        self.pa, self.pb = policy_path(self.sa) or (), policy_path(self.sb) or ()
        self.changes: list[Change] = []

    def add(self, scope: str, what: str, effect: str, direction: str, *,
            new: FieldPath | None = None, old: FieldPath | None = None) -> None:
        """Record a change, located in the new file (or the old one for removals)."""
        if new is not None:
            file, line = self.b.path, self.sb.line(new)
        elif old is not None:
            file, line = self.a.path, self.sa.line(old)
        else:
            file, line = self.b.path, None
        self.changes.append(Change(scope, what, effect, direction, str(file), line))

    # -- product ----------------------------------------------------------------------------

    def product(self) -> None:
        a, b, s = self.a, self.b, "product"
        if a.id != b.id:
            self.add(s, f"id `{a.id}` -> `{b.id}`", "a different product to catalogs and "
                     "lineage: is this the same product?", NEUTRAL, new=("id",))
        if a.privacy_unit != b.privacy_unit:
            self.add(s, f"privacy unit `{a.privacy_unit}` -> `{b.privacy_unit}`",
                     "changes who is protected: contribution bounding and every DP guarantee "
                     "now count per the new column — review every purpose", WIDENS,
                     new=self.pb + ("privacyUnit",))
        if a.max_contributions != b.max_contributions:
            up = b.max_contributions > a.max_contributions
            self.add(s, f"maxContributions {a.max_contributions} -> {b.max_contributions}",
                     "more rows per person kept: higher sensitivity, more noise per query, "
                     "fewer rows dropped" if up else "fewer rows per person kept: less noise, "
                     "more rows dropped (bias)", NEUTRAL, new=self.pb + ("maxContributions",))
        for key in sorted(set(b.join_keys) - set(a.join_keys)):
            self.add(s, f"join key `{key}` added", "widens access: other products' sessions "
                     "may join on it", WIDENS, new=self.pb + ("joinKeys",))
        for key in sorted(set(a.join_keys) - set(b.join_keys)):
            self.add(s, f"join key `{key}` removed", "narrows access: cross-product queries "
                     "joining on it are refused", NARROWS, old=self.pa + ("joinKeys",))

    # -- purposes ---------------------------------------------------------------------------

    def purposes(self) -> None:
        for name in sorted(set(self.a.purposes) | set(self.b.purposes)):
            pa, pb = self.a.purposes.get(name), self.b.purposes.get(name)
            s = f"purpose {name}"
            at_a, at_b = self.pa + ("purposes", name), self.pb + ("purposes", name)
            if pa is None and pb is not None:
                budget = _budget_text(pb.budget)
                self.add(s, "purpose added", f"widens access: a new use of the data "
                         f"({pb.access} on {', '.join(pb.allowed_columns)}; {budget})", WIDENS,
                         new=at_b)
                continue
            if pb is None and pa is not None:
                self.add(s, "purpose removed", "narrows access: sessions can no longer bind "
                         "it (its ledger history stays)", NARROWS, old=at_a)
                continue
            assert pa is not None and pb is not None
            self.purpose(s, pa, pb, at_a, at_b)

    def purpose(self, s: str, pa: Purpose, pb: Purpose, at_a: FieldPath,
                at_b: FieldPath) -> None:
        if pa.access != pb.access:
            up = ACCESS_RANK.get(pb.access, 0) > ACCESS_RANK.get(pa.access, 0)
            self.add(s, f"access {pa.access} -> {pb.access}",
                     "widens access: " + ("row-level data instead of DP aggregates"
                                          if pa.access == "dp-aggregate" else
                                          "identifiers no longer pseudonymized")
                     if up else "narrows access: " + ("DP aggregates only"
                                                      if pb.access == "dp-aggregate" else
                                                      "identifiers pseudonymized"),
                     WIDENS if up else NARROWS, new=at_b + ("access",))
        cols_a, cols_b = list(pa.allowed_columns), list(pb.allowed_columns)
        for j, col in enumerate(cols_b):
            if col not in cols_a:
                cls = self._classification(self.b, col)
                self.add(s, f"allowed column `{col}` added",
                         f"widens access: the purpose may now read {cls or 'it'}", WIDENS,
                         new=at_b + ("allowedColumns", j))
        for j, col in enumerate(cols_a):
            if col not in cols_b:
                self.add(s, f"allowed column `{col}` removed", "narrows access (data "
                         "minimization): queries using it are refused", NARROWS,
                         old=at_a + ("allowedColumns", j))
        self.budget(s, pa.budget, pb.budget, at_a, at_b)
        self.per_query(s, "maxEpsilonPerQuery", pa.max_epsilon_per_query,
                       pb.max_epsilon_per_query, at_b)
        if pa.default_epsilon_per_query != pb.default_epsilon_per_query:
            self.add(s, f"defaultEpsilonPerQuery {_num(pa.default_epsilon_per_query)} -> "
                     f"{_num(pb.default_epsilon_per_query)}", "changes what a query spends "
                     "when the analyst names no epsilon", NEUTRAL,
                     new=at_b + ("defaultEpsilonPerQuery",))
        if pa.requires_acknowledgement != pb.requires_acknowledgement:
            now = pb.requires_acknowledgement
            self.add(s, f"requiresAcknowledgement {pa.requires_acknowledgement} -> {now}",
                     "tightens binding: analysts must acknowledge the purpose" if now else
                     "loosens binding: analysts no longer acknowledge the purpose",
                     NARROWS if now else WIDENS, new=at_b + ("requiresAcknowledgement",))
        if (pa.legal_basis or "") != (pb.legal_basis or ""):
            self.add(s, "legal basis changed", "a different lawful ground: review it with "
                     "your data protection officer", NEUTRAL, new=at_b + ("legalBasis",))
        if pa.description.strip() != pb.description.strip():
            self.add(s, "description changed", "what analysts read when they bind: make sure "
                     "the purpose itself has not changed", NEUTRAL,
                     new=at_b + ("description",))
        if set(pa.approvers) != set(pb.approvers):
            self.add(s, "approvers changed", f"now {', '.join(pb.approvers) or 'none'}",
                     NEUTRAL, new=at_b + ("approvers",))

    def budget(self, s: str, a: Budget | None, b: Budget | None, at_a: FieldPath,
               at_b: FieldPath) -> None:
        at = at_b + ("budget",)
        if a is None and b is None:
            return
        if a is None:
            self.add(s, f"budget added ({_budget_text(b)})", "tightens budget: spends are "
                     "now capped", NARROWS, new=at)
            return
        if b is None:
            self.add(s, f"budget removed (was {_budget_text(a)})", "loosens budget: no cap on "
                     "what the purpose spends", WIDENS, old=at_a + ("budget",))
            return
        if a.epsilon != b.epsilon:
            up = b.epsilon > a.epsilon
            self.add(s, f"budget epsilon {a.epsilon:g} -> {b.epsilon:g}",
                     "loosens budget: more can be learned about each person" if up else
                     "tightens budget: less can be spent", WIDENS if up else NARROWS,
                     new=at + ("epsilon",))
        if a.delta != b.delta:
            up = b.delta > a.delta
            self.add(s, f"budget delta {a.delta:g} -> {b.delta:g}",
                     "loosens budget (delta)" if up else "tightens budget (delta)",
                     WIDENS if up else NARROWS, new=at + ("delta",))
        if a.scope != b.scope:
            shared = b.scope == "per-purpose"
            self.add(s, f"budget scope {a.scope} -> {b.scope}",
                     "tightens budget: one budget shared by every analyst of the purpose"
                     if shared else "loosens budget: every analyst gets the whole budget",
                     NARROWS if shared else WIDENS, new=at + ("scope",))
        if a.period_days != b.period_days:
            what = f"budget period {_days(a.period_days)} -> {_days(b.period_days)}"
            if b.period_days is None:
                self.add(s, what, "tightens budget: spends never expire", NARROWS,
                         new=at + ("period",))
            elif a.period_days is None or b.period_days < a.period_days:
                self.add(s, what, "loosens budget: spends expire sooner, so the budget "
                         "renews more often", WIDENS, new=at + ("period",))
            else:
                self.add(s, what, "tightens budget: spends count for longer", NARROWS,
                         new=at + ("period",))

    def per_query(self, s: str, key: str, a: float | None, b: float | None,
                  at_b: FieldPath) -> None:
        if a == b:
            return
        what = f"{key} {_num(a)} -> {_num(b)}"
        if b is None or (a is not None and b > a):
            self.add(s, what, "loosens budget: one query may spend more (less noise, and "
                     "the budget can go in fewer queries)", WIDENS, new=at_b + (key,))
        else:
            self.add(s, what, "tightens budget: one query may spend less", NARROWS,
                     new=at_b + (key,))

    # -- columns ----------------------------------------------------------------------------

    def _classification(self, c: Contract, allowed: str) -> str:
        table, _, col = allowed.rpartition(".")
        for t in c.tables:
            if table and t.name != table:
                continue
            column = t.column(col)
            if column is not None:
                return f"a {column.classification} column"
        return ""

    def columns(self) -> None:
        ta = {(t.name, c.name): c for t in self.a.tables for c in t.columns}
        tb = {(t.name, c.name): c for t in self.b.tables for c in t.columns}
        for key in sorted(set(ta) | set(tb)):
            ca, cb = ta.get(key), tb.get(key)
            s = f"column {key[0]}.{key[1]}"
            at_a, at_b = column_path(self.sa, *key), column_path(self.sb, *key)
            if ca is None and cb is not None:
                self.add(s, f"column added ({cb.classification})", "widens collection: the "
                         "product holds more about each person (no purpose reads it until "
                         "allowed)", WIDENS, new=at_b)
            elif cb is None and ca is not None:
                self.add(s, "column removed", "narrows collection (data minimization)",
                         NARROWS, old=at_a)
            elif ca is not None and cb is not None:
                self.column(s, ca, cb, at_b or (), self.bounds_path(key, at_b or ()))

    def bounds_path(self, key: tuple[str, str], at: FieldPath) -> FieldPath:
        """Where the new contract declares a column's DP bounds: the privacy block's
        ``bounds`` (``column`` or ``table.column``), else the deprecated logicalTypeOptions."""
        table, column = key
        for name in (f"{table}.{column}", column):
            path = self.pb + ("bounds", name)
            if self.pb and path in self.sb.key_lines:
                return path
        return at + ("logicalTypeOptions",)

    def column(self, s: str, a: Column, b: Column, at: FieldPath,
               bounds_at: FieldPath | None = None) -> None:
        if a.classification != b.classification:
            looser = PROTECTION_RANK.get(b.classification, 0) < \
                PROTECTION_RANK.get(a.classification, 0)
            self.add(s, f"classification {a.classification} -> {b.classification}",
                     "loosens protection: the column is treated as less identifying "
                     f"({_protection(b.classification)})" if looser else
                     f"tightens protection ({_protection(b.classification)})",
                     WIDENS if looser else NARROWS, new=at + ("classification",))
        if a.bounds != b.bounds:
            self.add(s, f"bounds {_bounds(a.bounds)} -> {_bounds(b.bounds)}",
                     _bounds_effect(a.bounds, b.bounds), NEUTRAL,
                     new=bounds_at or at + ("logicalTypeOptions",))
        if a.categories != b.categories:
            self.add(s, _categories_what(a.categories, b.categories),
                     _categories_effect(a.categories, b.categories),
                     WIDENS if (b.categories and not a.categories) or
                     (a.categories and b.categories and set(b.categories) - set(a.categories))
                     else NEUTRAL, new=at + ("quality",))
        if (a.pii, a.pii_entity) != (b.pii, b.pii_entity):
            self.add(s, f"PII {a.pii}/{a.pii_entity or '-'} -> {b.pii}/{b.pii_entity or '-'}",
                     "changes what the PII autoscan expects in this column", NEUTRAL,
                     new=at + ("customProperties",))
        if a.generalize != b.generalize:
            self.add(s, f"generalization {a.generalize or 'none'} -> {b.generalize or 'none'}",
                     "changes how pseudonymized-rows releases coarsen this column "
                     "(no generalization: released as is)" if not b.generalize else
                     "changes how pseudonymized-rows releases coarsen this column",
                     WIDENS if a.generalize and not b.generalize else NEUTRAL,
                     new=at + ("customProperties",))
        if a.logical_type != b.logical_type:
            self.add(s, f"type {a.logical_type} -> {b.logical_type}", "queries and bounds "
                     "may need review", NEUTRAL, new=at + ("logicalType",))


def _num(v: float | None) -> str:
    return "none" if v is None else f"{v:g}"


def _days(v: int | None) -> str:
    return "none" if v is None else f"{v} days"


def _budget_text(b: Budget | None) -> str:
    if b is None:
        return "no budget"
    period = f", every {b.period_days} days" if b.period_days else ""
    return f"ε {b.epsilon:g}, δ {b.delta:g}, {b.scope}{period}"


def _protection(classification: str) -> str:
    return {"direct-identifier": "never released by DP queries, tokenized in row releases",
            "quasi-identifier": "generalized in pseudonymized row releases",
            "sensitive": "aggregated with noise, never a group key",
            "public": "released as is"}.get(classification, classification)


def _bounds(b: tuple[float, float] | None) -> str:
    return "none" if b is None else f"[{b[0]:g}, {b[1]:g}]"


def _bounds_effect(a, b) -> str:
    if b is None:
        return "no bounds: the column can no longer be summed or averaged in DP queries"
    if a is None:
        return "bounds declared: the column can be aggregated with DP"
    if (b[1] - b[0]) > (a[1] - a[0]):
        return "wider bounds: higher sensitivity, more noise per query, fewer values clamped"
    if (b[1] - b[0]) < (a[1] - a[0]):
        return "narrower bounds: less noise, more values clamped (bias)"
    return "shifted bounds: values are clamped to a different range"


def _categories_what(a, b) -> str:
    if not a:
        return f"categories declared ({len(b)})"
    if not b:
        return "categories removed"
    added, removed = sorted(set(b) - set(a), key=str), sorted(set(a) - set(b), key=str)
    parts = []
    if added:
        parts.append("added " + ", ".join(map(str, added)))
    if removed:
        parts.append("removed " + ", ".join(map(str, removed)))
    return "categories " + ("; ".join(parts) or "reordered")


def _categories_effect(a, b) -> str:
    if not a:
        return ("group keys now declared public: every key is released, even empty ones, "
                "without a noisy threshold — make sure they are public knowledge")
    if not b:
        return ("group keys no longer declared: they are released only behind a noisy "
                "threshold that spends delta")
    if set(b) - set(a):
        return ("more declared group keys released as they are — make sure the new ones are "
                "public knowledge")
    return "fewer declared group keys: the others need the noisy threshold"


def diff_contracts(old: str | Path, new: str | Path) -> ContractDiff:
    """What changes from contract ``old`` to ``new`` (files or product folders).

    Raises :class:`ContractError` listing the problems when either file is not a valid
    contract.
    """
    a, b = _load(old), _load(new)
    d = _Differ(a, b)
    d.product()
    d.purposes()
    d.columns()
    diff = ContractDiff(a[0].path, b[0].path, a[0].version, b[0].version, d.changes)
    if d.changes and a[0].version == b[0].version:
        diff.changes.append(Change("product", f"version unchanged ({b[0].version})",
                                   "bump `version:` so consumers and the ledger's lineage "
                                   "tell the two contracts apart", NEUTRAL, str(b[0].path),
                                   b[1].line(("version",))))
    return diff

