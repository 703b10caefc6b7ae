// SPDX-License-Identifier: Apache-2.0
// The official JS Sign flow through `pairlink relay` (issue 3, section 1):
// two SignClients, a dapp and a wallet, connect, pair, approve, request,
// respond and disconnect through the relay at RELAY_URL. Every step has a
// time limit; the script prints "STEP <name> ok" per step and "SIGNFLOW OK"
// at the end, and exits non-zero at the first failure. Driven by
// tests/interop/relay_signflow.sh.
//
//   RELAY_URL=ws://127.0.0.1:PORT node relay-signflow.mjs

import { SignClient } from "@walletconnect/sign-client";
import { getSdkError } from "@walletconnect/utils";

const RELAY_URL = process.env.RELAY_URL;
if (!RELAY_URL) {
  console.error("RELAY_URL is not set");
  process.exit(2);
}
const STEP_MS = Number(process.env.STEP_TIMEOUT_MS || 20000);

// Keep the test offline: the wallet asks the Verify server about every
// request and the SDK may post telemetry. A refused fetch is tolerated.
globalThis.fetch = async (url) => {
  return new Response("{}", { status: 404, headers: { "content-type": "application/json" } });
};

// Whatever happens, stop: a hung promise must not hang CTest.
const watchdog = setTimeout(() => {
  console.error("FAIL: overall time limit reached");
  process.exit(1);
}, 6 * STEP_MS);
watchdog.unref();

function step(name, promise) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name}: no result in ${STEP_MS} ms`)), STEP_MS);
  });
  return Promise.race([promise, limit]).then(
    (v) => {
      clearTimeout(timer);
      console.log(`STEP ${name} ok`);
      return v;
    },
    (e) => {
      clearTimeout(timer);
      throw new Error(`${name}: ${e?.message || e}`);
    },
  );
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

function once(client, event) {
  return new Promise((resolve) => client.once(event, resolve));
}

const tag = `${process.pid}-${Date.now()}`;
const init = (name) =>
  SignClient.init({
    // WALLET_RELAY_URL: the wallet on another relay instance (the cluster test).
    relayUrl: (name === "wallet" && process.env.WALLET_RELAY_URL) || RELAY_URL,
    logger: process.env.WC_LOG || "error",
    telemetryEnabled: false,
    storageOptions: { database: ":memory:", dbName: ":memory:" },
    customStoragePrefix: `${name}-${tag}`,
    metadata: {
      name: `pairlink relay test ${name}`,
      description: "interop test",
      url: "https://pairlink.invalid",
      icons: [],
    },
  });

const ACCOUNT = "eip155:1:0x000000000000000000000000000000000000dEaD";
let dapp, wallet;

async function main() {
  dapp = await step("init dapp", init("dapp"));
  wallet = await step("init wallet", init("wallet"));

  // The wallet approves whatever it is proposed, with one account.
  const proposalSeen = once(wallet, "session_proposal");

  const { uri, approval } = await step(
    "connect",
    dapp.connect({
      optionalNamespaces: {
        eip155: { methods: ["personal_sign"], chains: ["eip155:1"], events: ["accountsChanged"] },
      },
    }),
  );
  check(typeof uri === "string" && uri.startsWith("wc:"), "connect() gives a wc: URI");
  const pairingTopic = uri.slice(3, 67);

  await step("pair", wallet.pair({ uri }));
  const proposal = await step("proposal delivered", proposalSeen);
  check(proposal.params.pairingTopic === pairingTopic, "proposal arrives on the pairing topic");

  const approved = await step(
    "approve",
    wallet.approve({
      id: proposal.id,
      namespaces: {
        eip155: {
          accounts: [ACCOUNT],
          methods: ["personal_sign"],
          events: ["accountsChanged"],
          chains: ["eip155:1"],
        },
      },
    }),
  );
  const [dappSession, walletSession] = await step(
    "session settled",
    Promise.all([approval(), approved.acknowledged()]),
  );
  check(dappSession.topic === walletSession.topic, "both sides share the session topic");
  check(dappSession.namespaces.eip155.accounts[0] === ACCOUNT, "dapp sees the approved account");
  const topic = dappSession.topic;

  // Pairing became active on both sides.
  const dp = dapp.core.pairing.getPairings().find((p) => p.topic === pairingTopic);
  const wp = wallet.core.pairing.getPairings().find((p) => p.topic === pairingTopic);
  check(dp && wp, "both sides keep the pairing");

  wallet.on("session_request", async (ev) => {
    const { topic: t, id, params } = ev;
    check(params.request.method === "personal_sign", "wallet receives personal_sign");
    await wallet.respond({
      topic: t,
      response: { id, jsonrpc: "2.0", result: `0xsigned:${params.request.params[0]}` },
    });
  });
  const result = await step(
    "request/respond",
    dapp.request({
      topic,
      chainId: "eip155:1",
      request: { method: "personal_sign", params: ["0x68656c6c6f", ACCOUNT.split(":")[2]] },
    }),
  );
  check(result === "0xsigned:0x68656c6c6f", `request result is the wallet's answer (${result})`);

  const deleted = once(wallet, "session_delete");
  await step("disconnect", dapp.disconnect({ topic, reason: getSdkError("USER_DISCONNECTED") }));
  const del = await step("session_delete delivered", deleted);
  check(del.topic === topic, "the wallet learns which session was deleted");
  check(dapp.session.getAll().length === 0, "dapp has no session left");
  check(wallet.session.getAll().length === 0, "wallet has no session left");
}

async function closeAll() {
  for (const c of [dapp, wallet]) {
    try {
      await c?.core?.relayer?.transportClose();
    } catch {}
  }
}

main().then(
  async () => {
    await closeAll();
    console.log("SIGNFLOW OK");
    process.exit(0);
  },
  async (e) => {
    console.error(`FAIL: ${e?.stack || e}`);
    await closeAll();
    process.exit(1);
  },
);
