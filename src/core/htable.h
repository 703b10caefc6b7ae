/* SPDX-License-Identifier: Apache-2.0 */
/* The one hash table of the library: chained, intrusive (the entry embeds
 * a pl__hnode), keyed with SipHash under a random per-table key so that
 * hostile input (topics, ids from the network) cannot pile into one chain.
 * It doubles when it holds as many entries as buckets; a failed doubling
 * leaves the old table in use (slower, still correct). Used by the relay
 * server (topics, connections, message ids; the runtime's sessions) and
 * the relay client's de-duplication LRU. No I/O and no randomness of its
 * own: the key comes from the owner's random source. Private to the
 * library; one thread. */
#ifndef PAIRLINK_CORE_HTABLE_H
#define PAIRLINK_CORE_HTABLE_H

#include "pairlink/common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pl__hnode {
    struct pl__hnode *next;
    uint64_t hash;
} pl__hnode;

typedef struct pl__htable {
    pl__hnode **b;
    size_t nb, n;
    size_t pop_from;
    uint8_t key[16];
} pl__htable;

/* The entry that embeds node n as `member`. */
#define PL__ENTRY(n, type, member) ((type *)(void *)((char *)(n)-offsetof(type, member)))

/* An empty table (no allocation yet) hashing under key (copied; it
 * should be random and secret from the peers whose input is hashed). */
void pl__ht_init(pl__htable *t, const uint8_t key[16]);
/* Make room for n entries, so that inserts up to n never fail. Errors:
 * PL_ERR_NOMEM (the table is unchanged). */
pl_err pl__ht_reserve(pl__htable *t, size_t n);
/* Free the buckets (the entries are the caller's). */
void pl__ht_free(pl__htable *t);

/* The table's hash of a key. */
uint64_t pl__ht_hash(const pl__htable *t, const void *key, size_t len);

/* Insert n with hash h (from pl__ht_hash). Errors: PL_ERR_NOMEM only when
 * the table has no buckets yet and none can be had (n is then not
 * inserted). */
pl_err pl__ht_insert(pl__htable *t, pl__hnode *n, uint64_t h);
/* Remove n (it must be in the table). */
void pl__ht_remove(pl__htable *t, pl__hnode *n);

/* The entries with hash h: the first, then the next after n. */
pl__hnode *pl__ht_first(const pl__htable *t, uint64_t h);
pl__hnode *pl__ht_next(const pl__hnode *n, uint64_t h);

/* Every entry, in no particular order: start with *cursor = 0 and n NULL,
 * then pass the entry last given; NULL when done. Nothing may be inserted
 * or removed during the walk. */
pl__hnode *pl__ht_each(const pl__htable *t, size_t *cursor, const pl__hnode *n);
/* Remove and return some entry; NULL when the table is empty (to free all). */
pl__hnode *pl__ht_pop(pl__htable *t);

#endif
