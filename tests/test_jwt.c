/* SPDX-License-Identifier: Apache-2.0 */
/* did:key and the relay-auth JWT. */
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
#include "relay/auth.h"
#include "support/support.h"

static json_t *wc;
static uint8_t seed[32];
static const char *vec_jwt, *vec_aud, *vec_sub, *vec_iss;
static int64_t vec_iat, vec_ttl;

static int setup(void **state) {
    (void)state;
    wc = pl_test_vectors("walletconnect.json");
    pl_test_hex(wc, "relay_auth_jwt.ed25519_seed", seed, 32);
    vec_jwt = pl_test_str(wc, "relay_auth_jwt.jwt");
    vec_aud = pl_test_str(wc, "relay_auth_jwt.aud");
    vec_sub = pl_test_str(wc, "relay_auth_jwt.sub");
    vec_iss = pl_test_str(wc, "relay_auth_jwt.iss");
    json_t *j = json_object_get(wc, "relay_auth_jwt");
    vec_iat = (int64_t)json_integer_value(json_object_get(j, "iat"));
    vec_ttl = (int64_t)json_integer_value(json_object_get(j, "ttl"));
    return vec_iat > 0 && vec_ttl > 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    json_decref(wc);
    return 0;
}

/* Build a token from arbitrary header/payload JSON text, signed properly,
 * to reach checks that come after the signature or that a real signer
 * would never produce. */
static char *make_jwt(const char *header, const char *payload, const uint8_t sk[32]) {
    size_t hl = strlen(header), pl = strlen(payload);
    size_t cap = pl_base64_encoded_size(hl, PL_B64_URL_NOPAD) +
                 pl_base64_encoded_size(pl, PL_B64_URL_NOPAD) + 90;
    char *s = malloc(cap);
    assert_non_null(s);
    assert_int_equal(pl_base64_encode(s, cap, (const uint8_t *)header, hl, PL_B64_URL_NOPAD), PL_OK);
    size_t pos = strlen(s);
    s[pos++] = '.';
    assert_int_equal(
        pl_base64_encode(s + pos, cap - pos, (const uint8_t *)payload, pl, PL_B64_URL_NOPAD), PL_OK);
    pos += strlen(s + pos);
    uint8_t sig[64];
    pl_ed25519_sign(sig, sk, (const uint8_t *)s, pos);
    s[pos++] = '.';
    assert_int_equal(pl_base64_encode(s + pos, cap - pos, sig, 64, PL_B64_URL_NOPAD), PL_OK);
    return s;
}

static pl_err verify_now(const char *jwt, const char *aud) {
    return pl_jwt_verify(NULL, jwt, strlen(jwt), aud, vec_iat + 10, 0);
}

static const char good_header[] = "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}";

static char *payload_with(const char *iss, const char *extra) {
    static char buf[2048];
    snprintf(buf, sizeof buf,
             "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"%s\",\"iat\":%lld,\"exp\":%lld%s}", iss,
             vec_sub, vec_aud, (long long)vec_iat, (long long)(vec_iat + vec_ttl), extra);
    return buf;
}

/* ---- did:key ---- */

static void test_did_key_vector(void **state) {
    (void)state;
    uint8_t pub[32], back[32];
    pl_ed25519_public(pub, seed);
    char did[PL_DID_KEY_SIZE];
    assert_int_equal(pl_did_key_encode(did, pub), PL_OK);
    assert_string_equal(did, vec_iss);
    assert_int_equal(pl_did_key_decode(back, did, strlen(did)), PL_OK);
    assert_memory_equal(back, pub, 32);
}

static void test_did_key_rejects(void **state) {
    (void)state;
    uint8_t pub[32], other[32] = {0};
    char did[160];
    pl_ed25519_public(pub, seed);

    /* Build encodings with a wrong multicodec or length. */
    uint8_t buf[40];
    char b58[80];
    struct {
        uint8_t head[2];
        size_t key_len;
    } cases[] = {{{0xec, 0x01}, 32}, {{0xed, 0x02}, 32}, {{0xe7, 0x01}, 32},
                 {{0xed, 0x01}, 31}, {{0xed, 0x01}, 33}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(buf, cases[i].head, 2);
        memset(buf + 2, 0x42, cases[i].key_len);
        assert_int_equal(pl_base58btc_encode(b58, sizeof b58, buf, 2 + cases[i].key_len), PL_OK);
        snprintf(did, sizeof did, "did:key:z%s", b58);
        memset(other, 0x77, 32);
        assert_int_equal(pl_did_key_decode(other, did, strlen(did)), PL_ERR_BAD_DID);
        for (int j = 0; j < 32; j++) assert_int_equal(other[j], 0);
    }

    char good[PL_DID_KEY_SIZE];
    assert_int_equal(pl_did_key_encode(good, pub), PL_OK);
    const char *rest = good + strlen("did:key:z");
    const char *prefixes[] = {"did:key:", "did:key:Z", "did:kex:z", "DID:key:z", "did:web:z", "z",
                              "did:key:zz", "did:key:z1"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        snprintf(did, sizeof did, "%s%s", prefixes[i], rest);
        assert_int_equal(pl_did_key_decode(other, did, strlen(did)), PL_ERR_BAD_DID);
    }
    /* Bad base58 characters, truncation, empty, NUL, over-long. */
    snprintf(did, sizeof did, "%s", good);
    did[20] = '0';
    assert_int_equal(pl_did_key_decode(other, did, strlen(did)), PL_ERR_BAD_DID);
    assert_int_equal(pl_did_key_decode(other, good, strlen(good) - 1), PL_ERR_BAD_DID);
    assert_int_equal(pl_did_key_decode(other, "", 0), PL_ERR_BAD_DID);
    assert_int_equal(pl_did_key_decode(other, "did:key:z", 9), PL_ERR_BAD_DID);
    assert_int_equal(pl_did_key_decode(other, good, strlen(good) + 1), PL_ERR_BAD_DID);
    char longer[200];
    memset(longer, 'z', sizeof longer);
    memcpy(longer, "did:key:z", 9);
    assert_int_equal(pl_did_key_decode(other, longer, sizeof longer), PL_ERR_BAD_DID);
}

/* ---- sign ---- */

static void test_jwt_sign_vector(void **state) {
    (void)state;
    char *jwt = NULL;
    assert_int_equal(pl_jwt_sign(&jwt, seed, vec_sub, vec_aud, vec_iat, vec_ttl), PL_OK);
    assert_string_equal(jwt, vec_jwt);
    pl_free(jwt);
}

static void test_jwt_sign_rejects(void **state) {
    (void)state;
    char *jwt = (char *)"x";
    char big[2048];
    memset(big, 'a', sizeof big);
    big[sizeof big - 1] = 0;
    assert_int_equal(pl_jwt_sign(&jwt, seed, big, vec_aud, vec_iat, vec_ttl), PL_ERR_TOO_LARGE);
    assert_null(jwt);
    assert_int_equal(pl_jwt_sign(&jwt, seed, vec_sub, big, vec_iat, vec_ttl), PL_ERR_TOO_LARGE);
    assert_int_equal(pl_jwt_sign(&jwt, seed, vec_sub, "wss://\xff", vec_iat, vec_ttl),
                     PL_ERR_BAD_UTF8);
    assert_null(jwt);
    assert_int_equal(pl_jwt_sign(&jwt, seed, vec_sub, vec_aud, vec_iat, 0), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_jwt_sign(&jwt, seed, vec_sub, vec_aud, -1, 10), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_jwt_sign(&jwt, seed, vec_sub, vec_aud, INT64_MAX - 5, 10),
                     PL_ERR_INVALID_ARG);
    /* Control characters escape to \u00XX (six bytes each): a payload of
     * 1023 of them passes the length checks but not the token bound. */
    char ctl[PL_JWT_AUD_MAX];
    memset(ctl, 0x01, sizeof ctl - 1);
    ctl[sizeof ctl - 1] = 0;
    assert_int_equal(pl_jwt_sign(&jwt, seed, vec_sub, ctl, vec_iat, vec_ttl), PL_ERR_TOO_LARGE);
    assert_null(jwt);

    /* A fresh key and odd-but-valid strings round-trip. */
    uint8_t pub[32], s2[32];
    pl_ed25519_keypair(pub, s2);
    assert_int_equal(pl_jwt_sign(&jwt, s2, "", "wss://r\xc3\xa9lay/\"q\"", 100, 1), PL_OK);
    pl_jwt_claims c;
    assert_int_equal(pl_jwt_verify(&c, jwt, strlen(jwt), "wss://r\xc3\xa9lay/\"q\"", 101, 0), PL_OK);
    assert_string_equal(c.sub, "");
    assert_memory_equal(c.pub, pub, 32);
    pl_free(jwt);
}

/* ---- verify ---- */

static void test_jwt_verify_vector(void **state) {
    (void)state;
    pl_jwt_claims c;
    size_t len = strlen(vec_jwt);
    assert_int_equal(pl_jwt_verify(&c, vec_jwt, len, vec_aud, vec_iat, 0), PL_OK);
    assert_string_equal(c.iss, vec_iss);
    assert_string_equal(c.sub, vec_sub);
    assert_string_equal(c.aud, vec_aud);
    assert_true(c.iat == vec_iat);
    assert_true(c.exp == vec_iat + vec_ttl);
    uint8_t pub[32];
    pl_ed25519_public(pub, seed);
    assert_memory_equal(c.pub, pub, 32);
    /* NULL expected_aud skips the audience check; NULL claims is fine. */
    assert_int_equal(pl_jwt_verify(NULL, vec_jwt, len, NULL, vec_iat, 0), PL_OK);
}

static void test_jwt_verify_audience(void **state) {
    (void)state;
    pl_jwt_claims c;
    memset(&c, 0x5a, sizeof c);
    size_t len = strlen(vec_jwt);
    assert_int_equal(pl_jwt_verify(&c, vec_jwt, len, "wss://relay.walletconnect.org", vec_iat, 0),
                     PL_ERR_JWT_AUDIENCE);
    assert_string_equal(c.iss, ""); /* claims cleared on failure */
    assert_int_equal(pl_jwt_verify(NULL, vec_jwt, len, "wss://relay.walletconnect.com/", vec_iat, 0),
                     PL_ERR_JWT_AUDIENCE);
    assert_int_equal(pl_jwt_verify(NULL, vec_jwt, len, "", vec_iat, 0), PL_ERR_JWT_AUDIENCE);
}

static void test_jwt_verify_time(void **state) {
    (void)state;
    size_t len = strlen(vec_jwt);
    int64_t exp = vec_iat + vec_ttl;
    assert_int_equal(pl_jwt_verify(NULL, vec_jwt, len, vec_aud, exp, 0), PL_OK);
    assert_int_equal(pl_jwt_verify(NULL, vec_jwt, len, vec_aud, exp + 1, 0), PL_ERR_JWT_EXPIRED);
    assert_int_equal(pl_jwt_verify(NULL, vec_jwt, len, vec_aud, exp + 1, 1), PL_OK);
    assert_int_equal(pl_jwt_verify(NULL, vec_jwt, len, vec_aud, exp + 60, 60), PL_OK);
    assert_int_equal(pl_jwt_verify(NULL, vec_jwt, len, vec_aud, exp + 61, 60), PL_ERR_JWT_EXPIRED);
    assert_int_equal(pl_jwt_verify(NULL, vec_jwt, len, vec_aud, vec_iat - 1, 0),
                     PL_ERR_JWT_NOT_YET_VALID);
    assert_int_equal(pl_jwt_verify(NULL, vec_jwt, len, vec_aud, vec_iat - 5, 5), PL_OK);
    /* Extremes do not overflow. */
    assert_int_equal(pl_jwt_verify(NULL, vec_jwt, len, vec_aud, INT64_MAX, INT64_MAX), PL_OK);
    assert_int_equal(pl_jwt_verify(NULL, vec_jwt, len, vec_aud, INT64_MAX, 0), PL_ERR_JWT_EXPIRED);
    assert_int_equal(pl_jwt_verify(NULL, vec_jwt, len, vec_aud, INT64_MIN, 0),
                     PL_ERR_JWT_NOT_YET_VALID);
    /* Audience is checked before time. */
    assert_int_equal(pl_jwt_verify(NULL, vec_jwt, len, "x", exp + 1, 0), PL_ERR_JWT_AUDIENCE);
}

static void test_jwt_tampered(void **state) {
    (void)state;
    size_t len = strlen(vec_jwt);
    char *t = strdup(vec_jwt);
    const char *dot1 = strchr(vec_jwt, '.'), *dot2 = strrchr(vec_jwt, '.');

    /* Signature: change one byte of the decoded signature. */
    uint8_t sig[64];
    size_t n;
    assert_int_equal(pl_base64_decode(sig, 64, &n, dot2 + 1, strlen(dot2 + 1), PL_B64_URL_NOPAD),
                     PL_OK);
    sig[0] ^= 1;
    char sig_b64[100];
    assert_int_equal(pl_base64_encode(sig_b64, sizeof sig_b64, sig, 64, PL_B64_URL_NOPAD), PL_OK);
    memcpy(t + (dot2 + 1 - vec_jwt), sig_b64, strlen(sig_b64));
    assert_int_equal(verify_now(t, vec_aud), PL_ERR_JWT_SIGNATURE);

    /* Payload: a different aud with the original signature. */
    uint8_t sk[32];
    memcpy(sk, seed, 32);
    char *forged = make_jwt(good_header, payload_with(vec_iss, ""), sk);
    char *p = strdup(forged); /* forged payload, vector signature */
    const char *fd2 = strrchr(forged, '.');
    size_t head_len = (size_t)(fd2 - forged);
    char *swap = malloc(head_len + strlen(dot2) + 1);
    memcpy(swap, forged, head_len);
    strcpy(swap + head_len, dot2);
    assert_int_equal(verify_now(swap, vec_aud), PL_OK); /* same payload: control */
    free(swap);
    free(forged);
    char changed[2048];
    snprintf(changed, sizeof changed,
             "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"%s\",\"iat\":%lld,\"exp\":%lld}", vec_iss,
             vec_sub, vec_aud, (long long)vec_iat, (long long)(vec_iat + vec_ttl + 1000000));
    forged = make_jwt(good_header, changed, sk);
    fd2 = strrchr(forged, '.');
    head_len = (size_t)(fd2 - forged);
    swap = malloc(head_len + strlen(dot2) + 1);
    memcpy(swap, forged, head_len);
    strcpy(swap + head_len, dot2);
    assert_int_equal(verify_now(swap, vec_aud), PL_ERR_JWT_SIGNATURE);
    free(swap);
    free(forged);
    free(p);

    /* Header: another accepted-looking header with the vector's signature. */
    forged = make_jwt("{\"typ\":\"JWT\",\"alg\":\"EdDSA\"}", payload_with(vec_iss, ""), sk);
    fd2 = strrchr(forged, '.');
    head_len = (size_t)(fd2 - forged);
    swap = malloc(head_len + strlen(dot2) + 1);
    memcpy(swap, forged, head_len);
    strcpy(swap + head_len, dot2);
    assert_int_equal(verify_now(swap, vec_aud), PL_ERR_JWT_SIGNATURE);
    free(swap);
    free(forged);

    /* Every character replaced by a few others: never accepted. */
    static const char repl[] = "A_-z0.=";
    for (size_t i = 0; i < len; i++) {
        for (const char *r = repl; *r; r++) {
            if (vec_jwt[i] == *r) continue;
            memcpy(t, vec_jwt, len + 1);
            t[i] = *r;
            assert_int_not_equal(verify_now(t, vec_aud), PL_OK);
        }
    }
    (void)dot1;
    free(t);
}

static void test_jwt_header_checks(void **state) {
    (void)state;
    const char *pay = payload_with(vec_iss, "");
    struct {
        const char *header;
        pl_err want;
    } cases[] = {
        {good_header, PL_OK},
        {"{\"alg\":\"none\",\"typ\":\"JWT\"}", PL_ERR_JWT_HEADER},
        {"{\"alg\":\"ES256K\",\"typ\":\"JWT\"}", PL_ERR_JWT_HEADER},
        {"{\"alg\":\"eddsa\",\"typ\":\"JWT\"}", PL_ERR_JWT_HEADER},
        {"{\"alg\":\"EdDSA\"}", PL_ERR_JWT_HEADER},
        {"{\"alg\":\"EdDSA\",\"typ\":\"JWS\"}", PL_ERR_JWT_HEADER},
        {"{\"alg\":\"EdDSA\",\"typ\":1}", PL_ERR_JWT_HEADER},
        {"{\"alg\":[\"EdDSA\"],\"typ\":\"JWT\"}", PL_ERR_JWT_HEADER},
        {"{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"crit\":[\"b64\"]}", PL_ERR_JWT_HEADER},
        {"{\"typ\":\"JWT\",\"alg\":\"EdDSA\",\"kid\":\"x\"}", PL_OK},
        {"{\"alg\":\"EdDSA\",\"alg\":\"EdDSA\",\"typ\":\"JWT\"}", PL_ERR_JWT_MALFORMED},
        {"[\"EdDSA\"]", PL_ERR_JWT_MALFORMED},
        {"{\"alg\":\"EdDSA\",\"typ\":\"JWT\"", PL_ERR_JWT_MALFORMED},
        {"\"EdDSA\"", PL_ERR_JWT_MALFORMED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *jwt = make_jwt(cases[i].header, pay, seed);
        pl_err e = verify_now(jwt, vec_aud);
        if (e != cases[i].want) fprintf(stderr, "header %s: %s\n", cases[i].header, pl_errname(e));
        assert_int_equal(e, cases[i].want);
        free(jwt);
    }
}

static void test_jwt_payload_checks(void **state) {
    (void)state;
    char p[2048];
    struct {
        const char *payload;
        pl_err want;
    } cases[] = {
        {"{\"sub\":\"s\",\"aud\":\"a\",\"iat\":1,\"exp\":2}", PL_ERR_JWT_MALFORMED},
        {"{\"iss\":5,\"sub\":\"s\",\"aud\":\"a\",\"iat\":1,\"exp\":2}", PL_ERR_JWT_MALFORMED},
        {"{\"iss\":\"did:key:zQ3s\",\"sub\":\"s\",\"aud\":\"a\",\"iat\":1,\"exp\":2}", PL_ERR_BAD_DID},
        {"{\"iss\":\"did:pkh:x\",\"sub\":\"s\",\"aud\":\"a\",\"iat\":1,\"exp\":2}", PL_ERR_BAD_DID},
        {"[1,2]", PL_ERR_JWT_MALFORMED},
        {"not json", PL_ERR_JWT_MALFORMED},
        {"", PL_ERR_JWT_MALFORMED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *jwt = make_jwt(good_header, cases[i].payload, seed);
        pl_err e = verify_now(jwt, NULL);
        if (e != cases[i].want) fprintf(stderr, "payload %s: %s\n", cases[i].payload, pl_errname(e));
        assert_int_equal(e, cases[i].want);
        free(jwt);
    }

    /* Wrong member types, one at a time, all properly signed. */
    const char *fmt[] = {
        "{\"iss\":\"%s\",\"sub\":1,\"aud\":\"a\",\"iat\":1,\"exp\":2}",
        "{\"iss\":\"%s\",\"sub\":\"s\",\"aud\":null,\"iat\":1,\"exp\":2}",
        "{\"iss\":\"%s\",\"sub\":\"s\",\"aud\":\"a\",\"iat\":\"1\",\"exp\":2}",
        "{\"iss\":\"%s\",\"sub\":\"s\",\"aud\":\"a\",\"iat\":1,\"exp\":2.5}",
        "{\"iss\":\"%s\",\"sub\":\"s\",\"aud\":\"a\",\"iat\":1}",
        "{\"iss\":\"%s\",\"sub\":\"s\",\"aud\":\"a\",\"iat\":-1,\"exp\":2}",
        "{\"iss\":\"%s\",\"sub\":\"s\",\"aud\":\"a\",\"iat\":1,\"exp\":99999999999999999999}",
        "{\"iss\":\"%s\",\"iss\":\"%s\",\"sub\":\"s\",\"aud\":\"a\",\"iat\":1,\"exp\":2}",
        "{\"iss\":\"%s\",\"sub\":\"s\\u0000x\",\"aud\":\"a\",\"iat\":1,\"exp\":2}",
    };
    for (size_t i = 0; i < sizeof fmt / sizeof fmt[0]; i++) {
        snprintf(p, sizeof p, fmt[i], vec_iss, vec_iss);
        char *jwt = make_jwt(good_header, p, seed);
        pl_err e = verify_now(jwt, NULL);
        if (e != PL_ERR_JWT_MALFORMED) fprintf(stderr, "payload %s: %s\n", p, pl_errname(e));
        assert_int_equal(e, PL_ERR_JWT_MALFORMED);
        free(jwt);
    }

    /* iss of another key than the signer: signature check fails. */
    uint8_t pub2[32], seed2[32];
    pl_ed25519_keypair(pub2, seed2);
    char did2[PL_DID_KEY_SIZE];
    assert_int_equal(pl_did_key_encode(did2, pub2), PL_OK);
    char *jwt = make_jwt(good_header, payload_with(did2, ""), seed);
    assert_int_equal(verify_now(jwt, vec_aud), PL_ERR_JWT_SIGNATURE);
    free(jwt);
    /* Extra claims are ignored. */
    jwt = make_jwt(good_header, payload_with(vec_iss, ",\"nbf\":0"), seed);
    assert_int_equal(verify_now(jwt, vec_aud), PL_OK);
    free(jwt);
}

static void test_jwt_garbage(void **state) {
    (void)state;
    const char *bad[] = {
        "",
        ".",
        "..",
        "a.b",
        "a.b.c.d",
        "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9..sig",
        ".eyJ9.sig",
        "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.eyJ9.",
        "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9=.e30.AA",
        "!!!.???.***",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(pl_jwt_verify(NULL, bad[i], strlen(bad[i]), NULL, 0, 0),
                         PL_ERR_JWT_MALFORMED);

    /* Signature part of the wrong length or padded. */
    size_t len = strlen(vec_jwt);
    char *t = malloc(len + 8);
    memcpy(t, vec_jwt, len + 1);
    assert_int_equal(pl_jwt_verify(NULL, t, len - 2, vec_aud, vec_iat, 0), PL_ERR_JWT_MALFORMED);
    strcpy(t + len, "AA");
    assert_int_equal(pl_jwt_verify(NULL, t, len + 2, vec_aud, vec_iat, 0), PL_ERR_JWT_MALFORMED);
    strcpy(t + len, "==");
    assert_int_equal(pl_jwt_verify(NULL, t, len + 2, vec_aud, vec_iat, 0), PL_ERR_JWT_MALFORMED);
    /* An embedded NUL inside the counted length. */
    memcpy(t, vec_jwt, len + 1);
    t[40] = '\0';
    assert_int_equal(pl_jwt_verify(NULL, t, len, vec_aud, vec_iat, 0), PL_ERR_JWT_MALFORMED);
    free(t);

    /* Over the bound: refused before parsing, whatever the content. */
    char *big = malloc(PL_JWT_MAX_LEN + 2);
    memset(big, 'A', PL_JWT_MAX_LEN + 1);
    big[PL_JWT_MAX_LEN + 1] = 0;
    assert_int_equal(pl_jwt_verify(NULL, big, PL_JWT_MAX_LEN + 1, NULL, 0, 0), PL_ERR_TOO_LARGE);
    memcpy(big, vec_jwt, len);
    assert_int_equal(pl_jwt_verify(NULL, big, PL_JWT_MAX_LEN + 1, NULL, 0, 0), PL_ERR_TOO_LARGE);
    assert_int_equal(pl_jwt_verify(NULL, big, PL_JWT_MAX_LEN, NULL, 0, 0), PL_ERR_JWT_MALFORMED);
    free(big);

    /* Random bytes with dots sprinkled in. */
    uint64_t s = pl_test_seed();
    char buf[512];
    for (int i = 0; i < 3000; i++) {
        size_t n = (size_t)(pl_test_rand(&s) % sizeof buf);
        for (size_t j = 0; j < n; j++) {
            uint64_t r = pl_test_rand(&s);
            buf[j] = (r % 7 == 0) ? '.' : (char)(r >> 8);
        }
        assert_int_not_equal(pl_jwt_verify(NULL, buf, n, NULL, 0, 0), PL_OK);
    }
}

/* The relay's policy: the aud must name one of the relay's public URLs
 * (normalised: case of scheme and host, default port, trailing "/", the
 * aud's query), never what the client says its Host is; the leeway. */
static void test_relay_auth_policy(void **state) {
    (void)state;
    pl__relay_audience aud;
    memset(&aud, 0, sizeof aud);
    assert_int_equal(pl__relay_audience_add(&aud, "wss://Relay.Example.org:443/"), PL_OK);
    assert_int_equal(pl__relay_audience_add(&aud, "ws://127.0.0.1:5555"), PL_OK);
    assert_int_equal(pl__relay_audience_add(&aud, "ws://127.0.0.1:5555/"), PL_OK); /* same */
    assert_int_equal(aud.n, 2);
    static const char *const good[] = {"wss://relay.example.org",   "wss://relay.example.org/",
                                       "WSS://RELAY.example.org:443", "ws://127.0.0.1:5555",
                                       "ws://127.0.0.1:5555/",        "ws://127.0.0.1:5555?projectId=x"};
    static const char *const bad[] = {"ws://relay.example.org",      "wss://relay.example.org:8443",
                                       "wss://relay.example.org/v2", "wss://127.0.0.1:5555",
                                       "ws://127.0.0.1:5556",        "http://127.0.0.1:5555",
                                       "ws://localhost:5555",        "",
                                       "ws://u@127.0.0.1:5555",      "wss://other.example.org"};
    const int64_t iat = 1700000000, ttl = 3600;
    for (size_t i = 0; i < (sizeof good / sizeof good[0]); i++) {
        char *jwt = NULL;
        assert_int_equal(pl_jwt_sign(&jwt, seed, vec_sub, good[i], iat, ttl), PL_OK);
        pl_jwt_claims cl;
        memset(&cl, 0, sizeof cl);
        assert_int_equal(pl__relay_auth_verify(&cl, jwt, strlen(jwt), &aud, iat + 10), PL_OK);
        assert_string_equal(cl.iss, vec_iss);
        /* The leeway, not more. */
        assert_int_equal(
            pl__relay_auth_verify(&cl, jwt, strlen(jwt), &aud, iat + ttl + PL__RELAY_JWT_LEEWAY_S),
            PL_OK);
        assert_int_equal(pl__relay_auth_verify(&cl, jwt, strlen(jwt), &aud,
                                               iat + ttl + PL__RELAY_JWT_LEEWAY_S + 1),
                         PL_ERR_JWT_EXPIRED);
        free(jwt);
    }
    for (size_t i = 0; i < (sizeof bad / sizeof bad[0]); i++) {
        char *jwt = NULL;
        assert_int_equal(pl_jwt_sign(&jwt, seed, vec_sub, bad[i], iat, ttl), PL_OK);
        pl_jwt_claims cl;
        assert_int_equal(pl__relay_auth_verify(&cl, jwt, strlen(jwt), &aud, iat + 10),
                         PL_ERR_JWT_AUDIENCE);
        assert_string_equal(cl.iss, "");
        free(jwt);
    }
    /* An empty audience accepts nothing. */
    pl__relay_audience none;
    memset(&none, 0, sizeof none);
    pl_jwt_claims cl;
    assert_int_equal(pl__relay_auth_verify(&cl, vec_jwt, strlen(vec_jwt), &none, vec_iat),
                     PL_ERR_JWT_AUDIENCE);

    /* Public URLs: ws or wss, a host, no user info, query or fragment. */
    static const char *const refused[] = {"http://h", "ws://", "ws:///x", "ws://u@h", "ws://h?q=1",
                                          "ws://h#f", "ws://h /", "h:80", "ws://:80"};
    for (size_t i = 0; i < (sizeof refused / sizeof refused[0]); i++)
        assert_int_equal(pl__relay_audience_add(&none, refused[i]), PL_ERR_BAD_URL);
    char longurl[PL_JWT_AUD_MAX + 8];
    memset(longurl, 'h', sizeof longurl - 1);
    memcpy(longurl, "ws://", 5);
    longurl[sizeof longurl - 1] = '\0';
    assert_int_equal(pl__relay_audience_add(&none, longurl), PL_ERR_TOO_LARGE);
    for (int i = 0; i < PL__RELAY_AUD_MAX; i++) {
        char u[64];
        snprintf(u, sizeof u, "ws://h%d", i);
        assert_int_equal(pl__relay_audience_add(&none, u), PL_OK);
    }
    assert_int_equal(pl__relay_audience_add(&none, "ws://one-more"), PL_ERR_TOO_LARGE);

    /* The default: the listening address, and on loopback or the wildcard
     * the forms local clients use. */
    pl__relay_audience d;
    memset(&d, 0, sizeof d);
    assert_int_equal(pl__relay_audience_default(&d, "127.0.0.1", 8787, false), PL_OK);
    assert_true(pl__relay_audience_match(&d, "ws://127.0.0.1:8787"));
    assert_true(pl__relay_audience_match(&d, "ws://localhost:8787/"));
    assert_false(pl__relay_audience_match(&d, "wss://127.0.0.1:8787"));
    memset(&d, 0, sizeof d);
    assert_int_equal(pl__relay_audience_default(&d, "0.0.0.0", 443, true), PL_OK);
    assert_true(pl__relay_audience_match(&d, "wss://localhost"));
    assert_false(pl__relay_audience_match(&d, "wss://0.0.0.0"));
    memset(&d, 0, sizeof d);
    assert_int_equal(pl__relay_audience_default(&d, "192.0.2.7", 8787, false), PL_OK);
    assert_int_equal(d.n, 1);
    assert_true(pl__relay_audience_match(&d, "ws://192.0.2.7:8787"));
    assert_false(pl__relay_audience_match(&d, "ws://localhost:8787"));
    assert_true(pl__relay_host_is_loopback("127.3.2.1"));
    assert_false(pl__relay_host_is_loopback("10.0.0.1"));

    assert_string_equal(pl__relay_auth_bearer("Bearer abc"), "abc");
    assert_string_equal(pl__relay_auth_bearer("bEARER x.y.z"), "x.y.z");
    assert_null(pl__relay_auth_bearer("Bearer "));
    assert_null(pl__relay_auth_bearer("Basic abc"));
    assert_null(pl__relay_auth_bearer(""));
    assert_null(pl__relay_auth_bearer(NULL));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_did_key_vector),
        cmocka_unit_test(test_did_key_rejects),
        cmocka_unit_test(test_jwt_sign_vector),
        cmocka_unit_test(test_jwt_sign_rejects),
        cmocka_unit_test(test_jwt_verify_vector),
        cmocka_unit_test(test_jwt_verify_audience),
        cmocka_unit_test(test_jwt_verify_time),
        cmocka_unit_test(test_jwt_tampered),
        cmocka_unit_test(test_jwt_header_checks),
        cmocka_unit_test(test_jwt_payload_checks),
        cmocka_unit_test(test_jwt_garbage),
        cmocka_unit_test(test_relay_auth_policy),
    };
    if (pl_init() != PL_OK) return 1;
    return cmocka_run_group_tests(tests, setup, teardown);
}
