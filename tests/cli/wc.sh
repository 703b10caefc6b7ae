#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `pairlink wc ...` against `pairlink relay` on 127.0.0.1 (issue 13): the
# pong of `wc create --until-active`, `wc pair` resumed after a relay that
# was not reached, signals and exit statuses, errors a person can act on
# (store paths, relay URLs and connection failures, a ping nobody can answer
# yet), --json as one object per line, the store lock and the default store.
# Every wait is bounded.
set -uo pipefail
. "$(dirname "$0")/lib/harness.bash"

export PAIRLINK_STORE= XDG_DATA_HOME="$dir/xdg"
"$CLI" relay --listen 127.0.0.1:0 >"$dir/relay.out" 2>"$dir/relay.err" & pids+=($!)
wait_for "$dir/relay.out" "listening on" || { echo "relay did not start"; exit 1; }
R=$(sed -n 's/^listening on //p' "$dir/relay.out")
CLOSED=ws://127.0.0.1:$(free_port)

# ---- 1. bug: the pong of `wc create --until-active` leaves before it exits ----
"$CLI" wc create --until-active --relay "$R" --store "$dir/d.db" --no-qr --json --timeout 30 >"$dir/c.out" 2>"$dir/c.err" & C=$!; pids+=($C)
wait_for "$dir/c.out" '"event":"relay_connected"' || fail "wc create did not connect"
U=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    o=json.loads(l)
    if o["event"]=="uri": print(o["uri"])' "$dir/c.out")
T=${U:3:64}
check "wc pair --exit" 0 "relay_connected" "$CLI" wc pair "$U" --relay "$R" --store "$dir/w.db" --exit --timeout 10
check "the wallet's ping gets the pong of --until-active" 0 "pong" "$CLI" wc ping "$T" --relay "$R" --store "$dir/w.db" --timeout 10
wait_exit $C; rc=$?
[ $rc = 0 ] && ok || fail "wc create --until-active exit status $rc"
grep -q '"event":"activated"' "$dir/c.out" && ok || fail "wc create: no activated event"
all_json "$dir/c.out" && ok || fail "wc create --json: a line that is not a JSON event"

# ---- 2. bug: a `wc pair` that did not reach the relay is resumed ----
U2=$("$CLI" uri new --no-qr | grep '^wc:'); T2=${U2:3:64}
check "pair: relay refused, named with its URL and why" 1 "relay $CLOSED not reached within 2 s: cannot connect to 127.0.0.1 port ${CLOSED##*:}" \
  "$CLI" wc pair "$U2" --relay "$CLOSED" --store "$dir/w.db" --exit --timeout 2
check "pair: the retry resumes the stored pairing" 0 "resumed topic=\"$T2\"" \
  "$CLI" wc pair "$U2" --relay "$R" --store "$dir/w.db" --exit --timeout 10
check "pair: the proposer's own URI is refused with the reason" 1 "created this pairing" \
  "$CLI" wc pair "$U" --relay "$R" --store "$dir/d.db" --exit --timeout 10

# ---- signals: one line, 130 on SIGINT; SIGTERM 0 while serving, 143 while waiting ----
U3=$("$CLI" uri new --no-qr | grep '^wc:')
"$CLI" wc pair "$U3" --relay "$CLOSED" --store "$dir/s.db" >"$dir/s.out" 2>"$dir/s.err" & S=$!; pids+=($S)
wait_for "$dir/s.out" relay_disconnected || fail "wc pair: no relay_disconnected line"
kill -INT $S; wait_exit $S; rc=$?
[ $rc = 130 ] && ok || fail "wc pair: SIGINT exit status $rc, not 130"
[ "$(wc -l <"$dir/s.err")" = 1 ] && grep -q "pairlink wc pair: interrupted (SIGINT)" "$dir/s.err" && ok ||
  { fail "wc pair: SIGINT should print one line"; cat "$dir/s.err"; }
"$CLI" wc run --relay "$R" --store "$dir/w.db" --json >"$dir/run.out" 2>&1 & W=$!; pids+=($W)
wait_for "$dir/run.out" relay_connected || fail "wc run did not connect"
# a ping beside the serving command of the same store (no lock for it)
check "ping beside wc run" 0 "pong" "$CLI" wc ping "$T" --relay "$R" --store "$dir/d.db" --timeout 10
# ---- 4. the lock: two serving commands never share a store ----
check "lock: a second serving command is refused, naming the first" 1 "is in use by process $W (pairlink wc run" \
  "$CLI" wc create --relay "$R" --store "$dir/w.db" --no-qr --timeout 5
check "lock: --json error" 1 '"code":"PL_ERR_STORE_LOCKED"' \
  "$CLI" wc pair "$U2" --relay "$R" --store "$dir/w.db" --json --timeout 5
kill -TERM $W; wait_exit $W; rc=$?
[ $rc = 0 ] && ok || fail "wc run: SIGTERM exit status $rc, not 0"
grep -q '"event":"stopped","signal":"SIGTERM"' "$dir/run.out" && ok || fail "wc run --json: no stopped event"
check "the lock goes with the process" 0 "restored" "$CLI" wc run --relay "$R" --store "$dir/w.db" --timeout 1

# ---- 2. a ping nobody can answer yet says so ----
"$CLI" wc create --relay "$R" --store "$dir/p.db" --no-qr --json --timeout 60 >"$dir/p.out" 2>&1 & P=$!; pids+=($P)
wait_for "$dir/p.out" '"event":"uri"' || fail "wc create (p) printed no uri"
TP=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    o=json.loads(l)
    if o["event"]=="uri": print(o["topic"])' "$dir/p.out")
kill -TERM $P; wait_exit $P
check "ping of an unjoined pairing: waiting for the peer" 1 "waiting for the peer" \
  "$CLI" wc ping "$TP" --relay "$R" --store "$dir/p.db" --timeout 2
check "ping of an unjoined pairing: the time-out says why" 1 "the peer has not joined this pairing" \
  "$CLI" wc ping "$TP" --relay "$R" --store "$dir/p.db" --timeout 2
"$CLI" wc ping "$TP" --relay "$R" --store "$dir/p.db" --timeout 30 >"$dir/pt.out" 2>&1 & P=$!; pids+=($P)
wait_for "$dir/pt.out" waiting || fail "wc ping: no waiting line"
kill -TERM $P; wait_exit $P; rc=$?
[ $rc = 143 ] && ok || fail "wc ping: SIGTERM while waiting gives $rc, not 143"
check "ping of an unknown topic" 1 "no pairing $(printf 'a%.0s' {1..64}) in store" \
  "$CLI" wc ping "$(printf 'a%.0s' {1..64})" --relay "$R" --store "$dir/p.db" --timeout 2

# ---- 2. relay failures say the URL and why ----
check "bad --relay is a relay error" 1 "relay http://x: malformed relay URL" "$CLI" wc run --relay http://x --store "$dir/r1.db"
check "DNS" 1 "cannot resolve nonexistent.invalid" "$CLI" wc pair "$U3" --relay ws://nonexistent.invalid:1 --store "$dir/r2.db" --exit --timeout 3
check "TLS" 1 "TLS handshake with 127.0.0.1 port ${R##*:} failed" "$CLI" wc pair "$U3" --relay "wss://${R#ws://}" --store "$dir/r3.db" --exit --timeout 3
"$CLI" relay --listen 127.0.0.1:0 --require-auth --public-url ws://elsewhere.invalid:1 >"$dir/relay2.out" 2>/dev/null & pids+=($!)
wait_for "$dir/relay2.out" "listening on" || fail "relay 2 did not start"
R2=$(sed -n 's/^listening on //p' "$dir/relay2.out")
check "401: the relay refused our authentication" 1 "relay $R2: the relay refused our authentication (HTTP 401) (PL_ERR_RELAY_AUTH)" \
  "$CLI" wc run --relay "$R2" --store "$dir/r4.db" --timeout 10

# ---- 2. store failures name the path, the cause and the fix ----
mkdir "$dir/adir"
check "store is a directory" 1 "store $dir/adir is a directory" "$CLI" wc run --relay "$R" --store "$dir/adir" --timeout 1
check "store's directory is missing" 1 "the directory $dir/nodir does not exist" "$CLI" wc run --relay "$R" --store "$dir/nodir/x.db" --timeout 1
cp "$dir/w.db" "$dir/open.db"; chmod 644 "$dir/open.db"
check "store readable by others: the chmod that fixes it" 1 "run 'chmod 600 $dir/open.db'" "$CLI" wc run --relay "$R" --store "$dir/open.db" --timeout 1
check "wc list: same" 1 "(mode 0644)" "$CLI" wc list --store "$dir/open.db"
printf 'not a database at all, not at all............................................................' >"$dir/junk.db"; chmod 600 "$dir/junk.db"
check "not a store" 1 "is not a pairlink store" "$CLI" wc list --store "$dir/junk.db"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  # permissions mean nothing to root: run those as nobody
  as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
  pdir=$(mktemp -d /tmp/pl-wc-perm.XXXXXX); chmod 755 "$pdir"
  cp "$dir/w.db" "$pdir/ro.db"; chown 65534 "$pdir/ro.db"; chmod 400 "$pdir/ro.db"
  cp "$dir/w.db" "$pdir/none.db"; chown 65534 "$pdir/none.db"; chmod 000 "$pdir/none.db"
  if as_nobody "$CLI" --version >/dev/null 2>&1; then
    check "read-only store" 1 "store $pdir/ro.db cannot be opened for reading and writing: Permission denied" \
      as_nobody "$CLI" wc list --store "$pdir/ro.db"
    check "mode 000 store" 1 "store $pdir/none.db cannot be opened for reading and writing: Permission denied" \
      as_nobody "$CLI" wc list --store "$pdir/none.db"
  else
    echo "wc: $CLI cannot run as nobody here: the permission checks are skipped"
  fi
  rm -rf "$pdir"
else
  echo "wc: not root or no setpriv: the read-only and mode 000 checks are skipped"
fi

# ---- 3. --json: one object per line, errors included ----
"$CLI" wc list --store "$dir/w.db" --json >"$dir/l.out"; rc=$?
[ $rc = 0 ] && all_json "$dir/l.out" && [ "$(grep -c '"event":"pairing"' "$dir/l.out")" = 2 ] && ok ||
  { fail "wc list --json: one pairing object per line"; cat "$dir/l.out"; }
grep -q '"expiry_ms":[0-9]*000,' "$dir/l.out" && ok || fail "wc list --json: expiry_ms in ms"
"$CLI" wc list --store "$dir/missing.db" --json >"$dir/e.out" 2>"$dir/e.err"; rc=$?
[ $rc = 1 ] && all_json "$dir/e.out" && grep -q '^{"event":"error","code":"PL_ERR_NOT_FOUND","message":"no store at ' "$dir/e.out" &&
  [ ! -s "$dir/e.err" ] && ok || { fail "wc list --json error object"; cat "$dir/e.out" "$dir/e.err"; }

# ---- 4. read-only commands never create a store; the default location ----
check "wc list: a --store that does not exist" 1 "no store at $dir/missing.db" "$CLI" wc list --store "$dir/missing.db"
[ ! -e "$dir/missing.db" ] && ok || fail "wc list created the store it was to read"
check "wc ping: a --store that does not exist" 1 "no store at $dir/missing.db" "$CLI" wc ping "$T" --store "$dir/missing.db"
check "wc list: no default store yet" 0 "no pairings" "$CLI" wc list
[ ! -e "$XDG_DATA_HOME/pairlink" ] && ok || fail "wc list created the data directory"
check "the default store is under XDG_DATA_HOME" 0 "restored" "$CLI" wc run --relay "$R" --timeout 1
[ -f "$XDG_DATA_HOME/pairlink/wc.db" ] && [ "$(stat -c %a "$XDG_DATA_HOME/pairlink")" = 700 ] && ok ||
  fail "no $XDG_DATA_HOME/pairlink/wc.db (directory 0700)"
check "PAIRLINK_STORE wins" 1 "no store at $dir/env.db" env PAIRLINK_STORE="$dir/env.db" "$CLI" wc list

echo "cli wc: $passes passed, $fails failed"
[ $fails = 0 ]
