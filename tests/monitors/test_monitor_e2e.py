"""End to end: real Prometheus + Alertmanager + probe/replication exporters + the webhook.

A local web service per center stands in for the lab's; the SLO spec is the default one with its
windows divided by 60 (1h → 60 s, 5m → 5 s) and a 1 s SLI interval, so an outage pages in seconds.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from monitors.slo import DEFAULT_SPEC, spec_text_with

from .helpers import WebService, free_port, wait_for
from .pg_cluster import PgCluster

CENTERS = ("prod", "samecity", "remote")
VANTAGES = ("internet", "egov-net", "mgmt")


def scaled_spec(folder: Path) -> Path:
    path = folder / "slo-drill.yaml"
    path.write_text(spec_text_with(DEFAULT_SPEC.read_text(), window_scale=60, interval="1s"))
    return path


class Govctl:
    def __init__(self, state: Path):
        self.env = {**os.environ, "GOVCTL_STATE": str(state)}

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-c", "from govctl.cli import main; main()", *args],
                              capture_output=True, text=True, env=self.env, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"govctl {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def json(self, *args: str):
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    folder = tmp_path_factory.mktemp("monitor")
    webs = {c: WebService(c).start() for c in CENTERS}
    vip = WebService("prod").start()  # the service address, answered by the production center
    pg = PgCluster({"samecity": "synchronous", "remote": "asynchronous"}).start("prod")
    ports = {k: free_port() for k in ("prometheus", "alertmanager", "webhook", "replication_exporter")}
    targets = {
        "centers": {c: {"services": {
            "gov-portal": [{"name": f"web-1.{c}", "url": f"http://127.0.0.1:{webs[c].port}/health",
                            "timeout": "500ms"}],
            "database": [{"name": f"db-1.{c}", "address": f"127.0.0.1:{pg.ports[c]}"}]}}
            for c in CENTERS},
        "service_address": {"service": "gov-portal", "endpoints": [
            {"name": "gov-portal-vip", "url": f"http://127.0.0.1:{vip.port}/health"}]},
        "vantages": {v: {"listen": f"127.0.0.1:{free_port()}"} for v in VANTAGES},
        "databases": {"prod": {"dsn": pg.dsn("prod")},
                      "samecity": {"dsn": pg.dsn("samecity"), "standby": "synchronous"},
                      "remote": {"dsn": pg.dsn("remote"), "standby": "asynchronous"}},
        "monitor": {**{k: f"127.0.0.1:{p}" for k, p in ports.items()}, "page_group_wait": "1s",
                    "ticket_group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h"},
    }
    targets_file = folder / "targets.yaml"
    targets_file.write_text(yaml.safe_dump(targets))
    govctl = Govctl(folder / "state")
    govctl("monitor", "up", "--targets", str(targets_file), "--spec", str(scaled_spec(folder)))
    try:
        yield {"govctl": govctl, "webs": webs, "pg": pg, "folder": folder,
               "prometheus": f"http://127.0.0.1:{ports['prometheus']}",
               "alertmanager": f"http://127.0.0.1:{ports['alertmanager']}",
               "records": folder / "state" / "monitor" / "alerts.jsonl", "started": time.time()}
    finally:
        govctl("monitor", "down", check=False)
        for w in [*webs.values(), vip]:
            w.stop()
        pg.stop()


def prom_query(base: str, expr: str, at: float | None = None) -> list[dict]:
    params = {"query": expr, **({"time": str(at)} if at else {})}
    return httpx.get(f"{base}/api/v1/query", params=params, timeout=10).json()["data"]["result"]


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow
def test_status_scrapes_every_exporter_and_loads_the_rules(platform):
    govctl = platform["govctl"]
    info = wait_for(lambda: (i := json.loads(govctl("monitor", "status", "--json", check=False).stdout))
                    and all(t["health"] == "up" for t in i["targets"]) and len(i["targets"]) == 7 and i,
                    30, "every scrape target up")
    assert set(info["processes"]) == {"webhook", "probe-internet", "probe-egov-net", "probe-mgmt",
                                      "replication", "alertmanager", "prometheus"}
    assert all(p["running"] for p in info["processes"].values())
    assert info["rules"] >= 20
    health = wait_for(lambda: (h := govctl.json("monitor", "health")) and h["standbys"]
                      and h["serving"] and h, 30, "center health")
    assert health["serving"] == ["prod"] and health["primary"] == ["prod"]
    assert {(s["standby"], s["dr_ready"]) for s in health["standbys"]} == {("samecity", True),
                                                                           ("remote", True)}


@pytest.mark.slow
def test_a_30_day_report_right_after_monitoring_starts_says_insufficient_data(platform):
    """Issue #19: minutes of measurement are not 30 days of service; never 达标 met."""
    govctl = platform["govctl"]
    wait_for(lambda: len(prom_query(platform["prometheus"], "slo:sli_error:instant == 0")) == 4, 30,
             "a measured SLI for every center")
    report = json.loads(govctl("availability", "report", "--from", "now-30d").stdout)
    assert report["verdict"] == "insufficient_data" and len(report["rows"]) == 4
    for row in report["rows"]:
        assert row["availability"] == 1 and row["verdict"] == "insufficient_data" and not row["met"]
        assert row["expected_steps"] == 30 * 86400 + 1 and 0 < row["measured_steps"] < 600
        assert row["coverage"] == row["measured_steps"] / row["expected_steps"]
    html_file = platform["folder"] / "month.html"
    govctl("availability", "report", "--from", "now-30d", "--format", "html", "-o", str(html_file))
    page_html = html_file.read_text()
    assert page_html.count("数据不足 insufficient data") == 4 and "达标 met</td>" not in page_html


@pytest.mark.slow
def test_the_ops_topology_reads_health_from_this_monitoring(platform, monkeypatch):
    """The console's topology (issue #19, monitors/ops_view.py) over the real exporters and generated rules:
    the lab's hosts named like these endpoints are up, prod serves the service address, both standbys stream
    with a measured lag; the links stay unknown (no vantage point inside a center here)."""
    import infra.engine
    from infra.outputs import read_stack_outputs
    from monitors.ops_view import read_live_health, topology

    from .ops_monitoring import DeployedLab
    monkeypatch.setattr(infra.engine, "Engine", DeployedLab)

    def complete():
        view = topology("lab", read_stack_outputs("lab"), read_live_health(platform["prometheus"]))
        measured = all(r["lag_seconds"] is not None and r["dr_ready"] is not None for r in view["replication"])
        return measured and view["service"]["serving"] and view

    view = wait_for(complete, 30, "replication lag and the serving center measured")
    hosts = {h["fqdn"]: h["health"] for c in view["centers"] for z in c["zones"] for h in z["hosts"]}
    for center in CENTERS:
        for host in (f"web-1.{center}", f"db-1.{center}"):
            assert hosts[host]["status"] == "up" and hosts[host]["probes"] >= 1, (host, hosts[host])
        assert hosts[f"bastion-1.{center}"]["status"] == "unknown"
    assert view["service"]["serving"] == ["prod"] and view["service"]["status"] == "up"
    assert [c["name"] for c in view["centers"] if c["database_primary"]] == ["prod"]
    assert {(r["standby"], r["status"], r["dr_ready"]) for r in view["replication"]} == {
        ("samecity", "up", True), ("remote", "up", True)}
    assert all(0 <= r["lag_seconds"] < 60 for r in view["replication"])
    assert {link["health"]["status"] for link in view["links"]} == {"unknown"}


@pytest.mark.slow
def test_outage_pages_through_the_webhook_then_resolves(platform):
    base, govctl = platform["prometheus"], platform["govctl"]
    # let the page pair's long window (1h / 60 = 60 s) fill with healthy history first
    warm = 62 - (time.time() - platform["started"])
    if warm > 0:
        time.sleep(warm)
    assert prom_query(base, 'slo:sli_error:instant{center="prod"}')[0]["value"][1] == "0"
    assert not [r for r in records(platform["records"]) if r["receiver"] == "page"]

    platform["webs"]["prod"].stop()
    stopped = time.time()
    page = wait_for(lambda: next((r for r in records(platform["records"])
                                  if r["receiver"] == "page" and r["status"] == "firing"), None),
                    60, "the page alert at the webhook")
    latency = page["received_at"] - stopped
    print(f"\noutage → page at the webhook: {latency:.1f} s")
    assert page["alertname"] == "SLOPageBurnRate" and page["labels"]["center"] == "prod"
    assert page["labels"]["sloth_service"] == "gov-portal" and page["severity"] == "page"
    assert latency < 30
    # the SLI dropped for prod only; the other centers stay good
    sli = {r["metric"]["center"]: r["value"][1] for r in prom_query(base, "slo:sli_error:instant")}
    assert sli["prod"] == "1" and sli["samecity"] == "0" and sli["remote"] == "0"
    outage_seconds = 8
    time.sleep(max(0, outage_seconds - (time.time() - stopped)))

    platform["webs"]["prod"].start()
    restored = time.time()
    resolved = wait_for(lambda: next((r for r in records(platform["records"]) if r["receiver"] == "page"
                                      and r["status"] == "resolved" and r["received_at"] > restored),
                                     None), 90, "the page to resolve")
    print(f"restore → resolved at the webhook: {resolved['received_at'] - restored:.1f} s")
    assert not [r for r in records(platform["records"]) if r["labels"].get("center") in ("samecity",
                                                                                           "remote")]
    platform["outage"] = (stopped, restored)

    # the auditors' report, from Prometheus: one outage of about the right length in prod only
    report = json.loads(govctl("availability", "report", "--from", str(platform["started"]),
                               "--to", str(time.time())).stdout)
    rows = {(r["service"], r["center"]): r for r in report["rows"]}
    prod = rows[("gov-portal", "prod")]
    assert len(prod["outages"]) == 1
    outage = prod["outages"][0]
    assert abs(outage["seconds"] - (restored - stopped)) <= 3, outage
    assert prod["availability"] < 1 and not prod["met"] and prod["budget_remaining"] < 0
    assert rows[("gov-portal", "samecity")]["availability"] == 1
    assert rows[("gov-portal", "samecity")]["outages"] == []
    assert rows[("gov-portal", "service-address")]["availability"] == 1
    html_file = platform["folder"] / "report.html"
    govctl("availability", "report", "--from", str(platform["started"]), "--to", "now",
           "--format", "html", "-o", str(html_file))
    page_html = html_file.read_text()
    assert "可用性报告" in page_html and "Availability report" in page_html
    assert outage["start"] in page_html and "未达标 not met" in page_html


@pytest.mark.slow
def test_silence_keeps_a_drill_from_paging(platform):
    base, govctl = platform["prometheus"], platform["govctl"]
    silence = govctl("monitor", "silence", "add", "-m", "center=remote", "--for", "10m",
                     "--comment", "drill: remote web down").stdout.strip()
    listed = govctl.json("monitor", "silence", "list")
    assert any(s["id"] == silence and s["status"]["state"] == "active" for s in listed)
    platform["webs"]["remote"].stop()
    wait_for(lambda: any(a["labels"].get("center") == "remote" and a["state"] == "firing"
                         for a in httpx.get(f"{base}/api/v1/alerts").json()["data"]["alerts"]),
             30, "the remote page to fire in Prometheus")
    time.sleep(4)  # longer than group_wait + group_interval: a notification would be there by now
    assert not [r for r in records(platform["records"]) if r["labels"].get("center") == "remote"]
    govctl("monitor", "silence", "expire", silence)
    wait_for(lambda: [r for r in records(platform["records"]) if r["labels"].get("center") == "remote"],
             30, "the page once the silence expired")
    platform["webs"]["remote"].start()


@pytest.mark.slow
def test_restart_keeps_rules_and_time_series(platform):
    base, govctl = platform["prometheus"], platform["govctl"]
    wait_for(lambda: prom_query(base, 'slo:sli_error:instant{center="prod"}'), 30,
             "a measured SLI step (when this test runs first, warm-up may not be over)")
    time.sleep(1)
    before = time.time() - 0.5
    old = prom_query(base, 'slo:sli_error:instant{center="prod"}', before)
    rules = len(httpx.get(f"{base}/api/v1/rules").json()["data"]["groups"])
    kept = records(platform["records"])
    govctl("monitor", "down")
    assert govctl("monitor", "status", check=False).returncode == 1
    govctl("monitor", "up")  # the targets and spec of the last run
    assert prom_query(base, 'slo:sli_error:instant{center="prod"}', before) == old and old
    assert len(httpx.get(f"{base}/api/v1/rules").json()["data"]["groups"]) == rules
    assert records(platform["records"])[:len(kept)] == kept  # the alert records stay


@pytest.mark.slow
def test_restart_with_data_kept_does_not_page(platform):
    """Issue #19: `monitor down` then `monitor up` with the data folder kept wrote one bad SLI sample
    for every center at the first evaluation and paged everywhere although every service answered:
    the previous process's last probe results (failures, taken while the lab went down) and its start
    time were still inside the lookback. Here those last results are written into the kept data
    folder as TSDB blocks (promtool), exactly as the old process would have left them."""
    base, govctl = platform["prometheus"], platform["govctl"]
    wait_for(lambda: len(prom_query(base, "slo:sli_error:instant == 0")) == 4, 30,
             "a good SLI sample for the three centers and the service address")
    settle = wait_for(lambda: not [a for a in httpx.get(f"{base}/api/v1/alerts").json()["data"]["alerts"]
                                   if a["labels"].get("severity") == "page"] and time.time(), 120,
                      "no page pending or firing before the restart")
    probes = prom_query(base, 'govctl_probe_success{service="gov-portal"}')
    assert len(probes) >= 12
    govctl("monitor", "down")
    stopped = time.time()
    lines = ["# TYPE govctl_probe_success gauge"]
    for p in probes:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(p["metric"].items()) if k != "__name__")
        lines.append(f"govctl_probe_success{{{labels}}} 0 {stopped:.3f}")
    failures = platform["folder"] / "last-failures.om"
    failures.write_text("\n".join([*lines, "# EOF"]) + "\n")
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(failures),
                    str(platform["folder"] / "state" / "monitor" / "prometheus-data")],
                   check=True, capture_output=True)
    govctl("monitor", "up")  # the targets, spec and data folder of the last run
    restarted = time.time()
    assert prom_query(base, "min(govctl_probe_success)", stopped + 0.5)[0]["value"][1] == "0", \
        "the old process's last results are in the kept data"
    seen_pages = []
    while time.time() - restarted < 20:  # the page pair's short window is 5 s at this scale
        seen_pages += [a for a in httpx.get(f"{base}/api/v1/alerts").json()["data"]["alerts"]
                       if a["labels"].get("severity") == "page"]
        time.sleep(0.5)
    bad = prom_query(base, f"max_over_time(slo:sli_error:instant[{int(time.time() - settle) + 1}s]) > 0")
    assert bad == [], f"bad SLI samples after a restart although every service answered: {bad}"
    assert seen_pages == []
    assert not [r for r in records(platform["records"])
                if r["receiver"] == "page" and r["received_at"] > settle]
    # the SLI is measured again once this process has run for two intervals
    wait_for(lambda: len(prom_query(base, "slo:sli_error:instant == 0")) == 4, 30,
             "the SLI measured again after the restart")
