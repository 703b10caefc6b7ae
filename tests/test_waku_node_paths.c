/* SPDX-License-Identifier: Apache-2.0 */
/* The Waku relay node (include/pairlink/waku_node.h) off the main road,
 * over loopback sockets on one uv loop, each wait bounded by a timer: the
 * API's checks and the publish queue (limits, expiry, given up on close),
 * options of a publish reaching the receiver, bootstrap dials refused by
 * the connection cap and redialled with a doubling delay, and a raw
 * libp2p host of this file playing a peer that answers metadata badly or
 * not at all, asks with another cluster, opens more relay streams than a
 * peer keeps, speaks on the node's own relay stream, resets it, or reads
 * slowly (the node's send queue grows and drains in order). Every handle
 * is closed at the end of each test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "gossipsub.pb-c.h"
#include "pairlink/codec.h"
#include "pairlink/p2p.h"
#include "pairlink/waku.h"
#include "pairlink/waku_node.h"
#include "support/support.h"
#include "waku/gossip.h"
#include "waku/metadata.h"

#define CT "/pairlink/1/paths/proto"
#define TOPIC "/waku/2/rs/16/64"
#define MAXGOT 128
#define MAXREF 32

static bool verbose;
static pl_driver *drv; /* one per test, on its loop, shared by its nodes */

static void on_log(void *ud, const char *line) {
    if (verbose) fprintf(stderr, "[%s] %s\n", (const char *)ud, line);
}

/* ---- a node and what it saw ---- */

typedef struct got {
    char text[48];
    uint32_t version;
    int64_t timestamp;
    uint8_t meta[PL_WAKU_META_MAX];
    size_t meta_len;
    bool ephemeral;
    pl_p2p_peer_id from;
} got;

typedef struct tnode {
    pl_waku_node *n;
    char name[16];
    char addr[1200];
    got got[MAXGOT];
    int ngot;
    int up, down, refused, published, failed;
    pl_err last_down, last_failed;
    uint64_t last_failed_id;
    pl_p2p_peer_id last_up_peer, last_down_peer;
    struct {
        pl_err err;
        pl_p2p_peer_id peer;
        char addr[256];
        uint64_t t_ns;
    } ref[MAXREF];
    bool closing, closed;
    int failed_at_close; /* PUBLISH_FAILED events seen when on_closed ran */
} tnode;

static void on_message(void *ud, pl_waku_node *n, const pl_waku_delivery *d) {
    (void)n;
    tnode *t = ud;
    assert_string_equal(d->content_topic, CT);
    assert_string_equal(d->pubsub_topic, TOPIC);
    assert_true(t->ngot < MAXGOT);
    got *g = &t->got[t->ngot++];
    snprintf(g->text, sizeof g->text, "%.*s",
             (int)(d->msg->payload_len < 40 ? d->msg->payload_len : 40),
             (const char *)d->msg->payload);
    g->version = d->msg->version;
    g->timestamp = d->msg->timestamp;
    g->meta_len = d->msg->meta_len;
    if (d->msg->meta_len) memcpy(g->meta, d->msg->meta, d->msg->meta_len);
    g->ephemeral = d->msg->ephemeral;
    g->from = *d->from;
}

static void on_event(void *ud, pl_waku_node *n, const pl_waku_event *ev) {
    (void)n;
    tnode *t = ud;
    switch (ev->kind) {
    case PL_WAKU_EV_PEER_UP:
        t->up++;
        t->last_up_peer = *ev->peer;
        break;
    case PL_WAKU_EV_PEER_DOWN:
        t->down++;
        t->last_down = ev->err;
        t->last_down_peer = *ev->peer;
        break;
    case PL_WAKU_EV_PEER_REFUSED:
        if (t->refused < MAXREF) {
            t->ref[t->refused].err = ev->err;
            t->ref[t->refused].peer = *ev->peer;
            snprintf(t->ref[t->refused].addr, sizeof t->ref[0].addr, "%s", ev->addr);
            t->ref[t->refused].t_ns = uv_hrtime();
        }
        t->refused++;
        break;
    case PL_WAKU_EV_MESH:
        break;
    case PL_WAKU_EV_PUBLISHED:
        t->published++;
        break;
    case PL_WAKU_EV_PUBLISH_FAILED:
        t->failed++;
        t->last_failed = ev->err;
        t->last_failed_id = ev->publish_id;
        break;
    }
}

static void node_opts(pl_waku_node_opts *o, tnode *t, const char *name) {
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    o->on_message = on_message;
    o->on_event = on_event;
    o->ud = t;
    o->on_log = on_log;
    o->log_ud = t->name;
}

/* Start a node with o (callbacks set here); listen unless told not to. */
static void node_start(tnode *t, const char *name, pl_waku_node_opts *o, bool listen) {
    node_opts(o, t, name);
    assert_int_equal(pl_waku_node_new(&t->n, drv, o), PL_OK);
    if (listen) {
        assert_int_equal(pl_waku_node_listen(t->n, "/ip4/127.0.0.1/tcp/0"), PL_OK);
        assert_int_equal(pl_waku_node_listen_addr(t->n, 0, t->addr, sizeof t->addr), 1);
    }
}

static void on_node_closed(void *ud) {
    tnode *t = ud;
    t->closed = true;
    t->failed_at_close = t->failed;
}

static void node_close(tnode *t) {
    t->closing = true;
    pl_waku_node_close(t->n, on_node_closed, t);
}

static void loop_start(uv_loop_t *loop) {
    uv_loop_init(loop);
    assert_int_equal(pl_driver_new(&drv, loop), PL_OK);
}

/* ---- running the loop until a condition holds ---- */

typedef bool (*cond_fn)(void *);

typedef struct waiter {
    cond_fn cond;
    void *arg;
} waiter;

static void on_poll(uv_timer_t *t) {
    waiter *w = t->data;
    if (w->cond && w->cond(w->arg)) uv_stop(t->loop);
}

static void on_limit(uv_timer_t *t) {
    uv_stop(t->loop);
}

/* Run until cond holds (polled every 2 ms: the drivers work in prepare
 * callbacks), at most ms. */
static bool run_until(uv_loop_t *loop, cond_fn cond, void *arg, uint64_t ms) {
    waiter w = {cond, arg};
    uv_timer_t poll, limit;
    uv_timer_init(loop, &poll);
    uv_timer_init(loop, &limit);
    poll.data = &w;
    uv_timer_start(&poll, on_poll, 2, 2);
    uv_timer_start(&limit, on_limit, ms, 0);
    if (!cond || !cond(arg)) uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&poll, NULL);
    uv_close((uv_handle_t *)&limit, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return !cond || cond(arg);
}

static void run_for(uv_loop_t *loop, uint64_t ms) {
    (void)run_until(loop, NULL, NULL, ms);
}

static bool is_true(void *arg) {
    return *(const bool *)arg;
}

typedef struct want {
    const int *v;
    int n;
} want;

static bool at_least(void *arg) {
    want *w = arg;
    return *w->v >= w->n;
}

/* Run until *v >= n, at most ms. */
static bool wait_for(uv_loop_t *loop, const int *v, int n, uint64_t ms) {
    want w = {v, n};
    return run_until(loop, at_least, &w, ms);
}

typedef struct closing {
    tnode **ts;
    size_t n;
    const bool *extra;
} closing;

static bool all_closed(void *arg) {
    closing *c = arg;
    for (size_t i = 0; i < c->n; i++)
        if (!c->ts[i]->closed) return false;
    return !c->extra || *c->extra;
}

/* Close the nodes (and wait for *extra), then the driver; the loop must
 * run dry and close. */
static void close_all_and(uv_loop_t *loop, tnode **ts, size_t n, const bool *extra) {
    for (size_t i = 0; i < n; i++)
        if (ts[i]->n && !ts[i]->closing) node_close(ts[i]);
    closing c = {ts, n, extra};
    assert_true(run_until(loop, all_closed, &c, 10000));
    pl_driver_close(drv, NULL, NULL);
    drv = NULL;
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* A port with nothing listening on it (bound, then closed). */
static int closed_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- the API, the publish queue ------------------------------------------------ */

static void test_api_and_queue(void **state) {
    (void)state;
    uv_loop_t loop;
    loop_start(&loop);
    pl_waku_node_opts o;
    pl_waku_node *bad = (pl_waku_node *)&o; /* any non-NULL: it must be cleared */

    /* creation refuses what it cannot run, and leaves nothing behind */
    pl_waku_node_opts_init(&o);
    o.flush_timeout_ms = -1;
    assert_int_equal(pl_waku_node_new(&bad, drv, &o), PL_ERR_INVALID_ARG);
    assert_null(bad);
    pl_waku_node_opts_init(&o);
    const char *many[PL_WAKU_NODE_MAX_PEERS_OPT + 1];
    for (size_t i = 0; i <= PL_WAKU_NODE_MAX_PEERS_OPT; i++)
        many[i] = "/ip4/127.0.0.1/tcp/1";
    o.peers = many;
    o.n_peers = PL_WAKU_NODE_MAX_PEERS_OPT + 1;
    assert_int_equal(pl_waku_node_new(&bad, drv, &o), PL_ERR_INVALID_ARG);
    const char *ws[] = {"/ip4/127.0.0.1/tcp/1/ws"};
    o.peers = ws;
    o.n_peers = 1;
    assert_int_equal(pl_waku_node_new(&bad, drv, &o), PL_ERR_P2P_TRANSPORT);
    const char *junk[] = {"127.0.0.1:1"};
    o.peers = junk;
    assert_int_equal(pl_waku_node_new(&bad, drv, &o), PL_ERR_P2P_MULTIADDR);
    pl_driver *virt = NULL;
    assert_int_equal(pl_driver_new_virtual(&virt, 0), PL_OK);
    pl_waku_node_opts_init(&o);
    assert_int_equal(pl_waku_node_new(&bad, virt, &o), PL_ERR_INVALID_ARG);
    pl_driver_free(virt);
    assert_null(bad);

    /* a node with a key of ours, a short TTL and a small queue */
    pl_p2p_key *key;
    assert_int_equal(pl_p2p_key_generate(&key, PL_P2P_KEY_SECP256K1), PL_OK);
    tnode *t = calloc(1, sizeof *t);
    pl_waku_node_opts_init(&o);
    o.key = key;
    o.publish_ttl_ms = 200;
    o.publish_queue_max = 2;
    o.flush_timeout_ms = 50; /* shorter than the TTL */
    node_start(t, "T", &o, false);
    pl_p2p_peer_id want_id, id;
    pl_p2p_key_peer_id(key, &want_id);
    pl_waku_node_peer_id(t->n, &id);
    assert_true(pl_p2p_peer_id_equal(&id, &want_id));
    assert_int_equal(pl_waku_node_listen_addr(t->n, 0, NULL, 0), 0);
    assert_int_equal(pl_waku_node_listen(t->n, "/ip4/127.0.0.1/tcp/0/ws"), PL_ERR_P2P_TRANSPORT);

    char topic[PL_WAKU_PUBSUB_TOPIC_SIZE];
    assert_int_equal(pl_waku_node_pubsub_topic(t->n, CT, topic), PL_OK);
    assert_string_equal(topic, TOPIC);
    assert_int_equal(pl_waku_node_pubsub_topic(t->n, "not a topic", topic), PL_ERR_WAKU_TOPIC);
    assert_int_equal(pl_waku_node_unsubscribe(t->n, CT), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_waku_node_subscribe(t->n, CT), PL_OK);
    assert_int_equal(pl_waku_node_subscribe(t->n, CT), PL_ERR_EXISTS);
    assert_int_equal(pl_waku_node_unsubscribe(t->n, CT), PL_OK);
    assert_int_equal(pl_waku_node_unsubscribe(t->n, CT), PL_ERR_NOT_FOUND);

    /* publishes that are refused leave nothing queued */
    pl_waku_publish_result r;
    assert_int_equal(pl_waku_node_publish(t->n, CT, (const uint8_t *)"", 0, NULL, &r),
                     PL_ERR_WAKU_MESSAGE);
    uint8_t meta[PL_WAKU_META_MAX + 1] = {0};
    pl_waku_publish_opts po = {.meta = meta, .meta_len = sizeof meta};
    assert_int_equal(pl_waku_node_publish(t->n, CT, (const uint8_t *)"x", 1, &po, &r),
                     PL_ERR_WAKU_MESSAGE);
    assert_int_equal(r.id, 0);
    assert_int_equal(pl_waku_node_pending(t->n), 0);

    /* no peer: queued, at most two; the same bytes twice are one message */
    po = (pl_waku_publish_opts){.timestamp = 1700000000000000000};
    assert_int_equal(pl_waku_node_publish(t->n, CT, (const uint8_t *)"q1", 2, &po, &r), PL_OK);
    assert_true(r.queued);
    assert_int_equal(r.sent_to, 0);
    assert_string_equal(r.pubsub_topic, TOPIC);
    uint64_t id1 = r.id;
    assert_int_equal(pl_waku_node_publish(t->n, CT, (const uint8_t *)"q1", 2, &po, &r),
                     PL_ERR_EXISTS);
    assert_int_equal(pl_waku_node_publish(t->n, CT, (const uint8_t *)"q2", 2, NULL, &r), PL_OK);
    uint64_t id2 = r.id;
    assert_true(id2 != id1);
    assert_int_equal(pl_waku_node_publish(t->n, CT, (const uint8_t *)"q3", 2, NULL, NULL),
                     PL_ERR_WAKU_QUEUE_FULL);
    assert_int_equal(pl_waku_node_pending(t->n), 2);
    pl_waku_node_stats st;
    pl_waku_node_stats_get(t->n, &st);
    assert_int_equal(st.queued, 2);

    /* nobody comes within the TTL: both given up, the queue is empty */
    uint64_t t0 = uv_hrtime();
    assert_true(wait_for(&loop, &t->failed, 2, 5000));
    assert_true((double)(uv_hrtime() - t0) / 1e6 >= 150);
    assert_int_equal(t->last_failed, PL_ERR_WAKU_NO_PEERS);
    assert_int_equal(t->published, 0);
    assert_int_equal(pl_waku_node_pending(t->n), 0);
    pl_waku_node_stats_get(t->n, &st);
    assert_int_equal(st.expired, 2);
    assert_int_equal(st.queued, 0);

    /* queued when the node closes: given up as closed, before on_closed */
    assert_int_equal(pl_waku_node_publish(t->n, CT, (const uint8_t *)"q4", 2, NULL, &r), PL_OK);
    assert_true(r.queued);
    uint64_t id4 = r.id;
    node_close(t);
    assert_int_equal(pl_waku_node_publish(t->n, CT, (const uint8_t *)"q5", 2, NULL, &r),
                     PL_ERR_STATE);
    assert_int_equal(r.id, 0);
    assert_int_equal(pl_waku_node_subscribe(t->n, CT), PL_ERR_STATE);
    assert_int_equal(pl_waku_node_unsubscribe(t->n, CT), PL_ERR_STATE);
    assert_int_equal(pl_waku_node_listen(t->n, "/ip4/127.0.0.1/tcp/0"), PL_ERR_STATE);
    tnode *all[] = {t};
    close_all_and(&loop, all, 1, NULL);
    assert_int_equal(t->failed_at_close, 3);
    assert_int_equal(t->last_failed, PL_ERR_CLOSED);
    assert_int_equal(t->last_failed_id, id4);
    pl_p2p_key_free(key);
    free(t);
}

/* ---- what a publish carries --------------------------------------------------------- */

static void test_publish_options(void **state) {
    (void)state;
    uv_loop_t loop;
    loop_start(&loop);
    tnode *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    pl_waku_node_opts o;
    pl_waku_node_opts_init(&o);
    node_start(b, "B", &o, true);
    assert_int_equal(pl_waku_node_subscribe(b->n, CT), PL_OK);
    pl_waku_node_opts_init(&o);
    const char *peers[] = {b->addr};
    o.peers = peers;
    o.n_peers = 1;
    node_start(a, "A", &o, true);
    assert_true(wait_for(&loop, &a->up, 1, 10000));

    const uint8_t meta[] = {'m', 0, 't', 'a'};
    pl_waku_publish_opts po = {.version = 1,
                               .timestamp = 1234567890123456789,
                               .meta = meta,
                               .meta_len = sizeof meta,
                               .ephemeral = true};
    pl_waku_publish_result r;
    assert_int_equal(pl_waku_node_publish(a->n, CT, (const uint8_t *)"opts", 4, &po, &r), PL_OK);
    assert_true(r.queued || r.sent_to == 1);
    assert_true(wait_for(&loop, &b->ngot, 1, 10000));
    got *g = &b->got[0];
    assert_string_equal(g->text, "opts");
    assert_int_equal(g->version, 1);
    assert_int_equal(g->timestamp, 1234567890123456789);
    assert_int_equal(g->meta_len, sizeof meta);
    assert_memory_equal(g->meta, meta, sizeof meta);
    assert_true(g->ephemeral);
    pl_p2p_peer_id aid;
    pl_waku_node_peer_id(a->n, &aid);
    assert_true(pl_p2p_peer_id_equal(&g->from, &aid));

    /* meta given without a length is no meta; timestamp 0 is "now" */
    po = (pl_waku_publish_opts){.meta = NULL, .meta_len = 9};
    assert_int_equal(pl_waku_node_publish(a->n, CT, (const uint8_t *)"plain", 5, &po, NULL), PL_OK);
    assert_true(wait_for(&loop, &b->ngot, 2, 10000));
    assert_int_equal(b->got[1].meta_len, 0);
    assert_int_equal(b->got[1].version, 0);
    assert_false(b->got[1].ephemeral);
    assert_true(b->got[1].timestamp > 1700000000000000000);

    /* publish, then close at once: the message still gets out (flush) */
    assert_int_equal(pl_waku_node_publish(a->n, CT, (const uint8_t *)"last", 4, NULL, NULL), PL_OK);
    node_close(a);
    assert_true(wait_for(&loop, &b->ngot, 3, 10000));
    assert_string_equal(b->got[2].text, "last");
    tnode *all[] = {a, b};
    close_all_and(&loop, all, 2, NULL);
    free(a), free(b);
}

/* ---- bootstrap: the connection cap, the redial delay ------------------------------ */

static void test_bootstrap_dials(void **state) {
    (void)state;
    uv_loop_t loop;
    loop_start(&loop);
    tnode *b = calloc(1, sizeof *b), *c = calloc(1, sizeof *c), *t = calloc(1, sizeof *t);
    pl_waku_node_opts o;
    pl_waku_node_opts_init(&o);
    node_start(b, "B", &o, true);
    pl_waku_node_opts_init(&o);
    node_start(c, "C", &o, true);

    /* One connection allowed, two bootstrap peers: the second dial is
     * refused by the cap at once, the first peer comes up. */
    pl_waku_node_opts_init(&o);
    const char *peers[] = {b->addr, c->addr};
    o.peers = peers;
    o.n_peers = 2;
    o.max_connections = 1;
    o.reconnect_min_ms = 100;
    o.reconnect_max_ms = 200;
    node_start(t, "T", &o, false);
    assert_true(wait_for(&loop, &t->up, 1, 10000));
    assert_true(wait_for(&loop, &t->refused, 1, 10000));
    assert_int_equal(t->ref[0].err, PL_ERR_P2P_CONN_LIMIT);
    assert_string_equal(t->ref[0].addr, c->addr);
    pl_p2p_peer_id bid;
    pl_waku_node_peer_id(b->n, &bid);
    assert_true(pl_p2p_peer_id_equal(&t->last_up_peer, &bid));
    /* and it stays at the cap while it retries */
    assert_true(wait_for(&loop, &t->refused, 3, 10000));
    for (int i = 0; i < 3; i++)
        assert_int_equal(t->ref[i].err, PL_ERR_P2P_CONN_LIMIT);
    pl_waku_node_stats st;
    pl_waku_node_stats_get(t->n, &st);
    assert_int_equal(st.connections, 1);
    assert_int_equal(pl_waku_node_peer_count(t->n), 1);
    assert_int_equal(c->up, 0);

    /* A bootstrap address where nobody listens: redialled after 100,
     * 200, 400, then 400 ms (the maximum). */
    tnode *r = calloc(1, sizeof *r);
    pl_waku_node_opts_init(&o);
    char dead[64];
    snprintf(dead, sizeof dead, "/ip4/127.0.0.1/tcp/%d", closed_port());
    const char *dp[] = {dead};
    o.peers = dp;
    o.n_peers = 1;
    o.reconnect_min_ms = 100;
    o.reconnect_max_ms = 400;
    node_start(r, "R", &o, false);
    assert_true(wait_for(&loop, &r->refused, 5, 10000));
    const double want_ms[] = {100, 200, 400, 400};
    for (int i = 0; i < 4; i++) {
        double d = (double)(r->ref[i + 1].t_ns - r->ref[i].t_ns) / 1e6;
        assert_int_equal(r->ref[i].err, PL_ERR_SYS); /* connection refused */
        assert_string_equal(r->ref[i].addr, dead);
        assert_int_equal(r->ref[i].peer.len, 0); /* no /p2p/: not known */
        if (d < want_ms[i] - 10 || d > want_ms[i] + 350) {
            fprintf(stderr, "redial %d after %.1f ms, want %.0f\n", i, d, want_ms[i]);
            fail();
        }
    }
    tnode *all[] = {b, c, t, r};
    close_all_and(&loop, all, 4, NULL);
    free(b), free(c), free(t), free(r);
}

/* ---- a raw peer ---------------------------------------------------------------------- */

typedef enum meta_mode {
    M_ANSWER = 1, /* our metadata, as it should be */
    M_OVERSIZED,  /* a length prefix above the metadata bound */
    M_EOF,        /* close without an answer */
    M_TRUNCATED,  /* a part of an answer, then close */
    M_EXTRA,      /* the answer; more bytes once the request ended, then close */
    M_SILENT,     /* never answer */
} meta_mode;

typedef enum ask_mode {
    ASK_NONE = 0,
    ASK_CLUSTER, /* our own request, naming cluster 1 */
    ASK_GARBAGE, /* our own request, an oversized length prefix */
} ask_mode;

#define HQ 64

typedef struct hostile {
    pl_p2p_host *h;
    pl_p2p_key *key;
    pl_p2p_peer_id id;
    pl_p2p_conn_id conn;
    meta_mode meta;
    ask_mode ask;
    int relay_streams; /* relay streams to open at CONNECTED */
    bool subscribe;    /* on the first one, once open */
    bool disconnected, closed;
    pl_err disc_err;
    /* our relay streams to the node */
    pl_p2p_stream_id out[4];
    bool out_open[4], out_closed[4];
    pl_err out_err[4];
    /* the node's relay stream to us */
    pl_p2p_stream_id in;
    bool in_closed;
    bool paused; /* not reading it */
    int msgs;
    int order_ok; /* messages that came in publish order */
    int next_idx;
    /* the node's metadata request to us */
    bool meta_closed;
    pl_err meta_err;
    /* our metadata request stream */
    pl_p2p_stream_id ask_s;
    bool ask_closed;
    pl_err ask_err;
} hostile;

static ProtobufCBinaryData bin(const void *p, size_t n) {
    ProtobufCBinaryData b = {n, (uint8_t *)p};
    return b;
}

/* Frame an RPC and write it whole (the stream has room: small RPCs). */
static void h_send_rpc(hostile *x, pl_p2p_stream_id s, const Gossip__Pb__RPC *rpc) {
    size_t body = gossip__pb__rpc__get_packed_size(rpc);
    uint8_t *buf = malloc(body + PL__GOSSIP_FRAME_HEADER_MAX);
    size_t hl = pl__gossip_frame_header(buf, body);
    gossip__pb__rpc__pack(rpc, buf + hl);
    size_t taken = 0;
    assert_int_equal(pl_p2p_stream_write(x->h, s, buf, hl + body, &taken), PL_OK);
    assert_int_equal(taken, hl + body);
    free(buf);
}

static void h_subscribe(hostile *x, pl_p2p_stream_id s) {
    Gossip__Pb__RPC rpc = GOSSIP__PB__RPC__INIT;
    Gossip__Pb__RPC__SubOpts so = GOSSIP__PB__RPC__SUB_OPTS__INIT;
    so.has_subscribe = so.subscribe = true;
    so.has_topicid = true;
    so.topicid = bin(TOPIC, strlen(TOPIC));
    Gossip__Pb__RPC__SubOpts *sos[] = {&so};
    rpc.subscriptions = sos;
    rpc.n_subscriptions = 1;
    h_send_rpc(x, s, &rpc);
}

static void h_publish(hostile *x, pl_p2p_stream_id s, const char *text) {
    uint8_t wm[256];
    size_t len = 0;
    pl_waku_message m = {.payload = (const uint8_t *)text,
                         .payload_len = strlen(text),
                         .has_payload = true,
                         .content_topic = CT,
                         .content_topic_len = strlen(CT),
                         .timestamp = 1700000000000000001};
    assert_int_equal(pl_waku_message_encode(wm, sizeof wm, &len, &m), PL_OK);
    Gossip__Pb__RPC rpc = GOSSIP__PB__RPC__INIT;
    Gossip__Pb__Message gm = GOSSIP__PB__MESSAGE__INIT;
    gm.has_data = gm.has_topic = true;
    gm.data = bin(wm, len);
    gm.topic = bin(TOPIC, strlen(TOPIC));
    Gossip__Pb__Message *ms[] = {&gm};
    rpc.publish = ms;
    rpc.n_publish = 1;
    h_send_rpc(x, s, &rpc);
}

static size_t metadata_bytes(uint8_t *buf, size_t cap, uint32_t cluster) {
    pl__waku_metadata *md = calloc(1, sizeof *md);
    md->has_cluster = true;
    md->cluster = cluster;
    md->n_shards = 1;
    md->shards[0] = 64;
    size_t len = 0;
    assert_int_equal(pl__waku_metadata_encode(buf, cap, &len, md), PL_OK);
    free(md);
    return len;
}

/* An oversized length prefix and a few bytes. */
static void write_oversized(pl_p2p_host *h, pl_p2p_stream_id s) {
    uint8_t junk[16] = {0};
    size_t n = pl_uvarint_encode(junk, 100000);
    size_t taken = 0;
    assert_int_equal(pl_p2p_stream_write(h, s, junk, n + 4, &taken), PL_OK);
}

/* The node's metadata request to us. */
static void h_meta_in(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    hostile *x = ud;
    if (ev->kind == PL_P2P_STREAM_READABLE) { /* the request */
        const uint8_t *d;
        size_t n = 0;
        if (pl_p2p_stream_peek(h, ev->stream, &d, &n) == PL_OK)
            (void)pl_p2p_stream_consume(h, ev->stream, n);
    } else if (ev->kind == PL_P2P_STREAM_EOF && x->meta == M_EXTRA) {
        size_t taken = 0;
        assert_int_equal(pl_p2p_stream_write(h, ev->stream, (const uint8_t *)"more", 4, &taken),
                         PL_OK);
        (void)pl_p2p_stream_close(h, ev->stream);
    } else if (ev->kind == PL_P2P_STREAM_CLOSED) {
        x->meta_closed = true;
        x->meta_err = ev->err;
    }
    if (ev->kind != PL_P2P_STREAM_OPENED) return;
    if (x->meta == M_ANSWER || x->meta == M_EXTRA) {
        uint8_t buf[64];
        size_t len = metadata_bytes(buf, sizeof buf, 16);
        assert_int_equal(pl_p2p_stream_write_msg(h, ev->stream, buf, len), PL_OK);
    } else if (x->meta == M_OVERSIZED) {
        write_oversized(h, ev->stream);
    } else if (x->meta == M_TRUNCATED) {
        size_t taken = 0;
        assert_int_equal(
            pl_p2p_stream_write(h, ev->stream, (const uint8_t *)"\x0a\x08\x10", 3, &taken), PL_OK);
    }
    if (x->meta != M_SILENT && x->meta != M_EXTRA) (void)pl_p2p_stream_close(h, ev->stream);
}

/* Our metadata request to the node. */
static void h_ask(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    hostile *x = ud;
    if (ev->kind == PL_P2P_STREAM_OPENED) {
        if (x->ask == ASK_CLUSTER) {
            uint8_t buf[64];
            size_t len = metadata_bytes(buf, sizeof buf, 1);
            assert_int_equal(pl_p2p_stream_write_msg(h, ev->stream, buf, len), PL_OK);
        } else {
            write_oversized(h, ev->stream);
        }
    } else if (ev->kind == PL_P2P_STREAM_READABLE) {
        const uint8_t *d;
        size_t n = 0;
        if (pl_p2p_stream_peek(h, ev->stream, &d, &n) == PL_OK)
            (void)pl_p2p_stream_consume(h, ev->stream, n);
    } else if (ev->kind == PL_P2P_STREAM_CLOSED) {
        x->ask_closed = true;
        x->ask_err = ev->err;
    }
}

static int out_index(hostile *x, pl_p2p_stream_id s) {
    for (int i = 0; i < x->relay_streams; i++)
        if (x->out[i] == s) return i;
    return -1;
}

/* Our relay streams to the node: nothing comes on them but their end. */
static void h_out_cb(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    hostile *x = ud;
    int i = out_index(x, ev->stream);
    assert_true(i >= 0);
    if (ev->kind == PL_P2P_STREAM_OPENED) {
        x->out_open[i] = true;
        if (i == 0 && x->subscribe) h_subscribe(x, ev->stream);
    } else if (ev->kind == PL_P2P_STREAM_READABLE) {
        const uint8_t *d;
        size_t n = 0;
        if (pl_p2p_stream_peek(h, ev->stream, &d, &n) == PL_OK)
            (void)pl_p2p_stream_consume(h, ev->stream, n);
    } else if (ev->kind == PL_P2P_STREAM_CLOSED) {
        x->out_closed[i] = true;
        x->out_err[i] = ev->err;
    }
}

/* Read the node's RPCs on its relay stream to us (unless paused). */
static void h_read(hostile *x) {
    if (!x->in || x->paused) return;
    for (;;) {
        const uint8_t *m;
        size_t len;
        if (pl_p2p_stream_read_msg(x->h, x->in, 2u << 20, &m, &len) != PL_OK || !m) return;
        Gossip__Pb__RPC *rpc = gossip__pb__rpc__unpack(NULL, len, m);
        assert_non_null(rpc);
        for (size_t i = 0; i < rpc->n_publish; i++) {
            pl_waku_message wm;
            const Gossip__Pb__Message *gm = rpc->publish[i];
            assert_int_equal(pl_waku_message_decode(&wm, gm->data.data, gm->data.len), PL_OK);
            int idx = -1;
            if (wm.payload_len > 4 && !memcmp(wm.payload, "big ", 4))
                idx = atoi((const char *)wm.payload + 4);
            if (idx >= 0 && idx == x->next_idx) {
                x->order_ok++;
                x->next_idx++;
            }
            x->msgs++;
            pl_waku_message_release(&wm);
        }
        gossip__pb__rpc__free_unpacked(rpc, NULL);
    }
}

static void h_relay_in(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    (void)h;
    hostile *x = ud;
    if (ev->kind == PL_P2P_STREAM_OPENED) {
        x->in = ev->stream;
    } else if (ev->kind == PL_P2P_STREAM_READABLE && ev->stream == x->in) {
        h_read(x);
    } else if (ev->kind == PL_P2P_STREAM_CLOSED && ev->stream == x->in) {
        x->in = 0;
        x->in_closed = true;
    }
}

static void h_event(void *ud, pl_p2p_host *h, const pl_p2p_event *ev) {
    hostile *x = ud;
    if (ev->kind == PL_P2P_EV_CONNECTED) {
        static const char *const relay[] = {PL__GOSSIP_PROTOCOL};
        static const char *const meta[] = {PL__WAKU_METADATA_PROTOCOL};
        for (int i = 0; i < x->relay_streams; i++)
            assert_int_equal(pl_p2p_stream_open(h, ev->conn, relay, 1, h_out_cb, x, &x->out[i]),
                             PL_OK);
        if (x->ask)
            assert_int_equal(pl_p2p_stream_open(h, ev->conn, meta, 1, h_ask, x, &x->ask_s), PL_OK);
    } else if (ev->kind == PL_P2P_EV_DISCONNECTED) {
        x->disconnected = true;
        x->disc_err = ev->err;
    }
}

static void h_closed(void *ud) {
    ((hostile *)ud)->closed = true;
}

static hostile *hostile_dial(tnode *t, meta_mode meta, ask_mode ask, int relay_streams) {
    hostile *x = calloc(1, sizeof *x);
    x->meta = meta;
    x->ask = ask;
    x->relay_streams = relay_streams;
    assert_int_equal(pl_p2p_key_generate(&x->key, PL_P2P_KEY_ED25519), PL_OK);
    pl_p2p_key_peer_id(x->key, &x->id);
    pl_p2p_host_opts ho = {
        .key = x->key, .on_event = h_event, .ud = x, .on_log = on_log, .log_ud = "H"};
    assert_int_equal(pl_p2p_host_new(&x->h, drv, &ho), PL_OK);
    assert_int_equal(pl_p2p_host_handle(x->h, PL__GOSSIP_PROTOCOL, h_relay_in, x), PL_OK);
    assert_int_equal(pl_p2p_host_handle(x->h, PL__WAKU_METADATA_PROTOCOL, h_meta_in, x), PL_OK);
    assert_int_equal(pl_p2p_host_dial(x->h, t->addr, &x->conn), PL_OK);
    return x;
}

static void hostile_free(hostile *x) {
    pl_p2p_key_free(x->key);
    free(x);
}

/* t and its hostile peer x are done: close both, then the loop. */
static void finish_with(uv_loop_t *loop, tnode **ts, size_t n, hostile *x) {
    pl_p2p_host_close(x->h, h_closed, x);
    close_all_and(loop, ts, n, &x->closed);
    hostile_free(x);
}

typedef struct refused_by {
    tnode *t;
    const hostile *x;
} refused_by;

static bool refused_x(void *arg) {
    refused_by *r = arg;
    for (int i = 0; i < r->t->refused && i < MAXREF; i++)
        if (pl_p2p_peer_id_equal(&r->t->ref[i].peer, &r->x->id)) return true;
    return false;
}

static pl_err refusal_of(const tnode *t, const hostile *x) {
    for (int i = 0; i < t->refused && i < MAXREF; i++)
        if (pl_p2p_peer_id_equal(&t->ref[i].peer, &x->id)) return t->ref[i].err;
    return PL_OK;
}

/* ---- metadata: answers that end the peer before its time-out ------------------------ */

static void run_meta_case(meta_mode meta, ask_mode ask, pl_err expect) {
    uv_loop_t loop;
    loop_start(&loop);
    tnode *t = calloc(1, sizeof *t);
    pl_waku_node_opts o;
    pl_waku_node_opts_init(&o);
    o.metadata_timeout_ms = 30000; /* the refusals below come long before */
    node_start(t, "T", &o, true);
    hostile *x = hostile_dial(t, meta, ask, 0);
    refused_by rb = {t, x};
    assert_true(run_until(&loop, refused_x, &rb, 5000));
    assert_int_equal(refusal_of(t, x), expect);
    assert_int_equal(t->up, 0);
    assert_int_equal(pl_waku_node_peer_count(t->n), 0);
    /* and the connection is gone: the raw peer hears the end */
    assert_true(run_until(&loop, is_true, &x->disconnected, 5000));
    tnode *all[] = {t};
    finish_with(&loop, all, 1, x);
    free(t);
}

static void test_meta_oversized_answer(void **s) {
    (void)s;
    run_meta_case(M_OVERSIZED, ASK_NONE, PL_ERR_WAKU_METADATA);
}

static void test_meta_no_answer_eof(void **s) {
    (void)s;
    run_meta_case(M_EOF, ASK_NONE, PL_ERR_WAKU_METADATA);
}

static void test_meta_request_other_cluster(void **s) {
    (void)s;
    run_meta_case(M_SILENT, ASK_CLUSTER, PL_ERR_WAKU_CLUSTER);
}

static void test_meta_truncated_answer(void **s) {
    (void)s;
    run_meta_case(M_TRUNCATED, ASK_NONE, PL_ERR_WAKU_METADATA);
}

/* Bytes after the answer are read and dropped, and the request stream
 * ends cleanly on both sides. */
static void test_meta_bytes_after_answer(void **s) {
    (void)s;
    uv_loop_t loop;
    loop_start(&loop);
    tnode *t = calloc(1, sizeof *t);
    pl_waku_node_opts o;
    pl_waku_node_opts_init(&o);
    node_start(t, "T", &o, true);
    hostile *x = hostile_dial(t, M_EXTRA, ASK_NONE, 0);
    assert_true(wait_for(&loop, &t->up, 1, 10000));
    assert_true(run_until(&loop, is_true, &x->meta_closed, 10000));
    assert_int_equal(x->meta_err, PL_OK);
    assert_int_equal(t->refused, 0);
    assert_int_equal(pl_waku_node_peer_count(t->n), 1);
    tnode *all[] = {t};
    finish_with(&loop, all, 1, x);
    free(t);
}

/* A request the node cannot read is reset; the node's own request still
 * decides, and the peer becomes a relay peer. */
static void test_meta_garbage_request(void **s) {
    (void)s;
    uv_loop_t loop;
    loop_start(&loop);
    tnode *t = calloc(1, sizeof *t);
    pl_waku_node_opts o;
    pl_waku_node_opts_init(&o);
    node_start(t, "T", &o, true);
    hostile *x = hostile_dial(t, M_ANSWER, ASK_GARBAGE, 0);
    assert_true(wait_for(&loop, &t->up, 1, 10000));
    assert_true(pl_p2p_peer_id_equal(&t->last_up_peer, &x->id));
    assert_true(run_until(&loop, is_true, &x->ask_closed, 10000));
    assert_int_equal(x->ask_err, PL_ERR_P2P_STREAM_RESET);
    assert_int_equal(t->refused, 0);
    assert_int_equal(pl_waku_node_peer_count(t->n), 1);
    tnode *all[] = {t};
    finish_with(&loop, all, 1, x);
    free(t);
}

/* ---- relay streams of a peer ------------------------------------------------------------- */

static bool has_text(const tnode *t, const char *text, const pl_p2p_peer_id *from) {
    for (int i = 0; i < t->ngot; i++)
        if (!strcmp(t->got[i].text, text) && pl_p2p_peer_id_equal(&t->got[i].from, from))
            return true;
    return false;
}

typedef struct text_at {
    const tnode *t;
    const char *text;
    const pl_p2p_peer_id *from;
} text_at;

static bool got_text(void *arg) {
    text_at *a = arg;
    return has_text(a->t, a->text, a->from);
}

static bool has_in(void *arg) {
    return ((hostile *)arg)->in != 0;
}

static void test_relay_streams(void **state) {
    (void)state;
    uv_loop_t loop;
    loop_start(&loop);
    tnode *t = calloc(1, sizeof *t);
    pl_waku_node_opts o;
    pl_waku_node_opts_init(&o);
    node_start(t, "T", &o, true);
    assert_int_equal(pl_waku_node_subscribe(t->n, CT), PL_OK);
    /* three relay streams at once: a peer keeps two, the oldest goes */
    hostile *x = hostile_dial(t, M_ANSWER, ASK_NONE, 3);
    assert_true(wait_for(&loop, &t->up, 1, 10000));
    assert_true(run_until(&loop, is_true, &x->out_closed[0], 10000));
    assert_int_equal(x->out_err[0], PL_ERR_P2P_STREAM_RESET);
    assert_true(x->out_open[1] && x->out_open[2]);
    assert_false(x->out_closed[1] || x->out_closed[2]);

    /* both kept streams are read */
    h_subscribe(x, x->out[2]);
    h_publish(x, x->out[1], "on the older");
    h_publish(x, x->out[2], "on the newer");
    text_at a1 = {t, "on the older", &x->id}, a2 = {t, "on the newer", &x->id};
    assert_true(run_until(&loop, got_text, &a1, 10000));
    assert_true(run_until(&loop, got_text, &a2, 10000));

    /* and so is the node's own stream to the peer */
    assert_true(run_until(&loop, has_in, x, 10000));
    h_publish(x, x->in, "on the node's stream");
    text_at a3 = {t, "on the node's stream", &x->id};
    assert_true(run_until(&loop, got_text, &a3, 10000));

    /* the peer ends one of its streams: the node ends its side too */
    assert_int_equal(pl_p2p_stream_close(x->h, x->out[1]), PL_OK);
    assert_true(run_until(&loop, is_true, &x->out_closed[1], 10000));
    assert_int_equal(x->out_err[1], PL_OK);
    /* the peer ends its side of the node's stream: the node goes on
     * sending on it */
    assert_int_equal(pl_p2p_stream_close(x->h, x->in), PL_OK);
    int before = x->msgs;
    pl_waku_publish_result r;
    assert_int_equal(pl_waku_node_publish(t->n, CT, (const uint8_t *)"still", 5, NULL, &r), PL_OK);
    assert_false(r.queued);
    assert_int_equal(r.sent_to, 1);
    assert_true(wait_for(&loop, &x->msgs, before + 1, 10000));
    assert_int_equal(t->down, 0);
    assert_int_equal(pl_waku_node_peer_count(t->n), 1);

    /* the peer resets the node's stream: no relay without it */
    assert_int_equal(pl_p2p_stream_reset(x->h, x->in), PL_OK);
    x->in = 0;
    assert_true(wait_for(&loop, &t->down, 1, 10000));
    assert_int_equal(t->last_down, PL_ERR_P2P_STREAM_RESET);
    assert_true(pl_p2p_peer_id_equal(&t->last_down_peer, &x->id));
    assert_true(run_until(&loop, is_true, &x->disconnected, 10000));
    assert_int_equal(pl_waku_node_peer_count(t->n), 0);
    tnode *all[] = {t};
    finish_with(&loop, all, 1, x);
    free(t);
}

/* ---- a peer that reads slowly ------------------------------------------------------------- */

#define BIG (100u * 1024u)

static void publish_big(tnode *t, int from, int n) {
    uint8_t *p = malloc(BIG);
    for (int i = from; i < from + n; i++) {
        memset(p, 'a' + i % 26, BIG);
        int k = snprintf((char *)p, 32, "big %d ", i);
        p[k] = '.';
        pl_waku_publish_result r;
        assert_int_equal(pl_waku_node_publish(t->n, CT, p, BIG, NULL, &r), PL_OK);
        assert_false(r.queued);
        assert_int_equal(r.sent_to, 1);
    }
    free(p);
}

typedef struct pending_at_least {
    const tnode *t;
    size_t n;
} pending_at_least;

static bool pending_ge(void *arg) {
    pending_at_least *p = arg;
    return pl_waku_node_pending(p->t->n) >= p->n;
}

static bool pending_zero(void *arg) {
    return pl_waku_node_pending(((tnode *)arg)->n) == 0;
}

static void test_slow_reader(void **state) {
    (void)state;
    uv_loop_t loop;
    loop_start(&loop);
    tnode *t = calloc(1, sizeof *t);
    pl_waku_node_opts o;
    pl_waku_node_opts_init(&o);
    node_start(t, "T", &o, true);
    assert_int_equal(pl_waku_node_subscribe(t->n, CT), PL_OK);
    hostile *x = hostile_dial(t, M_ANSWER, ASK_NONE, 1);
    x->subscribe = true;
    assert_true(wait_for(&loop, &t->up, 1, 10000));
    /* the first message waits for the peer's subscription if need be */
    assert_int_equal(pl_waku_node_publish(t->n, CT, (const uint8_t *)"probe", 5, NULL, NULL),
                     PL_OK);
    assert_true(wait_for(&loop, &x->msgs, 1, 10000));

    /* The peer stops reading: what its window and our stream buffer do
     * not hold waits in the node, counted as pending, and does not move. */
    x->paused = true;
    publish_big(t, 0, 30);
    pending_at_least pa = {t, 10};
    assert_true(run_until(&loop, pending_ge, &pa, 10000));
    run_for(&loop, 100);
    size_t stuck = pl_waku_node_pending(t->n);
    assert_true(stuck >= 10);
    run_for(&loop, 100);
    /* (a heartbeat may add an RPC; nothing leaves) */
    assert_true(pl_waku_node_pending(t->n) >= stuck);
    assert_int_equal(x->msgs, 1);

    /* It reads again: everything arrives, in order, and nothing is left. */
    x->paused = false;
    h_read(x);
    assert_true(wait_for(&loop, &x->msgs, 31, 10000));
    assert_true(run_until(&loop, pending_zero, t, 10000));
    assert_int_equal(x->order_ok, 30);
    assert_int_equal(t->down, 0);

    /* It stops again and leaves with a backlog: the backlog goes with it. */
    x->paused = true;
    publish_big(t, 30, 30);
    assert_true(run_until(&loop, pending_ge, &pa, 10000));
    assert_int_equal(pl_p2p_conn_close(x->h, x->conn, PL_ERR_CANCELLED), PL_OK);
    assert_true(wait_for(&loop, &t->down, 1, 10000));
    assert_true(run_until(&loop, pending_zero, t, 10000));
    assert_int_equal(pl_waku_node_peer_count(t->n), 0);
    tnode *all[] = {t};
    finish_with(&loop, all, 1, x);
    free(t);
}

int main(void) {
    verbose = getenv("PL_TEST_VERBOSE") != NULL;
    signal(SIGPIPE, SIG_IGN); /* closed peers: write errors, not signals */
    assert_int_equal(pl_init(), PL_OK);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_and_queue),
        cmocka_unit_test(test_publish_options),
        cmocka_unit_test(test_bootstrap_dials),
        cmocka_unit_test(test_meta_oversized_answer),
        cmocka_unit_test(test_meta_no_answer_eof),
        cmocka_unit_test(test_meta_request_other_cluster),
        cmocka_unit_test(test_meta_truncated_answer),
        cmocka_unit_test(test_meta_bytes_after_answer),
        cmocka_unit_test(test_meta_garbage_request),
        cmocka_unit_test(test_relay_streams),
        cmocka_unit_test(test_slow_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
