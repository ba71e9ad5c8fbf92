"""The example notebooks' outputs carry no data values beyond released aggregates.

nbval (pytest --nbval-lax) already runs them for errors; this executes each once more and reads
every output (text, HTML, widget views) for the demo's identifying values. The notebooks build
the demo mesh from the same seed, so the values they could leak are known.
"""

from __future__ import annotations

import json

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from mesh_nb.notebooks import notebooks_dir

NOTEBOOKS = sorted(p.name for p in notebooks_dir().glob("*.ipynb"))
IDENTIFYING = {"customers": ("full_name", "email", "phone"),
               "sales": ("card_number", "ip_address")}


@pytest.fixture(scope="module")
def secrets(demo_root) -> set[str]:
    values: set[str] = set()
    for product, columns in IDENTIFYING.items():
        frame = pd.read_parquet(next((demo_root / product).glob("*.parquet")),
                                columns=list(columns))
        for column in columns:
            values |= set(frame[column].astype(str))
    values = {v for v in values if len(v) >= 6}
    assert len(values) > 100_000  # names, emails, phones, cards, IPs of the demo
    return values


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_outputs_hold_no_identifying_values(name: str, secrets: set[str],
                                                     tmp_path) -> None:
    nb = nbformat.read(notebooks_dir() / name, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"
              and "raises-exception" not in c.metadata.get("tags", [])]
    assert not errors, errors
    text = json.dumps([c.get("outputs", []) for c in nb.cells if c.cell_type == "code"])
    leaked = [v for v in secrets if v in text]
    assert not leaked, f"{len(leaked)} identifying value(s) in the outputs of {name}"
