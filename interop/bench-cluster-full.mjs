// SPDX-License-Identifier: Apache-2.0
// Run by scripts/bench-cluster.sh (docs/performance.md, "Relay cluster"):
//   node bench-cluster-full.mjs URL1 URL2 LIMIT N
// p50/p99 of one publish (window 1) on instance 1 with the subscriber on 2,
// below the limit and on a full topic (every publish makes room).
import { randomBytes } from "node:crypto";
import WebSocket from "ws";
const [u1, u2, limit, n] = [process.argv[2], process.argv[3], Number(process.argv[4]), Number(process.argv[5])];
let id = Date.now() * 1000;
function conn(url) {
  const ws = new WebSocket(url);
  const pend = new Map();
  const c = { ws, pend, pushes: 0 };
  ws.on("message", (d) => {
    const m = JSON.parse(d.toString());
    if (m.method === "irn_subscription") { c.pushes++; ws.send(JSON.stringify({ id: m.id, jsonrpc: "2.0", result: true })); return; }
    const p = pend.get(m.id); if (p) { pend.delete(m.id); p(m); }
  });
  return new Promise((r) => ws.once("open", () => r(c)));
}
const call = (c, method, params) => new Promise((r) => { const i = id++; c.pend.set(i, r); c.ws.send(JSON.stringify({ id: i, jsonrpc: "2.0", method, params })); });
const q = (a, p) => a.slice().sort((x, y) => x - y)[Math.floor(a.length * p)];
const topic = randomBytes(32).toString("hex");
const s = await conn(u2); await call(s, "irn_subscribe", { topic });
const p = await conn(u1);
for (let i = 0; i < limit; i++) { const r = await call(p, "irn_publish", { topic, message: `w-${i}`, ttl: 300 }); if (r.result !== true) throw new Error(JSON.stringify(r)); }
const below = [], full = [];
const t2 = randomBytes(32).toString("hex");
await call(s, "irn_subscribe", { topic: t2 });
for (let i = 0; i < n; i++) { const t0 = performance.now(); const r = await call(p, "irn_publish", { topic: t2, message: `b-${i}`, ttl: 300 }); below.push(performance.now() - t0); if (r.result !== true) throw new Error(JSON.stringify(r)); }
for (let i = 0; i < n; i++) { const t0 = performance.now(); const r = await call(p, "irn_publish", { topic, message: `f-${i}`, ttl: 300 }); full.push(performance.now() - t0); if (r.result !== true) throw new Error(JSON.stringify(r)); }
console.log(`below the limit: p50 ${q(below, 0.5).toFixed(2)} ms p99 ${q(below, 0.99).toFixed(2)} ms; full topic (a ROOM each): p50 ${q(full, 0.5).toFixed(2)} ms p99 ${q(full, 0.99).toFixed(2)} ms`);
process.exit(0);
