#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# libp2p measurements (issue 8, "Measured"); results and their reading are
# in docs/performance.md, "libp2p".
#
#   scripts/bench-p2p.sh [BUILD_DIR]        (default: build; `make bench` runs it)
#
# 1. Connection set-up per second (TCP + multistream + Noise XX + muxer +
#    identify), sequential, dialer and listener in two processes: C<->C
#    (bench/bench_p2p connect, which also times the crypto bound of one
#    set-up in the same run) and js-libp2p<->js-libp2p (peer.mjs
#    bench-connect of interop/libp2p3 and interop/js-waku), yamux and mplex.
# 2. One yamux stream C->C against a raw loopback TCP copy of the same
#    bytes (and ChaCha20-Poly1305 alone).
# 3. Memory per idle connection: the C host (both ends) next to js-libp2p's
#    (peer.mjs bench-idle).
#
# 127.0.0.1 only; every child ends by itself. RUNS=3 repetitions of each C
# figure (all printed: the machine may be shared); COUNT=500 set-ups (C),
# JS_COUNT=200 (JS), MIB=1024, IDLE=1000 (C), JS_IDLE=100 (js dials one at a
# time). PL_INTEROP_DIR overrides interop/ (default: the source tree's).
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
case $build in /*) ;; *) build=$root/$build ;; esac
RUNS=${RUNS:-3}
COUNT=${COUNT:-500}
JS_COUNT=${JS_COUNT:-200}
MIB=${MIB:-1024}
IDLE=${IDLE:-1000}
JS_IDLE=${JS_IDLE:-100}
interop=${PL_INTEROP_DIR:-$root/interop}
bench=$build/bench/bench_p2p
[ -x "$bench" ] || { echo "bench-p2p: $bench is missing: build first" >&2; exit 1; }

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
for mux in yamux mplex; do
  for r in $(seq "$RUNS"); do "$bench" connect "$COUNT" "$mux"; done
done
for r in $(seq "$RUNS"); do "$bench" throughput "$MIB"; done
"$bench" idle "$IDLE" yamux
"$bench" idle "$IDLE" mplex

if ! command -v node >/dev/null; then echo "bench-p2p: no node: JS part skipped"; exit 0; fi
for proj in libp2p3 js-waku; do
  js=$interop/$proj/peer.mjs
  if [ ! -f "$js" ] || [ ! -d "$interop/$proj/node_modules" ]; then
    echo "bench-p2p: $js or its node_modules missing: skipped"; continue
  fi
  for mux in yamux mplex; do
    timeout 600 node "$js" bench-connect --count "$JS_COUNT" --muxer "$mux" 2>/dev/null | sed "s/^{/{\"project\":\"$proj\",/"
  done
  timeout 600 node "$js" bench-idle --conns "$JS_IDLE" --muxer yamux 2>/dev/null | sed "s/^{/{\"project\":\"$proj\",/"
done
echo "== load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
