"""Row access for ``pseudonymized-rows`` and ``raw-rows`` purposes.

The query is checked (allowed columns only), run on the sandboxed engine, then, for
pseudonymized rows, every direct identifier is replaced by a keyed token and every
quasi-identifier the contract generalizes is coarsened. Each release is logged with its row
count and columns — never a value.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlglot import exp

from ..errors import MeshError, PolicyViolation, QueryFailed
from ..values import RowRelease
from . import policy
from .engines import EngineFailure
from .plan import from_where, totalized
from .pseudonym import generalize, purpose_key, tokenize

if TYPE_CHECKING:
    from ..session import Session


def _query(q: policy.CheckedRows) -> exp.Select:
    """The engine query of a checked row query: its outputs, ORDER BY and LIMIT/OFFSET."""
    outputs = [exp.alias_(o.expr.copy(), o.name, quoted=True) for o in q.outputs]
    query = from_where(q.tables, q.joins, q.where).select(*outputs, copy=False)
    if q.order:
        query = query.order_by(*(o.copy() for o in q.order), copy=False)
    if q.limit is not None:
        query = query.limit(int(q.limit), copy=False)
    return query.offset(int(q.offset), copy=False) if q.offset else query


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
        job = session.engine.prepare(_query(totalized(checked, contracts)))
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
