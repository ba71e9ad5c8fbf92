"""Column-name evidence: which entity a column's name suggests, with the usual exclusions.

``name_entity("cust_email")`` -> ``"EMAIL_ADDRESS"``; ``name_entity("user_name")`` -> ``None``
(a login, not a person's name); ``name_entity("c7")`` -> ``None``. The name only lowers the
share of values needed for a label; it never labels a column on its own.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .entities import NAME_CUE_ORDER, entity

__all__ = ["name_tokens", "name_entity", "names_birth"]


@lru_cache(maxsize=4096)
def name_tokens(name: str) -> tuple[str, ...]:
    """'StreetAddress' -> ('street', 'address'); 'cc_number' -> ('cc', 'number')."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", s)
    return tuple(t for t in re.split(r"[^A-Za-z0-9]+", s.lower()) if t)


# (entity, words that suggest it, words that cancel it), in the registry's cue order. A word
# matches a token exactly, or the squashed name ("insturl", "srcip") by suffix/prefix for the
# longer words.
_CUES = tuple((e.name, e.name_words, e.name_cancels) for e in map(entity, NAME_CUE_ORDER))


@lru_cache(maxsize=4096)
def name_entity(name: str) -> str | None:
    """The entity a column name suggests, or None."""
    toks = name_tokens(name)
    if not toks:
        return None
    squashed = "".join(toks)
    tokset = set(toks)
    for name, words, cancel in _CUES:
        hit = any(w in tokset for w in words)
        if not hit:
            hit = squashed in words or any(
                len(w) >= 4 and (squashed.endswith(w) or squashed.startswith(w)) for w in words)
            if not hit and name == "URL":
                hit = squashed.endswith(("url", "uri"))
        if not hit:
            continue
        if any(c in tokset for c in cancel):
            continue
        if name == "PERSON" and tokset <= {"first", "last", "middle", "given", "family"}:
            continue  # 'first', 'last' alone are not name cues
        return name
    return None


_BIRTH_WORDS = ("dob", "birth", "birthday", "birthdate", "born", "geburtsdatum", "geburtstag",
                "naissance", "nacimiento", "nascimento", "nascita")


@lru_cache(maxsize=4096)
def names_birth(name: str) -> bool:
    """The column (or JSON key) name says it holds dates of birth: 'dob', 'BirthDate', 'date_naissance'."""
    toks = name_tokens(name)
    squashed = "".join(toks)
    return any(w in toks or (len(w) >= 5 and w in squashed) for w in _BIRTH_WORDS)
