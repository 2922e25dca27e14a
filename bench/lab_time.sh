#!/usr/bin/env bash
# Lab figures: `govctl lab up` from empty with a cold root-filesystem cache and with a warm one,
# a no-op `up`, `down`; the stack's resource count; memory in use with the lab up.
# usage: sudo bench/lab_time.sh [--cold] [--stack NAME]   (--cold also rebuilds the cached Debian rootfs;
#        --stack lab-30: the 30-host lab of issue 20; default lab; --keep-up: leave it up at the end)
# It takes the lab down and up again: run it when nobody else is using the lab.
set -euo pipefail
cd "$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)"
govctl=.venv/bin/govctl
secs() { python3 -c "import sys,time; print(f'{time.time()-float(sys.argv[1]):.1f}')" "$1"; }
mem_used() { free -m | awk '/^Mem:/ {print $3}'; }
cold=; keep=; stack=lab
while [[ $# -gt 0 ]]; do
  case $1 in --cold) cold=1; shift ;; --keep-up) keep=1; shift ;; --stack) stack=$2; shift 2 ;; *) echo "unknown option $1" >&2; exit 2 ;; esac
done
prefix=${GOVCTL_LAB_PREFIX:-gl-}
# Resident memory of every process inside the lab's namespaces (hosts' init, sshd, PostgreSQL, web).
lab_rss() {
  local pids; pids=$(for ns in $(ip netns list | awk '{print $1}' | grep "^$prefix"); do ip netns pids "$ns"; done | sort -u)
  echo "$(echo "$pids" | grep -c . ) processes, $(for p in $pids; do awk '/^VmRSS:/ {print $2}' /proc/$p/status 2>/dev/null; done | awk '{s+=$1} END {printf "%d", s/1024}') MiB RSS"
}

$govctl lab down --stack $stack --json > /dev/null 2>&1 || true
base_mem=$(mem_used)
if [[ -n $cold ]]; then
  rm -rf "$(.venv/bin/python -c 'from infra.lab.rootfs import base_path; print(base_path())')"
  t=$(date +%s.%N); $govctl lab up --stack $stack --json > /tmp/lab-up-cold.json 2>/dev/null
  echo "lab up from empty, cold rootfs cache: $(secs "$t") s"
  $govctl lab down --stack $stack --json > /dev/null 2>&1
fi
t=$(date +%s.%N); $govctl lab up --stack $stack --json > /tmp/lab-up.json 2>/dev/null
echo "lab up from empty, warm rootfs cache: $(secs "$t") s"
t=$(date +%s.%N); $govctl lab up --stack $stack --json > /tmp/lab-noop.json 2>/dev/null
echo "lab up, no-op: $(secs "$t") s; changes: $(python3 -c 'import json; print(json.load(open("/tmp/lab-noop.json"))["resource_changes"])')"
echo "resources in the stack: $(.venv/bin/python -c 'from infra.engine import Engine; import sys; print(Engine(sys.argv[1]).resource_count())' "$stack")"
sleep 5
echo "memory in use with the lab up: $(( $(mem_used) - base_mem )) MiB more than without it ($(mem_used) MiB in all; free -m 'used' before: $base_mem MiB)"
echo "lab processes: $(lab_rss)"
[[ -n $keep ]] && exit 0
t=$(date +%s.%N); $govctl lab down --stack $stack --json > /tmp/lab-down.json 2>/dev/null
echo "lab down: $(secs "$t") s; left behind: $(python3 -c 'import json; print(json.load(open("/tmp/lab-down.json"))["left"])')"
