"""Row access for ``pseudonymized-rows`` and ``raw-rows`` purposes.

The query is checked (allowed columns only), run on the sandboxed engine, then, for
pseudonymized rows, every direct identifier is replaced by a keyed token and every
quasi-identifier the contract generalizes is coarsened. Each release is logged with its row
count and columns — never a value.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING


from ..errors import MeshError, PolicyViolation, QueryFailed
from ..values import RowRelease
from . import policy
from .engines import EngineFailure
from .plan import from_where, totalized
from .pseudonym import generalize, purpose_key, tokenize

if TYPE_CHECKING:
    from ..session import Session


def _sql(q: policy.CheckedRows) -> str:
    outputs = ", ".join(f'{o.expr.sql("duckdb")} AS "{o.name}"' for o in q.outputs)
    order = (" ORDER BY " + ", ".join(o.sql("duckdb") for o in q.order)) if q.order else ""
    limit = f" LIMIT {int(q.limit)}" if q.limit is not None else ""
    offset = f" OFFSET {int(q.offset)}" if q.offset else ""
    return f"SELECT {outputs}{from_where(q.tables, q.joins, q.where)}{order}{limit}{offset}"


def run_rows(session: "Session", sql: str) -> RowRelease:
    """Check and run a row query; see :meth:`mesh_nb.Session.rows`."""
    from .runner import reject

    session.check_open()
    if session.access == "dp-aggregate":
        raise MeshError(f"purpose `{session.purpose}` releases only differentially private "
                        "aggregates — use session.query(sql)")
    contracts = {p.name: p.contract for p in session.products}
    try:
        checked = policy.check_rows(sql, contracts, session.purpose)
        job = session.engine.prepare(_sql(totalized(checked, contracts)))
    except PolicyViolation as exc:
        reject(session, sql, exc)
        raise
    release_id = uuid.uuid4().hex[:12]
    try:
        frame = job.run()
    except EngineFailure as exc:  # the same message whatever failed (it may follow the data)
        session.record("query.failed",
                       {"release": release_id, "rule": exc.kind, "access": session.access})
        raise QueryFailed(release_id) from None
    tokenized, generalized = [], []
    if session.access == "pseudonymized-rows":
        for o in checked.outputs:
            product = session.product(o.column.split(".", 1)[0])
            if o.source.identifier:
                key = purpose_key(product.owner_dir, session.purpose)
                frame[o.name] = tokenize(frame[o.name], key, o.source.name)
                tokenized.append(o.name)
            elif o.source.generalize:
                frame[o.name] = generalize(frame[o.name], o.source.generalize)
                generalized.append(o.name)
    session.record("query.released", {
        "query": checked.redacted, "query_hash": checked.query_hash,
        "columns": list(checked.columns), "rows": len(frame), "access": session.access,
        "release": release_id})
    return RowRelease(frame, session.purpose, session.product_names, tuple(tokenized),
                      tuple(generalized), checked.redacted, release_id)
