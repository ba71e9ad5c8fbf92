"""From SQL text to one normalized sqlglot expression tree, and the texts the ledger keeps.

* :func:`parse` — exactly one statement in the DuckDB dialect, identifiers normalized the way
  DuckDB resolves them (case-insensitive, so lower-cased). Statements sqlglot cannot parse but
  that start with a known statement keyword (``EXPORT DATABASE ...``) come back as an
  :class:`~sqlglot.exp.Command`, as sqlglot itself does for unsupported syntax, so the policy
  can reject them by name; anything else unparsable is a ``parse`` violation.
* :func:`normalize` — the canonical text of a query (keywords upper-cased, identifiers
  lower-cased, whitespace and comments dropped).
* :func:`redact` — the canonical text with every literal replaced by ``?``: what the ledger may
  store, never a data value.
* :func:`query_hash` — sha256 of the canonical (not redacted) text: identical queries modulo
  whitespace, comments and keyword case hash the same.

:func:`redact` and :func:`query_hash` never raise, so a rejected query can be logged too: text
that does not parse (or holds several statements) falls back to its tokens, literals still
replaced; text that cannot even be tokenized redacts to :data:`UNREADABLE`.

Messages never quote the SQL: sqlglot's own error text shows the query around the error, which
may hold data values, so only the line and column are reported.
"""

from __future__ import annotations

import hashlib
import logging
import re
from contextlib import contextmanager
from typing import Iterator

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.tokens import Token, TokenType

from ..errors import PolicyViolation

DIALECT = "duckdb"

# Statement keywords that sqlglot may not parse in full; such a statement becomes a Command.
STATEMENT_KEYWORDS = frozenset({
    "ALTER", "ANALYZE", "ATTACH", "BEGIN", "CALL", "CHECKPOINT", "COMMENT", "COMMIT", "COPY",
    "CREATE", "DEALLOCATE", "DELETE", "DESCRIBE", "DETACH", "DROP", "EXECUTE", "EXPLAIN",
    "EXPORT", "FORCE", "GRANT", "IMPORT", "INSERT", "INSTALL", "LOAD", "MERGE", "PIVOT",
    "PRAGMA", "PREPARE", "RESET", "REVOKE", "ROLLBACK", "SET", "SHOW", "SUMMARIZE", "TRUNCATE",
    "UNPIVOT", "UPDATE", "USE", "VACUUM",
})

_FIX = "send one DuckDB SELECT statement over the contract tables"
UNREADABLE = "<unreadable query>"  # what redact() gives for text it cannot even tokenize
_NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
"""What no SQL text holds: C0 control characters other than tab and line breaks, DEL, and
lone surrogates (no store keeps them alike, and sqlglot passes them into names)."""
LITERAL_TOKENS = frozenset(getattr(TokenType, name) for name in (
    "STRING", "NUMBER", "NATIONAL_STRING", "RAW_STRING", "HEREDOC_STRING", "BIT_STRING",
    "HEX_STRING", "BYTE_STRING", "UNICODE_STRING") if hasattr(TokenType, name))


#: The deepest nesting of parentheses and CASE a query may have.
MAX_DEPTH = 24
#: The deepest expression tree a query may parse to (a long chain of ``a + b + ...`` or
#: ``OR`` is a deep tree too; every tree walk recurses per level).
MAX_TREE_DEPTH = 200


def too_deep() -> PolicyViolation:
    return PolicyViolation("expression-depth", f"the query nests parentheses, function calls or "
                           f"CASE more than {MAX_DEPTH} deep, or chains more than "
                           f"{MAX_TREE_DEPTH} operators", "write it flatter: fewer nested "
                           "parentheses and CASEs; IN (...) instead of a long chain of OR")


def tree_depth(tree: exp.Expression) -> int:
    """The depth of an expression tree, without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.iter_expressions())
    return deepest


def _depth(tokens: list[Token]) -> None:
    """Refuse a query nested deeper than :data:`MAX_DEPTH` before it is parsed (the parser
    and every tree walk recurse per level)."""
    depth = deepest = 0
    for t in tokens:
        if t.token_type in (TokenType.L_PAREN, TokenType.CASE):
            depth += 1
            deepest = max(deepest, depth)
        elif t.token_type in (TokenType.R_PAREN, TokenType.END):
            depth -= 1
    if deepest > MAX_DEPTH:
        raise too_deep()


def _plain_text(sql: str) -> None:
    """Refuse a control character or lone surrogate, saying where (never what is around it)."""
    bad = _NOT_TEXT.search(sql)
    if bad is None:
        return
    line = sql.count("\n", 0, bad.start()) + 1
    col = bad.start() - (sql.rfind("\n", 0, bad.start()) + 1) + 1
    code = ord(bad.group())
    what = "a lone surrogate" if 0xD800 <= code <= 0xDFFF else "a control character"
    raise PolicyViolation("parse", f"the query holds {what} (U+{code:04X}) at line {line}, "
                          f"column {col}",
                          "remove it: SQL is printable text, tabs and line breaks")


def parse(sql: str) -> exp.Expression:
    """Exactly one statement, parsed in the DuckDB dialect with normalized identifiers."""
    _plain_text(sql)
    dialect = Dialect.get_or_raise(DIALECT)
    try:
        tokens = dialect.tokenize(sql)
    except TokenError:
        raise PolicyViolation("parse", "sqlglot cannot read the query (an unclosed quote or "
                              "comment?)", _FIX) from None
    _depth(tokens)
    statements = _statements(tokens)
    if not statements:
        raise PolicyViolation("parse", "the query is empty", _FIX)
    if len(statements) > 1:
        raise PolicyViolation("one-statement", f"the query holds {len(statements)} statements",
                              "send one SELECT at a time: remove every `;` between statements")
    try:
        with _quiet_sqlglot():
            trees = [t for t in dialect.parser().parse(tokens, sql) if t is not None]
    except RecursionError:
        raise too_deep() from None
    except ParseError as e:
        keyword = statements[0][0].text.upper()
        if keyword in STATEMENT_KEYWORDS:
            return exp.Command(this=keyword, expression=exp.Literal.string(
                sql[statements[0][0].end + 1:].strip()))
        where = e.errors[0] if e.errors else {}
        raise PolicyViolation(
            "parse", f"sqlglot cannot parse the query (line {where.get('line', '?')}, "
            f"column {where.get('col', '?')})", _FIX) from None
    if len(trees) != 1:  # pragma: no cover - the token split above already counted
        raise PolicyViolation("one-statement", f"the query holds {len(trees)} statements", _FIX)
    if tree_depth(trees[0]) > MAX_TREE_DEPTH:
        raise too_deep()
    try:
        return normalize_identifiers(trees[0], dialect=DIALECT)
    except RecursionError:
        raise too_deep() from None


@contextmanager
def _quiet_sqlglot() -> Iterator[None]:
    """Mute sqlglot's logger: its "falling back to Command" warning quotes the whole query."""
    logger = logging.getLogger("sqlglot")
    disabled, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = disabled


def _statements(tokens: list[Token]) -> list[list[Token]]:
    """Tokens split at ``;``, empty statements dropped."""
    out: list[list[Token]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            out.append([])
        else:
            out[-1].append(token)
    return [s for s in out if s]


def sql_text(tree: exp.Expression, *, copy: bool = True) -> str:
    """The canonical text of a parsed tree (no comments); ``copy=False`` for a throwaway tree
    (the generator may rewrite the tree it renders)."""
    return tree.sql(dialect=DIALECT, comments=False, copy=copy)


def normalize(sql: str) -> str:
    """The canonical text of a query."""
    return sql_text(parse(sql))


def redact_tree(tree: exp.Expression) -> exp.Expression:
    """A copy of ``tree`` with every literal (string, number, boolean) replaced by ``?``."""
    if isinstance(tree, exp.Command):
        return exp.Command(this=tree.this)

    def placeholder(node: exp.Expression) -> exp.Expression:
        return exp.Placeholder() if isinstance(node, (exp.Literal, exp.Boolean)) else node

    return tree.transform(placeholder)


def redact(sql: str) -> str:
    """The canonical text with literals replaced by ``?`` — safe for the ledger."""
    try:
        return sql_text(redact_tree(parse(sql)))
    except PolicyViolation:
        if _NOT_TEXT.search(sql):
            return UNREADABLE
        return _token_text(sql, redacted=True) or UNREADABLE


def tree_hash(tree: exp.Expression) -> str:
    """sha256 (hex) of the canonical text of a parsed tree."""
    return text_hash(sql_text(tree))


def text_hash(text: str) -> str:
    """sha256 (hex) of a canonical text (:func:`sql_text`)."""
    return hashlib.sha256(text.encode()).hexdigest()


def query_hash(sql: str) -> str:
    """sha256 (hex) of the canonical, unredacted text of a query."""
    try:
        return tree_hash(parse(sql))
    except PolicyViolation:
        text = _token_text(sql, redacted=False) or sql.strip()
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _token_text(sql: str, *, redacted: bool) -> str | None:
    """The fallback text of a query that does not parse: its tokens, literals maybe as ``?``."""
    try:
        tokens = Dialect.get_or_raise(DIALECT).tokenize(sql)
    except TokenError:
        return None
    return " ".join("?" if redacted and t.token_type in LITERAL_TOKENS else t.text
                    for t in tokens)
