"""Where events come from: the SecOps store's incidents (the watcher) and Alertmanager's webhook (the notify
service's receiver), both through the one routing path to real receivers."""
from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from notify.sources import IncidentWatcher, SlaWatcher, alertmanager_events
from secops.store import Store


def _new_incident(store, title="SSH 暴力破解", severity="medium", created=None) -> int:
    now = created or time.time()
    return store.create_incident({"entity_kind": "source.ip", "entity": "203.0.113.7", "title": title,
                                  "severity": severity, "state": "new", "assignee": None, "created": now,
                                  "updated": now, "first": now, "last": now})


def test_the_watcher_reports_new_incidents_state_changes_and_escalations_once(tmp_path):
    from notify.journal import Journal
    from secops.incidents import Incidents
    store, journal = Store(tmp_path / "secops.db"), Journal(tmp_path / "notify.sqlite")
    old = _new_incident(store, "旧事件", created=time.time() - 3600)
    watcher = IncidentWatcher(store, journal, "https://console.gov.example/")
    assert watcher.poll() == []  # the first start notifies nothing that already exists
    new = _new_incident(store)
    [event] = watcher.poll()
    assert (event.kind, event.key, event.state) == ("incident.new", f"incident:{new}:new", "new")
    assert event.link == f"https://console.gov.example/#/incidents/{new}" and event.title.endswith("SSH 暴力破解")
    assert watcher.poll() == []
    Incidents(store).ack(old, "li.na")
    store.update_incident(new, {"severity": "critical", "updated": time.time()})
    events = IncidentWatcher(store, journal).poll()  # a restarted watcher: it remembers what it saw
    assert sorted((e.kind, e.key) for e in events) == [
        ("incident.escalated", f"incident:{new}:severity:critical"), ("incident.state", f"incident:{old}:state:acknowledged")]
    store.update_incident(new, {"severity": "low"})
    assert IncidentWatcher(store, journal).poll() == []  # a lower severity is not an escalation
    store.close(), journal.close()


def test_a_breached_sla_target_is_notified_once_even_after_a_restart(tmp_path):
    from notify.journal import Journal
    store, journal = Store(tmp_path / "secops.db"), Journal(tmp_path / "notify.sqlite")
    on_time = _new_incident(store, "刚发生", severity="critical")
    late = _new_incident(store, "无人处理", severity="critical", created=time.time() - 7 * 86400)
    events = SlaWatcher(store, journal, "https://console.gov.example/").poll()
    assert sorted(e.key for e in events) == [f"incident:{late}:sla:{t}" for t in ("acknowledge", "contain", "resolve")]
    event = events[0]  # a week old and untouched: every target is late; the fresh one is on time
    assert (event.kind, event.severity) == ("sla.breach", "critical") and on_time != late
    assert event.link.endswith(f"/#/incidents/{late}") and "处置时限超期" in event.summary
    assert SlaWatcher(store, journal).poll() == []  # a restarted watcher: the breach was told once
    store.close(), journal.close()


def test_alertmanager_payload_becomes_availability_events():
    payload = {"version": "4", "groupKey": "{}:{alertname=\"PortalDown\"}", "status": "firing", "alerts": [
        {"status": "firing", "labels": {"alertname": "PortalDown", "severity": "page", "center": "center-a",
                                        "sloth_service": "portal"},
         "annotations": {"summary": "中心 A 门户不可用", "description": "探测失败 3 分钟"},
         "startsAt": "2026-12-07T04:00:00Z", "fingerprint": "abc123"},
        {"status": "resolved", "labels": {"alertname": "DiskSlow", "severity": "ticket"}, "annotations": {},
         "startsAt": "2026-12-07T03:00:00Z", "fingerprint": "def456"}]}
    firing, resolved = alertmanager_events("page", payload, time.time())
    assert (firing.kind, firing.severity, firing.center, firing.title, firing.roles) == (
        "availability.firing", "high", "center-a", "中心 A 门户不可用", ("ops",))
    assert (resolved.kind, resolved.severity, resolved.title) == ("availability.resolved", "medium", "DiskSlow")
    with pytest.raises(ValueError):
        alertmanager_events("page", {"no": "alerts"}, time.time())


def test_alertmanager_posts_every_receiver_to_notify_as_well_as_to_the_records_webhook():
    from monitors.targets import Targets, alertmanager_config
    receivers = alertmanager_config(Targets("test", {}))["receivers"]
    assert {r["name"]: [h["url"] for h in r["webhook_configs"]] for r in receivers} == {
        "page": ["http://127.0.0.1:19095/alerts/page", "http://127.0.0.1:19096/alertmanager/page"],
        "ticket": ["http://127.0.0.1:19095/alerts/ticket", "http://127.0.0.1:19096/alertmanager/ticket"]}


@pytest.mark.slow
def test_the_service_notifies_an_incident_and_an_alertmanager_page_by_mail_and_webhook(notifier_for, smtp_server,
                                                                                       receivers, sealed):
    from notify import service
    from tests.secops.testbed import free_port
    notifier, _ = notifier_for(routes="""
  - name: incidents
    match: {kinds: ["incident.*", "sla.*"]}
    channels: [soc-mail, console]
  - name: pages
    match: {kinds: ["availability.*"]}
    channels: [hook, console]
""")
    store = Store(sealed / "secops.db")
    port = free_port()
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(notifier, store, f"127.0.0.1:{port}", stop), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 10
        while True:
            try:
                if httpx.get(f"{base}/-/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        time.sleep(1.2)  # the watcher's first poll takes the present as its baseline
        incident_id = _new_incident(store, "Web 攻击 / web attack", "high")
        [mail] = smtp_server.wait(1)
        assert f"#{incident_id} Web 攻击" in mail["Subject"] and "新安全事件" in mail["Subject"]

        payload = {"version": "4", "status": "firing", "alerts": [
            {"status": "firing", "labels": {"alertname": "PortalDown", "severity": "page", "center": "center-b"},
             "annotations": {"summary": "中心 B 门户不可用"}, "startsAt": "2026-12-07T04:00:00Z", "fingerprint": "f1"}]}
        answer = httpx.post(f"{base}/alertmanager/page", json=payload)
        assert answer.status_code == 200 and answer.json()["events"] == 1
        [hook] = receivers["webhook"].wait(1)
        assert hook["json"]["event"]["kind"] == "availability.firing" and "中心 B 门户不可用" in hook["json"]["subject"]

        refused = httpx.post(f"{base}/alertmanager/page", content=b"{not json", headers={"Content-Type": "application/json"})
        assert refused.status_code == 400
        refused = httpx.post(f"{base}/events", json={"kind": "sla.breach", "payload": {"severity": "high"}})
        assert refused.status_code == 400 and "`title` is required" in refused.json()["error"]
        accepted = httpx.post(f"{base}/events", json={"kind": "sla.breach", "payload": {"title": "事件 #1 超时"}})
        assert accepted.status_code == 200 and {o["channel"] for o in accepted.json()["outcomes"]} == {
            "soc-mail", "console"}
        titles = [i["title"] for i in notifier.journal.inbox("li", "security")["items"]]
        assert titles[0] == "事件 #1 超时" and any("Web 攻击" in t for t in titles)
        assert json.dumps(notifier.journal.inbox("wang", "ops"), ensure_ascii=False).count("中心 B 门户不可用") >= 1
    finally:
        stop.set()
        thread.join(10)
        store.close()
