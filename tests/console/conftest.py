"""A SecOps store seeded by the real engine (normalize → Sigma → decisions in dry run → incidents) from a small
attack corpus with attacker-written markup in user names, paths and user agents; console users of each role."""
from __future__ import annotations

import io
import json
import shutil
import time

import pytest

from console.users import Users
from secops.config import load_config
from secops.daemon import Engine, ingest_stream
from secops.stores import open_store

PASSWORDS = {"li.na": "Security-pass-2026", "wang.fang": "Operations-pass-2026", "zhao.lei": "Auditor-pass-2026"}
ROLES = {"li.na": "security", "wang.fang": "ops", "zhao.lei": "auditor"}
XSS_USER = "<img src=x onerror=alert(1)>"
XSS_AGENT = "<img src=x onerror=alert(3)>"


def attack_corpus(now: float) -> bytes:
    """SSH brute force from three addresses (one guessing a user name that is markup) and a web XSS probe."""
    def sshd(ip: str, user: str, start: float, n: int = 6) -> str:
        return "".join(f"{time.strftime('%b %e %H:%M:%S', time.gmtime(start + i))} web-1 sshd[1]: Failed password for "
                       f"{user} from {ip} port {4000 + i} ssh2\n" for i in range(n))
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now - 300))
    web = (f'192.0.2.44 - - [{stamp}] "GET /search?q=<script>alert(2)</script> HTTP/1.1" 200 12 "-" '
           f'"{XSS_AGENT}"\n')
    return (sshd("203.0.113.5", "root", now - 900) + sshd("203.0.113.6", "admin", now - 700)
            + sshd("198.51.100.7", f"invalid user {XSS_USER}", now - 500) + web).encode()


def seed_store(folder):
    """The real engine (dry run: decisions recorded, not enforced) after it processed the corpus into a SQLite
    store in `folder`; returns the engine (its .store and .decisions serve the console)."""
    cfgfile = folder / "secops.yaml"
    cfgfile.write_text(json.dumps({"store": str(folder / "secops.db"), "enforcer": {"kind": "none"},
                                   "incidents": {"window_seconds": 600}}))
    cfg = load_config(cfgfile)
    engine = Engine(cfg, open_store(cfg), dry_run=True)
    feed(engine, attack_corpus(time.time()))
    return engine


def feed(engine, lines: bytes) -> None:
    ingest_stream(engine, io.BytesIO(lines), "test", "auto", "auto", 1000)
    engine.store.flush()


@pytest.fixture
def seeded(tmp_path):
    """The engine (dry run) after it processed the corpus into a SQLite store in tmp_path."""
    engine = seed_store(tmp_path)
    yield engine
    engine.store.close()


def add_users(path):
    users = Users(path)
    for name, role in ROLES.items():
        users.add(name, role, PASSWORDS[name])
    return path


@pytest.fixture(scope="session")
def _users_template(tmp_path_factory):
    return add_users(tmp_path_factory.mktemp("users") / "users.yaml")


@pytest.fixture
def users_file(tmp_path, _users_template):
    """A users file with one user of each role (hashed once per session: argon2 is slow on purpose)."""
    path = tmp_path / "console" / "users.yaml"
    path.parent.mkdir()
    shutil.copy2(_users_template, path)
    return path
