#!/usr/bin/env bash
# Runs every benchmark in BUILD_DIR/bench; each prints its own ratio lines.
set -euo pipefail
build=${1:-build}
for b in "$build"/bench/bench_*; do
  [ -x "$b" ] || continue
  case $(basename "$b") in
    bench_wc_pairing|bench_relay_load*) continue ;; # need brokers: run by bench-wc.sh below
    bench_p2p) continue ;; # run by bench-p2p.sh below, next to js-libp2p
    bench_waku) continue ;; # needs a relay node: run by bench-waku.sh below
  esac
  echo "== $(basename "$b")"
  "$b"
done
"$(dirname "$0")/bench-wc.sh" "$build"
"$(dirname "$0")/bench-p2p.sh" "$build"
"$(dirname "$0")/bench-waku.sh" "$build"
"$(dirname "$0")/bench-hostile.sh" "$build"
