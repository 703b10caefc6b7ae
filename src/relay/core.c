/* SPDX-License-Identifier: Apache-2.0 */
/* The relay protocol core (relay_core.h): lifecycle, frames in, the
 * request rate, expiry and re-push ticks, stats. No I/O, no clock; its
 * parts are listed in internal.h. */
#include "relay/internal.h"

#include "core/internal.h"
#include "relay/frame.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- lifecycle ---------------------------------------------------------------- */

/* limits with its zero fields defaulted, checked. */
static pl_err limits_resolve(const pl__relay_limits *limits, pl__relay_limits *out) {
    pl__relay_limits def;
    pl__relay_limits_default(&def);
    pl__relay_limits l = def;
    bool total_given = false, qbytes_given = false, qmsgs_given = false;
    if (limits) {
        l = *limits;
        total_given = l.max_total_bytes != 0;
        qbytes_given = l.quota_bytes != 0;
        qmsgs_given = l.quota_messages != 0;
#define DEF(f)                                                                                     \
    if (!l.f) l.f = def.f
        DEF(max_frame_bytes);
        DEF(max_message_bytes);
        DEF(min_ttl_s);
        DEF(max_ttl_s);
        DEF(max_topics_per_conn);
        DEF(max_mailbox_per_topic);
        DEF(max_total_bytes);
        DEF(max_messages);
        DEF(max_topics);
        DEF(max_memory_bytes);
        DEF(quota_messages);
        DEF(quota_bytes);
        DEF(quota_topics);
        DEF(max_conns);
        DEF(max_conns_per_addr);
        DEF(rate_per_s);
        DEF(rate_burst);
        DEF(ack_timeout_ms);
        DEF(max_push_attempts);
        DEF(max_inflight_per_conn);
        DEF(max_inflight_bytes_per_conn);
        DEF(max_queue_bytes_per_conn);
        DEF(fetch_page_bytes);
        DEF(conn_cost_bytes);
        DEF(cluster_linger_ms);
#undef DEF
    }
    /* Stored messages may take half the memory budget by default: the
     * other half serves the connections. */
    if (!total_given && l.max_total_bytes > l.max_memory_bytes / 2)
        l.max_total_bytes = l.max_memory_bytes / 2;
    /* ... and one publisher a quarter of the storage, so that one address
     * cannot fill it for everyone. */
    if (!qbytes_given && l.quota_bytes > l.max_total_bytes / 4)
        l.quota_bytes = l.max_total_bytes / 4;
    if (!qmsgs_given && l.quota_messages > l.max_messages / 4)
        l.quota_messages = l.max_messages / 4;
    if (l.min_ttl_s < 1 || l.max_ttl_s < l.min_ttl_s || l.max_ttl_s > INT64_MAX / 1000 / 4 ||
        l.max_message_bytes > l.max_frame_bytes || l.ack_timeout_ms < 1 ||
        l.cluster_linger_ms < 0 || (l.cluster && (l.no_store || l.memory_store)))
        return PL_ERR_INVALID_ARG;
    *out = l;
    return PL_OK;
}

pl_err pl__relay_core_set_limits(pl__relay_core *c, const pl__relay_limits *limits) {
    PL_REQUIRE(c && limits);
    pl__relay_limits in = *limits, l;
    in.conn_cost_bytes = c->lim.conn_cost_bytes;
    in.memory_store = c->lim.memory_store;
    in.no_store = c->lim.no_store;
    in.cluster = c->lim.cluster; /* the backend is chosen at start */
    in.rng = c->lim.rng;
    in.rng_ctx = c->lim.rng_ctx;
    PL_TRY(limits_resolve(&in, &l));
    c->lim = l;
    return PL_OK;
}

int pl__relay_error_code(size_t i) {
    static const int codes[PL_RELAY_ERR_KINDS] = {PL_RELAY_ERR_PARSE,
                                                  PL_RELAY_ERR_INVALID_REQUEST,
                                                  PL_RELAY_ERR_METHOD_NOT_FOUND,
                                                  PL_RELAY_ERR_INVALID_PARAMS,
                                                  PL_RELAY_ERR_INTERNAL,
                                                  PL_RELAY_ERR_HANDLER,
                                                  PL_RELAY_ERR_AUTH,
                                                  PL_RELAY_ERR_RATE};
    PL_REQUIRE(i < PL_RELAY_ERR_KINDS);
    return codes[i];
}

pl_err pl__relay_core_new(pl__relay_core **out, const pl__relay_limits *limits, int64_t now_ms) {
    PL_REQUIRE(out);
    *out = NULL;
    pl__relay_limits l;
    PL_TRY(limits_resolve(limits, &l));
    pl__relay_core *c = calloc(1, sizeof *c);
    if (!c) return PL_ERR_NOMEM;
    if (!(c->parser = pl__rs_parser_new(l.max_frame_bytes))) {
        free(c);
        return PL_ERR_NOMEM;
    }
    c->lim = l;
    /* Topics, message ids and addresses come from the clients: the tables
     * hash them under keys the clients cannot know. */
    uint8_t key[5][16];
    pl__rng(l.rng, l.rng_ctx, &key[0][0], sizeof key);
    pl__ht_init(&c->topics, key[0]);
    pl__ht_init(&c->conns, key[1]);
    pl__ht_init(&c->ids, key[2]);
    pl__ht_init(&c->subs, key[3]);
    pl__ht_init(&c->principals, key[4]);
    pl_wipe(key, sizeof key);
    if (l.cluster && pl__rs_cluster_new(c) != PL_OK) {
        free(c);
        return PL_ERR_NOMEM;
    }
    /* JS-shaped ids (ms * 1000) stay below 2^53 until the year 2255 and
     * differ from the ids of a relay that ran before a restart. */
    c->next_push_id = now_ms > 0 && now_ms < (INT64_C(1) << 53) / 1000 ? now_ms * 1000 : 1;
    *out = c;
    return PL_OK;
}

/* Drop what is owed to k, then its subscriptions, then k. */
static void conn_destroy(pl__relay_core *c, conn *k) {
    pl__rs_deliveries_drop(c, k);
    while (k->nsubs)
        pl__rs_sub_free(c, k->subs[k->nsubs - 1]);
    free(k->subs);
    c->mem.queued -= k->unsent;
    pl__rs_release(c, k->unsent + pl__rs_conn_cost());
    principal *ps[2] = {k->paddr, k->pdid};
    for (int i = 0; i < 2; i++) {
        if (!ps[i]) continue;
        ps[i]->conns--;
        pl__rs_principal_gc(c, ps[i]);
    }
    free(k);
}

void pl__relay_core_free(pl__relay_core *c) {
    if (!c) return;
    for (conn *k; (k = pl__rs_conn_pop(c));)
        conn_destroy(c, k);
    pl__rs_cluster_free(c);
    pl__rs_mailbox_free(c);
    pl__rs_topics_free(c);
    for (pl__hnode *n; (n = pl__ht_pop(&c->principals));)
        free(PL__ENTRY(n, principal, hnode));
    pl__ht_free(&c->principals);
    while (c->q.head < c->q.len)
        pl__relay_action_release(&c->q.a[c->q.head++]);
    free(c->q.a);
    pl__rs_parser_free(c->parser);
    free(c);
}

const pl__relay_limits *pl__relay_core_limits(const pl__relay_core *c) {
    PL_REQUIRE(c);
    return &c->lim;
}

pl_err pl__relay_core_open(pl__relay_core *c, uint64_t conn_id, const char *client_did,
                           const char *addr, int64_t now_ms) {
    PL_REQUIRE(c);
    conn *k;
    PL_TRY(pl__rs_conn_open(c, conn_id, client_did, now_ms, &k));
    char key[PL__RS_PRINCIPAL_KEY];
    if (addr) {
        snprintf(key, sizeof key, "ip:%.64s", addr);
        k->paddr = pl__rs_principal_get(c, key);
    }
    if (k->has_did) k->pdid = pl__rs_principal_get(c, k->client);
    if ((addr && !k->paddr) || (k->has_did && !k->pdid)) {
        pl__rs_principal_gc(c, k->paddr);
        pl__rs_principal_gc(c, k->pdid);
        pl__rs_conn_remove(c, k);
        free(k);
        return PL_ERR_NOMEM;
    }
    if (k->paddr) k->paddr->conns++;
    if (k->pdid) k->pdid->conns++;
    pl__rs_charge(c, pl__rs_conn_cost());
    /* An identity the operator gave an allowance of its own. */
    for (size_t i = 0; client_did && i < c->lim.nallowances; i++) {
        const pl__relay_allowance *al = &c->lim.allowances[i];
        if (strcmp(al->did, client_did) != 0) continue;
        k->rate_per_s = al->rate_per_s ? al->rate_per_s : c->lim.rate_per_s;
        k->rate_burst = al->burst ? al->burst : c->lim.rate_burst;
        k->tokens_milli = (int64_t)k->rate_burst * 1000;
        k->entry_milli = (int64_t)k->rate_burst * PL_RELAY_ENTRY_FACTOR * 1000;
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

void pl__relay_core_sent(pl__relay_core *c, uint64_t conn_id, size_t bytes) {
    PL_REQUIRE(c);
    conn *k = pl__rs_conn_find(c, conn_id);
    if (!k) return;
    size_t n = bytes + PL__RS_FRAME_COST;
    if (n > k->unsent) n = k->unsent;
    k->unsent -= n;
    c->mem.queued -= n;
    pl__rs_release(c, n);
}

bool pl__relay_core_wants_input(const pl__relay_core *c, uint64_t conn_id) {
    PL_REQUIRE(c);
    const conn *k = pl__rs_conn_find(c, conn_id);
    /* Nor one whose requests wait for the shared store (cluster.c): its
     * next frames would wait too. */
    return k && !k->closing && k->unsent <= c->lim.max_queue_bytes_per_conn / 2 &&
           k->parked < PL__RS_PARKED_READ;
}

void pl__relay_core_tick(pl__relay_core *c, int64_t now_ms) {
    PL_REQUIRE(c);
    pl__rs_expire(c, now_ms);
    pl__rs_repush(c, now_ms);
    pl__rs_relieve(c, now_ms);
    pl__rs_cluster_tick(c, now_ms);
}

int64_t pl__relay_core_next_deadline(const pl__relay_core *c) {
    PL_REQUIRE(c);
    int64_t a = pl__rs_mailbox_deadline(c), b = pl__rs_deliveries_deadline(c);
    int64_t d = pl__rs_cluster_deadline(c);
    if (b < a) a = b;
    return d < a ? d : a;
}

void pl__relay_core_stats(const pl__relay_core *c, pl__relay_stats *out) {
    PL_REQUIRE(c && out);
    *out = c->st;
    out->conns = c->conns.n;
    out->topics = c->topics.n;
    out->messages = c->nheap;
    out->subscriptions = c->subs.n;
    out->memory = c->mem.used;
    out->stored_bytes = c->mem.stored;
    out->queued_bytes = c->mem.queued;
    out->sockets = c->mem.sockets;
    size_t bytes = 0, infl = 0, bl = 0, cur = 0;
    for (size_t i = 0; i < c->nheap; i++)
        bytes += c->heap[i]->rec.message_len;
    for (conn *k = pl__rs_conn_each(c, &cur, NULL); k; k = pl__rs_conn_each(c, &cur, k)) {
        infl += k->inflight.n;
        for (sub *s = k->ready_head; s; s = s->rnext)
            bl++;
    }
    out->message_bytes = bytes;
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
    size_t cost = pl__rs_msg_cost(c, r.message_len, r.attestation ? strlen(r.attestation) : 0);
    topic *t = pl__rs_topic_find(c, r.topic);
    if (t && pl__rs_mailbox_find(c, t, r.id)) return PL_ERR_EXISTS;
    if ((t ? t->nmsgs : 0) >= c->lim.max_mailbox_per_topic || c->nheap >= c->lim.max_messages ||
        c->mem.stored + cost > c->lim.max_total_bytes || (!t && c->topics.n >= c->lim.max_topics) ||
        !pl__rs_room(c, cost + (t ? 0 : pl__rs_topic_cost())))
        return PL_ERR_MAILBOX_FULL;
    principal *p = NULL;
    if (r.publisher[0] && !(p = pl__rs_principal_get(c, r.publisher))) return PL_ERR_NOMEM;
    if (!t) {
        if (!(t = pl__rs_topic_new(c, r.topic))) {
            pl__rs_principal_gc(c, p);
            return PL_ERR_NOMEM;
        }
        pl__rs_charge_topic(c, t, p, NULL);
    }
    rmsg *m;
    pl_err e = pl__rs_mailbox_add(c, t, &r, 0, p, NULL, &m);
    if (e != PL_OK) {
        pl__rs_topic_gc(c, t);
        pl__rs_principal_gc(c, p);
    }
    return e;
}

/* ---- frames ------------------------------------------------------------------------ */

/* The connection's buckets refilled to now. */
static void rate_refill(pl__relay_core *c, conn *k, int64_t now_ms) {
    uint32_t rate = k->rate_per_s ? k->rate_per_s : c->lim.rate_per_s;
    int64_t cap = (int64_t)(k->rate_burst ? k->rate_burst : c->lim.rate_burst) * 1000;
    if (now_ms <= k->last_refill_ms) return;
    int64_t dt = now_ms - k->last_refill_ms;
    if (dt > 3600 * 1000) dt = 3600 * 1000;
    k->tokens_milli += dt * (int64_t)rate;
    if (k->tokens_milli > cap) k->tokens_milli = cap;
    k->entry_milli += dt * (int64_t)rate * PL_RELAY_ENTRY_FACTOR;
    if (k->entry_milli > cap * PL_RELAY_ENTRY_FACTOR) k->entry_milli = cap * PL_RELAY_ENTRY_FACTOR;
    k->last_refill_ms = now_ms;
}

/* A request (one from the request bucket) with `entries` thousandths of an
 * entry (its batch items) from the entry bucket; false (nothing taken)
 * when either does not hold that much. A cost above a whole bucket needs a
 * full one and empties it. */
static bool rate_take(pl__relay_core *c, conn *k, int64_t entries, int64_t now_ms) {
    if (c->lim.rate_unlimited) return true;
    if (!(k->rate_per_s ? k->rate_per_s : c->lim.rate_per_s))
        return false; /* (checked at creation) */
    rate_refill(c, k, now_ms);
    int64_t cap = (int64_t)(k->rate_burst ? k->rate_burst : c->lim.rate_burst) * 1000;
    int64_t ecap = cap * PL_RELAY_ENTRY_FACTOR;
    if (k->tokens_milli < (1000 < cap ? 1000 : cap) ||
        k->entry_milli < (entries < ecap ? entries : ecap))
        return false;
    k->tokens_milli = 1000 < k->tokens_milli ? k->tokens_milli - 1000 : 0;
    k->entry_milli = entries < k->entry_milli ? k->entry_milli - entries : 0;
    return true;
}

/* The 3001 answer tells the client its allowance and when this request
 * would fit, so that it can pace itself instead of guessing
 * (docs/relay.md, "Request rate"). */
static void rate_refusal(pl__relay_core *c, conn *k, json_t *id, int64_t entries) {
    uint32_t rate = k->rate_per_s ? k->rate_per_s : c->lim.rate_per_s;
    uint32_t burst = k->rate_burst ? k->rate_burst : c->lim.rate_burst;
    int64_t cap = (int64_t)burst * 1000, ecap = cap * PL_RELAY_ENTRY_FACTOR;
    int64_t need = 1000 < cap ? 1000 : cap, eneed = entries < ecap ? entries : ecap;
    int64_t wait = rate ? (need - k->tokens_milli + rate - 1) / rate : 1000;
    int64_t erate = (int64_t)rate * PL_RELAY_ENTRY_FACTOR;
    int64_t ewait = erate ? (eneed - k->entry_milli + erate - 1) / erate : 1000;
    if (ewait > wait) wait = ewait;
    json_t *j =
        json_pack("{s:O,s:s,s:{s:i,s:s,s:{s:I,s:I,s:I,s:I,s:I}}}", "id", id, "jsonrpc", "2.0",
                  "error", "code", PL_RELAY_ERR_RATE, "message", "Too many requests", "data",
                  "perSecond", (json_int_t)rate, "burst", (json_int_t)burst, "entriesPerSecond",
                  (json_int_t)erate, "entryBurst", (json_int_t)burst * PL_RELAY_ENTRY_FACTOR,
                  "retryAfterMs", (json_int_t)(wait > 0 ? wait : 1));
    pl__rs_count_error(c, PL_RELAY_ERR_RATE);
    if (j) (void)pl__rs_send_json(c, k, j, NULL);
}

#define PL_RELAY_ID_STR_MAX 128

/* Whether a frame holds more than max JSON values, counted as the commas,
 * brackets and braces outside strings. jansson spends up to a few hundred
 * bytes on each value (an empty object is a hash table), so a frame of
 * "[{},{},...]" within the frame limit would cost ~90 MB to parse; no
 * request of the protocol comes near the bound. */
static bool too_many_values(const char *s, size_t n, size_t max) {
    size_t values = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = false;
        } else if (ch == '"') {
            in_str = true;
        } else if ((ch == ',' || ch == '[' || ch == '{') && ++values > max) {
            return true;
        }
    }
    return false;
}

static pl_err receive(pl__relay_core *c, conn *k, const char *text, size_t len, int64_t now_ms) {
    c->frame_len = len; /* what a parked request holds (cluster.c) */
    if (len > c->lim.max_frame_bytes) {
        char m[96];
        snprintf(m, sizeof m, "Payload too large: frame exceeds %zu bytes", c->lim.max_frame_bytes);
        pl__rs_reply_error(c, k, NULL, PL_RELAY_ERR_INVALID_REQUEST, m);
        return PL_ERR_TOO_LARGE;
    }
    /* The frames that make the traffic (a push's answer, irn_publish,
     * irn_subscribe) are read once by the fast reader; the rest, and every
     * frame it leaves, by jansson. */
    pl__rs_frame f;
    pl__rs_parse_frame(c->parser, text, len, &f);
    if (f.kind == PL__RS_FRAME_RESPONSE) {
        pl__rs_on_ack(c, k, f.id, now_ms);
        return PL_OK;
    }
    /* In cluster mode a publish is answered once its put is acknowledged and
     * a subscription may wait for a load: those hooks live on jansson's
     * path, and the JetStream round trip dwarfs what the fast reader saves. */
    if (!c->lim.cluster && (f.kind == PL__RS_FRAME_PUBLISH || f.kind == PL__RS_FRAME_SUBSCRIBE)) {
        if (!rate_take(c, k, 0, now_ms)) {
            json_t *id = json_integer(f.id);
            if (id) rate_refusal(c, k, id, 0);
            json_decref(id);
            return PL_ERR_RATE_LIMITED;
        }
        return pl__rs_call_fast(c, k, &f, now_ms);
    }
    /* (The fast reader's memory is bounded by the frame's size; jansson's
     * by the number of values.) */
    if (too_many_values(text, len, PL_RELAY_JSON_VALUES_MAX)) {
        char m[96];
        snprintf(m, sizeof m, "Payload too large: more than %d JSON values",
                 PL_RELAY_JSON_VALUES_MAX);
        pl__rs_reply_error(c, k, NULL, PL_RELAY_ERR_INVALID_REQUEST, m);
        return PL_ERR_TOO_LARGE;
    }
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!root) {
        pl__rs_reply_error(c, k, NULL, PL_RELAY_ERR_PARSE, "Parse error");
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
    pl__rs_reply_error(c, k, id, PL_RELAY_ERR_INVALID_REQUEST, why);
    json_decref(root);
    return PL_ERR_RPC_INVALID;
}

pl_err pl__relay_core_receive(pl__relay_core *c, uint64_t conn_id, const char *text, size_t len,
                              int64_t now_ms) {
    PL_REQUIRE(c && (text || !len));
    conn *k = pl__rs_conn_find(c, conn_id);
    if (!k) return PL_ERR_DISCONNECTED;
    pl_err e = receive(c, k, text, len, now_ms);
    pl__rs_relieve(c, now_ms);
    return e;
}
