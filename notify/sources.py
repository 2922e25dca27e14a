"""Where events come from: the SecOps store's incidents (new, state changes, escalations) and Alertmanager's
webhook (availability pages). Both become notify.events.Event and take the one path (engine.Notifier)."""
from __future__ import annotations

import time

from monitors.webhook import records_from_payload

from .config import SEVERITIES, severity_rank
from .events import Event

WATCH_NAME = "incidents"
WATCH_WINDOW = 500  # incidents read per poll (newest activity first; indexed on both stores)
SEEN_BOUND = 5000
# Alertmanager's severity labels (monitors/slo.py) in govctl's severities
PAGE_SEVERITY = {"page": "high", "ticket": "medium"}


class IncidentWatcher:
    """Finds what changed in the store since the last poll, the way the console's change feed does
    (the newest incidents by activity), and remembers what it has seen in the journal, so a restart
    neither repeats nor misses a change. At its very first start it notifies nothing that already exists."""

    def __init__(self, store, journal, console_url: str | None = None, clock=time.time):
        self.store = store
        self.journal = journal
        self.console_url = console_url
        self.clock = clock

    def poll(self) -> list[Event]:
        state = self.journal.watch_state(WATCH_NAME)
        incidents = self.store.incidents(None, WATCH_WINDOW)
        if state is None:  # first start: the present is the baseline
            state = {"started": self.clock(), "seen": {}}
            for incident in incidents:
                state["seen"][str(incident["id"])] = [incident["state"], incident["severity"]]
            self.journal.save_watch_state(WATCH_NAME, state)
            return []
        seen = state["seen"]
        events = []
        for incident in reversed(incidents):  # oldest change first
            key = str(incident["id"])
            now = [incident["state"], incident["severity"]]
            before = seen.get(key)
            if before is None:
                if incident["created"] >= state["started"]:
                    events.append(self._event(incident, "incident.new", f"incident:{key}:new"))
            elif before != now:
                if now[0] != before[0]:
                    events.append(self._event(incident, "incident.state", f"incident:{key}:state:{now[0]}"))
                if severity_rank(now[1]) > severity_rank(before[1]):
                    events.append(self._event(incident, "incident.escalated", f"incident:{key}:severity:{now[1]}"))
            seen.pop(key, None)
            seen[key] = now  # most recent last: the bound drops the oldest
        if len(seen) > SEEN_BOUND:
            state["seen"] = dict(list(seen.items())[-SEEN_BOUND:])
        self.journal.save_watch_state(WATCH_NAME, state)
        return events

    def _event(self, incident: dict, kind: str, key: str) -> Event:
        tags: list[str] = []
        center = None
        for alert in self.store.incident_alerts(incident["id"])[:20]:
            tags += [t for t in alert.get("tags", []) if t not in tags]
            for event in alert.get("evidence", [])[:5]:
                center = center or event.get("labels.center") or event.get("observer.name")
        link = f"{self.console_url.rstrip('/')}/#/incidents/{incident['id']}" if self.console_url else None
        severity = incident["severity"] if incident["severity"] in SEVERITIES else "medium"
        summary = f"#{incident['id']} {incident['entity_kind']} {incident['entity']}，告警 {incident.get('alerts', 0)} 条"
        return Event(kind, f"#{incident['id']} {incident['title']}", severity, summary, tuple(tags[:30]), center,
                     incident["state"], ("security",), key, link)


SLA_WATCH_NAME = "sla"
SLA_WATCH_SECONDS = 60.0  # SLA targets are minutes to hours: a minute late is on time for a notification


class SlaWatcher:
    """Breached SLA targets of open incidents → `sla.breach` events, each (incident, target) once ever:
    the keys sent are kept in the journal, so neither a restart nor the de-duplication window's end
    repeats one. The figures come from secops.incidents (the SLA policy lives there, in secops/sla.yaml),
    which also records the breach as an incident note; notify only tells people."""

    def __init__(self, store, journal, console_url: str | None = None):
        from secops.incidents import Incidents
        self.incidents = Incidents(store)
        self.journal = journal
        self.console_url = console_url

    def poll(self) -> list[Event]:
        sent = (self.journal.watch_state(SLA_WATCH_NAME) or {}).get("sent", [])
        known = set(sent)
        events = []
        for case in self.incidents.sla():
            for target in case["breached"]:
                key = f"incident:{case['id']}:sla:{target}"
                if key in known:
                    continue
                due = next((t["due"] for t in case["targets"] if t["target"] == target), None)
                severity = case["severity"] if case["severity"] in SEVERITIES else "medium"
                link = f"{self.console_url.rstrip('/')}/#/incidents/{case['id']}" if self.console_url else None
                events.append(Event("sla.breach", f"#{case['id']} {case['title']}", severity,
                                    f"#{case['id']} 处置时限超期：{target}（截止 {due}）/ SLA breached: {target} "
                                    f"(due {due})", ("sla",), None, case["state"], ("security",), key, link))
                known.add(key)
                sent.append(key)
        if events:
            self.journal.save_watch_state(SLA_WATCH_NAME, {"sent": sent[-SEEN_BOUND:]})
        return events


def alertmanager_events(receiver: str, payload: dict, received_at: float) -> list[Event]:
    """Alertmanager's webhook payload → one Event per alert (the parser is monitors.webhook's)."""
    events = []
    for record in records_from_payload(receiver, payload, received_at):
        labels = record["labels"] if isinstance(record["labels"], dict) else {}
        annotations = record["annotations"] if isinstance(record["annotations"], dict) else {}
        status = "resolved" if record["status"] == "resolved" else "firing"
        label = str(record["severity"] or receiver)
        severity = PAGE_SEVERITY.get(label, label if label in SEVERITIES else "medium")
        name = str(record["alertname"] or "alert")[:200]
        title = str(annotations.get("summary") or name)[:300]
        tags = tuple(str(v)[:200] for v in (name, labels.get("sloth_service"), labels.get("sloth_slo")) if v)
        events.append(Event(f"availability.{status}", title, severity,
                            str(annotations.get("description", ""))[:2000], tags,
                            str(labels["center"])[:100] if labels.get("center") else None, status, ("ops",),
                            f"alertmanager:{record['fingerprint'] or name}:{status}:{record['starts_at']}"[:300]))
    return events
