#!/usr/bin/env bash
# Runs every benchmark in BUILD_DIR/bench; each prints its own ratio lines.
set -euo pipefail
build=${1:-build}
for b in "$build"/bench/bench_*; do
  [ -x "$b" ] || continue
  case $(basename "$b") in
    bench_wc_pairing|bench_relay_load*) continue ;; # need brokers: run by bench-wc.sh below
  esac
  echo "== $(basename "$b")"
  "$b"
done
"$(dirname "$0")/bench-wc.sh" "$build"
"$(dirname "$0")/bench-hostile.sh" "$build"
