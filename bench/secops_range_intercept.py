#!/usr/bin/env python3
"""Range ban enforcement time: from the attack line that makes the Nth address of a /24 blocked to the
range's element present in the nftables interval set (the namespace testbed's firewall).

usage (root): .venv/bin/python bench/secops_range_intercept.py [--ranges 30] [--addresses 4] [--out FILE]

`govctl secops run --enforce` tails an auth log with `response.range_bans` on (N = --addresses within
600 s, /24). For each range 198.18.R.0/24 it writes the failed logins of N-1 addresses (each blocked on
its fifth line, waited for), a random pause, then the N-1 first lines of the Nth address and its fifth
line, timed until `nft monitor` reports the element 198.18.R.0/24. The time includes what a range costs
the enforcer: nft refuses the range as overlapping the addresses it covers, which are deleted first.
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
from tests.secops.testbed import ElementMonitor, Testbed, can_run, wait_for  # noqa: E402

GOVCTL = ROOT / ".venv" / "bin" / "govctl"


def line(ip: str, i: int) -> str:
    stamp = time.strftime("%b %e %H:%M:%S", time.gmtime())
    return f"{stamp} web-1 sshd[9]: Failed password for root from {ip} port {40000 + i} ssh2\n"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(round(q * (len(values) - 1))))] * 1000, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ranges", type=int, default=30)
    ap.add_argument("--addresses", type=int, default=4, help="N: distinct attackers of a /24 that ban it")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    if (why := can_run()) is not None:
        raise SystemExit(f"bench/secops_range_intercept.py {why}")
    work = Path(tempfile.mkdtemp(prefix="secops-range-"))
    log = work / "auth.log"
    log.write_text("")
    tb = daemon = monitor = None
    try:
        tb = Testbed()
        (work / "secops.yaml").write_text(json.dumps({
            "store": str(work / "s.db"), "ops_networks": ["10.20.0.0/16"], "topology": None,
            "response": {"ttl": 120, "range_bans": {"enabled": True, "addresses": a.addresses, "window": 600,
                                                    "prefix_v4": 24, "ttl": 120}},
            "enforcer": {"netns": tb.fw, "table": "govctl_rbench", "set": "blocklist", "manage": True}}))
        daemon = subprocess.Popen([str(GOVCTL), "secops", "run", "--config", str(work / "secops.yaml"),
                                   "--source", f"auth={log}", "--enforce"], stderr=subprocess.PIPE, text=True)
        said: list[str] = []
        threading.Thread(target=lambda: [said.append(x) for x in daemon.stderr], daemon=True).start()
        if wait_for(lambda: any("secops running" in x for x in said), 60) is None:
            raise SystemExit("the daemon did not start:\n" + "".join(said))
        monitor = ElementMonitor(tb.fw, ("blocklist",))
        time.sleep(1)
        latencies = []
        rnd = random.Random(18)
        with open(log, "a") as f:
            for r in range(a.ranges):
                first = [f"198.18.{r}.{10 + k}" for k in range(a.addresses - 1)]
                f.write("".join(line(ip, i) for ip in first for i in range(5)))
                f.flush()
                if wait_for(lambda: all(ip in monitor.seen for ip in first), 10) is None:
                    raise SystemExit(f"the first {len(first)} addresses of 198.18.{r}.0/24 were not blocked in 10 s")
                last = f"198.18.{r}.200"
                f.write("".join(line(last, i) for i in range(4)))
                f.flush()
                time.sleep(rnd.uniform(0.1, 0.4))  # random phase against the daemon's poll loop
                t0 = time.monotonic()
                f.write(line(last, 4))
                f.flush()
                target = f"198.18.{r}.0/24"
                if wait_for(lambda: target in monitor.seen, 10, interval=0.001) is None:
                    raise SystemExit(f"{target} was not in the set within 10 s")
                latencies.append(monitor.seen[target] - t0)
        result = {"target": "namespace testbed, interval set", "ranges": a.ranges, "addresses_per_range": a.addresses,
                  "p50_ms": round(statistics.median(latencies) * 1000, 1), "p95_ms": pct(latencies, 0.95),
                  "max_ms": round(max(latencies) * 1000, 1), "mean_ms": round(statistics.fmean(latencies) * 1000, 1),
                  "load_average_at_end": os.getloadavg()}
        text = json.dumps(result, indent=2)
        print(text)
        if a.out:
            a.out.write_text(text + "\n")
    finally:
        if monitor is not None:
            monitor.stop()
        if daemon is not None:
            daemon.terminate()
            daemon.wait(30)
        if tb is not None:
            tb.close()
        subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
