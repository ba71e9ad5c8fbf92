"""Columns and expressions: every node of the query is on the whitelist, and every function
argument that sets how much work a function does (or can make it raise) is a bounded literal."""

from __future__ import annotations

import re

from sqlglot import exp

from ...rules import violation
from .scope import Draft
from .trees import func_name, parts
from .whitelist import (
    AGGREGATES,
    ANONYMOUS_SCALARS,
    EXPRESSION_NODES,
    FORMAT_PUNCTUATION,
    FORMAT_SPECIFIERS,
    MAX_DIGITS,
    MAX_LIKE_WILDCARDS,
    MAX_REGEXP_REPEATS,
    MAX_SIZE,
    NODE_RULES,
    PARSE_ONLY_EXCLUDED,
    PLACED,
    SCALAR_FUNCTIONS,
    SUPPORTED_AGGREGATES,
)


def whitelisted_nodes(draft: Draft) -> Draft:
    """Every expression of the SELECT (not its FROM) holds only whitelisted nodes, and
    functions with bounded literal arguments (rules ``window-function``, ``subquery``,
    ``set-operation``, ``aggregate-filter``, ``grouping-sets``, ``parameter``,
    ``select-star``, ``unsupported-syntax``, ``unknown-function``, ``unsupported-aggregate``,
    ``size-argument``, ``growing-replace``, ``format-literal``, ``regexp-pattern``,
    ``like-pattern``)."""
    for part in parts(draft.select):
        check_nodes(part)
    return draft


def check_nodes(node: exp.Expression | None) -> None:
    """Every node is a whitelisted expression or function."""
    if node is None:
        return
    for n in node.walk():
        for klass, rule, what, fix in NODE_RULES:
            if isinstance(n, klass):
                raise violation(rule, what, fix)
        if isinstance(n, exp.Star):
            if not isinstance(n.parent, exp.Count):
                raise violation("select-star", "SELECT * is not allowed")
        elif isinstance(n, EXPRESSION_NODES):  # before Func: AND, OR are sqlglot Funcs too
            if not all(placed(n) for klass, placed in PLACED if isinstance(n, klass)):
                raise violation("unsupported-syntax", f"`{n.key}` is not supported here")
            if isinstance(n, (exp.Like, exp.ILike)):
                _check_like(n)
        elif isinstance(n, exp.Func):
            _check_function(n)
        else:
            raise violation("unsupported-syntax", f"`{n.key}` expressions are not supported")


def _check_function(node: exp.Func) -> None:
    if type(node) in AGGREGATES:
        return
    name = func_name(node)
    if isinstance(node, SCALAR_FUNCTIONS) or (isinstance(node, exp.Anonymous)
                                             and name in ANONYMOUS_SCALARS):
        _check_arguments(node, name)
        return
    if isinstance(node, exp.AggFunc):
        raise violation("unsupported-aggregate", f"aggregate `{name}` is not supported",
                        f"use {SUPPORTED_AGGREGATES}")
    raise violation("unknown-function", f"function `{name}` is not on the whitelist")


# --------------------------------------------------------------------------- totality
# What TRY cannot make total (mesh_nb.query.total): work that follows an argument, and
# patterns or formats that raise, or backtrack, on Spark only for the rows that reach them.


def _int_in(node: exp.Expression | None, lo: int, hi: int) -> bool:
    node = node.unnest() if node is not None else None
    sign = 1
    if isinstance(node, exp.Neg):
        node, sign = node.this, -1
    return (isinstance(node, exp.Literal) and node.is_int
            and lo <= sign * int(node.this) <= hi)


def _string(node: exp.Expression | None) -> str | None:
    """The text of a string literal, else None."""
    node = node.unnest() if node is not None else None
    return node.this if isinstance(node, exp.Literal) and node.is_string else None


def _check_arguments(node: exp.Func, name: str) -> None:
    """Arguments a whitelisted function may only take as (bounded) literals."""
    if isinstance(node, exp.Pad):
        if not _int_in(node.expression, 0, MAX_SIZE):
            raise violation("size-argument", f"the length of `{name}` must be an integer "
                            f"literal from 0 to {MAX_SIZE}: a length built from data, or a "
                            "huge one, makes one row cost seconds",
                            f"write the length as a number up to {MAX_SIZE}")
    digits = (node.args.get("decimals") if isinstance(node, (exp.Round, exp.Trunc))
              else node.expressions[1] if name == "round_even" and len(node.expressions) > 1
              else None)
    if digits is not None and not _int_in(digits, -MAX_DIGITS, MAX_DIGITS):
        raise violation("size-argument", f"the digits of `{name}` must be an integer literal "
                        f"from -{MAX_DIGITS} to {MAX_DIGITS}",
                        f"write the digits as a number between -{MAX_DIGITS} and {MAX_DIGITS}")
    if isinstance(node, exp.Replace):
        pattern, replacement = _string(node.expression), _string(node.args.get("replacement"))
        if pattern is None or replacement is None or len(replacement) > len(pattern):
            raise violation("growing-replace", "`replace` needs a literal pattern and a literal "
                            "replacement no longer than the pattern: a growing replace, nested, "
                            "doubles a string at every level")
    unit = (node.expressions[0] if name in ("date_part", "datepart") and node.expressions
            else node.args.get("unit") if isinstance(node, (exp.TimestampTrunc, exp.DateTrunc,
                                                            exp.DateDiff)) else None)
    if unit is not None and not (isinstance(unit, exp.Var) or _string(unit) is not None):
        raise violation("format-literal", f"the date part of `{name}` must be a literal such as "
                        "'month': a unit built from data is invalid for some rows",
                        "write the unit as a literal: 'year', 'month', 'day', ...")
    if type(node).__name__.startswith("Regexp"):
        _check_regexp(node, name)
    if isinstance(node, (exp.TimeToStr, exp.StrToTime, exp.StrToDate)):
        fmt = _string(node.args.get("format"))
        problem = ("it is not a string literal" if fmt is None
                   else _format_problem(fmt, parse=not isinstance(node, exp.TimeToStr)))
        if problem:
            raise violation("format-literal", f"the format of `{name}` cannot be used: {problem}",
                            "write the format as a string literal of specifiers "
                            f"({' '.join(sorted(FORMAT_SPECIFIERS))}) and the separators "
                            f"`{''.join(sorted(FORMAT_PUNCTUATION))}`")


def _format_problem(fmt: str, *, parse: bool) -> str | None:
    """Why a strftime (or, ``parse``, strptime) format is not one both engines read."""
    for piece in re.findall(r"%-?.|.", fmt, flags=re.S):
        if piece.startswith("%"):
            if piece not in FORMAT_SPECIFIERS or (parse and piece in PARSE_ONLY_EXCLUDED):
                return "it holds a specifier outside the supported list"
        elif piece not in FORMAT_PUNCTUATION and not piece.isdigit():
            return "it holds a character other than a specifier, a digit or a separator"
    return None


def _check_regexp(node: exp.Func, name: str) -> None:
    fix = ("write the pattern as a string literal without groups or alternation, with at most "
           f"{MAX_REGEXP_REPEATS} variable repeat (*, +, ?, {{m,n}}); or use LIKE, "
           "starts_with, ends_with, contains")
    pattern = _string(node.expression)
    if pattern is None:
        raise violation("regexp-pattern", f"the pattern of `{name}` must be a string literal: "
                        "a pattern built from data can fail to compile for one row", fix)
    for key in ("flag", "modifiers", "parameters"):
        if node.args.get(key) is not None and _string(node.args[key]) is None:
            raise violation("regexp-pattern", f"the options of `{name}` must be a string "
                            "literal", "write the options as a literal such as 'i'")
    problem = _regexp_problem(pattern)
    if problem:
        raise violation("regexp-pattern", f"the pattern of `{name}` cannot be used: {problem} "
                        "(Spark's backtracking regex can take time exponential in a value's "
                        "length, or violation what DuckDB accepts, for the rows that reach it)",
                        fix)


_REPEAT = re.compile(r"\{(\d{1,4})(,(\d{0,4}))?\}")
_CLASS_ESCAPES = frozenset("dDwWsS")


def _escape_problem(pattern: str, i: int) -> str | None:
    if i + 1 >= len(pattern):
        return "it ends with a backslash"
    nxt = pattern[i + 1]
    if nxt.isdigit():
        return "it holds a backreference"
    if nxt.isalnum() and nxt not in _CLASS_ESCAPES:
        return ("it holds a letter escape other than \\d \\w \\s (the engines read them "
                "differently)")
    return None


def _regexp_problem(pattern: str) -> str | None:
    """Why a literal regexp is outside the subset that RE2 (DuckDB) and Java (Spark) both
    read and match in time polynomial of low degree; None when it is inside.

    The subset: characters, ``.``, escapes of punctuation and ``\\d \\w \\s`` (and their
    negations), bracket classes without nesting, ``^``, ``$``, and at most
    :data:`MAX_REGEXP_REPEATS` variable repeats; no groups, alternation, backreferences.
    """
    i, repeats, atom = 0, 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            problem = _escape_problem(pattern, i)
            if problem:
                return problem
            i, atom = i + 2, True
        elif c == "[":
            j = i + 1
            if j < len(pattern) and pattern[j] == "^":
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                j += 1
            while j < len(pattern) and pattern[j] != "]":
                if pattern[j] == "\\":
                    problem = _escape_problem(pattern, j)
                    if problem:
                        return problem
                    j += 2
                    continue
                if pattern[j] == "[" or pattern.startswith("&&", j):
                    return "a bracket class holds `[` or `&&`"
                j += 1
            if j >= len(pattern):
                return "a bracket class is not closed"
            i, atom = j + 1, True
        elif c in "()|":
            return "groups and alternation are not supported"
        elif c in "*+?" or c == "{":
            if not atom:
                return "a repeat follows no character (or another repeat)"
            if c == "{":
                m = _REPEAT.match(pattern, i)
                if not m:
                    return "`{` starts no repeat {m} or {m,n}"
                lo, comma, hi = int(m.group(1)), m.group(2), m.group(3)
                if hi and int(hi) < lo or max(lo, int(hi or 0)) > 1000:
                    return "a repeat {m,n} is out of order or above 1000"
                repeats += bool(comma) and (not hi or int(hi) != lo)
                i = m.end()
            else:
                repeats += 1
                i += 1
            atom = False
        elif c in "}]":
            return "an unescaped `}` or `]` stands alone"
        else:
            i, atom = i + 1, c not in "^$"
    if repeats > MAX_REGEXP_REPEATS:
        return f"it has {repeats} variable repeats (at most {MAX_REGEXP_REPEATS})"
    return None


def _check_like(node: exp.Like | exp.ILike) -> None:
    """LIKE/ILIKE: a literal pattern, well-formed escapes, few `%`."""
    kind = "ILIKE" if isinstance(node, exp.ILike) else "LIKE"
    fix = (f"write the {kind} pattern as a string literal with at most {MAX_LIKE_WILDCARDS} "
           "`%`; escape `%` or `_` with ESCAPE '\\' (or another one-character literal); or "
           "use starts_with, ends_with, contains")
    pattern = _string(node.expression)
    if pattern is None:
        raise violation("like-pattern", f"the {kind} pattern must be a string literal: a pattern "
                        "built from data can be malformed (Spark raises) for one row", fix)
    escape_node = node.parent.expression if isinstance(node.parent, exp.Escape) else None
    escape = _string(escape_node) if escape_node is not None else None
    if escape_node is not None and (escape is None or len(escape) != 1):
        raise violation("like-pattern", f"the ESCAPE of {kind} must be a one-character string "
                        "literal", fix)
    wildcards, i = 0, 0
    while i < len(pattern):
        c = pattern[i]
        if escape is not None and c == escape:
            if i + 1 >= len(pattern) or pattern[i + 1] not in ("%", "_", escape):
                raise violation("like-pattern", f"the {kind} pattern has an escape character "
                                "that precedes no `%`, `_` or itself (Spark raises on it)", fix)
            i += 2
            continue
        if escape is None and c == "\\":
            raise violation("like-pattern", f"the {kind} pattern holds a backslash without an "
                            "ESCAPE clause: Spark reads it as an escape, DuckDB as a character",
                            fix)
        wildcards += c == "%"
        i += 1
    if wildcards > MAX_LIKE_WILDCARDS:
        raise violation("like-pattern", f"the {kind} pattern has {wildcards} `%` wildcards (at "
                        f"most {MAX_LIKE_WILDCARDS}): Spark's backtracking match of many `%` "
                        "costs seconds on one long value", fix)
