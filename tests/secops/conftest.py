"""Shared helpers for secops tests: real log lines, the bundled rules, a CLI runner, a populated API."""
from __future__ import annotations

import io
import json
import time

import pytest

from secops.detect import load_rules


@pytest.fixture(scope="session")
def bundled_rules():
    rules = load_rules()
    assert rules.errors == []
    return rules


def _attack(ip: str, minute: int) -> bytes:
    return b"".join(f"Nov  1 00:{minute:02d}:{i:02d} web-1 sshd[1]: Failed password for root from {ip} port {i} ssh2\n"
                    .encode() for i in range(6))


def config_on_store(request, tmp_path, **settings):
    """A secops config file on the store the test is parametrized with ("sqlite": a file in tmp_path;
    "elasticsearch": the session node, through the es_section fixture), no enforcer, incidents grouped
    within 10 minutes; `settings` are added."""
    where = {"store": str(tmp_path / "s.db")} if request.param == "sqlite" else \
        {"store": "elasticsearch", "elasticsearch": request.getfixturevalue("es_section")}
    cfgfile = tmp_path / "secops.yaml"
    cfgfile.write_text(json.dumps({**where, "enforcer": {"kind": "none"}, "incidents": {"window_seconds": 600},
                                   **settings}))
    return cfgfile


@pytest.fixture
def api_app(tmp_path):
    """The HTTP API on a SQLite store holding two incidents (with alerts and dry-run blocks) from real sshd lines
    and a block stored before ban TTLs were bounded (ttl and until infinite, issue #16); a token per role.
    Yields (app, store, {role: token}, config file)."""
    from secops.api import ROLES, Tokens, create_app
    from secops.config import load_config
    from secops.daemon import Engine, ingest_stream
    from secops.respond import Allowlist, DecisionEngine
    from secops.stores import open_store
    cfgfile = tmp_path / "secops.yaml"
    cfgfile.write_text(json.dumps({"store": str(tmp_path / "s.db"), "enforcer": {"kind": "none"}}))
    cfg = load_config(cfgfile)
    store = open_store(cfg)
    ingest_stream(Engine(cfg, store, dry_run=True), io.BytesIO(_attack("203.0.113.5", 0) + _attack("203.0.113.6", 9)),
                  "test", "auto", "auto", 1000)
    store.db.execute("INSERT INTO decisions(created, address, action, ttl, until, reason, actor, enforced)"
                     " VALUES (?, '198.51.100.9', 'block', 1e999, 1e999, 'legacy', 'old-api', 0)", (time.time(),))
    tokens = Tokens(tmp_path / "tokens.yaml")
    keys = {role: tokens.add(f"{role}-user", role) for role in ROLES}
    decisions = DecisionEngine(Allowlist(["10.20.0.0/16"]), store, None, dry_run=True)
    yield create_app(store, tmp_path / "tokens.yaml", decisions), store, keys, cfgfile
    store.close()
