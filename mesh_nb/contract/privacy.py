"""The strict model of our policy, carried in the contract's ``customProperties.meshNbPrivacy``.

ODCS lets custom properties hold anything, so this model closes the gap: unknown keys, wrong
types and impossible values are problems, reported at the YAML line they come from.

The policy also holds each numeric column's DP clamping bounds (``bounds: {column: [lo, hi]}``):
they are a privacy decision, not a validity rule of the data, so they do not live in ODCS's
``logicalTypeOptions.minimum/maximum`` (which ODCS tools test the data against). Old contracts
that put them there still load: :func:`resolve_bounds` reads them as a fallback, with a note.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import Problem
from .yamlsource import FieldPath, YamlSource, column_path

if TYPE_CHECKING:
    from .model import Table

POLICY_PROPERTY = "meshNbPrivacy"
SLUG = r"^[a-z][a-z0-9_-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)


class BudgetSpec(_Strict):
    epsilon: float = Field(gt=0, description="total epsilon of the budget")
    delta: float = Field(default=0.0, ge=0, lt=1, description="total delta of the budget")
    scope: Literal["per-analyst", "per-purpose"] = "per-analyst"
    period: str | None = Field(default=None, pattern=r"^P\d+[DWMY]$",
                               description="ISO 8601 duration after which spends expire")


class PurposeSpec(_Strict):
    description: str = Field(min_length=1)
    legalBasis: str | None = None
    access: Literal["dp-aggregate", "pseudonymized-rows", "raw-rows"]
    allowedColumns: list[str] = Field(min_length=1)
    budget: BudgetSpec | None = None
    maxEpsilonPerQuery: float | None = Field(default=None, gt=0)
    defaultEpsilonPerQuery: float | None = Field(default=None, gt=0)
    requiresAcknowledgement: bool = False
    approvers: list[str] = Field(default_factory=list)


class PrivacySpec(_Strict):
    policyVersion: Literal[1]
    privacyUnit: str = Field(min_length=1)
    maxContributions: int = Field(gt=0)
    joinKeys: list[str] = Field(default_factory=list)
    bounds: dict[str, list[float]] = Field(
        default_factory=dict, description="DP clamping bounds `[lo, hi]` per numeric column "
        "(`column` or `table.column`)")
    purposes: dict[str, PurposeSpec] = Field(min_length=1)
    ledger: str | None = Field(default=None, description="`sqlite` (default) or a PostgreSQL "
                               "URL without password: where the owner's ledger lives")

    @field_validator("bounds")
    @classmethod
    def _pairs(cls, value: dict[str, list[float]]) -> dict[str, list[float]]:
        for key, pair in value.items():
            if len(pair) != 2:
                raise ValueError(f"the bounds of `{key}` are not a pair: write `{key}: [min, max]`")
        return value

    @field_validator("ledger")
    @classmethod
    def _ledger_url(cls, value: str | None) -> str | None:
        from ..ledger.config import ledger_url  # at call time: the ledger imports the contract

        return None if value is None else ledger_url(value)


class GeneralizeSpec(_Strict):
    """How a pseudonymized-rows release coarsens a quasi-identifier (exactly one key)."""

    bin: float | None = Field(default=None, gt=0)
    truncate: Literal["year", "month", "day"] | None = None
    prefix: int | None = Field(default=None, gt=0)


_FIXES = {
    "missing": "add it",
    "extra_forbidden": "remove it or fix the spelling",
    "greater_than": "use a positive number",
    "less_than": "use a smaller number",
    "greater_than_equal": "use zero or more",
    "literal_error": "use one of the listed values",
    "string_pattern_mismatch": "use the documented format",
    "too_short": "list at least one",
}


def policy_path(src: YamlSource) -> FieldPath | None:
    """Field path of the ``meshNbPrivacy`` value in a contract's YAML."""
    for i, item in enumerate((src.data or {}).get("customProperties") or []):
        if isinstance(item, dict) and item.get("property") == POLICY_PROPERTY:
            return ("customProperties", i, "value")
    return None


def parse_model(model: type[BaseModel], value: object, src: YamlSource, at: FieldPath
                ) -> tuple[BaseModel | None, list[Problem]]:
    """Validate ``value`` (found at ``at`` in ``src``) with a strict model."""
    try:
        return model.model_validate(value), []
    except pydantic.ValidationError as exc:
        from .structure import missing_fix

        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
            path = at + loc
            fix = _FIXES.get(err["type"], "correct the value")
            if err["type"] in ("extra_forbidden", "model_type", "dict_type", "list_type"):
                problems.append(_structure_problem(src, path, err["type"]))
                continue
            if err["type"] == "missing":
                problems.append(src.problem(path[:-1], f"required field `{loc[-1]}` is missing",
                                            missing_fix(src, path[:-1], str(loc[-1]))))
                continue
            problems.append(src.problem(path, err["msg"], fix))
        return None, problems


def _structure_problem(src: YamlSource, path: FieldPath, kind: str) -> Problem:
    """An unknown key or a value of the wrong shape: mis-indented (where it belongs), a list
    for a mapping, or a typo (the closest known name)."""
    from .structure import (closest, empty_entry, entry_misplaced, misplaced, shape_fix,
                            value_at)

    value, key = None, path[-1] if path else None
    if kind == "extra_forbidden":
        found = misplaced(src, path[:-1], str(key))
    else:
        value = value_at(src.data, path)
        shape = shape_fix(value, "array" if kind == "list_type" else "object")
        found = entry_misplaced(src, path[:-1], str(key)) or empty_entry(src, path[:-1],
                                                                            str(key))
        if found is None and shape is not None:
            return src.problem(path, *shape)
    if found is not None:
        return src.problem(path, found.what, found.fix)
    if kind != "extra_forbidden":
        want = "a list" if kind == "list_type" else "a mapping of fields"
        return src.problem(path, f"is not {want}", f"write {want} here, indented under it")
    close = closest(str(key), src, path[:-1], _all_fields())
    return src.problem(path, "unknown field", f"did you mean `{close}`? fix the spelling"
                       if close and close != key else "remove it, or check its indentation")


def _all_fields() -> list[str]:
    """Every field name of the policy models, for did-you-mean hints."""
    return sorted({f for m in (PrivacySpec, PurposeSpec, BudgetSpec, GeneralizeSpec)
                   for f in m.model_fields})


def purpose_name_ok(name: str) -> bool:
    return re.match(SLUG, name) is not None


BOUNDS_FORM = "meshNbPrivacy `bounds: {COLUMN: [min, max]}`"
"""How an owner declares a column's DP clamping bounds (named in every error about them)."""


def resolve_bounds(spec: PrivacySpec, tables: list["Table"], src: YamlSource, at: FieldPath
                   ) -> tuple[list["Table"], list[Problem], list[Problem]]:
    """The tables with each column's DP bounds from the policy's ``bounds``, the problems of
    those bounds, and notes (not problems) for columns still bounded the old way.

    A key is a column name (that column in every table) or ``table.column``. A numeric column
    without a policy entry keeps the bounds its ``logicalTypeOptions`` minimum/maximum gave it
    (deprecated: ODCS tools read them as validity constraints), and a note says so.
    """
    problems: list[Problem] = []
    given: dict[tuple[str, str], tuple[float, float]] = {}
    for key, (lo, hi) in spec.bounds.items():
        where = at + ("bounds", key)
        tname, _, cname = key.rpartition(".")
        found = [(t, c) for t in tables if tname in ("", t.name) for c in t.columns
                 if c.name == cname]
        if not found:
            names = sorted({c.name for t in tables for c in t.columns if c.numeric})
            problems.append(src.problem(where, f"bounds for `{key}`, which is not a column",
                                        f"use a numeric column: {', '.join(names) or 'none'}"))
        elif any(not c.numeric for _, c in found):
            problems.append(src.problem(where, f"bounds for `{key}`, which is not numeric",
                                        "remove them: only integer and number columns are "
                                        "clamped"))
        elif not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
            problems.append(src.problem(where, f"bounds [{lo:g}, {hi:g}] of `{key}` are not "
                                        "an interval", "write `[min, max]` with min below max"))
        else:
            given.update({(t.name, c.name): (float(lo), float(hi)) for t, c in found})
    notes: list[Problem] = []
    out = []
    for t in tables:
        columns = []
        for c in t.columns:
            if (t.name, c.name) in given:
                c = replace(c, bounds=given[(t.name, c.name)])
            elif c.bounds is not None:
                path = column_path(src, t.name, c.name)
                notes.append(src.problem(
                    path + ("logicalTypeOptions",) if path else ("schema",),
                    f"deprecated: DP bounds of `{c.name}` read from logicalTypeOptions "
                    "minimum/maximum (ODCS tools test the data against them)",
                    f"move them to {BOUNDS_FORM}, e.g. `{c.name}: [{c.bounds[0]:g}, "
                    f"{c.bounds[1]:g}]`"))
            columns.append(c)
        out.append(replace(t, columns=tuple(columns)))
    return out, problems, notes

