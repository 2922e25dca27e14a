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


def host_waiver_rows(assessment: Assessment, today: dt.date) -> list[dict]:
    """The waivers of host-hardening items, each marked active or expired as of `today`, soonest expiry first."""
    rows = [dict(w, host=w.get("host"), active=waiver_active(w, today)) for w in assessment.host_waivers()]
    return sorted(rows, key=lambda w: (w["expires"], w["item"], w["host"] or ""))


def add_host_waiver(item: str, *, host: str | None, justification: str, approver: str, expires: str,
                    actor: str, today: dt.date, path: Path | None = None) -> dict:
    """Waive a host-hardening item (on one host, or on every host) until `expires`, as `actor`; a waiver
    of the same item and host is replaced (a renewal). The assessment file is validated whole before it
    replaces the old one, whose text is kept beside it as assessment.yaml.previous (comments are not
    carried into the rewritten file). Used by `govctl comply waiver add` and the console."""
    import shutil

    import yaml

    from crypto.audit import recorded

    from .catalog import known_items

    params = {"host": host, "justification": justification, "approver": approver, "expires": expires}
    with recorded(actor, "comply.waiver.add", f"host:{item}", params):
        known = known_items()
        if item not in known["host"]:
            raise BadInput(f"item {item!r} is not in the host-hardening catalog (playbooks/catalog/host-controls.yaml); "
                           "give a host item id, e.g. IA-REMOTE-ADMIN-SSH (`govctl audit --json` lists them)")
        try:
            until = dt.date.fromisoformat(expires)
        except (TypeError, ValueError):
            raise BadInput(f"expires {expires!r} is not a date; write it as YYYY-MM-DD, e.g. 2027-06-30") from None
        if until < today:
            raise BadInput(f"expires {expires} is before today ({today}); a waiver runs until a date still to come")
        for name, text in (("justification", justification), ("approver", approver), ("host", host)):
            if text is not None and not text.strip():
                raise BadInput(f"{name} is empty; " + {"justification": "say why the item does not apply",
                                                       "approver": "name who approved the waiver",
                                                       "host": "name the host, or leave it out for every host"}[name])
        path = Path(path) if path else default_path()
        document = (yamlfile.load(path, allow_empty=True) or {}) if path.exists() else {}
        if not isinstance(document, dict):
            raise BadInput(f"{path}: not a mapping; fix the file (docs/compliance.md) before adding a waiver")
        waiver = {"standard": "host", "item": item, **({"host": host.strip()} if host else {}),
                  "justification": justification.strip(), "approver": approver.strip(), "expires": until.isoformat()}
        kept = [w for w in document.get("waivers") or []
                if not (isinstance(w, dict) and w.get("standard") == "host" and w.get("item") == item
                        and w.get("host") == waiver.get("host"))]
        document["waivers"] = kept + [waiver]
        path.parent.mkdir(parents=True, exist_ok=True)
        candidate = path.with_name(path.name + ".new")
        candidate.write_text("# waivers added by `govctl comply waiver add` or the console are written here (docs/compliance.md)\n"
                             + yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
        try:
            load(candidate, known)  # the whole file as the reports will read it
        except BadInput as exc:
            candidate.unlink()
            raise BadInput(str(exc).replace(str(candidate), str(path))) from None
        if path.exists():
            shutil.copy2(path, path.with_name(path.name + ".previous"))
        candidate.replace(path)
    return waiver
