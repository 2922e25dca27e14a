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
import fcntl
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
-- the incident search (issue #17): filters and facet counts by severity without a full scan
CREATE INDEX IF NOT EXISTS incidents_severity_last ON incidents(severity, last);
CREATE INDEX IF NOT EXISTS decisions_created ON decisions(created);
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
# What an incident carries besides its first columns (issue #17): the rules of its alerts and the centers whose
# firewalls enforced its blocks, each a column of names between unit separators ("\x1fa\x1fb\x1f"), so a
# filter is one instr() on the row, or on the facets index that holds them.
_LABELS = ("rules", "centers")
_SEPARATOR = "\x1f"
_INCIDENT_COLUMNS = ", ".join(f"i.{c}" for c in ("id", *_INCIDENT_FIELDS)) + \
    ", (SELECT count(*) FROM alerts a WHERE a.incident_id=i.id), i.rules, i.centers"


def _labels_text(values) -> str | None:
    names = sorted({str(v) for v in values or ()})
    return _SEPARATOR + _SEPARATOR.join(names) + _SEPARATOR if names else None


def _incident_record(row) -> dict:
    """An incident as both stores return it: times in epoch seconds, `alerts` = how many, `rules` and
    `centers` sorted."""
    return {"id": row[0], **dict(zip(_INCIDENT_FIELDS, row[1:11])), "alerts": row[11],
            "rules": row[12].strip(_SEPARATOR).split(_SEPARATOR) if row[12] else [],
            "centers": row[13].strip(_SEPARATOR).split(_SEPARATOR) if row[13] else []}


_DECISION_COLUMNS = "id, created, address, action, ttl, until, reason, rule, alert_id, actor, enforced, offence, centers"


def _decision(row) -> dict:
    """A decisions row as Decision.to_dict() gives it (the Elasticsearch store returns the same shape)."""
    return Decision(address=row[2], action=row[3], reason=row[6], actor=row[9], created=row[1], ttl=row[4],
                    until=row[5], rule=row[7], alert_id=row[8], enforced=bool(row[10]), offence=row[11] or 0,
                    id=row[0], centers=json.loads(row[12]) if row[12] else []).to_dict()


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


_TITLE_INDEX = """
CREATE VIRTUAL TABLE IF NOT EXISTS incident_titles USING fts5(title, content='incidents', content_rowid='id',
  tokenize='trigram');
CREATE TRIGGER IF NOT EXISTS incident_titles_insert AFTER INSERT ON incidents BEGIN
  INSERT INTO incident_titles(rowid, title) VALUES (new.id, new.title); END;
CREATE TRIGGER IF NOT EXISTS incident_titles_delete AFTER DELETE ON incidents BEGIN
  INSERT INTO incident_titles(incident_titles, rowid, title) VALUES ('delete', old.id, old.title); END;
CREATE TRIGGER IF NOT EXISTS incident_titles_update AFTER UPDATE OF title ON incidents BEGIN
  INSERT INTO incident_titles(incident_titles, rowid, title) VALUES ('delete', old.id, old.title);
  INSERT INTO incident_titles(rowid, title) VALUES (new.id, new.title); END;
"""


def _rank(column: str) -> str:
    """The order of a severity or a state (informational 0 … critical 4, new 0 … false-positive 4), as SQL;
    the same text in the index and in ORDER BY, so the sort reads the index."""
    from .model import SEVERITY, STATES
    order = SEVERITY if column == "severity" else STATES
    return f"CASE {column} " + " ".join(f"WHEN '{v}' THEN {n}" for n, v in enumerate(order)) + " END"


def _source_key(address) -> bytes | None:
    """An address as 16 bytes that sort in address order (IPv4 as IPv4-mapped IPv6), so that an address range
    is a range of keys; None if `address` is not one."""
    import ipaddress

    from .address import canonical
    if not isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        text = canonical(str(address))
        if not text:
            return None
        address = ipaddress.ip_address(text)
    return (b"\0" * 10 + b"\xff\xff" + address.packed) if address.version == 4 else address.packed


class Store:
    """One SQLite database. Thread-safe through one lock (SQLite serialises writers anyway)."""

    kind = "sqlite"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self.db.create_function("govctl_in_network", 2, _in_network, deterministic=True)
        self.lock = threading.RLock()
        # Creating and migrating the schema is check-then-change: two processes opening a new store at once
        # (the daemon and a reader; seen in CI) both saw a column missing and the second ALTER failed. The
        # schema is set up under an exclusive lock on a file beside the database.
        with open(self.path.with_name(self.path.name + ".schema-lock"), "a") as schema_lock:
            fcntl.flock(schema_lock, fcntl.LOCK_EX)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            if "key" not in {r[1] for r in self.db.execute("PRAGMA table_info(alerts)")}:  # a store from before keys
                self.db.execute("ALTER TABLE alerts ADD COLUMN key TEXT")
            self.db.execute("CREATE UNIQUE INDEX IF NOT EXISTS alerts_key ON alerts(key)")
            self._add_incident_search_columns()

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
        with self.transaction():
            cur = self.db.execute(
                "INSERT INTO incidents(entity_kind, entity, title, severity, state, assignee, created, updated,"
                " first, last) VALUES (?,?,?,?,?,?,?,?,?,?)", tuple(record[k] for k in _INCIDENT_FIELDS))
            self._set_labels(cur.lastrowid, record)
            self._set_source_key(cur.lastrowid, record)
        return cur.lastrowid

    def update_incident(self, incident_id, changes: dict) -> None:
        """Set the given fields (of entity_kind … last, rules, centers) of one incident."""
        unknown = set(changes) - set(_INCIDENT_FIELDS) - set(_LABELS)
        if unknown:
            raise ValueError(f"incidents have no field(s) {', '.join(sorted(unknown))}")
        columns = {k: v for k, v in changes.items() if k in _INCIDENT_FIELDS}
        with self.transaction():
            if columns:
                self.db.execute(f"UPDATE incidents SET {', '.join(f'{k}=?' for k in columns)} WHERE id=?",
                                (*columns.values(), incident_id))
            self._set_labels(incident_id, changes)
            self._set_source_key(incident_id, changes)

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
        from .model import IncidentQuery
        return self.search_incidents(IncidentQuery(states=(state,) if state else (), limit=limit, counted=False))["items"]

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
                " enforced, offence, centers) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (decision.created, decision.address, decision.action, decision.ttl, decision.until,
                 decision.reason, decision.rule, decision.alert_id, decision.actor, int(decision.enforced),
                 decision.offence, json.dumps(sorted(decision.centers)) if decision.centers else None))
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

    # ------------------------------------------------------------ cases: observables (secops.cases, secops.incidents)
    _OBSERVABLES_SCHEMA = (
        "CREATE TABLE IF NOT EXISTS observables(alert_id INTEGER NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL,"
        " UNIQUE(alert_id, kind, value))",
        "CREATE INDEX IF NOT EXISTS observables_value ON observables(kind, value)",
        # SLA figures read every open incident's notes (the daemon's sweep): by incident, not a scan each
        "CREATE INDEX IF NOT EXISTS incident_notes_incident ON incident_notes(incident_id, id)")

    def _observables_table(self) -> None:
        # created on first use, so stores from before cases gain it; execute, not executescript, which
        # would commit a batch's open transaction
        if not getattr(self, "_has_observables", False):
            with self.lock:
                for statement in self._OBSERVABLES_SCHEMA:
                    self.db.execute(statement)
            self._has_observables = True

    def save_observables(self, alert_id, pairs) -> None:
        """Index (kind, value) pairs seen in an alert's evidence (kept once per alert)."""
        self._observables_table()
        with self.lock:
            self.db.executemany("INSERT OR IGNORE INTO observables(alert_id, kind, value) VALUES (?,?,?)",
                                [(alert_id, k, v) for k, v in pairs])

    def incident_observables(self, incident_id) -> list[tuple[str, str]]:
        """The distinct (kind, value) pairs of the incident's alerts (they follow alerts that move)."""
        self._observables_table()
        with self.lock:
            return [tuple(r) for r in self.db.execute(
                "SELECT DISTINCT o.kind, o.value FROM observables o JOIN alerts a ON a.id=o.alert_id"
                " WHERE a.incident_id=? ORDER BY o.kind, o.value", (incident_id,))]

    def observable_incidents(self, pairs, limit: int = 20) -> dict[tuple[str, str], list[int]]:
        """For each (kind, value): the incidents whose alerts show it, newest first (at most `limit` each)."""
        self._observables_table()
        out: dict[tuple[str, str], list[int]] = {}
        with self.lock:
            for kind, value in pairs:
                out[(kind, value)] = [r[0] for r in self.db.execute(
                    "SELECT DISTINCT a.incident_id FROM observables o JOIN alerts a ON a.id=o.alert_id"
                    " WHERE o.kind=? AND o.value=? AND a.incident_id IS NOT NULL ORDER BY a.incident_id DESC LIMIT ?",
                    (kind, value, limit))]
        return out

    def notes_of_incidents(self, incident_ids: list) -> dict:
        """{incident id: its notes as incident_notes gives them} for many incidents in one pass."""
        self._observables_table()
        out: dict = {i: [] for i in incident_ids}
        with self.lock:
            for start in range(0, len(incident_ids), 500):
                chunk = list(incident_ids[start:start + 500])
                for r in self.db.execute("SELECT incident_id, created, author, kind, text FROM incident_notes"
                                         f" WHERE incident_id IN ({','.join('?' * len(chunk))}) ORDER BY id", chunk):
                    out[r[0]].append({"created": r[1], "author": r[2], "kind": r[3], "text": r[4]})
        return out

    # ------------------------------------------------------------ incident search and overview (issue #17)
    def _add_incident_search_columns(self) -> None:
        """Columns the incident search needs, on a store from before them: decisions get their centers; incidents
        their rules (derived from their alerts), centers and source address key, once."""
        if "centers" not in {r[1] for r in self.db.execute("PRAGMA table_info(decisions)")}:
            self.db.execute("ALTER TABLE decisions ADD COLUMN centers TEXT")
        if "source_key" not in {r[1] for r in self.db.execute("PRAGMA table_info(incidents)")}:
            with self.transaction():
                for column in ("rules TEXT", "centers TEXT", "source_key BLOB"):
                    self.db.execute(f"ALTER TABLE incidents ADD COLUMN {column}")
                self.db.executemany("UPDATE incidents SET source_key=? WHERE id=?", [
                    (_source_key(entity), iid) for iid, entity in
                    self.db.execute("SELECT id, entity FROM incidents WHERE entity_kind='source.ip'").fetchall()])
                rules: dict[int, set] = {}
                for iid, rule in self.db.execute("SELECT DISTINCT incident_id, rule FROM alerts"
                                                 " WHERE incident_id IS NOT NULL"):
                    rules.setdefault(iid, set()).add(rule)
                self.db.executemany("UPDATE incidents SET rules=? WHERE id=?",
                                    [(_labels_text(names), iid) for iid, names in rules.items()])
        self.db.execute("CREATE INDEX IF NOT EXISTS incidents_source_key ON incidents(source_key)")
        # titles in an FTS5 trigram index: a search for text in titles reads it instead of every title
        # (kept in step with the incidents by triggers, filled once on a store from before it)
        fresh = not self.db.execute("SELECT 1 FROM sqlite_master WHERE name='incident_titles'").fetchone()
        self.db.executescript(_TITLE_INDEX)
        if fresh:
            self.db.execute("INSERT INTO incident_titles(incident_titles) VALUES ('rebuild')")
        # the counts by state × severity read this index alone, whatever the filters but the title's (with the
        # title it grew by half and every count got slower: docs/benchmarks.md)
        self.db.execute("CREATE INDEX IF NOT EXISTS incidents_facets ON incidents(state, severity, last, first,"
                        " source_key, centers, rules)")
        # sorts by severity and by state in their order, page by page from an index
        for name, column in (("severity", "severity"), ("state", "state")):
            self.db.execute(f"CREATE INDEX IF NOT EXISTS incidents_{name}_rank ON incidents({_rank(column)}, id)")

    def _set_source_key(self, incident_id: int, record: dict) -> None:
        if "entity" in record or "entity_kind" in record:
            entity = record.get("entity")
            if entity is None:
                entity = self.db.execute("SELECT entity FROM incidents WHERE id=?", (incident_id,)).fetchone()[0]
            self.db.execute("UPDATE incidents SET source_key = CASE WHEN entity_kind='source.ip' THEN ? END WHERE id=?",
                            (_source_key(entity), incident_id))

    def _set_labels(self, incident_id: int, record: dict) -> None:
        """Replace the incident's rules / centers with those given in `record` (fields absent: unchanged)."""
        given = {field: _labels_text(record[field]) for field in _LABELS if field in record}
        if given:
            self.db.execute(f"UPDATE incidents SET {', '.join(f'{k}=?' for k in given)} WHERE id=?",
                            (*given.values(), incident_id))

    @staticmethod
    def _incident_where(query, skip: str = "", page: bool = False) -> tuple[str, list]:
        """The WHERE clause of an IncidentQuery; `skip` "states", "severities" or "both" leaves those filters out
        (the facets); `page`: for the query of the page's rows (in sort order)."""
        where: list[str] = []
        args: list[Any] = []
        if query.states and skip not in ("states", "both"):
            where.append(f"i.state IN ({','.join('?' * len(query.states))})")
            args += query.states
        if query.severities and skip not in ("severities", "both"):
            where.append(f"i.severity IN ({','.join('?' * len(query.severities))})")
            args += query.severities
        for column, value in (("rules", query.rule), ("centers", query.center)):
            if value is not None:
                where.append(f"instr(i.{column}, ?) > 0")
                args.append(_SEPARATOR + value + _SEPARATOR)
        if query.source is not None:  # an address or range as the span of keys it covers (indexed)
            import ipaddress
            net = ipaddress.ip_network(query.source)
            # a narrow range reads the index; a wide one (most incidents) is checked row by row in sort order
            narrow = net.num_addresses <= (256 if net.version == 4 else 2 ** 64)
            where.append(("i.source_key" if narrow else "+i.source_key") + " BETWEEN ? AND ?")
            args += [_source_key(net.network_address), _source_key(net.broadcast_address)]
        if query.since is not None:
            where.append("i.last >= ?")
            args.append(query.since)
        if query.until is not None:
            where.append("i.first <= ?")
            args.append(query.until)
        if query.text and len(query.text) >= 3:  # a phrase of trigrams: the text anywhere in the title, any case
            # (for the page, +: the matching ids are a set to look rows up in, not the order to read them, so it
            # walks its sort's index and stops at its last row however many titles match; the counts read the
            # matching ids alone, few for a rare text)
            where.append(("+" if page else "") + "i.id IN (SELECT rowid FROM incident_titles WHERE incident_titles MATCH ?)")
            args.append('"' + query.text.replace('"', '""') + '"')
        elif query.text:  # shorter than a trigram: every title is read
            escaped = query.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("i.title LIKE ? ESCAPE '\\'")
            args.append(f"%{escaped}%")
        return (" WHERE " + " AND ".join(where) if where else ""), args

    def search_incidents(self, query) -> dict:
        order_by = {"id": "i.id", "title": "i.title", "severity": _rank("severity"), "state": _rank("state"),
                    "entity": "i.entity", "first": "i.first", "last": "i.last", "updated": "i.updated"}[query.sort]
        direction = "DESC" if query.descending else "ASC"
        where, args = self._incident_where(query, page=True)
        # one pass counts state × severity under the other filters: the total and both facets come from it
        facet_where, facet_args = self._incident_where(query, skip="both")
        with self.lock:
            # the page's ids first: a sort that is not an index's would otherwise compute every matching row's
            # alert count and labels before sorting
            ids = [r[0] for r in self.db.execute(
                f"SELECT i.id FROM incidents i{where} ORDER BY {order_by} {direction}, i.id {direction}"
                " LIMIT ? OFFSET ?", (*args, query.limit, query.offset))] if query.limit else []
            found = {r[0]: r for r in self.db.execute(
                f"SELECT {_INCIDENT_COLUMNS} FROM incidents i WHERE i.id IN ({','.join('?' * len(ids))})", ids)}
            rows = [found[i] for i in ids if i in found]
            cells = self.db.execute(f"SELECT i.state, i.severity, count(*) FROM incidents i{facet_where}"
                                    " GROUP BY i.state, i.severity", facet_args).fetchall() if query.counted else []
        state_ok = (lambda s: s in query.states) if query.states else (lambda s: True)
        severity_ok = (lambda s: s in query.severities) if query.severities else (lambda s: True)
        total, counts = 0, {"by_state": {}, "by_severity": {}}
        for state, severity, n in cells:
            if severity_ok(severity):
                counts["by_state"][state] = counts["by_state"].get(state, 0) + n
            if state_ok(state):
                counts["by_severity"][severity] = counts["by_severity"].get(severity, 0) + n
            if state_ok(state) and severity_ok(severity):
                total += n
        return {"total": total, "items": [_incident_record(r) for r in rows], "counts": counts}

    def incident_overview(self, bounds: list[float], top: int = 10) -> dict:
        from .model import CLOSED, STATES, IncidentQuery
        start, end = bounds[0], bounds[-1]
        bucket = "CASE " + " ".join(f"WHEN created < ? THEN {n}" for n in range(len(bounds) - 1)) + " END"
        days = [{"blocks": 0, "by_center": {}, "by_rule": {}} for _ in bounds[:-1]]
        with self.lock:
            groups = self.db.execute(
                f"SELECT {bucket} AS day, coalesce(rule, 'manual'), centers, count(*) FROM decisions"
                " WHERE action='block' AND created >= ? AND created < ? GROUP BY day, 2, centers",
                (*bounds[1:], start, end)).fetchall()
            sources = self.db.execute(
                "SELECT address, count(*) FROM decisions WHERE action='block' AND created >= ? AND created < ?"
                " GROUP BY address ORDER BY 2 DESC, address LIMIT ?", (start, end, top)).fetchall()
        for day, rule, centers, count in groups:
            into = days[day]
            into["blocks"] += count
            into["by_rule"][rule] = into["by_rule"].get(rule, 0) + count
            for center in json.loads(centers) if centers else ():
                into["by_center"][center] = into["by_center"].get(center, 0) + count
        open_states = tuple(s for s in STATES if s not in CLOSED)
        facets = self.search_incidents(IncidentQuery(states=open_states, limit=0))
        return {"days": days, "top_sources": [{"address": a, "blocks": n} for a, n in sources],
                "open_incidents": facets["total"], "open_by_severity": facets["counts"]["by_severity"],
                "by_state": facets["counts"]["by_state"]}

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
