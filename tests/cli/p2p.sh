#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `pairlink p2p id | listen | ping`: the exact forms scripts rely on, the
# key file, exit statuses, and a clean stop on SIGTERM / SIGINT. C <-> C on
# 127.0.0.1 only; every wait is bounded.
set -uo pipefail
CLI=${PL_CLI:-build/pairlink}
V=${PL_SHARED_DIR:-../shared}/vectors/waku-message.json
fails=0; passes=0
check() { # name, expected rc, expected substring, command...
  local name=$1 want_rc=$2 want=$3; shift 3
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" = "$want_rc" ] && grep -qF -- "$want" <<<"$out"; then passes=$((passes+1))
  else fails=$((fails+1)); echo "FAIL $name: rc=$rc (want $want_rc), output:"; echo "$out" | head -20; fi
}
ok() { if "$@"; then passes=$((passes+1)); else fails=$((fails+1)); echo "FAIL: $*"; fi; }
gone() { ! kill -0 "$1" 2>/dev/null; }
dir=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$dir"; }
trap cleanup EXIT

# Waits (at most 10 s) for "listening on ..." in a file; prints the address.
listen_addr() {
  for _ in $(seq 200); do
    a=$(sed -n 's/^listening on //p' "$1" | head -1)
    [ -n "$a" ] && { echo "$a"; return 0; }
    sleep 0.05
  done
  return 1
}

# ---- id: created on first use, 0600, stable; --json; secp256k1 import ----
K=$dir/node.key
ID=$("$CLI" p2p id --key-file "$K")
ok [ "$(stat -c %a "$K")" = 600 ]
ok grep -qE '^12D3KooW[1-9A-HJ-NP-Za-km-z]+$' <<<"$ID"
check "id is stable" 0 "$ID" "$CLI" p2p id --key-file "$K"
check "id --json" 0 "{\"event\":\"peer_id\",\"peer_id\":\"$ID\",\"key_type\":\"ed25519\"" "$CLI" p2p id --key-file "$K" --json
check "id --json created false" 0 '"created":false' "$CLI" p2p id --key-file "$K" --json
check "secp256k1 key" 0 '16Uiu2' "$CLI" p2p id --key-file "$dir/secp.key" --key-type secp256k1
# The nwaku-style import: the secret 01..01 has a known peer id (computed
# with Python's cryptography package, see docs/p2p.md).
check "import nodekey" 0 '"peer_id":"16Uiu2HAmEWQnHq2jLKJypwVnVoQeFCULuyop6atvq2eWjYSUjzNi"' \
  "$CLI" p2p id --key-file "$dir/nwaku.key" --json --import-nodekey "$(printf '01%.0s' {1..32})"
check "import refuses to overwrite" 1 "PL_ERR_EXISTS" "$CLI" p2p id --key-file "$dir/nwaku.key" --import-nodekey "$(printf '01%.0s' {1..32})"
chmod 644 "$K"
check "unsafe key file" 1 "PL_ERR_KEY_FILE" "$CLI" p2p id --key-file "$K"
check "unsafe key file: which file and the chmod that fixes it" 1 "key file $K holds secret keys but others may read it (mode 0644): run 'chmod 600 $K'" "$CLI" p2p id --key-file "$K"
check "unsafe key file, --json" 1 '{"event":"error","code":"PL_ERR_KEY_FILE","message":"key file ' "$CLI" p2p id --key-file "$K" --json
chmod 600 "$K"
check "default key file under XDG_DATA_HOME" 0 "12D3KooW" env XDG_DATA_HOME="$dir/xdg" "$CLI" p2p id
ok [ -f "$dir/xdg/pairlink/p2p.key" ]
check "usage error" 2 "try 'pairlink p2p id --help'" "$CLI" p2p id --bogus
check "help" 0 "usage: pairlink p2p listen" "$CLI" p2p listen --help

# ---- listen + ping ----
"$CLI" p2p listen --key-file "$K" >"$dir/l.out" 2>"$dir/l.err" & L=$!; pids+=($L)
ADDR=$(listen_addr "$dir/l.out")
ok grep -qE "^/ip4/127\.0\.0\.1/tcp/[0-9]+/p2p/$ID\$" <<<"$ADDR"
check "ping 2" 0 "2 pings transmitted, 2 received" "$CLI" p2p ping "$ADDR" --count 2 --interval 50
check "ping prints rounds" 0 "32 bytes from $ID: seq=1 time=" "$CLI" p2p ping "$ADDR" --count 1
check "ping shows agent" 0 "agent: pairlink/" "$CLI" p2p ping "$ADDR" --count 1
check "ping shows protocols" 0 "protocols: /ipfs/id/1.0.0 /ipfs/ping/1.0.0" "$CLI" p2p ping "$ADDR" --count 1
check "ping --json over mplex" 0 '"muxer":"/mplex/6.7.0"' "$CLI" p2p ping "$ADDR" --count 1 --json --muxer mplex
check "ping --json counts" 0 '"sent":3,"received":3' "$CLI" p2p ping "$ADDR" --count 3 --interval 0 --json
"$CLI" p2p ping "$ADDR" --count 2 --interval 0 --json >"$dir/pj.out" 2>&1
ok python3 -c 'import json,sys
ev=[json.loads(l)["event"] for l in open(sys.argv[1])]
assert ev==["connected","identified","pong","pong","summary"], ev' "$dir/pj.out"
# The wrong peer id: Noise proves another one.
OTHER=$("$CLI" p2p id --key-file "$dir/other.key")
check "ping wrong peer id" 1 "PL_ERR_P2P_PEER_MISMATCH" "$CLI" p2p ping "${ADDR%/p2p/*}/p2p/$OTHER" --count 1
check "ping ws refused" 1 "PL_ERR_P2P_TRANSPORT" "$CLI" p2p ping "${ADDR%/p2p/*}/ws" --count 1
DEAD=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
check "ping nobody" 1 "PL_ERR_SYS" "$CLI" p2p ping /ip4/127.0.0.1/tcp/$DEAD --count 1
check "ping nobody: one line that says why" 1 "refused" "$CLI" p2p ping /ip4/127.0.0.1/tcp/$DEAD --count 1
check "ping garbage address" 1 "PL_ERR_P2P_MULTIADDR" "$CLI" p2p ping /ip4/1.2.3 --count 1
ok grep -q "connected .* inbound /yamux/1.0.0" "$dir/l.err"
ok grep -q "disconnected .* PL_ERR_P2P_PEER_MISMATCH\|disconnected .*PL_ERR_CLOSED" "$dir/l.err"

# SIGTERM: a clean stop, status 0, within a second or so.
kill -TERM $L
for _ in $(seq 100); do kill -0 $L 2>/dev/null || break; sleep 0.05; done
ok gone $L
wait $L; ok [ $? = 0 ]

# SIGINT with a peer connected (a long ping in flight): 130, one line.
"$CLI" p2p listen --key-file "$K" --listen /ip4/127.0.0.1/tcp/0 >"$dir/l2.out" 2>"$dir/l2.err" & L2=$!; pids+=($L2)
ADDR2=$(listen_addr "$dir/l2.out")
"$CLI" p2p ping "$ADDR2" --count 100 --interval 100 >"$dir/p.out" 2>&1 & P=$!; pids+=($P)
for _ in $(seq 100); do grep -q "seq=1 " "$dir/p.out" && break; sleep 0.05; done
kill -INT $L2
wait $L2; ok [ $? = 130 ]
ok grep -q "pairlink p2p listen: interrupted (SIGINT)" "$dir/l2.err"
wait $P; ok [ $? = 1 ]   # the pinger lost its peer before its 100 pings
ok grep -q "PL_ERR_CLOSED" "$dir/p.out"

# --json listen; a ping stopped by SIGTERM while waiting: 143
"$CLI" p2p listen --key-file "$K" --json >"$dir/l3.out" 2>"$dir/l3.err" & L3=$!; pids+=($L3)
for _ in $(seq 200); do grep -q '"event":"listening"' "$dir/l3.out" && break; sleep 0.05; done
ADDR3=$(python3 -c 'import json,sys;print(json.loads(open(sys.argv[1]).readline())["address"])' "$dir/l3.out")
ok grep -qE "^/ip4/127\.0\.0\.1/tcp/[0-9]+/p2p/$ID\$" <<<"$ADDR3"
"$CLI" p2p ping "$ADDR3" --count 100 --interval 100 --json >"$dir/p3.out" 2>&1 & P3=$!; pids+=($P3)
for _ in $(seq 100); do grep -q '"event":"pong"' "$dir/p3.out" && break; sleep 0.05; done
kill -TERM $P3
wait $P3; ok [ $? = 143 ]
ok grep -q '"event":"stopped","signal":"SIGTERM"' "$dir/p3.out"
kill -TERM $L3
wait $L3; ok [ $? = 0 ]

echo "cli p2p: $passes passed, $fails failed"
[ $fails = 0 ]
