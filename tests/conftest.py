"""Shared test helpers: run the real `govctl` entry point in a subprocess, isolated state."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOVCTL = ROOT / ".venv" / "bin" / "govctl"


def run_govctl(*args: str, env: dict | None = None, timeout: float = 600,
               input: str | None = None) -> subprocess.CompletedProcess:
    """Run govctl as a user would; returns the completed process (never raises on exit code)."""
    return subprocess.run([str(GOVCTL), *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=timeout, input=input)


@pytest.fixture
def isolated_state(tmp_path) -> dict:
    """Environment that points govctl's state (Pulumi backend, keys, stores) at a temp folder."""
    state = tmp_path / "state"
    state.mkdir()
    return {"GOVCTL_STATE": str(state)}


def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("this test needs root (network namespaces, nftables); run the suite as root")


__all__ = ["GOVCTL", "ROOT", "isolated_state", "needs_root", "run_govctl", "sys"]
