"""YAML with line numbers: the parsed document plus where every field path starts.

Validators report problems by field path (``("schema", 0, "properties", 2, "name")``); this
module turns such a path into the line of the YAML file it came from, so every message can say
``file:line``. PyYAML keeps the last of two equal keys without a word; we report them instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import Problem

FieldPath = tuple[str | int, ...]


@dataclass
class YamlSource:
    """A parsed YAML file and the 1-based line of each field path in it."""

    file: str
    data: Any
    lines: dict[FieldPath, int] = field(default_factory=dict)
    key_lines: dict[FieldPath, int] = field(default_factory=dict)

    def line(self, path: FieldPath) -> int | None:
        """Line of the deepest node on ``path`` that exists (key line preferred)."""
        path = tuple(path)
        while True:
            if path in self.key_lines:
                return self.key_lines[path]
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]

    def problem(self, path: FieldPath, what: str, fix: str) -> Problem:
        return Problem(self.file, self.line(path), dotted(path), what, fix)


def dotted(path: FieldPath) -> str:
    """``("schema", 0, "name")`` -> ``schema[0].name``; empty path -> ``(document)``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def column_path(src: YamlSource, table: str, column: str) -> FieldPath | None:
    """Field path of a column (``schema[t].properties[c]``) in a contract's YAML."""
    for ti, t in enumerate((src.data or {}).get("schema") or []):
        if isinstance(t, dict) and t.get("name") == table:
            for ci, c in enumerate(t.get("properties") or []):
                if isinstance(c, dict) and c.get("name") == column:
                    return ("schema", ti, "properties", ci)
    return None


def contract_source(path: Path) -> YamlSource | None:
    """The contract's YAML with line numbers (None if it cannot be read any more)."""
    src, _ = read_yaml(Path(path))
    return src


def read_yaml(path: Path, display: str | None = None) -> tuple[YamlSource | None, list[Problem]]:
    """Parse ``path``; returns the source (None when it cannot be parsed) and any problems."""
    name = display or str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(name, None, "(file)", f"cannot be read ({type(exc).__name__})",
                              "check the path and that the file is UTF-8 text")]
    return parse_yaml(text, name)


def parse_yaml(text: str, name: str) -> tuple[YamlSource | None, list[Problem]]:
    """Parse YAML ``text``; ``name`` is the source its problems name (a file, a product)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return None, [syntax_problem(exc, text, name)]
    src = YamlSource(name, data)
    problems: list[Problem] = []
    if node is not None:
        _walk(node, (), src, problems)
    if not isinstance(data, dict):
        problems.append(Problem(name, 1, "(document)", "is not a mapping",
                                "a contract is a YAML mapping starting with `apiVersion:`"))
    return src, problems


def syntax_problem(exc: yaml.YAMLError, text: str, name: str) -> Problem:
    """A YAML syntax error as a problem naming its line and the structure mistake behind it:
    a tab, a line deeper than the block it follows, a list item among mapping keys."""
    mark, context = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    what = str(getattr(exc, "problem", None) or "is not valid YAML")
    lines = text.splitlines()
    here = lines[line - 1] if line and line <= len(lines) else ""
    fix = "fix the indentation or quoting on that line"
    if "\t" in what or "\t" in here[: len(here) - len(here.lstrip())]:
        what, fix = ("a tab indents this line; YAML indents with spaces only",
                     "replace the tab with spaces, lining the key up with its siblings")
    elif "expected <block end>" in what and line:
        above = next((i for i in range(line - 1, 0, -1)
                      if lines[i - 1].strip() and not lines[i - 1].lstrip().startswith("#")),
                     None)
        block = context.line + 1 if context is not None else None
        if "'?'" in what or "'<block mapping start>'" not in what and block:
            what = (f"a `key:` line where the list started on line {block} expects `- ` items "
                    "(or a list item where a mapping's keys belong)")
            fix = (f"if the block is a mapping, remove the `- ` on line {block}; if it is a "
                   f"list, start line {line} with `- `")
        elif above:
            what = (f"this line is indented deeper than line {above} above it, which opens no "
                    "block: one of the two is mis-indented")
            fix = (f"give lines {above} and {line} the same indentation if they are fields of "
                   f"one block (or end line {above} with a key whose block this line is)")
    elif "mapping values are not allowed" in what:
        fix = ("quote the value if it holds `: ` (`key: 'a: b'`), or put this key on its own "
               "line, indented like its siblings")
    elif "could not find expected ':'" in what:
        fix = ("add the `:` after the key, or indent a long value that continues on the next "
               "line deeper than its key (or quote it)")
    return Problem(name, line, "(yaml)", f"YAML syntax error: {what}", fix)


def _walk(node: yaml.Node, path: FieldPath, src: YamlSource, problems: list[Problem]) -> None:
    src.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(Problem(
                    src.file, line, dotted(path + (key,)),
                    f"duplicate key (first on line {seen[key]}); YAML keeps only the last",
                    "remove one of the two — or, if they belong to two blocks (two list items, "
                    f"two purposes), the second one's `- ` or indentation is missing above line "
                    f"{line}"))
            seen[key] = line
            src.key_lines[path + (key,)] = line
            _walk(value_node, path + (key,), src, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, path + (i,), src, problems)
