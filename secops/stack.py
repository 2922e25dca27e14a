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

from .config import ConfigError

# govctl-init writes a lab host's service output to /var/log/govctl/NAME.log; the host's overlay keeps
# the files it writes in <folder>/upper, a path that stays the same when the host restarts (its PID
# and so /proc/PID/root do not).
LAB_SSHD_LOG = "upper/var/log/govctl/sshd.log"


def targets_from_outputs(outputs: dict[str, Any], stack: str) -> dict[str, Any]:
    """Firewalls, allowlist ranges and log sources from a stack's outputs; ConfigError if it has none."""
    firewalls = []
    for center, spec in sorted((outputs.get("centers") or {}).items()):
        fw = spec.get("firewall") or {}
        sets = fw.get("sets") or {}
        missing = [k for k in ("namespace", "family", "table") if not fw.get(k)] + \
                  [f"sets.{k}" for k in ("ipv4", "ipv6") if not sets.get(k)]
        if missing:
            raise ConfigError(f"stack {stack}: centers.{center}.firewall lacks {', '.join(missing)} in its "
                              "outputs; re-run `govctl lab up` so the outputs are current")
        firewalls.append({"center": center, "netns": fw["namespace"], "family": fw["family"],
                          "table": fw["table"], "set": sets["ipv4"], "set6": sets["ipv6"]})
    if not firewalls:
        raise ConfigError(f"stack {stack} has no firewalls in its outputs (centers.*.firewall): is it up? "
                          f"(`govctl lab up`; `govctl infra outputs --stack {stack}` shows them)")
    allowlist = list(outputs.get("allowlist") or [])
    ops = (outputs.get("ssh") or {}).get("ops_address")
    if ops:
        allowlist.append(f"{ops}/{128 if ':' in ops else 32}")
    sources = []
    if outputs.get("backend") == "lab":
        for host in outputs.get("hosts") or []:
            if host.get("folder"):
                sources.append({"name": f"sshd.{host['fqdn']}", "path": str(Path(host["folder"]) / LAB_SSHD_LOG),
                                "format": "sshd", "host": host["name"]})
    return {"firewalls": firewalls, "allowlist": allowlist, "sources": sources}


def with_stack(cfg: dict[str, Any], stack: str | None = None) -> dict[str, Any]:
    """The configuration with `stack` (or the config's `stack:`) applied: its firewalls replace the
    configured enforcer's namespace and sets, its management networks and ops address join the
    allowlist, its hosts' sshd logs join the sources (configured sources of the same name win)."""
    name = stack or cfg.get("stack")
    if not name:
        return cfg
    from govctl.engine import Engine

    engine = Engine(name)
    targets = targets_from_outputs(engine.outputs(), name)
    out = copy.deepcopy(cfg)
    out["stack"] = name
    out["topology"] = str(engine.definition.topology)
    out["allowlist"] = [*cfg["allowlist"], *targets["allowlist"]]
    # the stack owns its tables, sets and drop rules: fill its sets, create nothing
    out["enforcer"] = {**cfg["enforcer"], "firewalls": targets["firewalls"], "manage": False}
    configured = {s["name"] for s in cfg["sources"]}
    out["sources"] = [*cfg["sources"], *(s for s in targets["sources"] if s["name"] not in configured)]
    return out
