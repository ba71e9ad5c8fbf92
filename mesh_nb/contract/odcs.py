"""Reading and writing ODCS v3 contracts, from files and from text.

Reading: :func:`check_contract` / :func:`load_contract` take a contract file or a product
folder; :func:`check_contract_text` / :func:`load_contract_text` take the YAML text itself
(a server's published contract), named by a hint so every problem still says ``source:line``.

Writing: a :class:`ContractDoc` (what an owner, ``mesh-nb init`` or the demo declares) becomes
commented YAML text in ODCS field order through :func:`contract_text`, with mesh_nb's policy in
``customProperties.meshNbPrivacy``. Small leaves (lists, budgets, custom properties) are
written inline, and the first line of each kind the reader should understand gets a note.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import ContractError, Problem
from .load import CONTRACT_FILE, build_contract, contract_file
from .model import Contract
from .privacy import POLICY_PROPERTY
from .yamlsource import YamlSource, parse_yaml, read_yaml

API_VERSION = "v3.1.0"
POLICY_ID = "mesh_nb_privacy"
POLICY_DESCRIPTION = ("Per-purpose policy enforced by mesh_nb; written by the data product "
                      "owner.")

# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def check_contract(path: str | Path, *, count_rows: bool = True
                   ) -> tuple[Contract | None, list[Problem]]:
    """Every problem of a contract (a file or a product folder), and the contract when it has
    none."""
    file = contract_file(path)
    src, problems = read_yaml(file)
    return _checked(src, problems, file, resolve=True, count_rows=count_rows)


def check_contract_text(text: str, *, name_hint: str, folder: str | Path | None = None,
                        count_rows: bool = False) -> tuple[Contract | None, list[Problem]]:
    """Every problem of a contract's YAML ``text``, and the contract when it has none.

    With a ``folder``, the text reads as that folder's ``datacontract.yaml`` (data paths
    resolve there; ``count_rows`` checks the files). Without one, the contract is held apart
    from its data: its problems name ``<name_hint>/datacontract.yaml`` (the hint may be a
    product name or a URL), and its path and data paths stay relative to ``name_hint``, as
    written and unresolved.
    """
    file = Path(folder if folder is not None else name_hint) / CONTRACT_FILE
    shown = str(file) if folder is not None else f"{name_hint}/{CONTRACT_FILE}"
    src, problems = parse_yaml(text, shown)
    return _checked(src, problems, file, resolve=folder is not None, count_rows=count_rows)


def load_contract(path: str | Path, *, count_rows: bool = True) -> Contract:
    """Load and check a contract; raises :class:`ContractError` listing every problem."""
    return _loaded(*check_contract(path, count_rows=count_rows))


def load_contract_text(text: str, *, name_hint: str, folder: str | Path | None = None,
                       count_rows: bool = False) -> Contract:
    """Load and check a contract from its YAML text (see :func:`check_contract_text`);
    raises :class:`ContractError` listing every problem."""
    return _loaded(*check_contract_text(text, name_hint=name_hint, folder=folder,
                                        count_rows=count_rows))


def _checked(src: YamlSource | None, problems: list[Problem], file: Path, *, resolve: bool,
             count_rows: bool) -> tuple[Contract | None, list[Problem]]:
    if src is None or not isinstance(src.data, dict):
        return None, problems
    contract, found = build_contract(src, file, resolve=resolve, count_rows=count_rows)
    problems = sorted(problems + found, key=lambda p: (p.line or 0, p.field))
    return (contract if not problems else None), problems


def _loaded(contract: Contract | None, problems: list[Problem]) -> Contract:
    if problems or contract is None:
        raise ContractError(problems)
    return contract


# --------------------------------------------------------------------------------------------
# the document a writer fills in
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnDoc:
    """One schema property: what the owner declares about a column."""

    name: str
    logical_type: str
    classification: str
    description: str = ""
    pii: bool = False
    entity: str | None = None  # presidio entity type expected in the values
    bounds: tuple[float, float] | None = None  # DP clamping bounds (written in the policy)
    categories: tuple | None = None  # the public category set (validValues)
    generalize: Mapping[str, Any] | None = None  # how pseudonymized-rows purposes coarsen it
    options: Mapping[str, Any] | None = None  # further logicalTypeOptions (format, pattern)
    required: bool = False
    primary_key: bool = False
    physical_type: str | None = None

    @property
    def identifier(self) -> bool:
        """A direct identifier: it names the person."""
        return self.classification == "direct-identifier"


@dataclass(frozen=True)
class TableDoc:
    """One schema object (a table) and its columns."""

    name: str
    columns: tuple[ColumnDoc, ...]
    physical_name: str = ""
    description: str = ""


@dataclass(frozen=True)
class ServerDoc:
    """A local data file server; the file's stem is the table's physical name."""

    path: str
    format: str = "parquet"
    server: str = "local"


@dataclass(frozen=True)
class ContractDoc:
    """A whole contract: the ODCS fundamentals, team, servers, schema and the privacy policy
    (the ``meshNbPrivacy`` value as a mapping, written in its own key order)."""

    id: str
    name: str
    team: str
    tables: tuple[TableDoc, ...]
    servers: tuple[ServerDoc, ...]
    policy: Mapping[str, Any]
    description: Mapping[str, str]  # ODCS description: purpose, usage, limitations
    version: str = "1.0.0"
    status: str = "active"
    domain: str = ""
    tags: tuple[str, ...] = ()
    members: tuple[Mapping[str, Any], ...] = ()  # ODCS team members (username, role, ...)
    roles: tuple[Mapping[str, Any], ...] = ()
    retention_years: int | None = None
    support: tuple[Mapping[str, Any], ...] = ()
    comment: str = ""  # written as # lines above the contract


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------

SECTION_COMMENTS = {
    "team": "The owning team. The owner approves row-level purposes and reviews the ledger.",
    "servers": "Where the data lives.",
    "schema": "What each column is. classification, pii and meshNbPiiEntity drive the PII scan "
              "and\npseudonymization; the validValues rule and the policy's bounds drive DP.",
    "customProperties": "The privacy policy: the privacy unit, contribution bound, DP bounds "
                        "and declared purposes.\nAn analyst binds a session to exactly one "
                        "purpose; everything else is refused.",
    "support": "Who to contact about this product.",
}
"""The comment above each section (keyed by its first field)."""

NOTES = {
    "dateIn:": "quoted: an unquoted YAML date fails the ODCS pydantic model",
    "path:": "relative to this file; the file stem is the table name",
    "classification:": "direct-identifier | quasi-identifier | sensitive | public",
    "- {property: pii,": "datacontract-cli reads this as DCS `pii`",
    "- {property: meshNbPiiEntity,": "presidio entity type the PII scan expects in this column",
    "- {property: meshNbGeneralize,": "how pseudonymized-rows purposes coarsen this column",
    "- metric: invalidValues": "the public category set: DP group-bys release every category",
    "privacyUnit:": "the column naming the protected person",
    "maxContributions:": "rows one person keeps after contribution bounding",
    "bounds:": "DP clamping bounds [min, max] per numeric column (not validity rules)",
    "joinKeys:": "columns other products may join on",
    "access: dp-aggregate": "only differentially private aggregates",
    "access: pseudonymized-rows": "rows; identifiers become keyed tokens",
    "maxEpsilonPerQuery:": "largest epsilon one query may spend",
}
"""Notes appended to the first line that starts with the key (for readers of the file)."""


def contract_text(doc: ContractDoc) -> str:
    """The contract ``doc`` as commented ODCS v3.1 YAML text."""
    sections: list[dict] = [
        _header(doc),
        {"team": _team(doc), **({"roles": [dict(r) for r in doc.roles]} if doc.roles else {})},
        {"servers": [{"server": s.server, "type": "local", "path": s.path, "format": s.format}
                     for s in doc.servers]},
        {"schema": [_table(t) for t in doc.tables]},
    ]
    if doc.retention_years is not None:
        sections.append({"slaProperties": [_flow({"property": "retention",
                                                  "value": doc.retention_years, "unit": "y"})]})
    sections.append({"customProperties": [{
        "id": POLICY_ID, "property": POLICY_PROPERTY, "description": POLICY_DESCRIPTION,
        "value": _policy({**doc.policy, "bounds": {**_bounds(doc.tables),
                                                    **doc.policy.get("bounds", {})}})}]})
    if doc.support:
        sections.append({"support": [_flow(s) for s in doc.support]})
    parts = []
    for i, section in enumerate(sections):
        comment = doc.comment if i == 0 else SECTION_COMMENTS.get(next(iter(section)), "")
        parts.append("".join(f"# {c}\n" for c in comment.splitlines()))
        parts.append(_dump(section))
        parts.append("\n")
    return _annotate("".join(parts).rstrip("\n"))


def _header(doc: ContractDoc) -> dict:
    head: dict = {"apiVersion": API_VERSION, "kind": "DataContract", "id": doc.id,
                  "version": doc.version, "name": doc.name, "status": doc.status}
    if doc.domain:
        head["domain"] = doc.domain
    if doc.tags:
        head["tags"] = _flow(list(doc.tags))
    head["description"] = dict(doc.description)
    return head


def _team(doc: ContractDoc) -> dict:
    team: dict = {"name": doc.team}
    if doc.members:
        team["members"] = [dict(m) for m in doc.members]
    return team


def _table(t: TableDoc) -> dict:
    table: dict = {"name": t.name, "physicalType": "table",
                   "physicalName": t.physical_name or t.name}
    if t.description:
        table["description"] = t.description
    table["properties"] = [_property(c) for c in t.columns]
    return table


def _property(col: ColumnDoc) -> dict:
    """One ODCS schema property from a column declaration."""
    prop: dict = {"name": col.name, "logicalType": col.logical_type}
    if col.physical_type:
        prop["physicalType"] = col.physical_type
    options = dict(col.options or {})
    if options:
        prop["logicalTypeOptions"] = _flow(options)
    if col.required:
        prop["required"] = True
    if col.primary_key:
        prop.update(primaryKey=True, unique=True)
    prop["classification"] = col.classification
    if col.description:
        prop["description"] = col.description
    custom = []
    if col.pii:
        prop["tags"] = _flow(["pii"])
        custom.append({"property": "pii", "value": True})
    if col.entity:
        custom.append({"property": "meshNbPiiEntity", "value": col.entity})
    if col.generalize:
        custom.append({"property": "meshNbGeneralize", "value": dict(col.generalize)})
    if custom:
        prop["customProperties"] = [_flow(c) for c in custom]
    if col.categories is not None:
        prop["quality"] = [{"metric": "invalidValues",
                            "arguments": _flow({"validValues": list(col.categories)}),
                            "mustBe": 0}]
    return prop


def _bounds(tables: tuple[TableDoc, ...]) -> dict[str, list]:
    """The policy's ``bounds`` of the columns that declare them (``table.column`` when the name
    is in several tables)."""
    names = [c.name for t in tables for c in t.columns]
    return {(c.name if names.count(c.name) == 1 else f"{t.name}.{c.name}"):
            [int(b) if float(b).is_integer() else b for b in c.bounds]
            for t in tables for c in t.columns if c.bounds is not None}


def _policy(policy: Mapping[str, Any]) -> dict:
    """The meshNbPrivacy value; small leaves (lists, budgets, bounds) inline; empty bounds
    left out."""
    purposes = {
        name: {k: (_flow(v) if isinstance(v, (list, tuple, Mapping)) else v)
               for k, v in p.items()}
        for name, p in policy["purposes"].items()
    }
    head = {k: (_flow(v) if isinstance(v, (list, tuple)) else
                {n: _flow(b) for n, b in v.items()} if k == "bounds" else v)
            for k, v in policy.items() if k != "purposes" and not (k == "bounds" and not v)}
    return {**head, "purposes": purposes}


class _Flow(dict):
    """A mapping written inline: ``{property: pii, value: true}``."""


class _FlowList(list):
    """A list written inline: ``[north, south]``."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    _Flow, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v, flow_style=True))
_Dumper.add_representer(
    _FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


def _flow(value: Any) -> Any:
    """Recursively mark a small structure to be written inline."""
    if isinstance(value, Mapping):
        return _Flow({k: _flow(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return _FlowList(_flow(v) for v in value)
    return value


def _dump(section: dict) -> str:
    return yaml.dump(section, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     width=1000, allow_unicode=True)


def _annotate(text: str) -> str:
    notes = dict(NOTES)
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        for key in list(notes):
            if stripped.startswith(key):
                line = f"{line}  # {notes.pop(key)}"
                break
        lines.append(line)
    return "\n".join(lines) + "\n"
