// SPDX-License-Identifier: Apache-2.0
// js-libp2p 3 with gossipsub 17 set up as Waku relay (nwaku's parameters),
// on TCP 127.0.0.1, answering and asking /vac/waku/metadata/1.0.0:
// `node gossip-node.mjs --help`; contract in ../README.md. WakuMessages are
// encoded and decoded by ../waku-common.mjs (the C side is what is tested).
import { sleep } from "../p2p-common.mjs"; // first: installs the polyfill
import {
  METADATA_PROTOCOL, RELAY_PROTOCOL, decodeMetadata, decodeWakuMessage, encodeMetadata, encodeWakuMessage,
  lengthPrefixed, readLengthPrefixed, runWakuCli,
} from "../waku-common.mjs";
import { bytesOf, createNode, label as libp2pLabel, multiaddr, send } from "./libp2p3.mjs";
import { gossipsub, StrictNoSign, TopicValidatorResult } from "@libp2p/gossipsub";
import { createHash } from "node:crypto";

const METADATA_TIMEOUT_MS = 5000;

// nwaku's relay settings (waku_relay/protocol.nim). The protocol list is a
// field of the instance: the init options cannot replace it.
function wakuRelay() {
  const factory = gossipsub({
    globalSignaturePolicy: StrictNoSign,
    msgIdFn: (msg) => new Uint8Array(createHash("sha256").update(msg.data).digest()),
    allowPublishToZeroTopicPeers: true,
    fallbackToFloodsub: false,
    floodPublish: true,
    D: 6, Dlo: 4, Dhi: 8, Dout: 3, Dlazy: 6,
    heartbeatInterval: 1000,
    seenTTL: 2 * 60 * 1000,
    pruneBackoff: 60 * 1000,
    maxInboundDataLength: 150 * 1024 + 4096,
  });
  return (components) => {
    const g = factory(components);
    g.protocols = [RELAY_PROTOCOL];
    return g;
  };
}

const withTimeout = (p, what) =>
  Promise.race([p, sleep(METADATA_TIMEOUT_MS).then(() => Promise.reject(new Error(`${what} timed out`)))]);
const chunks = (stream) => (async function* () {
  for await (const c of stream) yield bytesOf(c);
})();

async function createWakuNode({ port, muxers, cluster, shard, emit }) {
  const libp2p = await createNode({ port, muxers, services: { pubsub: wakuRelay() } });
  const gossip = libp2p.services.pubsub;
  const pubsubTopic = `/waku/2/rs/${cluster}/${shard}`;
  const ours = encodeMetadata({ clusterId: cluster, shards: [shard] });
  const metaLine = (peer, direction, r, err) =>
    emit({ event: "metadata", peer: peer.toString(), direction, cluster: r?.cluster ?? null, shards: r?.shards ?? [],
      error: err ? err.message : null });

  // Answer first, then read the request (as js-waku does), so either order
  // of the asking side works. js-waku opens metadata streams ahead of use and
  // may close them unused: a stream that ends empty is not reported.
  await libp2p.handle(
    METADATA_PROTOCOL,
    async (stream, conn) => {
      try {
        await send(stream, lengthPrefixed(ours));
        await stream.close();
        const req = decodeMetadata(await readLengthPrefixed(chunks(stream), 1024));
        metaLine(conn.remotePeer, "inbound", req);
      } catch (err) {
        if (err.code !== "EMPTY") metaLine(conn.remotePeer, "inbound", null, err);
      }
    },
    { maxInboundStreams: 64 },
  );
  // Ask every peer that lists the protocol, as nwaku does.
  libp2p.addEventListener("peer:identify", async (e) => {
    const { connection, protocols } = e.detail;
    if (!protocols.includes(METADATA_PROTOCOL)) return;
    try {
      const stream = await connection.newStream(METADATA_PROTOCOL);
      await send(stream, lengthPrefixed(ours));
      await stream.close();
      const resp = decodeMetadata(await withTimeout(readLengthPrefixed(chunks(stream), 1024), "metadata response"));
      metaLine(connection.remotePeer, "outbound", resp);
    } catch (err) {
      metaLine(connection.remotePeer, "outbound", null, err);
    }
  });

  gossip.topicValidators.set(pubsubTopic, (_peer, msg) => {
    try {
      decodeWakuMessage(msg.data);
      return TopicValidatorResult.Accept;
    } catch {
      return TopicValidatorResult.Reject;
    }
  });
  gossip.subscribe(pubsubTopic);

  return {
    libp2p,
    gossip,
    async publish(m) {
      const { recipients } = await gossip.publish(pubsubTopic, encodeWakuMessage(m));
      return { recipients: recipients.length };
    },
    subscribe(contentTopics, onMessage) {
      const wanted = new Set(contentTopics);
      gossip.addEventListener("gossipsub:message", (e) => {
        const { msg, propagationSource } = e.detail;
        if (msg.topic !== pubsubTopic) return;
        const m = decodeWakuMessage(msg.data); // validated above
        if (wanted.has(m.contentTopic)) onMessage(m, msg.topic, propagationSource.toString());
      });
    },
    stop: () => Promise.race([libp2p.stop(), sleep(2000)]),
  };
}

await runWakuCli({ label: `gossipsub-17/${libp2pLabel}`, defaultMuxer: "both", multiaddr, createWakuNode });
