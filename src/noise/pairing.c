/* SPDX-License-Identifier: Apache-2.0 */
/* WakuPairing (RFC 43) helpers: the QR string, its content topic and the
 * static-key commitments. The handshake itself is the WakuPairing pattern. */
#include "noise/noise_internal.h"

#include "pairlink/hash.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QR_MAX_LEN 2048

void pl_noise_commit(uint8_t out[PL_NOISE_HASH_BYTES], const uint8_t static_pub[PL_NOISE_KEY_BYTES],
                     const uint8_t *r, size_t r_len) {
    PL_REQUIRE(out && static_pub && (r || r_len == 0));
    pl__sha256_cat(out, static_pub, PL_NOISE_KEY_BYTES, r, r_len, NULL, 0);
}

pl_err pl_noise_commit_check(const uint8_t commitment[PL_NOISE_HASH_BYTES],
                             const uint8_t static_pub[PL_NOISE_KEY_BYTES], const uint8_t *r,
                             size_t r_len) {
    PL_REQUIRE(commitment && static_pub && (r || r_len == 0));
    if (r_len > PL_NOISE_MAX_MESSAGE) return PL_ERR_NOISE_COMMITMENT;
    uint8_t d[PL_NOISE_HASH_BYTES];
    pl_noise_commit(d, static_pub, r, r_len);
    int ok = pl_ct_equal(d, commitment, sizeof d);
    return ok ? PL_OK : PL_ERR_NOISE_COMMITMENT;
}

static size_t b64_size(size_t n) {
    return sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE);
}

pl_err pl_noise_qr_encode(char **out, const pl_noise_qr *qr) {
    PL_REQUIRE(out && qr);
    *out = NULL;
    if (!pl__noise_topic_segment_ok(qr->app) || !pl__noise_topic_segment_ok(qr->version) ||
        !pl__noise_topic_segment_ok(qr->shard))
        return PL_ERR_INVALID_ARG;
    const char *text[3] = {qr->app, qr->version, qr->shard};
    size_t cap = 2 * b64_size(PL_NOISE_KEY_BYTES) + 5;
    for (int i = 0; i < 3; i++) cap += b64_size(strlen(text[i]));
    char *s = malloc(cap);
    if (!s) return PL_ERR_NOMEM;
    size_t at = 0;
    for (int i = 0; i < 5; i++) {
        const uint8_t *bin = i < 3 ? (const uint8_t *)text[i]
                                   : i == 3 ? qr->ephemeral_pub : qr->committed_static;
        size_t n = i < 3 ? strlen(text[i]) : PL_NOISE_KEY_BYTES;
        sodium_bin2base64(s + at, cap - at, bin, n, sodium_base64_VARIANT_URLSAFE);
        at += strlen(s + at);
        if (i < 4) s[at++] = ':';
    }
    s[at] = '\0';
    *out = s;
    return PL_OK;
}

/* Decode one padded base64url field into buf (cap bytes). */
static pl_err field(uint8_t *buf, size_t cap, size_t *n, const char *b64, size_t len) {
    *n = 0;
    if (len == 0) return PL_ERR_BAD_BASE64;
    const char *end = NULL;
    if (sodium_base642bin(buf, cap, b64, len, NULL, n, &end, sodium_base64_VARIANT_URLSAFE) != 0 ||
        end != b64 + len)
        return PL_ERR_BAD_BASE64;
    return PL_OK;
}

pl_err pl_noise_qr_parse(pl_noise_qr *qr, const char *s, size_t len) {
    PL_REQUIRE(qr && (s || len == 0));
    memset(qr, 0, sizeof *qr);
    if (len > QR_MAX_LEN) return PL_ERR_TOO_LARGE;
    const char *parts[5];
    size_t lens[5], np = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == ':') {
            if (np == 5) return PL_ERR_URI_MALFORMED;
            parts[np] = s + start;
            lens[np++] = i - start;
            start = i + 1;
        }
    }
    if (np != 5) return PL_ERR_URI_MALFORMED;

    pl_noise_qr q;
    memset(&q, 0, sizeof q);
    char *text[3] = {q.app, q.version, q.shard};
    uint8_t buf[PL_NOISE_QR_FIELD_MAX + 1];
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        if (lens[i] >= b64_size(PL_NOISE_QR_FIELD_MAX)) return PL_ERR_URI_MALFORMED;
        PL_TRY(field(buf, sizeof buf - 1, &n, parts[i], lens[i]));
        buf[n] = 0;
        if (memchr(buf, 0, n)) return PL_ERR_URI_MALFORMED;
        memcpy(text[i], buf, n + 1);
        if (!pl__noise_topic_segment_ok(text[i])) return PL_ERR_URI_MALFORMED;
    }
    if (lens[3] >= b64_size(sizeof buf) || lens[4] >= b64_size(sizeof buf))
        return PL_ERR_URI_MALFORMED;
    PL_TRY(field(buf, sizeof buf, &n, parts[3], lens[3]));
    if (n != PL_NOISE_KEY_BYTES) return PL_ERR_URI_MALFORMED;
    memcpy(q.ephemeral_pub, buf, n);
    PL_TRY(field(buf, sizeof buf, &n, parts[4], lens[4]));
    if (n != PL_NOISE_HASH_BYTES) return PL_ERR_URI_MALFORMED;
    memcpy(q.committed_static, buf, n);
    *qr = q;
    return PL_OK;
}

pl_err pl_noise_qr_content_topic(char **out, const pl_noise_qr *qr) {
    PL_REQUIRE(out && qr);
    *out = NULL;
    size_t cap = strnlen(qr->app, PL_NOISE_QR_FIELD_MAX + 1) +
                 strnlen(qr->version, PL_NOISE_QR_FIELD_MAX + 1) +
                 strnlen(qr->shard, PL_NOISE_QR_FIELD_MAX + 1) + 64;
    char *t = malloc(cap);
    if (!t) return PL_ERR_NOMEM;
    snprintf(t, cap, "/%.255s/%.255s/wakunoise/1/sessions_shard-%.255s/proto", qr->app,
             qr->version, qr->shard);
    *out = t;
    return PL_OK;
}
