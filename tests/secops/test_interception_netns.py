"""Interception for real (root, slow): the daemon tails an auth log, decides, and fills an nftables
set with timeouts inside a firewall namespace; an attacker namespace can then no longer connect to
the listener behind it, the block expires by itself, and an ops address failing just as often is
never blocked."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from secops.respond import NftablesEnforcer
from secops.store import Store
from secops.testbed import Testbed, can_run, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.root]
GOVCTL = str(Path(sys.executable).parent / "govctl")


def _failures(ip: str, n: int, user: str = "root") -> str:
    stamp = time.strftime("%b %e %H:%M:%S", time.gmtime())
    return "".join(f"{stamp} web-1 sshd[9]: Failed password for {user} from {ip} port {40000 + i} ssh2\n" for i in range(n))


@pytest.fixture()
def testbed():
    assert can_run() is None, can_run()
    tb = Testbed()
    yield tb
    tb.close()


def test_block_enforced_expires_and_spares_ops(tmp_path, testbed):
    log = tmp_path / "auth.log"
    log.write_text("")
    cfg = tmp_path / "secops.yaml"
    cfg.write_text(json.dumps({
        "store": str(tmp_path / "s.db"), "ops_networks": ["10.20.0.0/16"],
        "response": {"ttl": 3, "escalation": 4},
        "enforcer": {"netns": testbed.fw, "table": "govctl_test", "set": "blocklist", "manage": True},
        "batch": {"lines": 500, "seconds": 0.02}}))
    daemon = subprocess.Popen([GOVCTL, "secops", "run", "--config", str(cfg), "--source", f"auth={log}", "--enforce"],
                              stderr=subprocess.PIPE, text=True)
    nft = NftablesEnforcer(table="govctl_test", set_name="blocklist", netns=testbed.fw)
    try:
        assert wait_for(lambda: _table_exists(testbed.fw), 30), "the daemon did not set up its nftables set"
        assert testbed.connects(testbed.attacker)
        with open(log, "a") as f:
            f.write(_failures(testbed.ops_ip, 12, user="deploy"))
            f.flush()
            f.write(_failures(testbed.attacker_ip, 6))
        took = wait_for(lambda: testbed.attacker_ip in nft.blocked(), 10)
        assert took is not None, "the attacker was not blocked within 10 s"
        assert not testbed.connects(testbed.attacker)
        assert testbed.connects(testbed.ops)
        assert testbed.ops_ip not in nft.blocked()
        # the kernel lifts the block after the TTL (3 s) by itself
        assert wait_for(lambda: testbed.attacker_ip not in nft.blocked(), 10) is not None
        assert testbed.connects(testbed.attacker)
        # a repeat offender gets a longer block: 3 s × 4
        with open(log, "a") as f:
            f.write(_failures(testbed.attacker_ip, 6))
        assert wait_for(lambda: testbed.attacker_ip in nft.blocked(), 10) is not None
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
        assert testbed.connects(testbed.attacker)
        refused = subprocess.run([GOVCTL, "bans", "add", testbed.ops_ip, "--reason", "x", "--config", str(cfg)],
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2 and "allowlist" in refused.stderr
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)


def _table_exists(netns: str) -> bool:
    return subprocess.run(["ip", "netns", "exec", netns, "nft", "list", "set", "inet", "govctl_test", "blocklist"],
                          capture_output=True).returncode == 0
