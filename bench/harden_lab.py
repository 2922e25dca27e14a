#!/usr/bin/env python3
"""Hardening and audit of every lab host, timed; Lynis hardening index before and after on one host.

usage: sudo .venv/bin/python bench/harden_lab.py [--stack lab] [--host web-1.samecity] [--forks 10] [--keep]
                                                [--no-lynis] [--out FILE]  (FILE also gets each run's host × item verdicts)
       (the 30-host lab of issue 20: `govctl lab up --stack lab-30`, then --stack lab-30 --keep --no-lynis)

1. Lynis (`lynis audit system --quick`) inside one host's namespaces and root filesystem
   (nsenter into the pid from <folder>/init.pid): hardening index and its suggestions.
2. `govctl audit --json` of all hosts (level 3), `govctl harden --json` (first run), `govctl harden`
   again (no-op run), `govctl audit` again — wall clock of each command, hosts, forks, changed tasks.
3. Lynis again on the same host; the suggestions left are listed with whether a catalog item covers them.
4. Unless --keep: `govctl harden --rollback` on every host, so the lab is left as it was found.
Prints one JSON document and a Markdown table for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOVCTL = ROOT / ".venv" / "bin" / "govctl"


def govctl(*args: str) -> tuple[float, int, dict]:
    started = time.monotonic()
    proc = subprocess.run([str(GOVCTL), *args, "--json"], capture_output=True, text=True, cwd=ROOT)
    seconds = time.monotonic() - started
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        sys.exit(f"govctl {' '.join(args)} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return round(seconds, 1), proc.returncode, data


def lynis(folder: str) -> dict:
    """Lynis inside the host; the pid is read just before (other sessions may restart lab hosts)."""
    pid = int((Path(folder) / "init.pid").read_text())
    started = time.monotonic()
    subprocess.run(["nsenter", "-t", str(pid), "-a", "-r", "-w", "lynis", "audit", "system", "--quick",
                    "--no-colors", "--no-log"], capture_output=True, text=True)
    try:
        report = Path(f"/proc/{pid}/root/var/log/lynis-report.dat").read_text(errors="replace")
    except OSError as exc:
        return {"error": f"no Lynis report (host restarted during the scan?): {exc}"}
    values = {}
    suggestions, warnings = [], []
    for line in report.splitlines():
        key, _, value = line.partition("=")
        if key == "suggestion[]":
            suggestions.append(value.split("|")[:2])
        elif key == "warning[]":
            warnings.append(value.split("|")[:2])
        else:
            values[key] = value
    return {"hardening_index": int(values.get("hardening_index", -1)), "tests_done": int(values.get("lynis_tests_done", 0)),
            "suggestions": suggestions, "warnings": warnings, "seconds": round(time.monotonic() - started, 1)}


# Lynis test ids whose subject a catalog item covers (used to list what Lynis flags beyond the catalog).
COVERED = {"AUTH-9230": "IA-PASSWORD-COMPLEXITY", "AUTH-9262": "IA-PASSWORD-COMPLEXITY",
           "AUTH-9286": "IA-PASSWORD-AGING", "AUTH-9328": "AC-DEFAULT-UMASK", "AUTH-9408": "IA-LOGIN-FAILURE-LOCKOUT",
           "SSH-7408": "IA-REMOTE-ADMIN-SSH", "SSH-7440": "IA-REMOTE-ADMIN-SSH", "ACCT-9628": "AU-AUDIT-DAEMON",
           "ACCT-9630": "AU-AUDIT-POLICY", "LOGG-2154": "AU-REMOTE-LOGGING", "LOGG-2146": "AU-LOG-RETENTION",
           "KRNL-6000": "IP-NETWORK-STACK", "SHLL-6220": "IA-SESSION-TIMEOUT", "FILE-7524": "AC-CRITICAL-FILE-PERMISSIONS",
           "HRDN-7222": "IP-MINIMAL-INSTALL", "HRDN-7230": "MC-MALWARE-PROTECTION", "MACF-6208": "AC-SECURITY-LABELS",
           "PKGS-7392": "IP-VULNERABILITY-PATCHING", "NETW-3200": "IP-LISTENING-PORTS"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="web-1.samecity")
    ap.add_argument("--forks", default="10")
    ap.add_argument("--keep", action="store_true", help="leave the hosts hardened")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--stack", default="lab", help="lab-backend stack whose hosts to audit and harden")
    ap.add_argument("--no-lynis", action="store_true", help="skip the Lynis scans (only the govctl timings)")
    args = ap.parse_args()

    outputs = json.loads(subprocess.run([str(GOVCTL), "infra", "outputs", "--stack", args.stack], capture_output=True,
                                        text=True, check=True, cwd=ROOT).stdout)
    host = next(h for h in outputs["hosts"] if h["fqdn"] == args.host)
    result = {"stack": args.stack, "host_count": len(outputs["hosts"]), "forks": int(args.forks),
              "lynis_host": args.host}
    result["lynis_before"] = {} if args.no_lynis else lynis(host["folder"])
    runs = {}
    for name, cmd in (("audit_before", ("audit",)), ("harden_first", ("harden",)), ("harden_noop", ("harden",)),
                      ("audit_after", ("audit",))):
        seconds, code, data = govctl(*cmd, "--level", "3", "--forks", args.forks, "--stack", args.stack)
        verdicts: dict[str, int] = {}
        for h in data["hosts"].values():
            for v, n in h["verdicts"].items():
                verdicts[v] = verdicts.get(v, 0) + n
        runs[name] = {"seconds": seconds, "exit": code, "changed_tasks": data["changed_tasks"],
                      "unreachable": data["unreachable"], "failed": data["failed"], "verdicts": verdicts}
        print(f"{name}: {runs[name]}", file=sys.stderr)
        # the host × item verdicts, so that two versions of the role can be shown to judge alike
        runs[name]["matrix"] = {host: {item["id"]: item["verdict"] for item in h["items"]}
                                for host, h in sorted(data["hosts"].items())}
    result["runs"] = runs
    result["lynis_after"] = {} if args.no_lynis else lynis(host["folder"])
    result["lynis_after"]["not_in_catalog"] = [s for s in result["lynis_after"].get("suggestions", [])
                                               if s[0] not in COVERED]
    if not args.keep:
        result["rollback"] = {}
        for h in outputs["hosts"]:
            seconds, code, data = govctl("harden", "--rollback", h["fqdn"], "--stack", args.stack)
            result["rollback"][h["fqdn"]] = {"seconds": seconds, "exit": code, "restored": len(data.get("restored", []))}
    if args.out:
        args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")
    for r in runs.values():
        del r["matrix"]  # in --out only: 30 hosts × 32 items is no table
    print(json.dumps(result, ensure_ascii=False, indent=1))
    print("\n| run | wall s | exit | changed tasks | verdicts (all hosts) |\n|---|---|---|---|---|")
    for name, r in runs.items():
        print(f"| {name} | {r['seconds']} | {r['exit']} | {r['changed_tasks']} | "
              + ", ".join(f"{k} {v}" for k, v in r["verdicts"].items()) + " |")
    print(f"\nLynis hardening index on {args.host}: before {result['lynis_before'].get('hardening_index')}, "
          f"after {result['lynis_after'].get('hardening_index')}")


if __name__ == "__main__":
    main()
