"""Server-side sessions, CSRF tokens, sign-in lockout and the sign-in log.

A session is a random id in an HttpOnly, SameSite=Strict cookie (Secure over HTTPS) pointing to a record
kept in memory: user, CSRF token, opened, last used. Sessions end after `session.idle_minutes` unused,
after `session.max_hours`, on sign-out, when the user is disabled or their password/role changes, and when
the server restarts (people sign in again). Every state-changing request carries the session's CSRF token
in the `X-CSRF-Token` header.

Every sign-in attempt is written as one ECS JSON line (the `json` format of secops.normalize) to the
sign-in log, so `govctl secops run` can take the console itself as a source: failures are SecOps events.
"""
from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from crypto.audit import record as audit_record

from .users import Users, load_policy

COOKIE = "govctl_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
MAX_TRACKED_PAIRS = 10000  # (user, address) pairs with recent failures kept before stale ones are dropped


class SignInRefused(Exception):
    """Wrong name or password (status 401), a disabled user (403) or a locked-out pair (429)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Session:
    user: str
    role: str
    csrf: str
    opened: float
    used: float
    user_changed: float | None


@dataclass
class _Failures:
    times: list[float] = field(default_factory=list)
    locked_until: float = 0.0


class Sessions:
    def __init__(self, users: Users, signin_log: str | Path, policy: dict | None = None, clock=time.time):
        self.users = users
        self.signin_log = Path(signin_log)
        self.policy = policy or load_policy()
        self.clock = clock
        self._sessions: dict[str, Session] = {}
        self._failures: dict[tuple[str, str], _Failures] = {}
        self._lock = threading.RLock()

    # ------------------------------------------------------------ sign-in
    def sign_in(self, name: str, password: str, address: str) -> tuple[str, Session]:
        """A new session id and record, or SignInRefused. Every attempt is logged."""
        lock = self.policy["lockout"]
        now = self.clock()
        key = (name, address)
        with self._lock:
            failures = self._failures.get(key)
            if failures and failures.locked_until > now:
                self._log(name, address, "failure", "locked")
                minutes = max(1, round((failures.locked_until - now) / 60))
                raise SignInRefused(429, f"too many failed sign-ins for {name} from this address; "
                                         f"try again in {minutes} minutes")
        user = self.users.verify(name, password)
        if user is None:
            with self._lock:
                if len(self._failures) > MAX_TRACKED_PAIRS:  # many addresses guessing: forget the stale ones
                    self._forget_stale(now)
                failures = self._failures.setdefault(key, _Failures())
                failures.times = [t for t in failures.times if t > now - lock["window_minutes"] * 60] + [now]
                if len(failures.times) >= lock["failures"]:
                    failures.locked_until = now + lock["lock_minutes"] * 60
                    failures.times = []
            self._log(name, address, "failure", "bad-credentials")
            raise SignInRefused(401, "wrong user name or password")
        if user.get("disabled"):
            self._log(name, address, "failure", "disabled")
            raise SignInRefused(403, f"user {name} is disabled; ask an administrator")
        with self._lock:
            self._failures.pop(key, None)
            self._expire(now)
            sid = secrets.token_urlsafe(32)
            session = Session(user["name"], user["role"], secrets.token_urlsafe(32), now, now, user.get("changed"))
            self._sessions[sid] = session
        self._log(name, address, "success", "signed-in")
        return sid, session

    def sign_out(self, sid: str) -> None:
        with self._lock:
            self._sessions.pop(sid, None)

    # ------------------------------------------------------------ per request
    def current(self, sid: str | None) -> Session | None:
        """The live session of this id (touching it), or None when unknown, expired or its user changed."""
        if not sid:
            return None
        now = self.clock()
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                return None
            limits = self.policy["session"]
            if now - session.used > limits["idle_minutes"] * 60 or now - session.opened > limits["max_hours"] * 3600:
                del self._sessions[sid]
                return None
        user = self.users.get(session.user)
        if user is None or user.get("disabled") or user.get("changed") != session.user_changed:
            self.sign_out(sid)
            return None
        session.used = now
        return session

    @staticmethod
    def csrf_ok(session: Session, header: str | None) -> bool:
        return bool(header) and hmac.compare_digest(session.csrf.encode(), header.encode())

    def _forget_stale(self, now: float) -> None:
        window = self.policy["lockout"]["window_minutes"] * 60
        for key in [k for k, f in self._failures.items() if f.locked_until <= now and all(t <= now - window for t in f.times)]:
            del self._failures[key]

    def _expire(self, now: float) -> None:
        limits = self.policy["session"]
        for sid in [s for s, v in self._sessions.items() if now - v.used > limits["idle_minutes"] * 60
                    or now - v.opened > limits["max_hours"] * 3600]:
            del self._sessions[sid]

    # ------------------------------------------------------------ the sign-in log (a SecOps source)
    def _log(self, name: str, address: str, outcome: str, reason: str) -> None:
        from secops.normalize import iso
        line = json.dumps({
            "@timestamp": iso(self.clock()), "event.dataset": "json", "event.module": "govctl.console",
            "event.category": "authentication", "event.action": "console-sign-in", "event.outcome": outcome,
            "event.reason": reason, "user.name": name[:128], "source.ip": address,
            "service.name": "govctl-console"}, ensure_ascii=False)
        self.signin_log.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.signin_log, "a", encoding="utf-8") as out:
            out.write(line + "\n")
        audit_record(name[:128], "console.sign-in", "console", {"address": address},
                     "ok" if outcome == "success" else f"failed: {reason}")
