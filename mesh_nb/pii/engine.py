"""presidio-analyzer, fully offline, built once per process.

Never a default ``AnalyzerEngine()`` / ``BatchAnalyzerEngine()`` (they try to download a spaCy
model): the engine here gets a ``NoOpNlpEngine`` and an explicit registry of pattern
recognizers. Two recognizers are adjusted:

* ``EmailRecognizer`` validates domains with a ``tldextract.TLDExtract(suffix_list_urls=())``,
  i.e. the public-suffix snapshot bundled with tldextract, instead of fetching the list;
* ``CreditCardRecognizer`` gets a wider pattern and an issuer-range check, so Mastercard
  2-series, 19-digit Visa, 12-digit Maestro and 2131/1800 JCB numbers are found too.

Values are analyzed many at a time: one ``analyze()`` call over the values joined by a
separator no recognizer matches across, and a result counts for a value only when its span
covers the whole value (so the URL found inside an e-mail address does not make it a URL).

If a spaCy pipeline with a named-entity recognizer is installed (or set with
:func:`set_ner_pipeline`), :func:`ner_labels` uses it for free-text columns; none is required.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np

from . import recognizers as rz
from .entities import PRESIDIO_ENTITIES, REGISTRY, entity

__all__ = ["analyzer", "confirm", "contained", "ner_pipeline", "set_ner_pipeline",
           "PRESIDIO_ENTITIES"]

SEPARATOR = "\n|\n"

_lock = threading.Lock()
_engines: dict[tuple[str, ...], object] = {}


def _recognizers(phone_regions: tuple[str, ...]):
    from presidio_analyzer import Pattern
    from presidio_analyzer.predefined_recognizers import (CreditCardRecognizer, DateRecognizer,
                                                          EmailRecognizer, IbanRecognizer,
                                                          IpRecognizer, PhoneRecognizer,
                                                          UrlRecognizer, UsSsnRecognizer)

    class OfflineEmailRecognizer(EmailRecognizer):
        """Domain check against tldextract's bundled suffix list (no download)."""

        def validate_result(self, pattern_text: str):
            r = rz.offline_tldextract()(pattern_text)
            return r.fqdn != ""

    class WideCreditCardRecognizer(CreditCardRecognizer):
        """Any 12-19 digit run (optionally grouped); issuer range and Luhn decide."""

        PATTERNS = [Pattern("Card 12-19 digits", rf"\b{rz.CARD_RE}\b", 0.3)]

        def __init__(self):
            super().__init__(patterns=self.PATTERNS)

        def validate_result(self, pattern_text: str):
            digits = "".join(ch for ch in pattern_text if ch.isdigit())
            return rz.card_ok(digits)

    return [
        OfflineEmailRecognizer(), WideCreditCardRecognizer(), IbanRecognizer(),
        UsSsnRecognizer(), IpRecognizer(), UrlRecognizer(), DateRecognizer(),
        PhoneRecognizer(supported_regions=phone_regions),
    ]


def offline_nlp_engine():
    """presidio's ``NoOpNlpEngine``; on releases without it, a ``SpacyNlpEngine`` over a blank
    English pipeline (tokenizer only; nothing to download)."""
    try:
        from presidio_analyzer.nlp_engine import NoOpNlpEngine

        return NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "noop"}])
    except ImportError:
        import spacy
        from presidio_analyzer.nlp_engine import SpacyNlpEngine

        nlp = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": "blank"}])
        nlp.nlp = {"en": spacy.blank("en")}
        return nlp


def analyzer(phone_regions: tuple[str, ...] = ("US", "GB", "DE", "FR")):
    """The offline ``AnalyzerEngine`` (cached per phone-region set)."""
    key = tuple(phone_regions)
    engine = _engines.get(key)
    if engine is not None:
        return engine
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            from presidio_analyzer import AnalyzerEngine, RecognizerRegistry

            registry = RecognizerRegistry(recognizers=_recognizers(key))
            engine = AnalyzerEngine(registry=registry, nlp_engine=offline_nlp_engine(),
                                    supported_languages=["en"])
            _engines[key] = engine
    return engine


def _spans(values: list[str]) -> tuple[str, np.ndarray, np.ndarray]:
    starts, ends, pos = [], [], 0
    for v in values:
        starts.append(pos)
        pos += len(v)
        ends.append(pos)
        pos += len(SEPARATOR)
    return SEPARATOR.join(values), np.asarray(starts), np.asarray(ends)


def confirm(values: list[str], entities: list[str], phone_regions=("US", "GB", "DE", "FR"),
            min_coverage: float = 0.85) -> dict[str, np.ndarray]:
    """Per entity, the best presidio score for each value whose span covers the value.

    One ``analyze()`` call for all values. A value's score for an entity is 0 when no result of
    that entity covers at least ``min_coverage`` of it.
    """
    out = {e: np.zeros(len(values)) for e in entities}
    if not values or not entities:
        return out
    text, starts, ends = _spans(values)
    results = analyzer(tuple(phone_regions)).analyze(text=text, language="en", entities=list(entities))
    lengths = np.maximum(ends - starts, 1)
    for r in results:
        i = int(np.searchsorted(starts, r.start, side="right") - 1)
        if i < 0 or r.end > ends[i] or r.entity_type not in out:
            continue
        if (r.end - r.start) / lengths[i] >= min_coverage:
            out[r.entity_type][i] = max(out[r.entity_type][i], r.score)
    return out


def contained(values: list[str], entities: list[str], phone_regions=("US",),
              checks: dict | None = None) -> dict[str, np.ndarray]:
    """Per entity, whether each (free-text) value contains a presidio result of that entity.

    ``checks`` maps an entity to a validator of the matched text (a result it rejects does not
    count); a URL inside an e-mail address found in the same value does not count as a URL."""
    out = {e: np.zeros(len(values), dtype=bool) for e in entities}
    if not values or not entities:
        return out
    text, starts, ends = _spans(values)
    results = analyzer(tuple(phone_regions)).analyze(text=text, language="en", entities=list(entities),
                                                     score_threshold=0.0)
    results = [r for r in results if r.score >= max(0.4, entity(r.entity_type).presidio_score)]
    emails = [(r.start, r.end) for r in results if r.entity_type == "EMAIL_ADDRESS"]
    checks = checks or {}
    for r in results:
        i = int(np.searchsorted(starts, r.start, side="right") - 1)
        if i < 0 or r.end > ends[i] or r.entity_type not in out:
            continue
        if r.entity_type == "URL" and any(a <= r.start and r.end <= b for a, b in emails):
            continue
        check = checks.get(r.entity_type)
        if check is not None and not check(text[r.start:r.end]):
            continue
        out[r.entity_type][i] = True
    return out


# --------------------------------------------------------------------------------------------
# optional spaCy NER for free text
# --------------------------------------------------------------------------------------------

_NER_UNSET = object()
_ner = _NER_UNSET


def set_ner_pipeline(nlp) -> None:
    """Use this spaCy ``Language`` (with an ``ner`` or ``entity_ruler`` pipe) for free text;
    ``None`` turns NER off, and the default is to look for an installed pipeline."""
    global _ner
    _ner = nlp


@lru_cache(maxsize=1)
def _installed_ner():
    try:
        import spacy

        for name in sorted(spacy.util.get_installed_models()):
            try:
                nlp = spacy.load(name)
            except Exception:
                continue
            if "ner" in nlp.pipe_names:
                return nlp
    except Exception:
        return None
    return None


def ner_pipeline():
    """The NER pipeline in use, or None."""
    return _installed_ner() if _ner is _NER_UNSET else _ner


NER_MAP = {label: e.name for e in REGISTRY for label in e.ner_labels}
"""spaCy NER label -> entity type."""


def ner_labels(values: list[str]) -> dict[str, np.ndarray]:
    """Per entity (PERSON, LOCATION), whether each value mentions one, by the NER pipeline."""
    out = {e.name: np.zeros(len(values), dtype=bool) for e in REGISTRY if e.ner_labels}
    nlp = ner_pipeline()
    if nlp is None or not values:
        return out
    for i, doc in enumerate(nlp.pipe(values)):
        for ent in doc.ents:
            e = NER_MAP.get(ent.label_)
            if e:
                out[e][i] = True
    return out
