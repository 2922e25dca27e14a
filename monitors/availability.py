"""Availability for auditors, computed from Prometheus (the recorded SLI), never from an exporter.

For every service and center: the share of measured SLI steps that were good, outages (runs of
bad steps) with start, end and duration, and the error budget used over the report period; plus
the rolling 30-day budget left as Prometheus records it.
"""
from __future__ import annotations

import datetime as dt
import html
import re
from pathlib import Path
from string import Template

from core.errors import BadInput

from . import names, prom_api
from .durations import parse_duration
from .slo import ServiceSLO, SLOSpec

TEMPLATE = Path(__file__).with_name("report.html")


def parse_time(text: str, option: str, now: float | None = None) -> float:
    """'now', 'now-7d', Unix seconds or ISO 8601 (UTC unless it names a zone) → Unix seconds."""
    now = dt.datetime.now(dt.timezone.utc).timestamp() if now is None else now
    text = text.strip()
    m = re.fullmatch(r"now(?:-(.+))?", text)
    try:
        if m:
            at = now - (parse_duration(m.group(1)) if m.group(1) else 0)
        elif re.fullmatch(r"\d+(\.\d+)?", text):
            at = float(text)
        else:
            when = dt.datetime.fromisoformat(text)
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.timezone.utc)
            at = when.timestamp()
        dt.datetime.fromtimestamp(at, dt.timezone.utc)  # a time a report can print (not year 10^18)
        return at
    except (ValueError, OverflowError, OSError):
        raise BadInput(f"{option} {text!r}: write a time as now, now-7d, Unix seconds or ISO 8601 "
                       "(2026-11-01T00:00:00+08:00)") from None


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(
        timespec="seconds")


def outages_of(values: list[tuple[float, float]], end: float) -> list[dict]:
    """Runs of bad steps (value 1) → outages; one still running at `end` has no end."""
    out, start = [], None
    for ts, v in values:
        if v >= 0.5 and start is None:
            start = ts
        elif v < 0.5 and start is not None:
            out.append({"start": _iso(start), "end": _iso(ts), "seconds": ts - start, "ongoing": False})
            start = None
    if start is not None:
        out.append({"start": _iso(start), "end": None, "seconds": end - start, "ongoing": True})
    return out


MET, NOT_MET, INSUFFICIENT = "met", "not_met", "insufficient_data"
VERDICT_TEXT = {MET: "达标 met", NOT_MET: "未达标 not met", INSUFFICIENT: "数据不足 insufficient data"}


def expected_steps(start: float, end: float, step: float) -> int:
    """SLI steps a fully measured period holds (a 30-day period at 5 s: 518,401)."""
    return int((end - start) // step) + 1


def judge(slo: ServiceSLO, values: list[tuple[float, float]], start: float, end: float, step: float,
          min_coverage: float) -> dict:
    """One service in one center over the period: availability of the measured steps, their
    coverage of the period, and the verdict. Below `min_coverage` the measured steps cannot show
    the objective was met (105 good steps of 518,401 are not 30 days of service), so the verdict is
    insufficient data, unless the downtime measured already exceeds the period's whole budget."""
    bad = sum(1 for _, v in values if v >= 0.5)
    measured, expected = len(values), expected_steps(start, end, step)
    coverage = measured / expected
    availability = 1 - bad / measured if measured else None
    allowed = slo.error_budget * (end - start)
    bad_seconds = bad * step
    if allowed and bad_seconds > allowed:
        verdict = NOT_MET
    elif coverage < min_coverage or availability is None:
        verdict = INSUFFICIENT
    else:
        verdict = MET if availability >= slo.objective else NOT_MET
    return {
        "service": slo.name, "objective": slo.objective, "availability": availability,
        "measured_steps": measured, "expected_steps": expected, "coverage": coverage,
        "min_coverage": min_coverage, "bad_steps": bad,
        "step_seconds": step, "downtime_seconds": bad_seconds,
        "budget_allowed_seconds": allowed,
        "budget_used": bad_seconds / allowed if allowed else None,
        "budget_remaining": 1 - bad_seconds / allowed if allowed else None,
        "verdict": verdict, "met": verdict == MET,
        "outages": outages_of(values, end),
    }


def report(address: str, spec: SLOSpec, start: float, end: float) -> dict:
    if end <= start:
        raise BadInput(f"--from ({_iso(start)}) must be before --to ({_iso(end)})")
    step = spec.interval
    rows = []
    for slo in spec.services:
        series = prom_api.query_range(address, f'{names.SLI_INSTANT}{{sloth_id="{slo.sloth_id}"}}',
                                      start, end, step)
        remaining = {r["metric"].get("center"): float(r["value"][1]) for r in prom_api.query(
            address, f'{names.BUDGET_REMAINING}{{sloth_id="{slo.sloth_id}"}}', end)}
        for s in sorted(series, key=lambda s: s["metric"].get("center", "")):
            values = [(float(ts), float(v)) for ts, v in s["values"]]
            center = s["metric"].get("center", "")
            row = judge(slo, values, start, end, step, spec.min_coverage)
            rows.append({"service": row.pop("service"), "center": center, **row,
                         "rolling_budget_remaining": remaining.get(center)})
    verdicts = {r["verdict"] for r in rows}
    overall = (NOT_MET if NOT_MET in verdicts else INSUFFICIENT if INSUFFICIENT in verdicts or not rows
               else MET)
    return {"from": _iso(start), "to": _iso(end), "seconds": end - start, "source": address,
            "sli": names.SLI_INSTANT, "spec": spec.source, "min_coverage": spec.min_coverage,
            "expected_steps": expected_steps(start, end, step), "verdict": overall, "rows": rows}


def report_sources(spec: Path | None = None, prometheus: str | None = None) -> tuple[SLOSpec, str]:
    """The SLO spec the monitor runs with (or `spec`) and the running Prometheus (or `prometheus`):
    what `govctl availability report` and the console's availability page both read."""
    from .slo import load_slo_spec
    from .stack import Layout, prometheus_address

    layout = Layout.default()
    loaded = load_slo_spec(spec or (layout.spec if layout.spec.exists() else None))
    return loaded, prometheus or prometheus_address(layout)


def report_between(start: str, end: str = "now", spec: Path | None = None,
                   prometheus: str | None = None) -> dict:
    """`govctl availability report --from START --to END`: times as the CLI takes them (now-30d …)."""
    loaded, address = report_sources(spec, prometheus)
    return report(address, loaded, parse_time(start, "--from"), parse_time(end, "--to"))


def _pct(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x * 100:.{digits}f} %"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"


def render_html(data: dict) -> str:
    e = html.escape
    rows, outages = [], []
    for r in data["rows"]:
        verdict = r.get("verdict") or (MET if r["met"] else NOT_MET)
        coverage = r.get("coverage", r["measured_steps"] / r["expected_steps"])
        css = {MET: "ok", NOT_MET: "bad"}.get(verdict, "unknown")
        rows.append(
            f"<tr><td>{e(r['service'])}</td><td>{e(r['center'])}</td><td>{_pct(r['objective'], 2)}</td>"
            f"<td>{_pct(r['availability'])}</td><td>{e(_duration(r['downtime_seconds']))}</td>"
            f"<td>{_pct(r['budget_used'], 1)}</td><td>{_pct(r['budget_remaining'], 1)}</td>"
            f"<td>{_pct(r['rolling_budget_remaining'], 1)}</td>"
            f"<td>{r['measured_steps']:,} / {r['expected_steps']:,} ({_pct(coverage, 2)})</td>"
            f"<td class=\"{css}\">{VERDICT_TEXT[verdict]}</td></tr>")
        for o in r["outages"]:
            end = o["end"] or "进行中 ongoing"
            outages.append(f"<tr><td>{e(r['service'])}</td><td>{e(r['center'])}</td><td>{e(o['start'])}</td>"
                           f"<td>{e(end)}</td><td>{e(_duration(o['seconds']))}</td></tr>")
    if not outages:
        outages.append('<tr><td colspan="5">无中断 no outages</td></tr>')
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        start=e(data["from"]), end=e(data["to"]), source=e(data["source"]), sli=e(data["sli"]),
        spec=e(data["spec"]), min_coverage=_pct(data.get("min_coverage", 0.95), 0), rows="\n".join(rows), outages="\n".join(outages),
        generated=e(_iso(dt.datetime.now(dt.timezone.utc).timestamp())))


def center_health(address: str) -> dict:
    def q(expr: str) -> list[dict]:
        return prom_api.query(address, expr)

    lag = {r["metric"]["standby"]: float(r["value"][1]) for r in q(names.PG_LAG_SECONDS)}
    remaining = {(r["metric"].get("sloth_service"), r["metric"].get("center")): float(r["value"][1])
                 for r in q(names.BUDGET_REMAINING)}
    return {
        "serving": sorted(r["metric"]["center"] for r in q(f"{names.CENTER_SERVING} > 0")),
        "primary": sorted(r["metric"]["center"] for r in q(f"{names.PG_IS_PRIMARY} == 1")),
        "standbys": [{"standby": r["metric"]["standby"], "mode": r["metric"]["mode"],
                      "dr_ready": float(r["value"][1]) == 1, "lag_seconds": lag.get(r["metric"]["standby"])}
                     for r in q(names.STANDBY_DR_READY)],
        "slo": [{"service": r["metric"].get("sloth_service"), "center": r["metric"].get("center"),
                 "failing": float(r["value"][1]) == 1,
                 "budget_remaining": remaining.get((r["metric"].get("sloth_service"),
                                                    r["metric"].get("center")))}
                for r in q(names.SLI_INSTANT)],
    }
