"""The typed reader of the stack outputs: a real lab shape parses into the documented dataclasses,
a malformed one names the key, a stack without outputs is one error, and drills never load Pulumi."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import GovctlError
from infra import outputs as outputs_mod
from infra.outputs import Center, Firewall, Host, StackNotDeployed, StackOutputs, StackOutputsError

CHECKOUT = Path(__file__).resolve().parents[2]
# What `govctl infra outputs --stack lab` printed for the lab, kept as compliance evidence.
LAB = json.loads((CHECKOUT / "tests/policies/compliance/fixtures/lab/stack.json").read_text())["data"]["outputs"]


def test_the_lab_outputs_parse_into_the_documented_parts():
    out = StackOutputs.from_dict(LAB)
    assert (out.backend, out.topology, out.level) == ("lab", "lab", 3)
    assert out.ssh.config.endswith("config") and out.ssh.ops_address == LAB["ssh"]["ops_address"]
    prod = out.centers["prod"]
    assert isinstance(prod, Center) and prod.role == "production" and prod.namespace == "gl-prod"
    assert prod.firewall == Firewall("gl-prod", "inet", "govctl", "blocked_v4", "blocked_v6")
    assert prod.zones["mgmt"].kind == "security_management"
    assert "10.11.4.0/24" in prod.zones["mgmt"].subnets
    web = out.host("web-1.prod")
    assert isinstance(web, Host) and web.roles == ("web",) and web.zone_kind == "internet_dmz"
    assert web.folder == LAB["hosts"][0]["folder"] and web.namespace == "gl-prod-web-1"
    assert [h.fqdn for h in out.hosts] == [h["fqdn"] for h in LAB["hosts"]]
    assert out.databases.primary.center == "prod" and out.databases.port == LAB["databases"]["port"]
    assert {s.mode for s in out.databases.standbys} == {"synchronous", "asynchronous"}
    assert out.links["prod-remote-a"].between == ("prod", "remote")
    assert out.links["prod-remote-a"].ends[0] == ("gl-prod", "l-prod-remote-a")
    assert out.service.active_center == "prod" and out.web["prod"].port == LAB["web"]["prod"]["port"]
    assert out.internet_namespace() == LAB["outside"]["internet"]["namespace"]
    assert out.vantage_points == LAB["vantage_points"]
    assert list(out.allowlist) == LAB["allowlist"] and list(out.namespaces) == LAB["namespaces"]
    assert out.to_dict() == LAB  # what reports and evidence save is exactly what the engine gave


@pytest.mark.parametrize("path, change, named", [
    ("hosts.0", lambda o: o["hosts"][0].pop("fqdn"), r"hosts\[0\] lacks fqdn"),
    ("firewall set", lambda o: o["centers"]["prod"]["firewall"]["sets"].pop("ipv6"),
     r"centers\.prod\.firewall lacks sets\.ipv6"),
    ("ssh", lambda o: o["ssh"].pop("config"), r"ssh lacks config"),
    ("standby", lambda o: o["databases"]["standbys"][1].pop("mode"), r"databases\.standbys\[1\] lacks mode"),
    ("port type", lambda o: o["databases"].update(port="5432"), r"databases\.port is str, not an integer"),
    ("centers type", lambda o: o.update(centers=["prod"]), r"centers is list, not a mapping"),
    ("link ends", lambda o: o["links"]["prod-remote-a"].update(between=["prod"]),
     r"links\.prod-remote-a\.between names 1 centers, not 2"),
])
def test_a_malformed_output_is_refused_naming_the_key(path, change, named):
    broken = copy.deepcopy(LAB)
    change(broken)
    with pytest.raises(StackOutputsError, match=named) as err:
        StackOutputs.from_dict(broken)
    assert "docs/stack-outputs.md" in str(err.value) and err.value.exit_code == 1


def test_a_stack_without_outputs_is_one_clear_error(monkeypatch):
    asked = []

    class NoOutputs:
        def __init__(self, stack):
            asked.append(stack)

        def outputs(self):
            return {}  # what the engine answers for a stack never brought up (or destroyed)

    import infra.engine

    monkeypatch.setattr(infra.engine, "Engine", NoOutputs)
    with pytest.raises(StackNotDeployed, match=r"stack 'lab' is not deployed .*run `govctl lab up`"):
        outputs_mod.read_stack_outputs("lab")
    with pytest.raises(GovctlError, match=r"run `govctl infra up --stack tiny`"):
        outputs_mod.read_stack_outputs("tiny")
    assert asked == ["lab", "tiny"]  # one engine call per read


def test_the_reader_returns_the_parsed_outputs(monkeypatch):
    class Deployed:
        def __init__(self, stack):
            pass

        def outputs(self):
            return copy.deepcopy(LAB)

    import infra.engine

    monkeypatch.setattr(infra.engine, "Engine", Deployed)
    assert outputs_mod.read_stack_outputs("lab") == StackOutputs.from_dict(LAB)


def test_other_backends_parse_with_what_they_export():
    tiny = StackOutputs.from_dict({"marker": "/state/tiny/tiny.json", "centers": {"prod": "production"},
                                   "policy_facts": {"topology": {"name": "default"}}})
    assert tiny.centers["prod"] == Center(role="production") and tiny.hosts == () and tiny.service is None
    assert tiny.to_dict()["marker"] == "/state/tiny/tiny.json"
    cloud = StackOutputs.from_dict({
        "backend": "openstack", "topology": "default", "policy_facts": {"audit": {"enabled": False}},
        "centers": {"prod": {"role": "production", "region": "RegionOne", "lb_vip": "10.0.0.5"}},
        "hosts": {"prod/web-1": {"port_id": "p-1"}},
        "links": [{"name": "prod-samecity-a", "between": ["prod", "samecity"]}]})
    assert cloud.centers["prod"].role == "production" and cloud.centers["prod"].firewall is None
    assert cloud.hosts == () and cloud.links == {}  # the backend's own shapes stay in to_dict()
    assert cloud.to_dict()["hosts"] == {"prod/web-1": {"port_id": "p-1"}}


def test_importing_the_drills_loads_neither_pulumi_nor_the_lab_providers():
    code = ("import sys, drills.runner, drills.lab, drills.actions, drills.plans\n"
            "print(sorted(m for m in sys.modules if m == 'infra.lab.providers' or m.startswith('pulumi')))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=CHECKOUT,
                         env={"PYTHONPATH": str(CHECKOUT)})
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_outside_infra_only_the_outputs_command_asks_the_engine_for_raw_outputs():
    callers = subprocess.run(["grep", "-rln", "--include=*.py", r"\.outputs(", "govctl", "secops", "monitors",
                              "drills", "policies", "crypto", "core"], capture_output=True, text=True, cwd=CHECKOUT)
    assert callers.stdout.split() == ["govctl/commands/infra.py"]


@pytest.mark.parametrize("command", [
    ("drill", "run", "samecity-switchover", "--dry-run"),
    ("monitor", "up", "--stack", "lab"),
    ("audit", "--stack", "lab"),
])
def test_every_consumer_command_says_the_same_thing_when_the_lab_is_not_deployed(command, isolated_state):
    from tests.conftest import run_govctl

    proc = run_govctl(*command, env=isolated_state, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "stack 'lab' is not deployed (it has no outputs): run `govctl lab up`" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_hosts_recorded_outside_this_checkouts_lab_folder_are_named():
    """A state copied or moved from another checkout describes that checkout's lab (stop 24's CI)."""
    from infra.lab.cleanup import foreign_hosts
    recorded = StackOutputs.from_dict(LAB)  # made in /work/main
    assert foreign_hosts(recorded, Path("/work/main/state/lab")) == []
    assert foreign_hosts(recorded, Path("/check/work/main/state/lab")) == [h["folder"] for h in LAB["hosts"]]
    assert foreign_hosts(recorded, Path("/work/main/state/la")) == [h["folder"] for h in LAB["hosts"]]


def test_the_sweep_counts_only_paths_inside_this_checkouts_lab_folder():
    """The sweep kills and unmounts what lies under state/lab; a sibling folder such as state/lab2 is not the lab's."""
    from infra.lab.cleanup import LAB_DIR, _in_lab_dir
    assert _in_lab_dir(str(LAB_DIR / "hosts" / "web-1.prod.lab" / "root"))
    assert not _in_lab_dir(f"{LAB_DIR}2/hosts/web-1.prod.lab/root")
    assert not _in_lab_dir(None) and not _in_lab_dir("")
