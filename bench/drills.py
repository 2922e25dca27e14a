"""Drill figures: every shipped scenario run N times on the lab; median RTO, RPO, detection.

usage: sudo .venv/bin/python bench/drills.py [--runs 3] [--scenarios a,b] [--window-scale 60]

Monitoring runs with the SLO windows divided by --window-scale (and a 1 s interval) so that
back-to-back drills each start from a quiet monitor; say so beside the detection figures.
It injects real faults into the lab: run it when nobody else uses the lab.
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
GOVCTL = str(ROOT / ".venv" / "bin" / "govctl")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--scenarios", default="samecity-switchover,production-loss,site-loss,"
                                            "link-failure,backup-restore")
    ap.add_argument("--window-scale", type=int, default=60)
    a = ap.parse_args()
    spec_text = (ROOT / "monitors" / "slo.yaml").read_text()
    spec = Path(tempfile.mkdtemp()) / "slo-drills.yaml"
    spec.write_text(spec_text.replace("window_scale: 1 ", f"window_scale: {a.window_scale} ")
                    .replace("interval: 5s ", "interval: 1s "))
    subprocess.run([GOVCTL, "monitor", "up", "--stack", "lab", "--spec", str(spec)], check=True,
                   capture_output=True)
    rows = []
    try:
        for scenario in a.scenarios.split(","):
            runs = []
            for _ in range(a.runs):
                proc = subprocess.run([GOVCTL, "drill", "run", scenario, "--json"],
                                      capture_output=True, text=True)
                result = json.loads(proc.stdout)
                runs.append(result)
                m = result.get("measured", {})
                print(f"{scenario}: {result['verdict']} rto={m.get('rto_seconds')} "
                      f"rpo={m.get('rpo_transactions')}tx/{m.get('rpo_seconds')}s "
                      f"detection={m.get('detection_seconds')}", file=sys.stderr, flush=True)

            def median(key):
                values = [r["measured"][key] for r in runs
                          if r.get("measured", {}).get(key) is not None]
                return round(statistics.median(values), 2) if values else None

            rows.append({"scenario": scenario, "runs": len(runs),
                         "verdicts": [r["verdict"] for r in runs],
                         "rto_seconds": median("rto_seconds"),
                         "rpo_transactions": median("rpo_transactions"),
                         "rpo_seconds": median("rpo_seconds"),
                         "detection_seconds": median("detection_seconds"),
                         "targets": runs[0].get("targets"),
                         "gbt20988": [(r.get("gbt20988") or {}).get("level") for r in runs]})
    finally:
        subprocess.run([GOVCTL, "monitor", "down"], capture_output=True)
    print(json.dumps(rows, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
