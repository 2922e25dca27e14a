"""The console server: the SecOps API (secops.api, unchanged routes) + sign-in sessions + the built SPA.

Paths:
  /                 the single-page app (index.html; its routes live after `#`, so they never meet the API's)
  /assets/…         its hashed, immutable assets (built by set-up from console/frontend, never committed)
  /api/session      POST sign in, GET who am I (+ CSRF token), DELETE sign out
  /api/stream       server-sent events: a `change` event whenever incidents or decisions change
  /api/…            the SecOps API (OpenAPI document at /api/openapi.json); bearer tokens or the session
  /…                the same API at its old paths, so scripts written against `govctl incidents serve` keep working
Every response carries a Content-Security-Policy without inline scripts, nosniff and frame-ancestors 'none'.
"""
import asyncio
import json
import threading
from pathlib import Path

from core.errors import BadInput

from .sessions import COOKIE, CSRF_HEADER, SAFE_METHODS, Sessions, SignInRefused
from .users import Users

DEFAULT_STATIC = Path(__file__).parent / "frontend" / "dist"
# Element Plus and ECharts set style attributes from script, hence 'unsafe-inline' for styles only;
# scripts come from this origin alone and never inline.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
# Each open stream reads two indexed rows per poll (incidents_last, the decisions' id): cheap at 100,000
# incidents, and a 1 s poll keeps alert → live view well under the 2 s goal (docs/benchmarks.md).
STREAM_POLL_SECONDS = 1.0
STREAM_LIFETIME_SECONDS = 300.0  # the browser's EventSource reconnects by itself


def create_console_app(store, tokens_path: str | Path, users_path: str | Path, decisions=None,
                       static_dir: str | Path | None = None, signin_log: str | Path | None = None,
                       policy: dict | None = None, notify_journal: str | Path | None = None, extensions=()):
    """The console on `store` (as secops.api.create_app). `signin_log` defaults to `console-signin.log`
    beside the users file; `policy` to console/policy.yaml; `notify_journal` (the bell's inbox) to
    notify.journal.journal_path(); `extensions` (core.api_extension.ApiExtension) add the auditors' and ops' routes."""
    from fastapi import Body, FastAPI, HTTPException, Query, Request, Response
    from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
    from fastapi.staticfiles import StaticFiles
    from pydantic import BaseModel, Field
    from starlette.concurrency import run_in_threadpool

    from secops.api import create_app

    users_path = Path(users_path)
    sessions = Sessions(Users(users_path), signin_log or users_path.with_name("console-signin.log"), policy)

    def current(request: Request):
        try:
            return sessions.current(request.cookies.get(COOKIE))
        except BadInput as exc:  # the users file is broken: say so, never a 500
            raise HTTPException(503, str(exc)) from None

    def session_of(request: Request):
        session = current(request)
        if session is None:
            raise HTTPException(401, "sign in first (the session is missing, expired or ended)")
        if request.method not in SAFE_METHODS and not sessions.csrf_ok(session, request.headers.get(CSRF_HEADER)):
            raise HTTPException(403, f"missing or wrong CSRF token: send the session's token in {CSRF_HEADER}")
        return session

    def authenticate(request: Request) -> tuple[str, str]:
        session = session_of(request)
        return session.user, session.role

    api = create_app(store, tokens_path, decisions, authenticator=authenticate, extensions=extensions)
    app = FastAPI(title="govctl console", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sessions = sessions
    app.state.store = api.state.store
    static = Path(static_dir) if static_dir else DEFAULT_STATIC

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        if request.url.scheme == "https":
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        return response

    class SignIn(BaseModel):
        name: str = Field(min_length=1, max_length=64)
        password: str = Field(min_length=1, max_length=1024)

    def whoami(session) -> dict:
        return {"name": session.user, "role": session.role, "csrf": session.csrf}

    @app.post("/api/session")
    def sign_in(request: Request, body: SignIn = Body(...)):
        address = request.client.host if request.client else "0.0.0.0"
        try:
            sid, session = sessions.sign_in(body.name, body.password, address)
        except BadInput as exc:
            return JSONResponse({"detail": str(exc), "reason": "unavailable"}, status_code=503)
        except SignInRefused as exc:
            reason = {401: "bad-credentials", 403: "disabled", 429: "locked"}[exc.status]
            return JSONResponse({"detail": str(exc), "reason": reason}, status_code=exc.status)
        response = JSONResponse(whoami(session))
        response.set_cookie(COOKIE, sid, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                            path="/")
        return response

    @app.get("/api/session")
    def current_session(request: Request):
        """Who is signed in, with the CSRF token; all null when nobody is (200: the page asks on every load)."""
        session = current(request)
        return whoami(session) if session else {"name": None, "role": None, "csrf": None}

    @app.delete("/api/session", status_code=204)
    def sign_out(request: Request):
        session_of(request)
        sessions.sign_out(request.cookies.get(COOKIE, ""))
        response = Response(status_code=204)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                               secure=request.url.scheme == "https")
        return response

    def fingerprint() -> str:
        """Changes whenever an incident or a decision is added or changed (existing store methods only)."""
        latest = api.state.store.incidents(None, 1)
        trail = api.state.store.decision_trail(1)
        return json.dumps([[(i["id"], i["updated"], i["alerts"]) for i in latest], [d["id"] for d in trail]])

    @app.get("/api/stream")
    async def stream(request: Request):
        """Server-sent events: `change` when incidents or decisions change (the page then reloads its data)."""
        session_of(request)

        async def events():
            last = await run_in_threadpool(fingerprint)
            yield "retry: 3000\n\n"
            waited = 0.0
            while waited < STREAM_LIFETIME_SECONDS and not await request.is_disconnected():
                await asyncio.sleep(STREAM_POLL_SECONDS)
                waited += STREAM_POLL_SECONDS
                now = await run_in_threadpool(fingerprint)
                if now != last:
                    last = now
                    yield "event: change\ndata: {}\n\n"
                else:
                    yield ": idle\n\n"
        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    # notify (issue #18): the bell — the signed-in user's role's notifications, and marking them read
    from notify.journal import Journal, journal_path

    inbox_lock = threading.Lock()
    inbox: list = []

    def notifications_journal() -> Journal | None:
        """notify's journal, opened at first use; None while notify has never run (an empty bell)."""
        with inbox_lock:
            if not inbox:
                path = Path(notify_journal) if notify_journal else journal_path()
                if not path.exists():
                    return None
                inbox.append(Journal(path))
            return inbox[0]

    class MarkRead(BaseModel):
        ids: list[int] | None = Field(default=None, max_length=1000)

    @app.get("/api/notifications")
    def notifications(request: Request, limit: int = Query(50, ge=1, le=500)):
        """The notifications for the signed-in user's role, newest first, each with `read`; and `unread`."""
        session = session_of(request)
        journal = notifications_journal()
        return journal.inbox(session.user, session.role, limit) if journal else {"unread": 0, "items": []}

    @app.post("/api/notifications/read")
    def notifications_read(request: Request, body: MarkRead = Body(...)):
        """Mark the given notifications (all, when `ids` is null) read for the signed-in user."""
        session = session_of(request)
        journal = notifications_journal()
        return {"marked": journal.mark_read(session.user, session.role, body.ids) if journal else 0}

    @app.get("/", include_in_schema=False)
    def index():
        page = static / "index.html"
        if not page.exists():
            return PlainTextResponse("the console's assets are not built: run `make setup` "
                                     "(it builds console/frontend with npm)", status_code=503)
        return FileResponse(page, headers={"Cache-Control": "no-cache"})

    if (static / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=static / "assets"), name="assets")
    app.mount("/api", api)
    app.mount("/", api)  # the old paths, for scripts
    return app
