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

DOCUMENTATION = r"""
module: govctl_state
short_description: Probe a value, compare it with a regular expression, fix it if asked
options:
  probe: {description: shell command printing the current state, required: true, type: str}
  want: {description: regular expression the whole (stripped) output must match, required: true, type: str}
  fix: {description: shell command that remediates; $OBSERVED holds the probe output, type: str}
"""


def run(command, env=None):
    proc = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True,
                          env={**os.environ, "LC_ALL": "C", **(env or {})})
    output = proc.stdout.strip()
    if proc.returncode != 0 and proc.stderr.strip():
        output = (output + "\n" + proc.stderr.strip()).strip()
    return proc.returncode, output


def main():
    module = AnsibleModule(
        argument_spec={"probe": {"type": "str", "required": True},
                       "want": {"type": "str", "required": True},
                       "fix": {"type": "str"}},
        supports_check_mode=True)
    probe, want, fix = module.params["probe"], module.params["want"], module.params["fix"]
    pattern = re.compile(want, re.S)

    rc, before = run(probe)
    compliant = rc == 0 and pattern.fullmatch(before) is not None
    result = {"cmd": probe, "observed": before, "wanted": want, "compliant": compliant, "changed": False}
    if compliant:
        module.exit_json(**result)
    if not fix:
        result["msg"] = "not compliant; this item is remediated by a person"
        module.exit_json(**result)
    result["diff"] = {"before": before + "\n", "after": f"(matching {want})\n"}
    if module.check_mode:
        result["changed"] = True
        module.exit_json(**result)
    fix_rc, fix_output = run(fix, env={"OBSERVED": before})
    if fix_rc != 0:
        module.fail_json(msg=f"fix failed (exit {fix_rc}): {fix_output[-800:]}", **result)
    rc, after = run(probe)
    result.update(changed=True, before=before, observed=after, fix=fix,
                  compliant=rc == 0 and pattern.fullmatch(after) is not None)
    if not result["compliant"]:
        module.fail_json(msg=f"the fix ran but the state is still {after!r}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
