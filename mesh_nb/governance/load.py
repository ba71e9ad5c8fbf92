"""``governance.yaml``: parse and check the mesh-wide rules, reporting ``file:line`` problems.

::

    governanceVersion: 1
    rules:
      - id: purpose-basics
        kind: required-fields
        severity: error            # error | warning
        description: Every purpose says what it is for and on what legal basis.
        rationale: GDPR Art. 5(1)(b) and 6; analysts read both at bind time.
        params: {purpose: [legalBasis, description]}
        products: ["*"]            # optional glob patterns of product names
        enabled: true              # optional

Problems found, each at its line: not a mapping, unknown keys (with a did-you-mean), a missing
or malformed id, a duplicate id, an unknown kind (with a did-you-mean, or why its plugin could
not be loaded), a bad severity, a missing description or rationale, and parameters the kind's
model rejects.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic

from ..contract.yamlsource import FieldPath, YamlSource, read_yaml
from ..errors import Problem
from .rules import SEVERITIES, GovernanceError, Rule, RuleKind, registry

GOVERNANCE_FILE = "governance.yaml"
GOVERNANCE_VERSION = 1
RULE_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
TOP_KEYS = ("governanceVersion", "rules")
RULE_KEYS = ("id", "kind", "severity", "description", "rationale", "params", "products",
             "enabled")


@dataclass(frozen=True)
class Governance:
    """The mesh's rules, checked; ``kinds`` resolves each rule's kind."""

    file: Path
    rules: tuple[Rule, ...]
    kinds: dict[str, RuleKind] = field(default_factory=dict)
    version: int = GOVERNANCE_VERSION

    def kind(self, rule: Rule) -> RuleKind:
        return self.kinds[rule.kind]


def find_governance(root: str | Path) -> Path | None:
    """``governance.yaml`` at the mesh root; for a product folder opened alone, its parent's."""
    root = Path(root)
    for folder in (root, root.parent) if (root / "datacontract.yaml").is_file() else (root,):
        if (folder / GOVERNANCE_FILE).is_file():
            return folder / GOVERNANCE_FILE
    return None


def load_governance(path: str | Path) -> Governance:
    """Load and check ``governance.yaml``; raises :class:`GovernanceError` listing every problem."""
    gov, problems = check_governance(path)
    if problems or gov is None:
        raise GovernanceError(problems)
    return gov


def check_governance(path: str | Path) -> tuple[Governance | None, list[Problem]]:
    """Every problem of a governance file, and the rules when there is none."""
    file = Path(path)
    src, problems = read_yaml(file)
    if src is None or not isinstance(src.data, dict):
        return None, [_retitle(p) for p in problems]
    kinds, broken = registry()
    checker = _Checker(src, kinds, broken)
    rules = checker.rules()
    problems += checker.problems
    problems.sort(key=lambda p: (p.line or 0, p.field))
    if problems:
        return None, problems
    return Governance(file, tuple(rules), {r.kind: kinds[r.kind] for r in rules}), []


def _retitle(p: Problem) -> Problem:
    if p.field == "(document)":
        return Problem(p.file, p.line, p.field, "is not a mapping",
                       "governance.yaml is a mapping: `governanceVersion: 1` and `rules:`")
    return p


def _close(word: str, choices: list[str] | tuple[str, ...]) -> str | None:
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


class _Checker:
    """Builds the rules, collecting every problem instead of stopping at the first."""

    def __init__(self, src: YamlSource, kinds: dict[str, RuleKind], broken: dict[str, str]):
        self.src, self.kinds, self.broken = src, kinds, broken
        self.problems: list[Problem] = []

    def add(self, path: FieldPath, what: str, fix: str) -> None:
        self.problems.append(self.src.problem(path, what, fix))

    def unknown_keys(self, data: dict, at: FieldPath, allowed: tuple[str, ...]) -> None:
        for key in data:
            if key not in allowed:
                close = _close(str(key), allowed)
                self.add(at + (key,), "unknown field",
                         f"did you mean `{close}`?" if close else
                         f"remove it (fields: {', '.join(allowed)})")

    def rules(self) -> list[Rule]:
        d = self.src.data
        self.unknown_keys(d, (), TOP_KEYS)
        if d.get("governanceVersion") != GOVERNANCE_VERSION:
            self.add(("governanceVersion",), "governanceVersion must be 1"
                     if "governanceVersion" in d else "required field `governanceVersion` is "
                     "missing", "write `governanceVersion: 1` at the top")
        items = d.get("rules")
        if not isinstance(items, list) or not items:
            self.add(("rules",), "no rules", "add a `rules:` list with at least one rule")
            return []
        out, first_line = [], {}
        for i, item in enumerate(items):
            rid = item.get("id") if isinstance(item, dict) else None
            if isinstance(rid, str) and rid in first_line:
                self.add(("rules", i, "id"), f"duplicate rule id `{rid}` (first on line "
                         f"{first_line[rid]})", "give every rule its own id")
            elif isinstance(rid, str):
                first_line[rid] = self.src.line(("rules", i))
            rule = self.rule(i, item)
            if rule is not None and item.get("enabled", True):
                out.append(rule)
        return out

    def rule(self, i: int, item: Any) -> Rule | None:
        at: FieldPath = ("rules", i)
        if not isinstance(item, dict):
            self.add(at, "a rule must be a mapping", "write `- id: ..., kind: ..., severity: "
                     "..., description: ..., rationale: ...`")
            return None
        self.unknown_keys(item, at, RULE_KEYS)
        ok = True
        rid = item.get("id")
        if rid is None:
            self.add(at, "required field `id` is missing", "add `id:`, a short slug such as "
                     "`purpose-legal-basis`")
            ok = False
        elif not isinstance(rid, str) or not RULE_ID.match(rid):
            self.add(at + ("id",), "rule id must be a lower-case slug",
                     "use lower-case letters, digits, `.`, `-` and `_`")
            ok = False
        severity = item.get("severity")
        if severity not in SEVERITIES:
            self.add(at + ("severity",) if "severity" in item else at,
                     f"unknown severity `{severity}`" if "severity" in item
                     else "required field `severity` is missing",
                     f"use one of: {', '.join(SEVERITIES)}")
            ok = False
        for key in ("description", "rationale"):
            value = item.get(key)
            if not isinstance(value, str) or not value.strip():
                self.add(at + (key,) if key in item else at,
                         f"required field `{key}` is missing or empty",
                         f"add `{key}:` — " + ("what the rule checks" if key == "description"
                                               else "why the mesh has this rule"))
                ok = False
        products = item.get("products", [])
        if not isinstance(products, list) or not all(isinstance(p, str) for p in products):
            self.add(at + ("products",), "products must be a list of product names or globs",
                     "e.g. `products: [customers, \"sales*\"]`")
            ok = False
        if "enabled" in item and not isinstance(item["enabled"], bool):
            self.add(at + ("enabled",), "enabled must be true or false", "write `enabled: "
                     "false` to switch the rule off")
            ok = False
        kind, params = self.kind(at, item)
        if kind is None or not ok:
            return None
        return Rule(rid, kind, severity, item["description"].strip(),
                    item["rationale"].strip(), params, tuple(products), self.src.line(at))

    def kind(self, at: FieldPath, item: dict) -> tuple[str | None, Any]:
        name = item.get("kind")
        if name is None:
            self.add(at, "required field `kind` is missing",
                     f"add `kind:`, one of: {', '.join(sorted(self.kinds))}")
            return None, None
        name = str(name)
        kind = self.kinds.get(name)  # a built-in wins over a plugin claiming its name
        if kind is None and name in self.broken:
            self.add(at + ("kind",), f"rule kind `{name}` cannot be used: {self.broken[name]}",
                     "fix or reinstall the plugin, or remove the rule")
            return None, None
        if kind is None:
            close = _close(name, sorted(self.kinds))
            self.add(at + ("kind",), f"unknown rule kind `{name}`",
                     f"did you mean `{close}`?" if close else
                     f"use one of: {', '.join(sorted(self.kinds))} (or install its plugin)")
            return None, None
        raw = item.get("params")
        if kind.params is None:
            if raw not in (None, {}):
                self.add(at + ("params",), f"rule kind `{name}` takes no params",
                         "remove `params:`")
                return None, None
            return name, None
        if raw is not None and not isinstance(raw, dict):
            self.add(at + ("params",), "params must be a mapping", "write `params: {...}`")
            return None, None
        try:
            return name, kind.params.model_validate(raw or {})
        except pydantic.ValidationError as exc:
            fields = list(kind.params.model_fields)
            for err in exc.errors():
                loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
                path = at + ("params",) + loc
                if err["type"] == "extra_forbidden":
                    close = _close(str(loc[-1]), fields)
                    self.add(path, "unknown parameter", f"did you mean `{close}`?" if close
                             else f"parameters of `{name}`: {', '.join(fields)}")
                elif err["type"] == "missing":
                    self.add(path[:-1], f"required parameter `{loc[-1]}` is missing",
                             f"add `{loc[-1]}:` under params")
                else:
                    msg = err["msg"].removeprefix("Value error, ")
                    self.add(path, msg, "correct the value (see docs/governance.md)")
            return None, None
