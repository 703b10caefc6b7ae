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
    PL_TRY(pl__rs_conn_open(c, conn_id, client_did, now_ms));
    /* An identity the operator gave an allowance of its own. */
    for (size_t i = 0; client_did && i < c->lim.nallowances; i++) {
        const pl__relay_allowance *a = &c->lim.allowances[i];
        if (strcmp(a->did, client_did) != 0) continue;
        conn *k = pl__rs_conn_find(c, conn_id);
        k->rate_per_s = a->rate_per_s ? a->rate_per_s : c->lim.rate_per_s;
        k->rate_burst = a->burst ? a->burst : c->lim.rate_burst;
        k->tokens_milli = (int64_t)k->rate_burst * 1000;
        break;
    }
    return PL_OK;
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

/* Take `cost` thousandths of a request from the connection's bucket; false
 * (nothing taken) when it does not hold that much. A cost above the whole
 * bucket needs a full one and empties it. */
static bool rate_take(pl__relay_core *c, conn *k, int64_t cost, int64_t now_ms) {
    if (c->lim.rate_unlimited) return true;
    uint32_t rate = k->rate_per_s ? k->rate_per_s : c->lim.rate_per_s;
    int64_t cap = (int64_t)(k->rate_burst ? k->rate_burst : c->lim.rate_burst) * 1000;
    if (!rate) return false; /* (limits are checked at creation) */
    if (now_ms > k->last_refill_ms) {
        int64_t dt = now_ms - k->last_refill_ms;
        if (dt > 3600 * 1000) dt = 3600 * 1000;
        k->tokens_milli += dt * (int64_t)rate;
        if (k->tokens_milli > cap) k->tokens_milli = cap;
        k->last_refill_ms = now_ms;
    }
    if (k->tokens_milli < (cost < cap ? cost : cap)) return false;
    k->tokens_milli = cost < k->tokens_milli ? k->tokens_milli - cost : 0;
    return true;
}

/* The 3001 answer tells the client its allowance and when this request
 * would fit, so that it can pace itself instead of guessing
 * (docs/relay.md, "Request rate"). */
static void rate_refusal(pl__relay_core *c, conn *k, json_t *id, int64_t cost) {
    uint32_t rate = k->rate_per_s ? k->rate_per_s : c->lim.rate_per_s;
    uint32_t burst = k->rate_burst ? k->rate_burst : c->lim.rate_burst;
    int64_t need = cost < (int64_t)burst * 1000 ? cost : (int64_t)burst * 1000;
    int64_t wait = rate ? (need - k->tokens_milli + rate - 1) / rate : 1000;
    json_t *j = json_pack("{s:O,s:s,s:{s:i,s:s,s:{s:I,s:I,s:I}}}", "id", id, "jsonrpc", "2.0",
                          "error", "code", PL_RELAY_ERR_RATE, "message", "Too many requests", "data",
                          "perSecond", (json_int_t)rate, "burst", (json_int_t)burst, "retryAfterMs",
                          (json_int_t)(wait > 0 ? wait : 1));
    c->st.errors++;
    if (j) (void)pl__rs_send_json(c, k->id, j);
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
    int64_t cost = pl__rs_cost_milli(json_string_value(method), json_object_get(root, "params"));
    if (!rate_take(c, k, cost, now_ms)) {
        if (id) rate_refusal(c, k, id, cost);
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
