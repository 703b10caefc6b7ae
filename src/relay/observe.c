/* SPDX-License-Identifier: Apache-2.0 */
/* Health, metrics and log redaction of the relay: see observe.h. */
#include "relay/observe.h"

#include "core/internal.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool pl__relay_healthy(const pl__relay_observed *o) {
    PL_REQUIRE(o);
    if (o->memory_budget && o->st.memory >= o->memory_budget / 4 * 3) return false;
    if (o->max_memory && o->rss > o->max_memory) return false;
    /* A cluster instance without its NATS connection can store nothing:
     * the load balancer should send clients to another. */
    if (o->cluster && !o->cl.connected) return false;
    return true;
}

int pl__relay_health_json(const pl__relay_observed *o, char *buf, size_t cap) {
    PL_REQUIRE(o && buf && cap);
    bool ok = pl__relay_healthy(o);
    const char *status = ok                               ? "ok"
                         : o->cluster && !o->cl.connected ? "cluster_disconnected"
                                                          : "over_memory_budget";
    snprintf(buf, cap,
             "{\"status\":\"%s\",\"uptime_s\":%lld,\"connections\":%zu,\"sockets\":%zu,"
             "\"memory_bytes\":%zu,\"memory_budget_bytes\":%zu}\n",
             status, (long long)(o->uptime_ms / 1000), o->st.conns, o->st.sockets, o->st.memory,
             o->memory_budget);
    return ok ? 200 : 503;
}

/* A growing text buffer; on allocation failure it stays failed. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool failed;
} sbuf;

__attribute__((format(printf, 2, 3))) static void put(sbuf *b, const char *fmt, ...) {
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t nc = b->cap ? b->cap * 2 : 4096;
        while (nc < b->len + (size_t)n + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->failed = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
}

/* One metric of one sample. */
static void metric(sbuf *b, const char *name, const char *type, const char *help,
                   unsigned long long v) {
    put(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name, v);
}

/* A counter of two samples told apart by result="a" and result="b". */
static void by_result(sbuf *b, const char *name, const char *help, const char *a,
                      unsigned long long va, const char *bn, unsigned long long vb) {
    put(b, "# HELP %s %s\n# TYPE %s counter\n%s{result=\"%s\"} %llu\n%s{result=\"%s\"} %llu\n",
        name, help, name, name, a, va, name, bn, vb);
}

pl_err pl__relay_metrics_text(const pl__relay_observed *o, char **out, size_t *len) {
    PL_REQUIRE(o && out && len);
    *out = NULL;
    *len = 0;
    sbuf b = {0};
    const pl__relay_stats *s = &o->st;
    metric(&b, "pairlink_relay_uptime_seconds", "gauge", "Seconds since the relay started.",
           (unsigned long long)(o->uptime_ms / 1000));
    metric(&b, "pairlink_relay_listeners", "gauge", "Listening sockets.", o->listeners);
    metric(&b, "pairlink_relay_connections", "gauge", "Open WebSocket connections.", s->conns);
    metric(&b, "pairlink_relay_sockets", "gauge", "Admitted sockets, handshakes included.",
           s->sockets);
    metric(&b, "pairlink_relay_topics", "gauge", "Topics held (stored or subscribed to).",
           s->topics);
    metric(&b, "pairlink_relay_subscriptions", "gauge", "Live subscriptions.", s->subscriptions);
    metric(&b, "pairlink_relay_stored_messages", "gauge", "Messages in the mailbox.", s->messages);
    metric(&b, "pairlink_relay_stored_message_bytes", "gauge",
           "Bytes of the stored messages' texts.", s->message_bytes);
    metric(&b, "pairlink_relay_stored_bytes", "gauge",
           "Stored messages with their overhead (what --max-stored counts).", s->stored_bytes);
    metric(&b, "pairlink_relay_pushes_in_flight", "gauge", "Pushes not yet acknowledged.",
           s->inflight);
    metric(&b, "pairlink_relay_queued_bytes", "gauge", "Bytes queued for clients, not yet written.",
           s->queued_bytes);
    metric(&b, "pairlink_relay_memory_bytes", "gauge", "Memory the relay accounts for.", s->memory);
    metric(&b, "pairlink_relay_memory_budget_bytes", "gauge",
           "The accounted memory budget (from --max-memory).", o->memory_budget);
    metric(&b, "pairlink_relay_publishes_total", "counter", "Messages published and stored.",
           s->published);
    metric(&b, "pairlink_relay_deliveries_total", "counter", "Pushes of messages to subscribers.",
           s->delivered);
    metric(&b, "pairlink_relay_acks_total", "counter", "Pushes acknowledged by subscribers.",
           s->acked);
    metric(&b, "pairlink_relay_repushes_total", "counter", "Pushes sent again after a time-out.",
           s->repushed);
    metric(&b, "pairlink_relay_evictions_total", "counter",
           "Acknowledged messages dropped to make room in a full topic.", s->evicted);
    put(&b,
        "# HELP pairlink_relay_refusals_total Requests and connections refused, by kind and code.\n"
        "# TYPE pairlink_relay_refusals_total counter\n");
    for (size_t i = 0; i < PL_RELAY_ERR_KINDS; i++)
        put(&b, "pairlink_relay_refusals_total{kind=\"jsonrpc\",code=\"%d\"} %llu\n",
            pl__relay_error_code(i), (unsigned long long)s->rpc_errors[i]);
    put(&b, "pairlink_relay_refusals_total{kind=\"http\",code=\"401\"} %llu\n",
        (unsigned long long)(o->auth_refused + o->not_allowed));
    put(&b, "pairlink_relay_refusals_total{kind=\"socket\",code=\"busy\"} %llu\n",
        (unsigned long long)o->sockets_refused);
    put(&b, "pairlink_relay_refusals_total{kind=\"close\",code=\"1008\"} %llu\n",
        (unsigned long long)s->slow_closed);
    metric(&b, "pairlink_relay_not_allowed_total", "counter",
           "Valid JWTs refused because their key is not in the allow-list.", o->not_allowed);
    metric(&b, "pairlink_relay_http_requests_total", "counter",
           "Requests for /health and /metrics.", o->http_requests);
    by_result(&b, "pairlink_relay_reloads_total", "Reloads of the settings (SIGHUP), by result.",
              "ok", o->reloads, "failed", o->reload_failures);
    if (o->cluster) {
        const pl__relay_cluster_stats *c = &o->cl;
        metric(&b, "pairlink_relay_cluster_connected", "gauge",
               "1 while connected to a NATS server of the cluster.", c->connected);
        metric(&b, "pairlink_relay_cluster_instances", "gauge",
               "Other relay instances heard (heartbeats).", c->instances);
        by_result(&b, "pairlink_relay_cluster_puts_total",
                  "Messages written to JetStream, by result.", "stored", c->puts, "failed",
                  c->put_failures);
        metric(&b, "pairlink_relay_cluster_put_retries_total", "counter",
               "Tries of a put beyond its first (leader elections, lost nodes).", c->put_retries);
        by_result(&b, "pairlink_relay_cluster_loads_total",
                  "Topics read from JetStream, by result.", "ok", c->loads - c->load_failures,
                  "failed", c->load_failures);
        metric(&b, "pairlink_relay_cluster_live_total", "counter",
               "Messages received live from the cluster.", c->live);
        metric(&b, "pairlink_relay_cluster_resyncs_total", "counter",
               "Re-reads of the watched topics (reconnects, leader elections).", c->resyncs);
        by_result(&b, "pairlink_relay_cluster_rooms_total",
                  "Full topics that asked the other instances, by result.", "answered",
                  c->rooms - c->rooms_failed, "failed", c->rooms_failed);
        metric(&b, "pairlink_relay_cluster_rooms_answered_total", "counter",
               "Questions of other instances about their full topics answered.", c->rooms_answered);
        metric(&b, "pairlink_relay_cluster_evicted_by_others_total", "counter",
               "Cached messages other instances evicted from the store.", c->evicted_by_others);
        metric(&b, "pairlink_relay_cluster_delete_failures_total", "counter",
               "Evicted messages JetStream did not delete (they expire there).",
               c->delete_failures);
    }
    metric(&b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", o->rss);
    if (b.failed) {
        free(b.p);
        return PL_ERR_NOMEM;
    }
    *out = b.p;
    *len = b.len;
    return PL_OK;
}

/* ---- debug frames ----------------------------------------------------------------------- */

static bool is_body_key(const char *k) {
    static const char *const body[] = {"message",
                                       "attestation",
                                       "sessionProposal",
                                       "sessionProposalResponse",
                                       "sessionSettlementRequest",
                                       NULL};
    for (size_t i = 0; body[i]; i++)
        if (!strcmp(k, body[i])) return true;
    return false;
}

static void redact(json_t *j, int depth) {
    if (depth > 16) return;
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            if (json_is_string(v) && is_body_key(k)) {
                char note[48];
                snprintf(note, sizeof note, "<%zu bytes>", json_string_length(v));
                json_string_set(v, note);
            } else {
                redact(v, depth + 1);
            }
        }
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) redact(v, depth + 1);
    }
}

void pl__relay_redact_frame(const char *text, size_t len, char *out, size_t cap) {
    PL_REQUIRE((text || !len) && out && cap);
    json_t *j = len ? json_loadb(text, len, JSON_DECODE_ANY, NULL) : NULL;
    char *s = NULL;
    if (j) {
        redact(j, 0);
        s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
        json_decref(j);
    }
    if (!s) {
        snprintf(out, cap, "<%zu bytes, not JSON>", len);
        return;
    }
    size_t n = strlen(s);
    if (n < cap) {
        memcpy(out, s, n + 1);
    } else if (cap > 4) {
        memcpy(out, s, cap - 4);
        memcpy(out + cap - 4, "...", 4);
    } else {
        out[0] = '\0';
    }
    free(s);
}
