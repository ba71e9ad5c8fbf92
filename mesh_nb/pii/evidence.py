"""Column-name evidence: which entity a column's name suggests, with the usual exclusions.

``name_entity("cust_email")`` -> ``"EMAIL_ADDRESS"``; ``name_entity("user_name")`` -> ``None``
(a login, not a person's name); ``name_entity("c7")`` -> ``None``. The name only lowers the
share of values needed for a label; it never labels a column on its own.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["name_tokens", "name_entity"]


@lru_cache(maxsize=4096)
def name_tokens(name: str) -> tuple[str, ...]:
    """'StreetAddress' -> ('street', 'address'); 'cc_number' -> ('cc', 'number')."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", s)
    return tuple(t for t in re.split(r"[^A-Za-z0-9]+", s.lower()) if t)


# (entity, words that suggest it, words that cancel it). A word matches a token exactly, or the
# squashed name ("insturl", "srcip") by suffix/prefix for the longer words.
_RULES: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("EMAIL_ADDRESS", ("email", "mail", "emailaddress", "e_mail"),
     ("domain", "verified", "count", "opt", "optin", "sent", "type", "status", "is", "has")),
    ("IP_ADDRESS", ("ip", "ipv4", "ipv6", "ipaddress", "ipaddr", "srcip", "dstip", "clientip",
                    "remoteip", "sourceip", "destip"), ("count", "type", "version", "flag")),
    ("URL", ("url", "uri", "website", "homepage", "webpage", "link", "href", "domain", "web"),
     ("count", "type", "status", "flag")),
    ("CREDIT_CARD", ("cc", "card", "ccnumber", "ccnum", "creditcard", "cardnumber", "pan",
                     "cardno", "ccn"),
     ("type", "cvv", "cvc", "cvv2", "exp", "expires", "expiry", "expiration", "expiredate",
      "brand", "issuer", "holder", "id", "count", "network", "kind", "month", "year", "date")),
    ("IBAN_CODE", ("iban", "ibancode", "bankaccount", "accountnumber"), ("type", "count", "bic")),
    ("US_SSN", ("ssn", "socialsecurity", "socialsecuritynumber", "sin", "taxid", "tin"),
     ("count", "type", "last4")),
    ("PHONE_NUMBER", ("phone", "tel", "telephone", "mobile", "cell", "cellphone", "fax",
                      "msisdn", "phonenumber", "phonenumbers", "telefon", "telefono", "handy"),
     ("type", "code", "country", "model", "brand", "count", "verified", "prefix", "id", "is",
      "has", "ext", "extension", "os", "carrier")),
    ("DATE_TIME", ("date", "dob", "birthday", "birthdate", "born", "dt", "dttm", "time",
                   "timestamp", "datetime", "created", "updated", "modified", "expires",
                   "expiry", "expiredate", "ts", "birth", "valid", "when", "on", "at"),
     ("zone", "tz", "format", "count", "id")),
    ("STREET_ADDRESS", ("address", "addr", "street", "streetaddress", "address1", "address2",
                        "addressline", "addressline1", "strasse", "adresse", "direccion"),
     ("email", "mail", "ip", "mac", "web", "url", "ipaddress", "wallet", "bitcoin", "btc",
      "eth", "count", "type", "hash")),
    ("ZIP_CODE", ("zip", "zipcode", "postcode", "postal", "postalcode", "plz", "cap", "cp",
                  "zip5"), ("count", "type")),
    ("LOCATION", ("city", "town", "country", "countryfull", "statefull", "state", "region",
                  "province", "county", "location", "place", "municipality", "locality",
                  "village", "birthplace", "hometown", "ort", "stadt", "ville", "ciudad",
                  "residence", "gpe"),
     ("code", "abbr", "iso", "id", "count", "type", "status", "flag", "machine", "is",
      "population", "currency", "size")),
    ("PERSON", ("name", "fname", "lname", "firstname", "lastname", "surname", "givenname",
                "given", "family", "familyname", "maiden", "maidenname", "mothersmaiden",
                "fullname", "person", "middlename", "forename", "nachname", "vorname", "nom",
                "prenom", "nombre", "apellido", "contact", "customer", "patient", "employee",
                "owner", "names", "first", "last", "middle"),
     ("user", "username", "login", "company", "business", "file", "filename", "host",
      "hostname", "server", "org", "organization", "organisation", "product", "item", "brand",
      "domain", "account", "table", "column", "field", "app", "device", "project", "team",
      "group", "city", "street", "country", "state", "region", "place", "set", "type",
      "category", "code", "key", "job", "title", "id", "number", "no", "count", "school",
      "institution", "inst", "bank", "store", "shop", "pet", "dataset", "model", "class",
      "species", "tag", "label", "display", "screen", "nick", "nickname", "handle", "event",
      "campaign", "feature", "metric", "variable", "attribute", "service", "queue", "topic",
      "bucket", "path", "dir", "folder", "package", "module", "agency", "vendor", "supplier",
      "merchant", "partner", "department", "unit", "role", "position", "email", "mail",
      "address", "phone", "date", "seen", "login", "visit", "updated", "modified", "year",
      "page", "step", "name2id", "hash", "initial", "char", "letter")),
]


@lru_cache(maxsize=4096)
def name_entity(name: str) -> str | None:
    """The entity a column name suggests, or None."""
    toks = name_tokens(name)
    if not toks:
        return None
    squashed = "".join(toks)
    tokset = set(toks)
    for entity, words, cancel in _RULES:
        hit = any(w in tokset for w in words)
        if not hit:
            hit = squashed in words or any(
                len(w) >= 4 and (squashed.endswith(w) or squashed.startswith(w)) for w in words)
            if not hit and entity == "URL":
                hit = squashed.endswith(("url", "uri"))
        if not hit:
            continue
        if any(c in tokset for c in cancel):
            continue
        if entity == "PERSON" and tokset <= {"first", "last", "middle", "given", "family"}:
            continue  # 'first', 'last' alone are not name cues
        return entity
    return None
