"""The 等保 pack over the mock runtime's recorded graphs: the example stacks comply, and breaking
the graph (as a careless edit would) trips the rule with its clause."""
from __future__ import annotations

import copy

import pytest

from policies.djcp_pack.checks import evaluate, from_plan


def _violations(resources):
    found: dict[str, list[str]] = {}
    for rule, violation in evaluate(resources):
        found.setdefault(rule.id, []).append(violation.message)
    return found


@pytest.mark.parametrize("backend", ["alicloud", "openstack"])
def test_example_stacks_comply(plans, backend):
    assert evaluate(from_plan(plans[(backend, "default")])) == []


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["alicloud", "openstack"])
@pytest.mark.parametrize("variant", ["extra-zone", "ipv6-off", "second-remote"])
def test_topology_variants_comply(plans, backend, variant):
    assert evaluate(from_plan(plans[(backend, variant)])) == []


def test_broken_alicloud_graph_fails_the_right_rules(plans):
    plan = copy.deepcopy(plans[("alicloud", "default")])
    resources = from_plan(plan)
    kept = [r for r in resources if not r["type"].endswith(("bucketReplication:BucketReplication",
                                                            "synchronizationJob:SynchronizationJob",
                                                            "rdsInstanceCrossBackupPolicy:RdsInstanceCrossBackupPolicy"))]
    for r in kept:
        if r["name"] == "prod-web-1":
            r["props"]["systemDiskEncrypted"] = False
        if r["name"] == "prod-db" and r["type"].endswith("rds/instance:Instance"):
            del r["props"]["zoneIdSlaveA"]
        if r["name"] == "audit-store":
            r["props"]["retentionPeriod"] = 90
    kept.append({"type": "alicloud:ecs/securityGroupRule:SecurityGroupRule", "name": "oops", "urn": None,
                 "props": {"type": "ingress", "ipProtocol": "tcp", "portRange": "3389/3389", "cidrIp": "0.0.0.0/0"}})
    found = _violations(kept)
    assert set(found) == {"djcp-backup-replication", "djcp-database-remote-copy", "djcp-storage-encrypted",
                          "djcp-database-ha-two-zones", "djcp-audit-trail-retention",
                          "djcp-mgmt-ports-closed-to-world"}
    assert "3389 (RDP)" in found["djcp-mgmt-ports-closed-to-world"][0]
    assert "prod-web-1" in found["djcp-storage-encrypted"][0]


def test_broken_openstack_graph_fails_the_right_rules(plans):
    resources = from_plan(copy.deepcopy(plans[("openstack", "default")]))
    for r in resources:
        if r["name"] == "prod-db-1":
            r["props"]["blockDevices"][0]["volumeType"] = "ssd"
        if r["name"] == "prod-dmz-fw-in-0":
            r["props"]["sourceIpAddress"] = "0.0.0.0/0"
            r["props"]["destinationPort"] = "1:65535"
        if r["type"] == "pulumi:pulumi:Stack":
            r["props"]["policy_facts"]["audit"]["retention_days"] = 30
    found = _violations(resources)
    assert set(found) == {"djcp-storage-encrypted", "djcp-mgmt-ports-closed-to-world", "djcp-audit-trail-retention"}
