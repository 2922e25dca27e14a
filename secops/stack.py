"""SecOps on a deployed stack: where to intercept, what never to block and which logs to read, all taken
from the stack's outputs (docs/stack-outputs.md) — no namespace or set names typed by hand.

- **Enforcement**: the timed sets of every center's boundary firewall (`centers.<c>.firewall`), filled
  together (`secops.respond.EnforcerGroup`); the stack owns the tables and their drop rules.
- **Allowlist**: the management networks of the stack's topology (IPv4 and IPv6), the `allowlist`
  output and the ops workstation's address, on top of the configured ranges.
- **Sources** (lab backend): every host's own sshd log, read from the host's disk on this machine.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from infra.outputs import StackOutputs, read_stack_outputs

from .config import ConfigError

# govctl-init writes a lab host's service output to /var/log/govctl/NAME.log; the host's overlay keeps
# the files it writes in <folder>/upper, a path that stays the same when the host restarts (its PID
# and so /proc/PID/root do not).
LAB_SSHD_LOG = "upper/var/log/govctl/sshd.log"


def targets_from_outputs(outputs: StackOutputs, stack: str) -> dict[str, Any]:
    """Firewalls, allowlist ranges and log sources from a stack's outputs; ConfigError if it has none."""
    firewalls = []
    for center, spec in sorted(outputs.centers.items()):
        fw = spec.firewall
        if fw is None:
            raise ConfigError(f"stack {stack}: centers.{center} exports no firewall in its outputs; "
                              "re-run `govctl lab up` so the outputs are current")
        firewalls.append({"center": center, "netns": fw.namespace, "family": fw.family,
                          "table": fw.table, "set": fw.set_v4, "set6": fw.set_v6})
    if not firewalls:
        raise ConfigError(f"stack {stack} has no firewalls in its outputs (centers.*.firewall): is it up? "
                          f"(`govctl lab up`; `govctl infra outputs --stack {stack}` shows them)")
    allowlist = list(outputs.allowlist)
    if outputs.ssh:
        ops = outputs.ssh.ops_address
        allowlist.append(f"{ops}/{128 if ':' in ops else 32}")
    sources = []
    if outputs.backend == "lab":
        for host in outputs.hosts:
            if host.folder:
                sources.append({"name": f"sshd.{host.fqdn}", "path": str(Path(host.folder) / LAB_SSHD_LOG),
                                "format": "sshd", "host": host.name})
    return {"firewalls": firewalls, "allowlist": allowlist, "sources": sources}


def with_stack(cfg: dict[str, Any], stack: str | None = None) -> dict[str, Any]:
    """The configuration with `stack` (or the config's `stack:`) applied: its firewalls replace the
    configured enforcer's namespace and sets, its management networks and ops address join the
    allowlist, its hosts' sshd logs join the sources (configured sources of the same name win)."""
    name = stack or cfg.get("stack")
    if not name:
        return cfg
    from infra.engine import StackDefinition

    targets = targets_from_outputs(read_stack_outputs(name), name)
    out = copy.deepcopy(cfg)
    out["stack"] = name
    out["topology"] = str(StackDefinition.load(name).topology)
    out["allowlist"] = [*cfg["allowlist"], *targets["allowlist"]]
    # the stack owns its tables, sets and drop rules: fill its sets, create nothing
    out["enforcer"] = {**cfg["enforcer"], "firewalls": targets["firewalls"], "manage": False}
    configured = {s["name"] for s in cfg["sources"]}
    out["sources"] = [*cfg["sources"], *(s for s in targets["sources"] if s["name"] not in configured)]
    return out
