"""Health of a running lab, read from the stack outputs: SSH to every host, replication state
and lag on the primary, and which center serves the service address."""
from __future__ import annotations

import json
import dataclasses
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from infra.outputs import StackOutputs

from . import system
from .hostops import host_pid


def ssh(outputs: StackOutputs, fqdn: str, *cmd: str, timeout: float = 15) -> subprocess.CompletedProcess:
    """Run a command on a lab host over SSH, exactly as a user would (`ssh web-1.prod …`)."""
    return subprocess.run(["ssh", "-F", outputs.ssh.config, "-o", "BatchMode=yes",
                           "-o", "ConnectTimeout=5", fqdn, *cmd],
                          capture_output=True, text=True, timeout=timeout)


def http_get(ns: str, url: str, timeout: float = 3) -> tuple[int, dict]:
    """GET a URL from inside a namespace (e.g. a citizen on the internet); (status, JSON body)."""
    script = ("import json,sys,urllib.request,urllib.error\n"
              "try:\n r=urllib.request.urlopen(sys.argv[1],timeout=float(sys.argv[2]));"
              "print(r.status);print(r.read().decode())\n"
              "except urllib.error.HTTPError as e: print(e.code);print(e.read().decode())\n"
              "except Exception as e: print(0);print(json.dumps({'error':str(e)}))\n")
    proc = system.sh("ip", "netns", "exec", ns, sys.executable, "-c", script, url, str(timeout),
                     check=False, timeout=timeout + 5)
    lines = proc.stdout.splitlines()
    try:
        return int(lines[0]), json.loads(lines[1]) if len(lines) > 1 else {}
    except (IndexError, ValueError):
        return 0, {"error": proc.stderr.strip()}


def replication(outputs: StackOutputs) -> list[dict[str, Any]]:
    folder = outputs.host(outputs.databases.primary.host).folder
    sql = ("SELECT application_name, state, sync_state, "
           "coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::bigint, "
           "coalesce(extract(epoch FROM replay_lag), 0) FROM pg_stat_replication")
    out = system.host_exec(host_pid(folder), "psql", "-X", "-At", "-F", "|", "-c", sql,
                           user="postgres").stdout
    rows = []
    for line in out.splitlines():
        name, state, sync_state, lag_bytes, lag_seconds = line.split("|")
        rows.append({"standby": name, "state": state, "sync_state": sync_state,
                     "lag_bytes": int(lag_bytes), "lag_seconds": float(lag_seconds)})
    return sorted(rows, key=lambda r: r["standby"])


def lab_status(outputs: StackOutputs) -> dict[str, Any]:
    def check(host):
        try:
            proc = ssh(outputs, host.fqdn, "hostname")
            ok = proc.returncode == 0 and proc.stdout.strip() == host.name
            detail = proc.stdout.strip() if ok else (proc.stderr.strip() or proc.stdout.strip())
        except subprocess.TimeoutExpired:
            ok, detail = False, "ssh timed out"
        return {"fqdn": host.fqdn, "address": host.ipv4, "ssh": ok, "detail": detail}

    def replication_state():
        try:
            return replication(outputs), None
        except (system.LabCommandError, subprocess.TimeoutExpired) as exc:
            return [], str(exc)

    def serving_center():  # citizens reach the service from the internet
        code, body = http_get(outputs.internet_namespace(), outputs.service.url)
        return body.get("center") if code == 200 else None

    # Every probe at once (SSH to each host, the primary's replication, the service from the
    # internet): the slowest alone sets the time, which `govctl up`'s check of the lab waits for.
    with ThreadPoolExecutor(max_workers=len(outputs.hosts) + 2) as pool:
        host_checks = [pool.submit(check, host) for host in outputs.hosts]
        replication_check = pool.submit(replication_state)
        service_check = pool.submit(serving_center) if outputs.service else None
        hosts = [c.result() for c in host_checks]
        standbys, repl_error = replication_check.result()
        served_by = service_check.result() if service_check else None
    service = None
    if outputs.service:
        service = {**dataclasses.asdict(outputs.service), "client_namespace": outputs.internet_namespace()}
    primary = outputs.databases.primary
    expected = {s.application_name: s.mode for s in outputs.databases.standbys}
    healthy = (all(h["ssh"] for h in hosts) and repl_error is None
               and {r["standby"] for r in standbys if r["state"] == "streaming"} == set(expected)
               and (service is None or served_by == service["active_center"]))
    return {"healthy": healthy, "hosts": hosts,
            "replication": {"primary": {"center": primary.center, "host": primary.host,
                                        "address": primary.address}, "standbys": standbys,
                            "error": repl_error},
            "service": {**(service or {}), "served_by": served_by}}
