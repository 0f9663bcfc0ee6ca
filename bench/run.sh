#!/usr/bin/env bash
# `make bench`: keel's result lines (shared/bench/WORKLOADS.md format) on stdout.
# SMOKE=1 for tiny counts (workloads tagged -smoke).
set -euo pipefail
build=${1:-build}
"$build/bin/store_bench"
"$build/bin/workflow_bench"
