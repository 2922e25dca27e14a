#!/usr/bin/env python3
"""Interception latency: from the attacking log line written to the nftables element present.

usage (root): .venv/bin/python bench/secops_intercept.py [--stack lab] [--attackers 100] [--out results.json]
              [--centers 3] [--preload 100000] [--poll]

`govctl secops run` tails an auth log (default batch/poll settings) and enforces:
- with `--stack lab` (the running lab; GOVCTL_LAB_PREFIX as for `govctl lab up`): in the timed sets of
  every center's boundary firewall, named by the stack outputs, with the lab hosts' sshd logs tailed
  as well; the latency is until the element is present in every center's firewall;
- without it: in the namespace testbed's firewall (tests/secops/testbed.py), or with `--centers N` in
  N firewall namespaces of its own, each with the enforcer's table and sets (as `--stack` has one per
  center), filled together.
`--preload N` first fills every center's sets with N elements (public addresses outside the attackers'
ranges, 1 h timeout), through the enforcer's own `block` in batches of PRELOAD_BATCH as the daemon would,
with the nft processes in a memory cgroup of their own: the kernel memory the sets took is that
cgroup's `memory.kmem.usage_in_bytes` (cgroup v1; nf_tables charges set elements to the memory cgroup of
the process that added them). `--poll` turns the daemon's inotify wake-up off (`batch.inotify: false`).
For each attacker address it writes four failed logins, a random pause, then the fifth (the line that
crosses `ssh_bruteforce_fast`'s threshold) and times until the kernel's notification of the element (nf_tables' netlink group, what
`nft monitor` reads; testbed.SetElementListener) — `nft monitor` itself falls behind with a preloaded set. Writing the
lines itself (instead of real ssh logins, as tests/secops/test_interception_lab.py does once) times
exactly from the line; the addresses (192.0.2.0/24, 198.18.0.0/24) are none of the lab's clients.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.secops.testbed import SetElementListener, Testbed, can_run, wait_for  # noqa: E402

GOVCTL = ROOT / ".venv" / "bin" / "govctl"
TTL = 120  # seconds: the bench's blocks leave the firewalls soon after (and are lifted at the end)
PRELOAD_BATCH = 10_000  # elements per nft invocation while preloading
MEMCG_ROOT = Path("/sys/fs/cgroup/memory")


def line(ip: str, i: int) -> str:
    stamp = time.strftime("%b %e %H:%M:%S", time.gmtime())
    return f"{stamp} web-1 sshd[9]: Failed password for root from {ip} port {40000 + i} ssh2\n"


def attacker_address(n: int) -> str:
    return f"192.0.2.{n % 250 + 1}" if n < 250 else f"198.18.0.{n % 250 + 1}"


def preload_address(n: int) -> str:
    """The n-th preloaded element: 45.0.0.0/8 and up, none of the attackers' 192.0.2.0/24, 198.18.0.0/24."""
    return f"{45 + (n >> 24)}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


class MemoryCgroup:
    """A cgroup v1 memory group of its own; `nft_in(netns)` is an nft command that runs inside it and
    in that network namespace (joined before `ip netns exec`, whose private /sys hides the cgroup files)."""

    def __init__(self, work: Path):
        self.work = work
        self.path = MEMCG_ROOT / f"govctl-intercept-{os.getpid()}"
        self.path.mkdir()

    def nft_in(self, netns: str) -> str:
        wrapper = self.work / f"nft-{netns}"
        wrapper.write_text(f"#!/bin/sh\necho $$ > {self.path}/cgroup.procs || exit 1\n"
                           f"exec ip netns exec {netns} nft \"$@\"\n")
        wrapper.chmod(0o755)
        return str(wrapper)

    def kmem(self) -> int:
        return int((self.path / "memory.kmem.usage_in_bytes").read_text())

    def close(self) -> None:
        for _ in range(50):  # the last nft may still be leaving the group
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)


def preload(firewalls: list[dict], count: int, work: Path) -> dict:
    """Fill every firewall's IPv4 set with `count` elements through NftablesEnforcer.block."""
    from secops.respond import NftablesEnforcer
    memcg = MemoryCgroup(work) if (MEMCG_ROOT / "memory.kmem.usage_in_bytes").exists() else None
    try:
        before = memcg.kmem() if memcg else None
        t0 = time.monotonic()
        for fw in firewalls:
            enforcer = NftablesEnforcer(table=fw["table"], set_name=fw["set"], family=fw["family"],
                                        **({"nft": memcg.nft_in(fw["netns"])} if memcg else {"netns": fw["netns"]}))
            for start in range(0, count, PRELOAD_BATCH):
                items = [(preload_address(n), 3600) for n in range(start, min(count, start + PRELOAD_BATCH))]
                if refused := enforcer.block(items):
                    raise SystemExit(f"preload: nft refused {len(refused)} elements, e.g. {refused[0]}")
        seconds = time.monotonic() - t0
        for fw in firewalls:  # every element is there
            out = subprocess.run(["ip", "netns", "exec", fw["netns"], "nft", "-j", "list", "set", fw["family"],
                                  fw["table"], fw["set"]], capture_output=True, text=True, check=True).stdout
            held = sum(len(x.get("set", {}).get("elem", []) or []) for x in json.loads(out)["nftables"])
            if held != count:
                raise SystemExit(f"preload: {fw['netns']} holds {held} elements, not {count}")
        result = {"preloaded_per_center": count, "preload_seconds": round(seconds, 1)}
        if memcg:
            used = memcg.kmem() - before
            result["sets_kernel_memory_mib"] = round(used / 2**20, 1)
            result["kernel_bytes_per_element"] = round(used / (count * len(firewalls)))
        return result
    finally:
        if memcg:
            memcg.close()


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(round(q * (len(values) - 1))))] * 1000, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--attackers", type=int, default=100)
    ap.add_argument("--stack", help="enforce in this running stack's firewalls (e.g. lab)")
    ap.add_argument("--centers", type=int, default=1, help="without --stack: this many firewall namespaces")
    ap.add_argument("--preload", type=int, default=0, help="elements in every center's set before the attacks")
    ap.add_argument("--poll", action="store_true", help="the daemon polls its inputs (batch.inotify: false)")
    ap.add_argument("--set-type", choices=["hash", "interval"], default="hash",
                    help="the bench's own sets: hash (what the enforcer creates) or interval (address ranges)")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up (namespaces, daemon) when stopped
    if (why := can_run()) is not None:
        raise SystemExit(f"bench/secops_intercept.py {why}")
    if a.preload and a.stack:
        raise SystemExit("bench/secops_intercept.py: --preload fills the bench's own firewalls; leave out --stack")
    if not 1 <= a.centers <= 10 or a.attackers < 1 or not 0 <= a.preload <= 1_000_000:
        raise SystemExit("bench/secops_intercept.py: --centers 1..10, --attackers ≥ 1, --preload 0..1000000")
    work = Path(tempfile.mkdtemp(prefix="secops-intercept-"))
    log = work / "auth.log"
    log.write_text("")
    cfg = work / "secops.yaml"
    tb = group = None
    namespaces: list[str] = []
    monitors: list[SetElementListener] = []
    daemon = None
    try:
        config = {"store": str(work / "s.db"), "ops_networks": ["10.20.0.0/16"], "response": {"ttl": TTL},
                  "batch": {"inotify": not a.poll}}
        loaded = {}
        if a.stack:
            from secops.config import load_config
            from secops.wiring import make_enforcer
            from secops.stack import with_stack
            config["stack"] = a.stack
            firewalls = with_stack(load_config(None), a.stack)["enforcer"]["firewalls"]
            watch = [(fw["netns"], (fw["set"], fw["set6"])) for fw in firewalls]
            cfg_for_group = {"enforcer": {"kind": "nftables", "firewalls": firewalls, "manage": False}}
            group = make_enforcer(cfg_for_group)
        elif a.centers > 1 or a.preload or a.set_type != "hash":
            from secops.respond import NftablesEnforcer
            tag = os.urandom(3).hex()
            firewalls = []
            for i in range(a.centers):
                namespaces.append(f"gsic-{tag}-{i}")
                subprocess.run(["ip", "netns", "add", namespaces[-1]], check=True)
                firewalls.append({"center": f"c{i}", "netns": namespaces[-1], "family": "inet",
                                  "table": "govctl_bench", "set": "blocklist", "set6": "blocklist6"})
                NftablesEnforcer(table="govctl_bench", netns=namespaces[-1]).ensure()
                if a.set_type == "interval":  # the same sets made again as interval sets (CIDR ranges)
                    subprocess.run(["ip", "netns", "exec", namespaces[-1], "nft", "-f", "-"], check=True, text=True,
                                   input="flush table inet govctl_bench\n"
                                         "delete set inet govctl_bench blocklist\ndelete set inet govctl_bench blocklist6\n"
                                         "add set inet govctl_bench blocklist { type ipv4_addr; flags interval, timeout; }\n"
                                         "add set inet govctl_bench blocklist6 { type ipv6_addr; flags interval, timeout; }\n"
                                         + "".join(f"add rule inet govctl_bench {chain} {ip} saddr @{name} drop\n"
                                                   for chain in ("input", "forward")
                                                   for ip, name in (("ip", "blocklist"), ("ip6", "blocklist6"))))
            if a.preload:
                loaded = preload(firewalls, a.preload, work)
            config["enforcer"] = {"firewalls": firewalls, "manage": False}
            watch = [(fw["netns"], ("blocklist",)) for fw in firewalls]
        else:
            tb = Testbed()
            config["enforcer"] = {"netns": tb.fw, "table": "govctl_bench", "set": "blocklist", "manage": True}
            watch = [(tb.fw, ("blocklist",))]
        cfg.write_text(json.dumps(config))
        daemon = subprocess.Popen([str(GOVCTL), "secops", "run", "--config", str(cfg), "--source", f"auth={log}",
                                   "--enforce"], stderr=subprocess.PIPE, text=True)
        started: list[str] = []
        threading.Thread(target=lambda: [started.append(x) for x in daemon.stderr], daemon=True).start()
        if wait_for(lambda: any("secops running" in x for x in started), 120) is None:
            raise SystemExit("the daemon did not start:\n" + "".join(started))
        monitors = [SetElementListener(ns, names) for ns, names in watch]  # listening once constructed
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
        target = (f"stack {a.stack}: {len(monitors)} center firewalls" if a.stack else
                  f"{len(monitors)} firewall namespace(s)" if namespaces else "namespace testbed")
        result = {"target": target, "attackers": a.attackers, "set_type": a.set_type,
                  "wake": "poll every 0.05 s" if a.poll else
                          ("inotify" if any("by inotify" in x for x in started) else "poll (inotify unavailable)"),
                  **loaded,
                  "p50_ms": round(statistics.median(lat) * 1000, 1), "p95_ms": pct(lat, 0.95),
                  "p99_ms": pct(lat, 0.99),
                  "max_ms": round(lat[-1] * 1000, 1), "mean_ms": round(statistics.fmean(lat) * 1000, 1),
                  "load_average_at_end": os.getloadavg()}
        if len(monitors) > 1:
            result["first_firewall_p50_ms"] = round(statistics.median(first_center) * 1000, 1)
            result["first_firewall_p95_ms"] = pct(first_center, 0.95)
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
        for ns in namespaces:  # the tables and sets go with them
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
