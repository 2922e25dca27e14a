"""Remediation tracking of the items a report finds 不符合 or 部分符合: owner, due date, status
(open, in-progress, done, accepted-risk) and a link to the fix, kept as data in
state/compliance/remediation.yaml (validated by policies/catalogs/remediation.schema.json) and keyed
by standard + item id, so one entry carries over from each report to the next. An entry still open
or in progress after its due date is overdue: the report flags it, `govctl comply remediation list`
shows it and notify_overdue() tells the auditors through notify's channels."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from core import paths, yamlfile
from core.errors import BadInput

from . import NON_COMPLIANT, PARTIAL, STANDARDS
from .assessment import schema_problems
from .catalog import CATALOGS

SCHEMA = CATALOGS / "remediation.schema.json"
STATUSES = ("open", "in-progress", "done", "accepted-risk")
STATUS_ZH = {"open": "待整改", "in-progress": "整改中", "done": "已完成", "accepted-risk": "接受风险"}
OPEN = ("open", "in-progress")


def default_path() -> Path:
    return paths.STATE / "compliance" / "remediation.yaml"


def is_overdue(entry: dict, today: dt.date) -> bool:
    return entry["status"] in OPEN and dt.date.fromisoformat(entry["due"]) < today


@dataclass
class Tracker:
    path: Path
    entries: list[dict] = field(default_factory=list)

    def get(self, standard: str, item: str) -> dict | None:
        return next((e for e in self.entries if e["standard"] == standard and e["item"] == item), None)

    def listing(self, today: dt.date, overdue_only: bool = False) -> list[dict]:
        rows = [dict(e, overdue=is_overdue(e, today), status_zh=STATUS_ZH[e["status"]]) for e in self.entries]
        rows = [r for r in rows if r["overdue"] or not overdue_only]
        return sorted(rows, key=lambda r: (not r["overdue"], r["due"], r["standard"], r["item"]))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump({"items": self.entries}, allow_unicode=True, sort_keys=False)
        temporary = self.path.with_suffix(".yaml.tmp")
        temporary.write_text("# govctl comply remediation set … writes this file (docs/compliance.md)\n" + text,
                             encoding="utf-8")
        temporary.replace(self.path)  # whole or not at all: nothing tracked is lost to a crash


def load(path: Path | None = None) -> Tracker:
    """The tracking file (absent: nothing tracked yet); BadInput naming the file and each problem."""
    path = Path(path) if path else default_path()
    if not path.exists():
        return Tracker(path)
    try:
        document = yamlfile.load(path, allow_empty=True) or {}
    except yamlfile.YamlInputError as exc:
        raise BadInput(f"remediation tracking {exc}") from None
    for entry in document.get("items", []) if isinstance(document, dict) else []:
        for key in ("due", "updated"):
            if isinstance(entry, dict) and isinstance(entry.get(key), dt.date):
                entry[key] = entry[key].isoformat()  # YAML reads an unquoted date as a date
    problems = schema_problems(document, SCHEMA)
    if problems:
        raise BadInput(f"remediation tracking {path}: " + "; ".join(problems[:5])
                       + " (fix the file or set the entry again with `govctl comply remediation set`)")
    return Tracker(path, list(document.get("items", [])))


def resolve_item(item: str, standard: str | None, known: dict[str, set[str]]) -> tuple[str, str]:
    """ITEM as `djcp:CE-IA-C`, or `CE-IA-C` with --standard or when only one catalog has that id."""
    if ":" in item:
        standard, item = item.split(":", 1) if standard is None else (standard, item.split(":", 1)[1])
    if standard is not None and standard not in STANDARDS:
        raise BadInput(f"standard {standard!r} is unknown; use one of: {', '.join(STANDARDS)}")
    candidates = [s for s in ([standard] if standard else STANDARDS) if item in known.get(s, set())]
    if not candidates:
        where = f"the {standard} catalog" if standard else "any catalog"
        raise BadInput(f"item {item!r} is not in {where}; give an item id of a report, e.g. djcp:CE-IA-C "
                       "(`govctl comply report --format json` lists them)")
    if len(candidates) > 1:
        raise BadInput(f"item {item!r} is in {' and '.join(candidates)}; name one, e.g. {candidates[0]}:{item}")
    return candidates[0], item


def parse_due(text: str) -> str:
    try:
        return dt.date.fromisoformat(text).isoformat()
    except (TypeError, ValueError):
        raise BadInput(f"--due {text!r} is not a date; write it as YYYY-MM-DD, e.g. 2027-03-31") from None


def set_entry(tracker: Tracker, standard: str, item: str, *, owner: str | None, due: str | None,
              status: str | None, link: str | None, today: dt.date) -> dict:
    """Create or update the entry of one item; a new entry needs an owner and a due date."""
    if status is not None and status not in STATUSES:
        raise BadInput(f"--status {status!r} is unknown; use one of: {', '.join(STATUSES)}")
    if owner is not None and not owner.strip():
        raise BadInput("--owner is empty; name the person or team who fixes the item")
    if link is not None and not link.strip():
        raise BadInput("--link is empty; give the fix's change, ticket or document")
    entry = tracker.get(standard, item)
    if entry is None:
        if owner is None or due is None:
            raise BadInput(f"{standard}:{item} is not tracked yet; give --owner and --due (status defaults to open)")
        entry = {"standard": standard, "item": item}
        tracker.entries.append(entry)
    updates = {"owner": owner and owner.strip(), "due": due and parse_due(due), "status": status,
               "link": link and link.strip()}
    entry.update({k: v for k, v in updates.items() if v is not None})
    entry.setdefault("status", "open")
    entry["updated"] = today.isoformat()
    problems = schema_problems({"items": [entry]}, SCHEMA)
    if problems:
        raise BadInput(f"{standard}:{item}: " + "; ".join(problems))
    return entry


def annotate(report: dict, tracker: Tracker, today: dt.date) -> None:
    """Add each 不符合 / 部分符合 item's tracking (None: nobody owns it yet) to the report's items and
    findings, and a summary with the overdue ones."""
    failing = {NON_COMPLIANT, PARTIAL}
    by_id = {}
    for item in report["items"]:
        entry = tracker.get(report["key"], item["id"]) if item["verdict"] in failing else None
        item["tracking"] = dict(entry, overdue=is_overdue(entry, today), status_zh=STATUS_ZH[entry["status"]]) if entry else None
        by_id[item["id"]] = item["tracking"]
    for finding in report["findings"]:
        finding["tracking"] = by_id.get(finding["id"])
    tracked = [t for t in by_id.values() if t]
    report["remediation_tracking"] = {
        "as_of": today.isoformat(), "source": str(tracker.path),
        "findings": len(report["findings"]), "tracked": len(tracked),
        "untracked": sorted(f["id"] for f in report["findings"] if not f["tracking"]),
        "overdue": sorted(t["item"] for t in tracked if t["overdue"]),
    }


def notify_overdue(rows: list[dict], notifier=None) -> list[dict]:
    """One notification per overdue item to the auditors; notify's de-duplication key (item and due
    date) sends it once per window however often the list is run."""
    import notify

    outcomes = []
    for r in rows:
        if not r["overdue"]:
            continue
        payload = {"title": f"整改超期 Remediation overdue: {r['standard']}:{r['item']}",
                   "summary": f"负责人 owner {r['owner']}，期限 due {r['due']}，状态 status {STATUS_ZH[r['status']]} {r['status']}",
                   "severity": "medium", "roles": ["auditor"], "tags": ["compliance", r["standard"]],
                   "key": f"remediation.overdue:{r['standard']}:{r['item']}:{r['due']}"}
        if r.get("link"):
            payload["link"] = r["link"]
        outcomes.append({"item": f"{r['standard']}:{r['item']}",
                         "channels": notify.send_event("remediation.overdue", payload, notifier=notifier)})
    return outcomes


def track(item: str, standard: str | None, *, owner: str | None, due: str | None, status: str | None,
          link: str | None, actor: str, today: dt.date, path: Path | None = None) -> dict:
    """Set one item's tracking as `actor` — what `govctl comply remediation set` and the console's
    remediation page both do: resolve the item against the catalogs, update, save, and leave the change
    (or its refusal) on the audit trail."""
    from crypto.audit import recorded

    from .catalog import known_items

    params = {"owner": owner, "due": due, "status": status, "link": link}
    with recorded(actor, "comply.remediation.set", item if standard is None else f"{standard}:{item}", params):
        known = {s: ids for s, ids in known_items().items() if s in STANDARDS}
        standard_key, item_id = resolve_item(item, standard, known)
        tracker = load(path)
        entry = set_entry(tracker, standard_key, item_id, owner=owner, due=due, status=status, link=link, today=today)
        tracker.save()
    return entry
