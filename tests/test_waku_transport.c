/* SPDX-License-Identifier: Apache-2.0 */
/* The Waku relay transport (include/pairlink/waku_transport.h) over real
 * Waku nodes on loopback sockets, all on one uv loop bounded by timers:
 * the mapping of publish options and deliveries (version, meta, ephemeral,
 * timestamp, hash) across a relay hop, idempotent subscriptions, refused
 * topics and payloads, the states (CONNECTING, CONNECTED, RECONNECTING
 * when the only peer goes, CONNECTED when it comes back), flush-then-close
 * of a message queued while no peer was subscribed, a wrapped node whose
 * callbacks are chained and given back, and the identity key file. Every
 * handle is closed at the end of each test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "pairlink/driver.h"
#include "pairlink/nm_node.h"
#include "pairlink/relay_client.h"
#include "pairlink/waku.h"
#include "pairlink/waku_node.h"
#include "pairlink/waku_transport.h"
#include "support/support.h"

#define CT "/pairlink/1/transport-test/proto"
#define CT2 "/pairlink/1/other/proto"
#define TOPIC "/waku/2/rs/16/64"
#define MAXGOT 32

static bool verbose;
static uv_loop_t loop;
static pl_driver *drv;
/* Set by a test that ran to its end: a test that failed half-way leaves
 * handles on the loop, which the teardown then does not try to close (so
 * that cmocka reports the failure instead of an abort). */
static bool finished;

static void on_log(void *ud, const char *line) {
    if (verbose) fprintf(stderr, "[%s] %s\n", (const char *)ud, line);
}

/* ---- what a transport's handler saw ---- */

typedef struct got {
    char topic[128];
    uint8_t data[64];
    size_t len;
    int64_t published_at_ms;
    bool has_ext;
    uint32_t version;
    bool ephemeral;
    uint8_t meta[PL_WAKU_META_MAX];
    size_t meta_len;
    int64_t timestamp_ns;
    char pubsub[PL_WAKU_PUBSUB_TOPIC_SIZE];
    bool hash_ok;
} got;

typedef struct side {
    const char *name;
    pl_transport *t;
    got got[MAXGOT];
    int ngot;
    int states;
    pl_transport_state state;
    pl_err state_err;
    bool closed;
    int pub_errors;
    char pub_error_topic[PL_TRANSPORT_TOPIC_MAX + 1];
    pl_err pub_error;
} side;

static void on_message(void *ud, pl_transport *t, const char *topic, const uint8_t *data,
                       size_t len, const pl_delivery_info *info) {
    side *s = ud;
    assert_ptr_equal(t, s->t);
    assert_true(s->ngot < MAXGOT);
    got *g = &s->got[s->ngot++];
    memset(g, 0, sizeof *g);
    assert_int_equal(info->err, PL_OK);
    snprintf(g->topic, sizeof g->topic, "%s", topic);
    assert_true(len <= sizeof g->data);
    memcpy(g->data, data, len);
    g->len = len;
    g->published_at_ms = info->published_at_ms;
    if (info->ext && info->ext->kind == PL_TRANSPORT_EXT_WAKU) {
        const pl_waku_delivery_ext *x = (const pl_waku_delivery_ext *)(const void *)info->ext;
        g->has_ext = true;
        g->version = x->version;
        g->ephemeral = x->ephemeral;
        g->meta_len = x->meta_len;
        if (x->meta_len) memcpy(g->meta, x->meta, x->meta_len);
        g->timestamp_ns = x->timestamp_ns;
        snprintf(g->pubsub, sizeof g->pubsub, "%s", x->pubsub_topic);
        /* the hash is the 14/WAKU2-MESSAGE one of what came */
        pl_waku_message m = {.payload = data,
                             .payload_len = len,
                             .has_payload = true,
                             .content_topic = topic,
                             .content_topic_len = strlen(topic),
                             .version = x->version,
                             .timestamp = x->timestamp_ns,
                             .meta = x->meta,
                             .meta_len = x->meta_len,
                             .ephemeral = x->ephemeral};
        uint8_t h[PL_WAKU_HASH_BYTES];
        pl_waku_message_hash(h, x->pubsub_topic, &m);
        g->hash_ok = !memcmp(h, x->hash, sizeof h) && x->from && x->from->len > 0;
    }
}

static void on_state(void *ud, pl_transport *t, pl_transport_state st, pl_err err) {
    side *s = ud;
    assert_ptr_equal(t, s->t);
    s->states++;
    s->state = st;
    s->state_err = err;
}

static void on_pub_error(void *ud, pl_transport *t, const char *topic, pl_err err,
                         int64_t code) {
    side *s = ud;
    assert_ptr_equal(t, s->t);
    assert_int_equal(code, 0);
    s->pub_errors++;
    snprintf(s->pub_error_topic, sizeof s->pub_error_topic, "%s", topic);
    s->pub_error = err;
}

static void on_closed(void *ud) {
    ((side *)ud)->closed = true;
}

/* ---- the loop ---- */

typedef bool (*cond_fn)(void *);
typedef struct waiter {
    cond_fn cond;
    void *arg;
} waiter;

static void on_check(uv_timer_t *t) {
    waiter *w = t->data;
    if (w->cond && w->cond(w->arg)) uv_stop(t->loop);
}

static void on_deadline(uv_timer_t *t) {
    uv_stop(t->loop);
}

/* Run until cond holds (checked every 2 ms), at most ms. */
static bool run_until(cond_fn cond, void *arg, uint64_t ms) {
    waiter w = {cond, arg};
    uv_timer_t poll, tm;
    uv_timer_init(&loop, &poll);
    uv_timer_init(&loop, &tm);
    poll.data = tm.data = &w;
    uv_timer_start(&poll, on_check, 2, 2);
    uv_timer_start(&tm, on_deadline, ms, 0);
    if (!cond || !cond(arg)) uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&poll, NULL);
    uv_close((uv_handle_t *)&tm, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return !cond || cond(arg);
}

static void run_for(uint64_t ms) {
    (void)run_until(NULL, NULL, ms);
}

static bool is_connected(void *arg) {
    return ((side *)arg)->state == PL_TRANSPORT_CONNECTED;
}

static bool is_reconnecting(void *arg) {
    return ((side *)arg)->state == PL_TRANSPORT_RECONNECTING;
}

static bool is_closed(void *arg) {
    return ((side *)arg)->closed;
}

typedef struct count_want {
    side *s;
    int n;
} count_want;

static bool has_n(void *arg) {
    count_want *c = arg;
    return c->s->ngot >= c->n;
}

static bool mesh_of(void *arg) {
    return pl_waku_node_mesh_size(arg, TOPIC) >= 1;
}

static int setup(void **state) {
    (void)state;
    verbose = getenv("PL_TEST_VERBOSE") != NULL;
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    assert_int_equal(pl_driver_new(&drv, &loop), PL_OK);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    if (!finished) return -1;
    finished = false;
    pl_driver_close(drv, NULL, NULL);
    drv = NULL;
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

/* ---- nodes and transports ---- */

/* A plain relay node (the hop), listening on listen (NULL: any port). */
static pl_waku_node *hop_start(const char *listen, const pl_p2p_key *key, char addr[1200]) {
    pl_waku_node_opts o;
    pl_waku_node_opts_init(&o);
    o.key = key;
    o.on_log = on_log;
    o.log_ud = (void *)"hop";
    pl_waku_node *n = NULL;
    assert_int_equal(pl_waku_node_new(&n, drv, &o), PL_OK);
    assert_int_equal(pl_waku_node_listen(n, listen ? listen : "/ip4/127.0.0.1/tcp/0"), PL_OK);
    assert_int_equal(pl_waku_node_listen_addr(n, 0, addr, 1200), 1);
    return n;
}

static bool flag_set(void *arg) {
    return *(bool *)arg;
}

static void on_flag(void *ud) {
    *(bool *)ud = true;
}

static void hop_stop(pl_waku_node *n) {
    bool closed = false;
    pl_waku_node_close(n, on_flag, &closed);
    assert_true(run_until(flag_set, &closed, 10000));
}

static void side_start_ttl(side *s, const char *name, const char *peer, int64_t publish_ttl_ms) {
    memset(s, 0, sizeof *s);
    s->name = name;
    pl_waku_transport_opts o;
    pl_waku_transport_opts_init(&o);
    const char *peers[1] = {peer};
    o.node.peers = peers;
    o.node.n_peers = peer ? 1 : 0;
    o.node.on_log = on_log;
    o.node.log_ud = (void *)name;
    o.node.publish_ttl_ms = publish_ttl_ms;
    o.handler = (pl_transport_handler){
        .on_message = on_message, .on_state = on_state, .ud = s, .on_publish_error = on_pub_error};
    assert_int_equal(pl_waku_transport_new(&s->t, drv, &o), PL_OK);
    assert_true(pl_waku_transport_is(s->t));
    assert_string_equal(pl_transport_name(s->t), "waku");
    assert_ptr_equal(pl_transport_driver(s->t), drv);
    pl_err e = PL_ERR_INTERNAL;
    assert_int_equal(pl_transport_get_state(s->t, &e), PL_TRANSPORT_CONNECTING);
    assert_int_equal(e, PL_OK);
    s->state = PL_TRANSPORT_CONNECTING;
}

static void side_start(side *s, const char *name, const char *peer) {
    side_start_ttl(s, name, peer, 0);
}

static void side_stop(side *s, int64_t flush_ms) {
    pl_transport_close(s->t, flush_ms, on_closed, s);
    assert_false(s->closed); /* never inside the call */
    assert_true(run_until(is_closed, s, 15000));
    s->t = NULL;
}

static const got *find(const side *s, const char *payload) {
    for (int i = 0; i < s->ngot; i++)
        if (s->got[i].len == strlen(payload) && !memcmp(s->got[i].data, payload, s->got[i].len))
            return &s->got[i];
    return NULL;
}

typedef struct payload_want {
    side *s;
    const char *payload;
} payload_want;

static bool has_payload(void *arg) {
    payload_want *p = arg;
    return find(p->s, p->payload) != NULL;
}

/* The port of "/ip4/127.0.0.1/tcp/PORT/p2p/ID", as a listen address. */
static void listen_of(char out[64], const char *addr) {
    int port = 0;
    assert_int_equal(sscanf(addr, "/ip4/127.0.0.1/tcp/%d/", &port), 1);
    snprintf(out, 64, "/ip4/127.0.0.1/tcp/%d", port);
}

/* ---- publish options and deliveries across a relay hop ---- */

static void test_publish_and_deliver(void **state) {
    (void)state;
    char haddr[1200];
    pl_waku_node *hop = hop_start(NULL, NULL, haddr);
    side a, b;
    side_start(&a, "A", haddr);
    side_start(&b, "B", haddr);
    assert_true(run_until(is_connected, &a, 10000));
    assert_true(run_until(is_connected, &b, 10000));
    assert_int_equal(a.states, 1);
    assert_int_equal(a.state_err, PL_OK);

    assert_int_equal(pl_transport_subscribe(a.t, CT), PL_OK);
    assert_int_equal(pl_transport_subscribe(a.t, CT), PL_OK); /* idempotent */
    assert_int_equal(pl_transport_subscribe(a.t, "not-a-content-topic"), PL_ERR_WAKU_TOPIC);
    assert_int_equal(pl_transport_subscribe(a.t, "no spaces allowed"), PL_ERR_INVALID_ARG);
    assert_true(run_until(mesh_of, pl_waku_transport_node(a.t), 10000));
    assert_true(run_until(mesh_of, pl_waku_transport_node(b.t), 10000));

    static const uint8_t meta[] = {0xde, 0xad, 0x01};
    pl_waku_publish_ext x = {
        .ext = {PL_TRANSPORT_EXT_WAKU}, .version = 2, .meta = meta, .meta_len = sizeof meta};
    pl_publish_opts po = {.ttl_s = 300, .ephemeral = true, .ext = &x.ext};
    int64_t t0 = pl_wall_clock_ms();
    assert_int_equal(pl_transport_publish(b.t, CT, (const uint8_t *)"one", 3, &po), PL_OK);
    /* another transport's extension is not ours: version 0, no meta */
    pl_wc_relay_publish_ext wx = {.ext = {PL_TRANSPORT_EXT_WC_RELAY}, .tag = 1108, .prompt = true};
    pl_publish_opts po2 = {.ttl_s = 60, .ext = &wx.ext};
    assert_int_equal(pl_transport_publish(b.t, CT, (const uint8_t *)"two", 3, &po2), PL_OK);
    pl_waku_publish_ext x1 = {.ext = {PL_TRANSPORT_EXT_WAKU}, .version = 1};
    pl_publish_opts po3 = {.ext = &x1.ext};
    assert_int_equal(pl_transport_publish(b.t, CT, (const uint8_t *)"three", 5, &po3), PL_OK);
    /* a content topic A does not subscribe to */
    assert_int_equal(pl_transport_publish(b.t, CT2, (const uint8_t *)"other", 5, NULL), PL_OK);
    /* refused, nothing sent */
    assert_int_equal(pl_transport_publish(b.t, CT, NULL, 0, NULL), PL_ERR_WAKU_MESSAGE);
    assert_int_equal(pl_transport_publish(b.t, "bad", (const uint8_t *)"x", 1, NULL),
                     PL_ERR_WAKU_TOPIC);
    uint8_t big_meta[PL_WAKU_META_MAX + 1] = {0};
    pl_waku_publish_ext xm = {
        .ext = {PL_TRANSPORT_EXT_WAKU}, .meta = big_meta, .meta_len = sizeof big_meta};
    pl_publish_opts pom = {.ext = &xm.ext};
    assert_int_equal(pl_transport_publish(b.t, CT, (const uint8_t *)"x", 1, &pom),
                     PL_ERR_WAKU_MESSAGE);

    count_want w = {&a, 3};
    assert_true(run_until(has_n, &w, 10000));
    run_for(300); /* a repeat or the other topic would show now */
    assert_int_equal(a.ngot, 3);
    assert_int_equal(b.ngot, 0);
    int64_t t1 = pl_wall_clock_ms();
    const got *g = find(&a, "one");
    assert_non_null(g);
    assert_string_equal(g->topic, CT);
    assert_true(g->has_ext && g->hash_ok);
    assert_int_equal(g->version, 2);
    assert_true(g->ephemeral);
    assert_int_equal(g->meta_len, sizeof meta);
    assert_memory_equal(g->meta, meta, sizeof meta);
    assert_string_equal(g->pubsub, TOPIC);
    assert_int_equal(g->published_at_ms, g->timestamp_ns / 1000000);
    assert_true(g->published_at_ms >= t0 - 1000 && g->published_at_ms <= t1 + 1000);
    g = find(&a, "two");
    assert_non_null(g);
    assert_true(g->has_ext && g->hash_ok);
    assert_int_equal(g->version, 0);
    assert_false(g->ephemeral);
    assert_int_equal(g->meta_len, 0);
    g = find(&a, "three");
    assert_non_null(g);
    assert_int_equal(g->version, 1);
    assert_false(g->ephemeral);

    /* unsubscribed: nothing more on CT (idempotent), while CT2 flows */
    assert_int_equal(pl_transport_unsubscribe(a.t, CT), PL_OK);
    assert_int_equal(pl_transport_unsubscribe(a.t, CT), PL_OK);
    assert_int_equal(pl_transport_subscribe(a.t, CT2), PL_OK);
    run_for(100);
    assert_int_equal(pl_transport_publish(b.t, CT, (const uint8_t *)"four", 4, NULL), PL_OK);
    assert_int_equal(pl_transport_publish(b.t, CT2, (const uint8_t *)"five", 4, NULL), PL_OK);
    payload_want pw = {&a, "five"};
    assert_true(run_until(has_payload, &pw, 10000));
    run_for(200);
    assert_null(find(&a, "four"));
    assert_string_equal(find(&a, "five")->topic, CT2);
    assert_int_equal(pl_transport_pending(b.t), 0);

    side_stop(&a, 0);
    side_stop(&b, 2000);
    /* closed: the operations refuse */
    hop_stop(hop);
    finished = true;
}

/* ---- states: the only peer goes and comes back ---- */

typedef struct states_want {
    side *s;
    int n;
} states_want;

static bool more_states(void *arg) {
    states_want *w = arg;
    return w->s->states >= w->n;
}

static void test_states(void **state) {
    (void)state;
    pl_p2p_key *hk = NULL;
    assert_int_equal(pl_p2p_key_generate(&hk, PL_P2P_KEY_ED25519), PL_OK);
    char haddr[1200], haddr2[1200], listen[64];
    pl_waku_node *hop = hop_start(NULL, hk, haddr);
    listen_of(listen, haddr);
    side a;
    side_start(&a, "A", haddr);
    assert_true(run_until(is_connected, &a, 10000));
    assert_int_equal(a.states, 1);

    hop_stop(hop);
    assert_true(run_until(is_reconnecting, &a, 10000));
    assert_int_not_equal(a.state_err, PL_OK);
    pl_err e = PL_OK;
    assert_int_equal(pl_transport_get_state(a.t, &e), PL_TRANSPORT_RECONNECTING);
    assert_int_equal(e, a.state_err);
    /* the node redials by itself: each failed dial is reported again */
    states_want sw = {&a, a.states + 1};
    assert_true(run_until(more_states, &sw, 5000));
    assert_int_equal(a.state, PL_TRANSPORT_RECONNECTING);
    /* publishes meanwhile wait */
    assert_int_equal(pl_transport_publish(a.t, CT, (const uint8_t *)"waiting", 7, NULL), PL_OK);
    assert_int_equal(pl_transport_pending(a.t), 1);

    hop = hop_start(listen, hk, haddr2);
    assert_string_equal(haddr, haddr2);
    assert_true(run_until(is_connected, &a, 15000));
    assert_int_equal(a.state_err, PL_OK);
    side_stop(&a, 0);
    hop_stop(hop);
    pl_p2p_key_free(hk);
    finished = true;
}

/* ---- a publish nobody could take is reported, never silence ---- */

static bool has_pub_error(void *arg) {
    return ((side *)arg)->pub_errors > 0;
}

static void test_publish_error(void **state) {
    (void)state;
    side a;
    side_start_ttl(&a, "A", NULL, 200); /* no peer at all: the queue gives up */
    assert_int_equal(pl_transport_publish(a.t, CT, (const uint8_t *)"lost", 4, NULL), PL_OK);
    assert_int_equal(pl_transport_pending(a.t), 1);
    assert_true(run_until(has_pub_error, &a, 5000));
    assert_int_equal(a.pub_errors, 1);
    assert_string_equal(a.pub_error_topic, CT);
    assert_int_equal(a.pub_error, PL_ERR_WAKU_NO_PEERS);
    assert_int_equal(pl_transport_pending(a.t), 0);
    side_stop(&a, 0);
    finished = true;
}

/* ---- flush, then close: a message queued while no peer was there ---- */

static void test_flush_then_close(void **state) {
    (void)state;
    /* A's identity and port, known before A runs */
    pl_p2p_key *ak = NULL;
    assert_int_equal(pl_p2p_key_generate(&ak, PL_P2P_KEY_ED25519), PL_OK);
    char aaddr[1200], listen[64];
    pl_waku_node *tmp = hop_start(NULL, ak, aaddr);
    listen_of(listen, aaddr);
    hop_stop(tmp);

    side b;
    side_start(&b, "B", aaddr);
    assert_int_equal(pl_transport_publish(b.t, CT, (const uint8_t *)"late", 4, NULL), PL_OK);
    assert_int_equal(pl_transport_pending(b.t), 1);
    /* close with a flush: it waits for a subscribed peer */
    pl_transport_close(b.t, 20000, on_closed, &b);
    assert_int_equal(pl_transport_publish(b.t, CT, (const uint8_t *)"no", 2, NULL), PL_ERR_STATE);
    assert_int_equal(pl_transport_subscribe(b.t, CT), PL_ERR_STATE);
    run_for(300);
    assert_false(b.closed);

    side a;
    memset(&a, 0, sizeof a);
    a.name = "A";
    pl_waku_transport_opts o;
    pl_waku_transport_opts_init(&o);
    o.node.key = ak;
    const char *l[1] = {listen};
    o.listen = l;
    o.n_listen = 1;
    o.node.on_log = on_log;
    o.node.log_ud = (void *)"A";
    o.handler = (pl_transport_handler){.on_message = on_message, .on_state = on_state, .ud = &a};
    assert_int_equal(pl_waku_transport_new(&a.t, drv, &o), PL_OK);
    assert_int_equal(pl_transport_subscribe(a.t, CT), PL_OK);
    assert_true(run_until(is_closed, &b, 20000));
    payload_want pw = {&a, "late"};
    assert_true(run_until(has_payload, &pw, 10000));
    assert_int_equal(a.ngot, 1);

    /* flush 0 with something pending: closes anyway */
    side c;
    side_start(&c, "C", "/ip4/127.0.0.1/tcp/9");
    assert_int_equal(pl_transport_publish(c.t, CT, (const uint8_t *)"lost", 4, NULL), PL_OK);
    side_stop(&c, 0);
    side_stop(&a, 0);
    pl_p2p_key_free(ak);
    finished = true;
}

/* ---- a node of the caller's, wrapped ---- */

typedef struct orig {
    int messages, events;
} orig;

static void orig_message(void *ud, pl_waku_node *n, const pl_waku_delivery *d) {
    (void)n, (void)d;
    ((orig *)ud)->messages++;
}

static void orig_event(void *ud, pl_waku_node *n, const pl_waku_event *ev) {
    (void)n, (void)ev;
    ((orig *)ud)->events++;
}

static bool orig_has(void *arg) {
    return ((orig *)arg)->messages >= 2;
}

static void test_wrap(void **state) {
    (void)state;
    char haddr[1200];
    pl_waku_node *hop = hop_start(NULL, NULL, haddr);
    orig og = {0};
    pl_waku_node_opts no;
    pl_waku_node_opts_init(&no);
    const char *peers[1] = {haddr};
    no.peers = peers;
    no.n_peers = 1;
    no.on_message = orig_message;
    no.on_event = orig_event;
    no.ud = &og;
    pl_waku_node *n = NULL;
    assert_int_equal(pl_waku_node_new(&n, drv, &no), PL_OK);
    assert_ptr_equal(pl_waku_node_driver(n), drv);
    while (pl_waku_node_peer_count(n) == 0 && og.events < 50)
        run_for(20);
    assert_true(pl_waku_node_peer_count(n) > 0);

    side a;
    memset(&a, 0, sizeof a);
    a.name = "A";
    pl_transport_handler h = {.on_message = on_message, .on_state = on_state, .ud = &a};
    assert_int_equal(pl_waku_transport_wrap(&a.t, n, &h), PL_OK);
    assert_ptr_equal(pl_waku_transport_node(a.t), n);
    /* already connected: reported from the driver, not inside wrap */
    assert_int_equal(a.states, 0);
    assert_int_equal(pl_transport_get_state(a.t, NULL), PL_TRANSPORT_CONNECTED);
    run_for(50);
    assert_int_equal(a.states, 1);
    assert_int_equal(a.state, PL_TRANSPORT_CONNECTED);
    assert_int_equal(pl_transport_subscribe(a.t, CT), PL_OK);

    side b;
    side_start(&b, "B", haddr);
    assert_true(run_until(is_connected, &b, 10000));
    assert_true(run_until(mesh_of, pl_waku_transport_node(b.t), 10000));
    assert_true(run_until(mesh_of, n, 10000));
    int events = og.events;
    assert_int_equal(pl_transport_publish(b.t, CT, (const uint8_t *)"both", 4, NULL), PL_OK);
    payload_want pw = {&a, "both"};
    assert_true(run_until(has_payload, &pw, 10000));
    assert_int_equal(og.messages, 1); /* the node's own callback too */
    assert_true(og.events >= events);

    /* the transport goes; the node keeps running with its callbacks */
    side_stop(&a, 1000);
    pl_waku_message_cb m;
    pl_waku_event_cb e;
    void *ud;
    pl_waku_node_get_callbacks(n, &m, &e, &ud);
    assert_ptr_equal(m, orig_message);
    assert_ptr_equal(e, orig_event);
    assert_ptr_equal(ud, &og);
    assert_int_equal(pl_transport_publish(b.t, CT, (const uint8_t *)"after", 5, NULL), PL_OK);
    assert_true(run_until(orig_has, &og, 10000));

    /* wrapped again, then the node closes under a closed transport */
    a.closed = false;
    assert_int_equal(pl_waku_transport_wrap(&a.t, n, NULL), PL_OK);
    side_stop(&a, 0);
    bool closed = false;
    pl_waku_node_close(n, on_flag, &closed);
    assert_true(run_until(flag_set, &closed, 10000));
    side_stop(&b, 0);
    hop_stop(hop);
    finished = true;
}

/* ---- the identity key file ---- */

static void test_key_file(void **state) {
    (void)state;
    char dir[64], path[128];
    snprintf(dir, sizeof dir, "/tmp/pl-wakutp-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/id.p2p.key", dir);
    pl_p2p_peer_id ids[2];
    for (int i = 0; i < 2; i++) {
        side s;
        memset(&s, 0, sizeof s);
        pl_waku_transport_opts o;
        pl_waku_transport_opts_init(&o);
        o.key_file = path;
        assert_int_equal(pl_waku_transport_new(&s.t, drv, &o), PL_OK);
        pl_waku_node_peer_id(pl_waku_transport_node(s.t), &ids[i]);
        side_stop(&s, 0);
    }
    assert_int_equal(ids[0].len, ids[1].len);
    assert_memory_equal(ids[0].bytes, ids[1].bytes, ids[0].len); /* the same identity */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* a key others can read is refused, and nothing is left running */
    assert_int_equal(chmod(path, 0644), 0);
    pl_transport *t = NULL;
    pl_waku_transport_opts o;
    pl_waku_transport_opts_init(&o);
    o.key_file = path;
    assert_int_equal(pl_waku_transport_new(&t, drv, &o), PL_ERR_KEY_FILE);
    assert_null(t);
    /* a listen address that cannot be used */
    const char *l[1] = {"/ip4/127.0.0.1/udp/1"};
    assert_int_equal(chmod(path, 0600), 0);
    o.listen = l;
    o.n_listen = 1;
    assert_int_not_equal(pl_waku_transport_new(&t, drv, &o), PL_OK);
    assert_null(t);
    run_for(100);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    finished = true;
}

/* ---- the node-manager flow over Waku: app - hop - node manager ---- */

typedef struct nmside {
    const char *label;
    pl_nm_role role;
    char store[128];
    const char *hop;
    pl_nm_node *n;
    bool connected, closed;
    int stored, paired, established, responses;
    char code[PL_NM_CODE_TEXT_SIZE];
    char fingerprint[PL_NM_FINGERPRINT_SIZE];
    uint8_t peer[PL_NM_KEY_BYTES];
    char body[64];
} nmside;

static const pl_nm_kdf_params light = {.opslimit = 1, .memlimit = 8192};

static void nm_event(void *ud, pl_nm_node *n, const pl_nm_node_event *ev) {
    nmside *s = ud;
    if (verbose)
        fprintf(stderr, "[%s] event %d reason %d err %s\n", s->label, ev->kind, ev->reason,
                pl_errname(ev->err));
    switch (ev->kind) {
    case PL_NM_NODE_TRANSPORT:
        s->connected = ev->transport_state == PL_TRANSPORT_CONNECTED;
        break;
    case PL_NM_NODE_PAIR_CODE:
        snprintf(s->code, sizeof s->code, "%s", ev->code);
        break;
    case PL_NM_NODE_PAIR_STORED:
        s->stored++;
        memcpy(s->peer, ev->peer, PL_NM_KEY_BYTES);
        break;
    case PL_NM_NODE_PAIRED:
        s->paired++;
        snprintf(s->fingerprint, sizeof s->fingerprint, "%s", ev->fingerprint);
        break;
    case PL_NM_NODE_SESSION:
        if (ev->session->event == PL_NM_SEV_ESTABLISHED) s->established++;
        if (ev->session->event == PL_NM_SEV_REQUEST)
            assert_int_equal(
                pl_nm_node_respond(n, ev->peer, ev->session->id, (const uint8_t *)"pong", 4),
                PL_OK);
        if (ev->session->event == PL_NM_SEV_RESPONSE) {
            s->responses++;
            snprintf(s->body, sizeof s->body, "%.*s", (int)ev->session->body_len,
                     (const char *)ev->session->body);
        }
        break;
    default:
        break;
    }
}

static void nm_closed(void *ud) {
    ((nmside *)ud)->closed = true;
}

static void nm_open(nmside *s) {
    pl_waku_transport_opts wo;
    pl_waku_transport_opts_init(&wo);
    const char *peers[1] = {s->hop};
    wo.node.peers = peers;
    wo.node.n_peers = 1;
    wo.node.on_log = on_log;
    wo.node.log_ud = (void *)s->label;
    pl_nm_node_opts o = {.role = s->role,
                         .waku = &wo,
                         .driver = drv,
                         .store_path = s->store,
                         .name = s->label,
                         .sessions = true,
                         .kdf = &light,
                         .on_event = nm_event,
                         .ud = s};
    s->closed = false;
    s->connected = false;
    assert_int_equal(pl_nm_node_new(&s->n, NULL, &o), PL_OK);
    assert_true(pl_waku_transport_is(pl_nm_node_transport(s->n)));
}

static bool nm_is_closed(void *arg) {
    return ((nmside *)arg)->closed;
}

static void nm_close(nmside *s) {
    pl_nm_node_close(s->n, 2000, nm_closed);
    assert_true(run_until(nm_is_closed, s, 10000));
    s->n = NULL;
}

typedef struct two {
    nmside *a, *b;
    int a0, b0;
} two;

static bool both_more(void *arg) {
    two *t = arg;
    return t->a->established > t->a0 && t->b->established > t->b0;
}

static bool both_paired(void *arg) {
    two *t = arg;
    return t->a->paired && t->b->paired;
}

static bool got_response(void *arg) {
    return ((nmside *)arg)->responses > 0;
}

static void test_nm_flow_over_waku(void **state) {
    (void)state;
    char dir[64], haddr[1200];
    snprintf(dir, sizeof dir, "/tmp/pl-wakunm-XXXXXX");
    assert_non_null(mkdtemp(dir));
    pl_waku_node *hop = hop_start(NULL, NULL, haddr);
    nmside app = {.label = "app", .role = PL_NM_ROLE_APP, .hop = haddr};
    nmside nm = {.label = "nm", .role = PL_NM_ROLE_NODE_MANAGER, .hop = haddr};
    snprintf(app.store, sizeof app.store, "%s/app.db", dir);
    snprintf(nm.store, sizeof nm.store, "%s/nm.db", dir);
    nm_open(&app);
    nm_open(&nm);
    /* the code at once; the node manager types it while the app's node may
     * still be joining: HELLO_APP is repeated until one arrives */
    assert_int_equal(pl_nm_node_pair(app.n, NULL, NULL), PL_OK);
    assert_int_equal(pl_nm_node_pair(nm.n, app.code, NULL), PL_OK);
    two t = {&app, &nm, 0, 0};
    assert_true(run_until(both_paired, &t, 20000));
    assert_string_equal(app.fingerprint, nm.fingerprint);
    assert_true(app.connected && nm.connected);
    assert_true(run_until(both_more, &t, 20000));

    uint8_t nm_pub[PL_NM_KEY_BYTES];
    pl_nm_node_identity(nm.n, nm_pub);
    assert_int_equal(pl_nm_node_request(app.n, nm_pub, (const uint8_t *)"ping", 4, NULL), PL_OK);
    assert_true(run_until(got_response, &app, 10000));
    assert_string_equal(app.body, "pong");

    /* the libp2p identities beside the stores, kept across restarts */
    pl_p2p_peer_id id1, id2;
    pl_waku_node_peer_id(pl_waku_transport_node(pl_nm_node_transport(app.n)), &id1);
    char kp[160];
    snprintf(kp, sizeof kp, "%s.p2p.key", app.store);
    struct stat st;
    assert_int_equal(stat(kp, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* both restart: the sessions come back by themselves */
    nm_close(&app);
    nm_close(&nm);
    t.a0 = app.established;
    t.b0 = nm.established;
    nm_open(&nm);
    nm_open(&app);
    assert_int_equal(pl_nm_node_restored(app.n), 1);
    assert_int_equal(pl_nm_node_restored(nm.n), 1);
    assert_true(run_until(both_more, &t, 30000));
    pl_waku_node_peer_id(pl_waku_transport_node(pl_nm_node_transport(app.n)), &id2);
    assert_int_equal(id1.len, id2.len);
    assert_memory_equal(id1.bytes, id2.bytes, id1.len);
    app.responses = 0;
    assert_int_equal(pl_nm_node_request(app.n, nm_pub, (const uint8_t *)"again", 5, NULL), PL_OK);
    assert_true(run_until(got_response, &app, 10000));
    nm_close(&app);
    nm_close(&nm);
    hop_stop(hop);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    finished = true;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_publish_and_deliver, setup, teardown),
        cmocka_unit_test_setup_teardown(test_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_then_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nm_flow_over_waku, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
