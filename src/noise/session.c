/* SPDX-License-Identifier: Apache-2.0 */
/* Waku Noise sessions (RFC 35 "message nametags", RFC 37): transport
 * messages after the split, a sliding nametag window, persistence.
 *
 * Window rule. Inbound nonce k is identified by its nametag
 * sha256(nms_in || LE64(k))[0..16]. With `next` = highest accepted nonce + 1,
 * the receiver knows the tags of [next - W, next + W), W = 50:
 *  - k >= next: accepted (the messages in between were lost or are late);
 *    next becomes k + 1;
 *  - k < next: accepted once if not seen yet (a late message), else
 *    PL_ERR_NOISE_REPLAY;
 *  - any other tag: PL_ERR_NOISE_WINDOW (too old, too far ahead, not ours).
 * js-noise (and nwaku) only ever accept the single next tag; a sender that
 * never skips looks the same to both. The cipher nonce of message k is k,
 * so out-of-order decryption needs no state beyond the window bitmap.
 *
 * Serialized state, version 1 (PL_NOISE_SESSION_STATE_BYTES = 224 bytes):
 *   0  "PLNS"              4  magic
 *   4  version = 1         1
 *   5  pattern id          1  PayloadV2 protocol id of the handshake
 *   6  role                1  1 initiator, 2 responder
 *   7  0                   1  reserved
 *   8  h                  32  handshake hash
 *  40  rs                 32  remote static key
 *  72  k_out              32  outbound cipher key
 * 104  k_in               32  inbound cipher key
 * 136  nms_out            32  outbound nametag secret
 * 168  nms_in             32  inbound nametag secret
 * 200  n_out               8  LE64 next outbound nonce
 * 208  in_next             8  LE64 highest accepted inbound nonce + 1
 * 216  in_seen             8  LE64 bitmap, bit i = nonce in_next-1-i accepted
 * The session id and the cached nametags are derived again on restore. */
#include "noise/noise_internal.h"

#include "pairlink/hash.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W ((uint64_t)PL_NOISE_WINDOW)
#define SEEN_MASK ((UINT64_C(1) << PL_NOISE_WINDOW) - 1)
#define STATE_VERSION 1

void pl__noise_nametag(uint8_t out[PL_NOISE_NAMETAG_BYTES],
                       const uint8_t secret[PL_NOISE_HASH_BYTES], uint64_t n) {
    uint8_t le[8], d[PL_SHA256_BYTES];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)(n >> (8 * i));
    pl__sha256_cat(d, secret, PL_NOISE_HASH_BYTES, le, sizeof le, NULL, 0);
    memcpy(out, d, PL_NOISE_NAMETAG_BYTES);
}

static uint64_t window_lo(const pl_noise_session *s) {
    return s->in_next > W ? s->in_next - W : 0;
}

/* Exclusive; nonce 2^64-1 is never valid. */
static uint64_t window_hi(const pl_noise_session *s) {
    return s->in_next > PL__NOISE_NONCE_MAX - W ? PL__NOISE_NONCE_MAX : s->in_next + W;
}

/* The tag of inbound nonce n, derived on first use. */
static const uint8_t *tag_of(pl_noise_session *s, uint64_t n) {
    size_t slot = (size_t)(n % PL__NOISE_TAG_CACHE);
    if (s->tag_n[slot] != n + 1) {
        pl__noise_nametag(s->tags[slot], s->nms_in, n);
        s->tag_n[slot] = n + 1;
    }
    return s->tags[slot];
}

/* 16-byte comparison without branches on the bytes: all-ones if equal. */
static uint64_t tag_eq_mask(const uint8_t a[PL_NOISE_NAMETAG_BYTES],
                            const uint8_t b[PL_NOISE_NAMETAG_BYTES]) {
    uint64_t a0, a1, b0, b1;
    memcpy(&a0, a, 8);
    memcpy(&a1, a + 8, 8);
    memcpy(&b0, b, 8);
    memcpy(&b1, b + 8, 8);
    uint64_t d = (a0 ^ b0) | (a1 ^ b1);
    /* d == 0 -> 0 - 1 = all ones; any other d -> 0 */
    return ((d | (0 - d)) >> 63) - 1;
}

/* The inbound nonce whose nametag is `tag`, if it lies in the window.
 * The tags of future nonces are secret until their messages are sent, so
 * a forged tag must learn nothing about them from the time taken: it is
 * compared with every tag of the window without branching on their bytes.
 * Only one branch depends on the input: whether it is the tag expected next
 * (the common case, one comparison), which a sender knows anyway. */
static bool find_nonce(pl_noise_session *s, const uint8_t tag[PL_NOISE_NAMETAG_BYTES],
                       uint64_t *k) {
    uint64_t lo = window_lo(s), hi = window_hi(s);
    if (s->in_next < hi && tag_eq_mask(tag_of(s, s->in_next), tag)) {
        *k = s->in_next;
        return true;
    }
    uint64_t found = 0, which = 0;
    for (uint64_t n = lo; n < hi; n++) {
        uint64_t m = tag_eq_mask(tag_of(s, n), tag);
        found |= m;
        which |= n & m;
    }
    *k = which;
    return found != 0;
}

static void derive_id(pl_noise_session *s) {
    uint8_t out[96];
    pl__noise_hkdf_h(out, sizeof out, s->h);
    memcpy(s->session_id, out + 64, PL_NOISE_HASH_BYTES);
    sodium_memzero(out, sizeof out);
}

pl_err pl__noise_session_new(pl_noise_session **out, pl_noise_pattern pattern, pl_noise_role role,
                             const uint8_t h[32], const uint8_t rs[32], const uint8_t k_out[32],
                             const uint8_t k_in[32], const uint8_t nms_out[32],
                             const uint8_t nms_in[32], const uint8_t *session_id) {
    *out = NULL;
    pl_noise_session *s = calloc(1, sizeof *s);
    if (!s) return PL_ERR_NOMEM;
    s->pattern = pattern;
    s->role = role;
    memcpy(s->h, h, 32);
    memcpy(s->rs, rs, 32);
    memcpy(s->k_out, k_out, 32);
    memcpy(s->k_in, k_in, 32);
    memcpy(s->nms_out, nms_out, 32);
    memcpy(s->nms_in, nms_in, 32);
    if (session_id) memcpy(s->session_id, session_id, PL_NOISE_HASH_BYTES);
    else derive_id(s);
    *out = s;
    return PL_OK;
}

void pl_noise_session_free(pl_noise_session *s) {
    if (!s) return;
    sodium_memzero(s, sizeof *s);
    free(s);
}

void pl__noise_session_keys(const pl_noise_session *s, uint8_t k_out[PL_NOISE_KEY_BYTES],
                            uint8_t k_in[PL_NOISE_KEY_BYTES]) {
    memcpy(k_out, s->k_out, PL_NOISE_KEY_BYTES);
    memcpy(k_in, s->k_in, PL_NOISE_KEY_BYTES);
}

pl_err pl_noise_session_encrypt(pl_noise_session *s, const uint8_t *msg, size_t len,
                                uint8_t **wire, size_t *wire_len) {
    PL_REQUIRE(s && (msg || len == 0) && wire && wire_len);
    *wire = NULL;
    *wire_len = 0;
    if (len > PL_NOISE_MAX_MESSAGE) return PL_ERR_TOO_LARGE;
    if (s->n_out >= PL__NOISE_NONCE_MAX) return PL_ERR_NOISE_NONCE;

    size_t padded = pl__noise_padded_len(len);
    size_t ct_len = padded + PL_NOISE_TAG_BYTES;
    size_t total = pl__noise_payload_size(0, ct_len);
    uint8_t *out = malloc(total);
    if (!out) return PL_ERR_NOMEM;
    /* Written in place rather than through pl_noise_payload_serialize to
     * save a copy of every transport message; the padded plaintext is laid
     * where its ciphertext goes and encrypted there (libsodium's AEAD works
     * in place), so no plaintext copy is left anywhere. */
    uint8_t *nametag = out;
    pl__noise_nametag(nametag, s->nms_out, s->n_out);
    out[16] = PL_NOISE_PROTOCOL_TRANSPORT;
    out[17] = 0;
    for (int i = 0; i < 8; i++) out[18 + i] = (uint8_t)((uint64_t)ct_len >> (8 * i));
    pl__noise_pad(out + 26, msg, len);
    pl__noise_aead_encrypt(out + 26, s->k_out, s->n_out, nametag, PL_NOISE_NAMETAG_BYTES, out + 26,
                           padded);
    s->n_out++;
    *wire = out;
    *wire_len = total;
    return PL_OK;
}

pl_err pl_noise_session_decrypt(pl_noise_session *s, const uint8_t *wire, size_t len,
                                uint8_t **msg, size_t *msg_len) {
    PL_REQUIRE(s && (wire || len == 0) && msg && msg_len);
    *msg = NULL;
    *msg_len = 0;
    pl_noise_payload p;
    PL_TRY(pl_noise_payload_parse(&p, wire, len));
    if (p.protocol_id != PL_NOISE_PROTOCOL_TRANSPORT) return PL_ERR_NOISE_PROTOCOL_ID;

    uint64_t k = 0;
    if (!find_nonce(s, p.nametag, &k)) return PL_ERR_NOISE_WINDOW;
    if (k < s->in_next && (s->in_seen >> (s->in_next - 1 - k)) & 1) return PL_ERR_NOISE_REPLAY;

    if (p.transport_len < PL_NOISE_TAG_BYTES) return PL_ERR_DECRYPT;
    size_t padded = p.transport_len - PL_NOISE_TAG_BYTES;
    /* One buffer: the padded plaintext, then trimmed to the message. */
    uint8_t *buf = malloc(padded ? padded : 1);
    if (!buf) return PL_ERR_NOMEM;
    size_t plain = 0;
    pl_err err = pl__noise_aead_decrypt(buf, s->k_in, k, p.nametag, PL_NOISE_NAMETAG_BYTES,
                                        p.transport, p.transport_len);
    if (err == PL_OK) err = pl__noise_unpad(buf, padded, &plain);
    if (err != PL_OK) {
        pl_free_secret(buf, padded ? padded : 1);
        return err;
    }
    /* The caller wipes msg_len bytes; the padding after them says how long
     * the message is, which the padding exists to hide. */
    sodium_memzero(buf + plain, padded - plain);

    if (k >= s->in_next) {
        uint64_t shift = k + 1 - s->in_next;
        s->in_seen = ((shift >= 64 ? 0 : s->in_seen << shift) | 1) & SEEN_MASK;
        s->in_next = k + 1;
    } else {
        s->in_seen |= UINT64_C(1) << (s->in_next - 1 - k);
    }
    *msg = buf;
    *msg_len = plain;
    return PL_OK;
}

static void put_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

pl_err pl_noise_session_serialize(const pl_noise_session *s, uint8_t **out, size_t *out_len) {
    PL_REQUIRE(s && out && out_len);
    *out = NULL;
    *out_len = 0;
    uint8_t *b = malloc(PL_NOISE_SESSION_STATE_BYTES);
    if (!b) return PL_ERR_NOMEM;
    memcpy(b, "PLNS", 4);
    b[4] = STATE_VERSION;
    b[5] = (uint8_t)s->pattern;
    b[6] = (uint8_t)s->role;
    b[7] = 0;
    memcpy(b + 8, s->h, 32);
    memcpy(b + 40, s->rs, 32);
    memcpy(b + 72, s->k_out, 32);
    memcpy(b + 104, s->k_in, 32);
    memcpy(b + 136, s->nms_out, 32);
    memcpy(b + 168, s->nms_in, 32);
    put_le64(b + 200, s->n_out);
    put_le64(b + 208, s->in_next);
    put_le64(b + 216, s->in_seen);
    *out = b;
    *out_len = PL_NOISE_SESSION_STATE_BYTES;
    return PL_OK;
}

pl_err pl_noise_session_restore(pl_noise_session **out, const uint8_t *in, size_t len) {
    PL_REQUIRE(out && (in || len == 0));
    *out = NULL;
    if (len >= 5 && !memcmp(in, "PLNS", 4) && in[4] > STATE_VERSION) return PL_ERR_UNSUPPORTED;
    if (len != PL_NOISE_SESSION_STATE_BYTES) return PL_ERR_BAD_LENGTH;
    if (memcmp(in, "PLNS", 4) || in[4] != STATE_VERSION || in[7] != 0) return PL_ERR_STORE_CORRUPT;
    pl_noise_pattern pattern = (pl_noise_pattern)in[5];
    pl_noise_role role = (pl_noise_role)in[6];
    if (!pl__noise_pattern_lookup(pattern)) return PL_ERR_STORE_CORRUPT;
    if (role != PL_NOISE_INITIATOR && role != PL_NOISE_RESPONDER) return PL_ERR_STORE_CORRUPT;
    uint64_t n_out = get_le64(in + 200), in_next = get_le64(in + 208), seen = get_le64(in + 216);
    /* The bitmap must describe accepted nonces that exist: bit 0 is the
     * highest one accepted, and nothing below nonce 0. */
    if (seen & ~SEEN_MASK) return PL_ERR_STORE_CORRUPT;
    if (in_next == 0 ? seen != 0 : !(seen & 1)) return PL_ERR_STORE_CORRUPT;
    if (in_next < W && (seen >> in_next) != 0) return PL_ERR_STORE_CORRUPT;

    pl_noise_session *s = calloc(1, sizeof *s);
    if (!s) return PL_ERR_NOMEM;
    s->pattern = pattern;
    s->role = role;
    memcpy(s->h, in + 8, 32);
    memcpy(s->rs, in + 40, 32);
    memcpy(s->k_out, in + 72, 32);
    memcpy(s->k_in, in + 104, 32);
    memcpy(s->nms_out, in + 136, 32);
    memcpy(s->nms_in, in + 168, 32);
    s->n_out = n_out;
    s->in_next = in_next;
    s->in_seen = seen;
    derive_id(s);
    *out = s;
    return PL_OK;
}

pl_noise_pattern pl_noise_session_pattern(const pl_noise_session *s) {
    PL_REQUIRE(s);
    return s->pattern;
}

pl_noise_role pl_noise_session_role(const pl_noise_session *s) {
    PL_REQUIRE(s);
    return s->role;
}

void pl_noise_session_handshake_hash(const pl_noise_session *s, uint8_t h[PL_NOISE_HASH_BYTES]) {
    PL_REQUIRE(s && h);
    memcpy(h, s->h, PL_NOISE_HASH_BYTES);
}

void pl_noise_session_remote_static(const pl_noise_session *s, uint8_t pub[PL_NOISE_KEY_BYTES]) {
    PL_REQUIRE(s && pub);
    memcpy(pub, s->rs, PL_NOISE_KEY_BYTES);
}

void pl_noise_session_id(const pl_noise_session *s, uint8_t id[PL_NOISE_HASH_BYTES]) {
    PL_REQUIRE(s && id);
    memcpy(id, s->session_id, PL_NOISE_HASH_BYTES);
}

uint64_t pl_noise_session_sent(const pl_noise_session *s) {
    PL_REQUIRE(s);
    return s->n_out;
}

uint64_t pl_noise_session_next_inbound(const pl_noise_session *s) {
    PL_REQUIRE(s);
    return s->in_next;
}

bool pl__noise_topic_segment_ok(const char *v) {
    size_t n = strnlen(v, PL_NOISE_QR_FIELD_MAX + 1);
    if (n == 0 || n > PL_NOISE_QR_FIELD_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7f || c == '/') return false;
    }
    return true;
}

pl_err pl_noise_session_content_topic(char **out, const pl_noise_session *s, const char *app,
                                      const char *version) {
    PL_REQUIRE(out && s && app && version);
    *out = NULL;
    if (!pl__noise_topic_segment_ok(app) || !pl__noise_topic_segment_ok(version))
        return PL_ERR_INVALID_ARG;
    uint8_t d1[PL_SHA256_BYTES], d2[PL_SHA256_BYTES];
    pl_sha256(d1, s->session_id, sizeof s->session_id);
    pl_sha256(d2, d1, sizeof d1);
    char hex[2 * PL_SHA256_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, d2, sizeof d2);
    size_t cap = strlen(app) + strlen(version) + sizeof hex + 64;
    char *t = malloc(cap);
    if (!t) return PL_ERR_NOMEM;
    snprintf(t, cap, "/%s/%s/wakunoise/1/sessions/%s/proto", app, version, hex);
    *out = t;
    return PL_OK;
}
