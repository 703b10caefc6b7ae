// SPDX-License-Identifier: Apache-2.0
// Pairing round trip JS<->JS (issue 3, section 6): two @walletconnect/core
// 2.25 instances in one process, both on the relay at RELAY_URL. One round
// trip, timed with performance.now():
//
//   A: await core.pairing.create()        -> uri, topic   (A subscribes)
//   B: await core.pairing.pair({ uri })                    (B subscribes)
//   A: await core.pairing.ping({ topic })  resolves 500 ms after B's answer
//
// The SDK holds every wc_pairingPing answer for a fixed 500 ms before it
// resolves ping() (Pairing.onPairingPingResponse: setTimeout(..., 500) in
// @walletconnect/core 2.25). So two totals are reported: `total` as the
// public API shows it, and `answered`: create until A's pairing controller
// receives the decrypted answer (a wrapper on onPairingPingResponse takes the
// time), which is the protocol work without that timer.
//
// Then, untimed, A disconnects the pairing and we wait until B has seen the
// wc_pairingDelete, so every iteration starts from the same state (no
// pairings, both sockets open). bench/bench_wc_pairing.c does the same with
// the C client. Printed: one line per phase with median / p95 / min / max in
// ms, then one machine-readable line
//   RESULT js n=<N> median_ms= p95_ms= min_ms= max_ms= answered_median_ms=
//          answered_p95_ms= init_ms= cold_answered_ms=
// (init: both Core.start(); cold_answered: from creating A to the first
// answer, connects included: the SDK opens its socket at the first
// subscribe.)
//
//   RELAY_URL=ws://127.0.0.1:PORT ITERATIONS=50 node bench-wc-pairing.mjs
//
// Bounded: every await has a time limit and a watchdog ends the process.

import { Core } from "@walletconnect/core";
import { performance } from "node:perf_hooks";

const RELAY_URL = process.env.RELAY_URL;
if (!RELAY_URL) {
  console.error("RELAY_URL is not set");
  process.exit(2);
}
const N = Math.max(1, Number(process.env.ITERATIONS || 50));
const WARMUP = Math.max(0, Number(process.env.WARMUP || 3));
const STEP_MS = Number(process.env.STEP_TIMEOUT_MS || 15000);

// Offline: the SDK may post telemetry or ask the Verify server.
globalThis.fetch = async () =>
  new Response("{}", { status: 404, headers: { "content-type": "application/json" } });

const watchdog = setTimeout(
  () => {
    console.error("FAIL: overall time limit reached");
    process.exit(1);
  },
  (N + WARMUP) * 4 * STEP_MS + 30000,
);
watchdog.unref();

function limit(name, promise) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name}: no result in ${STEP_MS} ms`)), STEP_MS);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

const tag = `${process.pid}-${Date.now()}`;
async function makeCore(name) {
  const core = new Core({
    relayUrl: RELAY_URL,
    logger: process.env.WC_LOG || "error",
    telemetryEnabled: false,
    storageOptions: { database: ":memory:", dbName: ":memory:" },
    customStoragePrefix: `bench-${name}-${tag}`,
  });
  await core.start();
  return core;
}

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  // Nearest-rank percentiles, as bench_wc_pairing.c computes them.
  const pct = (p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
  return { n: s.length, median: pct(50), p95: pct(95), min: s[0], max: s[s.length - 1] };
}
const fmt = (x) => x.toFixed(3);

// When A's pairing controller got the answer on a topic (see top).
const answeredAt = new Map();
let coldFrom, coldMs = NaN;
function watchPingAnswers(core) {
  const orig = core.pairing.onPairingPingResponse;
  if (typeof orig !== "function") throw new Error("SDK changed: no onPairingPingResponse");
  core.pairing.onPairingPingResponse = (topic, payload) => {
    answeredAt.set(topic, performance.now());
    return orig(topic, payload);
  };
}

async function roundTrip(a, b, rec) {
  const t0 = performance.now();
  const { uri, topic } = await limit("create", a.pairing.create());
  const t1 = performance.now();
  await limit("pair", b.pairing.pair({ uri }));
  const t2 = performance.now();
  await limit("ping", a.pairing.ping({ topic }));
  const t3 = performance.now();
  const ta = answeredAt.get(topic);
  answeredAt.delete(topic);
  if (ta === undefined) throw new Error("ping answer not seen by the wrapper");
  if (rec === null && coldFrom !== undefined) {
    coldMs = ta - coldFrom; // the first round trip, from the creation of A
    coldFrom = undefined;
  }
  if (rec) {
    rec.answered.push(ta - t0);
    rec.create.push(t1 - t0);
    rec.pair.push(t2 - t1);
    rec.ping.push(t3 - t2);
    rec.total.push(t3 - t0);
  }
  // Untimed clean-up: back to no pairings on either side.
  const deleted = new Promise((resolve) =>
    b.pairing.events.on("pairing_delete", function h(ev) {
      if (ev.topic === topic) {
        b.pairing.events.off("pairing_delete", h);
        resolve();
      }
    }),
  );
  await limit("disconnect", a.pairing.disconnect({ topic }));
  await limit("peer sees delete", deleted);
}

async function main() {
  const i0 = performance.now();
  coldFrom = i0;
  const a = await limit("init A", makeCore("a"));
  const b = await limit("init B", makeCore("b"));
  const initMs = performance.now() - i0;
  watchPingAnswers(a);

  for (let i = 0; i < WARMUP; i++) await roundTrip(a, b, null);
  const rec = { create: [], pair: [], ping: [], total: [], answered: [] };
  for (let i = 0; i < N; i++) await roundTrip(a, b, rec);

  for (const k of ["create", "pair", "ping", "total", "answered"]) {
    const s = stats(rec[k]);
    console.log(
      `js ${k.padEnd(8)} median ${fmt(s.median)} ms  p95 ${fmt(s.p95)} ms  min ${fmt(s.min)} ms  max ${fmt(s.max)} ms`,
    );
  }
  const t = stats(rec.total);
  const w = stats(rec.answered);
  console.log(
    `RESULT js n=${t.n} median_ms=${fmt(t.median)} p95_ms=${fmt(t.p95)} min_ms=${fmt(t.min)} max_ms=${fmt(t.max)} answered_median_ms=${fmt(w.median)} answered_p95_ms=${fmt(w.p95)} init_ms=${fmt(initMs)} cold_answered_ms=${fmt(coldMs)}`,
  );
  await Promise.allSettled([a.relayer.transportClose(), b.relayer.transportClose()]);
  process.exit(0);
}

main().catch((e) => {
  console.error(`FAIL: ${e?.stack || e}`);
  process.exit(1);
});
