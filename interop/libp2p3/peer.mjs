// SPDX-License-Identifier: Apache-2.0
// A plain js-libp2p 3.x peer: `node peer.mjs --help`; contract in ../README.md.
import { runPeerCli } from "../p2p-common.mjs"; // first: installs the polyfill
import * as impl from "./libp2p3.mjs";

await runPeerCli(impl);
