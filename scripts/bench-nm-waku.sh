#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Node-manager start-up over Waku (issue 10, "Measured"; results in
# docs/performance.md, "Start-up over Waku"): the time from a node
# manager's start to Noise sessions with all N persisted apps, every message
# a WakuMessage relayed by a Waku relay node on 127.0.0.1. The Waku
# counterpart of scripts/bench-nm-startup.sh.
#
#   scripts/bench-nm-waku.sh [options]
#     -b DIR    build directory (default build)
#     -n N      persisted counterparties (default 1000)
#     -r RUNS   node-manager starts, one after the other (default 3)
#     -t SEC    give up on one node-manager start after SEC s (default 120)
#
# What runs (each a separate process): the relay node (`pairlink waku node`);
# the N apps in one process sharing one Waku node (bench_nm_waku apps); the
# node manager (bench_nm_waku nm: the stock pl_nm_node with its own Waku
# node), started RUNS times while the relay node and the apps keep running.
# Path of every message: node manager's node -> relay node -> apps' node and
# back. Start 1 finds apps that never had a session (they knock with
# backoff); each later start is a node-manager restart. Prints the node
# manager's "result" line per start, the CPU the relay node and the apps
# process used meanwhile, and the median of t_all_ms.
set -euo pipefail

BUILD=build N=1000 RUNS=3 TMO=120
while getopts "b:n:r:t:" o; do
    case "$o" in
    b) BUILD=$OPTARG ;;
    n) N=$OPTARG ;;
    r) RUNS=$OPTARG ;;
    t) TMO=$OPTARG ;;
    *) sed -n '2,24p' "$0" >&2; exit 2 ;;
    esac
done
SEED="$BUILD/bench/bench_nm_startup"
BENCH="$BUILD/bench/bench_nm_waku"
CLI="$BUILD/pairlink"
for f in "$SEED" "$BENCH" "$CLI"; do [ -x "$f" ] || { echo "$f is not built" >&2; exit 1; }; done

ulimit -n "$(ulimit -Hn)" # N stores, their key files
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pl-bench-nmwaku.XXXXXX")
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
TCK=$(getconf CLK_TCK)

echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "config: N=$N runs=$RUNS, Waku relay node: pairlink waku node (cluster 16, shard 64)"

T0=$(date +%s.%N)
"$SEED" seed "$WORK" "$N" >/dev/null
echo "seeded $N stores in $(python3 -c "print(round($(date +%s.%N) - $T0, 1))") s"

"$CLI" waku node --listen /ip4/127.0.0.1/tcp/0 >"$WORK/hop.out" 2>"$WORK/hop.err" &
HOP=$!
PIDS+=("$HOP")
PEER=""
for _ in $(seq 1 100); do
    PEER=$(sed -n 's|^listening on \(/ip4/127\.0\.0\.1/.*\)$|\1|p' "$WORK/hop.out")
    [ -n "$PEER" ] && break
    sleep 0.1
done
[ -n "$PEER" ] || { echo "relay node did not start" >&2; cat "$WORK/hop.err" >&2; exit 1; }

"$BENCH" apps "$WORK" "$N" "$PEER" 7200 >"$WORK/apps.out" 2>"$WORK/apps.err" &
APPS=$!
PIDS+=("$APPS")
for _ in $(seq 1 1200); do
    grep -q "^connected " "$WORK/apps.out" && break
    kill -0 "$APPS" 2>/dev/null || { cat "$WORK/apps.err" >&2; exit 1; }
    sleep 0.1
done
grep -q "^connected " "$WORK/apps.out" || { echo "the apps' node did not connect" >&2; exit 1; }
echo "apps: $(grep '^created' "$WORK/apps.out"); their node $(grep '^connected' "$WORK/apps.out") (s since start)"
sleep 3 # the apps' first knocks are out and lost (no node manager yet); all is idle

ALL=()
for run in $(seq 1 "$RUNS"); do
    r0=$(cpu_ticks "$HOP")
    a0=$(cpu_ticks "$APPS")
    w0=$(date +%s.%N)
    rc=0
    ${NM_PREFIX:-} "$BENCH" nm "$WORK" "$PEER" --timeout "$TMO" >"$WORK/nm-$run.out" 2>"$WORK/nm-$run.err" || rc=$?
    w1=$(date +%s.%N)
    r1=$(cpu_ticks "$HOP")
    a1=$(cpu_ticks "$APPS")
    line=$(grep '^result' "$WORK/nm-$run.out" || echo "result missing")
    echo "run $run (exit $rc, wall incl. exec and close $(python3 -c "print(round(($w1 - $w0) * 1000))") ms): $line"
    echo "run $run: relay node cpu $(((r1 - r0) * 1000 / TCK)) ms, apps process cpu $(((a1 - a0) * 1000 / TCK)) ms"
    [ "$rc" = 0 ] && ALL+=("$(sed -n 's/.* t_all_ms=\([0-9.]*\) .*/\1/p' <<<"$line")")
    sleep 3 # the apps finish their side; the relay node sees the old connection go
done
kill -TERM "$APPS" "$HOP" 2>/dev/null || true
wait "$APPS" 2>/dev/null || echo "apps process exited with status $?"
wait "$HOP" 2>/dev/null || echo "relay node exited with status $?"
PIDS=()
echo "apps: $(grep '^stopping' "$WORK/apps.out" || tail -n 1 "$WORK/apps.out")"
grep -h -E "Sanitizer|runtime error:|precondition failed" "$WORK"/*.err 2>/dev/null | head -n 20 || true
if [ "${#ALL[@]}" -gt 0 ]; then
    python3 - "${ALL[@]}" <<'PY'
import statistics, sys
v = sorted(float(x) for x in sys.argv[1:])
print(f"t_all_ms over {len(v)} completed runs: median {statistics.median(v):.0f}, min {v[0]:.0f}, max {v[-1]:.0f}")
PY
fi
