"""Shared test helpers: run the real `govctl` entry point in a subprocess, isolated state."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOVCTL = ROOT / ".venv" / "bin" / "govctl"


def run_govctl(*args: str, env: dict | None = None, timeout: float = 600,
               input: str | None = None) -> subprocess.CompletedProcess:
    """Run govctl as a user would; returns the completed process (never raises on exit code)."""
    return subprocess.run([str(GOVCTL), *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=timeout, input=input)


@pytest.fixture
def isolated_state(tmp_path) -> dict:
    """Environment that points govctl's state (Pulumi backend, keys, stores) at a temp folder."""
    state = tmp_path / "state"
    state.mkdir()
    return {"GOVCTL_STATE": str(state)}


def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("this test needs root (network namespaces, nftables); run the suite as root")


__all__ = ["GOVCTL", "ROOT", "isolated_state", "needs_root", "run_govctl", "sys"]


@pytest.fixture(scope="session")
def lab() -> dict:
    """The running lab's stack outputs (brings the lab up once per session; idempotent).

    Tests that use it are `slow` and `root`. Only tests/infra/lab/test_zz_down.py takes the lab down,
    and the collection hook below runs it after every other test.
    """
    needs_root()
    proc = run_govctl("lab", "up", "--json", timeout=1200)
    assert proc.returncode == 0, f"govctl lab up failed:\n{proc.stderr[-4000:]}"
    import json as _json

    outputs = run_govctl("infra", "outputs", "--stack", "lab")
    assert outputs.returncode == 0, outputs.stderr
    return _json.loads(outputs.stdout)


def pytest_collection_modifyitems(config, items):
    """Tests marked `lab_teardown` run last: they destroy the lab the others share."""
    items.sort(key=lambda item: item.get_closest_marker("lab_teardown") is not None)


@pytest.fixture(scope="module")
def lab_monitoring(lab, tmp_path_factory):
    """The real monitoring stack on the lab, SLO windows scaled down (window_scale 60, 1 s
    interval) so that one test's outage does not page into the next."""
    text = (ROOT / "monitors" / "slo.yaml").read_text()
    assert "window_scale: 1 " in text and "interval: 5s " in text
    spec = tmp_path_factory.mktemp("slo") / "slo-drills.yaml"
    spec.write_text(text.replace("window_scale: 1 ", "window_scale: 60 ")
                    .replace("interval: 5s ", "interval: 1s "))
    up = run_govctl("monitor", "up", "--stack", "lab", "--spec", str(spec), timeout=600)
    assert up.returncode == 0, up.stderr[-3000:]
    yield spec
    down = run_govctl("monitor", "down", timeout=300)
    assert down.returncode == 0, down.stderr[-3000:]


# ---------------------------------------------------------------- Elasticsearch (slow tier)
# One real single-node Elasticsearch per test session, shared by tests/es and the store-parametrized
# SecOps tests (defined here so both folders use the same node).
@pytest.fixture(scope="session")
def es_node():
    """`govctl es up` on a temp folder (reachable by the unprivileged service user); `down` at the end."""
    home = Path(tempfile.mkdtemp(prefix="govctl-es-test-"))
    os.chmod(home, 0o755)
    proc = run_govctl("es", "up", "--home", str(home), "--heap", "512", "--json", timeout=300)
    assert proc.returncode == 0, f"govctl es up failed:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    info = json.loads(proc.stdout)
    yield {"home": home, **info}
    down = run_govctl("es", "down", "--home", str(home), "--json", timeout=120)
    shutil.rmtree(home, ignore_errors=True)
    assert down.returncode == 0, down.stderr


@pytest.fixture
def es_section(es_node, tmp_path) -> dict:
    """Settings for one test: its own index prefix and spool, fast retries."""
    section = dict(es_node["secops_config"]["elasticsearch"])
    section.update(index_prefix=f"t{uuid.uuid4().hex[:10]}", spool=str(tmp_path / "spool"),
                   bulk={"retry_seconds": 2.0, "probe_seconds": 0.5, "max_in_flight": 2},
                   detection={"overlap_seconds": 30.0, "interval_seconds": 1.0})
    return section
