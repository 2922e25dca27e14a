"""The console's sign-in over HTTP (TestClient on the real app and a store seeded by the real engine):
sessions and their cookie, CSRF on every state change, lockout and the sign-in log SecOps reads, roles through
the session, bearer tokens beside it, disabled users, security headers."""
from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from console.app import create_console_app
from console.users import Users
from secops.api import Tokens
from secops.normalize import Normalizer

from .conftest import PASSWORDS, feed

ATTACKER = ("203.0.113.77", 40000)


@pytest.fixture
def console(seeded, users_file, tmp_path):
    app = create_console_app(seeded.store, tmp_path / "tokens.yaml", users_file, seeded.decisions,
                             static_dir=tmp_path / "no-assets")
    return app, tmp_path


def client(app, address=("127.0.0.1", 50000)) -> TestClient:
    return TestClient(app, client=address)


def signed_in(app, name: str) -> tuple[TestClient, str]:
    c = client(app)
    r = c.post("/api/session", json={"name": name, "password": PASSWORDS[name]})
    assert r.status_code == 200, r.text
    return c, r.json()["csrf"]


def test_sign_in_sets_a_strict_httponly_cookie_and_whoami_gives_the_csrf_token(console):
    app, _ = console
    c = client(app)
    assert c.get("/api/session").json() == {"name": None, "role": None, "csrf": None}
    r = c.post("/api/session", json={"name": "li.na", "password": PASSWORDS["li.na"]})
    assert r.status_code == 200 and r.json()["role"] == "security"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("govctl_session=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain HTTP on 127.0.0.1; over HTTPS the cookie is Secure (next test)
    me = c.get("/api/session").json()
    assert me == {"name": "li.na", "role": "security", "csrf": r.json()["csrf"]}
    assert [i["id"] for i in c.get("/api/incidents").json()]  # the session authorizes the API


def test_cookie_is_secure_over_https(console):
    app, _ = console
    c = TestClient(app, base_url="https://console.example")
    r = c.post("/api/session", json={"name": "li.na", "password": PASSWORDS["li.na"]})
    assert r.status_code == 200 and "Secure" in r.headers["set-cookie"]
    assert r.headers["strict-transport-security"].startswith("max-age=")


@pytest.mark.parametrize("name,password", [("li.na", "wrong-Password-1"), ("nobody", "whatever-Pass-1")])
def test_wrong_password_or_unknown_user_is_the_same_401(console, name, password):
    app, _ = console
    c = client(app)
    r = c.post("/api/session", json={"name": name, "password": password})
    assert r.status_code == 401 and r.json()["reason"] == "bad-credentials"
    assert "set-cookie" not in r.headers
    assert c.get("/api/incidents").status_code == 401


@pytest.mark.parametrize("body", [{}, {"name": "li.na"}, {"name": "", "password": "x"}, {"name": "x" * 65, "password": "y"},
                                  "not json"])
def test_malformed_sign_in_is_422_not_500(console, body):
    app, _ = console
    r = client(app).post("/api/session", **({"json": body} if isinstance(body, dict) else {"content": body}))
    assert r.status_code == 422


def test_state_changes_need_the_csrf_token(console):
    app, _ = console
    c, csrf = signed_in(app, "li.na")
    iid = c.get("/api/incidents").json()[0]["id"]
    missing = c.post(f"/api/incidents/{iid}/ack")
    wrong = c.post(f"/api/incidents/{iid}/ack", headers={"X-CSRF-Token": "x" + csrf[1:]})
    assert missing.status_code == 403 and "CSRF" in missing.json()["detail"]
    assert wrong.status_code == 403
    assert c.get(f"/api/incidents/{iid}").json()["state"] == "new"  # neither changed anything
    ok = c.post(f"/api/incidents/{iid}/ack", headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200 and ok.json()["state"] == "acknowledged"
    assert ok.json()["notes"][-1]["author"] == "li.na"  # recorded with the signed-in user
    assert c.delete("/api/session").status_code == 403  # signing out is a state change too
    assert c.delete("/api/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert c.get("/api/incidents").status_code == 401


def test_lockout_after_repeated_failures_and_each_failure_is_a_secops_event(console, seeded):
    app, tmp = console
    attacker = client(app, ATTACKER)
    failures = app.state.sessions.policy["lockout"]["failures"]
    for _ in range(failures):
        assert attacker.post("/api/session", json={"name": "li.na", "password": "guess-Guess-1"}).status_code == 401
    locked = attacker.post("/api/session", json={"name": "li.na", "password": PASSWORDS["li.na"]})
    assert locked.status_code == 429 and locked.json()["reason"] == "locked"  # even the right password
    # the pair (user, address) is locked, not the user: li.na still signs in from her own desk
    assert client(app).post("/api/session", json={"name": "li.na", "password": PASSWORDS["li.na"]}).status_code == 200
    lines = (tmp / "console" / "console-signin.log").read_bytes().splitlines()
    normalizer = Normalizer(source="console", fmt="auto")
    events = [normalizer.normalize(line) for line in lines]
    failed = [e for e in events if e["event.outcome"] == "failure"]
    assert len(failed) == failures + 1
    assert {e["source.ip"] for e in failed} == {ATTACKER[0]} and {e["user.name"] for e in failed} == {"li.na"}
    assert [e["event.reason"] for e in failed][-1] == "locked"
    assert events[-1]["event.outcome"] == "success"
    # and the engine takes the sign-in log as a source like any other
    feed(seeded, b"\n".join(lines) + b"\n")
    stored = seeded.store.search_events({"event.action": "console-sign-in", "event.outcome": "failure"}, limit=100)
    assert len(stored) == failures + 1 and {e["source.ip"] for e in stored} == {ATTACKER[0]}


def test_roles_through_the_session(console):
    app, _ = console
    for name, may_ban in (("li.na", True), ("wang.fang", False), ("zhao.lei", False)):
        c, csrf = signed_in(app, name)
        r = c.post("/api/bans", json={"address": "203.0.113.200", "reason": "console test", "ttl": 60},
                   headers={"X-CSRF-Token": csrf})
        assert r.status_code == (201 if may_ban else 403), (name, r.text)
        assert (c.get("/api/decisions").status_code == 200) == (name != "wang.fang")
    auditor, csrf = signed_in(app, "zhao.lei")
    iid = auditor.get("/api/incidents").json()[0]["id"]
    assert auditor.post(f"/api/incidents/{iid}/ack", headers={"X-CSRF-Token": csrf}).status_code == 403
    trail = signed_in(app, "li.na")[0].get("/api/decisions").json()
    assert trail[0]["address"] == "203.0.113.200" and trail[0]["actor"] == "li.na"


def test_bearer_tokens_still_work_at_both_paths_without_csrf(console):
    app, tmp = console
    token = Tokens(tmp / "tokens.yaml").add("ci-script", "security")
    c = client(app)
    auth = {"Authorization": f"Bearer {token}"}
    assert c.get("/incidents", headers=auth).status_code == 200  # the old path, for scripts
    iid = c.get("/api/incidents", headers=auth).json()[0]["id"]
    assert c.post(f"/api/incidents/{iid}/ack", headers=auth).json()["state"] == "acknowledged"
    assert c.get("/api/incidents", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_disabled_user_is_refused_and_their_sessions_end(console, users_file):
    app, _ = console
    c, _ = signed_in(app, "wang.fang")
    Users(users_file).disable("wang.fang")
    assert c.get("/api/incidents").status_code == 401
    r = client(app).post("/api/session", json={"name": "wang.fang", "password": PASSWORDS["wang.fang"]})
    assert r.status_code == 403 and r.json()["reason"] == "disabled"


def test_password_change_ends_open_sessions(console, users_file):
    app, _ = console
    c, _ = signed_in(app, "zhao.lei")
    Users(users_file).set_password("zhao.lei", "Another-pass-2027")
    assert c.get("/api/session").json()["name"] is None


def test_security_headers_on_every_response(console):
    app, _ = console
    for path in ("/", "/api/session", "/api/incidents", "/api/openapi.json"):
        r = client(app).get(path)
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        assert r.headers["x-content-type-options"] == "nosniff"
    assert client(app).get("/").status_code == 503  # no built assets here: a clear message, not a blank page
    assert "/incidents" in client(app).get("/api/openapi.json").json()["paths"]


def test_session_expires_when_idle(console):
    app, _ = console
    sessions = app.state.sessions
    c, _ = signed_in(app, "li.na")
    real = sessions.clock
    sessions.clock = lambda: real() + sessions.policy["session"]["idle_minutes"] * 60 + 1
    assert c.get("/api/incidents").status_code == 401


def test_a_broken_users_file_is_a_503_with_the_reason_not_a_500(console, users_file):
    app, _ = console
    c, _ = signed_in(app, "li.na")
    users_file.write_text("users: [unclosed\n")
    for r in (c.get("/api/incidents"), client(app).post("/api/session", json={"name": "li.na", "password": "x"})):
        assert r.status_code == 503 and "users file" in r.json()["detail"]


def test_failures_of_many_addresses_do_not_pile_up_but_locks_stay(users_file, tmp_path, monkeypatch):
    import console.sessions as sessions_module
    from console.sessions import Sessions, SignInRefused
    from console.users import load_policy
    monkeypatch.setattr(sessions_module, "MAX_TRACKED_PAIRS", 1)
    policy = {**load_policy(), "lockout": {"failures": 1, "window_minutes": 1, "lock_minutes": 10}}
    now = [1_000_000.0]
    sessions = Sessions(Users(users_file), tmp_path / "signin.log", policy, clock=lambda: now[0])
    for address in ("203.0.113.1", "203.0.113.2"):
        with pytest.raises(SignInRefused):
            sessions.sign_in("li.na", "wrong-Password-1", address)
    sessions.policy = {**policy, "lockout": {"failures": 5, "window_minutes": 1, "lock_minutes": 10}}
    now[0] += 120  # both older than the window; both still locked (10 minutes)
    with pytest.raises(SignInRefused):
        sessions.sign_in("wang.fang", "wrong-Password-1", "203.0.113.3")
    assert set(sessions._failures) == {("li.na", "203.0.113.1"), ("li.na", "203.0.113.2"), ("wang.fang", "203.0.113.3")}
    now[0] += 700  # the locks ran out: the next failure drops the stale pairs
    with pytest.raises(SignInRefused):
        sessions.sign_in("wang.fang", "wrong-Password-1", "203.0.113.4")
    assert set(sessions._failures) == {("wang.fang", "203.0.113.4")}
