"""The topology: the single source of truth every backend renders (DESIGN.md §2).

sites → centers (role) → zones (kind) → subnets (IPv4 + IPv6) → hosts; inter-center links;
replication policies; outside networks; the allowed flows between zones; the service address.
Objects are built only from a document that passed `validate.check_document`.
"""
from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, field
from typing import Any

ZONE_KINDS = ("internet_dmz", "egov_extranet", "core_business", "security_management")
ROLES = ("production", "same_city_dr", "remote_dr")
ROLE_LABELS = {
    "production": "生产中心 production",
    "same_city_dr": "同城灾备中心 same-city DR",
    "remote_dr": "异地灾备中心 remote DR",
}
ZONE_LABELS = {
    "internet_dmz": "互联网DMZ区 internet DMZ",
    "egov_extranet": "政务外网区 e-gov extranet",
    "core_business": "核心业务区 core business",
    "security_management": "安全管理区 security management",
}


@dataclass(frozen=True)
class Subnet:
    ipv4: ipaddress.IPv4Network
    ipv6: ipaddress.IPv6Network | None = None


@dataclass(frozen=True)
class Zone:
    name: str
    kind: str
    subnets: tuple[Subnet, ...]


@dataclass(frozen=True)
class Host:
    name: str
    center: str
    zone: str
    ipv4: ipaddress.IPv4Address
    ipv6: ipaddress.IPv6Address | None = None
    roles: tuple[str, ...] = ()

    @property
    def fqdn(self) -> str:
        """The name users type: `ssh web-1.prod`."""
        return f"{self.name}.{self.center}"


@dataclass(frozen=True)
class Center:
    name: str
    site: str
    role: str
    ipv4: ipaddress.IPv4Network
    ipv6: ipaddress.IPv6Network | None
    zones: tuple[Zone, ...]
    hosts: tuple[Host, ...]
    availability_zone: str | None = None

    def zone(self, name: str) -> Zone:
        return next(z for z in self.zones if z.name == name)

    def zones_of_kind(self, kind: str) -> tuple[Zone, ...]:
        return tuple(z for z in self.zones if z.kind == kind)


@dataclass(frozen=True)
class Site:
    name: str
    city: str
    region: str | None = None


@dataclass(frozen=True)
class Link:
    name: str
    between: tuple[str, str]
    role: str
    ipv4: ipaddress.IPv4Network
    ipv6: ipaddress.IPv6Network | None = None


@dataclass(frozen=True)
class Replication:
    name: str
    source: str
    target: str
    mode: str


@dataclass(frozen=True)
class Outside:
    name: str
    kind: str
    ipv4: ipaddress.IPv4Network
    ipv6: ipaddress.IPv6Network | None = None


@dataclass(frozen=True)
class Flow:
    source: str
    target: str
    ports: tuple[str, ...]
    across_centers: bool = False


@dataclass(frozen=True)
class Service:
    name: str
    ipv4: ipaddress.IPv4Address
    port: int
    ipv6: ipaddress.IPv6Address | None = None


@dataclass(frozen=True)
class Topology:
    name: str
    level: int
    dual_stack: bool
    sites: tuple[Site, ...]
    centers: tuple[Center, ...]
    links: tuple[Link, ...]
    replication: tuple[Replication, ...]
    outside: tuple[Outside, ...] = ()
    flows: tuple[Flow, ...] = ()
    service: Service | None = None
    description: str = ""
    source: str = field(default="", compare=False)

    def center(self, name: str) -> Center:
        return next(c for c in self.centers if c.name == name)

    def centers_with_role(self, role: str) -> tuple[Center, ...]:
        return tuple(c for c in self.centers if c.role == role)

    @property
    def production(self) -> Center:
        return self.centers_with_role("production")[0]

    @property
    def hosts(self) -> tuple[Host, ...]:
        return tuple(h for c in self.centers for h in c.hosts)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (addresses as strings), used by `--json` and stack outputs."""
        return _plain(asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (ipaddress._BaseNetwork, ipaddress._BaseAddress)):
        return str(value)
    return value


def _net(text: str | None):
    return ipaddress.ip_network(text) if text else None


def _addr(text: str | None):
    return ipaddress.ip_address(text) if text else None


def expand_hosts(entries) -> list[tuple[int, dict[str, Any]]]:
    """The hosts of a center's `hosts` list, each with the index of the entry it came from.

    An entry with `count: N` stands for N hosts named <name>-1 … <name>-N (stable: growing N adds
    names, never renames) at consecutive addresses from the entry's own; other entries are one host.
    Addresses are only shifted here: validate.py checks they parse and stay in the zone.
    """
    hosts = []
    for index, entry in enumerate(entries):
        count = entry.get("count")
        if count is None:
            hosts.append((index, entry))
            continue
        for n in range(count):
            host = {k: v for k, v in entry.items() if k != "count"}
            host["name"] = f"{entry['name']}-{n + 1}"
            for key in ("ipv4", "ipv6"):
                if key in entry:
                    host[key] = _shifted(entry[key], n)
            hosts.append((index, host))
    return hosts


def _shifted(text: str, offset: int) -> str:
    try:
        return str(ipaddress.ip_address(text) + offset)
    except ValueError:  # invalid or past the end of the space: left as is for the checker to name
        return text


def build(doc: dict[str, Any], source: str = "") -> Topology:
    """Turn a validated document into model objects."""
    centers = []
    for c in doc["centers"]:
        zones = tuple(
            Zone(z["name"], z["kind"],
                 tuple(Subnet(_net(s["ipv4"]), _net(s.get("ipv6"))) for s in z["subnets"]))
            for z in c["zones"]
        )
        hosts = tuple(
            Host(h["name"], c["name"], h["zone"], _addr(h["ipv4"]), _addr(h.get("ipv6")),
                 tuple(h.get("roles", ())))
            for _, h in expand_hosts(c.get("hosts", ()))
        )
        centers.append(Center(c["name"], c["site"], c["role"], _net(c["ipv4"]),
                              _net(c.get("ipv6")), zones, hosts, c.get("availability_zone")))
    service = doc.get("service")
    return Topology(
        name=doc["name"],
        level=doc["level"],
        dual_stack=doc.get("dual_stack", True),
        sites=tuple(Site(s["name"], s["city"], s.get("region")) for s in doc["sites"]),
        centers=tuple(centers),
        links=tuple(Link(l["name"], tuple(l["between"]), l["role"], _net(l["ipv4"]),
                         _net(l.get("ipv6"))) for l in doc["links"]),
        replication=tuple(Replication(r["name"], r["from"], r["to"], r["mode"])
                          for r in doc["replication"]),
        outside=tuple(Outside(o["name"], o["kind"], _net(o["ipv4"]), _net(o.get("ipv6")))
                      for o in doc.get("outside", ())),
        flows=tuple(Flow(f["from"], f["to"], tuple(f["ports"]), f.get("across_centers", False))
                    for f in doc.get("flows", ())),
        service=Service(service["name"], _addr(service["ipv4"]), service["port"],
                        _addr(service.get("ipv6"))) if service else None,
        description=doc.get("description", ""),
        source=source,
    )
