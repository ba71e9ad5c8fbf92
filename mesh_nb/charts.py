"""Small self-contained SVG charts: bars with error bars (a release) and a step line under a cap
(a budget over time).

Plain inline SVG, no script: it renders in JupyterLab, in an untrusted notebook (whose scripts
are stripped), in nbconvert HTML, VS Code and the owner's report page, with no server round
trip and no library at run time. Every mark carries its numbers as ``data-*`` attributes, so
tests (and readers of the HTML) can check that a chart shows exactly what was released.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from html import escape

BLUE, RED, GREY = "#1f5fa8", "#b00", "#555"
PALETTE = (BLUE, "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#5d4037")


@dataclass(frozen=True)
class Bar:
    """One bar: its label, the released value and its stated interval (None: no interval)."""

    label: str
    value: float
    low: float | None = None
    high: float | None = None


def number(v: float | int | None, decimals: int = 2) -> str:
    """``12,345`` for an integer, ``1,234.57`` for a float (``decimals`` places; tiny values in
    two significant digits); ``–`` for a missing value."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, int) or hasattr(v, "dtype") and v.dtype.kind in "iu":
        return f"{int(v):,}"
    v = float(v)
    if v and abs(v) < 10 ** -decimals:
        return f"{v:.2g}"
    return f"{v:,.{decimals}f}"


def _attr(v: float | None) -> str:
    return "" if v is None else repr(float(v))


def bar_chart(bars: list[Bar], *, title: str, decimals: int = 2, width: int = 360,
              bar_height: int = 18) -> str:
    """Horizontal bars with error bars: one row per bar, the interval as a whisker; labels
    with ``decimals`` places (0 for counts)."""
    left, right, top = 110, 60, 22
    height = top + bar_height * len(bars) + 18
    ends = [0.0] + [x for b in bars for x in (b.value, b.low, b.high) if x is not None]
    lo, hi = min(ends), max(ends)
    span = (hi - lo) or 1.0
    x = lambda v: left + (width - left - right) * (v - lo) / span  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" class="mesh-nb-chart" '
             f'data-title="{escape(title)}">',
             f"<title>{escape(title)}</title>",
             f'<text x="0" y="14" font-size="12" font-weight="bold">{escape(title)}</text>',
             f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{top - 2}" y2="{height - 16}" '
             f'stroke="{GREY}" stroke-width="0.5"/>']
    for i, b in enumerate(bars):
        y = top + i * bar_height
        x0, x1 = sorted((x(0), x(b.value)))
        label = b.label if len(b.label) <= 16 else b.label[:15] + "…"
        parts.append(
            f'<g class="mesh-nb-bar" data-label="{escape(b.label)}" data-value="{_attr(b.value)}"'
            f' data-low="{_attr(b.low)}" data-high="{_attr(b.high)}">'
            f'<text x="{left - 4}" y="{y + bar_height * 0.7:.1f}" font-size="11" '
            f'text-anchor="end">{escape(label)}</text>'
            f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 0.5):.1f}" '
            f'height="{bar_height - 6}" fill="{BLUE}" fill-opacity="0.75"/>')
        if b.low is not None and b.high is not None:
            mid = y + bar_height / 2
            parts.append(f'<path d="M{x(b.low):.1f},{mid - 4}v8M{x(b.low):.1f},{mid}'
                         f'H{x(b.high):.1f}M{x(b.high):.1f},{mid - 4}v8" stroke="{RED}" '
                         'fill="none" stroke-width="1.2"/>')
        parts.append(f'<text x="{max(x1, x(b.high) if b.high is not None else x1) + 3:.1f}" '
                     f'y="{y + bar_height * 0.7:.1f}" font-size="10" fill="{GREY}">'
                     f"{escape(number(b.value, decimals))}</text></g>")
    parts.append(f'<text x="{left}" y="{height - 3}" font-size="10" fill="{GREY}">'
                 f"{escape(number(lo, decimals))}</text>"
                 f'<text x="{width - right}" y="{height - 3}" font-size="10" fill="{GREY}" '
                 f'text-anchor="end">{escape(number(hi, decimals))}</text></svg>')
    return "".join(parts)


def step_chart(series: dict[str, list[tuple[datetime, float]]], cap: float, *, title: str,
               width: int = 360, height: int = 120, compact: bool = False) -> str:
    """Running totals over time (a step line per series) under their cap (dashed); dates on
    the x axis. ``compact``: a sparkline (no title, axis labels or points)."""
    left, right, top, bottom = (3, 3, 3, 3) if compact else (40, 70, 22, 18)
    values = [v for points in series.values() for _, v in points]
    ymax = max([cap] + values) or 1.0
    y = lambda v: top + (height - top - bottom) * (1 - v / ymax)  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" class="mesh-nb-chart '
             f'{"mesh-nb-spark" if compact else "mesh-nb-budget"}" '
             f'data-title="{escape(title)}" data-cap="{_attr(cap)}">',
             f"<title>{escape(title)}</title>",
             f'<line x1="{left}" x2="{width - right}" y1="{y(cap):.1f}" y2="{y(cap):.1f}" '
             f'stroke="{RED}" stroke-dasharray="4,3"/>']
    if not compact:
        parts += [f'<text x="0" y="14" font-size="12" font-weight="bold">{escape(title)}</text>',
                  f'<text x="{left - 3}" y="{y(cap) + 4:.1f}" font-size="10" text-anchor="end" '
                  f'fill="{RED}">{escape(number(cap, 3))}</text>',
                  f'<text x="{left - 3}" y="{y(0):.1f}" font-size="10" text-anchor="end" '
                  f'fill="{GREY}">0</text>']
    times = sorted(t for points in series.values() for t, _ in points)
    if times:
        t0, t1 = times[0], times[-1]
        span = (t1 - t0).total_seconds()
        x = (lambda t: left + (width - left - right) * (t - t0).total_seconds() / span) \
            if span else (lambda t: width - right)
        for i, (name, points) in enumerate(sorted(series.items())):
            colour = PALETTE[i % len(PALETTE)]
            path, prev = [f"M{left},{y(0):.1f}"], 0.0
            for t, v in points:
                path.append(f"L{x(t):.1f},{y(prev):.1f}L{x(t):.1f},{y(v):.1f}")
                prev = v
            path.append(f"L{width - right},{y(prev):.1f}")
            parts.append(f'<g class="mesh-nb-series" data-name="{escape(name)}">'
                         f'<path d="{"".join(path)}" fill="none" stroke="{colour}" '
                         'stroke-width="1.5"/>')
            if not compact:
                parts += [f'<circle class="mesh-nb-point" cx="{x(t):.1f}" cy="{y(v):.1f}" '
                          f'r="2" fill="{colour}" data-date="{t.date().isoformat()}" '
                          f'data-value="{_attr(v)}"/>' for t, v in points]
                parts.append(f'<text x="{width - right + 3}" y="{y(prev) + 4:.1f}" '
                             f'font-size="10" fill="{colour}">{escape(name)[:12]} '
                             f"{escape(number(prev, 3))}</text>")
            parts.append("</g>")
        if not compact:
            parts.append(f'<text x="{left}" y="{height - 4}" font-size="10" fill="{GREY}">'
                         f"{t0.date().isoformat()}</text><text x=\"{width - right}\" "
                         f'y="{height - 4}" font-size="10" fill="{GREY}" text-anchor="end">'
                         f"{t1.date().isoformat()}</text>")
    parts.append("</svg>")
    return "".join(parts)
