"""What the alicloud and openstack backends share: placement, zone policy as ingress rules, the
per-center / per-region grouping components, backend config, and the facts every stack exports.

The zone policy is the topology's `flows` (default deny between zones); each cloud turns the rules
computed here into its own security-group / firewall resources, so both render the same policy.
"""
from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

import pulumi

from infra.topology.model import ZONE_KINDS, Center, Topology, Zone

WORLD = {4: "0.0.0.0/0", 6: "::/0"}


class BackendConfigError(pulumi.RunError):
    """Stack config a backend cannot deploy with; the message names the key and what to set."""


# -- stack config ---------------------------------------------------------------------------
class BackendConfig:
    """Reads `govctl:*` stack config (JSON values for objects) with defaults and clear errors."""

    def __init__(self, config: Any, defaults: dict[str, Any]):
        self._config = config
        self._defaults = defaults

    def get(self, key: str) -> Any:
        raw = self._config.get(key) if self._config is not None else None
        default = self._defaults.get(key)
        if raw is None:
            return default
        # govctl writes non-string stack config as JSON; a plain string (an image id that looks
        # like a number) stays a string unless the key's default says otherwise.
        wants_json = not isinstance(default, str) and default is not None or raw.lstrip()[:1] in ("{", "[")
        if isinstance(raw, str) and wants_json:
            try:
                return json.loads(raw)
            except json.JSONDecodeError:
                raise BackendConfigError(f"stack config govctl:{key} is not valid JSON ({raw!r}); "
                                         f"write it like {json.dumps(default)}") from None
        return raw

    def secret(self, key: str):
        """A secret config value as a secret Output, or None when unset."""
        return self._config.get_secret(key) if self._config is not None else None

    def require(self, key: str, what: str) -> Any:
        value = self.get(key)
        if value in (None, "", {}, []):
            raise BackendConfigError(f"stack config govctl:{key} is missing: set `{key}` under "
                                     f"config in the stack file ({what})")
        return value


@dataclass(frozen=True)
class Placement:
    """Where a center lives in the cloud: its region and availability zone."""

    region: str
    zone: str


def placements(topology: Topology, cfg: BackendConfig) -> dict[str, Placement]:
    """Region per center (config `regions` by site, else the site's region) and availability zone
    (config `availability_zones` by center, else the center's availability_zone)."""
    regions = cfg.get("regions") or {}
    zones = cfg.get("availability_zones") or {}
    sites = {s.name: s for s in topology.sites}
    out = {}
    for center in topology.centers:
        region = regions.get(center.site) or sites[center.site].region
        if not region:
            raise BackendConfigError(
                f"site {center.site!r} (center {center.name!r}) has no region: set `region` on the "
                f"site in the topology or `regions: {{{center.site}: <region>}}` in the stack config")
        zone = zones.get(center.name) or center.availability_zone
        if not zone:
            raise BackendConfigError(
                f"center {center.name!r} has no availability zone: set `availability_zone` on the "
                f"center or `availability_zones: {{{center.name}: <zone>}}` in the stack config")
        out[center.name] = Placement(region, zone)
    return out


def regions_in_order(topology: Topology, where: dict[str, Placement]) -> list[str]:
    """Regions with the production center's first, then in topology order."""
    order = [where[topology.production.name].region]
    for center in topology.centers:
        if where[center.name].region not in order:
            order.append(where[center.name].region)
    return order


# -- grouping: every resource sits under its center or its region ---------------------------
CENTER_TYPE = "govctl:cloud:Center"
REGION_TYPE = "govctl:cloud:Region"
BACKBONE_TYPE = "govctl:cloud:Backbone"


class Group(pulumi.ComponentResource):
    """A center, a region or the backbone: groups its resources in the state and in the plan."""

    def __init__(self, kind: str, name: str, facts: dict[str, Any]):
        super().__init__(kind, name, facts)
        self.register_outputs({})


def center_groups(topology: Topology, where: dict[str, Placement]) -> dict[str, Group]:
    return {c.name: Group(CENTER_TYPE, c.name, {"role": c.role, "site": c.site,
                                                "region": where[c.name].region,
                                                "zone": where[c.name].zone})
            for c in topology.centers}


class CloudRenderer:
    """What both cloud renderers start from: config with the backend's defaults, placement of
    centers, a group per region and per center, and one provider per region."""

    DEFAULTS: dict[str, Any] = {}

    def __init__(self, topology: Topology, config: Any):
        self.t = topology
        self.cfg = BackendConfig(config, self.DEFAULTS)
        self.where = placements(topology, self.cfg)
        self.regions = regions_in_order(topology, self.where)
        self.region_groups = {r: Group(REGION_TYPE, r, {"region": r, "centers": [
            c.name for c in self.centers_in(r)]}) for r in self.regions}
        self.centers = center_groups(topology, self.where)
        self.providers = {r: self.provider(r, pulumi.ResourceOptions(parent=self.region_groups[r]))
                          for r in self.regions}

    def provider(self, region: str, opts: pulumi.ResourceOptions) -> pulumi.ProviderResource:
        raise NotImplementedError

    def centers_in(self, region: str) -> list[Center]:
        return [c for c in self.t.centers if self.where[c.name].region == region]

    def opts(self, region: str, parent: pulumi.Resource, **kw) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(provider=self.providers[region], parent=parent, **kw)

    def copts(self, center: Center, parent: pulumi.Resource | None = None, **kw) -> pulumi.ResourceOptions:
        """Options of a center's resource: its region's provider, under the center (or `parent`)."""
        return self.opts(self.where[center.name].region, parent or self.centers[center.name], **kw)


def center_tags(center: Center, zone: Zone | None = None) -> dict[str, str]:
    tags = {"govctl-center": center.name, "govctl-role": center.role}
    if zone is not None:
        tags["govctl-zone"] = zone.name
        tags["govctl-zone-kind"] = zone.kind
    return tags


def slug(*parts: str) -> str:
    return "-".join(p for p in parts if p)


# -- zone policy ----------------------------------------------------------------------------
@dataclass(frozen=True)
class IngressRule:
    """One allowed inbound flow into a zone: protocol, port range and source block."""

    protocol: str
    port_min: int
    port_max: int
    source: str  # CIDR, v4 or v6
    why: str  # the flow it comes from, for descriptions

    @property
    def version(self) -> int:
        return ipaddress.ip_network(self.source).version

    @property
    def ports(self) -> str:
        return str(self.port_min) if self.port_min == self.port_max else f"{self.port_min}-{self.port_max}"


def _parse_port(text: str) -> tuple[str, int, int]:
    protocol, numbers = text.split("/", 1)
    low, _, high = numbers.partition("-")
    return protocol, int(low), int(high or low)


def _zone_kind_blocks(topology: Topology, kind: str, centers: tuple[Center, ...]) -> list[str]:
    blocks = []
    for center in centers:
        for zone in center.zones_of_kind(kind):
            for subnet in zone.subnets:
                blocks.append(str(subnet.ipv4))
                if subnet.ipv6 is not None and topology.dual_stack:
                    blocks.append(str(subnet.ipv6))
    return blocks


def flow_sources(topology: Topology, source: str, center: Center, across_centers: bool) -> list[str]:
    """The address blocks a flow's `from` names, seen from `center`."""
    if source == "any":
        return [WORLD[4], WORLD[6]] if topology.dual_stack else [WORLD[4]]
    blocks: list[str] = []
    for outside in topology.outside:
        if source in (outside.name, outside.kind):
            blocks.append(str(outside.ipv4))
            if outside.ipv6 is not None and topology.dual_stack:
                blocks.append(str(outside.ipv6))
    if source in ZONE_KINDS:
        blocks += _zone_kind_blocks(topology, source, topology.centers if across_centers else (center,))
    return blocks


def zone_ingress(topology: Topology, center: Center, zone: Zone) -> list[IngressRule]:
    """Every inbound rule of one zone of one center, from the topology's flows."""
    rules: list[IngressRule] = []
    seen = set()
    for flow in topology.flows:
        if flow.target not in (zone.kind, "any"):
            continue
        for source in flow_sources(topology, flow.source, center, flow.across_centers):
            for port in flow.ports:
                protocol, low, high = _parse_port(port)
                key = (protocol, low, high, source)
                if key in seen:
                    continue
                seen.add(key)
                rules.append(IngressRule(protocol, low, high, source,
                                         f"{flow.source} -> {flow.target} {port}"))
    return rules


def service_port_sources(topology: Topology, center: Center, zone: Zone, port: int) -> list[str]:
    """IPv4 blocks allowed to reach `port` in a zone (e.g. a database's allow-list)."""
    return [r.source for r in zone_ingress(topology, center, zone)
            if r.version == 4 and r.port_min <= port <= r.port_max]


def hosts_with_role(center: Center, role: str) -> list:
    return [h for h in center.hosts if role in h.roles]


def replication_targets(topology: Topology, source: Center) -> list[tuple[Center, str]]:
    return [(topology.center(r.target), r.mode) for r in topology.replication
            if r.source == source.name]


def stack_facts(topology: Topology, backend: str, audit: dict[str, Any],
                where: dict[str, Placement] | None = None) -> dict[str, Any]:
    """Outputs every cloud stack exports: the backend and topology names (as the lab does) and
    `policy_facts`, what the 等保 pack's stack rules read (docs/clouds.md): the topology as
    validated, the audit trail the backend set up (enabled, retention_days, evidence) and where
    each center was placed (region and zone after stack config)."""
    facts: dict[str, Any] = {"topology": topology.to_dict(), "audit": audit}
    if where:
        facts["placement"] = {name: {"region": p.region, "zone": p.zone} for name, p in where.items()}
    return {"backend": backend, "topology": topology.name, "policy_facts": facts}
