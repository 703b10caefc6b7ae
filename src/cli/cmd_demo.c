/* SPDX-License-Identifier: Apache-2.0 */
/* pairlink demo: both pairing flows on an embedded relay, one readable line
 * per step. The relay runs in a forked child (its own loop); the parties run
 * in this process on one loop, driven step by step with run_until(). */
#include "cli/cli.h"
#include "cli/demo.h"

#include "pairlink/hash.h"
#include "pairlink/waku_node.h"
#include "pairlink/wc_client.h"
#include "relay/ws_server.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- shared helpers (also used by the node-manager part) ---- */

static void wake(uv_timer_t *t) { (void)t; }

bool pl__demo_run_until(uv_loop_t *loop, const bool *flag, int timeout_ms) {
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uint64_t end = uv_now(loop) + (uint64_t)timeout_ms;
    /* A repeating wake-up so the loop never blocks past the deadline. */
    uv_timer_start(&t, wake, 50, 50);
    while (!*flag && uv_now(loop) < end) uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag;
}

void pl__demo_step(pl_demo *d, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("%s[%2d] ", d->prefix, ++d->step);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

int pl__demo_fail(pl_demo *d, const char *what, pl_err e) {
    printf("%s     FAILED: %s: %s (%s)\n", d->prefix, what, pl_strerror(e), pl_errname(e));
    d->failed = true;
    return 1;
}

static pid_t relay_pid = -1;

/* Fork the relay: the child runs pairlink's relay server on 127.0.0.1 with
 * an in-memory mailbox and reports its port through a pipe. */
static pl_err start_relay(int *port) {
    int fds[2];
    if (pipe(fds) != 0) return PL_ERR_SYS;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return PL_ERR_SYS;
    if (pid == 0) {
        close(fds[0]);
        pl__ws_server_opts o = {.host = "127.0.0.1", .port = 0, .handle_signals = true};
        pl__ws_server *s = NULL;
        int p = -1;
        if (pl__ws_server_new(&s, &o) == PL_OK) p = pl__ws_server_port(s);
        if (write(fds[1], &p, sizeof p) != (ssize_t)sizeof p) _exit(1);
        close(fds[1]);
        if (p < 0) _exit(1);
        pl__ws_server_run(s);
        pl__ws_server_free(s);
        _exit(0);
    }
    close(fds[1]);
    int p = -1;
    ssize_t n = read(fds[0], &p, sizeof p);
    close(fds[0]);
    if (n != (ssize_t)sizeof p || p <= 0) {
        waitpid(pid, NULL, 0);
        return PL_ERR_WEBSOCKET;
    }
    relay_pid = pid;
    *port = p;
    return PL_OK;
}

static void stop_relay(void) {
    if (relay_pid <= 0) return;
    kill(relay_pid, SIGTERM);
    waitpid(relay_pid, NULL, 0);
    relay_pid = -1;
}

/* ---- the WalletConnect flow ---- */

typedef struct party {
    const char *name;
    pl_wc_client *c;
    bool connected;
    bool got_request, got_response, activated, pong, deleted, closed;
    int64_t err_code;
    char err_msg[128];
    char result[128];
    int64_t expiry;
} party;

static void on_event(void *ud, pl_wc_client *c, const pl_wc_event *ev) {
    (void)c;
    party *p = ud;
    if (ev->kind == PL_WC_EV_ACTIVATED) p->activated = true, p->expiry = ev->expiry;
    if (ev->kind == PL_WC_EV_PONG) p->pong = true;
    if (ev->kind == PL_WC_EV_DELETED && ev->by_peer) p->deleted = true;
}

static void on_state(void *ud, pl_wc_client *c, pl_transport_state st, pl_err err) {
    (void)c, (void)err;
    ((party *)ud)->connected = st == PL_TRANSPORT_CONNECTED;
}

static void on_sign_request(void *ud, pl_wc_engine *e, const char *topic, const pl_rpc_msg *req) {
    party *p = ud;
    p->got_request = true;
    pl_wc_respond(e, topic, req->method, &req->id, "{\"signature\":\"0xdemo\"}");
}

static void on_sign_response(void *ud, pl_wc_engine *e, const char *topic, const char *method,
                             const pl_rpc_id *id, const pl_rpc_msg *res, pl_err err) {
    (void)e, (void)topic, (void)method, (void)id, (void)err;
    party *p = ud;
    p->got_response = true;
    p->err_code = 0;
    if (res && res->kind == PL_RPC_ERROR) {
        p->err_code = res->err_code;
        snprintf(p->err_msg, sizeof p->err_msg, "%s", res->err_message);
    } else if (res) {
        snprintf(p->result, sizeof p->result, "%s", res->result);
    }
}

static void on_closed(void *ud) { ((party *)ud)->closed = true; }

static pl_err party_open(pl_demo *d, party *p, const char *name, const char *db) {
    memset(p, 0, sizeof *p);
    p->name = name;
    char path[600];
    snprintf(path, sizeof path, "%s/%s", d->dir, db);
    pl_wc_client_opts o = {.relay_url = d->relay_url,
                           .store_path = path,
                           .on_event = on_event,
                           .on_transport_state = on_state,
                           .ud = p};
    pl_err e = pl_wc_client_new(&p->c, &d->loop, &o);
    if (e != PL_OK) return e;
    const pl_wc_method sign = {"demo_sign", 1200, 300, false, 1201, 300};
    e = pl_wc_register(pl_wc_client_engine(p->c), &sign, on_sign_request, on_sign_response, p);
    if (e != PL_OK) return e;
    if (!pl__demo_run_until(&d->loop, &p->connected, 10000)) return PL_ERR_TIMEOUT;
    return PL_OK;
}

static void party_close(pl_demo *d, party *p) {
    if (!p->c) return;
    pl_wc_client_close(p->c, 0, on_closed);
    pl__demo_run_until(&d->loop, &p->closed, 5000);
    p->c = NULL;
}

static int wc_flow(pl_demo *d) {
    party dapp, wallet;
    pl_err e;
    d->prefix = "wc ";
    d->step = 0;
    if ((e = party_open(d, &dapp, "dapp", "dapp.db")) != PL_OK) return pl__demo_fail(d, "dapp start", e);
    if ((e = party_open(d, &wallet, "wallet", "wallet.db")) != PL_OK)
        return pl__demo_fail(d, "wallet start", e);
    pl__demo_step(d, "dapp and wallet connected to the relay (each with its own Ed25519 relay identity)");

    pl_wc_engine *de = pl_wc_client_engine(dapp.c), *we = pl_wc_client_engine(wallet.c);
    int64_t now = pl_wc_client_now(dapp.c);
    char *uri = NULL, topic[PL_TOPIC_HEX_SIZE];
    const char *methods[] = {"demo_sign"};
    if ((e = pl_wc_create(de, methods, 1, now, &uri, topic)) != PL_OK) return pl__demo_fail(d, "create", e);
    pl__demo_step(d, "dapp created an inactive pairing (expires in 5 min); URI for the QR code:");
    printf("        %.60s... (symKey hidden)\n", uri);
    e = pl_wc_pair(we, uri, strlen(uri), now, NULL);
    pl_free_secret(uri, strlen(uri));
    if (e != PL_OK) return pl__demo_fail(d, "pair", e);
    pl_wc_pairing wp;
    pl_wc_pairing_get(we, topic, &wp);
    pl__demo_step(d, "wallet paired: topic %.16s... = sha256(symKey), active, expires in %lld days", topic,
                  (long long)((wp.expiry - now / 1000) / 86400));
    pl_wipe(&wp, sizeof wp);

    if ((e = pl_wc_request(de, topic, "demo_sign", "{\"message\":\"hello\"}", now, NULL)) != PL_OK)
        return pl__demo_fail(d, "request", e);
    if (!pl__demo_run_until(&d->loop, &dapp.got_response, 10000))
        return pl__demo_fail(d, "waiting for the wallet's answer", PL_ERR_TIMEOUT);
    pl__demo_step(d, "dapp sent demo_sign over the pairing; wallet answered %s", dapp.result);
    if (!dapp.activated) return pl__demo_fail(d, "activation", PL_ERR_STATE);
    pl__demo_step(d, "the answer proves the wallet paired: dapp's pairing is now active for 30 days");

    /* The wallet registered no protocol for this method: the seed's error case. */
    dapp.got_response = false;
    const pl_wc_method other = {"demo_unregistered", 1300, 300, false, 1301, 300};
    pl_wc_register(de, &other, NULL, on_sign_response, &dapp);
    if ((e = pl_wc_request(de, topic, "demo_unregistered", "{}", pl_wc_client_now(dapp.c), NULL)) != PL_OK)
        return pl__demo_fail(d, "request", e);
    if (!pl__demo_run_until(&d->loop, &dapp.got_response, 10000) || dapp.err_code != 10001)
        return pl__demo_fail(d, "unsupported method reply", PL_ERR_TIMEOUT);
    pl__demo_step(d, "a method the wallet never registered is refused: %lld \"%s\"", (long long)dapp.err_code,
                  dapp.err_msg);

    if ((e = pl_wc_ping(we, topic, pl_wc_client_now(dapp.c), NULL)) != PL_OK) return pl__demo_fail(d, "ping", e);
    if (!pl__demo_run_until(&d->loop, &wallet.pong, 10000)) return pl__demo_fail(d, "pong", PL_ERR_TIMEOUT);
    pl__demo_step(d, "wallet pinged the dapp (wc_pairingPing): answered");

    party_close(d, &dapp);
    if ((e = party_open(d, &dapp, "dapp", "dapp.db")) != PL_OK) return pl__demo_fail(d, "dapp restart", e);
    pl__demo_step(d, "dapp restarted: %zu pairing restored from its store and re-subscribed",
                  pl_wc_client_restored(dapp.c));
    de = pl_wc_client_engine(dapp.c);
    dapp.pong = false;
    if ((e = pl_wc_ping(de, topic, pl_wc_client_now(dapp.c), NULL)) != PL_OK) return pl__demo_fail(d, "ping", e);
    if (!pl__demo_run_until(&d->loop, &dapp.pong, 10000)) return pl__demo_fail(d, "pong", PL_ERR_TIMEOUT);
    pl__demo_step(d, "the restored pairing still works: dapp's ping answered by the wallet");

    if ((e = pl_wc_delete(de, topic, pl_wc_client_now(dapp.c))) != PL_OK) return pl__demo_fail(d, "delete", e);
    if (!pl__demo_run_until(&d->loop, &wallet.deleted, 10000))
        return pl__demo_fail(d, "delete reaching the wallet", PL_ERR_TIMEOUT);
    pl__demo_step(d, "dapp deleted the pairing (wc_pairingDelete 6000); the wallet removed it too");
    party_close(d, &dapp);
    party_close(d, &wallet);
    return 0;
}

/* ---- the embedded Waku network (--waku) ---- */

typedef struct hop {
    pl_driver *drv;
    pl_waku_node *node;
    bool closed;
} hop;

static void hop_closed(void *ud) { ((hop *)ud)->closed = true; }

/* The relay node in the middle: the app's and the node manager's nodes dial
 * only it, so everything between them is relayed by it. */
static pl_err hop_start(pl_demo *d, hop *h) {
    memset(h, 0, sizeof *h);
    pl_err e = pl_driver_new(&h->drv, &d->loop);
    if (e != PL_OK) return e;
    pl_waku_node_opts o;
    pl_waku_node_opts_init(&o);
    e = pl_waku_node_new(&h->node, h->drv, &o);
    if (e != PL_OK) {
        pl_driver_free(h->drv);
        h->drv = NULL;
        return e;
    }
    e = pl_waku_node_listen(h->node, "/ip4/127.0.0.1/tcp/0");
    if (e == PL_OK && pl_waku_node_listen_addr(h->node, 0, d->waku_peer, sizeof d->waku_peer) == 0)
        e = PL_ERR_INTERNAL;
    return e;
}

static void hop_stop(pl_demo *d, hop *h) {
    if (h->node) {
        pl_waku_node_close(h->node, hop_closed, h);
        pl__demo_run_until(&d->loop, &h->closed, 5000);
        h->node = NULL;
    }
    if (h->drv) pl_driver_close(h->drv, NULL, NULL);
    h->drv = NULL;
}

static void cleanup_dir(pl_demo *d) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->dir);
    if (system(cmd) != 0) fprintf(stderr, "pairlink demo: could not remove %s\n", d->dir);
}

static int demo_waku(pl_demo *d) {
    hop h;
    uv_loop_init(&d->loop);
    pl_err e = hop_start(d, &h);
    int rc = 1;
    if (e != PL_OK) {
        pl_cli_fail("demo", "starting the embedded Waku relay node", e);
    } else {
        d->waku = true;
        printf("waku: a relay node listening on %s (cluster 16, shard 64);\n", d->waku_peer);
        printf("      the app and the node manager each run a Waku node that dials only it\n\n");
        printf("== Node-manager pairing (Status / Nimbus) over Waku ==\n");
        rc = pl__demo_nm_flow(d);
    }
    hop_stop(d, &h);
    uv_run(&d->loop, UV_RUN_DEFAULT); /* every handle finishes closing */
    uv_loop_close(&d->loop);
    cleanup_dir(d);
    printf("\n%s\n", rc == 0 ? "demo finished: the node-manager flow completed over Waku" : "demo FAILED");
    return rc;
}

int pl_cli_demo(int argc, char **argv) {
    bool waku = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: pairlink demo [--waku]\n\n"
                   "Start an embedded relay on 127.0.0.1, then walk through both pairing flows:\n"
                   "the WalletConnect Pairing API (dapp and wallet) and the node-manager pairing\n"
                   "(GUI app and node manager: code, HELLO exchange, Noise session, restart).\n"
                   "Everything runs locally and finishes by itself in seconds.\n\n"
                   "  --waku   the node-manager pairing over an embedded Waku network instead:\n"
                   "           three Waku relay nodes on 127.0.0.1 in a line (the app's, a relay\n"
                   "           node, the node manager's), so the two sides are never directly\n"
                   "           connected; the same eleven steps, restart included\n");
            return 0;
        }
        if (!strcmp(argv[i], "--waku"))
            waku = true;
        else
            return pl_cli_usage_error("demo", "unknown argument '%s'", argv[i]);
    }
    pl_demo d = {0};
    snprintf(d.dir, sizeof d.dir, "/tmp/pairlink-demo-XXXXXX");
    if (!mkdtemp(d.dir)) return pl_cli_fail("demo", "temporary directory", PL_ERR_SYS);
    if (waku) return demo_waku(&d);
    int port = 0;
    pl_err e = start_relay(&port);
    if (e != PL_OK) return pl_cli_fail("demo", "starting the embedded relay", e);
    snprintf(d.relay_url, sizeof d.relay_url, "ws://127.0.0.1:%d", port);
    printf("relay: pairlink relay listening on %s (in-memory mailbox)\n\n", d.relay_url);
    uv_loop_init(&d.loop);

    printf("== WalletConnect v2 Pairing API ==\n");
    int rc = wc_flow(&d);
    if (rc == 0) {
        printf("\n== Node-manager pairing (Status / Nimbus) ==\n");
        rc = pl__demo_nm_flow(&d);
    }
    uv_run(&d.loop, UV_RUN_NOWAIT);
    uv_loop_close(&d.loop);
    stop_relay();
    cleanup_dir(&d);
    printf("\n%s\n", rc == 0 ? "demo finished: both flows completed" : "demo FAILED");
    return rc;
}
