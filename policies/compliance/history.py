"""The reports on record as a history to compare (issue #19): what state/compliance/reports/ holds —
the console's records (<id>/record.json beside the signed pack in <id>/pack/, made by the compliance
page or `govctl comply record`), signed pack directories (`govctl comply pack`) and report JSON files
(`govctl comply report --format json`) put there by hand. A side of a comparison is named by its entry
in this folder, never by a path, so a request cannot reach any other file; packs are verified when
compared (diff.load_side), not when listed."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from core.errors import BadInput
from crypto.evidence import MANIFEST as PACK_MANIFEST

from .diff import REPORT_FORMAT
from .records import PACK as RECORD_PACK, RECORD, reports_dir as directory  # the console records' layout


def _summary(path: Path) -> dict | None:
    """Standard, level, date and score of one report file (None: not a govctl report); read once per
    version of the file (a report is ~200 KB of JSON: a history of 40 took half a second per request)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return _summary_of(str(path), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=1024)
def _summary_of(path: str, mtime_ns: int, size: int) -> dict | None:  # the stat is the cache key
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != REPORT_FORMAT:
        return None
    estimate = doc.get("estimate") or {}
    return {"key": doc.get("key"), "level": doc.get("level"), "generated": doc.get("generated"),
            "score": estimate.get("score"), "high_risk_findings": estimate.get("high_risk_findings"),
            "file": Path(path).name}


def _source(path: Path) -> tuple[str, Path] | None:
    """(kind, the path diff.load_side reads) of one entry of the folder, None when it is nothing to compare."""
    if path.is_file() and path.suffix == ".json":
        return "report", path
    if path.is_dir() and (path / PACK_MANIFEST).is_file():
        return "pack", path
    if path.is_dir() and (path / RECORD).is_file() and (path / RECORD_PACK / PACK_MANIFEST).is_file():
        return "pack", path / RECORD_PACK  # a console record whose pack is sealed (a running one has none yet)
    return None


def listing(folder: Path | None = None) -> list[dict]:
    """Every report and pack on record, newest first: name, kind and the reports it holds (a pack's are
    read unverified here, for the choice; it is verified when compared)."""
    folder = Path(folder) if folder else directory()
    entries = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        found = _source(path)
        if found is None:
            continue
        kind, source = found
        files = [source] if kind == "report" else sorted(source.glob("report-*.json"))
        reports = [dict(s) for s in map(_summary, files) if s]
        if reports:
            entries.append({"name": path.name, "kind": kind, "reports": reports})
    return sorted(entries, key=lambda e: max(str(r["generated"]) for r in e["reports"]), reverse=True)


def resolve(name: str, side: str, folder: Path | None = None) -> Path:
    """The path of the entry called `name`; BadInput naming the side when there is none."""
    folder = Path(folder) if folder else directory()
    names = {e["name"] for e in listing(folder)}
    if name not in names:
        raise BadInput(f"{side}: no report or pack named {name!r} is on record in {folder}; choose one of "
                       f"the listed ones ({len(names)} on record)")
    return _source(folder / name)[1]


def latest_reports(folder: Path | None = None) -> dict[tuple[str, int], tuple[str, dict]]:
    """The newest report on record of each standard and level: (key, level) → (entry name, report)."""
    folder = Path(folder) if folder else directory()
    newest: dict[tuple[str, int], tuple[str, Path]] = {}
    for entry in reversed(listing(folder)):  # oldest first, so newer ones replace them
        _, path = _source(folder / entry["name"])
        for r in entry["reports"]:
            newest[(r["key"], r["level"])] = (entry["name"], path / r["file"] if path.is_dir() else path)
    return {k: (name, json.loads(file.read_text(encoding="utf-8"))) for k, (name, file) in newest.items()}
