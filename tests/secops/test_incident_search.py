"""The incident search and the overview (issue #17): the same cases on SQLite (fast tier) and a real
Elasticsearch node (slow tier) through secops.incidents, the one function the API and the CLI call; then the
API's parameters, bounds and answers, and the CLI's flags."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient

from secops.api import Tokens, create_app
from secops.incidents import Incidents, InvalidInput
from secops.model import Decision
from secops.stores import open_store

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
# 2026-12-06 10:00 in Shanghai: "today" for the overview below
NOW = dt.datetime(2026, 12, 6, 10, 0, tzinfo=SHANGHAI).timestamp()
T0 = NOW - 3 * 3600

# (entity kind, entity, title, severity, state, rules, centers, first offset, last offset)
INCIDENTS = [
    ("source.ip", "203.0.113.5", "SSH brute force — 203.0.113.5", "high", "new",
     ["ssh_bruteforce_fast"], ["production", "same-city"], 0, 100),
    ("source.ip", "203.0.113.77", "Web scan 100% — 203.0.113.77", "medium", "acknowledged",
     ["web_scan"], ["production"], 200, 300),
    ("source.ip", "198.51.100.9", "SSH brute force — 198.51.100.9", "critical", "contained",
     ["ssh_bruteforce_fast"], ["remote"], 1000, 5000),
    ("user.name", "root", "Password spray_x — root", "low", "resolved", ["ssh_password_spray"], [], 50, 60),
    ("source.ip", "2001:db8::5", "ssh brute FORCE — 2001:db8::5", "high", "false-positive",
     ["ssh_bruteforce_fast"], [], 400, 410),
    ("source.ip", "203.0.113.200", "Scan and brute force — 203.0.113.200", "informational", "new",
     ["ssh_bruteforce_fast", "web_scan"], ["same-city"], 600, 700),
]


@pytest.fixture(params=["sqlite", pytest.param("elasticsearch", marks=pytest.mark.slow)])
def service(request, tmp_path):
    """Incidents (and blocks for the overview) written through the store interface, on either store."""
    from secops.config import load_config
    cfgfile = tmp_path / "secops.yaml"
    where = {"store": str(tmp_path / "s.db")} if request.param == "sqlite" else \
        {"store": "elasticsearch", "elasticsearch": request.getfixturevalue("es_section")}
    cfgfile.write_text(json.dumps({**where, "enforcer": {"kind": "none"}}))
    store = open_store(load_config(cfgfile))
    for kind, entity, title, severity, state, rules, centers, first, last in INCIDENTS:
        store.create_incident({"entity_kind": kind, "entity": entity, "title": title, "severity": severity,
                               "state": state, "assignee": None, "created": T0, "updated": T0 + last,
                               "first": T0 + first, "last": T0 + last, "rules": rules, "centers": centers})
    yesterday = NOW - 86400
    for created, address, rule, centers in [
            (NOW - 600, "203.0.113.5", "ssh_bruteforce_fast", ["production", "same-city"]),
            (NOW - 500, "203.0.113.5", "ssh_bruteforce_fast", ["production", "same-city"]),
            (NOW - 400, "198.51.100.9", "ssh_bruteforce_fast", ["remote"]),
            (NOW - 300, "203.0.113.77", None, ["production"]),  # by hand
            (yesterday, "203.0.113.77", "web_scan", ["production"]),
            (NOW - 40 * 86400, "192.0.2.1", "web_scan", ["production"])]:  # outside 7 days
        store.record_decision(Decision(address, "block", "test", "tester", created, ttl=600, until=created + 600,
                                       rule=rule, enforced=True, centers=centers))
    store.record_decision(Decision("203.0.113.5", "unblock", "lifted", "tester", NOW - 200))
    store.flush()
    yield Incidents(store)
    store.close()


def _titles(page: dict) -> list[str]:
    return [i["entity"]["value"] for i in page["items"]]


def test_no_filter_gives_every_incident_newest_activity_first(service):
    page = service.search()
    assert page["total"] == 6
    assert _titles(page) == ["198.51.100.9", "203.0.113.200", "2001:db8::5", "203.0.113.77", "203.0.113.5", "root"]
    assert page["counts"]["by_state"] == {"new": 2, "acknowledged": 1, "contained": 1, "resolved": 1,
                                          "false-positive": 1}
    first = page["items"][-2]
    assert first["rules"] == ["ssh_bruteforce_fast"] and first["centers"] == ["production", "same-city"]


def test_several_states_and_severities(service):
    page = service.search(states=["new", "acknowledged"], severities=["high", "medium"])
    assert sorted(_titles(page)) == ["203.0.113.5", "203.0.113.77"]
    assert page["total"] == 2
    # facets: each count applies every filter but its own
    assert page["counts"]["by_state"] == {"new": 1, "acknowledged": 1, "contained": 0, "resolved": 0,
                                          "false-positive": 1}
    assert page["counts"]["by_severity"] == {"informational": 1, "low": 0, "medium": 1, "high": 1, "critical": 0}


def test_rule_and_center(service):
    assert sorted(_titles(service.search(rule="web_scan"))) == ["203.0.113.200", "203.0.113.77"]
    assert sorted(_titles(service.search(center="same-city"))) == ["203.0.113.200", "203.0.113.5"]
    assert _titles(service.search(rule="ssh_bruteforce_fast", center="remote")) == ["198.51.100.9"]
    assert service.search(center="nowhere")["total"] == 0


def test_source_exact_range_and_canonical_forms(service):
    assert _titles(service.search(source="203.0.113.5")) == ["203.0.113.5"]
    assert _titles(service.search(source="::ffff:203.0.113.5")) == ["203.0.113.5"]  # one canonical form
    assert sorted(_titles(service.search(source="203.0.113.0/24"))) == ["203.0.113.200", "203.0.113.5",
                                                                        "203.0.113.77"]
    assert _titles(service.search(source="2001:db8::/32")) == ["2001:db8::5"]
    assert service.search(source="10.0.0.0/8")["total"] == 0
    with pytest.raises(InvalidInput, match="source 'root' is not an IP address"):
        service.search(source="root")


def test_time_range_is_activity_overlapping_it(service):
    page = service.search(since=T0 + 350, until=T0 + 650)  # 2001:db8::5 (400–410), .200 (600–700), …
    assert sorted(_titles(page)) == ["2001:db8::5", "203.0.113.200"]
    iso = dt.datetime.fromtimestamp(T0 + 4000, dt.timezone.utc).isoformat()
    assert _titles(service.search(since=iso)) == ["198.51.100.9"]
    with pytest.raises(InvalidInput, match="since is after until"):
        service.search(since=T0 + 10, until=T0)
    with pytest.raises(InvalidInput, match="since 'yesterday'"):
        service.search(since="yesterday")


def test_title_text_any_case_wildcards_literal(service):
    assert sorted(_titles(service.search(text="brute force"))) == ["198.51.100.9", "2001:db8::5",
                                                                   "203.0.113.200", "203.0.113.5"]
    assert _titles(service.search(text="100%")) == ["203.0.113.77"]
    assert _titles(service.search(text="spray_x")) == ["root"]
    assert service.search(text="spray%x")["total"] == 0  # % and _ are not wildcards
    assert service.search(text="*")["total"] == 0
    # shorter than three characters (no trigram index for it on SQLite): the same answer, from every title
    assert sorted(_titles(service.search(text="sH"))) == ["198.51.100.9", "2001:db8::5", "203.0.113.5"]


def test_sort_by_severity_title_and_id_both_ways(service):
    by_severity = [i["severity"] for i in service.search(sort="-severity")["items"]]
    assert by_severity == ["critical", "high", "high", "medium", "low", "informational"]
    ascending = service.search(sort="severity")["items"]
    assert [i["severity"] for i in ascending] == list(reversed(by_severity))
    highs = [i["id"] for i in ascending if i["severity"] == "high"]
    assert highs == sorted(highs)  # ties by id, in the same direction
    assert [i["state"] for i in service.search(sort="state")["items"]] == \
        ["new", "new", "acknowledged", "contained", "resolved", "false-positive"]
    ids = [i["id"] for i in service.search(sort="id")["items"]]
    assert ids == sorted(ids) and [i["id"] for i in service.search(sort="-id")["items"]] == ids[::-1]
    titles = [i["title"] for i in service.search(sort="title")["items"]]
    assert titles == sorted(titles)
    with pytest.raises(InvalidInput, match="sort 'alerts; drop table'"):
        service.search(sort="alerts; drop table")


def test_paging_keeps_total_and_counts(service):
    pages = [service.search(sort="id", offset=offset, limit=4) for offset in (0, 4)]
    assert [p["total"] for p in pages] == [6, 6] and [len(p["items"]) for p in pages] == [4, 2]
    every = [i["id"] for p in pages for i in p["items"]]
    assert every == sorted(every) and len(set(every)) == 6
    assert pages[1]["counts"] == pages[0]["counts"]
    for bad in ({"offset": -1}, {"limit": 0}, {"offset": 9999, "limit": 2}, {"limit": True}):
        with pytest.raises(InvalidInput):
            service.search(**bad)


def test_the_old_list_is_the_search(service):
    assert [i["id"] for i in service.list("new", 1)] == [service.search(states=["new"])["items"][0]["id"]]
    with pytest.raises(InvalidInput, match="state 'open'"):
        service.list("open")


def test_overview_per_center_rule_and_day(service):
    view = service.overview(days=7, zone="Asia/Shanghai", now=NOW)
    assert [d["date"] for d in view["days"]] == \
        [f"2026-{m}" for m in ("11-30", "12-01", "12-02", "12-03", "12-04", "12-05", "12-06")]
    assert view["today"] == {"date": "2026-12-06", "blocks": 4,
                             "by_center": {"production": 3, "same-city": 2, "remote": 1},
                             "by_rule": {"ssh_bruteforce_fast": 3, "manual": 1}}
    assert view["days"][-2]["blocks"] == 1 and view["days"][-2]["by_rule"] == {"web_scan": 1}
    assert view["period"]["blocks"] == 5 and view["period"]["by_center"]["production"] == 4
    assert sorted(view["top_sources"][:2], key=lambda s: s["address"]) == [
        {"address": "203.0.113.5", "blocks": 2}, {"address": "203.0.113.77", "blocks": 2}]
    assert view["top_sources"][2] == {"address": "198.51.100.9", "blocks": 1}
    assert view["open_incidents"] == 4
    assert view["open_by_severity"] == {"informational": 1, "low": 0, "medium": 1, "high": 1, "critical": 1}
    assert view["by_state"]["resolved"] == 1
    # the days are the zone's: at 10:00 in Shanghai it is still the 5th in Los Angeles, whose day began after
    # yesterday's block
    los_angeles = service.overview(days=1, zone="America/Los_Angeles", now=NOW)["today"]
    assert los_angeles["date"] == "2026-12-05" and los_angeles["blocks"] == 4
    for days, zone in ((0, "UTC"), (32, "UTC"), (7, "Mars/Olympus"), (7, "../../etc/passwd"), (7, "")):
        with pytest.raises(InvalidInput):
            service.overview(days=days, zone=zone, now=NOW)


# ---------------------------------------------------------------- the API and the CLI (SQLite)
@pytest.fixture
def api(tmp_path):
    from secops.store import Store
    store = Store(tmp_path / "s.db")
    for kind, entity, title, severity, state, rules, centers, first, last in INCIDENTS:
        store.create_incident({"entity_kind": kind, "entity": entity, "title": title, "severity": severity,
                               "state": state, "assignee": None, "created": T0, "updated": T0 + last,
                               "first": T0 + first, "last": T0 + last, "rules": rules, "centers": centers})
    tokens = Tokens(tmp_path / "tokens.yaml")
    key = tokens.add("ops-user", "ops")
    yield TestClient(create_app(store, tmp_path / "tokens.yaml")), {"Authorization": f"Bearer {key}"}
    store.close()


def test_api_search_filters_sort_paging_counts(api):
    client, auth = api
    page = client.get("/incident-search", headers=auth, params=[
        ("state", "new"), ("state", "false-positive"), ("severity", "high"), ("severity", "informational"),
        ("source", "203.0.113.0/24"), ("sort", "-severity"), ("limit", "1")]).json()
    assert page["total"] == 2 and [i["entity"]["value"] for i in page["items"]] == ["203.0.113.5"]
    assert page["counts"]["by_severity"]["informational"] == 1 and page["limit"] == 1
    second = client.get("/incident-search", headers=auth, params=[
        ("state", "new"), ("severity", "high"), ("severity", "informational"), ("sort", "-severity"),
        ("offset", "1"), ("limit", "1")]).json()
    assert [i["entity"]["value"] for i in second["items"]] == ["203.0.113.200"]
    assert client.get("/incident-search", headers=auth, params={"center": "remote", "rule": "ssh_bruteforce_fast",
                                                                "q": "BRUTE"}).json()["total"] == 1


def test_api_list_keeps_its_shape_and_gives_the_total(api):
    client, auth = api
    listed = client.get("/incidents", headers=auth, params={"state": "new", "limit": 1})
    assert listed.status_code == 200 and listed.headers["x-total-count"] == "2"
    assert isinstance(listed.json(), list) and len(listed.json()) == 1
    assert {"id", "entity", "title", "severity", "state", "alerts", "rules", "centers"} <= set(listed.json()[0])
    assert len(client.get("/incidents", headers=auth).json()) == 6


BAD_SEARCHES = [
    ({"state": "open"}, "state"), ({"severity": "urgent"}, "severity"), ({"sort": "alerts"}, "sort"),
    ({"source": "example.com"}, "not an IP address"), ({"source": "1" * 65}, "source"),
    ({"since": "last week"}, "since 'last week'"), ({"since": "2026-12-02", "until": "2026-12-01"}, "since is after"),
    ({"offset": "-1"}, "offset"), ({"offset": "10000"}, "offset"), ({"limit": "0"}, "limit"),
    ({"offset": "9990", "limit": "50"}, "narrow the filter"), ({"rule": ""}, "rule"), ({"q": "x" * 201}, "q"),
    ({"center": "c" * 201}, "center")]


def test_api_search_refuses_bad_input_with_a_reason(api):
    client, auth = api
    for params, says in BAD_SEARCHES:
        for path in ("/incident-search", "/incidents"):
            answer = client.get(path, headers=auth, params=params)
            assert answer.status_code == 422, (path, params, answer.text)
            assert says in answer.text


def test_api_overview_and_its_bounds(api):
    client, auth = api
    view = client.get("/overview", headers=auth, params={"days": 3, "zone": "Asia/Shanghai"})
    assert view.status_code == 200 and len(view.json()["days"]) == 3
    assert view.json()["open_incidents"] == 4 and view.json()["today"]["blocks"] == 0
    for params in ({"days": 0}, {"days": 32}, {"zone": "Nowhere/City"}, {"zone": "x" * 65}, {"days": "seven"}):
        answer = client.get("/overview", headers=auth, params=params)
        assert answer.status_code == 422 and "detail" in answer.json()
    assert client.get("/overview").status_code == 401


def test_openapi_documents_the_answers(api):
    client, _ = api
    doc = client.get("/openapi.json").json()
    search = doc["paths"]["/incident-search"]["get"]
    assert {p["name"] for p in search["parameters"]} >= {"state", "severity", "rule", "center", "source", "since",
                                                          "until", "q", "sort", "offset", "limit"}
    assert "IncidentPage" in json.dumps(search["responses"]["200"])
    assert "Overview" in json.dumps(doc["paths"]["/overview"]["get"]["responses"]["200"])


def test_cli_list_flags_call_the_same_search(api, tmp_path):
    from typer.testing import CliRunner

    from govctl.cli import app
    cfgfile = tmp_path / "secops.yaml"
    cfgfile.write_text(json.dumps({"store": str(tmp_path / "s.db"), "enforcer": {"kind": "none"}}))
    run = lambda *args: CliRunner().invoke(app, ["incidents", "list", *args, "--config", str(cfgfile)])  # noqa: E731
    page = json.loads(run("--severity", "high", "--severity", "critical", "--sort=-severity", "--limit", "2",
                          "--page", "1", "--json-page").stdout)
    assert page["total"] == 3 and [i["severity"] for i in page["items"]] == ["critical", "high"]
    second = json.loads(run("--severity", "high", "--severity", "critical", "--sort=-severity", "--limit", "2",
                            "--page", "2", "--json").stdout)
    assert [i["severity"] for i in second] == ["high"]
    assert [i["entity"]["value"] for i in json.loads(run("--center", "remote", "--json").stdout)] == ["198.51.100.9"]
    assert [i["entity"]["value"] for i in json.loads(
        run("--source", "203.0.113.0/24", "--rule", "web_scan", "--json").stdout)] == ["203.0.113.200", "203.0.113.77"]
    table = run("--state", "new")
    assert table.exit_code == 0 and "1–2 of 2" in table.stdout
    for args, says in ((["--source", "nope"], "not an IP address"), (["--page", "2", "--offset", "1"], "not both"),
                       (["--sort", "bogus"], "sort 'bogus'"), (["--until", "soon"], "until 'soon'")):
        bad = run(*args)
        assert bad.exit_code == 2 and says in bad.output, (args, bad.output)


# ---------------------------------------------------------------- which center enforced a block
class _CenterFirewall:
    """An enforcement point in memory, named by its center (EnforcerGroup's coordination only; the nftables
    sets themselves are exercised by the lab tests). `refuses`: addresses its set refuses."""

    def __init__(self, center: str, refuses: tuple[str, ...] = ()):
        self.center, self.netns, self.refuses, self.items = center, f"fw-{center}", refuses, {}

    def block(self, items):
        self.items.update((a, ttl) for a, ttl in items if a not in self.refuses)
        return [(a, "nft: element refused") for a, _ in items if a in self.refuses]

    def unblock(self, addresses):
        for a in addresses:
            self.items.pop(a, None)

    def blocked(self):
        return dict(self.items)


def test_blocks_and_incidents_name_the_centers_that_enforced_them(tmp_path):
    import io

    from secops.config import load_config
    from secops.daemon import Engine, ingest_stream
    from secops.respond import EnforcerGroup
    cfgfile = tmp_path / "secops.yaml"
    cfgfile.write_text(json.dumps({"store": str(tmp_path / "s.db"), "enforcer": {"kind": "none"}}))
    cfg = load_config(cfgfile)
    store = open_store(cfg)
    group = EnforcerGroup([_CenterFirewall("production"), _CenterFirewall("same-city", refuses=("203.0.113.6",))])
    engine = Engine(cfg, store, group, dry_run=False)
    lines = b"".join(f"Nov  1 00:0{m}:{i:02d} web-1 sshd[1]: Failed password for root from {ip} port {i} ssh2\n".encode()
                     for m, ip in ((0, "203.0.113.5"), (1, "203.0.113.6")) for i in range(6))
    ingest_stream(engine, io.BytesIO(lines), "test", "auto", "auto", 1000)
    try:
        blocks = {d["address"]: d for d in store.decision_trail() if d["action"] == "block"}
        assert blocks["203.0.113.5"]["centers"] == ["production", "same-city"] and blocks["203.0.113.5"]["enforced"]
        assert blocks["203.0.113.6"]["centers"] == ["production"] and not blocks["203.0.113.6"]["enforced"]
        service = Incidents(store)
        assert [i["entity"]["value"] for i in service.search(center="same-city")["items"]] == ["203.0.113.5"]
        assert sorted(i["entity"]["value"] for i in service.search(center="production")["items"]) == \
            ["203.0.113.5", "203.0.113.6"]
        assert {r for i in service.search()["items"] for r in i["rules"]} == {"ssh_bruteforce_fast"}
    finally:
        store.close()


def test_an_older_store_gets_its_incidents_rules_on_open(tmp_path):
    """A store written before incidents carried their rules: opening it derives them from the alerts (and the
    source address key from the entity), once."""
    import io
    import sqlite3

    from secops.config import load_config
    from secops.daemon import Engine, ingest_stream
    cfgfile = tmp_path / "secops.yaml"
    cfgfile.write_text(json.dumps({"store": str(tmp_path / "s.db"), "enforcer": {"kind": "none"}}))
    cfg = load_config(cfgfile)
    store = open_store(cfg)
    lines = b"".join(f"Nov  1 00:00:{i:02d} web-1 sshd[1]: Failed password for root from 203.0.113.5 port {i} ssh2\n"
                     .encode() for i in range(6))
    ingest_stream(Engine(cfg, store, dry_run=True), io.BytesIO(lines), "test", "auto", "auto", 1000)
    store.close()
    db = sqlite3.connect(tmp_path / "s.db")  # as an older version left it: incidents without the new columns
    db.executescript("DROP INDEX incidents_facets; DROP INDEX incidents_source_key;"
                     " ALTER TABLE incidents DROP COLUMN rules; ALTER TABLE incidents DROP COLUMN centers;"
                     " ALTER TABLE incidents DROP COLUMN source_key;")
    db.close()
    store = open_store(cfg)
    try:
        found = Incidents(store).search(rule="ssh_bruteforce_fast", source="203.0.113.0/24")
        assert found["total"] == 1 and found["items"][0]["rules"] == ["ssh_bruteforce_fast"]
    finally:
        store.close()
