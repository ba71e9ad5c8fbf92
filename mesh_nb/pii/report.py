"""The scan's results: plain frozen dataclasses, a pandas view and a great-tables view.

A report holds column names, dtypes, entity types, counts, shares, confidences and evidence
tags; never a data value (the scanner does not copy values into it, and tests check that).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

__all__ = ["ColumnFinding", "ScanReport"]


@dataclass(frozen=True)
class ColumnFinding:
    """What the scan found in one column.

    Attributes
    ----------
    column
        The column's name (as a string).
    dtype
        The column's dtype as the frame reports it (``"str"``, ``"int64"``, ``"datetime64[ns, UTC]"``...).
    entity
        The presidio entity type the column holds (one of :data:`mesh_nb.pii.ENTITIES`, e.g.
        ``"EMAIL_ADDRESS"``, ``"CREDIT_CARD"``, ``"PERSON"``; see
        :mod:`mesh_nb.pii.entities`), or ``None`` when no entity passed its threshold.
    share
        Share of the sampled distinct non-null values that matched ``entity`` (0 when None).
    confidence
        0..1: how sure the scanner is of ``entity`` (0 when None).
    evidence
        Tags saying why, e.g. ``("name:email", "shape:email", "presidio:EMAIL_ADDRESS")``.
    sampled
        How many distinct non-null values were examined.
    distinct
        Distinct non-null values seen in the sampled rows (a lower bound for the column).
    candidates
        Every entity that matched some values, with its share.
    """

    column: str
    dtype: str
    entity: str | None
    share: float
    confidence: float
    evidence: tuple[str, ...]
    sampled: int
    distinct: int
    candidates: dict[str, float] = field(default_factory=dict, hash=False, compare=True)

    @property
    def labeled(self) -> bool:
        return self.entity is not None


@dataclass(frozen=True)
class ScanReport:
    """Per-column findings for one frame, and what the scan cost.

    ``report.entities()`` gives ``{column: entity}`` for the labeled columns;
    ``report.to_frame()`` one row per column; ``report.table()`` a great-tables table (also
    what a notebook shows for the report).
    """

    columns: tuple[ColumnFinding, ...]
    rows: int
    cpu_seconds: float
    wall_seconds: float
    sample_rows: int | None = None  # rows drawn per column (None: unknown)

    def entities(self) -> dict[str, str]:
        """``{column: entity}`` for the columns that got a label."""
        return {f.column: f.entity for f in self.columns if f.entity is not None}

    def __getitem__(self, column: str) -> ColumnFinding:
        for f in self.columns:
            if f.column == column:
                return f
        raise KeyError(f"no column named {column!r} in this report")

    def to_frame(self) -> pd.DataFrame:
        """One row per column: column, dtype, entity, share, confidence, evidence, sampled,
        distinct, candidates (as text)."""
        rows = [{
            "column": f.column,
            "dtype": f.dtype,
            "entity": f.entity,
            "share": round(f.share, 4),
            "confidence": round(f.confidence, 4),
            "evidence": ", ".join(f.evidence),
            "sampled": f.sampled,
            "distinct": f.distinct,
            "candidates": ", ".join(f"{k} {v:.0%}" for k, v in
                                    sorted(f.candidates.items(), key=lambda kv: -kv[1])),
        } for f in self.columns]
        cols = ["column", "dtype", "entity", "share", "confidence", "evidence", "sampled",
                "distinct", "candidates"]
        return pd.DataFrame(rows, columns=cols)

    def table(self, *, only_labeled: bool = False, id: str = "mesh-nb-pii-scan"):
        """The report as a ``great_tables.GT`` (labeled columns first)."""
        from great_tables import GT, loc, style

        df = self.to_frame()
        if only_labeled:
            df = df[df["entity"].notna()]
        df = df.assign(_order=df["entity"].isna()).sort_values("_order", kind="stable").drop(columns="_order")
        df["entity"] = df["entity"].fillna("—")
        labeled = int((df["entity"] != "—").sum())
        gt = (
            GT(df.reset_index(drop=True), id=id)
            .tab_header(
                title="PII scan",
                subtitle=(f"{labeled} of {len(self.columns)} columns hold personal data · "
                          f"{self.rows:,} rows · {self.cpu_seconds:.2f} s CPU"),
            )
            .fmt_percent(columns=["share", "confidence"], decimals=0)
            .fmt_integer(columns=["sampled", "distinct"])
            .cols_label(column="Column", dtype="dtype", entity="Entity", share="Share",
                        confidence="Confidence", evidence="Evidence", sampled="Sampled",
                        distinct="Distinct", candidates="Candidates")
        )
        if labeled:
            gt = gt.tab_style(style=style.text(weight="bold"),
                              locations=loc.body(columns="entity", rows=list(range(labeled))))
        return gt

    def to_text(self, width: int = 100) -> str:
        """The report as a plain table of at most ``width`` characters a line: column, dtype,
        entity (``-`` for none), share, confidence and distinct values, then a summary line
        (and, when the scan read a sample, a line saying the distinct counts are the
        sample's)."""
        sampled = self.sample_rows is not None and self.sample_rows < self.rows
        head = ("column", "dtype", "entity", "share", "conf.", "distinct*" if sampled else
                "distinct")
        rows = [(f.column, f.dtype, f.entity or "-", f"{f.share:.0%}" if f.entity else "-",
                 f"{f.confidence:.0%}" if f.entity else "-", f"{f.distinct:,}")
                for f in self.columns]
        fixed = [max(len(r[i]) for r in [head, *rows]) for i in range(1, 6)]
        name_width = max(8, min(max(len(r[0]) for r in [head, *rows]),
                                width - sum(fixed) - 2 * 5))
        widths = [name_width, *fixed]

        def line(cells: tuple[str, ...]) -> str:
            cells = tuple(_clip(c, w) for c, w in zip(cells, widths))
            left = "  ".join(c.ljust(w) for c, w in zip(cells[:3], widths[:3]))
            right = "  ".join(c.rjust(w) for c, w in zip(cells[3:], widths[3:]))
            return _clip(f"{left}  {right}", width)

        out = [line(head), *(line(r) for r in rows),
               f"{len(self.entities())} of {len(self.columns)} column(s) hold personal data "
               f"({self.rows:,} rows, {self.cpu_seconds:.2f} CPU s)"]
        if sampled:
            out.append(f"* distinct values in a sample of {self.sample_rows:,} of the "
                       f"{self.rows:,} rows: the column may hold more")
        return "\n".join(out)

    def _repr_html_(self) -> str:
        return self.table().as_raw_html()

    def __str__(self) -> str:
        lines = [f"ScanReport: {self.rows:,} rows, {len(self.columns)} columns, "
                 f"{self.cpu_seconds:.3f} s CPU, {self.wall_seconds:.3f} s wall"]
        for f in self.columns:
            label = f"{f.entity} share={f.share:.0%} confidence={f.confidence:.0%}" if f.entity else "-"
            lines.append(f"  {f.column} ({f.dtype}): {label}")
        return "\n".join(lines)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
