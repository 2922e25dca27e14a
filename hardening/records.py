"""The host audits and harden --check runs on record: each report is kept under
state/harden/reports/<run_id>.json, so the console (and anyone) can read the latest one without re-running.

`govctl audit` and `govctl harden --check` record through `run_and_record`, as the console's background jobs do:
one code path for both.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from core import paths
from core.errors import BadInput

# The read-only runs worth keeping: a host audit, and the diffs a harden would make.
RECORDED_MODES = {"audit": "audit", "check": "harden --check"}
LISTED = 100  # a year of daily audits is many files: the page needs the newest
RUN_ID = re.compile(r"^\d{8}T\d{6}(\.\d{6})?-\d{1,10}$")


def reports_dir() -> Path:
    return paths.STATE / "harden" / "reports"


def save(report: dict) -> Path:
    """Keep one report (written whole, then renamed: a reader never sees half a file)."""
    folder = reports_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{report['run_id']}.json"
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)
    return path


def kind_of(report: dict) -> str:
    return "check" if report.get("mode") == RECORDED_MODES["check"] else "audit"


def _read(path: Path) -> dict | None:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # a damaged file is skipped, not fatal: the page shows the others
    return report if isinstance(report, dict) and isinstance(report.get("hosts"), dict) else None


def _newest_first(kind: str | None):
    """(path, report) of the readable reports, newest first (run ids sort by time), of one kind or all."""
    for path in sorted(reports_dir().glob("*.json"), reverse=True):
        report = _read(path)
        if report is not None and (kind is None or kind_of(report) == kind):
            yield path, report


def listing(kind: str | None = None, limit: int = LISTED) -> list[dict]:
    """The reports on record, newest first: run id, kind, level, when, hosts and their statuses."""
    rows = []
    for path, report in _newest_first(kind):
        if len(rows) >= limit:
            break
        rows.append({"run_id": report.get("run_id", path.stem), "kind": kind_of(report), "level": report.get("level"),
                     "limit": report.get("limit"), "seconds": report.get("seconds"),
                     "hosts": len(report["hosts"]), "unreachable": report.get("unreachable", []),
                     "failed": report.get("failed", [])})
    return rows


def load(run_id: str) -> dict:
    if not RUN_ID.match(run_id or ""):
        raise BadInput(f"run id {run_id[:80]!r} is not a run id (like 20261207T004512.123456-1234); "
                       "list the runs with GET /hardening/runs")
    report = _read(reports_dir() / f"{run_id}.json")
    if report is None:
        raise LookupError(f"no report of run {run_id} on record")
    return report


def latest(kind: str = "audit") -> dict | None:
    return next((report for _, report in _newest_first(kind)), None)


def run_and_record(kind: str, level: int, limit: str | None, stack: str = "lab", forks: int = 10,
                   on_progress=None, outputs=None) -> dict:
    """Run a host audit (kind=audit) or a harden --check (kind=check) and keep its report."""
    from .runner import baseline

    if kind not in RECORDED_MODES:
        raise BadInput(f"kind {kind!r}: use audit or check")
    mode = "audit" if kind == "audit" else "harden"
    report = baseline(mode, level, limit, check=True, stack=stack, forks=forks, on_progress=on_progress,
                      outputs=outputs)
    report["recorded"] = str(reports_dir() / f"{report['run_id']}.json")  # where save() puts it
    save(report)
    return report
