"""The drills' routes on the console's API (issue #19, core.api_extension): the history of runs with
their measured RTO / RPO / detection time and GB/T 20988 level, report downloads, and one drill at a
time started (its scenario's name typed again), followed step by step and aborted — all through
drills.live, the code `govctl drill run` runs."""

from core.api_extension import ApiExtension

from .live import CannotRun, DrillBusy, DrillDesk, NotConfirmed, UnknownScenario, history, report_file

PERMISSIONS = {"drill-read": frozenset({"ops", "security", "auditor"}), "drill-run": frozenset({"ops"})}
MEDIA = {"json": "application/json", "html": "text/html; charset=utf-8"}


def extension(desk: DrillDesk) -> ApiExtension:
    def build(allowed):
        from typing import Annotated, Literal

        from fastapi import APIRouter, Depends, HTTPException, Path as PathParam
        from fastapi.responses import FileResponse
        from pydantic import BaseModel, Field

        router = APIRouter(tags=["drills"])
        ScenarioName = Annotated[str, Field(min_length=1, max_length=64, description="a scenario's id")]

        class Start(BaseModel):
            scenario: ScenarioName
            confirm: Annotated[str, Field(max_length=64, description="the scenario's id typed again")]

        @router.get("/drills/scenarios")
        def scenarios(who=Depends(allowed("drill-read"))):
            """The drill plans that can be run (drills/plans/*.yaml)."""
            return desk.scenarios()

        @router.get("/drills/history")
        def runs(who=Depends(allowed("drill-read"))):
            """Every run on record, oldest first, with its measured figures and GB/T 20988 level."""
            return history(desk.folder)

        @router.get("/drills/reports/{report_id}/{fmt}")
        def report(report_id: Annotated[str, PathParam(max_length=96)], fmt: Literal["json", "html"],
                   who=Depends(allowed("drill-read"))):
            """A run's report as `govctl drill run` wrote it (JSON signed when the keystore was open)."""
            path = report_file(report_id, fmt, desk.folder)
            if path is None:
                raise HTTPException(404, f"no drill report {report_id!r}; see /drills/history for the runs on record")
            return FileResponse(path, media_type=MEDIA[fmt], filename=f"drill-{report_id}.{fmt}")

        @router.get("/drills/live")
        def live(who=Depends(allowed("drill-read"))):
            """The running drill (or the last one the console ran): its steps as they end; null when none."""
            return desk.current()

        @router.post("/drills/run", status_code=202)
        def start(body: Start, who=Depends(allowed("drill-run"))):
            """Start a drill in the background; `confirm` must repeat the scenario's id. One at a time."""
            try:
                return desk.start(body.scenario, body.confirm, who[0])
            except UnknownScenario as exc:
                raise HTTPException(404, str(exc)) from None
            except NotConfirmed as exc:
                raise HTTPException(422, str(exc)) from None
            except (DrillBusy, CannotRun) as exc:
                raise HTTPException(409, str(exc)) from None

        @router.post("/drills/abort")
        def abort(who=Depends(allowed("drill-run"))):
            """Stop the running drill: at its next step the runner rolls the cloud back to its layout."""
            try:
                return desk.abort(who[0])
            except LookupError as exc:
                raise HTTPException(409, str(exc)) from None

        return router

    return ApiExtension("drills", build, PERMISSIONS)


EXTENSION = extension(DrillDesk())
