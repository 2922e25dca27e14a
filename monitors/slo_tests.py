"""Generate `promtool test rules` files (Prometheus 2.42 format) that prove the generated alerts.

For each service the generator builds input series for scenarios (healthy, quorum holds, full outage,
slow burn, no data), predicts with a small model of the windows when each alert must fire or be quiet,
and writes assertions only at steps where the prediction does not depend on window-edge details
(inclusive or exclusive window start, this step or the previous one). The model is the spec's
arithmetic; promtool checks that Prometheus agrees.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from itertools import accumulate
from typing import Any

from . import names
from .durations import format_duration, parse_duration
from .slo import PROMETHEUS_START, AlertClass, ServiceSLO, SLOSpec, render_rules

STEP = 60.0  # seconds between test samples and evaluations; windows are multiples of it in the spec
CENTER, OTHER_CENTER = "prod", "samecity"


def _rle(values: list[float]) -> str:
    """promtool expanding notation: 'v' once, 'vxN' for N+1 repeats."""
    out, i = [], 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        v = f"{values[i]:g}"
        out.append(v if j == i else f"{v}x{j - i}")
        i = j + 1
    return " ".join(out)


class _Model:
    """Window averages of a 0/1 error series sampled every `step`, via prefix sums."""

    def __init__(self, errors: list[int], step: float):
        self.step = step
        self.prefix = [0, *accumulate(errors)]

    def ratio(self, i: int, window: float, inclusive: bool) -> float:
        span = int(round(window / self.step))
        first = max(0, i - span + (0 if inclusive else 1))
        return (self.prefix[i + 1] - self.prefix[first]) / (i + 1 - first)

    def firing(self, cls: AlertClass, slo: ServiceSLO, i: int) -> bool | None:
        return self.holds(cls.windows, cls.for_seconds, slo, i)

    def holds(self, pairs, for_seconds: float, slo: ServiceSLO, i: int) -> bool | None:
        """Whether any of the burn-rate pairs holds (for `for_seconds`) at step i: True/False when
        every edge interpretation agrees, None when the answer depends on the edges."""
        held = int(round(for_seconds / self.step))
        verdicts = set()
        for inclusive in (True, False):
            for lag in (0, 1):
                j = i - lag
                if j < 0:
                    return None
                verdicts.add(all(self._condition(pairs, slo, k, inclusive)
                                 for k in range(max(0, j - held), j + 1)))
        return verdicts.pop() if len(verdicts) == 1 else None

    def _condition(self, pairs, slo: ServiceSLO, i: int, inclusive: bool) -> bool:
        return any(self.ratio(i, bw.short, inclusive) > bw.burn_rate * slo.error_budget
                   and self.ratio(i, bw.long, inclusive) > bw.burn_rate * slo.error_budget
                   for bw in pairs)


def _series(slo: ServiceSLO, center: str, vantage: int, values: list[float]) -> dict:
    return {"series": f'{names.PROBE_SUCCESS}{{vantage="vantage-{vantage}", center="{center}", '
                      f'service="{slo.name}", target="web-1.{center}"}}',
            "values": _rle(values)}


def _alert_labels(cls: AlertClass, slo: ServiceSLO, center: str) -> dict:
    return {"severity": cls.severity, "sloth_severity": cls.severity, "sloth_id": slo.sloth_id,
            "sloth_service": slo.name, "sloth_slo": "availability", "center": center}


def _expected(rule: dict, labels: dict) -> dict:
    """An exp_alerts entry: the labels and the annotations as Prometheus renders them."""
    annotations = {k: re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), v)
                   for k, v in rule.get("annotations", {}).items()}
    return {"exp_labels": labels, "exp_annotations": annotations}


def _alert_rule(spec: SLOSpec, name: str) -> dict:
    return next(r for g in render_rules(spec)["groups"] for r in g["rules"] if r.get("alert") == name)


def _at(i: int, step: float) -> str:
    return format_duration(max(i, 1) * step) if i else "0s"


@dataclass
class _Case:
    name: str
    series: list[dict]
    alerts: list[dict]
    exprs: list[dict]

    def as_test(self, step: float) -> dict:
        test: dict[str, Any] = {"name": self.name, "interval": format_duration(step),
                                "input_series": self.series}
        if self.alerts:
            test["alert_rule_test"] = self.alerts
        if self.exprs:
            test["promql_expr_test"] = self.exprs
        return test


class _Builder:
    def __init__(self, spec: SLOSpec, slo: ServiceSLO, step: float):
        self.spec, self.slo, self.step = spec, slo, step
        self.notes: list[str] = []  # what no scenario can prove, said instead of skipped silently
        self.vantages = slo.quorum + 1  # one more than the quorum, so one may fail harmlessly
        # Healthy history before an outage: it fills every page window and the first ticket pair;
        # longer windows are partly filled, which the model follows (a full 3 days costs promtool
        # ten times the run time for the same proof).
        self.history = int(max(*(bw.long for bw in spec.page.windows), spec.ticket.windows[0].long)
                           / step)

    def expect(self, cls: AlertClass, i: int, firing: bool) -> dict:
        expected = _expected(_alert_rule(self.spec, cls.name), _alert_labels(cls, self.slo, CENTER))
        return {"eval_time": _at(i, self.step), "alertname": cls.name,
                "exp_alerts": [expected] if firing else []}

    def sli(self, i: int, center: str, value: int) -> dict:
        return {"expr": f'{names.SLI_INSTANT}{{sloth_id="{self.slo.sloth_id}", center="{center}"}}',
                "eval_time": _at(i, self.step),
                "exp_samples": [{"labels": f'{names.SLI_INSTANT}{{center="{center}", '
                                           f'sloth_id="{self.slo.sloth_id}", '
                                           f'sloth_service="{self.slo.name}", sloth_slo="availability"}}',
                                 "value": value}]}

    def healthy_pair(self, prod: list[list[float]], length: int) -> list[dict]:
        """Series of the center under test, plus a healthy second center that must stay quiet."""
        return self.only(prod) + [_series(self.slo, OTHER_CENTER, v + 1, [1] * length)
                                  for v in range(self.vantages)]

    def only(self, prod: list[list[float]]) -> list[dict]:
        return [_series(self.slo, CENTER, v + 1, prod[v]) for v in range(self.vantages)]

    def quorum_case(self) -> _Case:
        """One vantage point down: the quorum holds, nothing fires; a second one down: the step is
        bad. In the other center only quorum−1 vantage points report: not measured, no sample."""
        length = int(2 * self.spec.page.windows[0].long / self.step) + 20
        second_fails = length - 10
        prod = [[0] * length, [1] * second_fails + [0] * (length - second_fails)]
        prod += [[1] * length for _ in range(self.vantages - 2)]
        quiet_at = second_fails - 1
        unmeasured = [_series(self.slo, "remote", v + 1, [1] * length) for v in range(self.slo.quorum - 1)]
        unmeasured_at = int(10 * self.spec.interval / self.step) + 2
        return _Case(
            f"{self.slo.name}: one of {self.vantages} vantage points failing keeps the quorum "
            f"of {self.slo.quorum}: no alert; with fewer reporting the SLI is not measured",
            self.healthy_pair(prod, length) + unmeasured,
            [self.expect(cls, quiet_at, False) for cls in self.spec.alert_classes] +
            [{"eval_time": _at(unmeasured_at, self.step), "alertname": "SLOQuorumUnmeasured",
              "exp_alerts": [_expected(_alert_rule(self.spec, "SLOQuorumUnmeasured"),
                                       {"severity": "ticket", "center": "remote",
                                        "sloth_id": self.slo.sloth_id, "sloth_service": self.slo.name,
                                        "sloth_slo": "availability"})]}],
            [self.sli(quiet_at, CENTER, 0), self.sli(second_fails + 1, CENTER, 1),
             self.sli(second_fails + 1, OTHER_CENTER, 0),
             {"expr": f'{names.SLI_INSTANT}{{center="remote"}}', "eval_time": _at(quiet_at, self.step),
              "exp_samples": []}])

    def outage_case(self) -> _Case:
        """Healthy history, a full outage in one center, recovery: each alert fires, then resolves."""
        h = self.history
        # simulate a long outage to learn when each class first fires, then cut it to that length
        probe = _Model([0] * h + [1] * (h // 2), self.step)
        first_fire = {}
        for cls in self.spec.alert_classes:
            first_fire[cls.name] = next(i for i in range(h, h + h // 2)
                                        if probe.firing(cls, self.slo, i) is True)
        outage = max(first_fire.values()) - h + 3
        errors = [0] * h + [1] * outage + [0] * h
        model = _Model(errors, self.step)
        total = len(errors)
        last = 0  # the series end one step after the last assertion
        alerts, exprs = [], []
        for cls in self.spec.alert_classes:
            fire = first_fire[cls.name]
            alerts.append(self.expect(cls, h - 1, False))
            before = next((i for i in range(fire - 1, h - 1, -1)
                           if model.firing(cls, self.slo, i) is False), None)
            if before is not None:
                alerts.append(self.expect(cls, before, False))
            alerts.append(self.expect(cls, fire, True))
            resolved = next(i for i in range(h + outage, total) if model.firing(cls, self.slo, i) is False
                            and all(model.firing(cls, self.slo, k) is not True for k in range(i, total)))
            alerts.append(self.expect(cls, resolved, False))
            last = max(last, resolved + 1)
        errors, total = errors[:last + 1], last + 1
        exprs += [self.sli(h - 1, CENTER, 0), self.sli(h + 1, CENTER, 1),
                  self.sli(h + 1, OTHER_CENTER, 0)]
        prod = [[1 - e for e in errors] for _ in range(self.vantages)]
        minutes = outage * self.step / 60
        return _Case(f"{self.slo.name}: a {minutes:g}-minute full outage in {CENTER} pages and tickets, "
                     f"then both resolve; {OTHER_CENTER} stays quiet",
                     self.healthy_pair(prod, total), alerts, exprs)

    def slow_burn_case(self) -> _Case | None:
        """Isolated bad steps: a burn the ticket catches while the page stays quiet."""
        page, ticket = self.spec.page, self.spec.ticket
        # the model follows partly filled windows too, so the series need not fill the longest one
        length = int(ticket.windows[0].long / self.step)
        for period in sorted({int(1.25 ** k) for k in range(5, 60)}):
            if period >= length // 2:
                break
            errors = [1 if i % period == period - 1 else 0 for i in range(length)]
            model = _Model(errors, self.step)
            for i in range(length - 1, length // 2, -1):
                if model.firing(ticket, self.slo, i) is True and model.firing(page, self.slo, i) is False:
                    prod = [[1 - e for e in errors] for _ in range(self.vantages)]
                    return _Case(
                        f"{self.slo.name}: one bad step in every {period}: the ticket fires, the page "
                        "stays quiet",
                        self.only(prod),
                        [self.expect(ticket, i, True), self.expect(page, i, False)], [])
        return None

    def pair_cases(self, cls: AlertClass) -> list[_Case]:
        """Per burn-rate pair: the shortest outage that makes this pair alone fire, and one step
        shorter, which must leave the alert quiet at the same moment (pins each threshold)."""
        cases = []
        for k, bw in enumerate(cls.windows):
            others = [o for o in cls.windows if o is not bw]
            history = int(min(max(o.long for o in cls.windows), self.spec.ticket.windows[0].long)
                          / self.step)
            found = None
            for bad in range(1, 61):
                errors = [0] * history + [1] * bad + [0] * int(bw.long / self.step)
                model = _Model(errors, self.step)
                for i in range(history + bad - 1, len(errors)):
                    if model.holds([bw], cls.for_seconds, self.slo, i) is True and \
                            model.holds(others, cls.for_seconds, self.slo, i) is False:
                        found = (bad, i)
                        break
                if found:
                    break
            if not found:
                self.notes.append(f"{cls.name} pair {k + 1} ({bw.burn_rate:g}× over "
                                  f"{format_duration(bw.long)} and {format_duration(bw.short)}) never "
                                  "fires alone: another pair of the same alert holds whenever it does")
                continue
            bad, at = found
            length = at + 2
            runs = [(bad, True)] + ([(bad - 1, False)] if bad > 1 else [])
            for count, fires in runs:
                errors = ([0] * history + [1] * count + [0] * length)[:length]
                shorter = _Model(errors, self.step)
                if not fires and shorter.firing(cls, self.slo, at) is not False:
                    continue
                prod = [[1 - e for e in errors] for _ in range(self.vantages)]
                span = format_duration(count * self.step)
                verdict = (f"pair {k + 1} ({bw.burn_rate:g}× over {format_duration(bw.long)} and "
                           f"{format_duration(bw.short)}) alone fires {cls.name}" if fires else
                           f"{cls.name} stays quiet")
                cases.append(_Case(f"{self.slo.name}: a {span} outage after "
                                   f"{format_duration(history * self.step)} of health: {verdict}",
                                   self.only(prod), [self.expect(cls, at, fires)], []))
        return cases

    def absent_case(self) -> _Case:
        wait = int(10 * self.spec.interval / self.step) + 2
        return _Case(f"{self.slo.name}: no probe results at all raises SLOProbeDataAbsent",
                     [{"series": 'up{job="other"}', "values": _rle([1] * (wait + 2))}],
                     [{"eval_time": _at(wait, self.step), "alertname": "SLOProbeDataAbsent",
                       "exp_alerts": [_expected(_alert_rule(self.spec, "SLOProbeDataAbsent"),
                                                {"severity": "ticket", "service": self.slo.name,
                                                 "sloth_id": self.slo.sloth_id,
                                                 "sloth_service": self.slo.name,
                                                 "sloth_slo": "availability"})]}], [])


def _health_case(spec: SLOSpec, step: float) -> _Case:
    """A lagging asynchronous standby is not DR-ready and raises a ticket; the sync one is ready."""
    hold = int(spec.not_ready_for / step) + 3
    sync_lag, async_lag = spec.lag_targets["synchronous"] / 2, spec.lag_targets["asynchronous"] * 2
    series = [
        {"series": f'{names.PG_STANDBY_STREAMING}{{standby="samecity", mode="synchronous"}}',
         "values": _rle([1] * hold)},
        {"series": f'{names.PG_STANDBY_STREAMING}{{standby="remote", mode="asynchronous"}}',
         "values": _rle([1] * hold)},
        {"series": f'{names.PG_LAG_SECONDS}{{standby="samecity", mode="synchronous"}}',
         "values": _rle([sync_lag] * hold)},
        {"series": f'{names.PG_LAG_SECONDS}{{standby="remote", mode="asynchronous"}}',
         "values": _rle([async_lag] * hold)},
        {"series": f'{names.PROBE_SERVED_BY}{{vantage="vantage-1", vantage_kind="outside", '
                   f'service="gov-portal", center="service-address", served_by="prod"}}',
         "values": _rle([1] * hold)},
        {"series": f'{names.PROBE_SERVED_BY}{{vantage="samecity", vantage_kind="inside", '
                   f'service="gov-portal", center="service-address", served_by="samecity"}}',
         "values": _rle([1] * hold)},
    ]
    at = _at(hold - 1, step)
    return _Case(
        "center health: the async standby lagging beyond its target is not DR-ready; the service "
        "address is served by the center citizens reach",
        series,
        [{"eval_time": at, "alertname": "StandbyNotReadyForDR",
          "exp_alerts": [_expected(_alert_rule(spec, "StandbyNotReadyForDR"),
                                   {"severity": "ticket", "standby": "remote", "mode": "asynchronous"})]}],
        [{"expr": names.STANDBY_DR_READY, "eval_time": at,
          "exp_samples": [{"labels": f'{names.STANDBY_DR_READY}{{standby="samecity", mode="synchronous"}}',
                           "value": 1},
                          {"labels": f'{names.STANDBY_DR_READY}{{standby="remote", mode="asynchronous"}}',
                           "value": 0}]},
         {"expr": names.CENTER_SERVING, "eval_time": at,
          "exp_samples": [{"labels": f'{names.CENTER_SERVING}{{service="gov-portal", center="prod"}}',
                           "value": 1}]}])


def _startup_case(spec: SLOSpec, step: float) -> _Case:
    """Prometheus just started: no SLI sample for two intervals, then a measured one."""
    slo = spec.services[0]
    series = [_series(slo, CENTER, v + 1, [0] * 6) for v in range(slo.quorum)]
    series.append({"series": PROMETHEUS_START, "values": _rle([0] * 6)})
    expr = f'{names.SLI_INSTANT}{{sloth_id="{slo.sloth_id}"}}'
    return _Case("Prometheus just started: the SLI is not measured for two intervals", series, [], [
        {"expr": expr, "eval_time": _at(1, step), "exp_samples": []},
        {"expr": expr, "eval_time": _at(3, step),
         "exp_samples": [{"labels": f'{names.SLI_INSTANT}{{center="{CENTER}", sloth_id="{slo.sloth_id}", '
                                    f'sloth_service="{slo.name}", sloth_slo="availability"}}', "value": 1}]}])


def _restart_case(spec: SLOSpec, step: float) -> _Case:
    """Issue #19: monitoring ran two steps while the lab was still down (warm-up: nothing
    recorded), stopped, and restarted with its data kept three steps later, when every service
    answered again. The new process's first evaluation runs before its first scrape, with the old
    process's last probe results (failures) and start time still inside the lookback: it must
    record nothing and page nowhere, then measure the healthy service once warmed up."""
    slo = spec.services[0]
    gap = "_ _ _ _"            # steps 2-5: stopped, then started; the first new scrape is at step 6
    restarted = 6
    series = [{"series": s["series"], "values": f"0 0 {gap} {_rle([1] * 8)}"}
              for s in (_series(slo, c, v + 1, []) for c in (CENTER, OTHER_CENTER)
                        for v in range(slo.quorum))]
    series.append({"series": PROMETHEUS_START,
                   "values": f"0 0 {gap} {_rle([restarted * step] * 8)}"})
    expr = f'{names.SLI_INSTANT}{{sloth_id="{slo.sloth_id}"}}'
    measured = restarted + int(2 * spec.interval / step) + 1
    quiet = [{"eval_time": _at(i, step), "alertname": cls.name, "exp_alerts": []}
             for i in (restarted - 1, restarted, measured) for cls in spec.alert_classes]
    good = [{"labels": f'{names.SLI_INSTANT}{{center="{c}", sloth_id="{slo.sloth_id}", '
                       f'sloth_service="{slo.name}", sloth_slo="availability"}}', "value": 0}
            for c in (CENTER, OTHER_CENTER)]
    return _Case("restart with the data kept: the first evaluation sees only the previous process's "
                 "samples (failures from before the stop) and records nothing; no alert; measured "
                 "again once warmed up", series, quiet,
                 [{"expr": expr, "eval_time": _at(i, step), "exp_samples": []}
                  for i in range(restarted - 1, measured)] +
                 [{"expr": expr, "eval_time": _at(measured, step), "exp_samples": good}])


def _late_exporter_case(spec: SLOSpec, step: float) -> _Case:
    """Issue #19, seen in CI: restarted with the data kept, one center's probe exporters do not
    answer the new process's scrapes until after its warm-up, so their last results from before the
    stop (failures) are still the newest inside the lookback. That center is unmeasured, not down;
    the other center, scraped afresh, is measured."""
    slo = spec.services[0]
    restarted = 5
    measured = restarted + int(2 * spec.interval / step) + 1
    length = measured + 3 - restarted  # steps of the new process in the case
    fresh = f"{'_ ' * restarted}{_rle([1] * length)}"
    # the old process ran the two steps before the restart (in its warm-up, so it measured nothing)
    # while the lab was down; the late exporters first answer at measured+1
    stale = f"{'_ ' * (restarted - 2)}0 0 {'_ ' * (measured + 1 - restarted)}1 1"
    series = [{"series": s["series"], "values": fresh if c == CENTER else stale}
              for c in (CENTER, OTHER_CENTER)
              for s in [_series(slo, c, v + 1, []) for v in range(slo.quorum)]]
    series.append({"series": PROMETHEUS_START,
                   "values": f"{'_ ' * (restarted - 2)}{_rle([(restarted - 2) * step] * 2)} "
                             f"{_rle([restarted * step] * length)}"})
    expr = f'{names.SLI_INSTANT}{{sloth_id="{slo.sloth_id}"}}'
    good = [{"labels": f'{names.SLI_INSTANT}{{center="{c}", sloth_id="{slo.sloth_id}", '
                       f'sloth_service="{slo.name}", sloth_slo="availability"}}', "value": 0}
            for c in (CENTER, OTHER_CENTER)]
    return _Case("exporters late after a restart: one center's old failures are "
                 "not measured as down", series,
                 [{"eval_time": _at(measured, step), "alertname": cls.name, "exp_alerts": []}
                  for cls in spec.alert_classes],
                 [{"expr": expr, "eval_time": _at(measured, step), "exp_samples": good[:1]},
                  {"expr": expr, "eval_time": _at(measured + 1, step), "exp_samples": good}])


def spec_for_tests(spec: SLOSpec) -> SLOSpec:
    """The spec evaluated every minute (finer when scaled windows are short).

    Only the evaluation interval differs from the spec: the 3-day windows at a 15 s step would need
    more samples than promtool's query limit and minutes of run time.
    """
    return replace(spec, interval=min(STEP, min(spec.windows()) / 5))


def render_rule_tests(spec: SLOSpec, rule_file: str) -> tuple[dict[str, Any], list[str]]:
    """The promtool test file for `rule_file`, which must hold `render_rules(spec_for_tests(spec))`,
    and notes on what no scenario can prove."""
    spec = spec_for_tests(spec)
    step = spec.interval
    cases: list[_Case] = []
    notes: list[str] = []
    for slo in spec.services:
        b = _Builder(spec, slo, step)
        cases += [b.quorum_case(), b.outage_case(), b.absent_case()]
        for cls in spec.alert_classes:
            cases += b.pair_cases(cls)
        slow = b.slow_burn_case()
        if slow is not None:
            cases.append(slow)
        notes += b.notes
    cases.append(_health_case(spec, step))
    cases.append(_startup_case(spec, step))
    cases.append(_restart_case(spec, step))
    cases.append(_late_exporter_case(spec, step))
    for case in cases:  # Prometheus has been up for a day in every case that does not say otherwise
        if any(s["series"] == PROMETHEUS_START for s in case.series):
            continue
        last = max(parse_duration(t["eval_time"]) for t in [*case.alerts, *case.exprs])
        case.series.append({"series": PROMETHEUS_START, "values": _rle([-86400] * (int(last / step) + 2))})
    groups = [g["name"] for g in render_rules(spec)["groups"]]
    return {"rule_files": [rule_file], "evaluation_interval": format_duration(step),
            "group_eval_order": groups, "tests": [c.as_test(step) for c in cases]}, notes
