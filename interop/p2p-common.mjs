// SPDX-License-Identifier: Apache-2.0
// Shared by interop/js-waku/ (js-libp2p 1.9) and interop/libp2p3/ (js-libp2p
// 3.x): the command-line contract of peer.mjs, output lines, the echo
// payload and time-outs. Imports only node: built-ins, so the npm packages of
// each project are resolved from that project's own node_modules. See
// interop/README.md for the contract the C tests rely on.

// Newer libp2p and @waku packages call Promise.withResolvers (Node >= 22).
// Import this module first: ESM evaluates imports in order, so the polyfill is
// in place before any package module body runs.
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

import { createHash } from "node:crypto";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

export const ECHO_PROTOCOL = "/pairlink/test/echo/1.0.0";

// Exit codes: 0 success, 1 a check or operation failed, 2 bad command line,
// 3 time-out (the script's own watchdog fired).
export const EXIT_OK = 0;
export const EXIT_FAIL = 1;
export const EXIT_USAGE = 2;
export const EXIT_TIMEOUT = 3;

// A reader that went away (a test that stopped reading) ends the script.
process.stdout.on("error", () => process.exit(EXIT_FAIL));

let logTag = "js";
export function setLogTag(tag) {
  logTag = tag;
}
// stdout carries only JSON lines; it is a pipe or a file in the tests, where
// Node writes synchronously, so nothing is lost on process.exit().
export function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}
export function log(...parts) {
  process.stderr.write(`[${logTag}] ${parts.join(" ")}\n`);
}
export function die(code, msg) {
  log(msg);
  process.exit(code);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Some libraries print to the console; keep stdout for our JSON lines.
export function quietConsole() {
  const toErr = (...a) => process.stderr.write(a.map(String).join(" ") + "\n");
  console.log = toErr;
  console.info = toErr;
  console.debug = () => {};
}

// A hard deadline for the whole script: runs onFire (which should print the
// failure line) and exits with EXIT_TIMEOUT. Returns a cancel function.
export function watchdog(seconds, onFire) {
  const t = setTimeout(() => {
    try {
      onFire();
    } finally {
      process.exit(EXIT_TIMEOUT);
    }
  }, seconds * 1000);
  return () => clearTimeout(t);
}

// Exits (code 0) on SIGTERM / SIGINT after cleanup, at most 2 s of it.
export function exitOnSignals(cleanup) {
  for (const sig of ["SIGTERM", "SIGINT"]) {
    process.once(sig, async () => {
      await Promise.race([cleanup(sig).catch(() => {}), sleep(2000)]);
      process.exit(EXIT_OK);
    });
  }
}

export function muxerList(name) {
  const lists = { yamux: ["yamux"], mplex: ["mplex"], both: ["yamux", "mplex"] };
  if (!(name in lists)) die(EXIT_USAGE, `--muxer must be yamux, mplex or both, not ${name}`);
  return lists[name];
}

// Connection.multiplexer is the protocol id; the output uses the short name.
export function muxerName(protocol) {
  if (protocol === "/yamux/1.0.0") return "yamux";
  if (protocol === "/mplex/6.7.0") return "mplex";
  return protocol ?? null;
}

export function num(value, name, { min = 0, max = Number.MAX_SAFE_INTEGER } = {}) {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) die(EXIT_USAGE, `bad ${name}: ${value}`);
  return n;
}

export function parseCli(argv, options) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    die(EXIT_USAGE, e.message);
  }
}

export function rssKiB(pid = "self") {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : null;
}

// The echo payload: block i is sha256("pairlink-echo" | u32be(i)), the
// stream is the concatenation cut to `total` bytes, sent in 64 KiB chunks.
// Every byte sent is also fed to `hash`.
export function* echoPayload(total, hash, chunkSize = 65536) {
  let block = 0;
  for (let sent = 0; sent < total; ) {
    const n = Math.min(chunkSize, total - sent);
    const chunk = Buffer.alloc(Math.ceil(n / 32) * 32);
    for (let off = 0; off < chunk.length; off += 32, block++) {
      const idx = Buffer.alloc(4);
      idx.writeUInt32BE(block >>> 0);
      createHash("sha256").update("pairlink-echo").update(idx).digest().copy(chunk, off);
    }
    const piece = chunk.subarray(0, n);
    hash.update(piece);
    sent += n;
    yield piece;
  }
}

export function identifyInfo(r) {
  return {
    peer: r.peerId.toString(),
    agentVersion: r.agentVersion ?? null,
    protocolVersion: r.protocolVersion ?? null,
    protocols: [...(r.protocols ?? [])],
    listenAddrs: (r.listenAddrs ?? []).map(String),
    observedAddr: r.observedAddr ? String(r.observedAddr) : null,
  };
}

// Identify results keyed by connection id: the event can arrive before or
// after dial() resolves, so both sides meet at a deferred.
export function identifyTracker(node) {
  const byConn = new Map();
  const get = (id) => {
    if (!byConn.has(id)) byConn.set(id, Promise.withResolvers());
    return byConn.get(id);
  };
  node.addEventListener("peer:identify", (e) => get(e.detail.connection.id).resolve(e.detail));
  return {
    wait: (conn) => get(conn.id).promise,
    forget: (conn) => byConn.delete(conn.id),
  };
}

function firstLoopbackAddr(node) {
  const ma = node.getMultiaddrs().map(String).find((a) => a.startsWith("/ip4/127.0.0.1/tcp/"));
  if (!ma) throw new Error("no /ip4/127.0.0.1/tcp listen address");
  return ma;
}

// ---------------------------------------------------------------------------
// peer.mjs: `impl` adapts one js-libp2p version:
//   impl.label                         e.g. "js-libp2p-1.9"
//   impl.multiaddr(str)
//   impl.createNode({ port | null, muxers }) -> started libp2p node with
//        Noise, the muxers, identify and ping, 127.0.0.1 only
//   impl.handle(node, protocol, (stream, connection) => ...)
//   impl.serveEcho(stream) -> bytes echoed (writes every byte read, then
//        closes the write side after the reader's EOF)
//   impl.exchange(stream, chunks, onData) -> sends the iterable, closes
//        write, reads until EOF (onData per Uint8Array)

const USAGE = `usage:
  peer.mjs listen [--muxer yamux|mplex|both] [--port N] [--lifetime S] [--once]
  peer.mjs dial MULTIADDR [--muxer M] [--pings N] [--echo-bytes N] [--timeout S] [--hold S]
  peer.mjs bench-connect [--count N] [--muxer M] [--peer MULTIADDR] [--timeout S]
  peer.mjs bench-idle [--conns N] [--muxer M] [--peer MULTIADDR --peer-pid PID] [--timeout S]`;

export async function runPeerCli(impl) {
  setLogTag(`peer ${impl.label}`);
  quietConsole();
  const { values: o, positionals: pos } = parseCli(process.argv.slice(2), {
    muxer: { type: "string", default: "both" },
    port: { type: "string", default: "0" },
    lifetime: { type: "string", default: "60" },
    once: { type: "boolean", default: false },
    pings: { type: "string", default: "3" },
    "echo-bytes": { type: "string", default: String(1 << 20) },
    timeout: { type: "string" },
    hold: { type: "string", default: "0" },
    count: { type: "string", default: "200" },
    conns: { type: "string", default: "100" },
    peer: { type: "string" },
    "peer-pid": { type: "string" },
    help: { type: "boolean", default: false },
  });
  if (o.help || pos.length === 0) die(o.help ? EXIT_OK : EXIT_USAGE, USAGE);
  const muxers = muxerList(o.muxer);
  const cmd = pos[0];
  if (cmd === "listen") return listen(impl, o, muxers);
  if (cmd === "dial" && pos.length === 2) return dial(impl, o, muxers, pos[1]);
  if (cmd === "bench-connect") return benchConnect(impl, o, muxers);
  if (cmd === "bench-idle") return benchIdle(impl, o, muxers);
  die(EXIT_USAGE, USAGE);
}

async function listen(impl, o, muxers) {
  const port = num(o.port, "--port", { max: 65535 });
  const lifetime = num(o.lifetime, "--lifetime");
  // Lines that happen before "listening" is printed wait here, so that it
  // is always the first line.
  let pending = [];
  const emit = (obj) => (pending ? pending.push(obj) : out(obj));
  const node = await impl.createNode({ port, muxers });
  const identified = new Set();
  let onceDone = null;
  node.addEventListener("connection:open", (e) => {
    const c = e.detail;
    emit({ event: "connection", peer: c.remotePeer.toString(), muxer: muxerName(c.multiplexer), direction: c.direction });
  });
  node.addEventListener("peer:identify", (e) => {
    identified.add(e.detail.connection.id);
    emit({ event: "identify", ...identifyInfo(e.detail) });
  });
  node.addEventListener("connection:close", (e) => {
    emit({ event: "disconnect", peer: e.detail.remotePeer.toString() });
    if (o.once && !onceDone) onceDone = identified.has(e.detail.id) ? EXIT_OK : EXIT_FAIL;
  });
  impl.handle(node, ECHO_PROTOCOL, async (stream, conn) => {
    try {
      const bytes = await impl.serveEcho(stream);
      emit({ event: "echo", peer: conn.remotePeer.toString(), bytes });
    } catch (err) {
      emit({ event: "echo", peer: conn.remotePeer.toString(), bytes: null, error: err.message });
    }
  });
  const addr = firstLoopbackAddr(node);
  out({ event: "listening", addr, peer: node.peerId.toString() });
  pending.forEach(out);
  pending = null;
  const stop = async () => Promise.race([node.stop(), sleep(2000)]);
  exitOnSignals(stop);
  // --once: exit after the first connection closed; 0 iff it was identified.
  // Without --once the lifetime is a normal end (0); with it, a time-out (3).
  const deadline = Date.now() + lifetime * 1000;
  while (onceDone === null && Date.now() < deadline) await sleep(50);
  await stop();
  if (onceDone === null) out({ event: "exit", reason: "lifetime" });
  process.exit(onceDone ?? (o.once ? EXIT_TIMEOUT : EXIT_OK));
}

async function dial(impl, o, muxers, target) {
  const pings = num(o.pings, "--pings", { max: 1000 });
  const echoBytes = num(o["echo-bytes"], "--echo-bytes", { max: 1 << 30 });
  const timeout = num(o.timeout ?? "30", "--timeout", { min: 1 });
  const hold = num(o.hold, "--hold");
  const r = {
    event: "result", ok: false, peer: null, muxer: null, agentVersion: null, protocolVersion: null,
    protocols: [], listenAddrs: [], observedAddr: null, ping_ms: [], echo_bytes: 0, echo_ok: false, error: null,
  };
  let stage = "start";
  watchdog(timeout, () => {
    r.error = `timeout (${timeout} s) during ${stage}`;
    out(r);
  });
  let node;
  try {
    node = await impl.createNode({ port: null, muxers });
    const idents = identifyTracker(node);
    stage = "dial";
    const conn = await node.dial(impl.multiaddr(target));
    r.peer = conn.remotePeer.toString();
    r.muxer = muxerName(conn.multiplexer);
    stage = "identify";
    const id = identifyInfo(await idents.wait(conn));
    for (const k of ["agentVersion", "protocolVersion", "protocols", "listenAddrs", "observedAddr"]) r[k] = id[k];
    for (let i = 0; i < pings; i++) {
      stage = `ping ${i + 1}`;
      const ms = await node.services.ping.ping(conn.remotePeer);
      r.ping_ms.push(Math.round(ms * 1000) / 1000);
    }
    stage = "echo";
    const stream = await conn.newStream(ECHO_PROTOCOL);
    const sent = createHash("sha256");
    const got = createHash("sha256");
    await impl.exchange(stream, echoPayload(echoBytes, sent), (chunk) => {
      got.update(chunk);
      r.echo_bytes += chunk.length;
    });
    r.echo_ok = r.echo_bytes === echoBytes && sent.digest("hex") === got.digest("hex");
    if (!r.echo_ok) r.error = `echo mismatch: sent ${echoBytes} bytes, got ${r.echo_bytes} (or different bytes)`;
    r.ok = r.echo_ok;
  } catch (err) {
    r.error = `${stage}: ${err.message}`;
  }
  out(r);
  if (r.ok && hold > 0) {
    stage = "hold";
    await sleep(hold * 1000);
  }
  if (node) await Promise.race([node.stop(), sleep(2000)]);
  process.exit(r.ok ? EXIT_OK : EXIT_FAIL);
}

// A listener for the benchmarks: --peer MULTIADDR (e.g. the C one), or a
// child `peer.mjs listen` of the same project.
async function benchListener(o, muxer) {
  if (o.peer) return { addr: o.peer, pid: o["peer-pid"] ?? null, stop: async () => {} };
  const child = spawn(process.execPath, [process.argv[1], "listen", "--muxer", muxer, "--lifetime", "600"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const first = Promise.withResolvers();
  // readline keeps draining the child's stdout: a full pipe would block it.
  createInterface({ input: child.stdout }).on("line", (line) => {
    try {
      first.resolve(JSON.parse(line));
    } catch {}
  });
  child.once("exit", (code) => first.reject(new Error(`listener exited with ${code}`)));
  const line = await first.promise;
  const exited = new Promise((r) => child.once("exit", r));
  return { addr: line.addr, pid: child.pid, stop: () => (child.kill("SIGTERM"), exited) };
}

// A full collection before reading RSS, without needing `node --expose-gc`.
function forceGc() {
  setFlagsFromString("--expose-gc");
  runInNewContext("gc")();
}

function quantile(sorted, q) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null;
}
const r3 = (x) => (x == null ? null : Math.round(x * 1000) / 1000);

async function benchConnect(impl, o, muxers) {
  const count = num(o.count, "--count", { min: 1, max: 1e6 });
  const timeout = num(o.timeout ?? "300", "--timeout", { min: 1 });
  const res = { event: "bench-connect", impl: impl.label, muxer: muxers[0], count, done: 0, seconds: null,
    per_second: null, mean_ms: null, p50_ms: null, p99_ms: null, ok: false, error: null };
  let listener = { stop: () => {} };
  watchdog(timeout, () => {
    listener.stop();
    res.error = `timeout (${timeout} s) after ${res.done} connections`;
    out(res);
  });
  try {
    listener = await benchListener(o, o.muxer);
    const node = await impl.createNode({ port: null, muxers });
    const idents = identifyTracker(node);
    const target = impl.multiaddr(listener.addr);
    const times = [];
    const t0 = performance.now();
    // One at a time: TCP + Noise + muxer + identify, then close.
    for (let i = 0; i < count; i++) {
      const t = performance.now();
      const conn = await node.dial(target, { force: true });
      await idents.wait(conn);
      times.push(performance.now() - t);
      idents.forget(conn);
      await conn.close();
      res.done++;
    }
    res.seconds = r3((performance.now() - t0) / 1000);
    times.sort((a, b) => a - b);
    res.per_second = r3(count / res.seconds);
    res.mean_ms = r3(times.reduce((a, b) => a + b, 0) / count);
    res.p50_ms = r3(quantile(times, 0.5));
    res.p99_ms = r3(quantile(times, 0.99));
    res.ok = true;
    await Promise.race([node.stop(), sleep(2000)]);
  } catch (err) {
    res.error = err.message;
  }
  await Promise.race([listener.stop(), sleep(3000)]);
  out(res);
  process.exit(res.ok ? EXIT_OK : EXIT_FAIL);
}

async function benchIdle(impl, o, muxers) {
  const conns = num(o.conns, "--conns", { min: 1, max: 100000 });
  const timeout = num(o.timeout ?? "300", "--timeout", { min: 1 });
  const res = { event: "bench-idle", impl: impl.label, muxer: muxers[0], conns, open: 0,
    dialer_rss_kib_before: null, dialer_rss_kib_after: null, dialer_kib_per_conn: null,
    listener_rss_kib_before: null, listener_rss_kib_after: null, listener_kib_per_conn: null, ok: false, error: null };
  let listener = { stop: () => {} };
  watchdog(timeout, () => {
    listener.stop();
    res.error = `timeout (${timeout} s) with ${res.open} connections open`;
    out(res);
  });
  const settle = async () => {
    forceGc();
    await sleep(2000);
  };
  try {
    listener = await benchListener(o, o.muxer);
    const node = await impl.createNode({ port: null, muxers });
    const idents = identifyTracker(node);
    const target = impl.multiaddr(listener.addr);
    // A warm-up connection loads every code path before the baseline.
    const warm = await node.dial(target, { force: true });
    await idents.wait(warm);
    await settle();
    res.dialer_rss_kib_before = rssKiB();
    if (listener.pid) res.listener_rss_kib_before = rssKiB(listener.pid);
    // One at a time: concurrent dials to one peer are merged into one.
    for (let i = 0; i < conns; i++) {
      const c = await node.dial(target, { force: true });
      await idents.wait(c);
      res.open++;
    }
    await settle();
    res.dialer_rss_kib_after = rssKiB();
    res.dialer_kib_per_conn = r3((res.dialer_rss_kib_after - res.dialer_rss_kib_before) / conns);
    if (listener.pid) {
      res.listener_rss_kib_after = rssKiB(listener.pid);
      res.listener_kib_per_conn = r3((res.listener_rss_kib_after - res.listener_rss_kib_before) / conns);
    }
    res.open = node.getConnections().length - 1;
    res.ok = res.open === conns;
    if (!res.ok) res.error = `${res.open} of ${conns} connections still open after settling`;
    await Promise.race([node.stop(), sleep(3000)]);
  } catch (err) {
    res.error = err.message;
  }
  await Promise.race([listener.stop(), sleep(3000)]);
  out(res);
  process.exit(res.ok ? EXIT_OK : EXIT_FAIL);
}
