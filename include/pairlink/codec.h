/* SPDX-License-Identifier: Apache-2.0 */
/* Text and integer codecs: hex, base64 (standard/url, padded/unpadded),
 * base58btc, unsigned LEB128 varints.
 *
 * Hex and base64 decoding run in time independent of the byte values
 * (libsodium's constant-time codecs), so they are safe for keys. base58btc
 * is for public data only (did:key, peer ids).
 *
 * Encoders write a NUL-terminated string and fail with
 * PL_ERR_BUFFER_TOO_SMALL (writing nothing useful) if `cap` is too small.
 * Decoders reject any character outside the alphabet, odd hex length, bad
 * padding, and trailing garbage; *out_len is 0 on failure. */
#ifndef PAIRLINK_CODEC_H
#define PAIRLINK_CODEC_H

#include "pairlink/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Size of the buffer needed for the hex of n bytes, NUL included. */
#define PL_HEX_SIZE(n) ((n) * 2 + 1)

/* Lowercase hex. */
PL_EXPORT pl_err pl_hex_encode(char *out, size_t cap, const uint8_t *in, size_t len);
/* Accepts upper and lower case. Errors: PL_ERR_BAD_HEX (odd length or non-hex
 * character), PL_ERR_BUFFER_TOO_SMALL. */
PL_EXPORT pl_err pl_hex_decode(uint8_t *out, size_t cap, size_t *out_len, const char *in,
                               size_t in_len);
/* Decode exactly `len` bytes; PL_ERR_BAD_LENGTH if the hex is of another size. */
PL_EXPORT pl_err pl_hex_decode_exact(uint8_t *out, size_t len, const char *in, size_t in_len);

typedef enum pl_b64_variant {
    PL_B64_STD = 0,        /* +/ with = padding (WalletConnect envelopes) */
    PL_B64_STD_NOPAD = 1,  /* +/ without padding */
    PL_B64_URL = 2,        /* -_ with = padding */
    PL_B64_URL_NOPAD = 3,  /* -_ without padding (JWT) */
} pl_b64_variant;

/* Buffer size needed to encode n bytes, NUL included; SIZE_MAX if that
 * size would overflow (so that any capacity check fails). */
PL_EXPORT size_t pl_base64_encoded_size(size_t n, pl_b64_variant v);
PL_EXPORT pl_err pl_base64_encode(char *out, size_t cap, const uint8_t *in, size_t len,
                                  pl_b64_variant v);
/* Errors: PL_ERR_BAD_BASE64 (bad character, padding present where the variant
 * has none or missing where it needs it, trailing data), PL_ERR_BUFFER_TOO_SMALL. */
PL_EXPORT pl_err pl_base64_decode(uint8_t *out, size_t cap, size_t *out_len, const char *in,
                                  size_t in_len, pl_b64_variant v);

/* The same decoding, accepting and rejecting exactly the same inputs, but in
 * variable time with a lookup table: for public data only (envelope
 * ciphertexts, relay payloads), where libsodium's constant-time decoder was
 * the largest cost of opening an envelope (docs/performance.md). Never use it
 * for keys. */
PL_EXPORT pl_err pl_base64_decode_public(uint8_t *out, size_t cap, size_t *out_len, const char *in,
                                         size_t in_len, pl_b64_variant v);

/* The encoder of the same text as pl_base64_encode (same sizes, errors and
 * output, byte for byte), in variable time with lookup tables: for public
 * data only (envelopes, relay payloads), where libsodium's constant-time
 * encoder was the largest cost of sealing an envelope (docs/performance.md).
 * Never use it for keys. */
PL_EXPORT pl_err pl_base64_encode_public(char *out, size_t cap, const uint8_t *in, size_t len,
                                         pl_b64_variant v);

/* base58btc (Bitcoin alphabet; leading zero bytes become '1'). Inputs are
 * bounded: at most PL_BASE58_MAX_BYTES decoded bytes (PL_ERR_TOO_LARGE). */
#define PL_BASE58_MAX_BYTES 256
PL_EXPORT pl_err pl_base58btc_encode(char *out, size_t cap, const uint8_t *in, size_t len);
PL_EXPORT pl_err pl_base58btc_decode(uint8_t *out, size_t cap, size_t *out_len, const char *in,
                                     size_t in_len);

/* Unsigned LEB128 varint (multiformats/protobuf): at most 10 bytes, 64 bits.
 * encode returns the number of bytes written (1..10). decode rejects
 * overlong (non-minimal) encodings and values above 2^64-1 with
 * PL_ERR_BAD_VARINT, and an incomplete varint with PL_ERR_TRUNCATED. */
#define PL_UVARINT_MAX_BYTES 10
PL_EXPORT size_t pl_uvarint_encode(uint8_t out[PL_UVARINT_MAX_BYTES], uint64_t v);
PL_EXPORT pl_err pl_uvarint_decode(uint64_t *v, size_t *used, const uint8_t *in, size_t len);

#ifdef __cplusplus
}
#endif
#endif
