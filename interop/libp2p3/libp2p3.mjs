// SPDX-License-Identifier: Apache-2.0
// js-libp2p 3.x: node construction and the stream helpers that peer.mjs
// (through ../p2p-common.mjs) and gossip-node.mjs share. Streams here are
// message streams: send() / onDrain(), async iteration, close() = close write.
import { identify } from "@libp2p/identify";
import { mplex } from "@libp2p/mplex";
import { noise } from "@libp2p/noise";
import { ping } from "@libp2p/ping";
import { tcp } from "@libp2p/tcp";
import { yamux } from "@libp2p/yamux";
import { multiaddr } from "@multiformats/multiaddr";
import { createLibp2p } from "libp2p";

export const label = "js-libp2p-3";
export { multiaddr };

// mplex 12 drops a connection whose remote opens more than 5 streams a
// second (disconnectThreshold); js-waku opens more than that right after
// connecting (metadata, relay, ping...), so the limit is raised here.
export const muxerFactories = (muxers) =>
  muxers.map((m) => (m === "yamux" ? yamux() : mplex({ disconnectThreshold: 100 })));

// Loopback tests open many connections from one address: lift the per-host
// inbound rate limit and the connection cap.
export const connectionManager = {
  maxConnections: 100000,
  inboundConnectionThreshold: 1e9,
  maxIncomingPendingConnections: 1000,
};

export async function createNode({ port, muxers, services = {} }) {
  return createLibp2p({
    addresses: { listen: port === null ? [] : [`/ip4/127.0.0.1/tcp/${port}`] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: muxerFactories(muxers),
    services: { identify: identify(), ping: ping(), ...services },
    connectionManager,
  });
}

export function handle(node, protocol, fn) {
  return node.handle(protocol, (stream, connection) => fn(stream, connection));
}

export const bytesOf = (chunk) => (chunk instanceof Uint8Array ? chunk : chunk.subarray());

export async function send(stream, chunk) {
  if (!stream.send(chunk)) await stream.onDrain();
}

export async function serveEcho(stream) {
  let bytes = 0;
  for await (const chunk of stream) {
    bytes += chunk.byteLength;
    await send(stream, chunk);
  }
  await stream.close();
  return bytes;
}

export async function exchange(stream, chunks, onData) {
  const reading = (async () => {
    for await (const chunk of stream) onData(bytesOf(chunk));
  })();
  for (const chunk of chunks) await send(stream, chunk);
  await stream.close();
  await reading;
}
