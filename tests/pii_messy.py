"""A held-out set of messy labeled columns for the PII scanner (issue 18).

Written for measuring recall, NOT tuned with the scanner: numpy + pandas + stdlib only (no
Faker: the scanner's name lists come from Faker, so a Faker-made truth would be circular), its
own short hand-written word lists, templates for free text, JSON strings, mixed columns.

* :func:`messy_frame` -- ``rows`` x 74 columns with self-describing ("real") names; every
  column has its truth (an entity type or ``None``) and its kind (``LabeledFrame.notes``).
* :func:`obfuscated` -- the same frame with the columns renamed ``c01`` .. ``c74``.

Semantics, following the scanner's:

* a shop's city is ``LOCATION``: the scan labels place columns whoever the place belongs to
  (a shop's city joined to a purchase locates the buyer); the owner may declare it public;
* ``DATE_TIME`` is a date that describes a person (a date of birth). A column of event
  timestamps (a clock to the second, ISO 8601 with a zone) is not personal by itself: a
  negative here.
* free text that holds a phone number or an e-mail address is labelled with that contact
  entity even when a name appears beside it (the contact is the stronger identifier).
"""

from __future__ import annotations

import json
import zlib

import numpy as np
import pandas as pd

from pii_frames import LabeledFrame, cards, phones

__all__ = ["messy_frame", "obfuscated", "messy_frames", "KINDS"]

# --------------------------------------------------------------------------------------------
# hand-written word lists (common names, written for this file)
# --------------------------------------------------------------------------------------------

ZH_SURNAMES = "王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 高 林 罗 郑 梁 谢 宋 唐 许 韩 冯 邓 曹".split()
ZH_GIVEN = ("伟 芳 娜 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀英 华 平 刚 桂英 建华 文 "
            "玉兰 辉 鹏 婷 建国 海燕 志强 晓明 丹 宇").split()
JA_SURNAMES = "佐藤 鈴木 高橋 田中 伊藤 渡辺 山本 中村 小林 加藤 吉田 山田 佐々木 山口 松本 井上 木村 林 斎藤 清水".split()
JA_GIVEN = "健 翔太 大輔 直樹 拓也 陽子 恵子 美咲 花子 裕子 誠 浩 学 愛 結衣 葵 蓮 悠真 由美 明美".split()
KO_SURNAMES = "김 이 박 최 정 강 조 윤 장 임 한 오 서 신 권 황 안 송 류 홍".split()
KO_GIVEN = "민준 서연 지훈 서준 하은 도윤 지우 수빈 현우 예은 지민 은지 성민 영호 정희 미경 상철 혜진 동현 유진".split()
AR_GIVEN = "محمد أحمد علي عمر خالد يوسف إبراهيم حسن حسين سعيد فاطمة عائشة مريم زينب نور سارة ليلى هدى سلمى ياسمين".split()
AR_SURNAMES = "العلي الحسن الخطيب النجار الحداد المصري الشامي العمري السيد القاسم الزهراني البكري الأحمد الصالح".split()
RU_GIVEN = "Иван Алексей Дмитрий Сергей Андрей Михаил Николай Ольга Наталья Елена Татьяна Анна Мария Ирина Светлана Павел Юрий Екатерина".split()
RU_SURNAMES = "Иванов Смирнов Кузнецов Попов Васильев Петров Соколов Михайлов Новиков Фёдоров Морозов Волков Лебедев Козлов Павлов".split()
HI_GIVEN = "राहुल अमित सुनील राजेश विजय संजय अनिल प्रिया पूजा अंजलि सुनीता नेहा कविता रीता दीपक मनोज".split()
HI_SURNAMES = "शर्मा वर्मा गुप्ता सिंह कुमार पटेल यादव जोशी मिश्रा चौधरी अग्रवाल मेहता".split()
LATIN_GIVEN = ("José María Zoë Łukasz Małgorzata Søren Bjørn Åsa Günther Jürgen Håkan Ákos Zoltán "
               "Ignacio Begoña Noémie Hélène Élodie Stéphane François Jiří Tomáš Dušan Ana Inês João "
               "Anna Maria Peter Thomas Laura Sofia Lucas Emma Paul Julia").split()
LATIN_SURNAMES = ("Müller Schröder Wójcik Kowalski Nowak Sørensen Jørgensen Ångström Fernández "
                  "González Martínez Núñez Peña Dvořák Novák Horváth Kovács Nagy Szabó Lefèvre "
                  "Girard Moreau Gonçalves Conceição Rossi Bianchi Weber Becker Schmidt Jensen").split()

CITIES = ("Berlin Hamburg München Köln Lyon Marseille Toulouse Madrid Sevilla Valencia Milano Torino "
          "Napoli Kraków Gdańsk Wrocław Praha Brno Wien Graz Zürich Genève Lisboa Porto Amsterdam "
          "Rotterdam Antwerpen Göteborg Malmö Aarhus Tampere Dublin Leeds Manchester Glasgow").split()
STREETS = ["Hauptstraße", "Bahnhofstraße", "Gartenweg", "Lindenallee", "Schulstraße",
           "Rue de la Paix|fr", "Rue Victor Hugo|fr", "Calle Mayor", "Avenida de la Constitución",
           "Via Roma", "Via Garibaldi", "ulica Długa", "High Street|en", "Station Road|en",
           "Church Lane|en", "Park Avenue|en", "Kerkstraat", "Dorpsstraat", "Storgatan",
           "Vesterbrogade"]
PRODUCTS = ("kettle toaster blender headphones backpack lamp keyboard mouse charger tent jacket "
            "sneakers mug notebook umbrella drill").split()
ADJ = "great solid decent cheap sturdy flimsy lovely noisy quiet fast slow bright compact".split()
COLOURS = "red blue green black white silver grey orange purple teal navy beige".split()
BRANDS = "Acme Zentro Nordika Volta Lumio Kraftwerk Brisa Oakline".split()
DOMAINS = "gmail.com outlook.com web.de yahoo.fr mail.ru qq.com naver.com example.org posteo.de proton.me".split()
COUNTRIES = "DE FR ES IT PL CZ AT CH NL BE SE DK FI IE GB US CA BR JP CN KR IN".split()
CURRENCIES = "EUR USD GBP CHF PLN CZK SEK DKK JPY CNY KRW INR".split()


# --------------------------------------------------------------------------------------------
# value makers
# --------------------------------------------------------------------------------------------


def _rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def _pick(rng: np.random.Generator, words: list[str], n: int) -> list[str]:
    return [words[i] for i in rng.integers(0, len(words), size=n)]


def _names(rng, n: int, given: list[str], surnames: list[str], fmt: str) -> list[str]:
    g, s = _pick(rng, given, n), _pick(rng, surnames, n)
    return [fmt.format(g=a, s=b) for a, b in zip(g, s)]


def _translit(word: str) -> str:
    import unicodedata

    folded = unicodedata.normalize("NFKD", word.lower().replace("ł", "l").replace("ø", "o"))
    return "".join(ch for ch in folded if ch.isascii() and ch.isalnum()) or "user"


def _emails(rng, n: int) -> list[str]:
    g, s = _pick(rng, LATIN_GIVEN, n), _pick(rng, LATIN_SURNAMES, n)
    seps = _pick(rng, [".", "_", "", "-"], n)
    nums = rng.integers(0, 100, size=n)
    dom = _pick(rng, DOMAINS, n)
    return [f"{_translit(a)}{sep}{_translit(b)}{k if k > 60 else ''}@{d}"
            for a, b, sep, k, d in zip(g, s, seps, nums, dom)]


def _phones(rng, n: int, fmt: str = "international") -> list[str]:
    return phones(rng, n, ("DE", "FR", "GB", "ES", "IT", "PL", "NL", "US"), fmt)


def _msisdns(rng, n: int) -> list[str]:
    return [p.lstrip("+") for p in _phones(rng, n, "e164")]


def _ssns(rng, n: int) -> list[str]:
    area = rng.integers(1, 900, size=n)
    area = np.where(area == 666, 667, area)
    return [f"{a:03d}{g:02d}{s:04d}" for a, g, s in zip(area, rng.integers(1, 100, n),
                                                       rng.integers(1, 10000, n))]


def _iban_check(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    number = int("".join(str(int(ch, 36)) for ch in rearranged))
    return f"{country}{98 - number % 97:02d}{bban}"


def _ibans(rng, n: int) -> list[str]:
    out = []
    for _ in range(n):
        if rng.random() < 0.5:
            out.append(_iban_check("DE", "".join(map(str, rng.integers(0, 10, 18)))))
        else:
            out.append(_iban_check("NL", "ABNA" + "".join(map(str, rng.integers(0, 10, 10)))))
    return out


def _timestamps(rng, n: int, fmt: str, start="2023-01-01", days=400) -> list[str]:
    t0 = pd.Timestamp(start)
    secs = rng.integers(0, days * 86400, size=n)
    ms = rng.integers(0, 1000, size=n)
    ts = t0 + pd.to_timedelta(secs, unit="s") + pd.to_timedelta(ms, unit="ms")
    return [t.strftime(fmt.replace("%f3", f"{t.microsecond // 1000:03d}")) for t in ts]


def _birth_dates(rng, n: int, fmt: str) -> list[str]:
    d = pd.Timestamp("1940-01-01") + pd.to_timedelta(rng.integers(0, 25000, size=n), unit="D")
    return [t.strftime(fmt) for t in d]


def _hex(rng, n: int, length: int) -> list[str]:
    return ["".join("0123456789abcdef"[d] for d in rng.integers(0, 16, size=length)) for _ in range(n)]


def _addresses(rng, n: int) -> list[str]:
    out = []
    for s, num in zip(_pick(rng, STREETS, n), rng.integers(1, 200, size=n)):
        street, _, lang = s.partition("|")
        out.append(f"{num} {street}" if lang in ("en", "fr") else f"{street} {num}")
    return out


def _fill(rng, n: int, templates: list[str], **pools) -> list[str]:
    """Sentences from templates; ``{key}`` draws from ``pools[key]`` (a list of values)."""
    out = []
    for t in _pick(rng, templates, n):
        vals = {k: v[rng.integers(len(v))] for k, v in pools.items() if "{" + k + "}" in t}
        vals["n"] = int(rng.integers(1000, 99999))
        out.append(t.format(**vals))
    return out


def _mix(rng, n: int, share: float, hits: list[str], rest: list[str]) -> list[str]:
    """``share`` of the values from ``hits``, the rest from ``rest``, shuffled."""
    take = rng.random(n) < share
    h, r = iter(hits), iter(rest)
    return [next(h) if t else next(r) for t in take]


PLAIN_NOTES = [
    "Customer asked about delivery times for order {n}.",
    "Refund approved for order {n}, item was damaged in transit.",
    "Package {n} left the warehouse this morning.",
    "Replacement {product} shipped, tracking number will follow by mail.",
    "Invoice {n} corrected, the VAT rate was wrong.",
    "Asked to change the delivery slot to the afternoon.",
    "Duplicate ticket, closed in favour of {n}.",
]
REVIEWS = [
    "The {product} is {adj}, would buy again.",
    "{adj} {product}, arrived in two days. Five stars.",
    "Not happy with the {colour} {product}, the zipper broke after a week.",
    "The {brand} {product} works as described and the price was fair.",
    "Returned it: too {adj} for my taste. Support was quick though.",
    "Good value. The {colour} version looks even better than on the photos.",
    "Second {brand} {product} I bought; still {adj} after a year of daily use.",
]


# --------------------------------------------------------------------------------------------
# the frame
# --------------------------------------------------------------------------------------------

_POOL = 2000


def _columns(seed: int) -> list[tuple[str, str | None, str, list]]:
    """(real name, truth, kind, pool of values) per column."""
    m = _POOL
    r = lambda key: _rng(seed, key)  # noqa: E731
    latin_full = _names(r("lat"), m, LATIN_GIVEN, LATIN_SURNAMES, "{g} {s}")
    common = dict(product=PRODUCTS, adj=ADJ, colour=COLOURS, brand=BRANDS)
    cols: list[tuple[str, str | None, str, list]] = []

    def add(name, truth, kind, values):
        cols.append((name, truth, kind, list(values)))

    # --- names in many scripts ------------------------------------------------------------
    add("customer_name_zh", "PERSON", "name-cjk", _names(r("zh"), m, ZH_GIVEN, ZH_SURNAMES, "{s}{g}"))
    add("kunde_ja", "PERSON", "name-cjk", _names(r("ja"), m, JA_GIVEN, JA_SURNAMES, "{s} {g}"))
    add("holder_ko", "PERSON", "name-cjk", _names(r("ko"), m, KO_GIVEN, KO_SURNAMES, "{s}{g}"))
    add("name_ar", "PERSON", "name-arabic", _names(r("ar"), m, AR_GIVEN, AR_SURNAMES, "{g} {s}"))
    add("fio", "PERSON", "name-cyrillic", _names(r("ru"), m, RU_GIVEN, RU_SURNAMES, "{s} {g}"))
    add("naam_hi", "PERSON", "name-devanagari", _names(r("hi"), m, HI_GIVEN, HI_SURNAMES, "{g} {s}"))
    add("beneficiary", "PERSON", "name-latin-diacritics", latin_full)
    add("recipient", "PERSON", "name-mixed-scripts",
        _mix(r("mixs"), m, 0.5, _names(r("zh2"), m, ZH_GIVEN, ZH_SURNAMES, "{s}{g}"),
             _names(r("ru2"), m, RU_GIVEN, RU_SURNAMES, "{g} {s}")))
    add("signed_by", "PERSON", "name-arabic",
        _names(r("ar2"), m, AR_GIVEN, AR_GIVEN, "{g} {s}"))
    add("given", "PERSON", "name-cjk-given", _pick(r("kog"), KO_GIVEN + JA_GIVEN, m))
    # --- emails -------------------------------------------------------------------------------
    add("lookup_key", "EMAIL_ADDRESS", "email-opaque-name", _emails(r("em1"), m))
    add("login", "EMAIL_ADDRESS", "email-opaque-name", _emails(r("em2"), m))
    add("contact_email", "EMAIL_ADDRESS", "email-plain", _emails(r("em3"), m))
    add("profile_json", "EMAIL_ADDRESS", "email-json",
        [json.dumps({"email": e, "newsletter": bool(i % 2), "lang": "de"})
         for i, e in enumerate(_emails(r("em4"), m))])
    add("prefs", "EMAIL_ADDRESS", "email-json",
        [json.dumps({"user": {"contact": {"primary": e}}, "theme": "dark"})
         for e in _emails(r("em5"), m)])
    add("alt_contact", "EMAIL_ADDRESS", "email-mixed",
        _mix(r("em6"), m, 0.12, _emails(r("em6b"), m), _pick(r("em6c"), ["n/a", "none", "-", "see ticket", "unknown"], m)))
    add("ref_or_mail", "EMAIL_ADDRESS", "email-mixed",
        _mix(r("em7"), m, 0.3, _emails(r("em7b"), m), [f"REF-{x:06d}" for x in r("em7c").integers(0, 10**6, m)]))
    add("reply_note", "EMAIL_ADDRESS", "email-free-text",
        _mix(r("em8"), m, 0.15, _fill(r("em8b"), m, [
            "Please send the invoice to {email} instead.",
            "Customer wants replies at {email} from now on.",
            "Forwarded to {email} for approval."], email=_emails(r("em8c"), 200)),
             _fill(r("em8d"), m, PLAIN_NOTES, **common)))
    # --- phones -------------------------------------------------------------------------------
    add("phone", "PHONE_NUMBER", "phone-plain", _phones(r("ph1"), m, "international"))
    add("device_json", "PHONE_NUMBER", "phone-json",
        [json.dumps({"os": "android", "msisdn": p, "app": "2.4.1"}) for p in _phones(r("ph2"), m, "e164")])
    add("contacts_json", "PHONE_NUMBER", "phone-json",
        [json.dumps({"contacts": [{"type": "mobile", "value": p}], "verified": True})
         for p in _phones(r("ph3"), m, "international")])
    add("call_notes", "PHONE_NUMBER", "phone-free-text",
        _mix(r("ph4"), m, 0.3, _fill(r("ph4b"), m, [
            "Call {first} at {phone} about order {n}.",
            "{first} asked for a call back on {phone} after 5pm.",
            "Left a voicemail on {phone}, no answer yet."],
            first=LATIN_GIVEN, phone=_phones(r("ph4c"), 300, "international")),
            _fill(r("ph4d"), m, PLAIN_NOTES, **common)))
    add("ticket_text", "PHONE_NUMBER", "phone-free-text",
        _mix(r("ph5"), m, 0.06, _fill(r("ph5b"), m, [
            "Customer says the courier should ring {phone} at the gate.",
            "New number for deliveries: {phone}."], phone=_phones(r("ph5c"), 300, "national")),
            _fill(r("ph5d"), m, PLAIN_NOTES, **common)))
    add("contact_or_code", "PHONE_NUMBER", "phone-mixed",
        _mix(r("ph6"), m, 0.2, _phones(r("ph6b"), m, "international"),
             _pick(r("ph6c"), ["n/a", "none", "-", "ask reception", "see email", "withheld"], m)))
    add("reach", "PHONE_NUMBER", "phone-mixed",
        _mix(r("ph7"), m, 0.12, _phones(r("ph7b"), m, "national"),
             [f"ORD-{x:05d}" for x in r("ph7c").integers(0, 10**5, m)]))
    add("subscriber_ref", "PHONE_NUMBER", "phone-msisdn", _msisdns(r("ph8"), m))
    add("line_id", "PHONE_NUMBER", "phone-msisdn",
        np.array([int(x) for x in _msisdns(r("ph9"), m)], dtype=np.int64))
    # --- names in free text -------------------------------------------------------------------
    add("review_text", "PERSON", "name-free-text",
        _mix(r("pn1"), m, 0.25, _fill(r("pn1b"), m, [
            "{first} at the Leeds store was really helpful with my {product}.",
            "Thanks to {first} {last} for sorting out the refund so quickly.",
            "Ask for {first}, she knows everything about the {brand} range."],
            first=LATIN_GIVEN, last=LATIN_SURNAMES, **common), _fill(r("pn1c"), m, REVIEWS, **common)))
    add("agent_notes", "PERSON", "name-free-text",
        _mix(r("pn2"), m, 0.3, _fill(r("pn2b"), m, [
            "Spoke with Mr. {last} about the refund for order {n}.",
            "Mrs. {last} will pick the parcel up herself on Friday.",
            "{first} {last} confirmed the new delivery address."],
            first=LATIN_GIVEN, last=LATIN_SURNAMES), _fill(r("pn2c"), m, PLAIN_NOTES, **common)))
    add("feedback", "PERSON", "name-free-text",
        _mix(r("pn3"), m, 0.2, _fill(r("pn3b"), m, [
            "客服{name}很耐心。", "Thanks {name}, great help!", "{name} solved it in five minutes."],
            name=_names(r("pn3c"), 200, ZH_GIVEN, ZH_SURNAMES, "{s}{g}")
            + _names(r("pn3d"), 200, RU_GIVEN, RU_SURNAMES, "{g} {s}")),
            _fill(r("pn3e"), m, REVIEWS, **common)))
    add("party_json", "PERSON", "name-json",
        [json.dumps({"customer": {"first": a, "last": b}, "tier": "gold"}, ensure_ascii=False)
         for a, b in zip(_pick(r("pj1"), LATIN_GIVEN, m), _pick(r("pj2"), LATIN_SURNAMES, m))])
    # --- identifiers, money, network -------------------------------------------------------------
    add("taxpayer_ref", "US_SSN", "ssn-bare", _ssns(r("ss1"), m))
    add("holder_ref", "US_SSN", "ssn-bare", np.array([int(x) for x in _ssns(r("ss2"), m)], dtype=np.int64))
    add("ssn", "US_SSN", "ssn-plain", [f"{s[:3]}-{s[3:5]}-{s[5:]}" for s in _ssns(r("ss3"), m)])
    add("payout_account", "IBAN_CODE", "iban", _ibans(r("ib"), m))
    add("card_token", "CREDIT_CARD", "card", cards(r("cc"), m, "plain"))
    add("client_addr", "IP_ADDRESS", "ip",
        [".".join(str(x) for x in r2) for r2 in r("ip").integers(1, 255, size=(m, 4))])
    add("homepage", "URL", "url", [f"https://www.{_translit(a)}-{_translit(b)}.com/about"
                                   for a, b in zip(_pick(r("u1"), LATIN_GIVEN, m), _pick(r("u2"), LATIN_SURNAMES, m))])
    add("geburtsdatum", "DATE_TIME", "dob", _birth_dates(r("dob1"), m, "%d.%m.%Y"))
    add("dob", "DATE_TIME", "dob", pd.to_datetime(_birth_dates(r("dob2"), m, "%Y-%m-%d")))
    add("shop_city", "LOCATION", "shop-city", _pick(r("city1"), CITIES[:8], m))
    add("home_city", "LOCATION", "city", _pick(r("city2"), CITIES, m))
    add("street", "STREET_ADDRESS", "address", _addresses(r("addr"), m))
    add("ship_to", "STREET_ADDRESS", "address",
        [f"{a}, {c}" for a, c in zip(_addresses(r("addr2"), m), _pick(r("addr3"), CITIES, m))])
    add("kontakt_notiz", "PHONE_NUMBER", "phone-free-text",
        _mix(r("ph10"), m, 0.1, _fill(r("ph10b"), m, [
            "Bitte {first} unter {phone} zurückrufen.", "Neue Nummer: {phone} (nur abends)."],
            first=LATIN_GIVEN, phone=_phones(r("ph10c"), 300, "national")),
            _fill(r("ph10d"), m, ["Paket {n} ist unterwegs.", "Rechnung {n} wurde korrigiert.",
                                  "Kunde wünscht Lieferung am Nachmittag."])))
    add("owner_id", "EMAIL_ADDRESS", "email-opaque-name", [e.upper() for e in _emails(r("em9"), m)])
    add("display", "PERSON", "name-latin-diacritics",
        [n.upper() for n in _names(r("disp"), m, LATIN_GIVEN, LATIN_SURNAMES, "{s}, {g}")])
    add("first", "PERSON", "name-latin-diacritics", _pick(r("first"), LATIN_GIVEN, m))
    add("surname_ru", "PERSON", "name-cyrillic", _pick(r("rsur"), RU_SURNAMES, m))
    # --- negatives ------------------------------------------------------------------------------
    add("order_number", None, "order-number", [f"ORD-2024-{x:06d}" for x in r("on").integers(0, 10**6, m)])
    add("sku", None, "sku", [f"{b[:3].upper()}-{c[:2].upper()}-{x:04d}" for b, c, x in zip(
        _pick(r("sk1"), BRANDS, m), _pick(r("sk2"), COLOURS, m), r("sk3").integers(0, 10**4, m))])
    add("content_hash", None, "hash", _hex(r("h1"), m, 64))
    add("etag", None, "hash", _hex(r("h2"), m, 32))
    add("product_review", None, "review-no-names", _fill(r("rv1"), m, REVIEWS, **common))
    add("bewertung", None, "review-no-names", _fill(r("rv2"), m, [
        "Der {product} ist {adj_de}, gerne wieder.", "Lieferung in zwei Tagen, alles bestens.",
        "Leider zu laut, zurückgeschickt.", "Preis und Leistung stimmen, {n} Punkte von mir."],
        product=PRODUCTS, adj_de=["gut", "solide", "billig", "laut", "leise"]))
    add("attributes_json", None, "json-no-pii",
        [json.dumps({"sku": f"SKU-{x:05d}", "qty": int(q), "colour": c, "price": float(p)})
         for x, q, c, p in zip(r("j1").integers(0, 10**5, m), r("j2").integers(1, 9, m),
                               _pick(r("j3"), COLOURS, m), np.round(r("j4").uniform(1, 500, m), 2))])
    add("event_json", None, "json-no-pii",
        [json.dumps({"event": e, "ts": t, "page": f"/p/{x}", "ms": int(d)})
         for e, t, x, d in zip(_pick(r("j5"), ["click", "view", "add_to_cart", "checkout"], m),
                               _timestamps(r("j6"), m, "%Y-%m-%dT%H:%M:%SZ"),
                               r("j7").integers(0, 10**4, m), r("j8").integers(5, 900, m))])
    add("app_version", None, "version", [f"{a}.{b}.{c}" for a, b, c in r("v").integers(0, 30, size=(m, 3))])
    add("amount", None, "amount", np.round(r("am").lognormal(3, 1, m), 2))
    add("price_text", None, "amount", [f"{x:.2f} {c}" for x, c in zip(r("pt").lognormal(3, 1, m), _pick(r("pt2"), CURRENCIES, m))])
    add("country_code", None, "iso-country", _pick(r("cc2"), COUNTRIES, m))
    add("currency", None, "iso-currency", _pick(r("cur"), CURRENCIES, m))
    add("event_time", None, "event-timestamp", _timestamps(r("ts1"), m, "%Y-%m-%dT%H:%M:%S.%f3Z"))
    add("received", None, "event-timestamp", _timestamps(r("ts2"), m, "%Y-%m-%d %H:%M:%S"))
    add("order_id", None, "numeric-id", np.arange(m, dtype=np.int64) + 5_000_000)
    add("quantity", None, "count", r("q").integers(1, 20, m))
    add("status", None, "category", _pick(r("st"), ["new", "paid", "shipped", "returned", "cancelled"], m))
    add("tracking_no", None, "tracking", [f"1Z{x:06d}{y:010d}" for x, y in zip(r("tr1").integers(0, 10**6, m), r("tr2").integers(0, 10**10, m))])
    add("product_name", None, "product", [f"{b} {p.capitalize()} {c}" for b, p, c in zip(
        _pick(r("pr1"), BRANDS, m), _pick(r("pr2"), PRODUCTS, m), r("pr3").integers(100, 999, m))])
    add("colour", None, "category", _pick(r("col"), COLOURS, m))
    add("batch_code", None, "batch", [f"B-{y}-{w:02d}-{x:04d}" for y, w, x in zip(
        r("b1").integers(2019, 2025, m), r("b2").integers(1, 53, m), r("b3").integers(0, 10**4, m))])
    add("account_no", None, "numeric-id-9", [f"{x:09d}" for x in r("acc").integers(10**8, 10**9, m)])
    add("log_message", None, "log-free-text", _fill(r("log"), m, [
        "Cache miss for key {n} after 32 ms.", "Retrying job {n} (attempt 2 of 5).",
        "Worker {n} finished batch in 1.4 s.", "Timeout talking to inventory service, order {n}.",
        "Config reloaded, {n} entries."]))
    add("warehouse_bin", None, "code", [f"{a}{b:02d}-{c}" for a, b, c in zip(
        _pick(r("wb1"), list("ABCDEFGH"), m), r("wb2").integers(0, 100, m), r("wb3").integers(1, 9, m))])
    return cols


KINDS: dict[str, str] = {}
"""Real column name -> kind (filled by :func:`messy_frame`)."""


def messy_frame(rows: int = 5_000, seed: int = 0) -> LabeledFrame:
    """``rows`` x 74 labeled columns with self-describing names (values drawn from pools of
    2,000 distinct values each, so 100,000 rows take a second or two to build)."""
    rng = _rng(seed, "rows")
    data, truth, notes = {}, {}, {}
    for name, ent, kind, pool in _columns(seed):
        idx = rng.integers(0, len(pool), size=rows)
        if isinstance(pool[0], (np.integer, int)) and not isinstance(pool[0], bool):
            data[name] = np.asarray(pool, dtype=np.int64)[idx]
        elif isinstance(pool[0], (float, np.floating)):
            data[name] = np.asarray(pool, dtype=float)[idx]
        elif isinstance(pool[0], pd.Timestamp):
            data[name] = pd.DatetimeIndex(pool)[idx]
        else:
            data[name] = np.asarray(pool, dtype=object)[idx]
        truth[name], notes[name] = ent, kind
        KINDS[name] = kind
    return LabeledFrame(f"messy_{rows}", pd.DataFrame(data), truth, notes)


def obfuscated(lf: LabeledFrame) -> LabeledFrame:
    """The same frame with the columns renamed ``c01`` .. ``cNN`` (truth and kinds follow)."""
    ren = {c: f"c{i + 1:02d}" for i, c in enumerate(lf.frame.columns)}
    return LabeledFrame(lf.name + "_obfuscated", lf.frame.rename(columns=ren),
                        {ren[c]: t for c, t in lf.truth.items()},
                        {ren[c]: k for c, k in lf.notes.items()})


def messy_frames(rows: int = 5_000, seed: int = 0) -> list[LabeledFrame]:
    """The real-name frame and its obfuscated twin."""
    lf = messy_frame(rows, seed)
    return [lf, obfuscated(lf)]
