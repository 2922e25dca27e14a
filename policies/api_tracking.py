"""The auditors' follow-up pages on the console's API (issue #19): compare two reports or signed packs over
time (on record or uploaded), track the remediation of every 不符合 / 部分符合 item, and waive host audit
items.

Each route calls the function its CLI command calls — policies.compliance.history.compare (`govctl comply diff`),
remediation (`govctl comply remediation list|set`) and assessment (`govctl comply waiver list|add`) —
so the console and the terminal cannot disagree. Bodies are bounded and checked field by field (422
naming the field); what only the catalogs can judge (an unknown item) is refused with the domain's
own sentence. Listing does not notify: a GET has no side effects (the CLI's `remediation list` does)."""
# (no `from __future__ import annotations`: FastAPI reads the routes' annotations, which name local models)

import datetime as dt

from core.api_extension import ApiExtension

from .compliance import records

READ, SET, WAIVE = "comply-read", "remediation-set", "waive"
PERMISSIONS = {
    READ: frozenset({"auditor", "security", "ops"}),   # the same roles as policies/api.py gives it
    SET: frozenset({"auditor", "security", "ops"}),    # the owners of fixes are often ops
    WAIVE: frozenset({"security", "auditor"}),
}
ITEM_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
RECORD_NAME = r"^[^/\\\x00]{1,255}$"
COMPARE_PATH = "/compliance/compare"


def _date(name: str, text: str | None) -> str | None:
    """YYYY-MM-DD or a ValueError the 422 names the field with."""
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise ValueError(f"{name} {text!r} is not a date; write it as YYYY-MM-DD, e.g. 2027-03-31") from None


def build(allowed):
    from typing import Literal, Optional

    from fastapi import APIRouter, Depends, File, Form, HTTPException, Path as PathParam, Query, UploadFile
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict, Field, field_validator

    from core.errors import GovctlError
    from policies.compliance import STANDARDS, assessment, history, remediation
    from policies.compliance.pack import PackInvalid
    from policies.compliance.catalog import host_catalog, known_items

    router = APIRouter(tags=["compliance tracking"])

    def today() -> dt.date:
        return dt.datetime.now(dt.timezone.utc).date()

    def refused(exc: GovctlError) -> HTTPException:
        return HTTPException(422, str(exc))

    class RemediationChange(BaseModel):
        """The fields to change; a new entry needs owner and due (status defaults to open)."""
        model_config = ConfigDict(extra="forbid")
        owner: str | None = Field(None, min_length=1, max_length=200, description="who fixes it (person or team)")
        due: str | None = Field(None, max_length=10, description="due date, YYYY-MM-DD")
        status: Literal[remediation.STATUSES] | None = None
        link: str | None = Field(None, min_length=1, max_length=2000, description="the fix: change, ticket or document")

        @field_validator("due")
        @classmethod
        def due_is_a_date(cls, value):
            return _date("due", value)

    class HostWaiver(BaseModel):
        model_config = ConfigDict(extra="forbid")
        item: str = Field(pattern=ITEM_ID, description="a host-hardening item id, e.g. IA-REMOTE-ADMIN-SSH")
        host: str | None = Field(None, min_length=1, max_length=253, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                                 description="waive it on this host only (default: every host)")
        justification: str = Field(min_length=5, max_length=2000, description="why the item does not apply")
        approver: str = Field(min_length=1, max_length=200, description="who approved the waiver")
        expires: str = Field(max_length=10, description="last day the waiver holds, YYYY-MM-DD")

        @field_validator("expires")
        @classmethod
        def expires_is_a_date(cls, value):
            return _date("expires", value)

    def record_name(side: str):  # a Query of its own per parameter: FastAPI names a shared one once
        return Query(..., min_length=1, max_length=255, pattern=RECORD_NAME, description=f"{side} entry on record")

    @router.get("/compliance/history")
    def compliance_history(who=Depends(allowed(READ))):
        """The reports and signed packs on record (state/compliance/reports/), newest first: what can be compared."""
        return {"folder": str(history.directory()), "records": history.listing()}

    def compared(a, b):
        """history.compare, or 422 naming the side; a pack failing verification also gets `pack`: its side,
        file and every changed, missing or added file, for the page to say so in its reader's language."""
        try:
            return history.compare(a, b)
        except PackInvalid as invalid:
            r = invalid.report
            return JSONResponse(status_code=422, content={"detail": str(invalid), "pack": {
                "side": getattr(invalid, "side", None), "source": getattr(invalid, "source", None),
                "signature_valid": r.signature_valid, "changed": r.changed, "missing": r.missing, "added": r.added}})
        except GovctlError as exc:  # BadInput, a locked keystore
            raise refused(exc) from None

    @router.get(COMPARE_PATH)
    def compliance_compare(a: str = record_name("the earlier"), b: str = record_name("the later"), who=Depends(allowed(READ))):
        """`govctl comply diff A B --json` between two entries on record (A the earlier): verdict changes,
        new high-risk findings, changed evidence, the score's movement. Packs are verified first."""
        return compared(a, b)

    # compare uploaded packs (h-packcmp): each side an uploaded signed pack or an entry on record
    def form_record(side: str):
        return Form(None, min_length=1, max_length=255, pattern=RECORD_NAME,
                    description=f"the {side} entry on record (instead of {side[-1:]}_pack)")

    @router.post(COMPARE_PATH)
    def compliance_compare_uploads(
            a_pack: Optional[UploadFile] = File(None, description="the earlier signed pack (the zip the console "
                                                                  "downloads, or a zipped `govctl comply pack` directory)"),
            b_pack: Optional[UploadFile] = File(None, description="the later signed pack (zip)"),
            a: Optional[str] = form_record("earlier a"), b: Optional[str] = form_record("later b"),
            who=Depends(allowed(READ))):
        """`govctl comply diff A B --json` where A and B are uploaded signed packs (multipart: a_pack, b_pack) or
        entries on record (a, b), one of the two per side. An upload is checked as /compliance/verify checks
        it (a zip of plain files inside the pack, bounded when inflated) and verified before it is read; a
        tampered pack is refused (422) naming the side, the file and what changed."""
        sides = []
        for side, upload, name in (("A", a_pack, a), ("B", b_pack, b)):
            field = side.lower()
            if (upload is None) == (name is None):
                raise HTTPException(422, f"{side}: give either {field}_pack (an uploaded signed pack, zip) or {field} "
                                         "(the name of a report or pack on record), " +
                                    ("not both" if upload is not None else "one of them"))
            sides.append(name if upload is None else
                         history.Upload(upload.filename or "", upload.file.read(records.MAX_UPLOAD_BYTES + 1)))
        return compared(*sides)

    @router.get("/compliance/remediation")
    def remediation_list(status: Literal[remediation.STATUSES] | None = None, overdue: bool = False,
                         who=Depends(allowed(READ))):
        """`govctl comply remediation list --json` (overdue first), filtered by status and overdue, with the
        failing items of the newest reports on record that nobody tracks yet."""
        as_of = today()
        try:
            rows = remediation.load().listing(as_of, overdue)
            latest = history.latest_reports()
        except GovctlError as exc:
            raise refused(exc) from None
        known = {(r["key"], i["id"]): i for _, r in latest.values() for i in r["items"]}
        for row in rows:
            found = known.get((row["standard"], row["item"]))
            row["control"] = found.get("control") if found else None
            row["verdict"] = found.get("verdict") if found else None
        tracked = {(r["standard"], r["item"]) for r in remediation.load().entries}
        untracked = [{"standard": r["key"], "level": r["level"], "item": f["id"], "verdict": f["verdict"],
                      "high_risk": f.get("high_risk", False), "control": f.get("control"), "report": name}
                     for name, r in latest.values() for f in r["findings"] if (r["key"], f["id"]) not in tracked]
        return {"as_of": as_of.isoformat(), "statuses": list(remediation.STATUSES),
                "items": [r for r in rows if status is None or r["status"] == status],
                "untracked": untracked}

    @router.put("/compliance/remediation/{standard}/{item}")
    def remediation_set(change: RemediationChange,
                        standard: Literal[STANDARDS] = PathParam(description="djcp or mlps-crypto"),
                        item: str = PathParam(pattern=ITEM_ID, description="the item id, e.g. CE-IA-C"),
                        who=Depends(allowed(SET))):
        """`govctl comply remediation set STANDARD:ITEM …` as the signed-in user (on the audit trail)."""
        as_of = today()
        try:
            entry = remediation.track(item, standard, owner=change.owner, due=change.due, status=change.status,
                                      link=change.link, actor=who[0], today=as_of)
        except GovctlError as exc:
            raise refused(exc) from None
        return dict(entry, overdue=remediation.is_overdue(entry, as_of), status_zh=remediation.STATUS_ZH[entry["status"]])

    @router.get("/compliance/waivers")
    def waivers_list(who=Depends(allowed(READ))):
        """`govctl comply waiver list --json`: host-item waivers, active or expired, and the items that may be waived."""
        as_of = today()
        try:
            rows = assessment.host_waiver_rows(assessment.load(None, known_items()), as_of)
        except GovctlError as exc:
            raise refused(exc) from None
        items = [{"id": i["id"], "title": i["title"], "importance": i.get("importance")}
                 for i in (host_catalog() or {}).values()]
        return {"as_of": as_of.isoformat(), "waivers": rows, "items": items}

    @router.post("/compliance/waivers", status_code=201)
    def waiver_add(waiver: HostWaiver, who=Depends(allowed(WAIVE))):
        """`govctl comply waiver add ITEM …` as the signed-in user (the approver is whoever approved it)."""
        as_of = today()
        try:
            added = assessment.add_host_waiver(waiver.item, host=waiver.host, justification=waiver.justification,
                                               approver=waiver.approver, expires=waiver.expires, actor=who[0],
                                               today=as_of)
        except GovctlError as exc:
            raise refused(exc) from None
        return dict(added, host=added.get("host"), active=True)

    return router


# the compare route takes two uploaded packs (multipart), each bounded as /compliance/verify bounds one
EXTENSION = ApiExtension("compliance-tracking", build, PERMISSIONS,
                         body_limits={COMPARE_PATH: 2 * records.MAX_UPLOAD_BYTES + 64 * 1024})
