// SPDX-License-Identifier: Apache-2.0
// Raw irn clients for the relay cluster test (tests/cluster/relay_cluster.sh):
// several `pairlink relay --cluster` instances over one NATS JetStream cluster.
// Each connection authenticates with its own relay-auth JWT (aud = its URL).
//
//   node relay-cluster.mjs replay URL1 URL2 URL3 TOPIC
//       publish 3 messages on URL1 with nobody subscribed; subscribe on URL3:
//       all 3 replayed; irn_fetchMessages on URL2: the same 3. Prints
//       "REPLAY OK" / "FETCH OK".
//   node relay-cluster.mjs subscribe URL TOPIC HOLD_MS
//       subscribe and stay HOLD_MS (the test reads the NATS interest meanwhile).
//   node relay-cluster.mjs stream URL1 URL2 URL3 TOPIC N KILLPID
//       a subscriber on URL2, N publishes on URL1 (16 in flight; a failed one
//       is sent again, as the SDK does); at N/2 acknowledged, SIGKILL KILLPID.
//       A subscriber whose socket closed moves to URL3 and subscribes again.
//       Prints "ACKED a RECEIVED r MISSING m DUPLICATES d" (exit 1 if m > 0).
//   node relay-cluster.mjs ttl URL1 URL2 TOPIC
//       a ttl 10 s message published on URL1 is fetched on URL2, and gone on
//       both after 11 s. Prints "TTL OK".
//   node relay-cluster.mjs unavailable URL TOPIC
//       with no JetStream quorum, a publish is answered -32603 (after the
//       relay's bounded retries). Prints "UNAVAILABLE OK <ms>".
//   node relay-cluster.mjs full URL1 URL2 URL3 TOPIC1 TOPIC2 LIMIT
//       A full topic keeps flowing across instances as on one relay: the
//       subscriber on URL2 acknowledges, the publisher on URL1 publishes
//       LIMIT + 100 messages, all accepted; a new subscriber on URL3 gets
//       the newest LIMIT. On TOPIC2 a subscriber on URL3 that does not
//       acknowledge keeps the mailbox whole (-32000 on URL1) until it goes.
//       Prints "FLOW OK", "LAGGING OK", "LAGGING GONE OK".
//   node relay-cluster.mjs mailbox URL1 URL2 TOPIC LIMIT
//       LIMIT messages accepted on URL1, the next one refused (-32000) on URL2.
//       Prints "MAILBOX OK".

import { randomBytes } from "node:crypto";
import WebSocket from "ws";
import { generateKeyPair, signJWT } from "@walletconnect/relay-auth";

const [cmd, ...args] = process.argv.slice(2);
let nextId = Date.now() * 1000;
const newId = () => nextId++;

function fail(what) {
  console.error(`relay-cluster: ${what}`);
  process.exit(1);
}

async function connect(relayUrl, { ack = true } = {}) {
  const kp = generateKeyPair();
  const jwt = await signJWT(randomBytes(32).toString("hex"), relayUrl, 86400, kp);
  const ws = new WebSocket(`${relayUrl}?auth=${jwt}&ua=pairlink-cluster-test`);
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  const c = { ws, pending: new Map(), onPush: null, closed: false };
  ws.on("message", (data) => {
    const m = JSON.parse(data.toString());
    if (m.method === "irn_subscription") {
      if (ack) ws.send(JSON.stringify({ id: m.id, jsonrpc: "2.0", result: true }));
      if (c.onPush) c.onPush(m.params.data);
      return;
    }
    const p = c.pending.get(String(m.id));
    if (!p) return;
    c.pending.delete(String(m.id));
    p(m);
  });
  const gone = () => {
    c.closed = true;
    for (const p of c.pending.values()) p({ error: { code: 0, message: "closed" } });
    c.pending.clear();
  };
  ws.on("close", gone);
  ws.on("error", gone);
  return c;
}

function call(c, method, params, timeoutMs = 15000) {
  if (c.closed) return Promise.resolve({ error: { code: 0, message: "closed" } });
  const id = newId();
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      c.pending.delete(String(id));
      resolve({ error: { code: -1, message: "timeout" } });
    }, timeoutMs);
    c.pending.set(String(id), (m) => {
      clearTimeout(t);
      resolve(m);
    });
    c.ws.send(JSON.stringify({ id, jsonrpc: "2.0", method, params }));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond, ms) {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(50);
  return cond();
}

async function replay([u1, u2, u3, topic]) {
  const pub = await connect(u1);
  const sent = ["r-0", "r-1", "r-2"];
  for (const message of sent) {
    const r = await call(pub, "irn_publish", { topic, message, ttl: 300, tag: 1 });
    if (r.result !== true) fail(`publish on instance 1: ${JSON.stringify(r)}`);
  }
  const sub = await connect(u3);
  const got = [];
  sub.onPush = (d) => got.push(d.message);
  const s = await call(sub, "irn_subscribe", { topic });
  if (typeof s.result !== "string") fail(`subscribe on instance 3: ${JSON.stringify(s)}`);
  await waitFor(() => got.length >= 3, 10000);
  if (got.join() !== sent.join()) fail(`instance 3 replayed [${got}]`);
  console.log("REPLAY OK");
  const f = await connect(u2);
  const r = await call(f, "irn_fetchMessages", { topic });
  const msgs = r.result?.messages?.map((m) => m.message) || [];
  if (msgs.join() !== sent.join() || r.result.hasMore !== false)
    fail(`instance 2 fetched ${JSON.stringify(r)}`);
  console.log("FETCH OK");
  // Live: a message published on instance 2 reaches the subscriber on 3.
  const l = await call(f, "irn_publish", { topic, message: "live-0", ttl: 300, tag: 1 });
  if (l.result !== true) fail(`publish on instance 2: ${JSON.stringify(l)}`);
  await waitFor(() => got.length >= 4, 10000);
  if (got[3] !== "live-0" || got.length !== 4) fail(`instance 3 got [${got}] live`);
  console.log("LIVE OK");
  // A client's retry of r-0 reaching another instance is stored once and
  // not pushed again (Nats-Msg-Id).
  const d = await call(f, "irn_publish", { topic, message: "r-0", ttl: 300, tag: 1 });
  if (d.result !== true) fail(`retry on instance 2: ${JSON.stringify(d)}`);
  await sleep(300);
  const again = await call(sub, "irn_fetchMessages", { topic });
  const all = [...sent, "live-0"];
  if (got.length !== 4 || again.result?.messages?.map((m) => m.message).join() !== all.join())
    fail(`after a retry: pushed [${got}], stored ${JSON.stringify(again)}`);
  console.log("DEDUP OK");
  process.exit(0);
}

async function subscribeHold([u, topic, holdMs]) {
  const c = await connect(u);
  const s = await call(c, "irn_subscribe", { topic });
  if (typeof s.result !== "string") fail(`subscribe: ${JSON.stringify(s)}`);
  console.log("SUBSCRIBED");
  await sleep(Number(holdMs));
  process.exit(0);
}

async function stream([u1, u2, u3, topic, nStr, killPid]) {
  const n = Number(nStr);
  const received = new Map();
  let sub;
  const attach = async (url) => {
    sub = await connect(url);
    sub.onPush = (d) => received.set(d.message, (received.get(d.message) || 0) + 1);
    const s = await call(sub, "irn_subscribe", { topic });
    if (typeof s.result !== "string") fail(`subscribe on ${url}: ${JSON.stringify(s)}`);
  };
  await attach(u2);
  let moved = false;
  const watchSub = setInterval(() => {
    if (sub.closed && !moved) {
      moved = true;
      attach(u3).catch((e) => fail(`move to instance 3: ${e.message}`));
    }
  }, 50);
  let pub = await connect(u1);
  const acked = new Set();
  let killed = false, retries = 0, next = 0;
  const inflight = new Set();
  const publishOne = async (message) => {
    for (;;) {
      if (pub.closed) pub = await connect(u1);
      const r = await call(pub, "irn_publish", { topic, message, ttl: 300, tag: 7 }, 20000);
      if (r.result === true) {
        acked.add(message);
        return;
      }
      retries++;
      await sleep(100);
    }
  };
  const progress = setInterval(() => {
    if (process.env.PL_DEBUG)
      console.error(`progress: next ${next} acked ${acked.size} received ${received.size} retries ${retries}`);
  }, 1000);
  await new Promise((resolve) => {
    const pump = () => {
      while (inflight.size < 16 && next < n) {
        const m = `s-${next++}`;
        const p = publishOne(m).then(() => {
          inflight.delete(p);
          if (!killed && acked.size >= n / 2 && killPid !== "0") {
            killed = true;
            process.kill(Number(killPid), "SIGKILL");
            console.log(`KILLED ${killPid} at ${acked.size}`);
          }
          if (acked.size === n) resolve();
          else pump();
        });
        inflight.add(p);
      }
    };
    pump();
  });
  await waitFor(() => [...acked].every((m) => received.has(m)), 20000);
  clearInterval(watchSub);
  clearInterval(progress);
  const missing = [...acked].filter((m) => !received.has(m));
  const dups = [...received.values()].filter((v) => v > 1).length;
  console.log(
    `ACKED ${acked.size} RECEIVED ${received.size} MISSING ${missing.length} DUPLICATES ${dups} RETRIES ${retries} MOVED ${moved}`,
  );
  if (missing.length) console.log(`MISSING e.g. ${missing.slice(0, 5)}`);
  process.exit(missing.length ? 1 : 0);
}

async function ttl([u1, u2, topic]) {
  const a = await connect(u1);
  const r = await call(a, "irn_publish", { topic, message: "short-lived", ttl: 10, tag: 1 });
  if (r.result !== true) fail(`publish: ${JSON.stringify(r)}`);
  const t0 = Date.now();
  const b = await connect(u2);
  const f1 = await call(b, "irn_fetchMessages", { topic });
  if (f1.result?.messages?.length !== 1) fail(`before expiry: ${JSON.stringify(f1)}`);
  await sleep(Math.max(0, 11000 - (Date.now() - t0)));
  for (const c of [a, b]) {
    const f = await call(c, "irn_fetchMessages", { topic });
    if (f.result?.messages?.length !== 0) fail(`after expiry: ${JSON.stringify(f)}`);
  }
  // A subscriber after expiry gets nothing either.
  const s = await connect(u2);
  let pushed = 0;
  s.onPush = () => pushed++;
  await call(s, "irn_subscribe", { topic });
  await sleep(500);
  if (pushed) fail("an expired message was pushed");
  console.log("TTL OK");
  process.exit(0);
}

async function mailbox([u1, u2, topic, limitStr]) {
  const limit = Number(limitStr);
  const a = await connect(u1);
  const rs = await Promise.all(
    Array.from({ length: limit }, (_, i) =>
      call(a, "irn_publish", { topic, message: `mb-${i}`, ttl: 300, tag: 1 }),
    ),
  );
  const bad = rs.filter((r) => r.result !== true);
  if (bad.length) fail(`${bad.length} of ${limit} refused: ${JSON.stringify(bad[0])}`);
  const b = await connect(u2);
  const r = await call(b, "irn_publish", { topic, message: "one-too-many", ttl: 300, tag: 1 });
  if (r.error?.code !== -32000) fail(`publish over the limit: ${JSON.stringify(r)}`);
  console.log("MAILBOX OK");
  process.exit(0);
}

// Publish messages[] on c, at most `window` in flight; the answers in order.
async function publishAll(c, topic, messages, window = 16) {
  const out = new Array(messages.length);
  let next = 0;
  const worker = async () => {
    while (next < messages.length) {
      const i = next++;
      out[i] = await call(c, "irn_publish", { topic, message: messages[i], ttl: 300, tag: 1 });
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
  return out;
}

async function full([u1, u2, u3, topic, topic2, limitStr]) {
  const limit = Number(limitStr), extra = 100;
  // 1. Keeps flowing: everything acknowledged on instance 2.
  const s = await connect(u2);
  const got = [];
  s.onPush = (d) => got.push(d.message);
  if (typeof (await call(s, "irn_subscribe", { topic })).result !== "string") fail("subscribe on 2");
  const p = await connect(u1);
  const msgs = Array.from({ length: limit + extra }, (_, i) => `f-${i}`);
  const rs = await publishAll(p, topic, msgs);
  const bad = rs.map((r, i) => [r, i]).filter(([r]) => r.result !== true);
  if (bad.length)
    fail(`${bad.length} of ${msgs.length} refused, first f-${bad[0][1]}: ${JSON.stringify(bad[0][0])}`);
  await waitFor(() => got.length >= msgs.length, 20000);
  if (got.length !== msgs.length) fail(`the subscriber on 2 got ${got.length} of ${msgs.length}`);
  // What the store keeps: the newest `limit`, replayed on instance 3.
  const n = await connect(u3);
  const replayed = [];
  n.onPush = (d) => replayed.push(d.message);
  if (typeof (await call(n, "irn_subscribe", { topic })).result !== "string") fail("subscribe on 3");
  await waitFor(() => replayed.length >= limit, 20000);
  await sleep(500);
  const want = msgs.slice(extra);
  if (replayed.length !== limit || replayed[0] !== want[0] || replayed.at(-1) !== want.at(-1))
    fail(`instance 3 replayed ${replayed.length} (${replayed[0]} .. ${replayed.at(-1)}), want ${limit} (${want[0]} .. ${want.at(-1)})`);
  console.log(`FLOW OK ${msgs.length} accepted, newest ${limit} kept`);
  // 2. A subscriber that does not acknowledge keeps the mailbox whole.
  const lag = await connect(u3, { ack: false });
  let lagGot = 0;
  lag.onPush = () => lagGot++;
  if (typeof (await call(lag, "irn_subscribe", { topic: topic2 })).result !== "string")
    fail("subscribe (lagging) on 3");
  const s2 = await connect(u2);
  let s2got = 0;
  s2.onPush = () => s2got++;
  if (typeof (await call(s2, "irn_subscribe", { topic: topic2 })).result !== "string")
    fail("subscribe on 2 (topic 2)");
  const m2 = Array.from({ length: limit }, (_, i) => `g-${i}`);
  const r2 = await publishAll(p, topic2, m2);
  if (r2.some((r) => r.result !== true)) fail(`topic 2: ${JSON.stringify(r2.find((r) => r.result !== true))}`);
  await waitFor(() => s2got >= limit, 20000);
  const over = await call(p, "irn_publish", { topic: topic2, message: "g-over", ttl: 300, tag: 1 });
  if (over.error?.code !== -32000)
    fail(`over the limit with a subscriber behind on 3: ${JSON.stringify(over)} (it got ${lagGot})`);
  console.log(`LAGGING OK (${lagGot} pushed to it, none acknowledged)`);
  lag.ws.close();
  await waitFor(() => lag.closed, 5000);
  let after;
  for (let i = 0; i < 20; i++) { // instance 3 learns of the close within a loop turn
    after = await call(p, "irn_publish", { topic: topic2, message: "g-after", ttl: 300, tag: 1 });
    if (after.result === true) break;
    await sleep(100);
  }
  if (after.result !== true) fail(`after the lagging subscriber left: ${JSON.stringify(after)}`);
  console.log("LAGGING GONE OK");
  process.exit(0);
}

async function unavailable([u, topic]) {
  const c = await connect(u);
  const t0 = Date.now();
  const r = await call(c, "irn_publish", { topic, message: "no-quorum", ttl: 300, tag: 1 }, 30000);
  if (r.error?.code !== -32603) fail(`publish without quorum: ${JSON.stringify(r)}`);
  console.log(`UNAVAILABLE OK ${Date.now() - t0}`);
  process.exit(0);
}

const cmds = { replay, subscribe: subscribeHold, stream, ttl, mailbox, full, unavailable };
if (!cmds[cmd]) fail(`unknown command ${cmd}`);
cmds[cmd](args).catch((e) => fail(e.stack || e.message));
