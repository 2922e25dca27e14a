"""The console's hardening routes (hardening/api.py through policies/api_hardening.py): the matrix of the latest
audit on record with waivers, item detail, background audit / harden --check jobs, roles and hostile input.

The reports are made by the real report code (runner.baseline → records.run_and_record) from Ansible events in
ansible-runner's format fed to the real EventSink; tests/hardening/test_lab_api.py runs the real Ansible on the lab.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from console.app import create_console_app
from core import paths
from hardening import api as hardening_api
from hardening import inventory, records, runner
from hardening.verdict import MANUAL, NON_COMPLIANT
from infra.outputs import StackNotDeployed, StackOutputs
from policies.api_hardening import waivers_in_force
from secops.config import load_config
from secops.daemon import Engine
from secops.stores import open_store
from tests.console.conftest import PASSWORDS, add_users
from tests.hardening.test_inventory import outputs

OUTPUTS = StackOutputs.from_dict(outputs())
WEB, BASTION = "web-1.prod", "bastion-1.prod"
DIFF = {"before": "Port 22\n", "after": "# BEGIN govctl AC-NO-REMOTE-ROOT\nPermitRootLogin no\nPort 22\n",
        "before_header": "/etc/ssh/sshd_config", "after_header": "/etc/ssh/sshd_config"}


def events(host: str, reachable: bool) -> list[dict]:
    if not reachable:
        return [{"event": "runner_on_unreachable", "event_data": {
            "host": host, "task": "Gathering Facts", "res": {"msg": "ssh: connect to host: No route to host"}}}]
    return [
        {"event": "runner_on_start", "event_data": {"host": host, "task": "govctl_baseline : AC-NO-REMOTE-ROOT | x"}},
        {"event": "runner_on_ok", "event_data": {
            "host": host, "task": "govctl_baseline : AC-NO-REMOTE-ROOT | PermitRootLogin no, first in sshd_config",
            "res": {"changed": True, "diff": [DIFF]}}},
        {"event": "runner_on_ok", "event_data": {
            "host": host, "task": "govctl_baseline : IA-PASSWORD-COMPLEXITY | pwquality settings",
            "res": {"changed": False}}},
    ]


def seed_store(folder):
    """An empty SecOps store for the console app (the hardening routes do not read it)."""
    cfgfile = folder / "secops.yaml"
    cfgfile.write_text(json.dumps({"store": str(folder / "secops.db"), "enforcer": {"kind": "none"}}))
    cfg = load_config(cfgfile)
    return Engine(cfg, open_store(cfg), dry_run=True)


class PlaybookResult:
    status, rc = "failed", 4


def fake_run_playbook(playbook, inventory, extravars, limit, check, forks, run_id, on_progress=None):
    """Ansible's events for web-1.prod (reachable) and bastion-1.prod (unreachable), fed to the real EventSink."""
    sink = runner.EventSink(runner.hosts_matching(inventory, limit), on_progress)
    for host in sink.hosts:
        for event in events(host, reachable=host.startswith("web-")):
            sink(event)
            time.sleep(0.002)
    return sink, PlaybookResult()


@pytest.fixture
def fake_ansible(monkeypatch, tmp_path):
    """State in tmp_path; Ansible's events for web-1.prod (reachable) and bastion-1.prod (unreachable)."""
    monkeypatch.setattr(paths, "STATE", tmp_path / "state")
    monkeypatch.setattr(runner, "run_playbook", fake_run_playbook)


def audit(kind="audit", limit=f"{WEB},{BASTION}") -> dict:
    return records.run_and_record(kind, 3, limit, outputs=OUTPUTS)


def run_on_test_outputs(kind, level, limit, stack, on_progress):
    return records.run_and_record(kind, level, limit, stack=stack, on_progress=on_progress, outputs=OUTPUTS)


def preflight_on_test_outputs(limit, stack):
    from hardening.inventory import build_inventory, hosts_matching
    hosts_matching(build_inventory(OUTPUTS), limit)


@pytest.fixture(scope="module")
def users_template(tmp_path_factory):
    return add_users(tmp_path_factory.mktemp("users") / "users.yaml")  # password hashing is slow: once


@pytest.fixture
def users_file(users_template, tmp_path):
    return Path(shutil.copy(users_template, tmp_path / "users.yaml"))


@pytest.fixture
def app(fake_ansible, tmp_path, users_file):
    engine = seed_store(tmp_path)
    ext = hardening_api.extension(waivers_in_force, jobs=hardening_api.Jobs(run=run_on_test_outputs),
                                  check_start=preflight_on_test_outputs)
    yield create_console_app(engine.store, tmp_path / "tokens.yaml", users_file, engine.decisions, static_dir=tmp_path / "no-assets", extensions=[ext])
    engine.store.close()


def signed_in(app, name):
    client = TestClient(app)
    r = client.post("/api/session", json={"name": name, "password": PASSWORDS[name]})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf"]
    return client


def wait_job(client, job_id):
    for _ in range(200):
        job = client.get(f"/api/hardening/jobs/{job_id}").json()
        if job["state"] != "running":
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still running: {job}")


def test_audit_and_check_are_kept_on_record_and_the_latest_one_is_read(fake_ansible):
    first = audit()
    check = audit("check")
    second = audit(limit=WEB)
    assert records.latest("audit")["run_id"] == second["run_id"] != first["run_id"]
    assert records.latest("check")["run_id"] == check["run_id"]
    saved = json.loads((records.reports_dir() / f"{first['run_id']}.json").read_text())
    assert saved["hosts"][WEB]["items"] and saved["unreachable"] == [BASTION]
    assert [r["kind"] for r in records.listing()] == ["audit", "check", "audit"]


def test_the_matrix_shows_verdicts_per_host_and_item_and_waivers_as_waived(app, tmp_path):
    report = audit()
    (paths.STATE / "compliance").mkdir(parents=True)
    (paths.STATE / "compliance" / "assessment.yaml").write_text(
        "waivers:\n"
        f"  - {{standard: host, item: IA-PASSWORD-COMPLEXITY, host: {WEB}, justification: central IdP enforces it,"
        " approver: 张主任, expires: '2099-12-31'}\n"
        "  - {standard: host, item: AC-NO-REMOTE-ROOT, justification: old waiver of the pilot,"
        " approver: 张主任, expires: '2020-01-01'}\n", encoding="utf-8")
    auditor = signed_in(app, "zhao.lei")
    body = auditor.get("/api/hardening/matrix").json()
    assert body["run_id"] == report["run_id"] and body["unreachable"] == [BASTION]
    assert [h["name"] for h in body["hosts"]] == [WEB, BASTION]
    assert body["hosts"][1]["status"] == "unreachable" and "No route" in body["hosts"][1]["message"]
    web = body["cells"][WEB]
    assert web["AC-NO-REMOTE-ROOT"]["shown"] == NON_COMPLIANT  # its waiver expired: the verdict counts
    assert web["AC-NO-REMOTE-ROOT"]["waiver"]["active"] is False
    assert web["IA-PASSWORD-COMPLEXITY"] == {"verdict": "符合", "shown": hardening_api.WAIVED, "waiver": {
        "standard": "host", "item": "IA-PASSWORD-COMPLEXITY", "host": WEB, "justification": "central IdP enforces it",
        "approver": "张主任", "expires": "2099-12-31", "active": True}}
    assert web["IA-MULTI-FACTOR"]["shown"] == MANUAL
    assert body["cells"][BASTION] == {}
    assert {"id", "clause", "title"} <= set(body["items"][0])
    detail = auditor.get(f"/api/hardening/runs/{report['run_id']}/hosts/{WEB}/items/AC-NO-REMOTE-ROOT").json()
    assert detail["expected"] == "PermitRootLogin no" and detail["clause"] == "GB/T 22239-2019 8.1.4.2 b)"
    assert "PermitRootLogin no" in detail["evidence"][0]["diff"]


def test_a_broken_assessment_file_does_not_hide_the_matrix(app):
    audit()
    (paths.STATE / "compliance").mkdir(parents=True)
    (paths.STATE / "compliance" / "assessment.yaml").write_text("waivers: [{standard: host}]\n")
    body = signed_in(app, "li.na").get("/api/hardening/matrix").json()
    assert body["cells"][WEB]["AC-NO-REMOTE-ROOT"]["shown"] == NON_COMPLIANT
    assert "waivers not applied" in body["waivers_error"] and "required" in body["waivers_error"]


def test_nothing_on_record_is_a_404_that_says_what_to_run(app):
    auditor = signed_in(app, "zhao.lei")
    r = auditor.get("/api/hardening/matrix")
    assert r.status_code == 404 and "govctl audit" in r.json()["detail"]
    assert auditor.get("/api/hardening/diffs").status_code == 404


def test_ops_run_an_audit_and_a_check_in_the_background_and_see_each_host(app):
    ops = signed_in(app, "wang.fang")
    started = ops.post("/api/hardening/jobs", json={"kind": "audit", "limit": f"{WEB},{BASTION}"})
    assert started.status_code == 202 and started.json()["state"] == "running"
    job = wait_job(ops, started.json()["id"])
    assert job["state"] == "done" and job["unreachable"] == [BASTION]  # the others went on
    assert job["hosts"][WEB]["status"] == "ok" and job["hosts"][WEB]["tasks"] == 2
    assert job["hosts"][WEB]["verdicts"][NON_COMPLIANT] == 1
    assert ops.get("/api/hardening/matrix").json()["run_id"] == job["run_id"]
    check = wait_job(ops, ops.post("/api/hardening/jobs", json={"kind": "check"}).json()["id"])
    diffs = ops.get("/api/hardening/diffs").json()
    assert diffs["run_id"] == check["run_id"] and diffs["mode"] == "harden --check"
    change = diffs["hosts"][WEB]["changes"][0]
    assert change["item"] == "AC-NO-REMOTE-ROOT" and "+PermitRootLogin no" in change["diff"]
    assert diffs["hosts"]["web-1.samecity"]["changes"]
    assert diffs["hosts"][BASTION] == {"status": "unreachable", "changes": [],
                                        "message": "ssh: connect to host: No route to host"}


def test_roles_reading_is_for_all_three_running_for_ops(app):
    audit()
    for name in ("li.na", "zhao.lei"):
        client = signed_in(app, name)
        assert client.get("/api/hardening/matrix").status_code == 200
        refused = client.post("/api/hardening/jobs", json={"kind": "audit"})
        assert refused.status_code == 403 and "harden-run" in refused.json()["detail"]
    assert TestClient(app).get("/api/hardening/matrix").status_code == 401
    ops = signed_in(app, "wang.fang")
    del ops.headers["X-CSRF-Token"]
    assert ops.post("/api/hardening/jobs", json={"kind": "audit"}).status_code == 403


@pytest.mark.parametrize("body, field", [
    ({"kind": "harden"}, "kind"),  # a real harden is not offered on the page
    ({"kind": "audit", "level": 5}, "level"),
    ({"kind": "audit", "limit": "web-1;rm -rf /"}, "limit"),
    ({"kind": "audit", "limit": "x" * 201}, "limit"),
    ({"kind": "audit", "stack": "../../etc"}, "stack"),
    ({"kind": "audit", "forks": 1000}, "forks"),
    ({}, "kind"),
])
def test_hostile_job_bodies_are_422_naming_the_field(app, body, field):
    r = signed_in(app, "wang.fang").post("/api/hardening/jobs", json=body)
    assert r.status_code == 422, r.text
    assert field in json.dumps(r.json(), ensure_ascii=False)


def test_a_limit_matching_no_host_is_refused_before_any_job_starts(app):
    r = signed_in(app, "wang.fang").post("/api/hardening/jobs", json={"kind": "audit", "limit": "nosuch-host"})
    assert r.status_code == 422 and "matches no host" in r.json()["detail"]


def test_an_undeployed_stack_is_a_409_and_one_job_runs_at_a_time(fake_ansible, tmp_path, users_file, monkeypatch):
    engine = seed_store(tmp_path)
    slow = hardening_api.Jobs(run=lambda *a, **k: time.sleep(0.5) or audit())
    apps = [create_console_app(engine.store, tmp_path / "tokens.yaml", users_file, engine.decisions, static_dir=tmp_path / "none", extensions=[ext])
            for ext in (hardening_api.extension(jobs=slow, check_start=preflight_on_test_outputs),
                        hardening_api.extension(check_start=hardening_api.preflight))]
    ops = signed_in(apps[0], "wang.fang")
    first = ops.post("/api/hardening/jobs", json={"kind": "audit"})
    second = ops.post("/api/hardening/jobs", json={"kind": "check"})
    assert second.status_code == 409 and first.json()["id"] in second.json()["detail"]
    assert wait_job(ops, first.json()["id"])["state"] == "done"
    ops = signed_in(apps[1], "wang.fang")
    unknown = ops.post("/api/hardening/jobs", json={"kind": "audit", "stack": "nosuch"})
    assert unknown.status_code == 422 and "unknown stack 'nosuch'" in unknown.json()["detail"]
    def not_deployed(stack):  # the real engine would read this worktree's state/ (its paths are fixed at import)
        raise StackNotDeployed(stack)
    monkeypatch.setattr(inventory, "read_stack_outputs", not_deployed)
    undeployed = ops.post("/api/hardening/jobs", json={"kind": "audit", "stack": "tiny"})
    assert undeployed.status_code == 409 and "govctl infra up --stack tiny" in undeployed.json()["detail"]
    engine.store.close()


@pytest.mark.parametrize("path", [
    "/api/hardening/matrix?run_id=../../etc/passwd",
    "/api/hardening/runs/20261207T004512-1/hosts/web-1.prod/items/AC-NO-REMOTE-ROOT",  # no such run
    "/api/hardening/jobs/zzz",
    "/api/hardening/jobs/0123456789ab",
    "/api/hardening/runs?kind=rm",
])
def test_hostile_or_unknown_paths_are_4xx_never_500(app, path):
    audit()
    r = signed_in(app, "zhao.lei").get(path)
    assert r.status_code in (404, 422), r.text


def test_an_unknown_host_or_item_is_a_404_naming_it(app):
    run_id = audit()["run_id"]
    auditor = signed_in(app, "zhao.lei")
    r = auditor.get(f"/api/hardening/runs/{run_id}/hosts/ghost.prod/items/AC-NO-REMOTE-ROOT")
    assert r.status_code == 404 and "ghost.prod" in r.json()["detail"]
    r = auditor.get(f"/api/hardening/runs/{run_id}/hosts/{WEB}/items/NO-SUCH")
    assert r.status_code == 404 and "NO-SUCH" in r.json()["detail"]


def test_a_failing_run_ends_the_job_failed_with_its_message(app, monkeypatch):
    def broken(*args, **kwargs):
        raise runner.GovctlError("ansible-runner did not run a single task")
    monkeypatch.setattr(runner, "run_playbook", broken)
    ops = signed_in(app, "wang.fang")
    job = wait_job(ops, ops.post("/api/hardening/jobs", json={"kind": "audit"}).json()["id"])
    assert job["state"] == "failed" and "did not run a single task" in job["error"]


def test_govctl_audit_and_harden_check_keep_their_report_for_the_console(fake_ansible, monkeypatch):
    from typer.testing import CliRunner

    from govctl.cli import app as cli
    monkeypatch.setattr(inventory, "load_outputs", lambda stack: OUTPUTS)
    audited = CliRunner().invoke(cli, ["audit", "--limit", WEB, "--json"])
    assert audited.exit_code == 1  # AC-NO-REMOTE-ROOT is not met
    report = json.loads(audited.stdout)
    assert records.latest("audit") == {**report}
    checked = CliRunner().invoke(cli, ["harden", "--check", "--limit", WEB, "--json"])
    assert records.latest("check")["run_id"] == json.loads(checked.stdout)["run_id"]
    assert [r["kind"] for r in records.listing()] == ["check", "audit"]


def test_a_restarted_console_lists_past_jobs_and_their_reports(fake_ansible, tmp_path, users_file):
    """Each job's record is kept beside the reports: a new console (a new Jobs, as after a restart) lists the
    finished job, newest first, with the run id whose matrix it can open."""
    engine = seed_store(tmp_path)

    def console():
        ext = hardening_api.extension(waivers_in_force, jobs=hardening_api.Jobs(run=run_on_test_outputs),
                                      check_start=preflight_on_test_outputs)
        return create_console_app(engine.store, tmp_path / "tokens.yaml", users_file, engine.decisions,
                                  static_dir=tmp_path / "no-assets", extensions=[ext])
    ops = signed_in(console(), "wang.fang")
    audit_job = wait_job(ops, ops.post("/api/hardening/jobs", json={"kind": "audit", "limit": WEB}).json()["id"])
    check_job = wait_job(ops, ops.post("/api/hardening/jobs", json={"kind": "check", "limit": WEB}).json()["id"])
    assert (hardening_api.jobs_dir() / f"{audit_job['id']}.json").is_file()

    auditor = signed_in(console(), "zhao.lei")  # the console restarted
    listed = auditor.get("/api/hardening/jobs").json()["jobs"]
    assert [(j["id"], j["kind"], j["state"], j["started_by"]) for j in listed] == [
        (check_job["id"], "check", "done", "wang.fang"), (audit_job["id"], "audit", "done", "wang.fang")]
    assert listed[1]["run_id"] == audit_job["run_id"] and listed[1]["hosts"][WEB]["status"] == "ok"
    assert "owner" not in listed[0]
    assert auditor.get(f"/api/hardening/jobs/{audit_job['id']}").json() == listed[1]
    matrix = auditor.get("/api/hardening/matrix", params={"run_id": audit_job["run_id"]})
    assert matrix.status_code == 200 and [h["name"] for h in matrix.json()["hosts"]] == [WEB]
    assert auditor.get(f"/api/hardening/diffs?run_id={check_job['run_id']}").json()["hosts"][WEB]["changes"]
    engine.store.close()


CONSOLE_THAT_DIES = """
import sys, threading
from core import paths
from pathlib import Path
paths.STATE = Path(sys.argv[1])
from hardening import api
jobs = api.Jobs(run=lambda *a, **k: threading.Event().wait())  # a run that never ends: the console dies first
print(jobs.start("audit", 3, "web-1.prod", "lab", "wang.fang")["id"], flush=True)
threading.Event().wait()
"""


def console_dies_while_a_job_runs(state, while_running=lambda job_id: None) -> str:
    """A real console process (state folder `state`) starts a job and is killed (SIGKILL) mid-run; its job id."""
    import os
    import signal
    import subprocess
    import sys

    dying = subprocess.Popen([sys.executable, "-c", CONSOLE_THAT_DIES, str(state)],
                             stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(paths.ROOT)})
    try:
        job_id = dying.stdout.readline().strip()
        assert len(job_id) == 12, job_id
        while_running(job_id)
    finally:
        dying.send_signal(signal.SIGKILL)
        dying.wait(timeout=30)
    return job_id


def test_a_job_running_when_its_console_died_reads_interrupted_not_running(tmp_path, monkeypatch):
    """A console process starts a job and is killed mid-run: while it lives, another console sees the job
    running and refuses a second one; once it is dead, the job reads interrupted (kept so on disk)."""
    monkeypatch.setattr(paths, "STATE", tmp_path / "state")

    def while_running(job_id):
        other = hardening_api.Jobs(run=run_on_test_outputs)
        assert other.get(job_id)["state"] == "running"
        with pytest.raises(RuntimeError, match=f"job {job_id} .* is still running"):
            other.start("audit", 3, WEB, "lab", "li.na")
    job_id = console_dies_while_a_job_runs(tmp_path / "state", while_running)
    def no_hosts(*args, **kwargs):
        raise LookupError("no host answers in this test")
    restarted = hardening_api.Jobs(run=no_hosts)
    job = restarted.get(job_id)
    assert job["state"] == "interrupted" and "stopped while this job ran" in job["error"]
    assert [j["state"] for j in restarted.listing()] == ["interrupted"]
    on_disk = json.loads((hardening_api.jobs_dir() / f"{job_id}.json").read_text())
    assert on_disk["state"] == "interrupted"
    started = restarted.start("audit", 3, WEB, "lab", "li.na")  # nothing runs any more: a new job may start
    assert started["state"] == "running"
    for _ in range(200):
        if restarted.get(started["id"])["state"] != "running":
            break
        time.sleep(0.02)
    assert restarted.get(started["id"])["state"] == "failed"


def test_a_reused_process_id_does_not_keep_a_dead_consoles_job_running(tmp_path, monkeypatch):
    """The record names its console by pid AND the kernel's start time of that process: another process that
    got the same pid later is not that console."""
    import os
    monkeypatch.setattr(paths, "STATE", tmp_path / "state")
    folder = hardening_api.jobs_dir()
    folder.mkdir(parents=True)
    record = {"id": "0123456789ab", "kind": "check", "level": 3, "limit": None, "stack": "lab",
              "started_by": "wang.fang", "started": time.time() - 60, "finished": None, "state": "running",
              "hosts": {WEB: {"tasks": 3, "task": "x", "status": "running", "changed": 1, "failed": 0}},
              "run_id": None, "unreachable": [], "failed": [], "error": None,
              "owner": {"pid": os.getpid(), "process_started": "1"}}  # this pid, but not this process
    (folder / "0123456789ab.json").write_text(json.dumps(record))
    (folder / "fedcba987654.json").write_text("{not json")  # a damaged record is skipped, not fatal
    job = hardening_api.Jobs().get("0123456789ab")
    assert job["state"] == "interrupted" and job["hosts"][WEB]["tasks"] == 3  # the progress it had is kept
    assert [j["id"] for j in hardening_api.Jobs().listing()] == ["0123456789ab"]
