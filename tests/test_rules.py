"""The rule registry: every rule id a PolicyViolation names anywhere in mesh_nb is declared once
in mesh_nb.rules, and every declared rule is raised somewhere (read with ``ast``; the policy's
tables of rules are read from the modules themselves)."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

from mesh_nb.errors import PolicyViolation
from mesh_nb.query import policy
from mesh_nb.query.policy.postprocess import NOT_OUTPUT_RULES
from mesh_nb.query.policy.whitelist import CLAUSE_RULES, CONTEXT_IDENTIFIER_RULES, NODE_RULES
from mesh_nb.rules import FAMILIES, REGISTRY, STAGES, rule_of, titles, violation

PACKAGE = Path(__file__).resolve().parents[1] / "mesh_nb"
RAISERS = ("PolicyViolation", "violation")

#: Where a rule id is not written as a literal at the call: the client re-raises the server's
#: refusal, and the policy raises from its tables (checked below) or by its context.
DYNAMIC = {
    ("remote.py", "err['rule']"),
    ("query/policy/shape.py", "rule"),
    ("query/policy/expressions.py", "rule"),
    ("query/policy/scope.py", "CONTEXT_IDENTIFIER_RULES[context]"),
    ("query/policy/postprocess.py", "rule"),
}


@cache
def raised() -> tuple[set[str], set[str], set[tuple[str, str]]]:
    """(literal ids, families of ``family:...`` ids, dynamic call sites) of every call of
    PolicyViolation or violation in the package (but the registry)."""
    literal, families, dynamic = set(), set(), set()
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "rules.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name not in RAISERS:
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                literal.add(first.value)
            elif (isinstance(first, ast.JoinedStr) and isinstance(first.values[0], ast.Constant)
                  and str(first.values[0].value).endswith(":")):
                families.add(str(first.values[0].value)[:-1])
            else:
                dynamic.add((path.relative_to(PACKAGE).as_posix(), ast.unparse(first)))
    return literal, families, dynamic


def from_tables() -> set[str]:
    """The ids the policy raises from its tables of rules."""
    return ({rule for _, rule, _, _ in NODE_RULES} | {rule for rule, _, _ in CLAUSE_RULES.values()}
            | set(CONTEXT_IDENTIFIER_RULES.values()) | set(NOT_OUTPUT_RULES.values()))


def test_the_walk_finds_the_raise_sites() -> None:
    literal, families, dynamic = raised()
    assert {"parse", "epsilon", "identity", "engine-rejected", "mixed-access"} <= literal
    assert families == {"governance"}
    assert dynamic == DYNAMIC, "a rule id computed at the call: add it to DYNAMIC if checked"


def test_every_raised_rule_is_registered() -> None:
    literal, families, _ = raised()
    assert literal - set(REGISTRY) == set()
    assert from_tables() - set(REGISTRY) == set()
    assert families <= set(FAMILIES) <= set(REGISTRY)


def test_every_registered_rule_is_raised() -> None:
    literal, families, _ = raised()
    assert set(REGISTRY) - literal - from_tables() - families == set()


def test_each_rule_says_what_breaks_it_and_how_to_fix_it() -> None:
    for rule in REGISTRY.values():
        assert rule.title and rule.fix and rule.stage in STAGES, rule
    assert policy.RULES == titles("query")
    assert set(titles("request")) == {"epsilon", "epsilon-too-large", "delta", "mechanism",
                                      "threshold-needs-delta", "gaussian-needs-delta",
                                      "fit-access", "fit-estimator", "fit-features",
                                      "fit-target", "fit-table", "fit-categories", "fit-option"}


def test_violation_names_a_registered_rule() -> None:
    exc = violation("no-table", "the query reads no contract table")
    assert isinstance(exc, PolicyViolation) and exc.fix == REGISTRY["no-table"].fix
    assert violation("limit", "LIMIT must be one non-negative integer", "write LIMIT 5").fix \
        == "write LIMIT 5"
    with pytest.raises(KeyError, match="not-a-rule"):
        violation("not-a-rule", "what", "fix")
    assert rule_of("governance:required-fields") is REGISTRY["governance"]
    assert rule_of("limit") is REGISTRY["limit"]


def test_the_registry_is_import_light() -> None:
    tree = ast.parse((PACKAGE / "rules.py").read_text())
    imported = {n.module for n in tree.body if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    assert imported == {"__future__", "dataclasses", "errors"}


def test_the_check_runs_its_rules_in_order() -> None:
    assert policy.AGGREGATE_RULES[:len(policy.SHARED_RULES)] == policy.SHARED_RULES
    assert policy.ROW_RULES[:len(policy.SHARED_RULES)] == policy.SHARED_RULES
    for rule in {*policy.AGGREGATE_RULES, *policy.ROW_RULES}:
        assert not rule.__name__.startswith("_") and rule.__doc__, rule
