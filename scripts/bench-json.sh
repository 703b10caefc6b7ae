#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The JSON libraries packaged in Debian 12 on the relay's own frames (issue
# 12): jansson, cJSON (libcjson-dev), json-parser (libjsonparser-dev) and
# simdjson (libsimdjson-dev, C++, behind the C shim in bench/json/). Builds
# bench/json/bench_json into BUILD_DIR/bench and runs it.
#
#   scripts/bench-json.sh [BUILD_DIR] [ITERATIONS]
#
# Installs the three -dev packages with apt-get when it runs as root and they
# are missing (PL_BENCH_NO_INSTALL=1: never). Results and the choice made from
# them: docs/performance.md, "JSON libraries".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
iters=${2:-200000}
mkdir -p "$build/bench-json"
need=()
for p in libcjson-dev libjsonparser-dev libsimdjson-dev g++; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  if [ "${PL_BENCH_NO_INSTALL:-0}" != 1 ] && [ "$(id -u)" = 0 ]; then
    apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; }
  else
    echo "bench-json: skipped (needs ${need[*]})"
    exit 0
  fi
fi
src=$root/bench/json
out=$build/bench-json/bench_json
g++ -O2 -g -std=c++17 -c "$src/simdjson_shim.cpp" -o "$build/bench-json/simdjson_shim.o" \
  $(pkg-config --cflags simdjson)
# shellcheck disable=SC2046 # pkg-config prints several words on purpose
gcc -O2 -g -std=c11 -Wall -Wextra -Werror -c "$src/bench_json.c" -o "$build/bench-json/bench_json.o" \
  $(pkg-config --cflags jansson libcjson json-parser)
# shellcheck disable=SC2046
gcc -O2 -g -std=c11 -Wall -Wextra -Werror -c "$src/jsonparser_part.c" -o "$build/bench-json/jsonparser_part.o" \
  $(pkg-config --cflags json-parser)
# shellcheck disable=SC2046
g++ "$build/bench-json/bench_json.o" "$build/bench-json/jsonparser_part.o" "$build/bench-json/simdjson_shim.o" -o "$out" \
  $(pkg-config --libs jansson libcjson json-parser simdjson)
"$out" "$iters"
