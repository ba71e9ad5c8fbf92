"""How the values a session returns look in a notebook: releases as great-tables tables
(values ± their 95% interval, what was spent, how), rows with what was done to them, explain
reports; :func:`register` adds them to IPython's formatters (the core knows no face)."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from great_tables import GT

    from .values import Explanation, Release, RowRelease

CI_SUFFIX = "__ci95"


def release_table(r: "Release") -> GT:
    """A GT table of a release; every noisy value shows ``± half-width`` of its 95% interval."""
    import pandas as pd
    from great_tables import GT

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


def explain_html(e: "Explanation") -> str:
    """An explain report as preformatted HTML."""
    return f"<pre class='mesh-nb-explain'>{escape(str(e))}</pre>"


def rows_html(r: "RowRelease") -> str:
    """Released rows (the first 50) with what was done to them."""
    note = (f"<p><small>{r.rows} row(s) for purpose <b>{escape(r.purpose)}</b>; tokens: "
            f"{escape(', '.join(r.tokenized) or 'none')}; generalized: "
            f"{escape(', '.join(r.generalized) or 'none')}</small></p>")
    return note + r.frame.head(50).to_html(index=False)


#: (module, class name, HTML function): registered by name, so nothing is imported early.
HTML_FORMATTERS = (("mesh_nb.values", "Release", release_html),
                   ("mesh_nb.values", "RowRelease", rows_html),
                   ("mesh_nb.values", "Explanation", explain_html))


def register(ipython: Any) -> None:
    """Show releases, rows and explain reports as HTML in ``ipython``, and releases also as the
    lab's ``application/vnd.mesh-nb.release+json`` (:mod:`mesh_nb.lab.mime`). Idempotent."""
    from .lab.mime import release_bundle

    formatters = ipython.display_formatter
    for module, name, html in HTML_FORMATTERS:
        formatters.formatters["text/html"].for_type_by_name(module, name, html)
    formatters.mimebundle_formatter.for_type_by_name("mesh_nb.values", "Release",
                                                      release_bundle)


def unregister(ipython: Any) -> None:
    """Undo :func:`register`."""
    formatters = ipython.display_formatter
    for module, name, _ in HTML_FORMATTERS:
        formatters.formatters["text/html"].pop(f"{module}.{name}", None)
    formatters.mimebundle_formatter.pop("mesh_nb.values.Release", None)
