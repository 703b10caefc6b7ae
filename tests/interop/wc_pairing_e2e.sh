#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# WalletConnect pairing end to end against the official JS SDK (issue 3,
# section 5): `pairlink wc` and @walletconnect/core / sign-client 2.25
# through `pairlink relay`, all on 127.0.0.1.
#
#   js-create         JS pairing.create -> C pair -> JS ping answered by C; C active, 30 days
#   c-create          C create -> JS pair -> C ping answered by JS; C active, 30 days
#   sign-unsupported  dapp connect() -> C without Sign: approval fails 10001;
#                     with --accept wc_sessionPropose C prints the proposal
#   delete            JS disconnect -> C deleted by_peer; C delete -> JS pairing_delete
#   expire            PAIRLINK_WC_INACTIVE_TTL=3: C emits expired, wc list drops it
#   restart           kill -9 of the C side and of the relay mid-conversation: nothing lost
#   restart-unsent    a C request queued while the relay is down, then kill -9 of the C
#                     process: the restarted C side still sends it
#   bad-input         garbage on the pairing topic: C reports bad_message, keeps answering
#
# Each case is one run of interop/wc-pairing-e2e.mjs with its own relay, C
# stores and time limit. WC_E2E_CASES="a b" runs a subset. Prints
# "wc e2e: N passed, M failed" and exits non-zero on any failure.
#
# Run by CTest (label interop) with PL_CLI and PL_SOURCE_DIR set.
set -uo pipefail
TEST_NAME=wc_e2e
source "$(dirname "$0")/relay-common.bash"
for pkg in @walletconnect/core @walletconnect/utils; do
    [ -f "$INTEROP/node_modules/$pkg/package.json" ] ||
        die "$INTEROP/node_modules/$pkg is missing: run 'npm ci' in $INTEROP"
done

# The driver runs in $INTEROP: give it an absolute path.
PL_CLI="$(cd "$(dirname "$PL_CLI")" && pwd)/$(basename "$PL_CLI")"

ALL_CASES="js-create c-create sign-unsupported delete expire restart restart-unsent bad-input"
CASES="${WC_E2E_CASES:-$ALL_CASES}"
CASE_TIMEOUT="${WC_E2E_CASE_TIMEOUT:-60}"

passed=0
failed=0
failures=()

# A sanitizer report, a failed precondition or an assertion in any log of a
# C process or relay of the case fails it, whatever the JS side saw.
bad_logs() {
    grep -lE "ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:|precondition failed|Assertion .* failed" \
        "$WORK/$1"-*.err 2>/dev/null || true
}

for c in $CASES; do
    start=$(date +%s)
    rc=0
    PL_CLI="$PL_CLI" WORK="$WORK" WC_CASE_TIMEOUT_MS=$(((CASE_TIMEOUT - 5) * 1000)) \
        run_node "$CASE_TIMEOUT" wc-pairing-e2e.mjs "$c" >"$WORK/$c.log" 2>"$WORK/$c.stderr" || rc=$?
    sed "s/^/  /" "$WORK/$c.log"
    why=""
    if [ "$rc" -ne 0 ] || ! grep -qx "CASE $c ok" "$WORK/$c.log"; then
        why=$(sed -n "s/^CASE $c FAILED: //p" "$WORK/$c.log" | head -n 1)
        [ -n "$why" ] || why="the driver exited with status $rc without a verdict"
    fi
    logs=$(bad_logs "$c")
    if [ -n "$logs" ]; then
        why="${why:+$why; }sanitizer/precondition report in: $(basename -a $logs | tr '\n' ' ')"
    fi
    secs=$(($(date +%s) - start))
    if [ -z "$why" ]; then
        passed=$((passed + 1))
        echo "$TEST_NAME: $c passed (${secs} s)"
    else
        failed=$((failed + 1))
        failures+=("$c: $why")
        echo "$TEST_NAME: $c FAILED (${secs} s): $why"
        sed -n '1,20p' "$WORK/$c.stderr" | sed "s/^/  js stderr: /"
        for f in "$WORK/$c"-*.err; do
            [ -s "$f" ] || continue
            echo "  ---- $(basename "$f") (last 15 lines) ----"
            tail -n 15 "$f" | sed "s/^/  /"
        done
        for f in "$WORK/$c"-c-*.out; do
            [ -s "$f" ] || continue
            echo "  ---- $(basename "$f") (last 10 events) ----"
            tail -n 10 "$f" | cut -c1-300 | sed "s/^/  /"
        done
    fi
done

for f in "${failures[@]}"; do echo "$TEST_NAME: FAILED $f" >&2; done
echo "wc e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
