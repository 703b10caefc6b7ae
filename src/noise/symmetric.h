/* SPDX-License-Identifier: Apache-2.0 */
/* The Noise framework's CipherState and SymmetricState (Noise spec 5.1,
 * 5.2) for 25519 / ChaChaPoly / SHA256, shared by the two Noise protocols
 * pairlink speaks: Waku Noise (src/noise/: adds nametags to the associated
 * data, padding, and HKDF(h) derivations on top) and libp2p Noise
 * (src/p2p/noise_xx.c: plain Noise XX). Not installed. */
#ifndef PL_NOISE_SYMMETRIC_H
#define PL_NOISE_SYMMETRIC_H

#include "core/internal.h"
#include "pairlink/noise.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Noise reserves nonce 2^64-1 (Noise spec 5.1), so it is never used. */
#define PL__NOISE_NONCE_MAX UINT64_MAX

typedef struct pl__noise_cs {
    uint8_t k[PL_NOISE_KEY_BYTES];
    uint64_t n;
    bool has_key;
} pl__noise_cs;

typedef struct pl__noise_ss {
    pl__noise_cs cs;
    uint8_t ck[PL_NOISE_HASH_BYTES];
    uint8_t h[PL_NOISE_HASH_BYTES];
} pl__noise_ss;

/* ChaCha20-Poly1305 (IETF) with the Noise nonce 0^32 | LE64(n). out gets
 * len + 16 bytes. */
void pl__noise_aead_encrypt(uint8_t *out, const uint8_t k[PL_NOISE_KEY_BYTES], uint64_t n,
                            const uint8_t *ad, size_t ad_len, const uint8_t *in, size_t len);
/* in_len includes the tag (>= 16); out gets in_len - 16 bytes, written only
 * when the tag verifies. PL_ERR_DECRYPT otherwise. */
pl_err pl__noise_aead_decrypt(uint8_t *out, const uint8_t k[PL_NOISE_KEY_BYTES], uint64_t n,
                              const uint8_t *ad, size_t ad_len, const uint8_t *in, size_t in_len);

void pl__noise_ss_init(pl__noise_ss *ss, const char *protocol_name);
void pl__noise_mix_hash(pl__noise_ss *ss, const uint8_t *data, size_t len);
void pl__noise_mix_key(pl__noise_ss *ss, const uint8_t *ikm, size_t len);
void pl__noise_mix_key_and_hash(pl__noise_ss *ss, const uint8_t *ikm, size_t len);
/* EncryptAndHash with AD = h || extra_ad (extra_ad: a Waku nametag, or
 * nothing for plain Noise). out gets len (+16 once a key is set); *out_len
 * says which. PL_ERR_NOISE_NONCE when the nonce is spent. */
pl_err pl__noise_encrypt_and_hash(pl__noise_ss *ss, uint8_t *out, size_t *out_len,
                                  const uint8_t *in, size_t len, const uint8_t *extra_ad,
                                  size_t extra_len);
/* DecryptAndHash with AD = h || extra_ad; out gets in_len (- 16 once a key
 * is set). PL_ERR_DECRYPT, PL_ERR_NOISE_PAYLOAD (shorter than a tag),
 * PL_ERR_NOISE_NONCE. */
pl_err pl__noise_decrypt_and_hash(pl__noise_ss *ss, uint8_t *out, size_t *out_len,
                                  const uint8_t *in, size_t in_len, const uint8_t *extra_ad,
                                  size_t extra_len);

/* Split (Noise 5.2): the two transport keys HKDF(ck, ""); k1 protects
 * initiator -> responder. */
void pl__noise_split(const pl__noise_ss *ss, uint8_t k1[PL_NOISE_KEY_BYTES],
                     uint8_t k2[PL_NOISE_KEY_BYTES]);

/* X25519; PL_ERR_WEAK_KEY (out zeroed) for an all-zero result. */
pl_err pl__noise_dh(uint8_t out[PL_NOISE_KEY_BYTES], const uint8_t priv[PL_NOISE_KEY_BYTES],
                    const uint8_t pub[PL_NOISE_KEY_BYTES]);
void pl__noise_pub(uint8_t pub[PL_NOISE_KEY_BYTES], const uint8_t priv[PL_NOISE_KEY_BYTES]);

#endif
