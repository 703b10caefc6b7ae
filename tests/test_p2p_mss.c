/* SPDX-License-Identifier: Apache-2.0 */
/* multistream-select 1.0: the vector of waku-message.json (libp2p), both
 * roles, pipelined messages with trailing data, na, caps, time-outs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p2p/mss.h"
#include "pairlink/codec.h"
#include "support/support.h"

static json_t *vec;

static int setup(void **state) {
    (void)state;
    assert_int_equal(pl_init(), PL_OK);
    vec = pl_test_vectors("waku-message.json");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    json_decref(vec);
    return 0;
}

static const char *served[] = {"/noise", "/yamux/1.0.0", "/ipfs/id/1.0.0"};

static bool supports(void *ud, const char *p, size_t n) {
    (void)ud;
    for (size_t i = 0; i < PL_ARRAY_LEN(served); i++)
        if (strlen(served[i]) == n && !memcmp(served[i], p, n)) return true;
    return false;
}

/* Take all output of m into buf; returns its length. */
static size_t drain(pl__mss *m, uint8_t *buf, size_t cap) {
    const uint8_t *d;
    size_t n = pl__mss_output(m, &d);
    assert_true(n <= cap);
    memcpy(buf, d, n);
    pl__mss_output_done(m, n);
    return n;
}

/* Frame one message by hand (independent of the code under test). */
static size_t frame(uint8_t *out, const char *text) {
    size_t n = strlen(text) + 1;
    size_t o = 0;
    if (n < 128) {
        out[o++] = (uint8_t)n;
    } else {
        out[o++] = (uint8_t)(0x80 | (n & 0x7f));
        out[o++] = (uint8_t)(n >> 7);
    }
    memcpy(out + o, text, n - 1);
    out[o + n - 1] = '\n';
    return o + n;
}

static void test_dialer_hello_vector(void **state) {
    (void)state;
    size_t want_len = 0;
    uint8_t *want = pl_test_unhex(pl_test_str(vec, "libp2p.multistream_dialer_hello"), &want_len);
    const char *protos[] = {"/noise"};
    pl__mss *d = NULL;
    assert_int_equal(pl__mss_new_dialer(&d, protos, 1, 0, 1000), PL_OK);
    uint8_t out[256];
    size_t n = drain(d, out, sizeof out);
    assert_int_equal(n, want_len);
    assert_memory_equal(out, want, n);

    /* The listener answers the hello with header + echo; the dialer is done. */
    pl__mss *l = NULL;
    assert_int_equal(pl__mss_new_listener(&l, supports, NULL, 0, 1000), PL_OK);
    size_t used = 0;
    assert_int_equal(pl__mss_recv(l, want, want_len, &used), PL_OK);
    assert_int_equal(used, want_len);
    assert_int_equal(pl__mss_state_of(l), PL__MSS_DONE);
    assert_string_equal(pl__mss_protocol(l), "/noise");
    uint8_t ans[256];
    size_t an = drain(l, ans, sizeof ans);
    /* Same bytes as the dialer's hello: header, then the echo. */
    assert_int_equal(an, want_len);
    assert_memory_equal(ans, want, an);
    assert_int_equal(pl__mss_recv(d, ans, an, &used), PL_OK);
    assert_int_equal(used, an);
    assert_int_equal(pl__mss_state_of(d), PL__MSS_DONE);
    assert_int_equal(pl__mss_chosen(d), 0);
    assert_string_equal(pl__mss_protocol(d), "/noise");
    free(want);
    pl__mss_free(d);
    pl__mss_free(l);
}

static void test_trailing_data_and_splits(void **state) {
    (void)state;
    uint8_t in[512];
    size_t n = frame(in, "/multistream/1.0.0");
    n += frame(in + n, "/ipfs/id/1.0.0");
    memcpy(in + n, "\x05hello", 6);
    size_t total = n + 6;
    /* All at once: the listener stops after the proposal. */
    pl__mss *l = NULL;
    assert_int_equal(pl__mss_new_listener(&l, supports, NULL, 0, 1000), PL_OK);
    size_t used = 0;
    assert_int_equal(pl__mss_recv(l, in, total, &used), PL_OK);
    assert_int_equal(used, n);
    assert_int_equal(pl__mss_state_of(l), PL__MSS_DONE);
    /* Nothing more is consumed once done. */
    assert_int_equal(pl__mss_recv(l, in + used, total - used, &used), PL_OK);
    assert_int_equal(used, 0);
    pl__mss_free(l);

    /* One byte at a time. */
    assert_int_equal(pl__mss_new_listener(&l, supports, NULL, 0, 1000), PL_OK);
    size_t fed = 0;
    while (pl__mss_state_of(l) == PL__MSS_PENDING) {
        assert_true(fed < total);
        assert_int_equal(pl__mss_recv(l, in + fed, 1, &used), PL_OK);
        assert_int_equal(used, 1);
        fed++;
    }
    assert_int_equal(fed, n);
    assert_string_equal(pl__mss_protocol(l), "/ipfs/id/1.0.0");
    pl__mss_free(l);
}

static void test_na_then_accept(void **state) {
    (void)state;
    const char *protos[] = {"/mplex/6.7.0", "/yamux/1.0.0"};
    pl__mss *d = NULL, *l = NULL;
    assert_int_equal(pl__mss_new_dialer(&d, protos, 2, 0, 1000), PL_OK);
    assert_int_equal(pl__mss_new_listener(&l, supports, NULL, 0, 1000), PL_OK);
    uint8_t buf[1024];
    size_t used;
    /* Ping-pong until both settle. */
    for (int round = 0; round < 4; round++) {
        size_t n = drain(d, buf, sizeof buf);
        if (n) assert_int_equal(pl__mss_recv(l, buf, n, &used), PL_OK);
        n = drain(l, buf, sizeof buf);
        if (n) assert_int_equal(pl__mss_recv(d, buf, n, &used), PL_OK);
    }
    assert_int_equal(pl__mss_state_of(d), PL__MSS_DONE);
    assert_int_equal(pl__mss_state_of(l), PL__MSS_DONE);
    assert_int_equal(pl__mss_chosen(d), 1);
    assert_string_equal(pl__mss_protocol(d), "/yamux/1.0.0");
    assert_string_equal(pl__mss_protocol(l), "/yamux/1.0.0");
    pl__mss_free(d);
    pl__mss_free(l);
}

static void test_all_refused(void **state) {
    (void)state;
    const char *protos[] = {"/a", "/b"};
    pl__mss *d = NULL;
    assert_int_equal(pl__mss_new_dialer(&d, protos, 2, 0, 1000), PL_OK);
    uint8_t in[64];
    size_t n = frame(in, "/multistream/1.0.0");
    n += frame(in + n, "na");
    n += frame(in + n, "na");
    size_t used = 0;
    assert_int_equal(pl__mss_recv(d, in, n, &used), PL_ERR_P2P_NEGOTIATION);
    assert_int_equal(pl__mss_state_of(d), PL__MSS_FAILED);
    assert_int_equal(pl__mss_error(d), PL_ERR_P2P_NEGOTIATION);
    /* A failed negotiation stays failed. */
    assert_int_equal(pl__mss_recv(d, in, n, &used), PL_ERR_P2P_NEGOTIATION);
    assert_null(pl__mss_protocol(d));
    pl__mss_free(d);

    /* A listener gives up after PL__MSS_MAX_ROUNDS refused proposals. */
    pl__mss *l = NULL;
    assert_int_equal(pl__mss_new_listener(&l, supports, NULL, 0, 1000), PL_OK);
    n = frame(in, "/multistream/1.0.0");
    assert_int_equal(pl__mss_recv(l, in, n, &used), PL_OK);
    pl_err e = PL_OK;
    int rounds = 0;
    while (e == PL_OK && rounds < 100) {
        n = frame(in, rounds % 2 ? "/unknown" : "ls");
        e = pl__mss_recv(l, in, n, &used);
        rounds++;
    }
    assert_int_equal(e, PL_ERR_P2P_NEGOTIATION);
    assert_int_equal(rounds, PL__MSS_MAX_ROUNDS + 1);
    /* Every refused proposal was answered "na". */
    uint8_t out[4096];
    size_t on = drain(l, out, sizeof out);
    uint8_t na[8];
    size_t nal = frame(na, "na");
    size_t hl = frame(in, "/multistream/1.0.0");
    assert_int_equal(on, hl + PL__MSS_MAX_ROUNDS * nal);
    assert_memory_equal(out + hl, na, nal);
    pl__mss_free(l);
}

static void expect_garbage(bool dialer, const uint8_t *in, size_t n, pl_err want) {
    const char *protos[] = {"/noise"};
    pl__mss *m = NULL;
    if (dialer) assert_int_equal(pl__mss_new_dialer(&m, protos, 1, 0, 1000), PL_OK);
    else assert_int_equal(pl__mss_new_listener(&m, supports, NULL, 0, 1000), PL_OK);
    size_t used = 0;
    assert_int_equal(pl__mss_recv(m, in, n, &used), want);
    assert_true(used <= n);
    assert_int_equal(pl__mss_state_of(m), PL__MSS_FAILED);
    pl__mss_free(m);
}

static void test_garbage(void **state) {
    (void)state;
    uint8_t in[2100];
    size_t n;
    /* Not the multistream header. */
    n = frame(in, "/multistream/2.0.0");
    expect_garbage(false, in, n, PL_ERR_P2P_MULTISTREAM);
    expect_garbage(true, in, n, PL_ERR_P2P_MULTISTREAM);
    /* HTTP at a libp2p port: 'G' reads as a 71-byte line whose last byte
     * is not a newline. */
    static const char http[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1:4001\r\nUser-Agent: curl/7.88.1\r\n"
                               "Accept: */*\r\n\r\n";
    expect_garbage(false, (const uint8_t *)http, sizeof http - 1, PL_ERR_P2P_MULTISTREAM);
    /* A message without its newline. */
    memcpy(in, "\x13/multistream/1.0.0X", 20);
    expect_garbage(false, in, 20, PL_ERR_P2P_MULTISTREAM);
    /* Zero length; an overlong varint; a line above the cap. */
    expect_garbage(false, (const uint8_t *)"\x00", 1, PL_ERR_P2P_MULTISTREAM);
    expect_garbage(false, (const uint8_t *)"\x80\x00", 2, PL_ERR_P2P_MULTISTREAM);
    expect_garbage(false, (const uint8_t *)"\x81\x08", 2, PL_ERR_P2P_MULTISTREAM); /* 1025 */
    expect_garbage(false, (const uint8_t *)"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11,
                   PL_ERR_P2P_MULTISTREAM);
    /* A newline or NUL inside a line. */
    n = frame(in, "/multistream/1.0.0");
    n += frame(in + n, "/no\nise");
    expect_garbage(false, in, n, PL_ERR_P2P_MULTISTREAM);
    /* The dialer gets an answer it did not ask for. */
    n = frame(in, "/multistream/1.0.0");
    n += frame(in + n, "/yamux/1.0.0");
    expect_garbage(true, in, n, PL_ERR_P2P_MULTISTREAM);
}

static void test_line_cap(void **state) {
    (void)state;
    /* A 1023-byte protocol id makes a 1024-byte line: accepted. */
    char *p = malloc(PL__MSS_MAX_PROTOCOL + 2);
    memset(p, 'a', PL__MSS_MAX_PROTOCOL + 1);
    p[0] = '/';
    p[PL__MSS_MAX_PROTOCOL] = '\0';
    const char *protos[] = {p};
    pl__mss *d = NULL, *l = NULL;
    assert_int_equal(pl__mss_new_dialer(&d, protos, 1, 0, 1000), PL_OK);
    assert_int_equal(pl__mss_new_listener(&l, supports, NULL, 0, 1000), PL_OK);
    uint8_t buf[2200];
    size_t n = drain(d, buf, sizeof buf), used;
    assert_int_equal(pl__mss_recv(l, buf, n, &used), PL_OK);
    assert_int_equal(used, n);
    assert_int_equal(pl__mss_state_of(l), PL__MSS_PENDING); /* answered na */
    pl__mss_free(d);
    pl__mss_free(l);
    /* One byte more is not a protocol id we send. */
    p[PL__MSS_MAX_PROTOCOL] = 'a';
    p[PL__MSS_MAX_PROTOCOL + 1] = '\0';
    assert_false(pl__mss_protocol_ok(p));
    assert_int_equal(pl__mss_new_dialer(&d, protos, 1, 0, 1000), PL_ERR_INVALID_ARG);
    assert_null(d);
    assert_false(pl__mss_protocol_ok(""));
    assert_false(pl__mss_protocol_ok("/a\nb"));
    assert_false(pl__mss_protocol_ok("/\xff"));
    assert_true(pl__mss_protocol_ok("/vac/waku/relay/2.0.0"));
    free(p);
}

static void test_timeout(void **state) {
    (void)state;
    pl__mss *l = NULL;
    assert_int_equal(pl__mss_new_listener(&l, supports, NULL, 5000, 10000), PL_OK);
    assert_int_equal(pl__mss_deadline(l), 15000);
    pl__mss_on_timer(l, 14999);
    assert_int_equal(pl__mss_state_of(l), PL__MSS_PENDING);
    pl__mss_on_timer(l, 15000);
    assert_int_equal(pl__mss_state_of(l), PL__MSS_FAILED);
    assert_int_equal(pl__mss_error(l), PL_ERR_TIMEOUT);
    assert_int_equal(pl__mss_deadline(l), INT64_MAX);
    pl__mss_free(l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dialer_hello_vector), cmocka_unit_test(test_trailing_data_and_splits),
        cmocka_unit_test(test_na_then_accept),      cmocka_unit_test(test_all_refused),
        cmocka_unit_test(test_garbage),             cmocka_unit_test(test_line_cap),
        cmocka_unit_test(test_timeout),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
