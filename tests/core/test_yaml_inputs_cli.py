"""Hostile YAML through the real commands that read it: exit 2, the file and the fix on stderr, never a
traceback, never a hang (each run has a timeout)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_govctl

from .hostile import HOSTILE, LINES, write_hostile

TIMEOUT = 60  # a hang fails the test instead of holding CI

# command → how it is given the file
COMMANDS = {
    "topology": lambda path: ["topology", "validate", str(path)],
    "secops-config": lambda path: ["secops", "rules", "--config", str(path)],
    "slo-spec": lambda path: ["slo", "render", str(path)],
    "drill-plan": lambda path: ["drill", "show", str(path)],
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, Path]:
    return write_hostile(tmp_path_factory.mktemp("hostile-cli"))


def flat(text: str) -> str:
    return " ".join(text.split())  # the console wraps long messages


def cases():
    for command in COMMANDS:
        for kind in HOSTILE:
            if command == "secops-config" and kind == "empty":
                continue  # an empty secops config means all defaults (test below)
            yield command, kind


@pytest.mark.parametrize("command,kind", list(cases()))
def test_hostile_file_exits_2_naming_file_and_fix(hostile, command, kind):
    path = hostile[kind]
    proc = run_govctl(*COMMANDS[command](path), timeout=TIMEOUT, env={"COLUMNS": "200"})
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output[-3000:]
    assert "Traceback" not in output
    stderr = flat(proc.stderr)
    assert str(path) in stderr
    for words in HOSTILE[kind][1]:
        assert words in stderr, stderr


def test_topology_json_keeps_the_line(hostile):
    for kind in ("duplicate-top", "duplicate-nested", "gbk"):
        proc = run_govctl("topology", "validate", "--json", str(hostile[kind]), timeout=TIMEOUT)
        assert proc.returncode == 2 and "Traceback" not in proc.stdout + proc.stderr
        report = json.loads(proc.stdout)
        assert report["valid"] is False and report["file"] == str(hostile[kind])
        assert report["problems"][0]["line"] == LINES[kind], report


def test_a_hostile_sigma_rule_file_is_refused_by_name(hostile):
    proc = run_govctl("secops", "rules", "--rules", str(hostile["alias-bomb"]), timeout=TIMEOUT,
                      env={"COLUMNS": "200"})
    assert proc.returncode == 2 and "Traceback" not in proc.stdout + proc.stderr
    stderr = flat(proc.stderr)
    assert f"{hostile['alias-bomb']}: line 9: aliases expand the document" in stderr, stderr


def test_an_empty_secops_config_means_the_defaults(hostile):
    proc = run_govctl("secops", "rules", "--json", "--config", str(hostile["empty"]), timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) > 0  # the bundled rules, as with no config at all
