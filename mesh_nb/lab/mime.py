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
from typing import Any, Iterable

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


def release_data(release: Any, *, max_rows: int = MAX_ROWS) -> dict[str, Any]:
    """The ``application/vnd.mesh-nb.release+json`` payload of a Release."""
    frame = release.frame
    columns, rows, dtypes = _json_frame(frame)
    accuracy = _accuracy_by_output(getattr(release, "accuracy", None), len(frame))
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
        "release_id": getattr(release, "release_id", "") or "",
        "products": [str(p) for p in getattr(release, "products", ())],
        "purpose": getattr(release, "purpose", "") or "",
        "sql": getattr(release, "sql", "") or "",
        "epsilon": float(getattr(release, "epsilon", 0.0) or 0.0),
        "delta": float(getattr(release, "delta", 0.0) or 0.0),
        "cached": bool(getattr(release, "cached", False)),
        "remaining": {str(k): _finite(v) for k, v in
                      (getattr(release, "remaining", None) or {}).items()},
        "columns": cols,
        "rows": rows,
        "half_widths": {name: info["half_widths"][:max_rows] for name, info in accuracy.items()
                        if name in columns},
        "notes": [str(n) for n in getattr(release, "notes", ())],
        "row_count": len(frame),
        "truncated": truncated,
    }


def _wanted(mime: str, include: Iterable[str] | None, exclude: Iterable[str] | None) -> bool:
    return (include is None or mime in include) and not (exclude and mime in exclude)


def release_bundle(release: Any, include: Iterable[str] | None = None,
                   exclude: Iterable[str] | None = None) -> dict[str, Any]:
    """The display bundle of a Release: the mesh JSON, text/html and text/plain.

    Meant for ``Release._repr_mimebundle_(include, exclude)``; HTML comes from the release's
    ``_repr_html_`` (great-tables), plain text from its ``repr``.
    """
    bundle: dict[str, Any] = {}
    if _wanted(RELEASE_MIME, include, exclude):
        bundle[RELEASE_MIME] = release_data(release)
    if _wanted("text/html", include, exclude):
        html = getattr(release, "_repr_html_", None)
        if callable(html):
            bundle["text/html"] = html()
    if _wanted("text/plain", include, exclude):
        bundle["text/plain"] = repr(release)
    return bundle
