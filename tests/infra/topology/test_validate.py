"""Every refusal of the topology validator, each triggered by a YAML file, with its message."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.topology import DEFAULT_TOPOLOGY, TopologyError, load_topology
from tests.conftest import run_govctl

HERE = Path(__file__).parent
INVALID = HERE / "invalid"

# file → (line, path, words the message must contain)
REFUSALS = {
    "overlap-ipv4.yaml": (21, "centers[1].ipv4", ["10.1.128.0/17 overlaps 10.1.0.0/16", "centers[0].ipv4"]),
    "overlap-ipv6.yaml": (16, "centers[0].zones[1].subnets[0].ipv6", ["fd00:1:0:1:8000::/65 overlaps fd00:1:0:1::/64"]),
    "out-of-range-ipv4.yaml": (24, "centers[1].zones[0].subnets[0].ipv4", ["10.9.1.0/24 is outside the center's block 10.2.0.0/16"]),
    "out-of-range-ipv6.yaml": (31, "centers[2].zones[0].subnets[0].ipv6", ["fd00:9:0:1::/64 is outside the center's block fd00:3::/48"]),
    "bad-prefix.yaml": (28, "centers[2].ipv4", ["'10.3.0.0/33' is not a valid IPv4 CIDR", "write it like"]),
    "host-outside-zone.yaml": (17, "centers[0].hosts[0].ipv4", ["10.1.7.10 is outside zone 'core'"]),
    "duplicate-center.yaml": (25, "centers[2].name", ["duplicate center name 'dr1'", "must be unique"]),
    "two-production.yaml": (9, "centers", ["exactly one center must have role production (found prod, dr1)"]),
    "no-production.yaml": (9, "centers", ["exactly one center must have role production (found none)"]),
    "no-same-city-dr.yaml": (9, "centers", ["no same-city DR center in the production site 'city-a'"]),
    "no-remote-dr.yaml": (9, "centers", ["no remote DR center in another site"]),
    "sync-to-remote.yaml": (38, "replication[1].mode", ["synchronous replication from 'prod' to the remote center 'dr2'", "use asynchronous"]),
    "host-zone-missing.yaml": (17, "centers[0].hosts[0].zone", ["zone 'mgmt' does not exist in center 'prod'"]),
    "single-link-level3.yaml": (33, "links", ["'prod' and 'dr1' have a single inter-center link", "level 3 asks for two"]),
    "unknown-key.yaml": (28, "centers[2].zonez", ["'zonez' was unexpected", "check its spelling"]),
}


def test_every_invalid_file_has_a_case():
    assert sorted(p.name for p in INVALID.glob("*.yaml")) == sorted(REFUSALS)


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_refusal_names_file_line_path_and_fix(name):
    line, path, words = REFUSALS[name]
    with pytest.raises(TopologyError) as caught:
        load_topology(INVALID / name)
    problems = [p for p in caught.value.problems if p.path == path]
    assert problems, f"no problem at {path}; got {caught.value.problems}"
    assert any(all(w in p.message for w in words) and p.line == line for p in problems), problems
    rendered = caught.value.render()
    assert f"{INVALID / name}:{line}: {path}:" in rendered
    assert "nothing was touched" in rendered


def test_valid_files_load():
    minimal = load_topology(HERE / "valid-minimal.yaml")
    assert [c.role for c in minimal.centers] == ["production", "same_city_dr", "remote_dr"]
    lab = load_topology(DEFAULT_TOPOLOGY)
    assert lab.production.name == "prod"
    assert {h.fqdn for h in lab.hosts} >= {"web-1.prod", "db-1.samecity", "bastion-1.remote"}
    assert {(r.target, r.mode) for r in lab.replication} == {("samecity", "synchronous"),
                                                             ("remote", "asynchronous")}


def test_yaml_syntax_error_is_reported_with_line(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: x\ncenters: [\n  - oops: {\n")
    with pytest.raises(TopologyError) as caught:
        load_topology(bad)
    assert "not valid YAML" in caught.value.render()
    assert caught.value.problems[0].line is not None


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(TopologyError, match="cannot read the file"):
        load_topology(tmp_path / "nope.yaml")


def test_cli_validate_exit_codes_and_json():
    ok = run_govctl("topology", "validate", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["valid"] is True
    bad = run_govctl("topology", "validate", str(INVALID / "sync-to-remote.yaml"))
    assert bad.returncode == 2
    assert "use asynchronous" in " ".join(bad.stderr.split())
    bad_json = run_govctl("topology", "validate", str(INVALID / "overlap-ipv4.yaml"), "--json")
    assert bad_json.returncode == 2
    doc = json.loads(bad_json.stdout)
    assert doc["valid"] is False and doc["problems"][0]["path"] == "centers[1].ipv4"


def test_cli_show_json_is_the_model():
    shown = run_govctl("topology", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert [c["name"] for c in doc["centers"]] == ["prod", "samecity", "remote"]
    assert doc["centers"][0]["hosts"][0]["ipv4"] == "10.11.1.10"
    tree = run_govctl("topology", "show")
    assert "web-1.prod" in tree.stdout and "同城灾备中心" in tree.stdout
