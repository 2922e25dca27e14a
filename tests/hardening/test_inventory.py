"""Inventory from stack outputs, and --limit patterns."""
from __future__ import annotations

import subprocess

import pytest

from core.errors import BadInput, GovctlError
from hardening.inventory import build_inventory, hosts_matching
from core.paths import ROOT
from infra.outputs import StackOutputs


def outputs() -> dict:
    hosts = []
    for n, center in enumerate(("prod", "samecity")):
        for name, zone, kind, roles in (("web-1", "dmz", "internet_dmz", ["web"]),
                                        ("bastion-1", "mgmt", "security_management", ["bastion", "monitor"])):
            hosts.append({"name": name, "fqdn": f"{name}.{center}", "center": center, "zone": zone,
                          "zone_kind": kind, "roles": roles, "ipv4": f"10.{n}.0.1"})
    return {"hosts": hosts, "ssh": {"user": "ops", "private_key": "/k/id", "config": "/k/config",
                                    "proxy_namespace": "gl-ops", "ops_address": "10.11.4.200"}}


def test_hosts_groups_and_connection_come_from_the_outputs():
    inv = build_inventory(StackOutputs.from_dict(outputs()))
    web = inv["all"]["hosts"]["web-1.prod"]
    assert web["ansible_user"] == "ops"
    assert web["ansible_ssh_common_args"] == "-F /k/config"
    assert web["ansible_ssh_private_key_file"] == "/k/id"
    assert web["govctl_roles"] == ["web"]
    assert web["govctl_log_server"] == "bastion-1.prod"
    # a bastion forwards to another center's bastion, never to itself
    assert inv["all"]["hosts"]["bastion-1.prod"]["govctl_log_server"] == "bastion-1.samecity"
    groups = inv["all"]["children"]
    assert set(groups["center_prod"]["hosts"]) == {"web-1.prod", "bastion-1.prod"}
    assert set(groups["role_monitor"]["hosts"]) == {"bastion-1.prod", "bastion-1.samecity"}
    assert set(groups["zone_kind_internet_dmz"]["hosts"]) == {"web-1.prod", "web-1.samecity"}


def test_missing_ssh_output_is_an_error():
    bad = outputs()
    bad["ssh"].pop("config")
    with pytest.raises(GovctlError, match="config"):
        build_inventory(StackOutputs.from_dict(bad))


@pytest.mark.parametrize("pattern, hosts", [
    (None, ["web-1.prod", "bastion-1.prod", "web-1.samecity", "bastion-1.samecity"]),
    ("center_prod", ["web-1.prod", "bastion-1.prod"]),
    ("web-*", ["web-1.prod", "web-1.samecity"]),
    ("center_prod:!role_web", ["bastion-1.prod"]),
    ("role_web:&center_samecity", ["web-1.samecity"]),
    ("~^bastion", ["bastion-1.prod", "bastion-1.samecity"]),
])
def test_limit_patterns(pattern, hosts):
    assert hosts_matching(build_inventory(StackOutputs.from_dict(outputs())), pattern) == hosts


def test_a_limit_matching_nothing_names_the_groups():
    with pytest.raises(BadInput, match="center_prod"):
        hosts_matching(build_inventory(StackOutputs.from_dict(outputs())), "nosuchhost")


@pytest.mark.parametrize("playbook", ["baseline.yml", "rollback.yml"])
def test_playbooks_pass_ansible_syntax_check(playbook):
    proc = subprocess.run([str(ROOT / ".venv/bin/ansible-playbook"), "--syntax-check", "-i", "localhost,",
                           playbook], cwd=ROOT / "playbooks", capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_os_family_defines_the_same_variables():
    import yaml

    folder = ROOT / "playbooks/roles/govctl_baseline/vars"
    families = {p.stem: yaml.safe_load(p.read_text()) for p in folder.glob("*.yml")}
    assert set(families) == {"Debian", "RedHat", "openEuler", "Kylin"}
    keys = set(families["Debian"])
    assert all(set(v) == keys for v in families.values())
    rpm = [{k: v for k, v in families[f].items() if k != "govctl_os"} for f in ("RedHat", "openEuler", "Kylin")]
    assert rpm[0] == rpm[1] == rpm[2] and rpm[0]["govctl_pam_method"] == "authselect"
    assert families["Debian"]["govctl_pam_method"] == "pam-auth-update"
