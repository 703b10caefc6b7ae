/* SPDX-License-Identifier: Apache-2.0 */
/* 26/WAKU-PAYLOAD version 1, symmetric form. (Carrying Waku content topics
 * over a WalletConnect-protocol relay is the relay transport's business:
 * pl_relay_topic() in relay_client.h.)
 *
 * A version 1 payload (the `payload` field of a WakuMessage whose `version`
 * is 1) is, before encryption:
 *
 *   flags(1) | size (w bytes, little-endian, w = flags & 3, 1..3) | payload |
 *   padding (random, so that the whole is a multiple of 256; 1..256 bytes)
 *
 * and on the wire, AES-256-GCM with a 32-byte key and a fresh 12-byte IV:
 *
 *   ciphertext | tag(16) | iv(12)
 *
 * This is what @waku/message-encryption's symmetric encoder/decoder produce
 * and accept. Flag bit 2 (0x04) marks a secp256k1 signature appended after
 * the padding; pairlink never signs and refuses signed payloads with
 * PL_ERR_WAKU_SIGNED (verifying them needs Keccak-256, which none of the
 * project's crypto libraries provide). Flag bits 3..7 are ignored, as
 * js-waku ignores them. The padding's length and contents are not checked
 * when opening, so that any conforming encoder interoperates.
 *
 * All functions are reentrant, do no I/O and read no clock. */
#ifndef PAIRLINK_WAKU_PAYLOAD_H
#define PAIRLINK_WAKU_PAYLOAD_H

#include "pairlink/common.h"
#include "pairlink/crypto.h"
#include "pairlink/waku.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PL_WAKU_V1_VERSION 1u        /* WakuMessage.version for this form */
#define PL_WAKU_V1_KEY_BYTES 32
#define PL_WAKU_V1_IV_BYTES 12
#define PL_WAKU_V1_TAG_BYTES 16
#define PL_WAKU_V1_OVERHEAD (PL_WAKU_V1_TAG_BYTES + PL_WAKU_V1_IV_BYTES)
#define PL_WAKU_V1_PAD_BLOCK 256
#define PL_WAKU_V1_FLAG_SIGNED 0x04u
/* No sealed payload may exceed PL_WAKU_MESSAGE_MAX (pairlink/waku.h), and
 * open refuses anything longer before decrypting. */
/* Longest content topic accepted by pl_waku_relay_topic. */
#define PL_WAKU_CONTENT_TOPIC_MAX 255

/* Padding length for a payload of `len` bytes: 256 - ((1 + w + len) mod
 * 256), so 1..256. */
PL_EXPORT size_t pl_waku_v1_padding_len(size_t len);

/* Bytes on the wire for a payload of `len` bytes (padded plaintext + 28),
 * or 0 if that would exceed PL_WAKU_MESSAGE_MAX. */
PL_EXPORT size_t pl_waku_v1_sealed_size(size_t len);

/* Fixed IV and padding, for known-answer tests only: an IV must never be
 * reused under one key. Either pointer may be NULL (random). `padding`, when
 * given, is exactly pl_waku_v1_padding_len(len) bytes. */
typedef struct pl_waku_v1_seal_opts {
    const uint8_t *iv;      /* 12 bytes or NULL */
    const uint8_t *padding; /* pl_waku_v1_padding_len(len) bytes or NULL */
} pl_waku_v1_seal_opts;

/* Seal `payload` (may be NULL when len is 0) into `out` (capacity `cap`).
 * *out_len is set to the wire length on success, 0 otherwise. opts may be
 * NULL (random IV and padding, the normal case).
 * Errors: PL_ERR_TOO_LARGE (the sealed form would exceed
 * PL_WAKU_MESSAGE_MAX), PL_ERR_BUFFER_TOO_SMALL (cap <
 * pl_waku_v1_sealed_size(len)), PL_ERR_NOMEM, PL_ERR_CRYPTO. The padded
 * plaintext is wiped before returning. */
PL_EXPORT pl_err pl_waku_v1_seal(uint8_t *out, size_t cap, size_t *out_len,
                                 const uint8_t key[PL_WAKU_V1_KEY_BYTES], const uint8_t *payload,
                                 size_t len, const pl_waku_v1_seal_opts *opts);

/* Open a sealed payload: verify the tag, then decode the plaintext and copy
 * the payload into `out` (capacity `cap`; may be NULL when cap is 0).
 * *out_len is set on success and 0 on failure; nothing is written to `out`
 * unless the tag verified and the layout is valid.
 * Errors: PL_ERR_TOO_LARGE (wire longer than PL_WAKU_MESSAGE_MAX),
 * PL_ERR_TRUNCATED (shorter than tag + IV), PL_ERR_DECRYPT (wrong key or any
 * tampered byte), PL_ERR_WAKU_PAYLOAD (empty plaintext, size field width 0,
 * or size beyond the plaintext), PL_ERR_WAKU_SIGNED (flag 0x04 set),
 * PL_ERR_BUFFER_TOO_SMALL (payload longer than cap), PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_waku_v1_open(uint8_t *out, size_t cap, size_t *out_len,
                                 const uint8_t key[PL_WAKU_V1_KEY_BYTES], const uint8_t *wire,
                                 size_t wire_len);


#ifdef __cplusplus
}
#endif
#endif
