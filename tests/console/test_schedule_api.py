"""The scheduled collection on the console's API (services/api.py): `GET /api/schedule` shows what
`govctl schedule list --json` shows, to every signed-in role, and nothing to a stranger."""
from __future__ import annotations

from datetime import datetime, timezone

from fastapi.testclient import TestClient

from console.app import create_console_app
from services.api import schedule_extension
from services.layout import Layout, write_json
from services.schedule import Journal, PlannedJob

from .conftest import PASSWORDS


def test_schedule_rows_for_each_role_and_refused_without_sign_in(seeded, users_file, tmp_path):
    layout = Layout(tmp_path / "state")
    layout.make()
    audit = PlannedJob("host-audit", "host audit", ("/bin/true",), "daily", "Asia/Shanghai", timeout=60)
    write_json(layout.plan, {"services": [], "schedules": [audit.to_plan()]})
    journal = Journal(layout.schedule_journal)
    journal.append({"event": "planned", "job": "host-audit", "at": "2026-12-01T00:00:00+00:00"})
    period = audit.period(datetime.now(timezone.utc)).isoformat()
    journal.append({"event": "start", "run": "host-audit/1", "job": "host-audit", "trigger": "schedule",
                    "period": period, "start": period, "output": "/x/output.log"})
    journal.append({"event": "end", "run": "host-audit/1", "job": "host-audit", "exit": 1, "result": "failed"})
    app = create_console_app(seeded.store, tmp_path / "tokens.yaml", users_file, seeded.decisions,
                             static_dir=tmp_path / "no-assets", extensions=[schedule_extension(lambda: layout)])
    assert TestClient(app).get("/api/schedule").status_code == 401
    for name in PASSWORDS:  # auditor, ops and security all read it
        client = TestClient(app)
        assert client.post("/api/session", json={"name": name, "password": PASSWORDS[name]}).status_code == 200
        body = client.get("/api/schedule").json()
        assert body["planned"] is True
        [row] = body["jobs"]
        assert row["name"] == "host-audit" and row["cadence"] == "daily" and row["due_now"] is False
        assert row["last_run"]["result"] == "failed" and row["last_run"]["exit"] == 1
