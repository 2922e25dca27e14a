#!/usr/bin/env python3
"""Benchmark compliance report generation for the lab: each layer's collection, the evaluation of
both standards, each report format, and sealing an evidence pack.

  .venv/bin/python bench/comply_report.py [--stack lab] [--host-audit FILE] [--runs 3] [--json]

Collection reads the running lab once (the host audit is the slow part; --host-audit FILE reuses a
saved `govctl audit --json` result and times only the rest). Evaluation, rendering and packing are
repeated --runs times on that evidence; the pack is sealed with a throwaway keystore (never the
checkout's state/)."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from timing import timed  # noqa: E402  (bench/ is the script folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="lab")
    parser.add_argument("--host-audit", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from policies.compliance import catalog, collect, engine, pack, render
    from policies.compliance.assessment import Assessment
    from policies.compliance.checks import Evidence

    figures: dict = {"stack": args.stack, "runs": args.runs, "collect_seconds": {}}
    marks: list[tuple[str, float]] = []
    layers = collect.collect(args.stack, args.host_audit, progress=lambda layer: marks.append((layer, time.perf_counter())))
    marks.append(("end", time.perf_counter()))
    for (name, started), (_, ended) in zip(marks, marks[1:]):
        figures["collect_seconds"][name] = round(ended - started, 2)
    figures["collect_total_seconds"] = round(sum(figures["collect_seconds"].values()), 2)
    figures["layer_status"] = {n: d["status"] for n, d in layers.items()}

    evidence = Evidence(layers, 3)
    reports, timings = {}, {}
    for standard in ("djcp", "mlps-crypto"):
        cat = catalog.load(standard, 3)
        runs = []
        for _ in range(args.runs):
            reports[standard], seconds = timed(lambda: engine.evaluate(cat, evidence, Assessment()))
            runs.append(seconds)
        timings[f"evaluate {standard}"] = runs
        for fmt in render.FORMATS:
            runs = []
            for _ in range(args.runs):
                data, seconds = timed(lambda: render.render(reports[standard], fmt))
                runs.append(seconds)
            timings[f"render {standard} {fmt}"] = runs
            figures.setdefault("sizes_bytes", {})[f"{standard}.{fmt}"] = len(data)
        figures.setdefault("counts", {})[standard] = reports[standard]["counts"]

    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        (state / "crypto").mkdir(parents=True)
        (state / "crypto" / "config.yaml").write_text("suite: gm\nkdf_iterations: 100000\n")
        os.environ["GOVCTL_STATE"] = str(state)
        os.environ["GOVCTL_CRYPTO_PASSPHRASE"] = "bench passphrase"
        from core import paths

        paths.STATE = state
        from crypto.audit import open_keystore

        keystore = open_keystore()
        runs, verify_runs = [], []
        for n in range(args.runs):
            out = Path(tmp) / f"pack{n}"
            manifest, seconds = timed(lambda: pack.write(out, list(reports.values()), layers, Assessment(), keystore))
            runs.append(seconds)
            _, seconds = timed(lambda: pack.verify(out))
            verify_runs.append(seconds)
        timings["pack (both standards, 4 formats each)"] = runs
        timings["verify pack"] = verify_runs
        figures["pack_files"] = len(manifest["files"])
    figures["median_seconds"] = {k: round(statistics.median(v), 3) for k, v in timings.items()}
    figures["min_max_seconds"] = {k: [round(min(v), 3), round(max(v), 3)] for k, v in timings.items()}
    figures["report_pdf_from_lab_seconds"] = round(figures["collect_total_seconds"]
                                                   + figures["median_seconds"]["evaluate djcp"]
                                                   + figures["median_seconds"]["render djcp pdf"], 1)

    if args.json:
        print(json.dumps(figures, ensure_ascii=False, indent=1))
        return
    print(f"collect ({args.stack}):", ", ".join(f"{k} {v}s" for k, v in figures["collect_seconds"].items()),
          f"= {figures['collect_total_seconds']}s")
    for k, v in figures["median_seconds"].items():
        low, high = figures["min_max_seconds"][k]
        print(f"{k:<42} {v:8.3f} s (median of {args.runs}; {low:.3f}-{high:.3f})")
    print(f"djcp L3 PDF from the lab, end to end: {figures['report_pdf_from_lab_seconds']} s")


if __name__ == "__main__":
    main()
