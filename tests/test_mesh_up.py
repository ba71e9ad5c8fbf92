"""Issue 17, a mesh that stays up: a product whose contract does not load is reported (file:line,
what) and skipped while the others work; YAML structure mistakes get their own message."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import mesh_nb
from mesh_nb import ContractError, MeshError, check_contract
from mesh_nb.mesh import MeshWarning, ProductBroken

FRAUD_FIELDS = re.compile(r"(?m)(?<=^      fraud-review:\n)((?:        .*\n)+)")


def dedent_fraud_review(text: str) -> str:
    """The last purpose's fields dedented two levels: they land in the policy itself."""
    return FRAUD_FIELDS.sub(lambda m: re.sub(r"(?m)^        ", "    ", m.group(1)), text)


BREAKS = {
    "yaml-syntax": lambda t: t.replace("    maxContributions: 10", "    maxContributions: [10"),
    "schema": lambda t: t.replace("kind: DataContract", "kind: DataContract\nflavour: odd"),
    "missing-data": lambda t: t.replace("path: ./orders.parquet", "path: ./gone.parquet"),
    "dedented-purpose": dedent_fraud_review,
}


def break_sales(demo_dir: Path, kind: str) -> Path:
    contract = demo_dir / "sales" / "datacontract.yaml"
    before = contract.read_text()
    if kind == "missing-data":  # the contract names a file that is not there
        (demo_dir / "sales" / "orders.parquet").rename(demo_dir / "sales" / "moved.parquet")
    else:
        contract.write_text(BREAKS[kind](before))
        assert contract.read_text() != before
    return contract


@pytest.mark.parametrize("kind", sorted(BREAKS))
def test_one_broken_product_leaves_the_others_up(demo_dir: Path, kind: str) -> None:
    contract = break_sales(demo_dir, kind)
    with pytest.warns(MeshWarning, match=r"`sales`: .*sales/datacontract\.yaml:\d+: "):
        m = mesh_nb.open_mesh(demo_dir)
    assert sorted(m.products) == ["customers", "marketing"]
    broken = m.broken["sales"]
    assert broken.file == contract and broken.problems
    assert all(p.line for p in broken.problems), [str(p) for p in broken.problems]
    assert "skipped, not loading: sales" in repr(m)
    with m.bind("customers", purpose="churn-analysis", analyst="alice") as s:
        r = s.query("SELECT plan, COUNT(*) AS n FROM customers.accounts GROUP BY plan",
                    epsilon=0.3)
        assert len(r.frame) > 0
    with pytest.raises(ProductBroken) as err:
        m.bind("sales", purpose="churn-analysis", analyst="alice")
    assert isinstance(err.value, ContractError) and isinstance(err.value, MeshError)
    assert "data product `sales` is skipped" in str(err.value)
    assert f"{contract}:{broken.problems[0].line}: " in str(err.value)
    with pytest.raises(ProductBroken):
        m.ledger("sales")  # naming it anywhere says why
    with pytest.raises(mesh_nb.NotFound, match="skipped, not loading: sales"):
        m.product("sails")


def test_the_analyst_of_a_server_learns_only_that_it_is_unavailable(demo_dir: Path) -> None:
    break_sales(demo_dir, "missing-data")
    with pytest.warns(MeshWarning):
        m = mesh_nb.open_mesh(demo_dir)
    err = m.broken["sales"].error()
    assert "gone" not in err.public() and "orders.parquet" not in err.public()
    assert "datacontract" not in err.public() and "`sales` is unavailable" in err.public()
    assert "orders.parquet" in str(err)  # the owner's own message says which file


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mesh_nb.cli", *args], capture_output=True,
                          text=True)


def test_check_and_govern_list_the_broken_product(demo_dir: Path) -> None:
    contract = break_sales(demo_dir, "dedented-purpose")
    done = cli("check", str(demo_dir))
    assert done.returncode == 1, done.stderr
    assert f"{demo_dir / 'customers' / 'datacontract.yaml'}: ok" in done.stdout
    assert re.search(rf"{re.escape(str(contract))}:\d+: customProperties\[0\]\.value\.access: "
                     r"`access` is a field of a purpose", done.stdout), done.stdout
    assert f"1 product(s) do not load; a mesh opens without them: sales ({contract})" \
        in done.stdout
    assert "Traceback" not in done.stderr
    gov = cli("govern", "--contract-only", str(demo_dir))
    assert gov.returncode != 0 and "Traceback" not in gov.stderr
    assert "skipped: 1 product(s) whose contract does not load" in gov.stdout
    assert re.search(r"  sales: .*sales/datacontract\.yaml:\d+: ", gov.stdout), gov.stdout
    assert "\ncustomers: " in gov.stdout  # the others are still checked
    named = cli("govern", "--contract-only", "--product", "sales", str(demo_dir))
    assert named.returncode == 2 and "data product `sales` is skipped" in named.stderr


def test_check_reports_a_unique_unit_the_data_breaks(demo_dir: Path) -> None:
    contract = demo_dir / "customers" / "datacontract.yaml"
    text = contract.read_text()
    marked = text.replace("    required: true\n", "    required: true\n    unique: true\n", 1)
    assert marked != text
    contract.write_text(marked)
    line = marked.splitlines().index("    unique: true") + 1
    done = cli("check", str(demo_dir / "customers"))
    assert done.returncode == 1
    found = re.search(rf"datacontract\.yaml:{line}: schema\[0\]\.properties\[0\]\.unique: "
                      r"privacy unit `customer_id` of table `accounts` is declared `unique: "
                      r"true`, but ([\d,]+) unit\(s\) appear on more than one row", done.stdout)
    assert found, done.stdout
    assert int(found.group(1).replace(",", "")) > 0
    assert not re.search(r"C\d{7}", done.stdout)  # a count, never a unit's value
    contract.write_text(text)
    assert cli("check", str(demo_dir / "customers")).returncode == 0


# -- YAML structure mistakes -----------------------------------------------------------------

def problems_of(demo_dir: Path, text: str) -> list[str]:
    contract = demo_dir / "sales" / "datacontract.yaml"
    contract.write_text(text)
    _, problems = check_contract(contract, count_rows=False)
    return [str(p).replace(f"{contract}:", "") for p in problems]


def line_of(text: str, start: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(start))


def test_dedented_purpose_fields_say_where_they_belong(demo_dir: Path) -> None:
    text = dedent_fraud_review((demo_dir / "sales" / "datacontract.yaml").read_text())
    found = problems_of(demo_dir, text)
    access, purpose = line_of(text, "    access: pseudonymized"), line_of(text, "      fraud-")
    purposes, first = line_of(text, "    purposes:"), line_of(text, "        description:")
    assert (f"{access}: customProperties[0].value.access: `access` is a field of a purpose, "
            "not of the privacy policy (`meshNbPrivacy` value): it looks mis-indented "
            f"(dedented one level) — move it under `fraud-review:` (line {purpose}) in "
            f"`purposes:` (line {purposes}): indent it to line up with `description:` "
            f"(line {first})") in found, found
    assert any(p.startswith(f"{purpose}: customProperties[0].value.purposes.fraud-review: "
                            "purpose `fraud-review` has nothing under it") for p in found)
    assert not any("unknown field" in p or "remove it" in p for p in found), found


def test_a_whole_purpose_dedented_is_a_purpose_out_of_place(demo_dir: Path) -> None:
    text = (demo_dir / "sales" / "datacontract.yaml").read_text()
    block = FRAUD_FIELDS.search(text).group(1)
    moved = text.replace("      fraud-review:\n" + block, "    fraud-review:\n"
                         + re.sub(r"(?m)^        ", "      ", block))
    found = problems_of(demo_dir, moved)
    at = line_of(moved, "    fraud-review:")
    assert any(p.startswith(f"{at}: customProperties[0].value.fraud-review: `fraud-review` "
                            "looks like a purpose mis-indented") and "indent it and its lines "
               "under `purposes:`" in p for p in found), found


def test_purposes_outside_the_policy_value(demo_dir: Path) -> None:
    text = (demo_dir / "sales" / "datacontract.yaml").read_text()
    moved = text.replace("    purposes:\n", "  purposes:\n")
    found = problems_of(demo_dir, moved)
    at, value = line_of(moved, "  purposes:"), line_of(moved, "  value:")
    assert any(p.startswith(f"{at}: customProperties[0].purposes: `purposes` is a field of the "
                            "privacy policy") and f"move it under `value:` (line {value})" in p
               for p in found), found
    assert any(f"required field `purposes` is missing — `purposes:` on line {at} looks "
               "mis-indented" in p for p in found), found


def test_typos_get_did_you_mean(demo_dir: Path) -> None:
    text = (demo_dir / "sales" / "datacontract.yaml").read_text()
    found = problems_of(demo_dir, text.replace("maxEpsilonPerQuery: 1.0", "maxEpsilonPerQery: 1")
                        .replace("physicalName: orders", "physicalNme: orders"))
    assert any("maxEpsilonPerQery: unknown field — did you mean `maxEpsilonPerQuery`?" in p
               for p in found), found
    assert any("physicalNme: unknown field — did you mean `physicalName`?" in p
               for p in found), found


def test_tabs_lists_and_duplicates_name_line_and_fix(demo_dir: Path) -> None:
    text = (demo_dir / "sales" / "datacontract.yaml").read_text()
    tab = line_of(text, "    privacyUnit:")
    found = problems_of(demo_dir, text.replace("    privacyUnit:", "\tprivacyUnit:"))
    assert found == [f"{tab}: (yaml): YAML syntax error: a tab indents this line; YAML indents "
                     "with spaces only — replace the tab with spaces, lining the key up with "
                     "its siblings"]
    listed = text.replace("      churn-analysis:\n", "      - churn-analysis:\n")
    found = problems_of(demo_dir, listed)
    dash = line_of(listed, "      - churn-analysis:")
    assert len(found) == 1 and f"remove the `- ` on line {dash}" in found[0], found
    dup = text.replace("    maxContributions: 10", "    maxContributions: 10\n"
                       "    maxContributions: 5")
    found = problems_of(demo_dir, dup)
    first = line_of(dup, "    maxContributions:")
    assert f"{first + 1}: customProperties[0].value.maxContributions: duplicate key (first on " \
           f"line {first}); YAML keeps only the last — remove one of the two — or, if they belong " \
           "to two blocks (two list items, two purposes), the second one's `- ` or indentation " \
           f"is missing above line {first + 1}" in found
    flow = text.replace("joinKeys: [customer_id]", "joinKeys: {customer_id: 1}")
    found = problems_of(demo_dir, flow)
    assert any("joinKeys: is a mapping, but a list belongs here — write each item on its own "
               "line starting with `- `" in p for p in found), found


def test_server_serves_the_rest_and_withholds_the_broken_ones_problems(
        demo_root: Path, tmp_path: Path) -> None:
    import httpx
    from live_server import LiveServer, copy_demo

    mesh = copy_demo(demo_root, tmp_path / "mesh")
    break_sales(mesh, "missing-data")
    server = LiveServer.start(mesh, tmp_path / "server.log")
    try:
        token = server.token("alice", ("churn-analysis",))
        with httpx.Client(base_url=server.url + "/v1", timeout=60,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            listed = client.get("/products")
            assert listed.status_code == 200
            assert sorted(p["name"] for p in listed.json()) == ["customers", "marketing"]
            refused = client.post("/sessions", json={"products": ["sales"],
                                                     "purpose": "churn-analysis"})
            assert refused.status_code == 400
            message = refused.json()["error"]["message"]
            assert message == ("data product `sales` is unavailable: " + ProductBroken.withheld)
            bound = client.post("/sessions", json={"products": ["customers"],
                                                   "purpose": "churn-analysis"})
            assert bound.status_code == 200, bound.text
    finally:
        server.stop()
