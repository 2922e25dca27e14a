#!/usr/bin/env python3
"""Benchmark the tamper-evident audit log: appends per second, then inclusion and consistency
proof sizes and times, and the full offline verification, at 10^6 entries.

  .venv/bin/python bench/crypto_auditlog.py [--entries 1000000] [--json]

Runs in a throwaway state directory (its own keystore and log), never the checkout's state/."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from timing import timed  # noqa: E402  (bench/ is the script folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()
    n, half = args.entries, args.entries // 2

    work = Path(tempfile.mkdtemp(prefix="govctl-bench-audit-"))
    try:
        run(work, n, half, args.json)
    finally:
        shutil.rmtree(work)


def run(work: Path, n: int, half: int, as_json: bool) -> None:
    os.environ.update(GOVCTL_STATE=str(work), GOVCTL_CRYPTO_PASSPHRASE=os.urandom(16).hex(), GOVCTL_ACTOR="bench")
    from crypto import audit
    from crypto.keystore import Keystore

    keystore = Keystore.open(events=None)
    log = audit.AuditLog(work / "audit")
    hosts = ["web-1", "db-1", "bastion-1"]
    actions = ["deploy.up", "harden.run", "ban.add", "incident.update"]

    def append(count: int) -> None:
        for i in range(count):
            log.append("ops@prod", actions[i % 4], {"host": hosts[i % 3], "center": "prod", "run": i})

    _, first = timed(lambda: append(half))
    _, sign_half = timed(lambda: log.checkpoint(keystore))
    _, second = timed(lambda: append(n - half))
    log.checkpoint(keystore)
    trusted = list(keystore.public_keys("audit").values())

    inclusion, inclusion_s = timed(lambda: log.prove_inclusion(half + 123))
    consistency, consistency_s = timed(lambda: log.prove_consistency(half))
    (_, why), check_inclusion_s = timed(lambda: audit.verify_proof(inclusion, trusted))
    (ok_consistency, _), check_consistency_s = timed(lambda: audit.verify_proof(consistency, trusted))
    report, verify_s = timed(lambda: audit.verify_log(log.dir, trusted))
    assert report.ok and ok_consistency, (report.problems, why)

    results = {
        "entries": n,
        "appends_per_s": n / (first + second),
        "checkpoint_sign_s": sign_half,
        "entries_bytes": log.path("entries.jsonl").stat().st_size,
        "leaf_cache_bytes": log.path("leaves.bin").stat().st_size,
        "inclusion": {"hashes": len(inclusion["path"]), "path_bytes": 32 * len(inclusion["path"]),
                      "proof_file_bytes": len(json.dumps(inclusion)), "build_s": inclusion_s,
                      "verify_s": check_inclusion_s},
        "consistency": {"hashes": len(consistency["path"]), "path_bytes": 32 * len(consistency["path"]),
                        "proof_file_bytes": len(json.dumps(consistency)), "build_s": consistency_s,
                        "verify_s": check_consistency_s},
        "full_verify_s": verify_s,
        "load": os.getloadavg()[0],
    }
    if as_json:
        print(json.dumps(results, indent=2))
        return
    print(f"{n} entries: {results['appends_per_s']:,.0f} appends/s (one process, SM3 leaves); "
          f"SM2 checkpoint {sign_half * 1000:.0f} ms; log {results['entries_bytes'] / 1e6:.0f} MB + leaf cache "
          f"{results['leaf_cache_bytes'] / 1e6:.0f} MB")
    for kind in ("inclusion", "consistency"):
        r = results[kind]
        print(f"{kind} proof: {r['hashes']} hashes = {r['path_bytes']} B (proof file with entry and signed "
              f"checkpoint(s) {r['proof_file_bytes']} B); built in {r['build_s']:.1f} s, verified in "
              f"{r['verify_s'] * 1000:.0f} ms")
    print(f"full offline verification: {verify_s:.1f} s; load average {results['load']:.1f}")


if __name__ == "__main__":
    main()
