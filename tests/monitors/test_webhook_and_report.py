"""The webhook receiver stores Alertmanager notifications as records; report arithmetic and inputs."""
from __future__ import annotations

import json
import threading

import httpx
import pytest

from core.errors import BadInput
from monitors.availability import outages_of, parse_time, report
from monitors.slo import load_slo_spec
from monitors.webhook import read_records, serve

from .helpers import free_port

PAYLOAD = {  # the shape Alertmanager 0.25 posts (version 4), trimmed to what matters
    "version": "4", "groupKey": '{}/{severity="page"}:{alertname="SLOPageBurnRate", center="prod"}',
    "status": "firing", "receiver": "page",
    "alerts": [{"status": "firing", "fingerprint": "8a1f0c2b3d4e5f60",
                "labels": {"alertname": "SLOPageBurnRate", "severity": "page", "center": "prod",
                           "sloth_service": "gov-portal"},
                "annotations": {"summary": "gov-portal in center prod is burning its budget"},
                "startsAt": "2026-11-22T06:00:00Z", "endsAt": "0001-01-01T00:00:00Z"}],
}


def test_webhook_stores_each_alert_as_a_record_and_rejects_junk(tmp_path):
    store = tmp_path / "alerts.jsonl"
    port = free_port()
    server = serve("127.0.0.1", port, store)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ok = httpx.post(f"http://127.0.0.1:{port}/alerts/page", json=PAYLOAD)
        assert ok.status_code == 200 and ok.json() == {"stored": 1}
        bad = httpx.post(f"http://127.0.0.1:{port}/alerts/page", content=b'{"no": "alerts"}')
        assert bad.status_code == 400
        assert httpx.post(f"http://127.0.0.1:{port}/elsewhere", json=PAYLOAD).status_code == 404
        served = httpx.get(f"http://127.0.0.1:{port}/records").json()
    finally:
        server.shutdown()
        server.server_close()
    records = read_records(store)
    assert served == records and len(records) == 1
    r = records[0]
    assert (r["receiver"], r["status"], r["alertname"], r["severity"]) == ("page", "firing",
                                                                           "SLOPageBurnRate", "page")
    assert r["labels"]["center"] == "prod" and r["fingerprint"] == "8a1f0c2b3d4e5f60"
    assert r["starts_at"] == "2026-11-22T06:00:00Z" and r["received_at"] > 0
    assert json.loads(store.read_text().splitlines()[0]) == r


def test_outages_are_runs_of_bad_steps_with_start_end_and_duration():
    values = [(100.0, 0), (101.0, 1), (102.0, 1), (103.0, 0), (104.0, 1)]
    out = outages_of(values, end=106.0)
    assert [(o["seconds"], o["ongoing"]) for o in out] == [(2.0, False), (2.0, True)]
    assert out[0]["start"] == "1970-01-01T00:01:41+00:00" and out[0]["end"] == "1970-01-01T00:01:43+00:00"
    assert out[1]["end"] is None
    assert outages_of([(1.0, 0), (2.0, 0)], 3.0) == []


def test_times_accept_now_relative_unix_and_iso_and_name_the_option():
    assert parse_time("now-1h", "--from", now=10_000) == 6_400
    assert parse_time("1700000000", "--to") == 1_700_000_000
    assert parse_time("2026-11-01T00:00:00+08:00", "--from") == 1_793_462_400
    assert parse_time("2026-11-01T00:00:00", "--from") == 1_793_491_200  # UTC when no zone
    with pytest.raises(BadInput, match="--from 'yesterday'"):
        parse_time("yesterday", "--from")
    with pytest.raises(BadInput, match="must be before"):
        report("127.0.0.1:1", load_slo_spec(), 200.0, 100.0)
