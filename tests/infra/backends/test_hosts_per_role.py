"""The cloud backends under Pulumi mocks with N hosts of a role per zone (issue 20: `count: 8` web
hosts per center): one instance per host under its stable name, all of them behind the load balancer."""
from __future__ import annotations

import pytest

WEB = [f"web-{n}" for n in range(1, 9)]
CENTERS = ("prod", "samecity", "remote")


@pytest.mark.slow
def test_alicloud_renders_every_expanded_host_and_balances_over_all_web_hosts(graph):
    g = graph("alicloud", "hosts-per-role")
    instances = {i["name"]: i["inputs"] for i in g.of("ecs/instance:Instance")}
    # every host is an ECS instance but the databases (RDS, one per center as before)
    assert len(instances) == 27 and not any(name.endswith("-db-1") for name in instances)
    for center, octet in zip(CENTERS, (11, 12, 13)):
        for n, name in enumerate(WEB):
            inst = instances[f"{center}-{name}"]
            assert inst["instanceName"] == f"{name}.{center}" and inst["hostName"] == name
            assert inst["privateIp"] == f"10.{octet}.1.{10 + n}"
        servers = g.named(f"{center}-web", "alb/serverGroup:ServerGroup")["inputs"]["servers"]
        assert sorted(s["description"] for s in servers) == sorted(f"{w}.{center}" for w in WEB)
        assert {s["serverId"] for s in servers} == {f"{center}-{w}-id" for w in WEB}


@pytest.mark.slow
def test_openstack_renders_every_expanded_host_and_pools_all_web_hosts(graph):
    g = graph("openstack", "hosts-per-role")
    servers = {i["name"]: i["inputs"] for i in g.of("compute/instance:Instance")}
    assert len(servers) == 30
    for center, octet in zip(CENTERS, (11, 12, 13)):
        ports = {p["inputs"].get("name"): p["inputs"] for p in g.of("networking/port:Port")}
        for n, name in enumerate(WEB):
            assert servers[f"{center}-{name}"]["name"] == f"{name}.{center}"
            assert ports[f"{name}.{center}"]["fixedIps"][0]["ipAddress"] == f"10.{octet}.1.{10 + n}"
        members = [m["inputs"] for m in g.of("loadbalancer/member:Member") if m["name"].startswith(f"{center}-")]
        assert sorted(m["address"] for m in members) == [f"10.{octet}.1.{10 + n}" for n in range(8)]
