#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The allow-list of client keys of `pairlink relay --require-auth
# --allow-file` against the JS side (ws, @walletconnect/relay-auth): a listed
# key is admitted, a valid JWT of another key gets HTTP 401 with a log line
# naming the key, and a key added to the file is admitted after SIGHUP
# without restarting (interop/relay-allowlist.mjs).
#
# Run by CTest (label interop) with PL_CLI and PL_SOURCE_DIR set; only
# 127.0.0.1 is used.
set -euo pipefail
TEST_NAME=relay_allowlist
source "$(dirname "$0")/relay-common.bash"

ALLOW_FILE="$WORK/allow.txt"
echo "did:key:z6MkodHZwneVRShtaLf8JKYkxpDGp1vGZnpGmdBpX8M2exxH" >"$ALLOW_FILE"
start_relay allowlist --require-auth --allow-file "$ALLOW_FILE"

rc=0
RELAY_URL="$RELAY_URL" RELAY_PID="$RELAY_PID" ALLOW_FILE="$ALLOW_FILE" \
    run_node 90 relay-allowlist.mjs >"$WORK/allow.out" 2>"$WORK/allow.err" || rc=$?
cat "$WORK/allow.out"
if [ "$rc" -ne 0 ]; then
    cat "$WORK/allow.err" >&2
    die "allow-list checks failed (exit $rc)"
fi
grep -qx "ALLOWLIST OK" "$WORK/allow.out" || die "allow-list checks did not finish"
grep -q "is not in the allow-list (PL_ERR_RELAY_NOT_ALLOWED)" "$RELAY_ERR" || die "the refusal was not logged"
[ "$(grep -c "reloaded $ALLOW_FILE: changed: allow" "$RELAY_ERR")" = 2 ] || die "two reloads were not logged"
kill -0 "$RELAY_PID" 2>/dev/null || die "the relay died"
stop_relay
check_relay_log
echo "$TEST_NAME: OK"
