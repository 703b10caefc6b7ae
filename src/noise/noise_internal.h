/* SPDX-License-Identifier: Apache-2.0 */
/* Private parts of the Waku Noise core shared by the files of src/noise, the CLI and
 * the tests. Not installed. */
#ifndef PL_NOISE_INTERNAL_H
#define PL_NOISE_INTERNAL_H

#include "core/internal.h"
#include "noise/symmetric.h"
#include "pairlink/noise.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- patterns ---- */
typedef enum pl__noise_token {
    PL__TOK_E,
    PL__TOK_S,
    PL__TOK_EE,
    PL__TOK_ES,
    PL__TOK_SE,
    PL__TOK_SS,
    PL__TOK_PSK
} pl__noise_token;

typedef struct pl__noise_msg_pattern {
    bool from_initiator;
    uint8_t ntokens;
    pl__noise_token tokens[4];
} pl__noise_msg_pattern;

typedef struct pl__noise_pattern_def {
    pl_noise_pattern id;
    const char *name;
    const char *short_name;
    bool psk; /* "psk" in the name: every e is also MixKey'd (Noise 9.2) */
    uint8_t npre;
    pl__noise_msg_pattern pre[2]; /* one token each */
    uint8_t nmsgs;
    pl__noise_msg_pattern msgs[3];
} pl__noise_pattern_def;

/* NULL if `p` is not a supported pattern. */
const pl__noise_pattern_def *pl__noise_pattern_lookup(pl_noise_pattern p);

/* HKDF-SHA256(salt = h, ikm = "", info = ""), the derivation js-noise uses
 * for nametags, nametag secrets and the authcode. len <= 255*32. */
void pl__noise_hkdf_h(uint8_t *out, size_t len, const uint8_t h[PL_NOISE_HASH_BYTES]);

/* PKCS#7 to a multiple of PL_NOISE_PAD_BLOCK: always 1..248 bytes added. */
size_t pl__noise_padded_len(size_t len);
void pl__noise_pad(uint8_t *out, const uint8_t *in, size_t len);
/* Strict: length a non-zero multiple of 248, pad byte 1..248, all pad bytes
 * equal. PL_ERR_NOISE_PADDING otherwise. */
pl_err pl__noise_unpad(const uint8_t *in, size_t len, size_t *out_len);

/* Serialized size of a PayloadV2 with this handshake section and transport. */
size_t pl__noise_payload_size(size_t hs_bytes, size_t transport_len);

/* A content-topic path segment: 1..255 bytes, no '/', no control
 * characters (UTF-8 beyond ASCII passes through). */
bool pl__noise_topic_segment_ok(const char *v);

/* ---- sessions ---- */
#define PL__NOISE_TAG_CACHE (2 * PL_NOISE_WINDOW)

struct pl_noise_session {
    pl_noise_pattern pattern;
    pl_noise_role role;
    uint8_t h[PL_NOISE_HASH_BYTES];
    uint8_t rs[PL_NOISE_KEY_BYTES];
    uint8_t session_id[PL_NOISE_HASH_BYTES];
    uint8_t k_out[PL_NOISE_KEY_BYTES];
    uint8_t k_in[PL_NOISE_KEY_BYTES];
    uint8_t nms_out[PL_NOISE_HASH_BYTES];
    uint8_t nms_in[PL_NOISE_HASH_BYTES];
    uint64_t n_out;   /* next outbound nonce */
    uint64_t in_next; /* highest accepted inbound nonce + 1 (0: none yet) */
    /* bit i set: nonce in_next - 1 - i was accepted (i < PL_NOISE_WINDOW) */
    uint64_t in_seen;
    /* Nametags of inbound nonces in the window [in_next - W, in_next + W),
     * derived when first needed: slot nonce % 2W holds the tag of nonce
     * tag_n[slot] - 1 (0: nothing yet). */
    uint8_t tags[PL__NOISE_TAG_CACHE][PL_NOISE_NAMETAG_BYTES];
    uint64_t tag_n[PL__NOISE_TAG_CACHE];
};

/* Nametag n of a secret: sha256(secret || LE64(n))[0..16]. */
void pl__noise_nametag(uint8_t out[PL_NOISE_NAMETAG_BYTES],
                       const uint8_t secret[PL_NOISE_HASH_BYTES], uint64_t n);

/* Build a session from split outputs (all 32 bytes; session_id as
 * pl_noise_session_id defines it, or NULL to derive it from h). */
pl_err pl__noise_session_new(pl_noise_session **out, pl_noise_pattern pattern, pl_noise_role role,
                             const uint8_t h[32], const uint8_t rs[32], const uint8_t k_out[32],
                             const uint8_t k_in[32], const uint8_t nms_out[32],
                             const uint8_t nms_in[32], const uint8_t *session_id);

/* The split cipher keys (for transcripts and tests). */
void pl__noise_session_keys(const pl_noise_session *s, uint8_t k_out[PL_NOISE_KEY_BYTES],
                            uint8_t k_in[PL_NOISE_KEY_BYTES]);

#endif
