/* SPDX-License-Identifier: Apache-2.0 */
/* The relay core's accounting: what each thing costs, who is charged for
 * it, and what the relay does when a budget is reached. Every relay-wide
 * limit and every publisher quota is decided here, so that one place says
 * how much memory the relay may use.
 *
 * Costs are the bytes a thing holds in this process, overhead included:
 * a stored message is its record, its text, its index and heap slots (and
 * a second copy when the store is in memory); a topic, a subscription, a
 * connection (the runtime's own cost per socket is a limit field), a push
 * in flight, a queued frame. The sum is mem.used, compared with
 * lim.max_memory_bytes. Publishers are principals: the address a
 * connection came from and, when it authenticated, its did:key; a stored
 * message and a topic are charged to both, so that neither a new key nor a
 * new connection escapes a quota. */
#include "relay/internal.h"

#include "core/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An in-memory SQLite row beyond its text: the row, its entries in the
 * (topic, id) and expiry indexes, page overhead (measured: 353 bytes for a
 * one-byte message). */
#define STORE_ROW_COST 384
/* Once over budget, the next slow consumer is closed this much later at
 * the earliest: closing takes a loop iteration to free anything. */
#define RELIEF_MS 100
/* A connection holding less than this unsent is not the problem. */
#define RELIEF_MIN_UNSENT ((size_t)64 << 10)

/* ---- costs --------------------------------------------------------------------- */

size_t pl__relay_message_cost(const pl__relay_limits *l, size_t message_len,
                              size_t attestation_len) {
    PL_REQUIRE(l);
    size_t n = sizeof(rmsg) + message_len + 1 + 3 * PL__RS_MALLOC_OVERHEAD +
               2 * sizeof(void *); /* heap slot, id index bucket */
    if (attestation_len) n += attestation_len + 1;
    if (l->memory_store) n += message_len + attestation_len + STORE_ROW_COST;
    return n;
}

size_t pl__rs_msg_cost(const pl__relay_core *c, size_t message_len, size_t attestation_len) {
    return pl__relay_message_cost(&c->lim, message_len, attestation_len);
}

size_t pl__rs_topic_cost(void) {
    return sizeof(topic) + PL__RS_MALLOC_OVERHEAD + 2 * sizeof(void *);
}

size_t pl__rs_sub_cost(void) {
    return sizeof(sub) + PL__RS_MALLOC_OVERHEAD + 4 * sizeof(void *);
}

size_t pl__rs_conn_cost(void) {
    return sizeof(conn) + PL__RS_MALLOC_OVERHEAD + 2 * sizeof(void *);
}

size_t pl__rs_delivery_cost(void) {
    return sizeof(delivery) + PL__RS_MALLOC_OVERHEAD;
}

static size_t principal_cost(void) {
    return sizeof(principal) + PL__RS_MALLOC_OVERHEAD + 2 * sizeof(void *);
}

/* ---- principals ------------------------------------------------------------------ */

principal *pl__rs_principal_find(const pl__relay_core *c, const char *key) {
    size_t len = strlen(key);
    uint64_t h = pl__ht_hash(&c->principals, key, len);
    for (pl__hnode *n = pl__ht_first(&c->principals, h); n; n = pl__ht_next(n, h)) {
        principal *p = PL__ENTRY(n, principal, hnode);
        if (!strcmp(p->key, key)) return p;
    }
    return NULL;
}

principal *pl__rs_principal_get(pl__relay_core *c, const char *key) {
    if (strlen(key) >= PL__RS_PRINCIPAL_KEY) return NULL;
    principal *p = pl__rs_principal_find(c, key);
    if (p) return p;
    p = calloc(1, sizeof *p);
    if (!p) return NULL;
    snprintf(p->key, sizeof p->key, "%s", key);
    if (pl__ht_insert(&c->principals, &p->hnode, pl__ht_hash(&c->principals, key, strlen(key)))) {
        free(p);
        return NULL;
    }
    pl__rs_charge(c, principal_cost());
    return p;
}

void pl__rs_principal_gc(pl__relay_core *c, principal *p) {
    if (!p || p->sockets || p->conns || p->msgs || p->topics) return;
    pl__ht_remove(&c->principals, &p->hnode);
    free(p);
    pl__rs_release(c, principal_cost());
}

void pl__rs_charge_msg(pl__relay_core *c, rmsg *m, principal *a, principal *b) {
    m->owner[0] = a;
    m->owner[1] = b == a ? NULL : b;
    for (int i = 0; i < 2; i++) {
        if (!m->owner[i]) continue;
        m->owner[i]->msgs++;
        m->owner[i]->bytes += m->cost;
    }
    c->mem.stored += m->cost;
    pl__rs_charge(c, m->cost);
}

void pl__rs_release_msg(pl__relay_core *c, rmsg *m) {
    for (int i = 0; i < 2; i++) {
        principal *p = m->owner[i];
        if (!p) continue;
        p->msgs--;
        p->bytes -= m->cost;
        m->owner[i] = NULL;
        pl__rs_principal_gc(c, p);
    }
    c->mem.stored -= m->cost;
    pl__rs_release(c, m->cost);
}

void pl__rs_charge_topic(pl__relay_core *c, topic *t, principal *a, principal *b) {
    t->owner[0] = a;
    t->owner[1] = b == a ? NULL : b;
    for (int i = 0; i < 2; i++)
        if (t->owner[i]) t->owner[i]->topics++;
    pl__rs_charge(c, pl__rs_topic_cost());
}

void pl__rs_release_topic(pl__relay_core *c, topic *t) {
    for (int i = 0; i < 2; i++) {
        principal *p = t->owner[i];
        if (!p) continue;
        p->topics--;
        t->owner[i] = NULL;
        pl__rs_principal_gc(c, p);
    }
    pl__rs_release(c, pl__rs_topic_cost());
}

pl_err pl__rs_quota_check(const pl__relay_core *c, const conn *k, size_t msgs, size_t bytes,
                          size_t new_topics, const char **why) {
    const principal *ps[2] = {k->paddr, k->pdid};
    for (int i = 0; i < 2; i++) {
        const principal *p = ps[i];
        if (!p) continue;
        if (msgs > c->lim.quota_messages || p->msgs > c->lim.quota_messages - msgs) {
            *why = "quota reached: stored messages of this publisher";
            return PL_ERR_MAILBOX_FULL;
        }
        if (bytes > c->lim.quota_bytes || p->bytes > c->lim.quota_bytes - bytes) {
            *why = "quota reached: stored bytes of this publisher";
            return PL_ERR_MAILBOX_FULL;
        }
        if (new_topics > c->lim.quota_topics || p->topics > c->lim.quota_topics - new_topics) {
            *why = "quota reached: topics of this publisher";
            return PL_ERR_MAILBOX_FULL;
        }
    }
    return PL_OK;
}

/* ---- sockets --------------------------------------------------------------------- */

static void addr_key(char out[PL__RS_PRINCIPAL_KEY], const char *addr) {
    snprintf(out, PL__RS_PRINCIPAL_KEY, "ip:%.64s", addr);
}

pl_err pl__relay_core_admit(pl__relay_core *c, const char *addr) {
    PL_REQUIRE(c && addr);
    char key[PL__RS_PRINCIPAL_KEY];
    addr_key(key, addr);
    principal *p = pl__rs_principal_find(c, key);
    if (c->mem.sockets >= c->lim.max_conns || (p && p->sockets >= c->lim.max_conns_per_addr) ||
        !pl__rs_room(c, c->lim.conn_cost_bytes + (p ? 0 : principal_cost()))) {
        c->st.refused++;
        if (!pl__rs_room(c, c->lim.conn_cost_bytes)) c->mem.refused = true;
        return PL_ERR_RELAY_BUSY;
    }
    if (!p && !(p = pl__rs_principal_get(c, key))) return PL_ERR_NOMEM;
    p->sockets++;
    c->mem.sockets++;
    pl__rs_charge(c, c->lim.conn_cost_bytes);
    return PL_OK;
}

void pl__relay_core_unadmit(pl__relay_core *c, const char *addr) {
    PL_REQUIRE(c && addr);
    char key[PL__RS_PRINCIPAL_KEY];
    addr_key(key, addr);
    principal *p = pl__rs_principal_find(c, key);
    if (!p || !p->sockets) return;
    p->sockets--;
    c->mem.sockets--;
    pl__rs_release(c, c->lim.conn_cost_bytes);
    pl__rs_principal_gc(c, p);
}

/* ---- memory pressure -------------------------------------------------------------- */

void pl__rs_relieve(pl__relay_core *c, int64_t now_ms) {
    /* Pressure starts where bulk data stops, before requests are refused. */
    size_t high = pl__rs_bulk_limit(c);
    bool refused = c->mem.refused;
    c->mem.refused = false;
    if ((c->mem.used < high && !refused) || now_ms < c->mem.next_relief) return;
    c->mem.next_relief = now_ms + RELIEF_MS;
    /* The biggest send queue is a client that does not read: closing it
     * frees the most, and costs a well-behaved client nothing. */
    conn *worst = NULL;
    size_t cur = 0;
    for (conn *k = pl__rs_conn_each(c, &cur, NULL); k; k = pl__rs_conn_each(c, &cur, k))
        if (!k->closing && k->unsent >= RELIEF_MIN_UNSENT && (!worst || k->unsent > worst->unsent))
            worst = k;
    if (!worst) return;
    c->st.slow_closed++;
    pl__rs_close_conn(c, worst, 1008, "slow consumer: relay memory budget reached");
}
