"""The 等保 pack through `govctl infra preview` on lab stacks: the lab passes; a broken lab
topology (one link per pair, SSH from the internet into management) fails with its clauses."""
from __future__ import annotations

import pytest

from tests.conftest import ROOT, run_govctl

pytestmark = [pytest.mark.slow, pytest.mark.root]
PACK = "policies/djcp_pack"


def test_the_lab_stack_passes_the_pack(lab):
    proc = run_govctl("infra", "preview", "--stack", "lab", "--policy-pack", PACK, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Policy Violations" not in proc.stdout + proc.stderr


def test_a_broken_lab_topology_fails_the_preview_with_the_clauses(isolated_state, tmp_path):
    stack = tmp_path / "lab-broken.yaml"
    stack.write_text(f"backend: lab\ntopology: {ROOT}/tests/policies/djcp_pack/topologies/broken-lab.yaml\n"
                     "generated_secrets: [pg_replication_password, pg_app_password, pg_monitor_password]\n")
    proc = run_govctl("infra", "preview", "--stack", str(stack), "--policy-pack", PACK,
                      env=isolated_state, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert "[mandatory]" in out
    assert "GB/T 22239-2019 8.1.2.1 e)" in out  # a primary and a standby link per pair
    assert "GB/T 22239-2019 8.1.5.4 a)" in out  # management zone reached only from itself
    assert "internet -> security_management (tcp/22)" in out
