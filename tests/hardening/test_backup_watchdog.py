"""The access-path watchdog of govctl_backup, run by Ansible on the local host: armed with the snapshot, it
restores the backed-up files when the run never reaches `finalize`, and stays quiet when it does; `changed`
names the files that differ from the snapshot and changes nothing."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
import subprocess

import pytest

from core.paths import ROOT

pytestmark = pytest.mark.slow  # starts ansible four times and waits out a watchdog (≈ 30 s)

LIBRARY = ROOT / "playbooks/roles/govctl_baseline/library"


def backup(root: Path, state: str, **args) -> dict:
    run_id = f"test-{os.getpid()}-{root.parent.name}-{root.name}"  # the watchdog's token is named by it: unique
    env = {**os.environ, "ANSIBLE_LIBRARY": str(LIBRARY), "ANSIBLE_LOCALHOST_WARNING": "false",
           "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false", "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
           "ANSIBLE_LOAD_CALLBACK_PLUGINS": "true", "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.minimal"}
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible"), "localhost", "-c", "local", "-m", "govctl_backup",
                           "-a", json.dumps({"state": state, "root": str(root), "run_id": run_id, **args})],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.split("=>", 1)[1])


def test_the_watchdog_restores_unless_the_run_finalizes(tmp_path):
    kept, created = tmp_path / "sshd_config", tmp_path / "created.conf"
    kept.write_text("PermitRootLogin prohibit-password\n")

    # a run that never finalizes (its host cut off): the watchdog puts the files back by itself
    backup(tmp_path / "a", "snapshot", paths=[str(kept), str(created)], timeout=3)
    kept.write_text("PermitRootLogin no\n")
    created.write_text("new\n")
    assert backup(tmp_path / "a", "changed")["changed_files"] == sorted([str(kept), str(created)])
    assert kept.read_text() == "PermitRootLogin no\n", "`changed` only reads"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and kept.read_text() != "PermitRootLogin prohibit-password\n":
        time.sleep(0.5)
    assert kept.read_text() == "PermitRootLogin prohibit-password\n" and not created.exists()
    manifest = json.loads(next((tmp_path / "a").glob("*/manifest.json")).read_text())
    assert manifest["state"] == "restored-by-watchdog"

    # a run that finalizes in time: the changes stay, and only the changed file's backup is kept
    other = tmp_path / "issue"
    other.write_text("unchanged\n")
    armed = time.monotonic()
    backup(tmp_path / "b", "snapshot", paths=[str(kept), str(other)], timeout=20)  # room for a loaded machine
    assert backup(tmp_path / "b", "changed")["changed_files"] == []
    kept.write_text("PermitRootLogin no\n")
    result = backup(tmp_path / "b", "finalize")
    assert result["changed_files"] == [str(kept)]
    time.sleep(max(0.0, armed + 22 - time.monotonic()))  # past the watchdog's deadline
    assert kept.read_text() == "PermitRootLogin no\n", "the watchdog was disarmed"
    for token in Path("/run/govctl-harden").glob(f"test-{os.getpid()}-*.ok"):
        token.unlink()
