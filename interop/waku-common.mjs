// SPDX-License-Identifier: Apache-2.0
// Shared by interop/js-waku/waku-node.mjs (a real js-waku 0.0.27 relay node)
// and interop/libp2p3/gossip-node.mjs (js-libp2p 3 gossipsub set up as Waku
// relay): the command line, the output lines, WakuMessage and metadata
// protobufs (hand-written: the C side is under test, this is only the peer).
// Imports only node: built-ins and ./p2p-common.mjs (which must be the first
// import of the scripts, for its polyfill).
import { createHash } from "node:crypto";
import {
  EXIT_FAIL, EXIT_OK, EXIT_TIMEOUT, EXIT_USAGE, die, exitOnSignals, identifyInfo, log, muxerList,
  muxerName, num, out, parseCli, quietConsole, setLogTag, sleep,
} from "./p2p-common.mjs";

export const RELAY_PROTOCOL = "/vac/waku/relay/2.0.0";
export const METADATA_PROTOCOL = "/vac/waku/metadata/1.0.0";
export const MAX_WAKU_MESSAGE = 150 * 1024;

export const pubsubTopicOf = (cluster, shard) => `/waku/2/rs/${cluster}/${shard}`;
export const hex = (b) => Buffer.from(b ?? []).toString("hex");

// ---- protobuf, just what WakuMessage and WakuMetadata need ----------------

function varint(v) {
  let n = BigInt(v);
  const bytes = [];
  do {
    let b = Number(n & 0x7fn);
    n >>= 7n;
    if (n) b |= 0x80;
    bytes.push(b);
  } while (n);
  return Buffer.from(bytes);
}
const tag = (field, wire) => varint((field << 3) | wire);
const lenField = (field, bytes) => Buffer.concat([tag(field, 2), varint(bytes.length), bytes]);
const zigzag = (v) => (v << 1n) ^ (v >> 63n);
const unzigzag = (v) => (v >> 1n) ^ -(v & 1n);

function readVarint(buf, pos) {
  let v = 0n;
  for (let shift = 0n; ; shift += 7n) {
    if (pos >= buf.length || shift > 63n) throw new Error("bad varint");
    const b = buf[pos++];
    v |= BigInt(b & 0x7f) << shift;
    if (!(b & 0x80)) return [v & 0xffffffffffffffffn, pos];
  }
}

// Yields [field, wireType, value]: value is a BigInt for varints, a Buffer
// otherwise. Throws on truncation.
function* fields(buf) {
  let i = 0;
  let v;
  const take = (n) => {
    if (i + n > buf.length) throw new Error("truncated field");
    return buf.subarray(i, (i += n));
  };
  while (i < buf.length) {
    [v, i] = readVarint(buf, i);
    const field = Number(v >> 3n);
    const wire = Number(v & 7n);
    if (wire === 0) {
      [v, i] = readVarint(buf, i);
      yield [field, 0, v];
    } else if (wire === 1) yield [field, 1, take(8)];
    else if (wire === 2) {
      [v, i] = readVarint(buf, i);
      yield [field, 2, take(Number(v))];
    } else if (wire === 5) yield [field, 5, take(4)];
    else throw new Error(`bad wire type ${wire}`);
  }
}

// m: { payload, contentTopic, version, timestampNs (BigInt), meta, ephemeral }
export function encodeWakuMessage(m) {
  const parts = [lenField(1, Buffer.from(m.payload)), lenField(2, Buffer.from(m.contentTopic, "utf8"))];
  if (m.version) parts.push(tag(3, 0), varint(m.version));
  if (m.timestampNs) parts.push(tag(10, 0), varint(zigzag(BigInt.asIntN(64, m.timestampNs))));
  if (m.meta?.length) parts.push(lenField(11, Buffer.from(m.meta)));
  if (m.ephemeral) parts.push(tag(31, 0), varint(1));
  return Buffer.concat(parts);
}

export function decodeWakuMessage(bytes) {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length > MAX_WAKU_MESSAGE) throw new Error("WakuMessage over 150 KiB");
  const m = { payload: Buffer.alloc(0), contentTopic: "", version: 0, timestampNs: 0n, meta: null, ephemeral: false };
  for (const [f, w, v] of fields(buf)) {
    if (f === 1 && w === 2) m.payload = v;
    else if (f === 2 && w === 2) m.contentTopic = v.toString("utf8");
    else if (f === 3 && w === 0) m.version = Number(v & 0xffffffffn);
    else if (f === 10 && w === 0) m.timestampNs = unzigzag(v);
    else if (f === 11 && w === 2) m.meta = v;
    else if (f === 31 && w === 0) m.ephemeral = v !== 0n;
  }
  if (!m.contentTopic) throw new Error("WakuMessage without content_topic");
  return m;
}

// WakuMetadataRequest / Response: cluster_id = 1, shards = 2 (written
// unpacked, as js-waku does; read packed or unpacked, and field 3 packed).
export function encodeMetadata({ clusterId, shards }) {
  return Buffer.concat([tag(1, 0), varint(clusterId), ...shards.flatMap((s) => [tag(2, 0), varint(s)])]);
}

export function decodeMetadata(bytes) {
  const r = { cluster: null, shards: [] };
  for (const [f, w, v] of fields(Buffer.from(bytes))) {
    if (f === 1 && w === 0) r.cluster = Number(v & 0xffffffffn);
    else if ((f === 2 || f === 3) && w === 0) r.shards.push(Number(v & 0xffffffffn));
    else if ((f === 2 || f === 3) && w === 2) {
      for (let i = 0, s; i < v.length; ) {
        [s, i] = readVarint(v, i);
        r.shards.push(Number(s & 0xffffffffn));
      }
    }
  }
  return r;
}

// Reads one uvarint-length-prefixed message (at most `max` bytes) from an
// async iterator of Uint8Arrays.
export async function readLengthPrefixed(iter, max = 64 * 1024) {
  let buf = Buffer.alloc(0);
  for (;;) {
    let len = 0;
    let i = 0;
    for (let shift = 0; i < buf.length && i < 5; shift += 7) {
      const b = buf[i++];
      len += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) {
        if (len > max) throw new Error(`message of ${len} bytes over ${max}`);
        if (buf.length >= i + len) return buf.subarray(i, i + len);
        break;
      }
    }
    const { value, done } = await iter.next();
    if (done) {
      const err = new Error(buf.length ? "stream ended inside a message" : "stream ended before any byte");
      if (!buf.length) err.code = "EMPTY";
      throw err;
    }
    buf = Buffer.concat([buf, value]);
  }
}
export const lengthPrefixed = (bytes) => Buffer.concat([varint(bytes.length), bytes]);

// Deterministic message hash as 14/WAKU2-MESSAGE and @waku/message-hash
// compute it: sha256(pubsub_topic | payload | content_topic | meta |
// timestamp as int64 BE), meta and timestamp left out when absent / zero.
export function messageHash(pubsubTopic, m) {
  const h = createHash("sha256").update(pubsubTopic).update(m.payload).update(m.contentTopic);
  if (m.meta) h.update(m.meta);
  if (m.timestampNs) {
    const ts = Buffer.alloc(8);
    ts.writeBigInt64BE(BigInt.asIntN(64, m.timestampNs));
    h.update(ts);
  }
  return h.digest("hex");
}

function messageFields(pubsubTopic, m) {
  return {
    content_topic: m.contentTopic,
    pubsub_topic: pubsubTopic,
    payload_hex: hex(m.payload),
    timestamp: String(m.timestampNs ?? 0n),
    version: m.version ?? 0,
    meta_hex: m.meta ? hex(m.meta) : null,
    ephemeral: !!m.ephemeral,
    hash: messageHash(pubsubTopic, m),
  };
}

// ---- the command line ------------------------------------------------------
//
// impl (one per project):
//   impl.label, impl.defaultMuxer, impl.multiaddr(str)
//   impl.createWakuNode({ port, muxers, cluster, shard, emit }) -> {
//     libp2p,            a started js-libp2p node
//     gossip,            its gossipsub instance
//     publish(m) -> { recipients: n },   m as encodeWakuMessage takes
//     subscribe(contentTopics, (m, pubsubTopic, fromPeer) => ...),
//     stop() }

const USAGE = `usage: NODE.mjs [--port N] [--muxer yamux|mplex|both] [--cluster N] [--shard N]
    [--peer MULTIADDR]... [--subscribe CONTENT_TOPIC]... [--relayed PREFIX]...
    [--publish CONTENT_TOPIC (--message TEXT | --payload-hex HEX) [--count N] [--interval-ms M]
     [--min-mesh N]] [--expect N] [--linger S] [--lifetime S]`;

export async function runWakuCli(impl) {
  setLogTag(impl.label);
  quietConsole();
  const { values: o, positionals } = parseCli(process.argv.slice(2), {
    port: { type: "string", default: "0" },
    muxer: { type: "string", default: impl.defaultMuxer },
    cluster: { type: "string", default: "16" },
    shard: { type: "string", default: "64" },
    peer: { type: "string", multiple: true, default: [] },
    subscribe: { type: "string", multiple: true, default: [] },
    relayed: { type: "string", multiple: true, default: [] },
    publish: { type: "string" },
    message: { type: "string" },
    "payload-hex": { type: "string" },
    count: { type: "string", default: "1" },
    "interval-ms": { type: "string", default: "200" },
    "min-mesh": { type: "string", default: "1" },
    expect: { type: "string", default: "0" },
    linger: { type: "string", default: "1" },
    lifetime: { type: "string", default: "60" },
    help: { type: "boolean", default: false },
  });
  if (o.help) die(EXIT_OK, USAGE);
  if (positionals.length) die(EXIT_USAGE, USAGE);
  const cluster = num(o.cluster, "--cluster", { max: 65535 });
  const shard = num(o.shard, "--shard", { max: 1023 });
  const port = num(o.port, "--port", { max: 65535 });
  const count = num(o.count, "--count", { max: 100000 });
  const intervalMs = num(o["interval-ms"], "--interval-ms");
  const minMesh = num(o["min-mesh"], "--min-mesh", { max: 100 });
  const expect = num(o.expect, "--expect");
  const linger = num(o.linger, "--linger");
  const lifetime = num(o.lifetime, "--lifetime");
  let payload = null;
  if (o.publish) {
    if ((o.message == null) === (o["payload-hex"] == null)) die(EXIT_USAGE, "--publish needs --message or --payload-hex");
    if (o["payload-hex"] != null && !/^([0-9a-fA-F]{2})*$/.test(o["payload-hex"])) die(EXIT_USAGE, "bad --payload-hex");
    payload = o.message != null ? Buffer.from(o.message, "utf8") : Buffer.from(o["payload-hex"], "hex");
  }
  const pubsubTopic = pubsubTopicOf(cluster, shard);

  const deadline = Date.now() + lifetime * 1000;
  let received = 0;
  let published = 0;
  let failed = false;
  let pending = [];
  const emit = (obj) => (pending ? pending.push(obj) : out(obj));

  const node = await impl.createWakuNode({ port, muxers: muxerList(o.muxer), cluster, shard, emit });
  const { libp2p, gossip } = node;
  libp2p.addEventListener("connection:open", (e) => {
    const c = e.detail;
    emit({ event: "connection", peer: c.remotePeer.toString(), muxer: muxerName(c.multiplexer), direction: c.direction });
  });
  libp2p.addEventListener("peer:identify", (e) => emit({ event: "identify", ...identifyInfo(e.detail) }));
  libp2p.addEventListener("connection:close", (e) => emit({ event: "disconnect", peer: e.detail.remotePeer.toString() }));
  gossip.addEventListener("subscription-change", (e) => {
    for (const s of e.detail.subscriptions)
      emit({ event: "subscription", peer: e.detail.peerId.toString(), pubsub_topic: s.topic, subscribe: s.subscribe });
  });
  // Mesh changes are read on each heartbeat (gossipsub 13 has no graft/prune events).
  let mesh = "[]";
  gossip.addEventListener("gossipsub:heartbeat", () => {
    const now = JSON.stringify(gossip.getMeshPeers(pubsubTopic).map(String).sort());
    if (now !== mesh) emit({ event: "mesh", pubsub_topic: pubsubTopic, peers: JSON.parse((mesh = now)) });
  });
  const meshSize = () => JSON.parse(mesh).length;
  // --relayed: every message this node relays (validated, first copy) whose
  // content topic starts with one of the prefixes, subscribed or not.
  if (o.relayed.length) {
    gossip.addEventListener("gossipsub:message", (e) => {
      try {
        const { msg, propagationSource } = e.detail;
        const m = decodeWakuMessage(msg.data);
        if (o.relayed.some((p) => m.contentTopic.startsWith(p)))
          emit({ event: "relayed", ...messageFields(msg.topic, m), from: propagationSource.toString() });
      } catch {}
    });
  }
  node.subscribe(o.subscribe, (m, topic, from) => {
    received++;
    emit({ event: "message", ...messageFields(topic, m), from: from ?? null });
  });

  const addr = libp2p.getMultiaddrs().map(String).find((a) => a.startsWith("/ip4/127.0.0.1/tcp/"));
  out({ event: "listening", addr, peer: libp2p.peerId.toString(), pubsub_topic: pubsubTopic, impl: impl.label });
  pending.forEach(out);
  pending = null;
  exitOnSignals(() => node.stop());

  for (const peer of o.peer) {
    let err;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await libp2p.dial(impl.multiaddr(peer));
        err = null;
        break;
      } catch (e) {
        err = e;
        await sleep(500);
      }
    }
    if (err) {
      emit({ event: "dial-error", addr: peer, error: err.message });
      failed = "dial-error";
    }
  }

  const timedOut = () => Date.now() >= deadline;
  if (o.publish && !failed) {
    while (meshSize() < minMesh && !timedOut()) await sleep(50);
    for (let i = 0; i < count && !timedOut(); i++) {
      if (i > 0) await sleep(intervalMs);
      // Payloads differ per message (msg id = sha256 of the message).
      const body = count > 1 ? Buffer.concat([payload, Buffer.from(` ${i + 1}`)]) : payload;
      const m = { payload: body, contentTopic: o.publish, version: 0, timestampNs: BigInt(Date.now()) * 1000000n };
      try {
        const { recipients } = await node.publish(m);
        published++;
        emit({ event: "published", ...messageFields(pubsubTopic, m), recipients });
      } catch (e) {
        emit({ event: "publish-error", content_topic: o.publish, error: e.message });
        failed = "publish-error";
        break;
      }
    }
  }

  // Goals: every message published (if --publish), --expect messages
  // received. No goal: run until the lifetime or a signal (exit 0).
  const goals = !!o.publish || expect > 0;
  const done = () => (!o.publish || published === count) && received >= expect;
  while (!failed && !(goals && done()) && !timedOut()) await sleep(50);
  const ok = !failed && (!goals || done());
  if (ok && goals) await sleep(linger * 1000);
  await Promise.race([node.stop().catch(() => {}), sleep(2000)]);
  const reason = failed || (!goals ? "lifetime" : ok ? "done" : "timeout");
  out({ event: "exit", reason, published, received });
  if (!ok) log(`${reason}: published ${published}/${o.publish ? count : 0}, received ${received}/${expect}`);
  process.exit(ok ? EXIT_OK : failed ? EXIT_FAIL : EXIT_TIMEOUT);
}
