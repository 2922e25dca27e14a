"""govctl monitor / availability: what a user sees when something is missing or wrong."""
from __future__ import annotations

import os
import subprocess
import sys


def govctl(state, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from govctl.cli import main; main()", *args],
                          capture_output=True, text=True, env={**os.environ, "GOVCTL_STATE": str(state)})


def test_monitor_up_without_targets_is_bad_input(tmp_path):
    out = govctl(tmp_path, "monitor", "up")
    assert out.returncode == 2 and "pass --targets FILE" in out.stderr


def test_status_and_report_when_the_monitor_is_not_up(tmp_path):
    out = govctl(tmp_path, "monitor", "status")
    assert out.returncode == 1 and "the monitor is not up" in out.stderr
    out = govctl(tmp_path, "availability", "report", "--from", "now-1d")
    assert out.returncode == 1 and "Prometheus is not running" in out.stderr
    out = govctl(tmp_path, "monitor", "silence", "list")
    assert out.returncode == 1 and "Alertmanager is not running" in out.stderr


def test_bad_report_options_name_the_option(tmp_path):
    out = govctl(tmp_path, "availability", "report", "--from", "now-1d", "--format", "xml",
                 "--prometheus", "127.0.0.1:1")
    assert out.returncode == 2 and "--format 'xml'" in out.stderr
    out = govctl(tmp_path, "availability", "report", "--from", "last tuesday", "--prometheus", "127.0.0.1:1")
    assert out.returncode == 2 and "--from 'last tuesday'" in out.stderr


def test_silence_match_must_be_label_equals_value(tmp_path):
    out = govctl(tmp_path, "monitor", "silence", "add", "-m", "prod", "--comment", "drill")
    assert out.returncode == 2 and "--match 'prod'" in out.stderr
