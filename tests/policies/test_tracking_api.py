"""The auditors' compare / remediation / waiver routes (policies/api_tracking.py, issue #19) on the console's
API: two real reports on record where remote administration on every host was broken in between, the same
diff `govctl comply diff` prints, remediation set as the signed-in user (and on the audit trail), host-item
waivers, and hostile bodies refused with 422 naming the field, never a 500."""
from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from console.app import create_console_app
from policies.api_tracking import EXTENSION
from policies.compliance import COMPLIANT, NON_COMPLIANT
from policies.compliance.diff import compare, load_side

from tests.console.conftest import PASSWORDS, _users_template  # noqa: F401 (the session's hashed users)
from tests.policies.compliance.conftest import evaluate, write_json
from tests.policies.compliance.test_diff import with_remote_admin


def tracking_state(state, patch, reports: dict[str, str] | None = None):
    """`state` as govctl's state folder (reports on record, tracking, waivers, the audit trail), holding
    `reports` (file name → text) on record."""
    from core import paths
    from crypto.audit import AuditLog

    (state / "crypto").mkdir(parents=True)
    (state / "crypto" / "config.yaml").write_text("suite: gm\nkdf_iterations: 100000\n")
    patch.setattr(paths, "STATE", state)
    patch.setenv("GOVCTL_STATE", str(state))
    patch.setenv("GOVCTL_CRYPTO_PASSPHRASE", "tracking test passphrase 整改")
    AuditLog._open_logs.clear()
    if reports:
        folder = state / "compliance" / "reports"
        folder.mkdir(parents=True)
        for name, text in reports.items():
            (folder / name).write_text(text, encoding="utf-8")


def signed_in(app, name) -> TestClient:
    c = TestClient(app)
    r = c.post("/api/session", json={"name": name, "password": PASSWORDS[name]})
    assert r.status_code == 200, r.text
    c.headers["X-CSRF-Token"] = r.json()["csrf"]
    return c


@pytest.fixture(scope="module")
def two_reports():
    """The quarter before (remote administration 符合) and after it was broken (不符合), as JSON text."""
    import json

    before = evaluate("djcp", with_remote_admin(COMPLIANT))
    after = evaluate("djcp", with_remote_admin(NON_COMPLIANT))
    before["generated"] = "2026-09-01T08:00:00+00:00"  # the earlier quarter (the engine stamps the run's time)
    after["generated"] = "2026-12-01T08:00:00+00:00"
    return {"djcp-L3-2026Q3.json": json.dumps(before, ensure_ascii=False),
            "djcp-L3-2026Q4.json": json.dumps(after, ensure_ascii=False)}


@pytest.fixture(scope="module")
def clients(tmp_path_factory, _users_template):
    """A console with the tracking routes, and a signed-in client of each role (signed in once: argon2 is slow)."""
    from tests.console.conftest import seed_store, users_in

    folder = tmp_path_factory.mktemp("tracking")
    engine = seed_store(folder)
    users = users_in(folder, _users_template)
    app = create_console_app(engine.store, folder / "tokens.yaml", users, engine.decisions,
                             static_dir=folder / "no-assets", extensions=[EXTENSION])
    yield {name: signed_in(app, name) for name in PASSWORDS}
    engine.store.close()


@pytest.fixture
def app(clients, two_reports, tmp_path):
    """The signed-in clients on a fresh state folder holding the two reports on record."""
    from crypto.audit import AuditLog

    with pytest.MonkeyPatch.context() as patch:
        tracking_state(tmp_path / "state", patch, two_reports)
        yield clients
        AuditLog._open_logs.clear()


def test_compare_two_reports_on_record_is_the_cli_diff(app, tmp_path):
    auditor = app["zhao.lei"]
    listed = auditor.get("/api/compliance/history").json()["records"]
    assert [e["name"] for e in listed] == ["djcp-L3-2026Q4.json", "djcp-L3-2026Q3.json"]  # newest first
    assert listed[0]["reports"][0]["key"] == "djcp" and listed[0]["reports"][0]["level"] == 3
    answer = auditor.get("/api/compliance/compare", params={"a": "djcp-L3-2026Q3.json", "b": "djcp-L3-2026Q4.json"})
    assert answer.status_code == 200, answer.text
    [r] = answer.json()["reports"]
    folder = tmp_path / "state" / "compliance" / "reports"
    cli = compare(load_side(folder / "djcp-L3-2026Q3.json", "A"), load_side(folder / "djcp-L3-2026Q4.json", "B"))
    assert r == cli["reports"][0]
    changed = {c["id"]: c for c in r["verdict_changes"]}
    assert changed["CE-IA-C"]["from"] == COMPLIANT and changed["CE-IA-C"]["to"] == NON_COMPLIANT
    assert [f["id"] for f in r["new_high_risk"]] == ["CE-IA-C", "CN-TRANS-B"] and r["score"]["change"] < 0
    # ops reads too; a name not on record (or a path) is refused naming the side, not read
    ops = app["wang.fang"]
    refused = ops.get("/api/compliance/compare", params={"a": "djcp-L3-2026Q3.json", "b": "../../secops.yaml"})
    assert refused.status_code == 422 and "b" in str(refused.json()["detail"])
    missing = ops.get("/api/compliance/compare", params={"a": "nope.json", "b": "djcp-L3-2026Q4.json"})
    assert missing.status_code == 422 and missing.json()["detail"].startswith("a: no report or pack named 'nope.json'")


def test_remediation_set_flags_overdue_lists_untracked_and_is_on_the_trail(app):
    from crypto import audit

    ops = app["wang.fang"]
    before = ops.get("/api/compliance/remediation").json()
    assert before["items"] == []
    untracked = {(u["standard"], u["item"]) for u in before["untracked"]}
    assert ("djcp", "CE-IA-C") in untracked and all(u["report"] == "djcp-L3-2026Q4.json" for u in before["untracked"])
    yesterday = (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)).isoformat()
    answer = ops.put("/api/compliance/remediation/djcp/CE-IA-C", json={"owner": "运维组 张工", "due": yesterday,
                                                                      "link": "https://git.example/fix/12"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["overdue"] is True and answer.json()["status"] == "open"
    listed = ops.get("/api/compliance/remediation", params={"overdue": "true"}).json()
    [row] = listed["items"]
    assert (row["item"], row["owner"], row["overdue"], row["verdict"]) == ("CE-IA-C", "运维组 张工", True, NON_COMPLIANT)
    assert ("djcp", "CE-IA-C") not in {(u["standard"], u["item"]) for u in listed["untracked"]}
    done = ops.put("/api/compliance/remediation/djcp/CE-IA-C", json={"status": "done"})
    assert done.json()["overdue"] is False
    assert ops.get("/api/compliance/remediation", params={"status": "open"}).json()["items"] == []
    [done_entry, set_entry] = audit.entries(action="comply.remediation.set")["entries"]
    assert (set_entry["actor"], set_entry["target"], set_entry["outcome"]) == ("wang.fang", "djcp:CE-IA-C", "ok")


HOSTILE = [
    ("/api/compliance/remediation/djcp/CE-IA-C", {"owner": "张工", "due": "2027-02-30"}, "due"),
    ("/api/compliance/remediation/djcp/CE-IA-C", {"owner": "张工", "due": "next week"}, "due"),
    ("/api/compliance/remediation/djcp/CE-IA-C", {"owner": "x" * 201, "due": "2027-01-31"}, "owner"),
    ("/api/compliance/remediation/djcp/CE-IA-C", {"owner": "张工", "due": "2027-01-31", "link": "l" * 2001}, "link"),
    ("/api/compliance/remediation/djcp/CE-IA-C", {"owner": "张工", "due": "2027-01-31", "status": "closed"}, "status"),
    ("/api/compliance/remediation/djcp/CE-IA-C", {"owner": "张工", "due": "2027-01-31", "extra": 1}, "extra"),
    ("/api/compliance/remediation/djcp/CE-IA-C", {"owner": 7, "due": "2027-01-31"}, "owner"),
    ("/api/compliance/waivers", {"item": "IA-REMOTE-ADMIN-SSH", "justification": "专线内网管理", "approver": "李主任",
                                 "expires": "2027-13-01"}, "expires"),
    ("/api/compliance/waivers", {"item": "IA-REMOTE-ADMIN-SSH", "justification": "j" * 2001, "approver": "李主任",
                                 "expires": "2027-06-30"}, "justification"),
    ("/api/compliance/waivers", {"item": "IA-REMOTE-ADMIN-SSH", "justification": "短", "approver": "李主任",
                                 "expires": "2027-06-30"}, "justification"),
    ("/api/compliance/waivers", {"item": "../etc", "justification": "专线内网管理", "approver": "李主任",
                                 "expires": "2027-06-30"}, "item"),
    ("/api/compliance/waivers", {"item": "IA-REMOTE-ADMIN-SSH", "host": "web-1; rm", "justification": "专线内网管理",
                                 "approver": "李主任", "expires": "2027-06-30"}, "host"),
]


def test_hostile_bodies_are_refused_naming_the_field(app):
    auditor = app["zhao.lei"]
    for path, body, field in HOSTILE:
        call = auditor.put if "remediation" in path else auditor.post
        answer = call(path, json=body)
        assert answer.status_code == 422, (field, answer.text)
        assert field in [d["loc"][-1] for d in answer.json()["detail"]], (field, answer.text)
    assert auditor.get("/api/compliance/remediation").json()["items"] == []  # nothing written
    assert auditor.get("/api/compliance/waivers").json()["waivers"] == []


def test_what_only_the_catalogs_know_is_refused_in_a_sentence(app):
    auditor = app["zhao.lei"]
    unknown = auditor.put("/api/compliance/remediation/djcp/CE-NOPE", json={"owner": "张工", "due": "2027-01-31"})
    assert unknown.status_code == 422 and unknown.json()["detail"].startswith("item 'CE-NOPE' is not in the djcp catalog")
    new_without_due = auditor.put("/api/compliance/remediation/djcp/CE-IA-C", json={"owner": "张工"})
    assert new_without_due.status_code == 422 and "give --owner and --due" in new_without_due.json()["detail"]
    waiver = {"item": "IA-NOPE", "justification": "专线内网管理", "approver": "李主任", "expires": "2027-06-30"}
    refused = auditor.post("/api/compliance/waivers", json=waiver)
    assert refused.status_code == 422 and "not in the host-hardening catalog" in refused.json()["detail"]
    past = auditor.post("/api/compliance/waivers", json=dict(waiver, item="IA-REMOTE-ADMIN-SSH", expires="2020-01-01"))
    assert past.status_code == 422 and "before today" in past.json()["detail"]
    assert auditor.put("/api/compliance/remediation/iso27001/A-5", json={"owner": "x"}).status_code == 422


def test_waivers_are_added_by_security_or_auditors_and_change_the_next_report(app, tmp_path):
    from policies.compliance import assessment
    from tests.policies.compliance.conftest import item

    ops = app["wang.fang"]
    body = {"item": "IA-REMOTE-ADMIN-SSH", "host": "web-1.prod", "justification": "仅经堡垒机专线管理，另有审批",
            "approver": "李主任", "expires": "2099-06-30"}
    assert ops.post("/api/compliance/waivers", json=body).status_code == 403  # ops may read, not waive
    auditor = app["zhao.lei"]
    added = auditor.post("/api/compliance/waivers", json=body)
    assert added.status_code == 201, added.text
    [row] = ops.get("/api/compliance/waivers").json()["waivers"]
    assert (row["item"], row["host"], row["approver"], row["active"]) == ("IA-REMOTE-ADMIN-SSH", "web-1.prod", "李主任", True)
    # the next report reads the waiver from the same file the CLI's reports read
    inputs = assessment.load(None)
    report = evaluate("djcp", with_remote_admin(NON_COMPLIANT), assessment=inputs)
    detail = " ".join(e["detail"] for e in item(report, "CE-IA-C")["evidence"])
    assert "web-1.prod" in detail and "仅经堡垒机专线管理" in detail
    # a renewal replaces the waiver of the same item and host
    auditor.post("/api/compliance/waivers", json=dict(body, expires="2099-12-31"))
    assert [w["expires"] for w in auditor.get("/api/compliance/waivers").json()["waivers"]] == ["2099-12-31"]


def test_a_console_record_is_listed_and_a_pack_failing_verification_is_refused_not_crashed(app, tmp_path):
    """The compliance page's records (<id>/record.json beside <id>/pack/) are part of the history; a pack
    whose manifest is not a signed one is refused naming its side (422), never a 500."""
    folder = tmp_path / "state" / "compliance" / "reports"
    record = folder / "20261207T010203Z-djcp-L3-a1b2c3"
    (record / "pack").mkdir(parents=True)
    (record / "record.json").write_text('{"id": "20261207T010203Z-djcp-L3-a1b2c3", "status": "ready"}')
    (record / "pack" / "evidence.manifest.json").write_text('{"files": {}}')
    later = (folder / "djcp-L3-2026Q4.json").read_text(encoding="utf-8").replace("2026-12-01T08:00:00", "2026-12-07T01:02:03")
    (record / "pack" / "report-djcp-L3.json").write_text(later, encoding="utf-8")
    (folder / "20261207T020000Z-djcp-L3-ffffff").mkdir()  # a record still being made: nothing to compare yet
    (folder / "20261207T020000Z-djcp-L3-ffffff" / "record.json").write_text('{"status": "running"}')
    auditor = app["zhao.lei"]
    listed = auditor.get("/api/compliance/history").json()["records"]
    assert [(e["name"], e["kind"]) for e in listed][0] == ("20261207T010203Z-djcp-L3-a1b2c3", "pack") and len(listed) == 3
    answer = auditor.get("/api/compliance/compare", params={"a": "djcp-L3-2026Q3.json", "b": record.name})
    assert answer.status_code == 422 and answer.json()["detail"].startswith("B")
