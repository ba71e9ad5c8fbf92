"""From a parsed contract (:class:`YamlSource`) to a checked :class:`Contract`.

Stages, each returning problems located in the source: ODCS (JSON Schema and pydantic model)
-> our strict policy model -> the internal dataclasses -> cross-checks between the policy, the
schema and the data files. Reading files and text is :mod:`mesh_nb.contract.odcs`'s job.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from ..durations import period_days
from ..errors import Problem
from .model import (ACCESS_MODES, CLASSIFICATIONS, Budget, Column, Contract,
                    Purpose, Table)
from .privacy import (BOUNDS_FORM, POLICY_PROPERTY, GeneralizeSpec, PrivacySpec, parse_model,
                      purpose_name_ok, resolve_bounds)
from .validate import validate_odcs
from .yamlsource import YamlSource

CONTRACT_FILE = "datacontract.yaml"
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DATA_FORMATS = ("parquet", "csv", "json")
COLUMN_PROPERTIES = ("pii", "meshNbPiiEntity", "meshNbGeneralize")
SERVER_PROPERTIES = ("meshNbEngine", "meshNbSparkRemote")


def contract_file(path: str | Path) -> Path:
    """A product folder or a contract file -> the contract file."""
    p = Path(path)
    return p / CONTRACT_FILE if p.is_dir() else p


def build_contract(src: YamlSource, file: Path, *, resolve: bool = True,
                   count_rows: bool = True) -> tuple[Contract | None, list[Problem]]:
    """The contract built from a parsed source, and every problem found on the way (unsorted;
    the contract may be built even when there are problems).

    ``file`` is where the contract lives (its data paths are relative to its folder);
    ``resolve=False`` keeps those paths as written, for a contract held apart from its data.
    """
    problems = validate_odcs(src)
    builder = _Builder(src, file, resolve)
    contract = builder.build()
    problems += builder.problems
    if contract is not None:
        problems += _cross_check(contract, src, count_rows=count_rows)
    return contract, problems


def _custom(props: Any) -> dict[str, tuple[int, Any]]:
    """ODCS customProperties list -> {property: (index, value)}."""
    out: dict[str, tuple[int, Any]] = {}
    for i, item in enumerate(props or []):
        if isinstance(item, dict) and "property" in item:
            out[str(item["property"])] = (i, item.get("value"))
    return out


class _Builder:
    """Builds the internal model, collecting problems instead of stopping at the first."""

    def __init__(self, src: YamlSource, file: Path, resolve: bool = True):
        self.src, self.file, self.resolve = src, file, resolve
        self.problems: list[Problem] = []
        self.engine: str | None = None
        self.remote: str | None = None
        self.catalog: str | None = None

    def add(self, path: tuple, what: str, fix: str) -> None:
        self.problems.append(self.src.problem(path, what, fix))

    def build(self) -> Contract | None:
        d = self.src.data
        name = d.get("name")
        if not isinstance(name, str) or not IDENT.match(name):
            self.add(("name",), "product name must be a SQL identifier (letters, digits, _)",
                     "queries name tables as `product.table`: use e.g. `customers`")
        tables = self.tables(d.get("schema"))
        policy = self.policy(d.get("customProperties"))
        if policy is None or not tables or not isinstance(name, str):
            return None
        spec, at = policy
        tables, problems, notes = resolve_bounds(spec, tables, self.src, at)
        self.problems += problems
        purposes = {}
        for pname, p in spec.purposes.items():
            if not purpose_name_ok(pname):
                self.add(at + ("purposes", pname), "purpose name is not a slug",
                         "use lower-case letters, digits, - and _, e.g. `churn-analysis`")
            budget = None
            if p.budget is not None:
                budget = Budget(p.budget.epsilon, p.budget.delta, p.budget.scope,
                                period_days(p.budget.period))
            purposes[pname] = Purpose(
                name=pname, description=p.description, access=p.access,
                allowed_columns=tuple(p.allowedColumns), legal_basis=p.legalBasis,
                budget=budget, max_epsilon_per_query=p.maxEpsilonPerQuery,
                default_epsilon_per_query=p.defaultEpsilonPerQuery,
                requires_acknowledgement=p.requiresAcknowledgement,
                approvers=tuple(p.approvers))
        team = d.get("team") if isinstance(d.get("team"), dict) else {}
        owners = tuple(m.get("username", "") for m in team.get("members") or []
                       if isinstance(m, dict) and m.get("role") == "owner")
        desc = d.get("description")
        return Contract(
            id=str(d.get("id", name)), name=name, version=str(d.get("version", "")),
            path=self.file, tables=tuple(tables), privacy_unit=spec.privacyUnit,
            max_contributions=spec.maxContributions, purposes=purposes,
            join_keys=tuple(spec.joinKeys), domain=str(d.get("domain") or ""),
            engine=self.engine, spark_remote=self.remote,
            team=str(team.get("name") or ""), owners=owners,
            description=str(desc.get("purpose", "")) if isinstance(desc, dict) else "",
            ledger=spec.ledger, notes=tuple(notes))

    def policy(self, props: Any) -> tuple[PrivacySpec, tuple] | None:
        found = _custom(props)
        if POLICY_PROPERTY not in found:
            self.add(("customProperties",), f"no `{POLICY_PROPERTY}` custom property",
                     "add the privacy policy (privacyUnit, maxContributions, purposes); "
                     "see docs/contract.md")
            return None
        i, value = found[POLICY_PROPERTY]
        at = ("customProperties", i, "value")
        spec, problems = parse_model(PrivacySpec, value, self.src, at)
        self.problems += problems
        return (spec, at) if spec is not None else None

    def tables(self, schema: Any) -> list[Table]:
        if not isinstance(schema, list) or not schema:
            self.add(("schema",), "no tables", "add a `schema:` list with at least one table")
            return []
        files = self.data_files()
        self.engine, self.remote, self.catalog = self.engine_servers()
        tables = []
        for ti, obj in enumerate(schema):
            if not isinstance(obj, dict):
                continue
            tname = obj.get("name")
            if not isinstance(tname, str) or not IDENT.match(tname):
                self.add(("schema", ti, "name"), "table name must be a SQL identifier",
                         "use letters, digits and _, e.g. `accounts`")
                continue
            physical = str(obj.get("physicalName") or tname)
            columns = [c for ci, prop in enumerate(obj.get("properties") or [])
                       if (c := self.column(("schema", ti, "properties", ci), prop))]
            if not columns:
                self.add(("schema", ti), f"table `{tname}` has no columns",
                         "list its columns under `properties:`")
            names = [c.name for c in columns]
            for dup in sorted({n for n in names if names.count(n) > 1}):
                self.add(("schema", ti, "properties"), f"column `{dup}` is declared twice",
                         "remove one of them")
            match = files.get(physical) or files.get(tname)
            if match is None and len(schema) == 1 and len(files) == 1:
                match = next(iter(files.values()))
            source = f"{self.catalog}.{physical}" if match is None and self.catalog else None
            if match is None and source is None:
                self.add(("schema", ti), f"table `{tname}` has no data file",
                         f"add a server `{{type: local, format: parquet, path: ./{physical}"
                         ".parquet}`; the file's name must be the table's physicalName")
            tables.append(Table(tname, tuple(columns), physical,
                                match[0] if match else None, match[1] if match else "parquet",
                                str(obj.get("description") or ""), source))
        return tables

    def engine_servers(self) -> tuple[str | None, str | None, str | None]:
        """(engine, Spark Connect URL, catalog.schema of Spark tables) the servers declare.

        Any server may carry ``meshNbEngine`` (duckdb | spark) and ``meshNbSparkRemote``
        in its customProperties; a non-local server with ``meshNbEngine: spark`` and a
        ``schema`` (or ``database``) holds, under ``[catalog.]schema``, the tables that have
        no local file.
        """
        from ..query.engines import ENGINE_KINDS  # local: the engines import this package

        found: dict[str, str] = {}
        catalog = None
        for si, srv in enumerate(self.src.data.get("servers") or []):
            if not isinstance(srv, dict):
                continue
            custom = _custom(srv.get("customProperties"))
            for key, (ci, value) in custom.items():
                at = ("servers", si, "customProperties", ci)
                if key.startswith("meshNb") and key not in SERVER_PROPERTIES:
                    self.add(at + ("property",), f"unknown mesh_nb server property `{key}`",
                             f"use one of: {', '.join(SERVER_PROPERTIES)}")
                    continue
                if key == "meshNbEngine" and value not in ENGINE_KINDS:
                    self.add(at + ("value",), f"unknown engine `{value}`",
                             f"use one of: {', '.join(ENGINE_KINDS)}")
                    continue
                if key == "meshNbSparkRemote" and not str(value).startswith("sc://"):
                    self.add(at + ("value",), "meshNbSparkRemote must be a Spark Connect URL",
                             "write e.g. `sc://spark.example.org:15002`")
                    continue
                if key in SERVER_PROPERTIES and found.setdefault(key, str(value)) != str(value):
                    self.add(at + ("value",), f"servers declare two different `{key}`",
                             "declare it on one server only")
            where = srv.get("schema") or srv.get("database")
            if (custom.get("meshNbEngine", (0, None))[1] == "spark"
                    and srv.get("type") != "local" and where):
                catalog = ".".join(str(x) for x in (srv.get("catalog"), where) if x)
        engine, remote = found.get("meshNbEngine"), found.get("meshNbSparkRemote")
        if remote and engine == "duckdb":
            si = next(i for i, srv in enumerate(self.src.data.get("servers") or [])
                      if isinstance(srv, dict)
                      and "meshNbSparkRemote" in _custom(srv.get("customProperties")))
            self.add(("servers", si), "a Spark Connect URL with `meshNbEngine: duckdb`",
                     "set `meshNbEngine: spark` or drop meshNbSparkRemote")
        return engine, remote, catalog

    def data_files(self) -> dict[str, tuple[Path, str]]:
        """Local file servers by file stem: {stem: (absolute path, format)}."""
        out = {}
        for si, srv in enumerate(self.src.data.get("servers") or []):
            if not isinstance(srv, dict) or srv.get("type") != "local" or not srv.get("path"):
                continue
            fmt = str(srv.get("format") or Path(str(srv["path"])).suffix.lstrip("."))
            if fmt not in DATA_FORMATS:
                self.add(("servers", si, "format"), f"data format `{fmt}` is not supported",
                         f"use one of: {', '.join(DATA_FORMATS)}")
                continue
            path = self.file.parent / str(srv["path"])
            path = path.resolve() if self.resolve else path
            out[path.stem] = (path, fmt)
        return out

    def column(self, at: tuple, prop: Any) -> Column | None:
        if not isinstance(prop, dict) or not isinstance(prop.get("name"), str):
            return None
        name = prop["name"]
        ltype = str(prop.get("logicalType") or "string")
        klass = prop.get("classification")
        if klass is None:
            self.add(at, f"column `{name}` has no classification",
                     f"add `classification:` with one of: {', '.join(CLASSIFICATIONS)}")
        elif klass not in CLASSIFICATIONS:
            self.add(at + ("classification",), f"unknown classification `{klass}`",
                     f"use one of: {', '.join(CLASSIFICATIONS)}")
        custom = _custom(prop.get("customProperties"))
        for key, (ci, _) in custom.items():
            if key.startswith("meshNb") and key not in COLUMN_PROPERTIES:
                self.add(at + ("customProperties", ci, "property"),
                         f"unknown mesh_nb column property `{key}`",
                         f"use one of: {', '.join(COLUMN_PROPERTIES)}")
        entity = custom.get("meshNbPiiEntity", (0, None))[1]
        if entity is not None and not re.match(r"^[A-Z][A-Z0-9_]*$", str(entity)):
            self.add(at + ("customProperties", custom["meshNbPiiEntity"][0], "value"),
                     "PII entity type must be a presidio entity name",
                     "use e.g. EMAIL_ADDRESS, PHONE_NUMBER, PERSON, CREDIT_CARD")
        generalize = None
        if "meshNbGeneralize" in custom:
            gi, gval = custom["meshNbGeneralize"]
            spec, problems = parse_model(GeneralizeSpec, gval, self.src,
                                         at + ("customProperties", gi, "value"))
            self.problems += problems
            if spec is not None:
                generalize = spec.model_dump(exclude_none=True)
                if len(generalize) != 1:
                    self.add(at + ("customProperties", gi, "value"),
                             "generalization needs exactly one of bin, truncate, prefix",
                             "e.g. `{bin: 10}` for numbers, `{truncate: year}` for dates, "
                             "`{prefix: 3}` for codes")
        opts = prop.get("logicalTypeOptions") or {}
        bounds = None  # the deprecated form; meshNbPrivacy `bounds` wins (resolve_bounds)
        lo, hi = (opts.get("minimum"), opts.get("maximum")) if isinstance(opts, dict) else (None,) * 2
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi)):
            if lo >= hi:  # a validity range no value fits, DP bounds or not
                self.add(at + ("logicalTypeOptions", "minimum"),
                         f"minimum {lo} is not below maximum {hi}", "swap or correct them")
            else:
                bounds = (float(lo), float(hi))
        pii_flag = custom.get("pii", (0, None))[1]
        return Column(
            name=name, logical_type=ltype, classification=str(klass or "public"),
            pii=bool(pii_flag) or "pii" in (prop.get("tags") or []),
            pii_entity=str(entity) if entity is not None else None, bounds=bounds,
            categories=self.categories(at, prop.get("quality")), generalize=generalize,
            description=str(prop.get("description") or ""), required=prop.get("required") is True,
            unique=prop.get("unique") is True)

    def categories(self, at: tuple, quality: Any) -> tuple | None:
        for qi, rule in enumerate(quality or []):
            if not isinstance(rule, dict) or rule.get("metric") != "invalidValues":
                continue
            valid = (rule.get("arguments") or {}).get("validValues")
            if not isinstance(valid, list) or not valid:
                self.add(at + ("quality", qi, "arguments"), "invalidValues rule without "
                         "`validValues`", "add `arguments: {validValues: [a, b, c]}`")
                return None
            if len(set(map(str, valid))) != len(valid):
                self.add(at + ("quality", qi, "arguments", "validValues"),
                         "declared categories repeat a value", "list each category once")
            return tuple(valid)
        return None


def _cross_check(c: Contract, src: YamlSource, *, count_rows: bool) -> list[Problem]:
    """Consistency of the policy with the schema and the data."""
    i = next(i for i, p in enumerate(src.data.get("customProperties") or [])
             if isinstance(p, dict) and p.get("property") == POLICY_PROPERTY)
    at = ("customProperties", i, "value")
    out: list[Problem] = []

    def add(path: tuple, what: str, fix: str) -> None:
        out.append(src.problem(at + path, what, fix))

    for t in c.tables:
        if t.column(c.privacy_unit) is None:
            add(("privacyUnit",), f"privacy unit `{c.privacy_unit}` is not a column of "
                f"table `{t.name}`", "name the column that identifies the protected person")
    columns = {col.name: col for t in c.tables for col in t.columns}
    qualified = {f"{t.name}.{col.name}": col for t in c.tables for col in t.columns}
    for ki, key in enumerate(c.join_keys):
        if key not in columns:
            add(("joinKeys", ki), f"join key `{key}` is not a column",
                f"use one of: {', '.join(sorted(columns))}")
    for pname, p in c.purposes.items():
        pat = ("purposes", pname)
        for ci, colname in enumerate(p.allowed_columns):
            col = columns.get(colname) or qualified.get(colname)
            if col is None:
                close = [n for n in columns if n.lower() == colname.lower()]
                add(pat + ("allowedColumns", ci), f"allowed column `{colname}` does not exist",
                    f"did you mean `{close[0]}`?" if close else
                    f"use one of: {', '.join(sorted(columns))}")
            elif p.access == "dp-aggregate" and col.numeric and col.bounds is None:
                add(pat + ("allowedColumns", ci), f"numeric column `{colname}` has no bounds, "
                    "so its DP sensitivity is unknown",
                    f"declare them in {BOUNDS_FORM.replace('COLUMN', colname)}")
        if p.access == "dp-aggregate":
            if p.budget is None:
                add(pat, "a dp-aggregate purpose needs a budget",
                    "add `budget: {epsilon: 1.0, delta: 1.0e-6, scope: per-analyst}`")
            elif p.max_epsilon_per_query and p.max_epsilon_per_query > p.budget.epsilon:
                add(pat + ("maxEpsilonPerQuery",), f"maxEpsilonPerQuery "
                    f"{p.max_epsilon_per_query:g} exceeds the whole budget {p.budget.epsilon:g}",
                    "lower it to at most the budget's epsilon")
            if (p.default_epsilon_per_query and p.max_epsilon_per_query
                    and p.default_epsilon_per_query > p.max_epsilon_per_query):
                add(pat + ("defaultEpsilonPerQuery",), "default epsilon per query exceeds "
                    "maxEpsilonPerQuery", "lower it to at most maxEpsilonPerQuery")
        if p.access not in ACCESS_MODES:  # pragma: no cover - the strict model rejects these
            add(pat + ("access",), "unknown access mode", f"use {', '.join(ACCESS_MODES)}")
    if count_rows:
        out += _check_data(c, src, at)
    return out


def _check_data(c: Contract, src: YamlSource, at: tuple) -> list[Problem]:
    """Data files exist, and every budget's delta is below 1/rows."""
    from ..query.engines import count_rows  # local: only checks with data need it

    out: list[Problem] = []
    rows = 0
    for t in c.tables:
        if t.data_path is None:
            continue
        if not t.data_path.exists():
            si = _server_index(src, t.data_path)
            out.append(src.problem(("servers", si, "path") if si is not None else ("servers",),
                                   f"data file `{t.data_path.name}` of table `{t.name}` "
                                   "does not exist", "put the file next to the contract or "
                                   "correct the server's path"))
            continue
        rows = max(rows, count_rows(t.data_path, t.data_format))
    if rows:
        for pname, p in c.purposes.items():
            if p.budget and p.budget.delta >= 1 / rows:
                out.append(src.problem(at + ("purposes", pname, "budget", "delta"),
                                       f"delta {p.budget.delta:g} is not below 1/rows "
                                       f"(1/{rows} = {1 / rows:.3g})",
                                       f"use a delta below {1 / rows:.3g}, e.g. "
                                       f"{10 ** math.floor(math.log10(0.1 / rows)):.0e}"))
    return out


def _server_index(src: YamlSource, path: Path) -> int | None:
    for si, srv in enumerate(src.data.get("servers") or []):
        if isinstance(srv, dict) and srv.get("path") and Path(str(srv["path"])).name == path.name:
            return si
    return None


def unique_unit_problems(c: Contract) -> list[Problem]:
    """A ``unique: true`` privacy unit the data breaks: per table, how many units appear on
    more than one row and how many rows have none (counts only, never a value).

    Queries never trust the declaration blindly (the engine checks it on the data once per data
    version, :mod:`mesh_nb.query.checks`, and bounds contributions when it does not hold), but
    the owner should learn that the contract says something false. Reads every row once.
    """
    from ..query.engines import sandboxed_duckdb  # local: only the owner's check reads data
    from .yamlsource import column_path, contract_source

    src = contract_source(c.path)
    out: list[Problem] = []
    for t in c.tables:
        col = t.column(c.privacy_unit)
        if col is None or not col.unique or t.data_path is None or not t.data_path.exists():
            continue
        unit = '"' + col.name.replace('"', '""') + '"'
        with sandboxed_duckdb([(c.name, t.name, t)]) as con:
            repeated, missing = con.execute(
                f"SELECT count(*) FILTER (WHERE u IS NOT NULL AND n > 1), "
                f"coalesce(sum(n) FILTER (WHERE u IS NULL), 0) FROM (SELECT {unit} AS u, "
                f'count(*) AS n FROM "{c.name}"."{t.name}" GROUP BY 1)').fetchone()
        if not repeated and not missing:
            continue
        found = [f"{repeated:,} unit(s) appear on more than one row"] if repeated else []
        found += [f"{missing:,} row(s) have no unit"] if missing else []
        what = (f"privacy unit `{col.name}` of table `{t.name}` is declared `unique: true`, "
                "but " + " and ".join(found))
        fix = ("make the data one row per unit, or remove `unique: true` (until then queries "
               "bound each unit's rows to maxContributions, as for any unit)")
        at = column_path(src, t.name, col.name) if src is not None else None
        out.append(src.problem(at + ("unique",), what, fix) if src is not None and at else
                   Problem(str(c.path), None, f"{t.name}.{col.name}", what, fix))
    return out
