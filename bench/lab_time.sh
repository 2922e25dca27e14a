#!/usr/bin/env bash
# Lab figures: `govctl lab up` from empty with a cold root-filesystem cache and with a warm one,
# a no-op `up`, `down`; the stack's resource count; memory in use with the lab up.
# usage: sudo bench/lab_time.sh [--cold]   (--cold also rebuilds the cached Debian rootfs)
# It takes the lab down and up again: run it when nobody else is using the lab.
set -euo pipefail
cd "$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)"
govctl=.venv/bin/govctl
secs() { python3 -c "import sys,time; print(f'{time.time()-float(sys.argv[1]):.1f}')" "$1"; }
mem_used() { free -m | awk '/^Mem:/ {print $3}'; }

$govctl lab down --json > /dev/null 2>&1 || true
base_mem=$(mem_used)
if [[ ${1:-} == --cold ]]; then
  rm -rf "$(.venv/bin/python -c 'from infra.lab.rootfs import base_path; print(base_path())')"
  t=$(date +%s.%N); $govctl lab up --json > /tmp/lab-up-cold.json 2>/dev/null
  echo "lab up from empty, cold rootfs cache: $(secs "$t") s"
  $govctl lab down --json > /dev/null 2>&1
fi
t=$(date +%s.%N); $govctl lab up --json > /tmp/lab-up.json 2>/dev/null
echo "lab up from empty, warm rootfs cache: $(secs "$t") s"
t=$(date +%s.%N); $govctl lab up --json > /tmp/lab-noop.json 2>/dev/null
echo "lab up, no-op: $(secs "$t") s; changes: $(python3 -c 'import json; print(json.load(open("/tmp/lab-noop.json"))["resource_changes"])')"
echo "resources in the stack: $(.venv/bin/python -c 'from infra.engine import Engine; print(Engine("lab").resource_count())')"
sleep 5
echo "memory in use with the lab up: $(( $(mem_used) - base_mem )) MiB more than without it ($(mem_used) MiB in all)"
t=$(date +%s.%N); $govctl lab down --json > /tmp/lab-down.json 2>/dev/null
echo "lab down: $(secs "$t") s; left behind: $(python3 -c 'import json; print(json.load(open("/tmp/lab-down.json"))["left"])')"
