#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Waku payload version 1 (symmetric) and node-manager HELLO interop (issue 5):
# HELLOs and raw payloads sealed by @waku/message-encryption are opened by
# pairlink, those sealed by pairlink are opened by the JS decoder, tampered
# copies are refused on both sides, and the JS decoder opens the HELLO
# vectors printed in docs/protocol/node-manager-pairing.md. Seeded:
# PL_TEST_SEED=<n> repeats a run, WAKU_ROUNDS=<n> changes the number of
# cases each way (default 300).
#
# Run by CTest (label interop), which sets PL_BUILD_DIR and PL_SOURCE_DIR.
# No network is used.
set -euo pipefail

: "${PL_BUILD_DIR:?PL_BUILD_DIR is not set (run through ctest)}"
: "${PL_SOURCE_DIR:?PL_SOURCE_DIR is not set (run through ctest)}"
ROUNDS="${WAKU_ROUNDS:-300}"
STEP_TIMEOUT="${WAKU_STEP_TIMEOUT:-120}"
INTEROP="$PL_SOURCE_DIR/interop"
DRIVER="$PL_BUILD_DIR/interop/interop_waku_payload_driver"
SPEC="$PL_SOURCE_DIR/docs/protocol/node-manager-pairing.md"

die() {
    echo "waku payload interop: FAILED: $*" >&2
    exit 1
}

command -v node >/dev/null || die "node is not installed (see scripts/install-deps.sh)"
[ -f "$INTEROP/node_modules/@waku/message-encryption/package.json" ] ||
    die "$INTEROP/node_modules/@waku/message-encryption is missing: run 'npm ci' in $INTEROP"
[ -x "$DRIVER" ] || die "$DRIVER was not built"
[ -f "$SPEC" ] || die "$SPEC is missing"

if [ -n "${PL_TEST_SEED:-}" ]; then
    SEED="$PL_TEST_SEED"
else
    SEED=$(od -An -N6 -tu8 /dev/urandom | tr -d ' \n')
fi
[[ "$SEED" =~ ^[0-9]+$ ]] || die "PL_TEST_SEED must be a decimal integer, got '$SEED'"
[[ "$ROUNDS" =~ ^[0-9]+$ ]] || die "WAKU_ROUNDS must be a decimal integer"
echo "waku payload interop: PL_TEST_SEED=$SEED rounds=$ROUNDS"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pl-waku-payload.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

run() { timeout --kill-after=5 "$STEP_TIMEOUT" "$@"; }
is_crash() { [ "$1" -ge 124 ]; }
result_field() { # result_field FILE PREFIX FIELD
    sed -n "s/^$2 .*\\b$3=\\([0-9]*\\).*/\\1/p" "$1" | tail -n 1
}

status=0

# 1. JS seals, C opens.
rc=0
(cd "$INTEROP" && run node waku-payload.mjs gen --seed "$SEED" --rounds "$ROUNDS" --out "$WORK/js.jsonl") ||
    rc=$?
[ "$rc" -eq 0 ] || die "the JS generator failed (exit $rc)"
rc=0
run "$DRIVER" open <"$WORK/js.jsonl" >"$WORK/c.out" || rc=$?
cat "$WORK/c.out"
is_crash "$rc" && die "the C driver crashed or hung (exit $rc)"
[ "$rc" -eq 0 ] || status=1
js_to_c=$(result_field "$WORK/c.out" RESULT lines)
js_to_c_fail=$(result_field "$WORK/c.out" RESULT failures)
[ -n "$js_to_c" ] && [ -n "$js_to_c_fail" ] || die "no RESULT line from the C driver"

# 2. C seals, JS opens.
rc=0
run "$DRIVER" seal --seed "$SEED" --rounds "$ROUNDS" --out "$WORK/c.jsonl" >"$WORK/gen.out" || rc=$?
cat "$WORK/gen.out"
is_crash "$rc" && die "the C driver crashed or hung while sealing (exit $rc)"
[ "$rc" -eq 0 ] || die "the C driver could not seal its cases (exit $rc)"
rc=0
(cd "$INTEROP" && run node waku-payload.mjs check --in "$WORK/c.jsonl") >"$WORK/js.out" || rc=$?
cat "$WORK/js.out"
[ "$rc" -le 1 ] || die "the JS checker failed to run (exit $rc)"
[ "$rc" -eq 0 ] || status=1
c_to_js=$(result_field "$WORK/js.out" RESULT lines)
c_to_js_fail=$(result_field "$WORK/js.out" RESULT failures)
[ -n "$c_to_js" ] && [ -n "$c_to_js_fail" ] || die "no RESULT line from the JS checker"

# 3. The spec's HELLO vectors open in JS.
rc=0
(cd "$INTEROP" && run node waku-payload.mjs vectors --doc "$SPEC") >"$WORK/vec.out" || rc=$?
cat "$WORK/vec.out"
[ "$rc" -eq 0 ] || status=1
vec_fail=$(result_field "$WORK/vec.out" RESULT failures)
[ -n "$vec_fail" ] || die "no RESULT line from the JS vector check"

failures=$((js_to_c_fail + c_to_js_fail + vec_fail))
[ "$js_to_c" -eq "$ROUNDS" ] || status=1
[ "$c_to_js" -eq "$ROUNDS" ] || status=1
[ "$failures" -eq 0 ] || status=1
echo "waku payload interop: $js_to_c cases JS->C, $c_to_js cases C->JS, $failures failures (seed $SEED)"
[ "$status" -eq 0 ] || echo "waku payload interop: FAILED; repeat with PL_TEST_SEED=$SEED" >&2
exit "$status"
