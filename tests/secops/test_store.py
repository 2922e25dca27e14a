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


def _incident(i: int, state: str, last: float) -> dict:
    return {"entity_kind": "source.ip", "entity": f"198.18.{i // 256}.{i % 256}", "title": f"t{i}",
            "severity": "high", "state": state, "assignee": None, "created": last, "updated": last,
            "first": last - 60, "last": last}


def test_incident_list_reads_the_newest_through_an_index_and_keeps_its_order(tmp_path):
    """The incident list (and the console's change feed, limit 1) reads the top of an index instead of sorting
    every incident: 400 ms → 4 ms at 100,000 incidents (bench/console.py). Order: newest activity first, the
    higher id first on a tie; one state through its own index."""
    store = Store(tmp_path / "s.db")
    with store.transaction():
        for i in range(300):
            store.create_incident(_incident(i, "resolved" if i % 3 else "new", 1000.0 + (i * 7) % 50))
    plans = {name: " ".join(r[-1] for r in store.db.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM incidents i" + where + " ORDER BY i.last DESC, i.id DESC LIMIT 5"))
        for name, where in (("all", ""), ("state", " WHERE i.state='new'"))}
    assert "incidents_last" in plans["all"] and "incidents_state_last" in plans["state"]
    assert not any("TEMP B-TREE" in plan for plan in plans.values()), plans
    listed = store.incidents(None, 300)
    assert [(r["last"], r["id"]) for r in listed] == sorted(((r["last"], r["id"]) for r in listed), reverse=True)
    assert [r["id"] for r in store.incidents(None, 1)] == [listed[0]["id"]]
    new = store.incidents("new", 300)
    assert len(new) == 100 and {r["state"] for r in new} == {"new"}
    assert [r["id"] for r in new] == [r["id"] for r in listed if r["state"] == "new"]
    store.close()
