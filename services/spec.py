"""The platform's components as data (components.yaml, checked by components.schema.yaml) and the
plan `govctl up` follows: which components apply to the options given, in what order, with which
command lines. Everything here is pure: a spec in, plain data out."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from monitors.specfile import load_document

DEFAULT_SPEC = Path(__file__).with_name("components.yaml")
SCHEMA = Path(__file__).with_name("components.schema.yaml")

# Placeholders an argument or URL may hold; the list-valued ones must stand alone in an argument.
SCALARS = ("stack", "store", "host", "port", "console_url", "state", "platform", "tls_cert", "tls_key",
           "python")
LISTS = ("tls_args", "store_args", "stack_args")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")

DEFAULT_RESTART = {"base": 1.0, "max": 60.0, "reset_after": 60.0}
DEFAULT_STEP_TIMEOUT = 900.0
DEFAULT_SERVICE_TIMEOUT = 60.0
DEFAULT_CHECK_TIMEOUT = 60.0
DEFAULT_JOB_TIMEOUT = 3600.0
DEFAULT_SCHEDULE_TIMEZONE = "Asia/Shanghai"
SCHEDULE_SCALARS = ("run_dir",)  # a scheduled job's run folder, filled when it runs


@dataclass(frozen=True)
class Restart:
    base: float
    max: float
    reset_after: float

    def delay(self, failures: int) -> float:
        """Seconds to wait before the next start after `failures` crashes in a row (≥ 1)."""
        return min(self.base * 2 ** max(failures - 1, 0), self.max)


@dataclass(frozen=True)
class Check:
    command: tuple[str, ...] = ()
    http: str = ""
    stamp: bool = False
    timeout: float = DEFAULT_CHECK_TIMEOUT
    retries: int = 0
    retry_pause: float = 2.0


@dataclass(frozen=True)
class Component:
    name: str
    kind: str  # step | service
    description: str
    run: tuple[str, ...]
    needs: tuple[str, ...] = ()
    when: Mapping[str, str] = field(default_factory=dict)
    check: Check = Check()
    stop: tuple[str, ...] = ()
    part_of_lab: bool = False
    timeout: float = DEFAULT_STEP_TIMEOUT
    save_json: Mapping[str, str] = field(default_factory=dict)
    restart: Restart = Restart(**DEFAULT_RESTART)


@dataclass(frozen=True)
class ScheduledJob:
    """A job of the `schedules:` section (issue 19), as written; services/schedule.py runs it."""

    name: str
    description: str
    cadence: str
    run: tuple[str, ...]
    enabled: bool = True
    timeout: float = DEFAULT_JOB_TIMEOUT


@dataclass(frozen=True)
class Spec:
    source: str
    console_component: str
    console_path: str
    components: tuple[Component, ...]
    schedules: tuple[ScheduledJob, ...] = ()
    schedule_timezone: str = DEFAULT_SCHEDULE_TIMEZONE

    def component(self, name: str) -> Component:
        return next(c for c in self.components if c.name == name)


def load_spec(path: str | Path | None = None, *, text: str | None = None) -> Spec:
    """Read and check a components file; SpecError (exit 2) names the file, line, key and fix."""
    doc = load_document(path or DEFAULT_SPEC, SCHEMA, text=text)
    data = doc.data
    names = [c["name"] for c in data["components"]]
    components = []
    for i, raw in enumerate(data["components"]):
        where = f"components[{i}]"
        if names.count(raw["name"]) > 1 and names.index(raw["name"]) != i:
            doc.problem(f"{where}.name", f"duplicate component {raw['name']!r}; name each component once")
        for j, need in enumerate(raw.get("needs", [])):
            if need not in names:
                doc.problem(f"{where}.needs[{j}]", f"no component is named {need!r}; use one of "
                                                   f"{', '.join(names)}")
            elif need == raw["name"]:
                doc.problem(f"{where}.needs[{j}]", "a component cannot need itself")
            elif raw["kind"] == "step" and data["components"][names.index(need)]["kind"] == "service":
                doc.problem(f"{where}.needs[{j}]", f"step {raw['name']!r} needs service {need!r}: "
                                                   "steps run before services; make it a service")
        check = raw.get("check", {})
        if raw["kind"] == "step" and not (check.get("command") or check.get("stamp")):
            doc.problem(f"{where}.check", "a step needs `check: {command: [...]}` or `check: {stamp: "
                                          "true}` so that a second `govctl up` can skip it")
        if raw["kind"] == "service":
            for key in ("stop", "save_json", "part_of_lab"):
                if key in raw:
                    doc.problem(f"{where}.{key}", f"{key!r} is for steps; the supervisor stops services")
            if check.get("command") or check.get("stamp"):
                doc.problem(f"{where}.check", "a service is checked by its process (and `http:` if "
                                              "given); `command`/`stamp` are for steps")
        elif "restart" in raw:
            doc.problem(f"{where}.restart", "'restart' is for services; a step runs once")
        restart = {**DEFAULT_RESTART, **raw.get("restart", {})}
        if restart["base"] > restart["max"]:
            doc.problem(f"{where}.restart.base", f"base {restart['base']} s exceeds max {restart['max']} s")
        _check_placeholders(doc, where, raw)
        components.append(Component(
            name=raw["name"], kind=raw["kind"], description=raw["description"], run=tuple(raw["run"]),
            needs=tuple(raw.get("needs", ())), when=dict(raw.get("when", {})),
            check=Check(command=tuple(check.get("command", ())), http=check.get("http", ""),
                        stamp=bool(check.get("stamp")),
                        timeout=float(check.get("timeout", DEFAULT_CHECK_TIMEOUT)),
                        retries=int(check.get("retries", 0)),
                        retry_pause=float(check.get("retry_pause", 2.0))),
            stop=tuple(raw.get("stop", ())), part_of_lab=bool(raw.get("part_of_lab")),
            timeout=float(raw.get("timeout", DEFAULT_STEP_TIMEOUT if raw["kind"] == "step"
                                  else DEFAULT_SERVICE_TIMEOUT)),
            save_json=dict(raw.get("save_json", {})), restart=Restart(**restart)))
    console = data["console"]
    if console["component"] not in names:
        doc.problem("console.component", f"no component is named {console['component']!r}")
    elif data["components"][names.index(console["component"])]["kind"] != "service":
        doc.problem("console.component", f"{console['component']!r} must be a service")
    cycle = _cycle({c.name: c.needs for c in components})
    if cycle:
        doc.problem(f"components[{names.index(cycle[0])}].needs",
                    f"the needs go round in a circle: {' → '.join(cycle)}; break it")
    schedules, timezone_name = _schedules(doc, data.get("schedules"))
    doc.raise_if_problems()
    return Spec(doc.source, console["component"], console["path"], tuple(components), schedules, timezone_name)


def _schedules(doc, section: dict | None) -> tuple[tuple[ScheduledJob, ...], str]:
    """The `schedules:` section (issue 19), checked for meaning: names, cadences, the time zone."""
    from .schedule import cadence_problem, timezone_problem

    if not section:
        return (), DEFAULT_SCHEDULE_TIMEZONE
    timezone_name = section.get("timezone", DEFAULT_SCHEDULE_TIMEZONE)
    problem = timezone_problem(timezone_name)
    if problem:
        doc.problem("schedules.timezone", problem)
    names = [j["name"] for j in section["jobs"]]
    jobs = []
    for i, raw in enumerate(section["jobs"]):
        where = f"schedules.jobs[{i}]"
        if names.index(raw["name"]) != i:
            doc.problem(f"{where}.name", f"duplicate job {raw['name']!r}; name each job once")
        problem = cadence_problem(raw["cadence"])
        if problem:
            doc.problem(f"{where}.cadence", problem)
        _check_placeholders(doc, where, {"run": raw["run"]}, extra=SCHEDULE_SCALARS)
        jobs.append(ScheduledJob(name=raw["name"], description=raw["description"], cadence=raw["cadence"],
                                 run=tuple(raw["run"]), enabled=raw.get("enabled", True),
                                 timeout=float(raw.get("timeout", DEFAULT_JOB_TIMEOUT))))
    return tuple(jobs), timezone_name


def _check_placeholders(doc, where: str, raw: dict, extra: tuple[str, ...] = ()) -> None:
    argvs = {"run": raw["run"], "stop": raw.get("stop", []),
             "check.command": raw.get("check", {}).get("command", [])}
    known = SCALARS + extra + LISTS
    for key, argv in argvs.items():
        for k, arg in enumerate(argv):
            for name in _PLACEHOLDER.findall(arg):
                if name in LISTS and arg != f"{{{name}}}":
                    doc.problem(f"{where}.{key}[{k}]", f"{{{name}}} stands for several arguments: "
                                                       "give it as an argument of its own")
                elif name not in known:
                    doc.problem(f"{where}.{key}[{k}]", f"unknown placeholder {{{name}}}; use one of "
                                                       f"{', '.join('{' + n + '}' for n in known)}")
    for name in _PLACEHOLDER.findall(raw.get("check", {}).get("http", "")):
        if name not in SCALARS:
            doc.problem(f"{where}.check.http", f"unknown placeholder {{{name}}} in the URL")


def _cycle(needs: dict[str, tuple[str, ...]]) -> list[str]:
    """One dependency cycle (as a path that returns to its start), or []."""
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, path: list[str]) -> list[str]:
        state[name] = 1
        for need in needs.get(name, ()):
            if state.get(need) == 1:
                return path[path.index(need):] + [need] if need in path else [name, need]
            if need in needs and not state.get(need):
                found = visit(need, path + [need])
                if found:
                    return found
        state[name] = 2
        return []

    for name in needs:
        if not state.get(name):
            found = visit(name, [name])
            if found:
                return found
    return []


# -- the plan ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Planned:
    """A component resolved for one `up`: its command lines with the placeholders filled in."""

    component: Component
    run: tuple[str, ...]
    stop: tuple[str, ...]
    check_command: tuple[str, ...]
    check_url: str
    needs: tuple[str, ...]  # only the needs that apply to these options

    @property
    def name(self) -> str:
        return self.component.name


def applies(component: Component, options: Mapping[str, Any]) -> bool:
    return all(str(options.get(key)) == str(value) for key, value in component.when.items())


def fill(argv: tuple[str, ...], values: Mapping[str, Any], launcher: tuple[str, ...]) -> tuple[str, ...]:
    """Substitute the placeholders; a leading `govctl` becomes the launcher (this govctl)."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        if i == 0 and arg == "govctl":
            out.extend(launcher)
        elif arg[1:-1] in LISTS and arg == f"{{{arg[1:-1]}}}":
            out.extend(str(v) for v in values.get(arg[1:-1], ()))
        else:
            out.append(_PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), arg))
    return tuple(out)


def plan(spec: Spec, options: Mapping[str, Any], values: Mapping[str, Any],
         launcher: tuple[str, ...]) -> list[Planned]:
    """The components that apply to `options`, in an order where every need comes first (file order
    otherwise), with their command lines filled from `values`."""
    chosen = {c.name: c for c in spec.components if applies(c, options)}
    ordered: list[str] = []

    def place(name: str) -> None:
        if name in ordered:
            return
        for need in chosen[name].needs:
            if need in chosen:
                place(need)
        ordered.append(name)

    for c in spec.components:
        if c.name in chosen:
            place(c.name)
    url_values = dict(values)
    result = []
    for name in ordered:
        c = chosen[name]
        result.append(Planned(
            component=c, run=fill(c.run, values, launcher), stop=fill(c.stop, values, launcher),
            check_command=fill(c.check.command, values, launcher),
            check_url=_PLACEHOLDER.sub(lambda m: str(url_values[m.group(1)]), c.check.http),
            needs=tuple(n for n in c.needs if n in chosen)))
    return result


def plan_schedules(spec: Spec, values: Mapping[str, Any], launcher: tuple[str, ...]) -> list[dict]:
    """The scheduled jobs (issue 19) as plan.json holds them for the supervisor: command lines filled
    from `values`, except {run_dir}, which each run fills with its own folder."""
    kept = {name: f"{{{name}}}" for name in SCHEDULE_SCALARS}
    return [{"name": j.name, "description": j.description, "argv": list(fill(j.run, {**values, **kept}, launcher)),
             "cadence": j.cadence, "timezone": spec.schedule_timezone, "enabled": j.enabled,
             "timeout": j.timeout} for j in spec.schedules]
