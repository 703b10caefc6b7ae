#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Relay cluster throughput (issue 14; results in docs/performance.md,
# "Relay cluster"): delivered msg/s and p50/p99 with 1, 2 and 3
# `pairlink relay --cluster` instances over one three-node NATS JetStream
# cluster (streams R3), next to one `pairlink relay --db`, with the same
# load generator (bench/bench_relay_load.c).
#
#   scripts/bench-cluster.sh [BUILD_DIR]     (default: build)
#
# With K instances, K load generators run at once, generator i publishing
# through instance i and subscribing through instance i+1 (mod K), so every
# message crosses instances when K > 1. CPU time of every process (relays,
# nats-servers, generators) is read from /proc around each run and divided
# by the messages acknowledged: CPU per message per component, from which a
# ceiling is projected: messages per second one core of relay (or NATS) CPU
# carries, 1e6 / us per message (K instances with a core each: K times it).
# Everything runs on 127.0.0.1, every step is bounded, every process started
# here is stopped here.
#
# Knobs (environment): PAIRS=60 (per run, split over the generators)
# WINDOW=8 SECS=5 RUNS=1 RATE=1000 (the fixed-rate runs, all generators).
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
case $build in /*) ;; *) build=$root/$build ;; esac
PAIRS=${PAIRS:-60}
WINDOW=${WINDOW:-8}
SECS=${SECS:-5}
RUNS=${RUNS:-1}
RATE=${RATE:-1000}
cli=$build/pairlink
load=$build/bench/bench_relay_load
command -v nats-server >/dev/null || { echo "bench-cluster: skipped: no nats-server"; exit 0; }
if timeout 10 "$cli" relay --cluster nats://127.0.0.1:9 --listen 127.0.0.1:0 2>&1 | grep -q PL_ERR_NO_CLUSTER; then
    echo "bench-cluster: skipped: pairlink built without libnats"
    exit 0
fi
tmp=$(mktemp -d /tmp/pl-bench-cluster.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

free_ports() {
    node -e '
const net = require("net");
(async () => {
  const s = [];
  for (let i = 0; i < Number(process.argv[1]); i++) {
    const srv = net.createServer();
    await new Promise((r) => srv.listen(0, "127.0.0.1", r));
    s.push(srv);
  }
  console.log(s.map((x) => x.address().port).join(" "));
  s.forEach((x) => x.close());
})();' "$1"
}
read -r -a P <<<"$(free_ports 6)"
routes="nats-route://127.0.0.1:${P[3]},nats-route://127.0.0.1:${P[4]},nats-route://127.0.0.1:${P[5]}"
nats_pids=()
for i in 0 1 2; do
    mkdir -p "$tmp/n$i"
    cat >"$tmp/n$i.conf" <<EOF
server_name: n$i
listen: 127.0.0.1:${P[$i]}
jetstream { store_dir: "$tmp/n$i/js", max_file_store: 4GB }
cluster { name: plbench, listen: 127.0.0.1:${P[$((i + 3))]}, routes: [ $routes ] }
EOF
    nats-server -c "$tmp/n$i.conf" >"$tmp/n$i.log" 2>&1 &
    pids+=($!)
    nats_pids+=($!)
done
urls="nats://127.0.0.1:${P[0]},nats://127.0.0.1:${P[1]},nats://127.0.0.1:${P[2]}"

# start_relay NAME ARGS...: prints "PID PORT"
start_relay() {
    local name=$1
    shift
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        : >"$tmp/$name.out"
        "$cli" relay --listen 127.0.0.1:0 --rate-limit 0 --mailbox-limit 100000 "$@" \
            >"$tmp/$name.out" 2>"$tmp/$name.err" &
        local pid=$!
        for _ in $(seq 1 100); do
            port=$(sed -n 's|^listening on ws://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$tmp/$name.out")
            [ -n "$port" ] && { echo "$pid $port"; return 0; }
            kill -0 $pid 2>/dev/null || break
            sleep 0.1
        done
        kill -9 $pid 2>/dev/null || true
        sleep 1 # the NATS cluster may still be electing its meta leader
    done
    echo "bench-cluster: relay $name did not start" >&2
    tail -5 "$tmp/$name.err" >&2
    return 1
}

cpu_ticks() { # sum of utime+stime of the pids, in clock ticks
    local t=0
    for p in "$@"; do
        [ -r /proc/$p/stat ] || continue
        local f
        read -r -a f <<<"$(sed 's/^.*) //' /proc/$p/stat)"
        t=$((t + f[11] + f[12]))
    done
    echo $t
}
hz=$(getconf CLK_TCK)

# run LABEL K relay-args...: K instances, K generators
run() {
    local label=$1 k=$2
    shift 2
    local rp=() rport=()
    for i in $(seq 1 "$k"); do
        local id=()
        [ "$1" = --cluster ] && id=(--instance-id "$label-$i") # unique per instance
        read -r pid port <<<"$(start_relay "$label-$i" "$@" "${id[@]}")"
        pids+=("$pid")
        rp+=("$pid")
        rport+=("$port")
    done
    local per=$((PAIRS / k)) gp=() r0 n0 rate=()
    [ -n "${RUN_RATE:-}" ] && rate=(--rate $((RUN_RATE / k)))
    r0=$(cpu_ticks "${rp[@]}")
    n0=$(cpu_ticks "${nats_pids[@]}")
    for i in $(seq 0 $((k - 1))); do
        local sub=${rport[$(((i + 1) % k))]}
        "$load" --url "ws://127.0.0.1:${rport[$i]}" --sub-url "ws://127.0.0.1:$sub" --pid "${rp[$i]}" \
            --pairs "$per" --window "$WINDOW" --duration "$SECS" --ttl 300 "${rate[@]}" \
            >"$tmp/$label.gen$i" 2>&1 &
        gp+=($!)
    done
    for p in "${gp[@]}"; do wait "$p" || true; done
    local r1 n1
    r1=$(cpu_ticks "${rp[@]}")
    n1=$(cpu_ticks "${nats_pids[@]}")
    node -e '
const fs = require("fs");
const [label, k, hz, rcpu, ncpu, ...files] = process.argv.slice(1);
let thr = 0, acked = 0, p50 = [], p99 = [], lost = 0, gen = 0;
for (const f of files) {
  const line = fs.readFileSync(f, "utf8").split("\n").find((l) => l.startsWith("RESULT"));
  if (!line) { console.log(`${label}: no RESULT in ${f}`); process.exit(0); }
  const kv = Object.fromEntries(line.split(" ").slice(1).map((x) => x.split("=")));
  thr += Number(kv.throughput); acked += Number(kv.acked); lost += Number(kv.lost);
  p50.push(Number(kv.p50_us)); p99.push(Number(kv.p99_us));
}
const us = (t) => ((1e6 * Number(t)) / Number(hz) / acked).toFixed(0);
const relayUs = us(rcpu), natsUs = us(ncpu);
console.log(`BENCH_CLUSTER ${label} instances=${k} delivered_msg_s=${thr.toFixed(0)} ` +
  `p50_ms=${(Math.max(...p50) / 1000).toFixed(2)} p99_ms=${(Math.max(...p99) / 1000).toFixed(2)} ` +
  `relay_us_per_msg=${relayUs} nats_us_per_msg=${natsUs} ` +
  `relay_msg_per_core_s=${(1e6 / Number(relayUs)).toFixed(0)} ` +
  `nats_msg_per_core_s=${(1e6 / Number(natsUs)).toFixed(0)} lost=${lost}`);
' "$label" "$k" "$hz" $((r1 - r0)) $((n1 - n0)) $(for i in $(seq 0 $((k - 1))); do echo "$tmp/$label.gen$i"; done)
    for p in "${rp[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${rp[@]}"; do wait "$p" 2>/dev/null || true; done
}

for r in $(seq 1 "$RUNS"); do
    # closed loop: the throughput ceiling
    run "single-db-r$r" 1 --db "$tmp/single-$r.db"
    for k in 1 2 3; do run "cluster$k-r$r" "$k" --cluster "$urls"; done
    # RATE msg/s in all: latency below saturation
    RUN_RATE=$RATE run "single-db-rate-r$r" 1 --db "$tmp/single-rate-$r.db"
    for k in 1 2 3; do RUN_RATE=$RATE run "cluster$k-rate-r$r" "$k" --cluster "$urls"; done
done

# A full topic: what making room across instances (a ROOM per publish) adds
# to one publish (window 1), against the same publish below the limit.
# Last: these instances set the streams' per-subject limit to 200.
full=()
for i in 1 2; do
    read -r fp fport <<<"$(start_relay "full$i" --cluster "$urls" --instance-id "full$i" --mailbox-limit 200)"
    full+=("$fp" "$fport")
done
(cd "$root/interop" && timeout 300 node bench-cluster-full.mjs "ws://127.0.0.1:${full[1]}" \
    "ws://127.0.0.1:${full[3]}" 200 "${FULL_N:-1000}") || echo "bench-cluster: full-topic run failed"
kill -TERM "${full[0]}" "${full[2]}" 2>/dev/null || true
