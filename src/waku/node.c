/* SPDX-License-Identifier: Apache-2.0 */
/* The Waku relay node's policy core: see node.h for the contract. */
#include "waku/node.h"

#include "core/internal.h"
#include "p2p/multiaddr.h"
#include "pairlink/hash.h"
#include "waku/metadata.h"

#include <stdlib.h>
#include <string.h>

typedef enum wc_state {
    W_META = 1,      /* waiting for the peer's metadata answer */
    W_RELAY_OPENING, /* our relay stream is being negotiated */
    W_RELAY,         /* a gossip peer */
    W_CLOSING,       /* DISCONNECT emitted; waiting for conn_down */
} wc_state;

typedef struct wconn {
    uint64_t id;
    pl_p2p_peer_id peer;
    bool inbound;
    bool was_relay;
    wc_state st;
    int64_t meta_deadline;
} wconn;

typedef enum wb_state {
    B_WAIT = 1, /* dial at retry_at */
    B_DIALING,  /* a dial or its connection is in progress: conn */
    B_UP,       /* connected: conn (possibly adopted from an inbound one) */
} wb_state;

typedef struct wboot {
    char *addr;
    pl_p2p_peer_id peer; /* from /p2p/, else learned on connection */
    wb_state st;
    uint64_t conn;
    int64_t retry_at, backoff;
} wboot;

typedef struct wsub {
    char *ct;
    size_t ct_len;
    char topic[PL_WAKU_PUBSUB_TOPIC_SIZE];
} wsub;

typedef struct wqueued {
    uint64_t id;
    char topic[PL_WAKU_PUBSUB_TOPIC_SIZE];
    uint8_t *data;
    size_t len;
    uint8_t gid[PL__GOSSIP_ID_BYTES];
    int64_t expires;
} wqueued;

struct pl__wnode {
    pl__wnode_config c;
    pl__gossip *g;
    uint16_t shards[PL__WNODE_MAX_SHARDS];
    size_t nshards;
    wconn *conns;
    size_t nconns, capconns;
    wboot boot[PL__WNODE_MAX_BOOTSTRAP];
    size_t nboot;
    wsub *subs;
    size_t nsubs;
    wqueued *q;
    size_t nq, capq, qbytes;
    uint64_t next_pub;
    bool closing;
    /* output ring */
    pl__wnode_out *out;
    size_t out_head, out_n, out_cap;
    pl__wnode_stats st;
};

/* ---- outputs ----------------------------------------------------------- */

static pl__wnode_out *push(pl__wnode *n, pl__wnode_out_kind kind, uint64_t conn) {
    if (n->out_n == n->out_cap) {
        size_t ncap = n->out_cap ? n->out_cap * 2 : 32;
        pl__wnode_out *no = malloc(ncap * sizeof *no);
        if (!no) return NULL;
        for (size_t i = 0; i < n->out_n; i++)
            no[i] = n->out[(n->out_head + i) % n->out_cap];
        free(n->out);
        n->out = no, n->out_cap = ncap, n->out_head = 0;
    }
    pl__wnode_out *o = &n->out[(n->out_head + n->out_n++) % n->out_cap];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->conn = conn;
    return o;
}

void pl__wnode_out_release(pl__wnode_out *o) {
    if (!o) return;
    free(o->data);
    o->data = NULL;
    o->len = 0;
    pl_waku_message_release(&o->msg);
}

bool pl__wnode_pop(pl__wnode *n, pl__wnode_out *out) {
    PL_REQUIRE(n && out);
    if (!n->out_n) {
        memset(out, 0, sizeof *out);
        return false;
    }
    *out = n->out[n->out_head];
    n->out_head = (n->out_head + 1) % n->out_cap;
    n->out_n--;
    return true;
}

/* ---- connections -------------------------------------------------------- */

static wconn *conn_find(const pl__wnode *n, uint64_t id) {
    for (size_t i = 0; i < n->nconns; i++)
        if (n->conns[i].id == id) return &n->conns[i];
    return NULL;
}

static void conn_remove(pl__wnode *n, wconn *c) {
    size_t i = (size_t)(c - n->conns);
    n->conns[i] = n->conns[--n->nconns];
}

static int peer_cmp(const pl_p2p_peer_id *a, const pl_p2p_peer_id *b) {
    size_t m = a->len < b->len ? a->len : b->len;
    int r = memcmp(a->bytes, b->bytes, m);
    if (r) return r;
    return a->len < b->len ? -1 : a->len > b->len;
}

/* A live connection to peer other than skip. */
static wconn *conn_to(const pl__wnode *n, const pl_p2p_peer_id *peer, const wconn *skip) {
    if (!peer->len) return NULL;
    for (size_t i = 0; i < n->nconns; i++) {
        wconn *c = &n->conns[i];
        if (c != skip && c->st != W_CLOSING && pl_p2p_peer_id_equal(&c->peer, peer)) return c;
    }
    return NULL;
}

static void drain_gossip(pl__wnode *n, int64_t now);

/* Stop using c and tell the runtime to close it. */
static void conn_close(pl__wnode *n, wconn *c, pl_err reason, int64_t now) {
    if (c->st == W_CLOSING) return;
    bool relay = c->st == W_RELAY;
    c->st = W_CLOSING;
    if (relay) pl__gossip_remove_peer(n->g, c->id, now);
    pl__wnode_out *o = push(n, PL__WNODE_DISCONNECT, c->id);
    if (o) {
        o->peer = c->peer;
        o->inbound = c->inbound;
        o->err = reason;
    }
    if (!c->was_relay) {
        n->st.refused++;
        o = push(n, PL__WNODE_REFUSED, c->id);
        if (o) {
            o->peer = c->peer;
            o->inbound = c->inbound;
            o->err = reason;
        }
    }
    drain_gossip(n, now);
}

/* ---- bootstrap peers ---------------------------------------------------- */

static void boot_retry(pl__wnode *n, wboot *b, int64_t now) {
    b->st = B_WAIT;
    b->conn = 0;
    b->retry_at = now + b->backoff;
    b->backoff = b->backoff * 2 > n->c.reconnect_max_ms ? n->c.reconnect_max_ms : b->backoff * 2;
}

/* A connection ended (or a dial failed): slots that used it look for
 * another connection to their peer, or wait to redial. */
static void boot_conn_gone(pl__wnode *n, uint64_t conn, int64_t now) {
    for (size_t i = 0; i < n->nboot; i++) {
        wboot *b = &n->boot[i];
        if (b->st == B_WAIT || b->conn != conn) continue;
        wconn *other = b->peer.len ? conn_to(n, &b->peer, conn_find(n, conn)) : NULL;
        if (other) {
            b->st = B_UP;
            b->conn = other->id;
        } else {
            boot_retry(n, b, now);
        }
    }
}

static void boot_due(pl__wnode *n, int64_t now) {
    if (n->closing) return;
    for (size_t i = 0; i < n->nboot; i++) {
        wboot *b = &n->boot[i];
        if (b->st != B_WAIT || b->retry_at > now) continue;
        wconn *other = b->peer.len ? conn_to(n, &b->peer, NULL) : NULL;
        if (other) { /* it came to us meanwhile */
            b->st = B_UP;
            b->conn = other->id;
            continue;
        }
        b->st = B_DIALING;
        b->conn = 0;
        pl__wnode_out *o = push(n, PL__WNODE_DIAL, 0);
        if (!o) { /* try again later */
            boot_retry(n, b, now);
            continue;
        }
        o->boot = i;
        o->addr = b->addr;
        o->peer = b->peer;
    }
}

void pl__wnode_dialing(pl__wnode *n, size_t boot, uint64_t conn, int64_t now) {
    PL_REQUIRE(n && boot < n->nboot);
    wboot *b = &n->boot[boot];
    if (b->st != B_DIALING) return;
    if (!conn) {
        boot_retry(n, b, now);
        return;
    }
    b->conn = conn;
}

/* ---- connection life ---------------------------------------------------- */

void pl__wnode_conn_up(pl__wnode *n, uint64_t id, const pl_p2p_peer_id *peer, bool inbound,
                       int64_t now) {
    PL_REQUIRE(n && id && peer);
    if (conn_find(n, id)) return;
    if (n->nconns == n->capconns) {
        size_t ncap = n->capconns ? n->capconns * 2 : 16;
        wconn *nc = realloc(n->conns, ncap * sizeof *nc);
        if (!nc) {
            pl__wnode_out *o = push(n, PL__WNODE_DISCONNECT, id);
            if (o) o->err = PL_ERR_NOMEM;
            return;
        }
        n->conns = nc, n->capconns = ncap;
    }
    wconn *c = &n->conns[n->nconns++];
    memset(c, 0, sizeof *c);
    c->id = id;
    c->peer = *peer;
    c->inbound = inbound;
    c->st = W_META;
    c->meta_deadline = now + n->c.metadata_timeout_ms;

    for (size_t i = 0; i < n->nboot; i++) {
        wboot *b = &n->boot[i];
        if (b->st == B_DIALING && b->conn == id) {
            b->st = B_UP;
            if (!b->peer.len) b->peer = *peer;
        }
    }

    if (n->nconns > n->c.max_conns) {
        conn_close(n, c, PL_ERR_P2P_CONN_LIMIT, now);
        return;
    }
    wconn *dup = conn_to(n, peer, c);
    if (dup) {
        wconn *loser = NULL;
        if (dup->inbound != inbound) {
            /* Both ends drop the connection dialled by the larger id. */
            bool we_larger = peer_cmp(&n->c.self, peer) > 0;
            wconn *ours = inbound ? dup : c, *theirs = inbound ? c : dup;
            loser = we_larger ? ours : theirs;
        } else if (!inbound) {
            loser = c;
        }
        if (loser) {
            /* The bootstrap slot follows the survivor. */
            wconn *keep = loser == c ? dup : c;
            for (size_t i = 0; i < n->nboot; i++)
                if (n->boot[i].st == B_UP && n->boot[i].conn == loser->id)
                    n->boot[i].conn = keep->id;
            conn_close(n, loser, PL_ERR_EXISTS, now);
            if (loser == c) return;
        }
    }
    pl__wnode_out *o = push(n, PL__WNODE_OPEN_METADATA, id);
    if (o) {
        o->peer = *peer;
        o->inbound = inbound;
    }
}

void pl__wnode_conn_down(pl__wnode *n, uint64_t id, pl_err err, int64_t now) {
    PL_REQUIRE(n);
    wconn *c = conn_find(n, id);
    if (c) {
        if (c->st == W_RELAY) pl__gossip_remove_peer(n->g, id, now);
        if (c->was_relay) {
            pl__wnode_out *o = push(n, PL__WNODE_PEER_DOWN, id);
            if (o) {
                o->peer = c->peer;
                o->inbound = c->inbound;
                o->err = err;
            }
        } else if (c->st != W_CLOSING) {
            /* It went before it was a relay peer, by the peer's doing. */
            n->st.refused++;
            pl__wnode_out *o = push(n, PL__WNODE_REFUSED, id);
            if (o) {
                o->peer = c->peer;
                o->inbound = c->inbound;
                o->err = err;
            }
        }
    }
    boot_conn_gone(n, id, now);
    drain_gossip(n, now); /* while c still names the peer (PRUNED) */
    if ((c = conn_find(n, id)) != NULL) conn_remove(n, c);
}

void pl__wnode_drop(pl__wnode *n, uint64_t id, pl_err reason, int64_t now) {
    PL_REQUIRE(n && reason != PL_OK);
    wconn *c = conn_find(n, id);
    if (c) conn_close(n, c, reason, now);
}

/* ---- metadata ------------------------------------------------------------ */

pl_err pl__wnode_metadata_ours(const pl__wnode *n, uint8_t *out, size_t cap, size_t *len) {
    PL_REQUIRE(n && out && len);
    pl__waku_metadata *m = calloc(1, sizeof *m);
    if (!m) {
        *len = 0;
        return PL_ERR_NOMEM;
    }
    m->has_cluster = true;
    m->cluster = n->c.sharding.cluster;
    m->n_shards = n->nshards;
    for (size_t i = 0; i < n->nshards; i++)
        m->shards[i] = n->shards[i];
    pl_err e = pl__waku_metadata_encode(out, cap, len, m);
    free(m);
    return e;
}

pl_err pl__wnode_metadata_answer(pl__wnode *n, uint64_t id, const uint8_t *msg, size_t len,
                                 int64_t now) {
    PL_REQUIRE(n && (msg || len == 0));
    wconn *c = conn_find(n, id);
    if (!c || c->st != W_META) return PL_ERR_STATE;
    pl__waku_metadata *m = NULL;
    pl_err e = PL_OK;
    if (msg) {
        m = malloc(sizeof *m);
        if (!m) return PL_ERR_NOMEM;
        e = pl__waku_metadata_decode(m, msg, len);
    }
    if (e == PL_OK)
        e = pl__waku_metadata_check(n->c.sharding.cluster, msg ? m : NULL);
    else if (e != PL_ERR_NOMEM)
        e = PL_ERR_WAKU_METADATA;
    free(m);
    if (e != PL_OK) {
        conn_close(n, c, e, now);
        return e;
    }
    c->st = W_RELAY_OPENING;
    pl__wnode_out *o = push(n, PL__WNODE_OPEN_RELAY, id);
    if (o) {
        o->peer = c->peer;
        o->inbound = c->inbound;
    }
    return PL_OK;
}

pl_err pl__wnode_metadata_request(pl__wnode *n, uint64_t id, const uint8_t *msg, size_t len,
                                  int64_t now) {
    PL_REQUIRE(n && (msg || len == 0));
    wconn *c = conn_find(n, id);
    if (!c || c->st == W_CLOSING) return PL_ERR_STATE;
    pl__waku_metadata *m = malloc(sizeof *m);
    if (!m) return PL_ERR_NOMEM;
    pl_err e = pl__waku_metadata_decode(m, msg ? msg : (const uint8_t *)"", len);
    if (e == PL_OK && m->has_cluster && m->cluster != n->c.sharding.cluster) {
        e = PL_ERR_WAKU_CLUSTER;
        conn_close(n, c, e, now);
    } else if (e != PL_OK && e != PL_ERR_NOMEM) {
        e = PL_ERR_WAKU_METADATA;
    }
    free(m);
    return e;
}

/* ---- relay --------------------------------------------------------------- */

static void flush_queue(pl__wnode *n, int64_t now);

void pl__wnode_relay_opened(pl__wnode *n, uint64_t id, int64_t now) {
    PL_REQUIRE(n);
    wconn *c = conn_find(n, id);
    if (!c || c->st != W_RELAY_OPENING) return;
    pl_err e = pl__gossip_add_peer(n->g, id, !c->inbound, c->peer.bytes, c->peer.len, now);
    if (e != PL_OK) {
        conn_close(n, c, e, now);
        return;
    }
    c->st = W_RELAY;
    c->was_relay = true;
    for (size_t i = 0; i < n->nboot; i++)
        if (n->boot[i].peer.len && pl_p2p_peer_id_equal(&n->boot[i].peer, &c->peer))
            n->boot[i].backoff = n->c.reconnect_min_ms;
    pl__wnode_out *o = push(n, PL__WNODE_PEER_UP, id);
    if (o) {
        o->peer = c->peer;
        o->inbound = c->inbound;
    }
    drain_gossip(n, now);
}

void pl__wnode_relay_failed(pl__wnode *n, uint64_t id, pl_err err, int64_t now) {
    PL_REQUIRE(n);
    wconn *c = conn_find(n, id);
    if (c) conn_close(n, c, err != PL_OK ? err : PL_ERR_CLOSED, now);
}

bool pl__wnode_relay_ready(const pl__wnode *n, uint64_t id) {
    PL_REQUIRE(n);
    const wconn *c = conn_find(n, id);
    return c && c->st == W_RELAY;
}

pl_err pl__wnode_relay_rpc(pl__wnode *n, uint64_t id, const uint8_t *rpc, size_t len, int64_t now) {
    PL_REQUIRE(n && (rpc || len == 0));
    wconn *c = conn_find(n, id);
    if (!c || c->st != W_RELAY) return PL_ERR_STATE;
    pl_err e = pl__gossip_recv_rpc(n->g, id, rpc, len, now);
    if (e == PL_ERR_P2P_PROTOBUF || e == PL_ERR_TOO_LARGE) conn_close(n, c, e, now);
    drain_gossip(n, now);
    if (n->nq) flush_queue(n, now);
    return e;
}

void pl__wnode_sent(pl__wnode *n, uint64_t id, size_t bytes) {
    PL_REQUIRE(n);
    pl__gossip_sent(n->g, id, bytes);
}

/* ---- content topics -------------------------------------------------------- */

pl_err pl__wnode_pubsub_topic_for(const pl__wnode *n, char out[PL_WAKU_PUBSUB_TOPIC_SIZE],
                                  const char *ct, size_t len) {
    PL_REQUIRE(n && out && (ct || len == 0));
    out[0] = '\0';
    if (len > PL__WNODE_CONTENT_TOPIC_MAX) return PL_ERR_TOO_LARGE;
    return pl_waku_pubsub_topic_for(out, &n->c.sharding, ct ? ct : "", len);
}

static wsub *sub_find(const pl__wnode *n, const char *ct, size_t len) {
    for (size_t i = 0; i < n->nsubs; i++)
        if (n->subs[i].ct_len == len && !memcmp(n->subs[i].ct, ct, len)) return &n->subs[i];
    return NULL;
}

static bool relayed_shard(const pl__wnode *n, const char *topic) {
    char t[PL_WAKU_PUBSUB_TOPIC_SIZE];
    for (size_t i = 0; i < n->nshards; i++) {
        pl_waku_pubsub_topic_format(t, n->c.sharding.cluster, n->shards[i]);
        if (!strcmp(t, topic)) return true;
    }
    return false;
}

static size_t subs_on(const pl__wnode *n, const char *topic) {
    size_t k = 0;
    for (size_t i = 0; i < n->nsubs; i++)
        k += !strcmp(n->subs[i].topic, topic);
    return k;
}

pl_err pl__wnode_subscribe(pl__wnode *n, const char *ct, size_t len, int64_t now) {
    PL_REQUIRE(n && (ct || len == 0));
    char topic[PL_WAKU_PUBSUB_TOPIC_SIZE];
    PL_TRY(pl__wnode_pubsub_topic_for(n, topic, ct, len));
    if (sub_find(n, ct, len)) return PL_ERR_EXISTS;
    if (n->nsubs >= n->c.max_content_topics) return PL_ERR_TOO_LARGE;
    wsub *ns = realloc(n->subs, (n->nsubs + 1) * sizeof *ns);
    if (!ns) return PL_ERR_NOMEM;
    n->subs = ns;
    char *copy = malloc(len + 1);
    if (!copy) return PL_ERR_NOMEM;
    memcpy(copy, ct, len);
    copy[len] = '\0';
    if (!relayed_shard(n, topic) && subs_on(n, topic) == 0) {
        pl_err e = pl__gossip_join(n->g, topic, now);
        if (e != PL_OK && e != PL_ERR_EXISTS) {
            free(copy);
            return e;
        }
    }
    wsub *s = &n->subs[n->nsubs++];
    s->ct = copy;
    s->ct_len = len;
    memcpy(s->topic, topic, sizeof s->topic);
    drain_gossip(n, now);
    return PL_OK;
}

pl_err pl__wnode_unsubscribe(pl__wnode *n, const char *ct, size_t len, int64_t now) {
    PL_REQUIRE(n && (ct || len == 0));
    wsub *s = sub_find(n, ct ? ct : "", len);
    if (!s) return PL_ERR_NOT_FOUND;
    char topic[PL_WAKU_PUBSUB_TOPIC_SIZE];
    memcpy(topic, s->topic, sizeof topic);
    free(s->ct);
    *s = n->subs[--n->nsubs];
    if (!relayed_shard(n, topic) && subs_on(n, topic) == 0) {
        (void)pl__gossip_leave(n->g, topic, now);
        drain_gossip(n, now);
    }
    return PL_OK;
}

/* ---- gossip outputs --------------------------------------------------------- */

static void on_deliver(pl__wnode *n, pl__gossip_out *go) {
    pl_waku_message m;
    if (pl_waku_message_decode(&m, go->data, go->len) != PL_OK) return; /* validated: cannot */
    if (m.content_topic_len == sizeof PL__WNODE_KEEPALIVE_TOPIC - 1 &&
        !memcmp(m.content_topic, PL__WNODE_KEEPALIVE_TOPIC, m.content_topic_len)) {
        n->st.keepalives++;
        pl_waku_message_release(&m);
        return;
    }
    wsub *s = sub_find(n, m.content_topic, m.content_topic_len);
    if (!s || strcmp(s->topic, go->topic) != 0) {
        n->st.filtered++;
        pl_waku_message_release(&m);
        return;
    }
    pl__wnode_out *o = push(n, PL__WNODE_MESSAGE, go->peer);
    if (!o) {
        pl_waku_message_release(&m);
        return;
    }
    n->st.delivered++;
    o->msg = m;
    memcpy(o->pubsub_topic, go->topic, sizeof o->pubsub_topic);
    pl_waku_message_hash(o->hash, go->topic, &m);
    const wconn *c = conn_find(n, go->peer);
    if (c) {
        o->peer = c->peer;
        o->inbound = c->inbound;
    }
}

static void drain_gossip(pl__wnode *n, int64_t now) {
    pl__gossip_out go;
    while (pl__gossip_pop(n->g, &go)) {
        wconn *c = conn_find(n, go.peer);
        switch (go.kind) {
        case PL__GOSSIP_SEND:
            if (c && c->st == W_RELAY) {
                pl__wnode_out *o = push(n, PL__WNODE_SEND, go.peer);
                if (o) {
                    o->data = go.data, o->len = go.len;
                    go.data = NULL;
                }
            }
            break;
        case PL__GOSSIP_DELIVER:
            on_deliver(n, &go);
            break;
        case PL__GOSSIP_DISCONNECT:
            if (c) conn_close(n, c, go.reason, now);
            break;
        case PL__GOSSIP_GRAFTED:
        case PL__GOSSIP_PRUNED: {
            pl__wnode_out *o = push(
                n, go.kind == PL__GOSSIP_GRAFTED ? PL__WNODE_GRAFTED : PL__WNODE_PRUNED, go.peer);
            if (o) {
                memcpy(o->pubsub_topic, go.topic, sizeof o->pubsub_topic);
                o->err = go.reason;
                if (c) o->peer = c->peer, o->inbound = c->inbound;
            }
            break;
        }
        }
        pl__gossip_out_release(&go);
    }
}

/* ---- publishing ---------------------------------------------------------------- */

static void q_remove(pl__wnode *n, size_t i) {
    n->qbytes -= n->q[i].len;
    free(n->q[i].data);
    memmove(&n->q[i], &n->q[i + 1], (n->nq - i - 1) * sizeof *n->q);
    n->nq--;
}

static void q_fail(pl__wnode *n, size_t i, pl_err err) {
    pl__wnode_out *o = push(n, PL__WNODE_PUBLISH_FAILED, 0);
    if (o) {
        o->publish_id = n->q[i].id;
        o->err = err;
        memcpy(o->pubsub_topic, n->q[i].topic, sizeof n->q[i].topic);
        /* Our own encoding, so it decodes; the message tells the
         * application which content topic lost a publish. */
        (void)pl_waku_message_decode(&o->msg, n->q[i].data, n->q[i].len);
    }
    if (err == PL_ERR_WAKU_NO_PEERS) n->st.expired++;
    q_remove(n, i);
}

static bool relayed_shard(const pl__wnode *n, const char *topic);
static size_t subs_on(const pl__wnode *n, const char *topic);

/* Whether a message on topic goes out now (else it is queued). */
static bool can_publish(const pl__wnode *n, const char *topic) {
    if (n->c.publish_needs_mesh && (relayed_shard(n, topic) || subs_on(n, topic) > 0))
        return pl__gossip_mesh(n->g, topic, NULL, 0) > 0;
    return pl__gossip_publish_peers(n->g, topic) > 0;
}

/* Send the queued messages whose topic can take them now, in order;
 * expire the old ones. */
static void flush_queue(pl__wnode *n, int64_t now) {
    for (size_t i = 0; i < n->nq;) {
        wqueued *q = &n->q[i];
        if (can_publish(n, q->topic)) {
            size_t sent = 0;
            pl_err e = pl__gossip_publish(n->g, q->topic, q->data, q->len, now, &sent, NULL);
            if (e != PL_OK) {
                q_fail(n, i, e);
                continue;
            }
            n->st.published++;
            pl__wnode_out *o = push(n, PL__WNODE_PUBLISHED, 0);
            if (o) {
                o->publish_id = q->id;
                o->sent_to = sent;
                memcpy(o->pubsub_topic, q->topic, sizeof q->topic);
            }
            q_remove(n, i);
            drain_gossip(n, now);
            continue;
        }
        if (q->expires <= now) {
            q_fail(n, i, PL_ERR_WAKU_NO_PEERS);
            continue;
        }
        i++;
    }
}

pl_err pl__wnode_publish(pl__wnode *n, const pl_waku_message *m, int64_t now, pl__wnode_pub *r) {
    PL_REQUIRE(n && m && r);
    memset(r, 0, sizeof *r);
    if (n->closing) return PL_ERR_STATE;
    if (!m->payload_len) return PL_ERR_WAKU_MESSAGE; /* js-waku refuses empty payloads */
    char topic[PL_WAKU_PUBSUB_TOPIC_SIZE];
    PL_TRY(pl__wnode_pubsub_topic_for(n, topic, m->content_topic, m->content_topic_len));
    pl_waku_message w = *m;
    w.has_payload = true;
    w.pl__owner = NULL;
    size_t need = pl_waku_message_encoded_size(&w);
    if (need > PL_WAKU_MESSAGE_MAX) return PL_ERR_TOO_LARGE;
    uint8_t *buf = malloc(need);
    if (!buf) return PL_ERR_NOMEM;
    size_t len = 0;
    pl_err e = pl_waku_message_encode(buf, need, &len, &w);
    if (e == PL_OK) e = pl_waku_message_validate(&w, len);
    if (e != PL_OK) {
        free(buf);
        return e;
    }
    uint8_t hash[PL_WAKU_HASH_BYTES], gid[PL__GOSSIP_ID_BYTES];
    pl_waku_message_hash(hash, topic, &w);
    pl_sha256(gid, buf, len);
    for (size_t i = 0; i < n->nq; i++)
        if (!memcmp(n->q[i].gid, gid, sizeof gid)) {
            free(buf);
            return PL_ERR_EXISTS;
        }
    uint64_t id = ++n->next_pub;
    /* behind what is queued for the same topic, to keep the order */
    bool behind = false;
    for (size_t i = 0; i < n->nq && !behind; i++)
        behind = !strcmp(n->q[i].topic, topic);
    if (!behind && can_publish(n, topic)) {
        size_t sent = 0;
        e = pl__gossip_publish(n->g, topic, buf, len, now, &sent, NULL);
        free(buf);
        if (e != PL_OK) return e;
        n->st.published++;
        drain_gossip(n, now);
        r->sent_to = sent;
    } else {
        if (n->nq >= n->c.queue_max || n->qbytes + len > n->c.queue_bytes) {
            free(buf);
            return PL_ERR_WAKU_QUEUE_FULL;
        }
        if (n->nq == n->capq) {
            size_t ncap = n->capq ? n->capq * 2 : 8;
            wqueued *nq = realloc(n->q, ncap * sizeof *nq);
            if (!nq) {
                free(buf);
                return PL_ERR_NOMEM;
            }
            n->q = nq, n->capq = ncap;
        }
        wqueued *q = &n->q[n->nq++];
        q->id = id;
        memcpy(q->topic, topic, sizeof topic);
        q->data = buf;
        q->len = len;
        memcpy(q->gid, gid, sizeof gid);
        q->expires = now + n->c.publish_ttl_ms;
        n->qbytes += len;
        n->st.queued++;
        r->queued = true;
    }
    r->id = id;
    memcpy(r->hash, hash, sizeof hash);
    memcpy(r->pubsub_topic, topic, sizeof topic);
    return PL_OK;
}

void pl__wnode_close(pl__wnode *n) {
    PL_REQUIRE(n);
    n->closing = true;
}

void pl__wnode_fail_queued(pl__wnode *n, pl_err err) {
    PL_REQUIRE(n && err != PL_OK);
    while (n->nq)
        q_fail(n, 0, err);
}

/* ---- time ------------------------------------------------------------------- */

int64_t pl__wnode_next_deadline(const pl__wnode *n) {
    PL_REQUIRE(n);
    int64_t d = pl__gossip_next_deadline(n->g);
    for (size_t i = 0; i < n->nconns; i++)
        if (n->conns[i].st == W_META && n->conns[i].meta_deadline < d)
            d = n->conns[i].meta_deadline;
    if (!n->closing)
        for (size_t i = 0; i < n->nboot; i++)
            if (n->boot[i].st == B_WAIT && n->boot[i].retry_at < d) d = n->boot[i].retry_at;
    for (size_t i = 0; i < n->nq; i++)
        if (n->q[i].expires < d) d = n->q[i].expires;
    return d;
}

void pl__wnode_on_timer(pl__wnode *n, int64_t now) {
    PL_REQUIRE(n);
    if (now >= pl__gossip_next_deadline(n->g)) {
        pl__gossip_on_timer(n->g, now);
        drain_gossip(n, now);
    }
    for (size_t i = 0; i < n->nconns; i++) {
        wconn *c = &n->conns[i];
        if (c->st == W_META && c->meta_deadline <= now) conn_close(n, c, PL_ERR_WAKU_METADATA, now);
    }
    boot_due(n, now);
    if (n->nq) flush_queue(n, now);
}

/* ---- life cycle and introspection --------------------------------------------- */

void pl__wnode_config_default(pl__wnode_config *c) {
    PL_REQUIRE(c);
    memset(c, 0, sizeof *c);
    pl_waku_sharding_default(&c->sharding);
}

pl_err pl__wnode_new(pl__wnode **out, const pl__wnode_config *cfg, int64_t now) {
    PL_REQUIRE(out && cfg && (cfg->shards || !cfg->n_shards) &&
               (cfg->bootstrap || !cfg->n_bootstrap));
    *out = NULL;
    pl__wnode_config c = *cfg;
    if (!c.metadata_timeout_ms) c.metadata_timeout_ms = PL__WNODE_DEF_METADATA_TIMEOUT_MS;
    if (!c.reconnect_min_ms) c.reconnect_min_ms = PL__WNODE_DEF_RECONNECT_MIN_MS;
    if (!c.reconnect_max_ms) c.reconnect_max_ms = PL__WNODE_DEF_RECONNECT_MAX_MS;
    if (!c.publish_ttl_ms) c.publish_ttl_ms = PL__WNODE_DEF_PUBLISH_TTL_MS;
    if (!c.queue_max) c.queue_max = PL__WNODE_DEF_QUEUE_MAX;
    if (!c.queue_bytes) c.queue_bytes = PL__WNODE_DEF_QUEUE_BYTES;
    if (!c.max_content_topics) c.max_content_topics = PL__WNODE_DEF_MAX_CONTENT_TOPICS;
    if (!c.max_conns) c.max_conns = PL__WNODE_DEF_MAX_CONNS;
    if (c.metadata_timeout_ms < 0 || c.reconnect_min_ms < 0 || c.reconnect_max_ms < 0 ||
        c.publish_ttl_ms < 0 || c.reconnect_min_ms > c.reconnect_max_ms ||
        c.n_shards > PL__WNODE_MAX_SHARDS || c.n_bootstrap > PL__WNODE_MAX_BOOTSTRAP ||
        c.sharding.num_shards > 65536)
        return PL_ERR_INVALID_ARG;
    if (c.sharding.num_shards)
        for (size_t i = 0; i < c.n_shards; i++)
            if (c.shards[i] >= c.sharding.num_shards) return PL_ERR_INVALID_ARG;

    pl__wnode *n = calloc(1, sizeof *n);
    if (!n) return PL_ERR_NOMEM;
    n->c = c;
    n->c.shards = NULL;
    n->c.bootstrap = NULL;
    n->c.gossip = NULL;
    if (c.n_shards) {
        memcpy(n->shards, c.shards, c.n_shards * sizeof *c.shards);
        n->nshards = c.n_shards;
    } else if (!c.sharding.num_shards) {
        n->shards[0] = c.sharding.shard;
        n->nshards = 1;
    }
    pl_err e = PL_OK;
    for (size_t i = 0; i < c.n_bootstrap && e == PL_OK; i++) {
        pl__ma ma;
        pl__ma_dial d;
        e = pl__ma_parse(&ma, c.bootstrap[i], strlen(c.bootstrap[i]));
        if (e == PL_OK) e = pl__ma_dial_target(&d, ma.b, ma.len);
        if (e != PL_OK) break;
        wboot *b = &n->boot[n->nboot];
        b->addr = strdup(c.bootstrap[i]);
        if (!b->addr) {
            e = PL_ERR_NOMEM;
            break;
        }
        n->nboot++;
        b->peer = d.peer;
        b->st = B_WAIT;
        b->retry_at = now;
        b->backoff = c.reconnect_min_ms;
    }
    pl__gossip_config gc;
    if (cfg->gossip) {
        gc = *cfg->gossip;
    } else {
        pl__gossip_config_default(&gc);
        gc.validate = pl__waku_gossip_validate;
    }
    if (e == PL_OK) e = pl__gossip_new(&n->g, &gc, now);
    char topic[PL_WAKU_PUBSUB_TOPIC_SIZE];
    for (size_t i = 0; i < n->nshards && e == PL_OK; i++) {
        pl_waku_pubsub_topic_format(topic, c.sharding.cluster, n->shards[i]);
        e = pl__gossip_join(n->g, topic, now);
        if (e == PL_ERR_EXISTS) e = PL_OK; /* a shard given twice */
    }
    if (e != PL_OK) {
        pl__wnode_free(n);
        return e;
    }
    drain_gossip(n, now);
    *out = n;
    return PL_OK;
}

void pl__wnode_free(pl__wnode *n) {
    if (!n) return;
    pl__gossip_free(n->g);
    for (size_t i = 0; i < n->nboot; i++)
        free(n->boot[i].addr);
    for (size_t i = 0; i < n->nsubs; i++)
        free(n->subs[i].ct);
    free(n->subs);
    for (size_t i = 0; i < n->nq; i++)
        free(n->q[i].data);
    free(n->q);
    free(n->conns);
    pl__wnode_out o;
    while (pl__wnode_pop(n, &o))
        pl__wnode_out_release(&o);
    free(n->out);
    free(n);
}

size_t pl__wnode_relay_peers(const pl__wnode *n) {
    PL_REQUIRE(n);
    size_t k = 0;
    for (size_t i = 0; i < n->nconns; i++)
        k += n->conns[i].st == W_RELAY;
    return k;
}

size_t pl__wnode_queued(const pl__wnode *n) {
    PL_REQUIRE(n);
    return n->nq;
}

size_t pl__wnode_mesh_size(const pl__wnode *n, const char *topic) {
    PL_REQUIRE(n && topic);
    return pl__gossip_mesh(n->g, topic, NULL, 0);
}

const pl__gossip *pl__wnode_gossip(const pl__wnode *n) {
    PL_REQUIRE(n);
    return n->g;
}

void pl__wnode_stats_get(const pl__wnode *n, pl__wnode_stats *s) {
    PL_REQUIRE(n && s);
    *s = n->st;
}
