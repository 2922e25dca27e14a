"""What the lab builds from a topology, as plain data: namespaces, links, addresses, routes,
firewall rulesets, hosts and services. Pure (no root, no side effects), so it is unit-tested,
and the Pulumi resources in backend.py are a thin layer over it.

Names: every lab namespace starts with `gl-` (govctl lab; GOVCTL_LAB_PREFIX changes it) so that
`govctl lab down` and the tests can tell the lab's objects from anything else on the machine.
"""
from __future__ import annotations

import hashlib
import ipaddress
import os
from dataclasses import dataclass, field

from infra.topology import Topology

# GOVCTL_LAB_PREFIX lets two labs share a machine (e.g. a CI run beside a developer's lab): their
# namespaces are disjoint network stacks, so addresses never collide.
NS_PREFIX = os.environ.get("GOVCTL_LAB_PREFIX", "gl-")
WAN_NS = f"{NS_PREFIX}wan"  # the outside world's router: internet, e-gov extranet, service address
OPS_NS = f"{NS_PREFIX}ops"  # the ops engineers' workstation, in the production management zone
FW_TABLE = "govctl"  # nftables table (family inet) in every center's firewall namespace
BLOCK_SET_V4 = "blocked_v4"  # timed sets that interception fills
BLOCK_SET_V6 = "blocked_v6"
# Ranges (range bans) live in interval sets of their own, named by this suffix: an interval set holding
# 100,000 addresses takes seconds per element in nftables 1.0.6, a hash set under a millisecond
# (docs/benchmarks.md, interception at a city's size), so addresses stay in the hash sets.
RANGE_SET_SUFFIX = "_ranges"
UPLINK_V4 = ipaddress.ip_network("100.64.0.0/16")  # lab-internal center ↔ wan transit
UPLINK_V6 = ipaddress.ip_network("fd00:64::/48")
OPS_HOST_INDEX = 200  # the ops workstation's address in the production management subnet
WEB_PORT = 80
PG_PORT = 5432


def ifname(prefix: str, name: str) -> str:
    """A Linux interface name (≤ 15 bytes) that stays stable for a given name."""
    full = f"{prefix}{name}"
    if len(full) <= 15:
        return full
    return f"{prefix}{name[:14 - len(prefix) - 5]}-{hashlib.sha1(name.encode()).hexdigest()[:4]}"


def center_ns(center: str) -> str:
    return f"{NS_PREFIX}{center}"


def host_ns(center: str, host: str) -> str:
    return f"{NS_PREFIX}{center}-{host}"


def outside_ns(name: str) -> str:
    return f"{NS_PREFIX}{name}"


@dataclass(frozen=True)
class Veth:
    """A veth pair; each end lives in a namespace, optionally enslaved to a bridge there."""

    name: str
    ns_a: str
    if_a: str
    ns_b: str
    if_b: str
    bridge_a: str | None = None  # bridge on side a
    addrs_b: tuple[str, ...] = ()  # addresses (CIDR notation) on side b
    addrs_a: tuple[str, ...] = ()


@dataclass(frozen=True)
class Bridge:
    ns: str
    name: str
    addrs: tuple[str, ...]


@dataclass(frozen=True)
class Route:
    dest: str
    via: str | None = None
    dev: str | None = None
    metric: int | None = None
    nexthops: tuple[str, ...] = ()  # several gateways (ECMP), e.g. every web host of a center

    def args(self) -> list[str]:
        out = [self.dest]
        if self.via:
            out += ["via", self.via]
        for gateway in self.nexthops:
            out += ["nexthop", "via", gateway]
        if self.dev:
            out += ["dev", self.dev]
        if self.metric is not None:
            out += ["metric", str(self.metric)]
        return out


@dataclass(frozen=True)
class LabHost:
    name: str  # host name inside the host (UTS)
    fqdn: str  # web-1.prod
    center: str
    zone: str
    ns: str
    ipv4: str
    ipv6: str | None
    roles: tuple[str, ...]
    gateway_v4: str
    gateway_v6: str | None


@dataclass
class LabPlan:
    namespaces: list[str] = field(default_factory=list)
    bridges: list[Bridge] = field(default_factory=list)
    veths: list[Veth] = field(default_factory=list)
    routes: dict[str, list[Route]] = field(default_factory=dict)  # namespace → routes
    routers: list[str] = field(default_factory=list)  # namespaces that forward packets
    firewalls: dict[str, str] = field(default_factory=dict)  # center namespace → nft ruleset
    hosts: list[LabHost] = field(default_factory=list)
    ops_address: str = ""
    uplinks: dict[str, str] = field(default_factory=dict)  # center → its uplink address seen from wan
    uplinks_v6: dict[str, str] = field(default_factory=dict)
    clients: dict[str, str] = field(default_factory=dict)  # outside name → client namespace address


def _gw(net) -> str:
    return str(next(net.hosts()))


def _host_addr(net, index: int) -> str:
    return str(net.network_address + index)


def build_plan(topo: Topology, active_center: str | None = None) -> LabPlan:
    """The lab for a topology; the service address routes to active_center (default production)."""
    plan = LabPlan()
    plan.namespaces = [WAN_NS, OPS_NS] + [outside_ns(o.name) for o in topo.outside]
    plan.routers = [WAN_NS]
    wan_routes: list[Route] = []

    # The outside world: a bridge per outside network in the wan router, one client namespace each.
    for o in topo.outside:
        gw4 = _gw(o.ipv4)
        addrs = [f"{gw4}/{o.ipv4.prefixlen}"]
        client = [f"{_host_addr(o.ipv4, 10)}/{o.ipv4.prefixlen}"]
        client_routes = [Route("default", via=gw4)]
        if o.ipv6:
            addrs.append(f"{_gw(o.ipv6)}/{o.ipv6.prefixlen}")
            client.append(f"{_host_addr(o.ipv6, 10)}/{o.ipv6.prefixlen}")
            client_routes.append(Route("default", via=_gw(o.ipv6)))
        bridge = ifname("o-", o.name)
        plan.bridges.append(Bridge(WAN_NS, bridge, tuple(addrs)))
        plan.veths.append(Veth(f"client-{o.name}", WAN_NS, ifname("c-", o.name),
                               outside_ns(o.name), "eth0", bridge_a=bridge, addrs_b=tuple(client)))
        plan.routes[outside_ns(o.name)] = client_routes
        plan.clients[o.name] = _host_addr(o.ipv4, 10)

    for index, center in enumerate(topo.centers):
        ns = center_ns(center.name)
        plan.namespaces.append(ns)
        plan.routers.append(ns)
        routes: list[Route] = []
        web_v4: list[str] = []
        web_v6: list[str] = []
        # Uplink to the wan router.
        up4 = list(ipaddress.ip_network(f"{UPLINK_V4.network_address + 4 * index}/30").hosts())
        up6 = ipaddress.ip_network(f"{UPLINK_V6.network_address + (index << 64)}/64")
        wan_side = (f"{up4[0]}/30", f"{_host_addr(up6, 1)}/64")
        center_side = (f"{up4[1]}/30", f"{_host_addr(up6, 2)}/64")
        plan.veths.append(Veth(f"uplink-{center.name}", WAN_NS, ifname("u-", center.name), ns,
                               "uplink", addrs_a=wan_side, addrs_b=center_side))
        plan.uplinks[center.name] = str(up4[1])
        plan.uplinks_v6[center.name] = _host_addr(up6, 2)
        routes += [Route("default", via=str(up4[0])), Route("default", via=_host_addr(up6, 1))]
        wan_routes.append(Route(str(center.ipv4), via=str(up4[1])))
        if center.ipv6:
            wan_routes.append(Route(str(center.ipv6), via=_host_addr(up6, 2)))
        # A bridge per zone; its first address is the zone's gateway.
        for zone in center.zones:
            addrs = []
            for subnet in zone.subnets:
                addrs.append(f"{_gw(subnet.ipv4)}/{subnet.ipv4.prefixlen}")
                if subnet.ipv6:
                    addrs.append(f"{_gw(subnet.ipv6)}/{subnet.ipv6.prefixlen}")
            plan.bridges.append(Bridge(ns, ifname("z-", zone.name), tuple(addrs)))
        for host in center.hosts:
            zone = center.zone(host.zone)
            subnet4 = next(s.ipv4 for s in zone.subnets if host.ipv4 in s.ipv4)
            subnet6 = next((s.ipv6 for s in zone.subnets if host.ipv6 and s.ipv6
                            and host.ipv6 in s.ipv6), None)
            lab_host = LabHost(host.name, host.fqdn, center.name, zone.name,
                               host_ns(center.name, host.name), str(host.ipv4),
                               str(host.ipv6) if host.ipv6 else None, host.roles,
                               _gw(subnet4), _gw(subnet6) if subnet6 else None)
            plan.hosts.append(lab_host)
            plan.namespaces.append(lab_host.ns)
            addrs = [f"{host.ipv4}/{subnet4.prefixlen}"]
            host_routes = [Route("default", via=lab_host.gateway_v4)]
            if subnet6:
                addrs.append(f"{host.ipv6}/{subnet6.prefixlen}")
                host_routes.append(Route("default", via=lab_host.gateway_v6))
            plan.veths.append(Veth(f"host-{host.fqdn}", ns, ifname("h-", host.name), lab_host.ns,
                                   "eth0", bridge_a=ifname("z-", zone.name), addrs_b=tuple(addrs)))
            plan.routes[lab_host.ns] = host_routes
            if "web" in host.roles and topo.service:
                web_v4.append(str(host.ipv4))
                if topo.service.ipv6 and host.ipv6:
                    web_v6.append(str(host.ipv6))
        if topo.service:
            # The service address lives on every web host; the wan route picks the center, the
            # center spreads it over its web hosts (one route, a nexthop each, when there are several).
            for dest, gateways in ((f"{topo.service.ipv4}/32", web_v4),
                                   (f"{topo.service.ipv6}/128", web_v6)):
                if len(gateways) == 1:
                    routes.append(Route(dest, via=gateways[0]))
                elif gateways:
                    routes.append(Route(dest, nexthops=tuple(gateways)))
        plan.routes[ns] = routes

    # The backbone: a veth per inter-center link; primary links are preferred by metric.
    for link in topo.links:
        a, b = link.between
        p4 = list(link.ipv4.hosts())
        addrs_a = [f"{p4[0]}/{link.ipv4.prefixlen}"]
        addrs_b = [f"{p4[1]}/{link.ipv4.prefixlen}"]
        if link.ipv6:
            addrs_a.append(f"{_host_addr(link.ipv6, 1)}/{link.ipv6.prefixlen}")
            addrs_b.append(f"{_host_addr(link.ipv6, 2)}/{link.ipv6.prefixlen}")
        plan.veths.append(Veth(f"link-{link.name}", center_ns(a), ifname("l-", link.name),
                               center_ns(b), ifname("l-", link.name),
                               addrs_a=tuple(addrs_a), addrs_b=tuple(addrs_b)))
        metric = 10 if link.role == "primary" else 20
        for near, far, far4, far6 in ((a, b, p4[1], 2), (b, a, p4[0], 1)):
            far_center = topo.center(far)
            plan.routes[center_ns(near)].append(Route(str(far_center.ipv4), via=str(far4),
                                                      metric=metric))
            if link.ipv6 and far_center.ipv6:
                plan.routes[center_ns(near)].append(
                    Route(str(far_center.ipv6), via=_host_addr(link.ipv6, far6), metric=metric))

    # The service address is routed to the active center (production until a failover).
    if topo.service:
        active = active_center or topo.production.name
        wan_routes.append(Route(f"{topo.service.ipv4}/32", via=plan.uplinks[active]))
        if topo.service.ipv6:
            wan_routes.append(Route(f"{topo.service.ipv6}/128", via=plan.uplinks_v6[active]))
    plan.routes[WAN_NS] = wan_routes

    # The ops workstation sits in the production center's management zone.
    prod = topo.production
    mgmt = prod.zones_of_kind("security_management")
    if mgmt:
        subnet = mgmt[0].subnets[0]
        plan.ops_address = _host_addr(subnet.ipv4, OPS_HOST_INDEX)
        addrs = [f"{plan.ops_address}/{subnet.ipv4.prefixlen}"]
        ops_routes = [Route("default", via=_gw(subnet.ipv4))]
        if subnet.ipv6:
            addrs.append(f"{_host_addr(subnet.ipv6, OPS_HOST_INDEX)}/{subnet.ipv6.prefixlen}")
            ops_routes.append(Route("default", via=_gw(subnet.ipv6)))
        plan.veths.append(Veth("ops", center_ns(prod.name), "h-ops", OPS_NS, "eth0",
                               bridge_a=ifname("z-", mgmt[0].name), addrs_b=tuple(addrs)))
        plan.routes[OPS_NS] = ops_routes

    for center in topo.centers:
        plan.firewalls[center_ns(center.name)] = firewall_ruleset(topo, center.name)
    return plan


def _zone_nets(topo: Topology, kind: str, centers) -> tuple[list, list]:
    v4, v6 = [], []
    for center in centers:
        for zone in center.zones_of_kind(kind):
            for s in zone.subnets:
                v4.append(str(s.ipv4))
                if s.ipv6:
                    v6.append(str(s.ipv6))
    return v4, v6


def _endpoint(topo: Topology, name: str, local, across: bool,
              target: bool) -> tuple[list, list] | None:
    """Addresses of a flow end: None means any address."""
    if name == "any":
        return None
    outside = [o for o in topo.outside if o.name == name]
    if outside:
        return [str(o.ipv4) for o in outside], [str(o.ipv6) for o in outside if o.ipv6]
    centers = topo.centers if across else [local]
    v4, v6 = _zone_nets(topo, name, centers)
    if target and name == "internet_dmz" and topo.service:  # the service address is in the DMZ
        v4.append(f"{topo.service.ipv4}/32")
        if topo.service.ipv6:
            v6.append(f"{topo.service.ipv6}/128")
    return v4, v6


def firewall_ruleset(topo: Topology, center_name: str) -> str:
    """The center's boundary firewall: default deny between zones, the topology's flows, and the
    empty timed sets that interception fills (the kernel expires their elements)."""
    local = topo.center(center_name)
    lines = [
        f"table inet {FW_TABLE} {{",
        f"  set {BLOCK_SET_V4} {{ type ipv4_addr; flags timeout; }}",  # addresses
        f"  set {BLOCK_SET_V6} {{ type ipv6_addr; flags timeout; }}",
        f"  set {BLOCK_SET_V4}{RANGE_SET_SUFFIX} {{ type ipv4_addr; flags interval, timeout; }}",  # range bans
        f"  set {BLOCK_SET_V6}{RANGE_SET_SUFFIX} {{ type ipv6_addr; flags interval, timeout; }}",
        "  chain forward {",
        "    type filter hook forward priority 0; policy drop;",
        f"    ip saddr @{BLOCK_SET_V4} counter drop",
        f"    ip6 saddr @{BLOCK_SET_V6} counter drop",
        f"    ip saddr @{BLOCK_SET_V4}{RANGE_SET_SUFFIX} counter drop",
        f"    ip6 saddr @{BLOCK_SET_V6}{RANGE_SET_SUFFIX} counter drop",
        "    ct state established,related accept",
        "    ct state invalid drop",
        "    icmp type { echo-request, destination-unreachable, time-exceeded } accept",
        "    icmpv6 type { echo-request, destination-unreachable, packet-too-big, time-exceeded } accept",
    ]
    for flow in topo.flows:
        src = _endpoint(topo, flow.source, local, flow.across_centers, target=False)
        dst = _endpoint(topo, flow.target, local, flow.across_centers, target=True)
        by_proto: dict[str, list[str]] = {}
        for port in flow.ports:
            proto, number = port.split("/")
            by_proto.setdefault(proto, []).append(number)
        for family, slot in (("ip", 0), ("ip6", 1)):
            if (src is not None and not src[slot]) or (dst is not None and not dst[slot]):
                continue
            match = ""
            if src is not None:
                match += f"{family} saddr {{ {', '.join(src[slot])} }} "
            if dst is not None:
                match += f"{family} daddr {{ {', '.join(dst[slot])} }} "
            if src is None and dst is None:
                match += f"meta nfproto {'ipv4' if family == 'ip' else 'ipv6'} "
            for proto, ports in by_proto.items():
                lines.append(f"    {match}{proto} dport {{ {', '.join(ports)} }} accept"
                             f" comment \"{flow.source} -> {flow.target}\"")
    lines += [
        "    counter comment \"default deny between zones\"",
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"
