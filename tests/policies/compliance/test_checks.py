"""Each layer's checks against the saved lab evidence, and against changed copies of it (what a
broken stack, firewall, host, monitor, SecOps, keystore or drill history would report)."""
from __future__ import annotations

import pytest

from policies.compliance import COMPLIANT, MANUAL, NON_COMPLIANT, NOT_APPLICABLE, PARTIAL
from policies.compliance.checks import host_verdicts

from .conftest import deciding_text, evaluate, item


def test_lab_evidence_gives_the_expected_verdicts(layers):
    r = evaluate("djcp", layers)
    assert len(r["items"]) == 110 and sum(r["counts"].values()) == 110
    assert item(r, "CN-ARCH-E")["verdict"] == COMPLIANT          # primary+standby links, sync standby, pack rule
    assert item(r, "AB-ACL-A")["verdict"] == COMPLIANT           # default drop + pack mgmt-port rules
    assert item(r, "AB-ACL-C")["verdict"] == COMPLIANT
    assert item(r, "CE-BAK-C")["verdict"] == COMPLIANT           # drills measured RPO 0, GB/T 20988 level 6
    conf = item(r, "CE-CONF-A")
    assert conf["verdict"] == NON_COMPLIANT and conf["high_risk"] and "http://10.250.0.80" in deciding_text(conf)
    assert any(f["id"] == "CE-CONF-A" and f["high_risk"] for f in r["findings"])
    assert r["findings"][0]["high_risk"]                          # high-risk findings first


def test_stack_links_without_standby_fail_naming_the_pair(layers):
    links = layers["stack"]["data"]["outputs"]["links"]
    del links["prod-remote-b"]
    r = evaluate("djcp", layers)
    e = item(r, "CN-ARCH-E")
    assert e["verdict"] == PARTIAL and "prod–remote" in deciding_text(e)


def test_stack_without_synchronous_standby_fails(layers):
    for standby in layers["stack"]["data"]["outputs"]["databases"]["standbys"]:
        standby["mode"] = "asynchronous"
    e = item(evaluate("djcp", layers), "CE-BAK-C")
    assert e["verdict"] == PARTIAL and "没有同步备库" in deciding_text(e)


def test_https_everywhere_passes_transport_encryption(layers):
    out = layers["stack"]["data"]["outputs"]
    out["service"]["url"] = "https://10.250.0.80/"
    for web in out["web"].values():
        web["url"] = web["url"].replace("http://", "https://")
    assert item(evaluate("djcp", layers), "CE-CONF-A")["verdict"] == COMPLIANT


def test_firewall_accepting_by_default_is_a_high_risk_finding(layers):
    for center in layers["firewall"]["data"]["centers"].values():
        for o in center["ruleset"]:
            if "chain" in o:
                o["chain"]["policy"] = "accept"
    r = evaluate("djcp", layers)
    e = item(r, "AB-ACL-A")
    assert e["verdict"] == PARTIAL and "forward 链策略 ['accept']" in deciding_text(e)
    assert item(r, "AB-PROT-A")["verdict"] == PARTIAL


def test_firewall_unreadable_is_manual_with_prompt(layers):
    layers["firewall"] = {"layer": "firewall", "status": "unavailable", "collected": "2026-11-22T00:00:00+00:00",
                          "prompt": {"zh": "无法读取边界防火墙规则：附上防火墙策略导出。", "en": "x"}}
    e = item(evaluate("djcp", layers), "AB-ACL-C")
    assert e["verdict"] == MANUAL and e["prompts"] == ["无法读取边界防火墙规则：附上防火墙策略导出。"]


def test_hosts_mixed_results_are_partial_and_name_the_failing_hosts(layers):
    e = item(evaluate("djcp", layers), "CE-IA-A")
    assert e["verdict"] == PARTIAL and "web-1.prod" in deciding_text(e) and e["remediation"]
    for host in layers["hosts"]["data"]["audit"]["hosts"].values():
        for i in host["items"]:
            if i["id"] in ("IA-ACCOUNT-UNIQUE", "IA-PASSWORD-COMPLEXITY", "IA-PASSWORD-AGING"):
                i["verdict"] = COMPLIANT
    assert item(evaluate("djcp", layers), "CE-IA-A")["verdict"] == COMPLIANT


def test_host_audit_shapes():
    one = {"id": "IA-ACCOUNT-UNIQUE", "verdict": COMPLIANT}
    for shape in ({"hosts": {"h1": {"items": [one]}}}, {"hosts": [{"host": "h1", "items": [one]}]}, {"h1": [one]}):
        assert host_verdicts(shape) == {"h1": {"IA-ACCOUNT-UNIQUE": one}}


def test_missing_host_layer_is_manual_never_a_crash(layers):
    del layers["hosts"]
    r = evaluate("djcp", layers)
    e = item(r, "CE-IA-A")
    assert e["verdict"] == MANUAL and "govctl comply collect" in e["prompts"][0]


def test_monitoring_not_running_then_running_with_slo(layers):
    e = item(evaluate("djcp", layers), "MC-CEN-C")
    assert e["verdict"] == MANUAL and "govctl monitor up" in " ".join(e["prompts"])
    data = layers["monitoring"]["data"]
    data["status"] = {"processes": {"prometheus": {"running": True}, "alertmanager": {"running": True}},
                      "targets": [{"health": "up"}, {"health": "up"}]}
    rows = [{"service": "gov-portal", "center": c, "availability": a, "met": a * 100 >= 99.95}
            for c, a in (("prod", 1.0), ("samecity", 0.9999))]
    data["availability"] = {"from": "2026-10-23T00:00:00Z", "to": "2026-11-22T00:00:00Z", "rows": rows}
    assert item(evaluate("djcp", layers), "MC-CEN-C")["verdict"] == COMPLIANT
    rows[1].update(availability=0.999, met=False)
    e = item(evaluate("djcp", layers), "MC-CEN-C")
    assert e["verdict"] == PARTIAL and "gov-portal@samecity=99.900%" in deciding_text(e)


def test_secops_rules_retention_and_sources(layers):
    r = evaluate("djcp", layers)
    assert item(r, "AB-IPS-A")["verdict"] == COMPLIANT            # rules tagged 8.1.3.3, sets, interception
    assert item(r, "MC-CEN-D")["verdict"] == PARTIAL              # pack: the lab declares no audit trail
    data = layers["secops"]["data"]
    data["config"]["retention_days"] = 90
    e = item(evaluate("djcp", layers), "AB-AUD-C")
    assert e["verdict"] == PARTIAL and "90 天" in deciding_text(e)   # the signed audit log still passes
    data["config_file"] = "/etc/secops.yaml"
    data["config"]["sources"] = [{"name": "auth", "format": "syslog"}]
    data["config"]["retention_days"] = 180
    assert "auth(syslog)" in deciding_text(item(evaluate("djcp", layers), "CL-MC-C"))


def test_secops_rules_without_the_clause_tag_fail(layers):
    for rule in layers["secops"]["data"]["rules"]:
        rule["tags"] = [t for t in rule["tags"] if t != "djcp.l3-8.1.3.3"]
    e = item(evaluate("djcp", layers), "AB-IPS-A")
    assert e["verdict"] == PARTIAL and "没有标注 8.1.3.3" in deciding_text(e)


def test_crypto_keystore_lifecycle_and_audit_log(layers):
    r = evaluate("mlps-crypto", layers)
    assert item(r, "KM-STORAGE")["verdict"] == COMPLIANT
    assert item(r, "KM-ROTATION")["verdict"] == COMPLIANT
    assert item(r, "DC-LOG-INTEGRITY")["verdict"] == COMPLIANT
    crypto = layers["crypto"]["data"]
    crypto["suite"] = {"name": "intl", "hash": "sha256", "aead": "aes-256-gcm", "signature": "ecdsa-p256"}
    crypto["audit_log"]["ok"] = False
    crypto["audit_log"]["problems"] = ["checkpoint #1: signature does not verify"]
    crypto["collected"] = "2028-01-01T00:00:00+00:00"              # keys now older than a year
    r = evaluate("mlps-crypto", layers)
    assert item(r, "KM-ALGORITHMS")["verdict"] == PARTIAL and "不是国家核准" in deciding_text(item(r, "KM-ALGORITHMS"))
    assert item(r, "DC-LOG-INTEGRITY")["verdict"] == NON_COMPLIANT
    assert "超期未更新" in deciding_text(item(r, "KM-ROTATION"))


def test_crypto_without_keystore_is_manual_with_prompt(layers):
    layers["crypto"]["data"]["keystore"] = {"error": "no keystore", "prompt": {"zh": "没有 govctl 密钥库：建立密钥。", "en": "x"}}
    e = item(evaluate("mlps-crypto", layers), "KM-STORAGE")
    assert e["verdict"] == MANUAL and e["prompts"] == ["没有 govctl 密钥库：建立密钥。"]


def test_drills_missing_or_failed(layers):
    reports = layers["drills"]["data"]["reports"]
    for r in reports:
        if r["verdict"] == "pass":
            r["verdict"] = "fail"
    assert item(evaluate("djcp", layers), "CE-BAK-A")["verdict"] == NON_COMPLIANT
    layers["drills"]["data"]["reports"] = []
    e = item(evaluate("djcp", layers), "CE-BAK-A")
    assert e["verdict"] == MANUAL and "govctl drill run" in e["prompts"][0]


def test_no_mail_system_makes_spam_protection_not_applicable(layers):
    e = item(evaluate("djcp", layers), "AB-MAL-B")
    assert any(x["verdict"] == NOT_APPLICABLE and "没有邮件系统" in x["detail"] for x in e["evidence"])


@pytest.mark.parametrize("standard", ["djcp", "mlps-crypto"])
def test_every_layer_missing_still_reports(standard):
    r = evaluate(standard, {})
    assert r["counts"][MANUAL] + r["counts"][NOT_APPLICABLE] == len(r["items"])
    assert r["estimate"]["score"] is None


def test_platform_without_root_of_trust_or_anti_malware(layers):
    r = evaluate("djcp", layers)
    trust = item(r, "CE-TRUST-A")
    assert trust["verdict"] == NON_COMPLIANT and "TPM/TCM 设备：无" in deciding_text(trust)
    malware = item(r, "CE-MAL-A")
    assert malware["verdict"] == NON_COMPLIANT and malware["high_risk"] and "0/9 台主机" in deciding_text(malware)
    hosts = layers["platform"]["data"]["hosts"]
    for name in list(hosts)[:4]:
        hosts[name]["anti_malware"] = ["clamav-daemon"]
    layers["platform"]["data"].update(tpm_devices=["tpm0"], uefi=True, secure_boot=True)
    r = evaluate("djcp", layers)
    assert item(r, "CE-MAL-A")["verdict"] == PARTIAL and not item(r, "CE-MAL-A")["high_risk"]
    assert item(r, "CE-TRUST-A")["verdict"] == MANUAL             # platform passes; the host item is a person's


def test_unreachable_host_leaves_a_passing_item_open(layers):
    hosts = layers["hosts"]["data"]["audit"]["hosts"]
    for host in hosts.values():
        for i in host["items"]:
            if i["id"] == "IP-LISTENING-PORTS":
                i["verdict"] = COMPLIANT
    hosts["db-1.prod"] = {"status": "unreachable", "message": "ssh: connection refused", "items": []}
    e = item(evaluate("djcp", layers), "CE-IP-A")
    assert e["verdict"] == MANUAL and "db-1.prod（ssh: connection refused）" in " ".join(x["detail"] for x in e["evidence"])


def test_availability_with_insufficient_coverage_is_never_counted_as_met(layers):
    """Issue #19: a 30-day report measured over minutes leaves MC-CEN-C to a person, never 符合."""
    data = layers["monitoring"]["data"]
    data["status"] = {"processes": {"prometheus": {"running": True}, "alertmanager": {"running": True}},
                      "targets": [{"health": "up"}, {"health": "up"}]}
    thin = {"availability": 1.0, "met": False, "verdict": "insufficient_data", "coverage": 105 / 518_401,
            "measured_steps": 105, "expected_steps": 518_401}
    rows = [{"service": "gov-portal", "center": c, **thin} for c in ("prod", "samecity")]
    data["availability"] = {"from": "2026-11-06T00:00:00Z", "to": "2026-12-06T00:00:00Z",
                            "min_coverage": 0.95, "rows": rows}
    e = item(evaluate("djcp", layers), "MC-CEN-C")
    assert e["verdict"] == MANUAL
    assert "数据不足" in deciding_text(e) and "gov-portal@prod 覆盖率 0.02%" in deciding_text(e)
    rows[0].update(verdict="met", met=True, coverage=1.0)   # one center fully measured and met
    assert item(evaluate("djcp", layers), "MC-CEN-C")["verdict"] == MANUAL
    rows[1].update(availability=0.999, verdict="not_met")   # a measured failure still decides
    e = item(evaluate("djcp", layers), "MC-CEN-C")
    assert e["verdict"] == PARTIAL and "gov-portal@samecity=99.900%" in deciding_text(e)
