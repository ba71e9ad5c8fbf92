"""What crosses the trust boundary: the values a session returns, and their one wire form.

:class:`Release` (a differentially private aggregate), :class:`RowRelease` (rows of a row-access
purpose), :class:`Explanation` (a plan and its noise, spending nothing) and
:class:`BudgetStatus` (spent and remaining budget), :class:`PurposeRequest` (a request for a
purpose that needs approval), :class:`ModelRelease` (a model trained on the owner's side). Each owns ``to_wire()`` (a JSON-able dict:
frames as base64 Arrow IPC, dtypes and column order kept) and ``from_wire(d)``; the server, the
HTTP backend and the lab's MIME bundle all go through them, so a field is spelled once.

How a value looks in a notebook is the faces' business: :mod:`mesh_nb.display` registers the
HTML and the lab's MIME type with IPython's formatters.
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from .text import plural

if TYPE_CHECKING:
    import pandas as pd

    from .query.plan import Plan

V = TypeVar("V")


def frame_to_wire(frame: "pd.DataFrame") -> str:
    """A DataFrame as base64 Arrow IPC (dtypes and column order kept)."""
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii")


def frame_from_wire(text: str) -> "pd.DataFrame":
    """The DataFrame :func:`frame_to_wire` encoded."""
    import pyarrow as pa

    with pa.ipc.open_stream(base64.b64decode(text)) as reader:
        return reader.read_all().to_pandas()


def _to_wire(value: Any, frames: tuple[str, ...], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """A value dataclass as a JSON-able dict: ``frames`` encoded, tuples as lists."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(value):
        if f.name in skip:
            continue
        v = getattr(value, f.name)
        out[f.name] = (frame_to_wire(v) if f.name in frames else
                       list(v) if isinstance(v, tuple) else dict(v) if isinstance(v, dict)
                       else v)
    return out


def _from_wire(cls: type[V], d: dict[str, Any], frames: tuple[str, ...]) -> V:
    """``cls`` from :func:`_to_wire`'s dict: frames decoded, lists of tuple fields as tuples."""
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in d:
            continue
        v = d[f.name]
        kwargs[f.name] = (frame_from_wire(v) if f.name in frames else
                          tuple(v) if isinstance(v, list) and str(f.type).startswith("tuple")
                          else v)
    return cls(**kwargs)


@dataclass(frozen=True)
class Release:
    """What a query released: values, what it spent, and how accurate each value is."""

    frame: "pd.DataFrame"
    epsilon: float
    delta: float
    accuracy: "pd.DataFrame"
    sql: str = ""
    purpose: str = ""
    products: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    release_id: str = ""
    cached: bool = False
    remaining: dict = field(default_factory=dict)
    #: False for a release whose noise was seeded (tests only): its noise can be recomputed,
    #: so it protects nobody; it is never cached or shared (and not on the wire).
    private: bool = True

    FRAMES = ("frame", "accuracy")

    def to_wire(self) -> dict[str, Any]:
        """The release as the server sends it (see :class:`mesh_nb.server.wire.ReleaseOut`)."""
        return _to_wire(self, self.FRAMES, skip=("private",))

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> "Release":
        """The release :meth:`to_wire` sent."""
        return _from_wire(cls, d, cls.FRAMES)

    def text_frame(self) -> "pd.DataFrame":
        """The frame as text for a terminal: ``12,345 ± 60`` where a value has a stated 95%
        interval, the value alone where it has none, ``–`` for a missing key."""
        from .charts import number

        out = self.frame.astype(object).copy()
        for name in out.columns:
            cells = (self.accuracy[self.accuracy["output"] == name]
                     if len(self.accuracy) and "output" in self.accuracy else self.accuracy[:0])
            half = (cells.set_index("row")["ci95_half_width"].reindex(range(len(out)))
                    if len(cells) else [None] * len(out))
            places = 2 if self.frame[name].dtype.kind == "f" else 0
            out[name] = [_cell(v, h, places, number) for v, h in zip(self.frame[name], half,
                                                                      strict=True)]
        return out

    def summary(self) -> str:
        """One line: id, rows, what it spent."""
        return (f"Release {self.release_id}: {plural(len(self.frame), 'row')}, "
                f"ε {self.epsilon:g}" + (f", δ {self.delta:g}" if self.delta else "")
                + (" (cached: no new cost)" if self.cached else ""))

    def __str__(self) -> str:
        return f"{self.summary()}\n{self.text_frame().to_string(index=False)}"

    def __repr__(self) -> str:
        return f"<{self.summary()}>\n{self.text_frame().to_string(index=False)}"


@dataclass(frozen=True)
class RowRelease:
    """Rows a row-access purpose released, and what was done to them."""

    frame: "pd.DataFrame"
    purpose: str
    products: tuple[str, ...]
    tokenized: tuple[str, ...]
    generalized: tuple[str, ...]
    sql: str
    release_id: str

    FRAMES = ("frame",)

    @property
    def rows(self) -> int:
        return len(self.frame)

    def to_wire(self) -> dict[str, Any]:
        """The rows as the server sends them (:class:`mesh_nb.server.wire.RowReleaseOut`)."""
        return _to_wire(self, self.FRAMES)

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> "RowRelease":
        """The rows :meth:`to_wire` sent."""
        return _from_wire(cls, d, cls.FRAMES)

    def summary(self) -> str:
        """One line: id, rows, what was done to them."""
        return (f"RowRelease {self.release_id}: {plural(self.rows, 'row')}; tokens: "
                f"{', '.join(self.tokenized) or 'none'}; generalized: "
                f"{', '.join(self.generalized) or 'none'}")

    def __str__(self) -> str:
        return f"{self.summary()}\n{self.frame.head(10).to_string(index=False)}"

    def __repr__(self) -> str:
        return f"<{self.summary()}>\n{self.frame.head(10).to_string(index=False)}"


@dataclass(frozen=True)
class ModelRelease:
    """A model trained inside the trust boundary: only its fitted parameters and its card
    crossed it. ``model`` is a scikit-learn Pipeline (the contract's encoding, then the
    diffprivlib estimator) rebuilt from them: call ``predict`` or ``transform`` on a frame
    with the feature columns. ``card`` says what it was trained on: features with their
    bounds or categories, the target and its classes, the encoding, rows (a noisy count, one
    row per privacy unit), how epsilon was split, and the held-out ``evaluation``."""

    estimator: str
    params: dict
    card: dict
    epsilon: float
    delta: float
    purpose: str
    products: tuple[str, ...]
    release_id: str
    notes: tuple[str, ...] = ()
    remaining: dict = field(default_factory=dict)

    @property
    def model(self) -> Any:
        """The fitted estimator, as a Pipeline over the feature columns (built on first use)."""
        cached = self.__dict__.get("_model")
        if cached is None:
            from .query.fit import build_model

            cached = build_model(self.estimator, self.params, self.card)
            object.__setattr__(self, "_model", cached)
        return cached

    @property
    def evaluation(self) -> dict | None:
        """The held-out estimate: ``metric``, ``value``, ``ci95``, ``test_rows`` (noisy)."""
        return self.card.get("evaluation")

    @property
    def encoded_columns(self) -> tuple[str, ...]:
        """The names of the encoded columns the estimator sees, in order: a numeric feature's
        own name, ``name=category`` per encoded category of a categorical one (all of them, or
        all but the first, the reference, when the card says ``drop_first``)."""
        out: list[str] = []
        skip = 1 if self.card.get("drop_first") else 0
        for f in self.card.get("features", ()):
            if f.get("kind") == "categorical":
                out += [f"{f['name']}={c}" for c in list(f.get("categories") or ())[skip:]]
            else:
                out.append(f["name"])
        return tuple(out)

    def coefficients(self) -> "pd.DataFrame":
        """A linear model's released coefficients: one row per output and encoded column
        (``plan=basic``), the intercept last as ``(intercept)``. The output is the target
        (regression) or ``target=class`` whose log-odds a row gives (logistic; one row of
        coefficients for two classes, the second one's). Coefficients are on the encoded
        scale (numeric features in [-1, 1] by their bounds). Empty for other estimators."""
        import numpy as np
        import pandas as pd

        columns = ["output", "term", "coefficient"]
        coef = self.params.get("coef_")
        if self.estimator not in ("LogisticRegression", "LinearRegression") or coef is None:
            return pd.DataFrame(columns=columns)
        rows = np.atleast_2d(np.asarray(coef, dtype=float))
        intercept = np.atleast_1d(np.asarray(self.params.get("intercept_", 0.0), dtype=float))
        target = self.card.get("target") or {}
        name = str(target.get("name", "target"))
        classes = list(target.get("categories") or ())
        if self.estimator == "LogisticRegression":
            owners = classes[1:2] if len(rows) == 1 else classes[:len(rows)]
            outputs = [f"{name}={c}" for c in owners]
        else:
            outputs = [name] * len(rows)
        terms = [*self.encoded_columns, "(intercept)"]
        out = [(o, t, float(v)) for o, row, b in zip(outputs, rows, np.resize(intercept,
                                                                               len(rows)))
               for t, v in zip(terms, [*row, b], strict=True)]
        return pd.DataFrame(out, columns=columns)

    def to_wire(self) -> dict[str, Any]:
        """The model as the server sends it (parameters and card: plain JSON)."""
        return _to_wire(self, ())

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> "ModelRelease":
        """The model :meth:`to_wire` sent."""
        return _from_wire(cls, d, ())

    def summary(self) -> str:
        """One line: id, estimator, features, what it spent, its held-out estimate."""
        feats = ", ".join(f["name"] for f in self.card.get("features", ()))
        target = (self.card.get("target") or {}).get("name")
        line = (f"ModelRelease {self.release_id}: {self.estimator}"
                + (f" of {target}" if target else "") + f" on {feats}; ε {self.epsilon:g}")
        ev = self.evaluation
        if ev and ev.get("value") is not None and ev.get("value") == ev.get("value"):
            lo, hi = ev.get("ci95") or (None, None)
            line += f"; held-out {ev['metric']} {ev['value']:.3f}"
            if lo is not None and lo == lo:
                line += f" (95%: {lo:.3f}–{hi:.3f})"
        return line

    def text_card(self) -> list[str]:
        """The card as text lines: features, how epsilon was split, coefficients, notes."""
        card = self.card
        lines = ["features:"]
        for f in card.get("features", ()):
            what = (f"{f['bounds'][0]:g}..{f['bounds'][1]:g}" if f.get("bounds") else
                    ", ".join(map(str, f.get("categories") or ())))
            lines.append(f"  {f['name']} ({f['kind']}): {what}")
        split = [f"{k} {card[key]:g}" for k, key in (
            ("model", "epsilon_model"), ("training-set size", "epsilon_size"),
            ("evaluation", "epsilon_evaluation")) if card.get(key)]
        if split:
            lines.append(f"ε split: {', '.join(split)}")
        coef = self.coefficients()
        if len(coef):
            lines.append("coefficients (encoded scale):")
            lines += [f"  {r.output} · {r.term}: {r.coefficient:.4g}"
                      for r in coef.itertuples()]
        return lines + list(self.notes)

    def __str__(self) -> str:
        return "\n".join([self.summary(), *self.text_card()])

    def __repr__(self) -> str:
        return f"<{self.summary()}>\n" + "\n".join(self.text_card())


@dataclass(frozen=True, repr=False)
class Explanation:
    """The checked, rewritten plan with its noise: what a query would do, spending nothing."""

    sql: str
    plan: "Plan"
    table: "pd.DataFrame"

    FRAMES = ("table",)

    def to_wire(self) -> dict[str, Any]:
        """The explanation as the server sends it (the plan as plain dicts and lists)."""
        return {"sql": self.sql, "plan": dataclasses.asdict(self.plan),
                "table": frame_to_wire(self.table)}

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> "Explanation":
        """The explanation :meth:`to_wire` sent."""
        return cls(d["sql"], plan_from_wire(d["plan"]), frame_from_wire(d["table"]))

    def __str__(self) -> str:
        p = self.plan
        lines = [f"query: {self.sql}", f"epsilon {p.epsilon:g}, delta {p.delta:g}, at most "
                 f"{p.max_contributions} row(s) per privacy unit", "",
                 "measurements (epsilon split equally):",
                 self.table.to_string(index=False), "", "outputs:"]
        lines += [f"  {o.name} = {o.func}({', '.join(o.parts)})" for o in p.outputs]
        lines += ["", "engine SQL:", p.sql] + ([""] + list(p.notes) if p.notes else [])
        return "\n".join(lines)

    __repr__ = __str__


def _cell(value: Any, half: Any, places: int, number: Any) -> str:
    """One terminal cell: a number with thousands separators and its ``± half-width``."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "–"
    if pd.api.types.is_bool(value) or not pd.api.types.is_number(value):
        return str(value)
    text = number(value, places)
    if half is not None and pd.notna(half):
        text += f" ± {number(float(half), places)}"
    return text


def plan_from_wire(d: dict[str, Any]) -> "Plan":
    """A :class:`~mesh_nb.query.plan.Plan` from its ``dataclasses.asdict`` form."""
    from .query.plan import Measurement, Output, Plan

    def tup(v: Any) -> Any:
        return tuple(tup(x) for x in v) if isinstance(v, list) else v

    return Plan(**{**{k: tup(v) for k, v in d.items()},
                   "measurements": tuple(Measurement(**m) for m in d["measurements"]),
                   "outputs": tuple(Output(**{k: tup(v) for k, v in o.items()})
                                    for o in d["outputs"])})


@dataclass(frozen=True)
class BudgetStatus:
    """Spent and remaining budget of one product for this analyst (or purpose)."""

    product: str
    purpose: str
    analyst: str
    scope: str | None
    epsilon_total: float | None
    epsilon_spent: float
    delta_total: float | None
    delta_spent: float

    @property
    def epsilon_remaining(self) -> float | None:
        if self.epsilon_total is None:
            return None
        return max(0.0, round(self.epsilon_total - self.epsilon_spent, 6))

    @property
    def delta_remaining(self) -> float | None:
        if self.delta_total is None:
            return None
        return max(0.0, self.delta_total - self.delta_spent)

    def to_wire(self) -> dict[str, Any]:
        """The status as the server sends it."""
        return _to_wire(self, ())

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> "BudgetStatus":
        """The status :meth:`to_wire` sent."""
        return _from_wire(cls, d, ())

    def __str__(self) -> str:
        if self.epsilon_total is None:
            return f"{self.product} · {self.purpose} · no privacy budget (row access)"
        return (f"{self.product} · {self.purpose} · ε {self.epsilon_remaining:g} of "
                f"{self.epsilon_total:g} left ({self.scope})")


@dataclass(frozen=True)
class PurposeRequest:
    """One analyst's request for one purpose over one or more products."""

    id: str
    analyst: str
    products: tuple[str, ...]
    purpose: str
    reason: str
    status: str  # pending | approved | denied
    created: str
    decided: str | None = None
    decided_by: str | None = None
    note: str | None = None
