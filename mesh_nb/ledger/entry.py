"""One ledger entry: what is recorded, how it is serialised, hashed and checked for data values.

An entry's *body* is every field but ``hash`` and ``sig`` (so it includes ``seq`` and ``prev``),
serialised as canonical JSON. ``hash = sha256(prev + "\\n" + body)``, so each hash commits to
the whole chain before it; ``sig`` is the owner's Ed25519 signature of :func:`signing_message`.

``details`` never holds a data value: only the keys of :data:`DETAIL_TYPES` are accepted, each
with its declared type. Extend that mapping (and only it) when a feature needs a new key.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Callable, Iterator, Mapping, get_args, get_origin

KINDS: tuple[str, ...] = (
    "session.bound", "session.ended", "query.released", "query.rejected", "pii.detected",
    "budget.exhausted",
    # a query whose budget was reserved (its query.released entry, same release id) and that
    # the engine did not complete: ``rule`` is the failure class, never the engine's message
    "query.failed",
    # the owner's mesh server (mesh_nb.server): purposes that need an approver's approval
    "purpose.requested", "purpose.approved", "purpose.denied",
    # mesh governance (mesh_nb.governance): a bind refused by an error-level mesh-wide rule
    "session.refused",
    # a differentially private model trained on the owner's side (mesh_nb.query.fit): its
    # spend; a fit that fails after it records query.failed with the same release id
    "model.released",
)

#: The kinds that release something to the analyst and record its spend: an aggregate (or
#: rows) and a model. What reads spends or counts releases reads these.
RELEASE_KINDS: tuple[str, ...] = ("query.released", "model.released")

#: The only keys ``details`` may hold, and their types. Values are names, counts, ids and
#: redacted query text: never a value read from the data.
DETAIL_TYPES: Mapping[str, Any] = MappingProxyType({
    "query": str,                 # query text, literals already redacted by the caller
    "query_hash": str,
    "columns": list[str],
    "tables": list[str],
    "rows": int,
    "groups": int,
    "entity_types": dict[str, int],
    "frame": str,                 # a variable name
    "products": list[str],
    "acknowledged": bool,
    "rule": str,
    "reason": str,
    "mechanism": str,
    "access": str,
    "release": str,               # a release id
    "requested_epsilon": float,
    "remaining_epsilon": float,
    "cached": bool,
    "previous_session": str,
    "request": str,               # a purpose request id (mesh_nb.server)
    "approver": str,              # who approved or denied it, as the contract names them
    "estimator": str,             # a model's estimator class (model.released)
    "features": list[str],        # a model's feature names (model.released)
    "target": str,                # a model's target name, "" without one (model.released)
})

GENESIS = "0" * 64
"""The ``prev`` of entry 1."""

MICRO = 1_000_000
PICO = 1_000_000_000_000
_ENTRY_DOMAIN = b"mesh_nb.ledger.entry.v1\n"


def canonical_json(obj: Any) -> str:
    """The one serialisation that is hashed and signed: sorted keys, no spaces, UTF-8 text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def chain_hash(prev: str, body_json: str) -> str:
    """``sha256(prev + "\\n" + body)`` as hex."""
    return hashlib.sha256(f"{prev}\n{body_json}".encode("utf-8")).hexdigest()


def signing_message(entry_hash: str) -> bytes:
    """The bytes the owner signs for an entry (domain-separated from checkpoints)."""
    return _ENTRY_DOMAIN + entry_hash.encode("ascii")


#: The largest epsilon one entry or budget may carry (integer sums stay exact far beyond it).
MAX_EPSILON = 1e9


def _to_units(value: float, scale: int, name: str, up: bool) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number")
    if value < 0:
        raise ValueError(f"{name} must be >= 0")
    if value > MAX_EPSILON:
        raise ValueError(f"{name} must be at most {MAX_EPSILON:g}")
    units = round(value * scale, 6)  # float noise of the product out, then round the unit
    return math.ceil(units) if up else math.floor(units)


def to_micro(epsilon: float, *, up: bool = True) -> int:
    """Epsilon as integer micro-epsilon, so sums are exact.

    Spends round up (an epsilon below a micro-epsilon still costs one); ``up=False`` rounds a
    budget's total down. Either way the ledger never grants more than was asked.
    """
    return _to_units(epsilon, MICRO, "epsilon", up)


def to_pico(delta: float, *, up: bool = True) -> int:
    """Delta as an integer in units of 1e-12, rounded like :func:`to_micro`."""
    return _to_units(delta, PICO, "delta", up)


def _conforms(value: Any, tp: Any) -> Any:
    """``value`` normalised to JSON form if it has type ``tp``; raises TypeError otherwise."""
    origin = get_origin(tp)
    if origin is list:
        (item,) = get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise TypeError
        return [_conforms(v, item) for v in value]
    if origin is dict:
        key_tp, val_tp = get_args(tp)
        if not isinstance(value, Mapping):
            raise TypeError
        return {_conforms(k, key_tp): _conforms(v, val_tp) for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise TypeError
        return float(value)
    if tp is int and isinstance(value, bool):
        raise TypeError
    if not isinstance(value, tp):
        raise TypeError
    return value


def _type_name(tp: Any) -> str:
    return tp.__name__ if isinstance(tp, type) else str(tp)


def check_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """A JSON-ready copy of ``details``; ValueError for a key or type :data:`DETAIL_TYPES` lacks.

    The message names the key and expected type, never the offending value.
    """
    if details is None:
        return {}
    if not isinstance(details, Mapping):
        raise ValueError("details must be a mapping of allowed keys")
    clean: dict[str, Any] = {}
    for key, value in details.items():
        tp = DETAIL_TYPES.get(key) if isinstance(key, str) else None
        if tp is None:
            raise ValueError(
                f"details key {key!r} is not allowed in a ledger entry (the ledger never stores "
                f"data values) — use one of: {', '.join(sorted(DETAIL_TYPES))}")
        try:
            clean[key] = _conforms(value, tp)
        except TypeError:
            raise ValueError(f"details[{key!r}] must be {_type_name(tp)}, "
                             f"got {type(value).__name__}") from None
        for text in _strings(clean[key]):
            check_text(f"details[{key!r}]", text)
    return clean


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)


def check_kind(kind: str) -> None:
    """ValueError unless ``kind`` is one of :data:`KINDS`."""
    if kind not in KINDS:
        raise ValueError(f"unknown ledger entry kind {kind!r} — use one of: {', '.join(KINDS)}")


#: The longest analyst, purpose, session or product name a ledger accepts (characters).
MAX_NAME = 256
#: The longest text a ``details`` value may hold (characters; redacted query text).
MAX_TEXT = 65_536
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def check_name(name: str, value: Any) -> None:
    """ValueError unless ``value`` is None or a name both stores keep alike: at most
    :data:`MAX_NAME` Unicode scalar values (no lone surrogate), no control character or NUL.

    The message never repeats the value.
    """
    if value is None:
        return
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string or None, got {type(value).__name__}")
    if len(value) > MAX_NAME:
        raise ValueError(f"{name} is {len(value)} characters long; the ledger keeps names of at "
                         f"most {MAX_NAME}")
    if _SURROGATE.search(value):
        raise ValueError(f"{name} holds a lone surrogate (not Unicode text) — pass it as text "
                         "decoded from UTF-8")
    if _CONTROL.search(value):
        raise ValueError(f"{name} holds a control character (NUL, newline, ...) — names are "
                         "one line of printable text")


def check_text(name: str, value: str) -> None:
    """ValueError for a ``details`` string no store keeps alike (lone surrogate, NUL) or longer
    than :data:`MAX_TEXT`; the message never repeats the value."""
    if len(value) > MAX_TEXT:
        raise ValueError(f"{name} is {len(value)} characters long; at most {MAX_TEXT}")
    if _SURROGATE.search(value) or "\x00" in value:
        raise ValueError(f"{name} holds a NUL or a lone surrogate — pass text decoded from UTF-8")


_check_label = check_name


@dataclass(frozen=True)
class Entry:
    """One signed, hash-chained ledger entry. Build with :meth:`seal`, read with :meth:`parse`."""

    seq: int
    ts: str
    kind: str
    product: str
    session: str | None
    analyst: str | None
    purpose: str | None
    epsilon_micro: int
    delta_pico: int
    details: dict[str, Any] = field(hash=False)
    prev: str
    hash: str
    sig: str
    #: The root of the running totals after this entry (see :mod:`.totals`); None in entries
    #: written before running totals existed.
    state: str | None = None
    #: For an entry that spends: per budget scope, ``[n, epsilon_micro, delta_pico, parent_seq,
    #: parent_digest]`` — the n-th spend of that scope's key, the key's cumulative spend
    #: including this entry, and the key's previous spend. None otherwise.
    totals: dict[str, list] | None = field(default=None, hash=False)

    @property
    def epsilon(self) -> float:
        """The epsilon this entry spent."""
        return self.epsilon_micro / MICRO

    @property
    def delta(self) -> float:
        """The delta this entry spent."""
        return self.delta_pico / PICO

    def body(self) -> dict[str, Any]:
        """Everything but ``hash`` and ``sig``."""
        return {
            "seq": self.seq, "ts": self.ts, "kind": self.kind, "product": self.product,
            "session": self.session, "analyst": self.analyst, "purpose": self.purpose,
            "epsilon_micro": self.epsilon_micro, "delta_pico": self.delta_pico,
            "details": self.details, "prev": self.prev,
            **({} if self.state is None else {"state": self.state}),
            **({} if self.totals is None else {"totals": self.totals}),
        }

    def body_json(self) -> str:
        """The canonical JSON of :meth:`body`: what is hashed."""
        return canonical_json(self.body())

    @classmethod
    def seal(cls, *, seq: int, ts: str, kind: str, product: str, session: str | None,
             analyst: str | None, purpose: str | None, epsilon_micro: int, delta_pico: int,
             details: Mapping[str, Any] | None, prev: str,
             sign: Callable[[bytes], bytes], state: str | None = None,
             totals: dict[str, list] | None = None, checked: bool = False) -> "Entry":
        """A new entry: validates kind, labels and details, then hashes and signs it.

        ``checked``: the caller validated kind, names and details already (the ledger does).
        """
        if not checked:
            check_kind(kind)
            for name, value in (("session", session), ("analyst", analyst),
                                ("purpose", purpose)):
                check_name(name, value)
            details = check_details(details)
        unsigned = cls(seq, ts, kind, product, session, analyst, purpose, epsilon_micro,
                       delta_pico, dict(details or {}), prev, "", "", state, totals)
        digest = chain_hash(prev, unsigned.body_json())
        return replace(unsigned, hash=digest, sig=sign(signing_message(digest)).hex())

    @classmethod
    def parse(cls, body_json: str, hash: str, sig: str) -> "Entry":
        """An entry from its stored body, hash and signature (not verified here).

        ValueError if the body is not an entry (the message never quotes it).
        """
        try:
            body = json.loads(body_json)
            if not isinstance(body, dict) or not set(body) <= _BODY_KEYS:
                raise TypeError
            return cls(**body, hash=hash, sig=sig)
        except (ValueError, TypeError):
            raise ValueError("the stored body is not a ledger entry") from None


_BODY_KEYS = frozenset({"seq", "ts", "kind", "product", "session", "analyst", "purpose",
                        "epsilon_micro", "delta_pico", "details", "prev", "state", "totals"})
