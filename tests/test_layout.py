"""The package's layout, read from its imports with ``ast`` (no import is executed): no import
cycle between modules at import time, no private module used from outside its package, no
module importing another's ``_private`` name, and the core never importing a face (faces
register themselves: :func:`mesh_nb.display.register`)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mesh_nb"
FACES = ("mesh_nb.cli", "mesh_nb.magics", "mesh_nb.lab", "mesh_nb.widgets", "mesh_nb.display",
         "mesh_nb.demo_run", "mesh_nb.notebooks")
"""What a person touches: the CLI, the magics, the lab extension, widgets and notebooks."""
CORE = ("mesh_nb.contract", "mesh_nb.ledger", "mesh_nb.query", "mesh_nb.pii",
        "mesh_nb.governance", "mesh_nb.review", "mesh_nb.mesh", "mesh_nb.session",
        "mesh_nb.errors", "mesh_nb.rules", "mesh_nb.files", "mesh_nb.text", "mesh_nb.durations",
        "mesh_nb.values")


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the module imported from (or the module imported)
    name: str | None  # the name taken from it, if any
    top: bool  # at module level (runs at import time), not inside a function


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _absolute(source: str, is_package: bool, level: int, module: str | None) -> str:
    if level == 0:
        return module or ""
    base = source.split(".") if is_package else source.split(".")[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _top_level(tree: ast.Module) -> set[int]:
    """ids of import nodes that run at import time (module body, also under if/try)."""
    out: set[int] = set()
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.add(id(node))
        elif isinstance(node, ast.If) and _type_checking(node.test):
            stack.extend(node.orelse)  # the TYPE_CHECKING branch never runs
        elif isinstance(node, (ast.If, ast.Try)):
            stack.extend(ast.iter_child_nodes(node))
    return out


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


@cache
def imports() -> tuple[Import, ...]:
    modules = _modules()
    out: list[Import] = []
    for source, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        top = _top_level(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = _absolute(source, path.name == "__init__.py", node.level, node.module)
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    out.append(Import(source, sub if sub in modules else target, alias.name,
                                      id(node) in top))
            elif isinstance(node, ast.Import):
                out.extend(Import(source, a.name, None, id(node) in top) for a in node.names)
    return tuple(i for i in out if i.target.split(".")[0] == "mesh_nb")


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_the_reader_sees_the_package() -> None:
    found = imports()
    assert len(_modules()) > 80 and len(found) > 300
    assert Import("mesh_nb.query.parse", "mesh_nb.errors", "PolicyViolation", True) in found
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}) == [["a", "b", "c"]]


def test_no_import_cycle_at_import_time() -> None:
    modules = _modules()
    edges: dict[str, set[str]] = {}
    for i in imports():
        if i.top and i.target in modules and i.target != i.source:
            edges.setdefault(i.source, set()).add(i.target)
            # importing a submodule runs its package's __init__ first
            parent = i.target.rsplit(".", 1)[0]
            if parent in modules and not _within(i.source, (parent,)):
                edges[i.source].add(parent)
    assert _cycles(edges) == []


def test_no_private_module_is_used_outside_its_package() -> None:
    bad = sorted({(i.source, i.target) for i in imports()
                  if any(p.startswith("_") and not p.startswith("__")
                         for p in i.target.split(".")[1:])
                  and not _within(i.source, (i.target.rsplit(".", 1)[0],))})
    assert bad == [], "make the module public or move what is shared to a public one"


def test_the_core_imports_no_face() -> None:
    found = sorted({(i.source, i.target) for i in imports()
                    if _within(i.source, CORE) and _within(i.target, FACES)})
    assert found == [], "the core imports a face: let the face register itself (display.register)"


def test_no_module_imports_another_modules_private_name() -> None:
    found = sorted(f"{i.source} <- {i.target}.{i.name}" for i in imports()
                   if i.name and i.name.startswith("_") and not i.name.startswith("__"))
    assert found == [], "make the name public, or move what is shared to a public module"