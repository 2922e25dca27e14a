#!/usr/bin/env python3
"""The streaming engine's cost with cases (observables indexed as alerts attach to incidents), before/after.

usage: .venv/bin/python bench/cases_engine.py [--lines 60000] [--sources 600] [--baseline COMMIT] [--rounds 3]

Feeds the same sshd brute-force corpus (`sources` attackers, each line a failed password) through
secops.daemon.Engine into a fresh SQLite store, in one process per run, with PYTHONPATH on this checkout
and (with --baseline) on `git archive COMMIT`, alternately; prints CPU seconds per run and the medians.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RUN = r'''
import io, json, sys, time, resource
from secops.config import load_config
from secops.daemon import Engine, ingest_stream
from secops.stores import open_store
folder, lines, sources = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cfg_path = folder + "/secops.yaml"
open(cfg_path, "w").write(json.dumps({"store": folder + "/s.db", "enforcer": {"kind": "none"}}))
cfg = load_config(cfg_path)
# 20 lines a second: each source fails every `sources / 20` seconds, fast enough for the brute-force rules
data = "".join(f"Nov  1 {i // 20 // 3600 % 24:02d}:{i // 20 // 60 % 60:02d}:{i // 20 % 60:02d} web-1 sshd[1]: Failed password for "
               f"user{i % 7} from 203.0.{(i % sources) // 250}.{(i % sources) % 250 + 1} port {i} ssh2\n"
               for i in range(lines)).encode()
store = open_store(cfg)
engine = Engine(cfg, store, dry_run=True)
start = resource.getrusage(resource.RUSAGE_SELF)
ingest_stream(engine, io.BytesIO(data), "bench", "auto", "auto", 1000)
end = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"cpu": end.ru_utime + end.ru_stime - start.ru_utime - start.ru_stime,
                  "incidents": store.db.execute("SELECT count(*) FROM incidents").fetchone()[0],
                  "alerts": store.db.execute("SELECT count(*) FROM alerts").fetchone()[0]}))
'''


def run(tree: Path, lines: int, sources: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = subprocess.run([sys.executable, "-c", RUN, folder, str(lines), str(sources)], cwd=folder,
                             env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                             check=True)
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=60000)
    ap.add_argument("--sources", type=int, default=600)
    ap.add_argument("--baseline")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    trees = {"this": ROOT}
    tmp = tempfile.TemporaryDirectory()
    if args.baseline:
        base = Path(tmp.name) / "baseline"
        base.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
        trees["baseline"] = base
    results: dict[str, list[dict]] = {k: [] for k in trees}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            results[name].append(run(tree, args.lines, args.sources))
    summary = {name: {"cpu_median": statistics.median(r["cpu"] for r in runs), "cpu": [round(r["cpu"], 3) for r in runs],
                      "incidents": runs[0]["incidents"], "alerts": runs[0]["alerts"]} for name, runs in results.items()}
    if "baseline" in summary:
        summary["ratio_cpu"] = summary["this"]["cpu_median"] / summary["baseline"]["cpu_median"]
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
