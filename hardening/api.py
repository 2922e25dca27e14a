"""The console's hardening page (issue #19): the host × item verdict matrix of the latest host audit on
record, each item's detail, and background runs of `govctl audit` / `govctl harden --check` with per-host
progress. The runs call hardening.records.run_and_record, the function the CLI calls.

Waivers of host items live in the compliance assessment (policies), a layer above this package: the
composition (policies/api_hardening.py) hands `extension` a lookup, so this module never imports policies.
"""
from __future__ import annotations

import threading
import time
import uuid
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
JOBS_KEPT = 20

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


class Jobs:
    """Background audit / check runs, one at a time (each runs Ansible on every host)."""

    def __init__(self, run=records.run_and_record):
        self.run = run
        self.lock = threading.Lock()
        self.jobs: dict[str, dict] = {}

    def start(self, kind: str, level: int, limit: str | None, stack: str, started_by: str) -> dict:
        with self.lock:
            busy = next((j for j in self.jobs.values() if j["state"] == "running"), None)
            if busy:
                raise RuntimeError(f"job {busy['id']} ({busy['kind']}) is still running; wait for it to finish")
            job = {"id": uuid.uuid4().hex[:12], "kind": kind, "level": level, "limit": limit, "stack": stack,
                   "started_by": started_by, "started": time.time(), "finished": None, "state": "running",
                   "hosts": {}, "run_id": None, "unreachable": [], "failed": [], "error": None}
            self.jobs[job["id"]] = job
            for old in sorted(self.jobs.values(), key=lambda j: j["started"])[:-JOBS_KEPT]:
                if old["state"] != "running":
                    del self.jobs[old["id"]]
        threading.Thread(target=self._work, args=(job,), name=f"harden-job-{job['id']}", daemon=True).start()
        return dict(job)

    def _work(self, job: dict) -> None:
        def progress(run) -> None:
            with self.lock:
                job["hosts"][run.name] = {"tasks": run.tasks_done, "task": run.current_task, "status": run.status,
                                          "changed": run.counts["changed"], "failed": run.counts["failed"]}
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

    def get(self, job_id: str) -> dict:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                raise LookupError(f"no job {job_id[:40]!r} (jobs are kept while the console runs)")
            return {**job, "hosts": {k: dict(v) for k, v in job["hosts"].items()}}


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

        @router.get("/hardening/jobs/{job_id}")
        def job(job_id: str = Path(pattern=r"^[0-9a-f]{12}$"), who=Depends(allowed("harden-read"))):
            """A job's state (running, done, failed), per-host progress, and the run id of its report."""
            try:
                return jobs.get(job_id)
            except LookupError as exc:
                raise HTTPException(404, str(exc)) from None

        return router

    return ApiExtension("hardening", build, PERMISSIONS)
