"""HTTP API for incidents and bans (FastAPI), with bearer tokens and three roles.

Roles and what they may do:
  auditor   read incidents, events, bans and the decision trail; change nothing
  ops       read incidents, events and bans; acknowledge incidents and add notes
  security  everything: acknowledge, assign, contain, resolve, notes; add and lift bans; read the trail
Tokens live in a YAML file as SHA-256 digests (`govctl incidents token add` prints a new token once).

Every input is bounded by secops/schemas/limits.yaml (through secops/limits.py): ids, list limits, text
lengths, ban TTLs (finite, 1 s to 365 days) and the request body (413 above it, before it is parsed).
"""

import hashlib
import hmac
import math
import secrets
from pathlib import Path
from typing import Any

import yaml

from core import yamlfile

ROLES = ("ops", "security", "auditor")
PERMISSIONS: dict[str, set[str]] = {
    "read": {"ops", "security", "auditor"},
    "ack": {"ops", "security"},
    "note": {"ops", "security"},
    "assign": {"security"},
    "contain": {"security"},
    "resolve": {"security"},
    "ban": {"security"},
    "audit": {"security", "auditor"},
}
# cases (issue #18): merge/split/reopen are triage (security); plan tasks are done by ops and security;
# reports and SLA figures are read by every role
PERMISSIONS.update({"merge": {"security"}, "split": {"security"}, "reopen": {"security"},
                    "task": {"ops", "security"}})


class Tokens:
    def __init__(self, path: Path):
        self.path = Path(path)

    def _load(self) -> list[dict]:
        if not self.path.exists():
            return []
        doc = yamlfile.load(self.path, allow_empty=True) or {}
        return list(doc.get("tokens") or [])

    def add(self, name: str, role: str) -> str:
        if role not in ROLES:
            raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
        entries = [t for t in self._load() if t.get("name") != name]
        token = secrets.token_urlsafe(32)
        entries.append({"name": name, "role": role, "sha256": hashlib.sha256(token.encode()).hexdigest()})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump({"tokens": entries}, sort_keys=False), encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(self.path)
        return token

    def who(self, token: str) -> tuple[str, str] | None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        for entry in self._load():
            if hmac.compare_digest(str(entry.get("sha256", "")), digest):
                return entry["name"], entry["role"]
        return None


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes is answered 413 before the app reads it — at once
    when its Content-Length says so, else as soon as the bytes received pass the limit (chunked bodies are
    buffered up to the limit). Starlette and uvicorn bound headers but not bodies, hence this."""

    def __init__(self, app, limit: int, larger: dict[str, int] | None = None):
        self.app, self.limit = app, limit
        # an API extension's route that takes a file (an evidence pack to verify): path → its own limit
        self.larger = dict(larger or {})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.larger:
            path, root = scope["path"], scope.get("root_path", "")
            limit = self.larger.get(path[len(root):] if root and path.startswith(root) else path, self.limit)
            if limit != self.limit:
                return await BodyLimit(self.app, limit)(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return await self._refuse(scope, receive, send)
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay():
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope, receive, send):
        from starlette.responses import JSONResponse
        await JSONResponse({"detail": f"request body over {self.limit} bytes; send less (a note or reason is"
                                      " bounded, see the OpenAPI document)"}, status_code=413)(scope, receive, send)


def json_safe(value):
    """`value` with every non-finite float as its text ("inf", "nan"): JSON has no such numbers, and a 422
    echoes the refused input."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def error_responses() -> dict:
    """The error answers any endpoint may give, as the OpenAPI document declares them."""
    from pydantic import BaseModel, Field

    class Problem(BaseModel):
        """An error answer: what went wrong and what to do."""
        detail: str

    class FieldProblem(BaseModel):
        loc: list[str | int] = Field(description="where: body, query or path, then the field's name")
        msg: str
        type: str

    class InvalidRequest(BaseModel):
        """The fields out of bounds (a list), or one sentence when the input parsed but cannot be acted on
        (an allowlisted address, a blank note)."""
        detail: str | list[FieldProblem]

    return {
        400: {"model": Problem, "description": "the body is not JSON text in UTF-8"},
        401: {"model": Problem, "description": "missing or unknown bearer token"},
        403: {"model": Problem, "description": "the token's role may not do this"},
        404: {"model": Problem, "description": "no such incident"},
        409: {"model": Problem, "description": "the incident's state does not allow this"},
        413: {"model": Problem, "description": "request body over the limit"},
        422: {"model": InvalidRequest, "description": "an input out of its bounds or not usable"},
        503: {"model": Problem, "description": "bans are read-only on a server without an enforcer"},
    }


def answer_models() -> dict:
    """The successful answers' shapes, declared in the OpenAPI document (documentation: the endpoints
    return the domain's dicts as they are; the fuzz test checks that they conform)."""
    from typing import Any, Literal

    from pydantic import BaseModel, ConfigDict, Field

    from .incidents import SEVERITY, STATES

    class Entity(BaseModel):
        kind: str
        value: str

    class Incident(BaseModel):
        id: int
        entity: Entity
        title: str
        severity: Literal[SEVERITY]
        state: Literal[STATES]
        assignee: str | None
        created: str
        updated: str
        first: str
        last: str
        alerts: int = Field(description="how many alerts")
        rules: list[str] = Field([], description="the rules of its alerts")
        centers: list[str] = Field([], description="the centers whose firewalls enforced its blocks")

    class Decision(BaseModel):
        id: int | None
        address: str
        action: Literal["block", "unblock", "allowlisted"]
        reason: str
        actor: str
        created: str
        ttl: float | None = Field(description="seconds; null for a block stored before TTLs were bounded")
        until: str | None = Field(description="null: no end (an unblock, or a block stored before TTLs were bounded)")
        rule: str | None
        alert_id: int | str | None
        enforced: bool
        offence: int
        centers: list[str] = Field([], description="the centers whose enforcement points took the block")

    class IncidentAlert(BaseModel):
        model_config = ConfigDict(extra="allow")  # source.ip, user, host
        id: int | str
        rule: str
        title: str | None
        level: str | None
        tags: list[str]
        first: str
        last: str
        count: int
        evidence: list[str]

    class IncidentNote(BaseModel):
        time: str
        author: str
        kind: str
        text: str

    class IncidentDecision(BaseModel):
        id: int | None
        address: str
        action: str
        until: str | None
        reason: str
        actor: str
        time: str

    class IncidentDetail(Incident):
        alerts: list[IncidentAlert]
        notes: list[IncidentNote]
        decisions: list[IncidentDecision]
        # cases (issue #18; docs/secops.md "Cases")
        sla: dict[str, Any] = Field(description="class, since, targets[] (target, seconds, due, reached, status"
                                                " met|breached|pending, remaining), breached[]")
        observables: list[dict[str, Any]] = Field(description="kind, value, other_incidents[] (ids)")
        checklist: dict[str, Any] | None = Field(description="the response plan's tasks (id, zh, en, done, by, at);"
                                                             " null when no plan fits")
        merged_into: int | None = Field(description="the incident this one was merged into")

    # the incident search and the overview (console, issue #17)
    class IncidentCounts(BaseModel):
        by_state: dict[str, int] = Field(description="every state: how many match the other filters")
        by_severity: dict[str, int] = Field(description="every severity: how many match the other filters")

    class IncidentPage(BaseModel):
        total: int = Field(description="how many incidents match every filter")
        offset: int
        limit: int
        items: list[Incident]
        counts: IncidentCounts

    class Blocks(BaseModel):
        blocks: int
        by_center: dict[str, int] = Field(description="blocks each center's firewall enforced")
        by_rule: dict[str, int] = Field(description="blocks per rule; `manual` for blocks made by hand")

    class Day(Blocks):
        date: str = Field(description="the day in the requested zone, YYYY-MM-DD")

    class Source(BaseModel):
        address: str
        blocks: int

    class Overview(BaseModel):
        zone: str
        days: list[Day] = Field(description="oldest first, today last")
        today: Day
        period: Blocks
        top_sources: list[Source] = Field(description="the most blocked addresses of the period")
        open_incidents: int
        open_by_severity: dict[str, int]
        by_state: dict[str, int] = Field(description="every incident, open or closed, by state")

    return {"incidents": list[Incident], "incident": IncidentDetail, "decision": Decision,
            "decisions": list[Decision], "events": list[dict[str, Any]], "incident_page": IncidentPage,
            "overview": Overview}


def create_app(store, tokens_path: str | Path, decisions=None, authenticator=None, extensions=()):
    """The FastAPI application on `store` (either kind of secops/stores.py; a path opens that SQLite file).
    `decisions` (a DecisionEngine on the same store) serves ban changes; without one they are refused with 503.
    `authenticator(request)` → (name, role) authorizes requests without a bearer token (the console's
    session cookie); it raises HTTPException when it refuses. `extensions` (core.api_extension.ApiExtension)
    add other packages' routes behind the same authentication and roles."""
    from typing import Annotated, Literal

    from fastapi import Depends, FastAPI, HTTPException, Path as PathParam, Query, Request, Response
    from fastapi.encoders import jsonable_encoder
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, Field

    from .incidents import SEVERITY, STATES, IncidentError, Incidents, InvalidInput, NotFound
    from .limits import ASSIGNEE, BAN_TTL, EVENT_QUERY, LIST_LIMIT, NOTE, REASON, RECORD_ID, REQUEST_BODY, TIME_TEXT
    from .limits import INCIDENT_LABEL, INCIDENT_SOURCE, LIST_OFFSET, OVERVIEW_DAYS, TIME_ZONE, TITLE_QUERY
    from .model import INCIDENT_SORTS
    from .store import Store
    from .stores import parse_event_query, parse_time

    if isinstance(store, (str, Path)):
        store = Store(store)
    incidents = Incidents(store)
    tokens = Tokens(Path(tokens_path))
    answers = answer_models()

    def answer(name: str, status: int = 200) -> dict:
        return {status: {"model": answers[name]}}

    app = FastAPI(title="govctl secops", version="1", responses=error_responses())
    app.add_middleware(BodyLimit, limit=REQUEST_BODY.maximum,
                       larger={p: n for e in extensions for p, n in e.body_limits.items()})  # API extensions' uploads

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": json_safe(jsonable_encoder(exc.errors()))}, status_code=422)

    def bounded_text(bound):
        return Field(min_length=bound.min_length, max_length=bound.max_length, description=bound.description)

    def limit_param(default: int):
        return Query(default, ge=LIST_LIMIT.minimum, le=LIST_LIMIT.maximum, description=LIST_LIMIT.description)

    IncidentId = Annotated[int, PathParam(ge=RECORD_ID.minimum, le=RECORD_ID.maximum, description=RECORD_ID.description)]
    TimeText = Annotated[str | None, Query(max_length=TIME_TEXT.max_length, description=TIME_TEXT.description)]

    def caller(request: Request) -> tuple[str, str]:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not header and authenticator is not None:
            return authenticator(request)
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        who = tokens.who(token.strip())
        if who is None:
            raise HTTPException(401, "unknown token", headers={"WWW-Authenticate": "Bearer"})
        return who

    permissions = {action: frozenset(roles) for action, roles in PERMISSIONS.items()}
    for extension in extensions:
        for action, roles in extension.permissions.items():
            if action in permissions and permissions[action] != frozenset(roles):
                raise ValueError(f"API extension {extension.name} gives permission {action!r} other roles")
            unknown = set(roles) - set(ROLES)
            if unknown:
                raise ValueError(f"API extension {extension.name}: unknown roles {sorted(unknown)} for {action!r}")
            permissions[action] = frozenset(roles)

    def allowed(action: str):
        def check(who: tuple[str, str] = Depends(caller)) -> tuple[str, str]:
            if who[1] not in permissions[action]:
                raise HTTPException(403, f"role {who[1]} may not {action}")
            return who
        return check

    def guarded(fn, *args) -> Any:
        try:
            return fn(*args)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except InvalidInput as exc:
            raise HTTPException(422, str(exc)) from None
        except IncidentError as exc:
            raise HTTPException(409, str(exc)) from None

    # the incident search's parameters, shared by GET /incidents and GET /incident-search (issue #17)
    sorts = tuple(f"{sign}{column}" for column in INCIDENT_SORTS for sign in ("", "-"))

    def incident_search(
            state: list[Literal[STATES]] = Query([], description="one or more states (repeat the parameter)"),
            severity: list[Literal[SEVERITY]] = Query([], description="one or more severities (repeat the parameter)"),
            rule: str | None = Query(None, min_length=INCIDENT_LABEL.min_length, max_length=INCIDENT_LABEL.max_length,
                                     description="incidents with an alert of this rule; " + INCIDENT_LABEL.description),
            center: str | None = Query(None, min_length=INCIDENT_LABEL.min_length,
                                       max_length=INCIDENT_LABEL.max_length,
                                       description="incidents whose blocks this center's firewall enforced"),
            source: str | None = Query(None, max_length=INCIDENT_SOURCE.max_length,
                                       description="the source address, exact or a CIDR range; "
                                       + INCIDENT_SOURCE.description),
            since: TimeText = None, until: TimeText = None,
            q: str | None = Query(None, max_length=TITLE_QUERY.max_length,
                                  description="text in the title (any case); " + TITLE_QUERY.description),
            sort: Literal[sorts] = Query("-last", description="a column; a leading - sorts descending"),
            offset: int = Query(0, ge=LIST_OFFSET.minimum, le=LIST_OFFSET.maximum,
                                description=LIST_OFFSET.description)) -> dict:
        return {"states": state, "severities": severity, "rule": rule, "center": center, "source": source,
                "since": since, "until": until, "text": q, "sort": sort, "offset": offset}

    class Note(BaseModel):
        text: str = bounded_text(NOTE)

    class Assign(BaseModel):
        assignee: str = bounded_text(ASSIGNEE)

    class Resolve(BaseModel):
        note: str | None = Field(None, max_length=NOTE.max_length, description=NOTE.description)
        false_positive: bool = False

    class Ban(BaseModel):
        address: str
        ttl: float = Field(3600, ge=BAN_TTL.minimum, le=BAN_TTL.maximum, allow_inf_nan=False,
                           description=BAN_TTL.description)
        reason: str = bounded_text(REASON)

    @app.get("/incidents", responses=answer("incidents"))
    def list_incidents(response: Response, search: dict = Depends(incident_search),
                       limit: int = limit_param(100), who=Depends(allowed("read"))):
        """One page of the incidents matching every filter given; the total is in the `X-Total-Count` header
        (GET /incident-search answers the same with the total and the counts in the body)."""
        found = guarded(incidents.search, *search.values(), limit)
        response.headers["X-Total-Count"] = str(found["total"])
        return found["items"]

    @app.get("/incidents/{incident_id}", responses=answer("incident"))
    def show_incident(incident_id: IncidentId, who=Depends(allowed("read"))):
        return guarded(incidents.show, incident_id)

    @app.post("/incidents/{incident_id}/ack", responses=answer("incident"))
    def ack(incident_id: IncidentId, who=Depends(allowed("ack"))):
        return guarded(incidents.ack, incident_id, who[0])

    @app.post("/incidents/{incident_id}/notes", responses=answer("incident"))
    def note(incident_id: IncidentId, body: Note, who=Depends(allowed("note"))):
        return guarded(incidents.note, incident_id, who[0], body.text)

    @app.post("/incidents/{incident_id}/assign", responses=answer("incident"))
    def assign(incident_id: IncidentId, body: Assign, who=Depends(allowed("assign"))):
        return guarded(incidents.assign, incident_id, body.assignee, who[0])

    @app.post("/incidents/{incident_id}/contain", responses=answer("incident"))
    def contain(incident_id: IncidentId, who=Depends(allowed("contain"))):
        return guarded(incidents.contain, incident_id, who[0])

    @app.post("/incidents/{incident_id}/resolve", responses=answer("incident"))
    def resolve(incident_id: IncidentId, body: Resolve, who=Depends(allowed("resolve"))):
        return guarded(incidents.resolve, incident_id, who[0], body.note, body.false_positive)

    @app.get("/events", responses=answer("events"))
    def events(q: str = Query("", max_length=EVENT_QUERY.max_length, description=EVENT_QUERY.description),
               since: TimeText = None, until: TimeText = None, limit: int = limit_param(100),
               who=Depends(allowed("read"))):
        """Newest events matching `q` (`field:value …`, the syntax of `govctl incidents events`)."""
        try:
            filters = parse_event_query(q)
            start, end = parse_time(since, "since"), parse_time(until, "until")
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return store.search_events(filters, start, end, limit)

    @app.get("/bans", responses=answer("decisions"))
    def bans(who=Depends(allowed("read"))):
        return store.active_bans()

    @app.get("/decisions", responses=answer("decisions"))
    def decisions_trail(limit: int = limit_param(200), who=Depends(allowed("audit"))):
        return store.decision_trail(limit)

    @app.post("/bans", status_code=201, responses=answer("decision", 201))
    def add_ban(body: Ban, who=Depends(allowed("ban"))):
        if decisions is None:
            raise HTTPException(503, "this API server runs without an enforcer; bans are read-only")
        try:  # the address goes through secops.address: canonical, special addresses refused with the reason
            decision = decisions.block(body.address, body.reason, ttl=body.ttl, actor=who[0])
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        finally:
            decisions.flush()
        return decision.to_dict()  # after the flush: recorded, and enforced only if the enforcer took it

    @app.delete("/bans/{address}", responses=answer("decision"))
    def lift_ban(address: str, reason: str = Query("lifted by hand", min_length=REASON.min_length,
                                                   max_length=REASON.max_length, description=REASON.description),
                 who=Depends(allowed("ban"))):
        if decisions is None:
            raise HTTPException(503, "this API server runs without an enforcer; bans are read-only")
        try:
            return decisions.unblock(address, reason, actor=who[0]).to_dict()
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    # ---- cases (issue #18): SLAs, merge/split/reopen, plan tasks, the incident report
    from fastapi.responses import Response

    from .case_report import to_json as report_json, to_pdf as report_pdf

    class Merge(BaseModel):
        incidents: list[Annotated[int, Field(ge=RECORD_ID.minimum, le=RECORD_ID.maximum)]] = Field(
            min_length=1, max_length=50, description="the incidents whose alerts move into this one (1 to 50)")
        note: str | None = Field(None, max_length=NOTE.max_length, description=NOTE.description)

    class Split(BaseModel):
        alerts: list[int | Annotated[str, Field(min_length=1, max_length=64)]] = Field(
            min_length=1, max_length=1000, description="ids of the alerts that move into a new incident")
        note: str | None = Field(None, max_length=NOTE.max_length, description=NOTE.description)

    class Reopen(BaseModel):
        note: str | None = Field(None, max_length=NOTE.max_length, description=NOTE.description)

    class Task(BaseModel):
        done: bool = True

    TaskId = Annotated[str, PathParam(pattern="^[a-z][a-z0-9-]{1,40}$", description="a task id of the plan")]

    @app.get("/sla")
    def sla_overview(limit: int = limit_param(1000), who=Depends(allowed("read"))):
        """SLA figures of every open incident; breaches now due are recorded (notes of kind sla-breach)."""
        return guarded(incidents.sla, limit)

    @app.post("/incidents/{incident_id}/merge", responses=answer("incident"))
    def merge(incident_id: IncidentId, body: Merge, who=Depends(allowed("merge"))):
        return guarded(incidents.merge, incident_id, body.incidents, who[0], body.note)

    @app.post("/incidents/{incident_id}/split", responses=answer("incident"))
    def split(incident_id: IncidentId, body: Split, who=Depends(allowed("split"))):
        """Answers the new incident."""
        return guarded(incidents.split, incident_id, body.alerts, who[0], body.note)

    @app.post("/incidents/{incident_id}/reopen", responses=answer("incident"))
    def reopen(incident_id: IncidentId, body: Reopen, who=Depends(allowed("reopen"))):
        return guarded(incidents.reopen, incident_id, who[0], body.note)

    @app.post("/incidents/{incident_id}/tasks/{task_id}", responses=answer("incident"))
    def task(incident_id: IncidentId, task_id: TaskId, body: Task, who=Depends(allowed("task"))):
        return guarded(incidents.task, incident_id, task_id, who[0], body.done)

    @app.get("/incidents/{incident_id}/report", response_class=Response,
             responses={200: {"content": {"application/pdf": {}, "application/json": {}}}})
    def report(incident_id: IncidentId, format: Literal["pdf", "json"] = "pdf", who=Depends(allowed("read"))):
        """The incident report for the emergency-command records, as a Chinese PDF or JSON (a download)."""
        document = guarded(incidents.report, incident_id, who[0])
        body = report_pdf(document) if format == "pdf" else report_json(document)
        name = f"incident-{incident_id}-report.{format}"
        return Response(body, media_type="application/pdf" if format == "pdf" else "application/json",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    # the incident search with its counts, and the overview (console, issue #17)
    @app.get("/incident-search", responses=answer("incident_page"))
    def search_incidents(search: dict = Depends(incident_search), limit: int = limit_param(50),
                         who=Depends(allowed("read"))):
        """The incidents matching every filter: one page, the total, and the counts by state and by severity
        (each count applies every filter but its own, so the page can show what each choice would give)."""
        return guarded(incidents.search, *search.values(), limit)

    @app.get("/overview", responses=answer("overview"))
    def overview(days: int = Query(7, ge=OVERVIEW_DAYS.minimum, le=OVERVIEW_DAYS.maximum,
                                   description=OVERVIEW_DAYS.description),
                 zone: str = Query("Asia/Shanghai", min_length=TIME_ZONE.min_length, max_length=TIME_ZONE.max_length,
                                   description=TIME_ZONE.description),
                 who=Depends(allowed("read"))):
        """Blocks per day in `zone` (today last) per center and per rule, the most blocked addresses and open
        incidents by severity and state, aggregated by the store."""
        return guarded(incidents.overview, days, zone)

    # --- interception: range bans (DELETE of a CIDR) and the signed blocklist exchange (secops/exchange.py) ---
    @app.delete("/bans/{address}/{prefix}", responses=answer("decision"))
    def lift_range_ban(address: str, prefix: str,
                       reason: str = Query("lifted by hand", min_length=REASON.min_length,
                                           max_length=REASON.max_length, description=REASON.description),
                       who=Depends(allowed("ban"))):
        """Lift a range ban: DELETE /bans/203.0.113.0/24 (or with the / as %2F)."""
        return lift_ban(f"{address}/{prefix}", reason, who)

    class BlocklistImport(BaseModel):
        blocklist: dict[str, Any] = Field(description="the document `govctl bans export` / GET /bans/export wrote")
        pubkey: str = Field(max_length=300, description="the issuer's SM2 public key, 04… hex")

    signer: dict = {}

    @app.get("/bans/export")
    def export_bans(issuer: str | None = Query(None, max_length=64, description="who issues it (default: host name)"),
                    valid_for: float = Query(86400, ge=60, le=30 * 86400, description="seconds it may be imported"),
                    who=Depends(allowed("ban"))):
        """The blocks in force as an SM2-signed blocklist (keystore key `blocklist`)."""
        from core.errors import GovctlError
        from crypto.audit import open_keystore
        from secops.exchange import default_issuer, export_blocklist
        if "keystore" not in signer:  # opened once: its key derivation is slow by design
            try:
                signer["keystore"] = open_keystore()
            except GovctlError as exc:
                raise HTTPException(503, f"the keystore cannot be opened here, so nothing can be signed: {exc}") from None
        try:
            return export_blocklist(store, signer["keystore"], issuer or default_issuer(), valid_for=valid_for)
        except GovctlError as exc:
            raise HTTPException(422, str(exc)) from None

    @app.post("/bans/import")
    def import_bans(body: BlocklistImport, who=Depends(allowed("ban"))):
        """Verify and import a blocklist; 422 with the reason if it is changed, expired or malformed."""
        import json as _json
        from core.errors import GovctlError
        from secops.exchange import import_blocklist, read_blocklist, trusted_key
        if decisions is None:
            raise HTTPException(503, "this API server runs without an enforcer; bans are read-only")
        try:
            doc = read_blocklist(_json.dumps(body.blocklist).encode(), [trusted_key(body.pubkey)])
        except GovctlError as exc:
            raise HTTPException(422, str(exc)) from None
        return import_blocklist(doc, decisions)

    # audit trail (issue #19): the tamper-evident log of every action, for auditors and security staff
    from crypto import audit as trail
    from crypto.errors import BadInput as TrailInput

    @app.get("/audit")
    def audit_entries(actor: str | None = Query(None, max_length=128), action: str | None = Query(None, max_length=64),
                      target: str | None = Query(None, max_length=256), outcome: Literal["ok", "failed"] | None = None,
                      since: TimeText = None, until: TimeText = None, limit: int = Query(50, ge=1, le=1000),
                      offset: int = Query(0, ge=0, le=10_000_000), who=Depends(allowed("audit"))):
        """Entries of the audit trail, newest first (`total` counts every match): who did what, on what, how it ended."""
        try:
            return trail.entries(getattr(app.state, "audit_dir", None), actor or None, action or None,
                                 target or None, since, until, limit, offset, outcome)
        except TrailInput as exc:
            raise HTTPException(422, str(exc)) from None

    @app.get("/audit/{index}/proof")
    def audit_proof(index: int = PathParam(ge=0, le=10**12), who=Depends(allowed("audit"))):
        """Entry `index` with its inclusion proof against the latest signed checkpoint (a download);
        check it offline with `govctl auditlog verify --proof FILE`."""
        try:
            shown = trail.entry(index, getattr(app.state, "audit_dir", None), proof=True)
        except TrailInput as exc:
            raise HTTPException(404 if "does not exist" in str(exc) else 409, str(exc)) from None
        return JSONResponse(shown["proof"], headers={
            "Content-Disposition": f'attachment; filename="audit-entry-{index}-proof.json"'})

    app.state.store = store
    for extension in extensions:
        app.include_router(extension.build(allowed))
    return app
