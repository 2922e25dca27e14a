"""The alicloud backend under Pulumi's mock runtime: the graph of the default topology and how
topology changes move it. Mock ids are `<name>-id`, so references are asserted by id."""
from __future__ import annotations

import ipaddress

import pytest

MANAGEMENT_PORTS = {22, 3389, 5432, 3306}


def _rules_of(g, group_name):
    return [r["inputs"] for r in g.of("ecs/securityGroupRule:SecurityGroupRule")
            if r["inputs"]["securityGroupId"] == f"{group_name}-id"]


def _sources(g, rule):
    """The source blocks of a rule: its CIDR, or the entries of the prefix list it names."""
    if "prefixListId" in rule:
        return [e["cidr"] for e in g.named(rule["prefixListId"].removesuffix("-id"))["inputs"]["entries"]]
    return [rule.get("cidrIp") or rule["ipv6CidrIp"]]


def test_one_provider_per_region_and_centers_placed_in_their_regions(graph):
    g = graph("alicloud")
    assert {p["inputs"]["region"] for p in g.of("providers:alicloud")} == {"cn-hangzhou", "cn-shanghai"}
    for center, region in (("prod", "cn-hangzhou"), ("samecity", "cn-hangzhou"), ("remote", "cn-shanghai")):
        mine = [r for r in g.resources if r["center"] == center and r["custom"]]
        assert mine and {r["region"] for r in mine} == {region}, center


def test_vpc_per_region_with_ipv6_and_a_vswitch_per_zone_and_center(graph):
    g = graph("alicloud")
    hz = g.named("cn-hangzhou-vpc")["inputs"]
    assert hz["cidrBlock"] == "10.11.0.0/16" and hz["enableIpv6"] is True
    assert g.named("samecity-cidr")["inputs"] == {"vpcId": "cn-hangzhou-vpc-id",
                                                   "secondaryCidrBlock": "10.12.0.0/16"}
    assert len(g.of("vpc/ipv6Gateway:Ipv6Gateway")) == 2
    for center in g.topology.centers:
        for zone in center.zones:
            sw = g.named(f"{center.name}-{zone.name}", "vpc/switch:Switch")["inputs"]
            assert sw["cidrBlock"] == str(zone.subnets[0].ipv4)
            assert sw["zoneId"] == center.availability_zone
            assert sw["enableIpv6"] is True
            region = "cn-shanghai" if center.name == "remote" else "cn-hangzhou"
            assert sw["vpcId"] == f"{region}-vpc-id"
    masks = [s["inputs"]["ipv6CidrBlockMask"] for s in g.of("vpc/switch:Switch")
             if s["region"] == "cn-hangzhou"]
    assert len(masks) == len(set(masks)), "two vSwitches of one VPC share an IPv6 /64"


def test_security_groups_carry_the_zone_policy(graph):
    g = graph("alicloud")
    assert len(g.of("ecs/securityGroup:SecurityGroup")) == sum(len(c.zones) for c in g.topology.centers)

    http = [r for r in _rules_of(g, "prod-dmz-sg") if r["portRange"] == "443/443"]
    assert {b for r in http for b in _sources(g, r)} >= {"203.0.113.0/24", "2001:db8:113::/64"}
    # one rule per (ports, family): sources beyond one go to a shared prefix list
    keys = [(r["portRange"], r["ipProtocol"], ipaddress.ip_network(_sources(g, r)[0]).version)
            for r in _rules_of(g, "prod-core-sg")]
    assert len(keys) == len(set(keys))
    lists = g.of("ecs/ecsPrefixList:EcsPrefixList")
    assert lists and all(l["inputs"]["maxEntries"] == len(l["inputs"]["entries"]) for l in lists)
    # nothing from the internet reaches the management zone, and no management port is open to the world
    mgmt_blocks = [ipaddress.ip_network(z.subnets[0].ipv4) for c in g.topology.centers
                   for z in c.zones_of_kind("security_management")]
    mgmt_blocks += [ipaddress.ip_network(z.subnets[0].ipv6) for c in g.topology.centers
                    for z in c.zones_of_kind("security_management")]
    for rule in _rules_of(g, "prod-mgmt-sg"):
        for block in _sources(g, rule):
            assert any(ipaddress.ip_network(block).subnet_of(b) for b in mgmt_blocks
                       if b.version == ipaddress.ip_network(block).version), (rule, block)
    for rule in (r["inputs"] for r in g.of("ecs/securityGroupRule:SecurityGroupRule")):
        low, high = map(int, rule["portRange"].split("/"))
        if rule.get("cidrIp") == "0.0.0.0/0" or rule.get("ipv6CidrIp") == "::/0":
            assert not any(low <= p <= high for p in MANAGEMENT_PORTS), rule
        assert rule["type"] == "ingress" and rule["policy"] == "accept"
    assert not any(e["cidr"] in ("0.0.0.0/0", "::/0") for l in lists for e in l["inputs"]["entries"])


def test_cen_transit_router_per_region_and_cross_region_peer(graph):
    g = graph("alicloud")
    cenId = g.id(g.named("cen"))
    trs = {r["region"]: r for r in g.of("cen/transitRouter:TransitRouter")}
    assert set(trs) == {"cn-hangzhou", "cn-shanghai"}
    assert all(tr["inputs"]["cenId"] == cenId for tr in trs.values())
    peer = g.named("cn-hangzhou-cn-shanghai-peer")["inputs"]
    assert peer["transitRouterId"] == g.id(trs["cn-hangzhou"])
    assert peer["peerTransitRouterId"] == g.id(trs["cn-shanghai"])
    assert peer["peerTransitRouterRegionId"] == "cn-shanghai"
    assert "prod-remote-a" in peer["transitRouterAttachmentDescription"]
    attach = g.named("cn-hangzhou-vpc-attachment")["inputs"]
    assert {m["zoneId"] for m in attach["zoneMappings"]} == {"cn-hangzhou-h", "cn-hangzhou-i"}
    links = g.outputs["links"]
    assert links["prod-remote-b"]["kind"] == "cen-peer-attachment"
    assert links["prod-samecity-a"]["kind"] == "vpc"


def test_alb_per_center_and_gtm_failover_from_production_to_same_city(graph):
    g = graph("alicloud")
    albs = {r["center"]: r["inputs"] for r in g.of("alb/loadBalancer:LoadBalancer")}
    assert set(albs) == {"prod", "samecity", "remote"}
    assert [m["vswitchId"] for m in albs["prod"]["zoneMappings"]] == ["prod-dmz-id", "samecity-dmz-id"]
    assert albs["prod"]["addressIpVersion"] == "DualStack"
    remote_zones = {m["zoneId"] for m in albs["remote"]["zoneMappings"]}
    assert remote_zones == {"cn-shanghai-e", "cn-shanghai-f"}
    group = g.named("prod-web")["inputs"]
    assert [s["serverId"] for s in group["servers"]] == ["prod-web-1-id"]
    pools = {r["center"]: r for r in g.of("dns/addressPool:AddressPool")}
    assert set(pools) == {"prod", "samecity", "remote"}
    strategy = g.named("failover")["inputs"]
    assert [p["addrPoolId"] for p in strategy["defaultAddrPools"]] == ["prod-pool-id"]
    assert [p["addrPoolId"] for p in strategy["failoverAddrPools"]] == ["samecity-pool-id"]
    monitors = {m["inputs"]["addrPoolId"] for m in g.of("dns/monitorConfig:MonitorConfig")}
    assert monitors == {g.id(p) for p in pools.values()}
    assert g.named("gtm")["inputs"]["publicUserDomainName"] == "gov-portal.jinhua.gov.cn"


def test_rds_standby_in_same_city_zone_and_remote_copy(graph):
    g = graph("alicloud")
    prod = g.named("prod-db", "rds/instance:Instance")["inputs"]
    assert prod["zoneId"] == "cn-hangzhou-h" and prod["zoneIdSlaveA"] == "cn-hangzhou-i"
    assert prod["vswitchId"] == "prod-core-id,samecity-core-id"
    assert prod["category"] == "HighAvailability" and prod["encryptionKey"] == "cn-hangzhou-key-id"
    assert prod["privateIpAddress"] == "10.11.3.10"
    assert "0.0.0.0/0" not in prod["securityIps"] and "10.11.1.0/24" in prod["securityIps"]
    remote = g.named("remote-db", "rds/instance:Instance")
    assert remote["region"] == "cn-shanghai" and remote["inputs"]["zoneId"] == "cn-shanghai-e"
    job = g.named("prod-remote-dts-job")["inputs"]
    assert job["sourceEndpointInstanceId"] == "prod-db-id"
    assert job["destinationEndpointInstanceId"] == "remote-db-id"
    assert job["destinationEndpointRegion"] == "cn-shanghai"
    assert g.named("prod-db-cross-backup")["inputs"]["crossBackupRegion"] == "cn-shanghai"


def test_backups_audit_bastion_and_keys(graph):
    g = graph("alicloud")
    buckets = {r["region"]: r["inputs"] for r in g.of("oss/bucket:Bucket")}
    assert set(buckets) == {"cn-hangzhou", "cn-shanghai"}
    assert all(b["serverSideEncryptionRule"]["sseAlgorithm"] == "SM4" for b in buckets.values())
    repl = g.named("cn-hangzhou-cn-shanghai-backup-replication")["inputs"]
    assert repl["bucket"] == buckets["cn-hangzhou"]["bucket"]
    assert repl["destination"] == {"bucket": buckets["cn-shanghai"]["bucket"], "location": "oss-cn-shanghai"}
    instances = g.of("ecs/instance:Instance")
    assert len(instances) == sum(1 for h in g.topology.hosts if "database" not in h.roles)  # databases are RDS
    plans = {p["inputs"]["instanceId"]: p["inputs"] for p in g.of("hbr/ecsBackupPlan:EcsBackupPlan")}
    assert set(plans) == {g.id(i) for i in instances}
    clients = {c["inputs"]["instanceId"] for c in g.of("hbr/ecsBackupClient:EcsBackupClient")}
    assert clients == set(plans)
    assert all(i["inputs"]["systemDiskEncrypted"] is True for i in instances)
    store = g.named("audit-store")["inputs"]
    trail = g.named("audit-trail")["inputs"]
    assert store["retentionPeriod"] >= 180 and trail["status"] == "Enable"
    assert trail["slsProjectArn"].endswith(f"project/{g.named('audit-project')['inputs']['projectName']}")
    assert store["logstoreName"] == f"actiontrail_{trail['trailName']}"
    for center in ("prod", "samecity", "remote"):
        bastion = g.named(f"{center}-bastion", "bastionhost/instance:Instance")["inputs"]
        assert bastion["vswitchId"] == f"{center}-mgmt-id"
        assert bastion["securityGroupIds"] == [f"{center}-mgmt-sg-id"]
    assert {k["inputs"]["keySpec"] for k in g.of("kms/key:Key")} == {"Aliyun_SM4"}
    assert g.outputs["policy_facts"]["audit"]["retention_days"] == 180
    assert g.outputs["policy_facts"]["topology"]["name"] == g.outputs["topology"] == "lab"


@pytest.mark.slow
def test_extra_zone_adds_vswitches_and_zone_policy(graph):
    before, after = graph("alicloud"), graph("alicloud", "extra-zone")
    for center in ("prod", "samecity", "remote"):
        sw = after.named(f"{center}-bigdata", "vpc/switch:Switch")["inputs"]
        assert sw["cidrBlock"].endswith(".5.0/24")
        rules = _rules_of(after, f"{center}-bigdata-sg")
        assert rules and all(r["portRange"] in ("5432/5432", "22/22", "80/80", "9100/9100") for r in rules)
    assert len(after.of("vpc/switch:Switch")) == len(before.of("vpc/switch:Switch")) + 3
    # core_business → core_business across centers now includes the bigdata blocks
    core = _rules_of(after, "prod-core-sg")
    assert any("10.12.5.0/24" in _sources(after, r) for r in core if r["portRange"] == "5432/5432")


@pytest.mark.slow
def test_ipv6_off_leaves_no_ipv6_anywhere(graph):
    g = graph("alicloud", "ipv6-off")
    assert g.named("cn-hangzhou-vpc")["inputs"]["enableIpv6"] is False
    assert not g.of("vpc/ipv6Gateway:Ipv6Gateway")
    assert not any("ipv6CidrIp" in r["inputs"] for r in g.of("ecs/securityGroupRule:SecurityGroupRule"))
    assert {l["inputs"]["addressFamily"] for l in g.of("ecs/ecsPrefixList:EcsPrefixList")} == {"IPv4"}
    switches = g.of("vpc/switch:Switch")
    assert switches and all(not s["inputs"].get("enableIpv6") for s in switches)
    assert {a["inputs"]["addressIpVersion"] for a in g.of("alb/loadBalancer:LoadBalancer")} == {"IPv4"}
    assert not any("ipv6AddressCount" in i["inputs"] for i in g.of("ecs/instance:Instance"))


@pytest.mark.slow
def test_second_remote_center_adds_a_region_peers_and_copies(graph):
    g = graph("alicloud", "second-remote")
    assert {p["inputs"]["region"] for p in g.of("providers:alicloud")} == \
        {"cn-hangzhou", "cn-shanghai", "cn-beijing"}
    peers = {(p["inputs"]["transitRouterId"], p["inputs"]["peerTransitRouterRegionId"])
             for p in g.of("cen/transitRouterPeerAttachment:TransitRouterPeerAttachment")}
    assert peers == {("cn-hangzhou-tr-id", "cn-shanghai"), ("cn-hangzhou-tr-id", "cn-beijing"),
                     ("cn-shanghai-tr-id", "cn-beijing")}
    jobs = {j["inputs"]["destinationEndpointInstanceId"] for j in g.of("dts/synchronizationJob:SynchronizationJob")}
    assert jobs == {"remote-db-id", "remote2-db-id"}
    destinations = {r["inputs"]["destination"]["location"] for r in g.of("oss/bucketReplication:BucketReplication")}
    assert destinations == {"oss-cn-shanghai", "oss-cn-beijing"}
    assert len(g.of("rds/rdsInstanceCrossBackupPolicy:RdsInstanceCrossBackupPolicy")) == 1
    assert g.named("remote2-web-1")["region"] == "cn-beijing"


def test_invalid_topology_is_refused_before_any_resource(plans):
    from infra.plan import PlanError

    err = plans[("alicloud", "invalid")]
    assert isinstance(err, PlanError) and err.exit_code == 2
    assert "remote DR center 'remote' is in the production site" in str(err)
    assert err.resources == []


def test_missing_config_is_named(tmp_path):
    from infra.engine import StackDefinition
    from infra.plan import PlanError, plan_config

    config = StackDefinition.load("alicloud-example").pulumi_config()
    del config["govctl:alb_second_zone"]
    with pytest.raises(PlanError) as caught:
        plan_config(config, "missing-config")
    assert caught.value.exit_code == 2 and "alb_second_zone" in str(caught.value)
