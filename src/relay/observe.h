/* SPDX-License-Identifier: Apache-2.0 */
/* What the relay's runtime shows its operator: the body of GET /health and
 * GET /metrics (Prometheus text exposition format 0.0.4), built from the
 * core's counters (pl__relay_core_stats) and the runtime's own, and frames
 * made fit for a debug log (message bodies left out).
 *
 * Pure functions: no I/O, no clock (the caller passes the uptime and the
 * resident size). Any thread. Private to the library; the metrics are
 * listed in docs/relay.md. */
#ifndef PAIRLINK_RELAY_OBSERVE_H
#define PAIRLINK_RELAY_OBSERVE_H

#include "relay/relay_backend.h"
#include "relay/relay_core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pl__relay_observed {
    pl__relay_stats st;
    size_t memory_budget; /* the core's accounted budget (max_memory_bytes) */
    size_t max_memory;    /* the process's budget (--max-memory) */
    size_t rss;           /* resident size now; 0: unknown */
    int64_t uptime_ms;
    size_t listeners;
    /* The runtime's counters. */
    uint64_t sockets_refused; /* at accept: a connection limit or the memory budget */
    uint64_t auth_refused;    /* HTTP 401: no valid JWT */
    uint64_t not_allowed;     /* HTTP 401: a valid JWT whose key is not in the allow-list */
    uint64_t http_requests;   /* /health and /metrics served */
    uint64_t reloads, reload_failures;
    bool cluster; /* --cluster: cl holds its counters */
    pl__relay_cluster_stats cl;
} pl__relay_observed;

/* false while the relay is over its memory budget: its accounted memory at
 * or past the bulk limit (3/4 of the budget, where it stops pushing stored
 * messages in bulk), or its resident size over --max-memory; and, in a
 * cluster, while it has no NATS connection. */
bool pl__relay_healthy(const pl__relay_observed *o);

/* The body of GET /health: {"status":"ok"|"over_memory_budget"|
 * "cluster_disconnected",
 * "uptime_s":N,"connections":N,"sockets":N,"memory_bytes":N,
 * "memory_budget_bytes":N}. Returns the HTTP status: 200, or 503 when not
 * healthy. buf gets the body (NUL-terminated; 256 bytes suffice). */
int pl__relay_health_json(const pl__relay_observed *o, char *buf, size_t cap);

/* The body of GET /metrics (malloc'ed, NUL-terminated, *len without the
 * NUL). Errors: PL_ERR_NOMEM (*out NULL). */
pl_err pl__relay_metrics_text(const pl__relay_observed *o, char **out, size_t *len);

/* A frame as a debug log shows it: the JSON with the string values of
 * message, attestation and the wc_* payloads replaced by "<N bytes>", cut
 * to cap - 1 bytes (with "..." when cut); "<N bytes, not JSON>" for a frame
 * that does not parse. out always NUL-terminated. */
void pl__relay_redact_frame(const char *text, size_t len, char *out, size_t cap);

#endif
