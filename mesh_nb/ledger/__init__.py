"""The owner's ledger of a data product: append-only, hash-chained, Ed25519-signed.

>>> led = Ledger(path, owner_dir, "customers")                 # doctest: +SKIP
>>> led.reserve(analyst="alice", purpose="churn", epsilon=0.1, budget=budget)  # doctest: +SKIP
>>> led.verify()                                               # doctest: +SKIP
"""

from .entry import KINDS, RELEASE_KINDS, Entry
from .keys import OwnerKey
from .store import Ledger, VerifyReport

__all__ = ["KINDS", "RELEASE_KINDS", "Entry", "Ledger", "OwnerKey", "VerifyReport"]
