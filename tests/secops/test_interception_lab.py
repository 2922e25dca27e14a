"""Interception on the lab's own boundary firewalls (root, slow; uses the session's lab).

Scenario "an sshd exposed by mistake": the lab's zone policy lets nobody from the internet reach DMZ
tcp/22 (the 等保 policy pack refuses such a flow), so the `exposed_sshd` fixture (tests/conftest.py,
shared with the console's lab test) opens that exposure for the production center's DMZ host — one
accept rule placed right after the firewall's blocked-set drops, so a ban still wins — and removes it
afterwards. An attacker namespace (the `attacker` fixture) joins the internet where the lab's internet
traffic enters (the wan router's internet bridge) and brute-forces the host's real sshd with password
logins. `govctl secops run --stack lab` tails that host's own sshd log and fills the timed sets of every
center's firewall, all named by the stack outputs. The lab's ops workstation doing the same is never
blocked.
"""
from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from secops.stack import LAB_SSHD_LOG
from secops.store import Store
from tests.secops.testbed import ElementMonitor, attack_until_blocked, ssh_banner, ssh_password_attempts, wait_for
from tests.conftest import GOVCTL, lab_block_sets

pytestmark = [pytest.mark.slow, pytest.mark.root]
GOAL_SECONDS = 0.25  # the goal: p99 from the attacking log line to the set element


class _Daemon:
    """`govctl secops run --stack lab` as a user starts it; its stderr is kept for failure messages."""

    def __init__(self, cfg: Path):
        self.lines: list[str] = []
        self.proc = subprocess.Popen([str(GOVCTL), "secops", "run", "--stack", "lab", "--config", str(cfg),
                                      "--enforce"], stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


class _LineWatch:
    """When each of the attacker's failed-login lines appeared in the host's sshd log (1 ms polling)."""

    def __init__(self, path: Path, address: str):
        self.times: list[float] = []
        self._path, self._needle, self._stop = path, f"Failed password for root from {address} ".encode(), False
        self._offset = path.stat().st_size
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        rest = b""
        while not self._stop:
            with open(self._path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
            if data:
                now = time.monotonic()
                self._offset += len(data)
                lines = (rest + data).split(b"\n")
                rest = lines.pop()
                self.times += [now for line in lines if self._needle in line]
            time.sleep(0.001)

    def stop(self) -> None:
        self._stop = True
        self._thread.join(5)


def test_attacker_is_blocked_on_every_center_firewall_expires_and_ops_never_is(
        tmp_path, lab, exposed_sshd, attacker):
    host, atk = exposed_sshd, attacker
    ops_ns, ops_address = lab["ssh"]["proxy_namespace"], lab["ssh"]["ops_address"]
    sets = lab_block_sets(lab)
    assert all(atk["address"] not in s.blocked() for s in sets.values()), "leftover block from an earlier run"
    assert ssh_banner(atk["namespace"], host["ipv4"]), "the exposed sshd should answer the internet"

    cfg = tmp_path / "secops.yaml"
    cfg.write_text(json.dumps({"store": str(tmp_path / "s.db"), "response": {"ttl": 3, "escalation": 4},
                               "batch": {"lines": 500, "seconds": 0.02}}))
    home_fw = lab["centers"][host["center"]]["firewall"]
    sshd_log = Path(host["folder"]) / LAB_SSHD_LOG
    daemon = _Daemon(cfg)
    lines = elements = None
    try:
        assert wait_for(lambda: any("secops running" in l for l in daemon.lines), 60), daemon.lines
        assert sum("enforcing in" in l for l in daemon.lines) == len(lab["centers"]), daemon.lines

        ssh_password_attempts(ops_ns, host["ipv4"], 6, str(tmp_path), user="root")  # ops does the same
        lines, elements = _LineWatch(sshd_log, atk["address"]), ElementMonitor(home_fw["namespace"], tuple(home_fw["sets"].values()))
        tries = attack_until_blocked(atk["namespace"], atk["address"], host["ipv4"], sets[host["center"]], tmp_path)
        assert tries == 5, f"blocked after {tries} failed logins; the rule says 5\n" + "\n".join(daemon.lines)
        # in the boundary firewall of every center, not only the attacked one
        assert all(atk["address"] in s.blocked() for s in sets.values())
        assert len(lines.times) == 5 and atk["address"] in elements.seen
        latency = elements.seen[atk["address"]] - lines.times[-1]
        assert 0 <= latency <= GOAL_SECONDS, f"{latency * 1000:.0f} ms from the fifth failed login to the block"
        assert not ssh_banner(atk["namespace"], host["ipv4"]), "a blocked attacker still reaches sshd"
        assert ssh_banner(ops_ns, host["ipv4"])
        assert all(ops_address not in s.blocked() for s in sets.values())

        # the kernel lifts the block after the TTL (3 s) by itself; the attacker gets through again
        assert wait_for(lambda: all(atk["address"] not in s.blocked() for s in sets.values()), 15) is not None
        assert ssh_banner(atk["namespace"], host["ipv4"])
        # trying again, it is blocked again at once (its window still holds the failures), for longer
        assert attack_until_blocked(atk["namespace"], atk["address"], host["ipv4"], sets[host["center"]], tmp_path) == 1
        lifted = subprocess.run([str(GOVCTL), "bans", "remove", atk["address"], "--stack", "lab", "--config",
                                 str(cfg), "--reason", "test"], capture_output=True, text=True, timeout=120)
        assert lifted.returncode == 0, lifted.stderr
        assert all(atk["address"] not in s.blocked() for s in sets.values())
        refused = subprocess.run([str(GOVCTL), "bans", "add", ops_address, "--stack", "lab", "--config", str(cfg),
                                  "--reason", "test"], capture_output=True, text=True, timeout=120)
        assert refused.returncode == 2 and "allowlist" in refused.stderr, refused.stderr
    finally:
        for watch in (lines, elements):
            if watch is not None:
                watch.stop()
        daemon.stop()
    store = Store(tmp_path / "s.db")
    rows = store.db.execute("SELECT address, action, ttl, rule FROM decisions ORDER BY id").fetchall()
    store.close()
    assert (ops_address, "allowlisted", None, "ssh_bruteforce_fast") in rows
    assert [(a, t) for a, action, t, _ in rows if action == "block"] == [(atk["address"], 3.0), (atk["address"], 12.0)]
    assert not [r for r in rows if r[0] == ops_address and r[1] == "block"]
