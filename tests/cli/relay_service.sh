#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `pairlink relay` as a service (issue 13, mosquitto as the anchor): the
# --config file and the command line over it, errors with file:line,
# SIGHUP (reload, nothing to reload, a bad file that keeps the running
# settings), the JSON log, several listeners and IPv6, the allow-list of
# client keys (401, then admitted after a reload of --allow-file), and
# GET /health and /metrics whose values move after traffic. Every wait is
# bounded; everything runs on loopback.
set -uo pipefail
WAIT_GREP=-qF
. "$(dirname "$0")/lib/harness.bash"
# wait_count FILE PATTERN N: at most 10 s until PATTERN is on N lines
wait_count() { for _ in $(seq 200); do [ "$(grep -cF -- "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0; sleep 0.05; done; return 1; }
# start NAME ARGS...: a relay; sets PID and PORT (of its first listener)
start() {
  local name=$1; shift
  "$CLI" relay "$@" >"$dir/$name.out" 2>"$dir/$name.err" & PID=$!; pids+=($PID)
  wait_for "$dir/$name.out" "listening on" || { fail "$name did not start"; cat "$dir/$name.err"; return 1; }
  PORT=$(sed -n '1s|^listening on wss\{0,1\}://.*:\([0-9]*\)$|\1|p' "$dir/$name.out")
}
# stop PID: SIGTERM, a clean exit (status 0)
stop() { kill -TERM "$1"; wait_exit "$1"; local rc=$?; [ $rc = 0 ] || fail "relay $1: exit status $rc after SIGTERM"; return $rc; }
status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
# metric URL SERIES: the value of one sample
metric() { curl -s "$1" | awk -v s="$2" '$1 == s { print $2 }'; }

command -v curl >/dev/null || { echo "relay_service: curl is not installed: skipped"; exit 0; }

# ---- --config: keys = the flags; the command line wins ----
cat >"$dir/relay.conf" <<EOF
# mosquitto.conf style: KEY VALUE or KEY = VALUE, # comments
listen 127.0.0.1:0
health = off
metrics off
log-format json
rate-limit 50
EOF
start cfg --config "$dir/relay.conf" --metrics on || exit 1
[ "$(status "http://127.0.0.1:$PORT/health")" = 404 ] && ok || fail "health off in the file: not 404"
[ "$(status "http://127.0.0.1:$PORT/metrics")" = 200 ] && ok || fail "--metrics on over the file: not 200"
# the log is JSON, one object per line with ts, level, msg
kill -USR1 $PID; wait_for "$dir/cfg.err" '"msg":"stats:' || fail "no stats line"
python3 - "$dir/cfg.err" <<'EOF' && ok || fail "--log-format json: a line is not a JSON object with ts, level, msg"
import json, sys
n = stats = 0
for line in open(sys.argv[1]):
    o = json.loads(line)
    assert isinstance(o, dict) and {"ts", "level", "msg"} <= o.keys(), line
    n += 1
    if o["msg"].startswith("stats:"):  # the event's fields beside the words
        assert o["connections"] == 0 and isinstance(o["memory"], int), line
        stats += 1
assert n >= 2 and stats == 1
EOF

# ---- SIGHUP: what changes live, what needs a restart, a bad file ----
cat >"$dir/relay.conf" <<EOF
listen 127.0.0.1:1
health loopback
metrics off
log-format json
rate-limit 60
EOF
kill -HUP $PID
wait_for "$dir/cfg.err" '"msg":"reloaded' || fail "no reload line"
grep -F '"msg":"reloaded' "$dir/cfg.err" | grep -qF 'changed: rate-limit health; needs a restart (not applied): listen' && ok ||
  { fail "the reload line does not say what changed"; grep reloaded "$dir/cfg.err"; }
[ "$(status "http://127.0.0.1:$PORT/health")" = 200 ] && ok || fail "health loopback after the reload: not 200"
[ "$(status "http://127.0.0.1:$PORT/metrics")" = 200 ] && ok || fail "the command line's --metrics on was lost at the reload"
printf 'rate-limit 60\nmax-conn 5\n' >"$dir/relay.conf"
kill -HUP $PID
wait_for "$dir/cfg.err" 'reload failed' || fail "a bad file at reload: no log line"
grep -F 'reload failed' "$dir/cfg.err" | grep -qF "the running settings stay: $dir/relay.conf:2: unknown key 'max-conn'" && ok ||
  { fail "the failed reload does not name file:line"; grep 'reload failed' "$dir/cfg.err"; }
kill -0 $PID 2>/dev/null && ok || fail "a bad file at reload killed the relay"
[ "$(status "http://127.0.0.1:$PORT/health")" = 200 ] && ok || fail "the running settings did not stay"
[ "$(metric "http://127.0.0.1:$PORT/metrics" 'pairlink_relay_reloads_total{result="ok"}')" = 1 ] && ok || fail "reloads_total ok"
[ "$(metric "http://127.0.0.1:$PORT/metrics" 'pairlink_relay_reloads_total{result="failed"}')" = 1 ] && ok || fail "reloads_total failed"
stop $PID && ok

# ---- errors: named, with file:line ----
printf 'listen 127.0.0.1:0\n\nmax-con 5\n' >"$dir/bad.conf"
check "unknown key" 1 "pairlink relay: $dir/bad.conf:3: unknown key 'max-con' (PL_ERR_CONFIG_KEY)" \
  "$CLI" relay --config "$dir/bad.conf"
printf 'max-conns = many\n' >"$dir/bad.conf"
check "bad value" 1 "$dir/bad.conf:1: max-conns: wants 1..100000000, got 'many' (PL_ERR_CONFIG_VALUE)" \
  "$CLI" relay --config "$dir/bad.conf"
check "missing file" 1 "$dir/none.conf: cannot read: No such file or directory (PL_ERR_IO)" \
  "$CLI" relay --config "$dir/none.conf"
check "bad flag" 2 "--log-level wants error, warn, info or debug, got 'loud'" "$CLI" relay --log-level loud
check "allow-list without auth" 1 "need require-auth" \
  "$CLI" relay --allow did:key:z6MkodHZwneVRShtaLf8JKYkxpDGp1vGZnpGmdBpX8M2exxH
check "IPv6 wants brackets" 2 "wants HOST:PORT or [IPV6]:PORT" "$CLI" relay --listen ::1:0

# ---- without --config SIGHUP says there is nothing to reload, and lives ----
# (empty values count as not given: what the systemd unit passes by default)
start plain --config "" --listen "" --listen 127.0.0.1:0 --allow-file "" || exit 1
kill -HUP $PID
wait_for "$dir/plain.err" "SIGHUP: nothing to reload" && ok || fail "SIGHUP without --config: no log line"
kill -0 $PID 2>/dev/null && ok || fail "SIGHUP killed the relay"
R="ws://127.0.0.1:$PORT"

# ---- /metrics moves after traffic (a pairing, a ping and its pong) ----
M="http://127.0.0.1:$PORT/metrics"
p0=$(metric "$M" pairlink_relay_publishes_total) d0=$(metric "$M" pairlink_relay_deliveries_total)
[ "$p0" = 0 ] && ok || fail "publishes before traffic: '$p0'"
m=$(curl -s "$M")
grep -q '^# TYPE pairlink_relay_refusals_total counter$' <<<"$m" && ok || fail "no refusals_total family"
grep -q '^pairlink_relay_refusals_total{kind="jsonrpc",code="-32602"} 0$' <<<"$m" && ok || fail "no refusals by code"
export PAIRLINK_STORE= XDG_DATA_HOME="$dir/xdg"
"$CLI" wc create --until-active --relay "$R" --store "$dir/d.db" --no-qr --json --timeout 30 >"$dir/c.out" 2>&1 & C=$!; pids+=($C)
wait_for "$dir/c.out" '"event":"uri"' || fail "wc create printed no uri"
U=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    o=json.loads(l)
    if o["event"]=="uri": print(o["uri"])' "$dir/c.out")
T=${U:3:64}
check "wc pair" 0 "relay_connected" "$CLI" wc pair "$U" --relay "$R" --store "$dir/w.db" --exit --timeout 10
check "wc ping" 0 "pong" "$CLI" wc ping "$T" --relay "$R" --store "$dir/w.db" --timeout 10
wait_exit $C
p1=$(metric "$M" pairlink_relay_publishes_total) d1=$(metric "$M" pairlink_relay_deliveries_total)
[ "${p1:-0}" -gt "$p0" ] && ok || fail "publishes_total did not move ($p0 -> $p1)"
[ "${d1:-0}" -gt "$d0" ] && ok || fail "deliveries_total did not move ($d0 -> $d1)"
[ "$(metric "$M" pairlink_relay_topics)" -ge 1 ] && ok || fail "no topic counted"
[ "$(metric "$M" pairlink_relay_stored_messages)" -ge 1 ] && ok || fail "no stored message counted"
[ "$(metric "$M" process_resident_memory_bytes)" -gt 1000000 ] && ok || fail "process RSS"
h=$(curl -s "http://127.0.0.1:$PORT/health")
python3 -c 'import json,sys; o=json.loads(sys.argv[1]); assert o["status"]=="ok" and o["uptime_s"]>=0 and "connections" in o' "$h" && ok ||
  fail "health body: $h"
# no JWT, no message body in the debug log
stop $PID
start dbg --listen 127.0.0.1:0 --log-level debug || exit 1
check "wc pair (debug relay)" 0 "relay_connected" "$CLI" wc pair "$U" --relay "ws://127.0.0.1:$PORT" --store "$dir/w.db" --exit --timeout 10
check "wc ping (debug relay)" 1 "" "$CLI" wc ping "$T" --relay "ws://127.0.0.1:$PORT" --store "$dir/w.db" --timeout 2
grep -q 'irn_publish' "$dir/dbg.err" && ok || fail "the debug log shows no publish frame"
grep -q '"message":"<[0-9]* bytes>"' "$dir/dbg.err" && ok || fail "the debug log does not show bodies as their size"
grep -qE '"message":"[A-Za-z0-9+/=]{20}|eyJ[A-Za-z0-9_-]{10}' "$dir/dbg.err" && fail "a message body or JWT is in the debug log" || ok
stop $PID

# ---- the allow-list: 401 with a log line, admitted after a reload of --allow-file ----
echo "did:key:z6MkodHZwneVRShtaLf8JKYkxpDGp1vGZnpGmdBpX8M2exxH" >"$dir/allow.txt"
start auth --listen 127.0.0.1:0 --require-auth --allow-file "$dir/allow.txt" || exit 1
RA="ws://127.0.0.1:$PORT"
U4=$("$CLI" uri new --no-qr | grep '^wc:')
check "a key not in the allow-list: 401" 1 "HTTP 401" "$CLI" wc pair "$U4" --relay "$RA" --store "$dir/a.db" --exit --timeout 3
wait_for "$dir/auth.err" "is not in the allow-list (PL_ERR_RELAY_NOT_ALLOWED)" && ok || fail "no allow-list log line"
DID=$(sed -n 's/.*refused connection from [^ ]*: \(did:key:z[1-9A-HJ-NP-Za-km-z]*\) is not in the allow-list.*/\1/p' "$dir/auth.err" | head -1)
[ -n "$DID" ] && ok || fail "the refusal does not name the key"
[ "$(metric "http://127.0.0.1:$PORT/metrics" pairlink_relay_not_allowed_total)" -ge 1 ] && ok || fail "not_allowed_total"
echo "$DID" >>"$dir/allow.txt"
kill -HUP $PID
wait_for "$dir/auth.err" "reloaded $dir/allow.txt: changed: allow" && ok || { fail "allow-file reload"; tail -3 "$dir/auth.err"; }
check "listed after the reload: admitted" 0 "relay_connected" "$CLI" wc pair "$U4" --relay "$RA" --store "$dir/a.db" --exit --timeout 10
grep -qF "open from 127.0.0.1 ($DID)" "$dir/auth.err" && ok || fail "the admitted connection is not logged with its key"
stop $PID

# ---- several listeners; IPv6 ----
if python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null; then
  start six --listen 127.0.0.1:0 --listen '[::1]:0' || exit 1
  [ "$(grep -c '^listening on ' "$dir/six.out")" = 2 ] && ok || fail "not one listening line per listener"
  P6=$(sed -n 's|^listening on ws://\[::1\]:\([0-9]*\)$|\1|p' "$dir/six.out")
  [ -n "$P6" ] && ok || fail "no [::1] listening line"
  [ "$(status -g "http://[::1]:$P6/health")" = 200 ] && ok || fail "health over ::1"
  [ "$(status "http://127.0.0.1:$PORT/health")" = 200 ] && ok || fail "health over 127.0.0.1 beside ::1"
  # the IPv4 listener is not on ::1 and the other way round
  [ "$(status -g "http://[::1]:$PORT/health")" = 000 ] && ok || fail "the IPv4 listener answers on ::1"
  check "wc pair over the second listener" 0 "relay_connected" \
    "$CLI" wc pair "$("$CLI" uri new --no-qr | grep '^wc:')" --relay "ws://[::1]:$P6" --store "$dir/six.db" --exit --timeout 10
  stop $PID
else
  echo "relay_service: no IPv6 loopback (::1) on this machine: the IPv6 listener checks are skipped"
fi

# ---- /health and /metrics over TLS ----
if command -v openssl >/dev/null; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1
  start tls --listen 127.0.0.1:0 --tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem" || exit 1
  [ "$(status -k "https://127.0.0.1:$PORT/health")" = 200 ] && ok || fail "health over TLS"
  m=$(curl -sk "https://127.0.0.1:$PORT/metrics")
  grep -q '^pairlink_relay_connections 0$' <<<"$m" && ok || fail "metrics over TLS"
  stop $PID
fi

# a sanitizer report or a failed precondition in any relay's log fails the test
if grep -lE "ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:|precondition failed" "$dir"/*.err; then
  fail "a relay log shows a sanitizer report or a failed precondition"
fi
echo "relay_service: $passes passed, $fails failed"
[ "$fails" = 0 ]
