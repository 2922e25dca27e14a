#!/usr/bin/python3
"""Ansible module: back up the files a hardening run may change, and restore the last backup.

snapshot  copies every listed file (owner, mode and times kept) into ROOT/RUN_ID before any change
          and records which were absent; then starts a detached watchdog: unless `finalize` runs
          within `timeout` seconds (Ansible got a fresh SSH session and sudo after the changes), it
          restores the snapshot and restarts sshd (`restart`);
changed   lists the files that differ from the snapshot, changing nothing (whether the access path
          needs proving again);
finalize  tells the watchdog the access path still works, then keeps only the files the run really
          changed (drops the whole snapshot if none);
restore   puts back the newest backup not yet restored (deleting files the run created).
One call per step of a run: each task costs the controller a worker per host (docs/hardening.md).
"""
import filecmp
import json
import os
import shutil
import signal
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: govctl_backup
short_description: Snapshot, finalize and restore the files changed by govctl harden
options:
  state: {required: true, type: str, choices: [snapshot, changed, finalize, restore]}
  root: {default: /var/backups/govctl-harden, type: str}
  run_id: {type: str}
  paths: {type: list, elements: str, default: []}
  timeout: {type: int, default: 600}
  restart: {description: argv run after a watchdog restore, type: list, elements: str, default: []}
"""

TOKENS = "/run/govctl-harden"


def manifest_path(run_dir):
    return os.path.join(run_dir, "manifest.json")


def read_manifest(run_dir):
    with open(manifest_path(run_dir)) as f:
        return json.load(f)


def write_manifest(run_dir, manifest):
    with open(manifest_path(run_dir), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)


def stored(run_dir, path):
    return os.path.join(run_dir, "files", path.lstrip("/"))


def copy_keeping_owner(src, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copy2(src, dst)
    st = os.stat(src)
    os.chown(dst, st.st_uid, st.st_gid)


def same(path, kept):
    if not os.path.exists(path):
        return False
    a, b = os.stat(path), os.stat(kept)
    return ((a.st_mode, a.st_uid, a.st_gid) == (b.st_mode, b.st_uid, b.st_gid)
            and filecmp.cmp(path, kept, shallow=False))


def snapshot(root, run_id, paths):
    run_dir = os.path.join(root, run_id)
    os.makedirs(run_dir, mode=0o700, exist_ok=True)
    files = {}
    for path in paths:
        if os.path.isfile(path):
            copy_keeping_owner(path, stored(run_dir, path))
            files[path] = "file"
        elif not os.path.exists(path):
            files[path] = "absent"
    write_manifest(run_dir, {"run_id": run_id, "created": time.time(), "files": files, "state": "open"})
    return run_dir, files


def changed_files(run_dir, manifest):
    changed = []
    for path, kind in manifest["files"].items():
        if kind == "absent":
            if os.path.exists(path):
                changed.append(path)
        elif not same(path, stored(run_dir, path)):
            changed.append(path)
    return changed


def put_back(run_dir, manifest, only=None):
    restored = []
    for path, kind in manifest["files"].items():
        if only is not None and path not in only:
            continue
        if kind == "absent":
            if os.path.exists(path):
                os.remove(path)
                restored.append(f"removed {path}")
        else:
            kept = stored(run_dir, path)
            if not same(path, kept):
                copy_keeping_owner(kept, path + ".govctl-restore")
                os.replace(path + ".govctl-restore", path)
                restored.append(f"restored {path}")
    return restored


def latest(root):
    if not os.path.isdir(root):
        return None
    for name in sorted(os.listdir(root), reverse=True):
        run_dir = os.path.join(root, name)
        try:
            manifest = read_manifest(run_dir)
        except (OSError, ValueError):
            continue
        # "open": a run that stopped before finalizing (failed host); its snapshot is the state before it
        if manifest.get("state") in ("kept", "open"):
            return run_dir
    return None


def watchdog(run_dir, token, timeout, restart):
    """Runs in a detached grandchild: restore and restart sshd unless the token appears in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(token):
            os._exit(0)
        time.sleep(1)
    manifest = read_manifest(run_dir)
    done = put_back(run_dir, manifest)
    manifest.update(state="restored-by-watchdog", restored=done)
    write_manifest(run_dir, manifest)
    if restart:
        subprocess.run(restart, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os._exit(0)


def arm(run_dir, run_id, timeout, restart):
    os.makedirs(TOKENS, exist_ok=True)
    token = os.path.join(TOKENS, run_id + ".ok")
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.closerange(3, 1024)
            watchdog(run_dir, token, timeout, restart)
        os._exit(0)
    os.wait()
    return token


def main():
    module = AnsibleModule(
        argument_spec={"state": {"type": "str", "required": True,
                                 "choices": ["snapshot", "changed", "finalize", "restore"]},
                       "root": {"type": "str", "default": "/var/backups/govctl-harden"},
                       "run_id": {"type": "str"},
                       "paths": {"type": "list", "elements": "str", "default": []},
                       "timeout": {"type": "int", "default": 600},
                       "restart": {"type": "list", "elements": "str", "default": []}},
        supports_check_mode=True)
    p = module.params
    state, root = p["state"], p["root"]
    if state != "restore" and not p["run_id"]:
        module.fail_json(msg=f"state={state} needs run_id")
    run_dir = os.path.join(root, p["run_id"] or "")
    if module.check_mode and state != "restore":
        module.exit_json(changed=False, msg=f"{state}: nothing done in check mode")
    if state == "snapshot":
        run_dir, files = snapshot(root, p["run_id"], p["paths"])
        token = arm(run_dir, p["run_id"], p["timeout"], p["restart"])
        module.exit_json(changed=False, backup_dir=run_dir, files=files, token=token, timeout=p["timeout"])
    if state == "changed":
        module.exit_json(changed=False, changed_files=sorted(changed_files(run_dir, read_manifest(run_dir))))
    if state == "finalize":
        os.makedirs(TOKENS, exist_ok=True)  # the watchdog's token first: the access path was proven
        with open(os.path.join(TOKENS, p["run_id"] + ".ok"), "w") as f:
            f.write("ok\n")
        manifest = read_manifest(run_dir)
        changed = changed_files(run_dir, manifest)
        if not changed:
            shutil.rmtree(run_dir)
            module.exit_json(changed=False, kept=False, changed_files=[])
        for path in set(manifest["files"]) - set(changed):
            if manifest["files"][path] == "file":
                os.remove(stored(run_dir, path))
            del manifest["files"][path]
        manifest["state"] = "kept"
        write_manifest(run_dir, manifest)
        module.exit_json(changed=False, kept=True, backup_dir=run_dir, changed_files=sorted(changed))
    # restore
    run_dir = latest(root)
    if run_dir is None:
        module.fail_json(msg=f"no backup to restore under {root} (nothing was changed by govctl harden, "
                             "or the last backup was already restored)")
    manifest = read_manifest(run_dir)
    if module.check_mode:
        module.exit_json(changed=True, backup_dir=run_dir, files=sorted(manifest["files"]))
    done = put_back(run_dir, manifest)
    manifest["state"] = "restored"
    manifest["restored"] = done
    write_manifest(run_dir, manifest)
    module.exit_json(changed=bool(done), backup_dir=run_dir, restored=done, files=sorted(manifest["files"]))


if __name__ == "__main__":
    main()
