"""SecOps wired to a stack's outputs (no root, no lab): every center's firewall sets become one
enforcer, the management networks and the ops address are never blocked, the lab hosts' own sshd
logs (undated, `sshd -e`) are read from their end and stamped when read."""
from __future__ import annotations

import json
import time

import pytest

from secops.config import ConfigError, load_config
from secops.wiring import make_enforcer
from secops.ingest import FileTail
from secops.normalize import Normalizer
from secops.respond import EnforcerGroup
from infra.outputs import StackOutputs, StackOutputsError
from secops.stack import targets_from_outputs

# The shape `govctl infra outputs --stack lab` prints (docs/stack-outputs.md), cut to what SecOps reads.
OUTPUTS = {
    "backend": "lab",
    "ssh": {"user": "ops", "private_key": "/k/id", "config": "/k/config", "proxy_namespace": "gl-ops",
            "ops_address": "10.11.4.200"},
    "allowlist": ["10.11.4.0/24", "10.12.4.0/24"],
    "centers": {
        c: {"role": "production" if c == "prod" else "samecity_dr", "firewall": {"namespace": f"gl-{c}", "family": "inet", "table": "govctl",
                         "sets": {"ipv4": "blocked_v4", "ipv6": "blocked_v6"}}}
        for c in ("prod", "samecity")
    },
    "hosts": [{"name": "web-1", "fqdn": "web-1.prod", "center": "prod", "zone": "dmz", "zone_kind": "internet_dmz",
               "roles": ["web"], "ipv4": "10.11.1.10", "folder": "/srv/lab/hosts/web-1.prod"}],
}


def test_every_center_firewall_becomes_one_enforcer_with_the_stack_names():
    targets = targets_from_outputs(StackOutputs.from_dict(OUTPUTS), "lab")
    assert [(f["center"], f["netns"], f["table"], f["set"], f["set6"]) for f in targets["firewalls"]] == [
        ("prod", "gl-prod", "govctl", "blocked_v4", "blocked_v6"),
        ("samecity", "gl-samecity", "govctl", "blocked_v4", "blocked_v6")]
    assert targets["allowlist"] == ["10.11.4.0/24", "10.12.4.0/24", "10.11.4.200/32"]
    assert targets["sources"] == [{"name": "sshd.web-1.prod", "format": "sshd", "host": "web-1",
                                   "path": "/srv/lab/hosts/web-1.prod/upper/var/log/govctl/sshd.log"}]
    cfg = load_config(None)
    cfg["enforcer"] = {**cfg["enforcer"], "firewalls": targets["firewalls"], "manage": False}
    enforcer = make_enforcer(cfg)  # manage: false: nothing is created, so no root is needed here
    assert isinstance(enforcer, EnforcerGroup)
    assert [(m.netns, m.table, m.set_name, m.set6) for m in enforcer.members] == [
        ("gl-prod", "govctl", "blocked_v4", "blocked_v6"), ("gl-samecity", "govctl", "blocked_v4", "blocked_v6")]


def test_a_stack_without_firewalls_is_refused_with_what_to_do():
    with pytest.raises(ConfigError, match="govctl lab up"):
        targets_from_outputs(StackOutputs.from_dict({}), "lab")
    broken = json.loads(json.dumps(OUTPUTS))
    del broken["centers"]["prod"]["firewall"]["sets"]["ipv6"]
    with pytest.raises(StackOutputsError, match=r"centers.prod.firewall lacks sets.ipv6"):
        targets_from_outputs(StackOutputs.from_dict(broken), "lab")


def test_config_accepts_stack_and_undated_sshd_sources(tmp_path):
    path = tmp_path / "secops.yaml"
    path.write_text("stack: lab\nsources:\n  - {name: web, path: /x/sshd.log, format: sshd, host: web-1, start: end}\n")
    cfg = load_config(path)
    assert cfg["stack"] == "lab" and cfg["sources"][0]["host"] == "web-1"
    path.write_text("sources:\n  - {name: web, path: /x, start: middle}\n")
    with pytest.raises(ConfigError, match="sources.0.start"):
        load_config(path)


def test_own_sshd_log_lines_are_stamped_when_read_and_named_by_host():
    before = time.time()
    event = Normalizer(fmt="sshd", host="web-1").normalize(
        b"Failed password for root from 203.0.113.66 port 40022 ssh2\r")
    assert before <= event["@timestamp"] <= time.time()
    assert {k: event[k] for k in ("host.hostname", "event.action", "event.outcome", "user.name", "source.ip",
                                  "source.port")} == {
        "host.hostname": "web-1", "event.action": "ssh_login", "event.outcome": "failure", "user.name": "root",
        "source.ip": "203.0.113.66", "source.port": 40022}


def test_tail_started_at_the_end_reads_only_what_is_written_after(tmp_path):
    log = tmp_path / "sshd.log"
    log.write_bytes(b"Server listening on 0.0.0.0 port 22.\r\nold line\r\n")
    tail = FileTail("sshd", log)
    tail.start_at_end()
    assert tail.read(100) is None
    with open(log, "ab") as f:
        f.write(b"new line\r\n")
    assert [raw for _, raw in tail.read(100).lines] == [b"new line\r"]
    missing = FileTail("later", tmp_path / "not-yet.log")
    missing.start_at_end()
    (tmp_path / "not-yet.log").write_bytes(b"first\n")  # a file that appears later is new: all of it
    assert [raw for _, raw in missing.read(100).lines] == [b"first"]


class _Recorder:
    """An enforcement point that keeps blocks in memory (EnforcerGroup's coordination only)."""

    def __init__(self, fail: bool = False):
        self.netns, self.fail, self.items = "recorder", fail, {}

    def block(self, items):
        if self.fail:
            raise RuntimeError("nft: no such table")
        self.items.update(items)

    def unblock(self, addresses):
        for a in addresses:
            self.items.pop(a, None)

    def blocked(self):
        return dict(self.items)


def test_group_applies_to_every_member_and_reports_a_failing_one():
    ok, broken, other = _Recorder(), _Recorder(fail=True), _Recorder()
    group = EnforcerGroup([ok, broken, other])
    with pytest.raises(RuntimeError, match="no such table"):
        group.block([("203.0.113.9", 60)])
    assert ok.items == other.items == {"203.0.113.9": 60}  # the others still got the block
    good = EnforcerGroup([ok, other])
    assert good.blocked() == {"203.0.113.9": 60}
    good.unblock(["203.0.113.9"])
    assert good.blocked() == {}


class _StubEngine:
    """Stands in for infra.engine.Engine: a stack's outputs without Pulumi (secops.stack.with_stack reads
    `outputs()` and `definition.topology`)."""

    outputs_doc: dict = {}

    def __init__(self, stack: str):
        from types import SimpleNamespace

        from core.paths import ROOT
        self.definition = SimpleNamespace(topology=ROOT / "infra" / "topologies" / "lab.yaml")

    def outputs(self) -> dict:
        return self.outputs_doc


def _brute_forces(path, sources):
    lines = [f"Nov  1 00:0{n}:{i:02d} web-1 sshd[1]: Failed password for root from {ip} port {4000 + i} ssh2"
             for n, ip in enumerate(sources) for i in range(8)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_replay_with_stack_never_blocks_what_run_with_stack_never_blocks(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from govctl.cli import app
    # an ops workstation and an allowlist output outside the topology's management zones, so only the
    # stack's outputs can spare them
    outputs = {**json.loads(json.dumps(OUTPUTS)), "ssh": {**OUTPUTS["ssh"], "ops_address": "192.0.2.50"}, "allowlist": ["198.18.7.0/24"]}
    monkeypatch.setattr(_StubEngine, "outputs_doc", outputs)
    monkeypatch.setattr("infra.engine.Engine", _StubEngine)
    log = _brute_forces(tmp_path / "auth.log", ["203.0.113.5", "192.0.2.50", "198.18.7.3"])
    runner = CliRunner()
    plain = runner.invoke(app, ["secops", "replay", str(log), "--year", "2026", "--json"])
    assert plain.exit_code == 0, plain.output
    assert json.loads(plain.stdout)["blocked"] == ["192.0.2.50", "198.18.7.3", "203.0.113.5"]
    on_stack = runner.invoke(app, ["secops", "replay", str(log), "--year", "2026", "--stack", "lab", "--json"])
    assert on_stack.exit_code == 0, on_stack.output
    out = json.loads(on_stack.stdout)
    assert out["blocked"] == ["203.0.113.5"]
    assert out["allowlisted_alerts"] == ["192.0.2.50", "198.18.7.3"]
    # the same resolution as `secops run --stack`: a stack that is not deployed is refused with what to do
    # (the typed reader's one "not deployed" error, exit 1)
    monkeypatch.setattr(_StubEngine, "outputs_doc", {})
    down = runner.invoke(app, ["secops", "replay", str(log), "--stack", "lab", "--json"])
    assert down.exit_code == 1 and "govctl lab up" in down.output
