"""The bind form that ``%mesh_bind`` shows when called without arguments."""

from __future__ import annotations

from html import escape
from typing import Callable

import ipywidgets as w

from ..errors import MeshError
from ..mesh import Mesh
from ..session import Session, resolve_analyst
from .face import WidgetFace

OnBind = Callable[[list[str], str, str, bool], Session]


class BindForm(WidgetFace):
    """Product(s), purpose (with its description and legal basis), acknowledgement, Bind.

    ``on_bind(products, purpose, analyst, acknowledged)`` does the binding; the form only
    collects the choice and shows the outcome. ``submit()`` is what the button calls.
    """

    def __init__(self, mesh: Mesh, on_bind: OnBind):
        self.mesh, self.on_bind = mesh, on_bind
        self.session: Session | None = None
        names = sorted(mesh.products)
        self.products = w.SelectMultiple(options=names, value=names[:1], description="Products",
                                         rows=min(4, len(names)))
        self.purpose = w.Dropdown(description="Purpose")
        self.about = w.HTML()
        self.analyst = w.Text(value=resolve_analyst(), description="Analyst")
        self.acknowledge = w.Checkbox(value=False, indent=False,
                                      description="I have read the purpose and will use the "
                                                  "data only for it")
        self.button = w.Button(description="Bind", button_style="primary", icon="link")
        self.message = w.HTML()
        self.products.observe(lambda _: self._refresh_purposes(), names="value")
        self.purpose.observe(lambda _: self._refresh_about(), names="value")
        self.button.on_click(lambda _: self.submit())
        self._refresh_purposes()
        self.widget = w.VBox([self.products, self.purpose, self.about, self.analyst,
                              self.acknowledge, self.button, self.message])

    def _refresh_purposes(self) -> None:
        chosen = [self.mesh.products[n].contract for n in self.products.value]
        common = (set.intersection(*(set(c.purposes) for c in chosen)) if chosen else set())
        keep = self.purpose.value
        self.purpose.options = sorted(common)
        # ipywidgets 8 leaves value None when the options change: keep the choice, else the
        # first purpose every chosen product declares
        self.purpose.value = (keep if keep in common else
                              self.purpose.options[0] if self.purpose.options else None)
        self._refresh_about()

    def _refresh_about(self) -> None:
        if not self.purpose.value or not self.products.value:
            self.about.value = "<i>no purpose declared by every chosen product</i>"
            self.acknowledge.layout.display = "none"
            return
        parts, needs_ack = [], False
        for name in self.products.value:
            p = self.mesh.products[name].contract.purposes[self.purpose.value]
            needs_ack |= p.requires_acknowledgement
            budget = (f"ε {p.budget.epsilon:g} ({p.budget.scope})" if p.budget else "no budget")
            parts.append(f"<b>{escape(name)}</b>: {escape(p.description.strip())}<br>"
                         f"<small>access: {escape(p.access)} · legal basis: "
                         f"{escape(p.legal_basis or 'not stated')} · {escape(budget)}</small>")
        self.about.value = "<br>".join(parts)
        self.acknowledge.layout.display = None if needs_ack else "none"

    def text(self) -> str:
        products = ", ".join(self.products.value) or "none"
        return (f"mesh_nb bind form (products: {products}; purpose: "
                f"{self.purpose.value or 'none'}) — in a terminal bind with "
                "%mesh_bind PRODUCT --purpose PURPOSE")

    def submit(self) -> Session | None:
        """Bind with the current choice; shows the outcome in the form."""
        try:
            self.session = self.on_bind(list(self.products.value), self.purpose.value or "",
                                        self.analyst.value, self.acknowledge.value)
        except MeshError as exc:
            self.message.value = f"<span style='color:#b00'>{escape(str(exc))}</span>"
            return None
        self.message.value = f"<span style='color:#070'>bound: {escape(repr(self.session))}</span>"
        return self.session
