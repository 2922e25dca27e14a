"""Verdict logic: 符合 / 部分符合 / 不符合 / 不适用 / 需人工核查 from an item's task results."""
from __future__ import annotations

import pytest

from hardening import catalog
from hardening.runner import EventSink, _observations
from hardening.verdict import (COMPLIANT, MANUAL, NON_COMPLIANT, NOT_APPLICABLE, PARTIAL, TaskResult,
                                      host_fails, item_of, judge)

CONTROLS = {c.id: c for c in catalog.controls(3)}


def result(item: str, what: str, status: str, **res) -> TaskResult:
    return TaskResult(f"{item} | {what}", status, res)


def test_task_names_map_to_items():
    assert item_of("IA-SESSION-TIMEOUT | idle shells end") == ("IA-SESSION-TIMEOUT", False)
    assert item_of("AC-NO-REMOTE-ROOT | observe") == ("AC-NO-REMOTE-ROOT", True)
    assert item_of("Back up the files this run may change") is None


@pytest.mark.parametrize("statuses, check_mode, verdict", [
    (["ok", "ok"], True, COMPLIANT),
    (["changed", "changed"], True, NON_COMPLIANT),
    (["ok", "changed"], True, PARTIAL),
    (["changed", "changed"], False, COMPLIANT),  # harden: the change made it compliant
    (["skipped", "skipped"], True, NOT_APPLICABLE),
    (["ok", "skipped"], True, COMPLIANT),
    (["failed", "ok"], False, PARTIAL),
    (["failed"], True, NON_COMPLIANT),
])
def test_stock_module_results(statuses, check_mode, verdict):
    control = CONTROLS["IA-PASSWORD-COMPLEXITY"]
    results = [result(control.id, f"step {n}", s) for n, s in enumerate(statuses)]
    assert judge(control, results, check_mode).verdict == verdict


def test_govctl_modules_say_compliance_themselves():
    control = CONTROLS["IP-LISTENING-PORTS"]
    # a check-only item in harden mode: nothing changed, still not compliant
    bad = [result(control.id, "only the role's ports listen", "ok", compliant=False,
                  observed="unexpected port 8080", cmd="ss -ltnuH | …")]
    verdict = judge(control, bad, check_mode=False)
    assert verdict.verdict == NON_COMPLIANT
    assert "8080" in verdict.observed
    assert verdict.note.startswith("remediation:")
    assert host_fails([verdict])


def test_observed_value_comes_from_the_observation_and_evidence_lists_commands():
    control = CONTROLS["IA-SESSION-TIMEOUT"]
    results = [result(control.id, "observe", "ok", cmd="grep TMOUT /etc/profile.d", observed="TMOUT=600"),
               result(control.id, "idle shells end", "ok")]
    verdict = judge(control, results, check_mode=True).as_dict()
    assert verdict["verdict"] == COMPLIANT
    assert verdict["observed"] == "TMOUT=600"
    assert verdict["expected"] == "TMOUT = 600 s, readonly"
    assert verdict["clause"] == "GB/T 22239-2019 8.1.4.1 b)"
    assert verdict["test_ids"] == ["L3-CES1-02"]
    assert verdict["evidence"][0] == {"task": "IA-SESSION-TIMEOUT | observe", "status": "ok",
                                      "command": "grep TMOUT /etc/profile.d", "output": "TMOUT=600"}


def test_manual_items_need_a_person_and_say_what_to_look_at():
    control = CONTROLS["IA-MULTI-FACTOR"]
    verdict = judge(control, [result(control.id, "observe", "ok", observed="passwordauthentication yes")], True)
    assert verdict.verdict == MANUAL
    assert "bastion" in verdict.note
    assert verdict.observed == "passwordauthentication yes"
    assert not host_fails([verdict])


def test_an_automated_item_whose_check_did_not_run_goes_to_a_person():
    control = CONTROLS["AC-NO-REMOTE-ROOT"]
    verdict = judge(control, [], True, host_error="REFUSED: …")
    assert verdict.verdict == MANUAL
    assert "REFUSED" in verdict.note


def test_not_applicable_carries_the_reason():
    control = CONTROLS["AU-AUDIT-DAEMON"]
    verdict = judge(control, [result(control.id, "auditd runs", "skipped")], True)
    assert verdict.verdict == NOT_APPLICABLE
    assert "PID namespace" in verdict.note


def test_observe_script_output_splits_per_item():
    out = "##IA-SESSION-TIMEOUT## grep TMOUT x\nTMOUT=600\n\n##AC-NO-REMOTE-ROOT## sshd -T\npermitrootlogin no\n"
    parsed = {r.task: r.result for r in _observations(out)}
    assert parsed["IA-SESSION-TIMEOUT | observe"] == {"cmd": "grep TMOUT x", "observed": "TMOUT=600"}
    assert parsed["AC-NO-REMOTE-ROOT | observe"]["observed"] == "permitrootlogin no"


def event(kind: str, host: str, task: str, **res) -> dict:
    return {"event": kind, "event_data": {"host": host, "task": task, "res": res}}


def test_event_sink_reports_unreachable_and_refused_hosts_and_keeps_the_others():
    seen = []
    sink = EventSink(["a", "b", "c"], on_progress=lambda run: seen.append(run.name))
    sink(event("runner_on_ok", "a", "govctl_baseline : IA-SESSION-TIMEOUT | idle shells end", changed=True))
    sink(event("runner_on_unreachable", "b", "Gathering Facts", msg="ssh: connect to host b: No route"))
    sink(event("runner_on_failed", "c", "govctl_baseline : Preflight - refuse what would lock out the admin path",
               msg="REFUSED (nothing changed on this host): …"))
    assert sink.hosts["a"].status == "ok" and sink.hosts["a"].counts["changed"] == 1
    assert sink.hosts["a"].results[0].task == "IA-SESSION-TIMEOUT | idle shells end"
    assert sink.hosts["b"].status == "unreachable" and "No route" in sink.hosts["b"].message
    assert sink.hosts["c"].status == "refused"
    assert seen == ["a", "b", "c"]


def test_a_merged_loop_is_judged_as_the_separate_checks_its_elements_name():
    """items/files.yml runs many items' checks as one govctl_files call: each element's result is its own
    sub-check, consecutive elements of one check are one result, and the verdicts are those of
    separate tasks (one failing sub-check of two makes the item 部分符合, not 不符合). A failed element
    leaves the call ok (so the other files' handlers still run)."""
    def element(check: str, **res) -> dict:
        return {"item": {"id": check.split(" | ")[0], "check": check}, **res}
    elements = [
        element("IA-PASSWORD-COMPLEXITY | pwquality settings", changed=False),
        element("IA-PASSWORD-COMPLEXITY | pwquality settings", changed=True,
                diff=[{"before": "minlen = 8\n", "after": "minlen = 12\n"}]),
        element("IA-PASSWORD-COMPLEXITY | enforce for root too", changed=False),
        element("AC-DEFAULT-UMASK | UMASK in login.defs", failed=True, msg="Destination /etc/login.defs does not exist"),
        element("AU-AUDIT-POLICY | auditd.conf storage and record format", skipped=True),
    ]
    sink = EventSink(["a"])
    sink({"event": "runner_on_ok", "event_data": {
        "host": "a", "task": "govctl_baseline : sub-checks | files checked and fixed (govctl_files)", "ignore_errors": True,
        "res": {"changed": True, "failed_checks": 1, "msg": "5 checks, 1 failed", "results": elements}}})
    run = sink.hosts["a"]
    assert [(r.task, r.status) for r in run.results] == [
        ("IA-PASSWORD-COMPLEXITY | pwquality settings", "changed"),
        ("IA-PASSWORD-COMPLEXITY | enforce for root too", "ok"),
        ("AC-DEFAULT-UMASK | UMASK in login.defs", "failed"),
        ("AU-AUDIT-POLICY | auditd.conf storage and record format", "skipped")]
    assert run.status == "ok", "ignore_errors on the loop: a failed check fails its item, not the host"
    assert run.tasks_done == 4 and run.counts == {"ok": 1, "changed": 1, "failed": 1, "skipped": 1}
    pwquality = run.results[0]
    assert "+minlen = 12" in pwquality.evidence()["diff"]
    verdict = judge(CONTROLS["IA-PASSWORD-COMPLEXITY"], run.results[:2], check_mode=True)
    assert verdict.verdict == PARTIAL
    assert judge(CONTROLS["AC-DEFAULT-UMASK"], [run.results[2]], check_mode=True).verdict == NON_COMPLIANT
    assert "does not exist" in judge(CONTROLS["AC-DEFAULT-UMASK"], [run.results[2]], check_mode=True).observed
