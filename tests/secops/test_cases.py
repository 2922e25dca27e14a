"""Cases (issue #18): SLAs with due times and recorded breaches, merge/split/reopen with history, the fix for
alerts that grew after their incident was resolved, observables seen across incidents, response-plan
checklists, the incident report (JSON and a Chinese PDF), and who may do what through the API — on both
stores: SQLite (fast tier) and a real Elasticsearch node (slow tier), with the same assertions."""
from __future__ import annotations

import io
import json
import re
import subprocess

import pytest
from fastapi.testclient import TestClient

from secops.api import Tokens, create_app
from secops.cases import CaseDataError, load_plans, load_sla, observables
from secops.config import load_config
from secops.daemon import Engine, ingest_stream
from secops.incidents import IncidentError, Incidents, InvalidInput
from secops.stores import open_store
from tests.secops.conftest import config_on_store


def _lines(ip: str, minute: int, first_second: int = 0, n: int = 6, user: str = "root") -> bytes:
    return b"".join(f"Nov  1 00:{minute:02d}:{s:02d} web-1 sshd[1]: Failed password for {user} from {ip} port {s} ssh2\n"
                    .encode() for s in range(first_second, first_second + n))


class Case:
    """A store fed by the streaming engine, and a way to feed it more lines later."""

    def __init__(self, cfgfile, store, engine):
        self.cfgfile, self.store, self.engine = cfgfile, store, engine

    def feed(self, data: bytes) -> None:
        ingest_stream(self.engine, io.BytesIO(data), "test", "auto", "auto", 1000)
        self.store.flush()

    def by_entity(self, value: str) -> list[dict]:
        return sorted((i for i in Incidents(self.store).list() if i["entity"]["value"] == value), key=lambda i: i["id"])


@pytest.fixture(params=["sqlite", pytest.param("elasticsearch", marks=pytest.mark.slow)])
def case(request, tmp_path):
    """203.0.113.5 attacks twice 50 minutes apart (two incidents), 203.0.113.6 once (with user admin)."""
    cfgfile = config_on_store(request, tmp_path)
    cfg = load_config(cfgfile)
    store = open_store(cfg)
    c = Case(cfgfile, store, Engine(cfg, store, dry_run=True))
    c.feed(_lines("203.0.113.5", 0) + _lines("203.0.113.6", 6, user="admin") + _lines("203.0.113.5", 55))
    yield c
    store.close()


# ------------------------------------------------------------------ SLAs
def test_sla_due_times_and_breach_recorded_once_per_target(case):
    iid = case.by_entity("203.0.113.6")[0]["id"]
    created = case.store.incident(iid)["created"]
    clock = [created + 60]
    svc = Incidents(case.store, clock=lambda: clock[0])
    shown = svc.show(iid)
    assert shown["severity"] == "high"
    assert shown["sla"]["class"]["zh"].startswith("重大")
    ack = next(t for t in shown["sla"]["targets"] if t["target"] == "acknowledge")
    assert ack["status"] == "pending" and ack["seconds"] == 1800 and ack["remaining"] == 1740
    assert shown["sla"]["breached"] == []
    clock[0] = created + 1801  # 30 min 1 s later: the high-severity acknowledge target has passed
    late = svc.show(iid)
    assert late["sla"]["breached"] == ["acknowledge"]
    swept = {r["id"]: r for r in svc.sla()}
    assert swept[iid]["breached"] == ["acknowledge"]
    breaches = [n for n in svc.show(iid)["notes"] if n["kind"] == "sla-breach"]
    assert len(breaches) == 1 and breaches[0]["author"] == "govctl-sla" and breaches[0]["text"].startswith("acknowledge:")
    # acknowledging late keeps the target breached; containing in time meets its own target
    svc.ack(iid, "li.na")
    clock[0] = created + 3600
    contained = svc.contain(iid, "li.na")
    status = {t["target"]: t["status"] for t in contained["sla"]["targets"]}
    assert status == {"acknowledge": "breached", "contain": "met", "resolve": "pending"}
    assert len([n for n in contained["notes"] if n["kind"] == "sla-breach"]) == 1


def test_sla_cli_json(case):
    from typer.testing import CliRunner

    from govctl.cli import app
    out = CliRunner().invoke(app, ["incidents", "sla", "--json", "--config", str(case.cfgfile)])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)
    assert len(rows) == 3 and all({t["target"] for t in r["targets"]} == {"acknowledge", "contain", "resolve"}
                                  for r in rows)
    assert all(r["breached"] == [] for r in rows)  # just created


def test_sla_file_off_its_schema_is_refused_naming_the_field(tmp_path):
    bad = tmp_path / "sla.yaml"
    bad.write_text("severities:\n  critical: {class: {zh: a, en: b}, acknowledge: 5, contain: null, resolve: null}\n")
    with pytest.raises(CaseDataError, match=r"severities.critical.acknowledge.*|severities: 'high' is a required"):
        load_sla(bad)
    assert set(load_sla()) == {"critical", "high", "medium", "low", "informational"}


# ------------------------------------------------------------------ merge, split, reopen
def test_merge_split_reopen_keep_history(case):
    svc = Incidents(case.store)
    early, later = case.by_entity("203.0.113.5")
    other = case.by_entity("203.0.113.6")[0]
    moved = [a["id"] for a in svc.show(other["id"])["alerts"]]
    merged = svc.merge(early["id"], [other["id"]], "zhang.wei", "one campaign")
    assert {a["id"] for a in merged["alerts"]} >= set(moved)
    assert merged["alerts"] and len(merged["alerts"]) == early["alerts"] + other["alerts"]
    note = next(n for n in merged["notes"] if n["kind"] == "merge")
    assert note["author"] == "zhang.wei" and note["text"].startswith(f"merged #{other['id']}: alerts ")
    assert all(str(a) in note["text"] for a in moved)
    gone = svc.show(other["id"])
    assert gone["state"] == "resolved" and gone["alerts"] == [] and gone["merged_into"] == early["id"]
    with pytest.raises(IncidentError, match=f"reopen #{early['id']} instead"):
        svc.reopen(other["id"], "zhang.wei")
    with pytest.raises(InvalidInput, match="into itself"):
        svc.merge(early["id"], [early["id"]], "zhang.wei")
    # split the merged alerts off again: a new incident of 203.0.113.6 with them, history on both sides
    split = svc.split(early["id"], moved, "li.na", "not the same actor after all")
    assert split["id"] not in (early["id"], other["id"], later["id"])
    assert split["entity"] == {"kind": "source.ip", "value": "203.0.113.6"} and split["state"] == "new"
    assert sorted(str(a["id"]) for a in split["alerts"]) == sorted(str(a) for a in moved)
    assert split["notes"][0]["kind"] == "split" and split["notes"][0]["text"].startswith(f"split from #{early['id']}")
    source = svc.show(early["id"])
    assert len(source["alerts"]) == early["alerts"]
    assert [n["kind"] for n in source["notes"]] == ["merge", "split"]
    with pytest.raises(InvalidInput, match="not alerts of incident"):
        svc.split(early["id"], ["999999"], "li.na")
    with pytest.raises(InvalidInput, match="leaves it empty"):
        svc.split(early["id"], [a["id"] for a in source["alerts"]], "li.na")
    # reopen by hand: acknowledged again, who and why kept, a new SLA cycle
    svc.resolve(split["id"], "li.na", "blocked")
    with pytest.raises(IncidentError, match="reopen it before"):
        svc.split(split["id"], moved[:1], "li.na")
    reopened = svc.reopen(split["id"], "li.na", "came back")
    assert reopened["state"] == "acknowledged"
    assert [(n["kind"], n["author"]) for n in reopened["notes"][-2:]] == [("reopen", "li.na"), ("state", "li.na")]
    assert reopened["notes"][-1]["text"] == "resolved → acknowledged: reopened"
    with pytest.raises(IncidentError, match="only a closed incident reopens"):
        svc.reopen(split["id"], "li.na")


def test_cli_merge_split_reopen_task(case):
    from typer.testing import CliRunner

    from govctl.cli import app
    runner = CliRunner()
    run = lambda *args: runner.invoke(app, ["incidents", *args, "--config", str(case.cfgfile)])  # noqa: E731
    early, later = case.by_entity("203.0.113.5")
    other = case.by_entity("203.0.113.6")[0]
    moved = [str(a["id"]) for a in Incidents(case.store).show(other["id"])["alerts"]]
    merged = run("merge", str(early["id"]), str(other["id"]), "--json")
    assert merged.exit_code == 0, merged.output
    assert set(moved) <= {str(a["id"]) for a in json.loads(merged.stdout)["alerts"]}
    assert run("merge", str(early["id"]), str(early["id"])).exit_code == 2
    assert run("merge", str(early["id"]), "0").exit_code == 2
    split = run("split", str(early["id"]), *moved, "--json")
    assert split.exit_code == 0, split.output
    assert json.loads(split.stdout)["entity"]["value"] == "203.0.113.6"
    bad = run("split", str(early["id"]), "nope")
    assert bad.exit_code == 2 and "not alerts of incident" in bad.output
    ticked = run("task", str(later["id"]), "confirm-block", "--json")
    assert ticked.exit_code == 0 and json.loads(ticked.stdout)["checklist"]["done"] == 1
    assert run("task", str(later["id"]), "nope").exit_code == 2
    assert run("reopen", str(later["id"])).exit_code == 1  # open: nothing to reopen
    assert run("resolve", str(later["id"])).exit_code == 0
    reopened = run("reopen", str(later["id"]), "--note", "again", "--json")
    assert reopened.exit_code == 0 and json.loads(reopened.stdout)["state"] == "acknowledged"
    shown = run("show", str(later["id"])).output
    assert "SLA acknowledge: due" in shown and "observable ip 203.0.113.5" in shown
    assert re.search(r"✔ \S+ \S+ confirm-block:", shown) and "☐ report:" in shown


def test_alert_growing_after_resolution_reopens_its_incident(case):
    """The bug: an alert that kept growing after its incident was resolved was appended to the closed
    incident without a word. Now the incident is reopened (state new) with a note naming the alert."""
    svc = Incidents(case.store)
    latest = case.by_entity("203.0.113.5")[-1]
    svc.resolve(latest["id"], "li.na", "blocked")
    before = {i["id"] for i in svc.list()}
    case.feed(_lines("203.0.113.5", 55, first_second=20, n=6))  # the same burst goes on, 20 s later
    after = svc.show(latest["id"])
    assert after["state"] == "new"
    reopen = [n for n in after["notes"] if n["kind"] == "reopen"]
    assert len(reopen) == 1 and "grew after the incident was resolved" in reopen[0]["text"]
    assert {i["id"] for i in svc.list()} == before  # reopened, no new incident
    assert after["last"] > latest["last"]
    # an unchanged alert derived again (a restart) reopens nothing
    svc.resolve(latest["id"], "li.na", "blocked again")
    case.engine.incidents.add(_stored_alert(case, latest["id"]))
    assert svc.show(latest["id"])["state"] == "resolved"


def _stored_alert(case, incident_id):
    """The incident's newest alert as the detector holds it (re-adding it changes nothing)."""
    from secops.detect import Alert, RuleInfo
    a = case.store.incident_alerts(incident_id)[-1]
    alert = Alert(RuleInfo(a["rule"], "", a["title"], a["level"], a["tags"], "", None), {"source.ip": a["source.ip"]},
                  first=a["first"], last=a["last"], count=a["count"], evidence=a["evidence"])
    alert.id = a["id"]
    return alert


# ------------------------------------------------------------------ observables
def test_observables_cross_link_incidents(case):
    svc = Incidents(case.store)
    early, later = case.by_entity("203.0.113.5")
    other = case.by_entity("203.0.113.6")[0]
    shown = svc.show(early["id"])
    found = {(o["kind"], o["value"]): o["other_incidents"] for o in shown["observables"]}
    assert found[("ip", "203.0.113.5")] == [later["id"]]
    assert found[("user", "root")] == [later["id"]]
    assert found[("host", "web-1")] == sorted([later["id"], other["id"]], reverse=True)
    mine = {(o["kind"], o["value"]) for o in svc.show(other["id"])["observables"]}
    assert ("user", "admin") in mine and ("ip", "203.0.113.5") not in mine
    # they follow the alerts: after a merge the source incident shows none
    svc.merge(later["id"], [other["id"]], "zhang.wei")
    assert svc.show(other["id"])["observables"] == []
    assert ("user", "admin") in {(o["kind"], o["value"]) for o in svc.show(later["id"])["observables"]}


def test_observable_extraction_canonical_and_checked():
    pairs = observables([{"source.ip": "::ffff:203.0.113.9", "destination.ip": "not-an-ip", "user.name": " bob ",
                          "file.hash.sha256": "AB" * 32, "file.hash.md5": "xyz", "url.original": "/wp-login.php",
                          "related.ip": ["2001:db8::1", "2001:0db8::1"]}])
    assert pairs == {("ip", "203.0.113.9"), ("user", "bob"), ("hash", "ab" * 32), ("url", "/wp-login.php"),
                     ("ip", "2001:db8::1")}


# ------------------------------------------------------------------ response plans
def test_plan_checklist_ticked_with_who_and_when(case):
    svc = Incidents(case.store)
    iid = case.by_entity("203.0.113.6")[0]["id"]
    plan = svc.show(iid)["checklist"]
    assert plan["plan"] == "brute-force" and plan["name"]["zh"] == "暴力破解应急预案"
    assert plan["done"] == 0 and plan["total"] == len(plan["tasks"]) >= 3
    ticked = svc.task(iid, "confirm-block", "wang.fang")["checklist"]
    task = next(t for t in ticked["tasks"] if t["id"] == "confirm-block")
    assert task["done"] and task["by"] == "wang.fang" and task["at"] and ticked["done"] == 1
    undone = svc.task(iid, "confirm-block", "li.na", done=False)["checklist"]
    assert undone["done"] == 0
    with pytest.raises(InvalidInput, match="not in plan brute-force"):
        svc.task(iid, "no-such-task", "li.na")


def test_plans_cover_the_five_incident_types_and_are_schema_checked(tmp_path):
    assert {p.id for p in load_plans()} == {"brute-force", "web-attack", "malware", "data-leak", "availability-loss"}
    (tmp_path / "x.yaml").write_text("id: x\norder: 1\nname: {zh: a, en: b}\nmatch: {}\ntasks: []\n")
    with pytest.raises(CaseDataError, match="x.yaml"):
        load_plans(tmp_path)


# ------------------------------------------------------------------ the report
@pytest.mark.slow
def test_report_pdf_in_chinese_with_timeline(case, tmp_path):
    from typer.testing import CliRunner

    from govctl.cli import app
    iid = case.by_entity("203.0.113.6")[0]["id"]
    Incidents(case.store).ack(iid, "li.na", "核查中")
    runner = CliRunner()
    pdf = tmp_path / "r.pdf"
    out = runner.invoke(app, ["incidents", "report", str(iid), "--out", str(pdf), "--config", str(case.cfgfile)])
    assert out.exit_code == 0, out.output
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "网络安全事件处置报告" in text and "时间线" in text and "暴力破解应急预案" in text
    assert "new → acknowledged: 核查中" in text and "li.na" in text
    assert "Failed password for admin from 203.0.113.6" in text


def test_report_json_and_cli_errors(case, tmp_path):
    from typer.testing import CliRunner

    from govctl.cli import app
    iid = case.by_entity("203.0.113.6")[0]["id"]
    Incidents(case.store).ack(iid, "li.na")
    runner = CliRunner()
    out = tmp_path / "r.json"
    done = runner.invoke(app, ["incidents", "report", str(iid), "--json", "--out", str(out), "--config", str(case.cfgfile)])
    assert done.exit_code == 0, done.output
    doc = json.loads(out.read_text())
    assert doc["title"]["zh"] == "网络安全事件处置报告" and doc["incident"]["id"] == iid
    kinds = [e["kind"] for e in doc["timeline"]]
    assert kinds[0] == "alert" and "state" in kinds and "block" in kinds
    assert [e["time"] for e in doc["timeline"]] == sorted(e["time"] for e in doc["timeline"])
    assert {t["target"] for t in doc["sla"]["targets"]} == {"acknowledge", "contain", "resolve"}
    assert any("203.0.113.6" in line for e in doc["evidence"] for line in e["lines"])
    missing = runner.invoke(app, ["incidents", "report", "99999", "--out", str(out), "--config", str(case.cfgfile)])
    assert missing.exit_code == 2 and "99999" in missing.output


# ------------------------------------------------------------------ the API and who may do what
def test_api_cases_and_roles(case, tmp_path):
    tokens = Tokens(tmp_path / "tokens.yaml")
    h = {role: {"Authorization": f"Bearer {tokens.add(f'{role}-user', role)}"} for role in ("ops", "security", "auditor")}
    client = TestClient(create_app(case.store, tmp_path / "tokens.yaml"))
    early, later = case.by_entity("203.0.113.5")
    other = case.by_entity("203.0.113.6")[0]
    # auditor: reads SLA, report; cannot merge, split, reopen or tick tasks
    assert client.post(f"/incidents/{early['id']}/merge", headers=h["auditor"], json={"incidents": [other["id"]]}).status_code == 403
    assert client.post(f"/incidents/{early['id']}/merge", headers=h["ops"], json={"incidents": [other["id"]]}).status_code == 403
    assert client.post(f"/incidents/{early['id']}/reopen", headers=h["auditor"], json={}).status_code == 403
    assert client.post(f"/incidents/{early['id']}/split", headers=h["ops"], json={"alerts": [1]}).status_code == 403
    assert client.post(f"/incidents/{other['id']}/tasks/confirm-block", headers=h["auditor"], json={}).status_code == 403
    assert client.get("/sla", headers=h["auditor"]).status_code == 200
    report = client.get(f"/incidents/{other['id']}/report", params={"format": "json"}, headers=h["auditor"])
    assert report.status_code == 200 and report.json()["incident"]["id"] == other["id"]
    assert "attachment" in report.headers["content-disposition"]
    # ops ticks tasks; security merges and reopens
    ticked = client.post(f"/incidents/{other['id']}/tasks/confirm-block", headers=h["ops"], json={"done": True})
    assert ticked.status_code == 200 and ticked.json()["checklist"]["done"] == 1
    merged = client.post(f"/incidents/{early['id']}/merge", headers=h["security"], json={"incidents": [other["id"]]})
    assert merged.status_code == 200 and merged.json()["alerts"][-1]
    assert client.post(f"/incidents/{early['id']}/reopen", headers=h["security"], json={}).status_code == 409
    # bad input: 422 with a reason, never a 500
    assert client.post(f"/incidents/{early['id']}/merge", headers=h["security"], json={"incidents": []}).status_code == 422
    assert client.post(f"/incidents/{early['id']}/merge", headers=h["security"],
                       json={"incidents": [early["id"]]}).json()["detail"].endswith("into itself")
    assert client.post(f"/incidents/{early['id']}/split", headers=h["security"], json={"alerts": ["nope"]}).status_code == 422
    assert client.post(f"/incidents/{early['id']}/tasks/BAD!", headers=h["ops"], json={}).status_code == 422
    assert client.get(f"/incidents/{early['id']}/report", params={"format": "doc"}, headers=h["ops"]).status_code == 422
    assert client.get("/incidents/99999/report", headers=h["ops"]).status_code == 404
