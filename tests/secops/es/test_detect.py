"""Detection on Elasticsearch: the same corpus through both backends yields the same alerts."""
from __future__ import annotations

import pytest

from secops.detect import load_rules
from secops.es.detect import ScheduledDetection
from secops.es.store import ElasticStore
from secops.es.workers import run_workers
from secops.replay import replay
from secops.respond import Allowlist
from secops.store import Store
from tests.secops.es.corpus import BRUTE, SCANNER, SPRAY, WEB, write_corpus

pytestmark = pytest.mark.slow


def _entities(alerts) -> set[tuple]:
    return {(a["rule"], a["source.ip"], a["user"], a["host"]) for a in alerts}


def test_same_corpus_same_alerts_on_sqlite_and_elasticsearch(es_section, tmp_path):
    files = write_corpus(tmp_path / "logs", background=1500)
    rules = load_rules()
    db = Store(tmp_path / "secops.db")
    try:
        embedded = replay(files, rules, Allowlist([]), year=2026, store=db)
    finally:
        db.close()

    cfg = {"elasticsearch": es_section, "sources": [{"name": p.stem, "path": str(p)} for p in files]}
    store = ElasticStore(es_section)
    try:
        detection = ScheduledDetection(store, rules)
        result = run_workers(cfg, 3, once=True, year=2026, detection=detection)
        assert result["detection"]["alerts_stored"] > 0
        store.refresh()
        stored = store.alerts()
        es_alerts = [{"rule": a["rule"], "source.ip": a["source"]["ip"], "user": a["user"]["name"],
                      "host": a["host"]["hostname"]} for a in stored]
        assert _entities(es_alerts) == _entities(embedded["alerts"])
        assert len(stored) == len(embedded["alerts"])  # one document per alert, no duplicates
        fired = {(a["rule"], a["source.ip"]) for a in es_alerts}
        assert {("ssh_bruteforce_fast", BRUTE), ("ssh_success_after_bruteforce", BRUTE),
                ("ssh_password_spraying", SPRAY), ("firewall_port_scan", SCANNER),
                ("web_sql_injection", WEB), ("web_webshell", WEB)} <= fired
        by_rule = {a["rule"]: a["count"] for a in stored if a["source"]["ip"] == BRUTE}
        assert by_rule["ssh_bruteforce_fast"] == 8

        # The next scheduled run overlaps the last one: nothing is alerted twice.
        again = detection.run_once()
        assert again["events"] == 0
        store.refresh()
        assert len(store.alerts()) == len(stored)
        # A restarted detector reads its checkpoint and a lookback; alerts found again are the same documents.
        restarted = ScheduledDetection(store, rules)
        assert restarted.checkpoint == pytest.approx(detection.checkpoint, abs=0.001)
        restarted.run_once()
        store.refresh()
        assert len(store.alerts()) == len(stored)
        assert all(len(samples) >= 1 for samples in detection.latency.values())
    finally:
        store.close()


def test_late_ingested_events_are_found_by_the_next_run(es_section, tmp_path):
    """Events ingested after a run (in ingest time) are searched by the next one, whatever their event time."""
    from secops.normalize import Normalizer
    store = ElasticStore(es_section)
    try:
        rules = load_rules()
        detection = ScheduledDetection(store, rules)
        assert detection.run_once()["events"] == 0
        n = Normalizer(year=2026)
        lines = [f"Nov  1 00:00:{10 + k:02d} web-1 sshd[{k}]: Failed password for root from 203.0.113.77 port {4000 + k} ssh2"
                 for k in range(6)]
        store.commit_batch("late.log", [(i * 100, n.normalize(line.encode())) for i, line in enumerate(lines)], [])
        store.flush()
        store.refresh()
        result = detection.run_once()
        assert result["events"] == 6
        store.refresh()
        assert ("ssh_bruteforce_fast", "203.0.113.77") in {(a["rule"], a["source"]["ip"]) for a in store.alerts()}
    finally:
        store.close()


def test_attacks_spread_over_several_runs_are_counted_once(es_section):
    """A port scan and a brute force whose events arrive over three scheduled runs: each fires once, and the
    brute-force alert counts every failure once (the candidate-group pre-filter fetches a new group's
    earlier events exactly once)."""
    from secops.normalize import Normalizer
    store = ElasticStore(es_section)
    try:
        detection = ScheduledDetection(store, load_rules())
        assert {q.name: q.candidates for q in detection.queries}["firewall_drop"] == ("source.ip", 10, 60.0)
        n = Normalizer(year=2026)
        fw = ("Nov  1 00:10:{s:02d} fw-prod kernel: [1.0] govctl-drop: IN=eth0 OUT= SRC=203.0.113.88 DST=10.11.1.10 "
              "LEN=44 TOS=0x00 PREC=0x00 TTL=49 ID=1 PROTO=TCP SPT=5555 DPT={port} WINDOW=1024 RES=0x00 SYN URGP=0")
        ssh = "Nov  1 00:10:{s:02d} web-1 sshd[{s}]: Failed password for root from 203.0.113.99 port {port} ssh2"
        pos = 0
        for chunk in ([0, 1, 2, 3], [4, 5, 6], [7, 8, 9, 10, 11]):  # ports 1000+k at second k; failures too
            batch = []
            for k in chunk:
                for template in (fw, ssh):
                    batch.append((pos, n.normalize(template.format(s=k, port=1000 + k).encode())))
                    pos += 100
            store.commit_batch("spread.log", batch, [])
            store.flush()
            store.refresh()
            detection.run_once()
        store.refresh()
        alerts = {(a["rule"], a["source"]["ip"]): a for a in store.alerts()}
        assert ("firewall_port_scan", "203.0.113.88") in alerts
        assert alerts[("ssh_bruteforce_fast", "203.0.113.99")]["count"] == 12  # each failure once (as embedded)
        assert len([k for k in alerts if k[1] in ("203.0.113.88", "203.0.113.99")]) == 2
    finally:
        store.close()


def test_daemon_mode_tails_new_lines_and_alerts_while_running(es_section, tmp_path):
    """run_workers without `once` (what `govctl secops run --workers N` runs): lines appended to the tailed
    files are ingested and the scheduled searches alert on them before the run is stopped."""
    import threading
    import time

    auth, fw = tmp_path / "auth.log", tmp_path / "firewall.log"
    auth.write_text("")
    fw.write_text("")
    cfg = {"elasticsearch": es_section, "sources": [{"name": "auth", "path": str(auth)},
                                                      {"name": "fw", "path": str(fw)}]}
    store = ElasticStore(es_section)
    stop = threading.Event()
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = run_workers(cfg, 2, stop=stop.is_set, year=2026,
                                            detection=ScheduledDetection(store, load_rules()))
        except BaseException as exc:  # reported below
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    try:
        with open(auth, "a") as f:
            for k in range(8):
                f.write(f"Nov  1 00:20:{k:02d} web-1 sshd[{k}]: Failed password for root from 203.0.113.66 "
                        f"port {5000 + k} ssh2\n")
        deadline = time.monotonic() + 90
        fired = False
        while not fired and time.monotonic() < deadline and thread.is_alive():
            time.sleep(1)
            store.refresh()
            fired = ("ssh_bruteforce_fast", "203.0.113.66") in {(a["rule"], a["source"]["ip"]) for a in store.alerts()}
    finally:
        stop.set()
        thread.join(timeout=120)
        store.close()
    assert "error" not in outcome, outcome.get("error")
    assert fired, "no alert while the workers were running"
    assert outcome["result"]["events"] == 8 and outcome["result"]["workers"] == 2


def test_unordered_temporal_correlation_is_evaluated_by_govctl_over_the_search_hits(es_section, tmp_path):
    """This distribution has no ES|QL (docs/elasticsearch.md): every correlation type is govctl's own sliding
    window over the rule searches' hits. The bundled rules cover event_count, value_count and
    temporal_ordered (above); this user rule covers `temporal` (either order, within the timespan)."""
    from secops.detect import BUNDLED_RULES
    from secops.normalize import Normalizer
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "probe_and_login.yml").write_text("""
title: Firewall drop and SSH failure from one source within a minute
name: probe_and_login
correlation:
  type: temporal
  rules: [firewall_drop, ssh_auth_failure]
  group-by: [source.ip]
  timespan: 1m
level: high
""")
    rules = load_rules([BUNDLED_RULES, tmp_path / "rules"])
    assert rules.errors == []
    n = Normalizer(year=2026)
    fw = ("Nov  1 00:20:{s:02d} fw-prod kernel: [1.0] govctl-drop: IN=eth0 OUT= SRC={ip} DST=10.11.1.10 "
          "LEN=44 TOS=0x00 PREC=0x00 TTL=49 ID=1 PROTO=TCP SPT=5555 DPT=22 WINDOW=1024 RES=0x00 SYN URGP=0")
    ssh = "Nov  1 00:{m:02d}:{s:02d} web-1 sshd[7]: Failed password for root from {ip} port 4242 ssh2"
    lines = [ssh.format(m=20, s=0, ip="203.0.113.71"), fw.format(s=30, ip="203.0.113.71"),  # SSH first, 30 s
             fw.format(s=0, ip="203.0.113.72"), ssh.format(m=22, s=0, ip="203.0.113.72")]   # 2 min apart
    store = ElasticStore(es_section)
    try:
        store.commit_batch("temporal.log", [(i * 100, n.normalize(line.encode())) for i, line in enumerate(lines)], [])
        store.flush()
        store.refresh()
        ScheduledDetection(store, rules).run_once()
        store.refresh()
        fired = {(a["rule"], a["source"]["ip"]) for a in store.alerts()}
        assert ("probe_and_login", "203.0.113.71") in fired
        assert ("probe_and_login", "203.0.113.72") not in fired
    finally:
        store.close()


def test_backend_queries_match_any_case_and_cased_rules_are_confirmed(es_section, tmp_path):
    """The backend's Lucene queries (query_string, no case flag) find `UNION SELECT` and `SQLMap` because the
    events' keyword fields are lowercase-normalized; a user rule with `|cased` cannot be answered by a
    normalized field, so it runs govctl's query and its hits are confirmed by the compiled predicate."""
    from secops.detect import BUNDLED_RULES
    from secops.es.detect import BACKEND, GOVCTL
    from secops.normalize import Normalizer
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "cased.yml").write_text("""
title: SQLMap spelled as its release banner
name: cased_sqlmap_agent
logsource: {category: webserver}
detection:
  selection: {user_agent.original|cased|contains: 'SQLMap/'}
  condition: selection
level: low
""")
    rules = load_rules([BUNDLED_RULES, tmp_path / "rules"])
    assert rules.errors == []
    line = '{ip} - - [01/Nov/2026:00:20:0{s} +0000] "GET {path} HTTP/1.1" 200 153 "-" "{agent}"'
    lines = [line.format(ip="198.51.100.7", s=1, path="/item.php?id=1%20UNION%20SELECT%20passwd", agent="SQLMap/1.7"),
             line.format(ip="198.51.100.8", s=2, path="/item.php?id=1", agent="sqlmap/1.7"),
             line.format(ip="198.51.100.9", s=3, path="/item.php?id=2", agent="Mozilla/5.0")]
    n = Normalizer(year=2026)
    store = ElasticStore(es_section)
    try:
        store.commit_batch("access.log", [(i * 100, n.normalize(x.encode())) for i, x in enumerate(lines)], [])
        store.flush()
        detection = ScheduledDetection(store, rules)
        engines = {q.name: (q.engine, q.exact) for q in detection.queries}
        assert engines["web_sql_injection"] == (BACKEND, True)
        assert engines["cased_sqlmap_agent"] == (GOVCTL, False)
        detection.run_once()
        store.refresh()
        fired = {(a["rule"], a["source"]["ip"]) for a in store.alerts()}
        assert ("web_sql_injection", "198.51.100.7") in fired  # upper-case keywords in the query string
        assert {("web_scanner_user_agent", "198.51.100.7"), ("web_scanner_user_agent", "198.51.100.8")} <= fired
        assert ("cased_sqlmap_agent", "198.51.100.7") in fired
        assert ("cased_sqlmap_agent", "198.51.100.8") not in fired  # the normalized field matched it; Python did not
        assert not {f for f in fired if f[1] == "198.51.100.9"}
        # triage search stays exact, as on SQLite, although the normalized field matches any case
        assert [e["source.ip"] for e in store.search_events({"user_agent.original": "sqlmap/1.7"})] == ["198.51.100.8"]
    finally:
        store.close()


def test_city_day_scaled_same_alerts_on_elasticsearch_as_embedded(es_section, tmp_path):
    """Issue #20: a (scaled) day of the city through 3 ingest workers and the scheduled searches on
    Elasticsearch alerts exactly what the embedded engine alerts, every attacking source among them."""
    import importlib.util
    import json
    from pathlib import Path

    bench = Path(__file__).resolve().parents[3] / "bench" / "city_day.py"
    spec = importlib.util.spec_from_file_location("city_day", bench)
    city_day = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(city_day)
    folder = tmp_path / "day"
    folder.mkdir()
    city_day.generate(folder, 0.0005, 11)
    truth = json.loads((folder / "truth.json").read_text())
    files = [folder / truth["files"][k] for k in ("web", "auth", "firewall")]
    rules = load_rules()
    embedded = replay(files, rules, Allowlist([city_day.OPS_NETWORK]), year=2026, tz_offset=city_day.TZ)
    assert {a["source.ip"] for a in embedded["alerts"]} >= set(truth["attackers"])

    offset_hours = city_day.TZ / 3600
    cfg = {"elasticsearch": es_section,
           "sources": [{"name": p.stem, "path": str(p), "timezone_offset_hours": offset_hours} for p in files]}
    store = ElasticStore(es_section)
    try:
        result = run_workers(cfg, 3, once=True, year=2026, detection=ScheduledDetection(store, rules))
        assert result["lines"] == truth["lines"] and result["quarantined"] == 0, result
        assert result["events"] == embedded["parsed"] and result["detection"]["alerts_stored"] > 0
        store.refresh()
        es_alerts = [{"rule": a["rule"], "source.ip": a["source"]["ip"], "user": a["user"]["name"],
                      "host": a["host"]["hostname"]} for a in store.alerts()]
    finally:
        store.close()
    assert _entities(es_alerts) == _entities(embedded["alerts"])
    assert {a["source.ip"] for a in es_alerts} >= set(truth["attackers"])
