/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the relay-auth JWT verifier (pl_jwt_verify).
 *
 * Input: a token as a relay receives it. The audience, clock and leeway are
 * fixed (the vectors' aud; an hour after the vectors' iat). Two passes:
 *  1. the input as it is. The fuzzer cannot forge Ed25519, so past the
 *     signature only the seeds get through;
 *  2. the input with its third part replaced by a valid signature over its
 *     first two parts, made with the vectors' Ed25519 seed (a signing
 *     oracle), so that the header/payload checks, the audience and the time
 *     checks see fuzzed claims signed by a key the verifier will accept when
 *     iss names it.
 * Checks, besides "no crash, no leak, no UB": errors are named JWT errors;
 * claims are zeroed on failure; on success the claims are within the
 * contract (aud matches, now within [iat - leeway, exp + leeway], iss
 * decodes to claims.pub, strings NUL-terminated); verifying without an
 * expected aud gives the same result except that an audience failure
 * passes; in pass 1 a token of the vectors' key that verifies is exactly
 * what pl_jwt_sign writes for its claims (the seeds are all pl_jwt_sign
 * output, so any other accepted text would be a malleable signature or
 * encoding); in pass 2 our good signature is refused only when iss (read
 * with jansson independently) names another key. */
#include "pairlink/codec.h"
#include "pairlink/crypto.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* From the vectors: relay_auth_jwt.ed25519_seed, aud and iat. */
static const char seed_hex[] = "58e0254c211b858ef7896b00e3f36beeb13d568d47c6031c4218b87718061295";
#define AUD "wss://relay.walletconnect.com"
#define NOW (1656910097 + 3600)
#define LEEWAY 60
static uint8_t seed[32], pub[32];

static void check(bool cond) {
    if (!cond) abort();
}

static bool zero(const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return false;
    return true;
}

static bool jwt_error(pl_err e) {
    switch (e) {
    case PL_ERR_TOO_LARGE:
    case PL_ERR_BAD_DID:
    case PL_ERR_JWT_MALFORMED:
    case PL_ERR_JWT_HEADER:
    case PL_ERR_JWT_SIGNATURE:
    case PL_ERR_JWT_AUDIENCE:
    case PL_ERR_JWT_EXPIRED:
    case PL_ERR_JWT_NOT_YET_VALID:
        return true;
    default:
        return false;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    check(pl_init() == PL_OK);
    check(pl_hex_decode_exact(seed, 32, seed_hex, 64) == PL_OK);
    pl_ed25519_public(pub, seed);
    return 0;
}

static bool terminated(const char *s, size_t cap) {
    return memchr(s, '\0', cap) != NULL;
}

/* Verify, check the contract, return the result. */
static pl_err verify(const char *jwt, size_t len) {
    pl_jwt_claims c;
    memset(&c, 0xAA, sizeof c);
    pl_err e = pl_jwt_verify(&c, jwt, len, AUD, NOW, LEEWAY);
    if (e != PL_OK) {
        check(jwt_error(e) && zero(&c, sizeof c));
        /* Only the audience check depends on expected_aud; the time
         * checks come after it. */
        pl_err e2 = pl_jwt_verify(NULL, jwt, len, NULL, NOW, LEEWAY);
        if (e == PL_ERR_JWT_AUDIENCE)
            check(e2 == PL_OK || e2 == PL_ERR_JWT_EXPIRED || e2 == PL_ERR_JWT_NOT_YET_VALID);
        else
            check(e2 == e);
        return e;
    }
    check(terminated(c.iss, sizeof c.iss) && terminated(c.sub, sizeof c.sub) &&
          terminated(c.aud, sizeof c.aud));
    check(strcmp(c.aud, AUD) == 0);
    check(c.iat >= 0 && c.exp >= 0 && c.iat <= NOW + LEEWAY && NOW <= c.exp + LEEWAY);
    uint8_t p[32];
    check(pl_did_key_decode(p, c.iss, strlen(c.iss)) == PL_OK && memcmp(p, c.pub, 32) == 0);
    pl_jwt_claims c2;
    check(pl_jwt_verify(&c2, jwt, len, NULL, NOW, LEEWAY) == PL_OK);
    check(memcmp(&c, &c2, sizeof c) == 0);

    return PL_OK;
}

/* Whether the payload part's iss is the did:key of our seed (read here
 * independently of the verifier). */
static bool iss_is_ours(const char *b64, size_t len) {
    uint8_t buf[PL_JWT_MAX_LEN];
    size_t n = 0;
    if (pl_base64_decode(buf, sizeof buf, &n, b64, len, PL_B64_URL_NOPAD) != PL_OK) return false;
    json_t *j = json_loadb((const char *)buf, n, 0, NULL);
    json_t *iss = json_object_get(j, "iss");
    uint8_t p[32];
    bool ours = json_is_string(iss) &&
                pl_did_key_decode(p, json_string_value(iss), json_string_length(iss)) == PL_OK &&
                memcmp(p, pub, 32) == 0;
    json_decref(j);
    return ours;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data;
    pl_err e = verify(s, size);
    if (e == PL_OK) {
        /* Only seeds get here: they were written by pl_jwt_sign with the
         * vectors' key, so re-signing their claims gives them back. */
        pl_jwt_claims c;
        check(pl_jwt_verify(&c, s, size, AUD, NOW, LEEWAY) == PL_OK);
        if (memcmp(c.pub, pub, 32) == 0) {
            char *canon = NULL;
            check(c.exp > c.iat &&
                  pl_jwt_sign(&canon, seed, c.sub, c.aud, c.iat, c.exp - c.iat) == PL_OK);
            check(strlen(canon) == size && memcmp(canon, s, size) == 0);
            pl_free(canon);
        }
    }

    /* The oracle pass: header.payload + a good signature by our key. */
    const char *dot1 = size ? memchr(s, '.', size) : NULL;
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', size - (size_t)(dot1 + 1 - s)) : NULL;
    if (!dot2) return 0;
    size_t signed_len = (size_t)(dot2 - s);
    if (signed_len + 1 + 86 > PL_JWT_MAX_LEN) return 0;
    char buf[PL_JWT_MAX_LEN + 1];
    memcpy(buf, s, signed_len + 1);
    uint8_t sig[64];
    pl_ed25519_sign(sig, seed, (const uint8_t *)s, signed_len);
    check(pl_base64_encode(buf + signed_len + 1, sizeof buf - signed_len - 1, sig, sizeof sig,
                           PL_B64_URL_NOPAD) == PL_OK);
    size_t len = signed_len + 1 + 86;
    e = verify(buf, len);
    /* Our signature fails only when iss names another key. */
    if (e == PL_ERR_JWT_SIGNATURE) check(!iss_is_ours(dot1 + 1, signed_len - (size_t)(dot1 + 1 - s)));
    return 0;
}
