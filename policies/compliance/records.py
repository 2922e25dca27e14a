"""Reports on record (issue #19): each one a signed evidence pack (pack.py) of one standard and level in
state/compliance/reports/<id>/pack/, beside record.json saying who asked for it, when, and whether it
is still being made, ready or failed. The console's compliance page runs, lists, opens and downloads
them; an uploaded pack (zip) is verified exactly as `govctl comply verify` verifies a directory."""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import secrets
import tempfile
import threading
import zipfile
import zlib
from pathlib import Path
from typing import Optional

from core import paths
from crypto.evidence import MANIFEST
from core.errors import BadInput, GovctlError

from . import VERDICT_EN, VERDICTS, run
from . import pack as packs

RUNNING, READY, FAILED = "running", "ready", "failed"
RECORD = "record.json"
PACK = "pack"
EVIDENCE_SOURCES = ("saved", "collect")
RECORD_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[a-z-]+-L[234]-[0-9a-f]{6}$")
FILE_FORMATS = {"pdf": "application/pdf", "json": "application/json", "csv": "text/csv; charset=utf-8",
                "html": "text/html; charset=utf-8"}
AUTOMATION = ("automated", "partial", "manual")

# An uploaded pack: what a zip may hold before it is refused unread (a pack of two standards with PDFs
# and the raw evidence of a large lab is a few MB; these leave a wide margin and stop a zip bomb).
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
MAX_UNPACKED_BYTES = 256 * 1024 * 1024
MAX_ENTRIES = 5000


class NotOnRecord(GovctlError):
    """No report on record has this id (the API answers 404)."""


class NotReady(GovctlError):
    """The report is still being made or failed (the API answers 409)."""


def reports_dir() -> Path:
    return paths.STATE / "compliance" / "reports"


def saved_evidence_dir() -> Path:
    """Where `govctl comply collect --out state/compliance/evidence` (docs/compliance.md) keeps the evidence."""
    return paths.STATE / "compliance" / "evidence"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _write_record(directory: Path, record: dict) -> None:
    temporary = directory / (RECORD + ".tmp")
    temporary.write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    temporary.replace(directory / RECORD)  # a reader never sees half a record


def _directory(record_id: str) -> Path:
    if not isinstance(record_id, str) or not RECORD_ID.match(record_id):
        raise NotOnRecord(f"report {record_id!r} is not on record (ids look like 20261207T010203Z-djcp-L3-a1b2c3)")
    directory = reports_dir() / record_id
    if not (directory / RECORD).is_file():
        raise NotOnRecord(f"report {record_id} is not on record; list them with GET /compliance/reports")
    return directory


def start(standard: str, level: int, source: str, requested_by: str, as_of: Optional[str] = None,
          background: bool = True) -> dict:
    """Check the request, put the report on record as running and make it (in a thread unless told not to).
    Bad input is refused here, before anything is recorded."""
    run.check_standard(standard)
    run.check_level(level)
    run.as_of_date(as_of)
    if source not in EVIDENCE_SOURCES:
        raise BadInput(f"evidence source {source!r} is unknown; use one of: {', '.join(EVIDENCE_SOURCES)}")
    if source == "saved" and not (saved_evidence_dir() / "stack.json").is_file():
        raise BadInput(f"no saved evidence in {saved_evidence_dir()}: run `govctl comply collect --out "
                       f"{saved_evidence_dir()}` first, or collect the evidence now (source: collect)")
    started = dt.datetime.now(dt.timezone.utc)
    record_id = f"{started:%Y%m%dT%H%M%SZ}-{standard}-L{level}-{secrets.token_hex(3)}"
    directory = reports_dir() / record_id
    directory.mkdir(parents=True)
    record = {"id": record_id, "standard": standard, "level": level, "source": source, "as_of": as_of,
              "requested_by": requested_by, "started": started.isoformat(timespec="seconds"),
              "finished": None, "status": RUNNING, "error": None, "pid": os.getpid()}
    _write_record(directory, record)
    if background:
        threading.Thread(target=_make, args=(directory, record), name=f"comply-{record_id}", daemon=True).start()
    else:
        _make(directory, record)
    return dict(record)


def _make(directory: Path, record: dict) -> None:
    """Assess and seal, as `govctl comply pack` does; a failure is recorded with its reason, never lost."""
    from crypto.audit import open_keystore

    try:
        keystore = open_keystore()
        evidence = saved_evidence_dir() if record["source"] == "saved" else None
        layers = run.layers("lab", evidence, None, record["level"])
        documents, inputs = run.assess([record["standard"]], record["level"], layers, None, record["as_of"])
        packs.write(directory / PACK, documents, layers, inputs, keystore)
        record.update(status=READY)
    except GovctlError as exc:
        record.update(status=FAILED, error=str(exc))
    except Exception as exc:  # noqa: BLE001 — the record must say it failed, whatever the cause
        record.update(status=FAILED, error=f"internal error: {type(exc).__name__}: {exc}")
    record["finished"] = _now()
    _write_record(directory, record)


def _report_path(directory: Path, record: dict, fmt: str) -> Path:
    return directory / PACK / f"report-{record['standard']}-L{record['level']}.{fmt}"


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def _summary(directory: Path, record: dict) -> dict:
    summary = dict(record)
    if record["status"] == RUNNING and not _alive(record.get("pid")):
        # the console (or `govctl comply record`) stopped while making it: say so rather than "running" forever
        summary.update(status=FAILED, error="interrupted: the process making this report stopped before it was "
                                            "ready; run it again")
        return summary
    if record["status"] == READY:
        try:
            report = json.loads(_report_path(directory, record, "json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            summary.update(status=FAILED, error="the report file of this record is missing or unreadable")
            return summary
        summary.update(title=report["title"], generated=report["generated"], counts=report["counts"],
                       score=report["estimate"]["score"], high_risk=report["estimate"]["high_risk_findings"],
                       stale_layers=report["stale_layers"])
    return summary


def listing() -> list[dict]:
    """Every report on record, newest first."""
    root = reports_dir()
    if not root.is_dir():
        return []
    found = []
    for directory in root.iterdir():
        try:
            record = json.loads((directory / RECORD).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not a record (or one being created this instant)
        found.append(_summary(directory, record))
    return sorted(found, key=lambda r: r["started"], reverse=True)


def _ready(record_id: str) -> tuple[Path, dict]:
    directory = _directory(record_id)
    record = _summary(directory, json.loads((directory / RECORD).read_text(encoding="utf-8")))
    if record["status"] != READY:
        raise NotReady(f"report {record_id} is {record['status']}"
                       + (f": {record['error']}" if record.get("error") else "; ask again when it is ready"))
    return directory, record


def status(record_id: str) -> dict:
    directory = _directory(record_id)
    return _summary(directory, json.loads((directory / RECORD).read_text(encoding="utf-8")))


def open_report(record_id: str) -> dict:
    """The record and its whole report document (areas, items, evidence, findings, freshness)."""
    directory, record = _ready(record_id)
    report = json.loads(_report_path(directory, record, "json").read_text(encoding="utf-8"))
    return {"record": record, "report": report, "freshness": freshness(report)}


def freshness(report: dict) -> dict:
    """{layer: {collected, status, stale}} of the report's evidence layers."""
    stale = set(report.get("stale_layers") or ())
    return {name: {"collected": layer.get("collected"), "status": layer.get("status"), "stale": name in stale}
            for name, layer in sorted((report.get("evidence") or {}).items())}


def filter_items(items: list[dict], verdict: Optional[str] = None, high_risk: Optional[bool] = None,
                 layer: Optional[str] = None, automation: Optional[str] = None) -> list[dict]:
    """The items matching every filter given: verdict (符合 … or its English), high risk, an evidence
    layer that took part in the item, automation (automated, partial, manual)."""
    if verdict is not None and verdict not in VERDICTS:
        english = {en: zh for zh, en in VERDICT_EN.items()}
        if verdict not in english:
            raise BadInput(f"verdict {verdict!r} is unknown; use one of: {', '.join(VERDICTS)}")
        verdict = english[verdict]
    if automation is not None and automation not in AUTOMATION:
        raise BadInput(f"automation {automation!r} is unknown; use one of: {', '.join(AUTOMATION)}")
    chosen = []
    for item in items:
        if verdict is not None and item["verdict"] != verdict:
            continue
        if high_risk is not None and bool(item["high_risk"]) != high_risk:
            continue
        if layer is not None and layer not in {e.get("layer") for e in item["evidence"]}:
            continue
        if automation is not None and item["automation"] != automation:
            continue
        chosen.append(item)
    return chosen


def report_file(record_id: str, fmt: str) -> tuple[Path, str]:
    """(path, file name) of the report rendered as pdf, json, csv or html."""
    if fmt not in FILE_FORMATS:
        raise BadInput(f"format {fmt!r} is unknown; use one of: {', '.join(FILE_FORMATS)}")
    directory, record = _ready(record_id)
    path = _report_path(directory, record, fmt)
    return path, f"{record_id}.{fmt}"


def pack_zip(record_id: str) -> tuple[bytes, str]:
    """The signed pack as a zip (the pack directory's files at the zip's root); verify it after unzipping with
    `govctl comply verify DIR`, or upload it to the console."""
    directory, _ = _ready(record_id)
    return zip_folder(directory / PACK), f"{record_id}-pack.zip"


def zip_folder(root: Path) -> bytes:
    """The files below `root` as a zip, at its root, in a stable order (what `unpack` takes back)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(root).as_posix())
    return buffer.getvalue()


def unpack(data: bytes, target: Path) -> Path:
    """Extract an uploaded zip into `target` after checking every entry; returns the pack's directory
    (the zip's root, or its one top folder when the pack was zipped as a folder)."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise BadInput(f"the upload is {len(data)} bytes; a pack may be at most {MAX_UPLOAD_BYTES} bytes zipped")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise BadInput("the upload is not a zip file; zip the directory `govctl comply pack` wrote, or upload "
                       "the pack the console downloads") from None
    with archive:
        if len(entries) > MAX_ENTRIES:
            raise BadInput(f"the zip holds {len(entries)} entries; a pack has at most {MAX_ENTRIES}")
        if sum(e.file_size for e in entries) > MAX_UNPACKED_BYTES:
            raise BadInput(f"the zip unpacks to more than {MAX_UNPACKED_BYTES} bytes; that is not an evidence pack")
        for entry in entries:
            name = entry.filename
            parts = Path(name).parts
            if name.startswith(("/", "\\")) or ".." in parts or ":" in name or "\\" in name:
                raise BadInput(f"the zip entry {name!r} points outside the pack; refused")
            if (entry.external_attr >> 16) & 0o170000 == 0o120000:
                raise BadInput(f"the zip entry {name!r} is a symbolic link; a pack holds plain files")
        written = 0
        for entry in entries:
            destination = target / entry.filename
            if entry.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            # count what is really inflated: the sizes in the zip's directory are the sender's word
            with archive.open(entry) as source, open(destination, "wb") as sink:
                while chunk := source.read(1 << 20):
                    written += len(chunk)
                    if written > MAX_UNPACKED_BYTES:
                        raise BadInput(f"the zip unpacks to more than {MAX_UNPACKED_BYTES} bytes; "
                                       "that is not an evidence pack")
                    sink.write(chunk)
    if (target / MANIFEST).is_file():
        return target
    tops = [p for p in target.iterdir()]
    if len(tops) == 1 and tops[0].is_dir() and (tops[0] / MANIFEST).is_file():
        return tops[0]
    raise BadInput(f"the zip holds no {MANIFEST}; it is not an evidence pack of `govctl comply pack`")


def verify_upload(data: bytes, trusted: list | None = None, key: str = "evidence") -> dict:
    """Verify an uploaded pack (zip) with pack.verify, the check of `govctl comply verify`: {"ok", …} naming
    every changed, missing or added file. Raises BadInput for what is not a pack at all."""
    try:
        with tempfile.TemporaryDirectory(prefix="govctl-pack-upload-") as scratch:
            directory = unpack(data, Path(scratch))
            try:
                report = packs.verify(directory, trusted, key)
            except packs.PackInvalid as invalid:
                r = invalid.report
                return {"ok": False, "signature_valid": r.signature_valid, "changed": r.changed,
                        "missing": r.missing, "added": r.added, "files": r.files, "signer": r.signer,
                        "reason": str(invalid).replace(str(directory), "the uploaded pack")}
            return {"ok": True, "signature_valid": True, "changed": [], "missing": [], "added": [],
                    "files": report.files, "signer": report.signer, "reason": None}
    except (zipfile.BadZipFile, zlib.error, EOFError):
        raise BadInput("the upload is a damaged zip file (an entry does not inflate or fails its CRC)") from None
