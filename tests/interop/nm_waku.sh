#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The node-manager flow over Waku between two C processes (`pairlink app` and
# `pairlink node-manager` with --waku) whose only path is a JS relay node
# (js-waku 0.0.27, interop/js-waku/waku-node.mjs; it reports every pairlink
# message it relays, --relayed). Relay stores nothing, so each part also
# shows that the protocol's own repetitions cover what is lost:
#   1. pairing while the app's node joins late: the node manager's first
#      HELLOs reach the hop while the app is not there (they are lost), a
#      later repetition pairs them; the same fingerprint, a session; every
#      message relayed carries the Waku mapping of the spec (HELLOs version 1,
#      session messages version 2, all ephemeral but requests/responses)
#   2. `run` daemons and `send` both ways (a request and its response)
#   3. both daemons restart, the node manager first: its handshake goes out
#      while the app is away (lost); the app knocks when it comes back and
#      the sessions are re-established
#   4. the hop itself restarts (a js-libp2p 3 gossipsub node this time) while
#      the daemons run: they rejoin, and `send` works again
#   5. `peers remove --waku` on the node manager's store: the app's daemon is
#      told and forgets it, the node manager's daemon notices the removal
# 127.0.0.1 only; every wait is bounded. See tests/interop/waku-common.bash.
TEST_NAME=nm_waku
. "$(dirname "$0")/waku-common.bash"

PFX=/pairlink/1/
# the libp2p identities of both sides, made before they run (their peer ids
# name them in the hop's output)
APPID=$("$CLI" p2p id --key-file "$work/app.db.p2p.key" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["peer_id"])')
NMID=$("$CLI" p2p id --key-file "$work/nm.db.p2p.key" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["peer_id"])')
[ -n "$APPID" ] && [ -n "$NMID" ] || die "no peer ids"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
HOP=/ip4/127.0.0.1/tcp/$PORT # no /p2p/: the hop may come back with another identity

# cli NAME ARGS...: a pairlink process in the background, output in $work/NAME.out.
cli() {
    local name=$1; shift
    "$CLI" "$@" >"$work/$name.out" 2>"$work/$name.err" &
    PID[$name]=$!
}
# wait_line NAME REGEX SECONDS
wait_line() {
    for _ in $(seq $(($3 * 20))); do
        grep -Eq -- "$2" "$work/$1.out" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}
need() { # WHAT NAME REGEX SECONDS
    if wait_line "$2" "$3" "$4"; then ok; else
        bad "$1: no '$3' from $2 within $4 s"; tail -5 "$work/$2.out" "$work/$2.err" >&2
    fi
}
W=(--waku --peer "$HOP")
# pcheck WHAT NAME CODE [ARG]: python CODE over NAME's JSON lines (`lines`,
# `ev(k)`, `arg` as in waku-common.bash) sets `result`.
pcheck() {
    if python3 -c "$PYPRE
$3
sys.exit(0 if result else 1)" "$work/$2.out" "" "${4:-}" 2>"$work/pcheck.err"; then
        ok; sed "s/^/$TEST_NAME: /" "$work/pcheck.err"
    else bad "$1"; cat "$work/pcheck.err" >&2; tail -20 "$work/$2.out" | cut -c1-200 >&2; fi
}

# ---- 1. pairing; the app's node joins late -------------------------------------
echo "$TEST_NAME: 1. pairing through js-waku; the app joins late"
# Nothing listens on PORT yet: the app's node dials at 0, 1, 3 and 7 s and
# fails; its next dial is at about 15 s. The hop and the node manager start
# at 7.5 s, so the node manager's HELLOs of the next seconds reach nobody.
cli app1 app pair --store "$work/app.db" --name "Nimbus GUI" --json "${W[@]}"
wait_line app1 '"event":"pair_code"' 10 || die "app pair printed no code"
CODE=$(sed -n 's/.*"event":"pair_code","pairing_code":"\([^"]*\)".*/\1/p' "$work/app1.out" | head -n1)
sleep 7
start hop jswaku --port "$PORT" --relayed $PFX --lifetime 200 || exit 1
cli nm1 node-manager pair "$CODE" --store "$work/nm.db" --name "Status node manager" --json "${W[@]}"
wait_exit nm1 60
[ "$xrc" = 0 ] && ok || { bad "node-manager pair exited $xrc"; tail -5 "$work/nm1.out" "$work/nm1.err" >&2; }
wait_exit app1 60
[ "$xrc" = 0 ] && ok || { bad "app pair exited $xrc"; tail -5 "$work/app1.out" "$work/app1.err" >&2; }
FP1=$(sed -n 's/.*"event":"paired".*"fingerprint":"\([^"]*\)".*/\1/p' "$work/app1.out")
FP2=$(sed -n 's/.*"event":"paired".*"fingerprint":"\([^"]*\)".*/\1/p' "$work/nm1.out")
[ -n "$FP1" ] && [ "$FP1" = "$FP2" ] && ok || bad "fingerprints '$FP1' and '$FP2'"
grep -q '"event":"established"' "$work/app1.out" && grep -q '"event":"established"' "$work/nm1.out" &&
    ok || bad "no session after pairing"
# Before the app's node was connected to the hop, the hop relayed HELLOs of
# the node manager's that reached nobody: lost, and repeated.
pcheck "a HELLO_APP was relayed before the app joined (lost), and pairing completed" hop '
nm, app = arg.split()
first_app = next((i for i, l in enumerate(lines) if l.get("event") == "connection" and l["peer"] == app), None)
hellos = [i for i, l in enumerate(lines) if l.get("event") == "relayed" and "/pair-" in l["content_topic"] and l["from"] == nm]
lost = len([i for i in hellos if first_app is not None and i < first_app])
print(f"{lost} HELLO_APP relayed before the app joined, {len(hellos) - lost} after", file=sys.stderr)
result = first_app is not None and lost >= 1 and len(hellos) > lost' "$NMID $APPID"
pcheck "the Waku mapping of every message relayed (version, ephemeral)" hop '
rel = ev("relayed")
kind = lambda t: "pair" if "/pair-" in t else "rv" if "/rv-" in t else "session" if "/wakunoise/1/sessions/" in t else "?"
result = len(rel) > 0 and all(kind(m["content_topic"]) != "?" for m in rel) and \
    all(m["version"] == 1 and m["ephemeral"] for m in rel if kind(m["content_topic"]) == "pair") and \
    all(m["version"] == 2 and m["ephemeral"] for m in rel if kind(m["content_topic"]) == "rv") and \
    all(m["version"] == 2 for m in rel if kind(m["content_topic"]) == "session") and \
    all(m["timestamp"] != "0" and m["meta_hex"] is None and m["pubsub_topic"] == "/waku/2/rs/16/64" for m in rel)'
check "the two C nodes are connected to the hop only" hop \
    'set(l["peer"] for l in ev("connection")) == set(arg.split())' "$NMID $APPID"
KEYMODE=$(stat -c %a "$work/app.db.p2p.key")
[ "$KEYMODE" = 600 ] && ok || bad "the libp2p key file has mode $KEYMODE"

# ---- 2. daemons and send -------------------------------------------------------------
echo "$TEST_NAME: 2. run daemons, send both ways"
cli apprun app run --store "$work/app.db" --json "${W[@]}"
cli nmrun node-manager run --store "$work/nm.db" --json "${W[@]}"
need "app daemon" apprun '"event":"established"' 30
need "node-manager daemon" nmrun '"event":"established"' 30
before=$(grep -c '"event":"relayed"' "$work/hop.out")
out=$(timeout 40 "$CLI" send "Nimbus GUI" "hello app" --store "$work/nm.db" --json "${W[@]}" 2>"$work/send1.err")
grep -q '"event":"response".*"body":"ok"' <<<"$out" && ok || { bad "send to the app: $out"; tail -5 "$work/send1.err" >&2; }
need "the app daemon got the message" apprun '"event":"request".*"body":"hello app"' 10
out=$(timeout 40 "$CLI" send "Status node manager" "hello nm" --store "$work/app.db" --json "${W[@]}" 2>"$work/send2.err")
grep -q '"event":"response".*"body":"ok"' <<<"$out" && ok || { bad "send to the node manager: $out"; tail -5 "$work/send2.err" >&2; }
need "the node-manager daemon got the message" nmrun '"event":"request".*"body":"hello nm"' 10
pcheck "requests and responses are not ephemeral" hop '
rel = ev("relayed")[int(arg):]
result = len([m for m in rel if "/wakunoise/1/sessions/" in m["content_topic"] and not m["ephemeral"]]) >= 4' "$before"

# ---- 3. both restart, the node manager first ---------------------------------------------
echo "$TEST_NAME: 3. both daemons restart; the node manager's handshake goes out while the app is away"
kill -9 "${PID[apprun]}" "${PID[nmrun]}"
wait "${PID[apprun]}" "${PID[nmrun]}" 2>/dev/null
before=$(wc -l <"$work/hop.out")
cli nmrun2 node-manager run --store "$work/nm.db" --json "${W[@]}"
need "node manager restarted" nmrun2 '"event":"connecting"' 20
sleep 6 # its message 1 is relayed to nobody; the attempt is older than T_hs / 2 when the app knocks
pcheck "the node manager's handshake was relayed while the app was away" hop '
start, nm = arg.split()
result = any(l.get("event") == "relayed" and "/rv-" in l["content_topic"] and l["from"] == nm for l in lines[int(start):])' "$before $NMID"
cli apprun2 app run --store "$work/app.db" --json "${W[@]}"
need "app restarted: session re-established" apprun2 '"event":"established"' 30
need "node manager: session re-established" nmrun2 '"event":"established"' 30
grep -q '"event":"knock"' "$work/nmrun2.out" && ok || bad "the node manager saw no knock from the returning app"
out=$(timeout 40 "$CLI" send "Nimbus GUI" "after restart" --store "$work/nm.db" --json "${W[@]}" 2>"$work/send3.err")
grep -q '"event":"response".*"body":"ok"' <<<"$out" && ok || { bad "send after the restart: $out"; tail -5 "$work/send3.err" >&2; }

# ---- 4. the hop restarts ----------------------------------------------------------------
echo "$TEST_NAME: 4. the hop restarts (as a js-libp2p 3 gossipsub node) under the daemons"
kill -9 "${PID[hop]}"
wait "${PID[hop]}" 2>/dev/null
need "the app daemon lost its only peer" apprun2 '"event":"waku_disconnected"' 15
start hop2 gossip --port "$PORT" --relayed $PFX --lifetime 120 || exit 1
for n in apprun2 nmrun2; do
    for _ in $(seq 400); do
        [ "$(grep -c '"event":"waku_connected"' "$work/$n.out")" -ge 2 ] && break
        sleep 0.05
    done
    [ "$(grep -c '"event":"waku_connected"' "$work/$n.out")" -ge 2 ] && ok || bad "$n did not rejoin"
done
out=$(timeout 40 "$CLI" send "Status node manager" "over the new hop" --store "$work/app.db" --json "${W[@]}" 2>"$work/send4.err")
grep -q '"event":"response".*"body":"ok"' <<<"$out" && ok || { bad "send over the new hop: $out"; tail -5 "$work/send4.err" >&2; }
need "the node-manager daemon got it" nmrun2 '"event":"request".*"body":"over the new hop"' 10
check "the new hop relayed the session" hop2 'any("/wakunoise/1/sessions/" in m["content_topic"] for m in ev("relayed"))'

# ---- 5. revocation over Waku --------------------------------------------------------------
echo "$TEST_NAME: 5. peers remove --waku revokes and tells the app, whose daemon forgets us"
out=$(timeout 40 "$CLI" peers remove "Nimbus GUI" --store "$work/nm.db" --json "${W[@]}" 2>"$work/rm.err")
grep -q '"event":"removed",.*"name":"Nimbus GUI","peer_told":true' <<<"$out" && ok ||
    { bad "peers remove --waku: $out"; tail -5 "$work/rm.err" >&2; }
need "the app daemon was told" apprun2 '"event":"peer_removed","by_peer":true' 15
need "the node-manager daemon noticed the removal" nmrun2 '"event":"peer_removed","by_peer":false' 15
left=$("$CLI" peers list --store "$work/app.db" --json | grep -c '"event":"peer"')
[ "$left" = 0 ] && ok || bad "the app still stores $left counterparties"

for n in apprun2 nmrun2; do
    kill -TERM "${PID[$n]}" 2>/dev/null
    wait_exit "$n" 15
    [ "$xrc" = 0 ] && ok || bad "$n exited $xrc after SIGTERM"
done
stop hop2
echo "$TEST_NAME: $passes passed, $fails failed"
[ $fails = 0 ]
