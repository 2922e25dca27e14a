"""A minimal Pulumi program for running the 等保 pack through the real engine without a cloud:
it exports the topology facts exactly as the cloud backends do (cloud_common.stack_facts), which
is what the pack's stack rules read. Config: govctl:topology, govctl:auditRetentionDays."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))

import pulumi  # noqa: E402

from infra.backends.cloud_common import stack_facts  # noqa: E402
from infra.topology import load_topology  # noqa: E402

config = pulumi.Config("govctl")
topology = load_topology(config.require("topology"))
audit = {"enabled": True, "retention_days": config.get_int("auditRetentionDays") or 180,
         "evidence": "declared by the test program"}
for key, value in stack_facts(topology, "policy-test", audit).items():
    pulumi.export(key, value)
