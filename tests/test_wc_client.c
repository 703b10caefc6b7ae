/* SPDX-License-Identifier: Apache-2.0 */
/* The WalletConnect client (wc_client.h): two clients with real stores,
 * first over the loopback transport on a virtual driver (pairing, requests,
 * restart, time-outs, expiry, other topics, transport states, all with
 * explicit time), then once over a socket with relay clients of their own on
 * a libuv loop against `pairlink relay`, closing with a flush. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pairlink/driver.h"
#include "pairlink/loopback.h"
#include "pairlink/relay_client.h"
#include "pairlink/store.h"
#include "pairlink/wc_client.h"
#include "support/support.h"

#include <sqlite3.h>
#include <uv.h>

#include <fcntl.h>
#include <libwebsockets.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define T0 INT64_C(1700000000000)

static char dir[64];
static pl_driver *D;
static pl_loopback_hub *H;

typedef struct party {
    const char *name;
    char store[128];
    pl_transport *tp;
    pl_wc_client *c;
    bool closed;
    int ev[16];
    pl_wc_event last;
    char topic[PL_TOPIC_HEX_SIZE];
    int requests, responses, others, states;
    pl_transport_state state;
    pl_err res_err;
    char other[64];
    /* group commit: the peer's store, read (committed rows only) when its
     * request, ping or answer arrives here */
    const char *peer_store;
    int peer_pending, peer_seen, checks;
    bool close_on_activated; /* as `wc create --until-active` does */
    int published_at_activation;
} party;

/* Rows of `table` committed in the store at `path`, through a connection
 * of its own (WAL: it sees committed transactions only, and never waits). */
static int committed_rows(const char *path, const char *table) {
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void check_peer_store(party *p) {
    if (!p->peer_store) return;
    p->peer_pending = committed_rows(p->peer_store, "wc_pending");
    p->peer_seen = committed_rows(p->peer_store, "wc_seen");
    p->checks++;
}

static int dapp_publishes; /* what the loopback tap saw "dapp" publish */

static void on_closed(void *ud);

static void on_event(void *ud, pl_wc_client *c, const pl_wc_event *ev) {
    party *p = ud;
    p->ev[ev->kind]++;
    p->last = *ev;
    if (ev->kind == PL_WC_EV_PING || ev->kind == PL_WC_EV_PONG) check_peer_store(p);
    if (ev->topic) snprintf(p->topic, sizeof p->topic, "%s", ev->topic);
    if (ev->kind == PL_WC_EV_ACTIVATED) {
        p->published_at_activation = dapp_publishes;
        if (p->close_on_activated) pl_wc_client_close(c, 5000, on_closed);
    }
}

static void on_state(void *ud, pl_wc_client *c, pl_transport_state s, pl_err err) {
    (void)c, (void)err;
    party *p = ud;
    p->states++;
    p->state = s;
}

static void on_other(void *ud, pl_wc_client *c, const char *topic, const uint8_t *data,
                     size_t len) {
    (void)c, (void)topic;
    party *p = ud;
    p->others++;
    snprintf(p->other, sizeof p->other, "%.*s", (int)len, (const char *)data);
}

static void on_request(void *ud, pl_wc_engine *e, const char *topic, const pl_rpc_msg *req) {
    party *p = ud;
    p->requests++;
    check_peer_store(p);
    assert_int_equal(pl_wc_respond(e, topic, req->method, &req->id, "{\"signed\":true}"), PL_OK);
}

static void on_response(void *ud, pl_wc_engine *e, const char *topic, const char *method,
                        const pl_rpc_id *id, const pl_rpc_msg *res, pl_err err) {
    (void)e, (void)topic, (void)method, (void)id, (void)res;
    party *p = ud;
    p->responses++;
    p->res_err = err;
    check_peer_store(p);
}

static void on_closed(void *ud) {
    ((party *)ud)->closed = true;
}

static const pl_wc_method sign = {"test_sign", 1200, 300, false, 1201, 300};

static void start(party *p) {
    p->closed = false;
    assert_int_equal(pl_loopback_new(&p->tp, H, p->name, NULL), PL_OK);
    pl_wc_client_opts o = {.store_path = p->store,
                           .transport = p->tp,
                           .driver = D,
                           .on_event = on_event,
                           .on_transport_state = on_state,
                           .on_other_message = on_other,
                           .ud = p};
    assert_int_equal(pl_wc_client_new(&p->c, NULL, &o), PL_OK);
    assert_ptr_equal(pl_wc_client_transport(p->c), p->tp);
    assert_ptr_equal(pl_wc_client_driver(p->c), D);
    assert_int_equal(pl_wc_client_now(p->c), pl_driver_now(D));
    assert_int_equal(pl_wc_register(pl_wc_client_engine(p->c), &sign, on_request, on_response, p),
                     PL_OK);
}

static void init(party *p, const char *name) {
    memset(p, 0, sizeof *p);
    p->name = name;
    snprintf(p->store, sizeof p->store, "%s/%s.db", dir, name);
    start(p);
}

static void stop(party *p) {
    pl_wc_client_close(p->c, 0, on_closed);
    assert_false(p->closed);
    pl_driver_run(D);
    assert_true(p->closed);
    pl_transport_close(p->tp, 0, NULL, NULL);
    pl_driver_run(D);
    p->c = NULL;
    p->tp = NULL;
}

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/pl-wcclient-XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(pl_driver_new_virtual(&D, T0), PL_OK);
    pl_loopback_config lc = {.mailbox = true};
    assert_int_equal(pl_loopback_hub_new(&H, D, &lc), PL_OK);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    pl_driver_run(D);
    pl_loopback_hub_free(H);
    pl_driver_free(D);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void test_pair_request_restart(void **state) {
    (void)state;
    party a, b;
    init(&a, "dapp");
    init(&b, "wallet");
    pl_driver_run(D);
    assert_int_equal(a.state, PL_TRANSPORT_CONNECTED);
    pl_wc_engine *ea = pl_wc_client_engine(a.c), *eb = pl_wc_client_engine(b.c);
    const char *methods[] = {"test_sign"};
    char *uri = NULL, topic[PL_TOPIC_HEX_SIZE];
    assert_int_equal(pl_wc_create(ea, methods, 1, pl_wc_client_now(a.c), &uri, topic), PL_OK);
    assert_int_equal(pl_wc_pair(eb, uri, strlen(uri), pl_wc_client_now(b.c), NULL), PL_OK);
    pl_free_secret(uri, strlen(uri));
    assert_int_equal(pl_wc_request(ea, topic, "test_sign", "{}", pl_wc_client_now(a.c), NULL),
                     PL_OK);
    pl_driver_advance(D, 10);
    assert_int_equal(b.requests, 1);
    assert_int_equal(a.responses, 1);
    assert_int_equal(a.res_err, PL_OK);
    assert_int_equal(a.ev[PL_WC_EV_ACTIVATED], 1);

    /* a restart: the pairing comes back from the store and still works */
    stop(&a);
    start(&a);
    assert_int_equal(pl_wc_client_restored(a.c), 1);
    ea = pl_wc_client_engine(a.c);
    assert_int_equal(pl_wc_ping(ea, topic, pl_wc_client_now(a.c), NULL), PL_OK);
    pl_driver_advance(D, 10);
    assert_int_equal(a.ev[PL_WC_EV_PONG], 1);

    /* a topic that is not a pairing goes to on_other_message */
    const char *other = "/app/1/chat/proto";
    assert_int_equal(pl_transport_subscribe(pl_wc_client_transport(b.c), other), PL_OK);
    pl_driver_run(D);
    assert_int_equal(pl_transport_publish(a.tp, other, (const uint8_t *)"hi", 2, NULL), PL_OK);
    pl_driver_run(D);
    assert_int_equal(b.others, 1);
    assert_string_equal(b.other, "hi");
    /* an undecodable arrival there is not passed on; on the pairing topic it
     * is a bad message */
    pl_delivery_info bad = {.err = PL_ERR_BAD_BASE64};
    assert_int_equal(pl_loopback_hub_inject(H, other, NULL, 0, &bad), PL_OK);
    assert_int_equal(pl_loopback_hub_inject(H, topic, NULL, 0, &bad), PL_OK);
    pl_driver_run(D);
    assert_int_equal(b.others, 1);
    assert_int_equal(b.ev[PL_WC_EV_BAD_MESSAGE], 1);
    assert_int_equal(b.last.err, PL_ERR_BAD_BASE64);

    /* the wallet goes quiet: the dapp's request times out by the driver's
     * clock, exactly at its ttl */
    pl_loopback_set_deaf(b.tp, true);
    int64_t sent = pl_wc_client_now(a.c);
    assert_int_equal(pl_wc_request(ea, topic, "test_sign", "{}", sent, NULL), PL_OK);
    pl_driver_advance(D, 299999);
    assert_int_equal(a.ev[PL_WC_EV_REQUEST_TIMEOUT], 0);
    pl_driver_advance(D, 1);
    assert_int_equal(a.ev[PL_WC_EV_REQUEST_TIMEOUT], 1);
    assert_int_equal(a.res_err, PL_ERR_TIMEOUT);
    pl_loopback_set_deaf(b.tp, false);

    /* an inactive pairing nobody answers expires after 5 minutes */
    char *uri2 = NULL, t2[PL_TOPIC_HEX_SIZE];
    assert_int_equal(pl_wc_create(ea, NULL, 0, pl_wc_client_now(a.c), &uri2, t2), PL_OK);
    pl_free_secret(uri2, strlen(uri2));
    pl_driver_advance(D, 300000);
    assert_int_equal(a.ev[PL_WC_EV_EXPIRED], 1);
    assert_string_equal(a.topic, t2); /* ev->topic lives only during the callback */

    /* the transport's state reaches the application */
    int states = a.states;
    pl_loopback_set_online(a.tp, false);
    pl_driver_run(D);
    assert_int_equal(a.states, states + 1);
    assert_int_equal(a.state, PL_TRANSPORT_RECONNECTING);
    pl_loopback_set_online(a.tp, true);
    pl_driver_run(D);
    stop(&a);
    stop(&b);
}

/* Group commit: a client writes a loop turn's store changes in one
 * transaction, and holds what it sends until that commits. So whatever a
 * message depends on is committed when the peer gets it: the request's
 * pending row when the wallet gets the request, the handled id when the dapp
 * gets the answer. Five requests in one turn, then their answers. */
static void test_group_commit_before_send(void **state) {
    (void)state;
    party a, b;
    init(&a, "dapp");
    init(&b, "wallet");
    a.peer_store = b.store;
    b.peer_store = a.store;
    pl_driver_run(D);
    pl_wc_engine *ea = pl_wc_client_engine(a.c), *eb = pl_wc_client_engine(b.c);
    const char *methods[] = {"test_sign"};
    char *uri = NULL, topic[PL_TOPIC_HEX_SIZE];
    assert_int_equal(pl_wc_create(ea, methods, 1, pl_wc_client_now(a.c), &uri, topic), PL_OK);
    /* a pairing is committed when the call returns */
    assert_int_equal(committed_rows(a.store, "wc_pairing"), 1);
    assert_int_equal(pl_wc_pair(eb, uri, strlen(uri), pl_wc_client_now(b.c), NULL), PL_OK);
    pl_free_secret(uri, strlen(uri));
    pl_driver_advance(D, 10);
    for (int i = 0; i < 5; i++)
        assert_int_equal(pl_wc_request(ea, topic, "test_sign", "{}", pl_wc_client_now(a.c), NULL),
                         PL_OK);
    /* not committed yet: the turn has not ended, and nothing has left */
    assert_int_equal(committed_rows(a.store, "wc_pending"), 0);
    pl_driver_advance(D, 10);
    assert_int_equal(b.requests, 5);
    assert_int_equal(a.responses, 5);
    /* at each request the wallet got, all five were committed at the dapp
     * (one transaction); at each answer, the wallet's handled ids were */
    assert_int_equal(b.checks, 5);
    assert_int_equal(b.peer_pending, 5);
    assert_int_equal(a.checks, 5);
    assert_true(a.peer_seen >= 1);
    pl_driver_run(D);
    assert_int_equal(committed_rows(a.store, "wc_pending"), 0);
    assert_int_equal(committed_rows(b.store, "wc_seen"), 5);
    stop(&a);
    stop(&b);
}

static void tap(void *ud, const char *endpoint, const char *topic, const uint8_t *data, size_t len,
                const pl_publish_opts *opts) {
    (void)ud, (void)topic, (void)data, (void)len, (void)opts;
    if (!strcmp(endpoint, "dapp")) dapp_publishes++;
}

/* The proposer activates on the peer's first request (a ping): the pong is
 * on the transport before ACTIVATED is reported, so that a process that
 * stops there (wc create --until-active) does not lose it. */
static void test_activated_after_answer(void **state) {
    (void)state;
    party a, b;
    dapp_publishes = 0;
    pl_loopback_hub_set_tap(H, tap, NULL);
    init(&a, "dapp");
    init(&b, "wallet");
    pl_driver_run(D);
    char *uri = NULL, topic[PL_TOPIC_HEX_SIZE];
    assert_int_equal(
        pl_wc_create(pl_wc_client_engine(a.c), NULL, 0, pl_wc_client_now(a.c), &uri, topic), PL_OK);
    assert_int_equal(
        pl_wc_pair(pl_wc_client_engine(b.c), uri, strlen(uri), pl_wc_client_now(b.c), NULL), PL_OK);
    pl_free_secret(uri, strlen(uri));
    pl_driver_run(D);
    assert_int_equal(dapp_publishes, 0);
    assert_int_equal(pl_wc_ping(pl_wc_client_engine(b.c), topic, pl_wc_client_now(b.c), NULL),
                     PL_OK);
    pl_driver_advance(D, 10);
    assert_int_equal(a.ev[PL_WC_EV_ACTIVATED], 1);
    assert_int_equal(a.ev[PL_WC_EV_PING], 1);
    assert_int_equal(a.published_at_activation, 1); /* the pong went first */
    assert_int_equal(b.ev[PL_WC_EV_PONG], 1);
    /* seconds later the wallet deletes: the delivery would renew the
     * pairing, but no RENEWED is reported for a pairing the message removed */
    pl_driver_advance(D, 2000);
    int renewed = a.ev[PL_WC_EV_RENEWED];
    assert_int_equal(pl_wc_delete(pl_wc_client_engine(b.c), topic, pl_wc_client_now(b.c)), PL_OK);
    pl_driver_advance(D, 10);
    assert_int_equal(a.ev[PL_WC_EV_DELETED], 1);
    assert_int_equal(a.ev[PL_WC_EV_RENEWED], renewed);
    pl_loopback_hub_set_tap(H, NULL, NULL);
    stop(&a);
    stop(&b);
}

static void test_start_errors(void **state) {
    (void)state;
    party p;
    memset(&p, 0, sizeof p);
    p.name = "x";
    assert_int_equal(pl_loopback_new(&p.tp, H, "x", NULL), PL_OK);
    pl_wc_client *c = (pl_wc_client *)&p;
    pl_wc_client_opts o = {
        .store_path = "/nonexistent-dir/x.db", .transport = p.tp, .driver = D, .ud = &p};
    assert_int_not_equal(pl_wc_client_new(&c, NULL, &o), PL_OK);
    assert_null(c);
    /* a bad relay URL with a driver of its own on a loop: nothing is left on
     * the loop (uv_loop_close succeeds at once) */
    uv_loop_t loop;
    uv_loop_init(&loop);
    char store[128];
    snprintf(store, sizeof store, "%s/y.db", dir);
    pl_wc_client_opts o2 = {.store_path = store, .relay_url = "http://nope", .ud = &p};
    assert_int_equal(pl_wc_client_new(&c, &loop, &o2), PL_ERR_BAD_URL);
    assert_null(c);
    assert_int_equal(uv_loop_close(&loop), 0);
    /* a store that fails to load once the relay client exists: that client
     * is closed from the loop, and then nothing is left on it */
    uv_loop_init(&loop);
    pl_store *st;
    assert_int_equal(pl_store_open(&st, store), PL_OK);
    assert_int_equal(pl_store_put(st, "x", (const uint8_t *)"x", 1), PL_OK);
    pl_store_close(st);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(store, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "DROP TABLE wc_seen; CREATE VIEW wc_seen AS SELECT 1 AS until_ms;", NULL,
                     NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    o2.relay_url = "ws://127.0.0.1:1";
    assert_int_equal(pl_wc_client_new(&c, &loop, &o2), PL_ERR_STORE);
    assert_null(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    pl_transport_close(p.tp, 0, NULL, NULL);
    pl_driver_run(D);
}

/* ---- over a socket ---- */

typedef struct relay_proc {
    pid_t pid;
    char url[128];
} relay_proc;

static pid_t relay_pid;

static int kill_relay(void **state) {
    (void)state;
    if (relay_pid > 0) {
        kill(relay_pid, SIGKILL);
        waitpid(relay_pid, NULL, 0);
        relay_pid = 0;
    }
    return 0;
}

static void relay_start(relay_proc *rp) {
    int out[2];
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    char cli[1024];
    snprintf(cli, sizeof cli, "%s/pairlink", PL_BINARY_DIR);
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        dup2(out[1], 1);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) dup2(devnull, 2);
        execl(cli, cli, "relay", "--listen", "127.0.0.1:0", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    relay_pid = rp->pid = pid;
    char buf[512];
    size_t len = 0;
    for (int waited = 0; waited < 10000;) {
        struct pollfd pfd = {out[0], POLLIN, 0};
        if (poll(&pfd, 1, 100) <= 0) {
            waited += 100;
            continue;
        }
        ssize_t r = read(out[0], buf + len, sizeof buf - 1 - len);
        if (r <= 0) break;
        len += (size_t)r;
        buf[len] = 0;
        char *l = strstr(buf, "listening on ");
        if (l && strchr(l, '\n')) {
            *strchr(l, '\n') = 0;
            snprintf(rp->url, sizeof rp->url, "%s", l + strlen("listening on "));
            close(out[0]);
            return;
        }
    }
    fail_msg("pairlink relay did not start");
}

static void tick_cb(uv_timer_t *t) {
    (void)t;
}

static bool run_until(uv_loop_t *loop, bool *flag, int *counter, int want, uint64_t timeout_ms) {
    uv_timer_t guard;
    uv_timer_init(loop, &guard);
    uv_timer_start(&guard, tick_cb, 10, 10);
    uint64_t end = uv_now(loop) + timeout_ms;
    while (!(flag ? *flag : *counter >= want) && uv_now(loop) < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return flag ? *flag : *counter >= want;
}

static void test_over_relay_with_flush(void **state) {
    (void)state;
    lws_set_log_level(0, NULL);
    relay_proc rp;
    relay_start(&rp);
    uv_loop_t loop;
    uv_loop_init(&loop);
    party a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.name = "a";
    b.name = "b";
    snprintf(a.store, sizeof a.store, "%s/ra.db", dir);
    snprintf(b.store, sizeof b.store, "%s/rb.db", dir);
    pl_wc_client_opts oa = {.relay_url = rp.url,
                            .store_path = a.store,
                            .on_event = on_event,
                            .on_transport_state = on_state,
                            .ud = &a};
    pl_wc_client_opts ob = oa;
    ob.store_path = b.store;
    ob.ud = &b;
    assert_int_equal(pl_wc_client_new(&a.c, &loop, &oa), PL_OK);
    assert_int_equal(pl_wc_client_new(&b.c, &loop, &ob), PL_OK);
    assert_true(pl_relay_client_is(pl_wc_client_transport(a.c)));
    assert_true(run_until(&loop, NULL, &a.states, 1, 5000));
    assert_int_equal(a.state, PL_TRANSPORT_CONNECTED);
    pl_wc_engine *ea = pl_wc_client_engine(a.c), *eb = pl_wc_client_engine(b.c);
    b.peer_store = a.store; /* the relay client holds, too */
    char *uri = NULL, topic[PL_TOPIC_HEX_SIZE];
    assert_int_equal(pl_wc_create(ea, NULL, 0, pl_wc_client_now(a.c), &uri, topic), PL_OK);
    assert_int_equal(pl_wc_pair(eb, uri, strlen(uri), pl_wc_client_now(b.c), NULL), PL_OK);
    pl_free_secret(uri, strlen(uri));
    assert_int_equal(pl_wc_ping(ea, topic, pl_wc_client_now(a.c), NULL), PL_OK);
    assert_true(run_until(&loop, NULL, &a.ev[PL_WC_EV_PONG], 1, 10000));
    assert_int_equal(b.checks, 1);
    assert_int_equal(b.peer_pending, 1); /* the ping's row, committed before it left */
    /* the last message out, then close at once with a flush: the delete
     * reaches the wallet although the dapp is gone */
    assert_int_equal(pl_wc_delete(ea, topic, pl_wc_client_now(a.c)), PL_OK);
    assert_true(pl_transport_pending(pl_wc_client_transport(a.c)) > 0);
    pl_wc_client_close(a.c, 5000, on_closed);
    assert_true(run_until(&loop, &a.closed, NULL, 0, 10000));
    assert_true(run_until(&loop, NULL, &b.ev[PL_WC_EV_DELETED], 1, 10000));
    assert_true(b.last.by_peer);

    /* a new proposer that closes (with a flush) from its ACTIVATED event,
     * as `wc create --until-active` does: the wallet's ping still gets its
     * pong */
    party a2;
    memset(&a2, 0, sizeof a2);
    a2.name = "a2";
    a2.close_on_activated = true;
    snprintf(a2.store, sizeof a2.store, "%s/ra2.db", dir);
    oa.store_path = a2.store;
    oa.ud = &a2;
    assert_int_equal(pl_wc_client_new(&a2.c, &loop, &oa), PL_OK);
    assert_true(run_until(&loop, NULL, &a2.states, 1, 5000));
    assert_int_equal(
        pl_wc_create(pl_wc_client_engine(a2.c), NULL, 0, pl_wc_client_now(a2.c), &uri, topic),
        PL_OK);
    assert_int_equal(pl_wc_pair(eb, uri, strlen(uri), pl_wc_client_now(b.c), NULL), PL_OK);
    pl_free_secret(uri, strlen(uri));
    int pongs = b.ev[PL_WC_EV_PONG];
    assert_int_equal(pl_wc_ping(eb, topic, pl_wc_client_now(b.c), NULL), PL_OK);
    assert_true(run_until(&loop, &a2.closed, NULL, 0, 10000));
    assert_int_equal(a2.ev[PL_WC_EV_ACTIVATED], 1);
    assert_true(run_until(&loop, NULL, &b.ev[PL_WC_EV_PONG], pongs + 1, 10000));
    pl_wc_client_close(b.c, 0, on_closed);
    assert_true(run_until(&loop, &b.closed, NULL, 0, 10000));
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&loop), 0);
    kill_relay(NULL);
}

int main(void) {
    if (pl_init() != PL_OK) return 1;
    signal(SIGPIPE, SIG_IGN);
    lws_set_log_level(0, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pair_request_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_before_send, setup, teardown),
        cmocka_unit_test_setup_teardown(test_activated_after_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_over_relay_with_flush, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    kill_relay(NULL);
    return rc;
}
