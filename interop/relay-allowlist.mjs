// SPDX-License-Identifier: Apache-2.0
// The allow-list of `pairlink relay` (--require-auth --allow-file) as the JS
// side sees it (tests/interop/relay_allowlist.sh): a JWT of a listed key
// opens a WebSocket; a valid JWT of another key gets HTTP 401, which the
// SDK's socket (ws) reports as "Unexpected server response: 401", as for a
// missing JWT; after the key is added to the file and the relay got SIGHUP,
// it opens too. Prints "CHECK <name> ok" per check and "ALLOWLIST OK".
//
//   RELAY_URL=ws://127.0.0.1:PORT RELAY_PID=N ALLOW_FILE=path node relay-allowlist.mjs

import { randomBytes } from "node:crypto";
import { appendFileSync, writeFileSync } from "node:fs";
import WebSocket from "ws";
import { encodeIss, generateKeyPair, signJWT } from "@walletconnect/relay-auth";

const { RELAY_URL, RELAY_PID, ALLOW_FILE } = process.env;
const watchdog = setTimeout(() => {
  console.error("FAIL: overall time limit reached");
  process.exit(1);
}, 60000);
watchdog.unref();

function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}

// {ws} when open, {status} on an HTTP refusal, {error} otherwise (5 s at most).
async function open(kp) {
  const jwt = await signJWT(randomBytes(32).toString("hex"), RELAY_URL, 3600, kp);
  const ws = new WebSocket(`${RELAY_URL}?auth=${jwt}`);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve({ error: "no answer in 5 s" }), 5000);
    ws.once("open", () => (clearTimeout(t), resolve({ ws })));
    ws.once("unexpected-response", (_, res) => (clearTimeout(t), resolve({ status: res.statusCode })));
    ws.once("error", (e) => (clearTimeout(t), resolve({ error: e.message })));
  });
}

// The relay reloads on SIGHUP; until it has, the key is still refused.
async function openedAfterReload(kp, what) {
  for (let i = 0; i < 50; i++) {
    const r = await open(kp);
    if (r.ws) return r.ws;
    if (r.status !== 401) fail(`${what}: ${r.error || `HTTP ${r.status}`}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  fail(`${what}: still refused 5 s after SIGHUP`);
}

async function main() {
  const a = generateKeyPair(), b = generateKeyPair();
  writeFileSync(ALLOW_FILE, `# the listed key\n${encodeIss(a.publicKey)}\n`);
  process.kill(Number(RELAY_PID), "SIGHUP");
  const wa = await openedAfterReload(a, "listed key");
  console.log("CHECK listed key opens ok");

  const rb = await open(b);
  if (rb.status !== 401) fail(`unlisted key: ${rb.ws ? "opened" : rb.error || `HTTP ${rb.status}`}`);
  console.log("CHECK unlisted key gets HTTP 401 ok");
  // what the SDK's socket error says (jsonrpc-ws-connection passes it on)
  const e = await new Promise((resolve) => {
    signJWT(randomBytes(32).toString("hex"), RELAY_URL, 3600, b).then((jwt) => {
      const ws = new WebSocket(`${RELAY_URL}?auth=${jwt}`);
      ws.on("error", (err) => resolve(err.message));
      ws.on("open", () => resolve("opened"));
    });
  });
  if (e !== "Unexpected server response: 401") fail(`the ws error is '${e}'`);
  console.log("CHECK ws reports 'Unexpected server response: 401' ok");

  appendFileSync(ALLOW_FILE, `${encodeIss(b.publicKey)}\n`);
  process.kill(Number(RELAY_PID), "SIGHUP");
  const wb = await openedAfterReload(b, "key added at reload");
  console.log("CHECK key added at reload opens ok");

  // the open connections still work: a request gets its answer
  const answer = new Promise((resolve) => wa.once("message", (d) => resolve(JSON.parse(d.toString()))));
  wa.send(JSON.stringify({ id: 1, jsonrpc: "2.0", method: "irn_subscribe", params: { topic: "ab".repeat(32) } }));
  const m = await answer;
  if (typeof m.result !== "string") fail(`subscribe after the reload: ${JSON.stringify(m)}`);
  console.log("CHECK connection kept across reloads ok");
  wa.close();
  wb.close();
  console.log("ALLOWLIST OK");
}

main().catch((e) => fail(e?.stack || e));
