"""`govctl secops replay`: the JSON fields the issue names, labels, refused rules, bad input."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from govctl.cli import app

runner = CliRunner()


def _attack_log(path: Path) -> Path:
    lines = []
    for i in range(8):  # a fast brute force: 8 failures in 8 s
        lines.append(f"Nov  1 00:00:{i:02d} web-1 sshd[1]: Failed password for root from 203.0.113.5 port {4000+i} ssh2")
    for i in range(8):  # an ops address failing just as often is never blocked
        lines.append(f"Nov  1 00:01:{i:02d} web-1 sshd[1]: Failed password for deploy from 10.20.1.9 port {4000+i} ssh2")
    lines.append("Nov  1 00:02:00 web-1 sshd[1]: Accepted publickey for deploy from 10.20.1.9 port 1 ssh2: ED25519 x")
    lines.append("garbage that is no log line")
    lines.append("Feb 30 00:00:00 web-1 sshd[1]: Failed password for root from 203.0.113.5 port 1 ssh2")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_replay_json_fields(tmp_path):
    log = _attack_log(tmp_path / "auth.log")
    result = runner.invoke(app, ["secops", "replay", str(log), "--allow", "10.20.0.0/16", "--year", "2026", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {"lines", "parsed", "unparsed", "seconds", "lines_per_second", "alerts", "blocked"} <= set(out)
    assert out["lines"] == 19 and out["parsed"] == 17
    assert out["unparsed"] == {"bad_timestamp": 1, "unknown_format": 1}
    fast = [a for a in out["alerts"] if a["rule"] == "ssh_bruteforce_fast"]
    assert {a["source.ip"] for a in fast} == {"203.0.113.5", "10.20.1.9"}
    attacker = next(a for a in fast if a["source.ip"] == "203.0.113.5")
    assert attacker["count"] == 8
    assert attacker["first"] == "2026-11-01T00:00:00.000Z" and attacker["last"] == "2026-11-01T00:00:07.000Z"
    assert set(attacker) >= {"rule_id", "source.ip", "user", "first", "last", "count"}
    assert out["blocked"] == ["203.0.113.5"]  # the ops address alerted but is never blocked
    assert "10.20.1.9" in out["allowlisted_alerts"]


def test_replay_labels_give_precision_and_recall(tmp_path):
    log = _attack_log(tmp_path / "auth.log")
    labels = tmp_path / "truth.yaml"
    labels.write_text("malicious: [203.0.113.0/24]\nrules:\n  ssh_bruteforce_fast: [203.0.113.0/24]\n")
    result = runner.invoke(app, ["secops", "replay", str(log), "--labels", str(labels), "--year", "2026", "--json"])
    pr = json.loads(result.stdout)["precision_recall"]["ssh_bruteforce_fast"]
    assert pr["precision"] == 0.5 and pr["recall"] == 1.0 and pr["false_positives"] == 1


def test_replay_bad_inputs_exit_2(tmp_path):
    result = runner.invoke(app, ["secops", "replay", str(tmp_path / "missing.log")])
    assert result.exit_code == 2 and "missing.log" in result.output
    log = _attack_log(tmp_path / "auth.log")
    result = runner.invoke(app, ["secops", "replay", str(log), "--allow", "not-a-net"])
    assert result.exit_code == 2 and "not-a-net" in result.output
    bad = tmp_path / "labels.yaml"
    bad.write_text("nothing: here\n")
    result = runner.invoke(app, ["secops", "replay", str(log), "--labels", str(bad)])
    assert result.exit_code == 2 and "malicious" in result.output


def test_bad_rule_file_is_refused_by_path_and_others_keep_running(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "broken.yml").write_text("title: broken\ndetection: [not, a, mapping\n")
    (rules / "unsupported.yml").write_text(
        "title: needs expand\nlogsource: {product: linux}\ndetection:\n  sel:\n    x|expand: '%foo%'\n  condition: sel\n")
    log = _attack_log(tmp_path / "auth.log")
    result = runner.invoke(app, ["secops", "replay", str(log), "--rules", str(rules), "--year", "2026", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    refused = {Path(r["path"]).name: r["reason"] for r in out["rules_refused"]}
    assert set(refused) == {"broken.yml", "unsupported.yml"}
    assert "placeholder" in refused["unsupported.yml"]
    assert "broken.yml" in result.stderr  # the warning goes to stderr, the JSON stays clean
    assert any(a["rule"] == "ssh_bruteforce_fast" for a in out["alerts"])


def test_bad_config_is_refused_naming_the_problem(tmp_path):
    log = _attack_log(tmp_path / "auth.log")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("retention_days: 30\nenforcer: {table: 'bad name'}\nsurprise: 1\n")
    result = runner.invoke(app, ["secops", "replay", str(log), "--config", str(cfg)])
    assert result.exit_code == 2
    for problem in ("retention_days", "enforcer.table", "surprise"):
        assert problem in result.output
