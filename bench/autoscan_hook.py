"""Cost of the post-cell autoscan hook on a cell that changes nothing.

    python bench/autoscan_hook.py [--frames 10] [--rows 1000000] [--cells 100]

Ten unchanged 1,000,000-row frames sit in the namespace; each cell runs the real IPython
``post_run_cell`` hook. Goal (issue 4): < 20 ms p95 added to such a cell.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
from IPython.core.interactiveshell import InteractiveShell


def frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = np.char.add("C", rng.integers(0, 10**7, rows).astype(str))
    return pd.DataFrame({
        "customer_id": ids, "amount": rng.gamma(2.0, 50.0, rows),
        "region": pd.Categorical(rng.choice(["north", "south", "east", "west"], rows)),
        "when": pd.date_range("2020-01-01", periods=rows, freq="min"),
        "email": np.char.add(ids, "@example.com"), "n": rng.integers(0, 100, rows),
    })


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--cells", type=int, default=100)
    args = ap.parse_args()
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "mesh_nb")
    for i in range(args.frames):
        ip.user_ns[f"df{i}"] = frame(args.rows, i)
    from mesh_nb.magics import MeshMagics

    magics = next(m for m in ip.magics_manager.registry.values() if isinstance(m, MeshMagics))
    t = time.perf_counter()
    magics.autoscan.post_run_cell()  # first look: every frame is new and gets scanned
    magics.autoscan.wait(timeout=600)
    first = time.perf_counter() - t
    costs = []
    for _ in range(args.cells):
        t = time.perf_counter()
        magics.autoscan.post_run_cell()
        costs.append((time.perf_counter() - t) * 1000)
    costs.sort()
    p50, p95 = statistics.median(costs), costs[int(0.95 * len(costs)) - 1]
    from mesh_nb.pii import frame_fingerprint

    one = ip.user_ns["df0"]
    t = time.perf_counter()
    for _ in range(20):
        frame_fingerprint(one)
    fingerprint = (time.perf_counter() - t) / 20 * 1000
    print(f"| measure ({args.frames} frames x {args.rows:,} rows, {args.cells} cells) | result "
          "| goal |\n|---|---|---|")
    print(f"| first look: fingerprint + background scan of all frames | {first:.2f} s | — |")
    print(f"| hook on an unchanged namespace, p50 | {p50:.2f} ms | — |")
    print(f"| hook on an unchanged namespace, p95 | {p95:.2f} ms | < 20 ms |")
    print(f"| frame_fingerprint of one frame, mean of 20 | {fingerprint:.3f} ms | < 10 ms |")
    ip.run_line_magic("unload_ext", "mesh_nb")


if __name__ == "__main__":
    main()
