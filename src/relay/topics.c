/* SPDX-License-Identifier: Apache-2.0 */
/* The relay core's topics, connections and subscriptions: who listens to
 * what, and how far each listener got in its topic's mailbox. Every table
 * is keyed with SipHash under a key of this process (core/htable.h), so
 * topics a client chooses cannot pile into one chain. */
#include "relay/internal.h"

#include "core/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- topics ---------------------------------------------------------------- */

topic *pl__rs_topic_find(const pl__relay_core *c, const char *hex) {
    uint64_t h = pl__ht_hash(&c->topics, hex, PL_RELAY_TOPIC_HEX);
    for (pl__hnode *n = pl__ht_first(&c->topics, h); n; n = pl__ht_next(n, h)) {
        topic *t = PL__ENTRY(n, topic, hnode);
        if (!memcmp(t->hex, hex, PL_RELAY_TOPIC_HEX)) return t;
    }
    return NULL;
}

topic *pl__rs_topic_new(pl__relay_core *c, const char *hex) {
    topic *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    memcpy(t->hex, hex, PL_RELAY_TOPIC_HEX);
    t->next_seq = 1;
    if (pl__ht_insert(&c->topics, &t->hnode, pl__ht_hash(&c->topics, hex, PL_RELAY_TOPIC_HEX))) {
        free(t);
        return NULL;
    }
    return t;
}

void pl__rs_topic_gc(pl__relay_core *c, topic *t) {
    if (t->nsubs || t->nmsgs || t->pins) return;
    pl__ht_remove(&c->topics, &t->hnode);
    pl__rs_release_topic(c, t);
    free(t->subs);
    free(t);
}

void pl__rs_topics_free(pl__relay_core *c) {
    pl__ht_free(&c->conns); /* emptied by pl__rs_conn_pop */
    pl__ht_free(&c->subs);  /* emptied with the connections */
    for (pl__hnode *n; (n = pl__ht_pop(&c->topics));) {
        topic *t = PL__ENTRY(n, topic, hnode);
        pl__rs_release_topic(c, t);
        free(t->subs);
        free(t);
    }
    pl__ht_free(&c->topics);
}

/* ---- connections ---------------------------------------------------------- */

static uint64_t conn_hash(const pl__relay_core *c, uint64_t id) {
    return pl__ht_hash(&c->conns, &id, sizeof id);
}

conn *pl__rs_conn_find(const pl__relay_core *c, uint64_t id) {
    uint64_t h = conn_hash(c, id);
    for (pl__hnode *n = pl__ht_first(&c->conns, h); n; n = pl__ht_next(n, h)) {
        conn *k = PL__ENTRY(n, conn, hnode);
        if (k->id == id) return k;
    }
    return NULL;
}

conn *pl__rs_conn_each(const pl__relay_core *c, size_t *cursor, conn *prev) {
    pl__hnode *n = pl__ht_each(&c->conns, cursor, prev ? &prev->hnode : NULL);
    return n ? PL__ENTRY(n, conn, hnode) : NULL;
}

pl_err pl__rs_conn_open(pl__relay_core *c, uint64_t id, const char *client_did, int64_t now_ms,
                        conn **out) {
    *out = NULL;
    if (pl__rs_conn_find(c, id)) return PL_ERR_EXISTS;
    if (client_did && strlen(client_did) >= PL_DID_KEY_SIZE) return PL_ERR_BAD_DID;
    conn *k = calloc(1, sizeof *k);
    if (!k) return PL_ERR_NOMEM;
    k->id = id;
    if (client_did && *client_did) {
        snprintf(k->client, sizeof k->client, "%s", client_did);
        k->has_did = true;
    } else {
        snprintf(k->client, sizeof k->client, "conn:%llu", (unsigned long long)id);
    }
    k->tokens_milli = (int64_t)c->lim.rate_burst * 1000;
    k->entry_milli = (int64_t)c->lim.rate_burst * PL_RELAY_ENTRY_FACTOR * 1000;
    k->last_refill_ms = now_ms;
    pl_err e = pl__ht_insert(&c->conns, &k->hnode, conn_hash(c, id));
    if (e != PL_OK) {
        free(k);
        return e;
    }
    *out = k;
    return PL_OK;
}

void pl__rs_conn_remove(pl__relay_core *c, conn *k) {
    pl__ht_remove(&c->conns, &k->hnode);
}

conn *pl__rs_conn_pop(pl__relay_core *c) {
    pl__hnode *n = pl__ht_pop(&c->conns);
    return n ? PL__ENTRY(n, conn, hnode) : NULL;
}

/* ---- subscriptions ---------------------------------------------------------- */

/* The key of a subscription: the connection's id and the topic. */
static uint64_t sub_hash(const pl__relay_core *c, uint64_t conn_id, const char *hex) {
    char key[sizeof conn_id + PL_RELAY_TOPIC_HEX];
    memcpy(key, &conn_id, sizeof conn_id);
    memcpy(key + sizeof conn_id, hex, PL_RELAY_TOPIC_HEX);
    return pl__ht_hash(&c->subs, key, sizeof key);
}

sub *pl__rs_sub_find(const pl__relay_core *c, const conn *k, const topic *t) {
    uint64_t h = sub_hash(c, k->id, t->hex);
    for (pl__hnode *n = pl__ht_first(&c->subs, h); n; n = pl__ht_next(n, h)) {
        sub *s = PL__ENTRY(n, sub, hnode);
        if (s->k == k && s->t == t) return s;
    }
    return NULL;
}

/* Room for one more pointer in *arr (capacity *cap, n used). */
static bool grow(sub ***arr, size_t *cap, size_t n, size_t first) {
    if (n < *cap) return true;
    size_t nc = *cap ? *cap * 2 : first;
    sub **na = realloc(*arr, nc * sizeof *na);
    if (!na) return false;
    *arr = na;
    *cap = nc;
    return true;
}

pl_err pl__rs_sub_new(pl__relay_core *c, conn *k, topic *t, sub **out) {
    *out = NULL;
    if (!grow(&t->subs, &t->capsubs, t->nsubs, 4) || !grow(&k->subs, &k->capsubs, k->nsubs, 8))
        return PL_ERR_NOMEM;
    sub *s = calloc(1, sizeof *s);
    if (!s) return PL_ERR_NOMEM;
    s->k = k;
    s->t = t;
    if (pl__ht_insert(&c->subs, &s->hnode, sub_hash(c, k->id, t->hex)) != PL_OK) {
        free(s);
        return PL_ERR_NOMEM;
    }
    s->ti = t->nsubs;
    t->subs[t->nsubs++] = s;
    s->ki = k->nsubs;
    k->subs[k->nsubs++] = s;
    pl__rs_charge(c, pl__rs_sub_cost());
    *out = s;
    return PL_OK;
}

void pl__rs_sub_free(pl__relay_core *c, sub *s) {
    conn *k = s->k;
    topic *t = s->t;
    pl__rs_ready_remove(s);
    pl__ht_remove(&c->subs, &s->hnode);
    t->subs[s->ti] = t->subs[--t->nsubs];
    t->subs[s->ti]->ti = s->ti;
    k->subs[s->ki] = k->subs[--k->nsubs];
    k->subs[s->ki]->ki = s->ki;
    free(s);
    pl__rs_release(c, pl__rs_sub_cost());
    if (!t->nsubs && c->cl)
        pl__rs_cluster_unsubscribed(c, t); /* may free t */
    else
        pl__rs_topic_gc(c, t);
}

void pl__rs_ready_add(sub *s) {
    if (s->ready) return;
    conn *k = s->k;
    s->ready = true;
    s->rnext = NULL;
    s->rprev = k->ready_tail;
    if (k->ready_tail)
        k->ready_tail->rnext = s;
    else
        k->ready_head = s;
    k->ready_tail = s;
}

void pl__rs_ready_remove(sub *s) {
    if (!s->ready) return;
    conn *k = s->k;
    if (s->rprev)
        s->rprev->rnext = s->rnext;
    else
        k->ready_head = s->rnext;
    if (s->rnext)
        s->rnext->rprev = s->rprev;
    else
        k->ready_tail = s->rprev;
    s->rprev = s->rnext = NULL;
    s->ready = false;
}
