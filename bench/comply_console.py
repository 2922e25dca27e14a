#!/usr/bin/env python3
"""Benchmark the console's compliance routes (issue #19) on the saved lab evidence
(tests/policies/compliance/fixtures/lab): a report on record from POST to ready (assessment, four
renderings with the PDF, SM2-sealed pack), opening it whole and filtered, the pack as a zip, and the
verification of that zip uploaded.

  .venv/bin/python bench/comply_console.py [--standard djcp] [--level 3] [--runs 5] [--json]

In-process (FastAPI's TestClient, a bearer token: no server, no sign-in), on a throwaway state folder
(never the checkout's state/)."""
from __future__ import annotations

import argparse
import json
import os
import shutil
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
    parser.add_argument("--standard", default="djcp")
    parser.add_argument("--level", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="govctl-bench-comply-"))
    state = scratch / "state"
    (state / "crypto").mkdir(parents=True)
    (state / "crypto" / "config.yaml").write_text("suite: gm\nkdf_iterations: 100000\n")
    os.environ.update(GOVCTL_STATE=str(state), GOVCTL_CRYPTO_PASSPHRASE="bench", GOVCTL_ACTOR="bench")
    from core import paths
    paths.STATE = state

    from fastapi.testclient import TestClient

    from policies import api as compliance_api
    from policies.compliance import records
    from secops.api import Tokens, create_app

    shutil.copytree(ROOT / "tests" / "policies" / "compliance" / "fixtures" / "lab", records.saved_evidence_dir())
    token = Tokens(scratch / "tokens.yaml").add("bench-auditor", "auditor")
    client = TestClient(create_app(scratch / "s.db", scratch / "tokens.yaml", extensions=[compliance_api.EXTENSION]),
                        headers={"Authorization": f"Bearer {token}"})

    figures = {"standard": args.standard, "level": args.level, "runs": args.runs, "seconds": {}}
    ready = []
    for _ in range(args.runs):
        start = time.perf_counter()
        record_id = client.post("/compliance/reports", json={"standard": args.standard, "level": args.level}).json()["id"]
        while client.get(f"/compliance/reports/{record_id}").json()["status"] == "running":
            time.sleep(0.05)
        ready.append(time.perf_counter() - start)
    figures["seconds"]["post_to_ready"] = ready

    def many(name, fn):
        figures["seconds"][name] = [timed(fn)[1] for _ in range(args.runs)]
        return fn()

    whole = many("open_whole", lambda: client.get(f"/compliance/reports/{record_id}/report"))
    many("open_filtered", lambda: client.get(f"/compliance/reports/{record_id}/report",
                                             params={"verdict": "不符合", "high_risk": "true"}))
    pack = many("pack_zip", lambda: client.get(f"/compliance/reports/{record_id}/pack"))
    verdict = many("verify_upload", lambda: client.post("/compliance/verify", content=pack.content))
    assert verdict.json()["ok"] is True
    figures["bytes"] = {"open_whole": len(whole.content), "pack_zip": len(pack.content)}
    figures["load_average"] = os.getloadavg()
    shutil.rmtree(scratch)
    if args.json:
        print(json.dumps(figures, indent=1))
        return
    print(f"{args.standard} L{args.level}, {args.runs} runs, load {figures['load_average'][0]:.1f}")
    for name, values in figures["seconds"].items():
        print(f"  {name:<15} median {statistics.median(values):8.3f} s   max {max(values):8.3f} s")
    for name, size in figures["bytes"].items():
        print(f"  {name:<15} {size:,} bytes")


if __name__ == "__main__":
    main()
