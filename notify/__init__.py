"""Notifications: security incidents, availability pages and any other event (an SLA breach) routed by
YAML to email, DingTalk and WeCom robots, a signed webhook and the console's bell (docs/notify.md).

    import notify
    notify.send_event("sla.breach", {"title": "事件 #42 超过确认时限", "severity": "high", "key": "sla:42:ack"})

`send_event` routes at once (de-duplication, rate limits, quiet hours are decided in the journal) and the
running notify service delivers; `deliver=True` also sends now, in this process.
"""
from __future__ import annotations


def send_event(kind: str, payload: dict, *, deliver: bool = False, notifier=None) -> list[dict]:
    """Route one event; returns one outcome per channel ({channel, status, id}). BadInput for a bad payload."""
    from .engine import Notifier
    from .events import event_from
    event = event_from(kind, payload)
    own = notifier is None
    notifier = notifier or Notifier()
    try:
        outcomes = notifier.submit(event)
        if deliver:
            notifier.deliver_due()
    finally:
        if own:
            notifier.journal.close()
    return outcomes
