"""The PII entity registry: one record per presidio entity type mesh_nb knows.

A record says how the scanner labels a column with the entity (the share of values needed,
with and without a column name that agrees, the weight of that share, the fewest matching
values, the evidence tags, whether presidio confirms it and at what score, the spaCy NER labels
and the column-name cues), and what a column holding it is in a contract (its
classification; a direct identifier names the person). The shape regexes and validators the
scanner runs are in :mod:`mesh_nb.pii.recognizers`.

Entity types the scanner never claims (``US_PASSPORT``, ``NRP``...) are here for their
classification only: a contract or another tool may declare them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Entity", "REGISTRY", "ENTITIES", "DIRECT_ENTITIES", "PRESIDIO_ENTITIES",
           "STRONG_ENTITIES", "FREE_TEXT_ENTITIES", "NAME_CUE_ORDER", "entity",
           "classification_of"]


@dataclass(frozen=True)
class Entity:
    """What mesh_nb knows about one entity type."""

    name: str  # the presidio entity type, e.g. EMAIL_ADDRESS
    classification: str  # of a column holding it: direct-identifier | quasi-identifier | public
    scanned: bool = True  # scan() may label a column with it
    threshold: float = 0.6  # share of sampled values needed to label a column
    named_threshold: float = 0.3  # the same when the column's name suggests the entity
    strength: float = 0.0  # weight of the share in the column's score
    min_matches: int = 2  # never a label from fewer matching values
    shape_tag: str | None = None  # evidence tag of the shape prefilter
    check_tag: str | None = None  # evidence tag of the validator
    presidio: bool = False  # a presidio recognizer confirms it
    presidio_score: float = 0.5  # the presidio score that confirms a value
    ner_labels: tuple[str, ...] = ()  # spaCy NER labels meaning this entity
    name_words: tuple[str, ...] = ()  # column-name words that suggest it
    name_cancels: tuple[str, ...] = ()  # column-name words that cancel the suggestion

    @property
    def direct(self) -> bool:
        """A direct identifier: the value names the person."""
        return self.classification == "direct-identifier"

    def threshold_for(self, cue: str | None) -> float:
        """The share needed when the column's name suggests ``cue`` (None: no suggestion)."""
        return self.named_threshold if cue == self.name else self.threshold


_DIRECT, _QUASI = "direct-identifier", "quasi-identifier"

REGISTRY: tuple[Entity, ...] = (
    Entity("EMAIL_ADDRESS", _DIRECT, strength=0.98, shape_tag="shape:email",
           check_tag="suffix:public", presidio=True,
           name_words=("email", "mail", "emailaddress", "e_mail"),
           name_cancels=("domain", "verified", "count", "opt", "optin", "sent", "type",
                         "status", "is", "has")),
    Entity("PHONE_NUMBER", _DIRECT, strength=0.85, shape_tag="shape:phone",
           check_tag="phonenumbers:valid", presidio=True, presidio_score=0.4,
           name_words=("phone", "tel", "telephone", "mobile", "cell", "cellphone", "fax",
                       "msisdn", "phonenumber", "phonenumbers", "telefon", "telefono",
                       "handy"),
           name_cancels=("type", "code", "country", "model", "brand", "count", "verified",
                         "prefix", "id", "is", "has", "ext", "extension", "os", "carrier")),
    Entity("CREDIT_CARD", _DIRECT, strength=0.95, shape_tag="shape:card",
           check_tag="checksum:luhn", presidio=True,
           name_words=("cc", "card", "ccnumber", "ccnum", "creditcard", "cardnumber", "pan",
                       "cardno", "ccn"),
           name_cancels=("type", "cvv", "cvc", "cvv2", "exp", "expires", "expiry",
                         "expiration", "expiredate", "brand", "issuer", "holder", "id",
                         "count", "network", "kind", "month", "year", "date")),
    Entity("IBAN_CODE", _DIRECT, strength=0.99, shape_tag="shape:iban",
           check_tag="checksum:iban", presidio=True,
           name_words=("iban", "ibancode", "bankaccount", "accountnumber"),
           name_cancels=("type", "count", "bic")),
    Entity("US_SSN", _DIRECT, strength=0.85, shape_tag="shape:ssn", check_tag="rule:ssn",
           presidio=True,
           name_words=("ssn", "socialsecurity", "socialsecuritynumber", "sin", "taxid", "tin"),
           name_cancels=("count", "type", "last4")),
    Entity("IP_ADDRESS", _DIRECT, strength=0.95, shape_tag="shape:ip", check_tag="rule:ip",
           presidio=True,
           name_words=("ip", "ipv4", "ipv6", "ipaddress", "ipaddr", "srcip", "dstip",
                       "clientip", "remoteip", "sourceip", "destip"),
           name_cancels=("count", "type", "version", "flag")),
    # public: a draft contract declares a URL column public
    Entity("URL", "public", strength=0.9, shape_tag="shape:url", check_tag="suffix:public",
           presidio=True,
           name_words=("url", "uri", "website", "homepage", "webpage", "link", "href",
                       "domain", "web"),
           name_cancels=("count", "type", "status", "flag")),
    Entity("PERSON", _DIRECT, threshold=0.55, strength=0.85, min_matches=3,
           shape_tag="shape:name", ner_labels=("PERSON", "PER"),
           name_words=("name", "fname", "lname", "firstname", "lastname", "surname",
                       "givenname", "given", "family", "familyname", "maiden", "maidenname",
                       "mothersmaiden", "fullname", "person", "middlename", "forename",
                       "nachname", "vorname", "nom", "prenom", "nombre", "apellido",
                       "contact", "customer", "patient", "employee", "owner", "names",
                       "first", "last", "middle"),
           name_cancels=(
               "user", "username", "login", "company", "business", "file", "filename",
               "host", "hostname", "server", "org", "organization", "organisation",
               "product", "item", "brand", "domain", "account", "table", "column", "field",
               "app", "device", "project", "team", "group", "city", "street", "country",
               "state", "region", "place", "set", "type", "category", "code", "key", "job",
               "title", "id", "number", "no", "count", "school", "institution", "inst",
               "bank", "store", "shop", "pet", "dataset", "model", "class", "species", "tag",
               "label", "display", "screen", "nick", "nickname", "handle", "event",
               "campaign", "feature", "metric", "variable", "attribute", "service", "queue",
               "topic", "bucket", "path", "dir", "folder", "package", "module", "agency",
               "vendor", "supplier", "merchant", "partner", "department", "unit", "role",
               "position", "email", "mail", "address", "phone", "date", "seen", "login",
               "visit", "updated", "modified", "year", "page", "step", "name2id", "hash",
               "initial", "char", "letter")),
    Entity("LOCATION", _QUASI, named_threshold=0.35, strength=0.8, min_matches=3,
           shape_tag="shape:place", ner_labels=("GPE", "LOC", "FAC"),
           name_words=("city", "town", "country", "countryfull", "statefull", "state",
                       "region", "province", "county", "location", "place", "municipality",
                       "locality", "village", "birthplace", "hometown", "ort", "stadt",
                       "ville", "ciudad", "residence", "gpe"),
           name_cancels=("code", "abbr", "iso", "id", "count", "type", "status", "flag",
                         "machine", "is", "population", "currency", "size")),
    # a street address with a name or a date of birth finds the person: a direct identifier
    # for drafts, alerts and governance alike
    Entity("STREET_ADDRESS", _DIRECT, threshold=0.5, strength=0.8, min_matches=3,
           shape_tag="shape:address",
           name_words=("address", "addr", "street", "streetaddress", "address1", "address2",
                       "addressline", "addressline1", "strasse", "adresse", "direccion"),
           name_cancels=("email", "mail", "ip", "mac", "web", "url", "ipaddress", "wallet",
                         "bitcoin", "btc", "eth", "count", "type", "hash")),
    Entity("DATE_TIME", _QUASI, strength=0.9, shape_tag="shape:date", check_tag="rule:date",
           presidio=True, presidio_score=0.6,
           name_words=("date", "dob", "birthday", "birthdate", "born", "dt", "dttm", "time",
                       "timestamp", "datetime", "created", "updated", "modified", "expires",
                       "expiry", "expiredate", "ts", "birth", "valid", "when", "on", "at"),
           name_cancels=("zone", "tz", "format", "count", "id")),
    # never from values alone (a 5-digit code is anything): only under a name that says so
    Entity("ZIP_CODE", _QUASI, threshold=2.0, named_threshold=0.6, strength=0.6,
           shape_tag="shape:zip",
           name_words=("zip", "zipcode", "postcode", "postal", "postalcode", "plz", "cap",
                       "cp", "zip5", "zip4", "zipplus4"),
           name_cancels=("count", "type")),
    *(Entity(name, _DIRECT, scanned=False) for name in (
        "US_PASSPORT", "US_DRIVER_LICENSE", "US_BANK_NUMBER", "UK_NHS", "MEDICAL_LICENSE",
        "CRYPTO", "US_ITIN")),
    *(Entity(name, _QUASI, scanned=False) for name in ("NRP", "AGE", "US_ZIP")),
)
"""Every entity type, the scanner's first (in the order :data:`ENTITIES` lists them)."""

_BY_NAME = {e.name: e for e in REGISTRY}

ENTITIES: tuple[str, ...] = tuple(e.name for e in REGISTRY if e.scanned)
"""The entity types :func:`mesh_nb.pii.scan` may label a column with."""

DIRECT_ENTITIES = frozenset(e.name for e in REGISTRY if e.direct)
"""Entity types that identify a person directly; the rest are quasi-identifiers or public."""

PRESIDIO_ENTITIES: tuple[str, ...] = tuple(e.name for e in REGISTRY if e.presidio)
"""Entity types a presidio recognizer (offline) confirms."""

STRONG_ENTITIES: tuple[str, ...] = ("EMAIL_ADDRESS", "IBAN_CODE", "CREDIT_CARD", "IP_ADDRESS",
                                    "URL", "US_SSN")
"""Validated precisely enough (checksum, public suffix, address rules) that one matching
nearly every value settles the column; in the order the scanner tags their evidence."""

FREE_TEXT_ENTITIES: tuple[str, ...] = ("EMAIL_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "US_SSN",
                                       "IP_ADDRESS", "URL", "PHONE_NUMBER")
"""What presidio looks for inside free text, in the order the scanner weighs them."""

NAME_CUE_ORDER: tuple[str, ...] = ("EMAIL_ADDRESS", "IP_ADDRESS", "URL", "CREDIT_CARD",
                                   "IBAN_CODE", "US_SSN", "PHONE_NUMBER", "DATE_TIME",
                                   "STREET_ADDRESS", "ZIP_CODE", "LOCATION", "PERSON")
"""The order column-name cues are tried in; the first that fits wins ('ip_address' is an IP
address before it is a street address, 'birthplace' a date before a place)."""


def entity(name: str) -> Entity:
    """The record of entity type ``name``; KeyError for a type mesh_nb does not know."""
    return _BY_NAME[name]


def classification_of(name: str | None) -> str:
    """The contract classification of a column holding ``name`` (``public`` when unknown)."""
    found = _BY_NAME.get(name) if name else None
    return found.classification if found else "public"
