"""Inputs: tailing across rotation and truncation with committed positions, stdin, syslog UDP/TCP
(RFC 3164 and 5424, GBK), and the engine storing every line exactly once."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from secops.config import load_config
from secops.daemon import Engine, Runner
from secops.ingest import FileTail
from secops.store import Store
from tests.secops.testbed import free_port

GOVCTL = str(Path(sys.executable).parent / "govctl")


def lines_of(batch):
    return [raw for _, raw in batch.lines] if batch else []


def test_tail_waits_for_complete_lines_and_resumes(tmp_path):
    log = tmp_path / "a.log"
    log.write_bytes(b"one\ntwo\nthr")
    tail = FileTail("a", log)
    batch = tail.read(100)
    assert lines_of(batch) == [b"one", b"two"]
    assert tail.read(100) is None  # "thr" is still being written
    with open(log, "ab") as f:
        f.write(b"ee\n")
    batch2 = tail.read(100)
    assert lines_of(batch2) == [b"three"] and batch2.lines[0][0] == 8
    resumed = FileTail("a", log)
    resumed.resume(batch.position)  # a restart after only the first batch was committed
    assert lines_of(resumed.read(100)) == [b"three"]


def test_tail_follows_rotation_and_drains_the_old_file(tmp_path):
    log = tmp_path / "auth.log"
    log.write_bytes(b"a1\na2\n")
    tail = FileTail("auth", log)
    first = tail.read(100)
    with open(log, "ab") as f:
        f.write(b"a3\na4-no-newline")
    os.rename(log, tmp_path / "auth.log.1")
    log.write_bytes(b"b1\n")
    got, keys = [], set()
    while (batch := tail.read(1)) is not None:
        got += lines_of(batch)
        keys.add(batch.key)
    assert lines_of(first) == [b"a1", b"a2"]
    assert got == [b"a3", b"a4-no-newline", b"b1"]
    assert len(keys) == 2  # rows of the two files never collide in the store


def test_resume_after_rotation_while_down(tmp_path):
    log = tmp_path / "auth.log"
    log.write_bytes(b"a1\na2\n")
    tail = FileTail("auth", log)
    committed = tail.read(1).position  # only a1 committed, then the process died
    os.rename(log, tmp_path / "auth.log.1")
    log.write_bytes(b"b1\n")
    again = FileTail("auth", log)
    again.resume(committed)
    got = []
    while (batch := again.read(100)) is not None:
        got += lines_of(batch)
    assert got == [b"a2", b"b1"]


def test_tail_restarts_after_copytruncate(tmp_path):
    log = tmp_path / "app.log"
    log.write_bytes(b"old1\nold2\n")
    tail = FileTail("app", log)
    tail.read(100)
    with open(log, "r+b") as f:
        f.truncate(0)
    with open(log, "ab") as f:
        f.write(b"new1\n")
    assert lines_of(tail.read(100)) == [b"new1"]
    with open(log, "wb") as f:  # truncated and rewritten past our position in one go
        f.write(b"rewritten-1\nrewritten-2\n")
    assert lines_of(tail.read(100)) == [b"rewritten-1", b"rewritten-2"]


def _config(tmp_path: Path, **extra) -> Path:
    cfg = {"store": str(tmp_path / "secops.db"), "enforcer": {"kind": "none"}, "allowlist": ["10.20.0.0/16"],
           "batch": {"lines": 500, "seconds": 0.02}, **extra}
    path = tmp_path / "secops.yaml"
    path.write_text(json.dumps(cfg))
    return path


def _attack(n: int, ip: str = "203.0.113.5") -> bytes:
    return b"".join(f"Nov  1 00:00:{i % 60:02d} web-1 sshd[1]: Failed password for root from {ip} port {i} ssh2\n".encode()
                    for i in range(n))


@pytest.mark.slow
def test_run_once_stores_every_line_once_and_resumes(tmp_path):
    log = tmp_path / "auth.log"
    log.write_bytes(_attack(1200) + b"garbage\n" + "Nov  1 00:00:01 web-1 sshd[1]: 非法用户 x\n".encode("gbk"))
    cfg = _config(tmp_path)
    cmd = [GOVCTL, "secops", "run", "--config", str(cfg), "--source", f"auth={log}", "--once", "--dry-run"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    store = Store(tmp_path / "secops.db")
    assert store.counts() == {"events": 1201, "quarantined": 1, "quarantine_by_reason": {"unknown_format": 1}}
    assert store.db.execute("SELECT doc FROM events WHERE doc LIKE '%非法用户%'").fetchone()
    with open(log, "ab") as f:
        f.write(_attack(10, ip="203.0.113.6"))
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    assert store.counts()["events"] == 1211
    blocks = store.db.execute("SELECT address, enforced FROM decisions WHERE action='block'").fetchall()
    assert sorted(blocks) == [("203.0.113.5", 0), ("203.0.113.6", 0)]  # dry run: decided, not enforced


def test_stdin_ingest(tmp_path):
    cfg = _config(tmp_path)
    from typer.testing import CliRunner

    from govctl.cli import app
    result = CliRunner().invoke(app, ["secops", "ingest", "--config", str(cfg), "--dry-run", "--json"],
                                input=_attack(20) + b"\x00\x01bin\n")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["lines"] == 21 and stats["events"] == 20 and stats["quarantined"] == 1 and stats["blocks"] == 1


def test_syslog_udp_and_tcp_reach_the_store(tmp_path):
    udp, tcp = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    cfg = load_config(_config(tmp_path, syslog={"udp": f"127.0.0.1:{udp}", "tcp": f"127.0.0.1:{tcp}",
                                                "spool": str(tmp_path / "spool")}))
    store = Store(cfg["store"])
    engine = Engine(cfg, store, dry_run=True)
    runner = Runner(engine, [], cfg["syslog"])
    runner.receivers.start()
    try:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.sendto(b"<38>Nov  1 00:00:00 web-1 sshd[1]: Invalid user a from 203.0.113.1 port 1", ("127.0.0.1", udp))
        u.sendto("<38>1 2026-11-01T00:00:01Z web-1 sshd 1 - - Failed password for 管理员 from 203.0.113.2 port 2 ssh2"
                 .encode("gbk"), ("127.0.0.1", udp))
        with socket.create_connection(("127.0.0.1", tcp)) as t:
            t.sendall(b"<38>Nov  1 00:00:02 web-1 sshd[1]: Invalid user b from 203.0.113.3 port 3\n")
            framed = b"<38>1 2026-11-01T00:00:03Z web-1 sshd 1 - - Invalid user c from 203.0.113.4 port 4"
            t.sendall(str(len(framed)).encode() + b" " + framed)  # RFC 6587 octet counting
        deadline = time.time() + 10
        while store.counts()["events"] < 4 and time.time() < deadline:
            runner.step(100)
            time.sleep(0.05)
    finally:
        runner.receivers.stop()
    ips = {r[0] for r in store.db.execute("SELECT source_ip FROM events")}
    assert ips == {"203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"}
    assert store.db.execute("SELECT user_name FROM events WHERE source_ip='203.0.113.2'").fetchone() == ("管理员",)


def test_resume_notices_a_file_rewritten_while_down(tmp_path):
    log = tmp_path / "app.log"
    log.write_bytes(b"first-a\nfirst-b\n")
    tail = FileTail("app", log)
    committed = tail.read(100).position
    with open(log, "r+b") as f:  # same inode, new content longer than the old position
        f.write(b"other-1\nother-2\nother-3\n")
    again = FileTail("app", log)
    again.resume(committed)
    assert lines_of(again.read(100)) == [b"other-1", b"other-2", b"other-3"]


@pytest.mark.slow
@pytest.mark.root
def test_a_failed_enforcement_is_retried(tmp_path):
    """The set does not exist yet: the first flush fails, the decision waits, the next one lands."""
    import uuid

    from secops.respond import Allowlist, DecisionEngine, NftablesEnforcer
    ns = f"gsret-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        nft = NftablesEnforcer(table="govctl_retry", netns=ns)
        engine = DecisionEngine(Allowlist([]), enforcer=nft)
        engine.block("203.0.113.9", "test", ttl=60)
        with pytest.raises(RuntimeError, match="nft failed"):
            engine.flush()
        nft.ensure()
        assert engine.flush() == 1
        assert "203.0.113.9" in nft.blocked()
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=True)
