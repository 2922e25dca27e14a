"""The alicloud backend: the topology on Alibaba Cloud (Apsara) with pulumi_alicloud 3.63.

Layout (docs/clouds.md has the reasoning and the type names):
- one provider per region; one VPC per region (the first center's block is the VPC's primary
  CIDR, other centers of the region add secondary CIDRs), IPv6 enabled when the topology is
  dual-stack; a vSwitch per center × zone × subnet in the center's availability zone;
- a security group per center × zone whose rules are the zone policy (the topology's flows);
- CEN with a transit router per region, a VPC attachment per region and a peer attachment per
  region pair (the inter-city backbone);
- an ALB per center with web hosts; DNS GTM with an address pool and a health monitor per
  center and a failover strategy (production → same-city DR) for the service name;
- RDS PostgreSQL in production with the same-city center's zone as standby zone (synchronous
  replication), a DR instance per remote center fed by DTS, and a cross-region backup policy;
- OSS backup buckets (SM4/KMS encrypted, versioned) with cross-region replication; HBR vaults
  and an ECS backup plan per host; ActionTrail into an SLS logstore with the audit retention;
  a bastion host in each center's management zone; a KMS key per region (SM4 where offered).
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
from typing import Any

import pulumi
import pulumi_alicloud as alicloud
from pulumi_alicloud import (actiontrail, alb, bastionhost, cen, dns, dts, ecs, hbr, kms, log, oss,
                             rds, vpc)

from infra.topology.model import Center, Topology

from .cloud_common import (BACKBONE_TYPE, WORLD, BackendConfig, BackendConfigError, CloudRenderer,
                           Group, center_tags, hosts_with_role, replication_targets,
                           service_port_sources, slug, stack_facts, zone_ingress)

DEFAULTS: dict[str, Any] = {
    "instance_type": "ecs.g7.large",
    "system_disk_gb": 40,
    "rds_engine_version": "15.0",
    "rds_instance_type": "pg.n2.2c.2m",
    "rds_storage_gb": 100,
    "database_port": 5432,
    "alb_edition": "Standard",
    "cen_bandwidth_mbps": 100,
    "audit_retention_days": 180,
    "backup_retention_days": 30,
    "deletion_protection": True,
    # Regions whose KMS and OSS offer SM4 (mainland China regions); others get AES-256.
    "sm4_region_prefixes": ["cn-"],
    # GTM probe nodes (city and ISP codes from DescribeDnsGtmMonitorAvailableConfig).
    "gtm_monitor_nodes": [{"city_code": "503", "isp_code": "465"},
                          {"city_code": "357", "isp_code": "465"}],
    "alb_second_zone": {},
}
BACKUP_START = 1704067200  # 2024-01-01T00:00:00Z: HBR schedules start from a fixed epoch


def _offers_sm4(cfg: BackendConfig, region: str) -> bool:
    return any(region.startswith(p) for p in cfg.get("sm4_region_prefixes"))


class _Renderer(CloudRenderer):
    """Builds the resources for one topology; attributes keep what later steps refer to."""

    DEFAULTS = DEFAULTS

    def __init__(self, topology: Topology, config: Any):
        super().__init__(topology, config)
        self.prod = topology.production
        self.prod_region = self.where[self.prod.name].region
        self.prefix = self.cfg.require("name_prefix", "globally unique prefix for bucket, log "
                                                      "project and GTM names, e.g. jh-egov")
        self.backbone = Group(BACKBONE_TYPE, "backbone", {"regions": self.regions})

    def provider(self, region: str, opts: pulumi.ResourceOptions) -> alicloud.Provider:
        return alicloud.Provider(f"alicloud-{region}", region=region, opts=opts)

    # -- keys and networks --------------------------------------------------------------
    def keys(self) -> None:
        self.kms = {}
        for r in self.regions:
            sm4 = _offers_sm4(self.cfg, r)
            self.kms[r] = kms.Key(
                f"{r}-key", description=f"govctl {self.t.name} data key ({r})",
                key_spec="Aliyun_SM4" if sm4 else "Aliyun_AES_256",
                protection_level="HSM" if sm4 else "SOFTWARE", key_usage="ENCRYPT/DECRYPT",
                automatic_rotation="Enabled", rotation_interval="31536000s",
                pending_window_in_days=7, opts=self.opts(r, self.region_groups[r]))

    def networks(self) -> None:
        dual = self.t.dual_stack
        self.vpcs, self.vswitches, self.sgs, self.prefix_lists = {}, {}, {}, {}
        for r in self.regions:
            members = self.centers_in(r)
            network = vpc.Network(
                f"{r}-vpc", vpc_name=f"{self.t.name}-{r}", cidr_block=str(members[0].ipv4),
                enable_ipv6=dual, ipv6_isp="BGP" if dual else None,
                description=f"centers {', '.join(c.name for c in members)}",
                tags={"govctl-topology": self.t.name}, opts=self.opts(r, self.region_groups[r]))
            self.vpcs[r] = network
            cidrs = {members[0].name: []}
            for c in members[1:]:
                cidrs[c.name] = [vpc.Ipv4CidrBlock(f"{c.name}-cidr", vpc_id=network.id,
                                                   secondary_cidr_block=str(c.ipv4), opts=self.copts(c))]
            if dual:
                vpc.Ipv6Gateway(f"{r}-ipv6-gateway", vpc_id=network.id,
                                ipv6_gateway_name=f"{self.t.name}-{r}",
                                opts=self.opts(r, self.region_groups[r]))
            ipv6_index = 0  # Alibaba assigns the VPC's IPv6 /56; each vSwitch takes one /64 of it
            for c in members:
                zone_id = self.where[c.name].zone
                for zone in c.zones:
                    switches = []
                    for i, subnet in enumerate(zone.subnets):
                        v6 = dual and subnet.ipv6 is not None
                        if v6 and ipv6_index > 255:
                            raise BackendConfigError(
                                f"region {r} has more than 256 dual-stack subnets, more /64s than "
                                "the VPC's IPv6 /56 holds; spread the centers over more regions")
                        switches.append(vpc.Switch(
                            slug(c.name, zone.name, str(i) if i else ""),
                            vswitch_name=slug(c.name, zone.name, str(i) if i else ""),
                            vpc_id=network.id, cidr_block=str(subnet.ipv4), zone_id=zone_id,
                            enable_ipv6=v6, ipv6_cidr_block_mask=ipv6_index if v6 else None,
                            description=f"{c.name} {zone.kind}", tags=center_tags(c, zone),
                            opts=self.copts(c, depends_on=cidrs[c.name])))
                        ipv6_index += 1 if v6 else 0
                    self.vswitches[(c.name, zone.name)] = switches
                    self.sgs[(c.name, zone.name)] = self.security_group(c, zone, network)

    def security_group(self, c: Center, zone, network) -> ecs.SecurityGroup:
        """The zone's security group: one ingress rule per (protocol, ports, address family).
        Several sources for the same ports share a prefix list, so a rule count grows with the
        flows, not with centers × flows (a security group holds a bounded number of rules)."""
        group = ecs.SecurityGroup(
            slug(c.name, zone.name, "sg"), name=slug(c.name, zone.name), vpc_id=network.id,
            inner_access_policy="Accept", description=f"zone policy of {c.name}/{zone.name}",
            tags=center_tags(c, zone), opts=self.copts(c))
        by_ports: dict[tuple, list] = {}
        for rule in zone_ingress(self.t, c, zone):
            world = rule.source in WORLD.values()  # never hidden inside a prefix list
            by_ports.setdefault((rule.protocol, rule.port_min, rule.port_max, rule.version, world), []).append(rule)
        for (protocol, low, high, version, world), rules in by_ports.items():
            name = slug(c.name, zone.name, "in", f"{protocol}{low}" + (f"-{high}" if high != low else ""),
                        f"v{version}", "world" if world else "")
            source: dict[str, Any] = {}
            if len(rules) == 1:
                source["cidr_ip" if version == 4 else "ipv6_cidr_ip"] = rules[0].source
            else:
                source["prefix_list_id"] = self.prefix_list(c, version, rules).id
            ecs.SecurityGroupRule(
                name, type="ingress", policy="accept", security_group_id=group.id, ip_protocol=protocol,
                nic_type="intranet", port_range=f"{low}/{high}", priority=1,
                description="; ".join(sorted({r.why for r in rules}))[:512], **source,
                opts=self.copts(c, parent=group))
        return group

    def prefix_list(self, c: Center, version: int, rules: list) -> ecs.EcsPrefixList:
        """One prefix list per region and distinct set of source blocks, shared by every rule
        that admits exactly that set."""
        region = self.where[c.name].region
        blocks = sorted({r.source for r in rules})
        digest = hashlib.sha256(" ".join(blocks).encode()).hexdigest()[:10]
        key = (region, digest)
        if key not in self.prefix_lists:
            self.prefix_lists[key] = ecs.EcsPrefixList(
                f"{region}-sources-{digest}", prefix_list_name=f"govctl-{digest}",
                address_family=f"IPv{version}", max_entries=len(blocks),
                description=f"zone-policy sources ({len(blocks)} blocks)",
                entries=[ecs.EcsPrefixListEntryArgs(cidr=b, description=b) for b in blocks],
                opts=self.opts(region, self.region_groups[region]))
        return self.prefix_lists[key]

    def switch_for(self, c: Center, zone_name: str, address) -> vpc.Switch:
        zone = c.zone(zone_name)
        for subnet, switch in zip(zone.subnets, self.vswitches[(c.name, zone_name)]):
            if address in subnet.ipv4:
                return switch
        return self.vswitches[(c.name, zone_name)][0]

    def first_of_kind(self, c: Center, kind: str):
        zones = c.zones_of_kind(kind)
        return zones[0] if zones else None

    # -- the backbone -------------------------------------------------------------------
    def backbone_network(self) -> None:
        prod_opts = self.opts(self.prod_region, self.backbone)
        self.cen = cen.Instance("cen", cen_instance_name=f"{self.t.name}-backbone",
                                protection_level="REDUCED",
                                description="inter-center backbone (两地三中心)", opts=prod_opts)
        self.transit_routers = {}
        for r in self.regions:
            tr = cen.TransitRouter(f"{r}-tr", cen_id=self.cen.id, transit_router_name=f"{self.t.name}-{r}",
                                   opts=self.opts(r, self.backbone))
            self.transit_routers[r] = tr
            mappings, seen = [], set()
            for c in self.centers_in(r):
                core = self.first_of_kind(c, "core_business") or c.zones[0]
                if self.where[c.name].zone not in seen:
                    seen.add(self.where[c.name].zone)
                    mappings.append(cen.TransitRouterVpcAttachmentZoneMappingArgs(
                        vswitch_id=self.vswitches[(c.name, core.name)][0].id,
                        zone_id=self.where[c.name].zone))
            cen.TransitRouterVpcAttachment(
                f"{r}-vpc-attachment", cen_id=self.cen.id, transit_router_id=tr.id,
                vpc_id=self.vpcs[r].id, zone_mappings=mappings,
                transit_router_vpc_attachment_name=f"{self.t.name}-{r}",
                route_table_association_enabled=True, route_table_propagation_enabled=True,
                opts=self.opts(r, self.backbone))
        self.peers = {}
        for i, a in enumerate(self.regions):
            for b in self.regions[i + 1:]:
                carried = [l.name for l in self.t.links
                           if {self.where[l.between[0]].region, self.where[l.between[1]].region} == {a, b}]
                self.peers[(a, b)] = cen.TransitRouterPeerAttachment(
                    f"{a}-{b}-peer", cen_id=self.cen.id, transit_router_id=self.transit_routers[a].id,
                    peer_transit_router_id=self.transit_routers[b].id, peer_transit_router_region_id=b,
                    bandwidth_type="DataTransfer", bandwidth=self.cfg.get("cen_bandwidth_mbps"),
                    auto_publish_route_enabled=True, route_table_association_enabled=True,
                    route_table_propagation_enabled=True,
                    transit_router_attachment_name=f"{a}-{b}",
                    transit_router_attachment_description="carries links " + ", ".join(carried),
                    opts=self.opts(a, self.backbone))

    def link_carriers(self) -> dict[str, dict[str, Any]]:
        out = {}
        for link in self.t.links:
            a, b = (self.where[n].region for n in link.between)
            if a == b:
                carrier = {"kind": "vpc", "region": a, "vpc_id": self.vpcs[a].id}
            else:
                key = (a, b) if (a, b) in self.peers else (b, a)
                carrier = {"kind": "cen-peer-attachment", "regions": list(key),
                           "attachment_id": self.peers[key].id}
            out[link.name] = {"between": list(link.between), "role": link.role, **carrier}
        return out

    # -- compute ------------------------------------------------------------------------
    def hosts(self) -> None:
        self.instances = {}
        image = self.cfg.require("image_id", "the ECS image of every host, e.g. a Debian 12 image id")
        for c in self.t.centers:
            region = self.where[c.name].region
            for h in c.hosts:
                if "database" in h.roles:
                    continue  # realized by RDS (see databases)
                self.instances[(c.name, h.name)] = ecs.Instance(
                    slug(c.name, h.name), instance_name=h.fqdn, host_name=h.name,
                    availability_zone=self.where[c.name].zone, instance_type=self.cfg.get("instance_type"),
                    image_id=image, vswitch_id=self.switch_for(c, h.zone, h.ipv4).id,
                    security_groups=[self.sgs[(c.name, h.zone)].id], private_ip=str(h.ipv4),
                    ipv6_address_count=1 if (h.ipv6 is not None and self.t.dual_stack) else None,
                    system_disk_category="cloud_essd", system_disk_size=self.cfg.get("system_disk_gb"),
                    system_disk_encrypted=True, system_disk_kms_key_id=self.kms[region].id,
                    internet_max_bandwidth_out=0, security_enhancement_strategy="Active",
                    deletion_protection=self.cfg.get("deletion_protection"),
                    tags={**center_tags(c, c.zone(h.zone)), "govctl-host": h.name,
                          "govctl-roles": ",".join(h.roles)},
                    opts=self.copts(c))

    def bastions(self) -> None:
        self.bastion = {}
        for c in self.t.centers:
            mgmt = self.first_of_kind(c, "security_management")
            if mgmt is None or not hosts_with_role(c, "bastion"):
                continue
            instance = bastionhost.Instance(
                slug(c.name, "bastion"), description=f"{c.name} bastion (management zone)",
                license_code="bhah_ent_50_asset", plan_code="cloudbastion", storage="5", bandwidth="5",
                period=1, vswitch_id=self.vswitches[(c.name, mgmt.name)][0].id,
                security_group_ids=[self.sgs[(c.name, mgmt.name)].id], tags=center_tags(c, mgmt),
                opts=self.copts(c))
            self.bastion[c.name] = instance
            for h in c.hosts:
                if (c.name, h.name) in self.instances:
                    bastionhost.Host(
                        slug(c.name, h.name, "bastion-asset"), instance_id=instance.id, host_name=h.fqdn,
                        active_address_type="Private", host_private_address=str(h.ipv4), os_type="Linux",
                        source="Ecs", source_instance_id=self.instances[(c.name, h.name)].id,
                        instance_region_id=self.where[c.name].region, opts=self.copts(c, parent=instance))

    # -- the service: ALB per center, GTM across centers ---------------------------------
    def load_balancers(self) -> None:
        self.albs = {}
        service = self.t.service
        if service is None:
            return
        for c in self.t.centers:
            web = [h for h in hosts_with_role(c, "web") if (c.name, h.name) in self.instances]
            dmz = self.first_of_kind(c, "internet_dmz")
            if not web or dmz is None:
                continue
            region = self.where[c.name].region
            mappings = self.alb_zone_mappings(c, dmz)
            lb = alb.LoadBalancer(
                slug(c.name, "alb"), load_balancer_name=slug(self.t.name, c.name),
                vpc_id=self.vpcs[region].id, address_type="Internet", address_allocated_mode="Fixed",
                address_ip_version="DualStack" if self.t.dual_stack else "IPv4",
                load_balancer_edition=self.cfg.get("alb_edition"),
                load_balancer_billing_config=alb.LoadBalancerLoadBalancerBillingConfigArgs(pay_type="PayAsYouGo"),
                zone_mappings=mappings, deletion_protection_enabled=self.cfg.get("deletion_protection"),
                tags=center_tags(c, dmz), opts=self.copts(c))
            group = alb.ServerGroup(
                slug(c.name, "web"), server_group_name=slug(c.name, "web"), protocol="HTTP",
                vpc_id=self.vpcs[region].id,
                health_check_config=alb.ServerGroupHealthCheckConfigArgs(
                    health_check_enabled=True, health_check_protocol="HTTP", health_check_path="/",
                    health_check_codes=["http_2xx", "http_3xx"], health_check_interval=2),
                servers=[alb.ServerGroupServerArgs(server_id=self.instances[(c.name, h.name)].id,
                                                   server_type="Ecs", port=service.port,
                                                   description=h.fqdn) for h in web],
                tags=center_tags(c, dmz), opts=self.copts(c, parent=lb))
            alb.Listener(
                slug(c.name, "listener"), load_balancer_id=lb.id, listener_protocol="HTTP",
                listener_port=service.port, listener_description=f"{service.name} in {c.name}",
                default_actions=[alb.ListenerDefaultActionArgs(
                    type="ForwardGroup", forward_group_config=alb.ListenerDefaultActionForwardGroupConfigArgs(
                        server_group_tuples=[alb.ListenerDefaultActionForwardGroupConfigServerGroupTupleArgs(
                            server_group_id=group.id)]))],
                opts=self.copts(c, parent=lb))
            self.albs[c.name] = lb

    def alb_zone_mappings(self, c: Center, dmz) -> list:
        """An ALB spans two zones: its center's DMZ, plus another center's DMZ in the same VPC or
        the second zone given for it in config `alb_second_zone`."""
        region = self.where[c.name].region
        mappings = [alb.LoadBalancerZoneMappingArgs(vswitch_id=self.vswitches[(c.name, dmz.name)][0].id,
                                                    zone_id=self.where[c.name].zone)]
        zones = {self.where[c.name].zone}
        for other in self.centers_in(region):
            other_dmz = self.first_of_kind(other, "internet_dmz")
            if other_dmz is not None and self.where[other.name].zone not in zones:
                zones.add(self.where[other.name].zone)
                mappings.append(alb.LoadBalancerZoneMappingArgs(
                    vswitch_id=self.vswitches[(other.name, other_dmz.name)][0].id,
                    zone_id=self.where[other.name].zone))
        if len(mappings) >= 2:
            return mappings
        extra = (self.cfg.get("alb_second_zone") or {}).get(c.name)
        if not extra or "zone" not in extra or "ipv4" not in extra:
            raise BackendConfigError(
                f"center {c.name!r} is alone in region {region}, and an ALB needs two zones: set "
                f"`alb_second_zone: {{{c.name}: {{zone: <another zone of {region}>, ipv4: <a free "
                f"block inside {c.ipv4}>}}}}` in the stack config")
        block = ipaddress.ip_network(extra["ipv4"])
        taken = [s.ipv4 for z in c.zones for s in z.subnets]
        if not block.subnet_of(c.ipv4) or any(block.overlaps(t) for t in taken):
            raise BackendConfigError(
                f"alb_second_zone.{c.name}.ipv4 {block} must lie inside {c.ipv4} and overlap no "
                f"subnet of the center ({', '.join(map(str, taken))})")
        switch = vpc.Switch(slug(c.name, dmz.name, "alb-standby"), vswitch_name=slug(c.name, "alb-standby"),
                            vpc_id=self.vpcs[region].id, cidr_block=str(block), zone_id=extra["zone"],
                            description=f"{c.name} ALB second zone", tags=center_tags(c, dmz),
                            opts=self.copts(c))
        mappings.append(alb.LoadBalancerZoneMappingArgs(vswitch_id=switch.id, zone_id=extra["zone"]))
        return mappings

    def global_dns(self) -> dict[str, Any] | None:
        service = self.t.service
        if service is None or not self.albs:
            return None
        zone_name = self.cfg.require("dns_zone", "the DNS zone the service name lives in, "
                                                 "e.g. jinhua.gov.cn")
        prod_opts = self.opts(self.prod_region, self.backbone)
        gtm = dns.GtmInstance(
            "gtm", instance_name=f"{self.prefix}-{service.name}", package_edition="ultimate",
            payment_type="Subscription", period=1, health_check_task_count=100,
            sms_notification_count=1000, public_cname_mode="SYSTEM_ASSIGN",
            public_user_domain_name=f"{service.name}.{zone_name}", public_zone_name=zone_name,
            strategy_mode="GEO", ttl=60, opts=prod_opts)
        pools = {}
        attribute = json.dumps({"lineCodeRectifyType": "NO_NEED", "lineCodes": ["default"]})
        for name, lb in self.albs.items():
            c = self.t.center(name)
            pools[name] = dns.AddressPool(
                slug(name, "pool"), address_pool_name=slug(service.name, name), instance_id=gtm.id,
                lba_strategy="ALL_RR", type="DOMAIN",
                addresses=[dns.AddressPoolAddressArgs(address=lb.dns_name, attribute_info=attribute,
                                                      mode="SMART", remark=f"{c.name} ({c.role})")],
                opts=self.copts(c))
            dns.MonitorConfig(
                slug(name, "monitor"), addr_pool_id=pools[name].id, protocol_type="HTTP",
                interval=60, timeout=5000, evaluation_count=1,
                monitor_extend_info=json.dumps({"code": 500, "path": "/", "host": f"{service.name}.{zone_name}"}),
                isp_city_nodes=[dns.MonitorConfigIspCityNodeArgs(**n) for n in self.cfg.get("gtm_monitor_nodes")],
                opts=self.copts(c, parent=pools[name]))
        prod = self.prod.name
        if prod not in pools:
            return None
        same_city = [n for n in pools if self.t.center(n).role == "same_city_dr"]
        standby = same_city or [n for n in pools if n != prod]
        dns.AccessStrategy(
            "failover", instance_id=gtm.id, strategy_name=f"{service.name}-failover", strategy_mode="GEO",
            access_mode="AUTO", lines=[dns.AccessStrategyLineArgs(line_code="default")],
            default_addr_pool_type="DOMAIN", default_min_available_addr_num=1,
            default_addr_pools=[dns.AccessStrategyDefaultAddrPoolArgs(addr_pool_id=pools[prod].id, lba_weight=1)],
            failover_addr_pool_type="DOMAIN", failover_min_available_addr_num=1,
            failover_addr_pools=[dns.AccessStrategyFailoverAddrPoolArgs(addr_pool_id=pools[n].id, lba_weight=1)
                                 for n in standby],
            opts=prod_opts)
        return {"name": f"{service.name}.{zone_name}", "gtm_instance_id": gtm.id, "default": prod,
                "failover": standby, "pools": {n: p.id for n, p in pools.items()}}

    # -- data: databases, buckets, backups ----------------------------------------------
    def databases(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        port = self.cfg.get("database_port")
        for c in self.t.centers:
            db_hosts = hosts_with_role(c, "database")
            targets = replication_targets(self.t, c)
            if not db_hosts or not targets:
                continue
            out[c.name] = self.primary_database(c, db_hosts[0], targets, port)
        return out

    def rds_instance(self, c: Center, host, name: str, standby: list[Center], port: int) -> rds.Instance:
        region = self.where[c.name].region
        switches = [self.switch_for(c, host.zone, host.ipv4)]
        for s in standby:
            core = s.zone(host.zone) if host.zone in {z.name for z in s.zones} else \
                self.first_of_kind(s, c.zone(host.zone).kind)
            switches.append(self.vswitches[(s.name, core.name)][0])
        return rds.Instance(
            name, instance_name=slug(self.t.name, c.name, "db"), engine="PostgreSQL",
            engine_version=self.cfg.get("rds_engine_version"), instance_type=self.cfg.get("rds_instance_type"),
            instance_storage=self.cfg.get("rds_storage_gb"), db_instance_storage_type="cloud_essd",
            category="HighAvailability" if standby else "Basic", vpc_id=self.vpcs[region].id,
            vswitch_id=pulumi.Output.all(*[s.id for s in switches]).apply(lambda ids: ",".join(ids)),
            zone_id=self.where[c.name].zone,
            zone_id_slave_a=self.where[standby[0].name].zone if standby else None,
            private_ip_address=str(host.ipv4), port=str(port),
            security_ips=service_port_sources(self.t, c, c.zone(host.zone), port),
            encryption_key=self.kms[region].id, ssl_action="Open",
            deletion_protection=self.cfg.get("deletion_protection"),
            tags={**center_tags(c, c.zone(host.zone)), "govctl-host": host.name}, opts=self.copts(c))

    def primary_database(self, c: Center, host, targets, port: int) -> dict[str, Any]:
        region = self.where[c.name].region
        same_region = [t for t, mode in targets if self.where[t.name].region == region]
        for t in same_region:
            if self.where[t.name].zone == self.where[c.name].zone:
                raise BackendConfigError(
                    f"replication {c.name} -> {t.name}: both centers are in zone "
                    f"{self.where[c.name].zone}; a same-city standby needs another zone")
        primary = self.rds_instance(c, host, slug(c.name, "db"), same_region[:1], port)
        result: dict[str, Any] = {"instance_id": primary.id, "zone": self.where[c.name].zone,
                                  "standby_zone": self.where[same_region[0].name].zone if same_region else None,
                                  "standby_center": same_region[0].name if same_region else None,
                                  "remote_copies": {}}
        password = self.replication_password()
        remote = [t for t, mode in targets if self.where[t.name].region != region]
        for i, t in enumerate(remote):
            t_region = self.where[t.name].region
            t_hosts = hosts_with_role(t, "database")
            if not t_hosts:
                raise BackendConfigError(f"replication {c.name} -> {t.name}: center {t.name!r} has "
                                         "no host with role database to receive the copy")
            replica = self.rds_instance(t, t_hosts[0], slug(t.name, "db"), [], port)
            accounts = [rds.RdsAccount(slug(x.name, "db-repl"), db_instance_id=inst.id,
                                       account_name="govctl_repl", account_password=password,
                                       account_type="Super", opts=self.copts(x, parent=inst))
                        for x, inst in ((c, primary), (t, replica))]
            sync = dts.SynchronizationInstance(
                slug(c.name, t.name, "dts"), payment_type="PayAsYouGo", instance_class="small",
                source_endpoint_engine_name="PostgreSQL", source_endpoint_region=region,
                destination_endpoint_engine_name="PostgreSQL", destination_endpoint_region=t_region,
                sync_architecture="oneway", opts=self.opts(region, self.backbone))
            dts.SynchronizationJob(
                slug(c.name, t.name, "dts-job"), dts_instance_id=sync.id,
                dts_job_name=slug(self.t.name, c.name, "to", t.name),
                source_endpoint_instance_type="RDS", source_endpoint_engine_name="PostgreSQL",
                source_endpoint_instance_id=primary.id, source_endpoint_region=region,
                source_endpoint_user_name="govctl_repl", source_endpoint_password=password,
                source_endpoint_database_name="postgres",
                destination_endpoint_instance_type="RDS", destination_endpoint_engine_name="PostgreSQL",
                destination_endpoint_instance_id=replica.id, destination_endpoint_region=t_region,
                destination_endpoint_user_name="govctl_repl", destination_endpoint_password=password,
                destination_endpoint_database_name="postgres",
                db_list=json.dumps({"postgres": {"name": "postgres", "all": True}}),
                structure_initialization=True, data_initialization=True, data_synchronization=True,
                synchronization_direction="Forward",
                opts=self.opts(region, self.backbone, depends_on=accounts))
            result["remote_copies"][t.name] = {"instance_id": replica.id, "region": t_region,
                                               "dts_instance_id": sync.id}
            if i == 0:  # RDS keeps one cross-region backup region per instance
                rds.RdsInstanceCrossBackupPolicy(
                    slug(c.name, "db-cross-backup"), instance_id=primary.id, cross_backup_region=t_region,
                    log_backup_enabled="Enable", retention=self.cfg.get("backup_retention_days"),
                    opts=self.copts(c, parent=primary))
                result["cross_backup_region"] = t_region
        return result

    def replication_password(self):
        password = self.cfg.secret("db_replication_password")
        if password is None:
            if not pulumi.runtime.is_dry_run():
                raise BackendConfigError(
                    "stack config govctl:db_replication_password is missing: set it as a secret "
                    "(pulumi config set --secret govctl:db_replication_password …) before `up`")
            pulumi.log.warn("govctl:db_replication_password is not set; DTS jobs will need it at `up`")
        return password

    def buckets(self) -> dict[str, Any]:
        self.backup_buckets = {}
        for r in self.regions:
            sm4 = _offers_sm4(self.cfg, r)
            self.backup_buckets[r] = oss.Bucket(
                f"{r}-backup", bucket=f"{self.prefix}-backup-{r}", acl="private",
                versioning=oss.BucketVersioningArgs(status="Enabled"),
                server_side_encryption_rule=oss.BucketServerSideEncryptionRuleArgs(
                    sse_algorithm="SM4" if sm4 else "KMS", kms_master_key_id=None if sm4 else self.kms[r].id),
                tags={"govctl-topology": self.t.name, "govctl-purpose": "backup"},
                force_destroy=False, opts=self.opts(r, self.region_groups[r]))
        replicated = {}
        for r in self.regions[1:]:
            oss.BucketReplication(
                f"{self.prod_region}-{r}-backup-replication", bucket=self.backup_buckets[self.prod_region].bucket,
                destination=oss.BucketReplicationDestinationArgs(bucket=self.backup_buckets[r].bucket,
                                                                 location=f"oss-{r}"),
                action="ALL", historical_object_replication="enabled",
                opts=self.opts(self.prod_region, self.backbone))
            replicated[r] = self.backup_buckets[r].bucket
        return {"source": self.backup_buckets[self.prod_region].bucket, "replicas": replicated}

    def backups(self) -> None:
        vaults = {r: hbr.Vault(f"{r}-vault", vault_name=f"{self.t.name}-{r}", vault_type="STANDARD",
                               encrypt_type="KMS", kms_key_id=self.kms[r].id,
                               opts=self.opts(r, self.region_groups[r]))
                  for r in self.regions}
        for (center, host), instance in self.instances.items():
            c = self.t.center(center)
            # a plan needs the HBR client on the host first
            client = hbr.EcsBackupClient(slug(center, host, "backup-client"), instance_id=instance.id,
                                         data_network_type="VPC", use_https=True,
                                         opts=self.copts(c, parent=instance))
            hbr.EcsBackupPlan(
                slug(center, host, "backup"), ecs_backup_plan_name=slug(center, host), instance_id=instance.id,
                vault_id=vaults[self.where[center].region].id, backup_type="COMPLETE",
                schedule=f"I|{BACKUP_START}|P1D", retention=str(self.cfg.get("backup_retention_days")),
                paths=["/etc", "/var/lib", "/srv"], opts=self.copts(c, parent=instance, depends_on=[client]))

    def audit_trail(self) -> dict[str, Any]:
        days = int(self.cfg.get("audit_retention_days"))
        opts = self.opts(self.prod_region, self.backbone)
        project = log.Project("audit-project", project_name=f"{self.prefix}-audit",
                              description="ActionTrail audit log (等保 安全审计)", opts=opts)
        trail_name = f"{self.t.name}-trail"
        store = log.Store("audit-store", project_name=project.project_name,
                          logstore_name=f"actiontrail_{trail_name}", retention_period=days, shard_count=2,
                          encrypt_conf=log.StoreEncryptConfArgs(enable=True, encrypt_type="sm4_gcm"),
                          opts=opts)
        identity = alicloud.get_caller_identity_output(opts=pulumi.InvokeOptions(
            provider=self.providers[self.prod_region]))
        trail = actiontrail.Trail(
            "audit-trail", trail_name=trail_name, trail_region="All", event_rw="All", status="Enable",
            sls_project_arn=pulumi.Output.all(identity.account_id, project.project_name).apply(
                lambda a: f"acs:log:{self.prod_region}:{a[0]}:project/{a[1]}"),
            sls_write_role_arn=identity.account_id.apply(
                lambda acct: f"acs:ram::{acct}:role/aliyunserviceroleforactiontrail"),
            opts=pulumi.ResourceOptions(provider=self.providers[self.prod_region], parent=self.backbone,
                                        depends_on=[store]))
        return {"enabled": True, "retention_days": days, "trail": trail.trail_name,
                "logstore": store.logstore_name, "evidence": "actiontrail.Trail + log.Store"}


def deploy(topology: Topology, config: Any) -> dict[str, Any]:
    """Register every resource of the topology on Alibaba Cloud; return the stack outputs."""
    r = _Renderer(topology, config)
    r.keys()
    r.networks()
    r.backbone_network()
    r.hosts()
    r.bastions()
    r.load_balancers()
    service = r.global_dns()
    databases = r.databases()
    buckets = r.buckets()
    r.backups()
    audit = r.audit_trail()
    return {
        **stack_facts(topology, "alicloud", audit, r.where),
        "regions": {reg: {"vpc_id": r.vpcs[reg].id, "transit_router_id": r.transit_routers[reg].id,
                          "kms_key_id": r.kms[reg].id} for reg in r.regions},
        "centers": {c.name: {"role": c.role, "region": r.where[c.name].region, "zone": r.where[c.name].zone,
                             "vswitches": {z.name: [s.id for s in r.vswitches[(c.name, z.name)]] for z in c.zones},
                             "alb_dns_name": r.albs[c.name].dns_name if c.name in r.albs else None}
                    for c in topology.centers},
        "hosts": {f"{c}/{h}": {"instance_id": inst.id} for (c, h), inst in r.instances.items()},
        "links": r.link_carriers(),
        "service": service,
        "databases": databases,
        "backup_buckets": buckets,
    }
