#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `make bench`: every benchmark in BUILD_DIR/bench (each prints its own
# figures and ratios), the WalletConnect set against mosquitto and JS
# (bench-wc.sh), the node manager's start-up with 1000 apps on a relay with
# its default settings and with an allowance for it (bench-nm-startup.sh),
# libp2p (bench-p2p.sh); then the rows of issue 12's table side by side with
# the values recorded in bench/baseline.json (docs/performance.md), and the
# regression check: the run fails when a row is more than 20 % worse than
# recorded (scripts/bench-check.py). The whole output is kept in
# BENCH_LOG (default: a file in /tmp, named at the end).
set -euo pipefail
build=${1:-build}
here=$(dirname "$0")
log=${BENCH_LOG:-$(mktemp /tmp/pl-bench.XXXXXX)}
{
  for b in "$build"/bench/bench_*; do
    [ -x "$b" ] || continue
    case $(basename "$b") in
      bench_wc_pairing|bench_relay_load*) continue ;; # need brokers: run by bench-wc.sh below
      bench_p2p) continue ;; # run by bench-p2p.sh below, next to js-libp2p
      bench_nm_startup) continue ;; # a driver: bench-nm-startup.sh below
      bench_waku) continue ;; # needs a relay node: run by bench-waku.sh below
    esac
    echo "== $(basename "$b")"
    "$b"
  done
  echo "== JSON libraries on the relay's frames (scripts/bench-json.sh)"
  "$here/bench-json.sh" "$build" 100000
  "$here/bench-wc.sh" "$build"
  echo "== node manager to 1000 sessions, pairlink relay with its default settings"
  "$here/bench-nm-startup.sh" -b "$build" -n 1000 -r 3 -c -s -R 100 -t 60 -K nm_startup_1000_default_s
  echo "== the same, the node manager's identity given --allowance DID=1000"
  "$here/bench-nm-startup.sh" -b "$build" -n 1000 -r 3 -c -s -R 100 -A 1000 -t 60 \
    -K nm_startup_1000_allowance_s
  "$here/bench-p2p.sh" "$build"
  "$here/bench-waku.sh" "$build"
  "$here/bench-hostile.sh" "$build"
} 2>&1 | tee "$log"
echo
echo "== issue 12: each row now, as recorded, its target (bench/baseline.json)"
status=0
"$here/bench-check.py" "$log" || status=$?
echo "(the whole output: $log)"
exit "$status"
