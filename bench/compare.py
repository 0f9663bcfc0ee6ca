#!/usr/bin/env python3
"""Side by side: keel's result lines next to the peers' (same run).

Usage: compare.py KEEL_RESULTS PEER_RESULTS
Both files hold lines `peer=<p> workload=<w> metric=<m> value=<v> unit=<u>`
(shared/bench/WORKLOADS.md). For each workload/metric that keel reports and
at least one peer reports too, prints keel's value, each peer's value and
the ratio keel / peer. keel's store-only workloads are listed next to
db_bench's fillseq at the same concurrency.
"""
import re
import sys

LINE = re.compile(r"^peer=(\S+) workload=(\S+) metric=(\S+) value=(\S+) unit=(\S+)$")

# keel's store workloads and the db_bench run with the same concurrency.
STORE_PEERS = {
    "store-append-sync-c1": ("fillseq-sync1-t1", "ops_per_sec"),
    "store-append-sync-c8": ("fillseq-sync1-t8", "ops_per_sec"),
    "store-append-async-c1": ("fillseq-sync0-t1", "ops_per_sec"),
}


def load(path):
    rows = {}
    with open(path) as f:
        for line in f:
            m = LINE.match(line.strip())
            if m:
                peer, workload, metric, value, unit = m.groups()
                rows[(peer, workload, metric)] = (float(value), unit)
    return rows


def main():
    keel, peers = load(sys.argv[1]), load(sys.argv[2])
    peer_names = sorted({p for p, _, _ in peers})
    print(f"{'workload':<26} {'metric':<24} {'keel':>12}  peer: value (keel/peer)")
    for (peer, workload, metric), (value, unit) in sorted(keel.items()):
        others = []
        for name in peer_names:
            key = (name, workload, metric)
            if workload in STORE_PEERS and metric == "appends_per_sec":
                key = (name,) + STORE_PEERS[workload]
            if key in peers and peers[key][0]:
                other = peers[key][0]
                others.append(f"{name}: {other:g} ({value / other:.2f}x)")
        if others:
            label = workload if peer == "keel" else f"{workload} [{peer}]"
            print(f"{label:<26} {metric:<24} {value:>12g}  " + "; ".join(others))


if __name__ == "__main__":
    main()
