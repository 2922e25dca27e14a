"""The notify service (`govctl notify serve`, a supervised component of `govctl up`): Alertmanager's
webhook receiver and a generic event intake over HTTP (loopback), the incident watcher, digests and
delivery — one loop, one process.

    POST /alertmanager/<receiver>   Alertmanager's webhook payload (version 4)
    POST /events                    {"kind": "sla.breach", "payload": {"title": …}} (notify.send_event's shape)
    GET  /-/ready
"""
from __future__ import annotations

import json
import logging
import threading
import time
from http.server import ThreadingHTTPServer

from core.errors import BadInput
from monitors.webhook import JsonReplyHandler

from .engine import Notifier
from .events import event_from
from .sources import SLA_WATCH_SECONDS, IncidentWatcher, SlaWatcher, alertmanager_events

log = logging.getLogger("govctl.notify")
DEFAULT_LISTEN = "127.0.0.1:19096"
MAX_BODY = 1 << 20
TICK_SECONDS = 0.2
WATCH_SECONDS = 1.0
RETENTION_SECONDS = 90 * 86400


def receiver(notifier: Notifier, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(JsonReplyHandler):
        def do_POST(self):  # noqa: N802
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                return self._reply(400, {"error": "Content-Length is not a number"})
            if not 0 < length <= MAX_BODY:
                return self._reply(413 if length > MAX_BODY else 400,
                                   {"error": f"send a JSON body of 1 to {MAX_BODY} bytes"})
            try:
                payload = json.loads(self.rfile.read(length))
                parts = self.path.strip("/").split("/")
                if len(parts) == 2 and parts[0] == "alertmanager" and parts[1]:
                    events = alertmanager_events(parts[1][:64], payload, time.time())
                elif parts == ["events"]:
                    if not isinstance(payload, dict):
                        raise BadInput("send {\"kind\": …, \"payload\": {…}}")
                    events = [event_from(payload.get("kind"), payload.get("payload"))]
                else:
                    return self._reply(404, {"error": "POST /alertmanager/<receiver> or /events"})
            except (ValueError, BadInput) as exc:  # JSONDecodeError is a ValueError
                log.warning("refused a call to %s: %s", self.path[:100], exc)
                return self._reply(400, {"error": str(exc)})
            outcomes = [o for event in events for o in notifier.submit(event)]
            self._reply(200, {"events": len(events), "outcomes": outcomes})

        def do_GET(self):  # noqa: N802
            if self.path == "/-/ready":
                return self._reply(200, {"ready": True})
            self._reply(404, {"error": "GET /-/ready"})

        def log_message(self, *args):
            pass

    return ThreadingHTTPServer((host, port), Handler)


def run(notifier: Notifier, store, listen: str = DEFAULT_LISTEN, stop: threading.Event | None = None) -> None:
    """Serve until `stop` is set (or for ever): receiver thread + the watch/release/deliver loop."""
    host, _, port = listen.rpartition(":")
    server = receiver(notifier, host, int(port))
    threading.Thread(target=server.serve_forever, name="notify-receiver", daemon=True).start()
    stop = stop or threading.Event()
    watcher = IncidentWatcher(store, notifier.journal, notifier.config.console_url) if store is not None else None
    sla_watcher = SlaWatcher(store, notifier.journal, notifier.config.console_url) if store is not None else None
    notifier.journal.recover_stuck()
    log.info("notify on %s: %d channel(s), %d route(s), config %s", listen, len(notifier.config.channels),
             len(notifier.config.routes), notifier.config.source)
    last_watch = last_sla = last_prune = 0.0
    try:
        while not stop.is_set():
            now = time.time()
            try:
                if watcher is not None and now - last_watch >= WATCH_SECONDS:
                    last_watch = now
                    for event in watcher.poll():
                        notifier.submit(event)
                if sla_watcher is not None and now - last_sla >= SLA_WATCH_SECONDS:
                    last_sla = now
                    for event in sla_watcher.poll():
                        notifier.submit(event)
                notifier.release()
                notifier.deliver_due()
                if now - last_prune > 86400:
                    last_prune = now
                    notifier.journal.prune(now - RETENTION_SECONDS)
            except Exception:  # the store or the journal hiccuped: log it, keep the loop (the supervisor sees a crash only on a real one)
                log.exception("notify loop step failed; retrying")
            stop.wait(TICK_SECONDS)
    finally:
        server.shutdown()
        server.server_close()
