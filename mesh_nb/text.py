"""Text from a client, made safe for a log line or a terminal: visible escapes, bounded length."""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

#: Characters that move the cursor, end a line or reorder text although they are not C0/C1.
_INVISIBLE = frozenset("\u2028\u2029\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                       "\u2066\u2067\u2068\u2069\ufeff")


def _escaped(ch: str) -> str:
    if ch == "\\":
        return "\\\\"
    code = ord(ch)
    if ch in "\n\r\t":
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch]
    if code < 0x20 or 0x7f <= code < 0xa0:
        return f"\\x{code:02x}"
    if ch in _INVISIBLE or 0xd800 <= code <= 0xdfff or unicodedata.category(ch) == "Cc":
        return f"\\u{code:04x}"
    return ch


def escape(text: object, limit: int = 200) -> str:
    """``text`` with every control, line-separator and bidi character shown as an escape
    (``\\n``, ``\\x1b``, ``\\u2028``) and at most ``limit`` characters (``…`` when cut), so a
    client's text can never forge a line or colour a terminal."""
    out = "".join(_escaped(ch) for ch in str(text))
    return out if len(out) <= limit else out[:max(0, limit - 1)] + "…"


_ABSOLUTE = re.compile(r"(?<![\w.~/-])/(?:[\w.@+-]+/)*[\w.@+-]+")


def without_paths(text: str, root: str | os.PathLike | None = None) -> str:
    """``text`` with no absolute path of this machine: a path under ``root`` becomes relative
    to it (``customers/datacontract.yaml``), ``root`` itself "the mesh", any other path its
    last component — for messages that leave the server."""
    roots = []
    if root is not None:
        roots = sorted({str(root), str(Path(root).resolve())}, key=len, reverse=True)

    def public(match: re.Match) -> str:
        path = match.group(0)
        for r in roots:
            if path == r:
                return "the mesh"
            if path.startswith(r.rstrip("/") + "/"):
                return path[len(r.rstrip("/")) + 1:]
        return Path(path).name
    return _ABSOLUTE.sub(public, text)


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 entry``, ``2 entries``, ``12,345 rows``: the count with thousands separators and the
    noun in the number it takes (``nouns`` when adding "s" is wrong)."""
    many = nouns or (noun[:-1] + "ies" if noun.endswith("y") and noun[-2:-1] not in "aeiou"
                     else noun + "s")
    return f"{n:,} {noun if n == 1 else many}"
