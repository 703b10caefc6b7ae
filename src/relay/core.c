/* The relay protocol core (relay_core.h): lifecycle, frames in, the
 * request rate, expiry and re-push ticks, stats. No I/O, no clock; its
 * parts are listed in internal.h. */
#include "relay/internal.h"

#include "core/internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- lifecycle ---------------------------------------------------------------- */

pl_err pl__relay_core_new(pl__relay_core **out, const pl__relay_limits *limits, int64_t now_ms) {
    PL_REQUIRE(out);
    *out = NULL;
    pl__relay_limits def;
    pl__relay_limits_default(&def);
    pl__relay_limits l = def;
    if (limits) {
        l = *limits;
#define DEF(f)                                                                                     \
    if (!l.f) l.f = def.f
        DEF(max_frame_bytes);
        DEF(max_message_bytes);
        DEF(min_ttl_s);
        DEF(max_ttl_s);
        DEF(max_topics_per_conn);
        DEF(max_mailbox_per_topic);
        DEF(max_total_bytes);
        DEF(rate_per_s);
        DEF(rate_burst);
        DEF(ack_timeout_ms);
        DEF(max_push_attempts);
        DEF(max_inflight_per_conn);
        DEF(max_backlog_per_conn);
#undef DEF
    }
    if (l.min_ttl_s < 1 || l.max_ttl_s < l.min_ttl_s || l.max_ttl_s > INT64_MAX / 1000 / 4 ||
        l.max_message_bytes > l.max_frame_bytes || l.ack_timeout_ms < 1)
        return PL_ERR_INVALID_ARG;
    pl__relay_core *c = calloc(1, sizeof *c);
    if (!c) return PL_ERR_NOMEM;
    c->lim = l;
    /* Topics and message ids come from the clients: the tables hash them
     * under keys the clients cannot know. */
    uint8_t key[3][16];
    pl__rng(l.rng, l.rng_ctx, &key[0][0], sizeof key);
    pl__ht_init(&c->topics, key[0]);
    pl__ht_init(&c->conns, key[1]);
    pl__ht_init(&c->ids, key[2]);
    pl_wipe(key, sizeof key);
    /* JS-shaped ids (ms * 1000) stay below 2^53 until the year 2255 and
     * differ from the ids of a relay that ran before a restart. */
    c->next_push_id = now_ms > 0 && now_ms < (INT64_C(1) << 53) / 1000 ? now_ms * 1000 : 1;
    *out = c;
    return PL_OK;
}

/* Drop what is owed to k, then its subscriptions, then k. */
static void conn_destroy(pl__relay_core *c, conn *k) {
    pl__rs_deliveries_drop(c, k);
    while (k->ntopics)
        pl__rs_unlink(c, k, k->topics[k->ntopics - 1]);
    free(k->topics);
    free(k);
}

void pl__relay_core_free(pl__relay_core *c) {
    if (!c) return;
    for (conn *k; (k = pl__rs_conn_pop(c));)
        conn_destroy(c, k);
    pl__rs_mailbox_free(c);
    pl__rs_topics_free(c);
    while (c->q.head < c->q.len)
        pl__relay_action_release(&c->q.a[c->q.head++]);
    free(c->q.a);
    free(c);
}

const pl__relay_limits *pl__relay_core_limits(const pl__relay_core *c) {
    PL_REQUIRE(c);
    return &c->lim;
}

pl_err pl__relay_core_open(pl__relay_core *c, uint64_t conn_id, const char *client_did,
                           int64_t now_ms) {
    PL_REQUIRE(c);
    return pl__rs_conn_open(c, conn_id, client_did, now_ms);
}

void pl__relay_core_close(pl__relay_core *c, uint64_t conn_id) {
    PL_REQUIRE(c);
    conn *k = pl__rs_conn_find(c, conn_id);
    if (!k) return;
    pl__rs_conn_remove(c, k);
    conn_destroy(c, k);
}

void pl__relay_core_tick(pl__relay_core *c, int64_t now_ms) {
    PL_REQUIRE(c);
    pl__rs_expire(c, now_ms);
    pl__rs_repush(c, now_ms);
}

int64_t pl__relay_core_next_deadline(const pl__relay_core *c) {
    PL_REQUIRE(c);
    int64_t a = pl__rs_mailbox_deadline(c), b = pl__rs_deliveries_deadline(c);
    return a < b ? a : b;
}

void pl__relay_core_stats(const pl__relay_core *c, pl__relay_stats *out) {
    PL_REQUIRE(c && out);
    *out = c->st;
    out->conns = c->conns.n;
    out->topics = c->topics.n;
    out->messages = c->nheap;
    out->message_bytes = c->total_bytes;
    size_t subs = 0, infl = 0, bl = 0, cur = 0;
    for (conn *k = pl__rs_conn_each(c, &cur, NULL); k; k = pl__rs_conn_each(c, &cur, k)) {
        subs += k->ntopics;
        infl += k->inflight.n;
        bl += k->backlog.n;
    }
    out->subscriptions = subs;
    out->inflight = infl;
    out->backlog = bl;
}

pl_err pl__relay_core_restore(pl__relay_core *c, const pl__relay_record *rec, int64_t now_ms) {
    PL_REQUIRE(c && rec);
    if (!pl__rs_is_topic_hex(rec->topic, strlen(rec->topic)) || !rec->message || !rec->message_len)
        return PL_ERR_INVALID_ARG;
    if (rec->message_len > c->lim.max_message_bytes) return PL_ERR_TOO_LARGE;
    if (rec->expires_at_ms <= now_ms) return PL_ERR_BAD_TTL;
    /* The id is recomputed: the store is trusted for durability, not for
     * the relation between a message and its id. */
    pl__relay_record r = *rec;
    pl__rs_message_id(r.id, rec->message, rec->message_len);
    topic *t = pl__rs_topic_get(c, r.topic);
    if (!t) return PL_ERR_NOMEM;
    if (pl__rs_mailbox_find(c, t, r.id)) return PL_ERR_EXISTS;
    if (t->nmsgs >= c->lim.max_mailbox_per_topic ||
        c->total_bytes + r.message_len > c->lim.max_total_bytes) {
        pl__rs_topic_gc(c, t);
        return PL_ERR_MAILBOX_FULL;
    }
    rmsg *m;
    pl_err e = pl__rs_mailbox_add(c, t, &r, 0, &m);
    if (e != PL_OK) pl__rs_topic_gc(c, t);
    return e;
}

/* ---- frames ------------------------------------------------------------------------ */

/* Take a token from the connection's bucket; false when it is empty. */
static bool rate_take(pl__relay_core *c, conn *k, int64_t now_ms) {
    if (c->lim.rate_unlimited) return true;
    int64_t cap = (int64_t)c->lim.rate_burst * 1000;
    if (now_ms > k->last_refill_ms) {
        int64_t dt = now_ms - k->last_refill_ms;
        if (dt > 3600 * 1000) dt = 3600 * 1000;
        k->tokens_milli += dt * (int64_t)c->lim.rate_per_s;
        if (k->tokens_milli > cap) k->tokens_milli = cap;
        k->last_refill_ms = now_ms;
    }
    if (k->tokens_milli < 1000) return false;
    k->tokens_milli -= 1000;
    return true;
}

#define PL_RELAY_ID_STR_MAX 128

pl_err pl__relay_core_receive(pl__relay_core *c, uint64_t conn_id, const char *text, size_t len,
                              int64_t now_ms) {
    PL_REQUIRE(c && (text || !len));
    conn *k = pl__rs_conn_find(c, conn_id);
    if (!k) return PL_ERR_DISCONNECTED;
    if (len > c->lim.max_frame_bytes) {
        char m[96];
        snprintf(m, sizeof m, "Payload too large: frame exceeds %zu bytes", c->lim.max_frame_bytes);
        pl__rs_reply_error(c, conn_id, NULL, PL_RELAY_ERR_INVALID_REQUEST, m);
        return PL_ERR_TOO_LARGE;
    }
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!root) {
        pl__rs_reply_error(c, conn_id, NULL, PL_RELAY_ERR_PARSE, "Parse error");
        return PL_ERR_JSON;
    }
    pl_err e = PL_OK;
    const char *why = NULL;
    json_t *id = NULL;
    if (!json_is_object(root)) {
        why = json_is_array(root) ? "Invalid Request: batch requests are not supported"
                                  : "Invalid Request: not an object";
        goto invalid;
    }
    /* The id first, so that even an invalid request is answered with it. */
    id = json_object_get(root, "id");
    if (id && !json_is_integer(id) &&
        !(json_is_string(id) && json_string_length(id) <= PL_RELAY_ID_STR_MAX)) {
        id = NULL; /* never echo an id we refuse */
        why = "Invalid Request: id must be an integer or a short string";
        goto invalid;
    }
    json_t *ver = json_object_get(root, "jsonrpc");
    if (!json_is_string(ver) || strcmp(json_string_value(ver), "2.0") != 0) {
        why = "Invalid Request: jsonrpc must be \"2.0\"";
        goto invalid;
    }
    json_t *method = json_object_get(root, "method");
    if (!method) {
        json_t *result = json_object_get(root, "result"), *error = json_object_get(root, "error");
        if ((!result) == (!error) || !json_is_integer(id)) {
            why = "Invalid Request: neither a request nor a response";
            goto invalid;
        }
        /* A client's answer to an irn_subscription push: either way the
         * client has the message. */
        pl__rs_on_ack(c, k, json_integer_value(id), now_ms);
        json_decref(root);
        return PL_OK;
    }
    if (!json_is_string(method)) {
        why = "Invalid Request: method must be a string";
        goto invalid;
    }
    /* Notifications count against the rate too: they cost as much to parse. */
    if (!rate_take(c, k, now_ms)) {
        if (id) pl__rs_reply_error(c, conn_id, id, PL_RELAY_ERR_RATE, "Too many requests");
        json_decref(root);
        return PL_ERR_RATE_LIMITED;
    }
    if (!id) { /* a notification: nothing here expects one, and it gets no answer */
        json_decref(root);
        return PL_OK;
    }
    e = pl__rs_call(c, k, id, json_string_value(method), json_object_get(root, "params"), now_ms);
    json_decref(root);
    return e;
invalid:
    pl__rs_reply_error(c, conn_id, id, PL_RELAY_ERR_INVALID_REQUEST, why);
    json_decref(root);
    return PL_ERR_RPC_INVALID;
}
