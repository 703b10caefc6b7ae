/* SPDX-License-Identifier: Apache-2.0 */
/* The embedded mailbox backend (--db): every store action of one loop turn
 * in one SQLite transaction, committed before the loop waits (flush), so
 * that the frames that followed a put are sent only once it is on disk. */
#include "relay/relay_backend.h"

#include "core/internal.h"
#include "relay/ws_server.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct sqlite_backend {
    pl__relay_backend base;
    pl__relay_store *st;
    bool failed; /* an action of this transaction failed */
    pl__relay_backend_log_fn log;
    void *ud;
} sqlite_backend;

static void failed(sqlite_backend *b, pl_err e, const char *what) {
    if (!b->failed && b->log) {
        char line[160];
        snprintf(line, sizeof line, "store: %s failed: %s (%s, sqlite %ld)", what, pl_strerror(e),
                 pl_errname(e), pl_last_detail());
        b->log(b->ud, PL__LOG_ERROR, line);
    }
    b->failed = true;
}

static bool sq_apply(pl__relay_backend *base, const pl__relay_action *a) {
    sqlite_backend *b = (sqlite_backend *)base;
    if (a->kind != PL__RELAY_STORE_PUT && a->kind != PL__RELAY_STORE_DEL) return false;
    pl_err e = pl__relay_store_begin(b->st);
    if (e != PL_OK) {
        failed(b, e, "begin");
    } else if (a->kind == PL__RELAY_STORE_PUT) {
        if ((e = pl__relay_store_put(b->st, &a->rec)) != PL_OK) failed(b, e, "put");
    } else if ((e = pl__relay_store_del(b->st, a->rec.topic, a->rec.id)) != PL_OK) {
        failed(b, e, "delete");
    }
    /* Everything after a write waits for its commit; a failed DELETE is
     * harmless (pruned at the next start). */
    return a->kind == PL__RELAY_STORE_PUT;
}

static pl_err sq_flush(pl__relay_backend *base) {
    sqlite_backend *b = (sqlite_backend *)base;
    pl_err e = b->failed ? PL_ERR_STORE : PL_OK;
    if (pl__relay_store_in_tx(b->st)) {
        if (e == PL_OK) e = pl__relay_store_commit(b->st);
        if (e != PL_OK) {
            failed(b, e, "commit");
            pl__relay_store_rollback(b->st);
        }
    }
    b->failed = false;
    return e;
}

static void sq_stop(pl__relay_backend *base) {
    (void)base;
}

static void sq_free(pl__relay_backend *base) {
    sqlite_backend *b = (sqlite_backend *)base;
    if (!b) return;
    pl__relay_store_close(b->st);
    free(b);
}

static const pl__relay_backend_ops sqlite_ops = {
    .name = "sqlite", .apply = sq_apply, .flush = sq_flush, .stop = sq_stop, .free = sq_free};

pl_err pl__relay_backend_sqlite(pl__relay_backend **out, pl__relay_store *store,
                                pl__relay_backend_log_fn log, void *ud) {
    PL_REQUIRE(out && store);
    *out = NULL;
    sqlite_backend *b = calloc(1, sizeof *b);
    if (!b) return PL_ERR_NOMEM;
    b->base.ops = &sqlite_ops;
    b->st = store;
    b->log = log;
    b->ud = ud;
    *out = &b->base;
    return PL_OK;
}
