"""Auditors' follow-up of a report (issue #19): remediation tracking carried from one report to the
next with overdue items flagged, waivers of host audit items until they expire, and stale evidence
flagged and kept from showing an item 符合. The saved lab evidence was collected on 2026-11-22."""
from __future__ import annotations

import datetime as dt
import json
import subprocess

import pytest

from core.errors import BadInput
from policies.compliance import COMPLIANT, MANUAL, NON_COMPLIANT, PARTIAL, freshness, remediation
from policies.compliance.assessment import Assessment, load as load_assessment
from policies.compliance.render import render, to_html

from .conftest import evaluate, item
from .test_diff import with_remote_admin
from tests.conftest import run_govctl

COLLECTED = dt.date(2026, 11, 22)
DEFAULT_LIMITS = freshness.load(freshness.DEFAULTS)


def tracked_report(layers, tracker, today):
    report = evaluate("djcp", layers, today=today)
    remediation.annotate(report, tracker, today)
    return report


# ---------------------------------------------------------------- remediation tracking
def test_overdue_follows_the_clock_and_the_status(tmp_path):
    tracker = remediation.load(tmp_path / "remediation.yaml")
    remediation.set_entry(tracker, "djcp", "CE-IA-C", owner="张工", due="2026-12-31", status=None,
                          link="https://git.example/fix/12", today=COLLECTED)
    remediation.set_entry(tracker, "djcp", "CN-TRANS-B", owner="网络组", due="2027-02-28", status="in-progress",
                          link=None, today=COLLECTED)
    tracker.save()
    tracker = remediation.load(tmp_path / "remediation.yaml")  # as written to disk
    assert [r["item"] for r in tracker.listing(dt.date(2026, 12, 31), overdue_only=True)] == []
    rows = tracker.listing(dt.date(2027, 1, 1))
    assert [(r["item"], r["overdue"]) for r in rows] == [("CE-IA-C", True), ("CN-TRANS-B", False)]
    assert rows[0]["status"] == "open" and rows[0]["owner"] == "张工" and rows[0]["link"] == "https://git.example/fix/12"
    assert [r["item"] for r in tracker.listing(dt.date(2027, 3, 1), overdue_only=True)] == ["CE-IA-C", "CN-TRANS-B"]
    # done or an accepted risk is never overdue
    remediation.set_entry(tracker, "djcp", "CE-IA-C", owner=None, due=None, status="done", link=None, today=COLLECTED)
    remediation.set_entry(tracker, "djcp", "CN-TRANS-B", owner=None, due=None, status="accepted-risk", link=None,
                          today=COLLECTED)
    assert tracker.listing(dt.date(2027, 3, 1), overdue_only=True) == []


def test_tracking_carries_over_to_the_next_report_and_is_flagged_there(tmp_path):
    tracker = remediation.load(tmp_path / "remediation.yaml")
    remediation.set_entry(tracker, "djcp", "CE-IA-C", owner="张工", due="2026-12-01", status=None, link="CHG-88",
                          today=COLLECTED)
    tracker.save()
    first = tracked_report(with_remote_admin(NON_COMPLIANT), remediation.load(tracker.path), dt.date(2026, 11, 23))
    finding = next(f for f in first["findings"] if f["id"] == "CE-IA-C")
    assert finding["tracking"]["owner"] == "张工" and finding["tracking"]["overdue"] is False
    assert "CE-IA-C" not in first["remediation_tracking"]["untracked"]
    assert "CN-TRANS-B" in first["remediation_tracking"]["untracked"]  # a failing item nobody owns yet
    # the next quarter's report reads the same entry; now past its due date it is flagged everywhere
    second = tracked_report(with_remote_admin(NON_COMPLIANT), remediation.load(tracker.path), dt.date(2026, 12, 2))
    assert item(second, "CE-IA-C")["tracking"]["overdue"] is True
    assert second["remediation_tracking"]["overdue"] == ["CE-IA-C"]
    html = to_html(second)
    assert "超期 overdue 1：CE-IA-C" in html and "负责人 张工，期限 2026-12-01（已超期 OVERDUE）" in html
    # once the item passes it is no finding and carries no tracking
    fixed = tracked_report(with_remote_admin(COMPLIANT), remediation.load(tracker.path), dt.date(2026, 11, 23))
    assert item(fixed, "CE-IA-C")["tracking"] is None and fixed["remediation_tracking"]["overdue"] == []


def test_overdue_items_are_notified_once_per_due_date(tmp_path):
    from notify.config import load_config
    from notify.engine import Notifier
    from notify.journal import Journal

    rows = [{"standard": "djcp", "item": "CE-IA-C", "owner": "张工", "due": "2026-12-01", "status": "open",
             "link": "CHG-88", "overdue": True},
            {"standard": "djcp", "item": "CN-TRANS-B", "owner": "网络组", "due": "2027-02-28", "status": "open",
             "overdue": False}]
    notifier = Notifier(load_config(), Journal(tmp_path / "notify.sqlite"))  # the bundled routes
    try:
        first = remediation.notify_overdue(rows, notifier)
        again = remediation.notify_overdue(rows, notifier)
        inbox = notifier.journal.inbox("审计员", "auditor")  # the console bell of an auditor
    finally:
        notifier.journal.close()
    assert [o["item"] for o in first] == ["djcp:CE-IA-C"]
    assert {c["status"] for c in first[0]["channels"]} == {"sent"}
    assert {c["status"] for c in again[0]["channels"]} == {"duplicate"}
    [note] = inbox["items"]
    assert note["kind"] == "remediation.overdue" and "djcp:CE-IA-C" in note["title"] and note["link"] == "CHG-88"
    assert "张工" in note["body"] and "2026-12-01" in note["body"]


@pytest.mark.slow  # eleven govctl runs
def test_bad_remediation_inputs_exit_2_and_say_what_to_do(tmp_path):
    env = {"GOVCTL_STATE": str(tmp_path)}
    cases = [
        (["set", "CE-IA-C", "--owner", "张工", "--due", "2026-13-01"], "--due '2026-13-01' is not a date"),
        (["set", "NO-SUCH-ITEM", "--owner", "张工", "--due", "2027-01-01"], "item 'NO-SUCH-ITEM' is not in any catalog"),
        (["set", "mlps-crypto:CE-IA-C", "--owner", "张工", "--due", "2027-01-01"], "not in the mlps-crypto catalog"),
        (["set", "CE-IA-C", "--owner", "张工", "--due", "2027-01-01", "--status", "closed"], "--status 'closed' is unknown"),
        (["set", "CE-IA-C", "--status", "open"], "give --owner and --due"),
        (["set", "CE-IA-C", "--owner", " ", "--due", "2027-01-01"], "--owner is empty"),
        (["list", "--as-of", "yesterday"], "--as-of 'yesterday' is not a date"),
    ]
    for args, message in cases:
        proc = run_govctl("comply", "remediation", *args, env=env)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in " ".join(proc.stderr.split()), (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "compliance" / "remediation.yaml").exists()  # nothing half-written
    # a set, then a broken file, which is refused naming the file rather than dropped
    proc = run_govctl("comply", "remediation", "set", "djcp:CE-IA-C", "--owner", "张工", "--due", "2026-12-01", env=env)
    assert proc.returncode == 0, proc.stderr
    proc = run_govctl("comply", "remediation", "list", "--overdue", "--json", "--as-of", "2026-12-02", "--no-notify",
                      env=env)
    assert [r["item"] for r in json.loads(proc.stdout)["items"]] == ["CE-IA-C"]
    path = tmp_path / "compliance" / "remediation.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("status: open", "status: finished"), encoding="utf-8")
    proc = run_govctl("comply", "remediation", "list", env=env)
    text = "".join(proc.stderr.split())
    assert proc.returncode == 2 and "compliance/remediation.yaml" in text and "'finished'isnotoneof" in text


# ---------------------------------------------------------------- waivers of host audit items
def host_waiver(expires: str, **extra) -> Assessment:
    return Assessment(waivers=[{"standard": "host", "item": "IA-REMOTE-ADMIN-SSH", "justification": "运维专网内经堡垒机审计的临时例外",
                                "approver": "李处长", "expires": expires, **extra}])


def test_a_waived_host_item_shows_as_waived_until_it_expires():
    layers = with_remote_admin(NON_COMPLIANT)
    waived = evaluate("djcp", layers, assessment=host_waiver("2026-12-31"), today=dt.date(2026, 12, 31))
    entry = item(waived, "CE-IA-C")
    host_evidence = next(e for e in entry["evidence"] if e["check"].startswith("host:"))
    assert "IA-REMOTE-ADMIN-SSH 已豁免" in host_evidence["detail"] and "运维专网内经堡垒机审计的临时例外" in host_evidence["detail"]
    assert "批准人 李处长，有效期至 2026-12-31" in host_evidence["detail"]
    # only the other (failing) host item decides now
    assert entry["verdict"] == NON_COMPLIANT and "IA-NO-CLEARTEXT-REMOTE：不符合" in host_evidence["detail"]
    expired = evaluate("djcp", layers, assessment=host_waiver("2026-12-31"), today=dt.date(2027, 1, 1))
    host_evidence = next(e for e in item(expired, "CE-IA-C")["evidence"] if e["check"].startswith("host:"))
    assert "IA-REMOTE-ADMIN-SSH：不符合" in host_evidence["detail"] and "豁免已于 2026-12-31 过期" in host_evidence["detail"]


def test_a_host_waiver_for_one_host_leaves_the_others_counted():
    layers = with_remote_admin(COMPLIANT)
    for name, host in layers["hosts"]["data"]["audit"]["hosts"].items():
        for i in host["items"]:
            if i["id"] == "IA-REMOTE-ADMIN-SSH" and name in ("web-1.prod", "db-1.prod"):
                i["verdict"] = NON_COMPLIANT
    before = item(evaluate("djcp", layers, today=COLLECTED), "CE-IA-C")
    assert before["verdict"] == PARTIAL
    one = item(evaluate("djcp", layers, assessment=host_waiver("2027-06-30", host="web-1.prod"), today=COLLECTED),
               "CE-IA-C")
    assert one["verdict"] == PARTIAL and "未通过 db-1.prod）" in one["evidence"][0]["detail"]
    assert "IA-REMOTE-ADMIN-SSH 已豁免（web-1.prod）" in one["evidence"][0]["detail"]
    both = host_waiver("2027-06-30", host="web-1.prod")
    both.waivers.append(dict(both.waivers[0], host="db-1.prod"))
    assert item(evaluate("djcp", layers, assessment=both, today=COLLECTED), "CE-IA-C")["verdict"] == COMPLIANT


def test_host_waivers_in_the_assessment_file_are_validated(tmp_path):
    known = {"djcp": {"CE-IA-C"}, "mlps-crypto": set(), "host": {"IA-REMOTE-ADMIN-SSH"}}
    path = tmp_path / "assessment.yaml"
    path.write_text("waivers:\n  - {standard: host, item: IA-REMOTE-ADMIN-SSH, host: web-1.prod, "
                    "justification: 临时例外五个字, approver: 李处长, expires: 2027-06-30}\n", encoding="utf-8")
    assert load_assessment(path, known).host_waivers()[0]["host"] == "web-1.prod"
    path.write_text("waivers:\n  - {standard: host, item: IA-NO-SUCH, justification: 临时例外五个字, approver: 李处长, "
                    "expires: 2027-06-30}\n  - {standard: djcp, item: CE-IA-C, host: web-1.prod, "
                    "justification: 临时例外五个字, approver: 李处长, expires: 2027-06-30}\n", encoding="utf-8")
    with pytest.raises(BadInput) as raised:
        load_assessment(path, known)
    assert "IA-NO-SUCH is not in the host catalog" in str(raised.value)
    assert "`host` applies to host-hardening items only" in str(raised.value)


# ---------------------------------------------------------------- freshness
def test_each_layer_shows_its_age_and_stale_evidence_cannot_show_compliance():
    layers = with_remote_admin(COMPLIANT)
    fresh = evaluate("djcp", layers, today=dt.date(2026, 11, 29), freshness_limits=DEFAULT_LIMITS)
    assert fresh["stale_layers"] == [] and fresh["evidence"]["hosts"]["age_days"] == 7
    assert item(fresh, "CE-IA-C")["verdict"] == COMPLIANT
    stale = evaluate("djcp", layers, today=dt.date(2026, 11, 30), freshness_limits=DEFAULT_LIMITS)
    assert stale["stale_layers"] == ["hosts"]  # host audit 7 days, the rest 30
    assert stale["evidence"]["hosts"] | {"stale": True, "age_days": 8, "max_age_days": 7} == stale["evidence"]["hosts"]
    assert stale["evidence"]["firewall"]["stale"] is False
    entry = item(stale, "CE-IA-C")
    assert entry["verdict"] == MANUAL and "证据已过期" in " ".join(entry["prompts"])
    assert all(entry["evidence"][k]["stale"] for k in entry["deciding"])
    # a failure found on stale evidence still stands
    failing = evaluate("djcp", with_remote_admin(NON_COMPLIANT), today=dt.date(2026, 11, 30),
                       freshness_limits=DEFAULT_LIMITS)
    assert item(failing, "CE-IA-C")["verdict"] == NON_COMPLIANT and item(failing, "CE-IA-C")["high_risk"]
    html = to_html(stale)
    assert "证据已过期 Stale evidence: hosts" in html and "已过期 stale（8 / 7 天 days）" in html


def test_freshness_limits_are_data_validated_by_their_schema(tmp_path):
    own = tmp_path / "freshness.yaml"
    own.write_text("default_days: 30\nlayers: {firewall: 1}\n", encoding="utf-8")
    limits = freshness.load(own)
    report = evaluate("djcp", with_remote_admin(COMPLIANT), today=dt.date(2026, 11, 24), freshness_limits=limits)
    assert report["stale_layers"] == ["firewall"] and item(report, "AB-ACL-C")["verdict"] == MANUAL
    for text, message in (("default_days: 0\n", "default_days"), ("default_days: 30\nlayers: {hostz: 3}\n", "hostz"),
                          ("default_days: [\n", "freshness")):
        own.write_text(text, encoding="utf-8")
        with pytest.raises(BadInput) as raised:
            freshness.load(own)
        assert message in str(raised.value)


@pytest.mark.slow  # two reports through the CLI
def test_report_cli_flags_stale_layers_and_overdue_items(tmp_path):
    from .conftest import FIXTURES

    env = {"GOVCTL_STATE": str(tmp_path)}
    assert run_govctl("comply", "remediation", "set", "CE-IA-C", "--owner", "张工", "--due", "2026-12-01",
                      env=env).returncode == 0
    out = tmp_path / "r.json"
    proc = run_govctl("comply", "report", "--standard", "djcp", "--format", "json", "--out", str(out),
                      "--evidence", str(FIXTURES), "--as-of", "2026-12-06", env=env)
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stderr.split())
    assert "stale evidence (older than its limit): hosts" in text and "overdue remediation: CE-IA-C" in text
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["stale_layers"] == ["hosts"] and report["remediation_tracking"]["overdue"] == ["CE-IA-C"]
    # the PDF an assessor reads says the same
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(render(report, "pdf"))
    text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout.split())
    assert "证据已过期 Stale evidence: hosts" in text and "已过期 stale（14 / 7 天 days）" in text
    assert "超期 overdue 1：CE-IA-C" in text and "（已超期 OVERDUE）" in text
    proc = run_govctl("comply", "report", "--standard", "djcp", "--evidence", str(FIXTURES), "--as-of", "12/06", env=env)
    assert proc.returncode == 2 and "--as-of '12/06' is not a date" in proc.stderr

