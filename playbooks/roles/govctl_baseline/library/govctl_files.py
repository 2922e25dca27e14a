#!/usr/bin/python3
"""Ansible module: the baseline's file checks, many files in one call.

Why govctl's own module and not Ansible's lineinfile / replace / blockinfile / copy / file: each of those is
a task, and a task costs the controller a forked worker and its events per host. At 30 hosts the baseline's
~20 file tasks were most of an audit's wall time (docs/hardening.md, "One module call per family"). This
module does what those modules do for the forms the baseline uses (their semantics, checked against them by
tests/hardening/test_govctl_files.py) and answers each file as a loop element would, named by its check, so
govctl's verdicts are those of separate tasks.

Each element of `files` is one file and one of:
  line + regexp      the last line matching regexp becomes `line`, else `line` is appended (lineinfile)
  replace + regexp   every match of regexp (multi-line mode) is replaced (replace)
  block + marker     the block between the marker lines, put first in the file when absent (blockinfile,
                     insertbefore=BOF)
  content            the whole file (copy, template)
  (none of those)    only owner, group and mode (file)
and may carry owner, group, mode, create, validate ("cmd %s", run on the new content before it is moved in),
when (false: reported skipped, as a task whose condition is false) and notify (a handler's name, listed in
the result's `notify` when this file changed: the handlers test it). `path` may be a list: one result per
path, one check; `modes` ({path: "owner:group:mode"}) checks only those.
"""
import grp
import os
import pwd
import re
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.govctl_checks import SKIPPED, finish, item_of

DOCUMENTATION = r"""
module: govctl_files
short_description: Check and fix many files in one call (lines, replacements, blocks, whole files, modes)
options:
  files: {description: the files' checks (see the module's docstring), required: true, type: list, elements: dict}
"""

LINESEP = b"\n"


def edit_line(text, regexp, line):
    """lineinfile (state=present, insertafter=EOF): the last line matching regexp is replaced, else the last line
    equal to `line` stays, else `line` is appended."""
    lines = text.splitlines(True)
    wanted = line.encode()
    pattern = re.compile(regexp.encode())
    index = max((i for i, cur in enumerate(lines) if pattern.search(cur)), default=-1)
    if index == -1:
        index = max((i for i, cur in enumerate(lines) if cur.rstrip(b"\r\n") == wanted), default=-1)
    new = wanted if wanted.endswith(LINESEP) else wanted + LINESEP
    if index != -1:
        lines[index] = new
    else:
        if lines and lines[-1][-1:] not in (b"\n", b"\r"):
            lines.append(LINESEP)
        lines.append(wanted + LINESEP)
    return b"".join(lines)


def edit_replace(text, regexp, replace):
    """replace: every match of regexp, in multi-line mode."""
    return re.sub(re.compile(regexp, re.MULTILINE), replace, text.decode(errors="surrogateescape")).encode(errors="surrogateescape")


def edit_block(text, marker, block):
    """blockinfile (insertbefore=BOF): the lines between the BEGIN and END markers, or first in the file."""
    begin = marker.replace("{mark}", "BEGIN").encode() + LINESEP
    end = marker.replace("{mark}", "END").encode() + LINESEP
    body = block.encode()
    if body and not body.endswith(LINESEP):
        body += LINESEP
    new = [begin] + body.splitlines(True) + [end] if body else []
    lines = text.splitlines(True)
    starts = [i for i, cur in enumerate(lines) if cur == begin]
    ends = [i for i, cur in enumerate(lines) if cur == end]
    at = 0
    if starts and ends:
        first, last = sorted((starts[-1], ends[-1]))
        lines[first:last + 1] = []
        at = first
    if at > 0 and not lines[at - 1].endswith(LINESEP):
        lines[at - 1] += LINESEP
    lines[at:at] = new
    return b"".join(lines)


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def write(module, path, data, validate):
    fd, tmp = tempfile.mkstemp(dir=module.tmpdir)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    if validate:
        rc, out, err = module.run_command(validate % tmp)
        if rc != 0:
            os.unlink(tmp)
            raise ValueError(f"the new content of {path} failed validation ({validate}): rc {rc} {(err or out).strip()}")
    folder = os.path.dirname(path)
    if folder and not os.path.isdir(folder):
        os.makedirs(folder)
    module.atomic_move(tmp, os.path.realpath(path))


def missing_owner(spec):
    """Why owner/group cannot be set (unknown names), before Ansible's own setters would end the module."""
    for key, lookup in (("owner", pwd.getpwnam), ("group", grp.getgrnam)):
        name = spec.get(key)
        if name is not None and not str(name).isdigit():
            try:
                lookup(str(name))
            except KeyError:
                return f"no {key} {name!r} on this host"
    return ""


def check_file(module, spec, path):
    """One file: its result as a loop element of the task it stands for would carry."""
    result = {"item": item_of(spec), "path": path, "changed": False}
    if not any(key in spec for key in ("content", "line", "replace", "block")):  # owner, group, mode only (file)
        if not os.path.lexists(path):
            return dict(result, failed=True, msg=f"{path} does not exist")
        before = after = None
    else:
        before = read(path)
        if "content" in spec:
            after = spec["content"].encode()
        elif before is None and not spec.get("create"):
            return dict(result, failed=True, msg=f"{path} does not exist")
        elif "line" in spec:
            after = edit_line(before or b"", spec["regexp"], spec["line"])
        elif "replace" in spec:
            after = edit_replace(before, spec["regexp"], spec["replace"])
        else:
            after = edit_block(before or b"", spec["marker"], spec["block"])
    content_diff = {"before": (before or b"").decode(errors="replace"), "after": (after or b"").decode(errors="replace"),
                    "before_header": f"{path} (content)", "after_header": f"{path} (content)"}
    changed = after != before
    if changed and not module.check_mode:
        write(module, path, after, spec.get("validate"))
    attribute_diff = {"before_header": f"{path} (file attributes)", "after_header": f"{path} (file attributes)"}
    wanted = {key: spec[key] for key in ("owner", "group", "mode") if spec.get(key) is not None}
    if wanted and os.path.exists(path):
        why = missing_owner(wanted)
        if why:
            return dict(result, failed=True, msg=why)
        file_args = module.load_file_common_arguments(wanted, path=path)
        changed = module.set_fs_attributes_if_different(file_args, changed, attribute_diff)
    result.update(changed=changed, diff=[content_diff, attribute_diff] if changed else [],
                  msg="changed" if changed else "")
    return result


def paths_of(spec):
    """(path, owner/group/mode of that path) for each file of a check: `path` (one or a list), or `modes`
    ({path: "owner:group:mode"}, group names renamed by `group_names`, e.g. shadow → root on RHEL)."""
    if spec.get("modes"):
        renamed = spec.get("group_names") or {}
        out = []
        for path, triple in spec["modes"].items():
            owner, group, mode = str(triple).split(":")
            out.append((path, {"owner": owner, "group": renamed.get(group, group), "mode": mode}))
        return out
    path = spec.get("path")
    return [(p, {}) for p in ([path] if isinstance(path, str) else list(path or []))]


def main():
    module = AnsibleModule(argument_spec={"files": {"type": "list", "elements": "dict", "required": True}},
                           supports_check_mode=True)
    results, notify = [], set()
    for spec in module.params["files"]:
        applies = module.boolean(spec.get("when", True))
        for path, wanted in paths_of(spec):
            if not applies:
                results.append(dict(SKIPPED, item=item_of(spec), path=path))
                continue
            try:
                result = check_file(module, dict(spec, **wanted), path)
            except (OSError, ValueError, re.error, UnicodeError) as err:
                result = {"item": item_of(spec), "path": path, "changed": False, "failed": True, "msg": str(err)}
            if result["changed"] and spec.get("notify"):
                notify.add(spec["notify"])
            results.append(result)
    finish(module, results, notify=sorted(notify))


if __name__ == "__main__":
    main()
