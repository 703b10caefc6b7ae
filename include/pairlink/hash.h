/* SPDX-License-Identifier: Apache-2.0 */
/* Hashes, MACs, HKDF and randomness (OpenSSL's libcrypto for SHA-256, HMAC
 * and HKDF, which uses the CPU's SHA extensions; libsodium for the rest).
 * All functions are thread-safe and do no I/O beyond the OS random source.
 * SHA-256, HMAC and HKDF keep one libcrypto context per thread that uses
 * them, freed when the thread exits. */
#ifndef PAIRLINK_HASH_H
#define PAIRLINK_HASH_H

#include "pairlink/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PL_SHA256_BYTES 32
#define PL_HMAC_SHA256_BYTES 32
/* RFC 5869 limit for SHA-256: 255 blocks. */
#define PL_HKDF_SHA256_MAX_OUT (255u * 32u)

PL_EXPORT void pl_sha256(uint8_t out[PL_SHA256_BYTES], const uint8_t *in, size_t len);

PL_EXPORT void pl_hmac_sha256(uint8_t out[PL_HMAC_SHA256_BYTES], const uint8_t *key, size_t key_len,
                              const uint8_t *msg, size_t msg_len);

/* HKDF-SHA256 (RFC 5869) extract-and-expand. salt may be NULL/0 (then a
 * zero-filled 32-byte salt is used, per the RFC); info may be NULL/0.
 * Errors: PL_ERR_BAD_LENGTH if out_len is 0 or above PL_HKDF_SHA256_MAX_OUT.
 * Intermediate keys are wiped. */
PL_EXPORT pl_err pl_hkdf_sha256(uint8_t *out, size_t out_len, const uint8_t *salt, size_t salt_len,
                                const uint8_t *ikm, size_t ikm_len, const uint8_t *info,
                                size_t info_len);

/* Fill buf with len cryptographically secure random bytes. */
PL_EXPORT void pl_random(uint8_t *buf, size_t len);

/* A source of random bytes handed to a protocol core (nonces, IVs, padding,
 * ids, jitter). Every core that needs randomness takes one in its config;
 * NULL there means pl_random. Fixed sources exist for reproducible tests
 * and vectors only. */
typedef void (*pl_rng_fn)(void *ctx, uint8_t *buf, size_t len);

/* Constant-time equality of two equal-length buffers: 1 if equal, else 0. */
PL_EXPORT int pl_ct_equal(const uint8_t *a, const uint8_t *b, size_t len);

/* Wipe a buffer in a way the compiler cannot remove. */
PL_EXPORT void pl_wipe(void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
