"""The webhook receiver serves other parts' metrics files (drill results) at /metrics."""
from __future__ import annotations

import threading
import urllib.request

from monitors.webhook import serve


def test_metrics_endpoint_serves_prom_files(tmp_path):
    folder = tmp_path / "drills"
    folder.mkdir()
    (folder / "link-failure.prom").write_text('govctl_drill_success{scenario="link-failure"} 1\n')
    (folder / "notes.txt").write_text("not metrics")
    server = serve("127.0.0.1", 0, tmp_path / "alerts.jsonl", folder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
            assert resp.headers["Content-Type"].startswith("text/plain")
    finally:
        server.shutdown()
    assert body == 'govctl_drill_success{scenario="link-failure"} 1\n'
