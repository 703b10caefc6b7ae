/* SPDX-License-Identifier: Apache-2.0 */
/* WalletConnect pairing URI: vector, round trips, every error path. */
/* cmocka.h needs these first; kept in their own block so sorting keeps the order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pairlink/codec.h"
#include "pairlink/hash.h"
#include "pairlink/uri.h"
#include "support/support.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static json_t *vec(void) {
    json_t *root = pl_test_vectors("walletconnect.json");
    json_t *v = json_incref(json_object_get(root, "pairing_uri"));
    json_decref(root);
    assert_non_null(v);
    return v;
}

/* The fields of the published vector, as a pl_uri the caller clears. */
static void vector_fields(json_t *v, pl_uri *u) {
    memset(u, 0, sizeof *u);
    json_t *f = json_object_get(v, "formatted_fields");
    snprintf(u->topic, sizeof u->topic, "%s", pl_test_str(f, "topic"));
    u->version = (int)json_integer_value(json_object_get(f, "version"));
    pl_test_hex(f, "symKey", u->sym_key, sizeof u->sym_key);
    snprintf(u->relay_protocol, sizeof u->relay_protocol, "%s", pl_test_str(f, "relay_protocol"));
    u->relay_data = strdup(pl_test_str(f, "relay_data"));
    u->expiry = (int64_t)json_integer_value(json_object_get(f, "expiryTimestamp"));
    json_t *m = json_object_get(f, "methods");
    for (size_t i = 0; i < json_array_size(m); i++)
        u->methods[u->n_methods++] = strdup(json_string_value(json_array_get(m, i)));
}

static void assert_uri_equal(const pl_uri *a, const pl_uri *b) {
    assert_string_equal(a->topic, b->topic);
    assert_int_equal(a->version, b->version);
    assert_memory_equal(a->sym_key, b->sym_key, PL_SYMKEY_BYTES);
    assert_string_equal(a->relay_protocol, b->relay_protocol);
    if (a->relay_data && a->relay_data[0])
        assert_string_equal(a->relay_data, b->relay_data);
    else
        assert_null(b->relay_data);
    assert_int_equal(a->expiry, b->expiry);
    assert_int_equal(a->n_methods, b->n_methods);
    for (size_t i = 0; i < a->n_methods; i++)
        assert_string_equal(a->methods[i], b->methods[i]);
}

static void assert_cleared(const pl_uri *u) {
    static const uint8_t zero[PL_SYMKEY_BYTES];
    assert_memory_equal(u->sym_key, zero, sizeof zero);
    assert_null(u->relay_data);
    assert_int_equal(u->n_methods, 0);
    assert_int_equal(u->topic[0], 0);
}

static pl_err parse_str(pl_uri *u, const char *s, int64_t now) {
    return pl_uri_parse(u, s, strlen(s), now);
}

static void test_vector_format(void **state) {
    (void)state;
    json_t *v = vec();
    pl_uri u;
    vector_fields(v, &u);
    char *s = NULL;
    assert_int_equal(pl_uri_format(&s, &u), PL_OK);
    assert_string_equal(s, pl_test_str(v, "formatted"));
    pl_free(s);
    pl_uri_clear(&u);
    json_decref(v);
}

/* The published URI's topic is not sha256(symKey) (the vector was made with
 * formatUri, which never checks), so the strict parser must refuse it as it
 * stands. Every other field is checked by parsing the same text with the
 * topic replaced by the one the key implies. */
static void test_vector_parse(void **state) {
    (void)state;
    json_t *v = vec();
    pl_uri want, got;
    vector_fields(v, &want);
    const char *s = pl_test_str(v, "formatted");

    assert_int_equal(parse_str(&got, s, -1), PL_ERR_URI_TOPIC_MISMATCH);
    assert_cleared(&got);

    /* inspect() shows every field of the vector URI as published (its topic
     * is not sha256(symKey)) and reports the failed checks separately. */
    pl_err check = PL_OK;
    assert_int_equal(pl_uri_inspect(&got, s, strlen(s), -1, &check), PL_OK);
    assert_int_equal(check, PL_ERR_URI_TOPIC_MISMATCH);
    assert_uri_equal(&want, &got);
    pl_uri_clear(&got);
    assert_int_equal(pl_uri_inspect(&got, "wc:zz@2?symKey=00", 17, -1, &check), PL_ERR_URI_BAD_TOPIC);
    assert_cleared(&got);

    uint8_t d[32];
    pl_sha256(d, want.sym_key, sizeof want.sym_key);
    assert_int_equal(pl_hex_encode(want.topic, sizeof want.topic, d, sizeof d), PL_OK);
    char fixed[PL_URI_MAX_LEN];
    const char *tail = strchr(s, '@');
    assert_non_null(tail);
    assert_int_equal(tail - s, 3 + 64);
    snprintf(fixed, sizeof fixed, "wc:%s%s", want.topic, tail);

    assert_int_equal(parse_str(&got, fixed, -1), PL_OK);
    assert_uri_equal(&want, &got);
    pl_uri_clear(&got);
    assert_int_equal(parse_str(&got, fixed, want.expiry - 1), PL_OK);
    pl_uri_clear(&got);
    assert_int_equal(parse_str(&got, fixed, want.expiry), PL_ERR_URI_EXPIRED);
    assert_cleared(&got);
    assert_int_equal(parse_str(&got, fixed, want.expiry + 1000), PL_ERR_URI_EXPIRED);
    assert_cleared(&got);

    /* and back to the same text */
    char *again = NULL;
    assert_int_equal(pl_uri_format(&again, &want), PL_OK);
    assert_string_equal(again, fixed);
    pl_free(again);

    /* The Android prefix and a non-terminated buffer. */
    char buf[PL_URI_MAX_LEN];
    int n = snprintf(buf, sizeof buf, "wc://%s", fixed + 3);
    buf[n] = 'X';
    assert_int_equal(pl_uri_parse(&got, buf, (size_t)n, -1), PL_OK);
    assert_uri_equal(&want, &got);
    pl_uri_clear(&got);
    pl_uri_clear(&want);
    json_decref(v);
}

/* A valid URI text from a fresh key, with the query given by the caller:
 * "%T" in q is replaced by the topic, "%K" by the key. */
static char *make(const char *prefix, const char *q, char topic[65], uint8_t key[32]) {
    pl_random(key, 32);
    uint8_t d[32];
    pl_sha256(d, key, 32);
    assert_int_equal(pl_hex_encode(topic, 65, d, 32), PL_OK);
    char khex[65];
    assert_int_equal(pl_hex_encode(khex, sizeof khex, key, 32), PL_OK);
    static char out[PL_URI_MAX_LEN * 2];
    size_t o = (size_t)snprintf(out, sizeof out, "%s", prefix);
    for (const char *p = q; *p; p++) {
        if (p[0] == '%' && p[1] == 'T')
            o += (size_t)snprintf(out + o, sizeof out - o, "%s", topic), p++;
        else if (p[0] == '%' && p[1] == 'K')
            o += (size_t)snprintf(out + o, sizeof out - o, "%s", khex), p++;
        else
            out[o++] = *p, out[o] = '\0';
    }
    return out;
}

static pl_err try_uri(const char *q) {
    char topic[65];
    uint8_t key[32];
    pl_uri u;
    pl_err e = parse_str(&u, make("wc:", q, topic, key), 1000);
    if (e == PL_OK) {
        assert_string_equal(u.topic, topic);
        assert_memory_equal(u.sym_key, key, 32);
    } else {
        assert_cleared(&u);
    }
    pl_uri_clear(&u);
    return e;
}

static void test_minimal_and_ignored(void **state) {
    (void)state;
    assert_int_equal(try_uri("%T@2?relay-protocol=irn&symKey=%K"), PL_OK);
    /* order does not matter, empty segments and unknown keys are skipped,
     * key names are form-decoded like values */
    assert_int_equal(try_uri("%T@2?&&sym%4Bey=%K&foo=bar&relay-x=1&flag&relay%2Dprotocol=irn&"),
                     PL_OK);
    /* empty expiry and relay-data mean absent, as in JS */
    char topic[65];
    uint8_t key[32];
    pl_uri u;
    assert_int_equal(
        parse_str(&u,
                  make("wc:", "%T@2?expiryTimestamp=&relay-data=&relay-protocol=irn&symKey=%K",
                       topic, key),
                  5),
        PL_OK);
    assert_int_equal(u.expiry, 0);
    assert_null(u.relay_data);
    assert_int_equal(u.n_methods, 0);
    pl_uri_clear(&u);
    pl_uri_clear(&u); /* reusable, idempotent */
    pl_uri_clear(NULL);
}

static void test_topic_case(void **state) {
    (void)state;
    char topic[65];
    uint8_t key[32];
    char *s = make("wc:", "%T@2?relay-protocol=irn&symKey=%K", topic, key);
    for (char *p = s + 3; *p != '@'; p++)
        if (*p >= 'a' && *p <= 'f') *p = (char)(*p - 'a' + 'A');
    /* uppercase symKey hex too */
    for (char *p = strstr(s, "symKey=") + 7; *p; p++)
        if (*p >= 'a' && *p <= 'f') *p = (char)(*p - 'a' + 'A');
    pl_uri u;
    assert_int_equal(parse_str(&u, s, -1), PL_OK);
    assert_string_equal(u.topic, topic);
    assert_memory_equal(u.sym_key, key, 32);
    pl_uri_clear(&u);
}

static void test_methods_forms(void **state) {
    (void)state;
    char topic[65];
    uint8_t key[32];
    pl_uri u;
    const char *forms[] = {
        "%T@2?methods=wc_a%2Cwc_b%2Cwc_c&relay-protocol=irn&symKey=%K",
        "%T@2?methods=wc_a,wc_b,wc_c&relay-protocol=irn&symKey=%K",
        "%T@2?methods=[wc_a],[wc_b,wc_c]&relay-protocol=irn&symKey=%K",
        "%T@2?methods=%5Bwc_a%2Cwc_b%5D%2C%5Bwc_c%5D&relay-protocol=irn&symKey=%K",
    };
    for (size_t i = 0; i < ARRAY_LEN(forms); i++) {
        assert_int_equal(parse_str(&u, make("wc:", forms[i], topic, key), -1), PL_OK);
        assert_int_equal(u.n_methods, 3);
        assert_string_equal(u.methods[0], "wc_a");
        assert_string_equal(u.methods[1], "wc_b");
        assert_string_equal(u.methods[2], "wc_c");
        pl_uri_clear(&u);
    }
    const char *bad[] = {"a,,b", ",a",     "a,",   "[a]b", "[a],", "[a],b", "[a",
                         "[]",   "[a],[]", "[a,]", "a]",   "[a]]", "[[a]]"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        char q[256];
        snprintf(q, sizeof q, "%%T@2?methods=%s&relay-protocol=irn&symKey=%%K", bad[i]);
        assert_int_equal(try_uri(q), PL_ERR_URI_MALFORMED);
    }
    /* PL_URI_MAX_METHODS is accepted, one more is not */
    char q[2048] = "%T@2?relay-protocol=irn&symKey=%K&methods=m";
    for (int i = 1; i < PL_URI_MAX_METHODS; i++)
        strcat(q, ",m");
    assert_int_equal(try_uri(q), PL_OK);
    strcat(q, ",m");
    assert_int_equal(try_uri(q), PL_ERR_TOO_LARGE);
}

static void test_errors(void **state) {
    (void)state;
    static const struct {
        const char *q;
        pl_err e;
    } cases[] = {
        {"%T@1?relay-protocol=irn&symKey=%K", PL_ERR_URI_VERSION},
        {"%T@3?relay-protocol=irn&symKey=%K", PL_ERR_URI_VERSION},
        {"%T@02?relay-protocol=irn&symKey=%K", PL_OK}, /* a decimal 2 */
        {"%T@2x?relay-protocol=irn&symKey=%K", PL_ERR_URI_MALFORMED},
        {"%T@?relay-protocol=irn&symKey=%K", PL_ERR_URI_MALFORMED},
        {"%T@-2?relay-protocol=irn&symKey=%K", PL_ERR_URI_MALFORMED},
        {"%T@99999999999?relay-protocol=irn&symKey=%K", PL_ERR_URI_MALFORMED},
        {"%T?relay-protocol=irn&symKey=%K", PL_ERR_URI_MALFORMED},
        {"%T@2@2?relay-protocol=irn&symKey=%K", PL_ERR_URI_MALFORMED},
        {"%Ta@2?relay-protocol=irn&symKey=%K", PL_ERR_URI_BAD_TOPIC},
        {"a%T@2?relay-protocol=irn&symKey=%K", PL_ERR_URI_BAD_TOPIC},
        {"@2?relay-protocol=irn&symKey=%K", PL_ERR_URI_BAD_TOPIC},
        {"%T@2", PL_ERR_URI_MISSING_FIELD},
        {"%T@2?relay-protocol=irn", PL_ERR_URI_MISSING_FIELD},
        {"%T@2?symKey=%K", PL_ERR_URI_MISSING_FIELD},
        {"%T@2?relay-protocol=&symKey=%K", PL_ERR_URI_MISSING_FIELD},
        {"%T@2?relay-protocol=irn&symKey=", PL_ERR_URI_BAD_KEY},
        {"%T@2?relay-protocol=irn&symKey=%K0", PL_ERR_URI_BAD_KEY},
        {"%T@2?relay-protocol=irn&symKey=%K00", PL_ERR_URI_BAD_KEY},
        {"%T@2?relay-protocol=irn&symKey=0x%K", PL_ERR_URI_BAD_KEY},
        {"%T@2?relay-protocol=irn&symKey=%K&symKey=%K", PL_ERR_URI_MALFORMED},
        {"%T@2?relay-protocol=irn&relay-protocol=irn&symKey=%K", PL_ERR_URI_MALFORMED},
        {"%T@2?methods=a&methods=b&relay-protocol=irn&symKey=%K", PL_ERR_URI_MALFORMED},
        {"%T@2?relay-protocol=irn&symKey=%K&x=%", PL_ERR_URI_MALFORMED},
        {"%T@2?relay-protocol=irn&symKey=%K&x=%4", PL_ERR_URI_MALFORMED},
        {"%T@2?relay-protocol=irn&symKey=%K&x=%G0", PL_ERR_URI_MALFORMED},
        {"%T@2?relay-protocol=irn&symKey=%K&x%zz=1", PL_ERR_URI_MALFORMED},
        {"%T@2?relay-protocol=irn&symKey=%K&x=%00", PL_ERR_URI_MALFORMED},
        {"%T@2?relay-protocol=irn&symKey=%K&x=%FF", PL_ERR_URI_MALFORMED},       /* not UTF-8 */
        {"%T@2?relay-protocol=irn&symKey=%K&x=%C0%AF", PL_ERR_URI_MALFORMED},    /* overlong */
        {"%T@2?relay-protocol=irn&symKey=%K&x=%ED%A0%80", PL_ERR_URI_MALFORMED}, /* surrogate */
        {"%T@2?relay-protocol=irn&symKey=%K&x=%F4%90%80%80", PL_ERR_URI_MALFORMED},
        {"%T@2?relay-protocol=irn&symKey=%K&x=a b", PL_ERR_URI_MALFORMED},
        {"%T@2?relay-protocol=irn&symKey=%K&x=a\tb", PL_ERR_URI_MALFORMED},
        {"%T@2?relay-protocol=irn&symKey=%K&x=%C3%A9%F0%9F%98%80", PL_OK},
        {"%T@2?relay-protocol=irn&symKey=%K&x=\xC3\xA9", PL_OK},
        {"%T@2?relay-protocol=0123456789012345678901234567890123456789012345678901234567890123&"
         "symKey=%K",
         PL_ERR_URI_MALFORMED},
        {"%T@2?relay-protocol=irn&symKey=%K&expiryTimestamp=abc", PL_ERR_URI_MALFORMED},
        {"%T@2?relay-protocol=irn&symKey=%K&expiryTimestamp=-1", PL_ERR_URI_MALFORMED},
        {"%T@2?relay-protocol=irn&symKey=%K&expiryTimestamp=1e9", PL_ERR_URI_MALFORMED},
        {"%T@2?relay-protocol=irn&symKey=%K&expiryTimestamp=9223372036854775808",
         PL_ERR_URI_MALFORMED},
        {"%T@2?relay-protocol=irn&symKey=%K&expiryTimestamp=9223372036854775807", PL_OK},
        {"%T@2?relay-protocol=irn&symKey=%K&expiryTimestamp=1000", PL_ERR_URI_EXPIRED},
        {"%T@2?relay-protocol=irn&symKey=%K&expiryTimestamp=1001", PL_OK},
        {"%T@2?relay-protocol=irn&symKey=%K&expiryTimestamp=0", PL_ERR_URI_EXPIRED},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        pl_err e = try_uri(cases[i].q);
        if (e != cases[i].e) fail_msg("case %zu (%s): got %s", i, cases[i].q, pl_errname(e));
    }
}

static void test_scheme_and_mismatch(void **state) {
    (void)state;
    char topic[65];
    uint8_t key[32];
    pl_uri u;
    const char *q = "%T@2?relay-protocol=irn&symKey=%K";
    assert_int_equal(parse_str(&u, make("WC:", q, topic, key), -1), PL_ERR_URI_SCHEME);
    assert_int_equal(parse_str(&u, make("wc;", q, topic, key), -1), PL_ERR_URI_SCHEME);
    assert_int_equal(parse_str(&u, make("", q, topic, key), -1), PL_ERR_URI_SCHEME);
    assert_int_equal(parse_str(&u, make("https://wc:", q, topic, key), -1), PL_ERR_URI_SCHEME);
    assert_int_equal(parse_str(&u, "", -1), PL_ERR_URI_SCHEME);
    assert_int_equal(parse_str(&u, "w", -1), PL_ERR_URI_SCHEME);
    assert_int_equal(parse_str(&u, "wc:", -1), PL_ERR_URI_MALFORMED);
    assert_int_equal(parse_str(&u, "wc://", -1), PL_ERR_URI_MALFORMED);
    assert_cleared(&u);

    /* any single changed topic digit breaks topic == sha256(symKey) */
    for (int pos = 0; pos < 64; pos += 9) {
        char *s = make("wc:", q, topic, key);
        s[3 + pos] = s[3 + pos] == '0' ? '1' : '0';
        assert_int_equal(parse_str(&u, s, -1), PL_ERR_URI_TOPIC_MISMATCH);
        assert_cleared(&u);
    }
    /* mismatch with all other fields filled: nothing may leak out */
    char *s = make("wc:", "%T@2?methods=a,b&relay-data=x&relay-protocol=irn&symKey=%K", topic, key);
    s[3] = s[3] == 'f' ? 'e' : 'f';
    assert_int_equal(parse_str(&u, s, -1), PL_ERR_URI_TOPIC_MISMATCH);
    assert_cleared(&u);
}

static void test_size_bound(void **state) {
    (void)state;
    char topic[65];
    uint8_t key[32];
    pl_uri u;
    char *s = make("wc:", "%T@2?relay-protocol=irn&symKey=%K&pad=", topic, key);
    size_t n = strlen(s);
    char *big = malloc(PL_URI_MAX_LEN + 2);
    assert_non_null(big);
    memcpy(big, s, n);
    memset(big + n, 'a', PL_URI_MAX_LEN + 1 - n);
    assert_int_equal(pl_uri_parse(&u, big, PL_URI_MAX_LEN, -1), PL_OK);
    pl_uri_clear(&u);
    assert_int_equal(pl_uri_parse(&u, big, PL_URI_MAX_LEN + 1, -1), PL_ERR_TOO_LARGE);
    assert_cleared(&u);
    free(big);
}

/* What URLSearchParams (the encoder JS formatUri uses) writes for every
 * printable ASCII character plus two non-ASCII ones: only [A-Za-z0-9*-._]
 * stay, space is '+', the rest is %XX in uppercase (checked with Node 20). */
static void test_form_encoding(void **state) {
    (void)state;
    char data[128];
    size_t o = 0;
    for (int c = 0x20; c < 0x7f; c++)
        data[o++] = (char)c;
    strcpy(data + o, "\xC3\xA9\xF0\x9F\x98\x80");
    pl_uri u;
    assert_int_equal(pl_uri_new(&u, NULL, 0, 100, 0), PL_OK);
    u.relay_data = strdup(data);
    char *s = NULL;
    assert_int_equal(pl_uri_format(&s, &u), PL_OK);
    const char *want =
        "relay-data=+%21%22%23%24%25%26%27%28%29*%2B%2C-.%2F0123456789%3A%3B%3C%3D%3E%3F%40"
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ%5B%5C%5D%5E_%60abcdefghijklmnopqrstuvwxyz%7B%7C%7D%7E"
        "%C3%A9%F0%9F%98%80&relay-protocol=irn&symKey=";
    assert_non_null(strstr(s, want));
    pl_uri back;
    assert_int_equal(parse_str(&back, s, 100), PL_OK);
    assert_uri_equal(&u, &back);
    pl_uri_clear(&back);
    pl_free(s);
    pl_uri_clear(&u);
}

static void test_new(void **state) {
    (void)state;
    const char *const methods[] = {"wc_sessionPropose", "wc_sessionAuthenticate"};
    pl_uri a, b;
    assert_int_equal(pl_uri_new(&a, methods, 2, 1700000000, 0), PL_OK);
    assert_int_equal(pl_uri_new(&b, methods, 2, 1700000000, 60), PL_OK);
    assert_int_equal(a.expiry, 1700000000 + 300);
    assert_int_equal(b.expiry, 1700000060);
    assert_int_equal(a.version, 2);
    assert_string_equal(a.relay_protocol, "irn");
    assert_null(a.relay_data);
    assert_memory_not_equal(a.sym_key, b.sym_key, PL_SYMKEY_BYTES);
    uint8_t d[32];
    char hex[65];
    pl_sha256(d, a.sym_key, 32);
    assert_int_equal(pl_hex_encode(hex, sizeof hex, d, 32), PL_OK);
    assert_string_equal(a.topic, hex);

    char *s = NULL;
    assert_int_equal(pl_uri_format(&s, &a), PL_OK);
    assert_non_null(strstr(s, "methods=wc_sessionPropose%2Cwc_sessionAuthenticate&"));
    pl_uri c;
    assert_int_equal(parse_str(&c, s, 1700000000), PL_OK);
    assert_uri_equal(&a, &c);
    pl_uri_clear(&c);
    assert_int_equal(parse_str(&c, s, 1700000300), PL_ERR_URI_EXPIRED);
    pl_free(s);
    pl_uri_clear(&a);
    pl_uri_clear(&b);
    pl_uri_clear(&c);

    const char *const bad[] = {"a,b"};
    assert_int_equal(pl_uri_new(&a, bad, 1, 0, 0), PL_ERR_INVALID_ARG);
    assert_cleared(&a);
    const char *const empty[] = {"ok", ""};
    assert_int_equal(pl_uri_new(&a, empty, 2, 0, 0), PL_ERR_INVALID_ARG);
    assert_cleared(&a);
    const char *many[PL_URI_MAX_METHODS + 1];
    for (size_t i = 0; i < ARRAY_LEN(many); i++)
        many[i] = "m";
    assert_int_equal(pl_uri_new(&a, many, ARRAY_LEN(many), 0, 0), PL_ERR_TOO_LARGE);
    assert_cleared(&a);
    assert_int_equal(pl_uri_new(&a, many, PL_URI_MAX_METHODS, 0, 0), PL_OK);
    pl_uri_clear(&a);
    assert_cleared(&a);
}

static void test_format_errors(void **state) {
    (void)state;
    pl_uri u;
    char *s = (char *)1;
    assert_int_equal(pl_uri_new(&u, NULL, 0, 0, 0), PL_OK);
    pl_uri t = u;
    t.relay_protocol[0] = '\0';
    assert_int_equal(pl_uri_format(&s, &t), PL_ERR_INVALID_ARG);
    assert_null(s);
    t = u;
    t.topic[0] = '\0';
    assert_int_equal(pl_uri_format(&s, &t), PL_ERR_INVALID_ARG);
    t = u;
    t.topic[5] = 'g';
    assert_int_equal(pl_uri_format(&s, &t), PL_ERR_INVALID_ARG);
    t = u;
    t.expiry = -1;
    assert_int_equal(pl_uri_format(&s, &t), PL_ERR_INVALID_ARG);
    t = u;
    char bad_utf8[] = "\xFF";
    t.relay_data = bad_utf8;
    assert_int_equal(pl_uri_format(&s, &t), PL_ERR_INVALID_ARG);
    t = u;
    char comma[] = "a,b";
    t.methods[0] = comma;
    t.n_methods = 1;
    assert_int_equal(pl_uri_format(&s, &t), PL_ERR_INVALID_ARG);
    /* a result that would not parse back (too long) is refused */
    t = u;
    char *big = malloc(PL_URI_MAX_LEN);
    memset(big, '/', PL_URI_MAX_LEN / 3);
    big[PL_URI_MAX_LEN / 3] = '\0';
    t.relay_data = big;
    assert_int_equal(pl_uri_format(&s, &t), PL_ERR_TOO_LARGE);
    assert_null(s);
    big[PL_URI_MAX_LEN / 3 - 300] = '\0';
    assert_int_equal(pl_uri_format(&s, &t), PL_OK);
    assert_true(strlen(s) <= PL_URI_MAX_LEN);
    pl_uri back;
    assert_int_equal(parse_str(&back, s, -1), PL_OK);
    assert_string_equal(back.relay_data, big);
    pl_uri_clear(&back);
    pl_free(s);
    free(big);
    pl_uri_clear(&u);
}

/* Random UTF-8 text of code points from a few ranges (ASCII weighted). */
static void rand_text(uint64_t *st, char *out, size_t max_cp, bool method) {
    size_t n = 1 + pl_test_rand(st) % max_cp, o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp;
        switch (pl_test_rand(st) % 4) {
        case 0:
            cp = 0x80 + pl_test_rand(st) % 0x780;
            break;
        case 1:
            cp = 0x800 + pl_test_rand(st) % 0xF800;
            if (cp >= 0xD800 && cp < 0xE000) cp = 'x';
            break;
        case 2:
            cp = 0x10000 + pl_test_rand(st) % 0x100000;
            break;
        default:
            cp = 0x20 + pl_test_rand(st) % 0x5F;
        }
        if (method && (cp == ',' || cp == '[' || cp == ']')) cp = '_';
        if (cp < 0x80)
            out[o++] = (char)cp;
        else if (cp < 0x800)
            out[o++] = (char)(0xC0 | cp >> 6), out[o++] = (char)(0x80 | (cp & 63));
        else if (cp < 0x10000)
            out[o++] = (char)(0xE0 | cp >> 12), out[o++] = (char)(0x80 | (cp >> 6 & 63)),
            out[o++] = (char)(0x80 | (cp & 63));
        else
            out[o++] = (char)(0xF0 | cp >> 18), out[o++] = (char)(0x80 | (cp >> 12 & 63)),
            out[o++] = (char)(0x80 | (cp >> 6 & 63)), out[o++] = (char)(0x80 | (cp & 63));
    }
    out[o] = '\0';
}

static void test_random_round_trip(void **state) {
    (void)state;
    uint64_t st = pl_test_seed();
    for (int round = 0; round < 300; round++) {
        pl_uri u;
        assert_int_equal(pl_uri_new(&u, NULL, 0, (int64_t)(pl_test_rand(&st) % 4000000000u), 0),
                         PL_OK);
        char buf[256];
        if (pl_test_rand(&st) % 2) {
            rand_text(&st, buf, 20, false);
            u.relay_data = strdup(buf);
        }
        size_t nm = pl_test_rand(&st) % 5;
        for (size_t i = 0; i < nm; i++) {
            rand_text(&st, buf, 10, true);
            u.methods[u.n_methods++] = strdup(buf);
        }
        if (pl_test_rand(&st) % 4 == 0) u.expiry = 0;
        char *s = NULL;
        assert_int_equal(pl_uri_format(&s, &u), PL_OK);
        pl_uri back;
        pl_err e = parse_str(&back, s, -1);
        if (e != PL_OK) fail_msg("round %d: %s for %s", round, pl_errname(e), s);
        assert_uri_equal(&u, &back);
        char *s2 = NULL;
        assert_int_equal(pl_uri_format(&s2, &back), PL_OK);
        assert_string_equal(s, s2);
        pl_free(s);
        pl_free(s2);
        pl_uri_clear(&u);
        pl_uri_clear(&back);
    }
}

/* Random mutations of a valid URI never crash and always leave *out clean
 * when they fail. */
static void test_random_mutations(void **state) {
    (void)state;
    uint64_t st = pl_test_seed();
    char topic[65];
    uint8_t key[32];
    const char *base = make("wc:",
                            "%T@2?expiryTimestamp=2000&methods=[a],[b,c]&relay-data=x+y"
                            "&relay-protocol=irn&symKey=%K",
                            topic, key);
    size_t n = strlen(base);
    char buf[512];
    static const char alphabet[] = "%+&=?@[],:/aAfF09 \x00\xFF\xC3";
    for (int round = 0; round < 5000; round++) {
        memcpy(buf, base, n);
        size_t len = n;
        int edits = 1 + (int)(pl_test_rand(&st) % 3);
        for (int k = 0; k < edits; k++) {
            if (len < 2) break;
            size_t pos = pl_test_rand(&st) % len;
            switch (pl_test_rand(&st) % 3) {
            case 0:
                buf[pos] = alphabet[pl_test_rand(&st) % (sizeof alphabet - 1)];
                break;
            case 1:
                memmove(buf + pos, buf + pos + 1, len - pos - 1), len--;
                break;
            default:
                len = pos + 1;
            }
        }
        pl_uri u;
        pl_err e = pl_uri_parse(&u, buf, len, 1000);
        if (e != PL_OK) assert_cleared(&u);
        pl_uri_clear(&u);
    }
}

int main(void) {
    if (pl_init() != PL_OK) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_format),       cmocka_unit_test(test_vector_parse),
        cmocka_unit_test(test_minimal_and_ignored), cmocka_unit_test(test_topic_case),
        cmocka_unit_test(test_methods_forms),       cmocka_unit_test(test_errors),
        cmocka_unit_test(test_scheme_and_mismatch), cmocka_unit_test(test_size_bound),
        cmocka_unit_test(test_form_encoding),       cmocka_unit_test(test_new),
        cmocka_unit_test(test_format_errors),       cmocka_unit_test(test_random_round_trip),
        cmocka_unit_test(test_random_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
