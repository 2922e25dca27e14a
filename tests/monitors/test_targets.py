"""Monitoring targets → generated configuration, checked by promtool and amtool themselves."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from core.errors import BadInput
from infra.outputs import StackOutputs
from monitors.lab import targets_from_stack_outputs
from monitors.slo import load_slo_spec
from monitors.specfile import SpecError
from monitors.stack import Layout, write_configuration
from monitors.targets import load_targets, probe_configs, targets_from_dict

# The lab's stack outputs, in the shape docs/stack-outputs.md documents (only the keys read here).
LAB_OUTPUTS = {
    "web": {c: {"host": f"web-1.{c}", "address": f"10.1{i}.1.10", "port": 80,
                "url": f"http://10.1{i}.1.10:80/"} for i, c in enumerate(("prod", "samecity", "remote"), 1)},
    "databases": {"port": 5432, "database": "gov",
                  "primary": {"center": "prod", "host": "db-1.prod", "address": "10.11.3.10"},
                  "standbys": [{"center": "samecity", "host": "db-1.samecity", "address": "10.12.3.10",
                                "mode": "synchronous", "application_name": "samecity"},
                               {"center": "remote", "host": "db-1.remote", "address": "10.13.3.10",
                                "mode": "asynchronous", "application_name": "remote"}]},
    "service": {"name": "gov-portal", "ipv4": "10.250.0.80", "ipv6": "fd00:250::80", "port": 80,
                "url": "http://10.250.0.80:80/", "active_center": "prod", "route_namespace": "gl-wan"},
    "vantage_points": {"internet": "gl-internet", "egov-net": "gl-egov-net",
                       "prod": "gl-prod-bastion-1", "samecity": "gl-samecity-bastion-1",
                       "remote": "gl-remote-bastion-1"},
    "hosts": [{"name": "db-1", "fqdn": "db-1.prod", "center": "prod", "zone": "core", "zone_kind": "core_business",
               "roles": ["database"], "ipv4": "10.11.3.10", "namespace": "gl-prod-db-1"}],
    "outside": {"internet": {"kind": "internet", "namespace": "gl-internet", "address": "203.0.113.10"},
                "egov-net": {"kind": "egov_extranet", "namespace": "gl-egov-net",
                             "address": "198.51.100.10"}},
}


def test_lab_outputs_become_targets_and_valid_prometheus_and_alertmanager_config(tmp_path: Path):
    targets = targets_from_dict(targets_from_stack_outputs(StackOutputs.from_dict(LAB_OUTPUTS), passfile="/root/.pgpass"))
    spec = load_slo_spec()
    processes = write_configuration(Layout(tmp_path), targets, spec)
    names = [p.name for p in processes]
    assert names == ["webhook", "probe-egov-net", "probe-internet", "probe-prod", "probe-remote",
                     "probe-samecity", "replication", "alertmanager", "prometheus"]
    probe = next(p for p in processes if p.name == "probe-internet")
    assert probe.argv[-2:] == ["--netns", "gl-internet"]
    assert next(p for p in processes if p.name == "replication").argv[-2:] == ["--netns", "gl-prod-db-1"]
    config = tmp_path / "config"
    check = subprocess.run(["promtool", "check", "config", str(config / "prometheus.yml")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout and "rule files found" in check.stdout
    am = subprocess.run(["amtool", "check-config", str(config / "alertmanager.yml")],
                        capture_output=True, text=True)
    assert am.returncode == 0, am.stdout + am.stderr
    routes = yaml.safe_load((config / "alertmanager.yml").read_text())["route"]
    assert routes["receiver"] == "ticket" and routes["routes"][0]["receiver"] == "page"
    probes = yaml.safe_load((config / "probe-internet.yaml").read_text())["targets"]
    by_name = {t["name"]: t for t in probes}
    assert by_name["web-1.prod"] == {"name": "web-1.prod", "center": "prod", "service": "gov-portal",
                                     "kind": "http", "url": "http://10.11.1.10:80/healthz"}
    assert "db-1.remote" not in by_name  # citizens' networks may not reach PostgreSQL
    inside = {t["name"]: t for t in yaml.safe_load((config / "probe-samecity.yaml").read_text())["targets"]}
    assert inside["db-1.remote"]["address"] == "10.13.3.10:5432"
    prom = yaml.safe_load((config / "prometheus.yml").read_text())
    kinds = {j["job_name"]: j["static_configs"][0]["labels"]["vantage_kind"]
             for j in prom["scrape_configs"] if j["job_name"].startswith("probe-")}
    assert kinds == {"probe-egov-net": "outside", "probe-internet": "outside", "probe-prod": "inside",
                     "probe-remote": "inside", "probe-samecity": "inside"}
    assert by_name["gov-portal-ipv6"]["url"] == "http://[fd00:250::80]:80/healthz"
    assert by_name["gov-portal-ipv4"]["center"] == "service-address"
    assert by_name["gov-portal-ipv4"]["served_by_header"] == "X-Center"
    repl = yaml.safe_load((config / "replication.yaml").read_text())
    assert repl["standbys"] == [{"center": "samecity", "mode": "synchronous"},
                                {"center": "remote", "mode": "asynchronous"}]
    assert "passfile=/root/.pgpass" in repl["databases"][0]["dsn"]


def test_probe_timeout_is_kept_below_the_interval():
    targets = targets_from_dict(targets_from_stack_outputs(StackOutputs.from_dict(LAB_OUTPUTS)))
    spec = load_slo_spec()
    cfg = probe_configs(targets, spec)["internet"]
    assert cfg["interval"] == "5s" and cfg["timeout"] == "4s"  # 5s default, capped at 0.8 × interval


def test_too_few_vantage_points_for_the_quorum_is_bad_input(tmp_path: Path):
    outputs = {**LAB_OUTPUTS, "vantage_points": {"internet": "gl-internet"}}
    targets = targets_from_dict(targets_from_stack_outputs(StackOutputs.from_dict(outputs)))
    with pytest.raises(BadInput) as err:
        write_configuration(Layout(tmp_path), targets, load_slo_spec())
    assert "needs a quorum of" in str(err.value) and "has 1" in str(err.value)
    assert getattr(err.value, "exit_code", None) == 2


def test_targets_file_errors_name_file_and_line(tmp_path: Path):
    path = tmp_path / "targets.yaml"
    path.write_text("centers:\n  prod:\n    services:\n      web:\n"
                    "        - {name: w, url: 'http://x/', address: 'x:1'}\n"
                    "        - {name: v, url: 'http://x/', vantages: [c]}\n"
                    "vantages:\n  a: {listen: '127.0.0.1:1'}\n  b: {listen: '127.0.0.1:1'}\n"
                    "databases:\n  prod: {dsn: 'host=x password=s3cret'}\n")
    with pytest.raises(SpecError) as err:
        load_targets(path)
    text = str(err.value)
    assert f"{path}:5: centers.prod.services.web[0]: give either url" in text
    assert f"{path}:6: centers.prod.services.web[1].vantages: vantage point 'c' is not declared" in text
    assert f"{path}:9: vantages.b.listen: 127.0.0.1:1 is already used by vantage 'a'" in text
    assert f"{path}:11: databases.prod.dsn: remove the password" in text and "s3cret" not in text


def test_every_inter_center_link_is_pinged_end_to_end_from_the_centers_inside_vantage_points():
    """A standby link carries no traffic while its primary is up: each end's inside vantage point pings the far
    end's address (reachable only over that link), so the link — primary or standby — is measured on its own."""
    from tests.monitors.ops_monitoring import lab_outputs

    outputs = StackOutputs.from_dict(lab_outputs())
    assert outputs.links["prod-samecity-b"].addresses == ("172.31.0.5", "172.31.0.6")
    targets = targets_from_dict(targets_from_stack_outputs(outputs))
    configs = probe_configs(targets, load_slo_spec())
    links = {v: {t["name"]: t for t in c["targets"] if t["service"] == "inter-center-link"}
             for v, c in configs.items()}
    assert links["prod"]["link:prod-samecity-b"] == {"name": "link:prod-samecity-b", "center": "samecity",
                                                     "service": "inter-center-link", "kind": "icmp",
                                                     "host": "172.31.0.6"}
    assert links["samecity"]["link:prod-samecity-b"]["host"] == "172.31.0.5"
    assert sorted(links["remote"]) == ["link:prod-remote-a", "link:prod-remote-b", "link:samecity-remote-a",
                                       "link:samecity-remote-b"]
    assert links["internet"] == {} and links["egov-net"] == {}  # citizens' networks cannot see the backbone
    # outputs without link addresses (a backend that does not export them): no link probes, no error
    bare = lab_outputs()
    for link in bare["links"].values():
        del link["addresses"]
    assert "links" not in targets_from_stack_outputs(StackOutputs.from_dict(bare))


def test_link_probes_load_in_the_exporter(tmp_path: Path):
    from monitors.probe import load_probe_config
    from tests.monitors.ops_monitoring import lab_outputs

    targets = targets_from_dict(targets_from_stack_outputs(StackOutputs.from_dict(lab_outputs())))
    write_configuration(Layout(tmp_path), targets, load_slo_spec())
    config = load_probe_config(tmp_path / "config" / "probe-prod.yaml")
    pings = {t.name: (t.kind, t.host, t.center) for t in config.targets if t.kind == "icmp"}
    assert pings["link:prod-remote-b"] == ("icmp", "172.31.0.14", "remote")
    assert len(pings) == 4  # prod's four links: to samecity and to remote, primary and standby


def test_a_link_end_naming_an_undeclared_vantage_point_or_the_reserved_service_is_refused(tmp_path: Path):
    path = tmp_path / "targets.yaml"
    path.write_text("centers:\n  prod:\n    services:\n      inter-center-link:\n"
                    "        - {name: w, url: 'http://x/'}\n"
                    "vantages:\n  prod: {listen: '127.0.0.1:1'}\n"
                    "links:\n  prod-dr-b:\n    ends:\n"
                    "      - {center: prod, address: 172.31.0.5, vantage: prod}\n"
                    "      - {center: dr, address: 172.31.0.6, vantage: dr}\n")
    with pytest.raises(SpecError) as err:
        load_targets(path)
    text = str(err.value)
    assert "links.prod-dr-b.ends[1].vantage: vantage point 'dr' is not declared under vantages" in text
    assert "centers.prod.services.inter-center-link: 'inter-center-link' is reserved for the link probes" in text
