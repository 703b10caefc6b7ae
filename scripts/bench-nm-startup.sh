#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Node-manager start-up benchmark (issue 5, "Measured"; results in
# docs/performance.md, "Node-manager pairing"): the time from a node
# manager's start to Noise sessions with all N persisted apps, over one
# relay on 127.0.0.1.
#
#   scripts/bench-nm-startup.sh [options]
#     -b DIR    build directory (default build)
#     -n N      persisted counterparties (default 1000)
#     -r RUNS   node-manager starts, one after the other (default 3)
#     -R RATE   relay --rate-limit: requests/s per connection, 0 = unlimited
#               (default 100, the relay's default)
#     -T K      relay subscriptions per connection (default 4096; `pairlink
#               relay` defaults to 20480, --max-topics)
#     -c        use `pairlink relay` itself (then -T does not apply)
#     -A N      with -c: `--allowance NM_DID=N` for the node manager's identity
#               (N requests/s, burst 5 * N); default none
#     -s        the node manager is the stock pl_nm_node
#               instead of the rebuilt one with -M topics
#     -M K      topic limit of the rebuilt node manager's relay client (4096)
#     -t SEC    give up on one node-manager start after SEC s (default 120)
#     -K KEY    print "BENCH KEY <seconds>": the median start over the runs, a
#               start that did not finish counting as its time-out
#               (scripts/bench-check.py)
#   NM_PREFIX (environment): a command put before the node manager, e.g.
#     NM_PREFIX="perf record -g -o /tmp/nm.perf" for a profile.
#
# What runs (each a separate process): the relay; the N apps in one process
# (bench_nm_startup apps: N pl_nm_node objects on one loop, one relay
# connection each); the node manager (bench_nm_startup nm), started RUNS
# times while the relay and the apps keep running. Start 1 finds apps that
# have never had a session (they knock with backoff); each later start finds
# apps holding the session of the previous node manager, which the new
# handshake replaces: a node-manager restart. Prints the node manager's
# "result" line per start, the CPU the relay and the apps process used
# meanwhile, and the median and spread of t_all_ms.
set -euo pipefail

BUILD=build N=1000 RUNS=3 RATE=100 TOPICS=4096 CLI_RELAY=0 STOCK=0 MAXT=4096 TMO=120 ALLOW= KEY=
while getopts "b:n:r:R:T:csM:t:A:K:" o; do
    case "$o" in
    b) BUILD=$OPTARG ;;
    n) N=$OPTARG ;;
    r) RUNS=$OPTARG ;;
    R) RATE=$OPTARG ;;
    T) TOPICS=$OPTARG ;;
    c) CLI_RELAY=1 ;;
    s) STOCK=1 ;;
    M) MAXT=$OPTARG ;;
    t) TMO=$OPTARG ;;
    A) ALLOW=$OPTARG ;;
    K) KEY=$OPTARG ;;
    *) sed -n '2,25p' "$0" >&2; exit 2 ;;
    esac
done
BENCH="$BUILD/bench/bench_nm_startup"
CLI="$BUILD/pairlink"
[ -x "$BENCH" ] || { echo "$BENCH is not built" >&2; exit 1; }

# N apps each hold a store, a key file and a socket; the relay one socket each.
ulimit -n "$(ulimit -Hn)"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pl-bench-nm.XXXXXX")
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
echo "config: N=$N runs=$RUNS relay=$([ $CLI_RELAY = 1 ] && echo "pairlink relay" || echo "bench relay, $TOPICS topics/conn") rate-limit=$RATE nm=$([ $STOCK = 1 ] && echo "stock pl_nm_node" || echo "rebuilt, $MAXT topics")"

T0=$(date +%s.%N)
"$BENCH" seed "$WORK" "$N" >/dev/null
echo "seeded $N stores in $(python3 -c "print(round($(date +%s.%N) - $T0, 1))") s"

if [ "$CLI_RELAY" = 1 ]; then
    # N apps from one address: the per-address connection limit lifted.
    RELAY_OPTS=(--rate-limit "$RATE" --max-conns-per-addr 30000 --max-conns 30000)
    if [ -n "$ALLOW" ]; then
        RELAY_OPTS+=(--allowance "$("$BENCH" did "$WORK")=$ALLOW")
        echo "relay: ${RELAY_OPTS[*]}"
    fi
    "$CLI" relay --listen 127.0.0.1:0 "${RELAY_OPTS[@]}" >"$WORK/relay.out" 2>"$WORK/relay.err" &
else
    "$BENCH" relay --rate-limit "$RATE" --topics-per-conn "$TOPICS" >"$WORK/relay.out" 2>"$WORK/relay.err" &
fi
RELAY=$!
PIDS+=("$RELAY")
URL=""
for _ in $(seq 1 100); do
    URL=$(sed -n 's|^listening on \(ws://127\.0\.0\.1:[0-9]*\)$|\1|p' "$WORK/relay.out")
    [ -n "$URL" ] && break
    sleep 0.1
done
[ -n "$URL" ] || { echo "relay did not start" >&2; cat "$WORK/relay.err" >&2; exit 1; }

"$BENCH" apps "$WORK" "$N" "$URL" 7200 >"$WORK/apps.out" 2>"$WORK/apps.err" &
APPS=$!
PIDS+=("$APPS")
for _ in $(seq 1 1200); do
    grep -q "^connected $N " "$WORK/apps.out" && break
    kill -0 "$APPS" 2>/dev/null || { cat "$WORK/apps.err" >&2; exit 1; }
    sleep 0.1
done
grep -q "^connected $N " "$WORK/apps.out" || { echo "apps did not all connect" >&2; exit 1; }
echo "apps: $(grep '^created' "$WORK/apps.out"); $(grep '^connected' "$WORK/apps.out") (count, s since start)"
sleep 3 # the apps' first knocks are out; the relay is idle

NMOPTS=(--timeout "$TMO")
[ "$STOCK" = 1 ] && NMOPTS+=(--node) || NMOPTS+=(--max-topics "$MAXT")
ALL=()
for run in $(seq 1 "$RUNS"); do
    r0=$(cpu_ticks "$RELAY")
    a0=$(cpu_ticks "$APPS")
    w0=$(date +%s.%N)
    rc=0
    ${NM_PREFIX:-} "$BENCH" nm "$WORK" "$URL" "${NMOPTS[@]}" >"$WORK/nm-$run.out" 2>"$WORK/nm-$run.err" || rc=$?
    w1=$(date +%s.%N)
    r1=$(cpu_ticks "$RELAY")
    a1=$(cpu_ticks "$APPS")
    line=$(grep '^result' "$WORK/nm-$run.out" || echo "result missing")
    echo "run $run (exit $rc, wall incl. exec and close $(python3 -c "print(round(($w1 - $w0) * 1000))") ms): $line"
    echo "run $run: relay cpu $(((r1 - r0) * 1000 / TCK)) ms, apps process cpu $(((a1 - a0) * 1000 / TCK)) ms"
    [ "$rc" = 0 ] && ALL+=("$(sed -n 's/.* t_all_ms=\([0-9.]*\) .*/\1/p' <<<"$line")")
    sleep 3 # let the apps finish their side (READY frames, store writes)
done
kill -TERM "$APPS" "$RELAY" 2>/dev/null || true
wait "$APPS" 2>/dev/null || echo "apps process exited with status $?"
wait "$RELAY" 2>/dev/null || echo "relay exited with status $?"
PIDS=()
echo "apps: $(tail -n 1 "$WORK/apps.out")"
# a sanitizer build (-b build-asan) reports here
grep -h -E "Sanitizer|runtime error:|precondition failed" "$WORK"/*.err 2>/dev/null | head -n 20 || true
if [ "${#ALL[@]}" -gt 0 ]; then
    python3 - "${ALL[@]}" <<'EOF'
import statistics, sys
v = sorted(float(x) for x in sys.argv[1:])
print(f"t_all_ms over {len(v)} completed runs: median {statistics.median(v):.0f}, min {v[0]:.0f}, max {v[-1]:.0f}")
EOF
fi
if [ -n "$KEY" ]; then
    python3 - "$KEY" "$RUNS" "$TMO" "${ALL[@]}" <<'EOF'
import statistics, sys
key, runs, tmo = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
v = [float(x) / 1000 for x in sys.argv[4:]]
v += [tmo] * (runs - len(v))
print(f"BENCH {key} {statistics.median(v):.3f}")
EOF
fi
