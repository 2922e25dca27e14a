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
from tests.corpora import XSS_AGENT, XSS_USER, attack_corpus  # noqa: F401 (the console's tests import them here)


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


def users_in(folder, template):
    """`folder`/console/users.yaml, a copy of the session's users (hashed once: argon2 is slow on purpose)."""
    path = folder / "console" / "users.yaml"
    path.parent.mkdir(parents=True)
    shutil.copy2(template, path)
    return path


@pytest.fixture
def users_file(tmp_path, _users_template):
    """A users file with one user of each role."""
    return users_in(tmp_path, _users_template)
