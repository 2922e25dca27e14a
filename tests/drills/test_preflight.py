"""A drill's preflight names what blocks it (issue #19): the page alerts it waits on (name, labels,
since) and centers monitoring does not measure yet, as it waits and in the abort report. Real
Alertmanager and Prometheus on free ports; no lab needed (only its list of centers)."""
from __future__ import annotations

import datetime as dt
import subprocess
import time
from types import SimpleNamespace

import httpx
import pytest

from drills.actions import monitoring_quiet
from drills.lab import DrillError
from drills.report import to_html
from drills.runner import Context, Detection
from tests.monitors.helpers import free_port, stop_process, wait_for

CENTERS = ("prod", "samecity")


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@pytest.fixture(scope="module")
def monitoring(tmp_path_factory):
    folder = tmp_path_factory.mktemp("preflight")
    am_port, prom_port = free_port(), free_port()
    (folder / "am.yml").write_text("route: {receiver: none}\nreceivers: [{name: none}]\n")
    # the SLI as the generated rules record it, for the two centers the test's lab has
    rules = "".join(f"""
  - record: slo:sli_error:instant
    expr: vector(0)
    labels: {{center: {c}, sloth_service: gov-portal}}""" for c in CENTERS)
    (folder / "rules.yml").write_text(f"groups:\n- name: sli\n  interval: 1s\n  rules:{rules}\n")
    (folder / "prom.yml").write_text(f"global: {{evaluation_interval: 1s}}\nrule_files: [{folder}/rules.yml]\n")
    procs = [subprocess.Popen(["prometheus-alertmanager", f"--config.file={folder}/am.yml",
                               f"--storage.path={folder}/am", f"--web.listen-address=127.0.0.1:{am_port}",
                               "--cluster.listen-address=", "--log.level=warn"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
             subprocess.Popen(["prometheus", f"--config.file={folder}/prom.yml",
                               f"--storage.tsdb.path={folder}/prom",
                               f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    am, prom = f"http://127.0.0.1:{am_port}", f"http://127.0.0.1:{prom_port}"
    try:
        wait_for(lambda: httpx.get(f"{am}/-/ready").status_code == 200, 30, "Alertmanager")
        wait_for(lambda: len(httpx.get(f"{prom}/api/v1/query", params={"query": "slo:sli_error:instant"})
                             .json()["data"]["result"]) == 2, 30, "the recorded SLI")
        yield {"alertmanager": am, "prometheus": prom}
    finally:
        for p in procs:
            stop_process(p)


def page(am: str, center: str, started: float, lasts: float) -> None:
    """A page alert as Prometheus sends it, resolving by itself after `lasts` seconds."""
    alert = {"labels": {"alertname": "SLOPageBurnRate", "severity": "page", "center": center,
                        "sloth_service": "gov-portal", "sloth_id": "gov-portal-availability"},
             "startsAt": _iso(started), "endsAt": _iso(time.time() + lasts)}
    assert httpx.post(f"{am}/api/v2/alerts", json=[alert]).status_code == 200


def context(monitoring, centers=CENTERS) -> tuple[Context, list[str]]:
    notices: list[str] = []
    detection = Detection(alertmanager=monitoring["alertmanager"], prometheus=monitoring["prometheus"])
    return Context(plan=None, target=SimpleNamespace(centers=lambda: list(centers)), ledger=None,
                   detection=detection, backups=None, primary="prod", notice=notices.append), notices


@pytest.mark.slow
def test_preflight_names_the_page_alerts_it_waits_on_and_the_abort_names_them(monitoring):
    started = time.time() - 600
    page(monitoring["alertmanager"], "prod", started, lasts=6)
    wait_for(lambda: httpx.get(f"{monitoring['alertmanager']}/api/v2/alerts").json(), 10, "the alert")
    since = dt.datetime.fromtimestamp(int(started), dt.timezone.utc).isoformat()
    expected = f"SLOPageBurnRate{{center=prod, sloth_service=gov-portal}} active since {since}"

    ctx, notices = context(monitoring)
    with pytest.raises(DrillError) as aborted:
        monitoring_quiet(ctx, seconds=2)
    assert "still blocking" in str(aborted.value) and expected in str(aborted.value)
    assert notices == [f"preflight waits for active page alerts to resolve: {expected}"]
    [blocker] = ctx.blockers
    assert (blocker["alertname"], blocker["labels"]["center"], blocker["since"]) == \
        ("SLOPageBurnRate", "prod", since)

    # the abort report (JSON and HTML) names it, as the runner writes it
    result = {"scenario": "production-loss", "name": {"zh": "生产中心失效", "en": "production loss"},
              "run_id": "r1", "started": time.time(), "verdict": "aborted", "aborted_in": "preflight",
              "reason": str(aborted.value), "steps": [], "blocked_by": ctx.blockers}
    html = to_html(result)
    assert "预检阻塞项 Preflight blocked by" in html and expected in html

    # the same alert resolving inside the time allowed: the preflight passes and says what it waited on
    ctx, notices = context(monitoring)
    detail = monitoring_quiet(ctx, seconds=30)
    assert detail.startswith("monitoring measures every center and nothing pages") and expected in detail
    assert notices[0].endswith(expected) and notices[-1] == \
        "preflight: done waiting for active page alerts to resolve"


@pytest.mark.slow
def test_preflight_names_a_center_monitoring_does_not_measure(monitoring):
    ctx, notices = context(monitoring, centers=("prod", "samecity", "remote"))
    with pytest.raises(DrillError, match="still blocking: center remote not measured yet"):
        monitoring_quiet(ctx, seconds=1)
    assert notices == ["preflight waits for monitoring to measure the SLI of every center: "
                       "center remote not measured yet"]
