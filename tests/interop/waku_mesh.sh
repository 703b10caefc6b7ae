#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A Waku network of 6 C nodes and 2 JS nodes (js-waku 0.0.27 and js-libp2p 3
# gossipsub) in a ring with chords, every node subscribed:
#
#     C0 - C1 - C2 - J6 - C3 - C4 - J7 - C5 - C0     chords C0-C3, C1-C4,
#                                                   C2-C5, J6-J7
#
# Four publishers (C0, C2, J6, J7) send 15 messages each while the network
# runs; C4 is killed (SIGKILL) in the middle. Every remaining node must
# receive every message of the other publishers exactly once. See
# tests/interop/waku-common.bash.
TEST_NAME=waku_mesh
. "$(dirname "$0")/waku-common.bash"

N=15
GO=$work/go
pub() { echo --subscribe $CT --publish $CT --message from-$1 --count $N --interval-ms 300; }
common=(--linger 5 --lifetime 90)
[ -n "${WAKU_VERBOSE:-}" ] && cverb=(--verbose) || cverb=()

start C0 c $(pub C0) --min-mesh 2 --start-after "$GO" --expect $((3 * N)) "${common[@]}" "${cverb[@]}" || exit 1
start C1 c --peer "${ADDR[C0]}" --subscribe $CT --expect $((4 * N)) "${common[@]}" "${cverb[@]}" || exit 1
start C2 c --peer "${ADDR[C1]}" $(pub C2) --min-mesh 2 --start-after "$GO" --expect $((3 * N)) "${common[@]}" "${cverb[@]}" || exit 1
start C3 c --peer "${ADDR[C0]}" --subscribe $CT --expect $((4 * N)) "${common[@]}" "${cverb[@]}" || exit 1
start C4 c --peer "${ADDR[C3]}" --peer "${ADDR[C1]}" --subscribe $CT "${common[@]}" "${cverb[@]}" || exit 1
start C5 c --peer "${ADDR[C0]}" --peer "${ADDR[C2]}" --subscribe $CT --expect $((4 * N)) "${common[@]}" "${cverb[@]}" || exit 1
start J6 jswaku --peer "${ADDR[C2]}" --peer "${ADDR[C3]}" $(pub J6) --min-mesh 3 --expect $((3 * N)) "${common[@]}" || exit 1
for n in C0 C1 C2 C3 C4 C5 J6; do
    wait_for $n 'any(len(m["peers"]) >= 2 for m in ev("mesh"))' 20 ||
        bad "$n: no mesh of two peers"
done
# J7 comes last: once its mesh holds its three neighbours, J6 and J7 start
# publishing (--min-mesh 3), and so do the C publishers.
start J7 gossip --peer "${ADDR[C4]}" --peer "${ADDR[C5]}" --peer "${ADDR[J6]}" $(pub J7) --min-mesh 3 \
    --expect $((3 * N)) "${common[@]}" || exit 1
wait_for J7 'any(len(m["peers"]) >= 3 for m in ev("mesh"))' 20 || bad "J7: no mesh of three peers"
touch "$GO"

# C4 dies in the middle of it.
wait_for C1 'len(msgs) >= 20' 30 || bad "C1: not 20 messages before the kill"
kill -9 "${PID[C4]}"
wait "${PID[C4]}" 2>/dev/null
echo "$TEST_NAME: C4 killed after $(hashes_of C4 message | wc -l) messages"

for n in C0 C1 C2 C3 C5 J6 J7; do expect_exit $n 0 60; done
for n in C0 C1 C2 C3 C5 J6 J7; do
    others=()
    for p in C0 C2 J6 J7; do [ $p != $n ] && others+=($p); done
    same_messages "$n: every message of ${others[*]} exactly once" $n "${others[@]}"
done
for p in C0 C2 J6 J7; do
    check "$p published $N" $p "len(ev('published')) == $N"
done
check "C1 saw C4 go" C1 'any(d["peer"] == arg for d in ev("disconnect"))' "${PEER[C4]}"
echo "$TEST_NAME: $passes passed, $fails failed"
[ $fails = 0 ]
