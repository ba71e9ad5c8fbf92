"""A third, truly held-out generator of labeled columns for the PII scanner (issue 18).

Written before reading the scanner's internals and never tuned with it: numpy + pandas +
stdlib only (no Faker, whose data the scanner's name lists come from), its own word lists and
templates (none shared with tests/pii_frames.py or tests/pii_messy.py). Where those two draw
each column from its own pool, this one is entity-centric: six *domains* (an HR export, a
clinic intake form, a logistics manifest, a CRM / ticketing dump, a survey with open answers,
app logs) each have a table of people (country, names in their script and romanised, a
birthday), and every row of a domain is one person of that table, so a row's name, e-mail,
phone and address belong together, as in a real export.

* :func:`holdout_frame` -- ``rows`` x 80 labeled columns with the names a real export would
  use; truth (an entity type or ``None``) per column and its kind (``LabeledFrame.notes``).
* :func:`holdout_frames` -- that frame and its obfuscated twin (columns shuffled and renamed
  ``f01`` .. ``f80``: nothing in a name, nothing in the order).

Label semantics (those of tests/pii_messy.py, plus decisions for the new kinds):

* ``DATE_TIME`` is a date that describes a person (a birthday); event timestamps, shipment
  dates and appointment slots are negatives.
* a place name is ``LOCATION`` whoever it belongs to (a depot's city as much as a customer's),
  also in its own script; a full postal address is ``STREET_ADDRESS``; a US ZIP+4 column is
  ``ZIP_CODE``.
* free text holding a phone, an e-mail or an IP address is labelled with that entity, even
  when a name appears beside it (the contact is the stronger identifier).
* an obfuscated e-mail (``anna dot weber at t-online dot de``) IS an ``EMAIL_ADDRESS``: the
  spelling defeats harvesting bots, not a reader; the person is as reachable as before.
* GPS coordinates of the company's warehouses are a negative: a fixed site of the company,
  not a person, and no place *name*; country codes, dial codes, currencies likewise.
* a log line with the client's IP address is ``IP_ADDRESS`` (the IP identifies the device).
* a profile URL with the person's name in its path is ``URL``.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import zlib
from typing import Callable

import numpy as np
import pandas as pd

from pii_frames import LabeledFrame, luhn_complete

__all__ = ["holdout_frame", "holdout_frames", "obfuscate", "phone", "KINDS", "POOL"]

POOL = 3_000
"""People (and free-text values) per domain; rows draw from them."""

# --------------------------------------------------------------------------------------------
# word lists, written for this file: (native, romanised) where the script is not Latin
# --------------------------------------------------------------------------------------------

GREEK_GIVEN = [("Γιώργος", "giorgos"), ("Δημήτρης", "dimitris"), ("Κωνσταντίνος", "konstantinos"),
               ("Νίκος", "nikos"), ("Ελένη", "eleni"), ("Κατερίνα", "katerina"),
               ("Σοφία", "sofia"), ("Αθανάσιος", "athanasios"), ("Βασιλική", "vasiliki"),
               ("Ιωάννα", "ioanna"), ("Παναγιώτης", "panagiotis"), ("Χρήστος", "christos"),
               ("Αγγελική", "angeliki"), ("Σπύρος", "spyros")]
GREEK_SURNAMES = [("Παπαδόπουλος", "papadopoulos"), ("Οικονόμου", "oikonomou"),
                  ("Γεωργίου", "georgiou"), ("Νικολάου", "nikolaou"), ("Καραγιάννης", "karagiannis"),
                  ("Βλάχος", "vlachos"), ("Αντωνίου", "antoniou"), ("Μακρής", "makris"),
                  ("Ζαχαρίου", "zachariou"), ("Δημητρίου", "dimitriou"),
                  ("Πετρόπουλος", "petropoulos"), ("Σταθόπουλος", "stathopoulos")]
THAI_GIVEN = [("สมชาย", "somchai"), ("สมศักดิ์", "somsak"), ("วิชัย", "wichai"),
              ("สุรชัย", "surachai"), ("นภา", "napha"), ("สุดารัตน์", "sudarat"),
              ("กาญจนา", "kanchana"), ("มาลี", "mali"), ("ปิยะ", "piya"), ("อรุณ", "arun"),
              ("ศิริพร", "siriporn"), ("ธนพล", "thanaphon")]
THAI_SURNAMES = [("ใจดี", "jaidee"), ("ศรีสุข", "srisuk"), ("วงศ์สวัสดิ์", "wongsawat"),
                 ("บุญมา", "boonma"), ("แก้วมณี", "kaewmanee"), ("ทองดี", "thongdee"),
                 ("สุขสวัสดิ์", "suksawat"), ("รัตนพันธ์", "rattanaphan"),
                 ("ชัยมงคล", "chaimongkol"), ("พรหมมา", "phromma")]
HEBREW_GIVEN = [("יוסי", "yossi"), ("דוד", "david"), ("משה", "moshe"), ("אבי", "avi"),
                ("נועה", "noa"), ("תמר", "tamar"), ("שירה", "shira"), ("מיכל", "michal"),
                ("אורי", "ori"), ("יעל", "yael"), ("רונית", "ronit"), ("איתן", "eitan")]
HEBREW_SURNAMES = [("כהן", "cohen"), ("לוי", "levi"), ("מזרחי", "mizrahi"), ("פרץ", "peretz"),
                   ("ביטון", "biton"), ("אברהם", "avraham"), ("פרידמן", "friedman"),
                   ("שפירא", "shapira"), ("אזולאי", "azoulay"), ("דהן", "dahan")]
KOREAN_GIVEN = [("준호", "junho"), ("수진", "sujin"), ("영수", "youngsoo"), ("미영", "miyoung"),
                ("재현", "jaehyun"), ("소연", "soyeon"), ("태민", "taemin"), ("다은", "daeun"),
                ("건우", "gunwoo"), ("나연", "nayeon"), ("승우", "seungwoo"), ("보람", "boram"),
                ("경수", "kyungsoo"), ("윤아", "yoona"), ("진영", "jinyoung"), ("혜린", "hyerin")]
KOREAN_SURNAMES = [("배", "bae"), ("문", "moon"), ("양", "yang"), ("손", "son"), ("백", "baek"),
                   ("허", "heo"), ("남", "nam"), ("심", "shim"), ("노", "noh"), ("곽", "kwak"),
                   ("김", "kim"), ("박", "park")]
JAPANESE_GIVEN = [("大翔", "hiroto"), ("陽菜", "hina"), ("颯太", "sota"), ("芽依", "mei"),
                  ("湊", "minato"), ("凛", "rin"), ("樹", "itsuki"), ("美月", "mizuki"),
                  ("和也", "kazuya"), ("智子", "tomoko"), ("隆", "takashi"), ("修", "osamu"),
                  ("真由美", "mayumi"), ("拓海", "takumi"), ("奈々", "nana"), ("翼", "tsubasa"),
                  ("香織", "kaori"), ("さくら", "sakura"), ("ひなた", "hinata"), ("あかり", "akari")]
JAPANESE_SURNAMES = [("山崎", "yamazaki"), ("森", "mori"), ("池田", "ikeda"), ("橋本", "hashimoto"),
                     ("阿部", "abe"), ("石川", "ishikawa"), ("前田", "maeda"), ("藤田", "fujita"),
                     ("小川", "ogawa"), ("岡田", "okada"), ("後藤", "goto"), ("長谷川", "hasegawa"),
                     ("村上", "murakami"), ("近藤", "kondo")]
LATIN = {  # country -> (given names, surnames)
    "DE": ("Klaus Jörg Dieter Ute Heike Sabine Wolfgang Annegret Mathilde Lennart Henrike "
           "Torsten Birgit Rüdiger".split(),
           "Hoffmann Schäfer Krüger Zimmermann Braun Hartmann Lange Vogel Krause Lehmann "
           "Köhler Bergmann Pohl Seidel".split()),
    "FR": ("Amélie Baptiste Camille Gaëlle Mathis Océane Thibault Clémence Yannick Solène "
           "Benoît Margaux".split(),
           "Dubois Lambert Fontaine Rousseau Chevalier Mercier Blanchard Garnier Faure Roussel "
           "Perrin Marchand".split()),
    "GB": ("Oliver Harriet Nigel Imogen Alistair Poppy Rhys Siobhan Callum Fiona Graham "
           "Eleanor".split(),
           "Whitfield Pemberton Ashworth Hughes Fletcher Barker Holloway Marsh Chapman Dawson "
           "Thornton Kerr".split()),
    "BR": ("Thiago Larissa Rafael Juliana Gustavo Fernanda Leandro Bruna Rodrigo Camila "
           "Vinícius Letícia".split(),
           "Oliveira Souza Carvalho Ribeiro Almeida Pereira Lima Araújo Barbosa Cardoso Rocha "
           "Teixeira".split()),
    "IN": ("Venkatesh Lakshmi Arjun Divya Karthik Meenakshi Siddharth Ananya Rohan Kavya "
           "Harish Shreya".split(),
           "Iyer Reddy Nair Banerjee Chatterjee Menon Pillai Desai Kulkarni Bhat Rao "
           "Krishnan".split()),
    "US": ("Brandon Tiffany Dwayne Kayla Tyler Brittany Cody Megan Austin Destiny Travis "
           "Amber".split(),
           "Johnson Wilson Anderson Thompson Robinson Walker Young Allen King Wright Mitchell "
           "Carter".split()),
}
SCRIPTS = {"GR": (GREEK_GIVEN, GREEK_SURNAMES), "TH": (THAI_GIVEN, THAI_SURNAMES),
           "IL": (HEBREW_GIVEN, HEBREW_SURNAMES), "KR": (KOREAN_GIVEN, KOREAN_SURNAMES),
           "JP": (JAPANESE_GIVEN, JAPANESE_SURNAMES)}
TITLES = ["Dr.", "Mrs.", "Mr.", "Ms.", "Prof.", "Dr. med.", "Sir", "Dame"]

MAIL_DOMAINS = {
    "DE": ["t-online.de", "gmx.net", "web.de", "hr.spedition-kraus.de", "mail.uni-heidelberg.de"],
    "FR": ["orange.fr", "free.fr", "laposte.net", "rh.transports-morel.fr"],
    "GB": ["btinternet.com", "sky.com", "nhs.net", "staff.leeds.ac.uk"],
    "BR": ["uol.com.br", "bol.com.br", "terra.com.br", "alunos.usp.br"],
    "IN": ["rediffmail.com", "yahoo.co.in", "students.iitm.ac.in"],
    "US": ["comcast.net", "aol.com", "icloud.com", "eng.corp.globex.com"],
    "GR": ["otenet.gr", "hol.gr"], "TH": ["hotmail.co.th", "chula.ac.th"],
    "IL": ["walla.co.il", "bezeqint.net"], "KR": ["hanmail.net", "naver.com"],
    "JP": ["yahoo.co.jp", "docomo.ne.jp", "ezweb.ne.jp"],
}
PLUS_TAGS = ["hr", "payroll", "2024", "shop", "news", "clinic", "x"]

DE_STREETS = ["Goethestraße", "Mozartweg", "Am Sonnenhang", "Friedhofstraße", "Kirchplatz",
              "Birkenweg", "Uhlandstraße", "Im Winkel", "Rosenstr."]
DE_TOWNS = [("80331", "München"), ("50667", "Köln"), ("01067", "Dresden"), ("70173", "Stuttgart"),
            ("04109", "Leipzig"), ("90402", "Nürnberg"), ("28195", "Bremen"), ("24103", "Kiel")]
GB_STREETS = ["Kingsway", "Mill Lane", "Victoria Road", "Albert Terrace", "Oakfield Close",
              "Queen's Crescent", "Moor Lane", "St John's Walk"]
GB_TOWNS = [("Leeds", "LS1"), ("Bristol", "BS8"), ("Leicester", "LE2"), ("Cardiff", "CF10"),
            ("York", "YO1"), ("Norwich", "NR2"), ("Bath", "BA1"), ("Derby", "DE1")]
FR_STREETS = ["rue des Lilas", "avenue Jean Jaurès", "boulevard Voltaire", "impasse des Acacias",
              "chemin du Moulin", "place de l'Église", "allée des Tilleuls"]
FR_TOWNS = [("69003", "Lyon"), ("44000", "Nantes"), ("59800", "Lille"), ("33000", "Bordeaux"),
            ("67000", "Strasbourg"), ("35000", "Rennes"), ("34000", "Montpellier")]
BR_STREETS = ["Rua das Palmeiras", "Avenida Paulista", "Rua XV de Novembro", "Travessa do Comércio",
              "Rua Sete de Setembro", "Avenida Brasil"]
BR_TOWNS = [("São Paulo", "SP", "Bela Vista"), ("Curitiba", "PR", "Centro"),
            ("Recife", "PE", "Boa Viagem"), ("Belo Horizonte", "MG", "Savassi"),
            ("Porto Alegre", "RS", "Moinhos de Vento"), ("Salvador", "BA", "Barra")]
JP_PLACES = ["東京都新宿区西新宿", "大阪府大阪市北区梅田", "京都府京都市左京区", "北海道札幌市中央区",
             "福岡県福岡市博多区", "愛知県名古屋市中区栄", "神奈川県横浜市西区"]
IN_PLACES = [("MG Road", "Bengaluru", "5600"), ("Anna Salai", "Chennai", "6000"),
             ("FC Road", "Pune", "4110"), ("Park Street", "Kolkata", "7000"),
             ("Banjara Hills", "Hyderabad", "5000")]
IN_BUILDINGS = ["Shanti Apartments", "Lotus Residency", "Green Park Towers", "Sai Krupa"]
US_STREETS = ["Maple Ave", "Oak St", "Cedar Ln", "Washington Blvd", "Lakeview Dr", "Pine Ct"]
US_TOWNS = [("Springfield", "IL", "627"), ("Austin", "TX", "787"), ("Tucson", "AZ", "857"),
            ("Columbus", "OH", "432"), ("Raleigh", "NC", "276"), ("Boise", "ID", "837")]

WORLD_CITIES = ("Osaka Sapporo Pune Chennai Curitiba Recife Thessaloniki Patras Haifa Busan "
                "Daegu Nantes Lille Bristol Leicester Dortmund Leipzig Hyderabad Fortaleza "
                "Nagoya Incheon Ashdod Heraklion Nonthaburi").split()
NATIVE_CITIES = ["大阪", "札幌", "名古屋", "부산", "대구", "인천", "Θεσσαλονίκη", "Πάτρα",
                 "Ηράκλειο", "חיפה", "אשדוד", "באר שבע", "เชียงใหม่", "ขอนแก่น", "ภูเก็ต"]
DEPOTS = ["Duisburg", "Venlo", "Rotterdam", "Lyon", "Milton Keynes", "Bologna"]

DEPARTMENTS = ["Finance", "Warehouse", "Customer Care", "IT", "Legal", "Procurement", "Fleet"]
BLOOD = ["A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-"]
ICD = ["J45.909", "E11.9", "I10", "M54.5", "K21.0", "F41.1", "J06.9", "R51"]
PRIORITIES = ["P1", "P2", "P3", "P4"]
ALPHA3 = ["DEU", "FRA", "GBR", "BRA", "IND", "USA", "GRC", "THA", "ISR", "KOR", "JPN"]
DIAL = ["+49", "+33", "+44", "+55", "+91", "+1", "+30", "+66", "+972", "+82", "+81"]
FURNITURE = [  # product names whose words are also given names or surnames
    "Victoria sofa", "Jackson bass guitar", "Hamilton desk lamp", "Florence wall clock",
    "Harper bookshelf", "Morgan armchair", "Lincoln bed frame", "Chelsea boots",
    "Sienna throw pillow", "Austin bar stool"]
SYMPTOMS = ["headache since {d} days", "persistent dry cough, no fever", "lower back pain after lifting",
            "rash on both forearms", "follow-up after {d} weeks of medication",
            "dizziness when standing up", "sore throat and mild fever ({t} °C)",
            "annual check-up, no complaints"]
SURVEY_PLAIN = ["Delivery was on time but the box was dented.",
                "I would like more vegetarian options in the canteen.",
                "The app crashes when I open the order history.",
                "Staff at the counter were friendly and quick.",
                "Too many e-mails about offers, please fewer.",
                "Parking near the clinic is a nightmare on Mondays.",
                "Good overall, {d} out of 10.", "No comment.", "Prices went up again this year.",
                "The new booking form is much clearer than the old one."]
LOREM = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
         "incididunt ut labore et dolore magna aliqua enim minim veniam quis nostrud").split()
USER_AGENTS = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/{v}.0 Safari/537.36",
               "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{m} like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
               "okhttp/4.{m}.0", "curl/8.{m}.1", "python-requests/2.{v}.0"]
PATHS = ["/api/v2/orders", "/api/v2/items", "/login", "/healthz", "/static/app.js", "/api/v1/tickets"]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(("holdout:" + key).encode())])


def _choice(rng: np.random.Generator, items: list, n: int) -> list:
    return [items[i] for i in rng.integers(0, len(items), size=n)]


def _digits(rng: np.random.Generator, k: int) -> str:
    return "".join(str(d) for d in rng.integers(0, 10, size=k))


def _ascii(word: str) -> str:
    import unicodedata

    s = unicodedata.normalize("NFKD", word.lower().replace("ß", "ss"))
    return "".join(ch for ch in s if ch.isascii() and ch.isalnum())


class People:
    """A domain's table of ``n`` people: country, names (native and romanised), birthday."""

    def __init__(self, rng: np.random.Generator, n: int, countries: list[str]):
        self.country = _choice(rng, countries, n)
        self.given, self.surname, self.given_rom, self.surname_rom = [], [], [], []
        for c in self.country:
            if c in SCRIPTS:
                g, s = SCRIPTS[c]
                (gn, gr), (sn, sr) = g[rng.integers(len(g))], s[rng.integers(len(s))]
            else:
                gl, sl = LATIN[c]
                gn, sn = gl[rng.integers(len(gl))], sl[rng.integers(len(sl))]
                gr, sr = _ascii(gn), _ascii(sn)
            self.given.append(gn)
            self.surname.append(sn)
            self.given_rom.append(gr)
            self.surname_rom.append(sr)
        days = rng.integers(0, 24_000, size=n)  # 1942 .. 2007
        self.birthday = list(pd.Timestamp("1942-01-01") + pd.to_timedelta(days, unit="D"))
        self.rng = rng

    def __len__(self) -> int:
        return len(self.country)

    def full(self, i: int) -> str:
        """The name as written at home: surname first in East Asia, no space in Korean."""
        c, g, s = self.country[i], self.given[i], self.surname[i]
        if c == "KR":
            return s + g
        if c == "JP":
            return f"{s} {g}" if self.rng.random() < 0.5 else s + g
        return f"{g} {s}"


# phones: national numbering plans, written out (valid numbers by construction)

def phone(rng: np.random.Generator, country: str, style: str) -> str:
    """A phone number of ``country`` in ``style``: national | intl | compact."""
    d = lambda k: _digits(rng, k)  # noqa: E731
    mobile = rng.random() < 0.6
    if country == "DE":
        if mobile:
            pre = ["151", "160", "170", "171", "175", "152", "162", "172", "173", "174"][rng.integers(10)]
            sub = d(8) if pre in ("151", "152") else d(7)
            sub = str(rng.integers(2, 10)) + sub[1:]
        else:
            pre, sub = ["30", "89", "40", "69", "221"][rng.integers(5)], str(rng.integers(2, 10)) + d(6)
        return {"national": f"0{pre} {sub}", "intl": f"+49 {pre} {sub}",
                "compact": f"0{pre}/{sub}"}[style]
    if country == "FR":
        if mobile:  # 06 1x..08x and 07 5x..08x (06 39 and 06 9x are overseas departments)
            body = ["6" + "124578"[rng.integers(6)], "7" + "5678"[rng.integers(4)]][rng.integers(2)] + d(7)
        else:
            body = str(rng.integers(1, 6)) + str(rng.integers(1, 6)) + d(7)  # not 0262, 059x (overseas)
        pairs = " ".join(body[i:i + 2] for i in range(1, 9, 2))
        return {"national": f"0{body[0]} {pairs}", "intl": f"+33 {body[0]} {pairs}",
                "compact": "0" + body[0] + "." + pairs.replace(" ", ".")}[style]
    if country == "GB":
        if mobile:
            body = "7" + ["40", "50", "52", "80", "81", "83", "84", "85"][rng.integers(8)] + d(7)
            nat, intl = f"0{body[:4]} {body[4:]}", f"+44 {body[:4]} {body[4:]}"
        else:
            body = "20" + ["7", "8", "3"][rng.integers(3)] + d(7)
            nat, intl = f"0{body[:2]} {body[2:6]} {body[6:]}", f"+44 {body[:2]} {body[2:6]} {body[6:]}"
        return {"national": nat, "intl": intl, "compact": "0" + body}[style]
    if country == "IN":
        body = ["98", "99", "97", "94", "88", "70", "81", "63"][rng.integers(8)] + d(8)
        return {"national": f"0{body[:5]} {body[5:]}", "intl": f"+91 {body[:5]} {body[5:]}",
                "compact": body}[style]
    if country == "BR":
        ddd = ["11", "21", "31", "41", "51", "61", "71", "81"][rng.integers(8)]
        sub = ("9" + str(rng.integers(6, 10)) + d(7)) if mobile else (str(rng.integers(2, 6)) + d(7))
        cut = len(sub) - 4
        return {"national": f"({ddd}) {sub[:cut]}-{sub[cut:]}",
                "intl": f"+55 {ddd} {sub[:cut]}-{sub[cut:]}", "compact": f"0{ddd}{sub}"}[style]
    if country == "JP":
        if mobile:
            pre, a, b = ["90", "80", "70"][rng.integers(3)], str(rng.integers(1, 10)) + d(3), d(4)
        else:
            pre, a, b = "3", str(rng.integers(3, 7)) + d(3), d(4)
        return {"national": f"0{pre}-{a}-{b}", "intl": f"+81 {pre}-{a}-{b}",
                "compact": f"0{pre}{a}{b}"}[style]
    if country == "US":
        area = ["212", "415", "512", "617", "303", "206", "404", "702"][rng.integers(8)]
        ex, last = str(rng.integers(2, 10)) + d(2), d(4)
        return {"national": f"({area}) {ex}-{last}", "intl": f"+1 {area}-{ex}-{last}",
                "compact": f"{area}.{ex}.{last}"}[style]
    raise ValueError(country)


def _card(rng: np.random.Generator, sep: str) -> str:
    kind = rng.integers(4)
    if kind == 0:
        num = luhn_complete("4" + _digits(rng, 14))
    elif kind == 1:
        num = luhn_complete(str(rng.integers(51, 56)) + _digits(rng, 13))
    elif kind == 2:
        num = luhn_complete("6011" + _digits(rng, 11))
    else:  # American Express: 15 digits, grouped 4-6-5
        num = luhn_complete(["34", "37"][rng.integers(2)] + _digits(rng, 12))
        return sep.join((num[:4], num[4:10], num[10:]))
    return sep.join(num[i:i + 4] for i in range(0, 16, 4))


def _iban(rng: np.random.Generator) -> str:
    country = ["DE", "GB", "AT", "BE"][rng.integers(4)]
    if country == "DE":
        bban = _digits(rng, 18)
    elif country == "GB":
        bban = ["NWBK", "BARC", "LOYD", "MIDL"][rng.integers(4)] + _digits(rng, 14)
    elif country == "AT":
        bban = _digits(rng, 16)
    else:  # Belgium: 10 digits and their national mod-97 key
        ten = str(rng.integers(1, 10)) + _digits(rng, 9)
        key = int(ten) % 97 or 97
        bban = f"{ten}{key:02d}"
    number = int("".join(str(int(ch, 36)) for ch in bban + country + "00"))
    iban = f"{country}{98 - number % 97:02d}{bban}"
    return " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))


def _ssn(rng: np.random.Generator) -> str:
    area = int(rng.integers(1, 900))
    area = 667 if area == 666 else area
    return f"{area:03d} {int(rng.integers(1, 100)):02d} {int(rng.integers(1, 10000)):04d}"


def _email(p: People, i: int, style: str = "plain") -> str:
    rng = p.rng
    g, s = p.given_rom[i], p.surname_rom[i]
    dom = _choice(rng, MAIL_DOMAINS[p.country[i]], 1)[0]
    local = [f"{g}.{s}", f"{g[0]}.{s}", f"{s}_{g}{rng.integers(10, 99)}", f"{g}{s[0]}", f"{s}.{g[:3]}"][
        rng.integers(5)]
    if style == "plus":
        local += "+" + PLUS_TAGS[rng.integers(len(PLUS_TAGS))]
    addr = f"{local}@{dom}"
    if style == "upper":
        addr = addr.upper()
    elif style == "obfuscated":
        a = [f"{local} at {dom.replace('.', ' dot ')}", f"{local} [at] {dom.replace('.', ' [dot] ')}",
             f"{local}(at){dom}"][rng.integers(3)]
        addr = a
    return addr


def _address(p: People, i: int, country: str | None = None) -> str:
    rng = p.rng
    c = country or p.country[i]
    num = int(rng.integers(1, 180))
    if c == "DE":
        plz, town = DE_TOWNS[rng.integers(len(DE_TOWNS))]
        return f"{DE_STREETS[rng.integers(len(DE_STREETS))]} {num}, {plz} {town}"
    if c == "GB":
        town, area = GB_TOWNS[rng.integers(len(GB_TOWNS))]
        flat = f"Flat {rng.integers(1, 9)}, " if rng.random() < 0.4 else ""
        pc = f"{area} {rng.integers(1, 10)}{'ABDEFGHJLNPQRSTUWXYZ'[rng.integers(20)]}{'ABDEFGHJLNPQRSTUWXYZ'[rng.integers(20)]}"
        return f"{flat}{num} {GB_STREETS[rng.integers(len(GB_STREETS))]}, {town} {pc}"
    if c == "FR":
        cp, town = FR_TOWNS[rng.integers(len(FR_TOWNS))]
        bis = " bis" if rng.random() < 0.15 else ""
        return f"{num}{bis} {FR_STREETS[rng.integers(len(FR_STREETS))]}, {cp} {town}"
    if c == "BR":
        town, uf, bairro = BR_TOWNS[rng.integers(len(BR_TOWNS))]
        cep = f"{rng.integers(10000, 99999)}-{rng.integers(0, 1000):03d}"
        return f"{BR_STREETS[rng.integers(len(BR_STREETS))]}, {num} - {bairro}, {town} - {uf}, {cep}"
    if c == "JP":
        return f"{JP_PLACES[rng.integers(len(JP_PLACES))]}{rng.integers(1, 6)}-{rng.integers(1, 30)}-{rng.integers(1, 20)}"
    if c == "IN":
        road, town, pin = IN_PLACES[rng.integers(len(IN_PLACES))]
        return (f"Flat {rng.integers(1, 40)}{'ABC'[rng.integers(3)]}, "
                f"{IN_BUILDINGS[rng.integers(len(IN_BUILDINGS))]}, {road}, {town} {pin}{rng.integers(10, 99)}")
    town, st, z = US_TOWNS[rng.integers(len(US_TOWNS))]
    apt = f" Apt {rng.integers(1, 30)}" if rng.random() < 0.3 else ""
    return f"{num * 10 + int(rng.integers(0, 10))} {US_STREETS[rng.integers(len(US_STREETS))]}{apt}, {town}, {st} {z}{rng.integers(10, 99)}"


def _fill(rng: np.random.Generator, template: str | list[str], **vals) -> str:
    """``template`` (or one drawn from a list) filled with ``vals`` and random d, t, n."""
    if isinstance(template, list):
        template = template[rng.integers(len(template))]
    return template.format(d=int(rng.integers(2, 9)), t=f"{rng.uniform(37.5, 39.5):.1f}",
                           n=int(rng.integers(10_000, 99_999)), **vals)


def _share(rng: np.random.Generator, share: float, hit: Callable[[], str], miss: Callable[[], str]) -> str:
    return hit() if rng.random() < share else miss()


def _timestamp(rng: np.random.Generator, fmt: str) -> str:
    t = pd.Timestamp("2024-01-01") + pd.Timedelta(seconds=int(rng.integers(0, 300 * 86400)))
    return t.strftime(fmt)


def _hex(rng: np.random.Generator, k: int) -> str:
    return "".join("0123456789abcdef"[x] for x in rng.integers(0, 16, size=k))


def _ipv6(rng: np.random.Generator) -> str:
    words = [0x2A02, 0x2001, 0x2600, 0x2804, 0x240E][rng.integers(5)], *rng.integers(0, 0x10000, size=7)
    if rng.random() < 0.4:  # runs of zero groups, as SLAAC-less servers have them
        words = (*words[:4], 0, 0, 0, int(words[7]))
    return str(ipaddress.IPv6Address(":".join(f"{int(w):x}" for w in words)))


def _ipv4(rng: np.random.Generator) -> str:
    first = [81, 85, 92, 109, 151, 177, 189, 203, 212][rng.integers(9)]
    return ".".join(str(x) for x in (first, *rng.integers(0, 256, size=2), rng.integers(1, 255)))


def _isbn13(rng: np.random.Generator) -> str:
    body = "978" + str(rng.integers(0, 2)) + _digits(rng, 8)
    check = (10 - sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body)) % 10) % 10
    return f"{body[:3]}-{body[3]}-{body[4:8]}-{body[8:]}-{check}"


def _ean13(rng: np.random.Generator) -> str:
    body = str(rng.integers(40, 44)) + _digits(rng, 10)
    check = (10 - sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body)) % 10) % 10
    return body + str(check)


# --------------------------------------------------------------------------------------------
# the domains: (real column name, truth, kind, maker(i) -> value) over a People table
# --------------------------------------------------------------------------------------------

Column = tuple[str, "str | None", str, Callable[[int], object]]


def _hr(p: People) -> list[Column]:
    r = p.rng
    return [
        ("employee_no", None, "employee-id", lambda i: f"E-{i + 1200:06d}"),
        ("name_last_first", "PERSON", "name-last-comma", lambda i: f"{p.surname[i].upper()}, {p.given[i]}"),
        ("line_manager", "PERSON", "name-titled",
         lambda i: f"{TITLES[r.integers(len(TITLES))]} {p.given[(i * 7) % len(p)]} {p.surname[(i * 7) % len(p)]}"),
        ("signatory", "PERSON", "name-initials",
         lambda i: (f"{p.given[i][0]}. {p.surname[i]}" if r.random() < 0.6
                    else f"{p.given[i][0]}.{p.surname[(i + 3) % len(p)][0]}. {p.surname[i]}")),
        ("work_email", "EMAIL_ADDRESS", "email-plus-subdomain", lambda i: _email(p, i, "plus")),
        ("private_email", "EMAIL_ADDRESS", "email-upper", lambda i: _email(p, i, "upper")),
        ("mobile_private", "PHONE_NUMBER", "phone-national-de", lambda i: phone(r, "DE", ["national", "compact"][i % 2])),
        ("salary_iban", "IBAN_CODE", "iban-spaced", lambda i: _iban(r)),
        ("geb_datum", "DATE_TIME", "dob-text", lambda i: p.birthday[i].strftime("%d %b %Y")),
        ("home_address", "STREET_ADDRESS", "address-de", lambda i: _address(p, i, "DE")),
        ("ssn_us_staff", "US_SSN", "ssn-spaced", lambda i: _ssn(r)),
        ("vorname_ko", "PERSON", "name-ko-given", lambda i: KOREAN_GIVEN[r.integers(len(KOREAN_GIVEN))][0]),
        ("given_name_ja", "PERSON", "name-ja-given", lambda i: JAPANESE_GIVEN[r.integers(len(JAPANESE_GIVEN))][0]),
        ("department", None, "category", lambda i: DEPARTMENTS[r.integers(len(DEPARTMENTS))]),
        ("gross_salary_eur", None, "amount-text",
         lambda i: f"€{r.integers(28, 140)}.{r.integers(0, 1000):03d},{r.integers(0, 100):02d}"),
        ("fte", None, "fraction", lambda i: float(r.choice([1.0, 0.8, 0.5, 0.6, 0.75]))),
    ]


def _clinic(p: People) -> list[Column]:
    r = p.rng
    gr = lambda i: GREEK_GIVEN[i % len(GREEK_GIVEN)][0] + " " + GREEK_SURNAMES[(i // 7) % len(GREEK_SURNAMES)][0]  # noqa: E731
    return [
        ("patient_name_el", "PERSON", "name-greek", gr),
        ("patient_name_th", "PERSON", "name-thai",
         lambda i: THAI_GIVEN[r.integers(len(THAI_GIVEN))][0] + " " + THAI_SURNAMES[r.integers(len(THAI_SURNAMES))][0]),
        ("patient_name_he", "PERSON", "name-hebrew",
         lambda i: HEBREW_GIVEN[r.integers(len(HEBREW_GIVEN))][0] + " " + HEBREW_SURNAMES[r.integers(len(HEBREW_SURNAMES))][0]),
        ("patient", "PERSON", "name-native-mixed", lambda i: p.full(i)),
        ("date_of_birth", "DATE_TIME", "dob-slashes", lambda i: p.birthday[i].strftime("%Y/%m/%d")),
        ("emergency_contact", "PHONE_NUMBER", "phone-free-text",
         lambda i: _fill(r, ["{rel} {g}, {ph}", "{g} ({rel}) - call {ph}", "{rel}: {ph} (evenings)"][r.integers(3)],
                         rel=["wife", "husband", "mother", "son", "neighbour"][r.integers(5)],
                         g=p.given[(i + 11) % len(p)], ph=phone(r, "GB", "national"))),
        ("tel_fr", "PHONE_NUMBER", "phone-fr", lambda i: phone(r, "FR", ["national", "intl", "compact"][i % 3])),
        ("tel_in", "PHONE_NUMBER", "phone-in", lambda i: phone(r, "IN", ["intl", "national", "compact"][i % 3])),
        ("tel_jp", "PHONE_NUMBER", "phone-jp", lambda i: phone(r, "JP", ["national", "intl"][i % 2])),
        ("tel_br", "PHONE_NUMBER", "phone-br", lambda i: phone(r, "BR", ["national", "intl"][i % 2])),
        ("office_line", "PHONE_NUMBER", "phone-extension",
         lambda i: phone(r, ["GB", "US", "DE"][i % 3], "intl") + [" ext. ", " x", " Durchwahl "][i % 3]
         + str(r.integers(10, 999))),
        ("reason_for_visit", None, "symptom-text", lambda i: _fill(r, SYMPTOMS[r.integers(len(SYMPTOMS))])),
        ("blood_group", None, "category", lambda i: BLOOD[r.integers(len(BLOOD))]),
        ("icd10", None, "medical-code", lambda i: ICD[r.integers(len(ICD))]),
        ("appointment", None, "event-timestamp", lambda i: _timestamp(r, "%d.%m.%Y %H:%M")),
    ]


def _logistics(p: People) -> list[Column]:
    r = p.rng
    return [
        ("consignee", "PERSON", "name-surname-caps", lambda i: f"{p.given[i]} {p.surname[i].upper()}"),
        ("deliver_to_gb", "STREET_ADDRESS", "address-gb", lambda i: _address(p, i, "GB")),
        ("adresse_livraison", "STREET_ADDRESS", "address-fr", lambda i: _address(p, i, "FR")),
        ("endereco", "STREET_ADDRESS", "address-br", lambda i: _address(p, i, "BR")),
        ("jusho", "STREET_ADDRESS", "address-jp", lambda i: _address(p, i, "JP")),
        ("ship_address", "STREET_ADDRESS", "address-mixed", lambda i: _address(p, i)),
        ("zip4", "ZIP_CODE", "zip-plus4", lambda i: f"{r.integers(10000, 99950):05d}-{r.integers(1, 9999):04d}"),
        ("dest_city", "LOCATION", "city-world", lambda i: WORLD_CITIES[r.integers(len(WORLD_CITIES))]),
        ("dest_city_local", "LOCATION", "city-native-script", lambda i: NATIVE_CITIES[r.integers(len(NATIVE_CITIES))]),
        ("depot", "LOCATION", "depot-city", lambda i: DEPOTS[r.integers(len(DEPOTS))]),
        ("driver_phone", "PHONE_NUMBER", "phone-intl-mixed",
         lambda i: phone(r, ["DE", "FR", "GB", "IN", "BR", "JP"][r.integers(6)], "intl")),
        ("warehouse_gps", None, "gps", lambda i: f"{r.uniform(43, 55):.5f}, {r.uniform(-3, 15):.5f}"),
        ("order_ref", None, "phone-like-id", lambda i: f"{r.integers(2019, 2025)}-{r.integers(1000, 9999)}-{r.integers(1000, 9999)}"),
        ("po_number", None, "phone-like-id", lambda i: f"PO {_digits(r, 4)} {_digits(r, 4)} {_digits(r, 2)}"),
        ("ship_date", None, "shipment-date", lambda i: (pd.Timestamp("2023-06-01")
                                                         + pd.Timedelta(days=int(r.integers(0, 500)))).strftime("%Y-%m-%d")),
        ("sku", None, "sku", lambda i: f"{['FUR', 'LMP', 'TXT', 'ELC'][r.integers(4)]}{r.integers(100, 999)}-{'SMLX'[r.integers(4)]}"),
        ("isbn", None, "isbn", lambda i: _isbn13(r)),
        ("ean", None, "ean", lambda i: _ean13(r)),
        ("weight_kg", None, "measure", lambda i: round(float(r.gamma(2.0, 3.0)), 2)),
        ("item", None, "product-name-words", lambda i: FURNITURE[r.integers(len(FURNITURE))]),
    ]


def _crm(p: People) -> list[Column]:
    r = p.rng
    return [
        ("requester_email_obf", "EMAIL_ADDRESS", "email-obfuscated", lambda i: _email(p, i, "obfuscated")),
        ("ticket_body", "EMAIL_ADDRESS", "email-free-text",
         lambda i: _share(r, 0.2, lambda: _fill(r, ["Hi, please update my contact to {e}, thanks {g}",
                                                   "{g} here - my new address is {e}.",
                                                   "Reply to {e} rather than the old one."],
                                               e=_email(p, i), g=p.given[i]),
                          lambda: _fill(r, ["Order {n} still not arrived.", "Can I change the size of order {n}?",
                                            "The invoice {n} shows the wrong VAT.", "Please cancel my subscription."]))),
        ("callback", "PHONE_NUMBER", "phone-free-text",
         lambda i: _share(r, 0.25, lambda: _fill(r, ["Rückruf erbeten unter {ph}", "{g} bittet um Anruf: {ph}"],
                                                  ph=phone(r, "DE", "national"), g=p.given[i]),
                          lambda: _fill(r, ["Kein Rückruf nötig.", "Fall {n} erledigt.", "Wartet auf Ersatzteil."]))),
        ("card_dashed", "CREDIT_CARD", "card-dashed", lambda i: _card(r, "-")),
        ("card_spaced", "CREDIT_CARD", "card-spaced", lambda i: _card(r, " ")),
        ("client_ipv6", "IP_ADDRESS", "ipv6", lambda i: _ipv6(r)),
        ("crm_kv", "EMAIL_ADDRESS", "email-key-value",
         lambda i: f"uid={i + 9000};mail={_email(p, i)};lang={['de', 'fr', 'en', 'ja'][i % 4]}"),
        ("profile_url", "URL", "url-profile",
         lambda i: f"https://www.linkedin.com/in/{p.given_rom[i]}-{p.surname_rom[i]}-{r.integers(100, 9999)}"),
        ("customer_xml", "PHONE_NUMBER", "phone-xml",
         lambda i: f"<contact><id>{i}</id><tel>{phone(r, 'US', 'national')}</tel></contact>"),
        ("agent_first_name", "PERSON", "name-given-latin", lambda i: p.given[(i * 5) % len(p)]),
        ("ticket_id", None, "uuid", lambda i: "-".join((_hex(r, 8), _hex(r, 4), "4" + _hex(r, 3), "a" + _hex(r, 3), _hex(r, 12)))),
        ("priority", None, "category", lambda i: PRIORITIES[r.integers(len(PRIORITIES))]),
        ("country_iso3", None, "iso-country", lambda i: ALPHA3[r.integers(len(ALPHA3))]),
        ("dial_code", None, "dial-code", lambda i: DIAL[r.integers(len(DIAL))]),
    ]


def _survey(p: People) -> list[Column]:
    r = p.rng
    return [
        ("open_answer", None, "survey-text", lambda i: _fill(r, SURVEY_PLAIN[r.integers(len(SURVEY_PLAIN))])),
        ("open_answer_contact", "EMAIL_ADDRESS", "email-free-text",
         lambda i: _share(r, 0.1, lambda: f"Happy to talk more, write to {_email(p, i)}",
                          lambda: _fill(r, SURVEY_PLAIN[r.integers(len(SURVEY_PLAIN))]))),
        ("respondent_bday", "DATE_TIME", "dob-dmy", lambda i: p.birthday[i].strftime("%d/%m/%Y")),
        ("nps", None, "score", lambda i: int(r.integers(0, 11))),
        ("comment_lorem", None, "lorem", lambda i: " ".join(_choice(r, LOREM, int(r.integers(5, 12)))).capitalize() + "."),
    ]


def _logs(p: People) -> list[Column]:
    r = p.rng
    return [
        ("access_log", "IP_ADDRESS", "ip-in-log",
         lambda i: f"{_ipv4(r)} - - \"GET {PATHS[r.integers(len(PATHS))]} HTTP/1.1\" {[200, 200, 304, 404][r.integers(4)]} {r.integers(100, 9000)}"),
        ("remote_addr", "IP_ADDRESS", "ip-with-port", lambda i: f"{_ipv4(r)}:{r.integers(1024, 65535)}"),
        ("ts", None, "event-timestamp", lambda i: _timestamp(r, "%Y-%m-%dT%H:%M:%S+02:00")),
        ("request_line", None, "log-no-ip",
         lambda i: f"{['GET', 'POST', 'PUT'][r.integers(3)]} {PATHS[r.integers(len(PATHS))]}/{r.integers(1, 99999)} -> {[200, 201, 404, 500][r.integers(4)]} in {r.integers(1, 900)}ms"),
        ("user_agent", None, "user-agent", lambda i: USER_AGENTS[r.integers(len(USER_AGENTS))].format(v=r.integers(100, 125), m=r.integers(0, 9))),
        ("build", None, "version", lambda i: f"v{r.integers(1, 5)}.{r.integers(0, 30)}.{r.integers(0, 12)}" + ["", "-rc.1", "-beta.2", "+build.77"][r.integers(4)]),
        ("commit", None, "hash", lambda i: _hex(r, 40)),
        ("payload_sha256", None, "hash", lambda i: _hex(r, 64)),
        ("session_blob", None, "base64", lambda i: base64.b64encode(bytes(r.integers(0, 256, size=24).tolist())).decode()),
        ("latency_ms", None, "count", lambda i: int(r.integers(1, 2000))),
    ]


DOMAINS: dict[str, tuple[Callable[[People], list[Column]], list[str]]] = {
    "hr": (_hr, ["DE", "FR", "GB", "US", "IN"]),
    "clinic": (_clinic, ["GR", "TH", "IL", "KR", "JP", "GB"]),
    "logistics": (_logistics, ["DE", "FR", "GB", "BR", "JP", "IN", "US"]),
    "crm": (_crm, ["DE", "FR", "GB", "BR", "IN", "US", "JP", "KR"]),
    "survey": (_survey, ["GB", "US", "IN", "BR", "FR"]),
    "logs": (_logs, ["US"]),
}

KINDS: dict[str, str] = {}
"""Real column name -> kind (filled by :func:`holdout_frame`)."""


def holdout_frame(rows: int = 5_000, seed: int = 0) -> LabeledFrame:
    """``rows`` x 80 labeled columns with real names. Each domain's rows are its people
    (``POOL`` of them, drawn with replacement), so a row's columns belong together."""
    data: dict[str, np.ndarray] = {}
    truth: dict[str, str | None] = {}
    notes: dict[str, str] = {}
    for dom, (make, countries) in DOMAINS.items():
        people = People(_rng(seed, dom), POOL, countries)
        idx = _rng(seed, dom + ":rows").integers(0, POOL, size=rows)
        for name, ent, kind, value in make(people):
            pool = [value(i) for i in range(POOL)]
            if isinstance(pool[0], (int, np.integer)):
                data[name] = np.asarray(pool, dtype=np.int64)[idx]
            elif isinstance(pool[0], float):
                data[name] = np.asarray(pool, dtype=float)[idx]
            else:
                data[name] = np.asarray(pool, dtype=object)[idx]
            truth[name], notes[name] = ent, kind
            KINDS[name] = kind
    return LabeledFrame(f"holdout_{rows}", pd.DataFrame(data), truth, notes)


def obfuscate(lf: LabeledFrame, seed: int = 0) -> LabeledFrame:
    """The same columns shuffled and renamed ``f01`` .. ``fNN`` (truth and kinds follow)."""
    order = _rng(seed, "shuffle").permutation(len(lf.frame.columns))
    cols = [lf.frame.columns[k] for k in order]
    ren = {c: f"f{j + 1:02d}" for j, c in enumerate(cols)}
    frame = lf.frame[cols].rename(columns=ren)
    return LabeledFrame(lf.name + "_obfuscated", frame, {ren[c]: lf.truth[c] for c in cols},
                        {ren[c]: lf.notes[c] for c in cols})


def holdout_frames(rows: int = 5_000, seed: int = 0) -> tuple[LabeledFrame, LabeledFrame]:
    """``(real_names_frame, obfuscated_frame)``, each with its truth per column."""
    lf = holdout_frame(rows, seed)
    return lf, obfuscate(lf, seed)
