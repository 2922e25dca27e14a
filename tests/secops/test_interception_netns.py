"""Interception for real (root, slow): an attacker namespace brute-forces a real OpenSSH server in the
firewall namespace; sshd's log reaches the daemon over syslog TCP (through `logger`); the daemon
decides and fills an nftables set with timeouts in that namespace; the attacker can then no longer
connect, the block expires by itself, and an ops address failing just as often is never blocked."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from secops.respond import NftablesEnforcer
from secops.store import Store
from tests.secops.testbed import Testbed, can_run, free_port, tcp_listening, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.root]
GOVCTL = str(Path(sys.executable).parent / "govctl")


@pytest.fixture()
def testbed():
    assert can_run() is None, can_run()
    tb = Testbed()
    yield tb
    tb.close()


def test_block_enforced_expires_and_spares_ops(tmp_path, testbed):
    syslog_port = free_port()
    cfg = tmp_path / "secops.yaml"
    cfg.write_text(json.dumps({
        "store": str(tmp_path / "s.db"), "ops_networks": ["10.20.0.0/16"],
        "response": {"ttl": 3, "escalation": 4},
        "enforcer": {"netns": testbed.fw, "table": "govctl_test", "set": "blocklist", "manage": True},
        "syslog": {"tcp": f"127.0.0.1:{syslog_port}", "spool": str(tmp_path / "spool")},
        "batch": {"lines": 500, "seconds": 0.02}}))
    daemon = subprocess.Popen([GOVCTL, "secops", "run", "--config", str(cfg), "--enforce"],
                              stderr=subprocess.PIPE, text=True)
    nft = NftablesEnforcer(table="govctl_test", set_name="blocklist", netns=testbed.fw)
    try:
        assert wait_for(lambda: _table_exists(testbed.fw), 30), "the daemon did not set up its nftables set"
        assert wait_for(lambda: tcp_listening(syslog_port), 30), "the daemon's syslog receiver did not start"
        testbed.start_sshd(("127.0.0.1", syslog_port))
        assert testbed.connects(testbed.attacker, port=22)
        testbed.ssh_login_attempts(testbed.ops, 12, user="deploy")
        tries = _attack_until_blocked(testbed, nft)
        assert tries == 5, f"blocked after {tries} failed logins; the rule says 5"
        assert not testbed.connects(testbed.attacker, port=22)
        assert testbed.connects(testbed.ops, port=22)
        assert testbed.ops_ip not in nft.blocked()
        # the kernel lifts the block after the TTL (3 s) by itself
        assert wait_for(lambda: testbed.attacker_ip not in nft.blocked(), 10) is not None
        assert testbed.connects(testbed.attacker, port=22)
        # a repeat offender gets a longer block: 3 s × 4 (its window still holds the earlier failures)
        assert _attack_until_blocked(testbed, nft) == 1
        store = Store(tmp_path / "s.db")
        rows = store.db.execute("SELECT address, action, ttl, offence, enforced FROM decisions ORDER BY id").fetchall()
        store.close()
        assert (testbed.ops_ip, "allowlisted", None, 0, 0) in rows
        blocks = [r for r in rows if r[1] == "block"]
        assert [(r[0], r[2], r[3], r[4]) for r in blocks] == [(testbed.attacker_ip, 3.0, 1, 1), (testbed.attacker_ip, 12.0, 2, 1)]
        # lifted by hand
        lifted = subprocess.run([GOVCTL, "bans", "remove", testbed.attacker_ip, "--reason", "test", "--config", str(cfg)],
                                capture_output=True, text=True, timeout=60)
        assert lifted.returncode == 0, lifted.stderr
        assert testbed.attacker_ip not in nft.blocked()
        assert testbed.connects(testbed.attacker, port=22)
        refused = subprocess.run([GOVCTL, "bans", "add", testbed.ops_ip, "--reason", "x", "--config", str(cfg)],
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2 and "allowlist" in refused.stderr
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)


def _table_exists(netns: str) -> bool:
    return subprocess.run(["ip", "netns", "exec", netns, "nft", "list", "set", "inet", "govctl_test", "blocklist"],
                          capture_output=True).returncode == 0


def _attack_until_blocked(testbed, nft, most: int = 10) -> int | None:
    """Failed SSH logins one by one until the attacker's address is in the set; how many it took.
    Stopping then keeps later attempts from renewing the block while the test waits for expiry."""
    for tries in range(1, most + 1):
        testbed.ssh_login_attempts(testbed.attacker, 1)
        if wait_for(lambda: testbed.attacker_ip in nft.blocked(), 5 if tries >= 5 else 0.3) is not None:
            return tries
    return None
