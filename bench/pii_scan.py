"""Bench: mesh_nb's PII scan versus presidio-structured's PandasAnalysisBuilder.

    python bench/pii_scan.py [--quick] [--venv DIR] [--no-structured]
                             [--messy-only | --holdout-only | --no-messy]

Same frames for both: 100,000 x 14 and 1,000,000 x 14 generated frames (tests/pii_frames.py
``big_frame``) and the third-party tables in shared/data/pii. Column-level entity precision and
recall against the same truth (tests/pii_frames.py ``score``), CPU and wall seconds.

presidio-structured needs presidio-anonymizer, which needs cryptography>=50; mesh_nb's
environment has another cryptography, so presidio-structured lives in its own venv
(``--system-site-packages``, created on first use under ~/.cache/mesh_nb) and runs in a
subprocess there. It gets an OFFLINE analyzer: presidio's default recognizers with a
``NoOpNlpEngine`` and tldextract on its bundled suffix list (its default ``AnalyzerEngine()``
would try to download a spaCy model).

presidio-structured's default sample is the whole frame (``n=None``) and it calls ``analyze()``
once per cell (about 1.7 ms): a 1,000,000 x 14 frame would take hours. So it runs on the
third-party tables at its default (all rows), and on the big frames on ``--structured-rows``
rows (default 2,000); its CPU at the default sample is then extrapolated linearly in rows
(marked "~" in the table). ``--quick`` uses 300 rows for every presidio-structured run.

mesh_nb's scan is timed warm (presidio engine and word lists built once per process, as the
notebook hook keeps them); the one-time start-up cost is printed separately.

Then a section on the held-out messy frames (tests/pii_messy.py, written without Faker and not
tuned with the scan): column-level P/R of mesh_nb with real and obfuscated column names at
5,000 and 100,000 rows, and of presidio-structured on the same frame, overall and per kind;
and the same on tests/pii_holdout.py's entity-centric frames (HR, clinic, logistics, CRM,
survey, logs; written before looking at the scan's internals).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

DEFAULT_VENV = Path.home() / ".cache" / "mesh_nb" / "bench-structured-venv"


# --------------------------------------------------------------------------------------------
# presidio-structured worker (runs inside the bench venv)
# --------------------------------------------------------------------------------------------


def _structured_worker(job_dir: Path) -> None:
    import logging

    import pandas as pd
    import tldextract
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NoOpNlpEngine
    from presidio_analyzer.predefined_recognizers.generic import email_recognizer
    from presidio_structured import PandasAnalysisBuilder

    logging.disable(logging.WARNING)

    class _OfflineTld:  # presidio's EmailRecognizer calls tldextract.extract(...)
        extract = staticmethod(tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None))

    email_recognizer.tldextract = _OfflineTld
    analyzer = AnalyzerEngine(nlp_engine=NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "noop"}]),
                              supported_languages=["en"], default_score_threshold=0)
    builder = PandasAnalysisBuilder(analyzer=analyzer)
    builder.generate_analysis(pd.DataFrame({"a": ["warm@example.com", "x"]}))  # warm-up
    jobs = json.loads((job_dir / "jobs.json").read_text())
    out = []
    for job in jobs:
        with open(job_dir / job["file"], "rb") as fh:
            df = pd.DataFrame(pickle.load(fh))
        n = job["n"]
        note = ""
        t_cpu, t_wall = time.process_time(), time.perf_counter()
        try:
            mapping = builder.generate_analysis(df, n=n).entity_mapping
        except Exception as exc:  # datetime64 and string-with-NA columns crash it
            note = f"crashed ({type(exc).__name__}); rerun with datetimes and NA as object"
            df = df.astype(object).where(df.notna(), None)
            df = df.apply(lambda c: c.map(lambda v: v.isoformat() if hasattr(v, "isoformat") else v))
            t_cpu, t_wall = time.process_time(), time.perf_counter()
            mapping = builder.generate_analysis(df, n=n).entity_mapping
        out.append({"name": job["name"], "cpu": time.process_time() - t_cpu,
                    "wall": time.perf_counter() - t_wall, "mapping": dict(mapping),
                    "rows_used": min(n or len(df), len(df)), "note": note})
        print(json.dumps({"done": job["name"]}), flush=True)
    (job_dir / "results.json").write_text(json.dumps(out))


def _ensure_venv(venv: Path) -> Path:
    py = venv / "bin" / "python"
    if py.exists():
        ok = subprocess.run([str(py), "-c", "import presidio_structured"], capture_output=True)
        if ok.returncode == 0:
            return py
    print(f"creating {venv} with presidio-structured (once)...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "presidio-structured"], check=True)
    return py


def _run_structured(venv: Path, jobs_in: list) -> dict:
    """presidio-structured on ``(LabeledFrame, rows or None)`` pairs, in its venv: {name: result}."""
    py = _ensure_venv(venv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        jobs = []
        for i, (lf, n) in enumerate(jobs_in):
            if n is not None:
                n = min(n, len(lf.frame))
            # plain Python columns: arrow-backed strings would need pyarrow in the bench venv,
            # and only the first n rows (presidio-structured samples n of them anyway)
            df = lf.frame if n is None else lf.frame.head(n)
            cols = {str(c): df[c].astype(object).where(df[c].notna(), None).tolist() for c in df.columns}
            with open(tmp / f"f{i}.pickle", "wb") as fh:
                pickle.dump(cols, fh)
            jobs.append({"name": lf.name, "file": f"f{i}.pickle", "n": n})
        (tmp / "jobs.json").write_text(json.dumps(jobs))
        print("running presidio-structured (this takes minutes)...", file=sys.stderr)
        subprocess.run([str(py), str(Path(__file__).resolve()), "--structured-worker", str(tmp)],
                       check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        return {res["name"]: res for res in json.loads((tmp / "results.json").read_text())}


# --------------------------------------------------------------------------------------------
# held-out messy frames (tests/pii_messy.py)
# --------------------------------------------------------------------------------------------


def messy_section(args) -> dict:
    """Column-level P/R on tests/pii_messy.py's frames (see :func:`heldout_section`)."""
    import pii_messy as pm

    return heldout_section(args, "held-out messy frames (tests/pii_messy.py)",
                           lambda rows: pm.messy_frames(rows, seed=0))


def holdout_section(args) -> dict:
    """Column-level P/R on tests/pii_holdout.py's frames (see :func:`heldout_section`)."""
    import pii_holdout as ph

    return heldout_section(args, "held-out entity-centric frames (tests/pii_holdout.py)",
                           lambda rows: list(ph.holdout_frames(rows, seed=0)))


def heldout_section(args, title: str, make) -> dict:
    """Column-level P/R on a held-out generator's frames: mesh_nb (real and obfuscated names,
    5,000 and 100,000 rows) and presidio-structured (on ``--messy-structured-rows`` rows; it
    reads values only, so its labels of the real-name frame serve the obfuscated twin), per
    kind. ``make(rows)`` returns ``[real_names_frame, obfuscated_frame]``."""
    import pii_frames as pf
    from mesh_nb.pii import scan

    print(f"\n## {title}\n")
    runs: dict[str, tuple] = {}  # label -> (LabeledFrame, predictions)
    cpu = {}
    for rows in (5_000, 100_000):
        real, obf = make(rows)
        for label, lf in ((f"mesh_nb, real names, {rows:,} rows", real),
                          (f"mesh_nb, obfuscated names, {rows:,} rows", obf)):
            r = scan(lf.frame)
            runs[label] = (lf, r.entities())
            cpu[label] = r.cpu_seconds
        if rows == 5_000:
            base = real
    if not args.no_structured:
        n = 300 if args.quick else args.messy_structured_rows
        t = _run_structured(args.venv, [(base, n)])[base.name]
        runs[f"presidio-structured ({min(n, len(base.frame)):,} rows sampled)"] = (base, t["mapping"])
        cpu["presidio-structured"] = t["cpu"]
    print("| run | P / R | tp | fp | fn | CPU s |")
    print("|---|---|---|---|---|---|")
    for label, (lf, pred) in runs.items():
        s = pf.score([(lf, pred)])
        c = cpu.get(label, cpu.get("presidio-structured", float("nan")))
        print(f"| {label} | {_fmt_pr(s)} | {s['micro'][2]} | {s['micro'][3]} | {s['micro'][4]} | {c:.2f} |")
    # per kind: positives found with the right entity / columns; negatives labelled (false positives)
    kinds: dict[str, str | None] = {}
    for lf, _ in runs.values():
        for col, kind in lf.notes.items():
            kinds.setdefault(kind, lf.truth[col])
    labels = list(runs)
    print("\nper kind: positives = columns found with the right entity / columns; "
          "negatives (truth None) = columns wrongly labelled / columns\n")
    print("| kind | truth | " + " | ".join(labels) + " |")
    print("|---|---|" + "---|" * len(labels))
    for kind, truth in kinds.items():
        cells = []
        for label in labels:
            lf, pred = runs[label]
            names = [c for c, k in lf.notes.items() if k == kind]
            if truth is None:
                bad = [pred.get(c) for c in names if pred.get(c)]
                cells.append(f"{len(bad)}/{len(names)} FP" + (f" ({', '.join(sorted(set(bad)))})" if bad else ""))
            else:
                got = [pred.get(c) for c in names]
                ok = sum(g == lf.truth[c] for g, c in zip(got, names))
                wrong = sorted({g for g in got if g and g != truth})
                cells.append(f"{ok}/{len(names)}" + (f" ({', '.join(wrong)})" if wrong else ""))
        print(f"| {kind} | {truth or '-'} | " + " | ".join(cells) + " |")
    return runs


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


def _fmt_pr(s) -> str:
    """'P / R'; '-' where undefined (no predicted positives, or no true positives)."""
    p, r, tp, fp, fn = s["micro"]
    return f"{p:.2f} / {r:.2f}".replace(f"{p:.2f} /", "- /" if tp + fp == 0 else f"{p:.2f} /") \
        if tp + fn else (f"{p:.2f} / -" if tp + fp else "- / -")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small presidio-structured samples")
    ap.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    ap.add_argument("--no-structured", action="store_true", help="only time mesh_nb's scan")
    ap.add_argument("--structured-rows", type=int, default=2000,
                    help="rows presidio-structured analyzes of the big frames")
    ap.add_argument("--messy-structured-rows", type=int, default=500,
                    help="rows presidio-structured analyzes of the held-out messy frame")
    ap.add_argument("--messy-only", action="store_true", help="only the held-out messy section")
    ap.add_argument("--no-messy", action="store_true", help="skip the held-out sections")
    ap.add_argument("--holdout-only", action="store_true",
                    help="only the entity-centric held-out section (tests/pii_holdout.py)")
    ap.add_argument("--structured-worker", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.structured_worker:
        _structured_worker(args.structured_worker)
        return 0


    import pii_frames as pf
    from mesh_nb.pii import scan
    from mesh_nb.pii import engine as pii_engine
    from mesh_nb.pii.gazetteer import gazetteer

    t_cpu, t_wall = time.process_time(), time.perf_counter()
    pii_engine.analyzer()
    gazetteer()
    startup = (time.process_time() - t_cpu, time.perf_counter() - t_wall)
    if args.messy_only or args.holdout_only:
        scan(pf.big_frame(100, seed=0).frame)  # warm
        (holdout_section if args.holdout_only else messy_section)(args)
        return 0

    t = time.perf_counter()
    big = [pf.big_frame(100_000, seed=0, pool=5_000), pf.big_frame(1_000_000, seed=1, pool=5_000)]
    third, skipped = pf.third_party_frames()
    print(f"frames built in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    for note in skipped:
        print("skipped:", note, file=sys.stderr)
    frames = big + third

    # --- ours -------------------------------------------------------------------------------
    scan(big[0].frame.head(100))  # warm
    ours = {}
    for lf in frames:
        r = scan(lf.frame)
        ours[lf.name] = {"cpu": r.cpu_seconds, "wall": r.wall_seconds, "pred": r.entities()}

    wide = scan(pf.wide_frame(100))
    print(f"wide frame 100 x 501: CPU {wide.cpu_seconds:.3f} s, wall {wide.wall_seconds:.3f} s "
          f"(the 1M x 14 frame: CPU {ours[big[1].name]['cpu']:.3f} s)")

    # --- presidio-structured -------------------------------------------------------------------
    theirs = {}
    if not args.no_structured:
        theirs = _run_structured(args.venv, [
            (lf, 300 if args.quick else (args.structured_rows if lf.name.startswith("big_") else None))
            for lf in frames])

    # --- table ----------------------------------------------------------------------------------
    rows = []
    all_ours, all_theirs = [], []
    tot = {"ours_cpu": 0.0, "theirs_cpu": 0.0}
    for lf in frames:
        o = ours[lf.name]
        so = pf.score([(lf, o["pred"])])
        all_ours.append((lf, o["pred"]))
        shape = f"{len(lf.frame):,} x {lf.frame.shape[1]}"
        row = [lf.name, shape, f"{o['cpu']:.3f}", f"{o['wall']:.3f}", _fmt_pr(so)]
        if lf.name in theirs:
            t = theirs[lf.name]
            st = pf.score([(lf, {k: v for k, v in t["mapping"].items()})])
            all_theirs.append((lf, t["mapping"]))
            scale = len(lf.frame) / max(1, t["rows_used"])
            cpu_default = t["cpu"] * scale
            mark = "~" if scale > 1.0001 else ""
            tot["ours_cpu"] += o["cpu"]
            tot["theirs_cpu"] += cpu_default
            row += [f"{t['rows_used']:,}", f"{t['cpu']:.2f}", f"{mark}{cpu_default:,.1f}",
                    f"{t['wall']:.2f}", _fmt_pr(st), f"{mark}{cpu_default / max(o['cpu'], 1e-9):,.0f}x",
                    t["note"]]
        rows.append(row)

    print(f"\nmesh_nb scan start-up (once per process: presidio import + engine, word lists): "
          f"{startup[0]:.2f} s CPU, {startup[1]:.2f} s wall\n")
    head = ["frame", "rows x cols", "ours CPU s", "ours wall s", "ours P / R"]
    if theirs:
        head += ["p-s rows analyzed", "p-s CPU s", "p-s CPU s at default sample", "p-s wall s",
                 "p-s P / R", "CPU ratio", "note"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    so_all = pf.score(all_ours)
    print()
    print(f"all frames, ours: P / R = {_fmt_pr(so_all)} "
          f"(tp {so_all['micro'][2]}, fp {so_all['micro'][3]}, fn {so_all['micro'][4]})")
    if all_theirs:
        st_all = pf.score(all_theirs)
        print(f"all frames, presidio-structured: P / R = {_fmt_pr(st_all)} "
              f"(tp {st_all['micro'][2]}, fp {st_all['micro'][3]}, fn {st_all['micro'][4]})")
    print()
    big1m = ours[big[1].name]
    print("| goal | result | met |")
    print("|---|---|---|")
    print(f"| 1,000,000 x {big[1].frame.shape[1]} frame scanned in < 1 CPU s (warm) | "
          f"{big1m['cpu']:.3f} s CPU | {'yes' if big1m['cpu'] < 1 else 'NO'} |")
    print(f"| same, including the one-time start-up | {big1m['cpu'] + startup[0]:.3f} s CPU | "
          f"{'yes' if big1m['cpu'] + startup[0] < 1 else 'NO'} |")
    if theirs:
        ratio = tot["theirs_cpu"] / max(tot["ours_cpu"], 1e-9)
        print(f"| >= 20x less CPU than presidio-structured at its default sample (all frames) | "
              f"{ratio:,.0f}x | {'yes' if ratio >= 20 else 'NO'} |")
        better = so_all["micro"][0] > st_all["micro"][0] and so_all["micro"][1] > st_all["micro"][1]
        print(f"| better column-level P and R than presidio-structured | ours {_fmt_pr(so_all)} vs "
              f"{_fmt_pr(st_all)} | {'yes' if better else 'NO'} |")
    def per_entity(s):
        out = []
        for e, (p, r, tp, fp, fn) in s["per_entity"].items():
            rec = f"{r:.2f}" if tp + fn else "-"
            out.append(f"{e} {p:.2f}/{rec} (tp {tp}, fp {fp}, fn {fn})")
        return "\n  ".join(out)

    print("\nours per entity (P/R, all frames):\n  " + per_entity(so_all))
    if all_theirs:
        print("presidio-structured per entity (P/R, all frames; '-' = no such column):\n  "
              + per_entity(st_all))
    if not args.no_messy:
        messy_section(args)
        holdout_section(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
