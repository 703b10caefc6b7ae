# SPDX-License-Identifier: Apache-2.0
# The shared harness of the CLI test scripts (wc.sh, nm.sh, nm_trust.sh,
# relay_service.sh): a temporary directory and the processes to kill at the
# end, pass/fail counters, and bounded waits. Source it after `set -uo
# pipefail`; WAIT_S (default 10) bounds every wait, WAIT_GREP (default -q)
# says how wait_for matches (-qF: a fixed string).
CLI=${PL_CLI:-build/pairlink}
WAIT_S=${WAIT_S:-10}
WAIT_GREP=${WAIT_GREP:--q}
dir=$(mktemp -d); pids=()
cleanup() { { for p in "${pids[@]}"; do kill -9 "$p"; done; wait; } 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
passes=0 fails=0
ok() { passes=$((passes + 1)); }
fail() { fails=$((fails + 1)); echo "FAIL: $*"; }
# check NAME RC SUBSTRING CMD...: exit status and a substring of stdout+stderr
check() {
  local name=$1 want_rc=$2 want=$3; shift 3
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" = "$want_rc" ] && grep -qF -- "$want" <<<"$out"; then ok
  else fail "$name: rc=$rc (want $want_rc), output:"; echo "$out" | head -20; fi
}
# wait_for FILE PATTERN: at most WAIT_S
wait_for() {
  for _ in $(seq $((WAIT_S * 20))); do grep $WAIT_GREP -- "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  return 1
}
# wait_exit PID: at most WAIT_S, then its status
wait_exit() { for _ in $(seq $((WAIT_S * 20))); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done; wait "$1"; }
# all_json FILE: every line is a JSON object with a string "event" (the
# first key when JSON_EVENT_FIRST=1), and there is at least one
all_json() {
  python3 -c 'import json,sys
n=0
for l in open(sys.argv[1]):
    o=json.loads(l); assert isinstance(o,dict) and isinstance(o.get("event"),str), l
    assert sys.argv[2]!="1" or list(o)[0]=="event", l; n+=1
assert n>0' "$1" "${JSON_EVENT_FIRST:-0}"
}
# jget FILE EVENT KEY: KEY of the first EVENT line of a --json output
jget() { python3 -c 'import json,sys
for l in open(sys.argv[1]):
    o=json.loads(l)
    if o.get("event")==sys.argv[2]: print(o[sys.argv[3]]); break' "$@"; }
# free_port: a TCP port free on 127.0.0.1 (nothing listens there)
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
