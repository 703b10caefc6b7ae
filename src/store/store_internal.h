/* SPDX-License-Identifier: Apache-2.0 */
/* Private to the library: lets other tables (nm_store.c) share the one
 * database handle of a pl_store. Not installed. */
#ifndef PAIRLINK_STORE_INTERNAL_H
#define PAIRLINK_STORE_INTERNAL_H

#include "pairlink/store.h"

#include <sqlite3.h>

/* The store's connection; owned by the store, valid until pl_store_close. */
sqlite3 *pl__store_db(pl_store *s);

/* The store's prepared statement for `sql` (a string literal; kept until
 * the store closes). NULL and *err set if it does not prepare. Give it back
 * with pl__store_stmt_done() (reset, bindings cleared) after each use. */
sqlite3_stmt *pl__store_stmt(pl_store *s, const char *sql, pl_err *err);
void pl__store_stmt_done(sqlite3_stmt *st);

/* ---- group commit, for the runtimes (wc_client.c, nm_node.c) ----
 * After pl__store_batch, the first write after each commit opens a
 * transaction (BEGIN IMMEDIATE) and calls on_begin(ud): the runtime holds
 * its transport (transport.h, pl_transport_hold), so that nothing that may
 * depend on the write leaves before pl__store_commit, which it calls before
 * the loop waits, then releases the transport. A failed commit loses the
 * transaction's writes; from then on every write fails with that error
 * (pl__store_commit returns it too), and the runtime keeps its transport
 * held. Every write of the store (store.c, nm_store.c) starts with
 * pl__store_write_begin. pl_store_close commits what is open. */
void pl__store_batch(pl_store *s, void (*on_begin)(void *ud), void *ud);
/* Commit what is open (as pl__store_commit) and write each statement in its
 * own transaction from now on (a runtime that is closing). */
pl_err pl__store_unbatch(pl_store *s);
pl_err pl__store_write_begin(pl_store *s);
pl_err pl__store_commit(pl_store *s);
bool pl__store_in_txn(const pl_store *s);

#endif
