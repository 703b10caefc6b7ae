#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `pairlink relay --cluster` to a NATS server that wants TLS and a user
# (docs/relay.md "Cluster", "Securing NATS"): a CA and a server certificate
# made here (openssl), one nats-server (JetStream, TLS required, user and
# password), all on 127.0.0.1.
#   - tls://USER:PASS@... with --cluster-ca: the relay starts and serves
#     (publish, replay, fetch through it), and its log never shows the
#     password; on the command line it warns (ps shows it), in a --config
#     file others may read it refuses to start, in a 0600 one it starts;
#   - without --cluster-ca (the system's CAs do not know this CA), with a
#     host name the certificate does not name, with a wrong password, and
#     without TLS: it does not start, exit 1, and says why;
#   - a client certificate for a server that asks for one (mutual TLS).
# Exit 77 (skipped) without nats-server, openssl or a libnats build.
set -euo pipefail
TEST_NAME=relay_cluster_tls
source "$(dirname "$0")/../interop/relay-common.bash"

command -v nats-server >/dev/null || { echo "$TEST_NAME: SKIPPED: no nats-server"; exit 77; }
command -v openssl >/dev/null || { echo "$TEST_NAME: SKIPPED: no openssl"; exit 77; }
if timeout 10 "$PL_CLI" relay --cluster nats://127.0.0.1:9 --listen 127.0.0.1:0 2>&1 |
    grep -q PL_ERR_NO_CLUSTER; then
    echo "$TEST_NAME: SKIPPED: pairlink was built without libnats"
    exit 77
fi

NATS_PID=""
trap '[ -n "$NATS_PID" ] && kill -9 $NATS_PID 2>/dev/null; cleanup' EXIT

# A CA, a server certificate for 127.0.0.1, a client certificate.
cd "$WORK"
cert() { # cert NAME CN [EXT]: NAME.key, NAME.pem signed by the CA
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$1.key" \
        -out "$1.csr" -subj "/CN=$2" 2>/dev/null
    printf '%s\n' "${3:-basicConstraints=CA:FALSE}" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" -days 1 \
        -extfile "$1.ext" 2>/dev/null
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
    -out ca.pem -days 1 -subj "/CN=pairlink test CA" 2>/dev/null
cert srv 127.0.0.1 "subjectAltName=IP:127.0.0.1"
cert client relay-a "extendedKeyUsage=clientAuth"
cd - >/dev/null

PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
PASS="s3cret-$RANDOM$RANDOM"
start_nats() { # start_nats EXTRA_TLS_LINES
    [ -n "$NATS_PID" ] && { kill -9 "$NATS_PID" 2>/dev/null || true; wait "$NATS_PID" 2>/dev/null || true; }
    cat >"$WORK/n.conf" <<CONF
listen: 127.0.0.1:$PORT
tls { cert_file: "$WORK/srv.pem", key_file: "$WORK/srv.key", ca_file: "$WORK/ca.pem"${1:+, $1} }
authorization { user: relay, password: "$PASS" }
jetstream { store_dir: "$WORK/js" }
CONF
    nats-server -c "$WORK/n.conf" >"$WORK/n.log" 2>&1 &
    NATS_PID=$!
    for _ in $(seq 1 50); do grep -q "Server is ready" "$WORK/n.log" && return 0; sleep 0.1; done
    cat "$WORK/n.log"
    die "nats-server did not start"
}
start_nats ""

# 1. TLS, a user, our CA: it serves.
start_relay tls-a --cluster "tls://relay:$PASS@127.0.0.1:$PORT" --cluster-ca "$WORK/ca.pem" \
    --instance-id tls-a --require-auth
grep -q "cluster: connected to tls://\*\*\*@127.0.0.1:$PORT" "$RELAY_ERR" ||
    die "the relay did not say it connected with TLS"
T=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
(cd "$INTEROP" && timeout 30 node relay-cluster.mjs replay "$RELAY_URL" "$RELAY_URL" "$RELAY_URL" "$T") \
    >"$WORK/replay.out" 2>&1 || { cat "$WORK/replay.out"; die "publish / replay / fetch over TLS"; }
grep -q "FETCH OK" "$WORK/replay.out" || die "no fetch over TLS"
stop_relay
check_relay_log
if grep -q "$PASS" "$RELAY_ERR" "$WORK"/*.out; then die "the password shows in a log"; fi
grep -q "the NATS password in --cluster is visible" "$RELAY_ERR" ||
    die "no warning for a password on the command line"
echo "STEP tls and a user ok"

# 1b. The password in a --config file: refused while others may read it,
# taken (without the warning) once it is 0600.
printf 'cluster tls://relay:%s@127.0.0.1:%s\ncluster-ca %s\n' "$PASS" "$PORT" "$WORK/ca.pem" \
    >"$WORK/relay.conf"
chmod 644 "$WORK/relay.conf"
rc=0
timeout 20 "$PL_CLI" relay --listen 127.0.0.1:0 --config "$WORK/relay.conf" >"$WORK/conf.out" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "holds a NATS password but others may read it (mode 0644): run 'chmod 600" \
    "$WORK/conf.out" || { cat "$WORK/conf.out"; die "a readable config file with a password: exit $rc"; }
chmod 600 "$WORK/relay.conf"
start_relay tls-conf --config "$WORK/relay.conf"
if grep -q "visible to every user" "$RELAY_ERR"; then die "a warning for a password in a 0600 file"; fi
stop_relay
echo "STEP password in a 0600 config file ok"

# 2. What must not start, each with its reason.
refused() { # refused WHAT PATTERN ARGS...
    local what=$1 pattern=$2 rc=0
    shift 2
    timeout 20 "$PL_CLI" relay --listen 127.0.0.1:0 "$@" >"$WORK/refused.out" 2>&1 || rc=$?
    [ $rc = 1 ] || { cat "$WORK/refused.out"; die "$what: exit $rc, want 1"; }
    grep -Eq "$pattern" "$WORK/refused.out" || { cat "$WORK/refused.out"; die "$what: no reason given"; }
    if grep -q "$PASS" "$WORK/refused.out"; then die "$what: the password shows"; fi
    echo "STEP refused: $what"
}
refused "a CA the system does not know" "unable to get local issuer certificate" \
    --cluster "tls://relay:$PASS@127.0.0.1:$PORT"
refused "a host the certificate does not name" "hostname mismatch" \
    --cluster "tls://relay:$PASS@localhost:$PORT" --cluster-ca "$WORK/ca.pem"
refused "a wrong password" "Authorization Violation" \
    --cluster "tls://relay:wrong@127.0.0.1:$PORT" --cluster-ca "$WORK/ca.pem"
refused "a CA file that is not there" "TLS set-up failed" \
    --cluster "tls://relay:$PASS@127.0.0.1:$PORT" --cluster-ca "$WORK/missing.pem"
refused "a client certificate without its key" "cluster-cert and cluster-key go together" \
    --cluster "tls://relay:$PASS@127.0.0.1:$PORT" --cluster-cert "$WORK/client.pem"

# 3. Mutual TLS: the server asks for a client certificate.
start_nats "verify: true"
refused "mutual TLS without a client certificate" "cannot connect" \
    --cluster "tls://relay:$PASS@127.0.0.1:$PORT" --cluster-ca "$WORK/ca.pem"
start_relay tls-b --cluster "tls://relay:$PASS@127.0.0.1:$PORT" --cluster-ca "$WORK/ca.pem" \
    --cluster-cert "$WORK/client.pem" --cluster-key "$WORK/client.key" --instance-id tls-b
grep -q "cluster: connected to tls://" "$RELAY_ERR" || die "no connection with a client certificate"
stop_relay
check_relay_log
echo "STEP mutual tls ok"
echo "$TEST_NAME: OK"
