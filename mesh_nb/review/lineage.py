"""The owner's ledger as OpenLineage run events.

Each session is a parent run (job ``session.<purpose>``: START at ``session.bound``, COMPLETE
at ``session.ended``) and each release a child run of it (job ``release.<purpose>.<query hash>``,
START and COMPLETE at ``query.released``), carrying:

* the ``sql`` job facet: the query as the ledger keeps it, literals replaced by ``?``;
* input datasets ``product.table`` (namespace ``mesh-nb``) with a ``schema`` facet and a
  ``tags`` facet giving every column's classification (and ``pii``/``piiEntity`` tags);
* an output dataset ``releases.<release id>`` with a ``columnLineage`` facet: each released
  column from the input columns it was computed from (DP aggregates marked as masking), and the
  filter/group/join columns as indirect, dataset-wide lineage;
* the ``parent`` run facet naming the session run;
* ``meshnb_privacy``, our own run facet (schema in ``schemas/MeshNbPrivacyRunFacet.json``):
  product, purpose, contract id and version, analyst, access mode, epsilon, delta, the ledger
  entry's sequence number and hash.

Run ids are UUIDs derived from the product and the ledger's session and entry hash, so
exporting twice gives the same ids. Events are built with the openlineage-python client's
classes and written by its FileTransport (one JSON event per line), not through
``OpenLineageClient.emit``: that would add facets from the environment and any
``openlineage.yml`` it finds, and the export must say exactly what the ledger says.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .. import __version__
from ..errors import MeshError
from ..ledger.entry import MICRO, PICO
from ._common import entries_in, parse_since, products_of

if TYPE_CHECKING:
    from ..contract.model import Contract
    from ..ledger import Entry
    from ..mesh import Mesh, Product

PRODUCER = f"urn:mesh-nb:{__version__}"
DATASET_NAMESPACE = "mesh-nb"
PRIVACY_FACET = "meshnb_privacy"
PRIVACY_FACET_SCHEMA = ("urn:mesh-nb:openlineage:facets:1-0-0:MeshNbPrivacyRunFacet.json"
                        "#/$defs/MeshNbPrivacyRunFacet")
_RUN_IDS = uuid.UUID("6d657368-6e62-4f6c-8e65-6167650a0001")  # uuid5 namespace of run ids
_SQL_TYPES = {"string": "VARCHAR", "integer": "BIGINT", "number": "DOUBLE",
              "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP"}


@lru_cache(maxsize=1)
def _privacy_facet_class():
    import attr
    from openlineage.client.facet_v2 import RunFacet

    @attr.define
    class MeshNbPrivacyRunFacet(RunFacet):
        """What the owner's ledger recorded about a session or release (never a value)."""

        product: str
        purpose: str
        contractId: str  # noqa: N815
        contractVersion: str  # noqa: N815
        analyst: str
        access: str
        epsilon: float
        delta: float
        ledgerEntryHash: str  # noqa: N815
        ledgerSeq: int  # noqa: N815
        session: str
        releaseId: str | None = attr.field(default=None)  # noqa: N815
        queryHash: str | None = attr.field(default=None)  # noqa: N815
        mechanism: str | None = attr.field(default=None)
        cached: bool | None = attr.field(default=None)
        rows: int | None = attr.field(default=None)
        releases: int | None = attr.field(default=None)
        _additional_skip_redact: ClassVar[list[str]] = []

        @staticmethod
        def _get_schema() -> str:
            return PRIVACY_FACET_SCHEMA

    return MeshNbPrivacyRunFacet


@dataclass(frozen=True)
class LineageExport:
    """What :func:`export_openlineage` wrote."""

    path: Path
    events: list[dict]
    sessions: int
    releases: int

    def __str__(self) -> str:
        return (f"{len(self.events)} OpenLineage event(s) written to {self.path}: "
                f"{self.sessions} session run(s), {self.releases} release run(s)")


def run_id(product: str, key: str) -> str:
    """A stable UUID for a run of ``product`` (key: a session id or a ledger entry hash)."""
    return str(uuid.uuid5(_RUN_IDS, f"{product}\n{key}"))


def openlineage_events(target: "Mesh | Product", since: datetime | date | str | None = None,
                       *, product: str | None = None,
                       mesh: "Mesh | None" = None) -> list[Any]:
    """The product's sessions and releases as openlineage-python ``RunEvent`` objects.

    Sessions with any entry from ``since`` on are included (with their START even if it is
    older), releases from ``since`` on. ``mesh`` lends the contracts of the other products a
    multi-product release read, for their datasets' schema and tags.
    """
    from ..mesh import Mesh

    start = parse_since(since)
    contracts = {}
    if mesh is None and isinstance(target, Mesh):
        mesh = target
    if mesh is not None:
        contracts = {name: p.contract for name, p in mesh.products.items()}
    events: list[Any] = []
    for p in products_of(target, product):
        contracts.setdefault(p.name, p.contract)
        events += _product_events(p, start, contracts)
    return events


def _product_events(p: "Product", start, contracts: dict[str, "Contract"]) -> list[Any]:
    from openlineage.client.event_v2 import RunState

    everything = p.ledger.entries()
    recent = entries_in(p, start) if start is not None else everything
    keep = {e.session for e in recent if e.session}
    by_session: dict[str, list["Entry"]] = defaultdict(list)
    for e in everything:
        if e.session in keep:
            by_session[e.session].append(e)
    start_ts = start.isoformat() if start is not None else ""
    events: list[Any] = []
    for es in by_session.values():
        bound = next((e for e in es if e.kind == "session.bound"), es[0])
        ended = next((e for e in es if e.kind == "session.ended"), None)
        releases = [e for e in es if e.kind == "query.released" and e.ts >= start_ts]
        rid, job = _session_run(p, bound)
        events.append(_event(RunState.START, bound.ts, (rid, {
            PRIVACY_FACET: _session_privacy(p, bound, [])}, job), inputs=[], outputs=[]))
        for r in releases:
            child, cjob, inputs, outputs = _release_run(p, r, (rid, job), contracts)
            events.append(_event(RunState.START, r.ts, (child[0], child[1], cjob),
                                 inputs=inputs, outputs=[]))
            events.append(_event(RunState.COMPLETE, r.ts, (child[0], child[2], cjob),
                                 inputs=inputs, outputs=outputs))
        # the session's totals: COMPLETE when it ended, else RUNNING as of its last entry
        state, when = (RunState.COMPLETE, ended.ts) if ended else (RunState.RUNNING, es[-1].ts)
        if ended is not None or len(es) > 1:
            events.append(_event(state, when, (rid, {
                PRIVACY_FACET: _session_privacy(p, bound, es)}, job), inputs=[], outputs=[]))
    events.sort(key=lambda ev: ev.eventTime)
    return events


def _event(state, when: str, run_job, *, inputs, outputs):
    from openlineage.client.event_v2 import Run, RunEvent

    rid, run_facets, job = run_job
    return RunEvent(eventType=state, eventTime=when, run=Run(runId=rid, facets=run_facets),
                    job=job, inputs=inputs, outputs=outputs, producer=PRODUCER)


def _privacy(p: "Product", e: "Entry", **extra: Any):
    spec = p.contract.purpose(e.purpose or "")
    return _privacy_facet_class()(
        product=p.name, purpose=e.purpose or "", contractId=p.contract.id,
        contractVersion=p.contract.version, analyst=e.analyst or "",
        access=spec.access if spec else "(undeclared)", ledgerEntryHash=e.hash,
        ledgerSeq=e.seq, session=e.session or "", producer=PRODUCER, **extra)


def _session_privacy(p: "Product", bound: "Entry", es: list["Entry"]):
    """The session's privacy facet: what its releases in ``es`` spent."""
    spends = [e for e in es if e.kind == "query.released"]
    return _privacy(p, bound, epsilon=sum(e.epsilon_micro for e in spends) / MICRO,
                    delta=sum(e.delta_pico for e in spends) / PICO, releases=len(spends))


def _session_run(p: "Product", bound: "Entry"):
    from openlineage.client.event_v2 import Job
    from openlineage.client.facet_v2 import job_type_job

    job = Job(namespace=_job_namespace(p), name=f"session.{bound.purpose}", facets={
        "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="MESH_NB",
                                                jobType="SESSION", producer=PRODUCER)})
    return run_id(p.name, f"session:{bound.session}"), job


def _job_namespace(p: "Product") -> str:
    return f"mesh-nb.{p.name}"


def _release_run(p: "Product", r: "Entry", parent, contracts: dict[str, "Contract"]):
    from openlineage.client.event_v2 import Job
    from openlineage.client.facet_v2 import job_type_job, parent_run, sql_job

    d = r.details
    parent_id, parent_job = parent
    rid = run_id(p.name, f"entry:{r.hash}")
    parent_facet = parent_run.ParentRunFacet(
        run=parent_run.Run(runId=parent_id),
        job=parent_run.Job(namespace=parent_job.namespace, name=parent_job.name),
        producer=PRODUCER)
    privacy = _privacy(p, r, epsilon=r.epsilon, delta=r.delta,
                       releaseId=d.get("release"), queryHash=d.get("query_hash"),
                       mechanism=d.get("mechanism"), cached=d.get("cached"),
                       rows=d.get("rows"))
    query_hash = str(d.get("query_hash") or r.hash)[:12]
    job_facets: dict[str, Any] = {
        "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="MESH_NB",
                                                jobType="QUERY", producer=PRODUCER)}
    if d.get("query"):
        job_facets["sql"] = sql_job.SQLJobFacet(query=str(d["query"]), dialect="duckdb",
                                                producer=PRODUCER)
    job = Job(namespace=_job_namespace(p), name=f"release.{r.purpose}.{query_hash}",
              facets=job_facets)
    columns = [str(c) for c in d.get("columns") or []]
    inputs = _inputs(columns, contracts)
    outputs = _outputs(d, columns, r.purpose, p)
    start_facets = {"parent": parent_facet}
    complete_facets = {"parent": parent_facet, PRIVACY_FACET: privacy}
    return (rid, start_facets, complete_facets), job, inputs, outputs


def _inputs(columns: list[str], contracts: dict[str, "Contract"]) -> list[Any]:
    from openlineage.client.event_v2 import InputDataset
    from openlineage.client.facet_v2 import schema_dataset, tags_dataset

    tables: dict[str, None] = {}
    for c in columns:
        parts = c.split(".")
        if len(parts) == 3:
            tables[f"{parts[0]}.{parts[1]}"] = None
    out = []
    for name in tables:
        product, table = name.split(".")
        contract = contracts.get(product)
        t = contract.table(table) if contract is not None else None
        facets: dict[str, Any] = {}
        if t is not None:
            facets["schema"] = schema_dataset.SchemaDatasetFacet(fields=[
                schema_dataset.SchemaDatasetFacetFields(
                    name=col.name, type=_SQL_TYPES.get(col.logical_type, col.logical_type.upper()),
                    description=col.description or None, ordinal_position=i + 1)
                for i, col in enumerate(t.columns)], producer=PRODUCER)
            tags = []
            for col in t.columns:
                tags.append(tags_dataset.TagsDatasetFacetFields(
                    key="classification", value=col.classification, source="mesh_nb contract",
                    field=col.name))
                if col.pii:
                    tags.append(tags_dataset.TagsDatasetFacetFields(
                        key="pii", value="true", source="mesh_nb contract", field=col.name))
                if col.pii_entity:
                    tags.append(tags_dataset.TagsDatasetFacetFields(
                        key="piiEntity", value=col.pii_entity, source="mesh_nb contract",
                        field=col.name))
            facets["tags"] = tags_dataset.TagsDatasetFacet(tags=tags, producer=PRODUCER)
        out.append(InputDataset(namespace=DATASET_NAMESPACE, name=name, facets=facets))
    return out


def _outputs(d: dict, columns: list[str], purpose: str | None, p: "Product") -> list[Any]:
    from openlineage.client.event_v2 import OutputDataset
    from openlineage.client.facet_v2 import column_lineage_dataset as cl

    release = d.get("release")
    if not release:
        return []
    access = d.get("access") or (p.contract.purpose(purpose or "").access
                                 if p.contract.purpose(purpose or "") else "dp-aggregate")
    direct, indirect = column_lineage(str(d.get("query") or ""), columns)
    identifiers = {f"{p.name}.{t.name}.{c.name}" for t in p.contract.tables for c in t.columns
                   if c.identifier}

    def field(q: str, kind: str, subtype: str, masking: bool, description: str):
        product, table, col = q.split(".")
        return cl.InputField(namespace=DATASET_NAMESPACE, name=f"{product}.{table}", field=col,
                             transformations=[cl.Transformation(
                                 type=kind, subtype=subtype, description=description,
                                 masking=masking)])

    fields = {}
    for out_name, (inputs, aggregated) in direct.items():
        if aggregated:
            items = [field(q, "DIRECT", "AGGREGATION", access == "dp-aggregate",
                           "differentially private aggregate" if access == "dp-aggregate"
                           else "aggregate") for q in inputs]
        else:
            items = [field(q, "DIRECT", "TRANSFORMATION" if q in identifiers else "IDENTITY",
                           q in identifiers, "keyed token" if q in identifiers
                           else "released as is") for q in inputs]
        fields[out_name] = cl.Fields(inputFields=items)
    dataset = [field(q, "INDIRECT", sub, False, sub.lower().replace("_", " "))
               for q, sub in indirect]
    facet = cl.ColumnLineageDatasetFacet(fields=fields, dataset=dataset, producer=PRODUCER)
    return [OutputDataset(namespace=DATASET_NAMESPACE, name=f"releases.{release}",
                          facets={"columnLineage": facet})]


def column_lineage(query: str, columns: list[str]
                   ) -> tuple[dict[str, tuple[list[str], bool]], list[tuple[str, str]]]:
    """From a redacted query and the ledger's qualified columns to column lineage.

    Returns ``{output column: ([product.table.col, ...], aggregated)}`` and the indirect
    ``[(product.table.col, FILTER|GROUP_BY|JOIN|SORT)]``. Falls back to every column as
    indirect lineage when the query cannot be parsed.
    """
    from sqlglot import exp

    from ..query.parse import parse

    known = [c for c in columns if c.count(".") == 2]
    try:
        tree = parse(query)
    except (MeshError, Exception):  # noqa: BLE001 - any parse problem: no column-level lineage
        return {}, [(c, "UNKNOWN") for c in known]
    aliases: dict[str, str] = {}
    for t in tree.find_all(exp.Table):
        if t.db:
            aliases[t.alias_or_name] = f"{t.db}.{t.name}"
            aliases.setdefault(t.name, f"{t.db}.{t.name}")

    def resolve(col: exp.Column) -> str | None:
        if col.table and col.table in aliases:
            q = f"{aliases[col.table]}.{col.name}"
            return q if q in known or not known else None
        matches = [c for c in known if c.rsplit(".", 1)[1] == col.name]
        return matches[0] if len(matches) == 1 else None

    direct: dict[str, tuple[list[str], bool]] = {}
    selects = tree.selects if isinstance(tree, exp.Query) else []
    for i, s in enumerate(selects):
        name = s.alias_or_name if s.alias_or_name not in ("", "*") else f"col{i + 1}"
        inputs = list(dict.fromkeys(q for c in s.find_all(exp.Column) if (q := resolve(c))))
        direct[name] = (inputs, s.find(exp.AggFunc) is not None)
    indirect: list[tuple[str, str]] = []
    for node_type, sub in ((exp.Where, "FILTER"), (exp.Having, "FILTER"),
                           (exp.Group, "GROUP_BY"), (exp.Join, "JOIN"), (exp.Order, "SORT")):
        for node in tree.find_all(node_type):
            for c in node.find_all(exp.Column):
                q = resolve(c)
                if q and (q, sub) not in indirect:
                    indirect.append((q, sub))
    return direct, indirect


def to_dicts(events: list[Any]) -> list[dict]:
    """JSON-ready dicts, as the client serialises them."""
    from openlineage.client.serde import Serde

    return [Serde.to_dict(e) for e in events]


def export_openlineage(target: "Mesh | Product", path: str | Path,
                       since: datetime | date | str | None = None, *,
                       product: str | None = None, mesh: "Mesh | None" = None,
                       validate: bool = True) -> LineageExport:
    """Write the product's sessions and releases to ``path`` as OpenLineage run events.

    One JSON event per line (the client's FileTransport format), replacing the file. With
    ``validate`` (default) every event is checked against the spec's JSON Schemas first and a
    :class:`~mesh_nb.MeshError` lists the problems (nothing is written then).
    """
    from openlineage.client.transport.file import FileConfig, FileTransport

    from .olspec import validate_event

    events = openlineage_events(target, since, product=product, mesh=mesh)
    dicts = to_dicts(events)
    if validate:
        problems = [f"event {i}: {msg}" for i, ev in enumerate(dicts)
                    for msg in validate_event(ev)]
        if problems:
            raise MeshError("OpenLineage events do not validate against the spec (a mesh_nb "
                            "bug: please report it):\n" + "\n".join(problems[:20]))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("", encoding="utf-8")
    transport = FileTransport(FileConfig(log_file_path=str(out), append=True))
    for ev in events:
        transport.emit(ev)
    sessions = {ev["run"]["runId"] for ev in dicts if ev["job"]["name"].startswith("session.")}
    releases = {ev["run"]["runId"] for ev in dicts if ev["job"]["name"].startswith("release.")}
    return LineageExport(out, dicts, len(sessions), len(releases))
