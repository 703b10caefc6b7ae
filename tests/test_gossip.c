/* SPDX-License-Identifier: Apache-2.0 */
/* The gossipsub router core (src/waku/gossip.c): a simulated network of
 * cores wired by this harness (SEND outputs moved to the right core's
 * recv_rpc, an explicit virtual clock), and single cores driven by
 * hand-made RPCs from fake peers. Seeded: PL_TEST_SEED repeats a run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gossipsub.pb-c.h"
#include "pairlink/hash.h"
#include "pairlink/waku.h"
#include "support/support.h"
#include "waku/gossip.h"

#define TOPIC "/waku/2/rs/16/64"
#define MAXN 16

static uint64_t seed;

static void rng(void *ctx, uint8_t *buf, size_t len) {
    pl_test_rand_bytes(ctx, buf, len);
}

/* A valid WakuMessage with payload "msg-<n>" padded to `size` bytes. */
static size_t waku_msg(uint8_t *out, size_t cap, int n, size_t size) {
    uint8_t payload[PL_WAKU_MESSAGE_MAX];
    memset(payload, 'x', sizeof payload);
    int w = snprintf((char *)payload, sizeof payload, "msg-%d", n);
    if (size < (size_t)w) size = (size_t)w;
    pl_waku_message m = {.payload = payload,
                         .payload_len = size,
                         .has_payload = true,
                         .content_topic = "/app/1/x/proto",
                         .content_topic_len = 14};
    size_t len = 0;
    assert_int_equal(pl_waku_message_encode(out, cap, &len, &m), PL_OK);
    return len;
}

/* ---- the simulated network ---- */

typedef struct net {
    int n;
    pl__gossip *g[MAXN];
    bool link[MAXN][MAXN];
    bool alive[MAXN];
    int64_t now;
    uint64_t rs[MAXN];
    /* deliveries[node][msg] */
    int deliveries[MAXN][256];
    int disconnects;
    pl_err last_disconnect;
} net;

static net *net_new(int n, pl__gossip_config *cfg) {
    net *s = calloc(1, sizeof *s);
    s->n = n;
    s->now = 1000000;
    for (int i = 0; i < n; i++) {
        pl__gossip_config c;
        if (cfg)
            c = *cfg;
        else
            pl__gossip_config_default(&c);
        s->rs[i] = seed + (uint64_t)i * 7919u + 1;
        c.rng = rng, c.rng_ctx = &s->rs[i];
        c.validate = pl__waku_gossip_validate;
        assert_int_equal(pl__gossip_new(&s->g[i], &c, s->now), PL_OK);
        s->alive[i] = true;
    }
    return s;
}

static void net_connect(net *s, int a, int b) {
    char ida[16], idb[16];
    snprintf(ida, sizeof ida, "node-%d", a);
    snprintf(idb, sizeof idb, "node-%d", b);
    assert_int_equal(
        pl__gossip_add_peer(s->g[a], (uint64_t)b + 1, true, (uint8_t *)idb, strlen(idb), s->now),
        PL_OK);
    assert_int_equal(
        pl__gossip_add_peer(s->g[b], (uint64_t)a + 1, false, (uint8_t *)ida, strlen(ida), s->now),
        PL_OK);
    s->link[a][b] = s->link[b][a] = true;
}

static void net_cut(net *s, int a, int b) {
    if (!s->link[a][b]) return;
    s->link[a][b] = s->link[b][a] = false;
    pl__gossip_remove_peer(s->g[a], (uint64_t)b + 1, s->now);
    pl__gossip_remove_peer(s->g[b], (uint64_t)a + 1, s->now);
}

static int msg_index(const uint8_t *data, size_t len) {
    pl_waku_message m;
    assert_int_equal(pl_waku_message_decode(&m, data, len), PL_OK);
    int n = -1;
    char buf[32] = {0};
    memcpy(buf, m.payload, m.payload_len < 31 ? m.payload_len : 31);
    sscanf(buf, "msg-%d", &n);
    pl_waku_message_release(&m);
    assert_true(n >= 0 && n < 256);
    return n;
}

/* Move every output until the network is quiet. */
static void net_pump(net *s) {
    for (bool busy = true; busy;) {
        busy = false;
        for (int i = 0; i < s->n; i++) {
            if (!s->alive[i]) continue;
            pl__gossip_out o;
            while (pl__gossip_pop(s->g[i], &o)) {
                busy = true;
                int to = (int)o.peer - 1;
                if (o.kind == PL__GOSSIP_SEND && s->link[i][to]) {
                    pl__gossip_sent(s->g[i], o.peer, o.len);
                    size_t hl, bl;
                    assert_int_equal(pl__gossip_unframe(o.data, o.len, 1 << 24, &hl, &bl), PL_OK);
                    assert_int_equal(hl + bl, o.len);
                    pl_err e =
                        pl__gossip_recv_rpc(s->g[to], (uint64_t)i + 1, o.data + hl, bl, s->now);
                    assert_int_equal(e, PL_OK); /* honest nodes never misbehave */
                } else if (o.kind == PL__GOSSIP_DELIVER) {
                    s->deliveries[i][msg_index(o.data, o.len)]++;
                } else if (o.kind == PL__GOSSIP_DISCONNECT) {
                    s->disconnects++;
                    s->last_disconnect = o.reason;
                    net_cut(s, i, to);
                }
                pl__gossip_out_release(&o);
            }
        }
    }
}

static void net_run(net *s, int64_t ms) {
    int64_t end = s->now + ms;
    while (s->now < end) {
        s->now += 100;
        for (int i = 0; i < s->n; i++)
            if (s->alive[i] && s->now >= pl__gossip_next_deadline(s->g[i]))
                pl__gossip_on_timer(s->g[i], s->now);
        net_pump(s);
    }
}

static void net_kill(net *s, int k) {
    for (int j = 0; j < s->n; j++)
        net_cut(s, k, j);
    s->alive[k] = false;
    pl__gossip_free(s->g[k]);
    s->g[k] = NULL;
}

static void net_free(net *s) {
    for (int i = 0; i < s->n; i++)
        pl__gossip_free(s->g[i]);
    free(s);
}

static void publish(net *s, int from, int n, size_t size) {
    uint8_t buf[PL_WAKU_MESSAGE_MAX];
    size_t len = waku_msg(buf, sizeof buf, n, size);
    size_t sent = 0;
    assert_int_equal(pl__gossip_publish(s->g[from], TOPIC, buf, len, s->now, &sent, NULL), PL_OK);
    assert_true(sent > 0);
    net_pump(s);
}

/* Ring plus chords: i±1, i±2, i+4. */
static void ring_chords(net *s) {
    for (int i = 0; i < s->n; i++) {
        net_connect(s, i, (i + 1) % s->n);
        net_connect(s, i, (i + 2) % s->n);
        if (i < s->n / 2) net_connect(s, i, i + s->n / 2);
    }
}

static void check_mesh_bounds(net *s, unsigned lo, unsigned hi) {
    for (int i = 0; i < s->n; i++) {
        if (!s->alive[i]) continue;
        uint64_t m[32];
        size_t n = pl__gossip_mesh(s->g[i], TOPIC, m, 32);
        if (n < lo || n > hi) fail_msg("node %d mesh %zu outside [%u, %u]", i, n, lo, hi);
        /* symmetric: each mesh link is a mesh link on the other side */
        for (size_t k = 0; k < n; k++) {
            uint64_t back[32];
            size_t bn = pl__gossip_mesh(s->g[m[k] - 1], TOPIC, back, 32);
            bool found = false;
            for (size_t j = 0; j < bn; j++)
                found |= back[j] == (uint64_t)i + 1;
            if (!found) fail_msg("mesh link %d -> %d not mutual", i, (int)m[k] - 1);
        }
    }
}

static void test_ring_exactly_once(void **state) {
    (void)state;
    net *s = net_new(8, NULL);
    ring_chords(s);
    for (int i = 0; i < 8; i++)
        assert_int_equal(pl__gossip_join(s->g[i], TOPIC, s->now), PL_OK);
    net_pump(s);
    net_run(s, 5000);
    check_mesh_bounds(s, 4, 8);
    for (int m = 0; m < 40; m++) {
        publish(s, m % 8, m, m % 3 == 0 ? 2000 : 10);
        net_run(s, 300);
    }
    net_run(s, 5000); /* gossip rounds: still no duplicate delivery */
    for (int i = 0; i < 8; i++)
        for (int m = 0; m < 40; m++) {
            int want = (m % 8 == i) ? 0 : 1;
            if (s->deliveries[i][m] != want)
                fail_msg("node %d got message %d %d times", i, m, s->deliveries[i][m]);
        }
    /* A node goes away mid-run; the others keep delivering. */
    net_kill(s, 3);
    net_run(s, 3000);
    for (int m = 40; m < 80; m++) {
        int from = m % 8 == 3 ? 4 : m % 8;
        publish(s, from, m, 100);
        net_run(s, 200);
    }
    net_run(s, 5000);
    for (int i = 0; i < 8; i++) {
        if (i == 3) continue;
        for (int m = 40; m < 80; m++) {
            int from = m % 8 == 3 ? 4 : m % 8;
            int want = from == i ? 0 : 1;
            if (s->deliveries[i][m] != want)
                fail_msg("after the kill: node %d got message %d %d times", i, m,
                         s->deliveries[i][m]);
        }
    }
    check_mesh_bounds(s, 4, 8);
    assert_int_equal(s->disconnects, 0);
    net_free(s);
}

static void test_mesh_converges(void **state) {
    (void)state;
    net *s = net_new(14, NULL);
    for (int i = 0; i < 14; i++)
        for (int j = i + 1; j < 14; j++)
            net_connect(s, i, j);
    for (int i = 0; i < 14; i++)
        assert_int_equal(pl__gossip_join(s->g[i], TOPIC, s->now), PL_OK);
    net_pump(s);
    net_run(s, 10000);
    check_mesh_bounds(s, 4, 8);
    /* Delivery still exactly once on the dense graph. */
    for (int m = 0; m < 20; m++)
        publish(s, m % 14, m, 600);
    net_run(s, 4000);
    for (int i = 0; i < 14; i++)
        for (int m = 0; m < 20; m++)
            assert_int_equal(s->deliveries[i][m], m % 14 == i ? 0 : 1);
    net_free(s);
}

static void test_fanout_publish(void **state) {
    (void)state;
    net *s = net_new(6, NULL);
    ring_chords(s);
    /* Node 0 does not join; the others do. */
    for (int i = 1; i < 6; i++)
        assert_int_equal(pl__gossip_join(s->g[i], TOPIC, s->now), PL_OK);
    net_pump(s);
    net_run(s, 3000);
    for (int m = 0; m < 5; m++) {
        publish(s, 0, m, 50);
        net_run(s, 500);
    }
    for (int i = 1; i < 6; i++)
        for (int m = 0; m < 5; m++)
            assert_int_equal(s->deliveries[i][m], 1);
    for (int m = 0; m < 5; m++)
        assert_int_equal(s->deliveries[0][m], 0);
    /* Fanout state expires after its TTL without error. */
    net_run(s, 65000);
    pl__gossip_stats st;
    pl__gossip_stats_get(s->g[0], &st);
    assert_int_equal(st.mcache_messages, 0);
    net_free(s);
}

/* ---- one core, fake peers ---- */

typedef struct one {
    pl__gossip *g;
    uint64_t rs;
    int64_t now;
    int delivered;
    int disconnects;
    pl_err reason;
    uint64_t disconnected;
} one;

static void one_init(one *o, pl__gossip_config *c) {
    memset(o, 0, sizeof *o);
    pl__gossip_config d;
    if (!c) {
        pl__gossip_config_default(&d);
        c = &d;
    }
    o->rs = seed | 1;
    c->rng = rng, c->rng_ctx = &o->rs;
    c->validate = pl__waku_gossip_validate;
    o->now = 5000000;
    assert_int_equal(pl__gossip_new(&o->g, c, o->now), PL_OK);
}

/* Pop everything; RPCs sent to `peer` are unpacked into rpcs (caller frees
 * with free_rpcs), the rest are counted. Returns the number of RPCs. */
static size_t drain(one *o, uint64_t peer, Gossip__Pb__RPC **rpcs, size_t cap) {
    size_t n = 0;
    pl__gossip_out out;
    while (pl__gossip_pop(o->g, &out)) {
        if (out.kind == PL__GOSSIP_SEND) {
            pl__gossip_sent(o->g, out.peer, out.len);
            if (out.peer == peer && rpcs && n < cap) {
                size_t hl, bl;
                assert_int_equal(pl__gossip_unframe(out.data, out.len, 1 << 24, &hl, &bl), PL_OK);
                rpcs[n] = gossip__pb__rpc__unpack(NULL, bl, out.data + hl);
                assert_non_null(rpcs[n]);
                n++;
            }
        } else if (out.kind == PL__GOSSIP_DELIVER) {
            o->delivered++;
        } else if (out.kind == PL__GOSSIP_DISCONNECT) {
            o->disconnects++;
            o->reason = out.reason;
            o->disconnected = out.peer;
        }
        pl__gossip_out_release(&out);
    }
    return n;
}

static void free_rpcs(Gossip__Pb__RPC **r, size_t n) {
    for (size_t i = 0; i < n; i++)
        gossip__pb__rpc__free_unpacked(r[i], NULL);
}

static void one_tick(one *o, int64_t ms) {
    int64_t end = o->now + ms;
    while (o->now < end) {
        o->now += 100;
        pl__gossip_on_timer(o->g, o->now);
    }
}

static ProtobufCBinaryData B(const void *p, size_t n) {
    ProtobufCBinaryData b = {n, (uint8_t *)p};
    return b;
}

static uint8_t *pack(const Gossip__Pb__RPC *rpc, size_t *len) {
    *len = gossip__pb__rpc__get_packed_size(rpc);
    uint8_t *b = malloc(*len + 1);
    gossip__pb__rpc__pack(rpc, b);
    return b;
}

static pl_err recv(one *o, uint64_t peer, const Gossip__Pb__RPC *rpc) {
    size_t len;
    uint8_t *b = pack(rpc, &len);
    pl_err e = pl__gossip_recv_rpc(o->g, peer, b, len, o->now);
    free(b);
    return e;
}

static pl_err fake_subscribe(one *o, uint64_t peer) {
    Gossip__Pb__RPC__SubOpts so = GOSSIP__PB__RPC__SUB_OPTS__INIT, *sop = &so;
    so.has_subscribe = 1, so.subscribe = 1, so.has_topicid = 1;
    so.topicid = B(TOPIC, strlen(TOPIC));
    Gossip__Pb__RPC rpc = GOSSIP__PB__RPC__INIT;
    rpc.n_subscriptions = 1, rpc.subscriptions = &sop;
    return recv(o, peer, &rpc);
}

static pl_err fake_control(one *o, uint64_t peer, int kind, uint64_t backoff) {
    Gossip__Pb__ControlGraft gr = GOSSIP__PB__CONTROL_GRAFT__INIT, *grp = &gr;
    Gossip__Pb__ControlPrune pr = GOSSIP__PB__CONTROL_PRUNE__INIT, *prp = &pr;
    gr.has_topicid = pr.has_topicid = 1;
    gr.topicid = pr.topicid = B(TOPIC, strlen(TOPIC));
    pr.has_backoff = 1, pr.backoff = backoff;
    Gossip__Pb__ControlMessage cm = GOSSIP__PB__CONTROL_MESSAGE__INIT;
    if (kind == 'G')
        cm.n_graft = 1, cm.graft = &grp;
    else
        cm.n_prune = 1, cm.prune = &prp;
    Gossip__Pb__RPC rpc = GOSSIP__PB__RPC__INIT;
    rpc.control = &cm;
    return recv(o, peer, &rpc);
}

static pl_err fake_publish(one *o, uint64_t peer, const uint8_t *data, size_t len, bool signed_) {
    Gossip__Pb__Message m = GOSSIP__PB__MESSAGE__INIT, *mp = &m;
    m.has_data = 1, m.data = B(data, len);
    m.has_topic = 1, m.topic = B(TOPIC, strlen(TOPIC));
    uint8_t seqno[8] = {1};
    if (signed_) m.has_seqno = 1, m.seqno = B(seqno, 8), m.has_from = 1, m.from = B("peer", 4);
    Gossip__Pb__RPC rpc = GOSSIP__PB__RPC__INIT;
    rpc.n_publish = 1, rpc.publish = &mp;
    return recv(o, peer, &rpc);
}

static pl_err fake_ids(one *o, uint64_t peer, int kind, const uint8_t (*ids)[32], size_t n) {
    ProtobufCBinaryData *b = calloc(n, sizeof *b);
    for (size_t i = 0; i < n; i++)
        b[i] = B(ids[i], 32);
    Gossip__Pb__ControlIHave ih = GOSSIP__PB__CONTROL_IHAVE__INIT, *ihp = &ih;
    Gossip__Pb__ControlIWant iw = GOSSIP__PB__CONTROL_IWANT__INIT, *iwp = &iw;
    Gossip__Pb__ControlIDontWant dw = GOSSIP__PB__CONTROL_IDONT_WANT__INIT, *dwp = &dw;
    Gossip__Pb__ControlMessage cm = GOSSIP__PB__CONTROL_MESSAGE__INIT;
    if (kind == 'H') {
        ih.has_topicid = 1, ih.topicid = B(TOPIC, strlen(TOPIC));
        ih.n_messageids = n, ih.messageids = b;
        cm.n_ihave = 1, cm.ihave = &ihp;
    } else if (kind == 'W') {
        iw.n_messageids = n, iw.messageids = b;
        cm.n_iwant = 1, cm.iwant = &iwp;
    } else {
        dw.n_messageids = n, dw.messageids = b;
        cm.n_idontwant = 1, cm.idontwant = &dwp;
    }
    Gossip__Pb__RPC rpc = GOSSIP__PB__RPC__INIT;
    rpc.control = &cm;
    pl_err e = recv(o, peer, &rpc);
    free(b);
    return e;
}

static void add_fake(one *o, uint64_t h, bool outbound) {
    char id[16];
    snprintf(id, sizeof id, "fake-%d", (int)h);
    assert_int_equal(pl__gossip_add_peer(o->g, h, outbound, (uint8_t *)id, strlen(id), o->now),
                     PL_OK);
}

static bool in_mesh(one *o, uint64_t h) {
    uint64_t m[32];
    size_t n = pl__gossip_mesh(o->g, TOPIC, m, 32);
    for (size_t i = 0; i < n; i++)
        if (m[i] == h) return true;
    return false;
}

static size_t count_grafts(Gossip__Pb__RPC **r, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += r[i]->control ? r[i]->control->n_graft : 0;
    return k;
}

static void test_backoff_after_prune(void **state) {
    (void)state;
    one o;
    one_init(&o, NULL);
    add_fake(&o, 1, true);
    assert_int_equal(fake_subscribe(&o, 1), PL_OK);
    assert_int_equal(pl__gossip_join(o.g, TOPIC, o.now), PL_OK);
    Gossip__Pb__RPC *r[64];
    size_t n = drain(&o, 1, r, 64);
    assert_int_equal(count_grafts(r, n), 1); /* joined: grafted at once */
    free_rpcs(r, n);
    assert_true(in_mesh(&o, 1));
    /* The peer prunes us with a 60 s backoff. */
    assert_int_equal(fake_control(&o, 1, 'P', 60), PL_OK);
    assert_false(in_mesh(&o, 1));
    /* The mesh is below Dlo, but the only candidate is backing off. */
    for (int s = 0; s < 60; s++) {
        one_tick(&o, 1000);
        n = drain(&o, 1, r, 64);
        assert_int_equal(count_grafts(r, n), 0);
        free_rpcs(r, n);
    }
    /* After backoff + slack the core grafts it again. */
    one_tick(&o, 2000);
    n = drain(&o, 1, r, 64);
    assert_int_equal(count_grafts(r, n), 1);
    free_rpcs(r, n);
    assert_true(in_mesh(&o, 1));
    pl__gossip_free(o.g);
}

static void test_graft_flood(void **state) {
    (void)state;
    one o;
    one_init(&o, NULL);
    add_fake(&o, 1, false);
    add_fake(&o, 2, false);
    assert_int_equal(pl__gossip_join(o.g, TOPIC, o.now), PL_OK);
    assert_int_equal(fake_subscribe(&o, 1), PL_OK);
    assert_int_equal(fake_subscribe(&o, 2), PL_OK);
    assert_int_equal(fake_control(&o, 1, 'G', 0), PL_OK);
    assert_int_equal(fake_control(&o, 2, 'G', 0), PL_OK);
    assert_true(in_mesh(&o, 1) && in_mesh(&o, 2));
    drain(&o, 0, NULL, 0);
    /* Peer 1 prunes us, then grafts again and again during the backoff. */
    assert_int_equal(fake_control(&o, 1, 'P', 60), PL_OK);
    Gossip__Pb__RPC *r[8];
    int refused = 0;
    for (int i = 0; i < 60 && o.disconnects == 0; i++) {
        pl_err e = fake_control(&o, 1, 'G', 0);
        if (e == PL_ERR_GOSSIP_SCORE) break;
        assert_int_equal(e, PL_ERR_GOSSIP_BACKOFF);
        refused++;
        size_t n = drain(&o, 1, r, 8);
        /* each one answered with PRUNE, never accepted */
        bool pruned = false;
        for (size_t k = 0; k < n; k++)
            pruned |= r[k]->control && r[k]->control->n_prune == 1 &&
                      r[k]->control->prune[0]->backoff == 60;
        free_rpcs(r, n);
        assert_true(pruned || o.disconnects);
        assert_false(in_mesh(&o, 1));
    }
    /* sqrt(10000 / 10) = 31.6: the 32nd graft crosses the threshold. */
    assert_int_equal(refused, 32);
    assert_int_equal(o.disconnects, 1);
    assert_int_equal(o.disconnected, 1);
    assert_int_equal(o.reason, PL_ERR_GOSSIP_SCORE);
    assert_true(pl__gossip_score(o.g, 1) < -10000);
    /* Its RPCs are now ignored; peer 2 is unaffected. */
    assert_int_equal(fake_subscribe(&o, 1), PL_ERR_GOSSIP_SCORE);
    assert_true(in_mesh(&o, 2));
    assert_true(pl__gossip_score(o.g, 2) >= 0);
    /* After the runtime removes it and it comes back, the score stays. */
    pl__gossip_remove_peer(o.g, 1, o.now);
    add_fake(&o, 1, false);
    assert_true(pl__gossip_score(o.g, 1) < -10000);
    drain(&o, 0, NULL, 0);
    assert_int_equal(o.disconnects, 2);
    pl__gossip_free(o.g);
}

static void test_iwant_flood_capped(void **state) {
    (void)state;
    pl__gossip_config c;
    pl__gossip_config_default(&c);
    c.max_iwant_answers = 50;
    one o;
    one_init(&o, &c);
    add_fake(&o, 1, false);
    assert_int_equal(pl__gossip_join(o.g, TOPIC, o.now), PL_OK);
    uint8_t(*ids)[32] = malloc(200 * sizeof *ids);
    uint8_t buf[256];
    for (int m = 0; m < 200; m++) {
        size_t len = waku_msg(buf, sizeof buf, m, 10);
        assert_int_equal(pl__gossip_publish(o.g, TOPIC, buf, len, o.now, NULL, ids[m]), PL_OK);
    }
    drain(&o, 0, NULL, 0);
    Gossip__Pb__RPC **r = malloc(512 * sizeof *r);
    assert_int_equal(fake_ids(&o, 1, 'W', (const uint8_t(*)[32])ids, 200), PL_OK);
    size_t n = drain(&o, 1, r, 512);
    assert_int_equal(n, 50);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(r[i]->n_publish, 1);
    free_rpcs(r, n);
    /* The budget comes back each heartbeat, but one message is sent to
     * one peer at most gossip_retransmission (3) times. */
    int answered = 0;
    for (int hb = 0; hb < 5; hb++) {
        one_tick(&o, 1000);
        drain(&o, 0, NULL, 0);
        assert_int_equal(fake_ids(&o, 1, 'W', (const uint8_t(*)[32])ids, 1), PL_OK);
        size_t got = drain(&o, 1, r, 512);
        answered += (int)got;
        free_rpcs(r, got);
    }
    assert_int_equal(answered, 2); /* 1 in the first round + 2 more = 3 */
    pl__gossip_stats st;
    pl__gossip_stats_get(o.g, &st);
    assert_true(st.iwant_refused >= 150);
    free(ids);
    free(r);
    pl__gossip_free(o.g);
}

static void test_signed_and_invalid_refused(void **state) {
    (void)state;
    one o;
    one_init(&o, NULL);
    add_fake(&o, 1, false);
    add_fake(&o, 2, false);
    assert_int_equal(pl__gossip_join(o.g, TOPIC, o.now), PL_OK);
    assert_int_equal(fake_subscribe(&o, 2), PL_OK);
    assert_int_equal(fake_control(&o, 2, 'G', 0), PL_OK);
    drain(&o, 0, NULL, 0);
    uint8_t buf[256];
    size_t len = waku_msg(buf, sizeof buf, 1, 10);
    /* signed */
    assert_int_equal(fake_publish(&o, 1, buf, len, true), PL_ERR_GOSSIP_SIGNED);
    drain(&o, 0, NULL, 0);
    assert_int_equal(o.delivered, 0);
    assert_true(pl__gossip_score(o.g, 1) == -100);
    /* not a WakuMessage: an empty content topic */
    static const uint8_t junk[] = {0x0a, 0x01, 'x', 0x12, 0x00};
    assert_int_equal(fake_publish(&o, 1, junk, sizeof junk, false), PL_ERR_GOSSIP_INVALID);
    /* not a protobuf at all, oversized, over the count limits */
    static const uint8_t garbage[] = {0xff, 0xff, 0xff};
    assert_int_equal(pl__gossip_recv_rpc(o.g, 1, garbage, sizeof garbage, o.now),
                     PL_ERR_P2P_PROTOBUF);
    pl__gossip_config dc;
    pl__gossip_config_default(&dc);
    uint8_t *big = calloc(1, dc.max_rpc_bytes + 1);
    assert_int_equal(pl__gossip_recv_rpc(o.g, 1, big, dc.max_rpc_bytes + 1, o.now),
                     PL_ERR_TOO_LARGE);
    free(big);
    Gossip__Pb__RPC__SubOpts so = GOSSIP__PB__RPC__SUB_OPTS__INIT;
    so.has_topicid = 1, so.topicid = B("t", 1);
    Gossip__Pb__RPC__SubOpts **many = malloc(2000 * sizeof *many);
    for (int i = 0; i < 2000; i++)
        many[i] = &so;
    Gossip__Pb__RPC rpc = GOSSIP__PB__RPC__INIT;
    rpc.n_subscriptions = 2000, rpc.subscriptions = many;
    assert_int_equal(recv(&o, 1, &rpc), PL_ERR_GOSSIP_LIMIT);
    free(many);
    /* an RPC to an unknown peer */
    assert_int_equal(pl__gossip_recv_rpc(o.g, 99, junk, sizeof junk, o.now), PL_ERR_NOT_FOUND);
    /* Peer 2 is unaffected: a message from it is delivered and its score
     * is not negative. */
    assert_int_equal(fake_publish(&o, 2, buf, len, false), PL_OK);
    drain(&o, 0, NULL, 0);
    assert_int_equal(o.delivered, 1);
    assert_true(pl__gossip_score(o.g, 2) > 0);
    /* Repeated invalid messages end in DISCONNECT: -100 * 11^2 < -10000. */
    for (int i = 0; i < 12 && !o.disconnects; i++) {
        uint8_t b2[256];
        size_t l2 = waku_msg(b2, sizeof b2, 100 + i, 10);
        fake_publish(&o, 1, b2, l2, true);
        drain(&o, 0, NULL, 0);
    }
    assert_int_equal(o.disconnects, 1);
    assert_int_equal(o.disconnected, 1);
    assert_int_equal(o.reason, PL_ERR_GOSSIP_SCORE);
    pl__gossip_free(o.g);
}

static void test_ihave_iwant_round_trip(void **state) {
    (void)state;
    one o;
    one_init(&o, NULL);
    add_fake(&o, 1, false);
    add_fake(&o, 2, false);
    assert_int_equal(pl__gossip_join(o.g, TOPIC, o.now), PL_OK);
    drain(&o, 0, NULL, 0);
    uint8_t buf[256], id[1][32], id2[1][32];
    size_t len = waku_msg(buf, sizeof buf, 7, 10);
    pl_sha256(id[0], buf, len);
    assert_int_equal(fake_ids(&o, 1, 'H', (const uint8_t(*)[32])id, 1), PL_OK);
    Gossip__Pb__RPC *r[8];
    size_t n = drain(&o, 1, r, 8);
    assert_int_equal(n, 1);
    assert_non_null(r[0]->control);
    assert_int_equal(r[0]->control->n_iwant, 1);
    assert_int_equal(r[0]->control->iwant[0]->n_messageids, 1);
    assert_memory_equal(r[0]->control->iwant[0]->messageids[0].data, id[0], 32);
    free_rpcs(r, n);
    assert_int_equal(fake_publish(&o, 1, buf, len, false), PL_OK);
    drain(&o, 0, NULL, 0);
    assert_int_equal(o.delivered, 1);
    /* The promise was kept: no penalty after the follow-up time. */
    one_tick(&o, 4000);
    drain(&o, 0, NULL, 0);
    assert_true(pl__gossip_score(o.g, 1) >= 0);
    /* Peer 2 announces a message and never sends it: penalised. */
    size_t len2 = waku_msg(buf, sizeof buf, 8, 10);
    pl_sha256(id2[0], buf, len2);
    assert_int_equal(fake_ids(&o, 2, 'H', (const uint8_t(*)[32])id2, 1), PL_OK);
    n = drain(&o, 2, r, 8);
    assert_int_equal(n, 1);
    free_rpcs(r, n);
    one_tick(&o, 4000);
    assert_true(pl__gossip_score(o.g, 2) == -10);
    /* An IHAVE for a message already seen asks nothing. */
    assert_int_equal(fake_ids(&o, 2, 'H', (const uint8_t(*)[32])id, 1), PL_OK);
    assert_int_equal(drain(&o, 2, r, 8), 0);
    pl__gossip_free(o.g);
}

static void test_ihave_emitted_and_answered(void **state) {
    (void)state;
    /* A core with a mesh peer and a non-mesh subscriber gossips IHAVE to
     * the latter, and answers its IWANT with the message. */
    pl__gossip_config c;
    pl__gossip_config_default(&c);
    c.d = 1, c.dlo = 1, c.dhi = 1, c.dout = 0, c.dscore = 1;
    one o;
    one_init(&o, &c);
    add_fake(&o, 1, false);
    add_fake(&o, 2, false);
    assert_int_equal(fake_subscribe(&o, 1), PL_OK);
    assert_int_equal(fake_subscribe(&o, 2), PL_OK);
    assert_int_equal(pl__gossip_join(o.g, TOPIC, o.now), PL_OK);
    drain(&o, 0, NULL, 0);
    uint64_t mesh[4];
    assert_int_equal(pl__gossip_mesh(o.g, TOPIC, mesh, 4), 1);
    uint64_t lazy = mesh[0] == 1 ? 2 : 1;
    uint8_t buf[256], id[1][32];
    size_t len = waku_msg(buf, sizeof buf, 9, 10);
    assert_int_equal(pl__gossip_publish(o.g, TOPIC, buf, len, o.now, NULL, id[0]), PL_OK);
    drain(&o, 0, NULL, 0);
    one_tick(&o, 1000);
    Gossip__Pb__RPC *r[8];
    size_t n = drain(&o, lazy, r, 8);
    bool got = false;
    for (size_t i = 0; i < n; i++)
        if (r[i]->control && r[i]->control->n_ihave == 1)
            got = memcmp(r[i]->control->ihave[0]->messageids[0].data, id[0], 32) == 0;
    free_rpcs(r, n);
    assert_true(got);
    assert_int_equal(fake_ids(&o, lazy, 'W', (const uint8_t(*)[32])id, 1), PL_OK);
    n = drain(&o, lazy, r, 8);
    assert_int_equal(n, 1);
    assert_int_equal(r[0]->n_publish, 1);
    assert_int_equal(r[0]->publish[0]->data.len, len);
    assert_memory_equal(r[0]->publish[0]->data.data, buf, len);
    assert_false(r[0]->publish[0]->has_from || r[0]->publish[0]->has_seqno ||
                 r[0]->publish[0]->has_signature || r[0]->publish[0]->has_key);
    free_rpcs(r, n);
    /* After history_length heartbeats the message is gone from the cache. */
    one_tick(&o, 7000);
    drain(&o, 0, NULL, 0);
    assert_int_equal(fake_ids(&o, lazy, 'W', (const uint8_t(*)[32])id, 1), PL_OK);
    assert_int_equal(drain(&o, lazy, r, 8), 0);
    pl__gossip_free(o.g);
}

static void test_idontwant(void **state) {
    (void)state;
    one o;
    one_init(&o, NULL);
    for (uint64_t h = 1; h <= 3; h++) {
        add_fake(&o, h, false);
        assert_int_equal(fake_subscribe(&o, h), PL_OK);
    }
    assert_int_equal(pl__gossip_join(o.g, TOPIC, o.now), PL_OK);
    drain(&o, 0, NULL, 0);
    for (uint64_t h = 1; h <= 3; h++)
        assert_true(in_mesh(&o, h));
    /* Peer 1 does not want message M; peer 2 sends M; peer 3 gets it. */
    static uint8_t buf[4096];
    uint8_t id[1][32];
    size_t len = waku_msg(buf, sizeof buf, 3, 2000);
    pl_sha256(id[0], buf, len);
    assert_int_equal(fake_ids(&o, 1, 'D', (const uint8_t(*)[32])id, 1), PL_OK);
    assert_int_equal(fake_publish(&o, 2, buf, len, false), PL_OK);
    Gossip__Pb__RPC *r[8];
    size_t n = drain(&o, 1, r, 8);
    /* Peer 1 receives only our IDONTWANT (the message is large), never M. */
    assert_int_equal(n, 1);
    assert_int_equal(r[0]->n_publish, 0);
    assert_int_equal(r[0]->control->n_idontwant, 1);
    assert_memory_equal(r[0]->control->idontwant[0]->messageids[0].data, id[0], 32);
    free_rpcs(r, n);
    assert_int_equal(o.delivered, 1);
    pl__gossip_stats st;
    pl__gossip_stats_get(o.g, &st);
    assert_int_equal(st.idontwant_skips, 1);
    assert_int_equal(st.forwarded, 1);
    assert_int_equal(st.idontwant_sent, 2); /* to peers 1 and 3, not the source */
    pl__gossip_free(o.g);
}

static void test_backpressure(void **state) {
    (void)state;
    pl__gossip_config c;
    pl__gossip_config_default(&c);
    c.queue_soft_bytes = 100000, c.queue_hard_bytes = 400000;
    one o;
    one_init(&o, &c);
    add_fake(&o, 1, false);
    add_fake(&o, 2, false);
    assert_int_equal(fake_subscribe(&o, 1), PL_OK);
    assert_int_equal(fake_subscribe(&o, 2), PL_OK);
    assert_int_equal(pl__gossip_join(o.g, TOPIC, o.now), PL_OK);
    static uint8_t buf[20000];
    /* Peer 1 never reads (its bytes are never confirmed); peer 2 does. */
    int m = 0;
    for (; m < 100 && !o.disconnects; m++) {
        size_t len = waku_msg(buf, sizeof buf, m, 15000);
        assert_int_equal(pl__gossip_publish(o.g, TOPIC, buf, len, o.now, NULL, NULL), PL_OK);
        pl__gossip_out out;
        while (pl__gossip_pop(o.g, &out)) {
            if (out.kind == PL__GOSSIP_SEND && out.peer == 2) pl__gossip_sent(o.g, 2, out.len);
            if (out.kind == PL__GOSSIP_DISCONNECT) {
                o.disconnects++;
                o.disconnected = out.peer;
                o.reason = out.reason;
            }
            pl__gossip_out_release(&out);
        }
    }
    assert_int_equal(o.disconnects, 1);
    assert_int_equal(o.disconnected, 1);
    assert_int_equal(o.reason, PL_ERR_P2P_BACKPRESSURE);
    assert_true(m > 20 && m < 30); /* ~400 kB of 15 kB messages */
    pl__gossip_free(o.g);
}

static void test_framing_and_config(void **state) {
    (void)state;
    uint8_t h[PL__GOSSIP_FRAME_HEADER_MAX];
    assert_int_equal(pl__gossip_frame_header(h, 300), 2);
    assert_int_equal(h[0], 0xac);
    assert_int_equal(h[1], 0x02);
    uint8_t stream[400] = {0xac, 0x02};
    size_t hl, bl;
    assert_int_equal(pl__gossip_unframe(stream, 302, 1000, &hl, &bl), PL_OK);
    assert_int_equal(hl, 2);
    assert_int_equal(bl, 300);
    assert_int_equal(pl__gossip_unframe(stream, 301, 1000, &hl, &bl), PL_ERR_TRUNCATED);
    assert_int_equal(pl__gossip_unframe(stream, 1, 1000, &hl, &bl), PL_ERR_TRUNCATED);
    assert_int_equal(pl__gossip_unframe(stream, 302, 299, &hl, &bl), PL_ERR_TOO_LARGE);
    assert_int_equal(hl, 0);
    pl__gossip_config c;
    pl__gossip_config_default(&c);
    assert_int_equal(c.d, 6);
    assert_int_equal(c.dlo, 4);
    assert_int_equal(c.dhi, 8);
    assert_int_equal(c.dout, 3);
    assert_int_equal(c.dlazy, 6);
    assert_int_equal(c.heartbeat_ms, 1000);
    c.dout = 4;
    pl__gossip *g = NULL;
    assert_int_equal(pl__gossip_new(&g, &c, 0), PL_ERR_INVALID_ARG);
    assert_null(g);
    /* The Waku validator. */
    uint8_t buf[256];
    size_t len = waku_msg(buf, sizeof buf, 1, 10);
    assert_int_equal(pl__waku_gossip_validate(NULL, TOPIC, buf, len), PL__GOSSIP_ACCEPT);
    assert_int_equal(pl__waku_gossip_validate(NULL, "/waku/2/default-waku/proto", buf, len),
                     PL__GOSSIP_REJECT);
    assert_int_equal(pl__waku_gossip_validate(NULL, TOPIC, buf, len - 1), PL__GOSSIP_REJECT);
}

int main(void) {
    if (pl_init() != PL_OK) return 1;
    seed = pl_test_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framing_and_config),
        cmocka_unit_test(test_ring_exactly_once),
        cmocka_unit_test(test_mesh_converges),
        cmocka_unit_test(test_fanout_publish),
        cmocka_unit_test(test_backoff_after_prune),
        cmocka_unit_test(test_graft_flood),
        cmocka_unit_test(test_iwant_flood_capped),
        cmocka_unit_test(test_signed_and_invalid_refused),
        cmocka_unit_test(test_ihave_iwant_round_trip),
        cmocka_unit_test(test_ihave_emitted_and_answered),
        cmocka_unit_test(test_idontwant),
        cmocka_unit_test(test_backpressure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
