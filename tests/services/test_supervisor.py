"""The supervisor, through the CLI as a user runs it: a crashing service is restarted with growing
back-off, one that stays up has its crash count reset, `status --json` shows the restarts, `logs`
shows them, and `down` leaves no process behind. Tiny Python services: no lab, no server."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from services.layout import process_alive
from tests.conftest import run_govctl

DATA = Path(__file__).with_name("data")


def _status(env) -> tuple[int, dict]:
    proc = run_govctl("status", "--json", env=env)
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.slow
def test_crashing_service_restarts_with_backoff_and_down_leaves_nothing(isolated_state):
    env = {**isolated_state, "COLUMNS": "400"}  # error lines unwrapped
    state = Path(env["GOVCTL_STATE"])
    up = run_govctl("up", "--components", str(DATA / "crash.yaml"), "--plain-http", "--json", env=env,
                    timeout=120)
    assert up.returncode == 1, up.stderr  # crashy never comes up: named, exit 1
    assert "not up: crashy" in up.stderr
    report = json.loads(up.stdout)
    assert report["components"]["prepare"]["state"] == "up"
    assert report["components"]["sleeper"]["state"] == "up"
    assert report["components"]["flaky"]["state"] == "up"
    assert report["components"]["crashy"]["state"] == "degraded"
    assert (state / "platform" / "prepared").read_text() == "yes"

    time.sleep(3)  # a few more crashes of crashy
    code, status = _status(env)
    assert code == 1
    crashy, flaky, sleeper = (status["components"][n] for n in ("crashy", "flaky", "sleeper"))
    assert crashy["state"] == "degraded" and crashy["restarts"] >= 4
    # caught between restarts ("exited with code 3; restart …") or just restarted ("restarting: … last exit code 3")
    assert "exited with code 3" in crashy["why"] or "last exit code 3" in crashy["why"], crashy["why"]
    assert [h["exit"] for h in crashy["history"]] == [3] * len(crashy["history"])
    # back-off: the gap between crashes is at least base·2^(n-1) (0.3, 0.6, 1.2, then max 1.2)
    times = [h["at"] for h in crashy["history"]]
    gaps = [b - a for a, b in zip(times, times[1:])]
    floors = [min(0.3 * 2 ** n, 1.2) for n in range(len(gaps))]
    assert len(gaps) >= 3 and all(g >= f for g, f in zip(gaps, floors)), (gaps, floors)
    # flaky crashed twice, then stayed up past reset_after: its crash count starts again
    assert flaky["state"] == "up" and flaky["restarts"] == 2 and flaky["last_exit"] == 4
    supervised = json.loads((state / "platform" / "status.json").read_text())["services"]
    assert supervised["flaky"]["failures_in_a_row"] == 0
    assert sleeper["state"] == "up" and sleeper["restarts"] == 0
    sleeper_pid = sleeper["pid"]
    assert int((state / "platform" / "sleeper.pid").read_text()) == sleeper_pid
    supervisor_pid = status["supervisor"]["pid"]
    assert supervisor_pid and process_alive(supervisor_pid)

    logs = run_govctl("logs", "crashy", "-n", "5", env=env)
    assert logs.returncode == 0 and "supervisor starts crashy" in logs.stdout
    assert "restart in" in run_govctl("logs", "supervisor", env=env).stdout
    unknown = run_govctl("logs", "nosuch", env=env)
    assert unknown.returncode == 2 and "use one of prepare, crashy, flaky, sleeper" in unknown.stderr

    # a second up starts nothing new: the same pids
    again = run_govctl("up", "--json", env=env, timeout=60)
    assert json.loads(again.stdout)["components"]["sleeper"]["action"] == "found up"
    assert _status(env)[1]["components"]["sleeper"]["pid"] == sleeper_pid

    down = run_govctl("down", "--json", env=env, timeout=120)
    assert down.returncode == 0, down.stderr
    assert set(json.loads(down.stdout)["stopped"]) >= {"crashy", "flaky", "sleeper", "prepare"}
    for pid in (sleeper_pid, supervisor_pid, flaky["pid"]):
        assert not process_alive(pid), pid
    assert not list((state / "platform").glob("*.pid"))
    assert not (state / "platform" / "prepared").exists()  # the step's stop ran
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit()
                and str(state) in _cmdline(p)], "a process of this platform is still running"
    code, status = _status(env)
    assert code == 1 and status["components"]["sleeper"]["state"] == "down"
    assert status["components"]["sleeper"]["why"] == "the supervisor is not running"


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_status_before_any_up_says_what_to_do(isolated_state):
    proc = run_govctl("status", env=isolated_state)
    assert proc.returncode == 1 and "run `govctl up`" in proc.stderr


@pytest.mark.slow
def test_a_killed_supervisor_is_replaced_and_its_orphans_stopped(isolated_state, tmp_path):
    env = {**isolated_state, "COLUMNS": "400"}
    spec = tmp_path / "sleeper.yaml"
    spec.write_text("version: 1\nconsole: {component: sleeper, path: /}\ncomponents:\n"
                    "  - {name: sleeper, kind: service, description: runs until stopped,\n"
                    "     run: ['{python}', -c, 'import time; time.sleep(3600)'], timeout: 10}\n")
    assert run_govctl("up", "--components", str(spec), "--plain-http", env=env, timeout=60).returncode == 0
    code, status = _status(env)
    first_pid, supervisor_pid = status["components"]["sleeper"]["pid"], status["supervisor"]["pid"]
    os.kill(supervisor_pid, 9)
    deadline = time.monotonic() + 10
    while process_alive(supervisor_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    code, status = _status(env)
    assert code == 1 and status["components"]["sleeper"]["why"] == "the supervisor is not running"
    assert process_alive(first_pid)  # orphaned, still running
    again = run_govctl("up", "--json", env=env, timeout=60)
    assert again.returncode == 0, again.stderr
    code, status = _status(env)
    assert code == 0 and status["supervisor"]["pid"] != supervisor_pid
    assert status["components"]["sleeper"]["pid"] != first_pid
    assert not process_alive(first_pid)  # the new supervisor stopped the orphan before starting anew
    assert run_govctl("down", env=env, timeout=60).returncode == 0
    assert not process_alive(status["components"]["sleeper"]["pid"])


def test_a_failing_step_is_named_with_its_error_and_its_dependents_are_not_started(isolated_state, tmp_path):
    env = {**isolated_state, "COLUMNS": "400"}
    spec = tmp_path / "broken.yaml"
    spec.write_text("version: 1\nconsole: {component: after, path: /}\ncomponents:\n"
                    "  - name: broken\n    kind: step\n    description: fails\n"
                    "    run: ['{python}', -c, 'import sys; print(1); sys.stderr.write(\"error: the disk is full\\n\");"
                    " sys.exit(5)']\n    check: {stamp: true}\n"
                    "  - {name: after, kind: service, description: needs it, needs: [broken],\n"
                    "     run: ['{python}', -c, 'import time; time.sleep(60)']}\n")
    up = run_govctl("up", "--components", str(spec), "--plain-http", "--json", env=env, timeout=60)
    assert up.returncode == 1 and "not up: broken, after" in up.stderr
    components = json.loads(up.stdout)["components"]
    assert components["broken"]["state"] == "down"
    assert components["broken"]["why"].startswith("exited with code 5: the disk is full (see ")
    assert components["after"] == {**components["after"], "state": "down", "action": "skipped",
                                   "why": "not started: needs broken"}
    code, status = _status(env)
    assert code == 1 and status["supervisor"]["pid"] is None  # nothing to supervise: none started


@pytest.mark.slow
def test_a_running_service_is_kept_when_a_need_fails_its_check(isolated_state, tmp_path):
    """A need whose check fails (e.g. the lab answering slowly once) must not make `up` stop what runs."""
    env = {**isolated_state, "COLUMNS": "400"}
    flag = tmp_path / "need-ok"
    spec = tmp_path / "kept.yaml"
    spec.write_text("version: 1\nconsole: {component: worker, path: /}\ncomponents:\n"
                    "  - name: need\n    kind: step\n    description: passes while the flag file exists\n"
                    f"    run: ['{{python}}', -c, 'open(\"{flag}\", \"w\")']\n"
                    f"    check: {{command: ['{{python}}', -c, 'import os, sys; sys.exit(not os.path.exists(\"{flag}\"))']}}\n"
                    "  - name: worker\n    kind: service\n    description: runs\n    needs: [need]\n"
                    "    run: ['{python}', -c, 'import time; time.sleep(3600)']\n")
    try:
        first = run_govctl("up", "--components", str(spec), "--plain-http", "--json", env=env, timeout=60)
        assert first.returncode == 0, first.stderr
        pid = json.loads(run_govctl("status", "--json", env=env).stdout)["components"]["worker"]["pid"]
        flag.unlink()
        # the step runs again (its check fails) and makes the flag: its need remade, the worker restarts
        assert run_govctl("up", "--json", env=env, timeout=60).returncode == 0
        assert json.loads(run_govctl("status", "--json", env=env).stdout)["components"]["worker"]["pid"] != pid
        # now the step cannot fix it: the check fails whatever the step does
        spec.write_text(spec.read_text().replace(f'open("{flag}", "w")', "pass"))
        pid = json.loads(run_govctl("status", "--json", env=env).stdout)["components"]["worker"]["pid"]
        flag.unlink()
        failed = run_govctl("up", "--json", env=env, timeout=120)
        assert failed.returncode == 1 and "not up: need" in failed.stderr
        worker = json.loads(failed.stdout)["components"]["worker"]
        assert worker["action"] == "kept" and "needs need, which is not up" in worker["why"]
        assert process_alive(pid)
    finally:
        run_govctl("down", env=env, timeout=60)


def test_a_check_that_fails_once_is_retried_before_the_step_runs(isolated_state, tmp_path):
    env = {**isolated_state, "COLUMNS": "400"}
    counter, ran = tmp_path / "checks", tmp_path / "ran"
    spec = tmp_path / "retry.yaml"
    spec.write_text("version: 1\nconsole: {component: s, path: /}\ncomponents:\n"
                    "  - name: flapping\n    kind: step\n    description: its check fails every other time\n"
                    f"    run: ['{{python}}', -c, 'open(\"{ran}\", \"w\")']\n"
                    "    check:\n      retries: 1\n      retry_pause: 0.1\n"
                    f"      command: ['{{python}}', -c, 'import pathlib, sys; p = pathlib.Path(\"{counter}\");"
                    " n = int(p.read_text()) + 1 if p.exists() else 1; p.write_text(str(n)); sys.exit(n % 2)']\n"
                    "  - {name: s, kind: service, description: runs, run: ['{python}', -c, 'import time; time.sleep(60)']}\n")
    try:
        up = run_govctl("up", "--components", str(spec), "--plain-http", "--json", env=env, timeout=60)
        assert up.returncode == 0, up.stderr
        flapping = json.loads(up.stdout)["components"]["flapping"]
        assert flapping["action"] == "found up"
        assert counter.read_text() == "2" and not ran.exists()  # failed, retried, passed: not run
        assert flapping["check_seconds"] >= 0.1  # what the check took, its retry pause included
    finally:
        run_govctl("down", env=env, timeout=60)


@pytest.mark.slow
def test_up_waits_for_a_changed_service_to_run_its_new_command(isolated_state, tmp_path):
    """A service whose command changed is up only once the supervisor runs the new command (not while
    the old process still answers), so `status` right after `up` agrees with it."""
    env = {**isolated_state, "COLUMNS": "400"}

    def components(marker: str) -> Path:
        spec = tmp_path / f"{marker}.yaml"
        spec.write_text("version: 1\nconsole: {component: s, path: /}\ncomponents:\n"
                        "  - {name: s, kind: service, description: runs,"
                        f" run: ['{{python}}', -c, 'import time; time.sleep(600)', {marker}]}}\n")
        return spec

    try:
        first = run_govctl("up", "--components", str(components("first")), "--plain-http", "--json",
                           env=env, timeout=60)
        assert first.returncode == 0, first.stderr
        old_pid = _status(env)[1]["components"]["s"]["pid"]
        second = run_govctl("up", "--components", str(components("second")), "--plain-http", "--json",
                            env=env, timeout=60)
        assert second.returncode == 0, second.stderr
        reported = json.loads(second.stdout)["components"]["s"]
        assert reported["action"] == "started"
        new_pid = int(reported["why"].split()[1].rstrip(","))  # "pid N, 0 restart(s)": the one it saw up
        assert new_pid != old_pid and not process_alive(old_pid)
        code, status = _status(env)
        assert code == 0 and status["components"]["s"]["pid"] == new_pid, status["components"]["s"]
        assert Path(f"/proc/{new_pid}/cmdline").read_bytes().split(b"\0")[-2] == b"second"
    finally:
        run_govctl("down", env=env, timeout=60)
