"""What the console's ops pages show (issue #19): the deployed topology with live health, and availability.

Topology: centers → zones → hosts, the inter-center links and the service address, from the stack outputs
(`infra.outputs`), each with its health as monitoring's Prometheus measures it now:
- a host: the share of vantage points whose probe of it succeeds (all → up, none → down, some →
  degraded); a host no probe targets (a bastion) is "unknown";
- a link: its own measurement — the inside vantage point of each end's center pings the far end's
  address, which only that link reaches (monitors.targets.link_probes), so a standby link that
  carries no traffic is up or down by itself. Without link probes (a monitor configured before they
  existed, outputs without link addresses) a primary link falls back to the probes that cross it (a
  vantage point inside one center probing a target in the other) and a standby link is "unknown";
- replication: each standby's lag and whether it streams and is ready for DR;
- the service address: which center answers it now (`govctl:center:serving`, citizens' view).
Prometheus unreachable (or the monitor not running) → every health is "unknown" and the reason is
given, never an error: the topology itself still comes from the outputs.

Availability: `monitors.availability.report` (the numbers of `govctl availability report`), plus the
rolling 30-day error budget over the period for the chart and the burn-rate alerts firing now.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.errors import BadInput, GovctlError
from infra.outputs import StackOutputs

from . import names, prom_api
from .availability import parse_time, report, report_sources
from .slo import SLOSpec
from .targets import LINK_SERVICE, LINK_TARGET_PREFIX, SERVICE_ADDRESS_CENTER

UP, DOWN, DEGRADED, UNKNOWN = "up", "down", "degraded", "unknown"
MAX_PERIOD_DAYS = 92  # a quarter: longer periods (a range query per 10,000 SLI steps) belong to the CLI
CHART_POINTS = 240  # budget points per series: enough for a month's curve, small for the page


@dataclass
class LiveHealth:
    """One reading of Prometheus; `problem` says why everything is unknown when it could not be read."""

    prometheus: str | None
    problem: str | None = None
    # (vantage, center, service, target) → 1/0
    probes: dict[tuple[str, str, str, str], float] = field(default_factory=dict)
    serving: dict[str, list[str]] = field(default_factory=dict)  # service → centers answering it
    standbys: dict[str, dict] = field(default_factory=dict)  # standby center → mode, streaming, lag, dr_ready
    primary: list[str] = field(default_factory=list)

    @property
    def reachable(self) -> bool:
        return self.problem is None


def read_live_health(prometheus: str | None = None) -> LiveHealth:
    """Query the running Prometheus (or `prometheus`); never raises for an absent or failing one."""
    from .stack import Layout, prometheus_address

    try:
        address = prometheus or prometheus_address(Layout.default())
    except GovctlError as exc:  # the monitor is not running
        return LiveHealth(None, str(exc))
    try:
        def q(expr: str) -> list[dict]:
            return prom_api.query(address, expr)

        live = LiveHealth(address)
        for r in q(names.PROBE_SUCCESS):
            m = r["metric"]
            key = (m.get("vantage", ""), m.get("center", ""), m.get("service", ""), m.get("target", ""))
            live.probes[key] = float(r["value"][1])
        for r in q(f"{names.CENTER_SERVING} > 0"):
            live.serving.setdefault(r["metric"].get("service", ""), []).append(r["metric"].get("center", ""))
        live.primary = sorted(r["metric"].get("center", "") for r in q(f"{names.PG_IS_PRIMARY} == 1"))
        for metric, key in ((names.PG_STANDBY_STREAMING, "streaming"), (names.PG_LAG_SECONDS, "lag_seconds"),
                            (names.PG_LAG_BYTES, "lag_bytes"), (names.STANDBY_DR_READY, "dr_ready")):
            for r in q(metric):
                m = r["metric"]
                entry = live.standbys.setdefault(m.get("standby", ""), {"mode": m.get("mode")})
                entry[key] = float(r["value"][1])
        return live
    except (GovctlError, KeyError, TypeError, ValueError) as exc:
        return LiveHealth(address, f"Prometheus at {address} could not be read: {exc}")


def _verdict(results: list[float]) -> str:
    if not results:
        return UNKNOWN
    ok = sum(1 for v in results if v >= 0.5)
    return UP if ok == len(results) else DOWN if ok == 0 else DEGRADED


def _host_health(fqdn: str, live: LiveHealth) -> dict:
    results = [v for (_, center, _, target), v in live.probes.items()
               if target == fqdn and center != SERVICE_ADDRESS_CENTER]
    return {"status": _verdict(results), "probes": len(results),
            "succeeding": sum(1 for v in results if v >= 0.5)}


def _link_health(name: str, between: tuple[str, str], role: str, live: LiveHealth,
                 primary_pairs: set) -> dict:
    if not live.reachable:
        return {"status": UNKNOWN, "probes": 0, "succeeding": 0, "measured_by": None}
    own = [v for (_, _, service, target), v in live.probes.items()
           if service == LINK_SERVICE and target == f"{LINK_TARGET_PREFIX}{name}"]
    if own:
        return {"status": _verdict(own), "probes": len(own), "succeeding": sum(1 for v in own if v >= 0.5),
                "measured_by": "pings across the link"}
    a, b = between
    if role != "primary" or frozenset(between) not in primary_pairs:
        return {"status": UNKNOWN, "probes": 0, "succeeding": 0,
                "measured_by": None}
    crossing = [v for (vantage, center, service, _), v in live.probes.items()
                if (vantage, center) in ((a, b), (b, a)) and service != LINK_SERVICE]
    return {"status": _verdict(crossing), "probes": len(crossing),
            "succeeding": sum(1 for v in crossing if v >= 0.5), "measured_by": "probes between the centers"}


def topology(stack: str, outputs: StackOutputs, live: LiveHealth) -> dict:
    """The page's data: every center with its zones and hosts, the links, the service and replication."""
    centers = []
    for name, center in outputs.centers.items():
        hosts = outputs.hosts_in(name)
        zones = [{"name": zone, "kind": z.kind, "subnets": list(z.subnets),
                  "hosts": [_host(h, live) for h in hosts if h.zone == zone]}
                 for zone, z in center.zones.items()]
        known = set(center.zones)
        loose = [_host(h, live) for h in hosts if h.zone not in known]
        if loose:  # a backend exporting hosts without the center's zones: still shown
            zones.append({"name": "", "kind": "", "subnets": [], "hosts": loose})
        centers.append({"name": name, "role": center.role, "site": center.site, "zones": zones,
                        "database_primary": None if not live.reachable else name in live.primary})
    # without link probes, one primary link per pair of centers gets the probes crossing it
    primary_pairs = {frozenset(link.between) for link in outputs.links.values() if link.role == "primary"}
    links = [{"name": name, "between": list(link.between), "role": link.role,
              "health": _link_health(name, link.between, link.role, live, primary_pairs)}
             for name, link in outputs.links.items()]
    service = None
    if outputs.service:
        s = outputs.service
        serving = sorted(live.serving.get(s.name, [])) if live.reachable else None
        service = {"name": s.name, "url": s.url, "ipv4": s.ipv4, "ipv6": s.ipv6,
                   "routed_to": s.active_center,  # where the stack's wan route points
                   "serving": serving,  # which centers answer it now, measured from outside
                   "status": UNKNOWN if serving is None else (UP if serving else DOWN)}
    replication = []
    if outputs.databases:
        for sb in outputs.databases.standbys:
            measured = live.standbys.get(sb.center, {})
            streaming = measured.get("streaming")
            replication.append({
                "primary": outputs.databases.primary.center, "standby": sb.center, "mode": sb.mode,
                "status": UNKNOWN if streaming is None else (UP if streaming >= 0.5 else DOWN),
                "lag_seconds": measured.get("lag_seconds"), "lag_bytes": measured.get("lag_bytes"),
                "dr_ready": None if "dr_ready" not in measured else measured["dr_ready"] >= 0.5})
    return {"stack": stack, "backend": outputs.backend, "topology": outputs.topology,
            "prometheus": {"address": live.prometheus, "reachable": live.reachable, "problem": live.problem},
            "centers": centers, "links": links, "service": service, "replication": replication}


def _host(h, live: LiveHealth) -> dict:
    return {"name": h.name, "fqdn": h.fqdn, "roles": list(h.roles), "ipv4": h.ipv4, "ipv6": h.ipv6,
            "health": _host_health(h.fqdn, live) if live.reachable
            else {"status": UNKNOWN, "probes": 0, "succeeding": 0}}


# --- availability ---------------------------------------------------------------------------------

def budget_burndown(address: str, spec: SLOSpec, start: float, end: float) -> list[dict]:
    """Per service and center, the rolling error budget left (ratio) at CHART_POINTS steps over the period."""
    step = max(spec.interval, (end - start) / CHART_POINTS)
    series = []
    for slo in spec.services:
        for s in prom_api.query_range(address, f'{names.BUDGET_REMAINING}{{sloth_id="{slo.sloth_id}"}}',
                                      start, end, step):
            series.append({"service": slo.name, "center": s["metric"].get("center", ""),
                           "points": [[float(ts), float(v)] for ts, v in s["values"]]})
    # the last point is the budget now, whatever the step's alignment
    now = {(r["metric"].get("sloth_service"), r["metric"].get("center")): (float(r["value"][0]),
                                                                           float(r["value"][1]))
           for r in prom_api.query(address, names.BUDGET_REMAINING, end)}
    for s in series:
        last = now.get((s["service"], s["center"]))
        if last and (not s["points"] or s["points"][-1][0] < end):
            s["points"].append([end, last[1]])
    return sorted(series, key=lambda s: (s["service"], s["center"]))


def firing_burn_alerts(address: str, spec: SLOSpec) -> list[dict]:
    """The burn-rate alerts (the spec's alert classes) firing now, with the time each became active."""
    classes = "|".join(c.name for c in spec.alert_classes)
    since = {tuple(sorted((k, v) for k, v in r["metric"].items() if k != "__name__")): float(r["value"][1])
             for r in prom_api.query(address, f'ALERTS_FOR_STATE{{alertname=~"{classes}"}}')}
    alerts = []
    for r in prom_api.query(address, f'ALERTS{{alertstate="firing", alertname=~"{classes}"}}'):
        m = r["metric"]
        key = tuple(sorted((k, v) for k, v in m.items() if k not in ("__name__", "alertstate")))
        alerts.append({"alert": m.get("alertname"), "severity": m.get("severity"),
                       "service": m.get("sloth_service"), "center": m.get("center"),
                       "since": since.get(key)})
    return sorted(alerts, key=lambda a: (a["service"] or "", a["center"] or "", a["alert"] or ""))


def availability(start: str, end: str = "now", spec: Path | None = None, prometheus: str | None = None) -> dict:
    """The availability page: the report `govctl availability report` prints for the same period, the
    budget chart's series and the burn-rate alerts firing. Times as the CLI takes them (BadInput when
    malformed); Prometheus unreachable → verdict "unknown" and the reason, no figures."""
    start_at, end_at = parse_time(start, "from"), parse_time(end, "to")
    if end_at - start_at > MAX_PERIOD_DAYS * 86400:
        raise BadInput(f"from {start!r} to {end!r} spans more than {MAX_PERIOD_DAYS} days; ask for a "
                       "shorter period or use `govctl availability report`")
    try:
        loaded, address = report_sources(spec, prometheus)
    except GovctlError as exc:
        if isinstance(exc, BadInput):  # a broken SLO spec is the operator's to fix: say so
            raise
        return _unknown(None, str(exc))
    try:
        data = report(address, loaded, start_at, end_at)
        data["budget"] = budget_burndown(address, loaded, start_at, end_at)
        data["alerts"] = firing_burn_alerts(address, loaded)
    except GovctlError as exc:
        if isinstance(exc, BadInput):
            raise
        return _unknown(address, str(exc))
    data["prometheus"] = {"address": address, "reachable": True, "problem": None}
    return data


def _unknown(address: str | None, problem: str) -> dict:
    return {"verdict": UNKNOWN, "rows": [], "budget": [], "alerts": [],
            "prometheus": {"address": address, "reachable": False, "problem": problem}}
