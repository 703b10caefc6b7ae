// SPDX-License-Identifier: Apache-2.0
// WalletConnect interop rounds between the pinned JS SDK and pairlink's C
// code (issue 2, item 9). Driven by tests/interop/wc_rounds.sh.
//
//   node wc-rounds.mjs gen     --seed S --rounds N --out FILE   JS-made cases for C
//   node wc-rounds.mjs check   --in FILE                        verify C-made cases
//   node wc-rounds.mjs garbage --seed S --out FILE              malformed lines
//
// A case is one JSON object per line: {"kind": "uri" | "uri_bad" | "env" |
// "env_bad" | "jwt" | "jwt_bad", "round": i, ...} and the last line is
// {"kind":"end","rounds":N,"lines":L} so that a truncated stream is noticed.
// The same format flows both ways; the C side is tests/interop/wc_driver.c.
//
// Everything random comes from the seed (AES-256-CTR keystream keyed by
// sha256(seed/stream)), so a failing run repeats with PL_TEST_SEED. The
// generator reads its URIs and envelopes back with the SDK before handing
// them over: one the SDK cannot read is a bug here, not a C failure.
//
// Each check prints "RESULT rounds=R lines=L failures=F" as its last stdout
// line; details of the first failures go to stderr.

import { createCipheriv, createHash, createPrivateKey, createPublicKey } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";

import {
  formatUri,
  parseUri,
  encrypt,
  decrypt,
  deriveSymKey,
  hashKey,
  deserialize,
  encodeTypeTwoEnvelope,
  decodeTypeTwoEnvelope,
} from "@walletconnect/utils";
import {
  generateKeyPair as edKeyPair,
  signJWT,
  verifyJWT,
  decodeJWT,
  encodeIss,
  encodeJSON,
} from "@walletconnect/relay-auth";
import {
  formatJsonRpcRequest,
  formatJsonRpcResult,
  formatJsonRpcError,
  isReservedErrorCode,
} from "@walletconnect/jsonrpc-utils";
import { safeJsonParse } from "@walletconnect/safe-json";

const MAX_REPORT = 10;
const U64_MAX = (1n << 64n) - 1n;
const I64_MAX = (1n << 63n) - 1n;
const SAFE_MAX = 2 ** 53;

// ---------------------------------------------------------------- random

class Rng {
  constructor(seed, stream) {
    const key = createHash("sha256").update(`pairlink-wc-rounds/${seed}/${stream}`).digest();
    this.cipher = createCipheriv("aes-256-ctr", key, Buffer.alloc(16));
    this.buf = Buffer.alloc(0);
    this.pos = 0;
  }
  bytes(n) {
    const out = Buffer.alloc(n);
    let o = 0;
    while (o < n) {
      if (this.pos >= this.buf.length) {
        this.buf = this.cipher.update(Buffer.alloc(8192));
        this.pos = 0;
      }
      const k = Math.min(n - o, this.buf.length - this.pos);
      this.buf.copy(out, o, this.pos, this.pos + k);
      o += k;
      this.pos += k;
    }
    return out;
  }
  float() {
    // 53 random bits in [0, 1)
    const b = this.bytes(7);
    const hi = b.readUIntLE(0, 4) & 0x1fffff; // 21 bits
    const lo = b.readUIntLE(3, 4); // 32 bits
    return (hi * 2 ** 32 + lo) / 2 ** 53;
  }
  below(n) {
    return Math.floor(this.float() * n);
  }
  int(lo, hi) {
    return lo + this.below(hi - lo + 1);
  }
  bigBetween(lo, hi) {
    // lo..hi inclusive, BigInt, by rejection on 64-bit draws
    const span = hi - lo + 1n;
    const lim = U64_MAX - (U64_MAX % span);
    for (;;) {
      const v = this.bytes(8).readBigUInt64LE(0);
      if (v < lim) return lo + (v % span);
    }
  }
  chance(p) {
    return this.float() < p;
  }
  pick(a) {
    return a[this.below(a.length)];
  }
}

const hex = (b) => Buffer.from(b).toString("hex");
const LOWER = "abcdefghijklmnopqrstuvwxyz";
const ALNUM = LOWER + LOWER.toUpperCase() + "0123456789";
// Characters that form-encoding, URLs and JSON treat specially.
const RESERVED = " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

function randName(rng, alphabet, minLen, maxLen) {
  let s = "";
  const n = rng.int(minLen, maxLen);
  for (let i = 0; i < n; i++) s += alphabet[rng.below(alphabet.length)];
  return s;
}

// One Unicode scalar value (never a surrogate). opts.controls allows
// U+0001..U+001F and U+007F, opts.nul allows U+0000.
function randCodePoint(rng, opts) {
  const r = rng.float();
  if (r < 0.5) return rng.int(0x20, 0x7e);
  if (r < 0.62) return RESERVED.codePointAt(rng.below(RESERVED.length));
  if (r < 0.66 && opts.controls) {
    const c = rng.int(opts.nul ? -1 : 0, 0x1f);
    return c < 0 ? 0 : c === 0 ? 0x7f : c;
  }
  if (r < 0.8) return rng.int(0xa0, 0x7ff);
  if (r < 0.94) {
    for (;;) {
      const c = rng.int(0x800, 0xfffd);
      if (c < 0xd800 || c > 0xdfff) return c;
    }
  }
  return rng.int(0x10000, 0x10ffff);
}

function randText(rng, minCp, maxCp, opts = {}) {
  const n = rng.int(minCp, maxCp);
  const cps = new Array(n);
  for (let i = 0; i < n; i++) cps[i] = randCodePoint(rng, opts);
  // fromCodePoint takes at most ~65k arguments per call
  let s = "";
  for (let i = 0; i < n; i += 8192) s += String.fromCodePoint(...cps.slice(i, i + 8192));
  return s;
}

// Method names as dApps write them; now and then with characters that need
// form-encoding. Never ',' '[' ']' (the list separators) and never empty.
function randMethod(rng) {
  if (rng.chance(0.3)) {
    return rng.pick([
      "wc_sessionPropose", "wc_authRequest", "wc_sessionAuthenticate", "eth_sendTransaction",
      "personal_sign", "eth_signTypedData_v4", "wallet_switchEthereumChain", "solana_signMessage",
    ]);
  }
  if (rng.chance(0.85)) return randName(rng, ALNUM + "_", 1, 30);
  return randName(rng, ALNUM + "_.-:~/ *", 1, 30);
}

function x25519Public(privHex) {
  const der = Buffer.concat([Buffer.from("302e020100300506032b656e04220420", "hex"),
    Buffer.from(privHex, "hex")]);
  const pub = createPublicKey(createPrivateKey({ key: der, format: "der", type: "pkcs8" }));
  return hex(pub.export({ format: "der", type: "spki" }).subarray(-32));
}

// ------------------------------------------------------------ JS -> C cases

function uriCaseFromFields(f, uri) {
  return {
    uri,
    topic: f.topic,
    symKey: f.symKey,
    relay_protocol: f.relay.protocol,
    relay_data: f.relay.data ?? null,
    expiry: f.expiryTimestamp ?? 0,
    methods: f.methods ?? [],
  };
}

function genUriFields(rng) {
  const symKey = hex(rng.bytes(32));
  const f = {
    protocol: "wc",
    version: 2,
    symKey,
    topic: hashKey(symKey),
    relay: { protocol: rng.chance(0.9) ? "irn" : randName(rng, LOWER + "0123456789", 1, 16) },
  };
  if (rng.chance(0.6)) f.relay.data = randText(rng, 1, 60, { controls: true });
  if (rng.chance(0.8)) f.methods = Array.from({ length: rng.int(1, 8) }, () => randMethod(rng));
  if (rng.chance(0.8)) f.expiryTimestamp = rng.int(1_000_000_000, 9_999_999_999);
  return f;
}

function genUri(rng) {
  const f = genUriFields(rng);
  const canonical = formatUri(f);
  // The Android form "wc://" parses to the same fields.
  const uri = rng.chance(0.15) ? "wc://" + canonical.slice(3) : canonical;
  const c = { kind: "uri", ...uriCaseFromFields(f, uri), canonical };
  const back = parseUri(uri);
  if (back.topic !== f.topic || back.symKey !== f.symKey || back.relay.data !== f.relay.data ||
      !isDeepStrictEqual(back.methods, f.methods) || back.expiryTimestamp !== f.expiryTimestamp) {
    throw new Error(`generator: JS cannot parse its own URI ${uri}`);
  }
  return c;
}

// URIs with exactly one thing wrong, and the named error C must give.
function genUriBad(rng) {
  const f = genUriFields(rng);
  let now = -1;
  let expect;
  let uri;
  switch (rng.below(8)) {
    case 0:
      f.topic = hashKey(hex(rng.bytes(32)));
      expect = "PL_ERR_URI_TOPIC_MISMATCH";
      break;
    case 1:
      f.symKey = hex(rng.bytes(rng.chance(0.5) ? 31 : 33));
      f.topic = hashKey(f.symKey);
      expect = "PL_ERR_URI_BAD_KEY";
      break;
    case 2:
      f.topic = f.topic.slice(0, rng.int(0, 63));
      expect = "PL_ERR_URI_BAD_TOPIC";
      break;
    case 3:
      delete f.symKey;
      expect = "PL_ERR_URI_MISSING_FIELD";
      break;
    case 4:
      f.relay = {};
      expect = "PL_ERR_URI_MISSING_FIELD";
      break;
    case 5:
      f.version = rng.pick([1, 3, 10]);
      expect = "PL_ERR_URI_VERSION";
      break;
    case 6:
      f.relay.data = randName(rng, ALNUM, 4200, 6000);
      expect = "PL_ERR_TOO_LARGE";
      break;
    default:
      f.expiryTimestamp = rng.int(1_000_000_000, 2_000_000_000);
      now = f.expiryTimestamp + rng.int(0, 1_000_000);
      expect = "PL_ERR_URI_EXPIRED";
      break;
  }
  uri = formatUri(f);
  return { kind: "uri_bad", uri, now, expect };
}

function genJsonValue(rng, depth, opts) {
  const r = rng.float();
  if (depth <= 0 || r < 0.55) {
    const s = rng.float();
    if (s < 0.3) return rng.int(-(2 ** 31), 2 ** 31);
    if (s < 0.4 && opts.floats) return rng.int(-1e9, 1e9) / rng.pick([10, 1000, 1e6]);
    if (s < 0.8) return randText(rng, 0, 40, { controls: true });
    if (s < 0.9) return rng.chance(0.5);
    return null;
  }
  if (r < 0.75) return Array.from({ length: rng.int(0, 5) }, () => genJsonValue(rng, depth - 1, opts));
  const o = {};
  const n = rng.int(0, 6);
  for (let i = 0; i < n; i++) {
    const k = rng.chance(0.6) ? rng.pick(["topic", "message", "ttl", "tag", "prompt", "id", "data",
      "chainId", "requiredNamespaces", "relays", "proposer"]) : randText(rng, 0, 12, {});
    o[k] = genJsonValue(rng, depth - 1, opts);
  }
  return o;
}

// A JSON-RPC id and how C must see it: {t: "num"|"str"|"null", v: text}.
function genRpcId(rng, allowNull) {
  const r = rng.float();
  if (allowNull && r < 0.05) return { js: null, exp: { t: "null", v: "" } };
  if (r < 0.55) {
    const n = rng.int(1, SAFE_MAX - 1);
    return { js: n, exp: { t: "num", v: String(n) } };
  }
  if (r < 0.7) {
    // 19-digit numbers above 2^53: JSON text only, JS numbers cannot hold them
    const big = rng.bigBetween(2n ** 53n + 1n, I64_MAX);
    return { js: null, big: String(big), exp: { t: "num", v: String(big) } };
  }
  const s = r < 0.92 ? String(rng.bigBetween(10n ** 18n, 10n ** 19n - 1n)) : randName(rng, ALNUM + "-_:", 1, 40);
  return { js: s, exp: { t: "str", v: s } };
}

const WC_METHODS = ["wc_pairingPing", "wc_pairingDelete", "wc_sessionPropose", "wc_sessionSettle",
  "wc_sessionRequest", "irn_publish", "irn_subscribe", "irn_subscription", "irn_batchSubscribe"];

function genRpcOne(rng) {
  const id = genRpcId(rng, true);
  const r = rng.float();
  let obj;
  let exp;
  const placeholder = `__pairlink_big_id_${rng.below(1e9)}__`;
  const jsId = id.big ? placeholder : id.js;
  if (r < 0.5 && id.exp.t !== "null") {
    const method = rng.chance(0.5) ? rng.pick(WC_METHODS) : randMethod(rng);
    const params = rng.chance(0.9) ? genJsonValue(rng, 3, { floats: true }) : undefined;
    obj = formatJsonRpcRequest(method, params, jsId);
    exp = { kind: "request", id: id.exp, method };
    if (params !== undefined) exp.params = params;
  } else if (r < 0.75 && id.exp.t !== "null") {
    const result = rng.chance(0.4) ? true : genJsonValue(rng, 3, { floats: true });
    obj = formatJsonRpcResult(jsId, result);
    exp = { kind: "result", id: id.exp, result };
  } else {
    const std = rng.chance(0.2);
    const err = std
      ? rng.pick([{ code: -32700, message: "Parse error" }, { code: -32601, message: "Method not found" }])
      : { code: rng.int(-31999, 99999), message: randText(rng, 0, 40, { controls: true }) };
    const data = rng.chance(0.3) ? genJsonValue(rng, 2, { floats: true }) : undefined;
    obj = formatJsonRpcError(jsId, { ...err }, data);
    // For the reserved codes (-32700, -32600..-32603) the SDK swaps in its
    // standard error object and drops `data`: expect what it really wrote.
    exp = { kind: "error", id: id.exp, code: obj.error.code, message: obj.error.message };
    if (obj.error.data !== undefined) exp.data = obj.error.data;
  }
  return { obj, exp, big: id.big, placeholder };
}

function genRpc(rng) {
  const batch = rng.chance(0.1);
  const items = Array.from({ length: batch ? rng.int(2, 5) : 1 }, () => genRpcOne(rng));
  let text = JSON.stringify(batch ? items.map((i) => i.obj) : items[0].obj);
  for (const it of items) {
    if (it.big) text = text.replace(`"id":"${it.placeholder}"`, `"id":${it.big}`);
  }
  return { text, rpc: { batch, msgs: items.map((i) => i.exp) } };
}

function genMessage(rng) {
  if (rng.chance(0.4)) return genRpc(rng);
  const r = rng.float();
  const [lo, hi] = r < 0.02 ? [0, 0] : r < 0.42 ? [1, 64] : r < 0.87 ? [65, 2048] : [2049, 32768];
  return { text: randText(rng, lo, hi, { controls: true, nul: true }) };
}

function jsOpen(envelope, keys) {
  const d = deserialize({ encoded: envelope });
  const type = d.type[0];
  if (type === 2) return decodeTypeTwoEnvelope(envelope);
  const symKey = type === 1 ? deriveSymKey(keys.receiverPriv, hex(d.senderPublicKey)) : keys.symKey;
  return decrypt({ symKey, encoded: envelope });
}

function flipBit(rng, b64, minIndex) {
  const bytes = Buffer.from(b64, "base64");
  const idx = rng.int(minIndex, bytes.length - 1);
  bytes[idx] ^= 1 << rng.below(8);
  return { envelope: bytes.toString("base64"), index: idx };
}

function genEnv(rng, out) {
  const r = rng.float();
  const type = r < 0.45 ? 0 : r < 0.9 ? 1 : 2;
  const m = genMessage(rng);
  const iv = hex(rng.bytes(12));
  const c = { kind: "env", type, message: m.text, iv };
  if (m.rpc) c.rpc = m.rpc;
  if (type === 0) {
    c.symKey = hex(rng.bytes(32));
    c.envelope = encrypt({ type: 0, symKey: c.symKey, message: m.text, iv });
  } else if (type === 1) {
    c.senderPriv = hex(rng.bytes(32));
    c.receiverPriv = hex(rng.bytes(32));
    c.senderPub = x25519Public(c.senderPriv);
    c.receiverPub = x25519Public(c.receiverPriv);
    c.symKey = deriveSymKey(c.senderPriv, c.receiverPub);
    c.envelope = encrypt({ type: 1, symKey: c.symKey, message: m.text, iv, senderPublicKey: c.senderPub });
  } else {
    c.envelope = encodeTypeTwoEnvelope(m.text);
  }
  if (c.symKey) c.topic = hashKey(c.symKey);
  if (jsOpen(c.envelope, c) !== m.text) throw new Error("generator: JS cannot open its own envelope");
  out.push(c);
  if (type !== 2) {
    // Any byte, the type byte included, must make C refuse the envelope.
    const f = flipBit(rng, c.envelope, 0);
    out.push({ kind: "env_bad", type, envelope: f.envelope, index: f.index, symKey: c.symKey,
      receiverPriv: c.receiverPriv });
  }
  if (type === 1) {
    // Bit 255 of the sender key: X25519 ignores it (RFC 7748 section 5) and
    // so does this SDK, which still opens such an envelope; pairlink must
    // refuse the non-canonical key rather than let the bit flip unnoticed.
    const bytes = Buffer.from(c.envelope, "base64");
    bytes[32] ^= 0x80;
    out.push({ kind: "env_bad", type, envelope: bytes.toString("base64"), index: 32,
      symKey: c.symKey, receiverPriv: c.receiverPriv });
  }
}

function genAud(rng) {
  if (rng.chance(0.25)) return randText(rng, 0, 80, { controls: true });
  const scheme = rng.pick(["wss://", "ws://", "https://"]);
  const host = rng.chance(0.2) ? "127.0.0.1"
    : randName(rng, LOWER + "0123456789-", 1, 20) + "." + rng.pick(["com", "org", "io", "xyz"]);
  let s = scheme + host;
  if (rng.chance(0.4)) s += ":" + rng.int(1, 65535);
  if (rng.chance(0.5)) s += "/" + randText(rng, 0, 20, {});
  if (rng.chance(0.3)) s += "?projectId=" + hex(rng.bytes(16)) + "&ua=" + encodeURIComponent(randText(rng, 0, 20, {}));
  return s;
}

async function genJwt(rng, out) {
  const seed = rng.bytes(32);
  const kp = edKeyPair(new Uint8Array(seed));
  const sub = rng.chance(0.8) ? hex(rng.bytes(32)) : hex(rng.bytes(rng.int(1, 64)));
  const aud = genAud(rng);
  const iat = rng.int(1_500_000_000, 2_100_000_000);
  const ttl = rng.chance(0.5) ? 86400 : rng.int(1, 10_000_000);
  const jwt = await signJWT(sub, aud, ttl, kp, iat);
  const iss = encodeIss(kp.publicKey);
  const now = iat + rng.int(0, ttl);
  const leeway = rng.int(0, 600);
  out.push({
    kind: "jwt", jwt, seed: hex(seed), pub: hex(kp.publicKey), iss, sub, aud, iat, exp: iat + ttl,
    ttl, now, leeway,
    // JSON.stringify writes "\u001f" where jansson-style encoders write
    // "\u001F": byte equality of re-signed tokens is only defined without
    // control characters (the signature verifies either way).
    sign_equal: !/[\u0000-\u001f]/.test(aud),
  });

  const [h, p, s] = jwt.split(".");
  let bad;
  let expect = "PL_ERR_JWT_SIGNATURE";
  switch (rng.below(4)) {
    case 0: {
      const sig = Buffer.from(s, "base64url");
      sig[rng.below(64)] ^= 1 << rng.below(8);
      bad = `${h}.${p}.${sig.toString("base64url")}`;
      break;
    }
    case 1: // another subject under the old signature
      bad = `${h}.${encodeJSON({ iss, sub: hex(rng.bytes(32)), aud, iat, exp: iat + ttl })}.${s}`;
      break;
    case 2: { // another issuer under the old signature
      const other = edKeyPair(new Uint8Array(rng.bytes(32)));
      bad = `${h}.${encodeJSON({ iss: encodeIss(other.publicKey), sub, aud, iat, exp: iat + ttl })}.${s}`;
      break;
    }
    default:
      bad = `${encodeJSON({ alg: rng.pick(["none", "HS256", "ES256"]), typ: "JWT" })}.${p}.${s}`;
      expect = "PL_ERR_JWT_HEADER";
      break;
  }
  out.push({ kind: "jwt_bad", jwt: bad, aud, now, leeway, expect });
}

async function gen(seed, rounds) {
  const lines = [];
  for (let round = 0; round < rounds; round++) {
    const rng = new Rng(seed, `js-round-${round}`);
    const cases = [genUri(rng)];
    if (rng.chance(0.35)) cases.push(genUriBad(rng));
    genEnv(rng, cases);
    await genJwt(rng, cases);
    for (const c of cases) lines.push(JSON.stringify({ ...c, round }));
  }
  lines.push(JSON.stringify({ kind: "end", rounds, lines: lines.length }));
  return lines.join("\n") + "\n";
}

// Lines the C driver must survive: it must report them and go on, never crash.
function garbage(seed) {
  const rng = new Rng(seed, "garbage");
  const out = [
    Buffer.from(""),
    Buffer.from("{"),
    Buffer.from("null"),
    Buffer.from("[]"),
    Buffer.from('"just a string"'),
    Buffer.from('{"kind":"uri"}'),
    Buffer.from('{"kind":"uri","round":0,"uri":17}'),
    Buffer.from('{"kind":"nope","round":0}'),
    Buffer.from('{"kind":"env","round":0,"type":0,"envelope":"!!!!","symKey":"zz","message":"","iv":"00"}'),
    Buffer.from('{"kind":"env","round":0,"type":1,"envelope":"AQ==","receiverPriv":"00","message":"x"}'),
    Buffer.from('{"kind":"env","round":0,"type":7,"envelope":"Bw==","message":"x"}'),
    Buffer.from('{"kind":"jwt","round":0,"jwt":"a.b.c","seed":"","aud":"x","now":1}'),
  ];
  // Well-formed cases around hostile envelopes and tokens: the library sees them.
  const k = (n) => "ab".repeat(n);
  const env = (type, envelope) => JSON.stringify({ kind: "env", round: 1, type, envelope, message: "x",
    iv: k(12), symKey: k(32), topic: k(32), senderPriv: k(32), senderPub: k(32), receiverPriv: k(32),
    receiverPub: k(32) });
  for (const e of ["", "!!!!", "AA==", "AQ==", "AAAA", "Ag", "=", "A".repeat(100001), "AP" + "/".repeat(66)]) {
    out.push(Buffer.from(env(0, e)), Buffer.from(env(1, e)));
  }
  const jwt = (t) => JSON.stringify({ kind: "jwt", round: 1, jwt: t, seed: k(32), pub: k(32),
    iss: "did:key:z6Mk", sub: "s", aud: "a", iat: 1, exp: 2, ttl: 1, now: 1, leeway: 0, sign_equal: false });
  for (const t of ["", ".", "..", "a.b.c", "a.b.c.d", "eyJ9.eyJ9.AA", "e".repeat(5000) + "..", "\u0000.\u0000.\u0000"]) {
    out.push(Buffer.from(jwt(t)));
  }
  out.push(
    Buffer.from('{"kind":"uri","round":1,"uri":"wc:","canonical":"","topic":"","relay_protocol":"","relay_data":null,"methods":[],"symKey":"' + k(32) + '","expiry":0}'),
    Buffer.from('{"kind":"jwt_bad","round":0,"jwt":"' + "A".repeat(20000) + '","aud":"x","now":1,"leeway":0,"expect":"PL_ERR_TOO_LARGE"}'),
    Buffer.from('{"kind":"uri","round":0,"uri":"wc:' + "f".repeat(10000) + '"}'),
    Buffer.from('{"kind":"end","rounds":-5,"lines":"x"}'),
    Buffer.from('{"kind":"uri","round":1e300}'),
    Buffer.from('{"kind":"env","round":0,"message":"a\\u0000b","type":2}'),
    Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
    Buffer.from([0x00, 0x01, 0x02, 0x7b]),
    Buffer.from("x".repeat(5 << 20)), // longer than the driver's line bound
  );
  for (let i = 0; i < 20; i++) {
    const b = rng.bytes(rng.int(1, 300));
    for (let j = 0; j < b.length; j++) if (b[j] === 0x0a) b[j] = 0x20;
    out.push(b);
  }
  // A partial last line without '\n'
  return Buffer.concat([...out.flatMap((b) => [b, Buffer.from("\n")]), Buffer.from('{"kind":"ur')]);
}

// ------------------------------------------------------------ C -> JS checks

class Checker {
  constructor() {
    this.failures = 0;
    this.lines = 0;
    this.rounds = new Set();
    this.failedRounds = new Set();
  }
  fail(c, msg) {
    this.failures++;
    if (c && Number.isInteger(c.round)) this.failedRounds.add(c.round);
    if (this.failures <= MAX_REPORT) {
      const where = c ? `round ${c.round} (${c.kind})` : "stream";
      console.error(`FAIL C->JS ${where}: ${String(msg).slice(0, 400)}`);
    }
  }
  eq(c, what, got, want) {
    if (isDeepStrictEqual(got, want)) return true;
    if (typeof got === "string" && typeof want === "string") {
      let i = 0;
      while (i < got.length && i < want.length && got[i] === want[i]) i++;
      const from = Math.max(0, i - 20);
      const show = (s) => JSON.stringify(s.slice(from, i + 60));
      this.fail(c, `${what} differs at UTF-16 unit ${i} (JS ${got.length}, C ${want.length} units)` +
        `\n    JS: ...${show(got)}\n    C : ...${show(want)}`);
    } else {
      this.fail(c, `${what}: JS got ${JSON.stringify(got)?.slice(0, 200)}, C says ${JSON.stringify(want)?.slice(0, 200)}`);
    }
    return false;
  }
}

function checkUri(k, c) {
  const p = parseUri(c.uri);
  k.eq(c, "topic", p.topic, c.topic);
  k.eq(c, "version", p.version, 2);
  k.eq(c, "symKey", p.symKey, c.symKey);
  k.eq(c, "relay-protocol", p.relay.protocol, c.relay_protocol);
  k.eq(c, "relay-data", p.relay.data ?? null, c.relay_data);
  k.eq(c, "expiryTimestamp", p.expiryTimestamp ?? 0, c.expiry);
  k.eq(c, "methods", p.methods ?? [], c.methods);
  const f = {
    protocol: "wc",
    topic: c.topic,
    version: 2,
    symKey: c.symKey,
    relay: { protocol: c.relay_protocol, ...(c.relay_data !== null && { data: c.relay_data }) },
    ...(c.expiry && { expiryTimestamp: c.expiry }),
    ...(c.methods.length && { methods: c.methods }),
  };
  k.eq(c, "formatUri(fields) vs C pl_uri_format", c.uri, formatUri(f));
  k.eq(c, "topic = sha256(symKey)", hashKey(c.symKey), c.topic);
}

function idText(id) {
  if (id === null) return { t: "null", v: "" };
  if (typeof id === "string") return { t: "str", v: id };
  if (typeof id === "number" || typeof id === "bigint") return { t: "num", v: String(id) };
  return { t: typeof id, v: String(id) };
}

function checkRpc(k, c, text) {
  // safeJsonParse is what the SDK uses on relay payloads: ids above 2^53
  // come back as BigInt instead of being rounded.
  const v = safeJsonParse(text);
  const msgs = c.rpc.batch ? v : [v];
  if (!Array.isArray(msgs) || msgs.length !== c.rpc.msgs.length) {
    k.fail(c, `JSON-RPC: expected ${c.rpc.msgs.length} message(s), JS read ${typeof v}`);
    return;
  }
  const rebuilt = [];
  msgs.forEach((m, i) => {
    const e = c.rpc.msgs[i];
    if (typeof m !== "object" || m === null) {
      k.fail(c, `JSON-RPC message ${i} is not an object`);
      return;
    }
    k.eq(c, `rpc[${i}].id`, idText(m.id), e.id);
    k.eq(c, `rpc[${i}].jsonrpc`, m.jsonrpc, "2.0");
    if (e.kind === "request") {
      k.eq(c, `rpc[${i}].method`, m.method, e.method);
      k.eq(c, `rpc[${i}].params`, m.params, e.params);
      rebuilt.push(formatJsonRpcRequest(e.method, m.params, m.id));
    } else if (e.kind === "result") {
      k.eq(c, `rpc[${i}].result`, m.result, e.result);
      rebuilt.push(formatJsonRpcResult(m.id, m.result));
    } else {
      k.eq(c, `rpc[${i}].error.code`, m.error?.code, e.code);
      k.eq(c, `rpc[${i}].error.message`, m.error?.message, e.message);
      k.eq(c, `rpc[${i}].error.data`, m.error?.data, e.data);
      // formatJsonRpcError drops `data` for reserved codes; the member order
      // it writes otherwise is this one.
      const error = { code: m.error?.code, message: m.error?.message };
      if (m.error?.data !== undefined) error.data = m.error.data;
      rebuilt.push(isReservedErrorCode(error.code) ? { id: m.id, jsonrpc: "2.0", error }
        : formatJsonRpcError(m.id, { ...error }, error.data));
    }
  });
  // Member order and spacing as the SDK writes them (ids beyond 2^53 cannot
  // be written by JSON.stringify, so those messages are compared by value only).
  if (c.rpc.js_equal) k.eq(c, "JSON-RPC text vs JSON.stringify of the SDK's format*", text,
    JSON.stringify(c.rpc.batch ? rebuilt : rebuilt[0]));
}

function checkEnv(k, c) {
  const d = deserialize({ encoded: c.envelope });
  if (!k.eq(c, "type byte", d.type[0], c.type)) return;
  let msg;
  try {
    msg = jsOpen(c.envelope, c);
  } catch (e) {
    k.fail(c, `JS cannot open a C envelope: ${e.message}`);
    return;
  }
  k.eq(c, "message", msg, c.message);
  if (c.type === 1) {
    k.eq(c, "sender public key", hex(d.senderPublicKey), c.senderPub);
    k.eq(c, "deriveSymKey(receiverPriv, senderPub)", deriveSymKey(c.receiverPriv, c.senderPub), c.symKey);
  }
  if (c.type !== 2) {
    k.eq(c, "topic", hashKey(c.symKey), c.topic);
    // Same key, iv and message: ChaCha20-Poly1305 output must be identical.
    k.eq(c, "JS encrypt with the same iv vs C envelope", encrypt({
      type: c.type, symKey: c.symKey, message: c.message, iv: c.iv,
      ...(c.type === 1 && { senderPublicKey: c.senderPub }),
    }), c.envelope);
  } else {
    k.eq(c, "JS type 2 envelope vs C envelope", encodeTypeTwoEnvelope(c.message), c.envelope);
  }
  if (c.rpc) checkRpc(k, c, msg);
}

function checkEnvBad(k, c) {
  let opened = false;
  try {
    jsOpen(c.envelope, c);
    opened = true;
  } catch {
    opened = false;
  }
  if (opened) k.fail(c, `JS opened a C envelope with a flipped bit at byte ${c.index}`);
}

async function checkJwt(k, c) {
  let ok = false;
  try {
    ok = await verifyJWT(c.jwt);
  } catch (e) {
    k.fail(c, `verifyJWT threw: ${e.message}`);
    return;
  }
  if (!ok) k.fail(c, "verifyJWT rejects a C-signed JWT");
  const d = decodeJWT(c.jwt);
  k.eq(c, "header", d.header, { alg: "EdDSA", typ: "JWT" });
  k.eq(c, "payload", d.payload, { iss: c.iss, sub: c.sub, aud: c.aud, iat: c.iat, exp: c.exp });
  k.eq(c, "payload member order", Object.keys(d.payload), ["iss", "sub", "aud", "iat", "exp"]);
  const kp = edKeyPair(new Uint8Array(Buffer.from(c.seed, "hex")));
  k.eq(c, "public key of seed", hex(kp.publicKey), c.pub);
  k.eq(c, "did:key", encodeIss(kp.publicKey), c.iss);
  if (c.sign_equal) {
    k.eq(c, "signJWT vs C pl_jwt_sign", await signJWT(c.sub, c.aud, c.exp - c.iat, kp, c.iat), c.jwt);
  }
}

async function checkJwtBad(k, c) {
  let ok = false;
  try {
    ok = await verifyJWT(c.jwt);
  } catch {
    ok = false;
  }
  if (ok) k.fail(c, "verifyJWT accepts a tampered C JWT");
}

async function check(text) {
  const k = new Checker();
  let end = null;
  const lines = text.split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  for (const line of lines) {
    let c;
    try {
      c = JSON.parse(line);
    } catch (e) {
      k.fail(null, `line ${k.lines + 1} is not JSON: ${e.message}`);
      k.lines++;
      continue;
    }
    if (c.kind === "end") {
      end = c;
      continue;
    }
    k.lines++;
    if (end) k.fail(c, "case after the end line");
    k.rounds.add(c.round);
    try {
      switch (c.kind) {
        case "uri": checkUri(k, c); break;
        case "env": checkEnv(k, c); break;
        case "env_bad": checkEnvBad(k, c); break;
        case "jwt": await checkJwt(k, c); break;
        case "jwt_bad": await checkJwtBad(k, c); break;
        default: k.fail(c, `unknown kind ${c.kind}`);
      }
    } catch (e) {
      k.fail(c, `JS threw: ${e.stack?.split("\n").slice(0, 2).join(" ")}`);
    }
  }
  if (!end) k.fail(null, "no end line: the C output is truncated");
  else {
    if (end.lines !== k.lines) k.fail(null, `end line says ${end.lines} lines, read ${k.lines}`);
    if (end.rounds !== k.rounds.size) k.fail(null, `end line says ${end.rounds} rounds, saw ${k.rounds.size}`);
  }
  const passed = k.rounds.size - k.failedRounds.size;
  console.log(`RESULT rounds=${passed} lines=${k.lines} failures=${k.failures}`);
  return k.failures === 0;
}

// ------------------------------------------------------------------- main

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const cmd = process.argv[2];
const seed = arg("--seed", "1");
if (!/^[0-9]+$/.test(seed)) {
  console.error("wc-rounds: --seed takes a decimal integer");
  process.exit(2);
}
try {
  if (cmd === "gen") {
    const rounds = Number(arg("--rounds", "1000"));
    writeFileSync(arg("--out", "/dev/stdout"), await gen(seed, rounds));
  } else if (cmd === "garbage") {
    writeFileSync(arg("--out", "/dev/stdout"), garbage(seed));
  } else if (cmd === "check") {
    const ok = await check(readFileSync(arg("--in", "/dev/stdin"), "utf8"));
    process.exit(ok ? 0 : 1);
  } else {
    console.error("usage: node wc-rounds.mjs gen|check|garbage [--seed S] [--rounds N] [--out F] [--in F]");
    process.exit(2);
  }
} catch (e) {
  console.error(`wc-rounds: ${e.stack}`);
  process.exit(2);
}
