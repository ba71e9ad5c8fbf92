"""The PII alert shown under a cell while (and after) its frames are scanned."""

from __future__ import annotations

from html import escape

import ipywidgets as w

from ..pii.alerts import Alert
from .face import WidgetFace

STYLE = ("border-left:4px solid #c62828;padding:4px 8px;background:#fff5f5;"
         "font-size:90%")


def alerts_html(alerts: list[Alert]) -> str:
    """An HTML table of alerts: frame.column, entity, share, confidence, contract, what to do."""
    rows = "".join(
        f"<tr><td><code>{escape(a.frame)}.{escape(a.column)}</code></td>"
        f"<td>{escape(a.entity)}</td><td>{a.share:.0%}</td><td>{a.confidence:.2f}</td>"
        f"<td>{escape(a.contract_says)}</td><td>{escape(a.problem)}</td>"
        f"<td>{escape(a.fix)}</td></tr>" for a in alerts)
    return (f"<div class='mesh-nb-pii-alert' style='{STYLE}'><b>mesh_nb: personal data "
            f"found</b><table><thead><tr><th>column</th><th>entity</th><th>matched</th>"
            f"<th>confidence</th><th>contract</th><th>problem</th><th>what to do</th></tr>"
            f"</thead><tbody>{rows}</tbody></table></div>")


def alerts_text(alerts: list[Alert]) -> str:
    """The alerts as text lines (a terminal's view of :func:`alerts_html`)."""
    return "\n".join(["mesh_nb: personal data found"] + [
        f"  {a.frame}.{a.column}: {a.entity} in {a.share:.0%} (confidence {a.confidence:.2f});"
        f" contract: {a.contract_says}; {a.problem} — {a.fix}" for a in alerts])


class ScanPanel(WidgetFace):
    """A small widget under the cell: "scanning …", then the alerts (or nothing)."""

    def __init__(self, frames: list[str]):
        self.frames = frames
        self.alerts: list[Alert] | None = None
        self.widget = w.HTML(f"<small style='color:#777'>mesh_nb: scanning "
                             f"{escape(', '.join(frames))} for personal data…</small>")

    def text(self) -> str:
        if self.alerts is None:
            return f"mesh_nb: scanning {', '.join(self.frames)} for personal data…"
        return alerts_text(self.alerts) if self.alerts else ""

    def done(self, alerts: list[Alert]) -> None:
        """Replace the label with the alerts; hide it when there is nothing to say."""
        self.alerts = list(alerts)
        if alerts:
            self.widget.value = alerts_html(alerts)
        else:
            self.widget.value = ""
            self.widget.layout.display = "none"
