#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Waku relay interop with js-waku 0.0.27 (interop/js-waku/waku-node.mjs: a real
# createRelayNode on js-libp2p 1.9, mplex as js-waku ships it, and yamux
# added): C publishes and js-waku receives, js-waku publishes and C
# receives, the `pairlink waku` CLI both ways, forwarding across a hop of
# the other implementation (C - js-waku - C, js-waku - C - js-waku), and a
# js-waku node of another cluster disconnected by the C node. Message
# hashes must agree on both sides. See tests/interop/waku-common.bash.
TEST_NAME=waku_jswaku
. "$(dirname "$0")/waku-common.bash"
pair_matrix jswaku mplex yamux
