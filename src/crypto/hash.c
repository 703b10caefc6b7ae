#include "pairlink/hash.h"

#include "core/internal.h"

#include <sodium.h>
#include <string.h>

void pl_sha256(uint8_t out[PL_SHA256_BYTES], const uint8_t *in, size_t len) {
    PL_REQUIRE(out && (in || len == 0));
    crypto_hash_sha256(out, in, len);
}

void pl_hmac_sha256(uint8_t out[PL_HMAC_SHA256_BYTES], const uint8_t *key, size_t key_len,
                    const uint8_t *msg, size_t msg_len) {
    PL_REQUIRE(out && (key || key_len == 0) && (msg || msg_len == 0));
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, key_len);
    crypto_auth_hmacsha256_update(&st, msg, msg_len);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

/* libsodium 1.0.18 ships no HKDF, so RFC 5869 is composed from its HMAC. */
pl_err pl_hkdf_sha256(uint8_t *out, size_t out_len, const uint8_t *salt, size_t salt_len,
                      const uint8_t *ikm, size_t ikm_len, const uint8_t *info, size_t info_len) {
    PL_REQUIRE(out && (salt || salt_len == 0) && (ikm || ikm_len == 0) && (info || info_len == 0));
    if (out_len == 0 || out_len > PL_HKDF_SHA256_MAX_OUT) return PL_ERR_BAD_LENGTH;

    static const uint8_t zero_salt[32];
    uint8_t prk[32];
    if (salt_len == 0) {
        salt = zero_salt;
        salt_len = sizeof zero_salt;
    }
    pl_hmac_sha256(prk, salt, salt_len, ikm, ikm_len);

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
    return PL_OK;
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
