/* SPDX-License-Identifier: Apache-2.0 */
/* Noise CipherState and SymmetricState (Noise spec sections 5.1, 5.2),
 * shared with libp2p Noise (symmetric.h), and the Waku departures: extra
 * associated data after h, PKCS#7 padding to 248-byte blocks, and HKDF(h)
 * derivations. */
#include "noise/noise_internal.h"

#include "pairlink/hash.h"

#include <sodium.h>
#include <string.h>

/* 4 zero bytes then the 64-bit counter little-endian (Noise 12.3). js-noise
 * writes only 32 bits at offset 4, which is the same bytes for every nonce
 * it can reach (it stops below 2^32). */
static void noise_nonce(uint8_t out[crypto_aead_chacha20poly1305_ietf_NPUBBYTES], uint64_t n) {
    memset(out, 0, 4);
    for (int i = 0; i < 8; i++) out[4 + i] = (uint8_t)(n >> (8 * i));
}

void pl__noise_aead_encrypt(uint8_t *out, const uint8_t k[PL_NOISE_KEY_BYTES], uint64_t n,
                            const uint8_t *ad, size_t ad_len, const uint8_t *in, size_t len) {
    uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
    noise_nonce(nonce, n);
    unsigned long long clen = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, in, len, ad, ad_len, NULL, nonce, k);
}

pl_err pl__noise_aead_decrypt(uint8_t *out, const uint8_t k[PL_NOISE_KEY_BYTES], uint64_t n,
                              const uint8_t *ad, size_t ad_len, const uint8_t *in, size_t in_len) {
    if (in_len < PL_NOISE_TAG_BYTES) return PL_ERR_DECRYPT;
    uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
    noise_nonce(nonce, n);
    unsigned long long mlen = 0;
    /* libsodium checks the tag before it writes any plaintext byte. */
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &mlen, NULL, in, in_len, ad, ad_len, nonce,
                                                  k) != 0)
        return PL_ERR_DECRYPT;
    return PL_OK;
}

void pl__noise_ss_init(pl__noise_ss *ss, const char *protocol_name) {
    memset(ss, 0, sizeof *ss);
    size_t n = strlen(protocol_name);
    /* Noise 5.2: names up to HASHLEN are zero-padded, longer ones hashed.
     * The Waku names are longer than 32 bytes; libp2p's
     * "Noise_XX_25519_ChaChaPoly_SHA256" is exactly 32. */
    if (n <= PL_NOISE_HASH_BYTES) memcpy(ss->h, protocol_name, n);
    else pl_sha256(ss->h, (const uint8_t *)protocol_name, n);
    memcpy(ss->ck, ss->h, sizeof ss->ck);
}

void pl__noise_mix_hash(pl__noise_ss *ss, const uint8_t *data, size_t len) {
    pl__sha256_cat(ss->h, ss->h, sizeof ss->h, data, len, NULL, 0);
}

static void set_key(pl__noise_cs *cs, const uint8_t k[PL_NOISE_KEY_BYTES]) {
    memcpy(cs->k, k, PL_NOISE_KEY_BYTES);
    cs->n = 0;
    cs->has_key = true;
}

void pl__noise_mix_key(pl__noise_ss *ss, const uint8_t *ikm, size_t len) {
    uint8_t out[64];
    pl_hkdf_sha256(out, sizeof out, ss->ck, sizeof ss->ck, ikm, len, NULL, 0);
    memcpy(ss->ck, out, 32);
    set_key(&ss->cs, out + 32);
    pl_wipe(out, sizeof out);
}

void pl__noise_mix_key_and_hash(pl__noise_ss *ss, const uint8_t *ikm, size_t len) {
    uint8_t out[96];
    pl_hkdf_sha256(out, sizeof out, ss->ck, sizeof ss->ck, ikm, len, NULL, 0);
    memcpy(ss->ck, out, 32);
    pl__noise_mix_hash(ss, out + 32, 32);
    set_key(&ss->cs, out + 64);
    pl_wipe(out, sizeof out);
}

/* AD = h || extra (extra is a nametag or nothing). */
static size_t build_ad(uint8_t ad[PL_NOISE_HASH_BYTES + PL_NOISE_NAMETAG_BYTES],
                       const pl__noise_ss *ss, const uint8_t *extra, size_t extra_len) {
    PL_REQUIRE(extra_len <= PL_NOISE_NAMETAG_BYTES);
    memcpy(ad, ss->h, PL_NOISE_HASH_BYTES);
    if (extra_len) memcpy(ad + PL_NOISE_HASH_BYTES, extra, extra_len);
    return PL_NOISE_HASH_BYTES + extra_len;
}

pl_err pl__noise_encrypt_and_hash(pl__noise_ss *ss, uint8_t *out, size_t *out_len,
                                  const uint8_t *in, size_t len, const uint8_t *extra_ad,
                                  size_t extra_len) {
    if (!ss->cs.has_key) {
        /* Noise: without a key EncryptWithAd is the identity. */
        if (len) memmove(out, in, len);
        *out_len = len;
    } else {
        if (ss->cs.n >= PL__NOISE_NONCE_MAX) return PL_ERR_NOISE_NONCE;
        uint8_t ad[PL_NOISE_HASH_BYTES + PL_NOISE_NAMETAG_BYTES];
        size_t ad_len = build_ad(ad, ss, extra_ad, extra_len);
        pl__noise_aead_encrypt(out, ss->cs.k, ss->cs.n, ad, ad_len, in, len);
        ss->cs.n++;
        *out_len = len + PL_NOISE_TAG_BYTES;
    }
    pl__noise_mix_hash(ss, out, *out_len);
    return PL_OK;
}

pl_err pl__noise_decrypt_and_hash(pl__noise_ss *ss, uint8_t *out, size_t *out_len,
                                  const uint8_t *in, size_t in_len, const uint8_t *extra_ad,
                                  size_t extra_len) {
    *out_len = 0;
    if (!ss->cs.has_key) {
        if (in_len) memmove(out, in, in_len);
        *out_len = in_len;
    } else {
        if (in_len < PL_NOISE_TAG_BYTES) return PL_ERR_NOISE_PAYLOAD;
        if (ss->cs.n >= PL__NOISE_NONCE_MAX) return PL_ERR_NOISE_NONCE;
        uint8_t ad[PL_NOISE_HASH_BYTES + PL_NOISE_NAMETAG_BYTES];
        size_t ad_len = build_ad(ad, ss, extra_ad, extra_len);
        PL_TRY(pl__noise_aead_decrypt(out, ss->cs.k, ss->cs.n, ad, ad_len, in, in_len));
        ss->cs.n++;
        *out_len = in_len - PL_NOISE_TAG_BYTES;
    }
    /* The ciphertext, not the plaintext, enters h (Noise 5.2). */
    pl__noise_mix_hash(ss, in, in_len);
    return PL_OK;
}

void pl__noise_split(const pl__noise_ss *ss, uint8_t k1[PL_NOISE_KEY_BYTES],
                     uint8_t k2[PL_NOISE_KEY_BYTES]) {
    uint8_t out[2 * PL_NOISE_KEY_BYTES];
    pl_err e = pl_hkdf_sha256(out, sizeof out, ss->ck, sizeof ss->ck, NULL, 0, NULL, 0);
    PL_REQUIRE(e == PL_OK);
    memcpy(k1, out, PL_NOISE_KEY_BYTES);
    memcpy(k2, out + PL_NOISE_KEY_BYTES, PL_NOISE_KEY_BYTES);
    pl_wipe(out, sizeof out);
}

void pl__noise_hkdf_h(uint8_t *out, size_t len, const uint8_t h[PL_NOISE_HASH_BYTES]) {
    pl_err e = pl_hkdf_sha256(out, len, h, PL_NOISE_HASH_BYTES, NULL, 0, NULL, 0);
    PL_REQUIRE(e == PL_OK);
}

pl_err pl__noise_dh(uint8_t out[PL_NOISE_KEY_BYTES], const uint8_t priv[PL_NOISE_KEY_BYTES],
                    const uint8_t pub[PL_NOISE_KEY_BYTES]) {
    /* libsodium refuses an all-zero result (low-order peer key). js-noise
     * would carry on with 32 zero bytes; we fail the handshake instead. */
    if (crypto_scalarmult(out, priv, pub) != 0) {
        sodium_memzero(out, PL_NOISE_KEY_BYTES);
        return PL_ERR_WEAK_KEY;
    }
    return PL_OK;
}

void pl__noise_pub(uint8_t pub[PL_NOISE_KEY_BYTES], const uint8_t priv[PL_NOISE_KEY_BYTES]) {
    crypto_scalarmult_base(pub, priv);
}

size_t pl__noise_padded_len(size_t len) {
    return len + (PL_NOISE_PAD_BLOCK - len % PL_NOISE_PAD_BLOCK);
}

void pl__noise_pad(uint8_t *out, const uint8_t *in, size_t len) {
    size_t pad = PL_NOISE_PAD_BLOCK - len % PL_NOISE_PAD_BLOCK;
    if (len) memmove(out, in, len);
    memset(out + len, (int)pad, pad);
}

pl_err pl__noise_unpad(const uint8_t *in, size_t len, size_t *out_len) {
    *out_len = 0;
    if (len == 0 || len % PL_NOISE_PAD_BLOCK != 0) return PL_ERR_NOISE_PADDING;
    uint8_t pad = in[len - 1];
    if (pad == 0 || pad > PL_NOISE_PAD_BLOCK) return PL_ERR_NOISE_PADDING;
    /* The plaintext is authenticated already (or public in a keyless
     * message), so a data-dependent loop leaks nothing new. */
    for (size_t i = len - pad; i < len; i++)
        if (in[i] != pad) return PL_ERR_NOISE_PADDING;
    *out_len = len - pad;
    return PL_OK;
}
