"""What to monitor, as one plain structure, and the configuration files generated from it.

The structure (schema: targets.schema.yaml) is what the lab's stack outputs are adapted into:
centers → services → endpoints, the service address, vantage points (network namespaces) and
database connections. From it and the SLO spec this module renders the probe exporter of every
vantage point, the replication exporter, Prometheus and Alertmanager.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .durations import format_duration, parse_duration
from .slo import SLOSpec
from .specfile import Document, load_document

SCHEMA = Path(__file__).with_name("targets.schema.yaml")
SERVICE_ADDRESS_CENTER = "service-address"
LINK_SERVICE = "inter-center-link"  # the service label of link probes: no SLO reads it
LINK_TARGET_PREFIX = "link:"  # a link probe's target label: link:<link name>
DEFAULTS = {
    "prometheus": "127.0.0.1:19090",
    "alertmanager": "127.0.0.1:19093",
    "webhook": "127.0.0.1:19095",
    "notify": "127.0.0.1:19096",  # notify's receiver (issue #18): pages go on to email, robots and the console
    "replication_exporter": "127.0.0.1:19120",
    "probe_timeout": "5s",
    "probe_concurrency": 200,
    "page_group_wait": "5s",
    "ticket_group_wait": "1m",
    "group_interval": "1m",
    "repeat_interval": "4h",
}


@dataclass(frozen=True)
class Targets:
    source: str
    data: dict[str, Any]

    @property
    def settings(self) -> dict[str, Any]:
        return {**DEFAULTS, **self.data.get("monitor", {})}


def load_targets(path: str | Path, *, text: str | None = None) -> Targets:
    doc = load_document(path, SCHEMA, text=text)
    _check(doc)
    return Targets(str(path), doc.data)


def targets_from_dict(data: dict[str, Any], source: str = "<stack outputs>") -> Targets:
    """The adapter's entry: a dict shaped like targets.schema.yaml (e.g. built from stack outputs)."""
    import yaml

    return load_targets(source, text=yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def _check(doc: Document) -> None:
    data = doc.data
    for path, e in _endpoints_with_paths(data):
        _check_endpoint(doc, path, e)
        for v in e.get("vantages", []):
            if v not in data["vantages"]:
                doc.problem(f"{path}.vantages", f"vantage point {v!r} is not declared under vantages; "
                                                f"use one of {', '.join(data['vantages'])}")
    for name, link in data.get("links", {}).items():
        for i, end in enumerate(link["ends"]):
            if "vantage" in end and end["vantage"] not in data["vantages"]:
                doc.problem(f"links.{name}.ends[{i}].vantage",
                            f"vantage point {end['vantage']!r} is not declared under vantages")
    for center, c in data["centers"].items():
        if LINK_SERVICE in c["services"]:
            doc.problem(f"centers.{center}.services.{LINK_SERVICE}",
                        f"{LINK_SERVICE!r} is reserved for the link probes; rename the service")
    if SERVICE_ADDRESS_CENTER in data["centers"]:
        doc.problem(f"centers.{SERVICE_ADDRESS_CENTER}", f"{SERVICE_ADDRESS_CENTER!r} is reserved for "
                                                         "the service address; rename the center")
    listens: dict[str, str] = {}
    for name, v in data["vantages"].items():
        if v["listen"] in listens:
            doc.problem(f"vantages.{name}.listen", f"{v['listen']} is already used by vantage "
                                                   f"{listens[v['listen']]!r}; give each its own port")
        listens[v["listen"]] = name
    for center, db in data.get("databases", {}).items():
        if "password=" in db["dsn"]:
            doc.problem(f"databases.{center}.dsn", "remove the password; use a passfile (PGPASSFILE)")
    doc.raise_if_problems()


def _endpoints_with_paths(data: dict):
    for center, c in data["centers"].items():
        for service, endpoints in c["services"].items():
            for i, e in enumerate(endpoints):
                yield f"centers.{center}.services.{service}[{i}]", e
    for i, e in enumerate(data.get("service_address", {}).get("endpoints", [])):
        yield f"service_address.endpoints[{i}]", e


def _check_endpoint(doc: Document, path: str, e: dict) -> None:
    if ("url" in e) == ("address" in e):
        doc.problem(path, "give either url (HTTP/HTTPS) or address (TCP HOST:PORT), not both or neither")


def quorum_problems(targets: Targets, spec: SLOSpec) -> list[str]:
    vantages = len(targets.data["vantages"])
    return [f"service {s.name!r} needs a quorum of {s.quorum} vantage points but the targets file "
            f"{targets.source} has {vantages}; add vantage points or lower the quorum in {spec.source}"
            for s in spec.services if s.quorum > vantages]


# -- generated configuration ---------------------------------------------------------------------
def _probe_target(center: str, service: str, e: dict, served_by_header: str = "") -> dict:
    t: dict[str, Any] = {"name": e["name"], "center": center, "service": service}
    if "url" in e:
        t["kind"] = "https" if e["url"].startswith("https:") else "http"
        t["url"] = e["url"]
        if served_by_header:
            t["served_by_header"] = served_by_header
    else:
        t["kind"], t["address"] = "tcp", e["address"]
    for key in ("timeout", "tls_verify", "expect_status"):
        if key in e:
            t[key] = e[key]
    return t


def probe_configs(targets: Targets, spec: SLOSpec) -> dict[str, dict]:
    """vantage → probe exporter configuration: every endpoint, unless it names its vantage points."""
    data, settings = targets.data, targets.settings
    probes = [(e, _probe_target(center, service, e))
              for center, c in data["centers"].items()
              for service, endpoints in c["services"].items() for e in endpoints]
    sa = data.get("service_address")
    if sa:
        probes += [(e, _probe_target(SERVICE_ADDRESS_CENTER, sa["service"], e,
                                     sa.get("served_by_header", "X-Center"))) for e in sa["endpoints"]]
    timeout = min(parse_duration(settings["probe_timeout"]), spec.interval * 0.8)
    links = link_probes(targets)
    return {name: {"vantage": name, "listen": v["listen"], "interval": format_duration(spec.interval),
                   "timeout": format_duration(timeout),
                   "concurrency": settings["probe_concurrency"],
                   "targets": [t for e, t in probes if name in e.get("vantages", [name])]
                   + links.get(name, [])}
            for name, v in data["vantages"].items()}


def link_probes(targets: Targets) -> dict[str, list[dict]]:
    """vantage → its link probes: from each end's vantage point, a ping of the far end's address."""
    probes: dict[str, list[dict]] = {}
    for name, link in sorted(targets.data.get("links", {}).items()):
        near_far = (link["ends"], link["ends"][::-1])
        for near, far in zip(*near_far):
            if "vantage" in near:
                probes.setdefault(near["vantage"], []).append(
                    {"name": f"{LINK_TARGET_PREFIX}{name}", "center": far["center"],
                     "service": LINK_SERVICE, "kind": "icmp", "host": far["address"]})
    return probes


def replication_config(targets: Targets, spec: SLOSpec) -> dict | None:
    dbs = targets.data.get("databases", {})
    if not dbs:
        return None
    return {"listen": targets.settings["replication_exporter"],
            "interval": format_duration(max(spec.interval, 1)),
            "databases": [{"center": c, "dsn": d["dsn"]} for c, d in dbs.items()],
            "standbys": [{"center": c, "mode": d["standby"]} for c, d in dbs.items() if "standby" in d]}


def prometheus_config(targets: Targets, spec: SLOSpec, rules_glob: str) -> dict:
    settings = targets.settings
    every = format_duration(spec.interval)
    # honor_labels: the exporter's own `vantage` label is the one the SLI groups by
    jobs = [{"job_name": f"probe-{name}", "honor_labels": True,
             "static_configs": [{"targets": [v["listen"]],
                                 "labels": {"vantage_kind": v.get("kind", "outside")}}]}
            for name, v in targets.data["vantages"].items()]
    if targets.data.get("databases"):
        jobs.append({"job_name": "replication",
                     "static_configs": [{"targets": [settings["replication_exporter"]]}]})
    jobs += [{"job_name": "govctl", "static_configs": [{"targets": [settings["webhook"]]}]},
             {"job_name": "prometheus", "static_configs": [{"targets": [settings["prometheus"]]}]},
             {"job_name": "alertmanager", "static_configs": [{"targets": [settings["alertmanager"]]}]}]
    return {
        "global": {"scrape_interval": every, "evaluation_interval": every,
                   "scrape_timeout": format_duration(max(spec.interval * 0.9, 0.5))},
        "rule_files": [rules_glob],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [settings["alertmanager"]]}]}]},
        "scrape_configs": jobs,
    }


def alertmanager_config(targets: Targets) -> dict:
    s = targets.settings
    hook = f"http://{s['webhook']}/alerts"
    return {
        "route": {
            "receiver": "ticket",
            "group_by": ["alertname", "sloth_service", "center", "standby"],
            "group_wait": s["ticket_group_wait"], "group_interval": s["group_interval"],
            "repeat_interval": s["repeat_interval"],
            "routes": [{"matchers": ['severity="page"'], "receiver": "page",
                        "group_wait": s["page_group_wait"]}],
        },
        "receivers": [{"name": name, "webhook_configs": [
            {"url": f"{hook}/{name}", "send_resolved": True},
            # notify (issue #18): the same alerts through notify's routing and channels
            {"url": f"http://{s['notify']}/alertmanager/{name}", "send_resolved": True}]}
            for name in ("page", "ticket")],
    }
