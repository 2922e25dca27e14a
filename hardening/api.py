"""The console's hardening page (issue #19): the host × item verdict matrix of the latest host audit on
record, each item's detail, and background runs of `govctl audit` / `govctl harden --check` with per-host
progress. The runs call hardening.records.run_and_record, the function the CLI calls; each job's record is kept
beside the reports (state/harden/jobs/), so a restarted console lists the past jobs and their reports.

Waivers of host items live in the compliance assessment (policies), a layer above this package: the
composition (policies/api_hardening.py) hands `extension` a lookup, so this module never imports policies.
"""
from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from core.api_extension import ApiExtension
from core.errors import BadInput, GovctlError

from . import records
from .verdict import VERDICTS

PERMISSIONS = {"harden-read": frozenset({"ops", "security", "auditor"}), "harden-run": frozenset({"ops"})}
WAIVED = "已豁免"  # shown instead of the verdict while an active waiver covers the item on the host
LIMIT_PATTERN = r"^[A-Za-z0-9_.*?!&~,:\-\[\]]+$"  # an Ansible host pattern, nothing a shell or YAML could read
STACK_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$"
JOBS_KEPT = 20  # job records kept on disk (the reports themselves stay: hardening.records)
PROGRESS_WRITE_SECONDS = 1.0  # a running job's record on disk is at most this old
JOB_ID = r"^[0-9a-f]{12}$"

# item, host → the waiver covering it (with "active": bool), or None
WaiverLookup = Callable[[str, str], Optional[dict]]


class JobRequest(BaseModel):
    """POST /hardening/jobs: what to run (the CLI's options of `govctl audit` / `govctl harden --check`)."""
    model_config = ConfigDict(extra="forbid")
    kind: Literal["audit", "check"] = Field(description="audit = govctl audit; check = govctl harden --check")
    level: Literal[2, 3, 4] = 3
    limit: Optional[str] = Field(None, max_length=200, pattern=LIMIT_PATTERN,
                                 description="Ansible host pattern, e.g. center_prod or web-1.prod")
    stack: str = Field("lab", max_length=63, pattern=STACK_PATTERN)


def no_waivers() -> WaiverLookup:
    return lambda item, host: None


def matrix(report: dict, waiver_for: WaiverLookup) -> dict:
    """Hosts as rows, items as columns (grouped by 等保 control clause); each cell the verdict, or 已豁免
    with the waiver when an active one covers it (the verdict measured stays beside it)."""
    items: dict[str, dict] = {}
    hosts, cells = [], {}
    for name, host in report["hosts"].items():
        hosts.append({"name": name, "status": host.get("status"), "message": host.get("message", ""),
                      "center": host.get("center"), "roles": host.get("roles") or []})
        row = cells[name] = {}
        for item in host.get("items", []):
            items.setdefault(item["id"], {k: item.get(k) for k in ("id", "title", "area", "clause", "test_ids",
                                                                    "importance", "automation")})
            waiver = waiver_for(item["id"], name)
            active = bool(waiver and waiver.get("active"))
            row[item["id"]] = {"verdict": item["verdict"], "shown": WAIVED if active else item["verdict"],
                               "waiver": waiver}
    columns = sorted(items.values(), key=lambda i: (str(i["clause"]), i["id"]))
    return {"run_id": report["run_id"], "level": report.get("level"), "limit": report.get("limit"),
            "seconds": report.get("seconds"), "hosts": hosts, "items": columns, "cells": cells,
            "unreachable": report.get("unreachable", []), "failed": report.get("failed", []),
            "verdicts": list(VERDICTS) + [WAIVED]}


def item_detail(report: dict, host: str, item: str, waiver_for: WaiverLookup) -> dict:
    data = report["hosts"].get(host)
    if data is None:
        raise LookupError(f"host {host[:100]!r} is not in run {report['run_id']}")
    found = next((i for i in data.get("items", []) if i["id"] == item), None)
    if found is None:
        raise LookupError(f"item {item[:100]!r} was not judged on {host} in run {report['run_id']}")
    return {**found, "host": host, "run_id": report["run_id"], "waiver": waiver_for(item, host)}


def diffs(report: dict) -> dict:
    """What a harden would change, per host (from a harden --check run): each item's tasks that would
    change with their diffs; hosts that could not be reached say so."""
    hosts = {}
    for name, host in report["hosts"].items():
        changes = [{"item": item["id"], "title": item.get("title"), "verdict": item["verdict"],
                    "task": ev["task"], "diff": ev.get("diff") or ev.get("output", "")}
                   for item in host.get("items", []) for ev in item.get("evidence", []) if ev.get("status") == "changed"]
        hosts[name] = {"status": host.get("status"), "message": host.get("message", ""), "changes": changes}
    return {"run_id": report["run_id"], "mode": report.get("mode"), "level": report.get("level"), "hosts": hosts}


def jobs_dir() -> Path:
    """Where each job's record is kept: beside the reports (state/harden/jobs/<id>.json)."""
    return records.reports_dir().parent / "jobs"


def _process_started(pid: int) -> str | None:
    """The kernel's start time of process `pid` (None: no such process): with the pid it names one process,
    even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, starttime (the name before it may hold spaces)


def _owner_alive(owner: dict) -> bool:
    pid = owner.get("pid")
    return isinstance(pid, int) and _process_started(pid) == owner.get("process_started")


class Jobs:
    """Background audit / check runs, one at a time (each runs Ansible on every host).

    Each job's record is kept on disk, beside the reports (`jobs_dir()`), and names the console process that
    runs it: a restarted console still lists past jobs and the run ids of their reports, and a job that was
    running when its console died reads as interrupted instead of running forever."""

    def __init__(self, run=records.run_and_record, folder: Callable[[], Path] = jobs_dir):
        self.run = run
        self.folder = folder
        self.lock = threading.Lock()
        self.here: dict[str, dict] = {}  # the jobs this process runs or ran: fresher than their record on disk
        self.owner = {"pid": os.getpid(), "process_started": _process_started(os.getpid())}

    # -- the records on disk
    def _write(self, job: dict) -> None:
        folder = self.folder()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{job['id']}.json"
        partial = path.with_suffix(".json.partial")  # written whole, then renamed: a reader never sees half
        partial.write_text(json.dumps(job, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        partial.replace(path)

    def _read(self, path: Path) -> dict | None:
        try:
            job = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # a damaged record is skipped: the others still list
        if not isinstance(job, dict) or not isinstance(job.get("id"), str) or not isinstance(job.get("hosts"), dict):
            return None
        if job.get("state") == "running" and job["id"] not in self.here and not _owner_alive(job.get("owner") or {}):
            owner = (job.get("owner") or {}).get("pid")
            job.update(state="interrupted", error=f"the console (process {owner}) stopped while this job ran; "
                                                  "no report was recorded for it — start it again")
            try:
                self._write(job)  # said once, kept: the record no longer claims to run
            except OSError:
                pass
        return job

    def _records(self) -> list[dict]:
        """Every job on record, newest first (this process's running ones as they are now)."""
        folder = self.folder()
        found = {}
        for path in folder.glob("*.json") if folder.is_dir() else ():
            job = self._read(path)
            if job is not None:
                found[job["id"]] = job
        found.update(self.here)
        return sorted(found.values(), key=lambda j: j.get("started") or 0, reverse=True)

    def _prune(self) -> None:
        for old in self._records()[JOBS_KEPT:]:
            if old["state"] != "running":
                (self.folder() / f"{old['id']}.json").unlink(missing_ok=True)
                self.here.pop(old["id"], None)

    # -- the routes' operations
    def start(self, kind: str, level: int, limit: str | None, stack: str, started_by: str) -> dict:
        with self.lock:
            busy = next((j for j in self._records() if j["state"] == "running"), None)
            if busy:
                raise RuntimeError(f"job {busy['id']} ({busy['kind']}) is still running; wait for it to finish")
            job = {"id": uuid.uuid4().hex[:12], "kind": kind, "level": level, "limit": limit, "stack": stack,
                   "started_by": started_by, "started": time.time(), "finished": None, "state": "running",
                   "hosts": {}, "run_id": None, "unreachable": [], "failed": [], "error": None,
                   "owner": self.owner}
            self.here[job["id"]] = job
            self._write(job)
            self._prune()
            started = _public(job)  # before the thread may change it: the answer says "running"
        threading.Thread(target=self._work, args=(job,), name=f"harden-job-{job['id']}", daemon=True).start()
        return started

    def _work(self, job: dict) -> None:
        written = [time.monotonic()]

        def progress(run) -> None:
            with self.lock:
                job["hosts"][run.name] = {"tasks": run.tasks_done, "task": run.current_task, "status": run.status,
                                          "changed": run.counts["changed"], "failed": run.counts["failed"]}
                if time.monotonic() - written[0] >= PROGRESS_WRITE_SECONDS:
                    written[0] = time.monotonic()
                    try:
                        self._write(job)
                    except OSError:  # the next write (or the final one) tries again
                        pass
        try:
            report = self.run(job["kind"], job["level"], job["limit"], stack=job["stack"], on_progress=progress)
        except (GovctlError, LookupError, OSError) as exc:
            result = {"state": "failed", "error": str(exc)[:2000]}
        except Exception as exc:  # noqa: BLE001 — a job must end with a state the page can show, never hang
            result = {"state": "failed", "error": f"{type(exc).__name__}: {exc}"[:2000]}
        else:
            result = {"state": "done", "run_id": report["run_id"], "unreachable": report["unreachable"],
                      "failed": report["failed"],
                      "hosts": {name: {**job["hosts"].get(name, {}), "status": h["status"], "message": h["message"],
                                       "verdicts": h.get("verdicts", {})} for name, h in report["hosts"].items()}}
        with self.lock:
            job.update(result, finished=time.time())
            try:
                self._write(job)
            except OSError as exc:  # the job still ends: this process answers for it from memory
                job["error"] = (job["error"] or "") + f" (its record could not be written: {exc})"

    def get(self, job_id: str) -> dict:
        with self.lock:
            job = self.here.get(job_id)
            if job is None:
                path = self.folder() / f"{job_id}.json"
                job = self._read(path) if path.is_file() else None
            if job is None:
                raise LookupError(f"no job {job_id[:40]!r} on record (GET /hardening/jobs lists them)")
            return _public(job)

    def listing(self) -> list[dict]:
        with self.lock:
            return [_public(job) for job in self._records()]


def _public(job: dict) -> dict:
    """A job as the API shows it (a copy; which process ran it is the console's business)."""
    return {**{k: v for k, v in job.items() if k != "owner"}, "hosts": {k: dict(v) for k, v in job["hosts"].items()}}


def preflight(limit: str | None, stack: str) -> None:
    """Refuse, before a job starts, a stack that is not deployed or a --limit matching no host."""
    from .inventory import build_inventory, hosts_matching, load_outputs
    hosts_matching(build_inventory(load_outputs(stack)), limit)


def extension(waivers: Callable[[], WaiverLookup] = no_waivers, jobs: Jobs | None = None,
              check_start=preflight) -> ApiExtension:
    """The hardening routes; `waivers()` gives the lookup of the host-item waivers in force now."""
    jobs = jobs or Jobs()

    def build(allowed):
        from fastapi import APIRouter, Depends, HTTPException, Path, Query

        router = APIRouter(tags=["hardening"])
        run_id_param = Path(pattern=records.RUN_ID.pattern, max_length=40)

        def lookup():
            try:
                return waivers(), None
            except (BadInput, GovctlError, OSError) as exc:  # a broken assessment file: the matrix still shows
                return no_waivers(), f"waivers not applied: {exc}"[:1000]

        def report_of(run_id: str | None, kind: str) -> dict:
            try:
                report = records.load(run_id) if run_id else records.latest(kind)
            except LookupError as exc:
                raise HTTPException(404, str(exc)) from None
            if report is None:
                what = "govctl audit" if kind == "audit" else "govctl harden --check"
                raise HTTPException(404, f"no {kind} on record yet: run one (POST /hardening/jobs) or `{what}`")
            return report

        @router.get("/hardening/runs")
        def runs(kind: Optional[Literal["audit", "check"]] = None, who=Depends(allowed("harden-read"))):
            """The audits and harden --check runs on record, newest first."""
            return {"runs": records.listing(kind)}

        @router.get("/hardening/matrix")
        def verdict_matrix(run_id: Optional[str] = Query(None, pattern=records.RUN_ID.pattern, max_length=40),
                           who=Depends(allowed("harden-read"))):
            """Host × item verdicts of the latest audit on record (or of `run_id`), waivers shown as 已豁免."""
            waiver_for, problem = lookup()
            return {**matrix(report_of(run_id, "audit"), waiver_for), "waivers_error": problem}

        @router.get("/hardening/runs/{run_id}/hosts/{host}/items/{item}")
        def item(run_id: str = run_id_param, host: str = Path(max_length=253), item: str = Path(max_length=80),
                 who=Depends(allowed("harden-read"))):
            """One item on one host: expected, observed, evidence, the 等保 clause and test ids, the waiver."""
            waiver_for, _ = lookup()
            try:
                return item_detail(report_of(run_id, "audit"), host, item, waiver_for)
            except LookupError as exc:
                raise HTTPException(404, str(exc)) from None

        @router.get("/hardening/diffs")
        def check_diffs(run_id: Optional[str] = Query(None, pattern=records.RUN_ID.pattern, max_length=40),
                        who=Depends(allowed("harden-read"))):
            """What a harden would change per host, from the latest harden --check on record (or `run_id`)."""
            return diffs(report_of(run_id, "check"))

        @router.post("/hardening/jobs", status_code=202)
        def start(body: JobRequest, who=Depends(allowed("harden-run"))):
            """Start an audit or a harden --check in the background (one at a time); poll GET /hardening/jobs/{id}."""
            try:
                check_start(body.limit, body.stack)
            except BadInput as exc:
                raise HTTPException(422, str(exc)) from None
            except GovctlError as exc:
                raise HTTPException(409, str(exc)) from None
            try:
                return jobs.start(body.kind, body.level, body.limit, body.stack, who[0])
            except RuntimeError as exc:
                raise HTTPException(409, str(exc)) from None

        @router.get("/hardening/jobs")
        def job_list(who=Depends(allowed("harden-read"))):
            """The jobs on record, newest first (kept across console restarts): state, who started it, the
            run id of its report; a job whose console stopped while it ran is `interrupted`."""
            return {"jobs": jobs.listing()}

        @router.get("/hardening/jobs/{job_id}")
        def job(job_id: str = Path(pattern=JOB_ID), who=Depends(allowed("harden-read"))):
            """A job's state (running, done, failed, interrupted), per-host progress, and the run id of its report."""
            try:
                return jobs.get(job_id)
            except LookupError as exc:
                raise HTTPException(404, str(exc)) from None

        return router

    return ApiExtension("hardening", build, PERMISSIONS)
