#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# QR codes of `uri new`, `wc create` and `app pair`: drawn on a terminal, not
# into a pipe unless --qr; --qr-png writes a PNG. What is drawn is decoded
# back (zbarimg) as a light- and as a dark-themed terminal would show it
# (tests/cli/lib/term2pbm.pl), and must give the URI or code printed beside.
set -uo pipefail
CLI=${PL_CLI:-build/pairlink}
S=${PL_SOURCE_DIR:-.}
T2P="$S/tests/cli/lib/term2pbm.pl"
tmp=$(mktemp -d); relay_pid=
cleanup() { [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
passed=0 fails=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
has_qr() { grep -q $'\e\[' <<<"$1" || grep -q $'\u2580' <<<"$1"; }

if command -v zbarimg >/dev/null; then zbar=1; else
    zbar=0; echo "qr: zbarimg not installed (Debian: zbar-tools): the decoding checks are skipped"
fi
decode() { zbarimg --raw -q "$1" 2>/dev/null; } # the text of the one code in image $1

# check_term NAME OUTPUT EXPECTED: the drawn code decodes to EXPECTED on both
# themes and has a 4-module quiet zone.
check_term() {
    local name="$1" out="$2" want="$3" theme q
    for theme in light dark; do
        printf '%s\n' "$out" | perl "$T2P" "$theme" >"$tmp/t.pbm" 2>"$tmp/quiet" ||
            { fail "$name: no QR code in the output"; return; }
        read -r _ q_top q_right q_bottom q_left <"$tmp/quiet"
        for q in "$q_top" "$q_right" "$q_bottom" "$q_left"; do
            [ "$q" -ge 4 ] || { fail "$name ($theme): quiet zone $q_top $q_right $q_bottom $q_left, below 4 modules"; return; }
        done
        [ $zbar = 1 ] || continue
        got=$(decode "$tmp/t.pbm")
        [ "$got" = "$want" ] || { fail "$name: on a $theme terminal the code reads '$got', not '$want'"; return; }
    done
    ok
}
# check_png NAME FILE EXPECTED
check_png() {
    local name="$1" f="$2" want="$3"
    [ -s "$f" ] || { fail "$name: $f not written"; return; }
    [ "$(head -c 8 "$f" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || { fail "$name: $f is not a PNG"; return; }
    [ "$(stat -c %a "$f")" = 600 ] || { fail "$name: $f has mode $(stat -c %a "$f"), not 600"; return; }
    if [ $zbar = 1 ]; then
        got=$(decode "$f")
        [ "$got" = "$want" ] || { fail "$name: the PNG reads '$got', not '$want'"; return; }
    fi
    ok
}

# ---- uri new (no relay needed) ----
out=$("$CLI" uri new); uri=$(grep '^wc:' <<<"$out")
if has_qr "$out"; then fail "uri new: QR code printed into a pipe"; else ok; fi
[ -n "$uri" ] && ok || fail "uri new: no URI printed"
out=$("$CLI" uri new --qr); uri=$(grep '^wc:' <<<"$out")
check_term "uri new --qr" "$out" "$uri"
out=$("$CLI" uri new --qr --no-qr)
if has_qr "$out"; then fail "uri new --qr --no-qr: the last option does not win"; else ok; fi
out=$("$CLI" uri new --qr-png "$tmp/u.png"); uri=$(grep '^wc:' <<<"$out")
check_png "uri new --qr-png" "$tmp/u.png" "$uri"
if has_qr "$out"; then fail "uri new --qr-png: QR code printed into a pipe"; else ok; fi
err=$("$CLI" uri new --qr-png "$tmp/no/such/dir/u.png" 2>&1 >/dev/null); rc=$?
[ $rc = 1 ] && grep -qF "$tmp/no/such/dir/u.png" <<<"$err" && grep -q "No such file or directory" <<<"$err" && ok ||
    fail "uri new --qr-png into a missing directory: rc=$rc, '$err'"
# On a terminal (a pseudo-terminal from script(1)) the code is drawn by default.
if command -v script >/dev/null; then
    out=$(script -qec "$CLI uri new" /dev/null | tr -d '\r'); uri=$(grep -a '^wc:' <<<"$out")
    check_term "uri new on a terminal" "$out" "$uri"
else
    echo "qr: script(1) not installed: the terminal check is skipped"
fi

# ---- wc create and app pair, on a relay of their own ----
"$CLI" relay --listen 127.0.0.1:0 >"$tmp/relay.out" 2>"$tmp/relay.err" &
relay_pid=$!
for _ in $(seq 1 100); do
    port=$(sed -n 's|^listening on ws://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$tmp/relay.out")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { echo "FAIL: the relay did not start"; cat "$tmp/relay.err"; exit 1; }
export PAIRLINK_RELAY=ws://127.0.0.1:$port

out=$("$CLI" wc create --store "$tmp/a.db" --timeout 1); uri=$(grep '^wc:' <<<"$out")
if has_qr "$out"; then fail "wc create: QR code printed into a pipe"; else ok; fi
out=$("$CLI" wc create --store "$tmp/b.db" --timeout 1 --qr --qr-png "$tmp/wc.png"); uri=$(grep '^wc:' <<<"$out")
[ -n "$uri" ] && ok || fail "wc create --qr: no URI printed"
check_term "wc create --qr" "$out" "$uri"
check_png "wc create --qr-png" "$tmp/wc.png" "$uri"
out=$("$CLI" wc create --store "$tmp/c.db" --timeout 1 --json --qr --qr-png "$tmp/wcj.png")
uri=$(sed -n 's/.*"uri":"\(wc:[^"]*\)".*/\1/p' <<<"$out" | sed 's|\\/|/|g')
bad=$(grep -cv '^{.*}$' <<<"$out")
[ "$bad" = 0 ] && ok || fail "wc create --json --qr: $bad lines that are not JSON objects"
check_png "wc create --json --qr-png" "$tmp/wcj.png" "$uri"
"$CLI" wc pair "$uri" --store "$tmp/d.db" --qr >/dev/null 2>&1; rc=$?
[ $rc = 2 ] && ok || fail "wc pair --qr: exit status $rc, not 2 (usage)"

# app pair: the code expires after 1.5 s (test-only knob), exit status 1.
export PAIRLINK_TEST_CODE_TTL_MS=1500
out=$("$CLI" app pair --store "$tmp/app1.db" 2>/dev/null); code=$(sed -n 's/^pairing code: //p' <<<"$out")
[ -n "$code" ] && ok || fail "app pair: no code printed"
if has_qr "$out"; then fail "app pair: QR code printed into a pipe"; else ok; fi
out=$("$CLI" app pair --store "$tmp/app2.db" --qr --qr-png "$tmp/app.png" 2>/dev/null)
code=$(sed -n 's/^pairing code: //p' <<<"$out")
check_term "app pair --qr" "$out" "$code"
check_png "app pair --qr-png" "$tmp/app.png" "$code"
out=$("$CLI" app pair --store "$tmp/app3.db" --json --qr --qr-png "$tmp/appj.png" 2>/dev/null)
code=$(sed -n 's/.*"event":"pair_code","pairing_code":"\([^"]*\)".*/\1/p' <<<"$out")
bad=$(grep -cv '^{.*}$' <<<"$out")
[ "$bad" = 0 ] && [ -n "$code" ] && ok || fail "app pair --json --qr: $bad non-JSON lines, code '$code'"
check_png "app pair --json --qr-png" "$tmp/appj.png" "$code"
"$CLI" node-manager pair AAAAA-AAAAA-AAAAA --store "$tmp/nm.db" --qr-png "$tmp/nm.png" >/dev/null 2>&1; rc=$?
[ $rc = 2 ] && [ ! -e "$tmp/nm.png" ] && ok || fail "node-manager pair --qr-png: exit status $rc, not 2 (usage)"

echo "qr: $passed passed, $fails failed"
[ $fails = 0 ]
