#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The `pairlink uri` and `pairlink envelope` commands against the vectors:
# fields printed, vector message recovered, named errors and exit codes.
set -uo pipefail
CLI=${PL_CLI:-build/pairlink}
V=${PL_SHARED_DIR:-../shared}/vectors/walletconnect.json
fails=0; passes=0
vec() { python3 -c "import json,sys;d=json.load(open('$V'));
for k in sys.argv[1].split('.'): d=d[k]
print(d)" "$1"; }
check() { # name, expected rc, expected substring, command...
  local name=$1 want_rc=$2 want=$3; shift 3
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" = "$want_rc" ] && grep -qF -- "$want" <<<"$out"; then passes=$((passes+1))
  else fails=$((fails+1)); echo "FAIL $name: rc=$rc (want $want_rc), output:"; echo "$out" | head -20; fi
}
U=$(vec pairing_uri.formatted)
K=$(vec session_key.sym_key)
check "uri parse prints the vector's fields" 1 "relay-data:      ab cd" "$CLI" uri parse "$U"
check "uri parse names the topic mismatch" 1 "PL_ERR_URI_TOPIC_MISMATCH" "$CLI" uri parse "$U"
check "uri parse --json" 1 '"methods":["wc_sessionPropose","wc_authRequest"]' "$CLI" uri parse --json "$U"
check "uri parse expired" 1 "PL_ERR_URI_EXPIRED" "$CLI" uri parse "$U"
check "uri parse garbage" 1 "PL_ERR_URI_SCHEME" "$CLI" uri parse "http://x"
check "uri parse truncated" 1 "PL_ERR_URI_MALFORMED" "$CLI" uri parse "wc:abc"
check "uri parse bad key" 1 "PL_ERR_URI_BAD_KEY" "$CLI" uri parse "wc:$(printf 'a%.0s' {1..64})@2?relay-protocol=irn&symKey=zz"
N=$("$CLI" uri new --json --methods wc_sessionPropose --ttl 120)
NU=$(python3 -c "import json,sys;print(json.loads(sys.argv[1])['uri'])" "$N")
check "uri new then parse" 0 "valid:           yes" "$CLI" uri parse "$NU"
check "uri new ttl (120 s, or 119 across a second)" 0 '"expires_in_ms":1' "$CLI" uri parse --json "$NU"
check "uri parse --json: the uri event, times in ms" 0 '{"event":"uri","topic":' "$CLI" uri parse --json "$NU"
check "uri parse --json: expiry_ms" 0 '"expiry_ms":' "$CLI" uri parse --json "$NU"
# failures with --json: one error object on stdout, nothing on stderr
out=$("$CLI" uri parse --json "http://x" 2>/dev/null); rc=$?
if [ $rc = 1 ] && [ "$out" = '{"event":"error","code":"PL_ERR_URI_SCHEME","message":"invalid pairing URI: URI does not start with wc:"}' ] &&
   [ -z "$("$CLI" uri parse --json "http://x" 2>&1 >/dev/null)" ]; then passes=$((passes+1))
else fails=$((fails+1)); echo "FAIL uri parse --json error: rc=$rc out=$out"; fi
check "uri parse --json: expired is a uri event then an error event" 1 '"valid":false' "$CLI" uri parse --json "$U"
check "uri parse --json: ... and the error" 1 '{"event":"error","code":"PL_ERR_URI_TOPIC_MISMATCH"' "$CLI" uri parse --json "$U"
check "uri new --qr shows a QR (into a pipe only when asked: tests/cli/qr.sh)" 0 "▀" "$CLI" uri new --qr
check "uri new bad ttl" 2 "--ttl" "$CLI" uri new --ttl -5
check "envelope open type0 vector" 0 "$(vec envelopes.message)" "$CLI" envelope open --key "$K" "$(vec envelopes.type0_b64)"
check "envelope open type1 vector" 0 "$(vec envelopes.message)" "$CLI" envelope open --key "$K" "$(vec envelopes.type1_b64)"
check "envelope open type2 vector" 0 "$(vec envelopes.message)" "$CLI" envelope open "$(vec envelopes.type2_b64)"
check "envelope open type1 with receiver key" 0 "$(vec envelopes.message)" "$CLI" envelope open --receiver-priv "$(vec x25519.b_priv)" "$(vec envelopes.type1_b64)"
T=$(vec envelopes.type0_b64); TAMPERED="${T:0:20}$( [ "${T:20:1}" = A ] && echo B || echo A )${T:21}"
check "envelope open tampered" 1 "PL_ERR_DECRYPT" "$CLI" envelope open --key "$K" "$TAMPERED"
check "envelope open wrong key" 1 "PL_ERR_DECRYPT" "$CLI" envelope open --key "$(vec x25519.a_priv)" "$T"
check "envelope open garbage" 1 "PL_ERR_BAD_BASE64" "$CLI" envelope open --key "$K" "%%%"
check "envelope open bad key hex" 1 "PL_ERR_BAD" "$CLI" envelope open --key "12" "$T"
S=$("$CLI" envelope seal --key "$K" "hello pairlink")
check "envelope seal/open round trip" 0 "hello pairlink" "$CLI" envelope open --key "$K" "$S"
S1=$("$CLI" envelope seal --type 1 --sender-priv "$(vec x25519.a_priv)" --receiver-pub "$(vec x25519.b_pub)" "hi type 1")
check "envelope type1 round trip" 0 "hi type 1" "$CLI" envelope open --receiver-priv "$(vec x25519.b_priv)" "$S1"
check "envelope seal needs key" 2 "needs --key" "$CLI" envelope seal "x"
SJ=$("$CLI" envelope seal --json --key "$K" "json text")
SB=$(python3 -c 'import json,sys;o=json.loads(sys.argv[1]);assert o["event"]=="sealed" and o["type"]==0;print(o["envelope"])' "$SJ")
check "envelope --json round trip" 0 '{"event":"opened","type":0,"message":"json text","message_hex":"6a736f6e2074657874"}' "$CLI" envelope open --json --key "$K" "$SB"
check "envelope open --json: an error object" 1 '{"event":"error","code":"PL_ERR_DECRYPT"' "$CLI" envelope open --json --key "$K" "$TAMPERED"
out=$("$CLI" noise pair --json 2>&1); rc=$?
if [ $rc = 0 ] && python3 -c 'import json,sys
ev=[json.loads(l)["event"] for l in sys.stdin]
assert ev[0]=="pattern" and ev.count("handshake_message")==3 and "authcode" in ev and "session" in ev and ev.count("transport_message")==2, ev' <<<"$out"
then passes=$((passes+1)); else fails=$((fails+1)); echo "FAIL noise pair --json: rc=$rc"; echo "$out" | head; fi
check "help everywhere" 0 "usage: pairlink envelope seal" "$CLI" envelope seal --help
check "version --json" 0 '"version"' "$CLI" version --json
echo "cli uri/envelope: $passes passed, $fails failed"
[ $fails = 0 ]
