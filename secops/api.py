"""HTTP API for incidents and bans (FastAPI), with bearer tokens and three roles.

Roles and what they may do:
  auditor   read incidents, events, bans and the decision trail; change nothing
  ops       read incidents, events and bans; acknowledge incidents and add notes
  security  everything: acknowledge, assign, contain, resolve, notes; add and lift bans; read the trail
Tokens live in a YAML file as SHA-256 digests (`govctl incidents token add` prints a new token once).
"""

import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Any

import yaml

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


class Tokens:
    def __init__(self, path: Path):
        self.path = Path(path)

    def _load(self) -> list[dict]:
        if not self.path.exists():
            return []
        doc = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
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


def create_app(store, tokens_path: str | Path, decisions=None, authenticator=None):
    """The FastAPI application on `store` (either kind of secops/stores.py; a path opens that SQLite file).
    `decisions` (a DecisionEngine on the same store) serves ban changes; without one they are refused with 503.
    `authenticator(request)` → (name, role) authorizes requests without a bearer token (the console's
    session cookie); it raises HTTPException when it refuses."""
    from fastapi import Depends, FastAPI, HTTPException, Request
    from pydantic import BaseModel, Field

    from .incidents import IncidentError, Incidents, NotFound
    from .store import Store
    from .stores import parse_event_query, parse_time

    if isinstance(store, (str, Path)):
        store = Store(store)
    incidents = Incidents(store)
    tokens = Tokens(Path(tokens_path))
    app = FastAPI(title="govctl secops", version="1")

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

    def allowed(action: str):
        def check(who: tuple[str, str] = Depends(caller)) -> tuple[str, str]:
            if who[1] not in PERMISSIONS[action]:
                raise HTTPException(403, f"role {who[1]} may not {action}")
            return who
        return check

    def guarded(fn, *args) -> Any:
        try:
            return fn(*args)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except IncidentError as exc:
            raise HTTPException(409, str(exc)) from None

    class Note(BaseModel):
        text: str = Field(min_length=1)

    class Assign(BaseModel):
        assignee: str = Field(min_length=1)

    class Resolve(BaseModel):
        note: str | None = None
        false_positive: bool = False

    class Ban(BaseModel):
        address: str
        ttl: float = Field(gt=0, default=3600)
        reason: str = Field(min_length=1)

    @app.get("/incidents")
    def list_incidents(state: str | None = None, limit: int = 100, who=Depends(allowed("read"))):
        return guarded(incidents.list, state, limit)

    @app.get("/incidents/{incident_id}")
    def show_incident(incident_id: int, who=Depends(allowed("read"))):
        return guarded(incidents.show, incident_id)

    @app.post("/incidents/{incident_id}/ack")
    def ack(incident_id: int, who=Depends(allowed("ack"))):
        return guarded(incidents.ack, incident_id, who[0])

    @app.post("/incidents/{incident_id}/notes")
    def note(incident_id: int, body: Note, who=Depends(allowed("note"))):
        return guarded(incidents.note, incident_id, who[0], body.text)

    @app.post("/incidents/{incident_id}/assign")
    def assign(incident_id: int, body: Assign, who=Depends(allowed("assign"))):
        return guarded(incidents.assign, incident_id, body.assignee, who[0])

    @app.post("/incidents/{incident_id}/contain")
    def contain(incident_id: int, who=Depends(allowed("contain"))):
        return guarded(incidents.contain, incident_id, who[0])

    @app.post("/incidents/{incident_id}/resolve")
    def resolve(incident_id: int, body: Resolve, who=Depends(allowed("resolve"))):
        return guarded(incidents.resolve, incident_id, who[0], body.note, body.false_positive)

    @app.get("/events")
    def events(q: str = "", since: str | None = None, until: str | None = None, limit: int = 100,
               who=Depends(allowed("read"))):
        """Newest events matching `q` (`field:value …`, the syntax of `govctl incidents events`)."""
        try:
            filters = parse_event_query(q)
            start, end = parse_time(since, "since"), parse_time(until, "until")
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        if not 1 <= limit <= 10000:
            raise HTTPException(422, "limit must be between 1 and 10000")
        return store.search_events(filters, start, end, limit)

    @app.get("/bans")
    def bans(who=Depends(allowed("read"))):
        return store.active_bans()

    @app.get("/decisions")
    def decisions_trail(limit: int = 200, who=Depends(allowed("audit"))):
        return store.decision_trail(limit)

    @app.post("/bans", status_code=201)
    def add_ban(body: Ban, who=Depends(allowed("ban"))):
        if decisions is None:
            raise HTTPException(503, "this API server runs without an enforcer; bans are read-only")
        try:
            return decisions.block(body.address, body.reason, ttl=body.ttl, actor=who[0]).to_dict()
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        finally:
            decisions.flush()

    @app.delete("/bans/{address}")
    def lift_ban(address: str, reason: str = "lifted by hand", who=Depends(allowed("ban"))):
        if decisions is None:
            raise HTTPException(503, "this API server runs without an enforcer; bans are read-only")
        try:
            return decisions.unblock(address, reason, actor=who[0]).to_dict()
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    app.state.store = store
    return app
