"""What the first `up` makes once: the platform CA and the server certificate (the console answers
HTTPS that `curl --cacert` and `openssl verify` accept), the first administrator's credentials and
the keystore's root key (then `govctl crypto keys create` works with no variable set)."""
from __future__ import annotations

import json
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from core import paths
from tests.conftest import run_govctl

DATA = Path(__file__).with_name("data")
NO_CRYPTO_ENV = {"GOVCTL_CRYPTO_PASSPHRASE": "", "GOVCTL_CRYPTO_PASSPHRASE_FILE": "",
                 "GOVCTL_CRYPTO_ROOT_KEY_FILE": ""}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _root_tables() -> str:
    """The nftables tables of this machine's own namespace ("" where nft cannot list them)."""
    proc = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else ""


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.slow
def test_console_answers_https_signed_by_the_platform_ca(isolated_state):
    env = {**isolated_state, **NO_CRYPTO_ENV}
    state = Path(env["GOVCTL_STATE"])
    port = _free_port()
    tables = _root_tables()
    up = run_govctl("up", "--components", str(DATA / "console.yaml"), "--port", str(port), "--json",
                    env=env, timeout=180)
    try:
        assert up.returncode == 0, up.stderr
        assert _root_tables() == tables, "the console alone (--dry-run) touched this machine's firewall"
        report = json.loads(up.stdout)
        assert report["console_url"] == f"https://127.0.0.1:{port}/"
        ca = Path(report["ca_certificate"])
        tls = state / "platform" / "tls"
        assert ca == tls / "ca.crt"
        assert _mode(tls / "ca.key") == 0o600 and _mode(tls / "server.key") == 0o600
        verify = subprocess.run(["openssl", "verify", "-CAfile", str(ca), str(tls / "server.crt")],
                                capture_output=True, text=True)
        assert verify.returncode == 0 and verify.stdout.strip().endswith(": OK"), verify
        text = subprocess.run(["openssl", "x509", "-in", str(ca), "-noout", "-text"],
                              capture_output=True, text=True).stdout
        assert "prime256v1" in text and "CA:TRUE" in text  # ECDSA P-256
        for host in ("localhost", "127.0.0.1"):
            curl = subprocess.run(["curl", "-sS", "--cacert", str(ca), "-o", "/dev/null", "-w",
                                   "%{http_code}", f"https://{host}:{port}/openapi.json"],
                                  capture_output=True, text=True, timeout=30)
            assert curl.stdout == "200", curl.stderr
        untrusted = subprocess.run(["curl", "-sS", f"https://localhost:{port}/openapi.json"],
                                   capture_output=True, text=True, timeout=30)
        assert untrusted.returncode == 60  # the CA is not in the system's store: refused
        plain = subprocess.run(["curl", "-sS", f"http://127.0.0.1:{port}/openapi.json"],
                               capture_output=True, text=True, timeout=30)
        assert plain.stdout != "" or plain.returncode != 0
        assert '"openapi"' not in plain.stdout  # no plain HTTP beside HTTPS

        credentials = Path(report["credentials_file"])
        assert _mode(credentials) == 0o600
        fields = dict(line.split(": ", 1) for line in credentials.read_text().splitlines()
                      if not line.startswith("#"))
        assert fields["user"] and len(fields["password"]) >= 16 and fields["url"] == report["console_url"]
        # created once: a second up keeps the CA, the certificate and the credentials
        before = {p: p.read_bytes() for p in (ca, tls / "server.crt", credentials)}
        again = run_govctl("up", "--json", env=env, timeout=120)
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["components"]["console"]["action"] == "found up"
        assert {p: p.read_bytes() for p in before} == before
        status = run_govctl("status", "--json", env=env)
        assert status.returncode == 0 and json.loads(status.stdout)["console_url"] == report["console_url"]
    finally:
        down = run_govctl("down", env=env, timeout=120)
    assert down.returncode == 0, down.stderr
    refused = subprocess.run(["curl", "-sS", "--cacert", str(ca), f"https://localhost:{port}/"],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 7  # nothing listens any more


def test_incidents_serve_refuses_plain_http_off_loopback(isolated_state, tmp_path):
    proc = run_govctl("incidents", "serve", "--host", "0.0.0.0", "--port", "1", env=isolated_state)
    assert proc.returncode == 2 and "plain HTTP is served only on loopback" in " ".join(proc.stderr.split())
    half = run_govctl("incidents", "serve", "--tls-certfile", str(tmp_path / "x.crt"), env=isolated_state)
    assert half.returncode == 2 and "give both --tls-certfile and --tls-keyfile" in " ".join(half.stderr.split())
    missing = run_govctl("incidents", "serve", "--tls-certfile", str(tmp_path / "x.crt"),
                         "--tls-keyfile", str(tmp_path / "x.key"), env=isolated_state)
    assert missing.returncode == 2 and "x.crt: no such file" in " ".join(missing.stderr.split())


@pytest.fixture
def bare_state(tmp_path, monkeypatch) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setattr(paths, "STATE", state)
    for name in NO_CRYPTO_ENV:
        monkeypatch.delenv(name, raising=False)
    return state


def test_first_up_makes_a_root_key_so_keys_create_works_without_variables(bare_state):
    from services.signing import ensure_signing

    env = {"GOVCTL_STATE": str(bare_state), **NO_CRYPTO_ENV}
    locked = run_govctl("crypto", "keys", "create", "reports", env=env)
    assert locked.returncode == 2 and "run `govctl up` once" in " ".join(locked.stderr.split())
    result = ensure_signing()
    root_key = bare_state / "keys" / "root.key"
    assert result["state"] == "up" and result["created"] and result["path"] == str(root_key)
    assert "back it up" in result["why"]
    assert _mode(root_key) == 0o600 and len(root_key.read_bytes()) == 32
    created = run_govctl("crypto", "keys", "create", "reports", "--purpose", "signing", env=env)
    assert created.returncode == 0, created.stderr
    again = ensure_signing()  # the second up finds it, changes nothing
    assert again["state"] == "up" and not again["created"]
    assert len(root_key.read_bytes()) == 32


def test_an_existing_passphrase_keystore_is_not_replaced(bare_state, monkeypatch):
    from crypto.keystore import Keystore
    from services.signing import ensure_signing

    monkeypatch.setenv("GOVCTL_CRYPTO_PASSPHRASE", "the user's own passphrase 口令")
    Keystore.open(events=None).create_key("k")
    monkeypatch.delenv("GOVCTL_CRYPTO_PASSPHRASE")
    result = ensure_signing()
    assert result["state"] == "down" and "GOVCTL_CRYPTO_PASSPHRASE_FILE" in result["why"]
    assert not (bare_state / "keys" / "root.key").exists()
    monkeypatch.setenv("GOVCTL_CRYPTO_PASSPHRASE", "the user's own passphrase 口令")
    given = ensure_signing()
    assert given["state"] == "up" and given["root"] == "given by GOVCTL_CRYPTO_PASSPHRASE"


def test_first_up_creates_the_audit_trails_checkpoint_key_so_the_trail_verifies(bare_state):
    """Issue 19: the compliance evidence verifies the audit trail right after the first up (no hourly
    checkpoint yet), which needs the `audit` signing key."""
    from crypto import audit
    from crypto.keystore import Keystore
    from services.signing import ensure_signing

    result = ensure_signing()
    assert result["state"] == "up" and result["audit_key"] == audit.AUDIT_KEY
    keystore = Keystore.open(events=None)
    assert keystore.describe(audit.AUDIT_KEY)["purpose"] == "signing"
    versions = keystore.public_keys(audit.AUDIT_KEY)
    ensure_signing()  # a second up keeps the same key
    assert Keystore.open(events=None).public_keys(audit.AUDIT_KEY).keys() == versions.keys() == {1}
