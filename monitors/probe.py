"""The probe exporter: one vantage point probing HTTP(S) and TCP endpoints and pinging (ICMP echo)
addresses, exposed to Prometheus.

Every cycle probes all targets concurrently (bounded by `concurrency`), each under its own timeout,
so a hung endpoint fails on time and never holds up the others. Results are labelled by vantage,
target center and service. The targets file is re-read when it changes: a target that disappears
from it is logged and its series are dropped; an endpoint that disappears from the network
(refused, unreachable, no such name) is reported as failed with that reason. With --netns NS it
probes from that network namespace (the vantage point) while its metrics socket stays where
Prometheus can reach it (see monitors/netns.py).

    python -m monitors.probe --config probe-internet.yaml [--netns gl-internet]
"""
from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import socket
import ssl
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from core.errors import GovctlError

from . import names
from .durations import parse_duration
from .netns import enter as enter_netns
from .specfile import load_document

SCHEMA = Path(__file__).with_name("probe.schema.yaml")
LABELS = ["vantage", "center", "service", "target"]
log = logging.getLogger("govctl.probe")


@dataclass(frozen=True)
class Target:
    name: str
    kind: str  # http | https | tcp | icmp
    center: str
    service: str
    timeout: float
    host: str
    port: int
    path: str = "/"
    expect_status: tuple[int, ...] = ()
    tls_verify: bool = True
    served_by_header: str = ""


@dataclass(frozen=True)
class ProbeConfig:
    source: str
    vantage: str
    listen_host: str
    listen_port: int
    interval: float
    concurrency: int
    targets: tuple[Target, ...]


def _split_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def load_probe_config(path: str | Path) -> ProbeConfig:
    """Read a vantage point's probe configuration; SpecError names file, line and fix."""
    doc = load_document(path, SCHEMA)
    data = doc.data
    default_timeout = parse_duration(data.get("timeout", "5s"))
    interval = parse_duration(data.get("interval", "15s"))
    targets, seen = [], set()
    for i, t in enumerate(data["targets"]):
        p = f"targets[{i}]"
        if t["name"] in seen:
            doc.problem(f"{p}.name", f"duplicate target {t['name']!r}; target names must be unique")
        seen.add(t["name"])
        timeout = parse_duration(t["timeout"]) if "timeout" in t else default_timeout
        if timeout >= interval:
            doc.problem(f"{p}.timeout", f"timeout {timeout:g} s is not shorter than the interval "
                                        f"{interval:g} s; a probe must end before the next cycle")
        if t["kind"] == "icmp":
            if "host" not in t:
                doc.problem(p, "an icmp target needs host: the address to ping")
                continue
            targets.append(Target(t["name"], "icmp", t["center"], t["service"], timeout, t["host"], 0))
            continue
        if t["kind"] == "tcp":
            if "address" not in t:
                doc.problem(p, "a tcp target needs address: HOST:PORT")
                continue
            host, port = _split_address(t["address"])
            targets.append(Target(t["name"], "tcp", t["center"], t["service"], timeout, host, port))
            continue
        if "url" not in t:
            doc.problem(p, f"an {t['kind']} target needs url: {t['kind']}://HOST[:PORT]/PATH")
            continue
        url = urlsplit(t["url"])
        if url.scheme != t["kind"]:
            doc.problem(f"{p}.url", f"the URL scheme {url.scheme!r} does not match kind {t['kind']!r}")
            continue
        targets.append(Target(
            t["name"], t["kind"], t["center"], t["service"], timeout, url.hostname or "",
            url.port or (443 if url.scheme == "https" else 80),
            (url.path or "/") + (f"?{url.query}" if url.query else ""),
            tuple(t.get("expect_status", ())), t.get("tls_verify", True), t.get("served_by_header", "")))
    doc.raise_if_problems()
    host, port = _split_address(data["listen"])
    return ProbeConfig(str(path), data["vantage"], host, port, interval, data.get("concurrency", 100),
                       tuple(targets))


# -- probing ---------------------------------------------------------------------------------------
@dataclass
class Result:
    ok: bool
    seconds: float
    reason: str = ""          # why it failed: timeout, refused, unreachable, dns, tls, status, …
    status: int | None = None
    served_by: str = ""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(exc, socket.gaierror):
        return "dns"
    if isinstance(exc, ssl.SSLError):
        return "tls"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError)):
        return "reset"
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH,
                                                  errno.EADDRNOTAVAIL, errno.ENONET):
        return "unreachable"
    return "error"


async def _http_exchange(t: Target) -> Result:
    context = None
    if t.kind == "https":
        context = ssl.create_default_context()
        if not t.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection(t.host, t.port, ssl=context,
                                                   server_hostname=t.host if context else None)
    try:
        host = f"[{t.host}]" if ":" in t.host else t.host
        writer.write(f"GET {t.path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: govctl-probe\r\n"
                     "Connection: close\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
    finally:
        writer.close()
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return Result(False, 0, "protocol")
    status = int(parts[1])
    served_by = ""
    if t.served_by_header:
        wanted = t.served_by_header.lower()
        served_by = next((line.split(":", 1)[1].strip() for line in lines[1:]
                          if line.lower().startswith(wanted + ":")), "")
    ok = status in t.expect_status if t.expect_status else 200 <= status < 400
    return Result(ok, 0, "" if ok else "status", status, served_by)


async def _tcp_connect(t: Target) -> Result:
    _, writer = await asyncio.open_connection(t.host, t.port)
    writer.close()
    return Result(True, 0)


async def _icmp_echo(t: Target) -> Result:
    """One echo request (a raw socket: the exporter runs as root to enter its namespace). icmplib
    rather than our own packet code: it matches replies to requests and handles IPv4 and IPv6."""
    import icmplib

    # a little under the probe's own timeout, so a lost echo reads "no_reply", not "timeout"
    reply = await icmplib.async_ping(t.host, count=1, timeout=t.timeout * 0.9, privileged=True)
    return Result(True, 0) if reply.is_alive else Result(False, 0, "no_reply")


_EXCHANGES = {"tcp": _tcp_connect, "icmp": _icmp_echo, "http": _http_exchange, "https": _http_exchange}


async def probe(t: Target) -> Result:
    """One probe under its timeout; never raises."""
    start = time.monotonic()
    try:
        result = await asyncio.wait_for(_EXCHANGES[t.kind](t), timeout=t.timeout)
    except Exception as exc:  # every failure is a result with a reason, never a crash of the cycle
        result = Result(False, 0, _reason(exc))
    result.seconds = time.monotonic() - start
    return result


# -- the exporter ----------------------------------------------------------------------------------
@dataclass
class State:
    """The latest cycle, swapped in whole so a scrape never sees half a cycle."""
    config: ProbeConfig
    results: dict[str, Result] = field(default_factory=dict)
    failures: dict[tuple[str, str], int] = field(default_factory=dict)  # (target, reason) → count
    cycle_seconds: float = 0.0
    last_cycle: float = 0.0
    cycles: int = 0
    overruns: int = 0


class ProbeCollector:
    def __init__(self, state_ref: list[State]):
        self.state_ref = state_ref

    def collect(self):
        st = self.state_ref[0]
        cfg = st.config
        success = GaugeMetricFamily(names.PROBE_SUCCESS, "1 when the probe succeeded", labels=LABELS)
        duration = GaugeMetricFamily(names.PROBE_DURATION, "Seconds the probe took", labels=LABELS)
        status = GaugeMetricFamily(names.PROBE_HTTP_STATUS, "HTTP status of the probe", labels=LABELS)
        served = GaugeMetricFamily(names.PROBE_SERVED_BY, "Center named by the served-by header",
                                   labels=[*LABELS, "served_by"])
        failures = CounterMetricFamily(names.PROBE_FAILURES.removesuffix("_total"),
                                       "Failed probes by reason", labels=[*LABELS, "reason"])
        for t in cfg.targets:
            r = st.results.get(t.name)
            if r is None:
                continue  # not probed yet: no sample rather than a made-up one
            labels = [cfg.vantage, t.center, t.service, t.name]
            success.add_metric(labels, 1.0 if r.ok else 0.0)
            duration.add_metric(labels, r.seconds)
            if r.status is not None:
                status.add_metric(labels, r.status)
            if r.served_by:
                served.add_metric([*labels, r.served_by], 1.0)
        by_name = {t.name: t for t in cfg.targets}
        for (name, reason), count in st.failures.items():
            t = by_name.get(name)
            if t is not None:
                failures.add_metric([cfg.vantage, t.center, t.service, name, reason], count)
        yield from (success, duration, status, served, failures)
        yield GaugeMetricFamily(names.PROBE_CYCLE_SECONDS, "Seconds the last probe cycle took",
                                value=st.cycle_seconds)
        yield GaugeMetricFamily(names.PROBE_CYCLE_TARGETS, "Targets in the probe cycle",
                                value=len(cfg.targets))
        yield GaugeMetricFamily(names.PROBE_LAST_CYCLE, "Unix time the last cycle ended",
                                value=st.last_cycle)
        yield CounterMetricFamily("govctl_probe_cycle_overruns", "Cycles that took longer than the "
                                  "interval", value=st.overruns)


class ProbeExporter:
    def __init__(self, config_path: Path):
        self.config_path = config_path
        self.config = load_probe_config(config_path)
        self.mtime = config_path.stat().st_mtime
        self.state = [State(self.config)]

    def reload_if_changed(self) -> None:
        try:
            mtime = self.config_path.stat().st_mtime
        except OSError as exc:
            log.error("cannot read %s (%s); keeping the targets I have", self.config_path, exc.strerror)
            return
        if mtime == self.mtime:
            return
        self.mtime = mtime
        try:
            new = load_probe_config(self.config_path)
        except Exception as exc:  # a broken edit keeps the last good targets probing
            log.error("not reloading: %s", exc)
            return
        gone = {t.name for t in self.config.targets} - {t.name for t in new.targets}
        for name in sorted(gone):
            log.warning("target %s vanished from %s; its series are dropped", name, self.config_path)
        self.config = new

    async def cycle(self) -> None:
        cfg = self.config
        limit = asyncio.Semaphore(cfg.concurrency)

        async def bounded(t: Target) -> tuple[Target, Result]:
            async with limit:
                return t, await probe(t)

        start = time.monotonic()
        done = await asyncio.gather(*(bounded(t) for t in cfg.targets))
        old = self.state[0]
        failures = {k: v for k, v in old.failures.items() if k[0] in {t.name for t in cfg.targets}}
        results = {}
        for t, r in done:
            results[t.name] = r
            before = old.results.get(t.name)
            if not r.ok:
                failures[(t.name, r.reason)] = failures.get((t.name, r.reason), 0) + 1
            if before is not None and before.ok != r.ok:
                log.warning("%s %s (%s)", t.name, "recovered" if r.ok else "failed", r.reason or "ok")
        elapsed = time.monotonic() - start
        self.state[0] = State(cfg, results, failures, elapsed, time.time(), old.cycles + 1,
                              old.overruns + (elapsed > cfg.interval))

    async def run(self, cycles: int | None = None) -> None:
        while cycles is None or self.state[0].cycles < cycles:
            start = time.monotonic()
            self.reload_if_changed()
            await self.cycle()
            await asyncio.sleep(max(0.0, self.config.interval - (time.monotonic() - start)))


def serve(config_path: Path, netns: str | None = None) -> None:
    exporter = ProbeExporter(config_path)
    registry = CollectorRegistry()
    registry.register(ProbeCollector(exporter.state))
    ProcessCollector(registry=registry)
    cfg = exporter.config
    start_http_server(cfg.listen_port, addr=cfg.listen_host, registry=registry)
    if netns:
        enter_netns(netns)  # after binding: the metrics socket stays outside, probes leave from netns
    log.info("vantage %s: %d targets every %g s from %s, metrics on %s:%d", cfg.vantage,
             len(cfg.targets), cfg.interval, f"namespace {netns}" if netns else "this namespace",
             cfg.listen_host, cfg.listen_port)
    asyncio.run(exporter.run())


def exporter_command(config_path: Path, netns: str | None = None) -> list[str]:
    """The command that runs the exporter, probing from network namespace `netns` when given."""
    command = [sys.executable, "-m", "monitors.probe", "--config", str(config_path)]
    return [*command, "--netns", netns] if netns else command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitors.probe", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, type=Path, help="probe configuration YAML")
    parser.add_argument("--netns", help="probe from this network namespace (ip netns list)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("GOVCTL_LOG", "INFO"),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        serve(args.config, args.netns)
    except KeyboardInterrupt:
        return 0
    except GovctlError as exc:
        log.error("%s", exc)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
