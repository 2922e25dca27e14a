"""A validated configuration (secops.config) turned into the engine's parts: the rules, the allowlist,
the enforcer and the decision engine. Every caller (the daemon on either store, `govctl bans`) builds
them here, so a setting such as `response.escalation` means the same everywhere."""
from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Iterable

from .config import ConfigError
from .model import Store
from .respond import DEFAULT_ACTOR, Allowlist, DecisionEngine, Enforcer, EnforcerGroup, NftablesEnforcer, RangePolicy


def build_allowlist(cfg: dict[str, Any], extra: Iterable[str] = ()) -> Allowlist:
    """Management zones of the configured topology + ops networks + allowlist ranges + extra."""
    ranges = [*cfg["ops_networks"], *cfg["allowlist"], *extra]
    for r in ranges:
        try:
            ipaddress.ip_network(r, strict=False)
        except ValueError:
            raise ConfigError(f"allowlist range {r!r} is not a CIDR network (example: 10.20.0.0/16)") from None
    if cfg.get("topology"):
        from infra.topology import load_topology
        return Allowlist.from_topology(load_topology(cfg["topology"]), ranges)
    return Allowlist(ranges)


def build_rules(cfg: dict[str, Any], extra: Iterable[str] = ()):
    """The bundled rules (unless `bundled_rules: false`), the configured rule folders and `extra`, with the
    configured pySigma pipeline; files that do not load are listed in the result's `errors`."""
    from .detect import BUNDLED_RULES, DEFAULT_PIPELINE, load_rules
    paths = ([BUNDLED_RULES] if cfg["bundled_rules"] else []) + [Path(p) for p in [*cfg["rules"], *extra]]
    for p in paths:
        if not Path(p).exists():
            raise ConfigError(f"rule path {p} does not exist")
    return load_rules(paths, Path(cfg["pipeline"]) if cfg["pipeline"] else DEFAULT_PIPELINE)


def make_enforcer(cfg: dict[str, Any]) -> Enforcer | None:
    """The configured enforcement point, or all of `enforcer.firewalls` (every center of a stack) as one."""
    e = cfg["enforcer"]
    if e["kind"] == "none":
        return None
    points = e.get("firewalls") or [e]
    enforcers = [NftablesEnforcer(table=p["table"], set_name=p["set"], family=p["family"], netns=p["netns"],
                                  set6=p.get("set6"), center=p.get("center")) for p in points]
    if e["manage"]:
        for enforcer in enforcers:
            enforcer.ensure()
    return enforcers[0] if len(enforcers) == 1 else EnforcerGroup(enforcers)


def decision_engine_from_config(cfg: dict[str, Any], store: Store | None, enforcer: Enforcer | None,
                                dry_run: bool | None = None, actor: str = DEFAULT_ACTOR,
                                allowlist: Allowlist | None = None) -> DecisionEngine:
    """The decision engine of the configuration's `response` section (ttl, escalation, max_ttl; `dry_run`
    unless given). `allowlist`: one built already (callers that check the config before touching a
    firewall); by default the configuration's."""
    r = cfg["response"]
    ranges = r["range_bans"]
    policy = RangePolicy(ranges["addresses"], ranges["window"], ranges["prefix_v4"], ranges["prefix_v6"],
                         ranges["ttl"]) if ranges["enabled"] else None
    return DecisionEngine(build_allowlist(cfg) if allowlist is None else allowlist, store, enforcer,
                          ttl=r["ttl"], escalation=r["escalation"], max_ttl=r["max_ttl"],
                          dry_run=r["dry_run"] if dry_run is None else dry_run, actor=actor,
                          quiet_period=r["quiet_period"], min_prefix=min_prefix(cfg), range_policy=policy)


def min_prefix(cfg: dict[str, Any]) -> dict[int, int]:
    """The broadest range a ban may name, per IP version (secops.address.blockable_network's `min_prefix`)."""
    given = cfg["response"]["min_prefix"]
    return {4: given["ipv4"], 6: given["ipv6"]}
