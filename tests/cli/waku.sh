#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `pairlink waku node | subscribe | publish`: the exact forms scripts rely
# on, their output, exit statuses, the key file, and a clean stop on
# SIGTERM / SIGINT. C <-> C on 127.0.0.1 only; every wait is bounded.
set -uo pipefail
CLI=${PL_CLI:-build/pairlink}
CT=/pairlink/1/cli/proto
fails=0; passes=0
check() { # name, expected rc, expected substring, command...
  local name=$1 want_rc=$2 want=$3; shift 3
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" = "$want_rc" ] && grep -qF -- "$want" <<<"$out"; then passes=$((passes+1))
  else fails=$((fails+1)); echo "FAIL $name: rc=$rc (want $want_rc), output:"; echo "$out" | head -20; fi
}
ok() { if "$@"; then passes=$((passes+1)); else fails=$((fails+1)); echo "FAIL: $*"; fi; }
dir=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$dir"; }
trap cleanup EXIT

listen_addr() { # FILE: waits (10 s) for "listening on ..."; prints the address
  for _ in $(seq 200); do
    a=$(sed -n 's/^listening on //p' "$1" | head -1)
    [ -n "$a" ] && { echo "$a"; return 0; }
    sleep 0.05
  done
  return 1
}
wait_gone() { # PID SECONDS: its status in $xrc ("timeout" if it had to be killed)
  for _ in $(seq $(($2 * 20))); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done
  if kill -0 "$1" 2>/dev/null; then kill -9 "$1"; wait "$1" 2>/dev/null; xrc=timeout; return; fi
  wait "$1"; xrc=$?
}
wait_grep() { # FILE PATTERN SECONDS
  for _ in $(seq $(($3 * 20))); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  return 1
}

# ---- help and usage errors ----
check "waku lists its commands" 0 "subscribe" "$CLI" waku --help
check "node --help" 0 "usage: pairlink waku node [--listen MULTIADDR]... [--peer MULTIADDR]..." "$CLI" waku node --help
check "subscribe --help" 0 "usage: pairlink waku subscribe CONTENT_TOPIC... --peer MULTIADDR [--count N] [--json]" \
  "$CLI" waku subscribe --help
check "publish --help" 0 "usage: pairlink waku publish CONTENT_TOPIC MESSAGE --peer MULTIADDR [--hex]" \
  "$CLI" waku publish --help
check "unknown option" 2 "unknown or incomplete option '--bogus'" "$CLI" waku node --bogus
check "option of another command" 2 "option '--count' is not one of this command's" "$CLI" waku node --count 2
check "bad cluster" 2 "--cluster wants 0..65535" "$CLI" waku node --cluster 70000
check "bad shard" 2 "--shard wants 0..65535" "$CLI" waku node --shard x
check "publish needs two arguments" 2 "CONTENT_TOPIC and MESSAGE are needed" "$CLI" waku publish $CT --peer /ip4/127.0.0.1/tcp/1
check "publish needs --peer" 2 "--peer is needed" "$CLI" waku publish $CT hi
check "subscribe needs a topic" 2 "a CONTENT_TOPIC is needed" "$CLI" waku subscribe --peer /ip4/127.0.0.1/tcp/1
check "bad hex" 2 "MESSAGE is not hex" "$CLI" waku publish $CT abc --hex --peer /ip4/127.0.0.1/tcp/1
check "empty message" 2 "MESSAGE is empty" "$CLI" waku publish $CT "" --peer /ip4/127.0.0.1/tcp/1
check "bad peer address" 1 "PL_ERR_P2P_MULTIADDR" "$CLI" waku node --peer /ip4/1.2.3/tcp/1
check "ws peer" 1 "PL_ERR_P2P_TRANSPORT" "$CLI" waku node --peer /dns4/x.example/tcp/443/wss
check "bad listen address" 1 "PL_ERR_P2P_MULTIADDR" "$CLI" waku node --listen /ip4/127.0.0.1/tcp/port
check "bad content topic" 1 "PL_ERR_WAKU_TOPIC" "$CLI" waku subscribe not-a-topic --peer /ip4/127.0.0.1/tcp/1

# ---- a node with a key file: stable peer id, clean stops ----
K=$dir/node.key
"$CLI" waku node --key-file "$K" >"$dir/n1.out" 2>"$dir/n1.err" & N=$!; pids+=($N)
A1=$(listen_addr "$dir/n1.out")
ok grep -qE '^/ip4/127\.0\.0\.1/tcp/[0-9]+/p2p/12D3KooW[1-9A-HJ-NP-Za-km-z]+$' <<<"$A1"
ok [ "$(stat -c %a "$K")" = 600 ]
kill -TERM $N; wait_gone $N 10
ok [ "$xrc" = 0 ]
"$CLI" waku node --key-file "$K" --listen /ip4/127.0.0.1/tcp/0 >"$dir/n2.out" 2>"$dir/n2.err" & N=$!; pids+=($N)
A2=$(listen_addr "$dir/n2.out")
ok [ "${A1##*/p2p/}" = "${A2##*/p2p/}" ]

# ---- subscribe and publish through it ----
"$CLI" waku subscribe $CT --peer "$A2" --count 3 --json --timeout 20 >"$dir/s.out" 2>"$dir/s.err" & S=$!; pids+=($S)
"$CLI" waku subscribe $CT --peer "$A2" --count 3 --timeout 20 >"$dir/t.out" 2>"$dir/t.err" & T=$!; pids+=($T)
# the node logs both subscribers as relay peers, then in its mesh
wait_grep "$dir/n2.err" "mesh /waku/2/rs/16/64 .* (2 peers)" 15 || { fails=$((fails+1)); echo "FAIL: no mesh of 2 peers"; cat "$dir/n2.err"; }
check "publish text" 0 "to 1 peers" "$CLI" waku publish $CT "hello waku" --peer "$A2" --timeout 10
check "publish hex" 0 "published " "$CLI" waku publish $CT 00ff41 --hex --peer "$A2"
check "publish ephemeral with meta" 0 "published " "$CLI" waku publish $CT "third" --peer "$A2" --ephemeral --meta-hex 0102
H=$("$CLI" waku publish $CT "not counted" --peer "$A2" --shard 64 2>/dev/null | awk '{print $2}')
wait_gone $S 20; ok [ "$xrc" = 0 ]
wait_gone $T 20; ok [ "$xrc" = 0 ]
ok [ "$(wc -l <"$dir/s.out")" = 3 ]
if python3 - "$dir/s.out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {r["payload_hex"]: r for r in rows}
assert set(by) == {"68656c6c6f2077616b75", "00ff41", "7468697264"}, by
for r in rows:
    assert r["content_topic"] == "/pairlink/1/cli/proto" and r["pubsub_topic"] == "/waku/2/rs/16/64", r
    assert r["event"] == "message" and r["timestamp_ms"] > 1600000000 * 1000 and len(r["hash"]) == 64, r
assert by["68656c6c6f2077616b75"]["payload"] == "hello waku"
assert by["00ff41"]["payload"] is None
assert by["7468697264"]["ephemeral"] is True and by["7468697264"]["meta_hex"] == "0102"
PY
then passes=$((passes+1)); else fails=$((fails+1)); echo "FAIL: subscribe --json output"; cat "$dir/s.out"; fi
# plain lines: text as it is, other bytes as 0x + hex
ok grep -qx "hello waku" "$dir/t.out"
ok grep -qx "0x00ff41" "$dir/t.out"
ok grep -qx "third" "$dir/t.out"
ok grep -qE '^[0-9a-f]{64}$' <<<"$H"

# ---- nobody subscribed to the pubsub topic: exit 1 after the time-out ----
check "no subscriber on shard 65" 1 "no peer subscribed to /waku/2/rs/16/65 within 2 s" \
  "$CLI" waku publish $CT "lost" --peer "$A2" --shard 65 --timeout 2
# another cluster: the node refuses us, so nobody is there either
check "another cluster" 1 "no peer subscribed" "$CLI" waku publish $CT "lost" --peer "$A2" --cluster 1 --timeout 2
wait_grep "$dir/n2.err" "peer refused .*PL_ERR_WAKU_CLUSTER" 5 && passes=$((passes+1)) ||
  { fails=$((fails+1)); echo "FAIL: the node did not log the refused cluster"; tail "$dir/n2.err"; }
# subscribe --timeout without enough messages
check "subscribe time-out" 1 "0 of 1 messages within 1 s" "$CLI" waku subscribe $CT --peer "$A2" --count 1 --timeout 1
check "subscribe time-out, --json" 1 '{"event":"error","code":"PL_ERR_TIMEOUT","message":"0 of 1 messages within 1 s"}' \
  "$CLI" waku subscribe $CT --peer "$A2" --count 1 --timeout 1 --json
check "publish --json" 1 '{"event":"error","code":"PL_ERR_WAKU_NO_PEERS","message":"no peer subscribed to /waku/2/rs/16/65' \
  "$CLI" waku publish $CT "lost" --peer "$A2" --shard 65 --timeout 1 --json
# a subscriber waiting for its --count: SIGTERM gives 143, one JSON line says so
"$CLI" waku subscribe $CT --peer "$A2" --count 5 --json >"$dir/w.out" 2>"$dir/w.err" & W=$!; pids+=($W)
wait_grep "$dir/w.err" "subscribed to" 10
"$CLI" waku publish $CT "one" --peer "$A2" --json --timeout 10 >"$dir/wp.out" 2>/dev/null
ok grep -qE '^\{"event":"published","hash":"[0-9a-f]{64}","peers":[0-9]+\}$' "$dir/wp.out"
wait_grep "$dir/w.out" '"event":"message"' 10
kill -TERM $W; wait_gone $W 10
ok [ "$xrc" = 143 ]
ok grep -qx '{"event":"stopped","signal":"SIGTERM"}' "$dir/w.out"
# a node with --json
"$CLI" waku node --json >"$dir/n3.out" 2>"$dir/n3.err" & N3=$!; pids+=($N3)
wait_grep "$dir/n3.out" '"event":"listening"' 10
ok grep -qE '^\{"event":"listening","address":"/ip4/127\.0\.0\.1/tcp/[0-9]+/p2p/12D3KooW' "$dir/n3.out"
kill -TERM $N3; wait_gone $N3 10
ok [ "$xrc" = 0 ]

# SIGINT: the user interrupted: 130, one line
kill -INT $N; wait_gone $N 10
ok [ "$xrc" = 130 ]
ok grep -q "pairlink waku node: interrupted (SIGINT)" "$dir/n2.err"
echo "waku cli: $passes passed, $fails failed"
[ $fails = 0 ]
