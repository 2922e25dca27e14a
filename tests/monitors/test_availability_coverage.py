"""Availability honesty (issue #19): every figure states its coverage, and a period measured too
thinly says 数据不足 insufficient data, never 达标 met."""
from __future__ import annotations

import pytest

from core.errors import GovctlError
from monitors.availability import INSUFFICIENT, MET, NOT_MET, judge, render_html
from monitors.slo import DEFAULT_SPEC, load_slo_spec, spec_text_with

DAY = 86400.0
END = 1_796_000_000.0
START = END - 30 * DAY  # `--from now-30d`


def steps(first: float, count: int, step: float = 5.0, bad: set[int] = frozenset()) -> list:
    return [(first + i * step, 1.0 if i in bad else 0.0) for i in range(count)]


def report_of(row: dict) -> dict:
    return {"from": "2026-11-06T00:00:00+00:00", "to": "2026-12-06T00:00:00+00:00", "source": "prom",
            "sli": "slo:sli_error:instant", "spec": "slo.yaml", "min_coverage": 0.95,
            "rows": [{**row, "center": "prod", "rolling_budget_remaining": 1.0}]}


def test_a_month_asked_minutes_after_monitoring_started_is_insufficient_data_not_met():
    spec = load_slo_spec()
    slo = spec.services[0]
    # the case: monitoring started ~9 minutes before the report; 105 good steps measured
    row = judge(slo, steps(END - 104 * 5, 105), START, END, spec.interval, spec.min_coverage)
    assert (row["measured_steps"], row["expected_steps"]) == (105, 518_401)
    assert row["availability"] == 1.0 and row["coverage"] == pytest.approx(105 / 518_401)
    assert row["verdict"] == INSUFFICIENT and row["met"] is False
    html = render_html(report_of(row))
    assert "数据不足 insufficient data" in html and "达标 met" not in html.replace("未达标 not met", "")
    assert "105 / 518,401 (0.02 %)" in html


def test_a_fully_measured_period_is_met_or_not_met_by_its_availability():
    spec = load_slo_spec()
    slo = spec.services[0]
    start = END - DAY  # a day at 99.95 % allows 43.2 s: eight bad 5-s steps, not nine
    good = judge(slo, steps(start, 17_281, bad=set(range(100, 108))), start, END, 5, spec.min_coverage)
    assert good["coverage"] == 1.0 and good["verdict"] == MET and good["met"] is True
    assert good["downtime_seconds"] == 40 and good["budget_used"] == pytest.approx(40 / 43.2)
    worse = judge(slo, steps(start, 17_281, bad=set(range(100, 109))), start, END, 5, spec.min_coverage)
    assert worse["verdict"] == NOT_MET and worse["met"] is False


def test_downtime_beyond_the_whole_budget_is_not_met_even_when_thinly_measured():
    slo = load_slo_spec().services[0]
    # 30 days at 99.95 % allow 1296 s; 300 bad steps of 5 s are 1500 s whatever was not measured
    row = judge(slo, steps(END - 999 * 5, 1000, bad=set(range(300))), START, END, 5, 0.95)
    assert row["coverage"] < 0.01 and row["verdict"] == NOT_MET


def test_just_below_the_configured_coverage_is_insufficient_and_the_threshold_is_data():
    slo = load_slo_spec().services[0]
    start = END - DAY
    measured = int(17_281 * 0.94)
    assert judge(slo, steps(start, measured), start, END, 5, 0.95)["verdict"] == INSUFFICIENT
    lenient = load_slo_spec(text=spec_text_with(DEFAULT_SPEC.read_text(), min_coverage=90))
    assert lenient.min_coverage == 0.90
    assert judge(slo, steps(start, measured), start, END, 5, lenient.min_coverage)["verdict"] == MET
    with pytest.raises(GovctlError, match="min_coverage"):
        load_slo_spec(text=spec_text_with(DEFAULT_SPEC.read_text(), min_coverage=150))
