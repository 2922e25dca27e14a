"""A real single-node Elasticsearch for the session (slow tier), started and stopped with the CLI."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.conftest import run_govctl


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
