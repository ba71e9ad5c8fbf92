"""The PII scanner: column-level precision/recall on labeled frames, dtypes, edge cases,
fingerprints, and that no data value ever reaches a report."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pii_frames as pf  # noqa: E402

from mesh_nb.pii import ColumnFinding, ScanReport, frame_fingerprint, scan  # noqa: E402

GOAL = 0.95


def _pr_table(s: dict) -> str:
    lines = ["entity            P     R    tp fp fn"]
    for e, (p, r, tp, fp, fn) in s["per_entity"].items():
        lines.append(f"{e:<16} {p:5.2f} {r:5.2f} {tp:4d} {fp:2d} {fn:2d}")
    p, r, tp, fp, fn = s["micro"]
    lines.append(f"{'ALL':<16} {p:5.2f} {r:5.2f} {tp:4d} {fp:2d} {fn:2d}")
    lines += [f"error: {frame}.{col}: truth={t} predicted={pr}" for frame, col, t, pr in s["errors"]]
    return "\n".join(lines)


def _assert_goal(frames: list[pf.LabeledFrame], label: str) -> dict:
    results = [(lf, scan(lf.frame, seed=0).entities()) for lf in frames]
    s = pf.score(results)
    p, r = s["micro"][:2]
    print(f"\n{label}\n{_pr_table(s)}")
    assert p >= GOAL and r >= GOAL, f"{label}: precision {p:.3f}, recall {r:.3f}\n{_pr_table(s)}"
    return s


# --------------------------------------------------------------------------------------------
# precision / recall
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated():
    return pf.generated_frames(seed=0)


def test_generated_frames_precision_recall(generated):
    s = _assert_goal(generated, "generated frames (seed 0)")
    # every entity type the scanner claims is exercised by the generated set
    assert set(s["per_entity"]) >= set(pf.SUPPORTED)


def test_demo_products_precision_recall(tmp_path):
    from mesh_nb import demo

    demo.write_demo(tmp_path, 0)
    accounts = pd.read_parquet(next(tmp_path.rglob("accounts.parquet")))
    orders = pd.read_parquet(next(tmp_path.rglob("orders.parquet")))
    frames = [
        pf.LabeledFrame("demo.accounts", accounts, {
            "customer_id": None, "full_name": "PERSON", "email": "EMAIL_ADDRESS",
            "phone": "PHONE_NUMBER", "birth_date": "DATE_TIME", "postcode": "ZIP_CODE",
            "region": None, "plan": None, "signup_date": "DATE_TIME", "monthly_spend": None,
            "churned": None}),
        pf.LabeledFrame("demo.orders", orders, {
            "order_id": None, "customer_id": None, "order_date": "DATE_TIME", "amount": None,
            "category": None, "card_number": "CREDIT_CARD", "ip_address": "IP_ADDRESS"}),
    ]
    _assert_goal(frames, "demo products")


def test_third_party_precision_recall():
    if pf.DATA_DIR is None:
        pytest.skip(f"third-party PII data not found: {pf.SHARED_HINT}")
    if not pf.DATA_DIR.is_dir():
        pytest.skip(f"third-party PII data not found at {pf.DATA_DIR}")
    frames, skipped = pf.third_party_frames()
    if not frames:
        pytest.skip("no third-party table could be read: " + "; ".join(skipped))
    for note in skipped:
        print("skipped:", note)
    _assert_goal(frames, "third-party tables (shared/data/pii)")


def test_seed_changes_sample_not_quality(generated):
    for seed in (1, 2):
        s = pf.score([(lf, scan(lf.frame, seed=seed).entities()) for lf in generated])
        assert s["micro"][0] >= GOAL and s["micro"][1] >= GOAL, _pr_table(s)


# --------------------------------------------------------------------------------------------
# specific behaviour
# --------------------------------------------------------------------------------------------


def test_email_is_not_url_and_url_is_not_email():
    df = pd.DataFrame({
        "a": [f"user{i}.name@example{i % 7}.com" for i in range(50)],
        "b": [f"https://www.example{i}.org/path/{i}" for i in range(50)],
    })
    ents = scan(df).entities()
    assert ents == {"a": "EMAIL_ADDRESS", "b": "URL"}


@pytest.mark.parametrize("brand,numbers", [
    ("mastercard 2-series", [pf.luhn_complete(str(2221 + i * 13 % 500) + "%011d" % (i * 7919))
                             for i in range(40)]),
    ("visa 19 digits", [pf.luhn_complete("4" + "%017d" % (i * 104729)) for i in range(40)]),
    ("maestro 12 digits", [pf.luhn_complete("6304" + "%07d" % (i * 7907)) for i in range(40)]),
    ("jcb 2131", [pf.luhn_complete("2131" + "%010d" % (i * 7901)) for i in range(40)]),
])
def test_card_ranges_presidio_misses(brand, numbers):
    from mesh_nb.pii import recognizers as rz

    assert all(rz.card_ok(n) for n in numbers)
    f = scan(pd.DataFrame({"c0": numbers}))["c0"]
    assert f.entity == "CREDIT_CARD", (brand, f)
    assert "checksum:luhn" in f.evidence


def test_no_label_from_a_stray_hit():
    codes = [f"SKU-{i:05d}" for i in range(199)] + ["someone@example.com"]
    f = scan(pd.DataFrame({"c1": codes}))["c1"]
    assert f.entity is None
    assert f.candidates.get("EMAIL_ADDRESS", 0) <= 0.01


def test_min_distinct():
    df = pd.DataFrame({"email": ["a@example.com", "b@example.com", "c@example.com"] * 30})
    f = scan(df)["email"]
    assert f.entity is None and "few-distinct" in f.evidence and f.distinct == 3
    assert scan(df, min_distinct=2)["email"].entity == "EMAIL_ADDRESS"


def test_column_name_exclusions():
    from mesh_nb.pii.evidence import name_entity

    assert name_entity("user_name") is None
    assert name_entity("company_name") is None
    assert name_entity("file_name") is None
    assert name_entity("host_name") is None
    assert name_entity("customer_name") == "PERSON"
    assert name_entity("EmailAddress") == "EMAIL_ADDRESS"
    assert name_entity("cc_expiredate") == "DATE_TIME"
    assert name_entity("TelephoneCountryCode") is None
    assert name_entity("zip") == "ZIP_CODE"
    assert name_entity("c7") is None


def test_one_registry_answers_for_every_entity():
    """Scanner, alerts and `mesh-nb init` read the same records: what the scanner may claim,
    what a draft contract classifies it as, and which types identify a person directly."""
    from mesh_nb.contract.model import CLASSIFICATIONS
    from mesh_nb.pii import ENTITIES, alerts
    from mesh_nb.pii.entities import (DIRECT_ENTITIES, FREE_TEXT_ENTITIES, NAME_CUE_ORDER,
                                      REGISTRY, STRONG_ENTITIES, classification_of, entity)

    assert ENTITIES == tuple(e.name for e in REGISTRY if e.scanned) and "ZIP_CODE" in ENTITIES
    assert sorted(NAME_CUE_ORDER) == sorted(ENTITIES)
    assert set(STRONG_ENTITIES) | set(FREE_TEXT_ENTITIES) <= set(ENTITIES)
    assert all(e.classification in CLASSIFICATIONS for e in REGISTRY)
    assert all(e.strength > 0 and e.shape_tag for e in REGISTRY if e.scanned)
    assert alerts.DIRECT_ENTITIES is DIRECT_ENTITIES and "US_PASSPORT" in DIRECT_ENTITIES
    assert "DATE_TIME" not in DIRECT_ENTITIES
    assert classification_of("EMAIL_ADDRESS") == "direct-identifier"
    assert classification_of("ZIP_CODE") == classification_of("AGE") == "quasi-identifier"
    assert classification_of("NOT_AN_ENTITY") == classification_of(None) == "public"
    zip_code = entity("ZIP_CODE")
    assert zip_code.threshold_for(None) > 1 >= zip_code.threshold_for("ZIP_CODE")
    with pytest.raises(KeyError):
        entity("NOT_AN_ENTITY")


def test_scan_is_offline(monkeypatch):
    """No socket is opened: presidio runs with a no-op NLP engine, tldextract on its snapshot."""
    from mesh_nb.pii import engine, recognizers

    def refuse(*a, **k):
        raise AssertionError("network access during a scan")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    engine._engines.clear()
    recognizers.offline_tldextract.cache_clear()
    recognizers.has_public_suffix.cache_clear()
    df = pd.DataFrame({"email": [f"p{i}@mail{i}.co.uk" for i in range(30)],
                       "site": [f"https://shop{i}.example.com/x" for i in range(30)]})
    report = scan(df)
    assert report.entities() == {"email": "EMAIL_ADDRESS", "site": "URL"}
    assert not any(t.startswith("error:") for f in report.columns for t in f.evidence)
    assert "presidio:EMAIL_ADDRESS" in report["email"].evidence


def test_free_text_with_ner_pipeline():
    spacy = pytest.importorskip("spacy")
    from mesh_nb.pii import engine

    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    names = ["Maria Lopez", "John Carter", "Akira Sato", "Lena Berg", "Omar Haddad"]
    ruler.add_patterns([{"label": "PERSON", "pattern": n} for n in names])
    texts = [f"Call back {names[i % 5]} about the delivery of order {i} next week, thanks a lot."
             for i in range(40)]
    df = pd.DataFrame({"notes": texts, "other": [f"Nothing to see in ticket {i} today, all good and closed now." for i in range(40)]})
    engine.set_ner_pipeline(nlp)
    try:
        report = scan(df)
    finally:
        engine.set_ner_pipeline(None)
    assert report["notes"].entity == "PERSON" and "spacy:ner" in report["notes"].evidence
    assert report["other"].entity is None


# --------------------------------------------------------------------------------------------
# dtypes and odd frames
# --------------------------------------------------------------------------------------------


def _people(n: int, seed: int = 3) -> dict:
    from faker import Faker

    f = Faker("en_US")
    f.seed_instance(seed)
    return {"email": [f.email() for _ in range(n)], "name": [f.name() for _ in range(n)],
            "city": pf._real_cities(np.random.default_rng(seed), n, "US")}


def test_every_dtype():
    n = 120
    p = _people(n)
    rng = np.random.default_rng(0)
    na = rng.random(n) < 0.2
    df = pd.DataFrame({
        "obj_email": pd.Series(p["email"], dtype=object),
        "str_email_na": pd.array([None if m else e for e, m in zip(p["email"], na)], dtype="string"),
        "str_name": pd.Series(p["name"], dtype="str"),
        "cat_city": pd.Categorical(p["city"]),
        "dt_naive": pd.date_range("1960-01-01", periods=n, freq="37D"),
        "dt_tz": pd.date_range("2020-01-01", periods=n, freq="h", tz="Europe/Berlin"),
        "dt_na": pd.Series(pd.date_range("1970-01-01", periods=n, freq="D")).where(~na),
        "int_id": np.arange(n, dtype=np.int64) + 10_000,
        "nullable_int": pd.array(np.where(na, None, np.arange(n)), dtype="Int64"),
        "float_na": np.where(na, np.nan, rng.normal(size=n)),
        "bool": rng.random(n) < 0.5,
        "nullable_bool": pd.array(np.where(na, None, rng.random(n) < 0.5), dtype="boolean"),
        "timedelta": pd.to_timedelta(rng.integers(0, 1000, n), unit="s"),
        "period": pd.period_range("2000-01", periods=n, freq="M"),
        "mixed": [1, "a", 2.5, None, b"x"] * (n // 5),
        "lists": [[1, 2]] * n,
    })
    report = scan(df)
    ents = report.entities()
    assert ents == {
        "obj_email": "EMAIL_ADDRESS", "str_email_na": "EMAIL_ADDRESS", "str_name": "PERSON",
        "cat_city": "LOCATION", "dt_naive": "DATE_TIME", "dt_tz": "DATE_TIME",
        "dt_na": "DATE_TIME", "period": "DATE_TIME",
    }, report.to_frame().to_string()
    assert len(report.columns) == df.shape[1]
    assert report["dt_tz"].dtype == str(df["dt_tz"].dtype)
    assert all(isinstance(f, ColumnFinding) for f in report.columns)


def test_polars_frame():
    pl = pytest.importorskip("polars")
    p = _people(300)
    pdf = pd.DataFrame({"email": p["email"], "name": p["name"],
                        "born": pd.date_range("1950-01-01", periods=300, freq="11D"),
                        "n": np.arange(300)})
    report = scan(pl.from_pandas(pdf))
    assert report.entities() == {"email": "EMAIL_ADDRESS", "name": "PERSON", "born": "DATE_TIME"}
    assert report.rows == 300 and report["email"].dtype == "String"
    fp = frame_fingerprint(pl.from_pandas(pdf))
    assert isinstance(fp, str) and len(fp) == 32


def test_all_na_frame():
    df = pd.DataFrame({"a": [None] * 50, "b": pd.array([None] * 50, dtype="string"),
                       "c": [np.nan] * 50, "d": pd.Series([pd.NaT] * 50),
                       "e": pd.array([None] * 50, dtype="Int64")})
    report = scan(df)
    assert report.entities() == {}
    assert all(f.sampled == 0 and f.distinct == 0 for f in report.columns)


def test_empty_and_single_row_frames():
    assert scan(pd.DataFrame()).columns == ()
    empty = pd.DataFrame({"email": pd.Series([], dtype="str"), "n": pd.Series([], dtype="int64")})
    report = scan(empty)
    assert report.rows == 0 and report.entities() == {} and len(report.columns) == 2
    one = pd.DataFrame({"email": ["someone@example.com"], "phone": ["+1 212 555 0100"],
                        "when": [pd.Timestamp("2020-01-01")]})
    report = scan(one)
    assert report.rows == 1 and report.entities() == {}  # one value is never enough
    assert report["email"].candidates.get("EMAIL_ADDRESS") == 1.0


def test_wide_frame_is_scanned_whole():
    """Every one of 501 columns gets a finding and only the e-mail column an entity (how fast:
    bench/pii_scan.py's wide-frame line, not a clock in a test)."""
    report = scan(pf.wide_frame(100))
    assert len(report.columns) == 501 and report.entities() == {"contact": "EMAIL_ADDRESS"}


def test_duplicate_and_non_string_column_names():
    df = pd.DataFrame([[f"x{i}@example.com", i, f"y{i}@example.org"] for i in range(30)],
                      columns=["mail", 7, "mail"])
    report = scan(df)
    assert [f.column for f in report.columns] == ["mail", "7", "mail"]
    assert [f.entity for f in report.columns] == ["EMAIL_ADDRESS", None, "EMAIL_ADDRESS"]


def test_big_frame_scan_is_sampled():
    """What keeps a big frame's scan fast (timed in bench/pii_scan.py): each column is judged on
    a sample of at most ``sample`` (200) values, whatever its length."""
    lf = pf.big_frame(1_000_000, seed=0, pool=2_000)
    report = scan(lf.frame)
    assert report.rows == 1_000_000
    s = pf.score([(lf, report.entities())])
    assert s["micro"][:2] == (1.0, 1.0), _pr_table(s)
    assert max(f.sampled for f in report.columns) == 200


# --------------------------------------------------------------------------------------------
# fingerprint
# --------------------------------------------------------------------------------------------


def test_fingerprint_stable_and_sensitive():
    p = _people(200)
    df = pd.DataFrame({"email": p["email"], "n": np.arange(200),
                       "t": pd.date_range("2020-01-01", periods=200, tz="UTC"),
                       "c": pd.Categorical(p["city"])})
    fp = frame_fingerprint(df)
    assert frame_fingerprint(df) == fp  # unchanged frame, same fingerprint
    df.loc[0, "email"] = "changed@example.com"
    fp2 = frame_fingerprint(df)
    assert fp2 != fp
    df.loc[len(df) - 1, "n"] = -1
    fp3 = frame_fingerprint(df)
    assert fp3 != fp2
    df["extra"] = 1
    assert frame_fingerprint(df) != fp3
    df2 = df.drop(columns="extra")
    assert frame_fingerprint(df2) != frame_fingerprint(df)
    assert frame_fingerprint(df.astype({"n": "float64"})) != frame_fingerprint(df)


class Counted:
    """A cell value that counts how often the fingerprint reads it (``repr``)."""

    reads = 0

    def __repr__(self) -> str:
        Counted.reads += 1
        return "counted"


def test_fingerprint_reads_a_bounded_sample_whatever_the_length():
    """What keeps the fingerprint cheap (the timing is in bench/autoscan_hook.py): it reads the
    same 32 rows of a 1,000-row and of a 1,000,000-row frame, and nothing else."""
    for n in (1_000, 1_000_000):
        df = pd.DataFrame({"obj": np.full(n, Counted(), dtype=object), "num": np.arange(n)})
        Counted.reads = 0
        fp = frame_fingerprint(df)
        assert Counted.reads == 32
        df.loc[1, "num"] = -1  # row 1 is never sampled past 64 rows: unseen
        assert frame_fingerprint(df) == fp
        df.loc[n - 1, "num"] = -1  # the last row always is
        assert frame_fingerprint(df) != fp
    small = pd.DataFrame({"obj": np.full(5, Counted(), dtype=object)})
    Counted.reads = 0
    frame_fingerprint(small)
    assert Counted.reads == 5


# --------------------------------------------------------------------------------------------
# the report: API, and never a data value
# --------------------------------------------------------------------------------------------


def test_report_api():
    p = _people(60)
    df = pd.DataFrame({"email": p["email"], "qty": np.arange(60)})
    report = scan(df, progress=True)
    assert isinstance(report, ScanReport) and report.rows == 60
    assert report.cpu_seconds >= 0 and report.wall_seconds > 0
    assert report.entities() == {"email": "EMAIL_ADDRESS"}
    f = report["email"]
    assert 0.95 <= f.share <= 1 and 0.5 < f.confidence <= 1
    assert f.sampled == 60 and f.distinct == 60 and "name:email_address" in f.evidence
    frame = report.to_frame()
    assert list(frame.columns) == ["column", "dtype", "entity", "share", "confidence",
                                   "evidence", "sampled", "distinct", "candidates"]
    from great_tables import GT

    assert isinstance(report.table(), GT)
    html = report._repr_html_()
    assert "PII scan" in html and "EMAIL_ADDRESS" in html
    with pytest.raises(KeyError):
        report["nope"]
    with pytest.raises(TypeError):
        scan([1, 2, 3])
    # deterministic for a seed
    a, b = scan(df, seed=3), scan(df, seed=3)
    assert a.columns == b.columns


def test_no_data_value_in_report(generated):
    lf = next(f for f in generated if f.name == "customers_en_US")
    df = lf.frame
    report = scan(df)
    texts = [repr(report), str(report), report.to_frame().to_string(),
             repr(report.to_frame().to_dict()), report._repr_html_(),
             repr([vars(f) if hasattr(f, "__dict__") else f for f in report.columns])]
    blob = "\n".join(texts)
    checked = 0
    for col in df.columns:
        if df[col].dtype.kind in "ifb" or isinstance(df[col].dtype, pd.CategoricalDtype):
            continue
        for v in df[col].dropna().astype(str).unique():
            if len(v) >= 6 and v not in df.columns:
                assert v not in blob, f"a value of column {col!r} leaked into the report"
                checked += 1
    assert checked > 1000


def test_errors_in_a_column_never_echo_values(monkeypatch):
    import importlib

    scan_mod = importlib.import_module("mesh_nb.pii.scan")  # the module, not the function

    secret = "supersecret@example.com"

    def boom(values, *a, **k):
        raise ValueError(f"bad value {values[0]}")

    monkeypatch.setattr(scan_mod, "_analyze_strings", boom)
    report = scan(pd.DataFrame({"x": [secret] * 10}))
    assert report["x"].entity is None and "error:ValueError" in report["x"].evidence
    assert secret not in repr(report) and secret not in report.to_frame().to_string()
