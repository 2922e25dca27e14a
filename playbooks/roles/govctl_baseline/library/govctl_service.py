#!/usr/bin/python3
"""Ansible module: keep a service running or restart it through whatever runs services on the host.

systemd where it is PID 1's manager; on hosts run by govctl-init (the lab's PID 1, no systemd) a
service is the JSON file /etc/govctl/services/NAME.json and `service-restart NAME` restarts it.
A host with neither is an error, never a silent skip.
"""
import json
import os
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: govctl_service
short_description: Ensure a service runs (or restart it) under systemd or govctl-init
options:
  names: {description: candidate names (first that exists wins; govctl-init uses the first), required: true, type: list, elements: str}
  command: {description: argv for govctl-init to run in the foreground, type: list, elements: str}
  state: {description: running or restarted, default: running, type: str, choices: [running, restarted]}
"""

GOVCTL_SERVICES = "/etc/govctl/services"
GOVCTL_RUN = "/run/govctl"


def manager():
    if os.path.isdir("/run/systemd/system"):
        return "systemd"
    if os.path.isdir(GOVCTL_SERVICES) and os.path.exists("/usr/local/sbin/service-restart"):
        return "govctl-init"
    return None


def pid_of(name):
    try:
        with open(f"{GOVCTL_RUN}/{name}.pid") as f:
            pid = int(f.read())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def wait_pid(name, not_pid=None, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pid = pid_of(name)
        if pid and pid != not_pid:
            time.sleep(0.5)  # still alive half a second later: it did not exit on start-up
            if pid_of(name) == pid:
                return pid
        time.sleep(0.2)
    return None


def log_tail(name):
    try:
        with open(f"/var/log/govctl/{name}.log", errors="replace") as f:
            return f.read()[-600:]
    except OSError:
        return ""


def govctl_init(module, names, command, state):
    name = names[0]
    spec_path = f"{GOVCTL_SERVICES}/{name}.json"
    try:
        with open(spec_path) as f:
            spec = json.load(f)
    except (OSError, ValueError):
        spec = None
    wanted = dict(spec or {}, command=command) if command else spec
    if wanted is None:
        module.fail_json(msg=f"service {name} is not defined in {GOVCTL_SERVICES} and no command was given")
    pid = pid_of(name)
    result = {"manager": "govctl-init", "service": name, "cmd": f"cat {spec_path}; cat {GOVCTL_RUN}/{name}.pid"}
    if state == "running":
        if spec == wanted and pid:
            module.exit_json(changed=False, compliant=True, observed=f"{name} running (pid {pid}) under govctl-init", **result)
        if module.check_mode:
            module.exit_json(changed=True, compliant=False,
                             observed=f"{name} {'defined' if spec else 'not defined'}, {'running' if pid else 'not running'}",
                             diff={"before": json.dumps(spec) + "\n", "after": json.dumps(wanted) + "\n"}, **result)
        if spec != wanted:
            tmp = spec_path + ".tmp"  # govctl-init reads only *.json, so the rename is atomic for it
            with open(tmp, "w") as f:
                json.dump(wanted, f)
            os.chmod(tmp, 0o644)
            os.rename(tmp, spec_path)
        new = wait_pid(name, not_pid=pid if spec != wanted else None)
        if not new:
            module.fail_json(msg=f"{name} did not stay up under govctl-init; its log: {log_tail(name)}", **result)
        module.exit_json(changed=True, compliant=True, observed=f"{name} running (pid {new}) under govctl-init", **result)
    # restarted
    if module.check_mode:
        module.exit_json(changed=True, observed=f"{name} would be restarted", **result)
    if not pid:  # not running (e.g. crashed or just defined): a restart is a start
        new = wait_pid(name, seconds=60)
        if not new:
            module.fail_json(msg=f"{name} is not running and did not start; its log: {log_tail(name)}", **result)
        module.exit_json(changed=True, observed=f"{name} started (pid {new})", **result)
    rc = subprocess.run(["/usr/local/sbin/service-restart", name], capture_output=True, text=True)
    if rc.returncode != 0:
        module.fail_json(msg=f"service-restart {name}: {rc.stderr.strip()}", **result)
    new = wait_pid(name, not_pid=pid)
    if not new:
        module.fail_json(msg=f"{name} did not come back after the restart; its log: {log_tail(name)}", **result)
    module.exit_json(changed=True, observed=f"{name} restarted (pid {pid} → {new})", **result)


def systemd(module, names, state):
    unit = None
    for name in names:
        probe = subprocess.run(["systemctl", "cat", f"{name}.service"], capture_output=True)
        if probe.returncode == 0:
            unit = name
            break
    if unit is None:
        module.fail_json(msg=f"none of the units {names} exists on this host")
    active = subprocess.run(["systemctl", "is-active", unit], capture_output=True, text=True).stdout.strip()
    enabled = subprocess.run(["systemctl", "is-enabled", unit], capture_output=True, text=True).stdout.strip()
    result = {"manager": "systemd", "service": unit, "cmd": f"systemctl is-active {unit}; systemctl is-enabled {unit}"}
    observed = f"{unit}: {active}, {enabled}"
    if state == "running":
        if active == "active" and enabled == "enabled":
            module.exit_json(changed=False, compliant=True, observed=observed, **result)
        if module.check_mode:
            module.exit_json(changed=True, compliant=False, observed=observed, **result)
        rc = subprocess.run(["systemctl", "enable", "--now", unit], capture_output=True, text=True)
    else:
        if module.check_mode:
            module.exit_json(changed=True, observed=f"{unit} would be restarted", **result)
        rc = subprocess.run(["systemctl", "restart", unit], capture_output=True, text=True)
    if rc.returncode != 0:
        module.fail_json(msg=f"systemctl on {unit}: {rc.stderr.strip()}", **result)
    module.exit_json(changed=True, compliant=True, observed=f"{unit} {state}", **result)


def main():
    module = AnsibleModule(
        argument_spec={"names": {"type": "list", "elements": "str", "required": True},
                       "command": {"type": "list", "elements": "str"},
                       "state": {"type": "str", "default": "running", "choices": ["running", "restarted"]}},
        supports_check_mode=True)
    kind = manager()
    if kind == "systemd":
        systemd(module, module.params["names"], module.params["state"])
    elif kind == "govctl-init":
        govctl_init(module, module.params["names"], module.params["command"], module.params["state"])
    module.fail_json(msg="no supported service manager on this host (systemd or govctl-init); "
                         "refusing to skip the service step")


if __name__ == "__main__":
    main()
