"""Reports on record: the report JSON files (`govctl comply report --format json`) and signed evidence
packs (`govctl comply pack`) kept in state/compliance/reports/, which the console compares over time.
A side of a comparison is named by its entry in this folder, never by a path, so a request cannot
reach any other file."""
from __future__ import annotations

import json
from pathlib import Path

from core import paths
from core.errors import BadInput

from .diff import REPORT_FORMAT

PACK_MANIFEST = "evidence.manifest.json"


def directory() -> Path:
    return paths.STATE / "compliance" / "reports"


def _summary(path: Path) -> dict | None:
    """Standard, level, date and score of one report file (None: not a govctl report)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != REPORT_FORMAT:
        return None
    estimate = doc.get("estimate") or {}
    return {"key": doc.get("key"), "level": doc.get("level"), "generated": doc.get("generated"),
            "score": estimate.get("score"), "high_risk_findings": estimate.get("high_risk_findings")}


def listing(folder: Path | None = None) -> list[dict]:
    """Every report and pack on record, newest first: name, kind and the reports it holds (a pack's are
    read unverified here, for the choice; it is verified when compared)."""
    folder = Path(folder) if folder else directory()
    entries = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.is_file() and path.suffix == ".json":
            summary = _summary(path)
            if summary:
                entries.append({"name": path.name, "kind": "report", "reports": [summary]})
        elif path.is_dir() and (path / PACK_MANIFEST).is_file():
            reports = [s for s in map(_summary, sorted(path.glob("report-*.json"))) if s]
            if reports:
                entries.append({"name": path.name, "kind": "pack", "reports": reports})
    return sorted(entries, key=lambda e: max(str(r["generated"]) for r in e["reports"]), reverse=True)


def resolve(name: str, side: str, folder: Path | None = None) -> Path:
    """The path of the entry called `name`; BadInput naming the side when there is none."""
    folder = Path(folder) if folder else directory()
    names = {e["name"] for e in listing(folder)}
    if name not in names:
        raise BadInput(f"{side}: no report or pack named {name!r} is on record in {folder}; choose one of "
                       f"the listed ones ({len(names)} on record)")
    return folder / name


def latest_reports(folder: Path | None = None) -> dict[tuple[str, int], tuple[str, dict]]:
    """The newest report on record of each standard and level: (key, level) → (entry name, report)."""
    folder = Path(folder) if folder else directory()
    latest: dict[tuple[str, int], tuple[str, dict]] = {}
    for entry in reversed(listing(folder)):  # oldest first, so newer ones replace them
        path = folder / entry["name"]
        for file in sorted(path.glob("report-*.json")) if entry["kind"] == "pack" else [path]:
            doc = json.loads(file.read_text(encoding="utf-8"))
            latest[(doc["key"], doc["level"])] = (entry["name"], doc)
    return latest
