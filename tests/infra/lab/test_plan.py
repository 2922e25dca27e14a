"""The lab plan: what `govctl lab up` builds from the topology, checked without building it."""
from __future__ import annotations

import subprocess

import pytest

from infra.lab.plan import NS_PREFIX as P, build_plan, firewall_ruleset, ifname
from infra.topology import load_topology


@pytest.fixture(scope="module")
def topo():
    return load_topology()


def test_namespaces_and_interface_names(topo):
    plan = build_plan(topo)
    assert {P + n for n in ("wan", "ops", "internet", "egov-net", "prod", "samecity", "remote",
                            "prod-web-1", "remote-db-1")} <= set(plan.namespaces)
    assert all(ns.startswith(P) for ns in plan.namespaces)
    for veth in plan.veths:
        assert len(veth.if_a) <= 15 and len(veth.if_b) <= 15, veth
    assert ifname("l-", "prod-samecity-a") != ifname("l-", "prod-samecity-b")


def test_primary_link_preferred_over_standby(topo):
    routes = build_plan(topo).routes[P + "prod"]
    to_samecity = sorted((r.metric, r.via) for r in routes if r.dest == "10.12.0.0/16")
    assert to_samecity == [(10, "172.31.0.2"), (20, "172.31.0.6")]


def test_service_address_follows_the_active_center(topo):
    default = {r.dest: r.via for r in build_plan(topo).routes[P + "wan"]}
    moved = {r.dest: r.via for r in build_plan(topo, active_center="samecity").routes[P + "wan"]}
    assert default["10.250.0.80/32"] != moved["10.250.0.80/32"]
    assert moved["10.250.0.80/32"] == build_plan(topo).uplinks["samecity"]


def test_zone_policy_is_default_deny_with_declared_flows(topo):
    rules = firewall_ruleset(topo, "prod")
    assert "policy drop;" in rules
    # addresses in hash sets, range bans in interval sets of their own (an interval set of 100,000
    # addresses takes seconds per element): both dropped before anything else
    assert "set blocked_v4 { type ipv4_addr; flags timeout; }" in rules
    assert "set blocked_v4_ranges { type ipv4_addr; flags interval, timeout; }" in rules
    assert rules.index("@blocked_v4_ranges") < rules.index("ct state established")
    # internet → DMZ web ports only; DMZ → core only the database port.
    assert 'ip saddr { 203.0.113.0/24 } ip daddr { 10.11.1.0/24, 10.250.0.80/32 } tcp dport { 80, 443 }' in rules
    dmz_rule = next(l for l in rules.splitlines() if '"internet_dmz -> core_business"' in l and "ip saddr" in l)
    assert "tcp dport { 5432 }" in dmz_rule and "10.11.4.0/24" not in dmz_rule
    # Bans are checked before the established-connection shortcut, so a ban cuts live sessions.
    assert rules.index("@blocked_v4") < rules.index("ct state established")


@pytest.mark.root
def test_rulesets_are_valid_nftables(topo, tmp_path):
    for center in topo.centers:
        path = tmp_path / f"{center.name}.nft"
        path.write_text(firewall_ruleset(topo, center.name))
        # In a throwaway network namespace: `nft -c` checks against the live ruleset, which other
        # tables on this machine (a local secops table, say) must not influence.
        proc = subprocess.run(["unshare", "--net", "nft", "-c", "-f", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


def test_without_root_the_lab_refuses_clearly_and_touches_nothing(monkeypatch):
    # This machine's interpreter lives under /root, so no other user can run it here: the
    # check is exercised in process, as a user with another uid.
    from typer.testing import CliRunner

    from govctl.cli import app
    from infra.lab.system import lab_namespaces

    before = lab_namespaces()
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    for command in (["lab", "up"], ["lab", "down"], ["lab", "status"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 1, result.output
        assert "the lab needs root" in result.output and "nothing was changed" in result.output
    assert lab_namespaces() == before


def test_lab_stack_option_refuses_unknown_and_non_lab_stacks_before_anything():
    # issue 20 (h-lab30): `govctl lab … --stack lab-30`; other backends and unknown names are refused
    from typer.testing import CliRunner

    from govctl.cli import app
    from infra.lab.system import lab_namespaces

    before = lab_namespaces()
    for command in ("up", "down", "status"):
        result = CliRunner().invoke(app, ["lab", command, "--stack", "tiny"])
        assert result.exit_code == 2, result.output
        assert "--stack tiny: its backend is 'tiny', not lab" in result.output
        result = CliRunner().invoke(app, ["lab", command, "--stack", "lab-300"])
        assert result.exit_code == 2 and "unknown stack 'lab-300'" in result.output, result.output
    assert lab_namespaces() == before
