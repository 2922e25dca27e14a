"""The compliance catalogs (policies/catalogs/<standard>.yaml): load, validate, select a level.

Validation goes beyond the JSON schema: ids are unique, areas exist, every `host` id exists in the
host-hardening catalog and every `pack` id is a rule of the CrossGuard pack. Whether the engine can
run every check a catalog names is the engine's to say (engine.validate_catalog, engine.evaluate):
this module does not know the checks.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from core import yamlfile
from core.errors import BadInput, GovctlError
from core.paths import ROOT

from . import STANDARDS

CATALOGS = ROOT / "policies" / "catalogs"
SCHEMA = CATALOGS / "catalog.schema.json"
HOST_CATALOG = ROOT / "playbooks" / "catalog" / "host-controls.yaml"
PACK_RULES = ROOT / "policies" / "djcp_pack" / "rules.yaml"


class CatalogError(GovctlError):
    pass


@dataclass(frozen=True)
class Check:
    """One source of evidence of an item: `kind` is the check name (stack.zones, host, pack,
    secops_rules, manual); `param` its parameter (ids, a clause, or the manual prompt)."""

    kind: str
    param: object = None

    @property
    def label(self) -> str:
        if self.kind in ("host", "pack"):
            return f"{self.kind}:{','.join(self.param)}"
        if self.kind == "secops_rules":
            return f"secops.rules:{self.param}"
        return self.kind

    @property
    def layer(self) -> str:
        return {"host": "hosts", "pack": "stack", "secops_rules": "secops", "manual": "manual"}.get(
            self.kind, self.kind.split(".")[0])


@dataclass(frozen=True)
class Item:
    id: str
    area: str
    control: dict
    clause: str
    levels: tuple[int, ...]
    requirement: dict
    checks: tuple[Check, ...]
    importance: str | None = None
    obligation: str | None = None
    high_risk: dict | None = None
    differences: dict | None = None


@dataclass(frozen=True)
class Catalog:
    key: str
    standard: str
    title: dict
    level: int
    obligation_kind: str
    areas: tuple[dict, ...]
    items: tuple[Item, ...]
    excluded: tuple[dict, ...]
    source: str = ""  # the file it was read from, for errors that name it

    def area(self, key: str) -> dict:
        return next(a for a in self.areas if a["key"] == key)


def parse_check(spec) -> Check:
    if isinstance(spec, str):
        return Check(spec)
    (kind, param), = spec.items()
    return Check(kind, tuple(param) if isinstance(param, list) else param)


@lru_cache(maxsize=1)
def host_catalog() -> dict[str, dict] | None:
    """The host-hardening catalog's items by id (None while that catalog is not installed)."""
    if not HOST_CATALOG.exists():
        return None
    return {i["id"]: i for i in yamlfile.load(HOST_CATALOG)["items"]}


def known_items() -> dict[str, set[str]]:
    """Item ids by standard, and the host-hardening items (standard `host`), which may be waived too:
    what an item named by a person (CLI or console) must be one of."""
    known = {s: {i["id"] for i in load_document(s)["items"]} for s in STANDARDS}
    known["host"] = set(host_catalog() or {})
    return known


@lru_cache(maxsize=1)
def pack_rule_ids() -> frozenset[str]:
    return frozenset(r["id"] for r in yamlfile.load(PACK_RULES)["rules"])


@lru_cache(maxsize=4)
def load_document(standard: str) -> dict:
    if standard not in STANDARDS:
        raise BadInput(f"--standard {standard!r} is unknown; use one of: {', '.join(STANDARDS)}")
    path = CATALOGS / f"{standard}.yaml"
    document = yamlfile.load(path)  # YamlInputError (bad input) names the file, the line and the fix
    validate(document, str(path))
    return document


def validate(document: dict, source: str, more_problems: Callable[[dict], list[str]] | None = None) -> None:
    """CatalogError naming every problem of `document`; `more_problems` adds the problems its caller
    knows how to find in a schema-valid document (the engine: checks it cannot run)."""
    import jsonschema

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(document), key=lambda e: list(map(str, e.path)))
    if errors:
        raise CatalogError(f"{source}: " + "; ".join(
            f"{'.'.join(map(str, e.path)) or '(document)'}: {e.message}" for e in errors[:5]))
    problems = []
    ids = [i["id"] for i in document["items"]]
    problems += [f"item id {i} appears twice" for i in sorted({i for i in ids if ids.count(i) > 1})]
    areas = {a["key"] for a in document["areas"]}
    hosts = host_catalog()
    for item in document["items"]:
        if item["area"] not in areas:
            problems.append(f"{item['id']}: area {item['area']!r} is not declared in `areas`")
        field = "importance" if document["obligation_kind"] == "importance" else "obligation"
        if field not in item:
            problems.append(f"{item['id']}: needs `{field}`")
        for check in map(parse_check, item["checks"]):
            if check.kind == "host" and hosts is not None:
                problems += [f"{item['id']}: host item {h} is not in {HOST_CATALOG.name}"
                             for h in check.param if h not in hosts]
            elif check.kind == "pack":
                problems += [f"{item['id']}: pack rule {r} is not in {PACK_RULES.name}"
                             for r in check.param if r not in pack_rule_ids()]
    if more_problems:
        problems += more_problems(document)
    if problems:
        raise CatalogError(f"{source}: " + "; ".join(problems))


def load(standard: str, level: int) -> Catalog:
    """The catalog of `standard` with the items that `level` requires."""
    document = load_document(standard)
    if level not in document["levels"]:
        raise BadInput(f"--level {level} is not covered by the {standard} catalog; use one of "
                       f"{', '.join(map(str, document['levels']))}")
    items = tuple(
        Item(i["id"], i["area"], i["control"], i["clause"], tuple(i["levels"]), i["requirement"],
             tuple(parse_check(c) for c in i["checks"]), i.get("importance"),
             i.get("obligation_at", {}).get(str(level), i.get("obligation")),
             i.get("high_risk"), i.get("differences"))
        for i in document["items"] if level in i["levels"])
    return Catalog(document["key"], document["standard"], document["title"], level, document["obligation_kind"],
                   tuple(document["areas"]), items, tuple(document.get("excluded", [])),
                   str(CATALOGS / f"{standard}.yaml"))


def automation(item: Item) -> str:
    """automated (every check is a machine check), partial (machine and person), manual."""
    hosts = host_catalog() or {}
    kinds = []
    for check in item.checks:
        if check.kind == "manual":
            kinds.append("manual")
        elif check.kind == "host":
            modes = {hosts.get(h, {}).get("automation", "manual") == "manual" for h in check.param}
            kinds += ["manual" if m else "auto" for m in modes]
        else:
            kinds.append("auto")
    if "auto" not in kinds:
        return "manual"
    return "automated" if "manual" not in kinds else "partial"


def coverage(catalog: Catalog) -> dict:
    """Counts of automated / partly automated / manual items, per area and in total."""
    rows = {}
    for item in catalog.items:
        row = rows.setdefault(item.area, {"automated": 0, "partial": 0, "manual": 0, "items": 0})
        row[automation(item)] += 1
        row["items"] += 1
    total = {k: sum(r[k] for r in rows.values()) for k in ("automated", "partial", "manual", "items")}
    return {"standard": catalog.standard, "level": catalog.level, "areas": rows, "total": total}
