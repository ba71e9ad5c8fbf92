"""The PII scan's recall on messy columns (issue 18), on the held-out generator tests/pii_messy.py:
one test per kind of column the scan used to miss (found, with the right entity, under its real
name and under an opaque one) and per tricky negative (not labelled)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pii_frames as pf  # noqa: E402
import pii_messy as pm  # noqa: E402

from mesh_nb.pii import scan  # noqa: E402


@pytest.fixture(scope="module")
def scanned():
    """(frame, report) for the real-name frame and its obfuscated twin, 3,000 rows, seed 1."""
    return [(lf, scan(lf.frame)) for lf in pm.messy_frames(3_000, seed=1)]


def _columns_of(lf: pf.LabeledFrame, kind: str) -> list[str]:
    cols = [c for c, k in lf.notes.items() if k == kind]
    assert cols, f"the generator has no column of kind {kind}"
    return cols


POSITIVE_KINDS = [
    "name-cjk", "name-arabic", "name-cyrillic", "name-devanagari", "name-mixed-scripts",
    "email-opaque-name", "email-json", "email-mixed", "email-free-text", "phone-json",
    "phone-free-text", "phone-mixed", "phone-msisdn", "name-free-text", "name-json", "ssn-bare",
]


@pytest.mark.parametrize("kind", POSITIVE_KINDS)
def test_kind_is_found(scanned, kind):
    for lf, report in scanned:
        ents = report.entities()
        for c in _columns_of(lf, kind):
            assert ents.get(c) == lf.truth[c], (lf.name, c, kind, report[c].evidence, report[c].candidates)


NEGATIVE_KINDS = ["event-timestamp", "json-no-pii", "review-no-names", "log-free-text",
                  "iso-country", "category", "numeric-id-9", "order-number", "sku", "hash",
                  "version", "amount", "batch", "tracking", "code"]


@pytest.mark.parametrize("kind", NEGATIVE_KINDS)
def test_negative_is_not_labelled(scanned, kind):
    for lf, report in scanned:
        for c in _columns_of(lf, kind):
            assert report[c].entity is None, (lf.name, c, kind, report[c].entity, report[c].evidence)


def test_mixed_column_reports_its_share(scanned):
    """12-30% e-mails or phones among distinct fillers (order codes): labelled, with the share
    (of the distinct sampled values) reported and tagged ``mixed-share``. Fillers that repeat
    ('n/a', '-') are few distinct values, so there the share of distinct values is high."""
    lf, report = scanned[1]  # obfuscated names: the values alone decide
    coded = 0
    for c in _columns_of(lf, "email-mixed") + _columns_of(lf, "phone-mixed"):
        f = report[c]
        assert f.entity == lf.truth[c]
        if f.share < 0.5:
            coded += 1
            assert f.share >= 0.05 and "mixed-share" in f.evidence, (c, f.share, f.evidence)
    assert coded >= 2


def test_free_text_share_is_low(scanned):
    """A column where ~6% of the notes hold a phone number is a PHONE_NUMBER column."""
    lf, report = scanned[1]
    sparse = [c for c in _columns_of(lf, "phone-free-text") if report[c].share < 0.15]
    assert sparse, [report[c].share for c in _columns_of(lf, "phone-free-text")]
    assert all(report[c].entity == "PHONE_NUMBER" and "shape:free-text" in report[c].evidence
               for c in sparse)


def test_date_of_birth_is_date_time_and_event_clock_is_not(scanned):
    lf, report = scanned[0]
    for c in _columns_of(lf, "dob"):
        assert report[c].entity == "DATE_TIME", c
    for c in _columns_of(lf, "event-timestamp"):
        assert "shape:event-timestamp" in report[c].evidence


def test_no_value_or_json_key_in_the_findings(scanned):
    """Evidence tags are fixed words: no JSON key, no sampled value reaches them."""
    for lf, report in scanned:
        for f in report.columns:
            for tag in f.evidence:
                assert "@" not in tag and not any(ch.isdigit() for ch in tag), (f.column, tag)
                assert not any(k in tag for k in ("primary", "contacts", "msisdn", "customer.")), tag


def test_precision_and_recall_on_the_held_out_frames(scanned):
    s = pf.score([(lf, report.entities()) for lf, report in scanned])
    p, r = s["micro"][:2]
    assert p >= 0.97 and r >= 0.9, (p, r, s["errors"])
