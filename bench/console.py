#!/usr/bin/env python3
"""The console at 100,000 incidents (issue #17): list API p95, first render in Chromium, live-view latency.

usage: .venv/bin/python bench/console.py [--incidents 100000] [--requests 200] [--loads 10] [--writes 20]
       [--json] [--keep DIR]

1. Seeds a SQLite SecOps store with N incidents and their alerts the way the daemon writes them: each alert
   through Store.save_alert and IncidentGrouper.add (create_incident / link_alert) inside Store.transaction(),
   5,000 alerts per transaction. Every incident has its own source address (198.18.0.0/15), one alert of a
   bundled rule, every fifth one a second alert of another rule a minute later (it joins the same incident);
   activity spreads over the last 180 days, and incidents older than a week are mostly resolved.
2. Serves the console (console.app) with uvicorn on 127.0.0.1 in a child process (as `govctl console serve`
   runs beside the daemon), signs in, and times the console's own requests (API_CALLS: the incidents page's
   first page, a filtered and sorted page, a title search, the overview) — wall time at the client —
   p50/p95/p99 over --requests rounds.
3. First render in Debian's chromium (Playwright), from page.goto(#/incidents) to the first incident row in
   the table; p50/p95 cold (a new browser context per load: empty HTTP cache, the session cookie only) and
   warm (new pages of one context: the hashed assets cached).
4. Live view: the incidents page stays open; this process writes an alert + incident into the store file
   (its own connection, as the daemon process does) and times until the row with its address appears
   through the console's server-sent events; p50/p95 over --writes writes, 0-1 s apart at random (so the
   writes fall anywhere in the stream's poll cycle).
The whole run is bounded (about 3 minutes for 100,000 incidents on 2 shared cores; each phase has a
deadline). Prints a summary, or one JSON document with --json.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
USER, PASSWORD = "bench.user", "Bench-pass-2026-x"
ADDRESSES = ipaddress.ip_network("198.18.0.0/15")  # RFC 2544 benchmarking range: 131,072 addresses
LIVE_ADDRESSES = ipaddress.ip_network("100.64.0.0/24")
RULES = ("ssh_bruteforce_fast", "ssh_password_spraying", "web_sql_injection", "web_scanner_user_agent",
         "firewall_port_scan", "db_bruteforce", "web_path_traversal", "ssh_bruteforce_slow")
CENTERS = (("production", "same-city"), ("production", "same-city", "remote"), ("remote",))
DAY = 86400.0
BATCH = 5000
PHASE_SECONDS = {"api": 90, "render": 60, "live": 90}


def percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))] * 1000, 1)
    return {"n": len(ordered), "p50_ms": at(50), "p95_ms": at(95), "p99_ms": at(99),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 1), "max_ms": round(ordered[-1] * 1000, 1)}


def make_alert(info, address: str, first: float, count: int):
    from secops.detect import Alert
    line = f"{time.strftime('%b %e %H:%M:%S', time.gmtime(first))} web-1 sshd[7]: Failed password for root " \
           f"from {address} port 40000 ssh2"
    evidence = [{"@timestamp": first, "source.ip": address, "event.original": line}]
    return Alert(info, {"source.ip": address}, first, first + 30, count, evidence)


def write_alert(store, grouper, alert, centers=()) -> int:
    """As the daemon does for each new alert: store it, then attach it to its incident (with the centers whose
    firewalls took the block it caused)."""
    store.save_alert(alert)
    return grouper.add(alert, centers)


def seed(path: Path, incidents: int, now: float) -> dict:
    from secops.detect import load_rules
    from secops.incidents import IncidentGrouper
    from secops.store import Store
    if incidents > ADDRESSES.num_addresses:
        raise SystemExit(f"--incidents {incidents}: at most {ADDRESSES.num_addresses} (one address each)")
    infos = {i.name: i for i in load_rules().all_infos()}
    rules = [infos[name] for name in RULES]
    rng = random.Random(17)
    store = Store(path)
    grouper = IncidentGrouper(store, window=3600.0)
    span = 180 * DAY
    started = time.perf_counter()
    alerts = 0
    base = int(ADDRESSES.network_address)
    for start in range(0, incidents, BATCH):
        with store.transaction():
            for k in range(start, min(start + BATCH, incidents)):
                address = str(ipaddress.IPv4Address(base + k))
                first = now - span + span * k / incidents - 600  # oldest first; the newest ten minutes ago
                iid = write_alert(store, grouper, make_alert(rules[k % len(rules)], address, first, rng.randint(5, 60)),
                                  CENTERS[k % len(CENTERS)])
                alerts += 1
                if k % 5 == 0:  # a second rule a minute later: the same incident
                    write_alert(store, grouper, make_alert(rules[(k + 3) % len(rules)], address, first + 60, 5))
                    alerts += 1
                if first < now - 7 * DAY:
                    state = rng.choices(["resolved", "false-positive", "contained"], [85, 10, 5])[0]
                else:
                    state = rng.choice(["new", "new", "acknowledged", "contained"])
                if state != "new":
                    store.update_incident(iid, {"state": state})
    seconds = time.perf_counter() - started
    count = store.db.execute("SELECT count(*) FROM incidents").fetchone()[0]
    store.close()
    return {"incidents": count, "alerts": alerts, "seconds": round(seconds, 1),
            "alerts_per_second": round(alerts / seconds), "db_mb": round(path.stat().st_size / 1e6, 1)}


def store_query_times(path: Path, rounds: int = 30) -> dict:
    """The store's own share of the API time: the page's search (default and filtered), and the live stream's
    fingerprint query."""
    from secops.incidents import parse_incident_query
    from secops.store import Store
    store = Store(path)
    default = parse_incident_query(limit=20)
    filtered = parse_incident_query(states=["new", "acknowledged"], severities=["high", "critical"], center="remote",
                                    source="198.19.0.0/16", sort="-severity", offset=0, limit=20)
    try:
        page, narrowed, latest = [], [], []
        for _ in range(rounds):
            for query, into in ((default, page), (filtered, narrowed)):
                t = time.perf_counter()
                store.search_incidents(query)
                into.append(time.perf_counter() - t)
            t = time.perf_counter()
            store.incidents(None, 1)
            latest.append(time.perf_counter() - t)
        plan = [r[-1] for r in store.db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM incidents i ORDER BY i.last DESC, i.id DESC LIMIT 20")]
    finally:
        store.close()
    return {"search_default_page": percentiles(page), "search_filtered_page": percentiles(narrowed),
            "incidents_limit_1": percentiles(latest), "plan": plan}


def serve(db: str, users: str, port: int) -> None:
    """The child process: the console on the store file, as `govctl console serve` serves it."""
    import uvicorn

    from console.app import create_console_app
    from secops.store import Store
    store = Store(db)
    app = create_console_app(store, Path(users).with_name("tokens.yaml"), users)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: Path, users: Path) -> tuple[subprocess.Popen, str]:
    import httpx
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(db), str(users), str(port)],
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/api/session", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("the console server did not start")
        time.sleep(0.2)


# The requests the console sends (issue #17): the incidents page's first request (its default sort, page 1 of
# 20), the same with several filters and a sort by severity, a title search, and the overview's aggregation.
API_CALLS = {
    "page_default": ("/api/incident-search", [("sort", "-last"), ("offset", "0"), ("limit", "20")]),
    "page_filtered": ("/api/incident-search", [("state", "new"), ("state", "acknowledged"), ("severity", "high"),
                                               ("severity", "critical"), ("center", "remote"),
                                               ("source", "198.19.0.0/16"), ("sort", "-severity"),
                                               ("offset", "0"), ("limit", "20")]),
    "page_title_search": ("/api/incident-search", [("q", "brute"), ("sort", "-last"), ("limit", "20")]),
    "overview_7_days": ("/api/overview", [("days", "7"), ("zone", "Asia/Shanghai")]),
}


def measure_api(base: str, requests: int) -> dict:
    """p50/p95/p99 of each call of API_CALLS, interleaved, `requests` rounds (bounded by the phase deadline)."""
    import httpx
    with httpx.Client(base_url=base, timeout=30) as client:
        r = client.post("/api/session", json={"name": USER, "password": PASSWORD})
        r.raise_for_status()
        times: dict[str, list[float]] = {name: [] for name in API_CALLS}
        answers: dict[str, tuple[int | None, int]] = {}
        deadline = time.monotonic() + PHASE_SECONDS["api"]
        for _ in range(requests):
            for name, (path, params) in API_CALLS.items():
                t = time.perf_counter()
                r = client.get(path, params=params)
                times[name].append(time.perf_counter() - t)
                r.raise_for_status()
                answers[name] = (r.json().get("total"), len(r.content))
            if time.monotonic() > deadline:
                break
    return {name: {**percentiles(times[name]), "total": answers[name][0], "response_kb": round(answers[name][1] / 1024, 1)}
            for name in API_CALLS}


def browser_context(playwright, base: str):
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/")
    page.get_by_test_id("user").fill(USER)
    page.get_by_test_id("password").fill(PASSWORD)
    page.get_by_test_id("sign-in").click()
    page.get_by_test_id("overview").wait_for(timeout=30000)
    cookies = context.storage_state()
    context.close()
    return browser, cookies


def measure_render(playwright, base: str, loads: int) -> dict:
    """Cold: a new context per load (empty HTTP cache, as a first visit). Warm: new pages of one context
    (the hashed assets cached, as a returning analyst's browser)."""
    browser, state = browser_context(playwright, base)
    out: dict = {}
    deadline = time.monotonic() + PHASE_SECONDS["render"]
    try:
        warm_context = browser.new_context(viewport={"width": 1440, "height": 900}, storage_state=state)
        for kind in ("cold", "warm"):
            times = []
            for n in range(loads + (kind == "warm")):  # the first warm load fills the cache: not counted
                context = warm_context if kind == "warm" else browser.new_context(
                    viewport={"width": 1440, "height": 900}, storage_state=state)
                page = context.new_page()
                t = time.perf_counter()
                page.goto(f"{base}/#/incidents")
                page.locator(".incident-row").first.wait_for(timeout=30000)
                if kind == "cold" or n > 0:
                    times.append(time.perf_counter() - t)
                rows = page.locator(".incident-row").count()
                page.close()
                if kind == "cold":
                    context.close()
                if time.monotonic() > deadline:
                    break
            out[kind] = {**percentiles(times), "rows_shown": rows}
        warm_context.close()
    finally:
        browser.close()
    return out


def measure_live(playwright, base: str, db: Path, writes: int) -> dict:
    from secops.detect import load_rules
    from secops.incidents import IncidentGrouper
    from secops.store import Store
    info = {i.name: i for i in load_rules().all_infos()}["ssh_bruteforce_fast"]
    browser, state = browser_context(playwright, base)
    store = Store(db)  # the daemon's own connection to the file
    grouper = IncidentGrouper(store, window=3600.0)
    rng = random.Random(20)
    times = []
    deadline = time.monotonic() + PHASE_SECONDS["live"]
    try:
        context = browser.new_context(viewport={"width": 1440, "height": 900}, storage_state=state)
        page = context.new_page()
        page.goto(f"{base}/#/incidents")
        page.locator(".incident-row").first.wait_for(timeout=30000)
        page.get_by_test_id("live").wait_for(timeout=30000)
        for n in range(writes):
            time.sleep(rng.uniform(0, 1))
            address = str(LIVE_ADDRESSES[n + 1])
            now = time.time()
            t = time.perf_counter()
            with store.transaction():
                write_alert(store, grouper, make_alert(info, address, now - 30, 5))
            page.locator(".incident-row", has_text=address).wait_for(timeout=15000)
            times.append(time.perf_counter() - t)
            if time.monotonic() > deadline:
                break
        context.close()
    finally:
        browser.close()
        store.close()
    return percentiles(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--loads", type=int, default=10)
    parser.add_argument("--writes", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one, removed)")
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve[:2], int(args.serve[2]))
        return
    from playwright.sync_api import sync_playwright

    from console.users import Users
    started = time.monotonic()
    work = args.keep or Path(tempfile.mkdtemp(prefix="govctl-bench-console-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "secops.db"
    for stale in work.glob("secops.db*"):
        stale.unlink()
    users = work / "console" / "users.yaml"
    if users.exists():
        users.unlink()
    Users(users).add(USER, "security", PASSWORD)
    result: dict = {"machine": "2 cores, shared", "seed": seed(db, args.incidents, time.time())}
    result["store"] = store_query_times(db)
    proc, base = start_server(db, users)
    try:
        result["api_incidents_list"] = measure_api(base, args.requests)
        with sync_playwright() as playwright:
            result["first_render"] = measure_render(playwright, base, args.loads)
            result["live_view"] = measure_live(playwright, base, db, args.writes)
    finally:
        proc.terminate()
        proc.wait(10)
        if not args.keep:
            import shutil
            shutil.rmtree(work, ignore_errors=True)
    result["goals"] = {"api_p95_ms": 200, "first_render_p95_ms": 1000, "live_p95_ms": 2000}
    result["met"] = {"api": all(r["p95_ms"] <= 200 for r in result["api_incidents_list"].values()),
                     "first_render_cold": result["first_render"]["cold"]["p95_ms"] <= 1000,
                     "first_render_warm": result["first_render"]["warm"]["p95_ms"] <= 1000,
                     "live": result["live_view"]["p95_ms"] <= 2000}
    result["run_seconds"] = round(time.monotonic() - started)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    s = result["seed"]
    print(f"seeded {s['incidents']} incidents ({s['alerts']} alerts) in {s['seconds']} s, {s['db_mb']} MB")
    print(f"store.search_incidents: default page p50 {result['store']['search_default_page']['p50_ms']} ms, filtered"
          f" page p50 {result['store']['search_filtered_page']['p50_ms']} ms; plan {result['store']['plan']}")
    for name, r in (*((f"api {name}", r) for name, r in result["api_incidents_list"].items()),
                    ("first_render (cold cache)", result["first_render"]["cold"]),
                    ("first_render (warm cache)", result["first_render"]["warm"]), ("live_view", result["live_view"])):
        print(f"{name}: p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, p99 {r['p99_ms']} ms (n={r['n']})")
    print(f"goals met: {result['met']}; run {result['run_seconds']} s")


if __name__ == "__main__":
    main()
