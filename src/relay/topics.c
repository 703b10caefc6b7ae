/* The relay core's topics and connections: who listens to what. */
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

topic *pl__rs_topic_get(pl__relay_core *c, const char *hex) {
    topic *t = pl__rs_topic_find(c, hex);
    if (t) return t;
    t = calloc(1, sizeof *t);
    if (!t) return NULL;
    memcpy(t->hex, hex, PL_RELAY_TOPIC_HEX);
    if (pl__ht_insert(&c->topics, &t->hnode, pl__ht_hash(&c->topics, hex, PL_RELAY_TOPIC_HEX))) {
        free(t);
        return NULL;
    }
    return t;
}

void pl__rs_topic_gc(pl__relay_core *c, topic *t) {
    if (t->nsubs || t->nmsgs) return;
    pl__ht_remove(&c->topics, &t->hnode);
    free(t->subs);
    free(t);
}

void pl__rs_topics_free(pl__relay_core *c) {
    pl__ht_free(&c->conns); /* emptied by pl__rs_conn_pop */
    pl__ht_free(&c->conns); /* emptied by pl__rs_conn_pop */
    for (pl__hnode *n; (n = pl__ht_pop(&c->topics));) {
        topic *t = PL__ENTRY(n, topic, hnode);
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

pl_err pl__rs_conn_open(pl__relay_core *c, uint64_t id, const char *client_did, int64_t now_ms) {
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
    k->last_refill_ms = now_ms;
    pl_err e = pl__ht_insert(&c->conns, &k->hnode, conn_hash(c, id));
    if (e != PL_OK) free(k);
    return e;
}

void pl__rs_conn_remove(pl__relay_core *c, conn *k) {
    pl__ht_remove(&c->conns, &k->hnode);
}

conn *pl__rs_conn_pop(pl__relay_core *c) {
    pl__hnode *n = pl__ht_pop(&c->conns);
    return n ? PL__ENTRY(n, conn, hnode) : NULL;
}

/* ---- subscriptions ---------------------------------------------------------- */

bool pl__rs_subscribed(const conn *k, const topic *t) {
    for (size_t i = 0; i < k->ntopics; i++)
        if (k->topics[i] == t) return true;
    return false;
}

pl_err pl__rs_link(conn *k, topic *t) {
    if (t->nsubs == t->capsubs) {
        size_t nc = t->capsubs ? t->capsubs * 2 : 4;
        conn **ns = realloc(t->subs, nc * sizeof *ns);
        if (!ns) return PL_ERR_NOMEM;
        t->subs = ns;
        t->capsubs = nc;
    }
    if (k->ntopics == k->captopics) {
        size_t nc = k->captopics ? k->captopics * 2 : 8;
        topic **nt = realloc(k->topics, nc * sizeof *nt);
        if (!nt) return PL_ERR_NOMEM;
        k->topics = nt;
        k->captopics = nc;
    }
    t->subs[t->nsubs++] = k;
    k->topics[k->ntopics++] = t;
    return PL_OK;
}

void pl__rs_unlink(pl__relay_core *c, conn *k, topic *t) {
    for (size_t i = 0; i < k->ntopics; i++) {
        if (k->topics[i] != t) continue;
        k->topics[i] = k->topics[--k->ntopics];
        for (size_t j = 0; j < t->nsubs; j++) {
            if (t->subs[j] != k) continue;
            t->subs[j] = t->subs[--t->nsubs];
            break;
        }
        pl__rs_topic_gc(c, t);
        return;
    }
}
