#!/usr/bin/env bash
# `make bench`: keel's result lines (shared/bench/WORKLOADS.md format) on
# stdout, diagnostics on stderr.
#   bench/run.sh [BUILD_DIR] [--smoke] [more flags for both programs]
# --smoke (or SMOKE=1): tiny counts, workloads tagged -smoke (< 1 minute).
set -euo pipefail
build=build
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  build=$1
  shift
fi
rc=0
"$build/bin/store_bench" "$@" || rc=1
"$build/bin/workflow_bench" "$@" || rc=1
"$build/bin/http_bench" "$@" || rc=1
exit $rc
