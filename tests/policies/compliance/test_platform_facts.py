"""Platform facts in the evidence (issue 19): the SecOps layer records the effective configuration of the
platform's SecOps component (its command line as `govctl up` recorded it), so the items judged on the
log sources and the retention are decided from what the daemon runs with, not from a hand-written file."""
from __future__ import annotations

import json

import pytest

from policies.compliance import COMPLIANT, MANUAL, PARTIAL, collect

from .conftest import deciding_text, evaluate, fixture_layers, item


def platform_state(tmp_path, monkeypatch, run: list[str], state: str | None = "running"):
    """A state folder holding a platform record whose secops component runs `run`."""
    from core import paths

    monkeypatch.setattr(paths, "STATE", tmp_path)
    (tmp_path / "platform").mkdir()
    components = [{"name": "lab", "kind": "step", "run": ["govctl", "lab", "up"]},
                  {"name": "secops", "kind": "service", "run": run}]
    (tmp_path / "platform" / "platform.json").write_text(json.dumps({"components": components}))
    if state:
        (tmp_path / "platform" / "status.json").write_text(json.dumps({"services": {"secops": {"state": state}}}))


@pytest.fixture
def secops_config(tmp_path):
    config = tmp_path / "secops.yaml"
    config.write_text(f"store: {tmp_path / 'secops.db'}\nretention_days: 200\n")
    return config


def test_the_collector_records_the_platform_components_effective_configuration(tmp_path, monkeypatch, secops_config):
    platform_state(tmp_path, monkeypatch, ["/opt/govctl", "secops", "run", "--enforce", "--config", str(secops_config),
                                           "--source", "console=/srv/console-signin.log"])
    data = collect.collect_secops()["data"]
    assert data["platform_component"]["state"] == "running"
    assert data["config"]["sources"] == [{"name": "console", "path": "/srv/console-signin.log"}]
    assert data["config"]["retention_days"] == 200 and data["config"]["response"]["dry_run"] is False
    assert data["effective"]["sources"][0]["name"] == "console"


def test_without_a_platform_the_configuration_file_is_read(tmp_path, monkeypatch, secops_config):
    from core import paths
    from secops import config as secops_module

    monkeypatch.setattr(paths, "STATE", tmp_path)
    monkeypatch.setattr(secops_module, "DEFAULT_CONFIG_PATH", secops_config)
    data = collect.collect_secops()["data"]
    assert data["platform_component"] is None and data["config_file"] == str(secops_config)
    assert data["config"]["sources"] == []


def with_secops(tmp_path, monkeypatch, run: list[str]) -> dict:
    platform_state(tmp_path, monkeypatch, run)
    layers = fixture_layers()
    collected = collect.collect_secops()
    layers["secops"]["data"].update({k: collected["data"][k] for k in ("config", "platform_component", "effective")})
    return layers


def test_log_sources_are_decided_from_the_running_component(tmp_path, monkeypatch, secops_config):
    before = evaluate("djcp", fixture_layers())
    assert item(before, "CL-MC-C")["verdict"] == MANUAL      # the saved evidence: no platform, no config file
    layers = with_secops(tmp_path, monkeypatch, ["govctl", "secops", "run", "--config", str(secops_config),
                                                 "--source", "console=/srv/console-signin.log"])
    report = evaluate("djcp", layers)
    entry = item(report, "CL-MC-C")
    assert entry["verdict"] == COMPLIANT
    assert "console(auto)" in deciding_text(entry) and "平台组件 secops" in deciding_text(entry)
    assert item(report, "AB-IPS-B")["verdict"] != MANUAL


def test_a_component_without_inputs_is_not_compliant(tmp_path, monkeypatch, secops_config):
    layers = with_secops(tmp_path, monkeypatch, ["govctl", "secops", "run", "--config", str(secops_config)])
    entry = item(evaluate("djcp", layers), "CL-MC-C")
    assert entry["verdict"] == PARTIAL and "没有配置任何日志源" in deciding_text(entry)   # retention passes


def test_a_dry_run_component_is_not_intercepting(tmp_path, monkeypatch, secops_config):
    layers = with_secops(tmp_path, monkeypatch, ["govctl", "secops", "run", "--dry-run", "--config", str(secops_config),
                                                 "--source", "a=/x"])
    assert layers["secops"]["data"]["config"]["response"]["dry_run"] is True
    assert "演练模式" in deciding_text(item(evaluate("djcp", layers), "AB-IPS-D"))


@pytest.mark.parametrize("run, expected", [
    (["govctl", "secops", "run", "--source", "no-equals-sign"], "--source 'no-equals-sign' must be NAME=PATH"),
    (["govctl", "lab", "up"], "not a `secops run` command line"),
])
def test_a_broken_command_line_is_refused_naming_it(run, expected):
    from secops.config import ConfigError
    from secops.effective import from_command

    with pytest.raises(ConfigError) as refused:
        from_command(run)
    assert expected in str(refused.value)


def test_a_component_whose_configuration_cannot_be_rebuilt_falls_back_to_the_file(tmp_path, monkeypatch):
    """The platform was brought up once but its stack is gone: the layer still carries the rules and the
    store, says why, and the log-source items wait for a person again."""
    platform_state(tmp_path, monkeypatch, ["govctl", "secops", "run", "--stack", "no-such-stack"], state=None)
    doc = collect.collect_secops()
    assert doc["status"] == "ok" and doc["data"]["effective"] is None
    assert "no-such-stack" in doc["data"]["platform_component"]["error"]
    layers = fixture_layers()
    layers["secops"]["data"].update({k: doc["data"][k] for k in ("config", "platform_component", "effective")})
    assert item(evaluate("djcp", layers), "CL-MC-C")["verdict"] == MANUAL
