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
 *   - A publish or fetch of a topic not in the cache waits (parked) until
 *     it is watched and loaded, then runs as on a single relay: a publish
 *     counts every stored message of the topic, whatever its TTL class.
 *     The topic then stays (lingers) cluster_linger_ms, so that a client
 *     publishing without subscribing loads it once.
 *   - A full topic asks the other instances which of its oldest messages
 *     they are done with (ROOM); the request waits for the answer and runs
 *     again: the messages every instance is done with and a subscriber
 *     acknowledged leave the store (EVICT), or it is refused (-32000).
 *     Another instance's evictions leave the cache (pl__relay_core_evicted).
 *   - A topic without local subscribers, waiting requests or linger leaves
 *     the cache: UNWATCH, and its messages are dropped (not deleted from
 *     the store).
 *
 * Still no I/O and no clock: every input carries now_ms. */
#include "relay/internal.h"

#include "core/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* A request waiting for its topics to be loaded, or for a ROOM answer;
 * run again, in arrival order, when none of its topics is loading or has
 * a ROOM out. Its topics are pinned meanwhile. */
typedef struct parked {
    struct parked *next;
    uint64_t conn;
    json_t *id, *params;
    char method[32];
    char (*ts)[PL_RELAY_TOPIC_HEX + 1];
    size_t n, cap;
    size_t cost; /* charged to the memory budget */
    bool room;   /* waited for a ROOM: runs again without asking another */
    bool keep;   /* parked again while it ran (in place, keeping its turn) */
} parked;

struct pl__rs_cluster {
    uint64_t next_put;
    put_ref *req; /* puts of the request being run */
    size_t nreq, capreq;
    bool req_failed; /* a put of it could not be tracked (memory) */
    pending *pend_head, *pend_tail;
    parked *park_head, *park_tail;
    parked *running;                  /* the parked request running again now */
    parked *cur;                      /* the entry the current (new) request was parked in */
    topic *linger_head, *linger_tail; /* by linger_until */
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
    c->cl->cur = NULL;
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

/* WATCH t (so that nothing published meanwhile is missed), then LOAD it
 * unless it is loaded or loading; the load pins it. */
static void want_loaded(pl__relay_core *c, topic *t) {
    if (!t->watched && queue_topic_action(c, PL__RELAY_WATCH, t) == PL_OK) t->watched = true;
    if (t->loaded || t->loading) return;
    if (queue_topic_action(c, PL__RELAY_LOAD, t) != PL_OK) return;
    /* Renumbered from 1 when empty, so that a fetch cursor taken before the
     * topic left the cache points at the same messages after the reload. */
    if (!t->nmsgs) t->next_seq = 1;
    t->loading = true;
    t->pins++;
}

/* ---- linger: topics kept a while after a publish or fetch ---------------------- */

static void linger_unlink(struct pl__rs_cluster *cl, topic *t) {
    if (t->lprev)
        t->lprev->lnext = t->lnext;
    else
        cl->linger_head = t->lnext;
    if (t->lnext)
        t->lnext->lprev = t->lprev;
    else
        cl->linger_tail = t->lprev;
    t->lprev = t->lnext = NULL;
}

/* t stays cached (and watched) until now + linger: one pin while it does. */
static void linger(pl__relay_core *c, topic *t, int64_t now_ms) {
    struct pl__rs_cluster *cl = c->cl;
    if (t->nsubs) return; /* kept anyway; lingers from its next use */
    if (t->lingering) {
        linger_unlink(cl, t);
    } else {
        t->lingering = true;
        t->pins++;
    }
    t->linger_until = now_ms + c->lim.cluster_linger_ms;
    t->lprev = cl->linger_tail;
    if (cl->linger_tail)
        cl->linger_tail->lnext = t;
    else
        cl->linger_head = t;
    cl->linger_tail = t;
}

void pl__rs_cluster_tick(pl__relay_core *c, int64_t now_ms) {
    struct pl__rs_cluster *cl = c->cl;
    if (!cl) return;
    while (cl->linger_head && cl->linger_head->linger_until <= now_ms) {
        topic *t = cl->linger_head;
        linger_unlink(cl, t);
        t->lingering = false;
        t->pins--;
        release_if_idle(c, t);
    }
}

int64_t pl__rs_cluster_deadline(const pl__relay_core *c) {
    return c->cl && c->cl->linger_head ? c->cl->linger_head->linger_until : INT64_MAX;
}

void pl__rs_cluster_subscribed(pl__relay_core *c, topic *t) {
    if (!c->cl) return;
    want_loaded(c, t);
}

void pl__rs_cluster_unsubscribed(pl__relay_core *c, topic *t) {
    if (!c->cl) return;
    release_if_idle(c, t);
}

/* ---- parked requests ------------------------------------------------------------- */

static bool runnable(const pl__relay_core *c, const parked *p) {
    for (size_t i = 0; i < p->n; i++) {
        const topic *t = pl__rs_topic_find(c, p->ts[i]);
        if (!t || !t->loaded || t->room_out) return false;
    }
    return true;
}

/* Every other message flag of a ROOM answer on t is spent. */
static void room_spent(topic *t) {
    for (rmsg *m = t->head; m; m = m->next)
        m->others_done = false;
}

/* p waits on topic hex too (created when missing, pinned, loaded). */
static pl_err park_topic(pl__relay_core *c, conn *k, parked *p, const char *hex) {
    for (size_t i = 0; i < p->n; i++)
        if (!memcmp(p->ts[i], hex, PL_RELAY_TOPIC_HEX)) return PL_OK;
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 1;
        char(*nt)[PL_RELAY_TOPIC_HEX + 1] = realloc(p->ts, nc * sizeof *nt);
        if (!nt) return PL_ERR_NOMEM;
        p->ts = nt;
        p->cap = nc;
    }
    topic *t = pl__rs_topic_find(c, hex);
    if (!t) {
        if (!(t = pl__rs_topic_new(c, hex))) return PL_ERR_NOMEM;
        if (k) pl__rs_charge_topic(c, t, k->paddr, k->pdid);
    }
    memcpy(p->ts[p->n++], hex, PL_RELAY_TOPIC_HEX + 1);
    t->pins++;
    if (p->room) t->room_waiters++;
    want_loaded(c, t);
    return PL_OK;
}

/* The request leaves the list (ran, or its connection is gone): its
 * topics are unpinned and linger. */
static void park_finish(pl__relay_core *c, parked *p, int64_t now_ms) {
    conn *k = pl__rs_conn_find(c, p->conn);
    if (k && k->parked) k->parked--;
    for (size_t i = 0; i < p->n; i++) {
        topic *t = pl__rs_topic_find(c, p->ts[i]);
        if (!t) continue;
        if (p->room && t->room_waiters && !--t->room_waiters) room_spent(t);
        if (t->loaded) linger(c, t, now_ms);
        if (t->pins) t->pins--;
        release_if_idle(c, t);
    }
    pl__rs_release(c, p->cost);
    parked_free(p);
}

/* A new entry for the current request of k, at the end of the list. */
static parked *park_new(pl__relay_core *c, conn *k, json_t *id, const char *method, json_t *params,
                        pl_err *e) {
    struct pl__rs_cluster *cl = c->cl;
    size_t cost = sizeof(parked) + c->frame_len * 2 + 256;
    if (k->parked >= PL__RS_PARKED_MAX || !pl__rs_room(c, cost)) {
        c->st.refused++;
        *e = PL_ERR_RELAY_BUSY;
        return NULL;
    }
    parked *p = calloc(1, sizeof *p);
    if (!p) {
        *e = PL_ERR_NOMEM;
        return NULL;
    }
    p->conn = k->id;
    p->id = id ? json_incref(id) : json_null();
    p->params = json_incref(params);
    p->cost = cost;
    snprintf(p->method, sizeof p->method, "%s", method);
    pl__rs_charge(c, cost);
    k->parked++;
    if (cl->park_tail)
        cl->park_tail->next = p;
    else
        cl->park_head = p;
    cl->park_tail = p;
    cl->cur = p;
    return p;
}

static void park_unlink(struct pl__rs_cluster *cl, parked *p) {
    parked *prev = NULL;
    for (parked *q = cl->park_head; q && q != p; q = q->next)
        prev = q;
    if (prev)
        prev->next = p->next;
    else
        cl->park_head = p->next;
    if (cl->park_tail == p) cl->park_tail = prev;
    p->next = NULL;
}

bool pl__rs_cluster_ready(pl__relay_core *c, conn *k, json_t *id, const char *method,
                          json_t *params, char (*ts)[PL_RELAY_TOPIC_HEX + 1], size_t n,
                          int64_t now_ms, pl_err *e) {
    *e = PL_OK;
    struct pl__rs_cluster *cl = c->cl;
    if (!cl) return true;
    bool ready = true;
    size_t fresh = 0;
    for (size_t i = 0; i < n; i++) {
        const topic *t = pl__rs_topic_find(c, ts[i]);
        if (!t || !t->loaded || t->room_out) ready = false;
        fresh += !t;
    }
    if (ready) {
        for (size_t i = 0; i < n; i++)
            linger(c, pl__rs_topic_find(c, ts[i]), now_ms);
        return true;
    }
    parked *p = cl->running;
    if (p) {
        /* Running again and still not ready (a topic left meanwhile):
         * parked again in place. */
        p->keep = true;
    } else {
        if (c->topics.n + fresh > c->lim.max_topics) {
            c->st.refused++;
            *e = PL_ERR_RELAY_BUSY;
            return false;
        }
        if (!(p = park_new(c, k, id, method, params, e))) return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (park_topic(c, k, p, ts[i]) != PL_OK) {
            *e = PL_ERR_NOMEM;
            if (p->keep) {
                p->keep = false; /* answered with the error now */
                return false;
            }
            park_unlink(cl, p);
            park_finish(c, p, now_ms);
            cl->cur = NULL;
            return false;
        }
    }
    return false;
}

bool pl__rs_cluster_need_room(pl__relay_core *c, conn *k, json_t *id, const char *method,
                              json_t *params, topic *t) {
    struct pl__rs_cluster *cl = c->cl;
    if (!cl || !method) return false;
    parked *p = cl->running;
    if (p && p->room) return false; /* it had its answer */
    if (!t->room_out) {
        char *ids = malloc((size_t)PL_RELAY_ROOM_MAX * PL_RELAY_ID_HEX);
        size_t n = ids ? pl__rs_past(t, ids, PL_RELAY_ROOM_MAX) : 0;
        if (!n) { /* nothing here could go: no need to ask */
            free(ids);
            return false;
        }
        pl__relay_action a = {.kind = PL__RELAY_ROOM, .ids = ids, .nids = n};
        memcpy(a.rec.topic, t->hex, sizeof a.rec.topic);
        if (pl__rs_queue(c, &a) != PL_OK) {
            free(ids);
            return false;
        }
        t->room_out = true;
        c->st.rooms++;
    }
    pl_err e = PL_OK;
    if (p) {
        p->keep = true;
    } else if (!(p = cl->cur) && !(p = park_new(c, k, id, method, params, &e))) {
        return false; /* refused: the ROOM still goes out, for the next request */
    }
    if (!p->room) {
        p->room = true;
        for (size_t i = 0; i < p->n; i++) {
            topic *x = pl__rs_topic_find(c, p->ts[i]);
            if (x) x->room_waiters++;
        }
    }
    if (park_topic(c, k, p, t->hex) != PL_OK) return false;
    return true;
}

void pl__rs_cluster_answered(pl__relay_core *c, int64_t now_ms) {
    struct pl__rs_cluster *cl = c->cl;
    if (!cl) return;
    if (cl->running) cl->running->keep = false;
    if (cl->cur) {
        park_unlink(cl, cl->cur);
        park_finish(c, cl->cur, now_ms);
        cl->cur = NULL;
    }
}

/* Run the parked requests that can run now, oldest first. */
static void run_parked(pl__relay_core *c, int64_t now_ms) {
    struct pl__rs_cluster *cl = c->cl;
    for (;;) {
        parked *p = cl->park_head;
        while (p && (p->keep || !runnable(c, p)))
            p = p->next;
        if (!p) break;
        conn *k = pl__rs_conn_find(c, p->conn);
        if (k && !k->closing) {
            cl->running = p;
            (void)pl__rs_call(c, k, p->id, p->method, p->params, now_ms);
            cl->running = NULL;
        }
        if (p->keep && k && !k->closing) continue; /* waits again, in place */
        p->keep = false;
        park_unlink(cl, p);
        park_finish(c, p, now_ms);
    }
    for (parked *p = cl->park_head; p; p = p->next)
        p->keep = false;
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

void pl__relay_core_load_failed(pl__relay_core *c, const char *topic_hex, int64_t now_ms) {
    PL_REQUIRE(c && topic_hex);
    struct pl__rs_cluster *cl = c->cl;
    if (!cl) return;
    topic *t = pl__rs_topic_find(c, topic_hex);
    if (!t || !t->loading) return;
    t->loading = false;
    t->pins--;
    /* What waits for it cannot count the topic: answered now (the client
     * publishes or fetches again), not run on a partial view. */
    for (parked *p = cl->park_head, *nx; p; p = nx) {
        nx = p->next;
        bool mine = false;
        for (size_t i = 0; i < p->n && !mine; i++)
            mine = !memcmp(p->ts[i], topic_hex, PL_RELAY_TOPIC_HEX);
        if (!mine) continue;
        conn *k = pl__rs_conn_find(c, p->conn);
        if (k && !k->closing)
            pl__rs_reply_error(c, k, p->id, PL_RELAY_ERR_INTERNAL,
                               "storage unavailable: the topic could not be read, try again");
        park_unlink(cl, p);
        park_finish(c, p, now_ms);
    }
    if ((t = pl__rs_topic_find(c, topic_hex))) release_if_idle(c, t);
}

/* ---- ROOM and EVICT ------------------------------------------------------------- */

static rmsg *find_msg(const pl__relay_core *c, const topic *t, const char *id) {
    char hex[PL_RELAY_ID_HEX + 1];
    memcpy(hex, id, PL_RELAY_ID_HEX);
    hex[PL_RELAY_ID_HEX] = '\0';
    return pl__rs_mailbox_find(c, t, hex);
}

void pl__relay_core_room_query(const pl__relay_core *c, const char *topic_hex, const char *ids,
                               size_t n, uint8_t *flags) {
    PL_REQUIRE(c && topic_hex && (ids || !n) && (flags || !n));
    const topic *t = c->cl ? pl__rs_topic_find(c, topic_hex) : NULL;
    for (size_t i = 0; i < n; i++) {
        flags[i] = 0;
        if (!c->cl) continue; /* not a cluster instance: it says nothing goes */
        if (!t || !t->nsubs) {
            /* No local subscriber: done with everything. */
            const rmsg *m = t ? find_msg(c, t, ids + i * PL_RELAY_ID_HEX) : NULL;
            flags[i] = PL_RELAY_ROOM_DONE | (m && m->acked ? PL_RELAY_ROOM_ACKED : 0);
            continue;
        }
        /* Subscribers whose topic is not loaded yet may need anything. */
        if (!t->loaded) continue;
        const rmsg *m = find_msg(c, t, ids + i * PL_RELAY_ID_HEX);
        /* Not here: nothing local waits for it (a copy arriving late is
         * delivered anyway). */
        if (!m) {
            flags[i] = PL_RELAY_ROOM_DONE;
            continue;
        }
        if (pl__rs_done_here(t, m)) flags[i] |= PL_RELAY_ROOM_DONE;
        if (m->acked) flags[i] |= PL_RELAY_ROOM_ACKED;
    }
}

void pl__relay_core_room_answer(pl__relay_core *c, const char *topic_hex, const char *ids,
                                const uint8_t *flags, size_t n, int64_t now_ms) {
    PL_REQUIRE(c && topic_hex && (ids || !n) && (flags || !n));
    if (!c->cl) return;
    topic *t = pl__rs_topic_find(c, topic_hex);
    if (!t || !t->room_out) return;
    t->room_out = false;
    for (size_t i = 0; i < n; i++) {
        rmsg *m = find_msg(c, t, ids + i * PL_RELAY_ID_HEX);
        if (!m) continue;
        if (flags[i] & PL_RELAY_ROOM_ACKED) m->acked = true; /* received elsewhere */
        if (flags[i] & PL_RELAY_ROOM_DONE) m->others_done = true;
    }
    run_parked(c, now_ms);
    /* Flags nobody waited for (the request's connection went) are spent. */
    if ((t = pl__rs_topic_find(c, topic_hex)) && !t->room_waiters) room_spent(t);
}

void pl__relay_core_evicted(pl__relay_core *c, const char *topic_hex, const char *id) {
    PL_REQUIRE(c && topic_hex && id);
    if (!c->cl) return;
    topic *t = pl__rs_topic_find(c, topic_hex);
    rmsg *m = t ? find_msg(c, t, id) : NULL;
    if (!m || m->putting) return;
    pl__rs_msg_remove(c, m);
}

void pl__relay_core_stored_at(pl__relay_core *c, const char *topic_hex, const char *id,
                              uint64_t store_ref) {
    PL_REQUIRE(c && topic_hex && id);
    topic *t = c->cl ? pl__rs_topic_find(c, topic_hex) : NULL;
    rmsg *m = t ? find_msg(c, t, id) : NULL;
    if (m) m->rec.store_ref = store_ref;
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
    /* Pushed inside a JSON frame: text only (a backend's JSON parser
     * guarantees it; another backend might not). */
    if (!pl__utf8_valid((const unsigned char *)rec->message, rec->message_len) ||
        (rec->attestation &&
         !pl__utf8_valid((const unsigned char *)rec->attestation, strlen(rec->attestation))))
        return PL_ERR_BAD_UTF8;
    /* The id is recomputed: another instance is trusted to store, not to
     * name a message. */
    pl__relay_record r = *rec;
    pl__rs_message_id(r.id, rec->message, rec->message_len);
    r.publisher[sizeof r.publisher - 1] = '\0';
    rmsg *dup = pl__rs_mailbox_find(c, t, r.id);
    if (dup) {
        if (r.store_ref && !dup->rec.store_ref) dup->rec.store_ref = r.store_ref;
        return PL_ERR_EXISTS;
    }
    /* No per-topic limit here: the store holds what it holds (the cache
     * mirrors it), and a publish counts it. */
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
