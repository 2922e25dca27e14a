#!/usr/bin/env bash
# Times govctl's set-up as on a fresh machine (no Go module or build cache, no govctl cache, new
# clone, new .venv), then a second run, then `govctl infra preview --stack tiny`.
# Debian packages are already installed here, so their share is what a machine that has them pays.
# usage: bench/setup_time.sh            (prints one line per figure)
set -euo pipefail
src=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
work=$(mktemp -d /tmp/govctl-setup-bench.XXXX)
trap 'rm -rf "$work"' EXIT
git clone -q "$src" "$work/clone"
export GOVCTL_CACHE=$work/cache GOMODCACHE=$work/gomod GOCACHE=$work/gobuild PIP_NO_CACHE_DIR=1
cd "$work/clone"
t0=$(date +%s.%N)
python3 scripts/setup.py > "$work/first.log" 2>&1
t1=$(date +%s.%N)
python3 scripts/setup.py > "$work/second.log" 2>&1
t2=$(date +%s.%N)
GOVCTL_STATE=$work/state .venv/bin/govctl infra preview --stack tiny > /dev/null 2>&1
t3=$(date +%s.%N)
GOVCTL_STATE=$work/state .venv/bin/govctl infra preview --stack tiny > /dev/null 2>&1
t4=$(date +%s.%N)
pulumi_share=$(grep -o 'Pulumi CLI: done in [0-9.]* s' "$work/first.log" | grep -o '[0-9.]*' | head -1)
venv_share=$(grep -o 'virtualenv: done in [0-9.]* s' "$work/first.log" | grep -o '[0-9.]*' | head -1)
printf 'fresh set-up: %.1f s (Pulumi build %s s, virtualenv %s s)\n' "$(echo "$t1 - $t0" | bc)" "$pulumi_share" "$venv_share"
printf 'second set-up: %.1f s\n' "$(echo "$t2 - $t1" | bc)"
printf 'infra preview --stack tiny: first %.1f s (creates the stack), then %.1f s\n' "$(echo "$t3 - $t2" | bc)" "$(echo "$t4 - $t3" | bc)"
printf 'pulumi version: %s\n' "$(.tools/pulumi/pulumi version)"
