#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `pairlink demo --waku`: the node-manager flow over an embedded Waku network
# (app's node - relay node - node manager's node, on 127.0.0.1) completes by
# itself, all eleven steps with the restart of both sides.
set -uo pipefail
CLI=${PL_CLI:-build/pairlink}
out=$(timeout 120 "$CLI" demo --waku 2>&1); rc=$?
echo "$out"
fails=0 n=0
expect() { n=$((n + 1)); grep -qF -- "$1" <<<"$out" || { echo "FAIL: missing '$1'"; fails=$((fails + 1)); }; }
expect "waku: a relay node listening on /ip4/127.0.0.1/tcp/"
for i in 1 2 3 4 5 6 7 8 9 10; do expect "nm [$(printf %2d $i)] "; done
expect "app is on the Waku network"
expect "app's Waku node"
expect "node manager's Waku node"
expect "(WakuMessage version 1, ephemeral; repeated every 2 s)"
expect "both sides show the fingerprint"
expect "nm [11] both restarted: each loaded 1 counterparty and the session was re-established"
expect "rejoined with their peer ids"
expect "after the restart the app asked again and got"
expect "demo finished: the node-manager flow completed over Waku"
n=$((n + 1))
grep -q "^wc " <<<"$out" && { echo "FAIL: the WalletConnect flow ran (it needs the relay)"; fails=$((fails + 1)); }
n=$((n + 1))
[ $rc = 0 ] || { echo "FAIL: exit status $rc"; fails=$((fails + 1)); }
n=$((n + 1))
"$CLI" demo --bogus >/dev/null 2>&1; [ $? = 2 ] || { echo "FAIL: an unknown argument is not a usage error"; fails=$((fails + 1)); }
echo "demo_waku: $((n - fails)) passed, $fails failed"
[ $fails = 0 ]
