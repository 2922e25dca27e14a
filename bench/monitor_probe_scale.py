"""Probe exporter at scale: N targets per cycle — cycle time, CPU, and Prometheus's scrape cost.

    .venv/bin/python bench/monitor_probe_scale.py --targets 1000 --interval 15s --cycles 4
    .venv/bin/python bench/monitor_probe_scale.py --targets 1193 --interval 5s --cycles 12 --http-only
        (issue 20: the city's 1,193 sites, one HTTP probe each)

A separate process serves the endpoints (asyncio, 4 ports; HTTP answers 200, TCP probes connect),
so the figures are the exporter's. 60 % of the targets are HTTP, 40 % TCP (all HTTP with --http-only). A real Prometheus
scrapes the exporter every interval and reports its own scrape duration.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from monitors.durations import format_duration, parse_duration  # noqa: E402
from tests.monitors.helpers import free_port, stop_process, wait_for  # noqa: E402

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


def responder(ports: list[int]) -> None:
    async def handle(reader, writer):
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.write(RESPONSE)
            await writer.drain()
        except Exception:
            pass  # a TCP probe connects and closes without a request
        writer.close()

    async def main():
        servers = [await asyncio.start_server(handle, "127.0.0.1", p, backlog=2048) for p in ports]
        await asyncio.gather(*(s.serve_forever() for s in servers))

    asyncio.run(main())


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def metrics(url: str) -> dict[str, float]:
    out = {}
    for family in text_string_to_metric_families(httpx.get(url, timeout=10).text):
        for s in family.samples:
            if not s.labels:
                out[s.name] = s.value
    return out


def run(n: int, interval: str, cycles: int, concurrency: int, http_only: bool = False) -> dict:
    ports = [free_port() for _ in range(4)]
    server = multiprocessing.Process(target=responder, args=(ports,), daemon=True)
    server.start()
    folder = Path(tempfile.mkdtemp(prefix="govctl-probe-bench-"))
    listen = free_port()
    centers = ("prod", "samecity", "remote")
    targets = []
    for i in range(n):
        port = ports[i % 4]
        base = {"name": f"t{i:04d}", "center": centers[i % 3]}
        if http_only or i % 5 < 3:
            targets.append({**base, "kind": "http", "service": "gov-portal",
                            "url": f"http://127.0.0.1:{port}/healthz"})
        else:
            targets.append({**base, "kind": "tcp", "service": "database", "address": f"127.0.0.1:{port}"})
    config = folder / "probe.yaml"
    config.write_text(yaml.safe_dump({"vantage": "bench", "listen": f"127.0.0.1:{listen}",
                                      "interval": interval,
                                      "timeout": format_duration(min(5.0, 0.8 * parse_duration(interval))),
                                      "concurrency": concurrency, "targets": targets}))
    proc = subprocess.Popen([sys.executable, "-m", "monitors.probe", "--config", str(config)],
                            stderr=subprocess.DEVNULL)
    # a real Prometheus scrapes the exporter once per interval: its own scrape_duration_seconds
    prom_port = free_port()
    (folder / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": interval, "scrape_timeout": format_duration(
            max(0.5, 0.9 * parse_duration(interval)))},
        "scrape_configs": [{"job_name": "probe", "static_configs": [{"targets": [f"127.0.0.1:{listen}"]}]}]}))
    prom = subprocess.Popen(["prometheus", f"--config.file={folder / 'prometheus.yml'}",
                             f"--storage.tsdb.path={folder / 'data'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{listen}/metrics"
    try:
        first = wait_for(lambda: (m := metrics(url)).get("govctl_probe_last_cycle_timestamp_seconds")
                         and m, 60, "the first cycle")
        seconds = parse_duration(interval)
        # CPU from /proc (not the exporter's own counter), and one scrape per cycle, as Prometheus does
        cpu0, wall0 = cpu_seconds(proc.pid), time.monotonic()
        last = first["govctl_probe_last_cycle_timestamp_seconds"]
        cycle_seconds = []
        while len(cycle_seconds) < cycles:
            time.sleep(seconds / 2)
            m = metrics(url)
            if m["govctl_probe_last_cycle_timestamp_seconds"] != last:
                last = m["govctl_probe_last_cycle_timestamp_seconds"]
                cycle_seconds.append(m["govctl_probe_cycle_duration_seconds"])
        cpu = cpu_seconds(proc.pid) - cpu0
        wall = time.monotonic() - wall0
        end = metrics(url)
        text = httpx.get(url).text
        success = sum(1 for line in text.splitlines()
                      if line.startswith("govctl_probe_success{") and line.endswith(" 1.0"))
        scrapes = []
        scrape_cpu0 = cpu_seconds(proc.pid)
        for _ in range(20):
            t = time.perf_counter()
            httpx.get(url, timeout=10)
            scrapes.append(time.perf_counter() - t)
        scrape_cpu = (cpu_seconds(proc.pid) - scrape_cpu0) / 20
        series = httpx.get(f"http://127.0.0.1:{prom_port}/api/v1/query_range", params={
            "query": 'scrape_duration_seconds{job="probe"}', "start": time.time() - wall,
            "end": time.time(), "step": interval}).json()["data"]["result"]
        prom_scrapes = [float(v) for _, v in series[0]["values"]] if series else []
        samples = httpx.get(f"http://127.0.0.1:{prom_port}/api/v1/query",
                            params={"query": 'scrape_samples_scraped{job="probe"}'}).json()["data"]["result"]
        return {
            "prometheus_scrape_seconds": {"median": statistics.median(prom_scrapes),
                                          "max": max(prom_scrapes), "n": len(prom_scrapes)}
            if prom_scrapes else None,
            "prometheus_samples_per_scrape": float(samples[0]["value"][1]) if samples else None,
            "targets": n, "interval": interval, "concurrency": concurrency, "cycles": len(cycle_seconds),
            "cycle_seconds": {"min": min(cycle_seconds), "median": statistics.median(cycle_seconds),
                              "max": max(cycle_seconds)},
            "cpu_seconds_per_cycle_incl_2_scrapes": cpu / len(cycle_seconds),
            "cpu_share_of_one_core": cpu / wall,
            "cpu_seconds_per_scrape": scrape_cpu,
            "succeeded_last_cycle": success,
            "scrape_seconds": {"median": statistics.median(scrapes), "max": max(scrapes)},
            "metrics_bytes": len(text.encode()),
            "rss_mib": end["process_resident_memory_bytes"] / 2**20,
        }
    finally:
        stop_process(proc)
        stop_process(prom)
        server.terminate()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--interval", default="15s")
    parser.add_argument("--cycles", type=int, default=4)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[200])
    parser.add_argument("--http-only", action="store_true", help="every target an HTTP GET (no TCP connects)")
    args = parser.parse_args()
    for c in args.concurrency:
        print(json.dumps(run(args.targets, args.interval, args.cycles, c, args.http_only)), flush=True)


if __name__ == "__main__":
    main()
