/* SPDX-License-Identifier: Apache-2.0 */
/* 26/WAKU-PAYLOAD version 1 (symmetric): layout, padding, tamper detection,
 * malformed authenticated plaintexts, and the content-topic -> relay-topic
 * mapping. The cross-check against js-waku is tests/interop/waku_payload.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pairlink/codec.h"
#include "pairlink/crypto.h"
#include "pairlink/hash.h"
#include "pairlink/waku_payload.h"
#include "support/support.h"

static uint64_t rng_state;

static size_t width_of(size_t len) { return len < 256 ? 1 : len < 65536 ? 2 : 3; }

/* Decrypt a wire by hand (no pl_waku_v1_open) to look at the plaintext. */
static uint8_t *raw_plain(const uint8_t key[32], const uint8_t *wire, size_t wl, size_t *pl) {
    assert_true(wl >= 28);
    *pl = wl - 28;
    uint8_t *p = malloc(*pl + 1);
    assert_non_null(p);
    assert_int_equal(pl_aes256gcm_decrypt(p, key, wire + wl - 12, NULL, 0, wire, wl - 12), PL_OK);
    return p;
}

/* Seal a hand-made plaintext as a v1 wire (to test the opener's checks on
 * authenticated but malformed contents). */
static size_t seal_raw(uint8_t *wire, const uint8_t key[32], const uint8_t *plain, size_t n) {
    uint8_t iv[12];
    pl_test_rand_bytes(&rng_state, iv, sizeof iv);
    assert_int_equal(pl_aes256gcm_encrypt(wire, key, iv, NULL, 0, plain, n), PL_OK);
    memcpy(wire + n + 16, iv, 12);
    return n + 28;
}

static void test_layout_and_roundtrip(void **state) {
    (void)state;
    static const size_t sizes[] = {0,   1,   2,   125, 253,   254,   255,   256,
                                   257, 509, 510, 511, 65535, 65536, 70000, 150000};
    uint8_t key[32];
    pl_test_rand_bytes(&rng_state, key, sizeof key);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t len = sizes[k];
        uint8_t *msg = malloc(len + 1);
        pl_test_rand_bytes(&rng_state, msg, len);
        size_t want = pl_waku_v1_sealed_size(len);
        size_t raw = 1 + width_of(len) + len;
        size_t pad = pl_waku_v1_padding_len(len);
        assert_true(pad >= 1 && pad <= 256);
        assert_int_equal((raw + pad) % 256, 0);
        assert_int_equal(want, raw + pad + 28);

        uint8_t *wire = malloc(want);
        size_t wl = 1;
        assert_int_equal(pl_waku_v1_seal(wire, want, &wl, key, msg, len, NULL), PL_OK);
        assert_int_equal(wl, want);

        size_t pl;
        uint8_t *plain = raw_plain(key, wire, wl, &pl);
        assert_int_equal(plain[0], width_of(len)); /* flags: width, unsigned */
        size_t sz = 0;
        for (size_t i = 0; i < width_of(len); i++) sz |= (size_t)plain[1 + i] << (8 * i);
        assert_int_equal(sz, len);
        if (len) assert_memory_equal(plain + 1 + width_of(len), msg, len);

        uint8_t *out = malloc(len + 1);
        size_t ol = 99;
        assert_int_equal(pl_waku_v1_open(out, len, &ol, key, wire, wl), PL_OK);
        assert_int_equal(ol, len);
        if (len) assert_memory_equal(out, msg, len);
        if (len) {
            ol = 99;
            assert_int_equal(pl_waku_v1_open(out, len - 1, &ol, key, wire, wl), PL_ERR_BUFFER_TOO_SMALL);
            assert_int_equal(ol, 0);
        }
        /* A second seal uses another IV and padding. */
        uint8_t *wire2 = malloc(want);
        assert_int_equal(pl_waku_v1_seal(wire2, want, &wl, key, msg, len, NULL), PL_OK);
        assert_memory_not_equal(wire, wire2, want);
        free(wire2);
        free(out);
        free(plain);
        free(wire);
        free(msg);
    }
}

static void test_fixed_iv_padding_is_exact(void **state) {
    (void)state;
    uint8_t key[32], iv[12], pad[256], msg[40];
    pl_test_rand_bytes(&rng_state, key, sizeof key);
    pl_test_rand_bytes(&rng_state, iv, sizeof iv);
    pl_test_rand_bytes(&rng_state, pad, sizeof pad);
    pl_test_rand_bytes(&rng_state, msg, sizeof msg);
    size_t padn = pl_waku_v1_padding_len(sizeof msg);
    assert_int_equal(padn, 256 - 42);
    /* The expected wire, built from the specification's layout. */
    uint8_t plain[256];
    plain[0] = 1;
    plain[1] = sizeof msg;
    memcpy(plain + 2, msg, sizeof msg);
    memcpy(plain + 42, pad, padn);
    uint8_t expect[284];
    assert_int_equal(pl_aes256gcm_encrypt(expect, key, iv, NULL, 0, plain, 256), PL_OK);
    memcpy(expect + 272, iv, 12);

    pl_waku_v1_seal_opts o = {.iv = iv, .padding = pad};
    uint8_t wire[300];
    size_t wl = 0;
    assert_int_equal(pl_waku_v1_seal(wire, sizeof wire, &wl, key, msg, sizeof msg, &o), PL_OK);
    assert_int_equal(wl, 284);
    assert_memory_equal(wire, expect, 284);
    assert_int_equal(pl_waku_v1_seal(wire, 283, &wl, key, msg, sizeof msg, &o), PL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(wl, 0);
}

static void test_every_tampered_byte_rejected(void **state) {
    (void)state;
    uint8_t key[32], other[32], msg[100], wire[284], out[284];
    pl_test_rand_bytes(&rng_state, key, sizeof key);
    pl_test_rand_bytes(&rng_state, msg, sizeof msg);
    size_t wl, ol;
    assert_int_equal(pl_waku_v1_seal(wire, sizeof wire, &wl, key, msg, sizeof msg, NULL), PL_OK);
    for (size_t i = 0; i < wl; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            wire[i] ^= (uint8_t)(1u << bit);
            ol = 7;
            assert_int_equal(pl_waku_v1_open(out, sizeof out, &ol, key, wire, wl), PL_ERR_DECRYPT);
            assert_int_equal(ol, 0);
            wire[i] ^= (uint8_t)(1u << bit);
        }
    }
    memcpy(other, key, 32);
    other[31] ^= 1;
    assert_int_equal(pl_waku_v1_open(out, sizeof out, &ol, other, wire, wl), PL_ERR_DECRYPT);
    /* Truncated and extended wires. */
    for (size_t n = 0; n < wl; n += 7)
        assert_int_equal(pl_waku_v1_open(out, sizeof out, &ol, key, wire, n),
                         n < 28 ? PL_ERR_TRUNCATED : PL_ERR_DECRYPT);
    assert_int_equal(pl_waku_v1_open(out, sizeof out, &ol, key, wire, wl), PL_OK);
    assert_int_equal(ol, sizeof msg);
}

static void test_malformed_plaintexts(void **state) {
    (void)state;
    uint8_t key[32], plain[600], wire[700], out[600];
    size_t ol, wl;
    pl_test_rand_bytes(&rng_state, key, sizeof key);
    pl_test_rand_bytes(&rng_state, plain, sizeof plain);

    /* empty plaintext */
    wl = seal_raw(wire, key, plain, 0);
    assert_int_equal(pl_waku_v1_open(out, sizeof out, &ol, key, wire, wl), PL_ERR_WAKU_PAYLOAD);
    /* size field width 0 */
    plain[0] = 0x00;
    wl = seal_raw(wire, key, plain, 256);
    assert_int_equal(pl_waku_v1_open(out, sizeof out, &ol, key, wire, wl), PL_ERR_WAKU_PAYLOAD);
    /* signed */
    plain[0] = 0x05;
    plain[1] = 10;
    wl = seal_raw(wire, key, plain, 256);
    assert_int_equal(pl_waku_v1_open(out, sizeof out, &ol, key, wire, wl), PL_ERR_WAKU_SIGNED);
    /* size beyond the plaintext, for each width */
    for (uint8_t w = 1; w <= 3; w++) {
        plain[0] = w;
        size_t n = 1 + w + 5;
        size_t size = n - 1 - w + 1;
        for (size_t i = 0; i < w; i++) plain[1 + i] = (uint8_t)(size >> (8 * i));
        wl = seal_raw(wire, key, plain, n);
        ol = 9;
        assert_int_equal(pl_waku_v1_open(out, sizeof out, &ol, key, wire, wl), PL_ERR_WAKU_PAYLOAD);
        assert_int_equal(ol, 0);
        /* exactly filling it (no padding) is accepted: padding is not checked */
        size--;
        for (size_t i = 0; i < w; i++) plain[1 + i] = (uint8_t)(size >> (8 * i));
        wl = seal_raw(wire, key, plain, n);
        assert_int_equal(pl_waku_v1_open(out, sizeof out, &ol, key, wire, wl), PL_OK);
        assert_int_equal(ol, 5);
        assert_memory_equal(out, plain + 1 + w, 5);
    }
    /* size field cut off */
    plain[0] = 3;
    wl = seal_raw(wire, key, plain, 3);
    assert_int_equal(pl_waku_v1_open(out, sizeof out, &ol, key, wire, wl), PL_ERR_WAKU_PAYLOAD);
    /* unknown flag bits are ignored, as js-waku ignores them */
    plain[0] = 0xf9;
    plain[1] = 3;
    wl = seal_raw(wire, key, plain, 256);
    assert_int_equal(pl_waku_v1_open(out, sizeof out, &ol, key, wire, wl), PL_OK);
    assert_int_equal(ol, 3);
    /* a non-minimal width is accepted */
    plain[0] = 2;
    plain[1] = 4;
    plain[2] = 0;
    wl = seal_raw(wire, key, plain, 256);
    assert_int_equal(pl_waku_v1_open(out, sizeof out, &ol, key, wire, wl), PL_OK);
    assert_int_equal(ol, 4);
}

static void test_size_limits(void **state) {
    (void)state;
    uint8_t key[32] = {1};
    size_t big = PL_WAKU_MESSAGE_MAX;
    uint8_t *buf = calloc(1, big + 64);
    size_t wl = 5;
    assert_int_equal(pl_waku_v1_sealed_size(big), 0);
    assert_int_equal(pl_waku_v1_seal(buf, big + 64, &wl, key, buf, big, NULL), PL_ERR_TOO_LARGE);
    assert_int_equal(wl, 0);
    /* the largest payload that fits */
    size_t n = big - 28 - 1 - 3 - 1;
    while (pl_waku_v1_sealed_size(n) == 0) n--;
    assert_true(pl_waku_v1_sealed_size(n) <= big);
    assert_int_equal(pl_waku_v1_sealed_size(n + 256), 0);
    assert_int_equal(pl_waku_v1_seal(buf, big, &wl, key, buf, n, NULL), PL_OK);
    size_t ol;
    assert_int_equal(pl_waku_v1_open(buf + 0, 0, &ol, key, buf, big + 1), PL_ERR_TOO_LARGE);
    uint8_t *out = malloc(n);
    assert_int_equal(pl_waku_v1_open(out, n, &ol, key, buf, wl), PL_OK);
    assert_int_equal(ol, n);
    free(out);
    free(buf);
}


int main(void) {
    if (pl_init() != PL_OK) return 1;
    rng_state = pl_test_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_and_roundtrip),
        cmocka_unit_test(test_fixed_iv_padding_is_exact),
        cmocka_unit_test(test_every_tampered_byte_rejected),
        cmocka_unit_test(test_malformed_plaintexts),
        cmocka_unit_test(test_size_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
