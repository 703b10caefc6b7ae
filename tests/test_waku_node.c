/* SPDX-License-Identifier: Apache-2.0 */
/* Waku relay nodes (include/pairlink/waku_node.h) over real loopback
 * sockets, several on one uv loop bounded by a timer: a line with the
 * publish queue and gossip repair, a ring with a chord where every message
 * reaches every subscriber exactly once and a node is closed mid-run,
 * reconnection to a bootstrap peer that comes back, and hostile peers (a
 * raw libp2p host of this file speaking crafted RPCs and metadata) that
 * are refused or disconnected while a good peer keeps receiving. Every
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
#include <uv.h>

#include "gossipsub.pb-c.h"
#include "pairlink/codec.h"
#include "pairlink/hash.h"
#include "pairlink/p2p.h"
#include "pairlink/waku.h"
#include "pairlink/waku_node.h"
#include "support/support.h"
#include "waku/gossip.h"
#include "waku/metadata.h"

#define CT "/pairlink/1/test/proto"
#define TOPIC "/waku/2/rs/16/64"
#define MAXGOT 256

static bool verbose;
static pl_driver *drv; /* one per test, on its loop, shared by its nodes */

static void on_log(void *ud, const char *line) {
    if (verbose) fprintf(stderr, "[%s] %s\n", (const char *)ud, line);
}

/* ---- a node and what it saw ---- */

typedef struct tnode {
    pl_waku_node *n;
    char name[16];
    char addr[1200];
    char got[MAXGOT][48];
    int ngot;
    int up, down, refused, published, failed, mesh_events;
    pl_err last_down, last_refused, last_failed;
    pl_p2p_peer_id last_down_peer, last_refused_peer;
    bool closed;
} tnode;

static void on_message(void *ud, pl_waku_node *n, const pl_waku_delivery *d) {
    (void)n;
    tnode *t = ud;
    assert_string_equal(d->content_topic, CT);
    assert_string_equal(d->pubsub_topic, TOPIC);
    uint8_t h[PL_WAKU_HASH_BYTES];
    pl_waku_message_hash(h, d->pubsub_topic, d->msg);
    assert_memory_equal(h, d->hash, sizeof h);
    assert_true(t->ngot < MAXGOT);
    snprintf(t->got[t->ngot++], 48, "%.*s", (int)d->msg->payload_len,
             (const char *)d->msg->payload);
}

static void on_event(void *ud, pl_waku_node *n, const pl_waku_event *ev) {
    (void)n;
    tnode *t = ud;
    switch (ev->kind) {
    case PL_WAKU_EV_PEER_UP:
        t->up++;
        break;
    case PL_WAKU_EV_PEER_DOWN:
        t->down++;
        t->last_down = ev->err;
        t->last_down_peer = *ev->peer;
        break;
    case PL_WAKU_EV_PEER_REFUSED:
        t->refused++;
        t->last_refused = ev->err;
        t->last_refused_peer = *ev->peer;
        break;
    case PL_WAKU_EV_MESH:
        t->mesh_events++;
        break;
    case PL_WAKU_EV_PUBLISHED:
        t->published++;
        break;
    case PL_WAKU_EV_PUBLISH_FAILED:
        t->failed++;
        t->last_failed = ev->err;
        break;
    }
}

static void node_start_at(tnode *t, const char *name, const char *peer, pl_waku_node_opts *extra,
                          const char *listen) {
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    pl_waku_node_opts o;
    if (extra)
        o = *extra;
    else
        pl_waku_node_opts_init(&o);
    const char *peers[1] = {peer};
    if (peer) {
        o.peers = peers;
        o.n_peers = 1;
    }
    o.on_message = on_message;
    o.on_event = on_event;
    o.ud = t;
    o.on_log = on_log;
    o.log_ud = t->name;
    assert_int_equal(pl_waku_node_new(&t->n, drv, &o), PL_OK);
    assert_int_equal(pl_waku_node_listen(t->n, listen ? listen : "/ip4/127.0.0.1/tcp/0"), PL_OK);
    assert_int_equal(pl_waku_node_listen_addr(t->n, 0, t->addr, sizeof t->addr), 1);
}

static void node_start(tnode *t, uv_loop_t *loop, const char *name, const char *peer,
                       pl_waku_node_opts *extra) {
    (void)loop;
    node_start_at(t, name, peer, extra, NULL);
}

static void loop_start(uv_loop_t *loop) {
    uv_loop_init(loop);
    assert_int_equal(pl_driver_new(&drv, loop), PL_OK);
}

static void on_node_closed(void *ud) {
    ((tnode *)ud)->closed = true;
}

static int count_of(const tnode *t, const char *payload) {
    int k = 0;
    for (int i = 0; i < t->ngot; i++)
        k += !strcmp(t->got[i], payload);
    return k;
}

/* ---- running the loop until a condition holds ---- */

typedef bool (*cond_fn)(void *);

typedef struct waiter {
    cond_fn cond;
    void *arg;
    bool timed_out, fired;
} waiter;

static void on_check(uv_timer_t *t) {
    waiter *w = t->data;
    if (w->cond && w->cond(w->arg)) uv_stop(t->loop);
}

static void on_deadline(uv_timer_t *t) {
    waiter *w = t->data;
    w->fired = true;
    uv_stop(t->loop);
}

/* Run until cond holds, at most ms. It is checked every 2 ms: the drivers
 * do their work in prepare callbacks that may come after one of ours, so a
 * check before each wait could miss a change made just before the wait. */
static bool run_until(uv_loop_t *loop, cond_fn cond, void *arg, uint64_t ms) {
    waiter w = {cond, arg, false, false};
    uv_timer_t poll, tm;
    uv_timer_init(loop, &poll);
    uv_timer_init(loop, &tm);
    poll.data = tm.data = &w;
    uv_timer_start(&poll, on_check, 2, 2);
    uv_timer_start(&tm, on_deadline, ms, 0);
    if (!cond || !cond(arg)) uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&poll, NULL);
    uv_close((uv_handle_t *)&tm, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return !cond || cond(arg);
}

/* Run for ms regardless. */
static void run_for(uv_loop_t *loop, uint64_t ms) {
    (void)run_until(loop, NULL, NULL, ms);
}

typedef struct closing {
    tnode **ts;
    size_t n;
    const bool *extra; /* another thing that must have closed, or NULL */
} closing;

static bool all_closed(void *arg) {
    closing *c = arg;
    for (size_t i = 0; i < c->n; i++)
        if (!c->ts[i]->closed) return false;
    return !c->extra || *c->extra;
}

/* Close the nodes, then the driver; everything must be gone from the loop. */
static void close_all_and(uv_loop_t *loop, tnode **ts, size_t n, const bool *extra) {
    for (size_t i = 0; i < n; i++)
        if (ts[i]->n && !ts[i]->closed) pl_waku_node_close(ts[i]->n, on_node_closed, ts[i]);
    closing c = {ts, n, extra};
    assert_true(run_until(loop, all_closed, &c, 10000));
    pl_driver_close(drv, NULL, NULL);
    drv = NULL;
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void close_all(uv_loop_t *loop, tnode **ts, size_t n) {
    close_all_and(loop, ts, n, NULL);
}

static void publish(tnode *t, const char *text, bool *queued) {
    pl_waku_publish_result r;
    assert_int_equal(pl_waku_node_publish(t->n, CT, (const uint8_t *)text, strlen(text), NULL, &r),
                     PL_OK);
    if (queued) *queued = r.queued;
}

/* ---- a line, the queue and gossip repair ---- */

typedef struct want {
    tnode *t;
    int n;
} want;

static bool has_n(void *arg) {
    want *w = arg;
    return w->t->ngot >= w->n;
}

typedef struct mesh_want {
    tnode **ts;
    size_t n;
    size_t min;
} mesh_want;

static bool meshes_ready(void *arg) {
    mesh_want *m = arg;
    for (size_t i = 0; i < m->n; i++)
        if (m->ts[i]->n && !m->ts[i]->closed && pl_waku_node_mesh_size(m->ts[i]->n, TOPIC) < m->min)
            return false;
    return true;
}

static void test_line(void **state) {
    (void)state;
    uv_loop_t loop;
    loop_start(&loop);
    tnode *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b), *c = calloc(1, sizeof *c);
    node_start(b, &loop, "B", NULL, NULL);
    node_start(c, &loop, "C", b->addr, NULL);
    assert_int_equal(pl_waku_node_subscribe(c->n, CT), PL_OK);
    tnode *bc[] = {b, c};
    mesh_want m0 = {bc, 2, 1};
    assert_true(run_until(&loop, meshes_ready, &m0, 10000));
    /* published before A has any peer: queued, sent once B is there, and
     * relayed by B to C */
    node_start(a, &loop, "A", b->addr, NULL);
    bool queued = false;
    publish(a, "early", &queued);
    assert_true(queued);
    assert_int_equal(pl_waku_node_pending(a->n), 1);
    want w = {c, 1};
    assert_true(run_until(&loop, has_n, &w, 10000));
    assert_int_equal(a->published, 1);
    assert_int_equal(pl_waku_node_pending(a->n), 0);

    tnode *all[] = {a, b, c};
    mesh_want m = {all, 3, 1};
    assert_true(run_until(&loop, meshes_ready, &m, 10000));
    assert_int_equal(pl_waku_node_mesh_size(b->n, TOPIC), 2);
    char text[32];
    for (int i = 0; i < 20; i++) {
        snprintf(text, sizeof text, "m%d", i);
        publish(a, text, &queued);
        assert_false(queued);
    }
    w.n = 21;
    assert_true(run_until(&loop, has_n, &w, 10000));
    run_for(&loop, 1500); /* late duplicates would show now */
    assert_int_equal(c->ngot, 21);
    for (int i = 0; i < 20; i++) {
        snprintf(text, sizeof text, "m%d", i);
        assert_int_equal(count_of(c, text), 1);
    }
    assert_int_equal(a->ngot, 0);
    assert_int_equal(b->ngot, 0);
    pl_waku_node_stats st;
    pl_waku_node_stats_get(b->n, &st);
    assert_int_equal(st.peers, 2);
    assert_int_equal(st.filtered, 21);
    assert_true(st.forwarded >= 20);
    close_all(&loop, all, 3);
    free(a), free(b), free(c);
}

/* ---- a ring with a chord; one node leaves ---- */

#define RING 5

typedef struct ring_want {
    tnode **ts;
    int expect[RING]; /* messages each node must have; -1: skip */
} ring_want;

static bool ring_done(void *arg) {
    ring_want *r = arg;
    for (int i = 0; i < RING; i++)
        if (r->expect[i] >= 0 && r->ts[i]->ngot < r->expect[i]) return false;
    return true;
}

static void test_ring(void **state) {
    (void)state;
    uv_loop_t loop;
    loop_start(&loop);
    tnode *ts[RING];
    for (int i = 0; i < RING; i++)
        ts[i] = calloc(1, sizeof *ts[i]);
    char name[8];
    /* node i dials node i-1 (the first ring edge closes below), node 2
     * also dials node 4 (a chord) */
    for (int i = 0; i < RING; i++) {
        snprintf(name, sizeof name, "R%d", i);
        pl_waku_node_opts o;
        pl_waku_node_opts_init(&o);
        const char *peers[3];
        o.peers = peers;
        if (i > 0) peers[o.n_peers++] = ts[i - 1]->addr;
        if (i == RING - 1) peers[o.n_peers++] = ts[0]->addr;
        if (i == 4) peers[o.n_peers++] = ts[2]->addr;
        node_start(ts[i], &loop, name, NULL, &o);
        assert_int_equal(pl_waku_node_subscribe(ts[i]->n, CT), PL_OK);
    }
    mesh_want m = {ts, RING, 2};
    assert_true(run_until(&loop, meshes_ready, &m, 15000));
    char text[32];
    for (int k = 0; k < 10; k++) {
        snprintf(text, sizeof text, "a%d", k);
        publish(ts[0], text, NULL);
        snprintf(text, sizeof text, "b%d", k);
        publish(ts[3], text, NULL);
    }
    /* nodes 0 and 3 get the other's 10; the rest get 20 */
    ring_want r = {ts, {10, 20, 20, 10, 20}};
    assert_true(run_until(&loop, ring_done, &r, 10000));
    run_for(&loop, 1200);
    for (int i = 0; i < RING; i++) {
        assert_int_equal(ts[i]->ngot, r.expect[i]);
        for (int k = 0; k < 10; k++) {
            snprintf(text, sizeof text, "a%d", k);
            assert_int_equal(count_of(ts[i], text), i == 0 ? 0 : 1);
            snprintf(text, sizeof text, "b%d", k);
            assert_int_equal(count_of(ts[i], text), i == 3 ? 0 : 1);
        }
    }

    /* node 2 leaves; the others keep delivering */
    pl_waku_node_close(ts[2]->n, on_node_closed, ts[2]);
    for (int i = 0; i < RING; i++)
        ts[i]->ngot = 0;
    run_for(&loop, 1500);
    for (int k = 0; k < 10; k++) {
        snprintf(text, sizeof text, "c%d", k);
        publish(ts[1], text, NULL);
    }
    ring_want r2 = {ts, {10, -1, -1, 10, 10}};
    assert_true(run_until(&loop, ring_done, &r2, 10000));
    run_for(&loop, 1200);
    for (int i = 0; i < RING; i++) {
        if (i == 2) continue;
        assert_int_equal(ts[i]->ngot, i == 1 ? 0 : 10);
        for (int k = 0; k < 10; k++) {
            snprintf(text, sizeof text, "c%d", k);
            assert_int_equal(count_of(ts[i], text), i == 1 ? 0 : 1);
        }
    }
    close_all(&loop, ts, RING);
    for (int i = 0; i < RING; i++)
        free(ts[i]);
}

/* ---- a bootstrap peer that goes and comes back ---- */

static bool ups_at_least(void *arg) {
    want *w = arg;
    return w->t->up >= w->n;
}

static bool downs_at_least(void *arg) {
    want *w = arg;
    return w->t->down >= w->n;
}

static void test_reconnect(void **state) {
    (void)state;
    uv_loop_t loop;
    loop_start(&loop);
    pl_p2p_key *key;
    assert_int_equal(pl_p2p_key_generate(&key, PL_P2P_KEY_ED25519), PL_OK);
    tnode *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b), *b2 = calloc(1, sizeof *b2);
    pl_waku_node_opts o;
    pl_waku_node_opts_init(&o);
    o.key = key;
    node_start(b, &loop, "B", NULL, &o);
    pl_waku_node_opts oa;
    pl_waku_node_opts_init(&oa);
    oa.reconnect_min_ms = 100;
    oa.reconnect_max_ms = 400;
    node_start(a, &loop, "A", b->addr, &oa);
    want w = {a, 1};
    assert_true(run_until(&loop, ups_at_least, &w, 10000));
    /* B goes; A notices, retries (and fails) while B is away */
    char listen[1200];
    snprintf(listen, sizeof listen, "%s", b->addr);
    *strstr(listen, "/p2p/") = '\0';
    pl_waku_node_close(b->n, on_node_closed, b);
    assert_true(run_until(&loop, downs_at_least, &w, 10000));
    run_for(&loop, 800);
    assert_true(a->refused >= 1); /* failed redials */
    /* B comes back at the same address with the same key */
    node_start_at(b2, "B2", NULL, &o, listen);
    assert_int_equal(pl_waku_node_subscribe(b2->n, CT), PL_OK);
    w.n = 2;
    assert_true(run_until(&loop, ups_at_least, &w, 10000));
    /* and it works */
    run_for(&loop, 300);
    publish(a, "again", NULL);
    want wb = {b2, 1};
    assert_true(run_until(&loop, has_n, &wb, 5000));
    tnode *all[] = {a, b, b2};
    close_all(&loop, all, 3);
    pl_p2p_key_free(key);
    free(a), free(b), free(b2);
}

/* ---- hostile peers ------------------------------------------------------------ */

typedef enum attack {
    A_CLUSTER = 1, /* metadata names cluster 1 */
    A_SILENT,      /* never answers metadata */
    A_SIGNED,      /* signed messages */
    A_OVERSIZED,   /* messages above 150 KiB */
    A_NOT_WAKU,    /* message data that is not a WakuMessage */
    A_PROTOBUF,    /* an RPC that is not a protobuf */
    A_FRAME,       /* a length prefix above the RPC bound */
    A_GRAFT,       /* GRAFTs during the backoff it asked for */
    A_IWANT,       /* IWANT floods for one message */
} attack;

#define HQ 64

typedef struct hostile {
    attack kind;
    pl_p2p_host *h;
    pl_p2p_key *key;
    pl_p2p_peer_id id;
    pl_p2p_conn_id conn;
    pl_p2p_stream_id out;
    bool opened, disconnected, closed, iwant_sent;
    pl_err disc_err;
    uint8_t *q[HQ]; /* framed RPCs waiting for room */
    size_t qlen[HQ], nq, qoff;
    /* what the node sent us */
    int msgs, prunes;
    uint8_t first_id[PL__GOSSIP_ID_BYTES];
    bool have_id;
    int copies_of_first;
} hostile;

static void h_pump(hostile *x) {
    while (x->out && x->nq) {
        size_t taken = 0;
        pl_err e =
            pl_p2p_stream_write(x->h, x->out, x->q[0] + x->qoff, x->qlen[0] - x->qoff, &taken);
        if (e != PL_OK) return;
        x->qoff += taken;
        if (x->qoff < x->qlen[0]) return;
        free(x->q[0]);
        memmove(&x->q[0], &x->q[1], (x->nq - 1) * sizeof x->q[0]);
        memmove(&x->qlen[0], &x->qlen[1], (x->nq - 1) * sizeof x->qlen[0]);
        x->nq--;
        x->qoff = 0;
    }
}

static void h_queue_raw(hostile *x, uint8_t *buf, size_t len) {
    assert_true(x->nq < HQ);
    x->q[x->nq] = buf;
    x->qlen[x->nq++] = len;
}

static void h_queue(hostile *x, const Gossip__Pb__RPC *rpc) {
    size_t body = gossip__pb__rpc__get_packed_size(rpc);
    uint8_t *buf = malloc(body + 10);
    size_t hl = pl__gossip_frame_header(buf, body);
    gossip__pb__rpc__pack(rpc, buf + hl);
    h_queue_raw(x, buf, hl + body);
}

static ProtobufCBinaryData bin(const void *p, size_t n) {
    ProtobufCBinaryData b = {n, (uint8_t *)p};
    return b;
}

static void h_subscribe(hostile *x) {
    Gossip__Pb__RPC rpc = GOSSIP__PB__RPC__INIT;
    Gossip__Pb__RPC__SubOpts so = GOSSIP__PB__RPC__SUB_OPTS__INIT;
    so.has_subscribe = so.subscribe = true;
    so.has_topicid = true;
    so.topicid = bin(TOPIC, strlen(TOPIC));
    Gossip__Pb__RPC__SubOpts *sos[] = {&so};
    rpc.subscriptions = sos;
    rpc.n_subscriptions = 1;
    h_queue(x, &rpc);
}

static void h_message(hostile *x, const uint8_t *data, size_t len, bool signed_) {
    Gossip__Pb__RPC rpc = GOSSIP__PB__RPC__INIT;
    Gossip__Pb__Message m = GOSSIP__PB__MESSAGE__INIT;
    m.has_data = true;
    m.data = bin(data, len);
    m.has_topic = true;
    m.topic = bin(TOPIC, strlen(TOPIC));
    uint8_t seq[8] = {1, 2, 3, 4, 5, 6, 7, 8}, sig[64] = {9};
    if (signed_) {
        m.has_from = m.has_seqno = m.has_signature = true;
        m.from = bin(x->id.bytes, x->id.len);
        m.seqno = bin(seq, sizeof seq);
        m.signature = bin(sig, sizeof sig);
    }
    Gossip__Pb__Message *ms[] = {&m};
    rpc.publish = ms;
    rpc.n_publish = 1;
    h_queue(x, &rpc);
}

static void h_control(hostile *x, bool graft, bool prune, const uint8_t (*ids)[32], size_t nids) {
    Gossip__Pb__RPC rpc = GOSSIP__PB__RPC__INIT;
    Gossip__Pb__ControlMessage cm = GOSSIP__PB__CONTROL_MESSAGE__INIT;
    Gossip__Pb__ControlGraft g = GOSSIP__PB__CONTROL_GRAFT__INIT;
    Gossip__Pb__ControlPrune p = GOSSIP__PB__CONTROL_PRUNE__INIT;
    Gossip__Pb__ControlIWant iw = GOSSIP__PB__CONTROL_IWANT__INIT;
    Gossip__Pb__ControlGraft *gs[] = {&g};
    Gossip__Pb__ControlPrune *ps[] = {&p};
    Gossip__Pb__ControlIWant *iws[] = {&iw};
    g.has_topicid = p.has_topicid = true;
    g.topicid = p.topicid = bin(TOPIC, strlen(TOPIC));
    p.has_backoff = true;
    p.backoff = 60;
    if (graft) cm.graft = gs, cm.n_graft = 1;
    if (prune) cm.prune = ps, cm.n_prune = 1;
    ProtobufCBinaryData *bids = NULL;
    if (nids) {
        bids = malloc(nids * sizeof *bids);
        for (size_t i = 0; i < nids; i++)
            bids[i] = bin(ids[i], 32);
        iw.messageids = bids;
        iw.n_messageids = nids;
        cm.iwant = iws, cm.n_iwant = 1;
    }
    rpc.control = &cm;
    h_queue(x, &rpc);
    free(bids);
}

static size_t waku_bytes(uint8_t *out, size_t cap, const char *text, size_t pad) {
    uint8_t *payload = malloc(pad + 64);
    memset(payload, 'p', pad + 64);
    size_t pl = (size_t)snprintf((char *)payload, pad + 64, "%s", text);
    if (pad > pl) pl = pad;
    pl_waku_message m = {.payload = payload,
                         .payload_len = pl,
                         .has_payload = true,
                         .content_topic = CT,
                         .content_topic_len = strlen(CT)};
    size_t len = 0;
    if (pl + 256 < PL_WAKU_MESSAGE_MAX) {
        assert_int_equal(pl_waku_message_encode(out, cap, &len, &m), PL_OK);
    } else {
        /* Above what our encoder writes: the protobuf by hand. */
        assert_true(pl + strlen(CT) + 16 <= cap);
        out[len++] = 0x0a;
        len += pl_uvarint_encode(out + len, pl);
        memcpy(out + len, payload, pl);
        len += pl;
        out[len++] = 0x12;
        len += pl_uvarint_encode(out + len, strlen(CT));
        memcpy(out + len, CT, strlen(CT));
        len += strlen(CT);
    }
    free(payload);
    return len;
}

/* The attack's RPCs, queued once our relay stream is open. */
static void h_attack(hostile *x) {
    static uint8_t big[PL_WAKU_MESSAGE_MAX + 4096];
    uint8_t small[256];
    char text[32];
    switch (x->kind) {
    case A_CLUSTER:
    case A_SILENT:
        break;
    case A_SIGNED:
        h_subscribe(x);
        for (int i = 0; i < 15; i++) {
            snprintf(text, sizeof text, "signed %d", i);
            size_t n = waku_bytes(small, sizeof small, text, 0);
            h_message(x, small, n, true);
        }
        break;
    case A_OVERSIZED:
        h_subscribe(x);
        for (int i = 0; i < 14; i++) {
            snprintf(text, sizeof text, "big %d", i);
            size_t n = waku_bytes(big, sizeof big, text, PL_WAKU_MESSAGE_MAX + 1024);
            h_message(x, big, n, false);
        }
        break;
    case A_NOT_WAKU:
        h_subscribe(x);
        for (int i = 0; i < 15; i++) {
            snprintf(text, sizeof text, "\xff\xff not waku %d", i);
            h_message(x, (const uint8_t *)text, strlen(text), false);
        }
        break;
    case A_PROTOBUF: {
        h_subscribe(x);
        uint8_t *junk = malloc(4);
        memcpy(junk, "\x03\x0f\x01\x02", 4); /* a frame of 3 bytes: wire type 7 */
        h_queue_raw(x, junk, 4);
        break;
    }
    case A_FRAME: {
        uint8_t *junk = malloc(16);
        size_t hl = pl__gossip_frame_header(junk, 2u << 20);
        memset(junk + hl, 0, 16 - hl);
        h_queue_raw(x, junk, 16);
        break;
    }
    case A_GRAFT:
        h_subscribe(x);
        h_control(x, false, true, NULL, 0);
        for (int i = 0; i < 40; i++)
            h_control(x, true, false, NULL, 0);
        break;
    case A_IWANT:
        h_subscribe(x); /* the flood follows the first message we get */
        break;
    }
    h_pump(x);
}

static void h_iwant_flood(hostile *x) {
    x->iwant_sent = true;
    const uint8_t(*id)[32] = (const uint8_t(*)[32])x->first_id;
    for (int i = 0; i < 50; i++)
        h_control(x, false, false, id, 1);
    /* and one RPC above the id bound */
    size_t n = 10001;
    uint8_t(*many)[32] = malloc(n * 32);
    for (size_t i = 0; i < n; i++)
        memcpy(many[i], x->first_id, 32);
    h_control(x, false, false, (const uint8_t(*)[32])many, n);
    free(many);
    h_pump(x);
}

static void h_out_cb(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    (void)h;
    hostile *x = ud;
    if (ev->kind == PL_P2P_STREAM_OPENED) {
        x->opened = true;
        h_attack(x);
    } else if (ev->kind == PL_P2P_STREAM_WRITABLE) {
        h_pump(x);
    } else if (ev->kind == PL_P2P_STREAM_CLOSED) {
        x->out = 0;
    }
}

/* The node's relay stream to us: count the messages and PRUNEs. */
static void h_relay_in(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    hostile *x = ud;
    if (ev->kind != PL_P2P_STREAM_READABLE) return;
    for (;;) {
        const uint8_t *m;
        size_t len;
        if (pl_p2p_stream_read_msg(h, ev->stream, 2u << 20, &m, &len) != PL_OK || !m) return;
        Gossip__Pb__RPC *rpc = gossip__pb__rpc__unpack(NULL, len, m);
        assert_non_null(rpc);
        for (size_t i = 0; i < rpc->n_publish; i++) {
            x->msgs++;
            uint8_t id[32];
            pl_sha256(id, rpc->publish[i]->data.data, rpc->publish[i]->data.len);
            if (!x->have_id) {
                memcpy(x->first_id, id, 32);
                x->have_id = true;
            }
            if (!memcmp(id, x->first_id, 32)) x->copies_of_first++;
        }
        if (rpc->control) x->prunes += (int)rpc->control->n_prune;
        gossip__pb__rpc__free_unpacked(rpc, NULL);
    }
}

static void h_meta_in(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    hostile *x = ud;
    if (ev->kind != PL_P2P_STREAM_OPENED || x->kind == A_SILENT) return;
    pl__waku_metadata *md = calloc(1, sizeof *md);
    md->has_cluster = true;
    md->cluster = x->kind == A_CLUSTER ? 1 : 16;
    md->n_shards = 1;
    md->shards[0] = 64;
    uint8_t buf[64];
    size_t len = 0;
    assert_int_equal(pl__waku_metadata_encode(buf, sizeof buf, &len, md), PL_OK);
    free(md);
    assert_int_equal(pl_p2p_stream_write_msg(h, ev->stream, buf, len), PL_OK);
    (void)pl_p2p_stream_close(h, ev->stream);
}

static void h_event(void *ud, pl_p2p_host *h, const pl_p2p_event *ev) {
    hostile *x = ud;
    if (ev->kind == PL_P2P_EV_CONNECTED) {
        static const char *const proto[] = {PL__GOSSIP_PROTOCOL};
        assert_int_equal(pl_p2p_stream_open(h, ev->conn, proto, 1, h_out_cb, x, &x->out), PL_OK);
    } else if (ev->kind == PL_P2P_EV_DISCONNECTED) {
        x->disconnected = true;
        x->disc_err = ev->err;
        x->out = 0;
    }
}

static void h_closed(void *ud) {
    ((hostile *)ud)->closed = true;
}

typedef struct attack_run {
    tnode *t, *g;
    hostile *x;
    pl_err expect;
    bool refused; /* expect REFUSED (before relay) rather than PEER_DOWN */
} attack_run;

static bool attack_done(void *arg) {
    attack_run *r = arg;
    if (r->x->kind == A_IWANT) {
        if (r->x->have_id && !r->x->iwant_sent) h_iwant_flood(r->x);
        return false; /* runs for its time */
    }
    const tnode *t = r->t;
    if (r->refused) return t->refused > 0 && pl_p2p_peer_id_equal(&t->last_refused_peer, &r->x->id);
    return t->down > 0 && pl_p2p_peer_id_equal(&t->last_down_peer, &r->x->id);
}

/* The node under test publishes a tick every 100 ms; its good peer counts
 * them. */
typedef struct ticker {
    uv_timer_t tm;
    tnode *t;
    int n;
} ticker;

static void on_tick(uv_timer_t *tm) {
    ticker *k = tm->data;
    char text[32];
    snprintf(text, sizeof text, "tick %d", k->n++);
    pl_waku_publish_result r;
    (void)pl_waku_node_publish(k->t->n, CT, (const uint8_t *)text, strlen(text), NULL, &r);
}

static void run_attack(attack kind, pl_err expect, bool refused) {
    uv_loop_t loop;
    loop_start(&loop);
    tnode *t = calloc(1, sizeof *t), *g = calloc(1, sizeof *g);
    pl_waku_node_opts o;
    pl_waku_node_opts_init(&o);
    o.metadata_timeout_ms = 500;
    node_start(t, &loop, "T", NULL, &o);
    node_start(g, &loop, "G", t->addr, NULL);
    assert_int_equal(pl_waku_node_subscribe(g->n, CT), PL_OK);
    want wg = {g, 1};
    assert_true(run_until(&loop, ups_at_least, &wg, 10000));

    ticker k = {.t = t};
    uv_timer_init(&loop, &k.tm);
    k.tm.data = &k;
    uv_timer_start(&k.tm, on_tick, 100, 100);
    want w1 = {g, 3};
    assert_true(run_until(&loop, has_n, &w1, 10000));

    hostile *x = calloc(1, sizeof *x);
    x->kind = kind;
    assert_int_equal(pl_p2p_key_generate(&x->key, PL_P2P_KEY_ED25519), PL_OK);
    pl_p2p_key_peer_id(x->key, &x->id);
    pl_p2p_host_opts ho = {
        .key = x->key, .on_event = h_event, .ud = x, .on_log = on_log, .log_ud = "H"};
    assert_int_equal(pl_p2p_host_new(&x->h, drv, &ho), PL_OK);
    assert_int_equal(pl_p2p_host_handle(x->h, PL__GOSSIP_PROTOCOL, h_relay_in, x), PL_OK);
    assert_int_equal(pl_p2p_host_handle(x->h, PL__WAKU_METADATA_PROTOCOL, h_meta_in, x), PL_OK);
    assert_int_equal(pl_p2p_host_dial(x->h, t->addr, &x->conn), PL_OK);

    attack_run r = {t, g, x, expect, refused};
    if (kind == A_IWANT) {
        (void)run_until(&loop, attack_done, &r, 3000);
        assert_true(x->iwant_sent);
        /* one flood-published copy, then at most 3 IWANT answers */
        assert_true(x->copies_of_first >= 1);
        assert_int_equal(x->copies_of_first, 4);
    } else {
        assert_true(run_until(&loop, attack_done, &r, 15000));
        if (refused)
            assert_int_equal(t->last_refused, expect);
        else
            assert_int_equal(t->last_down, expect);
    }
    /* the good peer is unaffected: still connected and receiving */
    int before = g->ngot;
    want w2 = {g, before + 5};
    assert_true(run_until(&loop, has_n, &w2, 10000));
    assert_int_equal(g->down, 0);
    assert_int_equal(pl_waku_node_peer_count(g->n), 1);

    uv_close((uv_handle_t *)&k.tm, NULL);
    pl_p2p_host_close(x->h, h_closed, x);
    tnode *all[] = {t, g};
    close_all_and(&loop, all, 2, &x->closed);
    assert_true(x->closed);
    while (x->nq)
        free(x->q[--x->nq]);
    pl_p2p_key_free(x->key);
    free(x), free(t), free(g);
}

static void test_hostile_cluster(void **s) {
    (void)s;
    run_attack(A_CLUSTER, PL_ERR_WAKU_CLUSTER, true);
}
static void test_hostile_silent(void **s) {
    (void)s;
    run_attack(A_SILENT, PL_ERR_WAKU_METADATA, true);
}
static void test_hostile_signed(void **s) {
    (void)s;
    run_attack(A_SIGNED, PL_ERR_GOSSIP_SCORE, false);
}
static void test_hostile_oversized(void **s) {
    (void)s;
    run_attack(A_OVERSIZED, PL_ERR_GOSSIP_SCORE, false);
}
static void test_hostile_not_waku(void **s) {
    (void)s;
    run_attack(A_NOT_WAKU, PL_ERR_GOSSIP_SCORE, false);
}
static void test_hostile_protobuf(void **s) {
    (void)s;
    run_attack(A_PROTOBUF, PL_ERR_P2P_PROTOBUF, false);
}
static void test_hostile_frame(void **s) {
    (void)s;
    run_attack(A_FRAME, PL_ERR_TOO_LARGE, false);
}
static void test_hostile_graft_flood(void **s) {
    (void)s;
    run_attack(A_GRAFT, PL_ERR_GOSSIP_SCORE, false);
}
static void test_hostile_iwant_flood(void **s) {
    (void)s;
    run_attack(A_IWANT, PL_OK, false);
}

int main(void) {
    verbose = getenv("PL_TEST_VERBOSE") != NULL;
    signal(SIGPIPE, SIG_IGN); /* closed peers: write errors, not signals */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line),
        cmocka_unit_test(test_ring),
        cmocka_unit_test(test_reconnect),
        cmocka_unit_test(test_hostile_cluster),
        cmocka_unit_test(test_hostile_silent),
        cmocka_unit_test(test_hostile_signed),
        cmocka_unit_test(test_hostile_oversized),
        cmocka_unit_test(test_hostile_not_waku),
        cmocka_unit_test(test_hostile_protobuf),
        cmocka_unit_test(test_hostile_frame),
        cmocka_unit_test(test_hostile_graft_flood),
        cmocka_unit_test(test_hostile_iwant_flood),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
