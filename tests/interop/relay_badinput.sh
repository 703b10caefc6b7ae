#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Bad input at the socket of `pairlink relay --require-auth`: missing,
# malformed, mis-addressed, expired and forged JWTs (HTTP 401); garbage JSON,
# JSON-RPC errors, TTL and size limits, the request rate limit (3001); binary,
# oversized and non-UTF-8 frames (close 1003, 1009, 1007); pings and the
# reaping of a silent client. The relay must keep serving and stop cleanly.
#
# Run by CTest (label interop) with PL_CLI and PL_SOURCE_DIR set; only
# 127.0.0.1 is used.
set -euo pipefail
TEST_NAME=relay_badinput
source "$(dirname "$0")/relay-common.bash"

start_relay badinput --require-auth --ping-interval 1 --idle-timeout 3 --rate-limit 20

rc=0
RELAY_URL="$RELAY_URL" run_node 120 relay-badinput.mjs >"$WORK/bad.out" 2>"$WORK/bad.err" || rc=$?
cat "$WORK/bad.out"
if [ "$rc" -ne 0 ]; then
    cat "$WORK/bad.err" >&2
    die "bad-input checks failed (exit $rc)"
fi
grep -qx "BADINPUT OK" "$WORK/bad.out" || die "bad-input checks did not finish"
kill -0 "$RELAY_PID" 2>/dev/null || die "the relay died"
grep -q "refused connection from 127.0.0.1" "$RELAY_ERR" || die "refusals were not logged"
grep -q "reaping" "$RELAY_ERR" || die "the silent client was not reaped by the relay"

stop_relay
check_relay_log
echo "$TEST_NAME: OK"
