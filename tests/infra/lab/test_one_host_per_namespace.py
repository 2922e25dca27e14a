"""A lab host is never booted into a namespace that already runs one (the CI run of stop 24: a developer's
lab and the CI's, both under the prefix gl-, booted two hosts per namespace; each half of the lab then
answered for the other — sshd "Address already in use", writes refused — and 21 tests failed with no
word of why). The refusal names the namespace, the other host's PID 1 and its disk, and touches nothing.

A namespace of its own here, with a process named like the lab's PID 1 standing in for the other lab's host."""
from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from infra.lab import system
from infra.lab.hostops import boot_host, refuse_if_occupied
from tests.conftest import needs_root

pytestmark = pytest.mark.root


@pytest.fixture
def namespace():
    needs_root()
    name = f"t1-{uuid.uuid4().hex[:8]}"
    system.sh("ip", "netns", "add", name)
    yield name
    system.sh("ip", "netns", "delete", name, check=False)


def started_in(namespace: str, *command: str) -> subprocess.Popen:
    proc = subprocess.Popen(["ip", "netns", "exec", namespace, *command])
    system.wait_for(lambda: str(proc.pid) in system.sh("ip", "netns", "pids", namespace).stdout.split(),
                    10, f"{command} in {namespace}")
    return proc


def test_a_second_host_is_refused_and_nothing_is_booted(namespace, tmp_path):
    other = started_in(namespace, "bash", "-c", "exec -a govctl-init sleep 60")
    try:
        folder = tmp_path / "web-1.prod"
        (folder / "upper").mkdir(parents=True)
        with pytest.raises(system.LabCommandError) as refused:
            boot_host(str(folder), namespace, "web-1", "/nonexistent-base")
        message = str(refused.value)
        assert f"namespace {namespace} already runs a lab host (govctl-init pid {other.pid}, root /)" in message
        assert "govctl lab down" in message and "GOVCTL_LAB_PREFIX" in message
        assert sorted(p.name for p in folder.iterdir()) == ["upper"]  # no init.log, no init.pid: untouched
    finally:
        other.kill()
        other.wait()


def test_an_empty_namespace_and_other_processes_do_not_count(namespace, tmp_path):
    bystander = started_in(namespace, "sleep", "60")
    try:
        refuse_if_occupied(namespace, Path(tmp_path))  # a process that is not a lab host's PID 1: no refusal
    finally:
        bystander.kill()
        bystander.wait()
