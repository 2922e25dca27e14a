"""The SLO spec → rules → promtool: the generated tests pass, and fail when the rules are wrong."""
from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
import sys
from pathlib import Path

import pytest
import yaml

from monitors import promtool as promtool_runner
from monitors.slo import DEFAULT_SPEC, load_slo_spec, render_rules, spec_text_with
from monitors.specfile import SpecError



def govctl(*args: str) -> subprocess.CompletedProcess:
    code = "from govctl.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)


def test_render_default_spec_has_sloth_names_and_the_four_burn_pairs():
    out = govctl("slo", "render")
    assert out.returncode == 0, out.stderr
    rules = yaml.safe_load(out.stdout)
    records = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"):
        assert f"slo:sli_error:ratio_rate{window}" in records
    assert {"slo:period_error_budget_remaining:ratio", "slo:objective:ratio",
            "slo:error_budget:ratio"} <= records
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    page, ticket = alerts["SLOPageBurnRate"], alerts["SLOTicketBurnRate"]
    assert page["labels"]["severity"] == "page" and ticket["labels"]["severity"] == "ticket"
    # 99.95 %: budget 0.0005; page 14.4× over 1h & 5m and 6× over 6h & 30m
    assert "ratio_rate1h" in page["expr"] and "ratio_rate5m" in page["expr"] and "(14.4 * 0.0005)" in page["expr"]
    assert "ratio_rate6h" in page["expr"] and "(6 * 0.0005)" in page["expr"]
    assert "ratio_rate3d" in ticket["expr"] and "(1 * 0.0005)" in ticket["expr"]
    assert ">= bool 3" in next(r["expr"] for g in rules["groups"] for r in g["rules"]
                               if r.get("record") == "slo:sli_error:instant")


def test_generated_cases_under_seven_hours_pass(tmp_path: Path):
    """The fast tier runs the short generated cases; the day-long ones run in the slow tier below."""
    from monitors.durations import parse_duration

    cases, _ = promtool_runner.write_rule_tests(load_slo_spec(), tmp_path)
    short = [p for p in cases if max(parse_duration(t["eval_time"]) for test in
                                     yaml.safe_load(p.read_text())["tests"]
                                     for t in [*test.get("alert_rule_test", []),
                                               *test.get("promql_expr_test", [])]) <= 7 * 3600]
    assert len(short) >= 5

    def run(path: Path) -> subprocess.CompletedProcess:
        return subprocess.run(["promtool", "test", "rules", path.name], cwd=tmp_path,
                              capture_output=True, text=True)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for proc in pool.map(run, short):
            assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_govctl_slo_test_runs_promtool_check_and_every_generated_case():
    out = govctl("slo", "test", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    outcomes = json.loads(out.stdout)["outcomes"]
    names = [o["name"] for o in outcomes]
    assert sum("check rules" in n for n in names) == 2
    assert any("full outage" in n for n in names) and any("ticket fires, the page stays quiet" in n
                                                         for n in names)
    assert all(o["ok"] for o in outcomes)


# At the tests' 1-minute step a threshold is pinned to within one bad minute per window
# (1h: 1/61 ≈ 33× the budget), so the broken thresholds are beyond that resolution.
@pytest.mark.parametrize("broken, original, case", [
    (">= bool 2", ">= bool 3", "keeps the quorum"),            # one fewer vantage point would do
    ("(50 * 0.0005)", "(14.4 * 0.0005)", "pair 1 (14.4×"),      # page pair 1 threshold too high
    ("(12 * 0.0005)", "(6 * 0.0005)", "pair 2 (6×"),            # page pair 2 threshold too high
    ("[5m])", "[30m])", "pair 2 (6×"),                         # wrong short window for pair 2
    # the previous process's start time, still in the lookback, would open the warm-up guard
    ("timestamp(process_start_time_seconds{job=\"prometheus\"})) < 1e9",
     "timestamp(process_start_time_seconds{job=\"prometheus\"})) < 120", "restart with the data kept"),
    # a probe result the previous process scraped would count as measured
    ("> -1 * scalar(max(process_start", "> scalar(max(process_start", "exporters late after a restart"),
])
def test_generated_tests_fail_when_the_rules_are_wrong(tmp_path: Path, broken, original, case):
    cases, _ = promtool_runner.write_rule_tests(load_slo_spec(), tmp_path)
    copy = tmp_path / "slo-rules.test-copy.yml"
    text = copy.read_text()
    assert original in text
    copy.write_text(text.replace(original, broken))
    chosen = [p for p in cases if case in p.read_text().splitlines()[0]]
    assert chosen
    for path in chosen:
        ok = subprocess.run(["promtool", "test", "rules", path.name], cwd=tmp_path,
                            capture_output=True).returncode == 0
        assert not ok, f"{path.name} passed on broken rules"


@pytest.mark.slow
def test_scaled_spec_for_drills_also_passes(tmp_path: Path):
    text = spec_text_with(DEFAULT_SPEC.read_text(), window_scale=60, interval="1s")
    spec_path = tmp_path / "scaled.yaml"
    spec_path.write_text(text)
    spec = load_slo_spec(spec_path)
    assert spec.windows()[:2] == [5.0, 30.0] and spec.period == 12 * 3600
    rules = render_rules(spec)
    assert any(r.get("record") == "slo:sli_error:ratio_rate5s" for g in rules["groups"] for r in g["rules"])
    outcomes, _ = promtool_runner.test_rules(spec, tmp_path / "out")
    assert all(o.ok for o in outcomes), [o.output for o in outcomes if not o.ok]


def test_spec_errors_name_file_line_and_fix(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEFAULT_SPEC.read_text()
                   .replace("{burn_rate: 6, long: 6h, short: 30m}", "{burn_rate: 6, long: 6h, short: 7h}")
                   .replace("    quorum: 3", "    quorum: 3\n    qourum: 3"))
    with pytest.raises(SpecError) as err:
        load_slo_spec(bad)
    message = str(err.value)
    lines = bad.read_text().splitlines()
    qline = next(i + 1 for i, line in enumerate(lines) if "qourum" in line)
    assert f"{bad}:{qline}: services[0].qourum: 'qourum' is not expected here; remove it or check " \
           "its spelling" in message
    bad.write_text(DEFAULT_SPEC.read_text().replace("short: 30m}", "short: 7h}"))
    with pytest.raises(SpecError) as err:
        load_slo_spec(bad)
    wline = next(i + 1 for i, line in enumerate(bad.read_text().splitlines()) if "short: 7h" in line)
    assert f"{bad}:{wline}: alerts.page.windows[1].short: the short window 7h must be shorter" in str(err.value)


def test_cli_bad_spec_exits_2_with_the_file_named(tmp_path: Path):
    bad = tmp_path / "spec.yaml"
    bad.write_text("version: 1\nperiod: 30 days\n")
    out = govctl("slo", "render", str(bad))
    assert out.returncode == 2
    assert str(bad) in out.stderr and "period" in out.stderr


def test_production_rules_pass_promtool_check(tmp_path: Path):
    promtool_runner.write_rule_tests(load_slo_spec(), tmp_path)
    outcome = promtool_runner.check_rules(tmp_path / "slo-rules.yml")
    assert outcome.ok, outcome.output
