"""Every shipped drill end to end on the real lab, with measured RTO/RPO against the targets."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from drills.lab import LabTarget
from infra.outputs import StackOutputs
from tests.conftest import run_govctl

pytestmark = [pytest.mark.slow, pytest.mark.root]


def drill(*args: str) -> tuple[int, dict]:
    proc = run_govctl("drill", "run", *args, "--json", timeout=900)
    assert proc.stdout, proc.stderr[-3000:]
    return proc.returncode, json.loads(proc.stdout)


def assert_original_layout(lab: dict) -> None:
    target = LabTarget(StackOutputs.from_dict(lab))
    assert target.primaries() == ["prod"]
    assert target.service_center() == "prod"
    streaming = {r["standby"]: r["sync_state"] for r in target.replication("prod")
                 if r["state"] == "streaming"}
    assert streaming == {"samecity": "sync", "remote": "async"}


def test_planned_switchover_to_same_city_and_back(lab, tmp_path):
    code, result = drill("samecity-switchover", "--report", str(tmp_path / "switchover"))
    assert code == 0, result.get("anomalies")
    m = result["measured"]
    assert m["rto_seconds"] <= 30 and m["rpo_transactions"] == 0
    assert result["gbt20988"]["level"] == 6
    assert result["verification"]["rows"] > 0
    assert {s["action"] for s in result["steps"] if s["phase"] == "recover"} >= {"fence", "promote"}
    # fencing happens before promotion: never two writable primaries
    order = [s["action"] for s in result["steps"]]
    assert order.index("fence") < order.index("promote")
    html = (tmp_path / "switchover.html").read_text()
    assert "计划内切换" in html and "Planned switchover" in html
    assert_original_layout(lab)


@pytest.mark.parametrize("scenario, new_primary, rto, rpo_tx, rpo_s", [
    ("production-loss", "samecity", 30, 0, None),
    ("site-loss", "remote", 60, None, 5),
])
def test_unplanned_loss_fails_over_within_targets(lab, lab_monitoring, scenario, new_primary,
                                                  rto, rpo_tx, rpo_s):
    code, result = drill(scenario)
    assert code == 0 and result["verdict"] == "pass", (result.get("anomalies"), result["measured"])
    m = result["measured"]
    # detection: the first page alert monitoring raised after the fault (scaled windows here)
    assert m["detection_seconds"] is not None and 0 < m["detection_seconds"] <= 60
    assert result["page_alerts"] and all(a["labels"]["severity"] == "page"
                                         for a in result["page_alerts"])
    # the drill's figures reach Prometheus (govctl_drill_* scraped from the monitor's webhook)
    from monitors import prom_api
    from monitors.stack import Layout, prometheus_address

    expr = f'govctl_drill_rto_seconds{{scenario="{scenario}"}}'
    deadline = time.monotonic() + 30
    while True:
        found = prom_api.query(prometheus_address(Layout.default()), expr)
        if found and abs(float(found[0]["value"][1]) - m["rto_seconds"]) < 1e-6:
            break
        assert time.monotonic() < deadline, f"Prometheus never showed {expr} = {m['rto_seconds']}"
        time.sleep(1)
    assert m["rto_seconds"] is not None and m["rto_seconds"] <= rto, result
    if rpo_tx is not None:
        assert m["rpo_transactions"] == rpo_tx  # synchronous: no acknowledged write lost
    if rpo_s is not None:
        assert m["rpo_seconds"] <= rpo_s
    steps = {s["action"]: s for s in result["steps"]}
    assert f"answers from {new_primary}" in steps["service_served_by"]["detail"]
    assert steps["restore_original"]["ok"]
    assert "aborted_in" not in result
    assert_original_layout(lab)


def test_link_failure_moves_to_the_standby_link_and_gives_the_same_verdict_twice(lab):
    verdicts = []
    for _ in range(2):
        code, result = drill("link-failure")
        assert code == 0, result.get("anomalies")
        path = next(s for s in result["steps"] if s["action"] == "standby_path")
        assert "prod-samecity-b" in path["detail"]
        assert result["measured"]["rpo_transactions"] == 0
        verdicts.append(result["verdict"])
    assert verdicts == ["pass", "pass"]
    assert_original_layout(lab)


def test_backup_restore_check(lab):
    code, result = drill("backup-restore")
    assert code == 0, result.get("anomalies")
    detail = next(s["detail"] for s in result["steps"] if s["action"] == "restore_check")
    assert "identical to the live ledger" in detail


def test_failing_preflight_aborts_without_touching_anything(lab, tmp_path):
    plan = tmp_path / "bad-preflight.yaml"
    plan.write_text(Path("drills/plans/production-loss.yaml").read_text().replace(
        "    - {action: lab_healthy}", "    - {action: center_exists, center: atlantis}"))
    code, result = drill(str(plan))
    assert code == 1
    assert result["verdict"] == "aborted" and result["aborted_in"] == "preflight"
    assert result["touched"] is False
    assert [s["phase"] for s in result["steps"]] == ["preflight"]
    assert_original_layout(lab)


def test_failure_mid_drill_rolls_back_to_a_healthy_lab(lab, tmp_path):
    plan = tmp_path / "injected.yaml"
    plan.write_text(Path("drills/plans/samecity-switchover.yaml").read_text().replace(
        "    - {action: follow, center: remote, primary: samecity}",
        "    - {action: fail, message: disk on fire}"))
    code, result = drill(str(plan))
    assert code == 1
    assert result["verdict"] == "rolled back"
    assert "injected failure: disk on fire" in result["anomalies"][0]
    rollback = result["steps"][-1]
    assert rollback["action"] == "restore_original" and rollback["ok"]
    assert_original_layout(lab)


def test_non_lab_stack_is_refused(lab):
    proc = run_govctl("drill", "run", "link-failure", "--stack", "tiny")
    assert proc.returncode == 2 and "--allow-non-lab" in proc.stderr
    proc = run_govctl("drill", "run", "link-failure", "--stack", "tiny", "--allow-non-lab",
                      input="not-tiny\n")
    assert proc.returncode == 2 and "did not match" in proc.stderr
