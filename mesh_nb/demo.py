"""A deterministic demo mesh: two data products with fake people, their data and contracts.

``write_demo(root, seed)`` writes::

    root/customers/datacontract.yaml   root/customers/accounts.parquet   (50,000 rows)
    root/sales/datacontract.yaml       root/sales/orders.parquet         (200,000 rows)
    root/marketing/datacontract.yaml   root/marketing/leads.parquet      (400 rows)
    root/governance.yaml               the mesh-wide rules (mesh-nb govern)

``marketing`` is small and breaks the mesh's governance rules on purpose (an e-mail column
classified public, a raw-rows purpose without approvers, an over-ceiling budget, a forbidden
profiling purpose...), so the workshop can show what ``mesh-nb govern`` and binding catch.

Everything is synthetic. Name pools come from Faker's bundled ``en_US`` locale data (with
Faker's own frequency weights), but every value is drawn with a numpy ``Generator`` and every
string is built with vectorized ``numpy.strings`` operations, so the whole demo takes well under
a second instead of minutes of per-row Faker calls. The same seed gives the same data and the
same YAML, byte for byte. Each column family draws from its own random stream (keyed by the
seed and the family's name), so changing one family never changes the others.

The contracts are ODCS v3.1 YAML; the mesh_nb privacy policy rides in
``customProperties.meshNbPrivacy`` (see ``/work/shared/contract-example.yaml``). Both products
are described by a small :class:`ProductSpec`, which types the parquet file and becomes the
contract written by :func:`mesh_nb.contract.odcs.contract_text`, so data and contract cannot
drift.

Choices worth knowing:

* ``customers.accounts`` keeps *history rows*: one customer may appear up to 3 times (a
  re-subscription after churning). Identity columns repeat; plan, signup date, spend and churn
  may differ. ``maxContributions: 2`` therefore really bounds something.
* ``postcode`` carries no ``meshNbPiiEntity``: presidio has no predefined recognizer for a bare
  US ZIP code, and ``LOCATION`` comes only from a spaCy NER model, which mesh_nb never loads
  (offline by design) and which would not tag a five-digit number anyway. It is still marked
  ``pii`` and classified as a quasi-identifier, generalized to a 3-digit prefix.
* Phone numbers use real US area codes and never the 555 exchange, so ``phonenumbers`` (and
  thus presidio's phone recognizer) treats them as valid numbers; the subscribers are made up.
* Card numbers are random Luhn-valid Visa / Mastercard numbers (Mastercard 51-55 and 2221-2720
  ranges); IP addresses come from the private ranges and the documentation TEST-NETs. Note for
  the workshop: presidio's ``CreditCardRecognizer`` regex (2.2.x) does not know the 2-series
  Mastercard range, so about 15% of the cards are missed by a plain presidio scan.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from faker.providers.person.en_US import Provider as _FakerPerson

from .contract.odcs import ColumnDoc, ContractDoc, ServerDoc, TableDoc, contract_text
from .mesh import DEFAULT_DEMO_DIR, Mesh, find_contracts, open_mesh

__all__ = ["write_demo", "contract_yaml", "ProductSpec", "Col", "CUSTOMERS", "SALES",
           "MARKETING"]

STR = np.dtypes.StringDType()

N_ACCOUNTS = 50_000
N_ORDERS = 200_000
N_LEADS = 400
MAX_HISTORY = 3  # most rows one customer has in customers.accounts

# Fixed calendar so that ages and tenures do not depend on the day the demo runs.
REFERENCE_DATE = np.datetime64("2025-12-31")
SIGNUP_RANGE = (np.datetime64("2018-01-01"), np.datetime64("2025-12-31"))
ORDER_RANGE = (np.datetime64("2019-01-01"), np.datetime64("2025-12-31"))

REGIONS = ("north", "south", "east", "west", "central")
REGION_WEIGHTS = (0.29, 0.23, 0.19, 0.18, 0.11)
# First postcode digits per region, so postcodes and regions agree.
REGION_POSTCODE_DIGITS = ((0, 1), (7,), (2, 3), (8, 9), (4, 5, 6))

PLANS = ("basic", "plus", "pro")
PLAN_WEIGHTS = (0.55, 0.30, 0.15)
PLAN_MEDIAN_SPEND = (22.0, 65.0, 190.0)
SPEND_BOUNDS = (0.0, 500.0)

CATEGORIES = ("electronics", "books", "home", "clothing", "grocery", "toys")
CATEGORY_WEIGHTS = (0.14, 0.17, 0.16, 0.21, 0.22, 0.10)
CATEGORY_MEDIAN_AMOUNT = (220.0, 18.0, 70.0, 45.0, 38.0, 28.0)
AMOUNT_BOUNDS = (0.0, 2000.0)

EMAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example.org",
                 "mail.example.com", "post.example.net")
EMAIL_DOMAIN_WEIGHTS = (0.30, 0.20, 0.15, 0.15, 0.12, 0.08)

# Real US area codes (so the numbers parse as valid US numbers); subscribers are random.
AREA_CODES = (201, 202, 206, 210, 212, 213, 214, 215, 303, 305, 312, 313, 404, 407, 412, 415,
              469, 503, 504, 512, 602, 608, 612, 614, 615, 617, 619, 646, 702, 704, 713, 718,
              720, 773, 801, 813, 816, 858, 904, 919, 971, 978)


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _rng(seed: int, stream: str) -> np.random.Generator:
    """An independent generator per (seed, column family); crc32 keeps it stable across runs."""
    return np.random.default_rng([seed, zlib.crc32(stream.encode())])


def _pick(rng: np.random.Generator, values, weights, n: int) -> np.ndarray:
    """Draw ``n`` values with the given (unnormalized) weights."""
    p = np.asarray(weights, dtype=float)
    return np.asarray(values)[rng.choice(len(p), size=n, p=p / p.sum())]


def _digits(x: np.ndarray, width: int) -> np.ndarray:
    """Non-negative integers as zero-padded strings."""
    return np.strings.zfill(np.asarray(x).astype(STR), width)


def _by_pattern(pattern: np.ndarray, builders) -> np.ndarray:
    """Row i gets ``builders[pattern[i]](mask)[...]``: mixes several vectorized string formats."""
    out = np.empty(len(pattern), dtype=STR)
    for k, build in enumerate(builders):
        mask = pattern == k
        out[mask] = build(mask)
    return out


def _date_offsets(start: np.datetime64, end: np.datetime64, u: np.ndarray) -> np.ndarray:
    """Map u in [0, 1) onto days from start to end inclusive."""
    span = int((end - start).astype(int)) + 1
    return start + np.minimum((u * span).astype(np.int64), span - 1).astype("timedelta64[D]")


# --------------------------------------------------------------------------------------------
# customers.accounts, one function per column family
# --------------------------------------------------------------------------------------------


def _history_counts(seed: int, n_rows: int) -> np.ndarray:
    """Rows per customer (1..MAX_HISTORY) summing to exactly ``n_rows``; ~41k customers."""
    rng = _rng(seed, "history")
    counts = rng.choice(np.arange(1, MAX_HISTORY + 1), size=n_rows, p=[0.83, 0.13, 0.04])
    total = np.cumsum(counts)
    n_customers = int(np.searchsorted(total, n_rows)) + 1
    counts = counts[:n_customers].copy()
    counts[-1] -= total[n_customers - 1] - n_rows  # stays >= 1: total[n-2] < n_rows
    return counts


def _customer_ids(seed: int, n_customers: int) -> np.ndarray:
    """Distinct ascending ids 'C0012345' (random gaps, so ids reveal no count)."""
    rng = _rng(seed, "customer_id")
    numbers = 10_000 + np.cumsum(rng.integers(1, 100, size=n_customers))
    return "C" + _digits(numbers, 7)


def _people(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last names weighted as in Faker's en_US locale data."""
    rng = _rng(seed, "names")
    first_pool, last_pool = _FakerPerson.first_names, _FakerPerson.last_names
    first = _pick(rng, list(first_pool), list(first_pool.values()), n).astype(STR)
    last = _pick(rng, list(last_pool), list(last_pool.values()), n).astype(STR)
    return first, last


def _emails(seed: int, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Addresses derived from the names, in several common shapes, at reserved example domains."""
    rng = _rng(seed, "email")
    n = len(first)
    f, l = np.strings.lower(first), np.strings.lower(last)
    initial = np.strings.slice(f, 0, 1)
    number = rng.integers(1, 100, size=n).astype(STR)
    year = rng.integers(1960, 2006, size=n).astype(STR)
    local = _by_pattern(
        _pick(rng, np.arange(6), [0.30, 0.15, 0.15, 0.10, 0.20, 0.10], n),
        [
            lambda m: f[m] + "." + l[m],
            lambda m: f[m] + l[m],
            lambda m: initial[m] + "." + l[m],
            lambda m: f[m] + "_" + l[m],
            lambda m: f[m] + "." + l[m] + number[m],
            lambda m: l[m] + initial[m] + year[m],
        ],
    )
    return local + "@" + _pick(rng, EMAIL_DOMAINS, EMAIL_DOMAIN_WEIGHTS, n).astype(STR)


def _phones(seed: int, n: int) -> np.ndarray:
    """US numbers, mixed formats: (212) 456-7890, 212-456-7890, 212.456.7890, +1 ..."""
    rng = _rng(seed, "phone")
    area = _pick(rng, AREA_CODES, np.ones(len(AREA_CODES)), n).astype(STR)
    exchange = rng.integers(200, 1000, size=n)
    exchange += (exchange % 100 == 11) | (exchange == 555)  # no N11 service codes, no 555
    ex, line = exchange.astype(STR), _digits(rng.integers(0, 10_000, size=n), 4)
    return _by_pattern(
        _pick(rng, np.arange(5), [0.35, 0.25, 0.15, 0.15, 0.10], n),
        [
            lambda m: "(" + area[m] + ") " + ex[m] + "-" + line[m],
            lambda m: area[m] + "-" + ex[m] + "-" + line[m],
            lambda m: area[m] + "." + ex[m] + "." + line[m],
            lambda m: "+1-" + area[m] + "-" + ex[m] + "-" + line[m],
            lambda m: "+1 (" + area[m] + ") " + ex[m] + "-" + line[m],
        ],
    )


def _birth_dates(seed: int, n: int) -> np.ndarray:
    """Ages 18-90 on REFERENCE_DATE, skewed towards 30-50."""
    rng = _rng(seed, "birth_date")
    min_days, max_days = int(18 * 365.25) + 1, int(90 * 365.25) - 1
    age_days = min_days + (rng.beta(2.2, 3.2, size=n) * (max_days - min_days)).astype(np.int64)
    return REFERENCE_DATE - age_days.astype("timedelta64[D]")


def _regions_postcodes(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-uniform regions; the postcode's first digit agrees with the region."""
    rng = _rng(seed, "region")
    region_idx = rng.choice(len(REGIONS), size=n, p=REGION_WEIGHTS)
    first_digit = np.empty(n, dtype=np.int64)
    for r, digits in enumerate(REGION_POSTCODE_DIGITS):
        mask = region_idx == r
        first_digit[mask] = rng.choice(digits, size=int(mask.sum()))
    postcode = first_digit * 10_000 + rng.integers(0, 10_000, size=n)
    return np.asarray(REGIONS)[region_idx].astype(STR), _digits(postcode, 5)


def _subscriptions(seed: int, counts: np.ndarray, birth: np.ndarray) -> dict[str, np.ndarray]:
    """Per history row: plan, signup date (chronological within a customer), monthly spend."""
    rng = _rng(seed, "subscription")
    owner = np.repeat(np.arange(len(counts)), counts)
    n = len(owner)
    plan_idx = rng.choice(len(PLANS), size=n, p=PLAN_WEIGHTS)
    # Signups grow over time (beta skew); nobody signs up before turning 18.
    signup = _date_offsets(*SIGNUP_RANGE, rng.beta(1.6, 1.0, size=n))
    adult = birth[owner] + np.timedelta64(int(18 * 365.25) + 1, "D")
    signup = np.minimum(np.maximum(signup, adult), SIGNUP_RANGE[1])
    order = np.lexsort((signup, owner))  # history rows in time order
    plan_idx, signup = plan_idx[order], signup[order]
    # Spend: log-normal around the plan's median; some paused accounts at 0, heavy pro users
    # clamp at 500 -- both bounds carry visible mass, which matters for DP clamping.
    median = np.asarray(PLAN_MEDIAN_SPEND)[plan_idx]
    spend = median * np.exp(rng.normal(0.0, 0.55, size=n))
    spend[rng.random(n) < 0.04] = 0.0
    spend = np.round(np.clip(spend, *SPEND_BOUNDS), 2)
    return {"plan_idx": plan_idx, "signup": signup, "spend": spend, "owner": owner}


def _churn(seed: int, sub: dict[str, np.ndarray], region: np.ndarray) -> np.ndarray:
    """Churn from a logistic model: basic plans, low or zero spend and short tenure churn more.

    Earlier history rows of a customer mostly ended in churn (the customer came back later).
    """
    rng = _rng(seed, "churn")
    plan_effect = np.array([0.45, -0.15, -0.70])[sub["plan_idx"]]
    spend = sub["spend"]
    tenure_years = (REFERENCE_DATE - sub["signup"]).astype(np.int64) / 365.25
    logit = (-1.6 + plan_effect - 0.35 * (spend - 60.0) / 60.0 + 1.3 * (spend == 0.0)
             + 0.45 * (tenure_years < 1.0) + 0.25 * (region[sub["owner"]] == "south"))
    churned = rng.random(len(spend)) < 1.0 / (1.0 + np.exp(-logit))
    owner = sub["owner"]
    earlier = np.r_[owner[1:] == owner[:-1], False]  # a later row of the same customer exists
    churned[earlier] = rng.random(int(earlier.sum())) < 0.9
    return churned


def _accounts(seed: int) -> dict[str, np.ndarray]:
    """The columns of customers.accounts: identity per customer, subscription per row."""
    counts = _history_counts(seed, N_ACCOUNTS)
    n_customers = len(counts)
    ids = _customer_ids(seed, n_customers)
    first, last = _people(seed, n_customers)
    birth = _birth_dates(seed, n_customers)
    region, postcode = _regions_postcodes(seed, n_customers)
    sub = _subscriptions(seed, counts, birth)
    per_row = sub["owner"]
    return {
        "customer_id": ids[per_row],
        "full_name": (first + " " + last)[per_row],
        "email": _emails(seed, first, last)[per_row],
        "phone": _phones(seed, n_customers)[per_row],
        "birth_date": birth[per_row],
        "postcode": postcode[per_row],
        "region": region[per_row],
        "plan": np.asarray(PLANS)[sub["plan_idx"]].astype(STR),
        "signup_date": sub["signup"],
        "monthly_spend": sub["spend"],
        "churned": _churn(seed, sub, region),
    }


# --------------------------------------------------------------------------------------------
# sales.orders
# --------------------------------------------------------------------------------------------


def _order_customers(seed: int, n_customers: int, n: int) -> np.ndarray:
    """Index of the ordering customer; log-normal activity, so a few customers order a lot."""
    rng = _rng(seed, "order_customer")
    activity = rng.lognormal(0.0, 1.4, size=n_customers)
    return rng.choice(n_customers, size=n, p=activity / activity.sum())


def _order_dates(seed: int, n: int) -> np.ndarray:
    """Order dates 2019-2025 with growing volume."""
    return _date_offsets(*ORDER_RANGE, _rng(seed, "order_date").beta(1.4, 1.0, size=n))


def _categories_amounts(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Category, and a log-normal amount around the category's median, clamped to 0-2000."""
    rng = _rng(seed, "amount")
    cat_idx = rng.choice(len(CATEGORIES), size=n, p=CATEGORY_WEIGHTS)
    median = np.asarray(CATEGORY_MEDIAN_AMOUNT)[cat_idx]
    amount = np.round(np.clip(median * np.exp(rng.normal(0.0, 0.9, size=n)), *AMOUNT_BOUNDS), 2)
    return np.asarray(CATEGORIES)[cat_idx].astype(STR), amount


def _luhn_check_digit(digits: np.ndarray) -> np.ndarray:
    """Check digit for each row of a (rows, k) digit matrix (the payload without check digit)."""
    doubled = digits[:, ::-1].astype(np.int64)
    doubled[:, ::2] *= 2  # rightmost payload digit and every second one to its left
    doubled[doubled > 9] -= 9
    return (10 - doubled.sum(axis=1) % 10) % 10


def _card_numbers(seed: int, n: int) -> np.ndarray:
    """16-digit Luhn-valid numbers: Visa (4...), Mastercard 51-55 and 2221-2720."""
    rng = _rng(seed, "card_number")
    payload = rng.integers(0, 10, size=(n, 15))
    brand = _pick(rng, np.arange(3), [0.55, 0.30, 0.15], n)
    visa, mc5, mc2 = brand == 0, brand == 1, brand == 2
    payload[visa, 0] = 4
    payload[mc5, 0], payload[mc5, 1] = 5, rng.integers(1, 6, size=int(mc5.sum()))
    prefix = rng.integers(2221, 2721, size=int(mc2.sum()))
    payload[mc2, :4] = prefix[:, None] // np.array([1000, 100, 10, 1]) % 10
    full = np.column_stack([payload, _luhn_check_digit(payload)]).astype(np.uint8) + ord("0")
    return full.view("S16").ravel().astype(STR)


def _ip_addresses(seed: int, n_customers: int, customer: np.ndarray) -> np.ndarray:
    """IPv4: usually the customer's home address (private ranges), else a TEST-NET address."""
    rng = _rng(seed, "ip_address")

    def dotted(a, b, c, d):
        return a.astype(STR) + "." + b.astype(STR) + "." + c.astype(STR) + "." + d.astype(STR)

    m = n_customers
    kind = rng.choice(3, size=m, p=[0.5, 0.2, 0.3])  # 192.168/16, 172.16/12, 10/8
    second = np.where(kind == 0, 168,
                      np.where(kind == 1, rng.integers(16, 32, m), rng.integers(0, 256, m)))
    home = dotted(np.array([192, 172, 10])[kind], second, rng.integers(0, 256, m),
                  rng.integers(1, 255, m))
    n = len(customer)
    test_nets = np.array([[192, 0, 2], [198, 51, 100], [203, 0, 113]])[rng.integers(0, 3, n)]
    away = dotted(test_nets[:, 0], test_nets[:, 1], test_nets[:, 2], rng.integers(1, 255, n))
    return np.where(rng.random(n) < 0.7, home[customer], away)


def _orders(seed: int, customer_ids: np.ndarray) -> dict[str, np.ndarray]:
    """The columns of sales.orders; ``customer_ids`` are the distinct ids of customers.accounts."""
    n_customers = len(customer_ids)
    customer = _order_customers(seed, n_customers, N_ORDERS)
    dates = _order_dates(seed, N_ORDERS)
    category, amount = _categories_amounts(seed, N_ORDERS)
    # Most customers use one card, some a second one.
    cards = _card_numbers(seed, 2 * n_customers).reshape(n_customers, 2)
    second_card = _rng(seed, "card_choice").random(N_ORDERS) < 0.15
    ips = _ip_addresses(seed, n_customers, customer)
    order = np.lexsort((customer, dates))  # order ids follow time
    return {
        "order_id": "O" + _digits(np.arange(1, N_ORDERS + 1), 8),
        "customer_id": customer_ids[customer][order],
        "order_date": dates[order],
        "amount": amount[order],
        "category": category[order],
        "card_number": cards[customer, second_card.astype(np.int64)][order],
        "ip_address": ips[order],
    }


# --------------------------------------------------------------------------------------------
# contracts
# --------------------------------------------------------------------------------------------

# logicalType -> (parquet/arrow type, physicalType as the DuckDB engine reports it)
_TYPES = {
    "string": (pa.string(), "VARCHAR"),
    "integer": (pa.int64(), "BIGINT"),
    "number": (pa.float64(), "DOUBLE"),
    "boolean": (pa.bool_(), "BOOLEAN"),
    "date": (pa.date32(), "DATE"),
}


Col = ColumnDoc
"""What the owner declares about one column (the contract writer's :class:`ColumnDoc`)."""


@dataclass(frozen=True)
class ProductSpec:
    """Everything needed to write one product's contract (and type its parquet file)."""

    name: str
    id: str
    domain: str
    description: dict
    team: str
    members: tuple[dict, ...]
    table: str
    table_description: str
    columns: tuple[Col, ...]
    policy: dict
    tags: tuple[str, ...] = ("mesh-nb-demo", "synthetic")
    retention_years: int = 3
    support: tuple[dict, ...] = ()  # ODCS support channels (the product's contact)

    @property
    def file(self) -> str:
        return f"{self.table}.parquet"

    @property
    def owner(self) -> str:
        return next(m["username"] for m in self.members if m.get("role") == "owner")

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([(c.name, _TYPES[c.logical_type][0]) for c in self.columns])

    def document(self) -> ContractDoc:
        """The contract to write: one table in one parquet file, typed as DuckDB reads it."""
        columns = tuple(replace(c, physical_type=_TYPES[c.logical_type][1])
                        for c in self.columns)
        return ContractDoc(
            id=self.id, name=self.name, team=self.team, domain=self.domain,
            description=self.description, tags=self.tags, members=self.members,
            roles=({"role": "mesh_nb_analyst", "access": "read",
                    "firstLevelApprovers": self.owner},),
            servers=(ServerDoc(f"./{self.file}", server="local-parquet"),),
            tables=(TableDoc(self.table, columns, self.table, self.table_description),),
            retention_years=self.retention_years, policy=self.policy, support=self.support,
            comment=f"mesh_nb demo data product `{self.name}` -- synthetic data, fake people "
                    "only.\nAn Open Data Contract Standard (ODCS) v3.1 contract; mesh_nb's "
                    "privacy policy is the\nmeshNbPrivacy custom property at the end, so other "
                    "ODCS tools can still read the file.")


def contract_yaml(spec: ProductSpec) -> str:
    """The ODCS v3.1 contract of one product, as commented YAML text."""
    return contract_text(spec.document())


def _write_product(root: Path, spec: ProductSpec, columns: dict[str, np.ndarray]) -> None:
    """``root/<name>/datacontract.yaml`` and the parquet file typed from the contract."""
    folder = root / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    schema = spec.arrow_schema()
    if list(columns) != schema.names:
        raise ValueError(f"{spec.name}: data columns {list(columns)} != contract {schema.names}")
    table = pa.table([pa.array(columns[f.name], type=f.type) for f in schema], schema=schema)
    pq.write_table(table, folder / spec.file, compression="zstd")
    (folder / "datacontract.yaml").write_text(contract_yaml(spec), encoding="utf-8")


# --------------------------------------------------------------------------------------------
# the two products
# --------------------------------------------------------------------------------------------

_DP_BUDGET = {"epsilon": 3.0, "delta": 1.0e-6, "scope": "per-analyst", "period": "P30D"}
_USAGE = ("Only through mesh_nb sessions bound to a purpose declared in "
          "customProperties.meshNbPrivacy.")
_CUSTOMERS_OWNER = "olivia.owner@example.org"
_SALES_OWNER = "priya.owner@example.org"
_CUSTOMER_ID = Col("customer_id", "string", "direct-identifier", required=True, pii=True,
                   options={"pattern": "^C[0-9]{7}$"},
                   description="The customer; the privacy unit of both demo products.")

CUSTOMERS = ProductSpec(
    name="customers",
    id="mesh-nb-demo-customers",
    domain="customer",
    description={
        "purpose": "Subscription accounts of the customer domain (synthetic demo data).",
        "usage": _USAGE,
        "limitations": "Up to 3 history rows per customer; aggregates are differentially "
                       "private unless the purpose grants row access.",
    },
    team="customer-data",
    members=(
        {"username": _CUSTOMERS_OWNER, "name": "Olivia Owner", "role": "owner",
         "dateIn": "2024-01-15"},
        {"username": "sam.steward@example.org", "name": "Sam Steward", "role": "data steward",
         "dateIn": "2024-03-01"},
    ),
    support=({"channel": "email", "tool": "email", "url": f"mailto:{_CUSTOMERS_OWNER}"},),
    table="accounts",
    table_description="One row per subscription; a customer who came back has up to 3 rows.",
    columns=(
        _CUSTOMER_ID,
        Col("full_name", "string", "direct-identifier", pii=True, entity="PERSON",
            description="Given and family name."),
        Col("email", "string", "direct-identifier", pii=True, entity="EMAIL_ADDRESS",
            options={"format": "email"}, description="Contact address."),
        Col("phone", "string", "direct-identifier", pii=True, entity="PHONE_NUMBER",
            description="US phone number, in the format the customer typed it."),
        Col("birth_date", "date", "quasi-identifier", pii=True, entity="DATE_TIME",
            generalize={"truncate": "year"}, description="Date of birth (ages 18-90)."),
        # No meshNbPiiEntity: presidio has no offline recognizer for a bare ZIP code.
        Col("postcode", "string", "quasi-identifier", pii=True, generalize={"prefix": 3},
            options={"pattern": "^[0-9]{5}$"}, description="5-digit postal code."),
        Col("region", "string", "public", categories=REGIONS, description="Sales region."),
        Col("plan", "string", "public", categories=PLANS, description="Subscription plan."),
        Col("signup_date", "date", "public", description="Start of this subscription."),
        Col("monthly_spend", "number", "quasi-identifier", pii=True, bounds=SPEND_BOUNDS,
            generalize={"bin": 10}, required=True,
            description="Average monthly spend in USD; exact amounts match billing records."),
        Col("churned", "boolean", "public", description="The subscription was cancelled."),
    ),
    policy={
        "policyVersion": 1,
        "privacyUnit": "customer_id",
        "maxContributions": 2,
        "joinKeys": ["customer_id"],
        "purposes": {
            "churn-analysis": {
                "description": "Which plans, regions, ages and spending go with churn; "
                               "differentially private aggregates only.",
                "legalBasis": "GDPR Art. 6(1)(f) -- legitimate interests (improving the service)",
                "access": "dp-aggregate",
                "allowedColumns": ["region", "plan", "signup_date", "monthly_spend", "churned",
                                   "birth_date"],
                "budget": _DP_BUDGET,
                "maxEpsilonPerQuery": 1.0,
            },
            "support-operations": {
                "description": "Support agents review accounts row by row; identifiers are "
                               "keyed tokens, postcodes are generalized.",
                "legalBasis": "GDPR Art. 6(1)(b) -- performance of the customer contract",
                "access": "pseudonymized-rows",
                "allowedColumns": ["customer_id", "email", "postcode", "region", "plan",
                                   "signup_date", "churned"],
                "requiresAcknowledgement": True,
                "approvers": [_CUSTOMERS_OWNER],
            },
            "marketing-research": {
                "description": "Market size and spend per region and plan; one small budget "
                               "shared by everyone working on this purpose.",
                "legalBasis": "GDPR Art. 6(1)(f) -- legitimate interests (direct marketing, "
                              "Recital 47)",
                "access": "dp-aggregate",
                "allowedColumns": ["region", "plan", "monthly_spend"],
                "budget": {**_DP_BUDGET, "epsilon": 1.0, "scope": "per-purpose"},
                "maxEpsilonPerQuery": 0.25,
            },
        },
    },
)

SALES = ProductSpec(
    name="sales",
    id="mesh-nb-demo-sales",
    domain="sales",
    description={
        "purpose": "Orders of the web shop (synthetic demo data).",
        "usage": _USAGE,
        "limitations": "A customer may have hundreds of orders; DP queries keep at most "
                       "maxContributions orders per customer.",
    },
    team="sales-analytics",
    members=(
        {"username": _SALES_OWNER, "name": "Priya Owner", "role": "owner",
         "dateIn": "2023-09-01"},
        {"username": "dan.steward@example.org", "name": "Dan Steward", "role": "data steward",
         "dateIn": "2024-02-12"},
    ),
    support=({"channel": "email", "tool": "email", "url": f"mailto:{_SALES_OWNER}"},),
    table="orders",
    table_description="One row per order.",
    columns=(
        Col("order_id", "string", "public", required=True, primary_key=True,
            options={"pattern": "^O[0-9]{8}$"},
            description="Order number, in time order; says nothing about the person by itself."),
        _CUSTOMER_ID,
        Col("order_date", "date", "public", description="Day the order was placed."),
        Col("amount", "number", "sensitive", bounds=AMOUNT_BOUNDS, required=True,
            description="Order total in USD."),
        Col("category", "string", "public", categories=CATEGORIES,
            description="Product category."),
        Col("card_number", "string", "direct-identifier", pii=True, entity="CREDIT_CARD",
            description="Payment card (Visa or Mastercard)."),
        Col("ip_address", "string", "direct-identifier", pii=True, entity="IP_ADDRESS",
            description="IPv4 address the order came from."),
    ),
    policy={
        "policyVersion": 1,
        "privacyUnit": "customer_id",
        "maxContributions": 10,
        "joinKeys": ["customer_id"],
        "purposes": {
            "churn-analysis": {
                "description": "Order volumes, amounts and categories over time, for churn "
                               "analysis; differentially private aggregates only.",
                "legalBasis": "GDPR Art. 6(1)(f) -- legitimate interests (improving the service)",
                "access": "dp-aggregate",
                "allowedColumns": ["order_date", "amount", "category"],
                "budget": _DP_BUDGET,
                "maxEpsilonPerQuery": 1.0,
            },
            "fraud-review": {
                "description": "Fraud analysts review suspicious orders row by row; cards, IP "
                               "addresses and customers are keyed tokens, so reuse stays visible.",
                "legalBasis": "GDPR Art. 6(1)(f) -- legitimate interests (fraud prevention, "
                              "Recital 47)",
                "access": "pseudonymized-rows",
                "allowedColumns": ["order_id", "customer_id", "order_date", "amount", "category",
                                   "card_number", "ip_address"],
                "requiresAcknowledgement": True,
                "approvers": [_SALES_OWNER],
            },
        },
    },
)


# --------------------------------------------------------------------------------------------
# marketing.leads: small, and breaks the mesh's governance rules on purpose
# --------------------------------------------------------------------------------------------

LEAD_SOURCES = ("web", "event", "referral", "partner")
_MARKETING_OWNER = "mark.owner@example.org"


def _leads(seed: int) -> dict[str, np.ndarray]:
    """The columns of marketing.leads: one row per lead, names and addresses as in customers."""
    rng = _rng(seed, "leads")
    first, last = _people(seed + 1, N_LEADS)
    region, _ = _regions_postcodes(seed + 1, N_LEADS)
    return {
        "lead_id": "L" + _digits(np.arange(1, N_LEADS + 1), 5),
        "full_name": first + " " + last,
        "email": _emails(seed + 1, first, last),
        "region": region,
        "source": _pick(rng, LEAD_SOURCES, (0.5, 0.2, 0.2, 0.1), N_LEADS).astype(STR),
        "score": rng.integers(0, 101, size=N_LEADS),
        "signup_date": _date_offsets(*ORDER_RANGE, rng.random(N_LEADS)),
        "converted": rng.random(N_LEADS) < 0.18,
    }


MARKETING = ProductSpec(
    name="marketing",
    id="mesh-nb-demo-marketing",
    domain="marketing",
    description={
        "purpose": "Leads collected by the marketing domain (synthetic demo data). This "
                   "contract breaks the mesh's governance rules on purpose: run "
                   "`mesh-nb govern` on the demo mesh.",
        "usage": _USAGE,
    },
    team="marketing-ops",
    members=({"username": _MARKETING_OWNER, "name": "Mark Owner", "role": "owner",
              "dateIn": "2025-02-01"},),
    support=({"channel": "email", "tool": "email", "url": f"mailto:{_MARKETING_OWNER}"},),
    table="leads",
    table_description="One row per lead.",
    retention_years=10,  # governance: above the mesh's 5-year retention limit
    columns=(
        Col("lead_id", "string", "direct-identifier", required=True, pii=True,
            description="The lead; the privacy unit."),
        Col("full_name", "string", "direct-identifier", pii=True, entity="PERSON",
            description="Given and family name."),
        # governance: an e-mail column declared public, with no PII entity
        Col("email", "string", "public", description="Where the newsletter goes."),
        Col("region", "string", "public", categories=REGIONS, description="Sales region."),
        Col("source", "string", "public", categories=LEAD_SOURCES,
            description="Where the lead came from."),
        Col("score", "integer", "public", bounds=(0, 100), description="Lead score."),
        Col("signup_date", "date", "public", description="Day the lead signed up."),
        Col("converted", "boolean", "public", description="The lead became a customer."),
    ),
    policy={
        "policyVersion": 1,
        "privacyUnit": "lead_id",
        "maxContributions": 1,
        "purposes": {
            "region-counts": {
                "description": "Leads per region and source; differentially private counts.",
                "legalBasis": "GDPR Art. 6(1)(f) -- legitimate interests (direct marketing)",
                "access": "dp-aggregate",
                "allowedColumns": ["region", "source", "converted"],
                "budget": {"epsilon": 1.0, "delta": 1.0e-6, "scope": "per-analyst",
                           "period": "P30D"},
            },
            "campaign-stats": {  # governance: 10 per week is far above 3 per 30 days
                "description": "Campaign conversion by score; differentially private.",
                "legalBasis": "GDPR Art. 6(1)(f) -- legitimate interests (direct marketing)",
                "access": "dp-aggregate",
                "allowedColumns": ["region", "source", "score", "converted"],
                "budget": {"epsilon": 10.0, "delta": 1.0e-6, "scope": "per-analyst",
                           "period": "P7D"},
            },
            "lead-export": {  # governance: raw rows, no approvers, no legal basis
                "description": "Export leads to the e-mail campaign tool.",
                "access": "raw-rows",
                "allowedColumns": ["lead_id", "full_name", "email", "region"],
            },
            "ad-profiling": {  # governance: profiling is forbidden in marketing; email in DP
                "description": "Profiles of leads for ad targeting.",
                "legalBasis": "GDPR Art. 6(1)(a) -- consent",
                "access": "dp-aggregate",
                "allowedColumns": ["email", "region", "score"],
                "budget": {"epsilon": 1.0, "delta": 1.0e-6, "scope": "per-analyst",
                           "period": "P30D"},
            },
        },
    },
)

GOVERNANCE_TEMPLATE = Path(__file__).parent / "governance" / "demo-governance.yaml"


def write_demo(root: str | Path, seed: int = 7, *, progress: bool = False) -> Path:
    """Write the demo products ``customers``, ``sales`` and ``marketing`` and the mesh's
    ``governance.yaml`` under ``root``; returns ``root``.

    Same seed, same data and same YAML. Takes well under a second.
    """
    from tqdm.auto import tqdm

    root = Path(root)
    with tqdm(total=5, desc="mesh_nb demo", disable=not progress) as bar:
        accounts = _accounts(seed)
        bar.update()
        _write_product(root, CUSTOMERS, accounts)
        bar.update()
        orders = _orders(seed, np.unique(accounts["customer_id"]))
        bar.update()
        _write_product(root, SALES, orders)
        bar.update()
        _write_product(root, MARKETING, _leads(seed))
        (root / "governance.yaml").write_text(GOVERNANCE_TEMPLATE.read_text(encoding="utf-8"),
                                              encoding="utf-8")
        bar.update()
    return root


if __name__ == "__main__":  # python -m mesh_nb.demo DIR [SEED]
    import sys

    print(write_demo(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 7, progress=True))


def demo_mesh(path: str | Path | None = None, *, seed: int = 7) -> Mesh:
    """The built-in demo mesh (customers, sales), written to ``path`` on first use."""
    root = Path(path if path is not None else DEFAULT_DEMO_DIR)
    if not (root.is_dir() and find_contracts(root)):
        write_demo(root, seed=seed)
    return open_mesh(root)
