#!/usr/bin/env python3
"""`govctl up` from a stopped platform and when already up (issue #17's figures).

usage: GOVCTL_LAB_PREFIX=bp- .venv/bin/python bench/platform_up.py [--warm 5] [--keep] [--out r.json]

Root, on a machine where the lab can run. 1. `govctl down` (the lab too), so the platform is stopped but
the machine warm (the lab's root filesystem, Pulumi's plugins and the npm/pip caches in place). 2. One
`govctl up --json` from there ("cold"): wall clock and each component's state and check time. 3. `--warm`
more runs of `govctl up --json` with everything up ("already up"). 4. `govctl down` unless --keep.
The 1-minute load average is recorded before each run. Prints JSON and a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOVCTL = [str(ROOT / ".venv" / "bin" / "govctl")]


def run(*args: str, timeout: float = 1800) -> tuple[float, subprocess.CompletedProcess]:
    started = time.monotonic()
    proc = subprocess.run([*GOVCTL, *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    return time.monotonic() - started, proc


def up_once(label: str) -> dict:
    load = os.getloadavg()[0]
    seconds, proc = run("up", "--json")
    if proc.returncode != 0:
        sys.exit(f"govctl up failed ({label}, exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    report = json.loads(proc.stdout)
    components = report.get("components", {})
    states = {name: c.get("state") for name, c in components.items()}
    checks = {name: c.get("check_seconds") for name, c in components.items()}
    print(f"{label}: {seconds:.1f} s (load {load:.1f}) {states}", file=sys.stderr)
    return {"run": label, "wall_seconds": round(seconds, 1), "load_1min_before": round(load, 1),
            "all_up": report.get("up"), "states": states, "check_seconds": checks}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warm", type=int, default=5, help="runs with everything up (default 5)")
    ap.add_argument("--keep", action="store_true", help="leave the platform up at the end")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("the platform's lab needs root")
    seconds, proc = run("down", "--json")
    if proc.returncode != 0:
        sys.exit(f"govctl down failed: {proc.stderr[-2000:]}")
    runs = [up_once("cold (platform stopped, warm machine)")]
    runs += [up_once(f"already up #{i + 1}") for i in range(a.warm)]
    if not a.keep:
        run("down", "--json")
    warm = [r["wall_seconds"] for r in runs[1:]]
    out = {"machine": "2 cores, 24 GiB", "cold_seconds": runs[0]["wall_seconds"],
           "already_up_seconds": warm, "already_up_max": max(warm) if warm else None,
           "goals": {"cold_seconds": 180, "already_up_seconds": 10}, "runs": runs,
           "load_average_at_end": os.getloadavg()}
    print(json.dumps(out, indent=2, ensure_ascii=False))
    if a.out:
        a.out.write_text(json.dumps(out, indent=2, ensure_ascii=False))
    print("\n| run | load (1 min) | wall |\n|---|---|---|", file=sys.stderr)
    for r in runs:
        print(f"| {r['run']} | {r['load_1min_before']} | {r['wall_seconds']} s |", file=sys.stderr)


if __name__ == "__main__":
    main()
