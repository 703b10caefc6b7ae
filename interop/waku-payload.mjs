// SPDX-License-Identifier: Apache-2.0
// Waku payload version 1 (symmetric) and node-manager HELLO interop between
// @waku/message-encryption and pairlink's C code (issue 5). Driven by
// tests/interop/waku_payload.sh.
//
//   node waku-payload.mjs gen     --seed S --rounds N --out FILE   JS-sealed cases for C
//   node waku-payload.mjs check   --in FILE                        open C-sealed cases
//   node waku-payload.mjs vectors --doc FILE                       open the spec's HELLO vectors
//
// A case is one JSON object per line:
//   {"kind": "raw" | "hello", "round": i, "key": hex, "content_topic": s,
//    "payload": hex (the Waku payload: raw bytes, or the HELLO body),
//    "wire": hex (WakuMessage.payload, version 1), "tampered": hex (one bit flipped),
//    "hello": {"role", "identity", "created_at_ms" (decimal string), "nonce", "echo", "name"}}
// and the last line is {"kind":"end","lines":L} so a truncated stream is noticed.
// The HELLO body is built here from the layout in
// docs/protocol/node-manager-pairing.md, independently of the C encoder.
//
// Everything except the encoder's own IV and padding comes from the seed
// (AES-256-CTR keystream keyed by sha256(seed/stream)). Each command prints
// "RESULT lines=L failures=F" as its last stdout line.

import { createCipheriv, createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";

// @waku/* expect Promise.withResolvers (Node >= 22).
if (!Promise.withResolvers) {
  Promise.withResolvers = function () {
    let resolve, reject;
    const promise = new Promise((a, b) => {
      resolve = a;
      reject = b;
    });
    return { promise, resolve, reject };
  };
}
const { createEncoder, createDecoder } = await import("@waku/message-encryption/symmetric");

const ROUTING = { pubsubTopic: "/waku/2/rs/0/0", clusterId: 0, shardId: 0 };
const MAX_REPORT = 10;
const NAMES = [
  "",
  "Nimbus GUI",
  "Status node manager",
  "nœud — gestionnaire",
  "ノードマネージャー",
  "🚀 beacon node 🚀",
  "x".repeat(64),
  "é".repeat(32),
];

class Rng {
  constructor(seed, stream) {
    const key = createHash("sha256").update(`pairlink-waku-payload/${seed}/${stream}`).digest();
    this.cipher = createCipheriv("aes-256-ctr", key, Buffer.alloc(16));
  }
  bytes(n) {
    return this.cipher.update(Buffer.alloc(n));
  }
  below(n) {
    return this.bytes(4).readUInt32LE(0) % n;
  }
  pick(a) {
    return a[this.below(a.length)];
  }
}

const hex = (b) => Buffer.from(b).toString("hex");
const unhex = (s) => new Uint8Array(Buffer.from(s, "hex"));

function args() {
  const out = {};
  const a = process.argv.slice(3);
  for (let i = 0; i < a.length; i += 2) out[a[i].replace(/^--/, "")] = a[i + 1];
  return out;
}

// ---------------------------------------------------------------- HELLO body

function encodeHello(h) {
  const name = Buffer.from(h.name, "utf8");
  if (name.length > 64) throw new Error("name too long");
  const b = Buffer.alloc(78 + name.length);
  b.write("PLH1", 0, "ascii");
  b[4] = h.role;
  Buffer.from(h.identity, "hex").copy(b, 5);
  b.writeBigUInt64BE(BigInt(h.created_at_ms), 37);
  Buffer.from(h.nonce, "hex").copy(b, 45);
  Buffer.from(h.echo, "hex").copy(b, 61);
  b[77] = name.length;
  name.copy(b, 78);
  return new Uint8Array(b);
}

function decodeHello(bytes) {
  const b = Buffer.from(bytes);
  if (b.length < 78 || b.length > 142) throw new Error(`body length ${b.length}`);
  if (b.toString("ascii", 0, 4) !== "PLH1") throw new Error("magic");
  if (b[4] !== 1 && b[4] !== 2) throw new Error("role");
  if (b.length !== 78 + b[77]) throw new Error("name_len");
  const name = new TextDecoder("utf-8", { fatal: true }).decode(b.subarray(78));
  return {
    role: b[4],
    identity: b.subarray(5, 37).toString("hex"),
    created_at_ms: b.readBigUInt64BE(37).toString(),
    nonce: b.subarray(45, 61).toString("hex"),
    echo: b.subarray(61, 77).toString("hex"),
    name,
  };
}

function sameHello(a, b) {
  return ["role", "identity", "created_at_ms", "nonce", "echo", "name"].every((k) => String(a[k]) === String(b[k]));
}

// ---------------------------------------------------------------- JS seal / open

async function seal(key, contentTopic, payload) {
  const enc = createEncoder({ contentTopic, routingInfo: ROUTING, symKey: key });
  const proto = await enc.toProtoObj({ payload });
  if (proto.version !== 1) throw new Error(`encoder made version ${proto.version}`);
  // Through the protobuf and back, as a receiver would get it.
  const dec = createDecoder(contentTopic, ROUTING, key);
  const wireMsg = await enc.toWire({ payload });
  const back = await dec.fromProtoObj(ROUTING.pubsubTopic, await dec.fromWireToProtoObj(wireMsg));
  if (!back || hex(back.payload) !== hex(payload)) throw new Error("the JS decoder cannot read its own message");
  return proto.payload;
}

async function open(key, contentTopic, wire) {
  const dec = createDecoder(contentTopic, ROUTING, key);
  const msg = await dec.fromProtoObj(ROUTING.pubsubTopic, {
    payload: wire,
    contentTopic,
    version: 1,
    timestamp: undefined,
    meta: undefined,
    rateLimitProof: undefined,
    ephemeral: false,
  });
  return msg ? msg.payload : undefined;
}

// ---------------------------------------------------------------- commands

async function gen() {
  const { seed, rounds, out } = args();
  const n = Number(rounds);
  const rng = new Rng(seed, "gen");
  const lines = [];
  for (let i = 0; i < n; i++) {
    const key = rng.bytes(32);
    const contentTopic = `/pairlink/1/pair-${hex(rng.bytes(16))}/proto`;
    let c;
    if (i % 3 === 2) {
      const sizes = [0, 1, 2, 142, 253, 254, 255, 256, 257, 1000, 65535, 65536, 70000];
      const len = i % 30 === 2 ? rng.pick(sizes) : rng.pick(sizes.slice(0, 10));
      const payload = rng.bytes(len);
      c = { kind: "raw", payload: hex(payload) };
    } else {
      const h = {
        role: 1 + rng.below(2),
        identity: hex(rng.bytes(32)),
        created_at_ms: (rng.bytes(8).readBigUInt64BE(0) >> 1n).toString(),
        nonce: hex(rng.bytes(16)),
        echo: rng.below(2) ? hex(rng.bytes(16)) : "00".repeat(16),
        name: rng.pick(NAMES),
      };
      c = { kind: "hello", hello: h, payload: hex(encodeHello(h)) };
    }
    const wire = await seal(new Uint8Array(key), contentTopic, unhex(c.payload));
    const tampered = Buffer.from(wire);
    tampered[rng.below(tampered.length)] ^= 1 << rng.below(8);
    lines.push(
      JSON.stringify({ ...c, round: i, key: hex(key), content_topic: contentTopic, wire: hex(wire), tampered: hex(tampered) }),
    );
  }
  lines.push(JSON.stringify({ kind: "end", lines: n }));
  writeFileSync(out, lines.join("\n") + "\n");
  console.log(`RESULT lines=${n} failures=0`);
}

async function check() {
  const { in: file } = args();
  const text = readFileSync(file, "utf8").split("\n").filter((l) => l.length);
  let lines = 0,
    failures = 0,
    end = null;
  const fail = (i, msg) => {
    failures++;
    if (failures <= MAX_REPORT) console.error(`FAIL C->JS line ${i + 1}: ${msg}`);
  };
  for (let i = 0; i < text.length; i++) {
    let c;
    try {
      c = JSON.parse(text[i]);
    } catch (e) {
      fail(i, `not JSON: ${e.message}`);
      continue;
    }
    if (c.kind === "end") {
      end = c;
      continue;
    }
    lines++;
    try {
      const key = unhex(c.key);
      const got = await open(key, c.content_topic, unhex(c.wire));
      if (!got) {
        fail(i, `${c.kind}: the JS decoder refused the C-sealed message`);
        continue;
      }
      if (hex(got) !== c.payload) {
        fail(i, `${c.kind}: payload differs`);
        continue;
      }
      if (c.kind === "hello") {
        const h = decodeHello(got);
        if (!sameHello(h, c.hello)) fail(i, `HELLO fields differ: ${JSON.stringify(h)} vs ${JSON.stringify(c.hello)}`);
        if (hex(encodeHello(c.hello)) !== c.payload) fail(i, "the JS encoding of the HELLO differs from C's");
      }
      const bad = await open(key, c.content_topic, unhex(c.tampered)).catch(() => undefined);
      if (bad) fail(i, `${c.kind}: the JS decoder accepted a tampered message`);
    } catch (e) {
      fail(i, `${c.kind}: ${e.message}`);
    }
  }
  if (!end || end.lines !== lines) fail(text.length, `stream truncated: end=${JSON.stringify(end)} lines=${lines}`);
  console.log(`RESULT lines=${lines} failures=${failures}`);
  process.exit(failures ? 1 : 0);
}

async function vectors() {
  const { doc } = args();
  const text = readFileSync(doc, "utf8");
  const block = text.split("<!-- BEGIN VECTORS -->")[1]?.split("<!-- END VECTORS -->")[0];
  if (!block) throw new Error("no vector block in the spec");
  const v = {};
  for (const l of block.split("\n")) {
    const k = l.indexOf(" = ");
    if (k > 0) v[l.slice(0, k)] = l.slice(k + 3);
  }
  let lines = 0,
    failures = 0;
  const hs = unhex(v.HS);
  const expect = {
    hello_app: { role: 2, identity: v["nm.identity_pub"] },
    hello_node_manager: { role: 1, identity: v["app.identity_pub"] },
  };
  for (const pre of ["hello_app", "hello_node_manager"]) {
    lines++;
    const got = await open(hs, v["pair.content_topic"], unhex(v[`${pre}.wire`]));
    const want = {
      ...expect[pre],
      created_at_ms: v[`${pre}.created_at_ms`],
      nonce: v[`${pre}.nonce`],
      echo: v[`${pre}.echo`],
      name: v[`${pre}.name`],
    };
    if (!got || hex(got) !== v[`${pre}.body`] || !sameHello(decodeHello(got), want)) {
      failures++;
      console.error(`FAIL vectors: ${pre} does not open to its body in JS`);
    }
    if (Buffer.from(unhex(v[`${pre}.wire`])).toString("base64") !== v[`${pre}.wire_base64`]) {
      failures++;
      console.error(`FAIL vectors: ${pre}.wire_base64`);
    }
  }
  const ct = createHash("sha256").update(v["pair.content_topic"], "utf8").digest("hex");
  if (ct !== v["pair.relay_topic"]) {
    failures++;
    console.error("FAIL vectors: pair.relay_topic");
  }
  console.log(`RESULT lines=${lines} failures=${failures}`);
  process.exit(failures ? 1 : 0);
}

const cmd = process.argv[2];
const table = { gen, check, vectors };
if (!table[cmd]) {
  console.error("usage: node waku-payload.mjs gen|check|vectors ...");
  process.exit(2);
}
await table[cmd]();
