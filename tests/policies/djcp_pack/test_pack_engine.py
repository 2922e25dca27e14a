"""The pack through the real Pulumi engine: `pulumi preview --policy-pack policies/djcp_pack`
with the Python analyzer plugin, on a stack that exports topology facts like every backend."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from core.paths import ROOT, TOOLS, VENV

HERE = Path(__file__).parent
PACK = ROOT / "policies" / "djcp_pack"


@pytest.fixture
def project(tmp_path):
    work = tmp_path / "project"
    shutil.copytree(HERE / "engine_program", work)
    (work / "Pulumi.yaml").write_text(
        "name: djcp-policy-test\nruntime:\n  name: python\n  options:\n"
        f"    virtualenv: {VENV}\nmain: {work}\n")
    env = dict(os.environ, PATH=f"{TOOLS / 'pulumi'}:{VENV / 'bin'}:{os.environ['PATH']}",
               PULUMI_HOME=str(tmp_path / "home"), PULUMI_BACKEND_URL=f"file://{tmp_path / 'state'}",
               PULUMI_SKIP_UPDATE_CHECK="true", PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
               PULUMI_CONFIG_PASSPHRASE="policy-test")
    (tmp_path / "state").mkdir()

    def pulumi(*args):
        return subprocess.run([str(TOOLS / "pulumi" / "pulumi"), *args, "--non-interactive"], cwd=work,
                              env=env, capture_output=True, text=True, timeout=300)

    assert pulumi("stack", "init", "t").returncode == 0
    return pulumi


def _preview(pulumi, topology: Path, retention: int = 180):
    pulumi("config", "set", "govctl:topology", str(topology))
    pulumi("config", "set", "govctl:auditRetentionDays", str(retention))
    return pulumi("preview", "--policy-pack", str(PACK))


@pytest.mark.slow
def test_lab_topology_passes_the_pack(project):
    proc = _preview(project, ROOT / "infra" / "topologies" / "lab.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Policy Violations" not in proc.stdout


@pytest.mark.slow
def test_broken_lab_topology_fails_with_the_clauses(project):
    proc = _preview(project, HERE / "topologies" / "broken-lab.yaml", retention=30)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "[mandatory]" in out and "govctl-djcp-level3" in out
    for rule, clause in (("djcp-redundant-inter-center-links", "8.1.2.1 e)"),
                         ("djcp-topology-mgmt-ports-closed", "8.1.3.2 a)"),
                         ("djcp-management-zone-isolated", "8.1.5.4 a)"),
                         ("djcp-audit-trail-retention", "8.1.5.4 d)")):
        assert rule in out and f"GB/T 22239-2019 {clause}" in out, (rule, out)
    assert "fewer than 180" in out
