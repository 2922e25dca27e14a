"""The drills' heartbeat writer keeps what a refused write got — the service's own reason and the center
that answered — so a drill whose writes never come back says why (a CI run once said only "no write
succeeded within 120 s"). The real writer process against a local service answering as the lab's does."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from drills.runner import describe_failures
from tests.conftest import ROOT


class RefusingService(BaseHTTPRequestHandler):
    """Answers every write as the lab's web service does when its database refuses it."""

    def do_POST(self):
        body = json.dumps({"center": "samecity", "db": "unavailable",
                           "reason": "cannot execute INSERT in a read-only transaction"}).encode()
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Center", "samecity")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def writer_records(url: str, count: int) -> list[dict]:
    proc = subprocess.Popen([sys.executable, "-m", "drills.ledger_client", url, "0.02"], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        return [json.loads(proc.stdout.readline()) for _ in range(count)]
    finally:
        proc.kill()
        proc.wait()


def test_a_refused_write_keeps_the_services_reason_and_center():
    server = ThreadingHTTPServer(("127.0.0.1", 0), RefusingService)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        records = writer_records(f"http://127.0.0.1:{server.server_port}/ledger", 3)
    finally:
        server.shutdown()
    assert all(r["acked"] is None for r in records)
    assert {r["error"] for r in records} == {"HTTP 503: cannot execute INSERT in a read-only transaction"}
    assert {r["center"] for r in records} == {"samecity"}
    assert describe_failures(records) == \
        "3× HTTP 503: cannot execute INSERT in a read-only transaction (from samecity)"


def test_an_unreachable_service_is_named_without_a_center():
    server = ThreadingHTTPServer(("127.0.0.1", 0), RefusingService)
    port = server.server_port
    server.server_close()  # nothing listens on the port any more
    records = writer_records(f"http://127.0.0.1:{port}/ledger", 2)
    assert all(r["acked"] is None and r["center"] is None for r in records)
    assert "Connection refused" in records[0]["error"]


def test_the_commonest_errors_come_first_and_at_most_three():
    failed = ([{"error": "timed out", "center": None}] * 5 + [{"error": "HTTP 503: x", "center": "prod"}] * 2
              + [{"error": "a", "center": None}, {"error": "b", "center": None}])
    assert describe_failures(failed) == "5× timed out; 2× HTTP 503: x (from prod); 1× a"
    assert describe_failures([]) == ""
