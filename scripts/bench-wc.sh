#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# WalletConnect measurements (issue 3, section 6); results and their reading
# are in docs/performance.md, "WalletConnect".
#
#   scripts/bench-wc.sh [BUILD_DIR]        (default: build; `make bench` runs it)
#
# 1. Pairing round trip (create, pair, first ping answered) over one
#    `pairlink relay`: C<->C (bench/bench_wc_pairing) and JS<->JS
#    (interop/bench-wc-pairing.mjs, @walletconnect/core 2.25), as a ratio.
# 2. Relay load: P publisher/subscriber pairs, 1 KiB messages, against
#    `pairlink relay` and against mosquitto (QoS 1) with the same load
#    generator (bench/bench_relay_load.c; its MQTT variant is compiled here
#    against libmosquitto): closed loop (throughput) and a fixed rate
#    (latency below saturation), as ratios.
# 3. Memory per idle connection: 10,000 WebSockets to the relay (plain, and
#    each subscribed to one topic); mosquitto for comparison.
#
# Everything listens on 127.0.0.1 only, every step has a time limit, and
# every process started here is stopped here. Each measurement is repeated
# RUNS times on a fresh broker and all runs are printed, so that the spread
# is visible (the machine may be shared). Parts whose tools are missing are
# skipped with a message: node + interop/node_modules for JS, mosquitto and
# libmosquitto-dev for MQTT (installed with apt-get on demand when running
# as root; set PL_BENCH_NO_INSTALL=1 to never install).
#
# Knobs (environment): RUNS=3 C_ITER=200 JS_ITER=30 PAIRS=100 WINDOW=8
# SECS=5 RATE=2000 IDLE=10000 STEADY=300 (pings in a row on one pairing
# after the pairing round trips). PARTS="pairing load idle" (a subset runs
# only those parts).
#
# Lines "BENCH <key> <value>" carry the figures of issue 12's table for
# scripts/bench-check.py (medians over the runs).
set -euo pipefail

build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
case $build in /*) ;; *) build=$root/$build ;; esac
RUNS=${RUNS:-3}
C_ITER=${C_ITER:-200}
JS_ITER=${JS_ITER:-30}
PAIRS=${PAIRS:-100}
WINDOW=${WINDOW:-8}
SECS=${SECS:-5}
RATE=${RATE:-2000}
IDLE=${IDLE:-10000}
STEADY=${STEADY:-300}
PARTS=${PARTS:-pairing load idle}
part() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

cli=$build/pairlink
cbench=$build/bench/bench_wc_pairing
load=$build/bench/bench_relay_load
for f in "$cli" "$cbench" "$load"; do
  if [ ! -x "$f" ]; then
    echo "bench-wc: $f is missing: build first (cmake --build $build)" >&2
    exit 1
  fi
done

tmp=$(mktemp -d /tmp/pl-bench-wc.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

note() { printf '%s\n' "$*"; }
# value KEY LINE: the value of KEY=... in a RESULT line
value() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" <<<"$2"; }
# median of numbers given as arguments
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "nan"; else printf "%.2f", a / b }'; }

# ---- machine --------------------------------------------------------------
note "== machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)," \
  "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- brokers ----------------------------------------------------------------
relay_pid='' relay_url=''
start_relay() { # [extra relay options, e.g. --db FILE]
  : >"$tmp/relay.out"
  # No rate limit and a deep mailbox: the load runs publish far faster
  # than the 100 requests/s and 1000 messages per topic a client may by default.
  # Every bench client comes from 127.0.0.1, one address: the per-address
  # limits (connections, publisher quotas) are lifted, and the storage and
  # memory budgets raised, so that the relay measured is not a relay
  # refusing work (the hostile suite measures that).
  "$cli" relay --listen 127.0.0.1:0 --rate-limit 0 --mailbox-limit 10000000 \
    --max-memory 4G --max-stored 1G --max-messages 10000000 --quota-bytes 1G \
    --quota-messages 10000000 --max-conns 30000 --max-conns-per-addr 30000 --max-queue 16M "$@" \
    >"$tmp/relay.out" 2>"$tmp/relay.err" &
  relay_pid=$!
  pids+=("$relay_pid")
  for _ in $(seq 100); do
    relay_url=$(sed -n 's/^listening on //p' "$tmp/relay.out")
    [ -n "$relay_url" ] && return 0
    kill -0 "$relay_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "bench-wc: the relay did not start:" >&2
  cat "$tmp/relay.err" >&2
  exit 1
}
stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

mosq_pid='' mosq_port=''
start_mosquitto() {
  # mosquitto cannot be told to pick a free port: try a few.
  for _ in $(seq 20); do
    mosq_port=$((20000 + RANDOM % 20000))
    cat >"$tmp/mosquitto.conf" <<EOF
listener $mosq_port 127.0.0.1
allow_anonymous true
persistence false
set_tcp_nodelay true
max_connections -1
log_dest stderr
log_type error
EOF
    mosquitto -c "$tmp/mosquitto.conf" >"$tmp/mosquitto.log" 2>&1 &
    mosq_pid=$!
    pids+=("$mosq_pid")
    for _ in $(seq 30); do
      if ! kill -0 "$mosq_pid" 2>/dev/null; then break; fi
      if (exec 3<>"/dev/tcp/127.0.0.1/$mosq_port") 2>/dev/null; then return 0; fi
      sleep 0.1
    done
    stop_pid "$mosq_pid"
  done
  echo "bench-wc: mosquitto did not start:" >&2
  cat "$tmp/mosquitto.log" >&2
  exit 1
}

# ---- optional tools -----------------------------------------------------------
can_install() { [ "${PL_BENCH_NO_INSTALL:-0}" != 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }
apt_install() {
  can_install || return 1
  note "bench-wc: installing $* (apt-get)"
  apt-get install -y "$@" >"$tmp/apt.log" 2>&1 ||
    { apt-get update >>"$tmp/apt.log" 2>&1 && apt-get install -y "$@" >>"$tmp/apt.log" 2>&1; }
}

have_js=0
if command -v node >/dev/null && [ -d "$root/interop/node_modules/@walletconnect/core" ]; then
  have_js=1
else
  note "bench-wc: skipping the JS side (needs node and interop/node_modules: cd interop && npm ci)"
fi

have_mqtt=0
mqtt_load=$build/bench/bench_relay_load_mqtt
command -v mosquitto >/dev/null || apt_install mosquitto || true
pkg-config --exists libmosquitto 2>/dev/null || apt_install libmosquitto-dev || true
if command -v mosquitto >/dev/null && pkg-config --exists libmosquitto 2>/dev/null; then
  # The same generator with its MQTT half compiled in (CMake builds it
  # without, so that libmosquitto is not a build dependency).
  # shellcheck disable=SC2046 # pkg-config prints several words on purpose
  if cc -O2 -g -std=c11 -D_GNU_SOURCE -DPL_BENCH_MQTT -Wall -Wextra -Werror \
    "$root/bench/bench_relay_load.c" -o "$mqtt_load" \
    $(pkg-config --cflags --libs libwebsockets libuv jansson libmosquitto) 2>"$tmp/cc.log"; then
    have_mqtt=1
  else
    note "bench-wc: skipping mosquitto: the MQTT load generator did not compile:"
    cat "$tmp/cc.log"
  fi
else
  note "bench-wc: skipping mosquitto (needs the Debian packages mosquitto and libmosquitto-dev)"
fi

# ---- 1. pairing round trip ------------------------------------------------------
if part pairing; then
note ""
note "== pairing round trip over pairlink relay: create, pair, first ping answered (ms)"
c_med=() c_p95=() c_cold=() js_med=() js_p95=() js_ans=() js_ansp95=() js_cold=() s_med=()
for r in $(seq "$RUNS"); do
  start_relay
  out=$(timeout 300 "$cbench" --relay "$relay_url" -n "$C_ITER" --steady "$STEADY" 2>"$tmp/c.err") ||
    { cat "$tmp/c.err" >&2; exit 1; }
  line=$(grep '^RESULT c ' <<<"$out")
  sline=$(grep '^RESULT steady ' <<<"$out")
  note "run $r: $line"
  note "run $r: $sline"
  s_med+=("$(value median_ms "$sline")")
  c_med+=("$(value median_ms "$line")")
  c_p95+=("$(value p95_ms "$line")")
  c_cold+=("$(value cold_ms "$line")")
  if [ "$have_js" = 1 ]; then
    line=$(cd "$root/interop" && RELAY_URL=$relay_url ITERATIONS=$JS_ITER timeout 600 \
      node bench-wc-pairing.mjs 2>"$tmp/js.err" | grep '^RESULT') || { cat "$tmp/js.err" >&2; exit 1; }
    note "run $r: $line"
    js_med+=("$(value median_ms "$line")")
    js_p95+=("$(value p95_ms "$line")")
    js_ans+=("$(value answered_median_ms "$line")")
    js_ansp95+=("$(value answered_p95_ms "$line")")
    js_cold+=("$(value cold_answered_ms "$line")")
  fi
  stop_pid "$relay_pid"
done
cm=$(median "${c_med[@]}")
note "C<->C   median of run medians $cm ms (runs: ${c_med[*]}; p95s: ${c_p95[*]}; cold: ${c_cold[*]})"
sm=$(median "${s_med[@]}")
note "C<->C   steady ping round trip, median of run medians $sm ms (runs: ${s_med[*]})"
note "BENCH wc_pairing_c_p50_ms $cm"
note "BENCH wc_steady_ping_c_p50_ms $sm"
if [ "$have_js" = 1 ]; then
  jm=$(median "${js_med[@]}") ja=$(median "${js_ans[@]}")
  note "JS<->JS median of run medians $jm ms as ping() resolves (runs: ${js_med[*]}; p95s: ${js_p95[*]})"
  note "JS<->JS median of run medians $ja ms until the answer reached A (runs: ${js_ans[*]}; p95s: ${js_ansp95[*]}; cold: ${js_cold[*]})"
  note "RATIO pairing JS/C = $(ratio "$jm" "$cm") (ping() as the API shows it, with the SDK's 500 ms hold)"
  note "RATIO pairing JS/C = $(ratio "$ja" "$cm") (until the answer arrives, without that hold)"
fi
fi

# ---- 2. load ----------------------------------------------------------------------
if part load; then
note ""
note "== relay load: $PAIRS pairs, 1 KiB messages, window $WINDOW, ${SECS} s measured"
declare -A thr cpu p50 p99 lp50 lp99
for k in irn irndb mqtt; do thr[$k]='' cpu[$k]='' p50[$k]='' p99[$k]='' lp50[$k]='' lp99[$k]=''; done
run_load() { # BIN URL PID extra-args...
  local bin=$1 url=$2 pid=$3
  shift 3
  timeout 180 "$bin" --url "$url" --pid "$pid" --pairs "$PAIRS" --window "$WINDOW" --duration "$SECS" \
    "$@" 2>"$tmp/load.err" | grep '^RESULT' || { cat "$tmp/load.err" >&2; return 1; }
}
for r in $(seq "$RUNS"); do
  start_relay
  line=$(run_load "$load" "$relay_url" "$relay_pid")
  note "run $r closed loop: $line"
  thr[irn]+=" $(value throughput "$line")" cpu[irn]+=" $(value broker_us_per_msg "$line")"
  p50[irn]+=" $(value p50_us "$line")" p99[irn]+=" $(value p99_us "$line")"
  line=$(run_load "$load" "$relay_url" "$relay_pid" --rate "$RATE")
  note "run $r $RATE msg/s:   $line"
  lp50[irn]+=" $(value p50_us "$line")" lp99[irn]+=" $(value p99_us "$line")"
  stop_pid "$relay_pid"
  # the same with the mailbox in SQLite on disk (--db: group commit)
  rm -f "$tmp"/relay.db*
  start_relay --db "$tmp/relay.db"
  line=$(run_load "$load" "$relay_url" "$relay_pid")
  note "run $r closed loop, --db: $line"
  thr[irndb]+=" $(value throughput "$line")" cpu[irndb]+=" $(value broker_us_per_msg "$line")"
  p50[irndb]+=" $(value p50_us "$line")" p99[irndb]+=" $(value p99_us "$line")"
  stop_pid "$relay_pid"
  if [ "$have_mqtt" = 1 ]; then
    start_mosquitto
    line=$(run_load "$mqtt_load" "mqtt://127.0.0.1:$mosq_port" "$mosq_pid")
    note "run $r closed loop: $line"
    thr[mqtt]+=" $(value throughput "$line")" cpu[mqtt]+=" $(value broker_us_per_msg "$line")"
    p50[mqtt]+=" $(value p50_us "$line")" p99[mqtt]+=" $(value p99_us "$line")"
    line=$(run_load "$mqtt_load" "mqtt://127.0.0.1:$mosq_port" "$mosq_pid" --rate "$RATE")
    note "run $r $RATE msg/s:   $line"
    lp50[mqtt]+=" $(value p50_us "$line")" lp99[mqtt]+=" $(value p99_us "$line")"
    stop_pid "$mosq_pid"
  fi
done
for k in irn irndb mqtt; do
  [ -n "${thr[$k]}" ] || continue
  # shellcheck disable=SC2086
  note "$k: throughput msg/s${thr[$k]} (median $(median ${thr[$k]})); broker CPU us/msg${cpu[$k]} (median $(median ${cpu[$k]}));" \
    "closed-loop p50/p99 us${p50[$k]} /${p99[$k]}; at $RATE msg/s p50/p99 us${lp50[$k]} /${lp99[$k]}"
done
if [ "$have_mqtt" = 1 ]; then
  # shellcheck disable=SC2086
  {
    note "RATIO load throughput relay/mosquitto = $(ratio "$(median ${thr[irn]})" "$(median ${thr[mqtt]})")"
    note "RATIO load broker CPU per message relay/mosquitto = $(ratio "$(median ${cpu[irn]})" "$(median ${cpu[mqtt]})")"
    note "RATIO load p50 latency at $RATE msg/s relay/mosquitto = $(ratio "$(median ${lp50[irn]})" "$(median ${lp50[mqtt]})")"
    note "RATIO load p99 latency at $RATE msg/s relay/mosquitto = $(ratio "$(median ${lp99[irn]})" "$(median ${lp99[mqtt]})")"
    note "RATIO load throughput relay --db/mosquitto = $(ratio "$(median ${thr[irndb]})" "$(median ${thr[mqtt]})")"
    note "BENCH relay_mosquitto_throughput $(ratio "$(median ${thr[irn]})" "$(median ${thr[mqtt]})")"
    note "BENCH relay_db_mosquitto_throughput $(ratio "$(median ${thr[irndb]})" "$(median ${thr[mqtt]})")"
    note "BENCH relay_mosquitto_p50_at_rate $(ratio "$(median ${lp50[irn]})" "$(median ${lp50[mqtt]})")"
  }
fi
fi

# ---- 3. idle connections ------------------------------------------------------------
if part idle; then
note ""
# Each WebSocket costs the generator one descriptor; each libmosquitto
# client three (its socket and a wake-up socketpair).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fds=$(ulimit -n)
n=$IDLE
if [ "$fds" != unlimited ] && [ $((n + 200)) -gt "$fds" ]; then
  n=$((fds - 200))
  note "bench-wc: open-file limit $fds: $n connections instead of $IDLE"
fi
note "== memory per idle connection: $n connections (ulimit -n $fds)"
for sub in "" --subscribe; do
  start_relay
  line=$(timeout 300 "$load" --url "$relay_url" --pid "$relay_pid" --idle "$n" $sub 2>"$tmp/idle.err" |
    grep '^RESULT') || { cat "$tmp/idle.err" >&2; exit 1; }
  note "relay: $line"
  [ -z "$sub" ] && note "BENCH relay_idle_kib_per_ws $(awk -v b="$(value bytes_per_conn "$line")" 'BEGIN { printf "%.2f", b / 1024 }')"
  stop_pid "$relay_pid"
done
if [ "$have_mqtt" = 1 ]; then
  m=$n
  if [ "$fds" != unlimited ] && [ $((3 * m + 200)) -gt "$fds" ]; then m=$(((fds - 200) / 3)); fi
  for sub in "" --subscribe; do
    start_mosquitto
    line=$(timeout 300 "$mqtt_load" --url "mqtt://127.0.0.1:$mosq_port" --pid "$mosq_pid" --idle "$m" $sub \
      2>"$tmp/idle.err" | grep '^RESULT') || { cat "$tmp/idle.err" >&2; exit 1; }
    note "mosquitto: $line"
    stop_pid "$mosq_pid"
  done
fi
fi
