"""Differentially private models as releases: train where the data lives, release the model.

The one path a fit takes, beside the query's (:mod:`.runner`):

1. **check** (:func:`check_fit`): the features, the target and the filter are written as one
   aggregate query over the product's table (numeric features as ``AVG``, categorical ones as
   ``GROUP BY`` keys) and checked by the same policy as any query: allowed columns, the node
   whitelist, bounds from the contract by interval arithmetic, categories from the contract.
   A categorical feature or target without declared categories is refused: the encoding must
   be public so that it leaks nothing.
2. **plan** (:func:`fit_query`): one engine query keeping **one random row per privacy unit**
   (so one person is one training row; no group-privacy factor), every numeric value clamped
   to its bounds and every expression made total (no value can make the engine raise), and a
   uniform draw per unit that puts it in the held-out split.
3. **budget**: reserved in the product's ledger before the engine reads anything
   (``model.released``), like a query; a failure after that is :class:`QueryFailed`.
4. **train** (:func:`train`) inside the trust boundary: the rows are encoded by
   :class:`ContractEncoder` from the contract alone (numeric: clamped and scaled to [-1, 1] by
   the bounds; categorical: one-hot over the declared set), so ``data_norm`` and the bounds
   diffprivlib needs are derived, never read from the data (its ``PrivacyLeakWarning`` is an
   error here). diffprivlib's guarantees hold for two training sets *of the same size* that
   differ in one row; adding or removing a person changes the size, so the training set is
   first resized to a noisy count of its rows (sampled down, or padded with the all-zero
   encoded row), which turns any add or remove into one such change. One public anchor row
   per class (all-zero features) is always added, so no class is ever missing.
5. **evaluate** (classifiers: accuracy from a noisy confusion matrix; regression: RMSE from a
   noisy sum of clamped squared errors) on the held-out units, with its 95% interval.
6. **release**: only the fitted parameters and the card (:class:`~mesh_nb.values.ModelRelease`)
   leave; the estimator the analyst calls is rebuilt from them (:func:`build_model`), the same
   way in this process and behind the owner's server.

The epsilon is split: :data:`SIZE_SHARE` for the noisy size, :data:`EVAL_SHARE` for the
evaluation (when asked), the rest for the model; the accountant composes them and refuses to
release more than was charged.
"""

from __future__ import annotations

import math
import uuid
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np
from sqlglot import exp

from ..errors import MeshError, PolicyViolation, QueryFailed
from . import policy
from .accountant import Accountant
from .parse import parse
from .plan import Measurement, at_most, clamp, from_where, totalized, unit_columns
from .release import stats_z

if TYPE_CHECKING:
    from ..session import Session
    from ..values import ModelRelease

SIZE_SHARE = 0.05  # of epsilon: the noisy size of the training set
EVAL_SHARE = 0.15  # of epsilon: the held-out evaluation (when asked)
TEST_SHARE = 0.2  # of units: held out for the evaluation (when asked)
MIN_EPSILON = 1e-3  # below it the noisy size is mostly noise: millions of padding rows
MAX_FEATURES = 64
MAX_ENCODED = 512  # encoded columns (one-hot included)
MAX_PCA_WIDTH = 24  # diffprivlib's PCA sampler slows steeply with width (10 s at 32)


@dataclass(frozen=True)
class Estimator:
    """One supported diffprivlib estimator: what it needs and which options it takes."""

    name: str
    task: str  # "classification" | "regression" | "unsupervised"
    options: dict[str, tuple[type, float, float]]  # analyst options: (type, min, max)
    fitted: tuple[str, ...]  # the attributes that make the fitted model (released)
    aliases: tuple[str, ...] = ()
    #: One-hot blocks drop their first declared category (the reference): an unregularized
    #: linear model's noisy objective is unbounded along a block that sums to the intercept.
    drop_first: bool = False
    #: The share of the model's epsilon handed to diffprivlib. 1.0 where its calibration was
    #: checked for two same-size sets differing in one row (LogisticRegression, with the
    #: correction of :func:`logistic_epsilon`); 0.5 elsewhere: a resized set turns a person
    #: into one replaced row, at most one removal plus one addition.
    model_share: float = 0.5

    @property
    def supervised(self) -> bool:
        return self.task != "unsupervised"


ESTIMATORS: dict[str, Estimator] = {e.name: e for e in (
    Estimator("LogisticRegression", "classification",
              {"C": (float, 1e-4, 1e4), "max_iter": (int, 1, 1000),
               "fit_intercept": (bool, 0, 1)},
              ("coef_", "intercept_", "classes_"), ("logistic", "logistic-regression"),
              model_share=1.0),
    Estimator("GaussianNB", "classification", {},
              ("theta_", "var_", "class_prior_", "class_count_", "classes_"),
              ("naive-bayes", "gaussian-nb", "nb")),
    Estimator("LinearRegression", "regression", {"fit_intercept": (bool, 0, 1)},
              ("coef_", "intercept_"), ("linear", "linear-regression"), drop_first=True),
    Estimator("KMeans", "unsupervised", {"n_clusters": (int, 1, 64)},
              ("cluster_centers_",), ("kmeans", "k-means")),
    Estimator("PCA", "unsupervised", {"n_components": (int, 1, MAX_ENCODED)},
              ("components_", "mean_", "explained_variance_", "explained_variance_ratio_",
               "singular_values_", "noise_variance_", "n_components_"), ("pca",)),
)}


def estimator_named(name: str) -> Estimator:
    """The estimator called ``name`` (or one of its aliases, any case); rule ``fit-estimator``."""
    wanted = str(name).strip().lower()
    for e in ESTIMATORS.values():
        if wanted == e.name.lower() or wanted in e.aliases:
            return e
    raise PolicyViolation("fit-estimator", f"no supported estimator `{str(name)[:64]}`",
                          f"use one of: {', '.join(ESTIMATORS)} (or {', '.join(a for e in ESTIMATORS.values() for a in e.aliases[:1])})")


# -- 1. check -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Feature:
    """One model input (or the target) as the contract makes it: its name, kind and the
    public bounds (numeric) or categories (categorical) of its encoding."""

    name: str
    kind: str  # "numeric" | "categorical"
    bounds: tuple[float, float] | None = None
    categories: tuple | None = None
    column: str | None = None  # the source column, product.table.column

    def encoded(self, drop_first: bool = False) -> tuple:
        """The categories that get a one-hot column (all, or all but the first)."""
        cats = tuple(self.categories or ())
        return cats[1:] if drop_first else cats

    def width(self, drop_first: bool = False) -> int:
        """Encoded columns: 1, or one per encoded category."""
        return 1 if self.kind == "numeric" else len(self.encoded(drop_first))

    def to_card(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.bounds is not None:
            out["bounds"] = [float(self.bounds[0]), float(self.bounds[1])]
        if self.categories is not None:
            out["categories"] = [_plain(c) for c in self.categories]
        return out

    @classmethod
    def from_card(cls, d: dict[str, Any]) -> "Feature":
        return cls(d["name"], d["kind"], tuple(d["bounds"]) if d.get("bounds") else None,
                   tuple(d["categories"]) if d.get("categories") is not None else None)


@dataclass(frozen=True)
class FitSpec:
    """A checked fit: the estimator, its inputs as the contract makes them, and the checked
    aggregate query (totalized) whose tables, filter, keys and aggregates the plan reads."""

    estimator: Estimator
    features: tuple[Feature, ...]
    target: Feature | None
    checked: policy.CheckedQuery
    options: dict[str, Any] = field(default_factory=dict)
    exprs: dict[str, exp.Expression] = field(default_factory=dict)  # name -> total expression

    @property
    def encoded_width(self) -> int:
        return sum(f.width(self.estimator.drop_first) for f in self.features)


def _plain(value: Any) -> Any:
    """A category as JSON keeps it (numpy scalars to Python)."""
    return value.item() if isinstance(value, np.generic) else value


def _projection(text: str, what: str) -> exp.Expression:
    """One select item (``expr`` or ``expr AS name``) parsed alone; rule ``fit-features``."""
    tree = parse(f"SELECT {text}")
    if not isinstance(tree, exp.Select) or len(tree.expressions) != 1 or any(
            tree.args.get(k) for k in tree.args if k != "expressions"):
        raise PolicyViolation("fit-features", f"{what} is not one expression",
                              "give each feature as one column or expression, optionally "
                              "`expr AS name`; no FROM, WHERE or commas inside one item")
    return tree.expressions[0]


def split_select_list(text: str) -> list[str]:
    """The items of a SELECT list written as text (a ``%%mesh_fit`` cell body) as SQL."""
    tree = parse(f"SELECT {text}")
    if not isinstance(tree, exp.Select) or any(tree.args.get(k) for k in tree.args
                                                 if k != "expressions"):
        raise PolicyViolation("fit-features", "the features are not a plain select list",
                              "write the features as `col, expr AS name, ...` without FROM "
                              "or WHERE (give the filter with --where)")
    return [e.sql("duckdb") for e in tree.expressions]


def _categorical(node: exp.Expression, types: dict[str, str]) -> bool:
    """Is an input categorical: a bare string or boolean column, or a CASE whose branches are
    all string literals (a bucket)? Everything else is numeric."""
    if isinstance(node, exp.Column):
        return types.get(node.name.lower()) in ("string", "boolean")
    if isinstance(node, exp.Case):
        branches = [i.args.get("true") for i in node.args.get("ifs") or []]
        branches.append(node.args.get("default"))
        return all(isinstance(b, exp.Literal) and b.is_string for b in branches if b is not None)
    return False


def check_fit(estimator: str, features: Sequence[str] | str, target: str | None, *,
              contracts: dict, purpose: str, product: str, table: str | None = None,
              where: str | None = None, options: dict[str, Any] | None = None) -> FitSpec:
    """Check a fit against ``product``'s contract for ``purpose`` (the same policy as a query);
    raise :class:`PolicyViolation` naming the rule and the fix."""
    est = estimator_named(estimator)
    items = split_select_list(features) if isinstance(features, str) else list(features)
    if not items:
        raise PolicyViolation("fit-features", "no features", "name at least one column")
    if len(items) > MAX_FEATURES:
        raise PolicyViolation("fit-features", f"{len(items)} features; at most {MAX_FEATURES}",
                              "fit on fewer features")
    if est.supervised and not target:
        raise PolicyViolation("fit-target", f"{est.name} needs a target",
                              "give target= (--target) a column the purpose allows")
    if not est.supervised and target:
        raise PolicyViolation("fit-target", f"{est.name} learns without a target",
                              "leave target out")
    contract = contracts[product]
    tables = contract.tables
    if table is None:
        if len(tables) != 1:
            raise PolicyViolation("fit-table", f"`{product}` has {len(tables)} tables",
                                  f"give table= one of: {', '.join(t.name for t in tables)}")
        table = tables[0].name
    elif not any(t.name == table for t in tables):
        raise PolicyViolation("fit-table", f"`{product}` has no table `{str(table)[:64]}`",
                              f"use one of: {', '.join(t.name for t in tables)}")
    types = {c.name.lower(): c.logical_type for c in contract.table(table).columns}
    inputs: list[tuple[str, exp.Expression, bool]] = []  # (name, expression, is target)
    for i, text in enumerate(items):
        node = _projection(str(text), f"feature {i + 1}")
        inputs.append((node.alias_or_name or f"feature_{i + 1}", node.unalias(), False))
    if target:
        node = _projection(str(target), "the target")
        inputs.append((node.alias_or_name or "target", node.unalias(), True))
    names = [n.lower() for n, _, _ in inputs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise PolicyViolation("fit-features", f"two inputs are named {', '.join(dupes)}",
                              "name each feature once (`expr AS name`)")
    options = dict(options or {})
    allowed = ", ".join(f"{k} ({t.__name__} {lo:g}..{hi:g})"
                        for k, (t, lo, hi) in est.options.items()) or "no options"
    for key, value in options.items():
        tp, lo, hi = est.options.get(key, (None, 0, 0))
        if tp is None or isinstance(value, bool) != (tp is bool) or not isinstance(
                value, (int, float) if tp is float else tp) or not (
                isinstance(value, bool) or (math.isfinite(value) and lo <= value <= hi)):
            raise PolicyViolation("fit-option", f"{est.name} takes no option `{str(key)[:64]}` "
                                  "of that type or value", f"use {allowed}")
    keys = [(n, e) for n, e, is_target in inputs
            if (_categorical(e, types) if not is_target else est.task == "classification")]
    aggs = [(n, e) for n, e, is_target in inputs if (n, e) not in keys]
    select = exp.select(*(exp.alias_(e.copy(), n, quoted=True) for n, e in keys),
                        *(exp.alias_(exp.Avg(this=e.copy()), n, quoted=True) for n, e in aggs),
                        exp.alias_(exp.Count(this=exp.Star()), "fit_rows", quoted=True))
    select = select.from_(exp.Table(this=exp.to_identifier(table, quoted=True),
                                    db=exp.to_identifier(product, quoted=True)), copy=False)
    if where:
        select = select.where(_predicate(where), copy=False)
    if keys:
        select = select.group_by(*(exp.Literal.number(i + 1) for i in range(len(keys))),
                                 copy=False)
    checked = totalized(policy.check(select.sql("duckdb"), contracts, purpose), contracts)
    by_name: dict[str, Feature] = {}
    exprs: dict[str, exp.Expression] = {}
    for g in checked.group_keys:
        cats = g.categories
        if cats is None and g.logical_type == "boolean":
            cats = (False, True)
        if cats is None:
            raise PolicyViolation("fit-categories", f"`{g.name}` has no declared categories",
                                  "declare its values (validValues) in the contract, or use "
                                  "a CASE with literal buckets: the encoding must be public")
        by_name[g.name] = Feature(g.name, "categorical", None,
                                  tuple(c for c in cats if c is not None), g.column)
        exprs[g.name] = g.expr
    for a in checked.aggregates:
        if a.name == "fit_rows":
            continue
        by_name[a.name] = Feature(a.name, "numeric", tuple(map(float, a.bounds)), None,
                                  a.column)
        exprs[a.name] = a.value
    resolved = [by_name[n.lower()] for n, _, _ in inputs]
    feats = tuple(resolved[:len(items)])
    tgt = resolved[-1] if target else None
    if tgt is not None and tgt.kind == "categorical" and len(tgt.categories or ()) < 2:
        raise PolicyViolation("fit-target", f"the target `{tgt.name}` declares fewer than two "
                              "classes", "use a target with two or more declared values")
    spec = FitSpec(est, feats, tgt, checked, options, exprs)
    width = spec.encoded_width
    if width > MAX_ENCODED:
        raise PolicyViolation("fit-features", f"the features encode to {width} "
                              f"columns; at most {MAX_ENCODED}", "use fewer categorical features")
    if width == 0:
        raise PolicyViolation("fit-features", "the features encode to no column",
                              "use features with bounds or declared categories")
    if est.name == "PCA" and width > MAX_PCA_WIDTH:
        raise PolicyViolation("fit-features", f"the features encode to {width} columns; PCA "
                              f"takes at most {MAX_PCA_WIDTH}", "use fewer or narrower features")
    k = options.get("n_components")
    if k is not None and k > width:
        raise PolicyViolation("fit-option", f"n_components {k} is more than the {width} "
                              "encoded columns", f"give n_components between 1 and {width}")
    return spec


def _predicate(text: str) -> exp.Expression:
    tree = parse(f"SELECT 1 WHERE {text}")
    where = tree.args.get("where") if isinstance(tree, exp.Select) else None
    if where is None or any(tree.args.get(k) for k in tree.args
                            if k not in ("expressions", "where")):
        raise PolicyViolation("fit-features", "where= is not one condition",
                              "give a boolean condition over allowed columns, e.g. "
                              "\"signup_date < '2026-01-01'\"")
    return where.this


# -- 2. plan ------------------------------------------------------------------------------------

TARGET, SPLIT = "__target", "__split"


def fit_query(spec: FitSpec) -> exp.Select:
    """The engine query: one random row per privacy unit, each input clamped (numeric) or as
    its key (categorical), the target, and a per-unit uniform draw (``__split``)."""
    q = spec.checked
    cols = unit_columns(q.tables[0])
    inputs = list(spec.features) + ([spec.target] if spec.target else [])
    for i, f in enumerate(inputs):
        value = spec.exprs[f.name]
        if f.kind == "numeric":
            value = clamp(value, *f.bounds)
        name = TARGET if spec.target is not None and i == len(inputs) - 1 else f"x{i}"
        cols.append(exp.alias_(value.copy(), name, quoted=True))
    rows = at_most(from_where(q.tables, q.joins, q.where).select(*cols, copy=False), 1)
    names = [exp.column(f"x{i}", quoted=True) for i in range(len(spec.features))]
    if spec.target is not None:
        names.append(exp.column(TARGET, quoted=True))
    return exp.select(*names, exp.alias_(exp.Rand(), SPLIT)).from_(
        rows.subquery(copy=False), copy=False)


# -- 4. encode and train ------------------------------------------------------------------------

def encode(features: Sequence[Feature], columns: Sequence[Any], drop_first: bool = False
           ) -> np.ndarray:
    """The encoded matrix of ``columns`` (one array per feature, in order), from the
    contract alone: numeric values clamped and scaled to [-1, 1] by their bounds (missing: 0,
    the middle), categorical ones one-hot over the declared categories (missing or outside
    the set: all zeros; ``drop_first``: the first category is the reference, all zeros too)."""
    n = len(columns[0]) if len(columns) else 0
    parts = []
    for f, col in zip(features, columns, strict=True):
        if f.kind == "numeric":
            lo, hi = f.bounds
            x = np.asarray(_floats(col), dtype=float)
            mid, half = (lo + hi) / 2, (hi - lo) / 2 or 1.0
            scaled = (np.clip(x, lo, hi) - mid) / half
            parts.append(np.where(np.isnan(scaled), 0.0, scaled)[:, None])
        else:
            parts.append(_one_hot(objects(col), f.encoded(drop_first)))
    return np.hstack(parts).astype(float) if parts else np.zeros((n, 0))


def objects(col: Any) -> np.ndarray:
    """Values as Python objects, missing ones (a masked entry, pandas NA, NaN) as None."""
    import pandas as pd

    data = col.data if isinstance(col, np.ma.MaskedArray) else np.asarray(col)
    out = data.astype(object)  # numbers, booleans and strings become Python objects in C
    if data.dtype == object:  # an object array may hold numpy scalars: one pass to unwrap
        out = np.frompyfunc(lambda v: v.item() if isinstance(v, np.generic) else v, 1, 1)(out)
    out[np.asarray(pd.isna(out), dtype=bool)] = None
    if isinstance(col, np.ma.MaskedArray):
        out[np.ma.getmaskarray(col)] = None
    return np.asarray(out, dtype=object)


def _floats(col: Any) -> np.ndarray:
    """Numbers with missing values as NaN (masked arrays, None, pandas NA)."""
    import pandas as pd

    data = col.data if isinstance(col, np.ma.MaskedArray) else np.asarray(col)
    if data.dtype.kind in "fiub":  # numbers as the engine hands them: no object pass
        out = data.astype(float)
        if isinstance(col, np.ma.MaskedArray):
            out[np.ma.getmaskarray(col)] = np.nan
        return out

    return pd.to_numeric(pd.Series(objects(col)), errors="coerce").to_numpy(
        dtype=float, na_value=np.nan)


def _matches(values: np.ndarray, categories: Sequence[Any]) -> Iterator[tuple[int, np.ndarray]]:
    """For each category, its position and where a value is it (a string matches only a
    string: ``'1'`` is not 1; missing matches nothing): hash look-ups in C, not a loop per
    value, and one look-up per category (a set may hold 1 and True)."""
    import pandas as pd

    index = pd.Index(values, dtype=object)
    for j, category in enumerate(categories):
        yield j, pd.Index([category], dtype=object).get_indexer(index) == 0


def _one_hot(values: np.ndarray, categories: Sequence[Any]) -> np.ndarray:
    """One column per category, 1.0 where a value is it (see :func:`_matches`)."""
    out = np.zeros((len(values), len(categories)))
    for j, where in _matches(values, categories):
        out[:, j] = where
    return out


def _labels(target: Feature, col: Any) -> np.ndarray:
    """Target values: class labels (the declared value, or None outside the set) for a
    classifier, numbers clamped to the bounds (NaN when missing) for a regression."""
    if target.kind == "numeric":
        return np.clip(_floats(col), *target.bounds)
    codes = class_codes(objects(col), target.categories)
    labels = np.array(list(target.categories) + [None], dtype=object)
    return labels[codes]


def class_codes(values: np.ndarray, categories: Sequence[Any]) -> np.ndarray:
    """The index of each value's category (see :func:`_matches`), -1 for none."""
    codes = np.full(len(values), -1, dtype=np.int64)
    for j, where in _matches(values, categories):
        codes[where] = j
    return codes


def _labelled(target: Feature, y: np.ndarray) -> np.ndarray:
    """Rows with a usable target (a declared class, a present number)."""
    if target.kind == "numeric":
        return ~np.isnan(y)
    return np.array([v is not None for v in y], dtype=bool)


def class_labels(target: Feature) -> np.ndarray:
    """The declared classes, sorted as the estimator orders its ``classes_`` (booleans stay
    booleans)."""
    cats = sorted(target.categories)
    if all(isinstance(c, bool) for c in cats):
        return np.array(cats, dtype=bool)
    return np.array(cats, dtype=object)


def resize(X: np.ndarray, y: np.ndarray | None, size: int, fill_label: Any,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """Exactly ``size`` rows: a random subset, or all of them plus all-zero rows (label
    ``fill_label``). One person added or removed then changes at most one row."""
    n = len(X)
    if size <= n:
        keep = np.sort(rng.choice(n, size=size, replace=False)) if size < n else np.arange(n)
        return X[keep], None if y is None else y[keep]
    pad = size - n
    X = np.vstack([X, np.zeros((pad, X.shape[1]))])
    if y is not None:
        y = np.concatenate([y, np.full(pad, fill_label, dtype=y.dtype)])
    return X, y


def _estimator(spec: FitSpec, epsilon: float) -> Any:
    """The diffprivlib estimator, every bound from the encoding (never from the data)."""
    import diffprivlib.models as dpm
    from diffprivlib.accountant import BudgetAccountant

    d = spec.encoded_width + intercept_column(spec)
    lo, hi = np.full(d, -1.0), np.full(d, 1.0)
    norm = data_norm(spec)
    epsilon *= spec.estimator.model_share
    common = {"epsilon": epsilon, "accountant": BudgetAccountant()}
    o = spec.options
    name = spec.estimator.name
    if name == "LogisticRegression":
        intercept = bool(o.get("fit_intercept", True))
        given, c = logistic_epsilon(epsilon, norm, float(o.get("C", 1.0)), intercept,
                                    len(spec.target.categories))
        return dpm.LogisticRegression(data_norm=norm, C=c, max_iter=int(o.get("max_iter", 100)),
                                      fit_intercept=intercept, epsilon=given,
                                      accountant=BudgetAccountant())
    if name == "GaussianNB":
        return dpm.GaussianNB(bounds=(lo, hi), **common)  # classes: every one has an anchor
    if name == "LinearRegression":  # the intercept is a constant column (see intercept_column)
        return dpm.LinearRegression(bounds_X=(lo, hi), bounds_y=spec.target.bounds,
                                    fit_intercept=False, **common)
    if name == "KMeans":
        return dpm.KMeans(n_clusters=int(o.get("n_clusters", 3)), bounds=(lo, hi), **common)
    if name == "PCA":
        k = int(o.get("n_components", min(2, d)))
        return dpm.PCA(n_components=k, data_norm=norm, bounds=(lo, hi), centered=False,
                       **common)
    raise MeshError(f"internal: no estimator builder for {name}")


def logistic_epsilon(epsilon: float, norm: float, C: float, intercept: bool, classes: int
                     ) -> tuple[float, float]:
    """(epsilon, C) to hand diffprivlib's LogisticRegression so that it adds the noise
    objective perturbation needs (Chaudhuri, Monteleoni & Sarwate 2011, Algorithm 2).

    diffprivlib 0.6.6 bounds the loss's curvature by ``c * R`` where the proof needs
    ``c * R**2`` (c = 1/4, R the row norm with the intercept's 1): for R > 1 it adds too little
    noise. Here the regularization is raised when needed so that the correct
    ``eps' = eps - 2 log(1 + c R^2 / alpha)`` is at least ``eps / 2`` (the paper's own
    fallback), and diffprivlib gets the epsilon whose (mis)computed ``eps'`` equals it. One
    vs rest over k > 2 classes spends epsilon / k on each, corrected alike."""
    k = 1 if classes <= 2 else classes
    each = epsilon / k
    r = math.sqrt(norm ** 2 + 1) if intercept else norm
    c = 0.25
    alpha = max(1.0 / C, c * r * r / math.expm1(each / 4))
    correct = each - 2 * math.log1p(c * r * r / alpha)
    given = correct + 2 * math.log1p(c * r / alpha)
    return min(given, each) * k, 1.0 / alpha


def intercept_column(spec: FitSpec) -> int:
    """1 when a constant column stands for the intercept: LinearRegression's own centring
    (fit_intercept) in diffprivlib 0.6.6 noises the means with the lower bound twice
    (IBM/differential-privacy-library#105) and composes over-budget (#104)."""
    return int(spec.estimator.name == "LinearRegression" and
               bool(spec.options.get("fit_intercept", True)))


def train(spec: FitSpec, X: np.ndarray, y: np.ndarray | None, epsilon: float) -> dict[str, Any]:
    """Fit the estimator on an encoded, resized training set; its fitted parameters as JSON-able
    values. diffprivlib's ``PrivacyLeakWarning`` raises (it would mean a bound was guessed);
    every other warning is dropped: whether the solver converged depends on the rows."""
    from diffprivlib.utils import PrivacyLeakWarning

    model = _estimator(spec, epsilon)
    if intercept_column(spec):
        X = np.hstack([X, np.ones((len(X), 1))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", PrivacyLeakWarning)
        if y is None:
            model.fit(X)
        else:
            model.fit(X, y)
    params = {a: _jsonable(getattr(model, a)) for a in spec.estimator.fitted
              if hasattr(model, a)}
    if intercept_column(spec):
        *coef, params["intercept_"] = params["coef_"]
        params["coef_"] = coef
    elif spec.estimator.name == "LinearRegression":
        params["intercept_"] = 0.0
    return params


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()] if value.dtype == object else \
            _finite(value.tolist())
    if isinstance(value, np.generic):
        return _finite(value.item())
    return _finite(value)


def _finite(value: Any) -> Any:
    """NaN and infinities as None (JSON has neither)."""
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -- the rebuilt model --------------------------------------------------------------------------

def build_model(estimator: str, params: dict[str, Any], card: dict[str, Any]) -> Any:
    """A scikit-learn Pipeline (:class:`ContractEncoder` then the estimator) from released
    parameters and the card: what the analyst calls ``predict`` or ``transform`` on. Built
    from the released values only, in this process and behind a server alike."""
    from sklearn.pipeline import Pipeline

    import diffprivlib.models as dpm

    est = ESTIMATORS[estimator]
    features = [Feature.from_card(f) for f in card["features"]]
    model = getattr(dpm, est.name)(epsilon=card["epsilon_model"])
    for attr in est.fitted:
        value = params.get(attr)
        if attr == "classes_":
            tgt = Feature.from_card(card["target"])
            value = class_labels(tgt)
        elif attr == "n_components_":
            value = int(value)
        elif value is not None:
            value = np.asarray(value, dtype=float)
            if attr == "intercept_" and value.ndim == 0:
                value = float(value)
        setattr(model, attr, value)
    drop = bool(card.get("drop_first"))
    model.n_features_in_ = sum(f.width(drop) for f in features)
    if est.name == "KMeans":
        model._n_threads = 1
        model.n_clusters = len(params["cluster_centers_"])
    if est.name == "PCA":
        model.n_components = int(params["n_components_"])
        model.whiten = False
        model.n_samples_ = int(card.get("rows") or 0)
    return Pipeline([("encode", encoder_class()(card["features"], drop)), ("model", model)])


_ENCODER: list[type] = []


def encoder_class() -> type:
    """:class:`ContractEncoder` (a scikit-learn transformer, so built on first use)."""
    if _ENCODER:
        return _ENCODER[0]
    from sklearn.base import BaseEstimator, TransformerMixin

    class ContractEncoder(TransformerMixin, BaseEstimator):
        """Encodes feature columns from the contract alone (see :func:`encode`): a frame with
        the features' columns, or a 2-D array with them in order. ``fit`` learns nothing."""

        def __init__(self, features: list[dict] | None = None, drop_first: bool = False):
            self.features = features
            self.drop_first = drop_first

        def fit(self, X: Any = None, y: Any = None) -> "ContractEncoder":
            return self

        def __sklearn_is_fitted__(self) -> bool:
            return True

        def transform(self, X: Any) -> np.ndarray:
            feats = [Feature.from_card(f) for f in self.features or ()]
            if hasattr(X, "columns"):
                missing = [f.name for f in feats if f.name not in X.columns]
                if missing:
                    raise MeshError(f"the frame lacks the feature column(s) "
                                    f"{', '.join(missing)} — give every feature the model was "
                                    f"fitted on: {', '.join(f.name for f in feats)}")
                cols = [X[f.name].to_numpy() for f in feats]
            else:
                arr = np.asarray(X, dtype=object)
                if arr.ndim != 2 or arr.shape[1] != len(feats):
                    raise MeshError(f"expected {len(feats)} feature columns "
                                    f"({', '.join(f.name for f in feats)})")
                cols = [arr[:, i] for i in range(len(feats))]
            return encode(feats, cols, self.drop_first)

    ContractEncoder.__module__ = __name__
    _ENCODER.append(ContractEncoder)
    return ContractEncoder


def __getattr__(name: str) -> Any:
    if name == "ContractEncoder":
        return encoder_class()
    raise AttributeError(name)


# -- 5. evaluate --------------------------------------------------------------------------------

SCORE_BINS = 20  # of a binary classifier's held-out scores (the AUC's resolution)


def _auc(hist: np.ndarray, epsilon: float, rng: np.random.Generator
         ) -> tuple[float, list[float]]:
    """The AUC of noisy score histograms (row 0: negatives, row 1: positives; ties count half)
    and a 95% interval: the test set's sampling (Hanley & McNeil) and the noise (the same
    geometric noise drawn again on the released histograms: post-processing)."""
    def auc(h: np.ndarray) -> float:
        neg, pos = np.maximum(h[0], 0).astype(float), np.maximum(h[1], 0).astype(float)
        below = np.cumsum(neg) - neg
        n_pos, n_neg = pos.sum(), neg.sum()
        return float((pos * (below + neg / 2)).sum() / (n_pos * n_neg)) if n_pos and n_neg \
            else float("nan")

    a = auc(hist)
    if a != a:
        return a, [float("nan"), float("nan")]
    p = math.exp(-epsilon)
    draws = [auc(hist + rng.geometric(1 - p, hist.shape) - rng.geometric(1 - p, hist.shape))
             for _ in range(200)]
    n_pos, n_neg = float(hist[1].sum()), float(hist[0].sum())
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    sampling = (a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) \
        / (n_pos * n_neg)
    width = stats_z(0.05) * math.sqrt(max(0.0, sampling) + float(np.nanvar(draws)))
    return a, [max(0.0, a - width), min(1.0, a + width)]


def _geometric_var(epsilon: float) -> float:
    """The variance of two-sided geometric noise of sensitivity 1 (diffprivlib's Geometric)."""
    p = math.exp(-epsilon)
    return 2 * p / (1 - p) ** 2


def evaluate(spec: FitSpec, model: Any, X: np.ndarray, y: np.ndarray, epsilon: float,
             acc: Accountant) -> dict[str, Any]:
    """The held-out estimate: accuracy from the confusion matrix with geometric noise on every
    cell (one person is in one cell: the cells cost ``epsilon`` once), or RMSE from a noisy
    sum of clamped squared errors and a noisy count (``epsilon`` / 2 each)."""
    z = stats_z(0.05)
    if spec.estimator.task == "classification":
        classes = list(class_labels(spec.target))
        truth = class_codes(objects(y), classes)
        mech = acc.mechanism(Measurement("eval", "count", None, 1, "geometric", epsilon))
        binary = len(classes) == 2 and hasattr(model, "predict_proba")
        if binary:  # one histogram of scores per class: the confusion matrix and the AUC
            scores = model.predict_proba(X)[:, 1] if len(X) else np.zeros(0)
            cells = np.minimum((scores * SCORE_BINS).astype(np.int64), SCORE_BINS - 1)
            shape = (2, SCORE_BINS)
        else:
            pred = model.predict(X) if len(X) else np.array([])
            cells = class_codes(objects(pred), classes)
            shape = (len(classes), len(classes))
        exact = np.zeros(shape, dtype=np.int64)
        np.add.at(exact, (truth, cells), 1)  # one person, one cell: epsilon once
        noisy = np.array([[max(0, mech.randomise(int(v))) for v in row] for row in exact])
        out: dict[str, Any] = {"metric": "accuracy", "epsilon": epsilon,
                               "classes": [_plain(c) for c in classes]}
        if binary:
            half = SCORE_BINS // 2
            confusion = np.array([[noisy[0, :half].sum(), noisy[0, half:].sum()],
                                  [noisy[1, :half].sum(), noisy[1, half:].sum()]])
            right_cells = wrong_cells = SCORE_BINS
            out["auc"], out["auc_ci95"] = _auc(noisy, epsilon, acc.rng)
            out["score_bins"] = SCORE_BINS
        else:
            confusion = noisy
            k = len(classes)
            right_cells, wrong_cells = k, k * k - k
        total, right = int(confusion.sum()), int(np.trace(confusion))
        value = right / total if total else float("nan")
        var = _geometric_var(epsilon)
        if total:
            noise = var * (right_cells * (1 - value) ** 2 + wrong_cells * value ** 2)
            width = z * math.sqrt(value * (1 - value) / total + noise / total ** 2)
        else:
            width = float("nan")
        out.update({"value": value, "ci95": [max(0.0, value - width), min(1.0, value + width)],
                    "test_rows": total, "confusion": confusion.tolist()})
        return out
    lo, hi = spec.target.bounds
    pred = np.clip(model.predict(X), lo, hi) if len(X) else np.array([])
    err = float(np.sum((pred - y) ** 2))
    s_mech = acc.mechanism(Measurement("eval_sse", "sum", None, (hi - lo) ** 2, "laplace",
                                       epsilon / 2))
    n_mech = acc.mechanism(Measurement("eval_n", "count", None, 1, "geometric", epsilon / 2))
    sse, n = max(0.0, s_mech.randomise(err)), max(0, n_mech.randomise(len(y)))
    rmse = math.sqrt(sse / n) if n else float("nan")
    return {"metric": "rmse", "value": rmse, "test_rows": n, "epsilon": epsilon,
            "ci95": [float("nan"), float("nan")]}


# -- the whole fit ------------------------------------------------------------------------------

def run_fit(session: "Session", estimator: str, features: Sequence[str] | str,
            target: str | None = None, *, epsilon: float | None = None,
            where: str | None = None, evaluate_model: bool | None = None,
            table: str | None = None, options: dict[str, Any] | None = None,
            product: str | None = None) -> "ModelRelease":
    """Check, reserve, read one row per unit, train, evaluate, release; see
    :meth:`mesh_nb.Session.fit`."""
    from ..values import ModelRelease
    from .runner import defaults, reject

    session.check_open()
    if session.access != "dp-aggregate":
        raise PolicyViolation("fit-access", f"purpose `{session.purpose}` grants "
                              f"{session.access}: models are trained in dp-aggregate purposes "
                              "only", "bind a dp-aggregate purpose to fit a model")
    owner = session.product(product)
    contracts = {p.name: p.contract for p in session.products}
    text = f"SELECT {features if isinstance(features, str) else ', '.join(map(str, features))}"
    text += f" WHERE {where}" if where else ""
    try:
        spec = check_fit(estimator, features, target, contracts=contracts,
                         purpose=session.purpose, product=owner.name, table=table, where=where,
                         options=options)
        eps, _ = defaults(session, epsilon, 0.0, (owner,))
        if eps < MIN_EPSILON:
            raise PolicyViolation("epsilon", f"epsilon {eps:g} is below the {MIN_EPSILON:g} a "
                                  "fit takes (the training set's noisy size would be mostly "
                                  "noise, and could be millions of rows)",
                                  f"give epsilon={MIN_EPSILON:g} or more")
        query = fit_query(spec)
        job = session.engine.prepare(query)  # binds on the schema: reads no data
    except PolicyViolation as exc:
        reject(session, text, exc)
        raise
    evaluating = spec.estimator.supervised if evaluate_model is None else bool(evaluate_model)
    if evaluating and not spec.estimator.supervised:
        raise PolicyViolation("fit-option", f"{spec.estimator.name} has no target to evaluate "
                              "against", "leave evaluate out")
    shares = {"size": eps * SIZE_SHARE, "evaluation": eps * EVAL_SHARE if evaluating else 0.0}
    shares["model"] = eps - shares["size"] - shares["evaluation"]
    release_id = uuid.uuid4().hex[:12]
    details = {"query": spec.checked.redacted, "query_hash": spec.checked.query_hash,
               "columns": list(spec.checked.columns), "products": [owner.name],
               "mechanism": f"{spec.estimator.name} (diffprivlib), geometric",
               "estimator": spec.estimator.name,
               "features": [f.name for f in spec.features],
               "target": spec.target.name if spec.target else "", "release": release_id}
    remaining = session.reserve_all((owner,), epsilon=eps, delta=0.0, details=details,
                                    kind="model.released")
    try:
        card, params = _train_and_evaluate(spec, job, shares, evaluating)
    except Exception:  # every failure from here on may depend on a person's data
        session.record("query.failed", {"release": release_id, "rule": "fit-error"}, (owner,))
        raise QueryFailed(release_id, eps, 0.0) from None
    card.update({"release": release_id, "purpose": session.purpose, "product": owner.name,
                 "table": spec.checked.tables[0].table, "query": spec.checked.redacted})
    notes = tuple(_notes(spec, card))
    return ModelRelease(spec.estimator.name, params, card, eps, 0.0, session.purpose,
                        (owner.name,), release_id, notes,
                        {owner.name: remaining[owner.name]})


def _train_and_evaluate(spec: FitSpec, job: Any, shares: dict[str, float], evaluating: bool
                        ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Inside the trust boundary: read the rows, split, resize, train, evaluate; the card
    (no data value, only noisy counts) and the fitted parameters."""
    acc = Accountant()
    cols = job.columns()
    feats = [cols[f"x{i}"] for i in range(len(spec.features))]
    X = encode(spec.features, feats, spec.estimator.drop_first)
    y = _labels(spec.target, cols[TARGET]) if spec.target is not None else None
    split = np.asarray(_floats(cols[SPLIT]))
    keep = np.ones(len(X), dtype=bool) if y is None else _labelled(spec.target, y)
    test = (split < TEST_SHARE) & keep if evaluating else np.zeros(len(X), dtype=bool)
    train_rows = keep & ~test
    Xt, yt = X[train_rows], None if y is None else y[train_rows]
    size_m = acc.mechanism(Measurement("size", "count", None, 1, "geometric", shares["size"]))
    size = max(0, int(size_m.randomise(int(len(Xt)))))
    fill = (class_labels(spec.target)[0] if spec.estimator.task == "classification" else
            sum(spec.target.bounds) / 2 if spec.target is not None else None)
    Xt, yt = resize(Xt, yt, size, fill, acc.rng)
    anchors = 0
    if spec.estimator.task == "classification":  # public rows: every class is present
        classes = class_labels(spec.target)
        Xt = np.vstack([Xt, np.zeros((len(classes), Xt.shape[1]))])
        yt = np.concatenate([yt.astype(classes.dtype), classes])
        anchors = len(classes)
    elif spec.estimator.name == "KMeans":
        k = int(spec.options.get("n_clusters", 3))
        anchors = max(0, k - len(Xt))
        Xt = np.vstack([Xt, np.zeros((anchors, Xt.shape[1]))])
    acc.charge("model", "diffprivlib", shares["model"])
    params = train(spec, Xt, yt, shares["model"])
    card: dict[str, Any] = {
        "estimator": spec.estimator.name, "features": [f.to_card() for f in spec.features],
        "target": spec.target.to_card() if spec.target else None,
        "encoding": "numeric features clamped to their contract bounds and scaled to [-1, 1] "
                    "(missing: 0); categorical ones one-hot over the declared categories "
                    "(missing or undeclared: all zeros)"
                    + ("; the first category of each is the reference (dropped)"
                       if spec.estimator.drop_first else ""),
        "drop_first": spec.estimator.drop_first,
        "rows_per_unit": "one random row per privacy unit",
        "rows": size, "anchor_rows": anchors,
        "epsilon_model": shares["model"],
        "epsilon_estimator": shares["model"] * spec.estimator.model_share,
        "epsilon_size": shares["size"],
        "epsilon_evaluation": shares["evaluation"], "options": dict(spec.options),
        "data_norm": data_norm(spec), "evaluation": None,
    }
    if evaluating:
        model = build_model(spec.estimator.name, params, card)
        with warnings.catch_warnings():  # a solver's or predict's warning would follow the rows
            warnings.simplefilter("ignore")
            card["evaluation"] = evaluate(spec, model[-1], X[test], y[test],
                                          shares["evaluation"], acc)
    acc.check(sum(shares.values()), 0.0)
    return card, params


def data_norm(spec: FitSpec) -> float:
    """The largest L2 norm of an encoded row: 1 per numeric feature (in [-1, 1]) and 1 per
    one-hot block (one 1 at most)."""
    blocks = sum(1 for f in spec.features
                 if f.kind == "categorical" and f.width(spec.estimator.drop_first))
    return math.sqrt(sum(1 for f in spec.features if f.kind == "numeric") + blocks) or 1.0


def _notes(spec: FitSpec, card: dict[str, Any]) -> Iterable[str]:
    yield (f"trained inside the trust boundary on one random row per privacy unit; the "
           f"training set was resized to a noisy count of {card['rows']:,} rows (ε "
           f"{card['epsilon_size']:g})")
    if card["anchor_rows"]:
        yield (f"{card['anchor_rows']} public all-zero anchor row(s) added so that every "
               "class (or cluster) is present")
    if spec.estimator.model_share < 1:
        yield (f"{spec.estimator.name} got ε {card['epsilon_estimator']:g} of the model's "
               f"{card['epsilon_model']:g}: diffprivlib calibrates it for one row added or "
               "removed, and a person in a fixed-size training set is one row replaced")
    ev = card.get("evaluation")
    if ev and ev["metric"] == "accuracy" and ev["test_rows"]:
        lo, hi = ev["ci95"]
        yield (f"held-out accuracy {ev['value']:.3f} (95% interval {lo:.3f}–{hi:.3f}) on "
               f"about {ev['test_rows']:,} held-out units (ε {ev['epsilon']:g})")
        if ev.get("auc") is not None and ev["auc"] == ev["auc"]:
            alo, ahi = ev["auc_ci95"]
            yield (f"held-out AUC {ev['auc']:.3f} (95% interval {alo:.3f}–{ahi:.3f}), from "
                   f"noisy histograms of the scores in {ev['score_bins']} bins (the same ε)")
    elif ev and ev["metric"] == "rmse":
        yield f"held-out RMSE {ev['value']:.4g} on about {ev['test_rows']:,} units"
