"""The console's own sign-in log as a SecOps source: real lines written by console/sessions.py (failed sign-ins
driven through the console app over HTTP) go through the engine and raise the bundled console rules."""
from __future__ import annotations

import io
import json

import pytest
from fastapi.testclient import TestClient

from console.app import create_console_app
from console.users import Users
from secops.config import load_config
from secops.daemon import Engine, ingest_stream
from secops.stores import open_store

PASSWORD = "Security-pass-2026"
ATTACKER = ("203.0.113.77", 40000)


@pytest.fixture
def console(tmp_path):
    """The console on an engine's SQLite store (dry run) with one user; returns (app, engine, sign-in log)."""
    users = tmp_path / "console" / "users.yaml"
    users.parent.mkdir()
    Users(users).add("li.na", "security", PASSWORD)
    cfgfile = tmp_path / "secops.yaml"
    cfgfile.write_text(json.dumps({"store": str(tmp_path / "secops.db"), "enforcer": {"kind": "none"}}))
    cfg = load_config(cfgfile)
    engine = Engine(cfg, open_store(cfg), dry_run=True)
    app = create_console_app(engine.store, tmp_path / "tokens.yaml", users, engine.decisions,
                             static_dir=tmp_path / "no-assets")
    yield app, engine, tmp_path / "console" / "console-signin.log"
    engine.store.close()


def alert_rules(engine, log) -> dict[str, set[str]]:
    """The sign-in log through the engine as the daemon reads it (format auto-detected): {rule: addresses}."""
    ingest_stream(engine, io.BytesIO(log.read_bytes()), "console", "auto", "auto", 1000)
    alerts: dict[str, set[str]] = {}
    for incident in engine.store.incidents(limit=1000):
        for alert in engine.store.incident_alerts(incident["id"]):
            alerts.setdefault(alert["rule"], set()).add(alert["source.ip"])
    return alerts


def test_console_brute_force_from_real_sign_in_lines_raises_an_alert(console):
    app, engine, log = console
    attacker = TestClient(app, client=ATTACKER)
    codes = [attacker.post("/api/session", json={"name": "li.na", "password": f"guess-Guess-{i}"}).status_code
             for i in range(10)]
    assert codes == [401] * 5 + [429] * 5  # the console's own lockout; every refused attempt is logged too
    alerts = alert_rules(engine, log)
    assert alerts["console_bruteforce"] == {ATTACKER[0]}
    decisions = engine.store.decision_trail()
    assert {(d["address"], d["rule"]) for d in decisions} >= {(ATTACKER[0], "console_bruteforce")}


def test_console_password_spraying_from_real_sign_in_lines_raises_an_alert(console):
    app, engine, log = console
    attacker = TestClient(app, client=ATTACKER)
    for name in ("admin", "root", "li.na", "operator", "auditor"):
        assert attacker.post("/api/session", json={"name": name, "password": "Spring-2026!"}).status_code == 401
    alerts = alert_rules(engine, log)
    assert alerts.get("console_password_spraying") == {ATTACKER[0]}
    assert "console_bruteforce" not in alerts  # five failures: under the brute-force threshold


def test_a_user_who_mistypes_then_signs_in_raises_nothing(console):
    app, engine, log = console
    desk = TestClient(app, client=("198.51.100.20", 50000))
    for _ in range(3):
        assert desk.post("/api/session", json={"name": "li.na", "password": "Security-pass-2025"}).status_code == 401
    assert desk.post("/api/session", json={"name": "li.na", "password": PASSWORD}).status_code == 200
    assert len(log.read_text().splitlines()) == 4
    assert alert_rules(engine, log) == {}
