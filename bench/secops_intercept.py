#!/usr/bin/env python3
"""Interception latency: from the attacking log line written to the nftables element present.

usage (root): .venv/bin/python bench/secops_intercept.py [--attackers 100] [--out results.json]

Builds the namespace testbed (secops/testbed.py), runs `govctl secops run` tailing an auth log with
the nftables enforcer inside the firewall namespace (default batch/poll settings), and watches the
set with `nft monitor`. For each attacker address it writes four failed logins, then the fifth (the
one that crosses `ssh_bruteforce_fast`'s threshold) and times until `nft monitor` reports the element.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from secops.testbed import Testbed, can_run, wait_for  # noqa: E402

GOVCTL = ROOT / ".venv" / "bin" / "govctl"


def line(ip: str, i: int) -> str:
    stamp = time.strftime("%b %e %H:%M:%S", time.gmtime())
    return f"{stamp} web-1 sshd[9]: Failed password for root from {ip} port {40000 + i} ssh2\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--attackers", type=int, default=100)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    if (why := can_run()) is not None:
        raise SystemExit(f"bench/secops_intercept.py {why}")
    tb = Testbed()
    work = Path(tempfile.mkdtemp(prefix="secops-intercept-"))
    log = work / "auth.log"
    log.write_text("")
    cfg = work / "secops.yaml"
    cfg.write_text(json.dumps({"store": str(work / "s.db"), "ops_networks": ["10.20.0.0/16"],
                               "enforcer": {"netns": tb.fw, "table": "govctl_bench", "set": "blocklist", "manage": True}}))
    daemon = subprocess.Popen([str(GOVCTL), "secops", "run", "--config", str(cfg), "--source", f"auth={log}", "--enforce"],
                              stderr=subprocess.DEVNULL)
    seen: dict[str, float] = {}
    monitor = None
    try:
        ok = wait_for(lambda: subprocess.run(["ip", "netns", "exec", tb.fw, "nft", "list", "set", "inet", "govctl_bench",
                                              "blocklist"], capture_output=True).returncode == 0, 60)
        if ok is None:
            raise SystemExit("the daemon did not create its nftables set")
        monitor = subprocess.Popen(["ip", "netns", "exec", tb.fw, "nft", "monitor", "new", "elements"],
                                   stdout=subprocess.PIPE, text=True)

        def watch() -> None:
            for out in monitor.stdout:
                now = time.monotonic()
                if "blocklist" in out and "{" in out:
                    for ip in out.split("{", 1)[1].split("}")[0].replace(",", " ").split():
                        if ip.count(".") == 3:
                            seen.setdefault(ip, now)
        threading.Thread(target=watch, daemon=True).start()
        time.sleep(1)
        latencies = []
        rnd = random.Random(5)
        with open(log, "a") as f:
            for n in range(a.attackers):
                ip = f"198.51.100.{n % 250 + 1}" if n < 250 else f"203.0.113.{n % 250 + 1}"
                f.write("".join(line(ip, i) for i in range(4)))
                f.flush()
                time.sleep(rnd.uniform(0.1, 0.4))  # random phase against the daemon's poll loop
                t0 = time.monotonic()
                f.write(line(ip, 4))
                f.flush()
                if wait_for(lambda: ip in seen, 10, interval=0.001) is None:
                    raise SystemExit(f"{ip} was not blocked within 10 s")
                latencies.append(seen[ip] - t0)
        lat = sorted(latencies)
        result = {"attackers": a.attackers, "poll_seconds": 0.05,
                  "p50_ms": round(statistics.median(lat) * 1000, 1),
                  "p99_ms": round(lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))] * 1000, 1),
                  "max_ms": round(lat[-1] * 1000, 1), "mean_ms": round(statistics.fmean(lat) * 1000, 1),
                  "load_average": os.getloadavg()}
        text = json.dumps(result, indent=2)
        print(text)
        if a.out:
            a.out.write_text(text + "\n")
    finally:
        if monitor is not None:
            monitor.kill()
        daemon.terminate()
        daemon.wait(30)
        tb.close()
        subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
