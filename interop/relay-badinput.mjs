// SPDX-License-Identifier: Apache-2.0
// Bad input at the socket of `pairlink relay` (tests/interop/relay_badinput.sh).
// The relay under test runs with --require-auth --ping-interval 1
// --idle-timeout 3 --rate-limit 20. Every check prints "CHECK <name> ok";
// the first failure exits 1. The relay must answer each case with a named
// JSON-RPC error, an HTTP status or a WebSocket close code, and keep serving.
//
//   RELAY_URL=ws://127.0.0.1:PORT node relay-badinput.mjs

import { randomBytes } from "node:crypto";
import WebSocket from "ws";
import { encodeIss, generateKeyPair, signJWT } from "@walletconnect/relay-auth";
import { hashMessage } from "@walletconnect/utils";

const URL_ = process.env.RELAY_URL;
const LIMIT_MS = 8000;
const watchdog = setTimeout(() => {
  console.error("FAIL: overall time limit reached");
  process.exit(1);
}, 90000);
watchdog.unref();

const sub = () => randomBytes(32).toString("hex");
const topic = () => randomBytes(32).toString("hex");
const jwtFor = (aud, opts = {}) =>
  signJWT(sub(), aud, opts.ttl ?? 86400, opts.kp ?? generateKeyPair(), opts.iat);

function within(ms, what, p) {
  let t;
  return Promise.race([
    p,
    new Promise((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: nothing in ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(t));
}

function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}

function ok(name) {
  console.log(`CHECK ${name} ok`);
}

// Resolves with {ws} when open, {status} on an HTTP refusal.
function open(url, headers) {
  const ws = new WebSocket(url, { headers });
  return within(
    LIMIT_MS,
    `open ${url.slice(0, 60)}`,
    new Promise((resolve, reject) => {
      ws.once("open", () => resolve({ ws }));
      ws.once("unexpected-response", (_, res) => resolve({ status: res.statusCode }));
      ws.once("error", reject);
    }),
  );
}

async function authed() {
  const kp = generateKeyPair();
  const { ws, status } = await open(`${URL_}?auth=${await jwtFor(URL_, { kp })}`);
  if (!ws) fail(`a valid JWT was refused (HTTP ${status})`);
  ws.did = encodeIss(kp.publicKey);
  ws.inbox = [];
  ws.waiters = [];
  ws.on("message", (d) => {
    const m = JSON.parse(d.toString());
    const w = ws.waiters.findIndex((x) => x.pred(m));
    if (w >= 0) ws.waiters.splice(w, 1)[0].resolve(m);
    else ws.inbox.push(m);
  });
  return ws;
}

function next(ws, pred, what) {
  const i = ws.inbox.findIndex(pred);
  if (i >= 0) return Promise.resolve(ws.inbox.splice(i, 1)[0]);
  return within(LIMIT_MS, what, new Promise((resolve) => ws.waiters.push({ pred, resolve })));
}

async function call(ws, payload, what) {
  ws.send(typeof payload === "string" ? payload : JSON.stringify(payload));
  const id = typeof payload === "string" ? null : payload.id ?? null;
  return next(ws, (m) => m.id === id && !m.method, what);
}

function closed(ws, what) {
  return within(
    LIMIT_MS,
    what,
    new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: String(reason) }))),
  );
}

function expectError(m, code, what) {
  if (!m.error || m.error.code !== code)
    fail(`${what}: expected error ${code}, got ${JSON.stringify(m)}`);
  if (typeof m.error.message !== "string" || !m.error.message) fail(`${what}: error without message`);
}

async function main() {
  // ---- authentication: every bad JWT is an HTTP 401, a good one opens
  const refused = async (name, url, headers) => {
    const r = await open(url, headers);
    if (r.ws) {
      r.ws.terminate();
      fail(`${name}: connection accepted`);
    }
    if (r.status !== 401) fail(`${name}: expected HTTP 401, got ${r.status}`);
    ok(`auth ${name} -> 401`);
  };
  await refused("missing JWT", URL_);
  await refused("garbage JWT", `${URL_}?auth=not.a.jwt`);
  await refused("wrong audience", `${URL_}?auth=${await jwtFor("ws://example.invalid:1")}`);
  const old = Math.floor(Date.now() / 1000) - 3 * 86400;
  await refused("expired JWT", `${URL_}?auth=${await jwtFor(URL_, { iat: old })}`);
  const good = await jwtFor(URL_);
  const parts = good.split(".");
  const sig = Buffer.from(parts[2], "base64url");
  sig[5] ^= 1;
  await refused("bad signature", `${URL_}?auth=${parts[0]}.${parts[1]}.${sig.toString("base64url")}`);
  await refused("oversized JWT", `${URL_}?auth=${"a".repeat(9000)}`);
  {
    const { ws, status } = await open(URL_, { Authorization: `Bearer ${await jwtFor(URL_)}` });
    if (!ws) fail(`Authorization: Bearer was refused (HTTP ${status})`);
    ws.terminate();
    ok("auth bearer header -> open");
  }
  {
    const { ws, status } = await open(`${URL_}/?auth=${await jwtFor(URL_ + "/")}`);
    if (!ws) fail(`aud with a trailing slash was refused (HTTP ${status})`);
    ws.terminate();
    ok("auth aud with trailing slash -> open");
  }

  // ---- malformed JSON-RPC: named errors, the connection stays up
  const ws = await authed();
  expectError(await call(ws, "garbage{", "garbage"), -32700, "garbage");
  ok("garbage JSON -> -32700");
  expectError(await call(ws, '{"jsonrpc":"2.0","id":7', "truncated"), -32700, "truncated");
  ok("truncated JSON -> -32700");
  expectError(await call(ws, "[]", "batch"), -32600, "empty batch");
  ok("JSON array -> -32600");
  expectError(await call(ws, { id: 8, jsonrpc: "1.0", method: "irn_subscribe" }, "v1"), -32600, "v1");
  ok("jsonrpc 1.0 -> -32600");
  expectError(await call(ws, { id: 9, jsonrpc: "2.0", method: "irn_nope", params: {} }, "nope"), -32601, "nope");
  ok("unknown method -> -32601");
  expectError(await call(ws, { id: 10, jsonrpc: "2.0", method: "irn_subscribe", params: { topic: "xyz" } }, "topic"), -32602, "bad topic");
  ok("bad topic -> -32602");
  const t = topic();
  expectError(await call(ws, { id: 11, jsonrpc: "2.0", method: "irn_publish", params: { topic: t, message: "x", ttl: 1 } }, "ttl"), -32000, "ttl too short");
  ok("ttl too short -> -32000");
  expectError(await call(ws, { id: 12, jsonrpc: "2.0", method: "irn_publish", params: { topic: t, message: "x", ttl: 99999999 } }, "ttl"), -32000, "ttl too long");
  ok("ttl too long -> -32000");
  expectError(await call(ws, { id: 13, jsonrpc: "2.0", method: "irn_publish", params: { topic: t, message: "y".repeat(600 * 1024), ttl: 300 } }, "big"), -32600, "message too large");
  ok("message over the size limit -> -32600");
  const sid = "1234567890123456789";
  const r = await call(ws, { id: sid, jsonrpc: "2.0", method: "irn_publish", params: { topic: t, message: "fine", ttl: 300 } }, "publish");
  if (r.id !== sid || r.result !== true) fail(`string id not echoed: ${JSON.stringify(r)}`);
  ok("19-digit string id echoed verbatim");

  // ---- pings: the relay pings at the configured interval
  await within(LIMIT_MS, "ping", new Promise((resolve) => ws.once("ping", resolve)));
  ok("relay sends WebSocket pings");

  // ---- rate limit: a burst beyond the bucket gets 3001, then recovers
  const burst = [];
  for (let i = 0; i < 150; i++) {
    burst.push(call(ws, { id: 1000 + i, jsonrpc: "2.0", method: "irn_fetchMessages", params: { topic: t } }, "burst"));
  }
  const answers = await Promise.all(burst);
  const limited = answers.filter((m) => m.error?.code === 3001).length;
  if (!limited) fail("150 requests at once were never rate limited");
  ok(`rate limit -> 3001 (${limited} of 150)`);
  await new Promise((res) => setTimeout(res, 1500));
  const after = await call(ws, { id: 2000, jsonrpc: "2.0", method: "irn_fetchMessages", params: { topic: t } }, "after");
  if (!after.result) fail(`the bucket did not refill: ${JSON.stringify(after)}`);
  ok("rate limit recovers");
  ws.terminate();

  // ---- frames the relay closes on, each with its close code
  {
    const w = await authed();
    const c = closed(w, "binary");
    w.send(Buffer.from([1, 2, 3]), { binary: true });
    const { code } = await c;
    if (code !== 1003) fail(`binary frame: close ${code}, expected 1003`);
    ok("binary frame -> close 1003");
  }
  {
    const w = await authed();
    const c = closed(w, "oversized");
    w.send("z".repeat(1536 * 1024));
    const { code } = await c;
    if (code !== 1009) fail(`oversized frame: close ${code}, expected 1009`);
    ok("oversized frame -> close 1009");
  }
  {
    const w = await authed();
    const c = closed(w, "utf8");
    w.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    const { code } = await c;
    if (code !== 1007) fail(`invalid UTF-8: close ${code}, expected 1007`);
    ok("invalid UTF-8 text -> close 1007");
  }

  // ---- a silent client (no pongs) is reaped
  {
    const w = await authed();
    w.pong = () => {}; // ws 7 answers pings through this method
    const c = closed(w, "reaping");
    const t0 = Date.now();
    const { code, reason } = await c;
    if (code !== 1001) fail(`silent client: close ${code} (${reason}), expected 1001`);
    ok(`silent client reaped after ${Date.now() - t0} ms (close 1001 ${reason})`);
  }

  // ---- and the relay still serves: subscribe on one socket, publish on another
  const a = await authed();
  const b = await authed();
  const tt = topic();
  const s = await call(b, { id: 1, jsonrpc: "2.0", method: "irn_subscribe", params: { topic: tt } }, "sub");
  // The subscription id is the one the JS client computes for itself.
  if (s.result !== hashMessage(tt + b.did)) fail(`subscription id: ${JSON.stringify(s)}, want sha256(topic + ${b.did})`);
  const p = await call(a, { id: 2, jsonrpc: "2.0", method: "irn_publish", params: { topic: tt, message: "still here", ttl: 60, tag: 7 } }, "pub");
  if (p.result !== true) fail(`publish: ${JSON.stringify(p)}`);
  const push = await next(b, (m) => m.method === "irn_subscription", "push");
  if (push.params.data.message !== "still here" || push.params.id !== s.result)
    fail(`push: ${JSON.stringify(push)}`);
  b.send(JSON.stringify({ id: push.id, jsonrpc: "2.0", result: true }));
  ok("relay still serves after the bad input; subscription id = JS hashMessage(topic + did)");
  a.terminate();
  b.terminate();
}

main().then(
  () => {
    console.log("BADINPUT OK");
    process.exit(0);
  },
  (e) => fail(e?.stack || e),
);
