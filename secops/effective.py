"""The effective configuration of a SecOps daemon: the config file merged over the defaults, the stack's
firewalls, allowlist and host logs applied, the command line's extra sources and enforcement choice
added. `govctl secops run` builds its configuration here, and the compliance collector rebuilds the
platform component's from its recorded command line (services' platform.json), so the evidence shows
what the daemon under the supervisor really runs with, not a hand-written file.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence

from .config import ConfigError, load_config
from .stack import with_stack


def parse_sources(specs: Sequence[str]) -> list[dict]:
    """`NAME=PATH` options into source entries; a malformed one is a ConfigError naming it."""
    sources = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--source {spec!r} must be NAME=PATH, e.g. auth=/var/log/auth.log")
        sources.append({"name": name, "path": path})
    return sources


def effective_config(config: str | Path | None, stack: str | None, extra_sources: Sequence[str] = (),
                     dry_run: bool | None = None) -> dict[str, Any]:
    """The configuration `govctl secops run --config CONFIG --stack STACK --source … [--dry-run|--enforce]`
    runs with. `dry_run` None keeps the config's response.dry_run."""
    cfg = with_stack(load_config(config), stack)
    cfg["sources"] = [*cfg["sources"], *parse_sources(extra_sources)]
    if dry_run is not None:
        cfg["response"] = {**cfg["response"], "dry_run": dry_run}
    return cfg


def _run_arguments(argv: Sequence[str]) -> list[str]:
    """The arguments after `secops run` in a recorded command line; ConfigError when it is not one."""
    args = list(argv)
    for i in range(len(args) - 1):
        if args[i] == "secops" and args[i + 1] == "run":
            return args[i + 2:]
    raise ConfigError(f"not a `secops run` command line: {' '.join(args)[:200]}")


def from_command(argv: Sequence[str]) -> dict[str, Any]:
    """The effective configuration of a recorded `… secops run …` command line (a platform component's)."""
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    parser.add_argument("--config", "-c")
    parser.add_argument("--stack")
    parser.add_argument("--source", action="append", default=[])
    parser.add_argument("--dry-run", dest="dry_run", action="store_true", default=None)
    parser.add_argument("--enforce", dest="dry_run", action="store_false")
    try:
        options, _ = parser.parse_known_args(_run_arguments(argv))
    except argparse.ArgumentError as exc:
        raise ConfigError(f"the recorded `secops run` command line: {exc}") from None
    return effective_config(options.config, options.stack, options.source, options.dry_run)


def summary(cfg: dict[str, Any]) -> dict[str, Any]:
    """What an assessor reads of a configuration: inputs, detection, enforcement, retention, store."""
    enforcer = cfg.get("enforcer") or {}
    response = cfg.get("response") or {}
    return {
        "stack": cfg.get("stack"),
        "sources": [{"name": s["name"], "path": s.get("path"), "format": s.get("format", "auto")}
                    for s in cfg.get("sources", [])],
        "syslog": {k: v for k, v in (cfg.get("syslog") or {}).items() if k in ("udp", "tcp")},
        "bundled_rules": cfg.get("bundled_rules", True),
        "rules": list(cfg.get("rules") or []),
        "enforcement": {"dry_run": bool(response.get("dry_run")), "kind": enforcer.get("kind"),
                        "firewalls": [{k: fw.get(k) for k in ("netns", "family", "table", "set", "set6")}
                                      for fw in enforcer.get("firewalls") or []]},
        "allowlist": len(cfg.get("allowlist") or []),
        "retention_days": cfg.get("retention_days"),
        "incident_retention_days": cfg.get("incident_retention_days"),
        "store": cfg.get("store") if isinstance(cfg.get("store"), str) else "elasticsearch",
    }
