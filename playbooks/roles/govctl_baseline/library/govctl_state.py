#!/usr/bin/python3
"""Ansible module: compare a host state (a probe command's output) with what is wanted, and fix it.

One implementation for govctl's three modes: in check mode it only reports (changed = would fix),
otherwise it runs the fix and probes again. The result carries `compliant` (after the run; before
it in check mode) and `observed` (the probe's output) for govctl's verdicts.
"""
import os
import re
import subprocess

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.govctl_checks import SKIPPED, finish, item_of

DOCUMENTATION = r"""
module: govctl_state
short_description: Probe a value, compare it with a regular expression, fix it if asked
options:
  probe: {description: shell command printing the current state (or give checks), type: str}
  want: {description: regular expression the whole (stripped) output must match, type: str}
  fix: {description: shell command that remediates; $OBSERVED holds the probe output, type: str}
  checks: {description: many probes at once, each a dict of check (its name), probe, want, fix and when, type: list, elements: dict}
"""


def run(command, env=None):
    proc = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True,
                          env={**os.environ, "LC_ALL": "C", **(env or {})})
    output = proc.stdout.strip()
    if proc.returncode != 0 and proc.stderr.strip():
        output = (output + "\n" + proc.stderr.strip()).strip()
    return proc.returncode, output


def check_state(module, probe, want, fix):
    """One probe: its result, with `failed` and `msg` when the fix did not bring the wanted state."""
    pattern = re.compile(want, re.S)
    rc, before = run(probe)
    compliant = rc == 0 and pattern.fullmatch(before) is not None
    result = {"cmd": probe, "observed": before, "wanted": want, "compliant": compliant, "changed": False}
    if compliant:
        return result
    if not fix:
        return dict(result, msg="not compliant; this item is remediated by a person")
    result["diff"] = {"before": before + "\n", "after": f"(matching {want})\n"}
    if module.check_mode:
        return dict(result, changed=True)
    fix_rc, fix_output = run(fix, env={"OBSERVED": before})
    if fix_rc != 0:
        return dict(result, failed=True, msg=f"fix failed (exit {fix_rc}): {fix_output[-800:]}")
    rc, after = run(probe)
    result.update(changed=True, before=before, observed=after, fix=fix,
                  compliant=rc == 0 and pattern.fullmatch(after) is not None)
    if not result["compliant"]:
        return dict(result, failed=True, msg=f"the fix ran but the state is still {after!r}")
    return result


def main():
    module = AnsibleModule(
        argument_spec={"probe": {"type": "str"},
                       "want": {"type": "str"},
                       "fix": {"type": "str"},
                       "checks": {"type": "list", "elements": "dict"}},
        required_one_of=[["probe", "checks"]], mutually_exclusive=[["probe", "checks"]],
        required_together=[["probe", "want"]],
        supports_check_mode=True)
    params = module.params
    if params["checks"] is None:
        result = check_state(module, params["probe"], params["want"], params["fix"])
        (module.fail_json if result.get("failed") else module.exit_json)(**result)
    # Many probes in one call (a task per probe costs the controller a worker per host).
    results = []
    for check in params["checks"]:
        if not module.boolean(check.get("when", True)):
            results.append(dict(SKIPPED, item=item_of(check)))
            continue
        results.append(dict(check_state(module, check["probe"], check["want"], check.get("fix")), item=item_of(check)))
    finish(module, results)


if __name__ == "__main__":
    main()
