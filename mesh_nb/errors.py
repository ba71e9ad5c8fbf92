"""One error hierarchy; every message says what is wrong and how to fix it.

No message ever carries a data value: only names of files, fields, columns, purposes,
entity types and counts.
"""

from __future__ import annotations

from dataclasses import dataclass


class MeshError(Exception):
    """Base of every error mesh_nb raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One problem found in a contract, located in its YAML file."""

    file: str
    line: int | None
    field: str
    what: str
    fix: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.what} — {self.fix}"


class NotFound(MeshError):
    """What was named does not exist (a product, a session, a purpose request); the server
    answers 404."""


class ContractError(MeshError):
    """A contract is malformed or inconsistent; ``problems`` lists every finding."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        head = f"{len(self.problems)} problem(s) in the contract"
        super().__init__(head + ":\n" + "\n".join(str(p) for p in self.problems))


class PolicyViolation(MeshError):
    """A request the contract does not allow: names the rule and how to fix the request."""

    def __init__(self, rule: str, what: str, fix: str):
        self.rule, self.what, self.fix = rule, what, fix
        super().__init__(f"[{rule}] {what} — {fix}")


class BudgetExceeded(MeshError):
    """The privacy budget left for this analyst and purpose is smaller than the request."""

    def __init__(self, product: str, purpose: str, analyst: str, requested: float,
                 remaining: float, requested_delta: float = 0.0, remaining_delta: float = 0.0):
        self.product, self.purpose, self.analyst = product, purpose, analyst
        self.requested, self.remaining = requested, remaining
        self.requested_delta, self.remaining_delta = requested_delta, remaining_delta
        super().__init__(
            f"budget exceeded on {product!s} for purpose {purpose!r} ({analyst}): asked "
            f"epsilon {requested:g} (delta {requested_delta:g}), {remaining:g} left "
            f"(delta {remaining_delta:g}) — ask for less epsilon, or ask the owner for a new budget"
        )


QUERY_FAILED = ("the query could not be completed in the engine (a value it cannot compute, or "
                "its time or memory limit); the epsilon it reserved stays spent — check it "
                "with explain() and simplify it")
"""The one message of every data-dependent failure: it says nothing about which one."""


class QueryFailed(MeshError):
    """The engine did not complete a query whose budget was already reserved.

    The message is :data:`QUERY_FAILED` whatever went wrong (an error a value caused, the time
    or memory limit): which one, and its text, could depend on a person's data. ``release_id``
    names the charged release in the ledger, ``epsilon`` what it cost.
    """

    rule = "query-failed"

    def __init__(self, release_id: str = "", epsilon: float = 0.0, delta: float = 0.0):
        self.release_id, self.epsilon, self.delta = release_id, epsilon, delta
        super().__init__(QUERY_FAILED)


class LedgerError(MeshError):
    """The ledger's storage failed or cannot be used (disk full, a malformed or swapped file, an
    unreachable server, a lock held too long): the message says what and what to do, and never
    repeats a row's text or a password."""


class LedgerTampered(LedgerError):
    """The ledger is not as the owner wrote it (found by ``verify()`` or by the next write)."""

    def __init__(self, seq: int | None, reason: str):
        self.seq, self.reason = seq, reason
        where = f"entry {seq}" if seq is not None else "ledger"
        super().__init__(f"ledger tampered at {where}: {reason}")
