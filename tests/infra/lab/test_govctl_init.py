"""govctl-init, the lab hosts' PID 1, restarts every service that exits — also one that exits while
another service is being started (the lost rsyslog of issue #17: subprocess reaped its exit behind
govctl-init's back, so it was never restarted and `govctl harden` found AU-REMOTE-LOGGING unmet).

It runs here the way a lab host runs it — PID 1 of its own PID and mount namespaces — with its three
folders bound to temporary ones, so nothing on the machine changes and no lab is needed."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from infra.lab.hostops import FILES
from tests.conftest import needs_root

pytestmark = [pytest.mark.slow, pytest.mark.root]

# Mount namespace of its own: /etc is an overlay (the machine's /etc underneath, writes go to the
# test's folder), /run and /var/log are tmpfs; govctl-init's folders are bound to the test's.
BOOT = """set -eu
t=$1
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$t/etc-upper,workdir=$t/etc-work" /etc
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/log
mount -t proc proc /proc
mkdir -p /etc/govctl/services /run/govctl /var/log/govctl
mount --bind "$t/services" /etc/govctl/services
mount --bind "$t/run" /run/govctl
mount --bind "$t/logs" /var/log/govctl
exec python3 "$2"
"""


@pytest.fixture
def init(tmp_path):
    """A running govctl-init in namespaces of its own; yields its folders {services, run, logs}."""
    needs_root()
    folders = {name: tmp_path / name for name in ("services", "run", "logs", "etc-upper", "etc-work")}
    for folder in folders.values():
        folder.mkdir()
    launcher = subprocess.Popen(["unshare", "--fork", "--pid", "--mount", "--propagation", "private",
                                 "sh", "-c", BOOT, "boot", str(tmp_path), str(FILES / "govctl-init")],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        folders["init_pid"] = _wait(lambda: _child(launcher.pid), "govctl-init to start")
        yield folders
    finally:
        os.killpg(launcher.pid, signal.SIGKILL)  # PID 1 of the namespace dies, and with it every service
        output = launcher.communicate(timeout=10)[0]
        assert b"Traceback" not in output, output.decode(errors="replace")


def service_pids(run: Path, names: list[str]) -> dict[str, int | None]:
    pids = {}
    for name in names:
        try:
            pids[name] = int((run / f"{name}.pid").read_text())
        except (OSError, ValueError):
            pids[name] = None
    return pids


def test_every_service_that_exits_is_restarted_even_while_another_starts(init):
    # Three services that exit on their own after different times, so their exits keep falling on
    # the moments another one is started (each is restarted 1 s after it exits).
    lifetimes = {"quick": 0.2, "middle": 0.43, "slow": 0.77}
    for name, seconds in lifetimes.items():
        (init["services"] / f"{name}.json").write_text(json.dumps({"command": ["sleep", str(seconds)]}))
    seen: dict[str, set[int]] = {name: set() for name in lifetimes}
    last_change = {name: time.monotonic() for name in lifetimes}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for name, pid in service_pids(init["run"], list(lifetimes)).items():
            if pid is not None and pid not in seen[name]:
                seen[name].add(pid)
                last_change[name] = time.monotonic()
        stuck = {name: round(time.monotonic() - t, 1) for name, t in last_change.items()
                 if time.monotonic() - t > 5}
        assert not stuck, f"not restarted for seconds (its exit was lost): {stuck}; pids seen: {seen}"
        time.sleep(0.1)
    # each lives < 1 s and is restarted 1 s after it exits: at least ~10 runs each in 20 s
    assert all(len(pids) >= 8 for pids in seen.values()), {n: len(p) for n, p in seen.items()}


def test_a_restarted_service_comes_back_and_a_removed_one_stops(init):
    (init["services"] / "daemon.json").write_text(json.dumps({"command": ["sleep", "3600"]}))
    first = _wait(lambda: _running(init, "daemon"), "daemon to start")
    _in_namespace(init, "kill", "-TERM", str(first))  # what `service-restart daemon` does
    second = _wait(lambda: _running(init, "daemon", not_pid=first), "daemon to restart")
    (init["services"] / "daemon.json").unlink()
    _wait(lambda: not _alive(init, second), "a service whose file was removed to stop")


def test_a_service_file_caught_half_written_does_not_stop_its_service(init):
    spec = init["services"] / "daemon.json"
    spec.write_text(json.dumps({"command": ["sleep", "3600"]}))
    pid = _wait(lambda: _running(init, "daemon"), "daemon to start")
    spec.write_text('{"command": ["sleep", ')  # what a reader sees in the middle of a write
    time.sleep(2)
    assert _running(init, "daemon") == pid, "the service was stopped over a file being written"
    spec.write_text(json.dumps({"command": ["sleep", "3601"]}))  # the finished file: a new command
    _wait(lambda: _running(init, "daemon", not_pid=pid), "daemon to restart with its new command")


# The pid files hold PIDs of the namespace: look at them from inside it.
def _in_namespace(init, *cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", "-t", str(init["init_pid"]), "-p", "-m", *cmd],
                          capture_output=True, text=True, timeout=10)


def _alive(init, pid: int) -> bool:
    stat = _in_namespace(init, "cat", f"/proc/{pid}/stat").stdout
    return bool(stat) and stat.rsplit(")", 1)[1].split()[0] != "Z"


def _running(init, name: str, not_pid: int | None = None) -> int | None:
    pid = service_pids(init["run"], [name])[name]
    return pid if pid and pid != not_pid and _alive(init, pid) else None


def _child(pid: int) -> int | None:
    """unshare's child once it runs govctl-init (PID 1 of the namespace), as the machine sees it."""
    try:
        child = int(Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0])
        return child if b"govctl-init" in Path(f"/proc/{child}/cmdline").read_bytes() else None
    except (OSError, ValueError, IndexError):
        return None


def _wait(predicate, what: str, seconds: float = 15):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"waited {seconds:g} s for {what}")
