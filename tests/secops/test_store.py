"""The SQLite store: WAL, exactly-once rows per (source, position), retention floor."""
from __future__ import annotations

import sqlite3

import pytest

from secops.normalize import Normalizer
from secops.store import MIN_SECURITY_RETENTION_DAYS, Store


def test_wal_and_exactly_once_rows(tmp_path):
    store = Store(tmp_path / "s.db")
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    n = Normalizer(year=2026)
    ev = n.normalize(b"Nov  1 00:00:00 web-1 sshd[1]: Invalid user a from 203.0.113.1 port 1")
    store.commit_batch("f", [(0, ev)], [(70, "binary", "x", b"\x00")], position=(1, 80, b"head"))
    store.commit_batch("f", [(0, ev)], [(70, "binary", "x", b"\x00")], position=(1, 80, b"head"))  # replayed batch
    assert store.counts() == {"events": 1, "quarantined": 1, "quarantine_by_reason": {"binary": 1}}
    assert store.position("f") == (1, 80, b"head")
    store.close()
    other = sqlite3.connect(tmp_path / "s.db")
    assert other.execute("SELECT source_ip, action FROM events").fetchone() == ("203.0.113.1", "ssh_invalid_user")


def test_retention_refuses_less_than_180_days_and_deletes_older(tmp_path):
    store = Store(tmp_path / "s.db")
    with pytest.raises(ValueError, match="180"):
        store.apply_retention(30)
    n = Normalizer(year=2026)
    old = n.normalize(b"Jan  1 00:00:00 web-1 sshd[1]: Invalid user a from 203.0.113.1 port 1")
    new = n.normalize(b"Nov  1 00:00:00 web-1 sshd[1]: Invalid user a from 203.0.113.1 port 1")
    store.commit_batch("f", [(0, old), (100, new)], [])
    removed = store.apply_retention(MIN_SECURITY_RETENTION_DAYS, now=new["@timestamp"] + 86400)
    assert removed["events"] == 1
    assert store.counts()["events"] == 1
