"""How the values a session returns look in a notebook: releases as great-tables tables
(values ± their 95% interval, what was spent, how) beside a bar chart with error bars of the
released values, rows with what was done to them, explain reports as a table of measurements;
:func:`register` adds them to IPython's formatters (the core knows no face)."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from great_tables import GT

    from .charts import Bar
    from .values import Explanation, Release, RowRelease

CI_SUFFIX = "__ci95"
#: Most groups a release chart draws (a longer release shows the table only).
CHART_MAX_BARS = 40


def formatted(table: "GT", frame: "pd.DataFrame", columns: list[str] | None = None,
              *, decimals: int = 2) -> "GT":
    """``table`` with thousands separators: integers as ``12,345``, floats with ``decimals``."""
    import pandas as pd

    names = list(frame.columns) if columns is None else columns
    ints = [c for c in names if pd.api.types.is_integer_dtype(frame[c])
            and not pd.api.types.is_bool_dtype(frame[c])]
    floats = [c for c in names if pd.api.types.is_float_dtype(frame[c])]
    if ints:
        table = table.fmt_integer(columns=ints, use_seps=True)
    if floats:
        table = table.fmt_number(columns=floats, decimals=decimals, use_seps=True)
    return table


def release_bars(r: "Release") -> dict[str, list["Bar"]]:
    """Per noisy output of a grouped release: one bar per group, with its stated 95% interval
    (value ± half-width). Only released values: the frame and its accuracy, nothing else."""
    import pandas as pd

    from .charts import Bar

    if len(r.frame) < 2 or len(r.frame) > CHART_MAX_BARS or not len(r.accuracy):
        return {}
    outputs = [o for o in dict.fromkeys(r.accuracy["output"]) if o in r.frame]
    keys = [c for c in r.frame.columns if c not in outputs]
    labels = [" · ".join("(other)" if pd.isna(v) else str(v) for v in row) if keys else str(i)
              for i, row in enumerate(r.frame[keys].itertuples(index=False))]
    charts = {}
    for name in outputs:
        if not pd.api.types.is_numeric_dtype(r.frame[name]) or \
                pd.api.types.is_bool_dtype(r.frame[name]):
            continue
        half = (r.accuracy[r.accuracy["output"] == name].set_index("row")["ci95_half_width"]
                .reindex(range(len(r.frame))))
        bars = []
        for label, value, hw in zip(labels, r.frame[name], half, strict=True):
            if pd.isna(value):
                continue
            stated = pd.notna(hw)
            bars.append(Bar(label, float(value), float(value - hw) if stated else None,
                            float(value + hw) if stated else None))
        if bars:
            charts[name] = bars
    return charts


def release_charts_html(r: "Release") -> str:
    """The SVG bar charts of :func:`release_bars` (empty for an ungrouped release)."""
    from .charts import bar_chart

    return "".join(bar_chart(bars, title=f"{name} (± 95% interval)",
                             decimals=2 if r.frame[name].dtype.kind == "f" else 0)
                   for name, bars in release_bars(r).items())


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
    table = formatted(table, r.frame)
    whole = [n + CI_SUFFIX for n in merged if not pd.api.types.is_float_dtype(r.frame[n])]
    table = table.fmt_number(columns=whole, decimals=0, use_seps=True) if whole else table
    rest = [n + CI_SUFFIX for n in merged if n + CI_SUFFIX not in whole]
    table = table.fmt_number(columns=rest, decimals=2, use_seps=True) if rest else table
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
    return table.sub_missing(missing_text="–")


def release_html(r: "Release") -> str:
    """HTML of :func:`release_table`, with :func:`release_charts_html` beside it."""
    table = release_table(r).as_raw_html()
    charts = release_charts_html(r)
    if not charts:
        return table
    return ("<div class='mesh-nb-release' style='display:flex;gap:1.5em;"
            f"align-items:flex-start'><div style='flex:0 1 auto;min-width:0'>{table}</div>"
            "<div class='mesh-nb-charts' style='flex:0 0 auto;display:flex;"
            f"flex-direction:column;gap:0.8em'>{charts}</div></div>")


def explain_html(e: "Explanation") -> str:
    """An explain report: what it would spend, a table of its measurements (mechanism, ε,
    noise scale, 95% half-width), its outputs, and the engine SQL in a code block."""
    from great_tables import GT

    p = e.plan
    table = GT(e.table, id="mesh-explain").tab_header(
        title="mesh_nb explain · nothing spent",
        subtitle=f"ε {p.epsilon:g}, δ {p.delta:g}, at most {p.max_contributions:,} row(s) per "
                 "privacy unit; ε split equally between the measurements")
    table = formatted(table, e.table)
    small = [c for c in ("epsilon", "delta") if c in e.table.columns]
    table = table.fmt_number(columns=small, n_sigfig=3, drop_trailing_zeros=True) if small \
        else table
    table = table.cols_label(
        **{k: v for k, v in {"epsilon": "ε", "delta": "δ", "noise_scale": "noise scale",
                             "ci95_half_width": "95% ±"}.items() if k in e.table.columns})
    outputs = "".join(f"<li><code>{escape(o.name)} = {escape(o.func)}"
                      f"({escape(', '.join(o.parts))})</code></li>" for o in p.outputs)
    notes = "".join(f"<p><small>{escape(n)}</small></p>" for n in p.notes)
    return (f"<div class='mesh-nb-explain'><p>query: <code>{escape(e.sql)}</code></p>"
            f"{table.as_raw_html()}<p>outputs:</p><ul>{outputs}</ul>{notes}"
            "<details><summary>engine SQL</summary><pre><code class='language-sql'>"
            f"{escape(p.sql)}</code></pre></details></div>")


def rows_html(r: "RowRelease") -> str:
    """Released rows (the first 50) through great-tables, with what was done to them."""
    from great_tables import GT

    shown = r.frame.head(50)
    table = GT(shown, id=f"mesh-rows-{r.release_id or 'x'}").tab_header(
        title=f"mesh_nb rows · {', '.join(r.products)}",
        subtitle=f"purpose {r.purpose} · {r.rows:,} row(s)"
                 + (f", first {len(shown):,} shown" if len(shown) < r.rows else ""))
    table = formatted(table, shown).tab_source_note(
        f"tokens: {', '.join(r.tokenized) or 'none'}; generalized: "
        f"{', '.join(r.generalized) or 'none'}")
    return table.sub_missing(missing_text="–").as_raw_html()


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
