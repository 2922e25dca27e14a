"""The Elasticsearch store against a real node: templates, bulk ingest of the mixed corpus, search by
ECS fields, quarantine of refused documents, clear start-up errors."""
from __future__ import annotations

import json

import pytest

from secops.es.client import ClusterError
from secops.es.node import free_port
from secops.es.store import ElasticStore
from secops.es.workers import run_workers
from secops.normalize import Normalizer, Rejected
from secops.replay import read_lines
from secops.stores import open_store
from tests.conftest import run_govctl
from tests.secops.es.corpus import BRUTE, SCANNER, SPRAY, START, write_corpus

pytestmark = pytest.mark.slow


def _expected(files) -> dict[str, tuple[int, int]]:
    """(events, quarantined) per file, by the normalizer alone."""
    out = {}
    for path in files:
        n = Normalizer(source=path.stem, year=2026)
        good = bad = 0
        for _, raw in read_lines(path):
            if n.normalize(raw).__class__ is Rejected:
                bad += 1
            else:
                good += 1
        out[path.stem] = (good, bad)
    return out


def test_templates_applied_with_ecs_types(es_section):
    store = ElasticStore(es_section)
    try:
        prefix = es_section["index_prefix"]
        names = {t["name"] for t in store.client.indices.get_index_template(name=f"{prefix}-*")["index_templates"]}
        assert names == {f"{prefix}-{n}" for n in ("events", "quarantine", "alerts", "decisions", "incidents",
                                                    "detection")}
        n = Normalizer(year=2026)
        event = n.normalize(b"Nov  1 00:00:01 web-1 sshd[1]: Failed password for root from 203.0.113.5 port 4444 ssh2")
        store.commit_batch("one.log", [(0, event)], [])
        store.flush()
        index = f"{prefix}-events-auth-2026.11.01"
        mapping = store.client.indices.get_mapping(index=index)[index]["mappings"]["properties"]
        assert mapping["@timestamp"]["type"] == "date"
        assert mapping["source"]["properties"]["ip"]["type"] == "ip"
        assert mapping["source"]["properties"]["port"]["type"] == "long"
        assert mapping["user"]["properties"]["name"]["type"] == "keyword"
        assert mapping["message"]["type"] == "text"
        assert mapping["ssh"]["properties"]["method"]["type"] == "keyword"  # dynamic strings → keyword
        aliases = store.client.indices.get_alias(index=index)[index]["aliases"]
        assert f"{prefix}-events" in aliases
    finally:
        store.close()


def test_bulk_ingest_mixed_corpus_then_search_by_ecs_fields(es_section, tmp_path):
    files = write_corpus(tmp_path / "logs", background=1500)
    expected = _expected(files)
    cfg = {"elasticsearch": es_section, "sources": [{"name": p.stem, "path": str(p)} for p in files]}
    result = run_workers(cfg, 2, once=True, year=2026, max_lines=700)
    assert result["workers"] == 2
    assert result["events"] == sum(g for g, _ in expected.values())
    assert result["indexed"] == result["events"] and result["duplicates"] == 0 and result["spooled_batches"] == 0

    store = ElasticStore(es_section)
    try:
        store.refresh()
        counts = store.counts()
        assert counts["events"] == sum(g for g, _ in expected.values())
        assert counts["quarantine_by_reason"] == {"binary": 1, "unknown_format": 1}
        per_source = store.client.search(index=f"{es_section['index_prefix']}-events", size=0, aggs={
            "s": {"terms": {"field": "govctl.source", "size": 10}}})["aggregations"]["s"]["buckets"]
        by_file = {}
        for b in per_source:
            by_file[b["key"].split("@")[0]] = by_file.get(b["key"].split("@")[0], 0) + b["doc_count"]
        assert by_file == {name: good for name, (good, _) in expected.items()}
        classes = sorted(i.split("-")[2] for i in store.client.indices.get(index=f"{es_section['index_prefix']}-events-*"))
        assert classes == ["auth", "firewall", "web"]

        failures = store.search_events({"source.ip": "203.0.113.0/24", "event.outcome": "failure",
                                        "event.category": "authentication"}, limit=100)
        assert sorted({e["source.ip"] for e in failures}) == [BRUTE, SPRAY]
        assert len(failures) == 8 + 6
        assert all(e["event.dataset"] == "sshd" for e in failures)
        scans = store.search_events({"source.ip": SCANNER, "event.action": "drop"}, limit=100)
        assert sorted(e["destination.port"] for e in scans) == list(range(1000, 1015))
        sudo = store.search_events({"user.name": "alice"})
        assert [(e["event.dataset"], e["event.outcome"]) for e in sudo] == [("sudo", "failure")]
        first_minute = store.search_events({"event.dataset": "sshd"}, since=START, until=START + 60, limit=1000)
        assert first_minute and all(START <= e["@timestamp"] <= START + 60 for e in first_minute)
        newest = store.quarantined(limit=5)
        assert {q["reason"] for q in newest} == {"binary", "unknown_format"}
        assert any("not a log line" in q["raw"] for q in newest)
    finally:
        store.close()


def test_refused_documents_go_to_quarantine_with_the_reason(es_section):
    store = ElasticStore(es_section)
    try:
        n = Normalizer(year=2026)
        good = n.normalize(b"Nov  1 00:00:01 web-1 sshd[1]: Failed password for root from 203.0.113.5 port 4444 ssh2")
        bad_port = {**good, "source.port": "not-a-port", "event.original": "line with a bad port"}
        bad_type = {**good, "user": "a string where ECS has an object", "event.original": "line with a bad user"}
        store.commit_batch("conflicts.log", [(0, good), (100, bad_port), (200, bad_type)],
                           [(300, "binary", "NUL bytes", b"\x00\x01")])
        store.flush()
        store.refresh()
        counts = store.counts()
        assert counts["events"] == 1
        assert counts["quarantine_by_reason"] == {"rejected_by_elasticsearch": 2, "binary": 1}
        refused = {q["position"]: q for q in store.quarantined() if q["reason"] == "rejected_by_elasticsearch"}
        assert set(refused) == {100, 200}
        assert "source.port" in refused[100]["detail"] and "document_parsing_exception" in refused[100]["detail"]
        assert refused[100]["raw"] == "line with a bad port"
        assert "user" in refused[200]["detail"]
        assert store.ingest_counters()["rejected_by_cluster"] == 2
        # the same batch again (a replay after a crash): nothing is stored twice
        store.commit_batch("conflicts.log", [(0, good), (100, bad_port), (200, bad_type)],
                           [(300, "binary", "NUL bytes", b"\x00\x01")])
        store.flush()
        store.refresh()
        assert store.counts() == counts
    finally:
        store.close()


def test_unreachable_url_and_wrong_credentials_fail_at_start_up(es_section, tmp_path):
    port = free_port()
    with pytest.raises(ClusterError, match=rf"cannot reach Elasticsearch at http://127.0.0.1:{port} .*"
                                           r"check elasticsearch.url"):
        open_store({"store": "elasticsearch", "elasticsearch": {"url": f"http://127.0.0.1:{port}"}})
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    section = {**es_section, "password_file": str(wrong)}
    with pytest.raises(ClusterError, match="refused the credentials of user 'govctl' \\(HTTP 401\\)") as err:
        open_store({"store": "elasticsearch", "elasticsearch": section})
    assert "not-the-password" not in str(err.value)
    anonymous = {k: v for k, v in es_section.items() if k not in ("username", "password_file")}
    with pytest.raises(ClusterError, match="credentials of an anonymous request"):
        open_store({"store": "elasticsearch", "elasticsearch": anonymous})


def test_cli_status_reports_the_running_node(es_node):
    proc = run_govctl("es", "status", "--home", str(es_node["home"]), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["running"] is True and data["health"] in ("green", "yellow")
    assert data["version"] == "8.19.21" and data["url"] == es_node["url"]
    again = run_govctl("es", "up", "--home", str(es_node["home"]), "--json", timeout=120)  # idempotent
    assert again.returncode == 0 and json.loads(again.stdout)["pid"] == data["pid"]


def test_retention_keeps_180_days_and_drops_older_daily_indices_with_a_shifted_clock(es_section):
    """等保 2.0 asks for security logs kept at least 180 days: less is refused; with the clock moved a year
    on, the daily indices older than the period go, the recent ones stay (this distribution has no ILM, so
    govctl expires whole daily indices itself)."""
    from secops.store import MIN_SECURITY_RETENTION_DAYS
    store = ElasticStore(es_section)
    try:
        with pytest.raises(ValueError, match="180"):
            store.apply_retention(MIN_SECURITY_RETENTION_DAYS - 1)
        n = Normalizer(year=2026)
        old = n.normalize(b"Jan  5 00:00:01 web-1 sshd[1]: Failed password for root from 203.0.113.5 port 1 ssh2")
        recent = n.normalize(b"Nov  1 00:00:01 web-1 sshd[1]: Failed password for root from 203.0.113.5 port 2 ssh2")
        store.commit_batch("auth.log", [(0, old), (100, recent)], [(200, "binary", "NUL bytes", b"\x00")])
        store.flush()
        store.refresh()
        assert store.counts()["events"] == 2
        today = recent["@timestamp"] + 86400  # 2026-11-02: January is 300 days back, November 1 one day
        removed = store.apply_retention(MIN_SECURITY_RETENTION_DAYS, now=today)
        assert [i for i in removed["indices"] if "2026.01.05" in i] and not [i for i in removed["indices"]
                                                                               if "2026.11.01" in i]
        store.refresh()
        assert store.counts()["events"] == 1
        assert store.search_events({"source.port": 2})[0]["source.port"] == 2
        assert store.apply_retention(MIN_SECURITY_RETENTION_DAYS, now=today)["indices"] == []  # idempotent
    finally:
        store.close()


def test_range_bans_are_stored_listed_and_lifted_on_elasticsearch(es_section):
    """A range ban (carved around the never-block list) is a decision like an address's: stored, in force,
    counted for escalation, lifted (the decisions' address field holds either as canonical text)."""
    from secops.respond import Allowlist, DecisionEngine
    store = ElasticStore(es_section)
    try:
        engine = DecisionEngine(Allowlist(["203.0.113.70/32"]), store, None, dry_run=True)
        decision = engine.block("203.0.113.0/24", "botnet range", ttl=3600, actor="li.na")
        engine.block("198.51.100.7", "brute force", ttl=3600, actor="li.na")
        engine.flush()
        assert "[carved: 203.0.113.70/32" in decision.reason
        active = {b["address"]: b for b in store.active_bans()}
        assert set(active) == {"203.0.113.0/24", "198.51.100.7"}
        assert store.block_counts() == {"203.0.113.0/24": 1, "198.51.100.7": 1}
        assert set(store.latest_blocks()) == {"203.0.113.0/24", "198.51.100.7"}
        engine.unblock("203.0.113.0/24", "lifted", actor="li.na")
        assert [b["address"] for b in store.active_bans()] == ["198.51.100.7"]
    finally:
        store.close()
