"""What the lab leaves on the machine, and a sweep for what a crashed run left outside the state.

Every lab object is findable without the Pulumi state: namespaces are named gl-* (the lab prefix), hosts run
govctl-init, their files and mounts are under state/lab. `govctl lab down` destroys through the
engine first, then sweeps, then checks that nothing is left.
"""
from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

from core.paths import STATE
from infra.outputs import StackOutputs

from . import system
from .hostops import host_root

LAB_DIR = STATE / "lab"


def _in_lab_dir(path: str | None, lab_dir: Path = LAB_DIR) -> bool:
    # a path compare, not a string prefix: a sibling such as state/lab2 is not this lab's
    return bool(path) and Path(path).is_relative_to(lab_dir)


def _host_inits() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and _in_lab_dir(host_root(int(entry.name)))]


def _lab_mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if _in_lab_dir(line.split()[4])]


def foreign_hosts(outputs: StackOutputs, lab_dir: Path = LAB_DIR) -> list[str]:
    """The host folders a stack's state records outside this checkout's lab folder: the state was copied
    or moved from another checkout, and the lab it describes belongs there (its hosts, disks and the
    namespaces of its prefix)."""
    return [h.folder for h in outputs.hosts if h.folder and not _in_lab_dir(h.folder, lab_dir)]


def leftovers() -> dict[str, list]:
    found = {
        "namespaces": system.lab_namespaces(),
        "processes": _host_inits(),
        "mounts": _lab_mounts(),
        "host_folders": sorted(str(p) for p in (LAB_DIR / "hosts").glob("*")),
    }
    return {k: v for k, v in found.items() if v}


def sweep() -> dict[str, list]:
    found = leftovers()
    for pid in found.get("processes", []):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for ns in found.get("namespaces", []):
        system.ns_delete(ns)
    for mount in sorted(found.get("mounts", []), reverse=True):
        system.sh("umount", "-l", mount, check=False)
    shutil.rmtree(LAB_DIR / "hosts", ignore_errors=True)
    return found
