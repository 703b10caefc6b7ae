/* SPDX-License-Identifier: Apache-2.0 */
/* The relay core's mailbox: every stored message until its TTL, indexed by
 * (topic, id) for the re-publish check, a min-heap on expiry, and the
 * rules that take a message out early: eviction of acknowledged messages
 * from a full topic. */
#include "relay/internal.h"

#include "core/internal.h"

#include <stdlib.h>
#include <string.h>

bool pl__rs_is_own(const conn *k, const rmsg *m) {
    if (m->publisher_conn == k->id) return true;
    return k->has_did && m->rec.publisher[0] && !strcmp(m->rec.publisher, k->client);
}

rmsg *pl__rs_owed_from(const conn *k, rmsg *m) {
    while (m && pl__rs_is_own(k, m))
        m = m->next;
    return m;
}

void pl__rs_msg_unref(rmsg *m) {
    if (--m->refs) return;
    free(m->rec.message);
    free(m->rec.attestation);
    free(m);
}

/* ---- the expiry heap --------------------------------------------------------- */

static bool heap_less(const rmsg *a, const rmsg *b) {
    return a->rec.expires_at_ms < b->rec.expires_at_ms;
}

static void heap_set(pl__relay_core *c, size_t i, rmsg *m) {
    c->heap[i] = m;
    m->hidx = i;
}

static void heap_up(pl__relay_core *c, size_t i) {
    rmsg *m = c->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(m, c->heap[p])) break;
        heap_set(c, i, c->heap[p]);
        i = p;
    }
    heap_set(c, i, m);
}

static void heap_down(pl__relay_core *c, size_t i) {
    rmsg *m = c->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, s = i;
        const rmsg *best = m;
        if (l < c->nheap && heap_less(c->heap[l], best)) {
            s = l;
            best = c->heap[l];
        }
        if (r < c->nheap && heap_less(c->heap[r], best)) s = r;
        if (s == i) break;
        heap_set(c, i, c->heap[s]);
        i = s;
    }
    heap_set(c, i, m);
}

static pl_err heap_push(pl__relay_core *c, rmsg *m) {
    if (c->nheap == c->capheap) {
        size_t nc = c->capheap ? c->capheap * 2 : 256;
        rmsg **nh = realloc(c->heap, nc * sizeof *nh);
        if (!nh) return PL_ERR_NOMEM;
        c->heap = nh;
        c->capheap = nc;
    }
    c->heap[c->nheap] = m;
    heap_up(c, c->nheap++);
    return PL_OK;
}

static void heap_remove(pl__relay_core *c, rmsg *m) {
    size_t i = m->hidx;
    rmsg *last = c->heap[--c->nheap];
    if (i == c->nheap) return;
    heap_set(c, i, last);
    heap_up(c, i);
    heap_down(c, last->hidx);
}

int64_t pl__rs_mailbox_deadline(const pl__relay_core *c) {
    return c->nheap ? c->heap[0]->rec.expires_at_ms : INT64_MAX;
}

/* ---- the id index --------------------------------------------------------------- */

/* One index for every topic: a message id is only unique within its topic,
 * so the key is both. */
static uint64_t id_hash(const pl__relay_core *c, const char *topic_hex, const char *id) {
    char key[PL_RELAY_TOPIC_HEX + PL_RELAY_ID_HEX];
    memcpy(key, topic_hex, PL_RELAY_TOPIC_HEX);
    memcpy(key + PL_RELAY_TOPIC_HEX, id, PL_RELAY_ID_HEX);
    return pl__ht_hash(&c->ids, key, sizeof key);
}

rmsg *pl__rs_mailbox_find(const pl__relay_core *c, const topic *t, const char *id) {
    uint64_t h = id_hash(c, t->hex, id);
    for (pl__hnode *n = pl__ht_first(&c->ids, h); n; n = pl__ht_next(n, h)) {
        rmsg *m = PL__ENTRY(n, rmsg, inode);
        if (m->t == t && !memcmp(m->rec.id, id, PL_RELAY_ID_HEX)) return m;
    }
    return NULL;
}

/* ---- adding and removing ------------------------------------------------------------ */

/* The size of {"topic":"..","message":"..","publishedAt":N,"tag":N,
 * "attestation":".."} as jansson writes it, or a little more. */
static size_t wire_size(const pl__relay_record *r, size_t msg_json) {
    size_t n = 96 + PL_RELAY_TOPIC_HEX + msg_json;
    if (r->attestation) n += 16 + pl__rs_json_string_len(r->attestation, strlen(r->attestation));
    return n;
}

pl_err pl__rs_mailbox_add(pl__relay_core *c, topic *t, const pl__relay_record *rec,
                          uint64_t publisher_conn, principal *a, principal *b, rmsg **out) {
    rmsg *m = calloc(1, sizeof *m);
    if (!m) return PL_ERR_NOMEM;
    m->rec = *rec;
    m->rec.message = malloc(rec->message_len + 1);
    m->rec.attestation = rec->attestation ? strdup(rec->attestation) : NULL;
    if (!m->rec.message || (rec->attestation && !m->rec.attestation)) goto nomem;
    memcpy(m->rec.message, rec->message, rec->message_len);
    m->rec.message[rec->message_len] = '\0';
    if (pl__ht_insert(&c->ids, &m->inode, id_hash(c, t->hex, m->rec.id)) != PL_OK) goto nomem;
    if (heap_push(c, m) != PL_OK) {
        pl__ht_remove(&c->ids, &m->inode);
        goto nomem;
    }
    m->t = t;
    m->refs = 1;
    m->publisher_conn = publisher_conn;
    m->seq = t->next_seq++;
    m->msg_json = pl__rs_json_string_len(m->rec.message, m->rec.message_len);
    m->wire = wire_size(&m->rec, m->msg_json);
    m->cost = pl__rs_msg_cost(c, rec->message_len, rec->attestation ? strlen(rec->attestation) : 0);
    m->prev = t->tail;
    if (t->tail)
        t->tail->next = m;
    else
        t->head = m;
    t->tail = m;
    t->nmsgs++;
    pl__rs_charge_msg(c, m, a, b);
    *out = m;
    return PL_OK;
nomem:
    free(m->rec.message);
    free(m->rec.attestation);
    free(m);
    return PL_ERR_NOMEM;
}

pl_err pl__rs_store_action(pl__relay_core *c, pl__relay_action_kind kind, const rmsg *m) {
    if (c->lim.no_store || (c->lim.cluster && kind == PL__RELAY_STORE_DEL)) return PL_OK;
    pl__relay_action a = {.kind = kind};
    a.rec = m->rec;
    a.rec.message = NULL;
    a.rec.attestation = NULL;
    if (kind == PL__RELAY_STORE_PUT) {
        a.rec.message = malloc(m->rec.message_len + 1);
        if (!a.rec.message) return PL_ERR_NOMEM;
        memcpy(a.rec.message, m->rec.message, m->rec.message_len + 1);
        if (m->rec.attestation && !(a.rec.attestation = strdup(m->rec.attestation))) {
            free(a.rec.message);
            return PL_ERR_NOMEM;
        }
    } else {
        a.rec.message_len = 0;
    }
    pl_err e = pl__rs_queue(c, &a);
    if (e != PL_OK) {
        pl__relay_action_release(&a);
        return e;
    }
    if (kind == PL__RELAY_STORE_PUT && c->lim.cluster) {
        c->q.a[c->q.len - 1].put_id = pl__rs_cluster_put(c, (rmsg *)m);
        c->q.a[c->q.len - 1].conn = m->publisher_conn; /* names an anonymous publisher */
    }
    return PL_OK;
}

void pl__rs_msg_remove(pl__relay_core *c, rmsg *m) {
    topic *t = m->t;
    /* Listeners whose next message this was move past it. */
    for (size_t i = 0; i < t->nsubs; i++) {
        sub *s = t->subs[i];
        if (s->next != m) continue;
        s->next = pl__rs_owed_from(s->k, m->next);
        if (!s->next) pl__rs_ready_remove(s);
    }
    if (m->prev)
        m->prev->next = m->next;
    else
        t->head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        t->tail = m->prev;
    m->prev = m->next = NULL;
    pl__ht_remove(&c->ids, &m->inode);
    heap_remove(c, m);
    t->nmsgs--;
    pl__rs_release_msg(c, m);
    m->t = NULL;
    pl__rs_store_action(c, PL__RELAY_STORE_DEL, m);
    pl__rs_topic_gc(c, t);
    pl__rs_msg_unref(m);
}

void pl__rs_expire(pl__relay_core *c, int64_t now_ms) {
    while (c->nheap && c->heap[0]->rec.expires_at_ms <= now_ms)
        pl__rs_msg_remove(c, c->heap[0]);
}

/* ---- eviction ------------------------------------------------------------------- */

/* The oldest position any current listener of t still has to go through. */
static uint64_t min_cursor(const topic *t) {
    uint64_t seq = UINT64_MAX;
    for (size_t i = 0; i < t->nsubs; i++)
        if (t->subs[i]->next && t->subs[i]->next->seq < seq) seq = t->subs[i]->next->seq;
    return seq;
}

/* A message every current listener is done with, that someone received.
 * In cluster mode also: every other instance said so in the ROOM answer
 * being used, and its own put is stored. */
static bool evictable(const pl__relay_core *c, const rmsg *m, uint64_t minseq) {
    if (!m->acked || m->inflight || m->seq >= minseq) return false;
    return !c->cl || (m->others_done && !m->putting);
}

size_t pl__rs_evictable(const pl__relay_core *c, const topic *t, size_t want, size_t *cost) {
    size_t n = 0, bytes = 0;
    uint64_t minseq = min_cursor(t);
    for (const rmsg *m = t->head; m && m->seq < minseq && n < want; m = m->next) {
        if (!evictable(c, m, minseq)) continue;
        n++;
        bytes += m->cost;
    }
    if (cost) *cost = bytes;
    return n;
}

bool pl__rs_evict_one(pl__relay_core *c, topic *t) {
    uint64_t minseq = min_cursor(t);
    for (rmsg *m = t->head; m && m->seq < minseq; m = m->next) {
        if (!evictable(c, m, minseq)) continue;
        if (c->cl) {
            /* The shared store lets it go too, and the other instances. */
            pl__relay_action a = {.kind = PL__RELAY_EVICT};
            a.rec = m->rec;
            a.rec.message = NULL;
            a.rec.attestation = NULL;
            a.rec.message_len = 0;
            if (pl__rs_queue(c, &a) != PL_OK) return false;
        }
        c->st.evicted++;
        pl__rs_msg_remove(c, m);
        return true;
    }
    return false;
}

size_t pl__rs_past(const topic *t, char *ids, size_t max) {
    size_t n = 0;
    uint64_t minseq = min_cursor(t);
    for (const rmsg *m = t->head; m && m->seq < minseq && n < max; m = m->next) {
        if (m->inflight || m->putting) continue;
        memcpy(ids + n * PL_RELAY_ID_HEX, m->rec.id, PL_RELAY_ID_HEX);
        n++;
    }
    return n;
}

bool pl__rs_done_here(const topic *t, const rmsg *m) {
    return !m->inflight && m->seq < min_cursor(t);
}

json_t *pl__rs_message_json(const rmsg *m) {
    json_t *d = json_object();
    if (!d) return NULL;
    json_object_set_new(d, "topic", json_string(m->rec.topic));
    json_object_set_new(d, "message", json_stringn(m->rec.message, m->rec.message_len));
    json_object_set_new(d, "publishedAt", json_integer(m->rec.published_at_ms));
    json_object_set_new(d, "tag", json_integer(m->rec.tag));
    if (m->rec.attestation) json_object_set_new(d, "attestation", json_string(m->rec.attestation));
    return d;
}

void pl__rs_mailbox_free(pl__relay_core *c) {
    for (size_t i = 0; i < c->nheap; i++) {
        rmsg *m = c->heap[i];
        pl__rs_release_msg(c, m);
        m->t = NULL;
        pl__rs_msg_unref(m);
    }
    free(c->heap);
    c->heap = NULL;
    c->nheap = c->capheap = 0;
    pl__ht_free(&c->ids);
}
