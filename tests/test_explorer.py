"""The epsilon explorer: intervals shrink as epsilon grows; it spends nothing."""

from __future__ import annotations

import mesh_nb
from mesh_nb.widgets.explorer import EpsilonExplorer


def test_explorer_tracks_epsilon_and_spends_nothing(demo_dir) -> None:
    s = mesh_nb.open_mesh(demo_dir).bind("customers", purpose="churn-analysis", analyst="t")
    ex = EpsilonExplorer(s, "SELECT plan, COUNT(*) AS n FROM customers.accounts GROUP BY plan",
                         draws=500)
    widths = [ex.rows(e)[0]["ci95_half_width"] for e in (0.05, 0.2, 1.0)]
    assert widths[0] > widths[1] > widths[2]
    assert widths[0] / widths[2] == __import__("pytest").approx(20, rel=0.01)
    ex.slider.value = 0.1
    assert "<svg" in ex.view.value and "±" in ex.view.value
    assert s.budget().epsilon_remaining == 3.0
