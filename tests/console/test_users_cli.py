"""`govctl users` and `govctl console serve` as a user runs them: exit codes, messages, the file they leave."""
from __future__ import annotations

import stat

import pytest
import yaml
from typer.testing import CliRunner

from govctl.cli import app

GOOD = "Security-pass-2026"


@pytest.fixture
def state(tmp_path, monkeypatch):
    import core.paths
    monkeypatch.setattr(core.paths, "STATE", tmp_path)
    return tmp_path


def run(*args, stdin: str | None = None):
    return CliRunner().invoke(app, list(args), input=stdin)


def test_add_list_passwd_disable(state):
    assert run("users", "add", "li.na", "--role", "security", "--password-stdin", stdin=GOOD + "\n").exit_code == 0
    # the prompt asks twice
    assert run("users", "add", "zhao.lei", "--role", "auditor", stdin=f"{GOOD}\n{GOOD}\n").exit_code == 0
    listed = run("users", "list", "--json")
    assert listed.exit_code == 0
    assert [(u["name"], u["role"], u["disabled"]) for u in yaml.safe_load(listed.stdout)] == \
        [("li.na", "security", False), ("zhao.lei", "auditor", False)]
    path = state / "console" / "users.yaml"
    text = path.read_text()
    assert GOOD not in text and "$argon2id$" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = yaml.safe_load(text)["users"][0]["hash"]
    assert run("users", "passwd", "li.na", "--password-stdin", stdin="Another-pass-2027\n").exit_code == 0
    assert yaml.safe_load(path.read_text())["users"][0]["hash"] != before
    assert run("users", "disable", "zhao.lei").exit_code == 0
    assert yaml.safe_load(run("users", "list", "--json").stdout)[1]["disabled"] is True


@pytest.mark.parametrize("args,stdin,message", [
    (["users", "add", "li.na", "--role", "root", "--password-stdin"], GOOD, "role 'root'"),
    (["users", "add", "Li Na", "--role", "ops", "--password-stdin"], GOOD, "user name"),
    (["users", "add", "li.na", "--role", "ops", "--password-stdin"], "short", "at least 12 characters"),
    (["users", "add", "li.na", "--role", "ops", "--password-stdin"], "alllowercaseletters", "3 kinds"),
    (["users", "add", "li.na", "--role", "ops", "--password-stdin"], "", "standard input is empty"),
    (["users", "passwd", "nobody", "--password-stdin"], GOOD, "does not exist"),
    (["users", "disable", "nobody"], None, "does not exist"),
])
def test_bad_input_exits_2_with_the_reason(state, args, stdin, message):
    result = run(*args, stdin=None if stdin is None else (stdin + "\n" if stdin else ""))
    assert result.exit_code == 2, result.output
    assert message in result.output.replace("\n", " ")


def test_adding_a_user_twice_is_refused(state):
    assert run("users", "add", "li.na", "--role", "ops", "--password-stdin", stdin=GOOD + "\n").exit_code == 0
    again = run("users", "add", "li.na", "--role", "security", "--password-stdin", stdin=GOOD + "\n")
    assert again.exit_code == 2 and "exists" in again.output


def test_console_serves_plain_http_on_loopback_only(state):
    result = run("console", "serve", "--host", "0.0.0.0")
    assert result.exit_code == 2 and "loopback" in result.output
