/* SPDX-License-Identifier: Apache-2.0 */
/* AES-256-GCM with a 96-bit IV and 128-bit tag (OpenSSL EVP). */
#include "pairlink/crypto.h"

#include "core/internal.h"

#include <limits.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <string.h>

typedef enum { GCM_ENCRYPT = 1, GCM_DECRYPT = 0 } gcm_dir;

static pl_err crypto_fail(void) { return pl__fail(PL_ERR_CRYPTO, (long)ERR_get_error()); }

/* One pass over aad and data; *len_out = bytes written to out. */
static pl_err gcm_run(EVP_CIPHER_CTX *ctx, gcm_dir dir, const uint8_t key[32],
                      const uint8_t iv[PL_IV_BYTES], const uint8_t *aad, size_t aad_len,
                      const uint8_t *in, size_t in_len, uint8_t *out) {
    int n = 0;
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, dir) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, PL_IV_BYTES, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, key, iv, dir) != 1)
        return crypto_fail();
    if (aad_len && EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1) return crypto_fail();
    if (in_len && EVP_CipherUpdate(ctx, out, &n, in, (int)in_len) != 1) return crypto_fail();
    return PL_OK;
}

pl_err pl_aes256gcm_encrypt(uint8_t *out, const uint8_t key[32], const uint8_t iv[PL_IV_BYTES],
                            const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t in_len) {
    PL_REQUIRE(out && key && iv && (aad || aad_len == 0) && (in || in_len == 0));
    /* EVP takes int lengths; nothing in pairlink comes near this. */
    if (in_len > INT_MAX - 16 || aad_len > INT_MAX) return PL_ERR_TOO_LARGE;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx) return PL_ERR_NOMEM;
    int n = 0;
    pl_err e = gcm_run(ctx, GCM_ENCRYPT, key, iv, aad, aad_len, in, in_len, out);
    if (e == PL_OK && (EVP_CipherFinal_ex(ctx, out + in_len, &n) != 1 ||
                       EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, PL_TAG_BYTES,
                                           out + in_len) != 1))
        e = crypto_fail();
    EVP_CIPHER_CTX_free(ctx); /* also cleanses the key schedule */
    if (e != PL_OK) sodium_memzero(out, in_len + PL_TAG_BYTES);
    return e;
}

pl_err pl_aes256gcm_decrypt(uint8_t *out, const uint8_t key[32], const uint8_t iv[PL_IV_BYTES],
                            const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t in_len) {
    PL_REQUIRE(out && key && iv && (aad || aad_len == 0) && in);
    if (in_len < PL_TAG_BYTES) return PL_ERR_TRUNCATED;
    if (in_len > INT_MAX || aad_len > INT_MAX) return PL_ERR_TOO_LARGE;
    size_t ct_len = in_len - PL_TAG_BYTES;
    /* Copy the tag first: out may alias in (in-place decryption). */
    uint8_t tag[PL_TAG_BYTES];
    memcpy(tag, in + ct_len, PL_TAG_BYTES);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx) return PL_ERR_NOMEM;
    int n = 0;
    pl_err e = gcm_run(ctx, GCM_DECRYPT, key, iv, aad, aad_len, in, ct_len, out);
    if (e == PL_OK && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, PL_TAG_BYTES, tag) != 1)
        e = crypto_fail();
    /* GCM decrypts before it authenticates: the plaintext already written
     * must not survive a failed tag check. */
    if (e == PL_OK && EVP_CipherFinal_ex(ctx, out + ct_len, &n) != 1) {
        ERR_clear_error();
        e = PL_ERR_DECRYPT;
    }
    EVP_CIPHER_CTX_free(ctx);
    if (e != PL_OK) sodium_memzero(out, ct_len);
    return e;
}
