#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs every libFuzzer target in BUILD_DIR for SECONDS each, starting from the
# committed seed corpus fuzz/corpus/<target>/ (copied, so the repo stays
# clean). Crashes land in fuzz/findings/<target>/ and fail the run.
set -uo pipefail
build=${1:-build-fuzz}; secs=${2:-30}
top=$(cd "$(dirname "$0")/.." && pwd)
status=0 ran=0
printf '%-24s %12s %10s %s\n' target execs exec/s result
for bin in "$build"/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  work=$(mktemp -d); mkdir -p "$top/fuzz/findings/$name"
  [ -d "$top/fuzz/corpus/$name" ] && cp -r "$top/fuzz/corpus/$name/." "$work/"
  log="$build/$name.log"
  # -timeout: one input running that long is a hang, a failure; without it
  # libFuzzer waits 20 minutes, whatever -max_total_time says.
  "$bin" "$work" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$top/fuzz/findings/$name/" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
  rate=$(grep -m1 'stat::average_exec_per_sec' "$log" | awk '{print $2}')
  if [ $rc -eq 0 ]; then res=ok; else res="FAILED (see $log)"; status=1; fi
  printf '%-24s %12s %10s %s\n' "$name" "${execs:-?}" "${rate:-?}" "$res"
  rm -rf "$work"
  ran=$((ran + 1))
done
# No target at all is a broken build, not a clean run.
[ $ran -gt 0 ] || { echo "run-fuzz: no fuzz_* targets in $build" >&2; exit 1; }
exit $status
