"""The real Pulumi engine end to end on the tiny stack (one Python dynamic resource)."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_govctl

pytestmark = pytest.mark.slow


def test_pulumi_cli_matches_the_pinned_sdk():
    from importlib.metadata import version

    out = os.popen(f"{ROOT / '.tools/pulumi/pulumi'} version").read().strip()
    assert out == f"v{version('pulumi')}"
    for script in ("pulumi-language-python", "pulumi-language-python-exec",
                   "pulumi-resource-pulumi-python", "pulumi-analyzer-policy-python"):
        assert os.access(ROOT / ".tools/pulumi" / script, os.X_OK), script


def test_tiny_stack_preview_up_noop_destroy(isolated_state):
    state = Path(isolated_state["GOVCTL_STATE"])
    preview = run_govctl("infra", "preview", "--stack", "tiny", "--json", env=isolated_state)
    assert preview.returncode == 0, preview.stderr
    plan = json.loads(preview.stdout)
    assert plan["changeSummary"] == {"create": 2}
    assert {s["urn"].split("::")[-1] for s in plan["steps"]} == {"govctl-tiny", "topology-marker"}
    assert not (state / "tiny" / "tiny.json").exists(), "preview must not touch anything"

    # Secrets: the passphrase is generated once, private to its owner.
    assert stat.S_IMODE((state / "passphrase").stat().st_mode) == 0o600

    first = run_govctl("infra", "up", "--stack", "tiny", "--json", env=isolated_state)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["result"] == "succeeded" and summary["resourceChanges"] == {"create": 2}
    marker = json.loads((state / "tiny" / "tiny.json").read_text())
    assert marker["centers"] == {"prod": "production", "samecity": "same_city_dr",
                                 "remote": "remote_dr"}

    second = run_govctl("infra", "up", "--stack", "tiny", "--json", env=isolated_state)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["resourceChanges"] == {"same": 2}

    gone = run_govctl("infra", "destroy", "--stack", "tiny", "--json", env=isolated_state)
    assert gone.returncode == 0, gone.stderr
    assert json.loads(gone.stdout)["resourceChanges"] == {"delete": 2}
    assert not (state / "tiny" / "tiny.json").exists()
    assert not list(ROOT.glob("Pulumi.*.yaml")), "stack config belongs in the state folder"


def test_unknown_stack_is_bad_input(isolated_state):
    proc = run_govctl("infra", "preview", "--stack", "nope", env=isolated_state)
    assert proc.returncode == 2
    assert "unknown stack 'nope'" in proc.stderr and "tiny" in proc.stderr


def test_invalid_topology_is_refused_before_the_engine_runs(isolated_state, tmp_path):
    stacks = ROOT / "infra" / "stacks"
    bad = stacks / "test-broken.yaml"
    bad.write_text("backend: tiny\ntopology: tests/infra/topology/invalid/sync-to-remote.yaml\n")
    try:
        proc = run_govctl("infra", "up", "--stack", "test-broken", env=isolated_state)
    finally:
        bad.unlink()
    assert proc.returncode == 2
    assert "use asynchronous" in " ".join(proc.stderr.split())
    assert not (Path(isolated_state["GOVCTL_STATE"]) / "pulumi" / ".pulumi").exists()
