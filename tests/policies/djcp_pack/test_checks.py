"""Every rule of the 等保 pack has a passing and a failing case, on resource-like dicts."""
from __future__ import annotations

import copy

import pytest

from infra.plan import COMPUTED
from infra.topology import DEFAULT_TOPOLOGY, load_topology
from policies.djcp_pack import checks
from policies.djcp_pack.checks import CHECKS, STACK_TYPE, evaluate, label, load_rules

SETTINGS, RULES = load_rules()
BY_ID = {r.id: r for r in RULES}


def res(type_, props, name="r"):
    return {"type": type_, "name": name, "urn": f"urn:{name}", "props": props}


def stack(topology=None, audit=None, extra=()):
    facts = {}
    if topology is not None:
        facts["topology"] = topology
    if audit is not None:
        facts["audit"] = audit
    return [res(STACK_TYPE, {"policy_facts": facts, "topology": "lab"}, "stack"), *extra]


@pytest.fixture
def lab():
    return copy.deepcopy(load_topology(DEFAULT_TOPOLOGY).to_dict())


def messages(rule_id, subject):
    rule = BY_ID[rule_id]
    found = rule.check(subject, SETTINGS)
    return [v if isinstance(v, str) else v.message for v in found]


def test_rules_data_and_functions_match_and_carry_clauses():
    assert {r.id for r in RULES} == set(CHECKS)
    for rule in RULES:
        assert rule.clause.startswith("8.1.") and "GB/T 22239-2019" in label(rule)


def test_rules_file_errors_are_named(tmp_path):
    bad = tmp_path / "rules.yaml"
    bad.write_text((checks.HERE / "rules.yaml").read_text().replace('clause: "8.1.2.1 e)"', 'clause: "e"'))
    with pytest.raises(checks.RulesError, match=r"rules\.9\.clause"):
        load_rules.__wrapped__(bad)


# -- djcp-mgmt-ports-closed-to-world ----------------------------------------------------------
@pytest.mark.parametrize("resource", [
    res("alicloud:ecs/securityGroupRule:SecurityGroupRule",
        {"type": "ingress", "ipProtocol": "tcp", "portRange": "22/22", "cidrIp": "0.0.0.0/0"}),
    res("alicloud:ecs/securityGroupRule:SecurityGroupRule",
        {"type": "ingress", "ipProtocol": "all", "portRange": "-1/-1", "ipv6CidrIp": "::/0"}),
    res("openstack:networking/secGroupRule:SecGroupRule",
        {"direction": "ingress", "protocol": "tcp", "portRangeMin": 3300, "portRangeMax": 3400,
         "remoteIpPrefix": "0.0.0.0/0"}),
    res("openstack:networking/secGroupRule:SecGroupRule", {"direction": "ingress", "protocol": "tcp"}),
    res("openstack:firewall/ruleV2:RuleV2", {"action": "allow", "protocol": "tcp", "destinationPort": "5432"}),
    res("alicloud:ecs/ecsPrefixList:EcsPrefixList", {"entries": [{"cidr": "10.0.0.0/8"}, {"cidr": "0.0.0.0/0"}]}),
])
def test_world_open_management_port_fails(resource):
    found = messages("djcp-mgmt-ports-closed-to-world", resource)
    assert len(found) == 1 and ("include" in found[0] or "whole internet" in found[0])


@pytest.mark.parametrize("resource", [
    res("alicloud:ecs/securityGroupRule:SecurityGroupRule",
        {"type": "ingress", "ipProtocol": "tcp", "portRange": "443/443", "cidrIp": "0.0.0.0/0"}),
    res("alicloud:ecs/securityGroupRule:SecurityGroupRule",
        {"type": "ingress", "ipProtocol": "tcp", "portRange": "22/22", "cidrIp": "10.11.4.0/24"}),
    res("openstack:networking/secGroupRule:SecGroupRule",
        {"direction": "ingress", "protocol": "tcp", "portRangeMin": 22, "portRangeMax": 22,
         "remoteIpPrefix": "10.11.4.0/24"}),
    res("openstack:firewall/ruleV2:RuleV2", {"action": "allow", "protocol": "any", "sourceIpAddress": "10.11.1.0/24"}),
    res("openstack:firewall/ruleV2:RuleV2", {"action": "deny", "protocol": "tcp", "destinationPort": "22"}),
    res("alicloud:ecs/ecsPrefixList:EcsPrefixList", {"entries": [{"cidr": "10.11.4.0/24"}]}),
])
def test_scoped_or_harmless_rule_passes(resource):
    assert messages("djcp-mgmt-ports-closed-to-world", resource) == []


# -- djcp-topology-mgmt-ports-closed / djcp-management-zone-isolated ---------------------------
def test_topology_flows_of_the_lab_pass(lab):
    assert messages("djcp-topology-mgmt-ports-closed", stack(lab)) == []
    assert messages("djcp-management-zone-isolated", stack(lab)) == []


def test_internet_ssh_into_management_zone_fails_both_rules(lab):
    lab["flows"].append({"source": "internet", "target": "security_management", "ports": ["tcp/22"],
                         "across_centers": False})
    assert "tcp/22 (22 (SSH))" in messages("djcp-topology-mgmt-ports-closed", stack(lab))[0]
    assert "internet into the security-management zone" in messages("djcp-management-zone-isolated", stack(lab))[0]


def test_any_to_any_database_port_fails(lab):
    lab["flows"].append({"source": "any", "target": "core_business", "ports": ["tcp/5000-6000"],
                         "across_centers": False})
    assert "5432 (PostgreSQL)" in messages("djcp-topology-mgmt-ports-closed", stack(lab))[0]


def test_stack_rules_without_topology_facts_fail_loudly():
    for rule in RULES:
        if rule.scope == "stack" and rule.id not in ("djcp-backup-replication", "djcp-audit-trail-retention"):
            assert "exports no `policy_facts.topology`" in messages(rule.id, stack())[0], rule.id


# -- djcp-storage-encrypted ---------------------------------------------------------------------
@pytest.mark.parametrize("resource", [
    res("alicloud:ecs/instance:Instance", {"systemDiskEncrypted": True, "dataDisks": [{"encrypted": True}]}),
    res("alicloud:rds/instance:Instance", {"encryptionKey": COMPUTED}),  # a KMS key id known only at up
    res("alicloud:oss/bucket:Bucket", {"serverSideEncryptionRule": {"sseAlgorithm": "SM4"}}),
    res("openstack:compute/instance:Instance",
        {"blockDevices": [{"destinationType": "volume", "volumeType": "encrypted"}]}),
    res("openstack:blockstorage/volume:Volume", {"volumeType": "luks"}),
])
def test_encrypted_storage_passes(resource):
    assert messages("djcp-storage-encrypted", resource) == []


@pytest.mark.parametrize("resource,expected", [
    (res("alicloud:ecs/instance:Instance", {"systemDiskEncrypted": False}), "system disk"),
    (res("alicloud:ecs/instance:Instance", {"systemDiskEncrypted": True, "dataDisks": [{"encrypted": False}]}),
     "data disk 0"),
    (res("alicloud:rds/instance:Instance", {"tdeStatus": "Disabled"}), "database storage"),
    (res("alicloud:oss/bucket:Bucket", {}), "server-side encryption"),
    (res("openstack:compute/instance:Instance", {"imageId": "x"}), "local disk"),
    (res("openstack:compute/instance:Instance",
         {"blockDevices": [{"destinationType": "volume", "volumeType": "ssd"}]}), "'ssd'"),
    (res("openstack:blockstorage/volume:Volume", {}), "None"),
])
def test_unencrypted_storage_fails(resource, expected):
    found = messages("djcp-storage-encrypted", resource)
    assert found and expected in found[0]


# -- djcp-database-ha-two-zones -------------------------------------------------------------------
def _rds(**props):
    return res("alicloud:rds/instance:Instance", {"tags": {"govctl-role": "production"}, **props}, "prod-db")


def test_database_ha_passes_with_standby_zone(lab):
    assert messages("djcp-database-ha-two-zones",
                    stack(lab, extra=[_rds(zoneId="cn-hangzhou-h", zoneIdSlaveA="cn-hangzhou-i")])) == []


def test_database_ha_fails_without_standby_zone(lab):
    assert "zone_id_slave_a" in messages("djcp-database-ha-two-zones", stack(lab, extra=[_rds(zoneId="cn-hangzhou-h")]))[0]
    lab["replication"] = [r for r in lab["replication"] if r["mode"] != "synchronous"]
    assert "no synchronous standby" in messages("djcp-database-ha-two-zones", stack(lab))[0]


def test_database_ha_fails_when_standby_shares_the_zone(lab):
    for c in lab["centers"]:
        if c["role"] == "same_city_dr":
            c["availability_zone"] = next(p["availability_zone"] for p in lab["centers"] if p["role"] == "production")
    assert messages("djcp-database-ha-two-zones", stack(lab))


# -- djcp-database-remote-copy --------------------------------------------------------------------
def test_remote_copy_passes(lab):
    dts = res("alicloud:dts/synchronizationJob:SynchronizationJob", {"destinationEndpointRegion": "cn-shanghai"})
    assert messages("djcp-database-remote-copy", stack(lab, extra=[_rds(), dts])) == []


def test_remote_copy_fails(lab):
    assert "no DTS synchronization job" in messages("djcp-database-remote-copy", stack(lab, extra=[_rds()]))[0]
    lab["replication"] = [r for r in lab["replication"] if r["mode"] != "asynchronous"]
    assert "not replicated to a remote DR center" in messages("djcp-database-remote-copy", stack(lab))[0]


# -- djcp-backup-replication ----------------------------------------------------------------------
def _bucket(name):
    return res("alicloud:oss/bucket:Bucket", {"bucket": name}, name)


def test_replicated_buckets_pass():
    repl = res("alicloud:oss/bucketReplication:BucketReplication",
               {"bucket": "a", "destination": {"bucket": "b", "location": "oss-cn-shanghai"}})
    assert messages("djcp-backup-replication", stack(extra=[_bucket("a"), _bucket("b"), repl])) == []


def test_unreplicated_bucket_fails():
    found = messages("djcp-backup-replication", stack(extra=[_bucket("a")]))
    assert found and "neither replicated" in found[0]


# -- djcp-audit-trail-retention -------------------------------------------------------------------
def _trail(days, status="Enable"):
    return [res("alicloud:actiontrail/trail:Trail", {"trailName": "t", "status": status}, "trail"),
            res("alicloud:log/store:Store", {"logstoreName": "actiontrail_t", "retentionPeriod": days}, "store")]


def test_audit_trail_passes():
    assert messages("djcp-audit-trail-retention", stack(extra=_trail(180))) == []
    assert messages("djcp-audit-trail-retention", stack(audit={"enabled": True, "retention_days": 365})) == []


def test_audit_trail_fails():
    assert "fewer than 180" in messages("djcp-audit-trail-retention", stack(extra=_trail(30)))[0]
    assert "not enabled" in messages("djcp-audit-trail-retention", stack(extra=_trail(180, "Disable")))[0]
    assert "no audit trail" in messages("djcp-audit-trail-retention", stack())[0]
    assert "off" in messages("djcp-audit-trail-retention", stack(audit={"enabled": False}))[0]


# -- djcp-remote-dr-center / djcp-redundant-inter-center-links -------------------------------------
def test_remote_center_and_links_of_the_lab_pass(lab):
    assert messages("djcp-remote-dr-center", stack(lab)) == []
    assert messages("djcp-redundant-inter-center-links", stack(lab)) == []


def test_remote_center_in_the_production_region_fails(lab):
    for site in lab["sites"]:
        site["region"] = "cn-hangzhou"
    assert "production region" in messages("djcp-remote-dr-center", stack(lab))[0]
    lab["centers"] = [c for c in lab["centers"] if c["role"] != "remote_dr"]
    assert "no remote DR center" in messages("djcp-remote-dr-center", stack(lab))[0]


def test_placement_overrides_the_topology_regions_and_zones(lab):
    """Stack config can move centers: the rules judge where they were placed."""
    same_region = {c["name"]: {"region": "RegionOne", "zone": f"az-{c['name']}"} for c in lab["centers"]}
    facts = stack(lab)
    facts[0]["props"]["policy_facts"]["placement"] = same_region
    assert "production region RegionOne" in messages("djcp-remote-dr-center", facts)[0]
    assert messages("djcp-database-ha-two-zones", facts) == []
    same_region["samecity"]["zone"] = same_region["prod"]["zone"]
    assert "no synchronous standby" in messages("djcp-database-ha-two-zones", facts)[0]


def test_single_link_between_centers_fails(lab):
    lab["links"] = [l for l in lab["links"] if l["role"] == "primary"]
    found = messages("djcp-redundant-inter-center-links", stack(lab))
    assert len(found) == 3 and "primary link(s)" in found[0]


def test_evaluate_labels_every_violation_with_its_clause(lab):
    lab["links"] = lab["links"][:1]
    found = evaluate(stack(lab, audit={"enabled": True, "retention_days": 180}))
    assert {rule.id for rule, _ in found} == {"djcp-redundant-inter-center-links"}
    assert all(label(rule).startswith("[等保2.0 GB/T 22239-2019 8.1.2.1 e)") for rule, _ in found)
