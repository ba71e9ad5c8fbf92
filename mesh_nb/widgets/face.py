"""What every widget face shares: the ipywidgets view in a notebook, plain text in a terminal.

A terminal IPython (or any frontend without the widget manager) only renders ``text/plain``:
without this, it would print ``VBox(children=(...))``. :class:`WidgetFace` gives the widget's
MIME bundle with ``text/plain`` replaced by :meth:`WidgetFace.text`.
"""

from __future__ import annotations

from typing import Any


class WidgetFace:
    """Mixin for an object that holds its ipywidgets view in ``self.widget``."""

    widget: Any

    def text(self) -> str:
        """What a terminal shows instead of the widget."""
        raise NotImplementedError

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None,
                          **kwargs: Any) -> dict[str, Any]:
        data = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        data["text/plain"] = self.text()
        return data

    def show(self) -> None:
        """Display this face (the widget in a notebook, its text in a terminal)."""
        from IPython.display import display

        display(self)
