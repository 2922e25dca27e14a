"""Routing from YAML: matching, quiet hours, de-duplication, the rate limit with its digest (a storm of
1,000 alerts in 10 s), and clear errors for a broken file."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from core.errors import BadInput
from notify.config import load_config
from notify.engine import Notifier
from notify.events import Event, event_from
from notify.journal import Journal

SHANGHAI = ZoneInfo("Asia/Shanghai")

CONFIG = """version: 1
dedup_window: 10m
channels:
  hook:
    type: webhook
    url: http://127.0.0.1:9/hook
    signing_secret: hook
    rate_limit: {count: 5, per: 1m}
  ding:
    type: dingtalk
    url: http://127.0.0.1:9/robot/send
    token_secret: ding-token
    sign_secret: ding-sign
    rate_limit: {count: 3, per: 1m}
  ops-bell:
    type: console
    roles: [ops]
  bell:
    type: console
routes:
  - name: brute-force-at-night-too
    match: {tags: ["attack.t1110*"], min_severity: high, centers: [center-a]}
    channels: [ding]
  - name: daytime-web
    match: {kinds: ["incident.*"], states: [new]}
    channels: [hook]
    quiet_hours: {start: "22:00", end: "07:00", except_severities: [critical]}
  - name: availability
    match: {kinds: ["availability.*"], roles: [ops]}
    channels: [ops-bell]
  - name: bell
    match: {severities: [critical]}
    channels: [bell]
"""


@pytest.fixture
def notifier(tmp_path):
    path = tmp_path / "notify.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    n = Notifier(load_config(path), Journal(tmp_path / "journal.sqlite"))
    yield n
    n.journal.close()


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).timestamp()


def incident(key="incident:1:new", severity="high", tags=("attack.t1110.001",), center="center-a", state="new",
             kind="incident.new") -> Event:
    return Event(kind, "#1 SSH 暴力破解", severity, "", tags, center, state, ("security",), key)


def channels_of(outcomes) -> dict:
    return {o["channel"]: o["status"] + (f"/{o['reason']}" if o.get("reason") else "") for o in outcomes}


def test_routes_match_by_tag_severity_center_state_kind_and_role(notifier):
    noon = at("2026-12-07T12:00:00")
    assert channels_of(notifier.submit(incident(), noon)) == {"ding": "queued", "hook": "queued"}
    assert channels_of(notifier.submit(incident("k2", center="center-b"), noon)) == {"hook": "queued"}
    assert channels_of(notifier.submit(incident("k3", severity="medium"), noon)) == {"hook": "queued"}
    assert channels_of(notifier.submit(incident("k4", state="acknowledged", kind="incident.state", tags=()), noon)) == {}
    assert channels_of(notifier.submit(incident("k5", severity="critical", tags=()), noon)) == {
        "hook": "queued", "bell": "sent"}
    page = Event("availability.firing", "中心 A 门户不可用", "high", roles=("ops",), key="am:1")
    assert channels_of(notifier.submit(page, noon)) == {"ops-bell": "sent"}
    assert notifier.journal.inbox("wang", "ops")["items"][0]["title"] == "中心 A 门户不可用"
    assert notifier.journal.inbox("li", "security")["unread"] == 1  # the critical one, for the event's role


def test_quiet_hours_hold_push_messages_until_morning_then_send_one_digest(notifier):
    night = at("2026-12-07T23:30:00")
    assert channels_of(notifier.submit(incident("n1", tags=()), night)) == {"hook": "held/quiet"}
    assert channels_of(notifier.submit(incident("n2", tags=()), at("2026-12-08T03:00:00"))) == {"hook": "held/quiet"}
    # critical is exempt; a route without quiet hours (brute force → ding) sends at night too
    assert channels_of(notifier.submit(incident("n3", severity="critical"), night)) == {
        "ding": "queued", "hook": "queued", "bell": "sent"}
    assert notifier.release(at("2026-12-08T06:59:00")) == []
    [digest] = notifier.release(at("2026-12-08T07:00:00"))
    row = notifier.journal.get(digest)
    assert row["channel"] == "hook" and row["status"] == "pending" and "静默时段内的 2 条通知" in row["subject"]
    assert [r["status"] for r in notifier.journal.log() if r["event_key"] in ("n1", "n2")] == ["digested"] * 2
    assert channels_of(notifier.submit(incident("n4", tags=()), at("2026-12-08T07:00:00"))) == {"hook": "queued"}


def test_the_same_event_is_sent_once_per_channel_within_the_dedup_window(notifier):
    t = at("2026-12-07T12:00:00")
    assert channels_of(notifier.submit(incident(), t)) == {"ding": "queued", "hook": "queued"}
    assert channels_of(notifier.submit(incident(), t + 60)) == {"ding": "duplicate", "hook": "duplicate"}
    assert channels_of(notifier.submit(incident(), t + 601)) == {"ding": "queued", "hook": "queued"}


def test_a_storm_of_1000_alerts_in_10_s_sends_the_limit_plus_one_digest_per_channel(notifier):
    start = at("2026-12-07T12:00:00")
    for i in range(1000):  # every alert a different incident: de-duplication does not help here
        notifier.submit(incident(f"incident:{i}:new", severity="critical"), start + i * 0.01)
    assert notifier.release(start + 59) == []  # the window is still open
    digests = notifier.release(start + 60)
    log = notifier.journal.log(5000)
    for channel, limit in (("hook", 5), ("ding", 3)):
        rows = [r for r in log if r["channel"] == channel]
        pending = [r for r in rows if r["status"] == "pending"]
        assert len(pending) == limit + 1, channel  # what will go out: the limit and one digest
        [digest] = [r for r in pending if r["kind"] == "digest"]
        assert digest["id"] in digests and f"{1000 - limit} 条已合并" in digest["subject"]
        assert sum(r["status"] == "digested" for r in rows) == 1000 - limit  # nothing lost: all in the log
    assert notifier.journal.inbox("li", "security")["unread"] == 1000  # the bell lists every one


@pytest.mark.parametrize("text, where, says", [
    (CONFIG.replace("type: webhook", "type: pager"), "notify.yaml:5", "channels.hook.type"),
    (CONFIG.replace("signing_secret: hook", "signing_secret: hook\n    secret: s3cr3t"), "notify.yaml:", "'secret' is not expected"),
    (CONFIG.replace("url: http://127.0.0.1:9/robot/send", "url: http://127.0.0.1:9/robot/send?access_token=abc"),
     "notify.yaml:11", "carries a credential"),
    (CONFIG.replace("channels: [ops-bell]", "channels: [ops-bel]"), "notify.yaml:30", "no channel named 'ops-bel'"),
    (CONFIG.replace('start: "22:00"', 'start: "25:00"'), "notify.yaml:27", "quiet_hours.start"),
    (CONFIG.replace("per: 1m}\n  ding", "per: soon}\n  ding"), "notify.yaml:8", "rate_limit.per"),
    (CONFIG.replace("version: 1", "version: 1\ntimezone: Mars/Olympus"), "notify.yaml:2", "unknown time zone"),
    (CONFIG + "channels: {}\n", "notify.yaml:", "appears twice"),
])
def test_a_broken_routing_file_is_refused_naming_file_line_and_fix(tmp_path, text, where, says):
    path = tmp_path / "notify.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BadInput) as caught:
        load_config(path)
    assert where in str(caught.value) and says in str(caught.value)


@pytest.mark.parametrize("kind, payload, says", [
    ("SLA breach", {"title": "x"}, "event kind"),
    ("sla.breach", {}, "`title` is required"),
    ("sla.breach", {"title": "x", "severity": "urgent"}, "severity 'urgent'"),
    ("sla.breach", {"title": "x", "roles": ["admin"]}, "`roles`"),
    ("sla.breach", {"title": "x", "colour": "red"}, "unknown field(s) colour"),
    ("sla.breach", {"title": "x" * 301}, "at most 300"),
    ("sla.breach", ["title"], "JSON object"),
])
def test_send_event_refuses_a_bad_payload_by_name(kind, payload, says):
    with pytest.raises(BadInput, match=None) as caught:
        event_from(kind, payload)
    assert says in str(caught.value)


def test_send_event_routes_an_sla_breach_through_the_same_path(notifier):
    import notify
    outcomes = notify.send_event("sla.breach", {"title": "事件 #42 超过确认时限", "severity": "critical",
                                                "key": "sla:42:ack"}, notifier=notifier)
    assert channels_of(outcomes) == {"bell": "sent"}
    item = notifier.journal.inbox("li", "security")["items"][0]
    assert item["subject"].startswith("[govctl][严重] 处置时限超期：事件 #42") and "SLA breached" in item["subject"]


def test_send_event_with_the_default_configuration_reaches_the_bell(tmp_path, monkeypatch):
    """What another part of govctl (the cases' SLA checker) calls: no notifier of its own."""
    import notify
    monkeypatch.setenv("GOVCTL_NOTIFY_JOURNAL", str(tmp_path / "journal.sqlite"))
    from notify.config import BUNDLED
    monkeypatch.setenv("GOVCTL_NOTIFY_CONFIG", str(BUNDLED))
    outcomes = notify.send_event("sla.breach", {"title": "事件 #9 超过遏制时限", "severity": "high"})
    assert [(o["channel"], o["status"]) for o in outcomes] == [("console", "sent")]
    journal = Journal(tmp_path / "journal.sqlite")
    assert journal.inbox("li", "security")["items"][0]["title"] == "事件 #9 超过遏制时限"
    journal.close()
