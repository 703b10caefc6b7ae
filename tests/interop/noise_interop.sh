#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Waku Noise interop against the pinned js-noise (@waku/noise 0.0.3-a19e968),
# issue 4 item 5. For each pattern (K1K1, XK1, XX, XXpsk0, WakuPairing):
#   1. js-noise writes transcripts from fresh random keys; `pairlink noise
#      replay` must reproduce every byte;
#   2. `pairlink noise transcript` writes transcripts; js-noise must replay
#      every byte (interop/noise-interop.mjs replay);
#   3. one flipped byte in a transcript must make each replayer report a
#      mismatch (the checks can fail);
#   4. live handshakes between a C party (interop_noise_peer) and a js-noise
#      party over pipes, both roles, then transport messages both ways with
#      tampered copies that both sides must reject.
# Everything runs on pipes only and stops by itself. NOISE_TRANSCRIPTS
# (per pattern and direction, default 4) and NOISE_LIVE_ROUNDS (default 12)
# change the amount of work. A failing transcript is kept under
# $PL_BUILD_DIR/noise-interop-failed/.
#
# Run by CTest (label interop), which sets PL_BUILD_DIR, PL_SOURCE_DIR and
# PL_CLI.
set -euo pipefail

: "${PL_BUILD_DIR:?PL_BUILD_DIR is not set (run through ctest)}"
: "${PL_SOURCE_DIR:?PL_SOURCE_DIR is not set (run through ctest)}"
CLI="${PL_CLI:-$PL_BUILD_DIR/pairlink}"
PEER="$PL_BUILD_DIR/interop/interop_noise_peer"
JS="$PL_SOURCE_DIR/interop/noise-interop.mjs"
COUNT="${NOISE_TRANSCRIPTS:-4}"
ROUNDS="${NOISE_LIVE_ROUNDS:-12}"
PATTERNS="K1K1 XK1 XX XXpsk0 WakuPairing"
KEEP="$PL_BUILD_DIR/noise-interop-failed"

die() {
    echo "noise interop: FAILED: $*" >&2
    exit 1
}

command -v node >/dev/null || die "node is not installed (see scripts/install-deps.sh)"
[ -f "$PL_SOURCE_DIR/interop/node_modules/@waku/noise/package.json" ] ||
    die "interop/node_modules/@waku/noise is missing: run 'npm ci' in $PL_SOURCE_DIR/interop"
[ -x "$CLI" ] || die "$CLI was not built"
[ -x "$PEER" ] || die "$PEER was not built"
[[ "$COUNT" =~ ^[1-9][0-9]*$ ]] || die "NOISE_TRANSCRIPTS must be a positive integer"
[[ "$ROUNDS" =~ ^[0-9]+$ ]] || die "NOISE_LIVE_ROUNDS must be an integer"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pl-noise-interop.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

run() { timeout --kill-after=5 60 "$@"; }
failures=0
keep() { # keep a failing transcript for a rerun: keep FILE
    mkdir -p "$KEEP"
    cp "$1" "$KEEP/"
    echo "  kept $KEEP/$(basename "$1")"
}
result_field() { # result_field FILE FIELD: from the RESULT line
    sed -n "s/^RESULT .*\\b$2=\\([0-9]*\\).*/\\1/p" "$1" | tail -n 1
}

# 1. JS -> C.
rc=0
run node "$JS" gen --out "$WORK/js" --count "$COUNT" >"$WORK/gen.out" || rc=$?
if [ "$rc" -ne 0 ]; then
    cat "$WORK/gen.out"
    die "the js-noise transcript generator failed (exit $rc)"
fi
js_to_c=0
js_to_c_fail=0
for f in "$WORK"/js/js_*.json; do
    js_to_c=$((js_to_c + 1))
    rc=0
    run "$CLI" noise replay "$f" >"$WORK/replay.out" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        js_to_c_fail=$((js_to_c_fail + 1))
        echo "FAIL JS->C $(basename "$f") (exit $rc): $(head -c 600 "$WORK/replay.out")"
        keep "$f"
    fi
done
echo "noise interop: $js_to_c js-noise transcripts replayed by pairlink, $js_to_c_fail failures"

# 2. C -> JS.
mkdir -p "$WORK/c"
c_files=()
for p in $PATTERNS; do
    for ((i = 0; i < COUNT; i++)); do
        f="$WORK/c/c_${p}_$i.json"
        rc=0
        run "$CLI" noise transcript --pattern "$p" --transport 8 >"$f" || rc=$?
        [ "$rc" -eq 0 ] || die "pairlink noise transcript --pattern $p failed (exit $rc)"
        c_files+=("$f")
    done
done
rc=0
run node "$JS" replay "${c_files[@]}" >"$WORK/jsreplay.out" || rc=$?
[ "$rc" -le 1 ] || {
    cat "$WORK/jsreplay.out"
    die "the js-noise replayer failed to run (exit $rc)"
}
c_to_js=$(result_field "$WORK/jsreplay.out" cases)
c_to_js_fail=$(result_field "$WORK/jsreplay.out" failures)
[ -n "$c_to_js" ] && [ -n "$c_to_js_fail" ] || die "no RESULT line from the js-noise replayer"
[ "$c_to_js" -eq "${#c_files[@]}" ] || die "js-noise replayed $c_to_js of ${#c_files[@]} transcripts"
while read -r _ _ f rest; do
    echo "FAIL C->JS $(basename "${f%:}"): $rest"
    keep "${f%:}"
done < <(grep '^MISMATCH ' "$WORK/jsreplay.out" || true)
echo "noise interop: $c_to_js pairlink transcripts replayed by js-noise, $c_to_js_fail failures"

# 3. Negative controls: one flipped byte must be reported by both replayers.
neg_fail=0
pairs=()
for p in $PATTERNS; do
    pairs+=("$WORK/js/js_${p}_0.json" "$WORK/bad_js_$p.json" "$WORK/c/c_${p}_0.json" "$WORK/bad_c_$p.json")
done
run node "$JS" tamper "${pairs[@]}" >"$WORK/tamper.out" || die "the tamper step failed"
for p in $PATTERNS; do
    rc=0
    run "$CLI" noise replay "$WORK/bad_js_$p.json" >"$WORK/replay.out" 2>&1 || rc=$?
    if [ "$rc" -ne 1 ] || ! grep -q '^MISMATCH' "$WORK/replay.out"; then
        neg_fail=$((neg_fail + 1))
        echo "FAIL: pairlink did not report a flipped byte ($(grep "bad_js_$p" "$WORK/tamper.out")), exit $rc:"
        head -c 600 "$WORK/replay.out"
    fi
done
rc=0
run node "$JS" replay "$WORK"/bad_c_*.json >"$WORK/jsbad.out" || rc=$?
n=$(grep -c '^MISMATCH ' "$WORK/jsbad.out" || true)
if [ "$rc" -ne 1 ] || [ "$n" -ne 5 ]; then
    neg_fail=$((neg_fail + (n < 5 ? 5 - n : 1)))
    echo "FAIL: js-noise replay reported $n of 5 flipped bytes (exit $rc):"
    grep -v '^MISMATCH ' "$WORK/jsbad.out" || true
    cat "$WORK/tamper.out"
fi
echo "noise interop: flipped-byte transcripts reported by both replayers, $neg_fail failures"

# 4. Live handshakes over pipes (node spawns the C peer per case).
rc=0
run node "$JS" live --peer "$PEER" --rounds "$ROUNDS" >"$WORK/live.out" || rc=$?
cat "$WORK/live.out"
[ "$rc" -le 1 ] || die "the live driver failed to run (exit $rc)"
live=$(result_field "$WORK/live.out" cases)
live_fail=$(result_field "$WORK/live.out" failures)
[ -n "$live" ] && [ -n "$live_fail" ] || die "no RESULT line from the live driver"
[ "$live" -eq 10 ] || die "$live live cases ran, expected 10"

failures=$((js_to_c_fail + c_to_js_fail + neg_fail + live_fail))
echo "noise interop: $js_to_c transcripts JS->C, $c_to_js C->JS, $live live handshakes" \
    "($ROUNDS transport rounds each), $failures failures"
[ "$failures" -eq 0 ] || exit 1
