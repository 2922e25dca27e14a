#!/usr/bin/env python3
"""What the audit trail costs the SecOps daemon (issue 19): the daemon's engine (SQLite store, no
enforcer, NOT a dry run, so every block is a decision stored and put on the trail) over an sshd
brute-force corpus where every attacker is blocked, with the trail on and with `record` replaced by a
no-op, alternately, N rounds each; prints the medians of the process's CPU seconds (wall time means
little on a shared, loaded machine), the time spent inside `record` itself, and the entries.

usage: .venv/bin/python bench/trail_cost.py [--lines 100000] [--attackers 5000] [--rounds 3]
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def corpus(lines: int, attackers: int) -> bytes:
    per = max(1, lines // attackers)
    out = []
    for a in range(attackers):
        ip = f"10.{a // 65536 % 256}.{a // 256 % 256}.{a % 256 or 1}"
        for i in range(per):
            out.append(f"Nov  1 00:{a % 60:02d}:{i % 60:02d} web-1 sshd[1]: Failed password for root from {ip} "
                       f"port {1000 + i} ssh2\n")
    return "".join(out).encode()


def run(data: bytes, trail_on: bool, folder: Path) -> tuple[float, int]:
    import os

    from core import paths
    from crypto import audit
    from secops import respond
    from secops.config import load_config
    from secops.daemon import Engine, ingest_stream
    from secops.stores import open_store

    state = Path(tempfile.mkdtemp(dir=folder))
    paths.STATE = state
    os.environ["GOVCTL_STATE"] = str(state)
    spent = [0.0]

    def timed_record(*args, **kwargs):  # the time inside the trail's appends, apart from the rest
        began = time.perf_counter()
        try:
            return audit.record(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - began
    respond.audit_record = timed_record if trail_on else (lambda *a, **k: None)
    cfgfile = state / "secops.yaml"
    cfgfile.write_text(json.dumps({"store": str(state / "s.db"), "enforcer": {"kind": "none"}}))
    cfg = load_config(cfgfile)
    engine = Engine(cfg, open_store(cfg))
    started = time.process_time()
    ingest_stream(engine, io.BytesIO(data), "bench", "auto", "auto", 1000)
    engine.store.flush()
    seconds = time.process_time() - started
    engine.store.close()
    entries = audit.entries(state / "audit", action="ban", limit=audit.LIST_MAX)["total"]
    return seconds, entries, spent[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--attackers", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = corpus(args.lines, args.attackers)
    lines = data.count(b"\n")
    times: dict[bool, list[float]] = {True: [], False: []}
    entries, in_record = 0, []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            for trail_on in (False, True):
                seconds, found, spent = run(data, trail_on, Path(folder))
                times[trail_on].append(seconds)
                if trail_on:
                    entries = found
                    in_record.append(spent)
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(json.dumps({"lines": lines, "attackers": args.attackers, "rounds": args.rounds,
                      "cpu_seconds_trail_off": times[False], "cpu_seconds_trail_on": times[True],
                      "wall_seconds_in_record": in_record,
                      "median_off": round(off, 3), "median_on": round(on, 3),
                      "lines_per_s_off": round(lines / off), "lines_per_s_on": round(lines / on),
                      "cost_percent": round((on / off - 1) * 100, 2), "ban_entries_on_trail": entries}, indent=1))


if __name__ == "__main__":
    main()
