#!/usr/bin/env bash
# `make demo`: runs examples/demo.yaml on a fresh data dir, then shows what the
# log recorded: the process tree and its events.
set -euo pipefail
keel=${1:-build/bin/keel}
data=$(mktemp -d /tmp/keel-demo-XXXXXX)
here=$(cd "$(dirname "$0")" && pwd)
echo "== keel run examples/demo.yaml (data dir: $data)"
status=0
"$keel" run "$here/demo.yaml" --data "$data" --input order_id=A-42 || status=$?
id=$("$keel" ls --data "$data" --json | sed -n 's/.*"id":"\(p_[^"]*\)".*/\1/p' | head -n1)
echo
echo "== keel events $id"
"$keel" events "$id" --data "$data" > "$data/events.txt"
head -n 25 "$data/events.txt"
echo "   ... ($(wc -l < "$data/events.txt") events in all; keel verify:)"
"$keel" verify --data "$data"
echo
echo "== a process that waits: examples/approval.yaml (exit 4 = at rest, unfinished)"
"$keel" run "$here/approval.yaml" --data "$data" --id p_ship_A42 --input order_id=A-42 || true
echo "-- keel approve p_ship_A42 ship --by alice"
"$keel" approve p_ship_A42 ship --data "$data" --by alice --reason "stock checked" || true
echo "-- keel signal p_ship_A42 payment-A-42 --payload '{\"amount\": 250}'"
"$keel" signal p_ship_A42 payment-A-42 --data "$data" --payload '{"amount": 250}'
echo
echo "== the embedded C++ example (examples/embed)"
"$(dirname "$keel")/embed_example" "$data/embed"
echo
echo "exit status of keel run: $status (0 = completed)"
echo
echo "== see these runs in the web console (timelines, event logs, controls):"
echo "   $keel serve --data $data --listen 127.0.0.1:7330"
echo "   then open http://127.0.0.1:7330/"
exit $status
