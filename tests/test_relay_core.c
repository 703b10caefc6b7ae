/* SPDX-License-Identifier: Apache-2.0 */
/* The relay protocol core, driven with frames and time only (no sockets). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pairlink/hash.h"
#include "pairlink/relay_client.h"
#include "relay/relay_core.h"
#include "support/support.h"

#define T0 INT64_C(1700000000000) /* an arbitrary wall-clock start, ms */

/* relay/internal.h (not included whole: its names clash with this file's) */
int64_t pl__rs_cost_milli(const char *method, json_t *params);
#define DID_A "did:key:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH"
#define DID_B "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"

/* ---- harness --------------------------------------------------------------- */

typedef struct out {
    pl__relay_action *a;
    size_t n, cap;
} out;

static void out_clear(out *o) {
    for (size_t i = 0; i < o->n; i++) pl__relay_action_release(&o->a[i]);
    o->n = 0;
}

static void out_free(out *o) {
    out_clear(o);
    free(o->a);
    o->a = NULL;
    o->cap = 0;
}

/* A connection whose client does not read: its frames are never reported
 * written (0: every client reads). */
static uint64_t unread_conn;

/* Replace o's contents with every action the core has pending; every
 * frame counts as written, as a runtime reports it, except unread_conn's. */
static void drain(pl__relay_core *c, out *o) {
    out_clear(o);
    pl__relay_action a;
    while (pl__relay_core_pop(c, &a)) {
        if (a.kind == PL__RELAY_SEND && a.conn != unread_conn) pl__relay_core_sent(c, a.conn, a.len);
        if (o->n == o->cap) {
            o->cap = o->cap ? o->cap * 2 : 64;
            o->a = realloc(o->a, o->cap * sizeof *o->a);
            assert_non_null(o->a);
        }
        o->a[o->n++] = a;
    }
}

static size_t count(const out *o, pl__relay_action_kind kind, uint64_t conn) {
    size_t n = 0;
    for (size_t i = 0; i < o->n; i++)
        if (o->a[i].kind == kind && (kind != PL__RELAY_SEND || o->a[i].conn == conn)) n++;
    return n;
}

/* The nth frame sent to conn, parsed (caller decrefs), or NULL. */
static json_t *frame(const out *o, uint64_t conn, size_t nth) {
    for (size_t i = 0; i < o->n; i++) {
        if (o->a[i].kind != PL__RELAY_SEND || o->a[i].conn != conn) continue;
        if (nth--) continue;
        json_error_t e;
        json_t *j = json_loads(o->a[i].text, 0, &e);
        assert_non_null(j);
        return j;
    }
    return NULL;
}

/* Index of the first action of a kind (SEND: to conn), or SIZE_MAX. */
static size_t index_of(const out *o, pl__relay_action_kind kind, uint64_t conn) {
    for (size_t i = 0; i < o->n; i++)
        if (o->a[i].kind == kind && (kind != PL__RELAY_SEND || o->a[i].conn == conn)) return i;
    return SIZE_MAX;
}

__attribute__((format(printf, 5, 6))) static pl_err sendf(pl__relay_core *c, out *o, uint64_t conn,
                                                        int64_t now, const char *fmt, ...) {
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    pl_err e = pl__relay_core_receive(c, conn, buf, (size_t)n, now);
    drain(c, o);
    return e;
}

static void topic_of(char out_[65], const char *seed) {
    uint8_t h[32];
    pl_sha256(h, (const uint8_t *)seed, strlen(seed));
    for (int i = 0; i < 32; i++) sprintf(out_ + 2 * i, "%02x", h[i]);
}

/* The expected subscription id, computed here independently of the core. */
static void expected_sub_id(char out_[65], const char *topic, const char *client) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s%s", topic, client);
    topic_of(out_, buf);
}

static void assert_result(json_t *j, json_t *id_expected, const char *result_json) {
    assert_non_null(j);
    assert_true(json_equal(json_object_get(j, "id"), id_expected));
    assert_string_equal(json_string_value(json_object_get(j, "jsonrpc")), "2.0");
    json_error_t e;
    json_t *want = json_loads(result_json, JSON_DECODE_ANY, &e);
    assert_non_null(want);
    assert_true(json_equal(json_object_get(j, "result"), want));
    json_decref(want);
}

static void assert_true_result(const out *o, uint64_t conn, size_t nth, json_int_t id) {
    json_t *j = frame(o, conn, nth);
    json_t *jid = json_integer(id);
    assert_result(j, jid, "true");
    json_decref(jid);
    json_decref(j);
}

static int64_t error_code(const out *o, uint64_t conn, size_t nth) {
    json_t *j = frame(o, conn, nth);
    assert_non_null(j);
    json_t *err = json_object_get(j, "error");
    assert_non_null(err);
    assert_true(json_is_string(json_object_get(err, "message")));
    int64_t code = json_integer_value(json_object_get(err, "code"));
    json_decref(j);
    return code;
}

static pl__relay_core *new_core(const pl__relay_limits *l) {
    pl__relay_core *c;
    assert_int_equal(pl__relay_core_new(&c, l, T0), PL_OK);
    return c;
}

/* ---- publish / subscribe / push / ack ------------------------------------------- */

static void test_publish_subscribe_push_ack(void **state) {
    (void)state;
    pl__relay_core *c = new_core(NULL);
    out o = {0};
    char t[65], sid[65];
    topic_of(t, "topic one");
    assert_int_equal(pl__relay_core_open(c, 1, NULL, NULL, T0), PL_OK);
    assert_int_equal(pl__relay_core_open(c, 2, DID_A, NULL, T0), PL_OK);
    assert_int_equal(pl__relay_core_open(c, 2, NULL, NULL, T0), PL_ERR_EXISTS);

    /* A 19-digit string id is echoed verbatim; the result is the sub id. */
    assert_int_equal(sendf(c, &o, 1, T0,
                           "{\"id\":\"1712345678901234567\",\"jsonrpc\":\"2.0\","
                           "\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}",
                           t),
                     PL_OK);
    assert_int_equal(o.n, 1);
    expected_sub_id(sid, t, "conn:1");
    json_t *j = frame(&o, 1, 0);
    json_t *sid_json = json_string(sid), *id_json = json_string("1712345678901234567");
    assert_true(json_equal(json_object_get(j, "id"), id_json));
    assert_true(json_equal(json_object_get(j, "result"), sid_json));
    json_decref(j);
    json_decref(sid_json);
    json_decref(id_json);

    /* Publish: stored before it is acknowledged, pushed to the subscriber. */
    assert_int_equal(sendf(c, &o, 2, T0 + 5,
                           "{\"id\":42,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":"
                           "{\"topic\":\"%s\",\"message\":\"hello\",\"ttl\":300,\"tag\":1108,"
                           "\"prompt\":true}}",
                           t),
                     PL_OK);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT, 0), 1);
    size_t put = index_of(&o, PL__RELAY_STORE_PUT, 0);
    assert_true(put < index_of(&o, PL__RELAY_SEND, 2));
    assert_true(put < index_of(&o, PL__RELAY_SEND, 1));
    const pl__relay_record *rec = &o.a[put].rec;
    char mid[65];
    topic_of(mid, "hello");
    assert_string_equal(rec->id, mid);
    assert_string_equal(rec->topic, t);
    assert_string_equal(rec->message, "hello");
    assert_int_equal(rec->published_at_ms, T0 + 5);
    assert_int_equal(rec->expires_at_ms, T0 + 5 + 300000);
    assert_int_equal(rec->tag, 1108);
    assert_string_equal(rec->publisher, DID_A);
    assert_true_result(&o, 2, 0, 42);
    assert_int_equal(count(&o, PL__RELAY_SEND, 2), 1); /* not pushed back to the publisher */

    j = frame(&o, 1, 0);
    assert_string_equal(json_string_value(json_object_get(j, "method")), "irn_subscription");
    json_int_t push_id = json_integer_value(json_object_get(j, "id"));
    assert_true(push_id > 0 && push_id < (INT64_C(1) << 53));
    json_t *params = json_object_get(j, "params");
    assert_string_equal(json_string_value(json_object_get(params, "id")), sid);
    json_t *data = json_object_get(params, "data");
    assert_string_equal(json_string_value(json_object_get(data, "topic")), t);
    assert_string_equal(json_string_value(json_object_get(data, "message")), "hello");
    assert_int_equal(json_integer_value(json_object_get(data, "publishedAt")), T0 + 5);
    assert_int_equal(json_integer_value(json_object_get(data, "tag")), 1108);
    json_decref(j);

    /* The ack retires the push: no re-push when its timer would fire. */
    assert_int_equal(pl__relay_core_next_deadline(c), T0 + 5 + PL_RELAY_DEF_ACK_TIMEOUT_MS);
    assert_int_equal(sendf(c, &o, 1, T0 + 10, "{\"id\":%lld,\"jsonrpc\":\"2.0\",\"result\":true}",
                           (long long)push_id),
                     PL_OK);
    assert_int_equal(o.n, 0);
    assert_int_equal(pl__relay_core_next_deadline(c), T0 + 5 + 300000); /* only expiry left */
    pl__relay_core_tick(c, T0 + 60000);
    drain(c, &o);
    assert_int_equal(o.n, 0);
    pl__relay_stats st;
    pl__relay_core_stats(c, &st);
    assert_int_equal(st.published, 1);
    assert_int_equal(st.delivered, 1);
    assert_int_equal(st.acked, 1);
    assert_int_equal(st.messages, 1);
    assert_int_equal(st.conns, 2);
    out_free(&o);
    pl__relay_core_free(c);
}

static void test_unacked_push_is_repushed_then_dropped(void **state) {
    (void)state;
    pl__relay_limits l = {.ack_timeout_ms = 1000, .max_push_attempts = 3};
    pl__relay_core *c = new_core(&l);
    out o = {0};
    char t[65];
    topic_of(t, "repush");
    pl__relay_core_open(c, 1, NULL, NULL, T0);
    pl__relay_core_open(c, 2, NULL, NULL, T0);
    sendf(c, &o, 1, T0, "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", t);
    sendf(c, &o, 2, T0, "{\"id\":2,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"m\",\"ttl\":60}}", t);
    json_t *j = frame(&o, 1, 0);
    json_int_t first = json_integer_value(json_object_get(j, "id"));
    json_decref(j);
    json_int_t last = first;
    for (int attempt = 2; attempt <= 3; attempt++) {
        int64_t now = T0 + (attempt - 1) * 1000;
        pl__relay_core_tick(c, now - 1);
        drain(c, &o);
        assert_int_equal(o.n, 0); /* not yet */
        pl__relay_core_tick(c, now);
        drain(c, &o);
        assert_int_equal(count(&o, PL__RELAY_SEND, 1), 1);
        j = frame(&o, 1, 0);
        json_int_t id = json_integer_value(json_object_get(j, "id"));
        assert_true(id > last); /* a fresh id for every attempt */
        last = id;
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(json_object_get(j, "params"), "data"), "message")),
            "m");
        json_decref(j);
    }
    pl__relay_core_tick(c, T0 + 3000);
    drain(c, &o);
    assert_int_equal(o.n, 0); /* attempts exhausted */
    pl__relay_stats st;
    pl__relay_core_stats(c, &st);
    assert_int_equal(st.repushed, 2);
    assert_int_equal(st.dropped, 1);
    assert_int_equal(st.inflight, 0);
    /* A late ack for an old id is harmless. */
    assert_int_equal(sendf(c, &o, 1, T0 + 3001, "{\"id\":%lld,\"jsonrpc\":\"2.0\",\"result\":true}", (long long)first), PL_OK);
    assert_int_equal(o.n, 0);
    /* Re-subscribing after an unsubscribe replays the mailbox. */
    sendf(c, &o, 1, T0 + 3002, "{\"id\":3,\"jsonrpc\":\"2.0\",\"method\":\"irn_unsubscribe\",\"params\":{\"topic\":\"%s\",\"id\":\"x\"}}", t);
    assert_true_result(&o, 1, 0, 3);
    sendf(c, &o, 1, T0 + 3003, "{\"id\":4,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", t);
    assert_int_equal(count(&o, PL__RELAY_SEND, 1), 2);
    out_free(&o);
    pl__relay_core_free(c);
}

static void test_mailbox_late_subscriber(void **state) {
    (void)state;
    pl__relay_core *c = new_core(NULL);
    out o = {0};
    char t[65];
    topic_of(t, "mailbox");
    pl__relay_core_open(c, 1, DID_A, NULL, T0);
    for (int i = 0; i < 3; i++) {
        sendf(c, &o, 1, T0 + i, "{\"id\":%d,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"msg%d\",\"ttl\":60,\"tag\":%d}}", i + 1, t, i, i);
        assert_true_result(&o, 1, 0, i + 1);
    }
    /* Another connection of the same client (did A) does not get its own messages. */
    pl__relay_core_open(c, 2, DID_A, NULL, T0);
    sendf(c, &o, 2, T0 + 10, "{\"id\":9,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", t);
    assert_int_equal(o.n, 1);
    /* A late subscriber gets the answer first, then the mailbox, oldest first. */
    pl__relay_core_open(c, 3, DID_B, NULL, T0);
    sendf(c, &o, 3, T0 + 10, "{\"id\":10,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", t);
    assert_int_equal(count(&o, PL__RELAY_SEND, 3), 4);
    json_t *j = frame(&o, 3, 0);
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 10);
    json_decref(j);
    char sid[65];
    expected_sub_id(sid, t, DID_B);
    for (int i = 0; i < 3; i++) {
        j = frame(&o, 3, (size_t)i + 1);
        json_t *p = json_object_get(j, "params");
        char want[8];
        snprintf(want, sizeof want, "msg%d", i);
        assert_string_equal(json_string_value(json_object_get(json_object_get(p, "data"), "message")), want);
        assert_string_equal(json_string_value(json_object_get(p, "id")), sid);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "data"), "publishedAt")), T0 + i);
        json_decref(j);
    }
    /* A second subscribe on the same connection does not replay again. */
    sendf(c, &o, 3, T0 + 11, "{\"id\":11,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", t);
    assert_int_equal(o.n, 1);
    /* fetchMessages returns the mailbox without the caller's own messages. */
    sendf(c, &o, 3, T0 + 12, "{\"id\":12,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":\"%s\"}}", t);
    j = frame(&o, 3, 0);
    json_t *res = json_object_get(j, "result");
    assert_int_equal(json_array_size(json_object_get(res, "messages")), 3);
    assert_true(json_is_false(json_object_get(res, "hasMore")));
    json_decref(j);
    sendf(c, &o, 2, T0 + 12, "{\"id\":13,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":\"%s\"}}", t);
    j = frame(&o, 2, 0);
    assert_int_equal(json_array_size(json_object_get(json_object_get(j, "result"), "messages")), 0);
    json_decref(j);
    out_free(&o);
    pl__relay_core_free(c);
}

static void test_ttl_expiry(void **state) {
    (void)state;
    pl__relay_core *c = new_core(NULL);
    out o = {0};
    char t[65];
    topic_of(t, "ttl");
    pl__relay_core_open(c, 1, NULL, NULL, T0);
    assert_int_equal(pl__relay_core_next_deadline(c), INT64_MAX);
    sendf(c, &o, 1, T0, "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"short\",\"ttl\":10}}", t);
    sendf(c, &o, 1, T0, "{\"id\":2,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"long\",\"ttl\":20}}", t);
    assert_int_equal(pl__relay_core_next_deadline(c), T0 + 10000);
    pl__relay_core_tick(c, T0 + 9999);
    drain(c, &o);
    assert_int_equal(o.n, 0);
    pl__relay_core_tick(c, T0 + 10000);
    drain(c, &o);
    assert_int_equal(o.n, 1);
    assert_int_equal(o.a[0].kind, PL__RELAY_STORE_DEL);
    char mid[65];
    topic_of(mid, "short");
    assert_string_equal(o.a[0].rec.id, mid);
    assert_string_equal(o.a[0].rec.topic, t);
    assert_int_equal(pl__relay_core_next_deadline(c), T0 + 20000);
    /* A late subscriber only gets what is still alive. */
    pl__relay_core_open(c, 2, NULL, NULL, T0);
    sendf(c, &o, 2, T0 + 10001, "{\"id\":3,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", t);
    assert_int_equal(count(&o, PL__RELAY_SEND, 2), 2);
    json_t *j = frame(&o, 2, 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(j, "params"), "data"), "message")), "long");
    json_decref(j);
    /* An in-flight push of a message that expires is not re-pushed. */
    pl__relay_core_tick(c, T0 + 20000);
    drain(c, &o);
    assert_int_equal(count(&o, PL__RELAY_STORE_DEL, 0), 1);
    assert_int_equal(count(&o, PL__RELAY_SEND, 2), 0);
    pl__relay_core_tick(c, T0 + 10001 + PL_RELAY_DEF_ACK_TIMEOUT_MS);
    drain(c, &o);
    assert_int_equal(o.n, 0);
    pl__relay_stats st;
    pl__relay_core_stats(c, &st);
    assert_int_equal(st.messages, 0);
    assert_int_equal(st.message_bytes, 0);
    assert_int_equal(st.inflight, 0);
    out_free(&o);
    pl__relay_core_free(c);
}

static void test_duplicate_publish_is_stored_once(void **state) {
    (void)state;
    pl__relay_core *c = new_core(NULL);
    out o = {0};
    char t[65];
    topic_of(t, "dup");
    pl__relay_core_open(c, 1, NULL, NULL, T0);
    pl__relay_core_open(c, 2, NULL, NULL, T0);
    sendf(c, &o, 2, T0, "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", t);
    for (int i = 0; i < 3; i++) {
        sendf(c, &o, 1, T0 + i, "{\"id\":%d,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"same\",\"ttl\":60}}", 10 + i, t);
        assert_true_result(&o, 1, 0, 10 + i);
        assert_int_equal(count(&o, PL__RELAY_STORE_PUT, 0), i == 0 ? 1 : 0);
        assert_int_equal(count(&o, PL__RELAY_SEND, 2), i == 0 ? 1 : 0);
    }
    /* The same message on another topic is another message. */
    char t2[65];
    topic_of(t2, "dup2");
    sendf(c, &o, 1, T0, "{\"id\":20,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"same\",\"ttl\":60}}", t2);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT, 0), 1);
    out_free(&o);
    pl__relay_core_free(c);
}

/* ---- batch methods ----------------------------------------------------------------- */

static void test_batch_methods(void **state) {
    (void)state;
    pl__relay_core *c = new_core(NULL);
    out o = {0};
    char t[3][65];
    for (int i = 0; i < 3; i++) {
        char seed[16];
        snprintf(seed, sizeof seed, "batch%d", i);
        topic_of(t[i], seed);
    }
    pl__relay_core_open(c, 1, DID_B, NULL, T0);
    pl__relay_core_open(c, 2, DID_A, NULL, T0);
    sendf(c, &o, 1, T0, "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchSubscribe\",\"params\":{\"topics\":[\"%s\",\"%s\",\"%s\"]}}", t[0], t[1], t[2]);
    json_t *j = frame(&o, 1, 0);
    json_t *ids = json_object_get(j, "result");
    assert_int_equal(json_array_size(ids), 3);
    for (size_t i = 0; i < 3; i++) {
        char sid[65];
        expected_sub_id(sid, t[i], DID_B);
        assert_string_equal(json_string_value(json_array_get(ids, i)), sid);
    }
    json_decref(j);

    sendf(c, &o, 2, T0 + 1, "{\"id\":2,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchPublish\",\"params\":{\"messages\":["
          "{\"topic\":\"%s\",\"message\":\"b0\",\"ttl\":60,\"tag\":1},"
          "{\"topic\":\"%s\",\"message\":\"b1\",\"ttl\":60,\"tag\":2}]}}", t[0], t[1]);
    assert_true_result(&o, 2, 0, 2);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT, 0), 2);
    assert_int_equal(count(&o, PL__RELAY_SEND, 1), 2);

    /* A batch with one bad item publishes nothing. */
    sendf(c, &o, 2, T0 + 2, "{\"id\":3,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchPublish\",\"params\":{\"messages\":["
          "{\"topic\":\"%s\",\"message\":\"ok\",\"ttl\":60},{\"topic\":\"%s\",\"message\":\"bad\",\"ttl\":1}]}}", t[2], t[2]);
    assert_int_equal(error_code(&o, 2, 0), PL_RELAY_ERR_HANDLER);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT, 0), 0);

    sendf(c, &o, 1, T0 + 3, "{\"id\":4,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchFetchMessages\",\"params\":{\"topics\":[\"%s\",\"%s\",\"%s\"]}}", t[0], t[1], t[2]);
    j = frame(&o, 1, 0);
    json_t *msgs = json_object_get(json_object_get(j, "result"), "messages");
    assert_int_equal(json_array_size(msgs), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "message")), "b0");
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "topic")), t[0]);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(msgs, 1), "tag")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(msgs, 1), "publishedAt")), T0 + 1);
    json_decref(j);

    sendf(c, &o, 1, T0 + 4, "{\"id\":5,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchUnsubscribe\",\"params\":{\"subscriptions\":["
          "{\"topic\":\"%s\",\"id\":\"a\"},{\"topic\":\"%s\",\"id\":\"b\"}]}}", t[0], t[1]);
    assert_true_result(&o, 1, 0, 5);
    sendf(c, &o, 2, T0 + 5, "{\"id\":6,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"after\",\"ttl\":60}}", t[0]);
    assert_int_equal(count(&o, PL__RELAY_SEND, 1), 0); /* unsubscribed */
    sendf(c, &o, 2, T0 + 5, "{\"id\":7,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"still\",\"ttl\":60}}", t[2]);
    assert_int_equal(count(&o, PL__RELAY_SEND, 1), 1); /* still subscribed */
    pl__relay_stats st;
    pl__relay_core_stats(c, &st);
    assert_int_equal(st.subscriptions, 1);
    out_free(&o);
    pl__relay_core_free(c);
}

/* ---- wc_proposeSession / wc_approveSession ------------------------------------------- */

static json_t *push_data(const out *o, uint64_t conn, size_t nth) {
    json_t *j = frame(o, conn, nth);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "method")), "irn_subscription");
    json_t *d = json_incref(json_object_get(json_object_get(j, "params"), "data"));
    json_decref(j);
    return d;
}

static void test_propose_and_approve_session(void **state) {
    (void)state;
    pl__relay_core *c = new_core(NULL);
    out o = {0};
    char pairing[65], session[65], other[65];
    topic_of(pairing, "pairing");
    topic_of(session, "session");
    topic_of(other, "other");
    const uint64_t dapp = 1, wallet = 2;
    pl__relay_core_open(c, dapp, DID_A, NULL, T0);
    pl__relay_core_open(c, wallet, DID_B, NULL, T0);
    sendf(c, &o, wallet, T0, "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", pairing);

    /* Propose: published on the pairing topic with tag 1100, ttl from params. */
    assert_int_equal(sendf(c, &o, dapp, T0 + 1,
                           "{\"id\":\"1712345678901234567\",\"jsonrpc\":\"2.0\",\"method\":\"wc_proposeSession\","
                           "\"params\":{\"pairingTopic\":\"%s\",\"sessionProposal\":\"PROPOSAL\",\"ttl\":300,"
                           "\"correlationId\":1712345678901234,\"attestation\":\"att\"}}", pairing),
                     PL_OK);
    json_t *j = frame(&o, dapp, 0);
    assert_true(json_is_true(json_object_get(j, "result")));
    assert_string_equal(json_string_value(json_object_get(j, "id")), "1712345678901234567");
    json_decref(j);
    json_t *d = push_data(&o, wallet, 0);
    assert_string_equal(json_string_value(json_object_get(d, "message")), "PROPOSAL");
    assert_int_equal(json_integer_value(json_object_get(d, "tag")), 1100);
    assert_string_equal(json_string_value(json_object_get(d, "attestation")), "att");
    json_decref(d);
    assert_int_equal(o.a[index_of(&o, PL__RELAY_STORE_PUT, 0)].rec.expires_at_ms, T0 + 1 + 300000);

    /* The caller is now subscribed to the pairing topic. */
    pl__relay_stats st;
    pl__relay_core_stats(c, &st);
    assert_int_equal(st.subscriptions, 2);

    /* Approve with a missing field: an error and no effect at all. */
    sendf(c, &o, wallet, T0 + 2, "{\"id\":5,\"jsonrpc\":\"2.0\",\"method\":\"wc_approveSession\",\"params\":"
          "{\"pairingTopic\":\"%s\",\"sessionProposalResponse\":\"R\",\"sessionSettlementRequest\":\"S\",\"ttl\":300}}", pairing);
    assert_int_equal(error_code(&o, wallet, 0), PL_RELAY_ERR_INVALID_PARAMS);
    assert_int_equal(o.n, 1);

    /* Approve: response on the pairing topic (1101) to the dapp, settle on
     * the session topic (1102), the wallet subscribed to the session topic. */
    sendf(c, &o, wallet, T0 + 3, "{\"id\":6,\"jsonrpc\":\"2.0\",\"method\":\"wc_approveSession\",\"params\":"
          "{\"sessionTopic\":\"%s\",\"pairingTopic\":\"%s\",\"sessionProposalResponse\":\"RESPONSE\","
          "\"sessionSettlementRequest\":\"SETTLE\",\"ttl\":300,\"correlationId\":1}}", session, pairing);
    assert_true_result(&o, wallet, 0, 6);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT, 0), 2);
    assert_int_equal(count(&o, PL__RELAY_SEND, dapp), 1);
    d = push_data(&o, dapp, 0);
    assert_string_equal(json_string_value(json_object_get(d, "message")), "RESPONSE");
    assert_string_equal(json_string_value(json_object_get(d, "topic")), pairing);
    assert_int_equal(json_integer_value(json_object_get(d, "tag")), 1101);
    json_decref(d);

    /* The dapp subscribes to the session topic and finds the settle request. */
    sendf(c, &o, dapp, T0 + 4, "{\"id\":7,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", session);
    d = push_data(&o, dapp, 1);
    assert_string_equal(json_string_value(json_object_get(d, "message")), "SETTLE");
    assert_int_equal(json_integer_value(json_object_get(d, "tag")), 1102);
    json_decref(d);
    /* The wallet hears the dapp on the session topic without subscribing. */
    sendf(c, &o, dapp, T0 + 5, "{\"id\":8,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"settled\",\"ttl\":300,\"tag\":1103}}", session);
    assert_int_equal(count(&o, PL__RELAY_SEND, wallet), 1);

    /* Bad params are refused before anything happens. */
    sendf(c, &o, dapp, T0 + 6, "{\"id\":9,\"jsonrpc\":\"2.0\",\"method\":\"wc_proposeSession\",\"params\":{\"pairingTopic\":\"%s\",\"sessionProposal\":\"P\",\"ttl\":5}}", other);
    assert_int_equal(error_code(&o, dapp, 0), PL_RELAY_ERR_HANDLER);
    sendf(c, &o, dapp, T0 + 6, "{\"id\":10,\"jsonrpc\":\"2.0\",\"method\":\"wc_proposeSession\",\"params\":{\"pairingTopic\":\"nothex\",\"sessionProposal\":\"P\"}}");
    assert_int_equal(error_code(&o, dapp, 0), PL_RELAY_ERR_INVALID_PARAMS);
    pl__relay_core_stats(c, &st);
    assert_int_equal(st.subscriptions, 4);
    out_free(&o);
    pl__relay_core_free(c);
}

/* ---- limits ------------------------------------------------------------------------- */

static void test_limits_and_error_codes(void **state) {
    (void)state;
    pl__relay_limits l = {.max_message_bytes = 64, .max_frame_bytes = 2048, .min_ttl_s = 30,
                          .max_ttl_s = 3600, .max_topics_per_conn = 3, .max_mailbox_per_topic = 2};
    /* Room for 64 + 1 + 1 + 34 message bytes, each with its overhead. */
    l.max_total_bytes = pl__relay_message_cost(&l, 64, 0) + 2 * pl__relay_message_cost(&l, 1, 0) +
                        pl__relay_message_cost(&l, 34, 0);
    pl__relay_core *c = new_core(&l);
    out o = {0};
    char t[5][65];
    for (int i = 0; i < 5; i++) {
        char seed[16];
        snprintf(seed, sizeof seed, "lim%d", i);
        topic_of(t[i], seed);
    }
    pl__relay_core_open(c, 1, NULL, NULL, T0);
    char big[80];
    memset(big, 'x', 65);
    big[65] = '\0';
    /* message size */
    assert_int_equal(sendf(c, &o, 1, T0, "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"%s\",\"ttl\":60}}", t[0], big), PL_ERR_TOO_LARGE);
    assert_int_equal(error_code(&o, 1, 0), PL_RELAY_ERR_INVALID_REQUEST);
    big[64] = '\0';
    assert_int_equal(sendf(c, &o, 1, T0, "{\"id\":2,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"%s\",\"ttl\":60}}", t[0], big), PL_OK);
    /* ttl bounds, both ends inclusive */
    assert_int_equal(sendf(c, &o, 1, T0, "{\"id\":3,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"a\",\"ttl\":29}}", t[1]), PL_ERR_BAD_TTL);
    assert_int_equal(error_code(&o, 1, 0), PL_RELAY_ERR_HANDLER);
    assert_int_equal(sendf(c, &o, 1, T0, "{\"id\":4,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"a\",\"ttl\":3601}}", t[1]), PL_ERR_BAD_TTL);
    assert_int_equal(sendf(c, &o, 1, T0, "{\"id\":5,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"a\",\"ttl\":30}}", t[1]), PL_OK);
    assert_int_equal(sendf(c, &o, 1, T0, "{\"id\":6,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"b\",\"ttl\":3600}}", t[1]), PL_OK);
    assert_int_equal(sendf(c, &o, 1, T0, "{\"id\":7,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"a\",\"ttl\":\"60\"}}", t[1]), PL_ERR_INVALID_ARG);
    assert_int_equal(error_code(&o, 1, 0), PL_RELAY_ERR_INVALID_PARAMS);
    /* mailbox per topic: 2 stored on t[1]; a third is refused, a duplicate is fine */
    assert_int_equal(sendf(c, &o, 1, T0, "{\"id\":8,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"c\",\"ttl\":60}}", t[1]), PL_ERR_MAILBOX_FULL);
    assert_int_equal(error_code(&o, 1, 0), PL_RELAY_ERR_HANDLER);
    assert_int_equal(sendf(c, &o, 1, T0, "{\"id\":9,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"b\",\"ttl\":60}}", t[1]), PL_OK);
    /* total bytes: 64 + 1 + 1 stored; 35 more would pass the bound, 34 reach it */
    memset(big, 'y', 35);
    big[35] = '\0';
    assert_int_equal(sendf(c, &o, 1, T0, "{\"id\":10,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"%s\",\"ttl\":60}}", t[2], big), PL_ERR_MAILBOX_FULL);
    big[34] = '\0';
    assert_int_equal(sendf(c, &o, 1, T0, "{\"id\":11,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"%s\",\"ttl\":60}}", t[2], big), PL_OK);
    /* topics per connection, batch subscribe is all or nothing */
    assert_int_equal(sendf(c, &o, 1, T0, "{\"id\":12,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchSubscribe\",\"params\":{\"topics\":[\"%s\",\"%s\",\"%s\",\"%s\"]}}", t[0], t[1], t[2], t[3]), PL_ERR_MAILBOX_FULL);
    assert_int_equal(error_code(&o, 1, 0), PL_RELAY_ERR_HANDLER);
    pl__relay_stats st;
    pl__relay_core_stats(c, &st);
    assert_int_equal(st.subscriptions, 0);
    assert_int_equal(sendf(c, &o, 1, T0, "{\"id\":13,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchSubscribe\",\"params\":{\"topics\":[\"%s\",\"%s\",\"%s\",\"%s\"]}}", t[0], t[1], t[1], t[2]), PL_OK);
    assert_int_equal(sendf(c, &o, 1, T0, "{\"id\":14,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", t[3]), PL_ERR_MAILBOX_FULL);
    assert_int_equal(sendf(c, &o, 1, T0, "{\"id\":15,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", t[2]), PL_OK);
    /* frame size: answered with -32600 and a null id */
    char *huge = malloc(4096);
    memset(huge, ' ', 4095);
    huge[4095] = '\0';
    assert_int_equal(pl__relay_core_receive(c, 1, huge, 4095, T0), PL_ERR_TOO_LARGE);
    drain(c, &o);
    assert_int_equal(error_code(&o, 1, 0), PL_RELAY_ERR_INVALID_REQUEST);
    free(huge);
    /* batch size bound */
    char *batch = malloc(600 * 70 + 200);
    size_t n = (size_t)sprintf(batch, "{\"id\":16,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchFetchMessages\",\"params\":{\"topics\":[");
    for (int i = 0; i < 501; i++) n += (size_t)sprintf(batch + n, "%s\"%s\"", i ? "," : "", t[0]);
    n += (size_t)sprintf(batch + n, "]}}");
    pl__relay_limits l2 = {0};
    pl__relay_core *c2 = new_core(&l2);
    pl__relay_core_open(c2, 1, NULL, NULL, T0);
    assert_int_equal(pl__relay_core_receive(c2, 1, batch, n, T0), PL_ERR_INVALID_ARG);
    drain(c2, &o);
    assert_int_equal(error_code(&o, 1, 0), PL_RELAY_ERR_INVALID_PARAMS);
    free(batch);
    pl__relay_core_free(c2);
    /* inconsistent limits are refused */
    pl__relay_limits bad = {.min_ttl_s = 100, .max_ttl_s = 10};
    pl__relay_core *c3 = (pl__relay_core *)&bad;
    assert_int_equal(pl__relay_core_new(&c3, &bad, T0), PL_ERR_INVALID_ARG);
    assert_null(c3);
    out_free(&o);
    pl__relay_core_free(c);
}

static void test_rate_limit(void **state) {
    (void)state;
    pl__relay_limits l = {.rate_per_s = 2, .rate_burst = 3};
    pl__relay_core *c = new_core(&l);
    out o = {0};
    char t[65];
    topic_of(t, "rate");
    pl__relay_core_open(c, 1, NULL, NULL, T0);
    pl__relay_core_open(c, 2, NULL, NULL, T0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(sendf(c, &o, 1, T0, "{\"id\":%d,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":\"%s\"}}", i, t), PL_OK);
    assert_int_equal(sendf(c, &o, 1, T0, "{\"id\":3,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":\"%s\"}}", t), PL_ERR_RATE_LIMITED);
    assert_int_equal(error_code(&o, 1, 0), PL_RELAY_ERR_RATE);
    /* Other connections have their own bucket; acks are not counted. */
    assert_int_equal(sendf(c, &o, 2, T0, "{\"id\":3,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":\"%s\"}}", t), PL_OK);
    assert_int_equal(sendf(c, &o, 1, T0, "{\"id\":99,\"jsonrpc\":\"2.0\",\"result\":true}"), PL_OK);
    /* 2 per second: one token after 500 ms, not before. */
    assert_int_equal(sendf(c, &o, 1, T0 + 499, "{\"id\":4,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":\"%s\"}}", t), PL_ERR_RATE_LIMITED);
    assert_int_equal(sendf(c, &o, 1, T0 + 500, "{\"id\":5,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":\"%s\"}}", t), PL_OK);
    /* Refill is capped at the burst. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(sendf(c, &o, 1, T0 + 100000, "{\"id\":%d,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":\"%s\"}}", 10 + i, t), PL_OK);
    assert_int_equal(sendf(c, &o, 1, T0 + 100000, "{\"id\":20,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":\"%s\"}}", t), PL_ERR_RATE_LIMITED);
    pl__relay_core_free(c);
    /* Unlimited means unlimited. */
    pl__relay_limits u = {.rate_unlimited = true, .rate_burst = 1, .rate_per_s = 1};
    c = new_core(&u);
    pl__relay_core_open(c, 1, NULL, NULL, T0);
    for (int i = 0; i < 50; i++)
        assert_int_equal(sendf(c, &o, 1, T0, "{\"id\":%d,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":\"%s\"}}", i, t), PL_OK);
    out_free(&o);
    pl__relay_core_free(c);
}

/* A batch costs 1 + (n - 1) x its item cost (PL_RELAY_COST_*): with a
 * bucket of 3, a batch of 10 topics (2.35) passes and leaves too little for
 * a single request; a batch of 500 messages costs more than a whole bucket:
 * it needs a full one. An identity with an allowance of its own gets its
 * own rate and bucket; others keep the relay's. */
/* A batch of n topics to subscribe to (t[i % 10] varied by i), malloc'd. */
static char *batch_subscribe_frame(int id, int n, size_t *len) {
    size_t cap = 128 + (size_t)n * 70;
    char *fr = malloc(cap);
    assert_non_null(fr);
    size_t k = (size_t)snprintf(fr, cap,
                                "{\"id\":%d,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchSubscribe\","
                                "\"params\":{\"topics\":[",
                                id);
    for (int i = 0; i < n; i++) {
        char t[65], seed[16];
        snprintf(seed, sizeof seed, "b%d", i);
        topic_of(t, seed);
        k += (size_t)snprintf(fr + k, cap - k, "%s\"%s\"", i ? "," : "", t);
    }
    k += (size_t)snprintf(fr + k, cap - k, "]}}");
    *len = k;
    return fr;
}

static void test_rate_limit_batches_and_allowance(void **state) {
    (void)state;
    pl__relay_allowance al[1] = {{.rate_per_s = 1000, .burst = 4000}};
    snprintf(al[0].did, sizeof al[0].did, "did:key:z6MkAllowance");
    /* 2 requests/s, bucket 3; entries 20/s, bucket 30 */
    pl__relay_limits l = {.rate_per_s = 2, .rate_burst = 3, .allowances = al, .nallowances = 1};
    pl__relay_core *c = new_core(&l);
    out o = {0};
    char t0[65];
    topic_of(t0, "b0");
    size_t n, nbig;
    char *fr = batch_subscribe_frame(1, 10, &n);      /* 1 request, 2 entries */
    char *big = batch_subscribe_frame(1, 200, &nbig); /* 1 request, 40 entries */
    pl__relay_core_open(c, 1, NULL, NULL, T0);
    assert_int_equal(pl__relay_core_receive(c, 1, fr, n, T0), PL_OK);
    drain(c, &o);
    /* the request bucket binds: two more single requests, then a refusal */
    for (int i = 0; i < 2; i++)
        assert_int_equal(sendf(c, &o, 1, T0, "{\"id\":2,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":\"%s\"}}", t0), PL_OK);
    assert_int_equal(sendf(c, &o, 1, T0, "{\"id\":2,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":\"%s\"}}", t0), PL_ERR_RATE_LIMITED);
    /* the refusal says what the connection may and when this fits: one
     * request missing at 2 per second, 500 ms */
    json_t *rj = frame(&o, 1, 0);
    json_t *data = json_object_get(json_object_get(rj, "error"), "data");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(rj, "error"), "code")), PL_RELAY_ERR_RATE);
    assert_int_equal(json_integer_value(json_object_get(data, "perSecond")), 2);
    assert_int_equal(json_integer_value(json_object_get(data, "burst")), 3);
    assert_int_equal(json_integer_value(json_object_get(data, "entriesPerSecond")), 20);
    assert_int_equal(json_integer_value(json_object_get(data, "entryBurst")), 30);
    assert_int_equal(json_integer_value(json_object_get(data, "retryAfterMs")), 500);
    json_decref(rj);
    assert_int_equal(sendf(c, &o, 1, T0 + 499, "{\"id\":3,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":\"%s\"}}", t0), PL_ERR_RATE_LIMITED);
    assert_int_equal(sendf(c, &o, 1, T0 + 500, "{\"id\":4,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":\"%s\"}}", t0), PL_OK);
    /* the entry bucket binds: a batch above the whole bucket (40 > 30
     * entries) is taken when the bucket is full and empties it; the next
     * batch waits for its 2 entries (100 ms at 20/s) though requests remain */
    pl__relay_core_open(c, 4, NULL, NULL, T0);
    assert_int_equal(pl__relay_core_receive(c, 4, big, nbig, T0), PL_OK);
    drain(c, &o);
    assert_int_equal(pl__relay_core_receive(c, 4, fr, n, T0), PL_ERR_RATE_LIMITED);
    drain(c, &o);
    rj = frame(&o, 4, 0);
    data = json_object_get(json_object_get(rj, "error"), "data");
    assert_int_equal(json_integer_value(json_object_get(data, "retryAfterMs")), 100);
    json_decref(rj);
    assert_int_equal(pl__relay_core_receive(c, 4, fr, n, T0 + 99), PL_ERR_RATE_LIMITED);
    drain(c, &o);
    assert_int_equal(pl__relay_core_receive(c, 4, fr, n, T0 + 100), PL_OK);
    drain(c, &o);
    /* the identity with an allowance: 10 such batches at once */
    pl__relay_core_open(c, 2, "did:key:z6MkAllowance", NULL, T0);
    pl__relay_core_open(c, 3, "did:key:z6MkOther", NULL, T0);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(pl__relay_core_receive(c, 2, big, nbig, T0), PL_OK);
        drain(c, &o);
    }
    assert_int_equal(pl__relay_core_receive(c, 3, big, nbig, T0), PL_OK);
    assert_int_equal(pl__relay_core_receive(c, 3, big, nbig, T0), PL_ERR_RATE_LIMITED);
    drain(c, &o);
    /* the cost model itself */
    json_t *p = json_pack("{s:[i,i,i,i]}", "messages", 1, 2, 3, 4);
    assert_int_equal(pl__rs_cost_milli("irn_batchPublish", p), 4 * PL_RELAY_COST_PUBLISH_ITEM_MILLI);
    assert_int_equal(pl__rs_cost_milli("irn_publish", p), 0);
    json_decref(p);
    p = json_pack("{s:[s]}", "subscriptions", "x");
    assert_int_equal(pl__rs_cost_milli("irn_batchUnsubscribe", p), PL_RELAY_COST_TOPIC_ITEM_MILLI);
    assert_int_equal(pl__rs_cost_milli("irn_batchSubscribe", NULL), 0);
    json_decref(p);
    free(fr);
    free(big);
    out_free(&o);
    pl__relay_core_free(c);
}

/* ---- malformed frames ------------------------------------------------------------------- */

static void test_malformed_frames(void **state) {
    (void)state;
    static const struct {
        const char *frame;
        pl_err err;
        int code; /* 0: no answer at all */
        const char *id_json;
    } cases[] = {
        {"", PL_ERR_JSON, PL_RELAY_ERR_PARSE, "null"},
        {"garbage", PL_ERR_JSON, PL_RELAY_ERR_PARSE, "null"},
        {"{\"id\":1,", PL_ERR_JSON, PL_RELAY_ERR_PARSE, "null"},
        {"{\"id\":1,\"id\":2,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\"}", PL_ERR_JSON, PL_RELAY_ERR_PARSE, "null"},
        {"\"just a string\"", PL_ERR_RPC_INVALID, PL_RELAY_ERR_INVALID_REQUEST, "null"},
        {"[{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\"}]", PL_ERR_RPC_INVALID, PL_RELAY_ERR_INVALID_REQUEST, "null"},
        {"{\"id\":1,\"method\":\"irn_subscribe\"}", PL_ERR_RPC_INVALID, PL_RELAY_ERR_INVALID_REQUEST, "1"},
        {"{\"id\":1,\"jsonrpc\":2,\"method\":\"irn_subscribe\"}", PL_ERR_RPC_INVALID, PL_RELAY_ERR_INVALID_REQUEST, "1"},
        {"{\"id\":{},\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\"}", PL_ERR_RPC_INVALID, PL_RELAY_ERR_INVALID_REQUEST, "null"},
        {"{\"id\":1.5,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\"}", PL_ERR_RPC_INVALID, PL_RELAY_ERR_INVALID_REQUEST, "null"},
        {"{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":7}", PL_ERR_RPC_INVALID, PL_RELAY_ERR_INVALID_REQUEST, "1"},
        {"{\"id\":1,\"jsonrpc\":\"2.0\"}", PL_ERR_RPC_INVALID, PL_RELAY_ERR_INVALID_REQUEST, "1"},
        {"{\"id\":\"x\",\"jsonrpc\":\"2.0\",\"result\":true}", PL_ERR_RPC_INVALID, PL_RELAY_ERR_INVALID_REQUEST, "\"x\""},
        {"{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":true,\"error\":{}}", PL_ERR_RPC_INVALID, PL_RELAY_ERR_INVALID_REQUEST, "1"},
        {"{\"id\":2,\"jsonrpc\":\"2.0\",\"method\":\"irn_nope\",\"params\":{}}", PL_ERR_NOT_FOUND, PL_RELAY_ERR_METHOD_NOT_FOUND, "2"},
        {"{\"id\":\"1712345678901234567\",\"jsonrpc\":\"2.0\",\"method\":\"irn_batchReceive\"}", PL_ERR_NOT_FOUND, PL_RELAY_ERR_METHOD_NOT_FOUND, "\"1712345678901234567\""},
        {"{\"id\":9223372036854775807,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\"}", PL_ERR_INVALID_ARG, PL_RELAY_ERR_INVALID_PARAMS, "9223372036854775807"},
        {"{\"id\":3,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":[]}", PL_ERR_INVALID_ARG, PL_RELAY_ERR_INVALID_PARAMS, "3"},
        {"{\"id\":3,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789\"}}", PL_ERR_INVALID_ARG, PL_RELAY_ERR_INVALID_PARAMS, "3"},
        {"{\"id\":3,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"message\":\"\",\"ttl\":60}}", PL_ERR_INVALID_ARG, PL_RELAY_ERR_INVALID_PARAMS, "3"},
        {"{\"id\":3,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"message\":\"m\",\"ttl\":60,\"tag\":-1}}", PL_ERR_INVALID_ARG, PL_RELAY_ERR_INVALID_PARAMS, "3"},
        {"{\"id\":3,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"message\":\"m\"}}", PL_ERR_INVALID_ARG, PL_RELAY_ERR_INVALID_PARAMS, "3"},
        {"{\"id\":4,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchSubscribe\",\"params\":{\"topics\":\"x\"}}", PL_ERR_INVALID_ARG, PL_RELAY_ERR_INVALID_PARAMS, "4"},
        {"{\"id\":4,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchPublish\",\"params\":{\"messages\":[1]}}", PL_ERR_INVALID_ARG, PL_RELAY_ERR_INVALID_PARAMS, "4"},
        {"{\"id\":4,\"jsonrpc\":\"2.0\",\"method\":\"irn_unsubscribe\",\"params\":{\"topic\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"id\":5}}", PL_ERR_INVALID_ARG, PL_RELAY_ERR_INVALID_PARAMS, "4"},
        /* notifications and stray responses get no answer */
        {"{\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{}}", PL_OK, 0, NULL},
        {"{\"id\":123456,\"jsonrpc\":\"2.0\",\"result\":true}", PL_OK, 0, NULL},
        {"{\"id\":123457,\"jsonrpc\":\"2.0\",\"error\":{\"code\":1,\"message\":\"no\"}}", PL_OK, 0, NULL},
    };
    pl__relay_core *c = new_core(NULL);
    out o = {0};
    pl__relay_core_open(c, 1, NULL, NULL, T0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pl_err e = pl__relay_core_receive(c, 1, cases[i].frame, strlen(cases[i].frame), T0);
        drain(c, &o);
        if (e != cases[i].err) fail_msg("case %zu (%s): %s", i, cases[i].frame, pl_errname(e));
        if (!cases[i].code) {
            assert_int_equal(o.n, 0);
            continue;
        }
        assert_int_equal(o.n, 1);
        assert_int_equal(error_code(&o, 1, 0), cases[i].code);
        json_t *j = frame(&o, 1, 0);
        json_error_t je;
        json_t *want = json_loads(cases[i].id_json, JSON_DECODE_ANY, &je);
        if (!json_equal(json_object_get(j, "id"), want)) fail_msg("case %zu: id %s", i, o.a[0].text);
        json_decref(want);
        json_decref(j);
    }
    /* Embedded NUL and invalid UTF-8 are parse errors, not crashes. */
    static const char nul[] = "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_\0\"}";
    assert_int_equal(pl__relay_core_receive(c, 1, nul, sizeof nul - 1, T0), PL_ERR_JSON);
    static const char bad_utf8[] = "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"\xff\xfe\"}";
    assert_int_equal(pl__relay_core_receive(c, 1, bad_utf8, sizeof bad_utf8 - 1, T0), PL_ERR_JSON);
    drain(c, &o);
    assert_int_equal(o.n, 2);
    /* Deep nesting is refused by the parser, not by the stack; deeper
     * still, by the count of values before any parsing. */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    pl__relay_limits big = {.max_frame_bytes = 4 * depth, .max_message_bytes = 1024};
    pl__relay_core *c2 = new_core(&big);
    pl__relay_core_open(c2, 1, NULL, NULL, T0);
    assert_int_equal(pl__relay_core_receive(c2, 1, deep, 2 * depth, T0), PL_ERR_TOO_LARGE);
    size_t d2 = PL_RELAY_JSON_VALUES_MAX / 2;
    memmove(deep + d2, deep + depth, d2);
    assert_int_equal(pl__relay_core_receive(c2, 1, deep, 2 * d2, T0), PL_ERR_JSON);
    free(deep);
    /* A frame of many small values costs the parser far more than its
     * size: refused with -32600 before parsing. Commas inside strings do
     * not count. */
    size_t nv = PL_RELAY_JSON_VALUES_MAX;
    char *dense = malloc(3 * nv + 64);
    size_t dl = 0;
    dense[dl++] = '[';
    for (size_t i = 0; i < nv; i++) {
        memcpy(dense + dl, i ? ",{}" : "{}", i ? 3 : 2);
        dl += i ? 3 : 2;
    }
    dense[dl++] = ']';
    drain(c2, &o);
    assert_int_equal(pl__relay_core_receive(c2, 1, dense, dl, T0), PL_ERR_TOO_LARGE);
    drain(c2, &o);
    assert_int_equal(error_code(&o, 1, 0), PL_RELAY_ERR_INVALID_REQUEST);
    dl = (size_t)sprintf(dense, "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":\"");
    memset(dense + dl, ',', 2 * nv);
    dl += 2 * nv;
    memcpy(dense + dl, "\"}", 2);
    dl += 2;
    assert_int_equal(pl__relay_core_receive(c2, 1, dense, dl, T0), PL_ERR_NOT_FOUND);
    drain(c2, &o);
    free(dense);
    pl__relay_core_free(c2);
    /* Frames for a connection that is not open are refused quietly. */
    assert_int_equal(pl__relay_core_receive(c, 77, "{}", 2, T0), PL_ERR_DISCONNECTED);
    drain(c, &o);
    assert_int_equal(o.n, 0);
    pl__relay_core_close(c, 77); /* unknown: no-op */
    out_free(&o);
    pl__relay_core_free(c);
}

/* Seeded random frames: mutations of valid requests never crash, never
 * leak, and every request that carries an id is answered. */
static void test_random_frames(void **state) {
    (void)state;
    static const char *const seeds[] = {
        "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}}",
        "{\"id\":\"1712345678901234567\",\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"message\":\"abc\",\"ttl\":60,\"tag\":1}}",
        "{\"id\":2,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchPublish\",\"params\":{\"messages\":[{\"topic\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"message\":\"q\",\"ttl\":60}]}}",
        "{\"id\":3,\"jsonrpc\":\"2.0\",\"method\":\"wc_approveSession\",\"params\":{\"sessionTopic\":\"1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"pairingTopic\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"sessionProposalResponse\":\"r\",\"sessionSettlementRequest\":\"s\",\"ttl\":300}}",
        "{\"id\":4,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchUnsubscribe\",\"params\":{\"subscriptions\":[{\"topic\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"id\":\"x\"}]}}",
    };
    uint64_t rng = pl_test_seed();
    pl__relay_limits l = {.rate_unlimited = true, .max_mailbox_per_topic = 50};
    pl__relay_core *c = new_core(&l);
    out o = {0};
    pl__relay_core_open(c, 1, NULL, NULL, T0);
    pl__relay_core_open(c, 2, DID_A, NULL, T0);
    char buf[1024];
    for (int round = 0; round < 20000; round++) {
        const char *s = seeds[pl_test_rand(&rng) % (sizeof seeds / sizeof seeds[0])];
        size_t n = strlen(s);
        memcpy(buf, s, n);
        int edits = 1 + (int)(pl_test_rand(&rng) % 4);
        for (int k = 0; k < edits && n > 0; k++) {
            size_t at = pl_test_rand(&rng) % n;
            switch (pl_test_rand(&rng) % 4) {
            case 0: buf[at] = (char)(pl_test_rand(&rng) & 0xff); break;
            case 1: n = at; break; /* truncate */
            case 2: buf[at] = "{}[]\":,0a"[pl_test_rand(&rng) % 9]; break;
            default:
                if (n + 1 < sizeof buf) {
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = '"';
                    n++;
                }
            }
        }
        uint64_t conn = 1 + (pl_test_rand(&rng) & 1);
        int64_t now = T0 + round * 10;
        pl_err e = pl__relay_core_receive(c, conn, buf, n, now);
        drain(c, &o);
        if (e != PL_OK && e != PL_ERR_RATE_LIMITED) {
            /* Every failure is answered with exactly one error frame. */
            size_t errors = 0;
            for (size_t i = 0; i < o.n; i++)
                if (o.a[i].kind == PL__RELAY_SEND && o.a[i].conn == conn && strstr(o.a[i].text, "\"error\""))
                    errors++;
            assert_int_equal(errors, 1);
        }
        if (round % 1000 == 0) {
            pl__relay_core_tick(c, now + 60000);
            drain(c, &o);
        }
    }
    out_free(&o);
    pl__relay_core_free(c);
}

/* ---- restore, windows, close ------------------------------------------------------------ */

static void test_restore(void **state) {
    (void)state;
    pl__relay_core *c = new_core(NULL);
    out o = {0};
    char t[65];
    topic_of(t, "restore");
    pl__relay_record r;
    memset(&r, 0, sizeof r);
    memcpy(r.topic, t, 65);
    strcpy(r.id, "not the real id"); /* recomputed by the core */
    r.message = "restored";
    r.message_len = 8;
    r.published_at_ms = T0 - 1000;
    r.expires_at_ms = T0 + 5000;
    r.tag = 1108;
    strcpy(r.publisher, DID_A);
    assert_int_equal(pl__relay_core_restore(c, &r, T0), PL_OK);
    assert_int_equal(pl__relay_core_restore(c, &r, T0), PL_ERR_EXISTS);
    r.message = "old";
    r.message_len = 3;
    r.expires_at_ms = T0;
    assert_int_equal(pl__relay_core_restore(c, &r, T0), PL_ERR_BAD_TTL);
    r.expires_at_ms = T0 + 1;
    r.topic[3] = 'X';
    assert_int_equal(pl__relay_core_restore(c, &r, T0), PL_ERR_INVALID_ARG);
    drain(c, &o);
    assert_int_equal(o.n, 0); /* restoring writes nothing back */
    assert_int_equal(pl__relay_core_next_deadline(c), T0 + 5000);
    /* The publisher (did A) does not get it back after the restart; others do. */
    pl__relay_core_open(c, 1, DID_A, NULL, T0);
    pl__relay_core_open(c, 2, DID_B, NULL, T0);
    sendf(c, &o, 1, T0, "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", t);
    assert_int_equal(o.n, 1);
    sendf(c, &o, 2, T0, "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", t);
    assert_int_equal(o.n, 2);
    json_t *d = push_data(&o, 2, 1);
    assert_string_equal(json_string_value(json_object_get(d, "message")), "restored");
    assert_int_equal(json_integer_value(json_object_get(d, "publishedAt")), T0 - 1000);
    json_decref(d);
    pl__relay_core_tick(c, T0 + 5000);
    drain(c, &o);
    assert_int_equal(count(&o, PL__RELAY_STORE_DEL, 0), 1);
    out_free(&o);
    pl__relay_core_free(c);
}

static void test_inflight_window_and_backlog(void **state) {
    (void)state;
    pl__relay_limits l = {.max_inflight_per_conn = 2};
    pl__relay_core *c = new_core(&l);
    out o = {0};
    char t[65];
    topic_of(t, "window");
    pl__relay_core_open(c, 1, NULL, NULL, T0);
    pl__relay_core_open(c, 2, NULL, NULL, T0);
    sendf(c, &o, 1, T0, "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", t);
    json_int_t ids[8];
    size_t npush = 0;
    for (int i = 0; i < 5; i++) {
        sendf(c, &o, 2, T0, "{\"id\":%d,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"w%d\",\"ttl\":60}}", 10 + i, t, i);
        for (size_t k = 0; k < count(&o, PL__RELAY_SEND, 1); k++) {
            json_t *j = frame(&o, 1, k);
            ids[npush++] = json_integer_value(json_object_get(j, "id"));
            json_decref(j);
        }
    }
    assert_int_equal(npush, 2); /* window of 2; the other 3 wait in the mailbox, none dropped */
    pl__relay_stats st;
    pl__relay_core_stats(c, &st);
    assert_int_equal(st.inflight, 2);
    assert_int_equal(st.backlog, 1); /* one subscription with messages owed */
    assert_int_equal(st.dropped, 0);
    /* Each ack lets the next one out, in order. */
    for (int i = 0; i < 3; i++) {
        sendf(c, &o, 1, T0 + 1, "{\"id\":%lld,\"jsonrpc\":\"2.0\",\"result\":true}", (long long)ids[i]);
        assert_int_equal(count(&o, PL__RELAY_SEND, 1), 1);
        json_t *d = push_data(&o, 1, 0);
        char want[8];
        snprintf(want, sizeof want, "w%d", i + 2);
        assert_string_equal(json_string_value(json_object_get(d, "message")), want);
        json_decref(d);
        json_t *j = frame(&o, 1, 0);
        ids[npush++] = json_integer_value(json_object_get(j, "id"));
        json_decref(j);
    }
    pl__relay_core_stats(c, &st);
    assert_int_equal(st.inflight, 2);
    assert_int_equal(st.backlog, 0);
    /* Closing the connection with pushes in flight frees them. */
    pl__relay_core_close(c, 1);
    pl__relay_core_stats(c, &st);
    assert_int_equal(st.inflight, 0);
    assert_int_equal(st.backlog, 0);
    assert_int_equal(st.conns, 1);
    assert_int_equal(pl__relay_core_next_deadline(c), T0 + 60000);
    pl__relay_core_tick(c, T0 + 60000);
    drain(c, &o);
    assert_int_equal(count(&o, PL__RELAY_STORE_DEL, 0), 5);
    pl__relay_core_stats(c, &st);
    assert_int_equal(st.topics, 0);
    out_free(&o);
    pl__relay_core_free(c);
}


/* ---- flow control, paging, eviction, budgets ------------------------------------------ */

/* A message of n bytes whose text says which it is (nth). */
static char *payload(size_t n, int nth) {
    char *m = malloc(n + 1);
    assert_non_null(m);
    memset(m, 'a' + nth % 26, n);
    snprintf(m, n + 1, "%04d", nth);
    m[4] = 'x';
    m[n] = '\0';
    return m;
}

/* A frame built in a heap buffer (messages larger than sendf's). */
static pl_err sendbig(pl__relay_core *c, out *o, uint64_t conn, int64_t now, const char *fmt,
                      const char *a1, const char *a2) {
    size_t cap = strlen(fmt) + strlen(a1) + (a2 ? strlen(a2) : 0) + 64;
    char *buf = malloc(cap);
    assert_non_null(buf);
    int n = snprintf(buf, cap, fmt, a1, a2);
    assert_true(n > 0 && (size_t)n < cap);
    pl_err e = pl__relay_core_receive(c, conn, buf, (size_t)n, now);
    free(buf);
    drain(c, o);
    return e;
}

/* Publish count messages of size bytes on t from conn (ids 1000+i). */
static void fill_topic(pl__relay_core *c, out *o, uint64_t conn, const char *t, int count,
                       size_t size) {
    for (int i = 0; i < count; i++) {
        char *m = payload(size, i);
        char fmt[256];
        snprintf(fmt, sizeof fmt,
                 "{\"id\":%d,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":"
                 "{\"topic\":\"%%s\",\"message\":\"%%s\",\"ttl\":600}}",
                 1000 + i);
        assert_int_equal(sendbig(c, o, conn, T0, fmt, t, m), PL_OK);
        free(m);
    }
}

/* The index a message of payload() carries. */
static int nth_of(const char *m) {
    return atoi(m);
}

/* A topic holding far more than one connection's push budget (issue 11,
 * hole 1): the subscriber gets it in pages as fast as it acknowledges,
 * never more than the budget (plus one push) unacknowledged, all of it, in
 * order, once. */
static void test_backlog_paged_by_acks(void **state) {
    (void)state;
    const size_t size = 20000, budget = 64 << 10;
    pl__relay_limits l = {.max_message_bytes = 32 << 10, .max_inflight_bytes_per_conn = budget};
    pl__relay_core *c = new_core(&l);
    out o = {0};
    char t[65];
    topic_of(t, "paged");
    pl__relay_core_open(c, 1, NULL, NULL, T0);
    pl__relay_core_open(c, 2, NULL, NULL, T0);
    fill_topic(c, &o, 2, t, 30, size);
    sendf(c, &o, 1, T0, "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", t);
    json_t *answer = frame(&o, 1, 0); /* the answer comes before the pushes */
    assert_true(json_is_string(json_object_get(answer, "result")));
    json_decref(answer);
    int next = 0;
    size_t rounds = 0;
    while (next < 30) {
        size_t n = count(&o, PL__RELAY_SEND, 1), bytes = 0;
        assert_true(n > 0);
        json_int_t ids[64];
        size_t nid = 0;
        for (size_t i = 0; i < o.n; i++) {
            if (o.a[i].kind != PL__RELAY_SEND || o.a[i].conn != 1) continue;
            json_t *j = json_loads(o.a[i].text, 0, NULL);
            if (!json_object_get(j, "method")) { /* the subscribe answer */
                json_decref(j);
                continue;
            }
            bytes += o.a[i].len;
            json_t *d = json_object_get(json_object_get(j, "params"), "data");
            assert_int_equal(nth_of(json_string_value(json_object_get(d, "message"))), next);
            next++;
            ids[nid++] = json_integer_value(json_object_get(j, "id"));
            json_decref(j);
        }
        assert_true(bytes <= budget + size + 1024);
        pl__relay_stats st;
        pl__relay_core_stats(c, &st);
        assert_true(st.inflight == nid);
        /* Acknowledging all of them brings the next page. */
        out acks = {0};
        for (size_t i = 0; i < nid; i++) {
            char buf[96];
            int len = snprintf(buf, sizeof buf, "{\"id\":%lld,\"jsonrpc\":\"2.0\",\"result\":true}",
                               (long long)ids[i]);
            assert_int_equal(pl__relay_core_receive(c, 1, buf, (size_t)len, T0 + 1), PL_OK);
        }
        drain(c, &o);
        out_free(&acks);
        rounds++;
    }
    assert_true(rounds >= 10); /* 30 x 20 KB through a 64 KiB window */
    assert_int_equal(count(&o, PL__RELAY_SEND, 1), 0);
    pl__relay_stats st;
    pl__relay_core_stats(c, &st);
    assert_int_equal(st.delivered, 30);
    assert_int_equal(st.backlog, 0);
    out_free(&o);
    pl__relay_core_free(c);
}

/* Fetch answers (hole 1 and 2): pages capped in bytes as well as count,
 * built from the messages' sizes; the same request continues where the
 * last page stopped until hasMore is false; then it starts over. */
static void test_fetch_pages(void **state) {
    (void)state;
    const size_t size = 20000, page = 64 << 10;
    pl__relay_limits l = {.max_message_bytes = 32 << 10, .fetch_page_bytes = page};
    pl__relay_core *c = new_core(&l);
    out o = {0};
    char t[65], u[65];
    topic_of(t, "fetch-a");
    topic_of(u, "fetch-b");
    pl__relay_core_open(c, 1, NULL, NULL, T0);
    pl__relay_core_open(c, 2, NULL, NULL, T0);
    fill_topic(c, &o, 2, t, 12, size);
    fill_topic(c, &o, 2, u, 5, size);
    /* The publisher's own messages are not fetched back. */
    sendf(c, &o, 2, T0, "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":\"%s\"}}", t);
    json_t *j = frame(&o, 2, 0);
    assert_int_equal(json_array_size(json_object_get(json_object_get(j, "result"), "messages")), 0);
    json_decref(j);
    for (int pass = 0; pass < 2; pass++) {
        int seen = 0, pages = 0;
        bool more = true;
        while (more) {
            sendf(c, &o, 1, T0, "{\"id\":2,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchFetchMessages\",\"params\":{\"topics\":[\"%s\",\"%s\"]}}", t, u);
            assert_int_equal(o.n, 1);
            assert_true(o.a[0].len <= page + size + 1024);
            j = frame(&o, 1, 0);
            json_t *res = json_object_get(j, "result");
            json_t *msgs = json_object_get(res, "messages");
            assert_true(json_array_size(msgs) >= 1); /* progress */
            for (size_t i = 0; i < json_array_size(msgs); i++, seen++) {
                json_t *m = json_array_get(msgs, i);
                const char *topic = json_string_value(json_object_get(m, "topic"));
                assert_string_equal(topic, seen < 12 ? t : u);
                assert_int_equal(nth_of(json_string_value(json_object_get(m, "message"))),
                                 seen < 12 ? seen : seen - 12);
            }
            more = json_is_true(json_object_get(res, "hasMore"));
            json_decref(j);
            pages++;
        }
        assert_int_equal(seen, 17);
        assert_true(pages >= 5);
    }
    /* Another request starts from the beginning of its topics. */
    sendf(c, &o, 1, T0, "{\"id\":3,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchFetchMessages\",\"params\":{\"topics\":[\"%s\",\"%s\"]}}", t, u);
    sendf(c, &o, 1, T0, "{\"id\":4,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":\"%s\"}}", u);
    j = frame(&o, 1, 0);
    json_t *first = json_array_get(json_object_get(json_object_get(j, "result"), "messages"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "topic")), u);
    assert_int_equal(nth_of(json_string_value(json_object_get(first, "message"))), 0);
    json_decref(j);
    out_free(&o);
    pl__relay_core_free(c);
}

/* Publish "m<i>" on t from conn; returns the core's answer. */
static pl_err pub_n(pl__relay_core *c, out *o, uint64_t conn, const char *t, int i) {
    return sendf(c, o, conn, T0,
                 "{\"id\":%d,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":"
                 "\"%s\",\"message\":\"m%d\",\"ttl\":30}}",
                 5000 + i, t, i);
}

/* Acknowledge every push in o for conn. */
static void ack_all(pl__relay_core *c, out *o, uint64_t conn) {
    json_int_t ids[64];
    size_t n = 0;
    for (size_t i = 0; i < o->n && n < 64; i++) {
        if (o->a[i].kind != PL__RELAY_SEND || o->a[i].conn != conn) continue;
        json_t *j = json_loads(o->a[i].text, 0, NULL);
        if (json_object_get(j, "method")) ids[n++] = json_integer_value(json_object_get(j, "id"));
        json_decref(j);
    }
    for (size_t i = 0; i < n; i++) {
        char buf[96];
        int len = snprintf(buf, sizeof buf, "{\"id\":%lld,\"jsonrpc\":\"2.0\",\"result\":true}",
                           (long long)ids[i]);
        assert_int_equal(pl__relay_core_receive(c, conn, buf, (size_t)len, T0), PL_OK);
    }
}

/* A topic at its limit keeps flowing (hole 9): two peers ping-pong through
 * a topic of 4 messages; acknowledged messages make room. A subscriber
 * that does not acknowledge holds them, and the publish is then refused
 * with an answer, never silently. Messages nobody received are kept. */
static void test_full_topic_evicts_acknowledged(void **state) {
    (void)state;
    pl__relay_limits l = {.max_mailbox_per_topic = 4};
    pl__relay_core *c = new_core(&l);
    out o = {0}, o2 = {0};
    char t[65], offline[65];
    topic_of(t, "ping-pong");
    topic_of(offline, "offline peer");
    pl__relay_core_open(c, 1, NULL, NULL, T0);
    pl__relay_core_open(c, 2, NULL, NULL, T0);
    pl__relay_core_open(c, 3, NULL, NULL, T0);
    sendf(c, &o, 1, T0, "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", t);
    sendf(c, &o, 2, T0, "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", t);
    size_t dels = 0;
    for (int i = 0; i < 40; i++) {
        uint64_t from = 1 + (uint64_t)(i % 2), to = 2 - (uint64_t)(i % 2);
        assert_int_equal(pub_n(c, &o, from, t, i), PL_OK);
        dels += count(&o, PL__RELAY_STORE_DEL, 0);
        assert_int_equal(count(&o, PL__RELAY_SEND, to), 1);
        ack_all(c, &o, to);
        drain(c, &o2);
    }
    pl__relay_stats st;
    pl__relay_core_stats(c, &st);
    assert_int_equal(st.evicted, 36);
    assert_int_equal(dels, 36);
    assert_int_equal(st.messages, 4);
    /* A third subscriber that never acknowledges: what it has not
     * acknowledged stays, so the topic fills and the next publish gets an
     * error answer. */
    sendf(c, &o, 3, T0, "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", t);
    assert_int_equal(count(&o, PL__RELAY_SEND, 3), 5); /* the answer, the 4 stored */
    pl_err last = PL_OK;
    for (int i = 40; i < 60 && last == PL_OK; i++) {
        last = pub_n(c, &o, 1, t, i);
        ack_all(c, &o, 2);
        drain(c, &o2);
    }
    assert_int_equal(last, PL_ERR_MAILBOX_FULL);
    assert_int_equal(error_code(&o, 1, 0), PL_RELAY_ERR_HANDLER);
    /* Nobody listening, nothing received: an offline peer's mailbox is kept
     * whole and the fifth message refused. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(pub_n(c, &o, 1, offline, i), PL_OK);
    assert_int_equal(pub_n(c, &o, 1, offline, 4), PL_ERR_MAILBOX_FULL);
    out_free(&o);
    out_free(&o2);
    pl__relay_core_free(c);
}

/* Storage counts messages with their overhead, and their number; topics
 * and publishers have caps too (hole 3). Quotas charge the address and the
 * did:key; expiry gives everything back. */
static void test_quotas_and_totals(void **state) {
    (void)state;
    pl__relay_limits l = {.quota_messages = 3, .quota_topics = 5, .max_messages = 8,
                          .max_topics = 9};
    pl__relay_core *c = new_core(&l);
    out o = {0};
    char t[12][65];
    for (int i = 0; i < 12; i++) {
        char seed[16];
        snprintf(seed, sizeof seed, "quota%d", i);
        topic_of(t[i], seed);
    }
    pl__relay_core_open(c, 1, NULL, "192.0.2.1", T0);
    pl__relay_core_open(c, 2, NULL, "192.0.2.1", T0); /* same address */
    pl__relay_core_open(c, 3, DID_A, "192.0.2.2", T0);
    pl__relay_core_open(c, 4, DID_A, "192.0.2.3", T0); /* same did */
    pl__relay_core_open(c, 5, NULL, "192.0.2.4", T0);
    for (int i = 0; i < 3; i++) assert_int_equal(pub_n(c, &o, 1 + (uint64_t)(i % 2), t[i], i), PL_OK);
    assert_int_equal(pub_n(c, &o, 2, t[3], 3), PL_ERR_MAILBOX_FULL);
    json_t *j = frame(&o, 2, 0);
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")), "quota"));
    json_decref(j);
    for (int i = 3; i < 6; i++) assert_int_equal(pub_n(c, &o, 3 + (uint64_t)(i % 2), t[i], i), PL_OK);
    assert_int_equal(pub_n(c, &o, 4, t[6], 6), PL_ERR_MAILBOX_FULL);
    /* topics of a publisher, subscriptions included */
    assert_int_equal(sendf(c, &o, 5, T0, "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchSubscribe\",\"params\":{\"topics\":[\"%s\",\"%s\",\"%s\",\"%s\",\"%s\",\"%s\"]}}", t[6], t[7], t[8], t[9], t[10], t[11]), PL_ERR_MAILBOX_FULL);
    /* the relay's topic count: 6 held, 9 at most */
    assert_int_equal(sendf(c, &o, 5, T0, "{\"id\":2,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchSubscribe\",\"params\":{\"topics\":[\"%s\",\"%s\",\"%s\",\"%s\"]}}", t[6], t[7], t[8], t[9]), PL_ERR_MAILBOX_FULL);
    assert_int_equal(sendf(c, &o, 5, T0, "{\"id\":3,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchSubscribe\",\"params\":{\"topics\":[\"%s\",\"%s\",\"%s\"]}}", t[6], t[7], t[8]), PL_OK);
    /* the relay's message count: 6 stored, 8 at most */
    assert_int_equal(pub_n(c, &o, 5, t[0], 10), PL_OK);
    assert_int_equal(pub_n(c, &o, 5, t[1], 11), PL_OK);
    assert_int_equal(pub_n(c, &o, 5, t[2], 12), PL_ERR_MAILBOX_FULL);
    j = frame(&o, 5, 0);
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")), "storage is full"));
    json_decref(j);
    /* Expiry gives the quota back. */
    pl__relay_core_tick(c, T0 + 31000);
    drain(c, &o);
    assert_int_equal(pub_n(c, &o, 1, t[3], 13), PL_OK);
    for (uint64_t k = 1; k <= 5; k++) pl__relay_core_close(c, k);
    pl__relay_core_tick(c, T0 + 62000);
    drain(c, &o);
    pl__relay_stats st;
    pl__relay_core_stats(c, &st);
    assert_int_equal(st.memory, 0);
    assert_int_equal(st.topics, 0);
    out_free(&o);
    pl__relay_core_free(c);
}

/* Sockets: per address, in total, and within the memory budget. */
static void test_admission(void **state) {
    (void)state;
    pl__relay_limits l = {.max_conns = 4, .max_conns_per_addr = 2, .conn_cost_bytes = 1000};
    pl__relay_core *c = new_core(&l);
    assert_int_equal(pl__relay_core_admit(c, "192.0.2.1"), PL_OK);
    assert_int_equal(pl__relay_core_admit(c, "192.0.2.1"), PL_OK);
    assert_int_equal(pl__relay_core_admit(c, "192.0.2.1"), PL_ERR_RELAY_BUSY);
    assert_int_equal(pl__relay_core_admit(c, "192.0.2.2"), PL_OK);
    assert_int_equal(pl__relay_core_admit(c, "192.0.2.3"), PL_OK);
    assert_int_equal(pl__relay_core_admit(c, "192.0.2.4"), PL_ERR_RELAY_BUSY);
    pl__relay_stats st;
    pl__relay_core_stats(c, &st);
    assert_int_equal(st.sockets, 4);
    assert_int_equal(st.refused, 2);
    pl__relay_core_unadmit(c, "192.0.2.1");
    pl__relay_core_unadmit(c, "198.51.100.9"); /* never admitted: no-op */
    assert_int_equal(pl__relay_core_admit(c, "192.0.2.1"), PL_OK);
    const char *addrs[] = {"192.0.2.1", "192.0.2.1", "192.0.2.2", "192.0.2.3"};
    for (int i = 0; i < 4; i++) pl__relay_core_unadmit(c, addrs[i]);
    pl__relay_core_stats(c, &st);
    assert_int_equal(st.sockets, 0);
    assert_int_equal(st.memory, 0);
    pl__relay_core_free(c);
    /* The memory budget counts sockets too. */
    pl__relay_limits m = {.conn_cost_bytes = 40000, .max_memory_bytes = 100000};
    c = new_core(&m);
    assert_int_equal(pl__relay_core_admit(c, "192.0.2.1"), PL_OK);
    assert_int_equal(pl__relay_core_admit(c, "192.0.2.2"), PL_OK);
    assert_int_equal(pl__relay_core_admit(c, "192.0.2.3"), PL_ERR_RELAY_BUSY);
    pl__relay_core_free(c);
}

/* A client that does not read (hole 5): its queue is bounded (close 1008,
 * nothing more sent to it), its pushes are not re-sent while it has not
 * read them, and over the memory budget the biggest reader-less queue is
 * closed while requests get 3001. */
static void test_never_reading_client(void **state) {
    (void)state;
    pl__relay_limits l = {.max_queue_bytes_per_conn = 8192, .ack_timeout_ms = 1000};
    pl__relay_core *c = new_core(&l);
    out o = {0};
    char t[65];
    topic_of(t, "unread");
    pl__relay_core_open(c, 1, NULL, NULL, T0);
    pl__relay_core_open(c, 2, NULL, NULL, T0);
    unread_conn = 1;
    sendf(c, &o, 1, T0, "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", t);
    pub_n(c, &o, 2, t, 0);
    assert_int_equal(count(&o, PL__RELAY_SEND, 1), 1);
    /* Due, but not read: not sent again. */
    pl__relay_core_tick(c, T0 + 1000);
    drain(c, &o);
    assert_int_equal(count(&o, PL__RELAY_SEND, 1), 0);
    pl__relay_stats st;
    pl__relay_core_stats(c, &st);
    assert_int_equal(st.repushed, 0);
    assert_int_equal(st.inflight, 1);
    /* Requests whose answers pile up: closed at the bound, then silence. */
    size_t closes = 0, sends = 0;
    for (int i = 0; i < 200 && !closes; i++) {
        sendf(c, &o, 1, T0 + 1001, "{\"id\":%d,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":\"%s\"}}", 10 + i, t);
        sends += count(&o, PL__RELAY_SEND, 1);
        closes += count(&o, PL__RELAY_CLOSE, 0);
    }
    assert_int_equal(closes, 1);
    assert_int_equal(o.a[o.n - 1].close_code, 1008);
    sendf(c, &o, 1, T0 + 1002, "{\"id\":9,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":\"%s\"}}", t);
    assert_int_equal(o.n, 0);
    pl__relay_core_close(c, 1);
    unread_conn = 0;
    pl__relay_core_free(c);

    /* The memory budget: a reader-less queue grows until the budget is
     * reached; new work is refused with 3001 and the queue is closed. */
    pl__relay_limits m = {.max_memory_bytes = 512 << 10, .max_total_bytes = 128 << 10,
                          .max_queue_bytes_per_conn = 1 << 20, .max_inflight_bytes_per_conn = 1 << 20};
    c = new_core(&m);
    pl__relay_core_open(c, 1, NULL, NULL, T0);
    pl__relay_core_open(c, 2, NULL, NULL, T0);
    unread_conn = 1;
    fill_topic(c, &o, 2, t, 5, 20000);
    pl_err e = PL_OK;
    int64_t now = T0;
    for (int i = 0; i < 100 && e == PL_OK; i++) {
        now += 10;
        e = sendf(c, &o, 1, now, "{\"id\":%d,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":\"%s\"}}", 10 + i, t);
    }
    assert_int_equal(e, PL_ERR_RELAY_BUSY);
    assert_int_equal(error_code(&o, 1, count(&o, PL__RELAY_SEND, 1) - 1), PL_RELAY_ERR_RATE);
    /* ... and the biggest unread queue, the refused client's, goes. */
    assert_int_equal(count(&o, PL__RELAY_CLOSE, 0), 1);
    assert_int_equal(o.a[o.n - 1].conn, 1);
    assert_int_equal(o.a[o.n - 1].close_code, 1008);
    /* Other clients are still answered. */
    assert_int_equal(sendf(c, &o, 2, now, "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", t), PL_OK);
    pl__relay_core_stats(c, &st);
    assert_int_equal(st.slow_closed, 1);
    pl__relay_core_close(c, 1);
    unread_conn = 0;
    assert_int_equal(sendf(c, &o, 2, now + 300, "{\"id\":2,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":\"%s\"}}", t), PL_OK);
    out_free(&o);
    pl__relay_core_free(c);
}

static void test_subscription_id_formula(void **state) {
    (void)state;
    /* sha256(utf8(topic_hex + did:key)), lowercase hex, computed with the
     * library's sha256 on the concatenation. */
    char t[65], want[65], got[65];
    topic_of(t, "formula");
    expected_sub_id(want, t, DID_A);
    pl__relay_subscription_id(got, t, DID_A);
    assert_string_equal(got, want);
    for (int i = 0; i < 64; i++) assert_true((got[i] >= '0' && got[i] <= '9') || (got[i] >= 'a' && got[i] <= 'f'));
}

int main(void) {
    if (pl_init() != PL_OK) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publish_subscribe_push_ack),
        cmocka_unit_test(test_unacked_push_is_repushed_then_dropped),
        cmocka_unit_test(test_mailbox_late_subscriber),
        cmocka_unit_test(test_ttl_expiry),
        cmocka_unit_test(test_duplicate_publish_is_stored_once),
        cmocka_unit_test(test_batch_methods),
        cmocka_unit_test(test_propose_and_approve_session),
        cmocka_unit_test(test_limits_and_error_codes),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_rate_limit_batches_and_allowance),
        cmocka_unit_test(test_malformed_frames),
        cmocka_unit_test(test_random_frames),
        cmocka_unit_test(test_restore),
        cmocka_unit_test(test_inflight_window_and_backlog),
        cmocka_unit_test(test_subscription_id_formula),
        cmocka_unit_test(test_backlog_paged_by_acks),
        cmocka_unit_test(test_fetch_pages),
        cmocka_unit_test(test_full_topic_evicts_acknowledged),
        cmocka_unit_test(test_quotas_and_totals),
        cmocka_unit_test(test_admission),
        cmocka_unit_test(test_never_reading_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
