#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Trust and state of the node-manager commands (issue 13): `pair
# --no-session` sets up no session, `pair --verify` asks before storing
# (both screens show the same fingerprint; "no" stores nothing), running
# daemons notice pairings and removals made by other commands, and `peers
# remove` revokes at once and tells the peer, whose daemon forgets us.
# Against `pairlink relay` on 127.0.0.1; every wait is bounded.
set -uo pipefail
WAIT_S=20
. "$(dirname "$0")/lib/harness.bash"
count_peers() { "$CLI" peers --store "$1" --json | grep -c '"event":"peer"'; }

export PAIRLINK_STORE= PAIRLINK_RELAY= XDG_DATA_HOME="$dir/xdg" PAIRLINK_TEST_STORE_POLL_MS=200
"$CLI" relay --listen 127.0.0.1:0 >"$dir/relay.out" 2>"$dir/relay.err" & pids+=($!)
wait_for "$dir/relay.out" "listening on" || { echo "relay did not start"; exit 1; }
R=$(sed -n 's/^listening on //p' "$dir/relay.out")

# pair_two PREFIX APP_OPTS NM_OPTS: app pair + node-manager pair, outputs in $dir/PREFIX.{app,nm}.out
start_app() { # PREFIX OPTS...
  local p=$1; shift
  # a background command's stdin is /dev/null unless redirected: IN says
  "$CLI" app pair --relay "$R" --store "$dir/$p-app.db" --json "$@" <"${IN:-/dev/null}" >"$dir/$p.app.out" 2>"$dir/$p.app.err" & APP=$!; pids+=($APP)
  wait_for "$dir/$p.app.out" '"event":"pair_code"' || fail "$p: app pair printed no code"
  CODE=$(jget "$dir/$p.app.out" pair_code pairing_code)
}

# ---- 3. --no-session: paired and stored, and no session at all ----
start_app ns --no-session --name GUI
"$CLI" node-manager pair "$CODE" --relay "$R" --store "$dir/ns-nm.db" --json --no-session >"$dir/ns.nm.out" 2>&1; rc=$?
wait_exit $APP; rc2=$?
[ $rc = 0 ] && [ $rc2 = 0 ] && ok || fail "--no-session: exit $rc $rc2"
grep -q '"event":"paired"' "$dir/ns.nm.out" && grep -q '"event":"paired"' "$dir/ns.app.out" && ok || fail "--no-session: not paired"
if grep -qE '"event":"(connecting|knock|established)"' "$dir/ns.nm.out" "$dir/ns.app.out"; then
  fail "--no-session set up a session"; cat "$dir/ns.nm.out" "$dir/ns.app.out"
else ok; fi
# the relay saw no subscription beyond the pairing's: no rendezvous topic
[ "$(count_peers "$dir/ns-nm.db")" = 1 ] && [ "$(count_peers "$dir/ns-app.db")" = 1 ] && ok || fail "--no-session: not stored"
"$CLI" peers --store "$dir/ns-nm.db" | grep -q "(no session yet)" && ok || fail "--no-session: the store says a session was set up"

# ---- 5. --verify: both screens, confirm before storing ----
mkfifo "$dir/va.in" "$dir/vn.in"
exec 7<>"$dir/va.in" 8<>"$dir/vn.in"
IN="$dir/va.in" start_app v1 --verify
"$CLI" node-manager pair "$CODE" --relay "$R" --store "$dir/v1-nm.db" --json --verify <&8 >"$dir/v1.nm.out" 2>&1 & NM=$!; pids+=($NM)
wait_for "$dir/v1.app.out" '"event":"pair_verify"' || fail "--verify: the app did not ask"
wait_for "$dir/v1.nm.out" '"event":"pair_verify"' || fail "--verify: the node manager did not ask"
FA=$(jget "$dir/v1.app.out" pair_verify fingerprint); FN=$(jget "$dir/v1.nm.out" pair_verify fingerprint)
[ -n "$FA" ] && [ "$FA" = "$FN" ] && ok || fail "--verify: fingerprints '$FA' and '$FN'"
[ "$(count_peers "$dir/v1-nm.db")" = 0 ] && [ "$(count_peers "$dir/v1-app.db")" = 0 ] && ok || fail "--verify: stored before the answer"
echo yes >&8; echo y >&7
wait_exit $NM; rc=$?; wait_exit $APP; rc2=$?
[ $rc = 0 ] && [ $rc2 = 0 ] && ok || { fail "--verify yes: exit $rc $rc2"; cat "$dir/v1.nm.out" "$dir/v1.app.out"; }
[ "$(count_peers "$dir/v1-nm.db")" = 1 ] && [ "$(count_peers "$dir/v1-app.db")" = 1 ] && ok || fail "--verify yes: not stored"
grep -q '"event":"paired".*"fingerprint":"'"$FA"'"' "$dir/v1.nm.out" && ok || fail "--verify yes: not paired"
# no: nothing stored on either side, one failure line that says what to do
IN="$dir/va.in" start_app v2 --verify
"$CLI" node-manager pair "$CODE" --relay "$R" --store "$dir/v2-nm.db" --verify <&8 >"$dir/v2.nm.out" 2>"$dir/v2.nm.err" & NM=$!; pids+=($NM)
wait_for "$dir/v2.app.out" '"event":"pair_verify"' || fail "--verify (2): the app did not ask"
wait_for "$dir/v2.nm.out" 'does the other screen show the same fingerprint? \[y/N\]' || fail "--verify (2): no question in words"
echo no >&8; echo n >&7
wait_exit $NM; rc=$?; wait_exit $APP; rc2=$?
[ $rc = 1 ] && [ $rc2 = 1 ] && ok || fail "--verify no: exit $rc $rc2, not 1 1"
grep -q "pairing refused: the fingerprint was not confirmed; nothing was stored.*(PL_ERR_FINGERPRINT_REJECTED)" "$dir/v2.nm.err" && ok ||
  { fail "--verify no: the failure line"; cat "$dir/v2.nm.err"; }
grep -q '"event":"error","code":"PL_ERR_FINGERPRINT_REJECTED"' "$dir/v2.app.out" && ok || fail "--verify no: app --json error"
[ "$(count_peers "$dir/v2-nm.db")" = 0 ] && [ "$(count_peers "$dir/v2-app.db")" = 0 ] && ok || fail "--verify no: something was stored"
exec 7>&- 8>&-
# the end of input is no answer: refused
IN=/dev/null start_app v3 --verify
"$CLI" node-manager pair "$CODE" --relay "$R" --store "$dir/v3-nm.db" --json --verify </dev/null >"$dir/v3.nm.out" 2>&1; rc=$?
wait_exit $APP; rc2=$?
[ $rc = 1 ] && [ $rc2 = 1 ] && ! grep -q '"event":"paired"' "$dir/v3.app.out" "$dir/v3.nm.out" && [ "$(count_peers "$dir/v3-app.db")" = 0 ] && ok ||
  { fail "--verify without an answer: refused"; cat "$dir/v3.app.out" "$dir/v3.nm.out"; }

# ---- 4. daemons notice pairings and removals made beside them ----
"$CLI" app run --relay "$R" --store "$dir/d-app.db" --json >"$dir/d.apprun.out" 2>&1 & AR=$!; pids+=($AR)
"$CLI" node-manager run --relay "$R" --store "$dir/d-nm.db" --json >"$dir/d.nmrun.out" 2>&1 & NR=$!; pids+=($NR)
wait_for "$dir/d.apprun.out" '"event":"running"' && wait_for "$dir/d.nmrun.out" '"event":"running"' || fail "daemons did not start"
start_app d --no-session --name GUI --store "$dir/d-app.db"
"$CLI" node-manager pair "$CODE" --relay "$R" --store "$dir/d-nm.db" --json --no-session --name NM >"$dir/d.nm.out" 2>&1; rc=$?
wait_exit $APP
[ $rc = 0 ] && ok || fail "pair beside the daemons: exit $rc"
wait_for "$dir/d.nmrun.out" '"event":"peer_added".*"name":"GUI"' && ok || fail "node-manager run did not notice the new app"
wait_for "$dir/d.apprun.out" '"event":"peer_added".*"name":"NM"' && ok || fail "app run did not notice the new node manager"
wait_for "$dir/d.nmrun.out" '"event":"established".*"name":"GUI"' && wait_for "$dir/d.apprun.out" '"event":"established"' && ok ||
  fail "the daemons did not open a session with what they noticed"

# ---- 4. peers remove revokes at once and tells the peer ----
"$CLI" peers remove GUI --store "$dir/d-nm.db" --relay "$R" --json >"$dir/rm.out" 2>&1; rc=$?
[ $rc = 0 ] && grep -q '"event":"removed",.*"name":"GUI","peer_told":true' "$dir/rm.out" && ok || { fail "peers remove: told"; cat "$dir/rm.out"; }
[ "$(count_peers "$dir/d-nm.db")" = 0 ] && ok || fail "peers remove: still stored"
wait_for "$dir/d.apprun.out" '"event":"peer_removed","by_peer":true.*"name":"NM"' && ok || { fail "the app's daemon was not told"; tail -3 "$dir/d.apprun.out"; }
for _ in $(seq 100); do [ "$(count_peers "$dir/d-app.db")" = 0 ] && break; sleep 0.05; done
[ "$(count_peers "$dir/d-app.db")" = 0 ] && ok || fail "the app did not forget the node manager"
wait_for "$dir/d.nmrun.out" '"event":"peer_removed","by_peer":false.*"name":"GUI"' && ok || fail "node-manager run did not notice the removal"
kill -TERM $AR $NR; wait_exit $AR; wait_exit $NR
# a peer that is not running: removed here all the same, not told
"$CLI" peers remove "pairlink node manager" --store "$dir/v1-app.db" --relay "$R" --timeout 2 >"$dir/rm2.out" 2>&1; rc=$?
[ $rc = 0 ] && grep -q "the peer was not told (not reached in time)" "$dir/rm2.out" && [ "$(count_peers "$dir/v1-app.db")" = 0 ] && ok ||
  { fail "peers remove: a peer away"; cat "$dir/rm2.out"; }
"$CLI" peers remove "pairlink app" --store "$dir/v1-nm.db" --offline >"$dir/rm3.out" 2>&1; rc=$?
[ $rc = 0 ] && grep -q "^removed [0-9a-f]\{16\} \"pairlink app\"" "$dir/rm3.out" && [ "$(count_peers "$dir/v1-nm.db")" = 0 ] && ok ||
  { fail "peers remove --offline"; cat "$dir/rm3.out"; }

echo "cli nm_trust: $passes passed, $fails failed"
[ $fails = 0 ]
