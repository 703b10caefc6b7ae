// SPDX-License-Identifier: Apache-2.0
// The js-waku side of the Waku line benchmark (scripts/bench-waku.sh; the C
// side is bench/bench_waku.c with the same phases and output): a publisher
// and a subscriber js-waku 0.0.27 relay node in this process, both connected
// only to the relay node RELAY_MULTIADDR (the 3-node line publisher - relay -
// subscriber). Phase 1 publishes SIZE-byte payloads at RATE per second for
// SECONDS and reports the latency publish -> delivery; phase 2 publishes
// BURST messages at once and reports messages per second until the last is
// delivered. One JSON line on stdout.
//
//   node bench-line.mjs RELAY_MULTIADDR [SIZE=1024] [RATE=200] [SECONDS=10] [BURST=2000]
import { sleep } from "../p2p-common.mjs"; // first: installs the polyfill
import { connectionManager, multiaddr, muxerFactories } from "./libp2p19.mjs";
import { tcp } from "@libp2p/tcp";
import { createDecoder, createEncoder } from "@waku/sdk";
import { createRelayNode } from "@waku/sdk/relay";

const CT = "/pairlink/1/bench/proto";
const [relay, size = 1024, rate = 200, seconds = 10, burst = 2000] = process.argv.slice(2).map((a, i) => (i ? Number(a) : a));
if (!relay) {
  console.error("usage: node bench-line.mjs RELAY_MULTIADDR [SIZE] [RATE] [SECONDS] [BURST]");
  process.exit(2);
}
console.log = console.info = console.warn = () => {};

async function node() {
  const waku = await createRelayNode({
    networkConfig: { clusterId: 16, shards: [64] },
    libp2p: { transports: [tcp()], streamMuxers: muxerFactories(["mplex"]), connectionManager, hideWebSocketInfo: true },
  });
  await waku.start();
  await waku.libp2p.dial(multiaddr(relay));
  return waku;
}

const pub = await node();
const sub = await node();
const topic = pub.pubsubTopics[0];
const n1 = rate * seconds;
const sentAt = new Array(n1).fill(0n);
const lat = [];
let burstGot = 0;
let burstEnd = 0n;
await sub.relay.subscribe([createDecoder(CT, topic)], (m) => {
  const p = m.payload;
  const seq = p[0] | (p[1] << 8) | (p[2] << 16) | (p[3] << 24);
  const t = process.hrtime.bigint();
  if (seq < n1) lat.push(Number(t - sentAt[seq]) / 1e6);
  else {
    burstGot++;
    burstEnd = t;
  }
});
const encoder = createEncoder({ contentTopic: CT, pubsubTopic: topic });
const payload = (seq) => {
  const p = new Uint8Array(size);
  for (let i = 4; i < size; i++) p[i] = (i * 31 + seq) & 255;
  p[0] = seq & 255, p[1] = (seq >> 8) & 255, p[2] = (seq >> 16) & 255, p[3] = (seq >>> 24) & 255;
  return p;
};
const send = (seq) => pub.relay.send(encoder, { payload: payload(seq) }).catch(() => {});

// Both in the relay's mesh, and a heartbeat more.
const deadline = Date.now() + 30000;
while (Date.now() < deadline &&
       (pub.relay.gossipSub.getMeshPeers(topic).length < 1 || sub.relay.gossipSub.getMeshPeers(topic).length < 1))
  await sleep(10);
await sleep(1500);

const t0 = process.hrtime.bigint();
for (let seq = 0; seq < n1; seq++) {
  const due = t0 + BigInt(Math.round((seq * 1e9) / rate));
  for (;;) {
    const now = process.hrtime.bigint();
    if (now >= due) break;
    await sleep(Math.max(0, Number(due - now) / 1e6 - 0.5));
  }
  sentAt[seq] = process.hrtime.bigint();
  send(seq);
}
const end1 = Date.now() + 5000;
while (lat.length < n1 && Date.now() < end1) await sleep(5);

const b0 = process.hrtime.bigint();
await Promise.all(Array.from({ length: burst }, (_, i) => send(n1 + i)));
const end2 = Date.now() + 60000;
while (burstGot < burst && Date.now() < end2) await sleep(5);

lat.sort((a, b) => a - b);
const pick = (q) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(lat.length * q))] : -1);
const secs = burstEnd > b0 ? Number(burstEnd - b0) / 1e9 : 0;
process.stdout.write(JSON.stringify({
  event: "bench-line", impl: "js-waku-0.0.27", size, rate, sent: n1, delivered: lat.length,
  p50_ms: +pick(0.5).toFixed(3), p99_ms: +pick(0.99).toFixed(3), max_ms: +(lat.at(-1) ?? -1).toFixed(3),
  burst, burst_delivered: burstGot, burst_seconds: +secs.toFixed(3), msgs_per_s: secs ? Math.round(burstGot / secs) : 0,
}) + "\n");
await Promise.race([Promise.all([pub.stop(), sub.stop()]), sleep(2000)]);
process.exit(0);
