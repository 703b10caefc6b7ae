// SPDX-License-Identifier: Apache-2.0
// Waku Noise interop between pairlink's C core and @waku/noise 0.0.3-a19e968
// (js-noise), issue 4 item 5. Driven by tests/interop/noise_interop.sh.
//
//   node noise-interop.mjs gen --out DIR [--count N] [--transport N]
//       js-noise writes N transcripts per pattern (shared vector format,
//       ../shared/vectors/README.md) from fresh random keys: two js-noise
//       parties run the handshake, the ephemeral keys they generate are
//       recorded. Files: DIR/js_<pattern>_<i>.json.
//   node noise-interop.mjs replay FILE...
//       js-noise replays transcripts (from pairlink) from their keys with the
//       ephemerals injected and checks every byte: wires, payloads, nametags,
//       authcode, final h, both split keys, transport messages and, for
//       WakuPairing, the QR prologue and both commitments.
//   node noise-interop.mjs tamper IN OUT [IN OUT...]
//       copies transcripts with one byte of one wire changed.
//   node noise-interop.mjs live --peer PATH [--pattern P] [--rounds N] [--timeout S]
//       For each pattern and each role, js-noise runs a live handshake with
//       the C peer (tests/interop/noise_peer.c) over its stdin/stdout, then
//       transport messages both ways (see the line protocol there).
//       WakuPairing goes through js-noise's own WakuPairing class.
//
// Every subcommand prints one line per case and a last line
// "RESULT <what> cases=N failures=F"; exit 0 only if F is 0. The first
// difference of a failed case is printed with it.

// js-waku dependencies may use Promise.withResolvers, which Node 20 lacks:
// polyfill before they are imported (hence the dynamic import below).
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function withResolvers() {
    let resolve, reject;
    const promise = new this((a, b) => {
      resolve = a;
      reject = b;
    });
    return { promise, resolve, reject };
  };
}

import { randomBytes, randomInt } from "node:crypto";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

// js-noise logs to the console (ephemeral keys, nametag misses, "Waiting
// for authcode confirmation..."): keep our stdout for results only.
const out = (s) => process.stdout.write(s + "\n");
console.log = () => {};
console.debug = () => {};
console.info = () => {};

const {
  Handshake,
  NoiseHandshakePatterns,
  NoisePublicKey,
  PayloadV2,
  QR,
  WakuPairing,
  InitiatorParameters,
  ResponderParameters,
} = await import("@waku/noise");
// commitPublicKey (RFC 43's H(key || r)) is not re-exported by the index.
const { commitPublicKey } = await import(new URL("node_modules/@waku/noise/dist/crypto.js", import.meta.url));

const PATTERNS = ["K1K1", "XK1", "XX", "XXpsk0", "WakuPairing"];
const fullName = (p) => `Noise_${p}_25519_ChaChaPoly_SHA256`;
const shortName = (n) => {
  const m = /^Noise_(.+)_25519_ChaChaPoly_SHA256$/.exec(n);
  return m ? m[1] : n;
};
const PUBSUB = "/waku/2/rs/0/0";

// ------------------------------------------------------------ bytes

const hex = (b) => Buffer.from(b).toString("hex");
function unhex(s, what) {
  if (typeof s !== "string" || s.length % 2 || !/^[0-9a-fA-F]*$/.test(s))
    throw new Diff(`${what}: not hex`);
  return Uint8Array.from(Buffer.from(s, "hex"));
}
const eq = (a, b) => Buffer.from(a).equals(Buffer.from(b));
const utf8 = (s) => new TextEncoder().encode(s);

class Diff extends Error {}

// Layout names for a PayloadV2 byte position (as pairlink's replay prints).
function wireField(w, at) {
  if (at < 16) return "nametag";
  if (at === 16) return "protocol id";
  if (at === 17) return "handshake length";
  const hs = w.length > 17 ? w[17] : 0;
  if (at < 18 + hs) return "handshake keys";
  if (at < 26 + hs) return "transport length";
  return "transport";
}

// Throws a Diff naming the first differing byte.
function same(what, want, got, isWire = false) {
  want = Buffer.from(want);
  got = Buffer.from(got);
  if (want.equals(got)) return;
  const n = Math.min(want.length, got.length);
  let i = 0;
  while (i < n && want[i] === got[i]) i++;
  if (i === n)
    throw new Diff(`${what}: length ${got.length}, expected ${want.length} (first ${n} bytes equal)`);
  const where = isWire ? ` (${wireField(want, i)})` : "";
  throw new Diff(
    `${what}: byte ${i}${where} differs: expected 0x${want[i].toString(16).padStart(2, "0")}, ` +
      `got 0x${got[i].toString(16).padStart(2, "0")}`,
  );
}
function sameStr(what, want, got) {
  if (want !== got) throw new Diff(`${what}: expected ${want}, got ${got}`);
}

// Payload sizes around the 248-byte PKCS#7 block, plus random ones.
const EDGE_LENGTHS = [0, 1, 31, 32, 247, 248, 249, 495, 496, 497, 1000];
const randLen = () => (randomInt(3) ? EDGE_LENGTHS[randomInt(EDGE_LENGTHS.length)] : randomInt(1501));
const rand = (n) => Uint8Array.from(randomBytes(n));

// The pre-message public keys, in the pattern's order: "->" tokens are the
// initiator's keys, "<-" the responder's. I and R: {s, e} with publicKey.
function preMessageKeys(pat, I, R) {
  const keys = [];
  for (const pm of pat.preMessagePatterns) {
    const who = pm.direction === "->" ? I : R;
    for (const t of pm.tokens) {
      if (!who[t]) throw new Error(`pre-message key ${t} missing`);
      keys.push(NoisePublicKey.fromPublicKey(who[t].publicKey));
    }
  }
  return keys;
}
const fromInitiator = (mp) => mp.direction === "->";

// Route js-noise's ephemeral key generation (stepHandshake writing "e"):
// gen records the keys it hands out, replay injects the transcript's.
function withKeyGen(pat, fn, body) {
  const orig = pat.dhKey.generateKeyPair;
  pat.dhKey.generateKeyPair = fn;
  try {
    return body();
  } finally {
    pat.dhKey.generateKeyPair = orig;
  }
}

// ------------------------------------------------------------ gen

function genTranscript(p, transportCount) {
  const pat = NoiseHandshakePatterns[fullName(p)];
  const gen = pat.dhKey.generateKeyPair.bind(pat.dhKey); // before withKeyGen patches it
  const kp = () => gen();
  const I = { s: kp(), e: null };
  const R = { s: kp(), e: null };
  let prologue;
  let prologueUtf8 = null;
  let psk = null;
  let payloads;
  let tag1;
  if (p === "WakuPairing") {
    // RFC 43 as js-noise's WakuPairing does it: the QR carries eB and
    // H(sB || r); message 1 carries H(sA || s), message 2 r, message 3 s.
    R.e = kp();
    const r = rand(32);
    const s = rand(32);
    const qr = new QR("pairlink-interop", "0.1", String(randomInt(1024)), R.e.publicKey,
      commitPublicKey(pat.hash, R.s.publicKey, r));
    prologue = qr.toByteArray();
    prologueUtf8 = qr.toString();
    payloads = [commitPublicKey(pat.hash, I.s.publicKey, s), r, s];
    tag1 = rand(16);
  } else {
    prologue = rand(randomInt(65));
    if (p.includes("psk")) psk = rand(32);
    payloads = pat.messagePatterns.map(() => rand(randLen()));
    // js-noise's default first nametag is empty, which serializes a broken
    // PayloadV2; the interoperable default is 16 zero bytes.
    tag1 = new Uint8Array(16);
  }
  const mk = (initiator) =>
    new Handshake({
      hsPattern: pat,
      ephemeralKey: initiator ? undefined : R.e ?? undefined,
      staticKey: initiator ? I.s : R.s,
      prologue,
      psk: psk ?? new Uint8Array(),
      preMessagePKs: preMessageKeys(pat, I, R),
      initiator,
    });
  const hi = mk(true);
  const hr = mk(false);
  let writer = null;
  const messages = [];
  let authcode = null;
  withKeyGen(pat, () => (writer.e = kp()), () => {
    pat.messagePatterns.forEach((mp, i) => {
      const fromI = fromInitiator(mp);
      const [w, rd] = fromI ? [hi, hr] : [hr, hi];
      const tag = i === 0 ? tag1 : w.hs.toMessageNametag();
      if (i > 0) same(`message ${i + 1}: reader's nametag`, tag, rd.hs.toMessageNametag());
      writer = fromI ? I : R;
      const step = w.stepHandshake({ transportMessage: payloads[i], messageNametag: tag });
      const wire = step.payload2.serialize();
      const got = rd.stepHandshake({ readPayloadV2: PayloadV2.deserialize(wire), messageNametag: tag });
      same(`message ${i + 1}: payload read back`, payloads[i], got.transportMessage);
      messages.push({ sender: fromI ? "initiator" : "responder", nametag: hex(tag),
        payload: hex(payloads[i]), wire: hex(wire) });
      if (i === 0) {
        authcode = hi.genAuthcode();
        sameStr("authcode (responder)", authcode, hr.genAuthcode());
      }
    });
  });
  same("final h (responder)", hi.hs.ss.h, hr.hs.ss.h);
  const finalH = new Uint8Array(hi.hs.ss.h);
  const si = hi.finalizeHandshake();
  const sr = hr.finalizeHandshake();
  same("split", si.csOutbound.k, sr.csInbound.k);
  same("split (other direction)", sr.csOutbound.k, si.csInbound.k);
  // Transport senders in random order, so the two nametag sequences advance
  // unevenly.
  const transport = [];
  for (let i = 0; i < transportCount; i++) {
    const fromI = randomInt(2) === 0;
    const [s, r] = fromI ? [si, sr] : [sr, si];
    const payload = rand(randLen());
    const wire = s.writeMessage(payload).serialize();
    same(`transport ${i + 1}: read back`, payload, r.readMessage(PayloadV2.deserialize(wire)));
    transport.push({ sender: fromI ? "initiator" : "responder", payload: hex(payload), wire: hex(wire) });
  }
  const party = (x) => ({
    static_priv: hex(x.s.privateKey),
    static_pub: hex(x.s.publicKey),
    ephemeral_priv: x.e ? hex(x.e.privateKey) : null,
    ephemeral_pub: x.e ? hex(x.e.publicKey) : null,
  });
  const t = {
    pattern: fullName(p),
    source: "@waku/noise 0.0.3-a19e968 (js-noise), fresh random keys",
    prologue: hex(prologue),
  };
  if (prologueUtf8 !== null) t.prologue_utf8 = prologueUtf8;
  Object.assign(t, {
    psk: psk ? hex(psk) : null,
    initiator: party(I),
    responder: party(R),
    messages,
    final_h: hex(finalH),
    initiator_outbound_key: hex(si.csOutbound.k),
    responder_inbound_key: hex(sr.csInbound.k),
    transport,
    authcode,
  });
  return t;
}

// ------------------------------------------------------------ replay

function replayTranscript(t) {
  if (typeof t !== "object" || t === null) throw new Diff("not a JSON object");
  const pat = NoiseHandshakePatterns[t.pattern];
  if (!pat || !PATTERNS.includes(shortName(t.pattern))) throw new Diff(`pattern: unknown '${t.pattern}'`);
  const p = shortName(t.pattern);
  const party = (name) => {
    const o = t[name];
    if (!o || typeof o !== "object") throw new Diff(`${name}: missing`);
    const key = (k) => {
      if (o[k] == null) return null;
      const b = unhex(o[k], `${name}.${k}`);
      if (b.length !== 32) throw new Diff(`${name}.${k}: ${b.length} bytes, expected 32`);
      return b;
    };
    const sPriv = key("static_priv");
    const ePriv = key("ephemeral_priv");
    const x = { s: sPriv && pat.dhKey.generateKeyPairFromSeed(sPriv), e: ePriv && pat.dhKey.generateKeyPairFromSeed(ePriv) };
    if (!x.s) throw new Diff(`${name}.static_priv: missing`);
    if (o.static_pub != null) same(`${name}.static_pub`, key("static_pub"), x.s.publicKey);
    if (o.ephemeral_pub != null) {
      if (!x.e) throw new Diff(`${name}.ephemeral_priv: missing`);
      same(`${name}.ephemeral_pub`, key("ephemeral_pub"), x.e.publicKey);
    }
    return x;
  };
  const I = party("initiator");
  const R = party("responder");
  const prologue = t.prologue == null ? new Uint8Array() : unhex(t.prologue, "prologue");
  let psk = new Uint8Array();
  if (p.includes("psk")) {
    if (t.psk == null) throw new Diff("psk: missing");
    psk = unhex(t.psk, "psk");
  }
  if (!Array.isArray(t.messages) || t.messages.length !== pat.messagePatterns.length)
    throw new Diff(`messages: expected ${pat.messagePatterns.length}`);

  let qr = null;
  if (p === "WakuPairing") {
    if (!R.e) throw new Diff("responder.ephemeral_priv: missing (the QR key)");
    qr = QR.from(prologue);
    same("QR ephemeral key vs responder.ephemeral_pub", R.e.publicKey, qr.ephemeralKey);
    sameStr("QR re-encoded", Buffer.from(prologue).toString("utf8"), qr.toString());
  }
  const mk = (initiator) =>
    new Handshake({
      hsPattern: pat,
      ephemeralKey: initiator ? undefined : p === "WakuPairing" ? R.e : undefined,
      staticKey: initiator ? I.s : R.s,
      prologue,
      psk,
      preMessagePKs: preMessageKeys(pat, I, R),
      initiator,
    });
  const hi = mk(true);
  const hr = mk(false);
  let writer = null;
  const payloads = [];
  withKeyGen(pat, () => {
    if (!writer.e) throw new Diff("an ephemeral key the pattern generates is missing");
    return writer.e;
  }, () => {
    pat.messagePatterns.forEach((mp, i) => {
      const m = t.messages[i];
      const fromI = fromInitiator(mp);
      const role = fromI ? "initiator" : "responder";
      sameStr(`message ${i + 1} sender`, role, m.sender);
      const [w, rd] = fromI ? [hi, hr] : [hr, hi];
      const tag = unhex(m.nametag, `messages[${i}].nametag`);
      if (tag.length !== 16) throw new Diff(`messages[${i}].nametag: not 16 bytes`);
      if (i > 0) {
        same(`message ${i + 1} nametag (writer)`, tag, w.hs.toMessageNametag());
        same(`message ${i + 1} nametag (reader)`, tag, rd.hs.toMessageNametag());
      }
      const payload = unhex(m.payload, `messages[${i}].payload`);
      const want = unhex(m.wire, `messages[${i}].wire`);
      writer = fromI ? I : R;
      const step = w.stepHandshake({ transportMessage: payload, messageNametag: tag });
      same(`message ${i + 1} (${role}) wire`, want, step.payload2.serialize(), true);
      const got = rd.stepHandshake({ readPayloadV2: PayloadV2.deserialize(want), messageNametag: tag });
      same(`message ${i + 1} payload`, payload, got.transportMessage);
      payloads.push(payload);
      if (i === 0) {
        const code = hi.genAuthcode();
        sameStr("authcode (responder vs initiator)", code, hr.genAuthcode());
        if (t.authcode != null) sameStr("authcode", t.authcode, code);
      }
    });
  });
  same("final h (responder vs initiator)", hi.hs.ss.h, hr.hs.ss.h);
  if (t.final_h != null) same("final_h", unhex(t.final_h, "final_h"), hi.hs.ss.h);
  const si = hi.finalizeHandshake();
  const sr = hr.finalizeHandshake();
  same("split: initiator outbound vs responder inbound", si.csOutbound.k, sr.csInbound.k);
  same("split: responder outbound vs initiator inbound", sr.csOutbound.k, si.csInbound.k);
  if (t.initiator_outbound_key != null)
    same("initiator_outbound_key", unhex(t.initiator_outbound_key, "initiator_outbound_key"), si.csOutbound.k);
  if (t.responder_inbound_key != null)
    same("responder_inbound_key", unhex(t.responder_inbound_key, "responder_inbound_key"), sr.csInbound.k);
  const transport = t.transport ?? [];
  if (!Array.isArray(transport)) throw new Diff("transport: not an array");
  transport.forEach((m, i) => {
    if (m.sender !== "initiator" && m.sender !== "responder") throw new Diff(`transport[${i}].sender: bad`);
    const fromI = m.sender === "initiator";
    const [s, r] = fromI ? [si, sr] : [sr, si];
    const payload = unhex(m.payload, `transport[${i}].payload`);
    const want = unhex(m.wire, `transport[${i}].wire`);
    same(`transport ${i + 1} (${m.sender}) wire`, want, s.writeMessage(payload).serialize(), true);
    const n0 = r.csInbound.n.getUint64();
    let got;
    try {
      got = r.readMessage(PayloadV2.deserialize(want));
    } catch (e) {
      throw new Diff(`transport ${i + 1}: js-noise rejects it: ${e.message}`);
    }
    if (r.csInbound.n.getUint64() === n0) throw new Diff(`transport ${i + 1}: js-noise cannot decrypt it`);
    same(`transport ${i + 1} payload`, payload, got);
  });
  if (p === "WakuPairing") {
    same("QR commitment vs sha256(responder static || message 2 payload)", qr.committedStaticKey,
      commitPublicKey(pat.hash, R.s.publicKey, payloads[1]));
    same("message 1 payload vs sha256(initiator static || message 3 payload)", payloads[0],
      commitPublicKey(pat.hash, I.s.publicKey, payloads[2]));
  }
  return { pattern: p, handshake: t.messages.length, transport: transport.length, authcode: t.authcode ?? null };
}

// ------------------------------------------------------------ live

// Line protocol with the C peer: "<tag> <field>..." per line, fields hex or
// plain tokens. Lines are sorted into one queue per tag ("msg" and "bad"
// share the transport queue, whose order matters).
class Lines {
  constructor(child, timeoutMs) {
    this.child = child;
    this.timeoutMs = timeoutMs;
    this.queues = new Map();
    this.waiters = new Map();
    this.closed = null;
    this.sent = [];
    let buf = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.deliver(line);
      }
    });
    child.stdout.on("end", () => this.close("the C peer closed its stdout"));
    child.stdin.on("error", () => {}); // EPIPE after the peer exits: reported via exit
  }
  key(tag) {
    return tag === "bad" ? "msg" : tag;
  }
  deliver(line) {
    const [tag, ...fields] = line.split(" ");
    if (tag === "err") {
      this.close(`the C peer failed: ${fields.join(" ")}`);
      return;
    }
    const k = this.key(tag);
    const w = this.waiters.get(k);
    if (w) {
      this.waiters.delete(k);
      w.resolve({ tag, fields });
    } else {
      if (!this.queues.has(k)) this.queues.set(k, []);
      this.queues.get(k).push({ tag, fields });
    }
  }
  close(reason) {
    if (this.closed) return;
    this.closed = reason;
    for (const w of this.waiters.values()) w.reject(new Diff(reason));
    this.waiters.clear();
  }
  send(tag, ...fields) {
    this.child.stdin.write([tag, ...fields].join(" ") + "\n");
  }
  // The next line for `tag` (for "msg": a "msg" or "bad" line).
  next(tag) {
    const k = this.key(tag);
    const q = this.queues.get(k);
    if (q && q.length) return Promise.resolve(q.shift());
    if (this.closed) return Promise.reject(new Diff(this.closed));
    if (this.waiters.has(k)) return Promise.reject(new Error(`two readers for ${k}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(k);
        reject(new Diff(`timed out waiting for a '${tag}' line from the C peer`));
      }, this.timeoutMs);
      this.waiters.set(k, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
    });
  }
  async expect(tag, nfields) {
    const l = await this.next(tag);
    if (l.tag !== tag || l.fields.length !== nfields)
      throw new Diff(`expected a '${tag}' line with ${nfields} fields, got '${l.tag}' with ${l.fields.length}`);
    return l.fields;
  }
}

// The handshake payloads of the non-pairing patterns: fixed so that both
// sides can check what arrived (message i carries HS_LEN[i] bytes).
const HS_LEN = [5, 260, 520];
function hsPayload(i) {
  const b = new Uint8Array(HS_LEN[i]);
  for (let k = 0; k < b.length; k++) b[k] = (i * 31 + k) & 0xff;
  return b;
}

// A js-noise session behind a uniform interface: write(pt) -> wire bytes,
// read(wire) -> plaintext or null when rejected (inbound state unchanged).
function handshakeSession(res) {
  const state = () => `${res.csInbound.n.getUint64()}/${res.nametagsInbound.counter}`;
  return {
    h: res.h,
    rs: res.rs,
    write: async (pt) => res.writeMessage(pt).serialize(),
    read: async (wire) => {
      const before = state();
      let pt = null;
      try {
        pt = res.readMessage(PayloadV2.deserialize(wire));
      } catch {
        pt = null;
      }
      return state() === before ? null : pt;
    },
  };
}

// K1K1, XK1, XX, XXpsk0 with js-noise's Handshake object.
async function jsHandshake(io, p, initiator, prologue, psk, stats) {
  const pat = NoiseHandshakePatterns[fullName(p)];
  const me = { s: pat.dhKey.generateKeyPair() };
  io.send("hello", hex(me.s.publicKey));
  const [rpub] = await io.expect("hello", 1);
  const remote = { s: { publicKey: unhex(rpub, "hello") } };
  const [I, R] = initiator ? [me, remote] : [remote, me];
  const hs = new Handshake({ hsPattern: pat, staticKey: me.s, prologue, psk: psk ?? new Uint8Array(),
    preMessagePKs: preMessageKeys(pat, I, R), initiator });
  for (const [i, mp] of pat.messagePatterns.entries()) {
    const writing = fromInitiator(mp) === initiator;
    const tag = i === 0 ? new Uint8Array(16) : hs.hs.toMessageNametag();
    if (writing) {
      const st = hs.stepHandshake({ transportMessage: hsPayload(i), messageNametag: tag });
      io.send("hs", hex(st.payload2.serialize()));
    } else {
      const [w] = await io.expect("hs", 1);
      const st = hs.stepHandshake({ readPayloadV2: PayloadV2.deserialize(unhex(w, "hs")), messageNametag: tag });
      same(`handshake message ${i + 1} payload`, hsPayload(i), st.transportMessage);
    }
    stats.hs++;
    if (i === 0) {
      const code = hs.genAuthcode();
      io.send("auth", code);
      const [theirs] = await io.expect("auth", 1);
      sameStr("authcode (C vs JS)", code, theirs);
      stats.authcode = code;
    }
  }
  const res = hs.finalizeHandshake();
  same("remote static key learned vs announced", remote.s.publicKey, res.rs);
  return handshakeSession(res);
}

// WakuPairing with js-noise's WakuPairing class; its Waku sender and
// subscription are bridged to the pipe.
async function jsPairing(io, initiator, stats) {
  const pat = NoiseHandshakePatterns[fullName("WakuPairing")];
  const me = pat.dhKey.generateKeyPair();
  const sender = {
    send: async (encoder, msg) => {
      const proto = await encoder.toProtoObj(msg);
      io.send("hs", hex(proto.payload));
      stats.hs++;
      return { successes: [], failures: [] };
    },
  };
  const subscriber = {
    toSubscriptionIterator: async (decoder) => ({
      iterator: (async function* () {
        for (;;) {
          const [w] = await io.expect("hs", 1);
          stats.hs++;
          yield await decoder.fromProtoObj(PUBSUB, { payload: unhex(w, "hs"), version: 2,
            contentTopic: decoder.contentTopic, ephemeral: true });
        }
      })(),
      stop: async () => {},
    }),
  };
  let pairing;
  io.send("hello", hex(me.publicKey));
  if (initiator) {
    const [rpub] = await io.expect("hello", 1);
    const [qrString, tagHex] = await io.expect("qr", 2);
    stats.remoteStatic = unhex(rpub, "hello");
    pairing = new WakuPairing(sender, subscriber, me, new InitiatorParameters(qrString, unhex(tagHex, "qr tag")));
  } else {
    pairing = new WakuPairing(sender, subscriber, me, new ResponderParameters("pairlink-interop", "0.1", "7"));
    const info = pairing.getPairingInfo();
    io.send("qr", info.qrCode, hex(info.qrMessageNameTag));
    const [rpub] = await io.expect("hello", 1);
    stats.remoteStatic = unhex(rpub, "hello");
  }
  // The users compare authcodes: here each side sends its own and checks.
  pairing.getAuthCode().then(async (code) => {
    io.send("auth", code);
    let ok = false;
    try {
      const [theirs] = await io.expect("auth", 1);
      ok = theirs === code;
      if (!ok) stats.authMismatch = `authcode: JS ${code}, C ${theirs}`;
    } catch (e) {
      stats.authMismatch = e.message;
    }
    stats.authcode = code;
    pairing.validateAuthCode(ok);
  });
  let codecs;
  try {
    codecs = await pairing.execute(io.timeoutMs);
  } catch (e) {
    throw new Diff(stats.authMismatch ?? `js-noise WakuPairing failed: ${e.message}`);
  }
  const [encoder, decoder] = codecs;
  const res = pairing.getHandshakeResult();
  same("remote static key learned vs announced", stats.remoteStatic, res.rs);
  // The C side announces the content topic it derived from the QR.
  const [topic] = await io.expect("topic", 1);
  sameStr("QR content topic (C vs JS)", pairing.contentTopic, topic);
  const base = handshakeSession(res);
  return {
    ...base,
    write: async (pt) => (await encoder.toProtoObj({ payload: pt })).payload,
    read: async (wire) => {
      const before = `${res.csInbound.n.getUint64()}/${res.nametagsInbound.counter}`;
      const m = await decoder.fromProtoObj(PUBSUB, { payload: wire, version: 2,
        contentTopic: decoder.contentTopic, ephemeral: true });
      const after = `${res.csInbound.n.getUint64()}/${res.nametagsInbound.counter}`;
      return !m || before === after ? null : m.payload;
    },
  };
}

function tamper(wire) {
  const b = new Uint8Array(wire);
  b[randomInt(b.length)] ^= 1 + randomInt(255);
  return b;
}

// The transport schedule both peers follow: in round r the leader
// (initiator on even rounds) sends a burst of 1 + r % 3 messages, each
// burst preceded by a tampered copy of its first message ("bad"); the
// follower decrypts the burst (the C peer in reverse order), then echoes
// every plaintext back in order, again preceded by one "bad"; the leader
// checks the echoes.
async function transportRounds(io, sess, initiator, rounds, stats) {
  const sendBurst = async (pts) => {
    for (const [j, pt] of pts.entries()) {
      const w = await sess.write(pt);
      if (j === 0) io.send("bad", hex(tamper(w)));
      io.send("msg", hex(w));
      stats.sent++;
    }
  };
  const readBurst = async (n, what) => {
    const got = [];
    while (got.length < n) {
      const l = await io.next("msg");
      if (l.fields.length !== 1) throw new Diff(`${what}: malformed '${l.tag}' line`);
      const w = unhex(l.fields[0], l.tag);
      const pt = await sess.read(w);
      if (l.tag === "bad") {
        if (pt !== null) throw new Diff(`${what}: js-noise accepted a tampered message`);
        stats.rejected++;
      } else {
        if (pt === null) throw new Diff(`${what}: js-noise rejected message ${got.length + 1} of the burst`);
        got.push(pt);
        stats.received++;
      }
    }
    return got;
  };
  for (let r = 0; r < rounds; r++) {
    const leader = (r % 2 === 0) === initiator;
    const n = 1 + (r % 3);
    if (leader) {
      const pts = Array.from({ length: n }, () => rand(randLen()));
      await sendBurst(pts);
      const echoes = await readBurst(n, `round ${r + 1} echoes`);
      pts.forEach((pt, j) => same(`round ${r + 1} echo ${j + 1} from C`, pt, echoes[j]));
    } else {
      const got = await readBurst(n, `round ${r + 1}`);
      await sendBurst(got);
    }
  }
}

async function liveCase(peer, p, jsInitiator, rounds, timeoutMs) {
  const prologue = p === "WakuPairing" ? null : rand(randomInt(65));
  const psk = p.includes("psk") ? rand(32) : null;
  const args = ["--pattern", p, "--role", jsInitiator ? "responder" : "initiator", "--rounds", String(rounds)];
  if (prologue) args.push("--prologue", hex(prologue));
  if (psk) args.push("--psk", hex(psk));
  const child = spawn(peer, args, { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise((resolve) => {
    child.on("error", (e) => resolve({ code: -1, signal: e.message }));
    child.on("exit", (code, signal) => resolve({ code, signal }));
  });
  const io = new Lines(child, timeoutMs);
  const stats = { hs: 0, sent: 0, received: 0, rejected: 0, authcode: null };
  const label = `${p} js=${jsInitiator ? "initiator" : "responder"} c=${jsInitiator ? "responder" : "initiator"}`;
  let failure = null;
  const guard = setTimeout(() => child.kill("SIGKILL"), 3 * timeoutMs);
  try {
    const sess = p === "WakuPairing"
      ? await jsPairing(io, jsInitiator, stats)
      : await jsHandshake(io, p, jsInitiator, prologue, psk, stats);
    await transportRounds(io, sess, jsInitiator, rounds, stats);
    io.send("done", hex(sess.h), String(stats.sent), String(stats.received));
    const [h, cSent, cReceived] = await io.expect("done", 3);
    same("final h (C vs JS)", sess.h, unhex(h, "done"));
    sameStr("messages C sent vs JS received", cSent, String(stats.received));
    sameStr("messages C received vs JS sent", cReceived, String(stats.sent));
    child.stdin.end();
  } catch (e) {
    failure = e instanceof Diff ? e.message : `${e.stack ?? e}`;
    child.stdin.end();
  }
  const ex = await Promise.race([exited, new Promise((r) => setTimeout(() => r(null), timeoutMs))]);
  clearTimeout(guard);
  if (!ex) {
    child.kill("SIGKILL");
    failure ??= "the C peer did not exit";
  } else if (!failure && (ex.code !== 0 || ex.signal)) {
    failure = `the C peer exited with ${ex.code ?? ex.signal}`;
  }
  if (failure) {
    out(`FAIL live ${label}: ${failure}`);
    if (stderr.trim()) out(stderr.trim().split("\n").map((l) => `  C peer: ${l}`).join("\n"));
    return false;
  }
  out(`OK live ${label}: ${stats.hs} handshake messages, authcode ${stats.authcode}, ` +
    `${stats.sent} sent, ${stats.received} received, ${stats.rejected} tampered rejected`);
  return true;
}

// ------------------------------------------------------------ main

function opts(argv, spec) {
  const o = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith("--")) {
      const k = a.slice(2);
      if (!(k in spec)) throw new Error(`unknown option ${a}`);
      if (i + 1 >= argv.length) throw new Error(`${a} wants a value`);
      o[k] = argv[++i];
    } else o._.push(a);
  }
  for (const [k, v] of Object.entries(spec)) if (o[k] === undefined) o[k] = v;
  return o;
}

function intOpt(v, name, lo, hi) {
  const n = Number(v);
  if (!Number.isInteger(n) || n < lo || n > hi) throw new Error(`--${name} wants ${lo}..${hi}`);
  return n;
}

async function main() {
  const [cmd, ...rest] = process.argv.slice(2);
  let cases = 0;
  let failures = 0;
  if (cmd === "gen") {
    const o = opts(rest, { out: undefined, count: "2", transport: "6" });
    if (!o.out) throw new Error("gen: --out DIR is required");
    const count = intOpt(o.count, "count", 1, 1000);
    const transport = intOpt(o.transport, "transport", 0, 1000);
    mkdirSync(o.out, { recursive: true });
    for (const p of PATTERNS) {
      for (let i = 0; i < count; i++) {
        cases++;
        const file = join(o.out, `js_${p}_${i}.json`);
        try {
          writeFileSync(file, JSON.stringify(genTranscript(p, transport), null, 1) + "\n");
          out(`OK gen ${file}`);
        } catch (e) {
          failures++;
          out(`FAIL gen ${p} #${i}: ${e instanceof Diff ? e.message : e.stack}`);
        }
      }
    }
    out(`RESULT gen cases=${cases} failures=${failures}`);
  } else if (cmd === "replay") {
    if (!rest.length) throw new Error("replay: FILE... required");
    for (const file of rest) {
      cases++;
      try {
        const r = replayTranscript(JSON.parse(readFileSync(file, "utf8")));
        out(`OK replay ${file}: ${r.pattern}, ${r.handshake} handshake messages, final h, split keys, ` +
          `${r.transport} transport messages${r.authcode ? `, authcode ${r.authcode}` : ""}`);
      } catch (e) {
        failures++;
        out(`MISMATCH replay ${file}: ${e instanceof Diff ? e.message : e.stack}`);
      }
    }
    out(`RESULT replay cases=${cases} failures=${failures}`);
  } else if (cmd === "tamper") {
    // Copy a transcript with one byte of one wire changed (negative control).
    if (!rest.length || rest.length % 2) throw new Error("tamper: IN OUT [IN OUT...]");
    for (let k = 0; k < rest.length; k += 2) {
      const t = JSON.parse(readFileSync(rest[k], "utf8"));
      const wires = [
        ...t.messages.map((m, i) => [m, `messages[${i}].wire`]),
        ...(t.transport ?? []).map((m, i) => [m, `transport[${i}].wire`]),
      ];
      const [m, where] = wires[randomInt(wires.length)];
      const w = Buffer.from(m.wire, "hex");
      const pos = randomInt(w.length);
      w[pos] ^= 1 + randomInt(255);
      m.wire = w.toString("hex");
      writeFileSync(rest[k + 1], JSON.stringify(t, null, 1) + "\n");
      out(`${rest[k + 1]}: ${where} byte ${pos}`);
    }
    process.exit(0);
  } else if (cmd === "live") {
    const o = opts(rest, { peer: undefined, pattern: "all", rounds: "6", timeout: "10" });
    if (!o.peer) throw new Error("live: --peer PATH is required");
    const rounds = intOpt(o.rounds, "rounds", 0, 1000);
    const timeoutMs = intOpt(o.timeout, "timeout", 1, 600) * 1000;
    const pats = o.pattern === "all" ? PATTERNS : [o.pattern];
    for (const p of pats) {
      if (!PATTERNS.includes(p)) throw new Error(`unknown pattern ${p}`);
      for (const jsInitiator of [true, false]) {
        cases++;
        if (!(await liveCase(o.peer, p, jsInitiator, rounds, timeoutMs))) failures++;
      }
    }
    out(`RESULT live cases=${cases} failures=${failures}`);
  } else {
    process.stderr.write("usage: node noise-interop.mjs gen|replay|live ... (see the head of this file)\n");
    process.exit(2);
  }
  process.exit(failures ? 1 : 0);
}

main().catch((e) => {
  process.stderr.write(`noise-interop: ${e.stack ?? e}\n`);
  process.exit(2);
});
