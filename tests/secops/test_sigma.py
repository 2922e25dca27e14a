"""The Sigma evaluator: modifiers, conditions, keyword search, correlations at their window edges,
field mapping for rules written for the public Sigma repository."""
from __future__ import annotations

import textwrap

import pytest

from secops.detect import Detector, load_rules

RULE = """
title: {title}
name: {name}
logsource: {{product: json}}
detection:
{detection}
level: high
"""


def ruleset(tmp_path, *docs: str):
    for i, doc in enumerate(docs):
        (tmp_path / f"r{i}.yml").write_text(textwrap.dedent(doc))
    rules = load_rules([tmp_path], pipeline=None)
    assert rules.errors == [], rules.errors
    return rules


def one_rule(tmp_path, detection: str):
    return ruleset(tmp_path, RULE.format(title="t", name="t", detection=textwrap.indent(textwrap.dedent(detection), "  ")))


def fires(rules, **fields) -> bool:
    d = Detector(rules)
    d.process({"@timestamp": 1.0, "event.dataset": "json", **fields})
    return bool(d.alerts)


@pytest.mark.parametrize("detection, hit, miss", [
    ("sel:\n  user.name: Root\ncondition: sel", {"user.name": "root"}, {"user.name": "rooty"}),
    ("sel:\n  user.name|contains: dmi\ncondition: sel", {"user.name": "ADMIN"}, {"user.name": "adm"}),
    ("sel:\n  user.name|startswith: adm\ncondition: sel", {"user.name": "admin"}, {"user.name": "xadmin"}),
    ("sel:\n  user.name|endswith: min\ncondition: sel", {"user.name": "admin"}, {"user.name": "minx"}),
    ("sel:\n  user.name: 'a*n?x'\ncondition: sel", {"user.name": "admin1x"}, {"user.name": "admin12"}),
    ("sel:\n  url.query|contains|all: [union, select]\ncondition: sel", {"url.query": "x UNION y SELECT"},
     {"url.query": "union only"}),
    ("sel:\n  url.query|re: '^id=[0-9]+$'\ncondition: sel", {"url.query": "id=42"}, {"url.query": "id=4x2"}),
    ("sel:\n  url.query|re|i: '^ID='\ncondition: sel", {"url.query": "id=1"}, {"url.query": "xid=1"}),
    ("sel:\n  source.ip|cidr: 203.0.113.0/24\ncondition: sel", {"source.ip": "203.0.113.77"}, {"source.ip": "203.0.114.1"}),
    ("sel:\n  source.ip|cidr: '2001:db8::/32'\ncondition: sel", {"source.ip": "2001:db8::1"}, {"source.ip": "203.0.113.1"}),
    ("sel:\n  http.response.status_code|gte: 500\ncondition: sel", {"http.response.status_code": 500},
     {"http.response.status_code": 499}),
    ("sel:\n  http.response.status_code|gt: 500\ncondition: sel", {"http.response.status_code": 501},
     {"http.response.status_code": 500}),
    ("sel:\n  http.response.status_code|lt: 300\ncondition: sel", {"http.response.status_code": "200"},
     {"http.response.status_code": 300}),
    ("sel:\n  http.response.status_code|lte: 300\ncondition: sel", {"http.response.status_code": 300},
     {"http.response.status_code": 301}),
    ("sel:\n  user.name|exists: true\ncondition: sel", {"user.name": "x"}, {"source.ip": "1.2.3.4"}),
    ("sel:\n  user.name|exists: false\ncondition: sel", {"source.ip": "1.2.3.4"}, {"user.name": "x"}),
    ("sel:\n  http.response.status_code: 404\ncondition: sel", {"http.response.status_code": 404},
     {"http.response.status_code": 403}),
    ("sel:\n  user.name: [alice, bob]\ncondition: sel", {"user.name": "bob"}, {"user.name": "carol"}),
    ("sel:\n  user.name: alice\nflt:\n  source.ip|cidr: 10.0.0.0/8\ncondition: sel and not flt",
     {"user.name": "alice", "source.ip": "203.0.113.1"}, {"user.name": "alice", "source.ip": "10.1.1.1"}),
    ("a1:\n  user.name: a\na2:\n  user.name: b\ncondition: 1 of a*", {"user.name": "b"}, {"user.name": "c"}),
    ("a1:\n  user.name: a\na2:\n  source.ip: 1.2.3.4\ncondition: all of a*", {"user.name": "a", "source.ip": "1.2.3.4"},
     {"user.name": "a"}),
    ("kw:\n  - 'union select'\ncondition: kw", {"message": "GET /?q=1 UNION SELECT 2"}, {"message": "union"}),
    ("sel:\n  tags: web\ncondition: sel", {"tags": ["db", "web"]}, {"tags": ["db"]}),
    ("sel:\n  user.name|cased: Admin\ncondition: sel", {"user.name": "Admin"}, {"user.name": "admin"}),
    ("sel:\n  user.name|fieldref: user.target.name\ncondition: sel", {"user.name": "a", "user.target.name": "a"},
     {"user.name": "a", "user.target.name": "b"}),
])
def test_modifiers_and_conditions(tmp_path, detection, hit, miss):
    rules = one_rule(tmp_path, detection)
    assert fires(rules, **hit)
    assert not fires(rules, **miss)


def test_unsupported_modifier_is_refused_with_path(tmp_path):
    (tmp_path / "bad.yml").write_text(textwrap.dedent(RULE.format(
        title="t", name="t", detection="  sel:\n    x|minute: 5\n  condition: sel")))
    (tmp_path / "good.yml").write_text(textwrap.dedent(RULE.format(
        title="g", name="g", detection="  sel:\n    x: 5\n  condition: sel")))
    rules = load_rules([tmp_path], pipeline=None)
    assert [p.endswith("bad.yml") for p, _ in rules.errors] == [True]
    assert [r.info.name for r in rules.base] == ["g"]


BASE = """
title: failure
name: failure
logsource: {product: json}
detection:
  sel:
    event.outcome: failure
  condition: sel
level: low
---
title: success
name: success
logsource: {product: json}
detection:
  sel:
    event.outcome: success
  condition: sel
level: low
"""


def run(rules, events):
    d = Detector(rules)
    for t, fields in events:
        d.process({"@timestamp": float(t), "event.dataset": "json", **fields})
    return d.alerts


def corr(kind: str, extra: str, rules: str = "[failure]") -> str:
    return f"""
title: c
name: c
correlation:
  type: {kind}
  rules: {rules}
  group-by: [source.ip]
  timespan: 60s
{extra}
level: high
"""


def fail(ip="203.0.113.1", **kw):
    return {"event.outcome": "failure", "source.ip": ip, **kw}


def test_event_count_window_edges(tmp_path):
    rules = ruleset(tmp_path, BASE, corr("event_count", "  condition: {gte: 3}"))
    # the first and third event exactly 60 s apart: inside one window
    assert [a.count for a in run(rules, [(0, fail()), (30, fail()), (60, fail())])] == [3]
    # 60.5 s apart: never three in one window
    assert run(rules, [(0, fail()), (30, fail()), (60.5, fail())]) == []
    # sliding, not buckets: a burst across a minute boundary still fires
    assert len(run(rules, [(50, fail()), (59, fail()), (61, fail())])) == 1
    # group-by: two sources never add up
    assert run(rules, [(0, fail("203.0.113.1")), (1, fail("203.0.113.2")), (2, fail("203.0.113.1"))]) == []


def test_event_count_alert_grows_then_a_new_one_after_a_quiet_window(tmp_path):
    rules = ruleset(tmp_path, BASE, corr("event_count", "  condition: {gte: 3}"))
    alerts = run(rules, [(0, fail()), (1, fail()), (2, fail()), (3, fail()), (4, fail()),
                         (200, fail()), (201, fail()), (202, fail())])
    assert [(a.first, a.last, a.count) for a in alerts] == [(0, 4, 5), (200, 202, 3)]


def test_out_of_order_events_use_event_time(tmp_path):
    rules = ruleset(tmp_path, BASE, corr("event_count", "  condition: {gte: 3}"))
    assert len(run(rules, [(10, fail()), (70, fail()), (40, fail())])) == 1
    assert run(rules, [(100, fail()), (10, fail()), (30, fail())]) == []


def test_value_count_edges(tmp_path):
    rules = ruleset(tmp_path, BASE, corr("value_count", "  condition: {gte: 3, field: user.name}"))
    users = lambda *pairs: [(t, fail(**{"user.name": u})) for t, u in pairs]  # noqa: E731
    assert len(run(rules, users((0, "a"), (30, "b"), (60, "c")))) == 1
    assert run(rules, users((0, "a"), (30, "b"), (60.1, "c"))) == []
    assert run(rules, users((0, "a"), (1, "a"), (2, "b"), (3, "b"))) == []  # repeats do not count


def test_temporal_and_temporal_ordered(tmp_path):
    both = ruleset(tmp_path, BASE, corr("temporal", "", rules="[failure, success]"))
    ok = {"event.outcome": "success", "source.ip": "203.0.113.1"}
    assert len(run(both, [(0, ok), (60, fail())])) == 1  # any order, within the window
    assert run(both, [(0, ok), (61, fail())]) == []
    ordered = ruleset(tmp_path, BASE, corr("temporal_ordered", "", rules="[failure, success]"))
    assert len(run(ordered, [(0, fail()), (60, ok)])) == 1
    assert run(ordered, [(0, ok), (10, fail())]) == []  # wrong order
    assert run(ordered, [(0, fail()), (60.01, ok)]) == []


def test_correlation_chains_and_generate(tmp_path):
    rules = ruleset(tmp_path, BASE, corr("event_count", "  condition: {gte: 2}"), """
title: chain
name: chain
correlation:
  type: temporal_ordered
  rules: [c, success]
  group-by: [source.ip]
  timespan: 5m
level: critical
""")
    ok = {"event.outcome": "success", "source.ip": "203.0.113.1"}
    alerts = run(rules, [(0, fail()), (1, fail()), (100, ok)])
    assert [a.rule.name for a in alerts] == ["c", "chain"]  # base rules referenced without generate: no alerts


def test_aliases_group_different_fields(tmp_path):
    rules = ruleset(tmp_path, BASE, """
title: c
name: c
correlation:
  type: temporal
  rules: [failure, success]
  group-by: [addr]
  aliases:
    addr:
      failure: source.ip
      success: destination.ip
  timespan: 1m
level: high
""")
    alerts = run(rules, [(0, fail("203.0.113.9")), (5, {"event.outcome": "success", "destination.ip": "203.0.113.9"})])
    assert len(alerts) == 1 and alerts[0].group == {"addr": "203.0.113.9"}


def test_missing_reference_is_refused(tmp_path):
    (tmp_path / "c.yml").write_text(corr("event_count", "  condition: {gte: 2}", rules="[nowhere]"))
    rules = load_rules([tmp_path], pipeline=None)
    assert len(rules.errors) == 1 and "nowhere" in rules.errors[0][1]


PUBLIC_STYLE = """
title: SQL injection keywords in the query (written like the public Sigma web rules)
id: 6b0f6a2a-1d55-4a8e-9d7c-5c2b2f1e0001
status: test
logsource:
  category: webserver
detection:
  keywords:
    cs-uri-query|contains: ['union select', 'information_schema']
  agent:
    c-useragent|contains: sqlmap
  filter:
    sc-status: 404
  condition: (keywords or agent) and not filter
level: high
---
title: SSH keyword rule (written like the public Sigma linux sshd rules)
id: 6b0f6a2a-1d55-4a8e-9d7c-5c2b2f1e0002
status: test
logsource:
  product: linux
  service: sshd
detection:
  keywords:
    - 'maximum authentication attempts exceeded'
  condition: keywords
level: medium
"""


def test_public_sigma_field_names_map_through_the_pipeline(tmp_path):
    from secops.normalize import Normalizer
    (tmp_path / "public.yml").write_text(PUBLIC_STYLE)
    rules = load_rules([tmp_path])  # default pipeline: public field names → ECS
    assert rules.errors == []
    n = Normalizer(year=2026)
    lines = [
        b'203.0.113.8 - - [01/Nov/2026:00:00:05 +0000] "GET /a?id=1%20union%20select%201 HTTP/1.1" 200 5 "-" "curl"',
        b'203.0.113.8 - - [01/Nov/2026:00:00:05 +0000] "GET /a?x=1 HTTP/1.1" 200 5 "-" "sqlmap/1.7"',
        b'203.0.113.8 - - [01/Nov/2026:00:00:05 +0000] "GET /a?id=1%20union%20select%201 HTTP/1.1" 404 5 "-" "curl"',
        b'203.0.113.8 - - [01/Nov/2026:00:00:05 +0000] "GET /a?q=hello HTTP/1.1" 200 5 "-" "curl"',
        b"Nov  1 00:00:01 web-1 sshd[9]: error: maximum authentication attempts exceeded for root from 203.0.113.9 port 22 ssh2 [preauth]",
    ]
    hits = []
    for line in lines:
        d = Detector(rules)
        d.process(n.normalize(line))
        hits.append([a.rule.title.split(" (")[0] for a in d.alerts])
    assert hits == [["SQL injection keywords in the query"], ["SQL injection keywords in the query"], [], [],
                    ["SSH keyword rule"]]


# --- engine speed (issue 20, h-engine): the per-dataset text screens must never change what alerts -------------

SCREENED = [
    RULE.format(title="sqli", name="sqli", detection="""  sel:
    url.query|contains: ['union select', 'sleep(']
  condition: sel"""),
    RULE.format(title="shell", name="shell", detection="""  names:
    url.path|endswith: ['/cmd.php', '/c99.php']
  param:
    url.path|endswith: '.php'
    url.query|re: '(^|&)cmd=(id|whoami)'
  condition: names or param"""),
    RULE.format(title="solr", name="solr", detection="""  sel:
    url.original|contains: '/solr/admin/cores?action=create'
  condition: sel"""),
    RULE.format(title="only a regex", name="regex_only", detection="""  sel:
    url.query|re: '^debug=1$'
  condition: sel"""),
]


def _alerts(rules, events, screens: bool = True) -> list[tuple]:
    d = Detector(rules)
    if not screens:
        for rule in d.rules.base:
            rule.screen = None
    for e in events:
        d.process({"@timestamp": 1.0, "event.dataset": "json", **e})
    return sorted((a.rule.name, a.count) for a in d.alerts)


def test_screens_skip_rules_only_when_they_cannot_match(tmp_path):
    rules = ruleset(tmp_path, *SCREENED)
    events = [
        {"url.query": "q=1 UNION SELECT 2"},  # upper case in the event: the rule compares lower-cased
        {"url.query": "id=7&cmd=whoami", "url.path": "/up/x.PHP"},
        {"url.original": "/ſolr/admin/cores?action=CREATE"},  # a long s: the rule's case-insensitive regex matches
        {"url.query": "debug=1"},  # a rule with no text to screen by runs on every event
        {"url.query": ["a", "x sleep(5)"]},  # an ECS array in a screened field: the rule's own test decides
        {"url.path": 404},  # not a string: the rule's own test decides
        {"url.query": "page=2", "url.path": "/index.html", "url.original": "/index.html?page=2"},
        {"message": "nothing to see"},
    ]
    with_screens = _alerts(rules, events)
    assert with_screens == _alerts(rules, events, screens=False)
    assert with_screens == [("regex_only", 1), ("shell", 1), ("solr", 1), ("sqli", 2)]


def test_a_negated_text_gives_no_screen(tmp_path):
    # "not contains X" matches exactly the events without X: such a rule must run on every event
    rules = ruleset(tmp_path, RULE.format(title="t", name="no_bot", detection="""  bot:
    user_agent.original|contains: bot
  get:
    http.request.method: GET
  condition: get and not bot"""))
    assert rules.base[0].screen == {"http.request.method": frozenset({("lower", "get")})}
    events = [{"http.request.method": "GET", "user_agent.original": "Mozilla"},
              {"http.request.method": "GET", "user_agent.original": "Googlebot"}, {"http.request.method": "POST"}]
    assert _alerts(rules, events) == _alerts(rules, events, screens=False) == [("no_bot", 1)]


def test_an_event_without_any_screened_text_runs_only_the_unscreened_rules(tmp_path):
    rules = ruleset(tmp_path, *SCREENED)
    d = Detector(rules)
    ran: list[str] = []
    for rule in d.rules.base:
        rule.predicate = (lambda name, p: lambda e: ran.append(name) or p(e))(rule.info.name, rule.predicate)
    d.process({"@timestamp": 1.0, "event.dataset": "json", "url.query": "page=2", "url.path": "/a.html"})
    assert ran == ["regex_only"]
    ran.clear()
    d.process({"@timestamp": 1.0, "event.dataset": "json", "url.query": "x=sleep(1)", "url.path": "/a.html"})
    assert ran == ["sqli", "shell", "solr", "regex_only"]  # a find: every rule, in the rules' order


def test_screen_memory_is_bounded_whatever_the_values(tmp_path):
    from secops.detect import SCREEN_MEMORY
    rules = ruleset(tmp_path, *SCREENED)
    d = Detector(rules)
    for i in range(SCREEN_MEMORY + 500):
        d.process({"@timestamp": 1.0, "event.dataset": "json", "url.query": f"page={i}"})
    (_, _, screens, _), = d._by_dataset.values()
    assert screens and all(len(seen) <= SCREEN_MEMORY for _, seen, _ in screens)
    assert d.alerts == []


def test_a_flood_within_few_seconds_keeps_one_window_entry_per_second(tmp_path):
    """An attacker's rate must not grow the engine's memory: 30,000 failures from one source within ten
    seconds keep ten times in each window, and the counts an alert reports are still every event."""
    rules = ruleset(tmp_path, BASE, corr("event_count", "  condition: {gte: 3}"),
                    corr("value_count", "  condition: {gte: 2, field: user.name}").replace("name: c", "name: v"),
                    corr("temporal", "", rules="[failure, success]").replace("name: c", "name: both"))
    d = Detector(rules)
    for i in range(30_000):
        d.process({"@timestamp": float(i % 10), "event.dataset": "json", **fail(**{"user.name": f"u{i % 3}"})})
    by_name = {c.info.name: c for c in d.rules.correlations}
    count_window, = by_name["c"].windows.values()
    assert len(count_window.entries) == 10 and count_window.total == 30_000
    (entries, values), = by_name["v"].windows.values()
    assert len(entries) == 10 and values == {"u0": 10_000, "u1": 10_000, "u2": 10_000}
    temporal_window, = by_name["both"].windows.values()
    assert len(temporal_window["failure"].entries) == 10
    alerts = {a.rule.name: a for a in d.alerts}
    assert alerts["c"].count == 30_000  # it began with the three events of its window and grew with each after
    assert alerts["v"].first == 0 and alerts["v"].last == 9


def test_windows_survive_a_checkpoint_and_an_old_checkpoint_still_restores(tmp_path):
    rules = ruleset(tmp_path, BASE, corr("event_count", "  condition: {gte: 4}"),
                    corr("value_count", "  condition: {gte: 3, field: user.name}").replace("name: c", "name: v"))
    first = Detector(rules)
    for t, user in [(0, "a"), (1, "b"), (1, "b")]:
        first.process({"@timestamp": float(t), "event.dataset": "json", **fail(**{"user.name": user})})
    assert first.alerts == []
    state = first.state(lambda a: None)
    # before tallies a checkpoint held every time (event_count) and every [time, value] pair (value_count)
    old = {"correlations": {"c": {**state["correlations"]["c"], "windows": [[["v", "203.0.113.1"], [0.0, 1.0, 1.0]]]},
                            "v": {**state["correlations"]["v"],
                                  "windows": [[["v", "203.0.113.1"], [[0.0, "a"], [1.0, "b"], [1.0, "b"]]]]}}}
    for saved in (state, old):
        later = Detector(rules)
        later.restore(saved, lambda r: None)
        later.process({"@timestamp": 2.0, "event.dataset": "json", **fail(**{"user.name": "c"})})
        assert sorted((a.rule.name, a.count) for a in later.alerts) == [("c", 4), ("v", 4)]
