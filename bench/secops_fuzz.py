#!/usr/bin/env python3
"""Fuzz the SecOps per-line path: random and mutated lines per format through the normalizer, the Sigma
detector (bundled rules) and the decision engine (dry run). Goal: 0 crashes, 0 invariant violations.

usage: PYTHONPATH=. .venv/bin/python bench/secops_fuzz.py [--n 20000] [--seed 1] [--json]

Per format (sshd/syslog, nginx, auditd, postgresql, kernel/nftables, json) it starts from real lines and
mutates them: byte flips, cut-offs, inserted attacker pieces ("from ADDR port N", rhost=, addr=, SRC=,
zone ids, IPv4-mapped addresses, quotes, "LEVEL:  "), spliced fields of other formats, non-UTF-8 bytes,
and now and then a wholly random line. A crash is any exception out of normalize, process or on_alert
(they must turn bad input into a quarantine reason). Invariants checked on every event: `source.ip` is
in canonical form (secops.address), and every block is of an address that was some event's source and
may be blocked at all.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from secops.address import canonical, refused  # noqa: E402
from secops.detect import Detector, load_rules  # noqa: E402
from secops.normalize import Normalizer, Rejected  # noqa: E402
from secops.respond import Allowlist, DecisionEngine  # noqa: E402

SEEDS = {
    "sshd": [
        "Nov  1 00:00:01 web-1 sshd[101]: Failed password for invalid user admin from 198.51.100.7 port 4001 ssh2",
        "Nov  1 00:00:02 web-1 sshd[102]: Failed publickey for git from 2001:db8::7 port 4002 ssh2: RSA SHA256:abcd",
        "Nov  1 00:00:03 web-1 sshd[103]: Invalid user oracle from 198.51.100.8 port 4003",
        "Nov  1 00:00:04 web-1 sshd[104]: Connection closed by authenticating user root 198.51.100.9 port 4004 [preauth]",
        "Nov  1 00:00:05 web-1 sshd[105]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
        "ruser= rhost=198.51.100.10  user=root",
        "<38>1 2026-11-01T00:00:06Z web-1 sshd 106 - - Accepted password for deploy from 10.20.0.5 port 4006 ssh2",
        "Nov  1 00:00:07 web-1 sudo: alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/ls",
    ],
    "nginx": [
        '198.51.100.7 - - [01/Nov/2026:00:00:01 +0000] "GET /index.php?id=1%27%20union%20select%201 HTTP/1.1" 404 12 '
        '"-" "sqlmap/1.7"',
        '2001:db8::8 - bob [01/Nov/2026:00:00:02 +0800] "POST /login HTTP/1.1" 401 0 "https://x/" "Mozilla/5.0"',
        '198.51.100.9 - - [01/Nov/2026:00:00:03 +0000] "\\x16\\x03\\x01" 400 150 "-" "-"',
    ],
    "auditd": [
        "type=USER_AUTH msg=audit(1793491200.001:701): pid=201 uid=0 auid=4294967295 ses=4294967295 "
        "msg='op=PAM:authentication grantors=? acct=\"root\" exe=\"/usr/sbin/sshd\" hostname=198.51.100.7 "
        "addr=198.51.100.7 terminal=ssh res=failed'",
        "type=SYSCALL msg=audit(1793491200.002:702): arch=c000003e syscall=59 success=yes exit=0 pid=3 uid=0 "
        "comm=\"sh\" exe=\"/bin/sh\" key=\"exec\"",
    ],
    "postgresql": [
        '2026-11-01 00:00:01.000 UTC [301] app@appdb 198.51.100.7(5001) FATAL:  password authentication failed for '
        'user "app"',
        "2026-11-01 00:00:02.000 UTC [302] [unknown]@[unknown] LOG:  connection received: host=198.51.100.8 port=5002",
        '2026-11-01 00:00:03.000 UTC [302] FATAL:  role "x" does not exist',
    ],
    "kernel": [
        "Nov  1 00:00:01 fw-prod kernel: [1234.5] govctl-drop: IN=eth0 OUT= MAC=00:00 SRC=198.51.100.7 DST=10.11.1.10 "
        "LEN=44 TOS=0x00 PROTO=TCP SPT=40000 DPT=23 WINDOW=1024 SYN URGP=0",
        "Nov  1 00:00:02 fw-prod kernel: nft drop: IN=eth1 OUT= SRC=2001:db8::9 DST=2001:db8::1 LEN=80 PROTO=UDP "
        "SPT=53 DPT=161",
    ],
    "json": [
        '{"@timestamp": "2026-11-01T00:00:01Z", "source": {"ip": "198.51.100.7"}, "event": {"dataset": "sshd", '
        '"action": "ssh_login", "outcome": "failure"}, "user": {"name": "root"}}',
        '{"timestamp": 1793491202, "source.ip": "::ffff:198.51.100.8", "message": "login failed"}',
    ],
}

PIECES = [" from 192.0.2.77 port 22 ssh2", " from fe80::1%eth0 port 1", " from ::ffff:10.11.4.10 port 2",
          " rhost=192.0.2.77", "  user=root", " addr=192.0.2.77", " SRC=192.0.2.77", " DST=", " IN=",
          " 192.0.2.77(5432)", " FATAL:  ", " LOG:  ", "'", '"', "\\", "%", "::", "0.0.0.0", "255.255.255.255",
          "ff02::1", "127.0.0.1", " port ", " port 99999999999999999999", " [preauth]", ": RSA SHA256:x",
          "用户", "\u202e", "{", "}", "[", "]", "=", " msg='", "type=", "<999>", "<13>1 ", "\t", " " * 40,
          "9" * 40, "::ffff:", "1.2.3.4.5", "2001:db8::1::1", "a" * 300]


def mutate(rnd: random.Random, line: str, other: list[str]) -> bytes:
    """One mutation (sometimes several) of a seed line."""
    text = line
    for _ in range(rnd.choice((1, 1, 1, 2, 3))):
        op = rnd.random()
        if op < 0.35:  # insert an attacker piece
            at = rnd.randrange(len(text) + 1)
            text = text[:at] + rnd.choice(PIECES) + text[at:]
        elif op < 0.5:  # cut
            a, b = sorted(rnd.randrange(len(text) + 1) for _ in range(2))
            text = text[:a] + text[b:]
        elif op < 0.62:  # splice a piece of another format's line
            donor = rnd.choice(other)
            a, b = sorted(rnd.randrange(len(donor) + 1) for _ in range(2))
            at = rnd.randrange(len(text) + 1)
            text = text[:at] + donor[a:b] + text[at:]
        elif op < 0.72:  # replace a token
            tokens = text.split(" ")
            tokens[rnd.randrange(len(tokens))] = rnd.choice(PIECES).strip() or "x"
            text = " ".join(tokens)
        elif op < 0.8:  # duplicate a segment
            a, b = sorted(rnd.randrange(len(text) + 1) for _ in range(2))
            text = text[:b] + text[a:b] + text[b:]
        else:  # byte-level damage below
            raw = bytearray(text.encode())
            for _ in range(rnd.randint(1, 4)):
                if raw:
                    raw[rnd.randrange(len(raw))] = rnd.randrange(256)
            return bytes(raw)
    return text.encode("utf-8", "surrogatepass")


def random_line(rnd: random.Random) -> bytes:
    n = rnd.randint(0, 200)
    if rnd.random() < 0.5:
        return bytes(rnd.randrange(256) for _ in range(n))
    return "".join(chr(rnd.randint(32, 0x2FFF)) for _ in range(n)).encode("utf-8", "surrogatepass")


def run(fmt: str, n: int, rules, seed: int) -> dict:
    rnd = random.Random(f"{seed}-{fmt}")
    others = [s for f, seeds in SEEDS.items() if f != fmt for s in seeds]
    normalizer = Normalizer(source=f"fuzz-{fmt}", year=2026)
    engine = DecisionEngine(Allowlist(["10.11.4.0/24"]), dry_run=True, actor="fuzz")
    sources: set[str] = set()
    crashes: list[dict] = []
    violations: list[dict] = []

    def on_alert(alert, new):
        engine.on_alert(alert, alert.last)

    detector = Detector(rules, on_alert=on_alert)
    events = rejected = 0
    reasons: dict[str, int] = {}
    started = time.perf_counter()
    for i in range(n):
        raw = random_line(rnd) if rnd.random() < 0.05 else mutate(rnd, rnd.choice(SEEDS[fmt]), others)
        stage = "normalize"
        try:
            event = normalizer.normalize(raw)
            if event.__class__ is Rejected:
                rejected += 1
                reasons[event.reason] = reasons.get(event.reason, 0) + 1
                continue
            events += 1
            ip = event.get("source.ip")
            if ip is not None:
                if not isinstance(ip, str) or canonical(ip) != ip:
                    violations.append({"input": raw.decode("utf-8", "replace")[:300],
                                       "problem": f"source.ip {ip!r} is not canonical"})
                sources.add(ip)
            stage = "detect"
            detector.process(event)
        except Exception as exc:  # the finding this script exists for
            crashes.append({"stage": stage, "error": f"{type(exc).__name__}: {exc}"[:300],
                            "input": raw.decode("utf-8", "replace")[:300],
                            "where": traceback.format_exc().strip().splitlines()[-3][:200]})
    seconds = time.perf_counter() - started
    for address in engine.active:
        if address not in sources or canonical(address) != address or refused(address) is not None:
            violations.append({"input": None, "problem": f"blocked {address!r}: not a blockable event source"})
    return {"tried": n, "events": events, "rejected": rejected, "rejected_by_reason": dict(sorted(reasons.items())),
            "alerts": len(detector.alerts), "blocked": len(engine.active), "crashes": len(crashes),
            "invariant_violations": len(violations), "seconds": round(seconds, 3),
            "lines_per_second": round(n / seconds) if seconds else None,
            "crash_samples": crashes[:5], "violation_samples": violations[:5]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20_000, help="inputs per format (default 20000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    a = ap.parse_args()
    if a.n < 1:
        ap.error("--n must be at least 1")
    rules = load_rules()
    result = {"n_per_format": a.n, "seed": a.seed, "formats": {fmt: run(fmt, a.n, rules, a.seed) for fmt in SEEDS}}
    result["total"] = {k: sum(r[k] for r in result["formats"].values())
                       for k in ("tried", "events", "rejected", "crashes", "invariant_violations")}
    if a.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(f"{'format':<12}{'tried':>8}{'events':>8}{'rejected':>10}{'alerts':>8}{'crashes':>9}{'violations':>12}")
        for fmt, r in result["formats"].items():
            print(f"{fmt:<12}{r['tried']:>8}{r['events']:>8}{r['rejected']:>10}{r['alerts']:>8}{r['crashes']:>9}"
                  f"{r['invariant_violations']:>12}")
    sys.exit(1 if result["total"]["crashes"] or result["total"]["invariant_violations"] else 0)


if __name__ == "__main__":
    main()
