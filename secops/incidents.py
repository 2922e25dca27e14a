"""Incidents: alerts grouped by entity (source address, else user, else host) and time.

An alert joins the open incident of its entity whose last alert is at most `window` seconds before
it; otherwise it opens a new incident. States: new → acknowledged → contained → resolved or
false-positive; every change, assignment and note is kept with its author and time.
"""
from __future__ import annotations

import time

from .limits import ASSIGNEE, LIST_LIMIT, NOTE, RECORD_ID
from .normalize import iso

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


class InvalidInput(IncidentError):
    """An argument outside its bound (secops/schemas/limits.yaml); the message names it and the bound."""


def _bounded_text(bound, value: str, what: str) -> str:
    try:
        return bound.check_text(value, what)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def _entity(alert) -> tuple[str, str] | None:
    for kind, value in (("source.ip", alert.source_ip), ("user.name", alert.user), ("host.hostname", alert.host)):
        if value:
            return kind, str(value)
    for k, v in alert.group.items():
        return k, str(v)
    return None


class IncidentGrouper:
    """Attaches stored alerts to incidents, through the store interface (secops/stores.py)."""

    def __init__(self, store, window: float = 3600.0):
        self.store, self.window = store, window

    def add(self, alert) -> int | None:
        """Attach a stored alert to its incident (new or existing); returns the incident id."""
        entity = _entity(alert)
        if entity is None or alert.id is None:
            return None
        kind, value = entity
        store = self.store
        now = time.time()
        level = _level(alert.rule.level)
        with store.lock:
            current = store.alert_incident(alert.id)
            if current is not None:
                record = store.incident(current)
                if record is not None:
                    store.update_incident(current, {"last": max(record["last"], alert.last), "updated": now})
                    return current
            record = store.open_incident(kind, value, alert.first - self.window, CLOSED)
            if record is not None:
                incident_id = record["id"]
                severity = level if SEVERITY.index(level) > SEVERITY.index(record["severity"]) else record["severity"]
                store.update_incident(incident_id, {"last": max(record["last"], alert.last),
                                                    "first": min(record["first"], alert.first),
                                                    "severity": severity, "updated": now})
            else:
                incident_id = store.create_incident({
                    "entity_kind": kind, "entity": value, "title": f"{alert.rule.title} — {value}",
                    "severity": level, "state": "new", "assignee": None, "created": now, "updated": now,
                    "first": alert.first, "last": alert.last})
            store.link_alert(alert.id, incident_id)
        return incident_id


def _level(level: str) -> str:
    return level if level in SEVERITY else "medium"


class Incidents:
    """Queries and state changes, shared by the CLI and the HTTP API, on either store."""

    def __init__(self, store):
        self.store = store

    def list(self, state: str | None = None, limit: int = 100) -> list[dict]:
        if state is not None and state not in STATES:
            raise InvalidInput(f"state {state!r} is not one of {', '.join(STATES)}")
        if isinstance(limit, bool) or not isinstance(limit, int) or not LIST_LIMIT.minimum <= limit <= LIST_LIMIT.maximum:
            raise InvalidInput(f"limit {limit!r} is out of range: {LIST_LIMIT.description}")
        return [_incident(r) for r in self.store.incidents(state, limit)]

    def show(self, incident_id) -> dict:
        # an id no store can hold names no incident (SQLite would overflow on it)
        in_range = isinstance(incident_id, int) and RECORD_ID.minimum <= incident_id <= RECORD_ID.maximum
        record = self.store.incident(incident_id) if in_range else None
        if record is None:
            raise NotFound(f"incident {incident_id} does not exist; see `govctl incidents list`")
        alerts = self.store.incident_alerts(incident_id)
        out = _incident(record)
        out["alerts"] = [{**a, "first": iso(a["first"]), "last": iso(a["last"]),
                          "evidence": [e.get("event.original", "") for e in a["evidence"]]} for a in alerts]
        out["notes"] = [{"time": iso(n["created"]), "author": n["author"], "kind": n["kind"], "text": n["text"]}
                        for n in self.store.incident_notes(incident_id)]
        out["decisions"] = [{k: d[k] for k in ("id", "address", "action", "until", "reason", "actor")}
                            | {"time": d["created"]}
                            for d in self.store.decisions_for_alerts([a["id"] for a in alerts])]
        return out

    def _transition(self, incident_id, target: str, actor: str, note: str | None) -> dict:
        if note:  # an empty note is no note
            _bounded_text(NOTE, note, "note")
        with self.store.lock:
            current = self.show(incident_id)
            if target not in TRANSITIONS[current["state"]]:
                raise IncidentError(f"incident {incident_id} is {current['state']}; it cannot become {target}"
                                    + (" (closed incidents stay closed)" if current["state"] in CLOSED else ""))
            now = time.time()
            self.store.update_incident(incident_id, {"state": target, "updated": now})
            self.store.add_incident_note(incident_id, now, actor, "state",
                                         f"{current['state']} → {target}" + (f": {note}" if note else ""))
        return self.show(incident_id)

    def ack(self, incident_id, actor: str, note: str | None = None) -> dict:
        return self._transition(incident_id, "acknowledged", actor, note)

    def contain(self, incident_id, actor: str, note: str | None = None) -> dict:
        return self._transition(incident_id, "contained", actor, note)

    def resolve(self, incident_id, actor: str, note: str | None = None, false_positive: bool = False) -> dict:
        return self._transition(incident_id, "false-positive" if false_positive else "resolved", actor, note)

    def assign(self, incident_id, assignee: str, actor: str) -> dict:
        _bounded_text(ASSIGNEE, assignee, "assignee")
        self.show(incident_id)
        now = time.time()
        with self.store.lock:
            self.store.update_incident(incident_id, {"assignee": assignee, "updated": now})
            self.store.add_incident_note(incident_id, now, actor, "assign", f"assigned to {assignee}")
        return self.show(incident_id)

    def note(self, incident_id, author: str, text: str) -> dict:
        _bounded_text(NOTE, text, "note")
        self.show(incident_id)
        self.store.add_incident_note(incident_id, time.time(), author, "note", text)
        return self.show(incident_id)


def _incident(r: dict) -> dict:
    return {"id": r["id"], "entity": {"kind": r["entity_kind"], "value": r["entity"]}, "title": r["title"],
            "severity": r["severity"], "state": r["state"], "assignee": r["assignee"], "created": iso(r["created"]),
            "updated": iso(r["updated"]), "first": iso(r["first"]), "last": iso(r["last"]), "alerts": r["alerts"]}
