#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The relay under the hostile-client suite (issue 11), measured: for every
# attack, the well-behaved probe's round trip (median and 99th percentile,
# against the idle relay's) and the relay's peak RSS against its budget
# (--max-memory 48M in the suite). Runs tests/hostile RUNS times with
# attacks of ACTIVE_MS each and prints the medians over the runs (the peak
# RSS: the largest), one table row per attack (docs/performance.md).
#
#   scripts/bench-hostile.sh [BUILD_DIR] [RUNS] [ACTIVE_MS]   (build 5 1500)
#
# ACTIVE_MS is how long each attack keeps at it (the probe measures over that
# window); longer windows dilute the attacks that do their damage in a burst.
set -euo pipefail
build=${1:-build}
runs=${2:-5}
active=${3:-1500}
bin=$build/hostile
cli=$build/pairlink
[ -x "$bin" ] && [ -x "$cli" ] || { echo "bench-hostile: build first ($bin, $cli)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== hostile-client suite: $runs runs, attacks of at least $active ms;" \
  "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$runs"); do
  HOSTILE_ACTIVE_MS=$active "$bin" "$cli" >"$tmp/run$r" 2>&1 || {
    cat "$tmp/run$r" >&2
    exit 1
  }
done

# median of numbers given as arguments
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
field() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p"; }

attacks=$(sed -n 's/^HOSTILE \([a-z-]*\) *rtt_p50_ms=.*/\1/p' "$tmp/run1")
idle_p99=''
printf '%-16s %8s %8s %9s %8s %13s %10s\n' attack p50_ms p99_ms p99/idle max_ms rss_peak_MiB budget_MiB
for a in $attacks; do
  p50=() p99=() mx=() rss=()
  for r in $(seq "$runs"); do
    line=$(grep "^HOSTILE $a " "$tmp/run$r" | grep rtt_p50_ms | tail -1)
    p50+=("$(field rtt_p50_ms <<<"$line")")
    p99+=("$(field rtt_p99_ms <<<"$line")")
    mx+=("$(field rtt_max_ms <<<"$line")")
    rss+=("$(field rss_peak_kb <<<"$line")")
  done
  m50=$(median "${p50[@]}") m99=$(median "${p99[@]}") mmax=$(median "${mx[@]}")
  peak=$(printf '%s\n' "${rss[@]}" | sort -g | tail -1)
  [ "$a" = idle ] && idle_p99=$m99
  printf '%-16s %8.2f %8.2f %9.1f %8.2f %13.1f %10d\n' "$a" "$m50" "$m99" \
    "$(awk -v a="$m99" -v b="$idle_p99" 'BEGIN { print (b > 0 ? a / b : 0) }')" "$mmax" \
    "$(awk -v k="$peak" 'BEGIN { print k / 1024 }')" 48
done
grep -h "client-queue" "$tmp"/run* | grep dropped_after_ms | head -1 | sed 's/^HOSTILE /  /'
grep -h "detail:" "$tmp/run1" | sed 's/^HOSTILE /  /'
