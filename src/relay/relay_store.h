/* SPDX-License-Identifier: Apache-2.0 */
/* Durable mailbox of `pairlink relay`: SQLite in WAL mode with
 * synchronous=FULL, so a committed transaction survives a kill -9 and a power
 * cut. The runtime opens a transaction, applies the store actions the relay
 * core produced, commits, and only then writes the frames that followed them
 * (the publisher's `true`).
 *
 * Not thread-safe: one store is used from one thread. Private to the
 * library; the schema is described in docs/relay.md. */
#ifndef PAIRLINK_RELAY_STORE_H
#define PAIRLINK_RELAY_STORE_H

#include "relay/relay_core.h"

typedef struct pl__relay_store pl__relay_store;

/* Open or create the database at path (NULL or ":memory:": a private
 * in-memory database, nothing survives the process). The file and its
 * -wal and -shm files are made owner-only (0600; a wider existing file is
 * narrowed). Errors: PL_ERR_SYS (the mode could not be changed),
 * PL_ERR_STORE
 * (SQLite extended result code in pl_last_detail), PL_ERR_STORE_CORRUPT
 * (not a database, or a schema version this code does not know),
 * PL_ERR_NOMEM. */
pl_err pl__relay_store_open(pl__relay_store **out, const char *path);
void pl__relay_store_close(pl__relay_store *s); /* NULL ok; rolls back an open transaction */

/* Transactions. begin while one is open is a no-op; commit without one is a
 * no-op. Errors: PL_ERR_STORE. */
pl_err pl__relay_store_begin(pl__relay_store *s);
pl_err pl__relay_store_commit(pl__relay_store *s);
void pl__relay_store_rollback(pl__relay_store *s);
bool pl__relay_store_in_tx(const pl__relay_store *s);

/* Insert a message; an existing (topic, id) is kept as it is. */
pl_err pl__relay_store_put(pl__relay_store *s, const pl__relay_record *r);
/* Remove a message; a missing one is not an error. */
pl_err pl__relay_store_del(pl__relay_store *s, const char *topic, const char *id);
/* Delete every message that expired at or before now_ms; *deleted (may be
 * NULL) gets the count. */
pl_err pl__relay_store_prune(pl__relay_store *s, int64_t now_ms, size_t *deleted);

/* Call fn for every message not yet expired at now_ms, in publish order.
 * The record is valid during the call only. fn returning non-PL_OK stops the
 * walk and that error is returned. Rows that are malformed (wrong types,
 * lengths) are skipped and counted in *skipped (may be NULL). */
typedef pl_err (*pl__relay_store_each_fn)(void *ud, const pl__relay_record *r);
pl_err pl__relay_store_load(pl__relay_store *s, int64_t now_ms, pl__relay_store_each_fn fn,
                            void *ud, size_t *skipped);

/* Number of stored messages (expired ones included until pruned). */
pl_err pl__relay_store_count(pl__relay_store *s, size_t *out);

#endif
