#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# libp2p interop with the js-libp2p that @waku/sdk@0.0.27 pins (1.9.4, Noise
# 15, yamux 6, mplex 10: interop/js-waku/): C dials JS and JS dials C, over
# yamux and over mplex; Noise with the peer id checked, identify both ways,
# ping both ways, 1 MiB each way through /pairlink/test/echo/1.0.0; and the
# `pairlink p2p` CLI against it. See tests/interop/p2p-common.bash.
PROJECT=js-waku
AGENT_RE='^libp2p/1\.9\.'
. "$(dirname "$0")/p2p-common.bash"
p2p_matrix
