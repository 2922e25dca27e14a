"""Against the lab: audit → expected failures, lockout refusal, harden → every automated level-3 item
符合, harden again → 0 changed, SSH still works, rollback → the pristine files, harden --check → diffs only.

The tests run in file order on one host (bastion-1.remote, off the service path) and leave it as they
found it: rolled back to the lab's pristine files.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from govctl.commands import _hardening_view as rep
from hardening.runner import baseline
from hardening.verdict import COMPLIANT, MANUAL, NON_COMPLIANT, NOT_APPLICABLE, PARTIAL
from infra.lab.rootfs import base_path
from infra.outputs import StackOutputs
from tests.conftest import run_govctl

pytestmark = [pytest.mark.slow, pytest.mark.root]

HOST = "bastion-1.remote"
PRISTINE = ["etc/ssh/sshd_config", "etc/login.defs", "etc/security/pwquality.conf", "etc/security/faillock.conf",
            "etc/pam.d/common-auth", "etc/pam.d/common-account", "etc/logrotate.d/rsyslog", "etc/rsyslog.conf",
            "etc/audit/auditd.conf"]
CREATED = ["etc/profile.d/govctl-tmout.sh", "etc/rsyslog.d/90-govctl-forward.conf",
           "etc/sysctl.d/90-govctl-baseline.conf", "etc/govctl/services/rsyslog.json", "etc/aide/aide.conf",
           "etc/cron.daily/govctl-aide", "etc/cron.daily/govctl-rootkit-scan"]
EXPECTED_FAILURES = {"IA-PASSWORD-COMPLEXITY", "IA-PASSWORD-AGING", "IA-LOGIN-FAILURE-LOCKOUT", "IA-SESSION-TIMEOUT",
                     "IA-REMOTE-ADMIN-SSH", "AC-NO-REMOTE-ROOT", "AC-DEFAULT-UMASK", "AU-AUDIT-POLICY",
                     "AU-REMOTE-LOGGING"}


def host_root(lab: dict) -> Path:
    host = next(h for h in lab["hosts"] if h["fqdn"] == HOST)
    return Path(f"/proc/{int((Path(host['folder']) / 'init.pid').read_text())}/root")


def assert_pristine(lab: dict) -> None:
    root, base = host_root(lab), base_path()
    for rel in PRISTINE:
        assert (root / rel).read_bytes() == (base / rel).read_bytes(), f"{rel} differs from the lab's original"
    for rel in CREATED:
        assert not (root / rel).exists(), f"{rel} was left behind"


def ssh_sudo_works(lab: dict) -> bool:
    proc = subprocess.run(["ssh", "-F", lab["ssh"]["config"], "-o", "ControlPath=none", HOST, "sudo", "-n", "true"],
                          capture_output=True, timeout=60)
    return proc.returncode == 0


def items(report: dict) -> dict:
    return {i["id"]: i for i in report["hosts"][HOST]["items"]}


FRESH_LOGIN = "Access path check - a fresh SSH login and sudo still work"


def task_outcome(report: dict, task: str) -> str:
    """How a plumbing task ended on HOST (ok, skipped, …), read from the run's kept result events."""
    for path in Path(report["artifacts"]).rglob("job_events/*.json"):
        event = json.loads(path.read_text())
        data = event.get("event_data") or {}
        if data.get("host") == HOST and data.get("task") == task and event["event"].startswith("runner_on_"):
            return event["event"].removeprefix("runner_on_")
    return "not run"


def govctl_json(*args: str) -> tuple[int, dict]:
    proc = run_govctl(*args, "--json", timeout=600)
    assert proc.stdout.strip(), proc.stderr[-3000:]
    return proc.returncode, json.loads(proc.stdout)


def test_1_start_from_the_pristine_host(lab):
    """Roll back every hardening a previous run left (each rollback restores one backup)."""
    for _ in range(5):
        proc = run_govctl("harden", "--rollback", HOST, "--json", timeout=300)
        if proc.returncode != 0:
            assert "no backup to restore" in proc.stdout + proc.stderr
            break
    # a rollback restores files, not the file-integrity baseline a previous harden made
    (host_root(lab) / "var/lib/aide/govctl-aide.db").unlink(missing_ok=True)
    assert_pristine(lab)


def test_2_audit_fails_the_expected_items_and_reports_the_unreachable_host(lab):
    ghost = dict(next(h for h in lab["hosts"] if h["fqdn"] == HOST), fqdn="ghost.remote", name="ghost")
    outputs = {**lab, "hosts": lab["hosts"] + [ghost]}
    report = baseline("audit", 3, f"{HOST},ghost.remote", check=True, outputs=StackOutputs.from_dict(outputs))
    assert report["unreachable"] == ["ghost.remote"]
    assert report["hosts"][HOST]["status"] == "ok"
    verdicts = {k: v["verdict"] for k, v in items(report).items()}
    failing = {k for k, v in verdicts.items() if v == NON_COMPLIANT}
    assert EXPECTED_FAILURES <= failing, verdicts
    # 部分符合 when an earlier harden left the running values (a rollback restores files, not /proc/sys)
    assert verdicts["IP-NETWORK-STACK"] in (NON_COMPLIANT, PARTIAL)
    assert verdicts["IA-NO-CLEARTEXT-REMOTE"] == COMPLIANT
    assert verdicts["IP-LISTENING-PORTS"] == COMPLIANT
    # the tools are in the lab's image, their configuration is not: installed yet not met (AIDE's
    # folders, which its package alone does not create, exist only after an earlier harden)
    assert verdicts["IP-FILE-INTEGRITY"] in (NON_COMPLIANT, PARTIAL)
    assert "cannot access '/var/lib/aide/govctl-aide.db'" in items(report)["IP-FILE-INTEGRITY"]["observed"]
    assert verdicts["MC-ROOTKIT-SCAN"] == PARTIAL
    assert verdicts["AU-AUDIT-DAEMON"] == NOT_APPLICABLE  # the kernel refuses audit in the lab's PID namespaces
    assert verdicts["IA-MULTI-FACTOR"] == MANUAL and items(report)["IA-MULTI-FACTOR"]["note"]
    root_login = items(report)["AC-NO-REMOTE-ROOT"]
    assert root_login["observed"] == "permitrootlogin without-password"
    assert root_login["expected"] == "PermitRootLogin no"
    assert root_login["clause"] == "GB/T 22239-2019 8.1.4.2 b)" and root_login["test_ids"] == ["L3-CES1-06"]
    assert any("sshd -T" in e["command"] for e in root_login["evidence"])
    assert rep.exit_code(report) == 1
    assert_pristine(lab)  # audit is read only


def test_3_a_setting_that_would_shut_out_the_admin_is_refused_with_nothing_changed(lab):
    report = baseline("harden", 3, HOST, check=False, outputs=StackOutputs.from_dict(lab),
                      extravars={"govctl_item_params": {"IA-REMOTE-ADMIN-SSH": {"allow_users": ["auditor"]}}})
    host = report["hosts"][HOST]
    assert host["status"] == "refused"
    assert "AllowUsers auditor would shut out ops" in host["message"]
    assert host["changed_tasks"] == 0
    assert rep.exit_code(report) == 1
    assert_pristine(lab)


def test_4_harden_meets_every_automated_level3_item(lab):
    code, report = govctl_json("harden", "--level", "3", "--limit", HOST)
    assert code == 0, report["hosts"][HOST]["message"]
    host = report["hosts"][HOST]
    assert host["changed_tasks"] > 0
    assert "/etc/ssh/sshd_config" in host["backup"]["files"]
    assert task_outcome(report, FRESH_LOGIN) == "ok", "sshd and PAM changed: the access path is proven afresh"
    for item in host["items"]:
        if item["automation"] != "manual":
            assert item["verdict"] in (COMPLIANT, NOT_APPLICABLE), item
    assert ssh_sudo_works(lab)


def test_5_harden_again_changes_nothing(lab):
    code, report = govctl_json("harden", "--level", "3", "--limit", HOST)
    assert code == 0
    assert report["hosts"][HOST]["changed_tasks"] == 0
    assert report["hosts"][HOST]["backup"]["files"] == []
    assert task_outcome(report, FRESH_LOGIN) == "not run", "no backed-up file changed: nothing to prove again"


def test_6_ssh_works_and_the_audit_is_clean(lab):
    assert ssh_sudo_works(lab)
    code, report = govctl_json("audit", "--level", "3", "--limit", HOST)
    assert code == 0
    verdicts = {k: v["verdict"] for k, v in items(report).items()}
    automated = [i for i in items(report).values() if i["automation"] != "manual"]
    assert all(i["verdict"] == COMPLIANT for i in automated if i["id"] != "AU-AUDIT-DAEMON"), verdicts
    assert items(report)["AC-NO-REMOTE-ROOT"]["observed"] == "permitrootlogin no"


def test_6b_a_change_harden_did_not_make_is_caught_and_not_accepted(lab):
    """File integrity: an unapproved change fails the audit with the file named, and harden refuses to
    re-baseline it; once a person accepts it (the documented `aide --init`), the host is compliant again."""
    planted = host_root(lab) / "etc/cron.d/govctl-test-planted"
    try:
        planted.write_text("* * * * * root /tmp/x\n")
        code, report = govctl_json("audit", "--level", "3", "--limit", HOST)
        integrity = items(report)["IP-FILE-INTEGRITY"]
        assert code == 1 and integrity["verdict"] == PARTIAL, integrity  # installed and scheduled, yet changed
        assert any("/etc/cron.d/govctl-test-planted" in e["output"] for e in integrity["evidence"])
        code, report = govctl_json("harden", "--level", "3", "--limit", HOST)
        integrity = items(report)["IP-FILE-INTEGRITY"]
        assert code == 1 and integrity["verdict"] != COMPLIANT
        assert any("did not make" in e["output"] for e in integrity["evidence"]), integrity["evidence"]
    finally:
        planted.unlink(missing_ok=True)
    host = next(h for h in lab["hosts"] if h["fqdn"] == HOST)
    pid = (Path(host["folder"]) / "init.pid").read_text().strip()
    subprocess.run(["nsenter", "-t", pid, "-a", "-r", "-w", "sh", "-c",
                    "aide --config=/etc/aide/aide.conf --init >/dev/null && "
                    "mv /var/lib/aide/govctl-aide.db.new /var/lib/aide/govctl-aide.db"], check=True)
    code, report = govctl_json("audit", "--level", "3", "--limit", HOST)
    assert code == 0 and items(report)["IP-FILE-INTEGRITY"]["verdict"] == COMPLIANT


def test_7_rollback_restores_the_files(lab):
    code, result = govctl_json("harden", "--rollback", HOST)
    assert code == 0
    assert "restored /etc/ssh/sshd_config" in result["restored"]
    assert "removed /etc/profile.d/govctl-tmout.sh" in result["restored"]
    assert_pristine(lab)
    assert ssh_sudo_works(lab)


def test_8_harden_check_shows_the_diffs_and_changes_nothing(lab):
    proc = run_govctl("harden", "--check", "--limit", HOST, timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]  # the items it would fix are not met yet
    assert "PermitRootLogin no" in proc.stdout
    assert "minclass = 3" in proc.stdout
    assert_pristine(lab)


def test_9_rpm_family_branches_run_in_check_mode(lab):
    """The authselect/rpm branches run end to end in check mode (forced on a Debian host: nothing changes).

    Kylin's variables stand for the RPM family: RedHat.yml and openEuler.yml hold the same settings
    (tests/hardening/test_inventory.py checks the files agree)."""
    family = "Kylin"
    report = baseline("harden", 3, HOST, check=True, outputs=StackOutputs.from_dict(lab), extravars={"govctl_os_override": family})
    host = report["hosts"][HOST]
    assert host["status"] == "ok", host["message"]
    commands = " ".join(e["command"] for i in host["items"] for e in i["evidence"])
    assert "authselect" in commands and "/etc/pam.d/system-auth" in commands and "rpm -q" in commands
    assert_pristine(lab)
