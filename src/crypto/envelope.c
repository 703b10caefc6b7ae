/* SPDX-License-Identifier: Apache-2.0 */
/* WalletConnect type 0/1/2 envelopes (ChaCha20-Poly1305 IETF, no AAD). */
#include "pairlink/codec.h"
#include "pairlink/crypto.h"

#include "core/internal.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define TYPE1_PUB_BYTES PL_X25519_BYTES
#define MIN_TYPE0 (1 + PL_IV_BYTES + PL_TAG_BYTES)
#define MIN_TYPE1 (1 + TYPE1_PUB_BYTES + PL_IV_BYTES + PL_TAG_BYTES)
/* The largest raw envelope any type may legally have. */
#define RAW_MAX ((size_t)MIN_TYPE1 + PL_ENVELOPE_MAX_MESSAGE)

/* Checked at build time: the AEAD we call is the one the wire format names. */
_Static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == PL_IV_BYTES, "iv size");
_Static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES == PL_TAG_BYTES, "tag size");
_Static_assert(crypto_aead_chacha20poly1305_ietf_KEYBYTES == PL_SYMKEY_BYTES, "key size");

/* X25519 ignores bit 255 and reduces u mod p = 2^255 - 19, so several
 * encodings name one key: a relay could rewrite the sender key of a type 1
 * envelope without breaking its tag, giving one message two wire forms
 * (defeating de-duplication on the message text). Honest senders, the JS
 * SDK included, only emit the canonical form u < p. Public data: no need
 * for constant time. */
static int x25519_canonical(const uint8_t u[PL_X25519_BYTES]) {
    if (u[31] & 0x80) return 0;
    if (u[31] != 0x7f) return 1;
    for (int i = 30; i > 0; i--)
        if (u[i] != 0xff) return 1;
    return u[0] < 0xed;
}

/* Size of the raw envelope of a msg_len-byte message, or 0 if the
 * parameters are refused (*err says why). */
static size_t raw_size(const pl_envelope_params *params, const uint8_t *key, size_t msg_len,
                       pl_err *err) {
    int type = params->type;
    *err = PL_OK;
    if (type != 0 && type != 1 && type != 2) {
        *err = PL_ERR_ENVELOPE_TYPE;
        return 0;
    }
    if (msg_len > PL_ENVELOPE_MAX_MESSAGE) {
        *err = PL_ERR_TOO_LARGE;
        return 0;
    }
    PL_REQUIRE(type == 2 || key);
    PL_REQUIRE(type != 1 || params->sender_pub);
    return type == 2 ? 1 + msg_len : (type == 0 ? MIN_TYPE0 : MIN_TYPE1) + msg_len;
}

/* Write the raw envelope (raw_size bytes) into raw. */
static void seal_into(uint8_t *raw, const uint8_t *key, const uint8_t *msg, size_t msg_len,
                      const pl_envelope_params *params) {
    int type = params->type;
    raw[0] = (uint8_t)type;
    if (type == 2) {
        if (msg_len) memcpy(raw + 1, msg, msg_len);
        return;
    }
    size_t off = 1;
    if (type == 1) {
        memcpy(raw + off, params->sender_pub, TYPE1_PUB_BYTES);
        off += TYPE1_PUB_BYTES;
    }
    uint8_t *iv = raw + off;
    if (params->iv) memcpy(iv, params->iv, PL_IV_BYTES);
    else randombytes_buf(iv, PL_IV_BYTES);
    unsigned long long clen = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(iv + PL_IV_BYTES, &clen, msg, msg_len, NULL, 0, NULL,
                                              iv, key);
}

pl_err pl_envelope_seal_raw(uint8_t **out, size_t *out_len, const uint8_t *key, const uint8_t *msg,
                            size_t msg_len, const pl_envelope_params *params) {
    PL_REQUIRE(out && out_len && params && (msg || msg_len == 0));
    *out = NULL;
    *out_len = 0;
    pl_err e;
    size_t raw_len = raw_size(params, key, msg_len, &e);
    if (e != PL_OK) return e;
    uint8_t *raw = malloc(raw_len);
    if (!raw) return PL_ERR_NOMEM;
    seal_into(raw, key, msg, msg_len, params);
    *out = raw;
    *out_len = raw_len;
    return PL_OK;
}

pl_err pl_envelope_seal(char **out_b64, const uint8_t *key, const uint8_t *msg, size_t msg_len,
                        const pl_envelope_params *params) {
    PL_REQUIRE(out_b64 && params && (msg || msg_len == 0));
    *out_b64 = NULL;
    pl_err e;
    size_t raw_len = raw_size(params, key, msg_len, &e);
    if (e != PL_OK) return e;
    /* One buffer: the raw envelope is sealed into its tail and encoded in
     * place toward its start (pl__base64_encode_public_tail). The text is
     * public, except for type 2, which is plaintext by definition. */
    size_t cap = pl_base64_encoded_size(raw_len, PL_B64_STD);
    char *b64 = malloc(cap);
    if (!b64) return PL_ERR_NOMEM;
    seal_into((uint8_t *)b64 + (cap - raw_len), key, msg, msg_len, params);
    pl__base64_encode_public_tail(b64, raw_len, PL_B64_STD);
    *out_b64 = b64;
    return PL_OK;
}

/* Check the outer layout of raw envelope bytes and fill info. */
static pl_err check_outer(pl_envelope_info *info, const uint8_t *buf, size_t n) {
    memset(info, 0, sizeof *info);
    if (n == 0) return PL_ERR_BAD_ENVELOPE;
    switch (buf[0]) {
    case 0:
        if (n < MIN_TYPE0) return PL_ERR_BAD_ENVELOPE;
        if (n - MIN_TYPE0 > PL_ENVELOPE_MAX_MESSAGE) return PL_ERR_TOO_LARGE;
        break;
    case 1:
        if (n < MIN_TYPE1) return PL_ERR_BAD_ENVELOPE;
        if (n - MIN_TYPE1 > PL_ENVELOPE_MAX_MESSAGE) return PL_ERR_TOO_LARGE;
        if (!x25519_canonical(buf + 1)) return PL_ERR_BAD_ENVELOPE;
        memcpy(info->sender_pub, buf + 1, TYPE1_PUB_BYTES);
        break;
    case 2:
        if (n - 1 > PL_ENVELOPE_MAX_MESSAGE) return PL_ERR_TOO_LARGE;
        break;
    default:
        return PL_ERR_ENVELOPE_TYPE;
    }
    info->type = buf[0];
    return PL_OK;
}

/* Base64-decode and check the outer layout. On success *raw (to free())
 * holds *raw_len bytes in a buffer of *raw_cap, and info is filled. The
 * bytes are public: nothing to wipe. */
static pl_err decode_outer(uint8_t **raw, size_t *raw_cap, size_t *raw_len, pl_envelope_info *info,
                           const char *b64, size_t b64_len) {
    *raw = NULL;
    *raw_cap = *raw_len = 0;
    memset(info, 0, sizeof *info);
    if (b64_len > pl_base64_encoded_size(RAW_MAX, PL_B64_STD) - 1) return PL_ERR_TOO_LARGE;

    size_t cap = b64_len / 4 * 3 + 3;
    uint8_t *buf = malloc(cap);
    if (!buf) return PL_ERR_NOMEM;
    size_t n = 0;
    /* Ciphertext is public: the variable-time decoder is several times faster. */
    pl_err e = pl_base64_decode_public(buf, cap, &n, b64, b64_len, PL_B64_STD);
    if (e == PL_OK) e = check_outer(info, buf, n);
    if (e != PL_OK) {
        memset(info, 0, sizeof *info);
        free(buf);
        return e;
    }
    *raw = buf;
    *raw_cap = cap;
    *raw_len = n;
    return PL_OK;
}

/* Authenticate and decrypt (types 0/1) or copy (type 2) the body. Nothing
 * reaches *out_msg unless the tag verified. */
static pl_err open_body(uint8_t **out_msg, size_t *out_len, const uint8_t *raw, size_t raw_len,
                        const uint8_t *key) {
    if (raw[0] == 2) {
        size_t n = raw_len - 1;
        uint8_t *m = malloc(n + 1);
        if (!m) return PL_ERR_NOMEM;
        if (n) memcpy(m, raw + 1, n);
        m[n] = 0;
        *out_msg = m;
        *out_len = n;
        return PL_OK;
    }
    size_t off = raw[0] == 1 ? 1 + TYPE1_PUB_BYTES : 1;
    const uint8_t *iv = raw + off;
    const uint8_t *ct = iv + PL_IV_BYTES;
    size_t ct_len = raw_len - off - PL_IV_BYTES; /* >= PL_TAG_BYTES, checked by check_outer */
    size_t m_cap = ct_len - PL_TAG_BYTES + 1;
    uint8_t *m = malloc(m_cap);
    if (!m) return PL_ERR_NOMEM;
    unsigned long long mlen = 0;
    if (crypto_aead_chacha20poly1305_ietf_decrypt(m, &mlen, NULL, ct, ct_len, NULL, 0, iv, key) !=
        0) {
        free(m); /* libsodium wrote nothing but zeros into it */
        return PL_ERR_DECRYPT;
    }
    m[mlen] = 0;
    *out_msg = m;
    *out_len = (size_t)mlen;
    return PL_OK;
}

/* open_body on a buffer that the caller owns (cap bytes, from
 * decode_outer): types 0/1 are decrypted in place and the plaintext moved
 * to the start, so that the buffer itself becomes *out_msg, one allocation
 * for the whole open. On success the buffer is taken; on failure it is
 * still the caller's, and holds no plaintext (the tag is checked before
 * anything is decrypted). */
static pl_err open_body_in_place(uint8_t **out_msg, size_t *out_len, uint8_t *raw, size_t raw_len,
                                 size_t cap, const uint8_t *key) {
    size_t off = raw[0] == 1 ? 1 + TYPE1_PUB_BYTES : 1;
    if (raw[0] != 2) {
        uint8_t iv[PL_IV_BYTES];
        memcpy(iv, raw + off, PL_IV_BYTES);
        off += PL_IV_BYTES;
        size_t mlen = raw_len - off - PL_TAG_BYTES; /* checked by check_outer */
        /* libsodium's AEAD works in place when m == c. */
        if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(
                raw + off, NULL, raw + off, mlen, raw + off + mlen, NULL, 0, iv, key) != 0)
            return PL_ERR_DECRYPT;
        raw_len = off + mlen;
    }
    size_t n = raw_len - off;
    memmove(raw, raw + off, n);
    PL_REQUIRE(n < cap);
    raw[n] = 0;
    *out_msg = raw;
    *out_len = n;
    return PL_OK;
}

pl_err pl_envelope_peek(pl_envelope_info *info, const char *b64, size_t b64_len) {
    PL_REQUIRE(info && (b64 || b64_len == 0));
    uint8_t *raw;
    size_t cap, n;
    pl_err e = decode_outer(&raw, &cap, &n, info, b64, b64_len);
    if (e == PL_OK) free(raw);
    return e;
}

pl_err pl_envelope_peek_raw(pl_envelope_info *info, const uint8_t *env, size_t env_len) {
    PL_REQUIRE(info && (env || env_len == 0));
    return check_outer(info, env, env_len);
}

/* The key rule of pl_envelope_open on checked raw bytes. */
static pl_err open_checked(uint8_t **out_msg, size_t *out_len, pl_envelope_info *info,
                           const pl_envelope_info *tmp, const uint8_t *key, const uint8_t *raw,
                           size_t n) {
    /* A caller holding a key expects authenticated data: accepting type 2
     * there would let anyone strip the encryption off a message. */
    pl_err e = (tmp->type == 2) == (key == NULL) ? open_body(out_msg, out_len, raw, n, key)
                                                 : PL_ERR_ENVELOPE_TYPE;
    if (e == PL_OK && info) *info = *tmp;
    return e;
}

pl_err pl_envelope_open_raw(uint8_t **out_msg, size_t *out_len, pl_envelope_info *info,
                            const uint8_t *key, const uint8_t *env, size_t env_len) {
    PL_REQUIRE(out_msg && out_len && (env || env_len == 0));
    *out_msg = NULL;
    *out_len = 0;
    if (info) memset(info, 0, sizeof *info);
    pl_envelope_info tmp;
    PL_TRY(check_outer(&tmp, env, env_len));
    return open_checked(out_msg, out_len, info, &tmp, key, env, env_len);
}

pl_err pl_envelope_open(uint8_t **out_msg, size_t *out_len, pl_envelope_info *info,
                        const uint8_t *key, const char *b64, size_t b64_len) {
    PL_REQUIRE(out_msg && out_len && (b64 || b64_len == 0));
    *out_msg = NULL;
    *out_len = 0;
    if (info) memset(info, 0, sizeof *info);

    pl_envelope_info tmp;
    uint8_t *raw;
    size_t cap, n;
    PL_TRY(decode_outer(&raw, &cap, &n, &tmp, b64, b64_len));
    /* the key rule of open_checked */
    pl_err e = (tmp.type == 2) == (key == NULL)
                   ? open_body_in_place(out_msg, out_len, raw, n, cap, key)
                   : PL_ERR_ENVELOPE_TYPE;
    if (e != PL_OK) free(raw);
    else if (info) *info = tmp;
    return e;
}

pl_err pl_envelope_open_type1(uint8_t **out_msg, size_t *out_len, pl_envelope_info *info,
                              const uint8_t receiver_priv[PL_X25519_BYTES], const char *b64,
                              size_t b64_len) {
    PL_REQUIRE(out_msg && out_len && receiver_priv && (b64 || b64_len == 0));
    *out_msg = NULL;
    *out_len = 0;
    if (info) memset(info, 0, sizeof *info);

    pl_envelope_info tmp;
    uint8_t *raw;
    size_t cap, n;
    PL_TRY(decode_outer(&raw, &cap, &n, &tmp, b64, b64_len));
    pl_err e = PL_ERR_ENVELOPE_TYPE;
    if (tmp.type == 1) {
        /* The sender key is unauthenticated on its own; a tampered key
         * derives another session key and the tag check below fails. */
        uint8_t key[PL_SYMKEY_BYTES];
        e = pl_wc_session_key(key, receiver_priv, tmp.sender_pub);
        if (e == PL_OK) e = open_body_in_place(out_msg, out_len, raw, n, cap, key);
        sodium_memzero(key, sizeof key);
    }
    if (e != PL_OK) free(raw);
    else if (info) *info = tmp;
    return e;
}
