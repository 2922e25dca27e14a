"""Shared test helpers: run the real `govctl` entry point in a subprocess, isolated state."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Wide output for every govctl the tests run: messages that name a temp path (longer under pytest-xdist's
# per-worker folders) are checked whole, and an 80-column terminal would wrap them.
os.environ["COLUMNS"] = "200"
GOVCTL = ROOT / ".venv" / "bin" / "govctl"


def run_govctl(*args: str, env: dict | None = None, timeout: float = 600,
               input: str | None = None) -> subprocess.CompletedProcess:
    """Run govctl as a user would; returns the completed process (never raises on exit code)."""
    return subprocess.run([str(GOVCTL), *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=timeout, input=input)


@pytest.fixture
def isolated_state(tmp_path) -> dict:
    """Environment that points govctl's state (Pulumi backend, keys, stores) at a temp folder."""
    state = tmp_path / "state"
    state.mkdir()
    return {"GOVCTL_STATE": str(state)}


def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("this test needs root (network namespaces, nftables); run the suite as root")


__all__ = ["GOVCTL", "ROOT", "isolated_state", "needs_root", "run_govctl", "sys"]


@pytest.fixture(scope="session")
def lab() -> dict:
    """The running lab's stack outputs (brings the lab up once per session; idempotent).

    Tests that use it are `slow` and `root`. Only tests/infra/lab/test_zz_down.py takes the lab down,
    and the collection hook below runs it after every other test.
    """
    needs_root()
    proc = run_govctl("lab", "up", "--json", timeout=1200)
    assert proc.returncode == 0, f"govctl lab up failed:\n{proc.stderr[-4000:]}"
    import json as _json

    outputs = run_govctl("infra", "outputs", "--stack", "lab")
    assert outputs.returncode == 0, outputs.stderr
    return _json.loads(outputs.stdout)


def pytest_collection_modifyitems(config, items):
    """Tests marked `lab_teardown` run last: they destroy the lab the others share."""
    items.sort(key=lambda item: item.get_closest_marker("lab_teardown") is not None)


@pytest.fixture(scope="module")
def lab_monitoring(lab, tmp_path_factory):
    """The real monitoring stack on the lab, SLO windows scaled down (window_scale 60, 1 s
    interval) so that one test's outage does not page into the next."""
    text = (ROOT / "monitors" / "slo.yaml").read_text()
    assert "window_scale: 1 " in text and "interval: 5s " in text
    spec = tmp_path_factory.mktemp("slo") / "slo-drills.yaml"
    spec.write_text(text.replace("window_scale: 1 ", "window_scale: 60 ")
                    .replace("interval: 5s ", "interval: 1s "))
    up = run_govctl("monitor", "up", "--stack", "lab", "--spec", str(spec), timeout=600)
    assert up.returncode == 0, up.stderr[-3000:]
    yield spec
    down = run_govctl("monitor", "down", timeout=300)
    assert down.returncode == 0, down.stderr[-3000:]


# ---------------------------------------------------------------- Elasticsearch (slow tier)
# One real single-node Elasticsearch per test session, shared by tests/es and the store-parametrized
# SecOps tests (defined here so both folders use the same node).
@pytest.fixture(scope="session")
def es_node():
    """`govctl es up` on a temp folder (reachable by the unprivileged service user); `down` at the end."""
    home = Path(tempfile.mkdtemp(prefix="govctl-es-test-"))
    os.chmod(home, 0o755)
    proc = run_govctl("es", "up", "--home", str(home), "--heap", "512", "--json", timeout=300)
    assert proc.returncode == 0, f"govctl es up failed:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    info = json.loads(proc.stdout)
    yield {"home": home, **info}
    down = run_govctl("es", "down", "--home", str(home), "--json", timeout=120)
    shutil.rmtree(home, ignore_errors=True)
    assert down.returncode == 0, down.stderr


@pytest.fixture
def es_section(es_node, tmp_path) -> dict:
    """Settings for one test: its own index prefix and spool, fast retries."""
    section = dict(es_node["secops_config"]["elasticsearch"])
    section.update(index_prefix=f"t{uuid.uuid4().hex[:10]}", spool=str(tmp_path / "spool"),
                   bulk={"retry_seconds": 2.0, "probe_seconds": 0.5, "max_in_flight": 2},
                   detection={"overlap_seconds": 30.0, "interval_seconds": 1.0})
    return section


# ---------------------------------------------------------------- an attacker against the lab
# Scenario "an sshd exposed by mistake", shared by tests/secops/test_interception_lab.py (the daemon's
# interception) and tests/services/test_console_on_lab.py (the console on `govctl up`'s platform).
# The lab's zone policy lets nobody from the internet reach DMZ tcp/22 (the 等保 policy pack refuses
# such a flow), so `exposed_sshd` opens that exposure for the production center's DMZ host — one accept
# rule placed right after the firewall's blocked-set drops, so a ban still wins — and removes it after.
# `attacker` is a namespace on the internet, joined where the lab's internet traffic enters (the wan
# router's internet bridge); tests/secops/testbed.py's ssh_password_attempts brute-forces from it.
EXPOSURE = "test: sshd exposed by mistake"


def lab_nft(ns: str, *args: str) -> str:
    """`nft ARGS` in network namespace `ns`; its output."""
    return subprocess.run(["ip", "netns", "exec", ns, "nft", *args], check=True, capture_output=True,
                          text=True).stdout


def _lab_internet():
    from infra.engine import StackDefinition
    from infra.topology import load_topology
    topo = load_topology(StackDefinition.load("lab").topology)
    return next(o.ipv4 for o in topo.outside if o.name == "internet")


@pytest.fixture()
def dmz_host(lab) -> dict:
    """The production center's internet-DMZ host (its stack output)."""
    production = next(c for c, spec in lab["centers"].items() if spec["role"] == "production")
    return next(h for h in lab["hosts"] if h["center"] == production and h["zone_kind"] == "internet_dmz")


@pytest.fixture()
def exposed_sshd(lab, dmz_host):
    """internet → the DMZ host's tcp/22 accepted, right after the rules that drop blocked sources (the
    address sets and their range sets)."""
    import re
    from infra.lab.plan import RANGE_SET_SUFFIX
    needs_root()
    fw = lab["centers"][dmz_host["center"]]["firewall"]
    ns, table = fw["namespace"], fw["table"]
    chain = lab_nft(ns, "-a", "list", "chain", fw["family"], table, "forward")
    sets = [name for s in fw["sets"].values() for name in (s, s + RANGE_SET_SUFFIX)]
    set_drops = [int(m.group(1)) for line in chain.splitlines()
                 if any(f"@{s} " in line for s in sets) and " drop " in line
                 for m in [re.search(r"# handle (\d+)", line)] if m]
    assert len(set_drops) == 4, f"the forward chain should drop every blocked set first:\n{chain}"
    lab_nft(ns, "add", "rule", fw["family"], table, "forward", "position", str(max(set_drops)),
            "ip", "saddr", str(_lab_internet()), "ip", "daddr", dmz_host["ipv4"], "tcp", "dport", "22",
            "accept", "comment", f'"{EXPOSURE}"')
    try:
        rules = [line.strip() for line in lab_nft(ns, "-a", "list", "chain", fw["family"], table,
                                                  "forward").splitlines() if "# handle" in line]
        order = [i for i, r in enumerate(rules) if EXPOSURE in r or " drop " in r and "@blocked" in r]
        assert EXPOSURE in rules[order[-1]] and len(order) == 5, rules  # bans come first
        yield dmz_host
    finally:
        for line in lab_nft(ns, "-a", "list", "chain", fw["family"], table, "forward").splitlines():
            if EXPOSURE in line:
                lab_nft(ns, "delete", "rule", fw["family"], table, "forward", "handle",
                        re.search(r"# handle (\d+)", line).group(1))


@pytest.fixture()
def attacker_host_number() -> int:
    """The attacker's host number in the internet network (the lab's client is 10, the gateway 1); a
    module overrides it to attack from an address that earlier runs' detections know nothing of."""
    return 66


@pytest.fixture()
def attacker(lab, attacker_host_number):
    """A namespace on the internet, joined to the wan router's internet bridge like the lab's client."""
    from infra.lab.plan import NS_PREFIX, ifname

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    needs_root()
    net = _lab_internet()
    ns, wan = f"{NS_PREFIX}attacker", lab["service"]["route_namespace"]
    address, gateway = str(net.network_address + attacker_host_number), str(net.network_address + 1)
    peer = ifname("c-", "attacker")  # beside the lab's own clients (c-internet, c-egov-net)
    bridge = ifname("o-", "internet")
    # A Linux bridge takes the lowest MAC of its ports unless one was set: pin the current one, else the
    # attacker's port joining or leaving can change it and leave the lab's client with a stale ARP entry
    # for its gateway (the portal check of the next `govctl lab up` failed for a few seconds).
    mac = json.loads(subprocess.run(["ip", "-j", "-n", wan, "link", "show", bridge], check=True,
                                    capture_output=True, text=True).stdout)[0]["address"]
    ip("-n", wan, "link", "set", bridge, "address", mac)
    ip("netns", "add", ns)
    try:
        ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", peer, "netns", wan)
        ip("-n", wan, "link", "set", peer, "master", bridge, "up")
        ip("-n", ns, "addr", "add", f"{address}/{net.prefixlen}", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "route", "add", "default", "via", gateway)
        yield {"namespace": ns, "address": address}
    finally:
        # A connection cut by a block leaves an orphaned socket retrying its FIN for minutes, and it
        # keeps the namespace (and so the veth pair) alive after `netns delete`: close the sockets and
        # take the wan end down explicitly, so the next run can add the pair again.
        subprocess.run(["ip", "netns", "exec", ns, "ss", "-K", "state", "all"], capture_output=True)
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        subprocess.run(["ip", "-n", wan, "link", "delete", peer], capture_output=True)  # gone already: fine


def lab_block_sets(lab) -> dict:
    """Each center's blocked sets in its boundary firewall (named by the stack outputs), by center."""
    from infra.outputs import StackOutputs
    from secops.respond import NftablesEnforcer
    from secops.stack import targets_from_outputs
    firewalls = targets_from_outputs(StackOutputs.from_dict(lab), "lab")["firewalls"]
    return {fw["center"]: NftablesEnforcer(table=fw["table"], set_name=fw["set"], family=fw["family"],
                                           netns=fw["netns"], set6=fw["set6"]) for fw in firewalls}
