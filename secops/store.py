"""The embedded store: SQLite in WAL mode for events, quarantine, alerts, decisions and incidents.

Exactly-once ingest rests on one rule: a batch of events and quarantined lines is committed in the
same transaction as the new read position of its source, and every row carries (source, position)
under a UNIQUE constraint. After a crash the reader resumes from the committed position, so each
input line ends up stored or quarantined exactly once.

Everything derived from a batch (its alerts, their incident links, its decisions and, now and then,
a checkpoint of the detector's windows) is written inside the same transaction (`transaction()`),
so a crash leaves either all of it or none of it. Alerts carry a deterministic key (rule, group,
first event time): an alert derived again is updated, never stored twice.
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable

from .model import ADDRESS_FIELDS, Decision
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
CREATE TABLE IF NOT EXISTS detector_state(
  id INTEGER PRIMARY KEY CHECK (id = 1), last_event INTEGER NOT NULL, saved REAL NOT NULL, state TEXT NOT NULL);
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
-- the incident list (newest activity first, optionally of one state) and the console's change feed read
-- the top of these instead of sorting every incident (docs/benchmarks.md: 100,000 incidents)
CREATE INDEX IF NOT EXISTS incidents_last ON incidents(last);
CREATE INDEX IF NOT EXISTS incidents_state_last ON incidents(state, last);
CREATE TABLE IF NOT EXISTS incident_notes(
  id INTEGER PRIMARY KEY, incident_id INTEGER NOT NULL, created REAL NOT NULL, author TEXT NOT NULL,
  kind TEXT NOT NULL, text TEXT NOT NULL);
"""

# The columns an event row keeps beside its full ECS document (for indexed queries).
_EVENT_COLUMNS = ("source.ip", "user.name", "host.hostname", "event.action", "event.outcome")
_SEARCH_COLUMNS = {"source.ip": "source_ip", "user.name": "user_name", "host.hostname": "host",
                   "event.action": "action", "event.outcome": "outcome", "event.dataset": "dataset"}
_INCIDENT_FIELDS = ("entity_kind", "entity", "title", "severity", "state", "assignee", "created", "updated",
                    "first", "last")
_INCIDENT_COLUMNS = ", ".join(f"i.{c}" for c in ("id", *_INCIDENT_FIELDS)) + \
    ", (SELECT count(*) FROM alerts a WHERE a.incident_id=i.id)"


def _incident_record(row) -> dict:
    """An incident as both stores return it: times in epoch seconds, `alerts` = how many."""
    return {"id": row[0], **dict(zip(_INCIDENT_FIELDS, row[1:11])), "alerts": row[11]}


_DECISION_COLUMNS = "id, created, address, action, ttl, until, reason, rule, alert_id, actor, enforced, offence"


def _decision(row) -> dict:
    """A decisions row as Decision.to_dict() gives it (the Elasticsearch store returns the same shape)."""
    return Decision(address=row[2], action=row[3], reason=row[6], actor=row[9], created=row[1], ttl=row[4],
                    until=row[5], rule=row[7], alert_id=row[8], enforced=bool(row[10]), offence=row[11] or 0,
                    id=row[0]).to_dict()


def _as_text(value: Any) -> str:
    """A search value as SQLite's CAST(… AS TEXT) shows the stored JSON value (true → 1)."""
    if isinstance(value, bool):
        return str(int(value))
    return str(value)


def _in_network(address: str | None, network: str) -> bool:
    import ipaddress
    if not address:
        return False
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


class Store:
    """One SQLite database. Thread-safe through one lock (SQLite serialises writers anyway)."""

    kind = "sqlite"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        if "key" not in {r[1] for r in self.db.execute("PRAGMA table_info(alerts)")}:  # a store from before keys
            self.db.execute("ALTER TABLE alerts ADD COLUMN key TEXT")
        self.db.execute("CREATE UNIQUE INDEX IF NOT EXISTS alerts_key ON alerts(key)")
        self.db.create_function("govctl_in_network", 2, _in_network, deterministic=True)
        self.lock = threading.RLock()

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def transaction(self):
        """One transaction around everything written inside (a batch and what is derived from it);
        nested uses join the outer one."""
        with self.lock:
            if self.db.in_transaction:
                yield
                return
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if self.db.in_transaction:  # SQLite may have rolled back already (e.g. disk full)
                    self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

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
        with self.transaction():
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
        """Insert the alert, or update the one stored under its key (it grew, or it was derived again
        after a restart); returns its id."""
        row = (alert.key, alert.rule.name, alert.rule.id, alert.rule.title, alert.rule.level,
               json.dumps(alert.rule.tags), alert.source_ip, alert.user, alert.host,
               json.dumps(alert.group, default=str), alert.first, alert.last, alert.count,
               json.dumps(alert.evidence, ensure_ascii=False, default=str))
        with self.lock:
            if alert.id is None:
                alert.id = self.db.execute(
                    "INSERT INTO alerts(key, rule, rule_id, title, level, tags, source_ip, user_name, host, grp,"
                    " first, last, count, evidence) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(key) DO UPDATE"
                    " SET last=excluded.last, count=excluded.count, evidence=excluded.evidence RETURNING id",
                    row).fetchone()[0]
            else:
                self.db.execute("UPDATE alerts SET last=?, count=?, evidence=? WHERE id=?",
                                (alert.last, alert.count, row[-1], alert.id))
        return alert.id

    def load_alerts(self, ids: list) -> dict:
        """Stored alerts by id: {id: {rule, group, first, last, count, evidence}} (a detector restoring its state)."""
        out = {}
        with self.lock:
            for i in range(0, len(ids), 500):
                chunk = list(ids[i:i + 500])
                for r in self.db.execute("SELECT id, rule, grp, first, last, count, evidence FROM alerts WHERE id IN"
                                         f" ({','.join('?' * len(chunk))})", chunk):
                    out[r[0]] = {"rule": r[1], "group": json.loads(r[2] or "{}"), "first": r[3], "last": r[4],
                                 "count": r[5], "evidence": json.loads(r[6] or "[]")}
        return out

    # ------------------------------------------------------------ detector checkpoint
    def save_detector_state(self, state: dict) -> int:
        """Keep the detector's state as of the batch being committed (call inside its transaction):
        after a restart the detector restores it and is fed again `events_since_detector_state()`.
        Returns the size of the saved state in bytes."""
        text = json.dumps(state, default=str)
        with self.transaction():
            last = self.db.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
            self.db.execute("INSERT INTO detector_state(id, last_event, saved, state) VALUES (1,?,?,?)"
                            " ON CONFLICT(id) DO UPDATE SET last_event=excluded.last_event, saved=excluded.saved,"
                            " state=excluded.state", (last, time.time(), text))
        return len(text)

    def detector_state(self) -> dict | None:
        with self.lock:
            row = self.db.execute("SELECT state FROM detector_state WHERE id=1").fetchone()
        return json.loads(row[0]) if row else None

    def events_since_detector_state(self, page: int = 5000):
        """The events committed after the detector's checkpoint (all of them if there is none), in the
        order the detector saw them (the order they were committed)."""
        with self.lock:
            row = self.db.execute("SELECT last_event FROM detector_state WHERE id=1").fetchone()
        after = row[0] if row else 0
        while True:
            with self.lock:
                rows = self.db.execute("SELECT id, doc FROM events WHERE id > ? ORDER BY id LIMIT ?",
                                       (after, page)).fetchall()
            for _, doc in rows:
                yield json.loads(doc)
            if len(rows) < page:
                return
            after = rows[-1][0]

    def has_events(self) -> bool:
        with self.lock:
            return self.db.execute("SELECT 1 FROM events LIMIT 1").fetchone() is not None

    def flush(self) -> None:
        """Every committed batch is durable already (one transaction each); the same call as ElasticStore's."""

    # ------------------------------------------------------------ events search
    def search_events(self, filters: dict[str, Any] | None = None, since: float | None = None,
                      until: float | None = None, limit: int = 100) -> list[dict]:
        """Newest events first whose ECS fields equal the given values; an address field also takes a CIDR
        range (see secops.stores.parse_event_query for the text syntax both stores share)."""
        where, args = [], []
        for name, value in (filters or {}).items():
            column = _SEARCH_COLUMNS.get(name)
            expr = column or "json_extract(doc, ?)"
            expr_args = [] if column else ['$."' + name.replace('"', '') + '"']
            if name in ADDRESS_FIELDS and "/" in str(value):
                where.append(f"govctl_in_network({expr}, ?)")
            else:
                where.append(f"CAST({expr} AS TEXT) = ?")
                value = _as_text(value)
            args += [*expr_args, str(value)]
        if since is not None:
            where.append("ts >= ?")
            args.append(since)
        if until is not None:
            where.append("ts <= ?")
            args.append(until)
        sql = "SELECT doc FROM events" + (" WHERE " + " AND ".join(where) if where else "") + \
            " ORDER BY ts DESC, id DESC LIMIT ?"
        with self.lock:
            rows = self.db.execute(sql, [*args, limit]).fetchall()
        return [json.loads(r[0]) for r in rows]

    # ------------------------------------------------------------ incidents (secops.incidents holds the logic)
    def alert_incident(self, alert_id) -> int | None:
        with self.lock:
            row = self.db.execute("SELECT incident_id FROM alerts WHERE id=?", (alert_id,)).fetchone()
        return row[0] if row and row[0] else None

    def open_incident(self, kind: str, entity: str, since: float, closed: tuple[str, ...]) -> dict | None:
        """The entity's newest incident not in a `closed` state whose last alert is at or after `since`."""
        with self.lock:
            row = self.db.execute(
                f"SELECT {_INCIDENT_COLUMNS} FROM incidents i WHERE entity_kind=? AND entity=?"
                f" AND state NOT IN ({','.join('?' * len(closed))}) AND last >= ? ORDER BY last DESC LIMIT 1",
                (kind, entity, *closed, since)).fetchone()
        return _incident_record(row) if row else None

    def create_incident(self, record: dict) -> int:
        with self.lock:
            cur = self.db.execute(
                "INSERT INTO incidents(entity_kind, entity, title, severity, state, assignee, created, updated,"
                " first, last) VALUES (?,?,?,?,?,?,?,?,?,?)", tuple(record[k] for k in _INCIDENT_FIELDS))
        return cur.lastrowid

    def update_incident(self, incident_id, changes: dict) -> None:
        """Set the given fields (of entity_kind … last) of one incident."""
        unknown = set(changes) - set(_INCIDENT_FIELDS)
        if unknown:
            raise ValueError(f"incidents have no field(s) {', '.join(sorted(unknown))}")
        with self.lock:
            self.db.execute(f"UPDATE incidents SET {', '.join(f'{k}=?' for k in changes)} WHERE id=?",
                            (*changes.values(), incident_id))

    def link_alert(self, alert_id, incident_id) -> None:
        with self.lock:
            self.db.execute("UPDATE alerts SET incident_id=? WHERE id=?", (incident_id, alert_id))

    def incident(self, incident_id) -> dict | None:
        with self.lock:
            row = self.db.execute(f"SELECT {_INCIDENT_COLUMNS} FROM incidents i WHERE i.id=?",
                                  (incident_id,)).fetchone()
        return _incident_record(row) if row else None

    def incidents(self, state: str | None = None, limit: int = 100) -> list[dict]:
        """Newest activity first; each record with its number of alerts."""
        sql = f"SELECT {_INCIDENT_COLUMNS} FROM incidents i"
        args: list[Any] = []
        if state:
            sql += " WHERE i.state=?"
            args.append(state)
        with self.lock:
            rows = self.db.execute(sql + " ORDER BY i.last DESC, i.id DESC LIMIT ?", (*args, limit)).fetchall()
        return [_incident_record(r) for r in rows]

    def incident_alerts(self, incident_id) -> list[dict]:
        """The incident's alerts, oldest first; `evidence` as flat events."""
        with self.lock:
            rows = self.db.execute(
                "SELECT id, rule, title, level, tags, source_ip, user_name, host, first, last, count, evidence"
                " FROM alerts WHERE incident_id=? ORDER BY first, id", (incident_id,)).fetchall()
        return [{"id": a[0], "rule": a[1], "title": a[2], "level": a[3], "tags": json.loads(a[4] or "[]"),
                 "source.ip": a[5], "user": a[6], "host": a[7], "first": a[8], "last": a[9], "count": a[10],
                 "evidence": json.loads(a[11] or "[]")} for a in rows]

    def incident_notes(self, incident_id) -> list[dict]:
        with self.lock:
            rows = self.db.execute("SELECT created, author, kind, text FROM incident_notes WHERE incident_id=?"
                                   " ORDER BY id", (incident_id,)).fetchall()
        return [{"created": r[0], "author": r[1], "kind": r[2], "text": r[3]} for r in rows]

    def add_incident_note(self, incident_id, created: float, author: str, kind: str, text: str) -> None:
        with self.lock:
            self.db.execute("INSERT INTO incident_notes(incident_id, created, author, kind, text) VALUES (?,?,?,?,?)",
                            (incident_id, created, author, kind, text))

    # ------------------------------------------------------------ decisions (made by secops.respond)
    def decisions_for_alerts(self, alert_ids: list) -> list[dict]:
        """Decisions caused by these alerts, oldest first (as Decision.to_dict)."""
        if not alert_ids:
            return []
        with self.lock:
            rows = self.db.execute(f"SELECT {_DECISION_COLUMNS} FROM decisions WHERE alert_id IN"
                                   f" ({','.join('?' * len(alert_ids))}) ORDER BY id", list(alert_ids)).fetchall()
        return [_decision(r) for r in rows]

    def record_decision(self, decision) -> int:
        """Store a secops.model.Decision; returns its id."""
        with self.lock:
            cur = self.db.execute(
                "INSERT INTO decisions(created, address, action, ttl, until, reason, rule, alert_id, actor,"
                " enforced, offence) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (decision.created, decision.address, decision.action, decision.ttl, decision.until,
                 decision.reason, decision.rule, decision.alert_id, decision.actor, int(decision.enforced),
                 decision.offence))
            return cur.lastrowid

    def block_counts(self) -> dict[str, int]:
        """Blocks ever decided per address (escalation counts earlier offences)."""
        with self.lock:
            return dict(self.db.execute(
                "SELECT address, count(*) FROM decisions WHERE action='block' GROUP BY address"))

    def allowlisted_alerts(self) -> set[tuple[str, str]]:
        """(address, rule) pairs already recorded as allowlisted (each is recorded once)."""
        with self.lock:
            return {(a, r) for a, r in self.db.execute(
                "SELECT DISTINCT address, rule FROM decisions WHERE action='allowlisted'")}

    def active_bans(self, now: float | None = None) -> list[dict]:
        """Blocks still in force: the address's latest block/unblock is a block whose time has not run out."""
        now = time.time() if now is None else now
        with self.lock:
            rows = self.db.execute(
                f"SELECT {_DECISION_COLUMNS} FROM decisions d WHERE action='block' AND until > ? AND id ="
                " (SELECT max(id) FROM decisions d2 WHERE d2.address=d.address AND d2.action IN ('block','unblock'))"
                " ORDER BY until DESC", (now,)).fetchall()
        return [_decision(r) for r in rows]

    def decision_trail(self, limit: int = 200) -> list[dict]:
        """Every decision, newest first: who, what, why, until."""
        with self.lock:
            rows = self.db.execute(f"SELECT {_DECISION_COLUMNS} FROM decisions ORDER BY id DESC LIMIT ?",
                                   (limit,)).fetchall()
        return [_decision(r) for r in rows]

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

    # ------------------------------------------------------------ interception: range bans, forgetting escalation
    def latest_blocks(self) -> dict[str, tuple[int, float]]:
        """Per address (or range): (offence count of its latest block, when that block ends, epoch seconds).
        Escalation continues from that count, and forgets offences after a quiet period from that end."""
        with self.lock:
            return {a: (o or 0, u) for a, o, u in self.db.execute(
                "SELECT address, offence, until FROM decisions d WHERE action='block' AND until IS NOT NULL AND id ="
                " (SELECT max(id) FROM decisions d2 WHERE d2.address=d.address AND d2.action='block')")}

def rows(cursor: Iterable, columns: list[str]) -> list[dict]:
    return [dict(zip(columns, r)) for r in cursor]
