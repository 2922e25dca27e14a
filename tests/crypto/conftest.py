"""Every crypto test runs against its own state directory (keystore, audit log, config) with a
test passphrase, so nothing touches the checkout's state/."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core import paths

PASSPHRASE = "correct horse battery staple 测试"
GOVCTL = [str(Path(sys.executable).with_name("govctl"))]


@pytest.fixture
def state(tmp_path, monkeypatch) -> Path:
    state_dir = tmp_path / "state"
    (state_dir / "crypto").mkdir(parents=True)
    # The minimum PBKDF2 count keeps each keystore open fast; the default is 600,000.
    (state_dir / "crypto" / "config.yaml").write_text("suite: gm\nkdf_iterations: 100000\n")
    monkeypatch.setattr(paths, "STATE", state_dir)
    monkeypatch.setenv("GOVCTL_STATE", str(state_dir))
    monkeypatch.setenv("GOVCTL_CRYPTO_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("GOVCTL_ACTOR", "tester")
    for name in ("GOVCTL_CRYPTO_PASSPHRASE_FILE", "GOVCTL_CRYPTO_ROOT_KEY_FILE", "GOVCTL_CRYPTO_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    from crypto.audit import AuditLog

    AuditLog._open_logs.clear()
    yield state_dir
    from crypto import sm2

    sm2.use_backend(sm2.AUTO)  # a test may have configured another backend


@pytest.fixture
def keystore(state):
    from crypto.audit import open_keystore

    return open_keystore()


def run_govctl(*args: str, input: bytes | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess, with the test's environment."""
    return subprocess.run(GOVCTL + list(args), input=input, capture_output=True,
                          env={**os.environ, **(env or {})}, timeout=120)
