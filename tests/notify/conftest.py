"""notify's test rig: a state directory with its own keystore, a real SMTP server (aiosmtpd, STARTTLS and
AUTH with a throw-away certificate) and local HTTP receivers standing in for the DingTalk and WeCom robots
and a webhook consumer (those services cannot be reached from here); each receiver checks the signature
with the published algorithm and refuses a wrong one, as the real service would."""
from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import os
import ssl
import threading
import time
import urllib.parse
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core import paths
from tests.secops.testbed import free_port

SMTP_USER = "soc@gov.example"
SMTP_PASSWORD = "smtp-pa55-do-not-leak-7f3a"
DING_TOKEN = "ding-token-0123456789abcdef"
DING_SECRET = "SECding-sign-secret-fedcba9876543210"
WECOM_KEY = "wecom-key-693a91f6-7b8c"
HOOK_SECRET = "hook-signing-secret-5e1d"
ALL_SECRETS = (SMTP_PASSWORD, DING_TOKEN, DING_SECRET, WECOM_KEY, HOOK_SECRET)


@pytest.fixture
def state(tmp_path, monkeypatch) -> Path:
    state_dir = tmp_path / "state"
    (state_dir / "keys").mkdir(parents=True)
    root_key = state_dir / "keys" / "root.key"
    root_key.write_bytes(os.urandom(32))
    monkeypatch.setattr(paths, "STATE", state_dir)
    monkeypatch.setenv("GOVCTL_STATE", str(state_dir))
    monkeypatch.setenv("GOVCTL_CRYPTO_ROOT_KEY_FILE", str(root_key))
    for name in ("GOVCTL_CRYPTO_PASSPHRASE_FILE", "GOVCTL_CRYPTO_PASSPHRASE", "GOVCTL_CRYPTO_CONFIG",
                 "GOVCTL_NOTIFY_CONFIG", "GOVCTL_NOTIFY_JOURNAL", "GOVCTL_NOTIFY_SECRETS"):
        monkeypatch.delenv(name, raising=False)
    from crypto.audit import AuditLog
    AuditLog._open_logs.clear()
    return state_dir


@pytest.fixture
def certificate(tmp_path) -> tuple[Path, Path]:
    return make_certificate(tmp_path)


def make_certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the SMTP server's), which the client is told to trust."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "smtp.crt", tmp_path / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Mailbox:
    def __init__(self):
        self.messages: list = []
        self.arrived: list[float] = []
        self.condition = threading.Condition()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        with self.condition:
            self.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
            self.arrived.append(time.time())
            self.condition.notify_all()
        return "250 OK"

    def wait(self, count: int, timeout: float = 10) -> list:
        with self.condition:
            self.condition.wait_for(lambda: len(self.messages) >= count, timeout)
        return self.messages


@pytest.fixture
def smtp_server(certificate):
    mailbox, controller = start_smtp(certificate)
    yield mailbox
    controller.stop()


def start_smtp(certificate: tuple[Path, Path]):
    """aiosmtpd on a free loopback port: STARTTLS required before AUTH, one user and password.
    Returns (mailbox, controller); controller.stop() ends it."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == SMTP_USER.encode() and auth_data.password == SMTP_PASSWORD.encode()
        return AuthResult(success=ok)

    import logging
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd's own deprecation notes about itself
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), tls_context=context, require_starttls=True,
                            authenticator=authenticate, auth_required=True, auth_require_tls=True,
                            enable_SMTPUTF8=True)
    controller.start()
    mailbox.port = controller.port
    mailbox.ca_file = str(certificate[0])
    return mailbox, controller


class Receiver:
    """What one stand-in robot or webhook consumer received and verified."""

    def __init__(self, kind: str):
        self.kind = kind
        self.accepted: list[dict] = []
        self.refused: list[str] = []
        self.arrived: list[float] = []
        self.fail_next = 0  # answer HTTP 500 to that many calls first (retries)
        self.condition = threading.Condition()

    def verify(self, path: str, headers, body: bytes) -> str | None:
        """The reason the call is refused, or None: the real service's check, by its published algorithm."""
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))
        if self.kind == "dingtalk":
            if query.get("access_token") != DING_TOKEN:
                return "bad access_token"
            stamp = query.get("timestamp", "")
            if not stamp.isdigit() or abs(int(stamp) - time.time() * 1000) > 3600_000:
                return "timestamp missing or more than an hour off"
            expected = base64.b64encode(hmac.new(DING_SECRET.encode(), f"{stamp}\n{DING_SECRET}".encode(),
                                                 hashlib.sha256).digest()).decode()
            return None if hmac.compare_digest(query.get("sign", ""), expected) else "bad sign"
        if self.kind == "wecom":
            return None if query.get("key") == WECOM_KEY else "bad key"
        stamp = headers.get("X-Govctl-Timestamp", "")
        if not stamp.isdigit() or abs(int(stamp) - time.time()) > 300:
            return "timestamp missing or more than 5 minutes off"
        expected = "sha256=" + hmac.new(HOOK_SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return None if hmac.compare_digest(headers.get("X-Govctl-Signature", ""), expected) else "bad signature"

    def wait(self, count: int, timeout: float = 10) -> list[dict]:
        with self.condition:
            self.condition.wait_for(lambda: len(self.accepted) >= count, timeout)
        return self.accepted


def start_receiver(kind: str):
    receiver = Receiver(kind)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if receiver.fail_next > 0:
                receiver.fail_next -= 1
                return self._answer(500, {"error": "try later"})
            refused = receiver.verify(self.path, self.headers, body)
            with receiver.condition:
                if refused:
                    receiver.refused.append(refused)
                else:
                    receiver.accepted.append({"path": self.path, "headers": dict(self.headers),
                                              "json": json.loads(body)})
                    receiver.arrived.append(time.time())
                receiver.condition.notify_all()
            if kind == "webhook":
                return self._answer(401 if refused else 200, {"ok": not refused})
            # the robots answer 200 with an errcode (310000: sign mismatch, 93000: invalid key)
            self._answer(200, {"errcode": (310000 if kind == "dingtalk" else 93000) if refused else 0,
                               "errmsg": refused or "ok"})

        def _answer(self, code, data):
            raw = json.dumps(data).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    receiver.server = server
    return receiver


@pytest.fixture
def receivers():
    made = {kind: start_receiver(kind) for kind in ("dingtalk", "wecom", "webhook")}
    yield made
    for r in made.values():
        r.server.shutdown()
        r.server.server_close()


def config_text(smtp_port: int, ca_file: str, receivers: dict, *, rate: str = "{count: 5, per: 1m}",
                routes: str | None = None) -> str:
    routes = routes or """
  - name: all
    match: {min_severity: medium}
    channels: [soc-mail, ding, wecom, hook, console]
"""
    return f"""version: 1
timezone: Asia/Shanghai
dedup_window: 10m
console_url: https://console.gov.example/
channels:
  soc-mail:
    type: email
    host: 127.0.0.1
    port: {smtp_port}
    security: starttls
    ca_file: {ca_file}
    username: {SMTP_USER}
    password_secret: soc-mail
    from: {SMTP_USER}
    to: [duty@gov.example, soc-lead@gov.example]
    rate_limit: {rate}
    retries: {{attempts: 3, backoff: 100ms}}
  ding:
    type: dingtalk
    url: {receivers['dingtalk'].url}/robot/send
    token_secret: ding-token
    sign_secret: ding-sign
    rate_limit: {rate}
    retries: {{attempts: 3, backoff: 100ms}}
  wecom:
    type: wecom
    url: {receivers['wecom'].url}/cgi-bin/webhook/send
    key_secret: wecom-key
    rate_limit: {rate}
    retries: {{attempts: 3, backoff: 100ms}}
  hook:
    type: webhook
    url: {receivers['webhook'].url}/govctl
    signing_secret: hook
    rate_limit: {rate}
    retries: {{attempts: 3, backoff: 100ms}}
  console:
    type: console
routes:{routes}"""


@pytest.fixture
def sealed(state):
    """Every channel secret sealed in the test keystore."""
    from notify.secrets import seal
    for name, value in (("soc-mail", SMTP_PASSWORD), ("ding-token", DING_TOKEN), ("ding-sign", DING_SECRET),
                        ("wecom-key", WECOM_KEY), ("hook", HOOK_SECRET)):
        seal(name, value)
    return state


@pytest.fixture
def notifier_for(sealed, tmp_path, smtp_server, receivers):
    """notifier_for(**config options) → (Notifier, config file) on the real SMTP server and the receivers."""
    from notify.config import load_config
    from notify.engine import Notifier
    from notify.journal import Journal
    made = []

    def make(clock=time.time, **options):
        path = tmp_path / "notify.yaml"
        path.write_text(config_text(smtp_server.port, smtp_server.ca_file, receivers, **options), encoding="utf-8")
        notifier = Notifier(load_config(path), Journal(sealed / "notify" / "notify.sqlite"), clock=clock)
        made.append(notifier)
        return notifier, path
    yield make
    for n in made:
        n.journal.close()
