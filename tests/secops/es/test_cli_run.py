"""`govctl secops run --workers N` and `secops ingest` with `store: elasticsearch`, against the real node,
then triage with the same commands as on SQLite; start-up errors with govctl's exit codes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from secops.normalize import Normalizer, Rejected
from secops.replay import read_lines
from tests.conftest import run_govctl
from tests.secops.es.corpus import BRUTE, SCANNER, SPRAY, WEB, write_corpus

pytestmark = pytest.mark.slow


def _config(tmp_path: Path, es_section: dict, files: list[Path]) -> Path:
    cfg = tmp_path / "secops.yaml"
    cfg.write_text(yaml.safe_dump({
        "store": "elasticsearch", "elasticsearch": es_section, "topology": None, "ops_networks": ["10.20.0.0/16"],
        "enforcer": {"kind": "none"}, "response": {"dry_run": True},
        "sources": [{"name": p.stem, "path": str(p)} for p in files]}))
    return cfg


def _parsed(files: list[Path]) -> int:
    n = 0
    for path in files:
        normalizer = Normalizer(source=path.stem, year=2026)
        n += sum(1 for _, raw in read_lines(path) if normalizer.normalize(raw).__class__ is not Rejected)
    return n


def test_run_with_two_workers_then_triage_on_the_cluster(es_section, tmp_path):
    files = write_corpus(tmp_path / "logs", background=1500)
    cfg = _config(tmp_path, es_section, files)
    proc = run_govctl("secops", "run", "--workers", "2", "--once", "--year", "2026", "--json", "--config", str(cfg),
                      timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["workers"] == 2 and len(result["per_worker"]) == 2
    shares = [set(w["sources"]) for w in result["per_worker"]]
    assert shares[0].isdisjoint(shares[1]) and shares[0] | shares[1] == {p.stem for p in files}
    assert result["events"] == result["indexed"] == _parsed(files) and result["duplicates"] == 0
    assert result["detection"]["alerts_stored"] > 0 and result["blocks"] >= 3

    def govctl(*args):
        out = run_govctl(*args, "--config", str(cfg), "--json")
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout)

    incidents = govctl("incidents", "list")
    entities = {i["entity"]["value"] for i in incidents}
    assert {BRUTE, SPRAY, SCANNER, WEB} <= entities and "10.20.1.5" not in entities
    brute = next(i for i in incidents if i["entity"]["value"] == BRUTE)
    shown = govctl("incidents", "show", str(brute["id"]))
    assert any(a["rule"] == "ssh_bruteforce_fast" for a in shown["alerts"])
    assert any(BRUTE in line for a in shown["alerts"] for line in a["evidence"])
    assert shown["decisions"] and shown["decisions"][0]["action"] == "block"
    assert govctl("incidents", "ack", str(brute["id"]))["state"] == "acknowledged"
    assert govctl("incidents", "assign", str(brute["id"]), "li.na")["assignee"] == "li.na"
    done = govctl("incidents", "resolve", str(brute["id"]), "--note", "blocked")
    assert done["state"] == "resolved" and [n["kind"] for n in done["notes"]] == ["state", "assign", "state"]
    bans = {b["address"]: b for b in govctl("bans", "list")}
    assert {BRUTE, SPRAY, SCANNER} <= set(bans) and not any(b["enforced"] for b in bans.values())
    failures = govctl("incidents", "events", f"source.ip:{BRUTE} event.outcome:failure")
    assert len(failures) == 8 and all(e["event.dataset"] == "sshd" for e in failures)

    # a second run reads on from the stored positions: nothing new, nothing twice
    again = run_govctl("secops", "run", "--workers", "2", "--once", "--year", "2026", "--json", "--config", str(cfg),
                       timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["events"] == 0
    from secops.es.store import ElasticStore
    store = ElasticStore(es_section)
    try:
        store.refresh()
        assert store.counts()["events"] == result["events"]
    finally:
        store.close()


def test_ingest_from_stdin_writes_to_the_cluster(es_section, tmp_path):
    cfg = _config(tmp_path, es_section, [])
    lines = "".join(f"Nov  1 00:00:{i:02d} web-1 sshd[1]: Failed password for root from 203.0.113.9 port {i} ssh2\n"
                    for i in range(8))
    proc = run_govctl("secops", "ingest", "--name", "stdin-test", "--json", "--config", str(cfg), input=lines)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["events"] == 8
    from secops.es.store import ElasticStore
    store = ElasticStore(es_section)
    try:
        store.refresh()  # searchable now, not only at the next refresh interval
        found = run_govctl("incidents", "events", "source.ip:203.0.113.9", "--json", "--config", str(cfg))
        assert len(json.loads(found.stdout)) == 8
    finally:
        store.close()
    listed = run_govctl("incidents", "list", "--json", "--config", str(cfg))
    assert "203.0.113.9" in {i["entity"]["value"] for i in json.loads(listed.stdout)}


def test_wrong_credentials_exit_2_naming_the_setting(es_section, tmp_path):
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    cfg = _config(tmp_path, {**es_section, "password_file": str(wrong)}, write_corpus(tmp_path / "logs", 10))
    for args in (["secops", "run", "--once"], ["incidents", "list"], ["bans", "list"]):
        proc = run_govctl(*args, "--config", str(cfg))
        assert proc.returncode == 2, (args, proc.stderr)
        assert "refused the credentials of user 'govctl' (HTTP 401)" in _flat(proc.stderr)
        assert "not-the-password" not in _flat(proc.stderr) + proc.stdout


def _flat(text: str) -> str:
    """Terminal output without rich's line wrapping."""
    return " ".join(text.split())
