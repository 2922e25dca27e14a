#!/usr/bin/env python3
"""Interception latency: from the attacking log line written to the nftables element present.

usage (root): .venv/bin/python bench/secops_intercept.py [--stack lab] [--attackers 100] [--out results.json]

`govctl secops run` tails an auth log (default batch/poll settings) and enforces:
- with `--stack lab` (the running lab; GOVCTL_LAB_PREFIX as for `govctl lab up`): in the timed sets of
  every center's boundary firewall, named by the stack outputs, with the lab hosts' sshd logs tailed
  as well; the latency is until the element is present in every center's firewall;
- without it: in the namespace testbed's firewall (tests/secops/testbed.py).
For each attacker address it writes four failed logins, a random pause, then the fifth (the line that
crosses `ssh_bruteforce_fast`'s threshold) and times until `nft monitor` reports the element. Writing the
lines itself (instead of real ssh logins, as tests/secops/test_interception_lab.py does once) times
exactly from the line; the addresses (192.0.2.0/24, 198.18.0.0/24) are none of the lab's clients.
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
TTL = 120  # seconds: the bench's blocks leave the firewalls soon after (and are lifted at the end)


def line(ip: str, i: int) -> str:
    stamp = time.strftime("%b %e %H:%M:%S", time.gmtime())
    return f"{stamp} web-1 sshd[9]: Failed password for root from {ip} port {40000 + i} ssh2\n"


def attacker_address(n: int) -> str:
    return f"192.0.2.{n % 250 + 1}" if n < 250 else f"198.18.0.{n % 250 + 1}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--attackers", type=int, default=100)
    ap.add_argument("--stack", help="enforce in this running stack's firewalls (e.g. lab)")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    if (why := can_run()) is not None:
        raise SystemExit(f"bench/secops_intercept.py {why}")
    work = Path(tempfile.mkdtemp(prefix="secops-intercept-"))
    log = work / "auth.log"
    log.write_text("")
    cfg = work / "secops.yaml"
    tb = group = None
    monitors: list[ElementMonitor] = []
    daemon = None
    try:
        config = {"store": str(work / "s.db"), "ops_networks": ["10.20.0.0/16"], "response": {"ttl": TTL}}
        if a.stack:
            from secops.config import load_config
            from secops.wiring import make_enforcer
            from secops.stack import with_stack
            config["stack"] = a.stack
            firewalls = with_stack(load_config(None), a.stack)["enforcer"]["firewalls"]
            watch = [(fw["netns"], (fw["set"], fw["set6"])) for fw in firewalls]
            cfg_for_group = {"enforcer": {"kind": "nftables", "firewalls": firewalls, "manage": False}}
            group = make_enforcer(cfg_for_group)
        else:
            tb = Testbed()
            config["enforcer"] = {"netns": tb.fw, "table": "govctl_bench", "set": "blocklist", "manage": True}
            watch = [(tb.fw, ("blocklist",))]
        cfg.write_text(json.dumps(config))
        daemon = subprocess.Popen([str(GOVCTL), "secops", "run", "--config", str(cfg), "--source", f"auth={log}",
                                   "--enforce"], stderr=subprocess.PIPE, text=True)
        started: list[str] = []
        threading.Thread(target=lambda: [started.append(x) for x in daemon.stderr], daemon=True).start()
        if wait_for(lambda: any("secops running" in x for x in started), 60) is None:
            raise SystemExit("the daemon did not start:\n" + "".join(started))
        monitors = [ElementMonitor(ns, sets) for ns, sets in watch]
        time.sleep(1)
        latencies, first_center = [], []
        rnd = random.Random(5)
        with open(log, "a") as f:
            for n in range(a.attackers):
                ip = attacker_address(n)
                f.write("".join(line(ip, i) for i in range(4)))
                f.flush()
                time.sleep(rnd.uniform(0.1, 0.4))  # random phase against the daemon's poll loop
                t0 = time.monotonic()
                f.write(line(ip, 4))
                f.flush()
                if wait_for(lambda: all(ip in m.seen for m in monitors), 10, interval=0.001) is None:
                    raise SystemExit(f"{ip} was not blocked in every firewall within 10 s")
                latencies.append(max(m.seen[ip] for m in monitors) - t0)
                first_center.append(min(m.seen[ip] for m in monitors) - t0)
        lat = sorted(latencies)

        def pct(values, q):
            values = sorted(values)
            return round(values[min(len(values) - 1, int(round(q * (len(values) - 1))))] * 1000, 1)
        result = {"target": f"stack {a.stack}: {len(monitors)} center firewalls" if a.stack else "namespace testbed",
                  "attackers": a.attackers, "poll_seconds": 0.05,
                  "p50_ms": round(statistics.median(lat) * 1000, 1), "p99_ms": pct(lat, 0.99),
                  "max_ms": round(lat[-1] * 1000, 1), "mean_ms": round(statistics.fmean(lat) * 1000, 1),
                  "load_average_at_end": os.getloadavg()}
        if len(monitors) > 1:
            result["first_firewall_p50_ms"] = round(statistics.median(first_center) * 1000, 1)
            result["first_firewall_p99_ms"] = pct(first_center, 0.99)
        text = json.dumps(result, indent=2)
        print(text)
        if a.out:
            a.out.write_text(text + "\n")
    finally:
        for m in monitors:
            m.stop()
        if daemon is not None:
            daemon.terminate()
            daemon.wait(30)
        if group is not None:  # leave the lab's sets as they were
            group.unblock([attacker_address(n) for n in range(a.attackers)])
        if tb is not None:
            tb.close()
        subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
