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

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """The lab's ``application/vnd.mesh-nb.release+json`` beside text/html and text/plain."""
        from ..lab.mime import release_bundle

        return release_bundle(self, include=include, exclude=exclude)

    def __repr__(self) -> str:
        return (f"<Release {self.release_id}: {len(self.frame)} row(s), ε {self.epsilon:g}, "
                f"δ {self.delta:g}{' (cached)' if self.cached else ''}>\n{self.frame}")


def mechanism_for(m: Measurement, rng: np.random.Generator | None = None):
    """The diffprivlib mechanism of one measurement (seeded from ``rng`` when given)."""
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
        return Z95_GAUSS * math.sqrt(mechanism_for(m).variance(0.0))
    return Z95_LAPLACE * m.sensitivity / m.epsilon


def noise_scale(m: Measurement) -> float:
    """Laplace/Geometric scale b, or the Gaussian's sigma."""
    if m.mechanism == "gaussian":
        return math.sqrt(mechanism_for(m).variance(0.0))
    return m.sensitivity / m.epsilon


def _key(value: object) -> object:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _complete(plan: Plan, exact: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per-group columns (keys and measurements) as arrays; with declared keys every group,
    with zero counts and empty histograms where none occur."""
    keys = list(plan.keys)
    if plan.categories is None:
        pos = np.arange(len(exact))
        table: dict[str, np.ndarray] = {k: exact[k].to_numpy(dtype=object) for k in keys}
    else:
        if keys:
            found = {tuple(map(_key, row)): i for i, row in
                     enumerate(exact[keys].itertuples(index=False, name=None))}
            pos = np.array([found.get(tuple(map(_key, c)), -1) for c in plan.categories],
                           dtype=int)
        else:
            pos = np.array([0 if len(exact) else -1])
        cats = np.empty((len(plan.categories), len(keys)), dtype=object)
        for i, c in enumerate(plan.categories):
            cats[i, :] = c
        table = {k: cats[:, j] for j, k in enumerate(keys)}
    hit = pos >= 0
    for m in plan.measurements:
        column = exact[m.name].to_numpy() if m.name in exact else np.array([])
        if m.kind == "hist":
            hists = np.empty(len(pos), dtype=object)
            hists[:] = [column[i] if i >= 0 and isinstance(column[i], dict) else {} for i in pos]
            table[m.name] = hists
        else:
            values = np.zeros(len(pos))
            values[hit] = np.nan_to_num(column[pos[hit]].astype(float))
            table[m.name] = values
    return table


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
        mech = mechanism_for(m, rng)
        cast = int if m.mechanism == "geometric" else float
        noisy[m.name] = np.array([mech.randomise(cast(v)) for v in table[m.name]], dtype=float)
    size = len(next(iter(table.values()))) if table else 1
    keep = np.ones(size, dtype=bool)
    if plan.threshold is not None:
        keep = noisy[plan.threshold_on] > plan.threshold
    kept = {k: v[keep] for k, v in table.items()}
    columns: dict[str, object] = {k: list(kept[k]) for k in plan.keys}
    acc: dict[str, list] = {k: [] for k in (*plan.keys, "row", "output", "func", "mechanism",
                                            "epsilon", "noise_scale", "ci95_half_width")}
    n = int(keep.sum())
    for o in plan.outputs:
        values, hw = _output(o, {k: v[keep] for k, v in noisy.items()}, kept, by_name, rng, n)
        columns[o.name] = values
        parts = [by_name[p] for p in o.parts]
        info = {"output": o.name, "func": o.func,
                "mechanism": ", ".join(sorted({p.mechanism for p in parts})),
                "epsilon": sum(p.epsilon for p in parts),
                "noise_scale": max(noise_scale(p) for p in parts)}
        for k in plan.keys:
            acc[k] += columns[k]
        acc["row"] += range(n)
        for name, value in info.items():
            acc[name] += [value] * n
        acc["ci95_half_width"] += list(hw)
    out = pd.DataFrame(columns, index=range(n)).infer_objects()
    accuracy = pd.DataFrame(acc).infer_objects() if plan.outputs else pd.DataFrame()
    return out, accuracy


def _output(o: Output, noisy: dict[str, np.ndarray], table: dict[str, np.ndarray],
            ms: dict[str, Measurement], rng: np.random.Generator, size: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """Released values of one output and each value's 95% interval half-width.

    Half-widths of ratios (AVG, VAR, STDDEV) are first-order approximations from the released
    values; quantiles have none in value units (their error is in rank: see the notes).
    """
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
