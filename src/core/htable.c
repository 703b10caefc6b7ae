/* SPDX-License-Identifier: Apache-2.0 */
/* The hash table: see htable.h. */
#include "core/htable.h"

#include "core/internal.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define FIRST_BUCKETS 16

void pl__ht_init(pl__htable *t, const uint8_t key[16]) {
    PL_REQUIRE(t && key);
    memset(t, 0, sizeof *t);
    memcpy(t->key, key, sizeof t->key);
}

void pl__ht_free(pl__htable *t) {
    if (!t) return;
    free(t->b);
    t->b = NULL;
    t->nb = t->n = t->pop_from = 0;
}

uint64_t pl__ht_hash(const pl__htable *t, const void *key, size_t len) {
    _Static_assert(crypto_shorthash_KEYBYTES == sizeof t->key, "SipHash key size");
    uint8_t out[crypto_shorthash_BYTES];
    crypto_shorthash(out, key, len, t->key);
    uint64_t h = 0;
    for (size_t i = 0; i < sizeof out; i++)
        h = h << 8 | out[i];
    return h;
}

static pl_err rehash(pl__htable *t, size_t nn) {
    pl__hnode **nb = calloc(nn, sizeof *nb);
    if (!nb) return PL_ERR_NOMEM;
    for (size_t i = 0; i < t->nb; i++) {
        for (pl__hnode *x = t->b[i], *next; x; x = next) {
            next = x->next;
            size_t k = x->hash & (nn - 1);
            x->next = nb[k];
            nb[k] = x;
        }
    }
    free(t->b);
    t->b = nb;
    t->nb = nn;
    t->pop_from = 0;
    return PL_OK;
}

pl_err pl__ht_reserve(pl__htable *t, size_t n) {
    PL_REQUIRE(t && n <= SIZE_MAX / 4);
    size_t nn = t->nb ? t->nb : FIRST_BUCKETS;
    while (nn <= n)
        nn *= 2;
    return nn == t->nb ? PL_OK : rehash(t, nn);
}

pl_err pl__ht_insert(pl__htable *t, pl__hnode *n, uint64_t h) {
    PL_REQUIRE(t && n);
    if (t->n >= t->nb) (void)rehash(t, t->nb ? t->nb * 2 : FIRST_BUCKETS); /* may fail: see .h */
    if (!t->nb) return PL_ERR_NOMEM;
    n->hash = h;
    t->pop_from = 0;
    size_t k = h & (t->nb - 1);
    n->next = t->b[k];
    t->b[k] = n;
    t->n++;
    return PL_OK;
}

void pl__ht_remove(pl__htable *t, pl__hnode *n) {
    PL_REQUIRE(t && n && t->nb);
    pl__hnode **pp = &t->b[n->hash & (t->nb - 1)];
    while (*pp && *pp != n)
        pp = &(*pp)->next;
    PL_REQUIRE(*pp == n); /* not in this table: misuse */
    *pp = n->next;
    n->next = NULL;
    t->n--;
}

pl__hnode *pl__ht_first(const pl__htable *t, uint64_t h) {
    PL_REQUIRE(t);
    if (!t->nb) return NULL;
    pl__hnode *x = t->b[h & (t->nb - 1)];
    while (x && x->hash != h)
        x = x->next;
    return x;
}

pl__hnode *pl__ht_next(const pl__hnode *n, uint64_t h) {
    PL_REQUIRE(n);
    pl__hnode *x = n->next;
    while (x && x->hash != h)
        x = x->next;
    return x;
}

pl__hnode *pl__ht_each(const pl__htable *t, size_t *cursor, const pl__hnode *n) {
    PL_REQUIRE(t && cursor);
    if (n && n->next) return n->next;
    while (*cursor < t->nb) {
        pl__hnode *x = t->b[(*cursor)++];
        if (x) return x;
    }
    return NULL;
}

pl__hnode *pl__ht_pop(pl__htable *t) {
    PL_REQUIRE(t);
    /* Buckets before pop_from were found empty (inserts reset it), so that
     * emptying a table by pops is linear. */
    for (; t->pop_from < t->nb; t->pop_from++) {
        pl__hnode *x = t->b[t->pop_from];
        if (!x) continue;
        t->b[t->pop_from] = x->next;
        x->next = NULL;
        t->n--;
        return x;
    }
    return NULL;
}
