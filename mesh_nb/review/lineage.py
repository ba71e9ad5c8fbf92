"""The owner's ledger as OpenLineage run events.

Each session is a parent run (job ``session.<purpose>``: START at ``session.bound``, COMPLETE
at ``session.ended``) and each release a child run of it (job ``release.<purpose>.<query hash>``,
START and COMPLETE at ``query.released``, or at ``model.released`` for a DP model: job type
``MODEL``), carrying:

* the ``sql`` job facet: the query as the ledger keeps it, literals replaced by ``?``;
* input datasets named after where their data lives, as the OpenLineage naming spec says
  (:func:`dataset_name`: namespace ``file`` and the absolute path of a parquet/CSV file,
  ``spark://host:port`` and ``[catalog.]schema.table`` of a Spark catalog table), with a
  ``symlinks`` facet giving the mesh name ``product.table`` (namespace ``mesh-nb``), a
  ``schema`` facet and a ``tags`` facet giving every column's classification (and
  ``pii``/``piiEntity`` tags). The tables are those the redacted query reads
  (:func:`query_lineage`, sqlglot's qualify and scopes), so ``COUNT(*)`` has its input too;
* an output dataset ``releases.<release id>`` with a ``columnLineage`` facet: each released
  column from the input columns it was computed from, traced through CTEs and subqueries (DP
  aggregates marked as masking), and the filter/group/join/sort columns as indirect,
  dataset-wide lineage. A model's is ``models.<release id>``: each feature and the target
  from its input columns, all masking (only DP parameters were released), the filter
  columns indirect;
* the ``parent`` run facet naming the session run;
* ``meshnb_privacy``, our own run facet (schema in ``schemas/MeshNbPrivacyRunFacet.json``):
  product, purpose, contract id and version, analyst, access mode, epsilon, delta, the ledger
  entry's sequence number and hash (and a model's estimator).

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
from ..ledger.entry import MICRO, PICO, RELEASE_KINDS
from ._common import entries_in, parse_since, products_of

if TYPE_CHECKING:
    from ..contract.model import Contract, Table
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
        estimator: str | None = attr.field(default=None)
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
        releases = [e for e in es if e.kind in RELEASE_KINDS and e.ts >= start_ts]
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
    spends = [e for e in es if e.kind in RELEASE_KINDS]
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
    model = str(d.get("estimator") or "") if r.kind == "model.released" else None
    parent_id, parent_job = parent
    rid = run_id(p.name, f"entry:{r.hash}")
    parent_facet = parent_run.ParentRunFacet(
        run=parent_run.Run(runId=parent_id),
        job=parent_run.Job(namespace=parent_job.namespace, name=parent_job.name),
        producer=PRODUCER)
    privacy = _privacy(p, r, epsilon=r.epsilon, delta=r.delta,
                       releaseId=d.get("release"), queryHash=d.get("query_hash"),
                       mechanism=d.get("mechanism"), cached=d.get("cached"),
                       rows=d.get("rows"), estimator=model)
    query_hash = str(d.get("query_hash") or r.hash)[:12]
    job_facets: dict[str, Any] = {
        "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="MESH_NB",
                                                jobType="MODEL" if model is not None
                                                else "QUERY", producer=PRODUCER)}
    if d.get("query"):
        job_facets["sql"] = sql_job.SQLJobFacet(query=str(d["query"]), dialect="duckdb",
                                                producer=PRODUCER)
    job = Job(namespace=_job_namespace(p), name=f"release.{r.purpose}.{query_hash}",
              facets=job_facets)
    lineage = query_lineage(str(d.get("query") or ""),
                            [str(c) for c in d.get("columns") or []], _schema_of(contracts))
    names = {t: dataset_name(t, contracts) for t in lineage.tables}
    inputs = [_input(t, names[t], contracts) for t in lineage.tables]
    outputs = _outputs(d, lineage, names, r.purpose, p, model)
    start_facets = {"parent": parent_facet}
    complete_facets = {"parent": parent_facet, PRIVACY_FACET: privacy}
    return (rid, start_facets, complete_facets), job, inputs, outputs


@dataclass(frozen=True)
class DatasetName:
    """An OpenLineage dataset identifier: ``namespace`` (the data source) and ``name``."""

    namespace: str
    name: str


def dataset_name(table: str, contracts: dict[str, "Contract"]) -> DatasetName:
    """The OpenLineage name of mesh table ``product.table``, after where its data lives.

    Following the OpenLineage naming spec: a local file is namespace ``file`` and its absolute
    path; a Spark catalog table is namespace ``spark://host:port`` (the Spark Connect server
    whose catalog holds it; ``spark://localhost`` for a local Spark) and its
    ``[catalog.]schema.table``. A table whose contract is unknown keeps its mesh name in
    namespace ``mesh-nb``.
    """
    contract, t = _table_of(table, contracts)
    if t is not None and t.data_path is not None:
        return DatasetName("file", Path(t.data_path).resolve().as_posix())
    if contract is not None and t is not None and t.source:
        return DatasetName(spark_namespace(contract.spark_remote), t.source)
    return DatasetName(DATASET_NAMESPACE, table)


def _table_of(table: str, contracts: dict[str, "Contract"]
              ) -> tuple["Contract | None", "Table | None"]:
    """The contract and contract table of mesh table ``product.table`` (None: unknown)."""
    product, _, name = table.partition(".")
    contract = contracts.get(product)
    return contract, contract.table(name) if contract is not None else None


def spark_namespace(remote: str | None) -> str:
    """``spark://host:port`` of a Spark Connect URL (its parameters, a token among them,
    dropped), or ``spark://localhost`` for a local Spark session."""
    from urllib.parse import urlsplit

    if not remote:
        return "spark://localhost"
    where = urlsplit(remote.split(";", 1)[0])
    host = where.hostname or "localhost"
    return f"spark://{host}:{where.port or 15002}"


def _schema_of(contracts: dict[str, "Contract"]) -> dict[str, dict[str, dict[str, str]]]:
    """The contracts' tables as a sqlglot schema: {product: {table: {column: type}}}."""
    return {product: {t.name: {c.name: _SQL_TYPES.get(c.logical_type, "VARCHAR")
                               for c in t.columns} for t in c.tables}
            for product, c in contracts.items()}


def _input(table: str, where: DatasetName, contracts: dict[str, "Contract"]):
    from openlineage.client.event_v2 import InputDataset
    from openlineage.client.facet_v2 import schema_dataset, symlinks_dataset, tags_dataset

    t = _table_of(table, contracts)[1]
    facets: dict[str, Any] = {}
    if where.namespace != DATASET_NAMESPACE:
        facets["symlinks"] = symlinks_dataset.SymlinksDatasetFacet(identifiers=[
            symlinks_dataset.Identifier(namespace=DATASET_NAMESPACE, name=table, type="TABLE")],
            producer=PRODUCER)
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
    return InputDataset(namespace=where.namespace, name=where.name, facets=facets)


def _outputs(d: dict, lineage: "QueryLineage", names: dict[str, DatasetName],
             purpose: str | None, p: "Product", model: str | None = None) -> list[Any]:
    """The release's output dataset and its column lineage. A model (``model``: its
    estimator) was checked as an aggregate query over its inputs (features and target as
    its outputs, ``fit_rows`` beside them, categorical ones as group keys): its lineage is
    every input masked into the model's parameters, the filter indirect."""
    from openlineage.client.event_v2 import OutputDataset
    from openlineage.client.facet_v2 import column_lineage_dataset as cl

    release = d.get("release")
    if not release:
        return []
    access = d.get("access") or (p.contract.purpose(purpose or "").access
                                 if p.contract.purpose(purpose or "") else "dp-aggregate")
    identifiers = {f"{p.name}.{t.name}.{c.name}" for t in p.contract.tables for c in t.columns
                   if c.identifier}

    def field(q: str, kind: str, subtype: str, masking: bool, description: str):
        table, col = q.rsplit(".", 1)
        where = names.get(table) or DatasetName(DATASET_NAMESPACE, table)
        return cl.InputField(namespace=where.namespace, name=where.name, field=col,
                             transformations=[cl.Transformation(
                                 type=kind, subtype=subtype, description=description,
                                 masking=masking)])

    fields = {}
    for out_name, (inputs, aggregated) in lineage.direct.items():
        if model is not None:
            if out_name == "fit_rows":
                continue
            items = [field(q, "DIRECT", "AGGREGATION", True,
                           f"differentially private model parameters ({model})")
                     for q in inputs]
        elif aggregated:
            items = [field(q, "DIRECT", "AGGREGATION", access == "dp-aggregate",
                           "differentially private aggregate" if access == "dp-aggregate"
                           else "aggregate") for q in inputs]
        else:
            items = [field(q, "DIRECT", "TRANSFORMATION" if q in identifiers else "IDENTITY",
                           q in identifiers, "keyed token" if q in identifiers
                           else "released as is") for q in inputs]
        fields[out_name] = cl.Fields(inputFields=items)
    dataset = [field(q, "INDIRECT", sub, False, sub.lower().replace("_", " "))
               for q, sub in lineage.indirect if model is None or sub != "GROUP_BY"]
    facet = cl.ColumnLineageDatasetFacet(fields=fields, dataset=dataset, producer=PRODUCER)
    kind = "releases" if model is None else "models"
    return [OutputDataset(namespace=DATASET_NAMESPACE, name=f"{kind}.{release}",
                          facets={"columnLineage": facet})]


@dataclass(frozen=True)
class QueryLineage:
    """What a release read: its input tables and its column lineage.

    ``tables``: ``product.table`` in the order the query names them; ``direct``:
    ``{output column: ([product.table.col, ...], aggregated)}``; ``indirect``:
    ``[(product.table.col, FILTER|GROUP_BY|JOIN|SORT|UNKNOWN)]``.
    """

    tables: list[str]
    direct: dict[str, tuple[list[str], bool]]
    indirect: list[tuple[str, str]]


_CLAUSES = {"where": "FILTER", "having": "FILTER", "group": "GROUP_BY", "joins": "JOIN",
            "order": "SORT"}


def query_lineage(query: str, columns: list[str],
                  schema: dict[str, dict[str, dict[str, str]]] | None = None) -> QueryLineage:
    """From a redacted query (and the ledger's qualified columns) to what it read.

    The query is qualified by sqlglot against ``schema`` (the contracts' tables as
    ``{product: {table: {column: type}}}``) and the ledger's ``product.table.col`` columns
    (``COUNT(*)`` has none: its table comes from the query); each column is traced
    through CTEs and subqueries to the table it comes from. A query that cannot be parsed or
    qualified gives the ledger's tables and every column as ``UNKNOWN`` indirect lineage.
    """
    from sqlglot import exp
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import traverse_scope

    from ..query.parse import DIALECT, parse

    known = [c for c in columns if c.count(".") == 2]
    merged: dict[str, dict[str, dict[str, str]]] = {
        p: {t: dict(cols) for t, cols in ts.items()} for p, ts in (schema or {}).items()}
    for c in known:
        product, table, col = c.split(".")
        merged.setdefault(product, {}).setdefault(table, {}).setdefault(col, "VARCHAR")
    try:
        tree = parse(query)
        names = [s.alias_or_name if s.alias_or_name not in ("", "*") else f"col{i + 1}"
                 for i, s in enumerate(tree.selects)] if isinstance(tree, exp.Query) else []
        scopes = traverse_scope(qualify(tree.copy(), schema=merged, dialect=DIALECT,
                                        validate_qualify_columns=False,
                                        quote_identifiers=False))
    except Exception:  # noqa: BLE001 - any parse problem: table-level lineage from the ledger
        tables = list(dict.fromkeys(c.rsplit(".", 1)[0] for c in known))
        return QueryLineage(tables, {}, [(c, "UNKNOWN") for c in known])
    real = {f"{s.db}.{s.name}" for scope in scopes for s in scope.sources.values()
            if isinstance(s, exp.Table) and s.db}
    tables = list(dict.fromkeys(n for t in tree.find_all(exp.Table) if (n := f"{t.db}.{t.name}")
                                in real))
    root = scopes[-1]
    direct = {name: _trace(s, root) for name, s in zip(names, root.expression.selects)}
    indirect: dict[tuple[str, str], None] = {}
    for scope in scopes:
        used = [(c, _clause_of(c, scope.expression)) for c in scope.columns]
        if scope.is_subquery and scope.parent is not None:  # `WHERE x IN (SELECT y ...)`
            clause = _clause_of(scope.expression, scope.parent.expression)
            used += [(sel, clause) for sel in scope.expression.selects]
        for node, clause in used:
            sub = _CLAUSES.get(clause or "")
            for o in _trace(node, scope)[0] if sub else ():
                indirect[(o, sub)] = None
    return QueryLineage(tables, direct, list(indirect))


def _clause_of(col, top) -> str | None:
    """The clause of ``top`` (where, group, joins, ...) that holds ``col``."""
    node = col
    while node.parent is not None and node.parent is not top:
        node = node.parent
    return node.arg_key if node.parent is top else None


def _trace(node, scope) -> tuple[list[str], bool]:
    """``([product.table.col, ...], aggregated)``: the table columns an expression of
    ``scope`` is computed from, through CTEs and subqueries, and whether an aggregate is on
    the way."""
    from sqlglot import exp

    mine = {id(c) for c in scope.columns}
    origins: list[str] = []
    aggregated = node.find(exp.AggFunc) is not None
    for col in (c for c in node.find_all(exp.Column) if id(c) in mine):
        source = scope.sources.get(col.table)
        if isinstance(source, exp.Table):
            origins += [f"{source.db}.{source.name}.{col.name}"] if source.db else []
            continue
        for s in getattr(getattr(source, "expression", None), "selects", ()):
            if s.alias_or_name == col.name:
                inner, agg = _trace(s, source)
                origins, aggregated = origins + inner, aggregated or agg
    return list(dict.fromkeys(origins)), aggregated


def column_lineage(query: str, columns: list[str]
                   ) -> tuple[dict[str, tuple[list[str], bool]], list[tuple[str, str]]]:
    """The column lineage of :func:`query_lineage`: ``(direct, indirect)``."""
    lineage = query_lineage(query, columns)
    return lineage.direct, lineage.indirect


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
