"""Fast tier: settings validation, store selection, Sigma → Query DSL for the bundled rules."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from secops.detect import load_rules
from secops.es.client import SettingsError, connect, settings
from secops.es.detect import GOVCTL, compile_queries, datasets_for, rule_trees
from secops.es.query import Converter
from secops.es.store import Layout
from secops.store import Store
from secops.stores import open_store, store_kind
from tests.conftest import run_govctl


def test_missing_or_bad_settings_name_the_setting(tmp_path):
    with pytest.raises(SettingsError, match="needs an `elasticsearch:` section with at least `url`"):
        settings(None)
    with pytest.raises(SettingsError, match=r"elasticsearch.url: .*expected: node URL"):
        settings({"url": "127.0.0.1:9200"})
    with pytest.raises(SettingsError, match=r"elasticsearch.bulk.max_in_flight: 0 is less than the minimum"):
        settings({"url": "http://127.0.0.1:9200", "bulk": {"max_in_flight": 0}})
    with pytest.raises(SettingsError, match="username is set but no password"):
        connect(settings({"url": "http://127.0.0.1:9200", "username": "govctl"}), check=False)
    with pytest.raises(SettingsError, match="password_env names GOVCTL_TEST_UNSET_PASSWORD, which is not set"):
        connect(settings({"url": "http://127.0.0.1:9200", "username": "govctl",
                          "password_env": "GOVCTL_TEST_UNSET_PASSWORD"}), check=False)
    with pytest.raises(SettingsError, match="ca_certs .* is not a file"):
        connect(settings({"url": "https://127.0.0.1:9200", "ca_certs": str(tmp_path / "nope.pem")}), check=False)


def test_store_selection(tmp_path):
    assert store_kind({"store": "elasticsearch"}) == "elasticsearch"
    assert store_kind({"store": str(tmp_path / "x.db")}) == "sqlite"
    db = open_store({"store": str(tmp_path / "x.db")})
    try:
        assert isinstance(db, Store) and (tmp_path / "x.db").exists()
    finally:
        db.close()


def test_bundled_rules_convert_and_only_regex_rules_need_confirmation():
    rules = load_rules()
    layout = Layout("govctl")
    converter = Converter.for_mappings(layout.templates["events"]["mappings"])
    trees = rule_trees(rules)
    assert set(trees) == {r.info.name for r in rules.base}
    inexact = {name for name, t in trees.items() if not converter.convert(t)[1]}
    assert inexact == {"web_webshell"}  # its `re` leaf is confirmed by the compiled predicate
    ssh = converter.convert(trees["ssh_auth_failure"])[0]
    terms = str(ssh)
    assert "'case_insensitive': True" in terms and "ssh_invalid_user" in terms
    assert datasets_for({"product": "linux", "service": "sshd"}) == ["sshd"]
    # the searches run: the backend's Lucene query for every exact rule, govctl's own for the rest
    queries = {q.name: q for q in compile_queries(rules, SimpleNamespace(layout=layout))}
    assert {n for n, q in queries.items() if q.engine == GOVCTL} == {"web_webshell"}
    lucene = str(queries["web_sql_injection"].query)
    assert "'query_string'" in lucene and "url.query:(*union\\\\ select*" in lucene
    assert datasets_for({"category": "webserver"}) == ["nginx.access"]


def test_ip_and_number_leaves_are_typed():
    from sigma.collection import SigmaCollection
    rule = SigmaCollection.from_yaml("""
title: t
logsource: {product: linux}
detection:
  net: {source.ip|cidr: 10.0.0.0/8}
  port: {destination.port|gte: 1024}
  addr: {destination.ip: 'not-an-address'}
  quoted_port: {source.port: '22'}
  condition: net and port and not addr and quoted_port
""").rules[0]
    converter = Converter.for_mappings(Layout("govctl").templates["events"]["mappings"])
    query, exact = converter.convert([c.parsed for c in rule.detection.parsed_condition])
    assert exact
    text = str(query)
    assert "{'term': {'source.ip': '10.0.0.0/8'}}" in text
    assert "{'range': {'destination.port': {'gte': 1024}}}" in text
    assert "{'match_none': {}}" in text and "{'term': {'source.port': 22}}" in text


def test_es_status_of_a_node_that_never_ran(tmp_path):
    proc = run_govctl("es", "status", "--home", str(tmp_path / "none"))
    assert proc.returncode == 1 and "not running" in proc.stdout
    bad = run_govctl("es", "up", "--home", str(tmp_path / "none"), "--port", "80")
    assert bad.returncode == 2 and "--port 80 is out of range" in bad.stderr


def test_cli_unreachable_cluster_exits_1_and_bad_section_exits_2(tmp_path):
    from secops.es.node import free_port
    cfg = tmp_path / "secops.yaml"
    cfg.write_text(f"store: elasticsearch\nelasticsearch: {{url: 'http://127.0.0.1:{free_port()}'}}\n")
    for args in (["incidents", "list"], ["bans", "list"], ["secops", "run", "--once", "--source", "a=/dev/null"]):
        proc = run_govctl(*args, "--config", str(cfg))
        assert proc.returncode == 1, (args, proc.stderr)
        assert "cannot reach Elasticsearch" in _flat(proc.stderr) and "elasticsearch.url" in _flat(proc.stderr)
    cfg.write_text("store: elasticsearch\n")
    proc = run_govctl("incidents", "list", "--config", str(cfg))
    assert proc.returncode == 2 and "an elasticsearch: section with at least url" in _flat(proc.stderr)
    cfg.write_text("store: elasticsearch\nelasticsearch: {url: 'http://127.0.0.1:9', bulk: {max_in_flight: 0}}\n")
    proc = run_govctl("incidents", "list", "--config", str(cfg))
    assert proc.returncode == 2 and "elasticsearch.bulk.max_in_flight" in _flat(proc.stderr)


def test_workers_need_the_cluster_store(tmp_path):
    cfg = tmp_path / "secops.yaml"
    cfg.write_text(f"store: {tmp_path / 's.db'}\nenforcer: {{kind: none}}\n")
    proc = run_govctl("secops", "run", "--workers", "2", "--once", "--source", "a=/dev/null", "--config", str(cfg))
    assert proc.returncode == 2 and "--workers needs `store: elasticsearch`" in _flat(proc.stderr)


def test_store_sqlite_means_the_default_file_and_search_syntax():
    from secops.stores import DEFAULT_SQLITE, parse_event_query, parse_time, sqlite_path
    assert sqlite_path({"store": "sqlite"}) == DEFAULT_SQLITE and sqlite_path({"store": "elasticsearch"}) is None
    assert parse_event_query('source.ip:2001:db8::/32 user.name:"li na"') == {"source.ip": "2001:db8::/32",
                                                                               "user.name": "li na"}
    for bad in ("source.ip", "no_colon_value:", "source.ip:300.1.1.1", '"unclosed'):
        with pytest.raises(ValueError, match="example: source.ip:203.0.113.0/24"):
            parse_event_query(bad)
    assert parse_time("2026-11-01") == 1793491200.0 and parse_time("1793491200") == 1793491200.0
    with pytest.raises(ValueError, match="--since 'yesterday' is not an ISO 8601 time"):
        parse_time("yesterday", "--since")


def _flat(text: str) -> str:
    """Terminal output without rich's line wrapping."""
    return " ".join(text.split())


def test_bulk_documents_read_back_as_the_normalized_events(tmp_path):
    """What ingest sends (dotted keys, epoch-millisecond times, `message` sent once) reads back as the
    normalizer's event; an event whose keys would clash in Elasticsearch is nested instead."""
    import json

    from secops.es.bulk import Batch
    from secops.es.store import ElasticStore, from_document
    from secops.normalize import Normalizer
    store = ElasticStore({"url": "http://127.0.0.1:9", "spool": str(tmp_path / "spool")}, check=False)
    try:
        n = Normalizer(year=2026)
        lines = [b"Nov  1 00:00:01 web-1 sshd[1]: Failed password for root from 203.0.113.5 port 4444 ssh2",
                 b'198.18.1.2 - - [01/Nov/2026:00:00:01 +0000] "GET /a?id=1%20union%20select HTTP/1.1" 200 12 "-" "sqlmap"',
                 b'{"@timestamp": "2026-11-01T00:00:01Z", "event": "login", "user": {"name": "li"}, "n": 123456789012345678901234}']
        events = [n.normalize(line) for line in lines]
        assert events[2]["event"] == "login"  # a JSON-lines scalar beside event.dataset / event.original
        ops = store._operations(Batch("t.log", list(enumerate(events)), [], None, None))
        docs = [json.loads(doc) for _, _, doc, _ in ops]
        assert "source.ip" in docs[0] and isinstance(docs[0]["@timestamp"], int)
        assert "message" not in docs[1] and docs[1]["govctl.message_is_original"] is True
        assert docs[2]["event"]["value"] == "login" and "event.dataset" not in docs[2]  # nested: no clash
        for event, doc in zip(events, docs):
            back = from_document(doc)
            for added in ("event.ingested", "govctl.source", "govctl.position"):
                back.pop(added)
            if "event.value" in back:
                back["event"] = back.pop("event.value")
            assert back == event
    finally:
        store.close()


def test_cluster_nodes_size_threads_for_their_share_of_the_cores(tmp_path):
    from secops.es.node import LocalCluster, LocalNode, processors_per_node
    assert [processors_per_node(3, cores) for cores in (1, 2, 4, 8, 16)] == [1, 1, 1, 2, 5]
    assert processors_per_node(2, 2) == 1 and processors_per_node(5, 2) == 1
    cluster = LocalCluster(tmp_path / "three", nodes=3, processors=1)
    member = cluster.node(2)
    (member.home / "config").mkdir(parents=True)
    member._write_config(9201, 9301)
    config = (member.home / "config" / "elasticsearch.yml").read_text()
    assert "node.processors: 1\n" in config
    assert member._gc_threads() == ["-XX:ParallelGCThreads=1", "-XX:ConcGCThreads=1"]
    # a single node keeps Elasticsearch's and the JVM's own sizing: it has the machine to itself
    single = LocalNode(tmp_path / "one")
    (single.home / "config").mkdir(parents=True)
    single._write_config(9200, 9300)
    assert "node.processors" not in (single.home / "config" / "elasticsearch.yml").read_text()
    assert single._gc_threads() == []
