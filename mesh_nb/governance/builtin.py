"""The built-in rule kinds. Each is a check function and a strict parameter model.

| kind | reads | checks |
|---|---|---|
| ``required-fields`` | contract | purposes carry e.g. legalBasis and description; products an owner and a contact |
| ``classification-floor`` | contract, data | a column declared or found to hold a listed entity type is classified at least ``floor`` |
| ``dp-excludes-identifiers`` | contract, data | no direct identifier among a dp-aggregate purpose's allowed columns |
| ``pii-drift`` | data | the sampled scan agrees with the declared ``meshNbPiiEntity`` of every column |
| ``budget-ceiling`` | contract, ledger | epsilon / delta per analyst per purpose, per period, per product; spends in the ledger |
| ``access-requirements`` | contract | e.g. raw-rows only with approvers, pseudonymized-rows only with a retention SLA |
| ``forbidden-purposes`` | contract | purpose / domain / access combinations the mesh does not allow |
| ``retention-limit`` | contract | a retention SLA in ``slaProperties``, no longer than ``max`` |
| ``ledger-verified`` | ledger | the owner's ledger verifies (hash chain, signatures, checkpoint) |
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..durations import period_days
from ..errors import LedgerTampered
from .context import ProductContext
from .rules import Finding, Rule, RuleKind


def _direct_entities() -> list[str]:
    """The presidio entity types that name a person directly (the PII registry's list)."""
    from ..pii.entities import DIRECT_ENTITIES  # at call time: the scanner imports pandas

    return sorted(DIRECT_ENTITIES)


#: How protective a classification is; a floor asks for at least its rank.
RANK = {"public": 0, "sensitive": 1, "quasi-identifier": 1, "direct-identifier": 2}
_MIN_SAMPLED = 20  # fewer distinct sampled values: too few to say a declared entity is absent

AccessMode = Literal["dp-aggregate", "pseudonymized-rows", "raw-rows"]


class Params(BaseModel):
    """Base of the parameter models: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: str | None) -> str | None:
    if value is not None and period_days(value) is None:
        raise ValueError("must be an ISO 8601 duration like P30D, P4W, P6M or P3Y")
    return value


# -- required-fields ------------------------------------------------------------------------

PurposeField = Literal["legalBasis", "description", "approvers", "budget", "maxEpsilonPerQuery"]
ProductField = Literal["owner", "contact", "domain", "description", "team"]


class RequiredFieldsParams(Params):
    purpose: list[PurposeField] = Field(default_factory=list)
    product: list[ProductField] = Field(default_factory=list)


_PRODUCT_FIX = {
    "owner": (("team",), "a team member with `role: owner`",
              "add `- {username: you@example.org, role: owner}` under `team.members`"),
    "contact": (("support",), "a support channel with a `url`",
                "add `support: [{channel: email, url: 'mailto:team@example.org'}]`"),
    "domain": (("domain",), "a `domain`", "add `domain: <your domain>`"),
    "description": (("description",), "a `description.purpose`",
                    "add `description: {purpose: ...}`"),
    "team": (("team",), "a `team.name`", "add `team: {name: <team>}`"),
}
_PURPOSE_FIX = {
    "legalBasis": "add `legalBasis:` (e.g. `GDPR Art. 6(1)(f)`)",
    "description": "add a `description:` saying what the purpose is for",
    "approvers": "add `approvers: [owner@example.org]`",
    "budget": "add `budget: {epsilon: 1.0, delta: 1.0e-6, scope: per-analyst, period: P30D}`",
    "maxEpsilonPerQuery": "add `maxEpsilonPerQuery:` (at most the budget's epsilon)",
}


def _product_has(ctx: ProductContext, name: str) -> bool:
    c = ctx.contract
    if name == "owner":
        return any(o.strip() for o in c.owners)
    if name == "contact":
        return any(str(s.get("url") or s.get("invitationUrl") or "").strip()
                   for s in ctx.support())
    return bool(str({"domain": c.domain, "description": c.description, "team": c.team}[name])
                .strip())


def _purpose_has(purpose, name: str) -> bool:
    value = {"legalBasis": purpose.legal_basis, "description": purpose.description,
             "approvers": purpose.approvers, "budget": purpose.budget,
             "maxEpsilonPerQuery": purpose.max_epsilon_per_query}[name]
    return bool(value.strip()) if isinstance(value, str) else bool(value)


def check_required_fields(rule: Rule, ctx: ProductContext) -> Iterator[Finding]:
    """Every product and every purpose carries the listed fields."""
    p: RequiredFieldsParams = rule.params
    for name in p.product:
        if not _product_has(ctx, name):
            at, what, fix = _PRODUCT_FIX[name]
            yield Finding(f"product `{ctx.name}` has no {name}: the contract needs {what}",
                          fix, at)
    for pname, purpose in sorted(ctx.contract.purposes.items()):
        for name in p.purpose:
            if not _purpose_has(purpose, name):
                yield Finding(f"purpose `{pname}` has no `{name}`", _PURPOSE_FIX[name],
                              ctx.purpose_path(pname), purpose=pname)


# -- classification-floor -------------------------------------------------------------------

class FloorParams(Params):
    entities: list[str] = Field(default_factory=_direct_entities, min_length=1)
    floor: Literal["direct-identifier", "quasi-identifier", "sensitive"] = "direct-identifier"


def _found(scan, column: str):
    try:
        return scan[column]
    except KeyError:
        return None


def _evidence(f) -> str:
    return f"{f.share:.0%} of {f.sampled} sampled distinct values"


def check_classification_floor(rule: Rule, ctx: ProductContext) -> Iterator[Finding]:
    """Columns declared (or, with data, found) to hold a listed entity are classified >= floor."""
    p: FloorParams = rule.params
    want = RANK[p.floor]
    fix = f"classify it `{p.floor}`"
    for t, c in ctx.columns():
        if RANK.get(c.classification, 0) >= want:
            continue
        at = ctx.column_path(t.name, c.name, "classification")
        if c.pii_entity in p.entities:
            yield Finding(f"column `{t.name}.{c.name}` declares {c.pii_entity} but is "
                          f"classified {c.classification}", fix, at, table=t.name, column=c.name)
            continue
        scan = ctx.scan(t.name)
        f = _found(scan, c.name) if scan is not None else None
        if f is not None and f.entity in p.entities:
            yield Finding(f"the data of column `{t.name}.{c.name}` holds {f.entity} "
                          f"({_evidence(f)}) but it is classified {c.classification}",
                          f"{fix} and declare `meshNbPiiEntity: {f.entity}`, or remove the "
                          "identifiers from the data", at, table=t.name, column=c.name)


# -- dp-excludes-identifiers ----------------------------------------------------------------

class DpParams(Params):
    entities: list[str] = Field(default_factory=_direct_entities, min_length=1)


def check_dp_excludes_identifiers(rule: Rule, ctx: ProductContext) -> Iterator[Finding]:
    """No dp-aggregate purpose allows a direct identifier (declared, or found in the data)."""
    p: DpParams = rule.params
    for pname, purpose in sorted(ctx.contract.purposes.items()):
        if purpose.access != "dp-aggregate":
            continue
        for name in purpose.allowed_columns:
            found = ctx.resolve_column(name)
            if found is None:
                continue
            t, c = found
            at = ctx.allowed_column_path(pname, name)
            fix = f"remove `{name}` from the purpose's allowedColumns"
            if c.identifier or c.pii_entity in p.entities:
                yield Finding(f"dp-aggregate purpose `{pname}` allows direct identifier "
                              f"`{t.name}.{c.name}`", fix, at, purpose=pname, table=t.name,
                              column=c.name)
                continue
            scan = ctx.scan(t.name)
            f = _found(scan, c.name) if scan is not None else None
            if f is not None and f.entity in p.entities:
                yield Finding(f"dp-aggregate purpose `{pname}` allows `{t.name}.{c.name}`, "
                              f"whose data holds {f.entity} ({_evidence(f)})", fix, at,
                              purpose=pname, table=t.name, column=c.name)


# -- pii-drift ------------------------------------------------------------------------------

class DriftParams(Params):
    entities: list[str] = Field(default_factory=_direct_entities, min_length=1)
    missing: bool = Field(default=True, description="also report a declared entity the "
                                                    "sample no longer shows")


def check_pii_drift(rule: Rule, ctx: ProductContext) -> Iterator[Finding]:
    """The sampled data's PII agrees with the contract's declared entities and columns."""
    p: DriftParams = rule.params
    for t in ctx.contract.tables:
        scan = ctx.scan(t.name)
        if scan is None:
            continue
        seen = {f.column for f in scan.columns}
        for c in t.columns:
            if c.name not in seen:
                yield Finding(f"column `{t.name}.{c.name}` of the contract is not in the data",
                              "restore the column in the data, or remove it from the schema",
                              ctx.column_path(t.name, c.name), table=t.name, column=c.name)
        for f in scan.columns:
            c = t.column(f.column)
            if c is None:
                if f.entity in p.entities:
                    yield Finding(f"the data of `{t.name}` has a column `{f.column}` the "
                                  f"contract does not declare, holding {f.entity} "
                                  f"({_evidence(f)})",
                                  "declare it in the schema (classification, meshNbPiiEntity), "
                                  "or drop it from the data", ctx.table_path(t.name),
                                  table=t.name, column=f.column)
                continue
            at = ctx.column_path(t.name, c.name)
            if f.entity in p.entities and f.entity != c.pii_entity:
                declared = c.pii_entity or "no PII entity"
                yield Finding(f"column `{t.name}.{c.name}` holds {f.entity} ({_evidence(f)}) "
                              f"but the contract declares {declared}",
                              f"declare `meshNbPiiEntity: {f.entity}` with a matching "
                              "classification, or clean the data", at, table=t.name,
                              column=c.name)
            elif (p.missing and c.pii_entity in p.entities and f.entity != c.pii_entity
                  and f.sampled >= _MIN_SAMPLED):
                yield Finding(f"column `{t.name}.{c.name}` declares {c.pii_entity} but the "
                              f"sample shows none ({f.sampled} distinct values checked)",
                              "check the pipeline that fills the column, or update "
                              "`meshNbPiiEntity` to what the column holds now", at,
                              table=t.name, column=c.name)


# -- budget-ceiling -------------------------------------------------------------------------

class CeilingParams(Params):
    epsilon: float | None = Field(default=None, gt=0, description="per analyst per purpose")
    delta: float | None = Field(default=None, ge=0, lt=1)
    period: str | None = Field(default=None, description="the ceiling's window (ISO 8601); "
                                                         "none: a lifetime ceiling")
    productEpsilon: float | None = Field(default=None, gt=0,
                                         description="per analyst over all of a product's "
                                                     "purposes")

    @field_validator("period")
    @classmethod
    def _check_period(cls, value: str | None) -> str | None:
        return _duration(value)


def _windows(ceiling_days: int | None, budget_days: int | None) -> float:
    """How many times a budget can be spent within the ceiling's window (inf: unbounded)."""
    if budget_days is None:
        return 1.0
    if ceiling_days is None:
        return math.inf
    return float(math.ceil(ceiling_days / budget_days))


def _per(days: int | None) -> str:
    return f"per {days} days" if days else "over the product's lifetime"


def check_budget_ceiling(rule: Rule, ctx: ProductContext) -> Iterator[Finding]:
    """Budgets (as declared, and as granted in the ledger) stay under the ceilings."""
    p: CeilingParams = rule.params
    days = period_days(p.period) if p.period else None
    total = 0.0
    for pname, purpose in sorted(ctx.contract.purposes.items()):
        b = purpose.budget
        if b is None:
            continue
        n = _windows(days, b.period_days)
        total += b.epsilon * n
        renew = f", renewing every {b.period_days} days" if b.period_days else ""
        for name, value, limit in (("epsilon", b.epsilon, p.epsilon),
                                   ("delta", b.delta, p.delta)):
            if limit is None or value * n <= limit * (1 + 1e-9):
                continue
            at = ctx.purpose_path(pname, "budget", name)
            if math.isinf(n):
                yield Finding(f"purpose `{pname}`: budget {name} {value:g}{renew} is unbounded "
                              f"over time; the ceiling is {limit:g} {_per(days)}",
                              "remove the budget's `period`, or ask governance for a "
                              "periodic ceiling", at, purpose=pname)
            else:
                over = f" (up to {value * n:g} {_per(days)})" if n > 1 else ""
                yield Finding(f"purpose `{pname}`: budget {name} {value:g}{renew}{over} "
                              f"exceeds the ceiling {limit:g} {_per(days)}",
                              f"lower `{name}` to at most {limit / n:g}"
                              + (" or lengthen the period" if n > 1 else ""), at,
                              purpose=pname)
    if p.productEpsilon is not None and total > p.productEpsilon * (1 + 1e-9):
        yield Finding(f"the purposes of `{ctx.name}` together grant one analyst epsilon "
                      f"{total:g} {_per(days)}, above the product ceiling {p.productEpsilon:g}",
                      "lower the purposes' budget epsilons so that they sum to at most "
                      f"{p.productEpsilon:g}", ctx.policy_path() + ("purposes",))
    yield from _granted(p, days, ctx)


def _granted(p: CeilingParams, days: int | None, ctx: ProductContext) -> Iterator[Finding]:
    """Spends the ledger actually granted within the ceiling's window."""
    ledger = ctx.ledger()
    if ledger is None or (p.epsilon is None and p.productEpsilon is None):
        return
    since = ctx.now - timedelta(days=days) if days else None
    by_purpose: dict[tuple[str, str], int] = defaultdict(int)
    by_analyst: dict[str, int] = defaultdict(int)
    for e in ledger.entries(since=since):
        if e.epsilon_micro and e.purpose:
            by_purpose[(e.purpose, e.analyst or "")] += e.epsilon_micro
            by_analyst[e.analyst or ""] += e.epsilon_micro
    for (pname, analyst), micro in sorted(by_purpose.items()):
        eps = micro / 1_000_000
        if p.epsilon is not None and eps > p.epsilon * (1 + 1e-9):
            yield Finding(f"the ledger shows analyst `{analyst}` was granted epsilon {eps:g} "
                          f"for purpose `{pname}` {_per(days)}, above the ceiling "
                          f"{p.epsilon:g}", "lower the purpose's budget; review the spends "
                          "with `mesh-nb report`", ctx.purpose_path(pname, "budget"),
                          purpose=pname)
    for analyst, micro in sorted(by_analyst.items()):
        eps = micro / 1_000_000
        if p.productEpsilon is not None and eps > p.productEpsilon * (1 + 1e-9):
            yield Finding(f"the ledger shows analyst `{analyst}` was granted epsilon {eps:g} "
                          f"on `{ctx.name}` {_per(days)}, above the product ceiling "
                          f"{p.productEpsilon:g}", "lower the purposes' budgets",
                          ctx.policy_path() + ("purposes",))


# -- access-requirements --------------------------------------------------------------------

Requirement = Literal["approvers", "retention", "acknowledgement", "legalBasis", "budget"]


class AccessParams(Params):
    require: dict[AccessMode, list[Requirement]] = Field(default_factory=dict)
    forbid: list[AccessMode] = Field(default_factory=list)


_REQUIRE_FIX = {
    "approvers": "name who approved it: `approvers: [owner@example.org]`",
    "retention": "add a retention SLA: `slaProperties: [{property: retention, value: 1, "
                 "unit: y}]`",
    "acknowledgement": "add `requiresAcknowledgement: true`",
    "legalBasis": "add `legalBasis:`",
    "budget": "add `budget: {epsilon: .., delta: .., scope: per-analyst}`",
}


def _meets(ctx: ProductContext, purpose, req: str) -> bool:
    if req == "retention":
        r = ctx.retention()
        return r is not None and r.days is not None
    return {"approvers": bool(purpose.approvers),
            "acknowledgement": purpose.requires_acknowledgement,
            "legalBasis": bool((purpose.legal_basis or "").strip()),
            "budget": purpose.budget is not None}[req]


def check_access_requirements(rule: Rule, ctx: ProductContext) -> Iterator[Finding]:
    """Access modes only with what they require (or not at all)."""
    p: AccessParams = rule.params
    for pname, purpose in sorted(ctx.contract.purposes.items()):
        at = ctx.purpose_path(pname, "access")
        if purpose.access in p.forbid:
            yield Finding(f"purpose `{pname}` grants {purpose.access}, which the mesh does not "
                          "allow", f"use another access mode than {purpose.access} "
                          "(dp-aggregate releases only private aggregates)", at, purpose=pname)
            continue
        for req in p.require.get(purpose.access, []):
            if not _meets(ctx, purpose, req):
                what = "a retention SLA on the product" if req == "retention" else f"`{req}`"
                yield Finding(f"{purpose.access} purpose `{pname}` needs {what}",
                              _REQUIRE_FIX[req], at, purpose=pname)


# -- forbidden-purposes ---------------------------------------------------------------------

class Pair(Params):
    domain: str = "*"
    purpose: str = "*"
    access: str = "*"
    reason: str | None = None


class ForbiddenParams(Params):
    pairs: list[Pair] = Field(min_length=1)


def check_forbidden_purposes(rule: Rule, ctx: ProductContext) -> Iterator[Finding]:
    """No purpose matches a forbidden (domain, purpose, access) pattern."""
    p: ForbiddenParams = rule.params
    domain = ctx.contract.domain
    for pname, purpose in sorted(ctx.contract.purposes.items()):
        for pair in p.pairs:
            if (fnmatchcase(domain, pair.domain) and fnmatchcase(pname, pair.purpose)
                    and fnmatchcase(purpose.access, pair.access)):
                why = f": {pair.reason}" if pair.reason else ""
                yield Finding(f"purpose `{pname}` is forbidden in domain `{domain or '(none)'}`"
                              f"{why}", "remove the purpose, or ask the governance group",
                              ctx.purpose_path(pname), purpose=pname)
                break


# -- retention-limit ------------------------------------------------------------------------

class RetentionParams(Params):
    max: str
    required: bool = True

    @field_validator("max")
    @classmethod
    def _check_max(cls, value: str) -> str:
        return _duration(value)


def check_retention_limit(rule: Rule, ctx: ProductContext) -> Iterator[Finding]:
    """A retention SLA in ``slaProperties``, no longer than ``max``."""
    p: RetentionParams = rule.params
    limit = period_days(p.max)
    r = ctx.retention()
    fix = (f"add `{{property: retention, value: N, unit: y}}` to slaProperties, at most {p.max}")
    if r is None:
        if p.required:
            yield Finding(f"product `{ctx.name}` declares no retention", fix, ("slaProperties",))
        return
    if r.days is None:
        yield Finding(f"retention `{r.text}` is not a duration mesh_nb understands",
                      "write a number and a unit (d, w, m, y), e.g. `value: 3, unit: y`", r.at)
    elif limit is not None and r.days > limit:
        yield Finding(f"retention {r.text} ({r.days} days) exceeds the limit {p.max} "
                      f"({limit} days)", f"shorten the retention to at most {p.max}", r.at)


# -- ledger-verified ------------------------------------------------------------------------

def check_ledger_verified(rule: Rule, ctx: ProductContext) -> Iterator[Finding]:
    """The owner's ledger verifies; a product without a ledger yet passes."""
    ledger = ctx.ledger()
    if ledger is None:
        return
    try:
        ledger.verify()
    except LedgerTampered as exc:
        where = f"entry {exc.seq}" if exc.seq is not None else "the ledger"
        yield Finding(f"the owner's ledger fails verification at {where}: {exc.reason}",
                      "restore the ledger from the owner's copy and investigate "
                      "(`mesh-nb ledger verify`)", ())


BUILTIN: tuple[RuleKind, ...] = (
    RuleKind("required-fields", check_required_fields, RequiredFieldsParams,
             description="purposes and products carry the listed fields"),
    RuleKind("classification-floor", check_classification_floor, FloorParams,
             frozenset({"contract", "data"}),
             "columns holding listed entity types are classified at least `floor`"),
    RuleKind("dp-excludes-identifiers", check_dp_excludes_identifiers, DpParams,
             frozenset({"contract", "data"}),
             "no direct identifier among a dp-aggregate purpose's allowed columns"),
    RuleKind("pii-drift", check_pii_drift, DriftParams, frozenset({"data"}),
             "the sampled data's PII matches the declared entities"),
    RuleKind("budget-ceiling", check_budget_ceiling, CeilingParams,
             frozenset({"contract", "ledger"}),
             "budget epsilon/delta per analyst per purpose, per period and per product"),
    RuleKind("access-requirements", check_access_requirements, AccessParams,
             description="access modes only with approvers, retention, ..."),
    RuleKind("forbidden-purposes", check_forbidden_purposes, ForbiddenParams,
             description="purpose/domain/access combinations the mesh forbids"),
    RuleKind("retention-limit", check_retention_limit, RetentionParams,
             description="a retention SLA no longer than `max`"),
    RuleKind("ledger-verified", check_ledger_verified, None, frozenset({"ledger"}),
             "the owner's ledger verifies"),
)
