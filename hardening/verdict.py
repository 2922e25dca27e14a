"""Per-item verdicts from the results of an item's tasks on one host.

An item's tasks are named "<ITEM-ID> | <what>"; a task named "<ITEM-ID> | observe: …" only reads the
current state (its output is the observed value and evidence), every other task is one sub-check of
the item. A sub-check is compliant when its module says so (`compliant` in the result, set by the
govctl modules) or, for the stock modules, when it had nothing to change in check mode.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from .catalog import Control

COMPLIANT = "符合"
PARTIAL = "部分符合"
NON_COMPLIANT = "不符合"
NOT_APPLICABLE = "不适用"
MANUAL = "需人工核查"
VERDICTS = (COMPLIANT, PARTIAL, NON_COMPLIANT, NOT_APPLICABLE, MANUAL)
VERDICT_EN = {COMPLIANT: "compliant", PARTIAL: "partially compliant", NON_COMPLIANT: "non-compliant",
              NOT_APPLICABLE: "not applicable", MANUAL: "manual review"}

TASK_NAME = re.compile(r"^(?P<item>[A-Z]{2}-[A-Z0-9-]+) \| (?P<what>.+)$")
EXCERPT = 600
DIFF_EXCERPT = 4000


def item_of(task_name: str) -> tuple[str, bool] | None:
    """(item id, is-observation) for a task name of an item, None for plumbing tasks."""
    match = TASK_NAME.match(task_name or "")
    if not match:
        return None
    return match["item"], match["what"].startswith("observe")


@dataclass
class TaskResult:
    """One task's outcome on one host, reduced to what verdicts need."""

    task: str
    status: str  # ok | changed | failed | skipped
    result: dict = field(default_factory=dict)

    def compliant(self, check_mode: bool) -> bool | None:
        """True/False for a sub-check, None when it did not apply (skipped)."""
        if self.status == "skipped":
            return None
        if "compliant" in self.result:
            return bool(self.result["compliant"])
        if self.status == "failed":
            return False
        if self.status == "changed":
            return not check_mode  # in check mode a change means the host is not there yet
        return True

    def evidence(self) -> dict:
        res = self.result
        command = (res.get("cmd") or res.get("command") or res.get("invocation", {}).get("module_args", {}).get("path")
                   or res.get("path"))
        if isinstance(command, list):
            command = " ".join(command)
        diff = diff_text(res)
        output = res.get("observed") or res.get("stdout") or diff or res.get("msg") or ""
        if isinstance(output, (dict, list)):
            output = str(output)
        if self.status == "failed" and res.get("msg") and str(res["msg"]) not in str(output):
            output = f"{res['msg']}\n{output}"  # why it failed comes first
        evidence = {"task": self.task, "status": self.status, "command": command or "",
                    "output": str(output)[:EXCERPT]}
        if diff:
            evidence["diff"] = diff[:DIFF_EXCERPT]
        return evidence


def diff_text(res: dict) -> str:
    """A unified diff of what a task changed (or would change in check mode), loops included."""
    parts = []
    for sub in [res] + list(res.get("results") or []):
        diff = sub.get("diff") if isinstance(sub, dict) else None
        for part in diff if isinstance(diff, list) else [diff] if diff else []:
            if not isinstance(part, dict):
                continue
            if part.get("prepared"):
                parts.append(str(part["prepared"]))
            elif isinstance(part.get("before"), str) and isinstance(part.get("after"), str):
                lines = difflib.unified_diff(part["before"].splitlines(), part["after"].splitlines(),
                                             part.get("before_header", "before"), part.get("after_header", "after"),
                                             n=0, lineterm="")
                parts.append("\n".join(lines))
            elif "before" in part or "after" in part:
                parts.append(f"- {part.get('before')}\n+ {part.get('after')}")
    return "\n".join(p for p in parts if p.strip())


@dataclass
class ItemVerdict:
    control: Control
    verdict: str
    observed: str
    expected: str
    evidence: list[dict]
    note: str = ""

    def as_dict(self) -> dict:
        c = self.control
        return {"id": c.id, "verdict": self.verdict, "verdict_en": VERDICT_EN[self.verdict],
                "title": c.title, "area": c.area, "clause": f"GB/T 22239-2019 {c.clause}",
                "test_ids": list(c.test_ids), "importance": c.importance, "automation": c.automation,
                "observed": self.observed, "expected": self.expected, "evidence": self.evidence,
                "note": self.note}


def judge(control: Control, results: list[TaskResult], check_mode: bool,
          host_vars: dict | None = None, host_error: str = "") -> ItemVerdict:
    """The verdict for one item on one host."""
    expected = control.expected(host_vars)
    observations = [r for r in results if (item_of(r.task) or ("", False))[1]]
    checks = [r for r in results if not (item_of(r.task) or ("", False))[1]]
    evidence = [r.evidence() for r in observations + checks]
    observed = "\n".join(e["output"] for e in (r.evidence() for r in observations) if e["output"])
    if control.automation == "manual":
        return ItemVerdict(control, MANUAL, observed, expected, evidence, note=control.auditor)
    if not checks:
        why = host_error or "no task of this item ran on the host"
        return ItemVerdict(control, MANUAL, observed or f"not checked: {why}", expected, evidence,
                           note=f"the automatic check did not run ({why}); check by hand: {control.check}")
    states = [r.compliant(check_mode) for r in checks]
    judged = [s for s in states if s is not None]
    if not judged:
        return ItemVerdict(control, NOT_APPLICABLE, observed or "not applicable on this host", expected,
                           evidence, note=control.not_applicable_when)
    if not observed:
        failing = [r.evidence()["output"] for r, s in zip(checks, states) if s is False]
        observed = "\n".join(o for o in failing if o) or "as expected"
    if all(judged):
        verdict = COMPLIANT
    elif not any(judged):
        verdict = NON_COMPLIANT
    else:
        verdict = PARTIAL
    note = "" if verdict == COMPLIANT else f"remediation: {control.remediation}"
    return ItemVerdict(control, verdict, observed, expected, evidence, note=note)


def host_fails(verdicts: list[ItemVerdict]) -> bool:
    """An automated item that is not met makes the run fail (non-zero exit)."""
    return any(v.control.automation != "manual" and v.verdict in (NON_COMPLIANT, PARTIAL) for v in verdicts)
