#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The JS SDK's full Sign flow through `pairlink relay` (issue 3, section 1):
# two SignClients (dapp and wallet) connect, pair, approve, request, respond
# and disconnect through a relay that requires a valid relay JWT and keeps
# its mailbox in SQLite. Then the relay must stop cleanly on SIGTERM.
#
# Run by CTest (label interop) with PL_CLI and PL_SOURCE_DIR set; only
# 127.0.0.1 is used.
set -euo pipefail
TEST_NAME=relay_signflow
source "$(dirname "$0")/relay-common.bash"

start_relay signflow --require-auth --db "$WORK/relay.db" --verbose

rc=0
RELAY_URL="$RELAY_URL" run_node 150 relay-signflow.mjs >"$WORK/flow.out" 2>"$WORK/flow.err" || rc=$?
cat "$WORK/flow.out"
if [ "$rc" -ne 0 ]; then
    sed -n '1,40p' "$WORK/flow.err" >&2
    die "the JS Sign flow failed (exit $rc)"
fi
grep -qx "SIGNFLOW OK" "$WORK/flow.out" || die "the JS Sign flow did not finish"
for s in connect pair "proposal delivered" approve "session settled" "request/respond" \
    disconnect "session_delete delivered"; do
    grep -qx "STEP $s ok" "$WORK/flow.out" || die "step '$s' missing"
done

# Both SDK clients authenticated with their did:key (JWT aud = the URL used).
n=$(grep -c "open from 127.0.0.1 (did:key:z6Mk" "$RELAY_ERR" || true)
[ "$n" -ge 2 ] || die "expected two authenticated connections, saw $n"
grep -q "refused connection" "$RELAY_ERR" && die "the relay refused an SDK connection"

# The relay methods SDK 2.25 needs were used, and no request failed.
for m in irn_subscribe irn_publish wc_proposeSession wc_approveSession; do
    grep -q "<- .*\"method\":\"$m\"" "$RELAY_ERR" || die "the SDK never called $m"
done
if grep -q "request failed" "$RELAY_ERR"; then
    grep "request failed" "$RELAY_ERR" | head -5 >&2
    die "the relay answered an SDK request with an error"
fi
stop_relay
check_relay_log
echo "$TEST_NAME: OK"
