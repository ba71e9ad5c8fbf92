"""The owner's usage report: who used the product, for which purpose, at what privacy cost.

:func:`usage_report` reads only the owner's ledger and the contract (never the data), builds
pandas tables whose numbers tests compare with the ledger, and renders them as one
self-contained HTML page with great-tables (no script, no web font, no external link).
"""

from __future__ import annotations

import html
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import LedgerError, LedgerTampered
from ..ledger.entry import MICRO, PICO, RELEASE_KINDS
from ._common import entries_in, parse_since, products_of, ts
from .minimize import Minimization, minimize_products

if TYPE_CHECKING:
    from ..mesh import Mesh, Product

EVERYONE = "(everyone)"

USAGE_COLUMNS = ["product", "purpose", "analyst", "access", "sessions", "releases", "models",
                 "cached", "rows_released", "rejected", "failed", "budget_exhausted", "pii_alerts",
                 "epsilon", "delta"]
BUDGET_COLUMNS = ["product", "purpose", "scope", "holder", "budget_epsilon", "budget_delta",
                  "period_days", "releases", "epsilon", "delta", "window_epsilon",
                  "remaining_epsilon", "share_used", "trend"]
MODEL_COLUMNS = ["product", "purpose", "analyst", "estimator", "target", "features", "fits",
                 "failed", "epsilon", "last"]
TIMELINE_COLUMNS = ["product", "purpose", "holder", "seq", "ts", "epsilon", "cumulative"]
REJECTED_COLUMNS = ["product", "purpose", "rule", "count", "analysts", "last", "example"]
PII_COLUMNS = ["product", "purpose", "analyst", "frame", "entity_type", "columns", "alerts",
               "last"]
VERIFY_COLUMNS = ["product", "status", "entries", "checkpoint", "bad_entry", "detail"]


@dataclass
class UsageReport:
    """The tables of a usage report; :meth:`to_html` renders them.

    ``tables`` (pandas, one row per group): ``usage`` (sessions, releases — models among
    them —, rejections, PII alerts, epsilon and delta per product, purpose and analyst),
    ``models`` (models fitted: estimator, target and features per purpose and analyst, with
    what they spent), ``budget`` (spent against
    each budget), ``timeline`` (every spend and the running total per budget holder),
    ``rejected`` (by rule), ``pii`` (alerts by frame and entity type), ``verify`` (the
    ledger's verify status), ``minimization`` and ``collection`` (see
    :func:`mesh_nb.review.minimization`).
    """

    products: list[str]
    since: datetime | None
    generated: datetime
    tables: dict[str, pd.DataFrame]
    contracts: dict[str, dict[str, str]] = field(default_factory=dict)
    minimized: Minimization | None = None

    @property
    def verified(self) -> bool:
        """True when every covered ledger verified."""
        return bool((self.tables["verify"]["status"] == "ok").all())

    def to_html(self) -> str:
        """The whole report as one self-contained HTML document."""
        return render_html(self)

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_html` to ``path``; returns the path."""
        out = Path(path)
        out.write_text(self.to_html(), encoding="utf-8")
        return out

    def _repr_html_(self) -> str:
        return _body(self)

    def summary(self) -> str:
        """One line per product: sessions, releases, epsilon, rejections, verify status."""
        lines = []
        u, v = self.tables["usage"], self.tables["verify"]
        for name in self.products:
            rows = u[u["product"] == name]
            status = v[v["product"] == name]["status"].iloc[0]
            flagged = self.tables["minimization"]
            n_flag = int(flagged[(flagged["product"] == name) & flagged["flagged"]].shape[0])
            lines.append(f"{name}: {int(rows['sessions'].sum())} session(s), "
                         f"{int(rows['releases'].sum())} release(s) "
                         f"({int(rows['models'].sum())} model(s)), "
                         f"ε {rows['epsilon'].sum():g} spent, {int(rows['rejected'].sum())} "
                         f"rejected, {int(rows['pii_alerts'].sum())} PII alert(s), "
                         f"{n_flag} allowed column(s) never touched; ledger {status}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def usage_report(target: "Mesh | Product", since: datetime | date | str | None = None, *,
                 product: str | None = None, now: datetime | None = None) -> UsageReport:
    """The usage report of one product (or every product of a mesh) from ``since`` on.

    ``since``: a datetime, a date, an ISO string or a span like ``30d``; None means the whole
    ledger.
    """
    start = parse_since(since, now=now)
    products = products_of(target, product)
    usage, models, budget, timeline, rejected, pii, verify = [], [], [], [], [], [], []
    contracts = {}
    for p in products:
        c = p.contract
        contracts[p.name] = {"id": c.id, "version": c.version, "file": str(c.path),
                             "owners": ", ".join(c.owners), "team": c.team}
        entries = entries_in(p, start)
        usage += _usage(p, entries)
        models += _models(p, entries)
        b, t = _budget(p, entries)
        budget += b
        timeline += t
        rejected += _rejected(p, entries)
        pii += _pii(p, entries)
        verify.append(_verify(p))
    mini = minimize_products(products, start)
    tables = {
        "usage": _frame(usage, USAGE_COLUMNS),
        "models": _frame(models, MODEL_COLUMNS),
        "budget": _frame(budget, BUDGET_COLUMNS),
        "timeline": _frame(timeline, TIMELINE_COLUMNS),
        "rejected": _frame(rejected, REJECTED_COLUMNS),
        "pii": _frame(pii, PII_COLUMNS),
        "verify": _frame(verify, VERIFY_COLUMNS),
        "minimization": mini.by_purpose,
        "collection": mini.collection,
    }
    return UsageReport([p.name for p in products], start, now or datetime.now(timezone.utc),
                       tables, contracts, mini)


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


# -- tables -------------------------------------------------------------------------------


def _usage(p: "Product", entries) -> list[dict]:
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    fits: set[str] = set()  # release ids of models (a failed fit is no model)
    for e in entries:
        if e.purpose is None:
            continue
        g = groups.setdefault((e.purpose, e.analyst or ""), {
            "sessions": set(), "releases": 0, "models": 0, "cached": 0, "rows_released": 0,
            "rejected": 0, "failed": 0,
            "budget_exhausted": 0, "pii_alerts": 0, "eps": 0, "delta": 0})
        if e.kind == "session.bound" and e.session:
            g["sessions"].add(e.session)
        elif e.kind in RELEASE_KINDS:
            g["releases"] += 1
            if e.kind == "model.released":
                g["models"] += 1
                fits.add(str(e.details.get("release", "")))
            g["cached"] += bool(e.details.get("cached"))
            g["rows_released"] += int(e.details.get("rows") or 0)
        elif e.kind == "query.rejected":
            g["rejected"] += 1
        elif e.kind == "query.failed":  # charged by its query.released/model.released entry
            g["failed"] += 1
            g["releases"] -= 1
            g["models"] -= str(e.details.get("release", "")) in fits
        elif e.kind == "budget.exhausted":
            g["budget_exhausted"] += 1
        elif e.kind == "pii.detected":
            g["pii_alerts"] += 1
        g["eps"] += e.epsilon_micro
        g["delta"] += e.delta_pico
    out = []
    for (purpose, analyst), g in sorted(groups.items()):
        spec = p.contract.purpose(purpose)
        out.append({"product": p.name, "purpose": purpose, "analyst": analyst,
                    "access": spec.access if spec else "(undeclared)",
                    "sessions": len(g["sessions"]), "releases": g["releases"],
                    "models": g["models"],
                    "cached": g["cached"], "rows_released": g["rows_released"],
                    "rejected": g["rejected"], "failed": g["failed"],
                    "budget_exhausted": g["budget_exhausted"],
                    "pii_alerts": g["pii_alerts"], "epsilon": g["eps"] / MICRO,
                    "delta": g["delta"] / PICO})
    return out


def _models(p: "Product", entries) -> list[dict]:
    """Models fitted per purpose and analyst: one row per estimator, target and features,
    with the fits, the failed ones (charged, no model released) and what they spent."""
    groups: dict[tuple[str, str, str, str, str], list] = defaultdict(list)
    failed = {str(e.details.get("release", "")) for e in entries if e.kind == "query.failed"}
    for e in entries:
        if e.kind != "model.released":
            continue
        d = e.details
        groups[(e.purpose or "", e.analyst or "", str(d.get("estimator", "")),
                str(d.get("target", "")), ", ".join(map(str, d.get("features") or ())))
               ].append(e)
    return [{"product": p.name, "purpose": purpose, "analyst": analyst, "estimator": est,
             "target": target, "features": features, "fits": len(es),
             "failed": sum(str(e.details.get("release", "")) in failed for e in es),
             "epsilon": sum(e.epsilon_micro for e in es) / MICRO, "last": es[-1].ts}
            for (purpose, analyst, est, target, features), es in sorted(groups.items())]


def _budget(p: "Product", entries) -> tuple[list[dict], list[dict]]:
    """Spend per budget holder (the analyst, or everyone for a per-purpose budget)."""
    rows, timeline = [], []
    for pname, purpose in sorted(p.contract.purposes.items()):
        b = purpose.budget
        if b is None:
            continue
        mine = [e for e in entries if e.purpose == pname]
        if b.scope == "per-purpose":
            holders = {EVERYONE: mine}
        else:
            holders = defaultdict(list)
            for e in mine:
                if e.analyst is not None:
                    holders[e.analyst].append(e)
        for holder, es in sorted(holders.items()):
            spends = [e for e in es if e.epsilon_micro or e.delta_pico]
            running = 0
            points = []
            for e in spends:
                running += e.epsilon_micro
                timeline.append({"product": p.name, "purpose": pname, "holder": holder,
                                 "seq": e.seq, "ts": e.ts, "epsilon": e.epsilon_micro / MICRO,
                                 "cumulative": running / MICRO})
                points.append((ts(e), running / MICRO))
            analyst = None if holder == EVERYONE else holder
            try:
                window, _ = p.ledger.spent(analyst, pname, b)
                remaining, _ = p.ledger.remaining(analyst, pname, b)
            except LedgerError:  # no budget to trust in a tampered ledger: `verify` says so
                window = remaining = float("nan")
            eps = sum(e.epsilon_micro for e in spends) / MICRO
            rows.append({
                "product": p.name, "purpose": pname, "scope": b.scope, "holder": holder,
                "budget_epsilon": b.epsilon, "budget_delta": b.delta,
                "period_days": b.period_days,
                "releases": sum(e.kind in RELEASE_KINDS for e in es),
                "epsilon": eps, "delta": sum(e.delta_pico for e in spends) / PICO,
                "window_epsilon": window, "remaining_epsilon": remaining,
                "share_used": window / b.epsilon if b.epsilon else 0.0,
                "trend": sparkline(points, b.epsilon)})
    return rows, timeline


def _rejected(p: "Product", entries) -> list[dict]:
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for e in entries:
        if e.kind == "query.rejected":
            groups[(e.purpose or "", str(e.details.get("rule", "(none)")))].append(e)
    return [{"product": p.name, "purpose": purpose, "rule": rule, "count": len(es),
             "analysts": ", ".join(sorted({e.analyst or "" for e in es})),
             "last": es[-1].ts, "example": str(es[-1].details.get("query", ""))}
            for (purpose, rule), es in sorted(groups.items())]


def _pii(p: "Product", entries) -> list[dict]:
    groups: dict[tuple[str, str, str, str], list] = defaultdict(list)
    for e in entries:
        if e.kind != "pii.detected":
            continue
        for entity, n in (e.details.get("entity_types") or {}).items():
            groups[(e.purpose or "", e.analyst or "", str(e.details.get("frame", "")),
                    entity)].append((e, int(n)))
    return [{"product": p.name, "purpose": purpose, "analyst": analyst, "frame": frame,
             "entity_type": entity, "columns": sum(n for _, n in hits), "alerts": len(hits),
             "last": hits[-1][0].ts}
            for (purpose, analyst, frame, entity), hits in sorted(groups.items())]


def _verify(p: "Product") -> dict:
    try:
        r = p.ledger.verify()
    except LedgerTampered as exc:
        return {"product": p.name, "status": "TAMPERED", "entries": len(p.ledger),
                "checkpoint": None, "bad_entry": exc.seq, "detail": str(exc)}
    return {"product": p.name, "status": "ok", "entries": r.entries,
            "checkpoint": r.checkpoint, "bad_entry": None, "detail": str(r)}


# -- the plot -----------------------------------------------------------------------------


def sparkline(points: list[tuple[datetime, float]], budget: float, *, width: int = 180,
              height: int = 40) -> str:
    """A small inline SVG: the running epsilon total (step line) under the budget (dashed)."""
    from ..charts import step_chart

    return step_chart({"spent": points}, budget, title=_spark_title(points, budget),
                      width=width, height=height, compact=True)


def _spark_title(points, budget: float) -> str:
    total = points[-1][1] if points else 0.0
    return f"epsilon spent {total:g} of budget {budget:g} over {len(points)} spend(s)"


def budget_charts(r: "UsageReport") -> list[str]:
    """One chart per product and purpose with a budget: cumulative ε spent over time (one line
    per budget holder) under the purpose's cap."""
    from ..charts import step_chart

    out = []
    budget, timeline = r.tables["budget"], r.tables["timeline"]
    for (product, purpose), rows in budget.groupby(["product", "purpose"], sort=True):
        spends = timeline[(timeline["product"] == product) & (timeline["purpose"] == purpose)]
        series = {holder: [(datetime.fromisoformat(t), float(c))
                           for t, c in zip(g["ts"], g["cumulative"], strict=True)]
                  for holder, g in spends.groupby("holder", sort=True)}
        cap = float(rows["budget_epsilon"].iloc[0])
        scope = rows["scope"].iloc[0]
        name = purpose if len(r.products) == 1 else f"{product} · {purpose}"
        out.append(step_chart(series, cap, title=f"{name}: ε spent (cap {cap:g}, {scope})"))
    return out


# -- HTML ---------------------------------------------------------------------------------

_CSS = """
body { font-family: -apple-system, 'Segoe UI', Roboto, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { font-size: 1.25em; margin-top: 2em; }
.mesh-nb-meta { color: #555; } .mesh-nb-ok { color: #070; font-weight: bold; }
.mesh-nb-bad { color: #b00; font-weight: bold; } .mesh-nb-none { color: #777; }
code { background: #f4f4f4; padding: 0 .2em; }
"""


def _gt(df: pd.DataFrame, table_id: str, title: str, subtitle: str = "", *,
        raw: tuple[str, ...] = (), decimals: dict[str, int] | None = None,
        percent: tuple[str, ...] = (), flag: str | None = None, group: str | None = None,
        labels: dict[str, str] | None = None) -> str:
    from great_tables import GT, loc, style

    if df.empty:
        return f'<p class="mesh-nb-none" id="{table_id}">{html.escape(title)}: none in ' \
               'the period.</p>'
    df = df.reset_index(drop=True)
    flagged = [int(i) for i in df.index[df[flag].astype(bool)]] if flag in df.columns else []
    if flag in df.columns:
        df[flag] = df[flag].map(lambda v: "yes" if v else "")
    gt = GT(df, id=table_id, groupname_col=group).tab_header(title=title,
                                                             subtitle=subtitle or None)
    for col, n in (decimals or {}).items():
        if col in df.columns:
            gt = gt.fmt_number(columns=col, decimals=n, drop_trailing_zeros=True)
    for col in percent:
        gt = gt.fmt_percent(columns=col, decimals=0)
    for col in raw:  # our own SVG: passed through unescaped (every other cell is escaped)
        gt = gt.fmt(lambda v: v if isinstance(v, str) else "", columns=col)
    if flagged:
        gt = gt.tab_style(style=style.fill(color="#fdecea"), locations=loc.body(rows=flagged))
    if labels:
        gt = gt.cols_label(**{k: v for k, v in labels.items() if k in df.columns})
    gt = gt.sub_missing(missing_text="–")
    return gt.as_raw_html()


def _when(value: Any) -> Any:
    """An ISO timestamp as ``YYYY-MM-DD HH:MM`` (UTC) for display."""
    if isinstance(value, str) and len(value) >= 16 and value[10] == "T":
        return value[:10] + " " + value[11:16]
    return value


def _display(df: pd.DataFrame, r: UsageReport, drop: tuple[str, ...] = ()) -> pd.DataFrame:
    """The table as shown: short times, no product column for a one-product report."""
    out = df.drop(columns=[c for c in drop if c in df.columns]).copy()
    if len(r.products) == 1 and "product" in out.columns:
        out = out.drop(columns=["product"])
    for col in ("ts", "last", "last_touched"):
        if col in out.columns:
            out[col] = out[col].map(_when)
    if "file" in df.columns and "where" in out.columns:
        out["where"] = [f"{Path(f).parent.name}/{Path(f).name}:{ln}" if pd.notna(ln)
                        else f"{Path(f).parent.name}/{Path(f).name}"
                        for f, ln in zip(df["file"], df["line"], strict=True)]
    return out


def _body(r: UsageReport) -> str:
    t = r.tables
    since = r.since.isoformat(timespec="seconds") if r.since else "the start of the ledger"
    out = [f"<h1>Usage report: {html.escape(', '.join(r.products))}</h1>",
           f'<p class="mesh-nb-meta">From {html.escape(since)} to '
           f"{html.escape(r.generated.isoformat(timespec='seconds'))}. Built from the owner's "
           "ledger and the contract only: names, counts and privacy budgets, never a data "
           "value.</p>"]
    for name, c in r.contracts.items():
        out.append(f'<p class="mesh-nb-meta"><b>{html.escape(name)}</b>: contract '
                   f"<code>{html.escape(c['id'])}</code> version {html.escape(c['version'])} "
                   f"(<code>{html.escape(c['file'])}</code>), team {html.escape(c['team'])}, "
                   f"owners {html.escape(c['owners'] or '–')}</p>")
    out.append("<h2>Ledger integrity</h2>")
    for v in t["verify"].itertuples():
        cls = "mesh-nb-ok" if v.status == "ok" else "mesh-nb-bad"
        out.append(f'<p id="mesh-nb-verify-{html.escape(v.product)}"><b>'
                   f'{html.escape(v.product)}</b>: <span class="{cls}">'
                   f"{html.escape(v.status)}</span> — {html.escape(str(v.detail))}</p>")
    out.append("<h2>Sessions and releases</h2>")
    out.append(_gt(_display(t["usage"], r), "mesh-nb-usage",
                   "Sessions and releases per purpose and analyst",
                   "models: releases that were DP models (below); "
                   "cached: the same query released again at no cost; rows: rows released "
                   "to row-access purposes; failed: charged queries the engine did not "
                   "complete (their class is in the ledger)", decimals={"epsilon": 4, "delta": 10},
                   labels={"rows_released": "rows", "budget_exhausted": "budget refused",
                           "pii_alerts": "PII alerts", "epsilon": "ε", "delta": "δ"}))
    out.append("<h2>Models fitted</h2>")
    out.append(_gt(_display(t["models"], r), "mesh-nb-models",
                   "Differentially private models per purpose and analyst",
                   "trained on the owner's side, one row per privacy unit; only the fitted "
                   "parameters were released. failed: charged fits that released no model",
                   decimals={"epsilon": 4}, labels={"epsilon": "ε", "fits": "fits"}))
    out.append("<h2>Privacy budgets</h2>")
    out.append(_gt(_display(t["budget"], r), "mesh-nb-budget",
                   "Epsilon spent against each budget",
                   "trend: running total over the period (blue) under the budget (red dashes); "
                   "window: spent within the budget's period, as the ledger enforces it",
                   raw=("trend",), percent=("share_used",),
                   decimals={"epsilon": 4, "window_epsilon": 4, "remaining_epsilon": 4,
                             "budget_delta": 10, "delta": 10},
                   labels={"budget_epsilon": "budget ε", "budget_delta": "budget δ",
                           "period_days": "period (days)", "epsilon": "ε in period",
                           "delta": "δ in period", "window_epsilon": "ε in window",
                           "remaining_epsilon": "ε left", "share_used": "used"}))
    charts = budget_charts(r)
    if charts:
        out.append("<div class='mesh-nb-budget-charts' style='display:flex;flex-wrap:wrap;"
                   f"gap:1.5em'>{''.join(charts)}</div>")
    out.append("<h2>Rejected queries</h2>")
    out.append(_gt(_display(t["rejected"], r), "mesh-nb-rejected", "Rejected queries by rule",
                   "example: the latest rejected query, literals redacted"))
    out.append("<h2>PII alerts</h2>")
    out.append(_gt(_display(t["pii"], r), "mesh-nb-pii", "PII found in analysts' frames",
                   "columns: how many columns of that entity type the autoscan found "
                   "(types and counts only)"))
    out.append("<h2>Data minimization</h2>")
    mini = r.minimized.summary() if r.minimized is not None else pd.DataFrame()
    out.append(_gt(_display(mini, r, drop=("file", "line")), "mesh-nb-minimization",
                   "Allowed columns per purpose: used and never used",
                   "never used: allowed but not touched by any release in the period — "
                   "candidates to drop from the purpose's allowedColumns at the contract line "
                   "shown", labels={"never_used": "never used", "where": "contract line"}))
    coll = _display(t["collection"], r, drop=("file", "line"))
    out.append(_gt(coll, "mesh-nb-collection", "Collected columns",
                   "flagged: no purpose allows or used the column — a candidate to stop "
                   "collecting (its schema entry at the line shown)", flag="flagged",
                   labels={"allowed_by": "allowed by", "where": "contract line"}))
    return "\n".join(out)


def render_html(r: UsageReport) -> str:
    """A complete HTML document: inline CSS and SVG only."""
    title = html.escape(f"mesh_nb usage report: {', '.join(r.products)}")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title}</title><style>{_CSS}</style></head><body>\n"
            f"{_body(r)}\n</body></html>\n")
