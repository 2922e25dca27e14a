"""The drills' routes on the console's API (issue #19, drills/api.py): the typed-name confirmation, one drill
at a time, unknown scenarios, roles, the history with its figures and report downloads, abort.

The drill here is a real plan run by the real runner (drills.live → drills.runner.run_drill) whose steps
read only the stack outputs (center_exists), on the lab's recorded outputs with a namespace no lab has:
nothing on the machine is touched. The drills on the lab itself are in tests/console/test_browser_drills.py."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from console.app import create_console_app
from drills.api import extension
from drills.live import DrillDesk
from infra.outputs import StackOutputs

from .conftest import PASSWORDS

CHECKOUT = Path(__file__).resolve().parents[2]
LAB = json.loads((CHECKOUT / "tests/policies/compliance/fixtures/lab/stack.json").read_text())["data"]["outputs"]
LOCAL_PLAN = """\
id: outputs-check
name: {zh: 拓扑核对演练, en: "Topology check drill"}
description: {zh: 只读取栈输出的演练。, en: A drill whose steps read the stack outputs only.}
targets: {}
steps:
  preflight:
    - {action: center_exists, center: prod}
  verify:
    - {action: center_exists, center: samecity}
  failback:
    - {action: center_exists, center: remote}
"""


@pytest.fixture
def state(tmp_path, monkeypatch):
    """The audit trail and keystore of this test only."""
    from core import paths
    from crypto.audit import AuditLog

    folder = tmp_path / "state"
    folder.mkdir()
    monkeypatch.setattr(paths, "STATE", folder)
    monkeypatch.setenv("GOVCTL_STATE", str(folder))
    AuditLog._open_logs.clear()
    yield folder
    AuditLog._open_logs.clear()


@pytest.fixture
def desk(tmp_path, state):
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "outputs-check.yaml").write_text(LOCAL_PLAN)
    outputs = json.loads(json.dumps(LAB))
    outputs["outside"]["internet"]["namespace"] = "hd-test-no-such-netns"  # the ledger writer reaches no lab
    desk = DrillDesk(plans_dir=plans, folder=tmp_path / "drills",
                     read_outputs=lambda stack: StackOutputs.from_dict(outputs), needs_root=False)
    yield desk
    assert desk.wait(60)


@pytest.fixture
def app(seeded, users_file, tmp_path, desk):
    return create_console_app(seeded.store, tmp_path / "tokens.yaml", users_file, seeded.decisions,
                              static_dir=tmp_path / "no-assets", extensions=[extension(desk)])


def signed_in(app, name):
    client = TestClient(app)
    answer = client.post("/api/session", json={"name": name, "password": PASSWORDS[name]})
    assert answer.status_code == 200, answer.text
    client.headers["X-CSRF-Token"] = answer.json()["csrf"]
    return client


def wait_finished(client, seconds=30) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        live = client.get("/api/drills/live").json()
        if live and live["state"] != "running":
            return live
        time.sleep(0.1)
    raise AssertionError("the drill did not finish")


@pytest.mark.slow  # runs a drill (≥ 2 s: the runner's baseline of writes)
def test_a_drill_starts_only_with_its_name_typed_again_and_one_at_a_time(app, desk):
    ops = signed_in(app, "wang.fang")
    refused = ops.post("/api/drills/run", json={"scenario": "outputs-check", "confirm": "outputs check"})
    assert refused.status_code == 422 and "type the scenario's name to confirm" in refused.json()["detail"]
    assert ops.get("/api/drills/live").json() is None  # nothing started

    started = ops.post("/api/drills/run", json={"scenario": "outputs-check", "confirm": "outputs-check"})
    assert started.status_code == 202, started.text
    assert started.json()["state"] == "running" and started.json()["started_by"] == "wang.fang"
    second = ops.post("/api/drills/run", json={"scenario": "outputs-check", "confirm": "outputs-check"})
    assert second.status_code == 409 and "one drill at a time" in second.json()["detail"]

    live = wait_finished(ops)
    assert live["state"] == "finished" and live["result"]["verdict"] == "pass", live
    assert [(s["phase"], s["action"], s["ok"]) for s in live["steps"]] == [
        ("preflight", "center_exists", True), ("verify", "center_exists", True), ("failback", "center_exists", True)]
    # the next one may start once it ended
    again = ops.post("/api/drills/run", json={"scenario": "outputs-check", "confirm": "outputs-check"})
    assert again.status_code == 202


@pytest.mark.slow  # runs a drill (≥ 2 s: the runner's baseline of writes)
def test_history_lists_each_run_with_its_figures_and_serves_its_reports(app, desk):
    ops = signed_in(app, "wang.fang")
    assert ops.get("/api/drills/history").json() == []
    assert ops.post("/api/drills/run", json={"scenario": "outputs-check", "confirm": "outputs-check"}).status_code == 202
    finished = wait_finished(ops)

    auditor = signed_in(app, "zhao.lei")
    [run] = auditor.get("/api/drills/history").json()
    assert run["id"] == finished["result"]["id"] and run["scenario"] == "outputs-check"
    assert run["verdict"] == "pass" and run["formats"] == ["json", "html"]
    assert run["name"] == {"zh": "拓扑核对演练", "en": "Topology check drill"}
    assert {"rto_seconds", "rpo_transactions", "rpo_seconds", "detection_seconds", "level"} <= set(run)
    as_json = auditor.get(f"/api/drills/reports/{run['id']}/json")
    assert as_json.status_code == 200 and as_json.json()["run_id"] == run["run_id"]
    assert f'filename="drill-{run["id"]}.json"' in as_json.headers["content-disposition"]
    as_html = auditor.get(f"/api/drills/reports/{run['id']}/html")
    assert as_html.status_code == 200 and "灾备演练报告" in as_html.text and as_html.headers["content-type"].startswith("text/html")
    # what `govctl drill run` keeps beside the report: the scenario's metrics
    assert 'govctl_drill_success{scenario="outputs-check"} 1' in (desk.folder / "outputs-check.prom").read_text()

    for bad in (f"{run['id']}/pdf", "..%2F..%2Fsecrets/json", "outputs-check-20260101T000000/json"):
        assert auditor.get(f"/api/drills/reports/{bad}").status_code in (404, 422), bad


def test_an_unreadable_report_is_listed_with_the_reason(app, desk):
    folder = desk.folder / "reports"
    folder.mkdir(parents=True)
    (folder / "outputs-check-20261201T000000.json").write_text("{not json")
    [run] = signed_in(app, "zhao.lei").get("/api/drills/history").json()
    assert run["verdict"] == "unreadable" and "outputs-check-20261201T000000.json" in run["reason"]


def test_unknown_scenarios_are_refused_naming_the_known_ones(app):
    ops = signed_in(app, "wang.fang")
    for name in ("no-such-drill", "../plans/outputs-check", ""):
        answer = ops.post("/api/drills/run", json={"scenario": name, "confirm": name})
        assert answer.status_code in (404, 422), (name, answer.text)
    answer = ops.post("/api/drills/run", json={"scenario": "no-such-drill", "confirm": "no-such-drill"})
    assert answer.status_code == 404 and "outputs-check" in answer.json()["detail"]
    assert ops.post("/api/drills/run", json={"scenario": "outputs-check"}).status_code == 422  # no confirm
    assert ops.post("/api/drills/abort").status_code == 409  # nothing runs


def test_only_ops_start_or_abort_drills_every_role_reads_them(app):
    for name in ("li.na", "zhao.lei"):
        other = signed_in(app, name)
        assert other.get("/api/drills/history").status_code == 200
        assert other.get("/api/drills/scenarios").json()[0]["id"] == "outputs-check"
        refused = other.post("/api/drills/run", json={"scenario": "outputs-check", "confirm": "outputs-check"})
        assert refused.status_code == 403, name
        assert other.post("/api/drills/abort").status_code == 403
    assert TestClient(app).get("/api/drills/history").status_code == 401


@pytest.mark.slow  # runs a drill (≥ 2 s: the runner's baseline of writes)
def test_abort_takes_the_runners_rollback_and_is_on_the_audit_trail(app, desk, state):
    from crypto import audit

    ops = signed_in(app, "wang.fang")
    assert ops.post("/api/drills/run", json={"scenario": "outputs-check", "confirm": "outputs-check"}).status_code == 202
    aborted = ops.post("/api/drills/abort")  # during the runner's baseline of writes, before `verify`
    assert aborted.status_code == 200 and aborted.json()["abort_requested_by"] == "wang.fang"
    live = wait_finished(ops)
    assert [s["phase"] for s in live["steps"]] == ["preflight", "rollback"]
    [rollback] = [s for s in live["steps"] if s["phase"] == "rollback"]
    assert rollback["action"] == "restore_original"
    # no lab to put back here: the rollback says so and the run is "failed", never "pass"
    assert live["result"]["verdict"] == "failed" and not rollback["ok"]
    assert "aborted from the console by wang.fang" in " ".join(live["result"]["anomalies"])
    entries = [(e["actor"], e["action"], e["target"]) for e in audit.entries(action="drill")["entries"]]
    assert ("wang.fang", "drill.abort", "outputs-check") in entries
    assert ("wang.fang", "drill.start", "outputs-check") in entries


def test_a_drill_of_the_cli_keeps_the_console_from_starting_another(app, desk):
    import os

    from drills.live import hold_drill_lock

    ops = signed_in(app, "wang.fang")
    with hold_drill_lock(desk.folder):  # what `govctl drill run` holds while it drills
        refused = ops.post("/api/drills/run", json={"scenario": "outputs-check", "confirm": "outputs-check"})
    assert refused.status_code == 409 and f"a drill is already running (pid {os.getpid()})" in refused.json()["detail"]
    assert ops.get("/api/drills/live").json() is None
