// A deliberately small WalletConnect relay used as a test fixture by
// tests/test_relay_client.c: it misbehaves on request (duplicate pushes,
// silence, auth rejection, unanswered or rate-limited publishes), which the
// real `pairlink relay` never does on purpose.
//
// usage: node fake-relay.mjs [--port N] [--dup N] [--reject 401|3000]
//          [--ignore-publishes N] [--rate-limit-publishes N]
//          [--tls-cert PEM --tls-key PEM]
// Prints "listening on ws://127.0.0.1:PORT" (wss:// with TLS) on stdout, then
// "closed CODE" whenever a connection ends (CODE 1006: no close frame).
// Commands on stdin, one per line:
//   freeze  stop reading every open socket (no pongs, no answers)
//   drop    terminate every open socket (no close frame)
//   close3000  close every open socket with code 3000
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import readline from 'node:readline';
import ws from 'ws';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const port = Number(opt('--port', '0'));
const dup = Number(opt('--dup', '1'));
const reject = opt('--reject', 'none');
let ignorePublishes = Number(opt('--ignore-publishes', '0'));
let rateLimitPublishes = Number(opt('--rate-limit-publishes', '0'));
const tlsCert = opt('--tls-cert', null);
const tlsKey = opt('--tls-key', null);

const server = tlsCert
  ? https.createServer({ cert: readFileSync(tlsCert), key: readFileSync(tlsKey) })
  : http.createServer();
const wss = new ws.Server({
  server,
  verifyClient: (info, cb) => {
    const url = new URL(info.req.url, 'ws://x');
    if (!url.searchParams.get('auth')) return cb(false, 400, 'auth missing');
    if (reject === '401') return cb(false, 401, 'Unauthorized');
    cb(true);
  },
});

const mailbox = []; // {topic, message, publishedAt, tag, from}
let nextConn = 1;
let nextPushId = Date.now() * 1000;
const sockets = new Set();

const sha256 = (s) => createHash('sha256').update(s).digest('hex');

function push(sock, topic, m) {
  for (let i = 0; i < dup; i++) {
    sock.send(JSON.stringify({
      id: nextPushId++,
      jsonrpc: '2.0',
      method: 'irn_subscription',
      params: {
        id: sha256(topic + sock.connId),
        data: { topic, message: m.message, publishedAt: m.publishedAt, tag: m.tag },
      },
    }));
  }
}

function subscribe(sock, topic) {
  sock.subs.add(topic);
  for (const m of mailbox) if (m.topic === topic && m.from !== sock) push(sock, topic, m);
  return sha256(topic + sock.connId);
}

wss.on('connection', (sock) => {
  sock.connId = String(nextConn++);
  sock.subs = new Set();
  sockets.add(sock);
  sock.on('close', (code) => {
    sockets.delete(sock);
    process.stdout.write(`closed ${code}\n`);
  });
  if (reject === '3000') {
    setTimeout(() => sock.close(3000, 'Unauthorized: invalid JWT'), 20);
    return;
  }
  sock.on('message', (data) => {
    let req;
    try {
      req = JSON.parse(String(data));
    } catch {
      return;
    }
    if (!req.method) return; // an ack of our push
    const reply = (result) => sock.send(JSON.stringify({ id: req.id, jsonrpc: '2.0', result }));
    const fail = (code, message) =>
      sock.send(JSON.stringify({ id: req.id, jsonrpc: '2.0', error: { code, message } }));
    const p = req.params || {};
    switch (req.method) {
      case 'irn_subscribe':
        return reply(subscribe(sock, p.topic));
      case 'irn_batchSubscribe':
        return reply(p.topics.map((t) => subscribe(sock, t)));
      case 'irn_unsubscribe':
        sock.subs.delete(p.topic);
        return reply(true);
      case 'irn_publish': {
        if (ignorePublishes > 0) {
          ignorePublishes--;
          return;
        }
        if (rateLimitPublishes > 0) {
          rateLimitPublishes--;
          return fail(3001, 'Too many requests');
        }
        const m = { topic: p.topic, message: p.message, publishedAt: Date.now(), tag: p.tag, from: sock };
        mailbox.push(m);
        reply(true);
        for (const s of sockets) if (s !== sock && s.subs.has(p.topic)) push(s, p.topic, m);
        return;
      }
      default:
        return fail(-32601, 'Method not found');
    }
  });
});

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = line.trim();
  for (const s of sockets) {
    if (cmd === 'freeze') s._socket.pause();
    else if (cmd === 'drop') s.terminate();
    else if (cmd === 'close3000') s.close(3000, 'Unauthorized');
  }
});
process.stdin.on('end', () => process.exit(0));

server.listen(port, '127.0.0.1', () => {
  const scheme = tlsCert ? 'wss' : 'ws';
  process.stdout.write(`listening on ${scheme}://127.0.0.1:${server.address().port}\n`);
});
