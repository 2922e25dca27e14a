"""`up`, `status` and `down` of the platform: the engine behind the govctl commands.

`up` follows the plan (spec.plan): the certificate authority, the keystore's root key and the first
administrator are made once; then every step in dependency order is checked and run only when its
check fails; then the services are handed to the supervisor (started when it is not running) and
awaited until healthy. Every check runs first, concurrently, so `up` on a platform that is already
up only checks. `status` runs the same checks; `down` stops the supervisor (and with it every
service), then undoes the steps that have a `stop` command, newest first.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from core.errors import BadInput, GovctlError

from . import admin, signing, tls
from .layout import Layout, process_alive, read_json, write_json
from .spec import Planned, Spec, plan, plan_schedules
from .supervisor import supervisor_pid

UP, DEGRADED, DOWN = "up", "degraded", "down"
SERVICE_SETTLE = 2.0  # a service counts as up once it has run this long (and answers its URL)
STEP_SETTLE = 30.0  # after a step ran, its check may take this long to pass
Progress = Callable[[str], None]
STACK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
HOST_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$")


@dataclass(frozen=True)
class Options:
    stack: str | None = "lab"
    store: str = "sqlite"
    host: str = "127.0.0.1"
    port: int = 8443
    plain_http: bool = False  # tests only: bound to 127.0.0.1

    def check(self) -> None:
        if self.store not in ("sqlite", "elasticsearch"):
            raise BadInput(f"--store {self.store!r}: use sqlite or elasticsearch")
        if not 1 <= self.port <= 65535:
            raise BadInput(f"--port {self.port} is out of range; use 1–65535")
        if self.stack is not None and not STACK_NAME.match(self.stack):
            raise BadInput(f"--stack {self.stack[:64]!r}: a stack name is lower-case letters, digits and "
                           "'-' (infra/stacks/NAME.yaml), e.g. lab")
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            if not HOST_NAME.match(self.host):
                raise BadInput(f"--host {self.host[:64]!r}: give an IP address or a host name, e.g. "
                               "127.0.0.1 or 0.0.0.0") from None
        if self.plain_http and self.host != "127.0.0.1":
            raise BadInput(f"--plain-http serves without TLS: only on --host 127.0.0.1 (for tests), "
                           f"not on {self.host}")

    @property
    def scheme(self) -> str:
        return "http" if self.plain_http else "https"

    def url(self, path: str = "/") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        shown = "localhost" if self.host in ("0.0.0.0", "::") else host
        return f"{self.scheme}://{shown}:{self.port}{path}"


def _entry(p: Planned) -> dict:
    c = p.component
    return {"name": c.name, "kind": c.kind, "description": c.description, "run": list(p.run),
            "stop": list(p.stop), "needs": list(p.needs), "check_command": list(p.check_command),
            "check_url": p.check_url, "check_stamp": c.check.stamp, "check_timeout": c.check.timeout,
            "check_retries": c.check.retries, "check_retry_pause": c.check.retry_pause,
            "timeout": c.timeout, "part_of_lab": c.part_of_lab, "save_json": dict(c.save_json),
            "restart": {"base": c.restart.base, "max": c.restart.max,
                        "reset_after": c.restart.reset_after}}


class Platform:
    def __init__(self, layout: Layout, launcher: tuple[str, ...], cwd: Path,
                 progress: Progress = lambda m: None):
        self.layout, self.launcher, self.cwd, self.progress = layout, launcher, cwd, progress
        self.check_seconds: dict[str, float] = {}  # how long each component's last check took
        self.planned_schedules: list[dict] = []  # the scheduled jobs (issue 19), resolved by prepare

    # -- checks ------------------------------------------------------------------------------
    def _ca(self) -> str | None:
        ca = self.layout.tls / "ca.crt"
        return str(ca) if ca.exists() else None

    def check(self, entry: dict, services: dict | None, token: str | None = None) -> tuple[str, str]:
        """(up|degraded|down, why) of one component now, trying a failing check `retries` times.
        `token`: the restart token of the plan a service must run (while `up` awaits it)."""
        began = time.monotonic()
        state, why = self._check_once(entry, services, token)
        for _ in range(entry.get("check_retries", 0) if state != UP else 0):
            time.sleep(entry["check_retry_pause"])
            state, why = self._check_once(entry, services, token)
            if state == UP:
                break
        self.check_seconds[entry["name"]] = round(time.monotonic() - began, 2)
        return state, why

    def _check_once(self, entry: dict, services: dict | None, token: str | None = None) -> tuple[str, str]:
        if entry["kind"] == "service":
            return self._check_service(entry, services, token)
        if entry["check_stamp"]:
            stamp = self.layout.stamp(entry["name"])
            return (UP, f"done {time.strftime('%Y-%m-%d %H:%M', time.localtime(stamp.stat().st_mtime))}") \
                if stamp.exists() else (DOWN, "not done since its needs were (re)started")
        try:
            proc = subprocess.run(entry["check_command"], capture_output=True, text=True, cwd=self.cwd,
                                  timeout=entry["check_timeout"], stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return DOWN, f"its check `{' '.join(entry['check_command'][-3:])}` took over " \
                         f"{entry['check_timeout']:g} s"
        if proc.returncode == 0:
            return UP, "check passed"
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        return DOWN, (lines[-1].removeprefix("error: ").strip() if lines else f"check exited {proc.returncode}")

    def _check_service(self, entry: dict, services: dict | None, token: str | None = None) -> tuple[str, str]:
        if supervisor_pid(self.layout) is None:
            return DOWN, "the supervisor is not running"
        s = (services or {}).get(entry["name"])
        if s is None:
            return DOWN, "not planned (its needs are not up)"
        # Until the supervisor has taken up the new plan, what runs is the old command: not this one.
        if s.get("argv") != entry["run"] or (token is not None and s.get("token", token) != token):
            return DOWN, "waiting for the supervisor to start it with its new command line"
        if s["state"] == "backoff":
            return DEGRADED, (f"exited with code {s['last_exit']}; restart {s['restarts']} in "
                              f"{s['next_start_in']} s")
        if s["state"] != "running" or not s.get("pid") or not process_alive(s["pid"]):
            return DOWN, "not running yet"
        if entry["check_url"]:
            answer = http_check(entry["check_url"], self._ca(), entry["check_timeout"])
            if answer:
                return DEGRADED, f"running (pid {s['pid']}) but {entry['check_url']} {answer}"
        if time.time() - (s.get("started") or 0) < SERVICE_SETTLE:
            if s["restarts"]:
                return DEGRADED, (f"restarting: {s['restarts']} restart(s), last exit code "
                                  f"{s['last_exit']}")
            return DOWN, "starting"
        return UP, f"pid {s['pid']}, {s['restarts']} restart(s)"

    def check_all(self, entries: list[dict]) -> dict[str, tuple[str, str]]:
        services = (read_json(self.layout.status) or {}).get("services", {})
        with ThreadPoolExecutor(max_workers=max(len(entries), 1)) as pool:
            results = pool.map(lambda e: self.check(e, services), entries)
            return {e["name"]: r for e, r in zip(entries, results)}

    # -- up ----------------------------------------------------------------------------------
    def prepare(self, options: Options, spec: Spec) -> tuple[dict, list[dict]]:
        """The platform's one-time material (CA, first admin) and the resolved plan (the root key: `up`)."""
        self.layout.make()
        facts: dict = {"console_url": options.url(spec.console_path)}
        values = {"stack": options.stack or "", "store": options.store, "host": options.host,
                  "port": options.port, "console_url": options.url("/"), "state": self.layout.state,
                  "platform": self.layout.root, "python": sys.executable, "tls_args": [],
                  "store_args": [], "tls_cert": "", "tls_key": "",
                  # the console's bans act on the stack's firewalls when this platform deploys the stack
                  "stack_args": ["--stack", options.stack]
                  if options.stack and any(c.part_of_lab for c in spec.components) else []}
        if not options.plain_http:
            files = tls.ensure_tls(self.layout.tls, tls.default_names(options.host))
            if files.created:
                self.progress(f"platform CA: {files.ca_cert} ({', '.join(files.created)} created)")
            facts["ca_certificate"] = str(files.ca_cert)
            values.update(tls_cert=files.cert, tls_key=files.key,
                          tls_args=["--tls-certfile", files.cert, "--tls-keyfile", files.key])
        if options.store == "elasticsearch":
            values["store_args"] = ["--config", self.layout.root / "secops-elasticsearch.json"]
        facts["credentials"] = admin.ensure_first_admin(self.layout.credentials,
                                                        self.layout.state / "console" / "users.yaml",
                                                        facts["console_url"])
        opts = {"stack": options.stack, "store": options.store}
        entries = [_entry(p) for p in plan(spec, opts, values, self.launcher)]
        self.planned_schedules = plan_schedules(spec, values, self.launcher)
        return facts, entries

    def up(self, options: Options, spec: Spec) -> dict:
        started = time.monotonic()
        options.check()
        # Both threads below import parts of `cryptography` on first use; imported here first, they cannot
        # race on its module locks (CI saw Python's _DeadlockError when the CA and the keystore did).
        import cryptography.hazmat.backends.openssl  # noqa: F401
        import cryptography.x509  # noqa: F401
        from crypto import keystore, suite  # noqa: F401
        from . import tls  # noqa: F401
        with ThreadPoolExecutor(max_workers=1) as background:
            # the keystore's self-test (SM2 in pure Python: about half a second of CPU) runs while the
            # components are checked; nothing before the steps needs the keystore
            signing_ready = background.submit(signing.ensure_signing)
            facts, entries = self.prepare(options, spec)
            found = self.check_all(entries)
            facts["signing"] = signing_ready.result()
        if facts["signing"]["created"]:
            self.progress(f"signing: created the root key file {facts['signing']['path']}; back it up")
        write_json(self.layout.platform, {"options": options.__dict__, "spec": spec.source,
                                          "facts": facts, "components": entries})
        result: dict[str, dict] = {}
        ran: set[str] = set()
        for entry in entries:
            if entry["kind"] != "step":
                continue
            name = entry["name"]
            blocked = [n for n in entry["needs"] if result.get(n, {}).get("state") != UP]
            if blocked:
                result[name] = {"state": DOWN, "why": f"not run: needs {', '.join(blocked)}",
                                "action": "skipped"}
                continue
            if any(n in ran for n in entry["needs"]):
                self.layout.stamp(name).unlink(missing_ok=True)
                state, why = self.check(entry, None)
            else:
                state, why = found[name]
            if state == UP:
                result[name] = {"state": UP, "why": why, "action": "found up"}
                continue
            result[name] = self._run_step(entry)
            if result[name]["state"] == UP:
                ran.add(name)
        result.update(self._start_services(entries, result, ran, found))
        components = {e["name"]: {"kind": e["kind"], **result[e["name"]],
                                  "log": str(self.layout.log(e["name"])),
                                  "check_seconds": self.check_seconds.get(e["name"])} for e in entries}
        report = self._report(facts, components, time.monotonic() - started)
        write_json(self.layout.platform, {"options": options.__dict__, "spec": spec.source,
                                          "facts": facts, "components": entries})
        return report

    def _run_step(self, entry: dict) -> dict:
        name, log = entry["name"], self.layout.log(entry["name"])
        self.progress(f"{name}: running `{' '.join(entry['run'][-4:])}` — {entry['description']} "
                      f"(log {log})")
        began = time.monotonic()
        with log.open("ab") as err:
            err.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} govctl up runs: "
                      f"{' '.join(entry['run'])}\n".encode())
            err.flush()
            offset = err.tell()
            try:
                proc = subprocess.run(entry["run"], stdout=subprocess.PIPE, stderr=err, cwd=self.cwd,
                                      timeout=entry["timeout"], stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                return {"state": DOWN, "why": f"did not finish within {entry['timeout']:g} s; see {log}",
                        "action": "failed", "seconds": round(time.monotonic() - began, 1)}
            end = os.fstat(err.fileno()).st_size  # what the step wrote to stderr ends here
            err.write(proc.stdout)
        seconds = round(time.monotonic() - began, 1)
        if proc.returncode != 0:
            return {"state": DOWN, "why": f"exited with code {proc.returncode}: "
                                          f"{_last_error(log, offset, end)} (see {log})",
                    "action": "failed", "seconds": seconds}
        if entry["save_json"]:
            try:
                value = json.loads(proc.stdout)[entry["save_json"]["key"]]
            except (ValueError, KeyError, TypeError):
                return {"state": DOWN, "why": f"its output has no JSON key {entry['save_json']['key']!r}",
                        "action": "failed", "seconds": seconds}
            write_json(self.layout.root / entry["save_json"]["file"], value)
        if entry["check_stamp"]:
            self.layout.stamp(name).write_text(f"{time.time()}\n")
        state, why = self.check(entry, None)
        settle = time.monotonic() + min(STEP_SETTLE, entry["timeout"])
        while state != UP and entry["check_command"] and time.monotonic() < settle:
            time.sleep(1)  # e.g. Prometheus has not scraped every target yet
            state, why = self.check(entry, None)
        self.progress(f"{name}: {state} after {seconds:g} s")
        return {"state": state, "why": why if state == UP else f"ran, but its check says: {why}",
                "action": "started", "seconds": seconds}

    def _start_services(self, entries: list[dict], result: dict, ran: set[str],
                        found: dict[str, tuple[str, str]]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        services = [e for e in entries if e["kind"] == "service"]
        old = {s["name"]: s for s in (read_json(self.layout.plan) or {}).get("services", [])}
        planned = []
        for e in services:
            blocked = [n for n in e["needs"] if (result.get(n) or out.get(n) or {}).get("state") != UP
                       and n not in {s["name"] for s in planned}]
            if blocked:
                if e["name"] in old:  # already running: a need's failed check does not stop it
                    planned.append(old[e["name"]])
                    state, why = found.get(e["name"], (DOWN, ""))
                    out[e["name"]] = {"state": state, "why": f"{why}; needs {', '.join(blocked)}, "
                                                             "which is not up", "action": "kept"}
                else:
                    out[e["name"]] = {"state": DOWN, "why": f"not started: needs {', '.join(blocked)}",
                                      "action": "skipped"}
                continue
            restart_now = any(n in ran for n in e["needs"])  # e.g. the lab was made again
            token = str(time.time()) if restart_now else old.get(e["name"], {}).get("token", "")
            planned.append({"name": e["name"], "argv": e["run"], "restart": e["restart"], "token": token})
        schedules = self.planned_schedules  # the supervisor also runs the scheduled jobs (issue 19)
        old_schedules = (read_json(self.layout.plan) or {}).get("schedules", [])
        if planned != list(old.values()) or schedules != old_schedules or not self.layout.plan.exists():
            write_json(self.layout.plan, {"services": planned, "schedules": schedules})
        if (planned or schedules) and supervisor_pid(self.layout) is None:
            self._start_supervisor()
        for s in planned:
            if s["name"] in out:  # kept as it was
                continue
            entry = next(e for e in services if e["name"] == s["name"])
            state, why = found.get(s["name"], (DOWN, ""))
            if state == UP and s == old.get(s["name"]):
                out[s["name"]] = {"state": UP, "why": why, "action": "found up"}
                continue
            self.progress(f"{s['name']}: starting under the supervisor — {entry['description']}")
            out[s["name"]] = self._await_service(entry, s["token"])
        return out

    def _start_supervisor(self) -> None:
        log = self.layout.log("supervisor")
        self.progress(f"supervisor: starting (log {log})")
        with log.open("ab") as out:
            subprocess.Popen([*self.launcher, "supervise"], stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, cwd=self.cwd, start_new_session=True)
        deadline = time.monotonic() + 15
        while supervisor_pid(self.layout) is None:
            if time.monotonic() > deadline:
                raise GovctlError(f"the supervisor did not start within 15 s; see {log}")
            time.sleep(0.1)

    def _await_service(self, entry: dict, token: str) -> dict:
        began = time.monotonic()
        deadline = began + entry["timeout"]
        state, why = DOWN, "not started"
        while time.monotonic() < deadline:
            services = (read_json(self.layout.status) or {}).get("services", {})
            state, why = self.check(entry, services, token)
            if state == UP:
                break
            time.sleep(0.3)
        seconds = round(time.monotonic() - began, 1)
        self.progress(f"{entry['name']}: {state} after {seconds:g} s")
        if state != UP:
            why = f"{why} (waited {entry['timeout']:g} s; see {self.layout.log(entry['name'])})"
        return {"state": state, "why": why, "action": "started", "seconds": seconds}

    def _report(self, facts: dict, components: dict, seconds: float | None = None) -> dict:
        report = {"console_url": facts["console_url"],
                  "credentials_file": facts["credentials"]["path"],
                  "ca_certificate": facts.get("ca_certificate"),
                  "signing": facts["signing"],
                  "up": all(c["state"] == UP for c in components.values()) and
                        facts["signing"]["state"] == UP,
                  "components": components}
        if seconds is not None:
            report["seconds"] = round(seconds, 1)
        return report

    # -- status ------------------------------------------------------------------------------
    def last(self) -> dict:
        data = read_json(self.layout.platform)
        if not data:
            raise GovctlError(f"the platform was never brought up here ({self.layout.root}): run "
                              "`govctl up`")
        return data

    def status(self) -> dict:
        data = self.last()
        entries = data["components"]
        checked = self.check_all(entries)
        services = (read_json(self.layout.status) or {}).get("services", {})
        components = {}
        for e in entries:
            state, why = checked[e["name"]]
            item = {"kind": e["kind"], "state": state, "why": why, "log": str(self.layout.log(e["name"]))}
            if e["kind"] == "service" and e["name"] in services:
                s = services[e["name"]]
                item.update(pid=s.get("pid"), restarts=s["restarts"], last_exit=s["last_exit"],
                            history=s["history"])
            components[e["name"]] = item
        report = self._report(data["facts"], components)
        report["supervisor"] = {"pid": supervisor_pid(self.layout),
                                "log": str(self.layout.log("supervisor"))}
        return report

    # -- down --------------------------------------------------------------------------------
    def down(self, keep_lab: bool = False) -> dict:
        data = read_json(self.layout.platform)
        if not data:
            return {"stopped": [], "kept": [], "failed": {}}  # never up here: nothing to stop
        stopped, kept, failed = [], [], {}
        pid = supervisor_pid(self.layout)
        if pid is not None:
            self.progress(f"supervisor: stopping (pid {pid}) and every service")
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 60
            while process_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if process_alive(pid):
                os.kill(pid, signal.SIGKILL)
        for e in data["components"]:  # anything a killed supervisor left behind
            if e["kind"] == "service":
                stopped.append(e["name"])
                pid_file = self.layout.pid(e["name"])
                try:
                    leftover = int(pid_file.read_text().strip())
                except (OSError, ValueError):
                    continue
                if process_alive(leftover, e["run"]):
                    try:
                        os.killpg(leftover, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                pid_file.unlink(missing_ok=True)
        write_json(self.layout.plan, {"services": []})
        for e in reversed(data["components"]):
            if e["kind"] != "step":
                continue
            if keep_lab and e["part_of_lab"]:
                kept.append(e["name"])
                continue
            if e["stop"]:
                self.progress(f"{e['name']}: stopping")
                with self.layout.log(e["name"]).open("ab") as log:
                    proc = subprocess.run(e["stop"], stdout=log, stderr=log, cwd=self.cwd,
                                          stdin=subprocess.DEVNULL, timeout=e["timeout"])
                if proc.returncode != 0:
                    failed[e["name"]] = f"`{' '.join(e['stop'][-3:])}` exited with code " \
                                        f"{proc.returncode}; see {self.layout.log(e['name'])}"
                    continue
                stopped.append(e["name"])
                # it, and whatever needs it, must run again at the next `up` (e.g. hardening a new lab)
                for name in _dependents(data["components"], e["name"]):
                    self.layout.stamp(name).unlink(missing_ok=True)
        return {"stopped": stopped, "kept": kept, "failed": failed}


def _last_error(log: Path, offset: int, end: int) -> str:
    """The step's own last error line (what it wrote to stderr between the offsets), shortened."""
    with log.open("rb") as f:
        f.seek(offset)
        text = f.read(max(end - offset, 0)).decode("utf-8", "replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    return ((errors or lines or ["(no output)"])[-1]).removeprefix("error: ")[:300]


def _dependents(entries: list[dict], name: str) -> set[str]:
    """`name` and every component that needs it, directly or not."""
    found = {name}
    changed = True
    while changed:
        changed = False
        for e in entries:
            if e["name"] not in found and found & set(e["needs"]):
                found.add(e["name"])
                changed = True
    return found


def http_check(url: str, cafile: str | None, timeout: float) -> str:
    """'' when the URL answers 2xx (HTTPS verified against the platform CA), else what went wrong."""
    import httpx

    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=cafile) if cafile else True
    try:
        response = httpx.get(url, timeout=timeout, verify=verify)
    except httpx.HTTPError as exc:
        return f"does not answer ({type(exc).__name__}: {str(exc)[:200]})"
    if not 200 <= response.status_code < 300:
        return f"answers HTTP {response.status_code}"
    return ""
