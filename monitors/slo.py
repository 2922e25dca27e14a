"""The SLO spec (monitors/slo.yaml) and the Prometheus rules generated from it.

Per service: an instant SLI (1 when fewer than `quorum` vantage points reach the service in a center),
Sloth-compatible error ratios over every alert window and the SLO period, error-budget metadata, and
one page and one ticket alert built from multi-window multi-burn-rate pairs. A center-health group
summarizes which center serves the service address and whether each standby is ready for DR.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import names
from .durations import format_duration, parse_duration
from .specfile import load_document

DEFAULT_SPEC = Path(__file__).with_name("slo.yaml")
SCHEMA = Path(__file__).with_name("slo.schema.yaml")
PROMETHEUS_START = 'process_start_time_seconds{job="prometheus"}'  # its self-scrape job


@dataclass(frozen=True)
class BurnWindow:
    burn_rate: float
    long: float   # seconds, already scaled
    short: float


@dataclass(frozen=True)
class AlertClass:
    severity: str  # page | ticket
    name: str
    windows: tuple[BurnWindow, ...]
    for_seconds: float = 0


@dataclass(frozen=True)
class ServiceSLO:
    name: str
    objective: float  # ratio, e.g. 0.9995
    quorum: int
    description: str = ""

    @property
    def sloth_id(self) -> str:
        return f"{self.name}-availability"

    @property
    def error_budget(self) -> float:
        return 1 - self.objective

    @property
    def selector(self) -> str:
        return f'sloth_id="{self.sloth_id}", sloth_service="{self.name}", sloth_slo="availability"'


@dataclass(frozen=True)
class SLOSpec:
    source: str
    period: float       # seconds, scaled
    interval: float     # seconds
    window_scale: float
    page: AlertClass
    ticket: AlertClass
    services: tuple[ServiceSLO, ...]
    lag_targets: dict[str, float]
    not_ready_for: float
    # below this share of measured SLI steps a period's verdict is "insufficient data", never "met"
    min_coverage: float = 0.95

    @property
    def alert_classes(self) -> tuple[AlertClass, AlertClass]:
        return (self.page, self.ticket)

    def windows(self) -> list[float]:
        """Every distinct alert window, shortest first (the period is separate)."""
        return sorted({w for c in self.alert_classes for bw in c.windows for w in (bw.long, bw.short)})

    def service(self, name: str) -> ServiceSLO:
        for s in self.services:
            if s.name == name:
                return s
        raise KeyError(name)


def load_slo_spec(path: str | Path | None = None, *, text: str | None = None) -> SLOSpec:
    """Read and check an SLO spec; SpecError names the file, the line and what to change."""
    doc = load_document(path or DEFAULT_SPEC, SCHEMA, text=text)
    data = doc.data
    scale = float(data.get("window_scale", 1))
    interval = parse_duration(data["interval"])

    def window(path: str, text_: str) -> float:
        seconds = parse_duration(text_) / scale
        if seconds < 2 * interval:
            doc.problem(path, f"{text_} divided by window_scale {scale:g} is {seconds:g} s, shorter "
                              f"than two SLI intervals ({2 * interval:g} s); lower window_scale or interval")
        return seconds

    classes = {}
    for severity in ("page", "ticket"):
        raw = data["alerts"][severity]
        windows = []
        for i, w in enumerate(raw["windows"]):
            p = f"alerts.{severity}.windows[{i}]"
            bw = BurnWindow(float(w["burn_rate"]), window(f"{p}.long", w["long"]),
                            window(f"{p}.short", w["short"]))
            if bw.short >= bw.long:
                doc.problem(f"{p}.short", f"the short window {w['short']} must be shorter than the "
                                          f"long window {w['long']}")
            windows.append(bw)
        classes[severity] = AlertClass(severity, raw["name"], tuple(windows),
                                       parse_duration(raw["for"]) if "for" in raw else 0)
    if classes["page"].name == classes["ticket"].name:
        doc.problem("alerts.ticket.name", "page and ticket alerts need different names")
    period = window("period", data["period"])
    longest = max(bw.long for c in classes.values() for bw in c.windows)
    if period < longest:
        doc.problem("period", f"the SLO period {data['period']} is shorter than the longest alert window")

    services, seen = [], set()
    for i, s in enumerate(data["services"]):
        if s["name"] in seen:
            doc.problem(f"services[{i}].name", f"duplicate service {s['name']!r}; list each service once")
        seen.add(s["name"])
        services.append(ServiceSLO(s["name"], float(s.get("objective", data["objective"])) / 100,
                                   int(s["quorum"]), s.get("description", "")))
    replication = data.get("replication", {})
    lag = {"synchronous": 5.0, "asynchronous": 60.0, **replication.get("lag_seconds_target", {})}
    doc.raise_if_problems()
    return SLOSpec(str(path or DEFAULT_SPEC), period, interval, scale, classes["page"],
                   classes["ticket"], tuple(services), lag,
                   parse_duration(replication.get("not_ready_for", "2m")),
                   float(data.get("min_coverage", 95)) / 100)


def spec_text_with(text: str, **values: str | float) -> str:
    """The spec's text with top-level scalars replaced (comments kept), e.g. for a drill:
    spec_text_with(DEFAULT_SPEC.read_text(), window_scale=60, interval="1s")."""
    for key, value in values.items():
        text, count = re.subn(rf"^{key}:[^#\n]*", f"{key}: {value} ", text, count=1, flags=re.M)
        if not count:
            raise KeyError(f"the spec has no top-level {key!r}")
    return text


# -- rule generation -------------------------------------------------------------------------------
def _num(x: float) -> str:
    return f"{x:.10g}"


def ratio_rule_name(window_seconds: float) -> str:
    return f"slo:sli_error:ratio_rate{format_duration(window_seconds)}"


def _sloth_labels(slo: ServiceSLO) -> dict[str, str]:
    return {"sloth_id": slo.sloth_id, "sloth_service": slo.name, "sloth_slo": "availability"}


def _reached(slo: ServiceSLO) -> str:
    # Only results this Prometheus scraped itself count: after a restart with the data kept, a probe
    # exporter that has not answered its first scrape yet still shows the previous process's last
    # result (a failure, if the lab went down) for the 5-minute lookback. Such a vantage point is
    # unmeasured, not down (issue #19).
    probes = f'{names.PROBE_SUCCESS}{{service="{slo.name}"}}'
    return (f"min by (center, vantage) ({probes}\n"
            f"  and (timestamp({probes}) > scalar(max({PROMETHEUS_START}))))")


def _warmed_up(spec: SLOSpec) -> str:
    """True once this Prometheus process has run for two intervals, so every vantage point's
    latest result is from a scrape of its own. After a restart with the data folder kept, the
    previous process's last samples stay visible for the 5-minute lookback: its last probe results
    (taken, say, while the lab went down) and its own start time, which made a bare `time() -
    start > 2 intervals` guard pass at the first evaluation and record one bad step for every
    center (issue #19). So the start time must also come from a fresh self-scrape: no older than
    two intervals, which a previous process's cannot be (`govctl monitor up` starts Prometheus no
    sooner than that after it stopped, monitors.stack.RESTART_GAP_INTERVALS)."""
    fresh = _num(2 * spec.interval)
    return (f"(time() - max({PROMETHEUS_START}) > {fresh})\n"
            f"  and on () (time() - max(timestamp({PROMETHEUS_START})) < {fresh})")


def _sli_rules(spec: SLOSpec, slo: ServiceSLO) -> list[dict]:
    # A vantage point reaches the service in a center when all its probes there succeed (min); the
    # step is bad when fewer than `quorum` vantage points reach it. A step where fewer than `quorum`
    # vantage points reported at all (an exporter down) is not measured: no sample, so it is
    # neither good nor bad, and SLOQuorumUnmeasured says so. Nor is a step in warm-up: see
    # _warmed_up.
    reached = _reached(slo)
    rules: list[dict] = [{
        "record": names.SLI_INSTANT,
        "expr": f"(1 - (sum by (center) ({reached}) >= bool {slo.quorum}))\n"
                f"  and on (center) (count by (center) ({reached}) >= {slo.quorum})\n"
                f"  and on () {_warmed_up(spec)}",
        "labels": _sloth_labels(slo),
    }]
    for w in [*spec.windows(), spec.period]:
        rules.append({
            "record": ratio_rule_name(w),
            "expr": f"avg_over_time({names.SLI_INSTANT}{{{slo.selector}}}[{format_duration(w)}])",
            "labels": {**_sloth_labels(slo), "sloth_window": format_duration(w)},
        })
    shortest, period = ratio_rule_name(spec.windows()[0]), ratio_rule_name(spec.period)
    budget = _num(slo.error_budget)
    labels = _sloth_labels(slo)
    rules += [
        {"record": "slo:objective:ratio", "expr": f"vector({_num(slo.objective)})", "labels": labels},
        {"record": "slo:error_budget:ratio", "expr": f"vector({budget})", "labels": labels},
        {"record": "slo:time_period:days", "expr": f"vector({_num(spec.period / 86400)})",
         "labels": labels},
        {"record": "slo:current_burn_rate:ratio",
         "expr": f"{shortest}{{{slo.selector}}} / {budget}", "labels": labels},
        {"record": "slo:period_burn_rate:ratio",
         "expr": f"{period}{{{slo.selector}}} / {budget}", "labels": labels},
        {"record": names.BUDGET_REMAINING,
         "expr": f"1 - slo:period_burn_rate:ratio{{{slo.selector}}}", "labels": labels},
        {"record": "sloth_slo_info", "expr": "vector(1)",
         "labels": {**labels, "sloth_objective": _num(slo.objective * 100),
                    "sloth_quorum": str(slo.quorum)}},
    ]
    return rules


def _burn_expr(slo: ServiceSLO, bw: BurnWindow) -> str:
    threshold = f"({_num(bw.burn_rate)} * {_num(slo.error_budget)})"
    legs = [f"max without (sloth_window) ({ratio_rule_name(w)}{{{slo.selector}}} > {threshold})"
            for w in (bw.short, bw.long)]
    return f"({legs[0]}\n  and\n  {legs[1]})"


def _alert_rules(spec: SLOSpec, slo: ServiceSLO) -> list[dict]:
    rules = []
    for cls in spec.alert_classes:
        pairs = ", ".join(f"{_num(bw.burn_rate)}× over {format_duration(bw.long)} and "
                          f"{format_duration(bw.short)}" for bw in cls.windows)
        rule = {
            "alert": cls.name,
            "expr": "\nor\n".join(_burn_expr(slo, bw) for bw in cls.windows),
            "labels": {"severity": cls.severity, "sloth_severity": cls.severity,
                       **_sloth_labels(slo)},
            "annotations": {
                "summary": f"{slo.name} in center {{{{ $labels.center }}}} is burning its "
                           f"{_num(slo.objective * 100)} % error budget too fast ({cls.severity})",
                "description": f"The error ratio exceeds a burn-rate pair ({pairs}).",
            },
        }
        if cls.for_seconds:
            rule["for"] = format_duration(cls.for_seconds)
        rules.append(rule)
    rules.append({
        "alert": "SLOQuorumUnmeasured",
        "expr": f"count by (center) ({_reached(slo)}) < {slo.quorum}",
        "for": format_duration(10 * spec.interval),
        "labels": {"severity": "ticket", **_sloth_labels(slo)},
        "annotations": {"summary": f"fewer than {slo.quorum} vantage points report on {slo.name} in "
                                   "{{ $labels.center }}: the SLI is not measured there"},
    })
    rules.append({
        "alert": "SLOProbeDataAbsent",
        "expr": f'absent({names.PROBE_SUCCESS}{{service="{slo.name}"}})',
        "for": format_duration(10 * spec.interval),
        "labels": {"severity": "ticket", **_sloth_labels(slo)},
        "annotations": {"summary": f"no probe results for {slo.name}: the SLI cannot be measured"},
    })
    return rules


def _health_rules(spec: SLOSpec) -> list[dict]:
    per = "max by (standby, mode)"
    within = " or ".join(f'({per} ({names.PG_LAG_SECONDS}{{mode="{mode}"}}) < bool {_num(target)})'
                         for mode, target in sorted(spec.lag_targets.items()))
    streaming = f"{per} ({names.PG_STANDBY_STREAMING})"
    return [
        {"record": names.CENTER_SERVING,
         # citizens' view only: inside a center the service address may resolve to that center
         "expr": f'max by (service, center) (label_replace({names.PROBE_SERVED_BY}{{vantage_kind="outside"}}, '
                 f'"center", "$1", "served_by", "(.+)"))'},
        {"record": names.STANDBY_DR_READY,
         # no lag sample (standby gone) → the `or` branch makes it 0, never absent
         "expr": f"({streaming} * on (standby, mode) ({within})) or on (standby, mode) ({streaming} * 0)"},
        {"alert": "StandbyNotReadyForDR",
         "expr": f"{names.STANDBY_DR_READY} == 0",
         "for": format_duration(spec.not_ready_for),
         "labels": {"severity": "ticket"},
         "annotations": {"summary": "standby {{ $labels.standby }} ({{ $labels.mode }}) is not "
                                    "streaming or lags beyond its target"}},
    ]


def render_rules(spec: SLOSpec) -> dict[str, Any]:
    """The Prometheus rule file for the spec, as data."""
    every = format_duration(spec.interval)
    groups = []
    for slo in spec.services:
        groups.append({"name": f"slo-sli-{slo.name}", "interval": every, "rules": _sli_rules(spec, slo)})
        groups.append({"name": f"slo-alerts-{slo.name}", "interval": every,
                       "rules": _alert_rules(spec, slo)})
    groups.append({"name": "center-health", "interval": every, "rules": _health_rules(spec)})
    return {"groups": groups}


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data):  # generated files repeat label maps; write them out each time
        return True


def _str(dumper, value: str):
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)


def dump_yaml(data: Any, header: str = "") -> str:
    """YAML for generated files: block scalars for multi-line expressions, keys in written order."""
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
    return header + body


def render_rules_text(spec: SLOSpec) -> str:
    return dump_yaml(render_rules(spec), f"# Generated by `govctl slo render` from {spec.source}; "
                                         "do not edit.\n")
