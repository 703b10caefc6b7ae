# SPDX-License-Identifier: Apache-2.0
# Shared by tests/interop/p2p_js19.sh and p2p_js3.sh: the C libp2p stack
# (tests/interop/p2p_driver.c, `pairlink p2p`) against one js-libp2p project
# of interop/ (interop/README.md has the peer.mjs contract), both
# directions, over yamux and over mplex. 127.0.0.1 only; every wait is
# bounded; every process started here is stopped at exit.
#
# The caller sets PROJECT (interop/<PROJECT>/peer.mjs) and AGENT_RE (a
# Python regex the JS agentVersion must match), then calls p2p_matrix.
set -uo pipefail

: "${PL_BUILD_DIR:?PL_BUILD_DIR is not set (run through ctest)}"
: "${PL_SOURCE_DIR:?PL_SOURCE_DIR is not set (run through ctest)}"
CLI="${PL_CLI:-$PL_BUILD_DIR/pairlink}"
DRIVER="$PL_BUILD_DIR/interop/interop_p2p_driver"
PEER_JS="$PL_SOURCE_DIR/interop/$PROJECT/peer.mjs"
ECHO_BYTES=$((1 << 20))
fails=0; passes=0
work=$(mktemp -d); pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    [ $fails = 0 ] && rm -rf "$work" || echo "p2p interop: logs kept in $work" >&2
}
trap cleanup EXIT

die() { echo "p2p interop ($PROJECT): $*" >&2; exit 1; }
command -v node >/dev/null || die "node is not installed (see scripts/install-deps.sh)"
[ -f "$PEER_JS" ] || die "$PEER_JS is missing"
[ -d "$PL_SOURCE_DIR/interop/$PROJECT/node_modules" ] ||
    die "interop/$PROJECT/node_modules is missing: run scripts/install-deps.sh"
[ -x "$DRIVER" ] || die "$DRIVER was not built"

ok() { passes=$((passes + 1)); }
bad() { fails=$((fails + 1)); echo "FAIL [$PROJECT] $*" >&2; }

# First "listening" line of a JSON-lines file (at most 20 s); prints addr.
wait_listening() {
    local f=$1 a
    for _ in $(seq 400); do
        a=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    d=json.loads(l)
    if d.get("event")=="listening": print(d["addr"]); break' "$f" 2>/dev/null)
        [ -n "$a" ] && { echo "$a"; return 0; }
        sleep 0.05
    done
    return 1
}

# Waits (at most 20 s) for a child to end; its exit status goes to $xrc
# ("timeout" if it had to be killed). Not in a subshell: only this shell
# can wait for its children.
wait_exit() {
    local pid=$1
    for _ in $(seq 400); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then kill "$pid"; wait "$pid" 2>/dev/null; xrc=timeout; return; fi
    wait "$pid"; xrc=$?
}

# check NAME PYTHON-EXPR FILE: the expression over `r` (the result line) or
# `lines` (all JSON lines of FILE) must hold.
check() {
    local name=$1 expr=$2 file=$3
    if python3 - "$file" "$expr" "$AGENT_RE" "$ECHO_BYTES" <<'PY'
import json, re, sys
path, expr, agent_re, echo_bytes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
lines = [json.loads(l) for l in open(path) if l.strip()]
ev = lambda k: [l for l in lines if l.get("event") == k]
r = (ev("result") or [{}])[-1]
sys.exit(0 if eval(expr) else 1)
PY
    then ok; else bad "$name ($expr) in $file:"; sed 's/^/    /' "$file" | head -20 >&2; fi
}

# C dials JS: driver dial -> peer.mjs listen --once.
c_dials_js() {
    local mux=$1 tag="c-dials-js-$mux"
    node "$PEER_JS" listen --muxer "$mux" --once --lifetime 40 >"$work/$tag.js" 2>"$work/$tag.js.err" &
    local js=$!; pids+=($js)
    local addr; addr=$(wait_listening "$work/$tag.js") || { bad "$tag: no listening line"; return; }
    local jspeer=${addr##*/p2p/}
    timeout 40 "$DRIVER" dial "$addr" --muxer "$mux" --pings 3 --echo-bytes $ECHO_BYTES \
        >"$work/$tag.c" 2>"$work/$tag.c.err"
    local rc=$?
    [ $rc = 0 ] && ok || bad "$tag: driver exit $rc"
    check "$tag result ok" 'r.get("ok") is True and r["error"] is None' "$work/$tag.c"
    check "$tag noise: the dialed peer id" "r['peer'] == '$jspeer'" "$work/$tag.c"
    check "$tag muxer" "r['muxer'] == '$mux'" "$work/$tag.c"
    check "$tag C sees the JS agent" 're.match(agent_re, r["agentVersion"] or "")' "$work/$tag.c"
    check "$tag C sees the JS protocols" \
        'set(["/ipfs/id/1.0.0", "/ipfs/ping/1.0.0", "/pairlink/test/echo/1.0.0"]) <= set(r["protocols"])' "$work/$tag.c"
    check "$tag C pinged JS" 'len(r["ping_ms"]) == 3 and all(x > 0 for x in r["ping_ms"])' "$work/$tag.c"
    check "$tag 1 MiB each way" 'r["echo_ok"] is True and r["echo_bytes"] == echo_bytes' "$work/$tag.c"
    wait_exit $js
    [ "$xrc" = 0 ] && ok || bad "$tag: peer.mjs listen --once exit $xrc (0 = it identified us)"
    check "$tag JS sees the C agent" \
        'any(l.get("agentVersion","").startswith("pairlink/") for l in ev("identify"))' "$work/$tag.js"
    check "$tag JS sees the C protocols" \
        'any("/pairlink/test/echo/1.0.0" in l.get("protocols",[]) and "/ipfs/ping/1.0.0" in l.get("protocols",[]) for l in ev("identify"))' "$work/$tag.js"
    check "$tag JS echoed 1 MiB" 'any(l.get("bytes") == echo_bytes for l in ev("echo"))' "$work/$tag.js"
}

# JS dials C: peer.mjs dial -> driver listen --once (which pings the dialer).
js_dials_c() {
    local mux=$1 tag="js-dials-c-$mux"
    "$DRIVER" listen --muxer "$mux" --once --pings 2 --lifetime 40 >"$work/$tag.c" 2>"$work/$tag.c.err" &
    local c=$!; pids+=($c)
    local addr; addr=$(wait_listening "$work/$tag.c") || { bad "$tag: no listening line"; return; }
    local cpeer=${addr##*/p2p/}
    timeout 40 node "$PEER_JS" dial "$addr" --muxer "$mux" --pings 3 --echo-bytes $ECHO_BYTES --hold 2 \
        >"$work/$tag.js" 2>"$work/$tag.js.err"
    local rc=$?
    [ $rc = 0 ] && ok || bad "$tag: peer.mjs dial exit $rc"
    check "$tag result ok" 'r.get("ok") is True and r.get("error") is None' "$work/$tag.js"
    check "$tag noise: the dialed peer id" "r['peer'] == '$cpeer'" "$work/$tag.js"
    check "$tag muxer" "r['muxer'] == '$mux'" "$work/$tag.js"
    check "$tag JS sees the C agent" 'r["agentVersion"].startswith("pairlink/")' "$work/$tag.js"
    check "$tag JS sees the C protocols" \
        'set(["/ipfs/id/1.0.0", "/ipfs/ping/1.0.0", "/pairlink/test/echo/1.0.0"]) <= set(r["protocols"])' "$work/$tag.js"
    check "$tag JS pinged C" 'len(r["ping_ms"]) == 3' "$work/$tag.js"
    check "$tag 1 MiB each way" 'r["echo_ok"] is True and r["echo_bytes"] == echo_bytes' "$work/$tag.js"
    wait_exit $c
    [ "$xrc" = 0 ] && ok || bad "$tag: driver listen --once exit $xrc"
    check "$tag C sees the JS agent" 'any(re.match(agent_re, l.get("agentVersion","")) for l in ev("identify"))' "$work/$tag.c"
    # (a dialing peer.mjs serves no echo: identify and ping are what it lists)
    check "$tag C sees the JS protocols" \
        'any({"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"} <= set(l.get("protocols",[])) for l in ev("identify"))' "$work/$tag.c"
    check "$tag C pinged JS" 'len([l for l in ev("ping") if l.get("rtt_ms",0) > 0]) == 2' "$work/$tag.c"
    check "$tag C echoed 1 MiB" 'any(l.get("bytes") == echo_bytes for l in ev("echo"))' "$work/$tag.c"
    check "$tag connection muxer" "any(l.get('muxer') == '$mux' and l.get('direction') == 'inbound' for l in ev('connection'))" "$work/$tag.c"
}

# The CLI against JS: `pairlink p2p ping` and `pairlink p2p listen`.
cli_cases() {
    local tag="cli"
    node "$PEER_JS" listen --once --lifetime 40 >"$work/$tag.js" 2>"$work/$tag.js.err" &
    local js=$!; pids+=($js)
    local addr; addr=$(wait_listening "$work/$tag.js") || { bad "$tag: no listening line"; return; }
    local out; out=$(timeout 30 "$CLI" p2p ping "$addr" --count 2 --interval 100 2>&1)
    local rc=$?
    if [ $rc = 0 ] && grep -q "2 pings transmitted, 2 received" <<<"$out" &&
        grep -q "^protocols: .*/pairlink/test/echo/1.0.0" <<<"$out" &&
        python3 -c "import re,sys; sys.exit(0 if re.search(sys.argv[1], sys.argv[2]) else 1)" \
            "^agent: (${AGENT_RE#^})" "$(grep '^agent: ' <<<"$out")"; then ok
    else bad "$tag: pairlink p2p ping JS: rc=$rc"; echo "$out" | head -20 >&2; fi
    wait_exit $js
    # A wrong /p2p/ id: Noise proves another peer.
    node "$PEER_JS" listen --lifetime 20 >"$work/$tag.js2" 2>"$work/$tag.js2.err" &
    js=$!; pids+=($js)
    addr=$(wait_listening "$work/$tag.js2") || { bad "$tag: no listening line"; return; }
    local other; other=$("$CLI" p2p id --key-file "$work/other.key")
    out=$(timeout 30 "$CLI" p2p ping "${addr%/p2p/*}/p2p/$other" --count 1 2>&1)
    rc=$?
    [ $rc = 1 ] && grep -q PL_ERR_P2P_PEER_MISMATCH <<<"$out" && ok ||
        { bad "$tag: peer id mismatch against JS: rc=$rc"; echo "$out" | head >&2; }
    kill $js 2>/dev/null
    # JS dials `pairlink p2p listen`.
    "$CLI" p2p listen --key-file "$work/listen.key" >"$work/$tag.cl" 2>"$work/$tag.cl.err" &
    local l=$!; pids+=($l)
    for _ in $(seq 200); do grep -q '^listening on ' "$work/$tag.cl" && break; sleep 0.05; done
    addr=$(sed -n 's/^listening on //p' "$work/$tag.cl" | head -1)
    timeout 30 node "$PEER_JS" dial "$addr" --pings 2 --echo-bytes 0 >"$work/$tag.jd" 2>"$work/$tag.jd.err"
    check "$tag JS dials pairlink p2p listen" \
        'r.get("agentVersion","").startswith("pairlink/") and len(r.get("ping_ms",[])) == 2' "$work/$tag.jd"
    kill -TERM $l
    wait_exit $l
    [ "$xrc" = 0 ] && ok || bad "$tag: pairlink p2p listen exit $xrc after SIGTERM"
    grep -q "identified .* protocols" "$work/$tag.cl.err" && ok ||
        bad "$tag: pairlink p2p listen did not log the JS identify"
}

p2p_matrix() {
    for mux in yamux mplex; do
        c_dials_js $mux
        js_dials_c $mux
    done
    cli_cases
    echo "p2p interop ($PROJECT): $passes passed, $fails failed"
    [ $fails = 0 ]
}
