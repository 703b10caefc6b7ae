// SPDX-License-Identifier: Apache-2.0
// A bare relay client for the relay tests (tests/interop/relay_durability.sh):
// raw irn JSON-RPC over the `ws` package, authenticated with a relay-auth JWT
// from @walletconnect/relay-auth (aud = the relay URL).
//
//   node relay-probe.mjs publish URL TOPIC PREFIX MAX
//       publish PREFIX-0, PREFIX-1, ... (16 in flight, ttl 300) until MAX are
//       acknowledged or the socket dies; prints "ACK <message>" for every
//       `true` as it arrives, then "PUBLISHED <n>".
//   node relay-probe.mjs collect URL TOPIC FILE WAIT_MS
//       subscribe to TOPIC, acknowledge every irn_subscription, and stop when
//       every message listed in FILE (one per line) arrived or after WAIT_MS;
//       prints "RECEIVED <n> MISSING <m> DUPLICATES <d>" (exit 1 if m > 0).

import { readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import WebSocket from "ws";
import { generateKeyPair, signJWT } from "@walletconnect/relay-auth";

const [cmd, url, topic, ...rest] = process.argv.slice(2);

async function connect(relayUrl) {
  const kp = generateKeyPair();
  const jwt = await signJWT(randomBytes(32).toString("hex"), relayUrl, 86400, kp);
  const ws = new WebSocket(`${relayUrl}?auth=${jwt}&ua=pairlink-test`);
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
    ws.once("unexpected-response", (_, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
  return ws;
}

let nextId = Date.now() * 1000;
const newId = () => String(BigInt(nextId++) * 1000n); // 19-digit string ids, as the JS SDK

async function publish(prefix, max) {
  const ws = await connect(url);
  const pending = new Map();
  let sent = 0;
  let acked = 0;
  const done = new Promise((resolve) => {
    ws.on("close", resolve);
    ws.on("error", resolve);
    const pump = () => {
      while (pending.size < 16 && sent < max) {
        const id = newId();
        const message = `${prefix}-${sent++}`;
        pending.set(id, message);
        ws.send(
          JSON.stringify({
            id,
            jsonrpc: "2.0",
            method: "irn_publish",
            params: { topic, message, ttl: 300, tag: 4242, prompt: false },
          }),
        );
      }
      if (acked === max) resolve();
    };
    ws.on("message", (data) => {
      const m = JSON.parse(data.toString());
      const message = pending.get(m.id);
      if (message === undefined) return;
      pending.delete(m.id);
      if (m.result !== true) {
        console.error(`publish ${message} failed: ${JSON.stringify(m.error)}`);
        process.exit(1);
      }
      acked++;
      console.log(`ACK ${message}`);
      pump();
    });
    pump();
  });
  await done;
  console.log(`PUBLISHED ${acked}`);
  ws.terminate();
  process.exit(0);
}

async function collect(file, waitMs) {
  const want = new Set(readFileSync(file, "utf8").split("\n").filter(Boolean));
  const got = new Set();
  let dups = 0;
  const ws = await connect(url);
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, waitMs);
    ws.on("message", (data) => {
      const m = JSON.parse(data.toString());
      if (m.method !== "irn_subscription") return;
      ws.send(JSON.stringify({ id: m.id, jsonrpc: "2.0", result: true }));
      const { message, topic: t, tag } = m.params.data;
      if (t !== topic || tag !== 4242) {
        console.error(`unexpected delivery ${JSON.stringify(m.params.data)}`);
        process.exit(1);
      }
      if (got.has(message)) dups++;
      got.add(message);
      if ([...want].every((w) => got.has(w))) {
        clearTimeout(timer);
        resolve();
      }
    });
    ws.send(JSON.stringify({ id: newId(), jsonrpc: "2.0", method: "irn_subscribe", params: { topic } }));
  });
  const missing = [...want].filter((w) => !got.has(w));
  console.log(`RECEIVED ${got.size} MISSING ${missing.length} DUPLICATES ${dups}`);
  if (missing.length) console.error(`missing: ${missing.slice(0, 10).join(" ")}`);
  ws.terminate();
  process.exit(missing.length ? 1 : 0);
}

const watchdog = setTimeout(() => {
  console.error("relay-probe: time limit reached");
  process.exit(3);
}, 60000);
watchdog.unref();

if (cmd === "publish") await publish(rest[0], Number(rest[1]));
else if (cmd === "collect") await collect(rest[0], Number(rest[1]));
else {
  console.error("usage: relay-probe.mjs publish|collect ...");
  process.exit(2);
}
