#!/usr/bin/env bash
# `cmake --install` of the build tree into a temporary prefix, then a user
# program built against it twice: with pkg-config and with find_package.
set -euo pipefail
B=${PL_BUILD_DIR:-build}; S=${PL_SOURCE_DIR:-.}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cmake --install "$B" --prefix "$tmp/prefix" >/dev/null
lib="$tmp/prefix/lib/libpairlink.so"
[ -L "$lib" ] || { echo "FAIL: no libpairlink.so symlink"; exit 1; }
soname=$(objdump -p "$lib" | awk '/SONAME/ {print $2}')
[ "$soname" = libpairlink.so.0 ] || { echo "FAIL: SONAME is '$soname'"; exit 1; }
# only the public API is exported
leaked=$(nm -D --defined-only "$lib" | awk '$2 == "T" && $3 !~ /^pl_/ && $3 !~ /^_/ {print $3}' | head -5)
[ -z "$leaked" ] || { echo "FAIL: non-pl_ symbols exported: $leaked"; exit 1; }
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
cc -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -o "$tmp/wc_pair" "$S/examples/wc_pair.c" \
   $(pkg-config --cflags --libs pairlink libuv) -Wl,-rpath,"$tmp/prefix/lib"
set +e; "$tmp/wc_pair" >/dev/null 2>"$tmp/err"; rc=$?; set -e
[ $rc = 2 ] && grep -q usage "$tmp/err" || { echo "FAIL: pkg-config build does not run (rc=$rc)"; exit 1; }
mkdir -p "$tmp/consumer"
cat > "$tmp/consumer/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.25)
project(consumer C)
find_package(pairlink 0.1 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(UV REQUIRED IMPORTED_TARGET libuv)
add_executable(wc_pair $S/examples/wc_pair.c)
target_link_libraries(wc_pair PRIVATE pairlink::pairlink PkgConfig::UV)
CM
cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/consumer/build" >/dev/null
set +e; "$tmp/consumer/build/wc_pair" >/dev/null 2>&1; rc=$?; set -e
[ $rc = 2 ] || { echo "FAIL: find_package build does not run (rc=$rc)"; exit 1; }
echo "install: SONAME $soname, pkg-config and find_package consumers built and ran"
echo "1 passed, 0 failed"
