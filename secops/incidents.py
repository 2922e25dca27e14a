"""Incidents: alerts grouped by entity (source address, else user, else host) and time.

An alert joins the open incident of its entity whose last alert is at most `window` seconds before
it; otherwise it opens a new incident. States: new → acknowledged → contained → resolved or
false-positive; every change, assignment and note is kept with its author and time.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable

from crypto.audit import record as audit_record

from .cases import SLA_AUTHOR, breaches_to_record, checklist, load_plans, load_sla, observables, plan_for, sla_status
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
        self._indexed: dict = {}  # alert id → (evidence items looked at, observables stored) of this process

    def add(self, alert, centers: Iterable[str] = ()) -> int | None:
        """Attach a stored alert to its incident (new or existing); returns the incident id. `centers`: those
        whose enforcement points took the block the alert caused (the incident carries them, and its rules)."""
        entity = _entity(alert)
        if entity is None or alert.id is None:
            return None
        incident_id = self._attach(alert, entity, centers)
        self._index_observables(alert)
        return incident_id

    def _index_observables(self, alert) -> None:
        # only evidence items not looked at yet, and only pairs not stored yet, reach the store; evidence is
        # capped (EVIDENCE_PER_ALERT), so once it is full a growing alert costs one dict lookup
        looked, stored = self._indexed.get(alert.id, (0, frozenset()))
        if looked == len(alert.evidence):
            return
        if len(self._indexed) >= 100_000:
            self._indexed.clear()
        new = observables(alert.evidence[looked:]) - stored
        self._indexed[alert.id] = (len(alert.evidence), stored | new)
        if new:
            self.store.save_observables(alert.id, sorted(new))

    def _attach(self, alert, entity: tuple[str, str], centers: Iterable[str]) -> int:
        kind, value = entity
        store = self.store
        now = time.time()
        level = _level(alert.rule.level)
        with store.lock:
            current = store.alert_incident(alert.id)
            if current is not None:
                record = store.incident(current)
                if record is not None:
                    grew = alert.last > record["last"]
                    store.update_incident(current, {"last": max(record["last"], alert.last), "updated": now,
                                                    **_grown_labels(record, alert, centers)})
                    if grew and record["state"] in CLOSED:
                        # the attack goes on after the incident was closed: it is open again, not silently
                        # appended to a closed case (docs/secops.md, "Cases")
                        reopen_record(store, current, record["state"], "new", now, REOPEN_AUTHOR,
                                      f"alert {alert.id} ({alert.rule.name}) grew after the incident was"
                                      f" {record['state']}")
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


REOPEN_AUTHOR = "govctl"


def reopen_record(store, incident_id, was: str, state: str, now: float, actor: str, why: str) -> None:
    """Reopen a closed incident: a "reopen" note (a new SLA cycle starts) and the state change."""
    store.update_incident(incident_id, {"state": state, "updated": now})
    store.add_incident_note(incident_id, now, actor, "reopen", why)
    store.add_incident_note(incident_id, now, actor, "state", f"{was} → {state}: reopened")

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

    def __init__(self, store, sla_file=None, plans_dir=None, clock=time.time):
        """`sla_file` and `plans_dir` replace the bundled secops/sla.yaml and secops/plans/ (CaseDataError
        when one is off its schema); `clock` gives "now" for SLA figures (a test shifts it)."""
        self.store, self.clock = store, clock
        self.sla_policy = load_sla(*([Path(sla_file)] if sla_file else []))
        self.plans = load_plans(*([Path(plans_dir)] if plans_dir else []))

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
        out.update(self._case(record, alerts))
        return out

    def _transition(self, incident_id, target: str, actor: str, note: str | None) -> dict:
        if note:  # an empty note is no note
            _bounded_text(NOTE, note, "note")
        with self.store.lock:
            current = self.show(incident_id)
            if target not in TRANSITIONS[current["state"]]:
                raise IncidentError(f"incident {incident_id} is {current['state']}; it cannot become {target}"
                                    + (" (closed incidents stay closed)" if current["state"] in CLOSED else ""))
            now = self.clock()
            self.store.update_incident(incident_id, {"state": target, "updated": now})
            self.store.add_incident_note(incident_id, now, actor, "state",
                                         f"{current['state']} → {target}" + (f": {note}" if note else ""))
        audit_record(actor, "incident.state", f"incident:{incident_id}", {"from": current["state"], "to": target})
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
        now = self.clock()
        with self.store.lock:
            self.store.update_incident(incident_id, {"assignee": assignee, "updated": now})
            self.store.add_incident_note(incident_id, now, actor, "assign", f"assigned to {assignee}")
        audit_record(actor, "incident.assign", f"incident:{incident_id}", {"assignee": assignee})
        return self.show(incident_id)

    def note(self, incident_id, author: str, text: str) -> dict:
        _bounded_text(NOTE, text, "note")
        self.show(incident_id)
        self.store.add_incident_note(incident_id, self.clock(), author, "note", text)
        return self.show(incident_id)

    # ------------------------------------------------------------ cases: SLAs, plans, observables, merge/split/reopen
    def _case(self, record: dict, alerts: list[dict]) -> dict:
        """The case parts of an incident's detail; records a due SLA breach once (see record_breaches)."""
        notes = self.store.incident_notes(record["id"])
        status = self._record_breaches(record, notes)
        pairs = self.store.incident_observables(record["id"])
        seen = self.store.observable_incidents(pairs) if pairs else {}
        plan = plan_for(alerts, self.plans)
        tasks = checklist(plan, notes)
        if tasks:
            for t in tasks["tasks"]:
                t["at"] = iso(t["at"]) if t["at"] else None
        merged_into = next((int(n["text"].split("#", 1)[1].split(":", 1)[0]) for n in reversed(notes)
                            if n["kind"] == "merge" and n["text"].startswith("merged into #")), None)
        return {"sla": _sla_out(status), "checklist": tasks, "merged_into": merged_into,
                "observables": [{"kind": k, "value": v,
                                 "other_incidents": [i for i in seen.get((k, v), []) if i != record["id"]]}
                                for k, v in pairs]}

    def _record_breaches(self, record: dict, notes: list[dict]) -> dict:
        now = self.clock()
        status = sla_status(record, notes, self.sla_policy, now)
        if record["state"] in CLOSED and not any(t["status"] == "breached" for t in status["targets"]):
            return status
        with self.store.lock:
            for target in breaches_to_record(status, notes):
                late = (target["reached"] or now) - target["due"]
                text = (f"{target['target']}: due {iso(target['due'])}, "
                        + (f"reached {iso(target['reached'])}" if target["reached"] else "not reached")
                        + f", {late / 60:.0f} min late (SLA {target['seconds'] // 60} min, severity {record['severity']})")
                self.store.add_incident_note(record["id"], now, SLA_AUTHOR, "sla-breach", text)
        return status

    def sla(self, limit: int = 1000) -> list[dict]:
        """The SLA figures of every open incident (newest activity first), recording breaches now due: what
        `govctl incidents sla`, the API and the daemon's periodic sweep call."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not LIST_LIMIT.minimum <= limit <= LIST_LIMIT.maximum:
            raise InvalidInput(f"limit {limit!r} is out of range: {LIST_LIMIT.description}")
        out = []
        for state in STATES:
            if state in CLOSED:
                continue
            records = self.store.incidents(state, limit)
            notes = self.store.notes_of_incidents([r["id"] for r in records])
            for record in records:
                status = self._record_breaches(record, notes[record["id"]])
                out.append({"id": record["id"], "title": record["title"], "state": record["state"],
                            "severity": record["severity"], "last": record["last"], **_sla_out(status)})
        out.sort(key=lambda r: r.pop("last"), reverse=True)
        return out[:limit]

    def _open(self, incident_id, what: str) -> dict:
        record = self.show(incident_id)
        if record["state"] in CLOSED:
            raise IncidentError(f"incident {incident_id} is {record['state']}; reopen it before you {what} it")
        return record

    def merge(self, target_id, source_ids: list, actor: str, note: str | None = None) -> dict:
        """Move every alert of the `source_ids` incidents into `target_id`; each source is closed as merged.
        Both sides keep a "merge" note naming the alerts that moved."""
        if note:
            _bounded_text(NOTE, note, "note")
        sources = list(dict.fromkeys(source_ids))
        if not sources or len(sources) > 50:
            raise InvalidInput("merge needs 1 to 50 other incidents")
        if target_id in sources:
            raise InvalidInput(f"incident {target_id} cannot be merged into itself")
        with self.store.lock:
            target = self._open(target_id, "merge into")
            records = [self.show(s) for s in sources]
            now = self.clock()
            severity, first, last = target["severity"], self.store.incident(target_id)["first"], \
                self.store.incident(target_id)["last"]
            target_raw = self.store.incident(target_id)
            rules, centers = set(target_raw.get("rules") or ()), set(target_raw.get("centers") or ())
            for src in records:
                raw = self.store.incident(src["id"])
                moved = [a["id"] for a in self.store.incident_alerts(src["id"])]
                for alert_id in moved:
                    self.store.link_alert(alert_id, target_id)
                if SEVERITY.index(src["severity"]) > SEVERITY.index(severity):
                    severity = src["severity"]
                first, last = min(first, raw["first"]), max(last, raw["last"])
                rules |= set(raw.get("rules") or ())  # the search finds the merged incident by every rule and center
                centers |= set(raw.get("centers") or ())
                ids = ", ".join(map(str, moved)) or "none"
                extra = f" — {note}" if note else ""
                self.store.add_incident_note(target_id, now, actor, "merge", f"merged #{src['id']}: alerts {ids}{extra}")
                self.store.add_incident_note(src["id"], now, actor, "merge", f"merged into #{target_id}: alerts {ids}{extra}")
                if src["state"] not in CLOSED:
                    self.store.update_incident(src["id"], {"state": "resolved", "updated": now})
                    self.store.add_incident_note(src["id"], now, actor, "state",
                                                 f"{src['state']} → resolved: merged into #{target_id}")
            self.store.update_incident(target_id, {"severity": severity, "first": first, "last": last, "updated": now,
                                                   "rules": sorted(rules), "centers": sorted(centers)})
        audit_record(actor, "incident.merge", f"incident:{target_id}", {"merged": [s["id"] for s in records]})
        return self.show(target_id)

    def split(self, incident_id, alert_ids: list, actor: str, note: str | None = None) -> dict:
        """Move some alerts of an open incident into a new incident (state new); returns the new one."""
        if note:
            _bounded_text(NOTE, note, "note")
        wanted = list(dict.fromkeys(str(a) for a in alert_ids))
        with self.store.lock:
            self._open(incident_id, "split")
            alerts = self.store.incident_alerts(incident_id)
            by_id = {str(a["id"]): a for a in alerts}
            unknown = [a for a in wanted if a not in by_id]
            if not wanted or unknown:
                raise InvalidInput(f"alert(s) {', '.join(unknown) or '(none given)'} are not alerts of incident"
                                   f" {incident_id}; its alerts: {', '.join(by_id)}")
            if len(wanted) == len(alerts):
                raise InvalidInput(f"splitting every alert of incident {incident_id} leaves it empty; keep one")
            moving = [by_id[a] for a in wanted]
            staying = [a for a in alerts if str(a["id"]) not in wanted]
            now = self.clock()
            lead = moving[0]
            kind, value = next(((k, str(lead[f])) for k, f in (("source.ip", "source.ip"), ("user.name", "user"),
                                                                ("host.hostname", "host")) if lead.get(f)),
                               (self.store.incident(incident_id)["entity_kind"], self.store.incident(incident_id)["entity"]))
            new_id = self.store.create_incident({
                "entity_kind": kind, "entity": value, "title": f"{lead['title'] or lead['rule']} — {value}",
                "severity": _max_level(moving), "state": "new", "assignee": None, "created": now, "updated": now,
                "first": min(a["first"] for a in moving), "last": max(a["last"] for a in moving),
                # the rules of the alerts each side keeps; the centers that blocked the source stay on both
                "rules": sorted({a["rule"] for a in moving}),
                "centers": list(self.store.incident(incident_id).get("centers") or ())})
            for a in moving:
                self.store.link_alert(a["id"], new_id)
            self.store.update_incident(incident_id, {"severity": _max_level(staying), "updated": now,
                                                     "first": min(a["first"] for a in staying),
                                                     "last": max(a["last"] for a in staying),
                                                     "rules": sorted({a["rule"] for a in staying})})
            ids = ", ".join(wanted)
            extra = f" — {note}" if note else ""
            self.store.add_incident_note(incident_id, now, actor, "split", f"split into #{new_id}: alerts {ids}{extra}")
            self.store.add_incident_note(new_id, now, actor, "split", f"split from #{incident_id}: alerts {ids}{extra}")
        audit_record(actor, "incident.split", f"incident:{incident_id}", {"new_incident": new_id, "alerts": wanted})
        return self.show(new_id)

    def reopen(self, incident_id, actor: str, note: str | None = None) -> dict:
        """A closed incident becomes acknowledged again (the one reopening it has looked at it); its SLA
        cycle starts again. An incident merged into another is reopened through that one."""
        if note:
            _bounded_text(NOTE, note, "note")
        with self.store.lock:
            current = self.show(incident_id)
            if current["state"] not in CLOSED:
                raise IncidentError(f"incident {incident_id} is {current['state']}; only a closed incident reopens")
            if current["merged_into"] is not None:
                raise IncidentError(f"incident {incident_id} was merged into #{current['merged_into']};"
                                    f" reopen #{current['merged_into']} instead")
            reopen_record(self.store, incident_id, current["state"], "acknowledged", self.clock(), actor,
                          note or "reopened by hand")
        audit_record(actor, "incident.reopen", f"incident:{incident_id}", {"from": current["state"]})
        return self.show(incident_id)

    def task(self, incident_id, task_id: str, actor: str, done: bool = True) -> dict:
        """Tick a task of the incident's response plan off (or undo it), with who and when."""
        current = self.show(incident_id)
        tasks = current["checklist"]
        if tasks is None:
            raise IncidentError(f"incident {incident_id} has no response plan (no plan in secops/plans/ fits its"
                                " alerts)")
        if task_id not in {t["id"] for t in tasks["tasks"]}:
            raise InvalidInput(f"task {task_id!r} is not in plan {tasks['plan']}; its tasks: "
                               + ", ".join(t["id"] for t in tasks["tasks"]))
        self.store.add_incident_note(incident_id, self.clock(), actor, "task",
                                     f"{tasks['plan']}.{task_id}: {'done' if done else 'undone'}")
        audit_record(actor, "incident.task", f"incident:{incident_id}", {"task": f"{tasks['plan']}.{task_id}", "done": done})
        return self.show(incident_id)

    def report(self, incident_id, author: str) -> dict:
        """The incident report document (secops.case_report renders it as JSON or a Chinese PDF)."""
        from .case_report import build
        return build(self.show(incident_id), iso(self.clock()), author)

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


def _max_level(alerts: list[dict]) -> str:
    return max((_level(a["level"] or "medium") for a in alerts), key=SEVERITY.index)


def _sla_out(status: dict) -> dict:
    """SLA figures for JSON: times as ISO 8601."""
    return {"class": status["class"], "since": iso(status["since"]),
            "targets": [{**t, "due": iso(t["due"]), "reached": iso(t["reached"]) if t["reached"] else None,
                         "remaining": None if t["remaining"] is None else round(t["remaining"])}
                        for t in status["targets"]],
            "breached": [t["target"] for t in status["targets"] if t["status"] == "breached"]}

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
