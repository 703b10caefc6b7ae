#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Waku relay interop with js-libp2p 3 gossipsub set up as Waku relay
# (interop/libp2p3/gossip-node.mjs: gossipsub 17 under /vac/waku/relay/2.0.0,
# StrictNoSign, nwaku's parameters, the metadata protocol both ways), over
# yamux and mplex: both directions, the CLI, forwarding across a hop of the
# other implementation both ways, another cluster refused. See
# tests/interop/waku-common.bash.
TEST_NAME=waku_libp2p3
. "$(dirname "$0")/waku-common.bash"
pair_matrix gossip yamux mplex
