"""Incidents: grouping by entity and time, states, assignee, notes, evidence; event search; the HTTP API
with token auth and three roles, through TestClient against the real app — on both stores: SQLite (fast
tier) and a real Elasticsearch node (slow tier), with the same assertions."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from secops.api import Tokens, create_app
from secops.config import load_config
from secops.daemon import Engine, ingest_stream
from secops.incidents import IncidentError, Incidents
from secops.stores import open_store
from tests.secops.conftest import config_on_store

GOVCTL = str(Path(sys.executable).parent / "govctl")


def _lines(ip: str, start_min: int, n: int = 6) -> bytes:
    return b"".join(f"Nov  1 00:{start_min:02d}:{i:02d} web-1 sshd[1]: Failed password for root from {ip} port {i} ssh2\n"
                    .encode() for i in range(n))


@pytest.fixture(params=["sqlite", pytest.param("elasticsearch", marks=pytest.mark.slow)])
def populated(request, tmp_path):
    """The same attack lines through the streaming engine into a SQLite file or a real Elasticsearch node."""
    cfgfile = config_on_store(request, tmp_path)
    cfg = load_config(cfgfile)
    store = open_store(cfg)
    engine = Engine(cfg, store, dry_run=True)
    import io
    # 203.0.113.5 attacks twice 5 minutes apart (one incident), again 50 minutes later (a new one);
    # 203.0.113.6 is another entity.
    data = _lines("203.0.113.5", 0) + _lines("203.0.113.5", 5) + _lines("203.0.113.6", 6) + _lines("203.0.113.5", 55)
    ingest_stream(engine, io.BytesIO(data), "test", "auto", "auto", 1000)
    store.flush()  # Elasticsearch: every bulk acknowledged
    yield cfgfile, store
    store.close()


def test_alerts_group_by_entity_and_time(populated):
    _, store = populated
    incidents = Incidents(store).list()
    by_entity = sorted((i["entity"]["value"], i["alerts"]) for i in incidents)
    assert [e for e, _ in by_entity] == ["203.0.113.5", "203.0.113.5", "203.0.113.6"]
    first = min((i for i in incidents if i["entity"]["value"] == "203.0.113.5"), key=lambda i: i["first"])
    detail = Incidents(store).show(first["id"])
    assert detail["severity"] == "high" and detail["state"] == "new"
    assert {a["rule"] for a in detail["alerts"]} >= {"ssh_bruteforce_fast"}
    assert any("Failed password for root from 203.0.113.5" in line for a in detail["alerts"] for line in a["evidence"])
    assert detail["decisions"] and detail["decisions"][0]["action"] == "block"


def test_state_machine_assignee_and_notes(populated):
    _, store = populated
    svc = Incidents(store)
    iid = svc.list()[0]["id"]
    svc.ack(iid, "li.na", "looking")
    svc.assign(iid, "zhang.wei", "li.na")
    svc.note(iid, "zhang.wei", "source is a known scanner")
    done = svc.resolve(iid, "zhang.wei", "blocked for 7 days")
    assert done["state"] == "resolved" and done["assignee"] == "zhang.wei"
    kinds = [(n["author"], n["kind"]) for n in done["notes"]]
    assert kinds == [("li.na", "state"), ("li.na", "assign"), ("zhang.wei", "note"), ("zhang.wei", "state")]
    with pytest.raises(IncidentError, match="closed incidents stay closed"):
        svc.ack(iid, "li.na")


def test_cli_list_show_ack_assign_resolve(populated):
    cfgfile, store = populated
    from typer.testing import CliRunner

    from govctl.cli import app
    runner = CliRunner()
    run = lambda *args: runner.invoke(app, ["incidents", *args, "--config", str(cfgfile)])  # noqa: E731
    listed = json.loads(run("list", "--json").stdout)
    iid = str(listed[0]["id"])
    assert run("ack", iid).exit_code == 0
    assert run("assign", iid, "wang.fang").exit_code == 0
    resolved = run("resolve", iid, "--false-positive", "--note", "pentest", "--json")
    assert json.loads(resolved.stdout)["state"] == "false-positive"
    shown = json.loads(run("show", iid, "--json").stdout)
    assert shown["assignee"] == "wang.fang" and shown["notes"][-1]["text"].endswith("pentest")
    again = run("ack", iid)
    assert again.exit_code == 1 and "cannot become acknowledged" in again.output
    missing = run("show", "99999")
    assert missing.exit_code == 2 and "99999" in missing.output
    bad = run("list", "--state", "open")
    assert bad.exit_code == 2 and "open" in bad.output


def _client(populated, tmp_path):
    cfgfile, store = populated
    tokens = Tokens(tmp_path / "tokens.yaml")
    keys = {role: tokens.add(f"{role}-user", role) for role in ("ops", "security", "auditor")}
    from secops.respond import Allowlist, DecisionEngine
    decisions = DecisionEngine(Allowlist(["10.20.0.0/16"]), store, None, dry_run=True)
    app = create_app(store, tmp_path / "tokens.yaml", decisions)
    return TestClient(app), keys


def test_api_roles(populated, tmp_path):
    client, keys = _client(populated, tmp_path)
    h = {role: {"Authorization": f"Bearer {key}"} for role, key in keys.items()}
    assert client.get("/incidents").status_code == 401
    assert client.get("/incidents", headers={"Authorization": "Bearer nope"}).status_code == 401
    incidents = client.get("/incidents", headers=h["auditor"]).json()
    iid = incidents[0]["id"]
    # auditor: read only
    assert client.get(f"/incidents/{iid}", headers=h["auditor"]).status_code == 200
    assert client.post(f"/incidents/{iid}/ack", headers=h["auditor"]).status_code == 403
    assert client.get("/decisions", headers=h["auditor"]).status_code == 200
    # ops: acknowledge and note, not assign/resolve/ban or read the decision trail
    assert client.post(f"/incidents/{iid}/ack", headers=h["ops"]).json()["state"] == "acknowledged"
    assert client.post(f"/incidents/{iid}/notes", headers=h["ops"], json={"text": "on it"}).status_code == 200
    assert client.post(f"/incidents/{iid}/assign", headers=h["ops"], json={"assignee": "x"}).status_code == 403
    assert client.post(f"/incidents/{iid}/resolve", headers=h["ops"], json={}).status_code == 403
    assert client.post("/bans", headers=h["ops"], json={"address": "203.0.113.77", "reason": "x"}).status_code == 403
    assert client.get("/decisions", headers=h["ops"]).status_code == 403
    # security: everything
    assert client.post(f"/incidents/{iid}/assign", headers=h["security"], json={"assignee": "li.na"}).json()["assignee"] == "li.na"
    assert client.post(f"/incidents/{iid}/contain", headers=h["security"]).json()["state"] == "contained"
    done = client.post(f"/incidents/{iid}/resolve", headers=h["security"], json={"note": "done"}).json()
    assert done["state"] == "resolved"
    assert client.post(f"/incidents/{iid}/ack", headers=h["security"]).status_code == 409
    assert client.get("/incidents/99999", headers=h["security"]).status_code == 404
    ban = client.post("/bans", headers=h["security"], json={"address": "203.0.113.77", "ttl": 60, "reason": "manual"})
    assert ban.status_code == 201 and ban.json()["actor"] == "security-user"
    assert "203.0.113.77" in [b["address"] for b in client.get("/bans", headers=h["ops"]).json()]
    refused = client.post("/bans", headers=h["security"], json={"address": "10.20.0.5", "reason": "oops"})
    assert refused.status_code == 422 and "allowlist" in refused.json()["detail"]
    assert client.delete("/bans/203.0.113.77", headers=h["security"]).json()["action"] == "unblock"
    assert "203.0.113.77" not in [b["address"] for b in client.get("/bans", headers=h["auditor"]).json()]
    trail = client.get("/decisions", headers=h["auditor"]).json()
    assert [d["action"] for d in trail[:2]] == ["unblock", "block"]


def _refresh(store) -> None:
    if store.kind == "elasticsearch":
        store.refresh()  # events become searchable at the index's refresh interval


def test_event_search_same_syntax_on_cli_and_api(populated, tmp_path):
    cfgfile, store = populated
    _refresh(store)
    from typer.testing import CliRunner

    from govctl.cli import app
    runner = CliRunner()
    cli = runner.invoke(app, ["incidents", "events", "source.ip:203.0.113.0/24 user.name:root", "--limit", "50",
                              "--config", str(cfgfile), "--json"])
    assert cli.exit_code == 0, cli.output
    found = json.loads(cli.stdout)
    assert len(found) == 24  # four bursts of six failed logins, newest first
    assert [e["@timestamp"] for e in found] == sorted((e["@timestamp"] for e in found), reverse=True)
    assert {e["source.ip"] for e in found} == {"203.0.113.5", "203.0.113.6"}
    one = runner.invoke(app, ["incidents", "events", "source.ip:203.0.113.6 event.outcome:failure", "--config",
                              str(cfgfile), "--json"])
    assert len(json.loads(one.stdout)) == 6 and all("203.0.113.6" in e["event.original"] for e in json.loads(one.stdout))
    assert json.loads(runner.invoke(app, ["incidents", "events", "user.name:nobody", "--config", str(cfgfile),
                                          "--json"]).stdout) == []
    bad = runner.invoke(app, ["incidents", "events", "source.ip:not-an-ip", "--config", str(cfgfile)])
    assert bad.exit_code == 2 and "not-an-ip" in bad.output and "CIDR" in bad.output
    client, keys = _client(populated, tmp_path)
    h = {"Authorization": f"Bearer {keys['auditor']}"}
    api = client.get("/events", params={"q": "source.ip:203.0.113.0/24 user.name:root", "limit": 50}, headers=h)
    assert api.status_code == 200 and api.json() == found
    first_six = sorted(e["@timestamp"] for e in found)[5]
    early = client.get("/events", params={"q": "source.ip:203.0.113.5", "until": str(first_six)}, headers=h).json()
    assert len(early) == 6
    assert client.get("/events", params={"q": "bogus"}, headers=h).status_code == 422
    assert client.get("/events", params={"q": "source.ip:203.0.113.5"}).status_code == 401


def test_tokens_are_stored_as_digests(tmp_path):
    tokens = Tokens(tmp_path / "t.yaml")
    key = tokens.add("a", "ops")
    assert key not in (tmp_path / "t.yaml").read_text()
    assert tokens.who(key) == ("a", "ops")
    with pytest.raises(ValueError):
        tokens.add("b", "root")
