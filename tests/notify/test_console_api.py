"""The console's bell over HTTP: the signed-in user's role sees its notifications, marks them read for
itself only, and bad input gets a 422, never a 500."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from console.app import create_console_app
from notify.events import Event
from notify.journal import Journal
from tests.console.conftest import PASSWORDS, _users_template, seeded, users_file  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow  # the console's store is seeded by the real engine (seconds)


@pytest.fixture
def bell(seeded, users_file, tmp_path):  # noqa: F811
    from notify.config import load_config
    from notify.engine import Notifier
    journal = Journal(tmp_path / "notify.sqlite")
    notifier = Notifier(load_config(), journal)  # the bundled config: medium and above to the bell
    for i, (kind, roles) in enumerate((("incident.new", ("security",)), ("availability.firing", ("ops",)),
                                       ("sla.breach", ("security", "ops")))):
        notifier.submit(Event(kind, f"通知 {i}", "high", roles=roles, key=f"k{i}"))
    app = create_console_app(seeded.store, tmp_path / "tokens.yaml", users_file, seeded.decisions,
                             static_dir=tmp_path / "no-assets", notify_journal=tmp_path / "notify.sqlite")
    yield app
    journal.close()


def signed_in(app, name: str) -> tuple[TestClient, dict]:
    c = TestClient(app, client=("127.0.0.1", 50000))
    r = c.post("/api/session", json={"name": name, "password": PASSWORDS[name]})
    assert r.status_code == 200, r.text
    return c, {"X-CSRF-Token": r.json()["csrf"]}


def test_each_role_sees_its_notifications_and_marks_them_read_for_itself(bell):
    security, csrf = signed_in(bell, "li.na")
    listed = security.get("/api/notifications").json()
    assert listed["unread"] == 2 and [i["title"] for i in listed["items"]] == ["通知 2", "通知 0"]
    assert listed["items"][0]["subject"].startswith("[govctl][高危] 处置时限超期")
    assert security.post("/api/notifications/read", json={"ids": [listed["items"][1]["id"]]},
                         headers=csrf).json() == {"marked": 1}
    assert security.get("/api/notifications").json()["unread"] == 1
    ops, ops_csrf = signed_in(bell, "wang.fang")
    assert [i["title"] for i in ops.get("/api/notifications").json()["items"]] == ["通知 2", "通知 1"]
    assert ops.post("/api/notifications/read", json={"ids": None}, headers=ops_csrf).json() == {"marked": 2}
    assert ops.get("/api/notifications").json()["unread"] == 0
    assert security.get("/api/notifications").json()["unread"] == 1  # read by ops is not read by security


def test_the_bell_needs_a_session_csrf_and_valid_input(bell):
    anonymous = TestClient(bell)
    assert anonymous.get("/api/notifications").status_code == 401
    security, csrf = signed_in(bell, "li.na")
    assert security.post("/api/notifications/read", json={"ids": None}).status_code == 403  # no CSRF token
    assert security.post("/api/notifications/read", json={"ids": ["one"]}, headers=csrf).status_code == 422
    assert security.get("/api/notifications?limit=0").status_code == 422
    assert security.get("/api/notifications?limit=abc").status_code == 422
