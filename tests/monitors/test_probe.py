"""The probe exporter against real local endpoints: success, hung, refused, vanished, reload."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from monitors.probe import ProbeExporter, exporter_command, load_probe_config
from monitors.specfile import SpecError

from .helpers import HungServer, WebService, free_port, scrape, stop_process, wait_for


def write_config(path: Path, targets: list[dict], port: int, **extra) -> Path:
    path.write_text(yaml.safe_dump({"vantage": "internet", "listen": f"127.0.0.1:{port}",
                                    "interval": "1s", "timeout": "500ms", **extra, "targets": targets}))
    return path


def by_target(samples, name: str) -> dict[str, float]:
    return {s.labels["target"]: s.value for s in samples if s.name == name}


@pytest.fixture
def web():
    service = WebService("prod").start()
    yield service
    service.stop()


@pytest.fixture
def hung():
    server = HungServer()
    yield server
    server.close()


def test_exporter_reports_each_target_and_a_hung_one_fails_on_time(tmp_path, web, hung):
    closed = free_port()
    port = free_port()
    targets = [
        {"name": "web-1.prod", "kind": "http", "url": f"http://127.0.0.1:{web.port}/health",
         "center": "prod", "service": "gov-portal", "served_by_header": "X-Center"},
        {"name": "web-1.prod-bad-path", "kind": "http", "url": f"http://127.0.0.1:{web.port}/missing",
         "center": "prod", "service": "gov-portal"},
        {"name": "db-1.prod", "kind": "tcp", "address": f"127.0.0.1:{web.port}", "center": "prod",
         "service": "database"},
        {"name": "web-1.hung", "kind": "http", "url": f"http://127.0.0.1:{hung.port}/health",
         "center": "samecity", "service": "gov-portal", "timeout": "300ms"},
        {"name": "web-1.gone", "kind": "tcp", "address": f"127.0.0.1:{closed}", "center": "remote",
         "service": "gov-portal"},
    ]
    config = write_config(tmp_path / "probe.yaml", targets, port)
    proc = subprocess.Popen([sys.executable, "-m", "monitors.probe", "--config", str(config)],
                            stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        metrics = wait_for(lambda: (m := scrape(url)) and by_target(m["govctl_probe_success"],
                                                                     "govctl_probe_success") and m,
                           10, "the first probe cycle")
        success = by_target(metrics["govctl_probe_success"], "govctl_probe_success")
        assert success == {"web-1.prod": 1, "web-1.prod-bad-path": 0, "db-1.prod": 1,
                           "web-1.hung": 0, "web-1.gone": 0}
        durations = by_target(metrics["govctl_probe_duration_seconds"], "govctl_probe_duration_seconds")
        assert 0.29 <= durations["web-1.hung"] < 0.45  # its own timeout, not the 500 ms default
        reasons = {(s.labels["target"], s.labels["reason"]) for s in
                   metrics["govctl_probe_failures"] if s.name == "govctl_probe_failures_total"}
        assert {("web-1.hung", "timeout"), ("web-1.gone", "refused"),
                ("web-1.prod-bad-path", "status")} <= reasons
        served = [s.labels for s in metrics["govctl_probe_served_by"]]
        assert served and served[0]["served_by"] == "prod" and served[0]["vantage"] == "internet"
        labels = next(s.labels for s in metrics["govctl_probe_success"]
                      if s.labels["target"] == "db-1.prod")
        assert labels == {"vantage": "internet", "center": "prod", "service": "database",
                          "target": "db-1.prod"}
        cycle = metrics["govctl_probe_cycle_duration_seconds"][0].value
        assert cycle < 1.0  # the hung endpoint did not hold up the cycle

        # the web service stops: its probe fails at the next cycle, the others keep going
        web.stop()
        metrics = wait_for(lambda: (m := scrape(url)) and by_target(
            m["govctl_probe_success"], "govctl_probe_success")["web-1.prod"] == 0 and m, 5,
            "the stopped service to be reported")
        assert by_target(metrics["govctl_probe_success"], "govctl_probe_success")["web-1.hung"] == 0

        # a target removed from the configuration: logged, its series dropped, the rest probed
        time.sleep(0.05)
        write_config(config, [t for t in targets if t["name"] != "web-1.gone"], port)
        wait_for(lambda: "web-1.gone" not in by_target(scrape(url)["govctl_probe_success"],
                                                          "govctl_probe_success"), 5,
                 "the removed target's series to go")
        assert len(by_target(scrape(url)["govctl_probe_success"], "govctl_probe_success")) == 4
    finally:
        stop_process(proc)
    assert "web-1.gone vanished" in proc.stderr.read()


def test_concurrency_is_bounded_and_every_hung_probe_fails(tmp_path, hung):
    targets = [{"name": f"t{i}", "kind": "tcp" if i % 2 else "http", "center": "prod",
                "service": "gov-portal", **({"address": f"127.0.0.1:{hung.port}"} if i % 2 else
                                            {"url": f"http://127.0.0.1:{hung.port}/"})}
               for i in range(20)]
    # tcp probes to a listening socket connect at once; only the 10 http probes hang
    config = write_config(tmp_path / "p.yaml", targets, free_port(), concurrency=5, timeout="200ms")
    exporter = ProbeExporter(config)
    asyncio.run(exporter.cycle())
    state = exporter.state[0]
    assert sum(r.ok for r in state.results.values()) == 10
    assert all(r.reason == "timeout" for r in state.results.values() if not r.ok)
    # 10 hung probes, 5 at a time, 200 ms each: at least two rounds; unbounded it would be one
    assert 0.4 <= state.cycle_seconds < 1.0


def test_bad_config_names_file_and_line(tmp_path):
    path = tmp_path / "probe.yaml"
    head = "vantage: internet\nlisten: 127.0.0.1:9\ninterval: 1s\ntargets:\n"
    path.write_text(head + "  - {name: a, kind: http, url: 'tcp://x:1', center: prod, service: s}\n")
    with pytest.raises(SpecError) as err:
        load_probe_config(path)
    assert f"{path}:5: targets[0].url: 'tcp://x:1' does not match" in str(err.value)
    path.write_text(head + "  - {name: a, kind: http, url: 'http://x:1', center: prod, service: s}\n"
                           "  - {name: b, kind: tcp, center: prod, service: s, timeout: 2s}\n")
    with pytest.raises(SpecError) as err:
        load_probe_config(path)
    text = str(err.value)
    assert f"{path}:6: targets[1]: a tcp target needs address" in text
    assert f"{path}:6: targets[1].timeout: timeout 2 s is not shorter than the interval" in text


def test_exporter_refuses_a_missing_namespace(tmp_path):
    config = write_config(tmp_path / "p.yaml", [], free_port())
    proc = subprocess.run(exporter_command(config, netns="govctl-no-such-ns"), capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 2
    assert "network namespace 'govctl-no-such-ns'" in proc.stderr and "ip netns list" in proc.stderr


@pytest.fixture
def namespace():
    """A network namespace joined to this one by a veth pair on 198.18.254.0/30 (RFC 2544 range)."""
    import os
    ns, host_if, ns_if = f"govctl-t{os.getpid()}", f"gvt{os.getpid()}a", f"gvt{os.getpid()}b"

    def ip(*args):
        subprocess.run(["ip", *args], check=True, capture_output=True)

    ip("netns", "add", ns)
    try:
        ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        ip("link", "set", ns_if, "netns", ns)
        ip("addr", "add", "198.18.254.1/30", "dev", host_if)
        ip("link", "set", host_if, "up")
        ip("-n", ns, "addr", "add", "198.18.254.2/30", "dev", ns_if)
        ip("-n", ns, "link", "set", ns_if, "up")
        ip("-n", ns, "link", "set", "lo", "up")
        yield ns
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.mark.root
def test_exporter_probes_from_inside_a_network_namespace(tmp_path, namespace):
    """As a vantage point: it reaches what its namespace reaches, not the host's loopback, and
    Prometheus scrapes it on the host's loopback (the metrics socket stays outside)."""
    outside = WebService("prod", host="198.18.254.1").start()
    host_only = WebService("prod").start()  # 127.0.0.1 of the host: not visible from the namespace
    port = free_port()
    config = tmp_path / "probe.yaml"
    config.write_text(yaml.safe_dump({
        "vantage": "internet", "listen": f"127.0.0.1:{port}", "interval": "1s", "timeout": "500ms",
        "targets": [
            {"name": "web-1.prod", "kind": "http", "url": f"http://198.18.254.1:{outside.port}/health",
             "center": "prod", "service": "gov-portal"},
            {"name": "host-loopback", "kind": "tcp", "address": f"127.0.0.1:{host_only.port}",
             "center": "prod", "service": "gov-portal"}]}))
    proc = subprocess.Popen(exporter_command(config, netns=namespace), stderr=subprocess.PIPE, text=True)
    try:
        success = wait_for(lambda: by_target(scrape(f"http://127.0.0.1:{port}/metrics")
                                             ["govctl_probe_success"], "govctl_probe_success"),
                           15, "the exporter in the namespace")
        assert success == {"web-1.prod": 1, "host-loopback": 0}
    finally:
        stop_process(proc)
        outside.stop()
        host_only.stop()


@pytest.mark.root
def test_an_icmp_probe_measures_a_link_and_a_cut_link_fails(tmp_path, namespace):
    """A link probe: from the namespace, ping the far end of its veth (only that link reaches it) → 1; set the
    link down (as the drills' cut_link does) → 0 with reason no_reply; back up → 1 again."""
    import os
    port = free_port()
    config = tmp_path / "probe.yaml"
    config.write_text(yaml.safe_dump({
        "vantage": "prod", "listen": f"127.0.0.1:{port}", "interval": "1s", "timeout": "500ms",
        "targets": [{"name": "link:prod-samecity-b", "kind": "icmp", "host": "198.18.254.1",
                     "center": "samecity", "service": "inter-center-link"}]}))
    proc = subprocess.Popen(exporter_command(config, netns=namespace), stderr=subprocess.PIPE, text=True)
    link = f"gvt{os.getpid()}a"  # the host's end of the namespace's veth (the fixture's name)

    def success():
        return by_target(scrape(f"http://127.0.0.1:{port}/metrics")["govctl_probe_success"],
                         "govctl_probe_success").get("link:prod-samecity-b")

    try:
        wait_for(lambda: success() == 1, 15, "the ping across the link")
        subprocess.run(["ip", "link", "set", link, "down"], check=True)
        wait_for(lambda: success() == 0, 15, "the ping to fail once the link is cut")
        failures = scrape(f"http://127.0.0.1:{port}/metrics")["govctl_probe_failures"]
        reasons = {s.labels["reason"] for s in failures if s.name == "govctl_probe_failures_total"}
        assert reasons and reasons <= {"no_reply", "timeout"}, reasons
        subprocess.run(["ip", "link", "set", link, "up"], check=True)
        wait_for(lambda: success() == 1, 15, "the ping to answer again once the link is back")
    finally:
        stop_process(proc)


def test_an_icmp_target_without_an_address_is_refused(tmp_path):
    config = write_config(tmp_path / "p.yaml", [{"name": "link:x", "kind": "icmp", "center": "samecity",
                                                  "service": "inter-center-link"}], free_port())
    with pytest.raises(SpecError) as err:
        load_probe_config(config)
    assert "an icmp target needs host: the address to ping" in str(err.value)
