"""The Ansible inventory, built from the stack outputs (no hand-kept inventory).

Hosts are named by their fqdn; groups: center_<c>, zone_<z>, zone_kind_<k>, role_<r>. Connection
settings (user, key, ssh_config with the ProxyCommand) come from the stack's `ssh` output.
"""
from __future__ import annotations

import fnmatch
import re

from infra.outputs import Host, StackOutputs, read_stack_outputs

from core.errors import BadInput, GovctlError


def load_outputs(stack: str) -> StackOutputs:
    outputs = read_stack_outputs(stack)
    if not outputs.hosts:
        raise GovctlError(f"stack {stack} exports no `hosts` list (backend {outputs.backend}): "
                          "the inventory is built from the lab-shaped outputs (docs/stack-outputs.md)")
    return outputs


def _group(prefix: str, value: str) -> str:
    return f"{prefix}_{re.sub(r'[^A-Za-z0-9_]', '_', value)}"


def log_server_for(host: Host, hosts: tuple[Host, ...]) -> str:
    """Where a host forwards its logs: the bastion of its own center (another center's for a bastion)."""
    bastions = [h for h in hosts if "bastion" in h.roles]
    same = [b for b in bastions if b.center == host.center and b.fqdn != host.fqdn]
    other = [b for b in bastions if b.fqdn != host.fqdn]
    chosen = (same or other or [host])[0]
    return chosen.fqdn


def build_inventory(outputs: StackOutputs) -> dict:
    """An ansible-runner inventory (dict form) from the stack outputs."""
    ssh = outputs.ssh
    if ssh is None:
        raise GovctlError("the stack exports no `ssh` output (how to reach its hosts); re-run `govctl lab up`")
    hosts = outputs.hosts
    all_hosts: dict[str, dict] = {}
    groups: dict[str, dict] = {}
    for host in hosts:
        fqdn = host.fqdn
        all_hosts[fqdn] = {
            "ansible_user": ssh.user,
            "ansible_ssh_private_key_file": ssh.private_key,
            "ansible_ssh_common_args": f"-F {ssh.config}",
            "ansible_python_interpreter": "/usr/bin/python3",
            # the admin account's home may not be writable by it (the lab's is not)
            "ansible_remote_tmp": f"/tmp/.ansible-{ssh.user}",
            "govctl_center": host.center,
            "govctl_zone": host.zone,
            "govctl_zone_kind": host.zone_kind,
            "govctl_roles": list(host.roles),
            "govctl_ipv4": host.ipv4,
            "govctl_log_server": log_server_for(host, hosts),
        }
        names = [_group("center", host.center), _group("zone", host.zone),
                 _group("zone_kind", host.zone_kind)]
        names += [_group("role", r) for r in host.roles]
        for name in names:
            groups.setdefault(name, {"hosts": {}})["hosts"][fqdn] = {}
    return {"all": {"hosts": all_hosts, "children": dict(sorted(groups.items()))}}


def hosts_matching(inventory: dict, pattern: str | None) -> list[str]:
    """Hosts an Ansible --limit pattern selects (names, groups, globs, `!` exclusion, `&` intersection)."""
    everyone = list(inventory["all"]["hosts"])
    if not pattern:
        return everyone
    groups = {name: set(g["hosts"]) for name, g in inventory["all"]["children"].items()}
    groups["all"] = set(everyone)

    def expand(term: str) -> set[str]:
        if term.startswith("~"):
            rx = re.compile(term[1:])
            return {h for h in everyone if rx.search(h)} | {h for g, m in groups.items() if rx.search(g) for h in m}
        found = {h for h in everyone if fnmatch.fnmatchcase(h, term)}
        for name, members in groups.items():
            if fnmatch.fnmatchcase(name, term):
                found |= members
        return found

    selected: set[str] = set()
    terms = [t for t in re.split(r"[,:]", pattern) if t]
    for term in terms:
        if not term.startswith(("!", "&")):
            selected |= expand(term)
    for term in terms:
        if term.startswith("&"):
            selected &= expand(term[1:])
        elif term.startswith("!"):
            selected -= expand(term[1:])
    if not selected:
        raise BadInput(f"--limit {pattern!r} matches no host; use a host name (e.g. {everyone[0]}) or a group: "
                       + ", ".join(sorted(groups)))
    return [h for h in everyone if h in selected]
