/* SPDX-License-Identifier: Apache-2.0 */
/* HELLO_APP / HELLO_NODE_MANAGER bodies and their Waku payload v1 sealing. */
#include "nm/nm_internal.h"

#include "core/internal.h"
#include "pairlink/hash.h"

#include <string.h>

#define OFF_MAGIC 0
#define OFF_ROLE 4
#define OFF_IDENTITY 5
#define OFF_CREATED 37
#define OFF_NONCE 45
#define OFF_ECHO 61
#define OFF_NAME_LEN 77
#define OFF_NAME 78
_Static_assert(OFF_NAME == PL_NM_HELLO_BODY_MIN, "body layout");
_Static_assert(PL_NM_HELLO_WIRE_BYTES == PL_WAKU_V1_PAD_BLOCK + PL_WAKU_V1_OVERHEAD,
               "a HELLO always pads to one 256-byte block");
_Static_assert(1 + 1 + PL_NM_HELLO_BODY_MAX < PL_WAKU_V1_PAD_BLOCK, "one block");

bool pl__nm_name_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint32_t c = s[i];
        size_t k;
        uint32_t min;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f) return false;
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1, min = 0x80, c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, min = 0x800, c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, min = 0x10000, c &= 0x07;
        } else {
            return false;
        }
        if (n - i - 1 < k) return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return false;
            c = c << 6 | (s[i + j] & 0x3fu);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return false;
        if (c >= 0x80 && c <= 0x9f) return false; /* C1 controls */
        i += k + 1;
    }
    return true;
}

/* A low-order point times any clamped scalar is the identity, which
 * pl_x25519 reports as PL_ERR_WEAK_KEY; the scalar is a public constant. */
pl_err pl__nm_identity_check(const uint8_t pub[PL_NM_KEY_BYTES]) {
    static const uint8_t probe[PL_X25519_BYTES] = {
        0x70, 0x6c, 0x2d, 0x6e, 0x6d, 0x2d, 0x6c, 0x6f, 0x77, 0x2d, 0x6f, 0x72,
        0x64, 0x65, 0x72, 0x2d, 0x70, 0x72, 0x6f, 0x62, 0x65, 0x2d, 0x73, 0x63,
        0x61, 0x6c, 0x61, 0x72, 0x2d, 0x76, 0x31, 0x40};
    uint8_t out[PL_X25519_BYTES];
    pl_err e = pl_x25519(out, probe, pub);
    pl_wipe(out, sizeof out);
    return e == PL_OK ? PL_OK : PL_ERR_WEAK_KEY;
}

pl_err pl_nm_hello_encode(uint8_t out[PL_NM_HELLO_BODY_MAX], size_t *out_len, const pl_nm_hello *h) {
    PL_REQUIRE(out_len);
    *out_len = 0;
    PL_REQUIRE(out && h);
    if (h->role != PL_NM_ROLE_APP && h->role != PL_NM_ROLE_NODE_MANAGER) return PL_ERR_INVALID_ARG;
    size_t nl = strnlen(h->name, sizeof h->name);
    if (nl > PL_NM_NAME_MAX) return PL_ERR_TOO_LARGE;
    if (!pl__nm_name_valid((const uint8_t *)h->name, nl)) return PL_ERR_BAD_UTF8;
    memcpy(out + OFF_MAGIC, PL_NM_HELLO_MAGIC, 4);
    out[OFF_ROLE] = (uint8_t)h->role;
    memcpy(out + OFF_IDENTITY, h->identity, PL_NM_KEY_BYTES);
    for (int i = 0; i < 8; i++) out[OFF_CREATED + i] = (uint8_t)(h->created_at_ms >> (56 - 8 * i));
    memcpy(out + OFF_NONCE, h->nonce, PL_NM_NONCE_BYTES);
    memcpy(out + OFF_ECHO, h->echo, PL_NM_NONCE_BYTES);
    out[OFF_NAME_LEN] = (uint8_t)nl;
    memcpy(out + OFF_NAME, h->name, nl);
    *out_len = OFF_NAME + nl;
    return PL_OK;
}

pl_err pl_nm_hello_decode(pl_nm_hello *h, const uint8_t *body, size_t len) {
    PL_REQUIRE(h && (body || len == 0));
    memset(h, 0, sizeof *h);
    if (len < PL_NM_HELLO_BODY_MIN || len > PL_NM_HELLO_BODY_MAX) return PL_ERR_HELLO_MALFORMED;
    if (memcmp(body + OFF_MAGIC, PL_NM_HELLO_MAGIC, 4) != 0) return PL_ERR_HELLO_MALFORMED;
    uint8_t role = body[OFF_ROLE];
    if (role != PL_NM_ROLE_APP && role != PL_NM_ROLE_NODE_MANAGER) return PL_ERR_HELLO_MALFORMED;
    size_t nl = body[OFF_NAME_LEN];
    if (nl > PL_NM_NAME_MAX || len != OFF_NAME + nl) return PL_ERR_HELLO_MALFORMED;
    if (!pl__nm_name_valid(body + OFF_NAME, nl)) return PL_ERR_BAD_UTF8;
    pl_err e = pl__nm_identity_check(body + OFF_IDENTITY);
    if (e != PL_OK) return e;

    h->role = (pl_nm_role)role;
    memcpy(h->identity, body + OFF_IDENTITY, PL_NM_KEY_BYTES);
    for (int i = 0; i < 8; i++) h->created_at_ms = h->created_at_ms << 8 | body[OFF_CREATED + i];
    memcpy(h->nonce, body + OFF_NONCE, PL_NM_NONCE_BYTES);
    memcpy(h->echo, body + OFF_ECHO, PL_NM_NONCE_BYTES);
    memcpy(h->name, body + OFF_NAME, nl);
    h->name[nl] = '\0';
    return PL_OK;
}

pl_err pl_nm_hello_seal(uint8_t wire[PL_NM_HELLO_WIRE_BYTES], const uint8_t hs[PL_NM_KEY_BYTES],
                        const pl_nm_hello *h, const pl_waku_v1_seal_opts *opts) {
    PL_REQUIRE(wire && hs && h);
    uint8_t body[PL_NM_HELLO_BODY_MAX];
    size_t n = 0, wl = 0;
    pl_err e = pl_nm_hello_encode(body, &n, h);
    if (e == PL_OK) e = pl_waku_v1_seal(wire, PL_NM_HELLO_WIRE_BYTES, &wl, hs, body, n, opts);
    if (e == PL_OK && wl != PL_NM_HELLO_WIRE_BYTES) e = PL_ERR_INTERNAL;
    pl_wipe(body, sizeof body);
    return e;
}

pl_err pl_nm_hello_open(pl_nm_hello *h, const uint8_t hs[PL_NM_KEY_BYTES], const uint8_t *wire,
                        size_t len) {
    PL_REQUIRE(h && hs && (wire || len == 0));
    memset(h, 0, sizeof *h);
    if (len > PL_NM_HELLO_WIRE_MAX) return PL_ERR_TOO_LARGE;
    if (!wire) return PL_ERR_TRUNCATED;
    uint8_t body[PL_NM_HELLO_BODY_MAX];
    size_t n = 0;
    pl_err e = pl_waku_v1_open(body, sizeof body, &n, hs, wire, len);
    if (e == PL_ERR_BUFFER_TOO_SMALL) e = PL_ERR_HELLO_MALFORMED;
    if (e == PL_OK) e = pl_nm_hello_decode(h, body, n);
    pl_wipe(body, sizeof body);
    return e;
}
