/* SPDX-License-Identifier: Apache-2.0 */
/* The Waku node's policy core (src/waku/node.c) without sockets: cores
 * wired by this harness (metadata answered from the other core, relay
 * RPCs moved across, disconnections applied to both ends) on an explicit
 * clock. Seeded: PL_TEST_SEED repeats a run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pairlink/waku.h"
#include "support/support.h"
#include "waku/gossip.h"
#include "waku/metadata.h"
#include "waku/node.h"

#define MAXN 6
#define MAXL 16
#define MAXQ 64
#define MAXMSG 64
#define CT "/pairlink/1/test/proto"
#define CT2 "/pairlink/1/other/proto"
#define TOPIC "/waku/2/rs/16/64"

static uint64_t seed;

static void rng(void *ctx, uint8_t *buf, size_t len) {
    pl_test_rand_bytes(ctx, buf, len);
}

typedef struct rpcq {
    uint8_t *m[MAXQ];
    size_t len[MAXQ];
    size_t n;
} rpcq;

typedef struct wlink {
    uint64_t conn;
    int a, b; /* a dialled b */
    bool up;
    rpcq q[2]; /* [0]: to a, [1]: to b */
} wlink;

typedef struct rec {
    char ct[64];
    char payload[64];
    char topic[PL__GOSSIP_TOPIC_MAX + 1];
} rec;

typedef struct wnet {
    int n;
    pl__wnode *w[MAXN];
    pl_p2p_peer_id id[MAXN];
    uint16_t cluster[MAXN];
    bool silent[MAXN];  /* never answers metadata */
    bool garbled[MAXN]; /* answers metadata with junk */
    uint64_t rs[MAXN];
    wlink l[MAXL];
    int nl;
    int64_t now;
    /* what came out */
    rec msgs[MAXN][MAXMSG];
    int nmsgs[MAXN];
    int published[MAXN], failed[MAXN], refused[MAXN], up[MAXN], down[MAXN];
    pl_err last_failed[MAXN], last_refused[MAXN], last_disconnect[MAXN];
    int sent_to[MAXN];
    int dials[MAXN];
    size_t last_dial_boot[MAXN];
    int64_t dial_at[MAXN][32];
} wnet;

static void fake_id(pl_p2p_peer_id *id, int i) {
    memset(id, 0, sizeof *id);
    id->len = 38;
    id->bytes[0] = 0x00;
    id->bytes[1] = 0x24;
    id->bytes[37] = (uint8_t)(i + 1);
}

static pl__gossip_config gossip_cfg(wnet *net, int i) {
    pl__gossip_config g;
    pl__gossip_config_default(&g);
    g.validate = pl__waku_gossip_validate;
    g.rng = rng;
    g.rng_ctx = &net->rs[i];
    return g;
}

static void node_new_cfg(wnet *net, int i, pl__wnode_config *c) {
    net->rs[i] = seed + (uint64_t)i * 7919 + 1;
    fake_id(&net->id[i], i);
    c->self = net->id[i];
    pl__gossip_config g = gossip_cfg(net, i);
    c->gossip = &g;
    net->cluster[i] = c->sharding.cluster;
    assert_int_equal(pl__wnode_new(&net->w[i], c, net->now), PL_OK);
    if (i >= net->n) net->n = i + 1;
}

static void node_new(wnet *net, int i) {
    pl__wnode_config c;
    pl__wnode_config_default(&c);
    node_new_cfg(net, i, &c);
}

static wnet *net_new(void) {
    wnet *net = calloc(1, sizeof *net);
    assert_non_null(net);
    net->now = 1000000;
    return net;
}

static void net_free(wnet *net) {
    for (int i = 0; i < net->n; i++)
        pl__wnode_free(net->w[i]);
    for (int k = 0; k < net->nl; k++)
        for (int d = 0; d < 2; d++)
            for (size_t j = 0; j < net->l[k].q[d].n; j++)
                free(net->l[k].q[d].m[j]);
    free(net);
}

static wlink *link_of(wnet *net, uint64_t conn) {
    for (int k = 0; k < net->nl; k++)
        if (net->l[k].conn == conn) return &net->l[k];
    return NULL;
}

/* a dials b: connection `conn` on both. */
static wlink *connect_(wnet *net, int a, int b) {
    assert_true(net->nl < MAXL);
    wlink *l = &net->l[net->nl++];
    memset(l, 0, sizeof *l);
    l->conn = 100 + (uint64_t)net->nl;
    l->a = a, l->b = b;
    l->up = true;
    pl__wnode_conn_up(net->w[a], l->conn, &net->id[b], false, net->now);
    pl__wnode_conn_up(net->w[b], l->conn, &net->id[a], true, net->now);
    return l;
}

static void link_down(wnet *net, wlink *l, int closer, pl_err reason) {
    if (!l->up) return;
    l->up = false;
    int other = closer == l->a ? l->b : l->a;
    pl__wnode_conn_down(net->w[closer], l->conn, reason, net->now);
    pl__wnode_conn_down(net->w[other], l->conn, PL_ERR_CLOSED, net->now);
}

static void handle(wnet *net, int i, pl__wnode_out *o) {
    wlink *l = o->conn ? link_of(net, o->conn) : NULL;
    int j = l ? (l->a == i ? l->b : l->a) : -1;
    switch (o->kind) {
    case PL__WNODE_DIAL:
        net->last_dial_boot[i] = o->boot;
        if (net->dials[i] < 32) net->dial_at[i][net->dials[i]] = net->now;
        net->dials[i]++;
        break;
    case PL__WNODE_OPEN_METADATA: {
        if (!l || !l->up) break;
        uint8_t buf[PL__WAKU_METADATA_MAX_BYTES];
        size_t len = 0;
        assert_int_equal(pl__wnode_metadata_ours(net->w[j], buf, sizeof buf, &len), PL_OK);
        /* the other side's request reaches it as well */
        uint8_t mine[PL__WAKU_METADATA_MAX_BYTES];
        size_t mlen = 0;
        assert_int_equal(pl__wnode_metadata_ours(net->w[i], mine, sizeof mine, &mlen), PL_OK);
        (void)pl__wnode_metadata_request(net->w[j], l->conn, mine, mlen, net->now);
        if (net->silent[j]) break;
        if (net->garbled[j])
            (void)pl__wnode_metadata_answer(net->w[i], l->conn, (const uint8_t *)"\xff\xff", 2,
                                            net->now);
        else
            (void)pl__wnode_metadata_answer(net->w[i], l->conn, buf, len, net->now);
        break;
    }
    case PL__WNODE_OPEN_RELAY:
        if (l && l->up) pl__wnode_relay_opened(net->w[i], l->conn, net->now);
        break;
    case PL__WNODE_SEND: {
        if (!l || !l->up) break;
        size_t hl, bl;
        assert_int_equal(pl__gossip_unframe(o->data, o->len, 1 << 21, &hl, &bl), PL_OK);
        rpcq *q = &l->q[j == l->a ? 0 : 1];
        assert_true(q->n < MAXQ);
        q->m[q->n] = malloc(bl + 1);
        memcpy(q->m[q->n], o->data + hl, bl);
        q->len[q->n++] = bl;
        pl__wnode_sent(net->w[i], o->conn, o->len);
        break;
    }
    case PL__WNODE_DISCONNECT:
        net->last_disconnect[i] = o->err;
        if (l) link_down(net, l, i, o->err);
        break;
    case PL__WNODE_MESSAGE: {
        assert_true(net->nmsgs[i] < MAXMSG);
        rec *r = &net->msgs[i][net->nmsgs[i]++];
        snprintf(r->ct, sizeof r->ct, "%.*s", (int)o->msg.content_topic_len, o->msg.content_topic);
        snprintf(r->payload, sizeof r->payload, "%.*s", (int)o->msg.payload_len,
                 (const char *)o->msg.payload);
        snprintf(r->topic, sizeof r->topic, "%s", o->pubsub_topic);
        uint8_t h[PL_WAKU_HASH_BYTES];
        pl_waku_message_hash(h, o->pubsub_topic, &o->msg);
        assert_memory_equal(h, o->hash, sizeof h);
        break;
    }
    case PL__WNODE_PUBLISHED:
        net->published[i]++;
        net->sent_to[i] = (int)o->sent_to;
        break;
    case PL__WNODE_PUBLISH_FAILED:
        net->failed[i]++;
        net->last_failed[i] = o->err;
        break;
    case PL__WNODE_PEER_UP:
        net->up[i]++;
        break;
    case PL__WNODE_PEER_DOWN:
        net->down[i]++;
        break;
    case PL__WNODE_REFUSED:
        net->refused[i]++;
        net->last_refused[i] = o->err;
        break;
    case PL__WNODE_GRAFTED:
    case PL__WNODE_PRUNED:
        break;
    }
}

/* Move every output and every queued RPC until nothing moves. */
static void pump(wnet *net) {
    for (bool moved = true; moved;) {
        moved = false;
        for (int i = 0; i < net->n; i++) {
            pl__wnode_out o;
            while (pl__wnode_pop(net->w[i], &o)) {
                moved = true;
                handle(net, i, &o);
                pl__wnode_out_release(&o);
            }
        }
        for (int k = 0; k < net->nl; k++) {
            wlink *l = &net->l[k];
            for (int d = 0; d < 2; d++) {
                rpcq *q = &l->q[d];
                int to = d == 0 ? l->a : l->b;
                while (q->n && l->up && pl__wnode_relay_ready(net->w[to], l->conn)) {
                    uint8_t *m = q->m[0];
                    size_t len = q->len[0];
                    memmove(&q->m[0], &q->m[1], (q->n - 1) * sizeof q->m[0]);
                    memmove(&q->len[0], &q->len[1], (q->n - 1) * sizeof q->len[0]);
                    q->n--;
                    (void)pl__wnode_relay_rpc(net->w[to], l->conn, m, len, net->now);
                    free(m);
                    moved = true;
                }
                if (!l->up)
                    while (q->n)
                        free(q->m[--q->n]);
            }
        }
    }
}

static void advance(wnet *net, int64_t ms) {
    int64_t end = net->now + ms;
    while (net->now < end) {
        int64_t next = end;
        for (int i = 0; i < net->n; i++) {
            int64_t d = pl__wnode_next_deadline(net->w[i]);
            if (d < next) next = d;
        }
        if (next > net->now) net->now = next;
        for (int i = 0; i < net->n; i++)
            if (pl__wnode_next_deadline(net->w[i]) <= net->now)
                pl__wnode_on_timer(net->w[i], net->now);
        pump(net);
        if (next == end) break;
    }
    net->now = end;
}

static pl_err publish(wnet *net, int i, const char *ct, const char *text, pl__wnode_pub *r) {
    pl_waku_message m = {.payload = (const uint8_t *)text,
                         .payload_len = strlen(text),
                         .has_payload = true,
                         .content_topic = ct,
                         .content_topic_len = strlen(ct),
                         .timestamp = net->now * 1000000};
    pl__wnode_pub tmp;
    pl_err e = pl__wnode_publish(net->w[i], &m, net->now, r ? r : &tmp);
    pump(net);
    return e;
}

static int count_payload(wnet *net, int i, const char *p) {
    int k = 0;
    for (int j = 0; j < net->nmsgs[i]; j++)
        k += !strcmp(net->msgs[i][j].payload, p);
    return k;
}

/* ---- tests ---- */

static void test_metadata_policy(void **state) {
    (void)state;
    wnet *net = net_new();
    node_new(net, 0);
    pl__wnode_config c;
    pl__wnode_config_default(&c);
    c.sharding.cluster = 1;
    node_new_cfg(net, 1, &c);
    node_new(net, 2);
    node_new(net, 3);
    net->silent[2] = true;
    net->garbled[3] = true;

    /* another cluster: both ends refuse */
    connect_(net, 0, 1);
    pump(net);
    assert_int_equal(net->refused[0], 1);
    assert_int_equal(net->last_refused[0], PL_ERR_WAKU_CLUSTER);
    assert_int_equal(net->refused[1], 1);
    assert_int_equal(net->last_refused[1], PL_ERR_WAKU_CLUSTER);
    assert_int_equal(net->up[0], 0);
    assert_int_equal(pl__wnode_relay_peers(net->w[0]), 0);

    /* a silent peer: dropped after the metadata time-out, not before */
    wlink *l = connect_(net, 0, 2);
    pump(net);
    assert_true(l->up);
    advance(net, PL__WNODE_DEF_METADATA_TIMEOUT_MS - 100);
    assert_true(l->up);
    advance(net, 200);
    assert_false(l->up);
    assert_int_equal(net->last_disconnect[0], PL_ERR_WAKU_METADATA);

    /* junk for an answer */
    connect_(net, 0, 3);
    pump(net);
    assert_int_equal(net->last_refused[0], PL_ERR_WAKU_METADATA);

    /* no answer at all (stream refused) */
    node_new(net, 4);
    net->silent[4] = true;
    l = connect_(net, 0, 4);
    pump(net);
    assert_int_equal(pl__wnode_metadata_answer(net->w[0], l->conn, NULL, 0, net->now),
                     PL_ERR_WAKU_METADATA);
    pump(net);
    assert_false(l->up);
    net_free(net);
}

static void test_relay_line_and_filtering(void **state) {
    (void)state;
    wnet *net = net_new();
    for (int i = 0; i < 3; i++)
        node_new(net, i);
    connect_(net, 0, 1);
    connect_(net, 1, 2);
    pump(net);
    assert_int_equal(net->up[0], 1);
    assert_int_equal(net->up[1], 2);
    assert_int_equal(net->up[2], 1);
    assert_int_equal(pl__wnode_subscribe(net->w[2], CT, strlen(CT), net->now), PL_OK);
    assert_int_equal(pl__wnode_subscribe(net->w[2], CT, strlen(CT), net->now), PL_ERR_EXISTS);
    assert_int_equal(pl__wnode_subscribe(net->w[2], PL__WNODE_KEEPALIVE_TOPIC,
                                         strlen(PL__WNODE_KEEPALIVE_TOPIC), net->now),
                     PL_OK);
    assert_int_equal(pl__wnode_subscribe(net->w[2], "bad", 3, net->now), PL_ERR_WAKU_TOPIC);
    pump(net);
    advance(net, 2000); /* meshes form at the heartbeat */
    assert_int_equal(pl__wnode_mesh_size(net->w[1], TOPIC), 2);

    pl__wnode_pub r;
    assert_int_equal(publish(net, 0, CT, "one", &r), PL_OK);
    assert_false(r.queued);
    assert_int_equal(r.sent_to, 1);
    assert_string_equal(r.pubsub_topic, TOPIC);
    assert_int_equal(publish(net, 0, CT2, "not subscribed", NULL), PL_OK);
    assert_int_equal(publish(net, 0, PL__WNODE_KEEPALIVE_TOPIC, "ping", NULL), PL_OK);
    assert_int_equal(publish(net, 0, CT, "one", &r), PL_ERR_EXISTS); /* same bytes, same time */
    advance(net, 100);
    assert_int_equal(net->nmsgs[2], 1);
    assert_int_equal(count_payload(net, 2, "one"), 1);
    assert_string_equal(net->msgs[2][0].ct, CT);
    assert_string_equal(net->msgs[2][0].topic, TOPIC);
    assert_int_equal(net->nmsgs[1], 0); /* the relay subscribed to nothing */
    assert_int_equal(net->nmsgs[0], 0); /* own messages are not delivered back */
    pl__wnode_stats st;
    pl__wnode_stats_get(net->w[2], &st);
    assert_int_equal(st.keepalives, 1);
    assert_int_equal(st.filtered, 1);
    assert_int_equal(st.delivered, 1);
    pl__wnode_stats_get(net->w[1], &st);
    assert_int_equal(st.filtered, 2);
    assert_int_equal(st.keepalives, 1);

    /* unsubscribing stops the deliveries (the shard is still relayed) */
    assert_int_equal(pl__wnode_unsubscribe(net->w[2], CT, strlen(CT), net->now), PL_OK);
    assert_int_equal(pl__wnode_unsubscribe(net->w[2], CT, strlen(CT), net->now), PL_ERR_NOT_FOUND);
    assert_int_equal(publish(net, 0, CT, "two", NULL), PL_OK);
    advance(net, 100);
    assert_int_equal(net->nmsgs[2], 1);
    assert_int_equal(pl__wnode_mesh_size(net->w[1], TOPIC), 2);

    /* empty payloads and bad content topics are refused */
    assert_int_equal(publish(net, 0, CT, "", &r), PL_ERR_WAKU_MESSAGE);
    assert_int_equal(r.id, 0);
    assert_int_equal(publish(net, 0, "no", "x", &r), PL_ERR_WAKU_TOPIC);
    net_free(net);
}

static void test_publish_queue(void **state) {
    (void)state;
    wnet *net = net_new();
    pl__wnode_config c;
    pl__wnode_config_default(&c);
    c.queue_max = 3;
    c.publish_ttl_ms = 10000;
    node_new_cfg(net, 0, &c);
    node_new(net, 1);

    pl__wnode_pub r;
    assert_int_equal(publish(net, 0, CT, "early", &r), PL_OK);
    assert_true(r.queued);
    assert_int_equal(r.sent_to, 0);
    uint64_t first = r.id;
    assert_int_equal(pl__wnode_queued(net->w[0]), 1);
    assert_int_equal(publish(net, 0, CT, "early", NULL), PL_ERR_EXISTS);

    /* the TTL passes: given up */
    advance(net, 9000);
    assert_int_equal(net->failed[0], 0);
    advance(net, 1500);
    assert_int_equal(net->failed[0], 1);
    assert_int_equal(net->last_failed[0], PL_ERR_WAKU_NO_PEERS);
    assert_int_equal(pl__wnode_queued(net->w[0]), 0);

    /* queued until a subscribed relay peer appears, then sent in order */
    assert_int_equal(publish(net, 0, CT, "a", &r), PL_OK);
    assert_true(r.queued && r.id > first);
    assert_int_equal(publish(net, 0, CT, "b", NULL), PL_OK);
    assert_int_equal(publish(net, 0, CT, "c", NULL), PL_OK);
    assert_int_equal(publish(net, 0, CT, "d", &r), PL_ERR_WAKU_QUEUE_FULL);
    assert_int_equal(pl__wnode_subscribe(net->w[1], CT, strlen(CT), net->now), PL_OK);
    connect_(net, 0, 1);
    pump(net);
    assert_int_equal(net->published[0], 3);
    assert_int_equal(net->sent_to[0], 1);
    assert_int_equal(pl__wnode_queued(net->w[0]), 0);
    assert_int_equal(net->nmsgs[1], 3);
    assert_string_equal(net->msgs[1][0].payload, "a");
    assert_string_equal(net->msgs[1][2].payload, "c");

    /* closing: no new messages, queued ones fail with the given reason */
    link_down(net, &net->l[0], 1, PL_ERR_CLOSED);
    pump(net);
    assert_int_equal(publish(net, 0, CT, "late", &r), PL_OK);
    assert_true(r.queued);
    pl__wnode_close(net->w[0]);
    assert_int_equal(publish(net, 0, CT, "later", NULL), PL_ERR_STATE);
    pl__wnode_fail_queued(net->w[0], PL_ERR_CLOSED);
    pump(net);
    assert_int_equal(net->last_failed[0], PL_ERR_CLOSED);
    net_free(net);
}

/* publish_needs_mesh: a relay peer subscribed is not enough; the message
 * waits until the heartbeat grafted it into the mesh, so that what answers
 * it (forwarded along the mesh) can reach us. */
static void test_publish_needs_mesh(void **state) {
    (void)state;
    wnet *net = net_new();
    pl__wnode_config c;
    pl__wnode_config_default(&c);
    c.publish_needs_mesh = true;
    node_new_cfg(net, 0, &c);
    node_new(net, 1);
    assert_int_equal(pl__wnode_subscribe(net->w[1], CT, strlen(CT), net->now), PL_OK);
    connect_(net, 0, 1);
    pump(net);
    assert_int_equal(pl__wnode_relay_peers(net->w[0]), 1);
    assert_int_equal(pl__wnode_mesh_size(net->w[0], TOPIC), 0);
    pl__wnode_pub r;
    assert_int_equal(publish(net, 0, CT, "first", &r), PL_OK);
    assert_true(r.queued); /* subscribed, not yet in the mesh */
    assert_int_equal(publish(net, 0, CT, "second", &r), PL_OK);
    assert_true(r.queued);
    assert_int_equal(net->nmsgs[1], 0);
    advance(net, 1500); /* the heartbeat grafts */
    assert_true(pl__wnode_mesh_size(net->w[0], TOPIC) >= 1);
    assert_int_equal(pl__wnode_queued(net->w[0]), 0);
    assert_int_equal(net->nmsgs[1], 2);
    assert_string_equal(net->msgs[1][0].payload, "first"); /* in order */
    assert_int_equal(publish(net, 0, CT, "third", &r), PL_OK);
    assert_false(r.queued);
    pump(net);
    assert_int_equal(net->nmsgs[1], 3);
    net_free(net);
}

static void test_bootstrap_backoff(void **state) {
    (void)state;
    wnet *net = net_new();
    fake_id(&net->id[1], 1);
    char addr[256], pid[PL_P2P_PEER_ID_TEXT_SIZE];
    assert_int_equal(pl_p2p_peer_id_format(pid, &net->id[1]), PL_OK);
    snprintf(addr, sizeof addr, "/ip4/127.0.0.1/tcp/60000/p2p/%s", pid);
    const char *boot[] = {addr};
    pl__wnode_config c;
    pl__wnode_config_default(&c);
    c.bootstrap = boot;
    c.n_bootstrap = 1;
    c.reconnect_min_ms = 1000;
    c.reconnect_max_ms = 4000;

    /* bad addresses are refused at creation */
    const char *bad[] = {"/ip4/127.0.0.1/udp/1"};
    pl__wnode_config cb = c;
    cb.bootstrap = bad;
    pl__wnode *w = NULL;
    assert_int_equal(pl__wnode_new(&w, &cb, net->now), PL_ERR_P2P_TRANSPORT);
    assert_null(w);
    const char *junk[] = {"not a multiaddr"};
    cb.bootstrap = junk;
    assert_int_equal(pl__wnode_new(&w, &cb, net->now), PL_ERR_P2P_MULTIADDR);

    node_new_cfg(net, 0, &c);
    node_new(net, 1);
    assert_int_equal(pl__wnode_next_deadline(net->w[0]), net->now);
    advance(net, 0);
    pl__wnode_on_timer(net->w[0], net->now);
    pump(net);
    assert_int_equal(net->dials[0], 1);
    /* failures: redialled after 1 s, 2 s, 4 s, 4 s (the maximum) */
    static const int64_t want[] = {1000, 2000, 4000, 4000};
    for (int k = 0; k < 4; k++) {
        int64_t failed_at = net->now;
        pl__wnode_dialing(net->w[0], 0, 0, net->now);
        advance(net, 10000);
        assert_int_equal(net->dials[0], k + 2);
        assert_int_equal(net->dial_at[0][k + 1] - failed_at, want[k]);
    }
    net_free(net);
}

static void test_bootstrap_reconnect(void **state) {
    (void)state;
    wnet *net = net_new();
    fake_id(&net->id[1], 1);
    char addr[256], pid[PL_P2P_PEER_ID_TEXT_SIZE];
    assert_int_equal(pl_p2p_peer_id_format(pid, &net->id[1]), PL_OK);
    snprintf(addr, sizeof addr, "/ip4/127.0.0.1/tcp/60000/p2p/%s", pid);
    const char *boot[] = {addr};
    pl__wnode_config c;
    pl__wnode_config_default(&c);
    c.bootstrap = boot;
    c.n_bootstrap = 1;
    c.reconnect_min_ms = 1000;
    c.reconnect_max_ms = 8000;
    node_new_cfg(net, 0, &c);
    node_new(net, 1);
    pl__wnode_on_timer(net->w[0], net->now);
    pump(net);
    assert_int_equal(net->dials[0], 1);
    /* two failed dials grow the delay ... */
    pl__wnode_dialing(net->w[0], 0, 0, net->now);
    advance(net, 1000);
    assert_int_equal(net->dials[0], 2);
    pl__wnode_dialing(net->w[0], 0, 0, net->now);
    advance(net, 1999);
    assert_int_equal(net->dials[0], 2);
    advance(net, 1);
    assert_int_equal(net->dials[0], 3);
    /* ... a connection that becomes a relay peer resets it */
    wlink *l = &net->l[net->nl++];
    memset(l, 0, sizeof *l);
    l->conn = 77, l->a = 0, l->b = 1, l->up = true;
    pl__wnode_dialing(net->w[0], 0, 77, net->now);
    pl__wnode_conn_up(net->w[0], 77, &net->id[1], false, net->now);
    pl__wnode_conn_up(net->w[1], 77, &net->id[0], true, net->now);
    pump(net);
    assert_int_equal(net->up[0], 1);
    advance(net, 30000);
    assert_int_equal(net->dials[0], 3); /* connected: no dial */
    link_down(net, l, 1, PL_ERR_CLOSED);
    pump(net);
    assert_int_equal(net->down[0], 1);
    advance(net, 999);
    assert_int_equal(net->dials[0], 3);
    advance(net, 1);
    assert_int_equal(net->dials[0], 4);

    /* the peer connects to us meanwhile: the slot adopts it, no dial */
    pl__wnode_dialing(net->w[0], 0, 0, net->now);
    connect_(net, 1, 0);
    pump(net);
    advance(net, 20000);
    assert_int_equal(net->dials[0], 4);
    net_free(net);
}

static void test_duplicate_connections(void **state) {
    (void)state;
    wnet *net = net_new();
    node_new(net, 0);
    node_new(net, 1);
    /* both dial each other: the one dialled by the larger id goes, on
     * both ends */
    wlink *a = connect_(net, 0, 1);
    wlink *b = connect_(net, 1, 0);
    pump(net);
    /* fake ids differ in the last byte: node 1's is the larger */
    assert_true(a->up);
    assert_false(b->up);
    assert_int_equal(net->last_refused[1], PL_ERR_EXISTS);
    assert_int_equal(pl__wnode_relay_peers(net->w[0]), 1);
    assert_int_equal(pl__wnode_relay_peers(net->w[1]), 1);

    /* a second outbound connection to the same peer: the newer goes */
    wlink *c = connect_(net, 0, 1);
    pump(net);
    assert_true(a->up);
    assert_false(c->up);
    assert_int_equal(pl__wnode_relay_peers(net->w[0]), 1);
    net_free(net);
}

static void test_bad_rpc_disconnects(void **state) {
    (void)state;
    wnet *net = net_new();
    node_new(net, 0);
    node_new(net, 1);
    wlink *l = connect_(net, 0, 1);
    pump(net);
    assert_true(pl__wnode_relay_ready(net->w[0], l->conn));
    /* a wire-type 7 field: not a protobuf */
    static const uint8_t junk[] = {0x0f, 0x01, 0x02};
    assert_int_equal(pl__wnode_relay_rpc(net->w[0], l->conn, junk, sizeof junk, net->now),
                     PL_ERR_P2P_PROTOBUF);
    pump(net);
    assert_false(l->up);
    assert_int_equal(net->last_disconnect[0], PL_ERR_P2P_PROTOBUF);
    assert_int_equal(pl__wnode_relay_rpc(net->w[0], l->conn, junk, sizeof junk, net->now),
                     PL_ERR_STATE);
    net_free(net);
}

static void test_autosharding(void **state) {
    (void)state;
    wnet *net = net_new();
    pl__wnode_config c;
    pl__wnode_config_default(&c);
    c.sharding.cluster = 1;
    c.sharding.num_shards = 8;
    node_new_cfg(net, 0, &c);
    node_new_cfg(net, 1, &c);
    /* no shard relayed until a content topic needs one */
    const char *ct = "/toychat/2/huilong/proto";
    char want[PL_WAKU_PUBSUB_TOPIC_SIZE];
    assert_int_equal(pl_waku_pubsub_topic_for(want, &c.sharding, ct, strlen(ct)), PL_OK);
    char got[PL_WAKU_PUBSUB_TOPIC_SIZE];
    assert_int_equal(pl__wnode_pubsub_topic_for(net->w[0], got, ct, strlen(ct)), PL_OK);
    assert_string_equal(got, want);
    connect_(net, 0, 1);
    pump(net);
    assert_int_equal(pl__wnode_subscribe(net->w[1], ct, strlen(ct), net->now), PL_OK);
    pump(net);
    pl__wnode_pub r;
    assert_int_equal(publish(net, 0, ct, "hi", &r), PL_OK);
    assert_false(r.queued);
    assert_string_equal(r.pubsub_topic, want);
    assert_int_equal(net->nmsgs[1], 1);
    assert_string_equal(net->msgs[1][0].topic, want);
    /* leaving the only content topic of a shard leaves the shard */
    assert_int_equal(pl__wnode_unsubscribe(net->w[1], ct, strlen(ct), net->now), PL_OK);
    pump(net);
    assert_int_equal(publish(net, 0, ct, "again", &r), PL_OK);
    assert_true(r.queued);
    /* shards outside the range are refused */
    uint16_t s = 8;
    c.shards = &s;
    c.n_shards = 1;
    pl__wnode *w = NULL;
    assert_int_equal(pl__wnode_new(&w, &c, net->now), PL_ERR_INVALID_ARG);
    net_free(net);
}

int main(void) {
    seed = pl_test_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metadata_policy),
        cmocka_unit_test(test_relay_line_and_filtering),
        cmocka_unit_test(test_publish_queue),
        cmocka_unit_test(test_publish_needs_mesh),
        cmocka_unit_test(test_bootstrap_backoff),
        cmocka_unit_test(test_bootstrap_reconnect),
        cmocka_unit_test(test_duplicate_connections),
        cmocka_unit_test(test_bad_rpc_disconnects),
        cmocka_unit_test(test_autosharding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
