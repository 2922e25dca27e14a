"""The auditors' compliance page on the console's REST API (issue #19), as a core.api_extension.ApiExtension:
reports on record (list, run in the background, open with filters, download), and verification of an
uploaded signed pack. Every route calls policies.compliance (records, run, pack), the functions behind
`govctl comply report|pack|verify`; nothing is decided here but HTTP."""

# no `from __future__ import annotations`: FastAPI reads the route signatures of models defined in build()
from core.api_extension import ApiExtension

from .compliance import records

READ, RUN = "comply-read", "comply-run"
PERMISSIONS = {READ: frozenset({"auditor", "security", "ops"}), RUN: frozenset({"auditor", "security"})}
VERIFY_PATH = "/compliance/verify"


def build(allowed):
    from typing import Annotated, Literal, Optional

    from fastapi import APIRouter, Depends, HTTPException, Path as PathParam, Query, Request, Response
    from fastapi.responses import FileResponse
    from pydantic import BaseModel, Field
    from starlette.concurrency import run_in_threadpool

    from core.errors import BadInput

    from .compliance import STANDARDS, VERDICT_EN, VERDICTS
    from .compliance.run import LEVELS

    router = APIRouter(tags=["compliance"])
    RecordId = Annotated[str, PathParam(min_length=1, max_length=64, pattern=records.RECORD_ID.pattern,
                                        description="a report on record, e.g. 20261207T010203Z-djcp-L3-a1b2c3")]

    class Run(BaseModel):
        standard: Literal[STANDARDS] = Field(description="djcp (等保 2.0) or mlps-crypto (密评)")
        level: Literal[LEVELS] = Field(3, description="protection level 2, 3 or 4")
        evidence: Literal[records.EVIDENCE_SOURCES] = Field(
            "saved", description="saved: the evidence `govctl comply collect` saved in state/compliance/evidence; "
                                 "collect: collect it from the lab now (minutes)")
        as_of: Optional[str] = Field(None, max_length=10, pattern=r"^\d{4}-\d{2}-\d{2}$",
                                     description="judge freshness, waivers and due dates as of this date (YYYY-MM-DD)")

    def guarded(fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except records.NotOnRecord as exc:
            raise HTTPException(404, str(exc)) from None
        except records.NotReady as exc:
            raise HTTPException(409, str(exc)) from None
        except BadInput as exc:
            raise HTTPException(422, str(exc)) from None

    @router.get("/compliance/reports")
    def list_reports(who=Depends(allowed(READ))) -> list[dict]:
        """The reports on record, newest first: status (running, ready, failed), score and counts by verdict."""
        return records.listing()

    @router.post("/compliance/reports", status_code=202)
    def run_report(body: Run, who=Depends(allowed(RUN))) -> dict:
        """Start a report (等保 L2/L3/L4 or 密评); it is made and sealed in the background — poll its status."""
        return guarded(records.start, body.standard, body.level, body.evidence, who[0], body.as_of)

    @router.get("/compliance/reports/{record_id}")
    def report_status(record_id: RecordId, who=Depends(allowed(READ))) -> dict:
        return guarded(records.status, record_id)

    @router.get("/compliance/reports/{record_id}/report")
    def open_report(record_id: RecordId,
                    verdict: Optional[Literal[tuple(VERDICTS) + tuple(VERDICT_EN.values())]] = Query(None),
                    high_risk: Optional[bool] = Query(None),
                    layer: Optional[str] = Query(None, min_length=1, max_length=32, pattern=r"^[a-z_]+$",
                                                 description="an evidence layer (stack, firewall, hosts, …)"),
                    automation: Optional[Literal[records.AUTOMATION]] = Query(None),
                    who=Depends(allowed(READ))) -> dict:
        """The report: areas, then the items matching every filter given, each with its evidence and which
        of it decided the verdict; the evidence layers' collection time and stale flag."""
        opened = guarded(records.open_report, record_id)
        report = opened["report"]
        opened["total_items"] = len(report["items"])
        report["items"] = guarded(records.filter_items, report["items"], verdict, high_risk, layer, automation)
        return opened

    @router.get("/compliance/reports/{record_id}/files/{fmt}", response_class=FileResponse,
                responses={200: {"content": {t: {} for t in records.FILE_FORMATS.values()}}})
    def report_file(record_id: RecordId, fmt: Literal[tuple(records.FILE_FORMATS)],
                    who=Depends(allowed(READ))):
        path, name = guarded(records.report_file, record_id, fmt)
        return FileResponse(path, media_type=records.FILE_FORMATS[fmt], filename=name)

    @router.get("/compliance/reports/{record_id}/pack", response_class=Response,
                responses={200: {"content": {"application/zip": {}}}})
    def report_pack(record_id: RecordId, who=Depends(allowed(READ))):
        """The signed evidence pack as a zip: unzip and `govctl comply verify DIR`, or upload it to /compliance/verify."""
        data, name = guarded(records.pack_zip, record_id)
        return Response(data, media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @router.post(VERIFY_PATH, openapi_extra={"requestBody": {"required": True, "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})  # the zip; any type
    async def verify_pack(request: Request, who=Depends(allowed(READ))) -> dict:
        """Verify an uploaded pack (the zip as the request body) as `govctl comply verify` does: ok, or the
        signature's verdict and every changed, missing or added file. Not a zip or too large: 422 / 413."""
        data = await request.body()
        return await run_in_threadpool(guarded, records.verify_upload, data)

    return router


EXTENSION = ApiExtension("compliance", build, PERMISSIONS, body_limits={VERIFY_PATH: records.MAX_UPLOAD_BYTES})
