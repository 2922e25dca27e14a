"""The ops pages' routes on the console's API (issue #19, core.api_extension): topology and availability.

    GET /ops/topology                      the stack's centers, zones, hosts, links, service, replication
                                           with live health ("unknown" when Prometheus cannot be read)
    GET /ops/availability?from=now-30d&to=now
                                           `govctl availability report`'s figures, the budget chart, the
                                           burn-rate alerts firing

The stack is the console's (`govctl console serve --stack lab`); `extension(stack)` builds the routes
for it. `EXTENSION` is the routes without a stack: the topology then says how to name one.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Query

from core.api_extension import ApiExtension
from core.errors import BadInput, GovctlError

OPS_READ = "ops-read"
PERMISSIONS = {OPS_READ: frozenset({"ops", "security", "auditor"})}


def extension(stack: str | None, prometheus: str | None = None, spec: Path | None = None) -> ApiExtension:
    """The ops routes for the console's stack; `prometheus` and `spec` default to the running monitor's."""

    def build(allowed) -> APIRouter:
        from infra.outputs import read_stack_outputs

        from . import ops_view

        router = APIRouter()

        @router.get("/ops/topology", tags=["ops"],
                    responses={409: {"description": "no stack configured, or the stack is not deployed"}})
        def topology(who=Depends(allowed(OPS_READ))):
            """Centers → zones → hosts, links (primary/standby), the service address and replication,
            each with its health now (up, down, degraded or unknown)."""
            if not stack:
                raise HTTPException(409, "the console was started without a stack: start it with "
                                         "`govctl console serve --stack lab` (or let `govctl up` deploy one)")
            try:
                outputs = read_stack_outputs(stack)
            except GovctlError as exc:  # not deployed, or outputs of the wrong shape: the message says what to run
                raise HTTPException(409, str(exc)) from None
            return ops_view.topology(stack, outputs, ops_view.read_live_health(prometheus))

        @router.get("/ops/availability", tags=["ops"])
        def availability(start: str = Query("now-30d", alias="from", max_length=64,
                                            description="now, now-30d, Unix seconds or ISO 8601"),
                         end: str = Query("now", alias="to", max_length=64),
                         who=Depends(allowed(OPS_READ))):
            """Per service and center: SLI, coverage, verdict (数据不足 below the spec's coverage),
            outages, the error budget over the period and the burn-rate alerts firing now."""
            try:
                return ops_view.availability(start, end, spec, prometheus)
            except BadInput as exc:
                raise HTTPException(422, str(exc)) from None

        return router

    return ApiExtension("monitors", build, PERMISSIONS)


EXTENSION = extension(None)
