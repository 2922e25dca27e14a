"""`count: N` on a host entry: N hosts of a role per zone (issue 20), named and addressed stably."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

from core import yamlfile
from infra.lab.plan import NS_PREFIX as P, build_plan
from infra.topology import DEFAULT_TOPOLOGY, check_document, load_topology

LAB_30 = Path(DEFAULT_TOPOLOGY).with_name("lab-30.yaml")


@pytest.fixture(scope="module")
def default_doc():
    return yamlfile.load(DEFAULT_TOPOLOGY)


def _with_web_count(doc, count, **changes):
    """The default topology with prod's web-1 entry turned into `web` × count."""
    doc = copy.deepcopy(doc)
    entry = doc["centers"][0]["hosts"][0]
    assert entry["name"] == "web-1"
    entry.update({"name": "web", "count": count, **changes})
    return doc


def _write(tmp_path, doc) -> Path:
    import yaml

    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    return path


def test_lab_30_expands_to_thirty_hosts_with_stable_names_addresses_and_zones():
    topo = load_topology(LAB_30)
    assert len(topo.hosts) == 30
    for center, octet in (("prod", 11), ("samecity", 12), ("remote", 13)):
        hosts = topo.center(center).hosts
        web = [h for h in hosts if "web" in h.roles]
        assert [h.name for h in web] == [f"web-{n}" for n in range(1, 9)]
        assert [str(h.ipv4) for h in web] == [f"10.{octet}.1.{10 + n}" for n in range(8)]
        assert [str(h.ipv6) for h in web] == [f"fd00:{octet}:0:1::{0x10 + n:x}" for n in range(8)]
        assert {h.zone for h in web} == {"dmz"} and all(h.center == center for h in web)
        assert {h.name for h in hosts} - {h.name for h in web} == {"db-1", "bastion-1"}
    # web-1 keeps the default lab's address: a count entry only adds hosts after it.
    default = load_topology()
    assert {(h.fqdn, h.ipv4) for h in default.hosts} <= {(h.fqdn, h.ipv4) for h in topo.hosts}


def test_count_one_is_name_1(default_doc, tmp_path):
    topo = load_topology(_write(tmp_path, _with_web_count(default_doc, 1)))
    assert [h.name for h in topo.center("prod").hosts] == ["web-1", "db-1", "bastion-1"]
    assert topo.hosts == load_topology().hosts


def test_lab_plan_of_thirty_hosts_has_a_namespace_and_a_bridge_port_each():
    plan = build_plan(load_topology(LAB_30))
    assert len(plan.hosts) == 30
    assert {P + f"remote-web-{n}" for n in range(1, 9)} <= set(plan.namespaces)
    host_veths = [v for v in plan.veths if v.name.startswith("host-")]
    assert len(host_veths) == 30
    for center in ("prod", "samecity", "remote"):
        # every host's port on its center's bridge has its own name, within Linux's 15 bytes
        names = [v.if_a for v in host_veths if v.ns_a == P + center]
        assert len(names) == len(set(names)) == 10 and all(len(n) <= 15 for n in names)
    # the center spreads the service address over all 8 web hosts: one route, a nexthop each
    service = [r for r in plan.routes[P + "prod"] if r.dest == "10.250.0.80/32"]
    assert [r.args() for r in service] == [
        ["10.250.0.80/32"] + [w for n in range(8) for w in ("nexthop", "via", f"10.11.1.{10 + n}")]]
    service6 = [r for r in plan.routes[P + "prod"] if r.dest == "fd00:250::80/128"]
    assert len(service6) == 1 and len(service6[0].nexthops) == 8
    # one web host (the default lab): the same single-gateway route as before
    assert [r.args() for r in build_plan(load_topology()).routes[P + "prod"] if r.dest == "10.250.0.80/32"] \
        == [["10.250.0.80/32", "via", "10.11.1.10"]]


@pytest.mark.parametrize("count, words", [
    (0, ["0 is less than the minimum of 1", "whole number 1-250"]),
    (-3, ["-3 is less than the minimum of 1"]),
    (100000, ["100000 is greater than the maximum of 250", "add another entry"]),
    ("8", ["'8' is not of type 'integer'"]),
    (2.5, ["2.5 is not of type 'integer'"]),
])
def test_schema_refuses_a_bad_count(default_doc, count, words):
    problems = check_document(_with_web_count(default_doc, count))
    assert [p.path for p in problems] == ["centers[0].hosts[0].count"]
    assert all(w in problems[0].message for w in words), problems[0].message


def test_count_running_out_of_the_zone_names_the_host(default_doc, tmp_path):
    # 10.11.1.10 + 249 = 10.11.2.3: past the dmz /24; the first host outside is web-246
    path = _write(tmp_path, _with_web_count(default_doc, 250))
    problems = check_document(yamlfile.load(path))
    outside = [p for p in problems if p.path == "centers[0].hosts[0].ipv4"]
    assert outside and outside[0].message.startswith("host web-246: 10.11.1.255 is a network or broadcast")
    assert any("host web-247: 10.11.2.0 is outside zone 'dmz'" in p.message for p in outside)


def test_expanded_names_collide_with_a_plain_entry(default_doc):
    doc = _with_web_count(default_doc, 3)
    doc["centers"][0]["hosts"].append({"name": "web-2", "zone": "dmz", "ipv4": "10.11.1.50",
                                       "ipv6": "fd00:11:0:1::50", "roles": ["web"]})
    problems = check_document(doc)
    assert [(p.path, p.message) for p in problems] == [
        ("centers[0].hosts[3].name",
         "duplicate host name 'web-2' (first at centers[0].hosts[0]); host names must be unique")]


def test_expanded_addresses_collide_with_another_host(default_doc):
    doc = _with_web_count(default_doc, 3)
    doc["centers"][0]["hosts"].append({"name": "app-1", "zone": "dmz", "ipv4": "10.11.1.12",
                                       "ipv6": "fd00:11:0:1::50", "roles": ["app"]})
    problems = check_document(doc)
    assert any(p.path == "centers[0].hosts[3].ipv4" and "10.11.1.12 is already used at centers[0].hosts[0].ipv4"
               in p.message for p in problems), problems
