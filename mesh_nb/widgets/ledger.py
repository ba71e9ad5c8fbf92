"""The owner's ledger browser that ``%mesh_ledger PRODUCT`` shows.

Filters (purpose, analyst, kind, since), a table of entries — who, when, what kind, epsilon and
delta, columns touched, the rule of a rejection, entity types of a PII alert: never a data
value, nor the query text — and a Verify button. Everything the buttons do is a method
(:meth:`LedgerBrowser.refresh`, :meth:`LedgerBrowser.verify`), so it is testable from Python.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from html import escape
from typing import Any

import ipywidgets as w

from ..errors import LedgerTampered
from ..ledger import KINDS, Entry, Ledger
from ..text import plural
from .face import WidgetFace

ANY = "(any)"
ROW_FIELDS = ("seq", "when", "kind", "analyst", "purpose", "session", "epsilon", "delta",
              "columns", "rule", "detail")


def entry_row(e: Entry) -> dict[str, Any]:
    """What the browser shows of one entry: labels, counts and names only."""
    d = e.details
    detail = []
    if d.get("release"):
        detail.append(f"release {d['release']}" + (" (cached)" if d.get("cached") else ""))
    if d.get("access"):
        detail.append(str(d["access"]))
    if "rows" in d:
        detail.append(f"{d['rows']} rows")
    if "groups" in d:
        detail.append(f"{d['groups']} groups")
    if d.get("frame"):
        detail.append(f"frame {d['frame']}")
    if d.get("entity_types"):
        detail.append(", ".join(f"{k}×{v}" for k, v in sorted(d["entity_types"].items())))
    if "requested_epsilon" in d:
        detail.append(f"asked ε {d['requested_epsilon']:g}, "
                      f"{d.get('remaining_epsilon', 0):g} left")
    if d.get("products") and len(d["products"]) > 1:
        detail.append("products " + ", ".join(d["products"]))
    return {
        "seq": e.seq, "when": e.ts[:19].replace("T", " "), "kind": e.kind,
        "analyst": e.analyst or "", "purpose": e.purpose or "", "session": e.session or "",
        "epsilon": e.epsilon, "delta": e.delta,
        "columns": ", ".join(d.get("columns") or []), "rule": str(d.get("rule") or ""),
        "detail": "; ".join(detail),
    }


class LedgerBrowser(WidgetFace):
    """Browse and verify one product's ledger.

    Set ``purpose.value``, ``analyst.value`` (any name), ``kind.value`` (``"(any)"`` for no
    filter) and ``since.value`` (a date or None); each change refreshes ``rows`` (newest first, at most
    ``limit``). ``verify()`` is what the Verify button calls.
    """

    def __init__(self, ledger: Ledger, *, purposes: list[str] | None = None,
                 limit: int = 200) -> None:
        self.ledger, self.limit = ledger, limit
        self.rows: list[dict[str, Any]] = []
        self.total = 0
        self.status: str = ""
        self.ok: bool | None = None
        self._purposes = list(purposes or [])
        self.purpose = w.Dropdown(description="Purpose", options=[ANY])
        # a combobox: any name can be typed (or set), also one not in this ledger yet
        self.analyst = w.Combobox(description="Analyst", options=[ANY], value=ANY,
                                  ensure_option=False, placeholder=ANY)
        self.kind = w.Dropdown(description="Kind", options=[ANY, *KINDS])
        self.since = w.DatePicker(description="Since")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.verify_button = w.Button(description="Verify", icon="check", button_style="info")
        self.table = w.HTML()
        self.verify_status = w.HTML("<i>not verified yet — press Verify</i>")
        self._load_options()
        for control in (self.purpose, self.analyst, self.kind, self.since):
            control.observe(lambda _: self.refresh(), names="value")
        self.refresh_button.on_click(lambda _: self.refresh(reload_options=True))
        self.verify_button.on_click(lambda _: self.verify())
        filters = w.HBox([self.purpose, self.analyst, self.kind, self.since])
        buttons = w.HBox([self.refresh_button, self.verify_button, self.verify_status])
        self.widget = w.VBox([w.HTML(f"<b>Ledger of {escape(ledger.product)}</b>"), filters,
                              buttons, self.table])
        self.refresh()

    # -- filters ------------------------------------------------------------------------------

    def _load_options(self) -> None:
        """Purposes and analysts present in the ledger (plus the contract's purposes)."""
        purposes, analysts = set(self._purposes), set()
        for e in self.ledger.entries():
            if e.purpose:
                purposes.add(e.purpose)
            if e.analyst:
                analysts.add(e.analyst)
        for dropdown, values in ((self.purpose, purposes), (self.analyst, analysts)):
            keep = dropdown.value
            dropdown.options = [ANY, *sorted(values)]
            if isinstance(dropdown, w.Dropdown):
                dropdown.value = keep if keep in dropdown.options else ANY

    def filters(self) -> dict[str, Any]:
        """The current filters as :meth:`Ledger.entries` arguments."""
        since = self.since.value
        if isinstance(since, date) and not isinstance(since, datetime):
            since = datetime.combine(since, time.min, tzinfo=timezone.utc)

        def pick(v: str | None) -> str | None:
            return None if v in (None, "", ANY) else v

        return {"purpose": pick(self.purpose.value), "analyst": pick(self.analyst.value),
                "kind": pick(self.kind.value), "since": since}

    # -- actions ------------------------------------------------------------------------------

    def refresh(self, reload_options: bool = False) -> list[dict[str, Any]]:
        """Re-read the entries matching the filters; returns the rows shown."""
        if reload_options:
            self._load_options()
        entries = self.ledger.entries(**self.filters())
        self.total = len(entries)
        self.rows = [entry_row(e) for e in reversed(entries[-self.limit:])]
        self.table.value = self._table_html()
        return self.rows

    def verify(self, full: bool = False) -> bool:
        """Run :meth:`Ledger.verify` and show the outcome; True when the ledger is intact."""
        try:
            report = self.ledger.verify(full=full)
        except LedgerTampered as exc:
            self.ok, self.status = False, str(exc)
            self.verify_status.value = (f"<span style='color:#b00'><b>TAMPERED</b>: "
                                        f"{escape(str(exc))}</span>")
            return False
        self.ok, self.status = True, str(report)
        self.verify_status.value = f"<span style='color:#070'>{escape(str(report))}</span>"
        return True

    # -- rendering ----------------------------------------------------------------------------

    def _table_html(self) -> str:
        head = "".join(f"<th style='text-align:left;padding:2px 6px'>{escape(f)}</th>"
                       for f in ROW_FIELDS)
        body = []
        for r in self.rows:
            cells = []
            for f in ROW_FIELDS:
                v = r[f]
                text = (f"{v:g}" if v else "") if f in ("epsilon", "delta") else str(v)
                cells.append(f"<td style='padding:2px 6px'>{escape(text)}</td>")
            body.append(f"<tr class='mesh-nb-ledger-row'>{''.join(cells)}</tr>")
        return (f"<div class='mesh-nb-ledger'><small>{escape(self._shown())}</small>"
                f"<table style='border-collapse:collapse;font-size:90%'><thead><tr>{head}"
                f"</tr></thead><tbody>{''.join(body)}</tbody></table></div>")

    def text(self) -> str:
        shown = [f"Ledger of {self.ledger.product}: {self._shown()}"]
        for r in self.rows[:20]:
            eps = f"ε {r['epsilon']:g}" if r["epsilon"] else ""
            shown.append(f"  #{r['seq']:<5} {r['when']} {r['kind']:<16} {r['analyst'] or '-':<12}"
                         f" {r['purpose'] or '-':<16} {eps:<8} {r['rule'] or r['detail']}"
                         .rstrip())
        return "\n".join(shown + ([self.status] if self.status else []))

    def _shown(self) -> str:
        if self.total > len(self.rows):
            return f"{len(self.rows):,} of {plural(self.total, 'matching entry')} (newest first)"
        return plural(self.total, "matching entry")

    def __repr__(self) -> str:
        return f"<LedgerBrowser {self.ledger.product}: {plural(self.total, 'matching entry')}>"
