"""What people add to an assessment, as data: attachments (a document a person examined, with the
verdict they reached) and waivers (justification, approver, expiry). The file is YAML validated by
policies/catalogs/assessment.schema.json; default state/compliance/assessment.yaml."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

from core import yamlfile
from core import paths
from core.errors import BadInput

from .catalog import CATALOGS

SCHEMA = CATALOGS / "assessment.schema.json"


def default_path() -> Path:
    return paths.STATE / "compliance" / "assessment.yaml"


@dataclass
class Assessment:
    source: Path | None = None
    system: dict = field(default_factory=dict)
    attachments: list[dict] = field(default_factory=list)
    waivers: list[dict] = field(default_factory=list)

    def attachments_for(self, standard: str, item: str) -> list[dict]:
        return [a for a in self.attachments if a["standard"] == standard and a["item"] == item]

    def waiver_for(self, standard: str, item: str) -> dict | None:
        return next((w for w in self.waivers if w["standard"] == standard and w["item"] == item), None)

    def host_waivers(self) -> list[dict]:
        """Waivers of host-hardening items (standard `host`), optionally for one host each."""
        return [w for w in self.waivers if w["standard"] == "host"]

    def attachment_file(self, attachment: dict) -> Path | None:
        if not attachment.get("path") or self.source is None:
            return None
        return (self.source.parent / attachment["path"]).resolve()


def load(path: Path | None = None, known_items: dict[str, set[str]] | None = None) -> Assessment:
    """Read and validate the assessment file (an absent default file is an empty assessment).
    `known_items` maps a standard to its item ids, so a typo in an item id is bad input."""
    import jsonschema

    explicit = path is not None
    path = Path(path) if path else default_path()
    if not path.exists():
        if explicit:
            raise BadInput(f"--assessment {path} does not exist; write it as described in docs/compliance.md")
        return Assessment()
    try:
        document = yamlfile.load(path, allow_empty=True) or {}
    except yamlfile.YamlInputError as exc:
        raise BadInput(f"--assessment {exc}") from None
    for entry in document.get("attachments", []) + document.get("waivers", []) if isinstance(document, dict) else []:
        for key in ("date", "expires"):
            if isinstance(entry, dict) and isinstance(entry.get(key), dt.date):
                entry[key] = entry[key].isoformat()  # YAML reads an unquoted date as a date
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    checker = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(checker.iter_errors(document), key=lambda e: list(map(str, e.path)))
    if errors:
        raise BadInput(f"--assessment {path}: " + "; ".join(
            f"{'.'.join(map(str, e.path)) or '(document)'}: {e.message}" for e in errors[:5]))
    problems = []
    for kind in ("attachments", "waivers"):
        for entry in document.get(kind, []):
            if known_items and entry["item"] not in known_items.get(entry["standard"], set()):
                problems.append(f"{kind}: item {entry['item']} is not in the {entry['standard']} catalog")
            if entry.get("host") and entry["standard"] != "host":
                problems.append(f"{kind}: {entry['item']}: `host` applies to host-hardening items only (standard: host)")
            if kind == "attachments" and entry.get("path") and not (path.parent / entry["path"]).is_file():
                problems.append(f"attachments: {entry['item']}: file {entry['path']} does not exist")
    if problems:
        raise BadInput(f"--assessment {path}: " + "; ".join(problems))
    return Assessment(path.resolve(), document.get("system", {}), document.get("attachments", []),
                      document.get("waivers", []))


def waiver_active(waiver: dict, today: dt.date | None = None) -> bool:
    return dt.date.fromisoformat(waiver["expires"]) >= (today or dt.date.today())


def host_waiver(waivers: list[dict], item: str, host: str) -> dict | None:
    """The waiver of a host item on one host: one naming that host before one for every host."""
    matching = [w for w in waivers if w["item"] == item and w.get("host") in (None, host)]
    return next((w for w in matching if w.get("host") == host), matching[0] if matching else None)


def schema_problems(document, schema_path: Path) -> list[str]:
    """Every place `document` breaks the JSON schema, as `path: message` (for a BadInput)."""
    import jsonschema

    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    checker = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(checker.iter_errors(document), key=lambda e: list(map(str, e.path)))
    return [f"{'.'.join(map(str, e.path)) or '(document)'}: {e.message}" for e in errors]
