"""How the values a session returns look in a notebook: releases as great-tables tables
(values ± their 95% interval, what was spent, how) beside a bar chart with error bars of the
released values, rows with what was done to them, explain reports as a table of measurements,
models as a card (features, held-out estimate, ε split, coefficients);
:func:`register` adds them to IPython's formatters (the core knows no face)."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any, Collection

if TYPE_CHECKING:
    import pandas as pd
    from great_tables import GT

    from .charts import Bar
    from .values import Explanation, ModelRelease, Release, RowRelease

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


#: Categories a feature row lists before it says how many more there are.
MAX_CATEGORIES_SHOWN = 12
_CARD_CSS = ("<style>.mesh-nb-model table{border-collapse:collapse;margin:.3em 0 .8em}"
             ".mesh-nb-model th,.mesh-nb-model td{padding:2px 8px;border-bottom:1px solid #ddd;"
             "text-align:left}.mesh-nb-model td.num{text-align:right;"
             "font-variant-numeric:tabular-nums}.mesh-nb-model caption{text-align:left;"
             "font-weight:bold;padding:.2em 0}.mesh-nb-model small{color:#555}</style>")


def _html_table(head: list[str], rows: list[list[Any]], *, caption: str, cls: str,
                numeric: Collection[int] = ()) -> str:
    """A small HTML table, every cell escaped (``numeric``: right-aligned column indices)."""
    th = "".join(f"<th>{escape(str(h))}</th>" for h in head)
    body = "".join("<tr>" + "".join(
        f"<td class='num'>{escape(str(v))}</td>" if i in numeric else f"<td>{escape(str(v))}</td>"
        for i, v in enumerate(row)) + "</tr>" for row in rows)
    return (f"<table class='{cls}'><caption>{escape(caption)}</caption><thead><tr>{th}</tr>"
            f"</thead><tbody>{body}</tbody></table>")


def _feature_domain(f: dict) -> str:
    """``0 – 500`` for numeric bounds, the declared categories (the first few) otherwise."""
    from .charts import number

    if f.get("bounds"):
        lo, hi = (int(v) if float(v).is_integer() else float(v) for v in f["bounds"])
        return f"{number(lo)} – {number(hi)}"
    cats = [str(c) for c in f.get("categories") or ()]
    more = len(cats) - MAX_CATEGORIES_SHOWN
    return ", ".join(cats[:MAX_CATEGORIES_SHOWN]) + (f", … ({len(cats)} in all)" if more > 0
                                                      else "")


def _evaluation_html(ev: dict | None) -> str:
    """The held-out estimate with its 95% interval, and a classifier's noisy confusion
    matrix (rows: actual class, columns: predicted)."""
    from .charts import number

    if not ev:
        return "<p class='mesh-nb-model-eval'>No held-out evaluation (nothing spent on one).</p>"
    lo, hi = ev.get("ci95") or (None, None)
    stated = lo is not None and hi is not None and lo == lo and hi == hi
    interval = (f" (95% interval {number(lo, 3)} – {number(hi, 3)})" if stated
                else " (no interval stated)")
    head = (f"<p class='mesh-nb-model-eval'><b>held-out {escape(str(ev['metric']))} "
            f"{escape(number(ev.get('value'), 3))}</b>{escape(interval)} on about "
            f"{escape(number(int(ev.get('test_rows') or 0)))} held-out units (noisy count, "
            f"ε {ev.get('epsilon', 0):g})</p>")
    auc, auc_ci = ev.get("auc"), ev.get("auc_ci95") or (None, None)
    if auc is not None and auc == auc:
        span = (f" (95% interval {number(auc_ci[0], 3)} – {number(auc_ci[1], 3)})"
                if None not in auc_ci and auc_ci[0] == auc_ci[0] else "")
        head += (f"<p class='mesh-nb-model-eval'><b>held-out AUC {escape(number(auc, 3))}</b>"
                 f"{escape(span)}, from the same noisy score histograms</p>")
    confusion, classes = ev.get("confusion"), ev.get("classes")
    if not confusion or not classes:
        return head
    rows = [[f"actual {c}", *(number(int(v)) for v in row)]
            for c, row in zip(classes, confusion, strict=True)]
    return head + _html_table(["", *(f"predicted {c}" for c in classes)], rows,
                              caption="Confusion matrix (noisy counts)",
                              cls="mesh-nb-model-confusion",
                              numeric=set(range(1, len(classes) + 1)))


def _coefficients_html(r: "ModelRelease") -> str:
    """A linear model's coefficients per encoded column, beside a bar chart of each output's
    (up to :data:`CHART_MAX_BARS` terms)."""
    from .charts import Bar, bar_chart, number

    coef = r.coefficients()
    if not len(coef):
        return ""
    table = _html_table(["output", "term", "coefficient"],
                        [[o, t, number(v, 4)] for o, t, v in coef.itertuples(index=False)],
                        caption="Coefficients (encoded scale: numeric features in [-1, 1] by "
                                "their bounds)", cls="mesh-nb-model-coef", numeric={2})
    charts = "".join(
        bar_chart([Bar(t, float(v)) for t, v in zip(g["term"], g["coefficient"], strict=True)],
                  title=f"coefficients · {output}", decimals=3)
        for output, g in coef.groupby("output", sort=False) if len(g) <= CHART_MAX_BARS)
    if not charts:
        return table
    return ("<div style='display:flex;gap:1.5em;align-items:flex-start;flex-wrap:wrap'>"
            f"<div>{table}</div><div class='mesh-nb-charts'>{charts}</div></div>")


def model_html(r: "ModelRelease") -> str:
    """A model card: estimator, target, ε spent and left; the features (kind, bounds or
    categories); the held-out evaluation with its interval (and noisy confusion matrix); how ε
    was split; the noisy training rows; a linear model's coefficients; the notes."""
    from .charts import number

    card = r.card
    target = (card.get("target") or {}).get("name")
    title = f"mesh_nb model · {r.estimator}" + (f" of {target}" if target else "")
    left = ", ".join(f"{k} ε {v:g}" for k, v in r.remaining.items())
    where = ".".join(str(x) for x in (card.get("product"), card.get("table")) if x)
    subtitle = (f"purpose {r.purpose} · {where or ', '.join(r.products)} · spent ε {r.epsilon:g}"
                + (f", δ {r.delta:g}" if r.delta else "") + (f" · left: {left}" if left else "")
                + f" · release {r.release_id}")
    features = _html_table(
        ["feature", "kind", "bounds or categories"],
        [[f["name"], f["kind"], _feature_domain(f)] for f in card.get("features", ())]
        + ([[f"{target} (target)", card["target"]["kind"], _feature_domain(card["target"])]]
           if target else []),
        caption="Features", cls="mesh-nb-model-features")
    split = [("model", card.get("epsilon_model", 0.0)),
             ("training-set size (noisy count)", card.get("epsilon_size", 0.0)),
             ("held-out evaluation", card.get("epsilon_evaluation", 0.0))]
    budget = _html_table(["spent on", "ε"], [[k, f"{v:.4g}"] for k, v in split]
                         + [["total", f"{r.epsilon:g}"]], caption="How ε was split",
                         cls="mesh-nb-model-split", numeric={1})
    anchors = int(card.get("anchor_rows") or 0)
    rows = (f"<p class='mesh-nb-model-rows'>trained on {escape(number(int(card.get('rows') or 0)))}"
            f" rows (a noisy count; {escape(str(card.get('rows_per_unit', '')))})"
            + (f" and {anchors} public all-zero anchor row(s)" if anchors else "") + "</p>")
    options = card.get("options") or {}
    opts = (f"<p><small>options: {escape(', '.join(f'{k}={v}' for k, v in options.items()))}"
            "</small></p>" if options else "")
    notes = "".join(f"<li>{escape(n)}</li>" for n in r.notes)
    return (f"<div class='mesh-nb-model' id='mesh-model-{escape(r.release_id or 'x')}'>"
            f"{_CARD_CSS}<p><b>{escape(title)}</b><br><small>{escape(subtitle)}</small></p>"
            f"{features}{_evaluation_html(r.evaluation)}{budget}{rows}{opts}"
            f"{_coefficients_html(r)}"
            f"<p><small>{escape(str(card.get('encoding', '')))}</small></p>"
            + (f"<ul class='mesh-nb-model-notes'>{notes}</ul>" if notes else "") + "</div>")


#: (module, class name, HTML function): registered by name, so nothing is imported early.
HTML_FORMATTERS = (("mesh_nb.values", "Release", release_html),
                   ("mesh_nb.values", "RowRelease", rows_html),
                   ("mesh_nb.values", "Explanation", explain_html),
                   ("mesh_nb.values", "ModelRelease", model_html))


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
