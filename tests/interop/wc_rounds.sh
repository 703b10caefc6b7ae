#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# WalletConnect interop rounds against the pinned JS SDK (issue 2, item 9):
# JS formats URIs, seals envelopes and signs JWTs that C parses, opens and
# verifies, and the reverse; tampered envelopes and JWTs must be refused on
# both sides. Seeded: PL_TEST_SEED=<n> repeats a run, WC_ROUNDS=<n> changes
# the number of rounds (default 1000).
#
# Run by CTest (label interop), which sets PL_BUILD_DIR, PL_SOURCE_DIR and
# PL_SHARED_DIR. No network is used.
set -euo pipefail

: "${PL_BUILD_DIR:?PL_BUILD_DIR is not set (run through ctest)}"
: "${PL_SOURCE_DIR:?PL_SOURCE_DIR is not set (run through ctest)}"
ROUNDS="${WC_ROUNDS:-1000}"
STEP_TIMEOUT="${WC_STEP_TIMEOUT:-120}"
INTEROP="$PL_SOURCE_DIR/interop"
DRIVER="$PL_BUILD_DIR/interop/interop_wc_driver"

die() {
    echo "wc interop: FAILED: $*" >&2
    exit 1
}

command -v node >/dev/null || die "node is not installed (make test installs it; see scripts/install-deps.sh)"
for pkg in @walletconnect/utils @walletconnect/relay-auth @walletconnect/jsonrpc-utils @walletconnect/safe-json; do
    [ -f "$INTEROP/node_modules/$pkg/package.json" ] ||
        die "$INTEROP/node_modules/$pkg is missing: run 'npm ci' in $INTEROP (make test does)"
done
[ -x "$DRIVER" ] || die "$DRIVER was not built"

if [ -n "${PL_TEST_SEED:-}" ]; then
    SEED="$PL_TEST_SEED"
else
    SEED=$(od -An -N6 -tu8 /dev/urandom | tr -d ' \n')
fi
[[ "$SEED" =~ ^[0-9]+$ ]] || die "PL_TEST_SEED must be a decimal integer, got '$SEED'"
echo "wc interop: PL_TEST_SEED=$SEED rounds=$ROUNDS"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pl-wc-rounds.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

run() { # run with a time limit; a hang is a failure, not a stuck test
    timeout --kill-after=5 "$STEP_TIMEOUT" "$@"
}

# A crash (signal) or sanitizer abort is never an ordinary failure.
is_crash() { [ "$1" -ge 124 ]; }

result_field() { # result_field FILE PREFIX FIELD
    sed -n "s/^$2 .*\\b$3=\\([0-9]*\\).*/\\1/p" "$1" | tail -n 1
}

status=0

# 1. JS makes the cases.
rc=0
(cd "$INTEROP" && run node wc-rounds.mjs gen --seed "$SEED" --rounds "$ROUNDS" --out "$WORK/js.jsonl") || rc=$?
[ "$rc" -eq 0 ] || die "the JS generator failed (exit $rc)"

# 2. C checks them and makes its own.
rc=0
run "$DRIVER" --seed "$SEED" --rounds "$ROUNDS" --out "$WORK/c.jsonl" <"$WORK/js.jsonl" >"$WORK/c.out" || rc=$?
cat "$WORK/c.out"
is_crash "$rc" && die "the C driver crashed or hung (exit $rc)"
[ "$rc" -eq 0 ] || status=1
js_to_c_rounds=$(result_field "$WORK/c.out" RESULT rounds)
js_to_c_fail=$(result_field "$WORK/c.out" RESULT failures)
gen_errors=$(result_field "$WORK/c.out" GENERATED errors)
[ -n "$js_to_c_rounds" ] && [ -n "$js_to_c_fail" ] || die "no RESULT line from the C driver"
[ -f "$WORK/c.jsonl" ] || die "the C driver wrote no cases"

# 3. JS checks the C cases.
rc=0
(cd "$INTEROP" && run node wc-rounds.mjs check --in "$WORK/c.jsonl") >"$WORK/js.out" || rc=$?
cat "$WORK/js.out"
[ "$rc" -le 1 ] || die "the JS checker failed to run (exit $rc)"
[ "$rc" -eq 0 ] || status=1
c_to_js_rounds=$(result_field "$WORK/js.out" RESULT rounds)
c_to_js_fail=$(result_field "$WORK/js.out" RESULT failures)
[ -n "$c_to_js_rounds" ] && [ -n "$c_to_js_fail" ] || die "no RESULT line from the JS checker"

# 4. The driver must survive malformed lines: report them, exit 1, no crash.
(cd "$INTEROP" && run node wc-rounds.mjs garbage --seed "$SEED" --out "$WORK/garbage.jsonl") ||
    die "the JS garbage generator failed"
rc=0
run "$DRIVER" --seed "$SEED" <"$WORK/garbage.jsonl" >"$WORK/garbage.out" 2>"$WORK/garbage.err" || rc=$?
garbage_ok=1
if [ "$rc" -ne 1 ] || ! grep -q '^RESULT ' "$WORK/garbage.out" || grep -q 'Sanitizer' "$WORK/garbage.err"; then
    garbage_ok=0
    status=1
    echo "wc interop: the C driver did not reject malformed input cleanly (exit $rc):" >&2
    tail -n 20 "$WORK/garbage.err" >&2
fi

failures=$((js_to_c_fail + c_to_js_fail + ${gen_errors:-0} + (1 - garbage_ok)))
[ "$js_to_c_rounds" -eq "$ROUNDS" ] || status=1
[ "$c_to_js_rounds" -eq "$ROUNDS" ] || status=1
[ "$failures" -eq 0 ] || status=1
echo "wc interop: $js_to_c_rounds rounds JS->C, $c_to_js_rounds rounds C->JS, $failures failures (seed $SEED)"
if [ "$status" -ne 0 ]; then
    echo "wc interop: FAILED; repeat with PL_TEST_SEED=$SEED" >&2
fi
exit "$status"
