"""Value-level checks: cheap vectorized shape prefilters, then exact validators.

Every function here takes the sampled distinct values of one column as a pandas ``Series`` of
``str`` (already stripped, no nulls) and returns a boolean numpy array, one entry per value.
Shape prefilters use pandas' vectorized ``.str`` methods; validators (checksums, gazetteers,
``phonenumbers``) run only on the values a prefilter let through.

Nothing here logs or raises with a value in the message.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

import numpy as np
import pandas as pd

from .gazetteer import fold, gazetteer, is_cjk

# --------------------------------------------------------------------------------------------
# shapes (vectorized)
# --------------------------------------------------------------------------------------------

EMAIL_RE = (r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]+)*"
            r"@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")
URL_RE = (r"(?:(?:https?|ftp)://)?(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)+"
          r"[A-Za-z]{2,63}\.?(?::\d{1,5})?(?:[/?#][^\s]*)?")
IPV4_RE = r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV6_SHAPE = r"[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.%a-zA-Z0-9]*"
IPV4_PORT_RE = IPV4_RE + r"(?::\d{1,5})?"  # a socket address: '81.29.51.11:8020'
IPV6_PORT_SHAPE = r"\[[0-9A-Fa-f:.%a-zA-Z0-9]+\](?::\d{1,5})?"  # '[2a02:8108::1]:443'
ZIP4_RE = r"\d{5}-\d{4}"
"""A US ZIP+4 code ('68470-3056'): nine digits a phone plan may accept, never a phone's grouping."""
PHONE_RE = r"\+?(?:\d|\(\d{1,5}\))[\d\s().\-/]{4,22}\d(?:\s*(?:x|ext\.?|#)\s*\d{1,6})?"
CARD_RE = r"\d(?:[ \-]?\d){11,18}"
SSN_FORMATTED_RE = r"\d{3}([- ])\d{2}\1\d{4}"
IBAN_RE = r"[A-Za-z]{2}\d{2}(?:[ ]?[A-Za-z0-9]){11,30}"
ZIP_RE = (r"\d{5}(?:-\d{4})?|\d{4}|\d{3} ?\d{2}|\d{5}-\d{3}|\d{2}-\d{3}|[A-Za-z]\d[A-Za-z] ?\d[A-Za-z]\d"
          r"|[A-Za-z]{1,2}\d[A-Za-z\d]? ?\d[A-Za-z]{2}")
UUID_RE = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
HEX_RE = r"(?:0x)?(?=[0-9]*[a-fA-F])[0-9a-fA-F]{16,}"

_MONTHS = ("jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
           r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?")
_DAYS = "mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:r(?:s(?:day)?)?)?|fri(?:day)?|sat(?:urday)?|sun(?:day)?"
_TIME = r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[AaPp]\.?[Mm]\.?)?(?:\s*(?:Z|UTC|GMT|[+\-]\d{2}:?\d{2}))?)?"
DATE_PATTERNS = [
    # ISO and year-first: 2021-03-04, 2021/3/4, with an optional time
    (re.compile(r"(\d{4})[\-/.](\d{1,2})[\-/.](\d{1,2})" + _TIME + r"Z?", re.I), "ymd"),
    # day or month first: 03/04/2021, 3.4.21, 04-03-2021 14:43
    (re.compile(r"(\d{1,2})[\-/.](\d{1,2})[\-/.](\d{2}|\d{4})" + _TIME, re.I), "amb"),
    # month names: March 4, 2021 / 4 March 2021 / Mar-21 / Jan 2020 / Tuesday, March 4, 2021
    (re.compile(rf"(?:(?:{_DAYS}),?\s+)?(?:{_MONTHS})\.?[\s\-]+\d{{1,2}}(?:st|nd|rd|th)?,?[\s\-]+\d{{2,4}}" + _TIME, re.I), "text"),
    (re.compile(rf"(?:(?:{_DAYS}),?\s+)?\d{{1,2}}(?:st|nd|rd|th)?[\s\-.]+(?:{_MONTHS})\.?[\s\-.,]+\d{{2,4}}" + _TIME, re.I), "text"),
    (re.compile(rf"(?:{_MONTHS})\.?[\s\-/]+(?:\d{{2}}|\d{{4}})", re.I), "text"),
    (re.compile(rf"(?:{_DAYS})\.?", re.I), "text"),
    (re.compile(r"(?:19|20)\d{2}", re.I), "year"),
]


def fullmatch(values: pd.Series, pattern: str) -> np.ndarray:
    """Vectorized full match of a regex over the values."""
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    return values.str.fullmatch(pattern).to_numpy(dtype=bool, na_value=False)


def digits_only(values: pd.Series) -> pd.Series:
    return values.str.replace(r"\D", "", regex=True)


# --------------------------------------------------------------------------------------------
# checksums and rules
# --------------------------------------------------------------------------------------------


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_brand(digits: str) -> str | None:
    """Issuer by IIN range and length, including the ranges presidio's regex misses."""
    n = len(digits)
    if not 12 <= n <= 19:
        return None
    d1, d2, d4, d6 = int(digits[:1]), int(digits[:2]), int(digits[:4]), int(digits[:6])
    if d1 == 4 and n in (13, 16, 19):
        return "visa"
    if (51 <= d2 <= 55 or 2221 <= d4 <= 2720) and n == 16:
        return "mastercard"
    if d2 in (34, 37) and n == 15:
        return "amex"
    if (d4 == 6011 or 644 <= int(digits[:3]) <= 649 or d2 == 65 or 622126 <= d6 <= 622925) and n >= 16:
        return "discover"
    if (300 <= int(digits[:3]) <= 305 or d4 == 3095 or d2 in (36, 38, 39)) and n >= 14:
        return "diners"
    if (3528 <= d4 <= 3589 and n >= 16) or (d4 in (2131, 1800) and n in (15, 16)):
        return "jcb"
    if 2200 <= d4 <= 2204 and n == 16:
        return "mir"
    if d2 == 62 and n >= 16:
        return "unionpay"
    if (d2 == 50 or 56 <= d2 <= 69) and n >= 12:
        return "maestro"
    if d2 in (60, 81, 82) and n == 16:
        return "rupay"
    return None


def card_ok(digits: str) -> bool:
    return card_brand(digits) is not None and luhn_ok(digits)


# IBAN length per country (SWIFT IBAN registry).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}


def iban_ok(value: str) -> bool:
    s = value.replace(" ", "").upper()
    if IBAN_LENGTHS.get(s[:2]) != len(s) or not s[2:4].isdigit() or not s.isalnum():
        return False
    rearranged = s[4:] + s[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


_SSN_INVALID = {"078051120", "219099999", "123456789", "111111111", "222222222", "333333333",
                "444444444", "555555555", "666666666", "777777777", "888888888", "999999999",
                "000000000"}


def ssn_ok(digits: str) -> bool:
    if len(digits) != 9 or digits in _SSN_INVALID:
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def ssn_column(digits: list[str]) -> bool:
    """Nine-digit strings that are all valid SSNs over many areas: a column of bare SSNs. Random
    nine-digit numbers fail one time in nine (area 9xx), so a sample of 30+ that never fails is
    not a column of random numbers; sequential ids share one or two areas."""
    if len(digits) < 30 or not all(len(d) == 9 and d.isdigit() for d in digits):
        return False
    return all(ssn_ok(d) for d in digits) and len({d[:3] for d in digits}) >= 20


def ip_ok(value: str) -> bool:
    if value.startswith("["):  # '[v6]:port'
        value = value[1:].split("]", 1)[0]
    try:
        ipaddress.ip_address(value.split("%")[0] if ":" in value else value)
        return True
    except ValueError:
        return False


# --------------------------------------------------------------------------------------------
# offline public-suffix check (tldextract's bundled snapshot, never the network)
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def offline_tldextract():
    """A ``tldextract.TLDExtract`` that only uses the suffix list bundled with the package."""
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@lru_cache(maxsize=4096)
def has_public_suffix(host: str) -> bool:
    try:
        r = offline_tldextract()(host)
    except Exception:
        return False
    return bool(r.suffix) and bool(r.domain)


_SPELLED_HINT = re.compile(r"(?i)[\s\[(<{]at[\s\])>}]")
_SPELLED = ((re.compile(r"(?i)\s*[\[(<{]\s*at\s*[\])>}]\s*"), "@"),
            (re.compile(r"(?i)\s*[\[(<{]\s*dot\s*[\])>}]\s*"), "."),
            (re.compile(r"(?i)\s+at\s+"), "@"), (re.compile(r"(?i)\s+dot\s+"), "."))


def spelled_out_emails(values: list[str]) -> tuple[list[str], int]:
    """E-mail addresses spelled out against harvesting bots ('anna at web dot de',
    'anna [at] web [dot] de', 'anna(at)web.de') written as addresses; the rest unchanged. Returns
    the values and how many were rewritten (a value is only rewritten when the result is a whole
    e-mail address)."""
    if not values:
        return values, 0
    V = pd.Series(values, dtype=object)
    hint = V.str.contains(_SPELLED_HINT).to_numpy(dtype=bool, na_value=False)
    if not hint.any():
        return values, 0
    W = V[hint]
    for pattern, repl in _SPELLED:
        W = W.str.replace(pattern, repl, regex=True)
    ok = W.str.fullmatch(EMAIL_RE).to_numpy(dtype=bool, na_value=False)
    if not ok.any():
        return values, 0
    out = list(values)
    for i, new in zip(np.flatnonzero(hint)[ok], W[ok]):
        out[i] = new
    return out, int(ok.sum())


def email_ok(value: str) -> bool:
    return has_public_suffix(value.rsplit("@", 1)[-1].lower())


_FILE_EXTENSIONS = frozenset("py md sh rs pl cc so ai ps mk ms ml js ts zip gz rar exe dll csv txt "
                             "pdf doc docx xls xlsx png jpg jpeg gif svg json xml html htm log "
                             "bak tmp dat bin cfg ini yml yaml java cpp rb go php".split())


def url_ok(value: str) -> bool:
    v = value.strip()
    lower = v.lower()
    has_scheme = "://" in lower
    rest = lower.split("://", 1)[1] if has_scheme else lower
    host = re.split(r"[/:?#]", rest, maxsplit=1)[0].rstrip(".")
    if not host or "." not in host:
        return False
    tld = host.rsplit(".", 1)[-1]
    if not has_scheme and not host.startswith("www.") and "/" not in rest and tld in _FILE_EXTENSIONS:
        return False
    return has_public_suffix(host)


# --------------------------------------------------------------------------------------------
# phone numbers (phonenumbers, adaptive region order)
# --------------------------------------------------------------------------------------------

PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN", "CA", "BR", "IT", "ES", "NL", "AU", "BE", "CH",
                 "AT", "SE", "DK", "NO", "FI", "PL", "CZ", "HU", "PT", "JP", "MX", "RU", "IE")


class PhoneChecker:
    """Validates numbers with ``phonenumbers``; regions that worked move to the front."""

    def __init__(self, max_regions: int = 12):
        self.order = list(PHONE_REGIONS[:max_regions])

    def __call__(self, value: str) -> bool:
        import phonenumbers

        v = value.strip()
        if v.startswith("00"):
            v = "+" + v[2:]
        try:
            if v.startswith("+"):
                return phonenumbers.is_valid_number(phonenumbers.parse(v, None))
            order = self.order
            if v.isdigit() and not v.startswith("0"):
                # a bare digit string is valid *somewhere* far too often (8-10 digit numbers
                # in many numbering plans): only the North American plan counts for it
                order = ["US"]
            for i, region in enumerate(order):
                try:
                    n = phonenumbers.parse(v, region)
                except phonenumbers.NumberParseException:
                    continue
                if phonenumbers.is_valid_number(n):
                    if i and order is self.order:
                        self.order.insert(0, self.order.pop(i))
                    return True
        except Exception:
            return False
        return False


def e164_ok(digits: str) -> bool:
    """A bare digit string, country code first (an MSISDN: '4915112345678'), is a valid number."""
    import phonenumbers

    if not 10 <= len(digits) <= 15 or digits[0] == "0":
        return False
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse("+" + digits, None))
    except Exception:
        return False


# --------------------------------------------------------------------------------------------
# dates
# --------------------------------------------------------------------------------------------

CLOCK_RE = r".*\d{1,2}:\d{2}:\d{2}.*"
"""A time of day to the second: the clock of an event log, not a person's date."""

CLOCK_MINUTE_RE = r".*\d{1,2}:\d{2}(?![:\d]).*"
"""A time of day to the minute: a booked slot, a visit -- or a date-time of a person's life."""

EVENT_YEARS = 5
"""Date-times to the minute within this many years are the clock of events (a clinic's
appointments, a shop's orders); spread over decades they are dates of people's lives."""


def year_span(values: list[str]) -> int:
    """Years between the earliest and the latest four-digit year (1900-2099) in the values."""
    years = [int(m.group()) for m in map(_YEAR.search, values) if m]
    return max(years) - min(years) if years else 0


_YEAR = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)")


def date_kind(value: str) -> str | None:
    """'strong' for a calendar date (with or without time), 'weak' for a bare year or weekday."""
    for pattern, kind in DATE_PATTERNS:
        m = pattern.fullmatch(value)
        if not m:
            continue
        if kind == "ymd":
            mo, d = int(m.group(2)), int(m.group(3))
            if 1 <= mo <= 12 and 1 <= d <= 31:
                return "strong"
            return None
        if kind == "amb":
            a, b = int(m.group(1)), int(m.group(2))
            if (1 <= a <= 12 and 1 <= b <= 31) or (1 <= b <= 12 and 1 <= a <= 31):
                return "strong"
            return None
        if kind == "year":
            return "weak"
        return "strong" if any(ch.isdigit() for ch in value) else "weak"
    return None


# --------------------------------------------------------------------------------------------
# people, places, street addresses (gazetteers)
# --------------------------------------------------------------------------------------------

# letters and the combining marks of scripts that write vowels as marks (Arabic, Hebrew points,
# the Indic scripts, Thai and Lao, Myanmar, Khmer): 'วิชัย' is one word, not three
_L = (r"(?:[^\W\d_]|[\u0300-\u036f\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0900-\u0dff"
      r"\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff])")
_TOKEN = re.compile(rf"{_L}+(?:['’\-]{_L}+)*\.?")
_HONORIFICS = frozenset("mr mrs ms miss mx dr prof sir dame lady lord herr frau fr hr mme mlle m "
                        "sr sra srta dona don jr sr ii iii iv phd md esq rev".split())
_NAME_VALUE = re.compile(r"[^\W\d_][^\d@/:;=_#$%*+<>\[\]{}|\\^~!?\"]{0,60}")


def _tokens(value: str) -> list[str]:
    return [t.rstrip(".") for t in _TOKEN.findall(value)]


def person_match(value: str) -> str | None:
    """'full' (name tokens in the name lists), 'part' (name-shaped, some tokens known),
    'company' (carries a legal form such as LLC, GmbH, S.A., et Fils), or None."""
    if not _NAME_VALUE.fullmatch(value):
        return None
    g = gazetteer()
    if is_cjk(value) and 2 <= len(value) <= 4:
        return _cjk_name(fold(value), g)
    toks = [fold(t) for t in _tokens(value)]
    toks = [t for t in toks if t not in _HONORIFICS]
    words = [_unarticle(t, g) for t in toks if len(t) > 1 or is_cjk(t)]
    if not 1 <= len(words) <= 4 or len(toks) > 6:
        return None
    if any(w in g.legal_forms for w in toks) or "&" in value:
        return "company"
    if any(w in g.company_words or w in g.job_words for w in words):
        return None
    if any(w in g.street_words for w in words) and len(words) > 1:
        return None
    known = [w in g.first_names or w in g.last_names for w in words]
    if len(words) == 1:
        return "full" if known[0] else None
    first_ok = words[0] in g.first_names or words[-1] in g.first_names
    last_ok = words[-1] in g.last_names or words[0] in g.last_names
    if all(known) or (first_ok and last_ok):
        return "full"
    if first_ok or last_ok or sum(known) * 2 >= len(words):
        return "part"
    return None


def _unarticle(word: str, g) -> str:
    """An Arabic surname with the article ('الشامي') is looked up without it when only that is known."""
    if word.startswith("ال") and len(word) > 3 and word not in g.last_names and word[2:] in g.last_names:
        return word[2:]
    return word


def _cjk_name(value: str, g) -> str | None:
    """'王伟', '김민준', '佐々木学': a known surname of one or two characters, then a known given
    name ('full'), or a surname and one or two more characters ('part')."""
    if value in g.first_names:  # a bare given name: '준호', '和也'
        return "full"
    for k in (2, 1):
        surname, given = value[:k], value[k:]
        if not given or surname not in g.last_names:
            continue
        if given in g.first_names or all(ch in g.first_names for ch in given):
            return "full"
    return "part" if value[:1] in g.last_names and len(value) <= 3 else None


GIVEN_CHAR_SHARE = 0.55
"""Share of the characters of a column of short CJK values that must be characters of known
given names for the column to be read as bare given names (given names run around 0.6-0.9;
common nouns, products, statuses around 0.15-0.3)."""

_given_chars_cache: dict[int, frozenset[str]] = {}


def _given_chars(g) -> frozenset[str]:
    """The characters written in the known CJK given names (Chinese characters, kana, hangul)."""
    chars = _given_chars_cache.get(id(g))
    if chars is None:
        chars = frozenset(ch for name in g.first_names if is_cjk(name) for ch in name)
        _given_chars_cache.clear()
        _given_chars_cache[id(g)] = chars
    return chars


def cjk_given_names(values: list[str]) -> np.ndarray:
    """Bare given names in Chinese characters, kana or hangul ('수진', '陽菜', 'さくら'), told by
    their characters rather than by the list: given names are drawn from a small stock of
    characters, so a column of one-to-four-character values whose characters are mostly from
    the stock of known given names is a column of given names, even where few of the names
    themselves are on the list. A column-level test: all False unless 80% of the values are such
    short values, 15 or more of them (fewer is a category), and :data:`GIVEN_CHAR_SHARE` of their
    characters are given-name characters. Known places never count."""
    out = np.zeros(len(values), dtype=bool)
    short = np.array([len(v) <= 4 and is_cjk(v) for v in values], dtype=bool)
    if not len(values) or short.mean() < 0.8 or short.sum() < 15:
        return out
    g = gazetteer()
    inv = _given_chars(g)
    chars = "".join(v for v, s in zip(values, short) if s)
    if sum(ch in inv for ch in chars) < GIVEN_CHAR_SHARE * len(chars):
        return out
    for i in np.flatnonzero(short):
        v = values[i]
        out[i] = any(ch in inv for ch in v) and fold(v) not in g.places
    return out


_CAP_WORD = re.compile(rf"(?<![\w@.]){_L}+(?:['’\-]{_L}+)*")
_SENTENCE_WORDS = frozenset(
    "a an the this that these those it its is was are were be been and or but not no yes so "
    "very too my our your their his her we you they i he she me us them for from with without "
    "at on in to of by as after before about again also still just only even great good bad "
    "nice love thanks thank please ask asked call called new old five four three two one first "
    "second last next all any some more most less best well".split())


def text_names(value: str) -> bool:
    """A sentence mentions a person: an honorific and a capitalized word ('Mr. Kowalski'), a
    known given name followed by a known surname ('Anna Nowak', 'Иван Петров'), or a known
    given name in capitals inside the sentence ('thanks to Maria'). No NER: gazetteer tokens."""
    g = gazetteer()
    toks = [(m.start(), m.group()) for m in _CAP_WORD.finditer(value)]
    long = [t for _, t in toks if len(t) >= 4]
    # Title Case ('University of Alabama at Birmingham'): an organization's name, not a sentence
    title = sum(t[:1].isupper() for t in long) >= 0.5 * len(long)
    for i, (pos, tok) in enumerate(toks):
        if not tok[:1].isupper():
            continue
        f = fold(tok)
        nxt = toks[i + 1][1] if i + 1 < len(toks) else ""
        if f.rstrip(".") in _HONORIFICS and nxt[:1].isupper():
            return True
        if f in _SENTENCE_WORDS or f not in g.first_names:
            continue
        if nxt[:1].isupper() and fold(nxt) in g.last_names:
            return True
        before = value[:pos].rstrip()
        if not title and before and before[-1] not in ".!?:;\"'(" and f not in g.last_names:
            return True
    return False


def location_match(value: str) -> bool:
    g = gazetteer()
    f = fold(value).strip().strip(".")
    if f in g.places:
        return True
    f2 = re.sub(r"\s*[,(].*$", "", f)  # 'Springfield, IL' / 'Paris (FR)'
    if f2 in g.places:
        return True
    words = f.replace(",", " ").split()
    if 2 <= len(words) <= 4 and (words[-1].strip("'") in g.place_words or words[0] in g.place_words):
        return all(w.replace("'", "").replace("-", "").isalpha() for w in words)
    return False


_CJK_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_CJK_ADDRESS_MARKS = (
    # Japanese: prefecture, city, ward, town, village, district, block, lot
    "都", "道", "府", "県", "市", "区", "町", "村", "郡", "丁目", "番地", "番", "号",
    # Chinese: province, county, town, street, road, lane, alley, building, room
    "省", "县", "縣", "镇", "鎮", "乡", "街", "路", "巷", "弄", "楼", "樓", "室", "區",
    # Korean: city, province, county, ward, town, township, neighbourhood, road, street, lot
    "시", "도", "군", "구", "읍", "면", "동", "로", "길", "번지", "호")
"""Administrative and street words of addresses written in Chinese characters, kana or hangul
(no spaces, so the street-word lists cannot find them): two of them and a number make an address."""

_NUMBER_TOKEN = re.compile(r"(?<![\w])\d+[A-Za-z]?(?:[/\-]\d+[A-Za-z]?)?\.?(?![\w])")


def address_match(value: str) -> str | None:
    """'strong' (a street word and a number, or a PO box), 'weak' (words and a house number)."""
    if len(value) > 120 or "@" in value or "://" in value:
        return None
    g = gazetteer()
    low = fold(value)
    words = re.findall(r"[^\W\d_]+", low)
    has_number = bool(_NUMBER_TOKEN.search(value))
    if not words:
        return None
    if re.search(r"\bp\.?\s?o\.?\s?box\b|\bpostfach\b|\bapartado\b|\bcaixa postal\b", low):
        return "strong"
    if _CJK_CHAR.search(value) and any(ch.isdigit() for ch in value) and \
            sum(m in value for m in _CJK_ADDRESS_MARKS) >= 2:
        return "strong"  # '東京都新宿区西新宿2-8-1', '北京市朝阳区建国路88号', '강남구 테헤란로 152'
    street = any(w in g.street_words for w in words) or any(
        w.endswith(e) and len(w) > len(e) + 2 for w in words for e in g.street_endings)
    if street and has_number:
        return "strong"
    if has_number and 1 <= len(words) <= 8 and (
            re.match(r"^\s*\d+[A-Za-z]?[,]?\s+[^\W\d_]", value) or
            re.search(r"[^\W\d_]\.?,?\s+\d+[A-Za-z]?(?:[/\-]\d+)?\.?\s*$", value)):
        return "weak"
    return None
