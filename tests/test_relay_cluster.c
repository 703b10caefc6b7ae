/* SPDX-License-Identifier: Apache-2.0 */
/* The relay core in cluster mode (relay/cluster.c) against a fake shared
 * store: this file plays the backend, answering puts, loads and watches
 * by hand, with frames and time only. */
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
#include "relay/relay_core.h"
#include "support/support.h"

#define T0 INT64_C(1700000000000)

typedef struct out {
    pl__relay_action *a;
    size_t n, cap;
} out;

static void out_clear(out *o) {
    for (size_t i = 0; i < o->n; i++)
        pl__relay_action_release(&o->a[i]);
    o->n = 0;
}

static void out_free(out *o) {
    out_clear(o);
    free(o->a);
    o->a = NULL;
    o->cap = 0;
}

static void drain(pl__relay_core *c, out *o) {
    out_clear(o);
    pl__relay_action a;
    while (pl__relay_core_pop(c, &a)) {
        if (a.kind == PL__RELAY_SEND) pl__relay_core_sent(c, a.conn, a.len);
        if (o->n == o->cap) {
            o->cap = o->cap ? o->cap * 2 : 64;
            o->a = realloc(o->a, o->cap * sizeof *o->a);
            assert_non_null(o->a);
        }
        o->a[o->n++] = a;
    }
}

static size_t count(const out *o, pl__relay_action_kind kind) {
    size_t n = 0;
    for (size_t i = 0; i < o->n; i++)
        n += o->a[i].kind == kind;
    return n;
}

static const pl__relay_action *first(const out *o, pl__relay_action_kind kind) {
    for (size_t i = 0; i < o->n; i++)
        if (o->a[i].kind == kind) return &o->a[i];
    return NULL;
}

/* The nth frame to conn, parsed (caller decrefs), or NULL. */
static json_t *frame(const out *o, uint64_t conn, size_t nth) {
    for (size_t i = 0; i < o->n; i++) {
        if (o->a[i].kind != PL__RELAY_SEND || o->a[i].conn != conn || nth--) continue;
        json_t *j = json_loads(o->a[i].text, 0, NULL);
        assert_non_null(j);
        return j;
    }
    return NULL;
}

static size_t frames(const out *o, uint64_t conn) {
    size_t n = 0;
    for (size_t i = 0; i < o->n; i++)
        n += o->a[i].kind == PL__RELAY_SEND && o->a[i].conn == conn;
    return n;
}

__attribute__((format(printf, 5, 6))) static void sendf(pl__relay_core *c, out *o, uint64_t conn,
                                                        int64_t now, const char *fmt, ...) {
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    (void)pl__relay_core_receive(c, conn, buf, (size_t)n, now);
    drain(c, o);
}

static void topic_of(char out_[65], const char *seed) {
    uint8_t h[32];
    pl_sha256(h, (const uint8_t *)seed, strlen(seed));
    for (int i = 0; i < 32; i++)
        sprintf(out_ + 2 * i, "%02x", h[i]);
}

static pl__relay_core *new_core(void) {
    pl__relay_limits l;
    memset(&l, 0, sizeof l);
    l.cluster = true;
    l.rate_unlimited = true;
    pl__relay_core *c;
    assert_int_equal(pl__relay_core_new(&c, &l, T0), PL_OK);
    return c;
}

/* A record as another instance stored it. */
static pl__relay_record rec_of(const char *topic, char *message, int64_t published, int64_t ttl_s) {
    pl__relay_record r;
    memset(&r, 0, sizeof r);
    memcpy(r.topic, topic, 65);
    r.message = message;
    r.message_len = strlen(message);
    r.published_at_ms = published;
    r.expires_at_ms = published + ttl_s * 1000;
    return r;
}

static int64_t error_code(json_t *j) {
    assert_non_null(j);
    return json_integer_value(json_object_get(json_object_get(j, "error"), "code"));
}

static bool is_true_result(json_t *j) {
    return j && json_is_true(json_object_get(j, "result"));
}

static size_t cached(const pl__relay_core *c) {
    pl__relay_stats st;
    pl__relay_core_stats(c, &st);
    return st.messages;
}

static size_t cached_topics(const pl__relay_core *c) {
    pl__relay_stats st;
    pl__relay_core_stats(c, &st);
    return st.topics;
}

/* A publish is answered only after its put is acknowledged; a topic no
 * local client wants does not stay in the cache. */
static void test_publish_waits_for_put(void **state) {
    (void)state;
    pl__relay_core *c = new_core();
    out o = {0};
    char t[65];
    topic_of(t, "a");
    assert_int_equal(pl__relay_core_open(c, 1, NULL, "127.0.0.1", T0), PL_OK);
    sendf(c, &o, 1, T0,
          "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":"
          "{\"topic\":\"%s\",\"message\":\"m1\",\"ttl\":300,\"tag\":1}}",
          t);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT), 1);
    assert_int_equal(frames(&o, 1), 0); /* not yet */
    const pl__relay_action *put = first(&o, PL__RELAY_STORE_PUT);
    uint64_t id = put->put_id;
    assert_true(id != 0);
    assert_int_equal(put->conn, 1); /* names the (anonymous) publisher */
    assert_int_equal(put->rec.expires_at_ms, T0 + 300000);
    assert_int_equal(count(&o, PL__RELAY_WATCH), 0); /* nobody here listens */
    pl__relay_core_put_done(c, id + 100, PL_OK, T0); /* unknown: ignored */
    drain(c, &o);
    assert_int_equal(frames(&o, 1), 0);
    pl__relay_core_put_done(c, id, PL_OK, T0);
    drain(c, &o);
    json_t *j = frame(&o, 1, 0);
    assert_true(is_true_result(j));
    json_decref(j);
    assert_int_equal(cached(c), 0);
    assert_int_equal(cached_topics(c), 0);
    pl__relay_core_put_done(c, id, PL_OK, T0); /* twice: ignored */
    drain(c, &o);
    assert_int_equal(o.n, 0);
    out_free(&o);
    pl__relay_core_free(c);
}

/* A failed put is answered with the protocol's error codes. */
static void test_put_failures(void **state) {
    (void)state;
    pl__relay_core *c = new_core();
    out o = {0};
    char t[65];
    topic_of(t, "b");
    assert_int_equal(pl__relay_core_open(c, 1, NULL, NULL, T0), PL_OK);
    const pl_err errs[] = {PL_ERR_MAILBOX_FULL, PL_ERR_CLUSTER, PL_ERR_RELAY_BUSY};
    const int64_t codes[] = {-32000, -32603, 3001};
    for (int i = 0; i < 3; i++) {
        sendf(c, &o, 1, T0,
              "{\"id\":%d,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":"
              "{\"topic\":\"%s\",\"message\":\"x%d\",\"ttl\":300}}",
              10 + i, t, i);
        uint64_t id = first(&o, PL__RELAY_STORE_PUT)->put_id;
        pl__relay_core_put_done(c, id, errs[i], T0);
        drain(c, &o);
        json_t *j = frame(&o, 1, 0);
        assert_int_equal(error_code(j), codes[i]);
        assert_int_equal(json_integer_value(json_object_get(j, "id")), 10 + i);
        json_decref(j);
        assert_int_equal(cached(c), 0);
    }
    /* A batch waits for all of its puts and reports the first failure. */
    char u[65];
    topic_of(u, "c");
    sendf(
        c, &o, 1, T0,
        "{\"id\":20,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchPublish\",\"params\":{\"messages\":["
        "{\"topic\":\"%s\",\"message\":\"p\",\"ttl\":300},{\"topic\":\"%s\",\"message\":\"q\","
        "\"ttl\":300}]}}",
        t, u);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT), 2);
    uint64_t a = o.a[0].put_id, b = o.a[1].put_id;
    pl__relay_core_put_done(c, b, PL_ERR_MAILBOX_FULL, T0);
    drain(c, &o);
    assert_int_equal(frames(&o, 1), 0);
    pl__relay_core_put_done(c, a, PL_OK, T0);
    drain(c, &o);
    json_t *j = frame(&o, 1, 0);
    assert_int_equal(error_code(j), -32000);
    json_decref(j);
    out_free(&o);
    pl__relay_core_free(c);
}

/* Subscribe: WATCH then LOAD; the loaded and the live messages reach the
 * subscriber once each, in order; its own message does not come back. */
static void test_subscribe_loads_and_ingests(void **state) {
    (void)state;
    pl__relay_core *c = new_core();
    out o = {0};
    char t[65];
    topic_of(t, "d");
    assert_int_equal(pl__relay_core_open(c, 2, NULL, NULL, T0), PL_OK);
    pl__relay_record r0 = rec_of(t, "live-before-watch", T0, 300);
    assert_int_equal(pl__relay_core_ingest(c, &r0, 0, T0), PL_ERR_NOT_FOUND);
    sendf(
        c, &o, 2, T0,
        "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}",
        t);
    assert_int_equal(count(&o, PL__RELAY_WATCH), 1);
    assert_int_equal(count(&o, PL__RELAY_LOAD), 1);
    assert_true(first(&o, PL__RELAY_WATCH) < first(&o, PL__RELAY_LOAD));
    assert_string_equal(first(&o, PL__RELAY_LOAD)->rec.topic, t);
    assert_int_equal(frames(&o, 2), 1); /* the subscription id */
    pl__relay_record r1 = rec_of(t, "stored-1", T0 - 5000, 300);
    pl__relay_record r2 = rec_of(t, "stored-2", T0 - 4000, 300);
    pl__relay_record own = rec_of(t, "mine", T0 - 3000, 300);
    pl__relay_record old = rec_of(t, "expired", T0 - 400000, 300);
    assert_int_equal(pl__relay_core_ingest(c, &r1, 0, T0), PL_OK);
    assert_int_equal(pl__relay_core_ingest(c, &r2, 0, T0), PL_OK);
    assert_int_equal(pl__relay_core_ingest(c, &own, 2, T0), PL_OK);
    assert_int_equal(pl__relay_core_ingest(c, &old, 0, T0), PL_ERR_BAD_TTL);
    assert_int_equal(pl__relay_core_ingest(c, &r1, 0, T0), PL_ERR_EXISTS); /* live echo */
    pl__relay_core_loaded(c, t, T0);
    drain(c, &o);
    json_t *j = frame(&o, 2, 0);
    assert_non_null(j);
    json_t *data = json_object_get(json_object_get(j, "params"), "data");
    assert_string_equal(json_string_value(json_object_get(data, "message")), "stored-1");
    json_decref(j);
    assert_int_equal(cached(c), 3);
    /* A live message after the load. */
    pl__relay_record r3 = rec_of(t, "live-1", T0 + 10, 300);
    assert_int_equal(pl__relay_core_ingest(c, &r3, 0, T0 + 10), PL_OK);
    /* Exact TTL: gone at its expiry whatever the store keeps. */
    pl__relay_core_tick(c, T0 + 300000 + 11);
    drain(c, &o);
    assert_int_equal(count(&o, PL__RELAY_STORE_DEL), 0); /* the store expires by itself */
    assert_int_equal(cached(c), 0);
    out_free(&o);
    pl__relay_core_free(c);
}

/* The last local subscriber leaves: UNWATCH, and the topic leaves the cache. */
static void test_unsubscribe_evicts(void **state) {
    (void)state;
    pl__relay_core *c = new_core();
    out o = {0};
    char t[65];
    topic_of(t, "e");
    assert_int_equal(pl__relay_core_open(c, 3, NULL, NULL, T0), PL_OK);
    assert_int_equal(pl__relay_core_open(c, 4, NULL, NULL, T0), PL_OK);
    for (uint64_t k = 3; k <= 4; k++)
        sendf(c, &o, k, T0,
              "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":"
              "\"%s\"}}",
              t);
    assert_int_equal(count(&o, PL__RELAY_WATCH), 0); /* once, for the first */
    pl__relay_record r1 = rec_of(t, "m", T0, 300);
    assert_int_equal(pl__relay_core_ingest(c, &r1, 0, T0), PL_OK);
    pl__relay_core_loaded(c, t, T0);
    drain(c, &o);
    sendf(c, &o, 3, T0,
          "{\"id\":2,\"jsonrpc\":\"2.0\",\"method\":\"irn_unsubscribe\",\"params\":{\"topic\":\"%"
          "s\"}}",
          t);
    assert_int_equal(count(&o, PL__RELAY_UNWATCH), 0);
    assert_int_equal(cached(c), 1);
    pl__relay_core_close(c, 4);
    drain(c, &o);
    assert_int_equal(count(&o, PL__RELAY_UNWATCH), 1);
    assert_int_equal(cached(c), 0);
    assert_int_equal(cached_topics(c), 0);
    pl__relay_record r2 = rec_of(t, "late", T0, 300);
    assert_int_equal(pl__relay_core_ingest(c, &r2, 0, T0), PL_ERR_NOT_FOUND);
    out_free(&o);
    pl__relay_core_free(c);
}

/* irn_fetchMessages of a topic not in the cache waits for its load, then
 * answers; the topic is not watched and leaves the cache after. */
static void test_fetch_parks_until_loaded(void **state) {
    (void)state;
    pl__relay_core *c = new_core();
    out o = {0};
    char t[65];
    topic_of(t, "f");
    assert_int_equal(pl__relay_core_open(c, 5, NULL, NULL, T0), PL_OK);
    sendf(c, &o, 5, T0,
          "{\"id\":7,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":"
          "\"%s\"}}",
          t);
    assert_int_equal(count(&o, PL__RELAY_LOAD), 1);
    assert_int_equal(count(&o, PL__RELAY_WATCH), 0);
    assert_int_equal(frames(&o, 5), 0);
    pl__relay_record r1 = rec_of(t, "one", T0, 300), r2 = rec_of(t, "two", T0 + 1, 300);
    assert_int_equal(pl__relay_core_ingest(c, &r1, 0, T0), PL_OK);
    assert_int_equal(pl__relay_core_ingest(c, &r2, 0, T0), PL_OK);
    pl__relay_core_loaded(c, t, T0);
    drain(c, &o);
    json_t *j = frame(&o, 5, 0);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 7);
    json_t *msgs = json_object_get(json_object_get(j, "result"), "messages");
    assert_int_equal(json_array_size(msgs), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 1), "message")),
                        "two");
    json_decref(j);
    assert_int_equal(cached(c), 0);
    assert_int_equal(cached_topics(c), 0);
    /* A connection gone before the load: nothing is answered. */
    sendf(c, &o, 5, T0,
          "{\"id\":8,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":"
          "\"%s\"}}",
          t);
    pl__relay_core_close(c, 5);
    pl__relay_core_loaded(c, t, T0);
    drain(c, &o);
    assert_int_equal(frames(&o, 5), 0);
    assert_int_equal(cached_topics(c), 0);
    out_free(&o);
    pl__relay_core_free(c);
}

/* A client's retry of a message whose put is still out waits for a put of
 * its own (the store de-duplicates). */
static void test_retry_waits_for_its_put(void **state) {
    (void)state;
    pl__relay_core *c = new_core();
    out o = {0};
    char t[65];
    topic_of(t, "g");
    assert_int_equal(pl__relay_core_open(c, 6, NULL, NULL, T0), PL_OK);
    const char *fmt = "{\"id\":%d,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":"
                      "{\"topic\":\"%s\",\"message\":\"same\",\"ttl\":300}}";
    char buf[512];
    snprintf(buf, sizeof buf, fmt, 1, t);
    (void)pl__relay_core_receive(c, 6, buf, strlen(buf), T0);
    drain(c, &o);
    uint64_t a = first(&o, PL__RELAY_STORE_PUT)->put_id;
    snprintf(buf, sizeof buf, fmt, 2, t);
    (void)pl__relay_core_receive(c, 6, buf, strlen(buf), T0);
    drain(c, &o);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT), 1);
    assert_int_equal(frames(&o, 6), 0);
    uint64_t b = first(&o, PL__RELAY_STORE_PUT)->put_id;
    assert_true(a != b);
    pl__relay_core_put_done(c, a, PL_OK, T0);
    drain(c, &o);
    assert_int_equal(frames(&o, 6), 1);
    assert_int_equal(cached(c), 1); /* b still out */
    pl__relay_core_put_done(c, b, PL_OK, T0);
    drain(c, &o);
    json_t *j = frame(&o, 6, 0);
    assert_true(is_true_result(j));
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 2);
    json_decref(j);
    assert_int_equal(cached(c), 0);
    out_free(&o);
    pl__relay_core_free(c);
}

/* A reload (set_limits) keeps the backend chosen at start. */
static void test_set_limits_keeps_cluster_mode(void **state) {
    (void)state;
    pl__relay_core *c = new_core();
    out o = {0};
    char t[65];
    topic_of(t, "i");
    pl__relay_limits l;
    memset(&l, 0, sizeof l);
    l.rate_unlimited = true;
    l.max_mailbox_per_topic = 7; /* cluster false here, as a reloaded config says */
    assert_int_equal(pl__relay_core_set_limits(c, &l), PL_OK);
    assert_true(pl__relay_core_limits(c)->cluster);
    assert_int_equal(pl__relay_core_open(c, 1, NULL, NULL, T0), PL_OK);
    sendf(c, &o, 1, T0,
          "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":"
          "{\"topic\":\"%s\",\"message\":\"m\",\"ttl\":300}}",
          t);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT), 1);
    assert_int_equal(frames(&o, 1), 0); /* still waits for its put */
    out_free(&o);
    pl__relay_core_free(c);
}

static void test_outside_cluster_mode(void **state) {
    (void)state;
    pl__relay_core *c;
    assert_int_equal(pl__relay_core_new(&c, NULL, T0), PL_OK);
    char t[65];
    topic_of(t, "h");
    pl__relay_record r = rec_of(t, "m", T0, 300);
    assert_int_equal(pl__relay_core_ingest(c, &r, 0, T0), PL_ERR_STATE);
    pl__relay_core_loaded(c, t, T0);
    pl__relay_core_put_done(c, 1, PL_OK, T0);
    pl__relay_core_free(c);
    pl__relay_limits l;
    memset(&l, 0, sizeof l);
    l.cluster = l.no_store = true;
    assert_int_equal(pl__relay_core_new(&c, &l, T0), PL_ERR_INVALID_ARG);
}

int main(void) {
    if (pl_init() != PL_OK) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publish_waits_for_put),
        cmocka_unit_test(test_put_failures),
        cmocka_unit_test(test_subscribe_loads_and_ingests),
        cmocka_unit_test(test_unsubscribe_evicts),
        cmocka_unit_test(test_fetch_parks_until_loaded),
        cmocka_unit_test(test_retry_waits_for_its_put),
        cmocka_unit_test(test_set_limits_keeps_cluster_mode),
        cmocka_unit_test(test_outside_cluster_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
