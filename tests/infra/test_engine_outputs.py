"""A stack's outputs are read from Pulumi once per change of the stack: the answer is kept (keyed by
the stack's checkpoint file) so the checks of a warm `govctl up` do not start Pulumi each time, and
it follows every change of the stack. Real Pulumi, on a stack imported into an isolated state."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # starts the Pulumi CLI a few times (~3 s)

SCENARIO = r"""
import json, sys
from infra.engine import Engine, BACKEND_DIR

engine = Engine("tiny")
engine.prepare()
runs = []
real_run = engine._run
engine._run = lambda args, **kw: runs.append(args[:2]) or real_run(args, **kw)

def deploy(value):
    # what `pulumi up` leaves behind: a new checkpoint whose stack resource has these outputs
    path = BACKEND_DIR / "deployment.json"
    path.write_text(json.dumps({"version": 3, "deployment": {
        "manifest": {"time": "2026-12-06T00:00:00Z", "magic": "", "version": ""},
        "resources": [{"urn": "urn:pulumi:tiny::govctl::pulumi:pulumi:Stack::govctl-tiny",
                       "custom": False, "type": "pulumi:pulumi:Stack", "outputs": {"marker": value}}]}}))
    real_run(["stack", "import", "--stack", "tiny", "--file", str(path)], capture=True)

result = {}
deploy("first")
result["first"] = [engine.outputs(), engine.outputs()]
result["runs_first"] = len([r for r in runs if r == ["stack", "output"]])
deploy("second")
result["second"] = engine.outputs()
result["runs_second"] = len([r for r in runs if r == ["stack", "output"]])
result["secret_read"] = engine.outputs(show_secrets=True)
result["runs_secret"] = len([r for r in runs if r == ["stack", "output"]])
cache = BACKEND_DIR / ".tiny.outputs.json"
result["cache_mode"] = oct(cache.stat().st_mode & 0o777)
print(json.dumps(result))
"""


def test_outputs_are_read_once_per_change_of_the_stack(isolated_state):
    proc = subprocess.run([sys.executable, "-c", SCENARIO], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **isolated_state, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["first"] == [{"marker": "first"}] * 2
    assert result["runs_first"] == 1  # the second read came from the kept answer
    assert result["second"] == {"marker": "second"}  # a new checkpoint: read again, never stale
    assert result["runs_second"] == 2
    assert result["secret_read"] == {"marker": "second"} and result["runs_secret"] == 3  # never kept
    assert result["cache_mode"] == "0o600"
