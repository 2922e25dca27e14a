"""The thin adapter from a stack's outputs (docs/stack-outputs.md) to the monitoring targets.

    from infra.outputs import read_stack_outputs
    targets = targets_from_dict(targets_from_stack_outputs(read_stack_outputs("lab")))
"""
from __future__ import annotations

from typing import Any

from core.errors import BadInput
from infra.outputs import StackOutputs

HEALTH_PATH = "healthz"  # the lab's web service: 200 when it and its database answer


def _url(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path


def targets_from_stack_outputs(outputs: StackOutputs, *, first_port: int = 19200,
                               db_user: str = "postgres", passfile: str | None = None) -> dict[str, Any]:
    """centers → services/endpoints, the service address, one vantage point per namespace in
    `vantage_points` (metrics on 127.0.0.1 from `first_port`), the inter-center links (pinged end to
    end from the inside vantage points) and the databases."""
    if not outputs.vantage_points:
        raise BadInput(f"the stack outputs have no vantage_points (backend {outputs.backend}): "
                       "monitoring probes from the lab-shaped outputs (docs/stack-outputs.md)")
    service = outputs.service
    service_name = service.name if service else "gov-portal"
    centers: dict[str, dict] = {}

    def add(center: str, svc: str, endpoint: dict) -> None:
        centers.setdefault(center, {"services": {}})["services"].setdefault(svc, []).append(endpoint)

    for center, web in sorted(outputs.web.items()):
        add(center, service_name, {"name": web.host, "url": _url(web.url, HEALTH_PATH)})
    dbs = outputs.databases
    members = dbs.members if dbs else ()
    outside = set(outputs.outside)
    inside = [name for name in outputs.vantage_points if name not in outside]
    for db in members:  # the zone policy lets only the centers' networks reach PostgreSQL
        add(db.center, "database", {"name": db.host, "address": f"{db.address}:{dbs.port}",
                                    "vantages": sorted(inside)})
    targets: dict[str, Any] = {
        "centers": centers,
        "vantages": {name: {"netns": ns, "listen": f"127.0.0.1:{first_port + i}",
                            "kind": "outside" if name in outside else "inside"}
                     for i, (name, ns) in enumerate(sorted(outputs.vantage_points.items()))},
    }
    links = {name: {"role": link.role,
                    "ends": [{"center": center, "address": address,
                              # an inside vantage point is named after its center (docs/stack-outputs.md)
                              **({"vantage": center} if center in inside else {})}
                             for center, address in zip(link.between, link.addresses)]}
             for name, link in sorted(outputs.links.items()) if link.addresses}
    if links:
        targets["links"] = links
    if service:
        endpoints = [{"name": f"{service_name}-ipv4", "url": _url(service.url, HEALTH_PATH)}]
        if service.ipv6:
            endpoints.append({"name": f"{service_name}-ipv6",
                              "url": f"http://[{service.ipv6}]:{service.port}/{HEALTH_PATH}"})
        targets["service_address"] = {"service": service_name, "served_by_header": "X-Center",
                                      "endpoints": endpoints}
    if members:
        extra = f" passfile={passfile}" if passfile else ""
        targets["databases"] = {
            db.center: {"dsn": f"host={db.address} port={dbs.port} dbname={dbs.database} "
                               f"user={db_user}{extra}",
                        **({"standby": db.mode} if db.mode else {})}
            for db in members}
        # the databases answer only inside the cloud: connect from the primary's host namespace
        host_ns = {h.fqdn: h.namespace for h in outputs.hosts if h.namespace}
        if dbs.primary.host in host_ns:
            targets["replication_netns"] = host_ns[dbs.primary.host]
    return targets
