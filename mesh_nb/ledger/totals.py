"""Running totals: the budgets ``reserve()`` reads, authenticated by the signed chain head.

Every entry that spends carries, in its signed body, ``totals``: for each budget scope
(``per-purpose``: the key ``(purpose)``; ``per-analyst``: the key ``(purpose, analyst)``) the
record ``[n, epsilon_micro, delta_pico, parent_seq, parent_digest]`` — it is the key's n-th
spend, the key's cumulative spend including it, and the key's previous spend (seq and
:func:`spend_digest`; ``0`` and :data:`~.entry.GENESIS` for the first). So one entry holds
what a budget has spent, signed.

What is left is freshness: an index can hide a key's latest spend and show an older one (all
genuine, all signed). So the chain head commits to where every key's latest spend is: every
entry carries ``state``, the root of a sparse Merkle tree of :data:`DEPTH` levels whose
leaves are buckets (a key's bucket is a hash of the key) listing ``[key, seq, digest]`` of
each key's latest spend. The tree's nodes are stored beside the entries (table ``state``);
``reserve()`` reads the two buckets it needs and their sibling paths (one query), recomputes
the root and compares it with the ``state`` of the head, whose signature it checked. Any edit
of a node, a bucket, an entry or an index that reserve reads changes what it recomputes, and
the reserve raises :class:`~mesh_nb.errors.LedgerTampered` instead of granting. The cost is
O(DEPTH) hashes whatever the ledger's length.

Period budgets (``period_days``) count the spends whose ``ts`` is inside the window ending at the
new entry's ``ts``. Timestamps never go backwards along the chain, so a key's spends inside the
window are a suffix of its spends: the window's spend is the key's latest cumulative total minus
the cumulative total of its last spend before the window. That spend is found through the
unsigned ``spends`` index (one B-tree search: O(log n)) and then authenticated: its successor
``d`` (the first spend inside the window) by its signature, and the spend itself by the
``parent_digest`` signed in ``d``; a lying index makes one of ``c.ts < since <= d.ts`` or the
ordinals fail, which is reported as tampering.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .entry import canonical_json

DEPTH = 16
LEAF_BASE = 1 << DEPTH  # node ids: root 1, children of i are 2i and 2i+1, leaves LEAF_BASE..
SCOPES = ("per-analyst", "per-purpose")
_KEY_DOMAIN = b"mesh_nb.ledger.key.v1\n"
_SPEND_DOMAIN = b"mesh_nb.ledger.spend.v1\n"


def leaf_hash(content: str) -> bytes:
    return hashlib.sha256(b"L" + content.encode("utf-8")).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"N" + left + right).digest()


#: The hash of an empty subtree, by height (0: an empty bucket).
DEFAULT: list[bytes] = [leaf_hash("[]")]
for _ in range(DEPTH):
    DEFAULT.append(node_hash(DEFAULT[-1], DEFAULT[-1]))
EMPTY_ROOT = DEFAULT[DEPTH].hex()


class StateProblem(Exception):
    """The stored running totals disagree with what the chain head commits to."""


def key_of(scope: str, purpose: str | None, analyst: str | None) -> str:
    """The budget key a spend counts under in ``scope``, as canonical JSON text."""
    if scope == "per-purpose":
        return canonical_json(["per-purpose", purpose])
    return canonical_json(["per-analyst", purpose, analyst])


def keys_of(purpose: str | None, analyst: str | None) -> dict[str, str]:
    """Scope -> key for a spend by ``analyst`` for ``purpose``."""
    return {scope: key_of(scope, purpose, analyst) for scope in SCOPES}


def leaf_of(key: str) -> int:
    """The node id of ``key``'s bucket."""
    digest = hashlib.sha256(_KEY_DOMAIN + key.encode("utf-8")).digest()
    return LEAF_BASE + (int.from_bytes(digest[:4], "big") >> (32 - DEPTH))


def height(node: int) -> int:
    return DEPTH - (node.bit_length() - 1)


def siblings(leaf: int) -> Iterable[int]:
    node = leaf
    while node > 1:
        yield node ^ 1
        node >>= 1


def proof_ids(keys: Iterable[str]) -> set[int]:
    """The node ids to fetch to authenticate (and then update) the buckets of ``keys``."""
    ids: set[int] = set()
    for key in keys:
        leaf = leaf_of(key)
        ids.add(leaf)
        ids.update(siblings(leaf))
    return ids


def spend_digest(body: Mapping[str, Any]) -> str:
    """What a bucket records of a key's latest spend: a hash of the spend's facts in its body."""
    facts = {k: body.get(k) for k in ("seq", "ts", "purpose", "analyst", "epsilon_micro",
                                      "delta_pico", "totals")}
    return hashlib.sha256(_SPEND_DOMAIN + canonical_json(facts).encode("utf-8")).hexdigest()


Nodes = Mapping[int, tuple[str, "str | None"]]  # id -> (hash hex, bucket content or None)


def _parse_bucket(content: str) -> dict[str, tuple[int, str]]:
    try:
        items = json.loads(content)
        out = {}
        for key, seq, digest in items:
            if not (isinstance(key, str) and isinstance(seq, int) and isinstance(digest, str)):
                raise TypeError
            out[key] = (seq, digest)
        return out
    except (ValueError, TypeError):
        raise StateProblem("a running-totals bucket is not readable (edited)") from None


def bucket_text(bucket: Mapping[str, tuple[int, str]]) -> str:
    return canonical_json([[k, *bucket[k]] for k in sorted(bucket)])


@dataclass
class Tree:
    """The nodes fetched for some keys, authenticated against a root."""

    nodes: dict[int, tuple[str, "str | None"]]
    root: str

    def __post_init__(self) -> None:
        self._bytes: dict[int, bytes] = {}

    def _hash(self, node: int, fresh: Mapping[int, bytes] | None = None) -> bytes:
        if fresh and node in fresh:
            return fresh[node]
        cached = self._bytes.get(node)
        if cached is not None:
            return cached
        found = self.nodes.get(node)
        if found is None:
            return DEFAULT[height(node)]
        try:
            value = self._bytes[node] = bytes.fromhex(found[0])
        except (ValueError, TypeError):
            raise StateProblem("a running-totals node is not readable (edited)") from None
        return value

    def apply(self, root: str, rows: Iterable[tuple]) -> None:
        """Take the result of :meth:`updated` as the tree's new state (bulk writes)."""
        for node, digest, content in rows:
            self.nodes[node] = (digest, content)
            self._bytes.pop(node, None)
        self.root = root

    def bucket(self, key: str) -> dict[str, tuple[int, str]]:
        """The authenticated bucket of ``key``; StateProblem if its path does not lead to the
        root."""
        return self.bucket_at(leaf_of(key))

    def bucket_at(self, leaf: int) -> dict[str, tuple[int, str]]:
        """The authenticated bucket at node ``leaf``."""
        if not LEAF_BASE <= leaf < 2 * LEAF_BASE:
            raise StateProblem("a running-totals bucket is stored at a node that is no leaf "
                               "(edited)")
        stored = self.nodes.get(leaf)
        content = "[]" if stored is None else stored[1]
        if not isinstance(content, str):
            raise StateProblem("a running-totals bucket is missing its content (edited)")
        digest = leaf_hash(content)
        if stored is not None and stored[0] != digest.hex():
            raise StateProblem("a running-totals bucket does not match its hash (edited)")
        node = leaf
        while node > 1:
            sibling = self._hash(node ^ 1)
            digest = node_hash(digest, sibling) if node % 2 == 0 else node_hash(sibling, digest)
            node >>= 1
        if digest.hex() != self.root:
            raise StateProblem("the running totals do not lead to the root the chain head "
                               "signed (a total, a bucket or a node was edited)")
        return _parse_bucket(content)

    def latest(self, key: str) -> tuple[int, str] | None:
        """(seq, digest) of ``key``'s latest spend, or None if it never spent."""
        return self.bucket(key).get(key)

    def updated(self, changes: Mapping[str, tuple[int, str]]) -> tuple[str, list[tuple]]:
        """(new root, rows ``(id, hash, content)`` to store) after setting each key's latest
        spend to ``changes[key]``. Every bucket touched must have been fetched."""
        buckets: dict[int, dict[str, tuple[int, str]]] = {}
        for key, latest in changes.items():
            leaf = leaf_of(key)
            if leaf not in buckets:
                stored = self.nodes.get(leaf)
                buckets[leaf] = _parse_bucket(stored[1]) if stored else {}
            buckets[leaf][key] = latest
        fresh: dict[int, bytes] = {}
        rows: list[tuple] = []
        for leaf, bucket in buckets.items():
            text = bucket_text(bucket)
            fresh[leaf] = leaf_hash(text)
            rows.append((leaf, fresh[leaf].hex(), text))
        parents = sorted({a for leaf in buckets for a in _ancestors(leaf)}, reverse=True)
        for node in parents:
            fresh[node] = node_hash(self._hash(2 * node, fresh), self._hash(2 * node + 1, fresh))
            rows.append((node, fresh[node].hex(), None))
        return fresh[1].hex(), rows


def _ancestors(node: int) -> Iterable[int]:
    node >>= 1
    while node >= 1:
        yield node
        node >>= 1


def full_tree(latest: Mapping[str, tuple[int, str]]) -> dict[int, tuple[str, "str | None"]]:
    """Every non-empty node of the tree whose keys' latest spends are ``latest`` (for verify and
    bulk writes); the root is ``result[1]`` (absent: :data:`EMPTY_ROOT`)."""
    buckets: dict[int, dict[str, tuple[int, str]]] = {}
    for key, value in latest.items():
        buckets.setdefault(leaf_of(key), {})[key] = value
    nodes: dict[int, tuple[str, str | None]] = {}
    level: dict[int, bytes] = {}
    for leaf, bucket in buckets.items():
        text = bucket_text(bucket)
        level[leaf] = leaf_hash(text)
        nodes[leaf] = (level[leaf].hex(), text)
    for h in range(DEPTH):
        parents: dict[int, bytes] = {}
        for node in {n >> 1 for n in level}:
            left = level.get(2 * node, DEFAULT[h])
            right = level.get(2 * node + 1, DEFAULT[h])
            parents[node] = node_hash(left, right)
            nodes[node] = (parents[node].hex(), None)
        level = parents
    return nodes
