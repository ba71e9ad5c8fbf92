"""Where a misplaced key belongs: YAML structure mistakes told apart from typos.

A block indented one level too little or too much (a dedented purpose, a budget's ``epsilon``
beside the purpose's fields, ``purposes:`` outside the policy's ``value:``) leaves keys that are
known fields of another level of the contract. :func:`misplaced` finds that level from where the
key sits in the document, so the message says the key looks mis-indented, where it belongs
(with the line) and how to indent it; a key that belongs nowhere near is a typo, and
:func:`closest` suggests the nearest known name.

Levels come from the two published shapes of a contract: the ODCS JSON Schema (its
``$defs``, through ``$ref``, ``allOf`` and ``if/then``) and the strict pydantic models of
mesh_nb's policy in ``customProperties``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Iterator

from .yamlsource import FieldPath, YamlSource

ODCS_LABELS = {
    "": "the contract's top level", "SchemaObject": "a table (`schema:` item)",
    "SchemaProperty": "a column (`properties:` item)",
    "SchemaItemProperty": "a column's items", "Server": "a server", "Team": "the team",
    "TeamMember": "a team member", "CustomProperty": "a custom property",
    "DataQuality": "a quality rule", "SupportItem": "a support channel", "Role": "a role",
    "ServiceLevelAgreementProperty": "an SLA property", "Description": "the description",
    "AuthoritativeDefinitions": "an authoritative definition", "Pricing": "the price",
}
POLICY_LABELS = {"PrivacySpec": "the privacy policy (`meshNbPrivacy` value)",
                 "PurposeSpec": "a purpose", "BudgetSpec": "a purpose's `budget`",
                 "GeneralizeSpec": "a generalization (`meshNbGeneralize` value)"}


@dataclass(frozen=True)
class Level:
    """What a mapping at one place of a contract holds: its known ``fields``, or, for a map of
    names (``purposes``), the level of ``each`` value."""

    label: str
    fields: tuple[str, ...] = ()
    each: "Level | None" = None
    node: Any = None  # where its children come from: a schema node or a policy model

    def child(self, key: str | int, data: Any) -> "Level | None":
        """The level of the value at ``key`` of this level (``data`` is this level's value)."""
        if self.each is not None:
            return self.each if isinstance(key, str) else None
        if isinstance(self.node, type):
            return _model_child(self.node, key)
        if isinstance(self.node, list):
            return _schema_child(self.node, key, data)
        return None


# -- the ODCS JSON Schema ------------------------------------------------------------------

@lru_cache(maxsize=1)
def _root() -> dict:
    import json
    from importlib import resources

    text = resources.files("open_data_contract_standard").joinpath("schema.json").read_text()
    return json.loads(text)


def _ref(pointer: str) -> tuple[str, dict]:
    """A ``#/$defs/A/B`` reference -> (the first $defs name, the node)."""
    parts = pointer.lstrip("#/").split("/")
    node: Any = _root()
    for part in parts:
        node = node[part]
    return (parts[1] if len(parts) > 1 and parts[0] == "$defs" else ""), node


def _expand(node: Any, names: list[str]) -> Iterator[dict]:
    """``node`` and every schema it includes by $ref, allOf, anyOf, oneOf or if/then."""
    if not isinstance(node, dict):
        return
    yield node
    if "$ref" in node:
        name, target = _ref(node["$ref"])
        if name:
            names.append(name)
        yield from _expand(target, names)
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in node.get(key) or []:
            yield from _expand(sub, names)
    for key in ("then", "else"):
        yield from _expand(node.get(key), names)


def _schema_level(nodes: Iterable[Any]) -> Level | None:
    names: list[str] = []
    parts = [n for node in nodes for n in _expand(node, names)]
    fields = tuple(dict.fromkeys(k for n in parts for k in (n.get("properties") or {})))
    if not fields and not any("items" in n for n in parts):
        return None
    label = ODCS_LABELS.get(names[0] if names else "", "this block")
    return Level(label, fields, node=list(parts))


def _schema_child(parts: list[dict], key: str | int, data: Any) -> Level | None:
    if isinstance(key, int):
        return _schema_level(n["items"] for n in parts if "items" in n)
    if key == "value" and isinstance(data, dict):  # a custom property: ours has a model
        from .privacy import POLICY_PROPERTY, GeneralizeSpec, PrivacySpec

        model = {POLICY_PROPERTY: PrivacySpec, "meshNbGeneralize": GeneralizeSpec}.get(
            str(data.get("property")))
        if model is not None and any("property" in (n.get("properties") or {}) for n in parts):
            return _model_level(model)
    found = [n["properties"][key] for n in parts if key in (n.get("properties") or {})]
    return _schema_level(found) if found else None


# -- mesh_nb's policy models ----------------------------------------------------------------

def _model_level(model: type) -> Level:
    return Level(POLICY_LABELS.get(model.__name__, model.__name__),
                 tuple(model.model_fields), node=model)


def _model_child(model: type, key: str | int) -> Level | None:
    import types
    import typing

    from pydantic import BaseModel

    info = model.model_fields.get(key) if isinstance(key, str) else None
    if info is None:
        return None
    ann = info.annotation
    union = typing.get_origin(ann) in (typing.Union, types.UnionType)
    args = [a for a in typing.get_args(ann) if a is not type(None)] if union else [ann]
    for a in args:
        if isinstance(a, type) and issubclass(a, BaseModel):
            return _model_level(a)
        if typing.get_origin(a) is dict:
            value = typing.get_args(a)[1]
            if isinstance(value, type) and issubclass(value, BaseModel):
                each = _model_level(value)
                return Level(f"`{key}` (a map of names, each {each.label})", each=each)
    return None


# -- finding where a key belongs ------------------------------------------------------------

def level_at(data: Any, path: FieldPath) -> Level | None:
    """The level of the mapping at ``path`` of a contract document (None where unknown)."""
    level = _schema_level([_root()])
    node = data
    for key in path:
        if level is None:
            return None
        level = level.child(key, node)
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            node = None
    return level


@dataclass(frozen=True)
class Misplaced:
    """A key that looks mis-indented: what to say and how to fix it."""

    what: str
    fix: str


def misplaced(src: YamlSource, at: FieldPath, key: str) -> Misplaced | None:
    """Whether ``key``, unknown in the mapping at ``at``, is a field of a nearby level: a
    block below it (the key was dedented), the block around it (indented too far), or, for a
    mapping value shaped like an entry of a sibling map of names, an entry of that map."""
    here = level_at(src.data, at)
    block = value_at(src.data, at)
    if here is None or not isinstance(block, dict):
        return None
    value = block.get(key)
    for sibling, inner in _blocks_below(here, block):
        if sibling == key:
            continue
        shaped = inner.each is not None and _looks_like(value, inner.each)
        field_of = inner.each if inner.each is not None else inner
        if not shaped and key not in field_of.fields:
            continue
        at_line = src.line(at + (sibling,))
        if shaped:
            return Misplaced(
                f"`{key}` looks like {field_of.label} mis-indented: it sits in {here.label}, "
                f"but is shaped like an entry of `{sibling}:`",
                f"indent it and its lines under `{sibling}:` (line {at_line}), "
                + _line_up(src, at + (sibling,), deeper=False))
        entry = ""
        if inner.each is not None:  # a field of one entry: the empty one, else the last
            entries = value_at(src.data, at + (sibling,))
            entries = entries if isinstance(entries, dict) else {}
            names = [n for n in entries if entries[n] is None] or list(entries)
            if names:
                entry = f"`{names[0]}:` (line {src.line(at + (sibling, names[0]))}) in "
        return Misplaced(
            f"`{key}` is a field of {field_of.label}, not of {here.label}: it looks "
            "mis-indented (dedented one level)",
            f"move it under {entry}`{sibling}:` (line {at_line}): indent it "
            + _line_up(src, at + (sibling,), deeper=inner.each is not None))
    outer = _outer(at)
    up = level_at(src.data, outer) if outer is not None else None
    if up is not None and up.each is None and key in up.fields:
        return Misplaced(
            f"`{key}` is a field of {up.label}, not of {here.label}: it looks mis-indented "
            "(indented one level too far)",
            "move it out of this block: " + _line_up(src, outer, deeper=False, verb="line it "
                                                     "up"))
    return None


def entry_misplaced(src: YamlSource, at: FieldPath, name: str) -> Misplaced | None:
    """An entry of a map of names (``purposes``) whose name is a field of each entry and whose
    value is no mapping: a purpose's field dedented among the purpose names."""
    level = level_at(src.data, at)
    if level is None or level.each is None or name not in level.each.fields:
        return None
    block = value_at(src.data, at)
    names = list(block) if isinstance(block, dict) else []
    before = names[: names.index(name)] if name in names else []
    owner = next((n for n in reversed(before) if n not in level.each.fields), None)
    if owner is None:
        return None
    return Misplaced(f"`{name}` is a field of {level.each.label}, but sits among the "
                     f"names of `{at[-1]}`: it looks mis-indented (dedented one level)",
                     f"indent it under `{owner}:` (line {src.line(at + (owner,))}), "
                     + _line_up(src, at + (owner,), deeper=False))


def empty_entry(src: YamlSource, at: FieldPath, name: str) -> Misplaced | None:
    """An entry of a map of names with no value (``churn-analysis:`` and nothing under it):
    its fields were dedented out of it."""
    level = level_at(src.data, at)
    block = value_at(src.data, at)
    if level is None or level.each is None or not isinstance(block, dict) \
            or block.get(name) is not None:
        return None
    what = level.each.label.removeprefix("a ").removeprefix("an ")
    return Misplaced(f"{what} `{name}` has nothing under it: its fields look "
                     "mis-indented",
                     f"indent its fields ({', '.join(level.each.fields[:3])}, ...) "
                     f"deeper than `{name}:` (line {src.line(at + (name,))})")


def missing_fix(src: YamlSource, at: FieldPath, key: str) -> str:
    """How to fix a required ``key`` missing from the mapping at ``at``: move it here when it
    sits one level up or down (mis-indented), else add it."""
    block = value_at(src.data, at)
    outer = _outer(at)
    places = [outer + (key,)] if outer is not None else []
    if isinstance(block, dict):
        places += [at + (k, key) for k, v in block.items() if isinstance(v, dict)]
    for place in places:
        if isinstance(value_at(src.data, place[:-1]), dict) and key in value_at(
                src.data, place[:-1]):
            return (f"`{key}:` on line {src.line(place)} looks mis-indented: move it here, "
                    + _line_up(src, at, deeper=False))
    return f"add `{key}:` here"


def closest(key: str, src: YamlSource, at: FieldPath, everywhere: Iterable[str] = ()
            ) -> str | None:
    """The known name nearest ``key``: this level's fields first, then ``everywhere``."""
    level = level_at(src.data, at)
    for names in ((level.fields if level else ()), everywhere):
        found = difflib.get_close_matches(key, sorted(names), n=1, cutoff=0.75)
        if found:
            return found[0]
    return None


def value_at(data: Any, path: FieldPath) -> Any:
    """The value at ``path`` of a document (None where there is none)."""
    for key in path:
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _outer(path: FieldPath) -> FieldPath | None:
    """The mapping around the one at ``path`` (a list item's list is skipped)."""
    if not path:
        return None
    path, last = tuple(path[:-1]), path[-1]
    return path[:-1] if isinstance(last, int) and path else path


def _blocks_below(here: Level, block: dict) -> Iterator[tuple[str, Level]]:
    """Each key of ``block`` whose value is a mapping (or a list of them), with its level."""
    for key, value in block.items():
        if not isinstance(key, str):
            continue
        inner = here.child(key, block)
        if isinstance(value, list) and value and isinstance(value[0], dict) and inner:
            inner = inner.child(0, value)
        elif not isinstance(value, dict) and not (inner and inner.each is not None):
            continue
        if inner is not None:
            yield key, inner


def _looks_like(value: Any, level: Level) -> bool:
    """A mapping whose keys are mostly fields of ``level``."""
    if not isinstance(value, dict) or not value:
        return False
    known = sum(k in level.fields for k in value)
    return known >= max(1, (len(value) + 1) // 2)


def _line_up(src: YamlSource, path: FieldPath, *, deeper: bool, verb: str = "to line up"
             ) -> str:
    """``to line up with `key:` (line N)``: the first key inside the block at ``path``
    (``deeper``: inside its first entry), what a moved key lines up with."""
    block = value_at(src.data, path)
    if isinstance(block, list) and block:
        path, block = path + (0,), block[0]
    if deeper and isinstance(block, dict):
        first = next((k for k, v in block.items() if isinstance(v, dict) and v), None)
        path, block = (path + (first,), block[first]) if first is not None else (path, None)
    if not isinstance(block, dict) or not block:
        return "two spaces deeper than the block's name"
    first = next(iter(block))
    return f"{verb} with `{first}:` (line {src.line(path + (first,))})"


def shape_fix(value: Any, want: str) -> tuple[str, str] | None:
    """(what, fix) for a list where a mapping belongs or a mapping where a list belongs."""
    if want == "object" and isinstance(value, list):
        return ("is a list (lines starting with `- `), but a mapping belongs here",
                "remove the `- ` in front of its keys: a mapping's keys line up, with no dash")
    if want == "array" and isinstance(value, dict):
        return ("is a mapping, but a list belongs here",
                "write each item on its own line starting with `- `, or inline as `[a, b]`")
    return None
