"""Validating OpenLineage events offline against JSON Schemas of the OpenLineage spec.

Where the schemas come from, first found wins for each spec document (``$id``):

1. JSON Schema files shipped inside the installed ``openlineage`` package (openlineage-python
   1.54 ships none, but a later release may);
2. upstream spec files vendored under ``mesh_nb/review/openlineage_spec/`` (verbatim, any file
   layout, found by their ``$id``; none are vendored today — drop the files of the OpenLineage
   release the client targets there, with their licence, to validate against them instead);
3. otherwise, derived here from the openlineage-python client's own model: its classes are
   generated from the spec's JSON Schemas and each names the schema it was generated from
   (``_get_schema()``, e.g. ``…/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/…``).
   Each class becomes a ``$defs`` entry of the document at that URL: its attributes as
   properties, those without a default as ``required``, types, enums and nesting from the
   annotations, and the formats the spec declares (``uuid`` run ids, ``date-time`` event times,
   ``uri`` producers and schema URLs).

mesh_nb's own facet, ``meshnb_privacy``, has its schema in ``schemas/`` beside this module.

:func:`validate_event` checks the event against the core ``RunEvent`` definition and then every
facet against the definition its ``_schemaURL`` names (a facet whose schema is unknown is an
error), so a facet is checked by its own spec, not only as an opaque object.
"""

from __future__ import annotations

import enum
import importlib
import json
import pkgutil
import typing
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Iterator

HERE = Path(__file__).parent
VENDORED = HERE / "openlineage_spec"
OWN_SCHEMAS = HERE / "schemas"
SPEC_PREFIX = "https://openlineage.io/spec/"
DRAFT = "https://json-schema.org/draft/2020-12/schema"

_FORMATS = {"runId": "uuid", "eventTime": "date-time", "producer": "uri", "_producer": "uri",
            "schemaURL": "uri", "_schemaURL": "uri"}
_ALWAYS_REQUIRED = {"producer", "_producer", "schemaURL", "_schemaURL", "eventTime"}
_FACET_MAPS = ("facets", "inputFacets", "outputFacets")


@dataclass
class SpecSchemas:
    """JSON Schema documents by ``$id`` and where each came from."""

    documents: dict[str, dict] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def registry(self):
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        return Registry().with_resources(
            (uri, Resource.from_contents(doc, default_specification=DRAFT202012))
            for uri, doc in self.documents.items())

    def has(self, url: str) -> bool:
        return url.split("#", 1)[0] in self.documents


def _add(spec: SpecSchemas, doc: Any, source: str) -> None:
    if isinstance(doc, dict) and isinstance(doc.get("$id"), str):
        uri = doc["$id"].split("#", 1)[0]
        if uri not in spec.documents:
            spec.documents[uri] = doc
            spec.sources[uri] = source


def _json_files(folder: Path) -> Iterator[tuple[Path, Any]]:
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*.json")):
        try:
            yield path, json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue


@lru_cache(maxsize=1)
def load_spec() -> SpecSchemas:
    """Every spec document we can find offline (see the module docstring for the order)."""
    spec = SpecSchemas()
    try:
        import openlineage

        for folder in map(Path, openlineage.__path__):
            for path, doc in _json_files(folder):
                if str(doc.get("$id", "")).startswith(SPEC_PREFIX):
                    _add(spec, doc, f"openlineage package: {path.name}")
    except ImportError:  # pragma: no cover - openlineage-python is a dependency
        pass
    for path, doc in _json_files(VENDORED):
        _add(spec, doc, f"vendored: {path.relative_to(HERE)}")
    for doc in derived_documents().values():
        _add(spec, doc, "derived from the openlineage-python client's generated model "
                        f"(openlineage-python {_client_version()})")
    for path, doc in _json_files(OWN_SCHEMAS):
        _add(spec, doc, f"mesh_nb: {path.relative_to(HERE)}")
    return spec


def _client_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("openlineage-python")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


# -- deriving schemas from the client's generated classes -------------------------------------


def _own_schema_url(cls: type) -> str | None:
    getter = cls.__dict__.get("_get_schema")
    if getter is None:
        return None
    url = getter.__func__() if isinstance(getter, (staticmethod, classmethod)) else None
    return url if isinstance(url, str) and "#/$defs/" in url else None


def _generated_classes() -> list[type]:
    import attr
    import openlineage.client.generated as gen

    found: dict[str, type] = {}
    for info in pkgutil.iter_modules(gen.__path__):
        module = importlib.import_module(f"{gen.__name__}.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and attr.has(obj) and obj.__module__ == module.__name__:
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return list(found.values())


def _type_schema(tp: Any, stack: tuple[type, ...]) -> dict:
    import attr

    origin = typing.get_origin(tp)
    if origin in (typing.Union, UnionType):
        options = [a for a in typing.get_args(tp) if a is not NoneType]
        schemas = [_type_schema(a, stack) for a in options]
        return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return {"type": "array", "items": _type_schema(item, stack)}
    if origin is dict:
        _, value = typing.get_args(tp) or (str, Any)
        return {"type": "object", "additionalProperties": _type_schema(value, stack)}
    if tp is Any or tp is object:
        return {}
    if isinstance(tp, type):
        if issubclass(tp, enum.Enum):
            return {"type": "string", "enum": [m.value for m in tp]}
        if tp is bool:
            return {"type": "boolean"}
        if tp is int:
            return {"type": "integer"}
        if tp is float:
            return {"type": "number"}
        if tp is str:
            return {"type": "string"}
        if attr.has(tp):
            url = _own_schema_url(tp)
            if url is not None:
                return {"$ref": url}
            if tp in stack:  # pragma: no cover - no anonymous recursive class in the spec
                return {"type": "object"}
            return _class_schema(tp, stack + (tp,))
    return {}


def _class_schema(cls: type, stack: tuple[type, ...] = ()) -> dict:
    import attr

    attr.resolve_types(cls)
    props, required = {}, []
    for a in attr.fields(cls):
        schema = _type_schema(a.type, stack + (cls,))
        if a.name in _FORMATS and schema.get("type") == "string":
            schema = {**schema, "format": _FORMATS[a.name]}
        props[a.name] = schema
        if a.default is attr.NOTHING or not a.init or a.name in _ALWAYS_REQUIRED:
            required.append(a.name)
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


@lru_cache(maxsize=1)
def derived_documents() -> dict[str, dict]:
    """Spec documents rebuilt from the client's generated classes, by document URL."""
    docs: dict[str, dict] = {}
    for cls in _generated_classes():
        url = _own_schema_url(cls)
        if url is None:
            continue
        doc_url, pointer = url.split("#", 1)
        name = pointer.rsplit("/", 1)[-1]
        doc = docs.setdefault(doc_url, {"$schema": DRAFT, "$id": doc_url, "$defs": {}})
        doc["$defs"][name] = _class_schema(cls)
    return docs


# -- validation ---------------------------------------------------------------------------


def _facets(node: Any, where: str) -> Iterator[tuple[str, dict]]:
    """(location, facet) of every facet in an event."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _FACET_MAPS and isinstance(value, dict):
                for name, facet in value.items():
                    if isinstance(facet, dict):
                        yield f"{where}.{key}.{name}", facet
            elif isinstance(value, (dict, list)):
                yield from _facets(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _facets(item, f"{where}[{i}]")


def validate_event(event: dict) -> list[str]:
    """Every way ``event`` (a JSON-ready RunEvent) breaks the spec; empty when it is valid."""
    from ..jsonschemas import import_jsonschema

    jsonschema = import_jsonschema()

    spec = load_spec()
    registry = spec.registry()
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER

    def check(url: str, value: Any, where: str) -> list[str]:
        validator = jsonschema.Draft202012Validator({"$ref": url}, registry=registry,
                                                    format_checker=checker)
        return [f"{where}{'.' + '.'.join(map(str, e.absolute_path)) if e.absolute_path else ''}"
                f": {e.message}" for e in validator.iter_errors(value)]

    event_url = str(event.get("schemaURL") or "")
    if not spec.has(event_url):
        return [f"event: no schema known for schemaURL {event_url!r}"]
    problems = check(event_url, event, "event")
    for where, facet in _facets(event, "event"):
        url = facet.get("_schemaURL")
        if not isinstance(url, str) or not spec.has(url):
            problems.append(f"{where}: no schema known for _schemaURL {url!r}")
            continue
        problems += check(url, facet, where)
    return problems
