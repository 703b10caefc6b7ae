#!/usr/bin/env bash
# Runs every benchmark in BUILD_DIR/bench; each prints its own ratio lines.
set -euo pipefail
build=${1:-build}
for b in "$build"/bench/bench_*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b"
done
