#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Waku relay benchmarks, all-C against all-js-waku, in one run (results in
# docs/performance.md, "Waku relay"):
#  1. the 3-node line publisher - relay - subscriber, 1 KiB payloads:
#     latency at a fixed rate (p50/p99) and messages per second in a burst.
#     C: `pairlink waku node` as the relay, bench/bench_waku.c (publisher and
#     subscriber in one process). JS: interop/js-waku/waku-node.mjs as the
#     relay, interop/js-waku/bench-line.mjs (same phases, same output).
#  2. RSS of an idle relay node with 10 peers: `pairlink waku node` against
#     waku-node.mjs, the same 10 C peers (bench_waku peers) connected to each.
# usage: scripts/bench-waku.sh [BUILD_DIR] [RATE] [SECONDS] [BURST]
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
RATE=${2:-200} SECONDS_=${3:-10} BURST=${4:-2000}
CLI=$build/pairlink
B=$build/bench/bench_waku
JS=interop/js-waku
[ -x "$B" ] && [ -x "$CLI" ] || { echo "bench-waku: build first ($B, $CLI)" >&2; exit 1; }
work=$(mktemp -d); pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null; done; rm -rf "$work"' EXIT

c_addr() { for _ in $(seq 200); do a=$(sed -n 's/^listening on //p' "$1" | head -1); [ -n "$a" ] && { echo "$a"; return; }; sleep 0.05; done; }
js_addr() {
    for _ in $(seq 400); do
        a=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    d=json.loads(l)
    if d.get("event")=="listening": print(d["addr"]); break' "$1" 2>/dev/null)
        [ -n "$a" ] && { echo "$a"; return; }; sleep 0.05
    done
}
rss() { awk '/^VmRSS/ {print $2}' /proc/$1/status; }

echo "== line: publisher - relay - subscriber, 1 KiB, $RATE msg/s for $SECONDS_ s, then a burst of $BURST"
"$CLI" waku node >"$work/rc.out" 2>"$work/rc.err" & R=$!; pids+=($R)
A=$(c_addr "$work/rc.out")
"$B" line "$A" --size 1024 --rate "$RATE" --seconds "$SECONDS_" --burst "$BURST"
kill $R; wait $R 2>/dev/null
node $JS/waku-node.mjs --lifetime 300 >"$work/rj.out" 2>"$work/rj.err" & R=$!; pids+=($R)
A=$(js_addr "$work/rj.out")
node $JS/bench-line.mjs "$A" 1024 "$RATE" "$SECONDS_" "$BURST"
kill $R; wait $R 2>/dev/null

echo "== RSS of an idle relay node with 10 peers (KiB)"
for impl in pairlink js-waku; do
    if [ $impl = pairlink ]; then
        "$CLI" waku node >"$work/n.out" 2>"$work/n.err" & R=$!; A=$(c_addr "$work/n.out")
    else
        node $JS/waku-node.mjs --lifetime 300 >"$work/n.out" 2>"$work/n.err" & R=$!; A=$(js_addr "$work/n.out")
    fi
    pids+=($R)
    sleep 3
    r0=$(rss $R)
    "$B" peers "$A" --n 10 --hold 20 >"$work/p.out" 2>"$work/p.err" & P=$!; pids+=($P)
    for _ in $(seq 300); do grep -q ready "$work/p.out" && break; sleep 0.05; done
    sleep 8
    r1=$(rss $R)
    echo "{\"event\":\"bench-idle\",\"impl\":\"$impl\",\"peers\":10,\"ready\":$(grep -c ready "$work/p.out"),\"rss_kib_alone\":$r0,\"rss_kib_10_peers\":$r1,\"kib_per_peer\":$(( (r1 - r0) / 10 ))}"
    kill $P $R 2>/dev/null; wait $P $R 2>/dev/null
done
