#!/usr/bin/env python3
"""Latency of comparing two uploaded signed packs (POST /compliance/compare, policies/api_tracking.py).

usage: PYTHONPATH=$PWD .venv/bin/python bench/compare_uploads.py [--formats json] [--rounds 7]

Seals two real 等保 L3 packs of the saved lab evidence (tests/policies/compliance/fixtures/lab; the later one
with remote administration broken on every host) with a scratch keystore, zips them as the console downloads
them, then times, in-process through the console's API (TestClient, bearer token), the multipart upload of
both, their checks, unzipping, SM2/SM3 verification and the diff. Prints one JSON document: the zips' sizes
and the median, min and max in milliseconds."""
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
    parser.add_argument("--formats", default="json", help="report formats in each pack, e.g. json or json,csv,html,pdf")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from core import paths
    from crypto.audit import AuditLog, open_keystore
    from policies.api_tracking import EXTENSION
    from policies.compliance import COMPLIANT, NON_COMPLIANT, pack
    from policies.compliance.assessment import Assessment
    from secops.api import Tokens, create_app
    from tests.policies.compliance.conftest import evaluate
    from tests.policies.compliance.test_diff import with_remote_admin
    from tests.policies.test_compare_uploads_api import zipped

    with tempfile.TemporaryDirectory(prefix="govctl-bench-compare-") as scratch:
        folder = Path(scratch)
        state = folder / "state"
        (state / "crypto").mkdir(parents=True)
        (state / "crypto" / "config.yaml").write_text("suite: gm\nkdf_iterations: 100000\n")
        paths.STATE = state
        os.environ.update(GOVCTL_STATE=str(state), GOVCTL_CRYPTO_PASSPHRASE="bench compare passphrase")
        AuditLog._open_logs.clear()
        zips = {}
        for name, verdict in (("q3", COMPLIANT), ("q4", NON_COMPLIANT)):
            layers = with_remote_admin(verdict)
            pack.write(folder / name, [evaluate("djcp", layers)], layers, Assessment(), open_keystore(),
                       formats=tuple(args.formats.split(",")))
            zips[name] = zipped(folder / name)
        key = Tokens(folder / "tokens.yaml").add("bench", "auditor")
        client = TestClient(create_app(folder / "s.db", folder / "tokens.yaml", extensions=[EXTENSION]))
        times = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            answer = client.post("/compliance/compare", headers={"Authorization": f"Bearer {key}"},
                                 files={"a_pack": ("q3.zip", zips["q3"]), "b_pack": ("q4.zip", zips["q4"])})
            times.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200, answer.text
        print(json.dumps({"formats": args.formats, "zip_bytes": {k: len(v) for k, v in zips.items()},
                          "rounds": args.rounds, "median_ms": round(statistics.median(times)),
                          "min_ms": round(min(times)), "max_ms": round(max(times)),
                          "load_average": [round(x, 1) for x in os.getloadavg()]}))


if __name__ == "__main__":
    main()
