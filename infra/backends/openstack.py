"""The openstack backend: the topology on an OpenStack cloud with pulumi_openstack 5.0.

Per center: a router; per zone a network with an IPv4 subnet (and an IPv6 subnet when
dual-stack), attached to the router through a port at the subnet's gateway; a security group and
an FWaaS v2 firewall group on the zone's router ports, both carrying the zone policy (the
topology's flows); hosts as servers booted from encrypted volumes, spread by anti-affinity server
groups; an Octavia load balancer for the service; Designate records for the service name.

What OpenStack does not do natively is not faked: global DNS failover between centers, managed
cross-region database replication and a managed audit trail are stack outputs for the operator
(`dns_failover`, `database_replication`, `audit`); docs/clouds.md says how to close each.
"""
from __future__ import annotations

import ipaddress
from collections import Counter
from typing import Any

import pulumi
import pulumi_openstack as openstack
from pulumi_openstack import compute, dns, firewall, loadbalancer, networking

from infra.topology.model import Center, Topology

from .cloud_common import CloudRenderer, hosts_with_role, slug, stack_facts, zone_ingress

DEFAULTS: dict[str, Any] = {
    "flavor_name": "m1.medium",
    "volume_gb": 40,
    "encrypted_volume_type": "encrypted",  # the operator's LUKS volume type (Cinder encryption)
    "dns_ttl": 60,
    "audit": None,
}


def _tags(center: Center, zone=None) -> list[str]:
    tags = [f"govctl-center={center.name}", f"govctl-role={center.role}"]
    if zone is not None:
        tags += [f"govctl-zone={zone.name}", f"govctl-zone-kind={zone.kind}"]
    return tags


def _gateway(network: ipaddress._BaseNetwork) -> str:
    return str(next(network.hosts()))


def _fw_port(rule) -> str:
    return str(rule.port_min) if rule.port_min == rule.port_max else f"{rule.port_min}:{rule.port_max}"


class _Renderer(CloudRenderer):
    DEFAULTS = DEFAULTS

    def provider(self, region: str, opts: pulumi.ResourceOptions) -> openstack.Provider:
        return openstack.Provider(f"openstack-{region}", region=region, cloud=self.cfg.get("cloud"), opts=opts)

    # -- networks, routers, zone policy -------------------------------------------------
    def networks(self) -> None:
        external = self.cfg.require("external_network_id", "the provider network routers uplink to")
        self.subnets: dict[tuple[str, str], list[tuple[Any, Any, Any]]] = {}
        self.networks_by_zone, self.secgroups = {}, {}
        # Neutron quotas this stack needs per region (defaults are far lower, e.g. 10 groups / 100 rules)
        self.quotas: dict[str, Counter] = {r: Counter() for r in self.regions}
        for c in self.t.centers:
            router = networking.Router(slug(c.name, "router"), name=slug(self.t.name, c.name),
                                       external_network_id=external, tags=_tags(c), opts=self.copts(c))
            for zone in c.zones:
                net = networking.Network(slug(c.name, zone.name), name=slug(c.name, zone.name),
                                         tags=_tags(c, zone), opts=self.copts(c))
                self.networks_by_zone[(c.name, zone.name)] = net
                pairs, router_ports = [], []
                for i, s in enumerate(zone.subnets):
                    suffix = str(i) if i else ""
                    v4 = networking.Subnet(
                        slug(c.name, zone.name, "v4", suffix), network_id=net.id, ip_version=4,
                        cidr=str(s.ipv4), gateway_ip=_gateway(s.ipv4), enable_dhcp=True,
                        tags=_tags(c, zone), opts=self.copts(c, parent=net))
                    v6 = None
                    fixed = [networking.PortFixedIpArgs(subnet_id=v4.id, ip_address=_gateway(s.ipv4))]
                    if s.ipv6 is not None and self.t.dual_stack:
                        v6 = networking.Subnet(
                            slug(c.name, zone.name, "v6", suffix), network_id=net.id, ip_version=6,
                            cidr=str(s.ipv6), gateway_ip=_gateway(s.ipv6), ipv6_address_mode="dhcpv6-stateful",
                            ipv6_ra_mode="dhcpv6-stateful", tags=_tags(c, zone), opts=self.copts(c, parent=net))
                        fixed.append(networking.PortFixedIpArgs(subnet_id=v6.id, ip_address=_gateway(s.ipv6)))
                    port = networking.Port(slug(c.name, zone.name, "gw", suffix), network_id=net.id,
                                           fixed_ips=fixed, tags=_tags(c, zone), opts=self.copts(c, parent=net))
                    networking.RouterInterface(slug(c.name, zone.name, "if", suffix), router_id=router.id,
                                               port_id=port.id, opts=self.copts(c, parent=router))
                    pairs.append((s, v4, v6))
                    router_ports.append(port)
                self.subnets[(c.name, zone.name)] = pairs
                self.secgroups[(c.name, zone.name)] = self.security_group(c, zone)
                self.firewall(c, zone, router_ports)

    def security_group(self, c: Center, zone) -> networking.SecGroup:
        group = networking.SecGroup(slug(c.name, zone.name, "sg"), name=slug(c.name, zone.name),
                                    description=f"zone policy of {c.name}/{zone.name}", tags=_tags(c, zone),
                                    opts=self.copts(c))
        rules = zone_ingress(self.t, c, zone)
        self.quotas[self.where[c.name].region].update(security_group=1, security_group_rule=len(rules))
        for i, rule in enumerate(rules):
            networking.SecGroupRule(
                slug(c.name, zone.name, "in", str(i)), security_group_id=group.id, direction="ingress",
                ethertype=f"IPv{rule.version}", protocol=rule.protocol, port_range_min=rule.port_min,
                port_range_max=rule.port_max, remote_ip_prefix=rule.source, description=rule.why,
                opts=self.copts(c, parent=group))
        return group

    def firewall(self, c: Center, zone, router_ports: list) -> None:
        """FWaaS v2 on the zone's router ports. For a router port, traffic towards the zone leaves
        the router (the group's egress policy: the zone policy); traffic from the zone enters it
        (ingress policy: anything whose source is the zone's own blocks)."""
        inbound = []
        for i, rule in enumerate(zone_ingress(self.t, c, zone)):
            inbound.append(firewall.RuleV2(
                slug(c.name, zone.name, "fw-in", str(i)), name=slug(c.name, zone.name, "in", str(i)),
                action="allow", protocol=rule.protocol, ip_version=rule.version,
                source_ip_address=rule.source, destination_port=_fw_port(rule), description=rule.why,
                opts=self.copts(c)))
        outbound = []
        for i, s in enumerate(zone.subnets):
            blocks = [s.ipv4] + ([s.ipv6] if s.ipv6 is not None and self.t.dual_stack else [])
            for block in blocks:
                outbound.append(firewall.RuleV2(
                    slug(c.name, zone.name, "fw-out", str(i), f"v{block.version}"),
                    name=slug(c.name, zone.name, "out", f"v{block.version}"), action="allow",
                    protocol="any", ip_version=block.version, source_ip_address=str(block),
                    description=f"traffic from {c.name}/{zone.name}", opts=self.copts(c)))
        self.quotas[self.where[c.name].region].update(firewall_rule=len(inbound) + len(outbound),
                                                      firewall_policy=2, firewall_group=1)
        to_zone = firewall.PolicyV2(slug(c.name, zone.name, "fw-policy-in"), name=slug(c.name, zone.name, "in"),
                                    rules=[r.id for r in inbound], audited=True, opts=self.copts(c))
        from_zone = firewall.PolicyV2(slug(c.name, zone.name, "fw-policy-out"),
                                      name=slug(c.name, zone.name, "out"), rules=[r.id for r in outbound],
                                      audited=True, opts=self.copts(c))
        firewall.GroupV2(slug(c.name, zone.name, "fw"), name=slug(c.name, zone.name),
                         egress_firewall_policy_id=to_zone.id, ingress_firewall_policy_id=from_zone.id,
                         ports=[p.id for p in router_ports], description=f"boundary of {c.name}/{zone.name}",
                         opts=self.copts(c))

    # -- compute ------------------------------------------------------------------------
    def hosts(self) -> None:
        image = self.cfg.require("image_id", "the Glance image every host boots from")
        self.ports = {}
        for c in self.t.centers:
            groups = {}
            for role in sorted({h.roles[0] if h.roles else "host" for h in c.hosts}):
                groups[role] = compute.ServerGroup(slug(c.name, role, "spread"), name=slug(c.name, role),
                                                   policies="anti-affinity", opts=self.copts(c))
            for h in c.hosts:
                s, v4, v6 = next((p for p in self.subnets[(c.name, h.zone)] if h.ipv4 in p[0].ipv4),
                                 self.subnets[(c.name, h.zone)][0])
                fixed = [networking.PortFixedIpArgs(subnet_id=v4.id, ip_address=str(h.ipv4))]
                if v6 is not None and h.ipv6 is not None:
                    fixed.append(networking.PortFixedIpArgs(subnet_id=v6.id, ip_address=str(h.ipv6)))
                port = networking.Port(slug(c.name, h.name, "port"), name=h.fqdn,
                                       network_id=self.networks_by_zone[(c.name, h.zone)].id, fixed_ips=fixed,
                                       security_group_ids=[self.secgroups[(c.name, h.zone)].id],
                                       tags=_tags(c, c.zone(h.zone)), opts=self.copts(c))
                self.ports[(c.name, h.name)] = port
                compute.Instance(
                    slug(c.name, h.name), name=h.fqdn, flavor_name=self.cfg.get("flavor_name"),
                    availability_zone=self.where[c.name].zone,
                    networks=[compute.InstanceNetworkArgs(port=port.id)],
                    block_devices=[compute.InstanceBlockDeviceArgs(
                        source_type="image", uuid=image, destination_type="volume",
                        volume_size=self.cfg.get("volume_gb"), volume_type=self.cfg.get("encrypted_volume_type"),
                        boot_index=0, delete_on_termination=True)],
                    scheduler_hints=[compute.InstanceSchedulerHintArgs(
                        group=groups[h.roles[0] if h.roles else "host"].id)],
                    metadata={"govctl-center": c.name, "govctl-zone": h.zone, "govctl-roles": ",".join(h.roles)},
                    tags=_tags(c, c.zone(h.zone)), opts=self.copts(c))

    # -- the service --------------------------------------------------------------------
    def load_balancers(self) -> dict[str, Any]:
        self.vips = {}
        service = self.t.service
        if service is None:
            return {}
        for c in self.t.centers:
            web = hosts_with_role(c, "web")
            dmz = next(iter(c.zones_of_kind("internet_dmz")), None)
            if not web or dmz is None:
                continue
            vip_subnet = self.subnets[(c.name, dmz.name)][0][1]
            lb = openstack.LbLoadbalancerV2(slug(c.name, "lb"), name=slug(self.t.name, c.name),
                                            vip_subnet_id=vip_subnet.id, availability_zone=None,
                                            security_group_ids=[self.secgroups[(c.name, dmz.name)].id],
                                            tags=_tags(c, dmz), opts=self.copts(c))
            listener = loadbalancer.Listener(slug(c.name, "listener"), loadbalancer_id=lb.id, protocol="HTTP",
                                             protocol_port=service.port, name=slug(service.name, c.name),
                                             opts=self.copts(c, parent=lb))
            pool = loadbalancer.Pool(slug(c.name, "pool"), listener_id=listener.id, protocol="HTTP",
                                     lb_method="ROUND_ROBIN", name=slug(service.name, c.name),
                                     opts=self.copts(c, parent=lb))
            for h in web:
                s, v4, _ = next((p for p in self.subnets[(c.name, h.zone)] if h.ipv4 in p[0].ipv4))
                loadbalancer.Member(slug(c.name, h.name, "member"), pool_id=pool.id, address=str(h.ipv4),
                                    protocol_port=service.port, subnet_id=v4.id, name=h.fqdn,
                                    opts=self.copts(c, parent=pool))
            loadbalancer.Monitor(slug(c.name, "monitor"), pool_id=pool.id, type="HTTP", url_path="/",
                                 expected_codes="200-399", delay=5, timeout=3, max_retries=3,
                                 opts=self.copts(c, parent=pool))
            self.vips[c.name] = lb.vip_address
        return self.vips

    def records(self) -> dict[str, Any] | None:
        service = self.t.service
        if service is None or not self.vips:
            return None
        zone_name = self.cfg.require("dns_zone", "the Designate zone of the service, e.g. jinhua.gov.cn")
        prod = self.t.production
        zone = dns.Zone("service-zone", name=f"{zone_name}.", email=self.cfg.get("dns_email") or
                        f"hostmaster@{zone_name}", ttl=self.cfg.get("dns_ttl"),
                        description=f"{self.t.name} service names", opts=self.copts(prod))
        for name, vip in self.vips.items():
            dns.RecordSet(slug(name, "record"), zone_id=zone.id, name=f"{service.name}.{name}.{zone_name}.",
                          type="A", ttl=self.cfg.get("dns_ttl"), records=[vip],
                          opts=self.copts(self.t.center(name), parent=zone))
        order = [c.name for c in sorted(self.t.centers, key=lambda c: ("production", "same_city_dr",
                                                                       "remote_dr").index(c.role))
                 if c.name in self.vips]
        dns.RecordSet("service-record", zone_id=zone.id, name=f"{service.name}.{zone_name}.", type="A",
                      ttl=self.cfg.get("dns_ttl"), records=[self.vips[order[0]]],
                      description=f"points at {order[0]}; failover is the operator's (see dns_failover)",
                      opts=self.copts(prod, parent=zone))
        return {"name": f"{service.name}.{zone_name}", "active": order[0], "order": order,
                "candidates": {n: self.vips[n] for n in order}, "native": False,
                "operator_action": "Designate has no health-checked failover: on a center failure, "
                                   "point the service record at the next candidate (order), or "
                                   "delegate the name to a GSLB"}

    def replication_for_operator(self) -> list[dict[str, Any]]:
        out = []
        for r in self.t.replication:
            src, dst = self.t.center(r.source), self.t.center(r.target)
            src_db, dst_db = hosts_with_role(src, "database"), hosts_with_role(dst, "database")
            out.append({"name": r.name, "from": src.name, "to": dst.name, "mode": r.mode,
                        "source_host": str(src_db[0].ipv4) if src_db else None,
                        "target_host": str(dst_db[0].ipv4) if dst_db else None, "native": False,
                        "operator_action": "OpenStack has no managed cross-region database "
                                           "replication: run PostgreSQL streaming replication "
                                           f"({r.mode}) between these hosts (govctl playbooks)"})
        return out

    def audit(self) -> dict[str, Any]:
        declared = self.cfg.get("audit")
        if declared:
            return {"enabled": bool(declared.get("enabled", True)),
                    "retention_days": int(declared.get("retention_days", 0)),
                    "evidence": f"declared by the operator: {declared.get('sink', 'unspecified sink')}",
                    "native": False}
        return {"enabled": False, "retention_days": 0, "native": False,
                "evidence": "OpenStack has no managed audit trail; declare the operator's CADF "
                            "audit pipeline in stack config `audit`"}


def deploy(topology: Topology, config: Any) -> dict[str, Any]:
    """Register every resource of the topology on OpenStack; return the stack outputs."""
    r = _Renderer(topology, config)
    r.networks()
    r.hosts()
    r.load_balancers()
    service = r.records()
    return {
        **stack_facts(topology, "openstack", r.audit(), r.where),
        "centers": {c.name: {"role": c.role, "region": r.where[c.name].region,
                             "availability_zone": r.where[c.name].zone,
                             "networks": {z.name: r.networks_by_zone[(c.name, z.name)].id for z in c.zones},
                             "lb_vip": r.vips.get(c.name)} for c in topology.centers},
        "hosts": {f"{c}/{h}": {"port_id": p.id} for (c, h), p in r.ports.items()},
        "dns_failover": service,
        "required_quotas": {region: dict(counts) for region, counts in r.quotas.items()},
        "database_replication": r.replication_for_operator(),
        "links": [{"name": l.name, "between": list(l.between), "role": l.role, "ipv4": str(l.ipv4),
                   "native": False, "operator_action": "inter-center circuits are the operator's "
                                                       "(provider networks or BGP VPN)"}
                  for l in topology.links],
    }
