#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `cmake --install` of the build tree into a temporary prefix, then a user
# program built against it with nothing but what pairlink installs: with
# `pkg-config --cflags --libs pairlink` alone, with find_package(pairlink) and
# pairlink::pairlink alone, and statically with pairlink::pairlink_static.
# Also: the files for users and operators are installed, and the versions
# agree.
set -euo pipefail
B=${PL_BUILD_DIR:-build}; S=${PL_SOURCE_DIR:-.}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
p="$tmp/prefix"
cmake --install "$B" --prefix "$p" >/dev/null
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$B/CMakeCache.txt")
lib="$p/${libdir:-lib}/libpairlink.so"
[ -L "$lib" ] || fail "no libpairlink.so symlink"
[ -f "$p/${libdir:-lib}/libpairlink.a" ] || fail "no libpairlink.a"
soname=$(objdump -p "$lib" | awk '/SONAME/ {print $2}')
[ "$soname" = libpairlink.so.0 ] || fail "SONAME is '$soname'"
# only the public API is exported
leaked=$(nm -D --defined-only "$lib" | awk '$2 == "T" && $3 !~ /^pl_/ && $3 !~ /^_/ {print $3}' | head -5)
[ -z "$leaked" ] || fail "non-pl_ symbols exported: $leaked"
nm -D --defined-only "$lib" | grep ' T pl_version$' >/dev/null || fail "pl_version is not exported"

# What users and operators get besides the library.
for f in bin/pairlink share/man/man1/pairlink.1 share/man/man8/pairlink-relay.8 \
    share/bash-completion/completions/pairlink lib/systemd/system/pairlink-relay.service \
    share/doc/pairlink/README.md share/doc/pairlink/LICENSE share/doc/pairlink/docs/relay.md; do
    [ -f "$p/$f" ] || fail "$f is not installed"
done
grep -qx "ExecStart=$p/bin/pairlink relay .*" "$p/lib/systemd/system/pairlink-relay.service" ||
    fail "the systemd unit does not run $p/bin/pairlink"

export PKG_CONFIG_PATH="$p/${libdir:-lib}/pkgconfig"
version=$("$p/bin/pairlink" --version)
[ "$version" = "pairlink $(pkg-config --modversion pairlink)" ] ||
    fail "'$version' but pairlink.pc says $(pkg-config --modversion pairlink)"
[ "$("$p/bin/pairlink" version)" = "$version" ] || fail "'pairlink version' differs from --version"

# pkg-config alone: libuv (the headers include <uv.h>) comes with pairlink.
cc -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -o "$tmp/wc_pair" "$S/examples/wc_pair.c" \
   $(pkg-config --cflags --libs pairlink) -Wl,-rpath,"$p/${libdir:-lib}"
set +e; "$tmp/wc_pair" >/dev/null 2>"$tmp/err"; rc=$?; set -e
[ $rc = 2 ] && grep -q usage "$tmp/err" || fail "pkg-config build does not run (rc=$rc)"

# find_package alone: pairlink::pairlink brings libuv; pairlink::pairlink_static
# links libpairlink.a and its dependencies.
mkdir -p "$tmp/consumer"
cat > "$tmp/consumer/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.25)
project(consumer C)
find_package(pairlink 0.1 REQUIRED)
add_executable(wc_pair $S/examples/wc_pair.c)
target_link_libraries(wc_pair PRIVATE pairlink::pairlink)
add_executable(wc_pair_static $S/examples/wc_pair.c)
target_link_libraries(wc_pair_static PRIVATE pairlink::pairlink_static)
CM
cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$p" >/dev/null
cmake --build "$tmp/consumer/build" >/dev/null
for x in wc_pair wc_pair_static; do
    set +e; "$tmp/consumer/build/$x" >/dev/null 2>&1; rc=$?; set -e
    [ $rc = 2 ] || fail "find_package build $x does not run (rc=$rc)"
done
objdump -p "$tmp/consumer/build/wc_pair" | grep 'NEEDED.*libpairlink\.so\.0' >/dev/null ||
    fail "pairlink::pairlink did not link libpairlink.so"
! objdump -p "$tmp/consumer/build/wc_pair_static" | grep 'NEEDED.*libpairlink' >/dev/null ||
    fail "pairlink::pairlink_static linked libpairlink.so"
echo "install: SONAME $soname, $version; consumers built with pkg-config, find_package (shared, static) ran"
echo "1 passed, 0 failed"
