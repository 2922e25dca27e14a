"""`govctl up` on the shared lab (tests/conftest.py's `lab` fixture; GOVCTL_LAB_PREFIX as for the
rest of the suite): every component comes up, the console answers over HTTPS, a second `up` only
checks (≤ 10 s), `status` names the URL, and `down --keep-lab` stops everything but the lab."""
from __future__ import annotations

import json
import ssl
import time
from pathlib import Path

import httpx
import pytest

from services.layout import process_alive
from tests.conftest import run_govctl
from tests.secops.testbed import free_port

from .conftest import admin_credentials, govctl_up_on_lab

pytestmark = [pytest.mark.slow, pytest.mark.root]
COMPONENTS = {"lab", "hardening", "monitoring", "secops", "console", "notify"}


def test_up_status_down_on_the_lab(lab):
    port = free_port()
    env = {"COLUMNS": "400"}
    try:
        report = govctl_up_on_lab(port, env)
        assert set(report["components"]) == COMPONENTS
        assert report["console_url"] == f"https://127.0.0.1:{port}/"
        assert report["signing"]["state"] == "up"
        assert Path(report["credentials_file"]).stat().st_mode & 0o077 == 0
        ca = report["ca_certificate"]
        https = httpx.Client(base_url=report["console_url"], verify=ssl.create_default_context(cafile=ca),
                             timeout=10)
        answer = https.get("api/openapi.json")
        assert answer.status_code == 200 and answer.json()["openapi"].startswith("3.")
        assert "<div id=\"app\">" in https.get("").text  # the console's page
        # the first administrator signs in with the credentials file `up` wrote (Secure cookie over HTTPS)
        creds = admin_credentials(report["credentials_file"])
        signin = https.post("api/session", json={"name": creds["user"], "password": creds["password"]})
        assert signin.status_code == 200, signin.text
        assert "secure" in signin.headers["set-cookie"].lower()
        assert https.get("api/incidents").status_code == 200

        # a second `up` only checks
        started = time.monotonic()
        again = run_govctl("up", "--json", env=env, timeout=120)
        seconds = time.monotonic() - started
        assert again.returncode == 0, again.stderr[-3000:]
        second = json.loads(again.stdout)
        assert {c["action"] for c in second["components"].values()} == {"found up"}
        assert seconds <= 10, f"a second `govctl up` took {seconds:.1f} s (goal ≤ 10 s)"

        status = run_govctl("status", "--json", env=env, timeout=120)
        assert status.returncode == 0, status.stderr[-3000:]
        info = json.loads(status.stdout)
        assert info["console_url"] == report["console_url"] and info["up"] is True
        secops_pid, console_pid = (info["components"][n]["pid"] for n in ("secops", "console"))
        supervisor_pid = info["supervisor"]["pid"]
        assert all(process_alive(p) for p in (secops_pid, console_pid, supervisor_pid))
        logs = run_govctl("logs", "secops", "-n", "200", env=env)
        assert "enforcing in" in logs.stdout  # the daemon fills the lab's firewalls
    finally:
        down = run_govctl("down", "--keep-lab", "--json", env=env, timeout=600)
    assert down.returncode == 0, down.stderr[-3000:]
    result = json.loads(down.stdout)
    assert result["kept"] == ["lab"] and {"secops", "console", "monitoring"} <= set(result["stopped"])
    assert not any(process_alive(p) for p in (secops_pid, console_pid, supervisor_pid))
    assert run_govctl("monitor", "status", "--json").returncode == 1  # monitoring stopped
    assert run_govctl("lab", "status", "--json", timeout=120).returncode == 0  # the lab stays
    after = json.loads(run_govctl("status", "--json", env=env, timeout=120).stdout)
    assert after["components"]["lab"]["state"] == "up"
    assert after["components"]["console"]["state"] == "down"
