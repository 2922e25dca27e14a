"""What govctl's batch modules (govctl_state, govctl_files) share: each check answers as the loop element it
stands for, named by its check, so govctl splits one module call back into separate checks
(hardening/runner.py, SUB_CHECKS)."""

SKIPPED = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}


def item_of(check):
    return {"id": check.get("id"), "check": check.get("check", "")}


def finish(module, results, **extra):
    """End the call. A failed check fails only its element, as a failed loop item would: the call stays ok, so
    the handlers the other checks notified still run (Ansible notifies none for a failed task)."""
    failed = [r for r in results if r.get("failed")]
    summary = {"changed": any(r.get("changed") for r in results), "results": results, "failed_checks": len(failed),
               "msg": f"{len(results)} checks, {len(failed)} failed" + "".join(
                   f"; {r['item']['check']}: {r.get('msg', '')}" for r in failed)}
    module.exit_json(**summary, **extra)
