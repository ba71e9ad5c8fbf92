"""OpenLineage dataset naming of the ledger export: physical locations, mesh names as symlinks.

A real demo mesh (DuckDB over parquet files, SQLite ledgers) is queried, then exported with
:func:`mesh_nb.review.export_openlineage`; every event is validated against the spec schemas.
The Spark-catalog case rewrites the contract's servers after the queries ran (no Spark is
started: the export reads the ledger and the contracts, never the data).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

import mesh_nb
from mesh_nb.review import export_openlineage, validate_event
from mesh_nb.review.lineage import query_lineage

COUNT = "SELECT COUNT(*) AS n FROM customers.accounts"
JOIN = ("SELECT c.region, SUM(o.amount) AS total FROM customers.accounts AS c "
        "JOIN sales.orders AS o ON c.customer_id = o.customer_id GROUP BY c.region")
FILTERED = ("SELECT plan, AVG(monthly_spend) AS spend FROM customers.accounts "
            "WHERE region = 'zzsecretregion' AND monthly_spend > 98765.4321 GROUP BY plan")


def _export(mesh: mesh_nb.Mesh, tmp_path: Path, product: str = "customers") -> list[dict]:
    out = export_openlineage(mesh.product(product), tmp_path / f"{product}.jsonl", mesh=mesh)
    for ev in out.events:
        assert validate_event(ev) == []
    return out.events


def _release(events: list[dict], sql_start: str) -> dict:
    return next(ev for ev in events if ev["eventType"] == "COMPLETE"
                and ev["job"]["facets"].get("sql", {}).get("query", "").startswith(sql_start))


def _mesh_name(dataset: dict) -> str:
    (link,) = dataset["facets"]["symlinks"]["identifiers"]
    assert (link["namespace"], link["type"]) == ("mesh-nb", "TABLE")
    return link["name"]


def _play(mesh: mesh_nb.Mesh) -> None:
    with mesh.bind("customers", purpose="churn-analysis", analyst="alice") as s:
        s.query(COUNT, epsilon=0.2)
        s.query(FILTERED, epsilon=0.2)
    with mesh.bind(["customers", "sales"], purpose="churn-analysis", analyst="carol") as s:
        s.query(JOIN, epsilon=0.3)


def test_parquet_inputs_are_named_by_file_with_the_mesh_name_as_symlink(mesh, tmp_path):
    _play(mesh)
    events = _export(mesh, tmp_path)
    accounts = mesh.product("customers").contract.table("accounts").data_path.resolve()
    releases = [ev for ev in events if ev["job"]["name"].startswith("release.")]
    assert releases
    for ev in releases:
        for d in ev["inputs"]:
            assert d["namespace"] == "file" and d["name"].startswith("/")
            assert Path(d["name"]).is_file()
            table = _mesh_name(d)
            product, name = table.split(".")
            path = mesh.product(product).contract.table(name).data_path.resolve()
            assert d["name"] == path.as_posix()
    count = _release(events, "SELECT COUNT(*)")
    assert [(d["namespace"], d["name"]) for d in count["inputs"]] == \
        [("file", accounts.as_posix())]  # COUNT(*) names no column, yet reads its table
    assert _mesh_name(count["inputs"][0]) == "customers.accounts"
    assert count["outputs"][0]["facets"]["columnLineage"]["fields"]["n"]["inputFields"] == []


def test_a_join_has_both_inputs_and_column_lineage_points_at_them(mesh, tmp_path):
    _play(mesh)
    join = _release(_export(mesh, tmp_path), "SELECT c.region, SUM(o.amount)")
    inputs = {_mesh_name(d): (d["namespace"], d["name"]) for d in join["inputs"]}
    orders = mesh.product("sales").contract.table("orders").data_path.resolve().as_posix()
    assert set(inputs) == {"customers.accounts", "sales.orders"}
    assert inputs["sales.orders"] == ("file", orders)
    lineage = join["outputs"][0]["facets"]["columnLineage"]
    (total,) = lineage["fields"]["total"]["inputFields"]
    assert (total["namespace"], total["name"], total["field"]) == ("file", orders, "amount")
    assert total["transformations"][0]["subtype"] == "AGGREGATION"
    joined = {(d["name"], d["field"]) for d in lineage["dataset"]
              if d["transformations"][0]["subtype"] == "JOIN"}
    assert joined == {(inputs["customers.accounts"][1], "customer_id"), (orders, "customer_id")}
    # the same release in the sales ledger names the same datasets
    sales = _release(_export(mesh, tmp_path, "sales"), "SELECT c.region, SUM(o.amount)")
    assert {(d["namespace"], d["name"]) for d in sales["inputs"]} == set(inputs.values())


def test_no_literal_of_a_where_clause_reaches_the_export(mesh, tmp_path):
    _play(mesh)
    events = _export(mesh, tmp_path)
    text = (tmp_path / "customers.jsonl").read_text()
    for literal in ("zzsecretregion", "98765.4321"):  # (digits alone may be in a hash)
        assert literal not in text
    filtered = _release(events, "SELECT plan, AVG(monthly_spend)")
    assert "?" in filtered["job"]["facets"]["sql"]["query"]
    indirect = {(d["field"], d["transformations"][0]["subtype"])
                for d in filtered["outputs"][0]["facets"]["columnLineage"]["dataset"]}
    assert {("region", "FILTER"), ("monthly_spend", "FILTER"), ("plan", "GROUP_BY")} <= indirect


def test_a_spark_catalog_table_gets_the_catalogs_naming(demo_dir, tmp_path):
    m = mesh_nb.open_mesh(demo_dir)
    with m.bind("customers", purpose="churn-analysis", analyst="alice") as s:
        s.query(COUNT, epsilon=0.2)
    path = demo_dir / "customers" / "datacontract.yaml"
    contract = yaml.safe_load(path.read_text())
    contract["servers"] = [{
        "server": "lake", "type": "custom", "catalog": "lakehouse", "schema": "crm",
        "customProperties": [
            {"property": "meshNbEngine", "value": "spark"},
            {"property": "meshNbSparkRemote",
             "value": "sc://spark.example.org:15003/;token=s3cr3t-t0ken"}]}]
    path.write_text(yaml.safe_dump(contract, sort_keys=False))
    lake = mesh_nb.open_mesh(demo_dir)
    table = lake.product("customers").contract.table("accounts")
    assert table.data_path is None and table.source == "lakehouse.crm.accounts"
    events = _export(lake, tmp_path)
    count = _release(events, "SELECT COUNT(*)")
    (d,) = count["inputs"]
    assert (d["namespace"], d["name"]) == ("spark://spark.example.org:15003",
                                           "lakehouse.crm.accounts")
    assert _mesh_name(d) == "customers.accounts"
    assert "s3cr3t" not in (tmp_path / "customers.jsonl").read_text()


def test_query_lineage_traces_through_ctes_and_subqueries():
    schema = {"customers": {"accounts": {c: "VARCHAR" for c in
                                         ("customer_id", "region", "plan", "monthly_spend")}},
              "sales": {"orders": {"customer_id": "VARCHAR", "amount": "DOUBLE"}}}
    cte = query_lineage("WITH t AS (SELECT region, monthly_spend FROM customers.accounts "
                        "WHERE plan = ?) SELECT region, AVG(monthly_spend) AS a FROM t "
                        "GROUP BY region", [], schema)
    assert cte.tables == ["customers.accounts"]
    assert cte.direct == {"region": (["customers.accounts.region"], False),
                          "a": (["customers.accounts.monthly_spend"], True)}
    assert ("customers.accounts.plan", "FILTER") in cte.indirect
    sub = query_lineage("SELECT region, n FROM (SELECT region, COUNT(*) AS n FROM "
                        "customers.accounts GROUP BY region) AS x", [], schema)
    assert sub.direct["n"] == ([], True)  # aggregated inside the subquery
    assert sub.tables == ["customers.accounts"]
    semi = query_lineage("SELECT region, COUNT(*) AS n FROM customers.accounts WHERE "
                         "customer_id IN (SELECT customer_id FROM sales.orders WHERE amount > ?)"
                         " GROUP BY region", [], schema)
    assert semi.tables == ["customers.accounts", "sales.orders"]
    assert {("sales.orders.customer_id", "FILTER"), ("sales.orders.amount", "FILTER"),
            ("customers.accounts.customer_id", "FILTER")} <= set(semi.indirect)
    unreadable = query_lineage("(unparseable", ["customers.accounts.region"], schema)
    assert unreadable.tables == ["customers.accounts"]
    assert unreadable.indirect == [("customers.accounts.region", "UNKNOWN")]
    assert json.dumps(unreadable.direct) == "{}"
