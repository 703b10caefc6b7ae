#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `pairlink demo` (what `make demo` runs) completes both flows by itself.
set -uo pipefail
CLI=${PL_CLI:-build/pairlink}
out=$(timeout 120 "$CLI" demo 2>&1); rc=$?
echo "$out"
fails=0
expect() { grep -qF -- "$1" <<<"$out" || { echo "FAIL: missing '$1'"; fails=$((fails+1)); }; }
expect "wc [10] dapp deleted the pairing"
expect "Unsupported wc_ method. demo_unregistered"
expect "nm [11] both restarted"
expect "both sides show the fingerprint"
expect "demo finished: both flows completed"
[ $rc = 0 ] || { echo "FAIL: exit status $rc"; fails=$((fails+1)); }
echo "demo: $((5 + 1 - fails)) passed, $fails failed"
[ $fails = 0 ]
