"""Releases as great-tables tables: values ± their 95% interval, what was spent, how."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

import pandas as pd
from great_tables import GT

if TYPE_CHECKING:
    from .query.release import Release

CI_SUFFIX = "__ci95"


def release_table(r: "Release") -> GT:
    """A GT table of a release; every noisy value shows ``± half-width`` of its 95% interval."""
    frame = r.frame.copy()
    merged = []
    for name, cells in r.accuracy.groupby("output", sort=False) if len(r.accuracy) else []:
        if name in frame and cells.ci95_half_width.notna().any():
            frame[name + CI_SUFFIX] = cells.set_index("row").ci95_half_width.reindex(
                range(len(frame))).to_numpy()
            merged.append(name)
    table = GT(frame, id=f"mesh-release-{r.release_id or 'x'}")
    for name in merged:
        table = table.cols_merge_uncert(col_val=name, col_uncert=name + CI_SUFFIX)
    numeric = [c for c in r.frame.columns if pd.api.types.is_float_dtype(r.frame[c])]
    if numeric:
        table = table.fmt_number(columns=numeric + [n + CI_SUFFIX for n in merged],
                                 decimals=2, use_seps=True)
    left = ", ".join(f"{k} ε {v:g}" for k, v in r.remaining.items())
    spent = "no new cost (same query released before)" if r.cached else f"ε {r.epsilon:g}"
    if r.delta:
        spent += f", δ {r.delta:g}"
    subtitle = f"purpose {r.purpose} · spent {spent}" + (f" · left: {left}" if left else "")
    table = table.tab_header(title=f"mesh_nb release · {', '.join(r.products)}",
                             subtitle=subtitle)
    mechanisms = ", ".join(sorted({m for ms in r.accuracy.get("mechanism", [])
                                   for m in str(ms).split(", ")}))
    table = table.tab_source_note(
        f"Differentially private ({mechanisms}); ± is the 95% interval half-width of the "
        "noise. Counts are rounded and clamped at 0.")
    for note in r.notes:
        table = table.tab_source_note(note)
    return table


def release_html(r: "Release") -> str:
    """HTML of :func:`release_table`."""
    return release_table(r).as_raw_html()


def explain_html(text: str) -> str:
    """An explain report as preformatted HTML."""
    return f"<pre class='mesh-nb-explain'>{escape(text)}</pre>"
