#!/usr/bin/env bash
# `make bench-compare`: runs the peers (shared/bench/peers/run-all.sh: db_bench,
# Restate, DBOS; it installs what it needs with apt/npm, ~8 minutes) and
# keel's benchmarks in one invocation, then prints, per workload and metric,
# keel's figure, each peer's and the ratio keel / peer.
#   bench/compare.sh [BUILD_DIR]      SMOKE=1 for tiny counts, PEERS="..." for a subset
# All result lines are kept in $OUT_DIR (default /tmp/keel-compare).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
shared=${KEEL_SHARED_DIR:-$here/../../shared}
out_dir=${OUT_DIR:-/tmp/keel-compare}
mkdir -p "$out_dir"
ts=$(date -u +%Y%m%dT%H%M%SZ)
peers_out=$out_dir/peers-$ts.txt
keel_out=$out_dir/keel-$ts.txt
rc=0
echo "[compare] peers -> $peers_out" >&2
"$shared/bench/peers/run-all.sh" >"$peers_out" || rc=1
echo "[compare] keel -> $keel_out" >&2
"$here/run.sh" "$build" >"$keel_out" || rc=1
python3 "$here/compare.py" "$keel_out" "$peers_out"
exit $rc
