/* SPDX-License-Identifier: Apache-2.0 */
/* gossipsub v1.1 (+ v1.2 IDONTWANT) router core for Waku relay. See
 * gossip.h for the contract; the parameters and their sources are in
 * docs/waku.md. */
#include "waku/gossip.h"

#include "core/internal.h"
#include "gossipsub.pb-c.h"
#include "pairlink/codec.h"
#include "pairlink/hash.h"
#include "pairlink/waku.h"

#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* ---- id map: a hash table of 32-byte ids -> uint32 -------------------- */

/* Open addressing with linear probing and backward-shift deletion. Keys
 * are hashed with SipHash under a per-core random key: message ids are
 * sha256 of data a peer chooses, so an unkeyed index could be driven into
 * long probe chains. */
typedef struct idmap_ent {
    uint8_t id[PL__GOSSIP_ID_BYTES];
    uint32_t val;
    uint32_t used;
} idmap_ent;

typedef struct idmap {
    idmap_ent *t;
    size_t cap, n; /* cap a power of two; n <= cap / 2 */
    const uint8_t *key;
} idmap;

static size_t idmap_hash(const idmap *m, const uint8_t *id) {
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, id, PL__GOSSIP_ID_BYTES, m->key);
    uint64_t v;
    memcpy(&v, h, sizeof v);
    return (size_t)v & (m->cap - 1);
}

static idmap_ent *idmap_find(const idmap *m, const uint8_t *id) {
    if (!m->cap) return NULL;
    for (size_t i = idmap_hash(m, id);; i = (i + 1) & (m->cap - 1)) {
        idmap_ent *e = &m->t[i];
        if (!e->used) return NULL;
        if (memcmp(e->id, id, PL__GOSSIP_ID_BYTES) == 0) return e;
    }
}

static bool idmap_grow(idmap *m) {
    size_t ncap = m->cap ? m->cap * 2 : 64;
    idmap_ent *nt = calloc(ncap, sizeof *nt);
    if (!nt) return false;
    idmap old = *m;
    m->t = nt, m->cap = ncap;
    for (size_t i = 0; i < old.cap; i++) {
        if (!old.t[i].used) continue;
        size_t j = idmap_hash(m, old.t[i].id);
        while (nt[j].used)
            j = (j + 1) & (ncap - 1);
        nt[j] = old.t[i];
    }
    free(old.t);
    return true;
}

/* Insert (id must be absent). */
static bool idmap_put(idmap *m, const uint8_t *id, uint32_t val) {
    if ((m->n + 1) * 2 > m->cap && !idmap_grow(m)) return false;
    size_t i = idmap_hash(m, id);
    while (m->t[i].used)
        i = (i + 1) & (m->cap - 1);
    memcpy(m->t[i].id, id, PL__GOSSIP_ID_BYTES);
    m->t[i].val = val;
    m->t[i].used = 1;
    m->n++;
    return true;
}

static void idmap_del(idmap *m, const uint8_t *id) {
    idmap_ent *e = idmap_find(m, id);
    if (!e) return;
    size_t mask = m->cap - 1, i = (size_t)(e - m->t), j = i;
    m->t[i].used = 0;
    m->n--;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->t[j].used) return;
        size_t k = idmap_hash(m, m->t[j].id);
        /* Move j back into the hole at i unless its home k lies cyclically
         * in (i, j]. */
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays) continue;
        m->t[i] = m->t[j];
        m->t[j].used = 0;
        i = j;
    }
}

static void idmap_free(idmap *m) {
    free(m->t);
    memset(m, 0, sizeof *m);
}

/* ---- id set with insertion order and a time-to-live ------------------- */

typedef struct idset {
    idmap map;
    uint8_t (*ids)[PL__GOSSIP_ID_BYTES]; /* ring, oldest at head */
    int64_t *t;
    size_t head, n, cap, max;
} idset;

static bool idset_has(const idset *s, const uint8_t *id) {
    return idmap_find(&s->map, id) != NULL;
}

static void idset_pop(idset *s) {
    idmap_del(&s->map, s->ids[s->head]);
    s->head = (s->head + 1) % s->cap;
    s->n--;
}

/* Add id (absent) at time now; the oldest entry goes when the set is full. */
static bool idset_add(idset *s, const uint8_t *id, int64_t now) {
    if (s->n == s->max) idset_pop(s);
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        if (ncap > s->max) ncap = s->max;
        uint8_t(*nids)[PL__GOSSIP_ID_BYTES] = malloc(ncap * sizeof *nids);
        int64_t *nt = malloc(ncap * sizeof *nt);
        if (!nids || !nt) {
            free(nids), free(nt);
            return false;
        }
        for (size_t i = 0; i < s->n; i++) {
            memcpy(nids[i], s->ids[(s->head + i) % s->cap], PL__GOSSIP_ID_BYTES);
            nt[i] = s->t[(s->head + i) % s->cap];
        }
        free(s->ids), free(s->t);
        s->ids = nids, s->t = nt, s->cap = ncap, s->head = 0;
    }
    if (!idmap_put(&s->map, id, 0)) return false;
    size_t slot = (s->head + s->n) % s->cap;
    memcpy(s->ids[slot], id, PL__GOSSIP_ID_BYTES);
    s->t[slot] = now;
    s->n++;
    return true;
}

static void idset_expire(idset *s, int64_t before) {
    while (s->n && s->t[s->head] < before)
        idset_pop(s);
}

static void idset_free(idset *s) {
    idmap_free(&s->map);
    free(s->ids), free(s->t);
    memset(s, 0, sizeof *s);
}

/* ---- state ------------------------------------------------------------ */

typedef struct gtopic gtopic;

typedef struct peer {
    uint64_t h;
    bool outbound, disconnecting;
    uint8_t pid[PL__GOSSIP_PEER_ID_MAX];
    size_t pid_len;
    gtopic **subs;
    size_t nsubs;
    double invalid, behaviour, first;
    size_t inflight;
    /* per-heartbeat budgets */
    size_t ihave_rpcs, iwant_asked, iwant_answered, idontwant_got;
    idset dontwant; /* ids the peer said it does not want (max: 3 heartbeats of budget) */
} peer;

typedef struct backoff {
    uint8_t pid[PL__GOSSIP_PEER_ID_MAX];
    size_t pid_len;
    int64_t until;
} backoff;

struct gtopic {
    char name[PL__GOSSIP_TOPIC_MAX + 1];
    bool joined, has_fanout;
    peer **mesh, **fanout;
    size_t nmesh, nfanout;
    int64_t fanout_last_pub;
    size_t nsubscribers;
    backoff *bo;
    size_t nbo, capbo;
};

typedef struct mentry {
    bool used;
    uint8_t id[PL__GOSSIP_ID_BYTES];
    char *topic;
    uint8_t *data;
    size_t len;
    uint64_t hb; /* heartbeat count when cached */
    struct {
        uint64_t peer;
        uint32_t n;
    } tx[8]; /* IWANT answers per peer (gossip_retransmission) */
} mentry;

typedef struct promise {
    uint8_t id[PL__GOSSIP_ID_BYTES];
    uint64_t peer;
    int64_t deadline;
} promise;

typedef struct retained {
    uint8_t pid[PL__GOSSIP_PEER_ID_MAX];
    size_t pid_len;
    double invalid, behaviour;
    int64_t until;
} retained;

#define RETAINED_MAX 256
#define PRUNE_PEERS_MAX 64 /* PeerInfo entries read in one PRUNE */

struct pl__gossip {
    pl__gossip_config c;
    uint8_t sipkey[crypto_shorthash_KEYBYTES];
    peer **peers;
    size_t npeers;
    gtopic **topics;
    size_t ntopics;
    idset seen;
    mentry *mc;
    size_t mc_cap, mc_n, mc_bytes;
    idmap mc_index;
    uint64_t hb;
    promise *prom;
    size_t nprom;
    retained ret[RETAINED_MAX];
    size_t nret;
    pl__gossip_out *out;
    size_t out_head, out_n, out_cap;
    int64_t next_hb, next_decay;
    pl__gossip_stats st;
};

/* ---- small helpers ---------------------------------------------------- */

static uint32_t rnd(pl__gossip *g, uint32_t n) {
    uint32_t v;
    if (g->c.rng)
        g->c.rng(g->c.rng_ctx, (uint8_t *)&v, sizeof v);
    else
        pl_random((uint8_t *)&v, sizeof v);
    return n ? v % n : 0;
}

static void shuffle(pl__gossip *g, peer **a, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = rnd(g, (uint32_t)i);
        peer *t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

static peer *find_peer(const pl__gossip *g, uint64_t h) {
    for (size_t i = 0; i < g->npeers; i++)
        if (g->peers[i]->h == h) return g->peers[i];
    return NULL;
}

static gtopic *find_topic(const pl__gossip *g, const char *name, size_t len) {
    for (size_t i = 0; i < g->ntopics; i++)
        if (strlen(g->topics[i]->name) == len && memcmp(g->topics[i]->name, name, len) == 0)
            return g->topics[i];
    return NULL;
}

static gtopic *get_topic(pl__gossip *g, const char *name, size_t len) {
    gtopic *t = find_topic(g, name, len);
    if (t || g->ntopics >= g->c.max_topics) return t;
    t = calloc(1, sizeof *t);
    peer **mesh = calloc(g->c.dhi + g->c.dout + 1, sizeof *mesh);
    peer **fan = calloc(g->c.d, sizeof *fan);
    gtopic **grown = realloc(g->topics, (g->ntopics + 1) * sizeof *grown);
    if (grown) g->topics = grown;
    if (!t || !mesh || !fan || !grown) {
        free(t), free(mesh), free(fan);
        return NULL;
    }
    memcpy(t->name, name, len);
    t->name[len] = '\0';
    t->mesh = mesh, t->fanout = fan;
    g->topics[g->ntopics++] = t;
    return t;
}

/* Topics nobody uses any more are dropped at the heartbeat. */
static void gc_topics(pl__gossip *g, int64_t now) {
    for (size_t i = 0; i < g->ntopics;) {
        gtopic *t = g->topics[i];
        size_t k = 0;
        for (size_t j = 0; j < t->nbo; j++)
            if (t->bo[j].until > now) t->bo[k++] = t->bo[j];
        t->nbo = k;
        if (!t->joined && !t->has_fanout && t->nsubscribers == 0 && t->nbo == 0) {
            free(t->mesh), free(t->fanout), free(t->bo), free(t);
            g->topics[i] = g->topics[--g->ntopics];
        } else {
            i++;
        }
    }
}

static bool in_list(peer *const *a, size_t n, const peer *p) {
    for (size_t i = 0; i < n; i++)
        if (a[i] == p) return true;
    return false;
}

static bool list_del(peer **a, size_t *n, const peer *p) {
    for (size_t i = 0; i < *n; i++)
        if (a[i] == p) {
            a[i] = a[--*n];
            return true;
        }
    return false;
}

static bool subscribed(const peer *p, const gtopic *t) {
    for (size_t i = 0; i < p->nsubs; i++)
        if (p->subs[i] == t) return true;
    return false;
}

static double score(const pl__gossip *g, const peer *p) {
    double f = p->first < g->c.first_delivery_cap ? p->first : g->c.first_delivery_cap;
    return g->c.first_delivery_weight * f + g->c.invalid_weight * p->invalid * p->invalid +
           g->c.behaviour_weight * p->behaviour * p->behaviour;
}

static backoff *find_backoff(gtopic *t, const peer *p) {
    for (size_t i = 0; i < t->nbo; i++)
        if (t->bo[i].pid_len == p->pid_len && memcmp(t->bo[i].pid, p->pid, p->pid_len) == 0)
            return &t->bo[i];
    return NULL;
}

static bool in_backoff(gtopic *t, const peer *p, int64_t now) {
    backoff *b = find_backoff(t, p);
    return b && b->until > now;
}

static void set_backoff(pl__gossip *g, gtopic *t, const peer *p, int64_t until) {
    backoff *b = find_backoff(t, p);
    if (!b) {
        if (t->nbo == t->capbo) {
            /* Bounded by the peers that can be connected at once. */
            size_t ncap = t->capbo ? t->capbo * 2 : 8;
            if (ncap > g->c.max_peers * 2) ncap = g->c.max_peers * 2;
            if (t->nbo == ncap) return;
            backoff *nb = realloc(t->bo, ncap * sizeof *nb);
            if (!nb) return;
            t->bo = nb, t->capbo = ncap;
        }
        b = &t->bo[t->nbo++];
        memcpy(b->pid, p->pid, p->pid_len);
        b->pid_len = p->pid_len;
        b->until = until;
    } else if (until > b->until) {
        b->until = until;
    }
}

/* ---- outputs ---------------------------------------------------------- */

static pl__gossip_out *push_out(pl__gossip *g, pl__gossip_out_kind kind, uint64_t h) {
    if (g->out_n == g->out_cap) {
        size_t ncap = g->out_cap ? g->out_cap * 2 : 64;
        pl__gossip_out *n = malloc(ncap * sizeof *n);
        if (!n) return NULL;
        for (size_t i = 0; i < g->out_n; i++)
            n[i] = g->out[(g->out_head + i) % g->out_cap];
        free(g->out);
        g->out = n, g->out_cap = ncap, g->out_head = 0;
    }
    pl__gossip_out *o = &g->out[(g->out_head + g->out_n++) % g->out_cap];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->peer = h;
    return o;
}

static void out_topic(pl__gossip_out *o, const char *topic) {
    size_t n = strlen(topic);
    memcpy(o->topic, topic, n + 1);
}

static void disconnect(pl__gossip *g, peer *p, pl_err reason) {
    if (p->disconnecting) return;
    p->disconnecting = true;
    pl__gossip_out *o = push_out(g, PL__GOSSIP_DISCONNECT, p->h);
    if (o) o->reason = reason;
}

static void check_score(pl__gossip *g, peer *p) {
    if (score(g, p) < g->c.disconnect_threshold) disconnect(g, p, PL_ERR_GOSSIP_SCORE);
}

/* Pack rpc, frame it and queue it for p. gossip: droppable under
 * backpressure. Returns false if not sent. */
static bool send_rpc(pl__gossip *g, peer *p, const Gossip__Pb__RPC *rpc, bool gossip) {
    if (p->disconnecting) return false;
    if (gossip && p->inflight > g->c.queue_soft_bytes) {
        g->st.gossip_dropped++;
        return false;
    }
    size_t body = gossip__pb__rpc__get_packed_size(rpc);
    uint8_t hdr[PL__GOSSIP_FRAME_HEADER_MAX];
    size_t hl = pl__gossip_frame_header(hdr, body);
    if (p->inflight + hl + body > g->c.queue_hard_bytes) {
        disconnect(g, p, PL_ERR_P2P_BACKPRESSURE);
        return false;
    }
    uint8_t *buf = malloc(hl + body);
    if (!buf) return false;
    memcpy(buf, hdr, hl);
    gossip__pb__rpc__pack(rpc, buf + hl);
    pl__gossip_out *o = push_out(g, PL__GOSSIP_SEND, p->h);
    if (!o) {
        free(buf);
        return false;
    }
    o->data = buf;
    o->len = hl + body;
    p->inflight += o->len;
    return true;
}

static ProtobufCBinaryData bin(const void *p, size_t n) {
    ProtobufCBinaryData b = {n, (uint8_t *)p};
    return b;
}

static void send_subs(pl__gossip *g, peer *p, gtopic **ts, size_t n, bool sub) {
    if (!n) return;
    Gossip__Pb__RPC__SubOpts *so = calloc(n, sizeof *so), **sop = calloc(n, sizeof *sop);
    if (so && sop) {
        for (size_t i = 0; i < n; i++) {
            gossip__pb__rpc__sub_opts__init(&so[i]);
            so[i].has_subscribe = 1;
            so[i].subscribe = sub;
            so[i].has_topicid = 1;
            so[i].topicid = bin(ts[i]->name, strlen(ts[i]->name));
            sop[i] = &so[i];
        }
        Gossip__Pb__RPC rpc = GOSSIP__PB__RPC__INIT;
        rpc.n_subscriptions = n;
        rpc.subscriptions = sop;
        send_rpc(g, p, &rpc, false);
    }
    free(so), free(sop);
}

static void send_graft(pl__gossip *g, peer *p, gtopic *t) {
    Gossip__Pb__ControlGraft gr = GOSSIP__PB__CONTROL_GRAFT__INIT, *grp = &gr;
    gr.has_topicid = 1;
    gr.topicid = bin(t->name, strlen(t->name));
    Gossip__Pb__ControlMessage cm = GOSSIP__PB__CONTROL_MESSAGE__INIT;
    cm.n_graft = 1, cm.graft = &grp;
    Gossip__Pb__RPC rpc = GOSSIP__PB__RPC__INIT;
    rpc.control = &cm;
    send_rpc(g, p, &rpc, false);
}

static void send_prune(pl__gossip *g, peer *p, gtopic *t, int64_t backoff_ms) {
    Gossip__Pb__ControlPrune pr = GOSSIP__PB__CONTROL_PRUNE__INIT, *prp = &pr;
    pr.has_topicid = 1;
    pr.topicid = bin(t->name, strlen(t->name));
    pr.has_backoff = 1;
    pr.backoff = (uint64_t)((backoff_ms + 999) / 1000);
    Gossip__Pb__ControlMessage cm = GOSSIP__PB__CONTROL_MESSAGE__INIT;
    cm.n_prune = 1, cm.prune = &prp;
    Gossip__Pb__RPC rpc = GOSSIP__PB__RPC__INIT;
    rpc.control = &cm;
    send_rpc(g, p, &rpc, false);
}

/* kind: 1 IHAVE (with topic), 2 IWANT, 5 IDONTWANT. */
static bool send_ids(pl__gossip *g, peer *p, int kind, const char *topic,
                     const uint8_t (*ids)[PL__GOSSIP_ID_BYTES], size_t n) {
    ProtobufCBinaryData *b = calloc(n, sizeof *b);
    if (!b) return false;
    for (size_t i = 0; i < n; i++)
        b[i] = bin(ids[i], PL__GOSSIP_ID_BYTES);
    Gossip__Pb__ControlIHave ih = GOSSIP__PB__CONTROL_IHAVE__INIT, *ihp = &ih;
    Gossip__Pb__ControlIWant iw = GOSSIP__PB__CONTROL_IWANT__INIT, *iwp = &iw;
    Gossip__Pb__ControlIDontWant idw = GOSSIP__PB__CONTROL_IDONT_WANT__INIT, *idwp = &idw;
    Gossip__Pb__ControlMessage cm = GOSSIP__PB__CONTROL_MESSAGE__INIT;
    if (kind == 1) {
        ih.has_topicid = 1;
        ih.topicid = bin(topic, strlen(topic));
        ih.n_messageids = n, ih.messageids = b;
        cm.n_ihave = 1, cm.ihave = &ihp;
    } else if (kind == 2) {
        iw.n_messageids = n, iw.messageids = b;
        cm.n_iwant = 1, cm.iwant = &iwp;
    } else {
        idw.n_messageids = n, idw.messageids = b;
        cm.n_idontwant = 1, cm.idontwant = &idwp;
    }
    Gossip__Pb__RPC rpc = GOSSIP__PB__RPC__INIT;
    rpc.control = &cm;
    bool ok = send_rpc(g, p, &rpc, true);
    free(b);
    return ok;
}

static bool send_msg(pl__gossip *g, peer *p, const char *topic, const uint8_t *data, size_t len,
                     bool gossip) {
    Gossip__Pb__Message m = GOSSIP__PB__MESSAGE__INIT, *mp = &m;
    m.has_data = 1;
    m.data = bin(data, len);
    m.has_topic = 1;
    m.topic = bin(topic, strlen(topic));
    Gossip__Pb__RPC rpc = GOSSIP__PB__RPC__INIT;
    rpc.n_publish = 1, rpc.publish = &mp;
    return send_rpc(g, p, &rpc, gossip);
}

/* ---- mesh ------------------------------------------------------------- */

static void mesh_add(pl__gossip *g, gtopic *t, peer *p) {
    if (in_list(t->mesh, t->nmesh, p) || t->nmesh >= g->c.dhi + g->c.dout + 1) return;
    t->mesh[t->nmesh++] = p;
    list_del(t->fanout, &t->nfanout, p);
    pl__gossip_out *o = push_out(g, PL__GOSSIP_GRAFTED, p->h);
    if (o) out_topic(o, t->name);
}

static void mesh_del(pl__gossip *g, gtopic *t, peer *p, pl_err reason) {
    if (!list_del(t->mesh, &t->nmesh, p)) return;
    pl__gossip_out *o = push_out(g, PL__GOSSIP_PRUNED, p->h);
    if (o) {
        out_topic(o, t->name);
        o->reason = reason;
    }
}

/* We prune p from t: tell it, and do not graft it again during backoff. */
static void prune_peer(pl__gossip *g, gtopic *t, peer *p, int64_t backoff_ms, int64_t now) {
    mesh_del(g, t, p, PL_OK);
    send_prune(g, p, t, backoff_ms);
    set_backoff(g, t, p, now + backoff_ms);
}

/* Subscribed peers of t that pass `ok`, shuffled, into a (caller frees). */
static size_t candidates(pl__gossip *g, gtopic *t, peer ***a, bool outbound_only, double min_score,
                         bool skip_mesh, bool skip_fanout, bool skip_backoff, int64_t now) {
    *a = NULL;
    if (!g->npeers) return 0;
    peer **c = malloc(g->npeers * sizeof *c);
    if (!c) return 0;
    size_t n = 0;
    for (size_t i = 0; i < g->npeers; i++) {
        peer *p = g->peers[i];
        if (p->disconnecting || !subscribed(p, t)) continue;
        if (outbound_only && !p->outbound) continue;
        if (score(g, p) < min_score) continue;
        if (skip_mesh && in_list(t->mesh, t->nmesh, p)) continue;
        if (skip_fanout && in_list(t->fanout, t->nfanout, p)) continue;
        if (skip_backoff && in_backoff(t, p, now)) continue;
        c[n++] = p;
    }
    shuffle(g, c, n);
    *a = c;
    return n;
}

static void graft_peer(pl__gossip *g, gtopic *t, peer *p) {
    mesh_add(g, t, p);
    send_graft(g, p, t);
}

/* Keep the mesh of t within [dlo, dhi] with at least dout outbound peers. */
static void maintain_mesh(pl__gossip *g, gtopic *t, int64_t now) {
    for (size_t i = 0; i < t->nmesh;) {
        peer *p = t->mesh[i];
        if (score(g, p) < 0 || p->disconnecting)
            prune_peer(g, t, p, g->c.prune_backoff_ms, now);
        else
            i++;
    }
    peer **c;
    size_t n;
    if (t->nmesh < g->c.dlo) {
        n = candidates(g, t, &c, false, 0, true, false, true, now);
        for (size_t i = 0; i < n && t->nmesh < g->c.d; i++)
            graft_peer(g, t, c[i]);
        free(c);
    }
    if (t->nmesh > g->c.dhi) {
        /* Keep the dscore best, then random ones up to d, then make sure
         * dout of the kept are outbound. */
        peer **m = t->mesh;
        shuffle(g, m, t->nmesh);
        for (size_t i = 1; i < t->nmesh; i++) /* insertion sort by score, stable */
            for (size_t j = i; j > 0 && score(g, m[j]) > score(g, m[j - 1]); j--) {
                peer *x = m[j];
                m[j] = m[j - 1];
                m[j - 1] = x;
            }
        shuffle(g, m + g->c.dscore, t->nmesh - g->c.dscore);
        size_t out = 0;
        for (size_t i = 0; i < g->c.d; i++)
            out += m[i]->outbound;
        for (size_t j = g->c.d; j < t->nmesh && out < g->c.dout; j++) {
            if (!m[j]->outbound) continue;
            /* swap with the last inbound peer among the kept */
            for (size_t k = g->c.d; k-- > 0;)
                if (!m[k]->outbound) {
                    peer *x = m[k];
                    m[k] = m[j];
                    m[j] = x;
                    out++;
                    break;
                }
        }
        while (t->nmesh > g->c.d) {
            peer *p = t->mesh[t->nmesh - 1];
            prune_peer(g, t, p, g->c.prune_backoff_ms, now);
        }
    }
    if (t->nmesh >= g->c.dlo) {
        size_t out = 0;
        for (size_t i = 0; i < t->nmesh; i++)
            out += t->mesh[i]->outbound;
        if (out < g->c.dout) {
            n = candidates(g, t, &c, true, 0, true, false, true, now);
            for (size_t i = 0; i < n && out < g->c.dout; i++, out++)
                graft_peer(g, t, c[i]);
            free(c);
        }
    }
}

/* ---- message cache ---------------------------------------------------- */

static void mc_evict(pl__gossip *g, size_t i) {
    mentry *e = &g->mc[i];
    idmap_del(&g->mc_index, e->id);
    g->mc_bytes -= e->len;
    g->mc_n--;
    free(e->topic), free(e->data);
    memset(e, 0, sizeof *e);
}

static void mc_put(pl__gossip *g, const uint8_t *id, const char *topic, const uint8_t *data,
                   size_t len) {
    if (g->mc_n >= g->c.mcache_max_messages || g->mc_bytes + len > g->c.mcache_max_bytes) return;
    if (idmap_find(&g->mc_index, id)) return;
    size_t i = 0;
    while (i < g->mc_cap && g->mc[i].used)
        i++;
    if (i == g->mc_cap) {
        size_t ncap = g->mc_cap ? g->mc_cap * 2 : 64;
        if (ncap > g->c.mcache_max_messages) ncap = g->c.mcache_max_messages;
        mentry *n = realloc(g->mc, ncap * sizeof *n);
        if (!n) return;
        memset(n + g->mc_cap, 0, (ncap - g->mc_cap) * sizeof *n);
        g->mc = n, g->mc_cap = ncap;
    }
    mentry *e = &g->mc[i];
    e->topic = strdup(topic);
    e->data = malloc(len ? len : 1);
    if (!e->topic || !e->data || !idmap_put(&g->mc_index, id, (uint32_t)i)) {
        free(e->topic), free(e->data);
        memset(e, 0, sizeof *e);
        return;
    }
    e->used = true;
    memcpy(e->id, id, PL__GOSSIP_ID_BYTES);
    if (len) memcpy(e->data, data, len);
    e->len = len;
    e->hb = g->hb;
    g->mc_n++;
    g->mc_bytes += len;
}

/* ---- promises --------------------------------------------------------- */

static void promise_add(pl__gossip *g, peer *p, const uint8_t *id, int64_t now) {
    if (g->nprom >= g->c.max_promises) return;
    promise *n = realloc(g->prom, (g->nprom + 1) * sizeof *n);
    if (!n) return;
    g->prom = n;
    memcpy(g->prom[g->nprom].id, id, PL__GOSSIP_ID_BYTES);
    g->prom[g->nprom].peer = p->h;
    g->prom[g->nprom].deadline = now + g->c.iwant_followup_ms;
    g->nprom++;
}

static void promise_fulfil(pl__gossip *g, const uint8_t *id) {
    for (size_t i = 0; i < g->nprom;)
        if (memcmp(g->prom[i].id, id, PL__GOSSIP_ID_BYTES) == 0)
            g->prom[i] = g->prom[--g->nprom];
        else
            i++;
}

/* ---- receiving -------------------------------------------------------- */

static bool topic_ok(const ProtobufCBinaryData *b, bool has) {
    return has && b->len > 0 && b->len <= PL__GOSSIP_TOPIC_MAX && !memchr(b->data, '\0', b->len);
}

static pl_err first_err(pl_err cur, pl_err e) {
    return cur != PL_OK ? cur : e;
}

static void handle_subscriptions(pl__gossip *g, peer *p, Gossip__Pb__RPC *rpc) {
    for (size_t i = 0; i < rpc->n_subscriptions; i++) {
        Gossip__Pb__RPC__SubOpts *so = rpc->subscriptions[i];
        if (!topic_ok(&so->topicid, so->has_topicid)) continue;
        const char *name = (const char *)so->topicid.data;
        size_t len = so->topicid.len;
        if (so->has_subscribe && so->subscribe) {
            gtopic *t = get_topic(g, name, len);
            if (!t || subscribed(p, t) || p->nsubs >= g->c.max_subscriptions_per_peer) continue;
            gtopic **ns = realloc(p->subs, (p->nsubs + 1) * sizeof *ns);
            if (!ns) continue;
            p->subs = ns;
            p->subs[p->nsubs++] = t;
            t->nsubscribers++;
        } else {
            gtopic *t = find_topic(g, name, len);
            if (!t || !subscribed(p, t)) continue;
            for (size_t k = 0; k < p->nsubs; k++)
                if (p->subs[k] == t) {
                    p->subs[k] = p->subs[--p->nsubs];
                    break;
                }
            t->nsubscribers--;
            mesh_del(g, t, p, PL_OK);
            list_del(t->fanout, &t->nfanout, p);
        }
    }
}

/* Forward an accepted message to the mesh (joined) except the source and
 * peers that said IDONTWANT. */
static void forward(pl__gossip *g, gtopic *t, const peer *src, const uint8_t *id,
                    const uint8_t *data, size_t len) {
    for (size_t i = 0; i < t->nmesh; i++) {
        peer *p = t->mesh[i];
        if (p == src) continue;
        if (idset_has(&p->dontwant, id)) {
            g->st.idontwant_skips++;
            continue;
        }
        if (send_msg(g, p, t->name, data, len, false)) g->st.forwarded++;
    }
}

static void deliver(pl__gossip *g, const char *topic, const uint8_t *id, const uint8_t *data,
                    size_t len, uint64_t from) {
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) return;
    pl__gossip_out *o = push_out(g, PL__GOSSIP_DELIVER, from);
    if (!o) {
        free(copy);
        return;
    }
    if (len) memcpy(copy, data, len);
    o->data = copy;
    o->len = len;
    out_topic(o, topic);
    memcpy(o->id, id, PL__GOSSIP_ID_BYTES);
    g->st.delivered++;
}

static pl_err handle_message(pl__gossip *g, peer *p, Gossip__Pb__Message *m, int64_t now) {
    if (!topic_ok(&m->topic, m->has_topic)) return PL_ERR_GOSSIP_PROTOCOL;
    gtopic *t = find_topic(g, (const char *)m->topic.data, m->topic.len);
    if (!t || !t->joined) return PL_OK; /* not ours: ignored, as nim-libp2p does */
    if (m->has_from || m->has_seqno || m->has_signature || m->has_key) {
        p->invalid += 1;
        g->st.rejected++;
        return PL_ERR_GOSSIP_SIGNED;
    }
    const uint8_t *data = m->has_data ? m->data.data : NULL;
    size_t len = m->has_data ? m->data.len : 0;
    if (len > g->c.max_message_bytes) {
        p->invalid += 1;
        g->st.rejected++;
        return PL_ERR_GOSSIP_INVALID;
    }
    uint8_t id[PL__GOSSIP_ID_BYTES];
    pl_sha256(id, data ? data : (const uint8_t *)"", len);
    promise_fulfil(g, id);
    if (idset_has(&g->seen, id)) {
        g->st.duplicates++;
        return PL_OK;
    }
    if (!idset_add(&g->seen, id, now)) return PL_ERR_NOMEM;
    /* IDONTWANT before validation, to the mesh peers we would forward to. */
    if (len > g->c.idontwant_threshold) {
        const uint8_t(*ids)[PL__GOSSIP_ID_BYTES] = &id;
        for (size_t i = 0; i < t->nmesh; i++)
            if (t->mesh[i] != p && send_ids(g, t->mesh[i], 5, NULL, ids, 1)) g->st.idontwant_sent++;
    }
    pl__gossip_verdict v = g->c.validate ? g->c.validate(g->c.validate_ctx, t->name,
                                                         data ? data : (const uint8_t *)"", len)
                                         : PL__GOSSIP_ACCEPT;
    if (v == PL__GOSSIP_REJECT) {
        p->invalid += 1;
        g->st.rejected++;
        return PL_ERR_GOSSIP_INVALID;
    }
    if (v != PL__GOSSIP_ACCEPT) {
        g->st.ignored++;
        return PL_OK;
    }
    p->first += 1;
    if (p->first > g->c.first_delivery_cap) p->first = g->c.first_delivery_cap;
    mc_put(g, id, t->name, data, len);
    deliver(g, t->name, id, data, len, p->h);
    forward(g, t, p, id, data, len);
    return PL_OK;
}

static void handle_ihave(pl__gossip *g, peer *p, Gossip__Pb__ControlMessage *cm, int64_t now) {
    if (!cm->n_ihave || score(g, p) < g->c.gossip_threshold) return;
    if (++p->ihave_rpcs > g->c.max_ihave_messages) return;
    size_t room =
        g->c.max_ihave_length > p->iwant_asked ? g->c.max_ihave_length - p->iwant_asked : 0;
    if (!room) return;
    uint8_t(*want)[PL__GOSSIP_ID_BYTES] = malloc(room * sizeof *want);
    if (!want) return;
    size_t n = 0;
    for (size_t i = 0; i < cm->n_ihave && n < room; i++) {
        Gossip__Pb__ControlIHave *ih = cm->ihave[i];
        if (!topic_ok(&ih->topicid, ih->has_topicid)) continue;
        gtopic *t = find_topic(g, (const char *)ih->topicid.data, ih->topicid.len);
        if (!t || !t->joined) continue;
        for (size_t k = 0; k < ih->n_messageids && n < room; k++) {
            const ProtobufCBinaryData *b = &ih->messageids[k];
            if (b->len != PL__GOSSIP_ID_BYTES || idset_has(&g->seen, b->data)) continue;
            bool dup = false;
            for (size_t j = 0; j < n && !dup; j++)
                dup = memcmp(want[j], b->data, PL__GOSSIP_ID_BYTES) == 0;
            if (!dup) memcpy(want[n++], b->data, PL__GOSSIP_ID_BYTES);
        }
    }
    if (n && send_ids(g, p, 2, NULL, (const uint8_t(*)[PL__GOSSIP_ID_BYTES])want, n)) {
        p->iwant_asked += n;
        g->st.iwant_sent++;
        promise_add(g, p, want[rnd(g, (uint32_t)n)], now);
    }
    free(want);
}

static void handle_iwant(pl__gossip *g, peer *p, Gossip__Pb__ControlMessage *cm) {
    if (!cm->n_iwant || score(g, p) < g->c.gossip_threshold) return;
    for (size_t i = 0; i < cm->n_iwant; i++) {
        Gossip__Pb__ControlIWant *iw = cm->iwant[i];
        for (size_t k = 0; k < iw->n_messageids; k++) {
            const ProtobufCBinaryData *b = &iw->messageids[k];
            if (b->len != PL__GOSSIP_ID_BYTES) continue;
            idmap_ent *ie = idmap_find(&g->mc_index, b->data);
            if (!ie) continue;
            if (p->iwant_answered >= g->c.max_iwant_answers) {
                g->st.iwant_refused++;
                continue;
            }
            mentry *e = &g->mc[ie->val];
            size_t slot = PL_ARRAY_LEN(e->tx);
            for (size_t j = 0; j < PL_ARRAY_LEN(e->tx); j++)
                if (e->tx[j].n && e->tx[j].peer == p->h) {
                    slot = j;
                    break;
                } else if (!e->tx[j].n && slot == PL_ARRAY_LEN(e->tx)) {
                    slot = j;
                }
            if (slot == PL_ARRAY_LEN(e->tx) || e->tx[slot].n >= g->c.gossip_retransmission) {
                g->st.iwant_refused++;
                continue;
            }
            if (send_msg(g, p, e->topic, e->data, e->len, true)) {
                e->tx[slot].peer = p->h;
                e->tx[slot].n++;
                p->iwant_answered++;
                g->st.iwant_answered++;
            }
        }
    }
}

static pl_err handle_graft(pl__gossip *g, peer *p, Gossip__Pb__ControlMessage *cm, int64_t now) {
    pl_err err = PL_OK;
    for (size_t i = 0; i < cm->n_graft; i++) {
        Gossip__Pb__ControlGraft *gr = cm->graft[i];
        if (!topic_ok(&gr->topicid, gr->has_topicid)) continue;
        gtopic *t = find_topic(g, (const char *)gr->topicid.data, gr->topicid.len);
        if (!t || !t->joined || in_list(t->mesh, t->nmesh, p)) continue;
        backoff *b = find_backoff(t, p);
        /* Two heartbeats of slack: a peer may graft the instant its own
         * backoff ends, and clocks differ (nim-libp2p does the same). */
        if (b && b->until - 2 * g->c.heartbeat_ms > now) {
            p->behaviour += 1;
            g->st.grafts_refused++;
            err = first_err(err, PL_ERR_GOSSIP_BACKOFF);
            send_prune(g, p, t, g->c.prune_backoff_ms);
            set_backoff(g, t, p, now + g->c.prune_backoff_ms);
            continue;
        }
        size_t out = 0;
        for (size_t k = 0; k < t->nmesh; k++)
            out += t->mesh[k]->outbound;
        if (score(g, p) < 0 || (t->nmesh >= g->c.dhi && !(p->outbound && out < g->c.dout))) {
            g->st.grafts_refused++;
            prune_peer(g, t, p, g->c.prune_backoff_ms, now);
            continue;
        }
        mesh_add(g, t, p);
    }
    return err;
}

static void handle_prune(pl__gossip *g, peer *p, Gossip__Pb__ControlMessage *cm, int64_t now) {
    for (size_t i = 0; i < cm->n_prune; i++) {
        Gossip__Pb__ControlPrune *pr = cm->prune[i];
        if (!topic_ok(&pr->topicid, pr->has_topicid)) continue;
        gtopic *t = find_topic(g, (const char *)pr->topicid.data, pr->topicid.len);
        if (!t) continue;
        mesh_del(g, t, p, PL_OK);
        /* The peer's backoff, at most an hour (a larger value is hostile
         * or a bug), plus a heartbeat so that we graft after it allows. */
        uint64_t s = pr->has_backoff ? pr->backoff : 0;
        int64_t ms = s == 0 ? g->c.prune_backoff_ms : (s > 3600 ? 3600000 : (int64_t)s * 1000);
        set_backoff(g, t, p, now + ms + g->c.heartbeat_ms);
        /* Peer exchange is not used: the peers are read (bounded by the
         * RPC limits) and ignored; we have no signed peer records. */
    }
}

static void handle_idontwant(pl__gossip *g, peer *p, Gossip__Pb__ControlMessage *cm, int64_t now) {
    for (size_t i = 0; i < cm->n_idontwant; i++) {
        Gossip__Pb__ControlIDontWant *d = cm->idontwant[i];
        for (size_t k = 0; k < d->n_messageids; k++) {
            const ProtobufCBinaryData *b = &d->messageids[k];
            if (p->idontwant_got >= g->c.max_idontwant) return;
            p->idontwant_got++;
            if (b->len != PL__GOSSIP_ID_BYTES || idset_has(&p->dontwant, b->data)) continue;
            idset_add(&p->dontwant, b->data, now);
        }
    }
}

/* Count bounds before acting on anything. */
static bool within_limits(const pl__gossip *g, const Gossip__Pb__RPC *rpc) {
    if (rpc->n_subscriptions > g->c.max_subscriptions_per_rpc) return false;
    if (rpc->n_publish > g->c.max_messages_per_rpc) return false;
    const Gossip__Pb__ControlMessage *cm = rpc->control;
    if (!cm) return true;
    size_t entries = cm->n_ihave + cm->n_iwant + cm->n_graft + cm->n_prune + cm->n_idontwant;
    if (entries > g->c.max_control_per_rpc) return false;
    size_t ids = 0;
    for (size_t i = 0; i < cm->n_ihave; i++)
        ids += cm->ihave[i]->n_messageids;
    for (size_t i = 0; i < cm->n_iwant; i++)
        ids += cm->iwant[i]->n_messageids;
    for (size_t i = 0; i < cm->n_idontwant; i++)
        ids += cm->idontwant[i]->n_messageids;
    if (ids > g->c.max_ids_per_rpc) return false;
    for (size_t i = 0; i < cm->n_prune; i++)
        if (cm->prune[i]->n_peers > PRUNE_PEERS_MAX) return false;
    return true;
}

pl_err pl__gossip_recv_rpc(pl__gossip *g, uint64_t h, const uint8_t *buf, size_t len, int64_t now) {
    PL_REQUIRE(g && (buf || len == 0));
    peer *p = find_peer(g, h);
    if (!p) return PL_ERR_NOT_FOUND;
    if (p->disconnecting || score(g, p) < g->c.graylist_threshold) return PL_ERR_GOSSIP_SCORE;
    if (len > g->c.max_rpc_bytes) return PL_ERR_TOO_LARGE;
    Gossip__Pb__RPC *rpc = gossip__pb__rpc__unpack(NULL, len, buf);
    if (!rpc) return PL_ERR_P2P_PROTOBUF;
    pl_err err = PL_OK;
    if (!within_limits(g, rpc)) {
        p->behaviour += 1;
        err = PL_ERR_GOSSIP_LIMIT;
        goto done;
    }
    handle_subscriptions(g, p, rpc);
    for (size_t i = 0; i < rpc->n_publish; i++)
        err = first_err(err, handle_message(g, p, rpc->publish[i], now));
    if (rpc->control) {
        Gossip__Pb__ControlMessage *cm = rpc->control;
        handle_idontwant(g, p, cm, now);
        handle_ihave(g, p, cm, now);
        handle_iwant(g, p, cm);
        err = first_err(err, handle_graft(g, p, cm, now));
        handle_prune(g, p, cm, now);
    }
done:
    gossip__pb__rpc__free_unpacked(rpc, NULL);
    check_score(g, p);
    return err;
}

/* ---- heartbeat -------------------------------------------------------- */

static void emit_gossip(pl__gossip *g, gtopic *t, bool fanout, int64_t now) {
    size_t nids = 0;
    for (size_t i = 0; i < g->mc_cap; i++) {
        mentry *e = &g->mc[i];
        if (e->used && g->hb - e->hb < g->c.history_gossip && strcmp(e->topic, t->name) == 0)
            nids++;
    }
    if (!nids) return;
    uint8_t(*ids)[PL__GOSSIP_ID_BYTES] = malloc(nids * sizeof *ids);
    if (!ids) return;
    size_t k = 0;
    for (size_t i = 0; i < g->mc_cap && k < nids; i++) {
        mentry *e = &g->mc[i];
        if (e->used && g->hb - e->hb < g->c.history_gossip && strcmp(e->topic, t->name) == 0)
            memcpy(ids[k++], e->id, PL__GOSSIP_ID_BYTES);
    }
    peer **c;
    size_t n = candidates(g, t, &c, false, g->c.gossip_threshold, true, fanout, false, now);
    size_t target = (size_t)ceil(g->c.gossip_factor * (double)n);
    if (target < g->c.dlazy) target = g->c.dlazy;
    for (size_t i = 0; i < n && i < target; i++) {
        size_t m = nids;
        if (m > g->c.max_ihave_length) {
            /* a random subset: shuffle the ids' first m places */
            for (size_t a = 0; a < g->c.max_ihave_length; a++) {
                size_t b = a + rnd(g, (uint32_t)(nids - a));
                uint8_t tmp[PL__GOSSIP_ID_BYTES];
                memcpy(tmp, ids[a], sizeof tmp);
                memcpy(ids[a], ids[b], sizeof tmp);
                memcpy(ids[b], tmp, sizeof tmp);
            }
            m = g->c.max_ihave_length;
        }
        if (send_ids(g, c[i], 1, t->name, (const uint8_t(*)[PL__GOSSIP_ID_BYTES])ids, m))
            g->st.ihave_sent++;
    }
    free(c);
    free(ids);
}

static double decay(const pl__gossip *g, double v, double f) {
    v *= f;
    return v < g->c.decay_to_zero ? 0 : v;
}

static void heartbeat(pl__gossip *g, int64_t now) {
    /* broken promises */
    for (size_t i = 0; i < g->nprom;) {
        if (g->prom[i].deadline <= now) {
            peer *p = find_peer(g, g->prom[i].peer);
            if (p) p->behaviour += 1;
            g->prom[i] = g->prom[--g->nprom];
        } else {
            i++;
        }
    }
    if (now >= g->next_decay) {
        for (size_t i = 0; i < g->npeers; i++) {
            peer *p = g->peers[i];
            p->invalid = decay(g, p->invalid, g->c.invalid_decay);
            p->behaviour = decay(g, p->behaviour, g->c.behaviour_decay);
            p->first = decay(g, p->first, g->c.first_delivery_decay);
        }
        g->next_decay = now + g->c.decay_interval_ms;
    }
    for (size_t i = 0; i < g->npeers; i++) {
        peer *p = g->peers[i];
        check_score(g, p);
        p->ihave_rpcs = p->iwant_asked = p->iwant_answered = p->idontwant_got = 0;
        idset_expire(&p->dontwant, now - 3 * g->c.heartbeat_ms);
    }
    for (size_t i = 0; i < g->ntopics; i++) {
        gtopic *t = g->topics[i];
        if (t->joined) {
            maintain_mesh(g, t, now);
            emit_gossip(g, t, false, now);
        } else if (t->has_fanout) {
            if (now - t->fanout_last_pub > g->c.fanout_ttl_ms) {
                t->has_fanout = false;
                t->nfanout = 0;
                continue;
            }
            for (size_t k = 0; k < t->nfanout;) {
                peer *p = t->fanout[k];
                if (!subscribed(p, t) || score(g, p) < g->c.publish_threshold || p->disconnecting)
                    t->fanout[k] = t->fanout[--t->nfanout];
                else
                    k++;
            }
            if (t->nfanout < g->c.d) {
                peer **c;
                size_t n =
                    candidates(g, t, &c, false, g->c.publish_threshold, false, true, false, now);
                for (size_t k = 0; k < n && t->nfanout < g->c.d; k++)
                    t->fanout[t->nfanout++] = c[k];
                free(c);
            }
            emit_gossip(g, t, true, now);
        }
    }
    /* shift the message cache */
    g->hb++;
    for (size_t i = 0; i < g->mc_cap; i++)
        if (g->mc[i].used && g->hb - g->mc[i].hb >= g->c.history_length) mc_evict(g, i);
    idset_expire(&g->seen, now - g->c.seen_ttl_ms);
    size_t k = 0;
    for (size_t i = 0; i < g->nret; i++)
        if (g->ret[i].until > now) g->ret[k++] = g->ret[i];
    g->nret = k;
    gc_topics(g, now);
}

void pl__gossip_on_timer(pl__gossip *g, int64_t now) {
    PL_REQUIRE(g);
    if (now < g->next_hb) return;
    heartbeat(g, now);
    g->next_hb += g->c.heartbeat_ms;
    if (g->next_hb <= now) g->next_hb = now + g->c.heartbeat_ms; /* fell behind: no burst */
}

int64_t pl__gossip_next_deadline(const pl__gossip *g) {
    PL_REQUIRE(g);
    return g->next_hb;
}

/* ---- peers, topics, publish ------------------------------------------- */

pl_err pl__gossip_add_peer(pl__gossip *g, uint64_t h, bool outbound, const uint8_t *pid,
                           size_t pid_len, int64_t now) {
    PL_REQUIRE(g && (pid || pid_len == 0));
    if (find_peer(g, h)) return PL_ERR_EXISTS;
    if (g->npeers >= g->c.max_peers) return PL_ERR_P2P_CONN_LIMIT;
    peer *p = calloc(1, sizeof *p);
    peer **np = realloc(g->peers, (g->npeers + 1) * sizeof *np);
    if (np) g->peers = np;
    if (!p || !np) {
        free(p);
        return PL_ERR_NOMEM;
    }
    p->h = h;
    p->outbound = outbound;
    p->pid_len = pid_len < PL__GOSSIP_PEER_ID_MAX ? pid_len : PL__GOSSIP_PEER_ID_MAX;
    if (p->pid_len) memcpy(p->pid, pid, p->pid_len);
    p->dontwant.map.key = g->sipkey;
    p->dontwant.max = g->c.max_idontwant * 3;
    for (size_t i = 0; i < g->nret; i++)
        if (g->ret[i].pid_len == p->pid_len && memcmp(g->ret[i].pid, p->pid, p->pid_len) == 0 &&
            g->ret[i].until > now) {
            p->invalid = g->ret[i].invalid;
            p->behaviour = g->ret[i].behaviour;
            g->ret[i] = g->ret[--g->nret];
            break;
        }
    g->peers[g->npeers++] = p;
    gtopic **joined = malloc((g->ntopics ? g->ntopics : 1) * sizeof *joined);
    size_t n = 0;
    if (joined) {
        for (size_t i = 0; i < g->ntopics; i++)
            if (g->topics[i]->joined) joined[n++] = g->topics[i];
        send_subs(g, p, joined, n, true);
        free(joined);
    }
    check_score(g, p);
    return PL_OK;
}

void pl__gossip_remove_peer(pl__gossip *g, uint64_t h, int64_t now) {
    PL_REQUIRE(g);
    size_t idx = 0;
    while (idx < g->npeers && g->peers[idx]->h != h)
        idx++;
    if (idx == g->npeers) return;
    peer *p = g->peers[idx];
    for (size_t i = 0; i < g->ntopics; i++) {
        gtopic *t = g->topics[i];
        mesh_del(g, t, p, PL_ERR_CLOSED);
        list_del(t->fanout, &t->nfanout, p);
    }
    for (size_t i = 0; i < p->nsubs; i++)
        p->subs[i]->nsubscribers--;
    for (size_t i = 0; i < g->nprom;) /* a later peer may reuse the handle */
        if (g->prom[i].peer == h)
            g->prom[i] = g->prom[--g->nprom];
        else
            i++;
    if ((p->invalid > 0 || p->behaviour > 0) && p->pid_len) {
        size_t slot = g->nret < RETAINED_MAX ? g->nret++ : rnd(g, RETAINED_MAX);
        retained *r = &g->ret[slot];
        memcpy(r->pid, p->pid, p->pid_len);
        r->pid_len = p->pid_len;
        r->invalid = p->invalid;
        r->behaviour = p->behaviour;
        r->until = now + g->c.retain_score_ms;
    }
    free(p->subs);
    idset_free(&p->dontwant);
    free(p);
    g->peers[idx] = g->peers[--g->npeers];
}

static bool topic_arg_ok(const char *topic) {
    size_t n = strlen(topic);
    return n > 0 && n <= PL__GOSSIP_TOPIC_MAX;
}

pl_err pl__gossip_join(pl__gossip *g, const char *name, int64_t now) {
    PL_REQUIRE(g && name);
    if (!topic_arg_ok(name)) return PL_ERR_INVALID_ARG;
    gtopic *t = get_topic(g, name, strlen(name));
    if (!t) return g->ntopics >= g->c.max_topics ? PL_ERR_TOO_LARGE : PL_ERR_NOMEM;
    if (t->joined) return PL_ERR_EXISTS;
    t->joined = true;
    for (size_t i = 0; i < g->npeers; i++)
        send_subs(g, g->peers[i], &t, 1, true);
    /* fanout peers first, then others */
    for (size_t i = 0; i < t->nfanout && t->nmesh < g->c.d; i++) {
        peer *p = t->fanout[i];
        if (score(g, p) >= 0 && !in_backoff(t, p, now) && !p->disconnecting) graft_peer(g, t, p);
    }
    t->nfanout = 0;
    t->has_fanout = false;
    peer **c;
    size_t n = candidates(g, t, &c, false, 0, true, false, true, now);
    for (size_t i = 0; i < n && t->nmesh < g->c.d; i++)
        graft_peer(g, t, c[i]);
    free(c);
    return PL_OK;
}

pl_err pl__gossip_leave(pl__gossip *g, const char *name, int64_t now) {
    PL_REQUIRE(g && name);
    gtopic *t = find_topic(g, name, strlen(name));
    if (!t || !t->joined) return PL_ERR_NOT_FOUND;
    t->joined = false;
    for (size_t i = 0; i < g->npeers; i++)
        send_subs(g, g->peers[i], &t, 1, false);
    while (t->nmesh)
        prune_peer(g, t, t->mesh[0], g->c.unsubscribe_backoff_ms, now);
    return PL_OK;
}

pl_err pl__gossip_publish(pl__gossip *g, const char *name, const uint8_t *data, size_t len,
                          int64_t now, size_t *sent_to, uint8_t id_out[PL__GOSSIP_ID_BYTES]) {
    PL_REQUIRE(g && name && (data || len == 0));
    if (sent_to) *sent_to = 0;
    if (!topic_arg_ok(name)) return PL_ERR_INVALID_ARG;
    if (len > g->c.max_message_bytes) return PL_ERR_TOO_LARGE;
    const uint8_t *d = data ? data : (const uint8_t *)"";
    uint8_t id[PL__GOSSIP_ID_BYTES];
    pl_sha256(id, d, len);
    if (id_out) memcpy(id_out, id, sizeof id);
    if (idset_has(&g->seen, id)) return PL_ERR_EXISTS;
    if (g->c.validate && g->c.validate(g->c.validate_ctx, name, d, len) != PL__GOSSIP_ACCEPT)
        return PL_ERR_GOSSIP_INVALID;
    gtopic *t = get_topic(g, name, strlen(name));
    if (!t) return g->ntopics >= g->c.max_topics ? PL_ERR_TOO_LARGE : PL_ERR_NOMEM;
    if (!idset_add(&g->seen, id, now)) return PL_ERR_NOMEM;
    mc_put(g, id, t->name, d, len);
    if (!t->joined) {
        if (!t->has_fanout) {
            t->has_fanout = true;
            peer **c;
            size_t n = candidates(g, t, &c, false, g->c.publish_threshold, false, true, false, now);
            for (size_t k = 0; k < n && t->nfanout < g->c.d; k++)
                t->fanout[t->nfanout++] = c[k];
            free(c);
        }
        t->fanout_last_pub = now;
    }
    size_t n = 0;
    for (size_t i = 0; i < g->npeers; i++) {
        peer *p = g->peers[i];
        if (!subscribed(p, t) || score(g, p) < g->c.publish_threshold) continue;
        if (send_msg(g, p, t->name, d, len, false)) n++;
    }
    if (t->joined && g->c.deliver_own) deliver(g, t->name, id, d, len, 0);
    if (sent_to) *sent_to = n;
    return PL_OK;
}

void pl__gossip_sent(pl__gossip *g, uint64_t h, size_t bytes) {
    PL_REQUIRE(g);
    peer *p = find_peer(g, h);
    if (p) p->inflight = bytes > p->inflight ? 0 : p->inflight - bytes;
}

bool pl__gossip_pop(pl__gossip *g, pl__gossip_out *out) {
    PL_REQUIRE(g && out);
    if (!g->out_n) {
        memset(out, 0, sizeof *out);
        return false;
    }
    *out = g->out[g->out_head];
    g->out_head = (g->out_head + 1) % g->out_cap;
    g->out_n--;
    return true;
}

void pl__gossip_out_release(pl__gossip_out *o) {
    if (!o) return;
    free(o->data);
    o->data = NULL;
    o->len = 0;
}

/* ---- life cycle ------------------------------------------------------- */

void pl__gossip_config_default(pl__gossip_config *c) {
    PL_REQUIRE(c);
    memset(c, 0, sizeof *c);
    c->d = 6, c->dlo = 4, c->dhi = 8, c->dout = 3, c->dscore = 6, c->dlazy = 6;
    c->gossip_factor = 0.25;
    c->heartbeat_ms = 1000;
    c->fanout_ttl_ms = 60000;
    c->seen_ttl_ms = 120000;
    c->prune_backoff_ms = 60000;
    c->unsubscribe_backoff_ms = 5000;
    c->iwant_followup_ms = 3000;
    c->decay_interval_ms = 12000;
    c->retain_score_ms = 600000;
    c->history_length = 6, c->history_gossip = 3, c->gossip_retransmission = 3;
    c->max_message_bytes = PL_WAKU_MESSAGE_MAX;
    c->max_rpc_bytes = (1u << 20) + (64u << 10);
    c->max_peers = 1024, c->max_topics = 1024, c->max_subscriptions_per_peer = 1024;
    c->max_subscriptions_per_rpc = 1024, c->max_messages_per_rpc = 256;
    c->max_control_per_rpc = 1024, c->max_ids_per_rpc = 10000;
    c->max_ihave_messages = 10, c->max_ihave_length = 5000;
    c->max_iwant_answers = 500, c->max_idontwant = 1000;
    c->idontwant_threshold = 512;
    c->seen_max = 100000, c->mcache_max_messages = 10000, c->mcache_max_bytes = 64u << 20;
    c->max_promises = 4096;
    c->queue_soft_bytes = 4u << 20, c->queue_hard_bytes = 32u << 20;
    c->first_delivery_weight = 1, c->first_delivery_decay = 0.5, c->first_delivery_cap = 10;
    c->invalid_weight = -100, c->invalid_decay = 0.5;
    c->behaviour_weight = -10, c->behaviour_decay = 0.986;
    c->decay_to_zero = 0.01;
    c->gossip_threshold = -100, c->publish_threshold = -1000;
    c->graylist_threshold = -10000, c->disconnect_threshold = -10000;
}

static bool config_ok(const pl__gossip_config *c) {
    return c->dout < c->dlo && c->dlo <= c->d && c->d <= c->dhi && c->dout <= c->d / 2 &&
           c->dscore <= c->d && c->d > 0 && c->history_gossip <= c->history_length &&
           c->history_gossip > 0 && c->heartbeat_ms > 0 && c->decay_interval_ms > 0 &&
           c->seen_ttl_ms > 0 && c->max_rpc_bytes > 0 && c->max_peers > 0 && c->max_topics > 0 &&
           c->seen_max > 0 && c->mcache_max_messages > 0 && c->max_idontwant > 0 &&
           c->queue_soft_bytes <= c->queue_hard_bytes && c->max_ihave_length > 0 &&
           c->max_rpc_bytes <= ((size_t)64 << 20) && c->mcache_max_messages < UINT32_MAX;
}

pl_err pl__gossip_new(pl__gossip **out, const pl__gossip_config *config, int64_t now) {
    PL_REQUIRE(out);
    *out = NULL;
    pl__gossip_config c;
    if (config)
        c = *config;
    else
        pl__gossip_config_default(&c);
    if (!config_ok(&c)) return PL_ERR_INVALID_ARG;
    pl__gossip *g = calloc(1, sizeof *g);
    if (!g) return PL_ERR_NOMEM;
    g->c = c;
    if (c.rng)
        c.rng(c.rng_ctx, g->sipkey, sizeof g->sipkey);
    else
        pl_random(g->sipkey, sizeof g->sipkey);
    g->seen.map.key = g->sipkey;
    g->seen.max = c.seen_max;
    g->mc_index.key = g->sipkey;
    g->next_hb = now + c.heartbeat_ms;
    g->next_decay = now + c.decay_interval_ms;
    *out = g;
    return PL_OK;
}

void pl__gossip_free(pl__gossip *g) {
    if (!g) return;
    while (g->npeers) {
        peer *p = g->peers[--g->npeers];
        free(p->subs);
        idset_free(&p->dontwant);
        free(p);
    }
    free(g->peers);
    for (size_t i = 0; i < g->ntopics; i++) {
        free(g->topics[i]->mesh), free(g->topics[i]->fanout), free(g->topics[i]->bo);
        free(g->topics[i]);
    }
    free(g->topics);
    idset_free(&g->seen);
    for (size_t i = 0; i < g->mc_cap; i++)
        if (g->mc[i].used) free(g->mc[i].topic), free(g->mc[i].data);
    free(g->mc);
    idmap_free(&g->mc_index);
    free(g->prom);
    pl__gossip_out o;
    while (pl__gossip_pop(g, &o))
        pl__gossip_out_release(&o);
    free(g->out);
    free(g);
}

/* ---- introspection, framing, the Waku validator ----------------------- */

double pl__gossip_score(const pl__gossip *g, uint64_t h) {
    PL_REQUIRE(g);
    const peer *p = find_peer(g, h);
    return p ? score(g, p) : 0;
}

size_t pl__gossip_mesh(const pl__gossip *g, const char *name, uint64_t *peers, size_t cap) {
    PL_REQUIRE(g && name && (peers || cap == 0));
    gtopic *t = find_topic(g, name, strlen(name));
    if (!t) return 0;
    for (size_t i = 0; i < t->nmesh && i < cap; i++)
        peers[i] = t->mesh[i]->h;
    return t->nmesh;
}

bool pl__gossip_peer_subscribed(const pl__gossip *g, uint64_t h, const char *name) {
    PL_REQUIRE(g && name);
    const peer *p = find_peer(g, h);
    gtopic *t = find_topic(g, name, strlen(name));
    return p && t && subscribed(p, t);
}

size_t pl__gossip_publish_peers(const pl__gossip *g, const char *name) {
    PL_REQUIRE(g && name);
    gtopic *t = find_topic(g, name, strlen(name));
    if (!t) return 0;
    size_t n = 0;
    for (size_t i = 0; i < g->npeers; i++) {
        const peer *p = g->peers[i];
        n += subscribed(p, t) && !p->disconnecting && score(g, p) >= g->c.publish_threshold;
    }
    return n;
}

void pl__gossip_stats_get(const pl__gossip *g, pl__gossip_stats *out) {
    PL_REQUIRE(g && out);
    *out = g->st;
    out->peers = g->npeers;
    out->topics = g->ntopics;
    out->seen = g->seen.n;
    out->mcache_messages = g->mc_n;
    out->mcache_bytes = g->mc_bytes;
    out->promises = g->nprom;
    out->outputs = g->out_n;
}

size_t pl__gossip_frame_header(uint8_t out[PL__GOSSIP_FRAME_HEADER_MAX], size_t body_len) {
    PL_REQUIRE(out);
    return pl_uvarint_encode(out, body_len);
}

pl_err pl__gossip_unframe(const uint8_t *buf, size_t len, size_t max, size_t *hdr_len,
                          size_t *body_len) {
    PL_REQUIRE(hdr_len && body_len && (buf || len == 0));
    *hdr_len = *body_len = 0;
    uint64_t v;
    size_t used;
    pl_err e = pl_uvarint_decode(&v, &used, buf, len);
    if (e != PL_OK) return e;
    if (v > max) return PL_ERR_TOO_LARGE;
    if (len - used < v) return PL_ERR_TRUNCATED;
    *hdr_len = used;
    *body_len = (size_t)v;
    return PL_OK;
}

pl__gossip_verdict pl__waku_gossip_validate(void *ctx, const char *topic, const uint8_t *data,
                                            size_t len) {
    (void)ctx;
    uint16_t c, s;
    if (pl_waku_pubsub_topic_parse(&c, &s, topic, strlen(topic)) != PL_OK) return PL__GOSSIP_REJECT;
    return pl_waku_message_check(data, len) == PL_OK ? PL__GOSSIP_ACCEPT : PL__GOSSIP_REJECT;
}
