"""Release: noise from diffprivlib's mechanisms on exact bounded aggregates, then post-processing.

Counts get the Geometric mechanism, sums Laplace (or analytic Gaussian), quantiles the
Exponential mechanism over the engine's bins. Post-processing is free: counts are rounded and
clamped at zero, averages and variances are kept within what the bounds allow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from diffprivlib.mechanisms import Exponential, GaussianAnalytic, Geometric, Laplace

from .plan import HIST_BINS, Measurement, Output, Plan

Z95_LAPLACE = math.log(20)  # P(|Laplace(b)| > b ln 20) = 0.05
Z95_GAUSS = 1.959963984540054


@dataclass(frozen=True)
class Release:
    """What a query released: values, what it spent, and how accurate each value is."""

    frame: pd.DataFrame
    epsilon: float
    delta: float
    accuracy: pd.DataFrame
    sql: str = ""
    purpose: str = ""
    products: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    release_id: str = ""
    cached: bool = False
    remaining: dict = field(default_factory=dict)

    def _repr_html_(self) -> str:
        from ..display import release_html

        return release_html(self)

    def __repr__(self) -> str:
        return (f"<Release {self.release_id}: {len(self.frame)} row(s), ε {self.epsilon:g}, "
                f"δ {self.delta:g}{' (cached)' if self.cached else ''}>\n{self.frame}")


def _mechanism(m: Measurement, rng: np.random.Generator | None = None):
    seed = None if rng is None else int(rng.integers(2**31))
    if m.mechanism == "geometric":
        return Geometric(epsilon=m.epsilon, sensitivity=int(math.ceil(m.sensitivity)),
                         random_state=seed)
    if m.mechanism == "gaussian":
        return GaussianAnalytic(epsilon=m.epsilon, delta=m.delta, sensitivity=m.sensitivity,
                                random_state=seed)
    return Laplace(epsilon=m.epsilon, sensitivity=m.sensitivity, random_state=seed)


def half_width(m: Measurement) -> float:
    """95% interval half-width of one noisy measurement."""
    if m.mechanism == "gaussian":
        return Z95_GAUSS * math.sqrt(_mechanism(m).variance(0.0))
    return Z95_LAPLACE * m.sensitivity / m.epsilon


def noise_scale(m: Measurement) -> float:
    """Laplace/Geometric scale b, or the Gaussian's sigma."""
    if m.mechanism == "gaussian":
        return math.sqrt(_mechanism(m).variance(0.0))
    return m.sensitivity / m.epsilon


def _complete(plan: Plan, exact: pd.DataFrame) -> pd.DataFrame:
    """Declared keys: every group, with zero counts and empty histograms where none occur."""
    if plan.categories is None:
        return exact.reset_index(drop=True)
    full = pd.DataFrame(list(plan.categories), columns=list(plan.keys)) if plan.keys else \
        pd.DataFrame(index=[0])
    if plan.keys:
        full = full.astype(object)
        right = exact.astype({k: object for k in plan.keys})
        full = full.merge(right, on=list(plan.keys), how="left")
    else:
        full = exact.reset_index(drop=True) if len(exact) else pd.DataFrame(index=[0])
    for m in plan.measurements:
        if m.kind == "hist":
            full[m.name] = [v if isinstance(v, dict) else {} for v in full.get(m.name, [None] * len(full))]
        else:
            full[m.name] = pd.to_numeric(full.get(m.name), errors="coerce").fillna(0)
    return full


def _quantile(hist: dict, q: float, m: Measurement, bounds: tuple[float, float],
              rng: np.random.Generator) -> float:
    """Exponential mechanism over the bins: utility is minus the rank distance to q*n."""
    counts = np.zeros(HIST_BINS)
    for b, c in hist.items():
        counts[int(b)] += c
    below = np.concatenate([[0.0], np.cumsum(counts)[:-1]])
    target = q * counts.sum()
    utility = -np.maximum(0.0, np.maximum(below - target, target - (below + counts)))
    mech = Exponential(epsilon=m.epsilon, sensitivity=m.sensitivity, utility=list(utility),
                       random_state=int(rng.integers(2**31)))
    i = mech.randomise()
    lo, hi = bounds
    width = (hi - lo) / HIST_BINS
    return float(lo + (i + rng.random()) * width)


def add_noise(plan: Plan, exact: pd.DataFrame, *, seed: int | None = None
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Noisy released frame and its accuracy table, from the engine's exact primitives."""
    rng = np.random.default_rng(seed)
    table = _complete(plan, exact)
    noisy: dict[str, np.ndarray] = {}
    by_name = {m.name: m for m in plan.measurements}
    for m in plan.measurements:
        if m.kind == "hist":
            continue
        mech = _mechanism(m, rng)
        noisy[m.name] = np.array([mech.randomise(int(v) if m.mechanism == "geometric" else float(v))
                                  for v in table[m.name]], dtype=float)
    keep = np.ones(len(table), dtype=bool)
    if plan.threshold is not None:
        keep = noisy[plan.threshold_on] > plan.threshold
    out = table.loc[keep, list(plan.keys)].reset_index(drop=True).infer_objects()
    cells = []
    for o in plan.outputs:
        values, hw = _output(o, {k: v[keep] for k, v in noisy.items()}, table.loc[keep],
                             by_name, rng)
        out[o.name] = values
        info = {"output": o.name, "func": o.func,
                "mechanism": ", ".join(sorted({by_name[p].mechanism for p in o.parts})),
                "epsilon": sum(by_name[p].epsilon for p in o.parts),
                "noise_scale": max(noise_scale(by_name[p]) for p in o.parts)}
        cells.append(out[list(plan.keys)].assign(row=np.arange(len(out)), **info,
                                                 ci95_half_width=hw))
    accuracy = (pd.concat(cells, ignore_index=True) if cells else pd.DataFrame())
    return out, accuracy


def _output(o: Output, noisy: dict[str, np.ndarray], table: pd.DataFrame,
            ms: dict[str, Measurement], rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray]:
    """Released values of one output and each value's 95% interval half-width.

    Half-widths of ratios (AVG, VAR, STDDEV) are first-order approximations from the released
    values; quantiles have none in value units (their error is in rank: see the notes).
    """
    size = len(table)
    hws = {p: np.full(size, half_width(ms[p])) for p in o.parts if ms[p].kind != "hist"}
    if o.func == "count":
        return np.maximum(np.rint(noisy[o.parts[0]]), 0).astype("int64"), hws[o.parts[0]]
    if o.func == "sum":
        return noisy[o.parts[0]], hws[o.parts[0]]
    lo, hi = o.bounds
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    if o.func == "quantile":
        m = ms[o.parts[0]]
        vals = np.array([_quantile(h, o.quantile, m, o.bounds, rng) for h in table[m.name]])
        return vals, np.full(size, np.nan)
    n = np.maximum(noisy[o.parts[-1]], 1.0)
    mean_c = np.clip(noisy[o.parts[0]] / n, -half, half)
    if o.func == "avg":
        return mid + mean_c, (hws[o.parts[0]] + np.abs(mean_c) * hws[o.parts[1]]) / n
    second = np.clip(noisy[o.parts[1]] / n, 0, half * half)
    var = np.clip(second - mean_c ** 2, 0, half * half)
    if o.sample:
        var = var * n / np.maximum(n - 1, 1)
    hw = hws[o.parts[1]] / n
    if o.func == "stddev":
        return np.sqrt(var), hw / (2 * np.maximum(np.sqrt(var), 1e-9))
    return var, hw
