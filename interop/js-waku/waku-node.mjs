// SPDX-License-Identifier: Apache-2.0
// A js-waku 0.0.27 relay node (createRelayNode, js-libp2p 1.9, gossipsub 13)
// on TCP 127.0.0.1: `node waku-node.mjs --help`; contract in ../README.md.
// Publishing and receiving go through js-waku's own encoder / decoder and
// relay API; only the output lines are ../waku-common.mjs's.
import { sleep } from "../p2p-common.mjs"; // first: installs the polyfill
import { decodeWakuMessage, messageHash, runWakuCli } from "../waku-common.mjs";
import { connectionManager, label as libp2pLabel, multiaddr, muxerFactories } from "./libp2p19.mjs";
import { tcp } from "@libp2p/tcp";
import { createDecoder, createEncoder } from "@waku/sdk";
import { createRelayNode } from "@waku/sdk/relay";

async function createWakuNode({ port, muxers, cluster, shard }) {
  const waku = await createRelayNode({
    // Static sharding: js-waku takes any cluster id here (16 = Status).
    networkConfig: { clusterId: cluster, shards: [shard] },
    libp2p: {
      addresses: { listen: [`/ip4/127.0.0.1/tcp/${port}`] },
      transports: [tcp()],
      streamMuxers: muxerFactories(muxers),
      connectionManager,
      hideWebSocketInfo: true,
    },
  });
  await waku.start();
  const [pubsubTopic] = waku.pubsubTopics;
  const gossip = waku.relay.gossipSub;

  // js-waku's message callback does not say which peer relayed the message:
  // remember it per message hash from the gossipsub event, which comes first.
  const sources = new Map();
  gossip.addEventListener("gossipsub:message", (e) => {
    try {
      const { msg, propagationSource } = e.detail;
      sources.set(messageHash(msg.topic, decodeWakuMessage(msg.data)), propagationSource.toString());
      if (sources.size > 1000) sources.delete(sources.keys().next().value);
    } catch {}
  });

  return {
    libp2p: waku.libp2p,
    gossip,
    async publish(m) {
      const encoder = createEncoder({ contentTopic: m.contentTopic, pubsubTopic });
      const timestamp = new Date(Number(m.timestampNs / 1000000n));
      const r = await waku.relay.send(encoder, { payload: m.payload, timestamp });
      if (r.failures?.length) throw new Error(`relay.send: ${r.failures.map((f) => f.error).join(", ")}`);
      return { recipients: r.successes.length };
    },
    subscribe(contentTopics, onMessage) {
      if (!contentTopics.length) return;
      const decoders = contentTopics.map((ct) => createDecoder(ct, pubsubTopic));
      waku.relay.subscribe(decoders, (dm) => {
        const p = dm.proto;
        const m = {
          payload: p.payload ?? new Uint8Array(), contentTopic: p.contentTopic, version: p.version ?? 0,
          timestampNs: p.timestamp ?? 0n, meta: p.meta ?? null, ephemeral: !!p.ephemeral,
        };
        const h = messageHash(dm.pubsubTopic, m);
        onMessage(m, dm.pubsubTopic, sources.get(h));
        sources.delete(h);
      });
    },
    stop: () => Promise.race([waku.stop(), sleep(2000)]),
  };
}

await runWakuCli({ label: `js-waku-0.0.27/${libp2pLabel}`, defaultMuxer: "mplex", multiaddr, createWakuNode });
