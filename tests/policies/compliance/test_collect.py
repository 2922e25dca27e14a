"""Collectors on real parts that run without the lab: the crypto keystore and audit log, the SecOps
configuration, rules and incident store, drill reports, the CrossGuard pack; and what each says
when its layer is absent (status unavailable with a prompt, never an exception)."""
from __future__ import annotations

import json
import time

from infra.outputs import StackOutputs
from policies.compliance import collect

from .conftest import write_json


def test_crypto_collector_reads_keystore_lifecycle_and_verifies_the_audit_log(crypto_state):
    from crypto import audit
    from crypto.audit import open_keystore

    ks = open_keystore()
    ks.create_key("backups")
    ks.rotate("backups")
    audit.checkpoint(ks)
    doc = collect.collect_crypto()
    assert doc["status"] == "ok"
    data = doc["data"]
    assert data["suite"]["name"] == "gm" and data["suite"]["signature"] == "sm2"
    assert {k["name"] for k in data["keystore"]["keys"]} == {"backups", "audit"}
    assert data["lifecycle"]["key.rotate"] == 1 and data["lifecycle"]["key.generate"] == 2
    assert data["audit_log"]["ok"] and data["audit_log"]["signed_size"] == data["audit_log"]["entries"]
    assert "material" not in json.dumps(data)                     # metadata only, never key material
    # tampering with the log is caught by the collector's verification
    entries = crypto_state / "audit" / "entries.jsonl"
    entries.write_text(entries.read_text().replace("backups", "backupz", 1))
    from crypto.audit import AuditLog

    AuditLog._open_logs.clear()
    assert collect.collect_crypto()["data"]["audit_log"]["ok"] is False


def test_crypto_collector_without_keystore_or_locked(crypto_state, monkeypatch):
    data = collect.collect_crypto()["data"]
    assert "no keystore" in data["keystore"]["error"] and "govctl crypto keys create" in data["keystore"]["prompt"]["zh"]
    from crypto.audit import open_keystore

    open_keystore().create_key("k")
    monkeypatch.delenv("GOVCTL_CRYPTO_PASSPHRASE")
    data = collect.collect_crypto()["data"]
    assert "GOVCTL_CRYPTO_PASSPHRASE_FILE" in data["keystore"]["prompt"]["zh"]


def test_secops_collector_counts_incidents_and_stale_ones(tmp_path, monkeypatch):
    from secops import config as secops_config
    from secops.store import Store

    store_path = tmp_path / "secops.db"
    Store(store_path).close()
    import sqlite3

    db = sqlite3.connect(store_path)
    now = time.time()
    rows = [("address", "203.0.113.9", "ssh brute force", "high", "new", now - 10 * 86400),
            ("address", "203.0.113.10", "scan", "low", "resolved", now - 10 * 86400),
            ("user", "alice", "sudo", "medium", "acknowledged", now - 3600)]
    for kind, entity, title, severity, state, t in rows:
        db.execute("INSERT INTO incidents(entity_kind, entity, title, severity, state, created, updated, first, last)"
                   " VALUES (?,?,?,?,?,?,?,?,?)", (kind, entity, title, severity, state, t, t, t, t))
    db.commit()
    db.close()
    config = tmp_path / "config.yaml"
    config.write_text(f"store: {store_path}\nretention_days: 200\nsources:\n  - {{name: auth, path: /var/log/auth.log, format: syslog}}\n")
    monkeypatch.setattr(secops_config, "DEFAULT_CONFIG_PATH", config)
    doc = collect.collect_secops()
    data = doc["data"]
    assert data["config_file"] == str(config) and data["config"]["retention_days"] == 200
    assert data["store"]["incidents"] == {"new": 1, "resolved": 1, "acknowledged": 1}
    assert data["store"]["stale_open"] == 1
    assert any("djcp.l3-8.1.3.3" in r["tags"] for r in data["rules"])
    assert any(r["correlation"] for r in data["rules"])
    assert {"@timestamp", "user.name", "event.outcome"} <= set(data["ecs_fields"])


def test_drills_collector(tmp_path, monkeypatch):
    from core import paths

    monkeypatch.setattr(paths, "STATE", tmp_path)
    assert collect.collect_drills()["status"] == "unavailable"
    reports = tmp_path / "drills" / "reports"
    reports.mkdir(parents=True)
    write_json(reports / "r1.json", {"scenario": "site-loss", "verdict": "pass", "dry_run": False, "ended": 1.0,
                                     "measured": {"rto_seconds": 3.1}, "gbt20988": {"level": 6}, "steps": [1, 2]})
    doc = collect.collect_drills()
    assert doc["status"] == "ok"
    (summary,) = doc["data"]["reports"]
    assert summary["scenario"] == "site-loss" and summary["gbt20988"] == {"level": 6} and "steps" not in summary


def test_hosts_collector_reads_a_saved_audit(tmp_path):
    saved = write_json(tmp_path / "audit.json", {"hosts": {"web-1.prod": {"items": [{"id": "IA-ACCOUNT-UNIQUE", "verdict": "符合"}]}}})
    doc = collect.collect_hosts("lab", saved)
    assert doc["status"] == "ok" and doc["source"] == str(saved)


def test_firewall_collector_unreachable_namespace_is_unavailable():
    outputs = {"centers": {"x": {"role": "production", "firewall": {
        "namespace": "gl-no-such-ns", "family": "inet", "table": "govctl",
        "sets": {"ipv4": "blocked_v4", "ipv6": "blocked_v6"}}}}}
    doc = collect.collect_firewall(StackOutputs.from_dict(outputs))
    assert doc["status"] == "unavailable" and "附上防火墙策略导出" in doc["prompt"]["zh"]
    assert collect.collect_firewall(None)["status"] == "unavailable"


def test_pack_results_use_exported_policy_facts():
    from core.paths import ROOT
    from infra.topology import load_topology

    topo = load_topology(ROOT / "tests" / "policies" / "djcp_pack" / "topologies" / "broken-lab.yaml").to_dict()
    results = collect.pack_results(StackOutputs.from_dict(
        {"policy_facts": {"topology": topo, "audit": {"enabled": True, "retention_days": 30}}}))
    assert results["source"] == "stack outputs policy_facts"
    failed = {k for k, v in results["results"].items() if not v["passed"]}
    assert {"djcp-redundant-inter-center-links", "djcp-audit-trail-retention"} <= failed
    assert "30" in " ".join(results["results"]["djcp-audit-trail-retention"]["violations"])


def test_saved_evidence_round_trips_and_bad_directories_are_refused(tmp_path):
    import pytest

    from core.errors import BadInput

    layers = {"drills": collect.unavailable("drills", "x", "无", "none")}
    collect.save(layers, tmp_path / "ev")
    assert collect.load(tmp_path / "ev") == json.loads(json.dumps(layers))
    with pytest.raises(BadInput, match="is not a directory"):
        collect.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="holds none of"):
        collect.load(tmp_path / "empty")


def test_stack_collector_survives_a_broken_pack(monkeypatch):
    def broken(outputs):
        raise ImportError("policies.djcp_pack is not installed")

    monkeypatch.setattr(collect, "stack_outputs", lambda stack: StackOutputs.from_dict({"centers": {}, "topology": "lab"}))
    monkeypatch.setattr(collect, "pack_results", broken)
    doc = collect.collect_stack("lab")
    assert doc["status"] == "ok" and "ImportError" in doc["data"]["pack"]["error"]
    from policies.compliance.checks import Evidence, pack_outcome, Missing
    import pytest

    with pytest.raises(Missing) as missing:
        pack_outcome(Evidence({"stack": doc}), ("djcp-remote-dr-center",))
    assert "策略包" in missing.value.zh


def test_unknown_stack_is_unavailable_with_a_prompt():
    doc = collect.collect_stack("no-such-stack")
    assert doc["status"] == "unavailable" and "govctl lab up" in doc["prompt"]["zh"]


def test_platform_evidence_is_the_lab_only():
    doc = collect.collect_platform(StackOutputs.from_dict({"backend": "alicloud", "hosts": []}))
    assert doc["status"] == "unavailable" and "云服务商" in doc["prompt"]["zh"]
    doc = collect.collect_platform(StackOutputs.from_dict({"backend": "lab", "hosts": [{
        "name": "x", "fqdn": "x.prod", "center": "prod", "zone": "dmz", "zone_kind": "internet_dmz",
        "roles": [], "ipv4": "10.11.1.10", "folder": "/nonexistent"}]}))
    assert doc["status"] == "ok" and "error" in doc["data"]["hosts"]["x.prod"]
