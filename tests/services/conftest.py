"""The platform as `govctl up` brings it up on the shared lab, for the tests of tests/services."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_govctl
from tests.secops.testbed import free_port


def govctl_up_on_lab(port: int, env: dict | None = None) -> dict:
    """`govctl up --stack lab --store sqlite --port PORT --json` as a user runs it; its JSON report."""
    up = run_govctl("up", "--stack", "lab", "--store", "sqlite", "--port", str(port), "--json",
                    env=env, timeout=1800)
    assert up.stdout.strip(), up.stderr[-4000:]
    report = json.loads(up.stdout)
    not_up = {name: c for name, c in report["components"].items() if c["state"] != "up"}
    assert not not_up, (not_up, up.stderr[-4000:])  # every component, the hardening baseline included
    assert up.returncode == 0 and report["up"] is True, up.stderr[-4000:]
    return report


def admin_credentials(path: str) -> dict:
    """The first administrator's credentials file that `govctl up` wrote: {"user": …, "password": …}."""
    return dict(line.split(": ", 1) for line in Path(path).read_text().splitlines()
                if line and not line.startswith("#"))


@pytest.fixture(scope="module")
def platform_on_lab(lab):
    """The whole platform up on the lab (`govctl up`); `govctl down --keep-lab` after the module."""
    try:
        yield govctl_up_on_lab(free_port(), env={"COLUMNS": "400"})
    finally:
        down = run_govctl("down", "--keep-lab", "--json", env={"COLUMNS": "400"}, timeout=600)
        assert down.returncode == 0, down.stderr[-3000:]
