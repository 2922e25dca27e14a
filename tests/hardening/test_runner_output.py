"""What ansible-runner writes in a govctl run: the quiet stdout (failures and the recap only) and the
artifacts' event files (results kept, start/diff/loop-item events not) — on a real ansible-runner run
against the local host, with the same settings as hardening/runner.py."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from hardening.runner import EventSink, quiet_stdout

pytestmark = pytest.mark.slow  # starts ansible-playbook (seconds on this machine)

PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: "IA-SESSION-TIMEOUT | a file that would change"
      ansible.builtin.copy: {dest: "{{ target }}", content: "TMOUT=600\\n"}
    - name: "AC-DEFAULT-UMASK | a loop"
      ansible.builtin.command: "true"
      loop: [a, b]
      changed_when: false
      check_mode: false
    - name: "AU-AUDIT-POLICY | a failure"
      ansible.builtin.command: /bin/false
      check_mode: false
"""


def test_only_failures_and_the_recap_are_printed_and_the_results_are_kept(tmp_path, monkeypatch):
    import ansible_runner

    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])  # as run_playbook does

    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "play.yml").write_text(PLAYBOOK)
    sink = EventSink(["localhost"])
    result = ansible_runner.run(
        private_data_dir=str(tmp_path), playbook="play.yml", inventory="localhost ansible_python_interpreter=python3",
        extravars={"target": str(tmp_path / "tmout.sh")}, cmdline="--check --diff", envvars=quiet_stdout(),
        event_handler=sink, quiet=True)
    run = sink.hosts["localhost"]
    assert [(r.task, r.status) for r in run.results] == [
        ("IA-SESSION-TIMEOUT | a file that would change", "changed"),
        ("AC-DEFAULT-UMASK | a loop", "ok"),
        ("AU-AUDIT-POLICY | a failure", "failed")]
    assert "+TMOUT=600" in run.results[0].evidence()["diff"], "the diff still reaches govctl"
    assert run.status == "failed" and "AU-AUDIT-POLICY | a failure" in run.message

    stdout = result.stdout.read()
    assert "FAILED: [localhost] AU-AUDIT-POLICY | a failure" in stdout
    assert "localhost: ok=" in stdout and "failures=1" in stdout
    assert "ok: [localhost]" not in stdout and "+TMOUT=600" not in stdout, "no per-task text, no rendered diffs"

    kinds = [json.loads(f.read_text())["event"] for f in (tmp_path / "artifacts").glob("*/job_events/*.json")]
    assert kinds.count("runner_on_ok") == 2 and kinds.count("runner_on_failed") == 1
    assert not {"runner_on_start", "runner_on_file_diff", "runner_item_on_ok"} & set(kinds)
    assert "playbook_on_stats" in kinds
