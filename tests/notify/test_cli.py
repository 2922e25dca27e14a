"""govctl notify from the command line (the real CLI in a subprocess): sealing a secret, listing channels
without secrets, a test message to a signature-checking receiver, the log, and exit 2 on bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import HOOK_SECRET, config_text

pytestmark = pytest.mark.slow  # a few CLI processes and HTTP receivers

GOVCTL = [str(Path(sys.executable).with_name("govctl"))]


def govctl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(GOVCTL + list(args), input=stdin, capture_output=True, text=True, env=dict(os.environ),
                          timeout=120)


@pytest.fixture
def configured(state, tmp_path, receivers, monkeypatch):
    path = tmp_path / "notify.yaml"
    path.write_text(config_text(9, "/nonexistent", receivers), encoding="utf-8")
    monkeypatch.setenv("GOVCTL_NOTIFY_CONFIG", str(path))
    return path


def test_seal_list_test_and_log_from_the_cli(configured, receivers, state):
    sealed = govctl("notify", "secret", "set", "hook", "--stdin", stdin=HOOK_SECRET + "\n")
    assert sealed.returncode == 0, sealed.stderr
    assert HOOK_SECRET not in sealed.stdout + sealed.stderr
    assert HOOK_SECRET not in (state / "notify" / "secrets.json").read_text()

    listed = govctl("notify", "channels", "--json")
    assert listed.returncode == 0, listed.stderr
    channels = {c["name"]: c for c in json.loads(listed.stdout)["channels"]}
    assert channels["hook"]["secrets_sealed"] == {"signing_secret": True}
    assert channels["ding"]["secrets_sealed"] == {"token_secret": False, "sign_secret": False}
    assert HOOK_SECRET not in listed.stdout

    tested = govctl("notify", "test", "hook")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "hook: sent after 1 attempt(s)" in tested.stdout
    [call] = receivers["webhook"].accepted  # its signature checked by the receiver
    assert call["json"]["event"]["kind"] == "test" and "通知渠道测试" in call["json"]["subject"]

    unsealed = govctl("notify", "test", "ding")  # its secrets were never sealed
    assert unsealed.returncode == 1 and "after 1 attempt" in unsealed.stdout and "ding-" in unsealed.stderr and "govctl notify secret set" in unsealed.stderr

    log = govctl("notify", "log", "--json")
    rows = json.loads(log.stdout)
    assert [(r["channel"], r["status"]) for r in rows] == [("ding", "failed"), ("hook", "sent")]
    assert rows[1]["recipients"].startswith("webhook:127.0.0.1:") and rows[1]["sent"]
    everything = log.stdout + (state / "notify" / "notify.sqlite").read_bytes().decode("utf-8", "replace")
    assert HOOK_SECRET not in everything


def test_bad_input_exits_2_with_a_message(configured):
    unknown = govctl("notify", "test", "pager")
    assert unknown.returncode == 2 and "no channel named 'pager'" in unknown.stderr
    empty = govctl("notify", "secret", "set", "hook", "--stdin", stdin="")
    assert empty.returncode == 2 and "standard input is empty" in empty.stderr
    badname = govctl("notify", "secret", "set", "Hook Key", "--stdin", stdin="x\n")
    assert badname.returncode == 2 and "secret name" in badname.stderr
    configured.write_text(configured.read_text().replace("type: webhook", "type: pager"), encoding="utf-8")
    broken = govctl("notify", "channels")
    assert broken.returncode == 2 and f"{configured}:" in broken.stderr and "channels.hook.type" in broken.stderr
    assert "Traceback" not in broken.stderr
    bad_send = govctl("notify", "send", "SLA", "--title", "x")
    assert bad_send.returncode == 2
