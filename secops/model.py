"""What SecOps' parts share: a decision, the address fields, and the interface of a store.

Both stores implement `Store`: `secops.store.Store` (SQLite, `kind` "sqlite") and
`secops.es.store.ElasticStore` ("elasticsearch"), so ingest, detection, the decision engine, the
incidents service, the HTTP API and `govctl incidents|bans` run unchanged on either
(tests/secops/test_model.py checks both against it). Incident records have times in epoch seconds and
`alerts` (how many); secops.incidents formats them. Decisions come back as `Decision.to_dict()`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ContextManager, Iterator, Protocol, runtime_checkable

# ECS fields of type ip: a value with a prefix length matches the whole range on both stores
ADDRESS_FIELDS = frozenset({"source.ip", "destination.ip", "client.ip", "server.ip", "host.ip"})


@dataclass
class Decision:
    address: str
    action: str  # block | unblock | allowlisted
    reason: str
    actor: str
    created: float
    ttl: float | None = None
    until: float | None = None
    rule: str | None = None
    alert_id: int | None = None
    enforced: bool = False
    offence: int = 0
    id: int | None = None
    centers: list[str] = field(default_factory=list)  # the centers whose enforcement points took a block

    def to_dict(self) -> dict:
        """As JSON shows it. A row stored before TTLs were bounded (ttl 1e308 or inf) reads as ttl and
        until null: a block without an end date (the trail renders it "never")."""
        from .normalize import iso
        return {"id": self.id, "address": self.address, "action": self.action, "reason": self.reason,
                "actor": self.actor, "created": iso(self.created), "ttl": _finite_or_none(self.ttl),
                "until": _stamp_or_none(self.until), "rule": self.rule,
                "alert_id": self.alert_id, "enforced": self.enforced, "offence": self.offence,
                "centers": sorted(self.centers)}


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _stamp_or_none(epoch: float | None) -> str | None:
    """The ISO time of `epoch`, or None when there is none or no calendar date holds it (year > 9999)."""
    from .normalize import iso
    if not epoch:
        return None
    try:
        return iso(epoch)
    except (OverflowError, ValueError, OSError):
        return None


@runtime_checkable
class Store(Protocol):
    """Every method the daemon, detection, the decision engine, the incidents service, the API and the
    CLI call on a store."""

    kind: str  # "sqlite" | "elasticsearch"
    lock: Any  # a reentrant lock: the incidents service holds it around read-modify-write steps

    # ingest
    def close(self) -> None: ...

    def transaction(self) -> ContextManager[None]:
        """A batch and everything derived from it (one transaction on SQLite)."""

    def commit_batch(self, source: str, events: list[tuple[int, dict]], rejected: list[tuple[int, str, str, bytes]],
                     position: tuple[int | None, int, bytes | None] | None = None,
                     position_name: str | None = None) -> None: ...

    def position(self, source: str) -> tuple[int | None, int, bytes | None] | None: ...

    def flush(self) -> None: ...

    def counts(self) -> dict[str, Any]: ...

    def quarantined(self, limit: int = 50) -> list[dict]: ...

    def apply_retention(self, event_days: float, incident_days: float | None = None,
                        now: float | None = None) -> dict: ...

    # events
    def search_events(self, filters: dict[str, Any] | None = None, since: float | None = None,
                      until: float | None = None, limit: int = 100) -> list[dict]:
        """Filters come from secops.stores.parse_event_query; newest first, flat ECS events."""

    def has_events(self) -> bool: ...

    # alerts (by the alert's deterministic key) and the streaming detector's checkpoint
    def save_alert(self, alert) -> Any: ...

    def load_alerts(self, ids: list) -> dict: ...

    def save_detector_state(self, state: dict) -> int: ...

    def detector_state(self) -> dict | None: ...

    def events_since_detector_state(self, page: int = 5000) -> Iterator[dict]: ...

    # incidents (secops.incidents holds the logic)
    def alert_incident(self, alert_id) -> int | None: ...

    def open_incident(self, kind: str, entity: str, since: float, closed: tuple[str, ...]) -> dict | None: ...

    def create_incident(self, record: dict) -> int: ...

    def update_incident(self, incident_id, changes: dict) -> None: ...

    def link_alert(self, alert_id, incident_id) -> None: ...

    def incident(self, incident_id) -> dict | None: ...

    def incidents(self, state: str | None = None, limit: int = 100) -> list[dict]: ...

    def search_incidents(self, query: "IncidentQuery") -> dict:
        """{total, items (records as `incident` gives them), counts: {by_state, by_severity}} for the query
        (see IncidentQuery for the semantics both stores share)."""

    def incident_overview(self, bounds: list[float], top: int = 10) -> dict:
        """Blocks per day window [bounds[i], bounds[i+1]) by center and by rule, the `top` blocked
        addresses over the whole span, and open incidents by severity and state (see secops.incidents.overview)."""

    def incident_alerts(self, incident_id) -> list[dict]: ...

    def incident_notes(self, incident_id) -> list[dict]: ...

    def add_incident_note(self, incident_id, created: float, author: str, kind: str, text: str) -> None: ...

    # decisions (secops.respond.DecisionEngine records and reloads its decisions through these)
    def record_decision(self, decision: Decision) -> Any: ...

    def block_counts(self) -> dict[str, int]: ...

    def allowlisted_alerts(self) -> set[tuple[str, str]]: ...

    def decisions_for_alerts(self, alert_ids: list) -> list[dict]: ...

    def active_bans(self, now: float | None = None) -> list[dict]: ...

    def decision_trail(self, limit: int = 200) -> list[dict]: ...

    # cases: observables of alerts (secops.cases), indexed so "seen in N other incidents" is one lookup;
    # the notes of many incidents at once (the SLA sweep)
    def save_observables(self, alert_id, pairs) -> None: ...

    def incident_observables(self, incident_id) -> list[tuple[str, str]]: ...

    def observable_incidents(self, pairs, limit: int = 20) -> dict[tuple[str, str], list[int]]: ...

    def notes_of_incidents(self, incident_ids: list) -> dict: ...

    # interception: range bans, forgetting escalation
    def latest_blocks(self) -> dict[str, tuple[int, float]]: ...


# ---------------------------------------------------------------- incidents search (console list, issue #17)
# The incidents' vocabulary (secops.incidents holds the logic and re-exports these): here, so the stores sort
# and count by it without importing the incidents service (which reads times through secops.stores).
STATES = ("new", "acknowledged", "contained", "resolved", "false-positive")
CLOSED = ("resolved", "false-positive")
SEVERITY = ("informational", "low", "medium", "high", "critical")
INCIDENT_SORTS = ("id", "title", "severity", "state", "entity", "first", "last", "updated")


@dataclass(frozen=True)
class IncidentQuery:
    """One incident search, already checked (secops.incidents.search builds it from hostile input).

    Every filter narrows the result (AND); a tuple filter matches any of its values. `source` is a
    canonical address (exact) or network (CIDR text) matched against incidents whose entity is a source
    address. `since`/`until`: activity overlapping the range (last ≥ since, first ≤ until). `text`: a
    case-insensitive substring of the title. Counts are facets: `by_state` applies every filter but the
    states, `by_severity` every filter but the severities, so the page can show what each choice would give.
    Severity and state sort by their order (informational < … < critical, new < … < false-positive); ties
    by id, in the same direction."""
    states: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    rule: str | None = None
    center: str | None = None
    source: str | None = None
    since: float | None = None
    until: float | None = None
    text: str | None = None
    sort: str = "last"
    descending: bool = True
    offset: int = 0
    limit: int = 50
    counted: bool = True  # False: the page alone (total and counts left empty), as `incidents()` and polls need

