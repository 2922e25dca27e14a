"""The reports on record as a history to compare (issue #19): what state/compliance/reports/ holds —
the console's records (<id>/record.json beside the signed pack in <id>/pack/, made by the compliance
page or `govctl comply record`), signed pack directories (`govctl comply pack`) and report JSON files
(`govctl comply report --format json`) put there by hand. A side of a comparison is named by its entry
in this folder, never by a path, so a request cannot reach any other file; packs are verified when
compared (diff.load_side), not when listed.

`compare` is `govctl comply diff` for the CLI and the console: each side an entry on record, a report file
or pack directory (the CLI), or a signed pack's zip (uploaded, or given to the CLI) — a zip is checked as
the compliance page's uploads are, then verified as the CLI verifies a directory."""
from __future__ import annotations

import json
import re
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from core.errors import BadInput
from crypto.evidence import MANIFEST as PACK_MANIFEST

from . import diff
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


@dataclass(frozen=True)
class Upload:
    """An uploaded signed pack: the file's name as the sender gave it (only ever echoed) and the zip."""
    filename: str
    data: bytes


def _shown_name(filename: str | None) -> str:
    """The uploaded file's base name, printable and short: it is echoed in the diff and in refusals."""
    name = re.sub(r"[\x00-\x1f\x7f]", "", str(filename or "").replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return (name[:97] + "…" if len(name) > 100 else name) or "upload.zip"


def _load_upload(upload: Upload, side: str, scratch: Path, trusted, key: str) -> dict:
    from . import records
    from .pack import PackInvalid

    shown = _shown_name(upload.filename)
    try:
        directory = records.unpack(upload.data, scratch / side)
    except BadInput as exc:
        raise BadInput(f"{side} {shown}: {exc}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError):
        raise BadInput(f"{side} {shown}: the upload is a damaged zip file (an entry does not inflate or fails "
                       "its CRC)") from None
    try:
        loaded = diff.load_side(directory, side, trusted, key)
    except PackInvalid as invalid:  # name the uploaded file, never the scratch folder
        raise PackInvalid(str(invalid).replace(str(directory), shown), invalid.report) from None
    except BadInput as exc:
        raise BadInput(str(exc).replace(str(directory), shown)) from None
    return dict(loaded, source=shown)


def compare(a: str | Path | Upload, b: str | Path | Upload, folder: Path | None = None, trusted: list | None = None,
            key: str = "evidence") -> dict:
    """The diff document of `govctl comply diff A B --json` (A the earlier), for the CLI and the console alike:
    each side the name (str) of an entry on record, an Upload (a pack's zip), or a Path the CLI was given (a
    report JSON file or a pack directory). Every pack is verified before anything is read from it; a refusal
    names the side (A or B) and the entry or file (BadInput, or PackInvalid with each changed, missing or
    added file)."""
    from .pack import PackInvalid

    with tempfile.TemporaryDirectory(prefix="govctl-compare-") as scratch:
        sides = []
        for side, given in (("A", a), ("B", b)):
            try:
                if isinstance(given, Upload):
                    sides.append(_load_upload(given, side, Path(scratch), trusted, key))
                elif isinstance(given, Path):
                    sides.append(diff.load_side(given, side, trusted, key))
                else:  # shown by the name it was chosen by, not by its path on the server
                    sides.append(dict(diff.load_side(resolve(given, side.lower(), folder), side, trusted, key),
                                      source=given))
            except PackInvalid as invalid:  # which side and file, for a refusal in the reader's language
                invalid.side = side
                invalid.source = _shown_name(given.filename) if isinstance(given, Upload) else str(given)
                raise
        return diff.compare(*sides)
