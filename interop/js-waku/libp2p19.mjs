// SPDX-License-Identifier: Apache-2.0
// js-libp2p 1.9 (the version @waku/sdk 0.0.27 pins): node construction and
// the stream helpers that peer.mjs (through ../p2p-common.mjs) and
// waku-node.mjs share. Streams here are it-stream duplexes (source / sink).
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { identify } from "@libp2p/identify";
import { mplex } from "@libp2p/mplex";
import { ping } from "@libp2p/ping";
import { tcp } from "@libp2p/tcp";
import { multiaddr } from "@multiformats/multiaddr";
import { createLibp2p } from "libp2p";

export const label = "js-libp2p-1.9";
export { multiaddr };

export const muxerFactories = (muxers) => muxers.map((m) => (m === "yamux" ? yamux() : mplex()));

// Loopback tests open many connections from one address: lift the per-host
// inbound rate limit and the connection cap.
export const connectionManager = {
  maxConnections: 100000,
  inboundConnectionThreshold: 1e9,
  maxIncomingPendingConnections: 1000,
};

export async function createNode({ port, muxers }) {
  return createLibp2p({
    addresses: { listen: port === null ? [] : [`/ip4/127.0.0.1/tcp/${port}`] },
    transports: [tcp()],
    connectionEncryption: [noise()],
    streamMuxers: muxerFactories(muxers),
    services: { identify: identify(), ping: ping() },
    connectionManager,
  });
}

export function handle(node, protocol, fn) {
  return node.handle(protocol, ({ stream, connection }) => fn(stream, connection));
}

export async function serveEcho(stream) {
  let bytes = 0;
  // sink() closes the write side once the source (our reader) ends.
  await stream.sink(
    (async function* () {
      for await (const chunk of stream.source) {
        bytes += chunk.byteLength;
        yield chunk;
      }
    })(),
  );
  return bytes;
}

export async function exchange(stream, chunks, onData) {
  const reading = (async () => {
    for await (const chunk of stream.source) onData(chunk.subarray());
  })();
  await stream.sink(chunks);
  await reading;
}
