"""Case handling data and rules for secops.incidents: SLAs per severity, response plans (应急预案) per
incident type, and the observables of an alert.

SLAs (sla.yaml) and plans (plans/*.yaml) are data validated by their schemas (schemas/sla.schema.yaml,
schemas/plan.schema.yaml); this module reads them and evaluates an incident against them. Everything
an analyst does is kept as incident notes (who, when), so the SLA figures, the checklist and the history
of merges, splits and reopenings are derived from one record on either store:
  kind "state"      "new → acknowledged" …        (secops.incidents, before this module)
  kind "reopen"     why it was reopened (an SLA cycle starts again)
  kind "sla-breach" "<target>: …" once per target and cycle (what notifications read)
  kind "task"       "<plan>.<task>: done" or ": undone"
  kind "merge" / "split"  which incidents and which alerts moved
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jsonschema

from core import yamlfile

from . import address

HERE = Path(__file__).parent
SLA_FILE = HERE / "sla.yaml"
SLA_SCHEMA = HERE / "schemas" / "sla.schema.yaml"
PLANS_DIR = HERE / "plans"
PLAN_SCHEMA = HERE / "schemas" / "plan.schema.yaml"

TARGETS = ("acknowledge", "contain", "resolve")
# the states an incident is in once a target is reached (closing an incident reaches all three)
REACHED_BY = {"acknowledge": {"acknowledged", "contained", "resolved", "false-positive"},
              "contain": {"contained", "resolved", "false-positive"},
              "resolve": {"resolved", "false-positive"}}
SLA_AUTHOR = "govctl-sla"


class CaseDataError(ValueError):
    """An SLA or plan file that does not follow its schema; the message names the file and the fields."""


def _validated(path: Path, schema_path: Path) -> dict:
    try:
        doc = yamlfile.load(path)
    except yamlfile.YamlInputError as exc:
        raise CaseDataError(str(exc)) from None
    problems = [f"{'.'.join(map(str, e.absolute_path)) or '(document)'}: {e.message}"
                for e in jsonschema.Draft202012Validator(yamlfile.load(schema_path)).iter_errors(doc)]
    if problems:
        raise CaseDataError(f"{path}: " + "; ".join(problems) + f" (see {schema_path.name})")
    return doc


@lru_cache(maxsize=8)
def load_sla(path: Path = SLA_FILE) -> dict:
    """{severity: {class, acknowledge, contain, resolve}} from the SLA file."""
    return _validated(Path(path), SLA_SCHEMA)["severities"]


@dataclass(frozen=True)
class Plan:
    id: str
    order: int
    name: dict
    tags: tuple[str, ...]
    rules: tuple[str, ...]
    tasks: tuple[dict, ...]

    def fits(self, alerts: list[dict]) -> bool:
        for a in alerts:
            if a.get("rule") in self.rules:
                return True
            for tag in a.get("tags") or ():
                if any(tag == t or tag.startswith(t + ".") for t in self.tags):
                    return True
        return False


@lru_cache(maxsize=8)
def load_plans(directory: Path = PLANS_DIR) -> tuple[Plan, ...]:
    """Every plan of the directory, in their order; CaseDataError for a file off its schema."""
    plans = []
    for path in sorted(Path(directory).glob("*.yaml")):
        doc = _validated(path, PLAN_SCHEMA)
        if doc["id"] != path.stem:
            raise CaseDataError(f"{path}: id {doc['id']!r} differs from the file's name; name the file {doc['id']}.yaml")
        ids = [t["id"] for t in doc["tasks"]]
        if len(set(ids)) != len(ids):
            raise CaseDataError(f"{path}: task ids repeat: {', '.join(sorted({i for i in ids if ids.count(i) > 1}))}")
        plans.append(Plan(doc["id"], doc["order"], doc["name"], tuple(doc["match"].get("tags", ())),
                          tuple(doc["match"].get("rules", ())), tuple(doc["tasks"])))
    return tuple(sorted(plans, key=lambda p: (p.order, p.id)))


def plan_for(alerts: list[dict], plans: tuple[Plan, ...]) -> Plan | None:
    """The first plan (in order) that fits the incident's alerts."""
    return next((p for p in plans if p.fits(alerts)), None)


def cycle_start(record: dict, notes: list[dict]) -> float:
    """When the current SLA cycle began: the last reopening, else the incident's creation."""
    reopened = [n["created"] for n in notes if n["kind"] == "reopen"]
    return max(reopened) if reopened else record["created"]


def _reached(notes: list[dict], since: float, states: set[str]) -> float | None:
    """The time of the first state change at or after `since` into one of `states`."""
    for n in notes:
        if n["kind"] == "state" and n["created"] >= since:
            target = n["text"].split("→", 1)[-1].split(":", 1)[0].strip()
            if target in states:
                return n["created"]
    return None


def sla_status(record: dict, notes: list[dict], sla: dict, now: float) -> dict:
    """Each target's due time, when it was reached and whether it was met, breached or is pending."""
    level = sla.get(record["severity"]) or sla["medium"]
    start = cycle_start(record, notes)
    out = {"severity": record["severity"], "class": level["class"], "since": start, "targets": []}
    for target in TARGETS:
        seconds = level[target]
        if seconds is None:
            continue
        due = start + seconds
        reached = _reached(notes, start, REACHED_BY[target])
        if reached is not None:
            status = "met" if reached <= due else "breached"
        else:
            status = "breached" if now > due else "pending"
        out["targets"].append({"target": target, "seconds": seconds, "due": due, "reached": reached,
                               "status": status, "remaining": None if reached is not None else due - now})
    return out


def breaches_to_record(status: dict, notes: list[dict]) -> list[dict]:
    """The breached targets of this cycle not yet recorded as an "sla-breach" note."""
    recorded = {n["text"].split(":", 1)[0] for n in notes
                if n["kind"] == "sla-breach" and n["created"] >= status["since"]}
    return [t for t in status["targets"] if t["status"] == "breached" and t["target"] not in recorded]


def checklist(plan: Plan | None, notes: list[dict]) -> dict | None:
    """The plan's tasks, each with who ticked it off and when (the latest "task" note about it wins)."""
    if plan is None:
        return None
    state: dict[str, dict] = {}
    for n in notes:
        if n["kind"] != "task":
            continue
        key, _, verb = n["text"].partition(": ")
        state[key] = {"done": verb.startswith("done"), "by": n["author"], "at": n["created"]}
    tasks = []
    for task in plan.tasks:
        mark = state.get(f"{plan.id}.{task['id']}")
        done = bool(mark and mark["done"])
        tasks.append({"id": task["id"], "zh": task["zh"], "en": task["en"], "done": done,
                      "by": mark["by"] if done else None, "at": mark["at"] if done else None})
    return {"plan": plan.id, "name": plan.name, "tasks": tasks, "done": sum(t["done"] for t in tasks),
            "total": len(tasks)}


# ---------------------------------------------------------------- observables
OBSERVABLE_FIELDS = {
    "ip": ("source.ip", "destination.ip", "client.ip", "server.ip", "host.ip", "related.ip"),
    "user": ("user.name", "user.target.name", "user.effective.name", "related.user"),
    "host": ("host.hostname", "host.name", "related.hosts"),
    "url": ("url.full", "url.original"),
    "hash": ("file.hash.md5", "file.hash.sha1", "file.hash.sha256", "file.hash.sha512", "file.hash.sm3",
             "process.hash.md5", "process.hash.sha1", "process.hash.sha256", "related.hash"),
}
OBSERVABLE_KINDS = tuple(OBSERVABLE_FIELDS)
MAX_OBSERVABLE = 2048  # longer values (a URL) are cut: they index and show, they are not evidence
_HASH = re.compile(r"^[0-9a-f]{32,128}$")


def _values(value):
    return value if isinstance(value, list) else (value,)


def observables(evidence: list[dict]) -> set[tuple[str, str]]:
    """(kind, value) pairs in flat ECS events: addresses canonical (secops.address), hashes lower-case hex,
    the rest as written (bounded); values that are not what their field says are left out."""
    found: set[tuple[str, str]] = set()
    for event in evidence:
        for kind, fields in OBSERVABLE_FIELDS.items():
            for name in fields:
                raw = event.get(name)
                if raw is None:
                    continue
                for value in _values(raw):
                    if not isinstance(value, str) or not value.strip():
                        continue
                    if kind == "ip":
                        value = address.canonical(value)
                    elif kind == "hash":
                        value = value.strip().lower()
                        if not _HASH.match(value):
                            continue
                    else:
                        value = value.strip()[:MAX_OBSERVABLE]
                    if value:
                        found.add((kind, value))
    return found
