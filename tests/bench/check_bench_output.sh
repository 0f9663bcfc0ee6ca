#!/usr/bin/env bash
# Runs one benchmark program with --smoke and checks its stdout: every line is
#   peer=<name> workload=<w>-smoke metric=<m> value=<number> unit=<u>
# (shared/bench/WORKLOADS.md), there is at least one `errors` line, and every
# `errors` value is 0. No timing is checked.
set -uo pipefail
bin=$1
out=$("$bin" --smoke)
rc=$?
if [ "$rc" != 0 ]; then
  echo "$bin --smoke exited $rc" >&2
  exit 1
fi
BENCH_OUT="$out" python3 - "$bin" <<'PY'
import os, re, sys
line_re = re.compile(r"^peer=[a-z0-9-]+ workload=[a-z0-9-]+-smoke metric=[a-z0-9_]+ "
                     r"value=-?[0-9]+(\.[0-9]+)?(e[-+][0-9]+)? unit=\S+$")
lines = os.environ["BENCH_OUT"].splitlines()
bad = [l for l in lines if not line_re.match(l)]
errors = [l for l in lines if " metric=errors " in l]
if not lines or bad:
    sys.exit(f"{sys.argv[1]}: malformed result lines: {bad or 'no output'}")
if not errors:
    sys.exit(f"{sys.argv[1]}: no errors line")
nonzero = [l for l in errors if not l.split(" value=")[1].startswith("0 ")]
if nonzero:
    sys.exit(f"{sys.argv[1]}: errors reported: {nonzero}")
print(f"{sys.argv[1]}: {len(lines)} result lines, {len(errors)} errors lines, all 0")
PY
