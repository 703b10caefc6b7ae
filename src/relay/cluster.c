/* SPDX-License-Identifier: Apache-2.0 */
/* The relay core in cluster mode (pl__relay_limits.cluster): its mailbox is
 * a cache of a store that several relay instances share (a NATS JetStream
 * cluster: relay/relay_backend.h), so the core keeps only the topics its
 * own clients need.
 *
 *   - A publish queues STORE_PUTs with put ids; its answer waits until the
 *     store acknowledged every one of them (pl__relay_core_put_done): the
 *     "acknowledge a publish only after it is stored" rule of the embedded
 *     store, with many puts in flight instead of one commit per loop turn.
 *   - A topic a local client subscribes to is WATCHed (other instances'
 *     messages arrive through pl__relay_core_ingest) and LOADed (its stored
 *     messages arrive the same way, then pl__relay_core_loaded).
 *   - A fetch of a topic not in the cache waits (parked) until it is
 *     loaded, then runs as on a single relay.
 *   - A topic without local subscribers, loads or fetches leaves the cache:
 *     UNWATCH, and its messages are dropped (not deleted from the store).
 *
 * Still no I/O and no clock: every input carries now_ms. */
#include "relay/internal.h"

#include "core/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fetches one connection may have waiting for loads. */
#define PARKED_PER_CONN 4

typedef struct put_ref {
    uint64_t id;
    bool done;
    char topic[PL_RELAY_TOPIC_HEX + 1];
    char mid[PL_RELAY_ID_HEX + 1];
} put_ref;

/* A request whose answer waits for its puts. */
typedef struct pending {
    struct pending *next;
    uint64_t conn;
    json_t *id, *result;
    put_ref *puts;
    size_t n, left;
    pl_err err;
} pending;

/* A fetch waiting for its topics to be loaded. */
typedef struct parked {
    struct parked *next;
    uint64_t conn;
    json_t *id, *params;
    char method[32];
    char (*ts)[PL_RELAY_TOPIC_HEX + 1];
    size_t n;
} parked;

struct pl__rs_cluster {
    uint64_t next_put;
    put_ref *req; /* puts of the request being run */
    size_t nreq, capreq;
    bool req_failed; /* a put of it could not be tracked (memory) */
    pending *pend_head, *pend_tail;
    parked *park_head;
};

pl_err pl__rs_cluster_new(pl__relay_core *c) {
    if (!(c->cl = calloc(1, sizeof *c->cl))) return PL_ERR_NOMEM;
    c->cl->next_put = 1;
    return PL_OK;
}

static void parked_free(parked *p) {
    json_decref(p->id);
    json_decref(p->params);
    free(p->ts);
    free(p);
}

void pl__rs_cluster_free(pl__relay_core *c) {
    struct pl__rs_cluster *cl = c->cl;
    if (!cl) return;
    for (pending *p = cl->pend_head, *nx; p; p = nx) {
        nx = p->next;
        json_decref(p->id);
        json_decref(p->result);
        free(p->puts);
        free(p);
    }
    for (parked *p = cl->park_head, *nx; p; p = nx) {
        nx = p->next;
        parked_free(p);
    }
    free(cl->req);
    free(cl);
    c->cl = NULL;
}

void pl__rs_cluster_request(pl__relay_core *c) {
    if (!c->cl) return;
    c->cl->nreq = 0;
    c->cl->req_failed = false;
}

static pl_err queue_topic_action(pl__relay_core *c, pl__relay_action_kind kind, const topic *t) {
    pl__relay_action a = {.kind = kind};
    memcpy(a.rec.topic, t->hex, sizeof a.rec.topic);
    return pl__rs_queue(c, &a);
}

uint64_t pl__rs_cluster_put(pl__relay_core *c, rmsg *m) {
    struct pl__rs_cluster *cl = c->cl;
    if (!cl) return 0;
    uint64_t id = cl->next_put++;
    m->putting = true;
    if (cl->nreq == cl->capreq) {
        size_t nc = cl->capreq ? cl->capreq * 2 : 8;
        put_ref *nr = realloc(cl->req, nc * sizeof *nr);
        if (!nr) {
            cl->req_failed = true;
            return id;
        }
        cl->req = nr;
        cl->capreq = nc;
    }
    put_ref *p = &cl->req[cl->nreq++];
    p->id = id;
    p->done = false;
    memcpy(p->topic, m->rec.topic, sizeof p->topic);
    memcpy(p->mid, m->rec.id, sizeof p->mid);
    return id;
}

bool pl__rs_cluster_defer(pl__relay_core *c, conn *k, json_t *id, json_t *result) {
    struct pl__rs_cluster *cl = c->cl;
    if (!cl || (!cl->nreq && !cl->req_failed)) return false;
    pending *p = calloc(1, sizeof *p);
    put_ref *puts = cl->nreq ? malloc(cl->nreq * sizeof *puts) : NULL;
    if (!p || (cl->nreq && !puts) || cl->req_failed) {
        /* Not trackable: the puts go on, the client hears of a failure and
         * publishes again (de-duplicated by the store). */
        free(p);
        free(puts);
        json_decref(result);
        pl__rs_reply_error(c, k, id, PL_RELAY_ERR_INTERNAL, "out of memory");
        return true;
    }
    memcpy(puts, cl->req, cl->nreq * sizeof *puts);
    p->conn = k->id;
    p->id = id ? json_incref(id) : json_null();
    p->result = result;
    p->puts = puts;
    p->n = p->left = cl->nreq;
    if (cl->pend_tail)
        cl->pend_tail->next = p;
    else
        cl->pend_head = p;
    cl->pend_tail = p;
    cl->nreq = 0;
    return true;
}

/* Nothing keeps t in the cache. */
static bool idle(const topic *t) {
    return !t->nsubs && !t->pins;
}

/* Drop an idle t from the cache: no more live messages, and its messages
 * leave (but those whose put is not answered yet). May free t. */
static void release_if_idle(pl__relay_core *c, topic *t) {
    if (!idle(t)) return;
    if (t->watched) {
        t->watched = false;
        (void)queue_topic_action(c, PL__RELAY_UNWATCH, t);
    }
    t->loaded = false;
    for (rmsg *m = t->head, *nx; m; m = nx) {
        nx = m->next;
        if (m->putting) continue;
        bool last = t->nmsgs == 1;
        pl__rs_msg_remove(c, m);
        if (last) return; /* t went with it */
    }
    pl__rs_topic_gc(c, t);
}

/* LOAD t unless it is loaded or loading; the load pins it. */
static void want_loaded(pl__relay_core *c, topic *t) {
    if (t->loaded || t->loading) return;
    if (queue_topic_action(c, PL__RELAY_LOAD, t) != PL_OK) return;
    /* Renumbered from 1 when empty, so that a fetch cursor taken before the
     * topic left the cache points at the same messages after the reload. */
    if (!t->nmsgs) t->next_seq = 1;
    t->loading = true;
    t->pins++;
}

void pl__rs_cluster_subscribed(pl__relay_core *c, topic *t) {
    if (!c->cl) return;
    if (!t->watched && queue_topic_action(c, PL__RELAY_WATCH, t) == PL_OK) t->watched = true;
    want_loaded(c, t);
}

void pl__rs_cluster_unsubscribed(pl__relay_core *c, topic *t) {
    if (!c->cl) return;
    release_if_idle(c, t);
}

static bool all_loaded(const pl__relay_core *c, char (*ts)[PL_RELAY_TOPIC_HEX + 1], size_t n) {
    for (size_t i = 0; i < n; i++) {
        const topic *t = pl__rs_topic_find(c, ts[i]);
        if (!t || !t->loaded) return false;
    }
    return true;
}

static void unpin_all(pl__relay_core *c, char (*ts)[PL_RELAY_TOPIC_HEX + 1], size_t n) {
    for (size_t i = 0; i < n; i++) {
        topic *t = pl__rs_topic_find(c, ts[i]);
        if (!t || !t->pins) continue;
        t->pins--;
        release_if_idle(c, t);
    }
}

bool pl__rs_cluster_fetch_ready(pl__relay_core *c, conn *k, json_t *id, const char *method,
                                json_t *params, char (*ts)[PL_RELAY_TOPIC_HEX + 1], size_t n,
                                pl_err *e) {
    *e = PL_OK;
    struct pl__rs_cluster *cl = c->cl;
    if (!cl || all_loaded(c, ts, n)) return true;
    size_t mine = 0;
    for (parked *p = cl->park_head; p; p = p->next)
        mine += p->conn == k->id;
    if (mine >= PARKED_PER_CONN || c->topics.n + n > c->lim.max_topics ||
        !pl__rs_room(c, n * (pl__rs_topic_cost() + sizeof *ts) + sizeof(parked))) {
        c->st.refused++;
        *e = PL_ERR_RELAY_BUSY;
        return false;
    }
    parked *p = calloc(1, sizeof *p);
    if (!p || !(p->ts = malloc((n ? n : 1) * sizeof *ts))) {
        free(p);
        *e = PL_ERR_NOMEM;
        return false;
    }
    p->conn = k->id;
    p->id = id ? json_incref(id) : json_null();
    p->params = json_incref(params);
    snprintf(p->method, sizeof p->method, "%s", method);
    for (size_t i = 0; i < n; i++) {
        topic *t = pl__rs_topic_find(c, ts[i]);
        if (!t) {
            if (!(t = pl__rs_topic_new(c, ts[i]))) {
                unpin_all(c, p->ts, p->n);
                parked_free(p);
                *e = PL_ERR_NOMEM;
                return false;
            }
            pl__rs_charge_topic(c, t, k->paddr, k->pdid);
        }
        memcpy(p->ts[p->n++], ts[i], sizeof *ts);
        t->pins++;
        want_loaded(c, t);
    }
    p->next = cl->park_head;
    cl->park_head = p;
    return false;
}

/* Run the parked fetches whose topics are all loaded now. */
static void run_parked(pl__relay_core *c, int64_t now_ms) {
    struct pl__rs_cluster *cl = c->cl;
    for (parked **pp = &cl->park_head; *pp;) {
        parked *p = *pp;
        if (!all_loaded(c, p->ts, p->n)) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        conn *k = pl__rs_conn_find(c, p->conn);
        if (k && !k->closing) (void)pl__rs_call(c, k, p->id, p->method, p->params, now_ms);
        unpin_all(c, p->ts, p->n);
        parked_free(p);
        pp = &cl->park_head; /* the list may have changed under the call */
    }
}

void pl__relay_core_loaded(pl__relay_core *c, const char *topic_hex, int64_t now_ms) {
    PL_REQUIRE(c && topic_hex);
    if (!c->cl) return;
    topic *t = pl__rs_topic_find(c, topic_hex);
    if (!t || !t->loading) return;
    t->loading = false;
    t->loaded = true;
    t->pins--;
    run_parked(c, now_ms);
    if ((t = pl__rs_topic_find(c, topic_hex))) release_if_idle(c, t);
}

pl_err pl__relay_core_ingest(pl__relay_core *c, const pl__relay_record *rec,
                             uint64_t publisher_conn, int64_t now_ms) {
    PL_REQUIRE(c && rec);
    if (!c->cl) return PL_ERR_STATE;
    if (!pl__rs_is_topic_hex(rec->topic, strnlen(rec->topic, sizeof rec->topic)) || !rec->message ||
        !rec->message_len)
        return PL_ERR_INVALID_ARG;
    topic *t = pl__rs_topic_find(c, rec->topic);
    if (!t || !(t->watched || t->loading)) return PL_ERR_NOT_FOUND;
    if (rec->message_len > c->lim.max_message_bytes ||
        (rec->attestation && strlen(rec->attestation) > PL_RELAY_ATTESTATION_MAX))
        return PL_ERR_TOO_LARGE;
    if (rec->expires_at_ms <= now_ms) return PL_ERR_BAD_TTL;
    /* The id is recomputed: another instance is trusted to store, not to
     * name a message. */
    pl__relay_record r = *rec;
    pl__rs_message_id(r.id, rec->message, rec->message_len);
    r.publisher[sizeof r.publisher - 1] = '\0';
    if (pl__rs_mailbox_find(c, t, r.id)) return PL_ERR_EXISTS;
    if (t->nmsgs >= c->lim.max_mailbox_per_topic && !pl__rs_evict_one(c, t))
        return PL_ERR_MAILBOX_FULL;
    size_t cost = pl__rs_msg_cost(c, r.message_len, r.attestation ? strlen(r.attestation) : 0);
    if (c->nheap >= c->lim.max_messages || c->mem.stored + cost > c->lim.max_total_bytes ||
        !pl__rs_room(c, cost))
        return PL_ERR_MAILBOX_FULL;
    principal *p = NULL;
    if (r.publisher[0] && !(p = pl__rs_principal_get(c, r.publisher))) return PL_ERR_NOMEM;
    rmsg *m;
    pl_err e = pl__rs_mailbox_add(c, t, &r, publisher_conn, p, NULL, &m);
    if (e != PL_OK) {
        pl__rs_principal_gc(c, p);
        return e;
    }
    pl__rs_fan_out(c, t, m, now_ms);
    return PL_OK;
}

static void answer(pl__relay_core *c, pending *p) {
    conn *k = pl__rs_conn_find(c, p->conn);
    json_t *result = p->result;
    p->result = NULL;
    if (!k) {
        json_decref(result);
        return;
    }
    if (p->err == PL_OK) {
        (void)pl__rs_reply_result(c, k, p->id, result);
        return;
    }
    json_decref(result);
    char msg[96];
    int code = PL_RELAY_ERR_INTERNAL;
    if (p->err == PL_ERR_MAILBOX_FULL) {
        code = PL_RELAY_ERR_HANDLER;
        snprintf(msg, sizeof msg, "mailbox limit reached: %zu messages per topic",
                 c->lim.max_mailbox_per_topic);
    } else if (p->err == PL_ERR_RELAY_BUSY) {
        code = PL_RELAY_ERR_RATE;
        snprintf(msg, sizeof msg, "Too many requests: storage queue full, try again later");
    } else {
        snprintf(msg, sizeof msg, "storage unavailable: message not stored, publish again");
    }
    (void)pl__rs_reply_error(c, k, p->id, code, msg);
}

void pl__relay_core_put_done(pl__relay_core *c, uint64_t put_id, pl_err result, int64_t now_ms) {
    PL_REQUIRE(c);
    (void)now_ms;
    struct pl__rs_cluster *cl = c->cl;
    if (!cl) return;
    pending *prev = NULL, *p = cl->pend_head;
    for (; p; prev = p, p = p->next)
        if (p->n && put_id >= p->puts[0].id && put_id <= p->puts[p->n - 1].id) break;
    if (!p) return;
    put_ref *r = &p->puts[put_id - p->puts[0].id];
    if (r->id != put_id || r->done) return;
    r->done = true;
    p->left--;
    if (result != PL_OK && p->err == PL_OK) p->err = result;
    topic *t = pl__rs_topic_find(c, r->topic);
    rmsg *m = t ? pl__rs_mailbox_find(c, t, r->mid) : NULL;
    if (m) {
        /* Another put of the same message (a client's retry) may still be
         * out: it keeps the flag until then. */
        bool other = false;
        for (pending *q = cl->pend_head; q && !other; q = q->next)
            for (size_t i = 0; i < q->n && !other; i++)
                other = !q->puts[i].done && !memcmp(q->puts[i].mid, r->mid, PL_RELAY_ID_HEX) &&
                        !memcmp(q->puts[i].topic, r->topic, PL_RELAY_TOPIC_HEX);
        m->putting = other;
        /* Not stored: not kept (local subscribers may have had it; the
         * client publishes again). Stored on a topic nobody here wants:
         * the store has it, the cache need not. */
        if (!other && (result != PL_OK || idle(t))) {
            bool last = t->nmsgs == 1;
            pl__rs_msg_remove(c, m);
            if (!last || (t = pl__rs_topic_find(c, r->topic))) release_if_idle(c, t);
        }
    }
    if (p->left) return;
    if (prev)
        prev->next = p->next;
    else
        cl->pend_head = p->next;
    if (cl->pend_tail == p) cl->pend_tail = prev;
    answer(c, p);
    json_decref(p->id);
    free(p->puts);
    free(p);
}
