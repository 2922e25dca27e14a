"""The one notification path: an Event is routed, de-duplicated, rate-limited (or held for a digest, or
for the end of quiet hours) and queued per channel in the journal; `deliver_due` sends what is due, with
retries and exponential back-off; `release` turns what was held into one digest per channel.

Routing decisions are one write transaction of the journal, so any process may call `submit`
(notify.send_event); the notify service delivers.
"""
from __future__ import annotations

import fnmatch
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from core.errors import BadInput

from .channels import DeliveryFailed, recipients, send
from .config import Channel, Config, Route, load_config, severity_rank
from .events import Event, body, digest_body, digest_subject, subject
from .journal import Journal
from .secrets import Secrets

log = logging.getLogger("govctl.notify")
DIGEST_KIND = "digest"


def matches(route: Route, event: Event) -> bool:
    m = route.match
    if "kinds" in m and not any(fnmatch.fnmatchcase(event.kind, k) for k in m["kinds"]):
        return False
    if "min_severity" in m and severity_rank(event.severity) < severity_rank(m["min_severity"]):
        return False
    if "severities" in m and event.severity not in m["severities"]:
        return False
    if "tags" in m and not any(fnmatch.fnmatchcase(tag.lower(), pattern.lower())
                               for tag in event.tags for pattern in m["tags"]):
        return False
    if "centers" in m and event.center not in m["centers"]:
        return False
    if "states" in m and event.state not in m["states"]:
        return False
    if "roles" in m and not set(m["roles"]) & set(event.roles):
        return False
    return True


def quiet_until(route: Route, event: Event, zone, now: float) -> float | None:
    """When the route's quiet hours end, if `now` lies inside them and the event's severity is not exempt."""
    quiet = route.quiet
    if not quiet or event.severity in quiet.get("except_severities", ()):
        return None
    local = datetime.fromtimestamp(now, zone)
    start = local.replace(hour=int(quiet["start"][:2]), minute=int(quiet["start"][3:]), second=0, microsecond=0)
    end = local.replace(hour=int(quiet["end"][:2]), minute=int(quiet["end"][3:]), second=0, microsecond=0)
    if start == end:
        return None
    if start < end:  # e.g. 12:00–14:00
        return end.timestamp() if start <= local < end else None
    if local >= start:  # overnight, e.g. 22:00–07:00, before midnight
        return (end + timedelta(days=1)).timestamp()
    return end.timestamp() if local < end else None


class Notifier:
    def __init__(self, config: Config | None = None, journal: Journal | None = None, secrets: Secrets | None = None,
                 clock=time.time):
        self.config = config or load_config()
        self.journal = journal or Journal()
        self.secrets = secrets or Secrets()
        self.clock = clock

    # ------------------------------------------------------------------ routing
    def submit(self, event: Event, now: float | None = None) -> list[dict]:
        """Route `event`; one outcome per channel: queued, held (rate or quiet), duplicate, or delivered
        (the console's inbox). Returns [{channel, status, id}]."""
        now = self.clock() if now is None else now
        plan: dict[str, tuple[Route, float | None]] = {}
        for route in self.config.routes:
            if matches(route, event):
                until = quiet_until(route, event, self.config.timezone, now)
                for name in route.channels:
                    if name not in plan or (plan[name][1] is not None and until is None):
                        plan[name] = (route, until)  # a route without quiet hours now wins
        outcomes = []
        if not plan:
            return outcomes
        text_subject, text_body = subject(event), body(event, self.config.timezone)
        with self.journal.writing() as db:
            for name, (route, until) in plan.items():
                channel = self.config.channels[name]
                outcomes.append(self._plan_channel(db, channel, route, event, until, text_subject, text_body, now))
        return outcomes

    def _plan_channel(self, db, channel: Channel, route: Route, event: Event, quiet_end: float | None,
                      text_subject: str, text_body: str, now: float) -> dict:
        row = {"created": now, "kind": event.kind, "severity": event.severity, "event_key": event.key,
               "route": route.name, "channel": channel.name, "recipients": recipients(channel),
               "subject": text_subject, "body": text_body, "event": event.to_dict()}
        duplicate = db.execute("SELECT id FROM deliveries WHERE channel=? AND event_key=? AND created>? AND"
                               " status!='duplicate' LIMIT 1",
                               (channel.name, event.key, now - self.config.dedup_window)).fetchone()
        if duplicate:
            row_id = self.journal.add(db, {**row, "status": "duplicate", "reason": f"same as #{duplicate[0]}"})
            return {"channel": channel.name, "status": "duplicate", "id": row_id}
        if channel.type == "console":  # the bell is not intrusive: no quiet hours, delivered at once
            roles = channel.spec.get("roles") or list(event.roles)
            self.journal.add_inbox(db, now, event.kind, event.severity, event.title, text_subject, text_body,
                                   event.link, roles)
            row_id = self.journal.add(db, {**row, "status": "sent", "sent": now, "attempts": 1})
            return {"channel": channel.name, "status": "sent", "id": row_id}
        if quiet_end is not None:
            row_id = self.journal.add(db, {**row, "status": "held", "reason": "quiet", "release_at": quiet_end})
            return {"channel": channel.name, "status": "held", "reason": "quiet", "id": row_id}
        window = db.execute("SELECT start, count FROM windows WHERE channel=?", (channel.name,)).fetchone()
        if window is None or now >= window[0] + channel.rate_per:
            window = (now, 0)
        if window[1] >= channel.rate_count:
            row_id = self.journal.add(db, {**row, "status": "held", "reason": "rate",
                                           "release_at": window[0] + channel.rate_per})
            return {"channel": channel.name, "status": "held", "reason": "rate", "id": row_id}
        db.execute("INSERT INTO windows(channel, start, count) VALUES (?,?,?) ON CONFLICT(channel) DO UPDATE"
                   " SET start=excluded.start, count=excluded.count", (channel.name, window[0], window[1] + 1))
        row_id = self.journal.add(db, {**row, "status": "pending", "next_try": now})
        return {"channel": channel.name, "status": "queued", "id": row_id}

    # ------------------------------------------------------------------ digests
    def release(self, now: float | None = None) -> list[int]:
        """Held messages whose window or quiet hours have ended become one digest per channel and reason."""
        now = self.clock() if now is None else now
        digests = []
        with self.journal.writing() as db:
            rows = db.execute("SELECT id, channel, reason, subject FROM deliveries WHERE status='held' AND"
                              " release_at<=? ORDER BY id", (now,)).fetchall()
            groups: dict[tuple[str, str], list[dict]] = {}
            for row_id, channel, reason, text in rows:
                groups.setdefault((channel, reason), []).append({"id": row_id, "subject": text})
            for (name, reason), held in groups.items():
                channel = self.config.channels.get(name)
                if channel is None:  # the channel left the configuration: keep them in the log as failed
                    db.execute(f"UPDATE deliveries SET status='failed', error='channel no longer configured'"
                               f" WHERE id IN ({','.join('?' * len(held))})", [h["id"] for h in held])
                    continue
                digest_id = self.journal.add(db, {
                    "created": now, "kind": DIGEST_KIND, "severity": "medium", "event_key": f"digest:{name}:{now}",
                    "route": None, "channel": name, "recipients": recipients(channel),
                    "subject": digest_subject(len(held), reason), "body": digest_body(held, reason),
                    "status": "pending", "reason": reason, "next_try": now,
                    "event": {"kind": DIGEST_KIND, "count": len(held), "reason": reason}})
                db.execute(f"UPDATE deliveries SET status='digested', digest_id=? WHERE id IN"
                           f" ({','.join('?' * len(held))})", [digest_id, *[h["id"] for h in held]])
                digests.append(digest_id)
        return digests

    # ------------------------------------------------------------------ delivery
    def deliver_due(self, now: float | None = None) -> int:
        """Send every due delivery once; failures are retried later with back-off. How many were tried."""
        tried = 0
        now = self.clock() if now is None else now  # a retry set up during this call waits for the next
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="notify-send") as pool:
            while True:
                due = self.journal.claim_due(now)
                if not due:
                    return tried
                by_channel: dict[str, list[dict]] = {}
                for item in due:  # channels in parallel, so a slow SMTP server holds back no robot
                    by_channel.setdefault(item["channel"], []).append(item)
                list(pool.map(lambda items: [self._deliver(item) for item in items], by_channel.values()))
                tried += len(due)

    def _deliver(self, item: dict) -> None:
        channel = self.config.channels.get(item["channel"])
        if channel is None:
            self.journal.finish(item["id"], error="channel no longer configured")
            return
        try:
            send(channel, self.secrets.get, item["subject"], item["body"], item["event"])
        except DeliveryFailed as exc:
            self._failed(item, channel, str(exc), exc.permanent)
        except BadInput as exc:  # a secret not sealed: retrying cannot help until someone seals it
            self._failed(item, channel, str(exc), True)
        except Exception as exc:  # a secret that cannot be unsealed, a broken keystore: logged, retried
            self._failed(item, channel, f"{type(exc).__name__}: {str(exc)[:200]}", False)
        else:
            self.journal.finish(item["id"], sent=self.clock())
            log.info("sent #%s over %s: %s", item["id"], channel.name, item["subject"])

    def _failed(self, item: dict, channel: Channel, reason: str, permanent: bool) -> None:
        attempt = item["attempts"] + 1
        if permanent or attempt >= channel.attempts:
            self.journal.finish(item["id"], error=f"attempt {attempt}: {reason}")
            log.warning("gave up #%s over %s after %d attempt(s): %s", item["id"], channel.name, attempt, reason)
            return
        retry_at = self.clock() + channel.backoff * 2 ** (attempt - 1)
        self.journal.finish(item["id"], error=f"attempt {attempt}: {reason}", retry_at=retry_at)
        log.warning("#%s over %s failed (attempt %d), retrying in %.1f s: %s", item["id"], channel.name, attempt,
                    retry_at - self.clock(), reason)
