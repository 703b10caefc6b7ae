#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# libp2p interop with js-libp2p 3.x (3.3.11, @libp2p/noise 17, yamux 8,
# mplex 12: interop/libp2p3/): C dials JS and JS dials C, over yamux and over
# mplex; Noise with the peer id checked, identify both ways, ping both ways,
# 1 MiB each way through /pairlink/test/echo/1.0.0; and the `pairlink p2p`
# CLI against it. See tests/interop/p2p-common.bash.
PROJECT=libp2p3
AGENT_RE='^js-libp2p/3\.'
. "$(dirname "$0")/p2p-common.bash"
p2p_matrix
