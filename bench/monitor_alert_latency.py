"""Outage → page alert at the webhook, through real Prometheus, Alertmanager and probe exporters.

    .venv/bin/python bench/monitor_alert_latency.py                 # the real spec: 99.95 %, 5 s, 1h/5m
    .venv/bin/python bench/monitor_alert_latency.py --interval 15s
    .venv/bin/python bench/monitor_alert_latency.py --scale 60 --interval 1s

Every window of the SLO starts full: Prometheus's data folder is backfilled (promtool tsdb
create-blocks-from openmetrics) with healthy SLI history as long as the longest alert window, so the
burn-rate arithmetic is the steady-state one, not a fresh server's. Each trial stops one center's
web service (an independent SLO series) and times until the page record lands at the webhook.
Five vantage points (all on this host) probe, quorum 3.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from monitors import names  # noqa: E402
from monitors.slo import DEFAULT_SPEC, load_slo_spec, spec_text_with  # noqa: E402
from monitors.stack import Layout, down, up  # noqa: E402
from monitors.targets import targets_from_dict  # noqa: E402
from monitors.webhook import read_records  # noqa: E402
from tests.monitors.helpers import WebService, free_port, wait_for  # noqa: E402

CENTERS = ("prod", "samecity", "remote")


def backfill(layout: Layout, spec, centers: list[str], seconds: float) -> None:
    """Healthy SLI history for every center, ending now, written as TSDB blocks."""
    slo = spec.services[0]
    end = int(time.time()) - 1
    step = spec.interval
    lines = [f"# TYPE {names.SLI_INSTANT} gauge"]
    for center in centers:
        labels = (f'center="{center}",sloth_id="{slo.sloth_id}",sloth_service="{slo.name}",'
                  'sloth_slo="availability"')
        t = end - seconds
        while t <= end:
            lines.append(f"{names.SLI_INSTANT}{{{labels}}} 0 {t:.0f}")
            t += step
    lines.append("# EOF")
    source = layout.root / "backfill.om"
    source.write_text("\n".join(lines) + "\n")
    layout.prometheus_data.mkdir(parents=True, exist_ok=True)
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source),
                    str(layout.prometheus_data)], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1, help="window_scale of the spec")
    parser.add_argument("--interval", default="5s", help="SLI interval of the spec")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="govctl-alert-bench-"))
    spec_path = folder / "slo.yaml"
    spec_path.write_text(spec_text_with(DEFAULT_SPEC.read_text(), window_scale=f"{args.scale:g}",
                                        interval=args.interval))
    spec = load_slo_spec(spec_path)
    webs = {c: WebService(c).start() for c in CENTERS}
    monitor = {k: f"127.0.0.1:{free_port()}" for k in ("prometheus", "alertmanager", "webhook")}
    targets = targets_from_dict({
        "centers": {c: {"services": {"gov-portal": [
            {"name": f"web-1.{c}", "url": f"http://127.0.0.1:{webs[c].port}/health"}]}} for c in CENTERS},
        "vantages": {v: {"listen": f"127.0.0.1:{free_port()}"}
                     for v in ("internet", "egov-net", "prod", "samecity", "remote")},
        "monitor": {**monitor, "page_group_wait": "5s", "group_interval": "1m"},
    })
    layout = Layout(folder / "state")
    layout.root.mkdir(parents=True)
    longest = max(bw.long for c in spec.alert_classes for bw in c.windows)
    backfill(layout, spec, list(CENTERS), longest)
    try:
        up(layout, targets, spec)
        base = f"http://{monitor['prometheus']}"
        import httpx

        def sli() -> dict[str, str]:
            r = httpx.get(f"{base}/api/v1/query", params={"query": names.SLI_INSTANT}).json()
            return {s["metric"]["center"]: s["value"][1] for s in r["data"]["result"]}

        wait_for(lambda: len(sli()) == len(CENTERS) and set(sli().values()) == {"0"}, 120,
                 "live SLI samples for every center")
        trials = []
        for center in CENTERS:
            webs[center].stop()
            stopped = time.time()
            page = wait_for(lambda: next((r for r in read_records(layout.records)
                                          if r["receiver"] == "page" and r["status"] == "firing"
                                          and r["labels"].get("center") == center), None),
                            600, f"the page for {center}", interval=0.2)
            firing_since = page["starts_at"]
            trials.append({"center": center, "outage_to_webhook_s": round(page["received_at"] - stopped, 1),
                           "alert_starts_at": firing_since})
            print(json.dumps(trials[-1]), flush=True)
        latencies = [t["outage_to_webhook_s"] for t in trials]
        print(json.dumps({"spec": {"objective": spec.services[0].objective, "interval_s": spec.interval,
                                   "window_scale": spec.window_scale,
                                   "page_windows_s": [(bw.long, bw.short) for bw in spec.page.windows]},
                          "backfilled_history_s": longest, "trials": len(trials),
                          "outage_to_webhook_s": {"min": min(latencies), "median": statistics.median(latencies),
                                                  "max": max(latencies)}}), flush=True)
    finally:
        down(layout)
        for w in webs.values():
            w.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
