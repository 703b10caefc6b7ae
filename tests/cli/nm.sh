#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The node-manager commands (`app`, `node-manager`, `peers`, `send`) as
# every command (issue 13, docs/cli.md): the default store in the data
# directory, the store lock, errors a person can act on (store paths, relay
# URLs and connection failures), signals and exit statuses, --json as one
# object per line with the shared vocabulary, waits that say what they wait
# for, protocol drops as sentences, read-only commands that create nothing.
# Against `pairlink relay` on 127.0.0.1; every wait is bounded.
set -uo pipefail
WAIT_S=20 JSON_EVENT_FIRST=1
. "$(dirname "$0")/lib/harness.bash"

export PAIRLINK_STORE= PAIRLINK_RELAY= XDG_DATA_HOME="$dir/xdg"
"$CLI" relay --listen 127.0.0.1:0 >"$dir/relay.out" 2>"$dir/relay.err" & pids+=($!)
wait_for "$dir/relay.out" "listening on" || { echo "relay did not start"; exit 1; }
R=$(sed -n 's/^listening on //p' "$dir/relay.out")
CLOSED=ws://127.0.0.1:$(free_port)
D="$XDG_DATA_HOME/pairlink"

# ---- read-only commands create nothing ----
check "peers: no default store yet" 0 "no counterparties" "$CLI" peers
[ ! -e "$D" ] && ok || fail "peers created the data directory"
check "peers: a --store that does not exist" 1 "no store at $dir/missing.db" "$CLI" peers --store "$dir/missing.db"
check "peers remove: a --store that does not exist" 1 "no store at $dir/missing.db" "$CLI" peers remove abcd --store "$dir/missing.db"
check "send: a --store that does not exist" 1 "no store at $dir/missing.db" "$CLI" send abcd hi --store "$dir/missing.db"
check "send: PAIRLINK_STORE that does not exist" 1 "no store at $dir/env.db" env PAIRLINK_STORE="$dir/env.db" "$CLI" send abcd hi
[ ! -e "$dir/missing.db" ] && [ ! -e "$dir/env.db" ] && ok || fail "a read-only command created a store"
"$CLI" peers --store "$dir/missing.db" --json >"$dir/e.out" 2>"$dir/e.err"; rc=$?
[ $rc = 1 ] && all_json "$dir/e.out" && grep -q '^{"event":"error","code":"PL_ERR_NOT_FOUND","message":"no store at ' "$dir/e.out" &&
  [ ! -s "$dir/e.err" ] && ok || { fail "peers --json: the error as one object"; cat "$dir/e.out" "$dir/e.err"; }
check "send: no default store yet" 1 "no store yet: pair first" "$CLI" send abcd hi

# ---- pairing on the default stores (XDG data dir), --json vocabulary ----
PAIRLINK_TEST_PROGRESS_MS=500 "$CLI" app pair --relay "$R" --json --name "GUI" >"$dir/app.out" 2>"$dir/app.err" & A=$!; pids+=($A)
wait_for "$dir/app.out" '"event":"waiting"' || fail "app pair: no waiting line"
CODE=$(jget "$dir/app.out" pair_code pairing_code)
[ -n "$CODE" ] && ok || fail "app pair: no pair_code event"
grep -q "still waiting for a node manager to type the code ([0-9]:[0-9][0-9] left); it must use the same relay $R" "$dir/app.out" && ok ||
  { fail "app pair: the waiting line says what it waits for"; cat "$dir/app.out"; }
[ -f "$D/app.db" ] && [ "$(stat -c %a "$D")" = 700 ] && [ "$(stat -c %a "$D/app.db.key")" = 600 ] && ok ||
  fail "app pair: no $D/app.db (directory 0700, key 0600)"
# peers and send read a store beside a serving command (no lock)
check "peers beside app pair" 0 "no counterparties" "$CLI" peers --store "$D/app.db"
"$CLI" node-manager pair "$CODE" --relay "$R" --json --name "NM" >"$dir/nm.out" 2>"$dir/nm.err"; rc=$?
[ $rc = 0 ] && ok || { fail "node-manager pair: exit $rc"; cat "$dir/nm.out" "$dir/nm.err"; }
wait_exit $A; rc=$?
[ $rc = 0 ] && ok || { fail "app pair: exit $rc"; cat "$dir/app.out" "$dir/app.err"; }
all_json "$dir/app.out" && all_json "$dir/nm.out" && ok || fail "pair --json: a line that is not an event object"
[ ! -s "$dir/nm.err" ] && [ ! -s "$dir/app.err" ] && ok || { fail "pair --json wrote to stderr"; cat "$dir/nm.err" "$dir/app.err"; }
python3 - "$dir/app.out" "$dir/nm.out" <<'PY' && ok || fail "pair --json: the vocabulary of docs/cli.md"
import json, sys
for f in sys.argv[1:]:
    ev = [json.loads(l) for l in open(f)]
    names = [e["event"] for e in ev]
    for want in ("relay_connected", "pair_stored", "paired", "established"):
        assert want in names, (f, want, names)
    for e in ev:
        if "peer_id" in e:
            assert len(e["peer_id"]) == 16 and len(e["peer_key_hex"]) == 64, e
            assert e["peer_key_hex"].startswith(e["peer_id"]), e
        assert "error" not in e and "peer" not in e, e
        if e["event"] == "relay_connected":
            assert e["relay"].startswith("ws://127.0.0.1:"), e
    fp = [e["fingerprint"] for e in ev if e["event"] == "paired"]
    assert len(fp) == 1 and len(fp[0]) == 9, fp
PY
[ -f "$D/node-manager.db" ] && ok || fail "node-manager pair: no $D/node-manager.db"
check "peers: both default stores exist" 2 "say which with --store" "$CLI" peers
"$CLI" peers --store "$D/app.db" --json >"$dir/p.out"; rc=$?
[ $rc = 0 ] && all_json "$dir/p.out" && grep -q '"event":"peer","peer_id":"[0-9a-f]\{16\}","peer_key_hex":"[0-9a-f]\{64\}","role":"node-manager","name":"NM"' "$dir/p.out" &&
  grep -q '"first_seen_ms":[0-9]\{13\},' "$dir/p.out" && ok || { fail "peers --json: one peer object"; cat "$dir/p.out"; }

# ---- send: the shared vocabulary, a clear error for an unknown peer ----
"$CLI" node-manager run --relay "$R" --json >"$dir/nmrun.out" 2>&1 & N=$!; pids+=($N)
wait_for "$dir/nmrun.out" '"event":"running"' || fail "node-manager run: no running event"
"$CLI" send NM "hello" --store "$D/app.db" --relay "$R" --json --timeout 20 >"$dir/s.out" 2>"$dir/s.err"; rc=$?
[ $rc = 0 ] && all_json "$dir/s.out" && grep -q '"event":"response","peer_id":"[0-9a-f]\{16\}",.*"id":[0-9]*,"body":"ok"' "$dir/s.out" && ok ||
  { fail "send --json: response with id and body"; cat "$dir/s.out" "$dir/s.err"; }
wait_for "$dir/nmrun.out" '"event":"request".*"body":"hello"' && ok || fail "node-manager run: no request event"
check "send: an unknown peer" 1 "no counterparty 'ffff' in store $D/app.db" "$CLI" send ffff hi --store "$D/app.db" --relay "$R"
# the lock: one daemon per store
check "lock: a second node-manager run" 1 "is in use by process $N (pairlink node-manager run" "$CLI" node-manager run --relay "$R"
check "lock: --json" 1 '"code":"PL_ERR_STORE_LOCKED"' "$CLI" node-manager run --relay "$R" --json
kill -TERM $N; wait_exit $N; rc=$?
[ $rc = 0 ] && grep -q '"event":"stopped","signal":"SIGTERM"' "$dir/nmrun.out" && ok || fail "node-manager run: SIGTERM exit $rc, not 0 with a stopped event"

# ---- waits say what they wait for; protocol drops become sentences ----
# two node managers typing the same code: each sees the other's HELLO
PAIRLINK_TEST_PROGRESS_MS=500 PAIRLINK_TEST_CODE_TTL_MS=4000 "$CLI" node-manager pair 00000-00000-00000 --relay "$R" --store "$dir/w1.db" >"$dir/w1.out" 2>"$dir/w1.err" & W1=$!; pids+=($W1)
PAIRLINK_TEST_PROGRESS_MS=500 PAIRLINK_TEST_CODE_TTL_MS=4000 "$CLI" node-manager pair 00000-00000-00000 --relay "$R" --store "$dir/w2.db" --json >"$dir/w2.out" 2>"$dir/w2.err" & W2=$!; pids+=($W2)
wait_exit $W1; rc1=$?; wait_exit $W2; rc2=$?
[ $rc1 = 1 ] && [ $rc2 = 1 ] && ok || fail "two node managers: exit $rc1 $rc2, not 1 1"
grep -q "no answer from an app showing 00000-00000-00000 yet (0:0[0-9] left): check that the app still shows this code and uses the same relay $R" "$dir/w1.out" && ok ||
  { fail "node-manager pair: the waiting line"; cat "$dir/w1.out"; }
grep -q "another node manager is using this code" "$dir/w1.out" && ! grep -q "HELLO dropped\|wrong_role" "$dir/w1.out" && ok ||
  { fail "node-manager pair: wrong_role as a sentence"; cat "$dir/w1.out"; }
grep -q '"event":"pair_dropped","reason":"wrong_role","code":"PL_ERR_HELLO_ROLE","message":"another node manager' "$dir/w2.out" && ok ||
  { fail "node-manager pair --json: pair_dropped keeps the reason and code"; cat "$dir/w2.out"; }
grep -q "pairlink node-manager pair: pairing failed: no app answered with code 00000-00000-00000 in time" "$dir/w1.err" &&
  [ "$(grep -c . "$dir/w1.err")" = 1 ] && ok || { fail "node-manager pair: the time-out, once"; cat "$dir/w1.err"; }
grep -q '"event":"error","code":"PL_ERR_TIMEOUT"' "$dir/w2.out" && [ "$(grep -c '"event":"error"' "$dir/w2.out")" = 1 ] && ok ||
  { fail "node-manager pair --json: one error object"; cat "$dir/w2.out"; }
# a relay that is not there: the waiting line names it and why
PAIRLINK_TEST_PROGRESS_MS=500 "$CLI" node-manager pair 00000-00000-00000 --relay "$CLOSED" --store "$dir/c.db" >"$dir/c.out" 2>"$dir/c.err" & C=$!; pids+=($C)
wait_for "$dir/c.out" "still not connected" || fail "node-manager pair: no progress line without a relay"
grep -q "still not connected to the relay $CLOSED (cannot connect to 127.0.0.1 port ${CLOSED##*:}" "$dir/c.out" && ok ||
  { fail "node-manager pair: the relay and why"; cat "$dir/c.out"; }
# ---- Ctrl-C while pairing: one line, exit 130 ----
kill -INT $C; wait_exit $C; rc=$?
[ $rc = 130 ] && ok || fail "node-manager pair: SIGINT exit $rc, not 130"
[ "$(grep -c . "$dir/c.err")" = 1 ] && grep -q "pairlink node-manager pair: interrupted (SIGINT)" "$dir/c.err" && ok ||
  { fail "node-manager pair: SIGINT should print one line"; cat "$dir/c.err"; }
"$CLI" app pair --relay "$R" --store "$dir/i.db" --json >"$dir/i.out" 2>"$dir/i.err" & I=$!; pids+=($I)
wait_for "$dir/i.out" '"event":"relay_connected"' || fail "app pair (i) did not connect"
kill -TERM $I; wait_exit $I; rc=$?
[ $rc = 143 ] && grep -q '"event":"stopped","signal":"SIGTERM"' "$dir/i.out" && ! grep -q '"event":"error"' "$dir/i.out" && [ ! -s "$dir/i.err" ] && ok ||
  { fail "app pair: SIGTERM while pairing: exit $rc (want 143), one stopped event"; cat "$dir/i.out" "$dir/i.err"; }

# ---- relay and store errors name the URL, the path, the cause ----
check "bad --relay is a relay error" 1 "relay http://x: malformed relay URL" "$CLI" app run --relay http://x --store "$dir/r1.db"
check "bad --relay: send" 1 "relay http://x: malformed relay URL" "$CLI" send NM hi --relay http://x --store "$D/app.db"
check "send: relay not reached" 1 "relay $CLOSED not reached: cannot connect to 127.0.0.1 port ${CLOSED##*:}" \
  "$CLI" send NM hi --relay "$CLOSED" --store "$D/app.db" --timeout 2
mkdir "$dir/adir"
check "store is a directory" 1 "store $dir/adir is a directory" "$CLI" app run --relay "$R" --store "$dir/adir"
check "store's directory is missing" 1 "the directory $dir/nodir does not exist" "$CLI" app run --relay "$R" --store "$dir/nodir/x.db"
cp "$D/app.db" "$dir/open.db"; chmod 644 "$dir/open.db"
check "store readable by others" 1 "run 'chmod 600 $dir/open.db'" "$CLI" peers --store "$dir/open.db"
cp "$D/app.db" "$dir/k.db"; cp "$D/app.db.key" "$dir/k.db.key"; chmod 644 "$dir/k.db.key"
check "identity key readable by others" 1 "key file $dir/k.db.key holds secret keys but others may read it (mode 0644): run 'chmod 600 $dir/k.db.key'" \
  "$CLI" app run --relay "$R" --store "$dir/k.db"
printf 'not a database at all, not at all............................................................' >"$dir/junk.db"; chmod 600 "$dir/junk.db"
check "not a store" 1 "is not a pairlink store" "$CLI" peers --store "$dir/junk.db"
check "PAIRLINK_STORE wins" 0 "no counterparties" env PAIRLINK_STORE="$dir/w1.db" "$CLI" peers

echo "cli nm: $passes passed, $fails failed"
[ $fails = 0 ]
