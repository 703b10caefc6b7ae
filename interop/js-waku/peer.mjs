// SPDX-License-Identifier: Apache-2.0
// A plain js-libp2p 1.9 peer: `node peer.mjs --help`; contract in ../README.md.
import { runPeerCli } from "../p2p-common.mjs"; // first: installs the polyfill
import * as impl from "./libp2p19.mjs";

await runPeerCli(impl);
