/* SPDX-License-Identifier: Apache-2.0 */
#include "pairlink/hash.h"

#include "core/internal.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* SHA-256, HMAC-SHA256 and HKDF run on OpenSSL's libcrypto, whose SHA-256
 * uses the CPU's SHA extensions where there are some (5x libsodium's
 * portable code on the machine of docs/performance.md; the relay hashes
 * every message, Noise hashes and derives at every step). libcrypto's
 * contexts are costly to create, so each thread keeps one digest and one
 * HMAC context; every use ends by re-initialising them, which overwrites
 * the state the input left (a secret key, a DH result). If a context cannot
 * be had, libsodium computes the same bytes. */
typedef struct hash_tls {
    EVP_MD_CTX *md;
    EVP_MAC_CTX *mac;
} hash_tls;

static EVP_MD *g_sha256;
static EVP_MAC *g_hmac;
static pthread_key_t g_key;
static bool g_key_ok;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void tls_free(void *p) {
    hash_tls *t = p;
    EVP_MD_CTX_free(t->md);
    EVP_MAC_CTX_free(t->mac);
    free(t);
}

static void hash_init_once(void) {
    g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    g_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    g_key_ok = g_sha256 && g_hmac && pthread_key_create(&g_key, tls_free) == 0;
}

static const uint8_t zero_key[32];

/* This thread's contexts, or NULL (then the libsodium path is taken). */
static hash_tls *hash_ctx(void) {
    pthread_once(&g_once, hash_init_once);
    if (!g_key_ok) return NULL;
    hash_tls *t = pthread_getspecific(g_key);
    if (t) return t;
    t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->md = EVP_MD_CTX_new();
    t->mac = EVP_MAC_CTX_new(g_hmac);
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    if (!t->md || !t->mac || !EVP_MAC_CTX_set_params(t->mac, params) ||
        !EVP_DigestInit_ex2(t->md, g_sha256, NULL) ||
        !EVP_MAC_init(t->mac, zero_key, sizeof zero_key, NULL) || pthread_setspecific(g_key, t)) {
        tls_free(t);
        return NULL;
    }
    return t;
}

/* Hash of up to three parts with libcrypto; false if it failed (nothing
 * usable in out then). */
static bool sha256_ossl(uint8_t out[PL_SHA256_BYTES], const void *a, size_t a_len, const void *b,
                        size_t b_len, const void *c, size_t c_len) {
    hash_tls *t = hash_ctx();
    if (!t) return false;
    unsigned int n = 0;
    bool ok = EVP_DigestInit_ex2(t->md, NULL, NULL) && (!a_len || EVP_DigestUpdate(t->md, a, a_len)) &&
              (!b_len || EVP_DigestUpdate(t->md, b, b_len)) &&
              (!c_len || EVP_DigestUpdate(t->md, c, c_len)) && EVP_DigestFinal_ex(t->md, out, &n) &&
              n == PL_SHA256_BYTES;
    /* scrub: the state after Final still depends on the input */
    return EVP_DigestInit_ex2(t->md, NULL, NULL) && ok;
}

void pl__sha256_cat(uint8_t out[PL_SHA256_BYTES], const void *a, size_t a_len, const void *b,
                    size_t b_len, const void *c, size_t c_len) {
    PL_REQUIRE(out && (a || a_len == 0) && (b || b_len == 0) && (c || c_len == 0));
    if (sha256_ossl(out, a, a_len, b, b_len, c, c_len)) return;
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    if (a_len) crypto_hash_sha256_update(&st, a, a_len);
    if (b_len) crypto_hash_sha256_update(&st, b, b_len);
    if (c_len) crypto_hash_sha256_update(&st, c, c_len);
    crypto_hash_sha256_final(&st, out);
}

void pl_sha256(uint8_t out[PL_SHA256_BYTES], const uint8_t *in, size_t len) {
    PL_REQUIRE(out && (in || len == 0));
    pl__sha256_cat(out, in, len, NULL, 0, NULL, 0);
}

/* One HMAC on the thread's context: key NULL reuses the key of the previous
 * init (RFC 5869's expand steps all use the PRK). Up to three message
 * parts. */
static bool hmac_ossl(hash_tls *t, uint8_t out[PL_HMAC_SHA256_BYTES], const uint8_t *key,
                      size_t key_len, const void *a, size_t a_len, const void *b, size_t b_len,
                      const void *c, size_t c_len) {
    size_t n = 0;
    return EVP_MAC_init(t->mac, key, key ? key_len : 0, NULL) &&
           (!a_len || EVP_MAC_update(t->mac, a, a_len)) &&
           (!b_len || EVP_MAC_update(t->mac, b, b_len)) &&
           (!c_len || EVP_MAC_update(t->mac, c, c_len)) &&
           EVP_MAC_final(t->mac, out, &n, PL_HMAC_SHA256_BYTES) && n == PL_HMAC_SHA256_BYTES;
}

/* Overwrite the keyed state a MAC left in the context. */
static bool hmac_scrub(hash_tls *t) {
    return EVP_MAC_init(t->mac, zero_key, sizeof zero_key, NULL) == 1;
}

static void hmac_sodium(uint8_t out[PL_HMAC_SHA256_BYTES], const uint8_t *key, size_t key_len,
                        const uint8_t *msg, size_t msg_len) {
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, key_len);
    crypto_auth_hmacsha256_update(&st, msg, msg_len);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

void pl_hmac_sha256(uint8_t out[PL_HMAC_SHA256_BYTES], const uint8_t *key, size_t key_len,
                    const uint8_t *msg, size_t msg_len) {
    PL_REQUIRE(out && (key || key_len == 0) && (msg || msg_len == 0));
    static const uint8_t empty[1];
    hash_tls *t = hash_ctx();
    /* A NULL key to EVP_MAC_init means "the previous key": give it bytes. */
    if (t && hmac_ossl(t, out, key_len ? key : empty, key_len, msg, msg_len, NULL, 0, NULL, 0) &&
        hmac_scrub(t))
        return;
    hmac_sodium(out, key, key_len, msg, msg_len);
}

/* RFC 5869 composed from HMAC, on libcrypto's (false: it failed). */
static bool hkdf_ossl(uint8_t *out, size_t out_len, const uint8_t *salt, size_t salt_len,
                      const uint8_t *ikm, size_t ikm_len, const uint8_t *info, size_t info_len) {
    hash_tls *t = hash_ctx();
    if (!t) return false;
    uint8_t prk[32], blk[32];
    bool ok = hmac_ossl(t, prk, salt, salt_len, ikm, ikm_len, NULL, 0, NULL, 0);
    size_t done = 0;
    for (uint8_t counter = 1; ok && done < out_len; counter++) {
        ok = hmac_ossl(t, blk, counter == 1 ? prk : NULL, sizeof prk, blk, counter == 1 ? 0 : 32,
                       info, info_len, &counter, 1);
        size_t take = out_len - done < sizeof blk ? out_len - done : sizeof blk;
        if (ok) memcpy(out + done, blk, take);
        done += take;
    }
    ok = hmac_scrub(t) && ok;
    sodium_memzero(prk, sizeof prk);
    sodium_memzero(blk, sizeof blk);
    return ok;
}

/* libsodium 1.0.18 ships no HKDF either: the same composition on its HMAC. */
static void hkdf_sodium(uint8_t *out, size_t out_len, const uint8_t *salt, size_t salt_len,
                        const uint8_t *ikm, size_t ikm_len, const uint8_t *info, size_t info_len) {
    uint8_t prk[32];
    hmac_sodium(prk, salt, salt_len, ikm, ikm_len);
    uint8_t t[32];
    size_t t_len = 0, done = 0;
    crypto_auth_hmacsha256_state st;
    for (uint8_t counter = 1; done < out_len; counter++) {
        crypto_auth_hmacsha256_init(&st, prk, sizeof prk);
        crypto_auth_hmacsha256_update(&st, t, t_len);
        if (info_len) crypto_auth_hmacsha256_update(&st, info, info_len);
        crypto_auth_hmacsha256_update(&st, &counter, 1);
        crypto_auth_hmacsha256_final(&st, t);
        t_len = sizeof t;
        size_t take = out_len - done < t_len ? out_len - done : t_len;
        memcpy(out + done, t, take);
        done += take;
    }
    sodium_memzero(&st, sizeof st);
    sodium_memzero(prk, sizeof prk);
    sodium_memzero(t, sizeof t);
}

pl_err pl_hkdf_sha256(uint8_t *out, size_t out_len, const uint8_t *salt, size_t salt_len,
                      const uint8_t *ikm, size_t ikm_len, const uint8_t *info, size_t info_len) {
    PL_REQUIRE(out && (salt || salt_len == 0) && (ikm || ikm_len == 0) && (info || info_len == 0));
    if (out_len == 0 || out_len > PL_HKDF_SHA256_MAX_OUT) return PL_ERR_BAD_LENGTH;
    static const uint8_t zero_salt[32];
    if (salt_len == 0) {
        salt = zero_salt;
        salt_len = sizeof zero_salt;
    }
    if (!hkdf_ossl(out, out_len, salt, salt_len, ikm, ikm_len, info, info_len))
        hkdf_sodium(out, out_len, salt, salt_len, ikm, ikm_len, info, info_len);
    return PL_OK;
}

/* For tests: the libsodium paths, which the libcrypto ones must equal. */
void pl__sha256_sodium(uint8_t out[PL_SHA256_BYTES], const uint8_t *in, size_t len) {
    crypto_hash_sha256(out, in, len);
}

void pl__hmac_sha256_sodium(uint8_t out[PL_HMAC_SHA256_BYTES], const uint8_t *key, size_t key_len,
                            const uint8_t *msg, size_t msg_len) {
    hmac_sodium(out, key, key_len, msg, msg_len);
}

void pl__hkdf_sha256_sodium(uint8_t *out, size_t out_len, const uint8_t *salt, size_t salt_len,
                            const uint8_t *ikm, size_t ikm_len, const uint8_t *info,
                            size_t info_len) {
    static const uint8_t zero_salt[32];
    if (salt_len == 0) {
        salt = zero_salt;
        salt_len = sizeof zero_salt;
    }
    hkdf_sodium(out, out_len, salt, salt_len, ikm, ikm_len, info, info_len);
}

void pl_random(uint8_t *buf, size_t len) {
    PL_REQUIRE(buf || len == 0);
    randombytes_buf(buf, len);
}

void pl__rng(pl_rng_fn rng, void *ctx, uint8_t *buf, size_t len) {
    if (rng) rng(ctx, buf, len);
    else pl_random(buf, len);
}

int pl_ct_equal(const uint8_t *a, const uint8_t *b, size_t len) {
    PL_REQUIRE((a && b) || len == 0);
    return sodium_memcmp(a, b, len) == 0;
}

void pl_wipe(void *buf, size_t len) {
    if (buf) sodium_memzero(buf, len);
}
