#!/usr/bin/env python3
"""Benchmark notifications end to end: incident → email received and → robot receiver (p50/p95), and an
alert storm through Alertmanager's receiver (what reaches each channel, and when the digest arrives).

  .venv/bin/python bench/notify.py [--incidents 40] [--storm 1000] [--storm-seconds 10] [--window 20s] [--json]

Everything is real on loopback except the far ends that cannot exist here: the notify service (its
watcher, routing, journal and delivery loop) runs in-process on a SQLite SecOps store; mail goes over
SMTP with STARTTLS and AUTH to aiosmtpd; DingTalk, WeCom and the webhook are local receivers that check
each signature (tests/notify/conftest.py). The keystore, store and journal are throw-away (never state/).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50_s": round(statistics.median(values), 3), "p95_s": round(percentile(values, 0.95), 3),
            "max_s": round(max(values), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=40)
    parser.add_argument("--storm", type=int, default=1000)
    parser.add_argument("--storm-seconds", type=float, default=10.0)
    parser.add_argument("--window", default="20s", help="the channels' rate-limit window during the storm")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="govctl-notify-bench-"))
    (folder / "keys").mkdir()
    (folder / "keys" / "root.key").write_bytes(os.urandom(32))
    os.environ.update(GOVCTL_STATE=str(folder), GOVCTL_CRYPTO_ROOT_KEY_FILE=str(folder / "keys" / "root.key"))
    from core import paths
    paths.STATE = folder

    import httpx

    from notify import service
    from notify.config import load_config
    from notify.engine import Notifier
    from notify.journal import Journal
    from notify.secrets import seal
    from secops.store import Store
    from tests.notify import conftest as rig
    from tests.secops.testbed import free_port

    for name, value in (("soc-mail", rig.SMTP_PASSWORD), ("ding-token", rig.DING_TOKEN), ("ding-sign", rig.DING_SECRET),
                        ("wecom-key", rig.WECOM_KEY), ("hook", rig.HOOK_SECRET)):
        seal(name, value)
    mailbox, smtp = rig.start_smtp(rig.make_certificate(folder))
    receivers = {kind: rig.start_receiver(kind) for kind in ("dingtalk", "wecom", "webhook")}
    figures: dict = {"machine": "2 cores, shared with other helpers' work", "load_average": os.getloadavg()}

    def run_service(config_text: str, store):
        path = folder / f"notify-{time.monotonic_ns()}.yaml"
        path.write_text(config_text, encoding="utf-8")
        notifier = Notifier(load_config(path), Journal(folder / f"journal-{time.monotonic_ns()}.sqlite"))
        port, stop = free_port(), threading.Event()
        thread = threading.Thread(target=service.run, args=(notifier, store, f"127.0.0.1:{port}", stop), daemon=True)
        thread.start()
        deadline = time.time() + 10
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/-/ready")
                break
            except httpx.HTTPError:
                assert time.time() < deadline, "the notify service did not start"
                time.sleep(0.05)
        return notifier, f"http://127.0.0.1:{port}", stop, thread

    # 1. incident → email and → robots, one incident at a time (the watcher polls every second)
    store = Store(folder / "secops.db")
    routes = "\n  - name: incidents\n    match: {kinds: [\"incident.*\"]}\n    channels: [soc-mail, ding, wecom, console]\n"
    text = rig.config_text(mailbox.port, mailbox.ca_file, receivers, rate="{count: 100000, per: 1m}", routes=routes)
    notifier, base, stop, thread = run_service(text, store)
    time.sleep(1.2)  # the watcher's first poll is its baseline
    created: dict[int, float] = {}
    for i in range(args.incidents):
        now = time.time()
        incident = store.create_incident({"entity_kind": "source.ip", "entity": f"198.51.100.{i % 250 + 1}",
                                          "title": f"SSH 暴力破解 {i}", "severity": "high", "state": "new",
                                          "assignee": None, "created": now, "updated": now, "first": now, "last": now})
        created[incident] = now
        time.sleep(0.37)  # not in step with the 1 s poll: arrivals fall anywhere in it
    mailbox.wait(args.incidents, timeout=60)
    for r in receivers.values():
        r.wait(args.incidents if r.kind != "webhook" else 0, timeout=60)

    def latencies(texts_and_times) -> list[float]:
        out = []
        for text, arrived in texts_and_times:
            for incident, at in created.items():
                if f"#{incident} SSH" in text:
                    out.append(arrived - at)
                    break
        return out
    figures["incident_to_email"] = summary(latencies((m["Subject"], t) for m, t in zip(mailbox.messages, mailbox.arrived)))
    figures["incident_to_dingtalk"] = summary(latencies(
        (c["json"]["markdown"]["title"], t) for c, t in zip(receivers["dingtalk"].accepted, receivers["dingtalk"].arrived)))
    figures["incident_to_wecom"] = summary(latencies(
        (c["json"]["markdown"]["content"], t) for c, t in zip(receivers["wecom"].accepted, receivers["wecom"].arrived)))
    stop.set()
    thread.join(10)

    # 2. the storm: N Alertmanager alerts in S seconds through the receiver, every channel rate-limited
    before = {"email": len(mailbox.messages), **{k: len(r.accepted) for k, r in receivers.items()}}
    routes = "\n  - name: pages\n    match: {kinds: [\"availability.*\"]}\n    channels: [soc-mail, ding, wecom, hook]\n"
    limit = 10
    text = rig.config_text(mailbox.port, mailbox.ca_file, receivers, rate=f"{{count: {limit}, per: {args.window}}}",
                           routes=routes)
    notifier, base, stop, thread = run_service(text, None)
    answers = []
    started = time.time()
    with httpx.Client() as client:
        for i in range(args.storm):
            due = started + i * args.storm_seconds / args.storm
            time.sleep(max(0.0, due - time.time()))
            payload = {"version": "4", "status": "firing", "alerts": [{
                "status": "firing", "labels": {"alertname": f"PortalDown{i}", "severity": "page", "center": "center-a"},
                "annotations": {"summary": f"门户不可用 {i}"}, "startsAt": "2026-12-07T04:00:00Z", "fingerprint": f"f{i}"}]}
            t0 = time.time()
            assert client.post(f"{base}/alertmanager/page", json=payload).status_code == 200
            answers.append(time.time() - t0)
    storm_end = time.time()
    from monitors.durations import parse_duration
    window = parse_duration(args.window)
    deadline = started + window + 15
    counts = {}
    while time.time() < deadline:
        counts = {"email": len(mailbox.messages) - before["email"],
                  **{k: len(r.accepted) - before[k] for k, r in receivers.items()}}
        if all(v >= limit + 1 for v in counts.values()):
            break
        time.sleep(0.2)
    time.sleep(2)  # anything more would show now
    counts = {"email": len(mailbox.messages) - before["email"],
              **{k: len(r.accepted) - before[k] for k, r in receivers.items()}}
    digest_at = [t for c, t in zip(receivers["webhook"].accepted, receivers["webhook"].arrived)
                 if c["json"]["event"].get("kind") == "digest"]
    figures["storm"] = {"alerts": args.storm, "seconds": round(storm_end - started, 2), "limit_per_channel": limit,
                        "window": args.window, "received_per_channel": counts,
                        "receiver_answer": summary(answers),
                        "digest_after_storm_start_s": round(digest_at[-1] - started, 2) if digest_at else None}
    stop.set()
    thread.join(10)
    store.close()
    smtp.stop()
    for r in receivers.values():
        r.server.shutdown()
    print(json.dumps(figures, indent=1, ensure_ascii=False) if args.json else "\n".join(
        f"{k}: {v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
