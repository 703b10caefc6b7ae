/* SPDX-License-Identifier: Apache-2.0 */
/* 26/WAKU-PAYLOAD version 1, symmetric (AES-256-GCM) form. */
#include "pairlink/waku_payload.h"

#include "core/internal.h"
#include "pairlink/codec.h"
#include "pairlink/hash.h"

#include <stdlib.h>
#include <string.h>

/* Width of the little-endian size field: the fewest bytes holding len.
 * PL_WAKU_MESSAGE_MAX < 2^24, so it is never 4 (flags & 3 cannot say 4). */
static size_t size_width(size_t len) {
    size_t w = 1;
    for (size_t v = len; v >= 256; v >>= 8) w++;
    return w;
}

size_t pl_waku_v1_padding_len(size_t len) {
    size_t raw = 1 + size_width(len) + len;
    return PL_WAKU_V1_PAD_BLOCK - raw % PL_WAKU_V1_PAD_BLOCK;
}

size_t pl_waku_v1_sealed_size(size_t len) {
    if (len > PL_WAKU_MESSAGE_MAX) return 0;
    size_t n = 1 + size_width(len) + len + pl_waku_v1_padding_len(len) + PL_WAKU_V1_OVERHEAD;
    return n > PL_WAKU_MESSAGE_MAX ? 0 : n;
}

pl_err pl_waku_v1_seal(uint8_t *out, size_t cap, size_t *out_len,
                       const uint8_t key[PL_WAKU_V1_KEY_BYTES], const uint8_t *payload, size_t len,
                       const pl_waku_v1_seal_opts *opts) {
    PL_REQUIRE(out_len);
    *out_len = 0;
    PL_REQUIRE(out && key && (payload || len == 0));
    size_t wire_len = pl_waku_v1_sealed_size(len);
    if (wire_len == 0) return PL_ERR_TOO_LARGE;
    if (cap < wire_len) return PL_ERR_BUFFER_TOO_SMALL;

    size_t w = size_width(len), pad = pl_waku_v1_padding_len(len);
    size_t plain_len = wire_len - PL_WAKU_V1_OVERHEAD;
    uint8_t *plain = malloc(plain_len);
    if (!plain) return PL_ERR_NOMEM;
    plain[0] = (uint8_t)w; /* flags: size width, not signed */
    for (size_t i = 0; i < w; i++) plain[1 + i] = (uint8_t)(len >> (8 * i));
    if (len) memcpy(plain + 1 + w, payload, len);
    if (opts && opts->padding)
        memcpy(plain + 1 + w + len, opts->padding, pad);
    else
        pl_random(plain + 1 + w + len, pad);

    uint8_t *iv = out + plain_len + PL_WAKU_V1_TAG_BYTES;
    if (opts && opts->iv)
        memcpy(iv, opts->iv, PL_WAKU_V1_IV_BYTES);
    else
        pl_random(iv, PL_WAKU_V1_IV_BYTES);
    /* The IV sits after ct|tag in `out`; encrypting into out[0..] leaves it. */
    pl_err e = pl_aes256gcm_encrypt(out, key, iv, NULL, 0, plain, plain_len);
    pl_free_secret(plain, plain_len);
    if (e != PL_OK) {
        pl_wipe(out, wire_len);
        return e;
    }
    *out_len = wire_len;
    return PL_OK;
}

pl_err pl_waku_v1_open(uint8_t *out, size_t cap, size_t *out_len,
                       const uint8_t key[PL_WAKU_V1_KEY_BYTES], const uint8_t *wire,
                       size_t wire_len) {
    PL_REQUIRE(out_len);
    *out_len = 0;
    PL_REQUIRE(key && wire && (out || cap == 0));
    if (wire_len > PL_WAKU_MESSAGE_MAX) return PL_ERR_TOO_LARGE;
    if (wire_len < PL_WAKU_V1_OVERHEAD) return PL_ERR_TRUNCATED;

    size_t ct_len = wire_len - PL_WAKU_V1_IV_BYTES; /* ciphertext | tag */
    size_t plain_len = ct_len - PL_WAKU_V1_TAG_BYTES;
    uint8_t *plain = malloc(plain_len ? plain_len : 1);
    if (!plain) return PL_ERR_NOMEM;
    pl_err e = pl_aes256gcm_decrypt(plain, key, wire + ct_len, NULL, 0, wire, ct_len);
    if (e != PL_OK) goto done;

    /* Everything below reads authenticated bytes only. */
    e = PL_ERR_WAKU_PAYLOAD;
    if (plain_len < 1) goto done;
    uint8_t flags = plain[0];
    if (flags & PL_WAKU_V1_FLAG_SIGNED) {
        e = PL_ERR_WAKU_SIGNED;
        goto done;
    }
    size_t w = flags & 3u;
    if (w == 0 || 1 + w > plain_len) goto done;
    size_t size = 0;
    for (size_t i = 0; i < w; i++) size |= (size_t)plain[1 + i] << (8 * i);
    if (size > plain_len - 1 - w) goto done;
    if (size > cap) {
        e = PL_ERR_BUFFER_TOO_SMALL;
        goto done;
    }
    if (size) memcpy(out, plain + 1 + w, size);
    *out_len = size;
    e = PL_OK;
done:
    pl_free_secret(plain, plain_len ? plain_len : 1);
    return e;
}
