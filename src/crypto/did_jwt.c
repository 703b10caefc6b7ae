/* SPDX-License-Identifier: Apache-2.0 */
/* Ed25519 identities, did:key and the WalletConnect relay-auth JWT. */
#include "pairlink/codec.h"
#include "pairlink/crypto.h"

#include "core/internal.h"

#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* ---- Ed25519 -------------------------------------------------------------- */

/* libsodium signs with seed||pub; rebuild it for each call and wipe it. */
static void expand_seed(uint8_t sk[crypto_sign_SECRETKEYBYTES], uint8_t pub[PL_ED25519_PUB_BYTES],
                        const uint8_t seed[PL_ED25519_SEED_BYTES]) {
    crypto_sign_seed_keypair(pub, sk, seed);
}

void pl_ed25519_keypair(uint8_t pub[PL_ED25519_PUB_BYTES], uint8_t seed[PL_ED25519_SEED_BYTES]) {
    PL_REQUIRE(pub && seed);
    randombytes_buf(seed, PL_ED25519_SEED_BYTES);
    pl_ed25519_public(pub, seed);
}

void pl_ed25519_public(uint8_t pub[PL_ED25519_PUB_BYTES], const uint8_t seed[PL_ED25519_SEED_BYTES]) {
    PL_REQUIRE(pub && seed);
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    expand_seed(sk, pub, seed);
    sodium_memzero(sk, sizeof sk);
}

void pl_ed25519_sign(uint8_t sig[PL_ED25519_SIG_BYTES], const uint8_t seed[PL_ED25519_SEED_BYTES],
                     const uint8_t *msg, size_t len) {
    PL_REQUIRE(sig && seed && (msg || len == 0));
    uint8_t sk[crypto_sign_SECRETKEYBYTES], pub[PL_ED25519_PUB_BYTES];
    expand_seed(sk, pub, seed);
    crypto_sign_detached(sig, NULL, msg, len, sk);
    sodium_memzero(sk, sizeof sk);
}

pl_err pl_ed25519_verify(const uint8_t sig[PL_ED25519_SIG_BYTES],
                         const uint8_t pub[PL_ED25519_PUB_BYTES], const uint8_t *msg, size_t len) {
    PL_REQUIRE(sig && pub && (msg || len == 0));
    /* libsodium 1.0.18 also rejects small-order keys and non-canonical S. */
    return crypto_sign_verify_detached(sig, msg, len, pub) == 0 ? PL_OK : PL_ERR_BAD_SIGNATURE;
}

/* ---- did:key -------------------------------------------------------------- */

static const char did_prefix[] = "did:key:z"; /* 'z' = multibase base58btc */
#define DID_PREFIX_LEN (sizeof did_prefix - 1)
static const uint8_t ed25519_multicodec[2] = {0xed, 0x01}; /* varint 0xed */

pl_err pl_did_key_encode(char out[PL_DID_KEY_SIZE], const uint8_t pub[PL_ED25519_PUB_BYTES]) {
    PL_REQUIRE(out && pub);
    uint8_t buf[sizeof ed25519_multicodec + PL_ED25519_PUB_BYTES];
    memcpy(buf, ed25519_multicodec, sizeof ed25519_multicodec);
    memcpy(buf + sizeof ed25519_multicodec, pub, PL_ED25519_PUB_BYTES);
    memcpy(out, did_prefix, DID_PREFIX_LEN);
    pl_err e = pl_base58btc_encode(out + DID_PREFIX_LEN, PL_DID_KEY_SIZE - DID_PREFIX_LEN, buf,
                                   sizeof buf);
    if (e != PL_OK) out[0] = '\0';
    return e;
}

pl_err pl_did_key_decode(uint8_t pub[PL_ED25519_PUB_BYTES], const char *did, size_t len) {
    PL_REQUIRE(pub && (did || len == 0));
    memset(pub, 0, PL_ED25519_PUB_BYTES);
    if (len <= DID_PREFIX_LEN || len >= PL_DID_KEY_SIZE) return PL_ERR_BAD_DID;
    if (memcmp(did, did_prefix, DID_PREFIX_LEN) != 0) return PL_ERR_BAD_DID;
    uint8_t buf[sizeof ed25519_multicodec + PL_ED25519_PUB_BYTES];
    size_t n = 0;
    if (pl_base58btc_decode(buf, sizeof buf, &n, did + DID_PREFIX_LEN, len - DID_PREFIX_LEN) !=
            PL_OK ||
        n != sizeof buf || memcmp(buf, ed25519_multicodec, sizeof ed25519_multicodec) != 0)
        return PL_ERR_BAD_DID;
    memcpy(pub, buf + sizeof ed25519_multicodec, PL_ED25519_PUB_BYTES);
    return PL_OK;
}

/* ---- relay-auth JWT ------------------------------------------------------- */

static const char jwt_header_json[] = "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}";
/* JS numbers are doubles: keep times where both sides agree exactly. */
#define JSON_SAFE_INT_MAX ((int64_t)9007199254740991)
#define SIG_B64_LEN 86 /* 64 bytes, base64url unpadded */

/* Append base64url-unpadded `in` at out[*pos]; cap is checked by the caller's
 * sizing, so a failure here is internal. */
static pl_err put_b64url(char *out, size_t cap, size_t *pos, const uint8_t *in, size_t len) {
    PL_TRY(pl_base64_encode(out + *pos, cap - *pos, in, len, PL_B64_URL_NOPAD));
    *pos += strlen(out + *pos);
    return PL_OK;
}

pl_err pl_jwt_sign(char **out_jwt, const uint8_t seed[PL_ED25519_SEED_BYTES], const char *sub,
                   const char *aud, int64_t iat, int64_t ttl) {
    PL_REQUIRE(out_jwt && seed && sub && aud);
    *out_jwt = NULL;
    if (strnlen(sub, sizeof(((pl_jwt_claims *)0)->sub)) >= sizeof(((pl_jwt_claims *)0)->sub) ||
        strnlen(aud, PL_JWT_AUD_MAX) >= PL_JWT_AUD_MAX)
        return PL_ERR_TOO_LARGE;
    if (iat < 0 || ttl <= 0 || iat > JSON_SAFE_INT_MAX - ttl) return PL_ERR_INVALID_ARG;

    uint8_t pub[PL_ED25519_PUB_BYTES];
    char iss[PL_DID_KEY_SIZE];
    pl_ed25519_public(pub, seed);
    PL_TRY(pl_did_key_encode(iss, pub));

    /* Insertion order is the wire order (iss, sub, aud, iat, exp), matching
     * the JS SDK byte for byte. json_string refuses invalid UTF-8. */
    json_t *obj = json_object();
    if (!obj) return PL_ERR_NOMEM;
    static const char *const keys[5] = {"iss", "sub", "aud", "iat", "exp"};
    json_t *vals[5] = {json_string(iss), json_string(sub), json_string(aud), json_integer(iat),
                       json_integer(iat + ttl)};
    pl_err e = PL_OK;
    for (int i = 1; i <= 2 && e == PL_OK; i++) {
        if (vals[i]) continue;
        /* NULL is invalid UTF-8 or no memory: the unchecked variant tells. */
        json_t *raw = json_string_nocheck(i == 1 ? sub : aud);
        e = raw ? PL_ERR_BAD_UTF8 : PL_ERR_NOMEM;
        json_decref(raw);
    }
    for (int i = 0; i < 5; i++) {
        if (e == PL_OK && !vals[i]) e = PL_ERR_NOMEM;
        /* set_new takes the reference even when it fails. */
        if (e == PL_OK) {
            if (json_object_set_new(obj, keys[i], vals[i]) != 0) e = PL_ERR_NOMEM;
        } else {
            json_decref(vals[i]);
        }
    }
    char *payload = e == PL_OK ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(obj);
    if (e != PL_OK) return e;
    if (!payload) return PL_ERR_NOMEM;

    size_t plen = strlen(payload);
    size_t cap = pl_base64_encoded_size(sizeof jwt_header_json - 1, PL_B64_URL_NOPAD) +
                 pl_base64_encoded_size(plen, PL_B64_URL_NOPAD) + SIG_B64_LEN + 2;
    char *jwt = malloc(cap);
    if (!jwt) {
        free(payload);
        return PL_ERR_NOMEM;
    }
    size_t pos = 0;
    e = put_b64url(jwt, cap, &pos, (const uint8_t *)jwt_header_json, sizeof jwt_header_json - 1);
    if (e == PL_OK) {
        jwt[pos++] = '.';
        e = put_b64url(jwt, cap, &pos, (const uint8_t *)payload, plen);
    }
    free(payload);
    if (e == PL_OK) {
        uint8_t sig[PL_ED25519_SIG_BYTES];
        pl_ed25519_sign(sig, seed, (const uint8_t *)jwt, pos);
        jwt[pos++] = '.';
        e = put_b64url(jwt, cap, &pos, sig, sizeof sig);
    }
    /* Never hand out a token that pl_jwt_verify would refuse unread. */
    if (e == PL_OK && pos > PL_JWT_MAX_LEN) e = PL_ERR_TOO_LARGE;
    if (e != PL_OK) {
        free(jwt);
        return e == PL_ERR_BUFFER_TOO_SMALL ? PL_ERR_INTERNAL : e;
    }
    *out_jwt = jwt;
    return PL_OK;
}

/* Decode one base64url part and parse it as a JSON object. */
static json_t *decode_part(const char *b64, size_t len) {
    uint8_t buf[PL_JWT_MAX_LEN];
    size_t n = 0;
    if (pl_base64_decode(buf, sizeof buf, &n, b64, len, PL_B64_URL_NOPAD) != PL_OK) return NULL;
    json_error_t err;
    json_t *j = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, &err);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* A string member without embedded NULs that fits `cap` with its NUL. */
static const char *get_str(json_t *obj, const char *key, size_t cap) {
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v)) return NULL;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n >= cap || strlen(s) != n) return NULL;
    return s;
}

static int str_is(json_t *obj, const char *key, const char *want) {
    const char *s = get_str(obj, key, 64);
    return s && strcmp(s, want) == 0;
}

static int get_time(json_t *obj, const char *key, int64_t *out) {
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v)) return 0;
    json_int_t t = json_integer_value(v);
    if (t < 0 || t > JSON_SAFE_INT_MAX) return 0;
    *out = (int64_t)t;
    return 1;
}

pl_err pl_jwt_verify(pl_jwt_claims *claims, const char *jwt, size_t len, const char *expected_aud,
                     int64_t now, int64_t leeway) {
    PL_REQUIRE((jwt || len == 0) && leeway >= 0);
    if (claims) memset(claims, 0, sizeof *claims);
    if (len > PL_JWT_MAX_LEN) return PL_ERR_TOO_LARGE;

    const char *dot1 = len ? memchr(jwt, '.', len) : NULL;
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - jwt)) : NULL;
    if (!dot2) return PL_ERR_JWT_MALFORMED;
    const char *sig_b64 = dot2 + 1;
    size_t hlen = (size_t)(dot1 - jwt), plen = (size_t)(dot2 - dot1 - 1),
           slen = len - (size_t)(sig_b64 - jwt);
    if (hlen == 0 || plen == 0 || slen == 0 || memchr(sig_b64, '.', slen))
        return PL_ERR_JWT_MALFORMED;

    json_t *header = decode_part(jwt, hlen);
    if (!header) return PL_ERR_JWT_MALFORMED;
    /* Only what the relay protocol defines; "crit" would demand extensions
     * this verifier does not implement. */
    pl_err e = str_is(header, "alg", "EdDSA") && str_is(header, "typ", "JWT") &&
                       !json_object_get(header, "crit")
                   ? PL_OK
                   : PL_ERR_JWT_HEADER;
    json_decref(header);
    if (e != PL_OK) return e;

    json_t *payload = decode_part(dot1 + 1, plen);
    if (!payload) return PL_ERR_JWT_MALFORMED;
    pl_jwt_claims c;
    memset(&c, 0, sizeof c);
    json_t *jiss = json_object_get(payload, "iss");
    const char *iss = get_str(payload, "iss", sizeof c.iss);
    const char *sub = get_str(payload, "sub", sizeof c.sub);
    const char *aud = get_str(payload, "aud", sizeof c.aud);
    if (!json_is_string(jiss) || !sub || !aud || !get_time(payload, "iat", &c.iat) ||
        !get_time(payload, "exp", &c.exp)) {
        e = PL_ERR_JWT_MALFORMED;
    } else if (!iss) {
        e = PL_ERR_BAD_DID; /* a string, but too long or with a NUL */
    } else {
        memcpy(c.iss, iss, strlen(iss) + 1);
        memcpy(c.sub, sub, strlen(sub) + 1);
        memcpy(c.aud, aud, strlen(aud) + 1);
        e = pl_did_key_decode(c.pub, c.iss, strlen(c.iss));
    }
    json_decref(payload);
    if (e != PL_OK) return e;

    uint8_t sig[PL_ED25519_SIG_BYTES];
    size_t n = 0;
    if (pl_base64_decode(sig, sizeof sig, &n, sig_b64, slen, PL_B64_URL_NOPAD) != PL_OK ||
        n != sizeof sig)
        return PL_ERR_JWT_MALFORMED;
    if (pl_ed25519_verify(sig, c.pub, (const uint8_t *)jwt, (size_t)(dot2 - jwt)) != PL_OK)
        return PL_ERR_JWT_SIGNATURE;

    if (expected_aud && strcmp(expected_aud, c.aud) != 0) return PL_ERR_JWT_AUDIENCE;
    /* Written to avoid signed overflow for any now/leeway. */
    if (c.exp <= INT64_MAX - leeway && now > c.exp + leeway) return PL_ERR_JWT_EXPIRED;
    if (now <= INT64_MAX - leeway && c.iat > now + leeway) return PL_ERR_JWT_NOT_YET_VALID;

    if (claims) *claims = c;
    return PL_OK;
}
