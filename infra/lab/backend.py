"""The `lab` backend: the topology as a real two-site-three-center cloud on this machine.

Network namespaces for the outside world, each center's router/firewall and each host; veth links;
nftables zone policy; Debian hosts with sshd; PostgreSQL primary + synchronous same-city standby +
asynchronous remote standby; a web service per center; the service address routed to the active
center. The stack outputs' shape is documented in docs/stack-outputs.md.
"""
from __future__ import annotations

import hashlib
from typing import Any

import pulumi

from core.paths import STATE
from infra.topology import Topology

from . import providers as res
from .plan import (BLOCK_SET_V4, BLOCK_SET_V6, FW_TABLE, OPS_NS, PG_PORT, WAN_NS, WEB_PORT,
                   build_plan, center_ns, outside_ns)
from .rootfs import OPS_USER, base_path

LAB_DIR = STATE / "lab"
SSH_DIR = LAB_DIR / "ssh"
MONITOR_PGPASS = LAB_DIR / "monitor.pgpass"


def _ssh_client_config(plan) -> str:
    lines = ["# Written by govctl for the lab; `ssh web-1.prod` works from this machine.", ""]
    for host in plan.hosts:
        lines += [f"Host {host.fqdn}", f"  HostName {host.ipv4}", f"  User {OPS_USER}",
                  f"  IdentityFile {SSH_DIR / 'id_ed25519'}", "  IdentitiesOnly yes",
                  f"  UserKnownHostsFile {SSH_DIR / 'known_hosts'}",
                  "  StrictHostKeyChecking accept-new",
                  # The machine reaches hosts from the ops workstation inside the lab.
                  f"  ProxyCommand ip netns exec {OPS_NS} nc %h %p", ""]
    return "\n".join(lines)


def _hosts_file(plan, me) -> str:
    lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback",
             f"127.0.1.1 {me.name}"]
    lines += [f"{h.ipv4} {h.fqdn}" + (f" {h.name}" if h.center == me.center else "")
              for h in plan.hosts]
    return "\n".join(lines) + "\n"


def _pg_settings(sync_names: str) -> str:
    return "\n".join([
        "listen_addresses = '*'",
        "wal_level = replica",
        "max_wal_senders = 10",
        "wal_keep_size = '256MB'",
        "wal_log_hints = on",  # lets pg_rewind re-attach a former primary after failover
        "hot_standby = on",
        "shared_buffers = '32MB'",
        f"synchronous_standby_names = '{sync_names}'",
        # A commit returns once the synchronous standby has applied it: visible there at once.
        "synchronous_commit = remote_apply",
        "",
    ])


def _pg_hba(topo: Topology) -> str:
    def nets(kind):
        return [str(s.ipv4) for c in topo.centers for z in c.zones_of_kind(kind) for s in z.subnets]

    lines = ["local all all peer"]
    lines += [f"host replication replicator {n} scram-sha-256" for n in nets("core_business")]
    lines += [f"host gov govweb {n} scram-sha-256"
              for kind in ("internet_dmz", "egov_extranet") for n in nets(kind)]
    lines += [f"host all all {n} scram-sha-256" for n in nets("security_management")]
    lines += [f"host all monitor {n} scram-sha-256" for n in nets("core_business")]
    return "\n".join(lines) + "\n"


def deploy(topo: Topology, config: pulumi.Config) -> dict[str, Any]:
    active = config.get("active_center") or topo.production.name
    plan = build_plan(topo, active)
    base = base_path()
    if not pulumi.runtime.is_dry_run() and not (base / ".govctl-complete").exists():
        raise pulumi.RunError(f"the lab's base root filesystem {base} is missing: run `govctl lab up`, "
                              "which builds it first")

    network: list[pulumi.Resource] = []
    namespaces = {ns: res.Namespace(ns, {"router": ns in plan.routers}) for ns in plan.namespaces}
    network += namespaces.values()
    bridges = {}
    for b in plan.bridges:
        bridges[(b.ns, b.name)] = res.Bridge(f"bridge-{b.ns}-{b.name}",
                                             {"ns": b.ns, "name": b.name, "addrs": list(b.addrs)},
                                             pulumi.ResourceOptions(depends_on=[namespaces[b.ns]]))
    network += bridges.values()
    for v in plan.veths:
        deps = [namespaces[v.ns_a], namespaces[v.ns_b]]
        if v.bridge_a:
            deps.append(bridges[(v.ns_a, v.bridge_a)])
        network.append(res.Veth(f"veth-{v.name}", {
            "ns_a": v.ns_a, "if_a": v.if_a, "ns_b": v.ns_b, "if_b": v.if_b,
            "bridge_a": v.bridge_a, "addrs_a": list(v.addrs_a), "addrs_b": list(v.addrs_b)},
            pulumi.ResourceOptions(depends_on=deps)))
    links_ready = list(network)
    for ns, routes in plan.routes.items():
        network.append(res.Routes(f"routes-{ns}", {"ns": ns, "routes": [r.args() for r in routes]},
                                  pulumi.ResourceOptions(depends_on=links_ready)))
    for ns, ruleset in plan.firewalls.items():
        network.append(res.Firewall(f"firewall-{ns}", {"ns": ns, "ruleset": ruleset},
                                    pulumi.ResourceOptions(depends_on=[namespaces[ns]])))

    ssh = res.SshAccess("ssh-access", {"folder": str(SSH_DIR),
                                       "client_config": _ssh_client_config(plan)})
    hosts = {}
    # Services get the base image as an input too: a new image replaces the hosts, and the services
    # must then be set up again in them (apply is idempotent on an unchanged host).
    for h in plan.hosts:
        hosts[h.fqdn] = res.Host(f"host-{h.fqdn}", {
            "ns": h.ns, "hostname": h.name, "base": str(base),
            "folder": str(LAB_DIR / "hosts" / h.fqdn), "public_key": ssh.public_key,
            "address": h.ipv4, "known_hosts": str(SSH_DIR / "known_hosts"),
            "tools": res.host_tools_digest(),
            "hosts_file": _hosts_file(plan, h)}, pulumi.ResourceOptions(depends_on=network + [ssh]))

    replication_password = config.require_secret("pg_replication_password")
    app_password = config.require_secret("pg_app_password")
    monitor_password = config.require_secret("pg_monitor_password")
    secret_opts = ["replication_password", "app_password", "monitor_password"]

    def db_host(center_name):
        return next(h for h in plan.hosts if h.center == center_name and "database" in h.roles)

    primary_host = db_host(topo.production.name)
    sync = [r.target for r in topo.replication if r.mode == "synchronous"]
    sync_names = f"FIRST 1 ({', '.join(sync)})" if sync else ""
    hba = _pg_hba(topo)
    primary = res.Postgres(f"postgres-{primary_host.fqdn}", {
        "host_folder": str(LAB_DIR / "hosts" / primary_host.fqdn), "base": str(base), "role": "primary",
        "primary_address": primary_host.ipv4, "application_name": topo.production.name,
        "settings": _pg_settings(sync_names), "hba": hba, "service": res.POSTGRES_SERVICE,
        "replication_password": replication_password, "app_password": app_password,
        "monitor_password": monitor_password},
        pulumi.ResourceOptions(depends_on=[hosts[primary_host.fqdn]],
                               additional_secret_outputs=secret_opts))
    standbys = []
    for r in topo.replication:
        h = db_host(r.target)
        standbys.append(res.Postgres(f"postgres-{h.fqdn}", {
            "host_folder": str(LAB_DIR / "hosts" / h.fqdn), "base": str(base), "role": "standby",
            "primary_address": primary_host.ipv4, "application_name": r.target, "mode": r.mode,
            "settings": _pg_settings(""), "hba": hba, "service": res.POSTGRES_SERVICE,
            "replication_password": replication_password, "app_password": app_password},
            pulumi.ResourceOptions(depends_on=[hosts[h.fqdn], primary],
                                   additional_secret_outputs=secret_opts)))

    # Monitoring reads PostgreSQL as `monitor` (pg_monitor) with this passfile.
    res.LocalFile("monitor-pgpass", {
        "path": str(MONITOR_PGPASS),
        "content": monitor_password.apply(lambda pw: f"*:{PG_PORT}:*:monitor:{pw}\n")},
        pulumi.ResourceOptions(additional_secret_outputs=["content"]))

    web_digest = hashlib.sha256((res.FILES / "govweb").read_bytes()).hexdigest()[:16]
    service_addrs = []
    if topo.service:
        service_addrs.append(f"{topo.service.ipv4}/32")
        if topo.service.ipv6:
            service_addrs.append(f"{topo.service.ipv6}/128")
    web = {}
    for h in (h for h in plan.hosts if "web" in h.roles):
        web[h.center] = res.Web(f"web-{h.fqdn}", {
            "host_folder": str(LAB_DIR / "hosts" / h.fqdn), "base": str(base), "ns": h.ns, "center": h.center,
            "port": WEB_PORT, "db_address": primary_host.ipv4, "app_password": app_password,
            "service_addrs": service_addrs, "digest": web_digest},
            pulumi.ResourceOptions(depends_on=[hosts[h.fqdn], primary],
                                   additional_secret_outputs=["app_password"]))

    return _outputs(topo, plan, active, primary_host, db_host)


def _first_web_hosts(plan) -> dict[str, Any]:
    first: dict[str, Any] = {}
    for h in plan.hosts:
        if "web" in h.roles:
            first.setdefault(h.center, h)
    return first


def _outputs(topo, plan, active, primary_host, db_host) -> dict[str, Any]:
    zone_kind = {(c.name, z.name): z.kind for c in topo.centers for z in c.zones}
    mgmt = [str(s.ipv4) for c in topo.centers for z in c.zones_of_kind("security_management")
            for s in z.subnets]
    return {
        "backend": "lab",
        "topology": topo.name,
        "level": topo.level,
        "ssh": {"user": OPS_USER, "private_key": str(SSH_DIR / "id_ed25519"),
                "config": str(SSH_DIR / "config"), "proxy_namespace": OPS_NS,
                "ops_address": plan.ops_address},
        "centers": {c.name: {
            "role": c.role, "site": c.site, "namespace": center_ns(c.name),
            "uplink": plan.uplinks[c.name], "uplink_v6": plan.uplinks_v6[c.name],
            "firewall": {"namespace": center_ns(c.name), "family": "inet", "table": FW_TABLE,
                         "sets": {"ipv4": BLOCK_SET_V4, "ipv6": BLOCK_SET_V6}},
            "zones": {z.name: {"kind": z.kind, "subnets": [str(s.ipv4) for s in z.subnets]
                               + [str(s.ipv6) for s in z.subnets if s.ipv6]} for z in c.zones},
        } for c in topo.centers},
        "hosts": [{"name": h.name, "fqdn": h.fqdn, "center": h.center, "zone": h.zone,
                   "zone_kind": zone_kind[(h.center, h.zone)], "roles": list(h.roles),
                   "ipv4": h.ipv4, "ipv6": h.ipv6, "namespace": h.ns,
                   "folder": str(LAB_DIR / "hosts" / h.fqdn)} for h in plan.hosts],
        "databases": {
            "port": PG_PORT, "database": "gov",
            "monitor": {"user": "monitor", "passfile": str(MONITOR_PGPASS)},
            "primary": {"center": topo.production.name, "host": primary_host.fqdn,
                        "address": primary_host.ipv4},
            "standbys": [{"center": r.target, "host": db_host(r.target).fqdn,
                          "address": db_host(r.target).ipv4, "mode": r.mode,
                          "application_name": r.target} for r in topo.replication],
        },
        # a center's first web host (web-1 with `count`): the shape stays one host per center
        "web": {center: {"host": h.fqdn, "address": h.ipv4, "port": WEB_PORT,
                         "url": f"http://{h.ipv4}:{WEB_PORT}/"}
                for center, h in _first_web_hosts(plan).items()},
        "service": ({"name": topo.service.name, "ipv4": str(topo.service.ipv4),
                     "ipv6": str(topo.service.ipv6) if topo.service.ipv6 else None,
                     "port": topo.service.port, "active_center": active,
                     "url": f"http://{topo.service.ipv4}:{topo.service.port}/",
                     "route_namespace": WAN_NS} if topo.service else None),
        "outside": {o.name: {"kind": o.kind, "namespace": outside_ns(o.name),
                             "address": plan.clients[o.name]} for o in topo.outside},
        "vantage_points": {**{o.name: outside_ns(o.name) for o in topo.outside},
                           **{h.center: h.ns for h in plan.hosts if "monitor" in h.roles}},
        "links": {v.name[len("link-"):]: {"between": list(link.between), "role": link.role,
                                           "ends": [[v.ns_a, v.if_a], [v.ns_b, v.if_b]],
                                           # each end's IPv4 address: monitoring pings across the link
                                           "addresses": [v.addrs_a[0].split("/")[0],
                                                         v.addrs_b[0].split("/")[0]]}
                  for v in plan.veths if v.name.startswith("link-")
                  for link in topo.links if v.name == f"link-{link.name}"},
        "allowlist": mgmt,
        "policy_facts": {"audit": {
            "enabled": True, "retention_days": 180,
            "evidence": "platform actions go to govctl's append-only SM3 Merkle audit log "
                        "(crypto.audit, never pruned); SecOps keeps security logs 180 days"}},
        "namespaces": plan.namespaces,
    }
