/* SPDX-License-Identifier: Apache-2.0 */
/* JSON-RPC 2.0 codec: exact ids, member order, batches, every error path. */
/* cmocka.h needs these first; kept in their own block so sorting keeps the order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pairlink/jsonrpc.h"
#include "support/support.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static pl_err decode(const char *text, pl_rpc_msg **m, size_t *n, bool *batch) {
    return pl_rpc_decode(m, n, batch, text, strlen(text));
}

/* Decode a single message, asserting success. */
static pl_rpc_msg *one(const char *text) {
    pl_rpc_msg *m;
    size_t n;
    bool batch;
    pl_err e = decode(text, &m, &n, &batch);
    if (e != PL_OK) fail_msg("%s: %s", text, pl_errname(e));
    assert_int_equal(n, 1);
    assert_false(batch);
    return m;
}

static pl_err decode_err(const char *text) {
    pl_rpc_msg *m = (pl_rpc_msg *)1;
    size_t n = 7;
    bool batch = true;
    pl_err e = decode(text, &m, &n, &batch);
    if (e != PL_OK) {
        assert_null(m);
        assert_int_equal(n, 0);
        assert_false(batch);
    } else {
        pl_rpc_msgs_free(m, n);
    }
    return e;
}

static void test_request_round_trip(void **state) {
    (void)state;
    /* a 19-digit id above 2^53 must not pass through a double */
    pl_rpc_id id = pl_rpc_id_num(1700000000000000123);
    char *s = NULL;
    assert_int_equal(pl_rpc_encode_request(&s, &id, "irn_publish",
                                           "{ \"topic\" : \"ab\", \"ttl\" : 300, \"tag\": 1000 }"),
                     PL_OK);
    assert_string_equal(
        s, "{\"id\":1700000000000000123,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\","
           "\"params\":{\"topic\":\"ab\",\"ttl\":300,\"tag\":1000}}");
    pl_rpc_msg *m = one(s);
    assert_int_equal(m->kind, PL_RPC_REQUEST);
    assert_int_equal(m->id.kind, PL_RPC_ID_NUM);
    assert_true(m->id.num == 1700000000000000123);
    assert_true(pl_rpc_id_equal(&m->id, &id));
    assert_string_equal(m->method, "irn_publish");
    assert_string_equal(m->params, "{\"topic\":\"ab\",\"ttl\":300,\"tag\":1000}");
    char *s2 = NULL;
    assert_int_equal(pl_rpc_encode_batch(&s2, m, 1), PL_OK);
    assert_int_equal(s2[0], '[');
    assert_int_equal(strncmp(s2 + 1, s, strlen(s)), 0);
    pl_free(s2);
    pl_rpc_msgs_free(m, 1);
    pl_free(s);

    /* the same digits as a string id stay a string */
    id = pl_rpc_id_str("1700000000000000123");
    assert_int_equal(pl_rpc_encode_request(&s, &id, "irn_subscribe", "{\"topic\":\"ab\"}"), PL_OK);
    assert_string_equal(s, "{\"id\":\"1700000000000000123\",\"jsonrpc\":\"2.0\",\"method\":"
                           "\"irn_subscribe\",\"params\":{\"topic\":\"ab\"}}");
    m = one(s);
    assert_int_equal(m->id.kind, PL_RPC_ID_STR);
    assert_string_equal(m->id.str, "1700000000000000123");
    assert_true(pl_rpc_id_equal(&m->id, &id));
    assert_false(
        pl_rpc_id_equal(&m->id, &(pl_rpc_id){.kind = PL_RPC_ID_NUM, .num = 1700000000000000123}));
    pl_rpc_msgs_free(m, 1);
    pl_free(s);

    /* notification: no id, no params */
    id = (pl_rpc_id){.kind = PL_RPC_ID_NONE};
    assert_int_equal(pl_rpc_encode_request(&s, &id, "ping", NULL), PL_OK);
    assert_string_equal(s, "{\"jsonrpc\":\"2.0\",\"method\":\"ping\"}");
    m = one(s);
    assert_int_equal(m->id.kind, PL_RPC_ID_NONE);
    assert_null(m->params);
    pl_rpc_msgs_free(m, 1);
    pl_free(s);

    /* params may be any JSON value */
    const char *params[] = {"\"x\"", "5", "null", "[]", "[1,{\"a\":[true,false]}]", "-0.5"};
    for (size_t i = 0; i < ARRAY_LEN(params); i++) {
        id = pl_rpc_id_num((int64_t)i);
        assert_int_equal(pl_rpc_encode_request(&s, &id, "m", params[i]), PL_OK);
        m = one(s);
        assert_string_equal(m->params, params[i]);
        pl_rpc_msgs_free(m, 1);
        pl_free(s);
    }
}

static void test_responses(void **state) {
    (void)state;
    pl_rpc_id id = pl_rpc_id_num(1700000000000123);
    char *s = NULL;
    assert_int_equal(pl_rpc_encode_result(&s, &id, "true"), PL_OK);
    assert_string_equal(s, "{\"id\":1700000000000123,\"jsonrpc\":\"2.0\",\"result\":true}");
    pl_rpc_msg *m = one(s);
    assert_int_equal(m->kind, PL_RPC_RESULT);
    assert_true(m->id.num == 1700000000000123);
    assert_string_equal(m->result, "true");
    pl_rpc_msgs_free(m, 1);
    pl_free(s);

    assert_int_equal(pl_rpc_encode_result(&s, &id, NULL), PL_OK);
    assert_string_equal(s, "{\"id\":1700000000000123,\"jsonrpc\":\"2.0\",\"result\":null}");
    m = one(s);
    assert_string_equal(m->result, "null");
    pl_rpc_msgs_free(m, 1);
    pl_free(s);

    /* the reply JS sends for an unregistered method */
    assert_int_equal(pl_rpc_encode_error(&s, &id, 10001, "Unsupported wc_ method. wc_foo", NULL),
                     PL_OK);
    assert_string_equal(s, "{\"id\":1700000000000123,\"jsonrpc\":\"2.0\",\"error\":{\"code\":10001,"
                           "\"message\":\"Unsupported wc_ method. wc_foo\"}}");
    m = one(s);
    assert_int_equal(m->kind, PL_RPC_ERROR);
    assert_int_equal(m->err_code, 10001);
    assert_string_equal(m->err_message, "Unsupported wc_ method. wc_foo");
    assert_null(m->err_data);
    pl_rpc_msgs_free(m, 1);
    pl_free(s);

    id = (pl_rpc_id){.kind = PL_RPC_ID_NULL};
    assert_int_equal(pl_rpc_encode_error(&s, &id, -32700, "Parse error", "{\"at\": [1, 2]}"),
                     PL_OK);
    assert_string_equal(s, "{\"id\":null,\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32700,"
                           "\"message\":\"Parse error\",\"data\":{\"at\":[1,2]}}}");
    m = one(s);
    assert_int_equal(m->id.kind, PL_RPC_ID_NULL);
    assert_int_equal(m->err_code, -32700);
    assert_string_equal(m->err_data, "{\"at\":[1,2]}");
    pl_rpc_msgs_free(m, 1);
    pl_free(s);

    /* members in any order on input */
    m = one("{\"result\":{\"b\":1,\"a\":2},\"jsonrpc\":\"2.0\",\"id\":\"x\",\"extra\":1}");
    assert_int_equal(m->kind, PL_RPC_RESULT);
    assert_string_equal(m->id.str, "x");
    assert_string_equal(m->result, "{\"b\":1,\"a\":2}");
    pl_rpc_msgs_free(m, 1);
}

static void test_ids(void **state) {
    (void)state;
    pl_rpc_msg *m = one("{\"id\":9223372036854775807,\"jsonrpc\":\"2.0\",\"result\":1}");
    assert_true(m->id.num == INT64_MAX);
    pl_rpc_msgs_free(m, 1);
    m = one("{\"id\":-9223372036854775808,\"jsonrpc\":\"2.0\",\"result\":1}");
    assert_true(m->id.num == INT64_MIN);
    pl_rpc_msgs_free(m, 1);
    m = one("{\"id\":\"\",\"jsonrpc\":\"2.0\",\"method\":\"a\"}");
    assert_int_equal(m->id.kind, PL_RPC_ID_STR);
    assert_string_equal(m->id.str, "");
    pl_rpc_msgs_free(m, 1);
    m = one("{\"id\":null,\"jsonrpc\":\"2.0\",\"method\":\"a\"}");
    assert_int_equal(m->id.kind, PL_RPC_ID_NULL);
    pl_rpc_msgs_free(m, 1);

    char max_id[PL_RPC_ID_MAX + 1];
    memset(max_id, '7', PL_RPC_ID_MAX);
    max_id[PL_RPC_ID_MAX] = '\0';
    char text[256];
    snprintf(text, sizeof text, "{\"id\":\"%s\",\"jsonrpc\":\"2.0\",\"result\":1}", max_id);
    m = one(text);
    assert_string_equal(m->id.str, max_id);
    pl_rpc_msgs_free(m, 1);
    snprintf(text, sizeof text, "{\"id\":\"%s7\",\"jsonrpc\":\"2.0\",\"result\":1}", max_id);
    assert_int_equal(decode_err(text), PL_ERR_RPC_BAD_ID);

    static const char *bad[] = {
        "{\"id\":9223372036854775808,\"jsonrpc\":\"2.0\",\"result\":1}",
        "{\"id\":-9223372036854775809,\"jsonrpc\":\"2.0\",\"result\":1}",
        "{\"id\":100000000000000000000000,\"jsonrpc\":\"2.0\",\"method\":\"a\"}",
        "[{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":1},{\"id\":1e30,\"jsonrpc\":\"2.0\",\"result\":"
        "1}]",
        "{\"id\":1.5,\"jsonrpc\":\"2.0\",\"result\":1}",
        "{\"id\":1.0,\"jsonrpc\":\"2.0\",\"result\":1}",
        "{\"id\":1e3,\"jsonrpc\":\"2.0\",\"result\":1}",
        "{\"id\":true,\"jsonrpc\":\"2.0\",\"result\":1}",
        "{\"id\":{},\"jsonrpc\":\"2.0\",\"result\":1}",
        "{\"id\":[1],\"jsonrpc\":\"2.0\",\"result\":1}",
        "{\"id\":\"a\\u0000b\",\"jsonrpc\":\"2.0\",\"result\":1}",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        pl_err e = decode_err(bad[i]);
        if (e != PL_ERR_RPC_BAD_ID) fail_msg("%s: %s", bad[i], pl_errname(e));
    }
    /* an integer beyond int64 in the payload is a JSON error, not an id error */
    assert_int_equal(decode_err("{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":18446744073709551616}"),
                     PL_ERR_JSON);

    /* helpers */
    pl_rpc_id a = pl_rpc_id_num(5), b = pl_rpc_id_num(5), c = pl_rpc_id_str("5");
    assert_true(pl_rpc_id_equal(&a, &b));
    assert_false(pl_rpc_id_equal(&a, &c));
    b.num = 6;
    assert_false(pl_rpc_id_equal(&a, &b));
    pl_rpc_id d = pl_rpc_id_str("5");
    assert_true(pl_rpc_id_equal(&c, &d));
    pl_rpc_id n1 = {.kind = PL_RPC_ID_NULL}, n2 = {.kind = PL_RPC_ID_NULL, .num = 3};
    assert_true(pl_rpc_id_equal(&n1, &n2));

    /* JS payloadId(): Date.now() * 1000 + 0..999, 16 digits today */
    const int64_t now_ms = 1700000000123;
    bool seen_distinct = false;
    pl_rpc_id first = pl_rpc_id_new(now_ms);
    for (int i = 0; i < 200; i++) {
        pl_rpc_id r = pl_rpc_id_new(now_ms);
        assert_int_equal(r.kind, PL_RPC_ID_NUM);
        assert_true(r.num / 1000 == now_ms);
        assert_true(r.num >= 1000000000000000 && r.num <= 9999999999999999);
        if (r.num != first.num) seen_distinct = true;
    }
    assert_true(seen_distinct);
}

static void test_invalid(void **state) {
    (void)state;
    static const struct {
        const char *text;
        pl_err e;
    } cases[] = {
        {"", PL_ERR_JSON},
        {"{", PL_ERR_JSON},
        {"{}x", PL_ERR_JSON},
        {"{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":1} {}", PL_ERR_JSON},
        {"{\"id\":1,\"id\":2,\"jsonrpc\":\"2.0\",\"result\":1}", PL_ERR_JSON}, /* duplicate key */
        {"{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":\"\xFF\"}", PL_ERR_JSON},   /* not UTF-8 */
        {"{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":NaN}", PL_ERR_JSON},
        {"{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":1e999}", PL_ERR_JSON},
        {"\"text\"", PL_ERR_RPC_INVALID},
        {"42", PL_ERR_RPC_INVALID},
        {"null", PL_ERR_RPC_INVALID},
        {"true", PL_ERR_RPC_INVALID},
        {"{}", PL_ERR_RPC_INVALID},
        {"[]", PL_ERR_RPC_EMPTY_BATCH},
        {"[[]]", PL_ERR_RPC_INVALID},
        {"[1]", PL_ERR_RPC_INVALID},
        {"[{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":1},{}]", PL_ERR_RPC_INVALID},
        {"{\"id\":1,\"result\":1}", PL_ERR_RPC_INVALID},
        {"{\"id\":1,\"jsonrpc\":\"1.0\",\"result\":1}", PL_ERR_RPC_INVALID},
        {"{\"id\":1,\"jsonrpc\":2.0,\"result\":1}", PL_ERR_RPC_INVALID},
        {"{\"id\":1,\"jsonrpc\":\"2.0\\u0000\",\"result\":1}", PL_ERR_RPC_INVALID},
        {"{\"id\":1,\"jsonrpc\":\"2.0\"}", PL_ERR_RPC_INVALID},
        {"{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":5}", PL_ERR_RPC_INVALID},
        {"{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":null}", PL_ERR_RPC_INVALID},
        {"{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"a\\u0000b\"}", PL_ERR_RPC_INVALID},
        {"{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"a\",\"result\":1}", PL_ERR_RPC_INVALID},
        {"{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":1,\"error\":{\"code\":1,\"message\":\"m\"}}",
         PL_ERR_RPC_INVALID},
        {"{\"jsonrpc\":\"2.0\",\"result\":1}", PL_ERR_RPC_INVALID}, /* response without id */
        {"{\"id\":1,\"jsonrpc\":\"2.0\",\"error\":5}", PL_ERR_RPC_INVALID},
        {"{\"id\":1,\"jsonrpc\":\"2.0\",\"error\":{\"message\":\"m\"}}", PL_ERR_RPC_INVALID},
        {"{\"id\":1,\"jsonrpc\":\"2.0\",\"error\":{\"code\":1.5,\"message\":\"m\"}}",
         PL_ERR_RPC_INVALID},
        {"{\"id\":1,\"jsonrpc\":\"2.0\",\"error\":{\"code\":\"1\",\"message\":\"m\"}}",
         PL_ERR_RPC_INVALID},
        {"{\"id\":1,\"jsonrpc\":\"2.0\",\"error\":{\"code\":1}}", PL_ERR_RPC_INVALID},
        {"{\"id\":1,\"jsonrpc\":\"2.0\",\"error\":{\"code\":1,\"message\":[]}}",
         PL_ERR_RPC_INVALID},
        {"{\"id\":1,\"jsonrpc\":\"2.0\",\"error\":{\"code\":1,\"message\":\"a\\u0000\"}}",
         PL_ERR_RPC_INVALID},
        {"{\"id\":1,\"jsonrpc\":\"2.0\",\"error\":{\"code\":1,\"message\":\"m\",\"data\":null}}",
         PL_OK},
        {"{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":null}", PL_OK},
        {"{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"\",\"params\":null}", PL_OK},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        pl_err e = decode_err(cases[i].text);
        if (e != cases[i].e) fail_msg("case %zu %s: got %s", i, cases[i].text, pl_errname(e));
    }
    /* a NUL byte inside the length is not the end of the text */
    const char nul[] = "{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":1}\0junk";
    pl_rpc_msg *m;
    size_t n;
    bool batch;
    assert_int_equal(pl_rpc_decode(&m, &n, &batch, nul, sizeof nul - 1), PL_ERR_JSON);
    assert_int_equal(pl_rpc_decode(&m, &n, &batch, nul, strlen(nul)), PL_OK);
    pl_rpc_msgs_free(m, n);
    assert_int_equal(pl_rpc_decode(&m, &n, &batch, NULL, 0), PL_ERR_JSON);
    pl_rpc_msgs_free(NULL, 0);
}

static void test_encode_errors(void **state) {
    (void)state;
    pl_rpc_id id = pl_rpc_id_num(1);
    char *s = (char *)1;
    assert_int_equal(pl_rpc_encode_request(&s, &id, "m", "{"), PL_ERR_JSON);
    assert_null(s);
    assert_int_equal(pl_rpc_encode_request(&s, &id, "m", ""), PL_ERR_JSON);
    assert_int_equal(pl_rpc_encode_request(&s, &id, "m", "1 2"), PL_ERR_JSON);
    assert_int_equal(pl_rpc_encode_request(&s, &id, "m", "{\"a\":1,\"a\":2}"), PL_ERR_JSON);
    assert_int_equal(pl_rpc_encode_request(&s, &id, "\xC3", NULL), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_rpc_encode_result(&s, &id, "tru"), PL_ERR_JSON);
    assert_int_equal(pl_rpc_encode_error(&s, &id, 1, "m", "{x}"), PL_ERR_JSON);
    assert_int_equal(pl_rpc_encode_error(&s, &id, 1, "\xFF", NULL), PL_ERR_INVALID_ARG);
    assert_null(s);
    pl_rpc_id bad = pl_rpc_id_str("\xE2\x82");
    assert_int_equal(pl_rpc_encode_result(&s, &bad, "1"), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_rpc_encode_batch(&s, NULL, 0), PL_ERR_RPC_EMPTY_BATCH);
    assert_null(s);
}

static void test_batches(void **state) {
    (void)state;
    const char *text =
        "[{\"id\":\"1700000000000000123\",\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\","
        "\"params\":{\"topic\":\"ab\"}},{\"id\":5,\"jsonrpc\":\"2.0\",\"result\":\"cd\"},"
        "{\"id\":6,\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32000,\"message\":\"ttl\"}},"
        "{\"jsonrpc\":\"2.0\",\"method\":\"note\"}]";
    pl_rpc_msg *m;
    size_t n;
    bool batch;
    assert_int_equal(decode(text, &m, &n, &batch), PL_OK);
    assert_true(batch);
    assert_int_equal(n, 4);
    assert_int_equal(m[0].kind, PL_RPC_REQUEST);
    assert_int_equal(m[1].kind, PL_RPC_RESULT);
    assert_int_equal(m[2].kind, PL_RPC_ERROR);
    assert_int_equal(m[3].kind, PL_RPC_REQUEST);
    assert_int_equal(m[3].id.kind, PL_RPC_ID_NONE);
    char *s = NULL;
    assert_int_equal(pl_rpc_encode_batch(&s, m, n), PL_OK);
    assert_string_equal(s, text);
    pl_free(s);
    pl_rpc_msgs_free(m, n);

    /* one message in an array is still a batch */
    assert_int_equal(decode("[{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":1}]", &m, &n, &batch),
                     PL_OK);
    assert_true(batch);
    assert_int_equal(n, 1);
    pl_rpc_msgs_free(m, n);

    /* PL_RPC_MAX_BATCH messages are accepted, one more is not */
    const char *item = "{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":true}";
    size_t il = strlen(item);
    char *big = malloc((PL_RPC_MAX_BATCH + 1) * (il + 1) + 2);
    assert_non_null(big);
    size_t o = 0;
    big[o++] = '[';
    for (int i = 0; i < PL_RPC_MAX_BATCH; i++) {
        if (i) big[o++] = ',';
        memcpy(big + o, item, il), o += il;
    }
    big[o] = ']';
    assert_int_equal(pl_rpc_decode(&m, &n, &batch, big, o + 1), PL_OK);
    assert_int_equal(n, PL_RPC_MAX_BATCH);
    assert_int_equal(pl_rpc_encode_batch(&s, m, n), PL_OK);
    assert_int_equal(strlen(s), o + 1);
    assert_memory_equal(s, big, o + 1);
    pl_free(s);
    pl_rpc_msgs_free(m, n);
    big[o++] = ',';
    memcpy(big + o, item, il), o += il;
    big[o] = ']';
    assert_int_equal(pl_rpc_decode(&m, &n, &batch, big, o + 1), PL_ERR_TOO_LARGE);
    free(big);

    pl_rpc_msg many[PL_RPC_MAX_BATCH + 1];
    memset(many, 0, sizeof many);
    for (size_t i = 0; i < ARRAY_LEN(many); i++) {
        many[i].kind = PL_RPC_RESULT;
        many[i].id = pl_rpc_id_num((int64_t)i);
    }
    assert_int_equal(pl_rpc_encode_batch(&s, many, ARRAY_LEN(many)), PL_ERR_TOO_LARGE);
    assert_int_equal(pl_rpc_encode_batch(&s, many, PL_RPC_MAX_BATCH), PL_OK);
    pl_free(s);
    /* a bad element fails the whole batch */
    many[3].kind = PL_RPC_REQUEST;
    many[3].method = "m";
    many[3].params = "{";
    assert_int_equal(pl_rpc_encode_batch(&s, many, 5), PL_ERR_JSON);
    assert_null(s);
}

static void test_unicode(void **state) {
    (void)state;
    /* escapes decode to UTF-8; output is raw UTF-8 as JSON.stringify writes */
    pl_rpc_msg *m = one("{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"caf\\u00e9\\ud83d\\ude00\","
                        "\"params\":{\"s\":\"\\u00e9\\n\\\"\\\\\\u0000/\"}}");
    assert_string_equal(m->method, "caf\xC3\xA9\xF0\x9F\x98\x80");
    assert_string_equal(m->params, "{\"s\":\"\xC3\xA9\\n\\\"\\\\\\u0000/\"}");
    char *s = NULL;
    assert_int_equal(pl_rpc_encode_request(&s, &m->id, m->method, m->params), PL_OK);
    assert_string_equal(s,
                        "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"caf\xC3\xA9\xF0\x9F\x98\x80\","
                        "\"params\":{\"s\":\"\xC3\xA9\\n\\\"\\\\\\u0000/\"}}");
    pl_free(s);
    pl_rpc_msgs_free(m, 1);
    /* a lone surrogate escape is not text */
    assert_int_equal(decode_err("{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":\"\\ud83d\"}"),
                     PL_ERR_JSON);
}

static char *nested(size_t depth, const char *prefix, const char *suffix) {
    size_t pl = strlen(prefix), sl = strlen(suffix);
    char *t = malloc(pl + 2 * depth + sl + 1);
    assert_non_null(t);
    memcpy(t, prefix, pl);
    memset(t + pl, '[', depth);
    memset(t + pl + depth, ']', depth);
    memcpy(t + pl + 2 * depth, suffix, sl + 1);
    return t;
}

static void test_depth_and_size(void **state) {
    (void)state;
    /* moderately deep params are fine */
    char *t = nested(500, "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":", "}");
    pl_rpc_msg *m = one(t);
    assert_int_equal(strlen(m->params), 1000);
    char *s = NULL;
    assert_int_equal(pl_rpc_encode_request(&s, &m->id, m->method, m->params), PL_OK);
    assert_string_equal(s, t);
    pl_free(s);
    pl_rpc_msgs_free(m, 1);
    free(t);
    /* far beyond the parser's depth limit: a clean error, not a crash */
    t = nested(200000, "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":", "}");
    assert_int_equal(decode_err(t), PL_ERR_JSON);
    free(t);
    t = nested(200000, "", "");
    assert_int_equal(decode_err(t), PL_ERR_JSON);
    pl_rpc_id id = pl_rpc_id_num(1);
    assert_int_equal(pl_rpc_encode_request(&s, &id, "m", t), PL_ERR_JSON);
    free(t);

    /* size bound: checked before parsing, then exactly at the limit */
    char *big = malloc(PL_RPC_MAX_TEXT + 2);
    assert_non_null(big);
    const char *head = "{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":\"";
    size_t hl = strlen(head);
    memcpy(big, head, hl);
    memset(big + hl, 'a', PL_RPC_MAX_TEXT - hl - 2);
    memcpy(big + PL_RPC_MAX_TEXT - 2, "\"}", 3);
    size_t n;
    bool batch;
    assert_int_equal(pl_rpc_decode(&m, &n, &batch, big, PL_RPC_MAX_TEXT), PL_OK);
    assert_int_equal(strlen(m->result), PL_RPC_MAX_TEXT - hl - 2 + 2);
    pl_rpc_msgs_free(m, n);
    big[PL_RPC_MAX_TEXT] = ' ';
    assert_int_equal(pl_rpc_decode(&m, &n, &batch, big, PL_RPC_MAX_TEXT + 1), PL_ERR_TOO_LARGE);
    assert_null(m);
    /* an encoder refuses to write what the decoder would refuse to read */
    memset(big, 'a', PL_RPC_MAX_TEXT - 1);
    big[0] = '"';
    big[PL_RPC_MAX_TEXT - 2] = '"';
    big[PL_RPC_MAX_TEXT - 1] = '\0';
    assert_int_equal(pl_rpc_encode_result(&s, &id, big), PL_ERR_TOO_LARGE);
    assert_null(s);
    free(big);
}

/* Random JSON built with jansson, as params/result/data. */
static json_t *rand_json(uint64_t *st, int depth) {
    switch (pl_test_rand(st) % (depth > 3 ? 5 : 7)) {
    case 0:
        return json_integer((json_int_t)pl_test_rand(st));
    case 1:
        return json_real((double)(int32_t)pl_test_rand(st) / 8.0);
    case 2: {
        char buf[32];
        size_t n = pl_test_rand(st) % 12;
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)(1 + pl_test_rand(st) % 0x7F);
        return json_stringn(buf, n);
    }
    case 3:
        return json_boolean(pl_test_rand(st) % 2);
    case 4:
        return json_null();
    case 5: {
        json_t *a = json_array();
        for (size_t i = pl_test_rand(st) % 4; i > 0; i--)
            json_array_append_new(a, rand_json(st, depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (size_t i = pl_test_rand(st) % 4; i > 0; i--) {
            char k[8];
            snprintf(k, sizeof k, "k%u", (unsigned)(pl_test_rand(st) % 100));
            json_object_set_new(o, k, rand_json(st, depth + 1));
        }
        return o;
    }
    }
}

static pl_rpc_id rand_id(uint64_t *st) {
    switch (pl_test_rand(st) % 3) {
    case 0:
        return pl_rpc_id_num((int64_t)pl_test_rand(st));
    case 1: {
        char s[PL_RPC_ID_MAX + 1];
        snprintf(s, sizeof s, "%" PRIu64, pl_test_rand(st));
        return pl_rpc_id_str(s);
    }
    default:
        return (pl_rpc_id){.kind = PL_RPC_ID_NULL};
    }
}

static void test_random_round_trip(void **state) {
    (void)state;
    uint64_t st = pl_test_seed();
    for (int round = 0; round < 500; round++) {
        pl_rpc_msg in[3];
        memset(in, 0, sizeof in);
        size_t count = 1 + pl_test_rand(&st) % 3;
        for (size_t i = 0; i < count; i++) {
            json_t *j = rand_json(&st, 0);
            char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
            json_decref(j);
            in[i].id = rand_id(&st);
            switch (pl_test_rand(&st) % 3) {
            case 0:
                in[i].kind = PL_RPC_REQUEST;
                in[i].method = "wc_sessionRequest";
                in[i].params = text;
                break;
            case 1:
                in[i].kind = PL_RPC_RESULT;
                in[i].result = text;
                break;
            default:
                in[i].kind = PL_RPC_ERROR;
                in[i].err_code = (int64_t)pl_test_rand(&st);
                in[i].err_message = "boom";
                in[i].err_data = text;
            }
        }
        char *s = NULL;
        assert_int_equal(pl_rpc_encode_batch(&s, in, count), PL_OK);
        pl_rpc_msg *out;
        size_t n;
        bool batch;
        pl_err e = decode(s, &out, &n, &batch);
        if (e != PL_OK) fail_msg("round %d: %s: %s", round, pl_errname(e), s);
        assert_int_equal(n, count);
        for (size_t i = 0; i < count; i++) {
            assert_int_equal(out[i].kind, in[i].kind);
            assert_true(pl_rpc_id_equal(&out[i].id, &in[i].id));
            const char *a = in[i].params   ? in[i].params
                            : in[i].result ? in[i].result
                                           : in[i].err_data;
            const char *b = out[i].params   ? out[i].params
                            : out[i].result ? out[i].result
                                            : out[i].err_data;
            assert_string_equal(a, b);
            if (in[i].kind == PL_RPC_ERROR) assert_true(out[i].err_code == in[i].err_code);
        }
        char *s2 = NULL;
        assert_int_equal(pl_rpc_encode_batch(&s2, out, n), PL_OK);
        assert_string_equal(s, s2);
        pl_free(s);
        pl_free(s2);
        pl_rpc_msgs_free(out, n);
        for (size_t i = 0; i < count; i++)
            free(in[i].params ? in[i].params : in[i].result ? in[i].result : in[i].err_data);
    }
}

/* Random truncations and byte flips of a valid batch: never a crash, and
 * outputs stay defined on failure. */
static void test_random_mutations(void **state) {
    (void)state;
    uint64_t st = pl_test_seed();
    const char *base =
        "[{\"id\":\"17\",\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":{\"a\":[1,2.5,\"x\"]}},"
        "{\"id\":5,\"jsonrpc\":\"2.0\",\"error\":{\"code\":-1,\"message\":\"e\",\"data\":[]}}]";
    size_t n0 = strlen(base);
    static const char alphabet[] = "{}[]\",:0123456789e.-\\u \x00\xFF";
    char buf[512];
    for (int round = 0; round < 5000; round++) {
        memcpy(buf, base, n0);
        size_t len = n0;
        int edits = 1 + (int)(pl_test_rand(&st) % 3);
        for (int k = 0; k < edits && len > 1; k++) {
            size_t pos = pl_test_rand(&st) % len;
            if (pl_test_rand(&st) % 4 == 0)
                len = pos + 1;
            else
                buf[pos] = alphabet[pl_test_rand(&st) % (sizeof alphabet - 1)];
        }
        pl_rpc_msg *m = (pl_rpc_msg *)1;
        size_t n = 9;
        bool batch = true;
        pl_err e = pl_rpc_decode(&m, &n, &batch, buf, len);
        if (e != PL_OK) {
            assert_null(m);
            assert_int_equal(n, 0);
        } else {
            pl_rpc_msgs_free(m, n);
        }
    }
}

int main(void) {
    if (pl_init() != PL_OK) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_round_trip),
        cmocka_unit_test(test_responses),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_encode_errors),
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_unicode),
        cmocka_unit_test(test_depth_and_size),
        cmocka_unit_test(test_random_round_trip),
        cmocka_unit_test(test_random_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
