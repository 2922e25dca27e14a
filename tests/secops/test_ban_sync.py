"""A block lifted by a person in another process (the console's API server, `govctl bans remove`) is seen by
the running daemon: the next attack from that address is blocked again, not taken for still blocked until
the old expiry."""
from __future__ import annotations

import io
import json
import time

from secops import daemon
from secops.config import load_config
from secops.daemon import Engine, ingest_stream
from secops.stores import open_store
from secops.wiring import decision_engine_from_config


def _failures(ip: str, start: float, n: int = 6) -> bytes:
    return "".join(f"{time.strftime('%b %e %H:%M:%S', time.gmtime(start + i))} web-1 sshd[1]: Failed password "
                   f"for root from {ip} port {4000 + i} ssh2\n" for i in range(n)).encode()


def test_a_lift_made_elsewhere_is_seen_and_the_next_attack_is_blocked_again(tmp_path, monkeypatch):
    monkeypatch.setattr(daemon, "BAN_SYNC_SECONDS", 0.0)  # take the store's bans before every batch
    cfgfile = tmp_path / "secops.yaml"
    cfgfile.write_text(json.dumps({"store": str(tmp_path / "s.db"), "enforcer": {"kind": "none"}}))
    cfg = load_config(cfgfile)
    engine = Engine(cfg, open_store(cfg), dry_run=True)
    now = time.time()
    ingest_stream(engine, io.BytesIO(_failures("203.0.113.5", now - 600)), "test", "auto", "auto", 1000)
    person = decision_engine_from_config(cfg, open_store(cfg), None, dry_run=True, actor="li.na")
    person.unblock("203.0.113.5", "lifted by hand")
    ingest_stream(engine, io.BytesIO(_failures("203.0.113.5", now - 300)), "test", "auto", "auto", 1000)
    trail = [(d["action"], d["actor"]) for d in engine.store.decision_trail(100) if d["address"] == "203.0.113.5"]
    assert trail == [("block", "govctl-secops"), ("unblock", "li.na"), ("block", "govctl-secops")]
    assert [b["address"] for b in engine.store.active_bans()] == ["203.0.113.5"]
