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

static pl__relay_stats stats_of(const pl__relay_core *c) {
    pl__relay_stats st;
    pl__relay_core_stats(c, &st);
    return st;
}

/* What relay/internal.h says of a connection's waiting requests
 * (PL__RS_PARKED_READ, PL__RS_PARKED_MAX), as the tests expect them. */
#define PARKED_READ 64
#define PARKED_MAX 1024

/* Cluster limits for one test: no rate limit, then the test's own. */
static pl__relay_limits cluster_limits(void) {
    pl__relay_limits l;
    memset(&l, 0, sizeof l);
    l.cluster = true;
    l.rate_unlimited = true;
    return l;
}

static pl__relay_core *new_core_with(const pl__relay_limits *l) {
    pl__relay_core *c;
    assert_int_equal(pl__relay_core_new(&c, l, T0), PL_OK);
    return c;
}

/* A message's id: sha256(message) hex. */
static void id_of(char out_[65], const char *message) {
    uint8_t h[32];
    pl_sha256(h, (const uint8_t *)message, strlen(message));
    for (int i = 0; i < 32; i++)
        sprintf(out_ + 2 * i, "%02x", h[i]);
}

static void publish(pl__relay_core *c, out *o, uint64_t conn, int64_t now, int id,
                    const char *topic, const char *message) {
    sendf(c, o, conn, now,
          "{\"id\":%d,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":"
          "{\"topic\":\"%s\",\"message\":\"%s\",\"ttl\":300,\"tag\":1}}",
          id, topic, message);
}

static void subscribe(pl__relay_core *c, out *o, uint64_t conn, int64_t now, const char *topic) {
    sendf(
        c, o, conn, now,
        "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}",
        topic);
}

static void fetch_topic(pl__relay_core *c, out *o, uint64_t conn, int64_t now, int id,
                        const char *topic) {
    sendf(c, o, conn, now,
          "{\"id\":%d,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":"
          "\"%s\"}}",
          id, topic);
}

/* The put ids of the STORE_PUTs in o, in order; their number. */
static size_t put_ids(const out *o, uint64_t *ids, size_t max) {
    size_t n = 0;
    for (size_t i = 0; i < o->n && n < max; i++)
        if (o->a[i].kind == PL__RELAY_STORE_PUT) ids[n++] = o->a[i].put_id;
    return n;
}

/* The push ids of the irn_subscription requests to conn in o. */
static size_t push_ids(const out *o, uint64_t conn, int64_t *ids, size_t max) {
    size_t n = 0;
    for (size_t i = 0; i < o->n && n < max; i++) {
        if (o->a[i].kind != PL__RELAY_SEND || o->a[i].conn != conn) continue;
        json_t *j = json_loads(o->a[i].text, 0, NULL);
        assert_non_null(j);
        const char *m = json_string_value(json_object_get(j, "method"));
        if (m && !strcmp(m, "irn_subscription"))
            ids[n++] = json_integer_value(json_object_get(j, "id"));
        json_decref(j);
    }
    return n;
}

static void ack(pl__relay_core *c, out *o, uint64_t conn, int64_t now, int64_t push_id) {
    sendf(c, o, conn, now, "{\"id\":%lld,\"jsonrpc\":\"2.0\",\"result\":true}", (long long)push_id);
}

/* Publish on a topic already loaded: one STORE_PUT at once, answered
 * true once stored. acker (0: none) then acknowledges its push of it. */
static void publish_stored(pl__relay_core *c, out *o, uint64_t conn, uint64_t acker, int64_t now,
                           int id, const char *topic, const char *message) {
    publish(c, o, conn, now, id, topic, message);
    assert_int_equal(count(o, PL__RELAY_LOAD), 0);
    assert_int_equal(count(o, PL__RELAY_STORE_PUT), 1);
    uint64_t put = first(o, PL__RELAY_STORE_PUT)->put_id;
    int64_t pid[4];
    size_t np = acker ? push_ids(o, acker, pid, 4) : 0;
    if (acker) assert_int_equal(np, 1);
    pl__relay_core_put_done(c, put, PL_OK, now);
    drain(c, o);
    json_t *j = frame(o, conn, 0);
    assert_true(is_true_result(j));
    json_decref(j);
    for (size_t i = 0; i < np; i++)
        ack(c, o, acker, now, pid[i]);
}

/* Whether id is one of the n ids (PL_RELAY_ID_HEX chars each) of a ROOM. */
static bool room_has(const pl__relay_action *a, const char *id) {
    for (size_t i = 0; i < a->nids; i++)
        if (!memcmp(a->ids + i * PL_RELAY_ID_HEX, id, PL_RELAY_ID_HEX)) return true;
    return false;
}

/* The ROOM on topic in o, or NULL. */
static const pl__relay_action *room_of(const out *o, const char *topic) {
    for (size_t i = 0; i < o->n; i++)
        if (o->a[i].kind == PL__RELAY_ROOM && !strcmp(o->a[i].rec.topic, topic)) return &o->a[i];
    return NULL;
}

/* A copy of a ROOM action (topic, ids) that outlives the next drain;
 * free its ids. */
static pl__relay_action room_copy(const pl__relay_action *a) {
    assert_non_null(a);
    pl__relay_action r = {.kind = PL__RELAY_ROOM, .nids = a->nids};
    memcpy(r.rec.topic, a->rec.topic, sizeof r.rec.topic);
    r.ids = malloc(a->nids * PL_RELAY_ID_HEX);
    assert_non_null(r.ids);
    memcpy(r.ids, a->ids, a->nids * PL_RELAY_ID_HEX);
    return r;
}

/* Answer a ROOM with the same flags for every candidate it asked about. */
static void room_answer_all(pl__relay_core *c, out *o, const pl__relay_action *room, uint8_t flags,
                            int64_t now) {
    char topic[65];
    size_t n = room->nids;
    char *ids = malloc(n * PL_RELAY_ID_HEX);
    uint8_t *f = malloc(n);
    assert_true(ids && f);
    memcpy(topic, room->rec.topic, sizeof topic);
    memcpy(ids, room->ids, n * PL_RELAY_ID_HEX);
    memset(f, flags, n);
    pl__relay_core_room_answer(c, topic, ids, f, n, now);
    free(ids);
    free(f);
    drain(c, o);
}

/* Subscriber `sub` on t (loaded, empty), publisher `pubc` fills it with
 * the n messages msgs[i], each acknowledged by sub. */
static void fill_acked(pl__relay_core *c, out *o, uint64_t sub, uint64_t pubc, const char *t,
                       const char *const *msgs, size_t n) {
    subscribe(c, o, sub, T0, t);
    assert_int_equal(count(o, PL__RELAY_LOAD), 1);
    pl__relay_core_loaded(c, t, T0);
    drain(c, o);
    for (size_t i = 0; i < n; i++)
        publish_stored(c, o, pubc, sub, T0, 100 + (int)i, t, msgs[i]);
    assert_int_equal(cached(c), n);
}

/* A publish is answered only after its put is acknowledged; it waits for
 * the topic's load first (it counts the stored messages); a topic no local
 * client subscribes to stays cached for the linger only. */
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
    assert_int_equal(count(&o, PL__RELAY_WATCH), 1);
    assert_int_equal(count(&o, PL__RELAY_LOAD), 1);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT), 0);
    pl__relay_core_loaded(c, t, T0);
    drain(c, &o);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT), 1);
    assert_int_equal(frames(&o, 1), 0); /* not yet */
    const pl__relay_action *put = first(&o, PL__RELAY_STORE_PUT);
    uint64_t id = put->put_id;
    assert_true(id != 0);
    assert_int_equal(put->conn, 1); /* names the (anonymous) publisher */
    assert_int_equal(put->rec.expires_at_ms, T0 + 300000);
    pl__relay_core_put_done(c, id + 100, PL_OK, T0); /* unknown: ignored */
    drain(c, &o);
    assert_int_equal(frames(&o, 1), 0);
    pl__relay_core_put_done(c, id, PL_OK, T0);
    drain(c, &o);
    json_t *j = frame(&o, 1, 0);
    assert_true(is_true_result(j));
    json_decref(j);
    assert_int_equal(cached(c), 1); /* lingers */
    assert_int_equal(cached_topics(c), 1);
    pl__relay_core_put_done(c, id, PL_OK, T0); /* twice: ignored */
    drain(c, &o);
    assert_int_equal(o.n, 0);
    pl__relay_core_tick(c, T0 + PL_RELAY_DEF_CLUSTER_LINGER_MS);
    drain(c, &o);
    assert_int_equal(count(&o, PL__RELAY_UNWATCH), 1);
    assert_int_equal(cached(c), 0);
    assert_int_equal(cached_topics(c), 0);
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
        /* Loaded once; the topic lingers for the next ones. */
        assert_int_equal(count(&o, PL__RELAY_LOAD), i == 0);
        if (i == 0) {
            pl__relay_core_loaded(c, t, T0);
            drain(c, &o);
        }
        uint64_t id = first(&o, PL__RELAY_STORE_PUT)->put_id;
        pl__relay_core_put_done(c, id, errs[i], T0);
        drain(c, &o);
        json_t *j = frame(&o, 1, 0);
        assert_int_equal(error_code(j), codes[i]);
        assert_int_equal(json_integer_value(json_object_get(j, "id")), 10 + i);
        json_decref(j);
        assert_int_equal(cached(c), 0); /* not stored: not kept */
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
    assert_int_equal(count(&o, PL__RELAY_LOAD), 1); /* u only */
    assert_string_equal(first(&o, PL__RELAY_LOAD)->rec.topic, u);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT), 0);
    pl__relay_core_loaded(c, u, T0);
    drain(c, &o);
    uint64_t ids[2];
    assert_int_equal(put_ids(&o, ids, 2), 2);
    pl__relay_core_put_done(c, ids[1], PL_ERR_MAILBOX_FULL, T0);
    drain(c, &o);
    assert_int_equal(frames(&o, 1), 0);
    pl__relay_core_put_done(c, ids[0], PL_OK, T0);
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
    pl__relay_record bin = rec_of(t, "not \xff text", T0 - 2000, 300);
    assert_int_equal(pl__relay_core_ingest(c, &bin, 0, T0), PL_ERR_BAD_UTF8);
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
 * answers; the topic is watched meanwhile and leaves the cache after the
 * linger. */
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
    assert_int_equal(count(&o, PL__RELAY_WATCH), 1);
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
    assert_int_equal(cached(c), 2); /* lingers */
    pl__relay_core_tick(c, T0 + PL_RELAY_DEF_CLUSTER_LINGER_MS - 1);
    drain(c, &o);
    assert_int_equal(cached(c), 2);
    pl__relay_core_tick(c, T0 + PL_RELAY_DEF_CLUSTER_LINGER_MS);
    drain(c, &o);
    assert_int_equal(count(&o, PL__RELAY_UNWATCH), 1);
    assert_int_equal(cached(c), 0);
    assert_int_equal(cached_topics(c), 0);
    /* A connection gone before the load: nothing is answered. */
    sendf(c, &o, 5, T0 + 40000,
          "{\"id\":8,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":"
          "\"%s\"}}",
          t);
    assert_int_equal(count(&o, PL__RELAY_LOAD), 1); /* loaded again */
    pl__relay_core_close(c, 5);
    pl__relay_core_loaded(c, t, T0 + 40000);
    drain(c, &o);
    assert_int_equal(frames(&o, 5), 0);
    pl__relay_core_tick(c, T0 + 40000 + PL_RELAY_DEF_CLUSTER_LINGER_MS);
    drain(c, &o);
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
    pl__relay_core_loaded(c, t, T0);
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
    assert_int_equal(cached(c), 1); /* lingers */
    pl__relay_core_tick(c, T0 + PL_RELAY_DEF_CLUSTER_LINGER_MS);
    drain(c, &o);
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
    assert_int_equal(count(&o, PL__RELAY_LOAD), 1); /* still loads first */
    pl__relay_core_loaded(c, t, T0);
    drain(c, &o);
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

/* ---- publishes wait for the load, in order ------------------------------------- */

/* Publishes to a topic not loaded wait: WATCH and one LOAD, no answer and
 * no put; once loaded they run in their arrival order (put order), the
 * connection is not read from with PARKED_READ of them waiting, and
 * beyond PARKED_MAX it is refused busy. */
static void test_publish_parks_in_order(void **state) {
    (void)state;
    pl__relay_limits l = cluster_limits();
    l.max_mailbox_per_topic = 4096; /* the order, not the limit, is tested here */
    pl__relay_core *c = new_core_with(&l);
    out o = {0};
    char t[65];
    topic_of(t, "park");
    assert_int_equal(pl__relay_core_open(c, 1, NULL, NULL, T0), PL_OK);
    char msg[32];
    for (int i = 0; i < PARKED_MAX; i++) {
        assert_true(pl__relay_core_wants_input(c, 1) == (i < PARKED_READ));
        snprintf(msg, sizeof msg, "m%d", i);
        publish(c, &o, 1, T0, 1000 + i, t, msg);
        assert_int_equal(frames(&o, 1), 0);
        assert_int_equal(count(&o, PL__RELAY_STORE_PUT), 0);
        assert_int_equal(count(&o, PL__RELAY_WATCH), i == 0);
        assert_int_equal(count(&o, PL__RELAY_LOAD), i == 0);
    }
    assert_false(pl__relay_core_wants_input(c, 1));
    /* One too many: refused at once, busy. */
    publish(c, &o, 1, T0, 9999, t, "over");
    json_t *j = frame(&o, 1, 0);
    assert_int_equal(error_code(j), PL_RELAY_ERR_RATE);
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 9999);
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
               "Too many requests"));
    json_decref(j);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT), 0);
    /* A stored message arrives with the load, before them. */
    pl__relay_record r = rec_of(t, "stored", T0 - 10, 300);
    assert_int_equal(pl__relay_core_ingest(c, &r, 0, T0), PL_OK);
    pl__relay_core_loaded(c, t, T0);
    drain(c, &o);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT), PARKED_MAX);
    assert_int_equal(frames(&o, 1), 0); /* answers wait for the puts */
    size_t k = 0;
    for (size_t i = 0; i < o.n; i++) {
        if (o.a[i].kind != PL__RELAY_STORE_PUT) continue;
        snprintf(msg, sizeof msg, "m%zu", k++);
        assert_string_equal(o.a[i].rec.message, msg);
    }
    assert_true(pl__relay_core_wants_input(c, 1));
    uint64_t *ids = malloc(PARKED_MAX * sizeof *ids);
    assert_non_null(ids);
    assert_int_equal(put_ids(&o, ids, PARKED_MAX), PARKED_MAX);
    for (size_t i = 0; i < PARKED_MAX; i++)
        pl__relay_core_put_done(c, ids[i], PL_OK, T0);
    free(ids);
    drain(c, &o);
    assert_int_equal(frames(&o, 1), PARKED_MAX);
    for (size_t i = 0; i < PARKED_MAX; i += 97) {
        j = frame(&o, 1, i);
        assert_true(is_true_result(j));
        assert_int_equal(json_integer_value(json_object_get(j, "id")), 1000 + (int64_t)i);
        json_decref(j);
    }
    assert_int_equal(cached(c), PARKED_MAX + 1);
    out_free(&o);
    pl__relay_core_free(c);
}

/* A load that fails answers what waited for it -32603 (nothing is put on
 * a partial view of the topic); the next publish loads again and works. */
static void test_load_failed(void **state) {
    (void)state;
    pl__relay_core *c = new_core();
    out o = {0};
    char t[65];
    topic_of(t, "load-fails");
    assert_int_equal(pl__relay_core_open(c, 1, NULL, NULL, T0), PL_OK);
    publish(c, &o, 1, T0, 1, t, "a");
    publish(c, &o, 1, T0, 2, t, "b");
    assert_int_equal(frames(&o, 1), 0);
    pl__relay_core_load_failed(c, t, T0 + 5000);
    drain(c, &o);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT), 0);
    assert_int_equal(frames(&o, 1), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *j = frame(&o, 1, i);
        assert_int_equal(error_code(j), -32603);
        assert_int_equal(json_integer_value(json_object_get(j, "id")), (int64_t)i + 1);
        json_decref(j);
    }
    assert_true(pl__relay_core_wants_input(c, 1));
    assert_int_equal(cached_topics(c), 0);  /* nothing keeps it: unwatched */
    pl__relay_core_loaded(c, t, T0 + 5000); /* late: ignored */
    drain(c, &o);
    assert_int_equal(o.n, 0);
    publish(c, &o, 1, T0 + 6000, 3, t, "c");
    assert_int_equal(count(&o, PL__RELAY_LOAD), 1);
    pl__relay_core_loaded(c, t, T0 + 6000);
    drain(c, &o);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT), 1);
    out_free(&o);
    pl__relay_core_free(c);
}

/* A fetch and a publish parked on the same load run in arrival order:
 * the fetch sent first does not see the publish. */
static void test_parked_fetch_before_publish(void **state) {
    (void)state;
    pl__relay_core *c = new_core();
    out o = {0};
    char t[65];
    topic_of(t, "fp");
    assert_int_equal(pl__relay_core_open(c, 1, NULL, NULL, T0), PL_OK);
    assert_int_equal(pl__relay_core_open(c, 2, NULL, NULL, T0), PL_OK);
    fetch_topic(c, &o, 1, T0, 5, t);
    publish(c, &o, 2, T0, 6, t, "after-the-fetch");
    assert_int_equal(count(&o, PL__RELAY_LOAD), 0); /* the fetch asked already */
    pl__relay_core_loaded(c, t, T0);
    drain(c, &o);
    json_t *j = frame(&o, 1, 0);
    assert_non_null(j);
    assert_int_equal(json_array_size(json_object_get(json_object_get(j, "result"), "messages")), 0);
    json_decref(j);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT), 1);
    assert_true(first(&o, PL__RELAY_SEND) < first(&o, PL__RELAY_STORE_PUT));
    out_free(&o);
    pl__relay_core_free(c);
}

/* ---- linger ---------------------------------------------------------------------- */

/* A topic only published to stays cached and watched for the linger after
 * its last use: no second LOAD meanwhile, next_deadline says when, and at
 * that tick it goes (UNWATCH, cache empty); a later publish loads again. */
static void test_linger(void **state) {
    (void)state;
    pl__relay_limits l = cluster_limits();
    l.cluster_linger_ms = 5000;
    pl__relay_core *c = new_core_with(&l);
    out o = {0};
    char t[65];
    topic_of(t, "linger");
    assert_int_equal(pl__relay_core_open(c, 1, NULL, NULL, T0), PL_OK);
    assert_int_equal(pl__relay_core_next_deadline(c), INT64_MAX);
    publish(c, &o, 1, T0, 1, t, "one");
    assert_int_equal(count(&o, PL__RELAY_LOAD), 1);
    pl__relay_core_loaded(c, t, T0 + 10);
    drain(c, &o);
    uint64_t put = first(&o, PL__RELAY_STORE_PUT)->put_id;
    pl__relay_core_put_done(c, put, PL_OK, T0 + 20);
    drain(c, &o);
    json_t *j = frame(&o, 1, 0);
    assert_true(is_true_result(j));
    json_decref(j);
    assert_int_equal(pl__relay_core_next_deadline(c), T0 + 10 + 5000);
    /* A second publish within the linger: no LOAD, no WATCH; it renews it. */
    publish_stored(c, &o, 1, 0, T0 + 1000, 2, t, "two");
    assert_int_equal(pl__relay_core_next_deadline(c), T0 + 1000 + 5000);
    assert_int_equal(cached(c), 2);
    pl__relay_core_tick(c, T0 + 5999);
    drain(c, &o);
    assert_int_equal(count(&o, PL__RELAY_UNWATCH), 0);
    assert_int_equal(cached(c), 2);
    /* Still watched: another instance's message is taken. */
    pl__relay_record r = rec_of(t, "from-elsewhere", T0 + 5500, 300);
    assert_int_equal(pl__relay_core_ingest(c, &r, 0, T0 + 5500), PL_OK);
    pl__relay_core_tick(c, T0 + 6000);
    drain(c, &o);
    assert_int_equal(count(&o, PL__RELAY_UNWATCH), 1);
    assert_string_equal(first(&o, PL__RELAY_UNWATCH)->rec.topic, t);
    assert_int_equal(cached(c), 0);
    assert_int_equal(cached_topics(c), 0);
    assert_int_equal(pl__relay_core_next_deadline(c), INT64_MAX);
    pl__relay_record r2 = rec_of(t, "too-late", T0 + 6000, 300);
    assert_int_equal(pl__relay_core_ingest(c, &r2, 0, T0 + 6000), PL_ERR_NOT_FOUND);
    publish(c, &o, 1, T0 + 7000, 3, t, "three");
    assert_int_equal(count(&o, PL__RELAY_WATCH), 1);
    assert_int_equal(count(&o, PL__RELAY_LOAD), 1);
    out_free(&o);
    pl__relay_core_free(c);
}

/* The linger ends while a put is still out: the topic is unwatched, the
 * message waits for its put, is answered, then leaves the cache. */
static void test_linger_ends_with_put_out(void **state) {
    (void)state;
    pl__relay_limits l = cluster_limits();
    l.cluster_linger_ms = 1000;
    pl__relay_core *c = new_core_with(&l);
    out o = {0};
    char t[65];
    topic_of(t, "linger-put");
    assert_int_equal(pl__relay_core_open(c, 1, NULL, NULL, T0), PL_OK);
    publish(c, &o, 1, T0, 1, t, "slow");
    pl__relay_core_loaded(c, t, T0);
    drain(c, &o);
    uint64_t put = first(&o, PL__RELAY_STORE_PUT)->put_id;
    assert_int_equal(pl__relay_core_next_deadline(c), T0 + 1000);
    pl__relay_core_tick(c, T0 + 1000);
    drain(c, &o);
    assert_int_equal(count(&o, PL__RELAY_UNWATCH), 1);
    assert_int_equal(cached(c), 1); /* its put is out */
    pl__relay_core_put_done(c, put, PL_OK, T0 + 1500);
    drain(c, &o);
    json_t *j = frame(&o, 1, 0);
    assert_true(is_true_result(j));
    json_decref(j);
    assert_int_equal(cached(c), 0);
    assert_int_equal(cached_topics(c), 0);
    out_free(&o);
    pl__relay_core_free(c);
}

/* ---- the per-topic limit counts every cached message -------------------------------- */

/* Ingest takes what the store holds, over the per-topic limit too; a
 * publish counts all of it whatever the TTLs: with 3 stored (300 s and
 * 86400 s) and a limit of 3, the 4th is not simply stored. Nobody here
 * acknowledged anything, so a DONE-only answer (the other instances have
 * no subscriber either: an offline peer's mailbox) evicts nothing. */
static void test_limit_counts_all_ttls(void **state) {
    (void)state;
    pl__relay_limits l = cluster_limits();
    l.max_mailbox_per_topic = 3;
    pl__relay_core *c = new_core_with(&l);
    out o = {0};
    char t[65], u[65];
    topic_of(t, "ttl");
    topic_of(u, "over");
    assert_int_equal(pl__relay_core_open(c, 1, NULL, NULL, T0), PL_OK);
    /* ingest: no per-topic limit (5 on a limit of 3). */
    subscribe(c, &o, 1, T0, u);
    char m[5][8] = {"u0", "u1", "u2", "u3", "u4"};
    for (int i = 0; i < 5; i++) {
        pl__relay_record r = rec_of(u, m[i], T0 - 100 + i, 300);
        assert_int_equal(pl__relay_core_ingest(c, &r, 0, T0), PL_OK);
    }
    pl__relay_core_loaded(c, u, T0);
    drain(c, &o);
    assert_int_equal(cached(c), 5);
    /* The publisher-only topic t. */
    publish(c, &o, 1, T0, 2, t, "fourth");
    assert_int_equal(count(&o, PL__RELAY_LOAD), 1);
    pl__relay_record r1 = rec_of(t, "short-1", T0 - 30, 300);
    pl__relay_record r2 = rec_of(t, "long", T0 - 20, 86400);
    pl__relay_record r3 = rec_of(t, "short-2", T0 - 10, 300);
    assert_int_equal(pl__relay_core_ingest(c, &r1, 0, T0), PL_OK);
    assert_int_equal(pl__relay_core_ingest(c, &r2, 0, T0), PL_OK);
    assert_int_equal(pl__relay_core_ingest(c, &r3, 0, T0), PL_OK);
    pl__relay_core_loaded(c, t, T0);
    drain(c, &o);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT), 0);
    assert_int_equal(frames(&o, 1), 0);
    const pl__relay_action *room = room_of(&o, t);
    assert_non_null(room);
    assert_int_equal(room->nids, 3); /* nobody here needs any of them */
    char id[65];
    id_of(id, "short-1");
    assert_true(room_has(room, id));
    assert_int_equal(stats_of(c).rooms, 1);
    room_answer_all(c, &o, room, PL_RELAY_ROOM_DONE, T0);
    json_t *j = frame(&o, 1, 0);
    assert_int_equal(error_code(j), PL_RELAY_ERR_HANDLER);
    json_decref(j);
    assert_int_equal(count(&o, PL__RELAY_EVICT), 0);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT), 0);
    assert_int_equal(count(&o, PL__RELAY_ROOM), 0); /* a re-run asks no second ROOM */
    assert_int_equal(stats_of(c).evicted, 0);
    assert_int_equal(cached(c), 5 + 3); /* the mailbox kept whole */
    out_free(&o);
    pl__relay_core_free(c);
}

/* ---- a full topic: ROOM, EVICT --------------------------------------------------- */

static const char *const acked3[] = {"a1", "a2", "a3"};

/* A subscriber here acknowledged every message of the full topic: the
 * publish asks ROOM with them (oldest first), waits, and after a
 * DONE|ACKED answer evicts the oldest (EVICT) and stores the new one,
 * answered after its put. */
static void test_room_evicts_acked(void **state) {
    (void)state;
    pl__relay_limits l = cluster_limits();
    l.max_mailbox_per_topic = 3;
    pl__relay_core *c = new_core_with(&l);
    out o = {0};
    char t[65], id[65];
    topic_of(t, "full");
    assert_int_equal(pl__relay_core_open(c, 1, NULL, NULL, T0), PL_OK); /* subscriber */
    assert_int_equal(pl__relay_core_open(c, 2, NULL, NULL, T0), PL_OK); /* publisher */
    fill_acked(c, &o, 1, 2, t, acked3, 3);
    publish(c, &o, 2, T0, 50, t, "a4");
    assert_int_equal(frames(&o, 2), 0);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT), 0);
    assert_int_equal(count(&o, PL__RELAY_EVICT), 0);
    const pl__relay_action *room = room_of(&o, t);
    assert_non_null(room);
    assert_int_equal(room->nids, 3);
    for (int i = 0; i < 3; i++) {
        id_of(id, acked3[i]);
        assert_memory_equal(room->ids + i * PL_RELAY_ID_HEX, id, PL_RELAY_ID_HEX);
    }
    assert_int_equal(stats_of(c).rooms, 1);
    /* Another publish meanwhile waits for the same answer (no second ROOM). */
    publish(c, &o, 2, T0, 51, t, "a5");
    assert_int_equal(count(&o, PL__RELAY_ROOM), 0);
    assert_int_equal(frames(&o, 2), 0);
    /* a1 and a2 done everywhere, a3 not. */
    char ids[3 * PL_RELAY_ID_HEX];
    uint8_t flags[3] = {PL_RELAY_ROOM_DONE | PL_RELAY_ROOM_ACKED,
                        PL_RELAY_ROOM_DONE | PL_RELAY_ROOM_ACKED, 0};
    for (int i = 0; i < 3; i++) {
        id_of(id, acked3[i]);
        memcpy(ids + i * PL_RELAY_ID_HEX, id, PL_RELAY_ID_HEX);
    }
    pl__relay_core_room_answer(c, t, ids, flags, 3, T0);
    drain(c, &o);
    /* a4 ran: a1 went (the oldest done everywhere), a4 is stored. a5 came
     * while the ROOM was out, behind it: it runs next and, the answer being
     * spent with a4, asks a ROOM of its own (a2, a3; a4 is putting). */
    assert_int_equal(count(&o, PL__RELAY_EVICT), 1);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT), 1);
    const pl__relay_action *ev = first(&o, PL__RELAY_EVICT);
    id_of(id, "a1");
    assert_string_equal(ev->rec.id, id);
    assert_string_equal(ev->rec.topic, t);
    assert_null(ev->rec.message);
    assert_string_equal(first(&o, PL__RELAY_STORE_PUT)->rec.message, "a4");
    assert_int_equal(stats_of(c).evicted, 1);
    uint64_t put4 = first(&o, PL__RELAY_STORE_PUT)->put_id;
    assert_int_equal(count(&o, PL__RELAY_ROOM), 1);
    pl__relay_action room2 = room_copy(room_of(&o, t));
    assert_int_equal(room2.nids, 2);
    id_of(id, "a2");
    assert_memory_equal(room2.ids, id, PL_RELAY_ID_HEX);
    assert_int_equal(frames(&o, 2), 0); /* a4's answer waits for its put */
    pl__relay_core_put_done(c, put4, PL_OK, T0);
    drain(c, &o);
    json_t *j = frame(&o, 2, 0);
    assert_true(is_true_result(j));
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 50);
    json_decref(j);
    room_answer_all(c, &o, &room2, PL_RELAY_ROOM_DONE | PL_RELAY_ROOM_ACKED, T0);
    free(room2.ids);
    assert_int_equal(count(&o, PL__RELAY_EVICT), 1);
    id_of(id, "a2");
    assert_string_equal(first(&o, PL__RELAY_EVICT)->rec.id, id);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT), 1);
    pl__relay_core_put_done(c, first(&o, PL__RELAY_STORE_PUT)->put_id, PL_OK, T0);
    drain(c, &o);
    j = frame(&o, 2, 0);
    assert_true(is_true_result(j));
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 51);
    json_decref(j);
    assert_int_equal(stats_of(c).evicted, 2);
    assert_int_equal(stats_of(c).rooms, 2);
    assert_int_equal(cached(c), 3);
    out_free(&o);
    pl__relay_core_free(c);
}

/* relay_core.h: "store later puts of the topic only after the delete":
 * the EVICT that makes room comes before the STORE_PUT of the message it
 * makes room for (the store's own per-topic limit would refuse it). */
static void test_evict_precedes_put(void **state) {
    (void)state;
    pl__relay_limits l = cluster_limits();
    l.max_mailbox_per_topic = 3;
    pl__relay_core *c = new_core_with(&l);
    out o = {0};
    char t[65];
    topic_of(t, "order");
    assert_int_equal(pl__relay_core_open(c, 1, NULL, NULL, T0), PL_OK);
    assert_int_equal(pl__relay_core_open(c, 2, NULL, NULL, T0), PL_OK);
    fill_acked(c, &o, 1, 2, t, acked3, 3);
    publish(c, &o, 2, T0, 50, t, "a4");
    const pl__relay_action *room = room_of(&o, t);
    assert_non_null(room);
    room_answer_all(c, &o, room, PL_RELAY_ROOM_DONE | PL_RELAY_ROOM_ACKED, T0);
    assert_int_equal(count(&o, PL__RELAY_EVICT), 1);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT), 1);
    assert_true(first(&o, PL__RELAY_EVICT) < first(&o, PL__RELAY_STORE_PUT));
    out_free(&o);
    pl__relay_core_free(c);
}

/* The answer says not every instance answered (n = 0): nothing goes,
 * -32000; the ROOM was asked once. */
static void test_room_timeout_refuses(void **state) {
    (void)state;
    pl__relay_limits l = cluster_limits();
    l.max_mailbox_per_topic = 3;
    pl__relay_core *c = new_core_with(&l);
    out o = {0};
    char t[65];
    topic_of(t, "timeout");
    assert_int_equal(pl__relay_core_open(c, 1, NULL, NULL, T0), PL_OK);
    assert_int_equal(pl__relay_core_open(c, 2, NULL, NULL, T0), PL_OK);
    fill_acked(c, &o, 1, 2, t, acked3, 3);
    publish(c, &o, 2, T0, 50, t, "a4");
    assert_non_null(room_of(&o, t));
    pl__relay_core_room_answer(c, t, NULL, NULL, 0, T0);
    drain(c, &o);
    json_t *j = frame(&o, 2, 0);
    assert_int_equal(error_code(j), PL_RELAY_ERR_HANDLER);
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 50);
    json_decref(j);
    assert_int_equal(count(&o, PL__RELAY_EVICT), 0);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT), 0);
    assert_int_equal(count(&o, PL__RELAY_ROOM), 0);
    assert_int_equal(cached(c), 3);
    assert_int_equal(stats_of(c).evicted, 0);
    /* A second answer (late, duplicate) changes nothing. */
    pl__relay_core_room_answer(c, t, NULL, NULL, 0, T0);
    drain(c, &o);
    assert_int_equal(o.n, 0);
    out_free(&o);
    pl__relay_core_free(c);
}

/* A message the local subscriber has not got yet is no candidate, even
 * when another instance says it acknowledged it: with a window of one, a1
 * acked, a2 in flight, a3 not pushed, only a1 is asked about and only a1
 * may go. With nothing past here at all: -32000 at once, no ROOM. */
static void test_room_not_past_here(void **state) {
    (void)state;
    pl__relay_limits l = cluster_limits();
    l.max_mailbox_per_topic = 3;
    l.max_inflight_per_conn = 1;
    pl__relay_core *c = new_core_with(&l);
    out o = {0};
    char t[65], id[65];
    topic_of(t, "window");
    assert_int_equal(pl__relay_core_open(c, 1, NULL, NULL, T0), PL_OK);
    assert_int_equal(pl__relay_core_open(c, 2, NULL, NULL, T0), PL_OK);
    subscribe(c, &o, 1, T0, t);
    pl__relay_core_loaded(c, t, T0);
    drain(c, &o);
    int64_t push1;
    publish(c, &o, 2, T0, 11, t, "a1");
    assert_int_equal(push_ids(&o, 1, &push1, 1), 1);
    uint64_t puts[3];
    put_ids(&o, puts, 1);
    for (int i = 0; i < 2; i++) {
        publish(c, &o, 2, T0, 12 + i, t, acked3[1 + i]);
        put_ids(&o, puts + 1 + i, 1);
    }
    for (int i = 0; i < 3; i++)
        pl__relay_core_put_done(c, puts[i], PL_OK, T0);
    drain(c, &o);
    /* a1 in flight, a2 and a3 not pushed: nothing is past here. */
    publish(c, &o, 2, T0, 20, t, "a4");
    json_t *j = frame(&o, 2, 0);
    assert_int_equal(error_code(j), PL_RELAY_ERR_HANDLER);
    json_decref(j);
    assert_int_equal(count(&o, PL__RELAY_ROOM), 0);
    assert_int_equal(stats_of(c).rooms, 0);
    /* a1 acked, a2 goes out in its place, a3 still waits. */
    ack(c, &o, 1, T0, push1);
    int64_t push2;
    assert_int_equal(push_ids(&o, 1, &push2, 1), 1);
    sendf(c, &o, 2, T0,
          "{\"id\":21,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchPublish\",\"params\":{\"messages\":"
          "[{\"topic\":\"%s\",\"message\":\"a4\",\"ttl\":300},{\"topic\":\"%s\",\"message\":"
          "\"a5\",\"ttl\":300}]}}",
          t, t);
    const pl__relay_action *room = room_of(&o, t);
    assert_non_null(room);
    assert_int_equal(room->nids, 1);
    id_of(id, "a1");
    assert_memory_equal(room->ids, id, PL_RELAY_ID_HEX);
    /* Another instance acked all three and is done with them: a3 is
     * still not past here, a2 in flight; the batch needs two: refused,
     * nothing evicted. */
    char ids[3 * PL_RELAY_ID_HEX];
    uint8_t flags[3];
    for (int i = 0; i < 3; i++) {
        id_of(id, acked3[i]);
        memcpy(ids + i * PL_RELAY_ID_HEX, id, PL_RELAY_ID_HEX);
        flags[i] = PL_RELAY_ROOM_DONE | PL_RELAY_ROOM_ACKED;
    }
    pl__relay_core_room_answer(c, t, ids, flags, 3, T0);
    drain(c, &o);
    j = frame(&o, 2, 0);
    assert_int_equal(error_code(j), PL_RELAY_ERR_HANDLER);
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 21);
    json_decref(j);
    assert_int_equal(count(&o, PL__RELAY_EVICT), 0);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT), 0);
    assert_int_equal(cached(c), 3);
    /* One message needs one: asked again (the answer was spent), a1 goes. */
    publish(c, &o, 2, T0, 22, t, "a4");
    room = room_of(&o, t);
    assert_non_null(room);
    assert_int_equal(stats_of(c).rooms, 2);
    room_answer_all(c, &o, room, PL_RELAY_ROOM_DONE, T0); /* a1 was acked here */
    assert_int_equal(count(&o, PL__RELAY_EVICT), 1);
    id_of(id, "a1");
    assert_string_equal(first(&o, PL__RELAY_EVICT)->rec.id, id);
    pl__relay_core_put_done(c, first(&o, PL__RELAY_STORE_PUT)->put_id, PL_OK, T0);
    drain(c, &o);
    j = frame(&o, 2, 0);
    assert_true(is_true_result(j));
    json_decref(j);
    /* Now a2 (in flight), a3 and a4 (not pushed): nothing past here. */
    sendf(c, &o, 2, T0,
          "{\"id\":30,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchPublish\",\"params\":{\"messages\":"
          "[{\"topic\":\"%s\",\"message\":\"a5\",\"ttl\":300}]}}",
          t);
    j = frame(&o, 2, 0);
    assert_int_equal(error_code(j), PL_RELAY_ERR_HANDLER);
    json_decref(j);
    assert_int_equal(count(&o, PL__RELAY_ROOM), 0);
    assert_int_equal(count(&o, PL__RELAY_EVICT), 0);
    assert_int_equal(cached(c), 3);
    out_free(&o);
    pl__relay_core_free(c);
}

/* What this instance answers to another's ROOM. */
static void test_room_query(void **state) {
    (void)state;
    pl__relay_limits l = cluster_limits();
    l.max_inflight_per_conn = 1;
    pl__relay_core *c = new_core_with(&l);
    out o = {0};
    char t[65], u[65], v[65];
    topic_of(t, "query");
    topic_of(u, "nobody");
    topic_of(v, "published-only");
    char ids[3 * PL_RELAY_ID_HEX + 1];
    uint8_t f[3];
    const char *const names[] = {"q1", "q2", "never-here"};
    for (int i = 0; i < 3; i++)
        id_of(ids + i * PL_RELAY_ID_HEX, names[i]);
    /* A topic this instance does not know: done with everything. */
    memset(f, 0xff, sizeof f);
    pl__relay_core_room_query(c, u, ids, 3, f);
    for (int i = 0; i < 3; i++)
        assert_int_equal(f[i], PL_RELAY_ROOM_DONE);
    assert_int_equal(pl__relay_core_open(c, 1, NULL, NULL, T0), PL_OK); /* subscriber */
    assert_int_equal(pl__relay_core_open(c, 2, NULL, NULL, T0), PL_OK); /* publisher */
    /* Subscribed, still loading: a veto. */
    subscribe(c, &o, 1, T0, t);
    memset(f, 0xff, sizeof f);
    pl__relay_core_room_query(c, t, ids, 3, f);
    for (int i = 0; i < 3; i++)
        assert_int_equal(f[i], 0);
    pl__relay_core_loaded(c, t, T0);
    drain(c, &o);
    /* q1 pushed (in flight), q2 not pushed (window of one). */
    publish(c, &o, 2, T0, 5, t, "q1");
    int64_t pid;
    assert_int_equal(push_ids(&o, 1, &pid, 1), 1);
    pl__relay_core_put_done(c, first(&o, PL__RELAY_STORE_PUT)->put_id, PL_OK, T0);
    drain(c, &o);
    publish_stored(c, &o, 2, 0, T0, 6, t, "q2");
    assert_int_equal(frames(&o, 1), 0);
    pl__relay_core_room_query(c, t, ids, 3, f);
    assert_int_equal(f[0], 0);                  /* in flight */
    assert_int_equal(f[1], 0);                  /* not pushed yet */
    assert_int_equal(f[2], PL_RELAY_ROOM_DONE); /* not in the cache of a loaded topic */
    /* Acknowledge q1: q2 goes out and is in flight. */
    ack(c, &o, 1, T0, pid);
    int64_t pid2;
    assert_int_equal(push_ids(&o, 1, &pid2, 1), 1);
    pl__relay_core_room_query(c, t, ids, 3, f);
    assert_int_equal(f[0], PL_RELAY_ROOM_DONE | PL_RELAY_ROOM_ACKED);
    assert_int_equal(f[1], 0); /* in flight */
    ack(c, &o, 1, T0, pid2);
    pl__relay_core_room_query(c, t, ids, 3, f);
    assert_int_equal(f[1], PL_RELAY_ROOM_DONE | PL_RELAY_ROOM_ACKED);
    /* A topic here without subscribers (published to, lingering): done,
     * not acked. */
    publish(c, &o, 2, T0, 8, v, "pv");
    pl__relay_core_loaded(c, v, T0);
    drain(c, &o);
    pl__relay_core_put_done(c, first(&o, PL__RELAY_STORE_PUT)->put_id, PL_OK, T0);
    drain(c, &o);
    assert_int_equal(cached(c), 3);
    char pv[65];
    id_of(pv, "pv");
    pl__relay_core_room_query(c, v, pv, 1, f);
    assert_int_equal(f[0], PL_RELAY_ROOM_DONE);
    out_free(&o);
    pl__relay_core_free(c);
}

/* Another instance evicted a message: it leaves the cache and a fetch no
 * longer returns it; a message whose own put is out stays. */
static void test_evicted(void **state) {
    (void)state;
    pl__relay_core *c = new_core();
    out o = {0};
    char t[65], id[65], other[65];
    topic_of(t, "evicted");
    topic_of(other, "unknown");
    assert_int_equal(pl__relay_core_open(c, 1, NULL, NULL, T0), PL_OK);
    assert_int_equal(pl__relay_core_open(c, 2, NULL, NULL, T0), PL_OK);
    subscribe(c, &o, 1, T0, t);
    pl__relay_record r1 = rec_of(t, "e1", T0 - 2, 300), r2 = rec_of(t, "e2", T0 - 1, 300);
    assert_int_equal(pl__relay_core_ingest(c, &r1, 0, T0), PL_OK);
    assert_int_equal(pl__relay_core_ingest(c, &r2, 0, T0), PL_OK);
    pl__relay_core_loaded(c, t, T0);
    drain(c, &o);
    assert_int_equal(cached(c), 2);
    id_of(id, "e1");
    pl__relay_core_evicted(c, other, id); /* unknown topic: nothing */
    assert_int_equal(cached(c), 2);
    pl__relay_core_evicted(c, t, id);
    assert_int_equal(cached(c), 1);
    pl__relay_core_evicted(c, t, id); /* twice: nothing */
    assert_int_equal(cached(c), 1);
    fetch_topic(c, &o, 2, T0, 9, t);
    json_t *j = frame(&o, 2, 0);
    json_t *msgs = json_object_get(json_object_get(j, "result"), "messages");
    assert_int_equal(json_array_size(msgs), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "message")),
                        "e2");
    json_decref(j);
    /* A message still putting is kept. */
    publish(c, &o, 2, T0, 10, t, "e3");
    uint64_t put = first(&o, PL__RELAY_STORE_PUT)->put_id;
    id_of(id, "e3");
    pl__relay_core_evicted(c, t, id);
    assert_int_equal(cached(c), 2);
    pl__relay_core_put_done(c, put, PL_OK, T0);
    drain(c, &o);
    j = frame(&o, 2, 0);
    assert_true(is_true_result(j));
    json_decref(j);
    assert_int_equal(cached(c), 2);
    out_free(&o);
    pl__relay_core_free(c);
}

/* EVICT carries where the store keeps the message: set by stored_at, or
 * by a delivery of a duplicate that names it. */
static void test_evict_carries_store_ref(void **state) {
    (void)state;
    pl__relay_limits l = cluster_limits();
    l.max_mailbox_per_topic = 3;
    pl__relay_core *c = new_core_with(&l);
    out o = {0};
    char t[65], id[65];
    topic_of(t, "ref");
    assert_int_equal(pl__relay_core_open(c, 1, NULL, NULL, T0), PL_OK);
    assert_int_equal(pl__relay_core_open(c, 2, NULL, NULL, T0), PL_OK);
    fill_acked(c, &o, 1, 2, t, acked3, 3);
    id_of(id, "a1");
    pl__relay_core_stored_at(c, t, id, 77);
    /* a2's echo from the store names where it is. */
    pl__relay_record echo = rec_of(t, "a2", T0, 300);
    echo.store_ref = 88;
    assert_int_equal(pl__relay_core_ingest(c, &echo, 0, T0), PL_ERR_EXISTS);
    sendf(c, &o, 2, T0,
          "{\"id\":30,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchPublish\",\"params\":{\"messages\":"
          "[{\"topic\":\"%s\",\"message\":\"a4\",\"ttl\":300},{\"topic\":\"%s\",\"message\":"
          "\"a5\",\"ttl\":300}]}}",
          t, t);
    const pl__relay_action *room = room_of(&o, t);
    assert_non_null(room);
    room_answer_all(c, &o, room, PL_RELAY_ROOM_DONE | PL_RELAY_ROOM_ACKED, T0);
    assert_int_equal(count(&o, PL__RELAY_EVICT), 2);
    int seen = 0;
    for (size_t i = 0; i < o.n; i++) {
        if (o.a[i].kind != PL__RELAY_EVICT) continue;
        assert_int_equal(o.a[i].rec.store_ref, seen == 0 ? 77 : 88);
        id_of(id, seen == 0 ? "a1" : "a2");
        assert_string_equal(o.a[i].rec.id, id);
        seen++;
    }
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT), 2);
    out_free(&o);
    pl__relay_core_free(c);
}

/* A batch on two full topics waits for both ROOM answers and is all or
 * nothing: one topic cleared, the other not: refused, nothing evicted;
 * both cleared: both evict and store. */
static void test_batch_two_full_topics(void **state) {
    (void)state;
    pl__relay_limits l = cluster_limits();
    l.max_mailbox_per_topic = 2;
    pl__relay_core *c = new_core_with(&l);
    out o = {0};
    char t[65], u[65];
    topic_of(t, "two-t");
    topic_of(u, "two-u");
    assert_int_equal(pl__relay_core_open(c, 1, NULL, NULL, T0), PL_OK);
    assert_int_equal(pl__relay_core_open(c, 2, NULL, NULL, T0), PL_OK);
    static const char *const mt[] = {"t1", "t2"}, *const mu[] = {"u1", "u2"};
    fill_acked(c, &o, 1, 2, t, mt, 2);
    out_clear(&o);
    subscribe(c, &o, 1, T0, u);
    pl__relay_core_loaded(c, u, T0);
    drain(c, &o);
    for (int i = 0; i < 2; i++)
        publish_stored(c, &o, 2, 1, T0, 40 + i, u, mu[i]);
    assert_int_equal(cached(c), 4);
    const char *batch = "{\"id\":%d,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchPublish\",\"params\":"
                        "{\"messages\":[{\"topic\":\"%s\",\"message\":\"%s\",\"ttl\":300},"
                        "{\"topic\":\"%s\",\"message\":\"%s\",\"ttl\":300}]}}";
    char buf[1024];
    snprintf(buf, sizeof buf, batch, 60, t, "t3", u, "u3");
    (void)pl__relay_core_receive(c, 2, buf, strlen(buf), T0);
    drain(c, &o);
    assert_int_equal(count(&o, PL__RELAY_ROOM), 2);
    assert_int_equal(frames(&o, 2), 0);
    pl__relay_action rt = room_copy(room_of(&o, t)), ru = room_copy(room_of(&o, u));
    room_answer_all(c, &o, &rt, PL_RELAY_ROOM_DONE | PL_RELAY_ROOM_ACKED, T0);
    assert_int_equal(o.n, 0); /* still waits for u's */
    room_answer_all(c, &o, &ru, 0, T0);
    json_t *j = frame(&o, 2, 0);
    assert_int_equal(error_code(j), PL_RELAY_ERR_HANDLER);
    json_decref(j);
    assert_int_equal(count(&o, PL__RELAY_EVICT), 0);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT), 0);
    assert_int_equal(cached(c), 4);
    /* Again, both cleared (the first answers were spent: asked again). */
    snprintf(buf, sizeof buf, batch, 61, t, "t3", u, "u3");
    (void)pl__relay_core_receive(c, 2, buf, strlen(buf), T0);
    drain(c, &o);
    assert_int_equal(count(&o, PL__RELAY_ROOM), 2);
    assert_int_equal(stats_of(c).rooms, 4);
    free(rt.ids);
    free(ru.ids);
    rt = room_copy(room_of(&o, t));
    ru = room_copy(room_of(&o, u));
    room_answer_all(c, &o, &ru, PL_RELAY_ROOM_DONE | PL_RELAY_ROOM_ACKED, T0);
    assert_int_equal(o.n, 0);
    room_answer_all(c, &o, &rt, PL_RELAY_ROOM_DONE | PL_RELAY_ROOM_ACKED, T0);
    assert_int_equal(count(&o, PL__RELAY_EVICT), 2);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT), 2);
    assert_int_equal(frames(&o, 2), 0);
    uint64_t puts[2];
    assert_int_equal(put_ids(&o, puts, 2), 2);
    pl__relay_core_put_done(c, puts[0], PL_OK, T0);
    pl__relay_core_put_done(c, puts[1], PL_OK, T0);
    drain(c, &o);
    j = frame(&o, 2, 0);
    assert_true(is_true_result(j));
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 61);
    json_decref(j);
    assert_int_equal(cached(c), 4);
    free(rt.ids);
    free(ru.ids);
    out_free(&o);
    pl__relay_core_free(c);
}

/* The connection whose request waits for a ROOM goes: the answer is
 * harmless (no frame, nothing evicted, nothing stored) and the topic is
 * free again: the next publish asks its own ROOM (the spent answer does
 * not evict without one). */
static void test_close_while_room_out(void **state) {
    (void)state;
    pl__relay_limits l = cluster_limits();
    l.max_mailbox_per_topic = 3;
    pl__relay_core *c = new_core_with(&l);
    out o = {0};
    char t[65];
    topic_of(t, "closing");
    assert_int_equal(pl__relay_core_open(c, 1, NULL, NULL, T0), PL_OK);
    assert_int_equal(pl__relay_core_open(c, 2, NULL, NULL, T0), PL_OK);
    assert_int_equal(pl__relay_core_open(c, 3, NULL, NULL, T0), PL_OK);
    fill_acked(c, &o, 1, 2, t, acked3, 3);
    publish(c, &o, 2, T0, 50, t, "a4");
    pl__relay_action room = room_copy(room_of(&o, t));
    pl__relay_core_close(c, 2);
    drain(c, &o);
    room_answer_all(c, &o, &room, PL_RELAY_ROOM_DONE | PL_RELAY_ROOM_ACKED, T0);
    assert_int_equal(frames(&o, 2), 0);
    assert_int_equal(count(&o, PL__RELAY_EVICT), 0);
    assert_int_equal(count(&o, PL__RELAY_STORE_PUT), 0);
    assert_int_equal(cached(c), 3);
    free(room.ids);
    /* The flags were spent: another publish asks again before evicting. */
    publish(c, &o, 3, T0, 51, t, "a4");
    assert_int_equal(count(&o, PL__RELAY_EVICT), 0);
    assert_int_equal(count(&o, PL__RELAY_ROOM), 1);
    assert_int_equal(stats_of(c).rooms, 2);
    room = room_copy(room_of(&o, t));
    room_answer_all(c, &o, &room, PL_RELAY_ROOM_DONE | PL_RELAY_ROOM_ACKED, T0);
    free(room.ids);
    assert_int_equal(count(&o, PL__RELAY_EVICT), 1);
    pl__relay_core_put_done(c, first(&o, PL__RELAY_STORE_PUT)->put_id, PL_OK, T0);
    drain(c, &o);
    json_t *j = frame(&o, 3, 0);
    assert_true(is_true_result(j));
    json_decref(j);
    /* The same with the answer arriving after the connection closed and
     * the topic's subscriber left too: nothing happens. */
    publish(c, &o, 3, T0, 52, t, "a5");
    room = room_copy(room_of(&o, t));
    pl__relay_core_close(c, 3);
    pl__relay_core_close(c, 1);
    drain(c, &o);
    room_answer_all(c, &o, &room, PL_RELAY_ROOM_DONE | PL_RELAY_ROOM_ACKED, T0);
    free(room.ids);
    assert_int_equal(count(&o, PL__RELAY_SEND), 0);
    assert_int_equal(count(&o, PL__RELAY_EVICT), 0);
    pl__relay_core_tick(c, T0 + PL_RELAY_DEF_CLUSTER_LINGER_MS);
    drain(c, &o);
    assert_int_equal(cached_topics(c), 0);
    assert_int_equal(stats_of(c).memory, 0);
    out_free(&o);
    pl__relay_core_free(c);
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
        cmocka_unit_test(test_publish_parks_in_order),
        cmocka_unit_test(test_parked_fetch_before_publish),
        cmocka_unit_test(test_load_failed),
        cmocka_unit_test(test_linger),
        cmocka_unit_test(test_linger_ends_with_put_out),
        cmocka_unit_test(test_limit_counts_all_ttls),
        cmocka_unit_test(test_room_evicts_acked),
        cmocka_unit_test(test_evict_precedes_put),
        cmocka_unit_test(test_room_timeout_refuses),
        cmocka_unit_test(test_room_not_past_here),
        cmocka_unit_test(test_room_query),
        cmocka_unit_test(test_evicted),
        cmocka_unit_test(test_evict_carries_store_ref),
        cmocka_unit_test(test_batch_two_full_topics),
        cmocka_unit_test(test_close_while_room_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
