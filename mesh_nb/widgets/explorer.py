"""The epsilon explorer: how noise, interval width and error move with epsilon on a real query.

It only calls ``Session.explain`` (spends nothing) and draws from the same diffprivlib
mechanisms the release uses, so what a workshop sees is what a release would do.
"""

from __future__ import annotations

from html import escape

import ipywidgets as w
import numpy as np

from ..query.release import half_width, mechanism_for, noise_scale
from .face import WidgetFace

BINS = 40


def noise_svg(draws: np.ndarray, half: float, width: int = 360, height: int = 90) -> str:
    """A small SVG histogram of noise draws with the ±95% interval marked."""
    lim = max(float(np.abs(draws).max()), half) * 1.05 or 1.0
    counts, edges = np.histogram(draws, bins=BINS, range=(-lim, lim))
    top = counts.max() or 1
    bar = width / BINS
    bars = "".join(
        f"<rect x='{i * bar:.1f}' y='{height - 15 - c / top * (height - 20):.1f}' "
        f"width='{bar - 1:.1f}' height='{c / top * (height - 20):.1f}' fill='#5c6bc0'/>"
        for i, c in enumerate(counts))

    def x(v: float) -> float:
        return (v + lim) / (2 * lim) * width

    marks = "".join(f"<line x1='{x(v):.1f}' x2='{x(v):.1f}' y1='0' y2='{height - 15}' "
                    f"stroke='#c62828' stroke-dasharray='3,2'/>" for v in (-half, half))
    label = (f"<text x='0' y='{height - 2}' font-size='10'>-{lim:.3g}</text>"
             f"<text x='{width - 40}' y='{height - 2}' font-size='10'>+{lim:.3g}</text>")
    return f"<svg width='{width}' height='{height}'>{bars}{marks}{label}</svg>"


class EpsilonExplorer(WidgetFace):
    """A slider over epsilon for one query; shows each measurement's noise and interval."""

    def __init__(self, session, sql: str, *, draws: int = 2000, seed: int = 0):
        self.session, self.sql, self.draws, self.seed = session, sql, draws, seed
        self.slider = w.FloatLogSlider(value=0.5, base=10, min=-2, max=0, step=0.05,
                                       description="epsilon", readout_format=".3f")
        self.view = w.HTML()
        self.slider.observe(lambda _: self.refresh(), names="value")
        self.widget = w.VBox([self.slider, self.view])
        self.refresh()

    def rows(self, epsilon: float) -> list[dict]:
        """Per measurement: mechanism, noise scale, 95% half-width (what the view shows)."""
        plan = self.session.explain(self.sql, epsilon=epsilon).plan
        return [{"measurement": m.name, "kind": m.kind, "mechanism": m.mechanism,
                 "epsilon": m.epsilon, "noise_scale": noise_scale(m),
                 "ci95_half_width": half_width(m), "m": m}
                for m in plan.measurements if m.kind != "hist"]

    def text(self) -> str:
        lines = [f"mesh_nb epsilon explorer: {self.sql} (epsilon {self.slider.value:.3g})"]
        lines += [f"  {r['measurement']} ({r['kind']}, {r['mechanism']}, ε {r['epsilon']:.3g}):"
                  f" noise scale {r['noise_scale']:,.3g}, 95% within ±{r['ci95_half_width']:,.3g}"
                  for r in self.rows(self.slider.value)]
        return "\n".join(lines)

    def refresh(self) -> None:
        rng = np.random.default_rng(self.seed)
        parts = [f"<p>query: <code>{escape(self.sql)}</code></p>"]
        for r in self.rows(self.slider.value):
            mech = mechanism_for(r["m"], rng)
            zero = 0 if r["mechanism"] == "geometric" else 0.0
            draws = np.array([mech.randomise(zero) for _ in range(self.draws)], dtype=float)
            parts.append(
                f"<p><b>{r['measurement']}</b> ({r['kind']}, {r['mechanism']}, ε "
                f"{r['epsilon']:.3f}): noise scale {r['noise_scale']:.3g}, 95% of releases "
                f"within ±{r['ci95_half_width']:.3g}; mean absolute error "
                f"{np.abs(draws).mean():.3g}</p>{noise_svg(draws, r['ci95_half_width'])}")
        self.view.value = "".join(parts)
