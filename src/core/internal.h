/* SPDX-License-Identifier: Apache-2.0 */
/* Private helpers shared by every layer. Not installed. */
#ifndef PAIRLINK_INTERNAL_H
#define PAIRLINK_INTERNAL_H

#include "pairlink/codec.h"
#include "pairlink/common.h"
#include "pairlink/hash.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Report a programming error and abort. Never returns. */
_Noreturn void pl__misuse(const char *what, const char *file, int line);

/* Check an API precondition; on failure it is a bug in the caller. */
#define PL_REQUIRE(cond)                                                   \
    do {                                                                   \
        if (!(cond)) pl__misuse("precondition failed: " #cond, __FILE__, __LINE__); \
    } while (0)

/* Record the underlying library/system code behind a wrapped error. */
void pl__set_detail(long detail);

/* Return `err` after recording `detail`; keeps call sites one line. */
static inline pl_err pl__fail(pl_err err, long detail) {
    pl__set_detail(detail);
    return err;
}

/* Strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing above
 * U+10FFFF, the rule of jansson and of JS strings. */
bool pl__utf8_valid(const unsigned char *s, size_t n);

#define PL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Random bytes for a core: from its injected source, or pl_random when it
 * has none (hash.h: pl_rng_fn). */
void pl__rng(pl_rng_fn rng, void *ctx, uint8_t *buf, size_t len);

/* SHA-256 of the concatenation a || b || c (any part may be empty). */
void pl__sha256_cat(uint8_t out[PL_SHA256_BYTES], const void *a, size_t a_len, const void *b,
                    size_t b_len, const void *c, size_t c_len);
/* The libsodium computations of pl_sha256, pl_hmac_sha256 and
 * pl_hkdf_sha256 (which use libcrypto), for the tests that hold the two
 * equal. No length checks. */
void pl__sha256_sodium(uint8_t out[PL_SHA256_BYTES], const uint8_t *in, size_t len);
void pl__hmac_sha256_sodium(uint8_t out[PL_HMAC_SHA256_BYTES], const uint8_t *key, size_t key_len,
                            const uint8_t *msg, size_t msg_len);
void pl__hkdf_sha256_sodium(uint8_t *out, size_t out_len, const uint8_t *salt, size_t salt_len,
                            const uint8_t *ikm, size_t ikm_len, const uint8_t *info,
                            size_t info_len);

/* pl_base64_encode_public in place: the `len` bytes to encode lie at the end
 * of `buf`, whose size is pl_base64_encoded_size(len, v); the text (with its
 * NUL) replaces them from the start of `buf`. Lets an envelope be sealed
 * into the one buffer it is returned in. */
void pl__base64_encode_public_tail(char *buf, size_t len, pl_b64_variant v);

/* The SIMD blocks the public base64 codecs may use: at most `max` (0 none,
 * 1 SSSE3, 2 AVX2 and SSSE3; -1 all the CPU has, the default). Returns the
 * level in force. For tests, which run every level against libsodium; not
 * thread-safe against running codecs. */
int pl__base64_simd_level(int max);

/* Propagate a non-OK pl_err from an expression. */
#define PL_TRY(expr)                     \
    do {                                 \
        pl_err pl__e = (expr);           \
        if (pl__e != PL_OK) return pl__e; \
    } while (0)

#endif
