"""Validation against the Open Data Contract Standard.

Two published artefacts of the same package check a contract: the JSON Schema it bundles
(strict: rejects misspelt and ad-hoc keys) and its pydantic model (types). Both run; their
findings become :class:`~mesh_nb.errors.Problem` s located by line, one per field path.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Iterator

import pydantic

from ..errors import Problem
from ..jsonschemas import import_jsonschema
from .structure import closest, level_at, misplaced, missing_fix, shape_fix
from .yamlsource import FieldPath, YamlSource

if TYPE_CHECKING:
    import jsonschema

_TYPE_WORDS = {"string": "a string", "boolean": "true or false", "integer": "a whole number",
               "number": "a number", "array": "a list", "object": "a mapping"}


@lru_cache(maxsize=1)
def _schema() -> dict:
    text = resources.files("open_data_contract_standard").joinpath("schema.json").read_text()
    return json.loads(text)


@lru_cache(maxsize=1)
def _validator() -> jsonschema.protocols.Validator:
    schema = _schema()
    return import_jsonschema().validators.validator_for(schema)(schema)


@lru_cache(maxsize=1)
def known_fields() -> frozenset[str]:
    """Every property name the ODCS JSON Schema knows, for did-you-mean hints."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict):
                names.update(props)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(_schema())
    return frozenset(names)


def validate_odcs(src: YamlSource) -> list[Problem]:
    """Problems the ODCS JSON Schema and pydantic model find, at most one per field path."""
    found: dict[FieldPath, Problem] = {}
    for path, problem in _schema_problems(src):
        found.setdefault(path, problem)
    for path, problem in _model_problems(src):
        if not any(path[: len(p)] == p or p[: len(path)] == path for p in found):
            found.setdefault(path, problem)
    return list(found.values())


def _leaves(error: jsonschema.ValidationError) -> Iterator[jsonschema.ValidationError]:
    """The most specific errors under a oneOf/anyOf failure."""
    if error.context:
        deepest = max(len(e.absolute_path) for e in error.context)
        if deepest > len(error.absolute_path):
            for sub in error.context:
                if len(sub.absolute_path) == deepest:
                    yield from _leaves(sub)
            return
    yield error


def _schema_problems(src: YamlSource) -> Iterator[tuple[FieldPath, Problem]]:
    for top in _validator().iter_errors(src.data):
        for e in _leaves(top):
            path = tuple(e.absolute_path)
            yield from _explain(src, path, e)


def _explain(src: YamlSource, path: FieldPath, e: jsonschema.ValidationError
             ) -> Iterator[tuple[FieldPath, Problem]]:
    kind = e.validator
    if kind in ("additionalProperties", "unevaluatedProperties"):
        names = re.findall(r"'([^']+)'", e.message.split("(", 1)[-1])
        level = level_at(src.data, path)
        for name in names:
            if kind == "unevaluatedProperties" and name in (
                    level.fields if level is not None else known_fields()):
                continue  # a field of this level: a cascade of an error reported deeper down
            found = misplaced(src, path, name)
            if found is not None:
                yield path + (name,), src.problem(path + (name,), found.what, found.fix)
                continue
            close = closest(name, src, path, known_fields())
            fix = (f"did you mean `{close}`? fix the spelling" if close
                   else "remove it, or move ad-hoc fields into `customProperties`")
            yield path + (name,), src.problem(path + (name,), "unknown field", fix)
    elif kind == "required":
        name = re.findall(r"'([^']+)'", e.message)[0]
        yield path + (name,), src.problem(path, f"required field `{name}` is missing",
                                          missing_fix(src, path, name))
    elif kind == "enum":
        allowed = ", ".join(str(v) for v in e.validator_value)
        yield path, src.problem(path, f"{_shown(e.instance)} is not an allowed value",
                                f"use one of: {allowed}")
    elif kind == "type":
        want = e.validator_value if isinstance(e.validator_value, str) else e.validator_value[0]
        shape = shape_fix(e.instance, want)
        if isinstance(e.instance, (_dt.date, _dt.datetime)) and want == "string":
            yield path, src.problem(path, "is an unquoted YAML date; ODCS wants a string",
                                    f'quote it: "{e.instance.isoformat()}"')
        elif shape is not None:
            yield path, src.problem(path, *shape)
        else:
            yield path, src.problem(path, f"is {_kind_of(e.instance)}, ODCS wants "
                                    f"{_TYPE_WORDS.get(want, want)}",
                                    f"write {_TYPE_WORDS.get(want, want)} here")
    else:
        yield path, src.problem(path, f"does not fit the ODCS schema ({kind})",
                                "see the Open Data Contract Standard v3 for this field")


def _model_problems(src: YamlSource) -> Iterator[tuple[FieldPath, Problem]]:
    try:
        from open_data_contract_standard.model import OpenDataContractStandard

        OpenDataContractStandard.model_validate(src.data)
    except pydantic.ValidationError as exc:
        for err in exc.errors():
            # pydantic's loc mixes class names into union paths; keep the data path only
            path = tuple(p for p in err["loc"] if isinstance(p, int) or not p[:1].isupper()
                         and "[" not in p)
            yield path, src.problem(path, f"ODCS model: {err['msg']}",
                                    "correct the value's type or shape")


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "empty" if value is None else type(value).__name__


def _shown(value: Any) -> str:
    """Contract values are metadata written by the owner, never data values: safe to quote."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
