#!/usr/bin/env python3
"""Latency of the compare and remediation routes (policies/api_tracking.py) as the history grows.

usage: PYTHONPATH=$PWD .venv/bin/python bench/compliance_tracking.py [--records 4,40] [--rounds 20]

Puts N real 等保 L3 reports of the saved lab evidence (tests/policies/compliance/fixtures/lab; every other
one with remote administration broken) on record in a scratch state folder, then times, in-process through
the console's API (TestClient, bearer token), GET /compliance/history, GET /compliance/compare of the two
newest and GET /compliance/remediation (which reads the newest report of each standard and level).
Prints one JSON document: the median and p95 in milliseconds per route and history size."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", default="4,40", help="history sizes, comma-separated")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from core import paths
    from policies.api_tracking import EXTENSION
    from policies.compliance import COMPLIANT, NON_COMPLIANT
    from secops.api import Tokens, create_app
    from tests.policies.compliance.conftest import evaluate
    from tests.policies.compliance.test_diff import with_remote_admin

    reports = [evaluate("djcp", with_remote_admin(v)) for v in (COMPLIANT, NON_COMPLIANT)]
    texts = [json.dumps(r, ensure_ascii=False) for r in reports]
    results = {"report_bytes": len(texts[0].encode()), "sizes": {}}
    for size in (int(s) for s in args.records.split(",")):
        with tempfile.TemporaryDirectory(prefix="govctl-bench-tracking-") as scratch:
            state = Path(scratch) / "state"
            folder = state / "compliance" / "reports"
            folder.mkdir(parents=True)
            paths.STATE = state
            os.environ["GOVCTL_STATE"] = str(state)
            for n in range(size):
                stamped = texts[n % 2].replace(reports[n % 2]["generated"], f"2026-{1 + n // 28:02d}-{1 + n % 28:02d}T08:00:00+00:00")
                (folder / f"djcp-L3-{n:03d}.json").write_text(stamped, encoding="utf-8")
            tokens = Tokens(Path(scratch) / "tokens.yaml")
            client = TestClient(create_app(Path(scratch) / "s.db", Path(scratch) / "tokens.yaml", extensions=[EXTENSION]))
            client.headers["Authorization"] = f"Bearer {tokens.add('auditor-user', 'auditor')}"
            newest = [e["name"] for e in client.get("/compliance/history").json()["records"][:2]]
            routes = {"history": ("/compliance/history", None),
                      "compare": ("/compliance/compare", {"a": newest[1], "b": newest[0]}),
                      "remediation": ("/compliance/remediation", None)}
            timings = {}
            for name, (path, params) in routes.items():
                spent = []
                for _ in range(args.rounds):
                    start = time.perf_counter()
                    answer = client.get(path, params=params)
                    spent.append((time.perf_counter() - start) * 1000)
                    assert answer.status_code == 200, answer.text
                spent.sort()
                timings[name] = {"median_ms": round(statistics.median(spent), 1),
                                 "p95_ms": round(spent[int(0.95 * (len(spent) - 1))], 1)}
            results["sizes"][size] = timings
    results["load_average"] = os.getloadavg()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
