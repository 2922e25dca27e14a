"""The lab hosts' base root filesystem: Debian 12 by debootstrap, built once into the cache.

The cache key is the suite plus the package list, so a changed list builds a new base while
existing lab hosts keep the one they were made from. Hosts never write to the base: each
mounts it as the read-only lower layer of its own overlay.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from core.paths import CACHE

SUITE = "bookworm"
BUILD_REVISION = 2  # bump when the build steps below change, so caches are rebuilt
OPS_USER = "ops"  # the lab's admin account; its key is generated per lab, never baked in
MIRROR = os.environ.get("GOVCTL_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PACKAGES_FILE = Path(__file__).with_name("rootfs-packages.txt")


def packages() -> list[str]:
    return [line.split("#")[0].strip() for line in PACKAGES_FILE.read_text().splitlines()
            if line.split("#")[0].strip()]


def cache_key() -> str:
    digest = hashlib.sha256(f"{SUITE}\n{MIRROR}\n{BUILD_REVISION}\n".encode()
                            + "\n".join(packages()).encode())
    return f"debian-{SUITE}-{digest.hexdigest()[:12]}"


def base_path() -> Path:
    return CACHE / "lab-rootfs" / cache_key()


def _chroot(root: Path, *cmd: str) -> None:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
           "LC_ALL": "C"}
    subprocess.run(["chroot", str(root), *cmd], check=True, env=env, stdout=subprocess.DEVNULL)


def ensure_base(log=print) -> Path:
    """Return the cached base rootfs, building it first if needed (minutes, once per machine)."""
    final = base_path()
    if (final / ".govctl-complete").exists():
        return final
    work = final.with_name(final.name + ".building")
    shutil.rmtree(work, ignore_errors=True)
    work.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log(f"building the lab's Debian {SUITE} root filesystem into {final} (once per machine)")
    subprocess.run(["debootstrap", "--variant=minbase", SUITE, str(work), MIRROR], check=True,
                   stdout=subprocess.DEVNULL)
    # No daemon may start while packages install: the lab starts them inside each host.
    policy = work / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    for fs, target in (("proc", "proc"), ("sysfs", "sys")):
        subprocess.run(["mount", "-t", fs, fs, str(work / target)], check=True)
    try:
        _chroot(work, "apt-get", "update", "-qq")
        _chroot(work, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages())
        _chroot(work, "apt-get", "clean")
        _chroot(work, "useradd", "--create-home", "--shell", "/bin/bash", OPS_USER)
    finally:
        for target in ("sys", "proc"):
            subprocess.run(["umount", "-l", str(work / target)], check=False)
    # The package's default cluster is replaced by the lab's own (primary or standby).
    shutil.rmtree(work / "var/lib/postgresql/15/main", ignore_errors=True)
    shutil.rmtree(work / "etc/postgresql/15/main", ignore_errors=True)
    for key in work.glob("etc/ssh/ssh_host_*"):
        key.unlink()  # every host generates its own host keys
    (work / "etc/machine-id").write_text("")
    sudoers = work / "etc/sudoers.d" / OPS_USER
    sudoers.write_text(f"{OPS_USER} ALL=(ALL) NOPASSWD: ALL\n")
    sudoers.chmod(0o440)
    (work / ".govctl-complete").write_text(f"{time.monotonic() - started:.0f} s\n")
    work.rename(final)
    log(f"root filesystem ready in {time.monotonic() - started:.0f} s")
    return final


if __name__ == "__main__":
    print(ensure_base(lambda m: print(m, file=sys.stderr)))
