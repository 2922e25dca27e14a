"""Thin, idempotent operations on this machine's kernel objects for the lab: network namespaces,
links, addresses, routes, nftables, and processes inside lab hosts. Every function is safe to
repeat; the dynamic providers (providers.py) and `govctl lab` build on these."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from .plan import NS_PREFIX


class LabCommandError(RuntimeError):
    pass


def sh(*cmd: str, check: bool = True, input: str | None = None,
       timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, input=input, timeout=timeout)
    if check and proc.returncode != 0:
        raise LabCommandError(f"{' '.join(cmd)}: {(proc.stderr or proc.stdout).strip()}")
    return proc


# -- namespaces ---------------------------------------------------------------------------
def ns_exists(ns: str) -> bool:
    return Path("/run/netns", ns).exists()


def lab_namespaces() -> list[str]:
    out = sh("ip", "netns", "list", check=False).stdout
    return sorted(line.split()[0] for line in out.splitlines() if line.startswith(NS_PREFIX))


def ns_add(ns: str, router: bool = False) -> None:
    if not ns_exists(ns):
        sh("ip", "netns", "add", ns)
    sh("ip", "-n", ns, "link", "set", "lo", "up")
    # A link that goes down and up again keeps its IPv6 addresses (as IPv4 does).
    sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.keep_addr_on_down=1")
    if router:
        for key, value in (("net.ipv4.ip_forward", "1"), ("net.ipv6.conf.all.forwarding", "1"),
                           ("net.ipv4.conf.all.ignore_routes_with_linkdown", "1"),
                           ("net.ipv6.conf.all.ignore_routes_with_linkdown", "1")):
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"{key}={value}")


def ns_pids(ns: str) -> list[int]:
    out = sh("ip", "netns", "pids", ns, check=False).stdout
    return [int(p) for p in out.split()]


def ns_delete(ns: str) -> None:
    if not ns_exists(ns):
        return
    for pid in ns_pids(ns):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    sh("ip", "netns", "del", ns, check=False)


# -- links and addresses ------------------------------------------------------------------
def link_exists(ns: str, name: str) -> bool:
    return ns_exists(ns) and sh("ip", "-n", ns, "link", "show", name, check=False).returncode == 0


def set_addresses(ns: str, dev: str, addrs) -> None:
    for addr in addrs:
        extra = ["nodad"] if ":" in addr else []
        sh("ip", "-n", ns, "addr", "replace", addr, "dev", dev, *extra)


def bridge_add(ns: str, name: str, addrs) -> None:
    if not link_exists(ns, name):
        sh("ip", "-n", ns, "link", "add", name, "type", "bridge")
    set_addresses(ns, name, addrs)
    sh("ip", "-n", ns, "link", "set", name, "up")


def veth_add(ns_a: str, if_a: str, ns_b: str, if_b: str, bridge_a: str | None,
             addrs_a, addrs_b) -> None:
    if not link_exists(ns_a, if_a):
        if link_exists(ns_b, if_b):  # half of an old pair: remove it and start again
            sh("ip", "-n", ns_b, "link", "del", if_b, check=False)
        sh("ip", "-n", ns_a, "link", "add", if_a, "type", "veth", "peer", "name", if_b,
           "netns", ns_b)
    if bridge_a:
        sh("ip", "-n", ns_a, "link", "set", if_a, "master", bridge_a)
    set_addresses(ns_a, if_a, addrs_a)
    set_addresses(ns_b, if_b, addrs_b)
    sh("ip", "-n", ns_a, "link", "set", if_a, "up")
    sh("ip", "-n", ns_b, "link", "set", if_b, "up")


def link_delete(ns: str, name: str) -> None:
    if link_exists(ns, name):
        sh("ip", "-n", ns, "link", "del", name, check=False)


# -- routes -------------------------------------------------------------------------------
def _family(route_args: list[str]) -> str:
    via = route_args[route_args.index("via") + 1] if "via" in route_args else route_args[0]
    return "-6" if ":" in via else "-4"


def route_replace(ns: str, args: list[str]) -> None:
    sh("ip", _family(args), "-n", ns, "route", "replace", *args)


def route_present(ns: str, args: list[str]) -> bool:
    if not ns_exists(ns):
        return False
    if "nexthop" in args:  # `ip route show` takes no nexthop selector: compare the gateways listed
        cut = args.index("nexthop")
        out = sh("ip", _family(args), "-n", ns, "route", "show", *args[:cut], check=False).stdout
        listed = {w for line in out.splitlines() for w in [line.split("via ")[-1].split()[0]]
                  if "via " in line}
        wanted = {args[i + 2] for i in range(cut, len(args), 3)}
        return listed == wanted
    out = sh("ip", _family(args), "-n", ns, "route", "show", *args, check=False).stdout
    return bool(out.strip())


def route_delete(ns: str, args: list[str]) -> None:
    if ns_exists(ns):
        sh("ip", _family(args), "-n", ns, "route", "del", *args, check=False)


# -- nftables -----------------------------------------------------------------------------
def nft(ns: str, *args: str, input: str | None = None, check: bool = True):
    return sh("ip", "netns", "exec", ns, "nft", *args, input=input, check=check)


def nft_table_exists(ns: str, table: str) -> bool:
    return ns_exists(ns) and nft(ns, "list", "table", "inet", table, check=False).returncode == 0


def nft_apply(ns: str, table: str, ruleset: str) -> None:
    """Load the ruleset, replacing the rules of its chains but keeping set elements (bans)."""
    script = ruleset
    if nft_table_exists(ns, table):
        chains = json.loads(nft(ns, "-j", "list", "table", "inet", table).stdout)["nftables"]
        flush = [f"flush chain inet {table} {c['chain']['name']}" for c in chains if "chain" in c]
        script = "\n".join(flush) + "\n" + ruleset
    nft(ns, "-f", "-", input=script)


# -- lab hosts ----------------------------------------------------------------------------
def host_exec(init_pid: int, *cmd: str, user: str | None = None, input: str | None = None,
              check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a command inside a lab host (its namespaces and root filesystem)."""
    inner = list(cmd)
    if user:
        inner = ["runuser", "-u", user, "--", *inner]
    return sh("nsenter", "-t", str(init_pid), "-m", "-u", "-n", "-p", "-i", "-r", "-w",
              "env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
              "LANG=C.UTF-8", *inner, check=check, input=input, timeout=timeout)


def pid_alive(pid: int, marker: str) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise LabCommandError(f"timed out after {timeout:.0f} s waiting for {what}")


def child_pid(pid: int) -> int | None:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None
