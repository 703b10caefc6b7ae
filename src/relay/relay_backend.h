/* SPDX-License-Identifier: Apache-2.0 */
/* The storage and fan-out backend of the relay runtime (ws_server.c): where
 * the core's mailbox actions go and where messages from elsewhere come
 * from. The core does no I/O; the runtime applies each store action the
 * core produced (STORE_PUT, STORE_DEL, and in cluster mode LOAD, WATCH,
 * UNWATCH: relay_core.h) to its backend, in order, and the backend feeds
 * its results back into the core on the loop thread:
 *   - put acknowledgements: pl__relay_core_put_done (asynchronous backends)
 *     or the group commit of flush (synchronous ones: the frames the core
 *     produced after a put wait until flush succeeded);
 *   - loads and remote messages: pl__relay_core_ingest, then
 *     pl__relay_core_loaded.
 * Two implementations:
 *   sqlite  the embedded mailbox (--db, backend_sqlite.c): synchronous,
 *           one transaction per loop turn; the core keeps every message.
 *   nats    a NATS JetStream cluster shared by several relay instances
 *           (--cluster, backend_nats.c): asynchronous, the core's mailbox
 *           is a cache of the topics its clients use.
 * Without --db or --cluster there is no backend (the core's mailbox in
 * memory). Every function runs on the loop thread. Private to the
 * library; docs/relay.md describes both. */
#ifndef PAIRLINK_RELAY_BACKEND_H
#define PAIRLINK_RELAY_BACKEND_H

#include "relay/relay_core.h"
#include "relay/relay_store.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct pl__relay_backend pl__relay_backend;

/* A log line from a backend (PL__LOG_* levels of ws_server.h). */
typedef void (*pl__relay_backend_log_fn)(void *ud, int level, const char *line);

/* What the operator sees of a cluster backend (GET /metrics). */
typedef struct pl__relay_cluster_stats {
    bool connected;                           /* to a NATS server now */
    size_t instances;                         /* other relay instances heard (heartbeats) */
    uint64_t puts, put_failures, put_retries; /* stored; not stored; tries beyond the first */
    uint64_t loads, load_failures, live, resyncs;
    uint64_t rooms, rooms_failed, rooms_answered; /* asked; not answered by all; answered */
    uint64_t evictions, evicted_by_others, delete_failures;
} pl__relay_cluster_stats;

typedef struct pl__relay_backend_ops {
    const char *name;
    /* One store action of the core, in the core's order. true: the frames
     * the core produces after it must wait for flush (group commit). */
    bool (*apply)(pl__relay_backend *b, const pl__relay_action *a);
    /* Before the loop waits: make what apply wrote durable. PL_OK, or the
     * error (the waiting frames are then not sent: their clients publish
     * again). NULL: nothing to flush. */
    pl_err (*flush)(pl__relay_backend *b);
    /* Start stopping: no new work; in-flight work is answered or dropped,
     * and the backend's loop handles close so that the loop can end. */
    void (*stop)(pl__relay_backend *b);
    void (*free)(pl__relay_backend *b); /* after the loop ended; NULL ok */
    /* The cluster's counters; NULL for a backend that is not one. */
    void (*stats)(const pl__relay_backend *b, pl__relay_cluster_stats *out);
} pl__relay_backend_ops;

struct pl__relay_backend {
    const pl__relay_backend_ops *ops;
};

/* Where a backend's results go (all on the loop thread). */
typedef struct pl__relay_backend_sink {
    pl__relay_core *core;
    void (*changed)(void *ud); /* the core took inputs: apply its actions now */
    pl__relay_backend_log_fn log;
    void *ud;
    int64_t (*now)(void *ud); /* wall clock ms, as the runtime gives the core */
} pl__relay_backend_sink;

/* The embedded SQLite mailbox; takes over store (closed by free). */
pl_err pl__relay_backend_sqlite(pl__relay_backend **out, pl__relay_store *store,
                                pl__relay_backend_log_fn log, void *ud);

/* NATS JetStream options (--cluster). */
typedef struct pl__relay_nats_opts {
    const char *urls;        /* "nats://h:p[,tls://user:pass@h:p...]" */
    int replicas;            /* of each stream; 0: 3, or 1 with a single URL */
    const char *instance_id; /* this relay instance; NULL: host name and pid */
    size_t max_mailbox;      /* messages per topic and TTL class (MaxMsgsPerSubject) */
    size_t max_message;      /* bytes of one message (the streams' MaxMsgSize, with room) */
    int64_t retry_ms;        /* a publish is retried this long (leader election); 0: 5000 */
    int workers;             /* threads reading stored messages (loads); 0: 4 */
    /* TLS to the servers (also when a URL is tls://): PEM CA file (NULL:
     * the system's), client certificate and key (NULL: none). */
    const char *ca, *cert, *key;
} pl__relay_nats_opts;

/* Connect to the cluster (any of the URLs), create or check the streams,
 * and start. Errors: PL_ERR_NO_CLUSTER (built without libnats),
 * PL_ERR_INVALID_ARG (a malformed URL list), PL_ERR_CLUSTER (no server
 * answered, or a stream could not be created: detail logged), PL_ERR_NOMEM. */
pl_err pl__relay_backend_nats(pl__relay_backend **out, uv_loop_t *loop,
                              const pl__relay_nats_opts *opts, const pl__relay_backend_sink *sink);

/* Whether this build has the NATS backend. */
bool pl__relay_backend_nats_available(void);

#endif
