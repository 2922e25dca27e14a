"""`govctl up --store elasticsearch` with the shipped definitions of the Elasticsearch step and the
console (no lab): the node's `secops_config` is kept as a file (mode 0600) and the console serves
from that store; a second `up` only checks; `down` stops the node too."""
from __future__ import annotations

import json
import os
import shutil
import ssl
import tempfile
from pathlib import Path

import httpx
import pytest
import yaml

from services.spec import DEFAULT_SPEC
from tests.conftest import run_govctl

pytestmark = pytest.mark.slow


@pytest.fixture
def reachable_state():
    """A state folder the node's unprivileged user can reach (pytest's tmp_path is private)."""
    state = Path(tempfile.mkdtemp(prefix="govctl-up-es-"))
    os.chmod(state, 0o755)
    yield state
    shutil.rmtree(state, ignore_errors=True)


def test_elasticsearch_store_is_brought_up_and_used_by_the_console(reachable_state, tmp_path):
    env = {"GOVCTL_STATE": str(reachable_state), "COLUMNS": "400"}
    state = reachable_state
    shipped = yaml.safe_load(DEFAULT_SPEC.read_text(encoding="utf-8"))
    shipped["components"] = [c for c in shipped["components"] if c["name"] in ("elasticsearch", "console")]
    spec = tmp_path / "components.yaml"
    spec.write_text(yaml.safe_dump(shipped, allow_unicode=True))
    up = run_govctl("up", "--components", str(spec), "--store", "elasticsearch", "--port", "0",
                    env=env, timeout=60)
    assert up.returncode == 2 and "--port 0 is out of range" in up.stderr  # checked before anything runs
    up = run_govctl("up", "--components", str(spec), "--store", "elasticsearch", "--port", "18561",
                    "--json", env=env, timeout=900)
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        report = json.loads(up.stdout)
        assert [c["action"] for c in report["components"].values()] == ["started", "started"]
        saved = state / "platform" / "secops-elasticsearch.json"
        assert saved.stat().st_mode & 0o077 == 0
        assert json.loads(saved.read_text())["store"] == "elasticsearch"
        assert str(saved) in " ".join(json.loads((state / "platform" / "plan.json").read_text())
                                      ["services"][0]["argv"])
        token = run_govctl("incidents", "token", "auditor-1", "--role", "auditor", "--config", str(saved),
                           env=env).stdout.strip()
        answer = httpx.get(report["console_url"] + "incidents", headers={"Authorization": f"Bearer {token}"},
                           verify=ssl.create_default_context(cafile=report["ca_certificate"]), timeout=30)
        assert answer.status_code == 200 and answer.json() == []
        again = run_govctl("up", "--json", env=env, timeout=120)
        assert again.returncode == 0 and {c["action"] for c in json.loads(again.stdout)["components"]
                                          .values()} == {"found up"}
    finally:
        down = run_govctl("down", "--json", env=env, timeout=300)
    assert down.returncode == 0, down.stderr
    assert run_govctl("es", "status", env=env).returncode == 1  # the node is stopped
