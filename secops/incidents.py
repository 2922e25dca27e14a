"""Incidents: alerts grouped by entity (source address, else user, else host) and time.

An alert joins the open incident of its entity whose last alert is at most `window` seconds before
it; otherwise it opens a new incident. States: new → acknowledged → contained → resolved or
false-positive; every change, assignment and note is kept with its author and time.
"""
from __future__ import annotations

import json
import time
from typing import Any

from .normalize import iso
from .store import Store

STATES = ("new", "acknowledged", "contained", "resolved", "false-positive")
CLOSED = ("resolved", "false-positive")
TRANSITIONS = {
    "new": {"acknowledged", "contained", "resolved", "false-positive"},
    "acknowledged": {"contained", "resolved", "false-positive"},
    "contained": {"resolved", "false-positive"},
    "resolved": set(),
    "false-positive": set(),
}
SEVERITY = ("informational", "low", "medium", "high", "critical")


class IncidentError(ValueError):
    """A request the incident's state or the input does not allow; the message says why."""


class NotFound(IncidentError):
    pass


def _entity(alert) -> tuple[str, str] | None:
    for kind, value in (("source.ip", alert.source_ip), ("user.name", alert.user), ("host.hostname", alert.host)):
        if value:
            return kind, str(value)
    for k, v in alert.group.items():
        return k, str(v)
    return None


class IncidentGrouper:
    def __init__(self, store: Store, window: float = 3600.0):
        self.store, self.window = store, window

    def add(self, alert) -> int | None:
        """Attach a stored alert to its incident (new or existing); returns the incident id."""
        entity = _entity(alert)
        if entity is None or alert.id is None:
            return None
        kind, value = entity
        db = self.store.db
        now = time.time()
        with self.store.lock:
            current = db.execute("SELECT incident_id FROM alerts WHERE id=?", (alert.id,)).fetchone()
            if current and current[0]:
                db.execute("UPDATE incidents SET last=max(last, ?), updated=? WHERE id=?", (alert.last, now, current[0]))
                return current[0]
            row = db.execute(
                "SELECT id, severity FROM incidents WHERE entity_kind=? AND entity=? AND state NOT IN (?, ?)"
                " AND last >= ? ORDER BY last DESC LIMIT 1",
                (kind, value, *CLOSED, alert.first - self.window)).fetchone()
            if row:
                incident_id, severity = row
                if SEVERITY.index(_level(alert.rule.level)) > SEVERITY.index(severity):
                    severity = _level(alert.rule.level)
                db.execute("UPDATE incidents SET last=max(last, ?), first=min(first, ?), severity=?, updated=?"
                           " WHERE id=?", (alert.last, alert.first, severity, now, incident_id))
            else:
                cur = db.execute(
                    "INSERT INTO incidents(entity_kind, entity, title, severity, state, assignee, created, updated,"
                    " first, last) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (kind, value, f"{alert.rule.title} — {value}", _level(alert.rule.level), "new", None, now, now,
                     alert.first, alert.last))
                incident_id = cur.lastrowid
            db.execute("UPDATE alerts SET incident_id=? WHERE id=?", (incident_id, alert.id))
        return incident_id


def _level(level: str) -> str:
    return level if level in SEVERITY else "medium"


class Incidents:
    """Queries and state changes, shared by the CLI and the HTTP API."""

    def __init__(self, store: Store):
        self.store = store

    def list(self, state: str | None = None, limit: int = 100) -> list[dict]:
        if state is not None and state not in STATES:
            raise IncidentError(f"state {state!r} is not one of {', '.join(STATES)}")
        sql = ("SELECT i.id, i.entity_kind, i.entity, i.title, i.severity, i.state, i.assignee, i.created, i.updated,"
               " i.first, i.last, (SELECT count(*) FROM alerts a WHERE a.incident_id=i.id) FROM incidents i")
        args: list[Any] = []
        if state:
            sql += " WHERE i.state=?"
            args.append(state)
        sql += " ORDER BY i.last DESC LIMIT ?"
        args.append(limit)
        with self.store.lock:
            rows = self.store.db.execute(sql, args).fetchall()
        return [_incident(r) for r in rows]

    def show(self, incident_id: int) -> dict:
        with self.store.lock:
            row = self.store.db.execute(
                "SELECT i.id, i.entity_kind, i.entity, i.title, i.severity, i.state, i.assignee, i.created, i.updated,"
                " i.first, i.last, (SELECT count(*) FROM alerts a WHERE a.incident_id=i.id) FROM incidents i"
                " WHERE i.id=?", (incident_id,)).fetchone()
            if row is None:
                raise NotFound(f"incident {incident_id} does not exist; see `govctl incidents list`")
            alerts = self.store.db.execute(
                "SELECT id, rule, title, level, tags, source_ip, user_name, host, first, last, count, evidence"
                " FROM alerts WHERE incident_id=? ORDER BY first", (incident_id,)).fetchall()
            notes = self.store.db.execute(
                "SELECT created, author, kind, text FROM incident_notes WHERE incident_id=? ORDER BY id",
                (incident_id,)).fetchall()
            decisions = self.store.db.execute(
                "SELECT id, created, address, action, until, reason, actor FROM decisions WHERE alert_id IN"
                " (SELECT id FROM alerts WHERE incident_id=?) ORDER BY id", (incident_id,)).fetchall()
        out = _incident(row)
        out["alerts"] = [{"id": a[0], "rule": a[1], "title": a[2], "level": a[3], "tags": json.loads(a[4] or "[]"),
                          "source.ip": a[5], "user": a[6], "host": a[7], "first": iso(a[8]), "last": iso(a[9]),
                          "count": a[10],
                          "evidence": [e.get("event.original", "") for e in json.loads(a[11] or "[]")]}
                         for a in alerts]
        out["notes"] = [{"time": iso(n[0]), "author": n[1], "kind": n[2], "text": n[3]} for n in notes]
        out["decisions"] = [{"id": d[0], "time": iso(d[1]), "address": d[2], "action": d[3],
                             "until": iso(d[4]) if d[4] else None, "reason": d[5], "actor": d[6]} for d in decisions]
        return out

    def _transition(self, incident_id: int, target: str, actor: str, note: str | None) -> dict:
        current = self.show(incident_id)
        if target not in TRANSITIONS[current["state"]]:
            raise IncidentError(f"incident {incident_id} is {current['state']}; it cannot become {target}"
                                + (" (closed incidents stay closed)" if current["state"] in CLOSED else ""))
        now = time.time()
        with self.store.lock:
            self.store.db.execute("UPDATE incidents SET state=?, updated=? WHERE id=?", (target, now, incident_id))
            self._note(incident_id, actor, "state", f"{current['state']} → {target}" + (f": {note}" if note else ""), now)
        return self.show(incident_id)

    def ack(self, incident_id: int, actor: str, note: str | None = None) -> dict:
        return self._transition(incident_id, "acknowledged", actor, note)

    def contain(self, incident_id: int, actor: str, note: str | None = None) -> dict:
        return self._transition(incident_id, "contained", actor, note)

    def resolve(self, incident_id: int, actor: str, note: str | None = None, false_positive: bool = False) -> dict:
        return self._transition(incident_id, "false-positive" if false_positive else "resolved", actor, note)

    def assign(self, incident_id: int, assignee: str, actor: str) -> dict:
        if not assignee.strip():
            raise IncidentError("assignee must not be empty")
        self.show(incident_id)
        now = time.time()
        with self.store.lock:
            self.store.db.execute("UPDATE incidents SET assignee=?, updated=? WHERE id=?", (assignee, now, incident_id))
            self._note(incident_id, actor, "assign", f"assigned to {assignee}", now)
        return self.show(incident_id)

    def note(self, incident_id: int, author: str, text: str) -> dict:
        if not text.strip():
            raise IncidentError("a note needs text")
        self.show(incident_id)
        with self.store.lock:
            self._note(incident_id, author, "note", text, time.time())
        return self.show(incident_id)

    def _note(self, incident_id: int, author: str, kind: str, text: str, now: float) -> None:
        self.store.db.execute("INSERT INTO incident_notes(incident_id, created, author, kind, text) VALUES (?,?,?,?,?)",
                              (incident_id, now, author, kind, text))


def _incident(r) -> dict:
    return {"id": r[0], "entity": {"kind": r[1], "value": r[2]}, "title": r[3], "severity": r[4], "state": r[5],
            "assignee": r[6], "created": iso(r[7]), "updated": iso(r[8]), "first": iso(r[9]), "last": iso(r[10]),
            "alerts": r[11]}
