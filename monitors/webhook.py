"""The Alertmanager webhook receiver: every notified alert becomes a record in a JSON-lines store.

Records keep what SecOps incidents need to link to later: receiver (page/ticket), status, alert
name, labels, annotations, start/end and Alertmanager's fingerprint, plus when govctl received it.

    python -m monitors.webhook --listen 127.0.0.1:19095 --store state/monitor/alerts.jsonl
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

log = logging.getLogger("govctl.webhook")


class JsonReplyHandler(BaseHTTPRequestHandler):
    """A request handler that answers JSON (the webhook here, and notify's receiver)."""

    def _reply(self, code: int, body: object) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def records_from_payload(receiver: str, payload: dict, received_at: float) -> list[dict]:
    """Alertmanager's webhook payload (version 4) → one record per alert."""
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise ValueError("not an Alertmanager webhook payload (no alerts list)")
    out = []
    for alert in payload["alerts"]:
        labels = alert.get("labels", {})
        out.append({
            "received_at": received_at,
            "receiver": receiver,
            "status": alert.get("status"),
            "alertname": labels.get("alertname"),
            "severity": labels.get("severity"),
            "labels": labels,
            "annotations": alert.get("annotations", {}),
            "starts_at": alert.get("startsAt"),
            "ends_at": alert.get("endsAt"),
            "fingerprint": alert.get("fingerprint"),
            "group_key": payload.get("groupKey"),
        })
    return out


def read_records(store: Path) -> list[dict]:
    if not store.exists():
        return []
    return [json.loads(line) for line in store.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_metrics(folder: Path | None) -> str:
    """Prometheus exposition text other govctl parts leave as *.prom files (e.g. drill results:
    govctl_drill_rto_seconds …), served at GET /metrics for Prometheus to scrape."""
    if folder is None or not folder.is_dir():
        return ""
    return "".join(p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.prom")))


def serve(host: str, port: int, store: Path, metrics_dir: Path | None = None) -> ThreadingHTTPServer:
    lock = threading.Lock()
    store.parent.mkdir(parents=True, exist_ok=True)

    class Handler(JsonReplyHandler):

        def do_POST(self):  # noqa: N802
            parts = self.path.strip("/").split("/")
            if len(parts) != 2 or parts[0] != "alerts":
                return self._reply(404, {"error": "post to /alerts/<receiver>"})
            try:
                length = int(self.headers.get("Content-Length", "0"))
                payload = json.loads(self.rfile.read(length))
                records = records_from_payload(parts[1], payload, time.time())
            except (ValueError, json.JSONDecodeError) as exc:
                log.warning("rejected a webhook call: %s", exc)
                return self._reply(400, {"error": str(exc)})
            with lock, store.open("a", encoding="utf-8") as f:
                for r in records:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
            for r in records:
                log.info("%s %s %s %s", r["receiver"], r["status"], r["alertname"],
                         r["labels"].get("center", ""))
            self._reply(200, {"stored": len(records)})

        def do_GET(self):  # noqa: N802
            if self.path == "/metrics":
                data = read_metrics(metrics_dir).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return None
            if self.path.startswith("/records"):
                return self._reply(200, read_records(store))
            if self.path == "/-/ready":
                return self._reply(200, {"ready": True})
            self._reply(404, {"error": "GET /records, /metrics or /-/ready"})

        def log_message(self, *args):
            pass

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitors.webhook", description=__doc__.split("\n")[0])
    parser.add_argument("--listen", required=True)
    parser.add_argument("--store", required=True, type=Path)
    parser.add_argument("--metrics-dir", type=Path, default=None,
                        help="folder of *.prom files served at /metrics (drill results)")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(name)s %(levelname)s %(message)s")
    host, _, port = args.listen.rpartition(":")
    server = serve(host, int(port), args.store, args.metrics_dir)
    log.info("webhook receiver on %s, records in %s", args.listen, args.store)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
