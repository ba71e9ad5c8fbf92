"""Fast faces, without a clock: what a fresh process loads for ``import mesh_nb``, the CLI's
``--help`` / ``--version`` and ``%load_ext mesh_nb`` (read from ``sys.modules``, which is
deterministic; the timings are in bench/startup.py), and the packaging a user meets first:
``--version`` from the metadata, a help text on every argument, plain-text help, ``py.typed``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from mesh_nb.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]

HEAVY = ("pandas", "numpy", "pyarrow", "duckdb", "sqlglot", "jsonschema", "rfc3987_syntax",
         "presidio_analyzer", "sklearn", "diffprivlib", "great_tables", "ipywidgets",
         "pydantic", "cryptography", "yaml", "open_data_contract_standard")
"""Modules a face must not pay for before it uses them."""

REPORT = """
import json, sys
print("\\n" + json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def loaded_after(code: str) -> list[str]:
    """The HEAVY modules a fresh interpreter holds after running ``code``."""
    program = f"{code}\n{REPORT.format(heavy=HEAVY)}"
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def cli_loads(*argv: str) -> list[str]:
    """HEAVY modules loaded by ``mesh-nb ARGV`` (which exits, as --help does)."""
    return loaded_after(
        "import contextlib, io\nfrom mesh_nb.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    try:\n        main({list(argv)!r})\n    except SystemExit:\n        pass")


def test_import_mesh_nb_loads_nothing_heavy() -> None:
    assert loaded_after("import mesh_nb") == []


def test_a_lazy_name_loads_its_module_on_first_use() -> None:
    import mesh_nb

    assert "load_contract" in dir(mesh_nb) and "open_mesh" in mesh_nb.__all__
    from mesh_nb.mesh import open_mesh

    assert mesh_nb.open_mesh is open_mesh
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mesh_nb.nope  # noqa: B018
    assert "pydantic" in loaded_after("import mesh_nb; mesh_nb.Contract")


@pytest.mark.parametrize("argv", [("--help",), ("--version",), ("check", "--help"),
                                  ("serve", "--help"), ("ledger", "show", "--help")])
def test_cli_help_and_version_load_nothing_heavy(argv: tuple[str, ...]) -> None:
    assert cli_loads(*argv) == []


def test_load_ext_loads_nothing_heavy_until_a_bind(demo_dir: Path) -> None:
    """No scanner, privacy library or data frame for %load_ext; the first bind loads the mesh
    (and its session starts warming the query path up in the background)."""
    load = ("from IPython.core.interactiveshell import InteractiveShell\n"
            "ip = InteractiveShell.instance()\nip.run_line_magic('load_ext', 'mesh_nb')\n"
            "assert 'mesh_query' in ip.magics_manager.magics['cell']")
    assert loaded_after(load) == []
    bound = loaded_after(f"{load}\nimport mesh_nb\n"
                         f"ip.run_line_magic('mesh_bind', 'customers --purpose churn-analysis "
                         f"--mesh {demo_dir}')\n"
                         "from mesh_nb.magics import MeshMagics\n"
                         "magics = ip.magics_manager.registry[MeshMagics.__name__]\n"
                         "assert magics.session is not None and not magics.session.ended")
    assert {"pydantic", "cryptography", "yaml"} <= set(bound)


def test_checking_a_contract_skips_the_iri_grammar(demo_root: Path) -> None:
    """jsonschema loads on the first check, without rfc3987_syntax (1.5 s of lark grammar)."""
    contract = demo_root / "customers" / "datacontract.yaml"
    bad = contract.read_text().replace("apiVersion:", "apiVersoin:", 1)
    code = ("from mesh_nb import check_contract\n"
            f"_, problems = check_contract({str(contract)!r}, count_rows=False)\n"
            "assert problems == [], problems\n"
            "from mesh_nb.contract import check_contract_text\n"
            f"_, problems = check_contract_text({bad!r}, name_hint='customers')\n"
            "assert any('apiVersoin' in str(p) for p in problems), problems\n"
            "import sys\nassert 'rfc3987_syntax' not in sys.modules\n"
            "import rfc3987_syntax  # still importable by anyone who wants it")
    found = loaded_after(code)
    assert "jsonschema" in found and "rfc3987_syntax" in found


def test_version_comes_from_the_package_metadata() -> None:
    done = subprocess.run([sys.executable, "-m", "mesh_nb.cli", "--version"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"mesh-nb {version('mesh_nb')}\n",
                                                           "")
    import mesh_nb

    assert mesh_nb.__version__ == version("mesh_nb")


def parsers(parser: argparse.ArgumentParser, path: str = "mesh-nb"):
    """(command path, parser) of the CLI and every sub-command, depth first."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from parsers(sub, f"{path} {name}")


def test_every_argument_of_every_command_has_help() -> None:
    missing = []
    for path, parser in parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helped = {a.dest for a in action._choices_actions if a.help}
                missing += [f"{path} {name}" for name in action.choices if name not in helped]
            elif not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []
    assert len(list(parsers(build_parser()))) > 20


def test_help_is_plain_text() -> None:
    """No reStructuredText (``x``, `x`, :func:`x`) in what a terminal shows."""
    found = {path: re.findall(r"`|:(?:func|mod|class|meth|data):", parser.format_help())
             for path, parser in parsers(build_parser())}
    assert {path: marks for path, marks in found.items() if marks} == {}


def test_the_wheel_ships_py_typed() -> None:
    wheel = pytest.importorskip("hatchling.builders.wheel",
                                reason="hatchling (the build backend) is not installed")
    files = {f.distribution_path for f in wheel.WheelBuilder(str(ROOT)).recurse_included_files()}
    assert "mesh_nb/py.typed" in files and "mesh_nb/cli.py" in files
