// SPDX-License-Identifier: Apache-2.0
// WalletConnect pairing end to end between the official JS SDK (@walletconnect/core
// and sign-client 2.25) and the pairlink CLI (`pairlink wc ...`) through
// `pairlink relay`, all on 127.0.0.1 (issue 3, section 5). Driven by
// tests/interop/wc_pairing_e2e.sh, one case per run:
//
//   PL_CLI=build/pairlink WORK=/tmp/dir node wc-pairing-e2e.mjs CASE
//
// CASE is one of: js-create, c-create, sign-unsupported, delete, expire,
// restart, restart-unsent, bad-input. The script starts its own relay(s) and C processes,
// prints "STEP <what> ok" as it goes and "CASE <name> ok" at the end, or
// "CASE <name> FAILED: <why>" and exits 1. Every wait has a time limit and
// every child is killed on exit, so a hang is a failure, never a stuck test.
// Logs of the relay and of every C process are left in WORK for the caller.

import { Core } from "@walletconnect/core";
import { SignClient } from "@walletconnect/sign-client";
import { encrypt, generateRandomBytes32 } from "@walletconnect/utils";
import { spawn } from "node:child_process";
import { once as onceEvent } from "node:events";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";

const CLI = process.env.PL_CLI;
const WORK = process.env.WORK;
const CASE = process.argv[2];
const CASE_MS = Number(process.env.WC_CASE_TIMEOUT_MS || 40000);
const STEP_MS = Number(process.env.WC_STEP_TIMEOUT_MS || 20000);
const THIRTY_DAYS = 30 * 86400;
if (!CLI || !WORK || !CASE) {
  console.error("usage: PL_CLI=... WORK=... node wc-pairing-e2e.mjs CASE");
  process.exit(2);
}

// Offline: the SDK may ask the Verify server or post telemetry.
globalThis.fetch = async () =>
  new Response("{}", { status: 404, headers: { "content-type": "application/json" } });

// ---------------------------------------------------------------- helpers

const children = new Set();
const cores = [];

function killAll() {
  for (const c of children) {
    try {
      c.kill("SIGKILL");
    } catch {}
  }
}
process.on("exit", killAll);
// The SDK rejects some promises nobody awaits (e.g. a publish the relay
// refused); such a rejection must fail the case with its reason, not
// kill the process with "#<Object>".
process.on("unhandledRejection", (e) => {
  console.log(`CASE ${CASE} FAILED: unhandled rejection: ${e?.message || JSON.stringify(e)}`);
  killAll();
  process.exit(1);
});

function fail(msg) {
  throw new Error(msg);
}
function check(cond, what) {
  if (!cond) fail(`check failed: ${what}`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function withTimeout(promise, ms, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

async function step(name, promise, ms = STEP_MS) {
  const v = await withTimeout(Promise.resolve(promise), ms, name);
  console.log(`STEP ${name} ok`);
  return v;
}

const nowS = () => Math.floor(Date.now() / 1000);
function checkThirtyDays(expiry, what) {
  const want = nowS() + THIRTY_DAYS;
  check(
    Number.isInteger(expiry) && Math.abs(expiry - want) <= 120,
    `${what}: expiry ${expiry} is now+30 days (${want}) +-120 s`,
  );
}

let seq = 0;
const logPath = (name) => path.join(WORK, `${CASE}-${name}`);

// A `pairlink relay`; port 0 picks a free port, a restart passes the old one.
async function startRelay(name, { port = 0, db, verbose = false } = {}) {
  const args = ["relay", "--listen", `127.0.0.1:${port}`];
  if (db) args.push("--db", db);
  if (verbose) args.push("--verbose");
  const err = fs.openSync(logPath(`${name}.err`), "a");
  const proc = spawn(CLI, args, { stdio: ["ignore", "pipe", err] });
  fs.closeSync(err);
  children.add(proc);
  proc.on("exit", () => children.delete(proc));
  const rl = readline.createInterface({ input: proc.stdout });
  const listening = new Promise((resolve, reject) => {
    rl.on("line", (l) => {
      const m = /^listening on ws:\/\/127\.0\.0\.1:(\d+)$/.exec(l);
      if (m) resolve(Number(m[1]));
    });
    proc.on("exit", (code, sig) => reject(new Error(`relay ${name} exited (${code ?? sig}) at start-up`)));
  });
  const p = await withTimeout(listening, 10000, `relay ${name} listening`);
  return { proc, port: p, url: `ws://127.0.0.1:${p}`, db, name, log: logPath(`${name}.err`) };
}

async function kill9(proc) {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = onceEvent(proc, "exit");
  proc.kill("SIGKILL");
  await exited;
}

// A `pairlink wc ...` process whose --json events are collected and can be
// awaited. stdout and stderr are also written to WORK for the post-mortem.
class CProc {
  constructor(name, args, env = {}) {
    this.name = `${name}#${++seq}`;
    this.events = [];
    this.waiters = [];
    this.out = fs.createWriteStream(logPath(`c-${this.name}.out`));
    const err = fs.openSync(logPath(`c-${this.name}.err`), "a");
    this.proc = spawn(CLI, args, {
      stdio: ["ignore", "pipe", err],
      env: { ...process.env, ...env },
    });
    fs.closeSync(err);
    children.add(this.proc);
    this.exited = new Promise((resolve) =>
      this.proc.on("exit", (code, signal) => {
        children.delete(this.proc);
        this.code = code;
        this.signal = signal;
        this.flushWaiters();
        resolve({ code, signal });
      }),
    );
    const rl = readline.createInterface({ input: this.proc.stdout });
    rl.on("line", (l) => {
      this.out.write(l + "\n");
      let ev;
      try {
        ev = JSON.parse(l);
      } catch {
        ev = { event: "non_json_line", line: l };
      }
      this.events.push(ev);
      this.flushWaiters();
    });
  }
  flushWaiters() {
    this.waiters = this.waiters.filter((w) => {
      const ev = this.events.find(w.pred);
      if (ev) {
        w.resolve(ev);
        return false;
      }
      if (this.code !== undefined || this.signal) {
        w.reject(new Error(`${this.name} exited (${this.code ?? this.signal}) before ${w.what}`));
        return false;
      }
      return true;
    });
  }
  // Resolves with the first event (already seen or future) matching pred.
  wait(pred, what, ms = STEP_MS) {
    const p = new Promise((resolve, reject) => {
      this.waiters.push({ pred, what, resolve, reject });
      this.flushWaiters();
    });
    return withTimeout(p, ms, `${this.name}: ${what}`);
  }
  count(pred) {
    return this.events.filter(pred).length;
  }
  async exit(ms = STEP_MS) {
    return withTimeout(this.exited, ms, `${this.name} exit`);
  }
  async kill9() {
    await kill9(this.proc);
  }
  async term() {
    if (this.code !== undefined || this.signal) return;
    this.proc.kill("SIGTERM");
    const r = await this.exit(10000);
    check(r.code === 0, `${this.name} stops cleanly on SIGTERM (got ${r.code ?? r.signal})`);
  }
}

// The CLI's time fields are unix milliseconds (docs/cli.md); WalletConnect's
// expiry is in seconds.
const sec = (ms) => (Number.isInteger(ms) && ms % 1000 === 0 ? ms / 1000 : NaN);

const ev = (name, topic) => (e) => e.event === name && (!topic || e.topic === topic);

async function wcList(store) {
  const c = new CProc("list", ["wc", "list", "--store", store, "--json"]);
  const r = await c.exit(10000);
  check(r.code === 0, `wc list exits 0 (got ${r.code ?? r.signal})`);
  // one object per line, {"event":"pairing", ...} (docs/cli.md)
  check(c.events.every((e) => e.event === "pairing"), "wc list --json prints pairing objects only");
  return c.events;
}

const tag = `${process.pid}-${Date.now()}`;
const coreOpts = (name, relayUrl) => ({
  relayUrl,
  logger: process.env.WC_LOG || "fatal",
  telemetryEnabled: false,
  storageOptions: { database: ":memory:" },
  customStoragePrefix: `${CASE}-${name}-${tag}`,
});

async function makeCore(name, relayUrl) {
  const core = new Core(coreOpts(name, relayUrl));
  await core.start();
  cores.push(core);
  return core;
}

async function makeSign(name, relayUrl) {
  const c = await SignClient.init({
    ...coreOpts(name, relayUrl),
    metadata: {
      name: `pairlink e2e ${name}`,
      description: "pairlink interop test",
      url: "https://pairlink.invalid",
      icons: [],
    },
  });
  cores.push(c.core);
  return c;
}

// JS pairing ping; the SDK itself never times out, so the step does.
const jsPing = (core, topic) => core.pairing.ping({ topic });

function jsHasPairing(core, topic) {
  return core.pairing.getPairings().some((p) => p.topic === topic);
}

// Decoded pairing-topic messages the JS client receives (whatever its
// pairing controller makes of them).
function tapMessages(core, topic) {
  const seen = [];
  core.relayer.on("relayer_message", async (m) => {
    if (m.topic !== topic) return;
    try {
      seen.push(await core.crypto.decode(topic, m.message));
    } catch {
      seen.push({ undecodable: m.message });
    }
  });
  return seen;
}

async function waitFor(cond, what, ms = STEP_MS, every = 100) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) fail(`${what}: not within ${ms} ms`);
    await sleep(every);
  }
}

const cArgs = (relay, store, ...rest) => [...rest, "--relay", relay.url, "--store", store, "--json"];

// ---------------------------------------------------------------- cases

const cases = {};

// 1. JS create -> C pair -> JS ping answered by C.
cases["js-create"] = async () => {
  const relay = await startRelay("relay", { db: logPath("relay.db") });
  const js = await step("JS core up", makeCore("js", relay.url));
  const { topic, uri } = await step("JS pairing.create", js.pairing.create());
  const store = logPath("c.db");
  const c = new CProc("pair", cArgs(relay, store, "wc", "pair", uri));
  const created = await step("C pair: created", c.wait(ev("created", topic), "created"));
  checkThirtyDays(sec(created.expiry_ms), "C responder pairing at pair()");
  await step("C relay_connected", c.wait(ev("relay_connected"), "relay_connected"));
  await step("JS ping answered by C", jsPing(js, topic));
  await step("C saw the ping", c.wait(ev("ping", topic), "ping event"));
  const list = await wcList(store);
  const p = list.find((x) => x.topic === topic);
  check(p, "wc list shows the pairing");
  check(p.active === true && p.proposer === false, "C pairing is active, responder");
  checkThirtyDays(sec(p.expiry_ms), "C pairing in wc list");
  check(jsHasPairing(js, topic), "JS still has the pairing");
  await c.term();
};

// 2. C create -> JS pair -> C ping answered by JS. The serving `wc create`
// keeps running beside `wc ping` (two processes, one store, one did:key),
// as a user would run them in two terminals.
cases["c-create"] = async () => {
  const relay = await startRelay("relay", { db: logPath("relay.db") });
  const store = logPath("c.db");
  const methods = ["wc_sessionPropose", "wc_authRequest"];
  const c = new CProc("create",
    cArgs(relay, store, "wc", "create", "--no-qr", "--until-active", "--methods", methods.join(",")));
  const u = await step("C create: uri", c.wait(ev("uri"), "uri event"));
  const { topic, uri } = u;
  check(/^wc:[0-9a-f]{64}@2\?/.test(uri) && uri.slice(3, 67) === topic, "URI carries the topic");
  const created = c.events.find(ev("created", topic));
  check(created && Math.abs(sec(created.expiry_ms) - (nowS() + 300)) <= 60, "C proposer pairing expires in 5 min");
  await step("C relay_connected", c.wait(ev("relay_connected"), "relay_connected"));
  let list = await wcList(store);
  check(list.some((x) => x.topic === topic && x.active === false && x.proposer === true),
    "wc list shows the pairing inactive, proposer");

  const js = await step("JS core up", makeCore("js", relay.url));
  const pairing = await step("JS pairing.pair", js.pairing.pair({ uri }));
  check(pairing.topic === topic, "JS pairs on the same topic");
  check(JSON.stringify(pairing.methods) === JSON.stringify(methods),
    `JS reads the URI's methods (${JSON.stringify(pairing.methods)})`);
  check(pairing.expiry === sec(created.expiry_ms), "JS takes the URI's expiryTimestamp");
  const jsPinged = new Promise((r) => js.pairing.events.once("pairing_ping", r));

  const ping = new CProc("ping", cArgs(relay, store, "wc", "ping", topic, "--timeout", "20"));
  const r = await step("C wc ping exits", ping.exit(25000), 25000);
  check(r.code === 0, `wc ping exits 0 on the pong (got ${r.code ?? r.signal})`);
  check(ping.events.some(ev("pong", topic)), "wc ping printed pong");
  const act = ping.events.find(ev("activated", topic));
  check(act, "wc ping activated the pairing on the pong");
  checkThirtyDays(sec(act.expiry_ms), "activated event");
  const pinged = await step("JS saw the ping", jsPinged);
  check(pinged.topic === topic, "JS ping event on the pairing topic");

  // The serving process saw the same pong and activates too (--until-active: exits 0).
  const act2 = await step("wc create activated", c.wait(ev("activated", topic), "activated"));
  checkThirtyDays(sec(act2.expiry_ms), "wc create's activated event");
  const rc = await step("wc create --until-active exits", c.exit());
  check(rc.code === 0, `wc create exits 0 once active (got ${rc.code ?? rc.signal})`);

  list = await wcList(store);
  const p = list.find((x) => x.topic === topic);
  check(p && p.active === true && p.proposer === true, "C pairing is active (proposer)");
  check(JSON.stringify(p.methods) === JSON.stringify(methods), `wc list keeps the methods (${p.methods})`);
  checkThirtyDays(sec(p.expiry_ms), "C pairing in wc list");
  check(jsHasPairing(js, topic), "JS sees the pairing");
};

// 3. The seed's error case: a dapp's session proposal to a C side without
// the Sign protocol gets 10001; with --accept the C side gets the proposal.
cases["sign-unsupported"] = async () => {
  const relay = await startRelay("relay", { db: logPath("relay.db") });
  const dapp = await step("dapp SignClient up", makeSign("dapp", relay.url));
  const ns = {
    optionalNamespaces: {
      eip155: { methods: ["personal_sign"], chains: ["eip155:1"], events: ["accountsChanged"] },
    },
  };
  const first = await step("dapp connect #1", dapp.connect(ns));
  const topic1 = first.uri.slice(3, 67);
  const approval1 = first.approval();
  approval1.catch(() => {});
  const c1 = new CProc("pair-plain", cArgs(relay, logPath("c1.db"), "wc", "pair", first.uri));
  const unsup = await step("C answers 10001", c1.wait(ev("unsupported_method", topic1), "unsupported_method"));
  check(unsup.method === "wc_sessionPropose", `C names the method (${unsup.method})`);
  let err;
  try {
    await step("dapp approval settles", approval1);
  } catch (e) {
    err = e;
  }
  check(err && err.code === 10001, `approval fails with code 10001 (got ${JSON.stringify(err?.code ?? err?.message)})`);
  check(err.message === "Unsupported wc_ method. wc_sessionPropose", `error message (got "${err.message}")`);
  console.log(`STEP approval rejected ${JSON.stringify({ code: err.code, message: err.message })} ok`);
  await c1.term();

  const second = await step("dapp connect #2", dapp.connect(ns));
  const topic2 = second.uri.slice(3, 67);
  second.approval().catch(() => {});
  const c2 = new CProc("pair-accept", cArgs(relay, logPath("c2.db"), "wc", "pair", second.uri, "--accept", "wc_sessionPropose"));
  const req = await step("C receives the proposal", c2.wait(ev("request", topic2), "request event"));
  check(req.method === "wc_sessionPropose", "request is wc_sessionPropose");
  const pr = req.params || {};
  const dappKeys = dapp.core.crypto.keychain.keychain;
  check(/^[0-9a-f]{64}$/.test(pr.proposer?.publicKey || ""), "params.proposer.publicKey is 32 bytes hex");
  check(dappKeys.has(pr.proposer.publicKey), "proposer.publicKey is the dapp's own key");
  check(pr.proposer?.metadata?.name === "pairlink e2e dapp", "proposer metadata is the dapp's");
  check(pr.optionalNamespaces?.eip155?.methods?.[0] === "personal_sign", "namespaces arrive intact");
  check(c2.count(ev("unsupported_method")) === 0, "no 10001 once the method is registered");
  await c2.term();
};

// 4. Delete from either side removes the pairing on both.
cases["delete"] = async () => {
  const relay = await startRelay("relay", { db: logPath("relay.db") });
  const js = await step("JS core up", makeCore("js", relay.url));

  // a) JS disconnects -> C sees deleted by_peer and forgets it.
  const a = await js.pairing.create();
  const storeA = logPath("a.db");
  const ca = new CProc("pair-a", cArgs(relay, storeA, "wc", "pair", a.uri));
  await step("JS ping answered (a)", jsPing(js, a.topic));
  await step("JS disconnect", js.pairing.disconnect({ topic: a.topic }));
  check(!jsHasPairing(js, a.topic), "JS forgot pairing a");
  const del = await step("C deleted by_peer", ca.wait(ev("deleted", a.topic), "deleted"));
  check(del.by_peer === true, "C reports by_peer: true");
  const ra = await step("C pair exits after the delete", ca.exit());
  check(ra.code === 0, `wc pair exits 0 (got ${ra.code ?? ra.signal})`);
  check(!(await wcList(storeA)).some((x) => x.topic === a.topic), "C store no longer has pairing a");

  // b) C deletes -> JS gets pairing_delete and forgets it.
  const b = await js.pairing.create();
  const storeB = logPath("b.db");
  const cb = new CProc("pair-b", cArgs(relay, storeB, "wc", "pair", b.uri, "--exit", "--timeout", "10"));
  const rb = await step("C wc pair --exit exits", cb.exit());
  check(rb.code === 0 && cb.events.some(ev("relay_connected")), `wc pair --exit exits 0 once connected (got ${rb.code ?? rb.signal})`);
  const jsDeleted = new Promise((r) =>
    js.pairing.events.on("pairing_delete", (e) => e.topic === b.topic && r(e)),
  );
  const cd = new CProc("delete", cArgs(relay, storeB, "wc", "delete", b.topic));
  const rd = await step("C wc delete exits", cd.exit());
  check(rd.code === 0, `wc delete exits 0 (got ${rd.code ?? rd.signal})`);
  const d = cd.events.find(ev("deleted", b.topic));
  check(d && d.by_peer === false, "wc delete reports deleted by_peer false");
  await step("JS pairing_delete event", jsDeleted);
  check(!jsHasPairing(js, b.topic), "JS forgot pairing b");
  check(!(await wcList(storeB)).some((x) => x.topic === b.topic), "C store no longer has pairing b");
};

// 5. An inactive pairing expires (short TTL).
cases["expire"] = async () => {
  const relay = await startRelay("relay", { db: logPath("relay.db"), verbose: true });
  const store = logPath("c.db");
  const t0 = Date.now();
  const c = new CProc("create", cArgs(relay, store, "wc", "create", "--no-qr"), {
    PAIRLINK_WC_INACTIVE_TTL: "3",
  });
  const u = await step("C create: uri", c.wait(ev("uri"), "uri event"));
  const created = c.events.find(ev("created", u.topic));
  check(created && Math.abs(sec(created.expiry_ms) - (Math.floor(t0 / 1000) + 3)) <= 2, "expiry is creation + 3 s");
  check(/expiryTimestamp=(\d+)/.exec(u.uri)?.[1] === String(sec(created.expiry_ms)), "URI carries that expiry");
  await step("C expired event", c.wait(ev("expired", u.topic), "expired", 10000), 10000);
  const dt = (Date.now() - t0) / 1000;
  check(dt >= 2 && dt <= 8, `expired after about 3 s (${dt.toFixed(1)} s)`);
  const r = await step("C create exits", c.exit());
  check(r.code === 1, `wc create exits 1 when its pairing expires (got ${r.code ?? r.signal})`);
  check(!(await wcList(store)).some((x) => x.topic === u.topic), "wc list no longer shows it");

  // A restored pairing expires in a process that keeps running: `wc run`
  // must drop it and unsubscribe its topic at the relay.
  const store2 = logPath("c2.db");
  const c2 = new CProc("create2", cArgs(relay, store2, "wc", "create", "--no-qr"), {
    PAIRLINK_WC_INACTIVE_TTL: "4",
  });
  const u2 = await step("C create #2: uri", c2.wait(ev("uri"), "uri event"));
  await c2.term();
  const run = new CProc("run", cArgs(relay, store2, "wc", "run"));
  const restored = await step("wc run restored it", run.wait(ev("restored"), "restored"));
  check(restored.pairings === 1, `wc run restored 1 pairing (got ${restored.pairings})`);
  await step("wc run: expired", run.wait(ev("expired", u2.topic), "expired", 10000), 10000);
  const unsub = new RegExp(`"method":"irn_unsubscribe".*"topic":"${u2.topic}"`);
  await step("the relay got irn_unsubscribe for it",
    waitFor(() => unsub.test(fs.readFileSync(relay.log, "utf8")), "irn_unsubscribe at the relay", 5000));
  check(!(await wcList(store2)).some((x) => x.topic === u2.topic), "wc list no longer shows it");
  await run.term();
};

// 6. kill -9 of the C side and of the relay mid-conversation loses nothing.
cases["restart"] = async () => {
  const db = logPath("relay.db");
  let relay = await startRelay("relay", { db });
  const port = relay.port;
  const js = await step("JS core up", makeCore("js", relay.url));
  const { topic, uri } = await js.pairing.create();
  const store = logPath("c.db");
  const c1 = new CProc("pair", cArgs(relay, store, "wc", "pair", uri));
  await step("JS ping #0 answered", jsPing(js, topic));

  // C down: JS pings; the relay's mailbox keeps them for the restarted C.
  await c1.kill9();
  console.log("STEP kill -9 wc pair ok");
  const p1 = jsPing(js, topic);
  const p2 = jsPing(js, topic);
  await sleep(1500);
  const c2 = new CProc("run", cArgs(relay, store, "wc", "run"));
  const restored = await step("C wc run restored", c2.wait(ev("restored"), "restored"));
  check(restored.pairings === 1, `wc run restored 1 pairing (got ${restored.pairings})`);
  await step("JS pings #1 #2 (sent while C was down) answered", Promise.all([p1, p2]));
  await step("C answered both", c2.wait(() => c2.count(ev("ping", topic)) >= 2, "two pings"));

  // Relay down: JS pings into its publish queue, the running C reconnects.
  await kill9(relay.proc);
  console.log("STEP kill -9 relay ok");
  await c2.wait(ev("relay_disconnected"), "relay_disconnected", 10000);
  const pingsBefore = c2.count(ev("ping", topic));
  const p3 = jsPing(js, topic);
  await sleep(1500);
  relay = await step("relay restarted on the same port and db", startRelay("relay2", { port, db }));
  await step("JS ping #3 (sent while the relay was down) answered", p3, 30000);
  await step("C answered it after reconnecting",
    c2.wait(() => c2.count(ev("ping", topic)) > pingsBefore, "ping after restart"));
  check(c2.count(ev("relay_connected")) >= 2, "wc run reconnected to the relay");

  // C's own queue: a C ping sent while the relay is down is delivered and
  // answered after the relay restarts; a JS ping sent meanwhile too.
  await c2.term();
  await kill9(relay.proc);
  console.log("STEP kill -9 relay (2) ok");
  const ping = new CProc("ping", cArgs(relay, store, "wc", "ping", topic, "--timeout", "30"));
  const p4 = jsPing(js, topic);
  await sleep(1500);
  relay = await step("relay restarted again", startRelay("relay3", { port, db }));
  const r = await step("C ping (queued while the relay was down) answered", ping.exit(30000), 30000);
  check(r.code === 0, `wc ping exits 0 (got ${r.code ?? r.signal})`);
  // p4 reaches whichever C process holds the topic next: serve it.
  const c3 = new CProc("run2", cArgs(relay, store, "wc", "run"));
  await step("JS ping #4 answered", p4, 30000);
  await c3.term();

  // The relay's durable mailbox: a request it acknowledged while nobody was
  // subscribed survives its kill -9 and reaches the C side started after.
  const seen = tapMessages(js, topic);
  const symKey = js.crypto.keychain.get(topic);
  const pid = Date.now() * 1000 + 11;
  const req = JSON.stringify({ id: pid, jsonrpc: "2.0", method: "wc_pairingPing", params: {} });
  await step("JS ping #5 acknowledged by the relay (C down)",
    js.relayer.publish(topic, encrypt({ type: 0, symKey, message: req }), { ttl: 300, tag: 1002 }));
  await kill9(relay.proc);
  console.log("STEP kill -9 relay (3) ok");
  relay = await step("relay restarted (3)", startRelay("relay4", { port, db }));
  const c4 = new CProc("run3", cArgs(relay, store, "wc", "run"));
  await step("C got ping #5 from the relay's mailbox", c4.wait((e) => e.event === "ping" && e.id === pid, "ping #5"));
  const ans = await step("JS got the answer to ping #5",
    waitFor(() => seen.find((m) => m && m.id === pid), "answer to ping #5"));
  check(ans.result === true, `ping #5 answered true (got ${JSON.stringify(ans)})`);
  await c4.term();

  // Delivery is at least once: the relay replays its mailbox to every new
  // subscription. One process must never handle a request twice; a
  // restarted one does handle again what an earlier one answered, because
  // the engine's de-dup ring lives in memory only. Reported, not failed.
  const answered = new Set();
  let again = 0;
  for (const p of [c1, c2, ping, c3, c4]) {
    const ids = p.events.filter(ev("ping", topic)).map((e) => e.id);
    check(new Set(ids).size === ids.length, `${p.name} handled no ping twice (${ids.join(",")})`);
    for (const id of ids) if (answered.has(id)) again++;
    ids.forEach((id) => answered.add(id));
  }
  console.log(`NOTE restarted C processes handled ${again} pings again that an earlier process had answered`);
  const list = await wcList(store);
  const p = list.find((x) => x.topic === topic);
  check(p && p.active, "the pairing survived everything, active");
  checkThirtyDays(sec(p.expiry_ms), "pairing after the restarts");
};

// 6b. A request the C side made while the relay was down, then kill -9 of
// the C process before the relay ever had it: the restarted C side must
// still send it (the engine keeps it as pending in the store).
cases["restart-unsent"] = async () => {
  const db = logPath("relay.db");
  let relay = await startRelay("relay", { db });
  const port = relay.port;
  const js = await step("JS core up", makeCore("js", relay.url));
  const { topic, uri } = await js.pairing.create();
  const store = logPath("c.db");
  const c1 = new CProc("pair", cArgs(relay, store, "wc", "pair", uri));
  await step("JS ping answered", jsPing(js, topic));
  await c1.term();
  const jsPinged = new Promise((r) => js.pairing.events.on("pairing_ping", (e) => e.topic === topic && r(e)));

  await kill9(relay.proc);
  console.log("STEP kill -9 relay ok");
  const ping = new CProc("ping", cArgs(relay, store, "wc", "ping", topic, "--timeout", "30"));
  await step("wc ping tried the relay", ping.wait(ev("relay_disconnected"), "relay_disconnected", 10000));
  await ping.kill9();
  console.log("STEP kill -9 wc ping while the relay is down ok");
  relay = await step("relay restarted", startRelay("relay2", { port, db }));
  const c2 = new CProc("run", cArgs(relay, store, "wc", "run"));
  await step("wc run restored", c2.wait(ev("restored"), "restored"));
  const got = await step("JS receives the ping wc ping had queued", jsPinged, 15000).catch((e) => {
    const t = c2.events.find(ev("request_timeout", topic)) ? " (wc run later reports request_timeout)" : "";
    fail(`${e.message}: the restored pending ping was never sent${t}`);
  });
  check(got.topic === topic, "ping on the pairing topic");
  await step("wc run gets the pong", c2.wait(ev("pong", topic), "pong"));
  await c2.term();
};

// 7. Garbage on the pairing topic: C reports bad_message and keeps working.
cases["bad-input"] = async () => {
  const relay = await startRelay("relay", { db: logPath("relay.db") });
  const js = await step("JS core up", makeCore("js", relay.url));
  const { topic, uri } = await js.pairing.create();
  const seen = tapMessages(js, topic);
  const c = new CProc("pair", cArgs(relay, logPath("c.db"), "wc", "pair", uri));
  await step("JS ping answered", jsPing(js, topic));

  const symKey = js.crypto.keychain.get(topic);
  const wrongKey = generateRandomBytes32();
  const b64 = (bytes) => Buffer.from(bytes).toString("base64");
  const seal = (message, key = symKey, type = 0, senderPublicKey) =>
    encrypt({ type, symKey: key, message, senderPublicKey });
  const garbage = [
    ["not base64", "!!! this is not base64 !!!"],
    ["type byte only", b64([0])],
    ["short type 0", b64([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])],
    ["unknown type 7", b64(Buffer.concat([Buffer.from([7]), Buffer.alloc(60, 1)]))],
    ["random ciphertext", b64(Buffer.concat([Buffer.from([0]), Buffer.from(generateRandomBytes32(), "hex"), Buffer.alloc(40, 9)]))],
    ["wrong key", seal(JSON.stringify({ id: 1, jsonrpc: "2.0", method: "wc_pairingPing", params: {} }), wrongKey)],
    ["type 2 plaintext", b64(Buffer.concat([Buffer.from([2]), Buffer.from('{"id":2,"jsonrpc":"2.0","method":"wc_pairingPing","params":{}}')]))],
    ["type 1 with a stranger's key", seal('{"id":3,"jsonrpc":"2.0","method":"wc_pairingPing","params":{}}', symKey, 1, generateRandomBytes32())],
    ["not JSON", seal("this is not json")],
    ["JSON string", seal('"just a string"')],
    ["JSON array", seal("[1,2,3]")],
    ["no jsonrpc member", seal('{"id":4,"method":"wc_pairingPing","params":{}}')],
    ["jsonrpc 1.0", seal('{"id":5,"jsonrpc":"1.0","method":"wc_pairingPing","params":{}}')],
    ["method not a string", seal('{"id":6,"jsonrpc":"2.0","method":42,"params":{}}')],
    ["id an object", seal('{"id":{},"jsonrpc":"2.0","method":"wc_pairingPing","params":{}}')],
    ["duplicate keys", seal('{"id":7,"id":8,"jsonrpc":"2.0","method":"wc_pairingPing","params":{}}')],
    ["invalid UTF-8", seal(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]).toString("latin1"))],
    ["deeply nested", seal('{"id":9,"jsonrpc":"2.0","method":"wc_pairingPing","params":' + "[".repeat(5000) + "]".repeat(5000) + "}")],
    ["large garbage", b64(Buffer.alloc(200000, 0x41))],
  ];
  const before = c.count(ev("bad_message", topic));
  for (const [, msg] of garbage) {
    await js.relayer.publish(topic, msg, { ttl: 300, tag: 0 });
  }
  console.log(`STEP published ${garbage.length} bad messages ok`);

  // A well-formed request for a method nobody registered: 10001, not a crash.
  const unknownId = Date.now() * 1000 + 7;
  await js.relayer.publish(
    topic,
    seal(JSON.stringify({ id: unknownId, jsonrpc: "2.0", method: "wc_noSuchMethod", params: {} })),
    { ttl: 300, tag: 0 },
  );
  // A response to a request C never sent: dropped quietly.
  await js.relayer.publish(topic, seal(JSON.stringify({ id: 12345, jsonrpc: "2.0", result: true })), { ttl: 300, tag: 0 });

  const un = await step("C answers the unknown method with 10001",
    c.wait(ev("unsupported_method", topic), "unsupported_method"));
  check(un.method === "wc_noSuchMethod", "unsupported_method names wc_noSuchMethod");
  const resp = await waitFor(() => seen.find((m) => m && m.id === unknownId), "JS gets the 10001 answer");
  check(resp.error?.code === 10001 && resp.error?.message === "Unsupported wc_ method. wc_noSuchMethod",
    `the answer is 10001 (got ${JSON.stringify(resp.error)})`);

  // Every garbage message that cannot be a valid request is reported.
  const want = garbage.length;
  await waitFor(() => c.count(ev("bad_message", topic)) - before >= want, `C reports ${want} bad_message events`, 10000)
    .catch((e) => {
      const got = c.events.filter(ev("bad_message", topic)).map((x) => x.code);
      fail(`${e.message}; got ${got.length}: ${got.join(",")}`);
    });
  const errs = c.events.filter(ev("bad_message", topic)).map((x) => x.code);
  console.log(`STEP C reported ${errs.length} bad_message events (${[...new Set(errs)].join(", ")}) ok`);
  check(errs.every((x) => typeof x === "string" && x.startsWith("PL_ERR_")), "each names a pl_err");
  check(c.count(ev("ping", topic)) === 1, "no garbage was taken for a ping");

  await step("JS ping still answered", jsPing(js, topic));
  check(c.proc.exitCode === null && !c.proc.signalCode, "wc pair still running");
  await c.term();
};

// ---------------------------------------------------------------- main

async function closeAll() {
  for (const core of cores) {
    try {
      await withTimeout(core.relayer.transportClose(), 3000, "transportClose");
    } catch {}
  }
}

const watchdog = setTimeout(() => {
  console.log(`CASE ${CASE} FAILED: overall time limit ${CASE_MS} ms reached`);
  killAll();
  process.exit(1);
}, CASE_MS);
watchdog.unref();

if (!cases[CASE]) {
  console.error(`unknown case ${CASE}; cases: ${Object.keys(cases).join(" ")}`);
  process.exit(2);
}
fs.mkdirSync(WORK, { recursive: true });
// Stores and mailboxes of an earlier run of this case would replay old
// pairings and messages into this one.
for (const f of fs.readdirSync(WORK)) if (f.startsWith(`${CASE}-`)) fs.rmSync(path.join(WORK, f), { force: true });
cases[CASE]().then(
  async () => {
    await closeAll();
    killAll();
    console.log(`CASE ${CASE} ok`);
    process.exit(0);
  },
  async (e) => {
    console.log(`CASE ${CASE} FAILED: ${e?.message || e}`);
    if (process.env.WC_DEBUG) console.error(e?.stack);
    await closeAll();
    killAll();
    process.exit(1);
  },
);
