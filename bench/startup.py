"""Start-up time of the faces: each row is the median of N fresh processes.

    python bench/startup.py [--runs 7]

``python -c pass`` runs in the same session as the anchor (a loaded machine slows every row
alike: the ratio column stays comparable). Goals (issue 17): ``mesh-nb --help`` < 0.5 s,
``import mesh_nb`` < 1 s, ``%load_ext mesh_nb`` in a fresh IPython < 1.5 s. The first
``mesh-nb check`` of a demo contract shows what the first real use pays (the ODCS schema).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

LOAD_EXT = ("from IPython.core.interactiveshell import InteractiveShell\n"
            "InteractiveShell.instance().run_line_magic('load_ext', 'mesh_nb')")


@dataclass(frozen=True)
class Row:
    name: str
    argv: tuple[str, ...]
    goal: float | None = None  # seconds


def rows(contract: Path) -> list[Row]:
    py = sys.executable
    cli = (py, "-m", "mesh_nb.cli")
    return [Row("python -c pass (anchor)", (py, "-c", "pass")),
            Row("import mesh_nb", (py, "-c", "import mesh_nb"), 1.0),
            Row("mesh-nb --help", (*cli, "--help"), 0.5),
            Row("mesh-nb --version", (*cli, "--version"), 0.5),
            Row("mesh-nb check --help", (*cli, "check", "--help"), 0.5),
            Row("%load_ext mesh_nb (fresh IPython)", (py, "-c", LOAD_EXT), 1.5),
            Row("mesh-nb check CONTRACT (first use)", (*cli, "check", str(contract)))]


def median_seconds(argv: tuple[str, ...], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7, help="fresh processes per row (default 7)")
    args = ap.parse_args()
    from mesh_nb.demo import write_demo

    with tempfile.TemporaryDirectory() as tmp:
        contract = write_demo(Path(tmp) / "mesh") / "customers" / "datacontract.yaml"
        measured = [(row, median_seconds(row.argv, args.runs)) for row in rows(contract)]
    anchor = measured[0][1]
    print(f"| start-up, median of {args.runs} fresh processes | seconds | x python -c pass "
          "| goal |\n|---|---|---|---|")
    for row, seconds in measured:
        goal = "—" if row.goal is None else (
            f"< {row.goal:g} s {'met' if seconds < row.goal else 'NOT MET'}")
        print(f"| {row.name} | {seconds:.3f} | {seconds / anchor:.1f} | {goal} |")


if __name__ == "__main__":
    main()
