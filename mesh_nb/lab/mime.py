"""The MIME bundle of a Release: ``application/vnd.mesh-nb.release+json`` beside text/html and
text/plain, so JupyterLab renders released tables with their privacy annotations natively and
classic Notebook, VS Code and nbconvert still show the HTML table.

The JSON holds what the release released (its noisy values) and how: columns, rows, the 95%
interval half-width of every noisy value, epsilon and delta spent, purpose, products, notes.
It never holds an exact value: there is none in a Release.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..values import Release

RELEASE_MIME = "application/vnd.mesh-nb.release+json"
BUNDLE_VERSION = 1
#: Rows carried in the JSON; the HTML beside it still shows them all.
MAX_ROWS = 2000


def _json_frame(frame) -> tuple[list[str], list[list[Any]], list[str]]:
    """Columns, rows and dtypes of a DataFrame as plain JSON values (NaN → null, dates ISO)."""
    split = json.loads(frame.to_json(orient="split", date_format="iso", index=False,
                                     default_handler=str))
    columns = [str(c) for c in split.get("columns", [])]
    return columns, split.get("data", []), [str(t) for t in frame.dtypes]


def _finite(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _accuracy_by_output(accuracy, rows: int) -> dict[str, dict[str, Any]]:
    """Per output column: each row's half-width, the mechanism, noise scale and epsilon."""
    out: dict[str, dict[str, Any]] = {}
    if accuracy is None or not len(accuracy) or "output" not in accuracy:
        return out
    for name, cells in accuracy.groupby("output", sort=False):
        by_row = cells.set_index("row") if "row" in cells else cells.reset_index(drop=True)
        hw = by_row["ci95_half_width"].reindex(range(rows)) if "ci95_half_width" in by_row \
            else None
        first = cells.iloc[0]
        out[str(name)] = {
            "half_widths": [_finite(v) for v in hw] if hw is not None else [None] * rows,
            "mechanism": str(first.get("mechanism", "")) or None,
            "func": str(first.get("func", "")) or None,
            "noise_scale": _finite(cells["noise_scale"].max()) if "noise_scale" in cells
            else None,
            "epsilon": _finite(first.get("epsilon")),
        }
    return out


def release_data(release: "Release", *, max_rows: int = MAX_ROWS) -> dict[str, Any]:
    """The ``application/vnd.mesh-nb.release+json`` payload of a Release (its keys are the
    ``IReleaseBundle`` interface of extension/src/mime.ts; tests/test_values.py holds them
    equal)."""
    frame = release.frame
    columns, rows, dtypes = _json_frame(frame)
    accuracy = _accuracy_by_output(release.accuracy, len(frame))
    cols = []
    for name, dtype in zip(columns, dtypes):
        info = accuracy.get(name)
        cols.append({"name": name, "dtype": dtype, "noisy": info is not None,
                     **({k: info[k] for k in ("mechanism", "func", "noise_scale", "epsilon")}
                        if info else {})})
    truncated = len(rows) > max_rows
    rows = rows[:max_rows]
    return {
        "version": BUNDLE_VERSION,
        "release_id": release.release_id,
        "products": [str(p) for p in release.products],
        "purpose": release.purpose,
        "sql": release.sql,
        "epsilon": float(release.epsilon),
        "delta": float(release.delta),
        "cached": bool(release.cached),
        "remaining": {str(k): _finite(v) for k, v in release.remaining.items()},
        "columns": cols,
        "rows": rows,
        "half_widths": {name: info["half_widths"][:max_rows] for name, info in accuracy.items()
                        if name in columns},
        "notes": [str(n) for n in release.notes],
        "row_count": len(frame),
        "truncated": truncated,
    }


def release_bundle(release: "Release") -> dict[str, Any]:
    """The lab's part of a Release's display bundle, for IPython's mimebundle formatter
    (:func:`mesh_nb.display.register`); text/html and text/plain come from their own
    formatters."""
    return {RELEASE_MIME: release_data(release)}
