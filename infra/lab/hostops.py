"""In-host operations on a lab host, without Pulumi: boot and stop a host on its disk, find its PID 1,
write a file inside it, and where PostgreSQL lives in it. The dynamic providers (providers.py) and
the drills both build on these; drills import this module and never the providers."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from . import system

FILES = Path(__file__).with_name("files")
PG_BIN = "/usr/lib/postgresql/15/bin"
PG_DATA = "/var/lib/postgresql/15/main"


def boot_host(folder: str, ns: str, hostname: str, base: str) -> int:
    """Start a host on its existing disk; returns its PID 1 (as seen from the machine)."""
    folder_path = Path(folder)
    refuse_if_occupied(ns, folder_path)
    log = open(folder_path / "init.log", "ab")
    launcher = subprocess.Popen(
        ["ip", "netns", "exec", ns, "unshare", "--fork", "--pid", "--mount", "--uts", "--ipc",
         "--propagation", "private", "sh", str(FILES / "hostinit.sh"), base,
         str(folder_path / "upper"), str(folder_path / "work"), str(folder_path / "root"), hostname],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    log.close()
    inner = system.wait_for(lambda: _inner_init(launcher.pid), 20, f"{hostname} in {ns} to boot")
    (folder_path / "init.pid").write_text(f"{inner}\n")
    system.wait_for(lambda: system.host_exec(inner, "test", "-s", "/run/govctl/sshd.pid",
                                             check=False).returncode == 0, 30, f"sshd in {ns}")
    return inner


def refuse_if_occupied(ns: str, folder: Path) -> None:
    """A namespace runs one host. Another one running there (another checkout's lab under the same
    GOVCTL_LAB_PREFIX, say) holds the host's addresses and ports: a second boot would answer for
    neither, so stop before touching it and say whose it is."""
    pids = system.sh("ip", "netns", "pids", ns, check=False).stdout.split()
    for pid in map(int, pids):
        root = host_root(pid)
        if root is not None and root != str(folder / "root"):
            raise system.LabCommandError(
                f"namespace {ns} already runs a lab host (govctl-init pid {pid}, root {root}), not this "
                f"stack's {folder}: take that lab down from its own checkout (`govctl lab down`), or "
                "give this one another prefix (GOVCTL_LAB_PREFIX=gc-)")


def host_root(pid: int) -> str | None:
    """The root filesystem of a lab host's PID 1 (its disk's mount point); None for any other process."""
    if not system.pid_alive(pid, "govctl-init"):
        return None
    try:
        return os.readlink(f"/proc/{pid}/root")
    except OSError:
        return None  # it ended meanwhile


def stop_host(folder: str, hard: bool = False) -> None:
    """Stop a host: SIGTERM lets its services stop cleanly; hard (SIGKILL) is a power cut."""
    pid = init_pid(folder)
    if not pid or not system.pid_alive(pid, "govctl-init"):
        return
    if not hard:
        os.kill(pid, signal.SIGTERM)
        try:
            system.wait_for(lambda: not system.pid_alive(pid, "govctl-init"), 15, f"{folder} to stop")
            return
        except system.LabCommandError:
            pass
    os.kill(pid, signal.SIGKILL)
    system.wait_for(lambda: not system.pid_alive(pid, "govctl-init"), 5, f"{folder} to die")


def init_pid(folder: str) -> int | None:
    """The PID the host's folder records for its PID 1 (it may have died since)."""
    try:
        return int((Path(folder) / "init.pid").read_text())
    except (OSError, ValueError):
        return None


def _inner_init(launcher_pid: int) -> int | None:
    """The host's PID 1 as seen from here: the child of `unshare`, once it runs govctl-init."""
    # ip netns exec → (exec) unshare → fork → sh hostinit.sh → (exec) chroot → (exec) govctl-init
    child = system.child_pid(launcher_pid)
    return child if child and system.pid_alive(child, "govctl-init") else None


def host_pid(folder: str) -> int:
    pid = init_pid(folder)
    if pid is None or not system.pid_alive(pid, "govctl-init"):
        raise system.LabCommandError(f"lab host at {folder} is not running")
    return pid


def write_in_host(pid: int, path: str, text: str, mode: int = 0o644, owner: str = "root") -> None:
    """Write a file inside a running lab host (its root filesystem), creating parent folders."""
    system.host_exec(pid, "install", "-D", "-m", oct(mode)[2:], "-o", owner, "/dev/stdin", path,
                     input=text)
