"""Every collector against the running lab (slow tier, root): `govctl comply collect` once, auditing
one host of each role's kind only (the full 9-host audit takes 2-4 min on the shared machine), then
each layer's evidence and a report made from it."""
from __future__ import annotations

import json

import pytest

from tests.conftest import run_govctl

pytestmark = [pytest.mark.slow, pytest.mark.root]


@pytest.fixture(scope="module")
def collected(lab, tmp_path_factory):
    out = tmp_path_factory.mktemp("evidence")
    proc = run_govctl("comply", "collect", "--stack", "lab", "--out", str(out), "--host-limit", "web-1.prod",
                      "--json", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    status = json.loads(proc.stdout)
    layers = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in out.glob("*.json")}
    return out, status, layers


def test_every_layer_is_collected_or_says_what_to_do(collected):
    _, status, layers = collected
    assert set(status) == {"stack", "firewall", "platform", "hosts", "monitoring", "secops", "crypto", "drills", "intent",
                           "documents"}
    for name, s in status.items():
        assert s["status"] == "ok" or s["prompt"], name


def test_stack_and_pack_evidence_match_the_lab(collected, lab):
    stack = collected[2]["stack"]
    assert stack["status"] == "ok"
    assert stack["data"]["outputs"]["centers"].keys() == lab["centers"].keys()
    results = stack["data"]["pack"]["results"]
    assert results["djcp-redundant-inter-center-links"]["passed"]
    assert results["djcp-database-ha-two-zones"]["passed"]


def test_firewalls_are_read_live_from_every_center(collected, lab):
    fw = collected[2]["firewall"]
    assert fw["status"] == "ok" and set(fw["data"]["centers"]) == set(lab["centers"])
    for center in fw["data"]["centers"].values():
        chains = [o["chain"] for o in center["ruleset"] if "chain" in o]
        assert any(c.get("hook") == "forward" and c.get("policy") == "drop" for c in chains)


def test_platform_reads_every_host_package_list(collected, lab):
    platform = collected[2]["platform"]
    assert platform["status"] == "ok"
    hosts = platform["data"]["hosts"]
    assert set(hosts) == {h["fqdn"] for h in lab["hosts"]}
    assert all(h["packages"] > 50 for h in hosts.values())       # a Debian root filesystem, read via PID 1
    # the names and dpkg priorities the intent's package allow-list is compared with (issue 19)
    assert all(len(h["installed"]) == h["packages"] and h["installed"].get("bash") == "required" for h in hosts.values())


def test_hosts_are_audited_by_the_hardening_audit(collected, lab):
    hosts = collected[2]["hosts"]
    assert hosts["status"] == "ok", hosts.get("error")
    audited = hosts["data"]["audit"]["hosts"]
    assert set(audited) == {"web-1.prod"} and "--limit web-1.prod" in hosts["source"]
    for name, host in audited.items():
        summary = {k: v for k, v in host.items() if k != "items"}
        assert any(i["id"] == "IA-REMOTE-ADMIN-SSH" for i in host.get("items", [])), (name, summary)


def test_monitoring_secops_crypto_and_drills_layers(collected):
    layers = collected[2]
    mon = layers["monitoring"]["data"]
    assert mon["slo_spec"]["objective"] >= 99.95
    assert mon["status"].get("processes") or "govctl monitor up" in mon["status"]["prompt"]["zh"]
    sec = layers["secops"]["data"]
    assert sec["config"]["retention_days"] >= 180 and len(sec["rules"]) >= 10
    assert layers["crypto"]["data"]["suite"]["name"] in ("gm", "intl")
    drills = layers["drills"]
    assert drills["status"] == "ok" or "govctl drill run" in drills["prompt"]["zh"]


def test_lab_report_from_the_collected_evidence(collected, tmp_path):
    out = tmp_path / "djcp.json"
    proc = run_govctl("comply", "report", "--standard", "djcp", "--level", "3", "--format", "json", "--out", str(out),
                      "--evidence", str(collected[0]))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    by_id = {i["id"]: i for i in report["items"]}
    assert by_id["CN-ARCH-E"]["verdict"] == "符合"        # the lab's primary/standby links and sync standby
    assert by_id["AB-ACL-D"]["verdict"] == "符合"         # its firewalls filter by connection state
    assert by_id["CE-CONF-A"]["verdict"] == "不符合"      # its services speak plain HTTP
    assert {e["layer"] for i in report["items"] for e in i["evidence"]} >= {"stack", "firewall", "hosts", "secops", "crypto", "drills"}
