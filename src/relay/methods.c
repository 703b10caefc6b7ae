/* SPDX-License-Identifier: Apache-2.0 */
/* The relay core's request handlers: the irn_* methods of the relay
 * protocol and the wc_proposeSession / wc_approveSession shortcuts. Each
 * checks the whole request before it changes anything. */
#include "relay/internal.h"

#include "core/internal.h"
#include "pairlink/relay_client.h"
#include "relay/frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The JSON-RPC code a pl_err is answered with. */
static int rpc_code(pl_err e) {
    switch (e) {
    case PL_ERR_JSON:
        return PL_RELAY_ERR_PARSE;
    case PL_ERR_RPC_INVALID:
    case PL_ERR_RPC_BAD_ID:
    case PL_ERR_TOO_LARGE:
        return PL_RELAY_ERR_INVALID_REQUEST;
    case PL_ERR_NOT_FOUND:
        return PL_RELAY_ERR_METHOD_NOT_FOUND;
    case PL_ERR_INVALID_ARG:
        return PL_RELAY_ERR_INVALID_PARAMS;
    case PL_ERR_BAD_TTL:
    case PL_ERR_MAILBOX_FULL:
        return PL_RELAY_ERR_HANDLER;
    case PL_ERR_RATE_LIMITED:
    case PL_ERR_RELAY_BUSY:
        return PL_RELAY_ERR_RATE;
    case PL_ERR_RELAY_AUTH:
        return PL_RELAY_ERR_AUTH;
    default:
        return PL_RELAY_ERR_INTERNAL;
    }
}

/* ---- request handlers ------------------------------------------------------------ */

typedef struct req {
    pl__relay_core *c;
    conn *k;
    json_t *id;
    json_t *params;
    int64_t now;
    const char *method;  /* NULL for the fast reader's requests (never parked) */
    const char *err_msg; /* message for the error reply, when a handler fails */
    char err_buf[96];
    bool parked; /* cluster: waits for loads or a ROOM answer, answered then */
} req;

/* The request waits (cluster.c): no answer now. */
static pl_err park(req *r) {
    r->parked = true;
    return PL_ERR_STATE;
}

static pl_err fail(req *r, pl_err e, const char *msg) {
    r->err_msg = msg;
    return e;
}

static pl_err param_topic(req *r, json_t *obj, const char *name, char out[PL_RELAY_TOPIC_HEX + 1]) {
    json_t *v = json_object_get(obj, name);
    if (!json_is_string(v)) {
        snprintf(r->err_buf, sizeof r->err_buf, "missing or non-string %s", name);
        return fail(r, PL_ERR_INVALID_ARG, r->err_buf);
    }
    if (!pl__rs_is_topic_hex(json_string_value(v), json_string_length(v))) {
        snprintf(r->err_buf, sizeof r->err_buf, "%s must be 64 lowercase hex characters", name);
        return fail(r, PL_ERR_INVALID_ARG, r->err_buf);
    }
    memcpy(out, json_string_value(v), PL_RELAY_TOPIC_HEX + 1);
    return PL_OK;
}

static json_t *params_object(req *r) {
    return json_is_object(r->params) ? r->params : NULL;
}

/* A publish, checked and not yet applied. */
typedef struct pub {
    char topic[PL_RELAY_TOPIC_HEX + 1];
    const char *message;
    size_t message_len;
    int64_t ttl_s;
    int64_t tag;
    const char *attestation;
    char id[PL_RELAY_ID_HEX + 1]; /* sha256(message) hex, once id_done */
    bool id_done;
} pub;

/* The message id, hashed once per publish (check_capacity and
 * apply_publish both need it). */
static const char *pub_id(pub *p) {
    if (!p->id_done) {
        pl__rs_message_id(p->id, p->message, p->message_len);
        p->id_done = true;
    }
    return p->id;
}

static pl_err check_message(req *r, json_t *obj, const char *name, pub *p) {
    json_t *v = json_object_get(obj, name);
    if (!json_is_string(v)) {
        snprintf(r->err_buf, sizeof r->err_buf, "missing or non-string %s", name);
        return fail(r, PL_ERR_INVALID_ARG, r->err_buf);
    }
    p->message = json_string_value(v);
    p->message_len = json_string_length(v);
    if (!p->message_len) return fail(r, PL_ERR_INVALID_ARG, "empty message");
    if (p->message_len > r->c->lim.max_message_bytes) {
        snprintf(r->err_buf, sizeof r->err_buf, "Payload too large: message exceeds %zu bytes",
                 r->c->lim.max_message_bytes);
        return fail(r, PL_ERR_TOO_LARGE, r->err_buf);
    }
    return PL_OK;
}

/* ttl, tag and attestation shared by every publishing method. ttl_default
 * < 0: ttl is required. */
static pl_err check_common(req *r, json_t *obj, int64_t ttl_default, pub *p) {
    json_t *ttl = json_object_get(obj, "ttl");
    if (!ttl && ttl_default >= 0) {
        p->ttl_s = ttl_default;
    } else if (!json_is_integer(ttl)) {
        return fail(r, PL_ERR_INVALID_ARG, "missing or non-integer ttl");
    } else {
        p->ttl_s = json_integer_value(ttl);
    }
    if (p->ttl_s < r->c->lim.min_ttl_s) {
        snprintf(r->err_buf, sizeof r->err_buf, "ttl too short: minimum is %lld s",
                 (long long)r->c->lim.min_ttl_s);
        return fail(r, PL_ERR_BAD_TTL, r->err_buf);
    }
    if (p->ttl_s > r->c->lim.max_ttl_s) {
        snprintf(r->err_buf, sizeof r->err_buf, "ttl too long: maximum is %lld s",
                 (long long)r->c->lim.max_ttl_s);
        return fail(r, PL_ERR_BAD_TTL, r->err_buf);
    }
    json_t *tag = json_object_get(obj, "tag");
    if (tag && !json_is_null(tag)) {
        if (!json_is_integer(tag) || json_integer_value(tag) < 0 ||
            json_integer_value(tag) > UINT32_MAX)
            return fail(r, PL_ERR_INVALID_ARG, "tag must be an unsigned 32-bit integer");
        p->tag = json_integer_value(tag);
    }
    json_t *att = json_object_get(obj, "attestation");
    if (att && !json_is_null(att)) {
        if (!json_is_string(att))
            return fail(r, PL_ERR_INVALID_ARG, "attestation must be a string");
        if (json_string_length(att) > PL_RELAY_ATTESTATION_MAX)
            return fail(r, PL_ERR_TOO_LARGE, "attestation too large");
        if (json_string_length(att)) p->attestation = json_string_value(att);
    }
    return PL_OK;
}

static const char busy_msg[] = "Too many requests: relay memory budget reached, try again later";

/* pl__rs_cluster_ready said no: parked (e PL_OK) or refused. */
static pl_err not_ready(req *r, pl_err e) {
    if (e == PL_OK) return park(r);
    return fail(r, e,
                e == PL_ERR_RELAY_BUSY
                    ? "Too many requests: too many requests waiting, try again later"
                    : "out of memory");
}

/* Room for the new (not duplicate) messages of a whole request: the
 * topics' mailboxes (a full topic makes room by evicting messages its
 * listeners are done with), the relay's storage and topic limits, the
 * publisher's quotas, the memory budget. */
static pl_err check_capacity(req *r, pub *ps, size_t n) {
    pl__relay_core *c = r->c;
    if (c->cl && r->method) {
        /* A cluster instance counts a topic's messages once it holds all
         * of them: the request waits for the topics' loads. */
        char(*ts)[PL_RELAY_TOPIC_HEX + 1] = malloc((n ? n : 1) * sizeof *ts);
        if (!ts) return fail(r, PL_ERR_NOMEM, "out of memory");
        size_t nt = 0;
        for (size_t i = 0; i < n; i++) {
            bool dup = false;
            for (size_t j = 0; j < nt && !dup; j++)
                dup = !memcmp(ts[j], ps[i].topic, PL_RELAY_TOPIC_HEX);
            if (!dup) memcpy(ts[nt++], ps[i].topic, sizeof *ts);
        }
        pl_err e = PL_OK;
        bool ready = pl__rs_cluster_ready(c, r->k, r->id, r->method, r->params, ts, nt, r->now, &e);
        free(ts);
        if (!ready) return not_ready(r, e);
    }
    size_t msgs = 0, bytes = 0, new_topics = 0, evict_msgs = 0, evict_bytes = 0;
    bool room = false; /* parked for a ROOM answer */
    for (size_t i = 0; i < n; i++) {
        const char *id = pub_id(&ps[i]);
        topic *t = pl__rs_topic_find(c, ps[i].topic);
        if (t && pl__rs_mailbox_find(c, t, id)) continue;
        /* Items of this batch on the same topic; the last one of them
         * checks the topic for all. */
        size_t same = 0, later = 0;
        for (size_t j = 0; j < n; j++) {
            if (j == i || memcmp(ps[j].topic, ps[i].topic, PL_RELAY_TOPIC_HEX)) continue;
            if (j < i)
                same++;
            else
                later++;
        }
        msgs++;
        bytes += pl__rs_msg_cost(c, ps[i].message_len,
                                 ps[i].attestation ? strlen(ps[i].attestation) : 0);
        if (!t && !same) new_topics++;
        if (later) continue;
        size_t have = t ? t->nmsgs : 0, max = c->lim.max_mailbox_per_topic;
        if (have + same + 1 <= max) continue;
        size_t need = have + same + 1 - max, cost = 0;
        if (!t || pl__rs_evictable(c, t, need, &cost) < need) {
            /* In a cluster, the other instances may be done with more. */
            if (t && pl__rs_cluster_need_room(c, r->k, r->id, r->method, r->params, t)) room = true;
            snprintf(r->err_buf, sizeof r->err_buf, "mailbox limit reached: %zu messages per topic",
                     max);
            if (!room) return fail(r, PL_ERR_MAILBOX_FULL, r->err_buf);
            continue;
        }
        evict_msgs += need;
        evict_bytes += cost;
    }
    if (room) return park(r);
    if (c->nheap + msgs > c->lim.max_messages + evict_msgs ||
        c->mem.stored + bytes > c->lim.max_total_bytes + evict_bytes)
        return fail(r, PL_ERR_MAILBOX_FULL, "mailbox limit reached: relay storage is full");
    if (c->topics.n + new_topics > c->lim.max_topics)
        return fail(r, PL_ERR_MAILBOX_FULL, "topic limit reached: the relay holds its maximum");
    const char *why = NULL;
    if (pl__rs_quota_check(c, r->k, msgs, bytes, new_topics, &why) != PL_OK)
        return fail(r, PL_ERR_MAILBOX_FULL, why);
    size_t need = bytes + new_topics * pl__rs_topic_cost();
    if (!pl__rs_room(c, need > evict_bytes ? need - evict_bytes : 0)) {
        c->st.refused++;
        c->mem.refused = true;
        return fail(r, PL_ERR_RELAY_BUSY, busy_msg);
    }
    return PL_OK;
}

/* The topic, created (and charged to r's connection) when missing; NULL:
 * out of memory. */
static topic *topic_get(req *r, const char *hex) {
    topic *t = pl__rs_topic_find(r->c, hex);
    if (t) return t;
    if (!(t = pl__rs_topic_new(r->c, hex))) return NULL;
    pl__rs_charge_topic(r->c, t, r->k->paddr, r->k->pdid);
    return t;
}

/* Store and fan out one checked publish. Duplicates are acknowledged
 * without a second copy or a second delivery. A topic at its limit drops
 * its oldest messages that every listener is done with (check_capacity
 * made sure there are enough). */
static pl_err apply_publish(req *r, pub *p) {
    pl__relay_core *c = r->c;
    pl__relay_record rec;
    memset(&rec, 0, sizeof rec);
    memcpy(rec.topic, p->topic, sizeof rec.topic);
    memcpy(rec.id, pub_id(p), sizeof rec.id);
    topic *t = topic_get(r, p->topic);
    if (!t) return fail(r, PL_ERR_NOMEM, "out of memory");
    rmsg *dup = pl__rs_mailbox_find(c, t, rec.id);
    /* A retry of a message whose cluster put is still out waits for a put
     * of its own (the store de-duplicates them). */
    if (dup) return dup->putting ? pl__rs_store_action(c, PL__RELAY_STORE_PUT, dup) : PL_OK;
    /* Room first (check_capacity made sure there is enough): in a cluster
     * the store must let the old messages go before it takes the new one
     * (its own per-topic limit). The pin keeps t while it empties. */
    t->pins++;
    while (t->nmsgs + 1 > c->lim.max_mailbox_per_topic && pl__rs_evict_one(c, t))
        ;
    t->pins--;
    rec.message = (char *)p->message;
    rec.message_len = p->message_len;
    rec.attestation = (char *)p->attestation;
    rec.published_at_ms = r->now;
    rec.expires_at_ms = r->now + p->ttl_s * 1000;
    rec.tag = p->tag;
    if (r->k->has_did) memcpy(rec.publisher, r->k->client, sizeof rec.publisher);
    rmsg *m;
    pl_err e = pl__rs_mailbox_add(c, t, &rec, r->k->id, r->k->paddr, r->k->pdid, &m);
    if (e != PL_OK) {
        pl__rs_topic_gc(c, t);
        return fail(r, e, "out of memory");
    }
    c->st.published++;
    if ((e = pl__rs_store_action(c, PL__RELAY_STORE_PUT, m)) != PL_OK)
        return fail(r, e, "out of memory");
    pl__rs_fan_out(c, t, m, r->now);
    return PL_OK;
}

/* Whether r's connection may subscribe to the n topics (duplicates and
 * topics it already has count once and not at all): its subscription
 * limit, the relay's topic limit and its publisher quota for the topics
 * that would be new, the memory budget. */
static pl_err check_subscribe(req *r, const char (*ts)[PL_RELAY_TOPIC_HEX + 1], size_t n) {
    pl__relay_core *c = r->c;
    size_t need = 0, new_topics = 0;
    for (size_t i = 0; i < n; i++) {
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = !memcmp(ts[j], ts[i], PL_RELAY_TOPIC_HEX);
        if (dup) continue;
        topic *t = pl__rs_topic_find(c, ts[i]);
        if (t && pl__rs_sub_find(c, r->k, t)) continue;
        need++;
        if (!t) new_topics++;
    }
    if (r->k->nsubs + need > c->lim.max_topics_per_conn) {
        snprintf(r->err_buf, sizeof r->err_buf, "subscription limit reached: %zu topics per client",
                 c->lim.max_topics_per_conn);
        return fail(r, PL_ERR_MAILBOX_FULL, r->err_buf);
    }
    if (c->topics.n + new_topics > c->lim.max_topics)
        return fail(r, PL_ERR_MAILBOX_FULL, "topic limit reached: the relay holds its maximum");
    const char *why = NULL;
    if (pl__rs_quota_check(c, r->k, 0, 0, new_topics, &why) != PL_OK)
        return fail(r, PL_ERR_MAILBOX_FULL, why);
    if (!pl__rs_room(c, need * pl__rs_sub_cost() + new_topics * pl__rs_topic_cost())) {
        c->st.refused++;
        c->mem.refused = true;
        return fail(r, PL_ERR_RELAY_BUSY, busy_msg);
    }
    return PL_OK;
}

/* Subscribe r->k to a topic (checked by check_subscribe). A new
 * subscription is owed the topic's stored messages, oldest first, pushed
 * once the answer is queued (pl__rs_call pumps last). */
static pl_err do_subscribe(req *r, const char *hex) {
    pl__relay_core *c = r->c;
    conn *k = r->k;
    topic *t = pl__rs_topic_find(c, hex);
    if (t && pl__rs_sub_find(c, k, t)) return PL_OK;
    if (!t && !(t = topic_get(r, hex))) return fail(r, PL_ERR_NOMEM, "out of memory");
    sub *s;
    if (pl__rs_sub_new(c, k, t, &s) != PL_OK) {
        pl__rs_topic_gc(c, t);
        return fail(r, PL_ERR_NOMEM, "out of memory");
    }
    if ((s->next = pl__rs_owed_from(k, t->head))) pl__rs_ready_add(s);
    pl__rs_cluster_subscribed(c, t);
    return PL_OK;
}

static void do_unsubscribe(req *r, const char *hex) {
    topic *t = pl__rs_topic_find(r->c, hex);
    sub *s = t ? pl__rs_sub_find(r->c, r->k, t) : NULL;
    if (s) pl__rs_sub_free(r->c, s);
}

static json_t *sub_id_json(req *r, const char *hex) {
    char id[PL_RELAY_ID_HEX + 1];
    pl__relay_subscription_id(id, hex, r->k->client);
    return json_string(id);
}

static pl_err m_publish(req *r) {
    json_t *p = params_object(r);
    if (!p) return fail(r, PL_ERR_INVALID_ARG, "params must be an object");
    pub pb;
    memset(&pb, 0, sizeof pb);
    PL_TRY(param_topic(r, p, "topic", pb.topic));
    PL_TRY(check_message(r, p, "message", &pb));
    PL_TRY(check_common(r, p, -1, &pb));
    PL_TRY(check_capacity(r, &pb, 1));
    PL_TRY(apply_publish(r, &pb));
    return pl__rs_reply_result(r->c, r->k, r->id, json_true());
}

static pl_err array_param(req *r, const char *name, json_t **out) {
    json_t *p = params_object(r);
    json_t *a = p ? json_object_get(p, name) : NULL;
    if (!json_is_array(a)) {
        snprintf(r->err_buf, sizeof r->err_buf, "params.%s must be an array", name);
        return fail(r, PL_ERR_INVALID_ARG, r->err_buf);
    }
    if (json_array_size(a) > PL_RELAY_BATCH_MAX) {
        snprintf(r->err_buf, sizeof r->err_buf, "too many items in %s: at most %d", name,
                 PL_RELAY_BATCH_MAX);
        return fail(r, PL_ERR_INVALID_ARG, r->err_buf);
    }
    *out = a;
    return PL_OK;
}

static pl_err m_batch_publish(req *r) {
    json_t *a;
    PL_TRY(array_param(r, "messages", &a));
    size_t n = json_array_size(a);
    pub *ps = calloc(n ? n : 1, sizeof *ps);
    if (!ps) return fail(r, PL_ERR_NOMEM, "out of memory");
    pl_err e = PL_OK;
    for (size_t i = 0; i < n && e == PL_OK; i++) {
        json_t *o = json_array_get(a, i);
        if (!json_is_object(o)) {
            e = fail(r, PL_ERR_INVALID_ARG, "every batch item must be an object");
            break;
        }
        if ((e = param_topic(r, o, "topic", ps[i].topic)) != PL_OK) break;
        if ((e = check_message(r, o, "message", &ps[i])) != PL_OK) break;
        e = check_common(r, o, -1, &ps[i]);
    }
    if (e == PL_OK) e = check_capacity(r, ps, n);
    for (size_t i = 0; i < n && e == PL_OK; i++)
        e = apply_publish(r, &ps[i]);
    free(ps);
    if (e != PL_OK) return e;
    return pl__rs_reply_result(r->c, r->k, r->id, json_true());
}

static pl_err m_subscribe(req *r) {
    json_t *p = params_object(r);
    if (!p) return fail(r, PL_ERR_INVALID_ARG, "params must be an object");
    char hex[1][PL_RELAY_TOPIC_HEX + 1];
    PL_TRY(param_topic(r, p, "topic", hex[0]));
    PL_TRY(check_subscribe(r, hex, 1));
    PL_TRY(do_subscribe(r, hex[0]));
    return pl__rs_reply_result(r->c, r->k, r->id, sub_id_json(r, hex[0]));
}

static pl_err topics_param(req *r, char (**out)[PL_RELAY_TOPIC_HEX + 1], size_t *n) {
    json_t *a;
    *out = NULL;
    PL_TRY(array_param(r, "topics", &a));
    *n = json_array_size(a);
    char(*ts)[PL_RELAY_TOPIC_HEX + 1] = calloc(*n ? *n : 1, sizeof *ts);
    if (!ts) return fail(r, PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < *n; i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_string(v) ||
            !pl__rs_is_topic_hex(json_string_value(v), json_string_length(v))) {
            free(ts);
            return fail(r, PL_ERR_INVALID_ARG, "topics must be 64 lowercase hex characters");
        }
        memcpy(ts[i], json_string_value(v), PL_RELAY_TOPIC_HEX + 1);
    }
    *out = ts;
    return PL_OK;
}

static pl_err m_batch_subscribe(req *r) {
    char(*ts)[PL_RELAY_TOPIC_HEX + 1];
    size_t n;
    PL_TRY(topics_param(r, &ts, &n));
    pl_err e = check_subscribe(r, (const char(*)[PL_RELAY_TOPIC_HEX + 1]) ts, n);
    json_t *ids = e == PL_OK ? json_array() : NULL;
    if (e == PL_OK && !ids) e = fail(r, PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && e == PL_OK; i++) {
        e = do_subscribe(r, ts[i]);
        if (e == PL_OK) json_array_append_new(ids, sub_id_json(r, ts[i]));
    }
    if (e == PL_OK) {
        e = pl__rs_reply_result(r->c, r->k, r->id, ids);
        ids = NULL;
    }
    json_decref(ids);
    free(ts);
    return e;
}

static pl_err m_unsubscribe(req *r) {
    json_t *p = params_object(r);
    if (!p) return fail(r, PL_ERR_INVALID_ARG, "params must be an object");
    char hex[PL_RELAY_TOPIC_HEX + 1];
    PL_TRY(param_topic(r, p, "topic", hex));
    json_t *id = json_object_get(p, "id");
    if (id && !json_is_string(id)) return fail(r, PL_ERR_INVALID_ARG, "id must be a string");
    do_unsubscribe(r, hex);
    return pl__rs_reply_result(r->c, r->k, r->id, json_true());
}

static pl_err m_batch_unsubscribe(req *r) {
    json_t *a;
    PL_TRY(array_param(r, "subscriptions", &a));
    size_t n = json_array_size(a);
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(a, i);
        char hex[PL_RELAY_TOPIC_HEX + 1];
        if (!json_is_object(o)) return fail(r, PL_ERR_INVALID_ARG, "subscriptions must be objects");
        PL_TRY(param_topic(r, o, "topic", hex));
        json_t *id = json_object_get(o, "id");
        if (id && !json_is_string(id)) return fail(r, PL_ERR_INVALID_ARG, "id must be a string");
    }
    for (size_t i = 0; i < n; i++)
        do_unsubscribe(r, json_string_value(json_object_get(json_array_get(a, i), "topic")));
    return pl__rs_reply_result(r->c, r->k, r->id, json_true());
}

/* {messages:[...], hasMore} for the topics, oldest first, the caller's own
 * messages left out: one page of at most PL_RELAY_FETCH_MAX messages and
 * about fetch_page_bytes (one message always fits, so that every page
 * makes progress). The same request again continues after the last page
 * (the connection keeps where it stopped); the page after the last one,
 * or any other request, starts from the beginning. The page is sized from
 * the messages' lengths before anything is built. */
static pl_err fetch(req *r, char (*ts)[PL_RELAY_TOPIC_HEX + 1], size_t n) {
    pl__relay_core *c = r->c;
    conn *k = r->k;
    uint64_t key = pl__ht_hash(&c->topics, ts, n * sizeof *ts);
    size_t ti = 0;
    uint64_t after = 0;
    if (k->fetch.live && k->fetch.key == key && k->fetch.ti < n) {
        ti = k->fetch.ti;
        after = k->fetch.after;
    }
    rmsg **page = malloc(PL_RELAY_FETCH_MAX * sizeof *page);
    if (!page) return fail(r, PL_ERR_NOMEM, "out of memory");
    size_t count = 0, bytes = 0, last_ti = ti;
    uint64_t last_seq = after;
    bool more = false;
    for (size_t i = ti; i < n && !more; i++) {
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = !memcmp(ts[j], ts[i], PL_RELAY_TOPIC_HEX);
        topic *t = dup ? NULL : pl__rs_topic_find(c, ts[i]);
        for (rmsg *m = t ? t->head : NULL; m; m = m->next) {
            if ((i == ti && m->seq <= after) || pl__rs_is_own(k, m)) continue;
            if (count == PL_RELAY_FETCH_MAX ||
                (count && bytes + m->wire > c->lim.fetch_page_bytes)) {
                more = true;
                break;
            }
            page[count++] = m;
            bytes += m->wire + 1;
            last_ti = i;
            last_seq = m->seq;
        }
    }
    if (!pl__rs_room(c, 3 * bytes)) { /* tree, text, frame */
        free(page);
        c->st.refused++;
        c->mem.refused = true;
        return fail(r, PL_ERR_RELAY_BUSY, busy_msg);
    }
    k->fetch = (fetch_cursor){.key = key, .ti = last_ti, .after = last_seq, .live = more};
    json_t *msgs = json_array();
    json_t *res = json_object();
    for (size_t i = 0; msgs && i < count; i++)
        json_array_append_new(msgs, pl__rs_message_json(page[i]));
    free(page);
    if (!msgs || !res) {
        json_decref(msgs);
        json_decref(res);
        return fail(r, PL_ERR_NOMEM, "out of memory");
    }
    json_object_set_new(res, "messages", msgs);
    json_object_set_new(res, "hasMore", json_boolean(more));
    return pl__rs_reply_result(c, k, r->id, res);
}

static pl_err m_fetch(req *r) {
    json_t *p = params_object(r);
    if (!p) return fail(r, PL_ERR_INVALID_ARG, "params must be an object");
    char hex[1][PL_RELAY_TOPIC_HEX + 1];
    PL_TRY(param_topic(r, p, "topic", hex[0]));
    pl_err e = PL_OK;
    if (!pl__rs_cluster_ready(r->c, r->k, r->id, "irn_fetchMessages", r->params, hex, 1, r->now,
                              &e))
        return not_ready(r, e);
    return fetch(r, hex, 1);
}

static pl_err m_batch_fetch(req *r) {
    char(*ts)[PL_RELAY_TOPIC_HEX + 1];
    size_t n;
    PL_TRY(topics_param(r, &ts, &n));
    pl_err e = PL_OK;
    if (pl__rs_cluster_ready(r->c, r->k, r->id, "irn_batchFetchMessages", r->params, ts, n, r->now,
                             &e))
        e = fetch(r, ts, n);
    else
        e = not_ready(r, e);
    free(ts);
    return e;
}

/* wc_proposeSession: the relay publishes the proposal on the pairing topic
 * (tag 1100) and subscribes the caller to that topic. Everything is
 * checked first; the caller's own proposal is not pushed back to it. */
static pl_err m_propose_session(req *r) {
    json_t *p = params_object(r);
    if (!p) return fail(r, PL_ERR_INVALID_ARG, "params must be an object");
    pub pb;
    memset(&pb, 0, sizeof pb);
    char hex[1][PL_RELAY_TOPIC_HEX + 1];
    PL_TRY(param_topic(r, p, "pairingTopic", pb.topic));
    PL_TRY(check_message(r, p, "sessionProposal", &pb));
    PL_TRY(check_common(r, p, 300, &pb));
    pb.tag = 1100;
    memcpy(hex[0], pb.topic, sizeof hex[0]);
    PL_TRY(check_subscribe(r, hex, 1));
    PL_TRY(check_capacity(r, &pb, 1));
    PL_TRY(apply_publish(r, &pb));
    PL_TRY(do_subscribe(r, hex[0]));
    return pl__rs_reply_result(r->c, r->k, r->id, json_true());
}

/* wc_approveSession: the proposal response goes to the pairing topic (1101),
 * the settle request to the session topic (1102), and the caller is
 * subscribed to the session topic. */
static pl_err m_approve_session(req *r) {
    json_t *p = params_object(r);
    if (!p) return fail(r, PL_ERR_INVALID_ARG, "params must be an object");
    pub pb[2];
    memset(pb, 0, sizeof pb);
    char hex[1][PL_RELAY_TOPIC_HEX + 1];
    PL_TRY(param_topic(r, p, "pairingTopic", pb[0].topic));
    PL_TRY(param_topic(r, p, "sessionTopic", pb[1].topic));
    PL_TRY(check_message(r, p, "sessionProposalResponse", &pb[0]));
    PL_TRY(check_message(r, p, "sessionSettlementRequest", &pb[1]));
    PL_TRY(check_common(r, p, 300, &pb[0]));
    pb[1].ttl_s = pb[0].ttl_s;
    pb[1].attestation = pb[0].attestation;
    pb[0].tag = 1101;
    pb[1].tag = 1102;
    memcpy(hex[0], pb[1].topic, sizeof hex[0]);
    PL_TRY(check_subscribe(r, hex, 1));
    PL_TRY(check_capacity(r, pb, 2));
    PL_TRY(apply_publish(r, &pb[0]));
    PL_TRY(apply_publish(r, &pb[1]));
    PL_TRY(do_subscribe(r, hex[0]));
    return pl__rs_reply_result(r->c, r->k, r->id, json_true());
}

static const struct method {
    const char *name;
    pl_err (*fn)(req *r);
} methods[] = {
    {"irn_publish", m_publish},
    {"irn_batchPublish", m_batch_publish},
    {"irn_subscribe", m_subscribe},
    {"irn_batchSubscribe", m_batch_subscribe},
    {"irn_unsubscribe", m_unsubscribe},
    {"irn_batchUnsubscribe", m_batch_unsubscribe},
    {"irn_fetchMessages", m_fetch},
    {"irn_batchFetchMessages", m_batch_fetch},
    {"wc_proposeSession", m_propose_session},
    {"wc_approveSession", m_approve_session},
};

int64_t pl__rs_cost_milli(const char *method, json_t *params) {
    /* A batch is one request, and its items are entries from the larger
     * entry allowance (docs/relay.md, "Request rate", says why). Its size
     * is bounded by array_param. */
    const char *field = NULL;
    int64_t each = PL_RELAY_COST_TOPIC_ITEM_MILLI;
    if (!strcmp(method, "irn_batchPublish")) {
        field = "messages";
        each = PL_RELAY_COST_PUBLISH_ITEM_MILLI;
    } else if (!strcmp(method, "irn_batchSubscribe") || !strcmp(method, "irn_batchFetchMessages")) {
        field = "topics";
    } else if (!strcmp(method, "irn_batchUnsubscribe")) {
        field = "subscriptions";
    }
    json_t *a = field && json_is_object(params) ? json_object_get(params, field) : NULL;
    size_t n = json_is_array(a) ? json_array_size(a) : 0;
    if (n > PL_RELAY_BATCH_MAX) n = PL_RELAY_BATCH_MAX; /* refused anyway, at this price */
    return (int64_t)n * each;
}

pl_err pl__rs_call(pl__relay_core *c, conn *k, json_t *id, const char *name, json_t *params,
                   int64_t now_ms) {
    req r = {.c = c, .k = k, .id = id, .params = params, .now = now_ms};
    pl__rs_cluster_request(c);
    pl_err e = PL_ERR_NOT_FOUND;
    for (size_t i = 0; i < PL_ARRAY_LEN(methods); i++) {
        if (strcmp(methods[i].name, name) != 0) continue;
        r.method = methods[i].name;
        e = methods[i].fn(&r);
        break;
    }
    if (r.parked) return PL_OK; /* answered when it runs again (cluster.c) */
    pl__rs_cluster_answered(c, now_ms);
    if (e == PL_ERR_NOT_FOUND && !r.err_msg) {
        snprintf(r.err_buf, sizeof r.err_buf, "Method not found: %.48s", name);
        r.err_msg = r.err_buf;
    }
    if (e != PL_OK)
        pl__rs_reply_error(c, k, id, rpc_code(e), r.err_msg ? r.err_msg : pl_strerror(e));
    /* After the answer: what a new subscription is owed. */
    pl__rs_pump(c, k, now_ms);
    return e;
}

/* ---- requests the fast reader took (frame.h) ---------------------------------------- */

/* check_message and check_common on values the fast reader found, with
 * the same answers (anything it could not read as these types went to
 * jansson's path). */
static pl_err check_fast_publish(req *r, const pl__rs_frame *f, pub *p) {
    pl__relay_core *c = r->c;
    if (!pl__rs_is_topic_hex(f->topic, f->topic_len))
        return fail(r, PL_ERR_INVALID_ARG, "topic must be 64 lowercase hex characters");
    memcpy(p->topic, f->topic, PL_RELAY_TOPIC_HEX);
    p->topic[PL_RELAY_TOPIC_HEX] = '\0';
    p->message = f->message;
    p->message_len = f->message_len;
    if (!p->message_len) return fail(r, PL_ERR_INVALID_ARG, "empty message");
    if (p->message_len > c->lim.max_message_bytes) {
        snprintf(r->err_buf, sizeof r->err_buf, "Payload too large: message exceeds %zu bytes",
                 c->lim.max_message_bytes);
        return fail(r, PL_ERR_TOO_LARGE, r->err_buf);
    }
    if (!f->has_ttl) return fail(r, PL_ERR_INVALID_ARG, "missing or non-integer ttl");
    p->ttl_s = f->ttl;
    if (p->ttl_s < c->lim.min_ttl_s) {
        snprintf(r->err_buf, sizeof r->err_buf, "ttl too short: minimum is %lld s",
                 (long long)c->lim.min_ttl_s);
        return fail(r, PL_ERR_BAD_TTL, r->err_buf);
    }
    if (p->ttl_s > c->lim.max_ttl_s) {
        snprintf(r->err_buf, sizeof r->err_buf, "ttl too long: maximum is %lld s",
                 (long long)c->lim.max_ttl_s);
        return fail(r, PL_ERR_BAD_TTL, r->err_buf);
    }
    if (f->has_tag) {
        if (f->tag < 0 || f->tag > UINT32_MAX)
            return fail(r, PL_ERR_INVALID_ARG, "tag must be an unsigned 32-bit integer");
        p->tag = f->tag;
    }
    if (f->attestation) {
        if (f->attestation_len > PL_RELAY_ATTESTATION_MAX)
            return fail(r, PL_ERR_TOO_LARGE, "attestation too large");
        /* NUL-terminated for the record: the fast reader's strings are
         * not, so the attestation is copied (rare, and at most 8 KiB). */
        if (f->attestation_len) {
            char *a = malloc(f->attestation_len + 1);
            if (!a) return fail(r, PL_ERR_NOMEM, "out of memory");
            memcpy(a, f->attestation, f->attestation_len);
            a[f->attestation_len] = '\0';
            p->attestation = a;
        }
    }
    return PL_OK;
}

pl_err pl__rs_call_fast(pl__relay_core *c, conn *k, const pl__rs_frame *f, int64_t now_ms) {
    req r = {.c = c, .k = k, .now = now_ms};
    pl_err e;
    if (f->kind == PL__RS_FRAME_PUBLISH) {
        pub pb;
        memset(&pb, 0, sizeof pb);
        e = check_fast_publish(&r, f, &pb);
        if (e == PL_OK) e = check_capacity(&r, &pb, 1);
        if (e == PL_OK) e = apply_publish(&r, &pb);
        if (e == PL_OK) e = pl__rs_reply_true(c, k, f->id);
        free((char *)pb.attestation);
    } else {
        PL_REQUIRE(f->kind == PL__RS_FRAME_SUBSCRIBE);
        char hex[1][PL_RELAY_TOPIC_HEX + 1];
        e = pl__rs_is_topic_hex(f->topic, f->topic_len)
                ? PL_OK
                : fail(&r, PL_ERR_INVALID_ARG, "topic must be 64 lowercase hex characters");
        if (e == PL_OK) {
            memcpy(hex[0], f->topic, PL_RELAY_TOPIC_HEX);
            hex[0][PL_RELAY_TOPIC_HEX] = '\0';
            e = check_subscribe(&r, hex, 1);
        }
        if (e == PL_OK) e = do_subscribe(&r, hex[0]);
        if (e == PL_OK) {
            char *s = pl__rs_text_alloc(160);
            if (!s) {
                e = fail(&r, PL_ERR_NOMEM, "out of memory");
            } else {
                char id[PL_RELAY_ID_HEX + 1];
                pl__relay_subscription_id(id, hex[0], k->client);
                int n = snprintf(s, 161, "{\"id\":%lld,\"jsonrpc\":\"2.0\",\"result\":\"%s\"}",
                                 (long long)f->id, id);
                e = pl__rs_send_text(c, k, s, (size_t)n);
            }
        }
    }
    if (e != PL_OK) {
        json_t *id = json_integer(f->id);
        if (id) pl__rs_reply_error(c, k, id, rpc_code(e), r.err_msg ? r.err_msg : pl_strerror(e));
        json_decref(id);
    }
    pl__rs_pump(c, k, now_ms);
    return e;
}
