/* SPDX-License-Identifier: Apache-2.0 */
/* X25519, WalletConnect keys/topics/envelopes, Ed25519, Argon2id, AES-GCM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pairlink/codec.h"
#include "pairlink/crypto.h"
#include "pairlink/hash.h"
#include "support/support.h"

static json_t *wc;

static void hex_of(char *out, const uint8_t *in, size_t len) {
    assert_int_equal(pl_hex_encode(out, PL_HEX_SIZE(len), in, len), PL_OK);
}

/* ---- X25519 and session keys ---- */

static void test_x25519_vectors(void **state) {
    (void)state;
    uint8_t a_priv[32], a_pub[32], b_priv[32], b_pub[32], shared[32], want[32], pub[32], h[32];
    pl_test_hex(wc, "x25519.a_priv", a_priv, 32);
    pl_test_hex(wc, "x25519.a_pub", a_pub, 32);
    pl_test_hex(wc, "x25519.b_priv", b_priv, 32);
    pl_test_hex(wc, "x25519.b_pub", b_pub, 32);
    pl_x25519_public(pub, a_priv);
    assert_memory_equal(pub, a_pub, 32);
    pl_x25519_public(pub, b_priv);
    assert_memory_equal(pub, b_pub, 32);

    pl_test_hex(wc, "x25519.shared", want, 32);
    assert_int_equal(pl_x25519(shared, a_priv, b_pub), PL_OK);
    assert_memory_equal(shared, want, 32);
    assert_int_equal(pl_x25519(shared, b_priv, a_pub), PL_OK);
    assert_memory_equal(shared, want, 32);

    pl_test_hex(wc, "x25519.sha256_of_shared", want, 32);
    pl_sha256(h, shared, 32);
    assert_memory_equal(h, want, 32);
}

static void test_x25519_low_order(void **state) {
    (void)state;
    uint8_t priv[32], pub[32], out[32];
    pl_x25519_keypair(pub, priv);
    /* 0 and 1 are points of small order: the shared secret would be zero. */
    uint8_t zero[32] = {0}, one[32] = {1};
    memset(out, 0xaa, sizeof out);
    assert_int_equal(pl_x25519(out, priv, zero), PL_ERR_WEAK_KEY);
    assert_memory_equal(out, zero, 32);
    assert_int_equal(pl_x25519(out, priv, one), PL_ERR_WEAK_KEY);
    uint8_t key[32];
    memset(key, 0xaa, sizeof key);
    assert_int_equal(pl_wc_session_key(key, priv, zero), PL_ERR_WEAK_KEY);
    assert_memory_equal(key, zero, 32);
}

static void test_keypairs_agree(void **state) {
    (void)state;
    uint8_t ap[32], as[32], bp[32], bs[32], k1[32], k2[32];
    pl_x25519_keypair(ap, as);
    pl_x25519_keypair(bp, bs);
    assert_memory_not_equal(as, bs, 32);
    assert_int_equal(pl_wc_session_key(k1, as, bp), PL_OK);
    assert_int_equal(pl_wc_session_key(k2, bs, ap), PL_OK);
    assert_memory_equal(k1, k2, 32);
}

static void test_session_key_and_topic(void **state) {
    (void)state;
    uint8_t a_priv[32], b_pub[32], b_priv[32], a_pub[32], key[32], want[32];
    pl_test_hex(wc, "x25519.a_priv", a_priv, 32);
    pl_test_hex(wc, "x25519.b_pub", b_pub, 32);
    pl_test_hex(wc, "x25519.b_priv", b_priv, 32);
    pl_test_hex(wc, "x25519.a_pub", a_pub, 32);
    pl_test_hex(wc, "session_key.sym_key", want, 32);
    assert_int_equal(pl_wc_session_key(key, a_priv, b_pub), PL_OK);
    assert_memory_equal(key, want, 32);
    assert_int_equal(pl_wc_session_key(key, b_priv, a_pub), PL_OK);
    assert_memory_equal(key, want, 32);

    char topic[PL_TOPIC_HEX_SIZE];
    pl_wc_topic(topic, key);
    assert_string_equal(topic, pl_test_str(wc, "session_key.topic"));

    /* The trap: hashing the hex text of the key gives another topic. */
    char key_hex[PL_HEX_SIZE(32)], wrong[PL_HEX_SIZE(32)];
    uint8_t h[32];
    hex_of(key_hex, key, 32);
    pl_sha256(h, (const uint8_t *)key_hex, 64);
    hex_of(wrong, h, 32);
    assert_string_equal(wrong, pl_test_str(wc, "session_key.wrong_topic_if_hashing_the_hex_string"));
    assert_string_not_equal(wrong, topic);
}

/* ---- envelopes ---- */

static void load_env(uint8_t key[32], uint8_t iv[12], const char **msg) {
    pl_test_hex(wc, "session_key.sym_key", key, 32);
    pl_test_hex(wc, "envelopes.iv", iv, 12);
    *msg = pl_test_str(wc, "envelopes.message");
}

static void test_envelope_vectors_seal(void **state) {
    (void)state;
    uint8_t key[32], iv[12], sender[32], h[32], want_h[32];
    const char *msg;
    load_env(key, iv, &msg);
    pl_sha256(h, (const uint8_t *)msg, strlen(msg));
    pl_test_hex(wc, "envelopes.message_sha256", want_h, 32);
    assert_memory_equal(h, want_h, 32);
    pl_test_hex(wc, "envelopes.type1_sender_pub", sender, 32);

    char *out = NULL;
    pl_envelope_params p0 = {.type = 0, .iv = iv};
    assert_int_equal(pl_envelope_seal(&out, key, (const uint8_t *)msg, strlen(msg), &p0), PL_OK);
    assert_string_equal(out, pl_test_str(wc, "envelopes.type0_b64"));
    pl_free(out);

    pl_envelope_params p1 = {.type = 1, .sender_pub = sender, .iv = iv};
    assert_int_equal(pl_envelope_seal(&out, key, (const uint8_t *)msg, strlen(msg), &p1), PL_OK);
    assert_string_equal(out, pl_test_str(wc, "envelopes.type1_b64"));
    pl_free(out);

    pl_envelope_params p2 = {.type = 2};
    assert_int_equal(pl_envelope_seal(&out, NULL, (const uint8_t *)msg, strlen(msg), &p2), PL_OK);
    assert_string_equal(out, pl_test_str(wc, "envelopes.type2_b64"));
    pl_free(out);

    /* Random IVs: two seals differ, both open. */
    char *x = NULL, *y = NULL;
    pl_envelope_params pr = {.type = 0};
    assert_int_equal(pl_envelope_seal(&x, key, (const uint8_t *)msg, strlen(msg), &pr), PL_OK);
    assert_int_equal(pl_envelope_seal(&y, key, (const uint8_t *)msg, strlen(msg), &pr), PL_OK);
    assert_string_not_equal(x, y);
    uint8_t *m = NULL;
    size_t n = 0;
    assert_int_equal(pl_envelope_open(&m, &n, NULL, key, y, strlen(y)), PL_OK);
    assert_int_equal(n, strlen(msg));
    pl_free(m), pl_free(x), pl_free(y);
}

static void test_envelope_vectors_open(void **state) {
    (void)state;
    uint8_t key[32], iv[12], sender[32], b_priv[32];
    const char *msg;
    load_env(key, iv, &msg);
    pl_test_hex(wc, "envelopes.type1_sender_pub", sender, 32);
    pl_test_hex(wc, "x25519.b_priv", b_priv, 32);

    const char *t0 = pl_test_str(wc, "envelopes.type0_b64");
    const char *t1 = pl_test_str(wc, "envelopes.type1_b64");
    const char *t2 = pl_test_str(wc, "envelopes.type2_b64");
    uint8_t *m = NULL;
    size_t n = 0;
    pl_envelope_info info;

    assert_int_equal(pl_envelope_peek(&info, t0, strlen(t0)), PL_OK);
    assert_int_equal(info.type, 0);
    assert_int_equal(pl_envelope_open(&m, &n, &info, key, t0, strlen(t0)), PL_OK);
    assert_int_equal(n, strlen(msg));
    assert_memory_equal(m, msg, n);
    assert_int_equal(m[n], 0);
    pl_free(m);

    assert_int_equal(pl_envelope_peek(&info, t1, strlen(t1)), PL_OK);
    assert_int_equal(info.type, 1);
    assert_memory_equal(info.sender_pub, sender, 32);
    assert_int_equal(pl_envelope_open(&m, &n, NULL, key, t1, strlen(t1)), PL_OK);
    assert_memory_equal(m, msg, n);
    pl_free(m);
    /* The receiver (b) derives the key from the sender key (a_pub) inside. */
    memset(&info, 0, sizeof info);
    assert_int_equal(pl_envelope_open_type1(&m, &n, &info, b_priv, t1, strlen(t1)), PL_OK);
    assert_int_equal(n, strlen(msg));
    assert_memory_equal(m, msg, n);
    assert_memory_equal(info.sender_pub, sender, 32);
    pl_free(m);

    assert_int_equal(pl_envelope_peek(&info, t2, strlen(t2)), PL_OK);
    assert_int_equal(info.type, 2);
    assert_int_equal(pl_envelope_open(&m, &n, &info, NULL, t2, strlen(t2)), PL_OK);
    assert_memory_equal(m, msg, n);
    pl_free(m);
}

/* The text forms (one buffer each way: sealed into the tail of its text,
 * opened in place) agree with the raw forms for every message length up to
 * 300 and some larger ones, for all three types: the same text as base64 of
 * the raw envelope, the same plaintext, NUL-terminated. */
static void test_envelope_text_matches_raw(void **state) {
    (void)state;
    uint8_t key[32], iv[12], a_priv[32], a_pub[32], b_priv[32], b_pub[32], k1[32];
    uint64_t seed = pl_test_seed();
    pl_test_rand_bytes(&seed, key, sizeof key);
    pl_test_rand_bytes(&seed, iv, sizeof iv);
    pl_test_rand_bytes(&seed, a_priv, sizeof a_priv);
    pl_test_rand_bytes(&seed, b_priv, sizeof b_priv);
    pl_x25519_public(a_pub, a_priv);
    pl_x25519_public(b_pub, b_priv);
    assert_int_equal(pl_wc_session_key(k1, a_priv, b_pub), PL_OK);
    static uint8_t msg[5000];
    pl_test_rand_bytes(&seed, msg, sizeof msg);
    for (size_t len = 0; len < 330; len++) {
        size_t n = len < 300 ? len : (size_t)(pl_test_rand(&seed) % sizeof msg);
        for (int type = 0; type < 3; type++) {
            pl_envelope_params p = {.type = type, .iv = iv, .sender_pub = a_pub};
            const uint8_t *k = type == 0 ? key : type == 1 ? k1 : NULL;
            uint8_t *raw = NULL, *m = NULL;
            size_t raw_len = 0, m_len = 99;
            char *text = NULL;
            assert_int_equal(pl_envelope_seal_raw(&raw, &raw_len, k, msg, n, &p), PL_OK);
            assert_int_equal(pl_envelope_seal(&text, k, msg, n, &p), PL_OK);
            size_t cap = pl_base64_encoded_size(raw_len, PL_B64_STD);
            char *want = malloc(cap);
            assert_non_null(want);
            assert_int_equal(pl_base64_encode(want, cap, raw, raw_len, PL_B64_STD), PL_OK);
            assert_string_equal(text, want);
            pl_envelope_info info;
            if (type == 1)
                assert_int_equal(pl_envelope_open_type1(&m, &m_len, &info, b_priv, text, strlen(text)),
                                 PL_OK);
            else
                assert_int_equal(pl_envelope_open(&m, &m_len, &info, k, text, strlen(text)), PL_OK);
            assert_int_equal(info.type, type);
            assert_int_equal(m_len, n);
            if (n) assert_memory_equal(m, msg, n);
            assert_int_equal(m[n], 0);
            pl_free(m);
            if (n && type != 2) { /* a flipped tag bit: refused, nothing returned */
                want[strlen(want) - 3] ^= 1;
                m = (uint8_t *)1;
                pl_err e = type == 1 ? pl_envelope_open_type1(&m, &m_len, NULL, b_priv, want, strlen(want))
                                     : pl_envelope_open(&m, &m_len, NULL, k, want, strlen(want));
                assert_true(e == PL_ERR_DECRYPT || e == PL_ERR_BAD_BASE64);
                assert_null(m);
                assert_int_equal(m_len, 0);
            }
            free(want);
            pl_free(text);
            pl_free(raw);
        }
    }
}

/* Type 2 carries no tag: a holder of a key must not accept it (else anyone
 * could swap a sealed message for a plaintext one), and no key means no 0/1. */
static void test_envelope_type_policy(void **state) {
    (void)state;
    uint8_t key[32], iv[12], b_priv[32];
    const char *msg;
    load_env(key, iv, &msg);
    pl_test_hex(wc, "x25519.b_priv", b_priv, 32);
    const char *t0 = pl_test_str(wc, "envelopes.type0_b64");
    const char *t2 = pl_test_str(wc, "envelopes.type2_b64");
    uint8_t *m = (uint8_t *)"sentinel";
    size_t n = 5;
    pl_envelope_info info = {.type = 9};
    assert_int_equal(pl_envelope_open(&m, &n, &info, key, t2, strlen(t2)), PL_ERR_ENVELOPE_TYPE);
    assert_null(m);
    assert_int_equal(n, 0);
    assert_int_equal(info.type, 0);
    assert_int_equal(pl_envelope_open(&m, &n, NULL, NULL, t0, strlen(t0)), PL_ERR_ENVELOPE_TYPE);
    assert_null(m);
    assert_int_equal(pl_envelope_open_type1(&m, &n, NULL, b_priv, t0, strlen(t0)),
                     PL_ERR_ENVELOPE_TYPE);
    assert_int_equal(pl_envelope_open_type1(&m, &n, NULL, b_priv, t2, strlen(t2)),
                     PL_ERR_ENVELOPE_TYPE);
    assert_null(m);

    char *out = (char *)"x";
    pl_envelope_params bad = {.type = 3};
    assert_int_equal(pl_envelope_seal(&out, key, (const uint8_t *)"a", 1, &bad), PL_ERR_ENVELOPE_TYPE);
    assert_null(out);
    bad.type = -1;
    assert_int_equal(pl_envelope_seal(&out, key, (const uint8_t *)"a", 1, &bad), PL_ERR_ENVELOPE_TYPE);
}

static char *b64_of(const uint8_t *raw, size_t len) {
    size_t cap = pl_base64_encoded_size(len, PL_B64_STD);
    char *s = malloc(cap);
    assert_non_null(s);
    assert_int_equal(pl_base64_encode(s, cap, raw, len, PL_B64_STD), PL_OK);
    return s;
}

static uint8_t *raw_of(const char *b64, size_t *len) {
    uint8_t *raw = malloc(strlen(b64));
    assert_non_null(raw);
    assert_int_equal(pl_base64_decode(raw, strlen(b64), len, b64, strlen(b64), PL_B64_STD), PL_OK);
    return raw;
}

static int is_rejection(pl_err e) {
    return e == PL_ERR_DECRYPT || e == PL_ERR_ENVELOPE_TYPE || e == PL_ERR_BAD_ENVELOPE;
}

/* Every byte position, several flips each: never PL_OK, never any bytes.
 * Bytes [skip_from, skip_to) are left out: with an explicit key the type 1
 * sender key is not covered by the tag (no AAD, as in the JS SDK); the
 * open_type1 run covers those bytes through key derivation. */
static void tamper_all(const char *b64, const uint8_t key[32], const uint8_t *receiver_priv,
                       size_t skip_from, size_t skip_to) {
    size_t len;
    uint8_t *raw = raw_of(b64, &len);
    static const uint8_t flips[] = {0x01, 0x02, 0x80, 0xff};
    for (size_t i = 0; i < len; i++) {
        if (i >= skip_from && i < skip_to) continue;
        for (size_t f = 0; f < sizeof flips; f++) {
            raw[i] ^= flips[f];
            char *t = b64_of(raw, len);
            uint8_t *m = NULL;
            size_t n = 1;
            pl_err e = receiver_priv
                           ? pl_envelope_open_type1(&m, &n, NULL, receiver_priv, t, strlen(t))
                           : pl_envelope_open(&m, &n, NULL, key, t, strlen(t));
            if (!is_rejection(e))
                fprintf(stderr, "byte %zu ^ 0x%02x: %s\n", i, flips[f], pl_errname(e));
            assert_true(is_rejection(e));
            /* Only the type byte may turn it into another (or no) type; the
             * top bit of a type 1 sender key makes a non-canonical key,
             * which X25519 alone would silently accept. */
            if (raw[0] == 1 && i == 32 && (flips[f] & 0x80))
                assert_int_equal(e, PL_ERR_BAD_ENVELOPE);
            else if (i > 0)
                assert_int_equal(e, PL_ERR_DECRYPT);
            assert_null(m);
            assert_int_equal(n, 0);
            free(t);
            raw[i] ^= flips[f];
        }
    }
    /* Truncations: every shorter length. */
    for (size_t cut = 0; cut < len; cut++) {
        char *t = b64_of(raw, cut);
        uint8_t *m = NULL;
        size_t n = 1;
        pl_err e = receiver_priv ? pl_envelope_open_type1(&m, &n, NULL, receiver_priv, t, strlen(t))
                                 : pl_envelope_open(&m, &n, NULL, key, t, strlen(t));
        assert_true(is_rejection(e));
        assert_null(m);
        free(t);
    }
    free(raw);
}

static void test_envelope_tamper_every_byte(void **state) {
    (void)state;
    uint8_t key[32], iv[12], b_priv[32];
    const char *msg;
    load_env(key, iv, &msg);
    pl_test_hex(wc, "x25519.b_priv", b_priv, 32);
    tamper_all(pl_test_str(wc, "envelopes.type0_b64"), key, NULL, 0, 0);
    tamper_all(pl_test_str(wc, "envelopes.type1_b64"), key, NULL, 1, 33);
    tamper_all(pl_test_str(wc, "envelopes.type1_b64"), NULL, b_priv, 0, 0);

    /* A wrong key. */
    const char *t0 = pl_test_str(wc, "envelopes.type0_b64");
    key[0] ^= 1;
    uint8_t *m = NULL;
    size_t n;
    assert_int_equal(pl_envelope_open(&m, &n, NULL, key, t0, strlen(t0)), PL_ERR_DECRYPT);
    assert_null(m);
    b_priv[5] ^= 0x40;
    const char *t1 = pl_test_str(wc, "envelopes.type1_b64");
    assert_int_equal(pl_envelope_open_type1(&m, &n, NULL, b_priv, t1, strlen(t1)), PL_ERR_DECRYPT);
}

static void test_envelope_outer_errors(void **state) {
    (void)state;
    uint8_t key[32] = {0};
    pl_envelope_info info;
    uint8_t *m = NULL;
    size_t n;
    assert_int_equal(pl_envelope_peek(&info, "", 0), PL_ERR_BAD_ENVELOPE);
    assert_int_equal(pl_envelope_peek(&info, "not base64!", 11), PL_ERR_BAD_BASE64);
    assert_int_equal(pl_envelope_peek(&info, "AA", 2), PL_ERR_BAD_BASE64); /* unpadded */
    assert_int_equal(pl_envelope_peek(&info, "AA==", 4), PL_ERR_BAD_ENVELOPE);
    assert_int_equal(pl_envelope_peek(&info, "AQ==", 4), PL_ERR_BAD_ENVELOPE);
    assert_int_equal(pl_envelope_peek(&info, "Ag==", 4), PL_OK); /* empty type 2 */
    assert_int_equal(info.type, 2);
    assert_int_equal(pl_envelope_open(&m, &n, NULL, NULL, "Ag==", 4), PL_OK);
    assert_int_equal(n, 0);
    assert_int_equal(m[0], 0);
    pl_free(m);
    assert_int_equal(pl_envelope_peek(&info, "Aw==", 4), PL_ERR_ENVELOPE_TYPE);
    assert_int_equal(pl_envelope_peek(&info, "/w==", 4), PL_ERR_ENVELOPE_TYPE);
    assert_int_equal(pl_envelope_open(&m, &n, NULL, key, "Aw==", 4), PL_ERR_ENVELOPE_TYPE);

    /* Type 1 sender keys must be canonical (u < 2^255 - 19). */
    uint8_t t1raw[1 + 32 + 12 + 16] = {1};
    memset(t1raw + 1, 0xff, 31);
    t1raw[32] = 0x7f;
    t1raw[1] = 0xed; /* u = p */
    char *tb = b64_of(t1raw, sizeof t1raw);
    assert_int_equal(pl_envelope_peek(&info, tb, strlen(tb)), PL_ERR_BAD_ENVELOPE);
    free(tb);
    t1raw[1] = 0xec; /* u = p - 1: canonical */
    tb = b64_of(t1raw, sizeof t1raw);
    assert_int_equal(pl_envelope_peek(&info, tb, strlen(tb)), PL_OK);
    assert_int_equal(info.type, 1);
    free(tb);

    /* URL-safe alphabet is not the wire format. */
    const char *t1 = pl_test_str(wc, "envelopes.type1_b64");
    char *u = strdup(t1);
    for (char *p = u; *p; p++) {
        if (*p == '+') *p = '-';
        if (*p == '/') *p = '_';
    }
    assert_int_equal(pl_envelope_peek(&info, u, strlen(u)), PL_ERR_BAD_BASE64);
    free(u);

    /* Size bounds. */
    uint8_t *big = calloc(1, PL_ENVELOPE_MAX_MESSAGE + 64);
    assert_non_null(big);
    char *out = NULL;
    pl_envelope_params p0 = {.type = 0};
    assert_int_equal(pl_envelope_seal(&out, key, big, PL_ENVELOPE_MAX_MESSAGE + 1, &p0),
                     PL_ERR_TOO_LARGE);
    assert_null(out);
    assert_int_equal(pl_envelope_seal(&out, key, big, PL_ENVELOPE_MAX_MESSAGE, &p0), PL_OK);
    assert_int_equal(pl_envelope_open(&m, &n, NULL, key, out, strlen(out)), PL_OK);
    assert_int_equal(n, PL_ENVELOPE_MAX_MESSAGE);
    pl_free(m);
    pl_free(out);
    /* A type 2 body one byte over the limit (built by hand). */
    big[0] = 2;
    char *t = b64_of(big, PL_ENVELOPE_MAX_MESSAGE + 2);
    assert_int_equal(pl_envelope_peek(&info, t, strlen(t)), PL_ERR_TOO_LARGE);
    free(t);
    /* Text longer than any legal envelope is refused before decoding. */
    size_t huge = pl_base64_encoded_size(PL_ENVELOPE_MAX_MESSAGE + 64, PL_B64_STD);
    char *h = malloc(huge);
    assert_non_null(h);
    memset(h, '!', huge);
    assert_int_equal(pl_envelope_peek(&info, h, huge), PL_ERR_TOO_LARGE);
    free(h);
    free(big);
}

static void test_envelope_random_garbage(void **state) {
    (void)state;
    uint64_t seed = pl_test_seed();
    uint8_t key[32] = {7}, priv[32] = {9}, raw[128];
    for (int i = 0; i < 3000; i++) {
        size_t len = (size_t)(pl_test_rand(&seed) % sizeof raw);
        pl_test_rand_bytes(&seed, raw, len);
        if (len && i % 2) raw[0] = (uint8_t)(i % 3);
        char *t = b64_of(raw, len);
        uint8_t *m = NULL;
        size_t n = 0;
        pl_envelope_info info;
        (void)pl_envelope_peek(&info, t, strlen(t));
        pl_err e = pl_envelope_open(&m, &n, NULL, key, t, strlen(t));
        assert_int_not_equal(e, PL_OK);
        assert_null(m);
        e = pl_envelope_open_type1(&m, &n, NULL, priv, t, strlen(t));
        assert_int_not_equal(e, PL_OK);
        assert_null(m);
        /* Raw bytes as text, too. */
        (void)pl_envelope_peek(&info, (const char *)raw, len);
        free(t);
    }
}

/* ---- Ed25519 ---- */

static void test_ed25519(void **state) {
    (void)state;
    json_t *wm = pl_test_vectors("waku-message.json");
    uint8_t seed[32], pub[32], sig[64], want[64], msg[24 + 32];
    pl_test_hex(wm, "libp2p.ed25519_peer.private_seed", seed, 32);
    pl_ed25519_public(pub, seed);
    /* The libp2p protobuf key is 08 01 12 20 || pub. */
    size_t plen;
    uint8_t *proto = pl_test_unhex(pl_test_str(wm, "libp2p.ed25519_peer.public_key_proto"), &plen);
    assert_int_equal(plen, 36);
    assert_memory_equal(proto + 4, pub, 32);
    free(proto);

    /* Ed25519 is deterministic: the published libp2p Noise signature. */
    memcpy(msg, "noise-libp2p-static-key:", 24);
    pl_test_hex(wm, "libp2p.noise_handshake_signature.static_pub", msg + 24, 32);
    pl_test_hex(wm, "libp2p.noise_handshake_signature.signature", want, 64);
    pl_ed25519_sign(sig, seed, msg, sizeof msg);
    assert_memory_equal(sig, want, 64);
    assert_int_equal(pl_ed25519_verify(sig, pub, msg, sizeof msg), PL_OK);
    sig[10] ^= 1;
    assert_int_equal(pl_ed25519_verify(sig, pub, msg, sizeof msg), PL_ERR_BAD_SIGNATURE);
    sig[10] ^= 1;
    msg[0] ^= 1;
    assert_int_equal(pl_ed25519_verify(sig, pub, msg, sizeof msg), PL_ERR_BAD_SIGNATURE);
    json_decref(wm);

    uint8_t p2[32], s2[32];
    pl_ed25519_keypair(p2, s2);
    pl_ed25519_sign(sig, s2, NULL, 0);
    assert_int_equal(pl_ed25519_verify(sig, p2, NULL, 0), PL_OK);
    assert_int_equal(pl_ed25519_verify(sig, pub, NULL, 0), PL_ERR_BAD_SIGNATURE);
}

/* ---- Argon2id ---- */

/* Expected outputs computed with the Argon2 reference implementation
 * (Debian's libargon2.so.1, argon2id_hash_raw, parallelism 1, 32-byte
 * output) through Python ctypes: independent of libsodium's code. */
static void test_argon2id_reference(void **state) {
    (void)state;
    struct {
        uint32_t t, m_kib;
        const char *pwd;
        const char *salt_hex, *out_hex;
    } kat[] = {
        {2, 64, "password", "736f6d6573616c74736f6d6573616c74",
         "1a98fba8e6394425c9bdc333a9c750aaf811df070f5fb4a5788e1cf4db5793a1"},
        {1, 8, "", "000102030405060708090a0b0c0d0e0f",
         "31ed41e2d73f27fdfe4eb4bec651341e58ba43477051c6fe4adad735d82ee08a"},
        {3, 256, "pairlink correct horse", "01010101010101010101010101010101",
         "5debb4b59d343a031ba3d60b833f73171d3ffd8b40fa7eeaccd261e30482e122"},
    };
    for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
        uint8_t salt[16], want[32], out[32];
        assert_int_equal(pl_hex_decode_exact(salt, 16, kat[i].salt_hex, 32), PL_OK);
        assert_int_equal(pl_hex_decode_exact(want, 32, kat[i].out_hex, 64), PL_OK);
        assert_int_equal(pl_argon2id(out, 32, (const uint8_t *)kat[i].pwd, strlen(kat[i].pwd),
                                     salt, kat[i].t, (size_t)kat[i].m_kib * 1024),
                         PL_OK);
        assert_memory_equal(out, want, 32);
    }
}

static void test_argon2id_properties(void **state) {
    (void)state;
    uint8_t salt[16] = {1, 2, 3}, a[32], b[32];
    const uint8_t *pwd = (const uint8_t *)"hunter2";
    assert_int_equal(pl_argon2id(a, 32, pwd, 7, salt, 2, 64 * 1024), PL_OK);
    assert_int_equal(pl_argon2id(b, 32, pwd, 7, salt, 2, 64 * 1024), PL_OK);
    assert_memory_equal(a, b, 32);
    salt[15] ^= 1;
    assert_int_equal(pl_argon2id(b, 32, pwd, 7, salt, 2, 64 * 1024), PL_OK);
    assert_memory_not_equal(a, b, 32);
    salt[15] ^= 1;
    assert_int_equal(pl_argon2id(b, 32, pwd, 7, salt, 3, 64 * 1024), PL_OK);
    assert_memory_not_equal(a, b, 32);

    /* libsodium's own verifier accepts the PHC string built from our raw
     * output: the parameters (memlimit in bytes -> m in KiB) went through. */
    char salt_b64[32], hash_b64[64], phc[256];
    assert_int_equal(pl_base64_encode(salt_b64, sizeof salt_b64, salt, 16, PL_B64_STD_NOPAD), PL_OK);
    assert_int_equal(pl_base64_encode(hash_b64, sizeof hash_b64, a, 32, PL_B64_STD_NOPAD), PL_OK);
    snprintf(phc, sizeof phc, "$argon2id$v=19$m=64,t=2,p=1$%s$%s", salt_b64, hash_b64);
    assert_int_equal(crypto_pwhash_str_verify(phc, "hunter2", 7), 0);
    assert_int_not_equal(crypto_pwhash_str_verify(phc, "hunter3", 7), 0);

    uint8_t out[64];
    assert_int_equal(pl_argon2id(out, 15, pwd, 7, salt, 1, 8192), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_argon2id(out, 16, pwd, 7, salt, 0, 8192), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_argon2id(out, 16, pwd, 7, salt, 1, 8191), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_argon2id(out, 16, pwd, 7, salt, 1, 8192), PL_OK);
    assert_int_equal(pl_argon2id(out, 16, NULL, 0, salt, 1, 8192), PL_OK);
}

/* ---- AES-256-GCM ---- */

/* McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13-16
 * (AES-256, 96-bit IV); values confirmed with Node's crypto. */
static void check_gcm(const char *k_hex, const char *iv_hex, const char *aad_hex, const char *p_hex,
                      const char *c_hex, const char *t_hex) {
    size_t kn, ivn, an, pn, cn, tn;
    uint8_t *k = pl_test_unhex(k_hex, &kn), *iv = pl_test_unhex(iv_hex, &ivn);
    uint8_t *aad = pl_test_unhex(aad_hex, &an), *p = pl_test_unhex(p_hex, &pn);
    uint8_t *c = pl_test_unhex(c_hex, &cn), *t = pl_test_unhex(t_hex, &tn);
    assert_int_equal(kn, 32);
    assert_int_equal(ivn, 12);
    uint8_t out[128], back[128];
    assert_int_equal(pl_aes256gcm_encrypt(out, k, iv, an ? aad : NULL, an, p, pn), PL_OK);
    assert_memory_equal(out, c, cn);
    assert_memory_equal(out + pn, t, 16);
    assert_int_equal(pl_aes256gcm_decrypt(back, k, iv, an ? aad : NULL, an, out, pn + 16), PL_OK);
    if (pn) assert_memory_equal(back, p, pn);

    /* Every flipped byte of ct|tag, and a changed AAD, fail and wipe. */
    for (size_t i = 0; i < pn + 16; i++) {
        out[i] ^= 0x10;
        memset(back, 0xaa, sizeof back);
        assert_int_equal(pl_aes256gcm_decrypt(back, k, iv, an ? aad : NULL, an, out, pn + 16),
                         PL_ERR_DECRYPT);
        for (size_t j = 0; j < pn; j++) assert_int_equal(back[j], 0);
        out[i] ^= 0x10;
    }
    const uint8_t other_aad[1] = {0};
    assert_int_equal(pl_aes256gcm_decrypt(back, k, iv, other_aad, 1, out, pn + 16), PL_ERR_DECRYPT);
    /* In place. */
    memcpy(back, out, pn + 16);
    assert_int_equal(pl_aes256gcm_decrypt(back, k, iv, an ? aad : NULL, an, back, pn + 16), PL_OK);
    if (pn) assert_memory_equal(back, p, pn);
    free(k), free(iv), free(aad), free(p), free(c), free(t);
}

static void test_aes256gcm(void **state) {
    (void)state;
    const char *z32 = "0000000000000000000000000000000000000000000000000000000000000000";
    const char *z12 = "000000000000000000000000";
    check_gcm(z32, z12, "", "", "", "530f8afbc74536b9a963b4f1c4cb738b");
    check_gcm(z32, z12, "", "00000000000000000000000000000000", "cea7403d4d606b6e074ec5d3baf39d18",
              "d0d1c8a799996bf0265b98b5d48ab919");
    const char *k = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
    const char *iv = "cafebabefacedbaddecaf888";
    check_gcm(k, iv, "",
              "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
              "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
              "b094dac5d93471bdec1a502270e3cc6c");
    check_gcm(k, iv, "feedfacedeadbeeffeedfacedeadbeefabaddad2",
              "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
              "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
              "76fc6ece0f4e1768cddf8853bb2d551b");

    uint8_t key[32] = {0}, ivb[12] = {0}, out[16];
    assert_int_equal(pl_aes256gcm_decrypt(out, key, ivb, NULL, 0, out, 15), PL_ERR_TRUNCATED);
}

static int setup(void **state) {
    (void)state;
    wc = pl_test_vectors("walletconnect.json");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    json_decref(wc);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_x25519_vectors),
        cmocka_unit_test(test_x25519_low_order),
        cmocka_unit_test(test_keypairs_agree),
        cmocka_unit_test(test_session_key_and_topic),
        cmocka_unit_test(test_envelope_vectors_seal),
        cmocka_unit_test(test_envelope_vectors_open),
        cmocka_unit_test(test_envelope_text_matches_raw),
        cmocka_unit_test(test_envelope_type_policy),
        cmocka_unit_test(test_envelope_tamper_every_byte),
        cmocka_unit_test(test_envelope_outer_errors),
        cmocka_unit_test(test_envelope_random_garbage),
        cmocka_unit_test(test_ed25519),
        cmocka_unit_test(test_argon2id_reference),
        cmocka_unit_test(test_argon2id_properties),
        cmocka_unit_test(test_aes256gcm),
    };
    if (pl_init() != PL_OK) return 1;
    return cmocka_run_group_tests(tests, setup, teardown);
}
