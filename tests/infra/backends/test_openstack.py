"""The openstack backend under Pulumi's mock runtime (inputs are wire names; mock ids `<name>-id`)."""
from __future__ import annotations

import pytest


def _by_center(g, suffix):
    return {r["center"]: r for r in g.of(suffix)}


def test_networks_subnets_routers_per_center_and_zone(graph):
    g = graph("openstack")
    assert {p["inputs"]["region"] for p in g.of("providers:openstack")} == {"RegionOne", "RegionTwo"}
    assert g.named("remote-router")["region"] == "RegionTwo"
    for center in g.topology.centers:
        for zone in center.zones:
            v4 = g.named(f"{center.name}-{zone.name}-v4")["inputs"]
            v6 = g.named(f"{center.name}-{zone.name}-v6")["inputs"]
            assert v4["cidr"] == str(zone.subnets[0].ipv4) and v4["ipVersion"] == 4
            assert v6["cidr"] == str(zone.subnets[0].ipv6) and v6["ipv6AddressMode"] == "dhcpv6-stateful"
            assert v4["networkId"] == v6["networkId"] == f"{center.name}-{zone.name}-id"
            port = g.named(f"{center.name}-{zone.name}-gw")["inputs"]
            assert [f["ipAddress"] for f in port["fixedIps"]][0] == v4["gatewayIp"]
            iface = g.named(f"{center.name}-{zone.name}-if")["inputs"]
            assert iface == {"routerId": f"{center.name}-router-id", "portId": f"{center.name}-{zone.name}-gw-id"}


def test_security_groups_and_fwaas_carry_the_zone_policy(graph):
    g = graph("openstack")
    rules = [r["inputs"] for r in g.of("networking/secGroupRule:SecGroupRule")
             if r["inputs"]["securityGroupId"] == "prod-dmz-sg-id"]
    assert any(r["remoteIpPrefix"] == "203.0.113.0/24" and r["portRangeMin"] == 443 for r in rules)
    assert not any(r["remoteIpPrefix"] in ("0.0.0.0/0", "::/0") and r["portRangeMin"] <= 22 <= r["portRangeMax"]
                   for r in (x["inputs"] for x in g.of("networking/secGroupRule:SecGroupRule")))
    group = g.named("prod-dmz-fw")["inputs"]
    assert group["ports"] == ["prod-dmz-gw-id"]
    assert group["egressFirewallPolicyId"] == "prod-dmz-fw-policy-in-id"
    policy = g.named("prod-dmz-fw-policy-in")["inputs"]
    fw_rules = {f"{r['name']}-id": r["inputs"] for r in g.of("firewall/ruleV2:RuleV2")}
    sources = {fw_rules[i]["sourceIpAddress"] for i in policy["rules"]}
    assert "203.0.113.0/24" in sources and "0.0.0.0/0" not in sources
    outbound = g.named("prod-dmz-fw-policy-out")["inputs"]["rules"]
    assert {fw_rules[i]["sourceIpAddress"] for i in outbound} == {"10.11.1.0/24", "fd00:11:0:1::/64"}


def test_servers_on_encrypted_volumes_in_anti_affinity_groups(graph):
    g = graph("openstack")
    server = g.named("prod-db-1")["inputs"]
    assert server["availabilityZone"] == "az-a"
    assert server["blockDevices"][0]["volumeType"] == "encrypted"
    assert server["blockDevices"][0]["destinationType"] == "volume"
    group = server["schedulerHints"][0]["group"]
    assert g.named(group.removesuffix("-id"))["inputs"]["policies"] == "anti-affinity"
    assert g.named(group.removesuffix("-id"))["center"] == "prod"
    port = g.named("prod-db-1-port")["inputs"]
    assert [f["ipAddress"] for f in port["fixedIps"]] == ["10.11.3.10", "fd00:11:0:3::10"]
    assert port["securityGroupIds"] == ["prod-core-sg-id"]


def test_octavia_per_center_and_designate_points_at_production(graph):
    g = graph("openstack")
    lbs = _by_center(g, "lbLoadbalancerV2:LbLoadbalancerV2")
    assert set(lbs) == {"prod", "samecity", "remote"}
    assert lbs["prod"]["inputs"]["vipSubnetId"] == "prod-dmz-v4-id"
    member = g.named("samecity-web-1-member")["inputs"]
    assert member["address"] == "10.12.1.10" and member["poolId"] == "samecity-pool-id"
    assert g.named("prod-monitor")["inputs"]["poolId"] == "prod-pool-id"
    record = g.named("service-record")["inputs"]
    assert record["name"] == "gov-portal.jinhua.gov.cn." and record["zoneId"] == "service-zone-id"
    failover = g.outputs["dns_failover"]
    assert failover["native"] is False and failover["order"] == ["prod", "samecity", "remote"]
    repl = {r["to"]: r for r in g.outputs["database_replication"]}
    assert repl["samecity"]["mode"] == "synchronous" and repl["remote"]["mode"] == "asynchronous"
    assert repl["remote"]["source_host"] == "10.11.3.10" and repl["remote"]["native"] is False
    assert g.outputs["policy_facts"]["placement"]["remote"] == {"region": "RegionTwo", "zone": "nova"}
    quotas = g.outputs["required_quotas"]
    rules_one = [r for r in g.of("networking/secGroupRule:SecGroupRule") if r["region"] == "RegionOne"]
    assert quotas["RegionOne"]["security_group_rule"] == len(rules_one)
    assert quotas["RegionTwo"]["security_group"] == len(g.topology.center("remote").zones)


@pytest.mark.slow
def test_extra_zone_ipv6_off_and_second_remote_change_the_graph(graph):
    extra = graph("openstack", "extra-zone")
    assert extra.named("remote-bigdata-v4")["inputs"]["cidr"] == "10.13.5.0/24"
    assert extra.named("remote-bigdata-fw")["inputs"]["ports"] == ["remote-bigdata-gw-id"]
    single = graph("openstack", "ipv6-off")
    assert not [s for s in single.of("networking/subnet:Subnet") if s["inputs"]["ipVersion"] == 6]
    assert {r["inputs"]["ethertype"] for r in single.of("networking/secGroupRule:SecGroupRule")} == {"IPv4"}
    assert all(f["inputs"]["ipVersion"] == 4 for f in single.of("firewall/ruleV2:RuleV2"))
    two = graph("openstack", "second-remote")
    assert two.named("remote2-router")["region"] == "RegionThree"
    assert set(_by_center(two, "lbLoadbalancerV2:LbLoadbalancerV2")) == {"prod", "samecity", "remote", "remote2"}
    assert {r["to"] for r in two.outputs["database_replication"]} == {"samecity", "remote", "remote2"}


def test_invalid_topology_is_refused_before_any_resource(plans):
    from infra.plan import PlanError

    err = plans[("openstack", "invalid")]
    assert isinstance(err, PlanError) and err.exit_code == 2 and err.resources == []
    assert "centers[2].site" in str(err)
