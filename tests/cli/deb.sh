#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `make deb`: CPack builds pairlink_*.deb and libpairlink-dev_*.deb from the
# build tree; they are installed and `pairlink demo` runs from the installed
# binary.
#
# How they are installed: with `dpkg -i` into the system when running as root
# and the pairlink package is not installed already (then purged at the end);
# otherwise, or with PL_TEST_DEB_INSTALL=0, unpacked with `dpkg -x` into a
# scratch root. PL_TEST_DEB_INSTALL=1 insists on dpkg -i. The output says
# which was used.
set -uo pipefail
B=${PL_BUILD_DIR:-build}; S=${PL_SOURCE_DIR:-.}
B=$(cd "$B" && pwd); S=$(cd "$S" && pwd)
tmp=$(mktemp -d)
installed=0
cleanup() {
    if [ $installed = 1 ]; then dpkg --purge libpairlink-dev pairlink >"$tmp/purge.log" 2>&1 ||
        { echo "deb: dpkg --purge failed:"; cat "$tmp/purge.log"; }; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
passed=0 fails=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
die() { echo "FAIL: $*"; echo "deb: $passed passed, $((fails + 1)) failed"; exit 1; }

for t in cpack dpkg dpkg-deb; do
    command -v $t >/dev/null || { echo "deb: $t not found: not a Debian system, skipped"; exit 0; }
done

# ---- build the packages (what `make deb` runs, into a scratch directory) ----
cpack -G DEB --config "$B/CPackConfig.cmake" -B "$tmp/out" >"$tmp/cpack.log" 2>&1 ||
    { cat "$tmp/cpack.log"; die "cpack -G DEB failed"; }
version=$("$B/pairlink" --version | sed 's/^pairlink //')
arch=$(dpkg --print-architecture)
rt="$tmp/out/pairlink_${version}_$arch.deb" dev="$tmp/out/libpairlink-dev_${version}_$arch.deb"
[ -f "$rt" ] && [ -f "$dev" ] || { ls "$tmp/out"; die "no pairlink_${version}_$arch.deb and libpairlink-dev_${version}_$arch.deb"; }
ok

# ---- the control fields ----
[ "$(dpkg-deb -f "$rt" Package)" = pairlink ] && [ "$(dpkg-deb -f "$dev" Package)" = libpairlink-dev ] &&
    [ "$(dpkg-deb -f "$rt" Version)" = "$version" ] && ok || fail "package names or version wrong"
depends=$(dpkg-deb -f "$rt" Depends)
echo "deb: pairlink $version Depends: $depends"
dep_names=" $(sed 's/([^)]*)//g; s/[,|]/ /g' <<<"$depends" | tr -s ' ') "
# Every library the packaged programs need is a dependency, by its Debian
# package; the libwebsockets libuv plugin (loaded with dlopen) as well.
mkdir -p "$tmp/rt" && dpkg-deb -x "$rt" "$tmp/rt"
need=$(for f in "$tmp/rt/usr/bin/pairlink" "$tmp/rt"/usr/lib/libpairlink.so.*.*; do
    objdump -p "$f" | awk '/NEEDED/ {print $2}'; done | sort -u)
for so in $need; do
    path=$(ldconfig -p | awk -v so="$so" '$1 == so {print $NF; exit}')
    [ -n "$path" ] || { fail "$so: not found by ldconfig"; continue; }
    pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1)
    [ -n "$pkg" ] || pkg=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1)
    [[ "$dep_names" == *" $pkg "* ]] || fail "$so (package $pkg) is not in Depends"
done
[[ "$dep_names" == *" libwebsockets-evlib-uv "* ]] || fail "libwebsockets-evlib-uv is not in Depends"
[[ "$(dpkg-deb -f "$dev" Depends)" == *"pairlink (= $version)"* ]] || fail "libpairlink-dev does not depend on pairlink (= $version)"
ok

# ---- install ----
mode=${PL_TEST_DEB_INSTALL:-auto}
if [ "$mode" != 0 ] && [ "$(id -u)" = 0 ] && ! dpkg-query -W -f='${Status}' pairlink 2>/dev/null | grep installed >/dev/null; then
    if dpkg -i "$rt" "$dev" >"$tmp/dpkg.log" 2>&1; then
        installed=1 root=""
        echo "deb: installed with dpkg -i (purged again at the end)"
    elif grep -q "lock" "$tmp/dpkg.log" && [ "$mode" != 1 ]; then
        echo "deb: dpkg is busy (locked by another process): unpacking with dpkg -x instead"
    else
        cat "$tmp/dpkg.log"
        installed=1 # purge what may be half-installed
        die "dpkg -i failed"
    fi
elif [ "$mode" = 1 ]; then
    die "PL_TEST_DEB_INSTALL=1 but not root, or pairlink is already installed"
fi
if [ $installed = 0 ]; then
    root="$tmp/root"
    dpkg-deb -x "$rt" "$root" && dpkg-deb -x "$dev" "$root" || die "dpkg -x failed"
    echo "deb: unpacked with dpkg -x into a scratch root (not root, pairlink already installed, or PL_TEST_DEB_INSTALL=0)"
fi
pl="$root/usr/bin/pairlink"

# ---- the installed files ----
for f in usr/bin/pairlink usr/lib/libpairlink.so.0 usr/share/man/man1/pairlink.1 usr/share/man/man8/pairlink-relay.8 \
    usr/share/bash-completion/completions/pairlink usr/lib/systemd/system/pairlink-relay.service \
    usr/share/doc/pairlink/README.md usr/share/doc/pairlink/LICENSE usr/share/doc/pairlink/docs/relay.md \
    usr/include/pairlink/common.h usr/lib/libpairlink.a usr/lib/pkgconfig/pairlink.pc \
    usr/lib/cmake/pairlink/pairlinkConfig.cmake; do
    [ -e "$root/$f" ] || fail "/$f is not in the packages"
done
grep -q '^ExecStart=/usr/bin/pairlink relay ' "$root/usr/lib/systemd/system/pairlink-relay.service" &&
    ok || fail "the unit does not run /usr/bin/pairlink"
if command -v systemd-analyze >/dev/null; then
    unit="$tmp/pairlink-relay.service"
    sed "s|^ExecStart=/usr/bin/pairlink |ExecStart=$pl |" "$root/usr/lib/systemd/system/pairlink-relay.service" >"$unit"
    if out=$(systemd-analyze verify --man=no "$unit" 2>&1); then ok; else fail "systemd-analyze verify: $out"; fi
fi

# ---- run it: the version, then the demo ----
[ "$("$pl" --version)" = "pairlink $version" ] && ok || fail "installed pairlink --version: $("$pl" --version)"
out=$(cd "$tmp" && timeout 120 "$pl" demo 2>&1); rc=$?
if [ $rc = 0 ] && grep -qF "demo finished: both flows completed" <<<"$out"; then
    ok
    echo "deb: $pl demo completed"
else
    echo "$out" | tail -20
    fail "$pl demo: exit status $rc"
fi

# ---- the dev package: a consumer with pkg-config alone ----
if [ -n "$root" ]; then
    export PKG_CONFIG_PATH="$root/usr/lib/pkgconfig"
    rpath="-Wl,-rpath,$root/usr/lib"
else
    rpath=""
fi
if cc -std=c11 -D_DEFAULT_SOURCE -o "$tmp/wc_pair" "$S/examples/wc_pair.c" $(pkg-config --cflags --libs pairlink) $rpath; then
    "$tmp/wc_pair" >/dev/null 2>&1; rc=$?
    lib=$(ldd "$tmp/wc_pair" | awk '/libpairlink/ {print $3}')
    [ $rc = 2 ] && [ "$(readlink -f "$lib")" = "$(readlink -f "$root/usr/lib/libpairlink.so.0")" ] && ok ||
        fail "consumer of the dev package: exit status $rc, libpairlink from '$lib'"
else
    fail "a consumer does not build with the dev package's pairlink.pc"
fi

echo "deb: $passed passed, $fails failed"
[ $fails = 0 ]
