"""The scheduled collection (issue 19) on the console's REST API, read only: `GET /schedule` — the same
rows as `govctl schedule list --json` (services.schedule.overview), for the auditors' and ops' pages.
Running a job stays with the CLI (`govctl schedule run`): a drill or an evidence pack takes up to an
hour, which no HTTP request should wait for."""
from __future__ import annotations

from typing import Callable

from core.api_extension import ApiExtension

from .layout import Layout

SCHEDULE_READ = "schedule-read"


def schedule_extension(layout: Callable[[], Layout]) -> ApiExtension:
    """`layout()` gives the platform's state folder at request time (tests pass their own)."""

    def build(allowed):
        from fastapi import APIRouter, Depends

        from .schedule import overview, planned_jobs, spec_jobs, utc_now
        from .spec import load_spec
        from .layout import read_json

        router = APIRouter()

        @router.get("/schedule", tags=["schedule"], summary="Scheduled jobs: cadence, next due, last run")
        def schedule(who=Depends(allowed(SCHEDULE_READ))) -> dict:
            where = layout()
            jobs = planned_jobs(where)
            planned = bool(jobs)
            if not planned:
                jobs = spec_jobs(load_spec((read_json(where.platform) or {}).get("spec")))
            return {"planned": planned, "jobs": overview(where, jobs, utc_now())}
        return router

    return ApiExtension("schedule", build, {SCHEDULE_READ: frozenset({"auditor", "ops", "security"})})


def _default_layout() -> Layout:
    from core.paths import STATE
    return Layout(STATE)


EXTENSION = schedule_extension(_default_layout)
