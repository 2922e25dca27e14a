#!/usr/bin/env python3
"""Benchmark of the 等保 pack in the real engine: `pulumi preview` of a stack exporting the
topology facts (tests/policies/djcp_pack/engine_program), without and with `--policy-pack
policies/djcp_pack`, for the lab topology and the broken one. The difference is what the
Python analyzer plugin adds to a preview.

Usage: .venv/bin/python bench/infra_plan_policy.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PULUMI = ROOT / ".tools" / "pulumi" / "pulumi"
VENV = ROOT / ".venv"
TOPOLOGIES = {"lab": ROOT / "infra" / "topologies" / "lab.yaml",
              "broken-lab": ROOT / "tests" / "policies" / "djcp_pack" / "topologies" / "broken-lab.yaml"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "project"
        shutil.copytree(ROOT / "tests" / "policies" / "djcp_pack" / "engine_program", work)
        (work / "Pulumi.yaml").write_text(f"name: djcp-bench\nruntime:\n  name: python\n  options:\n"
                                          f"    virtualenv: {VENV}\n")
        (Path(tmp) / "state").mkdir()
        env = dict(os.environ, PATH=f"{PULUMI.parent}:{VENV / 'bin'}:{os.environ['PATH']}",
                   PULUMI_HOME=f"{tmp}/home", PULUMI_BACKEND_URL=f"file://{tmp}/state",
                   PULUMI_SKIP_UPDATE_CHECK="true", PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
                   PULUMI_CONFIG_PASSPHRASE="bench")

        def pulumi(*argv):
            return subprocess.run([str(PULUMI), *argv, "--non-interactive"], cwd=work, env=env,
                                  capture_output=True, text=True)

        pulumi("stack", "init", "bench")
        for name, path in TOPOLOGIES.items():
            pulumi("config", "set", "govctl:topology", str(path))
            for label, extra in (("without pack", []), ("with pack", ["--policy-pack", str(ROOT / "policies" / "djcp_pack")])):
                times, code = [], None
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    code = pulumi("preview", *extra).returncode
                    times.append(time.perf_counter() - started)
                print(f"{name:<11} preview {label:<13} median {statistics.median(times):5.2f} s "
                      f"(min {min(times):.2f}, {len(times)} runs)  exit {code}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
