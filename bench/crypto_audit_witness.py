#!/usr/bin/env python3
"""What the audit log's witness costs: a checkpoint and a full `verify`, with the file witness and
without, on the same machine, interleaved so that load from other work affects both alike.

  .venv/bin/python bench/crypto_audit_witness.py [--entries 10000] [--checkpoints 30]

Runs in a throwaway state directory (its own keystore, logs and witness), never the checkout's state/."""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from timing import timed  # noqa: E402  (bench/ is the script folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--checkpoints", type=int, default=30)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="govctl-bench-witness-"))
    try:
        run(work, args.entries, args.checkpoints)
    finally:
        shutil.rmtree(work)


def run(work: Path, entries: int, checkpoints: int) -> None:
    os.environ.update(GOVCTL_STATE=str(work), GOVCTL_CRYPTO_PASSPHRASE=os.urandom(16).hex(), GOVCTL_ACTOR="bench")
    from crypto import audit
    from crypto.keystore import Keystore

    keystore = Keystore.open(events=None)
    setups = {"without a witness": None, "with the file witness": "default"}
    logs = {}
    for label, witness in setups.items():
        log = audit.AuditLog(work / label.replace(" ", "-"), witness=witness)
        for i in range(entries):
            log.append("ops@prod", "harden.run", {"host": f"web-{i % 3}", "run": i})
        logs[label] = log
    signing = {label: [] for label in setups}
    for _ in range(checkpoints):
        for label, log in logs.items():
            log.append("ops@prod", "ban.add", {"ip": "203.0.113.9"})
            signing[label].append(timed(lambda: log.checkpoint(keystore))[1])
    trusted = list(keystore.public_keys("audit").values())
    verifying = {label: [] for label in setups}
    for _ in range(3):
        for label, log in logs.items():
            report, seconds = timed(lambda: audit.verify_log(log.dir, trusted, setups[label]))
            assert report.ok, report.problems
            verifying[label].append(seconds)
    for label in setups:
        print(f"{label}: checkpoint median {statistics.median(signing[label]) * 1000:.1f} ms "
              f"({checkpoints} runs); verify of {entries + checkpoints} entries and {checkpoints} checkpoints "
              f"median {statistics.median(verifying[label]):.2f} s (3 runs)")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
