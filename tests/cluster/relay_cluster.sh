#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Several `pairlink relay --cluster` instances over one NATS JetStream
# cluster (issue 14): three nats-server nodes (JetStream, streams R3, store
# in a temp dir) and three relay instances, all on 127.0.0.1 with free ports.
#   - an instance subscribes NATS only to the topics its clients subscribe to;
#   - the JS SDK's Sign flow with the dapp on instance 1, the wallet on 2;
#   - published on 1 with nobody subscribed: replayed to a subscriber on 3,
#     irn_fetchMessages on 2 gives the same; live from 2 to 3;
#   - a ttl 10 s message is gone everywhere after 11 s;
#   - the mailbox limit holds across instances (-32000); a full topic keeps
#     flowing when every subscriber, on any instance, acknowledged its oldest
#     messages, and stays whole while one is behind;
#   - 2000 publishes on 1 with the subscriber on 2; kill -9 of instance 2:
#     the subscriber moves to 3 and receives every acknowledged message;
#   - the same with kill -9 of the stream's JetStream leader: 0 lost;
#   - a second node killed (no quorum): a publish is answered -32603;
#   - the last node killed: /health answers 503 cluster_disconnected and a
#     publish is answered -32603.
# Exit 77 (skipped) without nats-server or without a libnats build. Run by
# CTest (label cluster); everything stops by itself (timeouts, trap).
set -euo pipefail
TEST_NAME=relay_cluster
source "$(dirname "$0")/../interop/relay-common.bash"

command -v nats-server >/dev/null || {
    echo "$TEST_NAME: SKIPPED: nats-server is not installed (apt-get install nats-server)"
    exit 77
}
if timeout 10 "$PL_CLI" relay --cluster nats://127.0.0.1:9 --listen 127.0.0.1:0 2>&1 |
    grep -q PL_ERR_NO_CLUSTER; then
    echo "$TEST_NAME: SKIPPED: pairlink was built without libnats (apt-get install libnats-dev)"
    exit 77
fi

LIMIT=2500 # --mailbox-limit of every instance (the streams' MaxMsgsPerSubject)
NATS_PIDS=()
cleanup_nats() {
    for p in "${NATS_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}
trap 'cleanup_nats; cleanup' EXIT

# Nine free ports: client, route and monitoring port of each node.
read -r -a PORTS <<<"$(node -e '
const net = require("net");
(async () => {
  const s = [];
  for (let i = 0; i < 9; i++) {
    const srv = net.createServer();
    await new Promise((r) => srv.listen(0, "127.0.0.1", r));
    s.push(srv);
  }
  console.log(s.map((x) => x.address().port).join(" "));
  s.forEach((x) => x.close());
})();')"
ROUTES="nats-route://127.0.0.1:${PORTS[3]},nats-route://127.0.0.1:${PORTS[4]},nats-route://127.0.0.1:${PORTS[5]}"
start_nats() { # start_nats I (1..3)
    local i=$1 c=${PORTS[$(($1 - 1))]} r=${PORTS[$(($1 + 2))]} m=${PORTS[$(($1 + 5))]}
    mkdir -p "$WORK/n$i"
    cat >"$WORK/n$i.conf" <<EOF
server_name: n$i
listen: 127.0.0.1:$c
http: 127.0.0.1:$m
jetstream { store_dir: "$WORK/n$i/js", max_memory_store: 64MB, max_file_store: 1GB }
cluster { name: pltest, listen: 127.0.0.1:$r, routes: [ $ROUTES ] }
EOF
    nats-server -c "$WORK/n$i.conf" >"$WORK/n$i.log" 2>&1 &
    NATS_PID[$i]=$!
    NATS_PIDS+=("$!")
}
declare -a NATS_PID
for i in 1 2 3; do start_nats $i; done
NATS_URLS="nats://127.0.0.1:${PORTS[0]},nats://127.0.0.1:${PORTS[1]},nats://127.0.0.1:${PORTS[2]}"

# monitor I PATH: GET a node's monitoring endpoint (JSON on stdout).
monitor() {
    node -e 'fetch(process.argv[1]).then((r) => r.text()).then((t) => console.log(t)).catch(() => process.exit(1))' \
        "http://127.0.0.1:${PORTS[$(($1 + 5))]}$2"
}
# JetStream ready: a meta leader elected.
for _ in $(seq 1 100); do
    monitor 1 /jsz 2>/dev/null | grep -Eq '"leader": *"n' && break
    sleep 0.2
done
monitor 1 /jsz | grep -Eq '"leader": *"n' || die "the NATS cluster elected no JetStream leader in 20 s"
echo "$TEST_NAME: NATS cluster up ($NATS_URLS)"

declare -a PID URL ERR
# start_relay of relay-common.bash, but a start-up failure is returned (the
# streams can be refused while the cluster settles) instead of failing.
start_relay_try() {
    local name="$1"
    shift
    RELAY_ERR="$WORK/$name.err"
    local out="$WORK/$name.out"
    : >"$out"
    "$PL_CLI" relay --listen 127.0.0.1:0 "$@" >"$out" 2>"$RELAY_ERR" &
    RELAY_PID=$!
    RELAY_PORT=""
    for _ in $(seq 1 100); do
        RELAY_PORT=$(sed -n 's|^listening on ws://127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' "$out")
        [ -n "$RELAY_PORT" ] && break
        kill -0 "$RELAY_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    [ -n "$RELAY_PORT" ] || return 1
    RELAY_PIDS+=("$RELAY_PID")
    RELAY_URL="ws://127.0.0.1:$RELAY_PORT"
}
start_instance() { # start_instance I
    local i=$1 ok=""
    for _ in 1 2 3 4 5; do # stream creation can fail while the cluster settles
        if start_relay_try "r$i" --cluster "$NATS_URLS" --instance-id "r$i" --rate-limit 0 \
            --mailbox-limit $LIMIT --require-auth; then
            ok=1
            break
        fi
        sleep 1
    done
    [ -n "$ok" ] || { RELAY_ERR="$WORK/r$i.err"; die "instance $i did not start"; }
    PID[$i]=$RELAY_PID
    URL[$i]=$RELAY_URL
    ERR[$i]=$RELAY_ERR
    echo "$TEST_NAME: instance $i pid ${PID[$i]} at ${URL[$i]}"
}
for i in 1 2 3; do start_instance $i; done

# A second relay with instance 1's id is refused at start (it would drop
# instance 1's live deliveries as its own): exit 1 and a line that says so.
"$PL_CLI" relay --listen 127.0.0.1:0 --cluster "$NATS_URLS" --instance-id r1 \
    >"$WORK/dup.out" 2>"$WORK/dup.err" &
DUP_PID=$!
for _ in $(seq 1 300); do kill -0 $DUP_PID 2>/dev/null || break; sleep 0.1; done
if kill -0 $DUP_PID 2>/dev/null; then kill -9 $DUP_PID; cat "$WORK/dup.err" "$WORK/dup.out"; die "a relay with a duplicate --instance-id runs"; fi
dup_rc=0
wait $DUP_PID || dup_rc=$?
[ $dup_rc = 1 ] && grep -q "instance id r1 is in use by another relay" "$WORK/dup.err" ||
    { cat "$WORK/dup.err"; die "duplicate --instance-id: exit $dup_rc"; }
echo "$TEST_NAME: a duplicate --instance-id is refused"

topic() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
cluster_node() { # cluster_node TIMEOUT_S CMD ARGS...: relay-cluster.mjs
    local t=$1
    shift
    (cd "$INTEROP" && timeout "$t" node relay-cluster.mjs "$@")
}

# TTL in the background (it waits 11 s), checked at the end.
TTL_TOPIC=$(topic)
cluster_node 40 ttl "${URL[1]}" "${URL[3]}" "$TTL_TOPIC" >"$WORK/ttl.out" 2>&1 &
TTL_PID=$!

# 1. Interest: while a client of instance 1 subscribes to topic A, the NATS
# connection of instance 1 (and only it) has live.irn.*.A.
A=$(topic)
cluster_node 20 subscribe "${URL[1]}" "$A" 3000 >"$WORK/sub.out" 2>&1 &
SUB_PID=$!
for _ in $(seq 1 50); do grep -q SUBSCRIBED "$WORK/sub.out" && break; sleep 0.1; done
grep -q SUBSCRIBED "$WORK/sub.out" || die "the interest client did not subscribe"
: >"$WORK/connz"
for i in 1 2 3; do monitor $i '/connz?subs=1' >>"$WORK/connz"; done
interest=$(node -e '
const fs = require("fs");
const docs = fs.readFileSync(process.argv[1], "utf8").trim().split(/\n(?=\{)/).map(JSON.parse);
const who = new Set();
for (const d of docs)
  for (const c of d.connections || [])
    if ((c.subscriptions_list || []).includes(`live.irn.*.${process.argv[2]}`)) who.add(c.name);
console.log([...who].sort().join(","));' "$WORK/connz" "$A")
[ "$interest" = "pairlink-relay r1" ] || die "NATS interest in topic A: '$interest' (want instance 1 only)"
wait $SUB_PID || true
echo "STEP interest ok"

# 2. The JS Sign flow, dapp on instance 1, wallet on instance 2.
rc=0
(cd "$INTEROP" && RELAY_URL="${URL[1]}" WALLET_RELAY_URL="${URL[2]}" timeout 150 node relay-signflow.mjs) \
    >"$WORK/flow.out" 2>"$WORK/flow.err" || rc=$?
if [ $rc -ne 0 ] || ! grep -qx "SIGNFLOW OK" "$WORK/flow.out"; then
    cat "$WORK/flow.out"
    sed -n '1,30p' "$WORK/flow.err" >&2
    RELAY_ERR=${ERR[2]}
    die "the JS Sign flow across instances 1 and 2 failed (exit $rc)"
fi
grep -q "open from 127.0.0.1 (did:key:z6Mk" "${ERR[1]}" || die "the dapp did not use instance 1"
grep -q "open from 127.0.0.1 (did:key:z6Mk" "${ERR[2]}" || die "the wallet did not use instance 2"
echo "STEP signflow across instances ok"

# 3. Replay on 3, fetch on 2, live 2 -> 3.
cluster_node 30 replay "${URL[1]}" "${URL[2]}" "${URL[3]}" "$(topic)" >"$WORK/replay.out" 2>&1 ||
    { cat "$WORK/replay.out"; die "replay / fetch across instances"; }
cat "$WORK/replay.out"

# 4. The mailbox limit across instances.
cluster_node 60 mailbox "${URL[1]}" "${URL[2]}" "$(topic)" $LIMIT >"$WORK/mailbox.out" 2>&1 ||
    { cat "$WORK/mailbox.out"; die "mailbox limit across instances"; }
cat "$WORK/mailbox.out"

# 4b. A full topic keeps flowing across instances, as on one relay, and a
# subscriber behind (on another instance) keeps it whole.
cluster_node 120 full "${URL[1]}" "${URL[2]}" "${URL[3]}" "$(topic)" "$(topic)" $LIMIT \
    >"$WORK/full.out" 2>&1 || { cat "$WORK/full.out"; RELAY_ERR=${ERR[1]}; die "a full topic across instances"; }
cat "$WORK/full.out"
# The operator sees it: instance 1 asked, the others answered, 2 others are here.
metrics() { node -e 'fetch(process.argv[1]).then((r) => r.text()).then((t) => console.log(t)).catch(() => process.exit(1))' "${1/ws:/http:}/metrics"; }
m1=$(metrics "${URL[1]}")
grep -q '^pairlink_relay_cluster_instances 2$' <<<"$m1" || die "instance 1 does not count the 2 others"
grep -Eq '^pairlink_relay_cluster_rooms_total\{result="answered"\} [1-9]' <<<"$m1" || die "instance 1 asked no room"
grep -Eq '^pairlink_relay_evictions_total [1-9]' <<<"$m1" || die "instance 1 evicted nothing"
grep -Eq '^pairlink_relay_cluster_rooms_answered_total [1-9]' <<<"$(metrics "${URL[2]}")" ||
    die "instance 2 answered no room"
echo "STEP full topic across instances ok"

# 5. kill -9 of instance 2 under 2000 publishes.
cluster_node 90 stream "${URL[1]}" "${URL[2]}" "${URL[3]}" "$(topic)" 2000 "${PID[2]}" \
    >"$WORK/stream.out" 2>&1 || { cat "$WORK/stream.out"; die "kill -9 of a relay instance lost messages"; }
cat "$WORK/stream.out"
grep -q "MOVED true" "$WORK/stream.out" || die "the subscriber never moved to instance 3"
wait "${PID[2]}" 2>/dev/null || true
# The others stop counting instance 2 once it is 3.5 s silent (its rooms
# would only time out): instance 1 says so and counts one other.
for _ in $(seq 1 100); do
    grep -q "cluster: instance r2 left (no heartbeat)" "${ERR[1]}" && break
    sleep 0.1
done
grep -q "cluster: instance r2 left (no heartbeat)" "${ERR[1]}" ||
    { RELAY_ERR=${ERR[1]}; die "instance 1 still counts the killed instance 2"; }
grep -q '^pairlink_relay_cluster_instances 1$' <<<"$(metrics "${URL[1]}")" ||
    die "instance 1 does not count 1 other after the kill"

# 6. kill -9 of the JetStream leader of the stream the publishes go to
# (ttl 300 s: PAIRLINK_5m); the subscriber stays on instance 3.
leader=$(monitor 1 '/jsz?accounts=true&streams=true' | node -e '
let t = ""; process.stdin.on("data", (d) => (t += d)).on("end", () => {
  const j = JSON.parse(t);
  for (const a of j.account_details || [])
    for (const s of a.stream_detail || [])
      if (s.name === "PAIRLINK_5m") console.log(s.cluster.leader);
});')
case "$leader" in n1 | n2 | n3) ;; *) die "no leader found for PAIRLINK_5m ('$leader')" ;; esac
echo "$TEST_NAME: PAIRLINK_5m leader is $leader (pid ${NATS_PID[${leader#n}]})"
cluster_node 90 stream "${URL[1]}" "${URL[3]}" "${URL[3]}" "$(topic)" 2000 "${NATS_PID[${leader#n}]}" \
    >"$WORK/leader.out" 2>&1 || { cat "$WORK/leader.out"; RELAY_ERR=${ERR[1]}; die "kill -9 of the JetStream leader lost messages"; }
cat "$WORK/leader.out"
# The subscriber's instance saw the election and read its topics again.
grep -q "cluster: stream PAIRLINK_5m elected a leader" "${ERR[3]}" ||
    { RELAY_ERR=${ERR[3]}; die "instance 3 did not see the new leader of PAIRLINK_5m"; }
grep -q "cluster: re-reading [0-9]* watched topics" "${ERR[3]}" ||
    { RELAY_ERR=${ERR[3]}; die "instance 3 did not re-read its topics after the election"; }

# The TTL check that ran meanwhile.
wait $TTL_PID || { cat "$WORK/ttl.out"; die "the 10 s TTL"; }
cat "$WORK/ttl.out"

# 7. No quorum: a second node killed, the one instance 1 is connected to if
# it still runs (so that instance 1 reconnects to the last one). A publish
# is retried for 5 s, then answered -32603, not left hanging.
node_of() { # the node (1..3) whose client port the URL names
    local port=${1##*:}
    for i in 1 2 3; do
        if [ "${PORTS[$((i - 1))]}" = "$port" ]; then echo $i; fi
    done
    return 0
}
cur=$(sed -n 's|.*cluster: \(re\)*connected to \(nats://[0-9.:]*\).*|\2|p' "${ERR[1]}" | tail -1)
victim=$(node_of "$cur")
if [ -z "$victim" ] || [ "n$victim" = "$leader" ]; then
    for i in 1 2 3; do
        if [ "n$i" != "$leader" ]; then
            victim=$i
            break
        fi
    done
fi
kill -9 "${NATS_PID[$victim]}"
echo "$TEST_NAME: killed n$victim (instance 1 was on $cur)"
cluster_node 40 unavailable "${URL[1]}" "$(topic)" >"$WORK/unavail.out" 2>&1 ||
    { cat "$WORK/unavail.out"; RELAY_ERR=${ERR[1]}; die "a publish without quorum"; }
cat "$WORK/unavail.out"
# (the topic could not be read, or the message not stored: either is logged)
grep -Eq "not stored after|cluster: load of [0-9a-f]+\.\.\. incomplete" "${ERR[1]}" ||
    die "instance 1 did not log the failed publish"
# Instance 1 lost its node at least once (step 6 or 7): it reconnected.
grep -q "cluster: reconnected to nats://" "${ERR[1]}" || die "instance 1 did not reconnect to another node"

# Instance 1 stops cleanly and instance 3 hears it say bye (plain NATS on
# the last node works without a JetStream quorum).
RELAY_PID=${PID[1]}
RELAY_ERR=${ERR[1]}
stop_relay
check_relay_log
for _ in $(seq 1 50); do
    grep -q "cluster: instance r1 left (stopped)" "${ERR[3]}" && break
    sleep 0.1
done
grep -q "cluster: instance r1 left (stopped)" "${ERR[3]}" ||
    { RELAY_ERR=${ERR[3]}; die "instance 3 did not hear instance 1 stop"; }
# 8. No NATS at all: instance 3 says so on /health (503), so that a load
# balancer sends clients elsewhere, and still stops cleanly.
health3() { node -e 'fetch(process.argv[1]).then(async (r) => console.log(r.status, await r.text())).catch(() => process.exit(1))' "${URL[3]/ws:/http:}/health"; }
[[ "$(health3)" == 200* ]] || die "instance 3 is not healthy before NATS goes"
cleanup_nats
for _ in $(seq 1 50); do
    [[ "$(health3)" == *cluster_disconnected* ]] && break
    sleep 0.1
done
[[ "$(health3)" == "503 "*'"status":"cluster_disconnected"'* ]] ||
    die "instance 3 without NATS: /health says '$(health3)'"
# ... and a publish there is answered -32603, not left hanging.
cluster_node 40 unavailable "${URL[3]}" "$(topic)" >"$WORK/nonats.out" 2>&1 ||
    { cat "$WORK/nonats.out"; RELAY_ERR=${ERR[3]}; die "a publish without any NATS node"; }
cat "$WORK/nonats.out"
echo "STEP /health and a publish without NATS ok"
RELAY_PID=${PID[3]}
RELAY_ERR=${ERR[3]}
stop_relay
check_relay_log
echo "$TEST_NAME: OK"
