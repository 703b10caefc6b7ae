# SPDX-License-Identifier: Apache-2.0
# Shared by the relay interop tests (relay_*.sh): start and stop
# `pairlink relay` on a free 127.0.0.1 port. Sourced, not run; the name does
# not end in .sh so that CTest does not take it for a test.
#
# Uses PL_CLI (the pairlink binary; default build/pairlink) and PL_SOURCE_DIR
# (set by CTest). Every relay started here is killed when the script exits.

PL_SOURCE_DIR="${PL_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
PL_CLI="${PL_CLI:-$PL_SOURCE_DIR/build/pairlink}"
INTEROP="$PL_SOURCE_DIR/interop"
TEST_NAME="${TEST_NAME:-relay}"

die() {
    echo "$TEST_NAME: FAILED: $*" >&2
    if [ -n "${RELAY_ERR:-}" ] && [ -f "$RELAY_ERR" ]; then
        echo "---- relay log (last 40 lines) ----" >&2
        tail -n 40 "$RELAY_ERR" >&2
    fi
    exit 1
}

command -v node >/dev/null || die "node is not installed (see scripts/install-deps.sh)"
[ -x "$PL_CLI" ] || die "$PL_CLI was not built (set PL_CLI)"
for pkg in @walletconnect/sign-client @walletconnect/relay-auth ws; do
    [ -f "$INTEROP/node_modules/$pkg/package.json" ] ||
        die "$INTEROP/node_modules/$pkg is missing: run 'npm ci' in $INTEROP"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pl-$TEST_NAME.XXXXXX")
RELAY_PIDS=()

cleanup() {
    for p in "${RELAY_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# start_relay NAME [relay options...]: sets RELAY_PID, RELAY_PORT, RELAY_URL,
# RELAY_ERR (its stderr). Fails the test if it does not listen within 10 s.
start_relay() {
    local name="$1"
    shift
    RELAY_ERR="$WORK/$name.err"
    local out="$WORK/$name.out"
    "$PL_CLI" relay --listen 127.0.0.1:0 "$@" >"$out" 2>"$RELAY_ERR" &
    RELAY_PID=$!
    RELAY_PIDS+=("$RELAY_PID")
    RELAY_PORT=""
    for _ in $(seq 1 100); do
        RELAY_PORT=$(sed -n 's|^listening on ws://127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' "$out" 2>/dev/null || true)
        [ -n "$RELAY_PORT" ] && break
        kill -0 "$RELAY_PID" 2>/dev/null || die "relay $name exited at start-up"
        sleep 0.1
    done
    [ -n "$RELAY_PORT" ] || die "relay $name did not print its port within 10 s"
    RELAY_URL="ws://127.0.0.1:$RELAY_PORT"
    echo "$TEST_NAME: relay $name pid $RELAY_PID at $RELAY_URL"
}

# stop_relay: SIGTERM, expect a clean exit (status 0) within 10 s.
stop_relay() {
    kill -TERM "$RELAY_PID" 2>/dev/null || die "relay is not running"
    local rc=0
    for _ in $(seq 1 100); do
        kill -0 "$RELAY_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$RELAY_PID" 2>/dev/null && die "relay did not stop within 10 s of SIGTERM"
    wait "$RELAY_PID" || rc=$?
    [ "$rc" -eq 0 ] || die "relay exited with status $rc after SIGTERM"
    grep -q "relay info: stopped" "$RELAY_ERR" || die "relay did not log a clean stop"
}

# A sanitizer report or an assertion in the relay log fails the test.
check_relay_log() {
    if grep -E "ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:|precondition failed" "$RELAY_ERR" >/dev/null; then
        die "the relay log shows a sanitizer report or a failed precondition"
    fi
}

run_node() { # run_node TIMEOUT script args...: a hang is a failure, not a stuck test
    local t="$1"
    shift
    (cd "$INTEROP" && timeout --kill-after=5 "$t" node "$@")
}
