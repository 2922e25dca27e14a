"""`govctl infra plan`: the offline plan of a stack (wired into the `infra` group by infra.py).

No Typer app here on purpose: the function is registered as a command of `govctl infra`.
"""
from __future__ import annotations

import time
from collections import Counter

from core.errors import BadInput, GovctlError
from ..ui import console, err_console, print_json

# Inputs worth a column in the table (wire names, as the engine and policies see them), in the
# order shown; the JSON output has every input.
KEY_PROPERTIES = (
    "cidrBlock", "cidr", "secondaryCidrBlock", "zoneId", "zoneIdSlaveA", "availabilityZone",
    "privateIp", "privateIpAddress", "portRange", "cidrIp", "ipv6CidrIp", "prefixListId",
    "remoteIpPrefix", "portRangeMin", "sourceIpAddress", "destinationPort", "action",
    "peerTransitRouterId", "peerTransitRouterRegionId", "crossBackupRegion",
    "sourceEndpointInstanceId", "destinationEndpointInstanceId", "destinationEndpointRegion",
    "keySpec", "retentionPeriod", "category", "vswitchId", "policies", "volumeType", "bucket",
    "destination", "addrPoolId", "protocolPort", "address", "securityGroupId", "name",
)


def _key_properties(inputs: dict) -> str:
    shown = []
    for key in KEY_PROPERTIES:
        value = inputs.get(key)
        if value not in (None, "", [], {}):
            shown.append(f"{key}={value}")
        if len(shown) == 4:
            break
    return ", ".join(shown)


def plan(stack: str, json_output: bool) -> None:
    """Show the resource graph a stack would create, offline, under Pulumi's mock runtime.

    Example: govctl infra plan --stack alicloud-example --json
    """
    from infra.plan import PlanError, plan_stack

    started = time.monotonic()
    if not json_output:
        err_console.print(f"planning stack {stack!r} under Pulumi's mock runtime…", highlight=False)
    try:
        result = plan_stack(stack)
    except PlanError as err:
        raise (BadInput if err.exit_code == 2 else GovctlError)(
            f"plan of stack {stack!r} refused: {err}") from None
    seconds = round(time.monotonic() - started, 2)
    resources = [r for r in result["resources"] if r["custom"] and not r["type"].startswith("pulumi:providers:")]
    if json_output:
        print_json({"stack": stack, "backend": result["backend"], "topology": result["topology"],
                     "seconds": seconds, "resource_count": len(resources),
                     "resources": result["resources"], "outputs": result["outputs"]})
        return
    from rich.table import Table

    table = Table(title=f"plan of {stack} ({result['backend']}, {result['topology']})")
    for column in ("center", "region", "type", "name", "key properties"):
        table.add_column(column, overflow="fold")
    for r in sorted(resources, key=lambda r: (r["center"] or "~", r["type"], r["name"])):
        table.add_row(r["center"] or "-", r["region"] or "-", r["type"], r["name"],
                      _key_properties(r["inputs"]))
    console.print(table)
    counts = Counter(r["center"] or "(cross-center)" for r in resources)
    console.print(f"{len(resources)} resources to create: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                  + f" — planned in {seconds} s, nothing touched", highlight=False)
