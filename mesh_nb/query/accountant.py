"""The one accountant of a release: every noise draw goes through it, and it composes them.

A release draws from diffprivlib mechanisms only through :meth:`Accountant.mechanism`, which
registers each mechanism object under the measurement it serves. One measurement is one
mechanism applied to the vector of its groups' values (its sensitivity bounds one person's
effect on the whole vector), so its draws over groups cost its epsilon once; a quantile's
exponential mechanism is one object per group, all under the quantile's one measurement.
Distinct measurements compose sequentially: the release costs the sum of their epsilons and
deltas. :meth:`Accountant.check` refuses to release when that sum exceeds what the ledger
charged, so no draw can escape the charge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import MeshError

if TYPE_CHECKING:
    from .plan import Measurement


@dataclass(frozen=True)
class Draw:
    """One registered mechanism: the measurement it serves and its privacy parameters."""

    measurement: str
    mechanism: str
    epsilon: float
    delta: float
    sensitivity: float


class Accountant:
    """Registers the mechanisms of one release and composes their cost (sequentially).

    ``seed`` fixes the noise for tests only (a seeded release is never private); without it the
    mechanisms draw from fresh system entropy.
    """

    def __init__(self, seed: int | None = None):
        self.seeded = seed is not None
        self.rng = np.random.default_rng(seed)
        self.draws: dict[str, Draw] = {}
        self.mechanisms: list[Any] = []  # every mechanism object handed out

    def mechanism(self, m: "Measurement", *, utility: list[float] | None = None) -> Any:
        """The diffprivlib mechanism of measurement ``m`` (an exponential one over
        ``utility``), registered under ``m.name``."""
        from diffprivlib.mechanisms import Exponential, GaussianAnalytic, Geometric, Laplace

        seed = int(self.rng.integers(2**31)) if self.seeded else None
        if m.mechanism == "geometric":
            mech: Any = Geometric(epsilon=m.epsilon, sensitivity=int(math.ceil(m.sensitivity)),
                                  random_state=seed)
        elif m.mechanism == "gaussian":
            mech = GaussianAnalytic(epsilon=m.epsilon, delta=m.delta,
                                    sensitivity=m.sensitivity, random_state=seed)
        elif m.mechanism == "exponential":
            if utility is None:
                raise MeshError("internal: an exponential mechanism needs its utility")
            mech = Exponential(epsilon=m.epsilon, sensitivity=m.sensitivity, utility=utility,
                               random_state=seed)
        else:
            mech = Laplace(epsilon=m.epsilon, sensitivity=m.sensitivity, random_state=seed)
        known = self.draws.get(m.name)
        draw = Draw(m.name, m.mechanism, m.epsilon, m.delta, m.sensitivity)
        if known is not None and known != draw:
            raise MeshError(f"internal: measurement {m.name} drawn with two parameter sets")
        self.draws[m.name] = draw
        self.mechanisms.append(mech)
        return mech

    def charge(self, name: str, mechanism: str, epsilon: float, delta: float = 0.0) -> None:
        """Register a draw made outside these mechanisms (a diffprivlib model's own noise)."""
        self.draws[name] = Draw(name, mechanism, epsilon, delta, 0.0)

    def threshold(self, delta: float) -> None:
        """Register the delta a noisy threshold on group counts spends."""
        self.draws["threshold"] = Draw("threshold", "threshold", 0.0, delta, 0.0)

    def uniform(self) -> float:
        """A uniform draw in [0, 1) for post-processing (a position within a released bin)."""
        return float(self.rng.random())

    @property
    def epsilon(self) -> float:
        """Sequential composition of the registered measurements' epsilons."""
        return math.fsum(d.epsilon for d in self.draws.values())

    @property
    def delta(self) -> float:
        """Sequential composition of their deltas."""
        return math.fsum(d.delta for d in self.draws.values())

    def check(self, epsilon: float, delta: float) -> None:
        """Raise unless the composed cost fits the charged ``epsilon`` and ``delta``."""
        if self.epsilon > epsilon * (1 + 1e-9) or self.delta > delta * (1 + 1e-9) + 1e-18:
            raise MeshError(f"internal: the release drew epsilon {self.epsilon:g} "
                            f"(delta {self.delta:g}) but was charged {epsilon:g} "
                            f"({delta:g}); nothing was released")
