/* SPDX-License-Identifier: Apache-2.0 */
/* The WalletConnect relay client.
 *
 * Most of it is the core (src/transport/wc_relay/client_core.h) driven with
 * explicit time and hand-made relay frames: connect path and JWT, queue and
 * resend, rate-limit pauses, backoff, pings, de-duplication, topic names,
 * frames, limits, close. No socket, no sleep.
 *
 * The few behaviours that need a real socket (the libwebsockets runtime:
 * upgrade refused, a close code, TLS, name resolution, a frozen relay, a
 * graceful close) run against `pairlink relay` on 127.0.0.1, in its faulty
 * modes (--fault) where a relay must misbehave. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pairlink/codec.h"
#include "pairlink/crypto.h"
#include "pairlink/driver.h"
#include "pairlink/hash.h"
#include "pairlink/jsonrpc.h"
#include "pairlink/log.h"
#include "pairlink/relay_client.h"
#include "support/support.h"
#include "transport/wc_relay/client_core.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#define T0 INT64_C(1700000000000)
#define URL "ws://relay.test:8787"

static const uint8_t SEED_A[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t SEED_B[32] = {32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17,
                                   16, 15, 14, 13, 12, 11, 10, 9,  8,  7,  6,  5,  4,  3,  2,  1};

static bool verbose(void) {
    return getenv("PL_TEST_VERBOSE") != NULL;
}

static void test_rng(void *ctx, uint8_t *buf, size_t len) {
    pl_test_rand_bytes((uint64_t *)ctx, buf, len);
}

static uint64_t rng_state;

/* ======================================================================== */
/* The core with explicit time                                              */
/* ======================================================================== */

#define MAXOUT 256

typedef struct fx {
    pl__rc *c;
    int64_t now;
    pl__rc_output out[MAXOUT];
    size_t n;
} fx;

static pl__rc_config base_cfg(void) {
    pl__rc_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.url = URL;
    cfg.seed = SEED_A;
    cfg.rng = test_rng;
    cfg.rng_ctx = &rng_state;
    return cfg;
}

static void fx_clear(fx *f) {
    for (size_t i = 0; i < f->n; i++)
        pl__rc_output_clear(&f->out[i]);
    f->n = 0;
}

/* Take every output produced so far (the previous ones are dropped). */
static void collect(fx *f) {
    fx_clear(f);
    pl__rc_output o;
    while (pl__rc_poll(f->c, &o)) {
        assert_true(f->n < MAXOUT);
        f->out[f->n++] = o;
    }
}

static size_t count(const fx *f, pl__rc_out_kind k) {
    size_t n = 0;
    for (size_t i = 0; i < f->n; i++)
        n += f->out[i].kind == k;
    return n;
}

static const pl__rc_output *find(const fx *f, pl__rc_out_kind k, size_t nth) {
    for (size_t i = 0; i < f->n; i++)
        if (f->out[i].kind == k && nth-- == 0) return &f->out[i];
    return NULL;
}

static void fx_new(fx *f, const pl__rc_config *cfg) {
    memset(f, 0, sizeof *f);
    f->now = T0;
    assert_int_equal(pl__rc_new(&f->c, cfg, f->now), PL_OK);
}

static void fx_free(fx *f) {
    fx_clear(f);
    pl__rc_free(f->c);
}

/* Run the timer at `at` if it is due, then collect. */
static void tick(fx *f, int64_t at) {
    f->now = at;
    if (pl__rc_next_deadline(f->c) <= at) pl__rc_on_timer(f->c, at);
    collect(f);
}

/* Connect and open: the CONNECT output, then on_open. */
static void fx_open(fx *f) {
    tick(f, pl__rc_next_deadline(f->c) > f->now ? pl__rc_next_deadline(f->c) : f->now);
    assert_int_equal(count(f, PL__RC_CONNECT), 1);
    pl__rc_on_open(f->c, f->now);
    collect(f);
    const pl__rc_output *st = find(f, PL__RC_STATE, 0);
    assert_non_null(st);
    assert_int_equal(st->state, PL_TRANSPORT_CONNECTED);
}

/* Feed one text frame from the relay. */
static void frame(fx *f, const char *text) {
    pl__rc_on_data(f->c, text, strlen(text), false, true, f->now);
    collect(f);
}

/* The nth SEND, decoded (caller frees with pl_rpc_msgs_free(m, 1)). */
static pl_rpc_msg *sent(const fx *f, size_t nth) {
    const pl__rc_output *o = find(f, PL__RC_SEND, nth);
    assert_non_null(o);
    pl_rpc_msg *m = NULL;
    size_t n = 0;
    bool batch;
    assert_int_equal(pl_rpc_decode(&m, &n, &batch, o->text, o->len), PL_OK);
    assert_int_equal(n, 1);
    return m;
}

static json_t *params_of(const pl_rpc_msg *m) {
    json_t *p = json_loads(m->params, 0, NULL);
    assert_non_null(p);
    return p;
}

static void reply_result(fx *f, int64_t id, const char *result) {
    char buf[512];
    snprintf(buf, sizeof buf, "{\"id\":%lld,\"jsonrpc\":\"2.0\",\"result\":%s}", (long long)id,
             result);
    frame(f, buf);
}

static void reply_error(fx *f, int64_t id, int code) {
    char buf[512];
    snprintf(buf, sizeof buf,
             "{\"id\":%lld,\"jsonrpc\":\"2.0\",\"error\":{\"code\":%d,\"message\":\"no\"}}",
             (long long)id, code);
    frame(f, buf);
}

static void push(fx *f, int64_t id, const char *topic, const char *message, int tag) {
    char buf[2048];
    snprintf(
        buf, sizeof buf,
        "{\"id\":%lld,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscription\",\"params\":{\"id\":"
        "\"sub\",\"data\":{\"topic\":\"%s\",\"message\":\"%s\",\"publishedAt\":%lld,\"tag\":%d}}}",
        (long long)id, topic, message, (long long)(f->now - 5), tag);
    frame(f, buf);
}

static void b64_of(char *out, size_t cap, const char *text) {
    assert_int_equal(pl_base64_encode(out, cap, (const uint8_t *)text, strlen(text), PL_B64_STD),
                     PL_OK);
}

/* ---- pure helpers ---- */

static void test_url_parse(void **state) {
    (void)state;
    pl__relay_url u;
    assert_int_equal(pl__relay_url_parse(&u, "ws://127.0.0.1:8787"), PL_OK);
    assert_false(u.tls);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 8787);
    assert_string_equal(u.path, "/");
    assert_string_equal(u.host_header, "127.0.0.1:8787");
    assert_false(u.has_query);

    assert_int_equal(pl__relay_url_parse(&u, "WSS://relay.walletconnect.org"), PL_OK);
    assert_true(u.tls);
    assert_int_equal(u.port, 443);
    assert_string_equal(u.host_header, "relay.walletconnect.org");

    assert_int_equal(pl__relay_url_parse(&u, "wss://[::1]:9000/v1?x=1"), PL_OK);
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.host_header, "[::1]:9000");
    assert_string_equal(u.path, "/v1?x=1");
    assert_true(u.has_query);

    assert_int_equal(pl__relay_url_parse(&u, "ws://h?y=2"), PL_OK);
    assert_string_equal(u.path, "/?y=2");

    static const char *bad[] = {
        "",          "http://x", "ws://",     "ws://:80", "ws://h:",   "ws://h:0", "ws://h:65536",
        "ws://h:8a", "ws://u@h", "ws://h/#f", "ws://h /", "ws://[::1", "ws://[]",  "ws://h$x",
        "wsx://h",   "ftp://h",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(pl__relay_url_parse(&u, bad[i]), PL_ERR_BAD_URL);
    }
    char longu[PL_RELAY_URL_MAX + 16];
    memcpy(longu, "ws://h/", 7);
    memset(longu + 7, 'a', sizeof longu - 8);
    longu[sizeof longu - 1] = '\0';
    assert_int_equal(pl__relay_url_parse(&u, longu), PL_ERR_BAD_URL);
    assert_int_equal(pl__relay_url_parse(&u, NULL), PL_ERR_BAD_URL);
}

static void test_dedup_lru(void **state) {
    (void)state;
    static const uint8_t key[16] = {7};
    pl__dedup *d;
    assert_int_equal(pl__dedup_new(&d, 3, key), PL_OK);
    uint8_t k[5][32];
    for (int i = 0; i < 5; i++)
        pl__relay_dedup_key(k[i], "t", (const char *)&"abcde"[i], 1);
    assert_false(pl__dedup_check(d, k[0]));
    assert_false(pl__dedup_check(d, k[1]));
    assert_false(pl__dedup_check(d, k[2]));
    assert_true(pl__dedup_check(d, k[0]));  /* 0 becomes most recent */
    assert_false(pl__dedup_check(d, k[3])); /* evicts 1, the least recent */
    assert_int_equal(pl__dedup_size(d), 3);
    assert_true(pl__dedup_check(d, k[0]));
    assert_true(pl__dedup_check(d, k[2]));
    assert_true(pl__dedup_check(d, k[3]));
    assert_false(pl__dedup_check(d, k[1])); /* was evicted; evicts 0 now */
    assert_false(pl__dedup_check(d, k[0]));
    pl__dedup_free(d);

    /* The key separates topic from message. */
    uint8_t a[32], b[32];
    pl__relay_dedup_key(a, "ab", "c", 1);
    pl__relay_dedup_key(b, "a", "bc", 2);
    assert_memory_not_equal(a, b, 32);

    /* Randomized: a large LRU against a brute-force model. */
    uint64_t seed = pl_test_seed();
    assert_int_equal(pl__dedup_new(&d, 64, key), PL_OK);
    uint32_t model[64];
    size_t mlen = 0;
    for (int i = 0; i < 20000; i++) {
        uint32_t v = (uint32_t)(pl_test_rand(&seed) % 200);
        uint8_t dk[32] = {0};
        memcpy(dk, &v, sizeof v);
        bool in_model = false;
        size_t at = 0;
        for (size_t j = 0; j < mlen; j++) {
            if (model[j] == v) {
                in_model = true;
                at = j;
            }
        }
        assert_int_equal(pl__dedup_check(d, dk), in_model);
        if (in_model) {
            memmove(&model[at], &model[at + 1], (mlen - at - 1) * sizeof model[0]);
            mlen--;
        } else if (mlen == 64) {
            memmove(&model[0], &model[1], 63 * sizeof model[0]); /* drop least recent */
            mlen--;
        }
        model[mlen++] = v; /* most recent at the end */
    }
    pl__dedup_free(d);
}

static void test_backoff(void **state) {
    (void)state;
    for (unsigned a = 0; a < 40; a++) {
        uint32_t lo = UINT32_MAX, hi = 0;
        for (uint32_t r = 0; r < 2000; r += 7) {
            uint32_t v = pl__relay_backoff_ms(a, 1000, 30000, r * 2654435761u);
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
        uint64_t b = 1000ull << (a < 20 ? a : 20);
        if (b > 30000) b = 30000;
        assert_true(lo >= b / 2);
        assert_true(hi <= b);
        assert_true(hi > lo); /* jittered */
    }
}

static void test_relay_topic(void **state) {
    (void)state;
    char got[PL_TOPIC_HEX_SIZE], want[PL_TOPIC_HEX_SIZE];
    uint8_t h[32];
    /* a content topic: hex(sha256(name)) (spec section 4.3) */
    const char *ct = "/pairlink/1/pair-00112233445566778899aabbccddeeff/proto";
    pl_sha256(h, (const uint8_t *)ct, strlen(ct));
    assert_int_equal(pl_hex_encode(want, sizeof want, h, 32), PL_OK);
    assert_int_equal(pl_relay_topic(got, ct), PL_OK);
    assert_string_equal(got, want);
    /* a WalletConnect topic passes unchanged; upper case is just a name */
    char hex[65];
    memset(hex, 'a', 64);
    hex[64] = '\0';
    assert_int_equal(pl_relay_topic(got, hex), PL_OK);
    assert_string_equal(got, hex);
    memset(hex, 'A', 64);
    assert_int_equal(pl_relay_topic(got, hex), PL_OK);
    assert_string_not_equal(got, hex);
    assert_int_equal(strlen(got), 64);
    /* names the transport refuses */
    assert_int_equal(pl_relay_topic(got, ""), PL_ERR_INVALID_ARG);
    assert_string_equal(got, "");
    assert_int_equal(pl_relay_topic(got, "a b"), PL_ERR_INVALID_ARG);
    char longt[PL_TRANSPORT_TOPIC_MAX + 2];
    memset(longt, 'a', sizeof longt - 1);
    longt[sizeof longt - 1] = '\0';
    assert_int_equal(pl_relay_topic(got, longt), PL_ERR_INVALID_ARG);
    longt[PL_TRANSPORT_TOPIC_MAX] = '\0';
    assert_int_equal(pl_relay_topic(got, longt), PL_OK);
}

/* ---- the core ---- */

static void test_core_connect_path_and_jwt(void **state) {
    (void)state;
    pl__rc_config cfg = base_cfg();
    cfg.project_id = "test-project_1";
    fx f;
    fx_new(&f, &cfg);
    /* nothing before the driver runs the first deadline, which is now */
    collect(&f);
    assert_int_equal(f.n, 0);
    assert_int_equal(pl__rc_next_deadline(f.c), T0);
    pl_err err;
    assert_int_equal(pl__rc_state(f.c, &err), PL_TRANSPORT_CONNECTING);
    tick(&f, T0);
    const pl__rc_output *o = find(&f, PL__RC_CONNECT, 0);
    assert_non_null(o);
    assert_int_equal(f.n, 1);
    const char *auth = strstr(o->text, "?auth=");
    assert_ptr_equal(auth, o->text + 1);
    assert_non_null(strstr(o->text, "&projectId=test-project_1&ua=" PL_RELAY_USER_AGENT
                                    "&useOnCloseEvent=true"));
    char jwt[1024];
    snprintf(jwt, sizeof jwt, "%.*s", (int)strcspn(auth + 6, "&"), auth + 6);
    pl_jwt_claims cl;
    assert_int_equal(pl_jwt_verify(&cl, jwt, strlen(jwt), URL, T0 / 1000, 0), PL_OK);
    assert_string_equal(cl.iss, pl__rc_did(f.c));
    assert_int_equal(cl.iat, T0 / 1000);
    assert_int_equal(strlen(cl.sub), 64);
    /* a connect time-out drops the attempt and backs off */
    assert_int_equal(pl__rc_next_deadline(f.c), T0 + 15000);
    tick(&f, T0 + 15000);
    assert_int_equal(count(&f, PL__RC_DROP), 1);
    o = find(&f, PL__RC_STATE, 0);
    assert_int_equal(o->state, PL_TRANSPORT_RECONNECTING);
    assert_int_equal(o->err, PL_ERR_TIMEOUT);
    fx_free(&f);

    /* a given token, a URL with a query of its own */
    cfg = base_cfg();
    cfg.url = "ws://relay.test/v2?x=1";
    cfg.jwt = "aaa.bbb.ccc";
    fx_new(&f, &cfg);
    tick(&f, T0);
    o = find(&f, PL__RC_CONNECT, 0);
    assert_string_equal(o->text,
                        "/v2?x=1&auth=aaa.bbb.ccc&ua=" PL_RELAY_USER_AGENT "&useOnCloseEvent=true");
    fx_free(&f);

    /* options refused at creation */
    pl__rc *c = (pl__rc *)&f;
    cfg = base_cfg();
    cfg.project_id = "bad id";
    assert_int_equal(pl__rc_new(&c, &cfg, T0), PL_ERR_INVALID_ARG);
    assert_null(c);
    cfg = base_cfg();
    cfg.jwt = "a b";
    assert_int_equal(pl__rc_new(&c, &cfg, T0), PL_ERR_INVALID_ARG);
    cfg = base_cfg();
    cfg.url = "http://x";
    assert_int_equal(pl__rc_new(&c, &cfg, T0), PL_ERR_BAD_URL);
}

static void test_core_subscribe_publish(void **state) {
    (void)state;
    pl__rc_config cfg = base_cfg();
    fx f;
    fx_new(&f, &cfg);
    char hex[65];
    memset(hex, 'b', 64);
    hex[64] = '\0';
    const char *name = "/pairlink/1/rv-00000000000000000000000000000000/proto";
    char mapped[65];
    assert_int_equal(pl_relay_topic(mapped, name), PL_OK);
    assert_int_equal(pl__rc_subscribe(f.c, name, f.now), PL_OK);
    assert_int_equal(pl__rc_subscribe(f.c, name, f.now), PL_OK); /* idempotent */
    assert_int_equal(pl__rc_subscribe(f.c, hex, f.now), PL_OK);
    /* a hex name equal to another name's relay topic cannot share it */
    assert_int_equal(pl__rc_subscribe(f.c, mapped, f.now), PL_ERR_EXISTS);
    /* published before the connection: queued */
    pl_wc_relay_publish_ext x = {{PL_TRANSPORT_EXT_WC_RELAY}, 1108, true};
    pl_publish_opts po = {.ttl_s = 300, .ext = &x.ext};
    uint64_t seq = 0;
    assert_int_equal(pl__rc_publish(f.c, hex, (const uint8_t *)"\x00\x01\xff", 3, &po, f.now, &seq),
                     PL_OK);
    assert_int_equal(seq, 1);
    assert_int_equal(pl__rc_pending(f.c), 1);
    fx_open(&f);
    /* after the open: every topic in one batch, then the queue, in order */
    assert_int_equal(count(&f, PL__RC_SEND), 2);
    pl_rpc_msg *m = sent(&f, 0);
    assert_string_equal(m->method, "irn_batchSubscribe");
    json_t *p = params_of(m);
    json_t *topics = json_object_get(p, "topics");
    assert_int_equal(json_array_size(topics), 2);
    assert_string_equal(json_string_value(json_array_get(topics, 0)), mapped);
    assert_string_equal(json_string_value(json_array_get(topics, 1)), hex);
    json_decref(p);
    int64_t batch_id = m->id.num;
    pl_rpc_msgs_free(m, 1);
    m = sent(&f, 1);
    assert_string_equal(m->method, "irn_publish");
    p = params_of(m);
    assert_string_equal(json_string_value(json_object_get(p, "topic")), hex);
    assert_string_equal(json_string_value(json_object_get(p, "message")), "AAH/");
    assert_int_equal(json_integer_value(json_object_get(p, "ttl")), 300);
    assert_int_equal(json_integer_value(json_object_get(p, "tag")), 1108);
    assert_true(json_is_true(json_object_get(p, "prompt")));
    json_decref(p);
    int64_t pub_id = m->id.num;
    assert_true(pub_id < batch_id); /* ids strictly increase: the publish was made first */
    pl_rpc_msgs_free(m, 1);
    reply_result(&f, batch_id, "[\"s1\",\"s2\"]");
    assert_int_equal(f.n, 0);
    reply_result(&f, pub_id, "true");
    const pl__rc_output *r = find(&f, PL__RC_RESULT, 0);
    assert_non_null(r);
    assert_int_equal(r->op, PL_RELAY_OP_PUBLISH);
    assert_int_equal(r->seq, 1);
    assert_int_equal(r->err, PL_OK);
    assert_string_equal(r->topic, hex);
    assert_int_equal(pl__rc_pending(f.c), 0);
    /* a second answer to the same id is not ours any more */
    reply_result(&f, pub_id, "true");
    assert_int_equal(f.n, 0);

    /* unsubscribe uses the relay's subscription id */
    assert_int_equal(pl__rc_unsubscribe(f.c, name, f.now), PL_OK);
    collect(&f);
    m = sent(&f, 0);
    assert_string_equal(m->method, "irn_unsubscribe");
    p = params_of(m);
    assert_string_equal(json_string_value(json_object_get(p, "topic")), mapped);
    assert_string_equal(json_string_value(json_object_get(p, "id")), "s1");
    json_decref(p);
    pl_rpc_msgs_free(m, 1);
    assert_int_equal(pl__rc_unsubscribe(f.c, name, f.now), PL_OK); /* idempotent */
    collect(&f);
    assert_int_equal(f.n, 0);

    /* subscribe while open: at once; unsubscribe before its answer: the
     * answer's id is unsubscribed then */
    assert_int_equal(pl__rc_subscribe(f.c, name, f.now), PL_OK);
    collect(&f);
    m = sent(&f, 0);
    assert_string_equal(m->method, "irn_subscribe");
    int64_t sub_id = m->id.num;
    pl_rpc_msgs_free(m, 1);
    assert_int_equal(pl__rc_unsubscribe(f.c, name, f.now), PL_OK);
    collect(&f);
    assert_int_equal(f.n, 0);
    reply_result(&f, sub_id, "\"s3\"");
    m = sent(&f, 0);
    assert_string_equal(m->method, "irn_unsubscribe");
    p = params_of(m);
    assert_string_equal(json_string_value(json_object_get(p, "id")), "s3");
    json_decref(p);
    pl_rpc_msgs_free(m, 1);
    fx_free(&f);
}

static void test_core_delivery(void **state) {
    (void)state;
    pl__rc_config cfg = base_cfg();
    fx f;
    fx_new(&f, &cfg);
    const char *name = "/pairlink/1/pair-11111111111111111111111111111111/proto";
    char mapped[65];
    assert_int_equal(pl_relay_topic(mapped, name), PL_OK);
    assert_int_equal(pl__rc_subscribe(f.c, name, f.now), PL_OK);
    fx_open(&f);
    char b64[64];
    b64_of(b64, sizeof b64, "hello");
    push(&f, 42, mapped, b64, 7);
    /* acknowledged first, then delivered under the name it was subscribed by */
    pl_rpc_msg *m = sent(&f, 0);
    assert_int_equal(m->kind, PL_RPC_RESULT);
    assert_int_equal(m->id.num, 42);
    assert_string_equal(m->result, "true");
    pl_rpc_msgs_free(m, 1);
    const pl__rc_output *o = find(&f, PL__RC_MESSAGE, 0);
    assert_non_null(o);
    assert_string_equal(o->topic, name);
    assert_string_equal(o->relay_topic, mapped);
    assert_int_equal(o->err, PL_OK);
    assert_int_equal(o->data_len, 5);
    assert_memory_equal(o->data, "hello", 5);
    assert_int_equal(o->tag, 7);
    assert_int_equal(o->published_at, f.now - 5);
    /* at-least-once: the same message again (another push id) is acked, not delivered */
    push(&f, 43, mapped, b64, 7);
    assert_int_equal(count(&f, PL__RC_SEND), 1);
    assert_int_equal(count(&f, PL__RC_MESSAGE), 0);
    pl_relay_client_stats st;
    pl__rc_stats(f.c, &st);
    assert_int_equal(st.delivered, 1);
    assert_int_equal(st.duplicates, 1);
    /* not base64: an undecodable arrival, still acknowledged */
    push(&f, 44, mapped, "not base64!", 0);
    assert_int_equal(count(&f, PL__RC_SEND), 1);
    o = find(&f, PL__RC_MESSAGE, 0);
    assert_non_null(o);
    assert_int_equal(o->err, PL_ERR_BAD_BASE64);
    assert_null(o->data);
    /* a topic we are not subscribed to: acknowledged only */
    char other[65];
    memset(other, 'c', 64);
    other[64] = '\0';
    push(&f, 45, other, b64, 0);
    assert_int_equal(count(&f, PL__RC_SEND), 1);
    assert_int_equal(count(&f, PL__RC_MESSAGE), 0);
    /* a tag out of range is read as 0; a push without an id is not answered */
    frame(&f, "{\"jsonrpc\":\"2.0\",\"method\":\"irn_subscription\",\"params\":{\"data\":"
              "{\"topic\":\"x\",\"message\":\"AA==\"}}}");
    assert_int_equal(f.n, 0);
    /* any other request from the relay: method not found */
    frame(&f, "{\"id\":9,\"jsonrpc\":\"2.0\",\"method\":\"irn_other\",\"params\":{}}");
    m = sent(&f, 0);
    assert_int_equal(m->kind, PL_RPC_ERROR);
    assert_int_equal(m->err_code, -32601);
    pl_rpc_msgs_free(m, 1);
    /* garbage frames change nothing */
    frame(&f, "{not json");
    frame(&f, "[1,2]");
    assert_int_equal(f.n, 0);
    fx_free(&f);
}

/* A hostile relay that pushes and never reads (issue 11, hole 8): the
 * answers to its pushes wait in the runtime's queue, counted by the core
 * until written, and past max_unsent_bytes the connection is dropped (its
 * queue with it) rather than the client's memory growing. Written bytes
 * give room back. */
static void test_core_unread_answers_bounded(void **state) {
    (void)state;
    pl__rc_config cfg = base_cfg();
    cfg.max_unsent_bytes = 2000;
    fx f;
    fx_new(&f, &cfg);
    char mapped[65];
    memset(mapped, 'a', 64);
    mapped[64] = '\0';
    assert_int_equal(pl__rc_subscribe(f.c, mapped, f.now), PL_OK);
    fx_open(&f);
    size_t written = 0;
    const pl__rc_output *sub = find(&f, PL__RC_SEND, 0);
    assert_non_null(sub);
    pl__rc_on_written(f.c, sub->len); /* the relay read the subscribe */
    /* A relay that reads: any number of pushes. */
    for (int i = 0; i < 200; i++) {
        char b64[64];
        char text[16];
        snprintf(text, sizeof text, "r%d", i);
        b64_of(b64, sizeof b64, text);
        push(&f, 100 + i, mapped, b64, 0);
        const pl__rc_output *a = find(&f, PL__RC_SEND, 0);
        assert_non_null(a);
        pl__rc_on_written(f.c, a->len);
        written += a->len;
    }
    assert_true(written > 2000);
    assert_int_equal(count(&f, PL__RC_DROP), 0);
    /* A relay that stops reading: dropped once the answers pass the bound. */
    size_t unsent = 0;
    int i = 0;
    for (; i < 200 && !count(&f, PL__RC_DROP); i++) {
        char b64[64];
        char text[16];
        snprintf(text, sizeof text, "u%d", i);
        b64_of(b64, sizeof b64, text);
        push(&f, 1000 + i, mapped, b64, 0);
        const pl__rc_output *a = find(&f, PL__RC_SEND, 0);
        if (a) unsent += a->len;
    }
    assert_int_equal(count(&f, PL__RC_DROP), 1);
    assert_true(unsent > 2000 && unsent < 2200);
    const pl__rc_output *st = find(&f, PL__RC_STATE, 0);
    assert_non_null(st);
    assert_int_equal(st->state, PL_TRANSPORT_RECONNECTING);
    assert_int_equal(st->err, PL_ERR_TIMEOUT);
    fx_free(&f);
}

static void test_core_resend_and_rate_limit(void **state) {
    (void)state;
    pl__rc_config cfg = base_cfg();
    cfg.request_timeout_ms = 300;
    fx f;
    fx_new(&f, &cfg);
    fx_open(&f);
    int64_t opened = f.now;
    pl_publish_opts po = {.ttl_s = 3600};
    assert_int_equal(pl__rc_publish(f.c, "t", (const uint8_t *)"x", 1, &po, f.now, NULL), PL_OK);
    collect(&f);
    pl_rpc_msg *m = sent(&f, 0);
    int64_t id = m->id.num;
    const char *text = find(&f, PL__RC_SEND, 0)->text;
    char first[1024];
    snprintf(first, sizeof first, "%s", text);
    pl_rpc_msgs_free(m, 1);
    /* unanswered: sent again after the request time-out, same text (same id) */
    tick(&f, opened + 299);
    assert_int_equal(count(&f, PL__RC_SEND), 0);
    tick(&f, opened + 300);
    assert_int_equal(count(&f, PL__RC_SEND), 1);
    assert_string_equal(find(&f, PL__RC_SEND, 0)->text, first);
    /* refused for rate: again after 1 s, then 2 s, no result meanwhile */
    reply_error(&f, id, PL_RELAY_CODE_RATE);
    assert_int_equal(f.n, 0);
    int64_t t = f.now;
    tick(&f, t + 999);
    assert_int_equal(count(&f, PL__RC_SEND), 0);
    tick(&f, t + 1000);
    assert_int_equal(count(&f, PL__RC_SEND), 1);
    reply_error(&f, id, PL_RELAY_CODE_RATE);
    t = f.now;
    tick(&f, t + 1999);
    assert_int_equal(count(&f, PL__RC_SEND), 0);
    tick(&f, t + 2000);
    assert_int_equal(count(&f, PL__RC_SEND), 1);
    reply_result(&f, id, "true");
    assert_int_equal(find(&f, PL__RC_RESULT, 0)->err, PL_OK);
    pl_relay_client_stats st;
    pl__rc_stats(f.c, &st);
    assert_int_equal(st.resent, 3);

    /* any other error: reported, not re-sent */
    assert_int_equal(pl__rc_publish(f.c, "t", (const uint8_t *)"y", 1, &po, f.now, NULL), PL_OK);
    collect(&f);
    m = sent(&f, 0);
    reply_error(&f, m->id.num, -32000);
    pl_rpc_msgs_free(m, 1);
    const pl__rc_output *r = find(&f, PL__RC_RESULT, 0);
    assert_int_equal(r->err, PL_ERR_RELAY);
    assert_int_equal(r->relay_code, -32000);
    assert_int_equal(pl__rc_pending(f.c), 0);

    /* the third time-out in a row: the relay is stuck, the connection goes;
     * after the reconnect the publish is sent at once, with its old id */
    assert_int_equal(pl__rc_publish(f.c, "t", (const uint8_t *)"z", 1, &po, f.now, NULL), PL_OK);
    collect(&f);
    m = sent(&f, 0);
    id = m->id.num;
    pl_rpc_msgs_free(m, 1);
    t = f.now;
    tick(&f, t + 300);
    tick(&f, t + 600);
    assert_int_equal(count(&f, PL__RC_SEND), 1);
    tick(&f, t + 900);
    assert_int_equal(count(&f, PL__RC_DROP), 1);
    assert_int_equal(find(&f, PL__RC_STATE, 0)->err, PL_ERR_TIMEOUT);
    assert_int_equal(pl__rc_pending(f.c), 1);
    fx_open(&f);
    m = sent(&f, 0);
    assert_string_equal(m->method, "irn_publish");
    assert_int_equal(m->id.num, id);
    pl_rpc_msgs_free(m, 1);
    fx_free(&f);
}

static void test_core_backoff_and_auth(void **state) {
    (void)state;
    pl__rc_config cfg = base_cfg();
    fx f;
    fx_new(&f, &cfg);
    /* every failed attempt: RECONNECTING with its reason, the wait doubling
     * from 1 s to the 30 s cap, jittered in [b/2, b] */
    int64_t b = 1000;
    for (int i = 0; i < 8; i++) {
        tick(&f, pl__rc_next_deadline(f.c));
        assert_int_equal(count(&f, PL__RC_CONNECT), 1);
        pl__rc_on_failed(f.c, 0, "connection refused", f.now);
        collect(&f);
        const pl__rc_output *o = find(&f, PL__RC_STATE, 0);
        assert_int_equal(o->state, PL_TRANSPORT_RECONNECTING);
        assert_int_equal(o->err, PL_ERR_WEBSOCKET);
        int64_t wait = pl__rc_next_deadline(f.c) - f.now;
        assert_true(wait >= b / 2 && wait <= b);
        b = b * 2 > 30000 ? 30000 : b * 2;
    }
    /* an upgrade answered with another status: WEBSOCKET; late events of a
     * connection the core is not waiting for change nothing */
    tick(&f, pl__rc_next_deadline(f.c));
    pl__rc_on_failed(f.c, 404, NULL, f.now);
    collect(&f);
    assert_int_equal(find(&f, PL__RC_STATE, 0)->err, PL_ERR_WEBSOCKET);
    pl__rc_on_open(f.c, f.now);
    pl__rc_on_closed(f.c, 1000, f.now);
    pl__rc_on_lost(f.c, PL_ERR_WEBSOCKET, f.now);
    collect(&f);
    assert_int_equal(f.n, 0);
    /* a connection that stayed open 10 s resets the backoff */
    fx_open(&f);
    f.now += 10000;
    pl__rc_on_pong(f.c, f.now);
    pl__rc_on_closed(f.c, 1001, f.now);
    collect(&f);
    assert_int_equal(find(&f, PL__RC_STATE, 0)->err, PL_ERR_DISCONNECTED);
    assert_true(pl__rc_next_deadline(f.c) - f.now <= 1000);
    /* a connection that vanished without a close: reconnect too */
    fx_open(&f);
    pl__rc_on_lost(f.c, PL_ERR_WEBSOCKET, f.now);
    collect(&f);
    assert_int_equal(find(&f, PL__RC_STATE, 0)->state, PL_TRANSPORT_RECONNECTING);
    /* 401 on the upgrade: final */
    tick(&f, pl__rc_next_deadline(f.c));
    pl__rc_on_failed(f.c, 401, NULL, f.now);
    collect(&f);
    const pl__rc_output *o = find(&f, PL__RC_STATE, 0);
    assert_int_equal(o->state, PL_TRANSPORT_CLOSED);
    assert_int_equal(o->err, PL_ERR_RELAY_AUTH);
    assert_int_equal(pl__rc_next_deadline(f.c), INT64_MAX);
    pl_err err;
    assert_int_equal(pl__rc_state(f.c, &err), PL_TRANSPORT_CLOSED);
    assert_int_equal(err, PL_ERR_RELAY_AUTH);
    pl_publish_opts po = {0};
    assert_int_equal(pl__rc_publish(f.c, "t", (const uint8_t *)"x", 1, &po, f.now, NULL),
                     PL_ERR_STATE);
    assert_int_equal(pl__rc_subscribe(f.c, "t", f.now), PL_OK); /* kept, for nothing */
    fx_free(&f);

    /* a close with 3000 after the open: final too; TLS failures are named */
    cfg = base_cfg();
    cfg.url = "wss://relay.test";
    fx_new(&f, &cfg);
    tick(&f, T0);
    pl__rc_on_failed(f.c, 0, "SSL handshake: certificate verify failed", f.now);
    collect(&f);
    assert_int_equal(find(&f, PL__RC_STATE, 0)->err, PL_ERR_TLS);
    fx_open(&f);
    pl__rc_on_closed(f.c, PL_RELAY_CODE_AUTH, f.now);
    collect(&f);
    o = find(&f, PL__RC_STATE, 0);
    assert_int_equal(o->state, PL_TRANSPORT_CLOSED);
    assert_int_equal(o->err, PL_ERR_RELAY_AUTH);
    fx_free(&f);
}

static void test_core_pings(void **state) {
    (void)state;
    pl__rc_config cfg = base_cfg();
    cfg.ping_interval_ms = 20000;
    cfg.ping_timeout_ms = 10000;
    fx f;
    fx_new(&f, &cfg);
    fx_open(&f);
    int64_t t = f.now;
    assert_int_equal(pl__rc_next_deadline(f.c), t + 20000);
    /* traffic is life: the ping moves */
    f.now = t + 15000;
    frame(&f, "{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":true}");
    assert_int_equal(pl__rc_next_deadline(f.c), t + 35000);
    tick(&f, t + 35000);
    assert_int_equal(count(&f, PL__RC_PING), 1);
    /* a pong: quiet again, next ping 20 s after it */
    f.now = t + 36000;
    pl__rc_on_pong(f.c, f.now);
    assert_int_equal(pl__rc_next_deadline(f.c), t + 56000);
    tick(&f, t + 56000);
    assert_int_equal(count(&f, PL__RC_PING), 1);
    /* no answer within the time-out: dropped */
    tick(&f, t + 65999);
    assert_int_equal(f.n, 0);
    tick(&f, t + 66000);
    assert_int_equal(count(&f, PL__RC_DROP), 1);
    const pl__rc_output *o = find(&f, PL__RC_STATE, 0);
    assert_int_equal(o->state, PL_TRANSPORT_RECONNECTING);
    assert_int_equal(o->err, PL_ERR_TIMEOUT);
    fx_free(&f);
}

static void test_core_frames(void **state) {
    (void)state;
    pl__rc_config cfg = base_cfg();
    cfg.max_frame_bytes = 200;
    fx f;
    fx_new(&f, &cfg);
    assert_int_equal(pl__rc_subscribe(f.c, "t", f.now), PL_OK);
    fx_open(&f);
    char mapped[65];
    assert_int_equal(pl_relay_topic(mapped, "t"), PL_OK);
    char msg[512];
    snprintf(msg, sizeof msg,
             "{\"id\":5,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscription\",\"params\":{\"data\":"
             "{\"topic\":\"%s\",\"message\":\"AQI=\"}}}",
             mapped);
    /* in three fragments */
    size_t n = strlen(msg);
    pl__rc_on_data(f.c, msg, 10, false, false, f.now);
    pl__rc_on_data(f.c, msg + 10, 20, false, false, f.now);
    pl__rc_on_data(f.c, msg + 30, n - 30, false, true, f.now);
    collect(&f);
    assert_int_equal(count(&f, PL__RC_MESSAGE), 1);
    assert_int_equal(find(&f, PL__RC_MESSAGE, 0)->data_len, 2);
    /* a frame over the bound is dropped whole; the next one is read */
    char big[300];
    memset(big, ' ', sizeof big);
    pl__rc_on_data(f.c, big, sizeof big, false, false, f.now);
    pl__rc_on_data(f.c, msg, n, false, true, f.now);
    collect(&f);
    assert_int_equal(f.n, 0);
    msg[strlen("{\"id\":")] = '6';
    snprintf(strstr(msg, "AQI="), 10, "AQM=\"}}}");
    pl__rc_on_data(f.c, msg, strlen(msg), false, true, f.now);
    collect(&f);
    assert_int_equal(count(&f, PL__RC_MESSAGE), 1);
    /* binary frames are not the protocol's */
    pl__rc_on_data(f.c, msg, strlen(msg), true, true, f.now);
    collect(&f);
    assert_int_equal(f.n, 0);
    fx_free(&f);
}

static void test_core_limits_and_expiry(void **state) {
    (void)state;
    pl__rc_config cfg = base_cfg();
    cfg.max_queue = 3;
    cfg.max_topics = 2;
    fx f;
    fx_new(&f, &cfg);
    pl_publish_opts po = {.ttl_s = 1};
    uint64_t seq;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pl__rc_publish(f.c, "t", (const uint8_t *)"q", 1, &po, f.now, &seq),
                         PL_OK);
        assert_int_equal(seq, (uint64_t)i + 1);
    }
    assert_int_equal(pl__rc_publish(f.c, "t", (const uint8_t *)"q", 1, &po, f.now, &seq),
                     PL_ERR_TOO_LARGE);
    assert_int_equal(seq, 0);
    assert_int_equal(pl__rc_subscribe(f.c, "a", f.now), PL_OK);
    assert_int_equal(pl__rc_subscribe(f.c, "b", f.now), PL_OK);
    assert_int_equal(pl__rc_subscribe(f.c, "c", f.now), PL_ERR_TOO_LARGE);
    /* the TTL runs out before the relay took them: reported, dropped */
    f.now = T0 + 1000;
    pl__rc_on_timer(f.c, f.now);
    collect(&f);
    assert_int_equal(count(&f, PL__RC_RESULT), 3);
    assert_int_equal(find(&f, PL__RC_RESULT, 2)->err, PL_ERR_TIMEOUT);
    assert_int_equal(pl__rc_pending(f.c), 0);
    fx_free(&f);

    /* bytes: the message bound (base64 of PL_RELAY_PAYLOAD_MAX is the relay's
     * 512 KiB) and the queue's byte bound */
    cfg = base_cfg();
    cfg.max_queue_bytes = 1000;
    fx_new(&f, &cfg);
    static uint8_t big[PL_RELAY_PAYLOAD_MAX + 1];
    po.ttl_s = 0;
    assert_int_equal(pl__rc_publish(f.c, "t", big, sizeof big, &po, f.now, NULL), PL_ERR_TOO_LARGE);
    assert_int_equal(pl__rc_publish(f.c, "t", big, 700, &po, f.now, NULL), PL_OK);
    assert_int_equal(pl__rc_publish(f.c, "t", big, 100, &po, f.now, NULL), PL_ERR_TOO_LARGE);
    /* ttl 0 is the default day */
    assert_true(pl__rc_next_deadline(f.c) <= T0); /* the first connect */
    tick(&f, T0);
    pl__rc_on_failed(f.c, 0, NULL, f.now);
    collect(&f);
    fx_free(&f);

    /* without limits set: PL_RELAY_PAYLOAD_MAX itself fits */
    cfg = base_cfg();
    cfg.max_queue_bytes = (size_t)1 << 20;
    fx_new(&f, &cfg);
    assert_int_equal(pl__rc_publish(f.c, "t", big, PL_RELAY_PAYLOAD_MAX, &po, f.now, NULL), PL_OK);
    fx_free(&f);
}

/* The nth SEND's method and id (no JSON-RPC batch). */
static const char *sent_method(const fx *f, size_t nth, int64_t *id) {
    static char method[64];
    pl_rpc_msg *m = sent(f, nth);
    snprintf(method, sizeof method, "%s", m->method ? m->method : "");
    if (id) *id = m->id.num;
    pl_rpc_msgs_free(m, 1);
    return method;
}

/* The publishes and subscriptions of one turn go out together: one
 * irn_batchPublish / irn_batchSubscribe, answered whole; one alone is sent
 * as before. A batch refused is refused for all it carried; a relay that
 * does not know the method gets them one at a time from then on; a 3001
 * pauses the batch; a reconnect batches what was in flight again. */
static void test_core_batches(void **state) {
    (void)state;
    pl__rc_config cfg = base_cfg();
    cfg.rate_per_s = UINT32_MAX; /* no pacing here */
    fx f;
    fx_new(&f, &cfg);
    fx_open(&f);
    pl_publish_opts po = {.ttl_s = 600};
    const char *names[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) assert_int_equal(pl__rc_subscribe(f.c, names[i], f.now), PL_OK);
    uint64_t seq[5];
    for (int i = 0; i < 5; i++)
        assert_int_equal(pl__rc_publish(f.c, names[i % 3], (const uint8_t *)"m", 1, &po, f.now,
                                        &seq[i]),
                         PL_OK);
    collect(&f);
    assert_int_equal(count(&f, PL__RC_SEND), 2);
    int64_t sub_id, pub_id;
    assert_string_equal(sent_method(&f, 0, &sub_id), "irn_batchSubscribe"); /* topics first */
    assert_string_equal(sent_method(&f, 1, &pub_id), "irn_batchPublish");
    pl_rpc_msg *m = sent(&f, 1);
    json_t *p = params_of(m);
    json_t *msgs = json_object_get(p, "messages");
    assert_int_equal(json_array_size(msgs), 5);
    char want[65];
    assert_int_equal(pl_relay_topic(want, "c"), PL_OK);
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 2), "topic")), want);
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 2), "message")), "bQ==");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(msgs, 2), "ttl")), 600);
    json_decref(p);
    pl_rpc_msgs_free(m, 1);
    assert_int_equal(pl__rc_pending(f.c), 5);
    reply_result(&f, sub_id, "[\"s1\",\"s2\",\"s3\"]");
    reply_result(&f, pub_id, "true");
    assert_int_equal(count(&f, PL__RC_RESULT), 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(find(&f, PL__RC_RESULT, (size_t)i)->seq, seq[i]);
        assert_int_equal(find(&f, PL__RC_RESULT, (size_t)i)->err, PL_OK);
    }
    assert_int_equal(pl__rc_pending(f.c), 0);

    /* refused whole (-32000): every message reported */
    for (int i = 0; i < 3; i++)
        assert_int_equal(pl__rc_publish(f.c, "a", (const uint8_t *)"x", 1, &po, f.now, NULL),
                         PL_OK);
    collect(&f);
    assert_string_equal(sent_method(&f, 0, &pub_id), "irn_batchPublish");
    reply_error(&f, pub_id, -32000);
    assert_int_equal(count(&f, PL__RC_RESULT), 3);
    assert_int_equal(find(&f, PL__RC_RESULT, 2)->err, PL_ERR_RELAY);
    assert_int_equal(find(&f, PL__RC_RESULT, 2)->relay_code, -32000);

    /* 3001: the same batch again after the pause */
    for (int i = 0; i < 2; i++)
        assert_int_equal(pl__rc_publish(f.c, "a", (const uint8_t *)"y", 1, &po, f.now, NULL),
                         PL_OK);
    collect(&f);
    assert_string_equal(sent_method(&f, 0, &pub_id), "irn_batchPublish");
    reply_error(&f, pub_id, PL_RELAY_CODE_RATE);
    assert_int_equal(f.n, 0);
    int64_t t = f.now;
    tick(&f, t + 1000);
    assert_int_equal(count(&f, PL__RC_SEND), 1);
    int64_t again;
    assert_string_equal(sent_method(&f, 0, &again), "irn_batchPublish");
    assert_int_equal(again, pub_id);
    /* the connection drops before the answer: after the reconnect they are
     * batched again (a new frame), with the queued ones */
    assert_int_equal(pl__rc_publish(f.c, "b", (const uint8_t *)"z", 1, &po, f.now, NULL), PL_OK);
    pl__rc_on_lost(f.c, PL_ERR_WEBSOCKET, f.now);
    collect(&f);
    fx_open(&f);
    assert_int_equal(count(&f, PL__RC_SEND), 2); /* topics, then the three publishes */
    assert_string_equal(sent_method(&f, 1, &pub_id), "irn_batchPublish");
    m = sent(&f, 1);
    p = params_of(m);
    assert_int_equal(json_array_size(json_object_get(p, "messages")), 3);
    json_decref(p);
    pl_rpc_msgs_free(m, 1);

    /* a relay without irn_batchPublish: one at a time, from then on */
    reply_error(&f, pub_id, -32601);
    assert_int_equal(count(&f, PL__RC_RESULT), 0);
    assert_int_equal(count(&f, PL__RC_SEND), 3);
    for (int i = 0; i < 3; i++) assert_string_equal(sent_method(&f, (size_t)i, NULL), "irn_publish");
    for (int i = 0; i < 2; i++)
        assert_int_equal(pl__rc_publish(f.c, "a", (const uint8_t *)"w", 1, &po, f.now, NULL),
                         PL_OK);
    collect(&f);
    assert_int_equal(count(&f, PL__RC_SEND), 2);
    assert_string_equal(sent_method(&f, 1, NULL), "irn_publish");
    fx_free(&f);
}

/* Pacing: with an allowance of 10/s and a bucket of 5, the client spends
 * the bucket, then waits for tokens (no 3001), and what accumulates meanwhile
 * goes in one batch; a 3001 anyway halves the rate it assumes. */
static void test_core_pacing(void **state) {
    (void)state;
    pl__rc_config cfg = base_cfg();
    cfg.rate_per_s = 10;
    cfg.rate_burst = 5;
    cfg.batch_max = 1; /* one request per publish, to count them */
    fx f;
    fx_new(&f, &cfg);
    fx_open(&f);
    pl_publish_opts po = {.ttl_s = 600};
    for (int i = 0; i < 8; i++)
        assert_int_equal(pl__rc_publish(f.c, "t", (const uint8_t *)"p", 1, &po, f.now, NULL),
                         PL_OK);
    collect(&f);
    assert_int_equal(count(&f, PL__RC_SEND), 5); /* the bucket */
    int64_t t = f.now;
    assert_int_equal(pl__rc_next_deadline(f.c), t + 100); /* one token per 100 ms */
    tick(&f, t + 99);
    assert_int_equal(count(&f, PL__RC_SEND), 0);
    tick(&f, t + 100);
    assert_int_equal(count(&f, PL__RC_SEND), 1);
    tick(&f, t + 300);
    assert_int_equal(count(&f, PL__RC_SEND), 2);
    assert_int_equal(pl__rc_next_deadline(f.c) > t + 300, true);
    fx_free(&f);

    /* batches: a bucket of 2 with the default costs; 3 frames' worth queued
     * behind a pause go out as one batch when it ends */
    cfg = base_cfg();
    cfg.rate_per_s = 1;
    cfg.rate_burst = 2;
    fx_new(&f, &cfg);
    fx_open(&f);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pl__rc_publish(f.c, "t", (const uint8_t *)"p", 1, &po, f.now, NULL),
                         PL_OK);
        collect(&f);
        assert_int_equal(count(&f, PL__RC_SEND), 1);
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pl__rc_publish(f.c, "t", (const uint8_t *)"q", 1, &po, f.now, NULL),
                         PL_OK);
        collect(&f);
        assert_int_equal(count(&f, PL__RC_SEND), 0);
    }
    t = f.now;
    /* one request at 1 per second; its 3 entries (3 x
     * PL_RELAY_COST_PUBLISH_ITEM_MILLI) from the entry bucket of 2 x
     * PL_RELAY_ENTRY_FACTOR */
    int64_t due = t + 1000;
    assert_int_equal(pl__rc_next_deadline(f.c) <= due, true);
    tick(&f, due);
    assert_int_equal(count(&f, PL__RC_SEND), 1);
    assert_string_equal(sent_method(&f, 0, NULL), "irn_batchPublish");
    fx_free(&f);

    /* no allowance given: nothing waits until the relay refuses; its 3001
     * says what it allows and when to come back, and is believed */
    cfg = base_cfg();
    cfg.batch_max = 1;
    fx_new(&f, &cfg);
    fx_open(&f);
    for (int i = 0; i < 20; i++)
        assert_int_equal(pl__rc_publish(f.c, "t", (const uint8_t *)"p", 1, &po, f.now, NULL),
                         PL_OK);
    collect(&f);
    assert_int_equal(count(&f, PL__RC_SEND), 20);
    int64_t id;
    sent_method(&f, 19, &id);
    char buf[512];
    snprintf(buf, sizeof buf,
             "{\"id\":%lld,\"jsonrpc\":\"2.0\",\"error\":{\"code\":3001,\"message\":\"Too many\","
             "\"data\":{\"perSecond\":10,\"burst\":2,\"retryAfterMs\":250}}}",
             (long long)id);
    frame(&f, buf);
    assert_int_equal(f.n, 0);
    t = f.now;
    tick(&f, t + 249);
    assert_int_equal(count(&f, PL__RC_SEND), 0);
    tick(&f, t + 250);
    assert_int_equal(count(&f, PL__RC_SEND), 1); /* the refused one, again */
    /* from now on paced to 10/s with a bucket of 2 (refilled meanwhile, and
     * the refused one took a token as the relay counts it): of 4 new
     * publishes 1 goes at once, then one per 100 ms */
    for (int i = 0; i < 4; i++)
        assert_int_equal(pl__rc_publish(f.c, "t", (const uint8_t *)"n", 1, &po, f.now, NULL),
                         PL_OK);
    collect(&f);
    assert_int_equal(count(&f, PL__RC_SEND), 1);
    tick(&f, t + 349);
    assert_int_equal(count(&f, PL__RC_SEND), 0);
    tick(&f, t + 350);
    assert_int_equal(count(&f, PL__RC_SEND), 1);
    tick(&f, t + 450);
    assert_int_equal(count(&f, PL__RC_SEND), 1);
    fx_free(&f);
}

static void test_core_close_cancels(void **state) {
    (void)state;
    pl__rc_config cfg = base_cfg();
    fx f;
    fx_new(&f, &cfg);
    pl_publish_opts po = {.ttl_s = 60};
    assert_int_equal(pl__rc_publish(f.c, "t", (const uint8_t *)"1", 1, &po, f.now, NULL), PL_OK);
    assert_int_equal(pl__rc_publish(f.c, "u", (const uint8_t *)"2", 1, &po, f.now, NULL), PL_OK);
    fx_open(&f);
    assert_true(pl__rc_close(f.c));
    collect(&f);
    assert_int_equal(f.n, 2); /* the two cancellations, nothing else */
    assert_int_equal(find(&f, PL__RC_RESULT, 0)->err, PL_ERR_CANCELLED);
    assert_string_equal(find(&f, PL__RC_RESULT, 1)->topic, "u");
    assert_int_equal(pl__rc_next_deadline(f.c), INT64_MAX);
    assert_int_equal(pl__rc_publish(f.c, "t", (const uint8_t *)"3", 1, &po, f.now, NULL),
                     PL_ERR_STATE);
    assert_int_equal(pl__rc_subscribe(f.c, "t", f.now), PL_ERR_STATE);
    assert_int_equal(pl__rc_unsubscribe(f.c, "t", f.now), PL_ERR_STATE);
    frame(&f, "{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":true}");
    pl__rc_on_timer(f.c, f.now + 100000);
    collect(&f);
    assert_int_equal(f.n, 0);
    fx_free(&f);

    /* closing a client that never connected */
    fx_new(&f, &cfg);
    assert_false(pl__rc_close(f.c));
    fx_free(&f);
}

static void test_core_subscribe_errors(void **state) {
    (void)state;
    pl__rc_config cfg = base_cfg();
    fx f;
    fx_new(&f, &cfg);
    assert_int_equal(pl__rc_subscribe(f.c, "one", f.now), PL_OK);
    fx_open(&f);
    pl_rpc_msg *m = sent(&f, 0);
    reply_error(&f, m->id.num, -32602);
    pl_rpc_msgs_free(m, 1);
    const pl__rc_output *r = find(&f, PL__RC_RESULT, 0);
    assert_int_equal(r->op, PL_RELAY_OP_SUBSCRIBE);
    assert_string_equal(r->topic, "one");
    assert_int_equal(r->err, PL_ERR_RELAY);
    assert_int_equal(r->relay_code, -32602);
    assert_int_equal(pl__rc_subscribe(f.c, "two", f.now), PL_OK);
    collect(&f);
    m = sent(&f, 0);
    reply_error(&f, m->id.num, -32000);
    pl_rpc_msgs_free(m, 1);
    assert_string_equal(find(&f, PL__RC_RESULT, 0)->topic, "two");
    /* after a reconnect the whole set is sent again */
    pl__rc_on_closed(f.c, 1006, f.now);
    fx_open(&f);
    m = sent(&f, 0);
    json_t *p = params_of(m);
    assert_int_equal(json_array_size(json_object_get(p, "topics")), 2);
    json_decref(p);
    pl_rpc_msgs_free(m, 1);
    fx_free(&f);
}

/* ======================================================================== */
/* Over a socket: the runtime against `pairlink relay`                      */
/* ======================================================================== */

typedef struct relay_proc {
    pid_t pid;
    int out_fd; /* its stdout (and stderr with merge) */
    int port;
    char url[128];
} relay_proc;

static pid_t live_children[8];

static void child_track(pid_t pid, bool add) {
    for (size_t i = 0; i < 8; i++) {
        if (add ? live_children[i] == 0 : live_children[i] == pid) {
            live_children[i] = add ? pid : 0;
            return;
        }
    }
}

static int kill_children(void **state) {
    (void)state;
    for (size_t i = 0; i < 8; i++) {
        if (live_children[i] > 0) {
            kill(live_children[i], SIGKILL);
            waitpid(live_children[i], NULL, 0);
            live_children[i] = 0;
        }
    }
    return 0;
}

/* `pairlink relay --listen 127.0.0.1:PORT args...`; waits (max 10 s) for
 * "listening on ws[s]://127.0.0.1:PORT". merge: its stderr too. */
static void relay_start(relay_proc *rp, int port, bool merge, const char *const *args) {
    char listen[64], cli[1024];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(cli, sizeof cli, "%s/pairlink", PL_BINARY_DIR);
    char *argv[16] = {cli, "relay", "--listen", listen};
    size_t n = 4;
    for (size_t i = 0; args && args[i] && n < 15; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    int out[2];
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* die with the test program */
        if (getppid() != parent) _exit(127);
        dup2(out[1], 1);
        if (merge) {
            dup2(out[1], 2);
        } else if (!verbose()) {
            int devnull = open("/dev/null", O_WRONLY);
            if (devnull >= 0) dup2(devnull, 2);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    close(out[1]);
    child_track(pid, true);
    memset(rp, 0, sizeof *rp);
    rp->pid = pid;
    rp->out_fd = out[0];
    char buf[4096];
    size_t len = 0;
    for (int waited = 0; waited < 10000;) {
        struct pollfd pfd = {rp->out_fd, POLLIN, 0};
        if (poll(&pfd, 1, 100) <= 0) {
            waited += 100;
            continue;
        }
        ssize_t r = read(rp->out_fd, buf + len, sizeof buf - 1 - len);
        if (r <= 0) break;
        len += (size_t)r;
        buf[len] = '\0';
        char *l = strstr(buf, "listening on ");
        if (l && strchr(l, '\n')) {
            char *url = l + strlen("listening on ");
            *strchr(url, '\n') = '\0';
            snprintf(rp->url, sizeof rp->url, "%s", url);
            rp->port = atoi(strrchr(rp->url, ':') + 1);
            return;
        }
        if (len > sizeof buf / 2) {
            memmove(buf, buf + len - 256, 256);
            len = 256;
        }
    }
    fail_msg("pairlink relay did not start");
}

static void relay_stop(relay_proc *rp, int sig) {
    if (rp->pid <= 0) return;
    kill(rp->pid, SIGCONT); /* in case it was stopped */
    kill(rp->pid, sig);
    waitpid(rp->pid, NULL, 0);
    child_track(rp->pid, false);
    close(rp->out_fd);
    rp->pid = 0;
}

/* Wait (max timeout_ms) for `what` in the relay's output. */
static bool relay_expect(relay_proc *rp, const char *what, int timeout_ms) {
    char buf[4096];
    size_t len = 0;
    for (int waited = 0; waited < timeout_ms;) {
        struct pollfd pfd = {rp->out_fd, POLLIN, 0};
        if (poll(&pfd, 1, 50) <= 0) {
            waited += 50;
            continue;
        }
        ssize_t r = read(rp->out_fd, buf + len, sizeof buf - 1 - len);
        if (r <= 0) return false;
        len += (size_t)r;
        buf[len] = '\0';
        if (strstr(buf, what)) return true;
        if (len > sizeof buf / 2) {
            memmove(buf, buf + len - 256, 256);
            len = 256;
        }
    }
    return false;
}

/* ---- peers: a client plus what its handler saw ---- */

#define MAX_MSGS 16

typedef struct peer {
    const char *name;
    pl_transport *t;
    int connected, reconnecting, failed;
    pl_err last_err;
    char topics[MAX_MSGS][PL_TRANSPORT_TOPIC_MAX + 1];
    char msgs[MAX_MSGS][256];
    uint32_t tags[MAX_MSGS];
    int nmsgs;
    int pub_ok, pub_cancelled, pub_failed;
    int pub_errors; /* on_publish_error */
    pl_err pub_error;
    int64_t pub_error_code;
    uint64_t last_ok_seq;
    bool closed;
} peer;

static void on_message(void *ud, pl_transport *t, const char *topic, const uint8_t *data,
                       size_t len, const pl_delivery_info *info) {
    (void)t;
    peer *p = ud;
    assert_int_equal(info->err, PL_OK);
    assert_non_null(info->ext);
    assert_int_equal(info->ext->kind, PL_TRANSPORT_EXT_WC_RELAY);
    assert_true(info->published_at_ms > 0);
    if (p->nmsgs < MAX_MSGS) {
        snprintf(p->topics[p->nmsgs], sizeof p->topics[0], "%s", topic);
        snprintf(p->msgs[p->nmsgs], sizeof p->msgs[0], "%.*s", (int)len, (const char *)data);
        p->tags[p->nmsgs] = ((const pl_wc_relay_delivery_ext *)info->ext)->tag;
    }
    p->nmsgs++;
}

static void on_state(void *ud, pl_transport *t, pl_transport_state s, pl_err err) {
    (void)t;
    peer *p = ud;
    if (verbose())
        fprintf(stderr, "[%s] %s %s\n", p->name, pl_transport_state_name(s), pl_errname(err));
    if (s == PL_TRANSPORT_CONNECTED) p->connected++;
    if (s == PL_TRANSPORT_RECONNECTING) p->reconnecting++;
    if (s == PL_TRANSPORT_CLOSED) p->failed++;
    if (s != PL_TRANSPORT_CONNECTED) p->last_err = err;
}

static void on_result(void *ud, pl_relay_op op, uint64_t seq, const char *topic, pl_err err,
                      int64_t code) {
    peer *p = ud;
    assert_non_null(topic);
    (void)code;
    if (op != PL_RELAY_OP_PUBLISH) return;
    if (err == PL_OK) {
        p->pub_ok++;
        p->last_ok_seq = seq;
    } else if (err == PL_ERR_CANCELLED) {
        p->pub_cancelled++;
    } else {
        p->pub_failed++;
    }
}

static void on_publish_error(void *ud, pl_transport *t, const char *topic, pl_err err,
                             int64_t code) {
    (void)t;
    peer *p = ud;
    assert_non_null(topic);
    p->pub_errors++;
    p->pub_error = err;
    p->pub_error_code = code;
}

static void on_closed(void *ud) {
    peer *p = ud;
    assert_false(p->closed);
    p->closed = true;
}

static pl_relay_client_opts base_opts(peer *p, const char *url, const uint8_t *seed) {
    pl_relay_client_opts o;
    memset(&o, 0, sizeof o);
    o.url = url;
    o.seed = seed;
    o.handler = (pl_transport_handler){on_message, on_state, p, on_publish_error};
    o.on_result = on_result;
    o.result_ud = p;
    /* Fast reconnects so that every test runs in seconds. */
    o.reconnect_min_ms = 100;
    o.reconnect_max_ms = 400;
    o.connect_timeout_ms = 3000;
    return o;
}

static void peer_open(peer *p, const char *name, pl_driver *d, const pl_relay_client_opts *o) {
    memset(p, 0, sizeof *p);
    p->name = name;
    pl_relay_client_opts oo = *o;
    oo.handler.ud = p;
    oo.result_ud = p;
    assert_int_equal(pl_relay_client_new(&p->t, d, &oo), PL_OK);
    assert_true(pl_relay_client_is(p->t));
    assert_string_equal(pl_transport_name(p->t), "wc-relay");
}

/* ---- running the loop until a condition holds ---- */

typedef bool (*cond_fn)(void *arg);

static void tick_cb(uv_timer_t *t) {
    (void)t;
}

/* Run the loop until cond(arg) or timeout_ms (a bound, not a wait: the
 * loop returns as soon as the condition holds). PL_TEST_TIME_SCALE=10
 * stretches the bounds for valgrind. */
static bool run_until(uv_loop_t *loop, cond_fn cond, void *arg, uint64_t timeout_ms) {
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, tick_cb, 10, 10);
    const char *scale = getenv("PL_TEST_TIME_SCALE");
    if (scale && atoi(scale) > 1) timeout_ms *= (uint64_t)atoi(scale);
    uint64_t end = uv_now(loop) + timeout_ms;
    bool ok = cond(arg);
    while (!ok && uv_now(loop) < end) {
        uv_run(loop, UV_RUN_ONCE);
        ok = cond(arg);
    }
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static bool is_connected(void *arg) {
    return pl_transport_get_state(((peer *)arg)->t, NULL) == PL_TRANSPORT_CONNECTED;
}

typedef struct two {
    peer *a, *b;
} two;

static bool both_connected(void *arg) {
    two *t = arg;
    return is_connected(t->a) && is_connected(t->b);
}

static bool both_reconnecting(void *arg) {
    two *t = arg;
    return !is_connected(t->a) && !is_connected(t->b) && t->a->reconnecting > 0 &&
           t->b->reconnecting > 0;
}

static bool has_failed(void *arg) {
    return ((peer *)arg)->failed > 0;
}
static bool has_reconnecting(void *arg) {
    return ((peer *)arg)->reconnecting > 0;
}
static bool has_closed(void *arg) {
    return ((peer *)arg)->closed;
}
static bool has_two_msgs(void *arg) {
    return ((peer *)arg)->nmsgs >= 2;
}
static bool none_pending(void *arg) {
    return pl_transport_pending(((peer *)arg)->t) == 0;
}

static bool both_msg(void *arg) {
    two *t = arg;
    return t->a->nmsgs > 0 && t->b->nmsgs > 0;
}

typedef struct attempts {
    peer *p;
    uint64_t n;
} attempts;

static bool attempts_at_least(void *arg) {
    attempts *a = arg;
    pl_relay_client_stats st;
    pl_relay_client_get_stats(a->p->t, &st);
    return st.connect_attempts >= a->n;
}

static void peer_close(uv_loop_t *loop, peer *p) {
    pl_transport_close(p->t, 0, on_closed, p);
    assert_true(run_until(loop, has_closed, p, 5000));
    p->t = NULL;
}

typedef struct world {
    uv_loop_t loop;
    pl_driver *d;
    bool closed;
} world;

static void world_open(world *w) {
    memset(w, 0, sizeof *w);
    uv_loop_init(&w->loop);
    assert_int_equal(pl_driver_new(&w->d, &w->loop), PL_OK);
}

static void on_driver_closed(void *ud) {
    ((world *)ud)->closed = true;
}

static bool world_closed(void *arg) {
    return ((world *)arg)->closed;
}

/* Every handle gone: uv_loop_close succeeds (the foreign-loop shutdown). */
static void world_close(world *w) {
    pl_driver_close(w->d, on_driver_closed, w);
    assert_true(run_until(&w->loop, world_closed, w, 5000));
    uv_run(&w->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&w->loop), 0);
}

/* A port on which nothing listens: bound but not listening, so connects are
 * refused, and no other process can take it while the socket lives. */
typedef struct dead_port {
    int fd;
    char url[64];
} dead_port;

static void dead_port_open(dead_port *d) {
    d->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(d->fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(d->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(d->fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(d->url, sizeof d->url, "ws://127.0.0.1:%d", ntohs(sa.sin_port));
}

static void dead_port_close(dead_port *d) {
    close(d->fd);
}

static void topic_of(char out[65], char c) {
    memset(out, c, 64);
    out[64] = '\0';
}

/* libwebsockets' lines: through pl_set_log only (PL_TEST_VERBOSE=1 shows
 * them on stderr), counted where a test captures them. */
static int log_lines;

static void capture_log(void *ud, pl_log_level level, const char *source, const char *line) {
    (void)level;
    assert_string_equal(source, "libwebsockets");
    assert_non_null(line);
    assert_null(strchr(line, '\n'));
    (*(int *)ud)++;
}

static void stderr_log(void *ud, pl_log_level level, const char *source, const char *line) {
    (void)ud;
    fprintf(stderr, "%s %s: %s\n", source, pl_log_level_name(level), line);
}

static void quiet_log(void) {
    if (verbose())
        pl_set_log(stderr_log, NULL, PL_LOG_INFO);
    else
        pl_set_log(NULL, NULL, PL_LOG_OFF);
}

/* ---- the socket tests ---- */

static void test_bad_options_and_unreachable(void **state) {
    (void)state;
    world w;
    world_open(&w);
    peer p;
    memset(&p, 0, sizeof p);
    static const char *bad[] = {"http://127.0.0.1:1", "ws://", "ws://127.0.0.1:0",
                                "ws://u:pw@127.0.0.1", "127.0.0.1:8787"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pl_relay_client_opts o = base_opts(&p, bad[i], SEED_A);
        pl_transport *t = (pl_transport *)&p; /* must be reset */
        assert_int_equal(pl_relay_client_new(&t, w.d, &o), PL_ERR_BAD_URL);
        assert_null(t);
    }
    pl_relay_client_opts o = base_opts(&p, "ws://127.0.0.1:1", SEED_A);
    o.project_id = "bad id";
    pl_transport *t;
    assert_int_equal(pl_relay_client_new(&t, w.d, &o), PL_ERR_INVALID_ARG);
    o.project_id = NULL;
    o.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(pl_relay_client_new(&t, w.d, &o), PL_ERR_TLS);
    /* sockets need a loop */
    pl_driver *vd;
    assert_int_equal(pl_driver_new_virtual(&vd, T0), PL_OK);
    o.ca_file = NULL;
    assert_int_equal(pl_relay_client_new(&t, vd, &o), PL_ERR_INVALID_ARG);
    pl_driver_free(vd);

    /* Nothing listens: a named error and the reason in words, then
     * retries; libwebsockets' lines go to the pl_set_log sink only. */
    dead_port dp;
    dead_port_open(&dp);
    log_lines = 0;
    pl_set_log(capture_log, &log_lines, PL_LOG_DEBUG);
    o = base_opts(&p, dp.url, SEED_A);
    peer_open(&p, "p", w.d, &o);
    assert_string_equal(pl_relay_client_reason(p.t), "");
    assert_true(run_until(&w.loop, has_reconnecting, &p, 5000));
    assert_int_equal(p.last_err, PL_ERR_WEBSOCKET);
    assert_int_equal(p.failed, 0);
    char want[96];
    snprintf(want, sizeof want, "cannot connect to 127.0.0.1 port %s", strrchr(dp.url, ':') + 1);
    assert_non_null(strstr(pl_relay_client_reason(p.t), want));
    assert_true(log_lines > 0);
    quiet_log();
    attempts a = {&p, 2};
    assert_true(run_until(&w.loop, attempts_at_least, &a, 5000));
    pl_relay_client_stats st;
    pl_relay_client_get_stats(p.t, &st);
    assert_int_equal(st.connects, 0);
    peer_close(&w.loop, &p);
    world_close(&w);
    dead_port_close(&dp);
}

/* A name that does not resolve: the host and the resolver's reason. */
static void test_reason_dns(void **state) {
    (void)state;
    world w;
    world_open(&w);
    peer p;
    memset(&p, 0, sizeof p);
    pl_relay_client_opts o = base_opts(&p, "ws://nonexistent.invalid:1", SEED_A);
    peer_open(&p, "p", w.d, &o);
    assert_true(run_until(&w.loop, has_reconnecting, &p, 10000));
    assert_int_equal(p.last_err, PL_ERR_WEBSOCKET);
    assert_non_null(strstr(pl_relay_client_reason(p.t), "cannot resolve nonexistent.invalid: "));
    peer_close(&w.loop, &p);
    world_close(&w);
}

static void test_did_and_cancel_on_close(void **state) {
    (void)state;
    json_t *v = pl_test_vectors("walletconnect.json");
    uint8_t seed[32];
    pl_test_hex(v, "relay_auth_jwt.ed25519_seed", seed, sizeof seed);
    world w;
    world_open(&w);
    dead_port dp;
    dead_port_open(&dp);
    peer p;
    pl_relay_client_opts o = base_opts(&p, dp.url, seed);
    peer_open(&p, "p", w.d, &o);
    assert_string_equal(pl_relay_client_did(p.t), pl_test_str(v, "relay_auth_jwt.iss"));
    char topic[65];
    topic_of(topic, 'a');
    uint64_t seq = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pl_relay_client_publish(p.t, topic, (const uint8_t *)"q", 1, NULL, &seq),
                         PL_OK);
        assert_int_equal(seq, (uint64_t)i + 1);
    }
    assert_int_equal(pl_transport_pending(p.t), 3);
    /* Closing reports every unacknowledged publish as cancelled, after the
     * call and before on_closed. */
    pl_transport_close(p.t, 0, on_closed, &p);
    assert_int_equal(p.pub_cancelled, 0);
    assert_int_equal(pl_transport_publish(p.t, topic, (const uint8_t *)"x", 1, NULL), PL_ERR_STATE);
    assert_int_equal(pl_relay_client_publish(p.t, topic, (const uint8_t *)"x", 1, NULL, &seq),
                     PL_ERR_STATE);
    assert_true(run_until(&w.loop, has_closed, &p, 5000));
    assert_int_equal(p.pub_cancelled, 3);
    world_close(&w);
    dead_port_close(&dp);
    json_decref(v);
}

/* Two clients exchange messages through one relay. */
static void exchange(uv_loop_t *loop, peer *a, peer *b) {
    char ta[65], tb[65];
    topic_of(ta, 'a');
    topic_of(tb, 'b');
    assert_int_equal(pl_transport_subscribe(a->t, ta), PL_OK);
    assert_int_equal(pl_transport_subscribe(b->t, tb), PL_OK);
    two t = {a, b};
    assert_true(run_until(loop, both_connected, &t, 5000));
    pl_wc_relay_publish_ext x = {{PL_TRANSPORT_EXT_WC_RELAY}, 1108, false};
    pl_publish_opts po = {.ttl_s = 300, .ext = &x.ext};
    assert_int_equal(pl_transport_publish(b->t, ta, (const uint8_t *)"hello from b", 12, &po),
                     PL_OK);
    assert_int_equal(pl_transport_publish(a->t, tb, (const uint8_t *)"hello from a", 12, &po),
                     PL_OK);
    assert_true(run_until(loop, both_msg, &t, 5000));
    /* Both acknowledgements in, so that later steps start from an empty queue. */
    assert_true(run_until(loop, none_pending, a, 5000));
    assert_true(run_until(loop, none_pending, b, 5000));
    assert_int_equal(a->nmsgs, 1);
    assert_int_equal(b->nmsgs, 1);
    assert_string_equal(a->msgs[0], "hello from b");
    assert_string_equal(a->topics[0], ta);
    assert_int_equal(a->tags[0], 1108);
    assert_string_equal(b->msgs[0], "hello from a");
    assert_string_equal(b->topics[0], tb);
}

static bool pub_ok_two(void *arg) {
    return ((peer *)arg)->pub_ok >= 2;
}

static void test_two_clients(void **state) {
    (void)state;
    relay_proc rp;
    relay_start(&rp, 0, false, NULL);
    world w;
    world_open(&w);
    peer a, b;
    pl_relay_client_opts oa = base_opts(&a, rp.url, SEED_A);
    oa.project_id = "test-project_1";
    pl_relay_client_opts ob = base_opts(&b, rp.url, SEED_B);
    peer_open(&a, "a", w.d, &oa);
    peer_open(&b, "b", w.d, &ob);
    exchange(&w.loop, &a, &b);
    /* A topic name that is not hex travels on its hashed relay topic and is
     * delivered under its name. */
    const char *name = "/pairlink/1/rv-0123456789abcdef0123456789abcdef/proto";
    assert_int_equal(pl_transport_subscribe(a.t, name), PL_OK);
    char ta[65];
    topic_of(ta, 'a');
    /* Unsubscribed topics are no longer delivered: the message after the
     * unsubscribe is acknowledged by the relay and never reaches a, while
     * the one on the name, published after it, does. */
    assert_int_equal(pl_transport_unsubscribe(a.t, ta), PL_OK);
    assert_int_equal(pl_transport_unsubscribe(a.t, ta), PL_OK);
    assert_int_equal(pl_transport_publish(b.t, ta, (const uint8_t *)"after unsubscribe", 17, NULL),
                     PL_OK);
    assert_true(run_until(&w.loop, pub_ok_two, &b, 5000));
    assert_int_equal(pl_transport_publish(b.t, name, (const uint8_t *)"\x01\x02", 2, NULL), PL_OK);
    assert_true(run_until(&w.loop, has_two_msgs, &a, 5000));
    assert_string_equal(a.topics[1], name);
    assert_string_equal(a.msgs[1], "\x01\x02");
    assert_true(run_until(&w.loop, none_pending, &b, 5000));
    assert_int_equal(a.nmsgs, 2);
    assert_int_equal(b.pub_ok, 3);
    peer_close(&w.loop, &a);
    peer_close(&w.loop, &b);
    world_close(&w);
    relay_stop(&rp, SIGTERM);
}

/* Publish while the relay is down; restart it (same port, same --db): the
 * queued message is sent after the reconnect and delivered exactly once. */
static void test_publish_while_relay_down(void **state) {
    (void)state;
    char dir[] = "/tmp/pl-relaydb-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char db[256];
    snprintf(db, sizeof db, "%s/relay.db", dir);
    const char *args[] = {"--db", db, NULL};
    relay_proc rp;
    relay_start(&rp, 0, false, args);
    int port = rp.port;
    world w;
    world_open(&w);
    peer a, b;
    pl_relay_client_opts oa = base_opts(&a, rp.url, SEED_A);
    pl_relay_client_opts ob = base_opts(&b, rp.url, SEED_B);
    peer_open(&a, "a", w.d, &oa);
    peer_open(&b, "b", w.d, &ob);
    exchange(&w.loop, &a, &b);

    relay_stop(&rp, SIGKILL);
    two t = {&a, &b};
    assert_true(run_until(&w.loop, both_reconnecting, &t, 5000));
    char ta[65];
    topic_of(ta, 'a');
    pl_wc_relay_publish_ext x = {{PL_TRANSPORT_EXT_WC_RELAY}, 7, false};
    pl_publish_opts po = {.ttl_s = 300, .ext = &x.ext};
    uint64_t seq;
    assert_int_equal(
        pl_relay_client_publish(b.t, ta, (const uint8_t *)"sent while down", 15, &po, &seq), PL_OK);
    assert_int_equal(pl_transport_pending(b.t), 1);
    attempts at = {&b, 3};
    assert_true(run_until(&w.loop, attempts_at_least, &at, 5000)); /* a few failed reconnects */
    assert_int_equal(a.nmsgs, 1);

    relay_start(&rp, port, false, args);
    assert_true(run_until(&w.loop, both_connected, &t, 5000));
    assert_true(run_until(&w.loop, has_two_msgs, &a, 5000));
    assert_string_equal(a.msgs[1], "sent while down");
    assert_int_equal(a.tags[1], 7);
    assert_true(run_until(&w.loop, none_pending, &b, 5000));
    assert_int_equal(b.last_ok_seq, seq);
    /* The mailbox re-delivers on every subscribe: re-subscribing (a new
     * topic set after a reconnect) hands the same message out again, which
     * the client drops. */
    pl_relay_client_stats st;
    pl_relay_client_get_stats(a.t, &st);
    assert_int_equal(a.nmsgs, (int)st.delivered);
    assert_true(a.connected >= 2 && b.connected >= 2);
    peer_close(&w.loop, &a);
    peer_close(&w.loop, &b);
    world_close(&w);
    relay_stop(&rp, SIGTERM);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void auth_rejected(const char *const *args, const char *jwt) {
    relay_proc rp;
    relay_start(&rp, 0, false, args);
    world w;
    world_open(&w);
    peer p;
    pl_relay_client_opts o = base_opts(&p, rp.url, SEED_B);
    o.jwt = jwt;
    peer_open(&p, "p", w.d, &o);
    assert_true(run_until(&w.loop, has_failed, &p, 5000));
    assert_int_equal(p.last_err, PL_ERR_RELAY_AUTH);
    pl_err err;
    assert_int_equal(pl_transport_get_state(p.t, &err), PL_TRANSPORT_CLOSED);
    assert_int_equal(err, PL_ERR_RELAY_AUTH);
    pl_relay_client_stats st;
    pl_relay_client_get_stats(p.t, &st);
    assert_int_equal(st.connect_attempts, 1);
    assert_int_equal(p.reconnecting, 0);
    assert_int_equal(p.failed, 1);
    char t[65];
    topic_of(t, 'c');
    assert_int_equal(pl_transport_publish(p.t, t, (const uint8_t *)"x", 1, NULL), PL_ERR_STATE);
    /* the transport is done for good: a flush does not wait for it */
    pl_transport_close(p.t, 60000, on_closed, &p);
    assert_true(run_until(&w.loop, has_closed, &p, 5000));
    world_close(&w);
    relay_stop(&rp, SIGTERM);
}

/* --require-auth: a bad JWT is refused with 401 on the upgrade. */
static void test_auth_rejected_401(void **state) {
    (void)state;
    const char *args[] = {"--require-auth", NULL};
    auth_rejected(args, "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.e30.c2lnbmF0dXJl");
}

/* The JWT audience is the relay's public URL: a relay that says it is
 * reached at another URL refuses the token our client signs for the URL it
 * connects to (whatever Host header comes with it). */
static void test_auth_rejected_other_public_url(void **state) {
    (void)state;
    const char *args[] = {"--require-auth", "--public-url", "wss://relay.example.org", NULL};
    auth_rejected(args, NULL);
}

/* Without --public-url a relay on loopback accepts tokens for the URLs
 * local clients use: ws://127.0.0.1:PORT and ws://localhost:PORT. */
static void test_auth_default_audience(void **state) {
    (void)state;
    const char *args[] = {"--require-auth", NULL};
    relay_proc rp;
    relay_start(&rp, 0, false, args);
    char url[64];
    snprintf(url, sizeof url, "ws://localhost:%d", rp.port);
    const char *urls[] = {rp.url, url};
    for (size_t i = 0; i < 2; i++) {
        world w;
        world_open(&w);
        peer p;
        pl_relay_client_opts o = base_opts(&p, urls[i], SEED_A);
        peer_open(&p, "p", w.d, &o);
        assert_true(run_until(&w.loop, is_connected, &p, 5000));
        peer_close(&w.loop, &p);
        world_close(&w);
    }
    relay_stop(&rp, SIGTERM);
}

/* A relay that accepts the upgrade and then closes with 3000. */
static void test_auth_rejected_close_3000(void **state) {
    (void)state;
    const char *args[] = {"--fault", "close=3000", NULL};
    auth_rejected(args, NULL);
}

static bool pub_failed_one(void *arg) {
    return ((peer *)arg)->pub_failed >= 1;
}

/* Without --require-auth a client whose JWT is invalid is served as an
 * anonymous one; --verbose logs every frame and every failed request. */
static void test_invalid_jwt_served_anonymously(void **state) {
    (void)state;
    const char *args[] = {"--verbose", NULL};
    relay_proc rp;
    relay_start(&rp, 0, true, args);
    world w;
    world_open(&w);
    peer p;
    pl_relay_client_opts o = base_opts(&p, rp.url, SEED_B);
    o.jwt = "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.e30.c2lnbmF0dXJl";
    peer_open(&p, "p", w.d, &o);
    assert_true(run_until(&w.loop, is_connected, &p, 5000));
    assert_true(relay_expect(&rp, "has an invalid JWT (PL_ERR_JWT_MALFORMED): anonymous", 5000));
    char t[65];
    topic_of(t, 'c');
    /* ttl below the relay's minimum (10 s): answered with an error */
    pl_publish_opts po = {.ttl_s = 5};
    assert_int_equal(pl_transport_publish(p.t, t, (const uint8_t *)"x", 1, &po), PL_OK);
    assert_true(run_until(&w.loop, pub_failed_one, &p, 5000));
    assert_int_equal(p.pub_ok, 0);
    /* The refusal reaches the transport's user as an error, with its code. */
    assert_int_equal(p.pub_errors, 1);
    assert_int_equal(p.pub_error, PL_ERR_RELAY);
    assert_int_equal(p.pub_error_code, -32000);
    assert_true(relay_expect(&rp, "request failed: PL_ERR_BAD_TTL", 5000));
    assert_int_equal(pl_transport_publish(p.t, t, (const uint8_t *)"y", 1, NULL), PL_OK);
    assert_true(run_until(&w.loop, none_pending, &p, 5000));
    assert_int_equal(p.pub_ok, 1);
    peer_close(&w.loop, &p);
    world_close(&w);
    relay_stop(&rp, SIGTERM);
}

/* A relay that stops answering (its process stopped: no pong, no frame) is
 * detected by the ping time-out; the client reconnects once it is back. */
static void test_frozen_relay(void **state) {
    (void)state;
    relay_proc rp;
    relay_start(&rp, 0, false, NULL);
    world w;
    world_open(&w);
    peer a;
    pl_relay_client_opts oa = base_opts(&a, rp.url, SEED_A);
    oa.ping_interval_ms = 200;
    oa.ping_timeout_ms = 300;
    peer_open(&a, "a", w.d, &oa);
    assert_true(run_until(&w.loop, is_connected, &a, 5000));
    kill(rp.pid, SIGSTOP);
    assert_true(run_until(&w.loop, has_reconnecting, &a, 5000));
    assert_int_equal(a.last_err, PL_ERR_TIMEOUT);
    kill(rp.pid, SIGCONT);
    char ta[65];
    topic_of(ta, 'a');
    assert_int_equal(pl_transport_subscribe(a.t, ta), PL_OK);
    assert_true(run_until(&w.loop, is_connected, &a, 10000));
    assert_int_equal(pl_transport_publish(a.t, ta, (const uint8_t *)"x", 1, NULL), PL_OK);
    assert_true(run_until(&w.loop, none_pending, &a, 5000));
    peer_close(&w.loop, &a);
    world_close(&w);
    relay_stop(&rp, SIGTERM);
}

/* A relay that reads and never answers: the publish is re-sent after each
 * request time-out, and the third drops the connection. */
static void test_stuck_relay(void **state) {
    (void)state;
    const char *args[] = {"--fault", "ignore", NULL};
    relay_proc rp;
    relay_start(&rp, 0, false, args);
    world w;
    world_open(&w);
    peer a;
    pl_relay_client_opts oa = base_opts(&a, rp.url, SEED_A);
    oa.request_timeout_ms = 200;
    peer_open(&a, "a", w.d, &oa);
    assert_true(run_until(&w.loop, is_connected, &a, 5000));
    char ta[65];
    topic_of(ta, 'a');
    assert_int_equal(pl_transport_publish(a.t, ta, (const uint8_t *)"x", 1, NULL), PL_OK);
    assert_true(run_until(&w.loop, has_reconnecting, &a, 5000));
    assert_int_equal(a.last_err, PL_ERR_TIMEOUT);
    pl_relay_client_stats st;
    pl_relay_client_get_stats(a.t, &st);
    assert_int_equal(st.resent, 2);
    assert_int_equal(pl_transport_pending(a.t), 1);
    peer_close(&w.loop, &a);
    world_close(&w);
    relay_stop(&rp, SIGTERM);
}

/* wss:// with verification: a self-signed relay certificate is refused with
 * PL_ERR_TLS, and accepted with its certificate given as ca_file. */
static void test_tls(void **state) {
    (void)state;
    char dir[] = "/tmp/pl-tls-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[1024], cert[256], key[256];
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
             "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout '%s' -out '%s' "
             ">/dev/null 2>&1",
             key, cert);
    assert_int_equal(system(cmd), 0);
    const char *args[] = {"--tls-cert", cert, "--tls-key", key, NULL};
    relay_proc rp;
    relay_start(&rp, 0, false, args);
    assert_non_null(strstr(rp.url, "wss://"));

    world w;
    world_open(&w);
    peer untrusting, a, b;
    pl_relay_client_opts ou = base_opts(&untrusting, rp.url, SEED_A);
    peer_open(&untrusting, "untrusting", w.d, &ou);
    assert_true(run_until(&w.loop, has_reconnecting, &untrusting, 5000));
    assert_int_equal(untrusting.last_err, PL_ERR_TLS);
    assert_int_equal(untrusting.connected, 0);
    peer_close(&w.loop, &untrusting);

    pl_relay_client_opts oa = base_opts(&a, rp.url, SEED_A);
    oa.ca_file = cert;
    pl_relay_client_opts ob = base_opts(&b, rp.url, SEED_B);
    ob.ca_file = cert;
    peer_open(&a, "a", w.d, &oa);
    peer_open(&b, "b", w.d, &ob);
    exchange(&w.loop, &a, &b);
    peer_close(&w.loop, &a);
    peer_close(&w.loop, &b);
    world_close(&w);
    relay_stop(&rp, SIGTERM);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* A host name is resolved off the loop (libuv's thread pool); "localhost"
 * may give ::1 first, where the relay does not listen: the next attempt
 * takes the next address. */
static void test_hostname_url(void **state) {
    (void)state;
    relay_proc rp;
    relay_start(&rp, 0, false, NULL);
    char url[64];
    snprintf(url, sizeof url, "ws://localhost:%d", rp.port);
    world w;
    world_open(&w);
    peer p;
    pl_relay_client_opts o = base_opts(&p, url, SEED_A);
    peer_open(&p, "p", w.d, &o);
    assert_true(run_until(&w.loop, is_connected, &p, 5000));
    peer_close(&w.loop, &p);
    world_close(&w);
    relay_stop(&rp, SIGTERM);
}

/* Closing from inside a callback is allowed, and graceful: the relay sees a
 * close frame with 1000. */
static void close_in_state(void *ud, pl_transport *t, pl_transport_state s, pl_err err) {
    peer *p = ud;
    on_state(ud, t, s, err);
    if (s == PL_TRANSPORT_CONNECTED) pl_transport_close(p->t, 0, on_closed, p);
}

static void test_close_from_callback(void **state) {
    (void)state;
    const char *args[] = {"--verbose", NULL};
    relay_proc rp;
    relay_start(&rp, 0, true, args);
    world w;
    world_open(&w);
    peer p;
    pl_relay_client_opts o = base_opts(&p, rp.url, SEED_A);
    o.handler.on_state = close_in_state;
    peer_open(&p, "p", w.d, &o);
    assert_true(run_until(&w.loop, has_closed, &p, 5000));
    assert_int_equal(p.connected, 1);
    assert_true(relay_expect(&rp, "peer sent close 1000", 5000));
    world_close(&w);
    relay_stop(&rp, SIGTERM);
}

static int quiet_lws(void **state) {
    (void)state;
    quiet_log();
    signal(SIGPIPE, SIG_IGN);
    rng_state = pl_test_seed();
    return pl_init() == PL_OK ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_parse),
        cmocka_unit_test(test_dedup_lru),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_relay_topic),
        cmocka_unit_test(test_core_connect_path_and_jwt),
        cmocka_unit_test(test_core_subscribe_publish),
        cmocka_unit_test(test_core_delivery),
        cmocka_unit_test(test_core_resend_and_rate_limit),
        cmocka_unit_test(test_core_unread_answers_bounded),
        cmocka_unit_test(test_core_backoff_and_auth),
        cmocka_unit_test(test_core_pings),
        cmocka_unit_test(test_core_frames),
        cmocka_unit_test(test_core_limits_and_expiry),
        cmocka_unit_test(test_core_batches),
        cmocka_unit_test(test_core_pacing),
        cmocka_unit_test(test_core_close_cancels),
        cmocka_unit_test(test_core_subscribe_errors),
        cmocka_unit_test_teardown(test_bad_options_and_unreachable, kill_children),
        cmocka_unit_test_teardown(test_reason_dns, kill_children),
        cmocka_unit_test_teardown(test_did_and_cancel_on_close, kill_children),
        cmocka_unit_test_teardown(test_two_clients, kill_children),
        cmocka_unit_test_teardown(test_publish_while_relay_down, kill_children),
        cmocka_unit_test_teardown(test_auth_rejected_401, kill_children),
        cmocka_unit_test_teardown(test_auth_rejected_other_public_url, kill_children),
        cmocka_unit_test_teardown(test_auth_default_audience, kill_children),
        cmocka_unit_test_teardown(test_auth_rejected_close_3000, kill_children),
        cmocka_unit_test_teardown(test_invalid_jwt_served_anonymously, kill_children),
        cmocka_unit_test_teardown(test_frozen_relay, kill_children),
        cmocka_unit_test_teardown(test_stuck_relay, kill_children),
        cmocka_unit_test_teardown(test_tls, kill_children),
        cmocka_unit_test_teardown(test_hostname_url, kill_children),
        cmocka_unit_test_teardown(test_close_from_callback, kill_children),
    };
    /* PL_TEST_FILTER=test_tls runs one test (cmocka's pattern syntax). */
    if (getenv("PL_TEST_FILTER")) cmocka_set_test_filter(getenv("PL_TEST_FILTER"));
    return cmocka_run_group_tests(tests, quiet_lws, NULL);
}
