#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Node-manager pairing end to end: `pairlink app` and `pairlink node-manager`
# as separate processes through `pairlink relay` on 127.0.0.1.
#   1. pairing, same fingerprint on both sides, session established, stores
#   2. `run` daemons + `send` both ways
#   3. a mistyped code (refused at once) and a wrong valid code (both sides
#      fail with a clear error, nothing stored)
#   4. an expired code
#   5. a replayed HELLO (the relay mailbox hands the old answer to a new node
#      manager using the same code): dropped, no pairing
#   6. kill -9 at each step of the pairing: the store opens and the pairing
#      is fully recorded or absent; a later pairing still works
#   7. restart re-establishment with 50 persisted counterparties (both sides
#      restarted, kill -9)
# PAIRLINK_TEST_CODE_TTL_MS shortens the 5-minute code lifetime (tests only).
set -euo pipefail
TEST_NAME=nm_e2e
source "$(dirname "$0")/relay-common.bash"

PL_BUILD_DIR="${PL_BUILD_DIR:-$(dirname "$PL_CLI")}"
FLEET="$PL_BUILD_DIR/interop/interop_nm_fleet"
[ -x "$FLEET" ] || die "$FLEET was not built"

PIDS=()
cleanup_nm() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    cleanup
}
trap cleanup_nm EXIT

start_relay main --db "$WORK/relay.db"
export PAIRLINK_RELAY="$RELAY_URL"

# wait_line FILE REGEX SECONDS [PID]: until a line matches (fails on time-out).
wait_line() {
    local f="$1" re="$2" t="$3" pid="${4:-}"
    for _ in $(seq 1 $((t * 20))); do
        grep -Eq -- "$re" "$f" 2>/dev/null && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            grep -Eq -- "$re" "$f" 2>/dev/null && return 0
            echo "---- $f ----" >&2; cat "$f" >&2 || true
            die "process $pid exited before '$re' appeared in $f"
        fi
        sleep 0.05
    done
    echo "---- $f ----" >&2; cat "$f" >&2 || true
    die "'$re' did not appear in $f within $t s"
}

code_of() { sed -n 's/.*"event":"pair_code","pairing_code":"\([^"]*\)".*/\1/p' "$1" | head -n1; }
fp_of() { sed -n 's/.*"event":"paired".*"fingerprint":"\([^"]*\)".*/\1/p' "$1" | head -n1; }

# check_store PATH EXPECT(0|1|any): the store opens; every row is complete.
check_store() {
    local out
    out=$("$PL_CLI" peers list --store "$1" --json) || die "peers list failed on $1"
    python3 - "$2" "$1" <<EOF || die "store $1 is not as expected"
import json, sys
rows = [json.loads(l) for l in """$out""".splitlines() if l.strip()]
want = sys.argv[1]
for r in rows:
    assert r["event"] == "peer" and len(r["peer_key_hex"]) == 64 and r["role"] in ("app", "node-manager"), r
    assert r["first_seen_ms"] > 0 and r["last_seen_ms"] >= r["first_seen_ms"], r
    assert r["name"], r
if want != "any":
    assert len(rows) == int(want), (len(rows), want, rows)
assert len(rows) <= 1, rows
EOF
}

# ---- 1. pairing ----
echo "$TEST_NAME: 1. pairing through the relay"
"$PL_CLI" app pair --store "$WORK/app.db" --name "Nimbus GUI" --json >"$WORK/app1.out" 2>"$WORK/app1.err" &
APP=$!
PIDS+=("$APP")
wait_line "$WORK/app1.out" '"event":"pair_code"' 10 "$APP"
CODE=$(code_of "$WORK/app1.out")
[ -n "$CODE" ] || die "no code printed"
# typed in lower case without dashes: still accepted
TYPED=$(echo "$CODE" | tr -d - | tr 'A-Z' 'a-z')
timeout 60 "$PL_CLI" node-manager pair "$TYPED" --store "$WORK/nm.db" --name "Status node manager" --json \
    >"$WORK/nm1.out" 2>"$WORK/nm1.err" || { cat "$WORK/nm1.out" "$WORK/nm1.err" >&2; die "node-manager pair failed"; }
wait "$APP" || { cat "$WORK/app1.out" "$WORK/app1.err" >&2; die "app pair failed"; }
FP_APP=$(fp_of "$WORK/app1.out")
FP_NM=$(fp_of "$WORK/nm1.out")
[ -n "$FP_APP" ] && [ "$FP_APP" = "$FP_NM" ] || die "fingerprints differ: '$FP_APP' vs '$FP_NM'"
grep -q '"event":"established"' "$WORK/app1.out" || die "app: no session after pairing"
grep -q '"event":"established"' "$WORK/nm1.out" || die "node manager: no session after pairing"
check_store "$WORK/app.db" 1
check_store "$WORK/nm.db" 1
"$PL_CLI" peers list --store "$WORK/app.db" --json | grep '"name":"Status node manager"' >/dev/null || die "app did not store the node manager's name"
"$PL_CLI" peers list --store "$WORK/nm.db" --json | grep '"role":"app"' >/dev/null || die "node manager did not store the app"
"$PL_CLI" peers list --store "$WORK/nm.db" --json | grep '"confirmed":true' >/dev/null || die "session not recorded as confirmed"
KEYMODE=$(stat -c %a "$WORK/app.db.key")
[ "$KEYMODE" = 600 ] || die "identity key file has mode $KEYMODE"
echo "$TEST_NAME: paired, fingerprint $FP_APP on both sides"

# ---- 2. daemons and send ----
echo "$TEST_NAME: 2. run daemons, send both ways, restart"
"$PL_CLI" app run --store "$WORK/app.db" --json >"$WORK/apprun.out" 2>&1 &
APPRUN=$!
PIDS+=("$APPRUN")
"$PL_CLI" node-manager run --store "$WORK/nm.db" --json >"$WORK/nmrun.out" 2>&1 &
NMRUN=$!
PIDS+=("$NMRUN")
wait_line "$WORK/nmrun.out" '"event":"established"' 20 "$NMRUN"
wait_line "$WORK/apprun.out" '"event":"established"' 20 "$APPRUN"
# kill -9 the app daemon and restart it: the session comes back (replaced)
kill -9 "$APPRUN"
"$PL_CLI" app run --store "$WORK/app.db" --json >"$WORK/apprun2.out" 2>&1 &
APPRUN=$!
PIDS+=("$APPRUN")
wait_line "$WORK/apprun2.out" '"event":"established"' 20 "$APPRUN"
wait_line "$WORK/nmrun.out" '"event":"established".*"replaced":true' 20 "$NMRUN"
# send from a third process of the node manager's store, and of the app's
timeout 40 "$PL_CLI" send "Nimbus GUI" "hello app" --store "$WORK/nm.db" --json >"$WORK/send1.out" 2>&1 ||
    { cat "$WORK/send1.out" >&2; die "send to the app failed"; }
grep -q '"event":"response".*"body":"ok"' "$WORK/send1.out" || die "no reply from the app"
wait_line "$WORK/apprun2.out" '"event":"request".*"body":"hello app"' 10 "$APPRUN"
timeout 40 "$PL_CLI" send "Status node manager" "hello nm" --store "$WORK/app.db" --json >"$WORK/send2.out" 2>&1 ||
    { cat "$WORK/send2.out" >&2; die "send to the node manager failed"; }
wait_line "$WORK/nmrun.out" '"event":"request".*"body":"hello nm"' 10 "$NMRUN"
kill -TERM "$APPRUN" "$NMRUN"
wait "$APPRUN" || die "app run did not exit cleanly on SIGTERM"
wait "$NMRUN" || die "node-manager run did not exit cleanly on SIGTERM"
# an unknown peer id is a clear error
if "$PL_CLI" send ffffffff "x" --store "$WORK/nm.db" 2>"$WORK/send3.err"; then die "send to an unknown peer succeeded"; fi
grep -q "PL_ERR_NOT_FOUND" "$WORK/send3.err" || die "unclear error for an unknown peer"

# ---- 3. wrong code ----
echo "$TEST_NAME: 3. wrong codes"
export PAIRLINK_TEST_CODE_TTL_MS=3000
"$PL_CLI" app pair --store "$WORK/w-app.db" --json >"$WORK/w-app.out" 2>"$WORK/w-app.err" &
APP=$!
PIDS+=("$APP")
wait_line "$WORK/w-app.out" '"event":"pair_code"' 10 "$APP"
CODE=$(code_of "$WORK/w-app.out")
# one character changed: the checksum refuses it before any network traffic
C1=${CODE:0:1}
if [ "$C1" = 1 ]; then R=2; else R=1; fi
BAD="$R${CODE:1}"
if "$PL_CLI" node-manager pair "$BAD" --store "$WORK/w-nm.db" 2>"$WORK/w-nm1.err"; then die "a mistyped code was accepted"; fi
grep -q "PL_ERR_CODE_CHECKSUM" "$WORK/w-nm1.err" || { cat "$WORK/w-nm1.err" >&2; die "mistyped code: unclear error"; }
# a valid code that is not the app's: both sides time out with a clear error
if "$PL_CLI" node-manager pair 00000-00000-00000 --store "$WORK/w-nm.db" --json >"$WORK/w-nm2.out" 2>"$WORK/w-nm2.err"; then
    die "pairing with a wrong code succeeded"
fi
grep -q '"event":"error","code":"PL_ERR_TIMEOUT"' "$WORK/w-nm2.out" || { cat "$WORK/w-nm2.out" "$WORK/w-nm2.err" >&2; die "wrong code: unclear error at the node manager"; }
if wait "$APP"; then die "app paired with a wrong code"; fi
grep -q '"code":"PL_ERR_CODE_EXPIRED"' "$WORK/w-app.out" || { cat "$WORK/w-app.out" "$WORK/w-app.err" >&2; die "wrong code: unclear error at the app"; }
check_store "$WORK/w-app.db" 0
check_store "$WORK/w-nm.db" 0

# ---- 4. expired code ----
echo "$TEST_NAME: 4. expired code"
export PAIRLINK_TEST_CODE_TTL_MS=1500
"$PL_CLI" app pair --store "$WORK/e-app.db" --json >"$WORK/e-app.out" 2>"$WORK/e-app.err" &
APP=$!
PIDS+=("$APP")
wait_line "$WORK/e-app.out" '"event":"pair_code"' 10 "$APP"
CODE=$(code_of "$WORK/e-app.out")
if wait "$APP"; then die "app pair did not fail on expiry"; fi
grep -q '"event":"error","code":"PL_ERR_CODE_EXPIRED"' "$WORK/e-app.out" || die "app: no expiry event"
if "$PL_CLI" node-manager pair "$CODE" --store "$WORK/e-nm.db" >"$WORK/e-nm.out" 2>"$WORK/e-nm.err"; then
    die "an expired code paired"
fi
grep -q "PL_ERR_TIMEOUT" "$WORK/e-nm.err" || die "expired code: unclear error at the node manager"
check_store "$WORK/e-nm.db" 0
check_store "$WORK/e-app.db" 0

# ---- 5. replayed HELLO ----
echo "$TEST_NAME: 5. replayed HELLO"
unset PAIRLINK_TEST_CODE_TTL_MS
"$PL_CLI" app pair --store "$WORK/r-app.db" --json --no-session >"$WORK/r-app.out" 2>&1 &
APP=$!
PIDS+=("$APP")
wait_line "$WORK/r-app.out" '"event":"pair_code"' 10 "$APP"
CODE=$(code_of "$WORK/r-app.out")
"$PL_CLI" node-manager pair "$CODE" --store "$WORK/r-nm.db" --json --no-session >"$WORK/r-nm.out" 2>&1 ||
    die "first pairing of the replay test failed"
kill -9 "$APP" 2>/dev/null || true
# The relay's mailbox still holds the app's answer (HELLO_NODE_MANAGER) and
# the first node manager's HELLO_APPs; a second node manager typing the same
# code gets them replayed and must not pair.
export PAIRLINK_TEST_CODE_TTL_MS=4000
if "$PL_CLI" node-manager pair "$CODE" --store "$WORK/r-nm2.db" --json >"$WORK/r-nm2.out" 2>"$WORK/r-nm2.err"; then
    die "a replayed HELLO paired"
fi
unset PAIRLINK_TEST_CODE_TTL_MS
grep -q '"event":"pair_dropped","reason":"wrong_echo"' "$WORK/r-nm2.out" ||
    { cat "$WORK/r-nm2.out" >&2; die "the replayed answer was not dropped as wrong_echo"; }
check_store "$WORK/r-nm2.db" 0

# ---- 6. kill -9 at each step ----
echo "$TEST_NAME: 6. kill -9 at each step of the pairing"
# step: "who:regex" -- kill that side as soon as its output shows the line
STEPS=("app:\"event\":\"pair_code\"" "nm:\"event\":\"relay_connected\"" "app:\"event\":\"pair_stored\"" "nm:\"event\":\"pair_stored\""
       "app:\"event\":\"paired\"" "nm:\"event\":\"paired\"" "nm:\"event\":\"connecting\"" "app:\"event\":\"established\"")
i=0
for step in "${STEPS[@]}"; do
    who=${step%%:*}
    re=${step#*:}
    d="$WORK/k$i"
    mkdir -p "$d"
    "$PL_CLI" app pair --store "$d/app.db" --json >"$d/app.out" 2>&1 &
    APP=$!
    PIDS+=("$APP")
    wait_line "$d/app.out" '"event":"pair_code"' 10 "$APP"
    CODE=$(code_of "$d/app.out")
    NM=""
    if [ "$who" = app ] && [ "$re" = '"event":"pair_code"' ]; then
        kill -9 "$APP"
    else
        "$PL_CLI" node-manager pair "$CODE" --store "$d/nm.db" --json >"$d/nm.out" 2>&1 &
        NM=$!
        PIDS+=("$NM")
        if [ "$who" = app ]; then wait_line "$d/app.out" "$re" 30; kill -9 "$APP" 2>/dev/null || true
        else wait_line "$d/nm.out" "$re" 30; kill -9 "$NM" 2>/dev/null || true; fi
    fi
    # the survivor is stopped too (it would wait for the code to expire)
    kill -9 "$APP" 2>/dev/null || true
    wait "$APP" 2>/dev/null || true
    if [ -n "$NM" ]; then
        kill -9 "$NM" 2>/dev/null || true
        wait "$NM" 2>/dev/null || true
    fi
    check_store "$d/app.db" any
    [ -f "$d/nm.db" ] && check_store "$d/nm.db" any
    i=$((i + 1))
done
# a store that saw a kill -9 still pairs (and re-pairing the same devices is fine)
d="$WORK/k3"
"$PL_CLI" app pair --store "$d/app.db" --json >"$d/app2.out" 2>&1 &
APP=$!
PIDS+=("$APP")
wait_line "$d/app2.out" '"event":"pair_code"' 10 "$APP"
CODE=$(code_of "$d/app2.out")
timeout 60 "$PL_CLI" node-manager pair "$CODE" --store "$d/nm.db" --json >"$d/nm2.out" 2>&1 || die "pairing after kill -9 failed"
wait "$APP" || die "app pairing after kill -9 failed"
check_store "$d/app.db" 1
check_store "$d/nm.db" 1

# ---- 7. 50 persisted counterparties, restarts ----
echo "$TEST_NAME: 7. restart re-establishment with 50 counterparties"
mkdir -p "$WORK/fleet"
"$FLEET" seed "$WORK/fleet" 50 "$WORK/fleet/nm.db" >/dev/null || die "fleet seed failed"
"$PL_CLI" node-manager run --store "$WORK/fleet/nm.db" --json >"$WORK/fleet/nm.out" 2>&1 &
NMRUN=$!
PIDS+=("$NMRUN")
"$FLEET" run "$WORK/fleet" 50 "$RELAY_URL" 120 >"$WORK/fleet/apps.out" 2>&1 &
FL=$!
PIDS+=("$FL")
T0=$(date +%s.%N)
wait_line "$WORK/fleet/apps.out" '^all established$' 60 "$FL"
T1=$(date +%s.%N)
count_est() { grep -c '"event":"established"' "$1" || true; }
distinct_est() { grep '"event":"established"' "$1" | sed 's/.*"peer_key_hex":"\([0-9a-f]*\)".*/\1/' | sort -u | wc -l; }
for _ in $(seq 1 100); do [ "$(distinct_est "$WORK/fleet/nm.out")" -ge 50 ] && break; sleep 0.1; done
[ "$(distinct_est "$WORK/fleet/nm.out")" -eq 50 ] || die "node manager: not 50 sessions"
echo "$TEST_NAME: 50 sessions in $(python3 -c "print(round($T1 - $T0, 2))") s"
# kill -9 the node manager and restart it: 50 sessions again
kill -9 "$NMRUN"
"$PL_CLI" node-manager run --store "$WORK/fleet/nm.db" --json >"$WORK/fleet/nm2.out" 2>&1 &
NMRUN=$!
PIDS+=("$NMRUN")
for _ in $(seq 1 400); do [ "$(distinct_est "$WORK/fleet/nm2.out")" -ge 50 ] && break; sleep 0.1; done
[ "$(distinct_est "$WORK/fleet/nm2.out")" -eq 50 ] || die "node manager restart: $(distinct_est "$WORK/fleet/nm2.out")/50 sessions"
for _ in $(seq 1 100); do [ "$(grep -c '^replaced' "$WORK/fleet/apps.out" || true)" -ge 50 ] && break; sleep 0.1; done
[ "$(grep '^replaced' "$WORK/fleet/apps.out" | sort -u | wc -l)" -eq 50 ] || die "apps: not every session replaced after the node manager restart"
# kill -9 every app and restart them: the running node manager takes them back
kill -9 "$FL"
"$FLEET" run "$WORK/fleet" 50 "$RELAY_URL" 120 >"$WORK/fleet/apps2.out" 2>&1 &
FL=$!
PIDS+=("$FL")
wait_line "$WORK/fleet/apps2.out" '^all established$' 60 "$FL"
for _ in $(seq 1 100); do [ "$(grep '"replaced":true' "$WORK/fleet/nm2.out" | sed 's/.*"peer_key_hex":"\([0-9a-f]*\)".*/\1/' | sort -u | wc -l)" -ge 50 ] && break; sleep 0.1; done
[ "$(grep '"replaced":true' "$WORK/fleet/nm2.out" | sed 's/.*"peer_key_hex":"\([0-9a-f]*\)".*/\1/' | sort -u | wc -l)" -eq 50 ] ||
    die "node manager: not every app re-established after the apps restarted"
kill -TERM "$FL" "$NMRUN"
wait "$FL" || true
wait "$NMRUN" || die "node-manager run did not exit cleanly"

check_relay_log
if grep -E "ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:|precondition failed" "$WORK"/*.out "$WORK"/*.err "$WORK"/*/*.out 2>/dev/null; then
    die "a sanitizer report or failed precondition in the CLI output"
fi
echo "$TEST_NAME: OK"
