#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Durability of `pairlink relay --db`: a client publishes continuously; the
# relay is killed with SIGKILL in the middle of the stream; a relay restarted
# on the same database must deliver every message whose publish had been
# acknowledged (`true`) before the kill to a subscriber that comes later.
#
# Run by CTest (label interop) with PL_CLI and PL_SOURCE_DIR set; only
# 127.0.0.1 is used.
set -euo pipefail
TEST_NAME=relay_durability
source "$(dirname "$0")/relay-common.bash"

TOPIC=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
DB="$WORK/relay.db"

# No rate or mailbox limit here: the publisher runs flat out until the kill.
start_relay before --db "$DB" --rate-limit 0 --mailbox-limit 1000000
(RELAY_URL="$RELAY_URL" run_node 60 relay-probe.mjs publish "$RELAY_URL" "$TOPIC" "m$$" 50000 \
    >"$WORK/pub.out" 2>"$WORK/pub.err") &
PUB=$!

# Let a few hundred publishes be acknowledged, then kill the relay mid-stream.
for _ in $(seq 1 200); do
    n=$(grep -c '^ACK ' "$WORK/pub.out" 2>/dev/null || true)
    [ "${n:-0}" -ge 300 ] && break
    kill -0 "$PUB" 2>/dev/null || break
    sleep 0.1
done
kill -9 "$RELAY_PID"
wait "$RELAY_PID" 2>/dev/null || true
rc=0
wait "$PUB" || rc=$?
[ "$rc" -eq 0 ] || { cat "$WORK/pub.err" >&2; die "publisher failed (exit $rc)"; }
sed -n 's/^ACK //p' "$WORK/pub.out" >"$WORK/acked"
acked=$(wc -l <"$WORK/acked")
[ "$acked" -ge 300 ] || die "only $acked publishes were acknowledged before the kill"
echo "$TEST_NAME: $acked publishes acknowledged before kill -9"

start_relay after --db "$DB" --rate-limit 0 --mailbox-limit 1000000
grep -q "messages on 1 topics restored" "$RELAY_ERR" || die "the restarted relay restored nothing"
rc=0
run_node 60 relay-probe.mjs collect "$RELAY_URL" "$TOPIC" "$WORK/acked" 20000 >"$WORK/col.out" \
    2>"$WORK/col.err" || rc=$?
cat "$WORK/col.out"
[ "$rc" -eq 0 ] || { cat "$WORK/col.err" >&2; die "acknowledged messages were lost (exit $rc)"; }
grep -q "MISSING 0 DUPLICATES 0" "$WORK/col.out" || die "unexpected collect result"

stop_relay
check_relay_log
echo "$TEST_NAME: OK"
