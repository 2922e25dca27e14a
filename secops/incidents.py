"""Incidents: alerts grouped by entity (source address, else user, else host) and time.

An alert joins the open incident of its entity whose last alert is at most `window` seconds before
it; otherwise it opens a new incident. States: new → acknowledged → contained → resolved or
false-positive; every change, assignment and note is kept with its author and time.
"""
from __future__ import annotations

import time
from typing import Iterable

from .limits import (ASSIGNEE, INCIDENT_LABEL, INCIDENT_SOURCE, LIST_LIMIT, LIST_OFFSET, NOTE, OVERVIEW_DAYS,
                     RECORD_ID, TIME_ZONE, TITLE_QUERY)
from .model import CLOSED, SEVERITY, STATES  # noqa: F401 (the vocabulary, shared with the stores; used from here)
from .normalize import iso

TRANSITIONS = {
    "new": {"acknowledged", "contained", "resolved", "false-positive"},
    "acknowledged": {"contained", "resolved", "false-positive"},
    "contained": {"resolved", "false-positive"},
    "resolved": set(),
    "false-positive": set(),
}


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

    def add(self, alert, centers: Iterable[str] = ()) -> int | None:
        """Attach a stored alert to its incident (new or existing); returns the incident id. `centers`: those
        whose enforcement points took the block the alert caused (the incident carries them, and its rules)."""
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
                    store.update_incident(current, {"last": max(record["last"], alert.last), "updated": now,
                                                    **_grown_labels(record, alert, centers)})
                    return current
            record = store.open_incident(kind, value, alert.first - self.window, CLOSED)
            if record is not None:
                incident_id = record["id"]
                severity = level if SEVERITY.index(level) > SEVERITY.index(record["severity"]) else record["severity"]
                store.update_incident(incident_id, {"last": max(record["last"], alert.last),
                                                    "first": min(record["first"], alert.first),
                                                    "severity": severity, "updated": now,
                                                    **_grown_labels(record, alert, centers)})
            else:
                incident_id = store.create_incident({
                    "entity_kind": kind, "entity": value, "title": f"{alert.rule.title} — {value}",
                    "severity": level, "state": "new", "assignee": None, "created": now, "updated": now,
                    "first": alert.first, "last": alert.last,
                    "rules": [alert.rule.name], "centers": sorted(set(centers))})
            store.link_alert(alert.id, incident_id)
        return incident_id


def _grown_labels(record: dict, alert, centers: Iterable[str]) -> dict:
    """The incident's rules and centers with the alert's added, only those that changed (most alerts of an
    ongoing attack change neither, and rewriting them would cost a write each)."""
    changes = {}
    rules = set(record.get("rules") or ()) | {alert.rule.name}
    if len(rules) != len(record.get("rules") or ()):
        changes["rules"] = sorted(rules)
    grown = set(record.get("centers") or ()) | set(centers)
    if len(grown) != len(record.get("centers") or ()):
        changes["centers"] = sorted(grown)
    return changes


def _level(level: str) -> str:
    return level if level in SEVERITY else "medium"


class Incidents:
    """Queries and state changes, shared by the CLI and the HTTP API, on either store."""

    def __init__(self, store):
        self.store = store

    def list(self, state: str | None = None, limit: int = 100) -> list[dict]:
        """Newest activity first (`search` with one state at most)."""
        return self.search(states=() if state is None else (state,), limit=limit)["items"]

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

    # ---------------------------------------------------------------- search and overview (console, issue #17)
    def search(self, states: Iterable[str] = (), severities: Iterable[str] = (), rule: str | None = None,
               center: str | None = None, source: str | None = None, since: str | float | None = None,
               until: str | float | None = None, text: str | None = None, sort: str = "-last",
               offset: int = 0, limit: int = 50) -> dict:
        """Incidents matching every filter given, one page of them, the total and the counts by state and
        by severity (facets: see secops.model.IncidentQuery). The API's GET /incidents and `govctl incidents
        list` both call this with what their caller sent; anything out of bounds raises InvalidInput."""
        query = parse_incident_query(states, severities, rule, center, source, since, until, text, sort, offset, limit)
        found = self.store.search_incidents(query)
        return {"total": found["total"], "offset": query.offset, "limit": query.limit,
                "items": [_incident(r) for r in found["items"]],
                "counts": {"by_state": {s: found["counts"]["by_state"].get(s, 0) for s in STATES},
                           "by_severity": {s: found["counts"]["by_severity"].get(s, 0) for s in SEVERITY}}}

    def overview(self, days: int = 7, zone: str = "Asia/Shanghai", top: int = 10, now: float | None = None) -> dict:
        """Blocks per day (in `zone`, today last) by center and by rule, today's and the period's totals, the
        most blocked addresses of the period and open incidents by severity and state; the store aggregates."""
        import datetime as dt
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
        if isinstance(days, bool) or not isinstance(days, int) or not OVERVIEW_DAYS.minimum <= days <= OVERVIEW_DAYS.maximum:
            raise InvalidInput(f"days {days!r} is out of range: {OVERVIEW_DAYS.description}")
        _bounded_text(TIME_ZONE, zone, "zone")
        try:
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(f"zone {zone!r} is not an IANA time zone (e.g. Asia/Shanghai, UTC)") from None
        today = dt.datetime.fromtimestamp(time.time() if now is None else now, tz).date()
        dates = [today - dt.timedelta(days=n) for n in range(days - 1, -1, -1)]
        bounds = [dt.datetime.combine(d, dt.time(), tz).timestamp() for d in [*dates, today + dt.timedelta(days=1)]]
        found = self.store.incident_overview(bounds, top)
        per_day = [{"date": d.isoformat(), **day} for d, day in zip(dates, found["days"])]
        period: dict = {"blocks": 0, "by_center": {}, "by_rule": {}}
        for day in per_day:
            period["blocks"] += day["blocks"]
            for key in ("by_center", "by_rule"):
                for name, count in day[key].items():
                    period[key][name] = period[key].get(name, 0) + count
        return {"zone": zone, "days": per_day, "today": per_day[-1], "period": period,
                "top_sources": found["top_sources"], "open_incidents": found["open_incidents"],
                "open_by_severity": {s: found["open_by_severity"].get(s, 0) for s in SEVERITY},
                "by_state": {s: found["by_state"].get(s, 0) for s in STATES}}


def parse_incident_query(states=(), severities=(), rule=None, center=None, source=None, since=None, until=None,
                         text=None, sort="-last", offset=0, limit=50):
    """An IncidentQuery from what a caller sent (each input hostile until checked), or InvalidInput naming
    the input and its bound."""
    from .address import AddressError, network, parse
    from .model import INCIDENT_SORTS, IncidentQuery
    from .stores import parse_time

    def one_of(values, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
        values = tuple(dict.fromkeys(values or ()))
        for v in values:
            if v not in allowed:
                raise InvalidInput(f"{what} {v!r} is not one of {', '.join(allowed)}")
        return values

    def whole(value, bound, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not bound.minimum <= value <= bound.maximum:
            raise InvalidInput(f"{what} {value!r} is out of range: {bound.description}")
        return value

    def label(value, what: str) -> str | None:
        return None if value is None else _bounded_text(INCIDENT_LABEL, value, what)

    states = one_of(states, STATES, "state")
    severities = one_of(severities, SEVERITY, "severity")
    if source is not None:
        _bounded_text(INCIDENT_SOURCE, source, "source")
        try:  # one canonical form: ::ffff:203.0.113.9 is 203.0.113.9, ranges likewise
            source = str(network(source)) if "/" in source else str(parse(source.strip()))
        except (AddressError, ValueError):
            raise InvalidInput(f"source {source!r} is not an IP address or CIDR range "
                               "(e.g. 203.0.113.9 or 203.0.113.0/24)") from None
    try:
        start = since if isinstance(since, (int, float)) or since is None else parse_time(since, "since")
        end = until if isinstance(until, (int, float)) or until is None else parse_time(until, "until")
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if start is not None and end is not None and start > end:
        raise InvalidInput("since is after until: give a time range that starts before it ends")
    if text:
        _bounded_text(TITLE_QUERY, text, "text")
    descending = sort.startswith("-")
    column = sort.lstrip("-")
    if column not in INCIDENT_SORTS or sort.count("-") > 1:
        raise InvalidInput(f"sort {sort!r} is not one of {', '.join(INCIDENT_SORTS)} (a leading - sorts descending)")
    offset, limit = whole(offset, LIST_OFFSET, "offset"), whole(limit, LIST_LIMIT, "limit")
    if offset + limit > LIST_LIMIT.maximum:
        raise InvalidInput(f"offset {offset} + limit {limit} is over {LIST_LIMIT.maximum}: narrow the filter instead")
    return IncidentQuery(states=states, severities=severities, rule=label(rule, "rule"), center=label(center, "center"),
                         source=source, since=start, until=end, text=text or None, sort=column,
                         descending=descending, offset=offset, limit=limit)


def _incident(r: dict) -> dict:
    return {"id": r["id"], "entity": {"kind": r["entity_kind"], "value": r["entity"]}, "title": r["title"],
            "severity": r["severity"], "state": r["state"], "assignee": r["assignee"], "created": iso(r["created"]),
            "updated": iso(r["updated"]), "first": iso(r["first"]), "last": iso(r["last"]), "alerts": r["alerts"],
            "rules": list(r.get("rules") or ()), "centers": list(r.get("centers") or ())}
