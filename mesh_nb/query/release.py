"""Release: noise from diffprivlib's mechanisms on exact bounded aggregates, then post-processing.

Counts get the Geometric mechanism, sums Laplace (or analytic Gaussian), quantiles the
Exponential mechanism over the engine's bins. Post-processing is free: counts are rounded and
clamped at zero, averages and variances are kept within what the bounds allow.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd
from diffprivlib.mechanisms import GaussianAnalytic, Geometric, Laplace

from .accountant import Accountant
from .plan import CDF_BINS, HIST_BINS, Measurement, Output, Plan, columns_of, floats


def mechanism_for(m: Measurement, rng: np.random.Generator | None = None):
    """The diffprivlib mechanism of one measurement, for previews of its noise around zero
    (the epsilon explorer); releases draw through :class:`~.accountant.Accountant` only."""
    seed = None if rng is None else int(rng.integers(2**31))
    if m.mechanism == "geometric":
        return Geometric(epsilon=m.epsilon, sensitivity=int(math.ceil(m.sensitivity)),
                         random_state=seed)
    if m.mechanism == "gaussian":
        return GaussianAnalytic(epsilon=m.epsilon, delta=m.delta, sensitivity=m.sensitivity,
                                random_state=seed)
    return Laplace(epsilon=m.epsilon, sensitivity=m.sensitivity, random_state=seed)


def half_width(m: Measurement, level: float = 0.05) -> float:
    """Half-width of the interval that holds one noisy measurement's value with probability
    ``1 - level`` (95% by default)."""
    if m.mechanism == "gaussian":
        return stats_z(level) * math.sqrt(mechanism_for(m).variance(0.0))
    return math.log(1 / level) * m.sensitivity / m.epsilon


def noise_scale(m: Measurement) -> float:
    """Laplace/Geometric scale b, or the Gaussian's sigma."""
    if m.mechanism == "gaussian":
        return math.sqrt(mechanism_for(m).variance(0.0))
    return m.sensitivity / m.epsilon


def _key(value: object) -> object:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


Columns = Mapping[str, np.ndarray]
"""Named columns of equal length: the engine's answer as numpy arrays (a DataFrame works too)."""


def _complete(plan: Plan, exact: Columns) -> dict[str, np.ndarray]:
    """Per-group columns (keys and measurements) as arrays. With declared keys: every
    declared group, with zero counts and empty histograms where none occur, and the engine's
    groups outside the declared sets (or with missing keys) merged into the all-``None``
    group (see :func:`~.plan._categories`): every measurement is a count, a sum or a
    histogram, so merging is exact, and it happens before any noise."""
    keys = list(plan.keys)
    rows = len(next(iter(exact.values()))) if exact else 0
    if plan.categories is None:
        table: dict[str, np.ndarray] = {k: np.asarray(exact[k]).astype(object) for k in keys}
        target, size = np.arange(rows), rows
    else:
        index = {tuple(map(_key, c)): i for i, c in enumerate(plan.categories)}
        other = index.get((None,) * len(keys), -1)
        found = zip(*(exact[k] for k in keys)) if keys else [()] * rows
        target = np.array([index.get(tuple(map(_key, row)), other) for row in found], dtype=int)
        size = len(plan.categories)
        cats = np.empty((size, len(keys)), dtype=object)
        for i, c in enumerate(plan.categories):
            cats[i, :] = c
        table = {k: cats[:, j] for j, k in enumerate(keys)}
    kept = target >= 0
    in_order = size == rows and np.array_equal(target, np.arange(rows))
    for m in plan.measurements:
        column = exact[m.name] if m.name in exact else np.array([])
        if m.kind in ("hist", "cdf"):
            merged: list[dict] = [{} for _ in range(size)]
            for t, h in zip(target, column):
                if t >= 0 and isinstance(h, dict):
                    into = merged[t]
                    for b, c in h.items():
                        into[b] = into.get(b, 0) + c
            hists = np.empty(size, dtype=object)
            hists[:] = merged
            table[m.name] = hists
        elif in_order:  # one engine row per group, in the groups' order
            table[m.name] = np.nan_to_num(floats(column))
        else:
            values = np.zeros(size)
            np.add.at(values, target[kept], np.nan_to_num(floats(column[kept])))
            table[m.name] = values
    return table


def _quantile(hist: dict, q: float, m: Measurement, bounds: tuple[float, float],
              accountant: Accountant) -> float:
    """Exponential mechanism over the bins: utility is minus the rank distance to q*n."""
    counts = np.zeros(HIST_BINS)
    for b, c in hist.items():
        counts[int(b)] += c
    below = np.concatenate([[0.0], np.cumsum(counts)[:-1]])
    target = q * counts.sum()
    utility = -np.maximum(0.0, np.maximum(below - target, target - (below + counts)))
    i = accountant.mechanism(m, utility=list(utility)).randomise()
    lo, hi = bounds
    width = (hi - lo) / HIST_BINS
    return float(lo + (i + accountant.uniform()) * width)


def _coarse(hist: dict) -> np.ndarray:
    """A histogram over :data:`HIST_BINS` bins as counts over :data:`CDF_BINS` coarse bins."""
    counts = np.zeros(CDF_BINS)
    per = HIST_BINS // CDF_BINS
    for b, c in hist.items():
        counts[min(int(b) // per, CDF_BINS - 1)] += c
    return counts


def _cdf_interval(noisy: np.ndarray, m: Measurement, q: float, bounds: tuple[float, float],
                  value: float) -> float:
    """95% half-width, in value units, of a quantile released as ``value``, from the noisy
    coarse histogram alone (post-processing).

    Each noisy prefix count is within ``E_j`` of the true one (a union over the three
    statements used: the two crossings and the total, each at level 0.05 / 3); the true
    quantile then lies between the left edge of the first bin whose prefix may reach
    ``q * (N - E)`` and the right edge of the first bin whose prefix surely reaches
    ``q * (N + E)``. The half-width is the larger distance from ``value`` to those edges.
    """
    lo, hi = bounds
    width = (hi - lo) / CDF_BINS
    b = m.sensitivity / m.epsilon
    alpha = 0.05 / 3
    j = np.arange(1, CDF_BINS + 1)
    err = b * np.maximum(math.log(1 / alpha), stats_z(alpha) * np.sqrt(2.0 * j))
    prefix = np.cumsum(noisy)
    total, total_err = prefix[-1], err[-1]
    low_rank, high_rank = q * max(total - total_err, 0.0), q * (total + total_err)
    reach = np.nonzero(prefix + err >= low_rank)[0]
    surely = np.nonzero(prefix - err >= high_rank)[0]
    left = lo + (reach[0] if len(reach) else 0) * width
    right = lo + ((surely[0] + 1) if len(surely) else CDF_BINS) * width
    return float(max(value - left, right - value, 0.0))


def stats_z(alpha: float) -> float:
    """The standard normal's two-sided critical value at level ``alpha``."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(1 - alpha / 2)


def add_noise(plan: Plan, exact: "pd.DataFrame | Columns", *,
              accountant: Accountant | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Noisy released frame and its accuracy table, from the engine's exact primitives.

    Every draw goes through ``accountant`` (a fresh, unseeded one by default), which must
    compose to no more than the plan's epsilon and delta, or nothing is returned.
    """
    acct = accountant or Accountant()
    table = _complete(plan, columns_of(exact))
    noisy: dict[str, np.ndarray] = {}
    by_name = {m.name: m for m in plan.measurements}
    for m in plan.measurements:
        if m.kind == "hist":
            continue
        mech = acct.mechanism(m)
        if m.kind == "cdf":
            noisy[m.name] = np.array([[mech.randomise(int(c)) for c in _coarse(h)]
                                      for h in table[m.name]], dtype=float).reshape(
                                          len(table[m.name]), CDF_BINS)
            continue
        values = table[m.name].tolist()  # Python numbers: diffprivlib checks them one by one
        if m.mechanism == "geometric":
            values = [int(v) for v in values]
        noisy[m.name] = np.array([mech.randomise(v) for v in values], dtype=float)
    size = len(next(iter(table.values()))) if table else 1
    keep = np.ones(size, dtype=bool)
    if plan.threshold is not None:
        keep = noisy[plan.threshold_on] > plan.threshold
        acct.threshold(plan.delta - acct.delta)
    kept = {k: v[keep] for k, v in table.items()}
    n = int(keep.sum())
    columns: dict[str, np.ndarray] = {k: kept[k] for k in plan.keys}
    parts: dict[str, list[np.ndarray]] = {k: [] for k in (
        *plan.keys, "row", "output", "func", "mechanism", "epsilon", "noise_scale",
        "ci95_half_width")}
    for o in plan.outputs:
        values, hw = _output(o, {k: v[keep] for k, v in noisy.items()}, kept, by_name, acct, n)
        columns[o.name] = values
        used = [by_name[p] for p in o.parts]
        info = {"output": o.name, "func": o.func,
                "mechanism": ", ".join(sorted({p.mechanism for p in used})),
                "epsilon": sum(p.epsilon for p in used),
                "noise_scale": max(noise_scale(p) for p in used if p.kind != "hist")}
        for k in plan.keys:
            parts[k].append(columns[k])
        parts["row"].append(np.arange(n))
        for name, value in info.items():
            parts[name].append(np.full(n, value, dtype=object if isinstance(value, str)
                                       else float))
        parts["ci95_half_width"].append(np.asarray(hw, dtype=float))
    acct.check(plan.epsilon, plan.delta)
    out = _frame(columns, n, plan.keys)
    accuracy = (_frame({k: np.concatenate(v) for k, v in parts.items()}, n * len(plan.outputs),
                       plan.keys) if plan.outputs else pd.DataFrame())
    return out, accuracy


def _frame(columns: dict[str, np.ndarray], n: int, keys: tuple[str, ...]) -> pd.DataFrame:
    """A frame of ``columns`` (n rows); key columns, held as objects, get their inferred type."""
    typed = {k: pd.Series(v).infer_objects() if k in keys else v for k, v in columns.items()}
    return pd.DataFrame(typed, index=pd.RangeIndex(n), copy=False)


def _box(noisy: dict[str, np.ndarray], ms: dict[str, Measurement], parts: tuple[str, ...],
         level: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """(low, high) per part: each noisy value's interval at ``level`` (count parts >= 1)."""
    out = []
    for i, p in enumerate(parts):
        hw = half_width(ms[p], level)
        lo, hi = noisy[p] - hw, noisy[p] + hw
        if i == len(parts) - 1:  # the count
            lo, hi = np.maximum(lo, 1.0), np.maximum(hi, 1.0)
        out.append((lo, hi))
    return out


def _output(o: Output, noisy: dict[str, np.ndarray], table: dict[str, np.ndarray],
            ms: dict[str, Measurement], acct: Accountant, size: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """Released values of one output and each value's 95% interval half-width.

    Ratios (AVG, VAR, STDDEV) take their interval from interval arithmetic over the box of
    their noisy parts, each part at level ``0.05 / parts`` (a union bound: the box holds with
    probability at least 95%, and then so does the interval). Quantiles take theirs from the
    noisy coarse histogram (:func:`_cdf_interval`).
    """
    if o.func == "count":
        return (np.maximum(np.rint(noisy[o.parts[0]]), 0).astype("int64"),
                np.full(size, half_width(ms[o.parts[0]])))
    if o.func == "sum":
        return noisy[o.parts[0]], np.full(size, half_width(ms[o.parts[0]]))
    lo, hi = o.bounds
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    if o.func == "quantile":
        m, cdf = ms[o.parts[0]], ms[o.parts[1]]
        vals = np.array([_quantile(h, o.quantile, m, o.bounds, acct) for h in table[m.name]])
        hws = np.array([_cdf_interval(c, cdf, o.quantile, o.bounds, v)
                        for c, v in zip(noisy[cdf.name], vals)])
        return vals, hws
    n = np.maximum(noisy[o.parts[-1]], 1.0)
    mean_c = np.clip(noisy[o.parts[0]] / n, -half, half)
    box = _box(noisy, ms, o.parts, 0.05 / len(o.parts))
    (s1_lo, s1_hi), (n_lo, n_hi) = box[0], box[-1]
    m_lo = np.clip(np.minimum(s1_lo / n_lo, s1_lo / n_hi), -half, half)
    m_hi = np.clip(np.maximum(s1_hi / n_lo, s1_hi / n_hi), -half, half)
    if o.func == "avg":
        value = mid + mean_c
        return value, np.maximum(mid + m_hi - value, value - (mid + m_lo))
    s2_lo, s2_hi = box[1]
    second = np.clip(noisy[o.parts[1]] / n, 0, half * half)
    var = np.clip(second - mean_c ** 2, 0, half * half)
    sec_lo = np.clip(np.where(s2_lo >= 0, s2_lo / n_hi, s2_lo / n_lo), 0, half * half)
    sec_hi = np.clip(np.where(s2_hi >= 0, s2_hi / n_lo, s2_hi / n_hi), 0, half * half)
    sq_lo = np.where((m_lo <= 0) & (m_hi >= 0), 0.0, np.minimum(m_lo ** 2, m_hi ** 2))
    sq_hi = np.maximum(m_lo ** 2, m_hi ** 2)
    v_lo = np.clip(sec_lo - sq_hi, 0, half * half)
    v_hi = np.clip(sec_hi - sq_lo, 0, half * half)
    if o.sample:
        var = var * n / np.maximum(n - 1, 1)
        v_lo = v_lo * n_hi / np.maximum(n_hi - 1, 1)
        v_hi = v_hi * n_lo / np.maximum(n_lo - 1, 1)
    if o.func == "stddev":
        sd = np.sqrt(var)
        return sd, np.maximum(np.sqrt(v_hi) - sd, sd - np.sqrt(v_lo))
    return var, np.maximum(v_hi - var, var - v_lo)
