"""Bounds on every input of the SecOps API, CLI and config (issue #16, point 4): each defect the issue found
(`ttl: 1e308` / `Infinity` stored, then the trail answering 500; a huge incident id answering 500; `limit=-1`
returning everything; a 50 MB note accepted) is refused with 422/413 and nothing stored, and a row stored
before the fix is still readable by the API and the CLI."""
from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from govctl.cli import app as cli_app
from secops.config import ConfigError, load_config
from secops.incidents import Incidents, NotFound
from secops.limits import BAN_TTL, LIST_LIMIT, NOTE, RECORD_ID, REQUEST_BODY


@pytest.fixture
def api(api_app):
    app, store, keys, cfgfile = api_app
    headers = {role: {"Authorization": f"Bearer {key}"} for role, key in keys.items()}
    return TestClient(app), store, headers, cfgfile


def _count(store, table: str) -> int:
    return store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.mark.parametrize("ttl", ["1e308", "Infinity", "-Infinity", "NaN", "0", "0.5", "31536001"])
def test_ban_ttl_out_of_bounds_is_422_and_not_stored(api, ttl):
    client, store, h, _ = api
    before = _count(store, "decisions")
    body = '{"address": "203.0.113.77", "reason": "manual", "ttl": %s}' % ttl  # raw: JSON has no Infinity
    answer = client.post("/bans", content=body, headers={**h["security"], "content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    problem = answer.json()["detail"][0]
    assert problem["loc"] == ["body", "ttl"] and problem["msg"]
    assert _count(store, "decisions") == before
    assert client.get("/decisions", headers=h["auditor"]).status_code == 200


def test_ban_ttl_at_the_bounds_is_accepted(api):
    client, _, h, _ = api
    for ttl in (BAN_TTL.minimum, BAN_TTL.maximum):
        answer = client.post("/bans", headers=h["security"], json={"address": "203.0.113.78", "ttl": ttl,
                                                                   "reason": "manual"})
        assert answer.status_code == 201 and answer.json()["ttl"] == ttl
    assert BAN_TTL.maximum == 365 * 86400


def test_a_ban_stored_before_the_bound_reads_as_never(api):
    """The fixture's store holds a block with ttl and until = inf, as the unbounded API wrote it."""
    client, _, h, cfgfile = api
    trail = client.get("/decisions", headers=h["auditor"])
    assert trail.status_code == 200
    legacy = [d for d in trail.json() if d["address"] == "198.51.100.9"]
    assert legacy == [{**legacy[0], "action": "block", "ttl": None, "until": None}]
    assert "198.51.100.9" in [b["address"] for b in client.get("/bans", headers=h["ops"]).json()]
    cli = CliRunner(env={"COLUMNS": "200"}).invoke(cli_app, ["bans", "list", "--trail", "--config", str(cfgfile)])
    assert cli.exit_code == 0, cli.output
    assert any("198.51.100.9" in line and "never" in line for line in cli.output.splitlines())
    as_json = CliRunner().invoke(cli_app, ["bans", "list", "--config", str(cfgfile), "--json"])
    assert as_json.exit_code == 0 and {"198.51.100.9"} <= {b["address"] for b in json.loads(as_json.stdout)}


@pytest.mark.parametrize("path", ["/incidents/99999999999999999999999", "/incidents/9223372036854775808",
                                  "/incidents/" + "9" * 5000, "/incidents/0", "/incidents/-1"])
def test_incident_ids_out_of_range_are_422(api, path):
    client, _, h, _ = api
    for method, url in (("GET", path), ("POST", path + "/ack"), ("POST", path + "/contain")):
        answer = client.request(method, url, headers=h["security"])
        assert answer.status_code == 422, (method, url, answer.text)
        assert answer.json()["detail"][0]["loc"] == ["path", "incident_id"]


def test_largest_id_is_404_and_the_domain_refuses_ids_no_store_holds(api):
    client, store, h, _ = api
    assert client.get(f"/incidents/{RECORD_ID.maximum}", headers=h["auditor"]).status_code == 404
    with pytest.raises(NotFound):
        Incidents(store).show(2 ** 70)


@pytest.mark.parametrize("url", ["/incidents", "/decisions", "/events"])
@pytest.mark.parametrize("limit", [-1, 0, LIST_LIMIT.maximum + 1])
def test_list_limits_out_of_range_are_422(api, url, limit):
    client, _, h, _ = api
    answer = client.get(url, params={"limit": limit}, headers=h["security"])
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["query", "limit"]


def test_list_limit_is_honoured(api):
    client, _, h, _ = api
    assert len(client.get("/incidents", params={"limit": 1}, headers=h["ops"]).json()) == 1
    assert len(client.get("/incidents", headers=h["ops"]).json()) == 2


def test_unknown_state_filter_is_422_naming_the_states(api):
    client, _, h, _ = api
    answer = client.get("/incidents", params={"state": "open"}, headers=h["ops"])
    assert answer.status_code == 422 and "acknowledged" in json.dumps(answer.json())


@pytest.mark.parametrize("since", ["nan", "inf", "1e400", "1e20", "-1e11"])
def test_event_times_outside_the_calendar_are_422(api, since):
    client, _, h, _ = api
    answer = client.get("/events", params={"since": since}, headers=h["auditor"])
    assert answer.status_code == 422 and since in answer.json()["detail"]


def test_50_mb_note_is_413_before_parsing_and_not_stored(api):
    client, store, h, _ = api
    iid = store.incidents()[0]["id"]
    before = _count(store, "incident_notes")
    huge = json.dumps({"text": "x" * (50 * 1024 * 1024)})
    answer = client.post(f"/incidents/{iid}/notes", content=huge,
                         headers={**h["ops"], "content-type": "application/json"})
    assert answer.status_code == 413 and str(REQUEST_BODY.maximum) in answer.json()["detail"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(100):
            yield b'{"text": "' + b"y" * 4096

    chunked = client.post(f"/incidents/{iid}/notes", content=chunks(),
                          headers={**h["ops"], "content-type": "application/json"})
    assert chunked.status_code == 413
    assert _count(store, "incident_notes") == before


def test_text_limits_are_422_and_not_stored(api):
    client, store, h, _ = api
    iid = store.incidents()[0]["id"]
    before = _count(store, "incident_notes")
    long_note = client.post(f"/incidents/{iid}/notes", headers=h["ops"], json={"text": "n" * (NOTE.max_length + 1)})
    assert long_note.status_code == 422 and long_note.json()["detail"][0]["loc"] == ["body", "text"]
    blank = client.post(f"/incidents/{iid}/notes", headers=h["ops"], json={"text": "   "})
    assert blank.status_code == 422 and blank.json()["detail"].startswith("note is blank")
    assert client.post(f"/incidents/{iid}/assign", headers=h["security"], json={"assignee": "a" * 201}).status_code == 422
    assert client.post(f"/incidents/{iid}/resolve", headers=h["security"],
                       json={"note": "r" * (NOTE.max_length + 1)}).status_code == 422
    assert _count(store, "incident_notes") == before
    assert client.post("/bans", headers=h["security"], json={"address": "203.0.113.79", "reason": "r" * 1001}
                       ).status_code == 422
    assert client.delete("/bans/203.0.113.5", params={"reason": "r" * 1001}, headers=h["security"]).status_code == 422
    ok = client.post(f"/incidents/{iid}/notes", headers=h["ops"], json={"text": "n" * NOTE.max_length})
    assert ok.status_code == 200 and _count(store, "incident_notes") == before + 1


# ------------------------------------------------------------------ CLI


@pytest.mark.parametrize("ttl", ["1e308", "inf", "nan", "0", "-5", "31536001"])
def test_cli_ttl_out_of_bounds_exits_2_naming_option_and_range(api, ttl):
    _, store, _, cfgfile = api
    before = _count(store, "decisions")
    out = CliRunner().invoke(cli_app, ["bans", "add", "203.0.113.80", "--ttl", ttl, "--reason", "x", "--dry-run",
                                       "--config", str(cfgfile)])
    assert out.exit_code == 2
    assert "--ttl" in out.output and "365 days" in out.output and "Traceback" not in out.output
    assert _count(store, "decisions") == before


def test_cli_ttl_within_bounds_blocks(api):
    _, store, _, cfgfile = api
    out = CliRunner().invoke(cli_app, ["bans", "add", "203.0.113.80", "--ttl", "1", "--reason", "x", "--dry-run",
                                       "--config", str(cfgfile), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["ttl"] == 1


@pytest.mark.parametrize("args", [["bans", "list", "--trail", "--limit", "-1"], ["incidents", "list", "--limit", "0"],
                                  ["incidents", "events", "--limit", "10001"],
                                  ["incidents", "show", "99999999999999999999999"], ["incidents", "show", "9" * 400],
                                  ["incidents", "ack", "0"],
                                  ["incidents", "note", "1", "n" * (NOTE.max_length + 1)],
                                  ["incidents", "assign", "1", "a" * 201],
                                  ["bans", "remove", "203.0.113.5", "--reason", "r" * 1001, "--dry-run"]])
def test_cli_bounds_exit_2(api, args):
    _, store, _, cfgfile = api
    before = _count(store, "incident_notes"), _count(store, "decisions")
    out = CliRunner().invoke(cli_app, [*args, "--config", str(cfgfile)])
    assert out.exit_code == 2, out.output
    assert "out of range" in out.output or "characters" in out.output
    assert (_count(store, "incident_notes"), _count(store, "decisions")) == before


# ------------------------------------------------------------------ config


@pytest.mark.parametrize("value", [".inf", ".nan", "0.5", "31536001"])
@pytest.mark.parametrize("setting", ["ttl", "max_ttl"])
def test_config_ban_ttls_are_bounded_and_finite(tmp_path, setting, value):
    cfg = tmp_path / "secops.yaml"
    cfg.write_text(f"response: {{{setting}: {value}}}\n")
    with pytest.raises(ConfigError, match=f"response.{setting}: .*365 days"):
        load_config(cfg)


def test_config_ban_ttl_within_bounds_loads(tmp_path):
    cfg = tmp_path / "secops.yaml"
    cfg.write_text("response: {ttl: 1, max_ttl: 31536000}\n")
    assert load_config(cfg)["response"]["max_ttl"] == 31536000
