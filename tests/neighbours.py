"""Two neighbouring meshes for privacy audits: identical except for one added person.

``write_neighbours(root)`` writes ``root/D`` and ``root/D1``, each a mesh of two small data
products with ODCS contracts:

* ``people.visits`` -- privacy unit ``pid``, ``maxContributions: 3``; columns ``x`` (number in
  [0, 100], required) and ``grp`` (declared categories a, b, c).
* ``shop.orders`` -- privacy unit ``pid`` (the same people), ``maxContributions: 4``; column
  ``amount`` (number in [0, 1000], required).

``D1`` is ``D`` plus one person, ``ADDED``, chosen to move every aggregate as far as the
contract allows: identical rows, more of them than contribution bounding keeps (6 rows in
``people.visits``, where k = 3; with 4 orders, 24 joined rows, where the join keeps k = 4),
so that after bounding exactly k rows count and a bound that kept too many would show; every
value at the upper clamping bound (``x = 100``, ``amount = 1000``); in group ``a``.

In ``people.visits`` nobody else has more than k rows, so the exact bounded aggregates are the
same on every run (bounding draws which rows to keep only for the added person, whose rows are
identical). In the join, other people have up to 9 joined rows, more than the bound 4, so the
bound really draws rows at random there; each person's orders share one amount, so which rows
it keeps moves no exact aggregate and the exact primitives stay the same on every run.

Each purpose gets a huge budget (epsilon 1e6) so thousands of releases fit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mesh_nb.demo import Col, ProductSpec, contract_yaml

PURPOSE = "audit"
ADDED = "ADDED"
X_BOUNDS = (0.0, 100.0)
AMOUNT_BOUNDS = (0.0, 1000.0)
K_PEOPLE, K_SHOP = 3, 4
N_PEOPLE = 200
GROUPS = ("a", "b", "c")

_OWNER = ({"username": "audit.owner@example.org", "name": "Audit Owner", "role": "owner",
           "dateIn": "2025-01-01"},)
_PID = Col("pid", "string", "direct-identifier", required=True, pii=True,
           description="The person; the privacy unit of both products.")


def _policy(k: int, columns: list[str]) -> dict:
    return {
        "policyVersion": 1,
        "privacyUnit": "pid",
        "maxContributions": k,
        "joinKeys": ["pid"],
        "purposes": {PURPOSE: {
            "description": "Empirical privacy audit (tests only).",
            "legalBasis": "none -- synthetic test data",
            "access": "dp-aggregate",
            "allowedColumns": columns,
            "budget": {"epsilon": 1.0e6, "delta": 1.0e-6, "scope": "per-analyst"},
            "maxEpsilonPerQuery": 10.0,
        }},
    }


PEOPLE = ProductSpec(
    name="people", id="mesh-nb-test-audit-people", domain="audit",
    description={"purpose": "Synthetic rows for the empirical privacy audit.",
                 "usage": "tests only"},
    team="audit", members=_OWNER, table="visits",
    table_description="Up to 3 rows per person.",
    columns=(_PID,
             Col("x", "number", "sensitive", bounds=X_BOUNDS, required=True,
                 description="A bounded value."),
             Col("grp", "string", "public", categories=GROUPS, description="A group.")),
    policy=_policy(K_PEOPLE, ["x", "grp"]),
    tags=("mesh-nb-test",),
)

SHOP = ProductSpec(
    name="shop", id="mesh-nb-test-audit-shop", domain="audit",
    description={"purpose": "Synthetic orders for the empirical privacy audit.",
                 "usage": "tests only"},
    team="audit", members=_OWNER, table="orders",
    table_description="Orders of the same people.",
    columns=(_PID,
             Col("amount", "number", "sensitive", bounds=AMOUNT_BOUNDS, required=True,
                 description="Order total.")),
    policy=_policy(K_SHOP, ["amount"]),
    tags=("mesh-nb-test",),
)


def _base(seed: int) -> tuple[dict, dict]:
    """The columns of ``people.visits`` and ``shop.orders`` for everyone but ``ADDED``."""
    rng = np.random.default_rng(seed)
    pids = np.array([f"P{i:04d}" for i in range(N_PEOPLE)])
    visits_per = rng.integers(1, K_PEOPLE + 1, size=N_PEOPLE)  # never above the bound
    vp = np.repeat(pids, visits_per)
    people = {"pid": vp, "x": np.round(rng.uniform(*X_BOUNDS, size=len(vp)), 2),
              "grp": rng.choice(GROUPS, size=len(vp))}
    # up to 3 orders per person: up to 9 joined rows, above the join's bound of 4; one amount
    # per person, so which joined rows the bound keeps never changes the exact sums
    orders_per = rng.integers(1, 4, size=N_PEOPLE)
    op = np.repeat(pids, orders_per)
    amount = np.round(rng.uniform(*AMOUNT_BOUNDS, size=N_PEOPLE), 2)
    shop = {"pid": op, "amount": np.repeat(amount, orders_per)}
    return people, shop


def _added(columns: dict, rows: int, **values) -> dict:
    """``columns`` plus ``rows`` identical rows of ``ADDED`` with ``values``."""
    values = {**values, "pid": ADDED}
    return {k: np.concatenate([v, np.full(rows, values[k], dtype=object if k == "pid"
                                          else v.dtype)]) for k, v in columns.items()}


def _write(folder: Path, spec: ProductSpec, columns: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    schema = spec.arrow_schema()
    table = pa.table([pa.array(list(columns[f.name]) if f.name == "pid" else columns[f.name],
                               type=f.type) for f in schema], schema=schema)
    pq.write_table(table, folder / spec.file)
    (folder / "datacontract.yaml").write_text(contract_yaml(spec), encoding="utf-8")


def write_neighbours(root: Path, seed: int = 11) -> tuple[Path, Path]:
    """Write the meshes ``root/D`` (without ``ADDED``) and ``root/D1`` (with); return both."""
    people, shop = _base(seed)
    with_people = _added(people, 2 * K_PEOPLE, x=X_BOUNDS[1], grp="a")
    # 6 visits x 4 orders = 24 joined rows for ADDED, six times the join's bound of 4
    with_shop = _added(shop, K_SHOP, amount=AMOUNT_BOUNDS[1])
    d0, d1 = Path(root) / "D", Path(root) / "D1"
    _write(d0 / "people", PEOPLE, people)
    _write(d0 / "shop", SHOP, shop)
    _write(d1 / "people", PEOPLE, with_people)
    _write(d1 / "shop", SHOP, with_shop)
    return d0, d1
