"""The wire format between the owner's mesh server and the analyst's client.

Pydantic models for every request and response body; the responses are the ``to_wire()``
forms of :mod:`mesh_nb.values` (frames as base64 Arrow IPC, dtypes intact). Both sides import this module; it needs
only pydantic and pyarrow, so the analyst's client never needs the server's stack.

Only what the purpose's access mode allows is ever put in these models: released aggregates
and their accuracy, or rows of allowed columns after pseudonymization. Error bodies carry
rule ids, names and counts, never a data value.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt,
                      StringConstraints, field_validator)

from . import MAX_BODY  # noqa: F401  (re-exported; defined there for `mesh-nb serve --help`)

API = "/v1"
MAX_HEADERS = 16 * 1024
"""Largest request line plus headers the server takes (bytes); past it, 431."""
MAX_SQL = 20_000
"""Longest query text the server takes (characters)."""
NAME = r"^[A-Za-z0-9_.@+-]{1,128}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- requests ---------------------------------------------------------------------------------

class BindRequest(_Body):
    products: list[str] = Field(min_length=1, max_length=32)
    purpose: str = Field(min_length=1, max_length=128)
    acknowledge: bool = False
    analyst: str | None = Field(default=None, max_length=128,
                                description="must equal the token's name when given")


class QueryRequest(_Body):
    sql: str = Field(min_length=1, max_length=MAX_SQL)
    epsilon: float | None = Field(default=None, gt=0, le=1e9, allow_inf_nan=False)
    delta: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    mechanism: Literal["laplace", "gaussian"] = "laplace"


class RowsRequest(_Body):
    sql: str = Field(min_length=1, max_length=MAX_SQL)


MAX_FIT_INPUT = 2000
"""Longest feature or target expression the server takes (characters)."""
_FitText = Annotated[str, StringConstraints(max_length=MAX_FIT_INPUT)]
_OptionKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
#: An estimator option: a JSON true/false, integer or finite number, never a string (strict:
#: ``"1"`` or ``"yes"`` are refused, not coerced); the estimator checks its range.
_OptionValue = (StrictBool | Annotated[StrictInt, Field(ge=-2**53, le=2**53)]
                | Annotated[StrictFloat, Field(allow_inf_nan=False)])


class FitBody(_Body):
    """``POST /sessions/{sid}/fit``: :class:`mesh_nb.session.FitRequest` on the wire."""

    estimator: str = Field(min_length=1, max_length=64)
    features: list[_FitText] = Field(max_length=64)
    target: _FitText | None = None
    epsilon: float | None = Field(default=None, gt=0, le=1e9, allow_inf_nan=False)
    where: str | None = Field(default=None, max_length=MAX_SQL)
    evaluate: StrictBool | None = None
    table: str | None = Field(default=None, max_length=128)
    product: str | None = Field(default=None, max_length=128)
    options: dict[_OptionKey, _OptionValue] = Field(default_factory=dict, max_length=8)


#: One printable line: no control, line-separator or bidi character (a log or terminal forger).
PRINTABLE = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]+$"
_Label = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=PRINTABLE)]
#: A filter value: printable like a label (the ledger keeps no control character), may be empty.
_Filter = Annotated[str, StringConstraints(pattern=PRINTABLE.replace("]+$", "]*$"))]
_ENTITY = r"^[A-Z][A-Z0-9_]{0,63}$"
_Entity = Annotated[str, StringConstraints(pattern=_ENTITY)]
MAX_PII_REPORTS = 100
"""PII reports one session may send (each is a ledger entry)."""
PII_CAP_RULE = "pii-report-cap"
"""The rule of the refusal once a session has sent :data:`MAX_PII_REPORTS` reports."""


class PiiReport(_Body):
    """What the notebook's PII autoscan found in a frame: names and counts only (entity type
    names as the scanner spells them, column names as one printable line each)."""

    frame: _Label
    columns: list[_Label] = Field(max_length=512)
    entity_types: dict[_Entity, Annotated[int, Field(ge=0, le=10**9)]] = Field(max_length=64)
    rows: int = Field(ge=0, le=10**12)


def pii_report(frame: str, columns: list[str], entity_types: dict[str, int],
               rows: int) -> PiiReport:
    """A scan's findings fitted to :class:`PiiReport`, so an odd frame or column name never
    makes the report fail: a name that is not one printable line of at most 128 characters
    becomes ``frame`` or ``column_<i>``, an entity type the scanner spelled otherwise counts as
    ``OTHER``, and past the limits the smallest types are merged into ``OTHER``."""
    def label(text: object, fallback: str) -> str:
        text = str(text)
        return text if len(text) <= 128 and re.fullmatch(PRINTABLE, text) else fallback

    counts: dict[str, int] = {}
    for entity, n in entity_types.items():
        key = entity if isinstance(entity, str) and re.fullmatch(_ENTITY, entity) else "OTHER"
        counts[key] = counts.get(key, 0) + max(0, int(n))
    if len(counts) > 64:
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        counts = dict(ranked[:63])
        counts["OTHER"] = counts.get("OTHER", 0) + sum(n for _, n in ranked[63:])
    return PiiReport(frame=label(frame, "frame"),
                     columns=[label(c, f"column_{i}") for i, c in enumerate(columns[:512])],
                     entity_types={k: min(n, 10**9) for k, n in counts.items()},
                     rows=min(max(0, int(rows)), 10**12))


class EntriesQuery(_Body):
    """The filters of ``GET /products/{name}/entries``; any other parameter is refused (422)."""

    kind: _Filter | None = Field(default=None, max_length=64)
    purpose: _Filter | None = Field(default=None, max_length=128)
    session: _Filter | None = Field(default=None, max_length=64)
    since: str | None = Field(default=None, max_length=64,
                              description="an ISO date or time, e.g. 2026-11-01")

    @field_validator("since")
    @classmethod
    def _iso(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                datetime.fromisoformat(value)
            except ValueError:
                raise ValueError("not an ISO date or time — e.g. 2026-11-01 or "
                                 "2026-11-01T12:00:00+00:00") from None
        return value


class PurposeRequestBody(_Body):
    products: list[str] = Field(min_length=1, max_length=32)
    purpose: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=2000)


# -- responses --------------------------------------------------------------------------------

class ContractOut(_Body):
    name: str
    yaml: str


class WhoAmI(_Body):
    analyst: str
    purposes: list[str]
    expires: str | None


class SessionOut(_Body):
    id: str
    products: list[str]
    purpose: str
    analyst: str
    access: str
    started: str
    acknowledged: bool


class ReleaseOut(_Body):
    frame: str
    epsilon: float
    delta: float
    accuracy: str
    sql: str
    purpose: str
    products: list[str]
    notes: list[str]
    release_id: str
    cached: bool
    remaining: dict[str, float | None]


class RowReleaseOut(_Body):
    frame: str
    purpose: str
    products: list[str]
    tokenized: list[str]
    generalized: list[str]
    sql: str
    release_id: str


class ModelReleaseOut(_Body):
    """:meth:`mesh_nb.values.ModelRelease.to_wire`: fitted parameters and the card, plain JSON
    (a NaN in either, e.g. an RMSE's undefined interval, is sent as null)."""

    estimator: str
    params: dict[str, Any]
    card: dict[str, Any]
    epsilon: float
    delta: float
    purpose: str
    products: list[str]
    release_id: str
    notes: list[str]
    remaining: dict[str, float | None]


class ExplanationOut(_Body):
    sql: str
    plan: dict[str, Any]
    table: str


class EntryOut(_Body):
    body: str
    hash: str
    sig: str


class PurposeRequestOut(_Body):
    id: str
    analyst: str
    products: list[str]
    purpose: str
    reason: str
    status: Literal["pending", "approved", "denied"]
    created: str
    decided: str | None = None
    decided_by: str | None = None
    note: str | None = None


class ErrorOut(_Body):
    """``type``: policy | budget | failed | mesh | auth | rate | request | internal."""

    type: str
    message: str
    rule: str | None = None
    what: str | None = None
    fix: str | None = None
    budget: dict[str, Any] | None = None
    failed: dict[str, Any] | None = None  # QueryFailed: release_id, epsilon, delta
