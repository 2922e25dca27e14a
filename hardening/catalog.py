"""The host control catalog (playbooks/catalog/host-controls.yaml): load, validate, select a level."""
from __future__ import annotations

import json
import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from core.errors import BadInput
from core.paths import ROOT

CATALOG = ROOT / "playbooks" / "catalog" / "host-controls.yaml"
SCHEMA = ROOT / "playbooks" / "catalog" / "host-controls.schema.json"
LEVELS = (2, 3, 4)
CLAUSE_PREFIX = {2: "7.", 3: "8.", 4: "9."}  # 安全计算环境 is 7.1.4 / 8.1.4 / 9.1.4 by level


@dataclass(frozen=True)
class Control:
    """One catalog item at one level."""

    id: str
    level: int
    title: dict
    requirement: dict
    area: dict
    importance: str
    automation: str  # full | check | manual
    files: tuple[str, ...]
    check: str
    remediation: str
    expected_template: str
    test_ids: tuple[str, ...]
    clause: str
    params: dict = field(default_factory=dict)
    auditor: str = ""
    not_applicable_when: str = ""

    def expected(self, host_vars: dict | None = None) -> str:
        """The expected value with this level's parameters (and host values such as the log server)."""
        text = self.expected_template.format(**{k: _show(v) for k, v in self.params.items()})
        for name, value in (host_vars or {}).items():
            text = text.replace("{{ %s }}" % name, str(value))
        return text


def _show(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_show(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def validate(document: dict, source: str = "catalog") -> None:
    """Schema plus the rules a schema cannot say; raises BadInput naming the item."""
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    # YAML level keys are integers; the schema speaks JSON (string keys).
    as_json = json.loads(json.dumps(document, default=str))
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(as_json), key=lambda e: e.path)
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top)"
        raise BadInput(f"{source}: {where}: {first.message} (and {len(errors) - 1} more); "
                       f"fix the catalog against {SCHEMA.name}")
    seen = set()
    for item in document["items"]:
        if item["id"] in seen:
            raise BadInput(f"{source}: item id {item['id']} appears twice; ids must be unique")
        seen.add(item["id"])
        names = {f for _, f, _, _ in string.Formatter().parse(item["expected"]) if f}
        for level, spec in item["levels"].items():
            level = int(level)
            bad = [t for t in spec["test_ids"] if not t.startswith(f"L{level}-")]
            if bad:
                raise BadInput(f"{source}: {item['id']} level {level}: test ids {bad} belong to another level")
            if not spec["clause"].startswith(CLAUSE_PREFIX[level]):
                raise BadInput(f"{source}: {item['id']} level {level}: clause {spec['clause']} is not in "
                               f"section {CLAUSE_PREFIX[level]}1.4 of GB/T 22239")
            missing = names - set(spec["params"])
            if missing:
                raise BadInput(f"{source}: {item['id']} level {level}: `expected` uses {sorted(missing)} "
                               "which the level's params do not define")


@lru_cache(maxsize=4)
def load_document(path: Path = CATALOG) -> dict:
    from core import yamlfile

    document = yamlfile.load(path)  # YamlInputError (bad input) names the file, the line and the fix
    validate(document, source=str(path))
    return document


def controls(level: int, path: Path = CATALOG) -> list[Control]:
    """Every catalog item that applies at `level`, in catalog order."""
    if level not in LEVELS:
        raise BadInput(f"--level {level}: protection level must be one of {', '.join(map(str, LEVELS))}")
    selected = []
    for item in load_document(path)["items"]:
        spec = item["levels"].get(level)
        if spec is None:
            continue
        selected.append(Control(
            id=item["id"], level=level, title=item["title"], requirement=item["requirement"],
            area=item["area"], importance=item["importance"], automation=item["automation"],
            files=tuple(item["files"]), check=item["check"], remediation=item["remediation"],
            expected_template=item["expected"], test_ids=tuple(spec["test_ids"]),
            clause=spec["clause"], params=spec["params"], auditor=item.get("auditor", ""),
            not_applicable_when=item.get("not_applicable_when", "")))
    return selected


def role_parameters(level: int) -> dict:
    """What the Ansible role reads: the level, its items' parameters, and the files to back up."""
    selected = controls(level)
    return {
        "level": level,
        "items": {c.id: c.params for c in selected if c.automation != "manual"},
        "manual": [c.id for c in selected if c.automation == "manual"],
        "backup_files": sorted({f for c in selected if c.automation == "full" for f in c.files}),
    }
