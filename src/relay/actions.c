/* SPDX-License-Identifier: Apache-2.0 */
/* The relay core's outputs: the action queue (frames, closes, store
 * operations, in order) and the JSON-RPC replies; the ids it computes; the
 * send-queue bytes of every connection, counted from the SEND that queues
 * a frame until the runtime says it was written (pl__relay_core_sent). */
#include "relay/internal.h"

#include "core/internal.h"
#include "pairlink/hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pl__rs_hex(char *out, const uint8_t *in, size_t n) {
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[in[i] >> 4];
        out[2 * i + 1] = d[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void pl__relay_subscription_id(char out[PL_RELAY_ID_HEX + 1], const char *topic_hex,
                               const char *client) {
    size_t tl = strlen(topic_hex), cl = strlen(client);
    char buf[PL_RELAY_TOPIC_HEX + PL_DID_KEY_SIZE + 1];
    PL_REQUIRE(tl + cl < sizeof buf);
    memcpy(buf, topic_hex, tl);
    memcpy(buf + tl, client, cl);
    uint8_t h[PL_SHA256_BYTES];
    pl_sha256(h, (const uint8_t *)buf, tl + cl);
    pl__rs_hex(out, h, sizeof h);
}

void pl__rs_message_id(char out[PL_RELAY_ID_HEX + 1], const char *message, size_t len) {
    uint8_t h[PL_SHA256_BYTES];
    pl_sha256(h, (const uint8_t *)message, len);
    pl__rs_hex(out, h, sizeof h);
}

bool pl__rs_json_needs_escape(const char *s, size_t len) {
    /* Eight bytes at a time: a byte below 0x20, '"' or '\\' sets its high
     * bit in `hit` (the classic has-zero-byte test). */
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
        uint64_t hit = ((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b);
        if (hit & high) return true;
    }
    for (; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == '"' || ch == '\\') return true;
    }
    return false;
}

size_t pl__rs_json_string_len(const char *s, size_t len) {
    /* Most messages (base64) have nothing to escape: a branch-free pass
     * the compiler vectorises says so first. */
    if (!pl__rs_json_needs_escape(s, len)) return len + 2;
    size_t n = 2;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            n += 2;
        else if (ch == '\b' || ch == '\f' || ch == '\n' || ch == '\r' || ch == '\t')
            n += 2;
        else if (ch < 0x20)
            n += 6; /* \u00XX */
        else
            n += 1;
    }
    return n;
}

char *pl__rs_json_escape(char *out, const char *s, size_t len) {
    static const char hex[] = "0123456789ABCDEF";
    *out++ = '"';
    size_t i = 0;
    while (i < len) {
        /* Runs that need no escape (base64 messages are one run). */
        size_t j = i;
        while (j < len) {
            unsigned char ch = (unsigned char)s[j];
            if (ch < 0x20 || ch == '"' || ch == '\\') break;
            j++;
        }
        memcpy(out, s + i, j - i);
        out += j - i;
        if (j == len) break;
        unsigned char ch = (unsigned char)s[j];
        *out++ = '\\';
        switch (ch) {
        case '"':
            *out++ = '"';
            break;
        case '\\':
            *out++ = '\\';
            break;
        case '\b':
            *out++ = 'b';
            break;
        case '\f':
            *out++ = 'f';
            break;
        case '\n':
            *out++ = 'n';
            break;
        case '\r':
            *out++ = 'r';
            break;
        case '\t':
            *out++ = 't';
            break;
        default:
            *out++ = 'u';
            *out++ = '0';
            *out++ = '0';
            *out++ = hex[ch >> 4];
            *out++ = hex[ch & 15];
        }
        i = j + 1;
    }
    *out++ = '"';
    return out;
}

bool pl__rs_is_topic_hex(const char *s, size_t n) {
    if (n != PL_RELAY_TOPIC_HEX) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return false;
    }
    return true;
}

void pl__relay_limits_default(pl__relay_limits *l) {
    PL_REQUIRE(l);
    memset(l, 0, sizeof *l);
    l->max_frame_bytes = PL_RELAY_DEF_MAX_FRAME;
    l->max_message_bytes = PL_RELAY_DEF_MAX_MESSAGE;
    l->min_ttl_s = PL_RELAY_DEF_MIN_TTL;
    l->max_ttl_s = PL_RELAY_DEF_MAX_TTL;
    l->max_topics_per_conn = PL_RELAY_DEF_TOPICS_PER_CONN;
    l->max_mailbox_per_topic = PL_RELAY_DEF_MAILBOX_PER_TOPIC;
    l->max_total_bytes = PL_RELAY_DEF_TOTAL_BYTES;
    l->max_messages = PL_RELAY_DEF_MESSAGES;
    l->max_topics = PL_RELAY_DEF_TOPICS;
    l->max_memory_bytes = PL_RELAY_DEF_MEMORY;
    l->quota_messages = PL_RELAY_DEF_QUOTA_MESSAGES;
    l->quota_bytes = PL_RELAY_DEF_QUOTA_BYTES;
    l->quota_topics = PL_RELAY_DEF_QUOTA_TOPICS;
    l->max_conns = PL_RELAY_DEF_CONNS;
    l->max_conns_per_addr = PL_RELAY_DEF_CONNS_PER_ADDR;
    l->rate_per_s = PL_RELAY_DEF_RATE_PER_S;
    l->rate_burst = PL_RELAY_DEF_RATE_BURST;
    l->rate_unlimited = false;
    l->ack_timeout_ms = PL_RELAY_DEF_ACK_TIMEOUT_MS;
    l->max_push_attempts = PL_RELAY_DEF_PUSH_ATTEMPTS;
    l->max_inflight_per_conn = PL_RELAY_DEF_INFLIGHT;
    l->max_inflight_bytes_per_conn = PL_RELAY_DEF_INFLIGHT_BYTES;
    l->max_queue_bytes_per_conn = PL_RELAY_DEF_QUEUE_BYTES;
    l->fetch_page_bytes = PL_RELAY_DEF_FETCH_PAGE_BYTES;
    l->conn_cost_bytes = PL_RELAY_DEF_CONN_COST;
    l->cluster_linger_ms = PL_RELAY_DEF_CLUSTER_LINGER_MS;
}

char *pl__rs_text_alloc(size_t n) {
    char *m = malloc(PL_RELAY_TEXT_HEADROOM + n + 1);
    return m ? m + PL_RELAY_TEXT_HEADROOM : NULL;
}

void pl__rs_text_free(char *text) {
    if (text) free(text - PL_RELAY_TEXT_HEADROOM);
}

void *pl__relay_action_take_text(pl__relay_action *a) {
    PL_REQUIRE(a && a->text);
    void *m = a->text - PL_RELAY_TEXT_HEADROOM;
    a->text = NULL;
    return m;
}

void pl__relay_action_release(pl__relay_action *a) {
    if (!a) return;
    pl__rs_text_free(a->text);
    free(a->rec.message);
    free(a->rec.attestation);
    free(a->ids);
    a->text = NULL;
    a->rec.message = NULL;
    a->rec.attestation = NULL;
    a->ids = NULL;
}

/* ---- the action queue ------------------------------------------------------ */

pl_err pl__rs_queue(pl__relay_core *c, const pl__relay_action *a) {
    action_q *q = &c->q;
    if (q->head > 0 && q->head == q->len) q->head = q->len = 0;
    if (q->len == q->cap) {
        if (q->head > 0) { /* compact before growing */
            memmove(q->a, q->a + q->head, (q->len - q->head) * sizeof *q->a);
            q->len -= q->head;
            q->head = 0;
        }
        if (q->len == q->cap) {
            size_t nc = q->cap ? q->cap * 2 : 64;
            pl__relay_action *na = realloc(q->a, nc * sizeof *na);
            if (!na) return PL_ERR_NOMEM;
            q->a = na;
            q->cap = nc;
        }
    }
    q->a[q->len++] = *a;
    return PL_OK;
}

bool pl__relay_core_pop(pl__relay_core *c, pl__relay_action *out) {
    PL_REQUIRE(c && out);
    memset(out, 0, sizeof *out);
    if (c->q.head == c->q.len) return false;
    *out = c->q.a[c->q.head++];
    if (c->q.head == c->q.len) c->q.head = c->q.len = 0;
    return true;
}

void pl__rs_close_conn(pl__relay_core *c, conn *k, int code, const char *reason) {
    if (k->closing) return;
    pl__relay_action a = {.kind = PL__RELAY_CLOSE, .conn = k->id, .close_code = code};
    snprintf(a.reason, sizeof a.reason, "%s", reason);
    /* Without memory for the action the connection stays open; nothing
     * more is sent to it either way. */
    (void)pl__rs_queue(c, &a);
    k->closing = true;
}

pl_err pl__rs_send_text(pl__relay_core *c, conn *k, char *text, size_t n) {
    if (k->closing) {
        pl__rs_text_free(text);
        return PL_OK;
    }
    text[n] = '\0';
    pl__relay_action a = {.kind = PL__RELAY_SEND, .conn = k->id, .text = text, .len = n};
    pl_err e = pl__rs_queue(c, &a);
    if (e != PL_OK) {
        pl__rs_text_free(text);
        return e;
    }
    size_t cost = n + PL__RS_FRAME_COST;
    k->unsent += cost;
    c->mem.queued += cost;
    pl__rs_charge(c, cost);
    /* A client that does not read: its queue is bounded, and the frames
     * already queued are dropped with the connection. */
    if (k->unsent > c->lim.max_queue_bytes_per_conn) {
        c->st.slow_closed++;
        pl__rs_close_conn(c, k, 1008, "send queue full");
    }
    return PL_OK;
}

pl_err pl__rs_send_json(pl__relay_core *c, conn *k, json_t *j, size_t *len) {
    if (len) *len = 0;
    if (!j) return PL_ERR_NOMEM;
    if (k->closing) {
        json_decref(j);
        return PL_OK;
    }
    char *d = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    size_t n = d ? strlen(d) : 0;
    char *s = d ? pl__rs_text_alloc(n) : NULL;
    if (!s) {
        free(d);
        return PL_ERR_NOMEM;
    }
    memcpy(s, d, n);
    free(d);
    pl_err e = pl__rs_send_text(c, k, s, n);
    if (e == PL_OK && len) *len = n;
    return e;
}

pl_err pl__rs_reply_true(pl__relay_core *c, conn *k, int64_t id) {
    char *s = pl__rs_text_alloc(64);
    if (!s) return PL_ERR_NOMEM;
    int n = snprintf(s, 65, "{\"id\":%lld,\"jsonrpc\":\"2.0\",\"result\":true}", (long long)id);
    return pl__rs_send_text(c, k, s, (size_t)n);
}

static json_t *id_or_null(json_t *id) {
    return id ? json_incref(id) : json_null();
}

pl_err pl__rs_reply_result(pl__relay_core *c, conn *k, json_t *id, json_t *result) {
    json_t *j = json_object();
    if (!j || !result) {
        json_decref(j);
        json_decref(result);
        return PL_ERR_NOMEM;
    }
    if (pl__rs_cluster_defer(c, k, id, result)) {
        json_decref(j);
        return PL_OK;
    }
    json_object_set_new(j, "id", id_or_null(id));
    json_object_set_new(j, "jsonrpc", json_string("2.0"));
    json_object_set_new(j, "result", result);
    return pl__rs_send_json(c, k, j, NULL);
}

pl_err pl__rs_reply_error(pl__relay_core *c, conn *k, json_t *id, int code, const char *message) {
    pl__rs_cluster_request(c); /* what the request stored is not waited for */
    json_t *j = json_object();
    json_t *e = json_object();
    if (!j || !e) {
        json_decref(j);
        json_decref(e);
        return PL_ERR_NOMEM;
    }
    json_object_set_new(e, "code", json_integer(code));
    json_object_set_new(e, "message", json_string(message));
    json_object_set_new(j, "id", id_or_null(id));
    json_object_set_new(j, "jsonrpc", json_string("2.0"));
    json_object_set_new(j, "error", e);
    pl__rs_count_error(c, code);
    return pl__rs_send_json(c, k, j, NULL);
}
