# SPDX-License-Identifier: Apache-2.0
# Shared by tests/interop/waku_*.sh: start C Waku nodes (the interop driver
# tests/interop/waku_driver.c, or the `pairlink waku` CLI) and the JS ones
# (interop/js-waku/waku-node.mjs, interop/libp2p3/gossip-node.mjs; the
# contract of interop/README.md, which the driver shares), wait for their
# JSON lines, check them. 127.0.0.1 only; every wait is bounded; every
# process started here is stopped at exit.
set -uo pipefail

: "${PL_BUILD_DIR:?PL_BUILD_DIR is not set (run through ctest)}"
: "${PL_SOURCE_DIR:?PL_SOURCE_DIR is not set (run through ctest)}"
CLI="${PL_CLI:-$PL_BUILD_DIR/pairlink}"
DRIVER="$PL_BUILD_DIR/interop/interop_waku_driver"
JSWAKU="$PL_SOURCE_DIR/interop/js-waku/waku-node.mjs"
GOSSIP="$PL_SOURCE_DIR/interop/libp2p3/gossip-node.mjs"
CT=/pairlink/1/interop/proto
TOPIC=/waku/2/rs/16/64
fails=0; passes=0
work=$(mktemp -d); declare -A PID ADDR PEER
cleanup() {
    for p in "${PID[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    [ $fails = 0 ] && rm -rf "$work" || echo "${TEST_NAME:-waku}: logs kept in $work" >&2
}
trap cleanup EXIT

die() { echo "${TEST_NAME:-waku}: $*" >&2; exit 1; }
command -v node >/dev/null || die "node is not installed (see scripts/install-deps.sh)"
for d in js-waku libp2p3; do
    [ -d "$PL_SOURCE_DIR/interop/$d/node_modules" ] ||
        die "interop/$d/node_modules is missing: run scripts/install-deps.sh"
done
[ -x "$DRIVER" ] || die "$DRIVER was not built"

ok() { passes=$((passes + 1)); }
bad() { fails=$((fails + 1)); echo "FAIL [${TEST_NAME:-waku}] $*" >&2; }

# start NAME KIND ARGS...: KIND c (driver), jswaku, gossip. Output in
# $work/NAME.out (JSON lines) and .err; waits (20 s) for "listening" and
# sets ADDR[NAME], PEER[NAME]. Returns 1 when it did not come up.
start() {
    local name=$1 kind=$2; shift 2
    case $kind in
    c) "$DRIVER" "$@" >"$work/$name.out" 2>"$work/$name.err" & ;;
    jswaku) node "$JSWAKU" "$@" >"$work/$name.out" 2>"$work/$name.err" & ;;
    gossip) node "$GOSSIP" "$@" >"$work/$name.out" 2>"$work/$name.err" & ;;
    *) die "start: unknown kind $kind" ;;
    esac
    PID[$name]=$!
    local a
    for _ in $(seq 400); do
        a=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    try: d=json.loads(l)
    except Exception: continue
    if d.get("event")=="listening": print(d["addr"]); break' "$work/$name.out" 2>/dev/null)
        if [ -n "$a" ]; then ADDR[$name]=$a; PEER[$name]=${a##*/p2p/}; return 0; fi
        kill -0 "${PID[$name]}" 2>/dev/null || break
        sleep 0.05
    done
    bad "$name ($kind) did not start"; sed 's/^/    /' "$work/$name.err" | tail -20 >&2
    return 1
}

# PYTHON helper: `lines` are the JSON lines of FILE, `ev(k)` those of event
# k, `peer` the extra argument.
PYPRE='import json, sys
path, expr = sys.argv[1], sys.argv[2]
arg = sys.argv[3] if len(sys.argv) > 3 else ""
lines = []
for l in open(path):
    try: lines.append(json.loads(l))
    except Exception: pass
ev = lambda k: [l for l in lines if l.get("event") == k]
msgs = ev("message")
hashes = [m["hash"] for m in msgs]
'

holds() { python3 -c "$PYPRE"'
sys.exit(0 if eval(expr) else 1)' "$@" 2>/dev/null; }

# wait_for NAME EXPR SECONDS [ARG]: until EXPR holds over NAME's lines.
wait_for() {
    local name=$1 expr=$2 t=$3 arg=${4:-}
    for _ in $(seq $((t * 20))); do
        holds "$work/$name.out" "$expr" "$arg" && return 0
        sleep 0.05
    done
    return 1
}

# check NAME-OF-CHECK NODE EXPR [ARG]
check() {
    local what=$1 name=$2 expr=$3 arg=${4:-}
    if holds "$work/$name.out" "$expr" "$arg"; then ok
    else bad "$what: $expr over $name:"; sed 's/^/    /' "$work/$name.out" | tail -15 >&2; fi
}

# wait_exit NAME [SECONDS]: its exit status in $xrc ("timeout" if killed).
wait_exit() {
    local name=$1 t=${2:-30} pid=${PID[$1]}
    for _ in $(seq $((t * 20))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; wait "$pid" 2>/dev/null; xrc=timeout; return; fi
    wait "$pid"; xrc=$?
}

expect_exit() { # NAME WANT [SECONDS]
    wait_exit "$1" "${3:-30}"
    [ "$xrc" = "$2" ] && ok || { bad "$1 exited $xrc, not $2"; tail -5 "$work/$1.err" >&2; }
}

stop() { kill -TERM "${PID[$1]}" 2>/dev/null; wait_exit "$1" 10; }

# hashes_of NAME EVENT: the hashes of NAME's EVENT lines, one per line.
hashes_of() {
    python3 -c "$PYPRE"'
for l in ev(arg): print(l["hash"])' "$work/$1.out" "" "$2"
}

# same_messages WHAT RECEIVER PUBLISHER...: RECEIVER got every message the
# publishers published, each exactly once, and nothing else.
same_messages() {
    local what=$1 rx=$2; shift 2
    local want=$work/want.$$ got=$work/got.$$
    : >"$want"
    for p in "$@"; do hashes_of "$p" published >>"$want"; done
    hashes_of "$rx" message >"$got"
    if [ -s "$want" ] && [ "$(sort "$want")" = "$(sort "$got")" ]; then ok
    else
        bad "$what: $rx received $(wc -l <"$got") messages ($(sort "$got" | uniq -d | wc -l) duplicated), wanted the $(wc -l <"$want") of $*"
    fi
}

# ---- the pair matrix: one JS kind against C, over one muxer --------------------

hex_of() { printf %s "$1" | od -An -tx1 | tr -d ' \n'; }

# C publishes, JS receives; JS publishes, C receives.
pair_both_ways() {
    local kind=$1 mux=$2 t="$kind-$mux"
    start js1 "$kind" --muxer "$mux" --subscribe $CT --expect 3 --lifetime 40 || return
    start c1 c --muxer "$mux" --peer "${ADDR[js1]}" --publish $CT --message "c to js" --count 3 --lifetime 40 || return
    expect_exit c1 0 40
    expect_exit js1 0 40
    same_messages "$t: C publishes, JS receives" js1 c1
    check "$t: relayed by the C node, muxer $mux" js1 \
        'all(m["from"] == arg for m in msgs) and any(c.get("muxer") == "'"$mux"'" for c in ev("connection"))' "${PEER[c1]}"
    check "$t: payload, content topic, pubsub topic" js1 \
        'sorted(m["payload_hex"] for m in msgs) == ["'"$(hex_of "c to js 1")"'", "'"$(hex_of "c to js 2")"'", "'"$(hex_of "c to js 3")"'"] and all(m["content_topic"] == "'$CT'" and m["pubsub_topic"] == "'$TOPIC'" for m in msgs)'

    start c2 c --muxer "$mux" --subscribe $CT --expect 3 --lifetime 40 || return
    start js2 "$kind" --muxer "$mux" --peer "${ADDR[c2]}" --publish $CT --message "js to c" --count 3 --lifetime 40 || return
    expect_exit js2 0 40
    expect_exit c2 0 40
    same_messages "$t: JS publishes, C receives" c2 js2
    check "$t: timestamps and fields kept" c2 \
        'all(m["timestamp"] != "0" and m["version"] == 0 and m["meta_hex"] is None and m["from"] == arg for m in msgs)' "${PEER[js2]}"
    if [ "$kind" = gossip ]; then
        # gossip-node reports the metadata exchange both ways
        check "$t: metadata both ways (cluster 16, shard 64)" js2 \
            'set(l["direction"] for l in ev("metadata") if l["peer"] == arg and l["cluster"] == 16 and 64 in l["shards"] and l["error"] is None) == {"inbound", "outbound"}' "${PEER[c2]}"
    fi
}

# The CLI against JS.
pair_cli() {
    local kind=$1 mux=$2 t="$kind-$mux cli"
    start js3 "$kind" --muxer "$mux" --subscribe $CT --expect 1 --lifetime 40 || return
    local out rc
    out=$(timeout 30 "$CLI" waku publish $CT "cli hello" --peer "${ADDR[js3]}" --muxer "$mux" --timeout 20 2>"$work/cli-pub.err")
    rc=$?
    [ $rc = 0 ] && grep -Eq '^published [0-9a-f]{64} to 1 peers$' <<<"$out" && ok ||
        { bad "$t: pairlink waku publish rc=$rc out='$out'"; tail -5 "$work/cli-pub.err" >&2; }
    expect_exit js3 0 30
    check "$t: JS received the CLI's message (same hash)" js3 \
        'len(msgs) == 1 and msgs[0]["payload_hex"] == "'"$(hex_of "cli hello")"'" and msgs[0]["hash"] == arg' "$(awk '{print $2}' <<<"$out")"

    start js4 "$kind" --muxer "$mux" --publish $CT --message "to the cli" --lifetime 40 || return
    timeout 30 "$CLI" waku subscribe $CT --peer "${ADDR[js4]}" --muxer "$mux" --count 1 --json --timeout 20 \
        >"$work/cli-sub.out" 2>"$work/cli-sub.err"
    rc=$?
    [ $rc = 0 ] && ok || { bad "$t: pairlink waku subscribe rc=$rc"; tail -5 "$work/cli-sub.err" >&2; }
    expect_exit js4 0 30
    local h; h=$(hashes_of js4 published)
    if python3 - "$work/cli-sub.out" "$h" "$CT" "$TOPIC" "$(hex_of "to the cli")" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
r = rows[0]
assert len(rows) == 1, rows
assert r["hash"] == sys.argv[2] and r["content_topic"] == sys.argv[3], r
assert r["pubsub_topic"] == sys.argv[4] and r["payload_hex"] == sys.argv[5], r
assert r["payload"] == "to the cli" and r["timestamp_ms"] > 0, r
PY
    then ok; else bad "$t: subscribe --json output"; cat "$work/cli-sub.out" >&2; fi
}

# C - JS - C and JS - C - JS: messages cross a hop of the other kind.
pair_hops() {
    local kind=$1 mux=$2 t="$kind-$mux hop"
    start hop "$kind" --muxer "$mux" --lifetime 60 || return
    start c5 c --muxer "$mux" --peer "${ADDR[hop]}" --subscribe $CT --expect 3 --lifetime 40 || return
    wait_for c5 'any(arg in m["peers"] for m in ev("mesh"))' 15 "${PEER[hop]}" ||
        bad "$t: the C subscriber did not mesh with the JS hop"
    start c6 c --muxer "$mux" --peer "${ADDR[hop]}" --publish $CT --message "over js" --count 3 --lifetime 40 || return
    expect_exit c6 0 40
    expect_exit c5 0 40
    same_messages "$t: C - JS - C" c5 c6
    check "$t: C - JS - C: relayed by JS" c5 'all(m["from"] == arg for m in msgs)' "${PEER[hop]}"
    stop hop

    start chop c --muxer "$mux" --lifetime 60 || return
    start js5 "$kind" --muxer "$mux" --peer "${ADDR[chop]}" --subscribe $CT --expect 3 --lifetime 40 || return
    wait_for js5 'any(arg in m["peers"] for m in ev("mesh"))' 15 "${PEER[chop]}" ||
        bad "$t: the JS subscriber did not mesh with the C hop"
    start js6 "$kind" --muxer "$mux" --peer "${ADDR[chop]}" --publish $CT --message "over c" --count 3 --lifetime 40 || return
    expect_exit js6 0 40
    expect_exit js5 0 40
    same_messages "$t: JS - C - JS" js5 js6
    check "$t: JS - C - JS: relayed by C" js5 'all(m["from"] == arg for m in msgs)' "${PEER[chop]}"
    stop chop
}

# A JS node of another cluster: the C node disconnects it, either way round.
pair_cluster() {
    local kind=$1 t="$kind cluster"
    start jsx "$kind" --cluster 1 --lifetime 40 || return
    start cx c --peer "${ADDR[jsx]}" --lifetime 30 || return
    wait_for cx 'any(r["peer"] == arg and r["error"] == "PL_ERR_WAKU_CLUSTER" for r in ev("refused"))' 15 "${PEER[jsx]}" &&
        ok || bad "$t: C did not refuse the JS node of cluster 1 it dialled"
    check "$t: never a relay peer" cx 'not ev("connection")'
    stop cx
    start cy c --lifetime 30 || return
    start jsy "$kind" --cluster 1 --peer "${ADDR[cy]}" --lifetime 30 || return
    wait_for cy 'any(r["peer"] == arg and r["error"] == "PL_ERR_WAKU_CLUSTER" for r in ev("refused"))' 15 "${PEER[jsy]}" &&
        ok || bad "$t: C did not refuse the JS node of cluster 1 that dialled it"
    wait_for jsy 'any(d["peer"] == arg for d in ev("disconnect"))' 10 "${PEER[cy]}" && ok ||
        bad "$t: the JS node was not disconnected"
    stop cy; stop jsy; stop jsx
}

pair_matrix() {
    local kind=$1; shift
    for mux in "$@"; do
        echo "${TEST_NAME}: $kind over $mux"
        pair_both_ways "$kind" "$mux"
        pair_cli "$kind" "$mux"
        pair_hops "$kind" "$mux"
    done
    pair_cluster "$kind"
    echo "${TEST_NAME}: $passes passed, $fails failed"
    [ $fails = 0 ]
}
