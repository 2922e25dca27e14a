"""The audit trail (issue 19): every state-changing action of govctl leaves an entry with actor, time, target,
parameters (never a secret) and outcome in the SM3 Merkle log, which then verifies; the trail is read back
with `govctl auditlog list|show`; a log that cannot be written never fails the action."""
from __future__ import annotations

import io
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from crypto import audit

from .conftest import run_govctl

ROOT = Path(__file__).resolve().parents[2]
HOOK_SECRET = "hook-secret-must-never-be-logged-91c2"
PASSWORD = "Console-pass-2026-never-logged"


def trail(state: Path) -> list[dict]:
    """The log's entries as the trail shows them, oldest first."""
    return list(reversed(audit.entries(state / "audit", limit=audit.LIST_MAX)["entries"]))


def seen(entries: list[dict], action: str, target: str | None = None) -> list[dict]:
    return [e for e in entries if e["action"] == action and (target is None or e["target"] == target)]


def outputs_without_a_lab() -> dict:
    """Stack outputs of the lab (compliance fixture) renamed so no namespace of a running lab can match."""
    text = (ROOT / "tests/policies/compliance/fixtures/lab/stack.json").read_text()
    return json.loads(text.replace('"gl-', '"htx-'))["data"]["outputs"]


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def hook(tmp_path, monkeypatch):
    """A webhook consumer on loopback and a notify configuration with one channel to it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = tmp_path / "notify.yaml"
    config.write_text(f"""version: 1
channels:
  hook: {{type: webhook, url: "http://127.0.0.1:{server.server_address[1]}/govctl", signing_secret: hook}}
routes:
  - {{name: all, match: {{min_severity: medium}}, channels: [hook]}}
""")
    monkeypatch.setenv("GOVCTL_NOTIFY_CONFIG", str(config))
    yield config
    server.shutdown()


@pytest.mark.slow  # Pulumi on the tiny stack, the SecOps engine, argon2 and a few CLI processes
def test_every_action_leaves_an_entry_and_the_log_verifies(state, tmp_path, hook, monkeypatch):
    from typer.testing import CliRunner

    from console.sessions import SignInRefused, Sessions
    from console.users import Users
    from crypto.audit import open_keystore
    from govctl.cli import app
    from infra.outputs import StackOutputs
    from secops.config import load_config
    from secops.daemon import Engine, ingest_stream
    from secops.incidents import Incidents
    from secops.stores import open_store
    from tests.corpora import attack_corpus

    # infra up / refresh / destroy: the real Pulumi engine on the tiny stack (the CLI records them)
    for op in ("up", "refresh", "destroy"):
        proc = run_govctl("infra", op, "--stack", "tiny", "--json")
        assert proc.returncode == 0, proc.stderr[-2000:]
    # lab up / down: the real commands, refused before anything changes (the test does not build a lab)
    cli = CliRunner()
    with pytest.MonkeyPatch.context() as not_root:
        not_root.setattr(os, "geteuid", lambda: 1000)
        for op in ("up", "down"):
            assert cli.invoke(app, ["lab", op]).exit_code == 1
    # govctl up / down: up refused on a bad option (nothing started); down with nothing running
    assert cli.invoke(app, ["up", "--store", "mongodb"]).exit_code == 2
    assert cli.invoke(app, ["down", "--keep-lab"]).exit_code == 0

    # harden (an undeployed stack) and rollback (a host not in the stack): both refused, both on the trail;
    # an audit (check mode) changes nothing and is not recorded
    from hardening import runner
    lab_outputs = StackOutputs.from_dict(outputs_without_a_lab())
    with pytest.raises(Exception):
        runner.baseline("harden", 3, None, check=False, stack="nosuch")
    with pytest.raises(Exception):
        runner.baseline("audit", 3, None, check=True, stack="nosuch")
    with pytest.raises(Exception, match="no such host"):
        runner.rollback("db-9.nowhere", outputs=lab_outputs)

    # blocks and lifts: automatic ones by the daemon's engine (one entry per batch), manual ones by a person
    config_file = tmp_path / "secops.yaml"
    config_file.write_text(json.dumps({"store": str(tmp_path / "secops.db"), "enforcer": {"kind": "none"},
                                       "incidents": {"window_seconds": 600}}))
    cfg = load_config(config_file)
    engine = Engine(cfg, open_store(cfg))
    import time
    ingest_stream(engine, io.BytesIO(attack_corpus(time.time())), "test", "auto", "auto", 1000)
    engine.store.flush()
    engine.decisions.block("192.0.2.77", "seen probing the portal", actor="li.na")
    engine.decisions.unblock("203.0.113.5", "a partner's NAT address", actor="li.na")

    # incident state changes, through secops.incidents (the one place the CLI, API and console use)
    incidents = Incidents(engine.store)
    first = incidents.list()[-1]["id"]
    incidents.ack(first, "li.na")
    incidents.assign(first, "wang.fang", "li.na")
    incidents.contain(first, "li.na")
    incidents.resolve(first, "li.na", "blocked at the boundary")
    incidents.reopen(first, "li.na", "the attacker came back")
    engine.store.close()

    # notification changes: a sealed secret and a test send over the channel
    sealed = run_govctl("notify", "secret", "set", "hook", "--stdin", input=(HOOK_SECRET + "\n").encode())
    assert sealed.returncode == 0, sealed.stderr
    tested = run_govctl("notify", "test", "hook")
    assert tested.returncode == 0, tested.stdout + tested.stderr

    # a drill run: the real runner and plan, aborted in preflight because no lab answers
    from drills.plans import load_plan
    from drills.runner import run_drill
    result = run_drill(load_plan(ROOT / "drills/plans/backup-restore.yaml"), lab_outputs)
    assert result["verdict"] == "aborted"

    # key operations
    keystore = open_keystore()
    keystore.create_key("backups")
    keystore.rotate("backups")
    keystore.configure("backups", 2)
    keystore.destroy_version("backups", 1)

    # a compliance pack
    from policies.compliance import collect, pack as packs
    from policies.compliance.assessment import Assessment
    layers = collect.load(ROOT / "tests/policies/compliance/fixtures/lab")
    packs.write(tmp_path / "pack", [], layers, Assessment(), keystore, formats=("json",))

    # console users and sign-ins
    users = Users(tmp_path / "console" / "users.yaml")
    users.add("li.na", "security", PASSWORD)
    users.set_password("li.na", PASSWORD + "-2")
    sessions = Sessions(users, tmp_path / "console" / "signin.jsonl")
    with pytest.raises(SignInRefused):
        sessions.sign_in("li.na", PASSWORD, "198.51.100.20")
    sessions.sign_in("li.na", PASSWORD + "-2", "198.51.100.20")
    users.disable("li.na")

    entries = trail(state)
    actions = {e["action"] for e in entries}
    wanted = {"infra.up", "infra.refresh", "infra.destroy", "lab.up", "lab.down", "platform.up", "platform.down",
              "harden.run", "harden.rollback", "ban.auto", "ban.add", "ban.lift", "incident.state",
              "incident.assign", "incident.reopen", "notify.secret.set", "notify.test", "drill.start",
              "drill.run", "key.generate", "key.rotate", "key.configure", "key.destroy", "comply.pack",
              "console.sign-in", "user.add", "user.password", "user.disable"}
    assert wanted <= actions, f"missing from the trail: {sorted(wanted - actions)}"

    def one(action, target=None) -> dict:
        found = seen(entries, action, target)
        assert found, f"no {action} on {target}"
        return found[-1]

    for op in ("up", "refresh", "destroy"):
        assert (one(f"infra.{op}", "tiny")["actor"], one(f"infra.{op}", "tiny")["outcome"]) == ("tester", "ok")
    assert one("lab.up", "lab:lab")["outcome"] == "failed" and "needs root" in one("lab.up", "lab:lab")["reason"]
    assert one("platform.up")["outcome"] == "failed" and "mongodb" in one("platform.up")["reason"]
    assert one("platform.down", "platform")["params"] == {"keep_lab": True}
    assert one("harden.run")["outcome"] == "failed" and one("harden.run")["target"] == "nosuch:all"
    assert len(seen(entries, "harden.run")) == 1, "an audit (check mode) is not a change"
    assert one("harden.rollback", "db-9.nowhere")["outcome"] == "failed"
    auto = one("ban.auto")
    assert auto["actor"] == "govctl-secops" and auto["params"]["count"] == len(auto["params"]["blocks"]) >= 3
    assert {b["address"] for b in auto["params"]["blocks"]} >= {"203.0.113.5", "203.0.113.6", "198.51.100.7"}
    assert (one("ban.add", "192.0.2.77")["actor"], one("ban.lift", "203.0.113.5")["actor"]) == ("li.na", "li.na")
    states = [(e["params"]["from"], e["params"]["to"]) for e in seen(entries, "incident.state", f"incident:{first}")]
    assert states == [("new", "acknowledged"), ("acknowledged", "contained"), ("contained", "resolved")]
    assert one("incident.assign", f"incident:{first}")["params"] == {"assignee": "wang.fang"}
    assert one("notify.secret.set", "hook")["params"] == {}
    assert one("notify.test", "hook")["outcome"] == "ok"
    assert one("drill.run", "backup-restore")["outcome"] == "failed"
    assert "not healthy" in one("drill.run", "backup-restore")["reason"]
    assert one("key.destroy", "backups")["params"]["version"] == 1
    assert one("comply.pack", str(tmp_path / "pack"))["params"]["files"] > 0
    sign_ins = [(e["outcome"], e["reason"]) for e in seen(entries, "console.sign-in")]
    assert sign_ins == [("failed", "bad-credentials"), ("ok", None)]
    assert one("user.add", "li.na")["params"] == {"role": "security"}

    raw = (state / "audit" / "entries.jsonl").read_text()
    for secret in (HOOK_SECRET, PASSWORD):
        assert secret not in raw
    assert run_govctl("auditlog", "checkpoint").returncode == 0
    verified = run_govctl("auditlog", "verify", "--json")
    assert verified.returncode == 0, verified.stdout.decode() + verified.stderr.decode()
    assert json.loads(verified.stdout)["entries"] == len(trail(state))  # + the checkpoint key's key.generate
    assert json.loads(verified.stdout)["verified_size"] == len(entries) + 1


def test_secrets_never_reach_the_trail(state):
    entry = audit.record("alice", "notify.channel.set", "soc-mail", {
        "host": "smtp.gov.example", "password": "p1", "smtp_passphrase": "p2", "api_key": "k1", "Token": "t1",
        "nested": {"client_secret": "s1", "private_key": "-----BEGIN", "headers": [{"Authorization": "Bearer x"}]},
        "key": "evidence", "footprint": 3})
    params = entry["details"]["params"]
    assert params["host"] == "smtp.gov.example" and params["key"] == "evidence" and params["footprint"] == 3
    assert params["password"] == params["smtp_passphrase"] == params["api_key"] == params["Token"] == "[redacted]"
    assert params["nested"] == {"client_secret": "[redacted]", "private_key": "[redacted]",
                                "headers": [{"Authorization": "[redacted]"}]}
    raw = (state / "audit" / "entries.jsonl").read_text()
    for secret in ("p1", "p2", "k1", "t1", "s1", "BEGIN", "Bearer"):
        assert f'"{secret}' not in raw


def test_a_log_that_cannot_be_written_never_fails_the_action(state, tmp_path, capsys):
    from secops.respond import Allowlist, DecisionEngine
    from secops.store import Store

    (state / "audit").write_text("not a folder")  # the log cannot be opened
    before = audit.record_failures
    store = Store(tmp_path / "secops.db")
    decision = DecisionEngine(Allowlist(), store).block("192.0.2.9", "by hand", actor="li.na")
    assert decision.action == "block" and [b["address"] for b in store.active_bans()] == ["192.0.2.9"]
    assert audit.record_failures == before + 1
    err = capsys.readouterr().err
    assert "could not record ban.add on 192.0.2.9 in the audit log" in err and "the action went on" in err


def test_recorded_marks_failures_and_exit_codes(state):
    import typer

    with pytest.raises(ValueError):
        with audit.recorded("bob", "x.fail", "t1"):
            raise ValueError("the disk is full\nsecond line")
    with pytest.raises(typer.Exit):
        with audit.recorded("bob", "x.exit", "t2"):
            raise typer.Exit(1)
    with pytest.raises(typer.Exit):
        with audit.recorded("bob", "x.fine", "t3"):
            raise typer.Exit(0)
    entries = {e["action"]: e for e in trail(state)}
    assert (entries["x.fail"]["outcome"], entries["x.fail"]["reason"]) == ("failed", "the disk is full")
    assert entries["x.exit"]["outcome"] == "failed" and entries["x.exit"]["reason"] == "exit code 1"
    assert entries["x.fine"]["outcome"] == "ok"


def test_list_and_show_filter_and_prove(state):
    from typer.testing import CliRunner

    from govctl.cli import app

    audit.record("li.na", "ban.add", "192.0.2.1", {"ttl": 60})
    audit.record("secops", "ban.auto", "198.51.100.1,198.51.100.2", {"count": 2})
    audit.record("li.na", "incident.state", "incident:7", {"from": "new", "to": "acknowledged"})
    audit.record("zhao.lei", "console.sign-in", "console", {"address": "10.0.0.9"}, "failed: bad-credentials")
    audit.append("ops", "deploy.up", {"stack": "lab"})  # an entry from before the trail: its details are its params

    def govctl(*args):  # in-process: the same commands and error handling, without a process each
        result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
        return result.exit_code, result.stdout, " ".join(result.stderr.split())

    def listed(*args) -> list[dict]:
        code, out, err = govctl("auditlog", "list", "--json", *args)
        assert code == 0, err
        return json.loads(out)["entries"]

    assert [e["index"] for e in listed()] == [4, 3, 2, 1, 0]  # newest first
    assert [e["action"] for e in listed("--action", "ban")] == ["ban.auto", "ban.add"]
    assert [e["index"] for e in listed("--actor", "li.na", "--limit", "1")] == [2]
    assert [e["target"] for e in listed("--target", "198.51.100.2")] == ["198.51.100.1,198.51.100.2"]
    assert [e["reason"] for e in listed("--outcome", "failed")] == ["bad-credentials"]
    assert listed("--since", "now-1h") and listed("--until", "2020-01-01") == []
    assert listed("--action", "deploy")[0]["params"] == {"stack": "lab"}
    code, _, err = govctl("auditlog", "list", "--since", "last tuesday")
    assert code == 2 and "--since 'last tuesday' is not a time" in err
    code, out, _ = govctl("auditlog", "list")
    assert code == 0 and "zhao.lei" in out and "failed: bad-credentials" in out and "5 of 5 matching" in out

    code, _, err = govctl("auditlog", "show", "2", "--proof")
    assert code == 2 and "no signed checkpoint covers 3 entries yet" in err
    assert govctl("auditlog", "checkpoint")[0] == 0
    code, out, err = govctl("auditlog", "show", "2", "--proof", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert (document["actor"], document["target"], document["outcome"]) == ("li.na", "incident:7", "ok")
    proof_file = state / "entry2.proof"
    proof_file.write_text(json.dumps(document["proof"]))
    code, out, _ = govctl("auditlog", "verify", "--proof", str(proof_file))
    assert code == 0 and "entry 2 is in the signed tree" in out
    code, _, err = govctl("auditlog", "show", "99")
    assert code == 2 and "entry 99 does not exist" in err
