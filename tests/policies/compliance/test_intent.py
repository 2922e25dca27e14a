"""Declared intent (issue 19): items a person had to judge are decided by comparing the collected
evidence with the customer's intent file — a matching and a mismatching case per check, hostile
intent and scan files, and the count of 等保 L3 items left to a person with the intent declared.

Evidence: the saved lab collection (fixtures/lab) with the host audit's real observations of the
compared items (fixtures/intent/observed.json, from a level-3 audit of the lab on 2026-12-06)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from core.errors import BadInput
from policies.compliance import MANUAL, NON_COMPLIANT, COMPLIANT, NOT_APPLICABLE, intent
from policies.compliance.collect import collect_intent

from .conftest import deciding_text, evaluate, fixture_layers, item

INTENT = Path(__file__).parent / "fixtures" / "intent"
OBSERVED = {k: v for k, v in json.loads((INTENT / "observed.json").read_text(encoding="utf-8")).items()
            if not k.startswith("_")}


def observed_layers(observed: dict[str, str] | None = None, hosts: dict[str, dict[str, str]] | None = None) -> dict:
    """The saved lab evidence with the audit's observations (per host overrides in `hosts`)."""
    layers = fixture_layers()
    for name, entry in layers["hosts"]["data"]["audit"]["hosts"].items():
        texts = {**OBSERVED, **(observed or {}), **(hosts or {}).get(name, {})}
        for result in entry["items"]:
            if result["id"] in texts:
                result["observed"] = texts[result["id"]]
    return layers


def intent_file(tmp_path: Path, change=None) -> Path:
    """A copy of the fixture intent (and its scan) in tmp_path, edited by `change(document)`."""
    import yaml

    document = yaml.safe_load((INTENT / "intent.yaml").read_text(encoding="utf-8"))
    if change:
        change(document)
    (tmp_path / "scan.example.csv").write_bytes((INTENT / "scan.example.csv").read_bytes())
    path = tmp_path / "intent.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def with_intent(layers: dict, path: Path) -> dict:
    layers["intent"] = collect_intent(path)
    return layers


def host_line(report: dict, item_id: str) -> str:
    return deciding_text(item(report, item_id))


# ---------------------------------------------------------------- nothing declared: unchanged, with a hint
def test_without_intent_the_items_stay_manual_and_say_what_to_declare():
    layers = observed_layers()
    report = evaluate("djcp", layers)
    entry = item(report, "CE-AC-C")
    assert entry["verdict"] == MANUAL
    assert "账户名册" in " ".join(entry["prompts"])
    assert item(report, "AB-PROT-D")["verdict"] == MANUAL
    assert "absent" in " ".join(item(report, "AB-PROT-D")["prompts"])


def test_the_default_intent_file_absent_is_an_unavailable_layer(tmp_path, monkeypatch):
    monkeypatch.setattr(intent, "default_path", lambda: tmp_path / "intent.yaml")
    doc = collect_intent()
    assert doc["status"] == "unavailable" and "intent.example.yaml" in doc["prompt"]["zh"]


# ---------------------------------------------------------------- account roster (CE-AC-C)
def test_accounts_on_the_roster_are_compliant(tmp_path):
    def roster_with_postgres_everywhere(d):
        d["roles"]["common"]["accounts"].append({"name": "postgres", "owner": "数据库服务", "duty": "service"})
    report = evaluate("djcp", with_intent(observed_layers(), intent_file(tmp_path, roster_with_postgres_everywhere)))
    assert "AC-ACCOUNT-REVIEW：符合（9 台）" in host_line(report, "CE-AC-C")
    assert "web-1.prod：4 个可登录账户均在名册中" in host_line(report, "CE-AC-C")


def test_an_account_off_the_roster_is_named(tmp_path):
    report = evaluate("djcp", with_intent(observed_layers(), intent_file(tmp_path)))
    entry = item(report, "CE-AC-C")
    assert entry["verdict"] in (NON_COMPLIANT, "部分符合")
    text = host_line(report, "CE-AC-C")
    assert "web-1.prod：名册外的可登录账户 postgres" in text      # postgres is on the roster of databases only
    assert "db-1.prod：名册外" not in text


def test_an_expired_account_still_usable_is_named(tmp_path):
    def ops_expired(d):
        d["roles"]["common"]["accounts"][2]["expires"] = "2026-01-01"
        d["roles"]["common"]["accounts"].append({"name": "postgres", "owner": "数据库服务", "duty": "service"})
    layers = observed_layers({"AC-ACCOUNT-REVIEW": "root L 2026-12-06 0:/bin/bash\nops P 2026-12-06 1000:/bin/bash\n"})
    report = evaluate("djcp", with_intent(layers, intent_file(tmp_path, ops_expired)))
    assert "已过期仍可用的账户 ops" in host_line(report, "CE-AC-C")


# ---------------------------------------------------------------- sudo policy (CE-AC-E)
def test_sudo_rules_within_the_policy_are_compliant_and_the_policy_is_approved(tmp_path):
    def lab_rules(d):
        d["roles"]["common"]["sudo"] = ["root ALL=(ALL:ALL) ALL", "%sudo ALL=(ALL:ALL) ALL", "ops  ALL=(ALL) NOPASSWD: ALL"]
    report = evaluate("djcp", with_intent(observed_layers(), intent_file(tmp_path, lab_rules)))
    entry = item(report, "CE-AC-E")
    assert entry["verdict"] == COMPLIANT
    assert "3 条 sudo 规则均在批准的策略内" in " ".join(e["detail"] for e in entry["evidence"])
    assert "由 李处长 于 2026-12-01 批准" in " ".join(e["detail"] for e in entry["evidence"])


def test_a_sudo_rule_outside_the_policy_is_named(tmp_path):
    report = evaluate("djcp", with_intent(observed_layers(), intent_file(tmp_path)))
    entry = item(report, "CE-AC-E")
    assert entry["verdict"] in (NON_COMPLIANT, "部分符合")
    assert "未经批准的 sudo 规则 ops ALL=(ALL) NOPASSWD: ALL" in host_line(report, "CE-AC-E")


# ---------------------------------------------------------------- package allow-list (CE-IP-A)
def _with_packages(layers: dict, installed: dict[str, dict[str, str]]) -> dict:
    for host, entry in layers["platform"]["data"]["hosts"].items():
        entry["installed"] = installed.get(host, installed["*"])
    return layers


BASE = {"bash": "required", "coreutils": "required", "openssh-server": "optional", "libc6": "optional"}


def test_packages_on_the_allow_list_are_compliant(tmp_path):
    layers = _with_packages(observed_layers(), {"*": BASE, "web-1.prod": {**BASE, "nginx": "optional"},
                                                "db-1.prod": {**BASE, "postgresql-15": "optional"}})
    report = evaluate("djcp", with_intent(layers, intent_file(tmp_path)))
    assert item(report, "CE-IP-A")["verdict"] == COMPLIANT
    assert "web-1.prod：5 个软件包均在白名单内" in " ".join(e["detail"] for e in item(report, "CE-IP-A")["evidence"])


def test_a_package_off_the_allow_list_is_named(tmp_path):
    layers = _with_packages(observed_layers(), {"*": BASE, "web-1.prod": {**BASE, "gcc-12": "optional", "nmap": "extra"}})
    report = evaluate("djcp", with_intent(layers, intent_file(tmp_path)))
    assert item(report, "CE-IP-A")["verdict"] in (NON_COMPLIANT, "部分符合")
    assert "web-1.prod：白名单外的软件包 2 个：gcc-12, nmap" in host_line(report, "CE-IP-A")


def test_without_package_lists_the_item_stays_manual(tmp_path):
    report = evaluate("djcp", with_intent(observed_layers(), intent_file(tmp_path)))
    assert "没有已安装软件包清单" in " ".join(e["detail"] for e in item(report, "CE-IP-A")["evidence"])


# ---------------------------------------------------------------- bastion second factor and management source
MFA_BASTION = ("usepam yes\npubkeyauthentication yes\npasswordauthentication no\n"
               "authenticationmethods publickey,keyboard-interactive\n")
KEYS_ONLY = "usepam yes\npubkeyauthentication yes\npasswordauthentication no\nauthenticationmethods publickey\n"
FROM_MGMT = "listenaddress 0.0.0.0:22\nallowusers ops@10.11.4.0/24 ops@10.12.4.0/24\n"
BASTIONS = ("bastion-1.prod", "bastion-1.samecity", "bastion-1.remote")


def test_second_factor_on_the_bastion_and_keys_from_the_management_zone_are_compliant(tmp_path):
    layers = observed_layers({"IA-MULTI-FACTOR": KEYS_ONLY, "IP-MANAGEMENT-SOURCE": FROM_MGMT},
                             {b: {"IA-MULTI-FACTOR": MFA_BASTION} for b in BASTIONS})
    report = evaluate("djcp", with_intent(layers, intent_file(tmp_path)))
    text = host_line(report, "CE-IA-D") + " ".join(e["detail"] for e in item(report, "CE-IA-D")["evidence"])
    assert "IA-MULTI-FACTOR：符合（9 台）" in text
    assert "bastion-1.prod（堡垒机）：sshd 要求 publickey,keyboard-interactive，第二因素 totp" in text
    entry = item(report, "CE-IP-C")
    assert entry["verdict"] == COMPLIANT
    assert "sshd 只接受管理网段" in " ".join(e["detail"] for e in entry["evidence"])


def test_a_bastion_without_second_factor_and_open_ssh_are_named(tmp_path):
    report = evaluate("djcp", with_intent(observed_layers(), intent_file(tmp_path)))
    text = " ".join(e["detail"] for e in item(report, "CE-IA-D")["evidence"])
    assert "bastion-1.prod（堡垒机）：sshd AuthenticationMethods 为 any，预期 publickey,keyboard-interactive" in text
    assert "web-1.prod：sshd 仍接受口令登录" in text
    entry = item(report, "CE-IP-C")
    assert entry["verdict"] == "部分符合"       # the allowlist passes, the hosts' sshd admits every source
    assert "sshd 未限制来源" in host_line(report, "CE-IP-C")


def test_a_source_outside_the_management_networks_is_named(tmp_path):
    layers = observed_layers({"IP-MANAGEMENT-SOURCE": "allowusers ops@10.11.4.0/24 ops@10.0.0.0/8\n"})
    report = evaluate("djcp", with_intent(layers, intent_file(tmp_path)))
    assert "sshd 允许管理网段之外的来源 ops@10.0.0.0/8" in host_line(report, "CE-IP-C")


# ---------------------------------------------------------------- security labels
def test_declared_apparmor_enforcing_is_compliant_and_its_absence_is_named(tmp_path):
    good = evaluate("djcp", with_intent(observed_layers({"AC-SECURITY-LABELS": "Yes\napparmor enabled\n"}), intent_file(tmp_path)))
    assert item(good, "CE-AC-G")["verdict"] == COMPLIANT
    bad = evaluate("djcp", with_intent(observed_layers(), intent_file(tmp_path)))
    assert item(bad, "CE-AC-G")["verdict"] == NON_COMPLIANT
    assert "预期 apparmor 强制执行，实际 no SELinux or AppArmor enforcing" in host_line(bad, "CE-AC-G")


# ---------------------------------------------------------------- patching and the scan import
def test_a_scan_without_overdue_high_findings_is_compliant_with_the_accepted_risk_named(tmp_path):
    report = evaluate("djcp", with_intent(observed_layers(), intent_file(tmp_path)))
    entry = item(report, "CE-IP-E")
    assert entry["verdict"] == COMPLIANT
    text = " ".join(e["detail"] for e in entry["evidence"])
    assert "db-1.prod：扫描 2026-11-20 发现 1 项、未修复 1 项" in text and "已接受风险 CVE-2024-0001（批准人 李处长" in text
    assert item(report, "MC-CEN-E")["verdict"] == COMPLIANT


def test_an_overdue_high_finding_without_accepted_risk_is_named(tmp_path):
    report = evaluate("djcp", with_intent(observed_layers(), intent_file(tmp_path, lambda d: d.pop("accepted_risks"))))
    assert item(report, "CE-IP-E")["verdict"] == "部分符合"
    assert "db-1.prod：超过 30 天未修补的高危漏洞 CVE-2024-0001（high，2026-10-01 发现）" in host_line(report, "CE-IP-E")


def test_an_old_scan_or_a_host_it_missed_is_named(tmp_path):
    old = evaluate("djcp", with_intent(observed_layers(), intent_file(
        tmp_path, lambda d: d["vulnerability_scan"].update(scanned="2026-09-01"))))
    assert item(old, "CE-IP-E")["verdict"] == NON_COMPLIANT
    assert "漏洞扫描 2026-09-01 已 82 天，超过 30 天" in host_line(old, "CE-IP-E")
    (tmp_path / "partial").mkdir()
    path = intent_file(tmp_path / "partial")
    (tmp_path / "partial" / "scan.example.csv").write_text(
        "host,vulnerability,severity,first_seen,status\nweb-1.prod,NONE,info,2026-11-20,fixed\n", encoding="utf-8")
    missed = evaluate("djcp", with_intent(observed_layers(), path))
    assert "db-1.prod：漏洞扫描（scan.example.csv，2026-11-20）未覆盖本主机" in host_line(missed, "CE-IP-E")


# ---------------------------------------------------------------- declared absent: wireless, mail
def test_declared_absent_wireless_and_mail_decide_the_items(tmp_path):
    report = evaluate("djcp", with_intent(observed_layers(), intent_file(tmp_path)))
    assert item(report, "AB-PROT-D")["verdict"] == COMPLIANT
    assert item(report, "AB-MAL-B")["verdict"] == NOT_APPLICABLE


def test_a_declaration_the_stack_contradicts_is_non_compliant(tmp_path):
    layers = observed_layers()
    outputs = layers["stack"]["data"]["outputs"]
    outputs["hosts"][0]["roles"] = ["mail"]
    next(iter(next(iter(outputs["centers"].values()))["zones"].values()))["kind"] = "wireless_access"
    report = evaluate("djcp", with_intent(layers, intent_file(tmp_path)))
    assert item(report, "AB-MAL-B")["verdict"] == NON_COMPLIANT
    assert "预期声明没有邮件系统，但栈中有邮件主机：web-1.prod" in deciding_text(item(report, "AB-MAL-B"))
    assert "但栈中有无线区域：wireless_access" in deciding_text(item(report, "AB-PROT-D"))


def test_a_truncated_observation_is_not_judged(tmp_path):
    long_roster = "".join(f"user{i} P 2026-12-06 {1000 + i}:/bin/bash\n" for i in range(40))
    report = evaluate("djcp", with_intent(observed_layers({"AC-ACCOUNT-REVIEW": long_roster}), intent_file(tmp_path)))
    assert item(report, "CE-AC-C")["verdict"] == MANUAL
    assert "被截断" in " ".join(e["detail"] for e in item(report, "CE-AC-C")["evidence"])


# ---------------------------------------------------------------- hostile intent and scan files
@pytest.mark.parametrize("change, field", [
    (lambda d: d.update(colour="blue"), "colour"),
    (lambda d: d["roles"]["common"]["accounts"][0].update(owner=7), "roles.common.accounts.0.owner"),
    (lambda d: d["roles"]["web"].update(packages="nginx"), "roles.web.packages"),
    (lambda d: d["bastion"].update(second_factor="sms"), "bastion.second_factor"),
    (lambda d: d["bastion"].update(management_networks=["10.11.4.0/33"]), "bastion.management_networks.0"),
    (lambda d: d["patching"].update(max_days_high="30"), "patching.max_days_high"),
    (lambda d: d["roles"]["common"]["accounts"].append(dict(d["roles"]["common"]["accounts"][0])), "roles.common.accounts"),
    (lambda d: d["vulnerability_scan"].update(path="missing.csv"), "vulnerability_scan.path"),
    (lambda d: d.pop("approved_by"), "approved_by"),
])
def test_a_hostile_intent_file_is_refused_naming_the_file_and_field(tmp_path, change, field):
    path = intent_file(tmp_path, change)
    with pytest.raises(BadInput) as refused:
        collect_intent(path)
    assert str(path) in str(refused.value) and field in str(refused.value)


@pytest.mark.parametrize("content, expected", [
    (b"host,vulnerability,severity\nweb-1.prod,X,high\n", "line 1 lacks the column(s) first_seen, status"),
    (b"host,vulnerability,severity,first_seen,status\nweb-1.prod,X,urgent,2026-11-01,open\n", "line 2: severity 'urgent'"),
    (b"host,vulnerability,severity,first_seen,status\nweb-1.prod,X,high,yesterday,open\n", "line 2: first_seen 'yesterday'"),
    (b"host,vulnerability,severity,first_seen,status\nweb-1.prod,X,high,2026-11-01,maybe\n", "status 'maybe'"),
    (b"host,vulnerability,severity,first_seen,status\n\xff\xfe,X\n", "not UTF-8 at byte 46"),
    (b"host,vulnerability,severity,first_seen,status\n,X,high,2026-11-01,open\n", "line 2: host and vulnerability must not be empty"),
])
def test_a_hostile_scan_is_refused_naming_the_file_and_line(tmp_path, content, expected):
    path = intent_file(tmp_path)
    (tmp_path / "scan.example.csv").write_bytes(content)
    with pytest.raises(BadInput) as refused:
        collect_intent(path)
    assert "scan.example.csv" in str(refused.value) and expected in str(refused.value)


def test_the_example_intent_file_is_valid():
    doc = intent.evidence(Path(__file__).parents[3] / "policies" / "intent.example.yaml")
    assert doc["intent"]["bastion"]["second_factor"] == "totp" and len(doc["scan_findings"]) == 2


# ---------------------------------------------------------------- the count (issue 19's goal)
def test_items_left_to_a_person_with_the_intent_declared(tmp_path):
    """The 等保 L3 report of the saved lab evidence: items 需人工核查 without and with the intent."""
    before = evaluate("djcp", observed_layers())
    after = evaluate("djcp", with_intent(observed_layers(), intent_file(tmp_path)))
    left = sorted(i["id"] for i in after["items"] if i["verdict"] == MANUAL)
    decided = sorted(i["id"] for i in before["items"] if i["verdict"] == MANUAL and i["id"] not in left)
    assert before["counts"][MANUAL] == 46
    assert decided == ["AB-MAL-B", "AB-PROT-D", "CE-AC-C", "CE-AC-E", "CE-AC-G", "CE-AU-D", "CE-IP-C", "CE-IP-E",
                       "MC-AUD-A", "MC-CEN-E", "MC-SEC-A"]
    assert after["counts"][MANUAL] == 35
    # what still waits for a person: 9 items only because this saved collection had no monitoring or
    # SecOps running, CE-IP-A for want of the hosts' package lists (the live lab's platform layer has
    # them), and 25 whose prompts ask for documents or platform facts no intent answers
    waiting_for_services = {"AB-IPS-B", "AB-IPS-D", "MC-AUD-B", "MC-CEN-C", "MC-CEN-F", "CL-AB-IPS-A",
                            "CL-AB-IPS-D", "CL-MC-C", "CL-MC-D"}
    assert waiting_for_services <= set(left)
    assert len(set(left) - waiting_for_services - {"CE-IP-A"}) == 25


# ---------------------------------------------------------------- separation of duties, audit process protection
def test_three_duties_held_by_different_people_are_compliant(tmp_path):
    report = evaluate("djcp", with_intent(observed_layers(), intent_file(tmp_path)))
    for item_id in ("MC-AUD-A", "MC-SEC-A"):
        entry = item(report, item_id)
        assert entry["verdict"] == COMPLIANT, item_id
        assert "audit auditor；security secadm，三类职责由不同人员持有" in " ".join(e["detail"] for e in entry["evidence"])


def test_one_person_holding_two_duties_or_no_auditor_is_named(tmp_path):
    def merged(d):
        d["roles"]["common"]["accounts"][3]["owner"] = "运维 王工"        # auditor held by the system admin
        d["roles"]["common"]["accounts"].pop(4)                           # and no security administrator
    report = evaluate("djcp", with_intent(observed_layers(), intent_file(tmp_path, merged)))
    text = deciding_text(item(report, "MC-AUD-A"))
    assert item(report, "MC-AUD-A")["verdict"] == "部分符合"          # the audit log itself passes
    assert "名册中没有 security 管理员" in text and "一人兼任 运维 王工（audit/system）" in text


def test_audit_control_only_for_root_and_the_auditor_is_compliant(tmp_path):
    rules = "root\tALL=(ALL:ALL) ALL\nauditor ALL=(root) /sbin/auditctl\nops ALL=(root) /usr/bin/systemctl restart nginx\n"
    report = evaluate("djcp", with_intent(observed_layers({"AC-LEAST-PRIVILEGE": rules}), intent_file(tmp_path)))
    text = " ".join(e["detail"] for e in item(report, "CE-AU-D")["evidence"])
    assert "AU-PROCESS-PROTECTION：符合（9 台）" in text
    assert "只有 root 与审计管理员（auditor）能经 sudo 控制审计进程" in text


def test_anyone_else_able_to_stop_audit_is_named(tmp_path):
    report = evaluate("djcp", with_intent(observed_layers(), intent_file(tmp_path)))
    assert item(report, "CE-AU-D")["verdict"] == NON_COMPLIANT
    assert "审计管理员之外可停止或修改审计的 sudo 主体 %sudo（组成员未知）, ops" in host_line(report, "CE-AU-D")


@pytest.mark.parametrize("text, expected", [
    ("- approved_by: x\n", "(document)"),
    ("", "intent file"),
    ("approved_by: a\napproved_by: b\napproved_on: 2026-12-01\nroles: {common: {}}\n", "approved_by"),
    ("approved_by: a\napproved_on: 2026-13-01\nroles: {common: {}}\n", "intent.yaml:2: not valid YAML"),
    ("approved_by: a\napproved_on: '2026-13-01'\nroles: {common: {}}\n", "approved_on"),
])
def test_an_intent_file_that_is_not_a_valid_mapping_is_refused(tmp_path, text, expected):
    path = tmp_path / "intent.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BadInput) as refused:
        collect_intent(path)
    assert str(path) in str(refused.value) and expected in str(refused.value)


def test_a_scan_with_nul_bytes_or_a_huge_field_is_refused_not_a_traceback(tmp_path):
    path = intent_file(tmp_path)
    for content in (b"host,vulnerability,severity,first_seen,status\nweb\x00,X,high,2026-11-01,open\n",
                    b"host,vulnerability,severity,first_seen,status\n\"" + b"a" * 200_000 + b"\",X,high,2026-11-01,open\n"):
        (tmp_path / "scan.example.csv").write_bytes(content)
        with pytest.raises(BadInput) as refused:
            collect_intent(path)
        assert "scan.example.csv" in str(refused.value) and "line" in str(refused.value)


def test_comply_collect_refuses_a_broken_intent_file_before_collecting(isolated_state, tmp_path):
    from tests.conftest import run_govctl

    state = Path(isolated_state["GOVCTL_STATE"])
    (state / "compliance").mkdir()
    (state / "compliance" / "intent.yaml").write_text(
        "approved_by: 李处长\napproved_on: 2026-12-01\nroles: {common: {sudo: root ALL}}\n", encoding="utf-8")
    proc = run_govctl("comply", "collect", "--stack", "lab", "--out", str(tmp_path / "ev"), env=isolated_state, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "intent.yaml" in proc.stderr and "roles.common.sudo" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "ev").exists()
