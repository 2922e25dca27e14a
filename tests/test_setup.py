"""Set-up: idempotent and quick when done; reuses a `pulumi` of the pinned version on PATH."""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT


def _setup_module():
    spec = importlib.util.spec_from_file_location("govctl_setup", ROOT / "scripts" / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_second_setup_is_quick_and_quiet():
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "scripts/setup.py"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert took <= 30, f"a second set-up took {took:.1f} s"
    assert "installing" not in proc.stdout and "compiling" not in proc.stdout
    assert "ready in" in proc.stdout


def test_pinned_version_is_read_from_pyproject():
    from importlib.metadata import version

    assert _setup_module().pinned_pulumi_version() == version("pulumi")


@pytest.mark.parametrize("reported, used", [("v3.79.0", True), ("v3.80.0", False)])
def test_a_pulumi_on_path_of_the_pinned_version_is_used(tmp_path, monkeypatch, reported, used):
    setup = _setup_module()
    tools = tmp_path / "bin"
    tools.mkdir()
    if used:  # a copy of the real CLI, installed elsewhere on PATH
        shutil.copy2(ROOT / ".tools/pulumi/pulumi", tools / "pulumi")
    else:  # another version: a wrapper that answers `pulumi version` like an older CLI would
        (tools / "pulumi").write_text(f"#!/bin/sh\necho {reported}\n")
        (tools / "pulumi").chmod(0o755)
    (tools / "pulumi-language-python").symlink_to(ROOT / ".tools/pulumi/pulumi-language-python")
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    found = setup.pulumi_on_path(setup.pinned_pulumi_version())
    assert (found is not None) is used
    if used:
        assert found == tools
