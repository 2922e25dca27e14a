"""The offline plan: run the govctl Pulumi program under Pulumi's own mock runtime and record the
resource graph it would create (types, names, inputs, parent, provider, center and region).

Nothing talks to a cloud: `pulumi.runtime.set_mocks` replaces the engine, and a MockMonitor
subclass records every registration. set_mocks is process-global, so each plan runs in a fresh
interpreter (`python -m infra.plan`), fed the stack's config on stdin, answering JSON on stdout.
"""
from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1
PROVIDER_PREFIX = "pulumi:providers:"
COMPUTED = "<computed>"  # a value only the cloud knows (an ID, an assigned address)
GROUP_TYPES = {"center": "govctl:cloud:Center", "region": "govctl:cloud:Region"}

# Answers of data-source calls a program makes while rendering; the plan has no cloud to ask.
CANNED_INVOKES = {
    "alicloud:index/getCallerIdentity:getCallerIdentity": {
        "accountId": "<account-id>", "arn": "acs:ram::<account-id>:root", "id": "<account-id>",
        "identityType": "Account"},
}


class PlanError(Exception):
    """The program refused to render (bad topology or config: exit 2) or failed (exit 1)."""

    def __init__(self, message: str, exit_code: int, resources: list[dict] | None = None):
        super().__init__(message)
        self.exit_code = exit_code
        self.resources = resources or []


def plan_config(config: dict[str, str], stack: str) -> dict[str, Any]:
    """Plan the program with flat `govctl:*` config in a fresh process; return the graph."""
    proc = subprocess.run([sys.executable, "-m", "infra.plan", stack], input=json.dumps(config),
                          capture_output=True, text=True)
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise PlanError(f"the plan process failed (exit {proc.returncode}):\n"
                        f"{(proc.stderr or proc.stdout).strip()[-4000:]}", EXIT_FAILURE) from None
    if "error" in result:
        raise PlanError(result["error"], result.get("exit_code", EXIT_FAILURE), result.get("resources"))
    return result


def plan_stack(stack: str) -> dict[str, Any]:
    """Plan a stack defined in infra/stacks/<stack>.yaml."""
    from infra.engine import StackDefinition

    definition = StackDefinition.load(stack)
    result = plan_config(definition.pulumi_config(), stack)
    result["backend"] = definition.backend
    result["topology"] = str(definition.topology)
    return result


# -- the child process ----------------------------------------------------------------------
def _redact(value: Any) -> Any:
    from pulumi.output import Unknown
    from pulumi.runtime.rpc import is_rpc_secret

    if is_rpc_secret(value):
        return "[secret]"
    if isinstance(value, Unknown):
        return COMPUTED
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items() if k != "__provider"}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _recording_runtime(stack: str):
    import pulumi
    from pulumi.runtime.mocks import MockMonitor

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs):
            # The new resource's outputs are its inputs; computed attributes stay unset.
            return f"{args.name}-id", dict(args.inputs)

        def call(self, args: pulumi.runtime.MockCallArgs):
            return CANNED_INVOKES.get(args.token, {})

    class RecordingMonitor(MockMonitor):
        def __init__(self, mocks):
            super().__init__(mocks)
            self.recorded: list[dict[str, Any]] = []

        def RegisterResource(self, request):
            response = super().RegisterResource(request)
            if request.type != "pulumi:pulumi:Stack":
                self.recorded.append({
                    "urn": response.urn, "type": request.type, "name": request.name,
                    "custom": bool(request.custom), "parent": request.parent or None,
                    "provider": request.provider.rsplit("::", 1)[0] if request.provider else None,
                    "inputs": _redact(self.resources[response.urn].state)})
            return response

    mocks = Mocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="govctl", stack=stack, preview=True, monitor=monitor)
    return monitor


def annotate(recorded: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add `center` and `region` to each resource from its ancestors and its provider."""
    by_urn = {r["urn"]: r for r in recorded}

    def ancestor(r: dict, kind: str) -> dict | None:
        while r is not None:
            if r["type"] == GROUP_TYPES[kind]:
                return r
            r = by_urn.get(r["parent"])
        return None

    out = []
    for r in recorded:
        center = ancestor(r, "center")
        region_group = ancestor(r, "region")
        provider = by_urn.get(r["provider"]) if r["provider"] else None
        region = (provider or {}).get("inputs", {}).get("region") or \
            (center or {}).get("inputs", {}).get("region") or (region_group or {}).get("name")
        if r["type"].startswith(PROVIDER_PREFIX):
            region = r["inputs"].get("region")
        out.append({**r, "center": center["name"] if center else None, "region": region})
    return out


async def _resolve(value: Any) -> Any:
    """Plain values of the stack outputs; what only the cloud would know shows as <computed>."""
    import pulumi

    if isinstance(value, pulumi.Output):
        if not await value.is_known():
            return COMPUTED
        return await _resolve(await value.future())
    if isinstance(value, dict):
        return {k: await _resolve(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [await _resolve(v) for v in value]
    return value


def _child(stack: str) -> int:
    config = json.loads(sys.stdin.read() or "{}")
    import pulumi
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    monitor = _recording_runtime(stack)
    pulumi.runtime.set_all_config(config)
    from infra.backends import deploy_stack

    outputs: dict[str, Any] = {}

    def program():
        outputs["rendered"] = deploy_stack(pulumi.Config("govctl"))

    try:
        _sync_await(run_pulumi_func(program))
        resolved = _sync_await(_resolve(outputs.get("rendered", {})))
    except pulumi.RunError as err:
        print(json.dumps({"error": str(err), "exit_code": EXIT_BAD_INPUT,
                          "resources": annotate(monitor.recorded)}, ensure_ascii=False, default=str))
        return EXIT_BAD_INPUT
    except Exception as err:  # the message is the plan's result; the traceback helps the author
        import traceback

        print(json.dumps({"error": f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=8)}",
                          "exit_code": EXIT_FAILURE, "resources": annotate(monitor.recorded)},
                         ensure_ascii=False, default=str))
        return EXIT_FAILURE
    print(json.dumps({"stack": stack, "resources": annotate(monitor.recorded),
                      "outputs": _redact(resolved)}, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1] if len(sys.argv) > 1 else "plan"))
