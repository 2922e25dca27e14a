"""The embedded store: SQLite in WAL mode for events, quarantine, alerts, decisions and incidents.

Exactly-once ingest rests on one rule: a batch of events and quarantined lines is committed in the
same transaction as the new read position of its source, and every row carries (source, position)
under a UNIQUE constraint. After a crash the reader resumes from the committed position, so each
input line ends up stored or quarantined exactly once.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable

from .normalize import iso

MIN_SECURITY_RETENTION_DAYS = 180  # 等保 2.0 asks security audit records be kept at least six months

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events(
  id INTEGER PRIMARY KEY, ts REAL NOT NULL, source TEXT NOT NULL, pos INTEGER NOT NULL,
  dataset TEXT, source_ip TEXT, user_name TEXT, host TEXT, action TEXT, outcome TEXT, doc TEXT NOT NULL,
  UNIQUE(source, pos));
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
CREATE INDEX IF NOT EXISTS events_ip ON events(source_ip, ts);
CREATE TABLE IF NOT EXISTS quarantine(
  id INTEGER PRIMARY KEY, received REAL NOT NULL, source TEXT NOT NULL, pos INTEGER NOT NULL,
  reason TEXT NOT NULL, detail TEXT, raw BLOB NOT NULL, UNIQUE(source, pos));
CREATE INDEX IF NOT EXISTS quarantine_reason ON quarantine(reason);
CREATE TABLE IF NOT EXISTS positions(
  source TEXT PRIMARY KEY, inode INTEGER, pos INTEGER NOT NULL, head BLOB, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS alerts(
  id INTEGER PRIMARY KEY, rule TEXT NOT NULL, rule_id TEXT, title TEXT, level TEXT, tags TEXT,
  source_ip TEXT, user_name TEXT, host TEXT, grp TEXT, first REAL, last REAL, count INTEGER,
  evidence TEXT, incident_id INTEGER);
CREATE INDEX IF NOT EXISTS alerts_incident ON alerts(incident_id);
CREATE TABLE IF NOT EXISTS decisions(
  id INTEGER PRIMARY KEY, created REAL NOT NULL, address TEXT NOT NULL, action TEXT NOT NULL,
  ttl REAL, until REAL, reason TEXT NOT NULL, rule TEXT, alert_id INTEGER, actor TEXT NOT NULL,
  enforced INTEGER NOT NULL, offence INTEGER);
CREATE INDEX IF NOT EXISTS decisions_address ON decisions(address, created);
CREATE TABLE IF NOT EXISTS incidents(
  id INTEGER PRIMARY KEY, entity_kind TEXT NOT NULL, entity TEXT NOT NULL, title TEXT NOT NULL,
  severity TEXT NOT NULL, state TEXT NOT NULL, assignee TEXT, created REAL NOT NULL,
  updated REAL NOT NULL, first REAL NOT NULL, last REAL NOT NULL);
CREATE INDEX IF NOT EXISTS incidents_entity ON incidents(entity_kind, entity, last);
CREATE TABLE IF NOT EXISTS incident_notes(
  id INTEGER PRIMARY KEY, incident_id INTEGER NOT NULL, created REAL NOT NULL, author TEXT NOT NULL,
  kind TEXT NOT NULL, text TEXT NOT NULL);
"""

# The columns an event row keeps beside its full ECS document (for indexed queries).
_EVENT_COLUMNS = ("source.ip", "user.name", "host.hostname", "event.action", "event.outcome")


class Store:
    """One SQLite database. Thread-safe through one lock (SQLite serialises writers anyway)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self.lock = threading.RLock()

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------ ingest
    def commit_batch(self, source: str, events: list[tuple[int, dict]], rejected: list[tuple[int, str, str, bytes]],
                     position: tuple[int | None, int, bytes | None] | None = None,
                     position_name: str | None = None) -> None:
        """Events [(pos, event)], rejected [(pos, reason, detail, raw)] of `source` and the new read
        position (inode, pos, head) of input `position_name` in one transaction."""
        now = time.time()
        ev_rows = [(e["@timestamp"], source, pos, e.get("event.dataset"), *(e.get(c) for c in _EVENT_COLUMNS),
                    json.dumps(e, ensure_ascii=False, default=str)) for pos, e in events]
        q_rows = [(now, source, pos, reason, detail, raw) for pos, reason, detail, raw in rejected]
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                if ev_rows:
                    self.db.executemany(
                        "INSERT OR IGNORE INTO events(ts, source, pos, dataset, source_ip, user_name, host, action,"
                        " outcome, doc) VALUES (?,?,?,?,?,?,?,?,?,?)", ev_rows)
                if q_rows:
                    self.db.executemany(
                        "INSERT OR IGNORE INTO quarantine(received, source, pos, reason, detail, raw)"
                        " VALUES (?,?,?,?,?,?)", q_rows)
                if position is not None:
                    inode, pos, head = position
                    self.db.execute(
                        "INSERT INTO positions(source, inode, pos, head, updated) VALUES (?,?,?,?,?)"
                        " ON CONFLICT(source) DO UPDATE SET inode=excluded.inode, pos=excluded.pos,"
                        " head=excluded.head, updated=excluded.updated",
                        (position_name or source, inode, pos, head, now))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def position(self, source: str) -> tuple[int | None, int, bytes | None] | None:
        with self.lock:
            row = self.db.execute("SELECT inode, pos, head FROM positions WHERE source=?", (source,)).fetchone()
        return (row[0], row[1], row[2]) if row else None

    def counts(self) -> dict[str, Any]:
        with self.lock:
            events = self.db.execute("SELECT count(*) FROM events").fetchone()[0]
            reasons = dict(self.db.execute("SELECT reason, count(*) FROM quarantine GROUP BY reason").fetchall())
        return {"events": events, "quarantined": sum(reasons.values()), "quarantine_by_reason": reasons}

    def quarantined(self, limit: int = 50) -> list[dict]:
        with self.lock:
            rows = self.db.execute("SELECT id, received, source, pos, reason, detail, raw FROM quarantine"
                                   " ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [{"id": r[0], "received": iso(r[1]), "source": r[2], "position": r[3], "reason": r[4],
                 "detail": r[5], "raw": r[6][:200].decode("utf-8", "replace")} for r in rows]

    # ------------------------------------------------------------ alerts
    def save_alert(self, alert) -> int:
        row = (alert.rule.name, alert.rule.id, alert.rule.title, alert.rule.level, json.dumps(alert.rule.tags),
               alert.source_ip, alert.user, alert.host, json.dumps(alert.group, default=str), alert.first,
               alert.last, alert.count, json.dumps(alert.evidence, ensure_ascii=False, default=str))
        with self.lock:
            if alert.id is None:
                cur = self.db.execute(
                    "INSERT INTO alerts(rule, rule_id, title, level, tags, source_ip, user_name, host, grp, first,"
                    " last, count, evidence) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", row)
                alert.id = cur.lastrowid
            else:
                self.db.execute("UPDATE alerts SET last=?, count=?, evidence=? WHERE id=?",
                                (alert.last, alert.count, row[-1], alert.id))
        return alert.id

    # ------------------------------------------------------------ retention
    def apply_retention(self, event_days: float, incident_days: float | None = None, now: float | None = None) -> dict:
        if event_days < MIN_SECURITY_RETENTION_DAYS:
            raise ValueError(f"retention of {event_days} days is below the {MIN_SECURITY_RETENTION_DAYS} days"
                             " 等保 2.0 asks for security logs")
        now = time.time() if now is None else now
        cutoff = now - event_days * 86400
        with self.lock:
            ev = self.db.execute("DELETE FROM events WHERE ts < ?", (cutoff,)).rowcount
            q = self.db.execute("DELETE FROM quarantine WHERE received < ?", (cutoff,)).rowcount
            removed = {"events": ev, "quarantine": q}
            if incident_days is not None:
                inc_cut = now - max(incident_days, event_days) * 86400
                removed["alerts"] = self.db.execute("DELETE FROM alerts WHERE last < ?", (inc_cut,)).rowcount
                removed["decisions"] = self.db.execute("DELETE FROM decisions WHERE created < ? AND until < ?",
                                                       (inc_cut, now)).rowcount
        return removed


def rows(cursor: Iterable, columns: list[str]) -> list[dict]:
    return [dict(zip(columns, r)) for r in cursor]
